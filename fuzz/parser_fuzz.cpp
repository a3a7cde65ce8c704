// libFuzzer harness over the parser: any bytes must parse without a crash
// or a sanitizer report, and the parser's promises must hold for them:
// reparse_from() of an edit gives exactly what parse_source() gives,
// deserialize(serialize(file)) is the same file, and the steady reload's
// edit window (patch/edit_window.hpp), whenever it is taken, plans exactly
// what the whole files plan and writes the entry a fresh parse would load as.
//
// An input is one text, or two texts (before and after an edit) joined by
// k_edit_separator; the seed corpus (make_corpus.sh) pairs testdata's files.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "differ/differ.hpp"
#include "parser/parser.hpp"
#include "parser/serialize.hpp"
#include "patch/edit_window.hpp"
#include "patch/parsed_cache.hpp"
#include "patch/plan.hpp"
#include "util/text.hpp"

namespace {

constexpr std::string_view k_edit_separator = "\n#---pyhot-edit---\n";

[[noreturn]] void broken_promise(const char* what, std::string_view before, std::string_view after) {
  std::fprintf(stderr, "parser_fuzz: %s\n--- before (%zu bytes)\n%.*s\n--- after (%zu bytes)\n%.*s\n", what,
               before.size(), static_cast<int>(before.size()), before.data(), after.size(),
               static_cast<int>(after.size()), after.data());
  __builtin_trap();
}

pyhot::patch::Plan plan_for(const pyhot::parser::SourceFile& before, const pyhot::parser::SourceFile& after,
                            const pyhot::differ::ChangeSet& changes) {
  return pyhot::patch::plan_from_snapshot(
      before, after, changes, [](const pyhot::differ::Change&) { return true; }, pyhot::loader::SnapshotRecord::sent());
}

// The window against the whole files, when it is taken.
void check_edit_window(const pyhot::parser::SourceFile& before, const pyhot::parser::SourceFile& after) {
  using namespace pyhot;
  static const bool cache_directory_set = [] {
    std::string directory = "/tmp/pyhot-parser-fuzz-" + std::to_string(getpid());
    return setenv("PYHOT_CACHE_DIR", directory.c_str(), 1) == 0;
  }();
  (void)cache_directory_set;
  if (!before.errors.empty()) {
    return;
  }
  patch::ParsedCache cache;
  cache.store(before);
  auto entry = cache.open_by_hash(util::hash_hex(before.text));
  if (!entry) {
    return;
  }
  auto window = patch::edit_window(*entry, std::string(after.text), before.path);
  if (!window) {
    return;
  }
  auto changes = differ::diff(before, after);
  auto windowed = plan_for(window->before, window->after, window->changes);
  auto whole = plan_for(before, after, changes);
  if (windowed.units != whole.units || windowed.kept != whole.kept || windowed.refused != whole.refused) {
    broken_promise("the edit window plans other than the whole files", before.text, after.text);
  }
  if (util::first_non_utf8(after.text) != std::string::npos) {
    broken_promise("the edit window took a text that is not UTF-8", before.text, after.text);
  }
  if (patch::source_edit(before.text, "h", after.text,
                         patch::KnownText{entry->newline_breaks_only(), entry->items()}) !=
      patch::source_edit(before.text, "h", after.text)) {
    broken_promise("the edit sent from the entry's facts is not the one scanned", before.text, after.text);
  }
  if (cache.store(window->entry_edit(*entry))) {
    auto stored = cache.load_by_hash(util::hash_hex(after.text), after.path);
    if (!stored || *stored != after) {
      broken_promise("the entry written from the edit window is not the new text's parse", before.text, after.text);
    }
    auto stored_entry = cache.open_by_hash(util::hash_hex(after.text));
    if (!stored_entry || (stored_entry->utf8() && util::first_non_utf8(after.text) != std::string::npos) ||
        (stored_entry->newline_breaks_only() && !util::only_newline_breaks(after.text))) {
      broken_promise("the entry written from the edit window misjudges its text", before.text, after.text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t split = input.find(k_edit_separator);
  std::string_view before = split == std::string_view::npos ? input : input.substr(0, split);
  std::string_view after = split == std::string_view::npos ? input : input.substr(split + k_edit_separator.size());

  auto parsed_before = pyhot::parser::parse_source(before);
  auto parsed_after = pyhot::parser::parse_source(after);
  if (!parsed_before || !parsed_after) {
    return 0;  // tree-sitter could not run (e.g. out of memory): not a parser defect
  }
  std::string expected = pyhot::parser::serialize(*parsed_after);
  auto reparsed = pyhot::parser::reparse_from(*parsed_before, after);
  if (!reparsed || pyhot::parser::serialize(*reparsed) != expected) {
    broken_promise("reparse_from differs from parse_source", before, after);
  }
  auto restored = pyhot::parser::deserialize(expected, std::string(after));
  if (!restored || pyhot::parser::serialize(*restored) != expected) {
    broken_promise("deserialize(serialize(file)) is another file", before, after);
  }
  check_edit_window(*parsed_before, *parsed_after);
  return 0;
}
