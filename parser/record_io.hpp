// Internal to parser/ and the parsed cache (patch/parsed_cache.cpp): the
// byte layout of SourceFile records. Integers in the writer's byte order,
// strings as a u32 length and their bytes, enums and bools as one byte,
// vectors as a u32 count and their elements, records as their fields() in
// order.
#pragma once

// For XXH3_state_t in the Writer.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "parser/source_file.hpp"

namespace pyhot::parser::record_io {

// The last value of each enum: a byte beyond it is corrupt.
constexpr std::uint8_t last_value(DefinitionKind) { return static_cast<std::uint8_t>(DefinitionKind::property); }
constexpr std::uint8_t last_value(Parameter::Kind) { return static_cast<std::uint8_t>(Parameter::Kind::var_keyword); }
constexpr std::uint8_t last_value(Statement::Kind) { return static_cast<std::uint8_t>(Statement::Kind::other); }

template <typename T>
concept Record = requires(T& record) {
  T::fields(record);
};

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// The fewest bytes a T takes: a count larger than the bytes left could hold
// is corrupt, and must not become a huge allocation.
template <typename T>
std::size_t min_size() {
  if constexpr (std::is_same_v<T, bool> || std::is_enum_v<T>) {
    return 1;
  } else if constexpr (std::is_integral_v<T>) {
    return sizeof(T);
  } else if constexpr (std::is_same_v<T, std::string> || IsVector<T>::value) {
    return sizeof(std::uint32_t);
  } else {
    static_assert(Record<T>);
    T record{};
    return std::apply([](auto&... field) { return (min_size<std::decay_t<decltype(field)>>() + ...); },
                      T::fields(record));
  }
}

// Writes through a buffer of its own, handed to `write` whenever it is
// full: std::string::append per field (a capacity check and a call for each
// of the ~20 fields of every definition) was most of serializing a
// 20,000-definition file, and a buffer of the whole result is megabytes of
// fresh memory, a page fault per 4 KiB. The checksum is computed as the
// bytes go.
class Writer {
 public:
  // Without `checksummed`, finish() writes no checksum (the caller keeps its own).
  explicit Writer(const std::function<bool(std::string_view)>& write, bool checksummed = true,
                  std::size_t buffer_size = k_buffer_size)
      : m_write(write), m_buffer(buffer_size, '\0'), m_checksummed(checksummed) {
    XXH3_64bits_reset(&m_checksum);
  }

  template <typename T>
  void put(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      put_raw(static_cast<std::uint8_t>(value ? 1 : 0));
    } else if constexpr (std::is_enum_v<T>) {
      put_raw(static_cast<std::uint8_t>(value));
    } else if constexpr (std::is_integral_v<T>) {
      put_raw(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      put_raw(static_cast<std::uint32_t>(value.size()));
      put_bytes(value.data(), value.size());
    } else if constexpr (IsVector<T>::value) {
      put_raw(static_cast<std::uint32_t>(value.size()));
      for (const auto& element : value) {
        put(element);
      }
    } else {
      // [&], not [this]: clang 14 takes `this` for unused in the fold (-Wunused-lambda-capture).
      std::apply([&](const auto&... field) { (put(field), ...); }, T::fields(value));
    }
  }

  template <typename T>
  void put_raw(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    reserve(sizeof(T));
    std::memcpy(m_buffer.data() + m_at, &value, sizeof(T));  // a fixed size: a move, not a call
    m_at += sizeof(T);
    m_written += sizeof(T);
  }

  void put_bytes(const char* bytes, std::size_t size) {
    if (size == 0) {
      return;
    }
    m_written += size;
    if (size > m_buffer.size() / 2) {  // a long statement: past the buffer
      flush();
      if (m_checksummed) {
        XXH3_64bits_update(&m_checksum, bytes, size);
      }
      m_ok = m_ok && m_write(std::string_view(bytes, size));
      return;
    }
    reserve(size);
    std::memcpy(m_buffer.data() + m_at, bytes, size);
    m_at += size;
  }

  // Bytes put so far.
  std::size_t written() const { return m_written; }

  // Ends with the checksum of every byte before it; false when a write failed.
  bool finish() {
    flush();
    if (!m_checksummed) {
      return m_ok;
    }
    put_raw(static_cast<std::uint64_t>(XXH3_64bits_digest(&m_checksum)));
    m_ok = m_ok && m_write(std::string_view(m_buffer.data(), m_at));
    return m_ok;
  }

 private:
  static constexpr std::size_t k_buffer_size = 256 * 1024;

  void reserve(std::size_t size) {
    if (m_buffer.size() - m_at < size) [[unlikely]] {
      flush();
    }
  }

  [[gnu::noinline]] void flush() {
    if (m_checksummed) {
      XXH3_64bits_update(&m_checksum, m_buffer.data(), m_at);
    }
    m_ok = m_ok && m_write(std::string_view(m_buffer.data(), m_at));
    m_at = 0;
  }

  const std::function<bool(std::string_view)>& m_write;
  std::string m_buffer;
  std::size_t m_at = 0;
  std::size_t m_written = 0;
  XXH3_state_t m_checksum;
  bool m_checksummed = true;
  bool m_ok = true;
};

// Reads until the first failure; after that every read gives zeros and
// ok() stays false, so callers check once at the end of a record.
class Reader {
 public:
  Reader(std::string_view bytes, std::size_t text_size) : m_bytes(bytes), m_text_size(text_size) {}

  bool ok() const { return m_ok; }
  std::size_t left() const { return m_bytes.size() - m_at; }
  void fail() { m_ok = false; }

  template <typename T>
  T get_raw() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    if (!m_ok || left() < sizeof(T)) {
      m_ok = false;
      return value;
    }
    std::memcpy(&value, m_bytes.data() + m_at, sizeof(T));
    m_at += sizeof(T);
    return value;
  }

  template <typename T>
  void get(T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      auto byte = get_raw<std::uint8_t>();
      m_ok = m_ok && byte <= 1;
      value = byte == 1;
    } else if constexpr (std::is_enum_v<T>) {
      auto byte = get_raw<std::uint8_t>();
      m_ok = m_ok && byte <= last_value(T{});
      value = m_ok ? static_cast<T>(byte) : T{};
    } else if constexpr (std::is_integral_v<T>) {
      value = get_raw<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      auto size = get_raw<std::uint32_t>();
      if (!m_ok || left() < size) {
        m_ok = false;
        return;
      }
      if (size != 0) {  // most optional texts are empty: no call for them
        value.assign(m_bytes.data() + m_at, size);
      }
      m_at += size;
    } else if constexpr (IsVector<T>::value) {
      auto count = get_raw<std::uint32_t>();
      if (!m_ok || count > left() / min_size<typename T::value_type>()) {
        m_ok = false;
        return;
      }
      value.resize(count);
      for (std::size_t i = 0; i < value.size() && m_ok; ++i) {
        get(value[i]);
        check(value[i], i);
      }
    } else {
      std::apply([&](auto&... field) { (get(field), ...); }, T::fields(value));
      if constexpr (std::is_same_v<T, Range>) {
        // A range must lie in the text: users slice the text with it.
        m_ok = m_ok && value.start_byte <= value.end_byte && value.end_byte <= m_text_size;
      }
    }
  }

 private:
  // What a record must hold beyond its fields' own checks; `index` is its place in its vector.
  template <typename T>
  void check(const T& value, std::size_t index) {
    if constexpr (std::is_same_v<T, Definition>) {
      // Parents come before their children (pre-order).
      m_ok = m_ok && value.parent >= -1 && value.parent < static_cast<int>(index) && value.def_byte <= m_text_size &&
             value.body_byte <= m_text_size;
    }
  }

  std::string_view m_bytes;
  std::size_t m_text_size = 0;
  std::size_t m_at = 0;
  bool m_ok = true;
};

}  // namespace pyhot::parser::record_io
