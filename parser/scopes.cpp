#include "parser/scopes.hpp"

#include <algorithm>

namespace pyhot::parser {

namespace {

// symtable.c's resolved scopes.
enum class Resolved : std::uint8_t { local, global_explicit, global_implicit, free, cell };

constexpr std::string_view k_dunder_class = "__class__";

bool is_function_like(ScopeType type) {
  // Function-like scopes add their locals to what nested scopes can see
  // (_PyST_IsFunctionLike in 3.12+, FunctionBlock before).
  return type == ScopeType::function || type == ScopeType::lambda || type == ScopeType::comprehension ||
         type == ScopeType::type_params || type == ScopeType::type_alias;
}

}  // namespace

ScopeTable::ScopeTable() { add(ScopeType::module, -1, {}); }

int ScopeTable::add(ScopeType type, int parent, std::string_view private_name) {
  int index = static_cast<int>(m_scopes.size());
  Scope& scope = m_scopes.emplace_back();
  scope.type = type;
  scope.parent = parent;
  scope.private_name = private_name;
  if (parent >= 0) {
    (*this)[parent].children.push_back(index);
  }
  return index;
}

std::string_view ScopeTable::mangle(std::string_view private_name, std::string_view name) {
  // _Py_Mangle: only __x inside a class, never __x__ or dotted names.
  if (private_name.empty() || name.size() < 2 || name[0] != '_' || name[1] != '_') {
    return name;
  }
  if ((name.size() >= 4 && name[name.size() - 1] == '_' && name[name.size() - 2] == '_') ||
      name.find('.') != std::string_view::npos) {
    return name;
  }
  std::size_t strip = private_name.find_first_not_of('_');
  if (strip == std::string_view::npos) {
    return name;
  }
  std::string& mangled = m_mangled.emplace_back();
  mangled.reserve(1 + private_name.size() - strip + name.size());
  mangled += '_';
  mangled += private_name.substr(strip);
  mangled += name;
  return mangled;
}

void ScopeTable::add_symbol(int scope_index, std::string_view name, std::uint32_t flags) {
  Scope& scope = (*this)[scope_index];
  scope.symbols[mangle(scope.private_name, name)] |= flags;
}

void ScopeTable::analyze() {
  NameSet free;
  NameSet global;
  analyze_block(0, nullptr, free, global);
}

// A transcription of analyze_block() in CPython 3.11's symtable.c, where
// comprehensions are still their own function scopes. PEP 709 (3.12) inlines
// them, which changes cells but not any function's free variables.
void ScopeTable::analyze_block(int scope_index, NameSet* bound, NameSet& free, NameSet& global) {
  NameSet local;
  NameSet new_global;
  NameSet new_free;
  NameSet new_bound;
  std::unordered_map<std::string_view, Resolved> resolved;
  const ScopeType type = (*this)[scope_index].type;
  const bool is_class = type == ScopeType::klass;

  // A class body does not make its names visible to nested functions.
  if (is_class) {
    new_global = global;
    if (bound != nullptr) {
      new_bound = *bound;
    }
  }

  for (const auto& [name, flags] : (*this)[scope_index].symbols) {
    if ((flags & k_def_global) != 0U) {
      resolved[name] = Resolved::global_explicit;
      global.insert(name);
      if (bound != nullptr) {
        bound->erase(name);
      }
    } else if ((flags & k_def_nonlocal) != 0U) {
      resolved[name] = Resolved::free;
      free.insert(name);
    } else if ((flags & k_def_bound) != 0U) {
      resolved[name] = Resolved::local;
      local.insert(name);
      global.erase(name);
    } else if (bound != nullptr && bound->count(name) != 0) {
      resolved[name] = Resolved::free;
      free.insert(name);
    } else {
      resolved[name] = Resolved::global_implicit;
    }
  }

  if (!is_class) {
    if (is_function_like(type)) {
      new_bound.insert(local.begin(), local.end());
    }
    if (bound != nullptr) {
      new_bound.insert(bound->begin(), bound->end());
    }
    new_global.insert(global.begin(), global.end());
  } else {
    new_bound.insert(k_dunder_class);
  }

  NameSet all_free;
  // A copy, so no reference into m_scopes is held across the recursion.
  const std::vector<int> children = (*this)[scope_index].children;
  for (int child : children) {
    NameSet child_bound = new_bound;
    NameSet child_free;
    NameSet child_global = new_global;
    analyze_block(child, &child_bound, child_free, child_global);
    all_free.insert(child_free.begin(), child_free.end());
  }
  new_free.insert(all_free.begin(), all_free.end());

  if (is_function_like(type)) {
    // analyze_cells: a local that a child needs becomes a cell, not free here.
    for (auto& [name, how] : resolved) {
      if (how == Resolved::local && new_free.erase(name) != 0) {
        how = Resolved::cell;
      }
    }
  } else if (is_class) {
    // drop_class_free: __class__ is the class's own cell.
    new_free.erase(k_dunder_class);
  }

  // update_symbols: a name free in a child passes through this scope when an
  // enclosing function binds it.
  Scope& scope = (*this)[scope_index];
  for (std::string_view name : new_free) {
    if (scope.symbols.count(name) != 0) {
      continue;
    }
    if (bound != nullptr && bound->count(name) == 0) {
      continue;
    }
    scope.symbols[name] = 0;
    resolved[name] = Resolved::free;
  }

  scope.frees.clear();
  for (const auto& [name, how] : resolved) {
    if (how == Resolved::free) {
      scope.frees.push_back(name);
    }
  }
  std::sort(scope.frees.begin(), scope.frees.end());

  free.insert(new_free.begin(), new_free.end());
}

}  // namespace pyhot::parser
