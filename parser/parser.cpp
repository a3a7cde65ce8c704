#include "parser/parser.hpp"

#include <tree_sitter/api.h>

#include "parser/extract.hpp"
#include "parser/grammar.hpp"
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

}  // namespace

Result<SourceFile> parse_source(std::string_view text, const std::string& path) {
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
  return extract_source_file(tree.get(), text, path);
}

Result<SourceFile> parse_file(const std::string& path) {
  Result<std::string> text = util::read_python_file(path);
  if (!text) {
    return text.error();
  }
  return parse_source(*text, path);
}

}  // namespace pyhot::parser
