// Which functions of a live process a profile pattern names:
// `module.qualname`, `module.*` (one level), `pkg.**` (recursively),
// `module.Class.*`, or a file path (every function in it).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "loader/agent_api.hpp"
#include "parser/source_file.hpp"
#include "util/result.hpp"

namespace pyhot::cli {

struct ChosenFunction {
  std::string module;
  std::string file;
  const parser::Definition* definition = nullptr;
  std::string name() const { return module + "." + definition->qualname; }
};

// The loaded modules and, parsed when a pattern needs them, their definitions.
class FunctionCatalog {
 public:
  using Loader = std::function<Result<parser::SourceFile>(const loader::LoadedModule&)>;
  FunctionCatalog(std::vector<loader::LoadedModule> modules, Loader load);

  // Every function the patterns name, each once, in pattern order. A
  // pattern that names nothing is an error that gives the nearest names.
  Result<std::vector<ChosenFunction>> select(const std::vector<std::string>& patterns);
  // The source a chosen function came from.
  const parser::SourceFile* source(const std::string& module) const;

 private:
  Result<std::vector<ChosenFunction>> select_one(const std::string& pattern);
  Result<const parser::SourceFile*> parsed(const loader::LoadedModule& module);
  const loader::LoadedModule* module_named(const std::string& name) const;
  Error nothing_matches(const std::string& pattern, const std::vector<std::string>& candidates) const;

  std::vector<loader::LoadedModule> m_modules;
  Loader m_load;
  std::map<std::string, parser::SourceFile> m_parsed;
};

// The `count` names nearest to `wanted` by edit distance, nearest first.
std::vector<std::string> nearest_names(const std::string& wanted, const std::vector<std::string>& names,
                                       std::size_t count = 3);

}  // namespace pyhot::cli
