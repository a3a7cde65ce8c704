// `pyhot profile PID PATTERN... --tree`: every Python process of the tree
// (a pre-fork master and its workers, and workers forked while it runs)
// profiled at once, each reported apart; a process that exits meanwhile is
// a line of the report, not a failure.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/profile.hpp"
#include "cli/profile_process.hpp"
#include "cli/profile_report.hpp"
#include "loader/process.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

// A process failing on its way out (a recycled worker) is given this long
// to finish exiting before its failure counts.
constexpr auto k_exit_grace = std::chrono::milliseconds(500);
// A worker forked a moment ago may be starting the agent it inherited just
// as pyhot connects: it is asked once more after this pause.
constexpr auto k_retry_pause = std::chrono::milliseconds(200);

enum class Outcome {
  profiling,
  profiled,
  unmatched,  // no pattern names a function there (a master that never imports the module)
  exited,     // ended while profiled: its calls are lost
  failed,
};

struct TreeProcess {
  int pid = 0;
  Outcome outcome = Outcome::failed;
  std::unique_ptr<ProcessProfiler> profiler;
  std::optional<ProcessProfile> profile;
  std::string error;
};

bool exited_within(int pid, std::chrono::milliseconds grace) {
  auto deadline = Clock::now() + grace;
  while (!loader::process_has_ended(pid)) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class TreeProfile {
 public:
  explicit TreeProfile(const ProfileOptions& options) : m_options(options) {}

  // The root the first time, then the Python processes below it not yet
  // seen (a recycled pid is a new process: its start time differs).
  void add_new_processes() {
    std::vector<int> pids;
    if (m_processes.empty()) {
      pids.push_back(m_options.pid);
      m_seen.insert({m_options.pid, loader::process_start_time(m_options.pid)});
    }
    for (int pid : loader::descendant_pids(m_options.pid)) {
      auto identity = std::make_pair(pid, loader::process_start_time(pid));
      if (m_seen.contains(identity)) {
        continue;
      }
      auto info = loader::inspect_process(pid);
      if (info && info->is_python()) {
        m_seen.insert(identity);
        pids.push_back(pid);
      }
    }
    for (int pid : pids) {
      m_processes.push_back(start(pid));
    }
  }

  // Renews every lease; a process whose read fails has exited or failed.
  void read_all(bool live) {
    if (live && isatty(1)) {
      std::cout << "\x1b[H\x1b[2J";
    }
    for (auto& process : m_processes) {
      if (process.outcome != Outcome::profiling) {
        continue;
      }
      auto read = process.profiler->read(live);
      if (!read) {
        lost(process, read.error());
      } else if (live) {
        print_live(std::cout, *read);
      }
    }
    std::cout << std::flush;
  }

  void finish_all() {
    for (auto& process : m_processes) {
      if (process.outcome != Outcome::profiling) {
        continue;
      }
      auto removed = process.profiler->finish();
      if (!removed) {
        lost(process, removed.error());
        continue;
      }
      process.outcome = Outcome::profiled;
      process.profile = std::move(*removed);
    }
  }

  int count(Outcome outcome) const {
    int n = 0;
    for (const auto& process : m_processes) {
      n += process.outcome == outcome ? 1 : 0;
    }
    return n;
  }
  int function_count() const {
    int n = 0;
    for (const auto& process : m_processes) {
      n = std::max(n, process.profiler ? process.profiler->function_count() : 0);
    }
    return n;
  }
  const std::vector<TreeProcess>& processes() const { return m_processes; }
  // The first process's error (what is wrong when no process was profiled).
  std::string first_error() const {
    for (const auto& process : m_processes) {
      if (!process.error.empty()) {
        return process.error;
      }
    }
    return "every process exited";
  }

  std::vector<ProcessProfile> profiles() const {
    std::vector<ProcessProfile> out;
    for (const auto& process : m_processes) {
      if (process.profile) {
        out.push_back(*process.profile);
      }
    }
    return out;
  }

 private:
  TreeProcess start(int pid) {
    TreeProcess process;
    process.pid = pid;
    auto started = ProcessProfiler::start(pid, m_options);
    if (!started.profiler && !started.unmatched && !loader::process_has_ended(pid)) {
      std::this_thread::sleep_for(k_retry_pause);
      started = ProcessProfiler::start(pid, m_options);
    }
    for (const auto& note : started.notes) {
      if (m_notes.insert(note).second) {
        std::cerr << "pyhot: " << note << "\n";
      }
    }
    if (started.profiler) {
      process.outcome = Outcome::profiling;
      process.profiler = std::move(started.profiler);
    } else if (exited_within(pid, k_exit_grace)) {
      process.outcome = Outcome::exited;
    } else {
      process.outcome = started.unmatched ? Outcome::unmatched : Outcome::failed;
      process.error = started.error.message;
    }
    return process;
  }

  void lost(TreeProcess& process, const Error& error) {
    process.profiler.reset();
    if (exited_within(process.pid, k_exit_grace)) {
      process.outcome = Outcome::exited;
      return;
    }
    process.outcome = Outcome::failed;
    process.error = "the profile was lost: " + error.message + " (the agent removed the instrumentation)";
  }

  const ProfileOptions& m_options;
  std::vector<TreeProcess> m_processes;
  std::set<std::pair<int, std::uint64_t>> m_seen;
  std::set<std::string> m_notes;
};

const char* outcome_word(Outcome outcome) {
  switch (outcome) {
    case Outcome::profiling:
    case Outcome::profiled:
      return "profiled";
    case Outcome::unmatched:
      return "unmatched";
    case Outcome::exited:
      return "exited";
    case Outcome::failed:
      return "failed";
  }
  return "failed";
}

int exit_code(const TreeProfile& tree) {
  return tree.count(Outcome::failed) == 0 && tree.count(Outcome::profiled) > 0 ? k_exit_done : k_exit_failed;
}

json tree_json(const TreeProfile& tree) {
  json documents = profile_json(tree.profiles())["processes"];
  json processes = json::array();
  std::size_t next = 0;
  for (const auto& process : tree.processes()) {
    json document = process.profile ? documents[next++] : json{{"pid", process.pid}};
    document["outcome"] = outcome_word(process.outcome);
    if (!process.error.empty()) {
      document["error"] = process.error;
    }
    processes.push_back(std::move(document));
  }
  return {{"ok", exit_code(tree) == k_exit_done}, {"processes", processes}};
}

void print_tree_profile(const TreeProfile& tree) {
  for (const auto& process : tree.processes()) {
    std::cout << "== process " << process.pid;
    switch (process.outcome) {
      case Outcome::profiling:
      case Outcome::profiled:
        std::cout << "\n";
        print_profile(std::cout, *process.profile);
        break;
      case Outcome::unmatched:
        std::cout << ": none of the functions named is loaded there; skipped\n";
        break;
      case Outcome::exited:
        std::cout << ": exited during the profile (its calls are not reported)\n";
        break;
      case Outcome::failed:
        std::cout << ": " << process.error << "\n";
        break;
    }
  }
  int profiled = tree.count(Outcome::profiled);
  std::cout << profiled << (profiled == 1 ? " process" : " processes") << " profiled";
  if (int failed = tree.count(Outcome::failed); failed > 0) {
    std::cout << "; " << failed << " failed";
  }
  if (int exited = tree.count(Outcome::exited); exited > 0) {
    std::cout << "; " << exited << " exited during the profile";
  }
  if (int unmatched = tree.count(Outcome::unmatched); unmatched > 0) {
    std::cout << "; " << unmatched << " without a function the patterns name, skipped";
  }
  std::cout << ".\n";
}

}  // namespace

int run_profile_tree(const ProfileOptions& options) {
  InterruptScope interrupts;
  TreeProfile tree(options);
  tree.add_new_processes();
  if (tree.count(Outcome::profiling) == 0) {
    tree.finish_all();
    bool none = tree.count(Outcome::failed) == 0;
    print_error(none ? tree.first_error() + " (in no process of the tree of " + std::to_string(options.pid) + ")"
                     : "nothing was profiled in the tree of " + std::to_string(options.pid),
                options.json);
    if (!options.json && !none) {
      print_tree_profile(tree);
    }
    return k_exit_failed;
  }
  if (!options.json && !options.live) {
    int processes = tree.count(Outcome::profiling);
    std::cerr << (options.lines ? "Timing the lines of " : "Profiling ") << tree.function_count()
              << (tree.function_count() == 1 ? " function" : " functions") << " in " << processes
              << (processes == 1 ? " process" : " processes") << " of the tree of " << options.pid
              << (options.duration_seconds < 1e9 ? " for " + format_ms(options.duration_seconds) + " s" : "")
              << " (Ctrl-C to stop)\n";
  }
  auto end = Clock::now() +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_seconds));
  auto every = profile_read_interval(options);
  while (!interrupted() && Clock::now() < end) {
    pause_until(std::min(end, Clock::now() + every));
    if (interrupted() || Clock::now() >= end) {
      break;
    }
    tree.read_all(options.live);
    // Workers forked meanwhile (a recycled worker's replacement) are
    // profiled from now on: a fork drops the instrumentation it inherits.
    tree.add_new_processes();
  }
  tree.finish_all();
  if (auto written = write_profile_files(options, tree.profiles()); !written) {
    print_error(written.error().message, options.json);
    return k_exit_failed;
  }
  if (options.json) {
    print_json(tree_json(tree));
  } else {
    print_tree_profile(tree);
  }
  return exit_code(tree);
}

}  // namespace pyhot::cli
