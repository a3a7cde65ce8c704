// Whole-file reads and writes with errors as values.
#pragma once

#include <string>

#include "util/result.hpp"

namespace pyhot::util {

Result<std::string> read_file(const std::string& path);
// A source file's text as it is compiled from: without a UTF-8 byte-order
// mark (CPython decodes it as utf-8-sig) and refused, with the line and
// column of the first such byte, unless it is UTF-8 (the text goes to the
// target's compiler as UTF-8; another encoding would be other characters).
Result<std::string> read_source(const std::string& path);
Result<Done> write_file(const std::string& path, const std::string& contents);
std::string absolute_path(const std::string& path);

}  // namespace pyhot::util
