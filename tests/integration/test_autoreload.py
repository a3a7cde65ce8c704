"""`pyhot autoreload` and `pyhot run --autoreload` against real processes:
save files the ways editors do and watch the live process pick them up.

The editor save patterns run on every interpreter; the rest of the suite
(behaviour of the command itself, not of the interpreter) runs on Debian's
python3 and the oldest supported pyenv build only, to keep the run short."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

from harness import PYHOT, TargetTestCase, interpreters, kill_group, pyhot, spawn, wait_for

VIEWS = {
    "views.py": '''
        import json


        def results():
            return 1


        def other():
            return "o"


        class Cart:
            def total(self):
                return "total"
    ''',
}


class Autoreload:
    """A running `pyhot autoreload --json` whose events are collected as they come."""

    def __init__(self, target, *arguments, debounce=None):
        command = [PYHOT, "autoreload", "--json", str(target.pid)] + [str(a) for a in arguments]
        if debounce is not None:
            command += ["--debounce", str(debounce)]
        self.process = spawn(command, cwd=target.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events = []
        self.stderr = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        try:
            self.wait_event(lambda e: e["event"] == "watching", what="autoreload to start")
        except BaseException:
            self.stop()
            raise

    def _read(self):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsable", "line": line}
            with self._lock:
                self.events.append(event)

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr += line

    def of(self, kind):
        with self._lock:
            return [event for event in self.events if event["event"] == kind]

    def wait_event(self, predicate, timeout=10, what="an event"):
        def found():
            with self._lock:
                for event in self.events:
                    if predicate(event):
                        return event
            if self.process.poll() is not None:
                self._reader.join(2)
                with self._lock:
                    matches = [event for event in self.events if predicate(event)]
                if matches:
                    return matches[0]
                raise AssertionError("autoreload exited %s while waiting for %s\nevents: %s\nstderr: %s"
                                     % (self.process.returncode, what, self.events, self.stderr))
            return None
        return wait_for(found, timeout, what)

    def stop(self):
        """Interrupts it as a user would (Ctrl-C) and returns its exit status;
        whatever is left of its process group is killed after."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        status = self.process.returncode
        kill_group(self.process)
        self._reader.join(2)
        self._stderr_reader.join(2)
        return status


def write_in_place(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def write_atomic(path, text):
    temporary = path + ".tmp%d" % os.getpid()
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def write_backup_then_new(path, text):
    # vim with backupcopy=no: probe file, move the original to `name~`,
    # write a new file, drop the backup.
    probe = os.path.join(os.path.dirname(path), "4913")
    open(probe, "w").close()
    os.remove(probe)
    os.rename(path, path + "~")
    with open(path, "w") as handle:
        handle.write(text)
    os.remove(path + "~")


def write_delete_then_create(path, text):
    os.remove(path)
    with open(path, "w") as handle:
        handle.write(text)


class AutoreloadTestCase(TargetTestCase):
    def watch(self, target, *arguments, debounce=None):
        autoreload = Autoreload(target, *arguments, debounce=debounce)
        self.addCleanup(autoreload.stop)
        return autoreload

    def text(self, target, name):
        with open(target.path(name)) as handle:
            return handle.read()

    def results_become(self, target, expected, timeout=10):
        wait_for(lambda: target.call("views.results()") == expected, timeout, "views.results() == %s" % expected)


class SavePatternsTest(AutoreloadTestCase):
    """Each way editors save a file reaches the live process exactly as written."""

    def check_pattern(self, save):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        path = target.path("views.py")
        save(path, self.text(target, "views.py").replace("return 1", "return 2"))
        self.results_become(target, "2")
        save(path, self.text(target, "views.py").replace("return 2", "x = 3\n    return x"))
        self.results_become(target, "3")
        self.assertEqual(target.call("views.other()"), "'o'")
        self.assertEqual(autoreload.of("error") + autoreload.of("syntax_error"), [])
        self.assertEqual(autoreload.of("not_imported"), [], "editor scratch files are not reported")

    def test_in_place_write(self):
        self.check_pattern(write_in_place)

    def test_atomic_rename(self):
        self.check_pattern(write_atomic)

    def test_backup_then_write(self):
        self.check_pattern(write_backup_then_new)

    def test_delete_then_create(self):
        self.check_pattern(write_delete_then_create)


class AutoreloadTest(AutoreloadTestCase):

    def test_syntax_error_then_fix_applies_everything_since_the_last_good_state(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        original = self.text(target, "views.py")
        write_in_place(target.path("views.py"), original.replace("return 1", "return 5").replace(
            'return "o"', 'return "p"'))
        wait_for(lambda: target.call("views.other()") == "'p'", 10, "first good save")
        broken = original.replace("return 1", "return 6").replace("def other():", "def other(:")
        write_in_place(target.path("views.py"), broken)
        event = autoreload.wait_event(lambda e: e["event"] == "syntax_error", what="the syntax error")
        self.assertEqual(event["line"], 8)
        self.assertTrue(event["file"].endswith("views.py"))
        self.assertEqual(target.call("views.results()"), "5", "nothing of a broken save is applied")
        # The fix only repairs `other`; `results` changed in the broken save and must arrive now.
        write_in_place(target.path("views.py"), original.replace("return 1", "return 6").replace(
            'return "o"', 'return "q"'))
        wait_for(lambda: target.call("views.other()") == "'q'", 10, "the fix")
        self.assertEqual(target.call("views.results()"), "6")

    def test_restart_verdict_applies_nothing_and_watching_goes_on(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        original = self.text(target, "views.py")
        # A first save gives pyhot a live state to compare class shapes with.
        write_in_place(target.path("views.py"), original.replace("return 1", "return 6"))
        self.results_become(target, "6")
        write_in_place(target.path("views.py"), original.replace("class Cart:", "class Cart(dict):").replace(
            "return 1", "return 7"))
        event = autoreload.wait_event(lambda e: e["event"] == "refused", what="the restart verdict")
        self.assertEqual(event["refused"][0]["qualname"], "Cart")
        self.assertTrue(event["refused"][0]["reason"])
        self.assertEqual(target.call("views.results()"), "6")
        write_in_place(target.path("views.py"), original.replace("return 1", "return 8"))
        self.results_become(target, "8")

    def test_burst_of_fifty_saves_leaves_the_last_one_live(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        original = self.text(target, "views.py")
        for i in range(1, 51):
            write_in_place(target.path("views.py"), original.replace("return 1", "return %d" % (100 + i)))
        self.results_become(target, "150")
        # Everything has settled once the last save is live; the burst was not 50 reloads.
        applied = autoreload.of("applied")
        self.assertLess(len(applied), 50)
        self.assertEqual(autoreload.of("error") + autoreload.of("syntax_error"), [])

    def test_truncate_then_write_never_deletes_every_definition(self):
        # A tool that empties the file (open + close) and writes it 50 ms
        # later: the empty file settles first. Issue 9, item 9.
        self.check_truncate_then_write(prepared=True)

    def test_truncate_then_write_never_deletes_every_definition_attached(self):
        # Attached: the agent holds no text of the module, only its live code.
        self.check_truncate_then_write(prepared=False)

    def sample_definitions(self, target):
        """Asks the target, over and over until the event is set, whether
        views still has results and Cart: (answers, the event, the thread)."""
        samples = []
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                samples.append(target.call("hasattr(views, 'results') and hasattr(views, 'Cart')"))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        self.addCleanup(sampler.join, 10)
        self.addCleanup(sampling.set)
        return samples, sampling, sampler

    def check_truncate_then_write(self, prepared):
        target = self.start(VIEWS, ["views"], prepared=prepared)
        autoreload = self.watch(target)
        original = self.text(target, "views.py")
        samples, sampling, sampler = self.sample_definitions(target)
        for i in range(1, 11):
            open(target.path("views.py"), "w").close()
            time.sleep(0.05)  # the tool's own delay between its two steps: the fault being reproduced
            write_in_place(target.path("views.py"), original.replace("return 1", "return %d" % (100 + i)))
            self.results_become(target, str(100 + i))
        sampling.set()
        sampler.join(10)
        changes = [c for e in autoreload.of("applied") for c in e["changes"] if c["status"] == "applied"]
        self.assertEqual([c["qualname"] for c in changes if c["verdict"] == "delete"], [])
        # Taking the empty file for what is live would make the next save
        # define every function anew: new objects, old references stale.
        self.assertEqual([c["qualname"] for c in changes if c["verdict"] == "define"], [])
        self.assertNotIn("False", samples, "a definition went missing from the live module")
        self.assertTrue(samples)
        # An empty file written again 50 ms later is not even reported now
        # (a save that deletes definitions waits for the file to be left
        # alone); one left empty is refused, and said.
        open(target.path("views.py"), "w").close()
        refusals = wait_for(lambda: autoreload.of("would_delete_all"), 15, "the empty file to be reported")
        self.assertEqual(refusals[0]["module"], "views")
        self.assertEqual(target.call("hasattr(views, 'results') and hasattr(views, 'Cart')"), "True")

    def test_a_file_written_in_two_steps_never_deletes_what_the_second_brings(self):
        # A tool writes the first part (whole definitions, so it parses),
        # closes the file, and appends the rest 50 ms later: autoreload
        # deleted Cart, then defined it anew (new objects, old references
        # stale), and Cart was missing from the live module meanwhile.
        for prepared in (True, False):
            with self.subTest(prepared=prepared):
                self.check_two_step_write(prepared)

    def check_two_step_write(self, prepared):
        target = self.start(VIEWS, ["views"], prepared=prepared)
        autoreload = self.watch(target)
        original = self.text(target, "views.py")
        cut = original.index("class Cart:")
        samples, sampling, sampler = self.sample_definitions(target)
        for i in range(1, 6):
            edited = original.replace("return 1", "return %d" % (100 + i))
            write_in_place(target.path("views.py"), edited[:cut])
            time.sleep(0.05)  # the tool's own delay between its two steps
            with open(target.path("views.py"), "a") as handle:
                handle.write(edited[cut:])
            self.results_become(target, str(100 + i))
        sampling.set()
        sampler.join(10)
        changes = [c for e in autoreload.of("applied") for c in e["changes"] if c["status"] == "applied"]
        self.assertEqual([c["qualname"] for c in changes if c["verdict"] in ("delete", "define")], [])
        self.assertNotIn("False", samples, "a definition went missing from the live module")
        self.assertTrue(samples)

    def test_allow_empty_applies_a_file_without_definitions(self):
        target = self.start(VIEWS, ["views"])
        refused = pyhot("autoreload", "--once", target.pid, target.path("views.py"), timeout=30)
        self.assertEqual(refused.returncode, 0, refused.stdout + refused.stderr)
        write_in_place(target.path("views.py"), "import json\n")
        refused = pyhot("autoreload", "--once", target.pid, target.path("views.py"), timeout=30)
        self.assertEqual(refused.returncode, 1)
        lines = refused.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, refused.stdout)
        self.assertIn("would delete every definition of views", lines[0])
        self.assertIn("--allow-empty", lines[0])
        self.assertEqual(target.call("views.results()"), "1", "nothing was applied")
        allowed = pyhot("autoreload", "--once", "--allow-empty", "--json", target.pid, target.path("views.py"),
                        timeout=30)
        self.assertEqual(allowed.returncode, 0, allowed.stdout + allowed.stderr)
        self.assertEqual(target.call("hasattr(views, 'results')"), "False")

    def test_missing_path_with_once_is_a_usage_error(self):
        target = self.start(VIEWS, ["views"])
        done = pyhot("autoreload", target.pid, "/nonexistent", "--once", timeout=30)
        self.assertEqual(done.returncode, 2, done.stdout + done.stderr)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn("/nonexistent", done.stderr)
        self.assertEqual(done.stdout, "")

    def test_human_output_names_time_file_qualname_and_verdict(self):
        target = self.start(VIEWS, ["views"])
        process = self.spawn([PYHOT, "autoreload", str(target.pid)], cwd=target.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()

        def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(10)
        self.addCleanup(stop)
        wait_for(lambda: any("watching" in line for line in lines), 10, "the banner")
        original = self.text(target, "views.py")
        # The first save of a file is compared with the live code objects; the
        # second is diffed against the first, which also gives line shifts.
        target.edit("views.py", '"total"', '"sum"')
        wait_for(lambda: any("swapped views.Cart.total" in line for line in lines), 10, "the first save")
        write_in_place(target.path("views.py"), original.replace(
            "return 1", "a = 1\n    b = 2\n    c = 3\n    return a + b + c").replace(
            "def other():", "def helper():\n    return 0\n\n\ndef other():"))
        wait_for(lambda: any("defined views.helper" in line for line in lines), 10, "the report")
        stop()
        reader.join(2)
        text = "".join(lines)
        self.assertRegex(text, r"\d\d:\d\d:\d\d views\.py swapped views\.results \(\+3 lines\)")
        self.assertRegex(text, r"\d\d:\d\d:\d\d views\.py relocated \d+ definition")
        self.assertNotIn("\033[", text, "no colour when stdout is not a terminal")
        self.assertEqual(process.returncode, 0)

    def test_new_file_imported_after_the_watch_started(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target, target.dir)
        os.makedirs(target.path("pkg"))
        target.write("pkg/__init__.py", "")
        target.write("pkg/late.py", '''
            def value():
                return "before"
        ''')
        target.call("__import__('importlib').invalidate_caches()")
        target.call("__import__('importlib').import_module('pkg.late') and None")
        target.edit("pkg/late.py", '"before"', '"after"')
        wait_for(lambda: target.call("__import__('sys').modules['pkg.late'].value()") == "'after'", 10,
                 "the new module's change to be live")
        event = autoreload.wait_event(lambda e: e["event"] == "applied" and e["module"] == "pkg.late")
        self.assertEqual([c["qualname"] for c in event["changes"]], ["value"])

    def test_module_imported_later_in_a_new_directory_is_watched_by_default(self):
        target = self.start(VIEWS, ["views"])
        os.makedirs(target.path("extra"))
        target.write("extra/plugin.py", '''
            def value():
                return 1
        ''')
        autoreload = self.watch(target)
        target.call("__import__('sys').path.append(%r)" % target.path("extra"))
        target.call("__import__('plugin') and None")
        autoreload.wait_event(lambda e: e["event"] == "watching" and any(
            f["module"] == "plugin" for f in e.get("files", [])), what="the new module to be watched")
        target.edit("extra/plugin.py", "return 1", "return 2")
        wait_for(lambda: target.call("__import__('plugin').value()") == "2", 10, "the plugin change")

    def test_file_not_imported_is_reported_once_and_skipped(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        target.write("notes.py", "x = 1\n")
        autoreload.wait_event(lambda e: e["event"] == "not_imported", what="the report")
        target.write("notes.py", "x = 2\n")
        # A later save of a watched file proves the second notes.py save has been seen too.
        target.edit("views.py", "return 1", "return 2")
        self.results_become(target, "2")
        autoreload.wait_event(lambda e: e["event"] == "applied")
        self.assertEqual(len(autoreload.of("not_imported")), 1)

    def test_deleted_file_is_reported_and_the_live_code_stays(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        os.remove(target.path("views.py"))
        event = autoreload.wait_event(lambda e: e["event"] == "deleted", what="the deletion")
        self.assertEqual(event["module"], "views")
        self.assertEqual(target.call("views.results()"), "1")
        # Brought back later with a change: applied against what is live.
        target.write("views.py", textwrap.dedent(VIEWS["views.py"]).replace("return 1", "return 4"))
        self.results_become(target, "4")

    def test_once_applies_pending_changes_and_exits(self):
        target = self.start(VIEWS, ["views"])
        target.edit("views.py", "return 1", "return 9")
        done = pyhot("autoreload", "--once", "--json", target.pid, check=0, timeout=30)
        self.assertEqual(target.call("views.results()"), "9")
        events = [json.loads(line) for line in done.stdout.splitlines()]
        applied = [e for e in events if e["event"] == "applied" and e["module"] == "views"]
        self.assertEqual([c["qualname"] for e in applied for c in e["changes"] if c["status"] == "applied"],
                         ["results"])
        again = pyhot("autoreload", "--once", "--json", target.pid, check=0, timeout=30)
        self.assertNotIn('"applied"', again.stdout, "nothing is pending any more")
        target.edit("views.py", "return 9", "return (")
        broken = pyhot("autoreload", "--once", target.pid, target.path("views.py"), timeout=30)
        self.assertEqual(broken.returncode, 1)
        self.assertIn("syntax error", broken.stdout)

    def test_bad_input_is_one_line_and_exit_one(self):
        target = self.start(VIEWS, ["views"])
        missing = pyhot("autoreload", target.pid, target.path("nope.py"), timeout=30)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("nope.py", missing.stderr)
        self.assertEqual(len(missing.stderr.strip().splitlines()), 1, missing.stderr)
        dead = pyhot("autoreload", "999999999", timeout=30)
        self.assertEqual(dead.returncode, 1)
        self.assertEqual(len(dead.stderr.strip().splitlines()), 1, dead.stderr)

    def test_target_exit_ends_autoreload_with_status_zero(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        try:
            target.call("__import__('os')._exit(0)")
        except Exception:
            pass  # the connection dies with the process
        autoreload.wait_event(lambda e: e["event"] == "target_exited", what="the exit to be noticed")
        self.assertEqual(autoreload.process.wait(10), 0)

    def test_interrupt_stops_watching_and_the_target_keeps_what_was_applied(self):
        target = self.start(VIEWS, ["views"])
        autoreload = self.watch(target)
        target.edit("views.py", "return 1", "return 2")
        self.results_become(target, "2")
        self.assertEqual(autoreload.stop(), 0)
        self.assertEqual(target.call("views.results()"), "2")
        self.assertEqual(pyhot("history", target.pid).returncode, 0, "the agent serves others afterwards")


APP = '''
import os, signal, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import views
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out.txt")
while True:
    with open(out + ".tmp", "w") as handle:
        handle.write(repr(views.results()))
    os.replace(out + ".tmp", out)
    if os.path.exists(out + ".stop"):
        sys.exit(3)
    time.sleep(0.01)
'''


class RunAutoreloadTest(AutoreloadTestCase):

    def start_run(self):
        directory = self.start(VIEWS, ["views"]).dir  # a scratch directory with views.py
        with open(os.path.join(directory, "app.py"), "w") as handle:
            handle.write(APP)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        process = self.spawn([PYHOT, "run", "--autoreload", "--", self.python, "app.py"], cwd=directory,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()

        def stop():
            # SIGTERM reaches the program through pyhot, as it would from a
            # user; then the group is killed (self.spawn's cleanup).
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        self.addCleanup(stop)
        return directory, process, lines

    def read_out(self, directory):
        try:
            with open(os.path.join(directory, "out.txt")) as handle:
                return handle.read()
        except OSError:
            return None

    def test_run_autoreload_applies_saves_and_exits_with_the_program(self):
        directory, process, lines = self.start_run()
        wait_for(lambda: self.read_out(directory) == "1", 20, "the program to run")
        wait_for(lambda: any("views.py" in line for line in lines), 10, "views.py to be watched")
        write_atomic(os.path.join(directory, "views.py"),
                     textwrap.dedent(VIEWS["views.py"]).lstrip("\n").replace("return 1", "return 2"))
        wait_for(lambda: self.read_out(directory) == "2", 10, "the save to be live")
        open(os.path.join(directory, "out.txt.stop"), "w").close()
        self.assertEqual(process.wait(10), 3, "pyhot exits with the program's status")
        self.assertTrue(any("exited" in line for line in lines), lines)

    def test_sigterm_is_passed_on_to_the_program(self):
        directory, process, lines = self.start_run()
        wait_for(lambda: self.read_out(directory) == "1", 20, "the program to run")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(10), 128 + signal.SIGTERM)


def _register():
    """Save patterns on every interpreter; the rest on Debian's python3 and the
    oldest pyenv build."""
    found = interpreters()
    heavy = [item for item in found if item[0] == "debian-python3"]
    pyenv = [item for item in found if item[0] != "debian-python3"]
    heavy += pyenv[:1]
    for base, chosen in ((SavePatternsTest, found), (AutoreloadTest, heavy), (RunAutoreloadTest, heavy)):
        for label, path in chosen:
            name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
            globals()[name] = type(name, (base,), {"python": path, "python_label": label})


_register()
del SavePatternsTest, AutoreloadTest, RunAutoreloadTest, AutoreloadTestCase

if __name__ == "__main__":
    unittest.main()
