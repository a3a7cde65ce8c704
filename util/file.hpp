// Whole-file reads and writes with errors as values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pyhot::util {

Result<std::string> read_file(const std::string& path);
// The largest Python file pyhot reads: its text travels to the agent up to
// twice in one request (the file and its definitions), JSON-escaped, and the
// agent takes 64 MiB per request. Real modules are far smaller; a larger
// file would be read and parsed for minutes only to be refused at the end.
inline constexpr std::uintmax_t k_max_source_bytes = 16U << 20;
// Refused, before a byte of it is read, when the file at path is larger than
// k_max_source_bytes: one line with its size, the limit and what to do.
Result<Done> check_source_size(const std::string& path);
// read_file of a Python file: refused up front when it is too large.
Result<std::string> read_python_file(const std::string& path);
// A source file's text as it is compiled from: without a UTF-8 byte-order
// mark (CPython decodes it as utf-8-sig) and refused, with the line and
// column of the first such byte, unless it is UTF-8 (the text goes to the
// target's compiler as UTF-8; another encoding would be other characters).
Result<std::string> read_source(const std::string& path);
// The same without the UTF-8 check, for a caller that checks only what
// changed from a text it knows to be UTF-8 (patch/edit_window.hpp); the
// error it gives otherwise is utf8_error's.
Result<std::string> read_source_unchecked(const std::string& path);
// read_source's refusal of `text` read from `path`, or nothing when it is UTF-8.
std::optional<Error> utf8_error(const std::string& path, std::string_view text);
bool is_utf8_error(const Error& error);
Result<Done> write_file(const std::string& path, const std::string& contents);
std::string absolute_path(const std::string& path);

}  // namespace pyhot::util
