#include "cli/profile_select.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "util/text.hpp"

namespace pyhot::cli {

using parser::Definition;
using parser::DefinitionKind;

namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool is_file_pattern(const std::string& pattern) {
  return pattern.find('/') != std::string::npos || ends_with(pattern, ".py");
}

// `outer.<locals>.inner` may be written `outer.inner`.
std::string without_locals(std::string qualname) {
  const std::string locals = ".<locals>";
  for (auto at = qualname.find(locals); at != std::string::npos; at = qualname.find(locals)) {
    qualname.erase(at, locals.size());
  }
  return qualname;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_function(const Definition& def) { return def.kind != DefinitionKind::klass; }

}  // namespace

std::vector<std::string> nearest_names(const std::string& wanted, const std::vector<std::string>& names,
                                       std::size_t count) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& name : names) {
    scored.emplace_back(edit_distance(wanted, name), name);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (const auto& [distance, name] : scored) {
    if (out.size() == count) {
      break;
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
  }
  return out;
}

FunctionCatalog::FunctionCatalog(std::vector<loader::LoadedModule> modules, Loader load)
    : m_modules(std::move(modules)), m_load(std::move(load)) {}

const loader::LoadedModule* FunctionCatalog::module_named(const std::string& name) const {
  for (const auto& module : m_modules) {
    if (module.name == name) {
      return &module;
    }
  }
  return nullptr;
}

const parser::SourceFile* FunctionCatalog::source(const std::string& module) const {
  auto found = m_parsed.find(module);
  return found == m_parsed.end() ? nullptr : &found->second;
}

Result<const parser::SourceFile*> FunctionCatalog::parsed(const loader::LoadedModule& module) {
  auto found = m_parsed.find(module.name);
  if (found != m_parsed.end()) {
    return &found->second;
  }
  auto source = m_load(module);
  if (!source) {
    return source.error().with_context("reading module " + module.name);
  }
  if (!source->errors.empty()) {
    const auto& error = source->errors.front();
    return make_error(ErrorKind::syntax_error, "syntax error in " + module.file + ":" + std::to_string(error.line) +
                                                   ":" + std::to_string(error.column) + ": " + error.message);
  }
  return &m_parsed.emplace(module.name, std::move(*source)).first->second;
}

Error FunctionCatalog::nothing_matches(const std::string& pattern, const std::vector<std::string>& candidates) const {
  std::string message = "no function matches '" + pattern + "'";
  auto nearest = nearest_names(pattern, candidates);
  if (!nearest.empty()) {
    message += "; nearest: " + nearest.front();
    for (std::size_t i = 1; i < nearest.size(); ++i) {
      message += ", " + nearest[i];
    }
  }
  return make_error(ErrorKind::not_found, message);
}

Result<std::vector<ChosenFunction>> FunctionCatalog::select_one(const std::string& pattern) {
  std::vector<ChosenFunction> out;
  std::vector<std::string> candidates;
  auto add_module = [&](const loader::LoadedModule& module,
                        const std::function<bool(const Definition&)>& wanted) -> Result<Done> {
    auto source = parsed(module);
    if (!source) {
      return source.error();
    }
    for (const auto& def : (*source)->definitions) {
      if (is_function(def)) {
        candidates.push_back(module.name + "." + without_locals(def.qualname));
        if (wanted(def)) {
          out.push_back({module.name, module.file, &def});
        }
      }
    }
    return k_done;
  };
  if (is_file_pattern(pattern)) {
    std::error_code error;
    auto real = std::filesystem::weakly_canonical(pattern, error).string();
    for (const auto& module : m_modules) {
      if (module.file == real) {
        if (auto added = add_module(module, [](const Definition&) { return true; }); !added) {
          return added.error();
        }
        break;
      }
      candidates.push_back(module.file);
    }
    return out.empty() ? Result<std::vector<ChosenFunction>>(nothing_matches(pattern, candidates)) : out;
  }
  bool recursive = ends_with(pattern, ".**");
  bool one_level = !recursive && ends_with(pattern, ".*");
  std::string stem = recursive   ? pattern.substr(0, pattern.size() - 3)
                     : one_level ? pattern.substr(0, pattern.size() - 2)
                                 : pattern;
  if (recursive) {
    for (const auto& module : m_modules) {
      if (module.name == stem || util::starts_with(module.name, stem + ".")) {
        if (auto added = add_module(module, [](const Definition&) { return true; }); !added) {
          return added.error();
        }
      }
    }
  }
  // The longest loaded module that the name starts with; the rest is a qualname.
  const loader::LoadedModule* module = nullptr;
  std::string rest;
  for (auto cut = stem.size(); out.empty() && cut != std::string::npos && cut > 0; cut = stem.rfind('.', cut - 1)) {
    if ((module = module_named(stem.substr(0, cut))) != nullptr) {
      rest = cut < stem.size() ? stem.substr(cut + 1) : std::string();
      break;
    }
  }
  if (out.empty() && module != nullptr) {
    auto added = add_module(*module, [&](const Definition& def) {
      std::string plain = without_locals(def.qualname);
      std::string parent = without_locals(def.parent_qualname);
      if (recursive) {
        return plain == rest || util::starts_with(plain, rest + ".");
      }
      if (one_level) {
        return parent == rest;
      }
      return !rest.empty() && (plain == rest || def.qualname == rest || parent == rest);
    });
    if (!added) {
      return added.error();
    }
    // `module.Class` names its methods; `module.f` only f.
    if (!one_level && !recursive) {
      auto exact = std::count_if(out.begin(), out.end(), [&](const ChosenFunction& chosen) {
        return without_locals(chosen.definition->qualname) == rest || chosen.definition->qualname == rest;
      });
      if (exact > 0) {
        std::erase_if(out, [&](const ChosenFunction& chosen) {
          return without_locals(chosen.definition->qualname) != rest && chosen.definition->qualname != rest;
        });
      } else if (const auto* source = this->source(module->name); source != nullptr) {
        const auto* klass = source->find(rest);
        if (klass == nullptr || klass->kind != DefinitionKind::klass) {
          out.clear();
        }
      }
    }
  }
  if (out.empty()) {
    if (module == nullptr) {
      for (const auto& loaded : m_modules) {
        candidates.push_back(loaded.name + (one_level ? ".*" : recursive ? ".**" : ""));
      }
    }
    return nothing_matches(pattern, candidates);
  }
  return out;
}

Result<std::vector<ChosenFunction>> FunctionCatalog::select(const std::vector<std::string>& patterns) {
  std::vector<ChosenFunction> out;
  std::set<std::pair<std::string, const Definition*>> seen;
  for (const auto& pattern : patterns) {
    auto chosen = select_one(pattern);
    if (!chosen) {
      return chosen.error();
    }
    for (auto& function : *chosen) {
      if (seen.insert({function.module, function.definition}).second) {
        out.push_back(std::move(function));
      }
    }
  }
  return out;
}

}  // namespace pyhot::cli
