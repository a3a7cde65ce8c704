#include "patch/plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string_view>

#include "differ/rules.hpp"
#include "patch/import_effects.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

using differ::Rule;
using differ::Verdict;
using loader::Status;
using parser::DefinitionKind;
using util::is_identifier;
using util::is_identifier_char;

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

// Whether the statement names a definition the live module lacks (its
// scope's, or one at module level): `DOUBLE = doubled(BASE)` beside a new
// `def doubled` cannot have run when the module was imported. The agent
// binds only targets the live namespace lacks, and runs none while the
// module's body is still running (a statement below a blocking `main()`).
bool uses_a_new_definition(const parser::Statement& statement, const std::set<std::string>& new_definitions) {
  const std::string& text = statement.text;
  auto equals = text.find('=');
  for (std::size_t i = equals == std::string::npos ? text.size() : equals + 1; i < text.size();) {
    if (!is_identifier_char(text[i]) || (i > 0 && (is_identifier_char(text[i - 1]) || text[i - 1] == '.'))) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && is_identifier_char(text[end])) {
      ++end;
    }
    std::string word = text.substr(i, end - i);
    std::string scoped = statement.scope_qualname.empty() ? word : statement.scope_qualname + "." + word;
    if (new_definitions.count(word) != 0 || new_definitions.count(scoped) != 0) {
      return true;
    }
    i = end;
  }
  return false;
}

// Imports and constants the new code may need, or the file changed. Without
// a snapshot a name the live module lacks may be one the module deleted
// after running its statement (`_tmp = os.system(...); del _tmp`): only
// imports and assignments of literals (which run no code) are carried, at
// module level and in live classes (`live_classes`), binding names the
// live namespace lacks; the agent also rebinds a literal the live value of
// which is other immutable data nothing but the file can have set
// (PROTOCOL.md, only_if_missing). Module-level values computed from names
// by operators alone (`DOUBLE = RATE * 2`) are carried too: the agent
// computes them again when every name they use is such data. Never an assignment into an attribute or
// item (`date.min = ...` changes another object, not a name), never a name
// the file deletes.
std::vector<PlannedUnit> carried_statements(const parser::SourceFile& after, const UnitBuilder& units,
                                            const std::set<std::string>& live_classes,
                                            const std::set<std::string>& new_definitions) {
  std::vector<PlannedUnit> statements;
  auto deleted = deleted_names(after);
  for (const auto& statement : after.statements) {
    bool assignment = statement.kind == parser::Statement::Kind::assignment;
    bool literal = assignment && binds_a_literal(statement.text);
    bool at_module = statement.scope_qualname.empty();
    bool binds_names = (statement.kind == parser::Statement::Kind::import && at_module) || literal ||
                       (assignment && at_module && binds_a_value_of_names(statement.text)) ||
                       (assignment && uses_a_new_definition(statement, new_definitions));
    if (!binds_names || statement.conditional || statement.targets.empty() ||
        (!at_module && live_classes.count(statement.scope_qualname) == 0)) {
      continue;
    }
    bool plain_names = std::all_of(statement.targets.begin(), statement.targets.end(), [&](const std::string& target) {
      return statement.kind == parser::Statement::Kind::import || is_identifier(target);
    });
    bool binds_deleted =
        at_module && std::any_of(statement.targets.begin(), statement.targets.end(), [&](const std::string& target) {
          return deleted.count(target.substr(0, target.find('.'))) != 0;
        });
    bool is_import = statement.kind == parser::Statement::Kind::import;
    if (!plain_names || (binds_deleted && !is_import)) {
      continue;
    }
    PlannedUnit plan{units.statement(statement), {}, -1, false};
    if (binds_deleted) {
      // `from opcode import (__all__ as _opcodes_all, ...)` above `del
      // _opcodes_all`: the other names it imports are carried.
      drop_targets_deleted_below(after, statement, plan.unit);
      if (plan.unit.targets.empty()) {
        continue;
      }
    }
    plan.unit.only_if_missing = true;
    std::string subject = at_module ? "<module>" : statement.scope_qualname;
    plan.change.qualname =
        subject + ": " + std::string(util::trim(statement.text.substr(0, statement.text.find('\n'))));
    plan.change.verdict = Verdict::reexec;
    plan.change.reason =
        std::string(differ::rule_entry(statement.kind == parser::Statement::Kind::import ? Rule::import_changed
                                       : at_module                                       ? Rule::constant_changed
                                                                                         : Rule::class_constant_changed)
                        .reason);
    plan.change.line = statement.range.start_line;
    // Reported when it binds something (live_patch's execute leaves out
    // the ones the agent found unchanged): a change the file made.
    plan.reported = true;
    statements.push_back(std::move(plan));
  }
  return statements;
}

// "3 (first `x = f()`, line 4)": how many there are and where the first is.
std::string count_and_first(std::size_t count, const std::string& first, std::uint32_t line) {
  return std::to_string(count) + ", first `" + first + "` at line " + std::to_string(line);
}

// What the file says that first touch cannot compare with the live module:
// statements that run code (their values may be state the program built
// up, and running them again may do what the user did not ask for).
void note_statements_not_compared(const parser::SourceFile& after, std::vector<std::string>& notes) {
  std::size_t at_module = 0;
  std::size_t in_classes = 0;
  const parser::Statement* first_module = nullptr;
  const parser::Statement* first_class = nullptr;
  std::size_t computed = 0;
  const parser::Statement* first_computed = nullptr;
  for (const auto& statement : after.statements) {
    using Kind = parser::Statement::Kind;
    bool compared = statement.kind == Kind::import || statement.kind == Kind::future_import ||
                    statement.kind == Kind::docstring ||
                    (statement.kind == Kind::assignment && binds_a_literal(statement.text) && !statement.conditional) ||
                    util::trim(statement.text) == "pass" || util::starts_with(statement.text, "if __name__");
    if (compared) {
      continue;
    }
    if (statement.scope_qualname.empty() && statement.kind == Kind::assignment && !statement.conditional &&
        binds_a_value_of_names(statement.text)) {
      first_computed = first_computed != nullptr ? first_computed : &statement;
      ++computed;
      continue;
    }
    if (statement.scope_qualname.empty()) {
      first_module = first_module != nullptr ? first_module : &statement;
      ++at_module;
    } else {
      first_class = first_class != nullptr ? first_class : &statement;
      ++in_classes;
    }
  }
  auto head = [](const parser::Statement& statement) {
    std::string text(util::trim(statement.text.substr(0, statement.text.find('\n'))));
    return text.size() > 60 ? text.substr(0, 57) + "..." : text;
  };
  if (first_module != nullptr) {
    notes.push_back("module-level statements that run code (" +
                    count_and_first(at_module, head(*first_module), first_module->range.start_line) +
                    "): not run, their values not compared");
  }
  if (first_computed != nullptr) {
    notes.push_back("module-level values computed from other names (" +
                    count_and_first(computed, head(*first_computed), first_computed->range.start_line) +
                    "): computed again when every name they use is plain immutable data no code of the "
                    "module assigns, kept otherwise");
  }
  if (first_class != nullptr) {
    notes.push_back("class-level statements that run code (" +
                    count_and_first(in_classes, head(*first_class), first_class->range.start_line) +
                    "): not run, their values not compared");
  }
}

}  // namespace

Plan plan_from_snapshot(const parser::SourceFile& before, const parser::SourceFile& after,
                        const differ::ChangeSet& changes, const ChangeFilter& wanted, loader::SnapshotRecord snapshot) {
  Plan plan;
  plan.snapshot = std::move(snapshot);
  differ::ChangeSet selected;
  std::set<std::string> removed;
  for (const auto& change : changes.changes) {
    if (!wanted(change)) {
      continue;
    }
    if (change.verdict == Verdict::restart) {
      plan.refused.push_back(describe(change, before, after));
      continue;
    }
    // A property and its setter (or overloads) removed together are one
    // binding: a second deletion of it would find it gone and fail.
    if (change.verdict == Verdict::remove && !change.is_statement && !removed.insert(change.qualname).second) {
      continue;
    }
    selected.changes.push_back(change);
  }
  ChangedForCalls changed;
  std::set<std::size_t> statements_changed;
  auto top_level_class = [&](const std::string& qualname) -> const parser::Definition* {
    const auto* def = after.find(qualname.substr(0, qualname.find('.')));
    return def != nullptr && def->parent < 0 && def->kind == DefinitionKind::klass ? def : nullptr;
  };
  for (const auto& change : changes.changes) {
    if (!wanted(change)) {
      continue;
    }
    if (change.is_statement) {
      if (change.new_index < 0) {
        continue;
      }
      statements_changed.insert(static_cast<std::size_t>(change.new_index));
      const auto& statement = after.statements[static_cast<std::size_t>(change.new_index)];
      if (statement.scope_qualname.empty() && change.verdict == Verdict::reexec) {
        for (const auto& target : statement.targets) {
          changed.names.emplace(target, statement.range.start_line);
        }
      } else if (const auto* klass = top_level_class(statement.scope_qualname)) {
        changed.names.emplace(klass->name, klass->range.start_line);
      }
      continue;
    }
    if (change.verdict == Verdict::relocate) {
      continue;
    }
    if (const auto* klass = top_level_class(change.qualname); klass != nullptr && change.qualname != klass->name) {
      changed.names.emplace(klass->name, klass->range.start_line);
    }
    if ((change.verdict != Verdict::swap && change.verdict != Verdict::rebind) || change.new_index < 0) {
      continue;
    }
    const auto& def = after.definitions[static_cast<std::size_t>(change.new_index)];
    if (def.parent < 0 && def.kind == DefinitionKind::function) {
      changed.functions.emplace(def.qualname, def.range.start_line);
    }
  }
  add_subclasses(after, changed);
  for (auto& refused : calls_of_changed_code(after, changed, statements_changed)) {
    plan.refused.push_back(std::move(refused));
  }
  for (auto& refused : swap_defaults_of_reruns(before, after, selected)) {
    plan.refused.push_back(std::move(refused));
  }
  if (!plan.refused.empty()) {
    return plan;
  }
  auto units = build_units(before, after, selected);
  UnitBuilder old_units(before);
  std::size_t next_unit = 0;
  for (const auto& change : selected.changes) {
    AppliedChange applied = describe(change, before, after);
    if (change.is_statement && change.new_index < 0 && change.verdict != Verdict::remove) {
      for (auto& removal : class_bindings_removed(before, after, change, old_units)) {
        plan.units.push_back(std::move(removal));
      }
      applied.status = Status::kept;
      plan.kept.push_back(std::move(applied));
      continue;
    }
    CompilationUnit unit = units[next_unit++];
    if (change.is_statement && change.verdict == Verdict::reexec && change.new_index >= 0) {
      drop_targets_deleted_below(after, after.statements[static_cast<std::size_t>(change.new_index)], unit);
    }
    if (!change.is_statement && change.verdict == Verdict::define && change.new_index >= 0) {
      // `def call` above `from _operator import *`: where the live module
      // binds the name, the import did, as it does in a fresh import.
      const auto& def = after.definitions[static_cast<std::size_t>(change.new_index)];
      unit.only_if_missing =
          def.parent < 0 && std::any_of(after.statements.begin(), after.statements.end(), [&](const auto& statement) {
            // An import statement, or a block holding one (`try: from _operator import *`).
            return statement.scope_qualname.empty() && statement.range.start_line > def.range.end_line &&
                   (statement.kind == parser::Statement::Kind::import || statement.binding_block) &&
                   statement.text.find(" import *") != std::string::npos;
          });
    }
    plan.units.push_back({std::move(unit), std::move(applied)});
  }
  return plan;
}

namespace {

// `@overload` stubs above the function of the same name: the name is bound
// to the function, so a stub is never the live one. Without the imported
// text's lines the agent would pair the live function with the nearest
// definition, which is a stub where overloads were added above it.
std::vector<bool> overload_stubs(const parser::SourceFile& file) {
  std::vector<bool> stubs(file.definitions.size(), false);
  std::set<std::string_view> later;
  for (std::size_t i = file.definitions.size(); i-- > 0;) {
    const auto& def = file.definitions[i];
    bool overload = std::any_of(def.decorators.begin(), def.decorators.end(), [](const std::string& decorator) {
      return decorator == "overload" || std::string_view(decorator).ends_with(".overload");
    });
    stubs[i] = overload && later.count(def.qualname) != 0;
    later.insert(def.qualname);
  }
  return stubs;
}

}  // namespace

Plan first_touch_probe(const parser::SourceFile& after, const DefinitionFilter& wanted) {
  Plan probe;
  probe.first_touch = true;
  UnitBuilder units(after);
  auto stubs = overload_stubs(after);
  for (std::size_t i = 0; i < after.definitions.size(); ++i) {
    const auto& def = after.definitions[i];
    if (def.in_main_guard || stubs[i] || !wanted(def)) {
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

namespace {

// Decorators that never return the function they are given: on a live
// name that holds the plain function, they were added since import.
bool only_descriptor_decorators(const parser::Definition& def) {
  return !def.decorators.empty() && std::all_of(def.decorators.begin(), def.decorators.end(), [](const std::string& d) {
    return d == "classmethod" || d == "staticmethod" || d == "property";
  });
}

// Whether calling the module-level function `name` of the file always gives
// back an object it makes (never the function it is given): every `return`
// of its own body returns a function it defines (a `def` in its body, bare or
// under `functools.wraps(...)`, which returns that function, not bound again
// in the body), and falling off its end returns None. Such a decorator on a
// live name that holds the plain function was added since import.
bool returns_a_new_function(const parser::SourceFile& after, const std::string& name) {
  auto index = std::find_if(after.definitions.begin(), after.definitions.end(),
                            [&](const parser::Definition& def) { return def.qualname == name && def.parent < 0; });
  if (index == after.definitions.end() || index->kind != DefinitionKind::function || index->conditional ||
      index->is_generator || index->is_coroutine || after.find(name) != &*index) {
    return false;
  }
  const auto& maker = *index;
  int maker_index = static_cast<int>(index - after.definitions.begin());
  std::set<std::string> made;
  std::vector<parser::Range> nested;
  for (const auto& def : after.definitions) {
    if (def.parent != maker_index) {
      continue;
    }
    nested.push_back(def.range);
    bool wraps_only = std::all_of(def.decorators.begin(), def.decorators.end(),
                                  [](const std::string& d) { return util::starts_with(d, "functools.wraps("); });
    if (def.kind != DefinitionKind::klass && wraps_only && !def.conditional) {
      made.insert(def.name);
    }
  }
  auto body = util::split_lines(after.text);
  for (std::uint32_t line = maker.def_line + 1; line <= maker.range.end_line && line <= body.size(); ++line) {
    bool inside_nested = std::any_of(nested.begin(), nested.end(), [&](const parser::Range& range) {
      return line >= range.start_line && line <= range.end_line;
    });
    std::string text(util::trim(body[line - 1]));
    if (inside_nested || text.empty() || text[0] == '#') {
      continue;
    }
    std::string word = text.substr(0, std::find_if_not(text.begin(), text.end(), is_identifier_char) - text.begin());
    if (word == "return") {
      if (made.count(std::string(util::trim(text.substr(6)))) == 0) {
        return false;
      }
      continue;
    }
    std::string rest(util::trim(text.substr(word.size())));
    bool rebinds = made.count(word) != 0 && !rest.empty() &&
                   (rest[0] == ':' || rest[0] == ',' || (rest[0] != '=' && rest.find('=') == 1) ||
                    (rest[0] == '=' && (rest.size() == 1 || rest[1] != '=')));
    if (word == "global" || word == "nonlocal" || rebinds || text.find("return") != std::string::npos) {
      return false;  // rebinds what it returns, or returns from a line it does not start
    }
  }
  return maker.body_byte > after.text.find('\n', maker.def_byte);
}

// Whether the text of a module-level definition names none of the file's
// other module-level definitions: it cannot call them.
bool names_no_other_definition(const parser::SourceFile& after, const parser::Definition& def) {
  std::set<std::string> others;
  for (const auto& other : after.definitions) {
    if (other.parent < 0 && other.name != def.name) {
      others.insert(other.name);
    }
  }
  const std::string& text = after.text;
  for (std::size_t i = def.range.start_byte; i < def.range.end_byte && i < text.size();) {
    if (!is_identifier_char(text[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && is_identifier_char(text[end])) {
      ++end;
    }
    if (others.count(text.substr(i, end - i)) != 0) {
      return false;
    }
    i = end;
  }
  return true;
}

// Whether the file's decorators of def cannot make what the live name holds,
// a result made by the module-level function `maker` (the probe's made_by):
// the maker is one of them and its code changed (a fresh import runs the new
// code), or they are all names of the file's own module-level functions,
// none the maker, that name no other definition of the file (none can call
// the maker).
bool made_by_another_decorator(const parser::SourceFile& after, const parser::Definition& def, const std::string& maker,
                               const std::set<std::string>& changed) {
  if (maker.empty() || def.decorators.empty()) {
    return false;
  }
  bool all_leaves = true;
  for (const auto& decorator : def.decorators) {
    std::string head(util::trim(decorator.substr(0, decorator.find('('))));
    if (head == maker && changed.count(maker) != 0) {
      return true;
    }
    const parser::Definition* named = after.find(std::string(util::trim(decorator)));
    all_leaves = all_leaves && named != nullptr && named->parent < 0 && named->kind == DefinitionKind::function &&
                 named->name != maker && names_no_other_definition(after, *named);
  }
  return all_leaves;
}

// The names statements bind per scope ("" module level, "C" in class C):
// a name bound by a statement as well as a def (`f = deco(f)`) is not
// judged by its def alone.
std::set<std::string> statement_bindings(const parser::SourceFile& after) {
  std::set<std::string> bound;
  for (const auto& statement : after.statements) {
    for (const auto& target : statement.targets) {
      bound.insert(statement.scope_qualname + ":" + target.substr(0, target.find('.')));
    }
  }
  return bound;
}

// Whether the probe's wrapped fact says the decorator list changed: the
// live name holds a decorator's result and the file has none, or it holds
// the plain function and the file adds a classmethod/staticmethod/property.
bool decorators_changed(const parser::SourceFile& after, const parser::Definition& def,
                        const loader::UnitResult& result, const std::set<std::string>& bound,
                        const std::set<std::string>& changed) {
  if (!result.wrapped || def.kind == DefinitionKind::klass || bound.count(def.parent_qualname + ":" + def.name) != 0) {
    return false;
  }
  if (*result.wrapped && (result.made_by == "classmethod" || result.made_by == "staticmethod")) {
    // A live classmethod that the file makes a staticmethod (or the other way).
    return std::find(def.decorators.begin(), def.decorators.end(), result.made_by) == def.decorators.end();
  }
  if (*result.wrapped) {
    return def.decorators.empty() || made_by_another_decorator(after, def, result.made_by, changed);
  }
  return only_descriptor_decorators(def) ||
         (!def.decorators.empty() && returns_a_new_function(after, def.decorators.front()));
}

// A live function or class the file no longer defines or binds: deleted.
std::optional<PlannedUnit> deletion(const parser::SourceFile& after, const std::string& qualname,
                                    const std::set<std::string>& bound, const std::set<std::string>& deleted) {
  auto dot = qualname.rfind('.');
  std::string scope = dot == std::string::npos ? "" : qualname.substr(0, dot);
  std::string name = qualname.substr(dot == std::string::npos ? 0 : dot + 1);
  if (!is_identifier(name) || after.find(qualname) != nullptr || bound.count(scope + ":" + name) != 0 ||
      bound.count(scope + ":*") != 0 || (scope.empty() && deleted.count(name) != 0) ||
      (!scope.empty() && (after.find(scope) == nullptr || scope.find('.') != std::string::npos))) {
    return std::nullopt;
  }
  PlannedUnit planned;
  planned.unit.qualname = qualname;
  planned.unit.name = name;
  planned.unit.verdict = Verdict::remove;
  if (!scope.empty()) {
    planned.unit.scopes.push_back({scope, true});
    planned.unit.kind = DefinitionKind::method;
  }
  planned.change.qualname = qualname;
  planned.change.verdict = Verdict::remove;
  planned.change.reason = "not in the file, live in the module: its binding is removed";
  planned.change.line = scope.empty() ? 1 : after.find(scope)->def_line;
  return planned;
}

// Definitions of one kind that first touch could not compare: how many,
// and the first, for the line that says so.
struct Uncompared {
  std::size_t count = 0;
  const parser::Definition* first = nullptr;

  void add(const parser::Definition& def) {
    first = first != nullptr ? first : &def;
    ++count;
  }
  void note(const std::string& what, const std::string& why, std::vector<std::string>& notes) const {
    if (first != nullptr) {
      notes.push_back(what + " (" + std::to_string(count) + ", first " + first->qualname + " at line " +
                      std::to_string(first->def_line) + "): " + why);
    }
  }
};

// One first touch's plan, built unit by unit from what the probe found.
class FirstTouchPlanner {
 public:
  FirstTouchPlanner(const parser::SourceFile& after, const Plan& probe, const std::vector<loader::UnitResult>& probed,
                    Plan& plan)
      : m_after(after),
        m_probe(probe),
        m_probed(probed),
        m_plan(plan),
        m_units(after),
        m_bound(statement_bindings(after)) {
    for (std::size_t i = 0; i < probe.units.size() && i < probed.size(); ++i) {
      const auto& def = definition_of(i);
      if (def.parent < 0 && def.kind == DefinitionKind::function && probed[i].status != Status::unchanged) {
        m_changed.insert(def.qualname);
      }
    }
  }

  // What the probe's unit i becomes: nothing, a relocation, a refusal or a unit to apply.
  void take(std::size_t i) {
    loader::UnitResult result;
    result.status = Status::would_apply;
    if (i < m_probed.size()) {
      result = m_probed[i];
    }
    const Status status = result.status;
    const auto& def = definition_of(i);
    const PlannedUnit& probed = m_probe.units[i];
    bool inside_new_class =
        std::any_of(m_defined_classes.begin(), m_defined_classes.end(),
                    [&](const std::string& klass) { return util::starts_with(def.qualname, klass + "."); });
    if (inside_new_class) {
      return;
    }
    if (def.kind == DefinitionKind::klass && status == Status::unchanged) {
      if (result.message.empty() && def.decorators.empty()) {
        m_live_classes.insert(def.qualname);
      } else {
        // A class decorator or a metaclass may have taken names out of it
        // (a missing `Meta` the metaclass consumed: the class holding it).
        bool inner = !result.message.empty() && def.parent >= 0;
        m_consumed_bodies.add(inner ? m_after.definitions[static_cast<std::size_t>(def.parent)] : def);
      }
    }
    if (status == Status::missing && !probed.unit.conditional) {
      m_new_definitions.insert(def.qualname);
    }
    bool redecorated = !probed.unit.conditional && decorators_changed(m_after, def, result, m_bound, m_changed);
    if (result.wrapped && !redecorated && !def.decorators.empty() && !only_descriptor_decorators(def)) {
      m_decorator_lists.add(def);
    }
    if (status == Status::unchanged && result.line_delta != 0 && !redecorated) {
      PlannedUnit moved{m_units.definition(def, Verdict::relocate), probed.change};
      moved.unit.line_delta = result.line_delta;
      moved.change.verdict = Verdict::relocate;
      moved.change.line_delta = result.line_delta;
      moved.change.reason = reason_against_live_code(Rule::moved_only);
      m_plan.units.push_back(std::move(moved));
      return;
    }
    if (status == Status::unchanged && !redecorated) {
      return;
    }
    if (status == Status::fields_changed) {
      refuse_new_fields(i, def);
      return;
    }
    if (auto verdict = verdict_of(def, status, probed.unit.conditional, redecorated)) {
      PlannedUnit planned{m_units.definition(def, verdict->first), probed.change};
      if (planned.unit.duplicate && verdict->first == Verdict::swap) {
        // Which of the same-named definitions the probe paired with the live
        // function: the apply has no old lines to tell it.
        planned.unit.line_delta = result.line_delta;
      }
      planned.change.verdict = verdict->first;
      planned.change.reason = reason_against_live_code(verdict->second);
      m_plan.units.push_back(std::move(planned));
    }
  }

  // The deletions, the notes on what was not compared, the module-level
  // statements carried, all in the order a fresh import runs the file.
  void finish(const std::vector<std::string>& absent) {
    auto deleted = deleted_names(m_after);
    for (const auto& qualname : absent) {
      if (auto planned = deletion(m_after, qualname, m_bound, deleted)) {
        m_plan.units.push_back(std::move(*planned));
      }
    }
    note_statements_not_compared(m_after, m_plan.not_compared);
    m_decorator_lists.note("decorator lists", "not compared (what a decorator returned does not say which made it)",
                           m_plan.not_compared);
    m_consumed_bodies.note("class-level values of classes a class decorator or metaclass may have taken them out of",
                           "not compared", m_plan.not_compared);
    m_plan.not_compared.push_back("names the file no longer binds, other than functions and classes: kept");
    auto statements = carried_statements(m_after, m_units, m_live_classes, m_new_definitions);
    m_plan.units.insert(m_plan.units.begin(), statements.begin(), statements.end());
    // In the order a fresh import runs the file: a statement may use a class
    // or function defined above it.
    std::stable_sort(m_plan.units.begin(), m_plan.units.end(),
                     [](const PlannedUnit& a, const PlannedUnit& b) { return a.change.line < b.change.line; });
  }

 private:
  const parser::Definition& definition_of(std::size_t i) const {
    return m_after.definitions[static_cast<std::size_t>(m_probe.units[i].definition)];
  }

  // A live Enum whose members are not the body's: built when the class was
  // created, so only a restart gives the new ones.
  void refuse_new_fields(std::size_t i, const parser::Definition& def) {
    AppliedChange refused = m_probe.units[i].change;
    refused.verdict = Verdict::restart;
    std::string reason(differ::rule_entry(Rule::class_fields_changed).reason);
    reason.replace(reason.find("{name}"), 6, i < m_probed.size() ? m_probed[i].message : def.qualname);
    refused.reason = std::move(reason);
    m_plan.refused.push_back(std::move(refused));
  }

  // The verdict and rule of a definition the probe found missing or
  // different; nothing when it is not applied on its own.
  std::optional<std::pair<Verdict, Rule>> verdict_of(const parser::Definition& def, Status status, bool conditional,
                                                     bool redecorated) {
    if (status == Status::missing && conditional) {
      return std::nullopt;  // its block did not run, or the module deletes it: a fresh import lacks it too
    }
    if (status == Status::missing) {
      if (def.kind == DefinitionKind::klass) {
        m_defined_classes.insert(def.qualname);
      }
      if (def.parent >= 0 && m_after.definitions[static_cast<std::size_t>(def.parent)].kind != DefinitionKind::klass) {
        return std::nullopt;  // a new nested function comes with its enclosing function
      }
      return std::pair{Verdict::define, def.kind == DefinitionKind::klass ? Rule::class_added : Rule::definition_added};
    }
    if (status == Status::freevars_changed) {
      return std::pair{Verdict::rebind, Rule::free_variables_changed};
    }
    if (redecorated) {
      return std::pair{Verdict::rebind, Rule::decorators_changed};
    }
    if (def.kind == DefinitionKind::klass) {
      return std::nullopt;
    }
    return std::pair{Verdict::swap, Rule::body_changed};
  }

  const parser::SourceFile& m_after;
  const Plan& m_probe;
  const std::vector<loader::UnitResult>& m_probed;
  Plan& m_plan;
  UnitBuilder m_units;
  std::set<std::string> m_bound;  // names the module-level statements bind
  std::set<std::string> m_defined_classes;
  std::set<std::string> m_live_classes;
  std::set<std::string> m_new_definitions;
  Uncompared m_decorator_lists;
  Uncompared m_consumed_bodies;
  std::set<std::string> m_changed;  // module-level functions whose live code is not the file's
};

}  // namespace

Plan plan_first_touch(const parser::SourceFile& after, const Plan& probe, const std::vector<loader::UnitResult>& probed,
                      loader::SnapshotRecord snapshot, const std::vector<std::string>& absent) {
  Plan plan;
  plan.first_touch = true;
  plan.snapshot = std::move(snapshot);
  plan.record_when_empty = plan.snapshot.kind != loader::SnapshotRecord::Kind::nothing;
  FirstTouchPlanner planner(after, probe, probed, plan);
  for (std::size_t i = 0; i < probe.units.size(); ++i) {
    planner.take(i);
  }
  ChangedForCalls changed_code;
  for (std::size_t i = 0; i < probe.units.size() && i < probed.size(); ++i) {
    const auto& def = after.definitions[static_cast<std::size_t>(probe.units[i].definition)];
    Status status = probed[i].status;
    if (status == Status::unchanged || probe.units[i].unit.conditional) {
      continue;
    }
    if (def.parent < 0 && def.kind == DefinitionKind::function && status != Status::missing) {
      changed_code.functions.emplace(def.qualname, def.range.start_line);
    }
    const auto* top = after.find(def.qualname.substr(0, def.qualname.find('.')));
    if (def.parent >= 0 && top != nullptr && top->parent < 0 && top->kind == DefinitionKind::klass) {
      changed_code.names.emplace(top->name, top->range.start_line);
    }
  }
  add_subclasses(after, changed_code);
  for (auto& refused : calls_of_changed_code(after, changed_code, {})) {
    plan.refused.push_back(std::move(refused));
  }
  if (!plan.refused.empty()) {
    plan.units.clear();  // nothing may be sent
    return plan;
  }
  planner.finish(absent);
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

// The lines of base[0, prefix): from the last top-level statement known
// to start at or before it, not from the start of the text.
std::size_t lines_before(std::string_view base, std::size_t prefix, std::span<const parser::TopLevelStatement> items) {
  auto after = std::upper_bound(items.begin(), items.end(), prefix,
                                [](std::size_t offset, const auto& item) { return offset < item.start; });
  if (after == items.begin()) {
    return count_lines(base.substr(0, prefix));
  }
  const parser::TopLevelStatement& item = *(after - 1);
  // `prefix` is a line start (or 0): the lines before it are the newlines before it.
  return item.line - 1 + count_newlines(base.substr(item.start, prefix - item.start));
}

}  // namespace

std::optional<loader::SourceEdit> source_edit(std::string_view base, const std::string& base_hash, std::string_view now,
                                              const KnownText& known) {
  if (!known.newline_breaks_only && !util::only_newline_breaks(base)) {
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
  if (!util::only_newline_breaks(now.substr(prefix, now.size() - suffix - prefix))) {
    return std::nullopt;
  }
  loader::SourceEdit edit;
  edit.base = base_hash;
  // The text before `suffix` ends at a line start (or is all of base): its
  // lines are base's lines before the suffix's, and one pass counts both.
  edit.start = lines_before(base, prefix, known.items);
  edit.end = edit.start + count_lines(base.substr(prefix, base.size() - suffix - prefix));
  edit.text = std::string(now.substr(prefix, now.size() - suffix - prefix));
  edit.length = now.size();
  return edit;
}

}  // namespace pyhot::patch
