#include "cli/autoreload_tree.hpp"

#include <iostream>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "cli/process_tree.hpp"
#include "loader/agent_api.hpp"
#include "loader/process.hpp"
#include "patch/live_patch.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

int apply_in(int pid, const TreeSave& save, const std::string& label, const AutoreloadOutput& output, json& document) {
  std::string shown = output.display(save.path);
  auto client = open_agent(pid, save.force);
  if (!client) {
    document = {{"ok", false}, {"error", client.error().message}, {"error_kind", error_kind_name(client.error().kind)}};
    output.line(shown, "process " + std::to_string(pid) + ": " + client.error().message + " (nothing applied)",
                output.red());
    return k_exit_failed;
  }
  loader::Agent agent(**client);
  agent.label_patches(label);
  auto where = patch::locate_module(agent, save.path);
  if (!where) {
    document = {{"ok", false}, {"error", where.error().message}};
    document["lacks_module"] = where.error().kind == ErrorKind::not_found;
    output.line(shown, "process " + std::to_string(pid) + ": " + where.error().message + " (nothing applied)",
                output.red());
    return k_exit_failed;
  }
  auto outcome = patch::patch_file(agent, *where, save.text, false);
  if (!outcome) {
    document = {{"ok", false}, {"error", outcome.error().message}, {"file", save.path}};
    output.line(shown, "process " + std::to_string(pid) + ": " + outcome.error().message + " (nothing applied)",
                output.red());
    return k_exit_failed;
  }
  document = to_json(*outcome);
  document["already_live"] = outcome->refused.empty() && !outcome->changed_anything();
  report_patch(output, pid, where->module, save.path, *outcome, json::object(), false);
  return outcome->refused.empty() ? k_exit_done : k_exit_failed;
}

}  // namespace

bool apply_save_over_tree(const TreeSave& save, const AutoreloadOutput& output) {
  std::string label = make_tree_label();
  auto members = run_over_tree(
      save.root, [&](int pid, json& document) { return apply_in(pid, save, label, output, document); },
      ForkedChildren::inherit);
  OutcomeCounts counts;
  for (const auto& member : members) {
    bool shown_before = counts.running_it() > 0;
    counts.add(member.outcome);
    if (member.outcome != MemberOutcome::done && member.outcome != MemberOutcome::confirmed &&
        member.outcome != MemberOutcome::failed) {
      continue;  // exited, or without the module: counted in the last line
    }
    // Each process's events in JSON; in words, what the save changed once
    // and every failure.
    if (output.json_output() || member.outcome == MemberOutcome::failed || !shown_before) {
      std::cout << member.output << std::flush;
    }
  }
  bool ok = tree_exit_code(members) == k_exit_done;
  if (output.json_output()) {
    json tree = tree_to_json(members);
    json processes = json::array();
    for (const auto& process : tree["processes"]) {
      processes.push_back({{"pid", process["pid"]}, {"outcome", process["outcome"]}});
    }
    output.event({{"event", "tree"},
                  {"file", save.path},
                  {"root", save.root},
                  {"label", label},
                  {"ok", ok},
                  {"processes", processes}});
    return ok;
  }
  std::string text = "in " + std::to_string(counts.running_it()) + " of " + std::to_string(counts.alive_with_module()) +
                     " processes of the tree of " + std::to_string(save.root);
  if (counts.exited > 0) {
    text += "; " + std::to_string(counts.exited) + " exited meanwhile";
  }
  if (counts.lacks_module + counts.not_reached > 0) {
    text += "; " + std::to_string(counts.lacks_module + counts.not_reached) + " without the module";
  }
  if (counts.done > 0) {
    text += " (patch " + label + ")";
  }
  output.line(output.display(save.path), text, counts.failed > 0 ? output.red() : output.dim());
  return ok;
}

std::unique_ptr<loader::AgentClient> first_worker_agent(int root, bool force) {
  for (int pid : loader::descendant_pids(root)) {
    auto info = loader::inspect_process(pid);
    if (!info || !info->is_python()) {
      continue;
    }
    if (auto client = open_agent(pid, force)) {
      return std::move(*client);
    }
  }
  return nullptr;
}

}  // namespace pyhot::cli
