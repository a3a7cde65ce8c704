// The wire format between pyhot and the agent: a 4-byte big-endian length,
// then that many bytes of UTF-8 JSON (loader/PROTOCOL.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pyhot::loader {

inline constexpr std::uint32_t k_max_frame_bytes = 64U << 20;
inline constexpr int k_protocol_version = 1;

std::string encode_frame(std::string_view payload);

// Reads the length prefix; nullopt when it announces more than k_max_frame_bytes.
std::optional<std::uint32_t> decode_frame_length(const unsigned char header[4]);

}  // namespace pyhot::loader
