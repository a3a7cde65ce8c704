// The parsed cache on disk: what it stores loads back as it was parsed, and
// an entry that is missing, truncated, empty or corrupt is only a miss.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "differ/differ.hpp"
#include "parser/parser.hpp"
#include "patch/edit_window.hpp"
#include "patch/parsed_cache.hpp"
#include "patch/plan.hpp"
#include "util/text.hpp"

namespace pyhot::patch {
namespace {

const std::string k_text =
    "import os\n\n\ndef f(x, y=1):\n    return x + y\n\n\nclass C:\n    def m(self):\n        return 2\n";

class ParsedCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_directory = std::filesystem::temp_directory_path() / ("pyhot-parsed-cache-test-" + std::to_string(getpid()));
    setenv("PYHOT_CACHE_DIR", m_directory.c_str(), 1);
  }
  void TearDown() override {
    std::filesystem::remove_all(m_directory);
    unsetenv("PYHOT_CACHE_DIR");
  }

  parser::SourceFile parsed() const {
    auto file = parser::parse_source(k_text, "/srv/app.py");
    EXPECT_TRUE(file.ok());
    return *file;
  }

  std::filesystem::path entry() const { return m_directory / (util::hash_hex(k_text) + ".entry"); }

  std::string entry_bytes() const {
    std::ifstream in(entry(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  void write_entry(const std::string& bytes) const {
    std::ofstream out(entry(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }

 private:
  std::filesystem::path m_directory;
};

TEST_F(ParsedCacheTest, WhatIsStoredLoadsBackByTextAndByHash) {
  ParsedCache().store(parsed());
  auto by_text = ParsedCache().load(k_text, "/srv/app.py");
  ASSERT_TRUE(by_text.has_value());
  EXPECT_EQ(*by_text, parsed());
  auto by_hash = ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/other.py");
  ASSERT_TRUE(by_hash.has_value());
  EXPECT_EQ(by_hash->text, k_text);
  EXPECT_EQ(by_hash->path, "/srv/other.py");
  EXPECT_EQ(by_hash->definitions, parsed().definitions);
}

TEST_F(ParsedCacheTest, AMissingEntryIsAMiss) {
  EXPECT_FALSE(ParsedCache().load(k_text, "/srv/app.py").has_value());
  EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value());
}

TEST_F(ParsedCacheTest, AnEmptyTruncatedOrCorruptEntryIsAMiss) {
  ParsedCache().store(parsed());
  const std::string whole = entry_bytes();
  ASSERT_GT(whole.size(), 16U);
  for (std::size_t size : {std::size_t{0}, std::size_t{3}, std::size_t{8}, std::size_t{20}, whole.size() - 1}) {
    write_entry(whole.substr(0, size));
    EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value()) << size;
  }
  for (std::size_t at : {std::size_t{2}, std::size_t{12}, whole.size() / 2, whole.size() - 3}) {
    std::string flipped = whole;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x20);
    write_entry(flipped);
    EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value()) << at;
  }
  write_entry(whole);
  EXPECT_TRUE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value());
}

// A module with what the window must carry or refuse: imports, a future
// import, `del`, module code, a main guard, duplicate qualnames, classes
// with constants, nested functions.
const std::string k_module =
    "\"\"\"Doc.\"\"\"\n"
    "from __future__ import annotations\n"
    "import os\n"
    "try:\n"
    "    import json\n"
    "except ImportError:\n"
    "    json = None\n"
    "X = 1\n"
    "_tmp = 2\n"
    "del _tmp\n"
    "def f(a, b=X):\n"
    "    return os.path.join(a, b)\n"
    "def g():\n"
    "    def inner():\n"
    "        return json.dumps(1)\n"
    "    return inner\n"
    "def f(a):\n"
    "    return a + 1\n"
    "class Shape:\n"
    "    SIDES = 0\n"
    "    def area(self):\n"
    "        return super().area() + self.SIDES\n"
    "    @property\n"
    "    def size(self):\n"
    "        return 3\n"
    "def h(x):\n"
    "    return x * 2\n"
    "print(X)\n"
    "if __name__ == '__main__':\n"
    "    def main():\n"
    "        print(f(1))\n"
    "    main()\n";

// What is sent to the agent for an edit: the window's plan, or the whole files'.
Plan plan_for(const parser::SourceFile& before, const parser::SourceFile& after, const differ::ChangeSet& changes) {
  return plan_from_snapshot(
      before, after, changes, [](const differ::Change&) { return true; }, loader::SnapshotRecord::sent());
}

// Takes the window when it can; then what it plans and the entry it
// writes must be what the whole files give. Returns whether it took it.
bool expect_window_exact(const std::string& before, const std::string& after) {
  auto whole_before = parser::parse_source(before, "/srv/m.py");
  auto whole_after = parser::parse_source(after, "/srv/m.py");
  EXPECT_TRUE(whole_before.ok() && whole_after.ok());
  ParsedCache().store(*whole_before);
  auto entry = ParsedCache().open_by_hash(util::hash_hex(before));
  if (!whole_before->errors.empty() || !entry) {
    return false;
  }
  auto window = edit_window(*entry, std::string(after), "/srv/m.py");
  if (!window) {
    return false;
  }
  EXPECT_TRUE(whole_after->errors.empty());
  auto changes = differ::diff(*whole_before, *whole_after);
  EXPECT_EQ(window->changes.changes.size(), changes.changes.size());
  Plan windowed = plan_for(window->before, window->after, window->changes);
  Plan whole = plan_for(*whole_before, *whole_after, changes);
  EXPECT_EQ(windowed.units, whole.units);
  EXPECT_EQ(windowed.kept, whole.kept);
  EXPECT_EQ(windowed.refused, whole.refused);
  EXPECT_EQ(future_features(window->after), future_features(*whole_after));
  // Only the span was checked: the text must be UTF-8 all the same.
  EXPECT_EQ(util::first_non_utf8(after), std::string::npos);
  // The edit sent from what the entry knows is the one scanned from the texts.
  EXPECT_EQ(source_edit(before, "h", after, KnownText{entry->newline_breaks_only(), entry->items()}),
            source_edit(before, "h", after));
  // The entry written from the live one loads back as the new text's parse,
  // and what it says of its text is true (it may not know all: a break the
  // edit removed from its span leaves the new entry unsure).
  EXPECT_TRUE(ParsedCache().store(window->entry_edit(*entry)));
  auto stored = ParsedCache().load_by_hash(util::hash_hex(after), "/srv/m.py");
  EXPECT_TRUE(stored.has_value());
  if (stored) {
    EXPECT_EQ(*stored, *whole_after);
  }
  auto stored_entry = ParsedCache().open_by_hash(util::hash_hex(after));
  EXPECT_TRUE(stored_entry.has_value());
  if (stored_entry) {
    EXPECT_TRUE(!stored_entry->utf8() || util::first_non_utf8(after) == std::string::npos);
    EXPECT_TRUE(!stored_entry->newline_breaks_only() || util::only_newline_breaks(after));
  }
  return true;
}

TEST_F(ParsedCacheTest, AnEditWindowIsTakenForABodyEditAndPlansWhatTheWholeFilesPlan) {
  std::string edited = k_module;
  edited.replace(edited.find("x * 2"), 5, "x * 3");
  EXPECT_TRUE(expect_window_exact(k_module, edited));
  std::string method = k_module;
  method.replace(method.find("return 3"), 8, "return 4");
  EXPECT_TRUE(expect_window_exact(k_module, method));
}

// The window's `before` holds only the bytes of its statements, each from
// its line's start: a statement after another on the same line keeps its
// column, the edited span keeps its gaps, and the plan is the whole files'.
TEST_F(ParsedCacheTest, AnEditWindowCopiesOnlyItsStatementsOfTheLiveText) {
  std::string module = "import os\nx = 1; import sys\n";
  for (int i = 0; i < 200; ++i) {
    module += "def f" + std::to_string(i) + "(a):\n    return a + " + std::to_string(i) + "\n\n";
  }
  module += "_tmp = 3; del _tmp\n\n# between\n\ndef g(a):\n    return a\n# after g\n\ndef k(b):\n    return b\n";
  module += "y = 2; from os import path\n";
  std::string edited = module;
  edited.replace(edited.find("return a + 100"), 14, "return a + 1000");
  EXPECT_TRUE(expect_window_exact(module, edited));
  std::string two = module;
  two.replace(two.find("return a\n# after g\n\ndef k(b):\n    return b"), 42,
              "return a * 2\n# after g\n\ndef k(b):\n    return b * 2");
  EXPECT_TRUE(expect_window_exact(module, two));
  ParsedCache().store(*parser::parse_source(module, "/srv/m.py"));
  auto entry = ParsedCache().open_by_hash(util::hash_hex(module));
  ASSERT_TRUE(entry.has_value());
  auto window = edit_window(*entry, std::string(edited), "/srv/m.py");
  ASSERT_TRUE(window.has_value());
  EXPECT_LT(window->before.text.size(), module.size() / 10);
}

TEST_F(ParsedCacheTest, AnEditWindowIsRefusedForAnEditThatIsNotUtf8) {
  std::string edited = k_module;
  edited.replace(edited.find("x * 2"), 5, "x * \xe9");
  EXPECT_FALSE(expect_window_exact(k_module, edited));
  // A live text that is not UTF-8: its entry says so, and no window is taken.
  std::string live = k_module;
  live.replace(live.find("return 3"), 8, "return '\xff'");
  std::string next = live;
  next.replace(next.find("x * 2"), 5, "x * 3");
  EXPECT_FALSE(expect_window_exact(live, next));
}

TEST_F(ParsedCacheTest, AnEditWindowIsRefusedWhereTheWholeFileDecides) {
  auto replaced = [](std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  // A line added moves every definition below; the second `f` pairs with
  // the first; a changed constant is re-run, and may feed others.
  EXPECT_FALSE(expect_window_exact(k_module, replaced(k_module, "    return x * 2\n", "    y = x\n    return y\n")));
  EXPECT_FALSE(expect_window_exact(k_module, replaced(k_module, "a + 1", "a + 2")));
  EXPECT_FALSE(expect_window_exact(k_module, replaced(k_module, "X = 1", "X = 2")));
}

// Random edits, each against the one before: whenever the window is
// taken, it is exact.
TEST_F(ParsedCacheTest, AnEditWindowEqualsTheWholeFilesOverRandomEdits) {
  std::string text = k_module;
  const std::string alphabet = "abxy_():=.,'#@ 12";
  // Now and then é, a byte that is not UTF-8 or a line break other than
  // '\n': the window checks only its span for them.
  const std::string rare[] = {"\xc3\xa9", "\xe9", "\v"};
  std::uint32_t seed = 4242;
  auto next = [&seed](std::uint32_t bound) {
    seed = seed * 1103515245U + 12345U;
    return (seed >> 16) % bound;
  };
  int taken = 0;
  for (int round = 0; round < 900; ++round) {
    std::string edited = text;
    std::size_t at = next(static_cast<std::uint32_t>(edited.size() + 1));
    switch (next(4)) {
      case 0:
      case 1:
        if (next(10) == 0) {
          edited.insert(at, rare[next(3)]);
        } else {
          edited.insert(at, 1, alphabet[next(static_cast<std::uint32_t>(alphabet.size()))]);
        }
        break;
      case 2:
        if (at < edited.size() && edited[at] != '\n') {
          edited.erase(at, 1);
        }
        break;
      default: {
        // A word in a line replaced by another of the same line: often still Python.
        std::size_t start = edited.rfind('\n', at == 0 ? 0 : at - 1);
        start = start == std::string::npos ? 0 : start + 1;
        std::size_t end = edited.find('\n', start);
        if (end != std::string::npos && end > start) {
          edited.replace(start, end - start, std::string(end - start, 'a'));
        }
      }
    }
    SCOPED_TRACE("round " + std::to_string(round) + "\n" + text + "\n---\n" + edited);
    taken += expect_window_exact(text, edited) ? 1 : 0;
    if (::testing::Test::HasFailure()) {
      return;
    }
    auto parsed = parser::parse_source(edited, "/srv/m.py");
    if (parsed && parsed->errors.empty() && round % 5 != 4) {
      text = edited;  // on from the edited text, or back to the last one that parsed
    }
  }
  EXPECT_GT(taken, 50);
}

}  // namespace
}  // namespace pyhot::patch
