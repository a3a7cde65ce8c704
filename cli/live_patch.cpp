#include "cli/live_patch.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "cli/parsed_cache.hpp"
#include "differ/compilation_unit.hpp"
#include "differ/rules.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using differ::CompilationUnit;
using differ::Verdict;
using nlohmann::json;

namespace {

json unit_to_json(const CompilationUnit& unit) {
  json scopes = json::array();
  for (const auto& scope : unit.scopes) {
    scopes.push_back({{"name", scope.name}, {"kind", scope.is_class ? "class" : "function"}});
  }
  json document = {{"qualname", unit.qualname},
                   {"name", unit.name},
                   {"kind", parser::to_string(unit.kind)},
                   {"verdict", differ::to_string(unit.verdict)},
                   {"scopes", scopes},
                   {"source", unit.source},
                   {"first_line", unit.first_line},
                   {"line_delta", unit.line_delta},
                   {"targets", unit.targets}};
  if (!unit.accessor.empty()) {
    document["accessor"] = unit.accessor;
  }
  if (unit.only_if_missing) {
    document["only_if_missing"] = true;
  }
  return document;
}

std::string first_line(std::string_view text) { return std::string(util::trim(text.substr(0, text.find('\n')))); }

Error syntax_error(const ModuleLocation& where, const parser::SyntaxError& error) {
  return make_error(ErrorKind::syntax_error, "syntax error in " + where.file + ":" + std::to_string(error.line) + ":" +
                                                 std::to_string(error.column) + ": " + error.message);
}

// The agent records the sent source as live unless told otherwise; not
// sending it twice keeps the request (parsed while the target's GIL is held)
// small.
const json k_snapshot_is_source(json::value_t::discarded);

struct PlannedUnit {
  CompilationUnit unit;
  AppliedChange change;
  int definition = -1;  // index into the new file's definitions (first touch)
};

// Sends one apply request and folds the agent's per-unit results into the outcome.
Result<PatchOutcome> send_apply(loader::AgentChannel& agent, const ModuleLocation& where,
                                const parser::SourceFile& after, const std::vector<PlannedUnit>& planned, bool dry_run,
                                bool verify, const json& snapshot) {
  json units = json::array();
  for (const auto& plan : planned) {
    units.push_back(unit_to_json(plan.unit));
  }
  json request = {{"module", where.module}, {"file", where.file},
                  {"source", after.text},   {"future_flags", differ::future_features(after)},
                  {"dry_run", dry_run},     {"verify", verify},
                  {"units", units}};
  if (!snapshot.is_discarded()) {
    request["snapshot"] = snapshot;
  }
  auto response = agent.request("apply", request);
  if (!response) {
    return response.error();
  }
  PatchOutcome outcome;
  outcome.module = where.module;
  outcome.file = where.file;
  outcome.dry_run = dry_run;
  if (response->contains("patch") && (*response)["patch"].is_number_integer()) {
    outcome.patch_id = (*response)["patch"].get<int>();
  }
  const json& results = response->contains("results") ? (*response)["results"] : json::array();
  for (std::size_t i = 0; i < planned.size(); ++i) {
    AppliedChange change = planned[i].change;
    if (i < results.size()) {
      change.status = results[i].value("status", "applied");
      change.message = results[i].value("message", "");
    }
    outcome.changes.push_back(std::move(change));
  }
  return outcome;
}

AppliedChange describe(const differ::Change& change, const parser::SourceFile& before,
                       const parser::SourceFile& after) {
  AppliedChange applied;
  applied.verdict = differ::to_string(change.verdict);
  applied.reason = change.reason;
  applied.line = change.line;
  applied.line_delta = change.line_delta;
  if (change.is_statement) {
    const auto& statement = change.new_index >= 0 ? after.statements[static_cast<std::size_t>(change.new_index)]
                                                  : before.statements[static_cast<std::size_t>(change.old_index)];
    applied.qualname = (change.qualname.empty() ? "<module>" : change.qualname) + ": " + first_line(statement.text);
  } else {
    applied.qualname = change.qualname;
    if (change.verdict == Verdict::swap && change.old_index >= 0 && change.new_index >= 0) {
      const auto& was = before.definitions[static_cast<std::size_t>(change.old_index)];
      const auto& now = after.definitions[static_cast<std::size_t>(change.new_index)];
      applied.line_delta = static_cast<int>(now.range.end_line - now.range.start_line) -
                           static_cast<int>(was.range.end_line - was.range.start_line);
    }
  }
  return applied;
}

// With a snapshot: the differ knows exactly what changed and how.
Result<PatchOutcome> patch_from_snapshot(loader::AgentChannel& agent, const ModuleLocation& where,
                                         const parser::SourceFile& before, const parser::SourceFile& after,
                                         const differ::ChangeSet& changes,
                                         const std::function<bool(const differ::Change&)>& wanted, bool dry_run,
                                         const json& snapshot) {
  PatchOutcome refused;
  refused.module = where.module;
  refused.file = where.file;
  std::vector<PlannedUnit> planned;
  differ::ChangeSet selected;
  for (const auto& change : changes.changes) {
    if (!wanted(change)) {
      continue;
    }
    if (change.verdict == Verdict::restart) {
      refused.refused.push_back(describe(change, before, after));
      continue;
    }
    selected.changes.push_back(change);
  }
  if (!refused.refused.empty()) {
    return refused;
  }
  auto units = differ::build_units(before, after, selected);
  std::size_t next_unit = 0;
  PatchOutcome informational;
  for (const auto& change : selected.changes) {
    AppliedChange applied = describe(change, before, after);
    bool has_unit = !(change.is_statement && change.new_index < 0);
    if (!has_unit) {
      applied.status = "kept";
      informational.changes.push_back(applied);
      continue;
    }
    planned.push_back({units[next_unit++], applied});
  }
  if (planned.empty()) {
    informational.module = where.module;
    informational.file = where.file;
    return informational;
  }
  auto outcome = send_apply(agent, where, after, planned, dry_run, false, snapshot);
  if (outcome) {
    for (auto& kept : informational.changes) {
      outcome->changes.push_back(std::move(kept));
    }
  }
  return outcome;
}

// Without a snapshot (first touch): every definition is a candidate. A dry
// run asks the agent which differ from the live code, then the real apply
// sends exact verdicts.
Result<PatchOutcome> patch_first_touch(loader::AgentChannel& agent, const ModuleLocation& where,
                                       const parser::SourceFile& after,
                                       const std::function<bool(const parser::Definition&)>& wanted, bool dry_run,
                                       const json& snapshot) {
  std::vector<PlannedUnit> candidates;
  differ::UnitBuilder units(after);
  std::set<int> classes;
  for (std::size_t i = 0; i < after.definitions.size(); ++i) {
    const auto& def = after.definitions[i];
    if (def.in_main_guard || !wanted(def)) {
      continue;
    }
    bool is_class = def.kind == parser::DefinitionKind::klass;
    AppliedChange change;
    change.qualname = def.qualname;
    change.line = def.def_line;
    change.verdict = is_class ? "define" : "swap";
    change.reason = is_class ? differ::rule_entry(differ::Rule::class_added).reason
                             : differ::rule_entry(differ::Rule::body_changed).reason;
    candidates.push_back(
        {units.definition(def, is_class ? Verdict::define : Verdict::swap), change, static_cast<int>(i)});
  }
  auto probe = send_apply(agent, where, after, candidates, true, true, json::value_t::discarded);
  if (!probe) {
    return probe.error();
  }
  std::vector<PlannedUnit> planned;
  std::set<std::string> defined_classes;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::string& status = probe->changes[i].status;
    const auto& def = after.definitions[static_cast<std::size_t>(candidates[i].definition)];
    bool inside_new_class = std::any_of(defined_classes.begin(), defined_classes.end(), [&](const std::string& klass) {
      return util::starts_with(def.qualname, klass + ".");
    });
    if (status == "unchanged" || inside_new_class) {
      continue;
    }
    Verdict verdict = Verdict::swap;
    differ::Rule rule = differ::Rule::body_changed;
    if (status == "missing") {
      verdict = Verdict::define;
      rule = def.kind == parser::DefinitionKind::klass ? differ::Rule::class_added : differ::Rule::definition_added;
      if (def.kind == parser::DefinitionKind::klass) {
        defined_classes.insert(def.qualname);
      }
      if (def.parent >= 0 &&
          after.definitions[static_cast<std::size_t>(def.parent)].kind != parser::DefinitionKind::klass) {
        continue;  // a new nested function comes with its enclosing function
      }
    } else if (status == "freevars_changed") {
      verdict = Verdict::rebind;
      rule = differ::Rule::free_variables_changed;
    } else if (def.kind == parser::DefinitionKind::klass) {
      continue;
    }
    PlannedUnit plan{units.definition(def, verdict), candidates[i].change};
    plan.change.verdict = differ::to_string(verdict);
    plan.change.reason = std::string(differ::rule_entry(rule).reason);
    auto at = plan.change.reason.find("{name}");
    if (at != std::string::npos) {
      plan.change.reason.replace(at, 6, "compared with the live code");
    }
    planned.push_back(std::move(plan));
  }
  PatchOutcome outcome;
  outcome.module = where.module;
  outcome.file = where.file;
  outcome.first_touch = true;
  outcome.dry_run = dry_run;
  if (planned.empty()) {
    if (!dry_run && !snapshot.is_null()) {
      // Nothing differs: record the file as what is live, so the next
      // reload diffs against it exactly.
      if (auto recorded = send_apply(agent, where, after, {}, false, false, snapshot); !recorded) {
        return recorded.error();
      }
    }
    return outcome;
  }
  // Imports and constants the new code may need. Without a snapshot a changed
  // value cannot be told from state the program built up, so only names the
  // live module lacks are bound.
  std::vector<PlannedUnit> statements;
  for (const auto& statement : after.statements) {
    bool binds_names =
        statement.kind == parser::Statement::Kind::import || statement.kind == parser::Statement::Kind::assignment;
    if (binds_names && statement.scope_qualname.empty() && !statement.conditional && !statement.targets.empty()) {
      CompilationUnit unit = units.statement(statement);
      unit.only_if_missing = true;
      AppliedChange applied;
      applied.qualname = "<module>: " + first_line(statement.text);
      applied.verdict = "reexec";
      applied.reason = std::string(differ::rule_entry(differ::Rule::import_changed).reason);
      applied.line = statement.range.start_line;
      statements.push_back(PlannedUnit{std::move(unit), applied});
    }
  }
  planned.insert(planned.begin(), statements.begin(), statements.end());
  auto applied = send_apply(agent, where, after, planned, dry_run, false, snapshot);
  if (applied) {
    applied->first_touch = true;
    // Imports were only carried along; they are not changes the user made.
    applied->changes.erase(std::remove_if(applied->changes.begin(), applied->changes.end(),
                                          [](const AppliedChange& c) { return c.verdict == "reexec"; }),
                           applied->changes.end());
  }
  return applied;
}

Result<std::optional<std::string>> live_snapshot(loader::AgentChannel& agent, const std::string& module) {
  auto response = agent.request("snapshot", {{"module", module}});
  if (!response) {
    return response.error();
  }
  if (response->contains("source") && (*response)["source"].is_string()) {
    return std::optional<std::string>((*response)["source"].get<std::string>());
  }
  return std::optional<std::string>();
}

}  // namespace

std::string past_tense(const std::string& verdict) {
  static const std::map<std::string, std::string> k_words{
      {"swap", "swapped"},   {"relocate", "relocated"}, {"define", "defined"}, {"delete", "deleted"},
      {"rebind", "rebound"}, {"reexec", "re-ran"},      {"kept", "kept"}};
  auto it = k_words.find(verdict);
  return it == k_words.end() ? verdict : it->second;
}

nlohmann::json to_json(const PatchOutcome& outcome) {
  auto change_json = [](const AppliedChange& change) {
    return json{{"qualname", change.qualname}, {"verdict", change.verdict}, {"status", change.status},
                {"line", change.line},         {"reason", change.reason},   {"message", change.message}};
  };
  json changes = json::array();
  for (const auto& change : outcome.changes) {
    changes.push_back(change_json(change));
  }
  json refused = json::array();
  for (const auto& change : outcome.refused) {
    refused.push_back(change_json(change));
  }
  json errors = json::array();
  for (const auto& error : outcome.syntax_errors) {
    errors.push_back({{"line", error.line}, {"column", error.column}, {"message", error.message}});
  }
  return {{"module", outcome.module},
          {"file", outcome.file},
          {"patch", outcome.patch_id ? json(*outcome.patch_id) : json(nullptr)},
          {"dry_run", outcome.dry_run},
          {"first_touch", outcome.first_touch},
          {"changes", changes},
          {"refused", refused},
          {"syntax_errors", errors}};
}

Result<ModuleLocation> locate_module(loader::AgentChannel& agent, const std::string& module_or_file) {
  bool is_path = module_or_file.find('/') != std::string::npos ||
                 (module_or_file.size() > 3 && module_or_file.substr(module_or_file.size() - 3) == ".py");
  if (is_path) {
    std::string file = util::absolute_path(module_or_file);
    auto response = agent.request("module_for_file", {{"file", file}});
    if (!response) {
      return response.error();
    }
    return ModuleLocation{(*response)["module"].get<std::string>(), file};
  }
  auto response = agent.request("locate", {{"module", module_or_file}});
  if (!response) {
    return response.error();
  }
  return ModuleLocation{module_or_file, (*response)["file"].get<std::string>()};
}

namespace {

// What is live (when the agent has a snapshot) and the file on disk, parsed.
// The file is parsed as an edit of the snapshot, so tree-sitter re-parses
// only what changed: one fresh parse per reload, not two.
struct ParsedVersions {
  std::optional<parser::SourceFile> live;
  parser::SourceFile file;
};

Result<ParsedVersions> parse_versions(loader::AgentChannel& agent, const ModuleLocation& where,
                                      const std::string& new_text) {
  auto snapshot = live_snapshot(agent, where.module);
  if (!snapshot) {
    return snapshot.error();
  }
  ParsedVersions versions;
  if (snapshot->has_value()) {
    // What pyhot made of this text when it applied it: then only the
    // top-level statements the edit touches are parsed.
    if (auto cached = ParsedCache().load(**snapshot, where.file)) {
      auto file = parser::reparse_from(*cached, new_text, where.file);
      if (!file) {
        return file.error();
      }
      versions.live = std::move(*cached);
      versions.file = std::move(*file);
      return versions;
    }
  }
  if (snapshot->has_value()) {
    auto live = parser::parse_source(**snapshot, where.file);
    if (!live) {
      return live.error();
    }
    versions.live = std::move(*live);
  }
  auto file = versions.live ? parser::reparse_from(*versions.live, new_text, where.file)
                            : parser::parse_source(new_text, where.file);
  if (!file) {
    return file.error();
  }
  versions.file = std::move(*file);
  return versions;
}

}  // namespace

Result<PatchOutcome> patch_file(loader::AgentChannel& agent, const ModuleLocation& where, const std::string& new_text,
                                bool dry_run) {
  auto versions = parse_versions(agent, where, new_text);
  if (!versions) {
    return versions.error();
  }
  if (!versions->file.errors.empty()) {
    return syntax_error(where, versions->file.errors.front());
  }
  auto outcome = versions->live ? patch_parsed(agent, where, versions->file, &*versions->live, dry_run)
                                : patch_first_touch(
                                      agent, where, versions->file, [](const parser::Definition&) { return true; },
                                      dry_run, k_snapshot_is_source);
  if (outcome && !dry_run && outcome->refused.empty()) {
    // The agent now records this text as live: keep what it parses to.
    ParsedCache().store(versions->file);
  }
  return outcome;
}

Result<PatchOutcome> patch_parsed(loader::AgentChannel& agent, const ModuleLocation& where,
                                  const parser::SourceFile& after, const parser::SourceFile* live, bool dry_run) {
  if (!after.errors.empty()) {
    return syntax_error(where, after.errors.front());
  }
  auto take_everything = [](const differ::Change&) { return true; };
  if (live != nullptr) {
    return patch_from_snapshot(agent, where, *live, after, differ::diff(*live, after), take_everything, dry_run,
                               k_snapshot_is_source);
  }
  auto snapshot = live_snapshot(agent, where.module);
  if (!snapshot) {
    return snapshot.error();
  }
  if (!snapshot->has_value()) {
    return patch_first_touch(
        agent, where, after, [](const parser::Definition&) { return true; }, dry_run, k_snapshot_is_source);
  }
  auto before = parser::parse_source(**snapshot, where.file);
  if (!before) {
    return before.error();
  }
  return patch_from_snapshot(agent, where, *before, after, differ::diff(*before, after), take_everything, dry_run,
                             k_snapshot_is_source);
}

namespace {

bool belongs_to(const std::string& qualname, const std::string& target) {
  return qualname == target || util::starts_with(qualname, target + ".<locals>.");
}

// The live source after only `qualname` took its new text: the old snapshot
// with that definition's text replaced.
std::string splice_definition(const parser::SourceFile& before, const parser::SourceFile& after,
                              const std::string& qualname) {
  const auto* was = before.find(qualname);
  const auto* now = after.find(qualname);
  if (was == nullptr || now == nullptr) {
    return before.text;
  }
  std::string text = before.text.substr(0, was->range.start_byte);
  text += after.text.substr(now->range.start_byte, now->range.end_byte - now->range.start_byte);
  text += before.text.substr(was->range.end_byte);
  return text;
}

}  // namespace

namespace {

Result<PatchOutcome> patch_one_definition(loader::AgentChannel& agent, const ModuleLocation& where,
                                          const ParsedVersions& versions, const std::string& qualname, bool dry_run);

// A definition's text as the user wrote it, without its indentation.
std::string definition_text(const parser::SourceFile& file, const parser::Definition& def) {
  std::string text(def.indent, ' ');
  text += file.text.substr(def.range.start_byte, def.range.end_byte - def.range.start_byte);
  text = util::dedent(text);
  while (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  return text;
}

}  // namespace

Result<PatchOutcome> patch_definition(loader::AgentChannel& agent, const ModuleLocation& where,
                                      const std::string& new_text, const std::string& qualname, bool dry_run) {
  auto versions = parse_versions(agent, where, new_text);
  if (!versions) {
    return versions.error();
  }
  auto outcome = patch_one_definition(agent, where, *versions, qualname, dry_run);
  if (outcome) {
    if (const auto* def = versions->file.find(qualname); def != nullptr) {
      outcome->definition_source = definition_text(versions->file, *def);
    }
  }
  return outcome;
}

namespace {

Result<PatchOutcome> patch_one_definition(loader::AgentChannel& agent, const ModuleLocation& where,
                                          const ParsedVersions& versions, const std::string& qualname, bool dry_run) {
  const parser::SourceFile* after = &versions.file;
  if (!after->errors.empty()) {
    return syntax_error(where, after->errors.front());
  }
  if (after->find(qualname) == nullptr) {
    return make_error(ErrorKind::not_found, qualname);
  }
  if (!versions.live) {
    // Only part of the file becomes live: no snapshot can be recorded yet.
    return patch_first_touch(
        agent, where, *after, [&](const parser::Definition& def) { return belongs_to(def.qualname, qualname); },
        dry_run, json(nullptr));
  }
  const parser::SourceFile* before = &*versions.live;
  auto changes = differ::diff(*before, *after);
  bool touched = std::any_of(changes.changes.begin(), changes.changes.end(), [&](const differ::Change& change) {
    return !change.is_statement && belongs_to(change.qualname, qualname);
  });
  if (!touched) {
    PatchOutcome unchanged;
    unchanged.module = where.module;
    unchanged.file = where.file;
    return unchanged;
  }
  auto wanted = [&](const differ::Change& change) {
    if (change.is_statement) {
      // Imports the new code may need come along; nothing else at module level.
      return change.rule == differ::Rule::import_changed && change.qualname.empty();
    }
    return belongs_to(change.qualname, qualname);
  };
  std::string live_text = splice_definition(*before, *after, qualname);
  auto outcome = patch_from_snapshot(agent, where, *before, *after, changes, wanted, dry_run, json(live_text));
  if (outcome && !dry_run && outcome->refused.empty()) {
    // The agent now records the spliced text as live: keep what it parses to
    // (cheap: only the spliced definition's statement is parsed).
    if (auto spliced = parser::reparse_from(*before, live_text, where.file); spliced && spliced->errors.empty()) {
      ParsedCache().store(*spliced);
    }
  }
  return outcome;
}

}  // namespace

}  // namespace pyhot::cli
