// Internal to parser/: a model of CPython's symbol table (Python/symtable.c),
// enough to give every function the co_freevars CPython would give it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pyhot::parser {

enum class ScopeType : std::uint8_t {
  module,
  function,  // def and async def
  lambda,
  comprehension,  // list/set/dict comprehension, generator expression
  klass,
  type_params,  // PEP 695 scope that holds T of def f[T] / class C[T] / type A[T]
  type_alias,   // PEP 695 lazily evaluated value of `type A = ...`
};

// Flags as symtable.c names them.
inline constexpr std::uint32_t k_def_global = 1U << 0;
inline constexpr std::uint32_t k_def_local = 1U << 1;
inline constexpr std::uint32_t k_def_param = 1U << 2;
inline constexpr std::uint32_t k_def_nonlocal = 1U << 3;
inline constexpr std::uint32_t k_use = 1U << 4;
inline constexpr std::uint32_t k_def_import = 1U << 5;
inline constexpr std::uint32_t k_def_bound = k_def_local | k_def_param | k_def_import;

struct Scope {
  ScopeType type = ScopeType::module;
  int parent = -1;
  std::string_view private_name;  // class name used for __x mangling, "" outside classes
  std::unordered_map<std::string_view, std::uint32_t> symbols;
  std::vector<int> children;
  int definition = -1;  // index of the Definition this scope is the body of
  bool has_yield = false;
  std::vector<std::string_view> frees;  // after analyze(): names whose scope is FREE, sorted
};

class ScopeTable {
 public:
  ScopeTable();

  int add(ScopeType type, int parent, std::string_view private_name);
  Scope& operator[](int index) { return m_scopes[static_cast<std::size_t>(index)]; }
  const Scope& operator[](int index) const { return m_scopes[static_cast<std::size_t>(index)]; }

  // Records a binding or use of `name` in `scope` (mangled as CPython does).
  void add_symbol(int scope, std::string_view name, std::uint32_t flags);
  std::string_view mangle(std::string_view private_name, std::string_view name);

  // CPython's analyze(): resolves every scope's names; fills Scope::frees.
  void analyze();

 private:
  using NameSet = std::unordered_set<std::string_view>;
  void analyze_block(int scope, NameSet* bound, NameSet& free, NameSet& global);

  std::deque<Scope> m_scopes;
  std::deque<std::string> m_mangled;  // storage for mangled names (string_views point here)
};

}  // namespace pyhot::parser
