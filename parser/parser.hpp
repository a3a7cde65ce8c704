// Turns Python source text into a SourceFile with tree-sitter-python.
// A PythonParser keeps the last tree so an edited text re-parses incrementally.
#pragma once

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

class PythonParser {
 public:
  PythonParser();
  ~PythonParser();
  PythonParser(const PythonParser&) = delete;
  PythonParser& operator=(const PythonParser&) = delete;

  // Parses text; when a previous tree exists, the edit between the previous
  // text and this one is computed (common prefix/suffix), applied with
  // ts_tree_edit, and the old tree is reused.
  Result<SourceFile> parse(std::string_view text, const std::string& path = "<string>");

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace pyhot::parser
