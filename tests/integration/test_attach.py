"""Injecting a bootstrap into real, unprepared Python processes.

Run from the repository root:  /usr/bin/python3 -m unittest tests/integration/test_attach.py
Needs pyhot_inject_probe, found under $PYHOT_BUILD_DIR (default: build).
Every interpreter found is tried (harness.interpreters: PYHOT_TEST_PYTHONS
chooses among them); each
target is a small program in a state that matters for injection, and we check
what its user would notice: the bootstrap ran exactly once, the program's
output, timing and exit code did not change, no thread was left stopped.
"""

import glob
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PYHOT_BUILD_DIR", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
PROBE = os.path.join(BUILD, "loader", "attach", "pyhot_inject_probe")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import interpreters, kill_group, spawn, wait_for  # noqa: E402
REPEAT = int(os.environ.get("PYHOT_ATTACH_REPEAT", "20"))


def deadline_poll(predicate, timeout, interval=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# Target programs. Each prints "ready" (and sometimes a port) once it is in
# the state under test, then its own result; exit code 0.
SLEEP = """
import time
print('ready', flush=True)
t = time.monotonic(); time.sleep(5); print('slept %.2f' % (time.monotonic() - t))
"""

SELECT = """
import os, select, time
r, w = os.pipe()
print('ready', flush=True)
t = time.monotonic(); select.select([r], [], [], 3); print('selected %.2f' % (time.monotonic() - t))
"""

ACCEPT = """
import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
print('ready', s.getsockname()[1], flush=True)
c, _ = s.accept(); print('accepted', c.recv(5).decode())
"""

READ = """
import sys
print('ready', flush=True)
print('read', sys.stdin.buffer.read(3).decode())
"""

EVENT = """
import threading, time
print('ready', flush=True)
t = time.monotonic(); threading.Event().wait(3); print('waited %.2f' % (time.monotonic() - t))
"""

JOIN = """
import threading, time
th = threading.Thread(target=time.sleep, args=(3,)); th.start()
print('ready', flush=True)
t = time.monotonic(); th.join(); print('joined %.2f' % (time.monotonic() - t))
"""

BUSY = """
import os, sys, time
marker = sys.argv[1]
print('ready', flush=True)
n = 0; end = time.monotonic() + 10
while time.monotonic() < end:
    n += 1
    if n % 10000 == 0 and os.path.exists(marker):
        break
print('busy', n > 0)
"""

CONTENDED = """
import os, sys, threading, time
marker = sys.argv[1]
stop = False
def spin():
    x = 0
    while not stop:
        x += 1
threads = [threading.Thread(target=spin) for _ in range(4)]
for th in threads: th.start()
print('ready', flush=True)
n = 0; end = time.monotonic() + 10
while time.monotonic() < end:
    n += 1
    if n % 1000 == 0 and os.path.exists(marker):
        break
stop = True
for th in threads: th.join()
print('contended done')
"""

ASYNCIO = """
import asyncio, time
async def main():
    print('ready', flush=True)
    t = time.monotonic()
    await asyncio.gather(asyncio.sleep(3), asyncio.sleep(2))
    print('gathered %.2f' % (time.monotonic() - t))
asyncio.run(main())
"""

HTTP = """
import http.server, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()
        self.wfile.write(b'ok')
        if self.path == '/quit':
            threading.Thread(target=self.server.shutdown).start()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
server.daemon_threads = True
print('ready', server.server_address[1], flush=True)
server.serve_forever()
print('served')
"""


@unittest.skipUnless(os.path.exists(PROBE), "build pyhot_inject_probe first (%s)" % PROBE)
class AttachTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyhot_attach_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers -----------------------------------------------------------

    def start(self, python, source, *args, stdin=subprocess.DEVNULL, blocks=True):
        """Starts a target and waits until it printed "ready" and, when it
        blocks, until its main thread sleeps in that blocking call."""
        script = os.path.join(self.tmp, "target.py")
        with open(script, "w") as f:
            f.write(source)
        proc = spawn([python, script] + list(args), stdin=stdin, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.reap, proc)
        # The target prints one whole line and flushes it: readable means the line is there.
        readable, _, _ = select.select([proc.stdout], [], [], 20)
        self.assertTrue(readable, "no ready line from the target within 20 s")
        ready = proc.stdout.readline().split()
        self.assertEqual(ready[:1], ["ready"], proc.stderr.read() if not ready else ready)
        if blocks:
            wait_for(lambda: self.main_thread_sleeps(proc.pid), 10, "the target to block")
        return proc, ready[1:]

    @staticmethod
    def main_thread_sleeps(pid):
        # After "ready" the main thread's next sleep is the call under test;
        # seen twice 20 ms apart, so a moment's wait for the GIL does not count.
        for attempt in range(2):
            try:
                with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "S":
                        return False
            except OSError:
                return False
            if attempt == 0:
                time.sleep(0.02)
        return True

    @staticmethod
    def reap(proc):
        kill_group(proc)
        proc.communicate()

    def marker(self, name="marker"):
        path = os.path.join(self.tmp, name)
        if os.path.exists(path):
            os.remove(path)  # left by a failed subtest: each subtest counts its own runs
        bootstrap = ("with open(%r, 'a') as _pyhot_test_f: _pyhot_test_f.write('ran\\n')" % path)
        return path, bootstrap

    def inject(self, pid, bootstrap, wait_file, *flags):
        started = time.monotonic()
        result = subprocess.run([PROBE, "--wait-file", wait_file] + list(flags) + [str(pid), bootstrap],
                                capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_no_thread_stopped(pid)
        return result.stdout, elapsed

    def assert_no_thread_stopped(self, pid):
        for stat in glob.glob("/proc/%d/task/*/stat" % pid):
            try:
                with open(stat) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            self.assertNotIn(state, ("T", "t"), "thread %s left stopped" % stat)
        with open("/proc/%d/status" % pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())

    def finish(self, proc, marker, timeout=20):
        out, err = proc.communicate(timeout=timeout)
        self.assertEqual(proc.returncode, 0, err)
        self.assertNotIn("SystemError", err)
        self.assertEqual(err, "")
        with open(marker) as f:
            self.assertEqual(f.read(), "ran\n", "the bootstrap must run exactly once")
        return out

    # --- target states -----------------------------------------------------

    def test_sleeping_target_keeps_its_timing(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, SLEEP)
                self.inject(proc.pid, bootstrap, marker)
                out = self.finish(proc, marker)
                slept = float(out.split()[1])
                self.assertGreaterEqual(slept, 4.95, out)
                self.assertLess(slept, 5.3, out)
                os.remove(marker)

    def test_select_target(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, SELECT)
                self.inject(proc.pid, bootstrap, marker)
                out = self.finish(proc, marker)
                self.assertGreaterEqual(float(out.split()[1]), 2.95, out)
                self.assertLess(float(out.split()[1]), 3.3, out)
                os.remove(marker)

    def test_accept_target(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, rest = self.start(python, ACCEPT)
                self.inject(proc.pid, bootstrap, marker)
                with socket.create_connection(("127.0.0.1", int(rest[0]))) as c:
                    c.sendall(b"hello")
                    self.assertEqual(self.finish(proc, marker), "accepted hello\n")
                os.remove(marker)

    def test_read_target(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, READ, stdin=subprocess.PIPE)
                self.inject(proc.pid, bootstrap, marker)
                proc.stdin.write("abc")
                proc.stdin.close()
                proc.stdin = None
                self.assertEqual(self.finish(proc, marker), "read abc\n")
                os.remove(marker)

    def test_event_wait_and_join_targets(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                for source, word in ((EVENT, "waited"), (JOIN, "joined")):
                    marker, bootstrap = self.marker()
                    proc, _ = self.start(python, source)
                    _, elapsed = self.inject(proc.pid, bootstrap, marker)
                    self.assertLess(elapsed, 2.0, "the futex nudge should make it run at once")
                    out = self.finish(proc, marker)
                    self.assertEqual(out.split()[0], word)
                    self.assertGreaterEqual(float(out.split()[1]), 2.95, out)
                    self.assertLess(float(out.split()[1]), 3.3, out)
                    os.remove(marker)

    def test_cpu_bound_target(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, BUSY, marker, blocks=False)
                out_probe, elapsed = self.inject(proc.pid, bootstrap, marker)
                self.assertIn("method=pending-call", out_probe)
                self.assertLess(elapsed, 1.0)
                self.assertEqual(self.finish(proc, marker), "busy True\n")
                os.remove(marker)

    def test_gil_contention_repeatedly(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                for round_ in range(REPEAT):
                    marker, bootstrap = self.marker("marker%d" % round_)
                    proc, _ = self.start(python, CONTENDED, marker, blocks=False)
                    self.inject(proc.pid, bootstrap, marker)
                    self.assertEqual(self.finish(proc, marker), "contended done\n", "round %d" % round_)
                    os.remove(marker)

    def test_asyncio_target(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, ASYNCIO)
                self.inject(proc.pid, bootstrap, marker)
                out = self.finish(proc, marker)
                self.assertEqual(out.split()[0], "gathered")
                self.assertGreaterEqual(float(out.split()[1]), 2.95, out)
                self.assertLess(float(out.split()[1]), 3.3, out)
                os.remove(marker)

    def test_http_server_under_load_loses_no_request(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, rest = self.start(python, HTTP)
                url = "http://127.0.0.1:%s/" % rest[0]
                failures, served, stop = [], [0], threading.Event()

                def load():
                    while not stop.is_set():
                        try:
                            with urllib.request.urlopen(url, timeout=5) as r:
                                if r.read() != b"ok":
                                    failures.append("bad body")
                            served[0] += 1
                        except Exception as e:  # every failure is a lost request
                            failures.append(repr(e))

                clients = [threading.Thread(target=load) for _ in range(4)]
                for c in clients:
                    c.start()
                try:
                    # Injected while requests are being served, and served on after it.
                    wait_for(lambda: served[0] >= 10 or failures, 10, "requests before the injection")
                    self.inject(proc.pid, bootstrap, marker)
                    after = served[0]
                    wait_for(lambda: served[0] >= after + 10 or failures, 10, "requests after the injection")
                finally:
                    stop.set()
                for c in clients:
                    c.join()
                urllib.request.urlopen(url + "quit", timeout=5).read()
                self.assertEqual(self.finish(proc, marker), "served\n")
                self.assertEqual(failures, [])
                self.assertGreater(served[0], 10)
                os.remove(marker)

    def test_two_injectors_at_once_run_it_once(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, _ = self.marker()
                # Two pyhots run two injections; the bootstrap's own guard
                # (like the agent's) makes the second a no-op.
                bootstrap = ("(lambda t: __import__('sys').__dict__.setdefault('_pyhot_test_once', t) is t"
                             " and open(%r, 'a').write('ran\\n'))(object())" % marker)
                proc, _ = self.start(python, SLEEP)
                probes = [spawn([PROBE, "--wait-file", marker, str(proc.pid), bootstrap],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                          for _ in range(2)]
                for p in probes:
                    self.addCleanup(kill_group, p)
                for p in probes:
                    out, err = p.communicate(timeout=30)
                    self.assertEqual(p.returncode, 0, err)
                self.assert_no_thread_stopped(proc.pid)
                self.finish(proc, marker)
                os.remove(marker)

    def test_signals_to_the_injector_leave_the_target_running(self):
        # Ctrl-C, kill, a closed terminal at any moment of an injection: the
        # target goes on. Every interpreter (about 6 s each: the target's sleep).
        for name, python in interpreters():
            with self.subTest(python=name):
                marker, bootstrap = self.marker()
                proc, _ = self.start(python, SLEEP)
                for round_ in range(30):
                    probe = spawn([PROBE, str(proc.pid), bootstrap])
                    self.addCleanup(kill_group, probe)
                    # Not a synchronisation: each round signals at a later moment of the injection.
                    time.sleep(round_ * 0.0002)
                    # Every signal that ends a process and can be blocked (SIGKILL: test_attach_faults).
                    probe.send_signal((signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)[round_ % 4])
                    probe.wait(timeout=10)
                    kill_group(probe)
                    self.assert_no_thread_stopped(proc.pid)
                out, err = proc.communicate(timeout=20)
                self.assertEqual(proc.returncode, 0, err)
                self.assertEqual(err, "")
                slept = float(out.split()[1])
                self.assertGreaterEqual(slept, 4.95, out)
                self.assertLess(slept, 5.3, out)

    # --- refusals ----------------------------------------------------------

    def test_refuses_a_process_that_is_not_python(self):
        sleeper = spawn(["sleep", "30"])
        self.addCleanup(kill_group, sleeper)

        def loaded():
            with open("/proc/%d/maps" % sleeper.pid) as f:
                return "libc" in f.read()
        self.assertTrue(deadline_poll(loaded, 5))
        result = subprocess.run([PROBE, str(sleeper.pid), "pass"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("not a Python process", result.stderr)
        self.assertEqual(result.stderr.count("\n"), 1)

    def test_refuses_a_dead_pid(self):
        p = subprocess.Popen(["true"])
        p.wait(10)
        result = subprocess.run([PROBE, str(p.pid), "pass"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("no process", result.stderr)


PYHOT = os.path.join(BUILD, "pyhot")


@unittest.skipUnless(os.path.exists(PROBE) and os.path.exists(PYHOT), "build pyhot and pyhot_inject_probe first")
class PsAndAttachAgreeTest(unittest.TestCase):
    """`pyhot ps` and attaching decide "is this Python" the same way: by the
    runtime mapped into the process, not by the executable's name."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyhot_detect_")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def spawn(self, argv):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.addCleanup(AttachTest.reap, proc)
        return proc

    def copy(self, source, name):
        path = os.path.join(self.tmp, name)
        shutil.copy2(source, path)
        return path

    @staticmethod
    def mapped(pid, needle):
        def check():
            try:
                with open("/proc/%d/maps" % pid) as f:
                    return needle in f.read()
            except OSError:
                return False
        return check

    def listed_by_ps(self, pid):
        done = subprocess.run([PYHOT, "ps", "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        import json
        return [row for row in json.loads(done.stdout)["processes"] if row["pid"] == pid]

    def probe_inspect(self, pid):
        return subprocess.run([PROBE, "--inspect", str(pid)], capture_output=True, text=True, timeout=30)

    def test_renamed_interpreter_is_listed_and_attachable(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                service = self.copy(python, "billing-service-" + name)
                proc = self.spawn([service, "-c", "import time; print('ready', flush=True); time.sleep(60)"])
                self.assertEqual(proc.stdout.readline().strip(), "ready")
                rows = self.listed_by_ps(proc.pid)
                self.assertEqual(len(rows), 1, "ps must list a Python whose executable is not named python")
                inspected = self.probe_inspect(proc.pid)
                self.assertEqual(inspected.returncode, 0, inspected.stderr)
                self.assertIn("path=" + rows[0]["python"] + " ", inspected.stdout,
                              "ps and attach must name the same runtime file")
                history = subprocess.run([PYHOT, "history", str(proc.pid)], capture_output=True, text=True,
                                         timeout=60)
                self.assertEqual(history.returncode, 0, history.stdout + history.stderr)

    def test_program_named_python_is_neither_listed_nor_attached(self):
        impostor = self.copy("/bin/sleep", "python3")
        proc = self.spawn([impostor, "60"])
        self.assertTrue(deadline_poll(self.mapped(proc.pid, "libc"), 5))
        self.assertEqual(self.listed_by_ps(proc.pid), [], "a program named python is not Python")
        inspected = self.probe_inspect(proc.pid)
        self.assertEqual(inspected.returncode, 1)
        self.assertIn("not a Python process", inspected.stderr)
        history = subprocess.run([PYHOT, "history", str(proc.pid)], capture_output=True, text=True, timeout=60)
        self.assertEqual(history.returncode, 1)
        self.assertIn("is not a Python process", history.stdout + history.stderr)


if __name__ == "__main__":
    unittest.main()
