// Internal to parser/: the walk that turns one top-level statement's
// tree-sitter subtree into its definitions, statements and syntax errors
// (extract_statements.cpp, extract_definitions.cpp; driven by extract.cpp).
#pragma once

#include <tree_sitter/api.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parser/extract.hpp"
#include "parser/grammar.hpp"
#include "parser/scopes.hpp"

namespace pyhot::parser {

inline Range make_range(TSNode node) {
  Range range;
  range.start_byte = ts_node_start_byte(node);
  range.end_byte = ts_node_end_byte(node);
  TSPoint start = ts_node_start_point(node);
  TSPoint end = ts_node_end_point(node);
  range.start_line = start.row + 1;
  // A node that ends right after a newline ends on the line before.
  range.end_line = (end.column == 0 && end.row > start.row) ? end.row : end.row + 1;
  return range;
}

inline bool is_definition_kind(NodeKind kind) {
  return kind == NodeKind::function_definition || kind == NodeKind::class_definition ||
         kind == NodeKind::decorated_definition;
}

inline bool is_compound_kind(NodeKind kind) {
  return kind == NodeKind::if_statement || kind == NodeKind::for_statement || kind == NodeKind::while_statement ||
         kind == NodeKind::try_statement || kind == NodeKind::with_statement || kind == NodeKind::match_statement;
}

inline std::string strip_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\\' && c != '\n' && c != '\r') {
      out += c;
    }
  }
  return out;
}

inline bool is_main_guard_condition(std::string_view condition) {
  std::string compact = strip_spaces(condition);
  return compact == "__name__==\"__main__\"" || compact == "__name__=='__main__'" ||
         compact == "\"__main__\"==__name__" || compact == "'__main__'==__name__";
}

// Where a statement sits, as the walk goes down.
struct Context {
  int scope = 0;             // ScopeTable index the statement's names go to
  int definition = -1;       // enclosing Definition, -1 at module level
  bool in_function = false;  // somewhere inside a def (statements are not collected there)
  bool collect = false;      // direct child of a module or class body: record it as a Statement
  bool conditional = false;
  bool main_guard = false;
};

class Extractor {
 public:
  // `walker` is shared by the extractors of one file: its cursors are
  // allocated once, not per top-level statement.
  Extractor(std::string_view text, Extraction& out, ChildWalker& walker)
      : m_text(text), m_out(out), m_grammar(Grammar::get()), m_fields(m_grammar.fields()), m_walker(walker) {}

  // One direct child of the module, with its own symbol table: the module
  // scope gives it nothing (see reparse.cpp). `first`: the first
  // statement of the module, which may be its docstring.
  void run_top_level(TSNode node, bool first);

  // What visit_body() skips at the module level.
  bool is_skipped(TSNode node) const { return !ts_node_is_named(node) || kind(node) == NodeKind::comment; }
  // What visit_body() hands to visit_case_clause() (error recovery can put
  // one at the module level), without counting it as the first statement.
  bool is_case_clause(TSNode node, TSFieldId field_id = 0) const {
    return kind(node) == NodeKind::case_clause || (field_id != 0 && field_id == m_fields.alternative);
  }

  // The module node's own error, if it is one; its children report theirs.
  void report_if_error(TSNode node);

  void collect_errors(TSNode node);

 private:
  NodeKind kind(TSNode node) const { return m_grammar.kind(node); }

  // Calls f(child) for every named child that is not a comment.
  template <typename F>
  void each_named(TSNode node, F&& f) {
    m_walker.each(node, [&](TSNode child, TSFieldId) {
      if (ts_node_is_named(child) && kind(child) != NodeKind::comment) {
        f(child);
      }
    });
  }
  // Calls f(child) for every child of one kind (the names of a `global`
  // statement, the identifiers of a capture pattern, ...).
  template <typename F>
  void each_of_kind(TSNode node, NodeKind wanted, F&& f) {
    m_walker.each(node, [&](TSNode child, TSFieldId) {
      if (kind(child) == wanted) {
        f(child);
      }
    });
  }
  // The nodes an assignment target unpacks into its parts: `a, b`, `[a, *b]`, `(a)`.
  static bool is_target_sequence(NodeKind node_kind) {
    switch (node_kind) {
      case NodeKind::pattern_list:
      case NodeKind::tuple_pattern:
      case NodeKind::list_pattern:
      case NodeKind::tuple:
      case NodeKind::list:
      case NodeKind::expression_list:
      case NodeKind::parenthesized_expression:
      case NodeKind::list_splat_pattern:
      case NodeKind::list_splat:
        return true;
      default:
        return false;
    }
  }
  std::string_view text(TSNode node) const { return node_text(node, m_text); }
  TSNode field(TSNode node, TSFieldId id) const { return ts_node_child_by_field_id(node, id); }

  bool is_function_block(int scope) const {
    ScopeType type = m_scopes[scope].type;
    return type == ScopeType::function || type == ScopeType::lambda || type == ScopeType::comprehension;
  }

  void use(int scope, TSNode identifier);

  void bind(int scope, TSNode identifier, std::uint32_t flags = k_def_local) {
    m_scopes.add_symbol(scope, text(identifier), flags);
  }

  // ---- statements ----

  void visit_body(TSNode body, const Context& context);

  void visit_statement_at_level(TSNode node, const Context& context, bool first);

  // The statement's text, with the definitions it contains at this level
  // cut out: they are tracked as definitions, and the rest (conditions,
  // imports in a try) must still be seen when it changes.
  std::string text_without_definitions(TSNode node, std::size_t definitions_before, int level_definition);

  Statement::Kind classify(TSNode node, bool first, std::vector<std::string>& targets);

  void collect_import_targets(TSNode node, std::vector<std::string>& targets);
  bool binds_only(TSNode node, std::vector<std::string>& targets);
  bool binds_only_statement(TSNode node, std::vector<std::string>& targets);

  // The name an import binds: `a` for `import a.b`, `c` for `a.b as c`.
  std::string_view imported_name(TSNode node);

  void collect_assignment_targets(TSNode node, std::vector<std::string>& targets);

  void collect_target_names(TSNode node, std::vector<std::string>& targets);

  void visit_statement(TSNode node, const Context& context);

  void visit_if(TSNode node, const Context& context);

  // for/while/try/with/match and their clauses: blocks are bodies, `left`
  // and `as` targets bind, everything else is read.
  void visit_compound(TSNode node, const Context& context);

  void visit_as_pattern(TSNode node, int scope);

  void visit_case_clause(TSNode node, const Context& context);

  void visit_pattern(TSNode node, int scope);

  void capture(TSNode identifier, int scope) {
    if (text(identifier) != "_") {
      bind(scope, identifier);
    }
  }

  // ---- definitions ----

  void visit_definition(TSNode node, TSNode range_node, const std::vector<TSNode>& decorators, const Context& context);

  DefinitionKind function_kind(const Definition& definition, bool in_class_body) const;

  // Parameter names bind in the function; defaults are read in `enclosing`,
  // annotations in `annotations` (the type-parameter scope when there is one).
  void visit_parameters(TSNode parameters, int enclosing, int annotations, int function, std::vector<Parameter>* out);

  // `[T: int, *Ts, **P]` in a def/class/type statement: names bind in the
  // type-parameter scope, bounds are read there.
  void visit_type_parameter_declarations(TSNode node, int scope) {
    each_named(node, [&](TSNode child) { visit_type_parameter_declaration(child, scope); });
  }

  void visit_type_parameter_declaration(TSNode node, int scope);

  void visit_type_alias(TSNode node, int scope);

  // ---- expressions ----

  void visit_generic(TSNode node, int scope) {
    each_named(node, [&](TSNode child) { visit_expression(child, scope); });
  }

  void visit_expression(TSNode node, int scope);

  void visit_assignment(TSNode node, int scope);

  void visit_target(TSNode node, int scope, std::uint32_t flags = k_def_local);

  void visit_lambda(TSNode node, int scope);

  // The first iterable is evaluated outside; everything else runs in the
  // comprehension's own scope.
  void visit_comprehension(TSNode node, int scope);

  // PEP 572: in a comprehension the target binds in the nearest enclosing
  // function (nonlocal from the comprehension's side) or module (global).
  void visit_named_expression(TSNode node, int scope);

  // ---- after the walk ----

  void finish();

  // compiler_set_qualname(): a def's qualname extends its enclosing def's,
  // with ".<locals>" after a function, unless the enclosing scope declared
  // the name global. Type-parameter scopes are see-through.
  std::string qualname(const Definition& definition, int scope);

  // ---- syntax errors ----

  bool is_print_chevron(TSNode node) const {
    TSNode first = ts_node_named_child(node, 0);
    return !ts_node_is_null(first) && std::string_view(ts_node_type(first)) == "chevron";
  }

  // print/exec statements are not ERROR nodes: they are only found by
  // looking, so the error walk goes into statements, never into expressions.
  bool subtree_may_have_py2(TSNode node) const;

  std::string excerpt(TSNode node) const;

  void add_error(TSNode node, std::string message);

  std::string_view m_text;
  Extraction& m_out;
  const Grammar& m_grammar;
  const Fields& m_fields;
  ChildWalker& m_walker;
  ScopeTable m_scopes;
  std::vector<int> m_definition_scope;  // per definition: its body's scope
  std::vector<int> m_statement_owner;   // per statement: the class it sits in, -1 for module
};

}  // namespace pyhot::parser
