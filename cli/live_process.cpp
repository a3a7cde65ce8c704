#include "cli/live_process.hpp"

#include <unistd.h>

#include <ctime>
#include <iostream>

#include "cli/output.hpp"
#include "loader/process.hpp"
#include "loader/secure_dir.hpp"
#include "patch/parsed_cache.hpp"

namespace pyhot::cli {

using nlohmann::json;

Result<std::unique_ptr<loader::AgentClient>> open_agent(int pid, bool force) {
  auto process = loader::require_python_process(pid);
  if (!process) {
    return process.error();
  }
  loader::ConnectOptions options;
  options.force = force;
  return loader::connect_to_agent(*process, options);
}

Result<Done> verify_shared_cache_directory() {
  const auto base = patch::ParsedCache::shared_directory();
  if (!base) {
    return Done{};
  }
  // /tmp is sticky: a directory of ours there cannot be renamed or replaced
  // by anyone else after this check, nor can anything be planted inside it.
  const uid_t me = getuid();
  for (const std::string& path : {*base, *base + "/parsed"}) {
    if (auto verified = loader::VerifiedDirectory::open(path, me, true); !verified) {
      return make_error(verified.error().kind, verified.error().message +
                                                   "; nothing was attached or read (it holds pyhot's parsed cache "
                                                   "without HOME; set PYHOT_CACHE_DIR to use another directory)");
    }
  }
  return Done{};
}

std::string error_text(const Error& error) {
  std::string text = error.message;
  if (!text.empty() && text.back() != '.') {
    text += ".";
  }
  return text;
}

json to_json(const std::vector<loader::PatchChange>& changes) {
  json out = json::array();
  for (const auto& change : changes) {
    out.push_back({{"qualname", change.qualname}, {"verdict", change.verdict}});
  }
  return out;
}

json to_json(const std::vector<loader::PatchRecord>& patches) {
  json out = json::array();
  for (const auto& patch : patches) {
    out.push_back({{"id", patch.id},
                   {"time", patch.time},
                   {"module", patch.module},
                   {"file", patch.file},
                   {"reverted", patch.reverted},
                   {"changes", to_json(patch.changes)}});
    if (!patch.label.empty()) {
      out.back()["label"] = patch.label;
    }
  }
  return out;
}

std::string format_time(double unix_seconds) {
  std::time_t seconds = static_cast<std::time_t>(unix_seconds);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

loader::AgentClient* open_or_report(int pid, bool force, bool json_output, json& document,
                                    std::unique_ptr<loader::AgentClient>& holder) {
  auto agent = open_agent(pid, force);
  if (!agent) {
    document = {{"ok", false}, {"error", agent.error().message}, {"error_kind", error_kind_name(agent.error().kind)}};
    if (!json_output) {
      std::cerr << "pyhot: " << agent.error().message << "\n";
    }
    return nullptr;
  }
  holder = std::move(*agent);
  return holder.get();
}

}  // namespace pyhot::cli
