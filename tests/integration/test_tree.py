"""--tree: a pre-fork server's parent and workers are patched together, and a
worker forked after the patch inherits it."""
import os
import shutil
import signal
import tempfile
import unittest

from harness import PreforkServer, interpreters, kill_group, pyhot, spawn, wait_for, write_whole


class TreeTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-tree-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 1\n")
        # Started without pyhot: every process of the tree is attached to.
        self.server = PreforkServer(self.python, self.dir)
        self.addCleanup(self.server.stop)
        self.parent = self.server.process
        self.children = self.server.children
        self.answers = self.server.answers

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


# A master and two workers; SIGUSR2 makes a worker exit the slow way: the
# flush of its stdout, which CPython makes after it has marked the
# interpreter finalizing (Py_IsInitialized() is 0), takes 2.5 s (a log
# collector that is slow to take the last lines).
SLOW_EXIT = r"""
import os, signal, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import work
leaving = []

class SlowLog:
    def write(self, text):
        return len(text)

    def flush(self):
        if sys.is_finalizing():
            open("finalizing-%d" % os.getpid(), "w").close()
            time.sleep(2.5)

def worker():
    signal.signal(signal.SIGUSR2, lambda *a: leaving.append(1))
    while not leaving:
        time.sleep(0.02)
    sys.stdout = SlowLog()
    sys.exit(0)

children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        worker()
    children.append(pid)
with open("children.tmp", "w") as handle:
    handle.write(" ".join(map(str, children)))
os.replace("children.tmp", "children.txt")
while True:
    time.sleep(0.02)
"""


class SlowExitTreeTest(unittest.TestCase):
    """A worker whose interpreter is finalizing refuses the attach: it is
    exiting, so it is reported as such and does not fail the command."""
    python = None

    def test_a_worker_finalizing_slowly_is_not_a_failure(self):
        directory = tempfile.mkdtemp(prefix="pyhot-slowexit-")
        self.addCleanup(shutil.rmtree, directory, True)
        write_whole(os.path.join(directory, "work.py"), "def answer():\n    return 1\n")
        write_whole(os.path.join(directory, "server.py"), SLOW_EXIT)
        master = spawn([self.python, "server.py"], cwd=directory)
        self.addCleanup(kill_group, master)

        def children():
            try:
                with open(os.path.join(directory, "children.txt")) as handle:
                    return [int(p) for p in handle.read().split()]
            except OSError:
                return None
        leaving, staying = wait_for(children, 10, "two workers")
        os.kill(leaving, signal.SIGUSR2)
        wait_for(lambda: os.path.exists(os.path.join(directory, "finalizing-%d" % leaving)), 10,
                 "the worker to be finalizing")
        write_whole(os.path.join(directory, "work.py"), "def answer():\n    return 2\n")
        done = pyhot("reload", master.pid, os.path.join(directory, "work.py"), "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("== process %d: exited during the command (not counted)" % leaving, done.stdout)
        self.assertIn("== process %d\n" % staying, done.stdout)


# Three interpreters keep the suite short: the oldest, the newest, and the
# one whose runtime is linked into the executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        for base in (TreeTest, SlowExitTreeTest):
            name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
            globals()[name] = type(name, (base,), {"python": path})
del TreeTest, SlowExitTreeTest, base

if __name__ == "__main__":
    unittest.main()
