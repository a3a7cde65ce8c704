"""--tree over a pre-fork server that recycles its workers under load: after
each command every live worker runs the patch (workers forked during the
command included), workers that exit meanwhile are not failures, and a
master that never imported the module does not fail the command."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import RECYCLING_SERVER, Load, ask_line_server, interpreters, kill_group, pyhot, spawn, wait_for, write_whole

ROUNDS = int(os.environ.get("PYHOT_TREE_ROUNDS", "4"))


class RecyclingTreeTest(unittest.TestCase):
    python = None
    preload = True
    # Connections a worker serves before it exits: with preload a worker
    # forked from the patched master already runs the patch, so recycling
    # can be as fast as the load makes it.
    max_requests = 15
    boot_seconds = 0

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-recycle-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write_work(1)
        write_whole(os.path.join(self.dir, "server.py"), RECYCLING_SERVER)
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "w")
        self.addCleanup(self.log.close)
        env = dict(os.environ, PRELOAD="1" if self.preload else "0", MAX_REQUESTS=str(self.max_requests),
                   BOOT_SECONDS=str(self.boot_seconds), PYTHONDONTWRITEBYTECODE="1")
        # Workers are forks in the master's group: kill_group ends them all.
        self.master = spawn([self.python, "server.py"], cwd=self.dir, env=env, stdout=self.log,
                            stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, self.master)
        self.port = wait_for(self.port_line, 20, "the server to listen")
        self.ask = lambda: ask_line_server(self.port)
        self.load = Load(self.ask)
        self.addCleanup(self.load.stop)

    def port_line(self):
        if self.master.poll() is not None:
            raise AssertionError("the server exited early")
        with open(self.log_path) as handle:
            for line in handle.read().splitlines(True):
                if line.startswith("port ") and line.endswith("\n"):
                    return int(line.split()[1])
        return None

    def write_work(self, value):
        # Written whole and renamed: a worker importing it never sees half a file.
        write_whole(os.path.join(self.dir, "work.py"), "def answer():\n    return %d\n" % value)

    def stale_answers(self, expected, samples=30):
        """Asks fresh requests after the command returned: every one must be
        answered by the new code, whichever worker takes it."""
        stale = []
        for _ in range(samples):
            pid, answer = self.ask()
            if answer != str(expected):
                stale.append((pid, answer))
        return stale

    def test_every_worker_runs_the_patch_after_each_command(self):
        wait_for(lambda: self.ask()[1] == "1", 10, "the server to answer")
        for round_number in range(2, 2 + ROUNDS):
            self.write_work(round_number)
            done = pyhot("reload", self.master.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=120)
            self.assertEqual(done.returncode, 0, "round %d:\n%s%s" % (round_number, done.stdout, done.stderr))
            self.assertEqual(self.stale_answers(round_number), [], "round %d:\n%s" % (round_number, done.stdout))
        self.assertEqual(self.load.failures, 0, "requests failed while the tree was patched: %s" % self.load.errors[:3])


class LazyImportTreeTest(RecyclingTreeTest):
    """The master never imports the module (gunicorn without --preload): the
    workers that have it are patched, the master is skipped with a note."""
    preload = False
    # Every new worker must be attached to before pyhot can tell it imported
    # the new text: workers live long enough for that (still several per round).
    max_requests = 300

    def test_every_worker_runs_the_patch_after_each_command(self):
        super().test_every_worker_runs_the_patch_after_each_command()

    def test_master_without_the_module_is_skipped_with_a_note(self):
        wait_for(lambda: self.ask()[1] == "1", 10, "the server to answer")
        self.write_work(7)
        done = pyhot("reload", self.master.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("== process %d: does not have the module loaded; skipped" % self.master.pid, done.stdout)


class AggressiveLazyImportTreeTest(LazyImportTreeTest):
    """Without --preload and with workers recycled every 20 requests
    (gunicorn --max-requests 20): every worker that had the module may exit
    during the command while their replacements have not imported it yet.
    The command is done when the file they will import holds the patch."""
    max_requests = 20
    boot_seconds = 0.2  # a new worker is listed well before it has imported the module, as gunicorn's are


# The oldest, the newest, and the one linked into its executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        for base in (RecyclingTreeTest, LazyImportTreeTest, AggressiveLazyImportTreeTest):
            name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
            globals()[name] = type(name, (base,), {"python": path})
del RecyclingTreeTest, LazyImportTreeTest, AggressiveLazyImportTreeTest, base

if __name__ == "__main__":
    unittest.main()
