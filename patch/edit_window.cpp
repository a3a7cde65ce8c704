#include "patch/edit_window.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "patch/plan.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

namespace {

// The live text of a window's `before`: only the bytes of the top-level
// statements it holds, each from the start of its first line (a column is
// counted from there), so that a steady reload does not copy the whole
// module (a megabytes-long copy is a page fault per 4 KiB of fresh memory).
// Lines keep their numbers; bytes move, which nothing compares across the
// two versions (the differ reads a definition's bytes through its ranges).
class CompactText {
 public:
  CompactText(std::string_view live, std::string& out) : m_live(live), m_out(out) {}

  // Appends item's bytes; what its records' byte offsets move by (two's
  // complement when down).
  std::uint32_t append(const parser::TopLevelStatement& item) {
    std::size_t from = item.start;
    while (!m_contiguous && from > m_copied_to && m_live[from - 1] != '\n') {
      --from;
    }
    if (!m_contiguous && from > m_copied_to && !m_out.empty() && m_out.back() != '\n') {
      m_out.push_back('\n');
    }
    from = m_contiguous ? m_copied_to : std::max(from, m_copied_to);
    const std::size_t at = m_out.size();
    m_out.append(m_live.substr(from, item.end - from));
    m_copied_to = std::max<std::size_t>(m_copied_to, item.end);
    return static_cast<std::uint32_t>(at + (item.start - from) - item.start);
  }

  // From the line start `start` on, bytes are copied without a gap (the
  // edited span, whose records then all move by the same amount); what they
  // move by.
  std::uint32_t copy_whole_from(std::size_t start) {
    if (!m_out.empty() && m_out.back() != '\n') {
      m_out.push_back('\n');
    }
    m_copied_to = std::max(m_copied_to, start);
    m_contiguous = true;
    return static_cast<std::uint32_t>(m_out.size() - m_copied_to);
  }
  void copy_in_pieces() { m_contiguous = false; }

 private:
  std::string_view m_live;
  std::string& m_out;
  std::size_t m_copied_to = 0;  // the live text's bytes up to here are in m_out (or were skipped)
  bool m_contiguous = false;
};

// Appends the records of `live`'s top-level statements [first, end) that
// are module context (all of them with `everything`), moved by `bytes`, or
// placed in `compact`'s text when there is one.
bool append_items(const CachedEntry& live, std::size_t first, std::size_t end, bool everything, std::uint32_t bytes,
                  parser::SourceFile& file, CompactText* compact = nullptr) {
  for (std::size_t i = first; i < end; ++i) {
    if (!everything && (live.records()[i].flags & k_module_context) == 0) {
      continue;
    }
    const std::size_t definitions = file.definitions.size();
    const std::size_t statements = file.statements.size();
    if (!live.decode(i, i + 1, file)) {
      return false;
    }
    const std::uint32_t moved = compact != nullptr ? compact->append(live.items()[i]) : bytes;
    for (std::size_t d = definitions; d < file.definitions.size(); ++d) {
      parser::shift(file.definitions[d], moved, 0);
    }
    for (std::size_t s = statements; s < file.statements.size(); ++s) {
      parser::shift(file.statements[s].range, moved, 0);
    }
  }
  return true;
}

// Whether every key of `old_span` and `new_span` occurs in the whole live
// file only as often as in the live span: then nothing outside the span has it.
bool only_in_span(std::span<const KeyCount> table, const std::vector<std::uint64_t>& old_span,
                  const std::vector<std::uint64_t>& new_span) {
  std::unordered_map<std::uint64_t, std::uint32_t> in_span;
  for (std::uint64_t key : old_span) {
    ++in_span[key];
  }
  for (std::uint64_t key : new_span) {
    in_span.try_emplace(key, 0);
  }
  return std::all_of(in_span.begin(), in_span.end(),
                     [&](const auto& entry) { return count_of(table, entry.first) == entry.second; });
}

}  // namespace

EntryEdit EditWindow::entry_edit(const CachedEntry& live) const {
  return EntryEdit{&live, &span, after.text, text_hash, old_qualnames, old_keys, new_keys};
}

namespace {

// The window of an edit whose new text is already window.after.text; false
// when there is none.
bool fill_window(const CachedEntry& live, const std::string& path, EditWindow& window) {
  const std::string_view old_text = live.text();
  const std::string& new_text = window.after.text;
  if (!live.reparses_by_span() || old_text == new_text || new_text.size() >= 0xFFFFFFF0U) {
    return false;
  }
  const auto items = live.items();
  if (parser::edit_needs_two_steps(old_text, new_text, items)) {
    return false;
  }
  const char* why = nullptr;
  auto span = parser::parse_edited_span(items, old_text, new_text, path, why);
  if (!span || span->after_lines != 0) {
    return false;  // a line added or removed moves every definition below it: the whole diff says so
  }
  // Outside the span the new text is the live one, and the span's ends are
  // line starts: it is UTF-8 when the live text and the span are (the
  // caller then checks no more of it).
  if (!live.utf8() || util::first_non_utf8(std::string_view(new_text).substr(
                          span->start, span->new_stop - span->start)) != std::string_view::npos) {
    return false;
  }
  window.before.path = path;
  window.after.path = path;
  const std::size_t first = span->first_item;
  const std::size_t end = span->end_item;

  CompactText before_text(old_text, window.before.text);
  if (!append_items(live, 0, first, false, 0, window.before, &before_text)) {
    return false;
  }
  const std::size_t old_definitions = window.before.definitions.size();
  const std::size_t old_statements = window.before.statements.size();
  window.span_shift = before_text.copy_whole_from(span->start);
  if (!append_items(live, first, end, true, 0, window.before, &before_text)) {
    return false;
  }
  before_text.copy_in_pieces();
  for (std::size_t i = old_definitions; i < window.before.definitions.size(); ++i) {
    window.old_qualnames.push_back(qualname_key(window.before.definitions[i].qualname));
  }
  for (std::size_t i = old_statements; i < window.before.statements.size(); ++i) {
    window.old_keys.push_back(differ::statement_key(window.before, window.before.statements[i]));
  }
  if (!append_items(live, end, items.size(), false, 0, window.before, &before_text)) {
    return false;
  }

  if (!append_items(live, 0, first, false, 0, window.after)) {
    return false;
  }
  const int base = static_cast<int>(window.after.definitions.size());
  std::vector<std::uint64_t> new_qualnames;
  for (parser::Definition definition : span->parsed.definitions) {
    new_qualnames.push_back(qualname_key(definition.qualname));
    if (definition.parent >= 0) {
      definition.parent += base;
    }
    window.after.definitions.push_back(std::move(definition));
  }
  for (const parser::Statement& statement : span->parsed.statements) {
    window.new_keys.push_back(differ::statement_key(window.after, statement));
    window.after.statements.push_back(statement);
  }
  if (!append_items(live, end, items.size(), false, span->after_bytes, window.after)) {
    return false;
  }
  if (!only_in_span(live.qualnames(), window.old_qualnames, new_qualnames) ||
      !only_in_span(live.statement_keys(), window.old_keys, window.new_keys)) {
    return false;
  }
  window.changes = differ::diff(window.before, window.after);
  if (std::any_of(window.changes.changes.begin(), window.changes.changes.end(),
                  [](const differ::Change& change) { return change.verdict == differ::Verdict::reexec; })) {
    return false;  // derived values are looked for in the whole file
  }
  bool definition_changed = std::any_of(
      window.changes.changes.begin(), window.changes.changes.end(),
      [](const differ::Change& change) { return !change.is_statement && change.verdict != differ::Verdict::relocate; });
  auto calls_the_modules_own = [&](const parser::Statement& statement) {
    auto called = names_called_at_import(statement);
    return std::any_of(called.begin(), called.end(),
                       [&](const std::string& name) { return count_of(live.qualnames(), qualname_key(name)) != 0; });
  };
  if (definition_changed &&
      std::any_of(window.after.statements.begin(), window.after.statements.end(), calls_the_modules_own)) {
    return false;  // what a call at import used (a subclass of a changed class) is looked for in the whole file
  }
  window.span = std::move(*span);
  window.text_hash = util::hash64(window.after.text);
  return true;
}

}  // namespace

std::optional<EditWindow> edit_window(const CachedEntry& live, std::string&& new_text, const std::string& path) {
  // The new text is moved in, not copied (a copy of a megabytes-long
  // module is a page fault per 4 KiB of fresh memory), and handed back
  // when there is no window: the caller then parses it whole.
  EditWindow window;
  window.after.text = std::move(new_text);
  if (!fill_window(live, path, window)) {
    new_text = std::move(window.after.text);
    return std::nullopt;
  }
  return window;
}

}  // namespace pyhot::patch
