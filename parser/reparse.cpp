// reparse_from(): a new version of a text, parsed from the SourceFile of the
// previous version by parsing only the top-level statements an edit touched.
//
// Why a span of top-level statements parses alone as it does in the file:
// at a line that starts with a statement at column 0, after a complete
// statement, tree-sitter-python's scanner has no open bracket, string or
// indented block, and decides how the text before ends (the NEWLINE and
// DEDENTs, which comments go into the last block) from that text and the
// column of the next token only. So the file cut at such lines is the
// concatenation of the parses of its pieces, as long as
//  - the line before each cut does not continue onto it (`\`, `;`),
//  - what follows a cut does not continue what precedes it (`else:`,
//    `except:` ... give a syntax error when the span parses alone), and
//  - where the span ends, the text after its last statement is blank: a
//    comment there would be followed by the end of the span in one parse
//    and by the next statement in the other.
// What the extraction makes of a top-level statement depends only on its
// own subtree: its definitions' qualnames extend only definitions inside it
// (a top-level def is its bare name whatever the module declares `global`);
// free variables come from CPython's analyze_block, where the module passes
// no bound names down and the `global` set is written but never decides a
// name's scope. The context of every top-level statement is the same,
// except whether it is the first (a docstring) and its column (`a = 1;
// b = 2`, never at a boundary). So the definitions and statements outside
// the span are the previous ones, moved to their new byte offset and line.
#include <tree_sitter/api.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "parser/edit_span.hpp"
#include "parser/extract.hpp"
#include "parser/grammar.hpp"
#include "parser/parser.hpp"
#include "parser/text_edit.hpp"

namespace pyhot::parser {

namespace {

using TopLevel = TopLevelStatement;
using Items = std::span<const TopLevel>;

}  // namespace

bool top_level_statements(const std::vector<Definition>& file_definitions,
                          const std::vector<Statement>& file_statements, std::size_t text_size,
                          std::vector<TopLevelStatement>& out) {
  std::vector<TopLevel> definitions;
  std::vector<TopLevel> statements;
  for (const Definition& definition : file_definitions) {
    if (definition.parent < 0) {
      definitions.push_back({definition.range.start_byte, definition.range.end_byte, definition.range.start_line});
    }
  }
  for (const Statement& statement : file_statements) {
    if (statement.scope_qualname.empty()) {
      statements.push_back({statement.range.start_byte, statement.range.end_byte, statement.range.start_line});
    }
  }
  auto by_start = [](const TopLevel& a, const TopLevel& b) { return a.start < b.start; };
  std::vector<TopLevel> all;
  all.reserve(definitions.size() + statements.size());
  std::merge(definitions.begin(), definitions.end(), statements.begin(), statements.end(), std::back_inserter(all),
             by_start);
  if (!std::is_sorted(all.begin(), all.end(), by_start)) {
    return false;
  }
  for (const TopLevel& item : all) {
    if (item.start > item.end || item.end > text_size) {
      return false;
    }
    if (!out.empty() && item.start < out.back().end) {
      // A definition under a module-level if/try/...: part of that statement.
      if (item.end > out.back().end || item.start < out.back().start) {
        return false;
      }
      continue;
    }
    out.push_back(item);
  }
  return true;
}

namespace {

bool at_line_start(std::string_view text, std::size_t offset) { return offset == 0 || text[offset - 1] == '\n'; }

// Text between two top-level statements that cannot join them: blank
// lines, and with `comments`, comment lines.
bool is_clean_gap(std::string_view text, std::size_t from, std::size_t to, bool comments) {
  for (std::size_t at = from; at < to; ++at) {
    char c = text[at];
    if (c == '#' && comments) {
      std::size_t newline = text.find('\n', at);
      if (newline == std::string_view::npos || newline >= to) {
        return false;
      }
      at = newline;
    } else if (c != ' ' && c != '\t' && c != '\n') {
      return false;
    }
  }
  return true;
}

// The first byte of a statement at column 0, where nothing before it can
// continue onto it: not blank, not a comment, not a byte-order mark.
bool starts_statement(char c) {
  auto byte = static_cast<unsigned char>(c);
  return byte < 0x80 && byte > ' ' && c != '#' && c != '\\' && c != ';' && c != 0x7F;
}

// Whether the last non-blank line of text[from, to) cannot be a comment
// or continue onto the next line. Strings with '#' make it say no: then the
// span only grows to the next boundary.
bool last_line_is_plain(std::string_view text, std::size_t from, std::size_t to) {
  std::size_t end = to;
  while (end > from && (text[end - 1] == '\n' || text[end - 1] == ' ' || text[end - 1] == '\t')) {
    --end;
  }
  if (end == from) {
    return true;
  }
  std::size_t line = text.rfind('\n', end - 1);
  line = line == std::string_view::npos || line < from ? from : line + 1;
  std::string_view last = text.substr(line, end - line);
  return last.find('#') == std::string_view::npos && last.back() != '\\' && last.back() != ';';
}

// Whether the statement at `offset` starts with a keyword that continues
// the statement before it. tree-sitter-python is lenient (an `if x:` with
// an empty block, a stray `else` are not errors), so such a line must never
// be where the span starts or ends.
bool starts_with_clause_keyword(std::string_view text, std::size_t offset) {
  std::size_t end = offset;
  while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) != 0 || text[end] == '_')) {
    ++end;
  }
  std::string_view word = text.substr(offset, end - offset);
  return word == "else" || word == "elif" || word == "except" || word == "finally" || word == "case";
}

// Whether the last non-blank line before `offset` ends with `\`. It may
// be inside what the previous parse took for a statement: tree-sitter makes
// a module-level statement of a lone `\`, or not, depending on what follows.
bool follows_continuation(std::string_view text, std::size_t offset) {
  while (offset > 0 && (text[offset - 1] == '\n' || text[offset - 1] == ' ' || text[offset - 1] == '\t')) {
    --offset;
  }
  return offset > 0 && text[offset - 1] == '\\';
}

// A top-level statement at `offset` the text before cannot continue.
bool is_boundary(std::string_view text, std::size_t offset) {
  return offset < text.size() && at_line_start(text, offset) && starts_statement(text[offset]) &&
         !starts_with_clause_keyword(text, offset) && !follows_continuation(text, offset);
}

// Constructs tree-sitter-python accepts without an error but parses
// differently depending on what came long before (its GLR stacks): a def or
// class with an empty body (not Python), and a line that ends with a comma
// outside brackets (`X,` then a newline: one tuple statement or the start of
// `X, (Y, Z) = ...`). Where they are, the span cannot be shown to parse as
// in the whole file.
bool has_empty_body(const std::vector<Definition>& definitions) {
  return std::any_of(definitions.begin(), definitions.end(),
                     [](const Definition& definition) { return definition.body_byte >= definition.range.end_byte; });
}

// Whether a line of `text` ends with a comma outside brackets, strings and
// comments, or the text itself does.
bool ends_a_line_with_comma(std::string_view text) {
  int depth = 0;
  char last = 0;  // the last character of code that is not blank
  for (std::size_t at = 0; at < text.size(); ++at) {
    char c = text[at];
    if (c == '#') {
      at = std::min(text.find('\n', at), text.size()) - 1;
      continue;
    }
    if (c == '\'' || c == '"') {
      // A string: skipped whole, with its escapes; triple-quoted ones span lines.
      bool triple = text.substr(at, 3) == std::string(3, c);
      std::size_t quote = triple ? 3 : 1;
      std::size_t end = at + quote;
      while (end < text.size() && text.substr(end, quote) != std::string(quote, c) && (triple || text[end] != '\n')) {
        end += text[end] == '\\' ? 2 : 1;
      }
      at = std::min(end + quote, text.size()) - 1;
      last = c;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      --depth;
    } else if (c == '\n' && last == ',' && depth <= 0) {
      return true;
    }
    if (c != ' ' && c != '\t' && c != '\n') {
      last = c;
    }
  }
  return last == ',';
}

bool has_line_ending_in_comma(const std::vector<Statement>& statements) {
  return std::any_of(statements.begin(), statements.end(),
                     [](const Statement& statement) { return ends_a_line_with_comma(statement.text); });
}

std::uint32_t count_lines(std::string_view text) {
  return static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n'));
}

// Where the new text's parse can differ from the previous one:
// new_text[start, new_stop) takes the place of old_text[start, old_stop).
struct Span {
  std::size_t start = 0;
  std::uint32_t start_row = 0;  // 0-based line of `start`
  bool module_start = false;    // it holds the module's first statement, which may be its docstring
  std::size_t old_stop = 0;
  std::size_t new_stop = 0;
  std::size_t old_end = 0;     // where the edit ends in the previous text
  std::size_t new_end = 0;     // and in the new one
  std::size_t first_item = 0;  // the previous top-level statements [first_item, end_item) are in it
  std::size_t end_item = 0;
};

// The one edit between the texts, widened to clean top-level boundaries.
Span find_span(std::string_view old_text, std::string_view new_text, Items items) {
  Span span;
  // The edit: old_text[prefix, old_end) became new_text[prefix, new_end).
  const std::size_t limit = std::min(old_text.size(), new_text.size());
  const std::size_t prefix = common_prefix(old_text, new_text, limit);
  const std::size_t suffix = common_suffix(old_text, new_text, limit - prefix);
  span.old_end = old_text.size() - suffix;
  span.new_end = new_text.size() - suffix;

  // The span starts at the last clean top-level boundary at or before the
  // edit, or at the start of the text.
  auto first_after = std::upper_bound(items.begin(), items.end(), prefix,
                                      [](std::size_t offset, const TopLevel& item) { return offset < item.start; });
  std::ptrdiff_t first = (first_after - items.begin()) - 1;
  for (; first >= 0; --first) {
    const TopLevel& item = items[static_cast<std::size_t>(first)];
    std::size_t gap_start = first == 0 ? 0 : items[static_cast<std::size_t>(first) - 1].end;
    if (is_boundary(old_text, item.start) && is_clean_gap(old_text, gap_start, item.start, false) &&
        is_boundary(new_text, item.start)) {
      break;
    }
  }
  span.start = first >= 0 ? items[static_cast<std::size_t>(first)].start : 0;
  span.start_row = first >= 0 ? items[static_cast<std::size_t>(first)].line - 1 : 0;
  span.module_start = first <= 0;
  span.first_item = first >= 0 ? static_cast<std::size_t>(first) : 0;

  // It ends at the first top-level boundary after the edit with only blank
  // lines before it, or at the end of the text.
  auto after = std::lower_bound(items.begin(), items.end(), span.old_end,
                                [](const TopLevel& item, std::size_t offset) { return item.start < offset; });
  if (span.module_start && after != items.end()) {
    // The span then keeps a statement that is first in both texts: which
    // one is first (a docstring) changes nothing outside the span.
    ++after;
  }
  span.old_stop = old_text.size();
  span.end_item = items.size();
  for (; after != items.end(); ++after) {
    std::size_t gap_start = std::max<std::size_t>(after == items.begin() ? 0 : (after - 1)->end, span.old_end);
    if (is_boundary(old_text, after->start) && is_clean_gap(old_text, gap_start, after->start, false) &&
        last_line_is_plain(new_text, span.start, after->start - span.old_end + span.new_end)) {
      span.old_stop = after->start;
      span.end_item = static_cast<std::size_t>(after - items.begin());
      break;
    }
  }
  span.new_stop = span.old_stop - span.old_end + span.new_end;
  return span;
}

// The span's text parsed alone, or nothing (and `why`) when it cannot be
// shown to parse as it does in the whole text. `at_text_end`: the span
// ends where the text does.
std::optional<SourceFile> parse_span(std::string_view span, bool at_text_end, bool module_start,
                                     const std::string& path, const char*& why) {
  auto fail = [&](const char* reason) {
    why = reason;
    return std::nullopt;
  };
  if (span.find_first_of(std::string_view("\r\f\0", 3)) != std::string_view::npos) {
    return fail("CR, form feed or NUL in the edited statements");
  }
  if (!at_text_end && !span.empty() && span.back() != '\n') {
    return fail("the edited statements do not end with a line");
  }
  SourceFile parsed;
  std::size_t span_statements = 0;
  if (!span.empty()) {
    ParserPtr parser(ts_parser_new());
    if (!parser || !ts_parser_set_language(parser.get(), Grammar::get().language())) {
      return fail("the tree-sitter-python grammar does not match the tree-sitter runtime");
    }
    TreePtr tree(ts_parser_parse_string(parser.get(), nullptr, span.data(), static_cast<std::uint32_t>(span.size())));
    if (!tree) {
      return fail("tree-sitter could not parse the edited statements");
    }
    TSNode root = ts_tree_root_node(tree.get());
    if (ts_node_has_error(root)) {
      return fail("the edited statements have syntax errors");
    }
    const Grammar& grammar = Grammar::get();
    // Comments, `\` and `;` after the last statement are children of the
    // module too: the gap check below sees them in the text.
    std::uint32_t last_end = 0;
    ChildWalker walker;
    walker.each(root, [&](TSNode child, TSFieldId) {
      if (ts_node_is_named(child) && grammar.kind(child) != NodeKind::comment) {
        ++span_statements;
        last_end = ts_node_end_byte(child);
      }
    });
    if (!at_text_end && !is_clean_gap(span, last_end, span.size(), false)) {
      return fail("the edited statements end in a comment or an unfinished line");
    }
    parsed = extract_source_file(tree.get(), span, path);
    if (!parsed.errors.empty()) {
      return fail("the edited statements have syntax errors");
    }
    if (has_empty_body(parsed.definitions) || has_line_ending_in_comma(parsed.statements)) {
      return fail("the edited statements have constructs tree-sitter parses depending on context");
    }
  }
  if (module_start && span_statements == 0 && !at_text_end) {
    return fail("the edit removes the first statement");
  }
  return parsed;
}

// The span found and parsed, its records moved to their place in the new text.
std::optional<EditedSpan> edit_span(Items items, std::string_view old_text, std::string_view new_text,
                                    const std::string& path, const char*& why, std::size_t& parsed_bytes) {
  const Span span = find_span(old_text, new_text, items);
  const std::string_view text = new_text.substr(span.start, span.new_stop - span.start);
  parsed_bytes = text.size();
  if (span.start > 0 && !text.empty() && !starts_statement(text.front())) {
    why = "the edited statements do not start at column 0";
    return std::nullopt;
  }
  auto parsed = parse_span(text, span.new_stop == new_text.size(), span.module_start, path, why);
  if (!parsed) {
    return std::nullopt;
  }
  EditedSpan edited;
  edited.first_item = span.first_item;
  edited.end_item = span.end_item;
  edited.start = span.start;
  edited.old_stop = span.old_stop;
  edited.new_stop = span.new_stop;
  edited.after_bytes = static_cast<std::uint32_t>(span.new_end - span.old_end);
  edited.after_lines = count_lines(text) - count_lines(old_text.substr(span.start, span.old_stop - span.start));
  const auto span_byte_delta = static_cast<std::uint32_t>(span.start);
  const std::uint32_t span_line_delta = span.start_row;
  for (Definition& definition : parsed->definitions) {
    shift(definition, span_byte_delta, span_line_delta);
  }
  for (Statement& statement : parsed->statements) {
    shift(statement.range, span_byte_delta, span_line_delta);
    // Only the module's first statement is its docstring.
    if (!span.module_start && statement.kind == Statement::Kind::docstring && statement.scope_qualname.empty()) {
      statement.kind = Statement::Kind::other;
    }
  }
  edited.parsed = std::move(*parsed);
  return edited;
}

// The new text's SourceFile: the previous definitions and statements
// before and after the span, moved, and the span's own in between.
std::optional<SourceFile> assemble(const SourceFile& previous, EditedSpan edited, std::string_view new_text,
                                   const std::string& path, const char*& why) {
  auto fail = [&](const char* reason) {
    why = reason;
    return std::nullopt;
  };
  SourceFile& parsed = edited.parsed;
  const std::size_t start = edited.start;
  const std::size_t old_stop = edited.old_stop;
  SourceFile file;
  file.path = path;
  file.text = std::string(new_text);
  const std::uint32_t after_byte_delta = edited.after_bytes;
  const std::uint32_t after_line_delta = edited.after_lines;

  // Before the span, the span, after it: previous definitions and
  // statements come grouped by top-level statement, in source order.
  enum class Part { before, span, after };
  auto part_of = [&](std::uint32_t offset) {
    return offset < start ? Part::before : offset < old_stop ? Part::span : Part::after;
  };

  file.definitions.reserve(previous.definitions.size() + parsed.definitions.size());
  Part part = Part::before;
  std::size_t first_after_index = previous.definitions.size();
  for (std::size_t i = 0; i < previous.definitions.size(); ++i) {
    const Definition& definition = previous.definitions[i];
    Part at = part_of(definition.range.start_byte);
    if (at < part) {
      return fail("the previous SourceFile is inconsistent");
    }
    part = at;
    if (at == Part::before) {
      file.definitions.push_back(definition);
    } else if (at == Part::after) {
      first_after_index = i;
      break;
    }
  }
  const std::size_t span_base = file.definitions.size();
  for (Definition& definition : parsed.definitions) {
    if (definition.parent >= 0) {
      definition.parent += static_cast<int>(span_base);
    }
    file.definitions.push_back(std::move(definition));
  }
  const int after_base = static_cast<int>(file.definitions.size());
  const int after_start = static_cast<int>(first_after_index);
  for (std::size_t i = first_after_index; i < previous.definitions.size(); ++i) {
    const Definition& definition = previous.definitions[i];
    if (part_of(definition.range.start_byte) != Part::after ||
        (definition.parent >= 0 && definition.parent < after_start)) {
      return fail("the previous SourceFile is inconsistent");
    }
    Definition& moved = file.definitions.emplace_back(definition);
    shift(moved, after_byte_delta, after_line_delta);
    if (moved.parent >= 0) {
      moved.parent = moved.parent - after_start + after_base;
    }
  }

  file.statements.reserve(previous.statements.size() + parsed.statements.size());
  part = Part::before;
  std::size_t statement = 0;
  for (; statement < previous.statements.size(); ++statement) {
    Part at = part_of(previous.statements[statement].range.start_byte);
    if (at < part) {
      return fail("the previous SourceFile is inconsistent");
    }
    part = at;
    if (at == Part::after) {
      break;
    }
    if (at == Part::before) {
      file.statements.push_back(previous.statements[statement]);
    }
  }
  for (Statement& parsed_statement : parsed.statements) {
    file.statements.push_back(std::move(parsed_statement));
  }
  for (; statement < previous.statements.size(); ++statement) {
    if (part_of(previous.statements[statement].range.start_byte) != Part::after) {
      return fail("the previous SourceFile is inconsistent");
    }
    shift(file.statements.emplace_back(previous.statements[statement]).range, after_byte_delta, after_line_delta);
  }
  return file;
}

// Two edits far apart (a line added at the top and a body changed below)
// are one edit from the common prefix to the common suffix, everything in
// between parsed again. A text halfway is then the new text up to where
// the first previous top-level statement after the edit's start reappears
// unchanged, and the previous text from that statement on: going to it and
// then on to the new text are two small edits. Nothing when there is no
// such statement, or the edit is small anyway.
std::optional<std::string> halfway_text(std::string_view old_text, std::string_view new_text, Items items) {
  constexpr std::size_t k_worth_splitting = 4096;  // bytes: below this, parsing the span is cheap
  constexpr std::size_t k_items_tried = 8;
  constexpr std::size_t k_probe = 256;  // bytes of a statement searched for
  const std::size_t limit = std::min(old_text.size(), new_text.size());
  const std::size_t prefix = common_prefix(old_text, new_text, limit);
  const std::size_t suffix = common_suffix(old_text, new_text, limit - prefix);
  const std::size_t old_end = old_text.size() - suffix;
  const std::size_t new_end = new_text.size() - suffix;
  if (std::max(old_end, new_end) - prefix < k_worth_splitting) {
    return std::nullopt;
  }
  auto item = std::upper_bound(items.begin(), items.end(), prefix,
                               [](std::size_t offset, const TopLevel& each) { return offset < each.start; });
  for (std::size_t tried = 0; item != items.end() && item->start < old_end && tried < k_items_tried; ++item, ++tried) {
    if (!is_boundary(old_text, item->start)) {
      continue;
    }
    std::string_view probe = old_text.substr(item->start, std::min<std::size_t>(item->end - item->start, k_probe));
    std::size_t found = new_text.substr(0, new_end).find(probe, prefix);
    if (found == std::string_view::npos || !is_boundary(new_text, found)) {
      continue;
    }
    // Worth it only if the texts then agree for a good part of the edit.
    std::size_t agree = common_prefix(old_text.substr(item->start), new_text.substr(found),
                                      std::min(old_text.size() - item->start, new_text.size() - found));
    if (agree < (std::max(old_end, new_end) - prefix) / 4) {
      continue;
    }
    std::string halfway(new_text.substr(0, found));
    halfway.append(old_text.substr(item->start));
    return halfway;
  }
  return std::nullopt;
}

// Two edits far apart are split in two this many times at most.
constexpr int k_max_splits = 4;

Result<SourceFile> reparse(const SourceFile& previous, std::string_view new_text, const std::string& path,
                           ReparseInfo* info, int depth) {
  ReparseInfo ignored;
  ReparseInfo& report = info != nullptr ? *info : ignored;
  report = ReparseInfo{};
  auto full_parse = [&](const char* reason) {
    report.full_parse = true;
    report.reason = reason;
    report.parsed_bytes = new_text.size();
    return parse_source(new_text, path);
  };

  const std::string_view old_text = previous.text;
  if (new_text.size() >= 0xFFFFFFF0U || old_text.size() >= 0xFFFFFFF0U) {
    return full_parse("too large");
  }
  if (!previous.errors.empty()) {
    return full_parse("the previous text has syntax errors");
  }
  if (!reparses_by_span(previous)) {
    return full_parse("the previous text has constructs tree-sitter parses depending on context");
  }
  if (old_text == new_text) {
    SourceFile same = previous;
    same.path = path;
    return same;
  }
  std::vector<TopLevel> items;
  if (!top_level_statements(previous.definitions, previous.statements, previous.text.size(), items)) {
    return full_parse("the previous SourceFile is inconsistent");
  }
  if (depth < k_max_splits) {
    if (auto halfway = halfway_text(old_text, new_text, items)) {
      // Each step is exact by itself, so the two together are too.
      ReparseInfo first_info;
      auto first = reparse(previous, *halfway, path, &first_info, depth + 1);
      if (first) {
        auto second = reparse(*first, new_text, path, &report, depth + 1);
        report.parsed_bytes += first_info.parsed_bytes;
        report.full_parse = report.full_parse || first_info.full_parse;
        if (report.reason.empty()) {
          report.reason = first_info.reason;
        }
        return second;
      }
    }
  }
  const char* why = nullptr;
  auto edited = edit_span(items, old_text, new_text, path, why, report.parsed_bytes);
  if (!edited) {
    return full_parse(why);
  }
  auto file = assemble(previous, std::move(*edited), new_text, path, why);
  if (!file) {
    return full_parse(why);
  }
  return std::move(*file);
}

}  // namespace

Result<SourceFile> reparse_from(const SourceFile& previous, std::string_view new_text, const std::string& path,
                                ReparseInfo* info) {
  return reparse(previous, new_text, path, info, 0);
}

bool reparses_by_span(const SourceFile& file) {
  return file.errors.empty() && !has_empty_body(file.definitions) && !has_line_ending_in_comma(file.statements);
}

bool edit_needs_two_steps(std::string_view old_text, std::string_view new_text,
                          std::span<const TopLevelStatement> items) {
  return halfway_text(old_text, new_text, items).has_value();
}

std::optional<EditedSpan> parse_edited_span(std::span<const TopLevelStatement> items, std::string_view old_text,
                                            std::string_view new_text, const std::string& path, const char*& why) {
  std::size_t parsed_bytes = 0;
  return edit_span(items, old_text, new_text, path, why, parsed_bytes);
}

}  // namespace pyhot::parser
