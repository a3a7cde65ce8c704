"""Bad input gets one clear line, the right exit code (1 refused with nothing
changed, 2 usage) and leaves the target as it was (issue 9, items 9 and 11)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import AGENT_FILE, TargetTestCase, for_each_interpreter, kill_group, pyhot, read_line, spawn, wait_for

APP = {
    "app.py": '''
        def price(x):
            return x * 2


        class Cart:
            def total(self):
                return 3
        ''',
}


class EmptyFileTest(TargetTestCase):
    def test_a_file_with_every_definition_gone_is_refused_unless_asked(self):
        target = self.start(APP, ["app"])
        target.write("app.py", "def price(x):\n    return x * 2\n\n\nclass Cart:\n    def total(self):\n        return 3\n")
        self.assertEqual(pyhot("reload", target.pid, target.path("app.py")).returncode, 0)  # pyhot has seen it
        target.write("app.py", "")  # a tool truncated it and writes it a moment later
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("would delete every definition of app", done.stdout)
        self.assertIn("--allow-empty", done.stdout)
        self.assertEqual(target.call("app.price(2)"), "4")
        self.assertEqual(target.call("app.Cart().total()"), "3")
        done = pyhot("reload", target.pid, target.path("app.py"), "--allow-empty")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("hasattr(app, 'price')"), "False")


OVERSIZED = 61 * 1024 * 1024  # the size that was parsed for 12 minutes before the refusal


def oversize(path):
    """Grows path to OVERSIZED bytes, sparsely: a tail of NULs no reader
    should ever reach (the size alone refuses it)."""
    with open(path, "r+b") as handle:
        handle.truncate(OVERSIZED)


class OversizedFileTest(TargetTestCase):
    """A file over the size pyhot reads is refused up front, by every command
    that reads a Python file: one line naming its size and the limit, exit 1,
    quickly, and nothing sent to the target (issue 9, item 11)."""

    def assert_refused(self, done, path, started, stream="stdout"):
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertLess(time.monotonic() - started, 20, "refused only after reading the file")
        text = getattr(done, stream)
        self.assertIn("'%s' is 61.0 MiB, over the 16 MiB pyhot reads as one Python file" % path, text)
        self.assertIn("split it into smaller modules", text)
        self.assertEqual(len(text.strip().splitlines()), 1, text)

    def test_reload_of_an_oversized_file_attaches_nothing(self):
        target = self.start(APP, ["app"], prepared=False)
        oversize(target.path("app.py"))
        started = time.monotonic()
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assert_refused(done, target.path("app.py"), started)
        listed = json.loads(pyhot("ps", "--json", check=0).stdout)["processes"]
        self.assertEqual([row["agent"] for row in listed if row["pid"] == target.pid], [False], "nothing attached")
        self.assertEqual(target.call("app.price(2)"), "4")

    def test_reload_of_a_module_and_of_a_method_in_an_oversized_file(self):
        target = self.start(APP, ["app"])
        oversize(target.path("app.py"))
        for args in (("app",), ("app", "price"), ("app", "Cart", "total")):
            started = time.monotonic()
            done = pyhot("reload", target.pid, *args)
            self.assert_refused(done, target.path("app.py"), started)
        history = pyhot("history", target.pid, "--json", check=0)
        self.assertEqual(json.loads(history.stdout)["patches"], [], "nothing applied")
        self.assertEqual(target.call("app.price(2)"), "4")

    def test_autoreload_refuses_an_oversized_save(self):
        target = self.start(APP, ["app"])
        oversize(target.path("app.py"))
        started = time.monotonic()
        done = pyhot("autoreload", "--once", target.pid, target.path("app.py"), timeout=60)
        self.assert_refused(done, target.path("app.py"), started)
        self.assertEqual(target.call("app.price(2)"), "4")

    def test_defs_check_and_bundle_refuse_an_oversized_file(self):
        directory = tempfile.mkdtemp(prefix="pyhot-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        old, new = os.path.join(directory, "old.py"), os.path.join(directory, "new.py")
        for path in (old, new):
            with open(path, "w") as handle:
                handle.write("def price(x):\n    return x * 2\n")
        oversize(new)
        for args, stream in ((("defs", new), "stderr"), (("check", old, new), "stderr"),
                             (("bundle", new, "-o", os.path.join(directory, "p.pyhot")), "stderr")):
            started = time.monotonic()
            done = pyhot(*args)
            self.assert_refused(done, new, started, stream)


    def test_apply_refuses_an_oversized_bundle_before_reading_it(self):
        target = self.start(APP, ["app"])
        huge = target.path("huge.pyhot")
        with open(huge, "wb") as handle:
            handle.truncate(300 * 1024 * 1024)  # sparse: the size alone refuses it
        started = time.monotonic()
        done = pyhot("apply", target.pid, huge, timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertLess(time.monotonic() - started, 20)
        self.assertEqual(done.stderr, "pyhot: '%s' is 300.0 MiB, over the 256 MiB a pyhot bundle can be; nothing was "
                         "read or sent.\n" % huge)
        # A module text no bundle pyhot makes could hold (its hashes are
        # not even looked at): refused before anything is sent.
        fat = target.path("fat.pyhot")
        with open(fat, "w") as handle:
            json.dump({"format": "pyhot-bundle", "version": 1, "id": "0", "modules": [
                {"module": "app", "path": "app.py", "expects": "0", "base": "#" * (17 << 20), "text": "", "hash": "0"}]},
                handle)
        done = pyhot("apply", target.pid, fat, timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("holds a text of app of 17.0 MiB, over the 16 MiB", done.stderr)
        self.assertEqual(target.call("app.price(2)"), "4")

def nested_ifs(levels, width=2):
    """A function whose body nests `levels` if statements, `width` spaces each."""
    indent = " " * width
    lines = ["def price(x):"]
    lines += [indent * (level + 1) + "if x:" for level in range(levels)]
    lines += [indent * (levels + 1) + "pass", indent + "return x * 5", ""]
    return "\n".join(lines)


class SourceTextTest(TargetTestCase):
    """Texts CPython compiles (or refuses) in its own way: the reload agrees."""

    def test_a_file_with_a_utf8_byte_order_mark_reloads(self):
        target = self.start(APP, ["app"])
        with open(target.path("app.py"), "wb") as f:
            f.write(b"\xef\xbb\xbfdef price(x):\n    return x * 3\n\n\nclass Cart:\n    def total(self):\n        return 3\n")
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("app.price(2)"), "6")

    def test_a_file_that_is_not_utf8_gets_one_line(self):
        target = self.start(APP, ["app"])
        for text in (b"def price(x):\n    return '\xe9' * x\n",
                     # CPython reads this one; pyhot sends UTF-8 only, and says so.
                     b"# -*- coding: latin-1 -*-\ndef price(x):\n    return '\xe9' * x\n"):
            with open(target.path("app.py"), "wb") as f:
                f.write(text)
            done = pyhot("reload", target.pid, target.path("app.py"))
            self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
            self.assertEqual(done.stderr, "")
            line = text.count(b"\n")
            self.assertEqual(done.stdout, "Error: Unexpected error during reload: %s:%d:13: not UTF-8 (byte 0xe9): "
                             "pyhot reads source files as UTF-8 only.\n" % (target.path("app.py"), line))
            self.assertEqual(target.call("app.price(2)"), "4")
        # check and defs say what CPython says of the file without a declaration.
        with open(target.path("app.py"), "wb") as f:
            f.write(b"def price(x):\n    return '\xe9' * x\n")
        done = pyhot("defs", target.path("app.py"))
        self.assertIn("app.py:2:13  syntax error: Non-UTF-8 code starting with '\\xe9' on line 2, but no encoding "
                      "declared", done.stdout + done.stderr)

    def test_too_deep_indentation_is_refused_where_cpython_refuses_it(self):
        target = self.start(APP, ["app"])
        target.write("app.py", nested_ifs(99))  # CPython: 99 levels of `if` inside a def are one too many
        expected = subprocess.run([self.python, "-c", "compile(open('app.py').read(), 'app.py', 'exec')"],
                                  cwd=target.dir, capture_output=True, text=True)
        self.assertIn("too many levels of indentation", expected.stderr)
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn(target.path("app.py") + ":101:1: too many levels of indentation", done.stdout)
        # tree-sitter-python's scanner keeps a column in a byte: past 255 pyhot says so where it is.
        target.write("app.py", nested_ifs(64, width=4))
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn(target.path("app.py") + ":65:1: indented 256 columns: pyhot's parser reads at most 255",
                      done.stdout)
        self.assertEqual(target.call("app.price(2)"), "4")
        target.write("app.py", nested_ifs(98))  # CPython compiles this one
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("app.price(2)"), "10")


class PlantedBackupTest(TargetTestCase):
    def test_a_named_pipe_as_the_editor_backup_does_not_hang_the_reload(self):
        # The backup beside the file (app.py~) is read as a candidate for the
        # imported text; anyone who can write the directory can plant a FIFO.
        target = self.start(APP, ["app"], prepared=False)
        os.mkfifo(target.path("app.py~"))
        target.write("app.py", "def price(x):\n    return x * 3\n\n\nclass Cart:\n    def total(self):\n"
                     "        return 3\n")
        done = pyhot("reload", target.pid, target.path("app.py"), timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("app.price(2)"), "6")


class TargetExitsTest(TargetTestCase):
    def test_a_target_that_exits_during_the_reload_is_one_line(self):
        # The reload's own code ends the target (a changed default
        # expression); test_faults kills targets at random instants instead.
        target = self.start(APP, ["app"])
        target.write("app.py", "def price(x):\n    return x * 2\n")
        self.assertEqual(pyhot("reload", target.pid, target.path("app.py")).returncode, 0)
        target.write("app.py", "import os\ndef price(x, y=os._exit(3)):\n    return x * 2\n")
        done = pyhot("reload", target.pid, target.path("app.py"))
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertEqual(done.stdout.splitlines(), ["Error: process %d exited during the reload of %s; nothing is left "
                                                    "to patch (started again, it imports the file as it is now)."
                                                    % (target.pid, os.path.realpath(target.path("app.py")))])
        self.assertEqual(done.stderr, "")


# A process whose agent came from another pyhot build: an older agent that
# does not have the operation this pyhot sends (here `history`, removed from
# a copy of today's agent, which is what an agent from before an operation
# was added looks like on the wire).
OLDER_AGENT_TARGET = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import pyhot_agent
pyhot_agent.start()
print('ready', flush=True)
while True:
    time.sleep(0.05)
"""


class OlderAgentTest(TargetTestCase):
    def test_an_operation_the_running_agent_lacks_is_named_with_both_versions(self):
        folder = tempfile.mkdtemp(prefix="pyhot_older_agent_")
        self.addCleanup(shutil.rmtree, folder, True)
        with open(AGENT_FILE) as f:
            agent = f.read()
        removed = "'history': self.op_history, "
        self.assertIn(removed, agent)
        agent = agent.replace(removed, "").replace("\nAGENT_VERSION = '", "\nAGENT_VERSION = '0.0.9-", 1)
        with open(os.path.join(folder, "pyhot_agent.py"), "w") as f:
            f.write(agent)
        with open(os.path.join(folder, "target.py"), "w") as f:
            f.write(OLDER_AGENT_TARGET)
        target = self.spawn([self.python, os.path.join(folder, "target.py"), folder], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        self.assertEqual(read_line(target).strip(), "ready")
        version = pyhot("--version").stdout.split()[-1]
        done = pyhot("history", target.pid)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        lines = (done.stdout + done.stderr).strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("process %d runs an agent from another pyhot build (agent 0.0.9-" % target.pid, lines[0])
        self.assertIn("this pyhot %s" % version, lines[0])
        self.assertIn("does not know the operation 'history'", lines[0])
        self.assertIn("restart the process", lines[0])
        # Nothing else was disturbed: what the older agent has still works.
        self.assertEqual(pyhot("stack", target.pid).returncode, 0)
        self.assertIsNone(target.poll())


class UsageTest(unittest.TestCase):
    def test_pid_that_cannot_be_a_process_is_a_usage_error(self):
        for pid in ("0", "-3"):
            done = pyhot("reload", pid, "app.py")
            self.assertEqual(done.returncode, 2, pid + ": " + done.stdout + done.stderr)
            self.assertEqual(len((done.stdout + done.stderr).strip().splitlines()), 1, done.stderr)

    def test_a_zombie_is_named_one(self):
        # A parent that never reaps its exited Python child.
        parent = spawn([sys.executable, "-c", "import os, sys, time\n"
                        "pid = os.fork()\n"
                        "if pid == 0:\n    os._exit(3)\n"
                        "print(pid, flush=True)\n"
                        "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(kill_group, parent)
        child = int(read_line(parent))
        def state():
            with open("/proc/%d/stat" % child) as f:
                return f.read().rsplit(")", 1)[1].split()[0]

        wait_for(lambda: state() == "Z", 10, "the child to be a zombie")
        for args in (("history", child), ("reload", child, "app.py")):
            done = pyhot(*args)
            self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
            self.assertEqual(done.stderr, "pyhot: process %d is a zombie (it exited; its parent %d has not reaped "
                             "it yet)\n" % (child, parent.pid))

    def test_defs_and_check_of_a_directory_are_usage_errors(self):
        directory = tempfile.mkdtemp(prefix="pyhot-dir-")
        self.addCleanup(os.rmdir, directory)
        for args in (("defs", directory), ("check", directory, directory)):
            done = pyhot(*args)
            self.assertEqual(done.returncode, 2, " ".join(args) + ": " + done.stdout + done.stderr)
            self.assertIn("is a directory", done.stderr)

    def test_a_named_pipe_is_refused_without_waiting_for_a_writer(self):
        # A FIFO opened for reading waits for a writer: pyhot hung on it.
        directory = tempfile.mkdtemp(prefix="pyhot-fifo-")
        self.addCleanup(shutil.rmtree, directory, True)
        fifo = os.path.join(directory, "pipe.py")
        os.mkfifo(fifo)
        for args in (("defs", fifo), ("check", fifo, fifo)):
            done = pyhot(*args, timeout=20)
            self.assertEqual(done.returncode, 2, " ".join(args) + ": " + done.stdout + done.stderr)
            self.assertEqual(done.stderr, "pyhot: cannot read '%s': it is a named pipe, not a Python file\n" % fifo)

    def test_defs_and_check_of_files_cpython_rejects(self):
        # Issue 9 item 11: the pre-commit hook (check) must not pass them.
        directory = tempfile.mkdtemp(prefix="pyhot-rejected-")
        self.addCleanup(shutil.rmtree, directory, True)
        old = os.path.join(directory, "old.py")
        with open(old, "w") as f:
            f.write("def f(x):\n    return 2\n")
        for name, text, message in (
                ("tabs.py", "def f(x):\n\tif x:\n        return 1\n\treturn 2\n",
                 "tabs.py:3:1  syntax error: inconsistent use of tabs and spaces in indentation"),
                ("coding.py", "# -*- coding: nonsense -*-\ndef f(x):\n    return 1\n",
                 "coding.py:1:1  syntax error: unknown encoding: nonsense")):
            path = os.path.join(directory, name)
            with open(path, "w") as f:
                f.write(text)
            cpython = subprocess.run([sys.executable, "-c", "compile(open(%r, 'rb').read(), 'f', 'exec')" % path],
                                     capture_output=True, text=True)
            self.assertNotEqual(cpython.returncode, 0, name)
            for args in (("defs", path), ("check", old, path)):
                done = pyhot(*args)
                self.assertEqual(done.returncode, 1, " ".join(args) + ": " + done.stdout + done.stderr)
                self.assertIn(message, done.stdout + done.stderr)


for_each_interpreter(EmptyFileTest, globals())
for_each_interpreter(OlderAgentTest, globals())
for_each_interpreter(SourceTextTest, globals())
for_each_interpreter(TargetExitsTest, globals())
for_each_interpreter(PlantedBackupTest, globals())
for_each_interpreter(OversizedFileTest, globals())
del EmptyFileTest, OlderAgentTest, SourceTextTest, TargetExitsTest, OversizedFileTest, PlantedBackupTest

if __name__ == "__main__":
    unittest.main()
