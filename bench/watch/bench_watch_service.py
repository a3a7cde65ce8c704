#!/usr/bin/env python3
"""A service's throughput under `pyhot watch` of its one hot handler vs
unwatched, side by side: the example shop (examples/shop, started without
pyhot) answers GET /basket in a loop from one client for --seconds, then
again while `pyhot watch PID __main__ Handler do_GET --json` streams every
call (to /dev/null), then again after the watch is removed.

    bench/watch/bench_watch_service.py [--pyhot build/pyhot] [--python python3] [--seconds 5]"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def throughput(url, seconds):
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with urllib.request.urlopen(url) as response:
            response.read()
        count += 1
    return count / seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pyhot", default=os.path.join(ROOT, "build", "pyhot"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--seconds", type=float, default=5)
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pyhot-bench-service-")
    for name in ("app.py", "pricing.py"):
        shutil.copy(os.path.join(ROOT, "examples", "shop", name), work)
    log = open(os.path.join(work, "server.log"), "w+")
    server = subprocess.Popen([options.python, "app.py"], cwd=work, stdout=log, stderr=subprocess.STDOUT)
    watch = None
    try:
        url = None
        while url is None:
            time.sleep(0.05)
            log.seek(0)
            for line in log:
                if "listening on " in line:
                    url = line.split("listening on ")[1].strip() + "/basket"
        throughput(url, 0.5)  # warm up
        rows = [("unwatched", throughput(url, options.seconds))]
        watch = subprocess.Popen([options.pyhot, "watch", str(server.pid), "__main__", "Handler", "do_GET",
                                  "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(2)  # attach and instrument
        rows.append(("pyhot watch of do_GET", throughput(url, options.seconds)))
        watch.send_signal(2)
        watch.wait(30)
        rows.append(("after the watch", throughput(url, options.seconds)))
    finally:
        if watch is not None and watch.poll() is None:
            watch.kill()
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1]
    print("Python %s, one client, %.0f s each" % (options.python, options.seconds))
    for name, value in rows:
        print("  %-24s %8.0f requests/s  %+6.1f%%" % (name, value, (value / base - 1) * 100))


if __name__ == "__main__":
    main()
