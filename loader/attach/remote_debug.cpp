#include "loader/attach/remote_debug.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "loader/attach/proc_info.hpp"
#include "loader/attach/remote_memory.hpp"
#include "loader/attach/traced_thread.hpp"

namespace pyhot::loader::attach {

namespace {

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

// Writes `source`, expired, beside `path` and renames it over: the target
// opens the script by its path only when it runs the request.
// A new file at `path` (never an existing one or a link), readable by its
// owner alone: the target's user reads it as the script.
Result<Done> write_script(const std::string& path, const std::string& source, uint32_t owner) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (fd < 0) {
    return make_error(ErrorKind::io, "creating '" + path + "': " + std::strerror(errno));
  }
  bool wrote = ::write(fd, source.data(), source.size()) == static_cast<ssize_t>(source.size());
  if (geteuid() == 0) {
    (void)fchown(fd, owner, static_cast<gid_t>(-1));
  }
  ::close(fd);
  if (!wrote) {
    ::unlink(path.c_str());
    return make_error(ErrorKind::io, "writing '" + path + "'");
  }
  return k_done;
}

bool replace_with_expired(const std::string& path, std::string source, uint32_t owner) {
  auto patch = expiry_patch(source);
  if (!patch) {
    return false;
  }
  source.replace(patch->offset, patch->bytes.size(), patch->bytes);
  std::string beside = path + ".expired";
  if (!write_script(beside, source, owner)) {
    return false;
  }
  if (::rename(beside.c_str(), path.c_str()) != 0) {
    ::unlink(beside.c_str());
    return false;
  }
  return true;
}

}  // namespace

Result<uint64_t> main_interpreter(int pid, uint64_t runtime, const DebugOffsets& t) {
  auto interp = read_remote_u64(pid, runtime + t.runtime_interpreters_head);
  if (!interp) {
    return interp.error();
  }
  // New interpreters are prepended; the main one has id 0.
  uint64_t candidate = *interp;
  for (int hops = 0; candidate != 0 && hops < 1024; ++hops) {
    auto id = read_remote_u64(pid, candidate + t.interp_id);
    if (!id) {
      return id.error();
    }
    if (*id == 0) {
      return candidate;
    }
    auto next = read_remote_u64(pid, candidate + t.interp_next);
    if (!next) {
      return next.error();
    }
    candidate = *next;
  }
  if (*interp == 0) {
    return make_error(ErrorKind::refused, "the interpreter is not initialized or is finalizing");
  }
  return *interp;
}

Result<InjectOutcome> inject_remote_debug(const InterpreterInfo& info, const std::string& bootstrap,
                                          const std::string& token, const InjectOptions& options,
                                          InjectClock::time_point deadline) {
  int pid = info.pid;
  auto table_bytes = read_remote(pid, info.runtime, k_debug_offsets_size_3_14);
  if (!table_bytes) {
    return table_bytes.error();
  }
  auto table = parse_debug_offsets(*table_bytes);
  if (!table) {
    return table.error();
  }
  const DebugOffsets& t = *table;
  auto finalizing = read_remote_u64(pid, info.runtime + t.runtime_finalizing);
  if (finalizing && *finalizing != 0) {
    return make_error(ErrorKind::refused, pid_text(pid) + " is finalizing its interpreter");
  }
  auto interp = main_interpreter(pid, info.runtime, t);
  if (!interp) {
    return interp.error();
  }

  // The script is read by the target: put it in its /tmp, owned by its user.
  auto status = read_status(pid);
  if (!status) {
    return status.error();
  }
  std::string script = "/tmp/.pyhot-bootstrap-" + std::to_string(pid) + "-" + token + ".py";
  if (script.size() + 1 >= t.debugger_script_path_size) {
    return make_error(ErrorKind::internal, "script path too long for the target");
  }
  std::string host_script = "/proc/" + std::to_string(pid) + "/root" + script;
  std::string source = guarded_bootstrap(bootstrap, token, script, bootstrap_expiry(deadline));
  if (auto written = write_script(host_script, source, status->real_uid); !written) {
    return written.error();
  }

  // Freeze every thread: nobody else touches eval_breaker while we set a bit.
  SignalShield shield;
  StopWatchdog watchdog(pid);
  std::vector<TracedThread> frozen;
  for (int tid : list_threads(pid)) {
    // Once one thread is held, another in uninterruptible sleep is waited
    // for 2 s at most: the held ones wait with it.
    auto patience =
        frozen.empty() ? remaining(deadline) : std::min(remaining(deadline), std::chrono::milliseconds(2000));
    auto thread = TracedThread::seize(pid, tid, patience);
    if (thread) {
      frozen.push_back(std::move(*thread));
    } else if (tid == pid) {
      ::unlink(host_script.c_str());
      return thread.error();
    }
  }
  auto fail = [&](const Error& error) -> Result<InjectOutcome> {
    ::unlink(host_script.c_str());
    return error;
  };
  auto enabled = read_remote(pid, *interp + t.remote_debugging_enabled, 4);
  if (!enabled) {
    return fail(enabled.error());
  }
  int32_t enabled_flag = 0;
  std::memcpy(&enabled_flag, enabled->data(), 4);
  if (enabled_flag == 0) {
    return fail(make_error(ErrorKind::refused, "remote debugging was disabled in " + pid_text(pid)));
  }
  auto tstate = read_remote_u64(pid, *interp + t.interp_threads_main);
  if (!tstate || *tstate == 0) {
    tstate = read_remote_u64(pid, *interp + t.interp_threads_head);
  }
  if (!tstate || *tstate == 0) {
    return fail(make_error(ErrorKind::refused, pid_text(pid) + " has no Python thread"));
  }
  uint64_t support = *tstate + t.remote_debugger_support;
  std::string path_bytes = script;
  path_bytes.resize(t.debugger_script_path_size, '\0');
  auto breaker = read_remote_u64(pid, *tstate + t.eval_breaker);
  if (!breaker) {
    return fail(breaker.error());
  }
  uint64_t raised = *breaker | k_eval_please_stop_bit;
  int32_t one = 1;
  auto written = write_remote(pid, support + t.debugger_script_path, path_bytes);
  if (written) {
    written = write_remote(pid, support + t.debugger_pending_call, std::string(reinterpret_cast<char*>(&one), 4));
  }
  if (written) {
    written = write_remote(pid, *tstate + t.eval_breaker, std::string(reinterpret_cast<char*>(&raised), 8));
  }
  if (!written) {
    return fail(written.error());
  }
  for (TracedThread& thread : frozen) {
    (void)thread.restore_and_detach(options.interrupt_futex_wait && thread.tid() == pid &&
                                    thread.stop_state().syscall == k_sys_futex);
  }
  frozen.clear();

  InjectOutcome outcome;
  outcome.method = InjectMethod::remote_debug;
  outcome.info = info;
  if (options.is_done) {
    if (auto end = wait_until_done(pid, options, deadline); end != WaitEnd::done) {
      if (end == WaitEnd::stopped) {
        // The script is read when the main thread runs the request: an
        // expired copy, put in its place, does nothing after the resume.
        if (!replace_with_expired(host_script, source, status->real_uid)) {
          std::this_thread::sleep_until(deadline);  // its own expiry has passed by then
        }
        return stopped_after_queuing(pid, "the bootstrap is queued through PEP 768 in " + pid_text(pid));
      }
      return make_error(ErrorKind::timeout,
                        "queued the bootstrap through PEP 768, but the main thread has not run it yet "
                        "(blocked in " +
                            syscall_name(read_thread_syscall(pid, pid).value_or(-1)) +
                            "); it expired: it does nothing when it runs");
    }
    outcome.confirmed = true;
  }
  return outcome;
}

std::optional<bool> read_remote_debugging_enabled(int pid, uint64_t runtime) {
  auto table_bytes = read_remote(pid, runtime, k_debug_offsets_size_3_14);
  auto table = table_bytes ? parse_debug_offsets(*table_bytes) : Result<DebugOffsets>(table_bytes.error());
  if (!table) {
    return std::nullopt;
  }
  auto interp = main_interpreter(pid, runtime, *table);
  if (!interp) {
    return std::nullopt;
  }
  auto flag = read_remote(pid, *interp + table->remote_debugging_enabled, 4);
  if (!flag) {
    return std::nullopt;
  }
  int32_t value = 0;
  std::memcpy(&value, flag->data(), 4);
  return value != 0;
}

}  // namespace pyhot::loader::attach
