// `pyhot autoreload PID [PATH...]` and `pyhot run --autoreload`: watch the
// target's source files and apply every settled save, one patch per save.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "loader/process.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"
#include "util/file_watcher.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;
using patch::PatchOutcome;
using Clock = std::chrono::steady_clock;

namespace {

// How often the target is asked which modules it has loaded: quickly while
// it is still importing, then backing off to once a second.
constexpr std::chrono::milliseconds k_first_module_poll{100};
constexpr std::chrono::milliseconds k_module_poll{1000};
constexpr std::chrono::milliseconds k_agent_wait_note{5000};

// Set from signal handlers.
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_child_pid = 0;
const util::FileWatcher* g_watcher = nullptr;

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

void install_signal_handlers() {
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

std::string real_path(const std::string& path) {
  std::error_code error;
  auto canonical = std::filesystem::canonical(path, error);
  return error ? util::absolute_path(path) : canonical.string();
}

std::string clock_time() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &local);
  return text;
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

// Everything the user sees: one line per event, or one JSON object per line.
class Reporter {
 public:
  explicit Reporter(bool json) : m_json(json), m_colour(!json && ::isatty(STDOUT_FILENO) != 0) {
    std::error_code error;
    m_cwd = std::filesystem::current_path(error).string();
    if (const char* no_colour = std::getenv("NO_COLOR"); no_colour != nullptr && *no_colour != '\0') {
      m_colour = false;
    }
  }

  bool json_output() const { return m_json; }

  std::string display(const std::string& file) const {
    if (!m_cwd.empty() && util::starts_with(file, m_cwd + "/")) {
      return file.substr(m_cwd.size() + 1);
    }
    return file;
  }

  void event(json document) const {
    document["time"] = clock_time();
    std::cout << document.dump() << std::endl;
  }

  // "12:01:02 views.py swapped views.results (+3 lines)"
  void line(const std::string& where, const std::string& text, const char* colour) const {
    if (m_colour) {
      std::cout << "\033[2m" << clock_time() << "\033[0m " << where << (where.empty() ? "" : " ") << colour << text
                << "\033[0m" << std::endl;
    } else {
      std::cout << clock_time() << " " << where << (where.empty() ? "" : " ") << text << std::endl;
    }
  }

  const char* green() const { return m_colour ? "\033[32m" : ""; }
  const char* yellow() const { return m_colour ? "\033[33m" : ""; }
  const char* red() const { return m_colour ? "\033[31m" : ""; }
  const char* dim() const { return m_colour ? "\033[2m" : ""; }
  const char* plain() const { return ""; }

 private:
  bool m_json = false;
  bool m_colour = false;
  std::string m_cwd;
};

struct WatchedFile {
  std::string module;  // empty: the target has not imported it (as far as we know)
  std::unique_ptr<parser::PythonParser> parser = std::make_unique<parser::PythonParser>();
  std::optional<parser::SourceFile> live;  // what we last applied: the code that is live
  bool reported_unmapped = false;
};

enum class FileResult { applied, unchanged, skipped, failed };

class Autoreload {
 public:
  Autoreload(const AutoreloadOptions& options, Reporter& reporter) : m_options(options), m_reporter(reporter) {}

  int run();

 private:
  bool target_alive();
  std::optional<int> child_exit_code();
  Result<std::unique_ptr<loader::AgentClient>> connect(bool attach);
  int wait_for_agent();
  Result<Done> watch_paths();
  void refresh_modules(loader::AgentChannel& agent, bool announce);
  void handle(const std::vector<util::FileEvent>& events);
  FileResult apply(loader::AgentChannel& agent, const std::string& path);
  int apply_once();
  // timing: where the time of this save went (parse, diff + apply), for --json.
  void report_outcome(const WatchedFile& file, const std::string& path, const PatchOutcome& outcome,
                      const json& timing);
  std::string dotted(const WatchedFile& file, const std::string& qualname) const;
  std::string some_names(const std::vector<std::string>& files) const;
  int finish(int code);

  const AutoreloadOptions& m_options;
  Reporter& m_reporter;
  std::unique_ptr<util::FileWatcher> m_watcher;
  loader::ProcessInfo m_process;
  unsigned long long m_start_time = 0;
  std::optional<int> m_child_status;
  std::map<std::string, WatchedFile> m_files;  // by real path
  std::set<std::string> m_flat_directories;    // directories of the target's modules
  std::chrono::milliseconds m_poll_interval = k_first_module_poll;
  bool m_applied_changes = false;  // did the last apply() change anything live
  std::string m_agent_directory;   // "<dir>/": where `pyhot run` puts the agent and its sitecustomize
};

bool Autoreload::target_alive() {
  if (m_options.child) {
    return !child_exit_code().has_value();
  }
  auto now = process_start_time(m_options.pid);
  return now != 0 && (m_start_time == 0 || now == m_start_time);
}

std::optional<int> Autoreload::child_exit_code() {
  if (m_child_status) {
    return m_child_status;
  }
  int status = 0;
  pid_t done = ::waitpid(m_options.pid, &status, WNOHANG);
  if (done == m_options.pid) {
    m_child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else if (done < 0 && errno == ECHILD) {
    m_child_status = k_exit_failed;
  }
  return m_child_status;
}

Result<std::unique_ptr<loader::AgentClient>> Autoreload::connect(bool attach) {
  loader::ConnectOptions options;
  options.attach = attach;
  options.force = m_options.force;
  return loader::connect_to_agent(m_process, options);
}

std::string Autoreload::dotted(const WatchedFile& file, const std::string& qualname) const {
  if (file.module.empty() || file.module == "__main__") {
    return qualname;
  }
  return file.module + "." + qualname;
}

// The directories of every module the target loaded from outside the
// standard library and site-packages; new ones are watched as they appear.
void Autoreload::refresh_modules(loader::AgentChannel& agent, bool announce) {
  auto modules = loader::Agent(agent).modules();
  if (!modules) {
    return;
  }
  std::vector<std::string> added;
  for (const auto& module : *modules) {
    std::string file = real_path(module.file);
    std::string name = module.name;
    if (file.empty() || name.empty() || (!m_agent_directory.empty() && util::starts_with(file, m_agent_directory))) {
      continue;  // pyhot's own sitecustomize is not the user's code
    }
    auto& watched = m_files[file];
    if (watched.module.empty()) {
      watched.module = name;
      added.push_back(file);
    }
    if (!m_options.paths.empty()) {
      continue;  // only what the user named is watched
    }
    std::string directory = std::filesystem::path(file).parent_path().string();
    if (m_flat_directories.insert(directory).second) {
      if (auto watching = m_watcher->watch(directory, util::FileWatcher::Depth::flat); !watching) {
        m_reporter.line("", "cannot watch " + directory + ": " + watching.error().message, m_reporter.red());
      }
    }
  }
  m_poll_interval = added.empty() ? std::min(m_poll_interval * 2, k_module_poll) : k_first_module_poll;
  if (!announce || added.empty() || !m_options.paths.empty()) {
    return;
  }
  if (m_reporter.json_output()) {
    json files = json::array();
    for (const auto& file : added) {
      files.push_back({{"file", file}, {"module", m_files[file].module}});
    }
    m_reporter.event({{"event", "watching"}, {"pid", m_options.pid}, {"files", files}});
    return;
  }
  m_reporter.line("",
                  "watching " + std::to_string(added.size()) + (added.size() == 1 ? " more file" : " more files") +
                      " of process " + std::to_string(m_options.pid) + " (" + some_names(added) + ")",
                  m_reporter.dim());
}

// "app.py, views.py, models.py and 12 more"
std::string Autoreload::some_names(const std::vector<std::string>& files) const {
  constexpr std::size_t k_shown = 4;
  std::string names;
  for (std::size_t i = 0; i < files.size() && i < k_shown; ++i) {
    names += (i == 0 ? "" : ", ") + m_reporter.display(files[i]);
  }
  if (files.size() > k_shown) {
    names += " and " + std::to_string(files.size() - k_shown) + " more";
  }
  return names;
}

Result<Done> Autoreload::watch_paths() {
  for (const auto& path : m_options.paths) {
    auto watching = m_watcher->watch(real_path(path));
    if (!watching) {
      return watching.error();
    }
  }
  return k_done;
}

void Autoreload::report_outcome(const WatchedFile& file, const std::string& path, const PatchOutcome& outcome,
                                const json& timing) {
  std::string shown = m_reporter.display(path);
  if (m_reporter.json_output()) {
    json document = to_json(outcome);
    bool applied = outcome.applied_anything();
    document["event"] = !outcome.refused.empty() ? "refused" : applied ? "applied" : "unchanged";
    document["pid"] = m_options.pid;
    document["timing"] = timing;
    m_reporter.event(document);
    return;
  }
  if (!outcome.refused.empty()) {
    for (const auto& change : outcome.refused) {
      m_reporter.line(shown + ":" + std::to_string(change.line),
                      "restart needed: " + dotted(file, change.qualname) + ": " + change.reason + " (nothing applied)",
                      m_reporter.red());
    }
    return;
  }
  int relocated = 0;
  bool any = false;
  for (const auto& change : outcome.changes) {
    if (change.status == loader::Status::unchanged) {
      continue;
    }
    any = true;
    if (change.verdict == differ::Verdict::relocate) {
      ++relocated;
      continue;
    }
    bool kept = change.status == loader::Status::kept;
    std::string text = past_tense(change) + " ";
    if (util::starts_with(change.qualname, "<module>: ")) {
      text += (file.module.empty() ? std::string("<module>") : file.module) + ": " + change.qualname.substr(10);
    } else {
      text += dotted(file, change.qualname);
    }
    if (!kept && change.verdict == differ::Verdict::swap && change.line_delta != 0) {
      int lines = change.line_delta < 0 ? -change.line_delta : change.line_delta;
      text += std::string(" (") + (change.line_delta > 0 ? "+" : "-") + std::to_string(lines) +
              (lines == 1 ? " line)" : " lines)");
    }
    if (kept) {
      text += " (removed from the file; stays in the live module)";
    }
    if (!change.message.empty()) {
      text += " — " + change.message;
    }
    const char* colour = kept || change.verdict == differ::Verdict::remove ? m_reporter.yellow() : m_reporter.green();
    m_reporter.line(shown, text, colour);
  }
  if (relocated > 0) {
    m_reporter.line(shown, "relocated " + std::to_string(relocated) + (relocated == 1 ? " definition" : " definitions"),
                    m_reporter.dim());
  }
  if (!any && !m_options.once) {
    m_reporter.line(shown, "no change to the live code", m_reporter.dim());
  }
}

// One settled file: read, re-parse incrementally, apply against what we last
// applied. On a syntax error or a restart verdict nothing is applied and the
// live state stays what it was, so the next good save carries everything.
FileResult Autoreload::apply(loader::AgentChannel& agent, const std::string& path) {
  auto& file = m_files[path];
  std::string shown = m_reporter.display(path);
  auto report_error = [&](const std::string& where, const std::string& kind, const std::string& message) {
    if (m_reporter.json_output()) {
      m_reporter.event({{"event", kind}, {"file", path}, {"module", file.module}, {"message", message}});
    } else {
      m_reporter.line(where, message + " (nothing applied)", m_reporter.red());
    }
  };
  if (file.module.empty()) {
    auto found = loader::Agent(agent).module_for_file(path);
    if (!found) {
      if (found.error().kind != ErrorKind::not_found) {
        report_error(shown, "error", found.error().message);
        return FileResult::failed;
      }
      if (!file.reported_unmapped) {
        file.reported_unmapped = true;
        if (m_reporter.json_output()) {
          m_reporter.event({{"event", "not_imported"}, {"file", path}, {"pid", m_options.pid}});
        } else {
          m_reporter.line(shown, "is not imported by process " + std::to_string(m_options.pid) + "; skipped",
                          m_reporter.dim());
        }
      }
      return FileResult::skipped;
    }
    file.module = found->module;
  }
  auto text = util::read_file(path);
  if (!text) {
    report_error(shown, "error", text.error().message);
    return FileResult::failed;
  }
  if (file.live && file.live->text == *text) {
    return FileResult::unchanged;
  }
  auto parse_started = Clock::now();
  auto parsed = file.parser->parse(*text, path);
  auto parsed_at = Clock::now();
  if (!parsed) {
    report_error(shown, "error", parsed.error().message);
    return FileResult::failed;
  }
  if (!parsed->errors.empty()) {
    const auto& error = parsed->errors.front();
    if (m_reporter.json_output()) {
      m_reporter.event({{"event", "syntax_error"},
                        {"file", path},
                        {"module", file.module},
                        {"line", error.line},
                        {"column", error.column},
                        {"message", error.message}});
    } else {
      m_reporter.line(shown + ":" + std::to_string(error.line) + ":" + std::to_string(error.column),
                      "syntax error: " + error.message + " (nothing applied)", m_reporter.red());
    }
    return FileResult::failed;
  }
  patch::ModuleLocation where{file.module, path};
  loader::Agent typed(agent);
  auto outcome = patch::patch_parsed(typed, where, *parsed, file.live ? &*file.live : nullptr, false);
  auto patched_at = Clock::now();
  if (!outcome) {
    if (!target_alive()) {
      return FileResult::failed;  // the exit is reported by the loop
    }
    if (outcome.error().kind == ErrorKind::not_found && outcome.error().message.find("No module named") == 0) {
      file.module.clear();  // unloaded from sys.modules: ask again next time
    }
    report_error(shown, "error", outcome.error().message);
    return FileResult::failed;
  }
  auto milliseconds = [](Clock::duration duration) {
    return std::chrono::duration_cast<std::chrono::microseconds>(duration).count() / 1000.0;
  };
  report_outcome(
      file, path, *outcome,
      {{"parse_ms", milliseconds(parsed_at - parse_started)}, {"patch_ms", milliseconds(patched_at - parsed_at)}});
  if (!outcome->refused.empty()) {
    return FileResult::failed;
  }
  m_applied_changes = outcome->applied_anything();
  file.live = std::move(*parsed);
  return FileResult::applied;
}

void Autoreload::handle(const std::vector<util::FileEvent>& events) {
  std::vector<std::string> changed;
  for (const auto& event : events) {
    if (event.kind == util::FileEvent::Kind::overflow) {
      // Events were lost: look at every file we know the target uses.
      for (const auto& [path, file] : m_files) {
        if (!file.module.empty()) {
          changed.push_back(path);
        }
      }
      continue;
    }
    std::string path = real_path(event.path);
    if (event.kind == util::FileEvent::Kind::deleted) {
      auto it = m_files.find(path);
      if (it == m_files.end() || it->second.module.empty()) {
        continue;
      }
      if (m_reporter.json_output()) {
        m_reporter.event({{"event", "deleted"}, {"file", path}, {"module", it->second.module}});
      } else {
        m_reporter.line(m_reporter.display(path), "was deleted; the live module keeps its code", m_reporter.yellow());
      }
      continue;
    }
    changed.push_back(path);
  }
  if (changed.empty()) {
    return;
  }
  auto agent = connect(false);
  if (!agent) {
    if (!target_alive()) {
      return;  // the loop reports the exit
    }
    if (m_reporter.json_output()) {
      m_reporter.event({{"event", "error"}, {"pid", m_options.pid}, {"message", agent.error().message}});
    } else {
      m_reporter.line("", "cannot reach the agent: " + agent.error().message + " (nothing applied)", m_reporter.red());
    }
    return;
  }
  std::set<std::string> done;
  for (const auto& path : changed) {
    if (done.insert(path).second) {
      apply(**agent, path);
    }
  }
}

// --once: every file whose text differs from what is live, then exit.
int Autoreload::apply_once() {
  auto agent = connect(true);
  if (!agent) {
    print_error(agent.error().message, m_options.json);
    return k_exit_failed;
  }
  std::vector<std::string> files;
  if (m_options.paths.empty()) {
    refresh_modules(**agent, false);
    for (const auto& [path, file] : m_files) {
      files.push_back(path);
    }
  }
  for (const auto& path : m_options.paths) {
    std::string real = real_path(path);
    std::error_code error;
    if (!std::filesystem::is_directory(real, error)) {
      files.push_back(real);
      continue;
    }
    util::FileWatcherOptions filter;
    for (auto it = std::filesystem::recursive_directory_iterator(real, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
      std::string name = it->path().filename().string();
      if (it->is_directory(error)) {
        if (filter.ignored_directories.count(name) > 0) {
          it.disable_recursion_pending();
        }
      } else if (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0 &&
                 !util::is_editor_scratch_name(name)) {
        files.push_back(real_path(it->path().string()));
      }
    }
  }
  int code = k_exit_done;
  int applied = 0;
  for (const auto& path : files) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      continue;
    }
    auto result = apply(**agent, path);
    applied += result == FileResult::applied && m_applied_changes ? 1 : 0;
    if (result == FileResult::failed) {
      code = k_exit_failed;
    }
  }
  if (!m_reporter.json_output() && applied == 0 && code == k_exit_done) {
    m_reporter.line(
        "", "nothing to apply: the live code of process " + std::to_string(m_options.pid) + " matches its files",
        m_reporter.dim());
  }
  return code;
}

int Autoreload::wait_for_agent() {
  // `pyhot run --autoreload`: the agent starts with the interpreter; wait for
  // it rather than inject, and give up only when the child is gone.
  auto started = Clock::now();
  bool noted = false;
  for (;;) {
    if (auto code = child_exit_code()) {
      return *code;
    }
    if (auto info = loader::inspect_process(m_options.pid)) {
      m_process = *info;
      if (loader::agent_is_listening(m_process)) {
        return -1;
      }
    }
    if (!noted && Clock::now() - started > k_agent_wait_note) {
      noted = true;
      m_reporter.line("",
                      "still waiting for the pyhot agent in process " + std::to_string(m_options.pid) +
                          " (is it a Python process started directly?)",
                      m_reporter.yellow());
    }
    m_watcher->wait(std::chrono::milliseconds(10));
  }
}

int Autoreload::finish(int code) {
  g_watcher = nullptr;
  return code;
}

int Autoreload::run() {
  util::FileWatcherOptions watch_options;
  watch_options.debounce = std::chrono::milliseconds(std::max(0, m_options.debounce_ms));
  auto watcher = util::FileWatcher::create(watch_options);
  if (!watcher) {
    print_error(watcher.error().message, m_options.json);
    return k_exit_failed;
  }
  m_watcher = std::move(*watcher);
  g_watcher = m_watcher.get();
  if (m_options.child) {
    g_child_pid = m_options.pid;
  }
  install_signal_handlers();

  if (m_options.child) {
    if (int code = wait_for_agent(); code >= 0) {
      return finish(code);
    }
  } else {
    auto process = loader::require_python_process(m_options.pid);
    if (!process) {
      print_error(process.error().message, m_options.json);
      return finish(k_exit_failed);
    }
    m_process = *process;
  }
  m_start_time = process_start_time(m_options.pid);
  if (auto directory = loader::agent_import_directory()) {
    m_agent_directory = real_path(*directory) + "/";
  }
  if (m_options.once) {
    return finish(apply_once());
  }
  // Directories first, so no save made after the banner is missed.
  if (auto watching = watch_paths(); !watching) {
    print_error(watching.error().message, m_options.json);
    return finish(k_exit_failed);
  }
  {
    auto agent = connect(!m_options.child);
    if (!agent) {
      print_error(agent.error().message, m_options.json);
      return finish(k_exit_failed);
    }
    refresh_modules(**agent, false);
  }
  std::vector<std::string> modules;
  for (const auto& [path, file] : m_files) {
    if (!file.module.empty()) {
      modules.push_back(path);
    }
  }
  if (m_reporter.json_output()) {
    json files = json::array();
    for (const auto& [path, file] : m_files) {
      files.push_back({{"file", path}, {"module", file.module}});
    }
    json paths = json::array();
    for (const auto& path : m_options.paths) {
      paths.push_back(real_path(path));
    }
    m_reporter.event({{"event", "watching"},
                      {"pid", m_options.pid},
                      {"files", m_options.paths.empty() ? files : json::array()},
                      {"paths", paths},
                      {"debounce_ms", m_options.debounce_ms}});
  } else {
    std::string what = m_options.paths.empty()
                           ? std::to_string(modules.size()) + " module files (" + some_names(modules) + ") in " +
                                 std::to_string(m_flat_directories.size()) +
                                 (m_flat_directories.size() == 1 ? " directory" : " directories")
                           : std::to_string(m_watcher->watched_directories()) + " directories";
    m_reporter.line("",
                    "watching " + what + " for process " + std::to_string(m_options.pid) +
                        (m_options.child ? "" : " (Ctrl-C stops; the process keeps what was applied)"),
                    m_reporter.dim());
  }

  auto next_poll = Clock::now() + m_poll_interval;
  while (g_stop == 0) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now());
    auto events = m_watcher->wait(std::max(wait, std::chrono::milliseconds(0)));
    if (!events.empty()) {
      handle(events);
    }
    if (!target_alive()) {
      int code = m_options.child ? *child_exit_code() : k_exit_done;
      if (m_reporter.json_output()) {
        m_reporter.event({{"event", "target_exited"}, {"pid", m_options.pid}, {"status", code}});
      } else {
        m_reporter.line("",
                        "process " + std::to_string(m_options.pid) + " exited" +
                            (m_options.child ? " with status " + std::to_string(code) : "") + "; stopped watching",
                        m_reporter.dim());
      }
      return finish(code);
    }
    if (Clock::now() >= next_poll && g_stop == 0) {
      if (m_options.paths.empty()) {
        if (auto agent = connect(false)) {
          refresh_modules(**agent, true);
        }
      }
      next_poll = Clock::now() + m_poll_interval;
    }
  }
  if (m_reporter.json_output()) {
    m_reporter.event({{"event", "stopped"}, {"pid", m_options.pid}});
  } else {
    m_reporter.line("", "stopped; process " + std::to_string(m_options.pid) + " keeps what was applied",
                    m_reporter.dim());
  }
  return finish(k_exit_done);
}

}  // namespace

int run_autoreload(const AutoreloadOptions& options) {
  if (options.debounce_ms < 0) {
    print_error("--debounce takes a number of milliseconds >= 0", options.json);
    return k_exit_usage;
  }
  Reporter reporter(options.json);
  Autoreload autoreload(options, reporter);
  return autoreload.run();
}

}  // namespace pyhot::cli
