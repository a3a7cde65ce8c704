#!/usr/bin/env python3
"""Cost of `pyhot watch` per watched call, side by side in one run: a small
function called in a loop, bare; with the agent's watch probe swapped in
(the agent's own path, the request `pyhot watch MODULE handler` sends, built
by hand; every call makes an event in the ring, which nobody reads here, so
the ring drops the oldest as a slow pyhot would); with a --filter over the
arguments that is never true (decided when the call starts); a function of
the same module that is not watched; the watched one after removal.

    bench/watch/bench_watch.py [--calls 200000] [--repeat 5]
    (run it with each interpreter: python3.8 ... python3.13)

Prints ns per call (best of --repeat) and the difference to the bare call."""
import argparse
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "loader", "agent"))
import pyhot_agent  # noqa: E402

MODULE = '''
def handler(item, quantity):
    return quantity * 2


def untouched(item, quantity):
    return quantity * 2


def loop(function, calls):
    for i in range(calls):
        function("apple", i)
'''


def watch(module, path, condition=""):
    """What `pyhot watch PID MODULE handler [--filter ...]` sends."""
    class Agent:
        dispatch_lock = threading.Lock()
    registry = pyhot_agent._Instrumentations(Agent())
    plain = "def handler(item, quantity):\n    return quantity * 2\n"
    instrumented = "def handler(item, quantity):\n with '__pyhot_probe_bench:1':\n    return quantity * 2\n"
    reply = registry.op_instrument({"kind": "watch", "lease": 3600, "marker": "__pyhot_probe_bench",
                                    "watch": {"filter": condition},
                                    "modules": [{"module": module.__name__, "file": path, "units": [
                                        {"qualname": "handler", "name": "handler", "kind": "function",
                                         "scopes": [], "source": plain, "first_line": 2,
                                         "instrumented": instrumented, "lines": [2, 3, 3]}]}]})
    return registry, reply["session"]


def per_call(module, function, calls, repeat):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        module.loop(function, calls)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best / calls * 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="pyhot-bench-watch-")
    path = os.path.join(directory, "bench_target.py")
    with open(path, "w") as handle:
        handle.write(MODULE)
    sys.path.insert(0, directory)
    import bench_target as module
    original = module.handler.__code__
    rows = [("bare", per_call(module, module.handler, options.calls, options.repeat))]
    registry, session = watch(module, path)
    rows.append(("pyhot watch (an event per call)",
                 per_call(module, module.handler, options.calls, options.repeat)))
    rows.append(("pyhot watch, a function not watched",
                 per_call(module, module.untouched, options.calls, options.repeat)))
    events = registry.op_events({"session": session, "cursor": 0})
    assert events["matched"] == options.calls * options.repeat, events["matched"]
    assert events["events"][0]["return"] == str(2 * (options.calls - 1000)), events["events"][0]
    registry.op_remove({"session": session})
    assert module.handler.__code__ is original
    registry, session = watch(module, path, "quantity < 0")
    rows.append(("pyhot watch --filter 'quantity < 0'",
                 per_call(module, module.handler, options.calls, options.repeat)))
    registry.op_remove({"session": session})
    rows.append(("after removal", per_call(module, module.handler, options.calls, options.repeat)))
    bare = rows[0][1]
    print("Python %s, %d calls x %d (best)" % (sys.version.split()[0], options.calls, options.repeat))
    for name, value in rows:
        print("  %-40s %8.1f ns/call  %+8.1f ns" % (name, value, value - bare))


if __name__ == "__main__":
    main()
