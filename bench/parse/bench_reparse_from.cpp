// bench_reparse_from: what `pyhot reload` pays for the live text's
// SourceFile when it kept it on disk (serialize) instead of parsing it.
//   bench_reparse_from [--runs N] [--verify] FILE
// FILE: e.g. `python3 bench/reload/gen_module.py > /tmp/mod.py` (2,000
// functions, ~10k lines). For N one-line edits in function bodies (a
// `return x` becomes `return x or None`, a different function each run)
// it times, each on its own:
//   parse_source(old)                   what the CLI does today for the snapshot
//   deserialize(serialize(old))         loading the kept SourceFile instead
//   reparse_from(old, new)              the edited text from it
//   parse_source(new)                   the full parse it replaces
// and prints medians as JSON. --verify checks each reparse_from result
// against parse_source(new), field by field.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/parse/source_file_equal.hpp"
#include "parser/parser.hpp"
#include "parser/serialize.hpp"
#include "util/file.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using pyhot::parser::SourceFile;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

// Byte offsets of the ends of lines `    return ...` (whole statements).
std::vector<std::size_t> return_line_ends(const std::string& text) {
  std::vector<std::size_t> ends;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string_view line(text.data() + at, end - at);
    if (line.starts_with("    return ") && !line.ends_with(",") && !line.ends_with("\\") &&
        line.find('#') == std::string_view::npos) {
      ends.push_back(end);
    }
    at = end + 1;
  }
  return ends;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  bool verify = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (arg == "--verify") {
      verify = true;
    } else {
      path = arg;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: bench_reparse_from [--runs N] [--verify] FILE\n";
    return 2;
  }
  pyhot::Result<std::string> text = pyhot::util::read_file(path);
  if (!text) {
    std::cerr << text.error().message << "\n";
    return 1;
  }
  std::vector<std::size_t> ends = return_line_ends(*text);
  if (ends.empty()) {
    std::cerr << "bench_reparse_from: no `    return` line to edit\n";
    return 2;
  }

  std::vector<double> parse_old;
  std::vector<double> serialize_ms;
  std::vector<double> load;
  std::vector<double> reparse;
  std::vector<double> parse_new;
  std::size_t bytes_size = 0;
  std::size_t parsed_bytes = 0;
  int full_parses = 0;
  for (int run = 0; run < runs; ++run) {
    std::string edited = *text;
    edited.insert(ends[(static_cast<std::size_t>(run) * 7919U) % ends.size()], " or None");

    auto start = Clock::now();
    pyhot::Result<SourceFile> old_file = pyhot::parser::parse_source(*text, path);
    parse_old.push_back(ms_since(start));
    if (!old_file) {
      std::cerr << old_file.error().message << "\n";
      return 1;
    }

    start = Clock::now();
    std::string bytes = pyhot::parser::serialize(*old_file);
    serialize_ms.push_back(ms_since(start));
    bytes_size = bytes.size();

    start = Clock::now();
    pyhot::Result<SourceFile> loaded = pyhot::parser::deserialize(bytes, *text);
    load.push_back(ms_since(start));
    if (!loaded) {
      std::cerr << loaded.error().message << "\n";
      return 1;
    }

    pyhot::parser::ReparseInfo info;
    start = Clock::now();
    pyhot::Result<SourceFile> reparsed = pyhot::parser::reparse_from(*loaded, edited, path, &info);
    reparse.push_back(ms_since(start));
    full_parses += info.full_parse ? 1 : 0;
    parsed_bytes = info.parsed_bytes;

    start = Clock::now();
    pyhot::Result<SourceFile> fresh = pyhot::parser::parse_source(edited, path);
    parse_new.push_back(ms_since(start));

    if (verify) {
      std::string difference = pyhot::bench::first_difference(*reparsed, *fresh);
      if (!difference.empty()) {
        std::cerr << "run " << run << ": reparse_from differs from parse_source: " << difference << "\n";
        return 1;
      }
    }
  }

  nlohmann::json out;
  out["file"] = path;
  out["bytes"] = text->size();
  out["runs"] = runs;
  out["serialized_bytes"] = bytes_size;
  out["reparse_parsed_bytes"] = parsed_bytes;
  out["reparse_full_parses"] = full_parses;
  out["median_ms"] = {
      {"parse_source_old", median(parse_old)},
      {"serialize", median(serialize_ms)},
      {"deserialize", median(load)},
      {"reparse_from", median(reparse)},
      {"deserialize_plus_reparse_from", median(load) + median(reparse)},
      {"parse_source_new", median(parse_new)},
  };
  std::cout << out.dump(2) << "\n";
  return 0;
}
