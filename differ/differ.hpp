// Compares two snapshots of one Python file and says, for every change,
// whether and how it can be applied to a live process (a Verdict) and why.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parser/source_file.hpp"

namespace pyhot::differ {

enum class Verdict {
  swap,      // new code object replaces the old in place
  relocate,  // only line numbers moved
  define,    // a new definition is bound
  remove,    // a definition is gone: its binding is removed ("delete")
  rebind,    // a new object must replace the old where it is bound
  reexec,    // a module- or class-level import/assignment is run again
  restart,   // cannot be applied live
};

struct VerdictEntry {
  Verdict verdict;
  std::string_view word;        // on the wire, in `check` and --json
  std::string_view past_tense;  // how reload and autoreload say what it did
  bool crosses_to_agent;        // the agent's VERDICTS tuple has it
};

// The one table of the verdicts' words.
std::span<const VerdictEntry> all_verdicts();
const char* to_string(Verdict verdict);
std::string_view past_tense(Verdict verdict);
std::optional<Verdict> verdict_from_string(std::string_view word);

enum class ChangeKind {
  added,
  removed,
  body_changed,
  header_changed,     // decorators or signature
  moved,              // same text, other lines
  statement_changed,  // module- or class-level statement added, removed or edited
};

const char* to_string(ChangeKind kind);

// XXH3 of the dedented text: a moved definition hashes the same.
std::uint64_t hash_definition(const parser::SourceFile& file, const parser::Definition& def);

// "C.x" for the first definition of that qualname, "C.x#2" for the second
// (a property's setter, a conditional redefinition).
std::vector<std::string> definition_keys(const parser::SourceFile& file);

// What diff() pairs a statement by (its scope and its dedented text), as
// one number: two statements it may pair have the same key.
std::uint64_t statement_key(const parser::SourceFile& file, const parser::Statement& statement);

// The names a statement's text reads: identifiers outside string literals
// and comments, not after a '.' (an attribute is no name of the module).
std::set<std::string> names_read(std::string_view text);

// The same, and those of them called (`name(`): `_make_global_funcs(_tg_functions, Turtle)`.
struct NamesUsed {
  std::set<std::string> read;
  std::set<std::string> called;
};
NamesUsed names_used(std::string_view text);

enum class Rule;

struct Change {
  Rule rule{};
  ChangeKind kind = ChangeKind::body_changed;
  Verdict verdict = Verdict::swap;
  std::string qualname;  // definition's qualname; for statements the scope ("" = module)
  std::string reason;    // in words, for the user
  int old_index = -1;    // into before.definitions / before.statements
  int new_index = -1;    // into after.definitions / after.statements
  bool is_statement = false;
  std::uint32_t line = 0;  // where to look: in the new file (old file when removed)
  int line_delta = 0;      // relocate: new line - old line
};

struct ChangeSet {
  std::vector<Change> changes;
  std::vector<parser::SyntaxError> syntax_errors;  // of the new file: nothing can be applied

  bool needs_restart() const;
  bool empty() const { return changes.empty() && syntax_errors.empty(); }
};

ChangeSet diff(const parser::SourceFile& before, const parser::SourceFile& after);

// What the user calls the subject of a change: a qualname, or for a
// statement its scope and first line ("<module>: import json"), that line cut
// to `limit` characters.
std::string subject_of(const Change& change, const parser::SourceFile& before, const parser::SourceFile& after,
                       std::size_t limit = std::string::npos);

}  // namespace pyhot::differ
