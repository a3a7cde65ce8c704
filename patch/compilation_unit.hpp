// Builds, for each live-applicable change, the source the target compiles:
// the definition at its real lines inside stubs of its enclosing scopes, so
// the code object equals what a fresh import would have produced.
#pragma once

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "differ/differ.hpp"
#include "parser/source_file.hpp"

namespace pyhot::patch {

struct Scope {
  std::string name;
  bool is_class = false;
  bool operator==(const Scope&) const = default;
};

class UnitText;

struct CompilationUnit {
  std::string qualname;
  std::string name;
  parser::DefinitionKind kind = parser::DefinitionKind::function;
  differ::Verdict verdict = differ::Verdict::swap;
  std::vector<Scope> scopes;         // enclosing classes/functions, outermost first
  std::string source;                // see loader/PROTOCOL.md: stubbed module text
  std::uint32_t first_line = 1;      // the real line of the source's first line
  int line_delta = 0;                // relocate only
  std::vector<std::string> targets;  // reexec: names the statement binds
  std::string accessor;              // property accessors: "fget", "fset" or "fdel"
  bool only_if_missing = false;      // reexec on first touch: run only when a target is unbound
  bool duplicate = false;    // swap, relocate: the qualname is defined more than once; line_delta is new - old start
  bool conditional = false;  // in a module-level block, under the main guard, or `del`eted by the module
  bool operator==(const CompilationUnit&) const = default;
};

// Builds units for definitions and statements of one file; finds a line
// from the last one it found (or the unit's own first line), so building a
// few units costs what the units are, not the file.
class UnitBuilder {
 public:
  explicit UnitBuilder(const parser::SourceFile& file);

  CompilationUnit definition(const parser::Definition& def, differ::Verdict verdict) const;
  CompilationUnit statement(const parser::Statement& statement) const;
  // A removed class-level assignment of one name: the name is deleted.
  CompilationUnit removed_attribute(const parser::Statement& statement) const;

 private:
  std::string_view line(std::uint32_t number) const;
  void copy_bindings_of_deleted_names(const parser::Statement& statement, UnitText& text) const;
  std::string_view line_holding(std::uint32_t byte) const;
  // Lines are found from here on: `range`'s first line.
  void anchor_at(const parser::Range& range) const;

  const parser::SourceFile& m_file;
  mutable std::uint32_t m_anchor_line = 1;  // a line of m_file.text ...
  mutable std::size_t m_anchor_byte = 0;    // ... and where it starts
  std::string m_imports_line;               // "if 0: import a, b" or ""
  std::set<std::string> m_deleted;
  // Definitions per qualname, counted once, when the first swap asks:
  // counting per unit made the first touch of a large module quadratic
  // (20,000 definitions: seconds), counting up front costs every steady reload.
  int qualname_count(const std::string& qualname) const;
  mutable std::unordered_map<std::string_view, int> m_qualname_counts;
};

// Whether `NAME = value` has a value that runs no code: numbers, strings
// (not f-strings), True/False/None, and tuples, lists, sets, dicts of them.
bool binds_a_literal(const std::string& text);

// Whether `NAME = value` computes its value from names with operators only
// (`DOUBLE = RATE * 2`), no call, attribute, subscript or display: on plain
// immutable data that runs no code (the agent makes sure it is such data).
bool binds_a_value_of_names(const std::string& text);

// Names a module-level `del` removes: the live module lacks them because the
// file deleted them, so a fresh import lacks them too.
std::set<std::string> deleted_names(const parser::SourceFile& file);

// The unit for one change, or none when nothing needs to cross to the target
// (a removed statement, a restart).
std::vector<CompilationUnit> build_units(const parser::SourceFile& before, const parser::SourceFile& after,
                                         const differ::ChangeSet& changes);

// "annotations", "generator_stop", ...: the __future__ features the file imports.
std::vector<std::string> future_features(const parser::SourceFile& file);

}  // namespace pyhot::patch
