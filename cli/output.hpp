// Printing shared by the commands: one error line, JSON documents.
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "parser/source_file.hpp"
#include "patch/live_patch.hpp"
#include "util/result.hpp"

namespace pyhot::cli {

inline void print_json(const nlohmann::json& document) { std::cout << document.dump(2) << "\n"; }

// One line on stderr (or a JSON error object on stdout with --json).
inline void print_error(const std::string& message, bool json) {
  if (json) {
    print_json({{"ok", false}, {"error", message}});
  } else {
    std::cerr << "pyhot: " << message << "\n";
  }
}

inline const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::not_found:
      return "not_found";
    case ErrorKind::permission_denied:
      return "permission_denied";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::syntax_error:
      return "syntax_error";
    case ErrorKind::not_python:
      return "not_python";
    case ErrorKind::refused:
      return "refused";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::usage:
      return "usage";
    case ErrorKind::io:
      return "io";
    case ErrorKind::internal:
      return "internal";
  }
  return "internal";
}

// [{"line", "column", "message"}]: how every command reports syntax errors.
nlohmann::json to_json(const std::vector<parser::SyntaxError>& errors);

// reload's and autoreload's --json document for one patched file.
nlohmann::json to_json(const patch::PatchOutcome& outcome);

// "swapped", "re-ran", "kept": how reload and autoreload say what a change did.
std::string past_tense(const patch::AppliedChange& change);

}  // namespace pyhot::cli
