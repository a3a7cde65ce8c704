"""`reload --tree` over a pre-fork server of 16 workers, end to end, and the
longest stall each worker saw, against a single-process reload and the
first attach of one worker.

    /usr/bin/python3 bench/tree/bench_tree.py [--workers 16] [--rounds 5] [--python PATH]

The server is the standard-library pre-fork server of the integration
tests (the master imports the module, forks the workers). Every worker's
main thread ticks every 0.5 ms and records each gap between two ticks
longer than 2 ms with its wall-clock time (CLOCK_REALTIME, the same in every
process); a stall of a command is the longest gap that overlaps it.

Measured, per round (fresh server each round):
  cold tree    the first `reload --tree`: attaches to the master and every worker
  warm tree    a second `reload --tree` (every agent listening)
  single       `reload WORKER` of one worker, warm
  attach       the first command on a fresh worker (`history WORKER`: attach + one op)
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build"))
PYHOT = os.path.join(BUILD, "pyhot")

SERVER = r'''
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import work
WORKERS = int(sys.argv[1])

def tick_forever():
    gaps = []
    last = time.time()
    published = last
    while True:
        time.sleep(0.0005)
        now = time.time()
        if now - last > 0.002:
            gaps.append((last, now))
        last = now
        work.answer()
        if now - published > 0.05:
            with open("gaps-%d.tmp" % os.getpid(), "w") as handle:
                handle.write("\n".join("%.6f %.6f" % g for g in gaps[-200:]))
            os.replace("gaps-%d.tmp" % os.getpid(), "gaps-%d.txt" % os.getpid())
            published = now

children = []
for _ in range(WORKERS):
    pid = os.fork()
    if pid == 0:
        try:
            tick_forever()
        finally:
            os._exit(0)
    children.append(pid)
with open("children.tmp", "w") as handle:
    handle.write(" ".join(map(str, children)))
os.replace("children.tmp", "children.txt")
while True:
    time.sleep(1)
'''


def write(path, text):
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def work_text(value):
    return "def answer():\n    return %d\n\n" % value + "".join(
        "def helper_%d(x):\n    return x + %d\n\n" % (i, i) for i in range(50))


def timed(*args):
    started = time.time()
    done = subprocess.run([PYHOT] + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit("pyhot %s failed:\n%s%s" % (" ".join(map(str, args)), done.stdout, done.stderr))
    return started, ended


def stalls(directory, pids, window):
    """The longest gap overlapping the window, per worker (ms)."""
    time.sleep(0.2)  # the workers publish every 50 ms
    out = {}
    for pid in pids:
        longest = 0.0
        try:
            with open(os.path.join(directory, "gaps-%d.txt" % pid)) as handle:
                for line in handle:
                    start, end = map(float, line.split())
                    if end >= window[0] and start <= window[1]:
                        longest = max(longest, end - start)
        except OSError:
            pass
        out[pid] = longest * 1000
    return out


def one_round(python, workers, directory):
    write(os.path.join(directory, "work.py"), work_text(1))
    write(os.path.join(directory, "server.py"), SERVER)
    for name in os.listdir(directory):
        if name.startswith("gaps-") or name == "children.txt":
            os.unlink(os.path.join(directory, name))
    server = subprocess.Popen([python, "server.py", str(workers)], cwd=directory, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = os.path.join(directory, "children.txt")
        deadline = time.time() + 30
        while not os.path.exists(path):
            if time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.01)
        with open(path) as handle:
            pids = [int(p) for p in handle.read().split()]
        time.sleep(0.5)
        result = {}
        write(os.path.join(directory, "work.py"), work_text(2))
        window = timed("reload", server.pid, os.path.join(directory, "work.py"), "--tree")
        result["cold tree"] = (window[1] - window[0]) * 1000, stalls(directory, pids, window)
        write(os.path.join(directory, "work.py"), work_text(3))
        window = timed("reload", server.pid, os.path.join(directory, "work.py"), "--tree")
        result["warm tree"] = (window[1] - window[0]) * 1000, stalls(directory, pids, window)
        write(os.path.join(directory, "work.py"), work_text(4))
        window = timed("reload", pids[0], os.path.join(directory, "work.py"))
        result["single"] = (window[1] - window[0]) * 1000, stalls(directory, pids[:1], window)
        return result
    finally:
        os.killpg(server.pid, 9)
        server.wait(10)


def first_attach(python, directory):
    """A fresh worker-like process: the first command attaches."""
    # The workers' loop, in a process of its own (no fork).
    write(os.path.join(directory, "lone.py"), SERVER.split("children = []")[0] +
          "print('ready', flush=True)\ntick_forever()\n")
    lone = subprocess.Popen([python, "lone.py", "0"], cwd=directory, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert lone.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        window = timed("history", lone.pid)
        return (window[1] - window[0]) * 1000, stalls(directory, [lone.pid], window)[lone.pid]
    finally:
        os.killpg(lone.pid, 9)
        lone.wait(10)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="pyhot-bench-tree-")
    try:
        rounds = [one_round(options.python, options.workers, directory) for _ in range(options.rounds)]
        attaches = [first_attach(options.python, directory) for _ in range(options.rounds)]
    finally:
        shutil.rmtree(directory, True)
    print("%d workers, %d rounds, %s" % (options.workers, options.rounds, options.python))
    print("%-10s %12s %22s %22s" % ("", "end to end", "longest stall/worker", "median stall/worker"))
    for name in ("cold tree", "warm tree", "single"):
        totals = [r[name][0] for r in rounds]
        worst = [max(r[name][1].values()) for r in rounds]
        typical = [statistics.median(r[name][1].values()) for r in rounds]
        print("%-10s %9.0f ms %19.1f ms %19.1f ms" % (name, statistics.median(totals), statistics.median(worst),
                                                      statistics.median(typical)))
    print("%-10s %9.0f ms %19.1f ms   (first command on a fresh process)"
          % ("attach", statistics.median(a[0] for a in attaches), statistics.median(a[1] for a in attaches)))
    single = statistics.median(r["single"][0] for r in rounds)
    attach = statistics.median(a[0] for a in attaches)
    cold = statistics.median(r["cold tree"][0] for r in rounds)
    print("cold tree / (single + first attach of each of %d processes) = %.2f"
          % (options.workers + 1, cold / (single + (options.workers + 1) * attach)))
    print("warm tree / (single x %d processes) = %.2f"
          % (options.workers + 1, statistics.median(r["warm tree"][0] for r in rounds) / ((options.workers + 1) * single)))


if __name__ == "__main__":
    main()
