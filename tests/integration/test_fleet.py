"""examples/fleet/rollout.yml, run by Debian's ansible against localhost
targets (`connection: local`): every host is checked by a dry run before
any is patched, then patched in serial batches; one host whose live code is
not the bundle's baseline stops the rollout with nothing changed anywhere.
Skipped, saying which package is missing, when ansible is not installed.

examples/fleet/kubectl-rollout.sh, run as it is against "pods" made of
local parts: each pod is a pid and mount namespace (unshare) whose pid 1 is
a pre-fork server and whose /tmp is its own; `kubectl` is a stand-in that
lists the pods, copies a file into a pod's filesystem (/proc/PID/root) and
runs a command inside its namespaces (nsenter). So the recipe's own logic,
the pyhot binary copied into the pod, and pyhot attaching to pid 1 of a
pid namespace and patching its workers are real; kubectl, the API server,
container images and a runtime's ptrace policy are not. Skipped as root
only can make namespaces."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import PYHOT, ROOT, PreforkServer, kill_group, pyhot, spawn, wait_for, write_whole

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


RECIPE = os.path.join(ROOT, "examples", "fleet", "kubectl-rollout.sh")

# kubectl as kubectl-rollout.sh uses it, over pods that are namespaces:
# $FAKE_KUBE/<namespace>/<pod> holds "<host pid of the pod's pid 1> <label>".
KUBECTL = r"""#!/bin/bash
set -euo pipefail
verb=$1; shift
namespace=default selector="" args=()
while [ $# -gt 0 ]; do
  case $1 in
    -n) namespace=$2; shift 2 ;;
    -c) shift 2 ;;
    -l) selector=$2; shift 2 ;;
    -o) shift 2 ;;
    --) shift; args+=("$@"); break ;;
    *) args+=("$1"); shift ;;
  esac
done
echo "$verb -n $namespace ${args[*]}" >> "$FAKE_KUBE/calls.log"
pid_of() { read -r pid _ < "$FAKE_KUBE/$namespace/$1"; echo "$pid"; }
case $verb in
  get)
    for file in "$FAKE_KUBE/$namespace"/*; do
      read -r _ label < "$file"
      [ "$label" = "$selector" ] && printf '%s ' "$(basename "$file")"
    done ;;
  cp) pod=${args[1]%%:*}; cp --preserve=mode "${args[0]}" "/proc/$(pid_of "$pod")/root${args[1]#*:}" ;;
  exec)
    pod=${args[0]}
    # A pod on which the apply fails (its container went away meanwhile).
    if [ -e "$FAKE_KUBE/fail-apply-$pod" ] && [[ " ${args[*]} " == *" apply "* ]] && \
       [[ " ${args[*]} " != *" --dry-run "* ]]; then
      echo "error: container web not found in pod $pod" >&2; exit 1
    fi
    exec nsenter --target "$(pid_of "$pod")" --pid --mount -- "${args[@]:1}" ;;
  *) echo "kubectl stand-in: $verb is not used by the recipe" >&2; exit 2 ;;
esac
"""


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and shutil.which("nsenter"),
                     "pods are pid and mount namespaces: run as root with util-linux's unshare and nsenter")
class KubectlRecipeTest(unittest.TestCase):

    def setUp(self):
        # Not under /tmp: each pod mounts its own directory there.
        self.dir = tempfile.mkdtemp(prefix="pyhot-kube-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.kube = os.path.join(self.dir, "kube")
        os.makedirs(os.path.join(self.kube, "shop"))
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin)
        write_whole(os.path.join(self.bin, "kubectl"), KUBECTL)
        os.chmod(os.path.join(self.bin, "kubectl"), 0o755)
        self.source = os.path.join(self.dir, "source")
        os.mkdir(self.source)
        write_whole(os.path.join(self.source, "work.py"), work_text(1))
        for args in (("init", "-q"), ("add", "work.py"), ("commit", "-q", "-m", "v1")):
            subprocess.run(["git", "-c", "user.name=pyhot", "-c", "user.email=pyhot@example.invalid"] + list(args),
                           cwd=self.source, check=True, capture_output=True, timeout=30)
        self.pods = {}

    def start_pod(self, name, version=1, label="app=web"):
        home = os.path.join(self.dir, name)
        os.makedirs(os.path.join(home, "tmp"))
        write_whole(os.path.join(home, "work.py"), work_text(version))
        launcher = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c",
                    'mount --bind "$1" /tmp && shift && exec "$@"', "sh", os.path.join(home, "tmp")]
        server = PreforkServer("/usr/bin/python3", home, launcher=launcher)
        self.addCleanup(server.stop)
        def pid_one():
            with open("/proc/%d/task/%d/children" % (server.pid, server.pid)) as handle:
                return handle.read().split()
        pid_one = wait_for(pid_one, 10, "the pod's pid 1")[0]
        with open(os.path.join(self.kube, "shop", name), "w") as handle:
            handle.write("%s %s\n" % (pid_one, label))
        self.pods[name] = server
        wait_for(lambda: self.live_answers(name) == {str(version)}, 15, "pod %s to answer" % name)

    def live_answers(self, name):
        # What each worker of the pod answers (they name their files by their pids inside the pod).
        return set(self.pods[name].answers().values())

    def rollout(self, bundle):
        env = dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"], FAKE_KUBE=self.kube, PYHOT=PYHOT)
        env.pop("XDG_RUNTIME_DIR", None)
        return subprocess.run(["bash", RECIPE, "-n", "shop", "-l", "app=web", "-c", "web", bundle],
                              capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)

    def bundle(self):
        write_whole(os.path.join(self.source, "work.py"), work_text(2))
        path = os.path.join(self.dir, "fix.pyhot")
        made = pyhot("bundle", os.path.join(self.source, "work.py"), "-o", path)
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr)
        return path

    def test_rollout_checks_every_pod_then_patches_each(self):
        self.start_pod("web-a")
        self.start_pod("web-b")
        self.start_pod("other", label="app=db")
        done = self.rollout(self.bundle())
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        lines = [line for line in done.stdout.splitlines() if line.startswith("== web")]
        self.assertEqual(lines, ["== web-a: dry run", "== web-b: dry run", "== web-a: apply", "== web-b: apply"])
        # pid 1 of each pod and its two workers, by their pids inside the pod.
        self.assertEqual(done.stdout.count("3 of 3 processes run the bundle."), 2, done.stdout)
        self.assertEqual(done.stdout.count("== process 1\n"), 4, done.stdout)
        for name in ("web-a", "web-b"):
            wait_for(lambda: self.live_answers(name) == {"2"}, 15, "pod %s on the bundle" % name)
        self.assertEqual(self.live_answers("other"), {"1"})

    def test_a_pod_on_another_version_stops_it_before_any_change(self):
        self.start_pod("web-a")
        self.start_pod("web-b", version=5)
        done = self.rollout(self.bundle())
        self.assertNotEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("is not the text bundle", done.stdout + done.stderr)
        self.assertNotIn(": apply", done.stdout)
        self.assertEqual(self.live_answers("web-a"), {"1"})
        self.assertEqual(self.live_answers("web-b"), {"5"})

    def test_a_failed_apply_stops_and_says_how_to_undo_it_everywhere(self):
        self.start_pod("web-a")
        self.start_pod("web-b")
        self.start_pod("web-c")
        open(os.path.join(self.kube, "fail-apply-web-b"), "w").close()
        bundle = self.bundle()
        with open(bundle) as handle:
            label = json.load(handle)["id"]
        done = self.rollout(bundle)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertNotIn("== web-c: apply", done.stdout)
        # Every command printed undoes the patch in a pod it may have reached.
        undo = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("kubectl exec")]
        self.assertEqual(undo, ["kubectl exec -n shop -c web %s -- /tmp/pyhot revert 1 %s --tree" % (pod, label)
                                for pod in ("web-a", "web-b")], done.stderr)
        wait_for(lambda: self.live_answers("web-a") == {"2"}, 15, "web-a on the bundle")
        self.assertEqual(self.live_answers("web-c"), {"1"})
        env = dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"], FAKE_KUBE=self.kube)
        reverted = subprocess.run(undo[0].split(), capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        wait_for(lambda: self.live_answers("web-a") == {"1"}, 15, "web-a back on the old code")


if __name__ == "__main__":
    unittest.main()
