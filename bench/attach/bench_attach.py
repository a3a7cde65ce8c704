"""First-attach latency: pyhot's injector vs gdb batch (pyrasite-style).

    /usr/bin/python3 bench/attach/bench_attach.py [--runs N] [--python PATH ...]
        [--against-probe OTHER_BUILD/loader/attach/pyhot_inject_probe]

For each interpreter and target state, starts a fresh target per run and
measures from the injector's command start to the bootstrap's marker file
being visible. Both injectors get the same bootstrap, in the same run,
alternating. Needs pyhot_inject_probe under $PYHOT_BUILD_DIR (default build)
and gdb on PATH; with --against-probe, another build's injector takes gdb's
column (to compare two versions of pyhot's injector).
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PYHOT_BUILD_DIR", "build")
PROBE = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD),
                     "loader", "attach", "pyhot_inject_probe")

TARGETS = {
    "busy": "import time\nprint('ready', flush=True)\nwhile True:\n    sum(range(100))\n",
    "sleep": "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(3600)\n",
}


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def pyhot_command(pid, bootstrap, marker):
    return [PROBE, "--wait-file", marker, str(pid), bootstrap]


def gdb_command(pid, bootstrap, marker):
    return ["gdb", "-p", str(pid), "-batch", "-nx",
            "-ex", "call (int)PyGILState_Ensure()",
            "-ex", "call (int)PyRun_SimpleString(%s)" % c_string(bootstrap),
            "-ex", "call (void)PyGILState_Release($1)"]


def measure(python, state, command, tmp, index):
    script = os.path.join(tmp, "target_%s.py" % state)
    with open(script, "w") as f:
        f.write(TARGETS[state])
    target = subprocess.Popen([python, script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert target.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        marker = os.path.join(tmp, "marker_%d" % index)
        bootstrap = "open(%r, 'w').close()" % marker
        started = time.perf_counter()
        injector = subprocess.Popen(command(target.pid, bootstrap, marker),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(marker):
            if time.perf_counter() - started > 60:
                injector.kill()
                return None
            time.sleep(0.0001)
        elapsed = time.perf_counter() - started
        injector.wait(timeout=60)
        return elapsed
    finally:
        target.kill()
        target.wait()


def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", action="append")
    parser.add_argument("--against-probe", help="another pyhot_inject_probe, measured instead of gdb")
    args = parser.parse_args()
    if not os.path.exists(PROBE):
        sys.exit("build pyhot_inject_probe first: %s" % PROBE)
    other, other_name = gdb_command, "gdb"
    if args.against_probe:
        other_name = "other probe"

        def other(pid, bootstrap, marker):
            return [args.against_probe, "--wait-file", marker, str(pid), bootstrap]
    elif shutil.which("gdb") is None:
        sys.exit("gdb is not installed")
    pythons = args.python or ["/usr/bin/python3"] + sorted(glob.glob("/root/.pyenv/versions/3.1[23]*/bin/python3.1[23]"))
    tmp = tempfile.mkdtemp(prefix="pyhot_bench_")
    print("| python | target | pyhot median | pyhot p90 | %s median | %s p90 | %s/pyhot (median) |"
          % (other_name, other_name, other_name))
    print("|---|---|---|---|---|---|---|")
    try:
        index = 0
        for python in pythons:
            for state in TARGETS:
                times = {"pyhot": [], "gdb": []}
                for _ in range(args.runs):
                    for name, command in (("pyhot", pyhot_command), ("gdb", other)):
                        index += 1
                        t = measure(python, state, command, tmp, index)
                        if t is not None:
                            times[name].append(t)
                pm, gm = statistics.median(times["pyhot"]), statistics.median(times["gdb"])
                print("| %s | %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.2fx |" % (
                    python, state, pm * 1e3, p90(times["pyhot"]) * 1e3, gm * 1e3,
                    p90(times["gdb"]) * 1e3, gm / pm), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
