// Printing shared by the commands: one error line, JSON documents.
#pragma once

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

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

}  // namespace pyhot::cli
