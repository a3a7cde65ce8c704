#include "differ/compilation_unit.hpp"

#include <algorithm>

#include "util/text.hpp"

namespace pyhot::differ {

using parser::Definition;
using parser::SourceFile;
using parser::Statement;

namespace {

// Lines of the unit being built, 1-based; everything not set stays blank so
// every piece lands on its real line.
class UnitText {
 public:
  void set(std::uint32_t line, std::string text) {
    if (m_lines.size() < line) {
      m_lines.resize(line);
    }
    m_lines[line - 1] = std::move(text);
  }
  std::string str() const {
    std::string out;
    for (const auto& line : m_lines) {
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::string> m_lines;
};

std::string_view line_of(const SourceFile& file, std::uint32_t line) {
  auto lines = util::split_lines(file.text);
  return line >= 1 && line <= lines.size() ? lines[line - 1] : std::string_view{};
}

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

// Stubs for the enclosing scopes, each at its real line and indentation. The
// outermost function stub takes the definition's free variables as
// parameters, so the compiled code gets the same co_freevars.
std::vector<Scope> write_scope_stubs(const SourceFile& file, const std::vector<const Definition*>& chain,
                                     const std::vector<std::string>& free_variables, UnitText& unit) {
  std::vector<Scope> scopes;
  bool first_function = true;
  for (const Definition* scope : chain) {
    std::string indent = leading_whitespace(line_of(file, scope->def_line));
    bool is_class = scope->kind == parser::DefinitionKind::klass;
    if (is_class) {
      unit.set(scope->def_line, indent + "class " + scope->name + ":");
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
      unit.set(scope->def_line, indent + "def " + scope->name + "(" + parameters + "):");
    }
    scopes.push_back({scope->name, is_class});
  }
  return scopes;
}

void write_lines(const SourceFile& file, std::uint32_t first, std::uint32_t last, UnitText& unit) {
  auto lines = util::split_lines(file.text);
  for (std::uint32_t line = first; line <= last && line <= lines.size(); ++line) {
    unit.set(line, std::string(lines[line - 1]));
  }
}

}  // namespace

namespace {

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

// CPython (3.11+) compiles `module.attr(...)` differently when `module` is
// imported at module level. A dead `if 0:` import of the same names, after
// the definition, gives the unit the same symbol table without running
// anything, so its bytecode equals a fresh import's.
std::string imported_names_line(const SourceFile& file) {
  std::vector<std::string> names;
  for (const auto& statement : file.statements) {
    if (statement.kind != Statement::Kind::import || !statement.scope_qualname.empty()) {
      continue;
    }
    for (const auto& target : statement.targets) {
      std::string name = target.substr(0, target.find('.'));
      if (!name.empty() && name != "*" && std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
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

CompilationUnit build_definition_unit(const SourceFile& file, const Definition& def, Verdict verdict) {
  CompilationUnit unit;
  unit.qualname = def.qualname;
  unit.name = def.name;
  unit.kind = def.kind;
  unit.verdict = verdict;
  unit.accessor = property_accessor(def);
  if (verdict == Verdict::relocate || verdict == Verdict::remove) {
    // Nothing to compile: the agent shifts or unbinds what is live.
    UnitText unused;
    unit.scopes = write_scope_stubs(file, ancestors(file, def), {}, unused);
    return unit;
  }
  UnitText text;
  unit.scopes = write_scope_stubs(file, ancestors(file, def), def.free_variables, text);
  bool keep_decorators = verdict != Verdict::swap;
  if (!def.decorators.empty() && !keep_decorators) {
    // The decorator is not run again, but co_firstlineno is still the first
    // decorator's line, as in a fresh import.
    std::string indent = leading_whitespace(line_of(file, def.range.start_line));
    text.set(def.range.start_line, indent + "@__pyhot_keep__");
    write_lines(file, def.def_line, def.range.end_line, text);
  } else {
    write_lines(file, def.range.start_line, def.range.end_line, text);
  }
  if (auto imports = imported_names_line(file); !imports.empty()) {
    text.set(def.range.end_line + 1, imports);
  }
  unit.source = text.str();
  return unit;
}

namespace {

CompilationUnit build_statement_unit(const SourceFile& file, const Statement& statement) {
  CompilationUnit unit;
  unit.verdict = Verdict::reexec;
  unit.qualname = statement.scope_qualname;
  unit.targets = statement.targets;
  UnitText text;
  if (!statement.scope_qualname.empty()) {
    const Definition* klass = file.find(statement.scope_qualname);
    if (klass != nullptr) {
      auto chain = ancestors(file, *klass);
      chain.push_back(klass);
      unit.scopes = write_scope_stubs(file, chain, {}, text);
    }
  }
  if (statement.kind == Statement::Kind::docstring) {
    std::string indent = leading_whitespace(line_of(file, statement.range.start_line));
    text.set(statement.range.start_line, indent + "__doc__ = " + statement.text);
    unit.targets = {"__doc__"};
  } else {
    write_lines(file, statement.range.start_line, statement.range.end_line, text);
  }
  unit.source = text.str();
  return unit;
}

}  // namespace

std::vector<CompilationUnit> build_units(const SourceFile& before, const SourceFile& after, const ChangeSet& changes) {
  std::vector<CompilationUnit> units;
  for (const auto& change : changes.changes) {
    if (change.verdict == Verdict::restart) {
      continue;
    }
    if (change.is_statement) {
      if (change.new_index >= 0) {
        units.push_back(build_statement_unit(after, after.statements[static_cast<std::size_t>(change.new_index)]));
      }
      continue;
    }
    if (change.verdict == Verdict::remove) {
      units.push_back(build_definition_unit(before, before.definitions[static_cast<std::size_t>(change.old_index)],
                                            change.verdict));
      continue;
    }
    CompilationUnit unit =
        build_definition_unit(after, after.definitions[static_cast<std::size_t>(change.new_index)], change.verdict);
    unit.line_delta = change.line_delta;
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

}  // namespace pyhot::differ
