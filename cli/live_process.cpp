#include "cli/live_process.hpp"

#include <ctime>
#include <iostream>

#include "cli/output.hpp"
#include "loader/process.hpp"

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
