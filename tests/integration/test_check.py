"""`pyhot check` and `pyhot defs` as a user runs them: on files, in a real git
repository (--staged, REV), with golden files for the human output.

Refresh the golden files after an intended change of wording:
    PYHOT_REFRESH_GOLDEN=1 python3 -m unittest test_check
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, pyhot

TESTDATA = os.path.join(ROOT, "testdata")
GOLDEN = os.path.join(ROOT, "tests", "golden", "check")


def git(directory, *args):
    subprocess.run(["git", "-C", directory, "-c", "user.email=t@example.com", "-c", "user.name=t"] + list(args),
                   check=True, capture_output=True, timeout=60)


class CheckGoldenTest(unittest.TestCase):
    def test_every_rule_pair_matches_its_golden_output(self):
        for rule in sorted(os.listdir(TESTDATA)):
            if not os.path.isfile(os.path.join(TESTDATA, rule, "before.py")):
                continue   # not a rule's pair (testdata/first_contact/ holds pairs of its own)
            with self.subTest(rule=rule):
                done = pyhot("check", "testdata/%s/before.py" % rule, "testdata/%s/after.py" % rule, cwd=ROOT)
                expected_exit = 1 if " restart " in done.stdout else 0
                self.assertEqual(done.returncode, expected_exit, done.stdout + done.stderr)
                golden = os.path.join(GOLDEN, rule + ".txt")
                if os.environ.get("PYHOT_REFRESH_GOLDEN"):
                    with open(golden, "w") as handle:
                        handle.write(done.stdout)
                with open(golden) as handle:
                    self.assertEqual(done.stdout, handle.read())


class CheckGitTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp(prefix="pyhot-check-")
        self.addCleanup(shutil.rmtree, self.repo)
        git(self.repo, "init", "-q")
        shutil.copy(os.path.join(ROOT, "examples", "shop", "pricing.py"), self.repo)
        git(self.repo, "add", ".")
        git(self.repo, "commit", "-qm", "initial")

    def edit(self, old, new):
        path = os.path.join(self.repo, "pricing.py")
        with open(path) as handle:
            text = handle.read()
        self.assertIn(old, text)
        with open(path, "w") as handle:
            handle.write(text.replace(old, new))

    def test_staged_live_change_passes_the_hook(self):
        self.edit("return BASE_PRICES[item] * quantity", "return BASE_PRICES[item] * quantity * 2")
        git(self.repo, "add", "pricing.py")
        done = pyhot("check", "--staged", cwd=self.repo)
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertIn("pricing.py:6  price_of  swap", done.stdout)
        self.assertIn("1 change in 1 file: 1 can be applied live, 0 need a restart", done.stdout)

    def test_staged_restart_change_fails_the_hook_and_unstaged_edits_do_not_count(self):
        self.edit("class Basket:", "class Basket(dict):")
        git(self.repo, "add", "pricing.py")
        self.edit("class Basket(dict):", "class Basket:")   # work tree back; the index keeps the change
        done = pyhot("check", "--staged", cwd=self.repo)
        self.assertEqual(done.returncode, 1)
        self.assertIn("Basket  restart  class bases", done.stdout)

    def test_revision_against_work_tree_with_json(self):
        self.edit("return BASE_PRICES[item] * quantity", "return BASE_PRICES[item] * quantity * 2")
        done = pyhot("check", "HEAD", "--json", cwd=self.repo)
        self.assertEqual(done.returncode, 0)
        document = json.loads(done.stdout)
        self.assertTrue(document["ok"])
        self.assertEqual(document["summary"], {"changes": 1, "live": 1, "restart": 0, "syntax_errors": 0})
        change = document["files"][0]["changes"][0]
        self.assertEqual((change["qualname"], change["verdict"], change["rule"]), ("price_of", "swap", "body_changed"))

    def test_syntax_error_fails_with_line_and_column(self):
        self.edit("def price_of(item, quantity=1):", "def price_of(item, quantity=1:")
        done = pyhot("check", "HEAD", cwd=self.repo)
        self.assertEqual(done.returncode, 1)
        self.assertRegex(done.stdout, r"pricing\.py:6:\d+  syntax error")

    def test_as_a_plain_git_pre_commit_hook(self):
        hook = os.path.join(self.repo, ".git", "hooks", "pre-commit")
        with open(hook, "w") as handle:
            handle.write("#!/bin/sh\nexec '%s' check --staged\n" % pyhot_path())
        os.chmod(hook, 0o755)
        self.edit("class Basket:", "class Basket(dict):")
        git(self.repo, "add", "pricing.py")
        refused = subprocess.run(["git", "-C", self.repo, "-c", "user.email=t@e", "-c", "user.name=t",
                                  "commit", "-qm", "bases"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("restart", refused.stdout + refused.stderr)

    def test_usage_errors_exit_2_with_one_line(self):
        outside = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, outside)
        done = pyhot("check", "--staged", cwd=outside)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stderr.strip(), "pyhot: not a git repository: run `pyhot check` inside one, or give OLD.py NEW.py")
        done = pyhot("check", "no-such-revision", cwd=self.repo)
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown revision 'no-such-revision'", done.stderr)
        done = pyhot("check", "missing.py", "other.py", cwd=self.repo)
        self.assertEqual(done.returncode, 2)
        self.assertIn("cannot read 'missing.py'", done.stderr)


def pyhot_path():
    from harness import PYHOT
    return PYHOT


class DefsTest(unittest.TestCase):
    def test_json_lists_qualnames_kinds_and_hashes(self):
        done = pyhot("defs", os.path.join(ROOT, "examples", "shop", "pricing.py"), "--json")
        self.assertEqual(done.returncode, 0)
        definitions = json.loads(done.stdout)["definitions"]
        self.assertEqual([(d["qualname"], d["kind"], d["line"]) for d in definitions],
                         [("price_of", "function", 6), ("Basket", "class", 10), ("Basket.__init__", "method", 11),
                          ("Basket.add", "method", 14), ("Basket.total", "method", 17)])
        self.assertTrue(all(len(d["hash"]) == 16 for d in definitions))


if __name__ == "__main__":
    unittest.main()
