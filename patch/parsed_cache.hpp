// The SourceFiles pyhot made of the texts it applied, kept on disk by the
// hash of their text, so the next reload loads what is live instead of
// parsing it again (the CLI is a new process every time).
#pragma once

#include <optional>
#include <string>

#include "parser/source_file.hpp"

namespace pyhot::patch {

class ParsedCache {
 public:
  // $XDG_CACHE_HOME/pyhot/parsed (or ~/.cache/pyhot/parsed); PYHOT_CACHE_DIR overrides.
  ParsedCache();

  // The SourceFile stored for exactly this text, if any (a corrupt or stale
  // entry is ignored).
  std::optional<parser::SourceFile> load(const std::string& text, const std::string& path) const;

  // The same by the text's hash (util::hash_hex) alone: the entry holds the text.
  std::optional<parser::SourceFile> load_by_hash(const std::string& hash, const std::string& path) const;

  // Best effort: a cache that cannot be written only costs a parse later.
  void store(const parser::SourceFile& file) const;

 private:
  std::string entry_path(const std::string& hash) const;

  std::string m_directory;
};

}  // namespace pyhot::patch
