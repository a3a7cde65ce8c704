// bench_reparse: re-diff after a one-line edit, as `pyhot autoreload` does it
// on every save: parse the new text and diff it against the previous version.
//   bench_reparse [--edits N] [--seed S] [--verify] [--chaos] FILE
// Applies N successive one-line edits inside function bodies of FILE
// (alternately: `return x` becomes `return x or None`; a line `_edit_k = k`
// is inserted above a `return`), and for each times
//   fresh:       parse_source(new) + diff(previous, new)
//   incremental: reparse_from(previous, new) + diff(previous, new), as
//                autoreload re-parses from the version it applied last.
// --verify checks that every incremental result equals the fresh one, field
// by field; --chaos adds edits that break and repair the syntax (deleted,
// duplicated, re-indented lines, a stray quote or bracket), for --verify.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/parse/source_file_equal.hpp"
#include "differ/differ.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using pyhot::parser::SourceFile;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct Line {
  std::size_t begin = 0;  // byte offset of the first character
  std::size_t end = 0;    // byte offset of the '\n' (or the end of the text)
};

std::vector<Line> split(const std::string& text) {
  std::vector<Line> lines;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t newline = text.find('\n', at);
    if (newline == std::string::npos) {
      newline = text.size();
    }
    lines.push_back({at, newline});
    at = newline + 1;
  }
  return lines;
}

int bracket_balance(std::string_view line) {
  int balance = 0;
  for (char c : line) {
    balance += (c == '(' || c == '[' || c == '{') ? 1 : (c == ')' || c == ']' || c == '}') ? -1 : 0;
  }
  return balance;
}

// Lines `    return <something>` that are a whole statement: an edit there
// keeps the file valid.
std::vector<std::size_t> return_lines(const std::string& text, const std::vector<Line>& lines) {
  std::vector<std::size_t> found;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line(text.data() + lines[i].begin, lines[i].end - lines[i].begin);
    std::size_t indent = line.find_first_not_of(' ');
    if (indent == std::string_view::npos || indent < 4 || line.substr(indent, 7) != "return " ||
        bracket_balance(line) != 0) {
      continue;
    }
    char last = line.back();
    std::string_view previous(text.data() + lines[i - 1].begin, lines[i - 1].end - lines[i - 1].begin);
    char previous_last = previous.empty() ? '\n' : previous.back();
    if (last == '\\' || last == ',' || last == ':' || previous_last == '\\' || previous_last == ',' ||
        previous_last == '(' || previous_last == '[' || previous_last == '{') {
      continue;
    }
    found.push_back(i);
  }
  return found;
}

class Editor {
 public:
  Editor(std::string text, unsigned seed, bool chaos) : m_text(std::move(text)), m_random(seed), m_chaos(chaos) {}

  const std::string& text() const { return m_text; }

  void next(int number) {
    std::vector<Line> lines = split(m_text);
    if (m_chaos && number % 3 == 2) {
      chaos_edit(lines);
      return;
    }
    std::vector<std::size_t> candidates = return_lines(m_text, lines);
    if (candidates.empty()) {
      std::cerr << "bench_reparse: no `return` line to edit\n";
      std::exit(2);
    }
    const Line& line = lines[candidates[pick(candidates.size())]];
    if (number % 2 == 0) {
      m_text.insert(line.end, " or None");
    } else {
      std::size_t indent = m_text.find_first_not_of(' ', line.begin) - line.begin;
      std::string inserted =
          std::string(indent, ' ') + "_edit_" + std::to_string(number) + " = " + std::to_string(number) + "\n";
      m_text.insert(line.begin, inserted);
    }
  }

 private:
  std::size_t pick(std::size_t count) { return std::uniform_int_distribution<std::size_t>(0, count - 1)(m_random); }

  void chaos_edit(const std::vector<Line>& lines) {
    const Line& line = lines[pick(lines.size())];
    std::size_t length = line.end - line.begin;
    switch (pick(6)) {
      case 0:  // delete the line
        m_text.erase(line.begin, std::min(m_text.size() - line.begin, length + 1));
        break;
      case 1:  // duplicate it
        m_text.insert(line.begin, std::string(m_text, line.begin, length).append("\n"));
        break;
      case 2:  // indent it
        m_text.insert(line.begin, "    ");
        break;
      case 3:  // dedent it
        if (m_text.compare(line.begin, 4, "    ") == 0) {
          m_text.erase(line.begin, 4);
        }
        break;
      case 4:  // a stray quote that turns the rest of the file into a string
        m_text.insert(line.begin + pick(length + 1), "\"\"\"");
        break;
      default:  // a stray bracket
        m_text.insert(line.begin + pick(length + 1), "(");
        break;
    }
  }

  std::string m_text;
  std::mt19937 m_random;
  bool m_chaos;
};

}  // namespace

int main(int argc, char** argv) {
  int edits = 200;
  unsigned seed = 1;
  bool verify = false;
  bool chaos = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--edits" && i + 1 < argc) {
      edits = std::max(1, std::atoi(argv[++i]));
    } else if (argument == "--seed" && i + 1 < argc) {
      seed = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (argument == "--verify") {
      verify = true;
    } else if (argument == "--chaos") {
      chaos = true;
    } else {
      path = argument;
    }
  }
  auto original = pyhot::util::read_file(path);
  if (path.empty() || !original) {
    std::cerr << "usage: bench_reparse [--edits N] [--seed S] [--verify] [--chaos] FILE\n";
    return 2;
  }

  Editor editor(*original, seed, chaos);
  auto first = pyhot::parser::parse_source(editor.text(), path);
  if (!first) {
    std::cerr << "bench_reparse: " << first.error().message << '\n';
    return 1;
  }
  SourceFile previous = std::move(first).value();

  std::vector<double> fresh_ms;
  std::vector<double> incremental_ms;
  std::vector<double> incremental_parse_ms;
  std::vector<double> diff_ms;
  int with_syntax_errors = 0;
  int mismatches = 0;
  for (int number = 0; number < edits; ++number) {
    editor.next(number);
    const std::string& text = editor.text();

    Clock::time_point start = Clock::now();
    auto fresh = pyhot::parser::parse_source(text, path);
    pyhot::differ::ChangeSet fresh_changes = pyhot::differ::diff(previous, *fresh);
    fresh_ms.push_back(ms_since(start));

    start = Clock::now();
    auto incremental = pyhot::parser::reparse_from(previous, text, path);
    incremental_parse_ms.push_back(ms_since(start));
    Clock::time_point diff_start = Clock::now();
    pyhot::differ::ChangeSet incremental_changes = pyhot::differ::diff(previous, *incremental);
    diff_ms.push_back(ms_since(diff_start));
    incremental_ms.push_back(ms_since(start));

    with_syntax_errors += incremental->errors.empty() ? 0 : 1;
    if (verify) {
      std::string difference = pyhot::bench::first_difference(*incremental, *fresh);
      if (!difference.empty() || incremental_changes.changes.size() != fresh_changes.changes.size()) {
        std::cerr << "edit " << number << ": incremental differs from fresh: " << difference << '\n';
        ++mismatches;
      }
    }
    previous = std::move(incremental).value();
  }

  nlohmann::json line;
  line["file"] = path;
  line["lines"] = std::count(original->begin(), original->end(), '\n');
  line["edits"] = edits;
  line["edits_with_syntax_errors"] = with_syntax_errors;
  line["fresh_median_ms"] = percentile(fresh_ms, 0.5);
  line["fresh_p99_ms"] = percentile(fresh_ms, 0.99);
  line["incremental_median_ms"] = percentile(incremental_ms, 0.5);
  line["incremental_p99_ms"] = percentile(incremental_ms, 0.99);
  line["incremental_parse_median_ms"] = percentile(incremental_parse_ms, 0.5);
  line["diff_median_ms"] = percentile(diff_ms, 0.5);
  if (verify) {
    line["mismatches"] = mismatches;
  }
  std::cout << line.dump() << std::endl;
  return mismatches == 0 ? 0 : 1;
}
