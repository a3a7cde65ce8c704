// pyhot profile's CLI side: which functions a pattern names, the
// instrumented text of a unit, and what the profile prints and writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli/profile.hpp"
#include "cli/profile_report.hpp"
#include "cli/profile_select.hpp"
#include "parser/parser.hpp"
#include "patch/instrumentation.hpp"

namespace pyhot {
namespace {

using cli::ChosenFunction;
using cli::FunctionCatalog;

parser::SourceFile parse(const std::string& text, const std::string& path = "/app/views.py") {
  auto parsed = parser::parse_source(text, path);
  EXPECT_TRUE(parsed.ok());
  return *parsed;
}

const char* k_views = R"(import functools

def results(request):
    return all_items()

def all_items():
    def key(item):
        return item
    return sorted([], key=key)

class Order:
    def total(self):
        return 1

    @staticmethod
    def tax(n):
        return n

    @property
    def name(self):
        return "o"

def rows():
    yield 1
)";

FunctionCatalog catalog() {
  std::vector<loader::LoadedModule> modules{
      {"app.views", "/app/views.py"}, {"app.models", "/app/models.py"}, {"other", "/other.py"}};
  return FunctionCatalog(modules, [](const loader::LoadedModule& module) -> Result<parser::SourceFile> {
    if (module.name == "app.views") {
      return parse(k_views, module.file);
    }
    if (module.name == "app.models") {
      return parse("def save():\n    pass\n", module.file);
    }
    return parse("def other():\n    pass\n", module.file);
  });
}

std::vector<std::string> names(const Result<std::vector<ChosenFunction>>& chosen) {
  std::vector<std::string> out;
  if (chosen) {
    for (const auto& function : *chosen) {
      out.push_back(function.name());
    }
  }
  return out;
}

TEST(ProfilePattern, ExactNameOneLevelAndRecursive) {
  auto functions = catalog();
  EXPECT_EQ(names(functions.select({"app.views.results"})), std::vector<std::string>{"app.views.results"});
  EXPECT_EQ(names(functions.select({"app.views.*"})),
            (std::vector<std::string>{"app.views.results", "app.views.all_items", "app.views.rows"}));
  EXPECT_EQ(names(functions.select({"app.views.Order.*"})),
            (std::vector<std::string>{"app.views.Order.total", "app.views.Order.tax", "app.views.Order.name"}));
  EXPECT_EQ(names(functions.select({"app.views.Order"})), names(functions.select({"app.views.Order.*"})));
  EXPECT_EQ(names(functions.select({"app.**"})).size(), 8U);
  EXPECT_EQ(names(functions.select({"app.views.all_items.key"})),
            std::vector<std::string>{"app.views.all_items.<locals>.key"});
  EXPECT_EQ(names(functions.select({"/app/views.py", "app.views.results"})).size(), 7U);  // each once
}

TEST(ProfilePattern, NothingMatchingNamesTheNearest) {
  auto functions = catalog();
  auto chosen = functions.select({"app.views.result"});
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().message,
            "no function matches 'app.views.result'; nearest: app.views.results, "
            "app.views.rows, app.views.Order.tax");
  auto module = functions.select({"app.view.results"});
  ASSERT_FALSE(module.ok());
  EXPECT_NE(module.error().message.find("nearest: app.views"), std::string::npos) << module.error().message;
  EXPECT_FALSE(functions.select({"app.views.Order.missing"}).ok());
  EXPECT_FALSE(functions.select({"/elsewhere.py"}).ok());
}

TEST(Instrumentation, ProbeAboveTheBodyAtTheRealLines) {
  auto file = parse("import os\n\nclass C:\n    def m(self, x):\n        return x\n\ndef f(): return 1\n");
  std::vector<patch::ProbeSite> sites{{file.find("C.m"), 1}, {file.find("f"), 2}};
  auto built = patch::instrument_units(file, sites, "MARK");
  ASSERT_EQ(built.units.size(), 2U);
  const auto& method = built.units[0];
  EXPECT_EQ(method.unit.qualname, "C.m");
  EXPECT_EQ(method.unit.source, "class C:\n    def m(self, x):\n        return x\nif 0: import os\n");
  EXPECT_EQ(method.instrumented,
            "class C:\n    def m(self, x):\n     with 'MARK:1':\n        return x\nif 0: import os\n");
  EXPECT_EQ(method.lines, (std::vector<std::uint32_t>{3, 4, 5, 5, 6}));
  const auto& one_line = built.units[1];
  EXPECT_EQ(one_line.instrumented, "def f(): \n with 'MARK:2':\n  return 1\nif 0: import os\n");
  EXPECT_EQ(one_line.lines, (std::vector<std::uint32_t>{7, 7, 7, 8}));
}

TEST(Instrumentation, NestedSitesShareTheirOutermostFunctionsUnit) {
  auto file = parse("def outer():\n    def inner():\n        return 1\n    return inner()\n");
  auto built = patch::instrument_units(file, {{file.find("outer.<locals>.inner"), 2}, {file.find("outer"), 1}}, "M");
  ASSERT_EQ(built.units.size(), 1U);
  EXPECT_EQ(built.units[0].unit.qualname, "outer");
  EXPECT_EQ(built.units[0].instrumented,
            "def outer():\n with 'M:1':\n    def inner():\n     with 'M:2':\n        return 1\n    return inner()\n");
  EXPECT_EQ(built.units[0].lines, (std::vector<std::uint32_t>{1, 2, 2, 3, 3, 4}));
}

TEST(Instrumentation, CallsShapeWrapsTheBodyInTryFinallyAtTheRealLines) {
  auto file = parse("import os\n\nclass C:\n    def m(self, x):\n        return x\n\ndef f(): return 1\n");
  std::vector<patch::ProbeSite> sites{{file.find("C.m"), 1}, {file.find("f"), 2}};
  auto built = patch::instrument_units(file, sites, "MARK", patch::ProbeShape::calls);
  ASSERT_EQ(built.units.size(), 2U);
  EXPECT_EQ(built.units[0].instrumented,
            "class C:\n    def m(self, x):\n     'MARK:1'.enter()\n     try:\n        return x\n"
            "     except 'MARK:1'.caught:\n      'MARK:1'.raised()\n      raise\n     finally:\n"
            "      'MARK:1'.exit()\nif 0: import os\n");
  EXPECT_EQ(built.units[0].lines, (std::vector<std::uint32_t>{3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6}));
  EXPECT_EQ(built.units[1].instrumented,
            "def f(): \n 'MARK:2'.enter()\n try:\n  return 1\n except 'MARK:2'.caught:\n  'MARK:2'.raised()\n"
            "  raise\n finally:\n  'MARK:2'.exit()\nif 0: import os\n");
}

TEST(Instrumentation, CallsShapeClosesTheInnermostBodyFirstWhenTwoEndAtOneLine) {
  auto file = parse("def outer():\n    x = 1\n    def inner():\n        return x\n");
  auto built = patch::instrument_units(file, {{file.find("outer"), 1}, {file.find("outer.<locals>.inner"), 2}}, "M",
                                       patch::ProbeShape::calls);
  ASSERT_EQ(built.units.size(), 1U);
  EXPECT_EQ(built.units[0].instrumented,
            "def outer():\n 'M:1'.enter()\n try:\n    x = 1\n    def inner():\n     'M:2'.enter()\n     try:\n"
            "        return x\n     except 'M:2'.caught:\n      'M:2'.raised()\n      raise\n     finally:\n"
            "      'M:2'.exit()\n except 'M:1'.caught:\n  'M:1'.raised()\n  raise\n finally:\n  'M:1'.exit()\n");
  EXPECT_EQ(built.units[0].lines, (std::vector<std::uint32_t>{1, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}));
}

TEST(Instrumentation, CallsShapeWrapsEachSuspensionOfAGeneratorOrCoroutine) {
  auto file = parse(
      "def g(n):\n    for i in range(n):\n        x = yield i, n\n    yield\n    yield from h()\n\n"
      "async def c(s):\n    async with s as t:\n        return await t.get()\n\n"
      "async def d(xs):\n    return [await x for x in xs]\n");
  auto built = patch::instrument_units(file, {{file.find("g"), 1}, {file.find("c"), 2}, {file.find("d"), 3}}, "M",
                                       patch::ProbeShape::calls);
  ASSERT_EQ(built.units.size(), 2U);
  EXPECT_EQ(built.units[0].instrumented,
            "def g(n):\n 'M:1'.start()\n try:\n    for i in range(n):\n"
            "        x = 'M:1'.resumed((yield 'M:1'.suspended((i, n))))\n"
            "    'M:1'.resumed((yield 'M:1'.suspended(None)))\n    (yield from 'M:1'.delegate((h())))\n"
            " except 'M:1'.caught:\n  'M:1'.raised()\n  raise\n finally:\n  'M:1'.finish()\n");
  EXPECT_EQ(built.units[1].instrumented,
            "async def c(s):\n 'M:2'.start()\n try:\n    async with 'M:2'.acontext((s)) as t:\n"
            "        return (await 'M:2'.awaiting((t.get())))\n"
            " except 'M:2'.caught:\n  'M:2'.raised()\n  raise\n finally:\n  'M:2'.finish()\n");
  ASSERT_EQ(built.skipped.size(), 1U);
  EXPECT_EQ(built.skipped[0].reason, "an await inside a comprehension (not yet profiled)");
}

TEST(Instrumentation, GeneratorsAreSkippedWithAReason) {
  auto file = parse("def g():\n    yield 1\n");
  auto built = patch::instrument_units(file, {{file.find("g"), 1}}, "M");
  EXPECT_TRUE(built.units.empty());
  ASSERT_EQ(built.skipped.size(), 1U);
  EXPECT_EQ(built.skipped[0].reason, "a generator (its suspensions are not followed)");
}

// No indentation fits between the def and a body indented with a tab (or
// by one column): the body moves by a space, but not a string's own lines.
TEST(Instrumentation, BodiesIndentedWithTabsOrByOneColumnMoveByASpace) {
  auto file = parse(
      "def t():\n\tx = '''a\n\tb'''\n\tif x:\n\t\treturn 1\n\ndef o():\n return 1\n\n"
      "class C:\n\tdef m(self): return 2\n");
  auto built = patch::instrument_units(file, {{file.find("t"), 1}, {file.find("o"), 2}, {file.find("C.m"), 3}}, "M");
  EXPECT_TRUE(built.skipped.empty());
  ASSERT_EQ(built.units.size(), 3U);
  EXPECT_EQ(built.units[0].instrumented, "def t():\n with 'M:1':\n \tx = '''a\n\tb'''\n \tif x:\n \t\treturn 1\n");
  EXPECT_EQ(built.units[0].lines, (std::vector<std::uint32_t>{1, 2, 2, 3, 4, 5}));
  EXPECT_EQ(built.units[1].instrumented, "def o():\n with 'M:2':\n  return 1\n");
  EXPECT_NE(built.units[2].instrumented.find("\tdef m(self): \n\t with 'M:3':\n\t  return 2\n"), std::string::npos)
      << built.units[2].instrumented;
}

TEST(Instrumentation, AProbeInsideAMovedBodyMovesWithIt) {
  auto file = parse("def f():\n\tdef g():\n\t\treturn 1\n\treturn g\n");
  auto built = patch::instrument_units(file, {{file.find("f"), 1}, {file.find("f.<locals>.g"), 2}}, "M");
  ASSERT_EQ(built.units.size(), 1U);
  EXPECT_EQ(built.units[0].instrumented,
            "def f():\n with 'M:1':\n \tdef g():\n \t with 'M:2':\n  \t\treturn 1\n \treturn g\n");
}

TEST(Instrumentation, WatchProbesGeneratorsAndCoroutines) {
  auto file = parse("def g():\n    yield 1\n\nasync def c():\n    return 1\n");
  auto built =
      patch::instrument_units(file, {{file.find("g"), 1}, {file.find("c"), 2}}, "M", patch::ProbeShape::whole_run);
  EXPECT_TRUE(built.skipped.empty());
  ASSERT_EQ(built.units.size(), 2U);
  EXPECT_EQ(built.units[0].instrumented, "def g():\n with 'M:1':\n    yield 1\n");
  EXPECT_EQ(built.units[1].instrumented, "async def c():\n with 'M:2':\n    return 1\n");
}

TEST(Instrumentation, LineProbesGoToTheInnermostFunctionInItsOutermostsUnit) {
  auto file =
      parse("import os\n\ndef outer(a):\n    def inner(b):\n        c = b\n        return c\n    return inner(a)\n");
  EXPECT_EQ(patch::function_at_line(file, 1), nullptr);
  EXPECT_EQ(patch::function_at_line(file, 3), nullptr);  // the def line itself is not in the body
  ASSERT_NE(patch::function_at_line(file, 5), nullptr);
  EXPECT_EQ(patch::function_at_line(file, 5)->qualname, "outer.<locals>.inner");
  EXPECT_EQ(patch::function_at_line(file, 7)->qualname, "outer");
  auto unit = patch::statement_probe_unit(file, *patch::function_at_line(file, 5));
  EXPECT_EQ(unit.unit.qualname, "outer");
  EXPECT_EQ(unit.instrumented, unit.unit.source);  // the agent places the probe in the syntax tree
  EXPECT_EQ(unit.lines.size(),
            static_cast<std::size_t>(std::count(unit.instrumented.begin(), unit.instrumented.end(), '\n')));
  EXPECT_EQ(unit.lines.front(), 3U);
}

cli::ProcessProfile sample_profile() {
  cli::ProcessProfile profile;
  profile.pid = 4510;
  loader::ProfileNode get{3, 20, 0.0184, 0.0013, 0.0184, 0, {}};
  loader::ProfileNode all{2, 20, 0.2842, 0.0198, 0.2658, 1, {get}};
  loader::ProfileNode results{1, 10, 1.3856, 0.152, 1.1014, 0, {all}};
  profile.data.threads.push_back({1, "MainThread", {results}});
  profile.functions = {{1, {"views.results", "/app/views.py", 3}},
                       {2, {"manager.all", "/app/manager.py", 8}},
                       {3, {"manager.get_queryset", "/app/manager.py", 20}}};
  return profile;
}

TEST(ProfileReport, TableIsTheCallTreeWithRaisedWhenAnyCallRaised) {
  std::ostringstream out;
  cli::print_profile(out, sample_profile());
  EXPECT_EQ(out.str(),
            "process 4510, thread MainThread\n"
            "function                      hits   total ms   per hit   max ms   self ms   raised\n"
            "views.results                   10     1385.6     138.6    152.0    1101.4        0\n"
            "  manager.all                   20      284.2      14.2     19.8     265.8        1\n"
            "    manager.get_queryset        20       18.4      0.92      1.3      18.4        0\n");
}

TEST(ProfileReport, CollapsedSpeedscopeAndFlamegraph) {
  std::vector<cli::ProcessProfile> profiles{sample_profile()};
  EXPECT_EQ(cli::collapsed_stacks(profiles),
            "MainThread;views.results 1101400\n"
            "MainThread;views.results;manager.all 265800\n"
            "MainThread;views.results;manager.all;manager.get_queryset 18400\n");
  auto document = cli::speedscope_document(profiles);
  EXPECT_EQ(document["$schema"], "https://www.speedscope.app/file-format-schema.json");
  ASSERT_EQ(document["profiles"].size(), 1U);
  const auto& profile = document["profiles"][0];
  EXPECT_EQ(profile["type"], "sampled");
  EXPECT_EQ(profile["samples"], nlohmann::json::parse("[[0], [0, 1], [0, 1, 2]]"));
  EXPECT_NEAR(profile["endValue"].get<double>(), 1385.6, 1e-6);
  EXPECT_EQ(document["shared"]["frames"][2]["name"], "manager.get_queryset");
  auto svg = cli::flamegraph_svg(profiles, "title <&>");
  EXPECT_NE(svg.find("<title>manager.all (284.2 ms, 20.51%, self 265.8 ms)</title>"), std::string::npos);
  EXPECT_NE(svg.find("title &lt;&amp;&gt;"), std::string::npos);
  auto json = cli::profile_json(profiles);
  EXPECT_EQ(json["processes"][0]["threads"][0]["calls"][0]["children"][0]["function"], "manager.all");
}

TEST(ProfileReport, ThreadsNamedByDefaultAreOneGroup) {
  loader::ProfileData data;
  loader::ProfileNode one{1, 1, 0.002, 0.002, 0.002, 0, {}};
  data.threads = {{1, "Thread-3 (process_request_thread)", {one}},
                  {2, "Thread-4 (process_request_thread)", {one}},
                  {3, "MainThread", {one}},
                  {4, "Thread-5", {one}},
                  {5, "Thread-x", {one}}};
  std::map<std::string, int> members;
  auto grouped = cli::group_threads(data, &members);
  ASSERT_EQ(grouped.threads.size(), 4U);
  EXPECT_EQ(grouped.threads[0].name, "Thread-* (process_request_thread)");
  EXPECT_EQ(grouped.threads[0].calls[0].hits, 2);
  EXPECT_DOUBLE_EQ(grouped.threads[0].calls[0].total, 0.004);
  EXPECT_EQ(members["Thread-* (process_request_thread)"], 2);
  EXPECT_EQ(grouped.threads[2].name, "Thread-*");
  EXPECT_EQ(grouped.threads[3].name, "Thread-x");
}

TEST(ProfileReport, NumbersAndDurations) {
  EXPECT_EQ(cli::format_ms(1385.64), "1385.6");
  EXPECT_EQ(cli::format_ms(0.92), "0.92");
  EXPECT_EQ(cli::format_ms(0.0351), "0.035");
  EXPECT_EQ(cli::format_ms(0), "0.0");
  EXPECT_DOUBLE_EQ(cli::parse_duration("10s"), 10);
  EXPECT_DOUBLE_EQ(cli::parse_duration("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(cli::parse_duration("2m"), 120);
  EXPECT_DOUBLE_EQ(cli::parse_duration("3"), 3);
  EXPECT_LT(cli::parse_duration("soon"), 0);
  EXPECT_LT(cli::parse_duration("-1s"), 0);
}

}  // namespace
}  // namespace pyhot
