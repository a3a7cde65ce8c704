#!/usr/bin/env python3
"""What in the agent holds the interpreter longest at once during a steady
one-function `pyhot reload PID FILE.py` (bench/README.md, "Reload cost
against module size"): measured inside the target, in CPU time of the
agent's thread, so the machine's load does not count.

    bench/reload/agent_slices.py [--pyhot build/pyhot] [--functions 20000] [--reloads 9] [--top 8] [--case file|func]

The target (started with `pyhot run`) imports a generated module
(gen_module.py) and wraps the agent's `serve_request` in a
`sys.setprofile` hook of the agent's thread: every call into C made by
Python code (json.loads, compile, list.extend, ...) is one piece the
program's threads cannot interrupt, and its `time.thread_time()` is
recorded; so is every garbage collection (`gc.callbacks`), which runs
inside whatever allocated. Python code between those is interrupted at
the switch interval and is not a stall of its own. Printed per reload:
the agent's CPU time for the request, and the longest pieces; at the end,
per piece, the median over the reloads of its longest occurrence. The
hook makes Python code slower, not C calls."""
import argparse
import json
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

TARGET = r'''
import gc, json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import %(module)s
agent = sys.modules['pyhot_agent']
out_path = sys.argv[2]
thread_time = time.thread_time
state = {'gc': None, 'pieces': []}


def on_gc(phase, info):
    if phase == 'start':
        state['gc'] = thread_time()
    elif state['gc'] is not None:
        state['pieces'].append(('gc generation %%d' %% info['generation'], thread_time() - state['gc']))
        state['gc'] = None


gc.callbacks.append(on_gc)


def describe(frame, arg):
    name = getattr(arg, '__qualname__', None) or getattr(arg, '__name__', None) or repr(arg)
    owner = getattr(arg, '__self__', None)
    if owner is not None and not isinstance(owner, type(sys)):
        name = type(owner).__name__ + '.' + name
    return '%%s (in %%s:%%d)' %% (name, frame.f_code.co_name, frame.f_lineno)


def profiled(original):
    def serve_request(self, conn, reader, give_up=None):
        pieces = state['pieces'] = []

        last = [thread_time(), 'the request read']

        def hook(frame, event, arg):
            now = thread_time()
            if event in ('c_return', 'c_exception'):
                pieces.append((describe(frame, arg), now - last[0]))
            else:
                # Since the last event no C call was made from Python: what
                # ran was bytecode (interrupted at the switch interval) or
                # deallocations.
                pieces.append(('bytecode, to %%s %%s:%%d' %% (event, frame.f_code.co_name, frame.f_lineno),
                               now - last[0]))
            last[0] = thread_time()
        started = thread_time()
        sys.setprofile(hook)
        try:
            return original(self, conn, reader, give_up)
        finally:
            sys.setprofile(None)
            total = thread_time() - started
            with open(out_path, 'a') as handle:
                handle.write(json.dumps({'total': total, 'pieces': [p for p in pieces if p[1] >= 2e-5]}) + '\n')
    return serve_request


cls = next(c for c in vars(agent).values() if isinstance(c, type) and 'serve_request' in vars(c))
cls.serve_request = profiled(cls.serve_request)
print('ready', flush=True)
time.sleep(3600)
'''


def run(args):
    with tempfile.TemporaryDirectory(prefix="pyhot-slices-") as directory:
        module = "sliced_%d" % args.functions
        path = os.path.join(directory, module + ".py")
        text = gen_module.generate(args.functions)
        with open(path, "w") as handle:
            handle.write(text)
        out_path = os.path.join(directory, "pieces.jsonl")
        script = os.path.join(directory, "target.py")
        with open(script, "w") as handle:
            handle.write(TARGET % {"module": module})
        env = dict(os.environ, PYHOT_CACHE_DIR=os.path.join(directory, "cache"))
        log_path = os.path.join(directory, "target.log")
        log = open(log_path, "w")
        target = subprocess.Popen([args.pyhot, "run", "--", args.python, script, directory, out_path],
                                  env=dict(env, PYTHONDONTWRITEBYTECODE="1"), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while "ready" not in open(log_path).read():
                if target.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("target did not start:\n" + open(log_path).read())
                time.sleep(0.1)
            value = 0

            def reload():
                nonlocal value
                value += 1
                with open(path, "w") as handle:
                    handle.write(gen_module.edit(text, value))
                open(out_path, "w").close()
                command = [args.pyhot, "reload", str(target.pid)]
                command += [path] if args.case == "file" else [module, gen_module.target_func(args.functions)]
                for _ in range(3):
                    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
                    if result.returncode == 0:
                        break
                if result.returncode != 0:
                    raise SystemExit("reload failed:\n" + result.stdout + result.stderr)
                with open(out_path) as handle:
                    return [json.loads(line) for line in handle]

            for _ in range(2):
                reload()  # first touch, then the reload that writes the parsed cache entry
            longest = {}
            totals = []
            for run_index in range(args.reloads):
                requests = reload()
                totals.append(sum(r["total"] for r in requests) * 1000)
                worst = {}
                for request in requests:
                    for name, seconds in request["pieces"]:
                        key = name.split(" (in ")[0] + " (in " + name.split(" (in ")[1].split(":")[0] + ")" \
                            if " (in " in name else name
                        worst[key] = max(worst.get(key, 0), seconds * 1000)
                for key, ms in worst.items():
                    longest.setdefault(key, []).append(ms)
                top = sorted(worst.items(), key=lambda item: -item[1])[:3]
                print("reload %d: %d requests, agent CPU %.2f ms; longest: %s" % (
                    run_index + 1, len(requests), totals[-1], "; ".join("%s %.3f ms" % t for t in top)), flush=True)
            print("\nagent CPU per reload, median: %.2f ms" % statistics.median(totals))
            print("| piece (C call, or a collection) | longest, median over reloads (ms) | max (ms) |")
            print("|---|---|---|")
            ranked = sorted(longest.items(), key=lambda item: -statistics.median(item[1] + [0] * (
                args.reloads - len(item[1]))))
            for key, values in ranked[:args.top]:
                values = values + [0] * (args.reloads - len(values))
                print("| %s | %.3f | %.3f |" % (key, statistics.median(values), max(values)))
        finally:
            try:
                os.killpg(target.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            target.wait()
            log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--pyhot", default=os.path.join(os.environ.get("PYHOT_BUILD_DIR", os.path.join(
        os.path.dirname(os.path.dirname(HERE)), "build")), "pyhot"))
    parser.add_argument("--functions", type=int, default=20000)
    parser.add_argument("--reloads", type=int, default=9)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--case", choices=("file", "func"), default="file")
    args = parser.parse_args()
    args.pyhot = os.path.abspath(args.pyhot)
    with open("/proc/loadavg") as handle:
        print("load average:", " ".join(handle.read().split()[:3]))
    run(args)


if __name__ == "__main__":
    main()
