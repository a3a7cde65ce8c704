// Internal to parser/: what CPython's tokenizer rejects before any grammar
// is involved, which tree-sitter does not see: indentation that mixes tabs
// and spaces inconsistently (TabError) and a coding declaration CPython
// cannot honour. Both need only the text.
#pragma once

#include <optional>
#include <string_view>

#include "parser/source_file.hpp"

namespace pyhot::parser {

// CPython's check: every indentation compared with the enclosing ones
// both with tabs to multiples of 8 and with tabs as one column must order
// the same way. Indentation starts at column 0 at every top-level
// statement, so a span of whole top-level statements checks alone as it
// would in its file.
std::optional<SyntaxError> find_tab_error(std::string_view text);

// Indentation deeper than CPython's tokenizer takes (99 levels: "too many
// levels of indentation"), or than tree-sitter-python's scanner tracks
// (column 255), which would otherwise misparse far from the cause.
std::optional<SyntaxError> find_indentation_error(std::string_view text);

// Bytes that are not UTF-8 in a file that declares no other encoding:
// CPython's "Non-UTF-8 code" error.
std::optional<SyntaxError> find_encoding_error(std::string_view text);

// A `coding[:=]` comment on line 1 (or line 2 after a comment or blank
// line 1) naming no text encoding CPython knows, or not UTF-8 after a
// UTF-8 byte-order mark.
std::optional<SyntaxError> find_coding_error(std::string_view text);

}  // namespace pyhot::parser
