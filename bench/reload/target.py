"""The benchmark's target program (started by bench_reload.py under
`pyhot run`). It imports the generated modules, then:

- main thread: the *ticker*. While armed it loops on time.monotonic() in pure
  Python and records every gap longer than --gap-threshold between two
  consecutive ticks: a gap is a time this thread could not run, i.e. another
  thread held the GIL (or the OS descheduled it). Idle otherwise. In the
  default `yield` mode each tick also calls select.select([], [], [], 0),
  which releases the GIL and takes it back (a thread doing short I/O);
  `spin` never releases it (a CPU-bound thread). With each gap it records how
  long it, and the other threads of the process, waited on the OS run queue
  meanwhile (schedstat field 2), so that time the OS took the CPU away from
  the ticker or from the GIL holder is not blamed on the GIL.
- a control thread: a line-JSON server on 127.0.0.1 (one request per
  connection) to arm/disarm the ticker, call functions, and run the in-target
  stand-ins of the other tools' reloads (standins.py) -- in this thread, as
  those tools run theirs in their own server/watcher thread.

Prints `port N` when ready."""
import argparse
import importlib
import json
import os
import select
import socketserver
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--modules", required=True)
    parser.add_argument("--switch-interval", type=float, default=5e-5)
    parser.add_argument("--gap-threshold", type=float, default=2e-5)
    parser.add_argument("--ticker", choices=("yield", "spin"), default="yield")
    args = parser.parse_args()
    sys.path.insert(0, args.dir)
    sys.path.insert(0, HERE)
    import standins

    modules, sources = {}, {}
    for name in args.modules.split(","):
        modules[name] = importlib.import_module(name)
        with open(modules[name].__file__, encoding="utf-8") as handle:
            sources[name] = handle.read()   # jurigged caches the source at import
    standins.JuriggedModel.collect_all()   # codefind's registry, built at start

    armed = [False]
    arm_event = threading.Event()
    done_event = threading.Event()
    started_event = threading.Event()
    result = {}
    stopping = [False]

    def op(request):
        kind = request["op"]
        if kind == "arm":
            done_event.clear()
            started_event.clear()
            armed[0] = True
            arm_event.set()
            started_event.wait(30)
            return {}
        if kind == "disarm":
            armed[0] = False
            done_event.wait(30)
            return dict(result)
        if kind == "call":
            fn = getattr(modules[request["module"]], request["func"])
            return {"value": fn(*request.get("args", []))}
        if kind in ("pfp", "jurigged"):
            start = time.monotonic()
            if kind == "pfp":
                text = standins.pfp_reload(request["module"], None, request["func"])
            else:
                text = standins.jurigged_reload(request["module"], sources, request.get("first", False))
            return {"result": text, "inside": time.monotonic() - start}
        if kind == "stop":
            stopping[0] = True
            arm_event.set()
            return {}
        raise ValueError("unknown op %r" % kind)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline()
            try:
                reply = {"ok": True}
                reply.update(op(json.loads(line)))
            except Exception as exc:
                reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
            self.wfile.write((json.dumps(reply) + "\n").encode())

    socketserver.TCPServer.allow_reuse_address = True
    server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="bench-control", daemon=True).start()
    sys.setswitchinterval(args.switch_interval)
    print("port", server.server_address[1], flush=True)

    threshold = args.gap_threshold
    mono = time.monotonic
    zero = select.select
    try:
        tid = threading.get_native_id()
    except AttributeError:  # Python < 3.8
        tid = None
    def schedstat_fds():
        """{tid: fd} of /proc/self/task/*/schedstat, or {} where unreadable."""
        fds = {}
        try:
            for task in os.listdir("/proc/self/task"):
                fd = os.open("/proc/self/task/%s/schedstat" % task, os.O_RDONLY)
                os.pread(fd, 128, 0)
                fds[int(task)] = fd
        except (OSError, ValueError):
            for fd in fds.values():
                os.close(fd)
            return {}
        return fds

    def run_delays(fds):
        """Run-queue wait so far (s): (this thread's, each other thread's)."""
        own, others = 0.0, {}
        for task, fd in fds.items():
            try:
                value = int(os.pread(fd, 128, 0).split()[1]) * 1e-9
            except OSError:
                continue
            if task == tid:
                own = value
            else:
                others[task] = value
        return own, others
    while not stopping[0]:
        if not arm_event.wait(0.5):
            continue
        arm_event.clear()
        if stopping[0]:
            break
        gaps = []
        append = gaps.append
        ticks = 0
        spin = args.ticker == "spin"
        fds = schedstat_fds()
        own, others = run_delays(fds)
        start = last = mono()
        started_event.set()
        while armed[0]:
            now = mono()
            if now - last > threshold:
                own_now, others_now = run_delays(fds)
                # Time the OS kept runnable threads off the CPU since the last
                # gap: this thread's, and the most of any other thread's (the
                # GIL holder preempted while holding it).
                other = max([v - others.get(t, v) for t, v in others_now.items()] or [0.0])
                append((last, now, own_now - own, other))
                own, others = own_now, others_now
            last = now
            ticks += 1
            if not spin:
                zero((), (), (), 0)
        for fd in fds.values():
            os.close(fd)
        result.clear()
        result.update(start=start, end=last, ticks=ticks, gaps=gaps)
        done_event.set()
    server.shutdown()


if __name__ == "__main__":
    main()
