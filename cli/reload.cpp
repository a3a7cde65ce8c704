// Commands that talk to a live process: reload, module, history, revert, ps.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/instrument_session.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "cli/process_tree.hpp"
#include "cli/tree_patch.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "loader/process.hpp"
#include "patch/baseline.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;
using patch::PatchOutcome;

namespace {

constexpr int k_truncate_above_lines = 20;
constexpr int k_truncated_keep_lines = 10;

// Runs `one` for the process, or with --tree for it and every Python process
// below it until the tree is stable (cli/process_tree.hpp).
int for_each_target(int pid, bool tree, bool json_output, const std::string& what,
                    const std::function<int(int, json&)>& one) {
  if (!tree) {
    json document;
    int code = one(pid, document);
    if (json_output) {
      print_json(document);
    }
    return code;
  }
  auto members = run_over_tree(pid, one);
  if (json_output) {
    print_json(tree_to_json(members));
  } else {
    print_tree(members, what);
  }
  return tree_exit_code(members);
}

void print_extracted_source(const std::string& source, bool verbose) {
  std::cout << "Extracted method source:\n";
  auto lines = util::split_lines(source);
  int count = static_cast<int>(lines.size());
  if (verbose || count <= k_truncate_above_lines) {
    for (auto line : lines) {
      std::cout << line << "\n";
    }
    return;
  }
  for (int i = 0; i < k_truncated_keep_lines; ++i) {
    std::cout << lines[static_cast<std::size_t>(i)] << "\n";
  }
  std::cout << "... (" << count - 2 * k_truncated_keep_lines << " more lines; -v shows them all)\n";
  for (int i = count - k_truncated_keep_lines; i < count; ++i) {
    std::cout << lines[static_cast<std::size_t>(i)] << "\n";
  }
}

// Without the imported text the file was compared with the live module:
// say, per kind, what could not be.
void print_not_compared(const PatchOutcome& outcome) {
  std::cout << "Not compared (no record of the imported text of " << outcome.module
            << "); definitions, literal constants, imports and deleted functions and classes were compared with the"
               " live module:\n";
  for (const auto& line : outcome.not_compared) {
    std::cout << "  " << line << "\n";
  }
  std::cout << "  `pyhot reload --assume-imported REV` takes git revision REV as the imported text; a program"
               " started with `pyhot run` has it recorded.\n";
  if (!outcome.bytecode_cache.empty()) {
    std::cout << "  " << outcome.bytecode_cache << ".\n";
  }
}

// Each refused change's line names the file: no "Located file path" after the error.
void print_refused(const PatchOutcome& outcome) {
  std::cout << "Error: this edit cannot be applied to the live process; nothing was changed.\n";
  for (const auto& change : outcome.refused) {
    std::cout << outcome.file << ":" << change.line << "  " << change.qualname << "  restart  " << change.reason
              << "\n";
  }
}

// A reload that failed, as one line. When the process is gone, that is what
// happened, whatever the socket saw on the way (a reset, a closed
// connection, no answer), and nothing of it is left to patch. `what` is
// the file (or module) being reloaded; the line names it when the error
// does not, instead of a "Located file path" after it.
void print_reload_error(int pid, const Error& error, const std::string& what) {
  if (pid > 0 && loader::process_has_ended(pid)) {
    std::cout << "Error: process " << pid << " exited during the reload of " << what
              << "; nothing is left to patch (started again, it imports the file as it is now).\n";
    return;
  }
  std::string text = error_text(error);
  if (text.find(what) == std::string::npos) {
    text += " (reloading " + what + ")";
  }
  std::cout << "Error: Unexpected error during reload: " << text << "\n";
}

int reload_method(loader::Agent& agent, const ReloadOptions& options, int pid, json& document) {
  const std::string& module = options.target[0];
  std::string qualname = options.target.size() == 3 ? options.target[1] + "." + options.target[2] : options.target[1];
  std::string method = options.target.back();
  document = {{"ok", false}, {"module", module}, {"qualname", qualname}};
  auto where = patch::locate_module(agent, module);
  if (!where) {
    document["error"] = where.error().message;
    document["lacks_module"] = where.error().kind == ErrorKind::not_found;
    if (!options.json) {
      if (pid > 0 && loader::process_has_ended(pid)) {
        print_reload_error(pid, where.error(), module);
      } else {
        std::cout << "Error: Unexpected error during reload: " << error_text(where.error()) << "\n";
      }
    }
    return k_exit_failed;
  }
  document["file"] = where->file;
  auto text = util::read_source(where->file);
  if (!text) {
    document["error"] = text.error().message;
    if (!options.json) {
      std::cout << "Error: Unexpected error during reload: " << error_text(text.error()) << "\n";
    }
    return k_exit_failed;
  }
  auto outcome = patch::patch_definition(agent, *where, std::move(*text), qualname, options.dry_run);
  std::string source = outcome ? outcome->definition_source : std::string{};
  if (!outcome) {
    document["error"] = outcome.error().message;
    if (options.json) {
      return k_exit_failed;
    }
    if (outcome.error().kind == ErrorKind::not_found && outcome.error().message == qualname) {
      std::cout << "Error: Cannot locate method " << method << " in module " << module << ".\n";
      return k_exit_failed;
    }
    print_reload_error(pid, outcome.error(), where->file);
    return k_exit_failed;
  }
  json result = to_json(*outcome);
  result["ok"] = outcome->refused.empty() && !outcome->changes.empty();
  result["qualname"] = qualname;
  result["source"] = source;
  document = result;
  if (!outcome->refused.empty()) {
    if (!options.json) {
      print_refused(*outcome);
    }
    return k_exit_failed;
  }
  if (!outcome->changed_anything()) {
    document["error"] = "Method source has not changed.";
    document["already_live"] = true;
    if (!options.json) {
      std::cout << "Error: Method source has not changed.\n";
      std::cout << "Located file path: " << where->file << "\n";
      print_extracted_source(source, options.verbose);
    }
    return k_exit_failed;
  }
  if (!options.json) {
    std::cout << (options.dry_run ? "Dry run: the reload would succeed; nothing was changed.\n"
                                  : "Reload is done successfully.\n");
    std::cout << "Located file path: " << where->file << "\n";
    print_extracted_source(source, options.verbose);
  }
  return k_exit_done;
}

// A text with no `def` or `class` left whose reload would delete what the
// live module defines: a file truncated by a tool that writes it next, or
// emptied by mistake. Only such texts pay for the dry run that tells.
bool would_delete_everything(loader::Agent& agent, const patch::ModuleLocation& where, const std::string& text) {
  if (text.find("def") != std::string::npos || text.find("class") != std::string::npos) {
    return false;
  }
  auto probe = patch::patch_file(agent, where, text, /*dry_run=*/true, /*utf8_checked=*/false);
  return probe && std::any_of(probe->changes.begin(), probe->changes.end(), [](const patch::AppliedChange& change) {
           return change.verdict == differ::Verdict::remove;
         });
}

int reload_file(loader::Agent& agent, const ReloadOptions& options, int pid, json& document) {
  document = {{"ok", false}, {"target", options.target[0]}};
  auto where = patch::locate_module(agent, options.target[0]);
  if (!where) {
    document["error"] = where.error().message;
    document["lacks_module"] = where.error().kind == ErrorKind::not_found;
    if (!options.json) {
      if (pid > 0 && loader::process_has_ended(pid)) {
        print_reload_error(pid, where.error(), options.target[0]);
      } else {
        std::cout << "Error: Unexpected error during reload: " << error_text(where.error()) << "\n";
      }
    }
    return k_exit_failed;
  }
  // Checked for UTF-8 by patch_file: only what changed, when it can.
  auto text = util::read_source_unchecked(where->file);
  if (!text) {
    document["error"] = text.error().message;
    if (!options.json) {
      std::cout << "Error: Unexpected error during reload: " << error_text(text.error()) << "\n";
    }
    return k_exit_failed;
  }
  if (!options.allow_empty && would_delete_everything(agent, *where, *text)) {
    std::string message = where->file + " has no definitions left: reloading it would delete every definition of " +
                          where->module + "; nothing was changed (a file caught half written looks like this; " +
                          "--allow-empty reloads it)";
    document["error"] = message;
    if (!options.json) {
      std::cout << "Error: " << message << "\n";
    }
    return k_exit_failed;
  }
  if (!options.assume_imported.empty()) {
    auto imported = patch::text_at_revision(where->file, options.assume_imported);
    auto recorded = imported ? patch::assume_imported(agent, *where, *imported) : Result<bool>(imported.error());
    if (!recorded) {
      document["error"] = recorded.error().message;
      if (!options.json) {
        std::cout << "Error: --assume-imported " << options.assume_imported << ": " << error_text(recorded.error())
                  << "\n";
      }
      return k_exit_failed;
    }
  }
  auto outcome = patch::patch_file(agent, *where, std::move(*text), options.dry_run, /*utf8_checked=*/false);
  if (!outcome) {
    document["error"] = outcome.error().message;
    document["file"] = where->file;
    if (!options.json) {
      print_reload_error(pid, outcome.error(), where->file);
    }
    return k_exit_failed;
  }
  document = to_json(*outcome);
  document["ok"] = outcome->refused.empty();
  document["already_live"] = outcome->refused.empty() && !outcome->changed_anything();
  if (!outcome->refused.empty()) {
    if (!options.json) {
      print_refused(*outcome);
    }
    return k_exit_failed;
  }
  if (options.json) {
    return k_exit_done;
  }
  if (!outcome->changed_anything()) {
    if (outcome->first_touch) {
      std::cout << "No definition of " << where->module << " differs from the live code.\n";
      print_not_compared(*outcome);
    } else {
      std::cout << "Nothing to reload: the live code of " << where->module << " already matches " << where->file
                << ".\n";
    }
    return k_exit_done;
  }
  std::cout << (options.dry_run ? "Dry run: the reload would succeed; nothing was changed.\n"
                                : "Reload is done successfully.\n");
  std::cout << "Located file path: " << where->file << " (module " << where->module << ")\n";
  for (const auto& change : outcome->changes) {
    // A statement removed from the file is kept, not run: its verdict is
    // only what the change would have been.
    bool kept = change.status == loader::Status::kept;
    std::string verb = !options.dry_run ? past_tense(change)
                       : kept           ? std::string("would keep")
                                        : "would " + std::string(differ::to_string(change.verdict));
    std::cout << "  " << std::left << std::setw(10) << verb << " " << change.qualname << "  (line " << change.line
              << ")";
    if (kept) {
      std::cout << "  removed from the file; stays in the live module";
    }
    if (!change.message.empty()) {
      std::cout << "  " << change.message;
    }
    std::cout << "\n";
  }
  if (outcome->patch_id && !options.tree) {
    // Under --tree the one command that undoes the patch in every process
    // follows the tree (cli/tree_patch.hpp).
    std::cout << "Patch " << *outcome->patch_id << ": `pyhot revert " << pid << " " << *outcome->patch_id
              << "` undoes it.\n";
  }
  if (outcome->first_touch) {
    print_not_compared(*outcome);
  }
  return k_exit_done;
}

}  // namespace

int run_reload(const ReloadOptions& options) {
  if (options.target.empty() || options.target.size() > 3) {
    print_error("reload takes PID FILE.py, PID MODULE, or PID MODULE [CLASS] METHOD", options.json);
    return k_exit_usage;
  }
  // A file too large to reload is refused before any process is attached
  // (a module's file is known only once its process says where it is).
  if (auto sized = util::check_source_size(options.target[0]); options.target.size() == 1 && !sized) {
    if (options.json) {
      print_json({{"ok", false}, {"target", options.target[0]}, {"error", sized.error().message}});
    } else {
      std::cout << "Error: " << sized.error().message << "\n";
    }
    return k_exit_failed;
  }
  std::string label = options.tree ? make_tree_label() : std::string();
  auto one = [&](int pid, json& document) {
    std::unique_ptr<loader::AgentClient> holder;
    auto* agent = open_or_report(pid, options.force, options.json, document, holder);
    if (agent == nullptr) {
      return k_exit_failed;
    }
    loader::Agent typed(*agent);
    typed.label_patches(label);
    return options.target.size() == 1 ? reload_file(typed, options, pid, document)
                                      : reload_method(typed, options, pid, document);
  };
  if (options.tree) {
    // The file a FILE reload applies (a module's file is known to its processes only).
    std::error_code error;
    bool is_file = options.target.size() == 1 && std::filesystem::is_regular_file(options.target[0], error);
    return run_labelled_over_tree(options.pid, label, options.dry_run, options.json, "run the new code", one,
                                  is_file ? util::absolute_path(options.target[0]) : std::string());
  }
  return for_each_target(options.pid, false, options.json, "run the new code", one);
}

int run_module(const ProcessOptions& options) {
  if (options.arguments.size() != 1) {
    print_error("module takes PID FILE", options.json);
    return k_exit_usage;
  }
  std::unique_ptr<loader::AgentClient> holder;
  json document;
  auto* agent = open_or_report(options.pid, options.force, options.json, document, holder);
  if (agent == nullptr) {
    if (options.json) {
      print_json(document);
    }
    return k_exit_failed;
  }
  std::string file = util::absolute_path(options.arguments[0]);
  auto found = loader::Agent(*agent).module_for_file(file);
  if (!found) {
    if (options.json) {
      print_json({{"ok", false}, {"file", file}, {"error", found.error().message}});
    } else {
      std::cerr << "pyhot: " << found.error().message << "\n";
    }
    return k_exit_failed;
  }
  if (options.json) {
    print_json({{"ok", true}, {"file", file}, {"module", found->module}});
  } else {
    std::cout << found->module << "\n";
  }
  return k_exit_done;
}

int run_history(const ProcessOptions& options) {
  if (options.tree) {
    return run_tree_history(options);
  }
  return for_each_target(options.pid, options.tree, options.json, "answered", [&](int pid, json& document) {
    std::unique_ptr<loader::AgentClient> holder;
    auto* agent = open_or_report(pid, options.force, options.json, document, holder);
    if (agent == nullptr) {
      return k_exit_failed;
    }
    std::vector<loader::ActiveInstrumentation> active;
    auto patches = loader::Agent(*agent).history(&active);
    if (!patches) {
      document = {{"ok", false}, {"error", patches.error().message}};
      if (!options.json) {
        std::cerr << "pyhot: " << patches.error().message << "\n";
      }
      return k_exit_failed;
    }
    document = {{"ok", true}, {"patches", to_json(*patches)}};
    if (options.json) {
      document["instrumentations"] = list_instrumentations(active, pid, false);
      return k_exit_done;
    }
    if (patches->empty() && active.empty()) {
      std::cout << "No patches applied to process " << pid << ".\n";
    }
    list_instrumentations(active, pid, true);
    for (const auto& patch : *patches) {
      std::cout << "#" << patch.id << "  " << format_time(patch.time) << "  " << patch.module << "  "
                << patch.changes.size() << " change" << (patch.changes.size() == 1 ? "" : "s")
                << (patch.reverted ? "  (reverted)" : "") << "\n";
      for (const auto& change : patch.changes) {
        std::cout << "      " << std::left << std::setw(9) << change.verdict << " " << change.qualname << "\n";
      }
    }
    return k_exit_done;
  });
}

int run_revert(const ProcessOptions& options) {
  if (options.arguments.size() > 1) {
    print_error("revert takes PID [ID]", options.json);
    return k_exit_usage;
  }
  if (options.arguments.size() == 1 && instrumentation_id(options.arguments[0])) {
    int session = *instrumentation_id(options.arguments[0]);
    return for_each_target(options.pid, false, options.json, "removed", [&](int pid, json& document) {
      std::unique_ptr<loader::AgentClient> holder;
      auto* agent = open_or_report(pid, options.force, options.json, document, holder);
      if (agent == nullptr) {
        return k_exit_failed;
      }
      loader::Agent api(*agent);
      return remove_instrumentation(api, session, options.json, document);
    });
  }
  // Patch ids differ per process: a tree is reverted by its patch's label.
  if (options.tree || (options.arguments.size() == 1 && is_patch_label(options.arguments[0]))) {
    return run_label_revert(options);
  }
  std::optional<int> patch_id;
  if (options.arguments.size() == 1) {
    try {
      patch_id = std::stoi(options.arguments[0]);
    } catch (const std::exception&) {
      print_error("revert takes PID [ID]: '" + options.arguments[0] + "' is not a patch id", options.json);
      return k_exit_usage;
    }
  }
  return for_each_target(options.pid, options.tree, options.json, "reverted", [&](int pid, json& document) {
    std::unique_ptr<loader::AgentClient> holder;
    auto* agent = open_or_report(pid, options.force, options.json, document, holder);
    if (agent == nullptr) {
      return k_exit_failed;
    }
    auto reverted = loader::Agent(*agent).revert(patch_id);
    if (!reverted) {
      document = {{"ok", false}, {"error", reverted.error().message}};
      if (!options.json) {
        std::cout << "Error: " << error_text(reverted.error()) << "\n";
      }
      return k_exit_failed;
    }
    document = {{"ok", true},
                {"reverted", reverted->reverted},
                {"changes", to_json(reverted->changes)},
                {"kept", reverted->kept}};
    if (!options.json) {
      std::cout << "Reverted patch " << reverted->reverted << ":";
      for (const auto& change : reverted->changes) {
        std::cout << " " << change.qualname;
      }
      std::cout << "\n";
      if (!reverted->kept.empty()) {
        std::cout << "  kept (added by the patch; code still running may use them):";
        for (const auto& name : reverted->kept) {
          std::cout << " " << name;
        }
        std::cout << "\n";
      }
    }
    return k_exit_done;
  });
}

int run_ps(bool json_output) {
  json rows = json::array();
  auto processes = loader::list_python_processes();
  if (!json_output) {
    std::cout << std::left << std::setw(8) << "PID" << std::setw(7) << "AGENT"
              << "COMMAND\n";
  }
  for (const auto& process : processes) {
    bool agent = loader::agent_is_listening(process);
    rows.push_back({{"pid", process.pid},
                    {"agent", agent},
                    {"uid", process.uid},
                    {"python", process.python_mapping},
                    {"command", process.command_line}});
    if (!json_output) {
      std::string command =
          process.command_line.size() > 100 ? process.command_line.substr(0, 97) + "..." : process.command_line;
      std::cout << std::left << std::setw(8) << process.pid << std::setw(7) << (agent ? "yes" : "-") << command << "\n";
    }
  }
  if (json_output) {
    print_json({{"ok", true}, {"processes", rows}});
  }
  return k_exit_done;
}

int run_agent_path() {
  auto dir = loader::agent_import_directory();
  if (!dir) {
    print_error(dir.error().message, false);
    return k_exit_failed;
  }
  std::cout << *dir << "\n";
  return k_exit_done;
}

}  // namespace pyhot::cli
