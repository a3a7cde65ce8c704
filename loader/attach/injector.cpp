#include "loader/attach/injector.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "loader/attach/debug_offsets.hpp"
#include "loader/attach/elf_image.hpp"
#include "loader/attach/proc_info.hpp"
#include "loader/attach/traced_thread.hpp"

namespace pyhot::loader::attach {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr long k_sys_mmap = 9;
constexpr long k_sys_munmap = 11;

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<std::string> read_remote(int pid, uint64_t address, size_t size) {
  std::string bytes(size, '\0');
  iovec local{bytes.data(), size};
  iovec remote{reinterpret_cast<void*>(address), size};  // NOLINT(performance-no-int-to-ptr)
  ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (got != static_cast<ssize_t>(size)) {
    return make_error(ErrorKind::io, "reading " + std::to_string(size) + " bytes of " + pid_text(pid) + ": " +
                                         std::strerror(got < 0 ? errno : EIO));
  }
  return bytes;
}

Result<uint64_t> read_remote_u64(int pid, uint64_t address) {
  auto bytes = read_remote(pid, address, 8);
  if (!bytes) {
    return bytes.error();
  }
  uint64_t value = 0;
  std::memcpy(&value, bytes->data(), 8);
  return value;
}

Result<Done> write_remote(int pid, uint64_t address, const std::string& bytes) {
  iovec local{const_cast<char*>(bytes.data()), bytes.size()};
  iovec remote{reinterpret_cast<void*>(address), bytes.size()};  // NOLINT(performance-no-int-to-ptr)
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(bytes.size())) {
    return make_error(ErrorKind::io, "writing to " + pid_text(pid) + ": " + std::strerror(errno));
  }
  return k_done;
}

bool has_cap_sys_ptrace() {
  auto status = read_proc_text("/proc/self/status");
  auto at = status.find("CapEff:");
  if (at == std::string::npos) {
    return false;
  }
  uint64_t caps = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  return (caps >> 19) & 1;  // CAP_SYS_PTRACE
}

// Why the kernel says no, in one line with the fix.
Error explain_denial(int pid, const ProcessStatus& status) {
  std::string who = pid_text(pid) + " (" + status.name + ")";
  if (status.tracer_pid != 0) {
    return make_error(ErrorKind::permission_denied,
                      who + " is already traced by PID " + std::to_string(status.tracer_pid));
  }
  bool cap = has_cap_sys_ptrace();
  uid_t me = geteuid();
  if (!cap && status.real_uid != me) {
    return make_error(ErrorKind::permission_denied, who + " runs as uid " + std::to_string(status.real_uid) +
                                                        " and pyhot as uid " + std::to_string(me) +
                                                        ": run pyhot as that user or as root");
  }
  std::string scope = read_proc_text("/proc/sys/kernel/yama/ptrace_scope");
  scope = scope.substr(0, scope.find('\n'));
  if (scope == "3") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 3: ptrace is disabled on this machine until reboot");
  }
  if (!cap && scope == "2") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 2: attaching needs CAP_SYS_PTRACE (run pyhot as root)");
  }
  if (!cap && scope == "1") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 1: only a parent may trace " + who +
                          "; run pyhot with CAP_SYS_PTRACE (sudo) or set kernel.yama.ptrace_scope=0");
  }
  if (!cap && me == 0) {
    return make_error(ErrorKind::permission_denied,
                      "pyhot runs as root without CAP_SYS_PTRACE (in a container: --cap-add=SYS_PTRACE)");
  }
  return make_error(ErrorKind::permission_denied,
                    who +
                        " cannot be traced: it is not dumpable (setuid/setgid program, or "
                        "prctl(PR_SET_DUMPABLE, 0)) or an LSM forbids ptrace");
}

// Candidate files for the runtime, best first: libpython, a python
// executable, then every other file mapping (an embedding host).
std::vector<std::string> runtime_candidates(const std::vector<Mapping>& maps) {
  std::vector<std::string> libpython;
  std::vector<std::string> python;
  std::vector<std::string> other;
  for (const Mapping& m : maps) {
    if (m.path.empty() || m.path[0] != '/' || m.inode == 0) {
      continue;
    }
    std::vector<std::string>* bucket = &other;
    std::string base = basename_of(m.path);
    if (base.rfind("libpython", 0) == 0) {
      bucket = &libpython;
    } else if (base.find("python") != std::string::npos) {
      bucket = &python;
    }
    if (std::find(bucket->begin(), bucket->end(), m.path) == bucket->end()) {
      bucket->push_back(m.path);
    }
  }
  libpython.insert(libpython.end(), python.begin(), python.end());
  libpython.insert(libpython.end(), other.begin(), other.end());
  return libpython;
}

Result<ElfImage> open_mapped_file(int pid, const std::string& path, const std::vector<Mapping>& maps) {
  const std::string deleted = " (deleted)";
  bool is_deleted =
      path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0;
  if (!is_deleted) {
    auto image = ElfImage::open("/proc/" + std::to_string(pid) + "/root" + path);
    if (image) {
      return image;
    }
  }
  // Upgraded or deleted on disk, or another mount namespace: the mapping itself.
  for (const Mapping& m : maps) {
    if (m.path == path && m.offset == 0) {
      char range[64];
      std::snprintf(range, sizeof range, "%lx-%lx", static_cast<unsigned long>(m.start),
                    static_cast<unsigned long>(m.end));
      return ElfImage::open("/proc/" + std::to_string(pid) + "/map_files/" + range);
    }
  }
  return make_error(ErrorKind::not_found, "cannot open '" + path + "'");
}

uint64_t lowest_offset_zero_start(const std::vector<Mapping>& maps, const std::string& path) {
  uint64_t start = 0;
  for (const Mapping& m : maps) {
    if (m.path == path && m.offset == 0 && (start == 0 || m.start < start)) {
      start = m.start;
    }
  }
  return start;
}

std::string make_token() {
  std::random_device device;
  std::mt19937_64 rng((uint64_t{device()} << 32) ^ device() ^
                      static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(rng()));
  return text;
}

// Keeps Ctrl-C and kill from ending pyhot while the target runs injected
// code (it would die of SIGTRAP at our int3). Pending signals are delivered
// when the shield goes away, after the target is restored.
class SignalShield {
 public:
  SignalShield() {
    sigset_t block;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGPIPE}) {
      sigaddset(&block, sig);
    }
    pthread_sigmask(SIG_BLOCK, &block, &m_previous);
  }
  ~SignalShield() { pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }
  SignalShield(const SignalShield&) = delete;
  SignalShield& operator=(const SignalShield&) = delete;

 private:
  sigset_t m_previous{};
};

bool wait_until_done(const InjectOptions& options, Clock::time_point until) {
  if (!options.is_done) {
    return false;
  }
  for (int round = 0;; ++round) {
    if (options.is_done()) {
      return true;
    }
    if (Clock::now() >= until) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(round < 100 ? 200 : 5000));
  }
}

milliseconds remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return std::max(left, milliseconds(50));
}

// --- PEP 768 ----------------------------------------------------------------

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
                                          Clock::time_point deadline) {
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
  std::string source = guarded_bootstrap(bootstrap, token, script);
  int fd = ::open(host_script.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (fd < 0) {
    return make_error(ErrorKind::io, "creating '" + host_script + "': " + std::strerror(errno));
  }
  bool wrote = ::write(fd, source.data(), source.size()) == static_cast<ssize_t>(source.size());
  if (geteuid() == 0) {
    (void)fchown(fd, status->real_uid, static_cast<gid_t>(-1));
  }
  ::close(fd);
  if (!wrote) {
    ::unlink(host_script.c_str());
    return make_error(ErrorKind::io, "writing '" + host_script + "'");
  }

  // Freeze every thread: nobody else touches eval_breaker while we set a bit.
  SignalShield shield;
  std::vector<TracedThread> frozen;
  for (int tid : list_threads(pid)) {
    auto thread = TracedThread::seize(pid, tid, remaining(deadline));
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
    if (!wait_until_done(options, deadline)) {
      return make_error(ErrorKind::timeout,
                        "queued the bootstrap through PEP 768, but the main thread has not run it yet "
                        "(blocked in " +
                            syscall_name(read_thread_syscall(pid, pid).value_or(-1)) + ")");
    }
    outcome.confirmed = true;
  }
  return outcome;
}

// --- ptrace ------------------------------------------------------------------

// Runs the bootstrap on `thread` (parked in a non-futex syscall, GIL released)
// through PyGILState_Ensure. Returns false when the thread turned out to hold
// the GIL (a C extension blocking without releasing it): then nothing ran.
Result<bool> run_with_gil_state(TracedThread& thread, const InterpreterInfo& info, uint64_t source) {
  uint64_t errno_address = 0;
  uint64_t errno_word = 0;
  if (info.errno_location != 0) {
    auto address = thread.remote_call(info.errno_location, 0, 0, milliseconds(1000));
    if (address) {
      auto word = thread.peek(*address);
      if (word) {
        errno_address = *address;
        errno_word = *word;
      }
    }
  }
  // No time limit from here: these calls take locks and must finish.
  auto state = thread.remote_call(info.gil_state_ensure);
  if (!state) {
    return state.error();
  }
  bool ran = false;
  if ((*state & 0xffffffff) == 0) {  // PyGILState_LOCKED: it already held the GIL
    auto released = thread.remote_call(info.gil_state_release, 0);
    if (!released) {
      return released.error();
    }
  } else {
    auto result = thread.remote_call(info.run_simple_string, source);
    if (!result) {
      return result.error();
    }
    auto released = thread.remote_call(info.gil_state_release, 1);
    if (!released) {
      return released.error();
    }
    ran = true;
  }
  if (errno_address != 0) {
    auto now = thread.peek(errno_address);
    if (now) {
      uint64_t merged = (*now & ~uint64_t{0xffffffff}) | (errno_word & 0xffffffff);
      (void)thread.poke(errno_address, merged);
    }
  }
  return ran;
}

bool parked_outside_futex(const StopState& stop) { return stop.in_syscall && is_parking_syscall(stop.syscall); }

Result<InjectOutcome> inject_with_ptrace(const InterpreterInfo& info, const std::string& bootstrap,
                                         const std::string& token, const InjectOptions& options,
                                         Clock::time_point deadline) {
  int pid = info.pid;
  if (info.add_pending_call == 0 || info.run_simple_string == 0) {
    return make_error(ErrorKind::not_python,
                      "the Python runtime of " + pid_text(pid) + " exports no Py_AddPendingCall/PyRun_SimpleString");
  }
  auto entry = read_entry_point(pid);
  if (!entry) {
    return entry.error();
  }
  std::string source = guarded_bootstrap(bootstrap, token);
  source.push_back('\0');
  uint64_t page_size = (source.size() + 4095) & ~uint64_t{4095};

  InjectOutcome outcome;
  outcome.method = InjectMethod::pending_call;
  outcome.info = info;
  bool escalated = false;
  {
    SignalShield shield;
    auto seized = TracedThread::seize(pid, pid, remaining(deadline));
    if (!seized) {
      if (seized.error().kind == ErrorKind::permission_denied) {
        auto status = read_status(pid);
        if (status && status->tracer_pid == 0) {
          return explain_denial(pid, *status);
        }
      }
      return seized.error();
    }
    TracedThread& main = *seized;
    auto installed = main.install_scratch(*entry);
    if (!installed) {
      return installed.error().with_context("writing the call stub");
    }
    // Trivial readers of _PyRuntime; a thread stopped anywhere can run them.
    if (info.is_initialized != 0) {
      auto initialized = main.remote_call(info.is_initialized, 0, 0, milliseconds(1000));
      if (!initialized) {
        return initialized.error().with_context("calling Py_IsInitialized");
      }
      if ((*initialized & 0xffffffff) == 0) {
        return make_error(ErrorKind::refused,
                          "the interpreter of " + pid_text(pid) + " is not initialized (starting up or finalizing)");
      }
    }
    if (info.is_finalizing != 0) {
      auto finalizing = main.remote_call(info.is_finalizing, 0, 0, milliseconds(1000));
      if (!finalizing) {
        return finalizing.error().with_context("calling Py_IsFinalizing");
      }
      if ((*finalizing & 0xffffffff) != 0) {
        return make_error(ErrorKind::refused, pid_text(pid) + " is finalizing its interpreter");
      }
    }
    auto page = main.remote_syscall(k_sys_mmap, 0, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                    static_cast<uint64_t>(-1), 0);
    if (!page) {
      return page.error().with_context("allocating memory in " + pid_text(pid));
    }
    if (*page > static_cast<uint64_t>(-4096)) {
      return make_error(ErrorKind::refused, "mmap in " + pid_text(pid) + " failed: " +
                                                std::strerror(static_cast<int>(-static_cast<int64_t>(*page))));
    }
    auto unmap = [&] { (void)main.remote_syscall(k_sys_munmap, *page, page_size); };
    auto copied = main.write_memory(*page, source);
    if (!copied) {
      unmap();
      return copied.error();
    }
    // The lock it takes is only ever held for a few instructions.
    auto queued = main.remote_call(info.add_pending_call, info.run_simple_string, *page, milliseconds(2000));
    if (!queued) {
      if (queued.error().kind != ErrorKind::timeout) {
        unmap();
      }
      return queued.error().with_context("calling Py_AddPendingCall");
    }
    if ((*queued & 0xffffffff) != 0) {
      unmap();
      return make_error(ErrorKind::refused, "the pending-call queue of " + pid_text(pid) + " is full; try again");
    }
    // From here the request is queued: the page must stay (it is the
    // call's argument) and failures are reported, not undone.
    StopState stop = main.stop_state();
    if (options.escalate && parked_outside_futex(stop) && info.gil_state_ensure != 0 && info.gil_state_release != 0) {
      auto ran = run_with_gil_state(main, info, *page);
      if (!ran) {
        return ran.error().with_context("running the bootstrap on the main thread");
      }
      escalated = *ran;
    }
    bool nudge = !escalated && options.interrupt_futex_wait && stop.in_syscall && stop.syscall == k_sys_futex;
    auto restored = main.restore_and_detach(nudge);
    if (!restored) {
      return restored.error();
    }
  }
  if (escalated) {
    outcome.method = InjectMethod::gil_state;
  }
  if (options.is_done) {
    if (!wait_until_done(options, deadline)) {
      long now = read_thread_syscall(pid, pid).value_or(-1);
      return make_error(ErrorKind::timeout,
                        "the bootstrap is queued in " + pid_text(pid) + " but has not run: its main thread is " +
                            (now == -1 ? std::string("running C code that does not return to Python")
                                       : "blocked in " + syscall_name(now)) +
                            "; it runs when that returns");
    }
    outcome.confirmed = true;
  }
  return outcome;
}

}  // namespace

std::string PythonVersion::text() const {
  std::string text = std::to_string(major) + "." + std::to_string(minor);
  if (micro >= 0) {
    text += "." + std::to_string(micro);
  }
  return text;
}

const char* method_name(InjectMethod method) {
  switch (method) {
    case InjectMethod::pending_call:
      return "pending-call";
    case InjectMethod::gil_state:
      return "gil-state";
    case InjectMethod::remote_debug:
      return "remote-debug";
  }
  return "?";
}

PythonVersion version_from_hex(uint64_t hex) {
  return PythonVersion{static_cast<int>((hex >> 24) & 0xff), static_cast<int>((hex >> 16) & 0xff),
                       static_cast<int>((hex >> 8) & 0xff)};
}

std::optional<PythonVersion> version_from_name(const std::string& name) {
  std::string base = basename_of(name);
  auto at = base.find("python");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const char* p = base.c_str() + at + 6;
  char* end = nullptr;
  long major = std::strtol(p, &end, 10);
  if (end == p || *end != '.') {
    return std::nullopt;
  }
  p = end + 1;
  long minor = std::strtol(p, &end, 10);
  if (end == p || major < 2 || major > 9) {
    return std::nullopt;
  }
  return PythonVersion{static_cast<int>(major), static_cast<int>(minor), -1};
}

std::string guarded_bootstrap(const std::string& bootstrap, const std::string& token, const std::string& unlink_path) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bootstrap.size() * 2);
  for (unsigned char c : bootstrap) {
    hex.push_back(k_hex[c >> 4]);
    hex.push_back(k_hex[c & 15]);
  }
  // Binds no names in __main__; the counter in sys makes the first of
  // possibly two runs (escalation, then the pending call) the only one.
  std::string source = "try:\n";
  if (!unlink_path.empty()) {
    source += " try: __import__('os').unlink('" + unlink_path + "')\n except BaseException: pass\n";
  }
  source += " if next(__import__('sys').__dict__.setdefault('_pyhot_once_" + token +
            "', __import__('itertools').count())) == 0: exec(bytes.fromhex('" + hex +
            "').decode(), __import__('__main__').__dict__)\n"
            "except BaseException: pass\n";
  return source;
}

Result<InterpreterInfo> inspect_interpreter(int pid) {
  auto status = read_status(pid);
  if (!status) {
    return status.error();
  }
  auto maps = read_maps(pid);
  if (!maps) {
    if (maps.error().kind == ErrorKind::permission_denied ||
        access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0) {
      return explain_denial(pid, *status);
    }
    return maps.error();
  }
  InterpreterInfo info;
  info.pid = pid;
  std::optional<ElfImage> image;
  for (const std::string& path : runtime_candidates(*maps)) {
    auto candidate = open_mapped_file(pid, path, *maps);
    if (!candidate) {
      if (candidate.error().kind == ErrorKind::permission_denied) {
        return candidate.error();
      }
      continue;
    }
    if (candidate->symbol("Py_AddPendingCall")) {
      info.path = path;
      info.host_path = candidate->name();
      image = std::move(*candidate);
      break;
    }
  }
  if (!image) {
    return make_error(ErrorKind::not_python, pid_text(pid) + " (" + status->name +
                                                 ") is not a Python process: no Python runtime in its memory map");
  }
  info.shared_library = image->is_shared_object();
  if (info.shared_library) {
    uint64_t start = lowest_offset_zero_start(*maps, info.path);
    info.load_bias = start - image->first_load_address();
  }
  auto address = [&](std::string_view name) -> uint64_t {
    auto value = image->symbol(name);
    return value ? *value + info.load_bias : 0;
  };
  info.add_pending_call = address("Py_AddPendingCall");
  info.run_simple_string = address("PyRun_SimpleString");
  info.gil_state_ensure = address("PyGILState_Ensure");
  info.gil_state_release = address("PyGILState_Release");
  info.is_initialized = address("Py_IsInitialized");
  info.is_finalizing = address("Py_IsFinalizing");
  if (info.is_finalizing == 0) {
    info.is_finalizing = address("_Py_IsFinalizing");
  }
  info.runtime = address("_PyRuntime");
  if (info.runtime == 0) {
    if (auto section = image->section(".PyRuntime")) {
      info.runtime = section->address + info.load_bias;
    }
  }

  // Version: debug-offsets cookie, then Py_Version, then soname, then the
  // file name. The target's binary is never run.
  if (info.runtime != 0) {
    auto head = read_remote(pid, info.runtime, 16);
    if (head && has_debug_cookie(*head)) {
      info.has_debug_offsets = true;
      info.version = version_from_hex(debug_offsets_version(*head));
      info.version_source = "debug offsets";
    }
  }
  if (info.version_source.empty()) {
    if (auto symbol = image->symbol("Py_Version")) {
      std::string_view bytes = image->bytes_at(*symbol, 4);
      if (bytes.size() == 4) {
        uint32_t hex = 0;
        std::memcpy(&hex, bytes.data(), 4);
        info.version = version_from_hex(hex);
        info.version_source = "Py_Version";
      }
    }
  }
  if (info.version_source.empty()) {
    if (auto version = version_from_name(image->soname())) {
      info.version = *version;
      info.version_source = "soname";
    } else if (auto from_path = version_from_name(info.path)) {
      info.version = *from_path;
      info.version_source = "file name";
    }
  }
  if (info.version.at_least(3, 14) && info.has_debug_offsets) {
    auto table_bytes = read_remote(pid, info.runtime, k_debug_offsets_size_3_14);
    auto table = table_bytes ? parse_debug_offsets(*table_bytes) : Result<DebugOffsets>(table_bytes.error());
    if (table) {
      auto interp = main_interpreter(pid, info.runtime, *table);
      if (interp) {
        auto flag = read_remote(pid, *interp + table->remote_debugging_enabled, 4);
        if (flag) {
          int32_t value = 0;
          std::memcpy(&value, flag->data(), 4);
          info.remote_debugging_enabled = value != 0;
        }
      }
    }
  }

  // libc's errno, so an escalation leaves it as it was.
  for (const Mapping& m : *maps) {
    std::string base = basename_of(m.path);
    if (m.offset == 0 &&
        (base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 || base.rfind("ld-musl", 0) == 0)) {
      auto libc = open_mapped_file(pid, m.path, *maps);
      if (libc) {
        auto value = libc->symbol("__errno_location");
        uint64_t bias = libc->is_shared_object() ? m.start - libc->first_load_address() : 0;
        if (value) {
          info.errno_location = *value + bias;
        }
      }
      break;
    }
  }
  info.main_thread_syscall = read_thread_syscall(pid, pid).value_or(-1);
  return info;
}

Result<InjectOutcome> inject(int pid, const std::string& bootstrap, const InjectOptions& options) {
  auto deadline = Clock::now() + options.deadline;
  auto status = read_status(pid);
  if (!status) {
    return status.error();
  }
  if (status->state == 'T') {
    return make_error(ErrorKind::refused, pid_text(pid) + " (" + status->name +
                                              ") is stopped; resume it first (kill -CONT " + std::to_string(pid) + ")");
  }
  auto info = inspect_interpreter(pid);
  if (!info) {
    return info.error();
  }
  if (info->version.major == 0) {
    return make_error(ErrorKind::not_python,
                      "cannot tell the Python version of " + pid_text(pid) + " from '" + info->path + "'");
  }
  if (!info->version.at_least(3, 8)) {
    return make_error(ErrorKind::refused,
                      pid_text(pid) + " runs Python " + info->version.text() + "; pyhot needs 3.8 or newer");
  }
  std::string token = make_token();
  if (info->version.at_least(3, 14)) {
    if (info->remote_debugging_enabled.value_or(false)) {
      return inject_remote_debug(*info, bootstrap, token, options, deadline);
    }
    if (!options.force) {
      std::string why = info->remote_debugging_enabled.has_value()
                            ? " with remote debugging disabled (PYTHON_DISABLE_REMOTE_DEBUG or -X disable-remote-debug)"
                            : ", but its PEP 768 debug offsets could not be read";
      return make_error(ErrorKind::refused, pid_text(pid) + " runs Python " + info->version.text() + why +
                                                "; --force injects with ptrace anyway");
    }
  }
  return inject_with_ptrace(*info, bootstrap, token, options, deadline);
}

Result<Done> inject_python(int pid, const std::string& bootstrap, const InjectOptions& options) {
  auto outcome = inject(pid, bootstrap, options);
  if (!outcome) {
    return outcome.error();
  }
  return k_done;
}

}  // namespace pyhot::loader::attach
