#include "cli/autoreload_output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli/output.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

std::string clock_time() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &local);
  return text;
}

std::string dotted(const std::string& module, const std::string& qualname) {
  if (module.empty() || module == "__main__") {
    return qualname;
  }
  return module + "." + qualname;
}

// "swapped views.results (+3 lines)", "deleted views.old", ...
std::string change_text(const std::string& module, const patch::AppliedChange& change) {
  bool kept = change.status == loader::Status::kept;
  std::string text = past_tense(change) + " ";
  if (util::starts_with(change.qualname, "<module>: ")) {
    text += (module.empty() ? std::string("<module>") : module) + ": " + change.qualname.substr(10);
  } else {
    text += dotted(module, change.qualname);
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
  return text;
}

}  // namespace

AutoreloadOutput::AutoreloadOutput(bool json) : m_json(json), m_colour(!json && ::isatty(STDOUT_FILENO) != 0) {
  std::error_code error;
  m_cwd = std::filesystem::current_path(error).string();
  if (const char* no_colour = std::getenv("NO_COLOR"); no_colour != nullptr && *no_colour != '\0') {
    m_colour = false;
  }
}

std::string AutoreloadOutput::display(const std::string& file) const {
  if (!m_cwd.empty() && util::starts_with(file, m_cwd + "/")) {
    return file.substr(m_cwd.size() + 1);
  }
  return file;
}

std::string AutoreloadOutput::some_names(const std::vector<std::string>& files) const {
  constexpr std::size_t k_shown = 4;
  std::string names;
  for (std::size_t i = 0; i < files.size() && i < k_shown; ++i) {
    names += (i == 0 ? "" : ", ") + display(files[i]);
  }
  if (files.size() > k_shown) {
    names += " and " + std::to_string(files.size() - k_shown) + " more";
  }
  return names;
}

void AutoreloadOutput::event(json document) const {
  document["time"] = clock_time();
  std::cout << document.dump() << std::endl;
}

void AutoreloadOutput::line(const std::string& where, const std::string& text, const char* colour) const {
  if (m_colour) {
    std::cout << "\033[2m" << clock_time() << "\033[0m " << where << (where.empty() ? "" : " ") << colour << text
              << "\033[0m" << std::endl;
  } else {
    std::cout << clock_time() << " " << where << (where.empty() ? "" : " ") << text << std::endl;
  }
}

void report_patch(const AutoreloadOutput& output, int pid, const std::string& module, const std::string& path,
                  const patch::PatchOutcome& outcome, const json& timing, bool quiet) {
  std::string shown = output.display(path);
  if (output.json_output()) {
    json document = to_json(outcome);
    bool applied = outcome.applied_anything();
    document["event"] = !outcome.refused.empty() ? "refused" : applied ? "applied" : "unchanged";
    document["pid"] = pid;
    document["timing"] = timing;
    output.event(document);
    return;
  }
  if (!outcome.refused.empty()) {
    for (const auto& change : outcome.refused) {
      output.line(shown + ":" + std::to_string(change.line),
                  "restart needed: " + dotted(module, change.qualname) + ": " + change.reason + " (nothing applied)",
                  output.red());
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
    bool removal = change.status == loader::Status::kept || change.verdict == differ::Verdict::remove;
    output.line(shown, change_text(module, change), removal ? output.yellow() : output.green());
  }
  if (relocated > 0) {
    output.line(shown, "relocated " + std::to_string(relocated) + (relocated == 1 ? " definition" : " definitions"),
                output.dim());
  }
  if (!any && !quiet) {
    output.line(shown, "no change to the live code", output.dim());
  }
}

}  // namespace pyhot::cli
