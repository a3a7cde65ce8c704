// Internal to autoreload: everything its user sees, one line per event
// (coloured on a terminal) or one JSON object per line (--json).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "patch/live_patch.hpp"

namespace pyhot::cli {

class AutoreloadOutput {
 public:
  explicit AutoreloadOutput(bool json);

  bool json_output() const { return m_json; }

  // A path relative to the working directory when it is below it.
  std::string display(const std::string& file) const;

  // "app.py, views.py, models.py and 12 more"
  std::string some_names(const std::vector<std::string>& files) const;

  void event(nlohmann::json document) const;

  // "12:01:02 views.py swapped views.results (+3 lines)"
  void line(const std::string& where, const std::string& text, const char* colour) const;

  const char* green() const { return m_colour ? "\033[32m" : ""; }
  const char* yellow() const { return m_colour ? "\033[33m" : ""; }
  const char* red() const { return m_colour ? "\033[31m" : ""; }
  const char* dim() const { return m_colour ? "\033[2m" : ""; }

 private:
  bool m_json = false;
  bool m_colour = false;
  std::string m_cwd;
};

// What one save of `path` (module `module`, "" when not known) did to
// process `pid`; timing says where its time went (--json). `quiet` leaves
// out the "no change" line (--once).
void report_patch(const AutoreloadOutput& output, int pid, const std::string& module, const std::string& path,
                  const patch::PatchOutcome& outcome, const nlohmann::json& timing, bool quiet);

}  // namespace pyhot::cli
