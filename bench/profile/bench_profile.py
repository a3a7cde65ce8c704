#!/usr/bin/env python3
"""Cost of `pyhot profile` per instrumented call, side by side in one run:
an empty function called in a loop, bare; with the agent's profile probe
swapped in (the code path `pyhot profile` uses in the target: the agent
compiles the instrumented text, maps its lines, binds the probe constant,
swaps __code__); after the probe is removed; under cProfile (everything
profiled); under a sys.setprofile hook written in Python; on 3.12+, with
sys.monitoring local events whose callbacks do nothing (the floor of that
mechanism). Then line mode (`pyhot profile --lines`), per line event of a
loop of simple statements: bare; with the agent's line timing inserted;
after removal; a line_profiler-like timer over sys.settrace in Python; on
3.12+, sys.monitoring LINE events local to the code object, with an empty
callback (floor) and with the same timer as a callback. CPU time of the process (time.process_time), so that other
work on a loaded machine does not count.

    bench/profile/bench_profile.py [--calls 1000000] [--repeat 5]
    (run it with each interpreter: python3.8 ... python3.13)

Prints ns per call (best of --repeat) and the difference to the bare call."""
import argparse
import cProfile
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "loader", "agent"))
import pyhot_agent  # noqa: E402

MODULE = '''
from time import perf_counter

def empty():
    pass


def untouched():
    pass


def timed():
    start = perf_counter()
    try:
        pass
    finally:
        elapsed = perf_counter() - start


def loop(function, calls):
    for _ in range(calls):
        function()


def lines(n):
    total = 0
    for i in range(n):
        a = i
        b = a + 1
        c = b * 2
        d = c - a
        e = d + b
        total += e
        if e > 10:
            total -= 1
        f = total
        g = f
    return total
'''

# Line events of one iteration of `lines`' loop: its for line and the nine
# statements of its body that run (the `if` never taken).
LINES_PER_ITERATION = 10


def instrument(module, path):
    """What `pyhot profile MODULE.empty` sends, for one function."""
    class Agent:
        dispatch_lock = threading.Lock()
    registry = pyhot_agent._Instrumentations(Agent())
    first = MODULE.splitlines().index("def empty():") + 1
    plain = "def empty():\n    pass\n"
    # As patch::instrument_units writes it (ProbeShape::calls).
    probe = "'__pyhot_probe_bench:1'"
    instrumented = ("def empty():\n %s.enter()\n try:\n    pass\n except %s.caught:\n  %s.raised()\n  raise\n"
                    " finally:\n  %s.exit()\n" % (probe, probe, probe, probe))
    reply = registry.op_instrument({"kind": "profile", "lease": 3600, "marker": "__pyhot_probe_bench",
                                    "modules": [{"module": module.__name__, "file": path, "units": [
                                        {"qualname": "empty", "name": "empty", "kind": "function", "scopes": [],
                                         "source": plain, "first_line": first, "instrumented": instrumented,
                                         "lines": [first] + [first + 1] * 8}]}]})
    return registry, reply["session"]


def instrument_lines(module, path):
    """What `pyhot profile --lines MODULE lines` sends: the plain unit, the
    agent inserting the timer's calls."""
    class Agent:
        dispatch_lock = threading.Lock()
    registry = pyhot_agent._Instrumentations(Agent())
    text_lines = MODULE.splitlines()
    first = text_lines.index("def lines(n):") + 1
    last = text_lines.index("    return total", first) + 1
    plain = "\n".join(text_lines[first - 1:last]) + "\n"
    reply = registry.op_instrument({"kind": "lines", "lease": 3600, "marker": "__pyhot_probe_bench",
                                    "modules": [{"module": module.__name__, "file": path, "units": [
                                        {"qualname": "lines", "name": "lines", "kind": "function", "scopes": [],
                                         "source": plain, "first_line": first, "instrumented": plain,
                                         "lines": list(range(first, last + 1)),
                                         "line_timing": [{"scope": first, "probe": 1}]}]}]})
    return registry, reply["session"]


def per_line(module, iterations, repeat, around=None):
    """ns per line event of `lines` (best of repeat)."""
    best = None
    for _ in range(repeat):
        if around:
            around[0]()
        start = time.process_time()
        module.lines(iterations)
        elapsed = time.process_time() - start
        if around:
            around[1]()
        best = elapsed if best is None else min(best, elapsed)
    return best / (iterations * LINES_PER_ITERATION) * 1e9


def settrace_line_timer(code):
    """A line timer as line_profiler counts (time from one line to the next
    in the frame), written in Python over sys.settrace: what one can do
    without pip."""
    hits, times, state = {}, {}, [0, 0.0]

    def local(frame, event, arg, _clock=time.perf_counter):
        now = _clock()
        if event == "line":
            line = frame.f_lineno
            times[state[0]] = times.get(state[0], 0.0) + now - state[1]
            hits[line] = hits.get(line, 0) + 1
            state[0], state[1] = line, now
        elif event == "return":
            times[state[0]] = times.get(state[0], 0.0) + now - state[1]
        return local

    def call(frame, event, arg):
        return local if frame.f_code is code else None
    return call


def line_rows(module, path, options):
    iterations = max(1, options.calls // 10)
    rows = [("bare", per_line(module, iterations, options.repeat))]
    original = module.lines.__code__
    registry, session = instrument_lines(module, path)
    rows.append(("pyhot profile --lines (instrumented)", per_line(module, iterations, options.repeat)))
    data = registry.op_remove({"session": session})["data"]
    counted = dict((line, hits) for line, hits, _ in data["functions"][0]["lines"])
    assert max(counted.values()) == (iterations + 1) * options.repeat, counted
    assert module.lines.__code__ is original
    rows.append(("after removal", per_line(module, iterations, options.repeat)))
    tracer = settrace_line_timer(original)
    rows.append(("sys.settrace line timer (Python)", per_line(
        module, iterations, options.repeat, (lambda: sys.settrace(tracer), lambda: sys.settrace(None)))))
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        tool = next(t for t in range(6) if monitoring.get_tool(t) is None)
        monitoring.use_tool_id(tool, "pyhot bench")
        hits, times, state = {}, {}, [0, 0.0]

        def on_line(code, line, _clock=time.perf_counter):
            now = _clock()
            times[state[0]] = times.get(state[0], 0.0) + now - state[1]
            hits[line] = hits.get(line, 0) + 1
            state[0], state[1] = line, now
        for name, callback in (("sys.monitoring LINE, empty callback (floor)", lambda code, line: None),
                               ("sys.monitoring LINE line timer (Python)", on_line)):
            monitoring.register_callback(tool, monitoring.events.LINE, callback)
            rows.append((name, per_line(
                module, iterations, options.repeat,
                (lambda: monitoring.set_local_events(tool, original, monitoring.events.LINE),
                 lambda: monitoring.set_local_events(tool, original, 0)))))
        monitoring.register_callback(tool, monitoring.events.LINE, None)
        monitoring.free_tool_id(tool)
    return rows


def per_call(module, function, calls, repeat, around=None):
    best = None
    for _ in range(repeat):
        if around:
            around[0]()
        start = time.process_time()
        module.loop(function, calls)
        elapsed = time.process_time() - start
        if around:
            around[1]()
        best = elapsed if best is None else min(best, elapsed)
    return best / calls * 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="pyhot-bench-profile-")
    path = os.path.join(directory, "bench_target.py")
    with open(path, "w") as handle:
        handle.write(MODULE)
    sys.path.insert(0, directory)
    import bench_target as module
    original = module.empty.__code__
    rows = [("bare", per_call(module, module.empty, options.calls, options.repeat)),
            ("try/finally timer in the source", per_call(module, module.timed, options.calls, options.repeat))]
    registry, session = instrument(module, path)
    rows.append(("pyhot profile (instrumented)", per_call(module, module.empty, options.calls, options.repeat)))
    rows.append(("pyhot profile, a function not selected",
                 per_call(module, module.untouched, options.calls, options.repeat)))
    data = registry.op_remove({"session": session})["data"]
    hits = data["threads"][0]["calls"][0]["hits"]
    assert hits == options.calls * options.repeat, hits
    assert module.empty.__code__ is original
    rows.append(("after removal", per_call(module, module.empty, options.calls, options.repeat)))
    profiler = cProfile.Profile()
    rows.append(("cProfile", per_call(module, module.empty, options.calls, options.repeat,
                                      (profiler.enable, profiler.disable))))

    def hook(frame, event, arg):
        return None
    rows.append(("sys.setprofile (Python hook)", per_call(module, module.empty, options.calls, options.repeat,
                                                          (lambda: sys.setprofile(hook), lambda: sys.setprofile(None)))))
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        # The floor of the 3.12+ alternative: local PY_START and PY_RETURN
        # events on the one code object, callbacks that do nothing.
        tool = next(t for t in range(6) if monitoring.get_tool(t) is None)
        monitoring.use_tool_id(tool, "pyhot bench")
        monitoring.register_callback(tool, monitoring.events.PY_START, lambda code, offset: None)
        monitoring.register_callback(tool, monitoring.events.PY_RETURN, lambda code, offset, value: None)
        events = monitoring.events.PY_START | monitoring.events.PY_RETURN
        rows.append(("sys.monitoring, empty callbacks (floor)", per_call(
            module, module.empty, options.calls, options.repeat,
            (lambda: monitoring.set_local_events(tool, module.empty.__code__, events),
             lambda: monitoring.set_local_events(tool, module.empty.__code__, 0)))))
        monitoring.free_tool_id(tool)
    bare = rows[0][1]
    print("Python %s, %d calls x %d (best)" % (sys.version.split()[0], options.calls, options.repeat))
    for name, value in rows:
        print("  %-40s %7.1f ns/call  %+7.1f ns" % (name, value, value - bare))
    rows = line_rows(module, path, options)
    bare = rows[0][1]
    print("line mode: %d line events x %d (best), ns per line event"
          % (max(1, options.calls // 10) * LINES_PER_ITERATION, options.repeat))
    for name, value in rows:
        print("  %-44s %7.1f ns/line  %+7.1f ns" % (name, value, value - bare))


if __name__ == "__main__":
    main()
