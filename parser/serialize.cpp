#include "parser/serialize.hpp"

#include "parser/record_io.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace pyhot::parser {

namespace {

using record_io::Reader;
using record_io::Writer;

// Layout, all integers in the writer's byte order (the magic tells another
// order apart), strings as a u32 length and their bytes, enums and bools as
// one byte, vectors as a u32 count and their elements, records as their
// fields() in order:
//   magic u32, version u32, text XXH3-64 u64, text size u64, path,
//   definitions, statements, errors,
//   XXH3-64 u64 of every byte before it.
constexpr std::uint32_t k_magic = 0x46534850;  // "PHSF"

Error corrupt(const std::string& what) { return make_error(ErrorKind::protocol, "serialized SourceFile: " + what); }

}  // namespace

bool serialize(const SourceFile& file, std::uint64_t text_hash, const std::function<bool(std::string_view)>& write) {
  Writer writer(write);
  writer.put_raw(k_magic);
  writer.put_raw(k_serialized_format_version);
  writer.put_raw(text_hash);
  writer.put_raw(static_cast<std::uint64_t>(file.text.size()));
  writer.put(file.path);
  writer.put(file.definitions);
  writer.put(file.statements);
  writer.put(file.errors);
  return writer.finish();
}

std::string serialize(const SourceFile& file) {
  std::string out;
  // About as many bytes as the text for ordinary code: growing by doubling
  // would copy the whole buffer again.
  out.reserve(file.text.size() + 1024);
  serialize(file, XXH3_64bits(file.text.data(), file.text.size()), [&](std::string_view bytes) {
    out.append(bytes);
    return true;
  });
  return out;
}

Result<SourceFile> deserialize(std::string_view bytes, std::string_view text) {
  return deserialize(bytes, std::string(text));
}

Result<SourceFile> deserialize(std::string_view bytes, std::string&& text) {
  if (bytes.size() < sizeof(std::uint64_t)) {
    return corrupt("truncated");
  }
  std::string_view payload = bytes.substr(0, bytes.size() - sizeof(std::uint64_t));
  Reader header(bytes, text.size());
  if (header.get_raw<std::uint32_t>() != k_magic) {
    return corrupt("not a serialized SourceFile");
  }
  if (header.get_raw<std::uint32_t>() != k_serialized_format_version) {
    return corrupt("written by another format version");
  }
  std::uint64_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + payload.size(), sizeof(checksum));
  if (checksum != XXH3_64bits(payload.data(), payload.size())) {
    return corrupt("checksum mismatch (corrupt or truncated)");
  }

  Reader reader(payload, text.size());
  reader.get_raw<std::uint32_t>();
  reader.get_raw<std::uint32_t>();
  auto text_hash = reader.get_raw<std::uint64_t>();
  auto text_size = reader.get_raw<std::uint64_t>();
  if (!reader.ok() || text_size != text.size() || text_hash != XXH3_64bits(text.data(), text.size())) {
    return corrupt("written for a different text");
  }

  SourceFile file;
  reader.get(file.path);
  file.text = std::move(text);
  reader.get(file.definitions);
  reader.get(file.statements);
  reader.get(file.errors);
  if (!reader.ok()) {
    return corrupt("bad record");
  }
  if (reader.left() != 0) {
    return corrupt("trailing bytes");
  }
  return file;
}

}  // namespace pyhot::parser
