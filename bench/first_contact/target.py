"""The live process of bench_first_contact.py: imports the modules named on
the command line from --dir, then its main thread ticks and appends every
gap longer than --gap-ms (it could not run: another thread held the GIL) to
gaps.log as `<monotonic end> <gap ms>`. Started by the driver, never by hand."""
import argparse
import importlib
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--dir", required=True)
parser.add_argument("--modules", required=True)
parser.add_argument("--gap-ms", type=float, default=1.0)
args = parser.parse_args()
sys.path.insert(0, args.dir)
sys.setswitchinterval(50e-6)
for name in args.modules.split(","):
    importlib.import_module(name)
log = open(os.path.join(args.dir, "gaps.log"), "a", buffering=1)
print("ready", flush=True)
threshold = args.gap_ms / 1000.0
last = time.monotonic()
while True:
    now = time.monotonic()
    if now - last > threshold:
        log.write("%.6f %.3f\n" % (now, (now - last) * 1000.0))
    last = now
    time.sleep(0)
