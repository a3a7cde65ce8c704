"""Shows the stall behind the agent's _RaisedSwitchInterval: one thread spins
in pure Python; another raises the switch interval (as the agent does around
its swaps), runs ~20 ms of bytecode, and restores it. The spinning thread's
pending GIL request (made with the old, short interval) forces a switch in
the middle; from then on the raising thread waits with the raised interval.

    /usr/bin/python3 bench/reload/switch_interval_stall.py

Raises to 100 s like the agent. When the stall happens, a faulthandler
watchdog (a C thread that needs no GIL) ends the process after --watchdog
seconds (10) and prints where each thread was; exit status 1.
"""
import argparse
import faulthandler
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--raise", dest="raised", type=float, default=100.0)
parser.add_argument("--watchdog", type=float, default=10.0)
parser.add_argument("--interval", type=float, default=0.005, help="normal switch interval (default 5 ms)")
args = parser.parse_args()
sys.setswitchinterval(args.interval)
stop = False


def spin():
    while not stop:
        pass


threading.Thread(target=spin, daemon=True).start()
time.sleep(0.05)
sys.stderr.write("if nothing is printed within %g s, faulthandler ends the stalled process:\n" % args.watchdog)
faulthandler.dump_traceback_later(args.watchdog, exit=True)
worst = 0.0
for attempt in range(20):
    start = time.monotonic()
    saved = sys.getswitchinterval()
    sys.setswitchinterval(args.raised)
    total = 0
    for j in range(400000):  # ~20 ms of bytecode, longer than the normal interval
        total += j
    sys.setswitchinterval(saved)
    worst = max(worst, time.monotonic() - start)
    if worst > args.raised / 2:
        break
stop = True
faulthandler.cancel_dump_traceback_later()
print("longest raised-interval block: %.3f s (the bytecode alone takes ~0.02 s)" % worst)
