#include "parser/extract.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parser/grammar.hpp"
#include "parser/scopes.hpp"
#include "parser/source_checks.hpp"

namespace pyhot::parser {

namespace {

Range make_range(TSNode node) {
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

bool is_definition_kind(NodeKind kind) {
  return kind == NodeKind::function_definition || kind == NodeKind::class_definition ||
         kind == NodeKind::decorated_definition;
}

bool is_compound_kind(NodeKind kind) {
  return kind == NodeKind::if_statement || kind == NodeKind::for_statement || kind == NodeKind::while_statement ||
         kind == NodeKind::try_statement || kind == NodeKind::with_statement || kind == NodeKind::match_statement;
}

std::string strip_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\\' && c != '\n' && c != '\r') {
      out += c;
    }
  }
  return out;
}

bool is_main_guard_condition(std::string_view condition) {
  std::string compact = strip_spaces(condition);
  return compact == "__name__==\"__main__\"" || compact == "__name__=='__main__'" ||
         compact == "\"__main__\"==__name__" || compact == "'__main__'==__name__";
}

// Adds a top-level statement's results to the file, moved to where the
// statement is now.
void append(SourceFile& file, Extraction extraction, std::uint32_t byte_delta, std::uint32_t line_delta) {
  const int base = static_cast<int>(file.definitions.size());
  for (Definition& definition : extraction.definitions) {
    shift(definition, byte_delta, line_delta);
    if (definition.parent >= 0) {
      definition.parent += base;
    }
    file.definitions.push_back(std::move(definition));
  }
  for (Statement& statement : extraction.statements) {
    shift(statement.range, byte_delta, line_delta);
    file.statements.push_back(std::move(statement));
  }
  for (SyntaxError& error : extraction.errors) {
    error.line += line_delta;
    file.errors.push_back(std::move(error));
  }
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
  void run_top_level(TSNode node, bool first) {
    Context context;
    context.collect = true;
    if (is_case_clause(node)) {
      visit_case_clause(node, context);
    } else {
      visit_statement_at_level(node, context, first);
    }
    m_scopes.analyze();
    finish();
    collect_errors(node);
  }

  // What visit_body() skips at the module level.
  bool is_skipped(TSNode node) const { return !ts_node_is_named(node) || kind(node) == NodeKind::comment; }
  // What visit_body() hands to visit_case_clause() (error recovery can put
  // one at the module level), without counting it as the first statement.
  bool is_case_clause(TSNode node, TSFieldId field_id = 0) const {
    return kind(node) == NodeKind::case_clause || (field_id != 0 && field_id == m_fields.alternative);
  }

  // The module node's own error, if it is one; its children report theirs.
  void report_if_error(TSNode node) {
    NodeKind node_kind = kind(node);
    if (node_kind == NodeKind::error) {
      add_error(node, "invalid syntax near '" + excerpt(node) + "'");
    } else if (ts_node_is_missing(node)) {
      add_error(node, std::string("missing '") + ts_node_type(node) + "'");
    } else if (node_kind == NodeKind::print_statement && !is_print_chevron(node)) {
      add_error(node, "Python 2 print statement");
    } else if (node_kind == NodeKind::exec_statement) {
      add_error(node, "Python 2 exec statement");
    }
  }

  void collect_errors(TSNode node) {
    report_if_error(node);
    if (ts_node_has_error(node) || subtree_may_have_py2(node)) {
      m_walker.each(node, [&](TSNode child, TSFieldId) { collect_errors(child); });
    }
  }

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
  std::string_view text(TSNode node) const { return node_text(node, m_text); }
  TSNode field(TSNode node, TSFieldId id) const { return ts_node_child_by_field_id(node, id); }

  bool is_function_block(int scope) const {
    ScopeType type = m_scopes[scope].type;
    return type == ScopeType::function || type == ScopeType::lambda || type == ScopeType::comprehension;
  }

  void use(int scope, TSNode identifier) {
    std::string_view name = text(identifier);
    m_scopes.add_symbol(scope, name, k_use);
    // Zero-argument super() needs the __class__ cell (symtable.c does the same).
    if (name == "super" && is_function_block(scope)) {
      m_scopes.add_symbol(scope, "__class__", k_use);
    }
  }

  void bind(int scope, TSNode identifier, std::uint32_t flags = k_def_local) {
    m_scopes.add_symbol(scope, text(identifier), flags);
  }

  // ---- statements ----

  void visit_body(TSNode body, const Context& context) {
    bool first = true;
    m_walker.each(body, [&](TSNode child, TSFieldId field_id) {
      NodeKind child_kind = kind(child);
      if (!ts_node_is_named(child) || child_kind == NodeKind::comment) {
        return;
      }
      // match_statement's case clauses live in its block under `alternative`.
      if (child_kind == NodeKind::case_clause || field_id == m_fields.alternative) {
        visit_case_clause(child, context);
        return;
      }
      visit_statement_at_level(child, context, first);
      first = false;
    });
  }

  void visit_statement_at_level(TSNode node, const Context& context, bool first) {
    NodeKind node_kind = kind(node);
    if (!context.collect) {
      visit_statement(node, context);
      return;
    }
    if (is_definition_kind(node_kind)) {
      visit_statement(node, context);
      return;
    }
    std::size_t definitions_before = m_out.definitions.size();
    Context inner = context;
    inner.collect = false;
    if (is_compound_kind(node_kind)) {
      // Definitions under if/try/with/for/while at module or class level may
      // or may not exist at run time.
      inner.conditional = true;
    }
    visit_statement(node, inner);

    Statement statement;
    statement.range = make_range(node);
    statement.conditional = context.conditional;
    statement.kind = classify(node, first, statement.targets);
    statement.text = text_without_definitions(node, definitions_before, context.definition);
    m_out.statements.push_back(std::move(statement));
    m_statement_owner.push_back(context.definition);
  }

  // The statement's text, with the definitions it contains at this level
  // cut out: they are tracked as definitions, and the rest (conditions,
  // imports in a try) must still be seen when it changes.
  std::string text_without_definitions(TSNode node, std::size_t definitions_before, int level_definition) {
    std::uint32_t start = ts_node_start_byte(node);
    std::uint32_t end = ts_node_end_byte(node);
    std::string result;
    std::uint32_t at = start;
    for (std::size_t i = definitions_before; i < m_out.definitions.size(); ++i) {
      const Definition& definition = m_out.definitions[i];
      if (definition.parent != level_definition) {
        continue;
      }
      result.append(m_text.substr(at, definition.range.start_byte - at));
      at = definition.range.end_byte;
    }
    result.append(m_text.substr(at, end - at));
    return result;
  }

  Statement::Kind classify(TSNode node, bool first, std::vector<std::string>& targets) {
    switch (kind(node)) {
      case NodeKind::future_import_statement:
        collect_import_targets(node, targets);
        return Statement::Kind::future_import;
      case NodeKind::import_statement:
      case NodeKind::import_from_statement:
        collect_import_targets(node, targets);
        return Statement::Kind::import;
      case NodeKind::expression_statement: {
        TSNode child = ts_node_named_child(node, 0);
        NodeKind child_kind = kind(child);
        if (child_kind == NodeKind::assignment || child_kind == NodeKind::augmented_assignment) {
          collect_assignment_targets(child, targets);
          return Statement::Kind::assignment;
        }
        if (first && ts_node_named_child_count(node) == 1 &&
            (child_kind == NodeKind::string || child_kind == NodeKind::concatenated_string)) {
          return Statement::Kind::docstring;
        }
        return Statement::Kind::other;
      }
      default:
        return Statement::Kind::other;
    }
  }

  void collect_import_targets(TSNode node, std::vector<std::string>& targets) {
    m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
      if (field_id == m_fields.module_name) {
        return;
      }
      std::string_view bound = imported_name(child);
      if (!bound.empty()) {
        targets.emplace_back(bound);
      } else if (text(child) == "*") {
        targets.emplace_back("*");
      }
    });
  }

  // The name an import binds: `a` for `import a.b`, `c` for `a.b as c`.
  std::string_view imported_name(TSNode node) {
    NodeKind node_kind = kind(node);
    if (node_kind == NodeKind::aliased_import) {
      TSNode alias = field(node, m_fields.alias);
      return ts_node_is_null(alias) ? std::string_view{} : text(alias);
    }
    if (node_kind == NodeKind::dotted_name) {
      TSNode first = ts_node_named_child(node, 0);
      return ts_node_is_null(first) ? std::string_view{} : text(first);
    }
    return {};
  }

  void collect_assignment_targets(TSNode node, std::vector<std::string>& targets) {
    TSNode left = field(node, m_fields.left);
    if (!ts_node_is_null(left)) {
      collect_target_names(left, targets);
    }
    TSNode right = field(node, m_fields.right);
    if (!ts_node_is_null(right) && kind(right) == NodeKind::assignment) {
      collect_assignment_targets(right, targets);
    }
  }

  void collect_target_names(TSNode node, std::vector<std::string>& targets) {
    switch (kind(node)) {
      case NodeKind::pattern_list:
      case NodeKind::tuple_pattern:
      case NodeKind::list_pattern:
      case NodeKind::tuple:
      case NodeKind::list:
      case NodeKind::expression_list:
      case NodeKind::parenthesized_expression:
      case NodeKind::list_splat_pattern:
      case NodeKind::list_splat:
        each_named(node, [&](TSNode child) { collect_target_names(child, targets); });
        return;
      default:
        // identifiers, and `self.x` / `d[k]` as written
        targets.emplace_back(text(node));
        return;
    }
  }

  void visit_statement(TSNode node, const Context& context) {
    const int scope = context.scope;
    switch (kind(node)) {
      case NodeKind::function_definition:
      case NodeKind::class_definition:
        visit_definition(node, node, {}, context);
        return;
      case NodeKind::decorated_definition: {
        std::vector<TSNode> decorators;
        TSNode definition{};
        m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
          if (kind(child) == NodeKind::decorator) {
            decorators.push_back(child);
          } else if (field_id == m_fields.definition) {
            definition = child;
          }
        });
        if (ts_node_is_null(definition)) {
          visit_generic(node, scope);
          return;
        }
        visit_definition(definition, node, decorators, context);
        return;
      }
      case NodeKind::if_statement:
        visit_if(node, context);
        return;
      case NodeKind::for_statement:
      case NodeKind::while_statement:
      case NodeKind::try_statement:
      case NodeKind::with_statement:
      case NodeKind::match_statement:
      case NodeKind::elif_clause:
      case NodeKind::else_clause:
      case NodeKind::except_clause:
      case NodeKind::except_group_clause:
      case NodeKind::finally_clause:
      case NodeKind::with_clause:
      case NodeKind::with_item:
        visit_compound(node, context);
        return;
      case NodeKind::block:
        visit_body(node, context);
        return;
      case NodeKind::global_statement:
      case NodeKind::nonlocal_statement: {
        std::uint32_t flags = kind(node) == NodeKind::global_statement ? k_def_global : k_def_nonlocal;
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (kind(child) == NodeKind::identifier) {
            bind(scope, child, flags);
          }
        });
        return;
      }
      case NodeKind::import_statement:
      case NodeKind::import_from_statement:
      case NodeKind::future_import_statement:
        m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
          if (field_id == m_fields.module_name) {
            return;
          }
          std::string_view bound = imported_name(child);
          if (!bound.empty()) {
            m_scopes.add_symbol(scope, bound, k_def_import);
          }
        });
        return;
      case NodeKind::delete_statement:
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (ts_node_is_named(child)) {
            visit_target(child, scope);
          }
        });
        return;
      case NodeKind::type_alias_statement:
        visit_type_alias(node, scope);
        return;
      case NodeKind::print_statement:
        // `print >> f, x` is a valid Python 3 expression that tree-sitter
        // reads as a Python 2 statement: `print` is still a name read here.
        m_scopes.add_symbol(scope, "print", k_use);
        visit_generic(node, scope);
        return;
      default:
        visit_generic(node, scope);
        return;
    }
  }

  void visit_if(TSNode node, const Context& context) {
    TSNode condition = field(node, m_fields.condition);
    bool main_guard = !ts_node_is_null(condition) && is_main_guard_condition(text(condition));
    m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
      if (!ts_node_is_named(child) || kind(child) == NodeKind::comment) {
        return;
      }
      if (field_id == m_fields.consequence) {
        Context inner = context;
        inner.main_guard = context.main_guard || main_guard;
        visit_body(child, inner);
      } else if (field_id == m_fields.alternative) {
        visit_statement(child, context);
      } else {
        visit_expression(child, context.scope);
      }
    });
  }

  // for/while/try/with/match and their clauses: blocks are bodies, `left`
  // and `as` targets bind, everything else is read.
  void visit_compound(TSNode node, const Context& context) {
    const NodeKind node_kind = kind(node);
    m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
      if (!ts_node_is_named(child) || kind(child) == NodeKind::comment) {
        return;
      }
      NodeKind child_kind = kind(child);
      if (child_kind == NodeKind::block) {
        visit_body(child, context);
      } else if (child_kind == NodeKind::case_clause) {
        visit_case_clause(child, context);
      } else if (field_id == m_fields.left && node_kind == NodeKind::for_statement) {
        visit_target(child, context.scope);
      } else if (field_id == m_fields.alias && node_kind == NodeKind::except_clause) {
        visit_target(child, context.scope);
      } else if (child_kind == NodeKind::as_pattern) {
        visit_as_pattern(child, context.scope);
      } else if (child_kind == NodeKind::elif_clause || child_kind == NodeKind::else_clause ||
                 child_kind == NodeKind::except_clause || child_kind == NodeKind::except_group_clause ||
                 child_kind == NodeKind::finally_clause || child_kind == NodeKind::with_clause ||
                 child_kind == NodeKind::with_item) {
        visit_statement(child, context);
      } else {
        visit_expression(child, context.scope);
      }
    });
  }

  void visit_as_pattern(TSNode node, int scope) {
    m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
      if (!ts_node_is_named(child)) {
        return;
      }
      if (field_id == m_fields.alias) {
        visit_target(child, scope);
      } else {
        visit_expression(child, scope);
      }
    });
  }

  void visit_case_clause(TSNode node, const Context& context) {
    m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
      if (!ts_node_is_named(child) || kind(child) == NodeKind::comment) {
        return;
      }
      if (field_id == m_fields.consequence || kind(child) == NodeKind::block) {
        visit_body(child, context);
      } else if (field_id == m_fields.guard) {
        visit_expression(child, context.scope);
      } else {
        visit_pattern(child, context.scope);
      }
    });
  }

  void visit_pattern(TSNode node, int scope) {
    switch (kind(node)) {
      case NodeKind::identifier:
        capture(node, scope);
        return;
      case NodeKind::dotted_name:
        // `case x:` captures, `case Color.RED:` reads Color.
        if (ts_node_named_child_count(node) == 1) {
          capture(ts_node_named_child(node, 0), scope);
        } else {
          use(scope, ts_node_named_child(node, 0));
        }
        return;
      case NodeKind::splat_pattern:
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (kind(child) == NodeKind::identifier) {
            capture(child, scope);
          }
        });
        return;
      case NodeKind::class_pattern: {
        bool first = true;
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (!ts_node_is_named(child)) {
            return;
          }
          if (first && kind(child) == NodeKind::dotted_name) {
            use(scope, ts_node_named_child(child, 0));
          } else {
            visit_pattern(child, scope);
          }
          first = false;
        });
        return;
      }
      case NodeKind::keyword_pattern: {
        bool first = true;
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (!ts_node_is_named(child)) {
            return;
          }
          if (!first) {
            visit_pattern(child, scope);
          }
          first = false;
        });
        return;
      }
      case NodeKind::dict_pattern:
        m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
          if (!ts_node_is_named(child)) {
            return;
          }
          if (field_id == m_fields.key) {
            if (kind(child) == NodeKind::dotted_name) {
              use(scope, ts_node_named_child(child, 0));
            } else {
              visit_pattern(child, scope);
            }
          } else {
            visit_pattern(child, scope);
          }
        });
        return;
      case NodeKind::as_pattern:
        m_walker.each(node, [&](TSNode child, TSFieldId field_id) {
          if (!ts_node_is_named(child)) {
            return;
          }
          if (field_id == m_fields.alias) {
            if (kind(child) == NodeKind::identifier) {
              capture(child, scope);
            } else {
              visit_pattern(child, scope);
            }
          } else {
            visit_pattern(child, scope);
          }
        });
        return;
      case NodeKind::as_pattern_target:
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (kind(child) == NodeKind::identifier) {
            capture(child, scope);
          }
        });
        return;
      case NodeKind::string:
      case NodeKind::concatenated_string:
        return;
      default:
        each_named(node, [&](TSNode child) { visit_pattern(child, scope); });
        return;
    }
  }

  void capture(TSNode identifier, int scope) {
    if (text(identifier) != "_") {
      bind(scope, identifier);
    }
  }

  // ---- definitions ----

  void visit_definition(TSNode node, TSNode range_node, const std::vector<TSNode>& decorators, const Context& context) {
    const int scope = context.scope;
    const bool is_class = kind(node) == NodeKind::class_definition;
    Definition definition;
    TSNode name = field(node, m_fields.name);
    definition.name = ts_node_is_null(name) ? std::string{} : std::string(text(name));
    definition.range = make_range(range_node);
    definition.def_line = ts_node_start_point(node).row + 1;
    definition.def_byte = ts_node_start_byte(node);
    TSPoint start = ts_node_start_point(range_node);
    // A UTF-8 byte-order mark is not indentation: CPython drops it before the tokenizer.
    definition.indent =
        start.row == 0 && m_text.starts_with("\xEF\xBB\xBF") ? start.column - std::min(start.column, 3U) : start.column;
    definition.conditional = context.conditional;
    definition.in_main_guard = context.main_guard;
    definition.parent = context.definition;

    // Decorators, defaults, bases and (without type parameters) annotations
    // are evaluated in the enclosing scope.
    for (TSNode decorator : decorators) {
      TSNode expression = ts_node_named_child(decorator, 0);
      if (!ts_node_is_null(expression)) {
        definition.decorators.emplace_back(text(expression));
        visit_expression(expression, scope);
      }
    }
    if (!ts_node_is_null(name)) {
      bind(scope, name);
    }
    int outer = scope;
    TSNode type_parameters = field(node, m_fields.type_parameters);
    if (!ts_node_is_null(type_parameters)) {
      std::string_view private_name = is_class && !ts_node_is_null(name) ? text(name) : m_scopes[scope].private_name;
      outer = m_scopes.add(ScopeType::type_params, scope, private_name);
      visit_type_parameter_declarations(type_parameters, outer);
    }

    TSNode body = field(node, m_fields.body);
    int inner = 0;
    if (is_class) {
      definition.kind = DefinitionKind::klass;
      TSNode superclasses = field(node, m_fields.superclasses);
      if (!ts_node_is_null(superclasses)) {
        std::string_view bases = text(superclasses);
        if (bases.size() >= 2 && bases.front() == '(' && bases.back() == ')') {
          bases = bases.substr(1, bases.size() - 2);
        }
        definition.bases_text = std::string(bases);
        visit_expression(superclasses, outer);
      }
      inner = m_scopes.add(ScopeType::klass, outer, ts_node_is_null(name) ? std::string_view{} : text(name));
      if (outer != scope) {
        // A generic class reads its parameters through the hidden
        // `.type_params` cell of its type-parameter scope (symtable.c).
        m_scopes.add_symbol(outer, ".type_params", k_def_local);
        m_scopes.add_symbol(outer, ".generic_base", k_def_local);
        m_scopes.add_symbol(inner, "__type_params__", k_def_local);
        m_scopes.add_symbol(inner, ".type_params", k_use);
      }
    } else {
      TSNode first = ts_node_child(node, 0);
      definition.is_coroutine = !ts_node_is_named(first) && text(first) == "async";
      definition.kind = function_kind(definition, m_scopes[scope].type == ScopeType::klass);
      TSNode parameters = field(node, m_fields.parameters);
      inner = m_scopes.add(ScopeType::function, outer, m_scopes[scope].private_name);
      if (!ts_node_is_null(parameters)) {
        visit_parameters(parameters, scope, outer, inner, &definition.parameters);
      }
      TSNode return_type = field(node, m_fields.return_type);
      if (!ts_node_is_null(return_type)) {
        visit_expression(return_type, outer);
      }
    }
    if (!ts_node_is_null(body)) {
      definition.body_byte = ts_node_start_byte(body);
      // The block often starts at its first statement, so "still at the
      // block's start" cannot tell whether the first statement was seen.
      bool found_first_statement = false;
      m_walker.each(body, [&](TSNode child, TSFieldId) {
        if (!found_first_statement && ts_node_is_named(child) && kind(child) != NodeKind::comment) {
          definition.body_byte = ts_node_start_byte(child);
          found_first_statement = true;
        }
      });
    }

    const int index = static_cast<int>(m_out.definitions.size());
    m_scopes[inner].definition = index;
    m_out.definitions.push_back(std::move(definition));
    m_definition_scope.push_back(inner);

    if (!ts_node_is_null(body)) {
      Context body_context;
      body_context.scope = inner;
      body_context.definition = index;
      body_context.in_function = context.in_function || !is_class;
      body_context.collect = is_class && !context.in_function;
      body_context.conditional = context.conditional;
      body_context.main_guard = context.main_guard;
      visit_body(body, body_context);
    }
    m_out.definitions[static_cast<std::size_t>(index)].is_generator = !is_class && m_scopes[inner].has_yield;
  }

  DefinitionKind function_kind(const Definition& definition, bool in_class_body) const {
    if (in_class_body) {
      for (const std::string& decorator : definition.decorators) {
        if (decorator == "staticmethod") {
          return DefinitionKind::static_method;
        }
        if (decorator == "classmethod") {
          return DefinitionKind::class_method;
        }
        if (decorator == "property" || decorator == "cached_property" || decorator == "functools.cached_property" ||
            decorator.ends_with(".setter") || decorator.ends_with(".getter") || decorator.ends_with(".deleter")) {
          return DefinitionKind::property;
        }
      }
    }
    // The header promises async_function for `async def` at any level; a
    // decorator above still wins because it changes how the object is bound.
    if (definition.is_coroutine) {
      return DefinitionKind::async_function;
    }
    return in_class_body ? DefinitionKind::method : DefinitionKind::function;
  }

  // Parameter names bind in the function; defaults are read in `enclosing`,
  // annotations in `annotations` (the type-parameter scope when there is one).
  void visit_parameters(TSNode parameters, int enclosing, int annotations, int function, std::vector<Parameter>* out) {
    bool keyword_only = false;
    m_walker.each(parameters, [&](TSNode child, TSFieldId) {
      if (!ts_node_is_named(child) || kind(child) == NodeKind::comment) {
        return;
      }
      Parameter parameter;
      parameter.kind = keyword_only ? Parameter::Kind::keyword_only : Parameter::Kind::positional;
      TSNode name_node{};
      switch (kind(child)) {
        case NodeKind::identifier:
          name_node = child;
          break;
        case NodeKind::list_splat_pattern:
        case NodeKind::dictionary_splat_pattern:
        case NodeKind::typed_parameter: {
          NodeKind splat = kind(child);
          TSNode type = field(child, m_fields.type);
          m_walker.each(child, [&](TSNode part, TSFieldId field_id) {
            if (field_id == m_fields.type || !ts_node_is_named(part)) {
              return;
            }
            NodeKind part_kind = kind(part);
            if (part_kind == NodeKind::identifier) {
              name_node = part;
            } else if (part_kind == NodeKind::list_splat_pattern || part_kind == NodeKind::dictionary_splat_pattern) {
              splat = part_kind;
              name_node = ts_node_named_child(part, 0);
            }
          });
          if (splat == NodeKind::list_splat_pattern) {
            parameter.kind = Parameter::Kind::var_positional;
            keyword_only = true;
          } else if (splat == NodeKind::dictionary_splat_pattern) {
            parameter.kind = Parameter::Kind::var_keyword;
          }
          if (!ts_node_is_null(type)) {
            parameter.annotation_text = std::string(text(type));
            visit_expression(type, annotations);
          }
          break;
        }
        case NodeKind::default_parameter:
        case NodeKind::typed_default_parameter: {
          name_node = field(child, m_fields.name);
          TSNode value = field(child, m_fields.value);
          TSNode type = field(child, m_fields.type);
          if (!ts_node_is_null(value)) {
            parameter.default_text = std::string(text(value));
            visit_expression(value, enclosing);
          }
          if (!ts_node_is_null(type)) {
            parameter.annotation_text = std::string(text(type));
            visit_expression(type, annotations);
          }
          break;
        }
        case NodeKind::positional_separator:
          if (out != nullptr) {
            for (Parameter& earlier : *out) {
              earlier.kind = Parameter::Kind::positional_only;
            }
          }
          return;
        case NodeKind::keyword_separator:
          keyword_only = true;
          return;
        default:
          // Python 2 tuple parameters and error recovery: bind what is there.
          visit_target(child, function, k_def_param);
          return;
      }
      if (ts_node_is_null(name_node)) {
        return;
      }
      if (kind(name_node) == NodeKind::identifier) {
        bind(function, name_node, k_def_param);
      } else {
        visit_target(name_node, function, k_def_param);
      }
      if (out != nullptr) {
        parameter.name = std::string(text(name_node));
        out->push_back(std::move(parameter));
      }
    });
  }

  // `[T: int, *Ts, **P]` in a def/class/type statement: names bind in the
  // type-parameter scope, bounds are read there.
  void visit_type_parameter_declarations(TSNode node, int scope) {
    each_named(node, [&](TSNode child) { visit_type_parameter_declaration(child, scope); });
  }

  void visit_type_parameter_declaration(TSNode node, int scope) {
    switch (kind(node)) {
      case NodeKind::identifier:
        bind(scope, node);
        return;
      case NodeKind::type:
      case NodeKind::splat_type:
        if (ts_node_named_child_count(node) > 0) {
          visit_type_parameter_declaration(ts_node_named_child(node, 0), scope);
        }
        return;
      case NodeKind::constrained_type: {
        bool first = true;
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (!ts_node_is_named(child)) {
            return;
          }
          if (first) {
            visit_type_parameter_declaration(child, scope);
          } else {
            visit_expression(child, scope);
          }
          first = false;
        });
        return;
      }
      default:
        visit_expression(node, scope);
        return;
    }
  }

  void visit_type_alias(TSNode node, int scope) {
    TSNode left = field(node, m_fields.left);
    TSNode right = field(node, m_fields.right);
    int value_parent = scope;
    if (!ts_node_is_null(left)) {
      TSNode target = left;
      if (kind(target) == NodeKind::type && ts_node_named_child_count(target) > 0) {
        target = ts_node_named_child(target, 0);
      }
      if (kind(target) == NodeKind::generic_type) {
        TSNode alias_name = ts_node_named_child(target, 0);
        bind(scope, alias_name);
        value_parent = m_scopes.add(ScopeType::type_params, scope, m_scopes[scope].private_name);
        for (std::uint32_t i = 1; i < ts_node_named_child_count(target); ++i) {
          visit_type_parameter_declarations(ts_node_named_child(target, i), value_parent);
        }
      } else if (kind(target) == NodeKind::identifier) {
        bind(scope, target);
      }
    }
    if (!ts_node_is_null(right)) {
      int value_scope = m_scopes.add(ScopeType::type_alias, value_parent, m_scopes[scope].private_name);
      visit_expression(right, value_scope);
    }
  }

  // ---- expressions ----

  void visit_generic(TSNode node, int scope) {
    each_named(node, [&](TSNode child) { visit_expression(child, scope); });
  }

  void visit_expression(TSNode node, int scope) {
    switch (kind(node)) {
      case NodeKind::identifier:
        use(scope, node);
        return;
      case NodeKind::attribute: {
        TSNode object = field(node, m_fields.object);
        if (!ts_node_is_null(object)) {
          visit_expression(object, scope);
        }
        return;
      }
      case NodeKind::member_type:
        // `a.b` in an annotation reads only `a`.
        if (ts_node_named_child_count(node) > 0) {
          visit_expression(ts_node_named_child(node, 0), scope);
        }
        return;
      case NodeKind::keyword_argument: {
        TSNode value = field(node, m_fields.value);
        if (!ts_node_is_null(value)) {
          visit_expression(value, scope);
        }
        return;
      }
      case NodeKind::string:
        m_walker.each(node, [&](TSNode child, TSFieldId) {
          if (kind(child) == NodeKind::interpolation) {
            visit_generic(child, scope);
          }
        });
        return;
      case NodeKind::lambda:
        visit_lambda(node, scope);
        return;
      case NodeKind::list_comprehension:
      case NodeKind::set_comprehension:
      case NodeKind::dictionary_comprehension:
      case NodeKind::generator_expression:
        visit_comprehension(node, scope);
        return;
      case NodeKind::named_expression:
        visit_named_expression(node, scope);
        return;
      case NodeKind::yield:
        m_scopes[scope].has_yield = true;
        visit_generic(node, scope);
        return;
      case NodeKind::assignment:
      case NodeKind::augmented_assignment:
        visit_assignment(node, scope);
        return;
      case NodeKind::as_pattern:
        visit_as_pattern(node, scope);
        return;
      default:
        visit_generic(node, scope);
        return;
    }
  }

  void visit_assignment(TSNode node, int scope) {
    TSNode left = field(node, m_fields.left);
    TSNode right = field(node, m_fields.right);
    TSNode type = field(node, m_fields.type);
    if (!ts_node_is_null(left)) {
      if (!ts_node_is_null(type) && ts_node_is_null(right) && kind(left) != NodeKind::identifier) {
        // `self.x: int` reads self; `(x): int` without a value binds nothing.
        if (kind(left) != NodeKind::parenthesized_expression) {
          visit_expression(left, scope);
        }
      } else {
        // A simple annotated name is local even without a value (PEP 526).
        visit_target(left, scope);
      }
    }
    if (!ts_node_is_null(type)) {
      // symtable reads annotations even where they are never evaluated.
      visit_expression(type, scope);
    }
    if (!ts_node_is_null(right)) {
      visit_expression(right, scope);
    }
  }

  void visit_target(TSNode node, int scope, std::uint32_t flags = k_def_local) {
    switch (kind(node)) {
      case NodeKind::identifier:
        bind(scope, node, flags);
        return;
      case NodeKind::pattern_list:
      case NodeKind::tuple_pattern:
      case NodeKind::list_pattern:
      case NodeKind::tuple:
      case NodeKind::list:
      case NodeKind::expression_list:
      case NodeKind::parenthesized_expression:
      case NodeKind::list_splat_pattern:
      case NodeKind::list_splat:
      case NodeKind::as_pattern_target:
        each_named(node, [&](TSNode child) { visit_target(child, scope, flags); });
        return;
      default:
        visit_expression(node, scope);
        return;
    }
  }

  void visit_lambda(TSNode node, int scope) {
    int lambda_scope = m_scopes.add(ScopeType::lambda, scope, m_scopes[scope].private_name);
    TSNode parameters = field(node, m_fields.parameters);
    if (!ts_node_is_null(parameters)) {
      visit_parameters(parameters, scope, scope, lambda_scope, nullptr);
    }
    TSNode body = field(node, m_fields.body);
    if (!ts_node_is_null(body)) {
      visit_expression(body, lambda_scope);
    }
  }

  // The first iterable is evaluated outside; everything else runs in the
  // comprehension's own scope.
  void visit_comprehension(TSNode node, int scope) {
    int inner = m_scopes.add(ScopeType::comprehension, scope, m_scopes[scope].private_name);
    bool first_clause = true;
    m_walker.each(node, [&](TSNode child, TSFieldId) {
      if (!ts_node_is_named(child) || kind(child) == NodeKind::comment) {
        return;
      }
      NodeKind child_kind = kind(child);
      if (child_kind == NodeKind::for_in_clause) {
        bool outside = first_clause;
        first_clause = false;
        m_walker.each(child, [&](TSNode part, TSFieldId field_id) {
          if (!ts_node_is_named(part) || kind(part) == NodeKind::comment) {
            return;
          }
          if (field_id == m_fields.left) {
            visit_target(part, inner);
          } else {
            visit_expression(part, outside ? scope : inner);
          }
        });
      } else {
        visit_expression(child, inner);
      }
    });
  }

  // PEP 572: in a comprehension the target binds in the nearest enclosing
  // function (nonlocal from the comprehension's side) or module (global).
  void visit_named_expression(TSNode node, int scope) {
    TSNode name = field(node, m_fields.name);
    TSNode value = field(node, m_fields.value);
    if (!ts_node_is_null(value)) {
      visit_expression(value, scope);
    }
    if (ts_node_is_null(name)) {
      return;
    }
    if (m_scopes[scope].type != ScopeType::comprehension) {
      bind(scope, name);
      return;
    }
    int target = scope;
    while (target >= 0 && m_scopes[target].type == ScopeType::comprehension) {
      target = m_scopes[target].parent;
    }
    if (target < 0) {
      bind(scope, name);
      return;
    }
    ScopeType target_type = m_scopes[target].type;
    if (target_type == ScopeType::function || target_type == ScopeType::lambda) {
      std::string_view mangled = m_scopes.mangle(m_scopes[target].private_name, text(name));
      auto it = m_scopes[target].symbols.find(mangled);
      bool global = it != m_scopes[target].symbols.end() && (it->second & k_def_global) != 0U;
      bind(scope, name, global ? k_def_global : k_def_nonlocal);
      bind(target, name, k_def_local);
    } else if (target_type == ScopeType::module) {
      bind(scope, name, k_def_global);
      bind(target, name, k_def_global);
    } else {
      // A syntax error in CPython (class body); bind locally to go on.
      bind(scope, name);
    }
  }

  // ---- after the walk ----

  void finish() {
    std::vector<Definition>& definitions = m_out.definitions;
    for (std::size_t i = 0; i < definitions.size(); ++i) {
      Definition& definition = definitions[i];
      int scope = m_definition_scope[i];
      definition.qualname = qualname(definition, scope);
      if (definition.parent >= 0) {
        definition.parent_qualname = definitions[static_cast<std::size_t>(definition.parent)].qualname;
      }
      for (std::string_view name : m_scopes[scope].frees) {
        definition.free_variables.emplace_back(name);
      }
    }
    for (std::size_t i = 0; i < m_out.statements.size(); ++i) {
      int owner = m_statement_owner[i];
      if (owner >= 0) {
        m_out.statements[i].scope_qualname = definitions[static_cast<std::size_t>(owner)].qualname;
      }
    }
  }

  // compiler_set_qualname(): a def's qualname extends its enclosing def's,
  // with ".<locals>" after a function, unless the enclosing scope declared
  // the name global. Type-parameter scopes are see-through.
  std::string qualname(const Definition& definition, int scope) {
    int parent = m_scopes[scope].parent;
    if (parent >= 0 && m_scopes[parent].type == ScopeType::type_params) {
      parent = m_scopes[parent].parent;
    }
    if (parent <= 0 || m_scopes[parent].definition < 0) {
      return definition.name;
    }
    const Scope& parent_scope = m_scopes[parent];
    std::string_view mangled = m_scopes.mangle(parent_scope.private_name, definition.name);
    auto it = parent_scope.symbols.find(mangled);
    if (it != parent_scope.symbols.end() && (it->second & k_def_global) != 0U) {
      return definition.name;
    }
    const std::string& base = m_out.definitions[static_cast<std::size_t>(parent_scope.definition)].qualname;
    if (parent_scope.type == ScopeType::klass) {
      return base + "." + definition.name;
    }
    return base + ".<locals>." + definition.name;
  }

  // ---- syntax errors ----

  bool is_print_chevron(TSNode node) const {
    TSNode first = ts_node_named_child(node, 0);
    return !ts_node_is_null(first) && std::string_view(ts_node_type(first)) == "chevron";
  }

  // print/exec statements are not ERROR nodes: they are only found by
  // looking, so the error walk goes into statements, never into expressions.
  bool subtree_may_have_py2(TSNode node) const {
    NodeKind node_kind = kind(node);
    return node_kind == NodeKind::module || node_kind == NodeKind::block || is_definition_kind(node_kind) ||
           is_compound_kind(node_kind) || node_kind == NodeKind::elif_clause || node_kind == NodeKind::else_clause ||
           node_kind == NodeKind::except_clause || node_kind == NodeKind::except_group_clause ||
           node_kind == NodeKind::finally_clause || node_kind == NodeKind::case_clause;
  }

  std::string excerpt(TSNode node) const {
    std::string_view source = text(node);
    std::size_t cut = std::min<std::size_t>(source.find('\n'), 20);
    std::string out(source.substr(0, std::min(cut, source.size())));
    return out;
  }

  void add_error(TSNode node, std::string message) {
    TSPoint point = ts_node_start_point(node);
    SyntaxError error;
    error.line = point.row + 1;
    error.column = point.column + 1;
    error.message = std::move(message);
    m_out.errors.push_back(std::move(error));
  }

  std::string_view m_text;
  Extraction& m_out;
  const Grammar& m_grammar;
  const Fields& m_fields;
  ChildWalker& m_walker;
  ScopeTable m_scopes;
  std::vector<int> m_definition_scope;  // per definition: its body's scope
  std::vector<int> m_statement_owner;   // per statement: the class it sits in, -1 for module
};

// An error the walk cannot see: a MISSING token that is hidden (a newline,
// an indent), which no cursor visits. Reported at the statement that holds it.
SyntaxError hidden_error(TSNode node) {
  TSPoint point = ts_node_start_point(node);
  return SyntaxError{point.row + 1, point.column + 1, "invalid syntax"};
}

// The same between two top-level statements: tree-sitter puts a missing
// newline there when two statements share a line without a ';'.
SyntaxError module_level_hidden_error(TSNode root, std::string_view text, ChildWalker& walker) {
  SyntaxError error = hidden_error(root);
  bool found = false;
  TSNode previous{};
  walker.each(root, [&](TSNode child, TSFieldId) {
    if (found || !ts_node_is_named(child)) {
      return;
    }
    if (!ts_node_is_null(previous) && ts_node_end_point(previous).column != 0 &&
        ts_node_start_point(child).row == ts_node_end_point(previous).row) {
      std::uint32_t from = ts_node_end_byte(previous);
      if (text.substr(from, ts_node_start_byte(child) - from).find(';') == std::string_view::npos) {
        TSPoint point = ts_node_start_point(child);
        error = SyntaxError{point.row + 1, point.column + 1, "missing newline"};
        found = true;
      }
    }
    previous = child;
  });
  return error;
}

}  // namespace

SourceFile extract_source_file(const TSTree* tree, std::string_view text, const std::string& path) {
  SourceFile file;
  file.path = path;
  file.text = std::string(text);
  TSNode root = ts_tree_root_node(tree);
  ChildWalker walker;
  // Comments, tokens and the module node itself only report syntax errors.
  Extraction module_level;
  Extractor module_extractor(text, module_level, walker);
  module_extractor.report_if_error(root);
  append(file, std::move(module_level), 0, 0);

  bool first = true;
  walker.each(root, [&](TSNode child, TSFieldId field_id) {
    if (module_extractor.is_skipped(child)) {
      Extraction errors;
      Extractor(text, errors, walker).collect_errors(child);
      append(file, std::move(errors), 0, 0);
      return;
    }
    const bool case_clause = module_extractor.is_case_clause(child, field_id);
    const bool is_first = first && !case_clause;
    first = first && case_clause;

    Extraction extraction;
    Extractor(text, extraction, walker).run_top_level(child, is_first);
    if (extraction.errors.empty() && ts_node_has_error(child)) {
      extraction.errors.push_back(hidden_error(child));
    }
    append(file, std::move(extraction), 0, 0);
  });
  if (file.errors.empty() && ts_node_has_error(root)) {
    file.errors.push_back(module_level_hidden_error(root, text, walker));
  }
  // What CPython's tokenizer refuses before its grammar sees anything.
  for (auto error : {find_coding_error(text), find_tab_error(text)}) {
    if (error) {
      auto later = std::find_if(file.errors.begin(), file.errors.end(),
                                [&](const SyntaxError& other) { return other.line > error->line; });
      file.errors.insert(later, std::move(*error));
    }
  }
  return file;
}

}  // namespace pyhot::parser
