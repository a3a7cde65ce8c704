"""Bad input gets one clear line, the right exit code (1 refused with nothing
changed, 2 usage) and leaves the target as it was (issue 9, items 9 and 11)."""
import os
import tempfile
import unittest

from harness import TargetTestCase, for_each_interpreter, pyhot

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


class UsageTest(unittest.TestCase):
    def test_pid_that_cannot_be_a_process_is_a_usage_error(self):
        for pid in ("0", "-3"):
            done = pyhot("reload", pid, "app.py")
            self.assertEqual(done.returncode, 2, pid + ": " + done.stdout + done.stderr)
            self.assertEqual(len((done.stdout + done.stderr).strip().splitlines()), 1, done.stderr)

    def test_defs_and_check_of_a_directory_are_usage_errors(self):
        directory = tempfile.mkdtemp(prefix="pyhot-dir-")
        self.addCleanup(os.rmdir, directory)
        for args in (("defs", directory), ("check", directory, directory)):
            done = pyhot(*args)
            self.assertEqual(done.returncode, 2, " ".join(args) + ": " + done.stdout + done.stderr)
            self.assertIn("is a directory", done.stderr)


for_each_interpreter(EmptyFileTest, globals())
del EmptyFileTest

if __name__ == "__main__":
    unittest.main()
