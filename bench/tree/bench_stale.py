"""Stale and failed responses around `reload --tree` on pre-fork servers that
recycle their workers aggressively, under load (issue 11's goal: 0 stale
responses in 100 rounds, 0 failed requests).

    /usr/bin/python3 bench/tree/bench_stale.py [--rounds 100] [--servers stdlib,stdlib-lazy,gunicorn,gunicorn-preload]
        [--python PATH] [--max-requests N] [--gunicorn-max-requests N]

Servers (the integration tests' programs, tests/integration/harness.py):
  stdlib            RECYCLING_SERVER, the master imports the module, 3 workers
                    that each answer --max-requests connections and exit
  stdlib-lazy       the same, each worker imports the module after the fork
  gunicorn          Debian's gunicorn (/usr/bin/gunicorn, /usr/bin/python3), 3 sync
                    workers, --max-requests --gunicorn-max-requests, no --preload
  gunicorn-preload  the same with --preload
gunicorn rows are skipped, saying so, when it is not installed.

Each round writes a new work.py (answer() returns the round's number),
runs `pyhot reload MASTER work.py --tree` while two clients ask the server
without pause, then asks 30 fresh requests: an answer other than the
round's number is stale. `pyhot history MASTER --tree` follows each
reload (a read command over workers that are exiting). Counted: rounds
whose reload or history exited non-zero (with their messages), stale
answers, requests that failed (refused, reset, unanswered, non-200), and
how many workers were recycled (distinct pids that answered).
"""
import argparse
import collections
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import (GUNICORN_APP, RECYCLING_SERVER, Load, ask_http_server, ask_line_server,  # noqa: E402
                     free_port, gunicorn_installed, kill_group, pyhot, spawn, wait_for, write_whole)

SAMPLES = 30


class Server:
    def __init__(self, kind, python, directory, max_requests, gunicorn_max_requests):
        self.dir = directory
        write_whole(os.path.join(directory, "work.py"), work_text(1))
        self.log_path = os.path.join(directory, "server.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        if kind.startswith("stdlib"):
            write_whole(os.path.join(directory, "server.py"), RECYCLING_SERVER)
            env.update(PRELOAD="0" if kind == "stdlib-lazy" else "1", MAX_REQUESTS=str(max_requests))
            self.process = spawn([python, "server.py"], cwd=directory, env=env, stdout=self.log,
                                 stderr=subprocess.STDOUT)
            self.port = wait_for(self.port_line, 30, "the server to listen")
            self.ask = lambda: ask_line_server(self.port)
            failures = (OSError, ValueError)
        else:
            write_whole(os.path.join(directory, "app.py"), GUNICORN_APP)
            self.port = free_port()
            command = ["/usr/bin/python3", "/usr/bin/gunicorn", "-w", "3", "--max-requests", str(gunicorn_max_requests),
                       "--max-requests-jitter", "0", "-b", "127.0.0.1:%d" % self.port, "app:application"]
            if kind == "gunicorn-preload":
                command.insert(2, "--preload")
            self.process = spawn(command, cwd=directory, env=env, stdout=self.log, stderr=subprocess.STDOUT)
            self.ask = lambda: ask_http_server(self.port)
            failures = (OSError, ValueError, http.client.HTTPException)
        wait_for(lambda: self.answers("1"), 30, "the server to answer")
        self.load = Load(self.ask, failures_are=failures)

    def port_line(self):
        if self.process.poll() is not None:
            raise SystemExit("the server exited early:\n" + open(self.log_path).read())
        with open(self.log_path) as handle:
            for line in handle.read().splitlines(True):
                if line.startswith("port ") and line.endswith("\n"):
                    return int(line.split()[1])
        return None

    def answers(self, value):
        try:
            return self.ask()[1] == value
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def stop(self):
        self.load.stop()
        kill_group(self.process)
        self.log.close()


def work_text(value):
    return "def answer():\n    return %d\n" % value


def failure_lines(done):
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.startswith("pyhot: ") or line.startswith("Error") or "failed" in line]
    tail = [line for line in done.stdout.splitlines() if line.startswith("== ") or "processes" in line][-3:]
    return lines or ["exit %d: %s" % (done.returncode, " | ".join(tail) or "no message")]


def run_server(kind, args):
    directory = tempfile.mkdtemp(prefix="pyhot-bench-stale-")
    server = Server(kind, args.python, directory, args.max_requests, args.gunicorn_max_requests)
    stale_total = 0
    stale_rounds = []
    failed_commands = collections.Counter()
    durations = []
    pids = set()
    try:
        for round_number in range(2, 2 + args.rounds):
            path = write_whole(os.path.join(directory, "work.py"), work_text(round_number))
            started = time.monotonic()
            done = pyhot("reload", server.process.pid, path, "--tree", timeout=180)
            durations.append((time.monotonic() - started) * 1000)
            if done.returncode != 0:
                for line in failure_lines(done):
                    failed_commands["reload: " + line] += 1
                    if args.verbose:
                        print("  round %d: reload: %s" % (round_number, line), flush=True)
            stale = 0
            for _ in range(SAMPLES):
                try:
                    pid, answer = server.ask()
                except (OSError, ValueError, http.client.HTTPException):
                    server.load.failures += 1
                    continue
                pids.add(pid)
                if answer != str(round_number):
                    stale += 1
            if stale:
                stale_rounds.append((round_number, stale, done.stdout[-2000:]))
            stale_total += stale
            history = pyhot("history", server.process.pid, "--tree", timeout=180)
            if history.returncode != 0:
                for line in failure_lines(history):
                    failed_commands["history: " + line] += 1
                    if args.verbose:
                        print("  round %d: history: %s" % (round_number, line), flush=True)
            if args.verbose:
                print("  round %d: reload %d (%.0f ms), stale %d, history %d, failures so far %d" % (
                    round_number, done.returncode, durations[-1], stale, history.returncode, server.load.failures),
                    flush=True)
    finally:
        requests, failures, errors = server.load.requests, server.load.failures, server.load.errors
        server.stop()
        shutil.rmtree(directory, True)
    print("%s: %d rounds, %d stale answers of %d sampled (%d rounds with any), %d failed requests of %d, "
          "%d worker pids seen; reload --tree median %.0f ms, max %.0f ms" % (
              kind, args.rounds, stale_total, SAMPLES * args.rounds, len(stale_rounds), failures,
              requests + failures, len(pids), statistics.median(durations), max(durations)), flush=True)
    for line, count in failed_commands.most_common():
        print("  %d x %s" % (count, line), flush=True)
    for round_number, stale, output in stale_rounds[:3]:
        print("  round %d: %d stale; reload printed:\n%s" % (round_number, stale, output), flush=True)
    for error in collections.Counter(errors).most_common(5):
        print("  failed request: %d x %s" % (error[1], error[0]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--servers", default="stdlib,stdlib-lazy,gunicorn,gunicorn-preload")
    parser.add_argument("--python", default="/usr/bin/python3", help="for the standard-library server")
    parser.add_argument("--max-requests", type=int, default=10, help="stdlib: connections a worker serves")
    parser.add_argument("--gunicorn-max-requests", type=int, default=20)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as handle:
        print("load average at the start: %s" % " ".join(handle.read().split()[:3]), flush=True)
    for kind in args.servers.split(","):
        if kind.startswith("gunicorn") and not (os.path.exists("/usr/bin/gunicorn") and gunicorn_installed()):
            print("%s: skipped: /usr/bin/gunicorn is not installed (Debian's gunicorn package)" % kind)
            continue
        run_server(kind, args)
    with open("/proc/loadavg") as handle:
        print("load average at the end: %s" % " ".join(handle.read().split()[:3]), flush=True)


if __name__ == "__main__":
    main()
