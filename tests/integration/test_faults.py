"""Faults during commands (issue 9, fault-injection suite): pyhot killed with
SIGKILL at random instants during a large reload, the target killed during
one, two CLIs at once against one target, a fork after an attach, and a
target that exits while a read command waits for its agent.

What a user would notice is checked: a module is all-old or all-new, never
mixed; the next command works; a target that died gets one line and exit 1;
concurrent commands both end as they would alone; a forked child runs on.
(test_attach_faults kills pyhot during the attach itself.)

PYHOT_FAULT_ROUNDS sets the rounds of each randomized test per interpreter
(default 6); more is a longer run on demand.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PYHOT, TargetTestCase, for_each_interpreter, pyhot, read_line, wait_for  # noqa: E402

FUNCTIONS = 1500  # a reload that takes long enough to be killed inside


def rounds():
    return int(os.environ.get("PYHOT_FAULT_ROUNDS", "6"))


def big_module(version):
    """FUNCTIONS functions that all return `version`, plus one that names it."""
    parts = ["def f%d(x):\n    return %d + x * 0\n\n" % (i, version) for i in range(FUNCTIONS)]
    parts.append("def versions():\n    return sorted({f(0) for f in [%s]})\n" % ", ".join(
        "f%d" % i for i in range(FUNCTIONS)))
    return "".join(parts)


class LargeReloadFaults(TargetTestCase):
    def reload_seconds(self, target, version):
        """Applies `version` in full (no kill) and returns how long it took."""
        target.write("big.py", big_module(version))
        started = time.monotonic()
        done = pyhot("reload", target.pid, target.path("big.py"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("big.versions()"), "[%d]" % version)
        return time.monotonic() - started

    def test_sigkill_of_pyhot_during_a_large_reload_leaves_all_old_or_all_new(self):
        target = self.start({"big.py": big_module(0)}, ["big"])
        seconds = self.reload_seconds(target, 1)
        rng = random.Random(FUNCTIONS)
        live = 1
        outcomes = {"old": 0, "new": 0}
        for round_ in range(rounds()):
            version = live + 1
            target.write("big.py", big_module(version))
            killed = subprocess.Popen([PYHOT, "reload", str(target.pid), target.path("big.py")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, seconds * 1.2))
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            # An apply the agent received whole is applied whole (maybe after
            # pyhot died); one cut off is not applied: never anything between.
            # Looked at only once no apply can still be running: versions()
            # calls the functions one by one, so a reading taken while the
            # killed pyhot's apply commits would see old functions before the
            # commit and new ones after it, however atomic the commit is.
            both = ("[%d]" % live, "[%d]" % version)
            # Requests are served one at a time: once this one is answered, no
            # apply of the killed pyhot is still running.
            done = pyhot("history", target.pid)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            seen = target.call("big.versions()")
            self.assertIn(seen, both, "round %d: a mixed module" % round_)
            if seen == "[%d]" % version:
                live = version
                outcomes["new"] += 1
            else:
                outcomes["old"] += 1
            # The next command works: a whole reload of the next version.
            live += 1
            self.reload_seconds(target, live)
        done = pyhot("history", target.pid)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        sys.stderr.write("\n  %s: reload %.2f s; after the kill %s\n" % (self.python_label, seconds, outcomes))

    def test_target_killed_during_a_large_reload_is_one_line_and_exit_1(self):
        rng = random.Random(FUNCTIONS + 1)
        messages = set()
        for round_ in range(max(2, rounds() // 2)):
            target = self.start({"big.py": big_module(0)}, ["big"])
            seconds = self.reload_seconds(target, 1)
            target.write("big.py", big_module(2))
            reload = subprocess.Popen([PYHOT, "reload", str(target.pid), target.path("big.py")],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0, seconds))
            os.killpg(target.pid, signal.SIGKILL)
            out, err = reload.communicate(timeout=60)
            if reload.returncode == 0:
                continue  # done before the kill
            self.assertEqual(reload.returncode, 1, out + err)
            lines = (out + err).strip().splitlines()
            self.assertNotIn("Located file path:", out + err)
            error = lines
            self.assertEqual(len(error), 1, out + err)
            self.assertNotIn("pipe", out + err)
            self.assertNotIn("closed the connection", out + err)
            self.assertRegex(error[0], r"process %d exited during the reload|no process with pid %d"
                             % (target.pid, target.pid), "round %d" % round_)
            messages.add(error[0].split(":")[-1].strip())
        self.assertTrue(messages, "every reload finished before the kill")

    def test_two_clis_at_once_both_end_correctly(self):
        files = {"big.py": big_module(0), "small.py": "def g():\n    return 0\n"}
        target = self.start(files, ["big", "small"])
        self.reload_seconds(target, 1)
        for round_ in range(rounds()):
            target.write("big.py", big_module(round_ + 2))
            target.write("small.py", "def g():\n    return %d\n" % (round_ + 2))
            results = {}

            def run(name, *args):
                results[name] = pyhot(*args)

            threads = [threading.Thread(target=run, args=("big", "reload", target.pid, target.path("big.py"))),
                       threading.Thread(target=run, args=("small", "reload", target.pid, target.path("small.py"))),
                       threading.Thread(target=run, args=("history", "history", target.pid))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            for name, done in results.items():
                self.assertEqual(done.returncode, 0, "%s: %s%s" % (name, done.stdout, done.stderr))
            self.assertEqual(len(results), 3)
            self.assertTrue(results["big"].stdout.startswith("Reload is done successfully."), results["big"].stdout)
            self.assertTrue(results["small"].stdout.startswith("Reload is done successfully."),
                            results["small"].stdout)
            self.assertEqual(target.call("big.versions()"), "[%d]" % (round_ + 2))
            self.assertEqual(target.call("small.g()"), str(round_ + 2))
        history = pyhot("history", target.pid, "--json", check=0).stdout
        self.assertEqual(history.count('"small"'), rounds(), history)


# A program that exits slowly (an exit handler of its own, registered before
# any agent) when it gets SIGUSR1; `hold` keeps a reload's default
# expression, and so the agent, busy until the program has exited.
EXITER = r'''
import atexit, os, signal, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slow
atexit.register(time.sleep, 1.5)
leave = threading.Event()
signal.signal(signal.SIGUSR1, lambda *a: leave.set())
print('ready', flush=True)
while not leave.is_set():
    time.sleep(0.01)
'''

HOLD = '''
import os, time
def hold(directory):
    open(os.path.join(directory, 'inside'), 'w').close()
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(directory, 'release')) and time.monotonic() < deadline:
        time.sleep(0.01)
'''

# poll, ppoll (x86_64), ppoll (aarch64): the CLI waits for the agent's reply.
POLL_SYSCALLS = {"7", "271", "73"}


class ExitDuringARequest(TargetTestCase):
    def test_a_read_command_whose_target_exits_says_so(self):
        # The agent is busy (a reload's default expression holds it), so
        # `history` waits in its socket's queue; the target starts to exit,
        # the agent's exit handler closes the socket (the queued connection
        # is reset) and the program's own exit handler takes 1.5 s more.
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="pyhot-exiting-")
        self.addCleanup(shutil.rmtree, directory, True)
        for name, text in (("target.py", EXITER), ("hold.py", HOLD), ("slow.py", "def f(x=1):\n    return x\n")):
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        target = self.spawn([self.python, "target.py"], cwd=directory, stdout=subprocess.PIPE, text=True)
        self.assertEqual(read_line(target).strip(), "ready")
        pyhot("history", target.pid, check=0)  # attached: the agent's exit handler runs before the program's
        with open(os.path.join(directory, "slow.py"), "w") as f:
            f.write("import hold\ndef f(x=hold.hold(%r)):\n    return x\n" % directory)
        reload = self.spawn([PYHOT, "reload", str(target.pid), os.path.join(directory, "slow.py")])
        wait_for(lambda: os.path.exists(os.path.join(directory, "inside")), 20, "the reload to hold the agent")
        history = self.spawn([PYHOT, "history", str(target.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)

        def waits_for_a_reply():
            with open("/proc/%d/syscall" % history.pid) as f:
                return f.read().split()[0] in POLL_SYSCALLS
        wait_for(waits_for_a_reply, 20, "history to wait for the agent's reply")
        target.send_signal(signal.SIGUSR1)
        wait_for(lambda: not any(name.startswith("%d." % target.pid) for directory_ in socket_directories()
                                 for name in os.listdir(directory_)), 20, "the agent to close its socket")
        # The hold is never released: however the agent had taken `history`
        # (queued, or accepted and waiting its turn), the process ends under it.
        out, err = history.communicate(timeout=30)
        self.assertEqual(history.returncode, 1, out + err)
        self.assertEqual(err, "pyhot: process %d exited during the history request\n" % target.pid)
        self.assertEqual(out, "")
        reload.wait(30)


def socket_directories():
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = ([runtime + "/pyhot"] if runtime else []) + ["/tmp/pyhot-%d" % os.getuid()]
    return [path for path in candidates if os.path.isdir(path)]


FORKER = r'''
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import app
go, release = sys.argv[1], sys.argv[2]
print('ready', os.getpid(), flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
child = os.fork()
if child == 0:
    print('child', os.getpid(), app.price(2), flush=True)
    while not os.path.exists(release):
        time.sleep(0.01)
    print('child done', app.price(2), flush=True)
    sys.stdout.flush()
    os._exit(0)
_, status = os.waitpid(child, 0)
print('parent', app.price(2), 'child status', status, flush=True)
'''


class ForkAfterAttach(TargetTestCase):
    def test_a_child_forked_after_an_attach_runs_on(self):
        directory = self.enterContext_tmp()
        with open(os.path.join(directory, "app.py"), "w") as f:
            f.write("def price(x):\n    return x * 2\n")
        with open(os.path.join(directory, "forker.py"), "w") as f:
            f.write(FORKER)
        go, release = os.path.join(directory, "go"), os.path.join(directory, "release")
        log_path = os.path.join(directory, "out.txt")
        log = open(log_path, "w")
        self.addCleanup(log.close)
        err_path = os.path.join(directory, "err.txt")
        err = open(err_path, "w")
        self.addCleanup(err.close)
        parent = self.spawn([self.python, os.path.join(directory, "forker.py"), go, release],
                            stdout=log, stderr=err, cwd=directory)

        def lines():
            with open(log_path) as f:
                return [line.split() for line in f.read().splitlines(True) if line.endswith("\n")]

        wait_for(lambda: any(line[0] == "ready" for line in lines()), 20, "the target")
        # Attach (inject the agent) and patch, then let it fork.
        with open(os.path.join(directory, "app.py"), "w") as f:
            f.write("def price(x):\n    return x * 3\n")
        done = pyhot("reload", parent.pid, os.path.join(directory, "app.py"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        open(go, "w").close()
        child_line = wait_for(lambda: [line for line in lines() if line[0] == "child" and line[1] != "done"], 20,
                              "the child")[0]
        child = int(child_line[1])
        self.assertEqual(child_line[2], "6")
        # The child is a process pyhot can work on as well.
        done = pyhot("history", child)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        open(release, "w").close()
        last = wait_for(lambda: [line for line in lines() if line[0] == "parent"], 20, "the parent's report")[0]
        self.assertEqual(last, ["parent", "6", "child", "status", "0"])
        self.assertIn(["child", "done", "6"], lines())
        parent.wait(20)
        self.assertEqual(parent.returncode, 0)
        with open(err_path) as f:
            errors = f.read()
        # 3.12+ warns at a fork of a process with threads, and the agent's is
        # one (a DeprecationWarning, shown when __main__ forks): nothing else.
        warning = "DeprecationWarning: This process (pid=%d) is multi-threaded, use of fork()" % parent.pid
        errors = "".join(line for line in errors.splitlines(True)
                         if warning not in line and line.strip() != "child = os.fork()")
        self.assertEqual(errors, "")
        done = pyhot("history", child)
        self.assertEqual(done.returncode, 1)

    def enterContext_tmp(self):
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="pyhot-fork-")
        self.addCleanup(shutil.rmtree, directory, True)
        return directory


class TargetKilledDuringAReload(TargetTestCase):
    """The target killed while its agent runs the reload's code (a changed
    default expression that says it runs, then waits): the moment is one
    the test waits for, not a guess."""

    def test_the_reload_says_in_one_line_that_the_process_exited(self):
        target = self.start({"app.py": "def price(x):\n    return x * 2\n"}, ["app"])
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        running = target.path("default_running")
        target.write("app.py", "import time\n\n\ndef price(x, _=(open(%r, 'w').close(), time.sleep(60))):\n"
                     "    return x * 3\n" % running)
        reload = self.spawn([PYHOT, "reload", str(target.pid), target.path("app.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(running), 30, "the reload's default expression to run in the target")
        self.assertIsNone(reload.poll(), "the reload ended before the target was killed")
        os.killpg(target.pid, signal.SIGKILL)
        out, err = reload.communicate(timeout=60)
        self.assertEqual(reload.returncode, 1, out + err)
        self.assertEqual(err, "")
        self.assertEqual(out.splitlines(), ["Error: process %d exited during the reload of %s; nothing is left to patch"
                                            " (started again, it imports the file as it is now)."
                                            % (target.pid, os.path.realpath(target.path("app.py")))], out)


for_each_interpreter(LargeReloadFaults, globals())
for_each_interpreter(TargetKilledDuringAReload, globals())
for_each_interpreter(ForkAfterAttach, globals())
for_each_interpreter(ExitDuringARequest, globals())
del LargeReloadFaults, ForkAfterAttach, ExitDuringARequest

if __name__ == "__main__":
    unittest.main()
