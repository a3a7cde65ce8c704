#include "patch/instrumentation.hpp"

#include <algorithm>
#include <map>

#include "parser/suspensions.hpp"
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
  std::uint32_t end_line = 0;  // the body's last line
  std::size_t column = 0;      // 0: the body starts its own line
  std::string indent;          // of the probe statement
  int probe = 0;
  bool suspends = false;  // a generator or coroutine
  // The body's lines get one space in front (those that do not start
  // inside a string): no indentation fits between the `def` and a body
  // indented with tabs (Python compares it with tabs of 8 and of 1 column)
  // or by one column.
  bool shifts_body = false;
  std::uint32_t def_line = 0;
};

std::string reason_not_probed(const Definition& def, ProbeShape shape) {
  if (shape == ProbeShape::with_statement && (def.is_generator || def.is_coroutine)) {
    return def.is_coroutine ? "a coroutine (its suspensions are not followed)"
                            : "a generator (its suspensions are not followed)";
  }
  return {};
}

// Whether the probe statement cannot go between the def's indentation and
// a body on lines of its own without moving the body.
bool body_needs_shift(std::string_view def_line_text, std::string_view body_line_text) {
  std::string outer = leading_whitespace(def_line_text);
  std::string inner = leading_whitespace(body_line_text);
  return outer.find('\t') != std::string::npos || inner.find('\t') != std::string::npos ||
         inner.size() < outer.size() + 2;
}

// Per line of the text (index 0: line 1), whether it starts inside a
// string literal (a triple-quoted one, or one continued by a backslash):
// such a line is the string's text and never gets a space in front.
std::vector<bool> lines_inside_strings(std::string_view text) {
  std::vector<bool> inside(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 2, false);
  std::size_t line = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '#') {
      i = std::min(text.find('\n', i), text.size());
    } else if (c == '\'' || c == '"') {
      bool triple = text.substr(i, 3) == std::string(3, c);
      std::size_t j = i + (triple ? 3 : 1);
      while (j < text.size()) {
        if (text[j] == '\\' && j + 1 < text.size()) {
          if (text[j + 1] == '\n') {
            inside[++line] = true;
          }
          j += 2;
        } else if (text[j] == '\n') {
          if (!triple) {
            break;  // unterminated: the parser reported it
          }
          inside[++line] = true;
          ++j;
        } else if (text[j] == c && (!triple || text.substr(j, 3) == std::string(3, c))) {
          j += triple ? 3 : 1;
          break;
        } else {
          ++j;
        }
      }
      i = j;
    } else {
      ++i;
    }
  }
  return inside;
}

// Why a body cannot be moved by a space: its statements' lines start some
// with a tab, some with a space (a space in front would change how Python
// compares them).
std::string reason_not_shifted(const std::vector<std::string_view>& file_lines, const std::vector<bool>& in_string,
                               std::uint32_t first, std::uint32_t last) {
  char start = 0;
  for (std::uint32_t line = first; line <= last && line <= file_lines.size(); ++line) {
    std::string_view text = file_lines[line - 1];
    auto code = text.find_first_not_of(" \t");
    if (in_string[line - 1] || code == std::string_view::npos || text[code] == '#' || code == 0) {
      continue;
    }
    if (start != 0 && text[0] != start) {
      return "its body is indented with tabs and spaces";
    }
    start = text[0];
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

namespace {

// Text put into one line of the file: at a column, opening or closing a
// wrap around an expression (closings first at a column, the inner wrap's
// first; openings the outer wrap's first).
struct LineEdit {
  std::size_t column = 0;
  bool close = false;
  int depth = 0;
  std::string text;
};
using LineEdits = std::map<std::uint32_t, std::vector<LineEdit>>;

std::string with_edits(std::string_view text, std::vector<LineEdit> edits) {
  std::stable_sort(edits.begin(), edits.end(), [](const LineEdit& a, const LineEdit& b) {
    if (a.column != b.column) {
      return a.column < b.column;
    }
    if (a.close != b.close) {
      return a.close;
    }
    return a.close ? a.depth > b.depth : a.depth < b.depth;
  });
  std::string out;
  std::size_t done = 0;
  for (const auto& edit : edits) {
    std::size_t column = std::min(edit.column, text.size());
    out.append(text.substr(done, column - done));
    out += edit.text;
    done = column;
  }
  out.append(text.substr(done));
  return out;
}

// A generator's or coroutine's suspensions wrapped in its probe's calls, so
// its run is timed only while it runs: `yield x` becomes
// `P.resumed((yield P.suspended((x))))`, `await x` `(await P.awaiting((x)))`,
// `yield from x` `(yield from P.delegate((x)))`, and the iterable of an
// `async for` / manager of an `async with` `P.aiter((x))` / `P.acontext((x))`.
// Returns why it cannot be, or "".
std::string add_suspension_edits(const SourceFile& file, const Definition& def, const std::string& probe,
                                 LineEdits& edits) {
  auto found = parser::find_suspensions(file.text, def.def_byte);
  if (!found) {
    return found.error().message;
  }
  if (!found->unsupported.empty()) {
    return found->unsupported + " (not yet profiled)";
  }
  auto add = [&](std::uint32_t byte, bool close, int depth, std::string text) {
    std::uint32_t line = line_of_byte(file, byte);
    std::size_t line_start = file.text.rfind('\n', byte == 0 ? 0 : byte - 1);
    line_start = line_start == std::string::npos || byte == 0 ? 0 : line_start + 1;
    edits[line].push_back({byte - line_start, close, depth, std::move(text)});
  };
  using Kind = parser::Suspension::Kind;
  for (const auto& point : found->points) {
    int depth = point.depth;
    switch (point.kind) {
      case Kind::yield:
        add(point.start_byte, false, depth, probe + ".resumed((");
        if (point.operand_start == point.end_byte) {
          add(point.end_byte, true, depth, " " + probe + ".suspended(None)))");
        } else {
          add(point.operand_start, false, depth, probe + ".suspended((");
          add(point.operand_end, true, depth, "))");
          add(point.end_byte, true, depth, "))");
        }
        break;
      case Kind::yield_from:
      case Kind::await:
        add(point.start_byte, false, depth, "(");
        add(point.operand_start, false, depth, probe + (point.kind == Kind::await ? ".awaiting((" : ".delegate(("));
        add(point.operand_end, true, depth, "))");
        add(point.end_byte, true, depth, ")");
        break;
      case Kind::async_for:
      case Kind::async_with:
        add(point.start_byte, false, depth, probe + (point.kind == Kind::async_for ? ".aiter((" : ".acontext(("));
        add(point.end_byte, true, depth, "))");
        break;
    }
  }
  return {};
}

// The lines that go above the body, and (`calls`) below its last line.
struct ProbeLines {
  std::vector<std::string> above;
  std::vector<std::string> below;
};

ProbeLines probe_lines(const Insertion& insertion, const std::string& marker, ProbeShape shape) {
  std::string probe = "'" + probe_constant(marker, insertion.probe) + "'";
  const std::string& indent = insertion.indent;
  if (shape != ProbeShape::calls) {
    return {{indent + "with " + probe + ":"}, {}};
  }
  // A generator's or coroutine's run starts and finishes through the probe
  // slower calls that find the run by its frame.
  const char* enter = insertion.suspends ? ".start()" : ".enter()";
  const char* exit = insertion.suspends ? ".finish()" : ".exit()";
  return {{indent + probe + enter, indent + "try:"},
          {indent + "except " + probe + ".caught:", indent + " " + probe + ".raised()", indent + " raise",
           indent + "finally:", indent + " " + probe + exit}};
}

// The instrumented text and real lines of one unit: `plain` with the probe
// lines of `insertions` and the edits of the lines.
// The spaces in front of a line: one per moved body it is in, unless it
// starts inside a string.
std::string shift_of(const std::vector<Insertion>& insertions, const std::vector<bool>& in_string, std::uint32_t line) {
  std::string out;
  if (line >= 1 && line <= in_string.size() && in_string[line - 1]) {
    return out;
  }
  for (const auto& insertion : insertions) {
    if (insertion.shifts_body && insertion.line <= line && line <= insertion.end_line) {
      out += ' ';
    }
  }
  return out;
}

void instrument_unit(const CompilationUnit& plain, const std::vector<Insertion>& insertions, const LineEdits& edits,
                     const std::vector<std::string_view>& file_lines, const std::vector<bool>& in_string,
                     const std::string& marker, ProbeShape shape, loader::InstrumentedUnitRequest& request) {
  std::map<std::uint32_t, const Insertion*> at_line;
  std::map<std::uint32_t, std::vector<const Insertion*>> ending_at;
  for (const auto& insertion : insertions) {
    at_line[insertion.line] = &insertion;
    ending_at[insertion.end_line].push_back(&insertion);
  }
  // Bodies ending at one line close innermost (latest body) first.
  for (auto& [line, ending] : ending_at) {
    std::sort(ending.begin(), ending.end(), [](const Insertion* a, const Insertion* b) { return a->line > b->line; });
  }
  auto lines = util::split_lines(plain.source);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto real = plain.first_line + static_cast<std::uint32_t>(i);
    std::string text(lines[i]);
    auto edited = edits.find(real);
    bool from_file = real <= file_lines.size() && file_lines[real - 1] == text;
    if (edited != edits.end() && from_file) {
      text = with_edits(text, edited->second);
    }
    std::string shift = from_file ? shift_of(insertions, in_string, real) : std::string();
    text = shift + text;
    auto emit = [&](std::string_view line) {
      request.instrumented.append(line);
      request.instrumented += '\n';
      request.lines.push_back(real);
    };
    auto found = at_line.find(real);
    if (found == at_line.end()) {
      emit(text);
    } else {
      const Insertion& insertion = *found->second;
      auto probe = probe_lines(insertion, marker, shape);
      // A body on the header's line: its column in the line as it was.
      std::size_t column = insertion.column == 0 ? 0 : insertion.column + shift.size();
      if (column != 0) {
        emit(std::string_view(text).substr(0, column));
      }
      for (const auto& line : probe.above) {
        emit(line);
      }
      emit(column == 0 ? text : insertion.indent + " " + text.substr(column));
    }
    for (const Insertion* ending : ending_at[real]) {
      for (const auto& line : probe_lines(*ending, marker, shape).below) {
        emit(line);
      }
    }
  }
}

}  // namespace

InstrumentedUnits instrument_units(const SourceFile& file, const std::vector<ProbeSite>& sites,
                                   const std::string& marker, ProbeShape shape) {
  InstrumentedUnits out;
  auto file_lines = util::split_lines(file.text);
  auto text_of = [&](std::uint32_t line) {
    return line >= 1 && line <= file_lines.size() ? file_lines[line - 1] : std::string_view{};
  };
  // Sites grouped by the function whose unit carries them, in file order.
  std::map<const Definition*, std::vector<Insertion>> by_unit;
  LineEdits edits;
  auto in_string = lines_inside_strings(file.text);
  for (const auto& site : sites) {
    const Definition& def = *site.definition;
    std::uint32_t body_line = line_of_byte(file, def.body_byte);
    std::string_view body_text = text_of(body_line);
    std::size_t line_start = def.body_byte - static_cast<std::size_t>(body_text.data() - file.text.data());
    bool one_line = !util::trim(body_text.substr(0, line_start)).empty();
    bool suspends = def.is_generator || def.is_coroutine;
    bool shifts_body = !one_line && body_needs_shift(text_of(def.def_line), body_text);
    auto reason = reason_not_probed(def, shape);
    if (reason.empty() && shifts_body) {
      reason = reason_not_shifted(file_lines, in_string, body_line, def.range.end_line);
    }
    if (reason.empty() && suspends && shape == ProbeShape::calls) {
      LineEdits mine;
      reason = add_suspension_edits(file, def, "'" + probe_constant(marker, site.probe) + "'", mine);
      for (auto& [line, line_edits] : mine) {
        edits[line].insert(edits[line].end(), line_edits.begin(), line_edits.end());
      }
    }
    if (!reason.empty()) {
      out.skipped.push_back({&def, reason});
      continue;
    }
    Insertion insertion{body_line,
                        def.range.end_line,
                        one_line ? line_start : 0,
                        leading_whitespace(text_of(def.def_line)) + " ",
                        site.probe,
                        suspends,
                        shifts_body,
                        def.def_line};
    by_unit[&outermost_function(file, def)].push_back(std::move(insertion));
  }
  // A probe inside a moved body moves with it.
  for (auto& [outer, insertions] : by_unit) {
    std::vector<std::string> shifts;
    for (const auto& insertion : insertions) {
      shifts.push_back(shift_of(insertions, in_string, insertion.def_line));
    }
    for (std::size_t i = 0; i < insertions.size(); ++i) {
      insertions[i].indent = shifts[i] + insertions[i].indent;
    }
  }
  UnitBuilder builder(file);
  for (auto& [outer, insertions] : by_unit) {
    CompilationUnit plain = builder.definition(*outer, differ::Verdict::swap);
    loader::InstrumentedUnitRequest request;
    request.unit = unit_request(plain);
    instrument_unit(plain, insertions, edits, file_lines, in_string, marker, shape, request);
    out.units.push_back(std::move(request));
  }
  return out;
}

}  // namespace pyhot::patch
