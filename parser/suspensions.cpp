#include "parser/suspensions.hpp"

#include <tree_sitter/api.h>

#include <cstring>

#include "parser/grammar.hpp"

namespace pyhot::parser {

namespace {

bool is(TSNode node, const char* type) { return std::strcmp(ts_node_type(node), type) == 0; }

bool starts_with_async(TSNode node) { return ts_node_child_count(node) > 0 && is(ts_node_child(node, 0), "async"); }

bool is_scope(TSNode node) {
  return is(node, "function_definition") || is(node, "class_definition") || is(node, "lambda");
}

bool is_comprehension(TSNode node) {
  return is(node, "list_comprehension") || is(node, "set_comprehension") || is(node, "dictionary_comprehension") ||
         is(node, "generator_expression");
}

// The expression a with_item enters: its value, without `as target`.
TSNode context_expression(TSNode item) {
  TSNode value = ts_node_child_by_field_name(item, "value", 5);
  if (!ts_node_is_null(value) && is(value, "as_pattern") && ts_node_named_child_count(value) > 0) {
    return ts_node_named_child(value, 0);
  }
  return value;
}

class Finder {
 public:
  explicit Finder(Suspensions& out) : m_out(out) {}

  void walk(TSNode node, int depth, bool in_comprehension) {
    std::uint32_t count = ts_node_child_count(node);
    for (std::uint32_t i = 0; i < count; ++i) {
      visit(ts_node_child(node, i), depth, in_comprehension);
    }
  }

 private:
  void visit(TSNode node, int depth, bool in_comprehension) {
    if (!ts_node_is_named(node) || is_scope(node)) {
      return;
    }
    bool comprehension = in_comprehension || is_comprehension(node);
    if (is(node, "yield") || is(node, "await")) {
      if (comprehension && is(node, "await")) {
        unsupported("an await inside a comprehension");
      }
      add_expression(node, depth);
      walk(node, depth + 1, comprehension);
      return;
    }
    if (is(node, "for_in_clause") && starts_with_async(node) && comprehension) {
      unsupported("an async for inside a comprehension");
    }
    if (is(node, "for_statement") && starts_with_async(node)) {
      TSNode iterable = ts_node_child_by_field_name(node, "right", 5);
      add_wrapped(Suspension::Kind::async_for, iterable, depth);
    }
    if (is(node, "with_statement") && starts_with_async(node)) {
      for (std::uint32_t i = 0; i < ts_node_named_child_count(node); ++i) {
        TSNode clause = ts_node_named_child(node, i);
        if (!is(clause, "with_clause")) {
          continue;
        }
        for (std::uint32_t j = 0; j < ts_node_named_child_count(clause); ++j) {
          TSNode item = ts_node_named_child(clause, j);
          if (is(item, "with_item")) {
            add_wrapped(Suspension::Kind::async_with, context_expression(item), depth);
          }
        }
      }
    }
    walk(node, depth, comprehension);
  }

  void add_expression(TSNode node, int depth) {
    Suspension point;
    point.start_byte = ts_node_start_byte(node);
    point.end_byte = ts_node_end_byte(node);
    point.depth = depth;
    bool from = false;
    TSNode operand{};
    for (std::uint32_t i = 0; i < ts_node_child_count(node); ++i) {
      TSNode child = ts_node_child(node, i);
      if (is(child, "from")) {
        from = true;
      } else if (ts_node_is_named(child) && !is(child, "comment")) {
        operand = child;
      }
    }
    point.kind =
        is(node, "await") ? Suspension::Kind::await : (from ? Suspension::Kind::yield_from : Suspension::Kind::yield);
    point.operand_start = ts_node_is_null(operand) ? point.end_byte : ts_node_start_byte(operand);
    point.operand_end = ts_node_is_null(operand) ? point.end_byte : ts_node_end_byte(operand);
    m_out.points.push_back(point);
  }

  void add_wrapped(Suspension::Kind kind, TSNode expression, int depth) {
    if (ts_node_is_null(expression)) {
      return;
    }
    Suspension point;
    point.kind = kind;
    point.start_byte = point.operand_start = ts_node_start_byte(expression);
    point.end_byte = point.operand_end = ts_node_end_byte(expression);
    point.depth = depth;
    m_out.points.push_back(point);
  }

  void unsupported(const char* what) {
    if (m_out.unsupported.empty()) {
      m_out.unsupported = what;
    }
  }

  Suspensions& m_out;
};

// The function_definition whose keyword (`def`, or `async` before it) starts at byte.
TSNode function_at(TSNode node, std::uint32_t byte) {
  while (!ts_node_is_null(node)) {
    if (is(node, "function_definition") && ts_node_start_byte(node) == byte) {
      return node;
    }
    TSNode next{};
    for (std::uint32_t i = 0; i < ts_node_child_count(node); ++i) {
      TSNode child = ts_node_child(node, i);
      if (ts_node_start_byte(child) <= byte && byte < ts_node_end_byte(child)) {
        next = child;
        break;
      }
    }
    node = next;
  }
  return node;
}

}  // namespace

Result<Suspensions> find_suspensions(std::string_view text, std::uint32_t def_byte) {
  ParserPtr parser(ts_parser_new());
  if (!parser || !ts_parser_set_language(parser.get(), Grammar::get().language())) {
    return make_error(ErrorKind::internal, "tree-sitter-python grammar does not match the tree-sitter runtime");
  }
  TreePtr tree(ts_parser_parse_string(parser.get(), nullptr, text.data(), static_cast<std::uint32_t>(text.size())));
  if (!tree) {
    return make_error(ErrorKind::internal, "tree-sitter could not parse the file");
  }
  TSNode function = function_at(ts_tree_root_node(tree.get()), def_byte);
  if (ts_node_is_null(function)) {
    return make_error(ErrorKind::internal, "no function starts at byte " + std::to_string(def_byte));
  }
  Suspensions out;
  TSNode body = ts_node_child_by_field_name(function, "body", 4);
  if (!ts_node_is_null(body)) {
    Finder(out).walk(body, 0, false);
  }
  return out;
}

}  // namespace pyhot::parser
