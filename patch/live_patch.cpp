#include "patch/live_patch.hpp"

#include <algorithm>

#include "differ/rules.hpp"
#include "parser/parser.hpp"
#include "patch/baseline.hpp"
#include "patch/edit_window.hpp"
#include "patch/parsed_cache.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

using loader::SnapshotRecord;
using loader::Status;

namespace {

PatchOutcome unchanged_outcome(const ModuleLocation& where) {
  PatchOutcome outcome;
  outcome.module = where.module;
  outcome.file = where.file;
  return outcome;
}

Error syntax_error(const ModuleLocation& where, const parser::SyntaxError& error) {
  return make_error(ErrorKind::syntax_error, "syntax error in " + where.file + ":" + std::to_string(error.line) + ":" +
                                                 std::to_string(error.column) + ": " + error.message);
}

loader::UnitRequest unit_request(const CompilationUnit& unit) {
  loader::UnitRequest request{unit.qualname,
                              unit.name,
                              parser::to_string(unit.kind),
                              differ::to_string(unit.verdict),
                              {},
                              unit.source,
                              unit.first_line,
                              unit.line_delta,
                              unit.targets,
                              unit.accessor,
                              unit.only_if_missing,
                              unit.duplicate,
                              unit.conditional};
  for (const auto& scope : unit.scopes) {
    request.scopes.push_back({scope.name, scope.is_class});
  }
  return request;
}

Result<loader::ApplyReply> send(loader::Agent& agent, const ModuleLocation& where, const parser::SourceFile& after,
                                const std::vector<PlannedUnit>& units, bool dry_run, bool verify,
                                const SnapshotRecord& snapshot, const Baseline& baseline = {}) {
  loader::ApplyRequest request;
  request.module = where.module;
  request.file = where.file;
  if (baseline.text) {
    request.source_edit = source_edit(*baseline.text, baseline.hash, after.text, baseline.known);
    if (snapshot.kind == SnapshotRecord::Kind::this_text) {
      // The text to record is most often the new text itself (the file
      // differs from what is live in that one definition): the same edit.
      request.snapshot_edit = snapshot.text == after.text
                                  ? request.source_edit
                                  : source_edit(*baseline.text, baseline.hash, snapshot.text, baseline.known);
    }
  }
  if (!request.source_edit) {
    request.source = after.text;
  }
  if (!dry_run && snapshot.kind != SnapshotRecord::Kind::nothing) {
    request.snapshot_hash = snapshot.kind == SnapshotRecord::Kind::this_text ? util::hash_hex(snapshot.text)
                            : baseline.new_hash.empty()                      ? util::hash_hex(after.text)
                                                                             : baseline.new_hash;
  }
  request.future_flags = future_features(after);
  request.dry_run = dry_run;
  request.verify = verify;
  request.snapshot = snapshot;
  for (const auto& planned : units) {
    request.units.push_back(unit_request(planned.unit));
  }
  return agent.apply(request);
}

// What is live (when the agent has a snapshot) and the file on disk, parsed:
// whole, or only the window an edit touches (patch/edit_window.hpp).
struct ParsedVersions {
  std::optional<parser::SourceFile> live;
  parser::SourceFile file;
  std::optional<CachedEntry> entry;  // the live text's parsed cache entry, read in place
  std::optional<EditWindow> window;  // set instead of `live` and `file`
  std::string live_hash;             // the agent's hash of the live text ("" unknown)
  std::string bytecode_cache;        // no baseline: what the module's .pyc proved

  Baseline baseline() const {
    if (live_hash.empty()) {
      return {};
    }
    if (window) {
      return {entry->text(), live_hash, util::to_hex(window->text_hash),
              KnownText{entry->newline_breaks_only(), entry->items()}};
    }
    return live ? Baseline{std::string_view(live->text), live_hash, {}, {}} : Baseline{};
  }
};

// The live text: by its hash from the parsed cache when pyhot parsed it
// before (the text then never crosses the socket), else from the agent.
Result<std::optional<std::string>> live_text(loader::Agent& agent, const ModuleLocation& where,
                                             ParsedVersions& versions) {
  auto live = where.snapshot ? Result<loader::LiveSnapshot>(*where.snapshot) : agent.snapshot_hash(where.module);
  if (!live) {
    return live.error();
  }
  if (!live->hash) {
    if (live->text) {
      return live->text;  // the text the module was imported from, or one recorded without a hash
    }
    // Never patched and no record of the import: the imported text proven
    // among the candidates pyhot can see (the agent records it).
    return recover_baseline(agent, where, &versions.bytecode_cache);
  }
  if (auto entry = ParsedCache().open_by_hash(*live->hash)) {
    versions.entry.emplace(std::move(*entry));
    versions.live_hash = *live->hash;
    return std::optional<std::string>();
  }
  auto text = agent.snapshot(where.module);
  if (text && text->has_value() && util::hash_hex(**text) == *live->hash) {
    versions.live_hash = *live->hash;
  }
  return text;
}

// The agent's snapshot text; when it has none, the imported text proven
// among the candidates pyhot can see (then recorded by the agent).
Result<std::optional<std::string>> live_snapshot(loader::Agent& agent, const ModuleLocation& where) {
  auto snapshot = agent.snapshot(where.module);
  if (!snapshot || snapshot->has_value()) {
    return snapshot;
  }
  return recover_baseline(agent, where);
}

// `windowed`: the caller takes an EditWindow in place of whole files.
// `utf8_checked` false: new_text is refused unless it is UTF-8 (the
// window checks only its own bytes, the rest being the live text's).
// new_text is moved into the window when one is taken.
Result<ParsedVersions> parse_versions(loader::Agent& agent, const ModuleLocation& where, std::string& new_text,
                                      bool windowed = false, bool utf8_checked = true) {
  ParsedVersions versions;
  auto snapshot = live_text(agent, where, versions);
  if (!snapshot) {
    return snapshot.error();
  }
  if (versions.entry && windowed) {
    if (auto window = edit_window(*versions.entry, std::move(new_text), where.file)) {
      versions.window = std::move(*window);
      return versions;
    }
  }
  if (!utf8_checked) {
    if (auto error = util::utf8_error(where.file, new_text)) {
      return *error;
    }
  }
  if (versions.entry) {
    if (auto whole = versions.entry->source_file(where.file)) {
      versions.live = std::move(*whole);
    } else {
      versions.entry.reset();
      versions.live_hash.clear();
      snapshot = live_snapshot(agent, where);
      if (!snapshot) {
        return snapshot.error();
      }
    }
  }
  if (versions.live) {
    auto file = parser::reparse_from(*versions.live, new_text, where.file);
    if (!file) {
      return file.error();
    }
    versions.file = std::move(*file);
    return versions;
  }
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
  // The file is parsed as an edit of the snapshot, so only the statements
  // the edit touches are parsed again: one fresh parse per reload, not two.
  if (snapshot->has_value()) {
    auto live = parser::parse_source(**snapshot, where.file);
    if (!live) {
      return live.error();
    }
    // A text parsed whole here is a module's imported text, the baseline
    // of a first reload: other processes that imported it (the workers of
    // a pre-fork server, one first reload each) load it instead of parsing
    // it again. Storing costs about 1% of the parse.
    if (live->errors.empty()) {
      ParsedCache().store(*live);
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

// Without a snapshot: probe with every wanted definition, then apply what
// the agent said differs.
Result<PatchOutcome> patch_first_touch(loader::Agent& agent, const ModuleLocation& where,
                                       const parser::SourceFile& after, const DefinitionFilter& wanted, bool dry_run,
                                       SnapshotRecord snapshot) {
  Plan probe = first_touch_probe(after, wanted);
  auto probed = send(agent, where, after, probe.units, true, true, SnapshotRecord::sent());
  if (!probed) {
    return probed.error();
  }
  return execute(agent, where, after,
                 plan_first_touch(after, probe, probed->results, std::move(snapshot), probed->absent), dry_run);
}

auto take_every_change = [](const differ::Change&) { return true; };
auto take_every_definition = [](const parser::Definition&) { return true; };

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

Result<PatchOutcome> patch_one_definition(loader::Agent& agent, const ModuleLocation& where,
                                          const ParsedVersions& versions, const std::string& qualname, bool dry_run) {
  const parser::SourceFile& after = versions.file;
  if (!after.errors.empty()) {
    return syntax_error(where, after.errors.front());
  }
  if (after.find(qualname) == nullptr) {
    return make_error(ErrorKind::not_found, qualname);
  }
  if (!versions.live) {
    // Only part of the file becomes live: no snapshot can be recorded yet.
    return patch_first_touch(
        agent, where, after, [&](const parser::Definition& def) { return belongs_to(def.qualname, qualname); }, dry_run,
        SnapshotRecord::none());
  }
  const parser::SourceFile& before = *versions.live;
  auto changes = differ::diff(before, after);
  bool touched = std::any_of(changes.changes.begin(), changes.changes.end(), [&](const differ::Change& change) {
    return !change.is_statement && belongs_to(change.qualname, qualname);
  });
  if (!touched) {
    return unchanged_outcome(where);
  }
  auto wanted = [&](const differ::Change& change) {
    if (change.is_statement) {
      // Imports the new code may need come along; nothing else at module level.
      return change.rule == differ::Rule::import_changed && change.qualname.empty();
    }
    return belongs_to(change.qualname, qualname);
  };
  std::string live_text = splice_definition(before, after, qualname);
  auto outcome =
      execute(agent, where, after, plan_from_snapshot(before, after, changes, wanted, SnapshotRecord::of(live_text)),
              dry_run, versions.baseline());
  if (outcome && !dry_run && outcome->refused.empty()) {
    // The agent now records the spliced text as live: keep what it parses to
    // (cheap: only the spliced definition's statement is parsed). When that
    // is the new text, it parses to `after` (reparse_from gives exactly
    // parse_source's result for a text and path).
    if (live_text == after.text) {
      ParsedCache().store(after);
    } else if (auto spliced = parser::reparse_from(before, live_text, where.file); spliced && spliced->errors.empty()) {
      ParsedCache().store(*spliced);
    }
  }
  return outcome;
}

}  // namespace

bool PatchOutcome::changed_anything() const {
  return std::any_of(changes.begin(), changes.end(),
                     [](const AppliedChange& change) { return change.status != Status::unchanged; });
}

bool PatchOutcome::applied_anything() const {
  return std::any_of(changes.begin(), changes.end(),
                     [](const AppliedChange& change) { return change.status == Status::applied; });
}

Result<ModuleLocation> locate_module(loader::Agent& agent, const std::string& module_or_file) {
  bool is_path =
      module_or_file.find('/') != std::string::npos || (module_or_file.size() > 3 && module_or_file.ends_with(".py"));
  if (is_path) {
    std::string file = util::absolute_path(module_or_file);
    auto found = agent.module_for_file(file, /*with_snapshot=*/true);
    if (!found) {
      return found.error();
    }
    return ModuleLocation{found->module, file, found->snapshot};
  }
  auto file = agent.locate(module_or_file);
  if (!file) {
    return file.error();
  }
  return ModuleLocation{module_or_file, *file, std::nullopt};
}

Result<PatchOutcome> execute(loader::Agent& agent, const ModuleLocation& where, const parser::SourceFile& after,
                             const Plan& plan, bool dry_run, const Baseline& baseline) {
  PatchOutcome outcome = unchanged_outcome(where);
  if (!plan.refused.empty()) {
    outcome.refused = plan.refused;
    return outcome;
  }
  outcome.first_touch = plan.first_touch;
  outcome.not_compared = plan.not_compared;
  outcome.dry_run = dry_run && plan.first_touch;
  if (plan.units.empty()) {
    outcome.changes = plan.kept;
    if (plan.record_when_empty && !dry_run) {
      // Nothing differs: record the file as what is live, so the next reload
      // diffs against it exactly.
      if (auto recorded = send(agent, where, after, {}, false, false, plan.snapshot); !recorded) {
        return recorded.error();
      }
    }
    return outcome;
  }
  auto reply = send(agent, where, after, plan.units, dry_run, false, plan.snapshot, baseline);
  if (!reply) {
    return reply.error();
  }
  outcome.dry_run = dry_run;
  outcome.patch_id = reply->patch;
  for (std::size_t i = 0; i < plan.units.size(); ++i) {
    if (!plan.units[i].reported) {
      continue;
    }
    AppliedChange change = plan.units[i].change;
    if (i < reply->results.size()) {
      change.status = reply->results[i].status;
      change.message = reply->results[i].message;
    }
    if (plan.units[i].unit.only_if_missing && change.status == Status::unchanged) {
      continue;  // first touch: an import or literal the live module already has
    }
    outcome.changes.push_back(std::move(change));
  }
  outcome.changes.insert(outcome.changes.end(), plan.kept.begin(), plan.kept.end());
  return outcome;
}

namespace {

// The steady reload of an edit, window-wise: the plan is made from the
// window, and the new entry written from the live one.
Result<PatchOutcome> patch_window(loader::Agent& agent, const ModuleLocation& where, const ParsedVersions& versions,
                                  bool dry_run) {
  const EditWindow& window = *versions.window;
  auto outcome = execute(
      agent, where, window.after,
      plan_from_snapshot(window.before, window.after, window.changes, take_every_change, SnapshotRecord::sent()),
      dry_run, versions.baseline());
  if (outcome && !dry_run && outcome->refused.empty() && !ParsedCache().store(window.entry_edit(*versions.entry))) {
    // The entry's tables are full: the whole file, once.
    if (auto whole = parser::parse_source(window.after.text, where.file)) {
      ParsedCache().store(*whole);
    }
  }
  return outcome;
}

// The steady reload of one definition, window-wise, when the edit changed
// that definition and nothing else of the file (no other byte): then the
// text the agent records, the old text with the definition spliced in, is
// the new text (patch_one_definition), and this is patch_window with its
// changes filtered as there. Nothing when that is not shown.
std::optional<Result<PatchOutcome>> patch_definition_window(loader::Agent& agent, const ModuleLocation& where,
                                                            const ParsedVersions& versions, const std::string& qualname,
                                                            bool dry_run) {
  const EditWindow& window = *versions.window;
  const parser::Definition* was = window.before.find(qualname);
  const parser::Definition* now = window.after.find(qualname);
  // A change belonging to the definition puts it in the edited span, and the
  // window holds no qualname of the span outside it (edit_window.hpp): the
  // window's first definition of that name is the whole file's.
  bool touched = std::any_of(window.changes.changes.begin(), window.changes.changes.end(), [&](const auto& change) {
    return !change.is_statement && belongs_to(change.qualname, qualname);
  });
  if (was == nullptr || now == nullptr || !touched) {
    return std::nullopt;
  }
  const std::string_view old_text = versions.entry->text();
  const std::string_view new_text = window.after.text;
  // `was` is in the span: its place in the live text.
  const std::uint32_t was_start = was->range.start_byte - window.span_shift;
  const std::uint32_t was_end = was->range.end_byte - window.span_shift;
  if (was_start > old_text.size() || was_end > old_text.size() ||
      old_text.substr(0, was_start) != new_text.substr(0, now->range.start_byte) ||
      old_text.substr(was_end) != new_text.substr(now->range.end_byte)) {
    return std::nullopt;  // the spliced text is not the new text
  }
  auto wanted = [&](const differ::Change& change) {
    if (change.is_statement) {
      return change.rule == differ::Rule::import_changed && change.qualname.empty();
    }
    return belongs_to(change.qualname, qualname);
  };
  auto outcome =
      execute(agent, where, window.after,
              plan_from_snapshot(window.before, window.after, window.changes, wanted, SnapshotRecord::sent()), dry_run,
              versions.baseline());
  if (outcome && !dry_run && outcome->refused.empty() && !ParsedCache().store(window.entry_edit(*versions.entry))) {
    if (auto whole = parser::parse_source(window.after.text, where.file)) {
      ParsedCache().store(*whole);
    }
  }
  if (outcome) {
    outcome->definition_source = definition_text(window.after, *now);
  }
  return outcome;
}

Result<PatchOutcome> patch_whole_definition(loader::Agent& agent, const ModuleLocation& where,
                                            const ParsedVersions& versions, const std::string& qualname, bool dry_run) {
  auto outcome = patch_one_definition(agent, where, versions, qualname, dry_run);
  if (outcome) {
    if (const auto* def = versions.file.find(qualname); def != nullptr) {
      outcome->definition_source = definition_text(versions.file, *def);
    }
  }
  return outcome;
}

}  // namespace

Result<PatchOutcome> patch_file(loader::Agent& agent, const ModuleLocation& where, std::string new_text, bool dry_run,
                                bool utf8_checked) {
  auto versions = parse_versions(agent, where, new_text, /*windowed=*/true, utf8_checked);
  if (!versions) {
    return versions.error();
  }
  if (versions->window) {
    return patch_window(agent, where, *versions, dry_run);
  }
  if (!versions->file.errors.empty()) {
    return syntax_error(where, versions->file.errors.front());
  }
  const auto& after = versions->file;
  auto outcome = versions->live
                     ? execute(agent, where, after,
                               plan_from_snapshot(*versions->live, after, differ::diff(*versions->live, after),
                                                  take_every_change, SnapshotRecord::sent()),
                               dry_run, versions->baseline())
                     : patch_first_touch(agent, where, after, take_every_definition, dry_run, SnapshotRecord::sent());
  if (outcome && !dry_run && outcome->refused.empty()) {
    // The agent now records this text as live: keep what it parses to.
    ParsedCache().store(versions->file);
  }
  if (outcome) {
    outcome->bytecode_cache = versions->bytecode_cache;
  }
  return outcome;
}

Result<PatchOutcome> patch_parsed(loader::Agent& agent, const ModuleLocation& where, const parser::SourceFile& after,
                                  const parser::SourceFile* live, bool dry_run) {
  if (!after.errors.empty()) {
    return syntax_error(where, after.errors.front());
  }
  if (live != nullptr) {
    return execute(
        agent, where, after,
        plan_from_snapshot(*live, after, differ::diff(*live, after), take_every_change, SnapshotRecord::sent()),
        dry_run);
  }
  auto snapshot = live_snapshot(agent, where);
  if (!snapshot) {
    return snapshot.error();
  }
  if (!snapshot->has_value()) {
    return patch_first_touch(agent, where, after, take_every_definition, dry_run, SnapshotRecord::sent());
  }
  auto before = parser::parse_source(**snapshot, where.file);
  if (!before) {
    return before.error();
  }
  return execute(
      agent, where, after,
      plan_from_snapshot(*before, after, differ::diff(*before, after), take_every_change, SnapshotRecord::sent()),
      dry_run);
}

Result<PatchOutcome> patch_definition(loader::Agent& agent, const ModuleLocation& where, std::string new_text,
                                      const std::string& qualname, bool dry_run) {
  auto versions = parse_versions(agent, where, new_text, /*windowed=*/true);
  if (!versions) {
    return versions.error();
  }
  if (versions->window) {
    if (auto outcome = patch_definition_window(agent, where, *versions, qualname, dry_run)) {
      return std::move(*outcome);
    }
    new_text = std::move(versions->window->after.text);
    auto whole = parse_versions(agent, where, new_text);  // once more, whole
    if (!whole) {
      return whole.error();
    }
    return patch_whole_definition(agent, where, *whole, qualname, dry_run);
  }
  return patch_whole_definition(agent, where, *versions, qualname, dry_run);
}

}  // namespace pyhot::patch
