#!/usr/bin/env python3
"""Parse + hash + diff: pyhot's parser and differ against the ast approach.

The Python reloaders (jurigged, IPython's autoreload) find what changed by
running ast.parse on both versions and comparing ast.dump() of every
function and class (and here also of module- and class-level statements,
which pyhot compares too). This script times that and pyhot on the same
inputs in the same run:

  * the largest modules of this interpreter's standard library and a
    ~100k-line concatenation of standard-library files, each against a copy
    with one function body edited (bench_parse_diff: fresh parses of both);
  * successive one-line edits in a 10,000-line file (bench_reparse): fresh
    versus incremental re-parse, then diff against the previous version.

    /usr/bin/python3 bench/parse/bench_parse_diff.py --build-dir build-perf
"""

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

LARGE_MODULES = ["pydoc_data/topics.py", "_pydecimal.py", "turtle.py", "typing.py", "inspect.py"]


def stdlib_files(stdlib):
    """Every top-level-package .py file of the standard library that parses."""
    found = []
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in ("test", "tests", "site-packages", "dist-packages",
                                                      "idle_test", "lib2to3", "__pycache__"))
        for name in sorted(files):
            if name.endswith(".py"):
                found.append(os.path.join(root, name))
    return found


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def parses(text):
    try:
        ast.parse(text)
        return True
    except (SyntaxError, ValueError):
        return False


def concatenation(stdlib, min_lines):
    """Standard-library files one after another until min_lines, as one module."""
    parts = []
    lines = 0
    for path in stdlib_files(stdlib):
        try:
            text = read(path)
        except UnicodeDecodeError:
            continue
        if "from __future__" in text or not parses(text):
            continue
        if not text.endswith("\n"):
            text += "\n"
        parts.append(text)
        lines += text.count("\n")
        if lines >= min_lines:
            break
    return "".join(parts)


def cut_at_statement(text, max_lines):
    """The longest prefix of at most max_lines lines that ends between two top-level statements."""
    lines = text.splitlines(keepends=True)
    cut = len(lines)
    for node in ast.parse(text).body:
        if node.lineno - 1 > max_lines:
            break
        cut = node.lineno - 1
    # Comments and decorators just above the cut belong to the next statement; ast
    # still parses either way.
    return "".join(lines[:cut])


def edit_one_function(text):
    """A copy with one line added to the body of the function nearest the middle of the file."""
    lines = text.splitlines(keepends=True)
    middle = len(lines) // 2
    candidates = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            last = node.body[-1]
            before = lines[last.lineno - 1][: last.col_offset]
            if last.lineno > node.lineno and last.col_offset > 0 and before.strip() == "":
                candidates.append((abs(last.lineno - middle), last.lineno, last.col_offset, node.name))
    for _, lineno, column, name in sorted(candidates):
        edited = lines[: lineno - 1] + [" " * column + "_bench_edit = 1\n"] + lines[lineno - 1:]
        result = "".join(edited)
        if parses(result):
            return result, "function %s: a line added" % name
    # No function (pydoc_data/topics.py is one dict of strings): change a letter
    # of a string near the middle.
    for index in range(middle, len(lines)):
        line = lines[index]
        at = line.find("e", line.find("'") + 1)
        if line.lstrip().startswith("'") and at > 0:
            edited = lines[:index] + [line[:at] + "E" + line[at + 1:]] + lines[index + 1:]
            result = "".join(edited)
            if parses(result) and ast.dump(ast.parse(result)) != ast.dump(ast.parse(text)):
                return result, "a string edited (no function in the file)"
    raise SystemExit("no edit found")


# ---- the ast approach ----

def dumps_by_definition(tree):
    """{qualname: ast.dump} for every def/class and {scope: [dump]} for the other statements."""
    definitions = {}
    statements = {}

    def visit(body, prefix, scope, collect):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = prefix + node.name
                key = qualname
                count = 2
                while key in definitions:
                    key = "%s#%d" % (qualname, count)
                    count += 1
                definitions[key] = ast.dump(node)
                is_class = isinstance(node, ast.ClassDef)
                visit(node.body, qualname + ("." if is_class else ".<locals>."), qualname, is_class and collect)
            else:
                if collect:
                    statements.setdefault(scope, []).append(ast.dump(node))
                for child in ast.iter_child_nodes(node):
                    # defs under if/try/with at any level
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        visit([child], prefix, scope, False)
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt) or isinstance(n, ast.excepthandler)],
                              prefix, scope, False)

    visit(tree.body, "", "", True)
    return definitions, statements


def ast_diff(before_text, after_text):
    before_defs, before_statements = dumps_by_definition(ast.parse(before_text))
    after_defs, after_statements = dumps_by_definition(ast.parse(after_text))
    changed = [name for name, dump in after_defs.items() if before_defs.get(name) != dump]
    changed += [name for name in before_defs if name not in after_defs]
    for scope in set(before_statements) | set(after_statements):
        if sorted(before_statements.get(scope, [])) != sorted(after_statements.get(scope, [])):
            changed.append("statements of %r" % scope)
    return changed


def time_ast(before_text, after_text, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        changed = ast_diff(before_text, after_text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), len(changed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default="build", help="CMake build directory with bench/parse/ binaries")
    parser.add_argument("--runs", type=int, default=11, help="runs per file; medians are reported")
    parser.add_argument("--edits", type=int, default=200, help="one-line edits for the re-parse benchmark")
    parser.add_argument("--keep", help="write the generated inputs into this directory and keep them")
    args = parser.parse_args()

    bench_dir = os.path.join(args.build_dir, "bench", "parse")
    stdlib = sysconfig.get_paths()["stdlib"]
    workdir = args.keep or tempfile.mkdtemp(prefix="pyhot-bench-parse-")
    os.makedirs(workdir, exist_ok=True)

    inputs = [(name, read(os.path.join(stdlib, name))) for name in LARGE_MODULES]
    inputs.append(("stdlib concatenation (~100k lines)", concatenation(stdlib, 100_000)))

    pairs = []
    rows = []
    for index, (name, before_text) in enumerate(inputs):
        after_text, edit = edit_one_function(before_text)
        before_path = os.path.join(workdir, "%d_before.py" % index)
        after_path = os.path.join(workdir, "%d_after.py" % index)
        with open(before_path, "w", encoding="utf-8") as f:
            f.write(before_text)
        with open(after_path, "w", encoding="utf-8") as f:
            f.write(after_text)
        pairs += [before_path, after_path]
        rows.append({"name": name, "lines": before_text.count("\n"), "edit": edit,
                     "ast": time_ast(before_text, after_text, args.runs)})

    output = subprocess.run([os.path.join(bench_dir, "bench_parse_diff"), "--runs", str(args.runs)] + pairs,
                            check=True, capture_output=True, text=True).stdout
    results = [json.loads(line) for line in output.splitlines()]

    print("Python %s, %d runs per file (median; best in parentheses), %d CPUs" %
          (sys.version.split()[0], args.runs, os.cpu_count()))
    print()
    print("| file | lines | edit | ast.parse+dump | pyhot, both fresh | ratio | pyhot, after incremental | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for row, result in zip(rows, results):
        ast_median, ast_best, _ = row["ast"]
        print("| %s | %d | %s | %.1f ms (%.1f) | %.1f ms (%.1f) | %.1fx | %.1f ms | %.1fx |" %
              (row["name"], row["lines"], row["edit"], ast_median, ast_best, result["median_ms"],
               result["best_ms"], ast_median / result["median_ms"], result["incremental_median_ms"],
               ast_median / result["incremental_median_ms"]))
    print()
    print("pyhot split (medians): " + ", ".join(
        "%s parse %.1f ms + diff %.2f ms" % (row["name"], r["parse_median_ms"], r["diff_median_ms"])
        for row, r in zip(rows, results)))

    ten_k = cut_at_statement(concatenation(stdlib, 12_000), 10_000)
    ten_k_path = os.path.join(workdir, "ten_k.py")
    with open(ten_k_path, "w", encoding="utf-8") as f:
        f.write(ten_k)
    output = subprocess.run([os.path.join(bench_dir, "bench_reparse"), "--edits", str(args.edits), "--verify",
                             ten_k_path], check=True, capture_output=True, text=True).stdout
    r = json.loads(output)
    print()
    print("Re-diff after a one-line edit, %d-line file, %d successive edits (%d mismatches fresh vs incremental):" %
          (r["lines"], r["edits"], r["mismatches"]))
    print()
    print("| | median | p99 |")
    print("|---|---|---|")
    print("| fresh parse + diff | %.2f ms | %.2f ms |" % (r["fresh_median_ms"], r["fresh_p99_ms"]))
    print("| incremental parse + diff | %.2f ms | %.2f ms |" % (r["incremental_median_ms"], r["incremental_p99_ms"]))
    print()
    print("incremental split (medians): parse %.2f ms, diff %.2f ms" %
          (r["incremental_parse_median_ms"], r["diff_median_ms"]))
    if not args.keep:
        for path in pairs + [ten_k_path]:
            os.remove(path)
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
