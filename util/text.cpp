#include "util/text.hpp"

#include <cstring>

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace pyhot::util {

#if defined(PYHOT_AVX2_HASH)
namespace detail {
std::uint64_t hash64_avx2(const void* data, std::size_t size);
}
#endif

std::uint64_t hash64(std::string_view bytes) {
#if defined(PYHOT_AVX2_HASH)
  static const bool k_avx2 = __builtin_cpu_supports("avx2");
  if (k_avx2 && bytes.size() >= 256) {
    return detail::hash64_avx2(bytes.data(), bytes.size());
  }
#endif
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string hash_hex(std::string_view bytes) { return to_hex(hash64(bytes)); }

std::string to_hex(std::uint64_t hash) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(hash));
  return buffer;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

static bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

std::string dedent(std::string_view text) {
  auto lines = split_lines(text);
  std::size_t common = std::string_view::npos;
  for (auto line : lines) {
    if (is_blank(line)) {
      continue;
    }
    std::size_t indent = line.find_first_not_of(" \t");
    common = std::min(common, indent);
  }
  if (common == std::string_view::npos) {
    common = 0;
  }
  std::string out;
  out.reserve(text.size());
  for (auto line : lines) {
    if (!is_blank(line)) {
      out.append(line.substr(std::min(common, line.size())));
    }
    out.push_back('\n');
  }
  return out;
}

std::string_view trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

int count_lines(std::string_view text) {
  if (text.empty()) {
    return 0;
  }
  int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  if (text.back() != '\n') {
    ++lines;
  }
  return lines;
}

bool only_newline_breaks(std::string_view text) {
  // One memchr pass per byte that can start a break (memchr compares 32
  // bytes an instruction; a loop over every byte cost more than the rest of
  // a reload on a 2.6 MB module): \r \v \f \x1c-\x1e, and U+0085, U+2028,
  // U+2029 in UTF-8.
  const char* begin = text.data();
  const char* end = begin + text.size();
  for (char c : {'\r', '\v', '\f', '\x1c', '\x1d', '\x1e'}) {
    if (std::memchr(begin, c, text.size()) != nullptr) {
      return false;
    }
  }
  for (const char* at = begin; (at = static_cast<const char*>(std::memchr(at, '\xc2', end - at))) != nullptr; ++at) {
    if (at + 1 < end && static_cast<unsigned char>(at[1]) == 0x85) {
      return false;
    }
  }
  for (const char* at = begin; (at = static_cast<const char*>(std::memchr(at, '\xe2', end - at))) != nullptr; ++at) {
    if (at + 2 < end && static_cast<unsigned char>(at[1]) == 0x80 &&
        (static_cast<unsigned char>(at[2]) == 0xa8 || static_cast<unsigned char>(at[2]) == 0xa9)) {
      return false;
    }
  }
  return true;
}

std::size_t first_non_utf8(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    // ASCII eight bytes at a time: source is mostly ASCII, and a byte loop
    // was most of reading a module of megabytes.
    std::uint64_t word = 0;
    if (at + sizeof(word) <= text.size() && (std::memcpy(&word, text.data() + at, sizeof(word)), true) &&
        (word & 0x8080808080808080ULL) == 0) {
      at += sizeof(word);
      continue;
    }
    auto byte = static_cast<unsigned char>(text[at]);
    if (byte < 0x80) {
      ++at;
      continue;
    }
    std::size_t length = byte >= 0xC2 && byte <= 0xDF   ? 2
                         : byte >= 0xE0 && byte <= 0xEF ? 3
                         : byte >= 0xF0 && byte <= 0xF4 ? 4
                                                        : 0;
    if (length == 0 || at + length > text.size()) {
      return at;
    }
    auto second = static_cast<unsigned char>(text[at + 1]);
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (byte == 0xE0) {
      low = 0xA0;
    } else if (byte == 0xED) {
      high = 0x9F;
    } else if (byte == 0xF0) {
      low = 0x90;
    } else if (byte == 0xF4) {
      high = 0x8F;
    }
    if (second < low || second > high) {
      return at;
    }
    for (std::size_t i = 2; i < length; ++i) {
      if ((static_cast<unsigned char>(text[at + i]) & 0xC0) != 0x80) {
        return at;
      }
    }
    at += length;
  }
  return std::string_view::npos;
}

bool is_identifier(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(),
                                      [](unsigned char c) { return c == '_' || std::isalnum(c) != 0 || c >= 0x80; });
}

bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

}  // namespace pyhot::util
