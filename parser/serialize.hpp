// A SourceFile as compact bytes, so a SourceFile parsed once can be loaded
// again (a cache on disk) instead of parsing its text a second time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "parser/source_file.hpp"
#include "util/result.hpp"

namespace pyhot::parser {

// Bump whenever SourceFile or what the parser puts in it changes: bytes
// written by another version are rejected, never read as if they were current.
inline constexpr std::uint32_t k_serialized_format_version = 3;

// Everything in the SourceFile except its text, which only leaves its
// XXH3-64 and size: whoever loads it has the text already.
std::string serialize(const SourceFile& file);

// The same bytes handed to `write` in pieces as they are made (false when
// `write` gave false), with `text_hash` the text's XXH3-64 (util::hash64),
// which the caller has computed already.
bool serialize(const SourceFile& file, std::uint64_t text_hash, const std::function<bool(std::string_view)>& write);

// The SourceFile serialize() wrote, with `text` as its text. Fails when the
// bytes are truncated or corrupt (a checksum covers them), come from another
// format version, or were written for a different text.
Result<SourceFile> deserialize(std::string_view bytes, std::string_view text);

// The same, the SourceFile taking `text` over instead of copying it (a
// module's text is megabytes; a copy costs a page fault per 4 KiB).
Result<SourceFile> deserialize(std::string_view bytes, std::string&& text);

}  // namespace pyhot::parser
