#!/usr/bin/env python3
"""Reload benchmarks of issue 3: how long the target's interpreter is blocked
by a one-function reload in a 2,000-function module, and `pyhot reload` end
to end; next to in-target stand-ins of PyFlightProfiler's and jurigged's
reload on the same module, in the same run. See bench/README.md, `## reload`.

    /usr/bin/python3 bench/reload/bench_reload.py            # everything
    /usr/bin/python3 bench/reload/bench_reload.py --quick    # fewer runs

Standard library only; loopback only; every process it starts is stopped."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import gen_module  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]


class Target:
    def __init__(self, args, directory, modules):
        self.args = args
        self.log_path = os.path.join(directory, "target.log")
        self.log = open(self.log_path, "w")
        command = [args.pyhot, "run", "--", args.python, os.path.join(HERE, "target.py"),
                   "--dir", directory, "--modules", ",".join(modules),
                   "--switch-interval", str(args.switch_interval),
                   "--gap-threshold", str(args.gap_threshold), "--ticker", args.ticker]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.process = subprocess.Popen(command, cwd=directory, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid
        self.port = None
        deadline = time.monotonic() + 120
        while self.port is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("target did not start:\n" + open(self.log_path).read())
            for line in open(self.log_path).read().splitlines():
                if line.startswith("port "):
                    self.port = int(line.split()[1])
            time.sleep(0.05)
        while subprocess.run([args.pyhot, "history", str(self.pid)], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not answer in the target")
            time.sleep(0.05)

    def request(self, **message):
        with socket.create_connection(("127.0.0.1", self.port), timeout=600) as conn:
            conn.sendall((json.dumps(message) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        if not reply.get("ok"):
            raise RuntimeError("target: %s" % reply.get("error"))
        return reply

    def stop(self):
        if self.process.poll() is None:
            try:
                self.request(op="stop")
                self.process.wait(5)
            except Exception:
                pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Bench:
    def __init__(self, args, target, directory):
        self.args = args
        self.target = target
        self.dir = directory
        self.text = gen_module.generate(args.functions)
        self.func = gen_module.target_func(args.functions)
        self.value = 0
        self.results = {}

    def path(self, module):
        return os.path.join(self.dir, module + ".py")

    def edit(self, module):
        """A new value for the target function of `module`; returns the value."""
        self.value += 1
        with open(self.path(module), "w") as handle:
            handle.write(gen_module.edit(self.text, self.value))
        return self.value

    def check(self, module, value):
        got = self.target.request(op="call", module=module, func=self.func, args=[1, 3])["value"]
        if got != gen_module.expected(value):
            raise SystemExit("%s.%s returned %r after the reload, expected %r"
                             % (module, self.func, got, gen_module.expected(value)))

    def window(self, action, armed):
        """Runs action(); with the ticker armed, returns the gaps inside the
        action's own window [t0, t1] too."""
        if armed:
            self.target.request(op="arm")
        t0 = time.monotonic()
        extra = action()
        t1 = time.monotonic()
        sample = {"wall": t1 - t0}
        if extra:
            sample.update(extra)
        if armed:
            ticks = self.target.request(op="disarm")
            raw, gil = [], []
            for a, b, own, other in ticks["gaps"]:
                if b > t0 and a < t1:
                    length = min(b, t1) - max(a, t0)
                    raw.append(length)
                    # Only the ticker's own run-queue wait is subtracted: it
                    # falls inside the gap. The other threads' (`other`, kept
                    # in the samples) may predate the gap, so it is not.
                    gil.append(max(0.0, length - own))
            sample["raw_max_gap"] = max(raw, default=0.0)
            sample["max_gap"] = max(gil, default=0.0)
            sample["stolen"] = sum(gil)
            sample["preempted"] = sum(raw) - sum(gil)
            if ticks["start"] > t0:
                raise SystemExit("the ticker started after the action; a bug of target.py")
        return sample

    def run_case(self, name, module, command, runs, armed, reset=None):
        samples = []
        for _ in range(runs):
            if reset:
                module = reset()
            value = self.edit(module)
            sample = self.window(lambda: command(module), armed)
            self.check(module, value)
            samples.append(sample)
        self.results.setdefault(name, []).extend(samples)
        return samples

    # -- the tools --------------------------------------------------------------

    def pyhot_func(self, module):
        done = subprocess.run([self.args.pyhot, "reload", str(self.target.pid), module, self.func],
                              capture_output=True, text=True)
        if done.returncode != 0 or "Reload is done successfully." not in done.stdout:
            raise SystemExit("pyhot reload failed (%d):\n%s%s" % (done.returncode, done.stdout, done.stderr))

    def pyhot_file(self, module):
        done = subprocess.run([self.args.pyhot, "reload", str(self.target.pid), self.path(module)],
                              capture_output=True, text=True)
        if done.returncode != 0 or self.func not in done.stdout:
            raise SystemExit("pyhot reload FILE failed (%d):\n%s%s" % (done.returncode, done.stdout, done.stderr))

    def client(self, message):
        done = subprocess.run([self.args.python, "-S", "-I", os.path.join(HERE, "client.py"),
                               str(self.target.port), json.dumps(message)], capture_output=True, text=True)
        reply = json.loads(done.stdout)
        if not reply.get("ok"):
            raise SystemExit("stand-in failed: %s" % reply)
        return reply

    def pfp(self, module):
        reply = self.client({"op": "pfp", "module": module, "func": self.func})
        if reply["result"] != "Reload is done successfully.":
            raise SystemExit("pfp stand-in: %s" % reply["result"])
        return {"inside": reply["inside"]}

    def jurigged(self, module, first=False):
        reply = self.client({"op": "jurigged", "module": module, "first": first})
        if reply["result"] != "updated: " + self.func:
            raise SystemExit("jurigged stand-in: %s" % reply["result"])
        return {"inside": reply["inside"]}


def summarize(samples, key):
    values = [s[key] * 1000 for s in samples if key in s]
    if not values:
        return None
    return {"n": len(values), "median": statistics.median(values), "p90": percentile(values, 90),
            "min": min(values), "max": max(values)}


def fmt(stat, what="median"):
    if stat is None:
        return "-"
    value = stat[what]
    return "%.0f" % value if value >= 100 else "%.2f" % value if value < 10 else "%.1f" % value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/usr/bin/python3", help="target interpreter (default %(default)s)")
    parser.add_argument("--pyhot", default=os.path.join(os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build")), "pyhot"))
    parser.add_argument("--functions", type=int, default=gen_module.N_FUNCTIONS)
    parser.add_argument("--runs", type=int, default=50, help="end-to-end runs per pyhot/PFP case")
    parser.add_argument("--blocked-runs", type=int, default=30, help="ticker-armed runs per case")
    parser.add_argument("--first-runs", type=int, default=5, help="first-touch FILE reloads (one module each)")
    parser.add_argument("--jurigged-runs", type=int, default=3, help="runs per jurigged case (each takes seconds)")
    parser.add_argument("--switch-interval", type=float, default=5e-5, help="sys.setswitchinterval in the target")
    parser.add_argument("--gap-threshold", type=float, default=2e-5, help="ticker gaps recorded above this (s)")
    parser.add_argument("--ticker", choices=("yield", "spin"), default="yield",
                        help="yield: the ticker releases the GIL every tick (default); spin: never "
                             "(a CPU-bound thread; see README: the agent can stall for 100 s)")
    parser.add_argument("--quick", action="store_true", help="runs=15, blocked-runs=10, first-runs=2, jurigged-runs=1")
    parser.add_argument("--no-jurigged", action="store_true")
    parser.add_argument("--json", help="write every sample here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.blocked_runs, args.first_runs, args.jurigged_runs = 15, 10, 2, 1
    if not os.access(args.pyhot, os.X_OK):
        raise SystemExit("no pyhot binary at %s (build it, or pass --pyhot / PYHOT_BUILD_DIR)" % args.pyhot)

    directory = tempfile.mkdtemp(prefix="pyhot-bench-reload-")
    text = gen_module.generate(args.functions)
    firsts = ["mod_first_%d" % i for i in range(2 * args.first_runs)]
    modules = ["mod_pyhot", "mod_first_func", "mod_pfp", "mod_jurigged"] + firsts
    for name in modules:
        with open(os.path.join(directory, name + ".py"), "w") as handle:
            handle.write(text)
    python_version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                                    capture_output=True, text=True).stdout.strip()
    print("module: %d functions, %d lines, %d bytes; target %s (Python %s); switch interval %g s; "
          "ticker %s; load average %s"
          % (args.functions, text.count("\n"), len(text.encode()), args.python, python_version,
             args.switch_interval, args.ticker, " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
    target = Target(args, directory, modules)
    bench = Bench(args, target, directory)
    try:
        run(bench, args, firsts)
    finally:
        target.stop()
        shutil.rmtree(directory, ignore_errors=True)
    report(bench, args, python_version)


def run(bench, args, firsts):
    R, B = args.runs, args.blocked_runs
    step = lambda text: print("..", text, flush=True)  # noqa: E731
    step("baseline: ticker armed, nothing else")
    for _ in range(B):
        bench.results.setdefault("baseline", []).append(bench.window(lambda: time.sleep(0.02), True))
    free = iter(firsts)

    step("pyhot MODULE FUNC, first touch (no snapshot)")
    for armed, runs in ((True, B), (False, R)):
        bench.run_case("pyhot func first" + (" armed" if armed else ""), "mod_first_func", bench.pyhot_func, runs, armed)
    step("pyhot FILE, first touch (%d modules)" % len(firsts))
    for armed in (True, False):
        bench.run_case("pyhot file first" + (" armed" if armed else ""), None, bench.pyhot_file,
                       args.first_runs, armed, reset=lambda: next(free))
    step("pyhot steady state (snapshot from one FILE reload)")
    bench.edit("mod_pyhot")
    bench.pyhot_file("mod_pyhot")
    for armed, runs in ((True, B), (False, R)):
        bench.run_case("pyhot func steady" + (" armed" if armed else ""), "mod_pyhot", bench.pyhot_func, runs, armed)
        bench.run_case("pyhot file steady" + (" armed" if armed else ""), "mod_pyhot", bench.pyhot_file, runs, armed)
    step("PyFlightProfiler stand-in")
    for armed, runs in ((True, B), (False, R)):
        bench.run_case("pfp" + (" armed" if armed else ""), "mod_pfp", bench.pfp, runs, armed)
    if not args.no_jurigged:
        step("jurigged stand-in (seconds per run)")
        for armed in (True, False):
            bench.run_case("jurigged first" + (" armed" if armed else ""), "mod_jurigged",
                           lambda m: bench.jurigged(m, first=True), args.jurigged_runs, armed)
            bench.run_case("jurigged steady" + (" armed" if armed else ""), "mod_jurigged",
                           bench.jurigged, args.jurigged_runs, armed)


ROWS = [
    ("pyhot `reload PID MODULE FUNC`, first touch", "pyhot func first"),
    ("pyhot `reload PID FILE.py`, first touch", "pyhot file first"),
    ("pyhot `reload PID MODULE FUNC`, steady state", "pyhot func steady"),
    ("pyhot `reload PID FILE.py`, steady state", "pyhot file steady"),
    ("PyFlightProfiler approach (stand-in)", "pfp"),
    ("jurigged approach (stand-in), first change", "jurigged first"),
    ("jurigged approach (stand-in), steady state", "jurigged steady"),
]


def report(bench, args, python_version):
    res = bench.results
    base = res.get("baseline", [])
    base_gap = summarize(base, "max_gap")
    base_stolen = summarize(base, "stolen")
    print()
    print("Baseline (ticker armed 20 ms, no reload): longest stall median %s ms, max %s ms; "
          "GIL time taken median %s ms" % (fmt(base_gap), fmt(base_gap, "max"), fmt(base_stolen)))
    print()
    print("| case | blocked: longest stall, median (p90) [min] ms | blocked: GIL time taken, median ms | "
          "end to end, median (p90) ms | in-target (stand-ins) median ms | raw longest gap, median ms | "
          "runs e2e/armed |")
    print("|---|---|---|---|---|---|---|")
    table = {}
    for label, key in ROWS:
        armed = res.get(key + " armed", [])
        idle = res.get(key, [])
        if not armed and not idle:
            continue
        gap, stolen = summarize(armed, "max_gap"), summarize(armed, "stolen")
        e2e, inside = summarize(idle, "wall"), summarize(idle, "inside")
        raw = summarize(armed, "raw_max_gap")
        table[key] = {"max_gap": gap, "stolen": stolen, "e2e": e2e, "inside": inside, "raw_max_gap": raw}
        print("| %s | %s (%s) [%s] | %s | %s (%s) | %s | %s | %d/%d |" % (
            label, fmt(gap), fmt(gap, "p90"), fmt(gap, "min"), fmt(stolen), fmt(e2e), fmt(e2e, "p90"), fmt(inside),
            fmt(raw), len(idle), len(armed)))
    print()
    ref = table.get("pyhot func steady")
    if ref:
        print("Ratios to pyhot `reload PID MODULE FUNC`, steady state (medians):")
        for label, key in ROWS:
            row = table.get(key)
            if not row or key == "pyhot func steady":
                continue
            parts = []
            for what in ("max_gap", "stolen", "e2e"):
                if row[what] and ref[what] and ref[what]["median"] > 0:
                    parts.append("%s x%.1f" % (what, row[what]["median"] / ref[what]["median"]))
            print("  %-45s %s" % (label, ", ".join(parts)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"python": args.python, "python_version": python_version, "functions": args.functions,
                       "switch_interval": args.switch_interval, "samples": res, "summary": table},
                      handle, indent=1)
        print("samples written to", args.json)


if __name__ == "__main__":
    main()
