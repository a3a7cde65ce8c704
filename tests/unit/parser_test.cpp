// The parser on inline Python: what pyhot believes about definitions must be
// what CPython believes (qualnames, free variables), or swaps go wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "parser/parser.hpp"
#include "parser/serialize.hpp"
#include "parser_test_support.hpp"
#include "util/text.hpp"

namespace pyhot::parser {

namespace {

using Names = std::vector<std::string>;

Names qualnames(const SourceFile& file) {
  Names out;
  for (const Definition& definition : file.definitions) {
    out.push_back(definition.qualname);
  }
  return out;
}

TEST(ParserQualname, NestedClassesAndFunctionsAsCPythonSpellsThem) {
  SourceFile file = parse(
      "def outer():\n"
      "    def inner():\n"
      "        pass\n"
      "    class C:\n"
      "        def m(self):\n"
      "            pass\n"
      "class K:\n"
      "    class Inner:\n"
      "        def m(self):\n"
      "            pass\n"
      "    async def a(self):\n"
      "        pass\n");
  EXPECT_EQ(qualnames(file), (Names{"outer", "outer.<locals>.inner", "outer.<locals>.C", "outer.<locals>.C.m", "K",
                                    "K.Inner", "K.Inner.m", "K.a"}));
  EXPECT_EQ(get(file, "outer.<locals>.C.m").parent_qualname, "outer.<locals>.C");
  EXPECT_EQ(get(file, "outer.<locals>.inner").parent, 0);
  EXPECT_EQ(get(file, "outer").parent, -1);
}

TEST(ParserQualname, GlobalDeclaredNameDropsThePrefix) {
  SourceFile file = parse(
      "def factory():\n"
      "    global made\n"
      "    def made():\n"
      "        pass\n"
      "    def local():\n"
      "        pass\n"
      "class C:\n"
      "    global helper\n"
      "    def helper(self):\n"
      "        pass\n");
  EXPECT_EQ(qualnames(file), (Names{"factory", "made", "factory.<locals>.local", "C", "helper"}));
}

TEST(ParserKinds, DecoratorsDecideMethodKinds) {
  SourceFile file = parse(
      "import functools\n"
      "class C:\n"
      "    def m(self): pass\n"
      "    @staticmethod\n"
      "    def s(): pass\n"
      "    @classmethod\n"
      "    def c(cls): pass\n"
      "    @property\n"
      "    def p(self): return 1\n"
      "    @p.setter\n"
      "    def p2(self, v): pass\n"
      "    @functools.cached_property\n"
      "    def cp(self): return 2\n"
      "    async def am(self): pass\n"
      "@staticmethod\n"
      "def not_in_class(): pass\n");
  EXPECT_EQ(get(file, "C").kind, DefinitionKind::klass);
  EXPECT_EQ(get(file, "C.m").kind, DefinitionKind::method);
  EXPECT_EQ(get(file, "C.s").kind, DefinitionKind::static_method);
  EXPECT_EQ(get(file, "C.c").kind, DefinitionKind::class_method);
  EXPECT_EQ(get(file, "C.p").kind, DefinitionKind::property);
  EXPECT_EQ(get(file, "C.p2").kind, DefinitionKind::property);
  EXPECT_EQ(get(file, "C.cp").kind, DefinitionKind::property);
  EXPECT_EQ(get(file, "C.am").kind, DefinitionKind::async_function);
  EXPECT_EQ(get(file, "not_in_class").kind, DefinitionKind::function);
  EXPECT_EQ(get(file, "C.p2").decorators, (Names{"p.setter"}));
}

TEST(ParserRanges, DecoratorsIncludedAndKeywordPositionsKept) {
  std::string text =
      "x = 1\n"
      "\n"
      "@deco(1)\n"
      "@other.thing\n"
      "def f(a):\n"
      "    # comment\n"
      "    return a\n"
      "\n"
      "class C(Base, metaclass=Meta):\n"
      "    def m(self):\n"
      "        pass\n";
  SourceFile file = parse(text);
  const Definition& f = get(file, "f");
  EXPECT_EQ(f.decorators, (Names{"deco(1)", "other.thing"}));
  EXPECT_EQ(f.range.start_line, 3U);
  EXPECT_EQ(f.range.end_line, 7U);
  EXPECT_EQ(f.def_line, 5U);
  EXPECT_EQ(text.substr(f.range.start_byte, 1), "@");
  EXPECT_EQ(text.substr(f.def_byte, 3), "def");
  EXPECT_EQ(text.substr(f.body_byte, 6), "return");
  EXPECT_EQ(text.substr(f.range.end_byte - 8, 8), "return a");
  const Definition& c = get(file, "C");
  EXPECT_EQ(c.bases_text, "Base, metaclass=Meta");
  EXPECT_EQ(c.range.end_line, 11U);
  EXPECT_EQ(get(file, "C.m").indent, 4U);
}

TEST(ParserParameters, KindsDefaultsAndAnnotations) {
  SourceFile file = parse("def f(a, b: int, /, c=1, d: str = 'x', *args: int, e, f=K, **kw) -> None:\n    pass\n");
  const auto& parameters = get(file, "f").parameters;
  ASSERT_EQ(parameters.size(), 8U);
  using Kind = Parameter::Kind;
  EXPECT_EQ(parameters[0].name, "a");
  EXPECT_EQ(parameters[0].kind, Kind::positional_only);
  EXPECT_EQ(parameters[1].annotation_text, "int");
  EXPECT_EQ(parameters[1].kind, Kind::positional_only);
  EXPECT_EQ(parameters[2].kind, Kind::positional);
  EXPECT_EQ(parameters[2].default_text, "1");
  EXPECT_EQ(parameters[3].default_text, "'x'");
  EXPECT_EQ(parameters[3].annotation_text, "str");
  EXPECT_EQ(parameters[4].name, "args");
  EXPECT_EQ(parameters[4].kind, Kind::var_positional);
  EXPECT_EQ(parameters[4].annotation_text, "int");
  EXPECT_EQ(parameters[5].kind, Kind::keyword_only);
  EXPECT_EQ(parameters[6].default_text, "K");
  EXPECT_EQ(parameters[6].kind, Kind::keyword_only);
  EXPECT_EQ(parameters[7].name, "kw");
  EXPECT_EQ(parameters[7].kind, Kind::var_keyword);

  SourceFile bare = parse("def g(a, *, b):\n    pass\n");
  EXPECT_EQ(get(bare, "g").parameters.at(1).kind, Kind::keyword_only);
}

TEST(ParserFlags, GeneratorAndCoroutine) {
  SourceFile file = parse(
      "def gen():\n"
      "    yield 1\n"
      "def not_gen():\n"
      "    def inner():\n"
      "        yield 1\n"
      "    f = lambda: (yield)\n"
      "    return (x for x in y)\n"
      "def delegates():\n"
      "    x = yield from other()\n"
      "async def co():\n"
      "    await thing\n"
      "async def agen():\n"
      "    yield 1\n");
  EXPECT_TRUE(get(file, "gen").is_generator);
  EXPECT_FALSE(get(file, "not_gen").is_generator);
  EXPECT_TRUE(get(file, "not_gen.<locals>.inner").is_generator);
  EXPECT_TRUE(get(file, "delegates").is_generator);
  EXPECT_TRUE(get(file, "co").is_coroutine);
  EXPECT_FALSE(get(file, "co").is_generator);
  EXPECT_TRUE(get(file, "agen").is_coroutine);
  EXPECT_TRUE(get(file, "agen").is_generator);
  EXPECT_FALSE(get(file, "gen").is_coroutine);
}

TEST(ParserFreeVariables, NonlocalAndPassThrough) {
  SourceFile file = parse(
      "def outer():\n"
      "    x = 1\n"
      "    y = 2\n"
      "    def middle():\n"
      "        def inner():\n"
      "            nonlocal y\n"
      "            y = x\n"
      "        return inner\n"
      "    def shadow():\n"
      "        x = 3\n"
      "        return x\n"
      "    return middle\n");
  EXPECT_EQ(get(file, "outer").free_variables, Names{});
  // middle reads nothing itself: x and y pass through it for inner.
  EXPECT_EQ(get(file, "outer.<locals>.middle").free_variables, (Names{"x", "y"}));
  EXPECT_EQ(get(file, "outer.<locals>.middle.<locals>.inner").free_variables, (Names{"x", "y"}));
  EXPECT_EQ(get(file, "outer.<locals>.shadow").free_variables, Names{});
}

TEST(ParserFreeVariables, ClassScopeIsInvisibleToMethods) {
  SourceFile file = parse(
      "def f():\n"
      "    a = 1\n"
      "    class C:\n"
      "        a = 2\n"
      "        b = 3\n"
      "        c = a\n"
      "        def m(self):\n"
      "            return a, b\n"
      "    return C\n");
  // `a` in m is f's a (the class's a is invisible); `b` is a global.
  EXPECT_EQ(get(file, "f.<locals>.C.m").free_variables, (Names{"a"}));
  // The class body itself binds a, so for the class it is not free.
  EXPECT_EQ(get(file, "f.<locals>.C").free_variables, Names{});

  SourceFile reads = parse(
      "def f():\n"
      "    a = 1\n"
      "    class C:\n"
      "        c = a\n"
      "    return C\n");
  EXPECT_EQ(get(reads, "f.<locals>.C").free_variables, (Names{"a"}));
}

TEST(ParserFreeVariables, SuperAndDunderClass) {
  SourceFile file = parse(
      "class C(B):\n"
      "    def m(self):\n"
      "        return super().m()\n"
      "    def n(self):\n"
      "        def helper():\n"
      "            return __class__\n"
      "        return helper\n"
      "    def plain(self):\n"
      "        return self\n"
      "def not_method():\n"
      "    return super()\n");
  EXPECT_EQ(get(file, "C.m").free_variables, (Names{"__class__"}));
  EXPECT_EQ(get(file, "C.n").free_variables, (Names{"__class__"}));
  EXPECT_EQ(get(file, "C.n.<locals>.helper").free_variables, (Names{"__class__"}));
  EXPECT_EQ(get(file, "C.plain").free_variables, Names{});
  EXPECT_EQ(get(file, "not_method").free_variables, Names{});
  EXPECT_EQ(get(file, "C").free_variables, Names{});
}

TEST(ParserFreeVariables, ComprehensionsWalrusLambdasAndDefaults) {
  SourceFile file = parse(
      "def f(items):\n"
      "    k = 1\n"
      "    d = 2\n"
      "    e = 3\n"
      "    def comp():\n"
      "        return [k for _ in items]\n"
      "    def walrus():\n"
      "        [(last := v) for v in items]\n"
      "        def reader():\n"
      "            return last\n"
      "        return reader\n"
      "    def lam():\n"
      "        return lambda: d\n"
      "    def default(x=e):\n"
      "        return x\n"
      "    def globals_only():\n"
      "        global k\n"
      "        return k\n"
      "    def deleted():\n"
      "        del d\n"
      "    return comp\n");
  EXPECT_EQ(get(file, "f.<locals>.comp").free_variables, (Names{"items", "k"}));
  // The walrus target binds in walrus(), so reader reads it from there.
  EXPECT_EQ(get(file, "f.<locals>.walrus").free_variables, (Names{"items"}));
  EXPECT_EQ(get(file, "f.<locals>.walrus.<locals>.reader").free_variables, (Names{"last"}));
  EXPECT_EQ(get(file, "f.<locals>.lam").free_variables, (Names{"d"}));
  // The default is evaluated in f, not in default().
  EXPECT_EQ(get(file, "f.<locals>.default").free_variables, Names{});
  EXPECT_EQ(get(file, "f.<locals>.globals_only").free_variables, Names{});
  EXPECT_EQ(get(file, "f.<locals>.deleted").free_variables, Names{});
}

TEST(ParserFreeVariables, BindingsThatMakeNamesLocal) {
  SourceFile file = parse(
      "def f():\n"
      "    a = b = c = d = e = g = h = 1\n"
      "    def inner(s):\n"
      "        import a\n"
      "        for b in s: pass\n"
      "        with s as c: pass\n"
      "        try:\n"
      "            pass\n"
      "        except E as d:\n"
      "            pass\n"
      "        match s:\n"
      "            case [e, *rest] if rest: pass\n"
      "            case {'k': Point(x=g)}: pass\n"
      "        h: int\n"
      "    def reads():\n"
      "        return a, b, f'{c}', [e for _ in g], h.attr\n"
      "    return inner\n");
  EXPECT_EQ(get(file, "f.<locals>.inner").free_variables, Names{});
  EXPECT_EQ(get(file, "f.<locals>.reads").free_variables, (Names{"a", "b", "c", "e", "g", "h"}));
}

TEST(ParserFreeVariables, ManglingAndTypeParameters) {
  SourceFile file = parse(
      "def f():\n"
      "    __x = 1\n"
      "    class C:\n"
      "        def m(self):\n"
      "            return __x\n"
      "    def g():\n"
      "        return __x\n"
      "class G[T]:\n"
      "    def m(self) -> T:\n"
      "        return T\n");
  // Inside C, __x is _C__x, which f does not bind.
  EXPECT_EQ(get(file, "f.<locals>.C.m").free_variables, Names{});
  EXPECT_EQ(get(file, "f.<locals>.g").free_variables, (Names{"__x"}));
  EXPECT_EQ(get(file, "G.m").free_variables, (Names{"T"}));
  // As symtable reports for the class: T passes through it to m.
  EXPECT_EQ(get(file, "G").free_variables, (Names{".type_params", "T"}));
}

TEST(ParserConditional, CompoundStatementsAndMainGuard) {
  SourceFile file = parse(
      "try:\n"
      "    import fast\n"
      "except ImportError:\n"
      "    def fast():\n"
      "        pass\n"
      "class C:\n"
      "    if DEBUG:\n"
      "        def m(self):\n"
      "            pass\n"
      "def plain():\n"
      "    if x:\n"
      "        def nested():\n"
      "            pass\n"
      "if __name__ == '__main__':\n"
      "    def main():\n"
      "        pass\n"
      "    main()\n");
  EXPECT_TRUE(get(file, "fast").conditional);
  EXPECT_TRUE(get(file, "C.m").conditional);
  EXPECT_EQ(get(file, "C.m").kind, DefinitionKind::method);
  EXPECT_FALSE(get(file, "C").conditional);
  EXPECT_FALSE(get(file, "plain").conditional);
  EXPECT_FALSE(get(file, "plain.<locals>.nested").conditional);
  EXPECT_TRUE(get(file, "main").in_main_guard);
  EXPECT_FALSE(get(file, "fast").in_main_guard);
}

TEST(ParserStatements, ModuleAndClassLevel) {
  std::string text =
      "\"\"\"Module doc.\"\"\"\n"
      "from __future__ import annotations\n"
      "import os.path, sys as system\n"
      "from x import (a, b as c)\n"
      "X, (Y, Z) = 1, (2, 3)\n"
      "T: int = 4\n"
      "print('hi')\n"
      "class C:\n"
      "    \"\"\"Class doc.\"\"\"\n"
      "    attr = 1\n"
      "    def m(self):\n"
      "        inside = 2\n"
      "try:\n"
      "    import fast\n"
      "except ImportError:\n"
      "    def fast():\n"
      "        pass\n";
  SourceFile file = parse(text);
  ASSERT_EQ(file.statements.size(), 10U);
  using Kind = Statement::Kind;
  EXPECT_EQ(file.statements[0].kind, Kind::docstring);
  EXPECT_EQ(file.statements[1].kind, Kind::future_import);
  EXPECT_EQ(file.statements[2].kind, Kind::import);
  EXPECT_EQ(file.statements[2].targets, (Names{"os", "system"}));
  EXPECT_EQ(file.statements[3].targets, (Names{"a", "c"}));
  EXPECT_EQ(file.statements[4].kind, Kind::assignment);
  EXPECT_EQ(file.statements[4].targets, (Names{"X", "Y", "Z"}));
  EXPECT_EQ(file.statements[5].targets, (Names{"T"}));
  EXPECT_EQ(file.statements[6].kind, Kind::other);
  EXPECT_EQ(file.statements[6].text, "print('hi')");
  EXPECT_EQ(file.statements[6].range.start_line, 7U);
  EXPECT_EQ(file.statements[7].kind, Kind::docstring);
  EXPECT_EQ(file.statements[7].scope_qualname, "C");
  EXPECT_EQ(file.statements[8].kind, Kind::assignment);
  EXPECT_EQ(file.statements[8].scope_qualname, "C");
  // The try stays visible with the definition it contains cut out.
  EXPECT_EQ(file.statements[9].kind, Kind::other);
  EXPECT_EQ(file.statements[9].text, "try:\n    import fast\nexcept ImportError:\n    ");
  EXPECT_EQ(file.statements[9].scope_qualname, "");
  // A definition in it is patched on its own: not a block that only binds names.
  EXPECT_FALSE(file.statements[9].binding_block);
}

TEST(ParserStatements, BlocksThatOnlyBindNames) {
  SourceFile file = parse(
      "if sys.platform == 'win32':\n"
      "    SEP = ';'\n"
      "elif X:\n"
      "    from a import b as SEP, c\n"
      "else:\n"
      "    pass\n"
      "try:\n"
      "    setup()\n"
      "except ImportError:\n"
      "    SEP = None\n"
      "if __name__ == '__main__':\n"
      "    SEP = 1\n"
      "for name in names:\n"
      "    SEP = name\n");
  ASSERT_EQ(file.statements.size(), 4U);
  EXPECT_TRUE(file.statements[0].binding_block);
  EXPECT_EQ(file.statements[0].targets, (Names{"SEP", "c"}));
  EXPECT_FALSE(file.statements[1].binding_block);  // a call runs code
  EXPECT_TRUE(file.statements[1].targets.empty());
  EXPECT_FALSE(file.statements[2].binding_block);  // the main guard ran once
  EXPECT_FALSE(file.statements[3].binding_block);  // a loop: not an if/try
}

TEST(ParserErrors, ReportedWithLineAndColumn) {
  SourceFile file = parse(
      "def ok():\n"
      "    pass\n"
      "def broken(:\n"
      "    pass\n");
  ASSERT_FALSE(file.errors.empty());
  EXPECT_EQ(file.errors[0].line, 3U);
  EXPECT_GE(file.errors[0].column, 1U);
  EXPECT_FALSE(file.errors[0].message.empty());

  SourceFile missing = parse("x = (1,\n");
  ASSERT_FALSE(missing.errors.empty());
  EXPECT_EQ(missing.errors[0].line, 1U);

  SourceFile py2 = parse("print 'hello'\n");
  ASSERT_EQ(py2.errors.size(), 1U);
  EXPECT_EQ(py2.errors[0].column, 1U);

  // tree-sitter's MISSING newline is a hidden node no walk visits: still an error.
  SourceFile hidden = parse("\\\n    print(f(1.))\nese:\nelse:\n  a pass\n");
  ASSERT_EQ(hidden.errors.size(), 1U);
  EXPECT_EQ(hidden.errors[0].line, 5U);
  EXPECT_EQ(hidden.errors[0].column, 5U);

  EXPECT_TRUE(parse("print >> sys.stderr, 'x'\n").errors.empty());
  EXPECT_TRUE(parse("def f():\n    return 1\n").errors.empty());
}

// autoreload's (and reload's) guard against applying an emptied file.
TEST(ParserDefinitions, DeletesEveryDefinition) {
  SourceFile live = parse("import os\ndef f():\n    return 1\n");
  EXPECT_TRUE(deletes_every_definition(live, parse("")));
  EXPECT_TRUE(deletes_every_definition(live, parse("import os\n")));
  EXPECT_FALSE(deletes_every_definition(live, parse("def g():\n    return 2\n")));
  EXPECT_FALSE(deletes_every_definition(parse("X = 1\n"), parse("")));
}

std::string nested_ifs(int levels, int width) {
  std::string text = "def f(x):\n";
  for (int level = 1; level <= levels + 1; ++level) {
    text += std::string(static_cast<std::size_t>(level * width), ' ') + (level <= levels ? "if x:\n" : "pass\n");
  }
  return text;
}

// CPython's tokenizer takes 99 levels of indentation; the grammar's scanner
// misparsed from column 256 on and blamed line 1.
TEST(ParserErrors, TooDeepIndentationIsReportedWhereItIs) {
  EXPECT_TRUE(parse(nested_ifs(98, 2)).errors.empty());
  SourceFile deep = parse(nested_ifs(99, 2));
  ASSERT_EQ(deep.errors.size(), 1U);
  EXPECT_EQ(deep.errors[0].line, 101U);
  EXPECT_EQ(deep.errors[0].message, "too many levels of indentation");
  SourceFile wide = parse(nested_ifs(64, 4));
  ASSERT_EQ(wide.errors.size(), 1U);
  EXPECT_EQ(wide.errors[0].line, 65U);
  EXPECT_TRUE(parse(nested_ifs(62, 4)).errors.empty());
  EXPECT_TRUE(parse(std::string(300, ' ') + "\n" + "x = '" + std::string(300, ' ') + "'\n").errors.empty());
}

// What CPython's tokenizer refuses before its grammar: the parser reports it
// as a syntax error too, so `check` and the pre-commit hook refuse it.
TEST(ParserErrors, InconsistentTabsAreATabError) {
  SourceFile mixed = parse("def f():\n\tif x:\n        return 1\n");
  ASSERT_EQ(mixed.errors.size(), 1U);
  EXPECT_EQ(mixed.errors[0].line, 3U);
  EXPECT_EQ(mixed.errors[0].message, "inconsistent use of tabs and spaces in indentation");
  // Same column one way, another the other way: 8 spaces after a tab.
  EXPECT_FALSE(parse("if x:\n\ty = 1\n        z = 2\n").errors.empty());
  // Consistent either way: tabs only, spaces only, and a tab deeper than spaces.
  EXPECT_TRUE(parse("def f():\n\tif x:\n\t\treturn 1\n").errors.empty());
  EXPECT_TRUE(parse("def f():\n    if x:\n        return 1\n").errors.empty());
  EXPECT_TRUE(parse("def f():\n  \tif x:\n  \t  return 1\n").errors.empty());
  // Continuation lines, brackets, strings and comments are not indentation.
  EXPECT_TRUE(parse("def f():\n\tx = (1,\n        2)\n\ty = 1 + \\\n        2\n"
                    "\ts = '''\n        '''\n        # a comment\n\treturn x\n")
                  .errors.empty());
}

TEST(ParserErrors, CodingDeclarationsCPythonCannotHonour) {
  SourceFile unknown = parse("# -*- coding: nonexistent -*-\ndef f():\n    return 1\n");
  ASSERT_EQ(unknown.errors.size(), 1U);
  EXPECT_EQ(unknown.errors[0].line, 1U);
  EXPECT_EQ(unknown.errors[0].message, "unknown encoding: nonexistent");
  SourceFile second = parse("#!/usr/bin/env python\n# vim: set fileencoding=bogus :\nx = 1\n");
  ASSERT_EQ(second.errors.size(), 1U);
  EXPECT_EQ(second.errors[0].line, 2U);
  SourceFile bom_latin = parse("\xEF\xBB\xBF# coding: latin-1\nx = 1\n");
  ASSERT_EQ(bom_latin.errors.size(), 1U);
  EXPECT_EQ(bom_latin.errors[0].message, "encoding problem: iso-8859-1 with BOM");
  // What CPython accepts.
  EXPECT_TRUE(parse("# -*- coding: utf-8 -*-\nx = 1\n").errors.empty());
  EXPECT_TRUE(parse("# coding=Latin_1\nx = 1\n").errors.empty());
  EXPECT_TRUE(parse("# vim: fileencoding=iso8859-15\nx = 1\n").errors.empty());
  EXPECT_TRUE(parse("\xEF\xBB\xBF# coding: UTF-8\nx = 1\n").errors.empty());
  EXPECT_TRUE(parse("x = 1\n# coding: bogus\n").errors.empty()) << "only before the first statement";
  EXPECT_TRUE(parse("\n\n# coding: bogus\n").errors.empty()) << "only on the first two lines";
}

TEST(ParserErrors, UtfEightByteOrderMarkParses) {
  const std::string text = "\xEF\xBB\xBFimport os\ndef f():\n    return 1\n";
  SourceFile file = parse(text);
  EXPECT_TRUE(file.errors.empty());
  const Definition& f = get(file, "f");
  EXPECT_EQ(f.def_line, 2U);
  EXPECT_EQ(text.substr(f.def_byte, 3), "def");
  ASSERT_EQ(file.statements.size(), 1U);
  EXPECT_EQ(file.statements[0].text, "import os") << "the mark is not part of the first statement";
  const std::string first_def = std::string("\xEF\xBB\xBF") + "def f():\n    return 1\n";
  SourceFile starts_with_def = parse(first_def);
  EXPECT_TRUE(starts_with_def.errors.empty());
  EXPECT_EQ(first_def.substr(get(starts_with_def, "f").range.start_byte, 3), "def");
  EXPECT_EQ(get(starts_with_def, "f").indent, 0U);
}

}  // namespace
}  // namespace pyhot::parser
