#include "parser/source_file.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace pyhot::parser {

const char* to_string(DefinitionKind kind) {
  switch (kind) {
    case DefinitionKind::function:
      return "function";
    case DefinitionKind::async_function:
      return "async_function";
    case DefinitionKind::klass:
      return "class";
    case DefinitionKind::method:
      return "method";
    case DefinitionKind::static_method:
      return "static_method";
    case DefinitionKind::class_method:
      return "class_method";
    case DefinitionKind::property:
      return "property";
  }
  return "unknown";
}

const Definition* SourceFile::find(const std::string& qualname) const {
  for (const Definition& definition : definitions) {
    if (definition.qualname == qualname) {
      return &definition;
    }
  }
  return nullptr;
}

bool deletes_every_definition(const SourceFile& live, const SourceFile& after) {
  return !live.definitions.empty() && after.definitions.empty();
}

bool deletes_a_definition(const SourceFile& live, const SourceFile& after) {
  std::unordered_set<std::string_view> kept;
  kept.reserve(after.definitions.size());
  for (const auto& definition : after.definitions) {
    kept.insert(definition.qualname);
  }
  return std::any_of(live.definitions.begin(), live.definitions.end(),
                     [&](const Definition& definition) { return !kept.contains(definition.qualname); });
}

}  // namespace pyhot::parser
