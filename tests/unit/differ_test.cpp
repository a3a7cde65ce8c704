#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "differ/differ.hpp"
#include "differ/rules.hpp"
#include "parser/parser.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::differ {
namespace {

parser::SourceFile parse(const std::string& text) {
  auto file = parser::parse_source(text, "test.py");
  EXPECT_TRUE(file.ok());
  return file.ok() ? *file : parser::SourceFile{};
}

std::vector<std::string> describe(const ChangeSet& changes, const parser::SourceFile& before,
                                  const parser::SourceFile& after) {
  std::vector<std::string> lines;
  for (const auto& change : changes.changes) {
    lines.push_back(std::string(rule_entry(change.rule).id) + " " + to_string(change.verdict) + " " +
                    subject_of(change, before, after));
  }
  return lines;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

// Every rule in the table is held by a before/after pair in testdata/.
TEST(DifferRules, EveryRuleHasAPairAndTheDifferReportsExactlyItsExpectedChanges) {
  for (const auto& entry : all_rules()) {
    std::string dir = "testdata/" + std::string(entry.id);
    SCOPED_TRACE(dir);
    ASSERT_TRUE(std::filesystem::exists(dir + "/before.py")) << "rule without a testdata pair";
    auto before = parse(*util::read_file(dir + "/before.py"));
    auto after = parse(*util::read_file(dir + "/after.py"));
    auto changes = diff(before, after);
    auto expected = read_lines(dir + "/expected.txt");
    EXPECT_EQ(describe(changes, before, after), expected);
    bool rule_seen = false;
    for (const auto& change : changes.changes) {
      rule_seen = rule_seen || (change.rule == entry.rule && change.verdict == entry.verdict);
    }
    EXPECT_TRUE(rule_seen) << "the pair does not exercise its rule";
  }
}

TEST(Differ, IdenticalFilesHaveNoChanges) {
  auto file = parse("import os\n\nclass C:\n    X = 1\n    def m(self):\n        return 1\n");
  EXPECT_TRUE(diff(file, file).empty());
}

TEST(Differ, SyntaxErrorInNewFileIsReportedAndNothingElse) {
  auto before = parse("def f():\n    return 1\n");
  auto after = parse("def f(:\n    return 1\n");
  auto changes = diff(before, after);
  EXPECT_FALSE(changes.syntax_errors.empty());
  EXPECT_TRUE(changes.changes.empty());
  EXPECT_TRUE(changes.needs_restart());
}

TEST(Differ, MovedDefinitionHashesTheSameAtAnotherIndentation) {
  auto top = parse("def f(x):\n    return x + 1\n");
  auto nested = parse("class C:\n    def f(x):\n        return x + 1\n");
  EXPECT_EQ(hash_definition(top, top.definitions[0]), hash_definition(nested, nested.definitions[1]));
}

TEST(Differ, PropertySetterIsMatchedByOccurrence) {
  std::string before_text =
      "class C:\n    @property\n    def x(self):\n        return self._x\n"
      "    @x.setter\n    def x(self, v):\n        self._x = v\n";
  std::string after_text =
      "class C:\n    @property\n    def x(self):\n        return self._x\n"
      "    @x.setter\n    def x(self, v):\n        self._x = v * 2\n";
  auto before = parse(before_text);
  auto after = parse(after_text);
  auto changes = diff(before, after);
  ASSERT_EQ(changes.changes.size(), 1U);
  EXPECT_EQ(changes.changes[0].verdict, Verdict::swap);
  EXPECT_EQ(changes.changes[0].new_index, 2);
}

// Thousands of definitions, some qualnames defined two or three times: each
// edited definition pairs with its own old occurrence (counted from the
// last), whichever slot of the key table its qualname lands in.
TEST(Differ, RepeatedQualnamesPairByOccurrenceAmongThousands) {
  auto module = [](int edited_a, int edited_b) {
    std::string text;
    for (int i = 0; i < 4000; ++i) {
      // f<i % 1500>: names below 1000 come three times, the others twice or once.
      std::string name = "f" + std::to_string(i % 1500);
      int value = (i == edited_a || i == edited_b) ? 7 : 1;
      text += "def " + name + "(x):\n    return x + " + std::to_string(value) + "\n\n";
    }
    return text;
  };
  auto before = parse(module(-1, -1));
  // Occurrence 2 of 3 of f5 (i = 1505) and the last of f1200 (i = 2700).
  auto after = parse(module(1505, 2700));
  auto changes = diff(before, after);
  ASSERT_EQ(changes.changes.size(), 2U);
  EXPECT_EQ(changes.changes[0].qualname, "f5");
  EXPECT_EQ(changes.changes[0].new_index, 1505);
  EXPECT_EQ(changes.changes[0].old_index, 1505);
  EXPECT_EQ(changes.changes[1].qualname, "f1200");
  EXPECT_EQ(changes.changes[1].new_index, 2700);
  EXPECT_EQ(changes.changes[1].old_index, 2700);
  for (const auto& change : changes.changes) {
    EXPECT_EQ(change.verdict, Verdict::swap);
  }
  // An extra first occurrence of f7 above everything: the old ones keep
  // their pairing from the end, the new one pairs with nothing.
  auto extra = parse("def f7(x):\n    return 0\n\n" + module(-1, -1));
  auto added = diff(before, extra);
  for (const auto& change : added.changes) {
    EXPECT_NE(change.verdict, Verdict::swap) << change.qualname << " " << change.new_index;
    EXPECT_TRUE(change.old_index < 0 || change.new_index == change.old_index + 1)
        << change.qualname << " " << change.old_index << " -> " << change.new_index;
  }
}

// Issue 14 item 4: every spelling of a class whose body a decorator or a
// metaclass consumes makes a field change (added, edited or removed) a
// restart; a plain class's assignment is re-run.
TEST(Differ, FieldsOfConsumedClassesInEverySpellingAreRestart) {
  const char* const k_heads[] = {"@attrs(slots=False)\nclass C:\n",
                                 "@attr.s\nclass C:\n",
                                 "@attr.s(auto_attribs=True)\nclass C:\n",
                                 "@define\nclass C:\n",
                                 "@attr.define\nclass C:\n",
                                 "@attrs.frozen\nclass C:\n",
                                 "@frozen\nclass C:\n",
                                 "@dataclass\nclass C:\n",
                                 "@dataclass(frozen=True)\nclass C:\n",
                                 "@dataclasses.dataclass(order=True)\nclass C:\n",
                                 "@pydantic.dataclasses.dataclass\nclass C:\n",
                                 "class C(BaseModel):\n",
                                 "class C(models.Model):\n",
                                 "class C(enum.Enum):\n",
                                 "class C(NamedTuple):\n",
                                 "class C(typing.TypedDict, total=False):\n",
                                 "class C(Base, metaclass=Registry):\n"};
  for (const char* head : k_heads) {
    SCOPED_TRACE(head);
    auto before = parse(std::string(head) + "    x: int = 1\n    y: int = 2\n");
    for (const char* body :
         {"    x: int = 3\n    y: int = 2\n", "    x: int = 1\n", "    x: int = 1\n    y: int = 2\n    z = 0\n"}) {
      auto changes = diff(before, parse(std::string(head) + body));
      ASSERT_FALSE(changes.changes.empty()) << body;
      EXPECT_EQ(changes.changes[0].rule, Rule::class_fields_changed) << body;
      EXPECT_EQ(changes.changes[0].verdict, Verdict::restart) << body;
    }
  }
  for (const char* head : {"class C:\n", "class C(Base, metaclass=abc.ABCMeta):\n"}) {
    auto changes = diff(parse(std::string(head) + "    x: int = 1\n"), parse(std::string(head) + "    x: int = 3\n"));
    ASSERT_EQ(changes.changes.size(), 1U) << head;
    EXPECT_EQ(changes.changes[0].rule, Rule::class_constant_changed) << head;
  }
}

TEST(Differ, StatementsOfAnAddedClassAreNotDerivedValuesOfANewImport) {
  // glob 3.12 -> 3.13: the new class's body reads the new import, and runs
  // whole when the class is defined (re-running its statements into a live
  // class that does not exist yet failed: "Cannot locate class _Globber").
  auto before = parse("import os\n\ndef glob(p):\n    return [p]\n");
  auto after = parse(
      "import os\nimport operator\n\ndef glob(p):\n    return [p]\n\n"
      "class _Globber:\n    lstat = operator.methodcaller('lstat')\n");
  EXPECT_EQ(describe(diff(before, after), before, after),
            (std::vector<std::string>{"import_changed reexec <module>: import operator", "moved_only relocate glob",
                                      "class_added define _Globber"}));
}

TEST(Differ, GlobalsReadBelowARerunIsRestartWithTheReason) {
  // token's tok_name: run in the live module, globals() holds the old numbers.
  const char* const k_tail = "tok_name = {v: n for n, v in globals().items() if isinstance(v, int)}\n";
  auto before = parse(std::string("OP = 54\n") + k_tail);
  auto after = parse(std::string("OP = 55\n") + k_tail);
  auto changes = diff(before, after);
  ASSERT_EQ(changes.changes.size(), 2U);
  EXPECT_EQ(changes.changes[0].verdict, Verdict::reexec);
  EXPECT_EQ(changes.changes[1].verdict, Verdict::restart);
  EXPECT_NE(changes.changes[1].reason.find("reads the module's globals() after OP is run again"), std::string::npos)
      << changes.changes[1].reason;
  // Nothing above it is run again: unchanged, nothing said.
  auto edited = parse(std::string("OP = 54\n") + k_tail + "X = 1\n");
  EXPECT_EQ(diff(before, edited).changes.size(), 1U);
  // inspect's `mod_dict = globals()`: the live module's dict, whatever is run again.
  auto dict_before = parse("OP = 54\nmod_dict = globals()\n");
  auto dict_after = parse("OP = 55\nmod_dict = globals()\n");
  for (const auto& change : diff(dict_before, dict_after).changes) {
    EXPECT_NE(change.verdict, Verdict::restart) << change.reason;
  }
}

}  // namespace
}  // namespace pyhot::differ
