"""`pyhot bundle` and `pyhot apply`: a patch made from a git revision is
applied to a live process (or tree) only where the code live is the text it
was made against; anything else is refused with nothing changed."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import PreforkServer, interpreters, pyhot, wait_for, write_whole


def work_text(value):
    return "def answer():\n    return %d\n\n\ndef other():\n    return 'x'\n" % value


class BundleTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-bundle-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write("work.py", work_text(1))
        self.git("init", "-q")
        self.server = PreforkServer(self.python, self.dir)
        self.addCleanup(self.server.stop)
        self.commit("v1")
        self.master = self.server.process
        self.children = self.server.children
        self.answers = self.server.answers
        self.wait_answers("1", "two workers answering")

    def git(self, *args):
        subprocess.run(["git", "-c", "user.name=pyhot", "-c", "user.email=pyhot@example.invalid"] + list(args),
                       cwd=self.dir, check=True, capture_output=True, timeout=30)

    def commit(self, message):
        self.git("add", "work.py", "server.py")
        self.git("commit", "-q", "-m", message)

    def write(self, name, text):
        return write_whole(os.path.join(self.dir, name), text)

    def wait_answers(self, expected, what):
        wait_for(lambda: len(self.children()) == 2 and all(v == expected for v in self.answers().values()), 15, what)

    def bundle(self, name):
        done = pyhot("bundle", "work.py", "-o", name, cwd=self.dir)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        with open(os.path.join(self.dir, name)) as handle:
            return json.load(handle)

    def test_bundle_applies_across_the_tree_and_reverts_by_its_id(self):
        self.write("work.py", work_text(2))
        bundle = self.bundle("fix.pyhot")
        self.assertEqual((bundle["format"], bundle["version"]), ("pyhot-bundle", 1))
        self.assertEqual([m["module"] for m in bundle["modules"]], ["work"])
        self.assertTrue(bundle["revision"].startswith("HEAD ("), bundle["revision"])
        path = os.path.join(self.dir, "fix.pyhot")

        dry = pyhot("apply", self.master.pid, path, "--tree", "--dry-run", timeout=60)
        self.assertEqual(dry.returncode, 0, dry.stdout + dry.stderr)
        self.assertEqual(dry.stdout.count("would apply; nothing was changed"), 3, dry.stdout)
        self.assertIn("would swap work.answer", dry.stdout)
        self.wait_answers("1", "the dry run to leave the code alone")

        done = pyhot("apply", self.master.pid, path, "--tree", timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("`pyhot revert %d %s --tree` undoes it in every process." % (self.master.pid, bundle["id"]),
                      done.stdout)
        self.wait_answers("2", "every worker on the bundle")

        again = pyhot("apply", self.master.pid, path, "--json", timeout=60)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertTrue(json.loads(again.stdout)["already_live"], again.stdout)

        reverted = pyhot("revert", self.master.pid, bundle["id"], "--tree", timeout=60)
        self.assertEqual(reverted.returncode, 0, reverted.stdout + reverted.stderr)
        self.wait_answers("1", "every worker back on the old code")

    def test_a_bundle_made_against_another_version_is_refused(self):
        # v1.5 is committed; the bundle is made against it; the processes run v1.
        self.write("work.py", work_text(5))
        self.commit("v1.5")
        self.write("work.py", work_text(6))
        path = os.path.join(self.dir, "v15.pyhot")
        self.bundle("v15.pyhot")
        worker = self.children()[0]
        done = pyhot("apply", worker, path, "--json", timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        document = json.loads(done.stdout)
        self.assertEqual(document["baseline_differs"], "work")
        self.assertIn("is not the text bundle", document["error"])
        tree = pyhot("apply", self.master.pid, path, "--tree", timeout=60)
        self.assertEqual(tree.returncode, 1, tree.stdout + tree.stderr)
        self.assertIn("nothing was changed", tree.stdout)
        self.assertNotIn("undoes it", tree.stdout)
        self.wait_answers("1", "nothing changed anywhere")

    def test_what_is_not_a_bundle_is_refused(self):
        self.write("work.py", work_text(2))
        bundle = self.bundle("fix.pyhot")
        bundle["modules"][0]["text"] = work_text(3)
        self.write("damaged.pyhot", json.dumps(bundle))
        bundle["version"] = 2
        self.write("future.pyhot", json.dumps(bundle))
        self.write("plain.pyhot", "not json")
        pid = self.children()[0]
        for name, words in (("damaged.pyhot", "is damaged"), ("future.pyhot", "this pyhot reads version 1"),
                            ("plain.pyhot", "is not a pyhot bundle"), ("missing.pyhot", "missing.pyhot")):
            done = pyhot("apply", pid, os.path.join(self.dir, name), timeout=60)
            self.assertEqual(done.returncode, 1, name + ": " + done.stdout + done.stderr)
            self.assertIn(words, done.stderr)
        self.assertEqual(pyhot("apply", pid).returncode, 2)
        unchanged = pyhot("bundle", "server.py", "-o", "none.pyhot", cwd=self.dir)
        self.assertEqual(unchanged.returncode, 1, unchanged.stdout + unchanged.stderr)
        self.assertIn("has not changed since HEAD", unchanged.stderr)
        self.wait_answers("1", "nothing changed")


for label, path in interpreters():
    if label in ("debian-python3", "python3.8", "python3.13"):
        name = "BundleTest_" + label.replace(".", "_").replace("-", "_")
        globals()[name] = type(name, (BundleTest,), {"python": path})
del BundleTest

if __name__ == "__main__":
    unittest.main()
