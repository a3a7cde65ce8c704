#include "patch/instrumentation.hpp"

#include <algorithm>
#include <map>

#include "patch/compilation_unit.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

using parser::Definition;
using parser::SourceFile;

namespace {

std::string leading_whitespace(std::string_view line) {
  return std::string(line.substr(0, line.find_first_not_of(" \t")));
}

// The function whose unit carries a site: its outermost enclosing function
// (methods count as outermost: only classes are above them), or itself.
const Definition& outermost_function(const SourceFile& file, const Definition& def) {
  const Definition* outer = &def;
  for (int parent = def.parent; parent >= 0; parent = file.definitions[static_cast<std::size_t>(parent)].parent) {
    const auto& candidate = file.definitions[static_cast<std::size_t>(parent)];
    if (candidate.kind != parser::DefinitionKind::klass) {
      outer = &candidate;
    }
  }
  return *outer;
}

// Where a probe goes: before the body's first line, or (a body on the
// header's line) split off it at `column`.
struct Insertion {
  std::uint32_t line = 0;
  std::size_t column = 0;  // 0: the body starts its own line
  std::string indent;      // of the probe statement
  int probe = 0;
};

std::string reason_not_probed(const Definition& def, std::string_view def_line_text, std::string_view body_line_text,
                              bool one_line, bool suspending) {
  if (!suspending && (def.is_generator || def.is_coroutine)) {
    return def.is_coroutine ? "a coroutine (not yet profiled)" : "a generator (not yet profiled)";
  }
  std::string outer = leading_whitespace(def_line_text);
  std::string inner = one_line ? outer + "  " : leading_whitespace(body_line_text);
  if (outer.find('\t') != std::string::npos || inner.find('\t') != std::string::npos) {
    return "indented with tabs";
  }
  if (inner.size() < outer.size() + 2) {
    return "its body is indented by one column";
  }
  return {};
}

loader::UnitRequest unit_request(const CompilationUnit& plain) {
  loader::UnitRequest unit = {plain.qualname,   plain.name, parser::to_string(plain.kind),
                              "swap",           {},         plain.source,
                              plain.first_line, 0,          {},
                              plain.accessor,   false,      plain.duplicate};
  for (const auto& scope : plain.scopes) {
    unit.scopes.push_back({scope.name, scope.is_class});
  }
  return unit;
}

}  // namespace

const Definition* function_at_line(const SourceFile& file, std::uint32_t line) {
  const Definition* found = nullptr;
  for (const auto& def : file.definitions) {
    if (def.kind != parser::DefinitionKind::klass && def.def_line < line && line <= def.range.end_line &&
        (found == nullptr || def.def_line > found->def_line)) {
      found = &def;
    }
  }
  return found;
}

loader::InstrumentedUnitRequest statement_probe_unit(const SourceFile& file, const Definition& def) {
  CompilationUnit plain = UnitBuilder(file).definition(outermost_function(file, def), differ::Verdict::swap);
  loader::InstrumentedUnitRequest request;
  request.unit = unit_request(plain);
  request.instrumented = plain.source;
  auto count = util::split_lines(plain.source).size();
  for (std::size_t i = 0; i < count; ++i) {
    request.lines.push_back(plain.first_line + static_cast<std::uint32_t>(i));
  }
  return request;
}

std::string probe_constant(const std::string& marker, int probe) { return marker + ":" + std::to_string(probe); }

std::uint32_t line_of_byte(const SourceFile& file, std::uint32_t byte) {
  auto end = file.text.begin() + std::min<std::size_t>(byte, file.text.size());
  return static_cast<std::uint32_t>(std::count(file.text.begin(), end, '\n')) + 1;
}

InstrumentedUnits instrument_units(const SourceFile& file, const std::vector<ProbeSite>& sites,
                                   const std::string& marker, bool suspending) {
  InstrumentedUnits out;
  auto file_lines = util::split_lines(file.text);
  auto text_of = [&](std::uint32_t line) {
    return line >= 1 && line <= file_lines.size() ? file_lines[line - 1] : std::string_view{};
  };
  // Sites grouped by the function whose unit carries them, in file order.
  std::map<const Definition*, std::vector<Insertion>> by_unit;
  for (const auto& site : sites) {
    const Definition& def = *site.definition;
    std::uint32_t body_line = line_of_byte(file, def.body_byte);
    std::string_view body_text = text_of(body_line);
    std::size_t line_start = def.body_byte - static_cast<std::size_t>(body_text.data() - file.text.data());
    bool one_line = !util::trim(body_text.substr(0, line_start)).empty();
    auto reason = reason_not_probed(def, text_of(def.def_line), body_text, one_line, suspending);
    if (!reason.empty()) {
      out.skipped.push_back({&def, reason});
      continue;
    }
    Insertion insertion{body_line, one_line ? line_start : 0, leading_whitespace(text_of(def.def_line)) + " ",
                        site.probe};
    by_unit[&outermost_function(file, def)].push_back(std::move(insertion));
  }
  UnitBuilder builder(file);
  for (auto& [outer, insertions] : by_unit) {
    CompilationUnit plain = builder.definition(*outer, differ::Verdict::swap);
    loader::InstrumentedUnitRequest request;
    request.unit = unit_request(plain);
    std::map<std::uint32_t, const Insertion*> at_line;
    for (const auto& insertion : insertions) {
      at_line[insertion.line] = &insertion;
    }
    auto lines = util::split_lines(plain.source);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      auto real = plain.first_line + static_cast<std::uint32_t>(i);
      std::string_view text = lines[i];
      auto found = at_line.find(real);
      auto emit = [&](std::string_view line) {
        request.instrumented.append(line);
        request.instrumented += '\n';
        request.lines.push_back(real);
      };
      if (found == at_line.end()) {
        emit(text);
        continue;
      }
      const Insertion& insertion = *found->second;
      std::string probe = insertion.indent + "with '" + probe_constant(marker, insertion.probe) + "':";
      if (insertion.column == 0) {
        emit(probe);
        emit(text);
      } else {
        emit(text.substr(0, insertion.column));
        emit(probe);
        emit(insertion.indent + " " + std::string(text.substr(insertion.column)));
      }
    }
    out.units.push_back(std::move(request));
  }
  return out;
}

}  // namespace pyhot::patch
