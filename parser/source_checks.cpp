#include "parser/source_checks.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "util/text.hpp"

namespace pyhot::parser {

namespace {

constexpr std::string_view k_names[] = {
#include "parser/encodings.inc"
};

constexpr std::string_view k_bom = "\xEF\xBB\xBF";

struct Indentation {
  int column = 0;      // tabs to the next multiple of 8
  int alt_column = 0;  // tabs as one column
};

bool is_quote(char c) { return c == '\'' || c == '"'; }

// The end of the string literal that starts with the quote at `at`; lines
// it crosses are counted into `line`.
std::size_t skip_string(std::string_view text, std::size_t at, std::uint32_t& line) {
  const char quote = text[at];
  const bool triple = text.substr(at, 3) == std::string(3, quote);
  std::size_t end = at + (triple ? 3 : 1);
  while (end < text.size()) {
    char c = text[end];
    if (c == '\\' && end + 1 < text.size()) {
      line += text[end + 1] == '\n' ? 1 : 0;
      end += 2;
      continue;
    }
    if (c == '\n') {
      if (!triple) {
        return end;  // unterminated: the grammar reports it
      }
      ++line;
    }
    if (c == quote && (!triple || text.substr(end, 3) == std::string(3, quote))) {
      return end + (triple ? 3 : 1);
    }
    ++end;
  }
  return end;
}

// CPython's tokenizer at the start of a logical line: false when the
// indentation cannot be ordered against `stack` the same way both ways.
// An unindent to no enclosing level is left to the grammar (`stack` stops).
bool indentation_is_consistent(std::vector<Indentation>& stack, Indentation now, bool& stop) {
  const Indentation top = stack.back();
  if (now.column == top.column) {
    return now.alt_column == top.alt_column;
  }
  if (now.column > top.column) {
    if (now.alt_column <= top.alt_column) {
      return false;
    }
    stack.push_back(now);
    return true;
  }
  while (stack.size() > 1 && now.column < stack.back().column) {
    stack.pop_back();
  }
  if (now.column != stack.back().column) {
    stop = true;
    return true;
  }
  return now.alt_column == stack.back().alt_column;
}

// Lower case, runs of anything but letters, digits and '.' as one '_':
// encodings.normalize_encoding after codecs.lookup's lowering.
std::string normalized_encoding(std::string_view name) {
  std::string out;
  bool punctuation = false;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.') {
      if (punctuation && !out.empty()) {
        out += '_';
      }
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      punctuation = false;
    } else {
      punctuation = true;
    }
  }
  return out;
}

bool is_known_encoding(std::string_view name) {
  std::string normalized = normalized_encoding(name);
  std::string underscored = normalized;
  std::replace(underscored.begin(), underscored.end(), '.', '_');
  return std::binary_search(std::begin(k_names), std::end(k_names), std::string_view(normalized)) ||
         std::binary_search(std::begin(k_names), std::end(k_names), std::string_view(underscored));
}

// get_normal_name() of CPython's tokenizer: the spellings it takes for UTF-8 and Latin-1.
std::string normal_name(std::string_view name) {
  std::string lowered;
  for (std::size_t i = 0; i < name.size() && i < 12; ++i) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    lowered += c == '_' ? '-' : c;
  }
  auto is = [&](std::string_view base) {
    return lowered == base ||
           (lowered.size() > base.size() && lowered.starts_with(base) && lowered[base.size()] == '-');
  };
  if (is("utf-8")) {
    return "utf-8";
  }
  if (is("latin-1") || is("iso-8859-1") || is("iso-latin-1")) {
    return "iso-8859-1";
  }
  return std::string(name);
}

// The encoding a line declares, as get_coding_spec() finds it: a comment
// line with `coding` followed by ':' or '='.
std::optional<std::string> coding_spec(std::string_view line) {
  std::size_t at = line.find_first_not_of(" \t\f");
  if (at == std::string_view::npos || line[at] != '#') {
    return std::nullopt;
  }
  for (std::size_t found = line.find("coding", at); found != std::string_view::npos;
       found = line.find("coding", found + 1)) {
    std::size_t after = found + 6;
    if (after >= line.size() || (line[after] != ':' && line[after] != '=')) {
      continue;
    }
    std::size_t begin = line.find_first_not_of(" \t", after + 1);
    std::size_t end = begin;
    while (end < line.size() && (std::isalnum(static_cast<unsigned char>(line[end])) != 0 || line[end] == '-' ||
                                 line[end] == '_' || line[end] == '.')) {
      ++end;
    }
    if (begin != std::string_view::npos && end > begin) {
      return std::string(line.substr(begin, end - begin));
    }
  }
  return std::nullopt;
}

bool is_blank_or_comment(std::string_view line) {
  std::size_t at = line.find_first_not_of(" \t\f\r");
  return at == std::string_view::npos || line[at] == '#';
}

// Calls `visit(line, indentation)` at the start of every logical line that
// is not blank, a comment or inside brackets or a continuation, as CPython's
// tokenizer measures indentation; stops at the first error `visit` returns.
template <typename Visit>
std::optional<SyntaxError> for_each_indentation(std::string_view text, Visit visit) {
  std::uint32_t line = 1;
  int depth = 0;  // open brackets: their lines continue a logical line
  bool continued = false;
  bool line_start = true;
  std::size_t at = text.starts_with(k_bom) ? k_bom.size() : 0;
  while (at < text.size()) {
    if (line_start) {
      line_start = false;
      Indentation now;
      std::size_t first = at;
      for (; first < text.size(); ++first) {
        char c = text[first];
        if (c == ' ') {
          ++now.column;
          ++now.alt_column;
        } else if (c == '\t') {
          now.column = (now.column / 8 + 1) * 8;
          ++now.alt_column;
        } else if (c == '\f') {
          now = Indentation{};
        } else {
          break;
        }
      }
      bool blank = first >= text.size() || text[first] == '\n' || text[first] == '\r' || text[first] == '#' ||
                   text[first] == '\\';
      if (depth == 0 && !continued && !blank) {
        if (auto error = visit(line, now)) {
          return error;
        }
      }
      continued = false;
      at = first;
      continue;
    }
    char c = text[at];
    if (c == '\n') {
      ++line;
      ++at;
      line_start = true;
    } else if (c == '#') {
      at = std::min(text.find('\n', at), text.size());
    } else if (c == '\\' && at + 1 < text.size() && (text[at + 1] == '\n' || text[at + 1] == '\r')) {
      continued = true;
      at = std::min(text.find('\n', at), text.size());
    } else if (is_quote(c)) {
      at = skip_string(text, at, line);
    } else {
      depth += c == '(' || c == '[' || c == '{' ? 1 : 0;
      depth -= (c == ')' || c == ']' || c == '}') && depth > 0 ? 1 : 0;
      ++at;
    }
  }
  return std::nullopt;
}

// CPython's tokenizer keeps at most this many indentation levels (MAXINDENT
// is 100, the level of column 0 included).
constexpr std::size_t k_max_indentation_levels = 99;

// tree-sitter-python's scanner keeps each indentation column in one byte:
// from column 256 on it compares wrong columns and misparses.
constexpr int k_max_parsed_column = 255;

constexpr char k_deep_spaces[] =
    "                                                                                                   ";
static_assert(sizeof(k_deep_spaces) - 1 == k_max_indentation_levels, "one space per level at least");

// The encoding the first two lines declare, normalized, if any.
std::optional<std::string> declared_encoding(std::string_view text) {
  std::size_t at = text.starts_with(k_bom) ? k_bom.size() : 0;
  for (int line = 1; line <= 2 && at <= text.size(); ++line) {
    std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view current = text.substr(at, end - at);
    if (auto spec = coding_spec(current)) {
      return spec;
    }
    if (!is_blank_or_comment(current) || end == text.size()) {
      return std::nullopt;
    }
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SyntaxError> find_tab_error(std::string_view text) {
  if (text.find('\t') == std::string_view::npos) {
    return std::nullopt;  // no tab, nothing to order two ways
  }
  std::vector<Indentation> stack{Indentation{}};
  bool stop = false;
  return for_each_indentation(text, [&](std::uint32_t line, Indentation now) -> std::optional<SyntaxError> {
    if (!stop && !indentation_is_consistent(stack, now, stop)) {
      return SyntaxError{line, 1, "inconsistent use of tabs and spaces in indentation"};
    }
    return std::nullopt;
  });
}

std::optional<SyntaxError> find_indentation_error(std::string_view text) {
  // Without tabs a column is a space: both limits need a run of spaces.
  if (text.find('\t') == std::string_view::npos &&
      text.find(std::string_view(k_deep_spaces)) == std::string_view::npos) {
    return std::nullopt;
  }
  std::vector<int> levels{0};
  return for_each_indentation(text, [&](std::uint32_t line, Indentation now) -> std::optional<SyntaxError> {
    while (levels.size() > 1 && now.column < levels.back()) {
      levels.pop_back();
    }
    if (now.column > levels.back()) {
      if (levels.size() > k_max_indentation_levels) {
        return SyntaxError{line, 1, "too many levels of indentation"};
      }
      levels.push_back(now.column);
    }
    if (now.column > k_max_parsed_column) {
      return SyntaxError{line, 1,
                         "indented " + std::to_string(now.column) + " columns: pyhot's parser reads at most " +
                             std::to_string(k_max_parsed_column) + " (CPython allows 99 levels at any width)"};
    }
    return std::nullopt;
  });
}

std::optional<SyntaxError> find_coding_error(std::string_view text) {
  const bool bom = text.starts_with(k_bom);
  std::size_t at = bom ? k_bom.size() : 0;
  for (std::uint32_t line = 1; line <= 2 && at <= text.size(); ++line) {
    std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view current = text.substr(at, end - at);
    if (auto spec = coding_spec(current)) {
      std::string name = normal_name(*spec);
      if (bom && name != "utf-8") {
        return SyntaxError{line, 1, "encoding problem: " + name + " with BOM"};
      }
      if (!is_known_encoding(name)) {
        return SyntaxError{line, 1, "unknown encoding: " + name};
      }
      return std::nullopt;
    }
    if (!is_blank_or_comment(current) || end == text.size()) {
      return std::nullopt;
    }
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace pyhot::parser

namespace pyhot::parser {

std::optional<SyntaxError> find_encoding_error(std::string_view text) {
  auto encoding = declared_encoding(text);
  std::size_t bad = util::first_non_utf8(text);
  if (bad == std::string_view::npos || (encoding && normal_name(*encoding) != "utf-8")) {
    return std::nullopt;  // another encoding is CPython's to decode (reload refuses it)
  }
  auto line = static_cast<std::uint32_t>(1 + std::count(text.begin(), text.begin() + static_cast<long>(bad), '\n'));
  std::size_t line_start = bad == 0 ? std::string_view::npos : text.rfind('\n', bad - 1);
  auto column = static_cast<std::uint32_t>(bad - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1);
  static constexpr char k_hex[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[bad]);
  std::string hex = {k_hex[byte >> 4], k_hex[byte & 0xF]};
  if (encoding) {
    return SyntaxError{line, column, "(unicode error) 'utf-8' codec can't decode byte 0x" + hex};
  }
  return SyntaxError{line, column,
                     "Non-UTF-8 code starting with '\\x" + hex + "' on line " + std::to_string(line) +
                         ", but no encoding declared; see https://peps.python.org/pep-0263/ for details"};
}

}  // namespace pyhot::parser
