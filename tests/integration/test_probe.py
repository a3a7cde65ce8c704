"""pyhot probe and pyhot trace against real processes: a line's locals equal
what pdb shows at that line, expressions and code at a line, every value of
a variable with its line, a line where no statement starts refused, line
numbers and tracebacks unchanged while probed; trace's call tree with its
times, --min-ms, the thread's own profile hook put back; after each, the
original code objects are back by identity and nothing is left in the
module or in builtins; pyhot killed (the lease)."""
import json
import os
import subprocess
import time
import unittest

from harness import PYHOT, TargetTestCase, for_each_interpreter, pyhot, wait_for

WORK = '''
import time


def compute(a, b):
    total = a
    for i in range(b):
        total = total + i
    items = [total,
             b]
    result = total * 2
    return result


def broken(x):
    y = x + 1
    return y / 0


def helper(y):
    time.sleep(0.002)
    return y * 2


def quick(y):
    return y


def outer(x):
    quick(x)
    return helper(x) + helper(x + 1)
'''

NAMES = ["compute", "broken", "helper", "quick", "outer"]
SETUP = '''
import builtins
import sys
import work
ORIGINAL = {n: getattr(work, n).__code__ for n in %r}
GLOBALS = sorted(vars(work))
BUILTINS = sorted(vars(builtins))
def HOOK(frame, event, arg):
    pass
''' % (NAMES,)

RESTORED = ("all(getattr(work, n).__code__ is ORIGINAL[n] for n in %r) "
            "and sorted(vars(work)) == GLOBALS and sorted(vars(builtins)) == BUILTINS" % (NAMES,))

LINES = WORK.lstrip("\n").splitlines()


def line_of(text):
    return LINES.index(text) + 1


class ProbeTest(TargetTestCase):

    def setUp(self):
        self.target = self.start({"work.py": WORK}, ["work"], setup=SETUP)

    def run_pyhot(self, *args, function="work.compute"):
        """Starts pyhot probe/trace; returns it once the target runs the probed code."""
        process = self.spawn([PYHOT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: process.poll() is not None or self.target.call(
            "%s.__code__ is not ORIGINAL[%r]" % (function, function.split(".")[-1])) == "True",
            30, "the probe")
        self.assertIsNone(process.poll(), process.stderr.read() if process.poll() is not None else "")
        return process

    def ended(self, process, code=0):
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, code, err)
        self.assertEqual(self.target.call(RESTORED), "True")
        return [json.loads(line) for line in out.splitlines() if line.strip()], err

    def pdb_locals(self, line):
        """What pdb prints for sorted(locals().items()) at work.py:line in compute(1, 3)."""
        script = "import pdb, sys; sys.path.insert(0, %r); import work; pdb.runcall(work.compute, 1, 3)" % (
            self.target.dir,)
        commands = "b %s:%d\nc\np sorted(locals().items())\nq\n" % (self.target.path("work.py"), line)
        done = subprocess.run([self.python, "-c", script], input=commands, capture_output=True, text=True,
                              timeout=60, cwd=self.target.dir)
        found = [part.strip() for part in done.stdout.split("(Pdb)") if part.strip().startswith("[(")]
        self.assertEqual(len(found), 1, done.stdout + done.stderr)
        return found[0]

    def test_locals_at_a_line_equal_what_pdb_shows(self):
        line = line_of("    result = total * 2")
        where = "%s:%d" % (self.target.path("work.py"), line)
        process = self.run_pyhot("probe", str(self.target.pid), where, "--locals", "-n", "1", "--json")
        self.assertEqual(self.target.call("work.compute(1, 3)"), "8")
        (event,), _ = self.ended(process)
        self.assertEqual(event["line"], line)  # the frame's own line number at the probe
        shown = "[%s]" % ", ".join("(%r, %s)" % (name, value) for name, value in sorted(event["locals"].items()))
        self.assertEqual(shown, self.pdb_locals(line))

    def test_print_and_code_at_a_line(self):
        where = "%s:%d" % (self.target.path("work.py"), line_of("        total = total + i"))
        process = self.run_pyhot("probe", str(self.target.pid), where, "--print", "total * 10", "--print", "i",
                                 "--code", "print('seen', total, i); total = -1", "-n", "3")
        self.assertEqual(self.target.call("work.compute(5, 3)"), "16")  # --code's assignment stays its own
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertEqual(self.target.call(RESTORED), "True")
        blocks = [line for line in out.splitlines() if line.startswith("  ")]
        self.assertEqual(blocks, ["  total * 10 = 50", "  i = 0", "  | seen 5 0",
                                  "  total * 10 = 50", "  i = 1", "  | seen 5 1",
                                  "  total * 10 = 60", "  i = 2", "  | seen 6 2"])
        self.assertIn("work.compute:%d" % line_of("        total = total + i"), out)
        self.assertNotIn("seen", self.target.output())  # never the program's stdout

    def test_every_value_of_a_variable_with_its_line(self):
        process = self.run_pyhot("probe", str(self.target.pid), "work", "compute", "--var", "total",
                                 "-n", "4", "--json")
        self.target.call("work.compute(1, 3)")
        events, _ = self.ended(process)
        first, loop = line_of("    total = a"), line_of("        total = total + i")
        self.assertEqual([(e["line"], e["value"]) for e in events],
                         [(first, "1"), (loop, "1"), (loop, "2"), (loop, "4")])

    def test_tracebacks_and_lines_unchanged_while_probed(self):
        where = "%s:%d" % (self.target.path("work.py"), line_of("    return y / 0"))
        process = self.run_pyhot("probe", str(self.target.pid), where, "--print", "y", "--json",
                                 function="work.broken")
        answer = self.target.call_error("work.broken(1)")
        self.assertIn('work.py", line %d, in broken' % line_of("    return y / 0"), answer["traceback"])
        # The lines the code knows are the original's, no more, no fewer.
        lines = "sorted(set(l for _, l in __import__('dis').findlinestarts(%s) if l))"
        self.assertEqual(self.target.call(lines % "work.broken.__code__"), self.target.call(lines % "ORIGINAL['broken']"))
        self.assertEqual(self.target.call("work.broken.__code__.co_firstlineno == "
                                          "ORIGINAL['broken'].co_firstlineno"), "True")
        time.sleep(0.3)
        process.send_signal(2)
        events, _ = self.ended(process)
        self.assertEqual([(e["line"], e["prints"]) for e in events],
                         [(line_of("    return y / 0"), {"y": "2"})])

    def test_line_where_no_statement_starts_is_refused(self):
        inside = line_of("             b]")  # the second line of a statement
        done = pyhot("probe", self.target.pid, "%s:%d" % (self.target.path("work.py"), inside), "--locals")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("no statement of compute starts at line %d (statements start at %d, %d, %d, %d, %d)\n"
                      % (inside, inside - 3, inside - 2, inside - 1, inside + 1, inside + 2), done.stderr)
        self.assertEqual(done.stderr.count("nothing was instrumented"), 1, done.stderr)
        done = pyhot("probe", self.target.pid, "%s:1" % self.target.path("work.py"), "--locals")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("is not in a function", done.stderr)
        done = pyhot("probe", self.target.pid, "%s:5" % self.target.path("work.py"))
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_trace_tree_times_and_the_threads_hook_put_back(self):
        process = self.run_pyhot("trace", str(self.target.pid), "work", "outer", "-n", "1", "--json",
                                 function="work.outer")
        self.assertEqual(self.target.call(
            "(sys.setprofile(HOOK), work.outer(2), sys.getprofile() is HOOK, sys.setprofile(None))[1:3]"),
            "(10, True)")
        (event,), _ = self.ended(process)
        tree = event["tree"]
        self.assertEqual(tree["function"], "work.outer")
        self.assertEqual(tree["where"], "work.py:%d" % line_of("def outer(x):"))
        names = [child["function"] for child in tree["children"]]
        self.assertEqual(names, ["work.quick", "work.helper", "work.helper"])
        helper = tree["children"][1]
        self.assertEqual(helper["where"], "work.py:%d" % line_of("def helper(y):"))
        self.assertGreaterEqual(helper["duration_ms"], 2)
        self.assertGreaterEqual(tree["duration_ms"], 4)
        self.assertEqual([c["function"] for c in helper["children"]], [])  # time.sleep is C: not a frame
        process = self.run_pyhot("trace", str(self.target.pid), "work", "outer", "-n", "1", "--min-ms", "1",
                                 function="work.outer")
        self.target.call("work.outer(1)")
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^\[\d+\.\d{3}ms\] work\.outer  work\.py:\d+$")
        self.assertRegex(lines[2], r"^├─ \[\d+\.\d{3}ms\] work\.helper  work\.py:\d+$")
        self.assertRegex(lines[3], r"^└─ \[\d+\.\d{3}ms\] work\.helper  work\.py:\d+$")
        self.assertNotIn("work.quick", out)
        self.assertEqual(self.target.call(RESTORED), "True")
        self.assertEqual(self.target.call("sys.getprofile()"), "None")

    def test_killed_pyhot_leaves_no_probe(self):
        where = "%s:%d" % (self.target.path("work.py"), line_of("    result = total * 2"))
        process = self.run_pyhot("probe", str(self.target.pid), where, "--locals", "--lease", "2s")
        process.kill()
        process.communicate(timeout=10)
        started = time.monotonic()
        wait_for(lambda: self.target.call(RESTORED) == "True", 15, "the agent to remove the probe")
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(self.target.call("work.compute(1, 3)"), "8")


for_each_interpreter(ProbeTest, globals())
del ProbeTest

if __name__ == "__main__":
    unittest.main()
