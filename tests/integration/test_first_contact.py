"""The first reload of a module (issue 10): with a baseline (recorded at
import under `pyhot run`, or proven from git in an attached process) it
behaves exactly as a later one; without one it runs no module-level
statement it cannot tell is new and says what it could not compare.

Also runs the edit pairs of testdata/first_contact/ as first and as second
reload and prints both pass counts, which must be equal."""
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ROOT, TargetTestCase, for_each_interpreter, pyhot, wait_for  # noqa: E402

APP = '''
import os
import enum

RATE = 2
_tmp = os.system("echo import >> " + os.path.join(os.path.dirname(__file__), "ran.log"))
del _tmp


def deco(f):
    def wrapper(*args):
        return ("decorated", f(*args))
    wrapper.__wrapped__ = f
    return wrapper


class Color(enum.Enum):
    RED = 1


class Cart:
    LIMIT = 5

    def total(self, n):
        return min(n, self.LIMIT) * RATE


def f():
    return 1


@deco
def g():
    return "g"


def gone():
    return "still here"


def fails():
    raise ValueError("boom")


LATE = os.system("echo late >> " + os.path.join(os.path.dirname(__file__), "ran.log"))
'''

CORPUS = os.path.join(ROOT, "testdata", "first_contact")


def git(directory, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t"] + list(args), cwd=directory, check=True,
                   capture_output=True, timeout=30)


class FirstContact(TargetTestCase):
    """The same first reloads in a process started under `pyhot run` and in
    an attached one whose file is committed in git."""

    prepared = True

    def setUp(self):
        self.target = self.start({"app.py": APP}, ["app"], prepared=self.prepared)
        if not self.prepared:
            git(self.target.dir, "init", "-q")
            git(self.target.dir, "add", "app.py")
            git(self.target.dir, "commit", "-q", "-m", "imported")

    def reload(self, check=0):
        return pyhot("reload", self.target.pid, self.target.path("app.py"), check=check)

    def ran(self):
        with open(self.target.path("ran.log")) as handle:
            return handle.read().split()

    def test_only_the_changed_function_runs(self):
        self.target.edit("app.py", "return 1", "return 2")
        done = self.reload()
        self.assertEqual(self.target.call("app.f()"), "2")
        self.assertEqual(self.ran(), ["import", "late"])   # nothing at module level re-ran
        self.assertNotIn("re-ran", done.stdout)

    def test_changed_constant_and_class_level_assignment(self):
        self.target.edit("app.py", "RATE = 2", "RATE = 3")
        self.target.edit("app.py", "LIMIT = 5", "LIMIT = 7")
        self.reload()
        self.assertEqual(self.target.call("app.RATE"), "3")
        self.assertEqual(self.target.call("app.Cart().total(10)"), "21")
        self.assertEqual(self.ran(), ["import", "late"])

    def test_deleted_function(self):
        self.target.edit("app.py", 'def gone():\n    return "still here"\n', "")
        done = self.reload()
        self.assertIn("deleted", done.stdout)
        self.assertFalse(self.target.call_error("app.gone")["ok"])

    def test_decorator_removed(self):
        self.target.edit("app.py", "@deco\ndef g", "def g")
        done = self.reload()
        self.assertNotIn("Nothing to reload", done.stdout)
        self.assertEqual(self.target.call("app.g()"), "'g'")

    def test_new_import_without_a_changed_definition(self):
        self.target.edit("app.py", "import enum\n", "import enum\nimport json\n")
        done = self.reload()
        self.assertNotIn("Nothing to reload", done.stdout)
        self.assertEqual(self.target.call("app.json.dumps(1)"), "'1'")

    def test_enum_member_added_is_refused(self):
        self.target.edit("app.py", "RED = 1\n", "RED = 1\n    BLUE = 2\n")
        done = self.reload(check=1)
        self.assertIn("restart", done.stdout)
        self.assertFalse(self.target.call_error("app.Color.BLUE")["ok"])

    def test_moved_definition_is_relocated(self):
        self.target.edit("app.py", "RATE = 2\n", "RATE = 2\n\n\n\n")
        self.reload()
        answer = self.target.call_error("app.fails()")
        with open(self.target.path("app.py")) as handle:
            lines = handle.read().splitlines()
        raise_line = next(i for i, line in enumerate(lines, 1) if 'raise ValueError("boom")' in line)
        self.assertIn("line %d, in fails" % raise_line, answer["traceback"])
        self.assertIn("Nothing to reload", self.reload().stdout)


class FirstContactAttached(FirstContact):
    prepared = False


class WithoutBaseline(TargetTestCase):
    """Attached, no git, the file edited since import: nothing at module
    level runs, and the reload says what it could not compare."""

    def setUp(self):
        self.target = self.start({"app.py": APP}, ["app"], prepared=False)

    def ran(self):
        with open(self.target.path("ran.log")) as handle:
            return handle.read().split()

    def test_no_module_statement_runs_and_the_reason_is_said(self):
        self.target.edit("app.py", "return 1", "return 2")
        self.target.edit("app.py", "RATE = 2", "RATE = 3\nNEW = ('a', 1, None)\nCALLED = os.getpid()")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertEqual(self.target.call("app.f()"), "2")
        self.assertEqual(self.target.call("app.NEW"), "('a', 1, None)")   # a literal runs no code: bound
        self.assertFalse(self.target.call_error("app.CALLED")["ok"])      # a call is not run
        with open(self.target.path("ran.log")) as handle:
            self.assertEqual(handle.read().split(), ["import", "late"])
        self.assertIn("no record of the imported text", done.stdout + done.stderr)
        self.assertIn("--assume-imported", done.stdout + done.stderr)

    def test_changed_literal_constants_are_compared_with_the_live_values(self):
        self.target.edit("app.py", "RATE = 2", "RATE = 3")
        self.target.edit("app.py", "LIMIT = 5", "LIMIT = 7")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertEqual(self.target.call("(app.RATE, app.Cart.LIMIT, app.Cart().total(10))"), "(3, 7, 21)")
        self.assertIn("RATE = 3", done.stdout)
        self.assertEqual(self.ran(), ["import", "late"])
        self.assertIn("module-level statements that run code (3, first `_tmp = os.system(", done.stdout)

    def test_state_the_program_keeps_is_not_taken_for_an_edit(self):
        state = ("COUNT = 0\nCACHE = []\n\n\ndef bump():\n    global COUNT\n    COUNT += 1\n"
                 "    CACHE.append(COUNT)\n    return COUNT\n")
        target = self.start({"state.py": state}, ["state"], prepared=False)
        target.call("(state.bump(), state.bump())")
        target.edit("state.py", "return COUNT", "return COUNT * 10")
        pyhot("reload", target.pid, target.path("state.py"), check=0)
        self.assertEqual(target.call("(state.COUNT, list(state.CACHE))"), "(2, [1, 2])")   # not reset to 0, []
        self.assertEqual(target.call("state.bump()"), "30")

    def test_moved_definitions_are_relocated(self):
        self.target.edit("app.py", "RATE = 2\n", "RATE = 2\n\n\n\n")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertIn("relocated", done.stdout)
        with open(self.target.path("app.py")) as handle:
            lines = handle.read().splitlines()
        raise_line = next(i for i, line in enumerate(lines, 1) if 'raise ValueError("boom")' in line)
        self.assertIn("line %d, in fails" % raise_line, self.target.call_error("app.fails()")["traceback"])
        self.assertEqual(self.target.call("app.Cart.total.__code__.co_firstlineno"),
                         str(next(i for i, line in enumerate(lines, 1) if "def total" in line)))

    def test_deleted_function_and_method(self):
        self.target.edit("app.py", 'def gone():\n    return "still here"\n', "")
        self.target.edit("app.py", "    def total(self, n):\n        return min(n, self.LIMIT) * RATE\n", "    pass\n")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertIn("deleted", done.stdout)
        self.assertEqual(self.target.call("(hasattr(app, 'gone'), hasattr(app.Cart, 'total'), app.f())"),
                         "(False, False, 1)")

    def test_decorator_removed(self):
        self.target.edit("app.py", "@deco\ndef g", "def g")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertIn("rebound", done.stdout)
        self.assertEqual(self.target.call("app.g()"), "'g'")

    def test_new_import_without_a_changed_definition(self):
        self.target.edit("app.py", "import enum\n", "import enum\nimport json\n")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=0)
        self.assertNotIn("No definition", done.stdout)
        self.assertEqual(self.target.call("app.json.dumps(1)"), "'1'")

    def test_added_enum_member_is_refused(self):
        self.target.edit("app.py", "RED = 1\n", "RED = 1\n    BLUE = 2\n")
        done = pyhot("reload", self.target.pid, self.target.path("app.py"), check=1)
        self.assertIn("restart", done.stdout)
        self.assertIn("BLUE", done.stdout)
        self.assertFalse(self.target.call_error("app.Color.BLUE")["ok"])

    def test_a_class_a_metaclass_consumed_is_not_defined_again(self):
        with open(os.path.join(CORPUS, "metaclass_model", "before.py")) as handle:
            models = handle.read()
        target = self.start({"models.py": models}, ["models"], prepared=False)
        target.edit("models.py", 'return "product"', 'return "item"')
        done = pyhot("reload", target.pid, target.path("models.py"), check=0)
        self.assertNotIn("Product.Meta", done.stdout)
        self.assertEqual(target.call('("Meta" in models.Product.__dict__, models.Product().label())'),
                         "(False, 'item')")

    def test_a_decorator_that_may_return_the_function_is_not_run_again(self):
        routes = ("calls = []\n\n\ndef register(f):\n    calls.append(f)\n    return f\n\n\n"
                  "@register\ndef handler():\n    return 1\n")
        target = self.start({"routes.py": routes}, ["routes"], prepared=False)
        target.edit("routes.py", "return 1", "return 2")
        done = pyhot("reload", target.pid, target.path("routes.py"), check=0)
        self.assertEqual(target.call("(routes.handler(), len(routes.calls))"), "(2, 1)")
        self.assertIn("decorator lists (1, first handler at line 10): not compared", done.stdout)
        self.assertNotIn("Nothing to reload", done.stdout)

    def test_assume_imported_takes_a_git_revision(self):
        git(self.target.dir, "init", "-q")
        git(self.target.dir, "add", "app.py")
        git(self.target.dir, "commit", "-q", "-m", "imported")
        self.target.edit("app.py", "RATE = 2", "RATE = 3")
        os.utime(self.target.path("app.py"))
        pyhot("reload", "--assume-imported", "HEAD", self.target.pid, self.target.path("app.py"), check=0)
        self.assertEqual(self.target.call("app.RATE"), "3")


COUNTER = """RATE = 2
COUNT = 0


def bump():
    global COUNT
    COUNT += 1
    return COUNT


def price(n):
    return n * RATE
"""

# Imports the module from a .pyc written first (the harness's targets write none).
FROM_PYC = ("import importlib, os, py_compile\n"
            "py_compile.compile(os.path.abspath('counter.py'), doraise=True)\n"
            "counter = importlib.import_module('counter')\n"
            "counter.bump()\n")


class FromBytecodeCache(TargetTestCase):
    """Attached, no git: the module's .pyc proves the text the agent read
    when it started (its mtime and size are the .pyc's), with no compiling -
    even where the program changed a literal constant, which a proof by
    compiling cannot tell from an edit; after an edit it proves only that the
    live code is the compilation of an older file, and says so."""

    def test_the_text_read_at_attach_is_proven_by_the_pyc(self):
        target = self.start({"counter.py": COUNTER}, [], setup=FROM_PYC, prepared=False)
        pyhot("history", target.pid, check=0)   # attaches: the agent reads counter.py as it is
        target.edit("counter.py", "RATE = 2", "RATE = 3")
        done = pyhot("reload", target.pid, target.path("counter.py"), check=0)
        self.assertNotIn("Not compared", done.stdout)
        self.assertEqual(target.call("(counter.RATE, counter.price(2), counter.COUNT)"), "(3, 6, 1)")

    def test_after_an_edit_it_says_what_it_proves(self):
        target = self.start({"counter.py": COUNTER}, [], setup=FROM_PYC, prepared=False)
        target.edit("counter.py", "n * RATE", "n * RATE + 1")
        done = pyhot("reload", target.pid, target.path("counter.py"), check=0)
        self.assertEqual(target.call("counter.price(2)"), "5")
        self.assertIn("Not compared", done.stdout)
        self.assertIn("a .pyc holds no text", done.stdout)
        self.assertIn("compiled from counter.py as it was at", done.stdout)


class FromEditorBackup(TargetTestCase):
    """Attached, no git, no .pyc: the backup an editor leaves beside the file
    (`counter.py~`, vim's `backup`, Emacs) is a candidate; the agent accepts
    it only if compiling it gives every live code object of the module and
    its literal constants still hold their values (so not once the program
    has changed one: a compiling proof cannot tell that from an edit)."""

    def start_counter(self):
        target = self.start({"counter.py": COUNTER}, [], setup="import counter\n", prepared=False)
        self.assertFalse(os.path.exists(os.path.join(target.dir, "__pycache__")))
        return target

    def test_the_backup_of_the_imported_text_is_the_baseline(self):
        target = self.start_counter()
        with open(target.path("counter.py")) as source, open(target.path("counter.py~"), "w") as backup:
            backup.write(source.read())
        target.edit("counter.py", "RATE = 2", "RATE = 3")
        done = pyhot("reload", target.pid, target.path("counter.py"), check=0)
        self.assertNotIn("Not compared", done.stdout)
        self.assertEqual(target.call("(counter.RATE, counter.price(2))"), "(3, 6)")

    def test_a_backup_of_another_text_is_not_taken(self):
        target = self.start_counter()
        with open(target.path("counter.py~"), "w") as backup:
            backup.write(COUNTER.replace("n * RATE", "n * RATE * 10"))
        target.edit("counter.py", "n * RATE", "n * RATE + 1")
        done = pyhot("reload", target.pid, target.path("counter.py"), check=0)
        self.assertIn("Not compared", done.stdout)
        self.assertEqual(target.call("counter.price(2)"), "5")


class FromEditorBackupAlone(TargetTestCase):
    """Attached, no git, no .pyc, and a module whose import ran side effects:
    when only `app.py~` holds the imported text, the first reload is what a
    later one is (the same changes, none compared with the live code, no
    module-level statement run); a backup of another text changes nothing
    of what a reload without a baseline does."""

    def setUp(self):
        self.target = self.start({"app.py": APP}, ["app"], prepared=False)
        self.assertFalse(os.path.exists(self.target.path("__pycache__")))
        self.assertNotEqual(subprocess.run(["git", "rev-parse"], cwd=self.target.dir, capture_output=True).returncode,
                            0, "the target's directory must not be in a git work tree")

    def write_backup(self, text):
        with open(self.target.path("app.py~"), "w") as backup:
            backup.write(text)

    def reload(self):
        done = pyhot("reload", "--json", self.target.pid, self.target.path("app.py"), check=0)
        return json.loads(done.stdout)

    def changes(self, outcome):
        """What was done, to what (a statement's values left out: each reload sets other numbers)."""
        return sorted((re.sub(r"\d+", "N", c["qualname"]), c["verdict"], c["status"]) for c in outcome["changes"])

    def ran(self):
        with open(self.target.path("ran.log")) as handle:
            return handle.read().split()

    def test_the_first_reload_is_a_later_one(self):
        with open(self.target.path("app.py")) as source:
            self.write_backup(source.read())
        self.target.edit("app.py", "RATE = 2", "RATE = 3")
        self.target.edit("app.py", "return 1", "return 2")
        first = self.reload()
        self.assertEqual(self.target.call("(app.RATE, app.f(), app.Cart().total(10))"), "(3, 2, 15)")
        self.target.edit("app.py", "RATE = 3", "RATE = 4")
        self.target.edit("app.py", "return 2", "return 3")
        later = self.reload()
        self.assertEqual(self.target.call("(app.RATE, app.f(), app.Cart().total(10))"), "(4, 3, 20)")
        for outcome in (first, later):
            self.assertFalse(outcome["first_touch"], outcome)
            self.assertEqual(outcome["not_compared"], [], outcome)
        self.assertEqual(self.changes(first), self.changes(later))
        self.assertEqual(self.changes(first), [("<module>: RATE = N", "reexec", "applied"), ("f", "swap", "applied")])
        # `_tmp = os.system(...)` (then `del`'d) and `LATE = os.system(...)` ran once, at import.
        self.assertEqual(self.ran(), ["import", "late"])

    def test_a_backup_of_another_text_is_not_the_baseline(self):
        self.write_backup(APP.replace("return 1", "return 10"))
        self.target.edit("app.py", "return 1", "return 2")
        first = self.reload()
        self.assertTrue(first["first_touch"], first)
        self.assertNotEqual(first["not_compared"], [], first)
        self.assertEqual(self.target.call("app.f()"), "2")
        self.assertEqual(self.ran(), ["import", "late"])


class ImportedCopies(TargetTestCase):
    """`from config import RATE` in another module is a copy: a re-bound
    RATE is updated there too where the copy still holds the old object."""

    def test_copies_that_hold_the_old_object_are_updated(self):
        files = {"config.py": "RATE = 2\nNAME = 'shop'\n",
                 "views.py": "from config import RATE, NAME as TITLE\n\n\ndef price():\n    return RATE\n",
                 "other.py": "RATE = 2\n",
                 "moved.py": "from config import RATE\nRATE = 'own'\n"}
        target = self.start(files, ["config", "views", "other", "moved"])
        target.edit("config.py", "RATE = 2", "RATE = 3")
        target.edit("config.py", "'shop'", "'store'")
        done = pyhot("reload", target.pid, target.path("config.py"), check=0)
        self.assertEqual(target.call("(views.RATE, views.price(), views.TITLE)"), "(3, 3, 'store')")
        self.assertEqual(target.call("(other.RATE, moved.RATE)"), "(2, 'own')")   # not copies, or no longer
        self.assertIn("also updated in views.RATE", done.stdout)
        self.assertIn("views.TITLE", done.stdout)


class RevertWhileRunning(TargetTestCase):
    """A frame still running a patch's code when the patch is reverted keeps
    the names the patch added."""

    def test_names_the_patch_added_stay_bound(self):
        target = self.start({"job.py": "import threading\n\ngate = threading.Event()\n\n\n"
                                       "def work():\n    return 1\n"}, ["job"])
        target.write("job.py", "import threading\n\ngate = threading.Event()\n\n\n"
                               "def helper():\n    return 2\n\n\n"
                               "def work():\n    gate.wait(20)\n    return helper()\n")
        pyhot("reload", target.pid, target.path("job.py"), check=0)
        target.call("__import__('threading').Thread(target=lambda: setattr(job, 'result', "
                    "(lambda: job.work())()), daemon=True).start()")
        wait_for(lambda: target.call("any(s.name == 'work' for f in __import__('sys')._current_frames().values() "
                                     "for s in __import__('traceback').extract_stack(f))") == "True",
                 10, "work() to be running")
        done = pyhot("revert", target.pid, check=0)
        self.assertIn("kept", done.stdout)
        self.assertIn("helper", done.stdout)
        self.assertEqual(target.call("job.work.__code__.co_firstlineno"), "6")   # the old code is back
        target.call("job.gate.set()")
        wait_for(lambda: target.call("hasattr(job, 'result')") == "True", 10, "work() to return")
        self.assertEqual(target.call("job.result"), "2")


def corpus_pairs():
    """(name, before, after, exit code, expressions) per testdata/first_contact pair."""
    pairs = []
    for name in sorted(os.listdir(CORPUS)):
        directory = os.path.join(CORPUS, name)
        if not os.path.isdir(directory):
            continue
        texts = []
        for part in ("before.py", "after.py", "expect.txt"):
            with open(os.path.join(directory, part)) as handle:
                texts.append(handle.read())
        lines = [line for line in texts[2].splitlines() if line.strip()]
        code = 0
        if lines and lines[0].startswith("exit:"):
            code = int(lines.pop(0).split(":")[1])
        pairs.append((name, texts[0], texts[1], code, lines))
    return pairs


def output_holds(line, output):
    """`output has: TEXT` / `output lacks: TEXT` lines of expect.txt."""
    if line.startswith("output has:"):
        return line.split(":", 1)[1].strip() in output
    return line.split(":", 1)[1].strip() not in output


def failing(passed_twice):
    """' (failing: a, b)' for the pairs not in both runs."""
    names = [name for name, _, _, _, _ in corpus_pairs() if passed_twice.count(name) < 2]
    return " (failing: %s)" % ", ".join(names) if names else ""


class Corpus(TargetTestCase):
    """Every pair as a first and as a second reload: the same pairs must pass."""

    def passes(self, prepared, second, committed=True):
        pairs = corpus_pairs()
        files = {"m_%s.py" % name: before for name, before, _, _, _ in pairs}
        target = self.start(files, ["m_" + name for name, _, _, _, _ in pairs], prepared=prepared)
        if committed:
            git(target.dir, "init", "-q")
            git(target.dir, "add", ".")
            git(target.dir, "commit", "-q", "-m", "imported")
        if not committed:
            # Every file edited before the agent starts: none can be proven.
            for name, _, after, _, _ in pairs:
                with open(target.path("m_%s.py" % name), "w") as handle:
                    handle.write(after)
        passed = []
        for name, _, after, code, expressions in pairs:
            path = target.path("m_%s.py" % name)
            if second:
                pyhot("reload", target.pid, path, check=0)
            if committed:
                with open(path, "w") as handle:
                    handle.write(after)
            done = pyhot("reload", target.pid, path)
            ok = done.returncode == code
            for expression in expressions:
                if expression.startswith(("output has:", "output lacks:")):
                    ok = ok and output_holds(expression, done.stdout + done.stderr)
                    continue
                answer = target.call_error("(lambda mod: bool(%s))(m_%s)" % (expression, name))
                ok = ok and answer["ok"] and answer["value"] == "True"
            if ok:
                passed.append(name)
        return passed

    def test_first_and_second_reload_pass_the_same_pairs(self):
        total = len(corpus_pairs())
        for prepared, label in ((True, "pyhot run"), (False, "attached, git")):
            first = self.passes(prepared, second=False)
            second = self.passes(prepared, second=True)
            sys.stderr.write("\nfirst_contact corpus (%s, %s): first reload %d/%d, second reload %d/%d%s\n"
                             % (self.python_label, label, len(first), total, len(second), total,
                                failing(first + second)))
            self.assertEqual(first, second)
            self.assertEqual(len(first), total)
        unproven = self.passes(False, second=False, committed=False)
        sys.stderr.write("first_contact corpus (%s, attached, no baseline): first reload %d/%d%s\n"
                         % (self.python_label, len(unproven), total, failing(unproven + unproven)))
        # Without a baseline too: a decorator added is proven by what it
        # returns (a function it makes, never its argument), a decorator
        # changed by the maker of the live result (its code changed, or the
        # file's decorators cannot call it).
        self.assertEqual(sorted(name for name, _, _, _, _ in corpus_pairs()), unproven)


for_each_interpreter(FirstContact, globals())
for_each_interpreter(FirstContactAttached, globals())
for_each_interpreter(WithoutBaseline, globals())
for_each_interpreter(Corpus, globals())
for_each_interpreter(RevertWhileRunning, globals())
for_each_interpreter(ImportedCopies, globals())
for_each_interpreter(FromBytecodeCache, globals())
for_each_interpreter(FromEditorBackup, globals())
for_each_interpreter(FromEditorBackupAlone, globals())
del FirstContact, FirstContactAttached, WithoutBaseline, Corpus, RevertWhileRunning, ImportedCopies, FromBytecodeCache
del FromEditorBackup, FromEditorBackupAlone

if __name__ == "__main__":
    unittest.main()
