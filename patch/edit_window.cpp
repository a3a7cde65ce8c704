#include "patch/edit_window.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "patch/plan.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

namespace {

// Appends the records of `live`'s top-level statements [first, end) that
// are module context (all of them with `everything`), moved by `bytes`.
bool append_items(const CachedEntry& live, std::size_t first, std::size_t end, bool everything, std::uint32_t bytes,
                  parser::SourceFile& file) {
  for (std::size_t i = first; i < end; ++i) {
    if (!everything && (live.records()[i].flags & k_module_context) == 0) {
      continue;
    }
    const std::size_t definitions = file.definitions.size();
    const std::size_t statements = file.statements.size();
    if (!live.decode(i, i + 1, file)) {
      return false;
    }
    for (std::size_t d = definitions; d < file.definitions.size(); ++d) {
      parser::shift(file.definitions[d], bytes, 0);
    }
    for (std::size_t s = statements; s < file.statements.size(); ++s) {
      parser::shift(file.statements[s].range, bytes, 0);
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

std::optional<EditWindow> edit_window(const CachedEntry& live, std::string new_text, const std::string& path) {
  const std::string_view old_text = live.text();
  if (!live.reparses_by_span() || old_text == new_text || new_text.size() >= 0xFFFFFFF0U) {
    return std::nullopt;
  }
  const auto items = live.items();
  if (parser::edit_needs_two_steps(old_text, new_text, items)) {
    return std::nullopt;
  }
  const char* why = nullptr;
  auto span = parser::parse_edited_span(items, old_text, new_text, path, why);
  if (!span || span->after_lines != 0) {
    return std::nullopt;  // a line added or removed moves every definition below it: the whole diff says so
  }
  // Outside the span the new text is the live one, and the span's ends are
  // line starts: it is UTF-8 when the live text and the span are (the
  // caller then checks no more of it).
  if (!live.utf8() || util::first_non_utf8(std::string_view(new_text).substr(
                          span->start, span->new_stop - span->start)) != std::string_view::npos) {
    return std::nullopt;
  }
  EditWindow window;
  window.before.path = path;
  window.before.text = std::string(old_text);
  window.after.path = path;
  window.after.text = std::move(new_text);
  const std::size_t first = span->first_item;
  const std::size_t end = span->end_item;

  if (!append_items(live, 0, first, false, 0, window.before)) {
    return std::nullopt;
  }
  const std::size_t old_definitions = window.before.definitions.size();
  const std::size_t old_statements = window.before.statements.size();
  if (!append_items(live, first, end, true, 0, window.before)) {
    return std::nullopt;
  }
  for (std::size_t i = old_definitions; i < window.before.definitions.size(); ++i) {
    window.old_qualnames.push_back(qualname_key(window.before.definitions[i].qualname));
  }
  for (std::size_t i = old_statements; i < window.before.statements.size(); ++i) {
    window.old_keys.push_back(differ::statement_key(window.before, window.before.statements[i]));
  }
  if (!append_items(live, end, items.size(), false, 0, window.before)) {
    return std::nullopt;
  }

  if (!append_items(live, 0, first, false, 0, window.after)) {
    return std::nullopt;
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
    return std::nullopt;
  }
  if (!only_in_span(live.qualnames(), window.old_qualnames, new_qualnames) ||
      !only_in_span(live.statement_keys(), window.old_keys, window.new_keys)) {
    return std::nullopt;
  }
  window.changes = differ::diff(window.before, window.after);
  if (std::any_of(window.changes.changes.begin(), window.changes.changes.end(),
                  [](const differ::Change& change) { return change.verdict == differ::Verdict::reexec; })) {
    return std::nullopt;  // derived values are looked for in the whole file
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
    return std::nullopt;  // what a call at import used (a subclass of a changed class) is looked for in the whole file
  }
  window.span = std::move(*span);
  window.text_hash = util::hash64(window.after.text);
  return window;
}

}  // namespace pyhot::patch
