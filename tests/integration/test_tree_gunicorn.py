"""`reload --tree` over a real gunicorn (Debian's package) that recycles its
sync workers with --max-requests, with --preload and without: after each
command every request is answered by the new code and none failed.
Skipped, saying which package is missing, when gunicorn is not installed."""
import http.client
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (GUNICORN_APP, Load, ask_http_server, free_port, gunicorn_installed, kill_group, pyhot, spawn,
                     wait_for, write_whole)

ROUNDS = int(os.environ.get("PYHOT_TREE_ROUNDS", "3"))


@unittest.skipUnless(gunicorn_installed(), "gunicorn not found for /usr/bin/python3: install Debian's gunicorn "
                                           "package (scripts/setup does)")
class GunicornTreeTest(unittest.TestCase):
    preload = False
    max_requests = 60
    history_too = False  # `history --tree` after each reload, over workers that are exiting

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-gunicorn-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write_work(1)
        write_whole(os.path.join(self.dir, "app.py"), GUNICORN_APP)
        self.port = free_port()
        command = ["/usr/bin/python3", "-m", "gunicorn", "-w", "3", "--max-requests", str(self.max_requests),
                   "--max-requests-jitter", "0", "-b", "127.0.0.1:%d" % self.port, "app:application"]
        if self.preload:
            command.insert(3, "--preload")
        self.log = open(os.path.join(self.dir, "gunicorn.log"), "w")
        self.addCleanup(self.log.close)
        # Workers are forks in the master's group: kill_group ends them all.
        self.master = spawn(command, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.addCleanup(kill_group, self.master)
        wait_for(self.answers_one, 30, "gunicorn to answer")
        self.ask = lambda: ask_http_server(self.port)
        # A refused, reset or non-200 request fails.
        self.load = Load(self.ask, failures_are=(OSError, http.client.HTTPException))
        self.addCleanup(self.load.stop)

    def answers_one(self):
        if self.master.poll() is not None:
            raise AssertionError("gunicorn exited early")
        try:
            return ask_http_server(self.port)[1] == "1"
        except (OSError, http.client.HTTPException):
            return False

    def write_work(self, value):
        write_whole(os.path.join(self.dir, "work.py"), "def answer():\n    return %d\n" % value)

    def test_every_request_after_each_reload_runs_the_patch(self):
        for round_number in range(2, 2 + ROUNDS):
            self.write_work(round_number)
            done = pyhot("reload", self.master.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=120)
            self.assertEqual(done.returncode, 0, "round %d:\n%s%s" % (round_number, done.stdout, done.stderr))
            stale = []
            for _ in range(30):
                pid, answer = self.ask()
                if answer != str(round_number):
                    stale.append((pid, answer))
            self.assertEqual(stale, [], "round %d:\n%s" % (round_number, done.stdout))
            if self.history_too:
                history = pyhot("history", self.master.pid, "--tree", timeout=120)
                self.assertEqual(history.returncode, 0, "round %d:\n%s%s" % (round_number, history.stdout,
                                                                             history.stderr))
        self.assertEqual(self.load.failures, 0, "requests failed while the tree was patched: %s" % self.load.errors[:3])


class PreloadGunicornTreeTest(GunicornTreeTest):
    preload = True


class AggressiveGunicornTreeTest(GunicornTreeTest):
    """Without --preload, every worker recycled after 20 requests: all the
    workers that had the module can exit during the command while their
    replacements have not imported it yet (issue 11: 1 round in 3 exited 1)."""
    max_requests = 20
    history_too = True


if __name__ == "__main__":
    unittest.main()
