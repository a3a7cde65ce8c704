#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "differ/differ.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_source.hpp"
#include "parser/parser.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/live_patch.hpp"
#include "patch/plan.hpp"
#include "util/text.hpp"

namespace pyhot::patch {
namespace {

using differ::Verdict;
using loader::Status;
using nlohmann::json;

parser::SourceFile parse(const std::string& text) {
  auto file = parser::parse_source(text, "test.py");
  EXPECT_TRUE(file.ok());
  return file.ok() ? *file : parser::SourceFile{};
}

// The agent, as far as the planner can tell: answers `snapshot` with a fixed
// text (or none) and every `apply` with the statuses `statuses` gives its
// units; keeps every request for the test to read.
class FakeAgent final : public loader::AgentChannel {
 public:
  std::optional<std::string> snapshot;
  std::optional<std::string> snapshot_hash;
  std::function<std::string(const json& unit, bool probe)> statuses = [](const json&, bool probe) {
    return probe ? "would_apply" : "applied";
  };
  std::vector<std::pair<std::string, json>> requests;

  Result<json> request(const std::string& op, json arguments) override {
    requests.emplace_back(op, arguments);
    if (op == "snapshot") {
      bool text = !snapshot_hash || arguments.value("source", true);
      return json{{"source", snapshot && text ? json(*snapshot) : json(nullptr)},
                  {"hash", snapshot_hash ? json(*snapshot_hash) : json(nullptr)}};
    }
    if (op != "apply") {
      return make_error(ErrorKind::protocol, "unexpected op " + op);
    }
    bool probe = arguments["verify"].get<bool>() && arguments["dry_run"].get<bool>();
    json results = json::array();
    for (const auto& unit : arguments["units"]) {
      results.push_back({{"qualname", unit["qualname"]}, {"status", statuses(unit, probe)}});
    }
    bool patched = !arguments["dry_run"].get<bool>() && !results.empty();
    return json{{"patch", patched ? json(1) : json(nullptr)}, {"results", results}};
  }

  std::vector<json> applies() const {
    std::vector<json> out;
    for (const auto& [op, arguments] : requests) {
      if (op == "apply") {
        out.push_back(arguments);
      }
    }
    return out;
  }
};

std::vector<std::string> unit_names(const json& apply) {
  std::vector<std::string> names;
  for (const auto& unit : apply["units"]) {
    names.push_back(unit["qualname"].get<std::string>() + " " + unit["verdict"].get<std::string>());
  }
  return names;
}

// The parsed cache goes to a directory of this test's own.
class PatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_cache = std::filesystem::temp_directory_path() / ("pyhot-patch-test-" + std::to_string(getpid()));
    setenv("PYHOT_CACHE_DIR", m_cache.c_str(), 1);
  }
  void TearDown() override {
    std::filesystem::remove_all(m_cache);
    unsetenv("PYHOT_CACHE_DIR");
  }

  FakeAgent fake;
  loader::Agent agent{fake};
  ModuleLocation where{"app", "/srv/app.py", std::nullopt};

 private:
  std::filesystem::path m_cache;
};

const std::string k_before = "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 2\n";

TEST_F(PatchTest, WithASnapshotOnlyTheChangedDefinitionIsSent) {
  fake.snapshot = k_before;
  auto outcome = patch_file(agent, where, "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 3\n", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 1U);
  EXPECT_EQ(unit_names(applies[0]), (std::vector<std::string>{"g swap"}));
  EXPECT_FALSE(applies[0].contains("snapshot")) << "the sent text is what becomes live";
  ASSERT_EQ(outcome->changes.size(), 1U);
  EXPECT_EQ(outcome->changes[0].status, Status::applied);
  EXPECT_EQ(outcome->patch_id, 1);
  EXPECT_FALSE(outcome->first_touch);
}

TEST_F(PatchTest, FirstTouchProbesEveryDefinitionThenSendsExactVerdicts) {
  fake.statuses = [](const json& unit, bool probe) -> std::string {
    std::string name = unit["qualname"];
    if (!probe) {
      return unit["verdict"] == "reexec" ? "unchanged" : "applied";  // the live module has `os`
    }
    return name == "f" ? "unchanged" : name == "g" ? "missing" : "freevars_changed";
  };
  auto outcome = patch_file(agent, where, k_before + "\n\ndef h():\n    return os\n", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 2U);
  EXPECT_TRUE(applies[0]["dry_run"].get<bool>() && applies[0]["verify"].get<bool>());
  EXPECT_EQ(unit_names(applies[0]), (std::vector<std::string>{"f swap", "g swap", "h swap"}));
  // The import comes along, bound only where the live module lacks it.
  EXPECT_EQ(unit_names(applies[1]), (std::vector<std::string>{" reexec", "g define", "h rebind"}));
  EXPECT_TRUE(applies[1]["units"][0]["only_if_missing"].get<bool>());
  EXPECT_FALSE(applies[1].contains("snapshot"));
  EXPECT_TRUE(outcome->first_touch);
  ASSERT_EQ(outcome->changes.size(), 2U) << "an import the live module has is not a change";
  EXPECT_EQ(outcome->changes[0].verdict, Verdict::define);
  EXPECT_EQ(outcome->changes[1].verdict, Verdict::rebind);
}

TEST_F(PatchTest, FirstTouchWithNothingChangedStillRecordsTheFileAsLive) {
  fake.statuses = [](const json&, bool) { return "unchanged"; };
  auto outcome = patch_file(agent, where, k_before, false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 2U);
  // Only the import, bound only where the live module lacks it.
  EXPECT_EQ(unit_names(applies[1]), (std::vector<std::string>{" reexec"}));
  EXPECT_TRUE(applies[1]["units"][0]["only_if_missing"].get<bool>());
  EXPECT_FALSE(applies[1]["dry_run"].get<bool>());
  EXPECT_TRUE(outcome->changes.empty());
  EXPECT_FALSE(outcome->changed_anything());
}

TEST_F(PatchTest, FirstTouchDryRunRecordsNothing) {
  fake.statuses = [](const json&, bool) { return "unchanged"; };
  auto outcome = patch_file(agent, where, k_before, true);
  ASSERT_TRUE(outcome.ok());
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 2U) << "the probe, then the imports and literals as a dry run";
  EXPECT_TRUE(applies[1]["dry_run"].get<bool>());
  EXPECT_FALSE(applies[1].contains("snapshot_hash")) << "a dry run records nothing";
  EXPECT_TRUE(outcome->dry_run);
}

TEST_F(PatchTest, OneDefinitionIsSentAloneAndTheSplicedTextIsRecorded) {
  fake.snapshot = k_before;
  std::string edited = "import os\n\n\ndef f():\n    return 10\n\n\ndef g():\n    return 20\n";
  auto outcome = patch_definition(agent, where, edited, "g", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 1U);
  EXPECT_EQ(unit_names(applies[0]), (std::vector<std::string>{"g swap"}));
  EXPECT_EQ(applies[0]["snapshot"], "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 20\n");
  EXPECT_EQ(outcome->definition_source, "def g():\n    return 20");
}

TEST_F(PatchTest, OneDefinitionOnFirstTouchRecordsNoSnapshot) {
  auto outcome = patch_definition(agent, where, k_before, "g", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto applies = fake.applies();
  ASSERT_EQ(applies.size(), 2U);
  EXPECT_EQ(unit_names(applies[0]), (std::vector<std::string>{"g swap"}));
  EXPECT_TRUE(applies[1]["snapshot"].is_null());
}

TEST_F(PatchTest, AnUnknownDefinitionIsNotFound) {
  fake.snapshot = k_before;
  auto outcome = patch_definition(agent, where, k_before, "nope", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().kind, ErrorKind::not_found);
  EXPECT_TRUE(fake.applies().empty());
}

TEST_F(PatchTest, ARestartVerdictRefusesEverythingAndSendsNothing) {
  fake.snapshot = "class A:\n    pass\n\n\ndef f():\n    return 1\n";
  auto outcome = patch_file(agent, where, "class A(dict):\n    pass\n\n\ndef f():\n    return 2\n", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_TRUE(fake.applies().empty());
  ASSERT_EQ(outcome->refused.size(), 1U);
  EXPECT_EQ(outcome->refused[0].qualname, "A");
  EXPECT_EQ(outcome->refused[0].verdict, Verdict::restart);
  EXPECT_TRUE(outcome->changes.empty());
}

TEST_F(PatchTest, ASyntaxErrorSendsNothing) {
  fake.snapshot = k_before;
  auto outcome = patch_file(agent, where, "def f(:\n", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().kind, ErrorKind::syntax_error);
  EXPECT_TRUE(fake.applies().empty());
}

TEST(Planner, ARemovedStatementIsKeptAndNothingIsSentForIt) {
  auto before = parse("import os\nX = 1\n\n\ndef f():\n    return X\n");
  auto after = parse("import os\n\n\n\ndef f():\n    return X\n");
  auto plan = plan_from_snapshot(
      before, after, differ::diff(before, after), [](const differ::Change&) { return true; },
      loader::SnapshotRecord::sent());
  EXPECT_TRUE(plan.units.empty());
  ASSERT_EQ(plan.kept.size(), 1U);
  EXPECT_EQ(plan.kept[0].qualname, "<module>: X = 1");
  EXPECT_EQ(plan.kept[0].status, Status::kept);
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string_view::npos ? text.size() : end + 1;
    lines.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

// What the agent does with an edit: base lines [0, start) + the text's lines + base lines [end, ...).
std::string apply_edit(std::string_view base, const loader::SourceEdit& edit) {
  auto lines = lines_of(base);
  std::string out;
  for (std::size_t i = 0; i < edit.start; ++i) {
    out += lines[i];
  }
  auto middle = lines_of(edit.text);
  for (const auto& line : middle) {
    out += line;
  }
  for (std::size_t i = edit.end; i < lines.size(); ++i) {
    out += lines[i];
  }
  EXPECT_EQ(lines_of(out).size(), edit.start + middle.size() + (lines.size() - edit.end)) << "lines stay whole";
  return out;
}

TEST(SourceEdit, CarriesOnlyTheChangedLinesAndRebuildsTheNewText) {
  std::vector<std::pair<std::string, std::string>> cases{
      {k_before, "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 3\n"},
      {"a\nb\nc\n", "a\nb\nc\n"},
      {"a\nb\nc\n", "a\nB\nc\n"},
      {"a\nb\nc\n", "a\nc\n"},
      {"a\nb\nc", "a\nb\nc\nd"},
      {"x = 1\n", "y = 1\n"},
      {"", "a\n"},
      {"a\nab\n", "ab\n"},
      {"ab\nb\n", "b\n"},
  };
  for (const auto& [base, now] : cases) {
    auto edit = source_edit(base, "h", now);
    ASSERT_TRUE(edit.has_value());
    EXPECT_EQ(apply_edit(base, *edit), now) << base << " -> " << now;
    EXPECT_EQ(edit->length, now.size());
    EXPECT_EQ(edit->base, "h");
  }
  auto one = source_edit(k_before, "h", "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 3\n");
  EXPECT_EQ(one->text, "    return 3\n");
}

TEST(SourceEdit, OtherLineBreaksThanNewlineSendTheWholeText) {
  EXPECT_FALSE(source_edit("a\r\nb\n", "h", "a\r\nc\n").has_value());
  EXPECT_FALSE(source_edit("a\fb\n", "h", "a\fc\n").has_value());
  EXPECT_FALSE(source_edit("s = '\xe2\x80\xa8'\n", "h", "s = 1\n").has_value());
  // A break brought in by the edit, in the middle or at either end of the
  // edited lines.
  EXPECT_FALSE(source_edit("a\nb\nc\n", "h", "a\nb\rx\nc\n").has_value());
  EXPECT_FALSE(source_edit("a\nb\nc\n", "h", "a\n\x1c\nc\n").has_value());
  EXPECT_FALSE(source_edit("a\nb\nc\n", "h", "a\nb\xe2\x80\xa9\nc\n").has_value());
  EXPECT_FALSE(source_edit("a\nb\nc\n", "h", "a\nb\nc\n\xc2\x85").has_value());
  EXPECT_FALSE(source_edit("a\nb\nc\n", "h", "\va\nb\nc\n").has_value());
  EXPECT_TRUE(source_edit("a\nb\nc\n", "h", "a\nB\nc\n").has_value());
}

TEST_F(PatchTest, WithTheSnapshotsHashCachedTheTextCrossesAsAnEdit) {
  // A first reload records the text with its hash and caches what it parses to.
  fake.snapshot = k_before;
  std::string edited = "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 3\n";
  ASSERT_TRUE(patch_file(agent, where, edited, false).ok());
  auto recorded = fake.applies().back();
  ASSERT_TRUE(recorded.contains("snapshot_hash"));
  fake.snapshot_hash = recorded["snapshot_hash"].get<std::string>();
  fake.snapshot = edited;
  fake.requests.clear();
  std::string again = "import os\n\n\ndef f():\n    return 2\n\n\ndef g():\n    return 3\n";
  auto outcome = patch_file(agent, where, again, false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  ASSERT_EQ(fake.requests.size(), 2U) << "the hash, then the apply: the text is not fetched";
  EXPECT_EQ(fake.requests[0].second["source"], false);
  auto apply = fake.applies().back();
  EXPECT_FALSE(apply.contains("source"));
  EXPECT_EQ(apply["source_edit"]["base"], *fake.snapshot_hash);
  EXPECT_EQ(apply["source_edit"]["text"], "    return 2\n");
  EXPECT_EQ(unit_names(apply), (std::vector<std::string>{"f swap"}));
}

TEST_F(PatchTest, OneDefinitionAgainstACachedSnapshotRecordsTheSplicedTextAsAnEdit) {
  fake.snapshot = k_before;
  ASSERT_TRUE(patch_file(agent, where, k_before + "\n\ndef h():\n    return 0\n", false).ok());
  fake.snapshot_hash = fake.applies().back()["snapshot_hash"].get<std::string>();
  fake.snapshot = k_before + "\n\ndef h():\n    return 0\n";
  fake.requests.clear();
  std::string edited =
      "import os\n\n\ndef f():\n    return 10\n\n\ndef g():\n    return 2\n\n\ndef h():\n    return 30\n";
  auto outcome = patch_definition(agent, where, edited, "h", false);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto apply = fake.applies().back();
  EXPECT_FALSE(apply.contains("snapshot"));
  EXPECT_EQ(apply["snapshot_edit"]["text"], "    return 30\n") << "f's edit is not recorded as live";
  EXPECT_EQ(apply["snapshot_edit"]["base"], *fake.snapshot_hash);
  EXPECT_EQ(unit_names(apply), (std::vector<std::string>{"h swap"}));
}

// The words in one of the agent's module-level tuples, e.g. VERDICTS = (...).
// Read by hand, not with std::regex: GCC 12 warns inside <regex> under the
// sanitizers, and CI builds those with -Werror.
std::optional<std::set<std::string>> agent_tuple(const std::string& name) {
  std::string source(loader::agent_source());
  auto start = source.find("\n" + name + " = (");
  if (start == std::string::npos) {
    return std::nullopt;
  }
  start += name.size() + 5;
  auto end = source.find(')', start);
  if (end == std::string::npos) {
    return std::nullopt;
  }
  std::set<std::string> words;
  for (auto at = start; at < end; ++at) {
    char quote = source[at];
    if (quote != '\'' && quote != '"') {
      continue;
    }
    auto close = source.find(quote, at + 1);
    if (close == std::string::npos || close > end) {
      break;
    }
    words.insert(source.substr(at + 1, close - at - 1));
    at = close;
  }
  return words;
}

TEST(Vocabulary, TheAgentKnowsExactlyTheVerdictsThatCrossToIt) {
  auto agent = agent_tuple("VERDICTS");
  ASSERT_TRUE(agent.has_value()) << "pyhot_agent.py has no VERDICTS tuple";
  std::set<std::string> sent;
  for (const auto& entry : differ::all_verdicts()) {
    EXPECT_EQ(differ::verdict_from_string(entry.word), entry.verdict);
    if (entry.crosses_to_agent) {
      sent.insert(std::string(entry.word));
    }
  }
  agent->erase("restart");  // the agent may list it to refuse it by name
  EXPECT_EQ(*agent, sent);
}

TEST(Vocabulary, TheAgentReturnsExactlyTheStatusesTheClientReads) {
  auto agent = agent_tuple("STATUSES");
  ASSERT_TRUE(agent.has_value()) << "pyhot_agent.py has no STATUSES tuple";
  std::set<std::string> read;
  for (const auto& entry : loader::all_statuses()) {
    if (entry.from_agent) {
      read.insert(std::string(entry.word));
    }
  }
  EXPECT_EQ(*agent, read);
}

TEST(CompilationUnit, MethodLandsOnItsRealLineInsideAClassStub) {
  std::string text =
      "import os\n\n\nclass Outer:\n    class Inner:\n        X = 1\n\n        @staticmethod\n"
      "        def m(a, b=X):\n            return a + b\n";
  auto file = parse(text);
  const auto* def = file.find("Outer.Inner.m");
  ASSERT_NE(def, nullptr);
  auto unit = UnitBuilder(file).definition(*def, Verdict::swap);
  auto lines = util::split_lines(unit.source);
  // The stubs take the lines just above the definition; the agent places
  // the source at first_line, so the def keeps its real line numbers.
  EXPECT_EQ(unit.first_line, 6U);
  ASSERT_GE(lines.size(), 6U);
  EXPECT_EQ(lines[0], "class Outer:");
  EXPECT_EQ(lines[1], "    class Inner:");
  EXPECT_EQ(lines[2], "        @__pyhot_keep__");  // line 8, where the decorator is
  EXPECT_EQ(lines[3], "        def m(a, b=X):");
  EXPECT_EQ(lines[4], "            return a + b");
  EXPECT_EQ(lines[5], "if 0: import os");  // same symbol table as the module, never run
  ASSERT_EQ(unit.scopes.size(), 2U);
  EXPECT_TRUE(unit.scopes[0].is_class);
  EXPECT_EQ(unit.scopes[1].name, "Inner");
}

TEST(CompilationUnit, NestedFunctionStubTakesItsFreeVariablesAsParameters) {
  std::string text =
      "def make(step, scale):\n    def count(value):\n        return value + step * scale\n    return count\n";
  auto file = parse(text);
  const auto* def = file.find("make.<locals>.count");
  ASSERT_NE(def, nullptr);
  auto unit = UnitBuilder(file).definition(*def, Verdict::swap);
  EXPECT_EQ(util::split_lines(unit.source)[0], "def make(scale, step):");
  ASSERT_EQ(unit.scopes.size(), 1U);
  EXPECT_FALSE(unit.scopes[0].is_class);
}

TEST(CompilationUnit, RebindKeepsTheRealDecorators) {
  auto file = parse("import functools\n\n@functools.lru_cache()\ndef f():\n    return 1\n");
  auto unit = UnitBuilder(file).definition(file.definitions[0], Verdict::rebind);
  EXPECT_EQ(unit.first_line, 3U);
  EXPECT_EQ(util::split_lines(unit.source)[0], "@functools.lru_cache()");
}

TEST(CompilationUnit, DefinitionInAModuleLevelBlockCompilesUnderABlockStubAtItsRealLine) {
  std::string text =
      "import sys\n\ntry:\n    import _speedups\nexcept ImportError:\n    def fallback():\n        return 1\n";
  auto file = parse(text);
  const auto* def = file.find("fallback");
  ASSERT_NE(def, nullptr);
  auto unit = UnitBuilder(file).definition(*def, Verdict::swap);
  // `def` at column 4 alone would be "unexpected indent"; the stub takes
  // the line of the real block's header, so the def keeps line 6.
  EXPECT_EQ(unit.first_line, 5U);
  auto lines = util::split_lines(unit.source);
  ASSERT_GE(lines.size(), 3U);
  EXPECT_EQ(lines[0], "if 1:");
  EXPECT_EQ(lines[1], "    def fallback():");
  EXPECT_EQ(lines[2], "        return 1");
  EXPECT_TRUE(unit.conditional);
}

TEST(CompilationUnit, ImportsSpreadOverLinesInAModuleLevelBlockJoinTheImportLine) {
  // CPython 3.11+ compiles `path.join(...)` differently when `path` is
  // imported at module level, wherever in the module's blocks that is.
  std::string text =
      "try:\n"
      "    from os import (  # the speedy one\n"
      "        path,\n"
      "        sep as separator,\n"
      "    )\n"
      "    import json, \\\n"
      "        re\n"
      "except ImportError:\n"
      "    path = None\n"
      "\n"
      "def joined(a, b):\n"
      "    return path.join(a, b)\n";
  auto file = parse(text);
  const auto* def = file.find("joined");
  ASSERT_NE(def, nullptr);
  auto unit = UnitBuilder(file).definition(*def, Verdict::swap);
  auto lines = util::split_lines(unit.source);
  ASSERT_GE(lines.size(), 3U);
  EXPECT_EQ(lines[2], "if 0: import path, separator, json, re");
}

TEST(CompilationUnit, SameNamedDefinitionsInBranchesCarryTheirOwnLinesForTheAgentToChooseBy) {
  std::string before =
      "import sys\nif sys.version_info < (3,):\n    def kind():\n        return 2\n"
      "else:\n    def kind():\n        return 3\n";
  std::string after =
      "import sys\nif sys.version_info < (3,):\n    def kind():\n        x = 2\n        return x\n"
      "else:\n    def kind():\n        return 3\n";
  auto old_file = parse(before);
  auto new_file = parse(after);
  auto changes = differ::diff(old_file, new_file);
  auto units = build_units(old_file, new_file, changes);
  // The first branch changed; the second moved by one line. Each unit says
  // where its definition starts and how far it moved, so the agent changes
  // only the live function whose first line is that definition's old one.
  ASSERT_EQ(units.size(), 2U);
  EXPECT_EQ(units[0].verdict, Verdict::swap);
  EXPECT_TRUE(units[0].duplicate);
  EXPECT_EQ(units[0].line_delta, 0);
  // Relocating the live function whatever it is would move the first
  // branch's function where that one is live (the else branch moved, it
  // did not).
  EXPECT_EQ(units[1].verdict, Verdict::relocate);
  EXPECT_TRUE(units[1].duplicate);
  EXPECT_EQ(units[1].first_line, 7U);
  EXPECT_EQ(units[1].line_delta, 1);
}

TEST(CompilationUnit, BranchesMergedIntoOneDefinitionReplaceTheLiveOneCompiled) {
  std::string before =
      "import os\nclass C:\n    if os.name != 'nt':\n        def close(self):\n            return 1\n\n"
      "        def __del__(self):\n            self.close()\n    else:\n        def close(self):\n"
      "            return 2\n";
  std::string after =
      "import os\nclass C:\n    def close(self):\n        return 2\n\n    def __del__(self):\n"
      "        self.close()\n";
  auto old_file = parse(before);
  auto new_file = parse(after);
  auto units = build_units(old_file, new_file, differ::diff(old_file, new_file));
  // close equals the else branch moved, but the live one may be the if
  // branch's; __del__ only moved, but out of the block: its columns changed
  // (3.11+ line tables). Both are compiled, as a fresh import compiles them.
  std::set<std::string> swapped;
  for (const auto& unit : units) {
    if (unit.kind != parser::DefinitionKind::klass && !unit.qualname.empty()) {
      EXPECT_EQ(unit.verdict, Verdict::swap) << unit.qualname;
      EXPECT_FALSE(unit.duplicate) << unit.qualname;
      swapped.insert(unit.qualname);
    }
  }
  EXPECT_EQ(swapped, (std::set<std::string>{"C.close", "C.__del__"}));
}

TEST(CompilationUnit, FutureFeaturesAreCollected) {
  auto file = parse("from __future__ import annotations, division\n\ndef f() -> X:\n    pass\n");
  EXPECT_EQ(future_features(file), (std::vector<std::string>{"annotations", "division"}));
}

}  // namespace
}  // namespace pyhot::patch

TEST(CompilationUnit, ValuesComputedFromNamesByOperatorsAloneAreTold) {
  using pyhot::patch::binds_a_literal;
  using pyhot::patch::binds_a_value_of_names;
  for (const char* text : {"DOUBLE = RATE * 2", "LIMITS = (RATE, (DOUBLE + 1) // 2)",
                           "LABEL = \"rate-\" + (\"high\" if RATE > 3 else \"low\")", "ON = not OFF and READY",
                           "MASK = ~FLAGS & 0xff", "NEXT: int = COUNT + 1"}) {
    EXPECT_TRUE(binds_a_value_of_names(text)) << text;
  }
  for (const char* text : {"RATE = 3", "NOW = time.time()", "X = f(RATE)", "X = RATE (2)", "X = A[0]", "X = [A, B]",
                           "X = {A: B}", "X = A.b", "X = lambda: A", "X = (a for a in A)", "X = f\"{A}\"",
                           "X = A  # a comment", "X == A", "X += A", "X = (yield A)", "X = (A := 3)"}) {
    EXPECT_FALSE(binds_a_value_of_names(text)) << text;
  }
  EXPECT_TRUE(binds_a_literal("RATE = 3"));
  EXPECT_TRUE(binds_a_literal("NAMES = ('a', [1, 2.5], {'k': None})"));
  EXPECT_FALSE(binds_a_literal("DOUBLE = RATE * 2"));
}
