// Extractor: module-, class- and block-level statements, and match patterns.
#include "parser/extractor.hpp"

#include <algorithm>

namespace pyhot::parser {

void Extractor::visit_body(TSNode body, const Context& context) {
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

void Extractor::visit_statement_at_level(TSNode node, const Context& context, bool first) {
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
  if (statement.kind == Statement::Kind::other && context.definition < 0 && !context.conditional &&
      (node_kind == NodeKind::if_statement || node_kind == NodeKind::try_statement)) {
    std::vector<std::string> bound;
    if (binds_only(node, bound) && !bound.empty()) {
      statement.binding_block = true;
      for (auto& name : bound) {
        if (std::find(statement.targets.begin(), statement.targets.end(), name) == statement.targets.end()) {
          statement.targets.push_back(std::move(name));
        }
      }
    }
  }
  statement.text = text_without_definitions(node, definitions_before, context.definition);
  m_out.statements.push_back(std::move(statement));
  m_statement_owner.push_back(context.definition);
}

std::string Extractor::text_without_definitions(TSNode node, std::size_t definitions_before, int level_definition) {
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

Statement::Kind Extractor::classify(TSNode node, bool first, std::vector<std::string>& targets) {
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

// A module-level `if`/`try` block whose every statement, in every branch,
// is an import, an assignment, a docstring, `pass` or such a block again
// (`try: from _x import f` / `except ImportError: f = None`): run again, it
// binds names as a fresh import would and calls nothing but what its
// conditions and values call. Collects the names it binds. A block holding
// a definition is not one: its definitions are patched by units of their
// own, which would race the block for the same names (`try: from _x import
// f` / `except ImportError: def f(): ...`).
bool Extractor::binds_only(TSNode node, std::vector<std::string>& targets) {
  NodeKind node_kind = kind(node);
  if (node_kind == NodeKind::if_statement) {
    TSNode condition = field(node, m_fields.condition);
    if (!ts_node_is_null(condition) && is_main_guard_condition(text(condition))) {
      return false;  // ran once at start-up: judged as the main guard
    }
  }
  bool pure = true;
  m_walker.each(node, [&](TSNode child, TSFieldId) {
    if (!pure || !ts_node_is_named(child) || kind(child) == NodeKind::comment) {
      return;
    }
    switch (kind(child)) {
      case NodeKind::block:
        each_named(child, [&](TSNode inner) { pure = pure && binds_only_statement(inner, targets); });
        return;
      case NodeKind::elif_clause:
      case NodeKind::else_clause:
      case NodeKind::except_clause:
      case NodeKind::except_group_clause:
      case NodeKind::finally_clause:
        pure = binds_only(child, targets);
        return;
      default:
        return;  // a condition, an exception type, an `as` name
    }
  });
  return pure;
}

bool Extractor::binds_only_statement(TSNode node, std::vector<std::string>& targets) {
  switch (kind(node)) {
    case NodeKind::import_statement:
    case NodeKind::import_from_statement:
      collect_import_targets(node, targets);
      return true;
    case NodeKind::expression_statement: {
      TSNode child = ts_node_named_child(node, 0);
      NodeKind child_kind = kind(child);
      if (ts_node_named_child_count(node) != 1) {
        return false;
      }
      if (child_kind == NodeKind::assignment || child_kind == NodeKind::augmented_assignment) {
        collect_assignment_targets(child, targets);
        return true;
      }
      return child_kind == NodeKind::string || child_kind == NodeKind::concatenated_string;
    }
    case NodeKind::if_statement:
    case NodeKind::try_statement:
      return binds_only(node, targets);
    default:
      return std::string_view(ts_node_type(node)) == "pass_statement";
  }
}

void Extractor::collect_import_targets(TSNode node, std::vector<std::string>& targets) {
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

std::string_view Extractor::imported_name(TSNode node) {
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

void Extractor::collect_assignment_targets(TSNode node, std::vector<std::string>& targets) {
  TSNode left = field(node, m_fields.left);
  if (!ts_node_is_null(left)) {
    collect_target_names(left, targets);
  }
  TSNode right = field(node, m_fields.right);
  if (!ts_node_is_null(right) && kind(right) == NodeKind::assignment) {
    collect_assignment_targets(right, targets);
  }
}

void Extractor::collect_target_names(TSNode node, std::vector<std::string>& targets) {
  if (is_target_sequence(kind(node))) {
    each_named(node, [&](TSNode child) { collect_target_names(child, targets); });
  } else {
    // identifiers, and `self.x` / `d[k]` as written
    targets.emplace_back(text(node));
  }
}

void Extractor::visit_statement(TSNode node, const Context& context) {
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
      each_of_kind(node, NodeKind::identifier, [&](TSNode child) { bind(scope, child, flags); });
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

void Extractor::visit_if(TSNode node, const Context& context) {
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

void Extractor::visit_compound(TSNode node, const Context& context) {
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

void Extractor::visit_as_pattern(TSNode node, int scope) {
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

void Extractor::visit_case_clause(TSNode node, const Context& context) {
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

void Extractor::visit_pattern(TSNode node, int scope) {
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
      each_of_kind(node, NodeKind::identifier, [&](TSNode child) { capture(child, scope); });
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
      each_of_kind(node, NodeKind::identifier, [&](TSNode child) { capture(child, scope); });
      return;
    case NodeKind::string:
    case NodeKind::concatenated_string:
      return;
    default:
      each_named(node, [&](TSNode child) { visit_pattern(child, scope); });
      return;
  }
}

}  // namespace pyhot::parser
