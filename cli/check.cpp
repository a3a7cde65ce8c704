// `pyhot defs` and `pyhot check`: what an edit changed and whether each
// change can be applied to a live process. No process is involved.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "differ/differ.hpp"
#include "differ/rules.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

std::string first_line(std::string_view text, std::size_t limit) {
  std::string line(util::trim(text.substr(0, text.find('\n'))));
  if (line.size() > limit) {
    line = line.substr(0, limit - 3) + "...";
  }
  return line;
}

// How long a statement's line may be in check's output.
constexpr std::size_t k_subject_limit = 60;

std::string subject(const differ::Change& change, const parser::SourceFile& before, const parser::SourceFile& after) {
  return differ::subject_of(change, before, after, k_subject_limit);
}

struct FileCheck {
  std::string path;
  parser::SourceFile before;
  parser::SourceFile after;
  differ::ChangeSet changes;
};

json to_json(const FileCheck& check) {
  json changes = json::array();
  for (const auto& change : check.changes.changes) {
    changes.push_back({{"line", change.line},
                       {"qualname", change.qualname},
                       {"subject", subject(change, check.before, check.after)},
                       {"kind", differ::to_string(change.kind)},
                       {"verdict", differ::to_string(change.verdict)},
                       {"rule", differ::rule_entry(change.rule).id},
                       {"reason", change.reason},
                       {"statement", change.is_statement}});
  }
  return {{"path", check.path}, {"changes", changes}, {"syntax_errors", cli::to_json(check.changes.syntax_errors)}};
}

Result<parser::SourceFile> parse_text(const std::string& text, const std::string& path) {
  return parser::parse_source(text, path);
}

Result<FileCheck> check_texts(const std::string& path, const std::string& old_text, const std::string& new_text) {
  auto before = parse_text(old_text, path);
  if (!before) {
    return before.error();
  }
  auto after = parse_text(new_text, path);
  if (!after) {
    return after.error();
  }
  FileCheck check{path, std::move(*before), std::move(*after), {}};
  check.changes = differ::diff(check.before, check.after);
  return check;
}

struct GitFile {
  std::string path;
  std::string old_text;
  std::string new_text;
};

Result<std::string> git(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv{"git"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  auto done = util::run_capture(argv);
  if (!done) {
    return make_error(ErrorKind::usage, "git is not installed: install git, or give OLD.py NEW.py");
  }
  if (done->exit_code != 0) {
    std::string why(util::trim(done->err));
    return make_error(ErrorKind::usage, why.empty() ? "git failed" : first_line(why, 200));
  }
  return done->out;
}

Result<std::vector<GitFile>> git_changed_files(const CheckOptions& options) {
  auto top = git({"rev-parse", "--show-toplevel"});
  if (!top) {
    return make_error(ErrorKind::usage, "not a git repository: run `pyhot check` inside one, or give OLD.py NEW.py");
  }
  std::string root(util::trim(*top));
  std::vector<std::string> arguments{"-C", root, "diff", "--name-only", "-z", "--no-renames"};
  std::string revision;
  if (options.staged) {
    arguments.push_back("--cached");
    revision = "HEAD";
    if (!git({"-C", root, "rev-parse", "--verify", "-q", "HEAD"})) {
      revision = "";  // no commit yet: everything staged is new
    }
  } else {
    revision = options.paths[0];
    if (!git({"-C", root, "rev-parse", "--verify", "-q", revision + "^{commit}"})) {
      return make_error(ErrorKind::usage, "unknown revision '" + revision + "': give a commit, branch or tag");
    }
    arguments.push_back(revision);
  }
  arguments.push_back("--");
  arguments.push_back("*.py");
  auto names = git(arguments);
  if (!names) {
    return names.error();
  }
  std::vector<GitFile> files;
  std::size_t start = 0;
  while (start < names->size()) {
    std::size_t end = names->find('\0', start);
    std::string path = names->substr(start, end - start);
    start = end == std::string::npos ? names->size() : end + 1;
    if (path.empty()) {
      continue;
    }
    GitFile file;
    file.path = path;
    auto absolute = root + "/" + path;
    file.old_text = revision.empty() ? std::string{} : [&] {
      auto text = git({"-C", root, "show", revision + ":" + path});
      return text ? *text : std::string{};
    }();
    if (options.staged) {
      auto text = git({"-C", root, "show", ":" + path});
      file.new_text = text ? *text : std::string{};
    } else {
      auto text = util::read_python_file(absolute);
      if (!text && text.error().kind == ErrorKind::refused) {
        return text.error();  // too large to check: not an empty file
      }
      file.new_text = text ? *text : std::string{};
    }
    files.push_back(std::move(file));
  }
  return files;
}

void print_human(const std::vector<FileCheck>& checks) {
  int live = 0;
  int restart = 0;
  int errors = 0;
  for (const auto& check : checks) {
    for (const auto& error : check.changes.syntax_errors) {
      std::cout << check.path << ":" << error.line << ":" << error.column << "  syntax error: " << error.message
                << "\n";
      ++errors;
    }
    for (const auto& change : check.changes.changes) {
      std::cout << check.path << ":" << change.line << "  " << subject(change, check.before, check.after) << "  "
                << differ::to_string(change.verdict) << "  " << change.reason << "\n";
      (change.verdict == differ::Verdict::restart ? restart : live) += 1;
    }
  }
  int total = live + restart;
  std::cout << total << (total == 1 ? " change" : " changes") << " in " << checks.size()
            << (checks.size() == 1 ? " file" : " files") << ": " << live << " can be applied live, " << restart
            << " need" << (restart == 1 ? "s" : "") << " a restart";
  if (errors > 0) {
    std::cout << ", " << errors << " syntax error" << (errors == 1 ? "" : "s");
  }
  std::cout << "\n";
}

}  // namespace

int run_defs(const DefsOptions& options) {
  auto file = parser::parse_file(options.file);
  if (!file) {
    print_error(file.error().message, options.json);
    // No such file, or a directory: the command line is wrong.
    bool usage = file.error().kind == ErrorKind::usage || file.error().kind == ErrorKind::not_found;
    return usage ? k_exit_usage : k_exit_failed;
  }
  auto keys = differ::definition_keys(*file);
  if (options.json) {
    json defs = json::array();
    for (std::size_t i = 0; i < file->definitions.size(); ++i) {
      const auto& def = file->definitions[i];
      auto hash = differ::hash_definition(*file, def);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
      defs.push_back({{"qualname", def.qualname},
                      {"key", keys[i]},
                      {"kind", parser::to_string(def.kind)},
                      {"line", def.def_line},
                      {"start_line", def.range.start_line},
                      {"end_line", def.range.end_line},
                      {"decorators", def.decorators},
                      {"free_variables", def.free_variables},
                      {"generator", def.is_generator},
                      {"coroutine", def.is_coroutine},
                      {"conditional", def.conditional},
                      {"hash", hex}});
    }
    print_json({{"path", options.file}, {"definitions", defs}, {"syntax_errors", cli::to_json(file->errors)}});
  } else {
    for (const auto& error : file->errors) {
      std::cout << options.file << ":" << error.line << ":" << error.column << "  syntax error: " << error.message
                << "\n";
    }
    for (const auto& def : file->definitions) {
      auto hash = differ::hash_definition(*file, def);
      char line[64];
      std::snprintf(line, sizeof line, "%5u-%-5u", def.range.start_line, def.range.end_line);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
      std::cout << line << " " << hex << "  " << parser::to_string(def.kind) << "  " << def.qualname << "\n";
    }
    std::cout << file->definitions.size() << " definitions\n";
  }
  return file->errors.empty() ? k_exit_done : k_exit_failed;
}

int run_check(const CheckOptions& options) {
  std::vector<FileCheck> checks;
  if (options.paths.size() == 2 && !options.staged) {
    auto old_text = util::read_python_file(options.paths[0]);
    auto new_text = util::read_python_file(options.paths[1]);
    if (!old_text || !new_text) {
      const auto& error = !old_text ? old_text.error() : new_text.error();
      print_error(error.message, options.json);
      return error.kind == ErrorKind::refused ? k_exit_failed : k_exit_usage;
    }
    auto check = check_texts(options.paths[1], *old_text, *new_text);
    if (!check) {
      print_error(check.error().message, options.json);
      return k_exit_failed;
    }
    checks.push_back(std::move(*check));
  } else if ((options.staged && options.paths.empty()) || (!options.staged && options.paths.size() == 1)) {
    auto files = git_changed_files(options);
    if (!files) {
      print_error(files.error().message, options.json);
      return files.error().kind == ErrorKind::refused ? k_exit_failed : k_exit_usage;
    }
    for (const auto& file : *files) {
      auto check = check_texts(file.path, file.old_text, file.new_text);
      if (!check) {
        print_error(check.error().message, options.json);
        return k_exit_failed;
      }
      checks.push_back(std::move(*check));
    }
  } else {
    print_error("check takes OLD.py NEW.py, a git revision, or --staged", options.json);
    return k_exit_usage;
  }

  bool live = true;
  for (const auto& check : checks) {
    live = live && !check.changes.needs_restart();
  }
  if (options.json) {
    json files = json::array();
    int applicable = 0;
    int restart = 0;
    int errors = 0;
    for (const auto& check : checks) {
      files.push_back(to_json(check));
      errors += static_cast<int>(check.changes.syntax_errors.size());
      for (const auto& change : check.changes.changes) {
        (change.verdict == differ::Verdict::restart ? restart : applicable) += 1;
      }
    }
    print_json(
        {{"ok", live},
         {"files", files},
         {"summary",
          {{"changes", applicable + restart}, {"live", applicable}, {"restart", restart}, {"syntax_errors", errors}}}});
  } else {
    print_human(checks);
  }
  return live ? k_exit_done : k_exit_failed;
}

}  // namespace pyhot::cli
