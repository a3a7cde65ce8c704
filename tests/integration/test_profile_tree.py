"""pyhot profile --tree against the stdlib pre-fork server of harness.py: the
master and every worker profiled at once and reported apart, a worker that
exits meanwhile reported as such (not a failure), a worker forked meanwhile
profiled from then on, the instrumentation gone everywhere afterwards."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree

from harness import PYHOT, PreforkServer, for_each_interpreter, kill_group, spawn, wait_for, write_whole

# Each worker publishes what answer() says every 20 ms: whether the code
# live for it carries a probe, and how many calls it has made.
WORK = '''
import time

calls = 0


def nap():
    time.sleep(0.001)


def answer():
    global calls
    calls += 1
    nap()
    probed = any(type(c).__name__.endswith("Probe") for c in answer.__code__.co_consts)
    return "%s %d" % ("probed" if probed else "plain", calls)
'''


class ProfileTreeTest(unittest.TestCase):
    python = None
    preload = True

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-profiletree-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_whole(os.path.join(self.dir, "work.py"), WORK)
        self.server = PreforkServer(self.python, self.dir, "work", preload=self.preload)
        self.addCleanup(self.server.stop)
        self.wait_workers("plain", 2, "two workers answering")

    def wait_workers(self, expected, count, what):
        """Waits until `count` live workers answer `expected` ("plain",
        "probed") in calls made since: a call that began before the code
        was swapped may see the new code at its end. Returns the workers."""
        first_seen = {}

        def ready():
            live = [pid for pid in self.server.children() if self.alive(pid)]
            settled = []
            for pid, answer in self.server.answers(live).items():
                state, calls = (answer or "none 0").split()
                if state != expected:
                    first_seen.pop(pid, None)
                elif int(calls) >= first_seen.setdefault(pid, int(calls)) + 2:
                    settled.append(pid)
            return len(live) >= count and len(settled) == len(live) and live
        return wait_for(ready, 30, what)

    @staticmethod
    def alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False

    def profile(self, *args):
        process = spawn([PYHOT, "profile", str(self.server.pid), "work.answer", "work.nap", "--tree",
                         "--duration", "60s"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_group, process)
        return process

    def finish(self, process):
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 0, out + err)
        return out, err

    def test_every_process_reported_apart_with_exited_and_forked_workers(self):
        svg, collapsed = os.path.join(self.dir, "tree.svg"), os.path.join(self.dir, "tree.txt")
        process = self.profile("--json", "--flamegraph", svg, "--collapsed", collapsed)
        first, second = self.wait_workers("probed", 2, "both workers instrumented")[:2]
        os.kill(first, signal.SIGKILL)
        os.kill(self.server.pid, signal.SIGUSR1)  # forks a third worker
        # The killed worker may be listed until the master reaps it: the
        # third is the child that is neither of the first two.
        third = wait_for(lambda: [c for c in self.server.children() if c not in (first, second)][:1], 15,
                         "the third worker")[0]
        # A fork drops the instrumentation it inherits: pyhot's next pass
        # profiles the new worker itself.
        wait_for(lambda: not self.alive(first), 15, "the first worker to die")
        self.assertIn(third, self.wait_workers("probed", 2, "the new worker instrumented"))
        out, _ = self.finish(process)
        document = json.loads(out)
        self.assertTrue(document["ok"])
        processes = {entry["pid"]: entry for entry in document["processes"]}
        self.assertEqual(document["processes"][0]["pid"], self.server.pid)  # the master first
        self.assertEqual(processes[self.server.pid]["outcome"], "profiled")
        self.assertEqual(processes[self.server.pid]["threads"], [])  # the master never answers
        self.assertEqual(processes[first]["outcome"], "exited")
        self.assertNotIn("threads", processes[first])
        for pid in (second, third):
            self.assertEqual(processes[pid]["outcome"], "profiled")
            [thread] = processes[pid]["threads"]
            [answer] = thread["calls"]
            self.assertEqual(answer["function"], "work.answer")
            self.assertGreater(answer["hits"], 0)
            [nap] = answer["children"]
            self.assertEqual(nap["function"], "work.nap")
            # The one call running when the profile ended may be counted in one and not the other.
            self.assertLessEqual(abs(nap["hits"] - answer["hits"]), 1)
            self.assertGreaterEqual(nap["total_ms"], nap["hits"] * 1.0 * 0.9)
        # The instrumentation is gone from every worker.
        self.wait_workers("plain", 2, "the original code back in every worker")
        titles = [t.text for t in ElementTree.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}title")]
        for pid in (second, third):
            self.assertTrue(any(t.startswith("process %d, thread MainThread (" % pid) for t in titles), titles)
        with open(collapsed) as handle:
            stacks = [line.rsplit(" ", 1)[0] for line in handle.read().splitlines()]
        for pid in (second, third):
            self.assertIn("process %d;MainThread;work.answer;work.nap" % pid, stacks)
        self.assertFalse(any(stack.startswith("process %d;" % first) for stack in stacks), stacks)


class ProfileTreeWithoutPreloadTest(ProfileTreeTest):
    """The master never imports `work` (gunicorn without --preload): it is
    skipped with a note, its workers are profiled."""
    preload = False

    def test_every_process_reported_apart_with_exited_and_forked_workers(self):
        process = self.profile()
        first, second = self.wait_workers("probed", 2, "both workers instrumented")[:2]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not self.alive(first), 15, "the first worker to die")
        out, err = self.finish(process)
        lines = out.splitlines()
        self.assertIn("== process %d: none of the functions named is loaded there; skipped" % self.server.pid, lines)
        self.assertIn("== process %d: exited during the profile (its calls are not reported)" % first, lines)
        self.assertIn("== process %d" % second, lines)
        self.assertIn("process %d, thread MainThread" % second, lines)
        rows = [line.split() for line in lines if line.startswith("work.answer") or line.startswith("  work.nap")]
        self.assertEqual([row[0] for row in rows], ["work.answer", "work.nap"], out)
        self.assertEqual(lines[-1], "1 process profiled; 1 exited during the profile; "
                                    "1 without a function the patterns name, skipped.")
        self.assertIn("in 2 processes of the tree of %d" % self.server.pid, err)
        self.wait_workers("plain", 1, "the original code back")


for_each_interpreter(ProfileTreeTest, globals())
for_each_interpreter(ProfileTreeWithoutPreloadTest, globals())
del ProfileTreeTest, ProfileTreeWithoutPreloadTest

if __name__ == "__main__":
    unittest.main()
