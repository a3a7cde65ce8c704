// The parser on edits: a SourceFile re-parsed from the one before it
// (reparse_from) equals a fresh parse, and serialize round-trips it.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "parser/parser.hpp"
#include "parser/serialize.hpp"
#include "parser_test_support.hpp"
#include "util/text.hpp"

namespace pyhot::parser {

namespace {

using Names = std::vector<std::string>;

// Every field but the path; on a difference, gtest prints the records
// through their fields() (PrintTo above).
void expect_same(const SourceFile& a, const SourceFile& b) {
  EXPECT_EQ(a.text, b.text);
  ASSERT_EQ(a.definitions.size(), b.definitions.size());
  for (std::size_t i = 0; i < a.definitions.size(); ++i) {
    EXPECT_EQ(a.definitions[i], b.definitions[i]) << "definition " << i << " " << b.definitions[i].qualname;
  }
  ASSERT_EQ(a.statements.size(), b.statements.size());
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    EXPECT_EQ(a.statements[i], b.statements[i]) << "statement " << i;
  }
  EXPECT_EQ(a.errors, b.errors);
}

// Successive versions of a file, each re-parsed from the SourceFile of the
// version before it, as autoreload and reload do.
TEST(ParserIncremental, ReparseEqualsFreshParse) {
  std::string v1 =
      "import os\n"
      "def f():\n"
      "    x = 1\n"
      "    def g():\n"
      "        return 2\n"
      "    return g\n"
      "class C:\n"
      "    def m(self):\n"
      "        return 1\n";
  std::vector<std::string> versions = {
      v1,
      // a body edit that makes x free in g
      "import os\ndef f():\n    x = 1\n    def g():\n        return x\n    return g\nclass C:\n    def m(self):\n"
      "        return 1\n",
      // lines inserted at the top shift everything
      "import os\nimport sys\n\ndef f():\n    x = 1\n    def g():\n        return x\n    return g\nclass C:\n"
      "    def m(self):\n        return super().m()\n",
      // a syntax error, then fixed again
      "import os\ndef f(:\n    x = 1\n",
      v1,
      "",
      v1,
  };
  SourceFile previous = parse("");
  for (const std::string& text : versions) {
    Result<SourceFile> incremental = reparse_from(previous, text);
    ASSERT_TRUE(incremental.ok());
    SourceFile fresh = parse(text);
    expect_same(*incremental, fresh);
    previous = std::move(incremental).value();
  }
  Result<SourceFile> again = reparse_from(previous, versions[1]);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(get(*again, "f.<locals>.g").free_variables, (Names{"x"}));
}

// The incremental parse reuses what it extracted from top-level statements
// that an edit did not touch. Random edits of a file with global, nonlocal,
// __class__, mangling and nested classes — many of them breaking the syntax
// for a while — must always give what a fresh parse gives.
TEST(ParserIncremental, RandomEditsAlwaysEqualAFreshParse) {
  std::string text =
      "import os\n"
      "X = 1\n"
      "def outer(a, b=X):\n"
      "    global Y\n"
      "    def inner():\n"
      "        nonlocal a\n"
      "        return a + b\n"
      "    return inner\n"
      "class Shape:\n"
      "    SIDES = 0\n"
      "    def area(self):\n"
      "        return super().area() + self.__size\n"
      "    @property\n"
      "    def size(self):\n"
      "        return [x for x in range(3) if (y := x)]\n"
      "    class Inner:\n"
      "        def m(self):\n"
      "            return __class__\n"
      "if __name__ == '__main__':\n"
      "    def main():\n"
      "        print(outer(1)())\n"
      "    main()\n";
  const std::string alphabet = "abxy_():=\n    .,'#@";
  std::uint32_t seed = 12345;
  auto next = [&seed](std::uint32_t bound) {
    seed = seed * 1103515245U + 12345U;
    return (seed >> 16) % bound;
  };
  SourceFile previous = parse(text);
  for (int round = 0; round < 400; ++round) {
    std::size_t at = next(static_cast<std::uint32_t>(text.size() + 1));
    switch (next(3)) {
      case 0:
        text.insert(at, 1, alphabet[next(static_cast<std::uint32_t>(alphabet.size()))]);
        break;
      case 1:
        if (!text.empty() && at < text.size()) {
          text.erase(at, 1);
        }
        break;
      default: {
        // Undo-like edits: duplicate a line, which keeps the syntax valid more often.
        std::size_t start = text.rfind('\n', at == 0 ? 0 : at - 1);
        start = start == std::string::npos ? 0 : start + 1;
        std::size_t end = text.find('\n', start);
        if (end != std::string::npos) {
          text.insert(start, text.substr(start, end - start + 1));
        }
      }
    }
    SCOPED_TRACE("round " + std::to_string(round));
    Result<SourceFile> incremental = reparse_from(previous, text);
    ASSERT_TRUE(incremental.ok());
    expect_same(*incremental, parse(text));
    if (HasFatalFailure()) {
      return;
    }
    previous = std::move(incremental).value();
  }
}

// A file with a bit of everything a SourceFile records.
const char* const k_rich =
    "\"\"\"Module doc.\"\"\"\n"
    "from __future__ import annotations\n"
    "import os.path, sys as system\n"
    "X, (Y, Z) = 1, (2, 3)\n"
    "a = 1; b = 2\n"
    "# a comment at column 0\n"
    "@decorator(1)\n"
    "async def fetch(a, /, b: int = 2, *args, c=X, **kw) -> str:\n"
    "    def inner():\n"
    "        return a + b\n"
    "    yield inner\n"
    "\n"
    "class Shape(Base, metaclass=Meta):\n"
    "    \"\"\"Class doc.\"\"\"\n"
    "    SIDES = 0\n"
    "    @staticmethod\n"
    "    def make(): pass\n"
    "    @property\n"
    "    def size(self):\n"
    "        return super().size\n"
    "    @size.setter\n"
    "    def size(self, value): pass\n"
    "\n"
    "    # an indented comment\n"
    "try:\n"
    "    import fast\n"
    "except ImportError:\n"
    "    def fast():\n"
    "        pass\n"
    "x = 1 + \\\n"
    "    2\n"
    "def tabbed():\n"
    "\treturn 1\n"
    "if __name__ == '__main__':\n"
    "    def main():\n"
    "        print(fetch(1))\n"
    "    main()\n";

TEST(ParserSerialize, RoundTripKeepsEveryField) {
  for (std::string text : {std::string(k_rich), std::string("def broken(:\n    pass\nprint 'x'\n"), std::string()}) {
    SCOPED_TRACE(text);
    Result<SourceFile> file = parse_source(text, "pkg/mod.py");
    ASSERT_TRUE(file.ok());
    std::string bytes = serialize(*file);
    Result<SourceFile> loaded = deserialize(bytes, text);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(loaded->path, "pkg/mod.py");
    expect_same(*loaded, *file);
  }
  // The error case really carries errors through.
  std::string broken = "def broken(:\n    pass\n";
  Result<SourceFile> loaded = deserialize(serialize(parse(broken)), broken);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->errors.empty());
}

TEST(ParserSerialize, CorruptOrMismatchedBytesAreErrors) {
  const std::string text = k_rich;
  const std::string bytes = serialize(parse(text));
  ASSERT_TRUE(deserialize(bytes, text).ok());

  EXPECT_FALSE(deserialize("", text).ok());
  EXPECT_FALSE(deserialize(bytes, text + " ").ok());  // another text
  std::string edited = text;
  edited[edited.size() / 2] ^= 1;
  EXPECT_FALSE(deserialize(bytes, edited).ok());
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(deserialize(std::string_view(bytes).substr(0, size), text).ok()) << size;
  }
  EXPECT_FALSE(deserialize(bytes + "x", text).ok());
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x40);
    EXPECT_FALSE(deserialize(flipped, text).ok()) << at;
  }
  // Past the checksum, the records themselves are checked: a byte changed
  // with the checksum recomputed must fail cleanly or load something, never
  // read out of bounds (the sanitizer build runs this).
  int rejected = 0;
  for (std::size_t at = 0; at + 8 < bytes.size(); ++at) {
    std::string changed = bytes;
    changed[at] = static_cast<char>(0xFF);
    std::uint64_t checksum = util::hash64(std::string_view(changed).substr(0, changed.size() - 8));
    std::memcpy(changed.data() + changed.size() - 8, &checksum, sizeof checksum);
    Result<SourceFile> loaded = deserialize(changed, text);
    rejected += loaded.ok() ? 0 : 1;
  }
  EXPECT_GT(rejected, 100);
}

// The pieces serialize() hands out are the bytes it returns, however many
// there are (a file larger than the writer's buffer, with a statement longer
// than half of it), and a failed write is reported.
TEST(ParserSerialize, InPiecesTheSameBytes) {
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    text += "def f" + std::to_string(i) + "(a, b=" + std::to_string(i) + "):\n    return a + b\n";
  }
  text += "LONG = '" + std::string(200 * 1024, 'x') + "'\n";
  SourceFile file = parse(text);
  std::string whole = serialize(file);
  std::string pieces;
  int calls = 0;
  ASSERT_TRUE(serialize(file, util::hash64(file.text), [&](std::string_view bytes) {
    pieces.append(bytes);
    ++calls;
    return true;
  }));
  EXPECT_GT(calls, 2);
  EXPECT_EQ(pieces, whole);
  Result<SourceFile> loaded = deserialize(pieces, text);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  expect_same(*loaded, file);
  int failing_calls = 0;
  EXPECT_FALSE(
      serialize(file, util::hash64(file.text), [&](std::string_view) { return ++failing_calls > 1 && false; }));
}

// reparse_from() must give exactly what a fresh parse gives; `fast` says
// whether the case must be done without parsing the whole text again.
void expect_reparse(const std::string& before, const std::string& after, bool fast) {
  SCOPED_TRACE("before:\n" + before + "\nafter:\n" + after);
  SourceFile previous = parse(before);
  ReparseInfo info;
  Result<SourceFile> reparsed = reparse_from(previous, after, "t.py", &info);
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(reparsed->path, "t.py");
  expect_same(*reparsed, parse(after));
  if (fast) {
    EXPECT_FALSE(info.full_parse) << info.reason;
    EXPECT_LT(info.parsed_bytes, after.size());
  }
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(ParserReparseFrom, TokenizerErrorsAsInAFreshParse) {
  const std::string text = "import os\ndef f():\n\treturn 1\ndef g():\n\treturn 2\n";
  const std::string mixed = replace(text, "\treturn 2\n", "\tif x:\n        return 2\n");
  expect_reparse(text, mixed, false);
  expect_reparse(mixed, text, false);
  expect_reparse(text, "# coding: bogus\n" + text, false);
}

// A module large enough that two edits far apart are made one at a time
// (a line added at the top and a body changed further down).
std::string large_module(int functions) {
  std::string text = "\"\"\"Doc.\"\"\"\nimport math\n\nSCALE = 3\n";
  for (int i = 0; i < functions; ++i) {
    std::string name = "func_" + std::to_string(i);
    text += "\n\ndef " + name + "(x=" + std::to_string(i) + "):\n    total = 0\n    for i in range(x):\n" +
            "        total += (x * i) % 7\n    return total + SCALE\n";
  }
  return text;
}

TEST(ParserReparseFrom, TwoEditsFarApartEqualAFreshParse) {
  const std::string text = large_module(80);
  const std::string shifted = replace(replace(text, "import math\n", "import math\n# shifted\n"),
                                      "def func_60(x=60):\n    total = 0\n", "def func_60(x=60):\n    total = 1\n");
  expect_reparse(text, shifted, true);
  expect_reparse(shifted, text, true);
  ReparseInfo info;
  ASSERT_TRUE(reparse_from(parse(text), shifted, "t.py", &info).ok());
  EXPECT_LT(info.parsed_bytes, 1000U) << "the statements between the two edits are not parsed again";
  // Random pairs of edits, one in each half, some of them breaking the syntax.
  const std::vector<std::string> snippets = {
      "# c\n",    "\n",  "def new(a):\n    return a\n", "    x = 1\n", "else:\n    pass\n", "'''\n", "x = (\n",
      "\tpass\n", "@d\n"};
  std::uint32_t seed = 777;
  auto next = [&seed](std::uint32_t bound) {
    seed = seed * 1103515245U + 12345U;
    return (seed >> 16) % bound;
  };
  SourceFile previous = parse(text);
  std::string base = text;
  int fast = 0;
  const int rounds = 200;
  for (int round = 0; round < rounds; ++round) {
    std::string edited = base;
    for (int half = 1; half >= 0; --half) {
      std::size_t at =
          edited.size() / 2 * static_cast<std::size_t>(half) + next(static_cast<std::uint32_t>(edited.size() / 2));
      std::size_t line = edited.rfind('\n', at == 0 ? 0 : at - 1);
      line = line == std::string::npos ? 0 : line + 1;
      if (next(2) == 0) {
        edited.insert(line, snippets[next(static_cast<std::uint32_t>(snippets.size()))]);
      } else if (at < edited.size()) {
        edited.erase(at, 1);
      }
    }
    SCOPED_TRACE("round " + std::to_string(round));
    ReparseInfo info;
    Result<SourceFile> reparsed = reparse_from(previous, edited, "t.py", &info);
    ASSERT_TRUE(reparsed.ok());
    expect_same(*reparsed, parse(edited));
    if (HasFailure()) {
      return;
    }
    fast += info.full_parse ? 0 : 1;
    if (reparsed->errors.empty() && round % 4 != 3) {
      base = edited;
      previous = std::move(reparsed).value();
    } else {
      base = text;
      previous = parse(text);
    }
  }
  EXPECT_GT(fast, rounds / 4);
}

TEST(ParserReparseFrom, EqualsAFreshParse) {
  const std::string text = k_rich;
  // Inside a function: only that function is parsed again.
  expect_reparse(text, replace(text, "        return a + b\n", "        return a + b + c\n"), true);
  expect_reparse(text, replace(text, "    yield inner\n", "    return inner\n"), true);
  // Lines added and removed move everything after.
  expect_reparse(text, replace(text, "\treturn 1\n", "\tx = 1\n\n\treturn x\n"), true);
  expect_reparse(text, replace(text, "    SIDES = 0\n", ""), true);
  // A top-level def added, removed, renamed.
  expect_reparse(text, replace(text, "def tabbed():\n", "def added(q):\n    return q\ndef tabbed():\n"), true);
  expect_reparse(text, replace(text, "def tabbed():\n\treturn 1\n", ""), true);
  expect_reparse(text, replace(text, "def tabbed", "def renamed"), true);
  // At the very start and the very end.
  expect_reparse(text, replace(text, "\"\"\"Module doc.\"\"\"\n", "\"\"\"Other doc.\"\"\"\n"), true);
  expect_reparse(text, replace(text, "\"\"\"Module doc.\"\"\"\n", ""), false);
  expect_reparse(text, "# header\n" + text, false);
  expect_reparse(text, text + "def last():\n    pass\n", true);
  expect_reparse(text, text.substr(0, text.size() - 1), false);
  expect_reparse(text, replace(text, "    main()\n", ""), true);
  // A string that was first, then is not, and the other way round.
  expect_reparse("'doc'\nx = 1\n", "y = 0\n'doc'\nx = 1\n", true);
  expect_reparse("y = 0\n'doc'\nx = 1\n", "'doc'\nx = 1\n", false);
  expect_reparse("x = 1\n'not doc'\ny = 2\n", "x = 1\n'not doc'\ny = 3\n", true);
  // Syntax errors, made and fixed.
  expect_reparse(text, replace(text, "def tabbed():", "def tabbed(:"), false);
  expect_reparse(replace(text, "def tabbed():", "def tabbed(:"), text, false);
  expect_reparse(text, replace(text, "    main()\n", "    main(\n"), false);
  // Indentation that merges top-level statements, and splits them.
  expect_reparse(text, replace(text, "def tabbed():\n", "    def tabbed():\n"), false);
  expect_reparse(text, replace(text, "\n    main()\n", "\nmain()\n"), true);
  expect_reparse(text, replace(text, "class Shape", "if True:\n  class Shape"), false);
  expect_reparse(text, replace(text, "try:\n", "try:\n    pass\nexcept:\n    pass\ntry:\n"), true);
  // Clauses that continue the statement before, and comments at a boundary.
  expect_reparse("if x:\n    pass\ny = 1\n", "if x:\n    pass\nelse:\n    y = 1\n", false);
  expect_reparse("z = 0\ndef f():\n    pass\ny = 1\n", "z = 0\ndef f():\n    pass\n    # note\ny = 1\n", true);
  expect_reparse("z = 0\ndef f():\n    pass\n# c\ny = 1\nw = 2\n", "z = 0\ndef f():\n    return 1\n# c\ny = 1\nw = 2\n",
                 true);
  expect_reparse("z = 0\ndef f():\n    pass\n\ny = 1\n", "z = 0\ndef f():\n    pass\n# c\n\ny = 1\n", true);
  expect_reparse("x = 1\ny = 2\n", "x = 1 \\\ny = 2\n", false);
  expect_reparse("x = 1\ny = 2\n", "x = 1;\ny = 2\n", false);
  // CR and the same text.
  expect_reparse("x = 1\r\ny = 2\r\n", "x = 1\r\ny = 3\r\n", false);
  expect_reparse(text, text, true);
}

// Random edits of a valid text, some of which break it: each is reparsed
// from the SourceFile of the text before it. Edits that keep the text valid
// are kept for a few rounds, as in a file being worked on.
TEST(ParserReparseFrom, RandomEditsAlwaysEqualAFreshParse) {
  const std::vector<std::string> snippets = {
      "def new(a):\n    return a\n", "    x = 1\n", "# c\n",      "    # c\n", "\n",
      "else:\n    pass\n",           "'s'\n",       "@d\n",       "x = (\n",   ")\n",
      "class K:\n    y = 2\n",       "\\\n",        "a; b\n",     "\tpass\n",  "\"\"\"\n",
      "if x:\n    def g(): pass\n",  "'''doc'''\n", "global q\n",
  };
  const std::string alphabet = "abxy_():=\n    .,'#@\\;\t";
  std::uint32_t seed = 4242;
  auto next = [&seed](std::uint32_t bound) {
    seed = seed * 1103515245U + 12345U;
    return (seed >> 16) % bound;
  };
  std::string base = k_rich;
  SourceFile previous = parse(base);
  int fast = 0;
  const int rounds = 3000;
  for (int round = 0; round < rounds; ++round) {
    std::string text = base;
    for (std::uint32_t edits = 1 + next(2); edits > 0; --edits) {
      std::size_t at = next(static_cast<std::uint32_t>(text.size() + 1));
      std::size_t line_start = at == 0 ? std::string::npos : text.rfind('\n', at - 1);
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      std::size_t line_end = text.find('\n', line_start);
      switch (next(6)) {
        case 0:
          text.insert(at, 1, alphabet[next(static_cast<std::uint32_t>(alphabet.size()))]);
          break;
        case 1:
          if (at < text.size()) {
            text.erase(at, 1);
          }
          break;
        case 2:
          if (line_end != std::string::npos) {
            text.insert(line_start, text.substr(line_start, line_end - line_start + 1));
          }
          break;
        case 3:
          if (line_end != std::string::npos) {
            text.erase(line_start, line_end - line_start + 1);
          }
          break;
        default:
          text.insert(line_start, snippets[next(static_cast<std::uint32_t>(snippets.size()))]);
          break;
      }
    }
    SCOPED_TRACE("round " + std::to_string(round) + ", before:\n" + base + "\nafter:\n" + text);
    ReparseInfo info;
    Result<SourceFile> reparsed = reparse_from(previous, text, "t.py", &info);
    ASSERT_TRUE(reparsed.ok());
    expect_same(*reparsed, parse(text));
    if (HasFailure()) {
      return;
    }
    fast += info.full_parse ? 0 : 1;
    if (round % 8 == 7) {
      // Back to Python: chains of random edits soon leave it, and where
      // tree-sitter is lenient reparse_from() rightly parses everything.
      base = k_rich;
      previous = parse(base);
    } else if (reparsed->errors.empty()) {
      base = text;
      previous = std::move(reparsed).value();  // chained, as the CLI does
    }
  }
  EXPECT_GT(fast, rounds / 4);
}

}  // namespace
}  // namespace pyhot::parser
