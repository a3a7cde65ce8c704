#!/usr/bin/env python3
"""Requests per second of the example shop (examples/shop, a threaded HTTP
server) under load, side by side in one run: plain; while `pyhot profile`
times its own functions (`__main__.Handler.do_GET` and `pricing.**`); after
that profile ended; under cProfile in every thread (everything profiled);
under a sys.setprofile hook written in Python in every thread.

    bench/profile/bench_service.py [--python python3] [--seconds 8] [--clients 4] [--rounds 2]

Each phase: --clients threads of one load process send GET /basket and
GET /price/apple for --seconds; the figure is requests answered per second.
Phases are interleaved over --rounds rounds; the best of each is printed."""
import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYHOT = os.path.join(ROOT, "build", "pyhot")
SHOP = os.path.join(ROOT, "examples", "shop", "app.py")

# Starts the shop with a profiler in every thread (cProfile or a Python
# setprofile hook), or plain.
RUNNER = r'''
import cProfile, runpy, sys, threading
mode, path = sys.argv[1], sys.argv[2]
sys.argv = [path, "0"]
sys.path.insert(0, __import__("os").path.dirname(path))
if mode == "cprofile":
    run = threading.Thread.run
    def profiled(self):
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(self)
        finally:
            profiler.disable()
    threading.Thread.run = profiled
    cProfile.Profile().enable()
elif mode == "setprofile":
    def hook(frame, event, arg):
        return None
    threading.setprofile(hook)
    sys.setprofile(hook)
runpy.run_path(path, run_name="__main__")
'''


def load(port, seconds, clients):
    """Requests answered in `seconds` by `clients` threads."""
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(index):
        paths = ("/basket", "/price/apple")
        while time.monotonic() < stop:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", paths[counts[index] % 2])
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                counts[index] += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def start_shop(python, mode, directory):
    runner = os.path.join(directory, "runner.py")
    with open(runner, "w") as handle:
        handle.write(RUNNER)
    process = subprocess.Popen([python, runner, mode, SHOP], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    return process, int(line.rsplit(":", 1)[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="pyhot-bench-service-")
    best = {}

    def record(name, value):
        best[name] = max(best.get(name, 0), value)

    for _ in range(options.rounds):
        shop, port = start_shop(options.python, "plain", directory)
        try:
            load(port, 1, options.clients)  # warm up
            record("plain", load(port, options.seconds, options.clients))
            profile = subprocess.Popen([PYHOT, "profile", str(shop.pid), "__main__.Handler.do_GET", "pricing.**",
                                        "--duration", "%gs" % (options.seconds + 4)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2)  # attach and instrument
            record("pyhot profile (shop's functions)", load(port, options.seconds, options.clients))
            out, err = profile.communicate(timeout=60)
            if profile.returncode != 0:
                sys.exit("pyhot profile failed: " + err)
            record("after the profile", load(port, options.seconds, options.clients))
        finally:
            shop.kill()
            shop.wait()
        for mode, name in (("cprofile", "cProfile (every thread)"), ("setprofile", "sys.setprofile (every thread)")):
            shop, port = start_shop(options.python, mode, directory)
            try:
                load(port, 1, options.clients)
                record(name, load(port, options.seconds, options.clients))
            finally:
                shop.kill()
                shop.wait()
    plain = best["plain"]
    print("%s, %d clients, %g s per phase, best of %d" % (
        subprocess.check_output([options.python, "-V"], text=True).strip(), options.clients, options.seconds,
        options.rounds))
    for name in ("plain", "pyhot profile (shop's functions)", "after the profile", "cProfile (every thread)",
                 "sys.setprofile (every thread)"):
        print("  %-36s %7.0f req/s  %+6.1f%%" % (name, best[name], (best[name] - plain) / plain * 100))
    print("last profile:\n" + out)


if __name__ == "__main__":
    main()
