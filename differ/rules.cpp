#include "differ/rules.hpp"

#include <array>
#include <stdexcept>

namespace pyhot::differ {

namespace {

constexpr std::array k_rules{
    RuleEntry{Rule::definition_added, "definition_added", Verdict::define, "new definition: bound in its namespace"},
    RuleEntry{Rule::definition_removed, "definition_removed", Verdict::remove,
              "definition removed: its binding is removed"},
    RuleEntry{Rule::moved_only, "moved_only", Verdict::relocate, "only its line numbers changed"},
    RuleEntry{Rule::body_changed, "body_changed", Verdict::swap,
              "body changed: the new code replaces the old in place"},
    RuleEntry{Rule::signature_changed, "signature_changed", Verdict::swap,
              "signature changed (parameters, defaults or annotations): code and defaults are replaced in place"},
    RuleEntry{Rule::decorators_changed, "decorators_changed", Verdict::rebind,
              "decorator list changed: the decorators run again and the new object replaces the old binding"},
    RuleEntry{Rule::free_variables_changed, "free_variables_changed", Verdict::rebind,
              "free variables changed ({name}): a new object replaces the old binding; closures made earlier keep the "
              "old code"},
    RuleEntry{Rule::nested_definition_changed, "nested_definition_changed", Verdict::swap,
              "nested function changed: live closures and the enclosing function get the new code"},
    RuleEntry{Rule::main_guard_definition, "main_guard_definition", Verdict::restart,
              "defined under `if __name__ == \"__main__\":`, which ran once at start-up"},
    RuleEntry{Rule::class_added, "class_added", Verdict::define, "new class: its body runs and the class is bound"},
    RuleEntry{Rule::class_removed, "class_removed", Verdict::remove,
              "class removed: its binding is removed (existing instances keep it)"},
    RuleEntry{Rule::class_bases_changed, "class_bases_changed", Verdict::restart,
              "class bases or metaclass changed: existing instances and subclasses would keep the old ones"},
    RuleEntry{Rule::class_decorators_changed, "class_decorators_changed", Verdict::restart,
              "class decorators changed: they transformed the class when it was created"},
    RuleEntry{Rule::class_slots_changed, "class_slots_changed", Verdict::restart,
              "__slots__ changed: the memory layout of instances is fixed when the class is created"},
    RuleEntry{Rule::class_fields_changed, "class_fields_changed", Verdict::restart,
              "fields changed ({name}): dataclass/attrs/enum/NamedTuple members are built when the class is created"},
    RuleEntry{Rule::class_constant_changed, "class_constant_changed", Verdict::reexec,
              "class-level assignment changed: it is run again in the live class"},
    RuleEntry{Rule::class_attribute_removed, "class_attribute_removed", Verdict::remove,
              "class-level assignment removed: {name} is deleted from the live class"},
    RuleEntry{Rule::derived_value, "derived_value", Verdict::reexec,
              "unchanged, but it reads {name}, which is run again: it is run again after it"},
    RuleEntry{Rule::class_code_changed, "class_code_changed", Verdict::restart,
              "class body code changed: re-running it could repeat side effects"},
    RuleEntry{Rule::import_changed, "import_changed", Verdict::reexec,
              "import added or changed: it is run in the live module"},
    RuleEntry{Rule::constant_changed, "constant_changed", Verdict::reexec,
              "module-level assignment changed: it is run again; other module state is kept"},
    RuleEntry{Rule::statement_removed, "statement_removed", Verdict::reexec,
              "statement removed: the live module keeps the names it bound ({name})"},
    RuleEntry{Rule::future_import_changed, "future_import_changed", Verdict::restart,
              "__future__ imports changed: every function of the module would compile differently"},
    RuleEntry{Rule::module_code_changed, "module_code_changed", Verdict::restart,
              "module-level code changed: re-running it could repeat side effects"},
};

}  // namespace

std::span<const RuleEntry> all_rules() { return k_rules; }

const RuleEntry& rule_entry(Rule rule) {
  for (const auto& entry : k_rules) {
    if (entry.rule == rule) {
      return entry;
    }
  }
  throw std::logic_error("rule missing from the table");
}

}  // namespace pyhot::differ
