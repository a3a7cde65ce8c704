#include "cli/tree_patch.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"
#include "loader/process.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

// The hash of the text the agent holds as live for `module`; none when it
// does not know it (never patched, no record of the import).
std::optional<std::string> live_hash(loader::Agent& agent, const std::string& module) {
  auto live = agent.snapshot_hash(module);
  if (!live) {
    return std::nullopt;
  }
  if (live->hash) {
    return live->hash;
  }
  return live->text ? std::optional<std::string>(util::hash_hex(*live->text)) : std::nullopt;
}

// The live hash of each module the label's applied patches changed, taken
// before they are reverted.
std::map<std::string, std::optional<std::string>> live_before_revert(loader::Agent& agent, const std::string& label) {
  std::map<std::string, std::optional<std::string>> before;
  auto patches = agent.history();
  if (patches) {
    for (const auto& patch : *patches) {
      if (patch.label == label && !patch.reverted) {
        before.emplace(patch.module, live_hash(agent, patch.module));
      }
    }
  }
  return before;
}

// Whether the file on disk differs from the code live after a revert: by
// the live text's hash when the agent knows it, else because the disk
// holds the text the revert took away.
bool live_differs_from_disk(loader::Agent& agent, const std::string& module, const std::string& file,
                            const std::optional<std::string>& before) {
  auto disk = util::read_python_file(file);
  if (!disk) {
    return false;
  }
  std::string disk_hash = util::hash_hex(*disk);
  if (auto after = live_hash(agent, module)) {
    return *after != disk_hash;
  }
  return before && *before == disk_hash;
}

// Whether `root` has `module`: a master without it forks workers that
// import the module's file from disk themselves.
bool root_lacks_module(int root, const std::string& module) {
  auto client = open_agent(root, false);
  if (!client) {
    return false;
  }
  auto file = loader::Agent(**client).locate(module);
  return !file && file.error().kind == ErrorKind::not_found;
}

std::string join_pids(const std::vector<int>& pids) {
  std::string out;
  for (int pid : pids) {
    out += (out.empty() ? "" : ", ") + std::to_string(pid);
  }
  return out;
}

// After a failed apply: the processes that failed still run the old code,
// but workers the master forks from now on import the edited file.
std::string failed_apply_note(int root, const std::vector<TreeMember>& members) {
  if (members.empty() || members.front().outcome != MemberOutcome::lacks_module) {
    return {};
  }
  std::vector<int> failed;
  std::string file;
  for (const auto& member : members) {
    if (member.outcome == MemberOutcome::failed) {
      failed.push_back(member.pid);
      file = member.document.value("file", file);
    }
  }
  if (failed.empty()) {
    return {};
  }
  std::string what = file.empty() ? "the module's file" : file;
  return "Note: process " + std::to_string(root) + " does not have the module, so the workers it forks from now on " +
         "import " + what + " from disk, which process(es) " + join_pids(failed) +
         " do not run: fix what failed and reload again with --tree, or put the live text back in the file.";
}

// After a revert: where the reverted module's file on disk still holds the
// edit, and the master lacks the module, new workers will run the edit.
std::string reverted_disk_note(int root, const std::vector<TreeMember>& members) {
  std::map<std::string, std::string> differing;  // module -> file
  for (const auto& member : members) {
    for (const auto& entry : member.document.value("disk_differs", json::array())) {
      differing.emplace(entry.value("module", ""), entry.value("file", ""));
    }
  }
  std::string note;
  for (const auto& [module, file] : differing) {
    if (!root_lacks_module(root, module)) {
      continue;
    }
    note += (note.empty() ? "" : "\n") + std::string("Note: process ") + std::to_string(root) + " does not have " +
            module + ", so the workers it forks from now on import " + file +
            " from disk, which still differs from the reverted code: restore the file (e.g. `git checkout -- " + file +
            "`) or they will run the edit.";
  }
  return note;
}

std::optional<std::string> disk_hash(const std::string& file) {
  auto text = util::read_python_file(file);
  return text ? std::optional<std::string>(util::hash_hex(*text)) : std::nullopt;
}

// Whether every process that had the module exited during the command and
// the ones alive now have not imported it: a master without the module
// whose workers were all recycled while the command ran.
bool only_exited_processes_had_it(const std::vector<TreeMember>& members) {
  OutcomeCounts counts;
  for (const auto& member : members) {
    counts.add(member.outcome);
  }
  return counts.exited > 0 && counts.running_it() == 0 && counts.failed == 0 && counts.not_reached == 0;
}

std::string holders_exited_note(const std::string& file) {
  return "Note: every process that had the module exited during the command; the ones alive now have not "
         "imported it and will import " +
         file + " from disk, which holds the text this command applies.";
}

void print_tree_result(const std::vector<TreeMember>& members, json extra, bool json_output, const std::string& what,
                       const std::string& note) {
  if (json_output) {
    json document = tree_to_json(members);
    document.update(extra);
    if (!note.empty()) {
      document["note"] = note;
    }
    print_json(document);
    return;
  }
  print_tree(members, what);
  if (!note.empty()) {
    std::cout << note << "\n";
  }
}

}  // namespace

int run_labelled_over_tree(int root, const std::string& label, bool dry_run, bool json_output, const std::string& what,
                           const TreeCommand& command, const std::string& file) {
  auto before = file.empty() ? std::nullopt : disk_hash(file);
  auto members = run_over_tree(root, command, dry_run ? ForkedChildren::contacted : ForkedChildren::inherit);
  int code = tree_exit_code(members);
  json extra = json::object();
  std::string note;
  if (code != k_exit_done && before && only_exited_processes_had_it(members) && disk_hash(file) == before) {
    code = k_exit_done;
    note = holders_exited_note(file);
    extra["ok"] = true;
  }
  bool applied = std::any_of(members.begin(), members.end(), [](const TreeMember& member) {
    return member.outcome == MemberOutcome::done && member.document.contains("patch") &&
           member.document["patch"].is_number_integer();
  });
  if (note.empty() && !dry_run) {
    note = failed_apply_note(root, members);
  }
  if (applied) {
    extra["label"] = label;
  }
  print_tree_result(members, extra, json_output, what, note);
  if (applied && !json_output) {
    std::cout << "Patch " << label << ": `pyhot revert " << root << " " << label
              << " --tree` undoes it in every process.\n";
  }
  return code;
}

namespace {

// One process's part of `history --tree`: its patches of its own (the
// labelled ones are printed once for the tree).
int history_in(int pid, const ProcessOptions& options, json& document) {
  std::unique_ptr<loader::AgentClient> holder;
  if (open_or_report(pid, options.force, options.json, document, holder) == nullptr) {
    return k_exit_failed;
  }
  auto patches = loader::Agent(*holder).history();
  if (!patches) {
    // With its kind the runner gives the process its longer grace to end:
    // a worker exiting slowly can break the connection well before it ends.
    document = {
        {"ok", false}, {"error", patches.error().message}, {"error_kind", error_kind_name(patches.error().kind)}};
    std::cerr << "pyhot: " << patches.error().message << "\n";
    return k_exit_failed;
  }
  document = {{"ok", true}, {"patches", to_json(*patches)}};
  int own = 0;
  for (const auto& patch : *patches) {
    if (!patch.label.empty()) {
      continue;
    }
    ++own;
    std::cout << "#" << patch.id << "  " << format_time(patch.time) << "  " << patch.module
              << (patch.reverted ? "  (reverted)" : "") << "\n";
    for (const auto& change : patch.changes) {
      std::cout << "      " << std::left << std::setw(9) << change.verdict << " " << change.qualname << "\n";
    }
  }
  if (own == 0) {
    std::cout << "No patches of its own.\n";
  }
  return k_exit_done;
}

}  // namespace

int run_tree_history(const ProcessOptions& options) {
  auto members = run_over_tree(options.pid, [&](int pid, json& document) {
    int code = history_in(pid, options, document);
    document["during"] = "the history request";  // what a process that exits meanwhile is said to have exited during
    return code;
  });
  if (options.json) {
    print_json(tree_to_json(members));
    return tree_exit_code(members);
  }
  // Each label once, in the order the root (or the first process) applied it.
  std::vector<std::string> order;
  std::map<std::string, std::pair<json, std::string>> first;  // label -> (entry, "pid #id, ...")
  for (const auto& member : members) {
    for (const auto& patch : member.document.value("patches", json::array())) {
      std::string label = patch.value("label", "");
      if (label.empty()) {
        continue;
      }
      if (first.count(label) == 0) {
        order.push_back(label);
        first[label].first = patch;
      }
      auto& reached = first[label].second;
      reached += (reached.empty() ? "" : ", ") + std::to_string(member.pid) + " #" +
                 std::to_string(patch.value("id", 0)) + (patch.value("reverted", false) ? " (reverted)" : "");
    }
  }
  if (order.empty()) {
    std::cout << "No tree-wide patches (made with --tree) in the tree of process " << options.pid << ".\n";
  }
  for (const auto& label : order) {
    const auto& [entry, reached] = first[label];
    std::cout << label << "  " << format_time(entry.value("time", 0.0)) << "  " << entry.value("module", "")
              << "  processes " << reached << "\n";
    for (const auto& change : entry.value("changes", json::array())) {
      std::cout << "      " << std::left << std::setw(9) << change.value("verdict", "") << " "
                << change.value("qualname", "") << "\n";
    }
  }
  print_tree(members, "answered");
  return tree_exit_code(members);
}

namespace {

// The label `revert --tree [ID]` means: the root's patch ID (or its newest
// still applied), which must carry one; else the newest labelled patch still
// applied anywhere below it (a master without the module has none).
Result<std::string> resolve_label(int root, std::optional<int> id, bool force) {
  std::vector<int> pids{root};
  if (!id) {
    auto below = loader::descendant_pids(root);
    pids.insert(pids.end(), below.begin(), below.end());
  }
  std::optional<loader::PatchRecord> newest;
  for (int pid : pids) {
    auto client = open_agent(pid, force);
    if (!client) {
      if (pid == root) {
        return client.error();
      }
      continue;
    }
    auto patches = loader::Agent(**client).history();
    if (!patches) {
      continue;
    }
    for (const auto& patch : *patches) {
      if (id && patch.id == *id) {
        if (patch.label.empty()) {
          return make_error(ErrorKind::refused,
                            "patch " + std::to_string(*id) + " of process " + std::to_string(root) +
                                " was applied to that process alone and has no tree-wide label (ids differ per "
                                "process): `pyhot revert " +
                                std::to_string(root) + " " + std::to_string(*id) + "` reverts it there");
        }
        return patch.label;
      }
      if (!id && !patch.reverted && !patch.label.empty() && (!newest || patch.time > newest->time)) {
        newest = patch;
      }
    }
    if (id) {
      return make_error(ErrorKind::not_found, "process " + std::to_string(root) + " has no patch " +
                                                  std::to_string(*id) + " (see `pyhot history " + std::to_string(root) +
                                                  " --tree`)");
    }
  }
  if (!newest) {
    return make_error(ErrorKind::not_found, "no patch made with --tree is still applied in the tree of process " +
                                                std::to_string(root) + " (see `pyhot history " + std::to_string(root) +
                                                " --tree`)");
  }
  return newest->label;
}

int revert_label_in(int pid, const std::string& label, const ProcessOptions& options, json& document) {
  std::unique_ptr<loader::AgentClient> holder;
  if (open_or_report(pid, options.force, options.json, document, holder) == nullptr) {
    return k_exit_failed;
  }
  loader::Agent agent(*holder);
  auto before = live_before_revert(agent, label);
  auto reverted = agent.revert_label(label);
  if (!reverted) {
    document = {{"ok", false}, {"error", reverted.error().message}, {"label", label}};
    document["not_reached"] = reverted.error().kind == ErrorKind::not_found;
    if (!options.json) {
      std::cout << "Error: " << error_text(reverted.error()) << "\n";
    }
    return k_exit_failed;
  }
  if (reverted->patches.empty()) {
    document = {
        {"ok", false}, {"already_live", true}, {"label", label}, {"error", "patch " + label + " is already reverted"}};
    if (!options.json) {
      std::cout << "Error: Patch " << label << " is already reverted.\n";
    }
    return k_exit_failed;
  }
  json ids = json::array();
  json differing = json::array();
  for (const auto& patch : reverted->patches) {
    ids.push_back(patch.id);
    auto was = before.find(patch.module);
    if (live_differs_from_disk(agent, patch.module, patch.file, was == before.end() ? std::nullopt : was->second)) {
      differing.push_back({{"module", patch.module}, {"file", patch.file}});
    }
  }
  document = {{"ok", true},
              {"label", label},
              {"reverted", reverted->reverted},
              {"patches", ids},
              {"changes", to_json(reverted->changes)},
              {"disk_differs", differing}};
  if (!options.json) {
    std::cout << "Reverted patch " << label << " (#" << reverted->reverted << " here):";
    for (const auto& change : reverted->changes) {
      std::cout << " " << change.qualname;
    }
    std::cout << "\n";
  }
  return k_exit_done;
}

}  // namespace

int run_label_revert(const ProcessOptions& options) {
  std::string label;
  if (options.arguments.size() == 1 && is_patch_label(options.arguments[0])) {
    label = options.arguments[0];
  } else {
    std::optional<int> id;
    if (options.arguments.size() == 1) {
      try {
        id = std::stoi(options.arguments[0]);
      } catch (const std::exception&) {
        print_error("revert takes PID [ID|LABEL]: '" + options.arguments[0] + "' is neither", options.json);
        return k_exit_usage;
      }
    }
    auto resolved = resolve_label(options.pid, id, options.force);
    if (!resolved) {
      print_error(error_text(resolved.error()), options.json);
      return k_exit_failed;
    }
    label = *resolved;
  }
  auto one = [&](int pid, json& document) { return revert_label_in(pid, label, options, document); };
  if (!options.tree) {
    json document;
    int code = one(options.pid, document);
    if (options.json) {
      print_json(document);
    }
    return code;
  }
  auto members = run_over_tree(options.pid, one, ForkedChildren::inherit);
  print_tree_result(members, {{"label", label}}, options.json, "reverted", reverted_disk_note(options.pid, members));
  return tree_exit_code(members);
}

}  // namespace pyhot::cli
