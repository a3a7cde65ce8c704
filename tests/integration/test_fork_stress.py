"""A pre-fork master that runs the agent forks short-lived workers without
pause while pyhot talks to the master, reloads the tree and attaches to
workers just forked (whose agent is still starting in the fork handler).
No worker may hang because of pyhot: every worker forked must end on its
own, and no command may find one stuck with its bootstrap queued."""
import collections
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import AGENT_DIR, interpreters, kill_group, pyhot, spawn, wait_for

# Keeps WORKERS workers alive, each living LIFETIME seconds, and appends the
# pid of every fork to forked.txt (one whole line each).
MASTER = r'''
import os, select, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyhot_agent
pyhot_agent.start()
import work
LIFETIME = float(os.environ["WORKER_LIFETIME"])
WORKERS = int(os.environ["WORKERS"])

def work_until_old():
    end = time.monotonic() + LIFETIME
    while time.monotonic() < end:
        work.answer()
        time.sleep(0.005)

def fork_worker():
    pid = os.fork()
    if pid == 0:
        try:
            work_until_old()
        finally:
            os._exit(0)
    with open("forked.txt", "a") as log:
        log.write("%d\n" % pid)
    return pid

workers = set()
print("ready", flush=True)
while True:
    while len(workers) < WORKERS:
        workers.add(fork_worker())
    while workers:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        workers.discard(pid)
    select.select([], [], [], 0.005)
'''

DURATION = float(os.environ.get("PYHOT_FORK_STRESS_SECONDS", "20"))
WORKER_LIFETIME = 0.2
# A worker ends LIFETIME after its fork; one still alive this long after its
# fork is hung (generous: the machine may be loaded, and pyhot may be
# attached to it for a while).
HUNG_AFTER = 15.0
QUEUED = re.compile(r"the bootstrap is queued in process (\d+)")


def alive(pid):
    """Whether pid runs (a zombie waiting for the master to reap it does not)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class ForkStressTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="pyhot-forks-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.socket_dir = os.path.join(self.dir, "sock")
        with open(os.path.join(self.dir, "master.py"), "w") as handle:
            handle.write(MASTER)
        self.write_work(1)
        self.env = dict(os.environ, PYHOT_AGENT_SOCKET_DIR=self.socket_dir)
        self.env.pop("PYHOT_AGENT_DEBUG", None)
        target_env = dict(self.env, PYTHONPATH=AGENT_DIR, PYTHONDONTWRITEBYTECODE="1",
                          WORKER_LIFETIME=str(WORKER_LIFETIME), WORKERS="3")
        self.log_path = os.path.join(self.dir, "master.log")
        self.log = open(self.log_path, "w")
        self.addCleanup(self.log.close)
        # The workers are forks in the master's group: kill_group ends them
        # all, hung or not, pass or fail.
        self.master = spawn([self.python, "master.py"], cwd=self.dir, env=target_env, stdout=self.log,
                            stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, self.master)
        wait_for(self.ready, 20, "the master to start")
        self.stopped = threading.Event()
        self.queued = set()   # workers a command found with the bootstrap stuck
        self.errors = []
        self.outcomes = []
        self.lock = threading.Lock()

    def ready(self):
        if self.master.poll() is not None:
            raise AssertionError("the master exited early:\n" + self.master_log())
        return "ready\n" in self.master_log()

    def master_log(self):
        with open(self.log_path) as handle:
            return handle.read()

    def write_work(self, value):
        path = os.path.join(self.dir, "work.py")
        with open(path + ".tmp", "w") as handle:
            handle.write("def answer():\n    return %d\n" % value)
        os.replace(path + ".tmp", path)

    def forked(self):
        try:
            with open(os.path.join(self.dir, "forked.txt")) as handle:
                return [int(line) for line in handle.read().splitlines(True) if line.endswith("\n")]
        except OSError:
            return []

    def run_pyhot(self, *args):
        try:
            done = pyhot(*args, env=self.env, timeout=60)
        except subprocess.TimeoutExpired as expired:
            with self.lock:
                self.errors.append("pyhot %s did not end: %s" % (" ".join(map(str, args)), expired))
            return None
        with self.lock:
            self.queued.update(int(pid) for pid in QUEUED.findall(done.stderr))
            # (command, exit status, first line with the pids blanked): what the failure message counts
            self.outcomes.append((args[0], done.returncode, re.sub(r"\d+", "N", done.stderr.strip())[:150]))
        return done

    def attach_to_new_workers(self):
        """Attaches to the newest worker again and again: most are caught
        while their fork handler is still starting their agent."""
        seen = set()
        while not self.stopped.is_set():
            fresh = [pid for pid in self.forked() if pid not in seen]
            if not fresh:
                time.sleep(0.005)
                continue
            seen.update(fresh)
            self.run_pyhot("history", fresh[-1])

    def ask_the_master(self):
        while not self.stopped.is_set():
            done = self.run_pyhot("history", self.master.pid)
            if done is not None and done.returncode != 0:
                with self.lock:
                    self.errors.append("history of the master: " + done.stderr)

    def reload_the_tree(self):
        value = 2
        while not self.stopped.is_set():
            self.write_work(value)
            self.run_pyhot("reload", self.master.pid, os.path.join(self.dir, "work.py"), "--tree")
            value += 1

    def test_no_worker_hangs(self):
        jobs = [self.attach_to_new_workers, self.attach_to_new_workers, self.ask_the_master, self.reload_the_tree]
        threads = [threading.Thread(target=job, daemon=True) for job in jobs]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + DURATION
            while time.monotonic() < deadline and not self.queued:
                time.sleep(0.1)
        finally:
            self.stopped.set()
            for thread in threads:
                thread.join(90)
        forked = self.forked()
        self.assertGreater(len(forked), 20, "the master forked too few workers to tell")
        self.assertEqual(self.master.poll(), None, "the master exited:\n" + self.master_log())
        # Every worker ends on its own LIFETIME after its fork.
        try:
            wait_for(lambda: not any(alive(pid) for pid in forked), HUNG_AFTER, "every worker to end")
        except AssertionError:
            pass
        hung = sorted(pid for pid in forked if alive(pid))
        outcomes = collections.Counter(self.outcomes).most_common(10)
        self.assertEqual((hung, sorted(self.queued)), ([], []),
                         "of %d workers, these never ended / had the bootstrap stuck; commands: %s"
                         % (len(forked), outcomes))
        self.assertEqual(self.errors, [])


for label, path in interpreters():
    name = "ForkStressTest_" + label.replace(".", "_").replace("-", "_")
    globals()[name] = type(name, (ForkStressTest,), {"python": path})
del ForkStressTest

if __name__ == "__main__":
    unittest.main()
