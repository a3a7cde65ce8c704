#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "loader/attach/debug_offsets.hpp"
#include "loader/attach/elf_image.hpp"
#include "loader/attach/injector.hpp"
#include "loader/attach/interpreter.hpp"
#include "loader/attach/proc_info.hpp"
#include "loader/attach/remote_stack.hpp"
#include "loader/attach/traced_thread.hpp"

using namespace pyhot;
using namespace pyhot::loader::attach;

namespace {

const char* const k_system_python = "/usr/bin/python3.11";

std::string pyenv_libpython(int minor) {
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator("/root/.pyenv/versions", ec)) {
    std::string name = dir.path().filename().string();
    if (name.rfind("3." + std::to_string(minor) + ".", 0) == 0) {
      auto lib = dir.path() / "lib" / ("libpython3." + std::to_string(minor) + ".so.1.0");
      if (std::filesystem::exists(lib)) {
        return lib.string();
      }
    }
  }
  return {};
}

std::string pyenv_python(int minor) {
  std::string lib = pyenv_libpython(minor);
  if (lib.empty()) {
    return {};
  }
  auto bin = std::filesystem::path(lib).parent_path().parent_path() / "bin" / ("python3." + std::to_string(minor));
  return std::filesystem::exists(bin) ? bin.string() : std::string();
}

// A child running `argv`, killed and reaped at scope exit.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    m_pid = fork();
    if (m_pid == 0) {
      std::vector<char*> args;
      for (auto& a : argv) {
        args.push_back(a.data());
      }
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    kill(m_pid, SIGKILL);
    waitpid(m_pid, nullptr, 0);
  }
  int pid() const { return m_pid; }
  // Waits until the child's map shows `needle` (the exec and loader are done).
  bool wait_for_map(const std::string& needle) const {
    for (int i = 0; i < 500; ++i) {
      if (read_proc_text("/proc/" + std::to_string(m_pid) + "/maps").find(needle) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  int m_pid = -1;
};

std::string run_python(const std::string& source) {
  std::string path = "/tmp/pyhot_attach_test_" + std::to_string(getpid()) + ".py";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(source.c_str(), f);
  std::fclose(f);
  std::string output;
  FILE* p = popen((std::string(k_system_python) + " " + path + " 2>&1").c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    output += buf;
  }
  pclose(p);
  std::remove(path.c_str());
  return output;
}

void put_u64(std::string& image, size_t offset, uint64_t value) { std::memcpy(image.data() + offset, &value, 8); }

// A 3.14.0 _Py_DebugOffsets table with recognisable values.
std::string synthetic_debug_offsets(uint64_t version = 0x030E00F0) {
  std::string image(k_debug_offsets_size_3_14, '\0');
  std::memcpy(image.data(), "xdebugpy", 8);
  put_u64(image, 8, version);
  put_u64(image, 16, 0);
  put_u64(image, 32, 1000);   // runtime_state.finalizing
  put_u64(image, 40, 1040);   // runtime_state.interpreters_head
  put_u64(image, 56, 7272);   // interpreter_state.id
  put_u64(image, 64, 7264);   // interpreter_state.next
  put_u64(image, 72, 7328);   // interpreter_state.threads_head
  put_u64(image, 80, 7344);   // interpreter_state.threads_main
  put_u64(image, 192, 16);    // thread_state.next
  put_u64(image, 224, 160);   // thread_state.native_thread_id
  put_u64(image, 712, 24);    // debugger_support.eval_breaker
  put_u64(image, 720, 296);   // .remote_debugger_support
  put_u64(image, 728, 7904);  // .remote_debugging_enabled
  put_u64(image, 736, 0);     // .debugger_pending_call
  put_u64(image, 744, 4);     // .debugger_script_path
  put_u64(image, 752, 512);   // .debugger_script_path_size
  return image;
}

}  // namespace

TEST(ElfImage, FindsRuntimeSymbolsInStaticDebianPython) {
  if (!std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << k_system_python << " is not installed";
  }
  auto image = ElfImage::open(k_system_python);
  ASSERT_TRUE(image) << image.error().message;
  EXPECT_FALSE(image->is_shared_object());  // non-PIE: no load bias
  for (const char* name : {"Py_AddPendingCall", "PyRun_SimpleString", "PyGILState_Ensure", "PyGILState_Release",
                           "_PyRuntime", "Py_IsInitialized"}) {
    EXPECT_TRUE(image->symbol(name)) << name;
  }
  EXPECT_FALSE(image->symbol("no_such_symbol_pyhot"));
  auto version = image->symbol("Py_Version");
  ASSERT_TRUE(version);
  std::string_view bytes = image->bytes_at(*version, 4);
  ASSERT_EQ(bytes.size(), 4u);
  uint32_t hex = 0;
  std::memcpy(&hex, bytes.data(), 4);
  EXPECT_EQ(version_from_hex(hex).major, 3);
  EXPECT_EQ(version_from_hex(hex).minor, 11);
}

TEST(ElfImage, FindsRuntimeSymbolsInPyenvLibpython) {
  int found = 0;
  for (int minor = 8; minor <= 13; ++minor) {
    std::string lib = pyenv_libpython(minor);
    if (lib.empty()) {
      continue;
    }
    ++found;
    auto image = ElfImage::open(lib);
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_TRUE(image->is_shared_object()) << lib;
    EXPECT_TRUE(image->symbol("Py_AddPendingCall")) << lib;
    EXPECT_TRUE(image->symbol("PyRun_SimpleString")) << lib;
    EXPECT_TRUE(image->symbol(minor >= 13 ? "Py_IsFinalizing" : "_Py_IsFinalizing")) << lib;
    EXPECT_EQ(image->soname(), "libpython3." + std::to_string(minor) + ".so.1.0");
    auto from_soname = version_from_name(image->soname());
    ASSERT_TRUE(from_soname);
    EXPECT_EQ(from_soname->minor, minor);
    if (minor >= 11) {
      auto symbol = image->symbol("Py_Version");
      ASSERT_TRUE(symbol) << lib;
      uint32_t hex = 0;
      std::memcpy(&hex, image->bytes_at(*symbol, 4).data(), 4);
      EXPECT_EQ(version_from_hex(hex).minor, minor);
    }
    if (minor >= 11) {
      // .PyRuntime and the _PyRuntime symbol are the same place.
      auto section = image->section(".PyRuntime");
      ASSERT_TRUE(section) << lib;
      EXPECT_EQ(section->address, image->symbol("_PyRuntime").value_or(0));
    }
  }
  if (found == 0) {
    GTEST_SKIP() << "no pyenv 3.8-3.13 installed";
  }
}

TEST(ElfImage, RefusesNonElf) {
  auto image = ElfImage::from_bytes("#!/bin/sh\necho hi\n", "script");
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().kind, ErrorKind::not_python);
}

TEST(Version, FromNames) {
  auto lib = version_from_name("/usr/lib/x86_64-linux-gnu/libpython3.9.so.1.0");
  ASSERT_TRUE(lib);
  EXPECT_EQ(lib->text(), "3.9");
  auto exe = version_from_name("/root/.pyenv/versions/3.12.1/bin/python3.12");
  ASSERT_TRUE(exe);
  EXPECT_EQ(exe->minor, 12);
  EXPECT_FALSE(version_from_name("/usr/bin/python3"));
  EXPECT_FALSE(version_from_name("/usr/bin/sleep"));
  EXPECT_EQ(version_from_hex(0x030B07F0).text(), "3.11.7");
}

TEST(ProcInfo, ParsesMaps) {
  auto maps = parse_maps(
      "00400000-00423000 r--p 00000000 08:01 1234                               /usr/bin/python3.11\n"
      "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
      "7f1000000000-7f1000100000 r-xp 00080000 fd:00 99  /opt/my app/libpython3.12.so.1.0 (deleted)\n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n");
  ASSERT_EQ(maps.size(), 4u);
  EXPECT_EQ(maps[0].start, 0x400000u);
  EXPECT_EQ(maps[0].end, 0x423000u);
  EXPECT_EQ(maps[0].perms, "r--p");
  EXPECT_EQ(maps[0].inode, 1234u);
  EXPECT_EQ(maps[0].path, "/usr/bin/python3.11");
  EXPECT_EQ(maps[1].path, "");
  EXPECT_EQ(maps[2].offset, 0x80000u);
  EXPECT_EQ(maps[2].path, "/opt/my app/libpython3.12.so.1.0 (deleted)");
  EXPECT_EQ(maps[3].path, "[stack]");
}

TEST(ProcInfo, ParsesStatusAndSyscall) {
  auto status = parse_status(
      "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5\n"
      "TracerPid:\t4242\nUid:\t1000\t1001\t1000\t1000\n");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->name, "python3");
  EXPECT_EQ(status->state, 'S');
  EXPECT_EQ(status->tracer_pid, 4242);
  EXPECT_EQ(status->real_uid, 1000u);
  EXPECT_EQ(status->effective_uid, 1001u);
  EXPECT_FALSE(parse_status(""));
  EXPECT_EQ(parse_syscall("230 0x1 0x0 0x7ffd 0x0 0x0 0x0 0x7ffd 0x7f\n"), 230);
  EXPECT_EQ(parse_syscall("running\n"), -1);
  EXPECT_FALSE(parse_syscall(""));
  EXPECT_TRUE(is_parking_syscall(230));   // clock_nanosleep
  EXPECT_TRUE(is_parking_syscall(232));   // epoll_wait
  EXPECT_FALSE(is_parking_syscall(202));  // futex: the GIL lives there
}

TEST(ProcInfo, ParsesNamespacePidParentAndCapabilities) {
  auto status = parse_status(
      "Name:\tpython3\nState:\tS (sleeping)\nPPid:\t77\nNSpid:\t5123\t12\t1\n"
      "Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->parent_pid, 77);
  EXPECT_EQ(status->ns_pid, 1);  // the innermost namespace
  EXPECT_EQ(status->effective_capabilities, 0x1ffffffffffULL);
}

TEST(CallStub, EntriesAreWhereTheTracerExpectsThem) {
  const unsigned char* code = CallStub::k_code;
  EXPECT_EQ(code[CallStub::k_call_aligned], 0xff);  // call *%rax
  EXPECT_EQ(code[CallStub::k_call_aligned + 1], 0xd0);
  EXPECT_EQ(code[CallStub::k_syscall], 0x0f);  // syscall
  EXPECT_EQ(code[CallStub::k_syscall + 1], 0x05);
  EXPECT_EQ(CallStub::k_return, CallStub::k_syscall + 2);
  EXPECT_EQ(code[CallStub::k_call_padded], 0xff);
  // The padded entry's jmp lands on the instruction after the aligned call.
  auto rel = static_cast<int8_t>(code[CallStub::k_size - 1]);
  EXPECT_EQ(static_cast<int64_t>(CallStub::k_size) + rel, 2);
  // ret $128: the save area ends right below the red zone.
  EXPECT_EQ(code[23], 0xc2);
  EXPECT_EQ(code[24] | (code[25] << 8), 128);
}

TEST(CallStub, SaveAreaResumesARestartableSyscallAsTheKernelWould) {
  user_regs_struct regs{};
  regs.rip = 0x401000;
  regs.rcx = 11;
  regs.eflags = 0x246;
  auto words = [](const std::string& area, int index) {
    uint64_t value = 0;
    std::memcpy(&value, area.data() + 8 * index, 8);
    return value;
  };
  regs.orig_rax = 23;  // select, interrupted: -ERESTARTNOHAND
  regs.rax = static_cast<uint64_t>(-514);
  std::string area = call_stub_save_area(regs);
  ASSERT_EQ(area.size(), CallStub::k_save_below_rsp - 128);
  EXPECT_EQ(words(area, 0), 23u);         // rax: the syscall again
  EXPECT_EQ(words(area, 10), 0x400ffeu);  // rip: back on the syscall instruction
  EXPECT_EQ(words(area, 1), 11u);
  EXPECT_EQ(words(area, 9), 0x246u);
  regs.orig_rax = 230;  // clock_nanosleep: -ERESTART_RESTARTBLOCK
  regs.rax = static_cast<uint64_t>(-516);
  EXPECT_EQ(words(call_stub_save_area(regs), 0), 219u);  // restart_syscall
  regs.orig_rax = ~uint64_t{0};                          // running user code
  regs.rax = 42;
  area = call_stub_save_area(regs);
  EXPECT_EQ(words(area, 0), 42u);
  EXPECT_EQ(words(area, 10), 0x401000u);
}

TEST(DebugOffsets, ParsesA314Table) {
  auto table = parse_debug_offsets(synthetic_debug_offsets());
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ(table->version, 0x030E00F0u);
  EXPECT_FALSE(table->free_threaded);
  EXPECT_EQ(table->runtime_interpreters_head, 1040u);
  EXPECT_EQ(table->interp_threads_main, 7344u);
  EXPECT_EQ(table->tstate_native_thread_id, 160u);
  EXPECT_EQ(table->eval_breaker, 24u);
  EXPECT_EQ(table->remote_debugger_support, 296u);
  EXPECT_EQ(table->remote_debugging_enabled, 7904u);
  EXPECT_EQ(table->debugger_pending_call, 0u);
  EXPECT_EQ(table->debugger_script_path, 4u);
  EXPECT_EQ(table->debugger_script_path_size, 512u);
}

TEST(DebugOffsets, RefusesWhatItDoesNotKnow) {
  std::string image = synthetic_debug_offsets();
  image[0] = 'X';
  EXPECT_EQ(parse_debug_offsets(image).error().kind, ErrorKind::not_python);
  EXPECT_EQ(parse_debug_offsets(synthetic_debug_offsets().substr(0, 100)).error().kind, ErrorKind::protocol);
  EXPECT_EQ(parse_debug_offsets(synthetic_debug_offsets(0x030F00F0)).error().kind, ErrorKind::refused);  // 3.15
  EXPECT_EQ(parse_debug_offsets(synthetic_debug_offsets(0x030E00A1)).error().kind, ErrorKind::refused);  // alpha
  EXPECT_TRUE(parse_debug_offsets(synthetic_debug_offsets(0x030E00C1)));                                 // rc
  std::string corrupt = synthetic_debug_offsets();
  put_u64(corrupt, 720, uint64_t{1} << 40);
  EXPECT_EQ(parse_debug_offsets(corrupt).error().kind, ErrorKind::protocol);
}

TEST(DebugOffsets, DetectsCookieAndVersion) {
  std::string image = synthetic_debug_offsets(0x030D00F0);
  EXPECT_TRUE(has_debug_cookie(image));
  EXPECT_EQ(version_from_hex(debug_offsets_version(image)).text(), "3.13.0");
  EXPECT_FALSE(has_debug_cookie(std::string(32, '\0')));
}

TEST(GuardedBootstrap, RunsOnceAndBindsNothing) {
  std::string bootstrap = "import sys\nprint('ran', 'é', \"'quotes'\")\n";
  std::string guarded = guarded_bootstrap(bootstrap, "t0k");
  std::string program =
      "before = set(globals())\n"
      "src = " +
      std::string("bytes.fromhex('");
  for (unsigned char c : guarded) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", c);
    program += hex;
  }
  program +=
      "').decode()\n"
      "exec(src, globals()); exec(src, globals())\n"
      "print(sorted(set(globals()) - before - {'before', 'src'}))\n";
  EXPECT_EQ(run_python(program), "ran é 'quotes'\n['sys']\n");  // 'sys' bound by the bootstrap itself
}

TEST(GuardedBootstrap, DoesNothingOnceExpired) {
  auto run_guarded = [](double expires_at) {
    std::string guarded = guarded_bootstrap("print('ran')\n", "t1k", {}, expires_at);
    std::string program = "src = bytes.fromhex('";
    for (unsigned char c : guarded) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", c);
      program += hex;
    }
    program += "').decode()\nexec(src, {})\nimport sys\nprint([k for k in vars(sys) if k.startswith('_pyhot')])\n";
    return run_python(program);
  };
  EXPECT_EQ(run_guarded(boot_clock_seconds() + 60), "ran\n['_pyhot_once_t1k']\n");
  EXPECT_EQ(run_guarded(boot_clock_seconds() - 1), "[]\n");  // not even the once-guard is set
}

TEST(Inspect, DeadPidIsNotFound) {
  pid_t pid = fork();
  if (pid == 0) {
    _exit(0);
  }
  waitpid(pid, nullptr, 0);
  auto info = inspect_interpreter(pid);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind, ErrorKind::not_found);
  auto injected = inject_python(pid, "pass", {});
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().kind, ErrorKind::not_found);
}

TEST(Inspect, SleepIsNotPython) {
  Child sleeper({"/bin/sleep", "100"});
  ASSERT_TRUE(sleeper.wait_for_map("libc"));
  auto injected = inject_python(sleeper.pid(), "pass", {});
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().kind, ErrorKind::not_python);
  EXPECT_NE(injected.error().message.find("not a Python process"), std::string::npos);
  EXPECT_EQ(read_status(sleeper.pid())->tracer_pid, 0);
}

TEST(Inspect, StaticDebianPython) {
  if (!std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << k_system_python << " is not installed";
  }
  Child python({k_system_python, "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map("libc"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto info = inspect_interpreter(python.pid());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->path, "/usr/bin/python3.11");
  EXPECT_FALSE(info->shared_library);
  EXPECT_EQ(info->load_bias, 0u);
  EXPECT_EQ(info->version.minor, 11);
  EXPECT_EQ(info->version_source, "Py_Version");
  EXPECT_NE(info->add_pending_call, 0u);
  EXPECT_NE(info->errno_location, 0u);
}

TEST(Inspect, SharedLibpythonHasABias) {
  std::string python_path = pyenv_python(12);
  if (python_path.empty()) {
    GTEST_SKIP() << "pyenv 3.12 is not installed";
  }
  Child python({python_path, "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map("libpython3.12"));
  auto info = inspect_interpreter(python.pid());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_TRUE(info->shared_library);
  EXPECT_NE(info->path.find("libpython3.12.so"), std::string::npos);
  EXPECT_EQ(info->load_bias % 4096, 0u);
  EXPECT_EQ(info->version.text().rfind("3.12.", 0), 0u);
  // The resolved function lies in an executable mapping of that file.
  bool inside = false;
  auto maps = read_maps(python.pid());
  ASSERT_TRUE(maps);
  for (const Mapping& m : *maps) {
    if (m.path == info->path && m.perms[2] == 'x' && info->add_pending_call >= m.start &&
        info->add_pending_call < m.end) {
      inside = true;
    }
  }
  EXPECT_TRUE(inside);
}

// A copy of a file under another name, in a fresh directory removed at scope exit.
class RenamedCopy {
 public:
  RenamedCopy(const std::string& from, const std::string& name) {
    char dir[] = "/tmp/pyhot_attach_copy_XXXXXX";
    m_dir = mkdtemp(dir);
    m_path = m_dir + "/" + name;
    std::filesystem::copy_file(from, m_path);
    std::filesystem::permissions(m_path, std::filesystem::perms::owner_all);
  }
  ~RenamedCopy() {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
  const std::string& path() const { return m_path; }

 private:
  std::string m_dir;
  std::string m_path;
};

TEST(Inspect, RenamedInterpreterIsPython) {
  if (!std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << k_system_python << " is not installed";
  }
  RenamedCopy service(k_system_python, "billing-service");
  Child python({service.path(), "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map(service.path()));
  auto maps = read_maps(python.pid());
  ASSERT_TRUE(maps);
  auto runtime = find_runtime_file(python.pid(), *maps);
  ASSERT_TRUE(runtime) << runtime.error().message;
  EXPECT_EQ(runtime->path, service.path());
  auto info = inspect_interpreter(python.pid());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->path, service.path());
  EXPECT_EQ(info->version.minor, 11);
}

TEST(Inspect, ProgramNamedPythonIsNotPython) {
  RenamedCopy impostor("/bin/sleep", "python3");
  Child sleeper({impostor.path(), "100"});
  ASSERT_TRUE(sleeper.wait_for_map(impostor.path()));
  auto maps = read_maps(sleeper.pid());
  ASSERT_TRUE(maps);
  auto runtime = find_runtime_file(sleeper.pid(), *maps);
  ASSERT_FALSE(runtime);
  EXPECT_EQ(runtime.error().kind, ErrorKind::not_python);
  auto info = inspect_interpreter(sleeper.pid());
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind, ErrorKind::not_python);
}

TEST(Inspect, RuntimeCacheGivesTheSameAnswer) {
  if (!std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << k_system_python << " is not installed";
  }
  Child python({k_system_python, "-c", "import time; time.sleep(30)"});
  Child sleeper({"/bin/sleep", "100"});
  ASSERT_TRUE(python.wait_for_map("python3.11"));
  ASSERT_TRUE(sleeper.wait_for_map("bin/sleep"));
  RuntimeFileCache cache;
  for (int round = 0; round < 2; ++round) {
    auto python_maps = read_maps(python.pid());
    auto sleeper_maps = read_maps(sleeper.pid());
    ASSERT_TRUE(python_maps && sleeper_maps);
    EXPECT_TRUE(find_runtime_file(python.pid(), *python_maps, &cache)) << "round " << round;
    EXPECT_FALSE(find_runtime_file(sleeper.pid(), *sleeper_maps, &cache)) << "round " << round;
  }
}

TEST(ProcInfo, ReadsTheFieldsPsShows) {
  Child sleeper({"/bin/sleep", "100"});
  ASSERT_TRUE(sleeper.wait_for_map("bin/sleep"));
  auto status = read_status(sleeper.pid());
  ASSERT_TRUE(status);
  EXPECT_EQ(status->parent_pid, getpid());
  EXPECT_EQ(status->ns_pid, sleeper.pid());
  EXPECT_EQ(status->real_uid, getuid());
  EXPECT_EQ(read_command_line(sleeper.pid()), "/bin/sleep 100");
  EXPECT_EQ(std::filesystem::path(read_executable(sleeper.pid())).filename(), "sleep");
  EXPECT_GT(read_start_time(sleeper.pid()), 0u);
  auto pids = list_pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), sleeper.pid()), pids.end());
}

TEST(Inject, RefusesPythonOlderThan38) {
  std::string python_path;
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator("/root/.pyenv/versions", ec)) {
    if (dir.path().filename().string().rfind("3.7.", 0) == 0) {
      python_path = (dir.path() / "bin" / "python3.7").string();
    }
  }
  if (python_path.empty() || !std::filesystem::exists(python_path)) {
    GTEST_SKIP() << "pyenv 3.7 is not installed";
  }
  Child python({python_path, "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map("libpython3.7"));
  auto injected = inject_python(python.pid(), "pass", {});
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().kind, ErrorKind::refused);
  EXPECT_NE(injected.error().message.find("needs 3.8"), std::string::npos) << injected.error().message;
}

TEST(Inject, NamesTheTracerOfAnAlreadyTracedProcess) {
  if (!std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << k_system_python << " is not installed";
  }
  Child python({k_system_python, "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map("libc"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(ptrace(PTRACE_SEIZE, python.pid(), nullptr, nullptr), 0);
  InjectOptions options;
  options.deadline = std::chrono::milliseconds(300);
  auto started = std::chrono::steady_clock::now();
  auto injected = inject_python(python.pid(), "pass", options);
  auto waited = std::chrono::steady_clock::now() - started;
  ptrace(PTRACE_DETACH, python.pid(), nullptr, nullptr);
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().kind, ErrorKind::permission_denied);
  EXPECT_NE(injected.error().message.find("already traced by PID " + std::to_string(getpid())), std::string::npos)
      << injected.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(250));  // it waited for the other tracer first
}

TEST(Inject, ExplainsADifferentUid) {
  if (geteuid() != 0 || !std::filesystem::exists(k_system_python)) {
    GTEST_SKIP() << "needs root and " << k_system_python;
  }
  Child python({k_system_python, "-c", "import time; time.sleep(30)"});
  ASSERT_TRUE(python.wait_for_map("libc"));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    // Drop to nobody, without CAP_SYS_PTRACE.
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    auto injected = inject_python(python.pid(), "pass", {});
    std::string line =
        injected ? "ok" : std::to_string(static_cast<int>(injected.error().kind)) + " " + injected.error().message;
    (void)!write(fds[1], line.data(), line.size());
    _exit(0);
  }
  close(fds[1]);
  std::string line;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) {
    line.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(line.rfind(std::to_string(static_cast<int>(ErrorKind::permission_denied)) + " ", 0), 0u) << line;
  EXPECT_NE(line.find("runs as uid 0 and pyhot as uid 65534"), std::string::npos) << line;
  EXPECT_EQ(read_status(python.pid())->tracer_pid, 0);
}

// The location table of a small function as CPython 3.13 compiled it, and
// the line of every code unit as its co_lines() says (0: no line).
TEST(RemoteStack, LineOfEveryInstructionAsCoLinesSays) {
  std::string hex =
      "8000d80809884189058041e60708dc181d98619c08d30c21990890318a5199088801d00c21f006000c0d8048f9f207000d22";
  std::string table;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    table.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  std::vector<int> expected = {1, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
                               5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 8, 8, 0, 0, 5, 5, 5};
  for (size_t unit = 0; unit < expected.size(); ++unit) {
    EXPECT_EQ(pyhot::loader::attach::line_of_instruction(table, 1, unit), expected[unit]) << "code unit " << unit;
  }
  EXPECT_EQ(pyhot::loader::attach::line_of_instruction(table, 1, expected.size() + 10), 0);
}

TEST(RemoteStack, RefusesTablesOfOtherVersions) {
  std::string table(pyhot::loader::attach::k_debug_offsets_size_3_13, '\0');
  std::memcpy(table.data(), "xdebugpy", 8);
  uint64_t version = 0x030E00F0;  // 3.14.0 final
  std::memcpy(table.data() + 8, &version, 8);
  auto parsed = pyhot::loader::attach::parse_stack_offsets(table);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().kind, pyhot::ErrorKind::refused);
  EXPECT_EQ(pyhot::loader::attach::parse_stack_offsets(std::string(600, 'x')).error().kind,
            pyhot::ErrorKind::not_python);
}
