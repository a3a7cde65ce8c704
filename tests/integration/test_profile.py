"""pyhot profile against real processes: exact hit counts, times of known
sleeps, exits by exception, recursion, threads, the output files, the
instrumentation gone after the profile (by identity, no names left), on
Ctrl-C and when pyhot is killed (the agent's lease)."""
import json
import os
import signal
import subprocess
import time
import unittest
import xml.etree.ElementTree as ElementTree

from harness import PYHOT, TargetTestCase, for_each_interpreter, pyhot, wait_for

WORK = '''
import asyncio
import functools
import threading
import time


def logged(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)
    return wrapper


def nap(seconds):
    time.sleep(seconds)


def step(i):
    nap(0.01)
    if i == 2:
        try:
            fail()
        except ValueError:
            pass
    return i


def fail():
    raise ValueError("boom")


def broken():
    return 1 / 0


def described(a, b):
    return sorted(locals())


@logged
def decorated(x):
    return x + 1


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def outer(n):
    def inner(k):
        return k * 2
    return sum(inner(k) for k in range(n))


def one_liner(x): return x * 3


def tabbed(n):
	doc = """two
lines"""
	for i in range(n):
		nap(0)
	if n < 0:
		raise ValueError("negative")
	return len(doc)


def narrow(x):
 return x + 1


class Shop:
    rate = 2

    def price(self, n):
        return n * self.rate

    @staticmethod
    def tax(n):
        return n // 10

    @classmethod
    def make(cls):
        return cls()

    @property
    def name(self):
        return "shop"


def run(n):
    total = 0
    for i in range(n):
        total += step(i)
    shop = Shop.make()
    total += shop.price(3) + Shop.tax(50) + len(shop.name)
    total += decorated(1) + fib(5) + outer(3) + one_liner(1)
    return total


def squares(n):
    for i in range(n):
        nap(0.01)
        yield i * i


def drain(n):
    total = 0
    for value in squares(n):
        nap(0.02)
        total += value
    return total


def failing(n):
    yield from squares(n)
    raise ValueError("after %d" % n)


async def fetch(i):
    nap(0.01)
    await asyncio.sleep(0.2)
    return i


async def gather(n):
    total = 0
    for i in range(n):
        total += await fetch(i)
    return total


def run_async(n):
    return asyncio.run(gather(n))


def in_threads(count):
    threads = [threading.Thread(target=run, args=(2,), name="worker-%d" % i) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count
'''

NAMES = ["run", "step", "nap", "fail", "broken", "decorated", "fib", "outer", "one_liner", "in_threads", "squares",
         "drain", "failing", "fetch", "gather", "run_async", "tabbed", "narrow", "described"]
SETUP = '''
import builtins
import work
ORIGINAL = {n: getattr(work, n).__code__ for n in %r}
ORIGINAL["wrapped"] = work.decorated.__wrapped__.__code__
ORIGINAL["price"] = work.Shop.price.__code__
ORIGINAL["name"] = work.Shop.name.fget.__code__
GLOBALS = sorted(vars(work))
BUILTINS = sorted(vars(builtins))
''' % (NAMES,)

RESTORED = ("all(getattr(work, n).__code__ is ORIGINAL[n] for n in %r) "
            "and work.decorated.__wrapped__.__code__ is ORIGINAL['wrapped'] "
            "and work.Shop.price.__code__ is ORIGINAL['price'] "
            "and work.Shop.name.fget.__code__ is ORIGINAL['name'] "
            "and sorted(vars(work)) == GLOBALS and sorted(vars(builtins)) == BUILTINS" % (NAMES,))


def walk(nodes, path=()):
    for node in nodes:
        yield path + (node["function"],), node
        for item in walk(node["children"], path + (node["function"],)):
            yield item


class ProfileTest(TargetTestCase):
    prepared = True

    def setUp(self):
        self.target = self.start({"work.py": WORK}, ["work"], setup=SETUP, prepared=self.prepared)

    def profile(self, *args, duration="60s"):
        """Starts pyhot profile; returns it once the target runs instrumented code."""
        process = self.spawn([PYHOT, "profile", str(self.target.pid)] + list(args) + ["--duration", duration],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: process.poll() is not None or self.target.call(
            "work.run.__code__ is not ORIGINAL['run']") == "True", 30, "the instrumentation")
        self.assertIsNone(process.poll(), process.stderr.read() if process.poll() is not None else "")
        return process

    def finish(self, process, sig=signal.SIGINT):
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        return out, err

    def test_call_tree_counts_times_and_exceptions(self):
        process = self.profile("work.**", "--json")
        self.assertEqual(self.target.call("work.run(5)"), "41")
        self.assertIn("ZeroDivisionError", self.target.call_error("work.broken()")["error"])
        # A function that reads its locals sees only its own names while profiled.
        self.assertEqual(self.target.call("work.described(1, 2)"), "['a', 'b']")
        out, _ = self.finish(process)
        self.assertEqual(self.target.call(RESTORED), "True")
        document = json.loads(out)
        threads = document["processes"][0]["threads"]
        nodes = {path: node for thread in threads for path, node in walk(thread["calls"])}
        run = nodes[("work.run",)]
        self.assertEqual(run["hits"], 1)
        self.assertEqual(nodes[("work.run", "work.step")]["hits"], 5)
        self.assertEqual(nodes[("work.run", "work.step", "work.nap")]["hits"], 5)
        self.assertEqual(nodes[("work.run", "work.step", "work.fail")]["raised"], 1)
        self.assertEqual(nodes[("work.run", "work.step")]["raised"], 0)
        self.assertEqual(nodes[("work.broken",)]["raised"], 1)
        self.assertEqual(nodes[("work.described",)]["hits"], 1)
        for name in ("work.Shop.make", "work.Shop.price", "work.Shop.tax", "work.Shop.name", "work.decorated",
                     "work.outer", "work.one_liner"):
            self.assertEqual(nodes[("work.run", name)]["hits"], 1, name)
        self.assertEqual(nodes[("work.run", "work.outer", "work.outer.<locals>.inner")]["hits"], 3)
        # Recursion is folded: fib(5) is 15 calls in one node, its time once.
        self.assertEqual(nodes[("work.run", "work.fib")]["hits"], 15)
        self.assertNotIn(("work.run", "work.fib", "work.fib"), nodes)
        # Five sleeps of 10 ms: the time is theirs, and nap's own.
        naps = nodes[("work.run", "work.step", "work.nap")]
        self.assertGreaterEqual(naps["total_ms"], 50)
        self.assertLess(naps["total_ms"], 50 * 3)
        self.assertAlmostEqual(naps["self_ms"], naps["total_ms"], delta=1)
        self.assertGreaterEqual(run["total_ms"], naps["total_ms"])
        self.assertLess(run["self_ms"], run["total_ms"] / 2)
        self.assertAlmostEqual(naps["per_hit_ms"], naps["total_ms"] / 5, delta=0.01)
        self.assertGreaterEqual(naps["max_ms"], naps["per_hit_ms"])
        selfs = sum(node["self_ms"] for path, node in nodes.items() if path[0] == "work.run")
        self.assertAlmostEqual(selfs, run["total_ms"], delta=0.5)

    def test_generators_and_coroutines_are_timed_while_running(self):
        process = self.profile("work.run", "work.nap", "work.drain", "work.squares", "work.failing", "work.fetch",
                               "work.gather", "work.run_async", "--json")
        self.assertEqual(self.target.call("work.drain(3)"), "5")
        self.assertEqual(self.target.call("next(work.squares(5))"), "0")  # closed after one value
        self.assertIn("after 2", self.target.call_error("list(work.failing(2))")["error"])
        started = time.monotonic()
        self.assertEqual(self.target.call("work.run_async(3)"), "3")
        waited = (time.monotonic() - started) * 1000
        out, _ = self.finish(process)
        self.assertEqual(self.target.call(RESTORED), "True")
        threads = json.loads(out)["processes"][0]["threads"]
        nodes = {path: node for thread in threads for path, node in walk(thread["calls"])}
        # The generator's naps are its own; the consumer's, between its
        # values, are not in the generator's time.
        squares = nodes[("work.drain", "work.squares")]
        self.assertEqual(squares["hits"], 1)
        self.assertEqual(nodes[("work.drain", "work.squares", "work.nap")]["hits"], 3)
        self.assertEqual(nodes[("work.drain", "work.nap")]["hits"], 3)
        own_naps = nodes[("work.drain", "work.squares", "work.nap")]["total_ms"]
        self.assertGreaterEqual(squares["total_ms"], own_naps)
        consumer_naps = nodes[("work.drain", "work.nap")]["total_ms"]  # 3 x 20 ms
        self.assertLess(squares["total_ms"], own_naps + consumer_naps / 2)
        self.assertEqual(nodes[("work.squares",)]["hits"], 1)  # closed early: a call, not an exception
        self.assertEqual(nodes[("work.squares",)]["raised"], 0)
        failing = nodes[("work.failing",)]
        self.assertEqual((failing["hits"], failing["raised"]), (1, 1))
        self.assertEqual(nodes[("work.failing", "work.squares")]["hits"], 1)
        # Three fetches, each 10 ms running and 200 ms suspended in asyncio.sleep.
        fetch = nodes[("work.run_async", "work.gather", "work.fetch")]
        self.assertEqual(fetch["hits"], 3)
        fetch_naps = nodes[("work.run_async", "work.gather", "work.fetch", "work.nap")]["total_ms"]
        self.assertGreaterEqual(fetch["total_ms"], fetch_naps)
        self.assertLess(fetch["total_ms"], fetch_naps + 300)  # not the 600 ms asleep
        gather = nodes[("work.run_async", "work.gather")]
        self.assertLess(gather["total_ms"], fetch["total_ms"] + 300)
        self.assertGreater(waited, 600)
        self.assertGreater(nodes[("work.run_async",)]["total_ms"], 600)  # a plain function: its whole time

    def test_table_threads_and_line_numbers(self):
        process = self.profile("work.run", "work.step", "work.in_threads", "work.broken")
        # While it lasts, the profile is listed with the patches.
        listed = pyhot("history", self.target.pid)
        self.assertIn("i1  ", listed.stdout)
        self.assertIn("  profile  4 functions instrumented", listed.stdout)
        self.assertIn("      work.step\n", listed.stdout)
        self.assertEqual(self.target.call("work.in_threads(2)"), "2")
        answer = self.target.call_error("work.broken()")
        out, _ = self.finish(process)
        # Tracebacks from instrumented code point at the real lines.
        self.assertIn('work.py", line %d, in broken' % (WORK.lstrip("\n").splitlines().index(
            "    return 1 / 0") + 1), answer["traceback"])
        self.assertIn("thread worker-0", out)
        self.assertIn("thread worker-1", out)
        for header in (line for line in out.splitlines() if line.startswith("function")):
            for column in ("hits", "total ms", "per hit", "max ms", "self ms"):
                self.assertIn(column, header)
        rows = [line.split() for line in out.splitlines() if line.strip().startswith("work.")]
        steps = [row for row in rows if row[0] == "work.step"]
        self.assertEqual([row[1] for row in steps], ["2", "2"])  # one row per worker thread
        self.assertIn("raised", out)
        self.assertEqual(self.target.call(RESTORED), "True")
        self.assertNotIn("functions instrumented", pyhot("history", self.target.pid).stdout)

    def test_bodies_indented_with_tabs_or_by_one_column(self):
        process = self.profile("work.run", "work.tabbed", "work.narrow", "work.nap", "--json")
        wait_for(lambda: self.target.call("work.tabbed.__code__ is not ORIGINAL['tabbed']") == "True", 10,
                 "work.tabbed instrumented")
        # The string's second line is its text: it has not moved.
        self.assertEqual(self.target.call("work.tabbed(3)"), "9")
        self.assertEqual(self.target.call("work.narrow(1)"), "2")
        answer = self.target.call_error("work.tabbed(-1)")
        out, err = self.finish(process)
        self.assertNotIn("not profiled", err)
        self.assertIn('work.py", line %d, in tabbed' % (WORK.lstrip("\n").splitlines().index(
            '\t\traise ValueError("negative")') + 1), answer["traceback"])
        threads = json.loads(out)["processes"][0]["threads"]
        nodes = {path: node for thread in threads for path, node in walk(thread["calls"])}
        self.assertEqual(nodes[("work.tabbed",)]["hits"], 2)
        self.assertEqual(nodes[("work.tabbed",)]["raised"], 1)
        self.assertEqual(nodes[("work.tabbed", "work.nap")]["hits"], 3)
        self.assertEqual(nodes[("work.narrow",)]["hits"], 1)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_pattern_that_matches_nothing_names_the_nearest(self):
        done = pyhot("profile", self.target.pid, "work.stepp", "--duration", "1s")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("no function matches 'work.stepp'", done.stderr)
        self.assertIn("work.step", done.stderr)
        done = pyhot("profile", self.target.pid, "work.Shop.*", "nowhere.**", "--duration", "1s")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("nowhere.**", done.stderr)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_duration_file_pattern_and_output_files(self):
        directory = self.target.dir
        svg, speedscope, collapsed = (os.path.join(directory, n) for n in ("out.svg", "out.json", "out.txt"))
        process = self.profile(self.target.path("work.py"), "--flamegraph", svg,
                               "--speedscope", speedscope, "--collapsed", collapsed, duration="4s")
        self.target.call("work.run(3)")
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertIn("work.run", out)
        self.assertEqual(self.target.call(RESTORED), "True")
        root = ElementTree.parse(svg).getroot()
        titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
        self.assertTrue(any(t.startswith("work.step (") for t in titles), titles)
        self.assertTrue(any(t.startswith("work.nap (") for t in titles), titles)
        with open(speedscope) as handle:
            document = json.load(handle)
        self.assertEqual(document["$schema"], "https://www.speedscope.app/file-format-schema.json")
        names = [frame["name"] for frame in document["shared"]["frames"]]
        self.assertIn("work.nap", names)
        for profile in document["profiles"]:
            for field in ("type", "name", "unit", "startValue", "endValue", "samples", "weights"):
                self.assertIn(field, profile)
            self.assertEqual(len(profile["samples"]), len(profile["weights"]))
            self.assertTrue(all(0 <= i < len(names) for s in profile["samples"] for i in s))
        with open(collapsed) as handle:
            lines = handle.read().splitlines()
        stacks = dict(line.rsplit(" ", 1) for line in lines)
        nap = [stack for stack in stacks if stack.endswith(";work.run;work.step;work.nap")]
        self.assertEqual(len(nap), 1, lines)
        self.assertGreaterEqual(int(stacks[nap[0]]), 30000)  # three 10 ms sleeps, in microseconds

    def test_killed_pyhot_leaves_no_instrumentation(self):
        process = self.profile("work.**", "--lease", "2s")
        self.target.call("work.run(1)")
        process.kill()
        process.communicate(timeout=10)
        started = time.monotonic()
        wait_for(lambda: self.target.call(RESTORED) == "True", 15, "the agent to remove the instrumentation")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.target.call("work.run(1)"), "31")


    def test_forked_child_removes_its_copy_and_live_table(self):
        process = self.profile("work.run", "work.step", "--live", duration="3s")
        marker = os.path.join(self.target.dir, "child.txt")
        # The child runs only this expression, then exits without cleanup.
        # `os` is not in the target's namespace: the child must take it from __import__, or it
        # raises NameError instead of exiting and may answer the request before the parent does.
        self.target.call("(lambda os: (lambda pid: pid or (open(%r, 'w').write(str(work.run.__code__ is ORIGINAL['run'])),"
                         " os._exit(0)))(os.fork()))(__import__('os'))" % marker)
        def answer():
            if not os.path.exists(marker):
                return None
            with open(marker) as handle:
                return handle.read()
        self.assertEqual(wait_for(answer, 10, "the child's answer"), "True")
        self.assertEqual(self.target.call("work.run.__code__ is ORIGINAL['run']"), "False")  # the parent's stays
        self.target.call("work.run(1)")
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertIn("work.run", out)
        self.assertIn("self ms", out)
        self.assertEqual(self.target.call(RESTORED), "True")


    def test_function_edited_since_import_is_left_alone(self):
        self.target.edit("work.py", 'raise ValueError("boom")', 'raise ValueError("edited")')
        process = self.profile("work.**")
        self.target.call("work.run(3)")
        out, err = self.finish(process)
        if self.prepared:
            # The agent recorded the imported text: that is what is profiled.
            self.assertNotIn("not profiled", err)
            self.assertIn("work.fail", out)
        else:
            self.assertIn("not profiled: work.fail: the live code of work.fail is not the text", err)
            self.assertNotIn("work.fail", out)
            self.assertIn("work.step", out)
        self.assertEqual(self.target.call(RESTORED), "True")


    def test_function_reloaded_while_profiled_keeps_the_new_code(self):
        process = self.profile("work.run", "work.nap")
        self.target.call("work.run(1)")
        self.target.edit("work.py", "    time.sleep(seconds)", "    time.sleep(seconds)\n    return 'new'")
        pyhot("reload", self.target.pid, self.target.path("work.py"), check=0)
        self.assertEqual(self.target.call("work.nap(0)"), "'new'")
        # pyhot sees the reload at its next read and profiles the new code.
        wait_for(lambda: self.target.call(
            "any('Probe' in type(c).__name__ for c in work.nap.__code__.co_consts)") == "True", 15,
            "the new code of work.nap to be instrumented")
        for _ in range(3):
            self.assertEqual(self.target.call("work.nap(0)"), "'new'")
        out, err = self.finish(process)
        self.assertIn("note: work.nap was reloaded while profiled; its new code was profiled from then on", out)
        rows = [line.split() for line in out.splitlines() if line.startswith("work.nap ")]
        self.assertEqual([row[1] for row in rows], ["3"], out)  # the new code's calls, at the top level
        self.assertEqual(self.target.call("work.nap(0)"), "'new'")
        self.assertEqual(self.target.call(
            "[type(c).__name__ for c in work.nap.__code__.co_consts if 'Probe' in type(c).__name__]"), "[]")
        # run moved down a line with the edit: the original code is back, moved
        # the same way, with no probe left in it.
        self.assertEqual(self.target.call(
            "[type(c).__name__ for c in work.run.__code__.co_consts if 'Probe' in type(c).__name__]"), "[]")
        self.assertEqual(self.target.call("work.run.__code__.co_firstlineno - ORIGINAL['run'].co_firstlineno"), "1")
        self.assertEqual(self.target.call("work.run.__code__.co_code == ORIGINAL['run'].co_code"), "True")
        # Reverting that reload brings back the code from before the profile.
        pyhot("revert", self.target.pid, check=0)
        self.assertEqual(self.target.call(RESTORED), "True")


class AttachedProfileTest(ProfileTest):
    prepared = False


for_each_interpreter(ProfileTest, globals())
for_each_interpreter(AttachedProfileTest, globals())
del ProfileTest, AttachedProfileTest

if __name__ == "__main__":
    unittest.main()
