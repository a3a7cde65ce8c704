// Text helpers that know nothing of Python: lines, dedent, hashing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pyhot::util {

// XXH3-64 of the bytes, as 16 lowercase hex digits.
std::string hash_hex(std::string_view bytes);
std::uint64_t hash64(std::string_view bytes);
// A hash64 as hash_hex writes it.
std::string to_hex(std::uint64_t hash);

std::vector<std::string_view> split_lines(std::string_view text);

// Removes the common leading whitespace of all non-blank lines, so a
// definition hashes the same at any indentation.
std::string dedent(std::string_view text);

std::string_view trim(std::string_view text);
bool starts_with(std::string_view text, std::string_view prefix);

// The offset of the first byte that does not continue well-formed UTF-8
// (as CPython's strict decoder: no overlong forms, no surrogates, nothing
// above U+10FFFF), or npos.
std::size_t first_non_utf8(std::string_view text);

// Whether the only line breaks in `text` are '\n' (no \r, \v, \f,
// \x1c-\x1e, U+0085, U+2028, U+2029: what str.splitlines() also splits at).
bool only_newline_breaks(std::string_view text);

// Number of lines ("a\nb" and "a\nb\n" both have 2).
int count_lines(std::string_view text);

// A Python name: letters, digits, '_' and any non-ASCII byte (not checked
// further), not empty. is_identifier_char: an ASCII letter, digit or '_'.
bool is_identifier(std::string_view name);
bool is_identifier_char(char c);

}  // namespace pyhot::util
