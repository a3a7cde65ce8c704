"""`pyhot reload` against real Python processes, as a user would run it:
edit the real file, run the real binary, observe the live process."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import PYHOT, ROOT, TargetTestCase, for_each_interpreter, kill_group, pyhot, spawn, wait_for

SHOP = {
    "shop.py": '''
        import functools

        RATE = 2
        calls = []


        def price(x):
            return x * RATE


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                calls.append(fn.__name__)
                return fn(*args, **kwargs)
            return wrapper


        def plain_decorator(fn):
            def inner(*args):
                return fn(*args)
            return inner


        @logged
        def wrapped(x):
            return x + 1


        @plain_decorator
        def unwrapped(x):
            return x + 1


        @logged
        @plain_decorator
        def stacked(x):
            return x + 1


        class Cart:
            LIMIT = 3
            __secret = "s"

            def __init__(self):
                self.items = []

            def add(self, item):
                self.items.append(item)
                return len(self.items)

            def reveal(self):
                return self.__secret

            @staticmethod
            def tax(x):
                return x

            @classmethod
            def make(cls):
                return "made " + cls.__name__

            @property
            def size(self):
                return len(self.items)

            @size.setter
            def size(self, value):
                self.items = [None] * value


        class Special(Cart):
            def add(self, item):
                return super().add(item) * 10

            def describe(self):
                return "special"


        def make_counter(step):
            def count(value):
                return value + step
            return count


        def numbers(n):
            for i in range(n):
                yield i


        def fails():
            x = 1
            raise ValueError("boom %d" % x)


        def with_default(x, factor=RATE):
            return x * factor
        ''',
    "user.py": '''
        from shop import price, Cart
        import functools

        registry = {"price": price}
        callbacks = [price]
        doubled = functools.partial(price, 2)
        ''',
}

SETUP = """
cart = shop.Cart()
cart.add("a")
bound = cart.add
special = shop.Special()
counter = shop.make_counter(1)
"""


class ReloadTest(TargetTestCase):
    def setUp(self):
        self.target = self.start(SHOP, ["shop", "user"], SETUP)

    def reload(self, *args, check=0):
        return pyhot("reload", self.target.pid, *args, check=check)

    def test_module_function_reaches_every_reference(self):
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        done = self.reload("shop", "price")
        self.assertIn("Reload is done successfully.", done.stdout)
        self.assertIn("Located file path: " + os.path.realpath(self.target.path("shop.py")), done.stdout)
        self.assertIn("Extracted method source:\ndef price(x):\n    return x * RATE + 1000", done.stdout)
        self.assertEqual(self.target.call("shop.price(1)"), "1002")
        self.assertEqual(self.target.call("user.price(1)"), "1002")          # from shop import price
        self.assertEqual(self.target.call("user.registry['price'](1)"), "1002")
        self.assertEqual(self.target.call("user.callbacks[0](1)"), "1002")
        self.assertEqual(self.target.call("user.doubled()"), "1004")          # functools.partial

    def test_method_old_instances_and_bound_methods_see_it(self):
        self.target.edit("shop.py", "return len(self.items)\n\n    def reveal", "return len(self.items) * 100\n\n    def reveal")
        self.reload("shop", "Cart", "add")
        self.assertEqual(self.target.call("cart.add('b')"), "200")    # instance made before the reload
        self.assertEqual(self.target.call("bound('c')"), "300")       # bound method held since before

    def test_static_class_methods_and_property_accessors(self):
        self.target.edit("shop.py", "def tax(x):\n        return x", "def tax(x):\n        return x * 3")
        self.target.edit("shop.py", '"made " + cls.__name__', '"built " + cls.__name__')
        self.target.edit("shop.py", "self.items = [None] * value", "self.items = [None] * (value + 1)")
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("Reload is done successfully.", done.stdout)
        self.assertEqual(self.target.call("shop.Cart.tax(2)"), "6")
        self.assertEqual(self.target.call("shop.Cart.make()"), "'built Cart'")
        self.assertEqual(self.target.call("(setattr(cart, 'size', 4), cart.size)[1]"), "5")

    def test_decorated_functions_get_new_code_without_rerunning_the_decorator(self):
        for name in ("wrapped", "unwrapped", "stacked"):
            self.target.edit("shop.py", "def %s(x):\n    return x + 1" % name, "def %s(x):\n    return x + 50" % name)
        self.reload(self.target.path("shop.py"))
        self.assertEqual(self.target.call("shop.wrapped(1)"), "51")
        self.assertEqual(self.target.call("shop.unwrapped(1)"), "51")
        self.assertEqual(self.target.call("shop.stacked(1)"), "51")
        # the wrapper still runs (it logs), and was not wrapped a second time
        self.assertEqual(self.target.call("shop.calls"), "['wrapped', 'inner']")

    def test_live_closures_made_before_the_reload(self):
        self.target.edit("shop.py", "return value + step", "return value + step * 100")
        self.reload(self.target.path("shop.py"))
        self.assertEqual(self.target.call("counter(1)"), "101")
        self.assertEqual(self.target.call("shop.make_counter(2)(1)"), "201")

    def test_name_mangling(self):
        self.target.edit("shop.py", "return self.__secret", "return self.__secret + '!'")
        self.reload("shop", "Cart", "reveal")
        self.assertEqual(self.target.call("cart.reveal()"), "'s!'")

    def test_super_in_a_method_that_already_used_it(self):
        self.target.edit("shop.py", "return super().add(item) * 10", "return super().add(item) * 1000")
        self.reload("shop", "Special", "add")
        self.assertEqual(self.target.call("special.add('x')"), "1000")

    def test_method_starting_to_use_super_is_rebound(self):
        self.target.edit("shop.py", 'return "special"', 'return "special " + str(super().size)')
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("rebound", done.stdout)
        self.assertEqual(self.target.call("special.describe()"), "'special 0'")

    def test_defaults_are_evaluated_in_the_right_scope(self):
        self.target.edit("shop.py", "def with_default(x, factor=RATE):", "def with_default(x, factor=RATE * 10, *, extra=LIMIT_EXTRA):")
        self.target.edit("shop.py", "return x * factor", "return x * factor + extra")
        self.target.edit("shop.py", "RATE = 2\n", "RATE = 2\nLIMIT_EXTRA = 5\n")
        self.target.edit("shop.py", "    def add(self, item):\n        self.items",
                         "    def add(self, item, limit=LIMIT):\n        self.items")
        self.target.edit("shop.py", "return len(self.items)\n\n    def reveal", "return limit\n\n    def reveal")
        self.reload(self.target.path("shop.py"))
        self.assertEqual(self.target.call("shop.with_default(1)"), "25")
        self.assertEqual(self.target.call("cart.add('z')"), "3")  # LIMIT from the class body

    def test_new_function_new_import_and_constant_keep_module_state(self):
        self.reload(self.target.path("shop.py"))   # the first reload records what is live
        self.target.call("shop.calls.append('state')")
        self.target.edit("shop.py", "import functools\n", "import functools\nimport json\n")
        self.target.edit("shop.py", "RATE = 2", "RATE = 3")
        with open(self.target.path("shop.py"), "a") as handle:
            handle.write("\n\ndef as_json(x):\n    return json.dumps({'v': price(x)})\n")
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("defined", done.stdout)
        self.assertEqual(self.target.call("shop.as_json(1)"), "'{\"v\": 3}'")
        self.assertIn("'state'", self.target.call("shop.calls"))  # calls = [] was not re-run

    def test_removed_function_is_deleted(self):
        self.reload(self.target.path("shop.py"))   # the first reload records what is live
        self.target.edit("shop.py", "def numbers(n):\n    for i in range(n):\n        yield i\n", "")
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("deleted", done.stdout)
        self.assertFalse(self.target.call_error("shop.numbers")["ok"])

    def test_removed_statement_is_reported_kept_not_rerun(self):
        self.reload(self.target.path("shop.py"))   # the first reload records what is live
        self.target.edit("shop.py", "calls = []\n", "")
        done = self.reload(self.target.path("shop.py"), "--dry-run")
        self.assertIn("would keep <module>: calls = []", done.stdout)
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("kept       <module>: calls = []  (line 4)  removed from the file; stays in the live module",
                      done.stdout)
        self.assertNotIn("re-ran", done.stdout)
        self.assertEqual(self.target.call("shop.calls"), "[]")

    def test_generator_running_frames_finish_on_old_code(self):
        self.target.call("globals().__setitem__('gen', shop.numbers(3))")
        self.assertEqual(self.target.call("next(gen)"), "0")
        self.target.edit("shop.py", "yield i", "yield i * 10")
        self.reload("shop", "numbers")
        self.assertEqual(self.target.call("next(gen)"), "1")
        self.assertEqual(self.target.call("list(shop.numbers(3))"), "[0, 10, 20]")

    def test_first_reload_binds_new_names_but_keeps_existing_state(self):
        # No snapshot yet: changed definitions are found by comparing code;
        # a constant the module lacks is bound, existing state is kept.
        self.target.call("shop.calls.append('state')")
        self.target.edit("shop.py", "calls = []", "calls = []\nGREETING = 'hi'")
        self.target.edit("shop.py", "return x * RATE", "return GREETING * x")
        done = self.reload(self.target.path("shop.py"))
        self.assertIn("swapped    price", done.stdout)
        self.assertNotIn("swapped    with_default", done.stdout)   # unchanged code is not swapped (only relocated)
        self.assertEqual(self.target.call("shop.price(2)"), "'hihi'")
        self.assertEqual(self.target.call("shop.calls"), "['state']")

    def test_tracebacks_point_at_the_file_on_disk(self):
        self.target.edit("shop.py", "RATE = 2\n", "RATE = 2\n\n\n\n")   # everything below moves 3 lines
        self.target.edit("shop.py", 'x = 1\n    raise', 'x = 2\n    raise')
        self.reload(self.target.path("shop.py"))
        answer = self.target.call_error("shop.fails()")
        self.assertIn("boom 2", answer["error"])
        with open(self.target.path("shop.py")) as handle:
            lines = handle.read().splitlines()
        raise_line = next(i for i, line in enumerate(lines, 1) if 'raise ValueError("boom' in line)
        self.assertIn('line %d, in fails' % raise_line, answer["traceback"])
        self.assertIn('raise ValueError("boom %d" % x)', answer["traceback"])  # linecache refreshed

    def test_restart_verdict_refuses_and_changes_nothing(self):
        pyhot("reload", self.target.pid, self.target.path("shop.py"), check=0)   # take a snapshot
        self.target.edit("shop.py", "class Special(Cart):", "class Special(Cart, object):")
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        done = self.reload(self.target.path("shop.py"), check=1)
        self.assertIn("restart", done.stdout)
        self.assertIn("bases", done.stdout)
        # The refused lines name the file: nothing follows the error but them.
        self.assertNotIn("Located file path", done.stdout)
        self.assertEqual(self.target.call("shop.price(1)"), "2")

    def test_unchanged_method_and_unknown_names(self):
        done = self.reload("shop", "price", check=1)
        self.assertIn("Error: Method source has not changed.", done.stdout)
        done = self.reload("shop", "nonexistent", check=1)
        self.assertEqual(done.stdout.strip(), "Error: Cannot locate method nonexistent in module shop.")
        done = self.reload("nonexistent_module", "func", check=1)
        self.assertEqual(done.stdout.strip(),
                         "Error: Unexpected error during reload: No module named 'nonexistent_module'.")

    def test_history_and_revert_restore_the_previous_code(self):
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        self.reload("shop", "price")
        self.assertEqual(self.target.call("shop.price(1)"), "1002")
        history = pyhot("history", self.target.pid, check=0)
        self.assertIn("#1", history.stdout)
        self.assertIn("price", history.stdout)
        pyhot("revert", self.target.pid, check=0)
        self.assertEqual(self.target.call("shop.price(1)"), "2")
        self.assertEqual(self.target.call("user.registry['price'](1)"), "2")

    def test_dry_run_changes_nothing(self):
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        done = self.reload(self.target.path("shop.py"), "--dry-run")
        self.assertIn("Dry run", done.stdout)
        self.assertEqual(self.target.call("shop.price(1)"), "2")

    def test_compile_error_in_the_target_applies_nothing(self):
        # tree-sitter accepts it; CPython's compiler refuses `nonlocal` of an unknown name
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        self.target.edit("shop.py", "def numbers(n):\n", "def numbers(n):\n    nonlocal nowhere\n")
        done = self.reload(self.target.path("shop.py"), check=1)
        self.assertIn("Error", done.stdout)
        self.assertEqual(self.target.call("shop.price(1)"), "2")

    def test_syntax_error_is_one_line_with_position(self):
        self.target.edit("shop.py", "def price(x):", "def price(x:")
        done = self.reload(self.target.path("shop.py"), check=1)
        self.assertRegex(done.stdout, r"syntax error in .*shop\.py:\d+:\d+")

    def test_json_output(self):
        self.target.edit("shop.py", "return x * RATE", "return x * RATE + 1000")
        done = self.reload(self.target.path("shop.py"), "--json")
        import json
        document = json.loads(done.stdout)
        self.assertTrue(document["ok"])
        self.assertEqual(document["module"], "shop")
        self.assertIn("price", [change["qualname"] for change in document["changes"]])

    def test_module_command_names_the_module(self):
        done = pyhot("module", self.target.pid, self.target.path("shop.py"), check=0)
        self.assertEqual(done.stdout.strip(), "shop")


FUTURE = {
    "typed.py": '''
        from __future__ import annotations
        import asyncio


        class Outer:
            class Inner:
                def greet(self, who: Undefined) -> Nowhere:
                    return "hello " + who


        async def fetch(x: Missing) -> int:
            await asyncio.sleep(0)
            return x


        async def ticks(n):
            for i in range(n):
                yield i
        ''',
}


class FutureAndAsyncTest(TargetTestCase):
    def setUp(self):
        self.target = self.start(FUTURE, ["typed"], """
import asyncio
async def collect(agen):
    return [x async for x in agen]
""")

    def test_future_annotations_nested_class_and_coroutines(self):
        self.target.edit("typed.py", 'return "hello " + who', 'return "hi " + who')
        self.target.edit("typed.py", "def greet(self, who: Undefined)", "def greet(self, who: StillUndefined)")
        self.target.edit("typed.py", "return x\n", "return x * 2\n")
        self.target.edit("typed.py", "yield i", "yield -i")
        done = pyhot("reload", self.target.pid, self.target.path("typed.py"), check=0)
        self.assertIn("Outer.Inner.greet", done.stdout)
        # annotations stay strings: the future flag was honoured when compiling
        self.assertEqual(self.target.call("typed.Outer.Inner().greet('you')"), "'hi you'")
        self.assertEqual(self.target.call("typed.Outer.Inner.greet.__annotations__['who']"), "'StillUndefined'")
        self.assertEqual(self.target.call("asyncio.run(typed.fetch(4))"), "8")
        self.assertEqual(self.target.call("asyncio.run(collect(typed.ticks(3)))"), "[0, -1, -2]")


class ServingTest(TargetTestCase):
    """A threaded HTTP server keeps answering every request during reloads."""

    def test_no_request_fails_during_reloads(self):
        target = self.start(SHOP, ["shop", "user"], SETUP)
        failures = []
        answers = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    answers.append(target.call("shop.price(1)"))
                except Exception as error:  # noqa: BLE001 - any failure is the finding
                    failures.append(repr(error))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for i in range(10):
                target.edit("shop.py", "return x * RATE", "return x * RATE + %d" % (i + 1))
                pyhot("reload", target.pid, target.path("shop.py"), check=0)
                target.edit("shop.py", "return x * RATE + %d" % (i + 1), "return x * RATE")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        self.assertEqual(failures, [])
        self.assertGreater(len(answers), 20)


class IsolationTest(unittest.TestCase):
    """Targets pyhot must reach, and users it must refuse."""

    def start_shop(self, command):
        directory = tempfile.mkdtemp(prefix="pyhot-ns-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, directory, True)
        for name in ("app.py", "pricing.py"):
            shutil.copy(os.path.join(ROOT, "examples", "shop", name), directory)
        log = open(os.path.join(directory, "log"), "w")
        self.addCleanup(log.close)
        process = spawn(command, cwd=directory, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, process)

        def url():
            with open(os.path.join(directory, "log")) as handle:
                text = handle.read()
            return text.split("listening on ")[1].strip() if "listening on " in text else None
        return process, directory, wait_for(url, 10, "the shop to listen")

    def test_target_in_another_mount_namespace(self):
        # The target's /tmp is private: its agent socket is only reachable
        # through /proc/PID/root.
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            self.skipTest("cannot create a mount namespace here: " + probe.stderr.decode().strip())
        process, directory, url = self.start_shop(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             "mount -t tmpfs none /tmp && exec /usr/bin/python3 app.py"])
        pricing = os.path.join(directory, "pricing.py")
        with open(pricing) as handle:
            text = handle.read()
        with open(pricing, "w") as handle:
            handle.write(text.replace("return BASE_PRICES[item] * quantity", "return BASE_PRICES[item] * quantity + 1"))
        done = pyhot("reload", process.pid, pricing, check=0)
        self.assertIn("swapped    price_of", done.stdout)
        with urllib.request.urlopen(url + "/price/apple", timeout=10) as response:
            self.assertIn("apple costs 101", response.read().decode())
        self.assertFalse(os.path.exists("/tmp/pyhot-0/%d.sock" % process.pid))

    def test_another_user_is_refused_and_the_target_is_untouched(self):
        if os.getuid() != 0:
            self.skipTest("needs root to run pyhot as another user")
        process, directory, url = self.start_shop(["/usr/bin/python3", "app.py"])
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               PYHOT, "reload", str(process.pid), "pricing", "price_of"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stderr.strip(),
                         "pyhot: process %d belongs to uid 0: run pyhot as that user or as root" % process.pid)
        with urllib.request.urlopen(url + "/price/apple", timeout=10) as response:
            self.assertIn("apple costs 100", response.read().decode())


PAIR = {
    "pair.py": '''
        def first():
            return 0


        def second():
            return 0
        ''',
}

# A CPU-bound thread reads both functions' code in one C-level call (so the
# read itself is atomic) and records any moment where they disagree.
PAIR_SETUP = """
import operator, threading
seen = {"checks": 0, "torn": 0}
def _check():
    get = operator.attrgetter("__code__")
    while True:
        first, second = tuple(map(get, (pair.first, pair.second)))
        if first.co_consts[-1] != second.co_consts[-1]:
            seen["torn"] += 1
        seen["checks"] += 1
threading.Thread(target=_check, daemon=True).start()
"""


class AtomicityTest(TargetTestCase):
    def test_no_thread_sees_half_a_patch_and_busy_threads_do_not_stall_it(self):
        target = self.start(PAIR, ["pair"], PAIR_SETUP)
        for version in range(1, 7):
            target.write("pair.py", PAIR["pair.py"].replace("return 0", "return %d" % version))
            started = time.monotonic()
            pyhot("reload", target.pid, target.path("pair.py"), check=0)
            # A CPU-bound thread in the target must not hold up the reload,
            # nor the HTTP thread after it.
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual(target.call("(pair.first(), pair.second())"), "(%d, %d)" % (version, version))
        self.assertEqual(target.call("seen['torn']"), "0")
        self.assertGreater(int(target.call("seen['checks']")), 1000)


class ErrorsTest(unittest.TestCase):
    def test_no_such_pid(self):
        done = pyhot("reload", 999999, "shop", "price")
        self.assertEqual(done.returncode, 1)
        self.assertIn("no process with pid 999999", done.stderr)

    def test_not_a_python_process(self):
        sleeper = spawn(["sleep", "30"])
        self.addCleanup(kill_group, sleeper)
        done = pyhot("reload", sleeper.pid, "shop", "price")
        self.assertEqual(done.returncode, 1)
        self.assertIn("is not a Python process", done.stderr)

    def test_usage_error_exits_2(self):
        self.assertEqual(pyhot("reload").returncode, 2)
        self.assertEqual(pyhot("revert", 1, "x", "y").returncode, 2)


for_each_interpreter(ReloadTest, globals())
for_each_interpreter(ServingTest, globals())
REBOUND = """
    def handler():
        return 1


    handler = 5
    """

REGISTERING = {
    "reg.py": """
        class Registry:
            def __init__(self):
                self.items = []

            def register(self, function):
                self.items.append(function)
                return len(self.items)


        registry = Registry()


        @registry.register
        def handler():
            return 1


        def other():
            return 1
        """,
}


LAMBDAS = {
    "lam.py": """
        add = lambda x: x + 1
        callbacks = [add]
        """,
    "user_lam.py": """
        from lam import add
        """,
}


class LambdaTest(TargetTestCase):
    """A lambda bound by a module-level statement (issue 10): after its edit,
    every holder of the old lambda runs the new code."""

    def test_every_holder_of_an_edited_lambda_runs_the_new_code(self):
        target = self.start(LAMBDAS, ["lam", "user_lam"])
        path = target.path("lam.py")
        self.assertEqual(pyhot("reload", target.pid, path).returncode, 0)  # pyhot has seen it
        target.edit("lam.py", "x + 1", "x + 5")
        done = pyhot("reload", target.pid, path)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(target.call("lam.add(1)"), "6")
        self.assertEqual(target.call("lam.callbacks[0](1)"), "6")
        self.assertEqual(target.call("user_lam.add(1)"), "6")
        self.assertEqual(target.call("lam.callbacks[0] is lam.add is user_lam.add"), "True")
        undone = pyhot("revert", target.pid)
        self.assertEqual(undone.returncode, 0, undone.stdout + undone.stderr)
        self.assertEqual(target.call("lam.callbacks[0](1)"), "2")


class RegisteringDecoratorTest(TargetTestCase):
    """A decorator that records the function and returns something else
    (issue 10): a reload gives the function the registry holds its new
    code, and never registers it again."""

    def test_the_function_a_registry_holds_runs_the_edited_code(self):
        target = self.start(REGISTERING, ["reg"])
        path = target.path("reg.py")
        self.assertEqual(pyhot("reload", target.pid, path).returncode, 0)  # unchanged: a no-op
        self.assertEqual(target.call("len(reg.registry.items)"), "1")
        target.edit("reg.py", "def handler():\n    return 1", "def handler():\n    return 2")
        target.edit("reg.py", "def other():\n    return 1", "def other():\n    return 2")
        done = pyhot("reload", target.pid, path)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("swapped    handler", done.stdout)
        self.assertEqual(target.call("reg.registry.items[0]()"), "2")
        self.assertEqual(target.call("reg.other()"), "2")
        self.assertEqual(target.call("len(reg.registry.items)"), "1")
        self.assertEqual(target.call("reg.handler"), "1")  # what the decorator returned, untouched
        again = pyhot("reload", target.pid, path)  # a no-op: runs nothing
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertEqual(target.call("len(reg.registry.items)"), "1")

    def test_an_attached_first_reload_reaches_the_registered_function(self):
        target = self.start(REGISTERING, ["reg"], prepared=False)
        path = target.path("reg.py")
        target.edit("reg.py", "def handler():\n    return 1", "def handler():\n    return 2")
        done = pyhot("reload", target.pid, path)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("swapped    handler", done.stdout)
        self.assertEqual(target.call("reg.registry.items[0]()"), "2")
        self.assertEqual(target.call("len(reg.registry.items)"), "1")

    def test_a_name_the_module_rebinds_to_a_value_is_not_swapped(self):
        # `def handler` then `handler = 5`: the function is gone, as after a
        # fresh import; nothing live runs the definition's code.
        target = self.start({"rb.py": REBOUND}, ["rb"])
        path = target.path("rb.py")
        target.edit("rb.py", "def handler():\n    return 1", "def handler():\n    return 2")
        done = pyhot("reload", target.pid, path)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("swapped    handler", done.stdout)
        self.assertEqual(target.call("rb.handler"), "5")


for_each_interpreter(FutureAndAsyncTest, globals())
for_each_interpreter(AtomicityTest, globals())
for_each_interpreter(RegisteringDecoratorTest, globals())
for_each_interpreter(LambdaTest, globals())
del ReloadTest, ServingTest, FutureAndAsyncTest, AtomicityTest, RegisteringDecoratorTest, LambdaTest

if __name__ == "__main__":
    unittest.main()
