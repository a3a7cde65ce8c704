"""pyhot watch against real processes: known arguments and return values,
exceptions with their real lines, filters, -n, expressions, generators and
coroutines, threads, a __repr__ that raises, a slow pyhot (events lost with
a count, the program never waits), --json one object per line, a reload
while watched, history and revert, pyhot killed (the lease), a forked
child (its copy removed at once); after each, the original code objects are
back by identity and no name is left in the module or in builtins."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from harness import PYHOT, TargetTestCase, for_each_interpreter, pyhot, wait_for

WORK = '''
import asyncio
import threading


def price_of(item, quantity=1, *rest, **extra):
    if quantity < 0:
        raise ValueError("negative quantity %d" % quantity)
    return len(item) * 30 * quantity


class Cart:
    def __init__(self):
        self.items = []

    def add(self, item, quantity):
        self.items.append((item, quantity))
        return len(self.items)


class Loud:
    def __repr__(self):
        raise RuntimeError("no repr")


def echo(value):
    return value


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    return "done"


async def fetch(x):
    await asyncio.sleep(0)
    return x * 2


def nested(x):
    def inner(y):
        return y + 1
    return inner(x) * 10


def many(n):
    for i in range(n):
        price_of("a", i)
    return n


def in_threads(count):
    threads = [threading.Thread(target=price_of, args=("t%d" % i, i), name="worker-%d" % i)
               for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count
'''

NAMES = ["price_of", "echo", "countdown", "fetch", "nested", "many", "in_threads"]
SETUP = '''
import asyncio
import builtins
import os
import work
ORIGINAL = {n: getattr(work, n).__code__ for n in %r}
ORIGINAL["add"] = work.Cart.add.__code__
GLOBALS = sorted(vars(work))
BUILTINS = sorted(vars(builtins))
''' % (NAMES,)

RESTORED = ("all(getattr(work, n).__code__ is ORIGINAL[n] for n in %r) "
            "and work.Cart.add.__code__ is ORIGINAL['add'] "
            "and sorted(vars(work)) == GLOBALS and sorted(vars(builtins)) == BUILTINS" % (NAMES,))

LINES = WORK.lstrip("\n").splitlines()


def line_of(text):
    return LINES.index(text) + 1


def probed(name):
    return "any('Probe' in type(c).__name__ for c in %s.__code__.co_consts)" % name


class WatchTest(TargetTestCase):
    prepared = True

    def setUp(self):
        self.target = self.start({"work.py": WORK}, ["work"], setup=SETUP, prepared=self.prepared)

    def watch(self, *args, function="work.price_of"):
        """Starts pyhot watch; returns it once the target runs the probed code."""
        process = self.spawn([PYHOT, "watch", str(self.target.pid)] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: process.poll() is not None or self.target.call(probed(function)) == "True",
                 30, "the watch")
        self.assertIsNone(process.poll(), process.stderr.read() if process.poll() is not None else "")
        return process

    def ended(self, process, code=0):
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, code, err)
        self.assertEqual(self.target.call(RESTORED), "True")
        return out, err

    def stopped(self, process):
        process.send_signal(signal.SIGINT)
        return self.ended(process)

    @staticmethod
    def events(out):
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def test_arguments_and_return_values(self):
        process = self.watch("work", "price_of", "-n", "2", "--json")
        self.assertEqual(self.target.call("work.price_of('apple', 2)"), "300")
        self.assertEqual(self.target.call("work.price_of('kiwi', 1, 'x', rush=True)"), "120")
        out, _ = self.ended(process)  # -n 2: it ends by itself
        first, second = self.events(out)
        self.assertEqual(first["function"], "work.price_of")
        self.assertEqual(first["args"], {"item": "'apple'", "quantity": "2", "rest": "()", "extra": "{}"})
        self.assertEqual(first["return"], "300")
        self.assertEqual(second["args"], {"item": "'kiwi'", "quantity": "1", "rest": "('x',)",
                                          "extra": "{'rush': True}"})
        self.assertEqual(second["return"], "120")
        self.assertNotIn("exception", first)
        self.assertGreater(first["duration_ms"], 0)
        self.assertLess(abs(first["time"] - time.time()), 60)

    def test_json_is_one_object_per_line_and_call_and_never_the_programs_stdout(self):
        printed = self.target.output()
        process = self.watch("work", "price_of", "-n", "3", "--json")
        for quantity in (1, 2, 3):
            self.target.call("work.price_of('ab', %d)" % quantity)
        out, err = self.ended(process)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        events = [json.loads(line) for line in lines]  # each line whole, one object
        self.assertTrue(all(isinstance(e, dict) and e["event"] == "call" for e in events), events)
        self.assertEqual([e["args"]["quantity"] for e in events], ["1", "2", "3"])
        self.assertEqual(err, "")  # --json: no human lines on stderr either
        self.assertEqual(self.target.output(), printed)

    def test_forked_child_removes_its_copy(self):
        process = self.watch("work", "price_of", "-n", "1", "--json")
        marker = os.path.join(self.target.dir, "child.txt")
        # The child calls the function, says whether its code is the
        # original's, then exits without cleanup.
        self.target.call("(lambda pid: pid or (work.price_of('child'), open(%r, 'w').write("
                         "str(work.price_of.__code__ is ORIGINAL['price_of'])), os._exit(0)))(os.fork())" % marker)

        def answer():
            if not os.path.exists(marker):
                return None
            with open(marker) as handle:
                return handle.read()
        self.assertEqual(wait_for(answer, 10, "the child's answer"), "True")
        self.assertEqual(self.target.call(probed("work.price_of")), "True")  # the parent's stays
        self.target.call("work.price_of('parent')")
        out, _ = self.ended(process)
        self.assertEqual([e["args"]["item"] for e in self.events(out)], ["'parent'"])  # not the child's call

    def test_block_per_call_with_class_method(self):
        process = self.watch("work", "Cart", "add", "-n", "1", function="work.Cart.add")
        self.assertEqual(self.target.call("work.Cart().add('pear', 3)"), "1")
        out, err = self.ended(process)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], r"^\d\d:\d\d:\d\d\.\d{3}  \S.*  work\.Cart\.add  \d+\.\d{3} ms$")
        self.assertRegex(lines[1], r"^  args:   self=<work\.Cart object at 0x[0-9a-f]+>  item='pear'  quantity=3$")
        self.assertEqual(lines[2], "  return: 1")
        self.assertIn("Watching work.Cart.add in process %d" % self.target.pid, err)
        self.assertIn("1 call shown; the watch was removed", err)

    def test_exception_with_its_real_lines(self):
        process = self.watch("work", "price_of", "--exceptions", "-n", "1", "--json")
        self.assertEqual(self.target.call("work.price_of('a', 1)"), "30")  # not shown: it returned
        answer = self.target.call_error("work.price_of('a', -3)")
        self.assertIn("ValueError", answer["error"])  # the program still sees its exception
        raise_line = line_of('        raise ValueError("negative quantity %d" % quantity)')
        self.assertIn('work.py", line %d, in price_of' % raise_line, answer["traceback"])
        out, _ = self.ended(process)
        (event,) = self.events(out)
        self.assertEqual(event["args"]["quantity"], "-3")
        self.assertNotIn("return", event)
        self.assertEqual(event["exception"]["type"], "ValueError")
        self.assertEqual(event["exception"]["message"], "negative quantity -3")
        self.assertIn('work.py", line %d, in price_of' % raise_line, "\n".join(event["exception"]["traceback"]))

    def test_filters_on_arguments_and_on_the_return_value(self):
        process = self.watch("work", "price_of", "--filter", "quantity > 5", "-n", "1", "--json")
        for quantity in (1, 2, 7):
            self.target.call("work.price_of('ab', %d)" % quantity)
        out, _ = self.ended(process)
        self.assertEqual([e["args"]["quantity"] for e in self.events(out)], ["7"])
        process = self.watch("work", "price_of", "--filter", "_return == 90 or _exception is not None",
                             "-n", "2", "--json")
        for quantity in (1, 3, -1, 2):
            self.target.call_error("work.price_of('x', %d)" % quantity)
        out, _ = self.ended(process)
        self.assertEqual([e["args"]["quantity"] for e in self.events(out)], ["3", "-1"])

    def test_filter_that_does_not_compile_changes_nothing(self):
        done = pyhot("watch", self.target.pid, "work", "price_of", "--filter", "quantity >")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("--filter 'quantity >' does not compile", done.stderr)
        self.assertEqual(done.stderr.count("\n"), 1, done.stderr)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_filter_that_raises_is_said_once(self):
        process = self.watch("work", "price_of", "--filter", "item.nope", "--duration", "3s")
        for _ in range(3):
            self.assertEqual(self.target.call("work.price_of('a')"), "30")
        out, err = self.ended(process)
        self.assertEqual(out, "")
        self.assertEqual(err.count("--filter raised AttributeError"), 1, err)
        self.assertIn("0 calls shown", err)

    def test_expressions_instead_of_arguments(self):
        process = self.watch("work", "price_of", "--expr", "item.upper()", "--expr", "_return * 2",
                             "--expr", "missing", "-n", "1")
        self.target.call("work.price_of('fig', 2)")
        out, _ = self.ended(process)
        lines = out.splitlines()
        self.assertEqual(lines[1:], ["  item.upper() = 'FIG'", "  _return * 2 = 360",
                                     "  missing = <raised NameError: name 'missing' is not defined>"])

    def test_generator_coroutine_and_nested_return(self):
        process = self.watch("work", "countdown", "-n", "1", "--json", function="work.countdown")
        self.assertEqual(self.target.call("list(work.countdown(3))"), "[3, 2, 1]")
        out, _ = self.ended(process)
        (event,) = self.events(out)
        self.assertEqual((event["args"], event["return"]), ({"n": "3"}, "'done'"))
        process = self.watch("work", "fetch", "-n", "1", "--json", function="work.fetch")
        self.assertEqual(self.target.call("asyncio.run(work.fetch(4))"), "8")
        out, _ = self.ended(process)
        (event,) = self.events(out)
        self.assertEqual((event["args"], event["return"]), ({"x": "4"}, "8"))
        process = self.watch("work", "nested", "-n", "1", "--json", function="work.nested")
        self.assertEqual(self.target.call("work.nested(2)"), "30")
        out, _ = self.ended(process)
        self.assertEqual(self.events(out)[0]["return"], "30")  # inner's return is its own

    def test_threads_are_named(self):
        process = self.watch("work", "price_of", "-n", "4", "--json")
        self.assertEqual(self.target.call("work.in_threads(4)"), "4")
        out, _ = self.ended(process)
        events = self.events(out)
        self.assertEqual(sorted(e["thread"] for e in events), ["worker-%d" % i for i in range(4)])
        by_thread = {e["thread"]: e for e in events}
        self.assertEqual(by_thread["worker-3"]["return"], str(2 * 30 * 3))

    def test_repr_that_raises_is_said_and_bounded(self):
        process = self.watch("work", "echo", "-n", "2", "--json", "--length", "20", function="work.echo")
        self.assertIn("RuntimeError", self.target.call_error("repr(work.echo(work.Loud()))")["error"])
        self.target.call("len(work.echo('x' * 1000))")
        out, _ = self.ended(process)
        loud, long = self.events(out)
        said = r"^<work\.Loud object at 0x[0-9a-f]+: its __repr__ raised RuntimeError: no repr>$"
        self.assertRegex(loud["args"]["value"], said)
        self.assertEqual(loud["return"], loud["args"]["value"])
        self.assertLessEqual(len(long["return"]), 24)
        self.assertIn("...", long["return"])

    def test_slow_pyhot_loses_events_with_a_count_and_never_blocks(self):
        process = self.watch("work", "price_of", "--json", "-n", "3000")
        process.send_signal(signal.SIGSTOP)  # pyhot reads nothing now
        try:
            started = time.monotonic()
            self.assertEqual(self.target.call("work.many(3000)"), "3000")
            self.assertLess(time.monotonic() - started, 4)  # within the lease
        finally:
            process.send_signal(signal.SIGCONT)
        out, _ = self.ended(process)  # -n 3000: it ends by itself
        events = self.events(out)
        calls = [e for e in events if e["event"] == "call"]
        lost = sum(e["count"] for e in events if e["event"] == "lost")
        self.assertEqual((len(calls), lost), (1000, 2000))
        self.assertEqual(calls[-1]["args"]["quantity"], "2999")

    def test_reload_while_watched_keeps_the_watch_on_the_new_code(self):
        process = self.watch("work", "price_of", "--json")
        self.assertEqual(self.target.call("work.price_of('ab')"), "60")
        self.target.edit("work.py", "    return len(item) * 30 * quantity", "    return len(item) * 31 * quantity")
        pyhot("reload", self.target.pid, self.target.path("work.py"), check=0)
        wait_for(lambda: self.target.call(probed("work.price_of")) == "True", 10, "the watch on the new code")
        self.assertEqual(self.target.call("work.price_of('ab')"), "62")
        wait_for(lambda: process.poll() is None and self.target.call("1") == "1", 1, "")
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertIn("work.price_of was reloaded: watching its new code", err)
        self.assertEqual([e["return"] for e in self.events(out)], ["60", "62"])
        # The new code is what stays, without a probe.
        self.assertEqual(self.target.call(probed("work.price_of")), "False")
        self.assertEqual(self.target.call("work.price_of('ab')"), "62")

    def test_listed_in_history_and_removed_by_revert(self):
        process = self.watch("work", "price_of")
        history = pyhot("history", self.target.pid, check=0).stdout
        found = re.search(r"^(i\d+)  .*  watch  1 function instrumented\n      work\.price_of$", history, re.M)
        self.assertIsNotNone(found, history)
        listed = json.loads(pyhot("history", self.target.pid, "--json", check=0).stdout)
        self.assertEqual([i["functions"] for i in listed["instrumentations"]], [["work.price_of"]])
        done = pyhot("revert", self.target.pid, found.group(1), check=0)
        self.assertIn("Removed watch %s" % found.group(1), done.stdout)
        self.assertEqual(self.target.call(RESTORED), "True")
        _, err = self.ended(process, code=1)
        self.assertIn("the watch was removed in the target", err)
        self.assertNotIn("watch", pyhot("history", self.target.pid, check=0).stdout)

    def test_killed_pyhot_leaves_no_instrumentation(self):
        process = self.watch("work", "price_of", "--lease", "2s")
        self.target.call("work.price_of('a')")
        process.kill()
        process.communicate(timeout=10)
        started = time.monotonic()
        wait_for(lambda: self.target.call(RESTORED) == "True", 15, "the agent to remove the watch")
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(self.target.call("work.price_of('a')"), "30")

    def test_a_function_watched_already_is_refused(self):
        process = self.watch("work", "price_of")
        done = pyhot("watch", self.target.pid, "work", "price_of", "-n", "1")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("work.price_of is instrumented already (`pyhot history` lists it)", done.stderr)
        self.assertEqual(self.target.call("work.price_of('ab')"), "60")
        self.stopped(process)

    def test_bad_target_words(self):
        done = pyhot("watch", self.target.pid, "work", "price_off")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("work.price_of", done.stderr)
        done = pyhot("watch", self.target.pid, "a", "b", "c", "d")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(self.target.call(RESTORED), "True")


class AttachedWatchTest(WatchTest):
    """The same against a process pyhot attaches to (no recorded import):
    the tests where that could differ."""
    prepared = False


ATTACHED = ("test_arguments_and_return_values", "test_exception_with_its_real_lines",
            "test_generator_coroutine_and_nested_return", "test_reload_while_watched_keeps_the_watch_on_the_new_code",
            "test_killed_pyhot_leaves_no_instrumentation")
for _name in [n for n in dir(WatchTest) if n.startswith("test_") and n not in ATTACHED]:
    setattr(AttachedWatchTest, _name, None)  # not collected


for_each_interpreter(WatchTest, globals())
for_each_interpreter(AttachedWatchTest, globals())
del WatchTest, AttachedWatchTest

if __name__ == "__main__":
    unittest.main()
