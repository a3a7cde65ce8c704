#include "loader/attach/injector.hpp"

#include <sys/times.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include "loader/attach/inject_window.hpp"
#include "loader/attach/pending_call.hpp"
#include "loader/attach/proc_info.hpp"
#include "loader/attach/remote_debug.hpp"

namespace pyhot::loader::attach {

namespace {

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

constexpr char k_expiry_test[] = " if __import__('posix').times()[4] > ";

std::string make_token() {
  std::random_device device;
  std::mt19937_64 rng((uint64_t{device()} << 32) ^ device() ^
                      static_cast<uint64_t>(InjectClock::now().time_since_epoch().count()));
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(rng()));
  return text;
}

}  // namespace

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

std::string guarded_bootstrap(const std::string& bootstrap, const std::string& token, const std::string& unlink_path,
                              double expires_at) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bootstrap.size() * 2);
  for (unsigned char c : bootstrap) {
    hex.push_back(k_hex[c >> 4]);
    hex.push_back(k_hex[c & 15]);
  }
  // Binds no names in __main__; the one-item list in sys makes the first of
  // possibly two runs (escalation, then the pending call) the only one (the
  // second pop raises). It runs wherever the main thread was interrupted,
  // so it imports only modules that are always loaded (a real import there
  // could need a lock the interrupted code holds).
  std::string source = "try:\n";
  if (!unlink_path.empty()) {
    source += " try: __import__('posix').unlink('" + unlink_path + "')\n except BaseException: pass\n";
  }
  if (expires_at > 0) {
    // posix: always loaded; raising here skips the rest, the guard included.
    char expiry[64];
    std::snprintf(expiry, sizeof expiry, "%.3f", expires_at);
    source += std::string(k_expiry_test) + expiry + ": raise OSError\n";
  }
  source += " __import__('sys').__dict__.setdefault('_pyhot_once_" + token +
            "', [0]).pop()\n"
            " exec(bytes.fromhex('" +
            hex +
            "').decode(), __import__('__main__').__dict__)\n"
            "except BaseException: pass\n";
  return source;
}

std::optional<ExpiryPatch> expiry_patch(const std::string& source) {
  size_t at = source.find(k_expiry_test);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  ExpiryPatch patch;
  patch.offset = at + sizeof k_expiry_test - 1;
  size_t end = source.find(':', patch.offset);
  if (end == std::string::npos) {
    return std::nullopt;
  }
  // "00000.000" is a float literal; the test is then always true.
  patch.bytes = source.substr(patch.offset, end - patch.offset);
  for (char& c : patch.bytes) {
    if (c != '.') {
      c = '0';
    }
  }
  return patch;
}

double boot_clock_seconds() {
  tms unused{};
  return static_cast<double>(::times(&unused)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

Result<InjectOutcome> inject(int pid, const std::string& bootstrap, const InjectOptions& options) {
  auto deadline = InjectClock::now() + options.deadline;
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
