#include "differ/differ.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "differ/derived_values.hpp"
#include "differ/rules.hpp"
#include "util/text.hpp"

// For XXH3_state_t on the stack: no allocation per hash.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace pyhot::differ {

using parser::Definition;
using parser::DefinitionKind;
using parser::SourceFile;
using parser::Statement;

namespace {

constexpr std::array k_verdicts{
    VerdictEntry{Verdict::swap, "swap", "swapped", true},
    VerdictEntry{Verdict::relocate, "relocate", "relocated", true},
    VerdictEntry{Verdict::define, "define", "defined", true},
    VerdictEntry{Verdict::remove, "delete", "deleted", true},
    VerdictEntry{Verdict::rebind, "rebind", "rebound", true},
    VerdictEntry{Verdict::reexec, "reexec", "re-ran", true},
    VerdictEntry{Verdict::restart, "restart", "restart", false},
};

const VerdictEntry& verdict_entry(Verdict verdict) {
  for (const auto& entry : k_verdicts) {
    if (entry.verdict == verdict) {
      return entry;
    }
  }
  return k_verdicts.back();
}

}  // namespace

std::span<const VerdictEntry> all_verdicts() { return k_verdicts; }

const char* to_string(Verdict verdict) { return verdict_entry(verdict).word.data(); }

std::string_view past_tense(Verdict verdict) { return verdict_entry(verdict).past_tense; }

std::optional<Verdict> verdict_from_string(std::string_view word) {
  for (const auto& entry : k_verdicts) {
    if (entry.word == word) {
      return entry.verdict;
    }
  }
  return std::nullopt;
}

const char* to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::added:
      return "added";
    case ChangeKind::removed:
      return "removed";
    case ChangeKind::body_changed:
      return "body changed";
    case ChangeKind::header_changed:
      return "header changed";
    case ChangeKind::moved:
      return "moved";
    case ChangeKind::statement_changed:
      return "statement changed";
  }
  return "?";
}

bool ChangeSet::needs_restart() const {
  return !syntax_errors.empty() ||
         std::any_of(changes.begin(), changes.end(), [](const Change& c) { return c.verdict == Verdict::restart; });
}

namespace {

std::string_view slice(const SourceFile& file, std::uint32_t begin, std::uint32_t end) {
  end = std::min<std::uint32_t>(end, static_cast<std::uint32_t>(file.text.size()));
  begin = std::min(begin, end);
  return std::string_view(file.text).substr(begin, end - begin);
}

// Column of the byte at `begin`: what its line's indentation would be.
std::size_t column_of(const SourceFile& file, std::uint32_t begin) {
  if (begin == 0) {
    return 0;
  }
  std::size_t line_start = file.text.rfind('\n', begin - 1);
  return line_start == std::string::npos ? begin : begin - line_start - 1;
}

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// Feeds util::dedent(`indent` spaces + `text`) to `state` line by line, so
// the hash is XXH3 of the dedented text without building it: a diff hashes
// definitions of both versions, and the dedented copies cost more than the
// hashing.
void update_dedented(XXH3_state_t& state, std::string_view text, std::size_t indent) {
  if (text.empty()) {
    // dedent() sees one blank line when there is indentation, else nothing.
    if (indent > 0) {
      XXH3_64bits_update(&state, "\n", 1);
    }
    return;
  }
  std::size_t common = std::string_view::npos;
  bool first_line = true;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    if (!is_blank(line)) {
      std::size_t own = line.find_first_not_of(" \t");
      common = std::min(common, own + (first_line ? indent : 0));
    }
    first_line = false;
    at = end + 1;
  }
  if (common == std::string_view::npos) {
    common = 0;
  }
  first_line = true;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    if (!is_blank(line)) {
      std::size_t skip = common;
      if (first_line) {
        // The first line's indentation is partly virtual (`indent` spaces
        // in front of the text): what is left of it after dedenting.
        static constexpr char k_spaces[] = "                                                                ";
        for (std::size_t pad = indent > common ? indent - common : 0; pad > 0;) {
          std::size_t chunk = std::min(pad, sizeof k_spaces - 1);
          XXH3_64bits_update(&state, k_spaces, chunk);
          pad -= chunk;
        }
        skip = common > indent ? common - indent : 0;
      }
      line.remove_prefix(std::min(skip, line.size()));
      // The line and its newline in one update: the '\n' is in the text
      // unless this is its last line.
      if (end < text.size()) {
        XXH3_64bits_update(&state, line.data(), line.size() + 1);
      } else {
        XXH3_64bits_update(&state, line.data(), line.size());
        XXH3_64bits_update(&state, "\n", 1);
      }
    } else {
      XXH3_64bits_update(&state, "\n", 1);
    }
    first_line = false;
    at = end + 1;
  }
}

std::uint64_t hash_dedented(std::string_view text, std::size_t indent) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  update_dedented(state, text, indent);
  return XXH3_64bits_digest(&state);
}

std::uint64_t hash_dedented(const SourceFile& file, std::uint32_t begin, std::uint32_t end) {
  return hash_dedented(slice(file, begin, end), column_of(file, begin));
}

bool is_class(const Definition& def) { return def.kind == DefinitionKind::klass; }

bool parent_is_function(const SourceFile& file, const Definition& def) {
  return def.parent >= 0 && !is_class(file.definitions[static_cast<std::size_t>(def.parent)]);
}

std::string with_name(std::string_view reason, const std::string& name) {
  std::string text(reason);
  auto at = text.find("{name}");
  if (at != std::string::npos) {
    text.replace(at, 6, name);
  }
  return text;
}

Change make_change(Rule rule, ChangeKind kind, std::string qualname, const std::string& subject = {}) {
  const auto& entry = rule_entry(rule);
  Change change;
  change.rule = rule;
  change.kind = kind;
  change.verdict = entry.verdict;
  change.qualname = std::move(qualname);
  change.reason = with_name(entry.reason, subject);
  return change;
}

std::string describe_free_variable_change(const Definition& before, const Definition& after) {
  std::string text;
  for (const auto& name : after.free_variables) {
    if (std::find(before.free_variables.begin(), before.free_variables.end(), name) == before.free_variables.end()) {
      text += (text.empty() ? "+" : ", +") + name;
    }
  }
  for (const auto& name : before.free_variables) {
    if (std::find(after.free_variables.begin(), after.free_variables.end(), name) == after.free_variables.end()) {
      text += (text.empty() ? "-" : ", -") + name;
    }
  }
  return text;
}

// Classes whose class-level assignments are fields, turned into something
// else when the class is created.
bool has_generated_fields(const Definition& klass) {
  static const std::set<std::string, std::less<>> k_field_decorators = {"dataclass",
                                                                        "dataclasses.dataclass",
                                                                        "pydantic.dataclasses.dataclass",
                                                                        "attr.s",
                                                                        "attr.attrs",
                                                                        "attrs",
                                                                        "attr.define",
                                                                        "attrs.define",
                                                                        "define",
                                                                        "attr.frozen",
                                                                        "attrs.frozen",
                                                                        "frozen",
                                                                        "attr.mutable",
                                                                        "attrs.mutable",
                                                                        "mutable",
                                                                        "attr.dataclass"};
  for (const auto& decorator : klass.decorators) {
    std::string_view head(decorator);
    head = head.substr(0, head.find('('));
    if (k_field_decorators.count(head) != 0) {
      return true;
    }
  }
  // A metaclass of the program's own may consume the body as Enum's does;
  // ABCMeta only records the abstract methods.
  std::string_view bases_text(klass.bases_text);
  if (auto at = bases_text.find("metaclass"); at != std::string_view::npos) {
    auto value = bases_text.substr(at + 9);
    value = value.substr(std::min(value.find_first_not_of(" \t\n="), value.size()));
    value = value.substr(0, value.find_first_of(" \t\n,)"));
    if (value != "ABCMeta" && value != "abc.ABCMeta" && value != "type") {
      return true;
    }
  }
  // Model: Django's models.Model (and ORMs spelled the same way).
  static const char* const k_field_bases[] = {"Enum",      "IntEnum",   "StrEnum", "Flag",      "IntFlag", "NamedTuple",
                                              "TypedDict", "BaseModel", "Model",   "Structure", "Union"};
  for (const char* base : k_field_bases) {
    std::string_view bases(klass.bases_text);
    std::size_t at = bases.find(base);
    while (at != std::string_view::npos) {
      std::size_t end = at + std::string_view(base).size();
      bool starts = at == 0 || !(std::isalnum(static_cast<unsigned char>(bases[at - 1])) || bases[at - 1] == '_');
      bool ends = end == bases.size() || !(std::isalnum(static_cast<unsigned char>(bases[end])) || bases[end] == '_');
      if (starts && ends) {
        return true;
      }
      at = bases.find(base, end);
    }
  }
  return false;
}

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) {
    text += (text.empty() ? "" : ", ") + name;
  }
  return text;
}

struct StatementKey {
  std::string scope;
  std::uint64_t text_hash = 0;
  bool operator<(const StatementKey& other) const {
    return std::tie(scope, text_hash) < std::tie(other.scope, other.text_hash);
  }
};

// Over the statement's text, which leaves out definitions nested in it (a
// main guard's functions are compared as definitions).
std::uint64_t statement_hash(const SourceFile& file, const Statement& statement) {
  return hash_dedented(statement.text, column_of(file, statement.range.start_byte));
}

// The identity of an assignment or import across edits: what it binds.
std::string binding_key(const Statement& statement) {
  // An if/try block pairs up in order, as statements that bind nothing do:
  // an edit of it often adds or drops a name.
  if (statement.targets.empty() || statement.binding_block) {
    return {};
  }
  return statement.scope_qualname + "|" + std::to_string(static_cast<int>(statement.kind)) + "|" +
         join(statement.targets);
}

const Definition* find_class(const SourceFile& file, const std::string& qualname) {
  for (const auto& def : file.definitions) {
    if (is_class(def) && def.qualname == qualname) {
      return &def;
    }
  }
  return nullptr;
}

// A class-level `NAME = value` that is gone and whose one name nothing else
// in the new class binds: a fresh import's class lacks it, so the live one
// must lose it too (a module keeps removed names: a running frame may read them).
bool removed_from_class(const SourceFile& before, const SourceFile& after, const Statement& removed) {
  if (removed.scope_qualname.empty() || removed.kind != Statement::Kind::assignment || removed.conditional ||
      removed.targets.size() != 1 || find_class(before, removed.scope_qualname) == nullptr ||
      find_class(after, removed.scope_qualname) == nullptr) {
    return false;
  }
  const std::string& name = removed.targets[0];
  if (name.empty() || !std::all_of(name.begin(), name.end(),
                                   [](unsigned char c) { return c == '_' || std::isalnum(c) != 0 || c >= 0x80; })) {
    return false;  // `x.y = 1`, `d[k] = 1`: not a name of the class
  }
  for (const auto& statement : after.statements) {
    if (statement.scope_qualname == removed.scope_qualname &&
        std::find(statement.targets.begin(), statement.targets.end(), name) != statement.targets.end()) {
      return false;
    }
  }
  return after.find(removed.scope_qualname + "." + name) == nullptr;
}

Change classify_statement(const SourceFile& before, const SourceFile& after, const Statement* old_statement,
                          const Statement* new_statement) {
  const Statement& subject = new_statement != nullptr ? *new_statement : *old_statement;
  const std::string& scope = subject.scope_qualname;
  std::string targets = join(subject.targets);
  auto change_for = [&](Rule rule) {
    Change change = make_change(rule, ChangeKind::statement_changed, scope, targets.empty() ? "no names" : targets);
    change.is_statement = true;
    return change;
  };

  if (subject.kind == Statement::Kind::future_import) {
    return change_for(Rule::future_import_changed);
  }
  if (!scope.empty() && subject.kind == Statement::Kind::assignment) {
    // A field removed is a field change too: the class was built from it.
    const Definition* klass = find_class(after, scope);
    const Definition* was = find_class(before, scope);
    if ((klass != nullptr && has_generated_fields(*klass)) || (was != nullptr && has_generated_fields(*was))) {
      return change_for(Rule::class_fields_changed);
    }
  }
  if (new_statement == nullptr) {
    return change_for(removed_from_class(before, after, subject) ? Rule::class_attribute_removed
                                                                 : Rule::statement_removed);
  }
  if (scope.empty()) {
    if (subject.conditional) {
      return change_for(Rule::module_code_changed);
    }
    // Paired with a block that held a definition or a call, the edit moves
    // bindings between statements and definitions: not a re-run of the block.
    if (subject.binding_block && (old_statement == nullptr || old_statement->binding_block)) {
      return change_for(Rule::constant_changed);
    }
    switch (subject.kind) {
      case Statement::Kind::import:
        return change_for(Rule::import_changed);
      case Statement::Kind::assignment:
      case Statement::Kind::docstring:
        return change_for(Rule::constant_changed);
      default:
        return change_for(Rule::module_code_changed);
    }
  }
  const Definition* klass = find_class(after, scope);
  if (klass == nullptr) {
    klass = find_class(before, scope);
  }
  if (std::find(subject.targets.begin(), subject.targets.end(), "__slots__") != subject.targets.end()) {
    return change_for(Rule::class_slots_changed);
  }
  if (klass != nullptr && has_generated_fields(*klass) && subject.kind == Statement::Kind::assignment) {
    return change_for(Rule::class_fields_changed);
  }
  if (subject.conditional) {
    return change_for(Rule::class_code_changed);
  }
  switch (subject.kind) {
    case Statement::Kind::import:
    case Statement::Kind::assignment:
    case Statement::Kind::docstring:
      return change_for(Rule::class_constant_changed);
    default:
      return change_for(Rule::class_code_changed);
  }
}

// `pass` and `...` run nothing: adding or removing one (a class body emptied
// to `pass`) changes no binding, so it is no change to apply.
bool is_inert(const Statement& statement) {
  std::string_view text = util::trim(statement.text);
  return statement.kind == Statement::Kind::other && (text == "pass" || text == "...");
}

void diff_statements(const SourceFile& before, const SourceFile& after,
                     const std::set<std::string>& new_or_gone_classes, std::vector<Change>& changes) {
  std::multimap<StatementKey, int> old_by_text;
  for (std::size_t i = 0; i < before.statements.size(); ++i) {
    old_by_text.emplace(StatementKey{before.statements[i].scope_qualname, statement_hash(before, before.statements[i])},
                        static_cast<int>(i));
  }
  std::vector<int> unmatched_new;
  for (std::size_t i = 0; i < after.statements.size(); ++i) {
    auto it = old_by_text.find({after.statements[i].scope_qualname, statement_hash(after, after.statements[i])});
    if (it != old_by_text.end()) {
      old_by_text.erase(it);
    } else {
      unmatched_new.push_back(static_cast<int>(i));
    }
  }
  std::unordered_map<std::string, int> unmatched_old_by_binding;
  std::vector<int> unmatched_old;
  for (const auto& [key, index] : old_by_text) {
    unmatched_old.push_back(index);
    auto binding = binding_key(before.statements[static_cast<std::size_t>(index)]);
    if (!binding.empty()) {
      unmatched_old_by_binding.emplace(binding, index);
    }
  }
  std::set<int> paired_old;
  auto skip_scope = [&](const std::string& scope) { return new_or_gone_classes.count(scope) != 0; };

  for (int new_index : unmatched_new) {
    const Statement& statement = after.statements[static_cast<std::size_t>(new_index)];
    if (skip_scope(statement.scope_qualname) || is_inert(statement)) {
      continue;
    }
    const Statement* old_statement = nullptr;
    auto binding = binding_key(statement);
    if (auto it = unmatched_old_by_binding.find(binding); !binding.empty() && it != unmatched_old_by_binding.end()) {
      old_statement = &before.statements[static_cast<std::size_t>(it->second)];
      paired_old.insert(it->second);
      unmatched_old_by_binding.erase(it);
    } else if (binding.empty()) {
      // Statements that bind nothing (calls, loops) pair up in order within
      // their scope: an edited call is one change, not a removal and an addition.
      for (int old_index : unmatched_old) {
        const Statement& candidate = before.statements[static_cast<std::size_t>(old_index)];
        if (paired_old.count(old_index) == 0 && binding_key(candidate).empty() &&
            candidate.scope_qualname == statement.scope_qualname && candidate.kind == statement.kind) {
          old_statement = &candidate;
          paired_old.insert(old_index);
          break;
        }
      }
    }
    Change change = classify_statement(before, after, old_statement, &statement);
    change.kind = ChangeKind::statement_changed;
    change.new_index = new_index;
    change.old_index = old_statement != nullptr ? static_cast<int>(old_statement - before.statements.data()) : -1;
    change.line = statement.range.start_line;
    changes.push_back(std::move(change));
  }
  for (int old_index : unmatched_old) {
    const Statement& statement = before.statements[static_cast<std::size_t>(old_index)];
    if (paired_old.count(old_index) != 0 || skip_scope(statement.scope_qualname) || is_inert(statement)) {
      continue;
    }
    Change change = classify_statement(before, after, &statement, nullptr);
    change.old_index = old_index;
    change.line = statement.range.start_line;
    changes.push_back(std::move(change));
  }
}

bool has_definitions_inside(const SourceFile& file, std::size_t index) {
  return std::any_of(file.definitions.begin(), file.definitions.end(),
                     [&](const Definition& def) { return def.parent == static_cast<int>(index); });
}

bool has_ancestor_in(const SourceFile& file, const Definition& def, const std::set<int>& indexes) {
  for (int parent = def.parent; parent >= 0; parent = file.definitions[static_cast<std::size_t>(parent)].parent) {
    if (indexes.count(parent) != 0) {
      return true;
    }
  }
  return false;
}

// Whether two spans hash the same once dedented. The same bytes at the same
// column dedent the same, so only spans that differ are hashed.
bool same_dedented(const SourceFile& before, std::uint32_t before_begin, std::uint32_t before_end,
                   const SourceFile& after, std::uint32_t after_begin, std::uint32_t after_end) {
  std::size_t before_column = column_of(before, before_begin);
  std::size_t after_column = column_of(after, after_begin);
  if (before_column == after_column &&
      slice(before, before_begin, before_end) == slice(after, after_begin, after_end)) {
    return true;
  }
  return hash_dedented(slice(before, before_begin, before_end), before_column) ==
         hash_dedented(slice(after, after_begin, after_end), after_column);
}

// A class's header and its class-level statements (each statement's hash in
// decimal, as the text this hash was first defined over).
std::uint64_t own_class_hash(const SourceFile& file, const Definition& def) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  update_dedented(state, slice(file, def.range.start_byte, def.body_byte), column_of(file, def.range.start_byte));
  for (const auto& statement : file.statements) {
    if (statement.scope_qualname == def.qualname) {
      std::string number = std::to_string(statement_hash(file, statement));
      XXH3_64bits_update(&state, number.data(), number.size());
    }
  }
  return XXH3_64bits_digest(&state);
}

// A binding key (see binding_keys) as the qualname's view and its count
// from the end: no key is built as a string.
struct BindingKey {
  std::string_view qualname;  // a view of the file's definition
  int from_end = 1;           // 1 for the last definition of the qualname
  bool operator==(const BindingKey&) const = default;
};

struct BindingKeyHash {
  std::size_t operator()(const BindingKey& key) const {
    return std::hash<std::string_view>()(key.qualname) ^
           (static_cast<std::size_t>(key.from_end) * 0x9E3779B97F4A7C15ULL);
  }
};

// Where a definition's key was in the text before (keys are unique): most
// definitions keep their place after the one before them, so the old index
// after the last match is tried first, and the map is built only when that
// misses.
class OldIndex {
 public:
  explicit OldIndex(const std::vector<BindingKey>& old_keys) : m_old_keys(old_keys) {}

  // -1 when the key is new.
  int operator()(const BindingKey& key) {
    if (m_next < m_old_keys.size() && m_old_keys[m_next] == key) {
      return static_cast<int>(m_next++);
    }
    if (m_by_key.empty()) {
      m_by_key.reserve(m_old_keys.size());
      for (std::size_t i = 0; i < m_old_keys.size(); ++i) {
        m_by_key.emplace(m_old_keys[i], static_cast<int>(i));
      }
    }
    auto found = m_by_key.find(key);
    if (found == m_by_key.end()) {
      return -1;
    }
    m_next = static_cast<std::size_t>(found->second) + 1;
    return found->second;
  }

 private:
  const std::vector<BindingKey>& m_old_keys;
  std::unordered_map<BindingKey, int, BindingKeyHash> m_by_key;
  std::size_t m_next = 0;
};

}  // namespace

std::uint64_t statement_key(const SourceFile& file, const Statement& statement) {
  const std::uint64_t scope = XXH3_64bits(statement.scope_qualname.data(), statement.scope_qualname.size());
  return scope * 0x9E3779B97F4A7C15ULL ^ statement_hash(file, statement);
}

std::uint64_t hash_definition(const SourceFile& file, const Definition& def) {
  return hash_dedented(file, def.range.start_byte, def.range.end_byte);
}

std::vector<std::string> definition_keys(const SourceFile& file) {
  std::unordered_map<std::string_view, int> seen;  // views of file's qualnames
  seen.reserve(file.definitions.size());
  std::vector<std::string> keys;
  keys.reserve(file.definitions.size());
  for (const auto& def : file.definitions) {
    int count = ++seen[def.qualname];
    keys.push_back(count == 1 ? def.qualname : def.qualname + "#" + std::to_string(count));
  }
  return keys;
}

namespace {

// Keys that pair definitions the way a fresh import binds them: the last
// definition of a qualname is the one bound, so occurrences are counted from
// the end ("f" is the last, "f#-2" the one before). `@overload` stubs added
// above a function then pair with nothing, not with the function.
std::vector<BindingKey> binding_keys(const SourceFile& file) {
  const auto& definitions = file.definitions;
  // The definitions grouped by qualname in an open-addressed table of group
  // numbers (a node-based map cost a fifth of a reload at 20,000
  // definitions): per group its first definition, how many have the
  // qualname, how many were seen.
  struct Group {
    std::size_t first = 0;
    int total = 0;
    int seen = 0;
  };
  constexpr std::uint32_t k_empty = 0xFFFFFFFF;
  std::size_t slots = 16;
  while (slots < definitions.size() * 2) {
    slots *= 2;
  }
  std::vector<std::uint32_t> table(slots, k_empty);
  std::vector<Group> groups;
  std::vector<std::uint32_t> group_of(definitions.size());
  for (std::size_t i = 0; i < definitions.size(); ++i) {
    const std::string& qualname = definitions[i].qualname;
    std::size_t slot = XXH3_64bits(qualname.data(), qualname.size()) & (slots - 1);
    while (table[slot] != k_empty && definitions[groups[table[slot]].first].qualname != qualname) {
      slot = (slot + 1) & (slots - 1);
    }
    if (table[slot] == k_empty) {
      table[slot] = static_cast<std::uint32_t>(groups.size());
      groups.push_back({i, 0, 0});
    }
    group_of[i] = table[slot];
    ++groups[table[slot]].total;
  }
  std::vector<BindingKey> keys;
  keys.reserve(definitions.size());
  for (std::size_t i = 0; i < definitions.size(); ++i) {
    Group& group = groups[group_of[i]];
    keys.push_back({definitions[i].qualname, group.total - group.seen++});
  }
  return keys;
}

// Whether a later definition in `file` binds the same qualname: this one is
// then overwritten when the file runs, and adding or removing it changes no
// binding.
bool rebound_later(const SourceFile& file, std::size_t index) {
  const auto& qualname = file.definitions[index].qualname;
  for (std::size_t i = index + 1; i < file.definitions.size(); ++i) {
    if (file.definitions[i].qualname == qualname) {
      return true;
    }
  }
  return false;
}

bool defined_in(const SourceFile& file, const std::string& qualname) { return file.find(qualname) != nullptr; }

// Whether a module-level statement of `file` binds `name` (`name = ...`,
// `import name`, `from m import name`).
bool bound_by_module_statement(const SourceFile& file, const std::string& name) {
  return std::any_of(file.statements.begin(), file.statements.end(), [&](const Statement& statement) {
    if (!statement.scope_qualname.empty() || (statement.kind != Statement::Kind::assignment &&
                                              statement.kind != Statement::Kind::import && !statement.binding_block)) {
      return false;
    }
    return std::any_of(statement.targets.begin(), statement.targets.end(), [&](const std::string& target) {
      return target == name ||
             (statement.kind == Statement::Kind::import && target.substr(0, target.find('.')) == name);
    });
  });
}

// How definition `i` of `after` differs from `was`, the one of `before` it
// pairs with; nothing when it is the same text at the same line.
std::optional<Change> compare_paired(const SourceFile& before, const Definition& was, const SourceFile& after,
                                     std::size_t i) {
  const Definition& now = after.definitions[i];
  // Hashes only as far as the verdict needs them (see same_dedented):
  // most definitions are unchanged.
  std::optional<Change> change;
  auto same_whole = [&] {
    return same_dedented(before, was.range.start_byte, was.range.end_byte, after, now.range.start_byte,
                         now.range.end_byte);
  };
  if (is_class(now)) {
    // Whether a class's whole text changed decides something only when
    // its header did, and a class is the largest text a diff would hash:
    // the header first, the whole text only to confirm.
    if (was.decorators != now.decorators) {
      change = make_change(Rule::class_decorators_changed, ChangeKind::header_changed, now.qualname);
    } else if (util::trim(was.bases_text) != util::trim(now.bases_text)) {
      change = make_change(Rule::class_bases_changed, ChangeKind::header_changed, now.qualname);
    } else if (now.in_main_guard && own_class_hash(before, was) != own_class_hash(after, now)) {
      change = make_change(Rule::main_guard_definition, ChangeKind::body_changed, now.qualname);
    }
    if (change && same_whole()) {
      change.reset();
    }
    if (!change && was.range.start_line != now.range.start_line && !parent_is_function(after, now) &&
        !has_definitions_inside(after, i) && same_whole()) {
      // Nothing inside it moves on its own (`class Full(Exception): pass`),
      // yet on 3.13 the class records its first line.
      change = make_change(Rule::moved_only, ChangeKind::moved, now.qualname);
      change->line_delta = static_cast<int>(now.range.start_line) - static_cast<int>(was.range.start_line);
    }
    // Otherwise its methods or class-level statements changed: they are reported on their own.
  } else if (same_whole()) {
    if (was.range.start_line != now.range.start_line && !parent_is_function(after, now)) {
      change = make_change(Rule::moved_only, ChangeKind::moved, now.qualname);
      change->line_delta = static_cast<int>(now.range.start_line) - static_cast<int>(was.range.start_line);
    }
  } else if (now.in_main_guard) {
    change = make_change(Rule::main_guard_definition, ChangeKind::body_changed, now.qualname);
  } else if (was.free_variables != now.free_variables) {
    change = make_change(Rule::free_variables_changed, ChangeKind::body_changed, now.qualname,
                         describe_free_variable_change(was, now));
  } else if (was.decorators != now.decorators) {
    change = make_change(Rule::decorators_changed, ChangeKind::header_changed, now.qualname);
  } else if (!same_dedented(before, was.range.start_byte, was.body_byte, after, now.range.start_byte, now.body_byte)) {
    change = make_change(Rule::signature_changed, ChangeKind::header_changed, now.qualname);
  } else {
    change = make_change(parent_is_function(after, now) ? Rule::nested_definition_changed : Rule::body_changed,
                         ChangeKind::body_changed, now.qualname);
  }
  if (change && change->verdict != Verdict::relocate && now.name == "__new__" && now.parent >= 0 &&
      has_generated_fields(after.definitions[static_cast<std::size_t>(now.parent)])) {
    // Enum's metaclass made the members with it and put another __new__
    // in its place: there is no live function to swap.
    change = make_change(Rule::class_fields_changed, ChangeKind::body_changed, now.qualname, "__new__");
  }
  return change;
}

}  // namespace

ChangeSet diff(const SourceFile& before, const SourceFile& after) {
  ChangeSet result;
  if (!after.errors.empty()) {
    result.syntax_errors = after.errors;
    return result;
  }
  auto old_keys = binding_keys(before);
  auto new_keys = binding_keys(after);
  OldIndex old_index_of(old_keys);

  std::vector<Change> changes;
  std::set<int> added_new;                                   // indexes in after
  std::vector<bool> matched_old(before.definitions.size());  // a set would cost a node per definition
  std::set<std::string> new_or_gone_classes;

  for (std::size_t i = 0; i < after.definitions.size(); ++i) {
    const Definition& now = after.definitions[i];
    int old_index = old_index_of(new_keys[i]);
    if (old_index < 0) {
      added_new.insert(static_cast<int>(i));
      if (has_ancestor_in(after, now, added_new)) {
        continue;  // comes with its new parent
      }
      if (is_class(now)) {
        new_or_gone_classes.insert(now.qualname);
      }
      Rule rule = now.in_main_guard                ? Rule::main_guard_definition
                  : is_class(now)                  ? Rule::class_added
                  : parent_is_function(after, now) ? Rule::nested_definition_changed
                                                   : Rule::definition_added;
      if (rule == Rule::nested_definition_changed) {
        continue;  // the enclosing function's swap carries it
      }
      if (rule == Rule::definition_added && rebound_later(after, i)) {
        continue;  // a fresh import binds the later definition instead
      }
      Change change = make_change(rule, ChangeKind::added, now.qualname);
      change.new_index = static_cast<int>(i);
      change.line = now.def_line;
      changes.push_back(std::move(change));
      continue;
    }
    matched_old[static_cast<std::size_t>(old_index)] = true;
    const Definition& was = before.definitions[static_cast<std::size_t>(old_index)];
    std::optional<Change> change = compare_paired(before, was, after, i);
    if (change) {
      change->old_index = old_index;
      change->new_index = static_cast<int>(i);
      change->line = now.def_line;
      changes.push_back(std::move(*change));
    }
  }

  std::set<int> removed_old;
  for (std::size_t i = 0; i < before.definitions.size(); ++i) {
    if (matched_old[i]) {
      continue;
    }
    const Definition& was = before.definitions[i];
    removed_old.insert(static_cast<int>(i));
    if (has_ancestor_in(before, was, removed_old) || parent_is_function(before, was)) {
      continue;  // goes with its parent, or its enclosing function's swap carries it
    }
    if (!is_class(was) && defined_in(after, was.qualname)) {
      continue;  // another definition of the name stays: the binding is its
    }
    if (was.parent < 0 && bound_by_module_statement(after, was.name)) {
      continue;  // `def _tokenize` became `import _tokenize`: the statement binds the name now
    }
    if (is_class(was)) {
      new_or_gone_classes.insert(was.qualname);
    }
    Rule rule = was.in_main_guard ? Rule::main_guard_definition
                : is_class(was)   ? Rule::class_removed
                                  : Rule::definition_removed;
    Change change = make_change(rule, ChangeKind::removed, was.qualname);
    change.old_index = static_cast<int>(i);
    change.line = was.def_line;
    changes.push_back(std::move(change));
  }

  diff_statements(before, after, new_or_gone_classes, changes);
  add_derived_values(after, changes);

  std::stable_sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) { return a.line < b.line; });
  result.changes = std::move(changes);
  return result;
}

std::string subject_of(const Change& change, const SourceFile& before, const SourceFile& after, std::size_t limit) {
  if (!change.is_statement) {
    return change.qualname;
  }
  const Statement& statement = change.new_index >= 0 ? after.statements[static_cast<std::size_t>(change.new_index)]
                                                     : before.statements[static_cast<std::size_t>(change.old_index)];
  std::string_view text = statement.text;
  std::string line(util::trim(text.substr(0, text.find('\n'))));
  if (line.size() > limit) {
    line = line.substr(0, limit - 3) + "...";
  }
  return (change.qualname.empty() ? "<module>" : change.qualname) + ": " + line;
}

}  // namespace pyhot::differ
