// The pieces reparse_from() is made of, for a caller that holds the previous
// version not as a SourceFile but as its top-level statements (the parsed
// cache reads them in place, patch/parsed_cache.hpp): where an edit's span
// of whole top-level statements lies, and that span parsed alone. The
// argument that the span parses alone as it does in the whole file is in
// reparse.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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

// A top-level statement: a module-level definition or statement that no
// other contains. Every definition and statement of a SourceFile lies in
// exactly one.
struct TopLevelStatement {
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  std::uint32_t line = 0;  // of `start`, 1-based
  bool operator==(const TopLevelStatement&) const = default;
};

// In source order; false when the records do not look like a parse result
// of a text of `text_size` bytes.
bool top_level_statements(const std::vector<Definition>& definitions, const std::vector<Statement>& statements,
                          std::size_t text_size, std::vector<TopLevelStatement>& out);

// Whether an edit of `file`'s text can be re-parsed span by span: it has no
// syntax error and none of the constructs tree-sitter parses depending on
// what came long before. reparse_from() parses the whole text otherwise.
bool reparses_by_span(const SourceFile& file);

// Whether reparse_from() makes this edit in two steps (two edits far apart):
// then parse_edited_span() alone would parse everything in between.
bool edit_needs_two_steps(std::string_view old_text, std::string_view new_text,
                          std::span<const TopLevelStatement> items);

// The previous text's top-level statements [first_item, end_item), bytes
// [start, old_stop), become new_text[start, new_stop), parsed into `parsed`
// (at their place in the new text; Definition::parent indexes
// parsed.definitions). What follows moves by after_bytes and after_lines
// (two's complement when negative).
struct EditedSpan {
  std::size_t first_item = 0;
  std::size_t end_item = 0;
  std::size_t start = 0;
  std::size_t old_stop = 0;
  std::size_t new_stop = 0;
  std::uint32_t after_bytes = 0;
  std::uint32_t after_lines = 0;
  SourceFile parsed;
};

// The span of the one edit between the texts, widened to clean top-level
// boundaries, and parsed; nothing (and `why`) when it cannot be shown to
// parse as it does in the whole new text. `items` are old_text's; its
// SourceFile must pass reparses_by_span().
std::optional<EditedSpan> parse_edited_span(std::span<const TopLevelStatement> items, std::string_view old_text,
                                            std::string_view new_text, const std::string& path, const char*& why);

}  // namespace pyhot::parser
