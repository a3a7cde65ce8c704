#include "patch/plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <set>

#include "differ/rules.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

using differ::Rule;
using differ::Verdict;
using loader::Status;
using parser::DefinitionKind;

namespace {

AppliedChange describe(const differ::Change& change, const parser::SourceFile& before,
                       const parser::SourceFile& after) {
  AppliedChange applied;
  applied.qualname = differ::subject_of(change, before, after);
  applied.verdict = change.verdict;
  applied.reason = change.reason;
  applied.line = change.line;
  applied.line_delta = change.line_delta;
  if (!change.is_statement && change.verdict == Verdict::swap && change.old_index >= 0 && change.new_index >= 0) {
    const auto& was = before.definitions[static_cast<std::size_t>(change.old_index)];
    const auto& now = after.definitions[static_cast<std::size_t>(change.new_index)];
    applied.line_delta = static_cast<int>(now.range.end_line - now.range.start_line) -
                         static_cast<int>(was.range.end_line - was.range.start_line);
  }
  return applied;
}

// A rule's reason where the subject is the live code rather than a name.
std::string reason_against_live_code(Rule rule) {
  std::string reason(differ::rule_entry(rule).reason);
  auto at = reason.find("{name}");
  if (at != std::string::npos) {
    reason.replace(at, 6, "compared with the live code");
  }
  return reason;
}

bool is_identifier(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(),
                                      [](unsigned char c) { return c == '_' || std::isalnum(c) != 0 || c >= 0x80; });
}

// Imports and constants the new code may need. Without a snapshot a changed
// value cannot be told from state the program built up, and a name the live
// module lacks may be one the module deleted after running its statement
// (`_tmp = os.system(...); del _tmp`): only imports and assignments of
// literals (which run no code) are carried, binding names the live module
// lacks. Never an assignment into an attribute or item (`date.min = ...`
// changes another object, not a name), never a name the file deletes.
std::vector<PlannedUnit> carried_statements(const parser::SourceFile& after, const UnitBuilder& units) {
  std::vector<PlannedUnit> statements;
  auto deleted = deleted_names(after);
  for (const auto& statement : after.statements) {
    bool binds_names = statement.kind == parser::Statement::Kind::import ||
                       (statement.kind == parser::Statement::Kind::assignment && binds_a_literal(statement.text));
    if (!binds_names || !statement.scope_qualname.empty() || statement.conditional || statement.targets.empty()) {
      continue;
    }
    bool plain_names = std::all_of(statement.targets.begin(), statement.targets.end(), [&](const std::string& target) {
      return statement.kind == parser::Statement::Kind::import || is_identifier(target);
    });
    bool binds_deleted =
        std::any_of(statement.targets.begin(), statement.targets.end(),
                    [&](const std::string& target) { return deleted.count(target.substr(0, target.find('.'))) != 0; });
    if (!plain_names || binds_deleted) {
      continue;
    }
    PlannedUnit plan{units.statement(statement), {}, -1, false};
    plan.unit.only_if_missing = true;
    plan.change.qualname = "<module>: " + std::string(util::trim(statement.text.substr(0, statement.text.find('\n'))));
    plan.change.verdict = Verdict::reexec;
    plan.change.reason = std::string(differ::rule_entry(Rule::import_changed).reason);
    plan.change.line = statement.range.start_line;
    statements.push_back(std::move(plan));
  }
  return statements;
}

}  // namespace

Plan plan_from_snapshot(const parser::SourceFile& before, const parser::SourceFile& after,
                        const differ::ChangeSet& changes, const ChangeFilter& wanted, loader::SnapshotRecord snapshot) {
  Plan plan;
  plan.snapshot = std::move(snapshot);
  differ::ChangeSet selected;
  for (const auto& change : changes.changes) {
    if (!wanted(change)) {
      continue;
    }
    if (change.verdict == Verdict::restart) {
      plan.refused.push_back(describe(change, before, after));
      continue;
    }
    selected.changes.push_back(change);
  }
  if (!plan.refused.empty()) {
    return plan;
  }
  auto units = build_units(before, after, selected);
  std::size_t next_unit = 0;
  for (const auto& change : selected.changes) {
    AppliedChange applied = describe(change, before, after);
    if (change.is_statement && change.new_index < 0 && change.verdict != Verdict::remove) {
      applied.status = Status::kept;
      plan.kept.push_back(std::move(applied));
      continue;
    }
    plan.units.push_back({units[next_unit++], std::move(applied)});
  }
  return plan;
}

Plan first_touch_probe(const parser::SourceFile& after, const DefinitionFilter& wanted) {
  Plan probe;
  probe.first_touch = true;
  UnitBuilder units(after);
  for (std::size_t i = 0; i < after.definitions.size(); ++i) {
    const auto& def = after.definitions[i];
    if (def.in_main_guard || !wanted(def)) {
      continue;
    }
    bool is_class = def.kind == DefinitionKind::klass;
    AppliedChange change;
    change.qualname = def.qualname;
    change.line = def.def_line;
    change.verdict = is_class ? Verdict::define : Verdict::swap;
    change.reason = differ::rule_entry(is_class ? Rule::class_added : Rule::body_changed).reason;
    probe.units.push_back({units.definition(def, change.verdict), change, static_cast<int>(i)});
  }
  return probe;
}

Plan plan_first_touch(const parser::SourceFile& after, const Plan& probe, const std::vector<loader::UnitResult>& probed,
                      loader::SnapshotRecord snapshot) {
  Plan plan;
  plan.first_touch = true;
  plan.snapshot = std::move(snapshot);
  plan.record_when_empty = plan.snapshot.kind != loader::SnapshotRecord::Kind::nothing;
  UnitBuilder units(after);
  std::set<std::string> defined_classes;
  for (std::size_t i = 0; i < probe.units.size(); ++i) {
    Status status = i < probed.size() ? probed[i].status : Status::would_apply;
    const auto& def = after.definitions[static_cast<std::size_t>(probe.units[i].definition)];
    bool inside_new_class = std::any_of(defined_classes.begin(), defined_classes.end(), [&](const std::string& klass) {
      return util::starts_with(def.qualname, klass + ".");
    });
    if (status == Status::unchanged || inside_new_class) {
      continue;
    }
    if (status == Status::fields_changed) {
      // A live Enum whose members are not the body's: built when the class
      // was created, so only a restart gives the new ones.
      AppliedChange refused = probe.units[i].change;
      refused.verdict = Verdict::restart;
      std::string reason(differ::rule_entry(Rule::class_fields_changed).reason);
      reason.replace(reason.find("{name}"), 6, i < probed.size() ? probed[i].message : def.qualname);
      refused.reason = std::move(reason);
      plan.refused.push_back(std::move(refused));
      continue;
    }
    Verdict verdict = Verdict::swap;
    Rule rule = Rule::body_changed;
    if (status == Status::missing && probe.units[i].unit.conditional) {
      continue;  // its block did not run, or the module deletes it: a fresh import lacks it too
    }
    if (status == Status::missing) {
      verdict = Verdict::define;
      rule = def.kind == DefinitionKind::klass ? Rule::class_added : Rule::definition_added;
      if (def.kind == DefinitionKind::klass) {
        defined_classes.insert(def.qualname);
      }
      if (def.parent >= 0 && after.definitions[static_cast<std::size_t>(def.parent)].kind != DefinitionKind::klass) {
        continue;  // a new nested function comes with its enclosing function
      }
    } else if (status == Status::freevars_changed) {
      verdict = Verdict::rebind;
      rule = Rule::free_variables_changed;
    } else if (def.kind == DefinitionKind::klass) {
      continue;
    }
    PlannedUnit planned{units.definition(def, verdict), probe.units[i].change};
    planned.change.verdict = verdict;
    planned.change.reason = reason_against_live_code(rule);
    plan.units.push_back(std::move(planned));
  }
  if (!plan.refused.empty()) {
    plan.units.clear();  // nothing may be sent
    return plan;
  }
  if (plan.units.empty()) {
    return plan;
  }
  auto statements = carried_statements(after, units);
  plan.units.insert(plan.units.begin(), statements.begin(), statements.end());
  // In the order a fresh import runs the file: a statement may use a class
  // or function defined above it.
  std::stable_sort(plan.units.begin(), plan.units.end(),
                   [](const PlannedUnit& a, const PlannedUnit& b) { return a.change.line < b.change.line; });
  return plan;
}

bool belongs_to(const std::string& qualname, const std::string& target) {
  return qualname == target || util::starts_with(qualname, target + ".<locals>.");
}

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

namespace {

bool only_newline_breaks(std::string_view text) {
  // One memchr pass per byte that can start a break (memchr compares 32
  // bytes an instruction; a loop over every byte cost more than the rest of
  // a reload on a 2.6 MB module): \r \v \f \x1c-\x1e, and U+0085, U+2028,
  // U+2029 in UTF-8.
  const char* begin = text.data();
  const char* end = begin + text.size();
  for (char c : {'\r', '\v', '\f', '\x1c', '\x1d', '\x1e'}) {
    if (std::memchr(begin, c, text.size()) != nullptr) {
      return false;
    }
  }
  for (const char* at = begin; (at = static_cast<const char*>(std::memchr(at, '\xc2', end - at))) != nullptr; ++at) {
    if (at + 1 < end && static_cast<unsigned char>(at[1]) == 0x85) {
      return false;
    }
  }
  for (const char* at = begin; (at = static_cast<const char*>(std::memchr(at, '\xe2', end - at))) != nullptr; ++at) {
    if (at + 2 < end && static_cast<unsigned char>(at[1]) == 0x80 &&
        (static_cast<unsigned char>(at[2]) == 0xa8 || static_cast<unsigned char>(at[2]) == 0xa9)) {
      return false;
    }
  }
  return true;
}

// How many bytes `a` and `b` have in common at their start (with `from_end`,
// at their end): memcmp over blocks first, bytes only in the block that differs.
std::size_t common_length(std::string_view a, std::string_view b, bool from_end) {
  constexpr std::size_t k_block = 4096;
  std::size_t limit = std::min(a.size(), b.size());
  std::size_t same = 0;
  auto at = [&](std::string_view text, std::size_t n) {
    return from_end ? text.data() + text.size() - n : text.data() + n;
  };
  while (limit - same >= k_block) {
    const char* x = from_end ? at(a, same + k_block) : at(a, same);
    const char* y = from_end ? at(b, same + k_block) : at(b, same);
    if (std::memcmp(x, y, k_block) != 0) {
      break;
    }
    same += k_block;
  }
  while (same < limit && (from_end ? a[a.size() - 1 - same] == b[b.size() - 1 - same] : a[same] == b[same])) {
    ++same;
  }
  return same;
}

// The newlines in `text`, eight bytes at a time (a byte loop was most of
// what was left of source_edit on a 2.6 MB module).
std::size_t count_newlines(std::string_view text) {
  constexpr std::uint64_t k_newlines = 0x0a0a0a0a0a0a0a0aULL;
  constexpr std::uint64_t k_low7 = 0x7f7f7f7f7f7f7f7fULL;
  std::size_t count = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, text.data() + i, 8);
    std::uint64_t zero_where_newline = word ^ k_newlines;
    // The high bit of each byte that is zero, exactly (no borrow between bytes).
    std::uint64_t zeros = ~(((zero_where_newline & k_low7) + k_low7) | zero_where_newline | k_low7);
    // One bit per newline at bit 7 of its byte: the multiply sums the bytes
    // into the top one (at most 8; popcount is a libgcc call without -mpopcnt).
    count += static_cast<std::size_t>(((zeros >> 7) * 0x0101010101010101ULL) >> 56);
  }
  for (; i < text.size(); ++i) {
    count += text[i] == '\n' ? 1 : 0;
  }
  return count;
}

std::size_t count_lines(std::string_view text) {
  return count_newlines(text) + (!text.empty() && text.back() != '\n' ? 1 : 0);
}

}  // namespace

std::optional<loader::SourceEdit> source_edit(std::string_view base, const std::string& base_hash,
                                              std::string_view now) {
  if (!only_newline_breaks(base)) {
    return std::nullopt;
  }
  std::size_t prefix = common_length(base, now, false);
  // Back to the start of the line the first difference is on.
  std::size_t newline = prefix == 0 ? std::string_view::npos : base.rfind('\n', prefix - 1);
  prefix = newline == std::string_view::npos ? 0 : newline + 1;
  std::size_t suffix = common_length(base.substr(prefix), now.substr(prefix), true);
  // Forward to a line start in both texts (a tail that is the whole text
  // starts at its first line: `now` may be `base` with bytes put in front).
  auto at_line_start = [](std::string_view text, std::size_t tail) {
    return tail == 0 || tail >= text.size() || text[text.size() - tail - 1] == '\n';
  };
  while (suffix > 0 && !(at_line_start(base, suffix) && at_line_start(now, suffix))) {
    --suffix;
  }
  // Outside the edited lines `now` is `base`, and both ends of them are
  // just after a '\n', which no other break's bytes contain: only the
  // edited lines can bring one in.
  if (!only_newline_breaks(now.substr(prefix, now.size() - suffix - prefix))) {
    return std::nullopt;
  }
  loader::SourceEdit edit;
  edit.base = base_hash;
  // The text before `suffix` ends at a line start (or is all of base): its
  // lines are base's lines before the suffix's, and one pass counts both.
  edit.start = count_lines(base.substr(0, prefix));
  edit.end = edit.start + count_lines(base.substr(prefix, base.size() - suffix - prefix));
  edit.text = std::string(now.substr(prefix, now.size() - suffix - prefix));
  edit.length = now.size();
  return edit;
}

}  // namespace pyhot::patch
