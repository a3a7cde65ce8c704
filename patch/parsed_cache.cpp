#include "patch/parsed_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <optional>
#include <string_view>
#include <vector>

#include "differ/differ.hpp"
#include "parser/record_io.hpp"
#include "parser/serialize.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

namespace {

// Enough for every module an engineer edits in a day; older entries go.
constexpr std::size_t k_max_entries = 256;
// ".bin" entries (without their text) and ".parsed" ones (a serialized
// SourceFile after the text) were earlier formats.
constexpr const char* k_extension = ".entry";

std::string cache_directory() {
  if (const char* dir = std::getenv("PYHOT_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/pyhot/parsed";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/pyhot/parsed";
  }
  return *ParsedCache::shared_directory() + "/parsed";
}

void evict_oldest(const std::string& directory) {
  std::error_code ec;
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> entries;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    if (entry.path().extension() == k_extension) {
      entries.emplace_back(entry.last_write_time(ec), entry.path());
    } else if (entry.path().extension() == ".parsed" || entry.path().extension() == ".bin") {
      std::filesystem::remove(entry.path(), ec);  // an earlier format: never read again
    }
  }
  if (entries.size() <= k_max_entries) {
    return;
  }
  std::sort(entries.begin(), entries.end());
  for (std::size_t i = 0; i + k_max_entries < entries.size(); ++i) {
    std::filesystem::remove(entries[i].second, ec);
  }
}

constexpr std::uint32_t k_magic = 0x43485050;  // "PPHC"
// Bump whenever the layout or what the parser puts in a SourceFile changes.
constexpr std::uint32_t k_version = 4 + parser::k_serialized_format_version * 100;
constexpr std::uint32_t k_by_span = 1;
// What is known of the text, so that a reload from it scans only what changed.
constexpr std::uint32_t k_newline_breaks_only = 2;  // util::only_newline_breaks
constexpr std::uint32_t k_utf8 = 4;                 // util::first_non_utf8 finds nothing

std::uint32_t text_flags(std::string_view text) {
  return (util::only_newline_breaks(text) ? k_newline_breaks_only : 0) |
         (util::first_non_utf8(text) == std::string_view::npos ? k_utf8 : 0);
}

// At the end of an entry, before the checksum (XXH3-64 of every byte from the extents on).
struct Trailer {
  std::uint32_t magic = k_magic;
  std::uint32_t version = k_version;
  std::uint64_t text_hash = 0;
  std::uint64_t text_size = 0;
  std::uint64_t record_bytes = 0;
  std::uint32_t item_count = 0;
  std::uint32_t flags = 0;
  std::uint32_t qualname_slots = 0;
  std::uint32_t qualname_used = 0;
  std::uint32_t key_slots = 0;
  std::uint32_t key_used = 0;
  std::uint32_t definition_count = 0;
  std::uint32_t statement_count = 0;
};

std::size_t align8(std::size_t offset) { return (offset + 7) & ~std::size_t{7}; }

// Where each part of an entry starts, from its trailer.
struct Layout {
  std::size_t records = 0, items = 0, meta = 0, qualnames = 0, keys = 0, trailer = 0;

  explicit Layout(const Trailer& t) {
    records = align8(t.text_size);
    items = align8(records + t.record_bytes);
    meta = align8(items + t.item_count * sizeof(parser::TopLevelStatement));
    qualnames = align8(meta + t.item_count * sizeof(EntryRecords));
    keys = qualnames + t.qualname_slots * sizeof(KeyCount);
    trailer = keys + t.key_slots * sizeof(KeyCount);
  }
};

// Every byte of `bytes` to `fd`, or false.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

// The slot of `key` in a table of a power-of-two size: where it is, or the
// empty slot it would take.
std::uint32_t tag_of(std::uint64_t key) { return static_cast<std::uint32_t>(key >> 32) | 1; }

std::size_t slot_of(std::span<const KeyCount> table, std::uint64_t key) {
  const std::size_t mask = table.size() - 1;
  const std::uint32_t tag = tag_of(key);
  std::size_t slot = static_cast<std::size_t>(key) & mask;
  while (table[slot].tag != 0 && table[slot].tag != tag) {
    slot = (slot + 1) & mask;
  }
  return slot;
}

// Adds `delta` to the count of `key`; false when the table would be more than half full.
bool add_key(std::vector<KeyCount>& table, std::uint32_t& used, std::uint64_t key, int delta) {
  KeyCount& slot = table[slot_of(table, key)];
  if (slot.tag == 0) {
    if ((used + 1) * 2 > table.size() || delta < 0) {
      return false;
    }
    slot.tag = tag_of(key);
    ++used;
  }
  if (delta < 0 && slot.count < static_cast<std::uint32_t>(-delta)) {
    return false;
  }
  slot.count = static_cast<std::uint32_t>(static_cast<std::int64_t>(slot.count) + delta);
  return true;
}

std::vector<KeyCount> table_for(std::size_t keys) {
  return std::vector<KeyCount>(std::bit_ceil(std::max<std::size_t>(64, 2 * (keys + 64))));
}

// A top-level statement's records with offsets relative to it: byte 0 is
// its first byte, line 1 its first line, parents index its own definitions.
struct ItemRecords {
  std::vector<parser::Definition> definitions;
  std::vector<parser::Statement> statements;
};

void move_records(ItemRecords& records, std::uint32_t bytes, std::uint32_t lines, int parents) {
  for (auto& definition : records.definitions) {
    parser::shift(definition, bytes, lines);
    if (definition.parent >= 0) {
      definition.parent += parents;
    }
  }
  for (auto& statement : records.statements) {
    parser::shift(statement.range, bytes, lines);
  }
}

bool is_module_context(const parser::Statement& statement) {
  using Kind = parser::Statement::Kind;
  return statement.scope_qualname.empty() &&
         (statement.kind == Kind::import || statement.kind == Kind::future_import || statement.kind == Kind::other);
}

// `file`'s records grouped by top-level statement (items): false when a
// record lies in none, or out of order, or its parent in another.
bool group_by_item(const parser::SourceFile& file, std::span<const parser::TopLevelStatement> items,
                   std::vector<ItemRecords>& out) {
  out.assign(items.size(), {});
  auto item_of = [&](std::uint32_t offset, std::size_t at_least) -> std::optional<std::size_t> {
    auto after =
        std::upper_bound(items.begin(), items.end(), offset,
                         [](std::uint32_t byte, const parser::TopLevelStatement& item) { return byte < item.start; });
    if (after == items.begin()) {
      return std::nullopt;
    }
    auto index = static_cast<std::size_t>(after - items.begin()) - 1;
    if (index < at_least || offset > items[index].end) {
      return std::nullopt;
    }
    return index;
  };
  std::size_t item = 0;
  std::vector<int> first_definition(items.size(), -1);
  for (std::size_t i = 0; i < file.definitions.size(); ++i) {
    const auto& definition = file.definitions[i];
    auto at = item_of(definition.range.start_byte, item);
    if (!at) {
      return false;
    }
    item = *at;
    if (first_definition[item] < 0) {
      first_definition[item] = static_cast<int>(i);
    }
    if (definition.parent >= 0 && definition.parent < first_definition[item]) {
      return false;
    }
    parser::Definition& moved = out[item].definitions.emplace_back(definition);
    if (moved.parent >= 0) {
      moved.parent -= first_definition[item];
    }
  }
  item = 0;
  for (const auto& statement : file.statements) {
    auto at = item_of(statement.range.start_byte, item);
    if (!at) {
      return false;
    }
    item = *at;
    out[item].statements.push_back(statement);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    move_records(out[i], -items[i].start, -(items[i].line - 1), 0);
  }
  return true;
}

std::uint32_t context_flags(const ItemRecords& records) {
  return std::any_of(records.statements.begin(), records.statements.end(), is_module_context) ? k_module_context : 0;
}

// Writes an entry in order. The checksum covers what is read whole on every
// load (the extents, the records' places and checksums, the tables, the
// trailer); each top-level statement's records have their own, checked only
// when they are decoded, and the text is checked against its hash.
class EntryWriter {
 public:
  explicit EntryWriter(int fd) : m_fd(fd) {}

  void bytes(std::string_view bytes) {
    m_ok = m_ok && write_all(m_fd, bytes);
    m_written += bytes.size();
  }
  void pad() {
    static constexpr char k_zeros[8] = {};
    bytes(std::string_view(k_zeros, align8(m_written) - m_written));
  }
  std::size_t written() const { return m_written; }
  bool finish() const { return m_ok; }

 private:
  int m_fd;
  std::size_t m_written = 0;
  bool m_ok = true;
};

// Each top-level statement's records serialized, and where each went.
struct EncodedRecords {
  std::string bytes;
  std::vector<EntryRecords> places;
};

EncodedRecords encode_records(const std::vector<ItemRecords>& grouped) {
  EncodedRecords encoded;
  const std::function<bool(std::string_view)> append = [&](std::string_view bytes) {
    encoded.bytes.append(bytes);
    return true;
  };
  parser::record_io::Writer writer(append, /*checksummed=*/false, 64 * 1024);
  encoded.places.resize(grouped.size());
  for (std::size_t i = 0; i < grouped.size(); ++i) {
    encoded.places[i].offset = static_cast<std::uint32_t>(writer.written());
    writer.put(grouped[i].definitions);
    writer.put(grouped[i].statements);
    encoded.places[i].size = static_cast<std::uint32_t>(writer.written()) - encoded.places[i].offset;
    encoded.places[i].flags = context_flags(grouped[i]);
  }
  writer.finish();
  for (auto& place : encoded.places) {
    place.checksum = util::hash64(std::string_view(encoded.bytes).substr(place.offset, place.size));
  }
  return encoded;
}

// The parts after the records through the trailer, and their checksum.
void write_tail(EntryWriter& writer, std::span<const parser::TopLevelStatement> items,
                std::span<const EntryRecords> places, std::span<const KeyCount> qualnames,
                std::span<const KeyCount> keys, const Trailer& trailer) {
  writer.pad();
  std::string tail;
  auto add = [&](const void* data, std::size_t size) { tail.append(static_cast<const char*>(data), size); };
  auto pad = [&] { tail.append(align8(writer.written() + tail.size()) - writer.written() - tail.size(), '\0'); };
  tail.reserve(items.size_bytes() + places.size_bytes() + qualnames.size_bytes() + keys.size_bytes() + 64);
  add(items.data(), items.size_bytes());
  pad();
  add(places.data(), places.size_bytes());
  pad();
  add(qualnames.data(), qualnames.size_bytes());
  add(keys.data(), keys.size_bytes());
  add(&trailer, sizeof(trailer));
  const std::uint64_t checksum = util::hash64(tail);
  add(&checksum, sizeof(checksum));
  writer.bytes(tail);
}

// Writes `fill(writer)` to `final_path` through a temporary file and a rename.
template <typename Fill>
bool write_entry_file(const std::string& directory, const std::string& final_path, Fill fill) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  std::string temporary = final_path + ".tmp" + std::to_string(getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return false;
  }
  bool ok = false;
  {
    EntryWriter writer(fd);
    ok = fill(writer) && writer.finish();
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::filesystem::remove(temporary, ec);
    return false;
  }
  std::filesystem::rename(temporary, final_path, ec);
  evict_oldest(directory);
  return !ec;
}

}  // namespace

std::uint64_t qualname_key(std::string_view qualname) { return util::hash64(qualname); }

std::uint32_t count_of(std::span<const KeyCount> table, std::uint64_t key) {
  if (table.empty()) {
    return 0;
  }
  return table[slot_of(table, key)].count;
}

CachedEntry::CachedEntry(CachedEntry&& other) noexcept
    : m_bytes(other.m_bytes),
      m_text(other.m_text),
      m_record_bytes(other.m_record_bytes),
      m_items(other.m_items),
      m_records(other.m_records),
      m_qualnames(other.m_qualnames),
      m_statement_keys(other.m_statement_keys),
      m_text_hash(other.m_text_hash),
      m_definition_count(other.m_definition_count),
      m_statement_count(other.m_statement_count),
      m_qualnames_used(other.m_qualnames_used),
      m_keys_used(other.m_keys_used),
      m_by_span(other.m_by_span),
      m_newline_breaks_only(other.m_newline_breaks_only),
      m_utf8(other.m_utf8) {
  other.m_bytes = {};
}

CachedEntry::~CachedEntry() {
  if (!m_bytes.empty()) {
    ::munmap(const_cast<char*>(m_bytes.data()), m_bytes.size());
  }
}

std::optional<CachedEntry> CachedEntry::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  CachedEntry entry;
  struct stat status {};
  if (::fstat(fd, &status) == 0 && status.st_size > 0) {
    // Read in up front (MAP_POPULATE): one call instead of a fault per page.
    void* at = ::mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (at != MAP_FAILED) {
      entry.m_bytes = std::string_view(static_cast<const char*>(at), static_cast<std::size_t>(status.st_size));
    }
  }
  ::close(fd);
  if (!entry.parse()) {
    return std::nullopt;
  }
  return entry;
}

// Checks the checksum and the trailer and finds the parts; false when
// the entry is truncated, corrupt or of another version.
bool CachedEntry::parse() {
  const std::string_view bytes = m_bytes;
  if (bytes.size() < sizeof(Trailer) + sizeof(std::uint64_t)) {
    return false;
  }
  const std::size_t trailer_at = bytes.size() - sizeof(std::uint64_t) - sizeof(Trailer);
  Trailer trailer;
  std::memcpy(&trailer, bytes.data() + trailer_at, sizeof(trailer));
  std::uint64_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + bytes.size() - sizeof(checksum), sizeof(checksum));
  if (trailer.magic != k_magic || trailer.version != k_version || trailer.text_size >= 0xFFFFFFF0U ||
      trailer.record_bytes >= 0xFFFFFFF0U || (trailer.qualname_slots & (trailer.qualname_slots - 1)) != 0 ||
      (trailer.key_slots & (trailer.key_slots - 1)) != 0 || trailer.item_count > bytes.size() ||
      trailer.qualname_slots > bytes.size() || trailer.key_slots > bytes.size()) {
    return false;
  }
  const Layout layout(trailer);
  if (layout.trailer != trailer_at ||
      checksum != util::hash64(bytes.substr(layout.items, bytes.size() - sizeof(checksum) - layout.items))) {
    return false;
  }
  m_text = bytes.substr(0, trailer.text_size);
  if (util::hash64(m_text) != trailer.text_hash) {
    return false;  // the entry is named by this hash: a text that differs from it is corrupt
  }
  m_record_bytes = bytes.substr(layout.records, trailer.record_bytes);
  // The mapping is page-aligned and every array starts at a multiple of 8.
  m_items = {reinterpret_cast<const parser::TopLevelStatement*>(bytes.data() + layout.items), trailer.item_count};
  m_records = {reinterpret_cast<const EntryRecords*>(bytes.data() + layout.meta), trailer.item_count};
  m_qualnames = {reinterpret_cast<const KeyCount*>(bytes.data() + layout.qualnames), trailer.qualname_slots};
  m_statement_keys = {reinterpret_cast<const KeyCount*>(bytes.data() + layout.keys), trailer.key_slots};
  m_text_hash = trailer.text_hash;
  m_definition_count = trailer.definition_count;
  m_statement_count = trailer.statement_count;
  m_qualnames_used = trailer.qualname_used;
  m_keys_used = trailer.key_used;
  m_by_span = (trailer.flags & k_by_span) != 0;
  m_newline_breaks_only = (trailer.flags & k_newline_breaks_only) != 0;
  m_utf8 = (trailer.flags & k_utf8) != 0;
  for (std::size_t i = 0; i < m_items.size(); ++i) {
    // Cheap, and what decode() and the items' users rely on.
    if (m_items[i].start > m_items[i].end || m_items[i].end > m_text.size() ||
        (i > 0 && m_items[i].start < m_items[i - 1].end) || m_records[i].offset > m_record_bytes.size() ||
        m_records[i].size > m_record_bytes.size() - m_records[i].offset) {
      return false;
    }
  }
  return m_qualnames.size() >= 2 && m_statement_keys.size() >= 2;
}

bool CachedEntry::decode(std::size_t first, std::size_t end, parser::SourceFile& file) const {
  for (std::size_t i = first; i < end && i < m_items.size(); ++i) {
    const parser::TopLevelStatement& item = m_items[i];
    const std::string_view bytes = m_record_bytes.substr(m_records[i].offset, m_records[i].size);
    if (util::hash64(bytes) != m_records[i].checksum) {
      return false;
    }
    parser::record_io::Reader reader(bytes, m_text.size() - item.start);
    ItemRecords records;
    reader.get(records.definitions);
    reader.get(records.statements);
    if (!reader.ok() || reader.left() != 0) {
      return false;
    }
    move_records(records, item.start, item.line - 1, static_cast<int>(file.definitions.size()));
    std::move(records.definitions.begin(), records.definitions.end(), std::back_inserter(file.definitions));
    std::move(records.statements.begin(), records.statements.end(), std::back_inserter(file.statements));
  }
  return true;
}

std::optional<parser::SourceFile> CachedEntry::source_file(const std::string& path) const {
  parser::SourceFile file;
  file.path = path;
  file.text = std::string(m_text);
  file.definitions.reserve(m_definition_count);
  file.statements.reserve(m_statement_count);
  if (!decode(0, m_items.size(), file) || file.definitions.size() != m_definition_count ||
      file.statements.size() != m_statement_count) {
    return std::nullopt;
  }
  return file;
}

ParsedCache::ParsedCache() : m_directory(cache_directory()) {}

std::optional<std::string> ParsedCache::shared_directory() {
  for (const char* name : {"PYHOT_CACHE_DIR", "XDG_CACHE_HOME", "HOME"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
      return std::nullopt;
    }
  }
  return "/tmp/pyhot-cache-" + std::to_string(getuid());
}

std::string ParsedCache::entry_path(const std::string& hash) const { return m_directory + "/" + hash + k_extension; }

std::optional<parser::SourceFile> ParsedCache::load(const std::string& text, const std::string& path) const {
  auto file = load_by_hash(util::hash_hex(text), path);
  if (!file || file->text != text) {
    return std::nullopt;
  }
  return file;
}

std::optional<parser::SourceFile> ParsedCache::load_by_hash(const std::string& hash, const std::string& path) const {
  auto entry = open_by_hash(hash);
  if (!entry) {
    return std::nullopt;
  }
  return entry->source_file(path);
}

std::optional<CachedEntry> ParsedCache::open_by_hash(const std::string& hash) const {
  auto entry = CachedEntry::open(entry_path(hash));
  if (!entry || util::to_hex(entry->text_hash()) != hash) {
    return std::nullopt;
  }
  return entry;
}

void ParsedCache::store(const parser::SourceFile& file) const {
  const std::uint64_t text_hash = util::hash64(file.text);
  std::string final_path = entry_path(util::to_hex(text_hash));
  std::error_code ec;
  if (file.text.size() >= 0xFFFFFFF0U || std::filesystem::exists(final_path, ec)) {
    return;
  }
  std::vector<parser::TopLevelStatement> items;
  std::vector<ItemRecords> grouped;
  if (!parser::top_level_statements(file.definitions, file.statements, file.text.size(), items) ||
      !group_by_item(file, items, grouped)) {
    return;  // not what a parse gives: such a file is parsed again
  }
  Trailer trailer;
  trailer.text_hash = text_hash;
  trailer.text_size = file.text.size();
  trailer.item_count = static_cast<std::uint32_t>(items.size());
  trailer.flags = (parser::reparses_by_span(file) ? k_by_span : 0) | text_flags(file.text);
  trailer.definition_count = static_cast<std::uint32_t>(file.definitions.size());
  trailer.statement_count = static_cast<std::uint32_t>(file.statements.size());
  std::vector<KeyCount> qualnames = table_for(file.definitions.size());
  std::vector<KeyCount> keys = table_for(file.statements.size());
  for (const auto& definition : file.definitions) {
    add_key(qualnames, trailer.qualname_used, qualname_key(definition.qualname), 1);
  }
  for (const auto& statement : file.statements) {
    add_key(keys, trailer.key_used, differ::statement_key(file, statement), 1);
  }
  trailer.qualname_slots = static_cast<std::uint32_t>(qualnames.size());
  trailer.key_slots = static_cast<std::uint32_t>(keys.size());
  const EncodedRecords records = encode_records(grouped);
  trailer.record_bytes = records.bytes.size();
  write_entry_file(m_directory, final_path, [&](EntryWriter& writer) {
    writer.bytes(file.text);
    writer.pad();
    writer.bytes(records.bytes);
    write_tail(writer, items, records.places, qualnames, keys, trailer);
    return true;
  });
}

bool ParsedCache::store(const EntryEdit& edit) const {
  const CachedEntry& base = *edit.base;
  const parser::EditedSpan& span = *edit.span;
  const std::uint64_t text_hash = edit.text_hash;
  std::string final_path = entry_path(util::to_hex(text_hash));
  std::error_code ec;
  if (std::filesystem::exists(final_path, ec)) {
    return true;
  }
  std::vector<parser::TopLevelStatement> span_items;
  std::vector<ItemRecords> grouped;
  if (!parser::top_level_statements(span.parsed.definitions, span.parsed.statements, edit.new_text.size(),
                                    span_items) ||
      !group_by_item(span.parsed, span_items, grouped)) {
    return false;
  }
  const std::size_t first = span.first_item;
  const std::size_t end = span.end_item;
  std::size_t removed_definitions = edit.old_qualnames.size();
  Trailer trailer;
  trailer.text_hash = text_hash;
  trailer.text_size = edit.new_text.size();
  // The span parsed without the constructs reparses_by_span() looks for;
  // outside it the text is the base's (parse_edited_span), whose ends are
  // line starts: what holds of the base's text and the span's holds of it.
  const std::uint32_t span_flags = text_flags(edit.new_text.substr(span.start, span.new_stop - span.start));
  trailer.flags = (base.reparses_by_span() ? k_by_span : 0) |
                  ((base.newline_breaks_only() ? k_newline_breaks_only : 0) & span_flags) |
                  ((base.utf8() ? k_utf8 : 0) & span_flags);
  trailer.item_count = static_cast<std::uint32_t>(base.items().size() - (end - first) + span_items.size());
  trailer.definition_count =
      static_cast<std::uint32_t>(base.definition_count() - removed_definitions + span.parsed.definitions.size());
  trailer.statement_count =
      static_cast<std::uint32_t>(base.statement_count() - edit.old_keys.size() + span.parsed.statements.size());
  std::vector<KeyCount> qualnames(base.qualnames().begin(), base.qualnames().end());
  std::vector<KeyCount> keys(base.statement_keys().begin(), base.statement_keys().end());
  trailer.qualname_used = base.qualnames_used();
  trailer.key_used = base.statement_keys_used();
  bool fits = true;
  for (std::uint64_t key : edit.old_qualnames) {
    fits = fits && add_key(qualnames, trailer.qualname_used, key, -1);
  }
  for (const auto& definition : span.parsed.definitions) {
    fits = fits && add_key(qualnames, trailer.qualname_used, qualname_key(definition.qualname), 1);
  }
  for (std::uint64_t key : edit.old_keys) {
    fits = fits && add_key(keys, trailer.key_used, key, -1);
  }
  for (std::uint64_t key : edit.new_keys) {
    fits = fits && add_key(keys, trailer.key_used, key, 1);
  }
  if (!fits) {
    return false;  // the tables are full: the caller writes the whole file
  }
  trailer.qualname_slots = static_cast<std::uint32_t>(qualnames.size());
  trailer.key_slots = static_cast<std::uint32_t>(keys.size());
  const std::string_view old_records = base.record_bytes();
  const std::size_t cut = first < base.items().size() ? base.records()[first].offset : old_records.size();
  const std::size_t resume = end < base.items().size() ? base.records()[end].offset : old_records.size();
  // The records: the base's before the span and after it, the span's new ones between.
  const EncodedRecords span_records = encode_records(grouped);
  const auto records_delta = static_cast<std::uint32_t>(cut + span_records.bytes.size() - resume);
  trailer.record_bytes = old_records.size() - (resume - cut) + span_records.bytes.size();
  std::vector<parser::TopLevelStatement> items(base.items().begin(), base.items().begin() + first);
  items.insert(items.end(), span_items.begin(), span_items.end());
  for (parser::TopLevelStatement item : base.items().subspan(end)) {
    item.start += span.after_bytes;
    item.end += span.after_bytes;
    item.line += span.after_lines;
    items.push_back(item);
  }
  std::vector<EntryRecords> places(base.records().begin(), base.records().begin() + first);
  for (EntryRecords place : span_records.places) {
    place.offset += static_cast<std::uint32_t>(cut);
    places.push_back(place);
  }
  for (EntryRecords place : base.records().subspan(end)) {
    place.offset += records_delta;
    places.push_back(place);
  }
  return write_entry_file(m_directory, final_path, [&](EntryWriter& writer) {
    writer.bytes(edit.new_text);
    writer.pad();
    writer.bytes(old_records.substr(0, cut));
    writer.bytes(span_records.bytes);
    writer.bytes(old_records.substr(resume));
    write_tail(writer, items, places, qualnames, keys, trailer);
    return true;
  });
}

}  // namespace pyhot::patch
