"""The edits real projects make (issue 14, and issue 10's "wrong on every
reload"): each testdata/real_code/<case>/ holds before.py and after.py, and
`expect`: `exact` (after the reload the live module equals a fresh import of
after.py, through old and new references; and each line of `calls`, if the
case has one, a Python expression evaluated in the module, gives what it
gives in a fresh import) or `refused: <words>` (pyhot says
the edit needs a restart, in those words, and nothing changed). A case
with `first_reload_skip` skips its first-reload runs, for the reason that
file gives (a first-contact gap, not a gap of the patch compiler); one
starting `attached:` skips only the attached target's first reload.

Every case runs in a target that imported before.py, prepared (`pyhot run`)
and attached (started bare), as a module's first reload and as a later one
(an unchanged reload first, which must change nothing), on every
interpreter found. The live module is compared by bench/real_edits' oracle
(target.py fingerprints it; replay.py's first_difference compares)."""
import json
import os
import select
import sys
import unittest

from harness import PYHOT, ROOT, TargetTestCase, for_each_interpreter, kill_group, pyhot

sys.path.insert(0, os.path.join(ROOT, "bench", "real_edits"))
from replay import TARGET, first_difference  # noqa: E402

CASES = os.path.join(ROOT, "testdata", "real_code")


def cases():
    return sorted(name for name in os.listdir(CASES) if os.path.isdir(os.path.join(CASES, name)))


def read(case, name):
    with open(os.path.join(CASES, case, name), encoding="utf-8") as handle:
        return handle.read()


class Live:
    """target.py holding module `m` imported from path; asked over its pipes."""

    def __init__(self, test, python, path, prepared):
        command = [python, "-X", "utf8", TARGET, "m", path]
        if prepared:
            command = [PYHOT, "run", "--"] + command
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        import subprocess
        self.process = test.spawn(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self._line(30, "start")
        if not line.startswith("{"):
            raise AssertionError("the target did not import before.py: %r" % line)
        self.pid = self.process.pid

    def _line(self, timeout, what):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("the target did not answer %s within %d s" % (what, timeout))
        return self.process.stdout.readline()

    def ask(self, op, **arguments):
        self.process.stdin.write(json.dumps(dict(arguments, op=op)) + "\n")
        self.process.stdin.flush()
        line = self._line(30, op)
        if not line:
            raise AssertionError("the target exited during %s" % op)
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(reply["error"])
        return reply["value"]


class RealCodeTest(TargetTestCase):
    python = None

    def replay(self, case, prepared, warm):
        directory = self.make_dir()
        path = os.path.join(directory, "m.py")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(read(case, "before.py"))
        live = Live(self, self.python, path, prepared)
        before = live.ask("live")
        if warm:
            done = pyhot("reload", live.pid, path, timeout=120)
            self.assertEqual(done.returncode, 0, "the unchanged reload failed: " + done.stdout + done.stderr)
            self.assertIsNone(first_difference(live.ask("live"), before), "the unchanged reload changed the module")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(read(case, "after.py"))
        fresh = live.ask("fresh", path=path)
        done = pyhot("reload", live.pid, path, timeout=120)
        state = live.ask("live")
        expect = read(case, "expect").strip()
        output = done.stdout + done.stderr
        if expect == "exact":
            self.assertEqual(done.returncode, 0, output)
            self.assertIsNone(first_difference(state, fresh, old=before), output)
            if os.path.exists(os.path.join(CASES, case, "calls")):
                calls = [line for line in read(case, "calls").splitlines() if line.strip()]
                self.assertEqual(live.ask("calls", expressions=calls), live.ask("calls", expressions=calls, fresh=True),
                                 "calls give what they give after a fresh import: " + output)
        else:
            self.assertNotEqual(done.returncode, 0, output)
            self.assertIn("cannot be applied to the live process", output)
            self.assertIn(expect.split(":", 1)[1].strip(), output)
            self.assertIsNone(first_difference(state, before), "refused, but the module changed")
        kill_group(live.process)

    def make_dir(self):
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="pyhot-real-")
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def test_every_case(self):
        for case in cases():
            for prepared in (True, False):
                for warm in (False, True):
                    with self.subTest(case=case, prepared=prepared, reload="second" if warm else "first"):
                        skip = os.path.join(CASES, case, "first_reload_skip")
                        if not warm and os.path.exists(skip):
                            reason = read(case, "first_reload_skip").strip()
                            if prepared and reason.startswith("attached:"):
                                pass  # a prepared target has the imported text: no gap there
                            else:
                                self.skipTest(reason)
                        self.replay(case, prepared, warm)


for_each_interpreter(RealCodeTest, globals())
del RealCodeTest

if __name__ == "__main__":
    unittest.main()
