// Internal to parser/: turns a tree-sitter tree into a SourceFile, one
// top-level statement at a time, reusing what an ExtractionCache kept.
#pragma once

#include <tree_sitter/api.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parser/source_file.hpp"

namespace pyhot::parser {

// Moves results from where they were extracted to where their statement
// is now. Offsets are unsigned: adding a negative delta in two's complement
// moves them back.
inline void shift(Range& range, std::uint32_t byte_delta, std::uint32_t line_delta) {
  range.start_byte += byte_delta;
  range.end_byte += byte_delta;
  range.start_line += line_delta;
  range.end_line += line_delta;
}

inline void shift(Definition& definition, std::uint32_t byte_delta, std::uint32_t line_delta) {
  shift(definition.range, byte_delta, line_delta);
  definition.def_line += line_delta;
  definition.def_byte += byte_delta;
  definition.body_byte += byte_delta;
}

// What one top-level statement contributes to a SourceFile. Definition::parent
// indexes `definitions` of this Extraction, not of the file.
struct Extraction {
  std::vector<Definition> definitions;
  std::vector<Statement> statements;
  std::vector<SyntaxError> errors;
};

// Extractions of the top-level statements of the previous parse, by content.
//
// Why a top-level statement can be reused without walking it again: all it
// contributes depends on its own subtree and nothing else. Its definitions'
// qualnames extend only definitions inside it (a top-level def is its bare
// name whatever the module declares `global`); free variables come from
// CPython's analyze_block, where the module passes no bound names down and
// the `global` set is written but never decides a name's scope. The context
// of every top-level statement is the same, except whether it is the first
// (a docstring) and its column (`a = 1; b = 2`), which are part of the key.
// So a statement with the same text, node type, column and first-ness gives
// the same results, moved to its new byte offset and line.
//
// The same holds one level down, for the members of a top-level class (its
// methods and class-level statements), so an edit in a 3,000-line class
// does not walk the whole class: methods see the class scope only through
// `__class__`, which every class gives; the class name (mangling, qualnames)
// is part of their key. Classes where members do depend on each other or
// on the class's scope are walked whole: generic classes (type parameters
// are free in methods), and classes with `global` (qualnames) or `nonlocal`
// (the class's own free variables) anywhere in their text.
//
// Statements with syntax errors are never reused: error recovery looks
// beyond the statement.
class ExtractionCache {
 public:
  struct Entry {
    std::string text;        // compared on lookup: a hash collision must not reuse the wrong statement
    std::string class_name;  // the top-level class for a member, "" for a top-level statement
    TSSymbol symbol = 0;
    std::uint32_t column = 0;
    bool first = false;
    std::uint32_t start_byte = 0;  // where the statement was when extracted
    std::uint32_t start_row = 0;
    Extraction extraction;
    std::uint64_t generation = 0;  // the last parse that used it
  };

  // The entry for a statement, or nullptr. Marks it used by this parse.
  const Entry* find(std::uint64_t key, std::string_view text, std::string_view class_name, TSSymbol symbol,
                    std::uint32_t column, bool first);
  const Entry& add(std::uint64_t key, Entry entry);

  // Around each parse: finish_parse() drops what this parse did not use, so
  // the cache holds one version's statements, not every version ever seen.
  void start_parse() { ++m_generation; }
  void finish_parse();

  std::size_t size() const { return m_entries.size(); }

 private:
  std::unordered_map<std::uint64_t, Entry> m_entries;
  std::uint64_t m_generation = 0;
};

// `text` must be the exact text `tree` was parsed from. With a cache, the
// top-level statements it holds are not walked again, and it is updated for
// the next parse; without one (a one-shot parse), nothing is kept.
SourceFile extract_source_file(const TSTree* tree, std::string_view text, const std::string& path,
                               ExtractionCache* cache);

}  // namespace pyhot::parser
