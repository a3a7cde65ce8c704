"""Shared pieces of the integration tests: find interpreters, start real
target processes, run the real pyhot binary, poll with deadlines.

Every process a test starts goes through spawn(): it gets its own process
group (session), which kill_group() kills whole - forked workers and `pyhot
run` children included - in the test's cleanup, pass or fail, and which an
atexit/SIGTERM sweep kills if a cleanup never ran. Started processes never
write to the test runner's stdout/stderr (CTest waits for that pipe to close)."""
import atexit
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build"))
PYHOT = os.path.join(BUILD, "pyhot")
SUPPORTED = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]


def interpreters():
    """(label, path) for Debian's python3 and every pyenv build 3.8+ found.
    A missing version is reported, never a failure."""
    found = []
    if os.path.exists("/usr/bin/python3"):
        found.append(("debian-python3", "/usr/bin/python3"))
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for version in SUPPORTED:
        paths = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)))
        if paths:
            found.append(("python" + version, paths[-1]))
        else:
            sys.stderr.write("note: no Python %s found; its tests are skipped\n" % version)
    only = os.environ.get("PYHOT_TEST_PYTHONS")
    if only:
        wanted = only.split(",")
        found = [item for item in found if item[0] in wanted]
    return found


def for_each_interpreter(base, module_globals):
    """Makes one TestCase subclass of `base` per interpreter."""
    for label, path in interpreters():
        name = "%s_%s" % (base.__name__, label.replace(".", "_").replace("-", "_"))
        module_globals[name] = type(name, (base,), {"python": path, "python_label": label})


# Process groups started by this test process, by leader pid; the sweep
# below kills what is left of them when the tests end, however they end.
_GROUPS = set()


def spawn(command, **options):
    """subprocess.Popen in a new session (so in its own process group), with
    stdin, stdout and stderr on /dev/null unless given. Pair it with
    addCleanup(kill_group, process) at once."""
    for stream in ("stdin", "stdout", "stderr"):
        options.setdefault(stream, subprocess.DEVNULL)
    process = subprocess.Popen(command, start_new_session=True, **options)
    _GROUPS.add(process.pid)
    return process


def kill_group(process):
    """Kills process's whole group (its forks too, even after the leader
    exited) and reaps the leader."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        pass
    _GROUPS.discard(process.pid)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _sweep():
    for group in list(_GROUPS):
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _GROUPS.clear()


def _sweep_and_die(signum, frame):
    _sweep()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_sweep)
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _sweep_and_die)


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def pyhot(*args, check=None, timeout=60, cwd=None):
    """Runs the real pyhot binary; returns CompletedProcess (text)."""
    done = subprocess.run([PYHOT] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, stdin=subprocess.DEVNULL)
    if check is not None and done.returncode != check:
        raise AssertionError("pyhot %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, args)), done.returncode, check, done.stdout, done.stderr))
    return done


# A target program for tests: imports the app modules in its directory and
# serves GET /eval?e=<expression> on loopback, evaluated in a namespace that
# holds them; it prints its port when ready.
TARGET_MAIN = r'''
import http.server, importlib, os, sys, threading, traceback, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
namespace = {}
for name in os.environ.get("TARGET_MODULES", "").split(","):
    if name:
        namespace[name.split(".")[-1]] = importlib.import_module(name)
        namespace[name.replace(".", "_")] = namespace[name.split(".")[-1]]
if os.environ.get("TARGET_SETUP"):
    exec(os.environ["TARGET_SETUP"], namespace)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        import urllib.parse
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        try:
            value = {"ok": True, "value": repr(eval(query["e"][0], namespace))}
        except BaseException as error:
            value = {"ok": False, "error": "%s: %s" % (type(error).__name__, error),
                     "traceback": traceback.format_exc()}
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
'''


class Target:
    """A real Python process running TARGET_MAIN over the given modules."""

    def __init__(self, python, files, modules, setup="", prepared=True):
        self.dir = tempfile.mkdtemp(prefix="pyhot-test-")
        for name, text in files.items():
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(textwrap.dedent(text).lstrip("\n"))
        with open(os.path.join(self.dir, "target_main.py"), "w") as handle:
            handle.write(TARGET_MAIN)
        env = dict(os.environ)
        env["TARGET_MODULES"] = ",".join(modules)
        env["TARGET_SETUP"] = textwrap.dedent(setup)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = [python, "target_main.py"]
        if prepared:
            command = [PYHOT, "run", "--"] + command
        self.log_path = os.path.join(self.dir, "target.log")
        self.log = open(self.log_path, "w")
        self.process = spawn(command, cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        try:
            self._wait_ready(prepared)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, prepared):
        self.port = wait_for(self._port, 20, "the target to listen")
        if prepared:
            wait_for(lambda: pyhot("history", self.pid).returncode == 0, 10, "the agent")

    def _port(self):
        if self.process.poll() is not None:
            raise AssertionError("target exited early:\n" + self.output())
        # Only a whole line counts: the log may be read while it is written.
        for line in self.output().splitlines(True):
            if line.startswith("port ") and line.endswith("\n"):
                return int(line.split()[1])
        return None

    def output(self):
        with open(self.log_path) as handle:
            return handle.read()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as handle:
            handle.write(textwrap.dedent(text).lstrip("\n"))

    def edit(self, name, old, new):
        with open(self.path(name)) as handle:
            text = handle.read()
        assert old in text, "%r not in %s" % (old, name)
        with open(self.path(name), "w") as handle:
            handle.write(text.replace(old, new, 1))

    def call(self, expression):
        url = "http://127.0.0.1:%d/eval?e=%s" % (self.port, urllib.parse.quote(expression))
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
        if not answer["ok"]:
            raise AssertionError("target raised %s\n%s" % (answer["error"], answer.get("traceback", "")))
        return answer["value"]

    def call_error(self, expression):
        url = "http://127.0.0.1:%d/eval?e=%s" % (self.port, urllib.parse.quote(expression))
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        kill_group(self.process)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class TargetTestCase(unittest.TestCase):
    python = None
    python_label = None

    def start(self, files, modules, setup="", prepared=True):
        target = Target(self.python, files, modules, setup, prepared)  # stops itself if it never gets ready
        self.addCleanup(target.stop)
        return target

    def spawn(self, command, **options):
        """spawn() whose process group is killed when the test ends."""
        process = spawn(command, **options)
        self.addCleanup(kill_group, process)
        return process
