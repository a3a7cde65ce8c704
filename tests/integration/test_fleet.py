"""examples/fleet/rollout.yml, run by Debian's ansible against localhost
targets (`connection: local`): every host is checked by a dry run before
any is patched, then patched in serial batches; one host whose live code is
not the bundle's baseline stops the rollout with nothing changed anywhere.
Skipped, saying which package is missing, when ansible is not installed."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import PYHOT, ROOT, kill_group, pyhot, spawn, wait_for

PLAYBOOK = os.path.join(ROOT, "examples", "fleet", "rollout.yml")

# One "host": a process that imports its own copy of `work` and publishes
# what it answers.
SERVICE = r'''
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import work
while True:
    with open("answer.tmp", "w") as handle:
        handle.write(str(work.answer()))
    os.replace("answer.tmp", "answer.txt")
    time.sleep(0.02)
'''


def work_text(value):
    return "def answer():\n    return %d\n" % value


@unittest.skipUnless(shutil.which("ansible-playbook"),
                     "ansible-playbook not found: install Debian's ansible-core package (scripts/setup does)")
class FleetRolloutTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-fleet-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.hosts = []
        for index in range(3):
            home = os.path.join(self.dir, "host%d" % index)
            os.mkdir(home)
            self.write(os.path.join(home, "work.py"), work_text(1))
            self.write(os.path.join(home, "service.py"), SERVICE)
            process = spawn(["/usr/bin/python3", "service.py"], cwd=home)
            self.addCleanup(kill_group, process)
            self.hosts.append((home, process))
        for home, _ in self.hosts:
            wait_for(lambda: self.answer(home) == "1", 15, "host %s to answer" % home)
        # The bundle is made in a git checkout of the service's source.
        self.source = os.path.join(self.dir, "source")
        os.mkdir(self.source)
        self.write(os.path.join(self.source, "work.py"), work_text(1))
        self.git("init", "-q")
        self.git("add", "work.py")
        self.git("commit", "-q", "-m", "v1")

    def write(self, path, text):
        with open(path + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(path + ".tmp", path)

    def git(self, *args):
        subprocess.run(["git", "-c", "user.name=pyhot", "-c", "user.email=pyhot@example.invalid"] + list(args),
                       cwd=self.source, check=True, capture_output=True, timeout=30)

    def answer(self, home):
        try:
            with open(os.path.join(home, "answer.txt")) as handle:
                return handle.read()
        except OSError:
            return None

    def rollout(self, bundle):
        inventory = os.path.join(self.dir, "hosts.ini")
        with open(inventory, "w") as handle:
            handle.write("[pyhot_targets]\n")
            for index, (home, process) in enumerate(self.hosts):
                handle.write("host%d ansible_connection=local ansible_python_interpreter=/usr/bin/python3 "
                             "master_pid=%d bundle_dir=%s\n" % (index, process.pid, home))
        env = dict(os.environ, ANSIBLE_HOME=os.path.join(self.dir, "ansible"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, "ansible-tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
        return subprocess.run(["ansible-playbook", "-i", inventory, PLAYBOOK, "-e", "bundle=" + bundle,
                               "-e", "pyhot=" + PYHOT, "-e", "{\"batches\": [1, 2]}"],
                              capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)

    def test_rollout_patches_every_host_in_batches(self):
        self.write(os.path.join(self.source, "work.py"), work_text(2))
        bundle = os.path.join(self.dir, "fix.pyhot")
        made = pyhot("bundle", os.path.join(self.source, "work.py"), "-o", bundle)
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr)
        done = self.rollout(bundle)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("Dry run (pyhot apply --tree --dry-run)", done.stdout)
        # Serial batches: the apply play runs once for one host, then for two.
        self.assertEqual(done.stdout.count("TASK [Apply (pyhot apply --tree)]"), 2, done.stdout)
        self.assertIn("revert", done.stdout)
        for home, _ in self.hosts:
            wait_for(lambda: self.answer(home) == "2", 15, "host %s on the bundle" % home)

    def test_a_host_on_another_version_stops_the_rollout_before_any_change(self):
        # The last host runs v5 (it was deployed from another revision).
        home, process = self.hosts[-1]
        self.write(os.path.join(home, "work.py"), work_text(5))
        relaunched = spawn(["/usr/bin/python3", "service.py"], cwd=home)
        self.addCleanup(kill_group, relaunched)
        kill_group(process)
        self.hosts[-1] = (home, relaunched)
        wait_for(lambda: self.answer(home) == "5", 15, "the last host on v5")
        self.write(os.path.join(self.source, "work.py"), work_text(2))
        bundle = os.path.join(self.dir, "fix.pyhot")
        self.assertEqual(pyhot("bundle", os.path.join(self.source, "work.py"), "-o", bundle).returncode, 0)
        done = self.rollout(bundle)
        self.assertNotEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("is not the text bundle", done.stdout)
        self.assertNotIn("TASK [Apply (pyhot apply --tree)]", done.stdout)
        for (home, _), expected in zip(self.hosts, ("1", "1", "5")):
            self.assertEqual(self.answer(home), expected, home)


if __name__ == "__main__":
    unittest.main()
