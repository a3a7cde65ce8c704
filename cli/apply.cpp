// `pyhot bundle FILE... -o patch.pyhot` and `pyhot apply PID patch.pyhot`:
// a patch made once and applied to many processes, only where the code
// live is the code it was made against.
#include <iomanip>
#include <iostream>

#include "cli/bundle.hpp"
#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "cli/tree_patch.hpp"
#include "loader/agent_api.hpp"
#include "patch/live_patch.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

enum class LiveState { expected, already_new, other };

// What is live for the module against what the bundle expects: the agent's
// snapshot (by hash, or its text); without one, the bundle's texts are the
// candidates the agent proves against the live code (nothing is executed).
Result<LiveState> live_state(loader::Agent& agent, const BundleModule& module) {
  auto live = agent.snapshot_hash(module.module);
  if (!live) {
    return live.error();
  }
  std::optional<std::string> hash = live->hash;
  if (!hash && live->text) {
    hash = util::hash_hex(*live->text);
  }
  if (hash) {
    return *hash == module.expects                ? LiveState::expected
           : *hash == util::hash_hex(module.text) ? LiveState::already_new
                                                  : LiveState::other;
  }
  auto proven = agent.prove_baseline(module.module, {module.base, module.text});
  if (!proven) {
    return proven.error();
  }
  if (!proven->has_value()) {
    return LiveState::other;
  }
  return **proven == 0 ? LiveState::expected : LiveState::already_new;
}

struct Present {
  const BundleModule* module;
  patch::ModuleLocation where;
};

int refuse(json& document, const std::string& message, bool json_output) {
  document["ok"] = false;
  document["error"] = message;
  if (!json_output) {
    std::cout << "Error: " << message << "\n";
  }
  return k_exit_failed;
}

void print_changes(const patch::PatchOutcome& outcome, bool dry_run) {
  for (const auto& change : outcome.changes) {
    std::string verb = dry_run ? "would " + std::string(differ::to_string(change.verdict)) : past_tense(change);
    std::cout << "  " << std::left << std::setw(10) << verb << " " << outcome.module << "." << change.qualname
              << "  (line " << change.line << ")\n";
  }
}

// Every module's baseline is checked and every patch compiled in a dry run
// before the first one is applied; a later failure reverts what this
// process got under the bundle's label.
int apply_bundle_in(int pid, const Bundle& bundle, const ApplyOptions& options, json& document) {
  std::unique_ptr<loader::AgentClient> holder;
  if (open_or_report(pid, options.force, options.json, document, holder) == nullptr) {
    return k_exit_failed;
  }
  loader::Agent agent(*holder);
  agent.label_patches(bundle.id);
  document = {{"ok", false}, {"bundle", bundle.id}};
  std::vector<Present> present;
  int already = 0;
  for (const auto& module : bundle.modules) {
    auto where = patch::locate_module(agent, module.module);
    if (!where) {
      if (where.error().kind == ErrorKind::not_found) {
        continue;  // this process never imported it
      }
      return refuse(document, error_text(where.error()), options.json);
    }
    auto state = live_state(agent, module);
    if (!state) {
      return refuse(document, error_text(state.error()), options.json);
    }
    if (*state == LiveState::other) {
      document["baseline_differs"] = module.module;
      return refuse(document,
                    "the code live for " + module.module + " in process " + std::to_string(pid) +
                        " is not the text bundle " + bundle.id + " was made against, at " + bundle.revision +
                        "; nothing was changed.",
                    options.json);
    }
    if (*state == LiveState::already_new) {
      ++already;
    } else {
      present.push_back({&module, *where});
    }
  }
  if (present.empty()) {
    document["ok"] = already > 0;
    document["already_live"] = already > 0;
    document["lacks_module"] = already == 0;
    if (!options.json) {
      std::cout << (already > 0
                        ? "Nothing to apply: process " + std::to_string(pid) + " already runs bundle " + bundle.id
                        : "Error: process " + std::to_string(pid) + " has none of the bundle's modules")
                << ".\n";
    }
    return already > 0 ? k_exit_done : k_exit_failed;
  }
  json modules = json::array();
  for (bool dry_run : {true, false}) {
    if (!dry_run && options.dry_run) {
      break;
    }
    for (const auto& item : present) {
      auto outcome = patch::patch_file(agent, item.where, item.module->text, dry_run);
      std::string failure = !outcome ? error_text(outcome.error())
                            : !outcome->refused.empty()
                                ? item.module->module + " needs a restart: " + outcome->refused.front().qualname + " " +
                                      outcome->refused.front().reason
                                : std::string();
      if (!failure.empty()) {
        if (!dry_run) {
          (void)agent.revert_label(bundle.id);
        }
        return refuse(document, failure + " (nothing was changed)", options.json);
      }
      if (dry_run == options.dry_run) {
        modules.push_back(to_json(*outcome));
        if (outcome->patch_id && !document.contains("patch")) {
          document["patch"] = *outcome->patch_id;
        }
        if (!options.json) {
          print_changes(*outcome, dry_run);
        }
      }
    }
  }
  document["ok"] = true;
  document["modules"] = modules;
  if (!options.json) {
    std::cout << (options.dry_run ? "Dry run: bundle " + bundle.id + " would apply; nothing was changed.\n"
                                  : "Bundle " + bundle.id + " is applied.\n");
    if (!options.dry_run && !options.tree) {
      std::cout << "`pyhot revert " << pid << " " << bundle.id << "` undoes it.\n";
    }
  }
  return k_exit_done;
}

}  // namespace

int run_bundle(const BundleOptions& options) {
  auto bundle = make_bundle(options.files, options.revision);
  if (!bundle) {
    print_error(error_text(bundle.error()), options.json);
    return k_exit_failed;
  }
  json document = to_json(*bundle);
  if (auto written = util::write_file(options.output, document.dump(1) + "\n"); !written) {
    print_error(error_text(written.error()), options.json);
    return k_exit_failed;
  }
  if (options.json) {
    json modules = json::array();
    for (const auto& module : bundle->modules) {
      modules.push_back({{"module", module.module}, {"path", module.path}, {"expects", module.expects}});
    }
    print_json({{"ok", true},
                {"bundle", bundle->id},
                {"file", options.output},
                {"revision", bundle->revision},
                {"modules", modules}});
    return k_exit_done;
  }
  std::cout << "Wrote " << options.output << ": bundle " << bundle->id << " against " << bundle->revision << "\n";
  for (const auto& module : bundle->modules) {
    std::cout << "  " << module.module << "  (" << module.path << ")\n";
  }
  return k_exit_done;
}

int run_apply(const ApplyOptions& options) {
  auto bundle = read_bundle(options.bundle);
  if (!bundle) {
    print_error(error_text(bundle.error()), options.json);
    return k_exit_failed;
  }
  auto one = [&](int pid, json& document) { return apply_bundle_in(pid, *bundle, options, document); };
  if (options.tree) {
    return run_labelled_over_tree(options.pid, bundle->id, options.dry_run, options.json,
                                  options.dry_run ? "can take the bundle" : "run the bundle", one);
  }
  json document;
  int code = one(options.pid, document);
  if (options.json) {
    print_json(document);
  }
  return code;
}

}  // namespace pyhot::cli
