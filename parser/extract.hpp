// Internal to parser/: turns a tree-sitter tree into a SourceFile, one
// top-level statement at a time.
#pragma once

#include <tree_sitter/api.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parser/edit_span.hpp"
#include "parser/source_file.hpp"

namespace pyhot::parser {

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
