#!/usr/bin/env python3
"""Replays real edits into live processes and compares each result with a
fresh import of the new text (issue 14's oracle).

The edits nobody here wrote: the standard library of one CPython version
against the next one's (`--pairs 3.12:3.13` takes every top-level pure-Python
module that differs between the two and imports both texts under the newer
interpreter). For each module:

  unchanged  reload of the imported text itself: must change nothing
  first      a fresh target, the new text written, `pyhot reload PID FILE`
  second     a fresh target, one reload of the unchanged text first (pyhot
             has then seen the module), then the new text

An outcome is `exact` when the live module (names, plain values, classes,
every function's code with line numbers, defaults, docstrings, and the code
behind the function objects held since import) equals a fresh import of the
new text; `refused` when pyhot said the edit needs a restart and the live
module still equals the old text; `failed` when pyhot exited 1 for another
reason with nothing changed; anything else is `wrong` (with the first
difference).

  bench/real_edits/replay.py --pairs 3.12:3.13 [--limit N] [--attach] [--json out.json]
"""
import argparse
import contextlib
import glob
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.py")


def stdlib(version):
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "lib", "python" + version)))
    if not found:
        return None, None
    lib = found[-1]
    return lib, os.path.join(os.path.dirname(os.path.dirname(lib)), "bin", "python" + version)


def changed_modules(old_lib, new_lib):
    names = []
    for path in sorted(glob.glob(os.path.join(new_lib, "*.py"))):
        name = os.path.basename(path)[:-3]
        old = os.path.join(old_lib, name + ".py")
        if name.startswith("_") or name in ("this", "antigravity", "__future__") or not os.path.exists(old):
            continue
        with open(old, "rb") as a, open(path, "rb") as b:
            if a.read() != b.read():
                names.append(name)
    return names


class Live:
    """One target process holding the module `name` imported from `path`."""

    def __init__(self, pyhot, python, name, path, attach):
        command = [python, "-X", "utf8", TARGET, name, path]
        if not attach:
            command = [pyhot, "run", "--"] + command
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("{"):
            self.close()
            raise RuntimeError("the old text does not import")
        self.pid = self.process.pid

    def ask(self, op, **arguments):
        self.process.stdin.write(json.dumps(dict(arguments, op=op)) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        if not ready:
            raise RuntimeError("the target did not answer %s within 60 s" % op)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the target exited during %s" % op)
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply["value"]

    def close(self):
        try:
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait()


def first_difference(live, fresh, old=None):
    """The first thing a user would notice differs, in words; None if equal.
    With `old` (the module before the edit), a module-level import or
    constant the edit removed may stay bound: pyhot keeps those on purpose
    (a running frame may still read them) and says so. A removed function or
    class must be gone."""
    kept = set()
    if old is not None:
        definitions = {key.split(".")[0] for key in list(old["functions"]) + list(old["classes"])}
        kept = set(old["names"]) - set(fresh["names"]) - definitions
    names = [name for name in live["names"] if name not in kept]
    if names != fresh["names"]:
        extra = sorted(set(names) - set(fresh["names"]))
        missing = sorted(set(fresh["names"]) - set(live["names"]))
        return "names: live has %s extra, lacks %s" % (extra[:5], missing[:5])
    for kind in ("values", "classes", "functions"):
        for key in sorted((set(live[kind]) - kept) | set(fresh[kind])):
            a, b = live[kind].get(key), fresh[kind].get(key)
            if a != b:
                if a is None or b is None:
                    return "%s %s: %s" % (kind, key, "missing in the live module" if a is None else "not in a fresh import")
                fields = [field for field in b if a.get(field) != b.get(field)] if isinstance(b, dict) else []
                return "%s %s differs (%s)" % (kind, key, ", ".join(fields) or "value")
    for key, code in live["held"].items():
        fresh_fn = fresh["functions"].get(key)
        if fresh_fn is not None and code != fresh_fn["code"]:
            return "an old reference to %s runs other code than a fresh import" % key
    return None


def pyhot_reload(pyhot, pid, path):
    started = time.monotonic()
    done = subprocess.run([pyhot, "reload", str(pid), path], capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - started


@contextlib.contextmanager
def imported(pyhot, python, name, text, attach):
    """A fresh target that imported `text` as m_<name> from a file of its own:
    yields (live, path). RuntimeError when the text does not import."""
    directory = tempfile.mkdtemp(prefix="pyhot-replay-")
    path = os.path.join(directory, "m_%s.py" % name)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        live = Live(pyhot, python, "m_" + name, path, attach)
        try:
            yield live, path
        finally:
            live.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def replay(pyhot, python, name, old_text, new_text, attach, warm):
    """One edit in one fresh target; returns (outcome, detail)."""
    try:
        with imported(pyhot, python, name, old_text, attach) as (live, path):
            return judge_edit(pyhot, live, path, new_text, warm)
    except RuntimeError as error:
        return "skipped", str(error)


def judge_edit(pyhot, live, path, new_text, warm):
    before = live.ask("live")
    calibration = first_difference(before, live.ask("fresh", path=path))
    if calibration is not None:
        return "skipped", "a fresh import differs from the live one before any reload: " + calibration
    if warm:
        done, _ = pyhot_reload(pyhot, live.pid, path)
        state = live.ask("live")
        difference = first_difference(state, before)
        if difference is not None:
            return "wrong", "the unchanged reload changed the module: " + difference
        if done.returncode != 0:
            return "wrong", "the unchanged reload failed: " + (done.stdout + done.stderr).strip()[:300]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(new_text)
    try:
        after = live.ask("fresh", path=path)
    except RuntimeError as error:
        return "skipped", "the new text does not import: %s" % error
    done, _ = pyhot_reload(pyhot, live.pid, path)
    state = live.ask("live")
    if done.returncode == 0:
        difference = first_difference(state, after, old=before)
        return ("exact", "") if difference is None else ("wrong", difference)
    message = (done.stdout + done.stderr).strip().splitlines()
    message = message[0] if message else "exit %d" % done.returncode
    if first_difference(state, before) is not None:
        return "wrong", "refused (%s) but the module changed" % message
    # Right only when a rule said a restart is needed; an error on the way
    # (a NameError, an indent pyhot introduced) is a failure.
    if "cannot be applied to the live process" in done.stdout + done.stderr:
        return "refused", message
    return "failed", message


def unchanged(pyhot, python, name, text, attach):
    """Reload of the imported text: exit 0, the module as it was."""
    try:
        with imported(pyhot, python, name, text, attach) as (live, path):
            before = live.ask("live")
            done, _ = pyhot_reload(pyhot, live.pid, path)
            difference = first_difference(live.ask("live"), before)
            if done.returncode == 0 and difference is None:
                return "no-op", ""
            return "wrong", difference or (done.stdout + done.stderr).strip()[:300]
    except RuntimeError as error:
        return "skipped", str(error)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="3.8:3.9,3.9:3.10,3.10:3.11,3.11:3.12,3.12:3.13")
    parser.add_argument("--pyhot", default=os.path.join(ROOT, "build", "pyhot"))
    parser.add_argument("--limit", type=int, default=0, help="modules per pair (0: all)")
    parser.add_argument("--modules", default="", help="only these module names (comma-separated)")
    parser.add_argument("--attach", action="store_true", help="targets started without pyhot (default: pyhot run)")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every module's outcome")
    args = parser.parse_args()
    results = []
    for pair in args.pairs.split(","):
        old_version, new_version = pair.split(":")
        old_lib, _ = stdlib(old_version)
        new_lib, python = stdlib(new_version)
        if old_lib is None or new_lib is None:
            print("note: Python %s or %s not found; pair skipped" % (old_version, new_version))
            continue
        names = changed_modules(old_lib, new_lib)
        if args.modules:
            names = [name for name in names if name in args.modules.split(",")]
        if args.limit:
            names = names[:args.limit]
        for name in names:
            with open(os.path.join(old_lib, name + ".py"), encoding="utf-8") as handle:
                old_text = handle.read()
            with open(os.path.join(new_lib, name + ".py"), encoding="utf-8") as handle:
                new_text = handle.read()
            row = {"pair": pair, "module": name}
            for column, run in (("unchanged", lambda: unchanged(args.pyhot, python, name, old_text, args.attach)),
                                ("first", lambda: replay(args.pyhot, python, name, old_text, new_text, args.attach,
                                                         warm=False)),
                                ("second", lambda: replay(args.pyhot, python, name, old_text, new_text, args.attach,
                                                          warm=True))):
                try:
                    row[column] = run()
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    # The oracle could not judge (the target hung or died): counted apart.
                    row[column] = ("skipped", "oracle: %s" % error)
            results.append(row)
            if args.verbose:
                print("%-10s %-16s unchanged=%-8s first=%-8s second=%-8s %s" % (
                    pair, name, row["unchanged"][0], row["first"][0], row["second"][0],
                    (row["first"][1] or row["second"][1])[:120]), flush=True)
    summarize(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


def summarize(results):
    counted = [row for row in results if row["first"][0] != "skipped" and row["second"][0] != "skipped"]
    print("%d edits replayed (%d skipped: a text does not import under the newer interpreter)"
          % (len(counted), len(results) - len(counted)))
    for column in ("first", "second"):
        good = sum(1 for row in counted if row[column][0] in ("exact", "refused"))
        exact = sum(1 for row in counted if row[column][0] == "exact")
        failed = sum(1 for row in counted if row[column][0] == "failed")
        print("  %-6s reload: %d/%d right (%d exact, %d rightly refused) = %.0f%%; %d failed, %d wrong" % (
            column, good, len(counted), exact, good - exact, 100.0 * good / max(1, len(counted)), failed,
            len(counted) - good - failed))
    noop = [row for row in results if row["unchanged"][0] != "skipped"]
    print("  unchanged reload: %d/%d no-ops" % (sum(1 for row in noop if row["unchanged"][0] == "no-op"), len(noop)))


if __name__ == "__main__":
    main()
