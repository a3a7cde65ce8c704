// Field-by-field comparison of two SourceFiles, for the benchmarks' --verify:
// an incremental re-parse must give exactly what a fresh parse gives.
#pragma once

#include <sstream>
#include <string>

#include "parser/source_file.hpp"

namespace pyhot::bench {

inline bool same_range(const parser::Range& a, const parser::Range& b) {
  return a.start_byte == b.start_byte && a.end_byte == b.end_byte && a.start_line == b.start_line &&
         a.end_line == b.end_line;
}

inline bool same_parameters(const std::vector<parser::Parameter>& a, const std::vector<parser::Parameter>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].kind != b[i].kind || a[i].default_text != b[i].default_text ||
        a[i].annotation_text != b[i].annotation_text) {
      return false;
    }
  }
  return true;
}

// "" when equal, else what differs first.
inline std::string first_difference(const parser::SourceFile& a, const parser::SourceFile& b) {
  std::ostringstream out;
  if (a.text != b.text) {
    return "text";
  }
  if (a.definitions.size() != b.definitions.size()) {
    out << "definition count " << a.definitions.size() << " vs " << b.definitions.size();
    return out.str();
  }
  for (std::size_t i = 0; i < a.definitions.size(); ++i) {
    const parser::Definition& x = a.definitions[i];
    const parser::Definition& y = b.definitions[i];
    bool same = x.name == y.name && x.qualname == y.qualname && x.parent_qualname == y.parent_qualname &&
                x.kind == y.kind && x.decorators == y.decorators && same_parameters(x.parameters, y.parameters) &&
                x.bases_text == y.bases_text && same_range(x.range, y.range) && x.def_line == y.def_line &&
                x.def_byte == y.def_byte && x.body_byte == y.body_byte && x.indent == y.indent &&
                x.is_generator == y.is_generator && x.is_coroutine == y.is_coroutine &&
                x.conditional == y.conditional && x.in_main_guard == y.in_main_guard &&
                x.free_variables == y.free_variables && x.parent == y.parent;
    if (!same) {
      out << "definition " << i << " (" << x.qualname << " line " << x.def_line << " vs " << y.qualname << " line "
          << y.def_line << ")";
      return out.str();
    }
  }
  if (a.statements.size() != b.statements.size()) {
    out << "statement count " << a.statements.size() << " vs " << b.statements.size();
    return out.str();
  }
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    const parser::Statement& x = a.statements[i];
    const parser::Statement& y = b.statements[i];
    if (x.kind != y.kind || !same_range(x.range, y.range) || x.text != y.text || x.scope_qualname != y.scope_qualname ||
        x.targets != y.targets || x.conditional != y.conditional) {
      out << "statement " << i << " (line " << x.range.start_line << " vs " << y.range.start_line << ")";
      return out.str();
    }
  }
  if (a.errors.size() != b.errors.size()) {
    out << "error count " << a.errors.size() << " vs " << b.errors.size();
    return out.str();
  }
  for (std::size_t i = 0; i < a.errors.size(); ++i) {
    if (a.errors[i].line != b.errors[i].line || a.errors[i].column != b.errors[i].column ||
        a.errors[i].message != b.errors[i].message) {
      out << "error " << i << " (line " << a.errors[i].line << " vs " << b.errors[i].line << ")";
      return out.str();
    }
  }
  return {};
}

}  // namespace pyhot::bench
