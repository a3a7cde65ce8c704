"""pyhot profile --lines against real processes: exact hits per line of a
known loop (its header once per iteration, nested blocks on their own
lines), sleep-based line times within 10%, a with's exit on its line (and
the next item's time on the loop's line after a continue in a with; the
exit a break leaves a with by, on the with line), a case's test on its
line (3.10+), a generator's and a coroutine's
suspensions not counted, FILE:FIRST-LAST (the % of the lines shown), the
text layout, a reload while timed (a second table), a pre-fork server with
--tree (each process apart), the instrumentation listed by history and gone
after (code objects identical), also when pyhot is killed (the lease), and
bad input."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import PYHOT, PreforkServer, TargetTestCase, for_each_interpreter, kill_group, pyhot, read_line, spawn, \
    wait_for, write_whole

BUSY = '''import asyncio
import time


def loop(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += i * 5
            continue
        while total > 10:
            total -= 10
    return total


def naps():
    time.sleep(0.1)
    for _ in range(2):
        time.sleep(0.2)
    try:
        raise ValueError("x")
    except ValueError:
        time.sleep(0.05)
    return 1


def chunks(n):
    for i in range(n):
        time.sleep(0.03)
        yield i


def consume(n):
    total = 0
    for value in chunks(n):
        time.sleep(0.05)
        total += value
    return total


class Cart:
    def total(self, prices):
        """The sum of prices over 1."""
        out = 0
        for price in prices:
            if price > 1:
                out += price
        return out


class Slow:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        time.sleep(0.1)
        return False


def guarded(flag):
    with Slow():
        time.sleep(0.05)
    if flag:
        with Slow():
            return 2
    return 3


class SlowItems:
    """n items, each 50 ms to get (and 50 ms to find there is no more)."""
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(0.05)
        if self.n == 0:
            raise StopIteration
        self.n -= 1
        return self.n


def skipping(n):
    total = 0
    for i in SlowItems(n):
        with Slow():
            if i % 2 == 0:
                continue
            total += i
    return total


def breaking(n):
    total = 0
    for i in SlowItems(n):
        with Slow():
            if i == 1:
                break
            total += i
    return total


async def fetch(i):
    time.sleep(0.05)
    await asyncio.sleep(0.2)
    return i


async def gather(n):
    total = 0
    for i in range(n):
        total += await fetch(i)
    return total


def run_async(n):
    return asyncio.run(gather(n))


def described(a, b):
    return "%(a)s and %(b)s" % locals()


x = 1
'''

NAMES = ["loop", "naps", "chunks", "consume", "guarded", "skipping", "breaking", "fetch", "gather"]
SETUP = '''
import builtins
import busy
ORIGINAL = {n: getattr(busy, n).__code__ for n in %r}
ORIGINAL["total"] = busy.Cart.total.__code__
GLOBALS = sorted(vars(busy))
BUILTINS = sorted(vars(builtins))
''' % (NAMES,)

RESTORED = ("all(getattr(busy, n).__code__ is ORIGINAL[n] for n in %r) "
            "and busy.Cart.total.__code__ is ORIGINAL['total'] "
            "and sorted(vars(busy)) == GLOBALS and sorted(vars(builtins)) == BUILTINS" % (NAMES,))


# Python 3.10+ only: imported by the test that times it. A value pattern
# compares the subject with ==: Late's comparisons take 50 ms each.
MATCHING = '''import time


class Late:
    def __eq__(self, other):
        time.sleep(0.05)
        return False


def classify(value):
    match value:
        case 1:
            return "one"
        case 2:
            return "two"
        case _:
            return "other"
'''


def line_of(text, after=0, source=BUSY):
    """The line of the first line of BUSY after line `after` that is `text`, stripped."""
    return [line.strip() for line in source.splitlines()].index(text, after) + 1


class LineProfileTest(TargetTestCase):

    def setUp(self):
        self.target = self.start({"busy.py": BUSY}, ["busy"], setup=SETUP)

    def profile(self, *args, watched="loop", duration="60s"):
        """Starts pyhot profile --lines; returns it once `watched` runs instrumented code."""
        process = self.spawn([PYHOT, "profile", str(self.target.pid), "--lines"] + list(args) +
                             ["--duration", duration], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        code = "busy.Cart.total" if watched == "total" else "busy." + watched
        wait_for(lambda: process.poll() is not None or self.target.call(
            "%s.__code__ is not ORIGINAL[%r]" % (code, watched)) == "True", 30, "the instrumentation")
        self.assertIsNone(process.poll(), process.stderr.read() if process.poll() is not None else "")
        return process

    def path(self):
        return os.path.join(self.target.dir, "busy.py")

    def finish(self, process):
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertEqual(self.target.call(RESTORED), "True")
        return out

    def lines(self, out, function):
        document = json.loads(out)
        found = [f for f in document["processes"][0]["functions"] if f["function"] == function]
        self.assertEqual(len(found), 1, out)
        return found[0], {line["line"]: line for line in found[0]["lines"]}

    def test_loop_hits_exact_per_line_nested_blocks_and_headers(self):
        process = self.profile("busy", "loop", "--json")
        # History lists it as a patch while it lasts.
        listed = pyhot("history", self.target.pid).stdout
        self.assertIn("i1  ", listed)
        self.assertIn("lines", listed)
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        function, lines = self.lines(self.finish(process), "busy.loop")
        self.assertEqual(function["calls"], 2)
        hits = {line: entry["hits"] for line, entry in lines.items()}
        # Per call of loop(9): the for line once and at each of 9 iterations'
        # end; the while test 10 times (6 entries, 4 repeats), its body 4.
        self.assertEqual(hits, {line_of("total = 0"): 2, line_of("for i in range(n):"): 20,
                                line_of("if i % 3 == 0:"): 18, line_of("total += i * 5"): 6,
                                line_of("continue"): 6, line_of("while total > 10:"): 20,
                                line_of("total -= 10"): 8, line_of("return total"): 2}, out_of(lines))
        self.assertAlmostEqual(sum(entry["percent"] for entry in lines.values()), 100, delta=0.1)
        self.assertEqual(self.target.call("busy.loop(9)"), "5")

    def test_threads_add_up_exactly(self):
        process = self.profile("busy", "loop", "--json")
        self.assertEqual(self.target.call(
            "(lambda threading: [t.start() or t for t in [threading.Thread(target=busy.loop, args=(9,), "
            "name='looper-%d' % i) for i in range(4)]] and None)(__import__('threading'))"), "None")
        wait_for(lambda: self.target.call(
            "len([t for t in __import__('threading').enumerate() if t.name.startswith('looper-')])") == "0",
            30, "the threads to end")
        function, lines = self.lines(self.finish(process), "busy.loop")
        self.assertEqual(function["calls"], 4)
        self.assertEqual(lines[line_of("while total > 10:")]["hits"], 40)
        self.assertEqual(lines[line_of("for i in range(n):")]["hits"], 40)

    def test_sleep_times_within_ten_percent(self):
        process = self.profile("busy", "naps", "--json", watched="naps")
        self.assertEqual(self.target.call("busy.naps()"), "1")
        function, lines = self.lines(self.finish(process), "busy.naps")
        expected = {"time.sleep(0.1)": (1, 100), "time.sleep(0.2)": (2, 400), "time.sleep(0.05)": (1, 50)}
        for text, (hits, ms) in expected.items():
            entry = lines[line_of(text)]
            self.assertEqual(entry["hits"], hits, text)
            self.assertGreaterEqual(entry["total_ms"], ms * 0.99, text)
            self.assertLess(entry["total_ms"], ms * 1.1, text)
            self.assertEqual(entry["text"].strip(), text)
        self.assertEqual(lines[line_of("for _ in range(2):")]["hits"], 3)
        self.assertEqual(lines[line_of("except ValueError:")]["hits"], 1)
        self.assertEqual(lines[line_of('raise ValueError("x")')]["hits"], 1)
        self.assertGreater(function["total_ms"], 550)
        self.assertLess(function["total_ms"], 550 * 1.1)

    def test_generator_time_suspended_is_no_lines(self):
        process = self.spawn([PYHOT, "profile", str(self.target.pid), "--lines", self.path() + ":%d-%d" % (
            line_of("def chunks(n):"), line_of("return total", line_of("def consume(n):"))), "--json", "--duration", "60s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: process.poll() is not None or self.target.call(
            "busy.consume.__code__ is not ORIGINAL['consume'] and busy.chunks.__code__ is not ORIGINAL['chunks']")
            == "True", 30, "the instrumentation")
        self.assertEqual(self.target.call("busy.consume(4)"), "6")
        out = self.finish(process)
        _, chunks = self.lines(out, "busy.chunks")
        _, consume = self.lines(out, "busy.consume")
        self.assertEqual(chunks[line_of("yield i")]["hits"], 4)
        # consume's 50 ms sleeps happen while chunks is suspended at its yield.
        self.assertLess(chunks[line_of("yield i")]["total_ms"], 10)
        self.assertGreaterEqual(chunks[line_of("time.sleep(0.03)")]["total_ms"], 120 * 0.99)
        self.assertLess(chunks[line_of("time.sleep(0.03)")]["total_ms"], 120 * 1.1)
        # The for line of consume runs chunks until its next yield: its sleeps are there.
        self.assertGreaterEqual(consume[line_of("for value in chunks(n):")]["total_ms"], 120 * 0.99)
        self.assertEqual(consume[line_of("for value in chunks(n):")]["hits"], 5)
        self.assertGreaterEqual(consume[line_of("time.sleep(0.05)", line_of("def consume(n):"))]["total_ms"], 200 * 0.99)
        self.assertLess(consume[line_of("time.sleep(0.05)", line_of("def consume(n):"))]["total_ms"], 200 * 1.1)

    def test_method_by_class_and_text_layout_of_a_range(self):
        first, last = line_of("for price in prices:"), line_of("out += price")
        process = self.profile(self.path() + ":%d-%d" % (first, last), watched="total")
        self.assertEqual(self.target.call("busy.Cart().total([1, 2, 3])"), "5")
        out = self.finish(process)
        self.assertIn("busy.Cart.total", out)
        self.assertIn("Function: total at line %d" % line_of("def total(self, prices):"), out)
        header = [line for line in out.splitlines() if line.startswith("Line #")]
        self.assertEqual(len(header), 1, out)
        for column in ("Hits", "Total ms", "Per hit", "% Time", "Line Contents"):
            self.assertIn(column, header[0])
        rows = {int(line.split()[0]): line for line in out.splitlines() if line[:6].strip().isdigit()}
        self.assertEqual(sorted(rows), list(range(first, last + 1)), out)  # only the range is shown
        self.assertEqual(rows[first].split()[1], "4")
        self.assertEqual(rows[first + 1].split()[1], "3")
        self.assertEqual(rows[last].split()[1], "2")
        self.assertTrue(rows[last].endswith("                out += price"), rows[last])
        # The whole method by MODULE CLASS FUNCTION, its docstring line shown without counts.
        process = self.profile("busy", "Cart", "total", watched="total")
        self.assertEqual(self.target.call("busy.Cart().total([5])"), "5")
        out = self.finish(process)
        rows = {int(line.split()[0]): line for line in out.splitlines() if line[:6].strip().isdigit()}
        self.assertEqual(rows[line_of('"""The sum of prices over 1."""')].split()[1], '"""The')
        self.assertEqual(rows[line_of("return out")].split()[1], "1")

    def test_with_exit_is_timed_on_the_with_line(self):
        process = self.profile("busy", "guarded", "--json", watched="guarded")
        self.assertEqual(self.target.call("busy.guarded(True)"), "2")
        function, lines = self.lines(self.finish(process), "busy.guarded")
        first = line_of("with Slow():")
        second = line_of("with Slow():", first)
        # As line_profiler shows it (3.10+ tracing): the with line is hit when
        # the manager is entered and when it exits, also after a return in
        # its body; the time in __exit__ is the with line's.
        for line in (first, second):
            self.assertEqual(lines[line]["hits"], 2, out_of(lines))
            self.assertGreaterEqual(lines[line]["total_ms"], 100 * 0.99, out_of(lines))
            self.assertLess(lines[line]["total_ms"], 100 * 1.1, out_of(lines))
        sleep = lines[line_of("time.sleep(0.05)", first)]
        self.assertGreaterEqual(sleep["total_ms"], 50 * 0.99)
        self.assertLess(sleep["total_ms"], 50 * 1.1)
        self.assertEqual(lines[line_of("return 2")]["hits"], 1)
        self.assertLess(lines[line_of("return 2")]["total_ms"], 5)
        self.assertNotIn(line_of("return 3"), lines)
        # Two calls that skip the second with: two hits each on the first.
        process = self.profile("busy", "guarded", "--json", watched="guarded")
        self.assertEqual(self.target.call("(lambda: [busy.guarded(False) for _ in range(2)])()"), "[3, 3]")
        _, lines = self.lines(self.finish(process), "busy.guarded")
        self.assertEqual(lines[first]["hits"], 4)
        self.assertGreaterEqual(lines[first]["total_ms"], 200 * 0.99)
        self.assertLess(lines[first]["total_ms"], 200 * 1.1)
        self.assertNotIn(second, lines)

    def test_continue_in_a_with_times_the_next_item_on_the_loop_line(self):
        process = self.profile("busy", "skipping", "--json", watched="skipping")
        self.assertEqual(self.target.call("busy.skipping(4)"), "4")
        _, lines = self.lines(self.finish(process), "busy.skipping")
        header = line_of("for i in SlowItems(n):")
        with_line = line_of("with Slow():", header)
        # Five items got (the last finds none), 50 ms each, on the for line,
        # also after the two `continue`s; four exits of 100 ms on the with line.
        self.assertEqual(lines[header]["hits"], 5, out_of(lines))
        self.assertEqual(lines[with_line]["hits"], 8, out_of(lines))
        self.assertGreaterEqual(lines[header]["total_ms"], 250 * 0.99, out_of(lines))
        self.assertLess(lines[header]["total_ms"], 250 * 1.1, out_of(lines))
        self.assertGreaterEqual(lines[with_line]["total_ms"], 400 * 0.99, out_of(lines))
        self.assertLess(lines[with_line]["total_ms"], 400 * 1.1, out_of(lines))
        self.assertEqual(lines[line_of("continue", header)]["hits"], 2, out_of(lines))

    def test_break_in_a_with_times_its_exit_on_the_with_line(self):
        process = self.profile("busy", "breaking", "--json", watched="breaking")
        self.assertEqual(self.target.call("busy.breaking(4)"), "5")
        _, lines = self.lines(self.finish(process), "busy.breaking")
        start = line_of("def breaking(n):")
        header = line_of("for i in SlowItems(n):", start)
        with_line = line_of("with Slow():", start)
        # Items 3, 2 and 1 got, 50 ms each, on the for line; three exits of
        # 100 ms on the with line, the one the break leaves by too; nothing
        # of them on the break or the return.
        self.assertEqual(lines[header]["hits"], 3, out_of(lines))
        self.assertEqual(lines[with_line]["hits"], 6, out_of(lines))
        self.assertGreaterEqual(lines[header]["total_ms"], 150 * 0.99, out_of(lines))
        self.assertLess(lines[header]["total_ms"], 150 * 1.1, out_of(lines))
        self.assertGreaterEqual(lines[with_line]["total_ms"], 300 * 0.99, out_of(lines))
        self.assertLess(lines[with_line]["total_ms"], 300 * 1.1, out_of(lines))
        self.assertEqual(lines[line_of("break", start)]["hits"], 1, out_of(lines))
        self.assertLess(lines[line_of("break", start)]["total_ms"], 20, out_of(lines))
        self.assertEqual(lines[line_of("return total", start)]["hits"], 1, out_of(lines))
        self.assertLess(lines[line_of("return total", start)]["total_ms"], 20, out_of(lines))

    def test_match_cases_are_timed_on_their_own_lines(self):
        if self.target.call("__import__('sys').version_info >= (3, 10)") != "True":
            self.skipTest("match is Python 3.10+")
        self.target.write("matching.py", MATCHING)
        self.assertEqual(self.target.call("__import__('matching') and None"), "None")
        self.target.call("globals().update(ORIGINAL_CLASSIFY=__import__('matching').classify.__code__) or None")
        process = self.spawn([PYHOT, "profile", str(self.target.pid), "--lines", "matching", "classify", "--json",
                              "--duration", "60s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: process.poll() is not None or self.target.call(
            "__import__('matching').classify.__code__ is not ORIGINAL_CLASSIFY") == "True", 30, "the instrumentation")
        self.assertIsNone(process.poll())
        self.assertEqual(self.target.call("__import__('matching').classify(__import__('matching').Late())"),
                         "'other'")
        self.assertEqual(self.target.call("__import__('matching').classify(1)"), "'one'")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertEqual(self.target.call("__import__('matching').classify.__code__ is ORIGINAL_CLASSIFY"), "True")
        _, lines = self.lines(out, "matching.classify")

        def at(text):
            return lines[line_of(text, source=MATCHING)]
        # Each case line is hit when its pattern is tested; Late's 50 ms
        # comparisons are the case lines', not the match line's.
        hits = {line: entry["hits"] for line, entry in lines.items()}
        self.assertEqual(hits, {line_of(text, source=MATCHING): count for text, count in (
            ("match value:", 2), ("case 1:", 2), ("return \"one\"", 1), ("case 2:", 1), ("case _:", 1),
            ("return \"other\"", 1))}, out_of(lines))
        for text in ("case 1:", "case 2:"):
            self.assertGreaterEqual(at(text)["total_ms"], 50 * 0.99, out_of(lines))
            self.assertLess(at(text)["total_ms"], 50 * 1.1, out_of(lines))
        self.assertLess(at("match value:")["total_ms"], 5)

    def test_range_percent_is_of_the_lines_shown(self):
        first, last = line_of("for _ in range(2):"), line_of("time.sleep(0.2)")
        process = self.profile(self.path() + ":%d-%d" % (first, last), watched="naps")
        self.assertEqual(self.target.call("busy.naps()"), "1")
        out = self.finish(process)
        rows = {int(line.split()[0]): line.split() for line in out.splitlines() if line[:6].strip().isdigit()}
        self.assertEqual(sorted(rows), [first, last], out)
        # The two lines shown add up to 100%: the sleep is nearly all of it.
        percents = [float(rows[line][4]) for line in (first, last)]
        self.assertAlmostEqual(sum(percents), 100, delta=0.2, msg=out)
        self.assertGreater(percents[1], 99, out)
        self.assertIn("%% Time is of lines %d-%d" % (first, last), out)
        process = self.profile(self.path() + ":%d-%d" % (first, last), "--json", watched="naps")
        self.assertEqual(self.target.call("busy.naps()"), "1")
        function, lines = self.lines(self.finish(process), "busy.naps")
        self.assertAlmostEqual(sum(entry["percent"] for entry in lines.values()), 100, delta=0.1)
        self.assertEqual(function["shown"]["first"], first)
        self.assertEqual(function["shown"]["last"], last)
        self.assertGreaterEqual(function["shown"]["total_ms"], 400 * 0.99)
        self.assertLess(function["shown"]["total_ms"], 400 * 1.1)
        self.assertGreater(function["total_ms"], 550 * 0.99)
        self.assertLess(lines[last]["percent_of_function"], 80)
        self.assertGreater(lines[last]["percent_of_function"], 65)

    def test_coroutine_time_suspended_at_await_is_no_lines(self):
        process = self.profile("busy", "fetch", "--json", watched="fetch")
        self.assertEqual(self.target.call("busy.run_async(3)"), "3")
        function, lines = self.lines(self.finish(process), "busy.fetch")
        self.assertEqual(function["calls"], 3)
        hits = {line: entry["hits"] for line, entry in lines.items()}
        self.assertEqual(hits, {line_of("time.sleep(0.05)", line_of("async def fetch(i):")): 3,
                                line_of("await asyncio.sleep(0.2)"): 3,
                                line_of("return i"): 3}, out_of(lines))
        # 10 ms sleeps overshoot by more than 10% on a loaded machine: 50 ms ones.
        sleep = lines[line_of("time.sleep(0.05)", line_of("async def fetch(i):"))]["total_ms"]
        self.assertGreaterEqual(sleep, 150 * 0.99)
        self.assertLess(sleep, 150 * 1.1)
        # 600 ms suspended in asyncio.sleep: not the await line's.
        self.assertLess(lines[line_of("await asyncio.sleep(0.2)")]["total_ms"], 10, out_of(lines))
        self.assertLess(function["total_ms"], 150 * 1.1 + 10)

    def test_function_reloaded_while_timed_gets_a_table_of_its_own(self):
        process = self.profile("busy", "loop", watched="loop")
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.target.edit("busy.py", "    return total\n", "    return total + 100\n")
        pyhot("reload", self.target.pid, self.path(), check=0)
        self.assertEqual(self.target.call("busy.loop(9)"), "105")
        # pyhot sees the reload at its next read and times the new code.
        wait_for(lambda: self.target.call(
            "any('Probe' in type(c).__name__ for c in busy.loop.__code__.co_consts)") == "True", 15,
            "the new code of busy.loop to be timed")
        for _ in range(3):
            self.assertEqual(self.target.call("busy.loop(9)"), "105")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        self.assertIn("note: busy.loop was reloaded while timed; its new code was timed from then on (a table of "
                      "its own)", out)
        # Two tables: the old code's call (of the two before the reload was
        # seen, made while the old code was live) and the new code's three.
        totals = [line for line in out.splitlines() if line.startswith("Total time:")]
        self.assertEqual(len(totals), 2, out)
        self.assertEqual(out.count("process %d, busy.loop\n" % self.target.pid), 2, out)
        tables = out.split("Total time:")[1:]
        self.assertTrue(totals[0].endswith(" in 1 call"), out)
        self.assertTrue(totals[1].endswith(" in 3 calls"), out)
        returns = [line for line in tables[1].splitlines() if line.endswith("    return total + 100")]
        self.assertEqual(len(returns), 1, out)
        self.assertEqual(returns[0].split()[1], "3", out)
        self.assertNotIn("return total + 100", tables[0])
        self.assertEqual(self.target.call("busy.loop(9)"), "105")
        self.assertEqual(self.target.call(
            "[type(c).__name__ for c in busy.loop.__code__.co_consts if 'Probe' in type(c).__name__]"), "[]")
        pyhot("revert", self.target.pid, check=0)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_live_prints_the_tables_so_far_every_second(self):
        process = self.profile("busy", "loop", "--live", watched="loop")
        while_line = line_of("while total > 10:")

        def table_with(calls):
            """Reads the live output until a table of `calls` calls; its while row's hits."""
            def row():
                line = read_line(process, 20)
                if line.startswith("Total time:"):
                    row.calls = line.split(" in ")[1].split()[0]
                elif line[:6].strip() == str(while_line) and getattr(row, "calls", None) == str(calls):
                    return int(line.split()[1])
                return None
            return wait_for(row, 30, "a live table of %d calls" % calls)
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.assertEqual(table_with(1), 10)
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.assertEqual(table_with(2), 20)
        out = self.finish(process)
        # The summary at the end, as without --live.
        self.assertIn("Total time: ", out)
        self.assertIn(" in 2 calls\n", out)

    def test_live_shows_a_function_reloaded_meanwhile_in_a_table_of_its_own(self):
        process = self.profile("busy", "loop", "--live", watched="loop")
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.target.edit("busy.py", "    return total\n", "    return total + 100\n")
        pyhot("reload", self.target.pid, self.path(), check=0)
        wait_for(lambda: self.target.call(
            "any('Probe' in type(c).__name__ for c in busy.loop.__code__.co_consts)") == "True", 15,
            "the new code of busy.loop to be timed")
        for _ in range(2):
            self.assertEqual(self.target.call("busy.loop(9)"), "105")
        # A refresh: the old code's table (its one call), the new code's (two), the note.
        totals = []

        def refresh():
            line = read_line(process, 20)
            if line.startswith("Total time:"):
                totals.append(line.rstrip().split(" in ")[1])
            elif line.startswith("note: busy.loop was reloaded while timed"):
                found, totals[:] = totals[-2:], []
                return found == ["1 call", "2 calls"]
            return False
        wait_for(refresh, 30, "a live refresh with both tables")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, err)
        pyhot("revert", self.target.pid, check=0)
        self.assertEqual(self.target.call(RESTORED), "True")

    def test_killed_pyhot_leaves_no_instrumentation(self):
        process = self.profile("busy", "loop", "--lease", "2s")
        self.target.call("busy.loop(3)")
        process.kill()
        process.communicate(timeout=10)
        started = time.monotonic()
        wait_for(lambda: self.target.call(RESTORED) == "True", 15, "the agent to remove the instrumentation")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.target.call("busy.loop(9)"), "5")
        self.assertNotIn("i1  ", pyhot("history", self.target.pid).stdout)

    def test_bad_input(self):
        pid = str(self.target.pid)
        for words in (["busy"], ["busy.py:9-3"], ["a", "b", "c", "d"]):
            done = pyhot("profile", pid, "--lines", *words, "--duration", "1s")
            self.assertEqual(done.returncode, 2, (words, done.stderr))
            self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        done = pyhot("profile", pid, "--lines", "busy", "loop", "--flamegraph", "x.svg")
        self.assertEqual(done.returncode, 2, done.stderr)
        done = pyhot("profile", pid, "--lines", "busy", "lop", "--duration", "1s")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("nearest: busy.loop", done.stderr)
        done = pyhot("profile", pid, "--lines", self.path() + ":%d-%d" % (line_of("x = 1"), line_of("x = 1")),
                     "--duration", "1s")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("not in a function", done.stderr)
        # Its timing would show in locals(): refused, nothing changed.
        done = pyhot("profile", pid, "--lines", "busy", "described", "--duration", "1s")
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertEqual(done.stderr, "pyhot: nothing was instrumented: described calls locals(): line timing would "
                         "add names to its locals; time the lines of a function it calls, or profile it whole "
                         "(pyhot profile PID PATTERN)\n")
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertEqual(self.target.call("busy.described(1, 2)"), "'1 and 2'")
        self.assertEqual(self.target.call(RESTORED), "True")


# Each worker of the pre-fork server publishes what answer() says every 20
# ms: whether its code carries a probe, and how many calls it has made.
WORK = '''
import time

calls = 0


def answer():
    global calls
    calls += 1
    time.sleep(0.001)
    probed = any(type(c).__name__.endswith("Probe") for c in answer.__code__.co_consts)
    return "%s %d" % ("probed" if probed else "plain", calls)
'''


class LineProfileTreeTest(unittest.TestCase):
    """--lines --tree on a pre-fork server: every process timed and reported apart."""
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-linestree-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_whole(os.path.join(self.dir, "work.py"), WORK)
        self.server = PreforkServer(self.python, self.dir, "work")
        self.addCleanup(self.server.stop)
        self.wait_workers("plain", "two workers answering")

    def wait_workers(self, expected, what):
        """Waits until both workers answer `expected` in two calls made
        since first seen so: a call begun before the swap may end in the new code."""
        first_seen = {}

        def ready():
            live = self.server.children()
            settled = []
            for pid, answer in self.server.answers(live).items():
                state, calls = (answer or "none 0").split()
                if state != expected:
                    first_seen.pop(pid, None)
                elif int(calls) >= first_seen.setdefault(pid, int(calls)) + 2:
                    settled.append(pid)
            return len(live) == 2 and len(settled) == 2 and live
        return wait_for(ready, 30, what)

    def test_master_and_workers_are_reported_apart(self):
        process = spawn([PYHOT, "profile", str(self.server.pid), "--lines", "work", "answer", "--tree", "--json",
                         "--duration", "60s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_group, process)
        workers = self.wait_workers("probed", "both workers timed")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 0, out + err)
        document = json.loads(out)
        processes = {entry["pid"]: entry for entry in document["processes"]}
        self.assertEqual(sorted(processes), sorted([self.server.pid] + workers), out)
        self.assertEqual(document["processes"][0]["pid"], self.server.pid)  # the master first
        line = {text: number + 1 for number, text in enumerate(WORK.splitlines())}
        for pid in workers:
            self.assertEqual(processes[pid]["outcome"], "profiled", out)
            [function] = processes[pid]["functions"]
            self.assertEqual(function["function"], "work.answer")
            hits = {entry["line"]: entry["hits"] for entry in function["lines"]}
            calls = function["calls"]
            self.assertGreaterEqual(calls, 2, out)  # each worker answered twice while timed
            # The call running when the profile ended may have timed only its first lines.
            for text in ("    calls += 1", "    time.sleep(0.001)", "    return \"%s %d\" % (\"probed\" if probed "
                         "else \"plain\", calls)"):
                self.assertIn(hits[line[text]], (calls, calls - 1), (text, out))
            self.assertNotIn(line["    global calls"], hits)
            sleep = [entry for entry in function["lines"] if entry["line"] == line["    time.sleep(0.001)"]][0]
            self.assertGreaterEqual(sleep["total_ms"], sleep["hits"] * 1.0 * 0.99)
        # The master never calls answer: no line of it has a hit.
        for function in processes[self.server.pid]["functions"]:
            self.assertEqual(function["calls"], 0, out)
            self.assertEqual(function["lines"], [], out)
        self.wait_workers("plain", "the original code back in both workers")


def out_of(lines):
    return json.dumps(sorted((line, entry["hits"]) for line, entry in lines.items()))


for_each_interpreter(LineProfileTest, globals())
for_each_interpreter(LineProfileTreeTest, globals())
del LineProfileTest, LineProfileTreeTest

if __name__ == "__main__":
    unittest.main()
