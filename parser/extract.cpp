#include "parser/extract.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parser/extractor.hpp"
#include "parser/source_checks.hpp"

namespace pyhot::parser {

void Extractor::run_top_level(TSNode node, bool first) {
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

void Extractor::report_if_error(TSNode node) {
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

void Extractor::collect_errors(TSNode node) {
  report_if_error(node);
  if (ts_node_has_error(node) || subtree_may_have_py2(node)) {
    m_walker.each(node, [&](TSNode child, TSFieldId) { collect_errors(child); });
  }
}

void Extractor::use(int scope, TSNode identifier) {
  std::string_view name = text(identifier);
  m_scopes.add_symbol(scope, name, k_use);
  // Zero-argument super() needs the __class__ cell (symtable.c does the same).
  if (name == "super" && is_function_block(scope)) {
    m_scopes.add_symbol(scope, "__class__", k_use);
  }
}

void Extractor::finish() {
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

std::string Extractor::qualname(const Definition& definition, int scope) {
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

bool Extractor::subtree_may_have_py2(TSNode node) const {
  NodeKind node_kind = kind(node);
  return node_kind == NodeKind::module || node_kind == NodeKind::block || is_definition_kind(node_kind) ||
         is_compound_kind(node_kind) || node_kind == NodeKind::elif_clause || node_kind == NodeKind::else_clause ||
         node_kind == NodeKind::except_clause || node_kind == NodeKind::except_group_clause ||
         node_kind == NodeKind::finally_clause || node_kind == NodeKind::case_clause;
}

std::string Extractor::excerpt(TSNode node) const {
  std::string_view source = text(node);
  std::size_t cut = std::min<std::size_t>(source.find('\n'), 20);
  std::string out(source.substr(0, std::min(cut, source.size())));
  return out;
}

void Extractor::add_error(TSNode node, std::string message) {
  TSPoint point = ts_node_start_point(node);
  SyntaxError error;
  error.line = point.row + 1;
  error.column = point.column + 1;
  error.message = std::move(message);
  m_out.errors.push_back(std::move(error));
}

namespace {

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
  // Too deep an indentation makes the grammar's scanner misparse (its errors
  // name some line before, not the cause), and CPython's tokenizer refuses it
  // before its grammar runs: it replaces whatever the grammar reported.
  if (auto deep = find_indentation_error(text)) {
    file.errors.assign(1, std::move(*deep));
  }
  // What CPython's tokenizer refuses before its grammar sees anything.
  for (auto error : {find_coding_error(text), find_encoding_error(text), find_tab_error(text)}) {
    if (error) {
      auto later = std::find_if(file.errors.begin(), file.errors.end(),
                                [&](const SyntaxError& other) { return other.line > error->line; });
      file.errors.insert(later, std::move(*error));
    }
  }
  return file;
}

}  // namespace pyhot::parser
