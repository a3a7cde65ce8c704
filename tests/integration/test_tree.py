"""--tree: a pre-fork server's parent and workers are patched together, and a
worker forked after the patch inherits it."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import interpreters, kill_group, pyhot, spawn, wait_for

PREFORK = r'''
import os, signal, sys, time
import work

def publish(name, text):
    # Written whole and renamed: a reader never sees the file empty or half written.
    with open(name + ".tmp%d" % os.getpid(), "w") as handle:
        handle.write(text)
    os.replace(name + ".tmp%d" % os.getpid(), name)

def worker_loop():
    while True:
        publish("out-%d.txt" % os.getpid(), str(work.answer()))
        time.sleep(0.02)

def spawn():
    pid = os.fork()
    if pid == 0:
        try:
            worker_loop()
        finally:
            os._exit(0)
    return pid

children = [spawn(), spawn()]
signal.signal(signal.SIGUSR1, lambda *a: children.append(spawn()))
while True:
    publish("children.txt", " ".join(map(str, children)))
    time.sleep(0.02)
'''


class TreeTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-tree-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 1\n")
        with open(os.path.join(self.dir, "server.py"), "w") as handle:
            handle.write(PREFORK)
        # Started without pyhot: every process of the tree is attached to.
        # The workers are forks in the parent's process group: killing the
        # group ends them all, even those children.txt does not list yet.
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.addCleanup(self.log.close)
        self.parent = spawn([self.python, "server.py"], cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, self.parent)

    def children(self):
        try:
            with open(os.path.join(self.dir, "children.txt")) as handle:
                return [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            return []

    def answers(self, children=None):
        values = {}
        for pid in self.children() if children is None else children:
            try:
                with open(os.path.join(self.dir, "out-%d.txt" % pid)) as handle:
                    values[pid] = handle.read()
            except OSError:
                values[pid] = None
        return values

    def test_reload_tree_patches_parent_and_workers(self):
        def two_workers_answer_one():
            children = self.children()
            return len(children) == 2 and all(v == "1" for v in self.answers(children).values())
        wait_for(two_workers_answer_one, 10, "two workers answering")
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 2\n")
        done = pyhot("reload", self.parent.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for pid in [self.parent.pid] + self.children():
            self.assertIn("== process %d" % pid, done.stdout)
        self.assertEqual(done.stdout.count("Reload is done successfully."), 3)
        def every_worker_answers(value, but=()):
            # Never true of no workers: children.txt names at least the two.
            answers = [v for pid, v in self.answers().items() if pid not in but]
            return len(answers) >= 2 and all(v == value for v in answers)
        wait_for(lambda: every_worker_answers("2"), 10, "every worker to run the new code")

        # A worker forked after the patch inherits it from its parent.
        self.parent.send_signal(signal.SIGUSR1)
        third = wait_for(lambda: self.children()[2:3], 10, "a third worker")[0]
        wait_for(lambda: self.answers([third]).get(third) == "2", 10, "the new worker's answer")

        history = pyhot("history", self.parent.pid, "--tree")
        self.assertEqual(history.returncode, 0, history.stdout + history.stderr)
        reverted = pyhot("revert", self.parent.pid, "--tree")
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        wait_for(lambda: every_worker_answers("1", but=(third,)), 10, "workers back on the old code")


# Three interpreters keep the suite short: the oldest, the newest, and the
# one whose runtime is linked into the executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        name = "TreeTest_" + label.replace(".", "_").replace("-", "_")
        globals()[name] = type(name, (TreeTest,), {"python": path})
del TreeTest

if __name__ == "__main__":
    unittest.main()
