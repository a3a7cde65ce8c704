// The one table of what a change means for a live process: every rule the
// differ applies, its verdict and the reason the user reads. Each rule has a
// before/after pair in testdata/<id>/ that a test holds it to.
#pragma once

#include <span>
#include <string_view>

#include "differ/differ.hpp"

namespace pyhot::differ {

enum class Rule {
  definition_added,
  definition_removed,
  moved_only,
  body_changed,
  signature_changed,
  decorators_changed,
  free_variables_changed,
  nested_definition_changed,
  main_guard_definition,
  class_added,
  class_removed,
  class_bases_changed,
  class_decorators_changed,
  class_slots_changed,
  class_fields_changed,
  class_constant_changed,
  class_attribute_removed,
  derived_value,
  class_code_changed,
  import_changed,
  constant_changed,
  statement_removed,
  future_import_changed,
  module_code_changed,
};

struct RuleEntry {
  Rule rule;
  std::string_view id;  // testdata/<id>/
  Verdict verdict;
  std::string_view reason;  // may contain {name}, replaced with the subject
};

std::span<const RuleEntry> all_rules();
const RuleEntry& rule_entry(Rule rule);

}  // namespace pyhot::differ
