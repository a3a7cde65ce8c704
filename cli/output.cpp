#include "cli/output.hpp"

namespace pyhot::cli {

using nlohmann::json;

json to_json(const std::vector<parser::SyntaxError>& errors) {
  json out = json::array();
  for (const auto& error : errors) {
    out.push_back({{"line", error.line}, {"column", error.column}, {"message", error.message}});
  }
  return out;
}

namespace {

json to_json(const patch::AppliedChange& change) {
  return {{"qualname", change.qualname},
          {"verdict", differ::to_string(change.verdict)},
          {"status", change.status ? json(loader::to_string(*change.status)) : json("")},
          {"line", change.line},
          {"reason", change.reason},
          {"message", change.message}};
}

json to_json(const std::vector<patch::AppliedChange>& changes) {
  json out = json::array();
  for (const auto& change : changes) {
    out.push_back(to_json(change));
  }
  return out;
}

}  // namespace

json to_json(const patch::PatchOutcome& outcome) {
  return {{"module", outcome.module},
          {"file", outcome.file},
          {"patch", outcome.patch_id ? json(*outcome.patch_id) : json(nullptr)},
          {"dry_run", outcome.dry_run},
          {"first_touch", outcome.first_touch},
          {"not_compared", outcome.not_compared},
          {"changes", to_json(outcome.changes)},
          {"refused", to_json(outcome.refused)},
          {"syntax_errors", json::array()}};
}

std::string past_tense(const patch::AppliedChange& change) {
  // Kept, or left as it is live (the agent says why in its message): not
  // what the verdict would have done.
  if (change.status == loader::Status::kept || change.status == loader::Status::unchanged) {
    return std::string(loader::to_string(*change.status));
  }
  return std::string(differ::past_tense(change.verdict));
}

}  // namespace pyhot::cli
