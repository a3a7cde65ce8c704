// A steady reload at the cost of its edit, not of its module: the live
// text's parsed cache entry is read in place, only the top-level statements
// the edit touches are parsed and compared, and the new entry is the old one
// with those statements replaced.
//
// Why the window's diff is the whole files' diff. The window holds, in both
// versions, the edited span's definitions and statements, plus the
// top-level statements that hold module-level imports, `del`s and other
// module code (what a compilation unit reads of the rest of the module:
// imported names, deleted names, future features), which are the same in
// both. Everything outside the span is the same text at the same lines
// (the shortcut is only taken when the edit adds or removes no line), so in
// the whole-file diff each outside definition and statement pairs with its
// own copy and yields no change, provided nothing in the span can pair
// with it instead: no qualname of a span definition and no statement key
// (differ::statement_key) of a span statement occurs outside the span,
// which the entry's count tables show (a count collision can only make the
// shortcut refuse). Derived values are looked for over the whole file, so
// an edit the diff re-executes a statement for is left to the whole-file
// path too, and so is one that changes a definition in a file with a
// module-level call of one of its own functions (the planner looks for what
// such a call used at import, a subclass of a changed class say, in the
// whole file). The span's records are parse_source()'s
// (reparse.cpp).
//
// What is checked of the new text's bytes. The span [start, new_stop) of
// the new text is the only part that differs from the live text, and both
// its ends are line starts or the text's ends (parse_edited_span), so a
// property that holds of every character holds of the new text when it
// holds of the live text and of the span: UTF-8 (the entry records
// whether the live text is) and having no line break but '\n' (likewise;
// patch::source_edit). The entry also knows the line of each top-level
// statement, so the lines before an edit are counted from the statement
// it starts in, not from the top.
//
// `reload MODULE FUNC` uses the window only when the edit changed that
// definition and no other byte (patch/live_patch.cpp): the text it records
// is then the new text, and its changes are the window's, filtered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "differ/differ.hpp"
#include "parser/edit_span.hpp"
#include "parser/source_file.hpp"
#include "patch/parsed_cache.hpp"

namespace pyhot::patch {

struct EditWindow {
  // The live text's definitions and statements the window holds, and only
  // their bytes as its text (byte offsets are into that, lines the live text's).
  parser::SourceFile before;
  parser::SourceFile after;   // the new text, likewise
  differ::ChangeSet changes;  // diff(before, after): what diff() of the whole files gives, indexes into the window
  parser::EditedSpan span;
  std::vector<std::uint64_t> old_qualnames;  // of the span's definitions in the live text
  std::vector<std::uint64_t> old_keys;       // statement keys of its statements there
  std::vector<std::uint64_t> new_keys;       // and in the new text
  std::uint64_t text_hash = 0;               // of the new text (util::hash64): hashed once
  // What the span's byte offsets in `before` are more than in the live text
  // (two's complement when less).
  std::uint32_t span_shift = 0;

  // The new text's entry, written from `live`'s.
  EntryEdit entry_edit(const CachedEntry& live) const;
};

// Nothing when the shortcut cannot be shown to give what the whole files
// give (the caller then loads, re-parses and diffs them whole), or when
// new_text is not UTF-8 (only the span is checked: see above). new_text is
// moved into the window, and left as it was when there is none.
std::optional<EditWindow> edit_window(const CachedEntry& live, std::string&& new_text, const std::string& path);

}  // namespace pyhot::patch
