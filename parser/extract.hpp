// Internal to parser/: turns a tree-sitter tree into a SourceFile, one
// top-level statement at a time.
#pragma once

#include <tree_sitter/api.h>

#include <cstdint>
#include <string>
#include <string_view>
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

// `text` must be the exact text `tree` was parsed from. Each top-level
// statement is extracted with its own symbol table (see reparse.cpp for why
// that gives what one walk of the whole module would).
SourceFile extract_source_file(const TSTree* tree, std::string_view text, const std::string& path);

}  // namespace pyhot::parser
