#include "patch/compilation_unit.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>

#include "util/text.hpp"

namespace pyhot::patch {

using differ::ChangeSet;
using differ::Verdict;

using parser::Definition;
using parser::SourceFile;
using parser::Statement;

// Lines of the unit being built, numbered as in the real file; lines never
// set stay blank, so every piece lands on its real line. The text starts at
// the first line set (first_line tells the agent where that is), so a
// definition deep in a file does not travel with thousands of blank lines.
class UnitText {
 public:
  void set(std::uint32_t line, std::string text) { m_lines[line] = std::move(text); }
  std::uint32_t first_line() const { return m_lines.empty() ? 1 : m_lines.begin()->first; }
  std::string_view first_text() const { return m_lines.empty() ? std::string_view{} : m_lines.begin()->second; }
  std::string str() const {
    std::string out;
    std::uint32_t next = first_line();
    for (const auto& [number, text] : m_lines) {
      out.append(number - next, '\n');
      out += text;
      out += '\n';
      next = number + 1;
    }
    return out;
  }

 private:
  std::map<std::uint32_t, std::string> m_lines;
};

namespace {

std::string leading_whitespace(std::string_view line) {
  return std::string(line.substr(0, line.find_first_not_of(" \t")));
}

std::vector<const Definition*> ancestors(const SourceFile& file, const Definition& def) {
  std::vector<const Definition*> chain;
  for (int parent = def.parent; parent >= 0; parent = file.definitions[static_cast<std::size_t>(parent)].parent) {
    chain.push_back(&file.definitions[static_cast<std::size_t>(parent)]);
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

// Which accessor of a property this definition is: the agent cannot tell a
// getter from a setter by name, both are "C.x".
std::string property_accessor(const Definition& def) {
  if (def.kind != parser::DefinitionKind::property) {
    return {};
  }
  for (const auto& decorator : def.decorators) {
    std::string_view text(decorator);
    auto ends_with = [&](std::string_view suffix) {
      return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
    };
    if (ends_with(".setter")) {
      return "fset";
    }
    if (ends_with(".deleter")) {
      return "fdel";
    }
  }
  return "fget";
}

// The names one import line binds: `import a.b as c, d` -> c, d;
// `from x import (a, b as c)` -> a, c (an import over several lines joined
// into one).
void names_of_import_line(std::string_view line, std::vector<std::string>& names) {
  line = util::trim(line);
  std::string_view list;
  bool from = util::starts_with(line, "from ");
  if (from) {
    auto at = line.find(" import ");
    if (at == std::string_view::npos) {
      return;
    }
    list = line.substr(at + 8);
  } else if (util::starts_with(line, "import ")) {
    list = line.substr(7);
  } else {
    return;
  }
  list = list.substr(0, list.find('#'));
  std::size_t begin = 0;
  while (begin <= list.size()) {
    auto end = list.find(',', begin);
    std::string_view item = util::trim(list.substr(begin, end == std::string_view::npos ? end : end - begin));
    while (!item.empty() && (item.front() == '(' || item.back() == ')' || item.back() == '\\')) {
      item = util::trim(item.front() == '(' ? item.substr(1) : item.substr(0, item.size() - 1));
    }
    if (auto as = item.find(" as "); as != std::string_view::npos) {
      item = util::trim(item.substr(as + 4));
    } else if (!from) {
      item = item.substr(0, item.find('.'));
    }
    std::string name(item);
    bool identifier = !name.empty() && name != "*" && std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return c == '_' || std::isalnum(c) != 0 || c >= 0x80;
    });
    if (identifier && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
    }
    if (end == std::string_view::npos) {
      break;
    }
    begin = end + 1;
  }
}

// CPython (3.11+) compiles `module.attr(...)` differently when `module` is
// imported at module level. A dead `if 0:` import of the same names, after
// the definition, gives the unit the same symbol table without running
// anything, so its bytecode equals a fresh import's. Imports inside
// module-level blocks (`try: import ssl`) count too; those inside functions
// do not.
std::string imported_names_line(const SourceFile& file) {
  std::vector<std::string> names;
  auto in_definition = [&](std::uint32_t line) {
    return std::any_of(file.definitions.begin(), file.definitions.end(), [&](const Definition& def) {
      return def.parent < 0 && def.range.start_line <= line && line <= def.range.end_line;
    });
  };
  for (const auto& statement : file.statements) {
    if (!statement.scope_qualname.empty()) {
      continue;
    }
    if (statement.kind == Statement::Kind::import) {
      for (const auto& target : statement.targets) {
        std::string name = target.substr(0, target.find('.'));
        if (!name.empty() && name != "*" && std::find(names.begin(), names.end(), name) == names.end()) {
          names.push_back(name);
        }
      }
      continue;
    }
    if (statement.kind != Statement::Kind::other || statement.text.find("import ") == std::string::npos) {
      continue;
    }
    auto lines = util::split_lines(statement.text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::string_view first = util::trim(lines[i]);
      if (!(util::starts_with(first, "import ") || util::starts_with(first, "from ")) ||
          in_definition(statement.range.start_line + static_cast<std::uint32_t>(i))) {
        continue;
      }
      // `from os import (` / `    path,` / `)` and `import a, \`: the
      // import's lines joined into one, comments dropped.
      std::string joined;
      int open = 0;
      for (std::size_t j = i; j < lines.size(); ++j) {
        std::string_view piece = lines[j].substr(0, lines[j].find('#'));
        for (char c : piece) {
          open += c == '(' ? 1 : c == ')' ? -1 : 0;
        }
        piece = util::trim(piece);
        bool continued = !piece.empty() && piece.back() == '\\';
        if (continued) {
          piece.remove_suffix(1);
        }
        joined += std::string(piece) + " ";
        if ((open <= 0 && !continued) || j + 1 == lines.size()) {
          i = j;
          break;
        }
      }
      names_of_import_line(joined, names);
    }
  }
  if (names.empty()) {
    return {};
  }
  std::string line = "if 0: import ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    line += (i == 0 ? "" : ", ") + names[i];
  }
  return line;
}

}  // namespace

UnitBuilder::UnitBuilder(const SourceFile& file)
    : m_file(file), m_imports_line(imported_names_line(file)), m_deleted(deleted_names(file)) {}

namespace {

// Where the line holding the byte before `byte` starts: just after the last
// '\n' in [0, byte), or 0. rfind rather than memrchr: GCC's -Wnonnull cannot
// see, in the sanitizer build, that a text with bytes before `byte` has data.
std::size_t start_of_line_before(std::string_view text, std::size_t byte) {
  if (byte == 0) {
    return 0;
  }
  std::size_t newline = text.rfind('\n', byte - 1);
  return newline == std::string_view::npos ? 0 : newline + 1;
}

}  // namespace

// What util::split_lines(text)[number - 1] would be, "" past the end:
// walked to from the anchor, not indexed for the whole text (megabytes for
// the one or two units of an ordinary reload).
std::string_view UnitBuilder::line(std::uint32_t number) const {
  const std::string_view text = m_file.text;
  if (number < 1) {
    return {};
  }
  while (m_anchor_line < number) {
    if (m_anchor_byte >= text.size()) {
      return {};
    }
    const void* newline = std::memchr(text.data() + m_anchor_byte, '\n', text.size() - m_anchor_byte);
    if (newline == nullptr) {
      return {};
    }
    m_anchor_byte = static_cast<std::size_t>(static_cast<const char*>(newline) - text.data()) + 1;
    ++m_anchor_line;
  }
  while (m_anchor_line > number) {
    // The line before ends at m_anchor_byte - 1; it starts after the newline before that.
    m_anchor_byte = start_of_line_before(text, m_anchor_byte - 1);
    --m_anchor_line;
  }
  if (m_anchor_byte >= text.size()) {
    return {};
  }
  std::size_t end = text.find('\n', m_anchor_byte);
  return text.substr(m_anchor_byte, (end == std::string_view::npos ? text.size() : end) - m_anchor_byte);
}

// The line the byte at `byte` is on: a scope's header, found from its own
// offset (walking to it from the unit's lines would cost the distance, for
// every method of a large class).
std::string_view UnitBuilder::line_holding(std::uint32_t byte) const {
  const std::string_view text = m_file.text;
  if (byte >= text.size()) {
    return {};
  }
  std::size_t start = start_of_line_before(text, byte);
  std::size_t end = text.find('\n', byte);
  return text.substr(start, (end == std::string_view::npos ? text.size() : end) - start);
}

int UnitBuilder::qualname_count(const std::string& qualname) const {
  if (m_qualname_counts.empty()) {
    for (const Definition& def : m_file.definitions) {
      ++m_qualname_counts[def.qualname];
    }
  }
  auto found = m_qualname_counts.find(qualname);
  return found == m_qualname_counts.end() ? 0 : found->second;
}

void UnitBuilder::anchor_at(const parser::Range& range) const {
  const std::string_view text = m_file.text;
  std::size_t byte = std::min<std::size_t>(range.start_byte, text.size());
  m_anchor_byte = start_of_line_before(text, byte);
  // No newline before it: the first line.
  m_anchor_line = m_anchor_byte == 0 ? 1 : std::max<std::uint32_t>(range.start_line, 1);
}

namespace {

// Stubs for the enclosing scopes, at their real indentation, on the lines
// just above `anchor` (the definition's first line): which lines they take
// does not matter to the code the unit compiles to, and keeping them close
// keeps the unit small. There is always room: each real enclosing header
// takes a line above the anchor. The outermost function stub takes the
// definition's free variables as parameters, so the compiled code gets the
// same co_freevars.
std::vector<Scope> write_scope_stubs(const std::vector<const Definition*>& chain,
                                     const std::vector<std::string>& free_variables, std::uint32_t anchor,
                                     const std::function<std::string_view(const Definition&)>& header_line_of,
                                     UnitText& unit) {
  std::vector<Scope> scopes;
  bool first_function = true;
  auto stub_line = anchor - static_cast<std::uint32_t>(chain.size());
  for (const Definition* scope : chain) {
    std::string indent = leading_whitespace(header_line_of(*scope));
    bool is_class = scope->kind == parser::DefinitionKind::klass;
    if (is_class) {
      unit.set(stub_line, indent + "class " + scope->name + ":");
    } else {
      std::string parameters;
      if (first_function) {
        for (const auto& name : free_variables) {
          if (name != "__class__") {
            parameters += (parameters.empty() ? "" : ", ") + name;
          }
        }
        first_function = false;
      }
      unit.set(stub_line, indent + "def " + scope->name + "(" + parameters + "):");
    }
    ++stub_line;
    scopes.push_back({scope->name, is_class});
  }
  return scopes;
}

// A definition (or the class holding it) inside a module-level `if`, `try`,
// `with` or `for` block starts at a column above 0. Those blocks are not
// scopes: the code compiled in them is the code a fresh import makes, so one
// `if 1:` header above the unit's first line lets it compile at the real
// column. There is room: the real block's header takes a line above.
void write_block_stub(std::uint32_t first_line, std::string_view first_text, UnitText& unit) {
  if (first_line > 1 && !first_text.empty() && (first_text.front() == ' ' || first_text.front() == '\t')) {
    unit.set(first_line - 1, "if 1:");
  }
}

}  // namespace

CompilationUnit UnitBuilder::definition(const Definition& def, Verdict verdict) const {
  CompilationUnit unit;
  unit.qualname = def.qualname;
  unit.name = def.name;
  unit.kind = def.kind;
  unit.verdict = verdict;
  unit.accessor = property_accessor(def);
  // A relocation too: `else: def f` moved while the live f is the `if`
  // branch's must not move that one.
  unit.duplicate =
      (verdict == Verdict::swap || (verdict == Verdict::relocate && def.kind != parser::DefinitionKind::klass)) &&
      qualname_count(def.qualname) > 1;
  auto header_line_of = [this](const Definition& scope) { return line_holding(scope.def_byte); };
  anchor_at(def.range);
  UnitText text;
  auto chain = ancestors(m_file, def);
  unit.conditional = def.conditional || def.in_main_guard ||
                     m_deleted.count(chain.empty() ? def.name : chain.front()->name) != 0 ||
                     std::any_of(chain.begin(), chain.end(),
                                 [](const Definition* scope) { return scope->conditional || scope->in_main_guard; });
  if (verdict == Verdict::relocate || verdict == Verdict::remove) {
    // Nothing to compile: the agent shifts or unbinds what is live. A
    // duplicate's relocation says where it starts now (the live one started
    // line_delta lines above).
    unit.scopes = write_scope_stubs(chain, {}, def.range.start_line, header_line_of, text);
    if (unit.duplicate) {
      unit.first_line = def.range.start_line;
    }
    return unit;
  }
  unit.scopes = write_scope_stubs(chain, def.free_variables, def.range.start_line, header_line_of, text);
  std::uint32_t first_copied = def.range.start_line;
  if (!def.decorators.empty() && verdict == Verdict::swap) {
    // The decorator is not run again, but co_firstlineno is still the first
    // decorator's line, as in a fresh import.
    text.set(def.range.start_line, leading_whitespace(line(def.range.start_line)) + "@__pyhot_keep__");
    first_copied = def.def_line;
  }
  for (std::uint32_t number = first_copied; number <= def.range.end_line; ++number) {
    text.set(number, std::string(line(number)));
  }
  write_block_stub(text.first_line(), text.first_text(), text);
  if (!m_imports_line.empty()) {
    text.set(def.range.end_line + 1, m_imports_line);
  }
  unit.source = text.str();
  unit.first_line = text.first_line();
  return unit;
}

CompilationUnit UnitBuilder::statement(const Statement& statement) const {
  CompilationUnit unit;
  unit.verdict = Verdict::reexec;
  unit.qualname = statement.scope_qualname;
  unit.targets = statement.targets;
  anchor_at(statement.range);
  UnitText text;
  if (!statement.scope_qualname.empty()) {
    if (const Definition* klass = m_file.find(statement.scope_qualname); klass != nullptr) {
      auto chain = ancestors(m_file, *klass);
      chain.push_back(klass);
      unit.scopes = write_scope_stubs(
          chain, {}, statement.range.start_line,
          [this](const Definition& scope) { return line_holding(scope.def_byte); }, text);
    }
  }
  if (statement.scope_qualname.empty() && !statement.conditional) {
    copy_bindings_of_deleted_names(statement, text);
  }
  if (statement.kind == Statement::Kind::docstring) {
    // Compiled as a docstring, not as `__doc__ = "..."`: the compiler makes
    // __doc__ what a fresh import's is (3.13 dedents docstrings), and a
    // function's docstring is one wherever the unit's stubs put it.
    std::string indent = leading_whitespace(line(statement.range.start_line));
    text.set(statement.range.start_line,
             indent + "def __pyhot_doc__(): " + statement.text + "\n" + indent + "__doc__ = __pyhot_doc__.__doc__");
    unit.targets = {"__doc__"};
  } else {
    for (std::uint32_t number = statement.range.start_line; number <= statement.range.end_line; ++number) {
      text.set(number, std::string(line(number)));
    }
  }
  write_block_stub(text.first_line(), text.first_text(), text);
  unit.source = text.str();
  unit.first_line = text.first_line();
  return unit;
}

namespace {

bool is_plain_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(),
                                      [](unsigned char c) { return c == '_' || std::isalnum(c) != 0 || c >= 0x80; });
}

}  // namespace

// `import token` / `__all__ = token.__all__ + [...]` / `del token`: a
// fresh import runs the statement while the import's name is bound, but the
// live module has deleted it. The import (or an assignment of a literal)
// goes into the unit above the statement, at its own line: it binds the
// name in the unit's scratch namespace only (the agent binds just the
// statement's targets), and an import of a module already imported runs no
// code of it.
void UnitBuilder::copy_bindings_of_deleted_names(const Statement& statement, UnitText& text) const {
  if (m_deleted.empty()) {
    return;
  }
  std::set<std::string> wanted;
  for (const auto& name : differ::names_read(statement.text)) {
    if (m_deleted.count(name) != 0 &&
        std::find(statement.targets.begin(), statement.targets.end(), name) == statement.targets.end()) {
      wanted.insert(name);
    }
  }
  // The last statement above the statement that binds each name: an
  // import, or an assignment that runs no code.
  std::map<std::string, const Statement*> binder;
  for (const auto& other : m_file.statements) {
    if (other.range.start_line >= statement.range.start_line) {
      break;
    }
    bool chained = other.kind == Statement::Kind::assignment && other.targets.size() > 1;
    bool runs_no_code = other.kind == Statement::Kind::import ||
                        (other.kind == Statement::Kind::assignment && binds_a_literal(other.text));
    if (!(runs_no_code || chained) || !other.scope_qualname.empty() || other.conditional) {
      continue;
    }
    for (const auto& target : other.targets) {
      std::string name = target.substr(0, target.find('.'));
      if (wanted.count(name) != 0) {
        binder[name] = &other;
      }
    }
  }
  for (const auto& entry : binder) {
    // Named, not a structured binding: clang before 16 cannot capture one in a lambda.
    const std::string& name = entry.first;
    const Statement* bound_by = entry.second;
    // `d = _deepcopy_dispatch = {}` / `d[int] = ...` / `del d`: `d` is the
    // live dict the module kept under its other name, not a new one.
    auto kept = std::find_if(bound_by->targets.begin(), bound_by->targets.end(), [&](const std::string& target) {
      return target != name && m_deleted.count(target) == 0 && is_plain_name(target);
    });
    if (bound_by->kind == Statement::Kind::assignment && kept != bound_by->targets.end()) {
      text.set(bound_by->range.start_line, name + " = " + *kept);
      continue;
    }
    if (bound_by->kind == Statement::Kind::assignment && !binds_a_literal(bound_by->text)) {
      continue;  // its value runs code: not run again
    }
    for (std::uint32_t number = bound_by->range.start_line; number <= bound_by->range.end_line; ++number) {
      text.set(number, std::string(line(number)));
    }
  }
  anchor_at(statement.range);
}

CompilationUnit UnitBuilder::removed_attribute(const Statement& statement) const {
  CompilationUnit unit;
  unit.verdict = Verdict::remove;
  unit.name = statement.targets.at(0);
  unit.qualname = statement.scope_qualname + "." + unit.name;
  if (const Definition* klass = m_file.find(statement.scope_qualname); klass != nullptr) {
    auto chain = ancestors(m_file, *klass);
    chain.push_back(klass);
    UnitText text;
    // Nothing to compile: the agent unbinds the name in the live class.
    unit.scopes = write_scope_stubs(
        chain, {}, statement.range.start_line, [this](const Definition& scope) { return line_holding(scope.def_byte); },
        text);
  }
  return unit;
}

using util::is_identifier_char;

namespace {

// The value side of `NAME = value`: whether it is literals only, or also
// (with `names`) names joined by operators: `RATE * 2`, `(A + B) // 2`,
// `X if FLAG else Y`. Never a call, an attribute, a subscript, a container
// display that may be mutable, a lambda or a comprehension: those may run
// code or make state. The agent checks the exact shape again (PROTOCOL.md,
// only_if_missing); this picks what is worth sending.
bool value_is_plain(const std::string& text, bool names) {
  auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0 ||
      std::string("+-*/%&|^<>!:@").find(text[equals - 1]) != std::string::npos ||
      (equals + 1 < text.size() && text[equals + 1] == '=')) {
    return false;
  }
  static const std::set<std::string> k_words = {"True", "False", "None"};
  static const std::set<std::string> k_operator_words = {"and", "or", "not", "is", "in", "if", "else"};
  static const std::set<std::string> k_never = {"lambda", "await", "yield", "for", "async"};
  char last = '=';  // the last character that was not blank
  for (std::size_t i = equals + 1; i < text.size();) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      bool triple = text.compare(i, 3, std::string(3, c)) == 0;
      std::size_t end = i + (triple ? 3 : 1);
      while (end < text.size() && text.compare(end, triple ? 3 : 1, std::string(triple ? 3 : 1, c)) != 0) {
        end += text[end] == '\\' ? 2 : 1;
      }
      i = end + (triple ? 3 : 1);
      last = c;
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      while (i < text.size() && (is_identifier_char(text[i]) || text[i] == '.')) {
        ++i;  // 1_000, 0x1f, 1e3, 2.5j
      }
      last = '0';
    } else if (is_identifier_char(c)) {
      std::size_t end = i;
      while (end < text.size() && is_identifier_char(text[end])) {
        ++end;
      }
      std::string word = text.substr(i, end - i);
      bool string_prefix = end < text.size() && (text[end] == '"' || text[end] == '\'') &&
                           word.find_first_not_of("rRbBuU") == std::string::npos;
      bool before_a_quote = end < text.size() && (text[end] == '"' || text[end] == '\'');
      bool allowed = string_prefix || k_words.count(word) != 0 ||
                     (names && !before_a_quote && k_never.count(word) == 0 &&
                      (k_operator_words.count(word) != 0 || is_plain_name(word)));
      if (!allowed) {
        return false;  // a name, a call, an f-string: may run code
      }
      i = end;
      last = k_operator_words.count(word) != 0 ? '+' : 'a';
    } else if (!names && std::string(" \t\r\n,()[]{}:+-.\\").find(c) != std::string::npos) {
      ++i;
    } else if (names && std::string(" \t\r\n\\").find(c) != std::string::npos) {
      ++i;
    } else if (names && std::string(",()+-*/%&|^~<>=!").find(c) != std::string::npos) {
      if (c == '(' && (last == 'a' || last == '0' || last == ')' || last == '"' || last == '\'')) {
        return false;  // a call
      }
      last = c;
      ++i;
    } else {
      return false;  // #, operators, ...: not worth the risk
    }
  }
  return true;
}

}  // namespace

// Whether `NAME = value` has a value that runs no code: numbers, strings
// (not f-strings), True/False/None, and tuples, lists, sets, dicts of them.
bool binds_a_literal(const std::string& text) { return value_is_plain(text, false); }

bool binds_a_value_of_names(const std::string& text) { return !binds_a_literal(text) && value_is_plain(text, true); }

// Names a module-level `del` removes: the live module lacks them because the
// file deleted them, so a fresh import lacks them too.
std::set<std::string> deleted_names(const SourceFile& file) {
  std::set<std::string> names;
  for (const auto& statement : file.statements) {
    std::string_view text = util::trim(statement.text);
    if (!statement.scope_qualname.empty() || statement.kind != Statement::Kind::other ||
        !util::starts_with(text, "del ")) {
      continue;
    }
    std::string name;
    for (char c : text.substr(4)) {
      if (c == ',' || c == '\n' || c == ' ' || c == '\\' || c == '(' || c == ')') {
        if (is_plain_name(name)) {
          names.insert(name);
        }
        name.clear();
      } else {
        name += c;
      }
    }
    if (is_plain_name(name)) {
      names.insert(name);
    }
  }
  return names;
}

std::vector<CompilationUnit> build_units(const SourceFile& before, const SourceFile& after, const ChangeSet& changes) {
  std::vector<CompilationUnit> units;
  UnitBuilder old_units(before);
  UnitBuilder new_units(after);
  for (const auto& change : changes.changes) {
    if (change.verdict == Verdict::restart) {
      continue;
    }
    if (change.is_statement) {
      if (change.new_index >= 0) {
        units.push_back(new_units.statement(after.statements[static_cast<std::size_t>(change.new_index)]));
      } else if (change.verdict == Verdict::remove) {
        units.push_back(old_units.removed_attribute(before.statements[static_cast<std::size_t>(change.old_index)]));
      }
      continue;
    }
    if (change.verdict == Verdict::remove) {
      units.push_back(
          old_units.definition(before.definitions[static_cast<std::size_t>(change.old_index)], change.verdict));
      continue;
    }
    const auto& now = after.definitions[static_cast<std::size_t>(change.new_index)];
    if (change.verdict == Verdict::relocate && change.old_index >= 0 && now.kind != parser::DefinitionKind::klass &&
        before.definitions[static_cast<std::size_t>(change.old_index)].indent != now.indent) {
      // Moved into or out of a block: 3.11+ line tables hold columns too,
      // which moving lines does not change. Compiled, it is exact.
      units.push_back(new_units.definition(now, Verdict::swap));
      continue;
    }
    CompilationUnit unit = new_units.definition(now, change.verdict);
    unit.line_delta = change.line_delta;
    bool relocated_function = change.verdict == Verdict::relocate && now.kind != parser::DefinitionKind::klass;
    if ((change.verdict == Verdict::swap || relocated_function) && change.old_index >= 0) {
      // The agent tells which of several same-named definitions is live by
      // the line the old one started at.
      const auto& was = before.definitions[static_cast<std::size_t>(change.old_index)];
      bool several_before =
          before.definitions.end() !=
          std::find_if(before.definitions.begin(), before.definitions.end(),
                       [&](const Definition& other) { return &other != &was && other.qualname == was.qualname; });
      if (several_before && !unit.duplicate) {
        // `if os.name != 'nt': def close` / `else: def close` became one
        // `def close`: a fresh import binds it whichever branch ran, so it
        // replaces the live function, compiled (a relocation by the last
        // old definition's lines would keep the other branch's code).
        unit = new_units.definition(now, Verdict::swap);
        units.push_back(std::move(unit));
        continue;
      }
      if (unit.duplicate) {
        unit.line_delta = static_cast<int>(now.range.start_line) - static_cast<int>(was.range.start_line);
        unit.first_line = change.verdict == Verdict::relocate ? now.range.start_line : unit.first_line;
      }
    }
    units.push_back(std::move(unit));
  }
  return units;
}

std::vector<std::string> future_features(const SourceFile& file) {
  std::vector<std::string> features;
  for (const auto& statement : file.statements) {
    if (statement.kind == Statement::Kind::future_import) {
      for (const auto& target : statement.targets) {
        features.push_back(target);
      }
    }
  }
  return features;
}

}  // namespace pyhot::patch
