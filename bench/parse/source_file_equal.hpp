// Where two SourceFiles differ first, for the benchmarks' --verify: an
// incremental re-parse must give exactly what a fresh parse gives.
#pragma once

#include <sstream>
#include <string>

#include "parser/source_file.hpp"

namespace pyhot::bench {

// "" when equal (every field but the path), else what differs first.
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
    if (x != y) {
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
    if (a.statements[i] != b.statements[i]) {
      out << "statement " << i << " (line " << a.statements[i].range.start_line << " vs "
          << b.statements[i].range.start_line << ")";
      return out.str();
    }
  }
  if (a.errors.size() != b.errors.size()) {
    out << "error count " << a.errors.size() << " vs " << b.errors.size();
    return out.str();
  }
  for (std::size_t i = 0; i < a.errors.size(); ++i) {
    if (a.errors[i] != b.errors[i]) {
      out << "error " << i << " (line " << a.errors[i].line << " vs " << b.errors[i].line << ")";
      return out.str();
    }
  }
  return {};
}

}  // namespace pyhot::bench
