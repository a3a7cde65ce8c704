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
from harness import BUILD, PYHOT, interpreters, kill_group, read_line, spawn, wait_for  # noqa: E402

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
        cls.python = interpreters()[0][1]

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

    def remove_socket_dir(self):
        if os.path.islink(self.socket_dir) or os.path.isfile(self.socket_dir):
            os.unlink(self.socket_dir)
        elif os.path.isdir(self.socket_dir):
            shutil.rmtree(self.socket_dir, True)

    def spawn(self, argv, uid, gid, cwd=None):
        proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_user(uid, gid),
                     cwd=cwd or self.tmp)
        self.addCleanup(kill_group, proc)
        self.assertEqual(read_line(proc).strip(), "ready", proc.stderr.read() if proc.poll() else "")
        return proc

    def victim_target(self):
        script = os.path.join(self.tmp, "target_%d.py" % random.getrandbits(32))
        with open(script, "w") as f:
            f.write(TARGET)
        os.chmod(script, 0o644)
        return self.spawn([self.python, script], self.victim_uid, self.victim_gid)

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
        fake = self.spawn([self.python, fake_script, fake_path, report], self.victim_uid, self.victim_gid)
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
    /tmp/pyhot-UID; pyhot looks where the agent does."""

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
        for label, python in interpreters():
            for prepared in (False, True):
                with self.subTest(python=label, prepared=prepared):
                    runtime = self.runtime_dir()
                    proc = self.target(python, runtime, prepared)
                    self.history_works(proc)
                    socket_path = os.path.join(runtime, "pyhot", "%d.sock" % proc.pid)
                    wait_for(lambda: os.path.exists(socket_path), 10, "the socket in the runtime directory")
                    self.assertEqual(os.stat(os.path.join(runtime, "pyhot")).st_mode & 0o7777, 0o700)
                    self.assertFalse(os.path.exists(os.path.join(self.fallback, "%d.sock" % proc.pid)))
                    if not prepared:
                        self.assertTrue(glob.glob(os.path.join(runtime, "pyhot", "pyhot_agent-*.py")))
                    self.history_works(proc)  # the agent that is listening now

    def test_a_runtime_directory_others_could_use_is_not(self):
        label, python = interpreters()[0]
        linked_to = self.runtime_dir()
        link = os.path.join(self.tmp, "link")
        os.symlink(linked_to, link)
        for what, runtime in (("mode 0755", self.runtime_dir(0o755)), ("a symlink", link),
                              ("relative", "run"), ("missing", os.path.join(self.tmp, "none"))):
            with self.subTest(runtime=what):
                proc = self.target(python, runtime)
                self.history_works(proc)
                wait_for(lambda: os.path.exists(os.path.join(self.fallback, "%d.sock" % proc.pid)), 10,
                         "the socket in %s" % self.fallback)
                self.assertFalse(os.path.exists(os.path.join(runtime, "pyhot")))
                self.assertFalse(os.path.exists(os.path.join(linked_to, "pyhot")))


if __name__ == "__main__":
    unittest.main()
