#!/usr/bin/env python3
"""First reload of a 2,000-function module with its imported text known
(issue 10): recorded at import (`pyhot run`), proven from git (the agent
running without an import record, as in an attached process), or proven by
the module's .pyc (an attached process, the file read when the agent
started, its mtime and size the .pyc's: nothing compiled), against the
steady state (a later reload of the same module). End to end (`pyhot reload
PID FILE.py`, process start to exit) and the longest stall of the target's
main thread during the reload. See bench/README.md, `## first contact`.

    /usr/bin/python3 bench/first_contact/bench_first_contact.py [--pyhot build/pyhot] [--runs 10]

Standard library only; every process it starts is stopped."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "reload"))
import gen_module  # noqa: E402


def git(directory, *args):
    subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b"] + list(args), cwd=directory, check=True,
                   capture_output=True, timeout=60)


class Target:
    def __init__(self, args, directory, modules, record, attach=False):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        if not record:
            env["PYHOT_AGENT_RECORD_IMPORTS"] = "0"
        command = [args.python, os.path.join(HERE, "target.py"), "--dir", directory, "--modules", ",".join(modules)]
        if not attach:
            command = [args.pyhot, "run", "--"] + command
        self.directory = directory
        self.process = subprocess.Popen(command, cwd=directory, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise SystemExit("target did not start: %r" % line)
        self.pid = self.process.pid
        deadline = time.monotonic() + 20
        while subprocess.run([args.pyhot, "history", str(self.pid)], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the agent did not answer")
            time.sleep(0.05)

    def stall_ms(self, t0, t1):
        """The longest gap of the target's main thread that ended in [t0, t1]."""
        worst = 0.0
        with open(os.path.join(self.directory, "gaps.log")) as handle:
            for line in handle:
                end, gap = map(float, line.split())
                if t0 <= end <= t1 + 0.05:
                    worst = max(worst, gap)
        return worst

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def reload(args, target, path, value):
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(gen_module.edit(text, value))
    t0 = time.monotonic()
    done = subprocess.run([args.pyhot, "reload", str(target.pid), path], capture_output=True, text=True, timeout=120)
    t1 = time.monotonic()
    if done.returncode != 0 or "swapped" not in done.stdout:
        raise SystemExit("reload failed:\n%s%s" % (done.stdout, done.stderr))
    return (t1 - t0) * 1000.0, target.stall_ms(t0, t1)


def run_case(args, record, committed, bytecode=False, shared_text=False):
    """(first reload samples, steady-state samples): one fresh module per first
    reload. bytecode: the modules are imported from their .pyc and the agent
    is attached (by `pyhot history`, which waits for it) before the edits.
    Each module's text is its own (a last comment line), so that no first
    reload finds the imported text in the parsed cache; shared_text: all
    have one text, as the workers of a pre-fork server do, and the first
    reload of the first module (which parses it) is left out."""
    directory = tempfile.mkdtemp(prefix="pyhot-first-")
    # A parsed cache of the case's own: what an earlier case or run parsed is not there.
    saved_cache = os.environ.get("PYHOT_CACHE_DIR")
    os.environ["PYHOT_CACHE_DIR"] = tempfile.mkdtemp(prefix="parsed-", dir=directory)
    try:
        names = ["big%02d" % i for i in range(args.runs + (1 if shared_text else 0))]
        text = gen_module.generate(args.functions)
        for name in names:
            with open(os.path.join(directory, name + ".py"), "w") as handle:
                handle.write(text if shared_text else text + "# %s %s\n" % (name, directory))
        if committed:
            git(directory, "init", "-q")
            git(directory, "add", ".")
            git(directory, "commit", "-q", "-m", "imported")
        if bytecode:
            subprocess.run([args.python, "-m", "compileall", "-q", directory], check=True, timeout=300)
        target = Target(args, directory, names, record, attach=bytecode)
        try:
            first, steady = [], []
            for index, name in enumerate(names):
                path = os.path.join(directory, name + ".py")
                first.append(reload(args, target, path, 1000 + index))
                steady.append(reload(args, target, path, 2000 + index))
            return (first[1:], steady[1:]) if shared_text else (first, steady)
        finally:
            target.stop()
    finally:
        if saved_cache is None:
            del os.environ["PYHOT_CACHE_DIR"]
        else:
            os.environ["PYHOT_CACHE_DIR"] = saved_cache
        shutil.rmtree(directory, ignore_errors=True)


def summary(samples):
    ends = [s[0] for s in samples]
    stalls = [s[1] for s in samples]
    return "median %.1f ms, max %.1f ms; longest stall median %.1f ms, max %.1f ms" % (
        statistics.median(ends), max(ends), statistics.median(stalls), max(stalls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyhot", default=os.path.join(os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build")),
                                                        "pyhot"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--functions", type=int, default=gen_module.N_FUNCTIONS)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cases = (("import record (pyhot run)", True, False, False, False),
             ("proven from git (no import record)", False, True, False, False),
             ("git, a text an earlier first reload parsed", False, True, False, True),
             ("import record, likewise", True, False, False, True),
             ("proven by the .pyc (attached, no git)", True, False, True, False),
             ("no baseline (compared with live code)", False, False, False, False))
    for label, record, committed, bytecode, shared_text in cases:
        first, steady = run_case(args, record, committed, bytecode, shared_text)
        print("%-40s first:  %s" % (label, summary(first)))
        print("%-40s steady: %s" % ("", summary(steady)))
        print("%-40s first / steady end to end (medians): %.2fx" % (
            "", statistics.median(s[0] for s in first) / statistics.median(s[0] for s in steady)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
