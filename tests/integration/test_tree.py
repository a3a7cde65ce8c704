"""--tree: a pre-fork server's parent and workers are patched together, and a
worker forked after the patch inherits it."""
import os
import shutil
import signal
import tempfile
import unittest

from harness import PreforkServer, interpreters, pyhot, wait_for


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


# Three interpreters keep the suite short: the oldest, the newest, and the
# one whose runtime is linked into the executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        name = "TreeTest_" + label.replace(".", "_").replace("-", "_")
        globals()[name] = type(name, (TreeTest,), {"python": path})
del TreeTest

if __name__ == "__main__":
    unittest.main()
