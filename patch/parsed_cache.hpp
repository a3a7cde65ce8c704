// The SourceFiles pyhot made of the texts it applied (and of the imported
// texts first reloads parsed whole), kept on disk by the hash of their
// text, so the next reload loads what is live instead of parsing it again
// (the CLI is a new process every time).
//
// An entry is laid out so that a steady reload needs none of it decoded
// but the few top-level statements its edit touches: the text, then each
// top-level statement's records (serialized with their offsets relative to
// the statement, so they do not change when the statement moves), an array
// of the top-level statements' extents, tables counting the qualnames and
// statement keys of the whole file, a trailer. It is read in place
// (mmap), and the entry of an edited text is written from its base's bytes
// with only the edited statements' records replaced.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parser/edit_span.hpp"
#include "parser/source_file.hpp"

namespace pyhot::patch {

// Where a top-level statement's records are in the entry, and what they hold.
struct EntryRecords {
  std::uint32_t offset = 0;  // into the records area
  std::uint32_t size = 0;
  std::uint32_t flags = 0;  // k_module_context
  std::uint32_t reserved = 0;
  std::uint64_t checksum = 0;  // XXH3-64 of the records' bytes
};

// The top-level statement holds a module-level import, `from __future__`,
// `del` or other code: what the compilation units of any definition read
// (patch/compilation_unit.hpp), so a window of the file carries it.
inline constexpr std::uint32_t k_module_context = 1;

// Counts of 64-bit keys in an open-addressed table, each slot holding the
// key's high half (keys that share it and a slot share the count: a count
// is never less than the key's own); a key whose count fell to zero keeps
// its slot.
struct KeyCount {
  std::uint32_t tag = 0;  // 0: an empty slot
  std::uint32_t count = 0;
};

// One entry, mapped.
class CachedEntry {
 public:
  CachedEntry(CachedEntry&& other) noexcept;
  CachedEntry& operator=(CachedEntry&&) = delete;
  CachedEntry(const CachedEntry&) = delete;
  ~CachedEntry();

  std::string_view text() const { return m_text; }
  std::uint64_t text_hash() const { return m_text_hash; }
  // Whether an edit of it may be re-parsed span by span (parser::reparses_by_span).
  bool reparses_by_span() const { return m_by_span; }
  // Known of the text: its only line breaks are '\n' (util::only_newline_breaks),
  // it is UTF-8. False when not so or not known (an entry written from its
  // base's knows what the base's did and the edit kept).
  bool newline_breaks_only() const { return m_newline_breaks_only; }
  bool utf8() const { return m_utf8; }
  std::span<const parser::TopLevelStatement> items() const { return m_items; }
  std::span<const EntryRecords> records() const { return m_records; }
  std::span<const KeyCount> qualnames() const { return m_qualnames; }
  std::span<const KeyCount> statement_keys() const { return m_statement_keys; }
  std::string_view record_bytes() const { return m_record_bytes; }
  std::uint32_t definition_count() const { return m_definition_count; }
  std::uint32_t statement_count() const { return m_statement_count; }
  std::uint32_t qualnames_used() const { return m_qualnames_used; }
  std::uint32_t statement_keys_used() const { return m_keys_used; }

  // The records of top-level statements [first, end) appended to `file`
  // (parents as indexes of file.definitions); false when they are corrupt.
  bool decode(std::size_t first, std::size_t end, parser::SourceFile& file) const;

  // The whole SourceFile.
  std::optional<parser::SourceFile> source_file(const std::string& path) const;

  static std::optional<CachedEntry> open(const std::string& path);

 private:
  CachedEntry() = default;
  bool parse();

  std::string_view m_bytes;  // the whole mapping
  std::string_view m_text;
  std::string_view m_record_bytes;
  std::span<const parser::TopLevelStatement> m_items;
  std::span<const EntryRecords> m_records;
  std::span<const KeyCount> m_qualnames;
  std::span<const KeyCount> m_statement_keys;
  std::uint64_t m_text_hash = 0;
  std::uint32_t m_definition_count = 0;
  std::uint32_t m_statement_count = 0;
  std::uint32_t m_qualnames_used = 0;
  std::uint32_t m_keys_used = 0;
  bool m_by_span = false;
  bool m_newline_breaks_only = false;
  bool m_utf8 = false;
};

// The key a qualname is counted by, and a key's count in a table
// (collisions only ever add to a count).
std::uint64_t qualname_key(std::string_view qualname);
std::uint32_t count_of(std::span<const KeyCount> table, std::uint64_t key);

// An edited text's SourceFile as its base's entry with the top-level
// statements [edit.first_item, edit.end_item) replaced by `window`'s span
// records: what parse_edited_span() parsed. `old_keys` and `new_keys` are
// the statement keys (differ::statement_key) of the replaced and the new
// statements.
struct EntryEdit {
  const CachedEntry* base = nullptr;
  const parser::EditedSpan* span = nullptr;  // positions in new_text
  std::string_view new_text;
  std::uint64_t text_hash = 0;  // of new_text (util::hash64)
  std::vector<std::uint64_t> old_qualnames;
  std::vector<std::uint64_t> old_keys;
  std::vector<std::uint64_t> new_keys;
};

class ParsedCache {
 public:
  // $XDG_CACHE_HOME/pyhot/parsed (or ~/.cache/pyhot/parsed); PYHOT_CACHE_DIR overrides.
  ParsedCache();

  // Without PYHOT_CACHE_DIR, XDG_CACHE_HOME and HOME: the directory in /tmp
  // whose `parsed/` holds the cache (another user could have made it first:
  // cli/live_process.hpp verifies it). Nothing otherwise.
  static std::optional<std::string> shared_directory();

  // The SourceFile stored for exactly this text, if any (a corrupt or stale
  // entry is ignored).
  std::optional<parser::SourceFile> load(const std::string& text, const std::string& path) const;

  // The same by the text's hash (util::hash_hex) alone: the entry holds the text.
  std::optional<parser::SourceFile> load_by_hash(const std::string& hash, const std::string& path) const;

  // The entry itself, read in place.
  std::optional<CachedEntry> open_by_hash(const std::string& hash) const;

  // Best effort: a cache that cannot be written only costs a parse later.
  void store(const parser::SourceFile& file) const;
  // False when the edit does not fit the base's tables: then the caller stores the whole file.
  bool store(const EntryEdit& edit) const;

 private:
  std::string entry_path(const std::string& hash) const;

  std::string m_directory;
};

}  // namespace pyhot::patch
