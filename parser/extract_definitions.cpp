// Extractor: definitions, parameters, type parameters and expressions.
#include "parser/extractor.hpp"

namespace pyhot::parser {

void Extractor::visit_definition(TSNode node, TSNode range_node, const std::vector<TSNode>& decorators,
                                 const Context& context) {
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

DefinitionKind Extractor::function_kind(const Definition& definition, bool in_class_body) const {
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

void Extractor::visit_parameters(TSNode parameters, int enclosing, int annotations, int function,
                                 std::vector<Parameter>* out) {
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

void Extractor::visit_type_parameter_declaration(TSNode node, int scope) {
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

void Extractor::visit_type_alias(TSNode node, int scope) {
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

void Extractor::visit_expression(TSNode node, int scope) {
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
      each_of_kind(node, NodeKind::interpolation, [&](TSNode child) { visit_generic(child, scope); });
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

void Extractor::visit_assignment(TSNode node, int scope) {
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

void Extractor::visit_target(TSNode node, int scope, std::uint32_t flags) {
  if (kind(node) == NodeKind::identifier) {
    bind(scope, node, flags);
  } else if (is_target_sequence(kind(node)) || kind(node) == NodeKind::as_pattern_target) {
    each_named(node, [&](TSNode child) { visit_target(child, scope, flags); });
  } else {
    visit_expression(node, scope);
  }
}

void Extractor::visit_lambda(TSNode node, int scope) {
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

void Extractor::visit_comprehension(TSNode node, int scope) {
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

void Extractor::visit_named_expression(TSNode node, int scope) {
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

}  // namespace pyhot::parser
