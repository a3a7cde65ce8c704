"""Helpers for integration tests that talk to a real pyhot agent.

- AgentClient: a small client for loader/PROTOCOL.md (framing, ids, errors).
- Target: a real Python process (any interpreter) running a small app with
  the agent started, plus a loopback HTTP endpoint to observe it from outside.
- make_unit / apply_request: build apply requests the way the C++ side does
  (blank-line padding, class/def stubs at their real lines, decorators
  rewritten to @__pyhot_keep__ for swap).
- interpreters(): the CPython interpreters available for the test matrix.
"""

import ast
import http.client
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import symtable
import tempfile
import textwrap
import threading
import time
import urllib.parse

from harness import kill_group, spawn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT_DIR = os.path.join(REPO, 'loader', 'agent')
AGENT_FILE = os.path.join(AGENT_DIR, 'pyhot_agent.py')

_PYENV = '/root/.pyenv/versions'
_WANTED = [('3.8', '3.8.18'), ('3.9', '3.9.18'), ('3.10', '3.10.13'),
           ('3.11', '3.11.7'), ('3.12', '3.12.1'), ('3.13', '3.13.0')]


def interpreters():
    """[(label, path or None)]: None means not installed here (skip it)."""
    out = []
    for short, full in _WANTED:
        path = os.path.join(_PYENV, full, 'bin', 'python' + short)
        out.append(('py' + short.replace('.', ''), path if os.access(path, os.X_OK) else None))
    system = '/usr/bin/python3'
    out.append(('system', system if os.access(system, os.X_OK) else None))
    only = os.environ.get('PYHOT_TEST_PYTHONS')  # e.g. "py38,system"
    if only:
        out = [(label, path) for label, path in out if label in only.split(',')]
    return out


def wait_until(predicate, timeout=10.0, interval=0.02, message='condition'):
    """Polls predicate until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s (last error: %r)'
                                 % (message, last_error))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Client

class AgentError(Exception):
    def __init__(self, kind, message):
        Exception.__init__(self, '%s: %s' % (kind, message))
        self.kind = kind
        self.message = message


def encode_frame(message):
    body = json.dumps(message).encode('utf-8') if not isinstance(message, bytes) else message
    return struct.pack('>I', len(body)) + body


class AgentClient(object):
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
        header = self._recv_exact(4)
        if header is None:
            return None
        body = self._recv_exact(struct.unpack('>I', header)[0])
        return None if body is None else json.loads(body.decode('utf-8'))

    def _recv_exact(self, size):
        data = b''
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def request(self, op, **fields):
        request_id = self.next_id
        self.next_id += 1
        message = {'v': 1, 'id': request_id, 'op': op}
        message.update(fields)
        self.send_raw(encode_frame(message))
        reply = self.recv_frame()
        if reply is None:
            raise ConnectionError('agent closed the connection')
        if reply.get('id') != request_id or reply.get('v') != 1:
            raise AssertionError('reply does not match request %d: %r' % (request_id, reply))
        return reply

    def call(self, op, **fields):
        reply = self.request(op, **fields)
        if not reply['ok']:
            raise AgentError(reply['error']['kind'], reply['error']['message'])
        return reply


# ---------------------------------------------------------------------------
# Building apply requests the way the C++ side does

def _find_def(body, name, index):
    found = [n for n in body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             and n.name == name]
    if not found:
        raise KeyError(name)
    return found[index]


def _first_line(node):
    return min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])


def _kind(node, in_class):
    if isinstance(node, ast.ClassDef):
        return 'class'
    names = [ast.unparse(d) if hasattr(ast, 'unparse') else '' for d in node.decorator_list]
    if in_class:
        if 'staticmethod' in names:
            return 'static_method'
        if 'classmethod' in names:
            return 'class_method'
        if any(n == 'property' or n.endswith(('.setter', '.getter', '.deleter')) for n in names):
            return 'property'
        return 'method'
    return 'async_function' if isinstance(node, ast.AsyncFunctionDef) else 'function'


def _accessor(node):
    for d in getattr(node, 'decorator_list', []):
        text = ast.unparse(d)
        if text == 'property' or text.endswith('.getter'):
            return 'fget'
        if text.endswith('.setter'):
            return 'fset'
        if text.endswith('.deleter'):
            return 'fdel'
    return None


def _free_vars(text, qualname):
    """Free variables of a nested function (from symtable)."""
    table = symtable.symtable(text, '<unit>', 'exec')
    for part in [p for p in qualname.split('.') if p != '<locals>']:
        table = [c for c in table.get_children() if c.get_name() == part][-1]
    frees = set(table.get_frees()) if hasattr(table, 'get_frees') else set()

    def walk(t):
        for child in t.get_children():
            if hasattr(child, 'get_frees'):
                frees.update(child.get_frees())
            walk(child)
    walk(table)
    frees.discard('__class__')
    return sorted(frees)


def make_unit(text, qualname, verdict='swap', index=-1, line_delta=0, targets=None,
              accessor=True):
    """A unit for the definition qualname ('C.m', 'f.<locals>.g') of the new
    file text. index picks among same-named definitions (property accessors).
    For reexec, qualname names the target and the statement is found by it."""
    tree = ast.parse(text)
    lines = text.splitlines()
    parts = [p for p in qualname.split('.') if p != '<locals>']
    body = tree.body
    scopes = []
    for part in parts[:-1]:
        node = _find_def(body, part, -1)
        scopes.append((node, 'class' if isinstance(node, ast.ClassDef) else 'function'))
        body = node.body
    name = parts[-1]
    out = []

    def put(line, text_lines):
        while len(out) < line - 1:
            out.append('')
        assert len(out) == line - 1, 'pieces overlap at line %d' % line
        out.extend(text_lines)

    for node, kind in scopes:
        pad = ' ' * node.col_offset
        if kind == 'class':
            put(node.lineno, [pad + 'class %s:' % node.name])
        else:
            put(node.lineno, [pad + 'def %s(%s):' % (node.name, ', '.join(
                _free_vars(text, qualname)))])
    unit = {'qualname': qualname, 'name': name, 'verdict': verdict,
            'scopes': [{'name': n.name, 'kind': k} for n, k in scopes],
            'line_delta': line_delta}
    if verdict == 'reexec':
        stmt = [n for n in body if isinstance(n, (ast.Assign, ast.Import, ast.ImportFrom,
                                                   ast.AnnAssign))
                and name in ast.unparse(n).split('=')[0].replace(',', ' ').split()][-1]
        put(stmt.lineno, lines[stmt.lineno - 1:stmt.end_lineno])
        unit.update(kind='statement', targets=targets or [name])
    else:
        node = _find_def(body, name, index)
        unit['kind'] = _kind(node, bool(scopes) and scopes[-1][1] == 'class')
        if accessor and _accessor(node):
            unit['accessor'] = _accessor(node)
        first = _first_line(node)
        chunk = lines[first - 1:node.end_lineno]
        if verdict == 'swap':
            body_start = node.lineno - first
            for i in range(body_start):
                stripped = chunk[i].lstrip()
                pad = chunk[i][:len(chunk[i]) - len(stripped)]
                chunk[i] = pad + '@__pyhot_keep__' if stripped.startswith('@') else ''
        put(first, chunk)
    unit['source'] = '\n'.join(out) + '\n'
    return unit


def apply_request(module, path, text, units, **options):
    request = {'module': module, 'file': path, 'source': text,
               'hashes': {u['qualname']: 'h-%s' % u['qualname'] for u in units},
               'future_flags': [], 'dry_run': False, 'verify': False, 'units': units}
    request.update(options)
    return request


# ---------------------------------------------------------------------------
# A target process

MAIN = r'''
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
'''


class TargetError(AssertionError):
    pass


class Target(object):
    """A running target: files in a temp dir, the agent listening."""

    def __init__(self, python, files, modules=(), start='import', argv_prefix=(),
                 env=None, args=()):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix='pyhot-test-'))
        self.socket_dir = (env or {}).get('PYHOT_AGENT_SOCKET_DIR',
                                          os.path.join(self.dir, 'sock'))
        self.files = {}
        all_files = {'main.py': MAIN}
        all_files.update(files)
        for name, text in all_files.items():
            self.write(name, text)
        environment = dict(os.environ)
        environment.update({
            'PYTHONPATH': os.pathsep.join([AGENT_DIR, self.dir]),
            'PYHOT_AGENT_SOCKET_DIR': self.socket_dir,
            'PYHOT_TEST_START': start,
            'PYHOT_TEST_AGENT_FILE': AGENT_FILE,
            'PYHOT_TEST_MODULES': ','.join(modules),
            'PYTHONDONTWRITEBYTECODE': '1',
            'PYTHONUNBUFFERED': '1',
        })
        environment.pop('PYHOT_AGENT_DEBUG', None)
        environment.update(env or {})
        self.stderr = open(os.path.join(self.dir, 'stderr.txt'), 'w+b')
        command = [python] + list(argv_prefix) + [os.path.join(self.dir, 'main.py')] + list(args)
        self.process = spawn(command, cwd=self.dir, env=environment, stdout=subprocess.PIPE,
                             stderr=self.stderr)
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            line = self.next_line(timeout=20)
            if not line.startswith('ready '):
                raise TargetError('target did not start: %r\n%s' % (line, self.stderr_text()))
            _, pid, port = line.split()
            self.pid = int(pid)
            self.port = int(port)
            self.socket = os.path.join(self.socket_dir, '%d.sock' % self.pid)
            if start != 'none':
                wait_until(lambda: os.path.exists(self.socket), message='agent socket')
        except BaseException:
            self.close()
            raise

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        self.files[name] = path
        return path

    def path(self, name):
        return os.path.join(self.dir, name)

    def _read_stdout(self):
        for raw in self.process.stdout:
            self.lines.put(raw.decode('utf-8', 'replace').rstrip('\n'))
        self.lines.put(None)

    def next_line(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TargetError('no output from target\n' + self.stderr_text())
        if line is None:
            raise TargetError('target exited (%s)\n%s' % (self.process.poll(), self.stderr_text()))
        return line

    def stderr_text(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode('utf-8', 'replace')

    def _get(self, path, params):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            conn.request('GET', path + '?' + urllib.parse.urlencode(params))
            response = conn.getresponse()
            return response.status, response.read().decode('utf-8')
        finally:
            conn.close()

    def eval(self, expression):
        """The repr of expression evaluated in the target (via its HTTP endpoint)."""
        status, text = self._get('/eval', {'e': expression})
        if status != 200:
            raise TargetError('eval %r failed in target:\n%s' % (expression, text))
        return text

    def value(self, expression):
        return ast.literal_eval(self.eval(expression))

    def eval_error(self, expression):
        """The traceback text of an expression that raises in the target."""
        status, text = self._get('/eval', {'e': expression})
        if status != 500:
            raise TargetError('expected %r to raise, got %s' % (expression, text))
        return text

    def exec(self, statements):
        status, text = self._get('/exec', {'c': textwrap.dedent(statements)})
        if status != 200:
            raise TargetError('exec failed in target:\n%s' % text)

    def client(self, timeout=10.0):
        return AgentClient(self.socket, timeout)

    def call(self, op, **fields):
        with self.client() as client:
            return client.call(op, **fields)

    def apply(self, module, text, units, **options):
        """Writes text as module's file (the user's edit) and applies units."""
        path = self.path(module.replace('.', '/') + '.py')
        with open(path, 'w') as f:
            f.write(text)
        return self.call('apply', **apply_request(module, path, text, units, **options))

    def close(self):
        kill_group(self.process)   # forks of the target too
        self._reader.join(5)
        self.process.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
