#include "parser/parser.hpp"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cstring>

#include "parser/extract.hpp"
#include "parser/grammar.hpp"
#include "parser/text_edit.hpp"
#include "util/file.hpp"

namespace pyhot::parser {

namespace {

Result<ParserPtr> make_parser() {
  ParserPtr parser(ts_parser_new());
  if (!parser || !ts_parser_set_language(parser.get(), Grammar::get().language())) {
    return make_error(ErrorKind::internal, "tree-sitter-python grammar does not match the tree-sitter runtime");
  }
  return parser;
}

// tree-sitter keeps offsets in 32 bits.
bool too_large(std::string_view text) { return text.size() >= 0xFFFFFFF0U; }

Error too_large_error(const std::string& path) {
  return make_error(ErrorKind::usage, "'" + path + "' is too large to parse (4 GiB or more)");
}

Error parse_failed_error(const std::string& path) {
  return make_error(ErrorKind::internal, "tree-sitter could not parse '" + path + "'");
}

// Row and column of `offset`, counting from a known point at `from`.
TSPoint advance(TSPoint point, std::string_view text, std::size_t from, std::size_t offset) {
  const char* at = text.data() + from;
  const char* end = text.data() + offset;
  while (true) {
    const void* newline = std::memchr(at, '\n', static_cast<std::size_t>(end - at));
    if (newline == nullptr) {
      break;
    }
    ++point.row;
    point.column = 0;
    at = static_cast<const char*>(newline) + 1;
  }
  point.column += static_cast<std::uint32_t>(end - at);
  return point;
}

}  // namespace

Result<SourceFile> parse_source(std::string_view text, const std::string& path) {
  // One shot: no PythonParser, so nothing is kept for a next parse.
  if (too_large(text)) {
    return too_large_error(path);
  }
  Result<ParserPtr> parser = make_parser();
  if (!parser) {
    return parser.error();
  }
  TreePtr tree(ts_parser_parse_string(parser->get(), nullptr, text.data(), static_cast<std::uint32_t>(text.size())));
  if (!tree) {
    return parse_failed_error(path);
  }
  return extract_source_file(tree.get(), text, path, nullptr);
}

Result<SourceFile> parse_file(const std::string& path) {
  Result<std::string> text = util::read_file(path);
  if (!text) {
    return text.error();
  }
  return parse_source(*text, path);
}

struct PythonParser::State {
  ParserPtr parser;
  TreePtr tree;
  std::string text;  // what `tree` was parsed from
  // The top-level statements of `text`, extracted: an edit re-extracts only
  // the statements it touched.
  ExtractionCache extractions;
};

PythonParser::PythonParser() : m_state(std::make_unique<State>()) {}
PythonParser::~PythonParser() = default;

Result<SourceFile> PythonParser::parse(std::string_view text, const std::string& path) {
  if (too_large(text)) {
    return too_large_error(path);
  }
  if (!m_state->parser) {
    Result<ParserPtr> parser = make_parser();
    if (!parser) {
      return parser.error();
    }
    m_state->parser = std::move(*parser);
  }

  TSTree* old_tree = m_state->tree.get();
  if (old_tree != nullptr) {
    // One edit covering everything between the common prefix and suffix:
    // enough for tree-sitter to reuse every untouched subtree.
    const std::string& old_text = m_state->text;
    std::size_t limit = std::min(old_text.size(), text.size());
    std::size_t prefix = common_prefix(old_text, text, limit);
    std::size_t suffix = common_suffix(old_text, text, limit - prefix);
    TSInputEdit edit;
    edit.start_byte = static_cast<std::uint32_t>(prefix);
    edit.old_end_byte = static_cast<std::uint32_t>(old_text.size() - suffix);
    edit.new_end_byte = static_cast<std::uint32_t>(text.size() - suffix);
    edit.start_point = advance(TSPoint{0, 0}, text, 0, prefix);
    edit.old_end_point = advance(edit.start_point, old_text, prefix, edit.old_end_byte);
    edit.new_end_point = advance(edit.start_point, text, prefix, edit.new_end_byte);
    ts_tree_edit(old_tree, &edit);
  }

  TSTree* tree =
      ts_parser_parse_string(m_state->parser.get(), old_tree, text.data(), static_cast<std::uint32_t>(text.size()));
  if (tree == nullptr) {
    m_state->tree.reset();
    m_state->extractions = ExtractionCache();
    return parse_failed_error(path);
  }
  m_state->tree.reset(tree);
  m_state->text.assign(text);
  return extract_source_file(tree, m_state->text, path, &m_state->extractions);
}

}  // namespace pyhot::parser
