// What pyhot knows about one Python file: every definition with its
// qualified name, ranges and scope facts, plus the statements between them.
//
// Each record's `fields(record)` is the one list of its fields (const or
// not), in serialized order: serialize() writes and reads through it, and
// operator== compares every member. A field added to a record goes into
// its fields() too, or the serialization round-trip test fails.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace pyhot::parser {

enum class DefinitionKind {
  function,        // module-level or nested def
  async_function,  // async def (any level)
  klass,           // class
  method,          // def directly in a class body
  static_method,   // @staticmethod
  class_method,    // @classmethod
  property,        // @property, @x.setter, @x.deleter, @functools.cached_property
};

const char* to_string(DefinitionKind kind);

struct Range {
  std::uint32_t start_byte = 0;  // inclusive
  std::uint32_t end_byte = 0;    // exclusive
  std::uint32_t start_line = 0;  // 1-based, inclusive
  std::uint32_t end_line = 0;    // 1-based, inclusive

  bool operator==(const Range&) const = default;
  template <typename Self>
  static auto fields(Self& self) {
    return std::tie(self.start_byte, self.end_byte, self.start_line, self.end_line);
  }
};

struct Parameter {
  enum class Kind { positional_only, positional, var_positional, keyword_only, var_keyword };
  std::string name;
  Kind kind = Kind::positional;
  std::string default_text;     // empty when there is none
  std::string annotation_text;  // empty when there is none

  bool operator==(const Parameter&) const = default;
  template <typename Self>
  static auto fields(Self& self) {
    return std::tie(self.name, self.kind, self.default_text, self.annotation_text);
  }
};

struct Definition {
  std::string name;             // "inner"
  std::string qualname;         // "outer.<locals>.inner", exactly as CPython's __qualname__
  std::string parent_qualname;  // "" at module level; "C" for C.m; "outer" for outer.<locals>.inner
  DefinitionKind kind = DefinitionKind::function;
  std::vector<std::string> decorators;  // each decorator's expression text, without '@'
  std::vector<Parameter> parameters;    // empty for classes
  std::string bases_text;               // classes: the text between the parentheses, "" if none
  Range range;                          // decorators included, through the last line of the body
  std::uint32_t def_line = 0;           // line of the 'def' / 'class' / 'async def' keyword
  std::uint32_t def_byte = 0;           // byte offset of that keyword
  std::uint32_t body_byte = 0;          // byte offset of the first statement of the body (after the ':')
  std::uint32_t indent = 0;             // column of the first decorator / keyword
  bool is_generator = false;            // has yield / yield from in its own scope
  bool is_coroutine = false;            // async def
  bool conditional = false;             // under if/try/with/for/while at module or class level
  bool in_main_guard = false;           // under `if __name__ == "__main__":`
  // Names the body reads from enclosing function scopes, sorted: exactly
  // CPython's co_freevars (including '__class__' for zero-argument super()).
  std::vector<std::string> free_variables;
  // Index into SourceFile::definitions of the enclosing definition, or -1.
  int parent = -1;

  bool operator==(const Definition&) const = default;
  template <typename Self>
  static auto fields(Self& self) {
    return std::tie(self.name, self.qualname, self.parent_qualname, self.kind, self.decorators, self.parameters,
                    self.bases_text, self.range, self.def_line, self.def_byte, self.body_byte, self.indent,
                    self.is_generator, self.is_coroutine, self.conditional, self.in_main_guard, self.free_variables,
                    self.parent);
  }
};

struct Statement {
  enum class Kind {
    import,         // import x / from x import y
    future_import,  // from __future__ import ...
    assignment,     // x = ..., x: T = ..., x += ... (simple or annotated)
    docstring,      // a bare string literal as first statement
    other,          // anything else: calls, if/for/with blocks that contain no definition, ...
  };
  Kind kind = Kind::other;
  Range range;
  std::string text;                  // exact source text of the statement
  std::string scope_qualname;        // "" for module level, "C" for a statement in class C's body
  std::vector<std::string> targets;  // assigned / imported names, for assignment and import
  bool conditional = false;          // under if/try/with at that level
  // A module-level if/try block of imports, assignments and definitions
  // only; its targets are what its imports and assignments bind.
  bool binding_block = false;

  bool operator==(const Statement&) const = default;
  template <typename Self>
  static auto fields(Self& self) {
    return std::tie(self.kind, self.range, self.text, self.scope_qualname, self.targets, self.conditional,
                    self.binding_block);
  }
};

struct SyntaxError {
  std::uint32_t line = 0;    // 1-based
  std::uint32_t column = 0;  // 1-based
  std::string message;       // "invalid syntax near 'foo'" / "missing ':'"

  bool operator==(const SyntaxError&) const = default;
  template <typename Self>
  static auto fields(Self& self) {
    return std::tie(self.line, self.column, self.message);
  }
};

struct SourceFile {
  std::string path;
  std::string text;
  std::vector<Definition> definitions;  // in source order (pre-order: parent before children)
  std::vector<Statement> statements;    // module- and class-level statements that are not definitions
  std::vector<SyntaxError> errors;      // empty when the file parses

  const Definition* find(const std::string& qualname) const;
  bool operator==(const SourceFile&) const = default;
};

// Whether putting `after` in place of `live` deletes every definition the
// module has: what an emptied or half-written file does. autoreload (and
// reload) refuse it unless asked explicitly (--allow-empty).
bool deletes_every_definition(const SourceFile& live, const SourceFile& after);

// Whether `after` lacks a definition `live` has (by qualified name).
bool deletes_a_definition(const SourceFile& live, const SourceFile& after);

}  // namespace pyhot::parser
