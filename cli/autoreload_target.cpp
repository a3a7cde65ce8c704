#include "cli/autoreload_target.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/autoreload_output.hpp"
#include "cli/commands.hpp"
#include "loader/agent_client.hpp"

namespace pyhot::cli {

namespace {

constexpr std::chrono::milliseconds k_agent_wait_note{5000};

// Set from signal handlers.
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_child_pid = 0;
const watcher::FileWatcher* g_watcher = nullptr;

void on_stop_signal(int signal_number, siginfo_t* info, void* /*context*/) {
  if (g_child_pid > 0) {
    // A Ctrl-C from the terminal (SI_KERNEL) reached the child already: it
    // is in our process group. Pass on only what was sent to pyhot alone.
    if (info == nullptr || info->si_code != SI_KERNEL) {
      ::kill(static_cast<pid_t>(g_child_pid), signal_number);
    }
  } else {
    g_stop = 1;
  }
  if (g_watcher != nullptr) {
    g_watcher->interrupt();
  }
}

void on_child_signal(int /*signal_number*/) {
  if (g_watcher != nullptr) {
    g_watcher->interrupt();
  }
}

// Field 22 of /proc/PID/stat (start time in clock ticks), so a recycled pid
// is not mistaken for the target; 0 when the process is gone or a zombie.
unsigned long long process_start_time(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) {
    return 0;
  }
  auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  fields >> field;  // state (field 3)
  if (field == "Z" || field == "X") {
    return 0;
  }
  for (int i = 4; i < 22 && fields >> field; ++i) {
  }
  unsigned long long start = 0;
  fields >> start;
  return start;
}

}  // namespace

void WatchedTarget::handle_signals(const watcher::FileWatcher& watcher) const {
  g_watcher = &watcher;
  if (m_child) {
    g_child_pid = m_pid;
  }
  struct sigaction action {};
  action.sa_sigaction = on_stop_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct sigaction child {};
  child.sa_handler = on_child_signal;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigemptyset(&child.sa_mask);
  sigaction(SIGCHLD, &child, nullptr);
}

void WatchedTarget::stop_handling_signals() { g_watcher = nullptr; }

bool WatchedTarget::stop_requested() { return g_stop != 0; }

void WatchedTarget::remember_start() { m_start_time = process_start_time(m_pid); }

bool WatchedTarget::alive() {
  if (m_child) {
    return !child_exit_code().has_value();
  }
  auto now = process_start_time(m_pid);
  return now != 0 && (m_start_time == 0 || now == m_start_time);
}

std::optional<int> WatchedTarget::child_exit_code() {
  if (m_child_status) {
    return m_child_status;
  }
  int status = 0;
  pid_t done = ::waitpid(m_pid, &status, WNOHANG);
  if (done == m_pid) {
    m_child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else if (done < 0 && errno == ECHILD) {
    m_child_status = k_exit_failed;
  }
  return m_child_status;
}

std::optional<int> WatchedTarget::wait_for_agent(watcher::FileWatcher& watcher, const AutoreloadOutput& output,
                                                 loader::ProcessInfo& process) {
  // Rather than inject: give up only when the child is gone.
  auto started = std::chrono::steady_clock::now();
  bool noted = false;
  for (;;) {
    if (auto code = child_exit_code()) {
      return code;
    }
    if (auto info = loader::inspect_process(m_pid)) {
      process = *info;
      if (loader::agent_is_listening(process)) {
        return std::nullopt;
      }
    }
    if (!noted && std::chrono::steady_clock::now() - started > k_agent_wait_note) {
      noted = true;
      output.line("",
                  "still waiting for the pyhot agent in process " + std::to_string(m_pid) +
                      " (is it a Python process started directly?)",
                  output.yellow());
    }
    watcher.wait(std::chrono::milliseconds(10));
  }
}

}  // namespace pyhot::cli
