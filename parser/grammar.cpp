#include "parser/grammar.hpp"

#include <cstring>
#include <string>
#include <unordered_map>

namespace pyhot::parser {

namespace {

const std::unordered_map<std::string, NodeKind>& kinds_by_name() {
  static const std::unordered_map<std::string, NodeKind> k_kinds = {
      {"ERROR", NodeKind::error},
      {"module", NodeKind::module},
      {"block", NodeKind::block},
      {"comment", NodeKind::comment},
      {"identifier", NodeKind::identifier},
      {"function_definition", NodeKind::function_definition},
      {"class_definition", NodeKind::class_definition},
      {"decorated_definition", NodeKind::decorated_definition},
      {"decorator", NodeKind::decorator},
      {"expression_statement", NodeKind::expression_statement},
      {"assignment", NodeKind::assignment},
      {"augmented_assignment", NodeKind::augmented_assignment},
      {"import_statement", NodeKind::import_statement},
      {"import_from_statement", NodeKind::import_from_statement},
      {"future_import_statement", NodeKind::future_import_statement},
      {"aliased_import", NodeKind::aliased_import},
      {"dotted_name", NodeKind::dotted_name},
      {"relative_import", NodeKind::relative_import},
      {"global_statement", NodeKind::global_statement},
      {"nonlocal_statement", NodeKind::nonlocal_statement},
      {"delete_statement", NodeKind::delete_statement},
      {"if_statement", NodeKind::if_statement},
      {"elif_clause", NodeKind::elif_clause},
      {"else_clause", NodeKind::else_clause},
      {"for_statement", NodeKind::for_statement},
      {"while_statement", NodeKind::while_statement},
      {"try_statement", NodeKind::try_statement},
      {"except_clause", NodeKind::except_clause},
      {"except_group_clause", NodeKind::except_group_clause},
      {"finally_clause", NodeKind::finally_clause},
      {"with_statement", NodeKind::with_statement},
      {"with_clause", NodeKind::with_clause},
      {"with_item", NodeKind::with_item},
      {"match_statement", NodeKind::match_statement},
      {"case_clause", NodeKind::case_clause},
      {"type_alias_statement", NodeKind::type_alias_statement},
      {"print_statement", NodeKind::print_statement},
      {"exec_statement", NodeKind::exec_statement},
      {"attribute", NodeKind::attribute},
      {"keyword_argument", NodeKind::keyword_argument},
      {"lambda", NodeKind::lambda},
      {"lambda_parameters", NodeKind::lambda_parameters},
      {"list_comprehension", NodeKind::list_comprehension},
      {"set_comprehension", NodeKind::set_comprehension},
      {"dictionary_comprehension", NodeKind::dictionary_comprehension},
      {"generator_expression", NodeKind::generator_expression},
      {"for_in_clause", NodeKind::for_in_clause},
      {"if_clause", NodeKind::if_clause},
      {"named_expression", NodeKind::named_expression},
      {"yield", NodeKind::yield},
      {"string", NodeKind::string},
      {"concatenated_string", NodeKind::concatenated_string},
      {"interpolation", NodeKind::interpolation},
      {"format_specifier", NodeKind::format_specifier},
      {"format_expression", NodeKind::format_expression},
      {"as_pattern", NodeKind::as_pattern},
      {"as_pattern_target", NodeKind::as_pattern_target},
      {"pattern_list", NodeKind::pattern_list},
      {"tuple_pattern", NodeKind::tuple_pattern},
      {"list_pattern", NodeKind::list_pattern},
      {"tuple", NodeKind::tuple},
      {"list", NodeKind::list},
      {"parenthesized_expression", NodeKind::parenthesized_expression},
      {"expression_list", NodeKind::expression_list},
      {"list_splat", NodeKind::list_splat},
      {"list_splat_pattern", NodeKind::list_splat_pattern},
      {"dictionary_splat_pattern", NodeKind::dictionary_splat_pattern},
      {"subscript", NodeKind::subscript},
      {"parameters", NodeKind::parameters},
      {"typed_parameter", NodeKind::typed_parameter},
      {"default_parameter", NodeKind::default_parameter},
      {"typed_default_parameter", NodeKind::typed_default_parameter},
      {"positional_separator", NodeKind::positional_separator},
      {"keyword_separator", NodeKind::keyword_separator},
      {"type", NodeKind::type},
      {"type_parameter", NodeKind::type_parameter},
      {"generic_type", NodeKind::generic_type},
      {"constrained_type", NodeKind::constrained_type},
      {"splat_type", NodeKind::splat_type},
      {"member_type", NodeKind::member_type},
      {"case_pattern", NodeKind::case_pattern},
      {"class_pattern", NodeKind::class_pattern},
      {"keyword_pattern", NodeKind::keyword_pattern},
      {"splat_pattern", NodeKind::splat_pattern},
      {"dict_pattern", NodeKind::dict_pattern},
  };
  return k_kinds;
}

TSFieldId field(const TSLanguage* language, const char* name) {
  return ts_language_field_id_for_name(language, name, static_cast<std::uint32_t>(std::strlen(name)));
}

}  // namespace

const Grammar& Grammar::get() {
  static const Grammar k_grammar;
  return k_grammar;
}

Grammar::Grammar() : m_language(tree_sitter_python()) {
  std::uint32_t count = ts_language_symbol_count(m_language);
  m_kinds.assign(count, NodeKind::other);
  const auto& by_name = kinds_by_name();
  for (std::uint32_t symbol = 0; symbol < count; ++symbol) {
    // Only named symbols: the anonymous token "type" or "print" must not be
    // mistaken for the node of the same name.
    TSSymbolType symbol_type = ts_language_symbol_type(m_language, static_cast<TSSymbol>(symbol));
    if (symbol_type != TSSymbolTypeRegular) {
      continue;
    }
    auto it = by_name.find(ts_language_symbol_name(m_language, static_cast<TSSymbol>(symbol)));
    if (it != by_name.end()) {
      m_kinds[symbol] = it->second;
    }
  }
  m_fields.name = field(m_language, "name");
  m_fields.body = field(m_language, "body");
  m_fields.parameters = field(m_language, "parameters");
  m_fields.return_type = field(m_language, "return_type");
  m_fields.type_parameters = field(m_language, "type_parameters");
  m_fields.superclasses = field(m_language, "superclasses");
  m_fields.definition = field(m_language, "definition");
  m_fields.value = field(m_language, "value");
  m_fields.alias = field(m_language, "alias");
  m_fields.left = field(m_language, "left");
  m_fields.right = field(m_language, "right");
  m_fields.type = field(m_language, "type");
  m_fields.condition = field(m_language, "condition");
  m_fields.consequence = field(m_language, "consequence");
  m_fields.alternative = field(m_language, "alternative");
  m_fields.subject = field(m_language, "subject");
  m_fields.guard = field(m_language, "guard");
  m_fields.object = field(m_language, "object");
  m_fields.attribute = field(m_language, "attribute");
  m_fields.key = field(m_language, "key");
  m_fields.module_name = field(m_language, "module_name");
  m_fields.format_specifier = field(m_language, "format_specifier");
}

ChildWalker::~ChildWalker() {
  for (TSTreeCursor& cursor : m_cursors) {
    ts_tree_cursor_delete(&cursor);
  }
}

TSTreeCursor* ChildWalker::acquire(TSNode node) {
  if (m_depth == m_cursors.size()) {
    m_cursors.push_back(ts_tree_cursor_new(node));
  } else {
    ts_tree_cursor_reset(&m_cursors[m_depth], node);
  }
  return &m_cursors[m_depth++];
}

}  // namespace pyhot::parser
