#include "patch/import_effects.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "differ/rules.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

using differ::names_used;
using differ::Rule;
using differ::Verdict;
using parser::DefinitionKind;
using util::is_identifier;
using util::is_identifier_char;

// Adds the file's subclasses of the changed classes (`class Turtle(RawTurtle)`).
void add_subclasses(const parser::SourceFile& after, ChangedForCalls& changed) {
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& def : after.definitions) {
      if (def.parent >= 0 || def.kind != DefinitionKind::klass || changed.names.count(def.name) != 0) {
        continue;
      }
      auto bases = names_used(def.bases_text).read;
      if (std::any_of(bases.begin(), bases.end(), [&](const std::string& base) {
            auto it = changed.names.find(base);
            return it != changed.names.end() && it->second < def.range.start_line;
          })) {
        changed.names.emplace(def.name, def.range.start_line);
        grew = true;
      }
    }
  }
}

// Unchanged module-level statements other than assignments that ran, when
// the module was imported, what the patch changes: a call of a module-level
// function whose own code changes (mimetypes' `_default_mime_types()` filled `types_map`
// and its `_default` copies with the old code), or a bare call of one of
// the module's functions that is passed a changed name (turtle's
// `_make_global_funcs(_tg_turtle_functions, Turtle, ...)` made functions
// from that list, their docstrings from Turtle's methods). Nothing runs
// them again, and running them again could repeat what else they do, so
// the edit is refused with the reason, the statement named. (An assignment
// that reads a re-run name is the differ's; one that calls a changed
// function, `environ = _make_env()`, is left as it was: its value is
// usually what the new code gives too.) `skip`:
// statements of `after` the patch runs or refuses anyway.
std::vector<AppliedChange> calls_of_changed_code(const parser::SourceFile& after, const ChangedForCalls& changed,
                                                 const std::set<std::size_t>& skip) {
  std::vector<AppliedChange> refused;
  if (changed.functions.empty() && changed.names.empty()) {
    return refused;
  }
  std::map<std::string, std::uint32_t> own_functions;
  for (const auto& def : after.definitions) {
    if (def.parent < 0 && def.kind == DefinitionKind::function) {
      own_functions.emplace(def.name, def.range.start_line);
    }
  }
  auto above = [](const std::map<std::string, std::uint32_t>& names, const std::string& name, std::uint32_t line) {
    auto it = names.find(name);
    return it != names.end() && it->second < line;  // a call above the definition ran another binding, or none
  };
  for (std::size_t index = 0; index < after.statements.size(); ++index) {
    const auto& statement = after.statements[index];
    if (skip.count(index) != 0 || names_called_at_import(statement).empty()) {
      continue;
    }
    std::uint32_t line = statement.range.start_line;
    auto used = names_used(statement.text);
    std::string reason;
    for (const auto& name : used.called) {
      if (above(changed.functions, name, line)) {
        reason = "unchanged, but it calls " + name +
                 ", whose code changed: what that call made when the module was "
                 "imported came from the old code";
        break;
      }
    }
    for (const auto& callee : used.called) {
      if (!reason.empty() || !above(own_functions, callee, line)) {
        continue;
      }
      // What is passed: the names inside the call's parentheses
      // (`if _can_use('kqueue'): DefaultSelector = KqueueSelector` passes
      // nothing that changed).
      for (auto at = statement.text.find(callee); at != std::string::npos && reason.empty();
           at = statement.text.find(callee, at + 1)) {
        auto open = statement.text.find_first_not_of(" \t", at + callee.size());
        bool own_name = (at == 0 || (!is_identifier_char(statement.text[at - 1]) && statement.text[at - 1] != '.'));
        if (!own_name || open == std::string::npos || statement.text[open] != '(') {
          continue;
        }
        int depth = 0;
        auto close = open;
        for (; close < statement.text.size(); ++close) {
          depth += statement.text[close] == '(' ? 1 : statement.text[close] == ')' ? -1 : 0;
          if (depth == 0) {
            break;
          }
        }
        for (const auto& name : names_used(std::string_view(statement.text).substr(open, close - open)).read) {
          if (above(changed.names, name, line)) {
            reason = "unchanged, but it passes " + name + ", which changed, to " + callee +
                     " of this module: what that call made when the module was imported came from the old " + name;
            break;
          }
        }
      }
    }
    if (reason.empty()) {
      continue;
    }
    AppliedChange change;
    change.qualname = "<module>: " + std::string(util::trim(statement.text.substr(0, statement.text.find('\n'))));
    change.verdict = Verdict::restart;
    change.reason = reason + "; running it again could repeat its side effects";
    change.line = line;
    refused.push_back(std::move(change));
  }
  return refused;
}

// Functions and methods whose defaults read a module-level name the patch
// runs again (functools' `def update_wrapper(..., assigned =
// WRAPPER_ASSIGNMENTS)` below a changed WRAPPER_ASSIGNMENTS): a fresh
// import evaluates the defaults from the new value, so they are swapped
// (code and defaults replaced in place; a relocation becomes a swap). A
// method's defaults are evaluated in its class body, which reads the live
// module's globals (the old value until the patch is committed): the edit
// is refused for those, with the reason. Defaults of nested functions are
// evaluated when their enclosing function runs, and are left.
std::vector<AppliedChange> swap_defaults_of_reruns(const parser::SourceFile& before, const parser::SourceFile& after,
                                                   differ::ChangeSet& selected) {
  std::vector<AppliedChange> refused;
  std::map<std::string, std::uint32_t> rerun;
  std::set<std::string> rebound;  // bound in the live module already: a class body reads the old value
  for (const auto& change : selected.changes) {
    if (change.is_statement && change.new_index >= 0 && change.verdict == Verdict::reexec) {
      const auto& statement = after.statements[static_cast<std::size_t>(change.new_index)];
      if (statement.scope_qualname.empty()) {
        for (const auto& target : statement.targets) {
          rerun.emplace(target, statement.range.start_line);
          if (change.old_index >= 0) {
            rebound.insert(target);
          }
        }
      }
    }
  }
  if (rerun.empty()) {
    return refused;
  }
  auto count = [](const parser::SourceFile& file, const std::string& qualname) {
    return std::count_if(file.definitions.begin(), file.definitions.end(),
                         [&](const parser::Definition& def) { return def.qualname == qualname; });
  };
  for (std::size_t index = 0; index < after.definitions.size(); ++index) {
    const auto& def = after.definitions[index];
    if (def.kind == DefinitionKind::klass || def.in_main_guard) {
      continue;
    }
    bool in_classes_only = true;
    for (int parent = def.parent; parent >= 0; parent = after.definitions[static_cast<std::size_t>(parent)].parent) {
      in_classes_only =
          in_classes_only && after.definitions[static_cast<std::size_t>(parent)].kind == DefinitionKind::klass;
    }
    std::string read;
    for (const auto& parameter : def.parameters) {
      for (const auto& name : names_used(parameter.default_text).read) {
        auto it = rerun.find(name);
        if (it != rerun.end() && it->second < def.range.start_line &&
            (read.empty() || (rebound.count(name) != 0 && rebound.count(read) == 0))) {
          read = name;
        }
      }
    }
    if (!in_classes_only || read.empty() || count(after, def.qualname) != 1 || count(before, def.qualname) != 1) {
      continue;
    }
    if (def.parent >= 0 && rebound.count(read) == 0) {
      continue;  // a name new to the module: the class body sees the patch's value
    }
    auto existing = std::find_if(selected.changes.begin(), selected.changes.end(), [&](const differ::Change& change) {
      return !change.is_statement && change.new_index == static_cast<int>(index);
    });
    if (def.parent >= 0 && existing != selected.changes.end() && existing->verdict != Verdict::relocate) {
      continue;  // the method is applied anyway: its new defaults are evaluated after the re-run, as in a fresh import
    }
    if (def.parent >= 0) {
      AppliedChange change;
      change.qualname = def.qualname;
      change.verdict = Verdict::restart;
      change.reason = "unchanged, but its defaults read " + read +
                      ", which is run again: a method's defaults are evaluated in its class body, which would read "
                      "the live module's old " +
                      read;
      change.line = def.range.start_line;
      refused.push_back(std::move(change));
      continue;
    }
    std::string reason =
        "unchanged, but its defaults read " + read + ", which is run again: code and defaults are replaced in place";
    if (existing != selected.changes.end()) {
      if (existing->verdict == Verdict::relocate) {
        existing->verdict = Verdict::swap;
        existing->rule = Rule::signature_changed;
        existing->reason = reason;
      }
      continue;
    }
    auto was = std::find_if(before.definitions.begin(), before.definitions.end(),
                            [&](const parser::Definition& other) { return other.qualname == def.qualname; });
    differ::Change change;
    change.rule = Rule::signature_changed;
    change.kind = differ::ChangeKind::header_changed;
    change.verdict = Verdict::swap;
    change.qualname = def.qualname;
    change.reason = reason;
    change.old_index = static_cast<int>(was - before.definitions.begin());
    change.new_index = static_cast<int>(index);
    change.line = def.range.start_line;
    selected.changes.push_back(change);
  }
  return refused;
}

// A re-run module-level statement binds names an unchanged `del` below it
// removes again (dis' `from opcode import (__all__ as _opcodes_all, ...)`
// above `del _opcodes_all`): a fresh import lacks them, so the live module
// is not given them. A statement that reads one gets its binding in its own
// unit (UnitBuilder::copy_bindings_of_deleted_names). Not when anything
// below the `del` binds the name again.
void drop_targets_deleted_below(const parser::SourceFile& after, const parser::Statement& statement,
                                CompilationUnit& unit) {
  if (!statement.scope_qualname.empty() || statement.conditional || unit.targets.empty()) {
    return;
  }
  std::set<std::string> deleted;
  std::uint32_t last_del = 0;
  for (const auto& other : after.statements) {
    std::string_view text = util::trim(other.text);
    if (other.scope_qualname.empty() && !other.conditional && other.kind == parser::Statement::Kind::other &&
        other.range.start_line > statement.range.end_line && util::starts_with(text, "del ")) {
      parser::SourceFile one;
      one.statements.push_back(other);
      for (const auto& name : deleted_names(one)) {
        deleted.insert(name);
      }
      last_del = std::max(last_del, other.range.start_line);
    }
  }
  auto bound_again = [&](const std::string& name) {
    bool by_statement = std::any_of(after.statements.begin(), after.statements.end(), [&](const parser::Statement& s) {
      return s.scope_qualname.empty() && s.range.start_line > last_del &&
             std::find(s.targets.begin(), s.targets.end(), name) != s.targets.end();
    });
    bool by_definition = std::any_of(
        after.definitions.begin(), after.definitions.end(),
        [&](const parser::Definition& d) { return d.parent < 0 && d.range.start_line > last_del && d.name == name; });
    return by_statement || by_definition;
  };
  std::erase_if(unit.targets,
                [&](const std::string& target) { return deleted.count(target) != 0 && !bound_again(target); });
}

// A class-level statement the file removed that the differ keeps: a `for`
// loop (textwrap's `for x in _whitespace:` in TextWrapper), or an
// assignment in a class defined in a module-level block (ftplib's
// `ssl_version = ...` in the `else:` of `try: import ssl`). A fresh import's
// class lacks what it bound, so those names are deleted from the live class
// (nothing, when the block did not run), unless the new class binds them
// otherwise. (Module-level names a removed statement bound are kept: a
// running frame may read them.)
std::vector<PlannedUnit> class_bindings_removed(const parser::SourceFile& before, const parser::SourceFile& after,
                                                const differ::Change& change, const UnitBuilder& old_units) {
  std::vector<PlannedUnit> removals;
  if (change.old_index < 0) {
    return removals;
  }
  const auto& statement = before.statements[static_cast<std::size_t>(change.old_index)];
  std::string_view text = util::trim(statement.text);
  const auto* klass = after.find(statement.scope_qualname);
  if (statement.scope_qualname.empty() || klass == nullptr || klass->kind != DefinitionKind::klass) {
    return removals;
  }
  // Directly in the class body (`conditional` is also set for every
  // statement of a class in a module-level block): at the body's column.
  const auto* old_class = before.find(statement.scope_qualname);
  auto column = [&](std::uint32_t byte) {
    auto start = before.text.rfind('\n', byte == 0 ? 0 : byte - 1);
    return byte - (start == std::string::npos || byte == 0 ? 0 : start + 1);
  };
  bool in_body = old_class != nullptr && column(statement.range.start_byte) == column(old_class->body_byte);
  std::vector<std::string> targets;
  if (statement.kind == parser::Statement::Kind::assignment && in_body && text.find("+=") == std::string_view::npos) {
    targets = statement.targets;
  } else if (in_body && util::starts_with(text, "for ") && text.find(" in ") != std::string_view::npos) {
    std::string names;
    for (char c : text.substr(4, text.find(" in ") - 4)) {
      names += (c == '(' || c == ')' || c == '[' || c == ']') ? ' ' : c;
    }
    for (std::size_t start = 0; start <= names.size();) {
      auto comma = std::min(names.size(), names.find(',', start));
      std::string name(util::trim(std::string_view(names).substr(start, comma - start)));
      if (!name.empty()) {
        targets.push_back(name);
      }
      start = comma + 1;
    }
  }
  bool in_block = klass->conditional ||
                  std::any_of(after.definitions.begin(), after.definitions.end(), [&](const parser::Definition& scope) {
                    return scope.conditional && util::starts_with(klass->qualname, scope.qualname + ".");
                  });
  auto bound_in_class = [&](const parser::SourceFile& file, const std::string& name, const parser::Statement* except) {
    bool by_statement = std::any_of(file.statements.begin(), file.statements.end(), [&](const parser::Statement& s) {
      return &s != except && s.scope_qualname == statement.scope_qualname &&
             (std::find(s.targets.begin(), s.targets.end(), name) != s.targets.end() ||
              util::starts_with(util::trim(s.text), "for "));
    });
    return by_statement || file.find(statement.scope_qualname + "." + name) != nullptr;
  };
  for (const auto& name : targets) {
    if (!is_identifier(name) || bound_in_class(after, name, nullptr) || bound_in_class(before, name, &statement)) {
      continue;
    }
    parser::Statement binding = statement;
    binding.targets = {name};
    PlannedUnit removal{old_units.removed_attribute(binding), {}, -1, true};
    removal.unit.conditional = in_block;
    removal.change.qualname = statement.scope_qualname + "." + name;
    removal.change.verdict = Verdict::remove;
    removal.change.reason = "the class-level statement that bound it was removed: it is deleted from the live class";
    removal.change.line = statement.range.start_line;
    removals.push_back(std::move(removal));
  }
  return removals;
}

std::set<std::string> names_called_at_import(const parser::Statement& statement) {
  using Kind = parser::Statement::Kind;
  if (!statement.scope_qualname.empty() || statement.kind != Kind::other ||
      util::starts_with(statement.text, "if __name__")) {
    return {};
  }
  return names_used(statement.text).called;
}

}  // namespace pyhot::patch
