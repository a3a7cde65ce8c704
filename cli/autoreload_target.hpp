// Internal to autoreload: the process it patches, attached to by pid or
// supervised as pyhot's own child (`pyhot run --autoreload`): whether it
// still runs, its exit status, and the signals meant for it.
#pragma once

#include <optional>

#include "loader/process.hpp"
#include "watcher/file_watcher.hpp"

namespace pyhot::cli {

class AutoreloadOutput;

class WatchedTarget {
 public:
  // `child`: pid is pyhot's child; SIGINT/SIGTERM sent to pyhot go to it.
  WatchedTarget(int pid, bool child) : m_pid(pid), m_child(child) {}

  // SIGINT/SIGTERM stop the watch (or go to the child) and SIGCHLD ends a
  // wait of `watcher`, which must outlive the handlers: call
  // stop_handling_signals() before it goes.
  void handle_signals(const watcher::FileWatcher& watcher) const;
  static void stop_handling_signals();
  // A stop signal arrived (attached targets only: a child is sent it instead).
  static bool stop_requested();

  int pid() const { return m_pid; }
  bool is_child() const { return m_child; }

  // Records the start time, so a recycled pid is not mistaken for the target.
  void remember_start();
  bool alive();
  // The child's exit status once it has exited (128 + signal when killed).
  std::optional<int> child_exit_code();

  // The child's agent starts with its interpreter: waits for it to listen,
  // saying so once after a while. The child's exit code if it exits first.
  std::optional<int> wait_for_agent(watcher::FileWatcher& watcher, const AutoreloadOutput& output,
                                    loader::ProcessInfo& process);

 private:
  int m_pid = 0;
  bool m_child = false;
  unsigned long long m_start_time = 0;
  std::optional<int> m_child_status;
};

}  // namespace pyhot::cli
