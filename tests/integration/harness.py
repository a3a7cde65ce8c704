"""Shared pieces of the integration tests: find interpreters, start real
target processes, run the real pyhot binary, poll with deadlines.

Every process a test starts goes through spawn(): it gets its own process
group (session), which kill_group() kills whole - forked workers and `pyhot
run` children included - in the test's cleanup, pass or fail, and which an
atexit/SIGTERM sweep kills if a cleanup never ran. Started processes never
write to the test runner's stdout/stderr (CTest waits for that pipe to close).

Interpreters: Debian's /usr/bin/python3 is labelled `debian-python3`, pyenv
builds `python3.8` ... `python3.14`; a version not installed is noted on
stderr and skipped. Choose some with a comma-separated list of labels:

    cd tests/integration
    PYHOT_BUILD_DIR=$PWD/../../build PYHOT_TEST_PYTHONS=debian-python3,python3.8 \
        python3 -m unittest -v test_reload

Targets: Target runs a program under `pyhot run` (or bare, prepared=False)
and is observed over HTTP; AgentTarget starts the agent itself, in a socket
directory of its own, for the agent's tests; both are driven through the real
binary (AgentTarget.reload records what the binary sends the agent)."""
import ast
import atexit
import glob
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PYHOT_BUILD_DIR", os.path.join(ROOT, "build"))
PYHOT = os.path.join(BUILD, "pyhot")
AGENT_DIR = os.path.join(ROOT, "loader", "agent")
AGENT_FILE = os.path.join(AGENT_DIR, "pyhot_agent.py")
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
        module_globals[name] = type(name, (base,), {"python": path, "python_label": label,
                                                    "__module__": module_globals.get("__name__", base.__module__)})


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
    exited), reaps the leader and closes its pipes (every writer is dead,
    so a reader still in a read gets end of file)."""
    if process.pid not in _GROUPS:
        return  # killed already: its pid may belong to someone else by now
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


def read_line(process, timeout=20.0):
    """The next line the process writes on its stdout pipe, waited for with a
    deadline: a target that hangs before it is ready fails the test instead
    of blocking it."""
    import select  # only the tests that read a ready line need it
    deadline = time.monotonic() + timeout
    stream = process.stdout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no line from process %d within %.0f s" % (process.pid, timeout))
        ready, _, _ = select.select([stream], [], [], remaining)
        if ready:
            return stream.readline()


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


def pyhot(*args, check=None, timeout=60, cwd=None, env=None):
    """Runs the real pyhot binary; returns CompletedProcess (text)."""
    done = subprocess.run([PYHOT] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    if check is not None and done.returncode != check:
        raise AssertionError("pyhot %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, args)), done.returncode, check, done.stdout, done.stderr))
    return done


# Pre-fork servers for the --tree tests (and bench/tree), standard library
# only. Both fork their workers from a master, as gunicorn, uWSGI and celery
# do; workers are forks in the master's process group, so kill_group ends
# them all, even those the test has not seen yet.
#
# PREFORK_SERVER: the master forks two workers; each publishes what its
# modules answer to out-<pid>.txt every 20 ms; children.txt lists the
# workers; SIGUSR1 forks one more. Environment: MODULES (comma-separated,
# default "work"), PRELOAD ("1", the default: the master imports them before
# the fork; "0": each worker imports them from disk after it, gunicorn
# without --preload).
PREFORK_SERVER = r"""
import importlib, os, signal, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
NAMES = os.environ.get("MODULES", "work").split(",")
if os.environ.get("PRELOAD", "1") == "1":
    for name in NAMES:
        importlib.import_module(name)

def publish(name, text):
    # Written whole and renamed: a reader never sees the file empty or half written.
    with open(name + ".tmp%d" % os.getpid(), "w") as handle:
        handle.write(text)
    os.replace(name + ".tmp%d" % os.getpid(), name)

def worker_loop():
    modules = [importlib.import_module(name) for name in NAMES]
    while True:
        publish("out-%d.txt" % os.getpid(), " ".join(str(module.answer()) for module in modules))
        time.sleep(0.02)

def spawn():
    pid = os.fork()
    if pid == 0:
        try:
            worker_loop()
        finally:
            os._exit(0)
    return pid

children = [spawn(), spawn()]
signal.signal(signal.SIGUSR1, lambda *a: children.append(spawn()))
while True:
    publish("children.txt", " ".join(map(str, children)))
    time.sleep(0.02)
"""

# RECYCLING_SERVER: workers accept on the master's socket, each answers
# "<pid> <work.answer()>" to MAX_REQUESTS connections and exits; the master
# forks a replacement for every worker that ends (gunicorn's
# --max-requests). It prints "port N" when it listens. Environment:
# MAX_REQUESTS, PRELOAD ("1": the master imports `work`; "0": each worker
# imports it after the fork), WORKERS (default 3), BOOT_SECONDS (default 0:
# how long a new worker takes before it imports `work` and serves).
RECYCLING_SERVER = r"""
import os, select, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if os.environ["PRELOAD"] == "1":
    import work
MAX_REQUESTS = int(os.environ["MAX_REQUESTS"])
BOOT_SECONDS = float(os.environ.get("BOOT_SECONDS", "0"))
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)

def serve():
    time.sleep(BOOT_SECONDS)  # a worker's own start-up before it imports the app (gunicorn's boot)
    import work  # without PRELOAD each worker imports it after the fork
    for _ in range(MAX_REQUESTS):
        connection, _ = listener.accept()
        with connection:
            connection.sendall(("%d %s\n" % (os.getpid(), work.answer())).encode())

def fork_worker():
    pid = os.fork()
    if pid == 0:
        try:
            serve()
        finally:
            os._exit(0)
    return pid

workers = {fork_worker() for _ in range(int(os.environ.get("WORKERS", "3")))}
print("port", listener.getsockname()[1], flush=True)
while True:
    select.select([], [], [], 0.02)
    while True:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        workers.discard(pid)
        workers.add(fork_worker())
"""


def write_whole(path, text):
    """Writes a file whole and renames it into place: a process importing it
    never sees it half written."""
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    return path


class PreforkServer:
    """A PREFORK_SERVER in `directory` (which holds its modules), started
    with spawn(): pair it with addCleanup(kill_group, server.process)."""

    def __init__(self, python, directory, modules="work", preload=True, launcher=()):
        """`launcher`: words put before `python server.py` (e.g. a command
        that starts it in namespaces of its own)."""
        self.dir = directory
        write_whole(os.path.join(directory, "server.py"), PREFORK_SERVER)
        self.log = open(os.path.join(directory, "server.log"), "w")
        env = dict(os.environ, MODULES=modules, PRELOAD="1" if preload else "0")
        self.process = spawn(list(launcher) + [python, "server.py"], cwd=directory, env=env, stdout=self.log,
                             stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def stop(self):
        kill_group(self.process)
        self.log.close()

    def children(self):
        try:
            with open(os.path.join(self.dir, "children.txt")) as handle:
                return [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            return []

    def answers(self, children=None):
        """What each worker answered last, by pid (None: nothing yet)."""
        values = {}
        for pid in self.children() if children is None else children:
            try:
                with open(os.path.join(self.dir, "out-%d.txt" % pid)) as handle:
                    values[pid] = handle.read()
            except OSError:
                values[pid] = None
        return values


class Load:
    """Clients asking a server without pause, as real traffic would: `ask`
    makes one request and returns (pid, answer), raising on a refused, reset
    or unanswered request, which counts as a failure."""

    def __init__(self, ask, clients=2, failures_are=(OSError,)):
        self.ask = ask
        self.failures = 0
        self.requests = 0
        self.errors = []
        self.failures_are = failures_are
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def run(self):
        while not self.stopped.is_set():
            try:
                self.ask()
                self.requests += 1
            except self.failures_are as error:
                self.failures += 1
                self.errors.append(repr(error))

    def stop(self):
        self.stopped.set()
        for thread in self.threads:
            thread.join(15)


def ask_line_server(port):
    """One request to a RECYCLING_SERVER: (pid, answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        data = b""
        while not data.endswith(b"\n"):
            chunk = connection.recv(100)
            if not chunk:
                raise ConnectionError("the server closed the connection without an answer")
            data += chunk
    pid, answer = data.decode().split()
    return int(pid), answer


def ask_http_server(port):
    """One GET / to an HTTP server answering "<pid> <answer>": (pid, answer);
    a status other than 200 raises."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise ConnectionError("status %d" % response.status)
    finally:
        connection.close()
    pid, answer = body.split()
    return int(pid), answer


# A WSGI app for gunicorn (Debian's package, for /usr/bin/python3): answers
# "<pid> <work.answer()>" like RECYCLING_SERVER.
GUNICORN_APP = r"""
import os
import work

def application(environ, start_response):
    body = ("%d %s\n" % (os.getpid(), work.answer())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def gunicorn_installed():
    done = subprocess.run(["/usr/bin/python3", "-c", "import gunicorn"], capture_output=True, timeout=30)
    return done.returncode == 0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


# ---------------------------------------------------------------------------
# Talking to the agent over its socket (loader/PROTOCOL.md), for the tests of
# the agent's own robustness; everything else goes through the pyhot binary.

class AgentError(Exception):
    def __init__(self, kind, message):
        Exception.__init__(self, "%s: %s" % (kind, message))
        self.kind = kind
        self.message = message


def encode_frame(message):
    body = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
    return struct.pack(">I", len(body)) + body


def _recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv_body(sock):
    """The next frame's body, or None when the peer closed."""
    header = _recv_exact(sock, 4)
    if header is None:
        return None
    return _recv_exact(sock, struct.unpack(">I", header)[0])


class AgentClient:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """The next reply as a dict, or None when the agent closed."""
        body = _recv_body(self.sock)
        return None if body is None else json.loads(body.decode("utf-8"))

    def request(self, op, **fields):
        request_id = self.next_id
        self.next_id += 1
        message = {"v": 1, "id": request_id, "op": op}
        message.update(fields)
        self.send_raw(encode_frame(message))
        reply = self.recv_frame()
        if reply is None:
            raise ConnectionError("agent closed the connection")
        if reply.get("id") != request_id or reply.get("v") != 1:
            raise AssertionError("reply does not match request %d: %r" % (request_id, reply))
        return reply

    def call(self, op, **fields):
        reply = self.request(op, **fields)
        if not reply["ok"]:
            raise AgentError(reply["error"]["kind"], reply["error"]["message"])
        return reply


# The relay a Recorder runs inside the target: pyhot checks that the peer of
# the socket it connects to is the target process (SO_PEERCRED), so the relay
# must be the target itself. Each (request, reply) becomes one JSON line.
RELAY = r"""
import json as _json, os as _os, socket as _socket, struct as _struct, threading as _threading

def _pyhot_test_relay(directory, agent_path):
    def receive(sock):
        header = b''
        while len(header) < 4:
            chunk = sock.recv(4 - len(header))
            if not chunk:
                return None
            header += chunk
        size = _struct.unpack('>I', header)[0]
        body = b''
        while len(body) < size:
            chunk = sock.recv(min(65536, size - len(body)))
            if not chunk:
                return None
            body += chunk
        return body

    def relay(client):
        agent = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            agent.connect(agent_path)
            while True:
                request = receive(client)
                if request is None:
                    return
                agent.sendall(_struct.pack('>I', len(request)) + request)
                reply = receive(agent)
                if reply is None:
                    return
                line = _json.dumps([_json.loads(request.decode('utf-8')), _json.loads(reply.decode('utf-8'))])
                with open(_os.path.join(directory, 'exchanges.jsonl'), 'a') as log:
                    log.write(line + '\n')
                client.sendall(_struct.pack('>I', len(reply)) + reply)
        except OSError:
            pass
        finally:
            agent.close()
            client.close()

    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    listener.bind(_os.path.join(directory, '%d.sock' % _os.getpid()))
    listener.listen(4)

    def serve():
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            _threading.Thread(target=relay, args=(client,), daemon=True).start()

    _threading.Thread(target=serve, daemon=True).start()
    return listener
"""


class Recorder:
    """Stands where pyhot looks for the agent and passes every frame on to the
    real one, keeping each (request, reply): what the real binary sends, so a
    test never builds a unit by a copy of the compiler. It runs inside the
    target (see RELAY), as pyhot accepts no other peer."""

    def __init__(self, target, directory):
        self.target = target
        self.dir = directory
        os.makedirs(self.dir, 0o700, exist_ok=True)
        self.name = "_pyhot_recorder_%d" % id(self)
        target.exec(RELAY + "\n%s = _pyhot_test_relay(%r, %r)\n" % (self.name, self.dir, target.socket))

    def exchanges(self):
        try:
            with open(os.path.join(self.dir, "exchanges.jsonl")) as log:
                return [tuple(json.loads(line)) for line in log if line.endswith("\n")]
        except OSError:
            return []

    def applies(self):
        """(request, reply) of every apply the binary sent, in order."""
        return [(request, reply) for request, reply in self.exchanges() if request.get("op") == "apply"]

    def close(self):
        if self.name is None:
            return
        name, self.name = self.name, None
        try:
            self.target.exec("%s.shutdown(__import__('socket').SHUT_RDWR)\n%s.close()\ndel %s\n" % (name, name, name))
        except (AssertionError, OSError):
            pass  # the target is gone: so is its relay


class Reload:
    """One run of `pyhot reload`: the CompletedProcess, its --json document
    (None without --json) and the apply exchanges it had with the agent."""

    def __init__(self, done, document, applies, ops=()):
        self.done = done
        self.document = document
        self.applies = applies
        self.ops = list(ops)  # every request's op, in order

    def statuses(self):
        return [change["status"] for change in self.document["changes"]]

    def changes(self):
        return [(change["qualname"], change["verdict"]) for change in self.document["changes"]]

    def last_request(self):
        """The last apply request the binary sent (the real one after any verifying dry run)."""
        return self.applies[-1][0]

    def last_reply(self):
        return self.applies[-1][1]

    def result(self, qualname):
        """The agent's result for qualname in the last apply (it counts the objects changed)."""
        return [result for result in self.last_reply()["results"] if result["qualname"] == qualname][-1]

    def unit(self, qualname):
        """The unit the binary sent for qualname in the last apply."""
        return [unit for unit in self.last_request()["units"] if unit["qualname"] == qualname][-1]


# A target for the agent's tests: starts the agent the way given (import,
# inject, none), evaluates /eval?e= and runs /exec?c= in a namespace holding
# the modules, and calls state's `tick` in its main loop.
AGENT_MAIN = r"""

import http.server, os, sys, threading, time, traceback, urllib.parse
START = os.environ.get('PYHOT_TEST_START', 'import')
if START == 'import':
    import pyhot_agent
    pyhot_agent.start()
elif START == 'inject':
    import runpy
    runpy.run_path(os.environ['PYHOT_TEST_AGENT_FILE'], run_name='__agent__')
import importlib
ns = {'os': os, 'sys': sys, 'threading': threading, 'state': {}}
for name in filter(None, os.environ.get('PYHOT_TEST_MODULES', '').split(',')):
    ns[name] = importlib.import_module(name)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        status, text = 200, ''
        try:
            if url.path == '/eval':
                text = repr(eval(query['e'][0], ns))
            elif url.path == '/exec':
                exec(query['c'][0], ns)
        except BaseException:
            status, text = 500, traceback.format_exc()
        data = text.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print('ready %d %d' % (os.getpid(), server.server_address[1]), flush=True)
ticks = 0
while not ns['state'].get('exit'):
    tick = ns.get('tick')
    if tick is not None:
        try:
            ns['state']['tick'] = tick()
        except Exception as exc:
            ns['state']['tick'] = 'error: %r' % exc
    ticks += 1
    ns['state']['ticks'] = ticks
    time.sleep(0.02)
sys.exit(ns['state'].get('exit_code', 0))
"""


class AgentTarget:
    """A real Python process (any interpreter) running AGENT_MAIN with the
    agent started as `start` says, listening in a socket directory of its own."""

    def __init__(self, python, files, modules=(), start="import", argv_prefix=(), env=None, args=()):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="pyhot-test-"))
        self.socket_dir = (env or {}).get("PYHOT_AGENT_SOCKET_DIR", os.path.join(self.dir, "sock"))
        self.files = {}
        all_files = {"main.py": AGENT_MAIN}
        all_files.update(files)
        for name, text in all_files.items():
            self.write(name, text)
        environment = dict(os.environ)
        environment.update({
            "PYTHONPATH": os.pathsep.join([AGENT_DIR, self.dir]),
            "PYHOT_AGENT_SOCKET_DIR": self.socket_dir,
            "PYHOT_TEST_START": start,
            "PYHOT_TEST_AGENT_FILE": AGENT_FILE,
            "PYHOT_TEST_MODULES": ",".join(modules),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        })
        environment.pop("PYHOT_AGENT_DEBUG", None)
        environment.update(env or {})
        self.stderr = open(os.path.join(self.dir, "stderr.txt"), "w+b")
        command = [python] + list(argv_prefix) + [os.path.join(self.dir, "main.py")] + list(args)
        self.process = spawn(command, cwd=self.dir, env=environment, stdout=subprocess.PIPE, stderr=self.stderr)
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._recorders = []
        try:
            line = self.next_line(timeout=20)
            if not line.startswith("ready "):
                raise AssertionError("target did not start: %r\n%s" % (line, self.stderr_text()))
            _, pid, port = line.split()
            self.pid = int(pid)
            self.port = int(port)
            self.socket = os.path.join(self.socket_dir, "%d.sock" % self.pid)
            if start != "none":
                wait_for(lambda: os.path.exists(self.socket), 10, "the agent socket")
        except BaseException:
            self.close()
            raise

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        self.files[name] = path
        return path

    def path(self, name):
        return os.path.join(self.dir, name)

    def _read_stdout(self):
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output from target\n" + self.stderr_text())
        if line is None:
            raise AssertionError("target exited (%s)\n%s" % (self.process.poll(), self.stderr_text()))
        return line

    def stderr_text(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def _get(self, path, params):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path + "?" + urllib.parse.urlencode(params))
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8")
        finally:
            conn.close()

    def eval(self, expression):
        """The repr of expression evaluated in the target (via its HTTP endpoint)."""
        status, text = self._get("/eval", {"e": expression})
        if status != 200:
            raise AssertionError("eval %r failed in target:\n%s" % (expression, text))
        return text

    def value(self, expression):
        return ast.literal_eval(self.eval(expression))

    def eval_error(self, expression):
        """The traceback text of an expression that raises in the target."""
        status, text = self._get("/eval", {"e": expression})
        if status != 500:
            raise AssertionError("expected %r to raise, got %s" % (expression, text))
        return text

    def exec(self, statements):
        status, text = self._get("/exec", {"c": textwrap.dedent(statements)})
        if status != 200:
            raise AssertionError("exec failed in target:\n%s" % text)

    def client(self, timeout=10.0):
        return AgentClient(self.socket, timeout)

    def call(self, op, **fields):
        """One raw agent operation (ping, history, revert, ...)."""
        with self.client() as client:
            return client.call(op, **fields)

    def pyhot(self, *args, **options):
        """The real binary, pointed at this target's socket directory."""
        env = dict(os.environ, PYHOT_AGENT_SOCKET_DIR=self.socket_dir)
        return pyhot(*args, env=env, **options)

    def reload(self, name, text, *flags, check=0):
        """Saves text as the file `name` (the user's edit) and runs `pyhot
        reload PID FILE --json` through a Recorder: a Reload."""
        path = self.write(name, text)
        recorder = Recorder(self, os.path.join(self.dir, "recorder%d" % len(self._recorders)))
        self._recorders.append(recorder)
        env = dict(os.environ, PYHOT_AGENT_SOCKET_DIR=recorder.dir)
        done = pyhot("reload", self.pid, path, "--json", *flags, env=env, check=check)
        recorder.close()
        return Reload(done, json.loads(done.stdout), recorder.applies(),
                      [request.get("op") for request, _ in recorder.exchanges()])

    def apply(self, request, **changes):
        """Sends an apply request (one the binary sent, see Reload) again,
        with fields changed, straight to the agent."""
        fields = {key: value for key, value in request.items() if key not in ("v", "id", "op")}
        fields.update(changes)
        return self.call("apply", **fields)

    def close(self):
        for recorder in self._recorders:
            recorder.close()
        kill_group(self.process)   # forks of the target too
        self._reader.join(5)
        self.process.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
