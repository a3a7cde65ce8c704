#!/usr/bin/env python3
"""Instructions one steady `pyhot reload PID FILE.py` executes (the CLI
process, counted by callgrind: independent of the machine's load), and its
wall-clock end to end, against the module's size (bench/README.md,
"Reload cost against module size").

    bench/reload/count_instructions.py [--pyhot build/pyhot] [--functions 200,2000,20000] [--runs 3] [--timed-runs 9]

Per size: a target started with `pyhot run` imports a generated module
(gen_module.py); two whole-file reloads are made unmeasured (the second writes the parsed cache entry the steady state
reads), then each measured reload changes the middle function's constant.
The parsed cache is a fresh directory per size."""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_module  # noqa: E402

# The target: imports the module and sleeps (no ticker: nothing else competes for its GIL).
# Its agent waits up to PYHOT_AGENT_TIMEOUT for a request: a CLI under callgrind is slow to send one.
TARGET = "import sys, time; sys.path.insert(0, sys.argv[1]); import %s; print('ready', flush=True); time.sleep(3600)"


class Target:
    def __init__(self, args, directory, module, env):
        self.log_path = os.path.join(directory, "target.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([args.pyhot, "run", "--", args.python, "-c", TARGET % module, directory],
                                        env=dict(env, PYTHONDONTWRITEBYTECODE="1", PYHOT_AGENT_TIMEOUT="600"), stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid
        deadline = time.monotonic() + 300
        while "ready" not in open(self.log_path).read() or subprocess.run(
                [args.pyhot, "history", str(self.pid)], capture_output=True, env=env).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("target did not start:\n" + open(self.log_path).read())
            time.sleep(0.1)

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()


def reload(args, env, pid, path, wrap=(), attempts=1, whole_file=False):
    command = list(wrap) + [args.pyhot, "reload", str(pid)]
    if args.case == "func" and not whole_file:
        command += [args.module, args.function]
    else:
        command += [path]
    for _ in range(attempts):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode == 0:
            break
    if result.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s%s" % (" ".join(command), result.returncode, result.stdout,
                                                    result.stderr))
    return result.stdout


def callgrind_total(out_file):
    with open(out_file) as handle:
        for line in handle:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit("no total in " + out_file)


def measure(args, functions):
    with tempfile.TemporaryDirectory(prefix="pyhot-count-") as directory:
        module = "counted_%d" % functions
        args.module, args.function = module, gen_module.target_func(functions)
        path = os.path.join(directory, module + ".py")
        text = gen_module.generate(functions)
        with open(path, "w") as handle:
            handle.write(text)
        env = dict(os.environ, PYHOT_CACHE_DIR=os.path.join(directory, "cache"))
        target = Target(args, directory, module, env)
        value = 0
        try:
            def edit():
                nonlocal value
                value += 1
                with open(path, "w") as handle:
                    handle.write(gen_module.edit(text, value))
            for _ in range(2):
                edit()
                # The first reload of a large module can miss the CLI's deadline on a loaded machine.
                reload(args, env, target.pid, path, attempts=3, whole_file=True)
            counts = []
            for run in range(args.runs):
                edit()
                out = os.path.join(args.callgrind_dir or directory, "callgrind.%d.%d" % (functions, run))
                reload(args, env, target.pid, path, ("valgrind", "--tool=callgrind", "--callgrind-out-file=" + out))
                counts.append(callgrind_total(out))
            times = []
            for _ in range(args.timed_runs):
                edit()
                start = time.monotonic()
                reload(args, env, target.pid, path)
                times.append((time.monotonic() - start) * 1000)
        finally:
            target.stop()
    return statistics.median(counts), statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--pyhot", default=os.path.join(os.environ.get("PYHOT_BUILD_DIR", os.path.join(
        os.path.dirname(os.path.dirname(HERE)), "build")), "pyhot"))
    parser.add_argument("--functions", default="200,2000,20000")
    parser.add_argument("--runs", type=int, default=3, help="callgrind runs per size")
    parser.add_argument("--timed-runs", type=int, default=9, help="wall-clock runs per size")
    parser.add_argument("--case", choices=("file", "func"), default="file",
                        help="measure `reload PID FILE.py` or `reload PID MODULE FUNC`")
    parser.add_argument("--callgrind-dir", help="keep the callgrind profiles there (callgrind_annotate reads them)")
    args = parser.parse_args()
    args.pyhot = os.path.abspath(args.pyhot)
    if args.callgrind_dir:
        os.makedirs(args.callgrind_dir, exist_ok=True)
    with open("/proc/loadavg") as handle:
        print("load average:", " ".join(handle.read().split()[:3]))
    print("| definitions | CLI instructions, median | end to end, median |")
    print("|---|---|---|")
    for functions in (int(n) for n in args.functions.split(",")):
        instructions, wall = measure(args, functions)
        print("| %s | %.1f M | %.1f ms |" % ("{:,}".format(functions), instructions / 1e6, wall), flush=True)


if __name__ == "__main__":
    main()
