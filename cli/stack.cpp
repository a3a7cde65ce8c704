// `pyhot stack`: every thread's Python stack and, with --async, every
// asyncio task's await chain, as the agent sees them; when the agent cannot
// answer (a thread holds the GIL and does not let go), what the kernel says
// of each thread and, where the interpreter publishes its layout (3.13), the
// stacks read from outside while the process runs.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"
#include "loader/attach/interpreter.hpp"
#include "loader/attach/proc_info.hpp"
#include "loader/attach/remote_stack.hpp"
#include "loader/process.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

// What the kernel says a thread is doing: "running", "in futex".
std::string kernel_state(int pid, long tid) {
  auto syscall = loader::attach::read_thread_syscall(pid, static_cast<int>(tid));
  if (!syscall) {
    return "";
  }
  if (*syscall == -1) {
    return "running";
  }
  return "in " + loader::attach::syscall_name(*syscall);
}

json frames_json(const std::vector<loader::StackFrame>& frames) {
  json out = json::array();
  for (const auto& frame : frames) {
    json one = {{"file", frame.file}, {"line", frame.line}, {"function", frame.function}, {"text", frame.text}};
    if (!frame.locals.empty()) {
      json locals = json::object();
      for (const auto& [name, value] : frame.locals) {
        locals[name] = value;
      }
      one["locals"] = locals;
    }
    out.push_back(std::move(one));
  }
  return out;
}

void print_frames(const std::vector<loader::StackFrame>& frames) {
  for (const auto& frame : frames) {
    std::cout << "  File \"" << frame.file << "\", line " << frame.line << ", in " << frame.function << "\n";
    if (!frame.text.empty()) {
      std::cout << "    " << frame.text << "\n";
    }
    for (const auto& [name, value] : frame.locals) {
      std::cout << "      " << name << " = " << value << "\n";
    }
  }
}

std::string thread_heading(const loader::ThreadStack& thread, const std::string& state) {
  std::string text = "Thread " + thread.name + " (ident " + std::to_string(thread.ident);
  if (thread.native_id) {
    text += ", tid " + std::to_string(*thread.native_id);
  }
  if (thread.main) {
    text += ", main";
  }
  if (thread.daemon && *thread.daemon) {
    text += ", daemon";
  }
  text += ")";
  if (!state.empty()) {
    text += "  " + state;
  }
  return text;
}

int print_agent_stacks(int pid, const loader::StackReply& reply, const StackOptions& options) {
  std::map<std::int64_t, std::string> thread_names;
  for (const auto& thread : reply.threads) {
    thread_names[thread.ident] = thread.name;
  }
  if (options.json) {
    json threads = json::array();
    for (const auto& thread : reply.threads) {
      json one = {{"ident", thread.ident},
                  {"name", thread.name},
                  {"main", thread.main},
                  {"frames", frames_json(thread.frames)}};
      one["native_id"] = thread.native_id ? json(*thread.native_id) : json(nullptr);
      one["daemon"] = thread.daemon ? json(*thread.daemon) : json(nullptr);
      one["state"] = thread.native_id ? kernel_state(pid, *thread.native_id) : "";
      threads.push_back(std::move(one));
    }
    json document = {{"ok", true}, {"pid", pid}, {"source", "agent"}, {"threads", threads}};
    if (options.tasks) {
      json tasks = json::array();
      for (const auto& task : reply.tasks) {
        tasks.push_back({{"name", task.name},
                         {"loop", task.loop},
                         {"loop_thread", task.loop_thread ? json(*task.loop_thread) : json(nullptr)},
                         {"coroutine", task.coroutine},
                         {"awaiting", task.awaiting},
                         {"frames", frames_json(task.frames)}});
      }
      document["tasks"] = tasks;
    }
    print_json(document);
    return k_exit_done;
  }
  for (const auto& thread : reply.threads) {
    std::cout << thread_heading(thread, thread.native_id ? kernel_state(pid, *thread.native_id) : "") << "\n";
    print_frames(thread.frames);
    std::cout << "\n";
  }
  if (options.tasks) {
    if (reply.tasks.empty()) {
      std::cout << "No asyncio task is pending.\n";
    }
    for (const auto& task : reply.tasks) {
      std::string where = "not running";
      if (task.loop_thread) {
        auto name = thread_names.find(*task.loop_thread);
        where = "in thread " + (name != thread_names.end() ? name->second : std::to_string(*task.loop_thread));
      }
      std::cout << "Task '" << task.name << "' (" << task.coroutine << ", loop " << task.loop << " " << where << ")";
      if (!task.awaiting.empty()) {
        std::cout << "  awaiting " << task.awaiting;
      }
      std::cout << "\n";
      print_frames(task.frames);
      std::cout << "\n";
    }
  }
  return k_exit_done;
}

// A line of a file the target names, read through its root.
std::string source_line(int pid, const std::string& file, int line) {
  static std::map<std::string, std::string> texts;
  if (line <= 0 || file.empty() || file.front() != '/') {
    return "";
  }
  auto found = texts.find(file);
  if (found == texts.end()) {
    auto text = util::read_file(loader::attach::proc_path(pid, "root" + file));
    found = texts.emplace(file, text ? *text : "").first;
  }
  auto lines = util::split_lines(found->second);
  return static_cast<size_t>(line) <= lines.size() ? std::string(util::trim(lines[line - 1])) : "";
}

bool is_file(const std::string& path, std::string_view name) {
  return path.size() >= name.size() && path.compare(path.size() - name.size(), name.size(), name) == 0;
}

// pyhot's own frames are never shown: a thread whose code starts in the
// agent (below threading's bootstrap) is the agent's, and agent frames in
// another thread are left out.
std::vector<loader::attach::RemoteFrame> program_frames(const loader::attach::RemoteThread& thread) {
  std::vector<loader::attach::RemoteFrame> out;
  for (const auto& frame : thread.frames) {
    if (is_file(frame.file, "/pyhot_agent.py")) {
      if (out.empty() ||
          std::all_of(out.begin(), out.end(), [](const auto& f) { return is_file(f.file, "/threading.py"); })) {
        return {};
      }
      continue;
    }
    out.push_back(frame);
  }
  return out;
}

// The agent did not answer: the kernel's view of every thread, then the
// stacks read from outside where the interpreter publishes its layout.
int report_from_outside(int pid, const Error& why, const StackOptions& options) {
  json document = {{"ok", false}, {"pid", pid}, {"source", "outside"}, {"agent_error", why.message}};
  std::string reason = "the agent in process " + std::to_string(pid) + " did not answer within " +
                       std::to_string(options.timeout_ms) + " ms";
  if (why.message.find("did not answer") == std::string::npos) {
    reason += ": " + why.message;
  }
  json kernel = json::array();
  for (int tid : loader::attach::list_threads(pid)) {
    kernel.push_back({{"tid", tid}, {"main", tid == pid}, {"state", kernel_state(pid, tid)}});
  }
  document["kernel_threads"] = kernel;
  auto interpreter = loader::attach::inspect_interpreter(pid);
  Result<loader::attach::RemoteStacks> stacks = interpreter ? loader::attach::read_remote_stacks(*interpreter)
                                                            : Result<loader::attach::RemoteStacks>(interpreter.error());
  if (!options.json) {
    std::cout << "pyhot: " << reason << ".\n";
  }
  if (!stacks) {
    document["error"] = stacks.error().message;
    if (options.json) {
      print_json(document);
      return k_exit_failed;
    }
    std::cout << "Threads as the kernel sees them (a thread waiting in futex is usually waiting for the GIL):\n";
    for (const auto& thread : kernel) {
      std::cout << "  tid " << thread["tid"].get<int>() << (thread["main"].get<bool>() ? " (main)" : "") << "  "
                << thread["state"].get<std::string>() << "\n";
    }
    std::cout << "pyhot: " << error_text(stacks.error()) << "\n";
    return k_exit_failed;
  }
  json threads = json::array();
  const loader::attach::RemoteThread* holder = nullptr;
  for (const auto& thread : stacks->threads) {
    if (thread.holds_gil) {
      holder = &thread;
    }
  }
  if (!options.json) {
    if (holder != nullptr) {
      std::cout << "Thread tid " << holder->native_id << (holder->native_id == pid ? " (main)" : "")
                << " holds the GIL and is " << kernel_state(pid, holder->native_id) << ".\n";
    } else {
      std::cout << (stacks->gil_locked ? "The GIL is held, by no thread state pyhot could read.\n"
                                       : "No thread holds the GIL.\n");
    }
    std::cout << "Stacks read from outside the process (Python 3.13 debug offsets), innermost last:\n\n";
  }
  for (const auto& thread : stacks->threads) {
    auto own = program_frames(thread);
    if (own.empty() && !thread.frames.empty()) {
      continue;
    }
    std::vector<loader::StackFrame> frames;
    for (const auto& frame : own) {
      frames.push_back({frame.file, frame.line, frame.function, source_line(pid, frame.file, frame.line), {}});
    }
    std::string state = kernel_state(pid, thread.native_id);
    threads.push_back({{"ident", thread.thread_id},
                       {"native_id", thread.native_id},
                       {"holds_gil", thread.holds_gil},
                       {"state", state},
                       {"frames", frames_json(frames)},
                       {"error", thread.error}});
    if (!options.json) {
      std::cout << "Thread ident " << thread.thread_id << ", tid " << thread.native_id
                << (thread.native_id == pid ? ", main" : "") << (thread.holds_gil ? ", holds the GIL" : "") << "  "
                << state << "\n";
      print_frames(frames);
      if (!thread.error.empty()) {
        std::cout << "  (" << thread.error << ")\n";
      }
      std::cout << "\n";
    }
  }
  document["ok"] = true;
  document["gil_locked"] = stacks->gil_locked;
  document["threads"] = threads;
  if (options.json) {
    print_json(document);
  }
  return k_exit_done;
}

bool agent_cannot_answer(const Error& error) { return error.kind == ErrorKind::timeout; }

}  // namespace

int run_stack(const StackOptions& options) {
  auto process = loader::require_python_process(options.pid);
  if (!process) {
    print_error(error_text(process.error()), options.json);
    return k_exit_failed;
  }
  loader::ConnectOptions connect;
  connect.force = options.force;
  connect.timeout = std::chrono::milliseconds(options.timeout_ms);
  auto client = loader::connect_to_agent(*process, connect);
  if (!client) {
    if (agent_cannot_answer(client.error())) {
      return report_from_outside(options.pid, client.error(), options);
    }
    print_error(error_text(client.error()), options.json);
    return k_exit_failed;
  }
  (*client)->set_timeout(std::chrono::milliseconds(options.timeout_ms));
  loader::Agent agent(**client);
  auto reply = agent.stack({options.tasks, options.locals});
  if (!reply) {
    if (agent_cannot_answer(reply.error())) {
      return report_from_outside(options.pid, reply.error(), options);
    }
    print_error(error_text(reply.error()), options.json);
    return k_exit_failed;
  }
  return print_agent_stacks(options.pid, *reply, options);
}

}  // namespace pyhot::cli
