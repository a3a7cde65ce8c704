#include "parser/serialize.hpp"

#include <xxhash.h>

#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

namespace pyhot::parser {

namespace {

// Layout, all integers in the writer's byte order (the magic tells another
// order apart), strings as a u32 length and their bytes:
//   magic u32, version u32, text XXH3-64 u64, text size u64, path,
//   definitions, statements, errors (each a u32 count, then the records),
//   XXH3-64 u64 of every byte before it.
constexpr std::uint32_t k_magic = 0x46534850;  // "PHSF"

// The smallest encoding of each record: a count larger than the bytes left
// could hold is corrupt, and must not become a huge allocation.
constexpr std::size_t k_min_definition = 3 * 4 + 1 + 4 + 4 + 4 + 4 * 4 + 4 * 4 + 1 + 4 + 4;
constexpr std::size_t k_min_parameter = 4 + 1 + 4 + 4;
constexpr std::size_t k_min_statement = 1 + 4 * 4 + 4 + 4 + 4 + 1;
constexpr std::size_t k_min_error = 4 + 4 + 4;
constexpr std::size_t k_min_string = 4;

// Definition's flags, one byte.
constexpr unsigned k_generator = 1U << 0U;
constexpr unsigned k_coroutine = 1U << 1U;
constexpr unsigned k_conditional = 1U << 2U;
constexpr unsigned k_main_guard = 1U << 3U;

class Writer {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    m_out.append(bytes, sizeof(T));
  }

  void put(std::string_view text) {
    put(static_cast<std::uint32_t>(text.size()));
    m_out.append(text);
  }

  void put(const std::vector<std::string>& strings) {
    put(static_cast<std::uint32_t>(strings.size()));
    for (const std::string& text : strings) {
      put(std::string_view(text));
    }
  }

  void put(const Range& range) {
    put(range.start_byte);
    put(range.end_byte);
    put(range.start_line);
    put(range.end_line);
  }

  std::string& out() { return m_out; }

 private:
  std::string m_out;
};

// Reads until the first failure; after that every read gives zeros and
// ok() stays false, so callers check once at the end of a record.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : m_bytes(bytes) {}

  bool ok() const { return m_ok; }
  std::size_t left() const { return m_bytes.size() - m_at; }

  template <typename T>
  T get() {
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

  std::string get_string() {
    auto size = get<std::uint32_t>();
    if (!m_ok || left() < size) {
      m_ok = false;
      return {};
    }
    std::string text(m_bytes.substr(m_at, size));
    m_at += size;
    return text;
  }

  // A count of records of at least `min_size` bytes each.
  std::uint32_t get_count(std::size_t min_size) {
    auto count = get<std::uint32_t>();
    if (!m_ok || count > left() / min_size) {
      m_ok = false;
      return 0;
    }
    return count;
  }

  std::vector<std::string> get_strings() {
    std::vector<std::string> strings(get_count(k_min_string));
    for (std::string& text : strings) {
      text = get_string();
    }
    return strings;
  }

  // An enum stored as a byte, checked against its last value.
  template <typename E>
  E get_enum(E last) {
    auto value = get<std::uint8_t>();
    if (value > static_cast<std::uint8_t>(last)) {
      m_ok = false;
      return E{};
    }
    return static_cast<E>(value);
  }

  // A range must lie in the text: users slice the text with it.
  Range get_range(std::size_t text_size) {
    Range range;
    range.start_byte = get<std::uint32_t>();
    range.end_byte = get<std::uint32_t>();
    range.start_line = get<std::uint32_t>();
    range.end_line = get<std::uint32_t>();
    if (range.start_byte > range.end_byte || range.end_byte > text_size) {
      m_ok = false;
    }
    return range;
  }

 private:
  std::string_view m_bytes;
  std::size_t m_at = 0;
  bool m_ok = true;
};

Error corrupt(const std::string& what) { return make_error(ErrorKind::protocol, "serialized SourceFile: " + what); }

}  // namespace

std::string serialize(const SourceFile& file) {
  Writer writer;
  writer.out().reserve(file.text.size() / 2 + 1024);
  writer.put(k_magic);
  writer.put(k_serialized_format_version);
  writer.put(static_cast<std::uint64_t>(XXH3_64bits(file.text.data(), file.text.size())));
  writer.put(static_cast<std::uint64_t>(file.text.size()));
  writer.put(std::string_view(file.path));

  writer.put(static_cast<std::uint32_t>(file.definitions.size()));
  for (const Definition& definition : file.definitions) {
    writer.put(std::string_view(definition.name));
    writer.put(std::string_view(definition.qualname));
    writer.put(std::string_view(definition.parent_qualname));
    writer.put(static_cast<std::uint8_t>(definition.kind));
    writer.put(definition.decorators);
    writer.put(static_cast<std::uint32_t>(definition.parameters.size()));
    for (const Parameter& parameter : definition.parameters) {
      writer.put(std::string_view(parameter.name));
      writer.put(static_cast<std::uint8_t>(parameter.kind));
      writer.put(std::string_view(parameter.default_text));
      writer.put(std::string_view(parameter.annotation_text));
    }
    writer.put(std::string_view(definition.bases_text));
    writer.put(definition.range);
    writer.put(definition.def_line);
    writer.put(definition.def_byte);
    writer.put(definition.body_byte);
    writer.put(definition.indent);
    auto flags = static_cast<std::uint8_t>(
        (definition.is_generator ? k_generator : 0U) | (definition.is_coroutine ? k_coroutine : 0U) |
        (definition.conditional ? k_conditional : 0U) | (definition.in_main_guard ? k_main_guard : 0U));
    writer.put(flags);
    writer.put(definition.free_variables);
    writer.put(static_cast<std::int32_t>(definition.parent));
  }

  writer.put(static_cast<std::uint32_t>(file.statements.size()));
  for (const Statement& statement : file.statements) {
    writer.put(static_cast<std::uint8_t>(statement.kind));
    writer.put(statement.range);
    writer.put(std::string_view(statement.text));
    writer.put(std::string_view(statement.scope_qualname));
    writer.put(statement.targets);
    writer.put(static_cast<std::uint8_t>(statement.conditional ? 1 : 0));
  }

  writer.put(static_cast<std::uint32_t>(file.errors.size()));
  for (const SyntaxError& error : file.errors) {
    writer.put(error.line);
    writer.put(error.column);
    writer.put(std::string_view(error.message));
  }

  const std::string& out = writer.out();
  writer.put(static_cast<std::uint64_t>(XXH3_64bits(out.data(), out.size())));
  return std::move(writer.out());
}

Result<SourceFile> deserialize(std::string_view bytes, std::string_view text) {
  if (bytes.size() < sizeof(std::uint64_t)) {
    return corrupt("truncated");
  }
  std::string_view payload = bytes.substr(0, bytes.size() - sizeof(std::uint64_t));
  Reader header(bytes);
  if (header.get<std::uint32_t>() != k_magic) {
    return corrupt("not a serialized SourceFile");
  }
  if (header.get<std::uint32_t>() != k_serialized_format_version) {
    return corrupt("written by another format version");
  }
  std::uint64_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + payload.size(), sizeof(checksum));
  if (checksum != XXH3_64bits(payload.data(), payload.size())) {
    return corrupt("checksum mismatch (corrupt or truncated)");
  }

  Reader reader(payload);
  reader.get<std::uint32_t>();
  reader.get<std::uint32_t>();
  auto text_hash = reader.get<std::uint64_t>();
  auto text_size = reader.get<std::uint64_t>();
  if (!reader.ok() || text_size != text.size() || text_hash != XXH3_64bits(text.data(), text.size())) {
    return corrupt("written for a different text");
  }

  SourceFile file;
  file.path = reader.get_string();
  file.text = std::string(text);

  file.definitions.resize(reader.get_count(k_min_definition));
  for (std::size_t i = 0; i < file.definitions.size(); ++i) {
    Definition& definition = file.definitions[i];
    definition.name = reader.get_string();
    definition.qualname = reader.get_string();
    definition.parent_qualname = reader.get_string();
    definition.kind = reader.get_enum(DefinitionKind::property);
    definition.decorators = reader.get_strings();
    definition.parameters.resize(reader.get_count(k_min_parameter));
    for (Parameter& parameter : definition.parameters) {
      parameter.name = reader.get_string();
      parameter.kind = reader.get_enum(Parameter::Kind::var_keyword);
      parameter.default_text = reader.get_string();
      parameter.annotation_text = reader.get_string();
    }
    definition.bases_text = reader.get_string();
    definition.range = reader.get_range(text.size());
    definition.def_line = reader.get<std::uint32_t>();
    definition.def_byte = reader.get<std::uint32_t>();
    definition.body_byte = reader.get<std::uint32_t>();
    definition.indent = reader.get<std::uint32_t>();
    auto flags = reader.get<std::uint8_t>();
    definition.is_generator = (flags & k_generator) != 0U;
    definition.is_coroutine = (flags & k_coroutine) != 0U;
    definition.conditional = (flags & k_conditional) != 0U;
    definition.in_main_guard = (flags & k_main_guard) != 0U;
    definition.free_variables = reader.get_strings();
    definition.parent = reader.get<std::int32_t>();
    // Parents come before their children (pre-order).
    if (!reader.ok() || definition.parent < -1 || definition.parent >= static_cast<int>(i) ||
        definition.def_byte > text.size() || definition.body_byte > text.size() ||
        (flags & ~(k_generator | k_coroutine | k_conditional | k_main_guard)) != 0U) {
      return corrupt("bad definition record");
    }
  }

  file.statements.resize(reader.get_count(k_min_statement));
  for (Statement& statement : file.statements) {
    statement.kind = reader.get_enum(Statement::Kind::other);
    statement.range = reader.get_range(text.size());
    statement.text = reader.get_string();
    statement.scope_qualname = reader.get_string();
    statement.targets = reader.get_strings();
    auto conditional = reader.get<std::uint8_t>();
    statement.conditional = conditional != 0;
    if (!reader.ok() || conditional > 1) {
      return corrupt("bad statement record");
    }
  }

  file.errors.resize(reader.get_count(k_min_error));
  for (SyntaxError& error : file.errors) {
    error.line = reader.get<std::uint32_t>();
    error.column = reader.get<std::uint32_t>();
    error.message = reader.get_string();
  }
  if (!reader.ok()) {
    return corrupt("bad record");
  }
  if (reader.left() != 0) {
    return corrupt("trailing bytes");
  }
  return file;
}

}  // namespace pyhot::parser
