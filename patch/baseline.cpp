#include "patch/baseline.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "util/file.hpp"
#include "util/subprocess.hpp"

namespace pyhot::patch {

namespace fs = std::filesystem;

namespace {

constexpr int k_recent_commits = 5;

// `git show SPEC` run beside the file; none when git or the revision has no such text.
std::optional<std::string> git_show(const fs::path& directory, const std::string& spec) {
  auto shown = util::run_capture({"git", "show", spec}, directory.string());
  if (!shown || shown->exit_code != 0) {
    return std::nullopt;
  }
  return shown->out;
}

std::vector<std::string> recent_commits(const fs::path& directory, const std::string& name) {
  std::vector<std::string> commits;
  auto log = util::run_capture({"git", "log", "-n", std::to_string(k_recent_commits), "--format=%H", "--", name},
                               directory.string());
  if (!log || log->exit_code != 0) {
    return commits;
  }
  std::size_t at = 0;
  while (at < log->out.size()) {
    auto end = log->out.find('\n', at);
    if (end == std::string::npos) {
      end = log->out.size();
    }
    if (end > at) {
      commits.push_back(log->out.substr(at, end - at));
    }
    at = end + 1;
  }
  return commits;
}

// Whether a bytecode cache of the file was written after the file last
// changed (with `any_age`: whether there is one): then the file is likely
// what was imported (the agent still proves it).
bool cache_not_older(const fs::path& file, bool any_age = false) {
  std::error_code error;
  auto written = fs::last_write_time(file, error);
  if (error) {
    return false;
  }
  fs::path cache = file.parent_path() / "__pycache__";
  std::string prefix = file.stem().string() + ".";
  for (fs::directory_iterator it(cache, error), end; !error && it != end; it.increment(error)) {
    const auto& name = it->path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".pyc")) {
      std::error_code time_error;
      if (auto cached = fs::last_write_time(it->path(), time_error); !time_error && (any_age || cached >= written)) {
        return true;
      }
    }
  }
  return false;
}

void add_candidate(std::vector<std::string>& candidates, std::optional<std::string> text) {
  if (text && std::find(candidates.begin(), candidates.end(), *text) == candidates.end()) {
    candidates.push_back(std::move(*text));
  }
}

}  // namespace

std::vector<std::string> baseline_candidates(const std::string& file) {
  std::vector<std::string> candidates;
  fs::path path(file);
  fs::path directory = path.parent_path();
  std::string name = path.filename().string();
  add_candidate(candidates, git_show(directory, ":./" + name));
  add_candidate(candidates, git_show(directory, "HEAD:./" + name));
  for (const auto& commit : recent_commits(directory, name)) {
    add_candidate(candidates, git_show(directory, commit + ":./" + name));
  }
  if (auto backup = util::read_file(file + "~")) {
    add_candidate(candidates, std::move(*backup));
  }
  if (cache_not_older(path)) {
    if (auto text = util::read_file(file)) {
      add_candidate(candidates, std::move(*text));
    }
  }
  return candidates;
}

Result<std::string> text_at_revision(const std::string& file, const std::string& revision) {
  fs::path path(file);
  auto text = git_show(path.parent_path(), revision + ":./" + path.filename().string());
  if (!text) {
    return make_error(ErrorKind::not_found, "git has no " + path.filename().string() + " at revision " + revision);
  }
  return *text;
}

Result<std::optional<std::string>> recover_baseline(loader::Agent& agent, const ModuleLocation& where,
                                                    std::string* note) {
  auto candidates = baseline_candidates(where.file);
  if (candidates.empty() && !cache_not_older(where.file, true)) {
    return std::optional<std::string>();
  }
  // Asked with a .pyc and no candidate too: the agent says what the .pyc proves.
  auto proven = agent.prove_baseline(where.module, candidates, note);
  if (!proven) {
    return proven.error();
  }
  if (!proven->has_value() || **proven >= candidates.size()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::move(candidates[**proven]));
}

Result<bool> assume_imported(loader::Agent& agent, const ModuleLocation& where, const std::string& text) {
  auto snapshot = agent.snapshot(where.module);
  if (!snapshot) {
    return snapshot.error();
  }
  if (snapshot->has_value()) {
    return false;
  }
  // An apply without units only records its text as what is live.
  loader::ApplyRequest request;
  request.module = where.module;
  request.file = where.file;
  request.source = text;
  request.snapshot = loader::SnapshotRecord::sent();
  if (auto recorded = agent.apply(request); !recorded) {
    return recorded.error();
  }
  return true;
}

}  // namespace pyhot::patch
