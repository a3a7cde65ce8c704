// parser_dump: prints what pyhot's parser finds in each file, one JSON line
// per file, for tests/corpus/compare_stdlib.py to check against CPython.
//   parser_dump [--time] FILE...
// --time adds "parse_ms": the best of 5 parses of that file.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "parser/parser.hpp"
#include "util/file.hpp"

namespace {

double best_parse_ms(const std::string& text, const std::string& path) {
  double best = 1e300;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto file = pyhot::parser::parse_source(text, path);
    auto end = std::chrono::steady_clock::now();
    if (!file) {
      return -1;
    }
    best = std::min(best, std::chrono::duration<double, std::milli>(end - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  bool time = false;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--time") {
      time = true;
    } else {
      paths.push_back(argument);
    }
  }
  int status = 0;
  for (const std::string& path : paths) {
    nlohmann::json line;
    line["file"] = path;
    auto text = pyhot::util::read_file(path);
    if (!text) {
      line["failure"] = text.error().message;
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      status = 1;
      continue;
    }
    auto file = pyhot::parser::parse_source(*text, path);
    if (!file) {
      line["failure"] = file.error().message;
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      status = 1;
      continue;
    }
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& error : file->errors) {
      errors.push_back({{"line", error.line}, {"column", error.column}, {"message", error.message}});
    }
    nlohmann::json defs = nlohmann::json::array();
    for (const auto& definition : file->definitions) {
      defs.push_back({{"qualname", definition.qualname},
                      {"line", definition.def_line},
                      {"kind", pyhot::parser::to_string(definition.kind)},
                      {"free", definition.free_variables}});
    }
    line["errors"] = std::move(errors);
    line["defs"] = std::move(defs);
    if (time) {
      line["parse_ms"] = best_parse_ms(*text, path);
    }
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  return status;
}
