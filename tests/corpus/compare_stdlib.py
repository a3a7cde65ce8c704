#!/usr/bin/env python3
"""Checks pyhot's parser against CPython on a whole standard library.

For every .py file of an interpreter's standard library that this
interpreter compiles, CPython itself (ast + symtable, run inside that
interpreter) says which definitions exist (qualname, line of the def/class
keyword) and, for each, the free variables its code has. parser_dump says
what pyhot's parser finds. The two are compared and the agreement printed.

    compare_stdlib.py --parser-dump build/parser/parser_dump [--python /usr/bin/python3 ...]

Exit status 1 when the definition agreement of any interpreter is below
--min-agreement (or the free-variable agreement below --min-free-agreement).
Standard library only, so it runs under any Python 3 on the machine.
"""

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import time

# Runs inside the interpreter under test (3.8+): prints one JSON line per
# stdlib file it compiles. Kept free of syntax newer than 3.8.
ORACLE = r'''
import ast, json, os, symtable, sys, sysconfig, warnings, importlib.util, collections

warnings.simplefilter("ignore")
stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])

def table_index(table, out):
    for child in table.get_children():
        key = (str(child.get_type()).split(".")[-1].lower(), child.get_name(), child.get_lineno())
        out.setdefault(key, []).append(child)
        table_index(child, out)

def mangle(private, name):
    if not private or not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = private.lstrip("_")
    if not stripped:
        return name
    return "_" + stripped + name

def frees_of(table, is_class):
    if is_class:
        return sorted(s.get_name() for s in table.get_symbols() if s.is_free())
    return sorted(table.get_frees())

def definitions(tree, top):
    index = {}
    table_index(top, index)
    out = []
    # stack entries: (qualname, table, kind, private)
    def visit(node, parent):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                is_class = isinstance(child, ast.ClassDef)
                kind = "class" if is_class else "function"
                tables = index.get((kind, child.name, child.lineno)) or []
                table = tables.pop(0) if tables else None
                if parent is None:
                    qualname = child.name
                else:
                    p_qualname, p_table, p_kind, p_private = parent
                    is_global = False
                    try:
                        is_global = p_table.lookup(mangle(p_private, child.name)).is_declared_global()
                    except (KeyError, AttributeError):
                        pass
                    if is_global:
                        qualname = child.name
                    elif p_kind == "function":
                        qualname = p_qualname + ".<locals>." + child.name
                    else:
                        qualname = p_qualname + "." + child.name
                frees = frees_of(table, is_class) if table is not None else None
                out.append([qualname, child.lineno, frees])
                private = child.name if is_class else (parent[3] if parent else None)
                visit(child, (qualname, table, kind, private))
            else:
                visit(child, parent)
    visit(tree, None)
    return out

def code_qualnames(code):
    # 3.11+: what the compiler itself called every def and class.
    names = []
    for const in code.co_consts:
        if hasattr(const, "co_qualname"):
            if not const.co_name.startswith("<"):
                names.append(const.co_qualname)
            names.extend(code_qualnames(const))
    return names

for root, dirs, files in os.walk(stdlib):
    dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
    for name in sorted(files):
        if not name.endswith(".py"):
            continue
        path = os.path.join(root, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
            code = compile(data, path, "exec", dont_inherit=True)
            tree = ast.parse(data, path)
            top = symtable.symtable(importlib.util.decode_source(data), path, "exec")
            defs = definitions(tree, top)
        except (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeError, OverflowError):
            continue
        record = {"file": path, "defs": defs}
        if sys.version_info >= (3, 11):
            expected = collections.Counter(code_qualnames(code))
            computed = collections.Counter(d[0] for d in defs)
            if expected != computed:
                record["oracle_mismatch"] = sorted((expected - computed).elements())[:3] + ["vs"] + sorted((computed - expected).elements())[:3]
        print(json.dumps(record))
'''


def find_interpreters():
    found = []
    if os.path.exists("/usr/bin/python3"):
        found.append("/usr/bin/python3")
    home = os.path.expanduser("~/.pyenv/versions")
    for minor in range(8, 14):
        for path in sorted(glob.glob(os.path.join(home, "3.%d*" % minor, "bin", "python3.%d" % minor))):
            found.append(path)
    return found


def run_parser_dump(parser_dump, paths):
    result = {}
    chunk = 200
    for start in range(0, len(paths), chunk):
        batch = paths[start:start + chunk]
        out = subprocess.run([parser_dump] + batch, stdout=subprocess.PIPE, check=False).stdout
        for line in out.decode("utf-8", "replace").splitlines():
            if line.strip():
                record = json.loads(line)
                result[record["file"]] = record
    return result


def compare_interpreter(python, parser_dump, show):
    started = time.monotonic()
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    oracle_out = subprocess.run([python, "-c", ORACLE], stdout=subprocess.PIPE, check=True).stdout
    oracle = [json.loads(line) for line in oracle_out.decode("utf-8", "replace").splitlines() if line.strip()]
    ours = run_parser_dump(parser_dump, [record["file"] for record in oracle])

    defs_total = defs_agree = free_total = free_agree = 0
    files_with_errors = 0
    oracle_mismatches = 0
    problems = []
    for record in oracle:
        path = record["file"]
        if "oracle_mismatch" in record:
            oracle_mismatches += 1
            problems.append("%s: oracle disagrees with co_qualname: %s" % (path, record["oracle_mismatch"]))
        mine = ours.get(path)
        if mine is None or "defs" not in mine:
            defs_total += len(record["defs"])
            problems.append("%s: parser_dump gave nothing (%s)" % (path, (mine or {}).get("failure", "no output")))
            continue
        if mine["errors"]:
            files_with_errors += 1
            error = mine["errors"][0]
            problems.append("%s:%d:%d: parser reports a syntax error CPython does not: %s"
                            % (path, error["line"], error["column"], error["message"]))
        expected = collections.defaultdict(list)
        for qualname, line, frees in record["defs"]:
            expected[(qualname, line)].append(frees)
        found = collections.defaultdict(list)
        for definition in mine["defs"]:
            found[(definition["qualname"], definition["line"])].append(definition["free"])
        for key in sorted(set(expected) | set(found)):
            want, got = expected.get(key, []), found.get(key, [])
            matched = min(len(want), len(got))
            defs_total += max(len(want), len(got))
            defs_agree += matched
            if len(want) > len(got):
                problems.append("%s:%d: missing definition %s" % (path, key[1], key[0]))
            elif len(got) > len(want):
                problems.append("%s:%d: extra definition %s" % (path, key[1], key[0]))
            for i in range(matched):
                if want[i] is None:
                    continue
                free_total += 1
                if sorted(want[i]) == sorted(got[i]):
                    free_agree += 1
                else:
                    problems.append("%s:%d: %s free variables: CPython %s, parser %s"
                                    % (path, key[1], key[0], want[i], got[i]))

    def pct(a, b):
        return 100.0 * a / b if b else 100.0

    print("%s (%s): %d files compared in %.1fs" % (python, version, len(oracle), time.monotonic() - started))
    print("  definitions agreeing:    %d / %d (%.3f%%)" % (defs_agree, defs_total, pct(defs_agree, defs_total)))
    print("  free-variable sets:      %d / %d (%.3f%%)" % (free_agree, free_total, pct(free_agree, free_total)))
    print("  files the parser rejects: %d; oracle self-check failures: %d" % (files_with_errors, oracle_mismatches))
    for problem in problems[:show]:
        print("    " + problem)
    if len(problems) > show:
        print("    ... %d more" % (len(problems) - show))
    return pct(defs_agree, defs_total), pct(free_agree, free_total)


def main():
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--parser-dump", required=True, help="path to the parser_dump executable")
    arguments.add_argument("--python", action="append", help="interpreter to check (repeatable); default: all found")
    arguments.add_argument("--min-agreement", type=float, default=100.0, help="minimum %% of definitions agreeing")
    arguments.add_argument("--min-free-agreement", type=float, default=0.0,
                           help="minimum %% of free-variable sets agreeing")
    arguments.add_argument("--show", type=int, default=20, help="disagreements to print per interpreter")
    options = arguments.parse_args()

    interpreters = options.python or find_interpreters()
    if not interpreters:
        print("no Python interpreter found", file=sys.stderr)
        return 2
    failed = False
    for python in interpreters:
        defs_pct, free_pct = compare_interpreter(python, options.parser_dump, options.show)
        if defs_pct < options.min_agreement or free_pct < options.min_free_agreement:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
