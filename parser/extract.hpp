// Internal to parser/: turns a tree-sitter tree into a SourceFile.
#pragma once

#include <tree_sitter/api.h>

#include <string>
#include <string_view>

#include "parser/source_file.hpp"

namespace pyhot::parser {

// `text` must be the exact text `tree` was parsed from.
SourceFile extract_source_file(const TSTree* tree, std::string_view text, const std::string& path);

}  // namespace pyhot::parser
