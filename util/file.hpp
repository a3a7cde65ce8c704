// Whole-file reads and writes with errors as values.
#pragma once

#include <string>

#include "util/result.hpp"

namespace pyhot::util {

Result<std::string> read_file(const std::string& path);
Result<Done> write_file(const std::string& path, const std::string& contents);
std::string absolute_path(const std::string& path);

}  // namespace pyhot::util
