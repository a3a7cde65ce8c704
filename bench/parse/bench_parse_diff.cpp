// bench_parse_diff: parse + hash + diff of whole files, as `pyhot reload`
// does it on a first look at a file: both versions parsed from scratch.
//   bench_parse_diff [--runs N] BEFORE AFTER [BEFORE AFTER ...]
// Prints one JSON line per pair; times are per run of parse(before) +
// parse(after) + diff, with the median and the best of N runs. Also timed:
// the same with `after` re-parsed from the SourceFile of `before` with
// reparse_from (what `pyhot autoreload` does), "incremental_median_ms".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "differ/differ.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::string read_or_die(const std::string& path) {
  auto text = pyhot::util::read_file(path);
  if (!text) {
    std::cerr << "bench_parse_diff: " << text.error().message << '\n';
    std::exit(2);
  }
  return *text;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 11;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      paths.push_back(argument);
    }
  }
  if (paths.empty() || paths.size() % 2 != 0) {
    std::cerr << "usage: bench_parse_diff [--runs N] BEFORE AFTER [BEFORE AFTER ...]\n";
    return 2;
  }
  for (std::size_t p = 0; p < paths.size(); p += 2) {
    const std::string before_text = read_or_die(paths[p]);
    const std::string after_text = read_or_die(paths[p + 1]);
    std::vector<double> totals;
    std::vector<double> parses;
    std::vector<double> diffs;
    std::vector<double> incrementals;
    std::size_t changes = 0;
    std::size_t definitions = 0;
    for (int run = 0; run < runs; ++run) {
      Clock::time_point start = Clock::now();
      auto before = pyhot::parser::parse_source(before_text, paths[p]);
      auto after = pyhot::parser::parse_source(after_text, paths[p + 1]);
      double parsed = ms_since(start);
      if (!before || !after) {
        std::cerr << "bench_parse_diff: tree-sitter failed on " << paths[p] << '\n';
        return 1;
      }
      Clock::time_point diff_start = Clock::now();
      pyhot::differ::ChangeSet result = pyhot::differ::diff(*before, *after);
      diffs.push_back(ms_since(diff_start));
      totals.push_back(ms_since(start));
      parses.push_back(parsed);
      changes = result.changes.size() + result.syntax_errors.size();
      definitions = after->definitions.size();

      start = Clock::now();
      auto old_version = pyhot::parser::parse_source(before_text, paths[p]);
      auto new_version = pyhot::parser::reparse_from(*old_version, after_text, paths[p + 1]);
      pyhot::differ::ChangeSet again = pyhot::differ::diff(*old_version, *new_version);
      incrementals.push_back(ms_since(start));
      if (again.changes.size() != result.changes.size()) {
        std::cerr << "bench_parse_diff: incremental and fresh disagree on " << paths[p] << '\n';
        return 1;
      }
    }
    nlohmann::json line;
    line["before"] = paths[p];
    line["after"] = paths[p + 1];
    line["runs"] = runs;
    line["definitions"] = definitions;
    line["changes"] = changes;
    line["median_ms"] = median(totals);
    line["best_ms"] = *std::min_element(totals.begin(), totals.end());
    line["parse_median_ms"] = median(parses);
    line["diff_median_ms"] = median(diffs);
    line["incremental_median_ms"] = median(incrementals);
    std::cout << line.dump() << std::endl;
  }
  return 0;
}
