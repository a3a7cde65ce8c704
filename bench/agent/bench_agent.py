"""The agent's cost to its target (issue 9): a benchmark, not a test.

    bench/agent/bench_agent.py memory  [--python P] [--functions 500] [--patches 160] [--every 10]
    bench/agent/bench_agent.py idle    [--python P] [--clients 50] [--seconds 5]
    bench/agent/bench_agent.py busy    [--python P] [--requests 60]

memory: a target under `pyhot run` imports a module of --functions functions;
  each reload changes every one of them (a new history entry that keeps all
  the replaced code objects alive). VmRSS of the target after each --every
  patches, so the rows after the history's cap (100 patches) show what a
  patch costs there: the slope should be ~0. The soak of issue 9 is
  `memory --functions 20 --patches 10000 --every 500`.
idle:  the target's main thread ticks every 1 ms and records how late each
  tick is; measured for --seconds with no client, then with --clients idle
  connections open to the agent (connected, nothing sent). Also the time a
  `ping` on one more connection takes meanwhile.
busy:  two threads spin in pure Python (CPU-bound, the GIL always wanted);
  a client connects and sends `ping` --requests times, one connection each,
  and measures connect-to-reply. The agent must get the interpreter promptly.
  Interleaved with each, the same exchange with a bare Python thread of the
  target that accepts and answers at once: the floor any Python-level
  server meets, since its thread must take the GIL once before it runs.
reload: the wall-clock time of `pyhot reload PID big.py` (a 51-function
  module, one function's body changed each time), --requests reloads
  against an idle target, then as many against one whose two threads spin:
  what contention adds to a whole reload, not only to a ping.
"""
import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYHOT = os.path.join(os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build")), "pyhot")

TARGET = r'''
import json, os, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
mode = sys.argv[1]
if mode in ("busy", "reload-busy"):
    def spin():
        while True:
            pass
    for _ in range(2):
        threading.Thread(target=spin, daemon=True).start()
if mode == "busy":
    # The floor: a bare Python thread that accepts and answers at once, in
    # the same process, competing for the same GIL.
    import socket
    floor = socket.socket(socket.AF_UNIX)
    floor.bind(sys.argv[2])
    floor.listen(16)
    def answer():
        while True:
            conn, _ = floor.accept()
            header = conn.recv(4)
            body = conn.recv(65536)
            conn.sendall(header[:0] + len(b"{}").to_bytes(4, "big") + b"{}")
            conn.close()
    threading.Thread(target=answer, daemon=True).start()
import big
print("ready", os.getpid(), flush=True)
if mode == "idle":
    # One line per second of ticks: the worst and the p99 lateness of a 1 ms tick.
    while True:
        late = []
        end = time.monotonic() + 1
        while time.monotonic() < end:
            due = time.monotonic() + 0.001
            time.sleep(0.001)
            late.append(time.monotonic() - due)
        late.sort()
        print("late", late[-1], late[int(len(late) * 0.99)], flush=True)
else:
    while True:
        time.sleep(1)
'''


def module(functions, version):
    return "".join("def f%d(x):\n    return x + %d\n\n" % (i, version) for i in range(functions))


def start(python, directory, mode, functions, *extra):
    with open(os.path.join(directory, "big.py"), "w") as f:
        f.write(module(functions, 0))
    with open(os.path.join(directory, "target.py"), "w") as f:
        f.write(TARGET)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYHOT_AGENT_SOCKET_DIR", None)
    proc = subprocess.Popen([PYHOT, "run", "--", python, os.path.join(directory, "target.py"), mode] + list(extra),
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    line = proc.stdout.readline().split()
    assert line and line[0] == "ready", line
    deadline = time.monotonic() + 20
    while subprocess.run([PYHOT, "history", str(proc.pid)], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "no agent"
        time.sleep(0.05)
    return proc


def socket_path(pid):
    # Where pyhot found the agent: the one <pid>.sock among the candidates.
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    for directory in ([runtime + "/pyhot"] if runtime else []) + ["/tmp/pyhot-%d" % os.getuid()]:
        path = os.path.join(directory, "%d.sock" % pid)
        if os.path.exists(path):
            return path
    raise SystemExit("no socket for %d" % pid)


def ping(path, sock=None):
    started = time.monotonic()
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        sock.connect(path)
    body = json.dumps({"v": 1, "id": 1, "op": "ping"}).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)
    header = b""
    while len(header) < 4:
        header += sock.recv(4 - len(header))
    size = struct.unpack(">I", header)[0]
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    if own:
        sock.close()
    return time.monotonic() - started


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def memory(args, directory):
    proc = start(args.python, directory, "memory", args.functions)
    try:
        rows = [(0, rss_mb(proc.pid))]
        started = time.monotonic()
        for patch in range(1, args.patches + 1):
            with open(os.path.join(directory, "big.py"), "w") as f:
                f.write(module(args.functions, patch))
            done = subprocess.run([PYHOT, "reload", str(proc.pid), os.path.join(directory, "big.py")],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
            if patch % args.every == 0:
                rows.append((patch, rss_mb(proc.pid)))
                print("%7d  %8.1f MB  %.0f s" % (patch, rows[-1][1], time.monotonic() - started),
                      file=sys.stderr, flush=True)
        history = subprocess.run([PYHOT, "history", str(proc.pid), "--json"], capture_output=True, text=True)
        kept = len(json.loads(history.stdout).get("patches", []))
        print("patches  VmRSS MB")
        for patch, mb in rows:
            print("%7d  %8.1f" % (patch, mb))
        after_cap = [(p, mb) for p, mb in rows if p > 100]
        if len(after_cap) >= 2:
            slope = (after_cap[-1][1] - after_cap[0][1]) / (after_cap[-1][0] - after_cap[0][0])
            print("history keeps %d patches; after the cap: %.3f MB per patch" % (kept, slope))
        else:
            print("history keeps %d patches" % kept)
    finally:
        os.killpg(proc.pid, 9)


def read_lateness(proc, seconds):
    worst = p99 = 0.0
    for _ in range(int(seconds)):
        fields = proc.stdout.readline().split()
        worst, p99 = max(worst, float(fields[1])), max(p99, float(fields[2]))
    return worst * 1000, p99 * 1000


def idle(args, directory):
    proc = start(args.python, directory, "idle", 10)
    try:
        path = socket_path(proc.pid)
        proc.stdout.readline()  # a second that may include the start
        quiet = read_lateness(proc, args.seconds)
        clients = []
        for _ in range(args.clients):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            clients.append(sock)
        proc.stdout.readline()  # the second the connections were made in
        loaded = read_lateness(proc, args.seconds)
        pings = [ping(path) * 1000 for _ in range(20)]
        print("1 ms tick lateness, worst / p99 of each second's: no client %.2f / %.2f ms; "
              "%d idle clients %.2f / %.2f ms" % (quiet + (args.clients,) + loaded))
        print("ping on another connection meanwhile: median %.2f ms, max %.2f ms" % (
            statistics.median(pings), max(pings)))
        for sock in clients:
            sock.close()
    finally:
        os.killpg(proc.pid, 9)


def busy(args, directory):
    floor_path = os.path.join(directory, "floor.sock")
    proc = start(args.python, directory, "busy", 10, floor_path)
    try:
        path = socket_path(proc.pid)
        agent, floor = [], []
        for _ in range(args.requests):
            # Interleaved, so both meet the same load; apart by more than the
            # agent keeps its short interval after a request (ACCEPT_WAIT),
            # which would otherwise speed up the floor's exchange too.
            agent.append(ping(path) * 1000)
            time.sleep(0.03)
            floor.append(ping(floor_path) * 1000)
            time.sleep(0.03)
        for name, times in (("agent ping", agent), ("bare Python thread (floor)", floor)):
            times.sort()
            print("%s, connect to reply, two busy threads: median %.1f ms, p90 %.1f ms, max %.1f ms (%d)" % (
                name, statistics.median(times), times[int(len(times) * 0.9)], times[-1], len(times)))
    finally:
        os.killpg(proc.pid, 9)


def reload_times(args, directory, mode):
    proc = start(args.python, directory, mode, 51)
    times = []
    try:
        for edit in range(1, args.requests + 1):
            path = os.path.join(directory, "big.py")
            text = module(51, 0).replace("def f0(x):\n    return x + 0\n", "def f0(x):\n    return x + %d\n" % edit)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            started = time.monotonic()
            done = subprocess.run([PYHOT, "reload", str(proc.pid), path], capture_output=True, text=True)
            times.append((time.monotonic() - started) * 1000)
            assert done.returncode == 0, done.stdout + done.stderr
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, 9)
    return sorted(times)


def reload_under_contention(args, directory):
    idle_times = reload_times(args, directory, "reload-idle")
    busy_times = reload_times(args, directory, "reload-busy")
    for name, times in (("idle target", idle_times), ("two busy threads", busy_times)):
        print("reload end to end, %s: median %.1f ms, p90 %.1f ms, max %.1f ms (%d)" % (
            name, statistics.median(times), times[int(len(times) * 0.9)], times[-1], len(times)))
    print("busy minus idle, medians: %+.1f ms" % (statistics.median(busy_times) - statistics.median(idle_times)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("memory", "idle", "busy", "reload"))
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--patches", type=int, default=160)
    parser.add_argument("--every", type=int, default=10, help="a VmRSS row after each this many patches")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyhot-bench-agent-") as directory:
        {"memory": memory, "idle": idle, "busy": busy, "reload": reload_under_contention}[args.mode](args, directory)


if __name__ == "__main__":
    main()
