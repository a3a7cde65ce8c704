"""--tree: a pre-fork server's parent and workers are patched together, and a
worker forked after the patch inherits it."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import interpreters, pyhot, wait_for

PREFORK = r'''
import os, signal, sys, time
import work

def worker_loop():
    while True:
        with open("out-%d.txt" % os.getpid(), "w") as handle:
            handle.write(str(work.answer()))
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
with open("children.txt", "w") as handle:
    handle.write(" ".join(map(str, children)))
while True:
    with open("children.txt", "w") as handle:
        handle.write(" ".join(map(str, children)))
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
        self.parent = subprocess.Popen([self.python, "server.py"], cwd=self.dir)
        self.addCleanup(self.stop)

    def stop(self):
        for pid in self.children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.parent.kill()
        self.parent.wait()

    def children(self):
        try:
            with open(os.path.join(self.dir, "children.txt")) as handle:
                return [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            return []

    def answers(self):
        values = {}
        for pid in self.children():
            try:
                with open(os.path.join(self.dir, "out-%d.txt" % pid)) as handle:
                    values[pid] = handle.read()
            except OSError:
                values[pid] = None
        return values

    def test_reload_tree_patches_parent_and_workers(self):
        wait_for(lambda: len(self.children()) == 2 and all(v == "1" for v in self.answers().values()), 10,
                 "two workers answering")
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 2\n")
        done = pyhot("reload", self.parent.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for pid in [self.parent.pid] + self.children():
            self.assertIn("== process %d" % pid, done.stdout)
        self.assertEqual(done.stdout.count("Reload is done successfully."), 3)
        wait_for(lambda: all(v == "2" for v in self.answers().values()), 10, "every worker to run the new code")

        # A worker forked after the patch inherits it from its parent.
        self.parent.send_signal(signal.SIGUSR1)
        wait_for(lambda: len(self.children()) == 3, 10, "a third worker")
        wait_for(lambda: self.answers().get(self.children()[-1]) == "2", 10, "the new worker's answer")

        history = pyhot("history", self.parent.pid, "--tree")
        self.assertEqual(history.returncode, 0, history.stdout + history.stderr)
        reverted = pyhot("revert", self.parent.pid, "--tree")
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        wait_for(lambda: all(v == "1" for pid, v in self.answers().items() if pid != self.children()[-1]), 10,
                 "workers back on the old code")


# Three interpreters keep the suite short: the oldest, the newest, and the
# one whose runtime is linked into the executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        name = "TreeTest_" + label.replace(".", "_").replace("-", "_")
        globals()[name] = type(name, (TreeTest,), {"python": path})
del TreeTest

if __name__ == "__main__":
    unittest.main()
