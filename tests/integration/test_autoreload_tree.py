"""`autoreload --tree` and `run --autoreload` over a pre-fork server that
recycles its workers: after a save is reported, every request is answered
by the new code, whichever worker takes it, and no request fails."""
import functools
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import PYHOT, Load, ask_line_server, interpreters, kill_group, spawn, wait_for
from harness import RECYCLING_SERVER as SERVER


class AutoreloadTreeTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-autotree-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write_work(1)
        with open(os.path.join(self.dir, "server.py"), "w") as handle:
            handle.write(SERVER)

    def write_work(self, value):
        # Written whole and renamed: a worker importing it never sees half a file.
        path = os.path.join(self.dir, "work.py")
        with open(path + ".tmp", "w") as handle:
            handle.write("def answer():\n    return %d\n" % value)
        os.replace(path + ".tmp", path)

    def start(self, command, log_name, preload, max_requests):
        log_path = os.path.join(self.dir, log_name)
        log = open(log_path, "w")
        self.addCleanup(log.close)
        env = dict(os.environ, PRELOAD="1" if preload else "0", MAX_REQUESTS=str(max_requests),
                   PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        process = spawn(command, cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, process)
        return process, log_path

    def log_text(self, path):
        with open(path) as handle:
            return handle.read()

    def port_in(self, path):
        for line in self.log_text(path).splitlines(True):
            if line.startswith("port ") and line.endswith("\n"):
                return int(line.split()[1])
        return None

    def watching_work(self, path):
        # The banner comes before the child has imported its modules; the
        # file is watched once a line names it.
        return any("watching" in line and "work.py" in line for line in self.log_text(path).splitlines())

    def tree_lines(self, path):
        return [line for line in self.log_text(path).splitlines() if "processes of the tree of" in line]

    def save_and_check(self, log_path, load, value):
        before = len(self.tree_lines(log_path))
        self.write_work(value)
        try:
            # Generous: a save over a recycling tree attaches to every new
            # worker on a loaded machine.
            wait_for(lambda: len(self.tree_lines(log_path)) > before, 150, "the save applied over the tree")
        except AssertionError as error:
            raise AssertionError("%s\n%s" % (error, self.log_text(log_path)))
        line = self.tree_lines(log_path)[-1]
        reached, alive = map(int, re.search(r" in (\d+) of (\d+) processes", line).groups())
        self.assertEqual(reached, alive, self.log_text(log_path))
        self.assertNotIn("of 0 processes", line, self.log_text(log_path))
        stale = []
        for _ in range(30):
            pid, answer = load.ask()
            if answer != str(value):
                stale.append((pid, answer))
        self.assertEqual(stale, [], self.log_text(log_path))
        return line

    def test_autoreload_tree_over_a_master_without_the_module(self):
        # No recycling: workers that imported the module from disk must be
        # patched, not replaced by workers importing the new file.
        master, server_log = self.start([self.python, "server.py"], "server.log", preload=False,
                                        max_requests=1000000)
        port = wait_for(lambda: self.port_in(server_log), 20, "the server to listen")
        load = Load(functools.partial(ask_line_server, port))
        self.addCleanup(load.stop)
        wait_for(lambda: load.ask()[1] == "1", 10, "the server to answer")
        watcher, log_path = self.start([PYHOT, "autoreload", str(master.pid), "--tree"], "autoreload.log",
                                       preload=False, max_requests=1000000)
        wait_for(lambda: self.watching_work(log_path), 60, "autoreload to watch work.py")
        for value in (2, 3):
            line = self.save_and_check(log_path, load, value)
            self.assertIn("in 3 of 3 processes", line)
            self.assertIn("1 without the module", line)  # the master
        self.assertIn("swapped work.answer", self.log_text(log_path))
        self.assertEqual(load.failures, 0, "requests failed while the tree was patched")
        self.assertIsNone(watcher.poll(), self.log_text(log_path))

    def test_run_autoreload_over_a_preloading_master(self):
        child, log_path = self.start([PYHOT, "run", "--autoreload", "--", self.python, "server.py"], "run.log",
                                     preload=True, max_requests=40)
        port = wait_for(lambda: self.port_in(log_path), 30, "the server to listen")
        load = Load(functools.partial(ask_line_server, port))
        self.addCleanup(load.stop)
        wait_for(lambda: load.ask()[1] == "1", 10, "the server to answer")
        wait_for(lambda: self.watching_work(log_path), 60, "autoreload to watch work.py")
        for value in (2, 3):
            line = self.save_and_check(log_path, load, value)
            self.assertNotIn("without the module", line)
        self.assertEqual(load.failures, 0, "requests failed while the tree was patched")
        self.assertIsNone(child.poll(), self.log_text(log_path))


for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        name = "AutoreloadTreeTest_" + label.replace(".", "_").replace("-", "_")
        globals()[name] = type(name, (AutoreloadTreeTest,), {"python": path})
del AutoreloadTreeTest

if __name__ == "__main__":
    unittest.main()
