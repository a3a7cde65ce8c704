// pyhot: change the code of a running Python process without restarting it.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "cli/probe.hpp"
#include "cli/profile.hpp"
#include "cli/trace.hpp"
#include "cli/watch.hpp"
#include "loader/agent_source.hpp"

namespace {

// A pid pyhot could attach to: a positive number.
const CLI::Validator k_process_id(
    [](std::string& value) {
      char* end = nullptr;
      long pid = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || pid <= 0 || pid > INT32_MAX) {
        return "'" + value + "' is not a process id: give the pid of a running Python process";
      }
      return std::string();
    },
    "PID");

// The commands that read and write the parsed cache: its directory is
// checked before anything else is done (cli/live_process.hpp).
template <typename Run>
int with_verified_cache(bool json, Run run) {
  if (auto verified = pyhot::cli::verify_shared_cache_directory(); !verified) {
    pyhot::cli::print_error(verified.error().message, json);
    return pyhot::cli::k_exit_failed;
  }
  return run();
}

// `bundle` and `apply`: a patch made once and applied on many hosts.
struct FleetCommands {
  pyhot::cli::BundleOptions bundle;
  pyhot::cli::ApplyOptions apply;
};

void add_fleet_commands(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  static FleetCommands fleet;  // read by the callbacks after parsing
  auto* bundle_command = app.add_subcommand(
      "bundle", "Make a patch to apply elsewhere: FILE... -o patch.pyhot (each file against its text at --base)");
  bundle_command->add_option("FILE", fleet.bundle.files, "Edited Python files")->required();
  bundle_command->add_option("-o,--output", fleet.bundle.output, "The bundle file to write")->required();
  bundle_command->add_option("--base", fleet.bundle.revision,
                             "Git revision whose texts must be live where it is applied (default HEAD)");
  bundle_command->add_flag("--json", fleet.bundle.json, "Machine-readable output");
  bundle_command->callback([&] { code = run_bundle(fleet.bundle); });

  auto* apply_command = app.add_subcommand(
      "apply", "Apply a bundle to a live process, only where the code live is what it was made against");
  apply_command->add_option("PID", fleet.apply.pid, "Target process id")->required()->check(k_process_id);
  apply_command->add_option("BUNDLE", fleet.apply.bundle, "A file made by `pyhot bundle`")->required();
  apply_command->add_flag("--tree", fleet.apply.tree, "Also every Python process below PID (pre-fork servers)");
  apply_command->add_flag("--dry-run", fleet.apply.dry_run,
                          "Check the baseline and compile in the target, apply nothing");
  apply_command->add_flag("--force", fleet.apply.force, "Attach even where remote debugging was disabled (3.14+)");
  apply_command->add_flag("--json", fleet.apply.json, "Machine-readable output");
  apply_command->callback([&] { code = with_verified_cache(fleet.apply.json, [] { return run_apply(fleet.apply); }); });
}

// `stack`, `inspect`, `instances`: looking at a live process without changing it.
struct LookCommands {
  pyhot::cli::StackOptions stack;
  pyhot::cli::InspectOptions inspect;
  pyhot::cli::InspectOptions instances;
};

void add_look_commands(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  static LookCommands look;  // read by the callbacks after parsing
  auto* stack_command =
      app.add_subcommand("stack", "Every thread's Python stack (and asyncio task's, --async) of a live process: PID");
  stack_command->add_option("PID", look.stack.pid, "Target process id")->required()->check(k_process_id);
  stack_command->add_flag("--async", look.stack.tasks, "Also every pending asyncio task with its await chain");
  stack_command->add_flag("--locals", look.stack.locals, "Also each frame's local variables (bounded reprs)");
  stack_command
      ->add_option("--timeout", look.stack.timeout_ms,
                   "Milliseconds the agent has to answer before pyhot reads from outside (default 3000)")
      ->check(CLI::Range(100, 600000));
  stack_command->add_flag("--force", look.stack.force, "Attach even where remote debugging was disabled (3.14+)");
  stack_command->add_flag("--json", look.stack.json, "Machine-readable output");
  stack_command->callback([&] { code = run_stack(look.stack); });

  auto* inspect_command = app.add_subcommand(
      "inspect", "Show a module's globals, or a global or attribute of a live process: PID MODULE[.NAME.ATTR...]");
  inspect_command->add_option("PID", look.inspect.pid, "Target process id")->required()->check(k_process_id);
  inspect_command->add_option("PATH", look.inspect.path, "MODULE, MODULE.NAME, MODULE.NAME.ATTR...")->required();
  inspect_command->add_option("--expr", look.inspect.expr,
                              "A Python expression evaluated in the target over the value, named obj");
  inspect_command->add_option("--depth", look.inspect.depth, "Levels of members to show (default 1)")
      ->check(CLI::Range(0, 10));
  inspect_command->add_flag("--force", look.inspect.force, "Attach even where remote debugging was disabled (3.14+)");
  inspect_command->add_flag("--json", look.inspect.json, "Machine-readable output");
  inspect_command->callback([&] { code = run_inspect(look.inspect); });

  auto* instances_command = app.add_subcommand(
      "instances",
      "Live instances of a class in a live process, found through the garbage collector: PID MODULE.CLASS");
  instances_command->add_option("PID", look.instances.pid, "Target process id")->required()->check(k_process_id);
  instances_command->add_option("CLASS", look.instances.path, "MODULE.CLASS")->required();
  instances_command->add_option("--limit", look.instances.limit, "How many to show (default 20)")
      ->check(CLI::Range(0, 100000));
  instances_command->add_option("--expr", look.instances.expr,
                                "A Python expression shown for each instance, named obj");
  instances_command->add_flag("--force", look.instances.force,
                              "Attach even where remote debugging was disabled (3.14+)");
  instances_command->add_flag("--json", look.instances.json, "Machine-readable output");
  instances_command->callback([&] { code = run_instances(look.instances); });
}

CLI::Validator duration_check() {
  return CLI::Validator(
      [](std::string& value) {
        return pyhot::cli::parse_duration(value) > 0 ? std::string()
                                                     : "'" + value + "' is not a duration (10s, 500ms, 2m)";
      },
      "DURATION");
}

void add_watch_command(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  static WatchCommandOptions watch;  // read by the callbacks after parsing
  static std::string watch_duration;
  static std::string watch_lease = "5s";
  auto* watch_command = app.add_subcommand(
      "watch",
      "Show each call of a live function (arguments, return value or exception, time): PID MODULE [CLASS] METHOD");
  watch_command->add_option("PID", watch.pid, "Target process id")->required()->check(k_process_id);
  watch_command->add_option("TARGET", watch.target, "MODULE [CLASS] METHOD, as `reload` takes them")->required();
  watch_command->add_option("-n", watch.count, "Stop after N matching calls")->check(CLI::PositiveNumber);
  watch_command->add_option(
      "--filter", watch.filter,
      "Python expression over the arguments (and _return, _exception); only calls where it is true");
  watch_command->add_option("--expr", watch.exprs, "Print these expressions instead of the arguments and return value");
  watch_command->add_flag("--exceptions", watch.exceptions, "Only calls that raised");
  watch_command
      ->add_option("--duration", watch_duration, "Stop after this long: 30s, 500ms, 2m (default: until Ctrl-C)")
      ->check(duration_check());
  watch_command->add_option("--depth", watch.depth, "How deep reprs go into containers (3)")->check(CLI::Range(1, 20));
  watch_command->add_option("--length", watch.length, "Longest repr of one value, in characters (120)")
      ->check(CLI::Range(8, 100000));
  watch_command
      ->add_option("--lease", watch_lease,
                   "The agent removes the watch when pyhot has not renewed it for this long (5s)")
      ->check(duration_check());
  watch_command->add_flag("--json", watch.json, "One JSON object per line and call");
  watch_command->add_flag("--force", watch.force, "Attach even where remote debugging was disabled (3.14+)");
  watch_command->callback([&code] {
    watch.duration_seconds = watch_duration.empty() ? 0 : parse_duration(watch_duration);
    watch.lease_seconds = parse_duration(watch_lease);
    code = run_watch(watch);
  });
}

void add_probe_command(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  static ProbeCommandOptions probe;  // read by the callbacks after parsing
  static std::string probe_duration;
  static std::string probe_lease = "5s";
  auto* probe_command = app.add_subcommand(
      "probe",
      "At a line of a live function, before it runs: print expressions or its locals, or run code: PID FILE:LINE");
  probe_command->add_option("PID", probe.pid, "Target process id")->required()->check(k_process_id);
  probe_command->add_option("TARGET", probe.target, "FILE:LINE, or MODULE [CLASS] FUNCTION with --var")->required();
  probe_command->add_option("--print", probe.prints, "Expressions to print at the line");
  probe_command->add_flag("--locals", probe.locals, "Print every local variable at the line (what pdb shows there)");
  probe_command->add_option("--code", probe.code,
                            "Python statements to run at the line, with the function's variables (a copy) and "
                            "globals; what they print() is shown here");
  probe_command->add_option("--var", probe.var, "Print every value assigned to this variable, with the line");
  probe_command->add_option("--filter", probe.filter, "Only where this expression over the variables is true");
  probe_command->add_option("-n", probe.count, "Stop after N hits")->check(CLI::PositiveNumber);
  probe_command->add_option("--duration", probe_duration, "Stop after this long: 30s, 500ms, 2m")
      ->check(duration_check());
  probe_command->add_option("--depth", probe.depth, "How deep reprs go into containers (3)")->check(CLI::Range(1, 20));
  probe_command->add_option("--length", probe.length, "Longest repr of one value, in characters (120)")
      ->check(CLI::Range(8, 100000));
  probe_command
      ->add_option("--lease", probe_lease,
                   "The agent removes the probe when pyhot has not renewed it for this long (5s)")
      ->check(duration_check());
  probe_command->add_flag("--json", probe.json, "One JSON object per line and hit");
  probe_command->add_flag("--force", probe.force, "Attach even where remote debugging was disabled (3.14+)");
  probe_command->callback([&code] {
    probe.duration_seconds = probe_duration.empty() ? 0 : parse_duration(probe_duration);
    probe.lease_seconds = parse_duration(probe_lease);
    code = run_probe(probe);
  });
}

void add_trace_command(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  static TraceCommandOptions trace;  // read by the callbacks after parsing
  static std::string trace_duration;
  static std::string trace_lease = "5s";
  auto* trace_command = app.add_subcommand(
      "trace", "For each call of a live function, the tree of the calls it made, timed: PID MODULE [CLASS] METHOD");
  trace_command->add_option("PID", trace.pid, "Target process id")->required()->check(k_process_id);
  trace_command->add_option("TARGET", trace.target, "MODULE [CLASS] METHOD, as `reload` takes them")->required();
  trace_command->add_option("-n", trace.count, "Stop after N calls")->check(CLI::PositiveNumber);
  trace_command->add_option("--min-ms", trace.min_ms, "Leave out calls shorter than this (and traced calls)")
      ->check(CLI::Range(0.0, 3600000.0));
  trace_command->add_option("--depth", trace.depth, "How deep the tree goes (20)")->check(CLI::Range(1, 1000));
  trace_command->add_option("--duration", trace_duration, "Stop after this long: 30s, 500ms, 2m")
      ->check(duration_check());
  trace_command
      ->add_option("--lease", trace_lease,
                   "The agent removes the trace when pyhot has not renewed it for this long (5s)")
      ->check(duration_check());
  trace_command->add_flag("--json", trace.json, "One JSON object per line and call");
  trace_command->add_flag("--force", trace.force, "Attach even where remote debugging was disabled (3.14+)");
  trace_command->callback([&code] {
    trace.duration_seconds = trace_duration.empty() ? 0 : parse_duration(trace_duration);
    trace.lease_seconds = parse_duration(trace_lease);
    code = run_trace(trace);
  });
}

// watch, probe, trace: diagnostics that stream what a live function does.
void add_diagnostic_commands(CLI::App& app, int& code) {
  add_watch_command(app, code);
  add_probe_command(app, code);
  add_trace_command(app, code);
}

// Every command's --help ends with an example.
void add_examples(CLI::App& app) {
  static const std::pair<const char*, const char*> k_examples[] = {
      {"defs", "pyhot defs app/views.py"},
      {"check", "pyhot check HEAD\n  pyhot check --staged"},
      {"reload",
       "pyhot reload 4242 app/views.py\n  pyhot reload 4242 app/views.py --tree   (a pre-fork master and its workers)"},
      {"module", "pyhot module 4242 app/views.py"},
      {"history", "pyhot history 4242\n  pyhot history 4242 --tree"},
      {"revert", "pyhot revert 4242 3\n  pyhot revert 4242 t-1a2b3c4d --tree   (the label `reload --tree` printed)"},
      {"ps", "pyhot ps"},
      {"agent-path", "pyhot agent-path   (PYTHONPATH=$(pyhot agent-path) lets a program import pyhot_agent)"},
      {"autoreload",
       "pyhot autoreload 4242 app/\n  pyhot autoreload 4242 --tree   (a pre-fork master and its workers)"},
      {"run", "pyhot run --autoreload -- python app.py\n  pyhot run --autoreload -- gunicorn app:wsgi -w 4"},
      {"bundle", "pyhot bundle app/views.py -o fix.pyhot --base v1.4"},
      {"apply", "pyhot apply 4242 fix.pyhot --dry-run\n  pyhot apply 4242 fix.pyhot --tree"},
      {"watch",
       "pyhot watch 4242 shop.pricing price_of -n 3\n  pyhot watch 4242 shop.cart Cart add --filter 'quantity > 10'\n"
       "  pyhot watch 4242 shop.pricing price_of --expr 'item.upper()' --expr _return --exceptions"},
      {"probe",
       "pyhot probe 4242 shop/pricing.py:14 --locals -n 1\n  pyhot probe 4242 shop/pricing.py:14 --print 'total * 2' "
       "--print item\n  pyhot probe 4242 shop/pricing.py:14 --code 'print(len(cart.items))'\n"
       "  pyhot probe 4242 shop.pricing price_of --var total"},
      {"trace", "pyhot trace 4242 app.views results -n 3\n  pyhot trace 4242 app.views View get --min-ms 0.5"},
      {"profile",
       "pyhot profile 4242 app.views.* --duration 10s\n  pyhot profile 4242 app/views.py --flamegraph views.svg\n"
       "  pyhot profile 4242 'app.**' --tree   (a pre-fork master and its workers)\n"
       "  pyhot profile 4242 --lines app.views Order total   (per-line times)"},
      {"stack", "pyhot stack 4242\n  pyhot stack 4242 --async --locals"},
      {"inspect",
       "pyhot inspect 4242 shop.pricing\n  pyhot inspect 4242 shop.pricing.PRICES --depth 2\n  pyhot inspect 4242 "
       "shop.cart.Cart.TAX --expr 'obj * 100'"},
      {"instances",
       "pyhot instances 4242 shop.cart.Cart --limit 5\n  pyhot instances 4242 shop.cart.Cart --expr "
       "'len(obj.items)'"},
  };
  for (const auto& [name, text] : k_examples) {
    for (auto* command : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (command->get_name() == name) {
        command->footer(std::string("Example:\n  ") + text);
      }
    }
  }
}

}  // namespace

// Commands on files alone: defs, check.
void add_source_commands(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  // Options are static: the callbacks read them after parsing.
  static DefsOptions defs;
  auto* defs_command = app.add_subcommand("defs", "List the definitions pyhot sees in a Python file");
  defs_command->add_option("FILE", defs.file, "Python source file")->required();
  defs_command->add_flag("--json", defs.json, "Machine-readable output");
  defs_command->callback([&] { code = run_defs(defs); });

  static CheckOptions check;
  auto* check_command = app.add_subcommand(
      "check", "Say which changes can be applied live and which need a restart (OLD.py NEW.py | REV | --staged)");
  check_command->add_option("PATHS", check.paths, "OLD.py NEW.py, or a git revision to compare the work tree with");
  check_command->add_flag("--staged", check.staged, "Check every staged .py file against HEAD (pre-commit)");
  check_command->add_flag("--json", check.json, "Machine-readable output");
  check_command->callback([&] { code = run_check(check); });
}

// Commands that patch or read one live process: reload, module, history, revert.
void add_patch_commands(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  // Options are static: the callbacks read them after parsing.
  static ReloadOptions reload;
  auto* reload_command = app.add_subcommand(
      "reload", "Make a live process run the current source: PID FILE.py | PID MODULE | PID MODULE [CLASS] METHOD");
  reload_command->footer(
      "Example:\n  pyhot reload 4242 app/views.py\n  pyhot reload 4242 app/views.py --tree   (a pre-fork master and "
      "its workers)");
  reload_command->add_option("PID", reload.pid, "Target process id")->required()->check(k_process_id);
  reload_command->add_option("TARGET", reload.target, "FILE.py, MODULE, or MODULE [CLASS] METHOD")->required();
  reload_command->add_flag("-v,--verbose", reload.verbose, "Show the whole extracted method source");
  reload_command->add_flag("--dry-run", reload.dry_run, "Compile and check in the target, apply nothing");
  reload_command->add_flag("--allow-empty", reload.allow_empty,
                           "Reload even a file that would delete every definition of its module");
  reload_command->add_flag("--tree", reload.tree, "Also every Python process below PID (pre-fork servers)");
  reload_command->add_flag("--force", reload.force, "Attach even where remote debugging was disabled (3.14+)");
  reload_command->add_flag("--json", reload.json, "Machine-readable output");
  reload_command->add_option("--assume-imported", reload.assume_imported,
                             "Take the file's text at this git revision as the one the process imported");
  reload_command->callback([&] { code = with_verified_cache(reload.json, [] { return run_reload(reload); }); });

  static ProcessOptions module;
  auto* module_command = app.add_subcommand("module", "The module name a live process knows a file by");
  module_command->add_option("PID", module.pid, "Target process id")->required()->check(k_process_id);
  module_command->add_option("FILE", module.arguments, "Python source file")->required();
  module_command->add_flag("--json", module.json, "Machine-readable output");
  module_command->callback([&] { code = run_module(module); });

  static ProcessOptions history;
  auto* history_command = app.add_subcommand("history", "Patches applied to a live process");
  history_command->add_option("PID", history.pid, "Target process id")->required()->check(k_process_id);
  history_command->add_flag("--tree", history.tree, "Also every Python process below PID");
  history_command->add_flag("--json", history.json, "Machine-readable output");
  history_command->callback([&] { code = run_history(history); });

  static ProcessOptions revert;
  auto* revert_command = app.add_subcommand("revert", "Undo a patch (default: the newest still applied)");
  revert_command->footer(
      "Example:\n  pyhot revert 4242 3\n  pyhot revert 4242 t-1a2b3c4d --tree   (the label `reload --tree` printed)");
  revert_command->add_option("PID", revert.pid, "Target process id")->required()->check(k_process_id);
  revert_command->add_option("ID", revert.arguments,
                             "Patch id, or iN (an active watch or profile), from `pyhot history`");
  revert_command->add_flag("--tree", revert.tree, "Also every Python process below PID");
  revert_command->add_flag("--json", revert.json, "Machine-readable output");
  revert_command->callback([&] { code = run_revert(revert); });
}

// ps, agent-path and autoreload.
void add_process_commands(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  // Options are static: the callbacks read them after parsing.
  static bool ps_json = false;
  auto* ps_command = app.add_subcommand("ps", "Python processes pyhot can see, and which run an agent");
  ps_command->add_flag("--json", ps_json, "Machine-readable output");
  ps_command->callback([&] { code = run_ps(ps_json); });

  auto* agent_path_command = app.add_subcommand("agent-path", "Print a directory from which pyhot_agent imports");
  agent_path_command->callback([&] { code = run_agent_path(); });

  static AutoreloadOptions autoreload;
  auto* autoreload_command = app.add_subcommand(
      "autoreload", "Apply every save to a live process: PID [PATH...] (default: the files of its own modules)");
  autoreload_command->footer(
      "Example:\n  pyhot autoreload 4242 app/\n  pyhot autoreload 4242 --tree   (a pre-fork master and its workers)");
  autoreload_command->add_option("PID", autoreload.pid, "Target process id")->required()->check(k_process_id);
  autoreload_command->add_option("PATH", autoreload.paths, "Files or directories to watch (directories recursively)");
  autoreload_command->add_option("--debounce", autoreload.debounce_ms,
                                 "Milliseconds a file must be quiet before it is applied (default 20)");
  autoreload_command->add_flag("--once", autoreload.once, "Apply what differs from the live code, then exit");
  autoreload_command->add_flag("--tree", autoreload.tree, "Also every Python process below PID (pre-fork servers)");
  autoreload_command->add_flag("--force", autoreload.force, "Attach even where remote debugging was disabled (3.14+)");
  autoreload_command->add_flag("--json", autoreload.json, "One JSON object per line, per event");
  autoreload_command->add_flag("--allow-empty", autoreload.allow_empty,
                               "Apply a save even when it deletes every definition of its module");
  autoreload_command->callback(
      [&] { code = with_verified_cache(autoreload.json, [] { return run_autoreload(autoreload); }); });
}

// run: a program started with the agent.
void add_run_command(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  // Options are static: the callbacks read them after parsing.
  static RunOptions run;
  auto* run_command = app.add_subcommand("run", "Start a program with the agent: pyhot run -- python app.py [args]");
  run_command->add_flag("--autoreload", run.autoreload, "Also watch its files and apply every save");
  run_command->add_option("--debounce", run.debounce_ms, "Milliseconds to wait for a burst of events (autoreload)");
  run_command->add_flag("--allow-empty", run.allow_empty,
                        "Apply a save even when it deletes every definition of its module (autoreload)");
  run_command->add_option("COMMAND", run.command, "The program and its arguments, after --")->required();
  run_command->callback([&] { code = run_program(run); });
}

// profile: times chosen functions or lines of a live process.
void add_profile_command(CLI::App& app, int& code) {
  using namespace pyhot::cli;
  // Options are static: the callbacks read them after parsing.
  static ProfileOptions profile;
  static std::string profile_duration = "10s";
  auto* profile_command = app.add_subcommand(
      "profile", "Time chosen functions of a live process, then remove the instrumentation: PID PATTERN...");
  profile_command->add_option("PID", profile.pid, "Target process id")->required()->check(k_process_id);
  profile_command
      ->add_option("PATTERN", profile.patterns,
                   "module.qualname, module.*, pkg.**, module.Class.*, or a file; with --lines: MODULE [CLASS] "
                   "FUNCTION or FILE:FIRST-LAST")
      ->required();
  profile_command->add_option("--duration", profile_duration, "How long to profile: 10s, 500ms, 2m (default 10s)")
      ->check(duration_check());
  static std::string profile_lease = "5s";
  profile_command
      ->add_option("--lease", profile_lease,
                   "The agent removes the instrumentation when pyhot has not renewed it for this long (5s)")
      ->check(duration_check());
  profile_command->add_flag("--lines", profile.lines,
                            "Time each line (line_profiler's report): PID --lines MODULE [CLASS] FUNCTION, or "
                            "FILE:FIRST-LAST");
  profile_command->add_flag("--json", profile.json, "Machine-readable output");
  profile_command->add_flag(
      "--live", profile.live,
      "Refresh the table (of the functions, or with --lines of their lines) every second while profiling");
  profile_command->add_option("--flamegraph", profile.flamegraph, "Write a self-contained flame graph SVG");
  profile_command->add_option("--speedscope", profile.speedscope, "Write the profile in speedscope's file format");
  profile_command->add_option("--collapsed", profile.collapsed, "Write folded stacks (flamegraph.pl, inferno)");
  profile_command->add_flag("--tree", profile.tree,
                            "Also every Python process below PID (pre-fork servers), each reported apart");
  profile_command->add_flag("--force", profile.force, "Attach even where remote debugging was disabled (3.14+)");
  profile_command->callback([&] {
    profile.duration_seconds = parse_duration(profile_duration);
    profile.lease_seconds = parse_duration(profile_lease);
    code = run_profile(profile);
  });
}

int main(int argc, char** argv) {
  using namespace pyhot::cli;
  CLI::App app{"pyhot: change the code of a running Python process without restarting it"};
  app.require_subcommand(1);
  // Usage errors are one line that says what to do.
  app.failure_message([](const CLI::App* failed, const CLI::Error& error) {
    std::string command = "pyhot";
    for (const auto* sub : failed->get_subcommands()) {
      command += " " + sub->get_name();
    }
    return "pyhot: " + std::string(error.what()) + " (see `" + command + " --help`)\n";
  });
  app.set_version_flag("--version", "pyhot " + std::string(pyhot::loader::pyhot_version()));
  int code = k_exit_done;
  add_source_commands(app, code);
  add_patch_commands(app, code);
  add_process_commands(app, code);
  add_fleet_commands(app, code);
  add_run_command(app, code);
  add_profile_command(app, code);
  add_look_commands(app, code);
  add_diagnostic_commands(app, code);
  add_examples(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int exit = app.exit(error);
    return exit == 0 ? 0 : k_exit_usage;
  } catch (const std::exception& error) {
    std::cerr << "pyhot: unexpected error: " << error.what() << "\n";
    return k_exit_failed;
  }
  return code;
}
