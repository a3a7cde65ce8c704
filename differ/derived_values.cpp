#include "differ/derived_values.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "differ/rules.hpp"
#include "util/text.hpp"

namespace pyhot::differ {

using parser::SourceFile;
using parser::Statement;

namespace {

bool is_name_char(char c) { return c == '_' || std::isalnum(static_cast<unsigned char>(c)) != 0 || (c & 0x80) != 0; }

bool is_plain_name(const std::string& name) {
  return !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) == 0 &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

}  // namespace

std::set<std::string> names_read(std::string_view text) { return names_used(text).read; }

NamesUsed names_used(std::string_view text) {
  NamesUsed used;
  for (std::size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      bool triple = text.substr(i, 3) == std::string(3, c);
      std::string_view close = triple ? text.substr(i, 3) : text.substr(i, 1);
      std::size_t end = i + close.size();
      while (end < text.size() && text.substr(end, close.size()) != close) {
        end += text[end] == '\\' ? 2 : 1;
      }
      i = std::min(text.size(), end + close.size());
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') {
        ++i;
      }
    } else if (is_name_char(c) && std::isdigit(static_cast<unsigned char>(c)) == 0) {
      std::size_t end = i;
      while (end < text.size() && is_name_char(text[end])) {
        ++end;
      }
      std::size_t before = i;
      while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t')) {
        --before;
      }
      std::size_t after = end;
      while (after < text.size() && (text[after] == ' ' || text[after] == '\t')) {
        ++after;
      }
      bool attribute = before > 0 && text[before - 1] == '.';
      bool prefix = end < text.size() && (text[end] == '"' || text[end] == '\'');  // f"...", b'...'
      if (!attribute && !prefix) {
        used.read.emplace(text.substr(i, end - i));
        if (after < text.size() && text[after] == '(') {
          used.called.emplace(text.substr(i, end - i));
        }
      }
      i = end;
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      while (i < text.size() && (is_name_char(text[i]) || text[i] == '.')) {
        ++i;
      }
    } else {
      ++i;
    }
  }
  return used;
}

namespace {

// The value side of `targets = value`: what the statement reads.
std::string_view value_text(const Statement& statement) {
  std::string_view text = statement.text;
  auto equals = text.find('=');
  return equals == std::string_view::npos ? text : text.substr(equals + 1);
}

// A change of the unchanged statement `index` of the new file.
Change statement_change(const Statement& statement, std::size_t index, Rule rule, Verdict verdict, std::string reason) {
  Change change;
  change.rule = rule;
  change.kind = ChangeKind::statement_changed;
  change.verdict = verdict;
  change.qualname = statement.scope_qualname;
  change.reason = std::move(reason);
  change.is_statement = true;
  change.new_index = static_cast<int>(index);
  change.line = statement.range.start_line;
  return change;
}

}  // namespace

void add_derived_values(const SourceFile& after, std::vector<Change>& changes) {
  // (scope, name) -> the re-run change that binds it; a module-level name
  // is read from every scope, a class-level one only in its class body.
  std::map<std::pair<std::string, std::string>, std::size_t> rerun;
  std::set<int> changed;
  // A class the patch adds runs its whole body when it is defined: its
  // statements read the new names then, and are no re-runs of their own.
  std::set<std::string> added_classes;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const Change& change = changes[i];
    if (!change.is_statement && change.kind == ChangeKind::added) {
      added_classes.insert(change.qualname);
    }
    if (!change.is_statement || change.new_index < 0) {
      continue;
    }
    changed.insert(change.new_index);
    if (change.verdict != Verdict::reexec) {
      continue;
    }
    const Statement& statement = after.statements[static_cast<std::size_t>(change.new_index)];
    for (const auto& target : statement.targets) {
      rerun.emplace(std::make_pair(statement.scope_qualname, target), i);
    }
  }
  if (rerun.empty()) {
    return;
  }
  auto in_added_class = [&](std::string scope) {
    while (!scope.empty()) {
      if (added_classes.count(scope) != 0) {
        return true;
      }
      auto dot = scope.rfind('.');
      scope = dot == std::string::npos ? std::string() : scope.substr(0, dot);
    }
    return false;
  };
  std::map<std::size_t, std::vector<std::string>> stale;  // change -> statements that keep derived values
  for (std::size_t index = 0; index < after.statements.size(); ++index) {
    const Statement& statement = after.statements[index];
    if (changed.count(static_cast<int>(index)) != 0 || statement.kind != Statement::Kind::assignment ||
        in_added_class(statement.scope_qualname)) {
      continue;
    }
    auto read = names_read(value_text(statement));
    std::string_view value = util::trim(value_text(statement));
    bool module_dict_itself = value == "globals()" || value == "vars()";  // inspect's `mod_dict = globals()`
    if (statement.scope_qualname.empty() && !module_dict_itself &&
        (read.count("globals") != 0 || read.count("vars") != 0)) {
      // token's `tok_name = {value: name for name, value in globals().items() ...}`:
      // run again it would see the live module, whose names keep their
      // old values until the patch is applied (and keep the names the file
      // dropped), so it cannot get what a fresh import gets. (The module's
      // dict itself is the live one either way.)
      auto above = std::find_if(rerun.begin(), rerun.end(), [&](const auto& entry) {
        return entry.first.first.empty() && changes[entry.second].line < statement.range.start_line;
      });
      if (above != rerun.end()) {
        changes.push_back(
            statement_change(statement, index, Rule::module_code_changed, Verdict::restart,
                             "unchanged, but it reads the module's globals() after " + above->first.second +
                                 " is run again; run again in the live module it would see the old values"));
        continue;
      }
    }
    std::optional<std::size_t> source;
    std::string names;
    for (const auto& name : read) {
      for (const std::string& scope : {statement.scope_qualname, std::string()}) {
        auto it = rerun.find({scope, name});
        if (it != rerun.end() && changes[it->second].line < statement.range.start_line) {
          source = source.value_or(it->second);
          names += (names.empty() ? "" : ", ") + name;
          break;
        }
      }
    }
    if (!source) {
      continue;
    }
    bool plain = !statement.conditional && !statement.targets.empty() &&
                 std::all_of(statement.targets.begin(), statement.targets.end(), is_plain_name) &&
                 statement.text.find("+=") == std::string::npos;
    if (!plain) {
      std::string first_line = statement.text.substr(0, statement.text.find('\n'));
      stale[*source].push_back("line " + std::to_string(statement.range.start_line) + " `" + first_line + "`");
      continue;
    }
    std::string reason(rule_entry(Rule::derived_value).reason);
    if (auto at = reason.find("{name}"); at != std::string::npos) {
      reason.replace(at, 6, names);
    }
    changes.push_back(statement_change(statement, index, Rule::derived_value, rule_entry(Rule::derived_value).verdict,
                                       std::move(reason)));
    for (const auto& target : statement.targets) {
      rerun.emplace(std::make_pair(statement.scope_qualname, target), changes.size() - 1);
    }
  }
  for (const auto& [index, lines] : stale) {
    std::string text;
    for (const auto& line : lines) {
      text += (text.empty() ? "" : ", ") + line;
    }
    changes[index].reason += "; not run again, so they keep values derived from the old one: " + text;
  }
}

}  // namespace pyhot::differ
