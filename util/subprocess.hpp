// Runs a program and captures what it prints; no shell in between.
#pragma once

#include <string>
#include <vector>

#include "util/result.hpp"

namespace pyhot::util {

struct Completed {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// not_found when the program cannot be started.
Result<Completed> run_capture(const std::vector<std::string>& argv, const std::string& directory = {});

}  // namespace pyhot::util
