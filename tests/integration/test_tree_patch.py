"""One patch is one id across a process tree: `reload --tree` labels its
patch in every process, `history --tree` shows it once with the processes it
reached, `revert --tree` reverts that patch everywhere (per-process ids are
not shared), and a tree whose new workers import from disk is told when disk
and live code differ after a revert or a failed apply."""
import os
import re
import shutil
import signal
import tempfile
import unittest

from harness import PreforkServer, interpreters, pyhot, wait_for, write_whole

LABEL = re.compile(r"\bt-[0-9a-f]{8}\b")


class TreeFixture(unittest.TestCase):
    """Workers publish what `work` and `other` answer; SIGUSR1 forks one more."""
    python = None
    modules = "work,other"
    preload = True

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-treepatch-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write("work.py", "def answer():\n    return 1\n\nclass Shape:\n    pass\n")
        self.write("other.py", "def answer():\n    return 'a'\n")
        self.server = PreforkServer(self.python, self.dir, self.modules, preload=self.preload)
        self.addCleanup(self.server.stop)
        self.master = self.server.process
        self.children = self.server.children
        self.answers = self.server.answers

    def write(self, name, text):
        return write_whole(os.path.join(self.dir, name), text)

    def wait_answers(self, expected, what, children=None):
        wait_for(lambda: len(self.children()) >= 2 and
                 all(v == expected for v in self.answers(children).values()), 15, what)


class TreeLabelTest(TreeFixture):

    def test_one_label_across_the_tree_and_revert_by_it(self):
        self.wait_answers("1 a", "two workers answering")
        first, second = self.children()[:2]
        # A patch of `other` in the first worker alone: its patch 1 is not
        # the master's patch 1.
        self.write("other.py", "def answer():\n    return 'b'\n")
        own = pyhot("reload", first, os.path.join(self.dir, "other.py"), timeout=60)
        self.assertEqual(own.returncode, 0, own.stdout + own.stderr)
        self.assertIn("`pyhot revert %d 1` undoes it." % first, own.stdout)
        self.wait_answers("1 b", "the first worker's own patch", [first])

        self.write("work.py", "def answer():\n    return 2\n\nclass Shape:\n    pass\n")
        done = pyhot("reload", self.master.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        labels = set(LABEL.findall(done.stdout))
        self.assertEqual(len(labels), 1, done.stdout)
        label = labels.pop()
        self.assertIn("Patch %s: `pyhot revert %d %s --tree` undoes it in every process." %
                      (label, self.master.pid, label), done.stdout)
        self.assertNotIn("`pyhot revert %d " % first, done.stdout)  # no per-process hint under --tree
        self.wait_answers("2 a", "the second worker on the patch", [second])
        self.wait_answers("2 b", "the first worker on both patches", [first])

        # A worker forked now inherits the patch, with its label.
        self.master.send_signal(signal.SIGUSR1)
        third = wait_for(lambda: self.children()[2:3], 10, "a third worker")[0]
        self.wait_answers("2 a", "the third worker on the patch", [third])

        history = pyhot("history", self.master.pid, "--tree", timeout=60)
        self.assertEqual(history.returncode, 0, history.stdout + history.stderr)
        lines = [line for line in history.stdout.splitlines() if line.startswith(label)]
        self.assertEqual(len(lines), 1, history.stdout)
        for pid in (self.master.pid, first, second, third):
            self.assertIn("%d #" % pid, lines[0])
        self.assertIn("%d #2" % first, lines[0])  # its own id for the shared patch
        self.assertIn("#1  ", history.stdout)     # the first worker's own patch, listed under it

        # `revert --tree 1` means the master's patch 1, the tree's label:
        # the first worker's own patch 1 (of `other`) stays.
        reverted = pyhot("revert", self.master.pid, "1", "--tree", timeout=60)
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        self.assertEqual(reverted.stdout.count("Reverted patch %s" % label), 4, reverted.stdout)
        self.wait_answers("1 a", "the other workers back on the old code", [second, third])
        self.wait_answers("1 b", "the first worker keeping its own patch", [first])

        again = pyhot("revert", self.master.pid, label, "--tree", timeout=60)
        self.assertEqual(again.returncode, 1, again.stdout + again.stderr)
        self.assertIn("already reverted", again.stdout)

        # A single process's revert by id still works.
        single = pyhot("revert", first, "1", timeout=60)
        self.assertEqual(single.returncode, 0, single.stdout + single.stderr)
        self.assertIn("Reverted patch 1: answer", single.stdout)
        self.wait_answers("1 a", "the first worker back on the old code", [first])

    def test_revert_tree_of_a_patch_without_label_says_how_to_undo_it(self):
        self.wait_answers("1 a", "two workers answering")
        self.write("other.py", "def answer():\n    return 'c'\n")
        own = pyhot("reload", self.master.pid, os.path.join(self.dir, "other.py"), timeout=60)
        self.assertEqual(own.returncode, 0, own.stdout + own.stderr)
        reverted = pyhot("revert", self.master.pid, "1", "--tree", timeout=60)
        self.assertEqual(reverted.returncode, 1, reverted.stdout + reverted.stderr)
        self.assertIn("no tree-wide label", reverted.stderr)
        self.assertIn("`pyhot revert %d 1`" % self.master.pid, reverted.stderr)


class LazyImportNoteTest(TreeFixture):
    """The master never imports `work` (gunicorn without --preload): each
    worker imports it from disk after the fork."""
    preload = False
    modules = "work"

    def test_revert_says_new_workers_import_the_edit_from_disk(self):
        self.wait_answers("1", "two workers answering")
        path = self.write("work.py", "def answer():\n    return 2\n\nclass Shape:\n    pass\n")
        done = pyhot("reload", self.master.pid, path, "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("Note:", done.stdout)
        self.wait_answers("2", "the workers on the patch")
        reverted = pyhot("revert", self.master.pid, "--tree", timeout=60)
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        self.assertIn("== process %d: never had the patch" % self.master.pid, reverted.stdout)
        notes = [line for line in reverted.stdout.splitlines() if line.startswith("Note:")]
        self.assertEqual(len(notes), 1, reverted.stdout)
        self.assertIn("import %s from disk, which still differs from the reverted code" % os.path.realpath(path),
                      notes[0])
        self.wait_answers("1", "the workers back on the old code")

    def test_failed_apply_says_new_workers_would_run_the_edit(self):
        self.wait_answers("1", "two workers answering")
        # A first patch records the live text (without it class bases are
        # not compared).
        path = self.write("work.py", "def answer():\n    return 2\n\nclass Shape:\n    pass\n")
        first = pyhot("reload", self.master.pid, path, "--tree", timeout=60)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        # A new base class cannot be applied live: every worker refuses it.
        self.write("work.py", "def answer():\n    return 3\n\nclass Shape(Exception):\n    pass\n")
        done = pyhot("reload", self.master.pid, path, "--tree", timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        notes = [line for line in done.stdout.splitlines() if line.startswith("Note:")]
        self.assertEqual(len(notes), 1, done.stdout)
        self.assertIn("import %s from disk" % os.path.realpath(path), notes[0])
        self.assertNotIn("undoes it", done.stdout)


for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        for base in (TreeLabelTest, LazyImportNoteTest):
            name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
            globals()[name] = type(name, (base,), {"python": path})
del TreeFixture, TreeLabelTest, LazyImportNoteTest, base

if __name__ == "__main__":
    unittest.main()
