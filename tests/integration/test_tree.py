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
        # ... and is confirmed, not patched again, as every other process.
        again = pyhot("reload", self.parent.pid, os.path.join(self.dir, "work.py"), "--tree", timeout=60)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertIn("== process %d\n" % third, again.stdout)
        self.assertNotIn("Reload is done successfully.", again.stdout)
        self.assertIn("4 of 4 processes run the new code (4 already did).", again.stdout)

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
    open("ready-%d" % os.getpid(), "w").close()
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
        # Until the worker has its handler, SIGUSR2 would kill it outright (the default action).
        wait_for(lambda: os.path.exists(os.path.join(directory, "ready-%d" % leaving)), 10,
                 "the worker to handle SIGUSR2")
        os.kill(leaving, signal.SIGUSR2)
        wait_for(lambda: os.path.exists(os.path.join(directory, "finalizing-%d" % leaving)), 10,
                 "the worker to be finalizing")
        write_whole(os.path.join(directory, "work.py"), "def answer():\n    return 2\n")
        done = pyhot("reload", master.pid, os.path.join(directory, "work.py"), "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("== process %d: exited during the command (not counted)" % leaving, done.stdout)
        self.assertIn("== process %d\n" % staying, done.stdout)


# A master without `work` (gunicorn without --preload) and one worker that
# imported it and exits as soon as its agent decodes a request (recycled
# mid-command: the agent calls json.loads on each); the master then forks a
# replacement that has not imported `work` yet (it would, from disk, on its
# first request).
HOLDER_EXITS = r"""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

def exit_at_the_first_request(*args, **kwargs):
    os._exit(0)

def holder():
    import work
    json.loads = exit_at_the_first_request
    while True:
        time.sleep(0.02)

def latecomer():
    while True:
        time.sleep(0.02)

def fork(role):
    pid = os.fork()
    if pid == 0:
        try:
            role()
        finally:
            os._exit(0)
    return pid

def publish(name, text):
    with open(name + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(name + ".tmp", name)

holder_pid = fork(holder)
publish("holder.txt", str(holder_pid))
while os.waitpid(holder_pid, os.WNOHANG)[0] == 0:
    time.sleep(0.02)
publish("latecomer.txt", str(fork(latecomer)))
while True:
    time.sleep(0.02)
"""


def start_server(test, prefix, server):
    """A directory with work.py (answer() returns 1) and the server, which
    runs there until the test ends: (directory, work.py's path, master)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    test.addCleanup(shutil.rmtree, directory, True)
    work = write_whole(os.path.join(directory, "work.py"), "def answer():\n    return 1\n")
    write_whole(os.path.join(directory, "server.py"), server)
    master = spawn([test.python, "server.py"], cwd=directory)
    test.addCleanup(kill_group, master)
    return directory, work, master


def published_text(directory, name):
    """What the server published as `name` (written whole), or None yet."""
    try:
        with open(os.path.join(directory, name)) as handle:
            return handle.read()
    except OSError:
        return None


class HolderExitsTreeTest(unittest.TestCase):
    """Every process that had the module exits during `reload --tree`; the
    ones alive have not imported it and will import the file, which holds
    the applied text: done, with a note that says so (issue 11)."""
    python = None

    def test_a_tree_whose_only_holders_exited_is_done(self):
        directory, work, master = start_server(self, "pyhot-holders-", HOLDER_EXITS)

        def published(name):
            text = published_text(directory, name)
            return int(text) if text else None
        holder = wait_for(lambda: published("holder.txt"), 10, "the worker")
        write_whole(work, "def answer():\n    return 2\n")
        done = pyhot("reload", master.pid, work, "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        latecomer = published("latecomer.txt")
        self.assertIn("== process %d: exited during the command (not counted)" % holder, done.stdout)
        self.assertIn("== process %d: does not have the module loaded; skipped" % master.pid, done.stdout)
        self.assertIn("== process %d: does not have the module loaded; skipped" % latecomer, done.stdout)
        self.assertIn("Note: every process that had the module exited during the command; the ones alive now have "
                      "not imported it and will import %s from disk, which holds the text this command applies.\n"
                      % work, done.stdout)
        self.assertNotIn("Patch ", done.stdout, "no process was patched: there is nothing to undo")


# A master with `work` and two workers; the first worker starts to exit as
# a history request reaches its agent: it shuts every socket it has (its
# agent's too, as a server closing down does: the request's connection
# breaks while the socket's file is still there) and ends 1.5 s later. The
# request is seen where the agent decodes it (it calls json.loads).
EXITS_ON_HISTORY = r"""
import json, os, socket, stat, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import work
leaving = []
decode = json.loads

def loads(text, *args, **kwargs):
    value = decode(text, *args, **kwargs)
    if leaving and isinstance(value, dict) and value.get("op") == "history":
        for name in os.listdir("/proc/self/fd"):
            try:
                if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                    sock = socket.socket(fileno=int(name))
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.detach()
            except OSError:
                pass
        time.sleep(1.5)
        os._exit(0)
    return value

json.loads = loads
children = []
for index in range(2):
    pid = os.fork()
    if pid == 0:
        leaving[:] = [True] if index == 0 else []
        while True:
            time.sleep(0.02)
    children.append(pid)
with open("children.tmp", "w") as handle:
    handle.write(" ".join(map(str, children)))
os.replace("children.tmp", "children.txt")
while True:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass
    time.sleep(0.02)
"""


class HistoryExitTreeTest(unittest.TestCase):
    """A worker that exits during `history --tree` is reported as such, in
    one line, and is not a failure (issue 11)."""
    python = None

    def test_a_worker_exiting_during_the_history_request(self):
        directory = tempfile.mkdtemp(prefix="pyhot-historyexit-")
        self.addCleanup(shutil.rmtree, directory, True)
        write_whole(os.path.join(directory, "work.py"), "def answer():\n    return 1\n")
        write_whole(os.path.join(directory, "server.py"), EXITS_ON_HISTORY)
        master = spawn([self.python, "server.py"], cwd=directory)
        self.addCleanup(kill_group, master)

        def children():
            try:
                with open(os.path.join(directory, "children.txt")) as handle:
                    return [int(p) for p in handle.read().split()]
            except (OSError, ValueError):
                return None
        leaving, staying = wait_for(children, 10, "two workers")
        done = pyhot("history", master.pid, "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("== process %d: exited during the history request (not counted)\n" % leaving, done.stdout)
        self.assertIn("== process %d\n" % staying, done.stdout)
        self.assertEqual(done.stderr, "")


# A master with `work` and a first worker that exits when pyhot contacts
# it, so that `reload --tree` keeps looking for its replacements. Once the
# master runs the patch it starts, 0.3 s later, a Python child that execs
# (its own interpreter, importing `work` from disk) and, once that one has
# imported it, a plain fork that writes what `work.answer()` gives.
FORKS_AFTER_THE_PATCH = r"""
import json, os, subprocess, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import work

def publish(name, text):
    with open(name + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(name + ".tmp", name)

def exit_at_the_first_request(*args, **kwargs):
    os._exit(0)

leaver = os.fork()
if leaver == 0:
    json.loads = exit_at_the_first_request
    while True:
        time.sleep(0.02)
publish("leaver.txt", str(leaver))
while work.answer() == 1:
    time.sleep(0.01)
time.sleep(0.3)
execed = subprocess.Popen([sys.executable, "-c", "import os, sys, time; sys.path.insert(0, %r); import work; "
                           "open('execed.ready', 'w').close()\nwhile True: time.sleep(0.02)" % here])
while not os.path.exists("execed.ready"):
    time.sleep(0.01)
publish("execed.txt", str(execed.pid))
forked = os.fork()
if forked == 0:
    while True:
        publish("forked.answer", str(work.answer()))
        time.sleep(0.02)
publish("forked.txt", str(forked))
while True:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass
    time.sleep(0.02)
"""


class InheritTreeTest(unittest.TestCase):
    """A process forked after its parent was patched has the patch from its
    birth: `reload --tree` confirms it without contacting it; a child that
    exec'd a new interpreter is contacted (issue 11)."""
    python = None

    def test_a_fork_after_the_patch_inherits_it_and_an_exec_does_not(self):
        directory, work, master = start_server(self, "pyhot-inherit-", FORKS_AFTER_THE_PATCH)

        def published(name):
            return published_text(directory, name)
        leaver = int(wait_for(lambda: published("leaver.txt"), 10, "the first worker"))
        write_whole(work, "def answer():\n    return 2\n")
        done = pyhot("reload", master.pid, work, "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        execed = int(wait_for(lambda: published("execed.txt"), 10, "the exec'd child"))
        forked = int(wait_for(lambda: published("forked.txt"), 10, "the forked child"))
        self.assertIn("== process %d: exited during the command (not counted)" % leaver, done.stdout)
        self.assertIn("== process %d: forked from process %d after it had it (not contacted)\n" % (forked, master.pid),
                      done.stdout)
        # Contacted: listed before or after it imported `work`.
        self.assertRegex(done.stdout, r"== process %d(\n|: does not have the module loaded; skipped\n)" % execed)
        self.assertIn(" forked after it)", done.stdout)
        wait_for(lambda: published("forked.answer") == "2", 10, "the forked child to answer 2")


# Three interpreters keep the suite short: the oldest, the newest, and the
# one whose runtime is linked into the executable.
for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        for base in (TreeTest, SlowExitTreeTest, HolderExitsTreeTest, HistoryExitTreeTest, InheritTreeTest):
            name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
            globals()[name] = type(name, (base,), {"python": path})
del TreeTest, SlowExitTreeTest, HolderExitsTreeTest, HistoryExitTreeTest, InheritTreeTest, base

if __name__ == "__main__":
    unittest.main()
