// Internal to parser/: the tree-sitter-python node kinds and fields pyhot
// looks at, resolved once to numbers so the walk never compares strings.
#pragma once

#include <tree_sitter/api.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

extern "C" const TSLanguage* tree_sitter_python();

namespace pyhot::parser {

struct TreeDeleter {
  void operator()(TSTree* tree) const { ts_tree_delete(tree); }
};
struct ParserDeleter {
  void operator()(TSParser* parser) const { ts_parser_delete(parser); }
};
using TreePtr = std::unique_ptr<TSTree, TreeDeleter>;
using ParserPtr = std::unique_ptr<TSParser, ParserDeleter>;

// tree-sitter's ts_builtin_sym_error, which api.h does not export.
inline constexpr TSSymbol k_error_symbol = static_cast<TSSymbol>(-1);

enum class NodeKind : std::uint8_t {
  other,
  error,
  module,
  block,
  comment,
  identifier,
  // statements
  function_definition,
  class_definition,
  decorated_definition,
  decorator,
  expression_statement,
  assignment,
  augmented_assignment,
  import_statement,
  import_from_statement,
  future_import_statement,
  aliased_import,
  dotted_name,
  relative_import,
  global_statement,
  nonlocal_statement,
  delete_statement,
  if_statement,
  elif_clause,
  else_clause,
  for_statement,
  while_statement,
  try_statement,
  except_clause,
  except_group_clause,
  finally_clause,
  with_statement,
  with_clause,
  with_item,
  match_statement,
  case_clause,
  type_alias_statement,
  print_statement,
  exec_statement,
  // expressions
  attribute,
  keyword_argument,
  lambda,
  lambda_parameters,
  list_comprehension,
  set_comprehension,
  dictionary_comprehension,
  generator_expression,
  for_in_clause,
  if_clause,
  named_expression,
  yield,
  string,
  concatenated_string,
  interpolation,
  format_specifier,
  format_expression,
  as_pattern,
  as_pattern_target,
  pattern_list,
  tuple_pattern,
  list_pattern,
  tuple,
  list,
  parenthesized_expression,
  expression_list,
  list_splat,
  list_splat_pattern,
  dictionary_splat_pattern,
  subscript,
  // parameters
  parameters,
  typed_parameter,
  default_parameter,
  typed_default_parameter,
  positional_separator,
  keyword_separator,
  // types and type parameters
  type,
  type_parameter,
  generic_type,
  constrained_type,
  splat_type,
  member_type,
  // match patterns
  case_pattern,
  class_pattern,
  keyword_pattern,
  splat_pattern,
  dict_pattern,
  count_,
};

struct Fields {
  TSFieldId name = 0;
  TSFieldId body = 0;
  TSFieldId parameters = 0;
  TSFieldId return_type = 0;
  TSFieldId type_parameters = 0;
  TSFieldId superclasses = 0;
  TSFieldId definition = 0;
  TSFieldId value = 0;
  TSFieldId alias = 0;
  TSFieldId left = 0;
  TSFieldId right = 0;
  TSFieldId type = 0;
  TSFieldId condition = 0;
  TSFieldId consequence = 0;
  TSFieldId alternative = 0;
  TSFieldId subject = 0;
  TSFieldId guard = 0;
  TSFieldId object = 0;
  TSFieldId attribute = 0;
  TSFieldId key = 0;
  TSFieldId module_name = 0;
  TSFieldId format_specifier = 0;
};

class Grammar {
 public:
  static const Grammar& get();

  const TSLanguage* language() const { return m_language; }
  NodeKind kind(TSNode node) const {
    TSSymbol symbol = ts_node_symbol(node);
    if (symbol == k_error_symbol) {
      return NodeKind::error;
    }
    return symbol < m_kinds.size() ? m_kinds[symbol] : NodeKind::other;
  }
  const Fields& fields() const { return m_fields; }

 private:
  Grammar();
  const TSLanguage* m_language;
  std::vector<NodeKind> m_kinds;  // indexed by symbol: aliases and duplicates all land here
  Fields m_fields;
};

inline std::string_view node_text(TSNode node, std::string_view source) {
  std::uint32_t start = ts_node_start_byte(node);
  std::uint32_t end = ts_node_end_byte(node);
  if (start >= source.size()) {
    return {};
  }
  return source.substr(start, end - start);
}

// Child iteration through a pool of TSTreeCursors, one per recursion depth:
// ts_node_child(i) walks from the first child each time, which is quadratic
// on a module with thousands of statements, and a fresh cursor per node
// costs an allocation.
class ChildWalker {
 public:
  ChildWalker() = default;
  ~ChildWalker();
  ChildWalker(const ChildWalker&) = delete;
  ChildWalker& operator=(const ChildWalker&) = delete;

  // Calls f(child, field_id) for every child (named or not), in order.
  template <typename F>
  void each(TSNode node, F&& f) {
    TSTreeCursor* cursor = acquire(node);
    if (ts_tree_cursor_goto_first_child(cursor)) {
      do {
        TSNode child = ts_tree_cursor_current_node(cursor);
        TSFieldId field = ts_tree_cursor_current_field_id(cursor);
        f(child, field);
      } while (ts_tree_cursor_goto_next_sibling(cursor));
    }
    release();
  }

 private:
  TSTreeCursor* acquire(TSNode node);
  void release() { --m_depth; }

  std::deque<TSTreeCursor> m_cursors;  // deque: an outer level's cursor must not move
  std::size_t m_depth = 0;
};

}  // namespace pyhot::parser
