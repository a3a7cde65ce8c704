#include "parser/source_file.hpp"

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

}  // namespace pyhot::parser
