// Turns Python source text into a SourceFile with tree-sitter-python; an
// edited text is parsed from the SourceFile of the text before the edit.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "parser/source_file.hpp"
#include "util/result.hpp"

namespace pyhot::parser {

// One-shot parse. Syntax errors are reported in SourceFile::errors, not as
// a failed Result; the Result fails only when tree-sitter itself cannot run.
Result<SourceFile> parse_source(std::string_view text, const std::string& path = "<string>");

// Reads and parses a file.
Result<SourceFile> parse_file(const std::string& path);

// How reparse_from() got its result: for tests, benchmarks and logs.
struct ReparseInfo {
  bool full_parse = false;       // it fell back to parse_source(new_text)
  std::string reason;            // why, when it did
  std::size_t parsed_bytes = 0;  // bytes tree-sitter parsed
};

// parse_source(new_text, path), computed from `previous` (what parse_source
// or reparse_from gave for previous.text, e.g. loaded with deserialize()):
// only the top-level statements the edit between the two texts touches are
// parsed again; the others are moved to their new place. The result is
// exactly parse_source's; whenever that cannot be shown cheaply (syntax
// errors, a boundary that is not a clean top-level one, CR or form feed in
// the edited part, ...), this is a full parse_source, and `info` says why.
Result<SourceFile> reparse_from(const SourceFile& previous, std::string_view new_text,
                                const std::string& path = "<string>", ReparseInfo* info = nullptr);

}  // namespace pyhot::parser
