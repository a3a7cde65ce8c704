#include "loader/frame.hpp"

namespace pyhot::loader {

std::string encode_frame(std::string_view payload) {
  auto size = static_cast<std::uint32_t>(payload.size());
  std::string frame;
  frame.reserve(payload.size() + 4);
  frame.push_back(static_cast<char>((size >> 24) & 0xff));
  frame.push_back(static_cast<char>((size >> 16) & 0xff));
  frame.push_back(static_cast<char>((size >> 8) & 0xff));
  frame.push_back(static_cast<char>(size & 0xff));
  frame.append(payload);
  return frame;
}

std::optional<std::uint32_t> decode_frame_length(const unsigned char header[4]) {
  std::uint32_t size = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                       (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
  if (size > k_max_frame_bytes) {
    return std::nullopt;
  }
  return size;
}

}  // namespace pyhot::loader
