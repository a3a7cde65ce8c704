// `pyhot autoreload PID [PATH...]` and `pyhot run --autoreload`: watch the
// target's source files and apply every settled save, one patch per save.
// The process is autoreload_target's, what the user sees autoreload_output's.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "cli/autoreload_output.hpp"
#include "cli/autoreload_target.hpp"
#include "cli/autoreload_tree.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "loader/process.hpp"
#include "parser/parser.hpp"
#include "patch/live_patch.hpp"
#include "util/file.hpp"
#include "util/text.hpp"
#include "watcher/file_watcher.hpp"

namespace pyhot::cli {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// How often the target is asked which modules it has loaded: quickly while
// it is still importing, then backing off to once a second.
constexpr std::chrono::milliseconds k_first_module_poll{100};
constexpr std::chrono::milliseconds k_module_poll{1000};

std::string real_path(const std::string& path) {
  std::error_code error;
  auto canonical = std::filesystem::canonical(path, error);
  return error ? util::absolute_path(path) : canonical.string();
}

// The files autoreload watches: Python sources, not editors' scratch files,
// never in caches, virtual environments' tooling or version control.
watcher::WatchFilter python_sources() {
  static const std::set<std::string> k_skipped{"__pycache__", ".git",          ".hg",  ".svn",
                                               ".mypy_cache", ".pytest_cache", ".tox", ".nox"};
  watcher::WatchFilter filter;
  filter.wanted_file = [](const std::string& name) {
    return name.size() > 3 && name.ends_with(".py") && !watcher::is_editor_scratch_name(name);
  };
  filter.skipped_directory = [](const std::string& name) { return k_skipped.count(name) > 0; };
  return filter;
}

// What says a file was written to while it was read: its size, its
// modification time, and its inode (a rename put another file in place).
struct FileState {
  bool exists = false;
  off_t size = 0;
  std::int64_t modified_ns = 0;
  ino_t inode = 0;
  bool operator==(const FileState&) const = default;
};

FileState file_state(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return {};
  }
  return {true, info.st_size, static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
          info.st_ino};
}

// How long a file must stay unchanged before a save that deletes
// definitions is applied.
constexpr auto k_deletion_settle = std::chrono::milliseconds(250);

// Whether the file is still in `state` once k_deletion_settle has passed
// since it was last modified (waits for the rest of that time).
bool left_alone(const std::string& path, const FileState& state) {
  auto modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(state.modified_ns)));
  auto settled_at = modified + k_deletion_settle;
  auto now = std::chrono::system_clock::now();
  if (now < settled_at) {
    std::this_thread::sleep_for(std::min<std::chrono::system_clock::duration>(settled_at - now, k_deletion_settle));
  }
  return file_state(path) == state;
}

// Whether a line of `text` starts a def or a class: a cheap look, taken
// when a file is first watched, at whether its module has definitions.
bool has_definition_lines(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    std::size_t first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos) {
      line.remove_prefix(first);
      if (line.starts_with("def ") || line.starts_with("class ") || line.starts_with("async def ")) {
        return true;
      }
    }
    at = end + 1;
  }
  return false;
}

struct WatchedFile {
  std::string module;                      // empty: the target has not imported it (as far as we know)
  std::optional<parser::SourceFile> live;  // what we last applied: the code that is live
  // Whether the file had definitions when it was first watched; unknown
  // for files first seen when they were saved.
  std::optional<bool> had_definitions;
  bool reported_unmapped = false;
};

enum class FileResult { applied, unchanged, skipped, failed };

class Autoreload {
 public:
  Autoreload(const AutoreloadOptions& options, AutoreloadOutput& output)
      : m_options(options), m_output(output), m_target(options.pid, options.child) {}

  int run();

 private:
  std::optional<int> start();
  Result<std::unique_ptr<loader::AgentClient>> connect(bool attach);
  Result<Done> watch_paths();
  void refresh_modules(loader::AgentChannel& agent, bool announce);
  void remember_baseline(const std::string& path);
  void announce_more(const std::vector<std::string>& added) const;
  void announce_watching() const;
  int watch_loop();
  int report_exit();
  void handle(const std::vector<watcher::FileEvent>& events);
  FileResult locate(loader::AgentChannel& agent, const std::string& path, WatchedFile& file);
  FileResult apply(loader::AgentChannel& agent, const std::string& path);
  bool over_tree();
  FileResult apply_over_tree(const std::string& path);
  void refresh_worker_modules(bool announce);
  void report_syntax_error(const std::string& path, const std::string& module, const parser::SyntaxError& error) const;
  bool deletes_everything(loader::AgentChannel& agent, const std::string& path, const WatchedFile& file,
                          const parser::SourceFile& after);
  void report_deletes_everything(const std::string& path, const std::string& module) const;
  void report_error(const std::string& where, const std::string& kind, const std::string& path,
                    const std::string& module, const std::string& message) const;
  std::vector<std::string> files_to_compare(loader::AgentChannel& agent);
  int apply_once();

  const AutoreloadOptions& m_options;
  AutoreloadOutput& m_output;
  WatchedTarget m_target;
  std::unique_ptr<watcher::FileWatcher> m_watcher;
  loader::ProcessInfo m_process;
  std::map<std::string, WatchedFile> m_files;  // by real path
  std::set<std::string> m_flat_directories;    // directories of the target's modules
  std::chrono::milliseconds m_poll_interval = k_first_module_poll;
  bool m_applied_changes = false;  // did the last apply() change anything live
  bool m_tree_seen = false;        // run --autoreload: the child has forked Python workers
  std::string m_agent_directory;   // "<dir>/": where `pyhot run` puts the agent and its sitecustomize
};

Result<std::unique_ptr<loader::AgentClient>> Autoreload::connect(bool attach) {
  loader::ConnectOptions options;
  options.attach = attach;
  options.force = m_options.force;
  return loader::connect_to_agent(m_process, options);
}

// The directories of every module the target loaded from outside the
// standard library and site-packages; new ones are watched as they appear.
void Autoreload::refresh_modules(loader::AgentChannel& agent, bool announce) {
  auto modules = loader::Agent(agent).modules();
  if (!modules) {
    return;
  }
  std::vector<std::string> added;
  for (const auto& module : *modules) {
    std::string file = real_path(module.file);
    std::string name = module.name;
    if (file.empty() || name.empty() || (!m_agent_directory.empty() && util::starts_with(file, m_agent_directory))) {
      continue;  // pyhot's own sitecustomize is not the user's code
    }
    auto& watched = m_files[file];
    if (watched.module.empty()) {
      watched.module = name;
      added.push_back(file);
      remember_baseline(file);
    }
    if (!m_options.paths.empty()) {
      continue;  // only what the user named is watched
    }
    std::string directory = std::filesystem::path(file).parent_path().string();
    if (m_flat_directories.insert(directory).second) {
      if (auto watching = m_watcher->watch(directory, watcher::FileWatcher::Depth::flat); !watching) {
        m_output.line("", "cannot watch " + directory + ": " + watching.error().message, m_output.red());
      }
    }
  }
  m_poll_interval = added.empty() ? std::min(m_poll_interval * 2, k_module_poll) : k_first_module_poll;
  if (announce && !added.empty() && m_options.paths.empty()) {
    announce_more(added);
  }
}

void Autoreload::announce_more(const std::vector<std::string>& added) const {
  if (m_output.json_output()) {
    json files = json::array();
    for (const auto& file : added) {
      files.push_back({{"file", file}, {"module", m_files.at(file).module}});
    }
    m_output.event({{"event", "watching"}, {"pid", m_options.pid}, {"files", files}});
    return;
  }
  m_output.line("",
                "watching " + std::to_string(added.size()) + (added.size() == 1 ? " more file" : " more files") +
                    " of process " + std::to_string(m_options.pid) + " (" + m_output.some_names(added) + ")",
                m_output.dim());
}

void Autoreload::remember_baseline(const std::string& path) {
  if (m_options.once) {
    return;  // --once sees each file once: what is on disk now is no baseline
  }
  auto& file = m_files[path];
  if (!file.had_definitions && !file.live) {
    if (auto text = util::read_source(path)) {
      file.had_definitions = has_definition_lines(*text);
    }
  }
}

Result<Done> Autoreload::watch_paths() {
  for (const auto& path : m_options.paths) {
    std::string real = real_path(path);
    auto watching = m_watcher->watch(real);
    if (!watching) {
      return watching.error();
    }
    std::error_code error;
    if (!std::filesystem::is_directory(real, error)) {
      remember_baseline(real);
      continue;
    }
    for (const auto& found : watcher::find_files(real, python_sources())) {
      remember_baseline(real_path(found));
    }
  }
  return k_done;
}

void Autoreload::report_error(const std::string& where, const std::string& kind, const std::string& path,
                              const std::string& module, const std::string& message) const {
  if (m_output.json_output()) {
    m_output.event({{"event", kind}, {"file", path}, {"module", module}, {"message", message}});
  } else {
    m_output.line(where, message + " (nothing applied)", m_output.red());
  }
}

// Which module the target knows `path` by, asked once per file.
FileResult Autoreload::locate(loader::AgentChannel& agent, const std::string& path, WatchedFile& file) {
  if (!file.module.empty()) {
    return FileResult::applied;
  }
  std::string shown = m_output.display(path);
  auto found = loader::Agent(agent).module_for_file(path);
  if (found) {
    file.module = found->module;
    return FileResult::applied;
  }
  if (found.error().kind != ErrorKind::not_found) {
    report_error(shown, "error", path, file.module, found.error().message);
    return FileResult::failed;
  }
  if (!file.reported_unmapped) {
    file.reported_unmapped = true;
    if (m_output.json_output()) {
      m_output.event({{"event", "not_imported"}, {"file", path}, {"pid", m_options.pid}});
    } else {
      m_output.line(shown, "is not imported by process " + std::to_string(m_options.pid) + "; skipped", m_output.dim());
    }
  }
  return FileResult::skipped;
}

// One settled file: read, re-parse from what we last applied, apply
// against it. On a syntax error or a restart verdict nothing is applied and
// the live state stays what it was, so the next good save carries everything.
FileResult Autoreload::apply(loader::AgentChannel& agent, const std::string& path) {
  if (over_tree()) {
    return apply_over_tree(path);
  }
  auto& file = m_files[path];
  std::string shown = m_output.display(path);
  if (auto located = locate(agent, path, file); located != FileResult::applied) {
    return located;
  }
  FileState before_reading = file_state(path);
  auto text = util::read_source(path);
  if (!text) {
    report_error(shown, "error", path, file.module, text.error().message);
    return FileResult::failed;
  }
  if (file_state(path) != before_reading) {
    return FileResult::skipped;  // written to while we read it: its writer's next event brings it back
  }
  if (file.live && file.live->text == *text) {
    return FileResult::unchanged;
  }
  auto parse_started = Clock::now();
  // Only the top-level statements the save touched are parsed again.
  auto parsed = file.live ? parser::reparse_from(*file.live, *text, path) : parser::parse_source(*text, path);
  auto parsed_at = Clock::now();
  if (!parsed) {
    report_error(shown, "error", path, file.module, parsed.error().message);
    return FileResult::failed;
  }
  if (!parsed->errors.empty()) {
    report_syntax_error(path, file.module, parsed->errors.front());
    return FileResult::failed;
  }
  // A save that deletes a definition is also what the first part of a
  // file written in two steps looks like (written, closed, the rest
  // appended 50 ms later: the rest's definitions were deleted, then defined
  // anew). It is applied once the file has been left alone for a while.
  if ((!file.live || parser::deletes_a_definition(*file.live, *parsed)) && !left_alone(path, before_reading)) {
    return FileResult::skipped;  // written to meanwhile: its writer's next event brings it back
  }
  if (!m_options.allow_empty && deletes_everything(agent, path, file, *parsed)) {
    report_deletes_everything(path, file.module);
    return FileResult::failed;
  }
  patch::ModuleLocation where{file.module, path, std::nullopt};
  loader::Agent typed(agent);
  auto outcome = patch::patch_parsed(typed, where, *parsed, file.live ? &*file.live : nullptr, false);
  auto patched_at = Clock::now();
  if (!outcome) {
    if (!m_target.alive()) {
      return FileResult::failed;  // the exit is reported by the loop
    }
    if (outcome.error().kind == ErrorKind::not_found && outcome.error().message.find("No module named") == 0) {
      file.module.clear();  // unloaded from sys.modules: ask again next time
    }
    report_error(shown, "error", path, file.module, outcome.error().message);
    return FileResult::failed;
  }
  auto milliseconds = [](Clock::duration duration) {
    return std::chrono::duration_cast<std::chrono::microseconds>(duration).count() / 1000.0;
  };
  report_patch(
      m_output, m_options.pid, file.module, path, *outcome,
      {{"parse_ms", milliseconds(parsed_at - parse_started)}, {"patch_ms", milliseconds(patched_at - parsed_at)}},
      m_options.once);
  if (!outcome->refused.empty()) {
    return FileResult::failed;
  }
  m_applied_changes = outcome->applied_anything();
  file.live = std::move(*parsed);
  return FileResult::applied;
}

void Autoreload::report_syntax_error(const std::string& path, const std::string& module,
                                     const parser::SyntaxError& error) const {
  if (m_output.json_output()) {
    m_output.event({{"event", "syntax_error"},
                    {"file", path},
                    {"module", module},
                    {"line", error.line},
                    {"column", error.column},
                    {"message", error.message}});
  } else {
    m_output.line(m_output.display(path) + ":" + std::to_string(error.line) + ":" + std::to_string(error.column),
                  "syntax error: " + error.message + " (nothing applied)", m_output.red());
  }
}

// --tree always; `run --autoreload` from the first time its child is seen
// to have forked (a program that never forks is patched as one process).
// Any child counts, and so does one already reaped: a pre-fork server that
// recycles its workers fast is seen now and then with none alive (105 of
// 3,000 looks at the tests' recycling server under load), and a save
// patched then into the master alone left its workers on the old code.
bool Autoreload::over_tree() {
  if (!m_options.tree) {
    return false;
  }
  if (!m_options.child || m_tree_seen) {
    return true;
  }
  m_tree_seen = loader::has_forked(m_options.pid);
  return m_tree_seen;
}

// One save over the tree: each process is asked what is live for the file
// (processes may hold different texts: workers that imported it later).
FileResult Autoreload::apply_over_tree(const std::string& path) {
  auto& file = m_files[path];
  FileState before_reading = file_state(path);
  auto text = util::read_python_file(path);
  if (!text) {
    report_error(m_output.display(path), "error", path, file.module, text.error().message);
    return FileResult::failed;
  }
  if (file_state(path) != before_reading) {
    return FileResult::skipped;  // written to while we read it: its writer's next event brings it back
  }
  auto parsed = parser::parse_source(*text, path);
  if (!parsed) {
    report_error(m_output.display(path), "error", path, file.module, parsed.error().message);
    return FileResult::failed;
  }
  if (!parsed->errors.empty()) {
    report_syntax_error(path, file.module, parsed->errors.front());
    return FileResult::failed;
  }
  if (!m_options.allow_empty && parsed->definitions.empty() && file.had_definitions.value_or(true)) {
    report_deletes_everything(path, file.module);
    return FileResult::failed;
  }
  file.live.reset();  // each process says what is live for it
  bool ok = apply_save_over_tree({m_options.pid, path, *text, m_options.force}, m_output);
  m_applied_changes = ok;
  return ok ? FileResult::applied : FileResult::failed;
}

// A master without the application's modules: its first worker says which
// files to watch.
void Autoreload::refresh_worker_modules(bool announce) {
  if (!m_options.tree || !m_options.paths.empty()) {
    return;
  }
  if (auto worker = first_worker_agent(m_options.pid, m_options.force)) {
    refresh_modules(*worker, announce);
  }
}

// A file with no definition left where the module has some is what a save
// caught half written looks like (a tool that truncates, then writes).
bool Autoreload::deletes_everything(loader::AgentChannel& agent, const std::string& path, const WatchedFile& file,
                                    const parser::SourceFile& after) {
  if (!after.definitions.empty()) {
    return false;
  }
  if (file.live) {
    return parser::deletes_every_definition(*file.live, after);
  }
  // The first save of this file: what is live is the agent's to say, when
  // it holds the text that is live; else the file as it was when watched.
  loader::Agent typed(agent);
  auto dry_run =
      patch::patch_parsed(typed, patch::ModuleLocation{file.module, path, std::nullopt}, after, nullptr, true);
  if (!dry_run) {
    return false;  // the apply reports the error
  }
  if (dry_run->first_touch) {
    return file.had_definitions.value_or(true);
  }
  return std::any_of(dry_run->changes.begin(), dry_run->changes.end(),
                     [](const patch::AppliedChange& change) { return change.verdict == differ::Verdict::remove; });
}

void Autoreload::report_deletes_everything(const std::string& path, const std::string& module) const {
  std::string message = "has no definitions left: applying it would delete every definition of " + module +
                        " (nothing applied; --allow-empty applies it)";
  if (m_output.json_output()) {
    m_output.event({{"event", "would_delete_all"},
                    {"file", path},
                    {"module", module},
                    {"pid", m_options.pid},
                    {"message", message}});
  } else {
    m_output.line(m_output.display(path), message, m_output.yellow());
  }
}

void Autoreload::handle(const std::vector<watcher::FileEvent>& events) {
  std::vector<std::string> changed;
  for (const auto& event : events) {
    if (event.kind == watcher::FileEvent::Kind::overflow) {
      // Events were lost: look at every file we know the target uses.
      for (const auto& [path, file] : m_files) {
        if (!file.module.empty()) {
          changed.push_back(path);
        }
      }
      continue;
    }
    std::string path = real_path(event.path);
    if (event.kind == watcher::FileEvent::Kind::deleted) {
      auto it = m_files.find(path);
      if (it == m_files.end() || it->second.module.empty()) {
        continue;
      }
      if (m_output.json_output()) {
        m_output.event({{"event", "deleted"}, {"file", path}, {"module", it->second.module}});
      } else {
        m_output.line(m_output.display(path), "was deleted; the live module keeps its code", m_output.yellow());
      }
      continue;
    }
    changed.push_back(path);
  }
  if (changed.empty()) {
    return;
  }
  auto agent = connect(false);
  if (!agent) {
    if (!m_target.alive()) {
      return;  // the loop reports the exit
    }
    if (m_output.json_output()) {
      m_output.event({{"event", "error"}, {"pid", m_options.pid}, {"message", agent.error().message}});
    } else {
      m_output.line("", "cannot reach the agent: " + agent.error().message + " (nothing applied)", m_output.red());
    }
    return;
  }
  std::set<std::string> done;
  for (const auto& path : changed) {
    if (done.insert(path).second) {
      apply(**agent, path);
    }
  }
}

// --once: the target's module files, or the files below the paths given,
// as the watch would cover them.
std::vector<std::string> Autoreload::files_to_compare(loader::AgentChannel& agent) {
  std::vector<std::string> files;
  if (m_options.paths.empty()) {
    refresh_modules(agent, false);
    refresh_worker_modules(false);
    for (const auto& [path, file] : m_files) {
      files.push_back(path);
    }
  }
  for (const auto& path : m_options.paths) {
    std::string real = real_path(path);
    std::error_code error;
    if (!std::filesystem::is_directory(real, error)) {
      files.push_back(real);
      continue;
    }
    for (const auto& found : watcher::find_files(real, python_sources())) {
      files.push_back(real_path(found));
    }
  }
  return files;
}

// --once: every file whose text differs from what is live, then exit.
int Autoreload::apply_once() {
  for (const auto& path : m_options.paths) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      print_error("cannot read '" + path + "': no such file or directory", m_options.json);
      return k_exit_usage;
    }
  }
  auto agent = connect(true);
  if (!agent) {
    print_error(agent.error().message, m_options.json);
    return k_exit_failed;
  }
  int code = k_exit_done;
  int applied = 0;
  for (const auto& path : files_to_compare(**agent)) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      continue;
    }
    auto result = apply(**agent, path);
    applied += result == FileResult::applied && m_applied_changes ? 1 : 0;
    if (result == FileResult::failed) {
      code = k_exit_failed;
    }
  }
  if (!m_output.json_output() && applied == 0 && code == k_exit_done) {
    m_output.line("",
                  "nothing to apply: the live code of process " + std::to_string(m_options.pid) + " matches its files",
                  m_output.dim());
  }
  return code;
}

void Autoreload::announce_watching() const {
  if (m_output.json_output()) {
    json files = json::array();
    for (const auto& [path, file] : m_files) {
      files.push_back({{"file", path}, {"module", file.module}});
    }
    json paths = json::array();
    for (const auto& path : m_options.paths) {
      paths.push_back(real_path(path));
    }
    m_output.event({{"event", "watching"},
                    {"pid", m_options.pid},
                    {"files", m_options.paths.empty() ? files : json::array()},
                    {"paths", paths},
                    {"debounce_ms", m_options.debounce_ms}});
    return;
  }
  std::vector<std::string> modules;
  for (const auto& [path, file] : m_files) {
    if (!file.module.empty()) {
      modules.push_back(path);
    }
  }
  std::string what = m_options.paths.empty()
                         ? std::to_string(modules.size()) + " module files (" + m_output.some_names(modules) + ") in " +
                               std::to_string(m_flat_directories.size()) +
                               (m_flat_directories.size() == 1 ? " directory" : " directories")
                         : std::to_string(m_watcher->watched_directories()) + " directories";
  m_output.line("",
                "watching " + what + " for process " + std::to_string(m_options.pid) +
                    (m_options.child ? "" : " (Ctrl-C stops; the process keeps what was applied)"),
                m_output.dim());
}

int Autoreload::report_exit() {
  int code = m_options.child ? *m_target.child_exit_code() : k_exit_done;
  if (m_output.json_output()) {
    m_output.event({{"event", "target_exited"}, {"pid", m_options.pid}, {"status", code}});
  } else {
    m_output.line("",
                  "process " + std::to_string(m_options.pid) + " exited" +
                      (m_options.child ? " with status " + std::to_string(code) : "") + "; stopped watching",
                  m_output.dim());
  }
  return code;
}

int Autoreload::watch_loop() {
  auto next_poll = Clock::now() + m_poll_interval;
  while (!WatchedTarget::stop_requested()) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now());
    auto events = m_watcher->wait(std::max(wait, std::chrono::milliseconds(0)));
    if (!events.empty()) {
      handle(events);
    }
    if (!m_target.alive()) {
      return report_exit();
    }
    if (Clock::now() >= next_poll && !WatchedTarget::stop_requested()) {
      over_tree();  // run --autoreload: notices the workers of a pre-fork server before its first save
      if (m_options.paths.empty()) {
        if (auto agent = connect(false)) {
          refresh_modules(**agent, true);
        }
        refresh_worker_modules(true);
      }
      next_poll = Clock::now() + m_poll_interval;
    }
  }
  if (m_output.json_output()) {
    m_output.event({{"event", "stopped"}, {"pid", m_options.pid}});
  } else {
    m_output.line("", "stopped; process " + std::to_string(m_options.pid) + " keeps what was applied", m_output.dim());
  }
  return k_exit_done;
}

// The watcher and the target, ready to watch; an exit code when they cannot be.
std::optional<int> Autoreload::start() {
  watcher::FileWatcherOptions watch_options;
  watch_options.debounce = std::chrono::milliseconds(std::max(0, m_options.debounce_ms));
  watch_options.filter = python_sources();
  auto created = watcher::FileWatcher::create(std::move(watch_options));
  if (!created) {
    print_error(created.error().message, m_options.json);
    return k_exit_failed;
  }
  m_watcher = std::move(*created);
  m_target.handle_signals(*m_watcher);
  if (m_options.child) {
    if (auto code = m_target.wait_for_agent(*m_watcher, m_output, m_process)) {
      return code;
    }
  } else {
    auto process = loader::require_python_process(m_options.pid);
    if (!process) {
      print_error(process.error().message, m_options.json);
      return k_exit_failed;
    }
    m_process = *process;
  }
  m_target.remember_start();
  if (auto directory = loader::agent_import_directory()) {
    m_agent_directory = real_path(*directory) + "/";
  }
  return std::nullopt;
}

int Autoreload::run() {
  if (auto code = start()) {
    return *code;
  }
  if (m_options.once) {
    return apply_once();
  }
  // Directories first, so no save made after the banner is missed.
  if (auto watching = watch_paths(); !watching) {
    print_error(watching.error().message, m_options.json);
    return k_exit_failed;
  }
  {
    auto agent = connect(!m_options.child);
    if (!agent) {
      if (!m_target.alive()) {
        return report_exit();  // it exited (or was sent SIGTERM) as watching began
      }
      print_error(agent.error().message, m_options.json);
      return k_exit_failed;
    }
    refresh_modules(**agent, false);
  }
  refresh_worker_modules(false);
  announce_watching();
  return watch_loop();
}

}  // namespace

int run_autoreload(const AutoreloadOptions& options) {
  if (options.debounce_ms < 0) {
    print_error("--debounce takes a number of milliseconds >= 0", options.json);
    return k_exit_usage;
  }
  AutoreloadOutput output(options.json);
  Autoreload autoreload(options, output);
  int code = autoreload.run();
  WatchedTarget::stop_handling_signals();
  return code;
}

}  // namespace pyhot::cli
