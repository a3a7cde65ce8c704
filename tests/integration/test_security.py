"""Another local user must not get code run in a target, nor pose as its
agent: squatted, symlinked or loose socket and staging directories, planted
agent files and fake sockets are refused before anything is injected or sent.

Needs root (it creates two throwaway users with useradd and removes them with
userdel -r afterwards, pass or fail).
"""

import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, PYHOT, for_each_interpreter, kill_group, read_line, spawn, wait_for  # noqa: E402

PROBE = os.path.join(BUILD, "loader", "attach", "pyhot_inject_probe")

TARGET = "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"

# A fake agent: accepts one connection and records how many bytes it got.
FAKE_AGENT = r"""
import os, socket, sys
path, report = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o600)
s.listen(4)
print('ready', flush=True)
c, _ = s.accept()
c.settimeout(20)
got = 0
try:
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += len(chunk)
except OSError:
    pass
with open(report + '.tmp', 'w') as f:
    f.write(str(got))
os.rename(report + '.tmp', report)
"""


# A target that imports a module and publishes what it computes, for the
# reloads of the parsed-cache tests.
CACHE_TARGET = r"""
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import app
print('ready', flush=True)
out = sys.argv[1]
while True:
    with open(out + '.tmp', 'w') as f:
        f.write(str(app.price(2)))
    os.replace(out + '.tmp', out)
    time.sleep(0.02)
"""

APP_BEFORE = "def price(x):\n    return x * 2\n"
APP_AFTER = "def price(x):\n    return x * 3\n"
APP_THIRD = "def price(x):\n    return x * 4\n"


def reachable_by_everyone(path):
    """Whether every directory above `path` lets other users through."""
    directory = os.path.dirname(os.path.realpath(path))
    while True:
        if not os.stat(directory).st_mode & 0o001:
            return False
        if directory == "/":
            return True
        directory = os.path.dirname(directory)


def python_for_other_users(python, workdir):
    """(path, environment) of `python` that another user can run: itself, or,
    when it lies under a directory others cannot enter (pyenv's builds under
    /root, mode 0700), the same build as a tree of hard links in `workdir`,
    with its lib/ for the libpython its RUNPATH names under /root. None when
    neither can be made."""
    if reachable_by_everyone(python):
        return python, dict(os.environ)
    build = os.path.dirname(os.path.dirname(os.path.realpath(python)))
    linked = os.path.join(workdir, os.path.basename(build))
    if not os.path.isdir(linked):
        done = subprocess.run(["cp", "-al", build, linked], capture_output=True, timeout=120)
        if done.returncode != 0:
            return None
    return (os.path.join(linked, "bin", os.path.basename(python)),
            dict(os.environ, LD_LIBRARY_PATH=os.path.join(linked, "lib")))


def as_user(uid, gid):
    def demote():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return demote


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("useradd") and shutil.which("userdel"),
                     "needs root with useradd/userdel")
@unittest.skipUnless(os.path.exists(PYHOT) and os.path.exists(PROBE), "build pyhot and pyhot_inject_probe first")
class SquattingTest(unittest.TestCase):
    """One class per interpreter (for_each_interpreter): the victim's targets
    run on it, and so does the fake agent."""
    python = None
    python_label = None

    @classmethod
    def setUpClass(cls):
        tag = "%05d" % random.randrange(100000)
        cls.users = {}
        for role in ("victim", "attacker"):
            name = "pyhot%s%s" % (role[0], tag)
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                           capture_output=True, timeout=60)
            cls.addClassCleanup(subprocess.run, ["userdel", "-r", name], capture_output=True, timeout=60)
            entry = pwd.getpwnam(name)
            cls.users[role] = (entry.pw_uid, entry.pw_gid)
        # The targets run as the victim: the interpreter must be one it can run.
        cls.links = tempfile.mkdtemp(prefix="pyhot_security_python_")
        os.chmod(cls.links, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.links, True)
        found = python_for_other_users(cls.python, cls.links)
        if found is None:
            raise unittest.SkipTest("%s cannot be run by another user, nor linked where it could be" % cls.python)
        cls.victim_python, cls.victim_env = found

    def setUp(self):
        self.victim_uid, self.victim_gid = self.users["victim"]
        self.attacker_uid, self.attacker_gid = self.users["attacker"]
        self.tmp = tempfile.mkdtemp(prefix="pyhot_security_")
        # The targets run as the victim and leave their marks here (so would planted code).
        os.chmod(self.tmp, 0o1777)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.socket_dir = "/tmp/pyhot-%d" % self.victim_uid
        self.remove_socket_dir()
        self.addCleanup(self.remove_socket_dir)
        # Where the victim's pyhot keeps its parsed cache without HOME (patch/parsed_cache.cpp).
        self.cache_dir = "/tmp/pyhot-cache-%d" % self.victim_uid
        self.remove_path(self.cache_dir)
        self.addCleanup(self.remove_path, self.cache_dir)

    def remove_socket_dir(self):
        self.remove_path(self.socket_dir)

    @staticmethod
    def remove_path(path):
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path, True)

    def spawn(self, argv, uid, gid, cwd=None):
        proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_user(uid, gid),
                     cwd=cwd or self.tmp, env=self.victim_env)
        self.addCleanup(kill_group, proc)
        self.assertEqual(read_line(proc).strip(), "ready", proc.stderr.read() if proc.poll() else "")
        return proc

    def victim_target(self):
        script = os.path.join(self.tmp, "target_%d.py" % random.getrandbits(32))
        with open(script, "w") as f:
            f.write(TARGET)
        os.chmod(script, 0o644)
        return self.spawn([self.victim_python, script], self.victim_uid, self.victim_gid)

    def agent_file_name(self):
        # The name is predictable (it is the agent's hash): learn it the way an
        # attacker could, from a normal attach.
        target = self.victim_target()
        done = subprocess.run([PYHOT, "history", str(target.pid)], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        names = [os.path.basename(p) for p in glob.glob(os.path.join(self.socket_dir, "pyhot_agent-*.py"))]
        self.assertEqual(len(names), 1, names)
        target.kill()
        target.communicate(timeout=30)
        self.remove_socket_dir()
        return names[0]

    def as_attacker(self, *argv):
        subprocess.run(list(argv), check=True, preexec_fn=as_user(self.attacker_uid, self.attacker_gid), timeout=30)

    def planted_agent(self, directory, name, pwned):
        source = os.path.join(self.tmp, "planted.py")
        with open(source, "w") as f:
            f.write("open(%r, 'w').write('pwned')\n" % pwned)
        os.chmod(source, 0o644)
        self.as_attacker("cp", source, os.path.join(directory, name))

    def assert_refused_and_nothing_ran(self, target, pwned, *words):
        for user in ("root", "victim"):
            demote = None if user == "root" else as_user(self.victim_uid, self.victim_gid)
            done = subprocess.run([PYHOT, "history", str(target.pid)], capture_output=True, text=True, timeout=60,
                                  preexec_fn=demote)
            output = done.stdout + done.stderr
            self.assertEqual(done.returncode, 1, "%s: %s" % (user, output))
            self.assertEqual(output.strip().count("\n"), 0, "one line: %r" % output)
            for word in words:
                self.assertIn(word, output, user)
        # Pending calls run in order: once this marker is written, anything
        # pyhot had queued before would have run too.
        marker = os.path.join(self.tmp, "probe_marker_%d" % random.getrandbits(32))
        probe = subprocess.run([PROBE, "--wait-file", marker, str(target.pid),
                                "open(%r, 'w').write('ran')" % marker], capture_output=True, text=True, timeout=30)
        self.assertEqual(probe.returncode, 0, probe.stderr)
        self.assertFalse(os.path.exists(pwned), "the planted file ran in the target")
        self.assertIsNone(target.poll())

    def test_squatted_world_writable_directory_is_refused(self):
        name = self.agent_file_name()
        pwned = os.path.join(self.tmp, "pwned")
        self.as_attacker("mkdir", "-m", "0777", self.socket_dir)
        os.chmod(self.socket_dir, 0o777)
        self.planted_agent(self.socket_dir, name, pwned)
        target = self.victim_target()
        self.assert_refused_and_nothing_ran(target, pwned, self.socket_dir,
                                            "belongs to uid %d, not to uid %d" % (self.attacker_uid, self.victim_uid))

    def test_squatted_directory_the_attacker_keeps_private_is_refused(self):
        name = self.agent_file_name()
        pwned = os.path.join(self.tmp, "pwned")
        self.as_attacker("mkdir", "-m", "0700", self.socket_dir)
        self.planted_agent(self.socket_dir, name, pwned)
        os.chmod(os.path.join(self.socket_dir, name), 0o644)
        target = self.victim_target()
        self.assert_refused_and_nothing_ran(target, pwned, self.socket_dir, "belongs to uid %d" % self.attacker_uid)

    def test_symlinked_directory_is_refused_and_nothing_is_written_through_it(self):
        name = self.agent_file_name()
        pwned = os.path.join(self.tmp, "pwned")
        elsewhere = os.path.join(self.tmp, "attacker_dir")
        self.as_attacker("mkdir", "-m", "0777", elsewhere)
        self.planted_agent(elsewhere, name, pwned)
        self.as_attacker("ln", "-s", elsewhere, self.socket_dir)
        target = self.victim_target()
        self.assert_refused_and_nothing_ran(target, pwned, self.socket_dir, "symbolic link")
        self.assertEqual(os.listdir(elsewhere), [name], "root wrote into the attacker's directory")

    def test_victims_own_loose_directory_is_refused(self):
        target = self.victim_target()
        os.mkdir(self.socket_dir, 0o777)
        os.chmod(self.socket_dir, 0o777)
        os.chown(self.socket_dir, self.victim_uid, self.victim_gid)
        self.assert_refused_and_nothing_ran(target, os.path.join(self.tmp, "pwned"), self.socket_dir,
                                            "mode is 0777, not 0700")

    def test_a_changed_staged_agent_is_replaced_before_it_runs(self):
        name = self.agent_file_name()
        pwned = os.path.join(self.tmp, "pwned")
        os.mkdir(self.socket_dir, 0o700)
        os.chown(self.socket_dir, self.victim_uid, self.victim_gid)
        staged = os.path.join(self.socket_dir, name)
        with open(staged, "w") as f:
            f.write("open(%r, 'w').write('pwned')\n" % pwned)
        os.chown(staged, self.victim_uid, self.victim_gid)
        target = self.victim_target()
        done = subprocess.run([PYHOT, "history", str(target.pid)], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertFalse(os.path.exists(pwned), "a staged file that is not the agent ran")

    # --- the parsed cache's directory in /tmp -------------------------------

    def cache_target(self):
        """A victim's target importing app.py (APP_BEFORE) from a directory of
        its own; returns (process, app.py's path, a function giving price(2))."""
        directory = tempfile.mkdtemp(prefix="app_", dir=self.tmp)
        os.chmod(directory, 0o755)
        script = os.path.join(directory, "target.py")
        with open(script, "w") as f:
            f.write(CACHE_TARGET)
        app = os.path.join(directory, "app.py")
        with open(app, "w") as f:
            f.write(APP_BEFORE)
        for path in (script, app):
            os.chmod(path, 0o644)
        out = os.path.join(self.tmp, "price_%d" % random.getrandbits(32))
        proc = self.spawn([self.victim_python, "-B", script, out], self.victim_uid, self.victim_gid)

        def price():
            try:
                with open(out) as f:
                    return f.read()
            except OSError:
                return None
        wait_for(price, 10, "the target's first result")
        return proc, app, price

    def victim_reload(self, app, pid, **env):
        """The victim's `pyhot reload` with no HOME (as from cron or a bare
        service): the parsed cache falls back to /tmp."""
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        environment.update(env)
        try:
            return subprocess.run([PYHOT, "reload", str(pid), app], capture_output=True, text=True, timeout=30,
                                  env=environment, preexec_fn=as_user(self.victim_uid, self.victim_gid))
        except subprocess.TimeoutExpired:
            self.fail("the reload hung (it opened a FIFO another user planted in its cache directory)")

    def cache_entry_names(self):
        """The names the cache entries of this edit get, learned the way an
        attacker could: the same reload in a cache of one's own."""
        private = tempfile.mkdtemp(prefix="cache_", dir=self.tmp)
        os.chown(private, self.victim_uid, self.victim_gid)
        os.chmod(private, 0o700)
        proc, app, price = self.cache_target()
        with open(app, "w") as f:
            f.write(APP_AFTER)
        done = self.victim_reload(app, proc.pid, PYHOT_CACHE_DIR=private)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        wait_for(lambda: price() == "6", 10, "the reload to take effect")
        kill_group(proc)
        names = sorted(os.listdir(private))
        self.assertTrue(names, "the reload stored no cache entry")
        self.remove_socket_dir()
        return names

    @staticmethod
    def listing(directory):
        found = set()
        for root, dirs, files in os.walk(directory):
            for name in dirs + files:
                path = os.path.join(root, name)
                found.add((os.path.relpath(path, directory), os.lstat(path).st_size))
        return found

    def test_a_squatted_cache_directory_is_neither_read_nor_written(self):
        names = self.cache_entry_names()
        elsewhere = os.path.join(self.tmp, "attacker_cache")
        cases = ("world-writable", "symlink", "planted fifos")
        for case in cases:
            with self.subTest(squat=case):
                self.remove_path(self.cache_dir)
                self.remove_path(elsewhere)
                if case == "symlink":
                    self.as_attacker("mkdir", "-m", "0777", elsewhere)
                    self.as_attacker("mkdir", "-m", "0777", os.path.join(elsewhere, "parsed"))
                    self.as_attacker("ln", "-s", elsewhere, self.cache_dir)
                    watched = elsewhere
                else:
                    self.as_attacker("mkdir", "-m", "0777", self.cache_dir)
                    self.as_attacker("mkdir", "-m", "0777", os.path.join(self.cache_dir, "parsed"))
                    watched = self.cache_dir
                if case == "planted fifos":
                    # Read, any of them would hang the reload: the entry of
                    # the first reload's text is what the second one reads.
                    for name in names:
                        self.as_attacker("mkfifo", "-m", "0666", os.path.join(self.cache_dir, "parsed", name))
                os.chmod(watched, 0o777)  # mkdir -m is filtered by nothing, but be sure
                before = self.listing(watched)
                proc, app, price = self.cache_target()
                live = "4"
                for text, result in ((APP_AFTER, "6"), (APP_THIRD, "8")):
                    with open(app, "w") as f:
                        f.write(text)
                    done = self.victim_reload(app, proc.pid)
                    output = done.stdout + done.stderr
                    self.assertEqual(self.listing(watched), before, "pyhot wrote into the other user's directory: "
                                     + output)
                    if done.returncode != 0:
                        self.assertEqual(done.returncode, 1, output)
                        self.assertEqual(output.strip().count("\n"), 0, "one line: %r" % output)
                        self.assertIn(self.cache_dir, output)
                        self.assertEqual(price(), live, "a refused reload changed the target")
                        break
                    live = wait_for(lambda: price() == result and result, 10, "the reload to take effect")
                kill_group(proc)
                self.remove_socket_dir()
        # A cache directory of the victim's own (made by pyhot) is used.
        self.remove_path(self.cache_dir)
        self.remove_path(elsewhere)
        proc, app, price = self.cache_target()
        with open(app, "w") as f:
            f.write(APP_AFTER)
        done = self.victim_reload(app, proc.pid)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        wait_for(lambda: price() == "6", 10, "the reload to take effect")
        status = os.lstat(self.cache_dir)
        self.assertEqual((status.st_uid, status.st_mode & 0o7777), (self.victim_uid, 0o700))
        self.assertTrue(os.listdir(os.path.join(self.cache_dir, "parsed")), "the cache was not used")

    def test_a_socket_served_by_another_process_gets_nothing(self):
        target = self.victim_target()
        os.mkdir(self.socket_dir, 0o700)
        os.chown(self.socket_dir, self.victim_uid, self.victim_gid)
        fake_script = os.path.join(self.tmp, "fake_agent.py")
        with open(fake_script, "w") as f:
            f.write(FAKE_AGENT)
        os.chmod(fake_script, 0o644)
        report = os.path.join(self.tmp, "fake_report")
        fake_path = os.path.join(self.socket_dir, "%d.sock" % target.pid)
        fake = self.spawn([self.victim_python, fake_script, fake_path, report], self.victim_uid, self.victim_gid)
        done = subprocess.run([PYHOT, "history", str(target.pid)], capture_output=True, text=True, timeout=60)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 1, output)
        self.assertIn("the process listening on it is pid %d" % fake.pid, output)
        self.assertIn("not process %d" % target.pid, output)
        wait_for(lambda: os.path.exists(report), 30, "the fake agent to report what it received")
        with open(report) as f:
            self.assertEqual(f.read(), "0", "pyhot sent bytes to a socket that is not the target's")


# A target whose environment names an XDG_RUNTIME_DIR; it changes its own
# os.environ afterwards (the agent and pyhot both go by the environment it
# started with, /proc/PID/environ).
XDG_TARGET = ("import os, sys, time\n"
              "os.environ['XDG_RUNTIME_DIR'] = '/nonexistent'\n"
              "print('ready', flush=True)\n"
              "time.sleep(120)\n")


@unittest.skipUnless(os.path.exists(PYHOT), "build pyhot first")
class RuntimeDirectoryTest(unittest.TestCase):
    """The agent listens (and is staged) in the target's XDG_RUNTIME_DIR when
    that is a directory of the target's user no one else can enter, else in
    /tmp/pyhot-UID; pyhot looks where the agent does. One class per
    interpreter."""
    python = None
    python_label = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyhot_xdg_")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.fallback = "/tmp/pyhot-%d" % os.getuid()

    def target(self, python, runtime_dir, prepared=False):
        script = os.path.join(self.tmp, "target_%d.py" % random.getrandbits(32))
        with open(script, "w") as f:
            f.write(XDG_TARGET)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime_dir)
        env.pop("PYHOT_AGENT_SOCKET_DIR", None)
        command = ([PYHOT, "run", "--"] if prepared else []) + [python, script]
        proc = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.addCleanup(kill_group, proc)
        self.assertEqual(read_line(proc).strip(), "ready", proc.stderr.read() if proc.poll() else "")
        return proc

    def history_works(self, proc):
        done = subprocess.run([PYHOT, "history", str(proc.pid)], capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if k != "PYHOT_AGENT_SOCKET_DIR"})
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def runtime_dir(self, mode=0o700):
        path = tempfile.mkdtemp(prefix="run_", dir=self.tmp)
        os.chmod(path, mode)
        return path

    def test_a_private_runtime_directory_is_used_by_both(self):
        for prepared in (False, True):
            with self.subTest(prepared=prepared):
                runtime = self.runtime_dir()
                proc = self.target(self.python, runtime, prepared)
                self.history_works(proc)
                socket_path = os.path.join(runtime, "pyhot", "%d.sock" % proc.pid)
                wait_for(lambda: os.path.exists(socket_path), 10, "the socket in the runtime directory")
                self.assertEqual(os.stat(os.path.join(runtime, "pyhot")).st_mode & 0o7777, 0o700)
                self.assertFalse(os.path.exists(os.path.join(self.fallback, "%d.sock" % proc.pid)))
                if not prepared:
                    self.assertTrue(glob.glob(os.path.join(runtime, "pyhot", "pyhot_agent-*.py")))
                self.history_works(proc)  # the agent that is listening now

    def test_a_runtime_directory_others_could_use_is_not(self):
        linked_to = self.runtime_dir()
        link = os.path.join(self.tmp, "link")
        os.symlink(linked_to, link)
        for what, runtime in (("mode 0755", self.runtime_dir(0o755)), ("a symlink", link),
                              ("relative", "run"), ("missing", os.path.join(self.tmp, "none"))):
            with self.subTest(runtime=what):
                proc = self.target(self.python, runtime)
                self.history_works(proc)
                wait_for(lambda: os.path.exists(os.path.join(self.fallback, "%d.sock" % proc.pid)), 10,
                         "the socket in %s" % self.fallback)
                self.assertFalse(os.path.exists(os.path.join(runtime, "pyhot")))
                self.assertFalse(os.path.exists(os.path.join(linked_to, "pyhot")))


for_each_interpreter(SquattingTest, globals())
for_each_interpreter(RuntimeDirectoryTest, globals())
del SquattingTest, RuntimeDirectoryTest

if __name__ == "__main__":
    unittest.main()
