"""pyhot agent: lives inside the target Python process.

It listens on a Unix domain socket for requests from pyhot (the contract is
loader/PROTOCOL.md), compiles the units it is sent with the target's own
compiler, applies them to the live objects all-or-nothing, and keeps the
history needed to revert them exactly.

Standard library only, CPython 3.8 or newer. Three ways to start it:

    import pyhot_agent; pyhot_agent.start()
    python -m pyhot_agent app.py [args]
    runpy.run_path('pyhot_agent.py', run_name='__agent__')   # injection

The agent is one object per process, kept in sys.__dict__ so that a second
copy of this file (preloaded and then injected) finds the first one.
"""

import __future__
import ast
import atexit
import builtins
import collections
import dis
import errno
import functools
import gc
# Imported here, never by the agent's thread while it serves: a fork while
# that thread imports would leave the module's import lock held for good in
# the child (by a thread the child does not have).
import importlib.machinery
import importlib.util
import itertools
import operator
import json
import linecache
import os
import runpy
import socket
import stat
import struct
import sys
import threading
import time
import traceback
import types
import weakref

# Rewritten from CMake's project version when the agent is embedded in the
# binary (loader/CMakeLists.txt); this value is used when run from the tree.
AGENT_VERSION = '0.1.0'
PROTOCOL_VERSION = 1
THREAD_NAME = 'pyhot-agent'
CONNECTION_THREAD_NAME = 'pyhot-agent-connection'
MAX_FRAME = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
# Connections served at once (each by its own thread; requests still run
# one at a time) and connections the kernel queues beyond them.
MAX_CONNECTIONS = 256
LISTEN_BACKLOG = 512
# How long a connection keeps the short switch interval (_SwitchBoost) while
# it waits for its client's next request, and how long the accepting thread
# waits for a request before it hands the connection to a thread of its own.
BOOST_WAIT = 0.05
ACCEPT_WAIT = 0.005
# How long start() in a forked child waits for the thread that is taking
# the parent's agent state over (_Agent.become_child).
FORK_TAKEOVER_WAIT = 10.0
# Range checks for protocol values: request ids fit a double exactly;
# line numbers stay far inside a C int, and compiling a unit behind
# first_line - 1 newlines stays cheap.
MAX_ID = 2 ** 53 - 1
MAX_LABEL = 64
MAX_LINE = 1000000
# History limits (PYHOT_HISTORY_MAX_PATCHES, PYHOT_HISTORY_MAX_BYTES).
DEFAULT_HISTORY_MAX_PATCHES = 100
DEFAULT_HISTORY_MAX_BYTES = 64 * 1024 * 1024
_REGISTRY_KEY = '_pyhot_agent'
# Marks this module so that `modules` does not list the agent itself.
__pyhot_agent__ = True

# The words shared with the C++ side (loader/PROTOCOL.md); a test checks
# that both sides list the same ones.
# The verdicts a unit may carry.
VERDICTS = ('swap', 'relocate', 'define', 'delete', 'rebind', 'reexec')
# Every status a unit's result can report.
STATUSES = ('applied', 'unchanged', 'missing', 'freevars_changed', 'would_apply',
            'fields_changed')
# Every kind an error reply can carry.
ERROR_KINDS = ('protocol', 'not_found', 'compile', 'refused', 'internal')
# What a unit defines ('statement': a reexec unit), and what a scope is.
UNIT_KINDS = ('function', 'async_function', 'class', 'method', 'static_method',
              'class_method', 'property', 'statement')
SCOPE_KINDS = ('class', 'function')
ACCESSORS = ('fget', 'fset', 'fdel')

_MISSING = object()
_CELL_TYPE = type((lambda x: lambda: x)(0).__closure__[0])
_CODE_FIELDS = ('co_argcount', 'co_posonlyargcount', 'co_kwonlyargcount',
                'co_nlocals', 'co_stacksize', 'co_flags', 'co_code',
                'co_names', 'co_varnames', 'co_freevars', 'co_cellvars',
                'co_name', 'co_qualname', 'co_exceptiontable')


def _debug(message):
    if os.environ.get('PYHOT_AGENT_DEBUG') == '1':
        try:
            sys.stderr.write('pyhot-agent[%d]: %s\n' % (os.getpid(), message))
            sys.stderr.flush()
        except Exception:
            pass


def _one_line(text):
    return ' '.join(str(text).split())


def _exception_text(exc):
    text = _one_line(exc)
    return '%s: %s' % (type(exc).__name__, text) if text else type(exc).__name__


def _is_writable_class(cls):
    """Whether a patch can set attributes of cls: classes made by class
    statements can; built-in and extension types (and 3.10+ immutable
    types) cannot."""
    flags = getattr(cls, '__flags__', 0)
    heap = flags & (1 << 9)
    immutable = sys.version_info >= (3, 10) and flags & (1 << 8)
    return bool(heap) and not immutable


class _Failure(Exception):
    """An expected failure: becomes {"ok": false, "error": {kind, message}}."""

    def __init__(self, kind, message):
        Exception.__init__(self, message)
        assert kind in ERROR_KINDS, kind
        self.kind = kind
        self.message = _one_line(message)


# ---------------------------------------------------------------------------
# Socket and framing

def _socket_dir():
    configured = os.environ.get('PYHOT_AGENT_SOCKET_DIR')
    if configured:
        return configured
    runtime = _runtime_dir()
    if runtime is not None:
        return runtime + '/pyhot'
    return '/tmp/pyhot-%d' % os.getuid()


def _runtime_dir():
    """XDG_RUNTIME_DIR as the process started with it (/proc/self/environ,
    which is what pyhot reads from outside: the two must agree) when it is
    an absolute path to a directory of our uid, mode 0700, not a link, so no
    other user can have made the directory pyhot uses in it. loader/process.cpp
    applies the same test."""
    try:
        with open('/proc/self/environ', 'rb') as environ:
            entries = environ.read().split(b'\0')
    except OSError:
        return None
    for entry in entries:
        if entry.startswith(b'XDG_RUNTIME_DIR='):
            path = os.fsdecode(entry[len(b'XDG_RUNTIME_DIR='):]).rstrip('/')
            break
    else:
        return None
    if not path.startswith('/'):
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) != 0o700:
        return None
    return path


def _prepare_dir(path):
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise OSError('%s is not a directory' % path)
    if info.st_uid != os.geteuid():
        raise OSError('%s belongs to uid %d, not to us' % (path, info.st_uid))
    if info.st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale_sockets(directory):
    for entry in os.listdir(directory):
        if not entry.endswith('.sock'):
            continue
        try:
            pid = int(entry[:-len('.sock')])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                os.unlink(os.path.join(directory, entry))
                _debug('removed stale socket %s' % entry)
            except OSError:
                pass


def _timeout():
    try:
        value = float(os.environ.get('PYHOT_AGENT_TIMEOUT', DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if 0 < value < 3600 else DEFAULT_TIMEOUT


def _positive_int_env(name, default):
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class _FrameTooLarge(Exception):
    pass


# What _FrameReader.next says when the frame is not complete by the time
# the caller gave it: the reader keeps what it has, call again to go on.
_PENDING = object()


class _FrameReader(object):
    """The frames of one connection, read with as few blocking calls as
    possible: under GIL contention each one costs the agent's thread a
    switch interval or more before it runs again.

    A frame has a deadline (timeout seconds from its first byte), not each
    read, so a client sending a byte at a time cannot hold its connection."""

    def __init__(self, conn, timeout):
        self.conn = conn
        self.timeout = timeout
        self.chunks = []
        self.buffered = 0
        self.ended = False
        self.deadline = None    # of the frame in progress

    def wait(self, seconds):
        """True once data (or the end of the stream) is there; False after
        seconds without any."""
        if self.buffered or self.ended:
            return True
        self.conn.settimeout(max(seconds, 0.001))
        try:
            self._take(self.conn.recv(256 * 1024))
        except socket.timeout:
            return False
        return True

    def next(self, give_up=None):
        """The next frame's body; None at the end of the stream (also in the
        middle of a frame); _PENDING when the time.monotonic() value give_up
        comes first; socket.timeout past the frame's deadline."""
        if not self.wait(self.timeout if give_up is None else give_up - time.monotonic()):
            if give_up is not None:
                return _PENDING
            raise socket.timeout('no request within %g s' % self.timeout)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout
        outcome = self._fill(4, give_up)
        if outcome is not True:
            return outcome
        size = struct.unpack('>I', self._peek(4))[0]
        if size > MAX_FRAME:
            raise _FrameTooLarge(size)
        outcome = self._fill(4 + size, give_up)
        if outcome is not True:
            return outcome
        self.deadline = None
        data = b''.join(self.chunks)
        rest = data[4 + size:]
        self.chunks = [rest] if rest else []
        self.buffered = len(rest)
        return data[4:4 + size]

    def _take(self, chunk):
        if chunk:
            self.chunks.append(chunk)
            self.buffered += len(chunk)
        else:
            self.ended = True

    def _peek(self, size):
        if len(self.chunks[0]) < size:
            self.chunks = [b''.join(self.chunks)]
        return self.chunks[0][:size]

    def _fill(self, size, give_up):
        while self.buffered < size:
            if self.ended:
                return None
            now = time.monotonic()
            if now >= self.deadline:
                raise socket.timeout('the frame did not arrive in time')
            limit = self.deadline if give_up is None else min(self.deadline, give_up)
            if now >= limit:
                return _PENDING
            self.conn.settimeout(limit - now)
            try:
                self._take(self.conn.recv(min(max(size - self.buffered, 65536), 1 << 20)))
            except socket.timeout:
                if time.monotonic() >= self.deadline or give_up is None:
                    raise
                return _PENDING
        return True


class _SwitchBoost(object):
    """A short switch interval while requests are being served, so that the
    agent's thread gets the interpreter back quickly after each blocking
    call even when other threads keep it busy. The program's own interval
    is put back as soon as no request is in progress (unless the program
    set another one meanwhile); it is never raised."""

    INTERVAL = 0.0002

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.saved = None
        self.ours = None

    def enter(self):
        with self.lock:
            self.count += 1
            if self.count == 1:
                current = sys.getswitchinterval()
                self.saved = None
                if current > self.INTERVAL:
                    sys.setswitchinterval(self.INTERVAL)
                    self.saved = current
                    self.ours = sys.getswitchinterval()

    def leave(self):
        with self.lock:
            self.count -= 1
            if self.count == 0 and self.saved is not None:
                if sys.getswitchinterval() == self.ours:
                    sys.setswitchinterval(self.saved)
                self.saved = None

    def after_fork(self):
        """In a child: no request is in progress there."""
        self.lock = threading.Lock()
        if self.count and self.saved is not None and sys.getswitchinterval() == self.ours:
            sys.setswitchinterval(self.saved)
        self.count = 0
        self.saved = None


def _frame_bytes(message):
    body = json.dumps(message).encode('utf-8')
    return struct.pack('>I', len(body)) + body


def _send_frame(conn, message):
    # Since 3.5 the socket timeout bounds the whole sendall: a client that
    # does not read cannot hold the connection either.
    conn.settimeout(_timeout())
    conn.sendall(_frame_bytes(message))


def _send_until(conn, data, until):
    """Sends data until the time.monotonic() value until; what is still
    unsent then (empty when it all went)."""
    view = memoryview(data)
    while view:
        left = until - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        try:
            view = view[conn.send(view):]
        except socket.timeout:
            break
    return view


class _Unsent(object):
    """A reply the client did not take in time on the accepting thread: the
    connection's own thread sends the rest."""
    __slots__ = ('rest', 'more')

    def __init__(self, rest, more):
        self.rest = rest
        self.more = more


def _peer_uid(conn):
    option = getattr(socket, 'SO_PEERCRED', 17)
    raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize('3i'))
    return struct.unpack('3i', raw)[1]


# ---------------------------------------------------------------------------
# Request fields

def _field(request, name, kinds, default=_MISSING):
    if not isinstance(kinds, tuple):
        kinds = (kinds,)
    value = request.get(name, default)
    if value is _MISSING:
        raise _Failure('protocol', "missing field '%s'" % name)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise _Failure('protocol', "field '%s' has the wrong type" % name)
    return value


def _int_field(request, name, low, high, default=_MISSING):
    value = _field(request, name, int, default)
    if value is not default and not low <= value <= high:
        raise _Failure('protocol', "field '%s' is %d, outside %d to %d" % (name, value, low, high))
    return value


def _label_field(request):
    """A patch's tree-wide label (PROTOCOL.md): one id the client gives
    the patch in every process it reaches; None without one."""
    label = _field(request, 'label', str, None)
    if label is not None and not (0 < len(label) <= MAX_LABEL
                                  and all(c.isalnum() or c in '._:-' for c in label)
                                  and label.isascii()):
        raise _Failure('protocol', "field 'label' must be 1 to %d letters, digits or ._:-"
                       % MAX_LABEL)
    return label


def _word_field(request, name, words, default=_MISSING):
    value = _field(request, name, str, default)
    if value is not default and value not in words:
        raise _Failure('protocol', "field '%s' is %r, not one of %s"
                       % (name, value[:40], ', '.join(words)))
    return value


def _flag_field(request, name):
    """An optional boolean (absent and null are false)."""
    return _field(request, name, bool, None) is True


def _name_field(request, name):
    value = _field(request, name, str)
    if not value.isidentifier():
        raise _Failure('protocol', "field '%s' is not a Python name: %r" % (name, value[:40]))
    return value


# ---------------------------------------------------------------------------
# Code objects

def _child_code(code, name, qualname):
    """The code object named name among code's constants (the last one, or
    the one whose co_qualname matches when there are several)."""
    found = [c for c in code.co_consts
             if isinstance(c, types.CodeType) and c.co_name == name]
    if len(found) > 1 and hasattr(found[0], 'co_qualname'):
        exact = [c for c in found if c.co_qualname == qualname]
        if exact:
            found = exact
    return found[-1] if found else None


def _const_equal(a, b):
    if isinstance(a, types.CodeType) and isinstance(b, types.CodeType):
        return _code_equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_const_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, complex)):
        return repr(a) == repr(b)
    try:
        return bool(a == b)
    except BaseException:
        return False


def _code_equal(a, b):
    """Same bytecode, constants, names, flags and nested code; line numbers
    and file names are ignored."""
    for field in _CODE_FIELDS:
        if getattr(a, field, None) != getattr(b, field, None):
            return False
    return len(a.co_consts) == len(b.co_consts) and all(
        _const_equal(x, y) for x, y in zip(a.co_consts, b.co_consts))


def _lines_moved_by(old, new, delta):
    """Whether new (equal to old but for lines) is old moved by delta
    lines, nested code included: then a relocation makes it exact."""
    if new.co_firstlineno != old.co_firstlineno + delta or _line_table(old) != _line_table(new):
        return False
    return all(_lines_moved_by(a, b, delta) for a, b in zip(old.co_consts, new.co_consts)
               if isinstance(a, types.CodeType) and isinstance(b, types.CodeType))


# Values compared with == by type, so that no user __eq__ runs.
_PLAIN_TYPES = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))


def _values_equal(a, b):
    """a == b for plain data (what default values usually are); a user
    object equals only itself."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) in _PLAIN_TYPES:
        return bool(a == b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict and all(type(k) is str for k in a) and all(type(k) is str for k in b):
        return a.keys() == b.keys() and all(_values_equal(v, b[k]) for k, v in a.items())
    return False


def _shift_class_firstlineno(code, consts, delta):
    """3.13+: a class body stores its first line as a constant (the class's
    __firstlineno__); the moved body loads a new constant with the moved
    line (a new slot: the old one may be shared with an equal literal).
    Returns (co_code, consts)."""
    raw = code.co_code
    if '__firstlineno__' not in code.co_names or len(consts) >= 256:
        return raw, consts
    instructions = list(dis.get_instructions(code))
    for previous, instruction in zip(instructions, instructions[1:]):
        if instruction.opname == 'STORE_NAME' and instruction.argval == '__firstlineno__' \
                and previous.opname == 'LOAD_CONST' and type(previous.argval) is int \
                and previous.arg < 256 and raw[previous.offset + 1] == previous.arg:
            line = max(1, previous.argval + delta)
            users = sum(1 for i in instructions if i.opcode in dis.hasconst and i.arg == previous.arg)
            if users == 1:
                # As a fresh import has it: the same slot, the new line.
                return raw, consts[:previous.arg] + (line,) + consts[previous.arg + 1:]
            at = previous.offset + 1
            return raw[:at] + bytes([len(consts)]) + raw[at + 1:], consts + (line,)
    return raw, consts


def _shift_code(code, delta, pairs=None):
    """A copy of code (and its nested code) moved by delta lines."""
    consts = tuple(_shift_code(c, delta, pairs) if isinstance(c, types.CodeType)
                   else c for c in code.co_consts)
    raw = code.co_code
    if sys.version_info >= (3, 13):
        raw, consts = _shift_class_firstlineno(code, consts, delta)
    moved = code.replace(co_firstlineno=max(1, code.co_firstlineno + delta),
                         co_consts=consts, co_code=raw)
    if pairs is not None:
        pairs.append((code, moved))
    return moved


def _rebuild_code(code, replacements):
    """code with nested code objects replaced (replacements: id -> new)."""
    if id(code) in replacements:
        return replacements[id(code)]
    consts = []
    changed = False
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            new = _rebuild_code(c, replacements)
            changed = changed or new is not c
            c = new
        consts.append(c)
    return code.replace(co_consts=tuple(consts)) if changed else code


def _pair_nested(old, new, pairs):
    """Pairs nested code objects of two versions of a function by name and
    position among equal names."""
    for name in set(c.co_name for c in old.co_consts if isinstance(c, types.CodeType)):
        olds = [c for c in old.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
        news = [c for c in new.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
        for o, n in zip(olds, news):
            if o is not n:
                pairs.append((o, n))
                _pair_nested(o, n, pairs)


def _pair_lambdas(old, new, pairs):
    """The lambdas of two versions of a function (and of its nested code),
    paired by position where both versions have as many."""
    nested = []
    _pair_nested(old, new, nested)
    for o, n in [(old, new)] + nested:
        olds = [c for c in o.co_consts if isinstance(c, types.CodeType) and c.co_name == '<lambda>']
        news = [c for c in n.co_consts if isinstance(c, types.CodeType) and c.co_name == '<lambda>']
        if len(olds) == len(news):
            pairs.extend((a, b) for a, b in zip(olds, news) if a is not b)


# ---------------------------------------------------------------------------
# Live objects

def _mangle(name, class_name):
    if class_name is None or not name.startswith('__') or name.endswith('__'):
        return name
    stripped = class_name.lstrip('_')
    return '_%s%s' % (stripped, name) if stripped else name


def _scope_qualname(scopes, index):
    parts = []
    for scope in scopes[:index]:
        parts.append(scope['name'])
        if scope['kind'] != 'class':
            parts.append('<locals>')
    parts.append(scopes[index]['name'])
    return '.'.join(parts)


def _namespace_get(owner, key):
    return owner.__dict__.get(key, _MISSING)


def _instance_dict(obj):
    try:
        d = object.__getattribute__(obj, '__dict__')
    except Exception:
        return None
    return d if type(d) is dict else None


def _reachable_functions(binding, start=None):
    """The functions reachable from binding (through staticmethod,
    classmethod, property, __wrapped__, partial, bound methods and closure
    cells), outermost first; at most 500 objects are looked at."""
    seen = set()
    queue = [binding] if start is None else list(start)
    index = 0
    while index < len(queue) and index < 500:
        obj = queue[index]
        index += 1
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            yield obj
            for cell in obj.__closure__ or ():
                try:
                    queue.append(cell.cell_contents)
                except ValueError:
                    pass
            queue.append(obj.__dict__.get('__wrapped__'))
        elif isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            queue.append(obj.__func__)
        elif isinstance(obj, property):
            queue.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, functools.partial):
            queue.append(obj.func)
        elif not isinstance(obj, (type, types.ModuleType, types.CodeType)):
            attrs = _instance_dict(obj)
            if attrs:
                for key in ('__wrapped__', '__func__', 'func', 'fget', 'fset', 'fdel'):
                    if key in attrs:
                        queue.append(attrs[key])


def _unwrap(binding, qualname, name, start=None):
    """Functions reachable from binding whose __qualname__ is qualname and
    whose code is named name, outermost first."""
    found = []
    for fn in _reachable_functions(binding, start):
        code = fn.__code__
        if (fn.__qualname__ == qualname and code.co_name == name
                and getattr(code, 'co_qualname', qualname) == qualname):
            found.append(fn)
    return found


def _imports_from(text, importer, module_name):
    """The names importer binds with `from module_name import X [as Y]`
    ({Y: X}), read from its text."""
    import importlib.util
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    names = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        try:
            source = importlib.util.resolve_name('.' * node.level + (node.module or ''),
                                                 getattr(importer, '__package__', None) or '')
        except (ImportError, ValueError):
            continue
        if source == module_name:
            for alias in node.names:
                names[alias.asname or alias.name] = alias.name
    return names


def _imported_copies(module_name, module, bound_values):
    """Other modules' `from module_name import X` copies of a value a
    statement rebinds, where they still hold exactly the old object:
    [(module, name there, new value)]. A copy is counted only when the
    other module's text imports X from this module."""
    olds = {}
    for key, value in bound_values:
        old = module.__dict__.get(key, _MISSING)
        if old is not _MISSING and old is not value:
            olds[key] = (old, value)
    if not olds:
        return []
    copies = []
    for other in list(sys.modules.values()):
        if other is None or other is module or not isinstance(getattr(other, '__dict__', None), dict):
            continue
        held = [(k, v) for k, v in list(other.__dict__.items()) if any(v is o for o, _ in olds.values())]
        path = _module_file(other) if held else None
        if not path or not _is_user_file(path):
            continue
        data = _Baselines._read(path)
        if data is None:
            continue
        try:
            text = _decode(data)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        imported = _imports_from(text, other, module_name)
        for name, value in held:
            source = imported.get(name)
            if source in olds and value is olds[source][0]:
                copies.append((other, name, olds[source][1]))
    return copies


def _functions_of_module(module, qualname, name):
    """Functions of that qualname whose globals are module's (one heap scan:
    only when the binding neither is nor wraps the function)."""
    file = getattr(module, '__file__', None)
    return [obj for obj in gc.get_referrers(module.__dict__)
            if isinstance(obj, types.FunctionType) and obj.__globals__ is module.__dict__
            and obj.__qualname__ == qualname and obj.__code__.co_name == name
            and (file is None or obj.__code__.co_filename == file)]


# ---------------------------------------------------------------------------
# Apply

class _Unit(object):
    """One unit of an apply request and everything worked out for it."""
    __slots__ = ('qualname', 'name', 'kind', 'verdict', 'scopes', 'source',
                 'line_delta', 'targets', 'accessor', 'fn_index',
                 'code', 'new_code', 'body_code', 'owner', 'class_name', 'key',
                 'old_binding', 'live_fn', 'old_code', 'outer_fn', 'outer_qualname',
                 'old_chain', 'new_binding', 'new_fn', 'bound_values',
                 'status', 'objects', 'message', 'only_if_missing', 'first_line',
                 'duplicate', 'conditional', 'copies', 'moved', 'wrapped', 'made_by', 'lambda_swaps',
                 'orphans')

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise _Failure('protocol', 'a unit is not a JSON object')
        # Every value is checked here, before anything is compiled or looked
        # up: a bad one is a protocol error, never a stall or a crash.
        self.verdict = _field(raw, 'verdict', str)
        if self.verdict not in VERDICTS:
            raise _Failure('protocol', "unknown verdict '%s'" % self.verdict[:40])
        if self.verdict == 'reexec':
            self.qualname = _field(raw, 'qualname', str)
            self.name = _field(raw, 'name', str)
        else:
            self.qualname = _field(raw, 'qualname', str)
            if not self.qualname:
                raise _Failure('protocol', "field 'qualname' is empty")
            self.name = _name_field(raw, 'name')
        self.kind = _word_field(raw, 'kind', UNIT_KINDS, 'function')
        self.scopes = []
        for scope in _field(raw, 'scopes', list, []):
            if not isinstance(scope, dict):
                raise _Failure('protocol', 'a scope is not a JSON object')
            self.scopes.append({'name': _name_field(scope, 'name'),
                                'kind': _word_field(scope, 'kind', SCOPE_KINDS, 'class')})
        needs_source = self.verdict not in ('relocate', 'delete')
        self.source = _field(raw, 'source', str, _MISSING if needs_source else '')
        self.line_delta = _int_field(raw, 'line_delta', -MAX_LINE, MAX_LINE, 0)
        # The real line of the source's first line: units are sent without
        # the blank lines above them.
        self.first_line = _int_field(raw, 'first_line', 1, MAX_LINE, 1)
        if self.first_line + self.source.count('\n') > MAX_LINE:
            raise _Failure('protocol', 'unit %s ends past line %d' % (self.qualname, MAX_LINE))
        targets = _field(raw, 'targets', list, None)
        if targets is not None and not all(isinstance(t, str) for t in targets):
            raise _Failure('protocol', "field 'targets' must be a list of names")
        self.targets = targets
        self.accessor = _word_field(raw, 'accessor', ACCESSORS, None)
        # First touch: bind the statement's names only where the live
        # namespace lacks them, so state the program built up is kept.
        self.only_if_missing = _flag_field(raw, 'only_if_missing')
        # The file defines this qualname more than once: only the definition
        # the live function came from may change it (line_delta: its new
        # start line minus its old one).
        self.duplicate = _flag_field(raw, 'duplicate')
        # A def in a module-level block, under the main guard, or a name the
        # module deletes: a fresh import may lack it too.
        self.conditional = _flag_field(raw, 'conditional')
        self.fn_index = None
        for index, scope in enumerate(self.scopes):
            if scope['kind'] != 'class':
                self.fn_index = index
                break
        self.code = self.new_code = self.body_code = None
        self.owner = self.class_name = self.key = None
        self.old_binding = _MISSING
        self.live_fn = self.old_code = self.outer_fn = self.outer_qualname = None
        self.old_chain = None
        self.orphans = None     # a relocation: the functions a deleted function made
        self.new_binding = _MISSING
        self.new_fn = None
        self.bound_values = None
        self.lambda_swaps = []      # reexec: (live lambda, new lambda) whose code it takes
        self.copies = ()      # (module, name, new value): `from m import X` copies to update
        self.status = None
        self.objects = 0
        self.message = None
        # First touch (verify): the live code equals the file's moved by
        # this many lines; whether the live name holds something other than
        # the function itself (a decorator's result).
        self.moved = 0
        self.wrapped = None
        # ... and which module-level function made that result (a closure
        # whose code is nested in that function's code), if one did.
        self.made_by = None

    def nested(self):
        return self.fn_index is not None

    def old_first_line(self):
        """Where the live code of a duplicate's definition starts: its new
        start line (a swap's compiled code, a relocation's first_line) minus
        line_delta."""
        if self.verdict == 'relocate':
            return self.first_line - self.line_delta
        return self.new_code.co_firstlineno - self.line_delta

    def class_scopes(self):
        end = len(self.scopes) if self.fn_index is None else self.fn_index
        return self.scopes[:end]

    def result(self):
        if self.status not in STATUSES:
            raise _Failure('internal', 'unit %s ended with no known status (%r)'
                           % (self.qualname, self.status))
        out = {'qualname': self.qualname, 'verdict': self.verdict,
               'status': self.status, 'objects': self.objects}
        if self.message:
            out['message'] = self.message
        if self.moved:
            out['line_delta'] = self.moved
        if self.wrapped is not None:
            out['wrapped'] = self.wrapped
        if self.made_by:
            out['made_by'] = self.made_by
        return out


def _keep(obj):
    """Stands in for decorators that a swap must not run again."""
    return obj


def _where(exc, filename):
    """'file:line: ' of the innermost frame of exc in the unit's file."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return '%s:%s: ' % (filename, line) if line else '%s: ' % filename


def _defined_here(value, module_name, file, qualname):
    """Whether value is a function or class a def or class statement of
    this file made under qualname: a function by its code's file and
    name, a class by its module, qualname and a function of this file in
    its body (a class with none cannot be told from one made by a call)."""
    if _is_a(value, types.FunctionType):
        code = value.__code__
        return value.__qualname__ == qualname and value.__module__ == module_name \
            and code.co_name == qualname.rsplit('.', 1)[-1] and _is_file(code.co_filename, file)
    if not _is_a(value, type) or value.__dict__.get('__module__') != module_name \
            or value.__qualname__ != qualname:
        return False
    codes = []
    for member in list(value.__dict__.values()):
        _function_codes(member, file, codes)
    return bool(codes)


def _absent_definitions(request, units):
    """First touch: the functions and classes, at module level and in
    classes at module level, that this file's def and class statements
    made in the live module and that no unit names (the client deletes
    those the file binds no other way)."""
    named = set(unit.qualname for unit in units)
    module, file = request.module, request.file
    absent = []
    for key, value in list(module.__dict__.items()):
        if not isinstance(key, str) or not _defined_here(value, request.module_name, file, key):
            continue
        if key not in named:
            absent.append(key)
            continue
        if _is_a(value, type):
            for member, inner in list(value.__dict__.items()):
                qualname = '%s.%s' % (key, member)
                if isinstance(member, str) and qualname not in named \
                        and _defined_here(inner, request.module_name, file, qualname):
                    absent.append(qualname)
    return absent[:10000]


class _ApplyRequest(object):
    """The fields of one apply request, checked."""

    def __init__(self, request):
        self.module_name = _field(request, 'module', str)
        self.module = sys.modules.get(self.module_name)
        if self.module is None:
            raise _Failure('not_found', "No module named '%s'" % self.module_name)
        module_file = getattr(self.module, '__file__', None)
        self.file = _field(request, 'file', str, None) or \
            (module_file if isinstance(module_file, str) else None) or \
            '<pyhot %s>' % self.module_name
        self.source = _field(request, 'source', str, None)
        # Instead of `source`: the new text as one edit of the recorded
        # snapshot, so what crosses the socket (and is decoded while the GIL
        # is held) is what changed, not the module.
        self.source_edit = _field(request, 'source_edit', dict, None)
        # The client's hash of the text recorded as live (it finds its parsed
        # copy by it); the agent only keeps it.
        self.snapshot_hash = _field(request, 'snapshot_hash', str, None)
        self.dry_run = _flag_field(request, 'dry_run')
        self.verify = _flag_field(request, 'verify')
        self.label = _label_field(request)
        # What to record as live afterwards: the whole source by default; a
        # client that applies only part of a file sends its own text, or
        # null to record nothing.
        # Instead of `snapshot`: the text to record as an edit of the recorded one.
        self.snapshot_edit = _field(request, 'snapshot_edit', dict, None)
        # (records_source: no `snapshot` field, the applied text is recorded.)
        self.records_source = 'snapshot' not in request and self.snapshot_edit is None
        self.snapshot = request.get('snapshot')
        if self.snapshot is not None and not isinstance(self.snapshot, str):
            raise _Failure('protocol', "field 'snapshot' must be a string or null")
        self.flags = 0
        for feature in _field(request, 'future_flags', list, []):
            if not isinstance(feature, str) or not feature.isidentifier():
                raise _Failure('protocol', "field 'future_flags' must be a list of names")
            value = getattr(__future__, feature, None)
            if not isinstance(value, __future__._Feature):
                raise _Failure('protocol', "unknown future feature '%s'" % feature)
            mandatory = value.getMandatoryRelease()
            if mandatory is not None and tuple(mandatory[:3]) <= tuple(sys.version_info[:3]):
                # `division`, `print_function`, ...: the compiler accepts the
                # import and records nothing, so neither may the unit.
                continue
            self.flags |= value.compiler_flag
        self.units = [_Unit(raw) for raw in _field(request, 'units', list)]


class _Foreign(_Failure):
    """The live name is held by something this text did not make (a
    built-in the module imported instead of its fallback definition)."""

    def __init__(self, message):
        _Failure.__init__(self, 'refused', message + '; nothing was changed')


def _type_name(obj):
    return getattr(obj, '__qualname__', None) or type(obj).__name__


def _holds_plain_value(binding):
    """Whether the name holds a built-in value that is not callable (an int
    a registering decorator returned): never a fallback for this text's
    definition, so the function the text made may be live elsewhere."""
    return type(binding).__module__ == 'builtins' and not callable(binding) \
        and not isinstance(binding, (type, staticmethod, classmethod, property))


def _refuse_builtin(binding, qualname):
    """Raises _Foreign when a built-in (a C function or descriptor, or a
    built-in type) holds the name: the text's definition is a fallback that
    did not run."""
    if isinstance(binding, type):
        if not _is_writable_class(binding):
            raise _Foreign('the live %s is the built-in type %s, not this definition'
                           % (qualname, _type_name(binding)))
        return
    if not isinstance(binding, (types.FunctionType, staticmethod, classmethod, property,
                                functools.partial, types.MethodType)) \
            and type(binding).__module__ == 'builtins' and _instance_dict(binding) is None:
        if not callable(binding):
            # `@registry.register` returning an id, or the module rebinding
            # the name: the function this text made is held elsewhere.
            raise _Foreign('the live %s holds a value of type %s, not a function (its decorators '
                           'returned it, or the module rebinds the name): the function this definition '
                           'made is not reached' % (qualname, type(binding).__name__))
        raise _Foreign('the live %s is a built-in %s, not this definition'
                       % (qualname, _type_name(binding)))


# -- compiling: the unit's text into the code objects it defines ------------

def _compile_unit(unit, file, flags):
    if unit.verdict in ('relocate', 'delete'):
        return
    offset = unit.first_line - 1
    # A swap only needs the code: compile the short text and move its
    # line numbers (the line table is relative to co_firstlineno, so the
    # result is what compiling at the real lines gives). Anything that
    # runs its body (a class's __firstlineno__, tracebacks of decorators)
    # is compiled at the real lines.
    shift = offset if unit.verdict == 'swap' else 0
    _compile_unit_at(unit, file, flags, shift)
    # On 3.13+ a class body keeps its first line as a constant (its
    # __firstlineno__), which moving line numbers may not reach: a function
    # holding a class statement is compiled at its real lines. (Compiling
    # every unit there behind first_line - 1 newlines made a first touch of
    # a 60,000-line module take a minute.)
    if shift and sys.version_info >= (3, 13) and _holds_class_body(unit.new_code):
        _compile_unit_at(unit, file, flags, 0)


def _compile_unit_at(unit, file, flags, shift):
    offset = unit.first_line - 1
    source = unit.source if shift or not offset else '\n' * offset + unit.source
    try:
        unit.code = compile(source, file, 'exec', flags, True)
    except SyntaxError as exc:
        raise _Failure('compile', '%s:%s:%s: %s' % (
            exc.filename or file, (exc.lineno or 0) + shift, exc.offset, exc.msg))
    except (ValueError, TypeError) as exc:
        raise _Failure('compile', '%s: %s' % (file, _exception_text(exc)))
    if shift:
        unit.code = _shift_code(unit.code, shift)
    _find_unit_code(unit, file)


def _holds_class_body(code):
    return code is not None and ('__firstlineno__' in code.co_names or any(
        _holds_class_body(c) for c in code.co_consts if isinstance(c, types.CodeType)))


def _find_unit_code(unit, file):
    """Walks the compiled unit down its scopes to the body it runs and the
    code object it defines."""
    code = unit.code
    body = code
    for index, scope in enumerate(unit.scopes):
        code = _child_code(code, scope['name'], _scope_qualname(unit.scopes, index))
        if code is None:
            raise _Failure('compile', "%s: the unit for %s has no scope '%s'"
                           % (file, unit.qualname, scope['name']))
        if unit.fn_index is None or index < unit.fn_index:
            body = code
    unit.body_code = body
    if unit.verdict == 'reexec':
        return
    unit.new_code = _child_code(code, unit.name, unit.qualname)
    if unit.new_code is None:
        raise _Failure('compile', "%s: the unit for %s does not define '%s'"
                       % (file, unit.qualname, unit.name))


# -- resolving: the live objects a unit changes -------------------------------

def _makes_functions(code):
    """Whether a unit's code defines a function inside a function (whose
    closures may be live though the outer one is gone)."""
    if code is None:
        return False
    stack = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    while stack:
        c = stack.pop()
        for inner in c.co_consts:
            if isinstance(inner, types.CodeType):
                if c.co_flags & 0x0001 and not inner.co_name.startswith('<'):  # CO_OPTIMIZED: a function
                    return True
                stack.append(inner)
    return False


class _LiveResolver(object):
    """Finds, for each unit, the live namespace, binding and function."""

    def __init__(self, module_name, module):
        self.module_name = module_name
        self.module = module
        self.made = None    # __qualname__ -> the module's live functions (one heap scan)

    def _functions_by_qualname(self):
        if self.made is None:
            self.made = {}
            for obj in gc.get_objects():
                if type(obj) is types.FunctionType and obj.__module__ == self.module_name:
                    self.made.setdefault(obj.__qualname__, []).append(obj)
        return self.made

    def made_inside(self, qualname, first_line):
        """The live functions of this module made from the nested code of
        the function `qualname` that started at first_line (`fsencode,
        fsdecode = _fscodec()` then `del _fscodec`: only they are left)."""
        prefix = qualname + '.<locals>.'
        return [fn for name, found in self._functions_by_qualname().items() if name.startswith(prefix)
                for fn in found if fn.__code__.co_firstlineno > first_line]

    def _made_elsewhere(self, qualname):
        """The one live function of this module with that qualname that no
        name binds any more (`new = __hash_new` then `del __hash_new`);
        None when there is none or more than one code."""
        found = self._functions_by_qualname().get(qualname, [])
        if len(set(id(fn.__code__) for fn in found)) != 1:
            return None
        return found[0]

    def resolve(self, unit):
        owner = self.module
        class_name = None
        for scope in unit.class_scopes():
            value = _namespace_get(owner, _mangle(scope['name'], class_name))
            if value is not _MISSING and not isinstance(value, type):
                # `class _Null: ...` then `_Null = _Null()`: the module
                # replaced the class, as a fresh import does.
                raise _Foreign('the live %s is a %s, not this class'
                               % (scope['name'], _type_name(type(value))))
            if not isinstance(value, type):
                raise _Failure('not_found', "Cannot locate class %s in module %s"
                               % (scope['name'], self.module_name))
            if not _is_writable_class(value):
                # An optional-import fallback: the live name is a built-in
                # type, not the class this text defines.
                raise _Foreign('the live %s is the built-in type %s, not this class'
                               % (scope['name'], _type_name(value)))
            owner = value
            class_name = scope['name']
        unit.owner = owner
        unit.class_name = class_name
        if unit.nested():
            self._resolve_nested(unit, owner, class_name)
            return
        unit.key = _mangle(unit.name, class_name)
        unit.old_binding = _namespace_get(owner, unit.key)
        if unit.verdict in ('swap', 'relocate', 'rebind'):
            if unit.old_binding is _MISSING:
                made = self._made_elsewhere(unit.qualname) \
                    if unit.conditional and unit.verdict in ('swap', 'relocate') else None
                if made is not None:
                    unit.live_fn = made
                    unit.old_code = made.__code__
                    return
                raise _Failure('not_found', 'Cannot locate %s in module %s'
                               % (unit.qualname, self.module_name))
            if isinstance(unit.old_binding, type):
                if not _is_writable_class(unit.old_binding):
                    # `def f` above `from _speedups import f`: the import won.
                    raise _Foreign('the live %s is the built-in type %s, not this definition'
                                   % (unit.qualname, _type_name(unit.old_binding)))
                if unit.verdict != 'relocate':
                    raise _Failure('refused', '%s is a class: it can only be defined, '
                                   'deleted or relocated' % unit.qualname)
                return
            unit.live_fn = self._pick(unit, unit.old_binding)
            unit.old_code = unit.live_fn.__code__

    def _pick(self, unit, binding):
        start = None
        if isinstance(binding, property) and unit.accessor in ('fget', 'fset', 'fdel'):
            start = [getattr(binding, unit.accessor)]
        found = _unwrap(binding, unit.qualname, unit.name, start)
        if not found:
            if not _holds_plain_value(binding):
                _refuse_builtin(binding, unit.qualname)
            # `@registry.register` kept the function and bound something
            # else (an id, a wrapper object): the function is still the
            # module's own, and giving it the new code is what a fresh
            # import would have registered. The decorator is not run again.
            found = _functions_of_module(self.module, unit.qualname, unit.name)
            if not found:
                _refuse_builtin(binding, unit.qualname)
            if len(found) > 1 and unit.new_code is not None:
                line = unit.new_code.co_firstlineno - unit.line_delta
                return min(found, key=lambda f: abs(f.__code__.co_firstlineno - line))
        if not found:
            raise _Failure('not_found', 'Cannot locate %s in module %s: the live %s '
                           'is not and does not wrap a function of that name'
                           % (unit.qualname, self.module_name, type(binding).__name__))
        if len(found) > 1 and isinstance(binding, property) and unit.new_code is not None:
            # Accessors of one property share name and qualname: tell them
            # apart by arity, then by the nearest line.
            same = [f for f in found
                    if f.__code__.co_argcount == unit.new_code.co_argcount] or found
            line = unit.new_code.co_firstlineno - unit.line_delta
            return min(same, key=lambda f: abs(f.__code__.co_firstlineno - line))
        if unit.duplicate and not isinstance(binding, property) and \
                (unit.verdict == 'relocate' or (unit.verdict == 'swap' and unit.new_code is not None)):
            # `@show.register(int) def _` above `@show.register(str) def _`:
            # the name holds the last one; an earlier one is live where its
            # decorator kept it. Its code starts at the old definition's line.
            line = unit.old_first_line()
            if found[-1].__code__.co_firstlineno != line:
                kept = [f for f in _functions_of_module(self.module, unit.qualname, unit.name)
                        if f.__code__.co_firstlineno == line]
                if len(set(id(f.__code__) for f in kept)) == 1:
                    return kept[0]
        return found[-1]

    def _resolve_nested(self, unit, owner, class_name):
        index = unit.fn_index
        outer = unit.scopes[index]
        unit.outer_qualname = _scope_qualname(unit.scopes, index)
        binding = _namespace_get(owner, _mangle(outer['name'], class_name))
        if binding is _MISSING and unit.conditional and owner is self.module:
            binding = self._made_elsewhere(unit.outer_qualname) or _MISSING
        if binding is _MISSING:
            raise _Failure('not_found', 'Cannot locate %s in module %s'
                           % (unit.outer_qualname, self.module_name))
        found = _unwrap(binding, unit.outer_qualname, outer['name'])
        if not found:
            _refuse_builtin(binding, unit.outer_qualname)
        if not found:
            raise _Failure('not_found', 'Cannot locate function %s in module %s'
                           % (unit.outer_qualname, self.module_name))
        unit.outer_fn = found[-1]
        chain = [unit.outer_fn.__code__]
        for j in range(index + 1, len(unit.scopes)):
            code = _child_code(chain[-1], unit.scopes[j]['name'],
                               _scope_qualname(unit.scopes, j))
            if code is None:
                break
            chain.append(code)
        else:
            code = _child_code(chain[-1], unit.name, unit.qualname)
            if code is not None:
                chain.append(code)
                unit.old_chain = chain
        if unit.old_chain is None and unit.verdict in ('swap', 'relocate', 'rebind'):
            raise _Failure('not_found', 'Cannot locate %s in the live code of %s'
                           % (unit.qualname, unit.outer_qualname))


# -- dry runs: the new function, made without executing anything ------------

class _NotInert(Exception):
    """An expression whose evaluation could run user code."""


class _InertFunction(object):
    """A swap unit's new function for a verifying dry run, made from its code
    and from default expressions that can be evaluated without running any
    user code (constants, names, attributes of plain modules, containers of
    those). Anything else is refused: a dry run executes no user code."""

    def __init__(self, request, unit, overlay):
        self.request = request
        self.unit = unit
        if unit.owner is request.module:
            self.scratch = overlay
        else:
            self.scratch = dict(unit.owner.__dict__)
        module_dict = request.module.__dict__
        found = module_dict.get('__builtins__', builtins)
        self.builtins = found.__dict__ if isinstance(found, types.ModuleType) else found
        self.globals = module_dict

    def make(self):
        unit = self.unit
        code = unit.new_code
        try:
            node = self._definition()
            args = node.args
            defaults = tuple(self._value(d) for d in args.defaults)
            names = code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
            kwdefaults = dict((name, self._value(d)) for name, d in zip(names, args.kw_defaults)
                              if d is not None)
        except _NotInert as why:
            raise _Failure('compile', 'not evaluated in a dry run: %s' % why)
        closure = tuple(_CELL_TYPE() for _ in code.co_freevars) or None
        fn = types.FunctionType(code, self.globals, code.co_name, defaults or None, closure)
        fn.__kwdefaults__ = kwdefaults or None
        return fn

    def _definition(self):
        unit = self.unit
        tree = compile(unit.source, self.request.file, 'exec',
                       self.request.flags | ast.PyCF_ONLY_AST, True)
        body = []
        for node in tree.body:
            # A def in a module-level block is sent under an `if 1:` stub.
            stub = isinstance(node, ast.If) and isinstance(node.test, ast.Constant) \
                and node.test.value == 1 and not node.orelse
            body.extend(node.body if stub else [node])
        for scope in unit.scopes:
            classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == scope['name']]
            if not classes:
                raise _NotInert('no class %s in the unit' % scope['name'])
            body = classes[-1].body
        defs = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                and n.name == unit.name]
        if not defs:
            raise _NotInert('no def %s in the unit' % unit.name)
        return defs[-1]

    def _value(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            key = _mangle(node.id, self.unit.class_name)
            for namespace in (self.scratch, self.globals, self.builtins):
                if key in namespace:
                    return namespace[key]
            raise _NotInert("name '%s' is not bound" % node.id)
        if isinstance(node, ast.Attribute):
            base = self._value(node.value)
            # A plain module's attribute is a dict lookup; anything else may
            # be a descriptor or __getattr__.
            if type(base) is types.ModuleType and node.attr in base.__dict__:
                return base.__dict__[node.attr]
        elif isinstance(node, (ast.Tuple, ast.List)):
            items = [self._value(e) for e in node.elts if not isinstance(e, ast.Starred)]
            if len(items) == len(node.elts):
                return tuple(items) if isinstance(node, ast.Tuple) else items
        elif isinstance(node, ast.Dict):
            # Only constant keys: hashing anything else may run user code.
            if all(isinstance(k, ast.Constant) for k in node.keys):
                return dict((k.value, self._value(v)) for k, v in zip(node.keys, node.values))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) \
                and type(node.operand.value) in (int, float, complex):
            value = node.operand.value
            return -value if isinstance(node.op, ast.USub) else value
        raise _NotInert('a default value needs code to run (%s)' % type(node).__name__)


# -- executing: the only place user code runs while a patch is worked out ---

# type() makes these methods of a class body static or class methods
# without a decorator; a unit's scratch namespace is no class body.
_IMPLICIT_DESCRIPTORS = {'__new__': staticmethod, '__init_subclass__': classmethod,
                         '__class_getitem__': classmethod}


def _as_type_makes_it(unit, binding):
    wrap = _IMPLICIT_DESCRIPTORS.get(unit.key)
    if wrap is not None and isinstance(unit.owner, type) and type(binding) is types.FunctionType:
        return wrap(binding)
    return binding


def _literal_values(unit):
    """{name: value} when the unit's statement is `NAME = literal` (or
    several such names, annotated or not): running it runs no code, and
    what it binds can be compared with the live values. None otherwise."""
    try:
        tree = ast.parse(unit.source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    assigns = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))]
    values = {}
    for node in assigns:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None or not all(isinstance(t, ast.Name) for t in targets):
            return None
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        for target in targets:
            values[target.id] = value
    return values or None


def _is_immutable_data(value, depth=0):
    if type(value) in _PLAIN_TYPES:
        return True
    if type(value) in (tuple, frozenset) and depth < 20:
        return all(_is_immutable_data(item, depth + 1) for item in value)
    return False


_STORE_OPS = frozenset(('STORE_GLOBAL', 'DELETE_GLOBAL', 'STORE_ATTR', 'DELETE_ATTR', 'STORE_NAME'))


# What a value computed again on first touch may be made of (_computed_values).
_COMPUTED_NODES = (ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
                   ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.Constant)


def _names_stored_by_code(module, file):
    """The names a live function of the module (or code nested in one) may
    assign or delete: `global name; name = ...`, `obj.name = ...`."""
    codes = []
    for code in _live_codes(module, file):
        codes.append(code)
        _all_codes(code, codes)
    names = set()
    for code in codes:
        names.update(instruction.argval for instruction in dis.get_instructions(code)
                     if instruction.opname in _STORE_OPS)
    return names


def _may_run_first_touch(request, owner):
    """First touch: whether a statement that runs code may run in owner.
    Not in a class whose body machinery owns (its names may have been
    consumed, not be new), nor at module level while the module's body
    still runs in some thread (a statement below a blocking `main()` never
    ran; it is not new)."""
    if isinstance(owner, type):
        return not (_consumes_body(owner) or any(
            key in owner.__dict__ for key in ('__dataclass_fields__', '__attrs_attrs__', '_fields')))
    for frame in list(sys._current_frames().values()):
        while frame is not None:
            code = frame.f_code
            if code.co_name == '<module>' and _is_file(code.co_filename, request.file):
                return False
            frame = frame.f_back
    return True


class _Execution(object):
    """Runs unit code into scratch namespaces: nothing live changes."""

    def __init__(self, request):
        self.request = request
        self.overlay = {}           # module-level names bound by reexec units
        self.class_overlays = {}    # id(class) -> names bound in it by reexec units
        self.overlay_classes = {}   # id(class) -> the class, for class_overlays
        self.stand_ins = {}         # id(new function of a swap) -> (it, the live function)
        self.stored_names = None    # names code of the module assigns (_names_stored_by_code)

    def run_reexec(self, units):
        """Runs reexec units; their values are visible to the other units'
        defaults."""
        request = self.request
        for unit in units:
            if unit.verdict != 'reexec':
                continue
            if unit.nested():
                raise _Failure('refused', 'reexec inside a function (%s) is not possible'
                               % unit.qualname)
            literal = unit.only_if_missing and (_literal_values(unit) or self._computed_values(unit))
            if request.dry_run:
                # First touch: what the real apply would leave as it is.
                if unit.only_if_missing and unit.targets and all(
                        _namespace_get(unit.owner, t) is not _MISSING for t in unit.targets) \
                        and not any(self._literal_differs(unit, k, v) for k, v in (literal or {}).items()):
                    unit.status = 'unchanged'
                continue
            if unit.only_if_missing and not literal and unit.targets and all(
                    _namespace_get(unit.owner, t) is not _MISSING for t in unit.targets):
                unit.status = 'unchanged'
                continue
            if unit.only_if_missing and (not literal or isinstance(unit.owner, type)) \
                    and not _may_run_first_touch(request, unit.owner):
                unit.status = 'unchanged'
                continue
            # A class-level statement sees the module-level names bound
            # above it in the same patch (a new import), as in a fresh import.
            scratch, code = self._scratch(unit, self.overlay)
            before = dict(scratch)
            self._exec_seeing_new_names(unit, code, scratch)
            if unit.targets is not None and '*' not in unit.targets:
                names = [t for t in unit.targets if t in scratch]
                if unit.owner is request.module and '__annotations__' not in before \
                        and isinstance(scratch.get('__annotations__'), dict):
                    # `_width: int = ...` made an __annotations__ of its own
                    # in the scratch namespace: a fresh import's has the
                    # module's other annotations too.
                    live = request.module.__dict__.get('__annotations__')
                    merged = dict(live) if isinstance(live, dict) else {}
                    merged.update(scratch['__annotations__'])
                    scratch['__annotations__'] = merged
                    names.append('__annotations__')
            else:
                # `from m import *` binds the names m exports, which no
                # target lists: what the statement bound or changed.
                names = [k for k in scratch if k not in ('__module__', '__qualname__')
                         and before.get(k, _MISSING) is not scratch[k]]
            if unit.only_if_missing:
                names = [k for k in names if _namespace_get(unit.owner, k) is _MISSING
                         or (literal and self._literal_differs(unit, k, scratch[k]))]
                if not names:
                    unit.status = 'unchanged'
                    continue
            for k in names:
                live = _namespace_get(unit.owner, k)
                if _same_lambda(live, scratch[k]):
                    # The statements after it call the new lambda; what they
                    # bind to it is the live one, which gets its code.
                    self.stand_ins[id(scratch[k])] = (scratch[k], live)
                    unit.lambda_swaps.append((live, scratch[k]))
            unit.bound_values = tuple((k, self.live_value(scratch[k])) for k in names)
            target = self.overlay if unit.owner is request.module \
                else self._class_overlay(unit.owner)
            target.update(unit.bound_values)

    def _stored_names(self):
        """The names code of the module may assign, looked for once per apply."""
        if self.stored_names is None:
            self.stored_names = _names_stored_by_code(self.request.module, self.request.file)
        return self.stored_names

    def _computed_values(self, unit):
        """{name: value} when the unit is `NAME = expression` at module
        level, the expression only names, literals and operators
        (`DOUBLE = RATE * 2`, `X if FLAG else Y`), and every name it uses is
        plain immutable data in the module (as this patch leaves it: a
        changed RATE above counts) that no code of the module assigns: then
        its value is what the module's statement computes, and computing it
        runs no code (operators of built-in immutable types). None
        otherwise."""
        request = self.request
        if unit.owner is not request.module:
            return None
        try:
            tree = ast.parse(unit.source)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return None
        assigns = [node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))]
        if len(assigns) != 1 or len(tree.body) != 1:
            return None
        node = assigns[0]
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None or not all(isinstance(t, ast.Name) for t in targets) \
                or not all(isinstance(part, _COMPUTED_NODES) for part in ast.walk(node.value)):
            return None
        used = {part.id for part in ast.walk(node.value) if isinstance(part, ast.Name)}
        if not used:
            return None
        values = {}
        for name in used:
            value = self.overlay.get(name, request.module.__dict__.get(name, _MISSING))
            if value is _MISSING or not _is_immutable_data(value) or name in self._stored_names():
                return None
            values[name] = value
        try:
            # No builtins: a name not in `values` cannot be reached.
            value = eval(compile(ast.Expression(node.value), request.file, 'eval'), {'__builtins__': {}}, values)
        except Exception:
            return None
        return {target.id: value for target in targets}

    def _literal_differs(self, unit, name, value):
        """First touch: whether the live value of name is plain immutable
        data other than the file's literal, which nothing but the file can
        have set: no code of the module assigns or deletes that name, and
        no class machinery (a non-type metaclass, dataclass, attrs) owns
        the class body. A mutable value (a cache filled since import) and a
        counter the program keeps are state, not edits."""
        owner = unit.owner
        live = _namespace_get(owner, name)
        if not _is_immutable_data(live) or _const_equal(live, value):
            return False
        if isinstance(owner, type) and (_consumes_body(owner) or any(
                key in owner.__dict__ for key in ('__dataclass_fields__', '__attrs_attrs__', '_fields'))):
            return False
        request = self.request
        return name not in self._stored_names()

    def build(self, unit):
        """Executes the unit's innermost scope to get the new object."""
        if unit.verdict not in ('swap', 'define', 'rebind') or unit.nested():
            return
        if self.request.dry_run:
            # Nothing runs in a dry run: a verifying probe compares defaults
            # made without executing the unit; a plain one needs no object.
            if unit.verdict == 'swap' and self.request.verify:
                unit.new_fn = _InertFunction(self.request, unit, self.overlay).make()
            return
        scratch, code = self._scratch(unit, self.overlay)
        scratch['__pyhot_keep__'] = _keep
        self._exec_seeing_new_names(unit, code, scratch)
        cell = scratch.get('__classcell__')
        if isinstance(cell, _CELL_TYPE):
            cell.cell_contents = unit.owner
        unit.new_binding = _as_type_makes_it(unit, scratch.get(unit.key, _MISSING))
        file = self.request.file
        if unit.new_binding is _MISSING:
            raise _Failure('compile', "%s: the unit for %s does not bind '%s'"
                           % (file, unit.qualname, unit.key))
        for fn in _unwrap(unit.new_binding, unit.qualname, unit.name):
            if fn.__code__ is unit.new_code:
                unit.new_fn = fn
        if unit.new_fn is None and unit.verdict == 'swap':
            raise _Failure('compile', '%s: the unit for %s did not make a function'
                           % (file, unit.qualname))

    def publish(self, unit):
        """Makes a new or rebound object visible to the units after it."""
        if unit.nested() or unit.new_binding is _MISSING:
            return
        value = unit.new_binding
        if unit.verdict == 'swap':
            # A plain function swapped in place: the units after it (a
            # decorator factory edited with its use) call its new code, as a
            # fresh import would; a value they bind to it is the live function.
            if unit.old_binding is not unit.live_fn or unit.new_fn is None or self.request.dry_run:
                return
            value = unit.new_fn
            self.stand_ins[id(value)] = (value, unit.live_fn)
        elif unit.verdict not in ('define', 'rebind'):
            return
        target = self.overlay if unit.owner is self.request.module \
            else self._class_overlay(unit.owner)
        target[unit.key] = value

    def live_value(self, value, depth=0):
        """The live function a swapped function's stand-in becomes, also
        inside the plain containers a statement built (`handlers = [f, g]`),
        which are copied, never changed."""
        entry = self.stand_ins.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        if not self.stand_ins or depth >= 3:
            return value
        kind = type(value)
        if kind in (list, tuple, set, frozenset):
            items = [self.live_value(item, depth + 1) for item in value]
            if any(a is not b for a, b in zip(items, value)):
                return kind(items)
        elif kind is dict:
            items = {key: self.live_value(item, depth + 1) for key, item in value.items()}
            if any(items[key] is not value[key] for key in value):
                return items
        return value

    def _class_overlay(self, cls):
        self.overlay_classes[id(cls)] = cls
        return self.class_overlays.setdefault(id(cls), {})

    def _scratch(self, unit, base):
        """The namespace a unit runs in, and the code to run there: the
        module-level text, or the class body (over base) for a unit inside
        a class."""
        if unit.owner is self.request.module:
            return dict(self.overlay), unit.code
        scratch = dict(base)
        scratch.update(unit.owner.__dict__)
        scratch.update(self.class_overlays.get(id(unit.owner), {}))
        return scratch, unit.body_code

    def _exec_seeing_new_names(self, unit, code, scratch):
        """A class body is a scope of its own: it reads the module's
        globals, not the scratch namespace, so a class that uses an import
        added above it in the same patch (`import functools` for
        `@functools.cached_property`) would raise NameError. Likewise code
        that reads a method the patch adds to a live class above it
        (`binomialvariate = _inst.binomialvariate`, a decorator doing
        `getattr(SSLObject, func.__name__)`) reads the live class, not the
        overlay. The names the patch binds that the module or class lacks
        (a class: nowhere in its MRO, so nothing inherited is shadowed) are
        there while the unit runs (no code of the program can hold a
        reference to a name that does not exist yet), and gone again after
        it: commit binds them."""
        module_dict = self.request.module.__dict__
        added = [(module_dict, key, self.overlay[key]) for key in self.overlay if key not in module_dict] \
            if unit.owner is self.request.module else []
        added_to_classes = []
        for owner, names in self.class_overlays.items():
            cls = self.overlay_classes[owner]
            if not isinstance(cls, type) or not _is_writable_class(cls):
                continue
            for key, value in names.items():
                if not any(key in base.__dict__ for base in cls.__mro__):
                    added_to_classes.append((cls, key, value))
        try:
            for namespace, key, value in added:
                namespace[key] = value
            for cls, key, value in added_to_classes:
                # type's own: a metaclass's __setattr__ is code of the program.
                type.__setattr__(cls, key, value)
            self._exec(code, scratch)
        finally:
            for namespace, key, _ in added:
                namespace.pop(key, None)
            for cls, key, _ in added_to_classes:
                if key in cls.__dict__:
                    type.__delattr__(cls, key)

    def _exec(self, code, scratch):
        if self.request.dry_run:
            # A dry run executes no user code (SECURITY.md): reaching here is a bug.
            raise _Failure('internal', 'a dry run tried to execute code')
        try:
            exec(code, self.request.module.__dict__, scratch)
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt and the like from user code end
            # this request only, never the agent's thread.
            raise _Failure('compile', _where(exc, self.request.file) + _exception_text(exc))


# -- checking: the rules, and which units a verify finds unchanged ------------

def _check_unit(unit, verify):
    if verify and unit.name == '__new__' and not unit.nested() and _enum_made_members(unit):
        return
    if unit.verdict == 'swap' and not unit.nested():
        old, new = unit.live_fn.__code__, unit.new_code
        if old.co_freevars != new.co_freevars:
            if verify:
                unit.status = 'freevars_changed'
                return
            raise _Failure('refused', '%s: free variables changed (%s -> %s): needs rebind'
                           % (unit.qualname, ', '.join(old.co_freevars) or 'none',
                              ', '.join(new.co_freevars) or 'none'))
        if verify and unit.old_binding is not _MISSING:
            # (Missing: the function is live under another name, `new = _f; del _f`.)
            unit.wrapped = unit.old_binding is not unit.live_fn
        if verify and _code_equal(old, new) and all(
                _values_equal(getattr(unit.live_fn, a), getattr(unit.new_fn, a))
                for a in ('__defaults__', '__kwdefaults__')):
            # Not __doc__: the docstring is a constant of the code compared
            # above, so a different __doc__ was set by module code below the
            # definition (`f.__doc__ = TEMPLATE.format(...)`), as it is in a
            # fresh import.
            delta = new.co_firstlineno - old.co_firstlineno
            if _lines_moved_by(old, new, delta):
                unit.status = 'unchanged'
                unit.moved = delta   # first touch: the client relocates it
            # else lines inside it differ: a swap gives the file's lines
    elif unit.verdict == 'swap':
        old = unit.old_chain[-1]
        if old.co_freevars != unit.new_code.co_freevars:
            if verify:
                unit.status = 'freevars_changed'
                return
            raise _Failure('refused', '%s: free variables changed: needs rebind'
                           % unit.qualname)
        if verify and _code_equal(old, unit.new_code):
            unit.status = 'unchanged'
    elif unit.verdict == 'define' and verify and isinstance(unit.old_binding, type):
        # First touch: a class that exists is left as it is, unless its
        # members (built when it was created) are not the body's.
        members = _enum_members_changed(unit)
        unit.status = 'fields_changed' if members else 'unchanged'
        unit.message = members
        if not members:
            unit.moved = _class_moved_by(unit)
    elif unit.verdict == 'define' and verify and unit.old_binding is _MISSING \
            and unit.kind == 'class' and _consumes_body(unit.owner):
        # `class Meta:` in a Django model: the metaclass took it out of the
        # class; without the imported text it cannot be told from a new one.
        unit.status = 'unchanged'
        unit.message = 'not compared: the metaclass of %s consumed its class body' % unit.owner.__qualname__
    elif unit.verdict == 'define' and verify and unit.old_binding is _MISSING:
        unit.status = 'missing'
    elif unit.verdict in ('define', 'rebind') and verify and not unit.nested():
        if unit.old_binding is not _MISSING and not isinstance(unit.old_binding, type):
            live = _unwrap(unit.old_binding, unit.qualname, unit.name)
            if live and _code_equal(live[-1].__code__, unit.new_code):
                unit.status = 'unchanged'
    elif unit.verdict == 'relocate' and unit.live_fn is not None:
        unit.new_code = _shift_code(unit.live_fn.__code__, unit.line_delta)
    elif unit.verdict == 'delete' and not unit.nested():
        if unit.old_binding is _MISSING:
            unit.status = 'unchanged'
            unit.message = 'already absent'


class _Makers(object):
    """Which module-level function of a module made a function: the one
    whose code holds the function's code among its nested code objects (a
    decorator's closure is made only by running the decorator). Built on
    the first question, once per request."""

    def __init__(self, module):
        self.module = module
        self.by_code = None

    def of(self, obj):
        code = getattr(obj, '__code__', None) if isinstance(obj, types.FunctionType) else None
        if code is None:
            return None
        if self.by_code is None:
            self.by_code = {}
            for name, value in list(self.module.__dict__.items()):
                if not isinstance(value, types.FunctionType) or value.__globals__ is not self.module.__dict__:
                    continue
                stack = [value.__code__]
                while stack:
                    for const in stack.pop().co_consts:
                        if isinstance(const, types.CodeType):
                            self.by_code.setdefault(id(const), (const, name))
                            stack.append(const)
        entry = self.by_code.get(id(code))
        return entry[1] if entry is not None and entry[0] is code else None


def _consumes_body(owner):
    """Whether owner is a class made by a metaclass that may take names
    out of the class body (anything but type and ABCMeta)."""
    import abc
    return isinstance(owner, type) and type(owner) not in (type, abc.ABCMeta)


def _class_moved_by(unit):
    """3.13+, first touch: how many lines a live class without functions in
    its body moved (its __firstlineno__ against the file's), so the client
    relocates it; a class with methods gets it with them (_queue_class_facts)."""
    first = unit.old_binding.__dict__.get('__firstlineno__')
    if not isinstance(first, int) or unit.code is None:
        return 0
    queue = [unit.code]
    while queue:
        code = queue.pop()
        if getattr(code, 'co_qualname', None) == unit.qualname and '__firstlineno__' in code.co_names:
            if any(isinstance(c, types.CodeType) for c in code.co_consts):
                return 0
            return code.co_firstlineno - first
        queue.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return 0


def _enum_made_members(unit):
    """First touch, a __new__ in the body of a live Enum: its metaclass made
    the members with it and put Enum.__new__ in its place, so only the same
    code is unchanged; another one (or a new one) needs a restart."""
    enum = sys.modules.get('enum')
    if enum is None or not isinstance(unit.owner, enum.EnumMeta):
        return False
    made = unit.owner.__dict__.get('_new_member_', unit.owner.__dict__.get('__new_member__'))
    if isinstance(made, types.FunctionType) and unit.new_code is not None \
            and _code_equal(made.__code__, unit.new_code):
        unit.status = 'unchanged'
    else:
        unit.status = 'fields_changed'
        unit.message = '__new__'
    return True


def _enum_members_changed(unit):
    """For a live Enum: how the members assigned in the unit's class body
    differ from the live ones ('+BLUE, -GREEN, RED: 1 -> 5'), or None."""
    enum = sys.modules.get('enum')
    cls = unit.old_binding
    if enum is None or not isinstance(cls, enum.EnumMeta):
        return None
    try:
        tree = ast.parse(unit.source)
    except (SyntaxError, ValueError):
        return None
    body = next((node.body for node in ast.walk(tree)
                 if isinstance(node, ast.ClassDef) and node.name == unit.name), None)
    if body is None:
        return None
    assigned = {}
    for node in body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name) and not (target.id.startswith('_') and target.id.endswith('_')):
                assigned[target.id] = node.value
    live = cls.__members__
    # A descriptor assigned in the body is in the class, not a member.
    words = ['+' + name for name in assigned if name not in live and name not in cls.__dict__]
    words += ['-' + name for name in live if name not in assigned]
    # With a __new__ of its own a member's value is what __new__ made of
    # the assigned arguments (`EARTH = (1, 2)` with `_value_ = mass`).
    makes_values = any(isinstance(node, ast.FunctionDef) and node.name == '__new__' for node in body)
    for name, node in assigned.items():
        if name in live and not makes_values:
            try:
                value = ast.literal_eval(node)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue   # auto(), a call: not compared
            if not _values_equal(value, live[name].value):
                words.append('%s: %r -> %r' % (name, live[name].value, value))
    return ', '.join(words) or None


# -- nested code: which old code objects become which new ones ----------------

class _NestedPlan(object):
    """Nested functions are changed through their enclosing function's code
    and through the live closures made from it."""

    def __init__(self, units, lineage):
        self.units = units
        self.lineage = lineage
        self.code_map = {}      # id(old code) -> (old, new): closures to swap
        self.derived = {}       # id(outer fn) -> (fn, {id(old code): new code})
        self.kept_codes = []    # old nested code of rebind units: closures keep it

    def _outer_unit(self, unit):
        for other in self.units:
            if (other.qualname == unit.outer_qualname and not other.nested()
                    and other.verdict in ('swap', 'relocate') and other.status is None):
                return other
        return None

    def plan(self):
        for unit in self.units:
            if not unit.nested() or unit.status is not None:
                continue
            outer = self._outer_unit(unit)
            if unit.verdict in ('define', 'delete', 'rebind'):
                if outer is None or outer.verdict != 'swap':
                    raise _Failure('refused', '%s %s needs its enclosing function %s '
                                   'swapped in the same patch'
                                   % (unit.verdict, unit.qualname, unit.outer_qualname))
                unit.message = 'takes effect on the next call of %s' % unit.outer_qualname
                if unit.verdict == 'rebind' and unit.old_chain is not None:
                    self.kept_codes.append(unit.old_chain[-1])
                continue
            if outer is not None and outer.new_code is not None:
                self._map_through_outer(unit, outer)
            else:
                self._derive_outer(unit)
        for unit in self.units:
            # Lambdas have no definition of their own to send: closures made
            # by a swapped function's lambdas get their new code with it.
            if unit.verdict == 'swap' and unit.status is None and not unit.nested() \
                    and unit.live_fn is not None and unit.new_code is not None:
                pairs = []
                _pair_lambdas(unit.live_fn.__code__, unit.new_code, pairs)
                for old, new in pairs:
                    if id(old) not in self.code_map:
                        self._map_code(old, new)
        for fn, replacements in self.derived.values():
            rebuilt = _rebuild_code(fn.__code__, replacements)
            pairs = []
            _pair_nested(fn.__code__, rebuilt, pairs)
            for old, new in pairs:
                if id(old) not in self.code_map:
                    self._map_code(old, new)
            replacements['new'] = rebuilt

    def _map_through_outer(self, unit, outer):
        """The enclosing function is swapped too: pair the old chain of
        nested code with the one in its new code."""
        new_chain = [outer.new_code]
        for j in range(unit.fn_index + 1, len(unit.scopes)):
            new_chain.append(_child_code(new_chain[-1], unit.scopes[j]['name'],
                                         _scope_qualname(unit.scopes, j)))
            if new_chain[-1] is None:
                break
        else:
            new_chain.append(_child_code(new_chain[-1], unit.name, unit.qualname))
        if new_chain[-1] is None:
            raise _Failure('compile', 'the new code of %s has no %s'
                           % (unit.outer_qualname, unit.qualname))
        for old, new in zip(unit.old_chain[1:], new_chain[1:]):
            self._map_code(old, new)

    def _derive_outer(self, unit):
        """Only the nested function changes: the enclosing function gets a
        copy of its code with the nested code replaced."""
        old_chain = unit.old_chain
        if unit.verdict == 'relocate':
            new_target = _shift_code(old_chain[-1], unit.line_delta)
        else:
            new_target = unit.new_code
        entry = self.derived.setdefault(id(unit.outer_fn), (unit.outer_fn, {}))
        entry[1][id(old_chain[-1])] = new_target
        self._map_code(old_chain[-1], new_target)

    def _map_code(self, old, new):
        self.code_map[id(old)] = (old, new)
        for ancestor in self.lineage.ancestors(old):
            self.code_map.setdefault(id(ancestor), (ancestor, new))

    def scan_closures(self):
        """Live functions running an old nested code object (one heap scan)."""
        kept_codes = {}
        for code in self.kept_codes:
            for c in [code] + self.lineage.ancestors(code):
                kept_codes[id(c)] = c
        if not self.code_map and not kept_codes:
            return [], []
        olds = tuple(old for old, _ in self.code_map.values()) + tuple(kept_codes.values())
        swaps, kept = [], []
        for obj in gc.get_referrers(*olds):
            if not isinstance(obj, types.FunctionType):
                continue
            if kept_codes.get(id(obj.__code__)) is obj.__code__:
                kept.append(obj)
                continue
            entry = self.code_map.get(id(obj.__code__))
            if entry is None or entry[0] is not obj.__code__:
                continue
            if obj.__code__.co_freevars == entry[1].co_freevars:
                swaps.append((obj, entry[1]))
            else:
                kept.append(obj)
        return swaps, kept

    def count_closures(self, swaps, kept):
        for unit in self.units:
            if not unit.nested() or unit.status is not None or unit.old_chain is None:
                continue
            target = unit.old_chain[-1]
            olds = set([id(target)] + [id(a) for a in self.lineage.ancestors(target)])
            if unit.verdict == 'rebind':
                held = sum(1 for fn in kept if id(fn.__code__) in olds)
                unit.message = '%d existing closure(s) of %s keep the old code; ' \
                    'new calls of %s make new ones' % (held, unit.qualname, unit.outer_qualname)
            elif unit.verdict in ('swap', 'relocate'):
                unit.objects = sum(1 for fn, _ in swaps if id(fn.__code__) in olds)
                held = sum(1 for fn in kept if id(fn.__code__) in olds)
                if held:
                    unit.message = '%d closure(s) of %s keep the old code (free variables differ)' \
                        % (held, unit.qualname)
                elif unit.objects == 0:
                    unit.message = 'no live closure; new calls of %s use the new code' \
                        % unit.outer_qualname
                else:
                    unit.message = 'swapped %d live closure(s)' % unit.objects


# -- committing: the writes, queued and then made at once ---------------------

def _class_body_facts(source, file, flags):
    """3.13+: {class qualname: {'__firstlineno__': n, '__static_attributes__':
    (...)}} as a fresh import of source sets them (compiled, never run)."""
    try:
        code = compile(source, file, 'exec', flags, True)
    except (SyntaxError, ValueError, TypeError):
        return {}
    facts = {}
    queue = [code]
    while queue:
        code = queue.pop()
        queue.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if '__static_attributes__' not in code.co_names:
            continue
        found = {}
        previous = None
        for instruction in dis.get_instructions(code):
            if instruction.opname == 'STORE_NAME' and previous is not None \
                    and previous.opname == 'LOAD_CONST' \
                    and instruction.argval in ('__firstlineno__', '__static_attributes__'):
                found[instruction.argval] = previous.argval
            previous = instruction
        facts[getattr(code, 'co_qualname', code.co_name)] = found
    return facts


class _Commit(object):
    """Queues every change of a worked-out apply into actions, then makes
    the writes together."""

    def __init__(self, units, nested, lineage, request=None):
        self.units = units
        self.nested = nested
        self.lineage = lineage
        self.request = request

    def _queue_class_facts(self, actions):
        """3.13+: a class whose methods changed or moved gets the
        __firstlineno__ and __static_attributes__ a fresh import gives it."""
        request = self.request
        source = getattr(request, 'new_source', None)
        if sys.version_info < (3, 13) or source is None:
            return
        classes = {}
        for unit in self.units:
            if unit.status is not None:
                continue
            if isinstance(unit.owner, type):
                classes[id(unit.owner)] = unit.owner
            if isinstance(unit.old_binding, type) and unit.verdict == 'relocate':
                classes[id(unit.old_binding)] = unit.old_binding
        if not classes:
            return
        facts = _class_body_facts(source.text(), request.file, request.flags)
        for cls in classes.values():
            for name, value in facts.get(cls.__qualname__, {}).items():
                if _is_writable_class(cls) and cls.__dict__.get(name, _MISSING) != value:
                    _bind(actions, cls, name, value)

    def run(self, actions):
        for unit in self.units:
            if unit.verdict == 'reexec' and unit.status is None:
                # `add = lambda x: ...` re-run: whoever took the old lambda
                # (a callback list, `held = m.add`) runs the new code, as
                # with a def; the name keeps the live lambda.
                for live, new in unit.lambda_swaps:
                    _swap_function(actions, live, new)
                for key, value in unit.bound_values:
                    if _namespace_get(unit.owner, key) is not value:
                        _bind(actions, unit.owner, key, value)
                unit.objects = len(unit.bound_values)
                for module, key, value in unit.copies:
                    _bind(actions, module, key, value)
                if unit.copies:
                    unit.message = 'also updated in ' + ', '.join(sorted(set(
                        '%s.%s' % (m.__name__, k) for m, k, _ in unit.copies)))
        rebinds = self._queue_top_level(actions)
        self._queue_wrappers(actions)
        for fn, replacements in self.nested.derived.values():
            _set_code(actions, fn, replacements['new'])
        swaps, kept = self.nested.scan_closures()
        self.nested.count_closures(swaps, kept)
        for fn, new in swaps:
            _set_code(actions, fn, new)
        if rebinds:
            _RebindSweep(rebinds).run(actions)
        self._queue_class_facts(actions)
        actions.writes.apply()
        for owner, key, value in actions.after_writes:
            _set_name(owner, key, value)
        self._record_lineage()

    def _queue_wrappers(self, actions):
        """functools.wraps copied __doc__ and __annotations__ from the
        function swapped: a wrapper whose __wrapped__ it is and that still
        holds its old values gets the new ones, as a fresh import's would.
        Wrappers are looked for where the live function was found (the
        module's or class's binding and what it wraps), not through the
        garbage collector: a heap scan held the GIL for milliseconds per
        patch in a large program (8 ms at 20,000 functions), whatever
        the patch was. A wrapper kept only elsewhere (a registry) keeps
        its copied __doc__."""
        for unit in self.units:
            if unit.status is not None or unit.verdict != 'swap' or unit.nested() \
                    or unit.live_fn is None or unit.new_fn is None:
                continue
            live, new = unit.live_fn, unit.new_fn
            for wrapper in _reachable_functions(unit.old_binding):
                if wrapper.__dict__.get('__wrapped__') is not live:
                    continue
                values = {}
                if wrapper.__doc__ == live.__doc__ and new.__doc__ != live.__doc__ \
                        and not (new.__doc__ == _code_docstring(live.__code__)):
                    values['__doc__'] = new.__doc__
                if wrapper.__annotations__ is live.__annotations__:
                    values['__annotations__'] = new.__annotations__
                if values:
                    actions.append(('function', wrapper) + tuple(getattr(wrapper, a) for a in _FUNCTION_STATE))
                    for attr, value in values.items():
                        actions.writes.attribute(wrapper, attr, value)

    def _queue_top_level(self, actions):
        """Queues the units that change a module or class binding; returns
        the rebind units, whose old objects are swept for afterwards."""
        targeted = set(id(u.live_fn) for u in self.units if u.live_fn is not None)
        rebinds = []
        for unit in self.units:
            if unit.status is not None or unit.verdict == 'reexec' or unit.nested():
                continue
            if unit.verdict == 'swap':
                _swap_function(actions, unit.live_fn, unit.new_fn)
                unit.objects = 1
            elif unit.verdict == 'relocate':
                unit.objects = self._relocate(actions, unit, targeted)
            elif unit.verdict == 'define':
                _bind(actions, unit.owner, unit.key, unit.new_binding)
                actions.after_writes.append((unit.owner, unit.key, unit.new_binding))
                unit.objects = 1
            elif unit.verdict == 'delete':
                _bind(actions, unit.owner, unit.key, _MISSING)
                unit.objects = 1
            elif unit.verdict == 'rebind':
                _bind(actions, unit.owner, unit.key, unit.new_binding)
                rebinds.append(unit)
        return rebinds

    def _record_lineage(self):
        pairs = [entry for entry in self.nested.code_map.values()
                 if entry[0].co_freevars == entry[1].co_freevars]
        for unit in self.units:
            if unit.status is None and unit.verdict in ('swap', 'relocate') \
                    and unit.live_fn is not None and unit.new_code is not None:
                nested = []
                _pair_nested(unit.old_code, unit.new_code, nested)
                pairs.extend((o, n) for o, n in nested if o.co_freevars == n.co_freevars)
        self.lineage.record(pairs)

    def _relocate(self, actions, unit, targeted):
        delta = unit.line_delta
        if delta == 0:
            return 0
        functions = []
        if unit.orphans:
            functions = unit.orphans
        elif isinstance(unit.old_binding, type):
            _collect_class_functions(unit.old_binding, functions, set())
            first = unit.old_binding.__dict__.get('__firstlineno__')
            if isinstance(first, int):
                _bind(actions, unit.old_binding, '__firstlineno__', first + delta)
        else:
            _set_code(actions, unit.live_fn, unit.new_code)
            self._relocate_closures(unit.live_fn.__code__, unit.new_code)
            return 1
        count = 0
        for fn in functions:
            if id(fn) in targeted:
                continue
            pairs = []
            moved = _shift_code(fn.__code__, delta, pairs)
            _set_code(actions, fn, moved)
            self.lineage.record(pairs)
            self._relocate_closures(fn.__code__, moved)
            count += 1
        return count

    def _relocate_closures(self, old, moved):
        """Functions made earlier from the moved function's nested code
        (`size = _make_accessor("size")`) move with it: they join the
        closures the commit's one heap scan swaps."""
        pairs = []
        _pair_nested(old, moved, pairs)
        for nested_old, nested_new in pairs:
            # A swap of the same nested code (a unit of its own) wins.
            if nested_old.co_freevars == nested_new.co_freevars \
                    and id(nested_old) not in self.nested.code_map:
                self.nested._map_code(nested_old, nested_new)


class _RebindSweep(object):
    """Replaces the old objects of rebind units wherever a dict, a list or
    an instance holds them; reports what still holds them."""

    def __init__(self, units):
        self.units = units
        self.replace = {}       # id(old) -> (old, new in a class, new elsewhere)
        self.holders = {}       # id(old) -> {what: count}
        for unit in units:
            new = unit.new_binding
            self.replace[id(unit.old_binding)] = (unit.old_binding, new, self._outside_class(unit.old_binding, new))
            if unit.live_fn is not None and unit.new_fn is not None \
                    and unit.live_fn is not unit.old_binding:
                self.replace.setdefault(id(unit.live_fn), (unit.live_fn, unit.new_fn, unit.new_fn))
        # Methods of classes: a bound method of the old function is made
        # again from the new binding (`build = Tool.build` after build
        # became a staticmethod is the function, as in a fresh import).
        self.methods_of = dict((id(unit.live_fn), unit) for unit in units
                               if isinstance(unit.owner, type) and unit.live_fn is not None
                               and unit.new_binding is not _MISSING)
        self.methods = {}       # id(old bound method) -> (it, what the binding gives now)

    @staticmethod
    def _outside_class(old, new):
        """What a holder outside a class gets: a method that became a
        classmethod or staticmethod is held as a function (a fresh
        `Parser.parse` would never give the raw descriptor, which is not
        callable before 3.10); a class dict gets the descriptor itself."""
        if type(new) in (classmethod, staticmethod) and isinstance(old, types.FunctionType):
            return new.__func__
        return new

    def run(self, actions):
        olds = tuple(old for old, _, _ in self.replace.values())
        dicts = self._scan_referrers(actions, gc.get_referrers(*olds))
        self._replace_in_dicts(actions, dicts)
        if self.methods:
            self._replace_methods(actions)
        self._report()

    def _bound_again(self, method):
        """What `method.__self__.name` gives now, or None where binding the
        new object could run user code (a descriptor of another kind)."""
        unit = self.methods_of.get(id(method.__func__))
        if unit is None or unit.live_fn is not method.__func__:
            return None
        new = unit.new_binding
        if type(new) not in (types.FunctionType, classmethod, staticmethod):
            return None
        bound_to = method.__self__
        if isinstance(bound_to, type):
            # A classmethod's binding: what `Tool.build` gives now.
            return new.__get__(None, bound_to)
        if isinstance(new, types.FunctionType):
            return types.MethodType(new, bound_to)
        return new.__get__(bound_to, type(bound_to))

    def _replace_methods(self, actions):
        """The bound methods of old functions where a dict or a list holds
        them (module globals, instance attributes, registries)."""
        methods = tuple(method for method, _ in self.methods.values())
        replaced = set()
        for ref in gc.get_referrers(*methods):
            if type(ref) is dict:
                items = list(ref.items())
            elif type(ref) is list:
                items = list(enumerate(ref))
            else:
                continue
            for key, value in items:
                entry = self.methods.get(id(value))
                if entry is None or entry[0] is not value:
                    continue
                actions.append(('slot', ref, key, value, entry[1]))
                actions.writes.item(ref, key, entry[1])
                _credit(self.holders, value.__func__, 'replaced')
                replaced.add(id(value))
        for method in methods:
            if id(method) not in replaced:
                # Held where it cannot be replaced (a tuple, a frame).
                _credit(self.holders, method.__func__, 'bound method')

    def _held(self, value):
        entry = self.replace.get(id(value))
        return entry if entry is not None and entry[0] is value else None

    def _scan_referrers(self, actions, referrers):
        """Replaces the old objects in lists, credits what else holds them;
        returns the dicts (namespaces, instance dicts) to look into."""
        dicts = []
        for ref in referrers:
            if type(ref) is dict:
                dicts.append(ref)
            elif type(ref) is list:
                for index, value in enumerate(ref):
                    entry = self._held(value)
                    if entry is not None:
                        actions.append(('slot', ref, index, value, entry[2]))
                        actions.writes.item(ref, index, entry[2])
                        _credit(self.holders, value, 'replaced')
            elif isinstance(ref, _CELL_TYPE):
                # A wrapper made earlier (`retry(f)`, a decorator run by
                # other code) calls what its cell holds: the new object.
                value = ref.cell_contents
                entry = self._held(value)
                if entry is not None:
                    actions.append(('cell', ref, value, entry[2]))
                    actions.writes.attribute(ref, 'cell_contents', entry[2])
                    _credit(self.holders, value, 'replaced')
                else:
                    _credit(self.holders, value, 'closure cell')
            elif isinstance(ref, types.MethodType):
                again = self._bound_again(ref)
                if again is not None:
                    self.methods[id(ref)] = (ref, again)
                else:
                    _credit(self.holders, ref.__func__, 'bound method')
            elif isinstance(ref, functools.partial):
                _credit(self.holders, ref.func, 'partial')
            elif not isinstance(ref, (types.FrameType, types.FunctionType, type,
                                      types.ModuleType, staticmethod, classmethod,
                                      property)):
                attrs = _instance_dict(ref)
                if attrs is not None:
                    dicts.append(attrs)
        return dicts

    def _replace_in_dicts(self, actions, dicts):
        units = self.units
        class_dicts = {}
        if dicts:
            for owner in gc.get_referrers(*tuple(dicts)):
                if isinstance(owner, type):
                    real = gc.get_referents(owner.__dict__)
                    if real:
                        class_dicts[id(real[0])] = owner
        # The rebound names themselves are already queued by the commit.
        own_bindings = set((id(unit.owner), unit.key) for unit in units)
        seen = set()
        for d in dicts:
            if id(d) in seen:
                continue
            seen.add(id(d))
            for key, value in list(d.items()):
                entry = self._held(value)
                if entry is None:
                    continue
                owner = class_dicts.get(id(d))
                holder = owner if owner is not None else next(
                    (u.owner for u in units if not isinstance(u.owner, type)
                     and u.owner.__dict__ is d), None)
                if holder is not None and (id(holder), key) in own_bindings:
                    continue
                if owner is not None:
                    _bind(actions, owner, key, entry[1])
                else:
                    actions.append(('slot', d, key, value, entry[2]))
                    actions.writes.item(d, key, entry[2])
                _credit(self.holders, value, 'replaced')

    def _report(self):
        for unit in self.units:
            counts = self.holders.get(id(unit.old_binding), {})
            if unit.live_fn is not None and unit.live_fn is not unit.old_binding:
                for k, v in self.holders.get(id(unit.live_fn), {}).items():
                    counts[k] = counts.get(k, 0) + v
            unit.objects = 1 + counts.pop('replaced', 0)
            if counts:
                unit.message = 'still running the old code: ' + ', '.join(
                    '%d %s(s)' % (n, what) for what, n in sorted(counts.items()))


# -- the whole apply ------------------------------------------------------------

class _Apply(object):
    """One apply request, worked out completely before anything changes."""

    def __init__(self, lineage, request):
        self.request = _ApplyRequest(request)
        self.units = self.request.units
        self.nested = _NestedPlan(self.units, lineage)
        self.lineage = lineage

    def prepare(self):
        request = self.request
        for unit in self.units:
            _compile_unit(unit, request.file, request.flags)
        resolver = _LiveResolver(request.module_name, request.module)
        for unit in self.units:
            try:
                resolver.resolve(unit)
            except _Foreign as failure:
                # A fresh import binds the built-in too: leave it.
                unit.status = 'unchanged'
                unit.message = failure.message
            except _Failure as failure:
                # Not a nested unit: closures made from a deleted function
                # (`environ = _make()` then `del _make`) would keep old code.
                if failure.kind == 'not_found' and unit.conditional and not request.verify \
                        and unit.verdict == 'relocate' and not unit.nested() and unit.kind == 'function':
                    # The module deleted the function, not what it made:
                    # those move with its lines, as in a fresh import.
                    unit.orphans = resolver.made_inside(unit.qualname, unit.old_first_line() if unit.duplicate else 0)
                    if unit.orphans:
                        continue
                if failure.kind == 'not_found' and unit.conditional and not request.verify \
                        and not unit.nested() and not _makes_functions(unit.code) \
                        and unit.verdict in ('swap', 'relocate', 'rebind', 'define', 'delete'):
                    # `if sys.platform == "win32": def f` on Linux, `del f`
                    # below it: a fresh import lacks it too.
                    unit.status = 'unchanged'
                    unit.message = ('not in the live module (its block did not run, or the module '
                                    'deletes it), as after a fresh import')
                    continue
                # First touch: the client asks which candidates exist live.
                if not (request.verify and failure.kind == 'not_found'):
                    raise
                if unit.old_binding is not _MISSING and unit.verdict in ('swap', 'rebind') \
                        and not unit.nested():
                    # The name is bound to what is no function of this
                    # definition (Enum put its own __new__ in place of the
                    # one that made the members): defining it would undo that.
                    unit.status = 'unchanged'
                    unit.message = failure.message
                    continue
                unit.status = 'missing'
        for unit in self.units:
            if unit.verdict == 'define' and unit.only_if_missing and unit.status is None \
                    and not unit.nested() and unit.old_binding is not _MISSING:
                # `def call` above `from _operator import *` (operator): the
                # import rebinds the name, in the live module as in a fresh
                # import, and what the patch runs sees the live one.
                unit.status = 'unchanged'
                unit.message = 'bound by an import below it, as after a fresh import'
        _settle_duplicates(self.units, request.verify)
        execution = _Execution(request)
        # In the order a fresh import runs the file: a statement sees the
        # classes and functions defined above it, a definition the values
        # bound above it.
        for unit in self.units:
            if unit.verdict == 'reexec':
                if unit.status is None:
                    execution.run_reexec([unit])
                continue
            if unit.status in ('missing', 'unchanged'):
                continue
            try:
                execution.build(unit)
            except _Failure as failure:
                # A first-touch probe runs no statements, so defaults may name
                # constants the real apply binds first: compare code only.
                if not (request.verify and request.dry_run and failure.kind == 'compile'):
                    raise
                unit.status = 'would_apply'
                unit.message = 'defaults could not be compared: ' + failure.message
            execution.publish(unit)
        makers = _Makers(request.module)
        for unit in self.units:
            if unit.status not in ('missing', 'would_apply', 'unchanged'):
                _check_unit(unit, request.verify)
            if unit.wrapped and unit.owner is request.module:
                unit.made_by = makers.of(unit.old_binding)
            elif unit.wrapped and type(unit.old_binding) in (classmethod, staticmethod):
                # A method whose decorator changed between the two (first
                # touch: classmethod in the live class, staticmethod in the file).
                unit.made_by = type(unit.old_binding).__name__
            if unit.verdict == 'reexec' and unit.status is None and unit.bound_values \
                    and unit.owner is request.module:
                unit.copies = _imported_copies(request.module_name, request.module, unit.bound_values)
        self.nested.plan()
        if not request.dry_run:
            for unit in self.units:
                if unit.status in ('missing', 'freevars_changed', 'fields_changed'):
                    raise _Failure('refused', '%s: %s in the live module; nothing was changed'
                                   % (unit.qualname, unit.status.replace('_', ' ')))

    def commit(self, actions):
        """Changes the live objects; every change is recorded in actions
        first so that the caller can undo it."""
        _Commit(self.units, self.nested, self.lineage, self.request).run(actions)

    def finish_dry_run(self):
        swaps, kept = self.nested.scan_closures()
        self.nested.count_closures(swaps, kept)
        for unit in self.units:
            if unit.status is None:
                unit.status = 'would_apply'
                if not unit.nested() and unit.verdict in ('swap', 'define', 'delete', 'rebind'):
                    unit.objects = 1
                elif unit.verdict == 'relocate' and not unit.nested():
                    unit.objects = 1
                elif unit.verdict == 'reexec':
                    unit.objects = len(unit.targets or ())
        return [unit.result() for unit in self.units]


def _settle_duplicates(units, verify):
    """Of several definitions with one qualname (overload stubs and the
    function, if/else branches), only the one the live function was made
    from is swapped: the one whose old start line is the live code's first
    line (on first touch, with no old lines, the one with the live code,
    else the nearest)."""
    groups = {}
    for unit in units:
        if unit.duplicate and unit.verdict == 'relocate' and unit.status is None \
                and isinstance(unit.live_fn, types.FunctionType) and not unit.nested() \
                and unit.live_fn.__code__.co_firstlineno != unit.old_first_line():
            # `else: def f` moved, the live f is the `if` branch's: moving
            # that one would shift lines that did not move.
            unit.status = 'unchanged'
            unit.message = 'another definition of %s is the live one' % unit.qualname
        if unit.duplicate and unit.verdict == 'swap' and unit.status is None \
                and unit.live_fn is not None and unit.new_code is not None:
            groups.setdefault(id(unit.live_fn), []).append(unit)
    for group in groups.values():
        live_line = group[0].live_fn.__code__.co_firstlineno

        def distance(unit):
            return abs(unit.new_code.co_firstlineno - unit.line_delta - live_line)
        chosen = None
        if verify:
            # The definition whose code is the live code, else the nearest.
            same = [u for u in group if _code_equal(u.live_fn.__code__, u.new_code)]
            chosen = same[0] if same else min(group, key=distance)
            if not same:
                # Swapped by the apply that follows, which has no old lines
                # either: its line_delta tells it which unit is the live one.
                chosen.moved = chosen.new_code.co_firstlineno - live_line
        for unit in group:
            if unit is chosen or (not verify and distance(unit) == 0):
                continue
            unit.status = 'unchanged'
            unit.message = 'another definition of %s is the live one' % unit.qualname


def _credit(holders, obj, what):
    counts = holders.setdefault(id(obj), {})
    counts[what] = counts.get(what, 0) + 1


def _collect_class_functions(cls, out, seen):
    prefix = cls.__qualname__ + '.'
    for value in list(cls.__dict__.values()):
        if isinstance(value, type):
            if value.__qualname__.startswith(prefix) and id(value) not in seen:
                seen.add(id(value))
                _collect_class_functions(value, out, seen)
            continue
        for fn in _unwrap_any(value):
            if fn.__qualname__.startswith(prefix) and id(fn) not in seen:
                seen.add(id(fn))
                out.append(fn)


def _unwrap_any(binding):
    """The user functions directly held by a class attribute."""
    if isinstance(binding, types.FunctionType):
        return [binding]
    if isinstance(binding, (staticmethod, classmethod)):
        return _unwrap_any(binding.__func__)
    if isinstance(binding, property):
        return [f for f in (binding.fget, binding.fset, binding.fdel)
                if isinstance(f, types.FunctionType)]
    return []


def _set_name(owner, key, value):
    if isinstance(owner, type):
        hook = getattr(type(value), '__set_name__', None)
        if hook is not None:
            hook(value, owner, key)


class _Writes(object):
    """The changes of one patch (or revert) to live objects, made together.

    They are queued while the patch is worked out and then made by a single
    C-level call (a deque draining chained starmaps over builtins): the
    interpreter only switches threads between bytecodes, and no bytecode runs
    inside that call, so no other thread ever sees half a patch. Nothing is
    deallocated during it (the old objects are kept for undo) and the cyclic
    GC is paused, so no finalizer can run Python code in between.
    """

    def __init__(self):
        self.attributes = []      # setattr(obj, name, value)
        self.items = []           # operator.setitem(container, key, value)
        self.item_deletions = []  # dict.pop(mapping, key, None)
        self.type_attributes = []  # type.__setattr__(cls, name, value)
        self.type_deletions = []  # type.__delattr__(cls, name)

    def attribute(self, obj, name, value):
        self.attributes.append((obj, name, value))

    def item(self, container, key, value):
        self.items.append((container, key, value))

    def binding(self, owner, key, value):
        """Sets (or with _MISSING removes) a binding in a module or class."""
        if isinstance(owner, type):
            if value is _MISSING:
                if key in owner.__dict__:
                    self.type_deletions.append((owner, key))
            else:
                self.type_attributes.append((owner, key, value))
        elif value is _MISSING:
            self.item_deletions.append((owner.__dict__, key, None))
        else:
            self.items.append((owner.__dict__, key, value))

    def apply(self):
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            collections.deque(itertools.chain(
                itertools.starmap(setattr, self.attributes),
                itertools.starmap(operator.setitem, self.items),
                itertools.starmap(dict.pop, self.item_deletions),
                itertools.starmap(type.__setattr__, self.type_attributes),
                itertools.starmap(type.__delattr__, self.type_deletions)), maxlen=0)
        finally:
            if gc_enabled:
                gc.enable()


class _Changes(list):
    """What a patch did, for undo (the list), and the writes still to make."""

    def __init__(self):
        list.__init__(self)
        self.writes = _Writes()
        self.after_writes = []   # __set_name__ hooks: they may run Python code


def _bind(actions, owner, key, value):
    """Sets (or with _MISSING removes) a binding in a module or class."""
    if isinstance(owner, type) and not _is_writable_class(owner):
        # Checked before anything is written: the patch stays all or nothing.
        raise _Failure('refused', 'cannot set %s of the built-in type %s; nothing was changed'
                       % (key, _type_name(owner)))
    old = owner.__dict__.get(key, _MISSING)
    actions.append(('bind', owner, key, old, value))
    actions.writes.binding(owner, key, value)


_FUNCTION_STATE = ('__code__', '__defaults__', '__kwdefaults__', '__annotations__', '__doc__')


def _code_docstring(code):
    consts = code.co_consts
    return consts[0] if consts and isinstance(consts[0], str) else None


def _same_lambda(live, new):
    """Whether a re-run statement's new lambda can take the place of the live
    one by its code: both lambdas of one file, neither a closure (a closure's
    cells belong to the scope that made it)."""
    return isinstance(live, types.FunctionType) and isinstance(new, types.FunctionType) \
        and live.__code__.co_name == '<lambda>' == new.__code__.co_name \
        and live.__code__.co_filename == new.__code__.co_filename \
        and live.__closure__ is None and new.__closure__ is None \
        and not live.__code__.co_freevars and not new.__code__.co_freevars \
        and live.__module__ == new.__module__


def _swap_function(actions, live, new):
    actions.append(('function', live) + tuple(getattr(live, a) for a in _FUNCTION_STATE))
    for attr in _FUNCTION_STATE:
        value = getattr(new, attr)
        if attr == '__doc__' and new.__doc__ == _code_docstring(live.__code__) \
                and live.__doc__ != new.__doc__:
            # The docstring did not change and module code below the
            # definition set another __doc__: a fresh import keeps that one.
            value = live.__doc__
        actions.writes.attribute(live, attr, value)


def _set_code(actions, fn, code):
    actions.append(('code', fn, fn.__code__))
    actions.writes.attribute(fn, '__code__', code)


def _undo(actions):
    """Undoes recorded actions (made or only queued), all at once; returns
    the errors met."""
    writes = _Writes()
    errors = []
    for action in reversed(actions):
        try:
            _undo_one(action, writes)
        except BaseException as exc:
            errors.append(_exception_text(exc))
    try:
        writes.apply()
    except BaseException as exc:
        errors.append(_exception_text(exc))
    return errors


def _undo_one(action, writes):
    what = action[0]
    if what == 'function':
        fn = action[1]
        for attr, value in zip(_FUNCTION_STATE, action[2:]):
            writes.attribute(fn, attr, value)
    elif what == 'code':
        writes.attribute(action[1], '__code__', action[2])
    elif what == 'bind':
        _, owner, key, old, new = action
        writes.binding(owner, key, old)
    elif what == 'cell':
        _, cell, old, new = action
        try:
            if cell.cell_contents is new:
                writes.attribute(cell, 'cell_contents', old)
        except ValueError:
            pass   # emptied since: nothing to put back
    elif what == 'slot':
        _, container, key, old, new = action
        if isinstance(container, list):
            if not (key < len(container) and container[key] is new):
                key = next((i for i, v in enumerate(container) if v is new), None)
            if key is not None:
                writes.item(container, key, old)
        elif container.get(key, _MISSING) is new:
            writes.item(container, key, old)


class _Patch(object):
    __slots__ = ('id', 'time', 'module', 'file', 'reverted', 'changes',
                 'actions', 'previous_snapshot', 'previous_lines', 'size', 'label')

    def to_json(self):
        out = {'id': self.id, 'time': self.time, 'module': self.module,
               'file': self.file, 'reverted': self.reverted,
               'changes': [dict(qualname=q, verdict=v) for q, v in self.changes]}
        if self.label is not None:
            out['label'] = self.label
        return out


# ---------------------------------------------------------------------------
# The agent

def _is_user_file(path):
    if not path.endswith('.py'):
        return False
    parts = path.split(os.sep)
    if 'site-packages' in parts or 'dist-packages' in parts:
        return False
    return not any(path.startswith(d + os.sep) for d in _stdlib_dirs())


@functools.lru_cache(maxsize=None)
def _stdlib_dirs():
    here = os.path.dirname(os.__file__)
    return tuple(set((here, os.path.realpath(here))))


def _real(path):
    try:
        return os.path.realpath(path)
    except Exception:
        return path


def _module_file(module):
    try:
        path = module.__dict__.get('__file__')
    except Exception:
        return None
    return path if isinstance(path, str) else None


def _is_agent(module):
    try:
        return module.__dict__.get('__pyhot_agent__') is True
    except Exception:
        return False


class _Lineage(object):
    """Code lineage: closures made before a relocation still run the code
    they were made with; later patches must find them too.

    Held weakly, so that the history's bound also bounds this: a code object
    nothing else keeps alive is no closure's code any more; when one dies,
    its children are linked to its own parent, so older code that a closure
    still runs stays reachable."""

    def __init__(self):
        self.parents = {}       # id(code) -> weakref to the code it replaced
        self.children = {}      # id(code) -> set of ids whose parent it is
        self.refs = {}          # id(code) -> weakref to it (with the callback)

    def _ref(self, code):
        ref = self.refs.get(id(code))
        if ref is None or ref() is not code:
            ref = weakref.ref(code, functools.partial(_Lineage._died, self, id(code)))
            self.refs[id(code)] = ref
        return ref

    def record(self, pairs):
        for old, new in pairs:
            if old is new:
                continue
            self._unlink(id(new))
            self._ref(new)
            self.parents[id(new)] = self._ref(old)
            self.children.setdefault(id(old), set()).add(id(new))

    def _unlink(self, key):
        parent = self.parents.pop(key, None)
        if parent is not None:
            siblings = self.children.get(id(parent()) if parent() is not None else None)
            if siblings is not None:
                siblings.discard(key)
        return parent

    def _died(self, key, ref):
        try:
            if self.refs.get(key) is not ref:
                return
            del self.refs[key]
            parent = self._unlink(key)
            for child in self.children.pop(key, ()):
                if parent is not None and parent() is not None:
                    self.parents[child] = parent
                    self.children.setdefault(id(parent()), set()).add(child)
                else:
                    self.parents.pop(child, None)
        except Exception:
            pass

    def ancestors(self, code):
        out = []
        ref = self.parents.get(id(code))
        while ref is not None and len(out) < 1000:
            code = ref()
            if code is None:
                break
            out.append(code)
            ref = self.parents.get(id(code))
        return out


_LINES_PER_SLICE = 4096


class _Snapshot(object):
    """The text that is live for a module, as its lines (shared with
    linecache, never changed in place), and the client's hash of it."""
    __slots__ = ('lines', 'hash', 'length')

    def __init__(self, lines, hash, length):
        self.lines = lines
        self.hash = hash
        self.length = length

    def text(self):
        return ''.join(self.lines)


def _new_source(request, recorded):
    """The applied text as a _Snapshot (hash not yet set): from `source`, or
    `source_edit` applied to the recorded snapshot; None when neither."""
    if request.source is not None:
        return _Snapshot(request.source.splitlines(True), None, len(request.source))
    if request.source_edit is None:
        return None
    return _edited(request.source_edit, recorded, request.module_name)


def _edited(edit, recorded, module_name):
    """A source_edit/snapshot_edit applied to the recorded snapshot."""
    base = _field(edit, 'base', str)
    start = _field(edit, 'start', int)
    end = _field(edit, 'end', int)
    text = _field(edit, 'text', str)
    if recorded is None or recorded.hash != base:
        raise _Failure('refused', 'the live text of %s changed since it was read: run the command again'
                       % module_name)
    if not 0 <= start <= end <= len(recorded.lines):
        raise _Failure('protocol', 'source_edit lines %d-%d are outside the snapshot' % (start, end))
    # A new list (pointers: no text is split or joined; the old list stays
    # as it was, for revert), copied in slices: one list() of a 115,000-line
    # module held the GIL for about a millisecond; between slices the
    # program's threads get their turn.
    old = recorded.lines
    lines = []
    _extend_in_slices(lines, old, 0, start)
    lines.extend(text.splitlines(True))
    _extend_in_slices(lines, old, end, len(old))
    return _Snapshot(lines, None, _field(edit, 'length', int))


def _extend_in_slices(lines, old, start, stop):
    """lines += old[start:stop], _LINES_PER_SLICE at a time (each slice one
    C call, the program's threads get the GIL between them)."""
    for first in range(start, stop, _LINES_PER_SLICE):
        lines.extend(old[first:min(first + _LINES_PER_SLICE, stop)])


def _release_in_slices(lists):
    """Lets go of line lists (a snapshot's, a replaced linecache entry's),
    freeing each whose last reference is in `lists` a slice at a time:
    freeing a 115,000-line list in one go held the GIL for 0.4-0.7 ms. A
    list still held elsewhere (its reference count says so) is only let go
    of."""
    while lists:
        lines = lists.pop()
        # Two references: `lines` and getrefcount's argument.
        if type(lines) is list and sys.getrefcount(lines) == 2:
            while len(lines) > _LINES_PER_SLICE:
                del lines[-_LINES_PER_SLICE:]
        del lines


def _install_lines(request, source):
    """Puts the applied source into linecache (tracebacks show the new
    lines); returns the entries it replaced, for revert."""
    if source is None:
        return None
    lines = source.lines
    if lines and not lines[-1].endswith('\n'):
        last = lines[-1] + '\n'
        lines = []
        _extend_in_slices(lines, source.lines, 0, len(source.lines) - 1)
        lines.append(last)
    names = [request.file]
    module_file = _module_file(request.module)
    if module_file and module_file not in names:
        names.append(module_file)
    previous = tuple((n, linecache.cache.get(n)) for n in names)
    for name in names:
        # mtime None: linecache.checkcache() keeps the entry.
        linecache.cache[name] = (source.length, None, lines, name)
    return previous


def _restore_lines(previous):
    for name, entry in previous or ():
        if entry is None:
            linecache.cache.pop(name, None)
        else:
            linecache.cache[name] = entry


def _code_size(code, seen):
    if id(code) in seen:
        return 0
    seen.add(id(code))
    size = sys.getsizeof(code) + len(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            size += _code_size(const, seen)
        else:
            size += sys.getsizeof(const)
    return size


def _patch_size(patch):
    """About how many bytes the history keeps alive for a patch: the texts
    it restores on revert and the replaced code objects."""
    size = 0
    if patch.previous_snapshot is not None:
        size += sys.getsizeof(patch.previous_snapshot.lines) + patch.previous_snapshot.length
    for _, entry in patch.previous_lines or ():
        if entry is not None:
            # linecache's entry: (size in bytes, mtime, lines, name). Its
            # size, not a getsizeof per line: a 20,000-definition file has
            # 200,000 lines, and this runs with the GIL held.
            size += sys.getsizeof(entry[2]) + (entry[0] if isinstance(entry[0], int) else 0) + 50 * len(entry[2])
    seen = set()
    for action in patch.actions:
        size += sys.getsizeof(action)
        for value in action[1:]:
            if isinstance(value, types.CodeType):
                size += _code_size(value, seen)
    return size


def _let_go_of_texts(patch):
    """A dropped patch's texts (the snapshot and linecache entries it would
    restore), freed in slices where nothing else holds them."""
    lists = []
    previous_lines, patch.previous_lines = patch.previous_lines, None
    for _, entry in previous_lines or ():
        if entry is not None:
            lists.append(entry[2])
    entry = previous_lines = None
    snapshot, patch.previous_snapshot = patch.previous_snapshot, None
    if snapshot is not None:
        lists.append(snapshot.lines)
        # Two references: `snapshot` and getrefcount's argument.
        if sys.getrefcount(snapshot) == 2:
            snapshot.lines = None
    snapshot = None
    _release_in_slices(lists)


class _History(object):
    """The applied patches (for history and revert) and, per module, the
    source that is live. Bounded: the oldest patches are dropped when there
    are more than max_patches or they keep more than max_bytes alive (the
    newest is always kept)."""

    def __init__(self):
        self.patches = []
        self.next_id = 1
        self.snapshots = {}     # module name -> _Snapshot
        self.max_patches = _positive_int_env('PYHOT_HISTORY_MAX_PATCHES',
                                             DEFAULT_HISTORY_MAX_PATCHES)
        self.max_bytes = _positive_int_env('PYHOT_HISTORY_MAX_BYTES', DEFAULT_HISTORY_MAX_BYTES)
        self.size = 0
        self.dropped = 0        # patches 1..dropped are no longer kept

    def record(self, request, units, actions, previous_lines, previous_snapshot):
        """Adds a patch for the actions just made; returns its id (None
        when nothing changed)."""
        if not actions:
            return None
        patch = _Patch()
        patch.id = self.next_id
        self.next_id += 1
        patch.time = time.time()
        patch.module = request.module_name
        patch.file = request.file
        patch.reverted = False
        patch.label = request.label
        patch.changes = tuple((u.qualname, u.verdict) for u in units if u.status == 'applied')
        patch.actions = tuple(actions)
        patch.previous_snapshot = previous_snapshot
        patch.previous_lines = previous_lines
        patch.size = _patch_size(patch)
        self.patches.append(patch)
        self.size += patch.size
        self._drop_oldest()
        return patch.id

    def _drop_oldest(self):
        while len(self.patches) > 1 and (len(self.patches) > self.max_patches
                                         or self.size > self.max_bytes):
            patch = self.patches.pop(0)
            self.size -= patch.size
            self.dropped = patch.id
            _let_go_of_texts(patch)

    def find_revertible(self, wanted):
        """The patch a revert request names (the last applied one for None)."""
        applied = [p for p in self.patches if not p.reverted]
        if wanted is None:
            if not applied:
                raise _Failure('not_found', 'no applied patch to revert')
            return applied[-1]
        patch = next((p for p in self.patches if p.id == wanted), None)
        if patch is None and 1 <= wanted <= self.dropped:
            raise _Failure('refused', 'patch %d was dropped from the history, which keeps the '
                           'newest %d patches and at most %d bytes (PYHOT_HISTORY_MAX_PATCHES, '
                           'PYHOT_HISTORY_MAX_BYTES in the target\'s environment)'
                           % (wanted, self.max_patches, self.max_bytes))
        if patch is None:
            raise _Failure('not_found', 'no patch %d' % wanted)
        if patch.reverted:
            raise _Failure('refused', 'patch %d is already reverted' % wanted)
        later = [p.id for p in applied if p.module == patch.module and p.id > patch.id]
        if later:
            raise _Failure('refused', 'revert patch(es) %s of %s first'
                           % (', '.join(str(i) for i in later), patch.module))
        return patch

    def find_labelled(self, label):
        """The applied patches of a label, newest first; [] when every one
        was reverted. A later patch of one of their modules outside the label
        must be reverted first."""
        labelled = [p for p in self.patches if p.label == label]
        if not labelled:
            raise _Failure('not_found', 'no patch labelled %s' % label)
        applied = [p for p in labelled if not p.reverted]
        ids = set(p.id for p in applied)
        for patch in applied:
            later = [p.id for p in self.patches if not p.reverted and p.module == patch.module
                     and p.id > patch.id and p.id not in ids]
            if later:
                raise _Failure('refused', 'revert patch(es) %s of %s first'
                               % (', '.join(str(i) for i in later), patch.module))
        return applied[::-1]

    def mark_reverted(self, patch):
        patch.reverted = True
        if patch.previous_snapshot is None:
            self.snapshots.pop(patch.module, None)
        else:
            self.snapshots[patch.module] = patch.previous_snapshot


class _Operations(object):
    """The agent's operations (loader/PROTOCOL.md): one method per op."""

    def __init__(self, agent):
        self.agent = agent
        self.history = _History()
        self.lineage = _Lineage()
        self.baselines = _Baselines()
        self.table = {
            'ping': self.op_ping, 'modules': self.op_modules, 'locate': self.op_locate,
            'module_for_file': self.op_module_for_file, 'snapshot': self.op_snapshot,
            'apply': self.op_apply, 'history': self.op_history, 'revert': self.op_revert,
            'stop': self.op_stop, 'prove_baseline': self.op_prove_baseline,
        }
        self.instrumentations = _Instrumentations(agent)
        self.table.update(self.instrumentations.table())
        self.table.update(_Inspections().table())

    def dispatch(self, body):
        request_id = None
        try:
            try:
                request = json.loads(body.decode('utf-8'))
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Failure('protocol', 'malformed JSON: %s' % exc)
            if not isinstance(request, dict):
                raise _Failure('protocol', 'a request must be a JSON object')
            candidate = request.get('id')
            if isinstance(candidate, int) and not isinstance(candidate, bool):
                if not 0 <= candidate <= MAX_ID:
                    raise _Failure('protocol', "field 'id' is out of range (0 to 2**53-1)")
                request_id = candidate
            else:
                raise _Failure('protocol', "missing or non-integer field 'id'")
            if request.get('v') != PROTOCOL_VERSION:
                raise _Failure('protocol', 'unsupported protocol version %r (the agent speaks %d)'
                               % (request.get('v'), PROTOCOL_VERSION))
            name = request.get('op')
            op = self.table.get(name) if isinstance(name, str) else None
            if op is None:
                raise _Failure('protocol', 'unknown op %r' % (request.get('op'),))
            reply = {'v': PROTOCOL_VERSION, 'id': request_id, 'ok': True}
            reply.update(op(request))
            return reply
        except _Failure as failure:
            return _error_reply(request_id, failure.kind, failure.message)
        except BaseException as exc:
            # Whatever user code raised (SystemExit included) ends this
            # request only.
            return _error_reply(request_id, 'internal', _exception_text(exc))

    def op_ping(self, request):
        return {'pid': os.getpid(), 'python': '%d.%d.%d' % sys.version_info[:3],
                'hexversion': sys.hexversion, 'executable': sys.executable,
                'agent': AGENT_VERSION, 'thread': THREAD_NAME, 'socket': self.agent.path}

    def op_modules(self, request):
        out = []
        for name, module in list(sys.modules.items()):
            path = _module_file(module) if module is not None else None
            if not path or _is_agent(module):
                continue
            # Judged on the path as imported too: Debian's stdlib
            # sitecustomize.py is a link into /etc.
            if _is_user_file(path) and _is_user_file(_real(path)):
                out.append({'name': name, 'file': _real(path)})
        out.sort(key=lambda m: m['name'])
        return {'modules': out}

    def op_locate(self, request):
        name = _field(request, 'module', str)
        module = sys.modules.get(name)
        if module is None:
            raise _Failure('not_found', "No module named '%s'" % name)
        path = _module_file(module)
        if not path:
            raise _Failure('not_found', "Module '%s' has no source file" % name)
        return {'module': name, 'file': _real(path)}

    def op_module_for_file(self, request):
        given = _field(request, 'file', str)
        wanted = _real(given)
        file_names = (os.path.basename(wanted), os.path.basename(given))
        paths = []
        for name, module in list(sys.modules.items()):
            path = _module_file(module) if module is not None else None
            if path:
                paths.append((name, path))
        # Each realpath costs system calls, and under GIL contention each
        # call a switch interval: thousands of modules took seconds. A path
        # resolves to a file of another name only when it is itself a link,
        # so the paths of the same file name go first.
        matches = [name for name, path in paths
                   if os.path.basename(path) in file_names and _real(path) == wanted]
        if not matches:
            matches = [name for name, path in paths
                       if os.path.basename(path) not in file_names and _real(path) == wanted]
        if not matches:
            raise _Failure('not_found', 'No loaded module comes from %s: give the path the '
                           'process imported it from, or a module name' % wanted)
        matches.sort(key=lambda n: (n == '__main__', n))
        reply = {'module': matches[0], 'modules': matches}
        if request.get('snapshot') is True:
            # A reload's next request: answered here, it waits for the GIL
            # once less under contention.
            reply['snapshot'] = self._snapshot(matches[0], False)
        return reply

    def op_snapshot(self, request):
        return self._snapshot(_field(request, 'module', str), request.get('source', True) is not False)

    def _snapshot(self, name, source):
        recorded = self.history.snapshots.get(name)
        if recorded is None:
            # Never patched: the text it was imported from, when known.
            return {'source': self.baselines.text(name), 'hash': None}
        # A client that has the text parsed already asks for the hash alone.
        # Without a hash (recorded by an older client) the text is all it has.
        wanted = source or recorded.hash is None
        return {'source': recorded.text() if wanted else None, 'hash': recorded.hash}

    def op_prove_baseline(self, request):
        candidates = _field(request, 'candidates', list)
        name = _field(request, 'module', str)
        proven = self.baselines.prove(name, candidates)
        reply = {'proven': proven}
        if proven is None and name in self.baselines.notes:
            reply['bytecode_cache'] = self.baselines.notes[name]
        return reply

    def op_history(self, request):
        return {'patches': [p.to_json() for p in self.history.patches],
                'instrumentations': self.instrumentations.describe()}

    def op_stop(self, request):
        self.agent.stop_requested = True
        return {}

    def op_apply(self, request):
        plan = _Apply(self.lineage, request)
        request = plan.request
        previous_snapshot = self.history.snapshots.get(request.module_name)
        source = _new_source(request, previous_snapshot)
        request.new_source = source  # 3.13+: classes' fresh-import facts come from it
        recorded = None
        if request.snapshot_edit is not None:
            recorded = _edited(request.snapshot_edit, previous_snapshot, request.module_name)
        plan.prepare()
        if request.dry_run:
            reply = {'patch': None, 'dry_run': True, 'results': plan.finish_dry_run()}
            if request.verify:
                reply['absent'] = _absent_definitions(request, plan.units)
            return reply
        actions = _Changes()
        try:
            plan.commit(actions)
        except BaseException as exc:    # __set_name__ hooks are user code
            errors = _undo(actions)
            message = 'nothing was changed: %s' % _exception_text(exc)
            if errors:
                message = 'rollback incomplete (%s) after: %s' % (
                    '; '.join(errors), _exception_text(exc))
            raise _Failure('internal', message)
        for unit in plan.units:
            if unit.status is None:
                unit.status = 'applied'
        history = self.history
        previous_lines = _install_lines(request, source)
        if request.snapshot is not None:
            history.snapshots[request.module_name] = _Snapshot(
                request.snapshot.splitlines(True), request.snapshot_hash, len(request.snapshot))
        elif recorded is not None:
            recorded.hash = request.snapshot_hash
            history.snapshots[request.module_name] = recorded
        elif request.records_source and source is not None:
            source.hash = request.snapshot_hash
            history.snapshots[request.module_name] = source
        patch_id = history.record(request, plan.units, actions, previous_lines,
                                  previous_snapshot)
        del actions[:]
        return {'patch': patch_id, 'dry_run': False,
                'results': [u.result() for u in plan.units]}

    def op_revert(self, request):
        label = _label_field(request)
        if label is None:
            patches = [self.history.find_revertible(_int_field(request, 'patch', 1, MAX_ID, None))]
        else:
            patches = self.history.find_labelled(label)
        changes = []
        kept = []
        for patch in patches:
            # Names the patch added stay bound: a frame still running its code
            # (a request in flight) may use them, and would meet a NameError.
            added = [a for a in patch.actions
                     if a[0] == 'bind' and a[3] is _MISSING and a[4] is not _MISSING]
            added_ids = set(id(a) for a in added)
            errors = _undo([a for a in patch.actions if id(a) not in added_ids])
            if errors:
                raise _Failure('internal', 'revert of patch %d incomplete: %s'
                               % (patch.id, '; '.join(errors)))
            self.history.mark_reverted(patch)
            _restore_lines(patch.previous_lines)
            changes.extend(patch.to_json()['changes'])
            kept.extend(a[2] if not isinstance(a[1], type) else '%s.%s' % (a[1].__qualname__, a[2])
                        for a in added)
        return {'reverted': patches[0].id if patches else 0, 'changes': changes, 'kept': kept,
                'patches': [{'id': p.id, 'module': p.module, 'file': p.file} for p in patches]}


def _error_reply(request_id, kind, message):
    assert kind in ERROR_KINDS, kind
    return {'v': PROTOCOL_VERSION, 'id': request_id, 'ok': False,
            'error': {'kind': kind, 'message': _one_line(message)}}


def _open_listener(directory):
    """A listening socket at <directory>/<pid>.sock, mode 0600; returns
    (socket, path)."""
    path = os.path.join(directory, '%d.sock' % os.getpid())
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Bound and listening under a temporary name first: a client
    # that sees the socket file can connect at once.
    pending = os.path.join(directory, '.%d.sock.pending' % os.getpid())
    try:
        listener.settimeout(None)
        try:
            os.unlink(pending)
        except FileNotFoundError:
            pass
        listener.bind(pending)
        os.chmod(pending, 0o600)
        listener.listen(LISTEN_BACKLOG)
        os.rename(pending, path)
    except Exception:
        listener.close()
        try:
            os.unlink(pending)
        except OSError:
            pass
        raise
    return listener, path


class _Agent(object):
    """The socket's life cycle (start, stop, exit, fork) and the thread
    that serves it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.listener = None
        self.path = None
        self.pid = None
        self.thread = None
        self.stop_requested = False
        self.error = None
        self.dispatch_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        # Connections waiting for a client's next request, and since when:
        # the oldest is closed when a new client finds every slot taken.
        self.idle = {}
        self.boost = _SwitchBoost()
        # The process this state belongs to, and in a forked child, who
        # claimed taking it over (see become_child).
        self.home = os.getpid()
        self.children = {}
        self.operations = _Operations(self)
        atexit.register(self.at_exit)
        if hasattr(os, 'register_at_fork'):
            os.register_at_fork(after_in_child=self.after_fork_in_child)

    # -- lifetime -------------------------------------------------------------

    def start(self):
        if self.home != os.getpid():
            # A fork whose handler has not taken the parent's state over yet
            # (the CLI's bootstrap thread can get here first): take it over
            # here, or wait for the thread that is doing it.
            self.become_child()
            deadline = time.monotonic() + FORK_TAKEOVER_WAIT
            while self.home != os.getpid():
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.001)
        with self.lock:
            if self.listener is not None and self.pid == os.getpid():
                return self.path
            try:
                directory = _socket_dir()
                _prepare_dir(directory)
                _remove_stale_sockets(directory)
                listener, path = _open_listener(directory)
                self.listener = listener
                self.path = path
                self.pid = os.getpid()
                self.stop_requested = False
                self.error = None
                # Before the thread starts: its first act is to read the
                # files of the modules this lists (else it finds none).
                try:
                    self.operations.baselines.start()
                except Exception as exc:
                    _debug('cannot record imports: %s' % _exception_text(exc))
                # daemon given here, not asked of the thread calling start()
                # (the CLI's bootstrap thread): threading would keep a
                # record of that thread for good.
                thread = threading.Thread(target=self.serve, args=(listener,),
                                          name=THREAD_NAME, daemon=True)
                thread.start()
                self.thread = thread
                _debug('listening on %s' % path)
                return path
            except Exception as exc:
                self.error = _exception_text(exc)
                _debug('cannot start: %s' % self.error)
                return None

    def stop(self):
        with self.lock:
            self.close_listener(wake=True)

    def close_listener(self, wake):
        listener = self.listener
        if listener is None:
            return
        self.listener = None
        if wake:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            listener.close()
        except OSError:
            pass
        if self.pid == os.getpid() and self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        _debug('stopped')

    def at_exit(self):
        try:
            if self.pid == os.getpid():
                self.close_listener(wake=False)
        except Exception:
            pass

    def after_fork_in_child(self):
        try:
            self.become_child()
        except Exception as exc:
            _debug('after fork: %s' % _exception_text(exc))

    def become_child(self):
        """In a forked child: the parent's locks (held by threads that do not
        exist here), its socket and its thread are not ours. Done once per
        child, by the fork handler or by the CLI's bootstrap thread if it
        gets there first; the one that claims it also starts the child's
        agent when the parent was listening."""
        token = object()
        if self.children.setdefault(os.getpid(), token) is not token:
            return
        inherited = self.listener
        fresh = {'lock': threading.Lock(), 'dispatch_lock': threading.Lock(),
                 'slots': threading.BoundedSemaphore(MAX_CONNECTIONS), 'idle': {}, 'listener': None, 'thread': None,
                 'path': None, 'pid': None, 'home': os.getpid(), 'children': {os.getpid(): token}}
        # One C-level call: another thread sees the parent's state or the
        # child's, never half of each.
        self.__dict__.update(fresh)
        self.boost.after_fork()
        if inherited is not None:
            try:
                inherited.close()   # our copy only; the parent keeps serving
            except OSError:
                pass
            self.start()

    # -- serving ----------------------------------------------------------------

    def serve(self, listener):
        """Accepts connections. A client that keeps up (a CLI sends a
        request, reads the reply, sends the next) is served right here; one
        that pauses or sends slowly is handed to a thread of its own, so no
        client delays another by more than ACCEPT_WAIT (plus the requests
        ahead of it: they run one at a time)."""
        try:
            self.operations.baselines.read_loaded()
        except Exception as exc:
            _debug('cannot read the loaded modules: %s' % _exception_text(exc))
        try:
            while True:
                if not self.slots.acquire(False):
                    self.close_oldest_idle()
                    self.slots.acquire()
                try:
                    conn, _ = listener.accept()
                except OSError as exc:
                    self.slots.release()
                    if self.listener is not listener or exc.errno in (errno.EBADF, errno.EINVAL):
                        return
                    time.sleep(0.1)     # e.g. EMFILE: do not spin
                    continue
                # From here until the last reply, every blocking call of the
                # connection is cheap to come back from (_SwitchBoost).
                self.boost.enter()
                if self.serve_briefly(conn, listener):
                    continue
                self.boost.leave()
                self.close_connection(conn)
                if self.stop_requested and self.listener is listener:
                    with self.lock:
                        self.close_listener(wake=False)
                    return
        except BaseException as exc:
            _debug('accepting: %s' % _exception_text(exc))
            return

    def serve_briefly(self, conn, listener):
        """Serves conn while its client keeps up; True when it was handed to
        a connection thread (which then owns conn, its slot and the boost)."""
        try:
            if not _peer_allowed(conn):
                return False
            reader = _FrameReader(conn, _timeout())
            unsent = None
            while True:
                outcome = self.serve_request(conn, reader, time.monotonic() + ACCEPT_WAIT)
                if outcome is _PENDING:
                    break
                if type(outcome) is _Unsent:
                    unsent = outcome
                    break
                if not outcome:
                    return False
        except BaseException as exc:
            _debug('connection: %s' % _exception_text(exc))
            return False
        thread = threading.Thread(target=self.serve_connection, args=(conn, listener, reader, unsent),
                                  name=CONNECTION_THREAD_NAME)
        thread.daemon = True
        try:
            thread.start()
        except BaseException as exc:
            _debug('no thread for a connection: %s' % _exception_text(exc))
            return False
        return True

    def close_connection(self, conn):
        try:
            conn.close()
        except OSError:
            pass
        self.slots.release()

    def close_oldest_idle(self):
        """Every slot is taken: the connection idle longest gives its own up
        (its thread sees the end of the stream and closes it), so that clients
        that connect and say nothing cannot keep a new one out."""
        try:
            conn = min(list(self.idle.items()), key=lambda item: item[1])[0]
        except ValueError:
            return  # none idle: wait for a slot as before
        self.idle.pop(conn, None)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def serve_connection(self, conn, listener, reader, unsent=None):
        try:
            if unsent is not None:
                conn.settimeout(_timeout())
                conn.sendall(unsent.rest)
                if not unsent.more:
                    return
            self.handle(conn, reader)
        except BaseException as exc:
            _debug('connection: %s' % _exception_text(exc))
        finally:
            self.close_connection(conn)
        if self.stop_requested and self.listener is listener:
            with self.lock:
                if self.listener is listener:
                    self.close_listener(wake=True)

    def handle(self, conn, reader):
        """Serves a connection on its own thread; entered boosted, and
        boosted whenever a request is in progress on it."""
        boosted = True
        try:
            while True:
                # A client sends its next request at once or waits a while:
                # an idle connection must not keep the interval short.
                if boosted and not reader.wait(BOOST_WAIT):
                    self.boost.leave()
                    boosted = False
                if not boosted:
                    self.idle[conn] = time.monotonic()
                    try:
                        if not reader.wait(reader.timeout):
                            return
                    finally:
                        self.idle.pop(conn, None)
                    self.boost.enter()
                    boosted = True
                if not self.serve_request(conn, reader):
                    return
        finally:
            if boosted:
                self.boost.leave()

    def serve_request(self, conn, reader, give_up=None):
        """Reads, runs and answers one request; False when the connection
        is to be closed, _PENDING when give_up came before the request."""
        try:
            body = reader.next(give_up)
        except _FrameTooLarge as too_large:
            _send_frame(conn, _error_reply(None, 'protocol',
                        'frame of %d bytes is over the 64 MiB limit' % too_large.args[0]))
            return False
        if body is _PENDING:
            return _PENDING
        if body is None:
            return False
        # Requests run one at a time, whichever connection they come on.
        with self.dispatch_lock:
            reply = self.operations.dispatch(body)
        try:
            frame = _frame_bytes(reply)
        except (TypeError, ValueError) as exc:
            frame = _frame_bytes(_error_reply(reply.get('id'), 'internal', _exception_text(exc)))
        if give_up is None:
            conn.settimeout(_timeout())
            conn.sendall(frame)
            return not self.stop_requested
        # On the accepting thread: a client that does not take its reply at
        # once gets the rest from a thread of its own.
        rest = _send_until(conn, frame, time.monotonic() + ACCEPT_WAIT)
        if rest:
            return _Unsent(rest, not self.stop_requested)
        return not self.stop_requested


def _peer_allowed(conn):
    uid = _peer_uid(conn)
    if uid in (0, os.getuid(), os.geteuid()):
        return True
    _debug('refused a client of uid %d' % uid)
    return False


# ---------------------------------------------------------------------------
# Baselines: the text each module was imported from, when it is known or
# proven, so that a module's first reload diffs against it like a later one.

def _line_table(code):
    table = getattr(code, 'co_linetable', None)
    return table if table is not None else code.co_lnotab


def _same_code_and_lines(live, candidate):
    return (live.co_firstlineno == candidate.co_firstlineno and _code_equal(live, candidate)
            and _line_table(live) == _line_table(candidate))


def _is_function_code(code):
    # Class bodies (and the module) run in a namespace of their own; functions
    # have fast locals.
    return bool(code.co_flags & 0x0002) and not code.co_name.startswith('<')


def _defined_codes(code, out, owner=()):
    """(names of the enclosing classes, code) for every function the text
    defines at module or class level (the ones that become live objects);
    nested functions are compared as constants of their enclosing function."""
    for child in code.co_consts:
        if not isinstance(child, types.CodeType) or child.co_name.startswith('<'):
            continue
        if _is_function_code(child):
            out.append((owner, child))
        else:
            _defined_codes(child, out, owner + (child.co_name,))
    return out


def _all_codes(code, out):
    for child in code.co_consts:
        if isinstance(child, types.CodeType):
            out.append(child)
            _all_codes(child, out)
    return out


def _bound(module, owner, name):
    """Whether the live module still binds `name` where the text defines it."""
    scope = module.__dict__
    for part in owner:
        cls = scope.get(part)
        if not _is_a(cls, type):    # only a class's own dict: another object's is its code's
            return False
        scope = cls.__dict__
    return name in scope


_REAL_PATHS = {}


def _is_file(name, file):
    """Whether the code file name is file (a real path): one realpath per
    name, not per function (2,000 of them took 60 ms)."""
    real = _REAL_PATHS.get(name)
    if real is None:
        if len(_REAL_PATHS) > 10000:
            _REAL_PATHS.clear()
        real = _REAL_PATHS[name] = _real(name)
    return real == file


def _is_a(value, kinds):
    """isinstance without running the object's code: isinstance falls back
    to reading value.__class__, which a proxy (werkzeug's LocalProxy, so
    Flask's `request`) forwards, and which raises outside a request."""
    return issubclass(type(value), kinds)


def _function_codes(value, file, out):
    """Code objects from this file behind a live binding: the function, what
    it wraps, and the functions a staticmethod, classmethod or property holds.
    Only the attributes of those built-in types are read: any other object's
    attribute lookup is user code (__getattr__, properties)."""
    parts = [value]
    if _is_a(value, (staticmethod, classmethod)):
        parts.append(value.__func__)
    elif _is_a(value, property):
        parts += [value.fget, value.fset, value.fdel]
    for part in parts:
        seen = 0
        while _is_a(part, types.FunctionType) and seen < 20:
            if _is_file(part.__code__.co_filename, file):
                out.append(part.__code__)
            part = part.__dict__.get('__wrapped__')
            seen += 1


def _live_codes(module, file):
    out = _namespace_codes(module, file)
    # And the functions no binding leads to (`@registry.register` kept the
    # function and bound something else): every function whose globals are
    # the module's, defined at module or class level in this file.
    seen = set(id(code) for code in out)
    for obj in gc.get_referrers(module.__dict__):
        if _is_a(obj, types.FunctionType) and obj.__globals__ is module.__dict__ \
                and '<locals>' not in obj.__qualname__ and id(obj.__code__) not in seen \
                and _is_file(obj.__code__.co_filename, file):
            seen.add(id(obj.__code__))
            out.append(obj.__code__)
    return out


def _namespace_codes(module, file):
    out = []
    classes = []
    for value in list(module.__dict__.values()):
        if _is_a(value, type):
            classes.append(value)
        else:
            _function_codes(value, file, out)
    seen = set()
    while classes:
        cls = classes.pop()
        if id(cls) in seen or cls.__dict__.get('__module__') != module.__name__:
            continue
        seen.add(id(cls))
        for value in list(cls.__dict__.values()):
            if _is_a(value, type):
                classes.append(value)
            else:
                _function_codes(value, file, out)
    return out


def _module_assignments(text):
    """The text of each `NAME = ...` statement at module level, with its
    continuation lines (a cheap cut: what does not parse alone is skipped)."""
    lines = text.splitlines(True)
    index = 0
    while index < len(lines):
        line = lines[index]
        head = line.split('=', 1)[0].strip() if ' = ' in line else ''
        index += 1
        if not (head.isidentifier() and line[:1] not in (' ', '\t')):
            continue
        statement = [line]
        while index < len(lines) and lines[index][:1] in (' ', '\t', ')', ']', '}'):
            statement.append(lines[index])
            index += 1
        yield ''.join(statement)


def _literal_constants_match(module, text):
    """Whether every `NAME = literal` at module level still has its literal
    value in the live module (code objects say nothing about constants).
    Each statement is parsed alone: parsing a large module at once would
    hold the GIL as long as compiling it."""
    namespace = module.__dict__
    for statement in _module_assignments(text):
        try:
            node = ast.parse(statement).body[0]
            value = ast.literal_eval(node.value)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, IndexError, AttributeError):
            continue
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in namespace and not _const_equal(namespace[name], value):
            return False
    return _class_literals_match(module, text)


def _class_literals_match(module, text):
    """Whether every one-line `NAME = literal` (annotated or not) in the
    body of a class at module level agrees with the live class: a plain
    class (made by type, no class decorator could have taken it out) must
    hold it, and a value held as plain data must be the literal. Code
    objects say nothing of class-level values either."""
    namespace = module.__dict__
    cls = None
    indent = None
    for line in text.splitlines():
        if line[:1] not in (' ', '\t', ''):
            cls, indent = None, None
            if line.startswith('class '):
                name = line[6:].split('(')[0].split(':')[0].strip()
                value = namespace.get(name)
                cls = value if isinstance(value, type) else None
            continue
        stripped = line.lstrip()
        if cls is None or not stripped or stripped.startswith('#'):
            continue
        width = len(line) - len(stripped)
        indent = width if indent is None else indent
        if width != indent or ' = ' not in stripped:
            continue
        try:
            node = ast.parse(stripped).body[0]
            value = ast.literal_eval(node.value)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, IndexError, AttributeError):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if not isinstance(target, ast.Name) or target.id.startswith('__'):
                continue
            live = cls.__dict__.get(target.id, _MISSING)
            if live is _MISSING and type(cls) is type:
                return False
            if _is_immutable_data(live) and not _const_equal(live, value):
                return False
    return True


_TOP_LEVEL_START = ('def ', 'class ', 'async def ', '@', 'import ', 'from ', 'if ', 'try:', 'for ', 'while ',
                    'with ')


def _future_flags(text):
    flags = 0
    for line in text.splitlines():
        if line.startswith('from __future__ import '):
            for name in line[len('from __future__ import '):].replace('(', ' ').replace(')', ' ').split(','):
                feature = getattr(__future__, name.strip(), None)
                if isinstance(feature, __future__._Feature):
                    flags |= feature.compiler_flag
    return flags


class _PiecewiseModule(object):
    """The module code of a text compiled a few top-level statements at a
    time: one compile() of a large module holds the GIL for hundreds of
    milliseconds, a piece of about PIECE_BYTES for one or two. Pieces of one
    statement each cost more in all (every compile() has its fixed cost, and
    compiles the module's imports again): 2,000 small functions, 104 -> 72
    ms on 3.11, 200 -> 131 on 3.8, 239 -> 207 on 3.13 (CPU). Only co_consts
    is used (the code of what the text defines, at its real lines)."""

    PIECE_BYTES = 2000

    def __init__(self, text, file):
        self.functions = []   # (class name or None, def node, first line in the text)
        self.beyond_proof = False   # a statement whose effect no code object or literal shows
        flags = _future_flags(text)
        lines = text.splitlines(True)
        # Since 3.11 a call on a name the module binds by `import` compiles
        # differently: each piece is compiled with the module's imports after
        # it (compiled, never run; after it, so its own lines do not move).
        imports = ''.join('\n' + line.rstrip('\n') for line in lines
                          if line.startswith(('import ', 'from ')) and not line.startswith('from __future__'))
        consts = []
        start = 0
        size = 0   # of lines[start:index]
        for index in range(1, len(lines) + 1):
            size += len(lines[index - 1])
            at_boundary = index == len(lines) or (size >= self.PIECE_BYTES and
                                                  lines[index].startswith(_TOP_LEVEL_START))
            if not at_boundary:
                continue
            chunk = ''.join(lines[start:index])
            try:
                tree = compile(chunk + imports, file, 'exec', flags | ast.PyCF_ONLY_AST, True)
                code = compile(tree, file, 'exec', flags, True)
            except SyntaxError:
                if index == len(lines):
                    raise
                continue   # not a statement's end (a decorator, text in a string): take more lines
            consts.extend(_shift_code(c, start) for c in code.co_consts if isinstance(c, types.CodeType))
            self.functions.extend(_defined_functions(tree, start))
            self.beyond_proof = self.beyond_proof or any(_beyond_proof(node) for node in tree.body)
            start = index
            size = 0
        self.co_consts = tuple(consts)


def _is_literal(node):
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _beyond_proof(node):
    """Whether a top-level statement (or one in a class body) does something
    the proof cannot see: what is left is a def or class without decorators
    (and with plain-name bases), an import, a docstring, pass, and a literal
    bound to plain names."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return bool(node.decorator_list)
    if isinstance(node, ast.ClassDef):
        return bool(node.decorator_list or node.keywords) or \
            not all(isinstance(b, (ast.Name, ast.Attribute)) for b in node.bases) or \
            any(_beyond_proof(member) for member in node.body)
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return False
    if isinstance(node, ast.Expr):
        return not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
    if isinstance(node, ast.Assign):
        return not (all(isinstance(t, ast.Name) for t in node.targets) and _is_literal(node.value))
    if isinstance(node, ast.AnnAssign):
        return not (isinstance(node.target, ast.Name) and (node.value is None or _is_literal(node.value)))
    return True


def _defined_functions(tree, line_offset):
    """The defs at module level and in classes at module level of a piece's
    syntax tree: (class name or None, node, first line of its code in the
    whole text: a decorated function's code starts at its first decorator)."""
    out = []
    for node in tree.body:
        owner, members = (None, [node]) if not isinstance(node, ast.ClassDef) else (node.name, node.body)
        for member in members:
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = member.decorator_list[0].lineno if member.decorator_list else member.lineno
                out.append((owner, member, first + line_offset))
    return out


def _default_holds(expression, value, namespace):
    """Whether the live default `value` is what `expression` of the text made,
    shown without running anything: a literal equal to it, or a name whose
    module (or builtin) value it is. Anything else cannot be shown."""
    try:
        return _const_equal(value, ast.literal_eval(expression))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(expression, ast.Name):
        scope = namespace if expression.id in namespace else builtins.__dict__
        return expression.id in scope and scope[expression.id] is value
    return False


def _defaults_match(module, functions):
    """Whether each function the text defines that is live as a plain
    function has the defaults the text gives it: they are made by the module
    code when the def runs, so the function's code says nothing of them (an
    edit of only `name="world"` proved the edited text as the imported one,
    and the reload said "Nothing to reload")."""
    namespace = module.__dict__
    for owner, node, first in functions:
        scope = namespace
        if owner is not None:
            cls = namespace.get(owner)
            if not _is_a(cls, type):
                continue
            scope = cls.__dict__
        live = scope.get(node.name)
        if _is_a(live, (staticmethod, classmethod)):
            live = live.__func__
        if not _is_a(live, types.FunctionType) or live.__code__.co_name != node.name \
                or live.__code__.co_firstlineno != first:
            continue    # not this def's function as it was made (a wrapper, another def of the name)
        defaults = live.__defaults__ or ()
        if len(defaults) != len(node.args.defaults):
            return False
        if not all(_default_holds(e, v, namespace) for e, v in zip(node.args.defaults, defaults)):
            return False
        keyword = live.__kwdefaults__ or {}
        given = [(a.arg, e) for a, e in zip(node.args.kwonlyargs, node.args.kw_defaults) if e is not None]
        if len(given) != len(keyword) or \
                not all(n in keyword and _default_holds(e, keyword[n], namespace) for n, e in given):
            return False
    return True


def _proves(module, file, text, every_statement=False):
    """Whether `text` is what `module` was imported from: compiling it (no
    execution) gives exactly the live code objects, lines included, and its
    literal constants and the defaults of its functions still hold their
    values."""
    try:
        compiled = _PiecewiseModule(text, file)
    except (SyntaxError, ValueError, OverflowError, RecursionError):
        return False
    if every_statement and compiled.beyond_proof:
        return False
    return _matches_live(module, file, compiled) and _literal_constants_match(module, text) \
        and _defaults_match(module, compiled.functions)


def _matches_live(module, file, compiled):
    """Whether compiled (a module code object, or one made piecewise) holds
    every live code object of module, lines included, and defines nothing
    the module does not bind."""
    defined = _defined_codes(compiled, [])
    by_name = {}
    for entry in defined:
        by_name.setdefault(entry[1].co_name, []).append(entry)
    nested = None
    for code in _live_codes(module, file):
        same = by_name.get(code.co_name, ())
        match = next((d for d in same if _same_code_and_lines(code, d[1])), None)
        if match is not None:
            same.remove(match)
            continue
        # A closure a decorator made (its code is nested in the text).
        if nested is None:
            nested = _all_codes(compiled, [])
        if not any(c.co_name == code.co_name and _same_code_and_lines(code, c) for c in nested):
            return False
    # A function the text defines that the module does not bind: the text
    # is newer. (A decorator may hide the function: its name must be bound.)
    if any(not _bound(module, owner, code.co_name)
           for same in by_name.values() for owner, code in same):
        return False
    # The same for classes: one without methods leaves no live code object,
    # so a text that adds it would otherwise prove itself.
    return all(_bound(module, owner, name) for owner, name in _defined_classes(compiled, []))


def _defined_classes(code, out, owner=()):
    """(names of the enclosing classes, name) for every class the text
    defines at module level or in a class body."""
    for child in code.co_consts:
        if isinstance(child, types.CodeType) and not child.co_name.startswith('<') \
                and not _is_function_code(child):
            out.append((owner, child.co_name))
            _defined_classes(child, out, owner + (child.co_name,))
    return out


class _BytecodeCache(object):
    """A module's cached .pyc: what it proves and what it cannot.

    It is the module code compiled from the source as it was at one mtime
    and size (or with one source hash): when its code objects are exactly the
    live ones, the live code is that compilation. It holds no text, so it
    proves a text only when that text has the recorded mtime and size (or
    hash): the file as it was read, never an edited one."""

    def __init__(self, source_path):
        import importlib.util
        import marshal
        self.path = None
        self.code = None
        try:
            path = importlib.util.cache_from_source(source_path)
            with open(path, 'rb') as handle:
                data = handle.read()
        except (OSError, NotImplementedError, ValueError):
            return
        if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
            return
        flags = int.from_bytes(data[4:8], 'little')
        self.hashed = bool(flags & 0x1)
        self.key = data[8:16] if self.hashed else (int.from_bytes(data[8:12], 'little'),
                                                    int.from_bytes(data[12:16], 'little'))
        try:
            code = marshal.loads(data[16:])
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(code, types.CodeType):
            self.path, self.code = path, code

    def compiled_from(self, data, stat):
        """Whether source bytes data, with stat (mtime, size) as read, are
        what this .pyc was compiled from."""
        if self.code is None or data is None:
            return False
        if self.hashed:
            import importlib.util
            return importlib.util.source_hash(data) == self.key
        return stat is not None and (int(stat[0]) & 0xFFFFFFFF, stat[1] & 0xFFFFFFFF) == self.key

    def note(self, file):
        """What the .pyc proves when no text it was compiled from is at hand."""
        if self.hashed:
            made = 'with source hash %s' % self.key.hex()
        else:
            made = 'as it was at %s (%d bytes)' % (
                time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.key[0])), self.key[1])
        return ('%s: the live code is exactly this file compiled from %s %s; the file changed since, '
                'and a .pyc holds no text' % (self.path, os.path.basename(file), made))


def _decode(data):
    return importlib.util.decode_source(data)


class _Baselines(object):
    """Per module, the text it was imported from: recorded while it was
    imported (the agent running from the start), read when the agent started
    and proven on first use, or proven among the CLI's candidates."""

    def __init__(self):
        self.exact = {}      # module name or real path -> (real path, bytes or str)
        self.unproven = {}   # module name -> (real path, bytes, (mtime, size)) read at agent start
        self.notes = {}      # module name -> what its .pyc proved when nothing else could be
        self.loaded = []     # (name, module) imported before the agent started, not yet read
        self.hooked = False

    def start(self):
        # PYHOT_AGENT_RECORD_IMPORTS=0: no record (a first reload then only
        # compares definitions with the live code).
        if self.hooked or os.environ.get('PYHOT_AGENT_RECORD_IMPORTS') == '0':
            return
        self.hooked = True
        self._read_main_script()
        self.loaded = [(name, module) for name, module in list(sys.modules.items()) if module is not None]
        self._hook_imports()

    def read_loaded(self):
        """Reads the files of the modules imported before the agent started.
        Called by the agent's own thread before it serves anything, so the
        thread that started the agent (the program's main thread, on attach)
        does not wait for this I/O."""
        loaded, self.loaded = self.loaded, []
        for name, module in loaded:
            path = _module_file(module)
            if path and name not in self.exact and _is_user_file(path) and not _is_agent(module):
                data, stat = self._read_with_stat(path)
                if data is not None:
                    self.unproven[name] = (_real(path), data, stat)

    def _read_main_script(self):
        # Under `pyhot run` the agent starts from sitecustomize, before the
        # interpreter reads the script: the file now is what it will run.
        main = sys.modules.get('__main__')
        if main is None or _module_file(main) is not None or not sys.argv:
            return
        script = sys.argv[0]
        if script.endswith('.py') and os.path.isfile(script) and _is_user_file(os.path.abspath(script)):
            data = self._read(script)
            if data is not None:
                self.exact[_real(script)] = (_real(script), data)

    @staticmethod
    def _read(path):
        try:
            with open(path, 'rb') as handle:
                return handle.read()
        except OSError:
            return None

    @staticmethod
    def _read_with_stat(path):
        """The file's bytes and (mtime, size) as read, or (None, None)."""
        try:
            with open(path, 'rb') as handle:
                data = handle.read()
                stat = os.fstat(handle.fileno())
        except OSError:
            return None, None
        return data, (stat.st_mtime, len(data))

    @staticmethod
    def _proven(module, file, text, data, stat):
        """Whether text (from data, read with stat) is what module was
        imported from: by its .pyc when data is what the .pyc was compiled
        from (no compiling), else by compiling it. The file as it is now
        (data given) is the text most likely edited since the import: then
        compiling proves it only when nothing of it is beyond the proof (a
        statement that calls code, a decorator: their values are not in any
        code object; `LABEL = "y".upper()` edited before the first command
        was taken for the imported text, and the reload said "Nothing to
        reload")."""
        cache = _BytecodeCache(file)
        if cache.compiled_from(data, stat):
            return _matches_live(module, file, cache.code)
        return _proves(module, file, text, every_statement=data is not None)

    def _hook_imports(self):
        loader = importlib.machinery.SourceFileLoader
        original = loader.get_code
        if getattr(original, '__pyhot_records__', False):
            return
        exact = self.exact

        def get_code(self, fullname):
            path = getattr(self, 'path', None)
            if not isinstance(path, str) or not _is_user_file(path):
                return original(self, fullname)
            try:
                before = os.stat(path)
            except OSError:
                return original(self, fullname)
            code = original(self, fullname)
            try:
                with open(path, 'rb') as handle:
                    data = handle.read()
                    after = os.fstat(handle.fileno())
            except OSError:
                return code
            # Unchanged while it was imported: these bytes are what ran.
            if (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, len(data)):
                exact[fullname] = (path, data)   # the real path is taken when it is used
            return code

        get_code.__pyhot_records__ = True
        get_code.__wrapped__ = original
        loader.get_code = get_code

    def record(self, name, file, text):
        self.exact[name] = (file, text)
        self.unproven.pop(name, None)

    def text(self, name):
        """The imported text of module `name`, or None when it is not known."""
        module = sys.modules.get(name)
        path = _module_file(module) if module is not None else None
        if path is None:
            return None
        file = _real(path)
        entry = self.exact.get(name) or self.exact.get(file)
        if entry is None or _real(entry[0]) != file:
            entry = self.unproven.pop(name, None)
            if entry is None or _real(entry[0]) != file:
                return None
            text = _decode(entry[1])
            if not self._proven(module, file, text, entry[1], entry[2]):
                return None
            self.record(name, file, text)
            entry = self.exact[name]
        if not isinstance(entry[1], str):
            self.exact[name] = entry = (file, _decode(entry[1]))
        return entry[1]

    def prove(self, name, candidates):
        """The index of the first candidate text proven to be module `name`'s
        imported text (recorded as its baseline), or None."""
        module = sys.modules.get(name)
        if module is None:
            raise _Failure('not_found', "No module named '%s'" % name)
        path = _module_file(module)
        if path is None:
            raise _Failure('not_found', "Module '%s' has no source file" % name)
        file = _real(path)
        # The file as it is now is a candidate its .pyc can prove alone.
        data, stat = self._read_with_stat(file)
        current = None
        if data is not None:
            try:
                current = _decode(data)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                pass
        for index, text in enumerate(candidates):
            if not isinstance(text, str):
                continue
            if self._proven(module, file, text, data if text == current else None, stat):
                self.record(name, file, text)
                return index
        cache = _BytecodeCache(file)
        if cache.code is not None and _matches_live(module, file, cache.code):
            self.notes[name] = cache.note(file)
        return None


# ---------------------------------------------------------------------------
# Instrumentation: diagnostics are patches. The CLI sends, per function, the
# text a fresh import compiled (checked against the live code) and the same
# text with probe statements inserted (`with '<marker>:<id>':` above a body),
# and the real line of every line of it. The agent compiles it, gives it the
# real line numbers, puts each probe object where its marker string was in
# co_consts (so no name is bound anywhere: not in globals, not in builtins),
# swaps __code__, and puts the original code objects back at the end, when
# the client's lease runs out, and in a forked child. A collector (one kind
# per diagnostic: _ProfileCollector) makes the probes and keeps their data.

INSTRUMENT_KINDS = ('profile', 'watch', 'probe', 'trace', 'lines')
LEASE_THREAD_NAME = 'pyhot-agent-lease'
MAX_LEASE = 3600.0


def _varint(out, value):
    while value >= 64:
        out.append(0x40 | (value & 63))
        value >>= 6
    out.append(value)


def _svarint(out, value):
    _varint(out, ((-value) << 1) | 1 if value < 0 else value << 1)


def _location_table(code, first, real):
    """3.11+: code's location table (Objects/locations.md) with every line
    mapped by real, relative to the new first line; long forms only."""
    out = bytearray()
    previous = first
    positions = list(code.co_positions())
    i = 0
    while i < len(positions):
        position = positions[i]
        j = i + 1
        while j < len(positions) and j - i < 8 and positions[j] == position:
            j += 1
        line, end_line, column, end_column = position
        if line is None:
            out.append(0x80 | (15 << 3) | (j - i - 1))
        else:
            line = real(line)
            end_line = real(end_line) if end_line is not None else line
            out.append(0x80 | (14 << 3) | (j - i - 1))
            _svarint(out, line - previous)
            _varint(out, max(0, end_line - line))
            _varint(out, 0 if column is None else column + 1)
            _varint(out, 0 if end_column is None else end_column + 1)
            previous = line
        i = j
    return bytes(out)


def _line_table_310(code, first, real):
    """3.10: co_linetable, (byte delta, line delta) per range of co_lines()."""
    out = bytearray()
    previous = first
    for start, end, line in code.co_lines():
        size = end - start
        if line is None:
            delta = -128
        else:
            line = real(line)
            delta = line - previous
            previous = line
            while delta > 127:
                out += bytes((0, 127))
                delta -= 127
            while delta < -127:
                out += bytes((0, 129))
                delta += 127
        while size > 254:
            out += bytes((254, delta & 0xff))
            size -= 254
            if delta != -128:
                delta = 0
        out += bytes((size, delta & 0xff))
    return bytes(out)


def _lnotab(code, first, real):
    """3.8, 3.9: co_lnotab, (byte delta, line delta) per line start."""
    out = bytearray()
    offset, previous = 0, first
    for start, line in dis.findlinestarts(code):
        line = real(line)
        if line == previous:
            continue
        size, delta = start - offset, line - previous
        while size > 255:
            out += bytes((255, 0))
            size -= 255
        while delta > 127:
            out += bytes((size, 127))
            size, delta = 0, delta - 127
        while delta < -128:
            out += bytes((size, 128))
            size, delta = 0, delta + 128
        out += bytes((size, delta & 0xff))
        offset, previous = start, line
    return bytes(out)


def _remap_lines(code, real):
    """code (and its nested code) with every line number l replaced by
    real(l): the probes' inserted lines disappear from the line numbers."""
    consts = tuple(_remap_lines(c, real) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    first = real(code.co_firstlineno)
    if sys.version_info >= (3, 11):
        return code.replace(co_firstlineno=first, co_consts=consts,
                            co_linetable=_location_table(code, first, real))
    if sys.version_info >= (3, 10):
        return code.replace(co_firstlineno=first, co_consts=consts,
                            co_linetable=_line_table_310(code, first, real))
    return code.replace(co_firstlineno=first, co_consts=consts,
                        co_lnotab=_lnotab(code, first, real))


def _bind_probes(code, prefix, probe_of, used):
    """code with each constant '<prefix><id>' replaced by probe_of(id),
    nested code included; the ids found are added to used."""
    consts = []
    changed = False
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            new = _bind_probes(c, prefix, probe_of, used)
        elif type(c) is str and c.startswith(prefix) and c[len(prefix):].isdigit():
            probe_id = int(c[len(prefix):])
            new = probe_of(probe_id)
            used.add(probe_id)
        else:
            new = c
        changed = changed or new is not c
        consts.append(new)
    return code.replace(co_consts=tuple(consts)) if changed else code


def _probed(code):
    """Whether code carries a probe of any instrumentation."""
    return any(_probed(c) if isinstance(c, types.CodeType) else type(c).__name__.endswith('Probe')
               and hasattr(c, 'collector') for c in code.co_consts)


def _holds_probes(code, collector):
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            if _holds_probes(c, collector):
                return True
        elif getattr(c, 'collector', None) is collector and type(c).__name__.endswith('Probe'):
            return True
    return False


class _InstrumentedFunction(object):
    """One live function and its instrumented code, checked, not yet swapped."""
    __slots__ = ('qualname', 'module', 'function', 'original', 'instrumented', 'line_shapes')

    def __init__(self, raw, module_name, module, file, flags, prefix, probe_of, returns=False, inline_calls=False):
        self.line_shapes = {}
        if not isinstance(raw, dict):
            raise _Failure('protocol', 'a unit is not a JSON object')
        plain = dict(raw)
        plain['verdict'] = 'swap'
        unit = _Unit(plain)
        if unit.nested():
            raise _Failure('protocol', 'unit %s: send the outermost function' % unit.qualname)
        text = _field(raw, 'instrumented', str)
        lines = _field(raw, 'lines', list)
        if len(lines) < text.count('\n') or not all(
                type(n) is int and 1 <= n <= MAX_LINE for n in lines):
            raise _Failure('protocol', "unit %s: field 'lines' must give the real line of every "
                           "line of 'instrumented'" % unit.qualname)
        _compile_unit(unit, file, flags)
        _LiveResolver(module_name, module).resolve(unit)
        if unit.live_fn is None:
            raise _Failure('not_found', 'Cannot locate function %s in module %s'
                           % (unit.qualname, module_name))
        if _probed(unit.old_code):
            raise _Failure('refused', '%s.%s is instrumented already (`pyhot history` lists it)'
                           % (module_name, unit.qualname))
        if not _code_equal(unit.new_code, unit.old_code):
            raise _Failure('refused', 'the live code of %s.%s is not the text of %s (edited since '
                           'it was imported?); nothing was instrumented'
                           % (module_name, unit.qualname, file))
        try:
            statements = 'line_probes' in raw or 'variable_probes' in raw
            timing = 'line_timing' in raw
            if returns or statements or timing or inline_calls:
                tree = compile(text, file, 'exec', flags | ast.PyCF_ONLY_AST, True)
                if inline_calls:
                    _inline_profile_calls(tree, prefix)
                if timing:
                    tree = _insert_line_timers(tree, raw, lines, prefix, unit.qualname, self.line_shapes)
                if statements:
                    tree = _insert_statement_probes(tree, raw, lines, prefix, unit.qualname)
                if returns:
                    # The probe sees what a body returns: `return x` becomes
                    # `return <probe>.returned(x)` on the same line.
                    tree = _ReturnProbes(prefix).visit(tree)
                text = tree
            code = compile(text, file, 'exec', flags, True)
        except (SyntaxError, ValueError, TypeError) as exc:
            raise _Failure('internal', 'instrumented %s does not compile: %s'
                           % (unit.qualname, _exception_text(exc)))
        unit.code = _remap_lines(code, lambda line: lines[line - 1] if line <= len(lines)
                                 else lines[-1] + line - len(lines))
        _find_unit_code(unit, file)
        used = set()
        new = _bind_probes(unit.new_code, prefix, probe_of, used)
        if not used or new.co_freevars != unit.old_code.co_freevars \
                or new.co_firstlineno != unit.old_code.co_firstlineno:
            raise _Failure('internal', 'instrumented %s does not fit the live function'
                           % unit.qualname)
        self.qualname = unit.qualname
        self.module = module_name
        self.function = unit.live_fn
        self.original = unit.old_code
        self.instrumented = new


class _Instrumentation(object):
    """One client's instrumentation: what it swapped, its collector, its lease."""

    def __init__(self, ident, collector, lease):
        self.id = ident
        self.kind = 'profile'   # its INSTRUMENT_KINDS word
        self.started = time.time()
        self.collector = collector
        self.lease = lease
        self.deadline = time.monotonic() + lease
        self.functions = []

    def install(self):
        # Everything was compiled and checked: assignments that cannot fail.
        for item in self.functions:
            item.function.__code__ = item.instrumented

    def changed(self):
        """The functions whose instrumented code a reload replaced."""
        return ['%s.%s' % (item.module, item.qualname) for item in self.functions
                if item.function.__code__ is not item.instrumented
                and not _holds_probes(item.function.__code__, self.collector)]

    def remove(self):
        """Puts the original code back; returns the functions whose code was
        replaced meanwhile (a reload): those keep the new code."""
        changed = []
        for item in self.functions:
            live = item.function.__code__
            if live is item.instrumented:
                item.function.__code__ = item.original
            elif _holds_probes(live, self.collector):
                # A reload moved the instrumented code (relocate): the
                # original goes back, moved the same way.
                item.function.__code__ = _shift_code(
                    item.original, live.co_firstlineno - item.instrumented.co_firstlineno)
            else:
                changed.append('%s.%s' % (item.module, item.qualname))
        self.collector.close()
        return changed


class _Instrumentations(object):
    """The instrumentation ops (loader/PROTOCOL.md) and the lease thread
    that removes an instrumentation whose client stopped renewing it."""

    def __init__(self, agent):
        self.agent = agent
        self.active = {}
        self.next_id = 1
        self.wake = threading.Event()
        self.thread = None
        if hasattr(os, 'register_at_fork'):
            os.register_at_fork(after_in_child=self.after_fork_in_child)

    def table(self):
        return {'instrument': self.op_instrument, 'instrument_read': self.op_read,
                'instrument_remove': self.op_remove, 'instrument_events': self.op_events,
                'instrument_list': self.op_list}

    def op_events(self, request):
        session = self.find(request)
        if not hasattr(session.collector, 'events'):
            raise _Failure('protocol', 'instrumentation %d (%s) has no events'
                           % (session.id, session.kind))
        session.deadline = time.monotonic() + session.lease
        cursor = _int_field(request, 'cursor', 0, MAX_ID)
        reply = session.collector.events(cursor)
        reply.update(session=session.id, pid=os.getpid(), replaced=session.changed())
        return reply

    def op_list(self, request):
        return {'instrumentations': self.describe()}

    def op_instrument(self, request):
        kind = _word_field(request, 'kind', INSTRUMENT_KINDS)
        lease = _field(request, 'lease', (int, float))
        if not 0 < lease <= MAX_LEASE:
            raise _Failure('protocol', "field 'lease' must be in (0, %d] seconds" % MAX_LEASE)
        marker = _field(request, 'marker', str)
        if not 8 <= len(marker) <= 100:
            raise _Failure('protocol', "field 'marker' must be 8 to 100 characters")
        collector = _COLLECTORS[kind](request)
        session = _Instrumentation(self.next_id, collector, float(lease))
        session.kind = kind
        skipped = []
        for entry in _field(request, 'modules', list):
            if not isinstance(entry, dict):
                raise _Failure('protocol', 'a module entry is not a JSON object')
            request_fields = _ApplyRequest(dict(entry, units=[]))
            for raw in _field(entry, 'units', list):
                if isinstance(raw, dict) and ('line_timing' in raw) != (kind == 'lines'):
                    raise _Failure('protocol', "a unit has 'line_timing' exactly when the kind is lines")
                try:
                    session.functions.append(_InstrumentedFunction(
                        raw, request_fields.module_name, request_fields.module, request_fields.file,
                        request_fields.flags, marker + ':', collector.probe,
                        returns=getattr(collector, 'sees_returns', False),
                        inline_calls=getattr(collector, 'inlines_calls', False)))
                except _Failure as failure:
                    # A function whose live code is not the text sent (or
                    # that is gone) is left alone; the others are probed.
                    if failure.kind not in ('refused', 'not_found'):
                        raise
                    skipped.append({'module': request_fields.module_name,
                                    'qualname': raw.get('qualname'), 'message': failure.message})
        for item in session.functions:
            for ident, (scope, size) in item.line_shapes.items():
                collector.shape(ident, scope, size)
        if not session.functions:
            if skipped:
                raise _Failure('refused', 'nothing was instrumented: %s' % skipped[0]['message'])
            raise _Failure('protocol', 'nothing to instrument')
        self.next_id += 1
        session.install()
        self.active[session.id] = session
        self.start_lease_thread()
        return {'session': session.id, 'pid': os.getpid(), 'functions': len(session.functions),
                'skipped': skipped}

    def describe(self):
        """The active instrumentations, for `history`: they are patches too."""
        return [{'session': s.id, 'kind': s.kind, 'started': s.started, 'lease': s.lease,
                 'functions': ['%s.%s' % (f.module, f.qualname) for f in s.functions]}
                for s in sorted(self.active.values(), key=lambda s: s.id)]

    def find(self, request):
        ident = _int_field(request, 'session', 1, MAX_ID)
        session = self.active.get(ident)
        if session is None:
            raise _Failure('not_found', 'no instrumentation %d (removed, or its lease ran out)'
                           % ident)
        return session

    def op_read(self, request):
        session = self.find(request)
        session.deadline = time.monotonic() + session.lease
        reply = {'session': session.id, 'pid': os.getpid(), 'changed': session.changed()}
        if _field(request, 'data', bool, True):
            reply['data'] = session.collector.report()
        return reply

    def remove(self, session):
        del self.active[session.id]
        changed = session.remove()
        try:
            self.scrub_history(session)
        except Exception as exc:
            _debug('history after instrumentation %d: %s' % (session.id, _exception_text(exc)))
        return changed

    def scrub_history(self, session):
        """A reload made while instrumented recorded the instrumented code as
        what it replaced: its revert is to bring back the original."""
        originals = dict((id(item.instrumented), (item.instrumented, item.original))
                         for item in session.functions)
        history = getattr(getattr(self.agent, 'operations', None), 'history', None)
        for patch in getattr(history, 'patches', ()):
            actions = list(patch.actions)
            changed = False
            for index, action in enumerate(actions):
                if action[0] in ('code', 'function') and len(action) > 2:
                    found = originals.get(id(action[2]))
                    if found is not None and found[0] is action[2]:
                        actions[index] = action[:2] + (found[1],) + action[3:]
                        changed = True
            if changed:
                patch.actions = type(patch.actions)(actions) if isinstance(patch.actions, tuple) else actions

    def op_remove(self, request):
        session = self.find(request)
        changed = self.remove(session)
        return {'session': session.id, 'pid': os.getpid(), 'changed': changed,
                'data': session.collector.report()}

    def start_lease_thread(self):
        self.wake.set()
        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(target=self.watch_leases, name=LEASE_THREAD_NAME)
        self.thread.daemon = True
        self.thread.start()

    def watch_leases(self):
        while True:
            self.wake.clear()
            with self.agent.dispatch_lock:
                now = time.monotonic()
                for session in list(self.active.values()):
                    if session.deadline <= now:
                        _debug('lease of instrumentation %d ran out' % session.id)
                        self.remove(session)
                if not self.active:
                    self.thread = None
                    return
                wait = min(s.deadline for s in self.active.values()) - now
            self.wake.wait(max(0.01, wait))

    def after_fork_in_child(self):
        # The client talks to the parent: the child's copy goes at once.
        try:
            for session in list(self.active.values()):
                session.remove()
            self.active.clear()
            self.wake = threading.Event()
            self.thread = None
        except Exception as exc:
            _debug('after fork: %s' % _exception_text(exc))


# A profile node, one per path of probed calls (so a node is on its thread's
# current path at most once, and keeps its own call's start time):
# [children by probe id, hits, total, max, raised, (unused), start of the
#  running call, parent, probe id]. A node's self time is its total less its
# children's totals, worked out when reported, not per call.
_CHILDREN, _HITS, _TOTAL, _MAX, _RAISED, _UNUSED, _START, _PARENT, _ID = range(9)


def _new_node(parent, ident):
    return [{}, 0, 0.0, 0.0, 0, 0.0, 0.0, parent, ident]


class _ProfileProbe(object):
    """What a profiled function calls around its body: `enter()` before it,
    `raised()` when it exits by an exception, `exit()` in its `finally`
    (patch/instrumentation.hpp, ProbeShape::calls). This is all a probed
    call costs, so it is written for speed: literal node indexes, the
    thread's current node in a one-item list (`cell`, found through one
    thread-local read), the child node of the last parent cached (one tuple,
    so threads never see half of it), self time left to the report. It
    never raises into the program."""
    __slots__ = ('id', 'local', 'collector', 'last', 'clock')
    caught = BaseException

    def __init__(self, ident, collector):
        self.id = ident
        self.local = collector.local
        self.collector = collector
        self.last = (None, None)
        self.clock = time.perf_counter

    def enter(self, _clock=time.perf_counter):
        try:
            cell = self.local.cell
        except AttributeError:
            cell = self.collector.new_thread()
        current = cell[0]
        last = self.last
        if last[0] is current:
            node = last[1]
        else:
            node = current[0].get(self.id)
            if node is None:
                node = current[0][self.id] = _new_node(current, self.id)
            self.last = (current, node)
        cell[0] = node
        node[6] = _clock()

    def exit(self, _clock=time.perf_counter):
        end = _clock()
        try:
            cell = self.local.cell
        except AttributeError:
            return
        node = cell[0]
        if node[8] != self.id:
            node = self.collector.unwind(cell, self.id)
            if node is None:
                return
        elapsed = end - node[6]
        node[1] += 1
        node[2] += elapsed
        if elapsed > node[3]:
            node[3] = elapsed
        cell[0] = node[7]

    # What the inlined form (_inline_profile_calls) calls off its fast path:
    # the first call in a thread, and the first call of a path.
    absent = AttributeError

    def new_thread(self):
        return self.collector.new_thread()

    def child(self, cell):
        current = cell[0]
        node = current[0].get(self.id)
        if node is None:
            node = current[0][self.id] = _new_node(current, self.id)
        return node

    def raised(self):
        try:
            node = self.local.cell[0]
        except AttributeError:
            return
        if node[8] == self.id:
            node[4] += 1

    # Generators and coroutines (`start()` and `finish()` in place of enter
    # and exit, their suspensions wrapped): a call is timed only while its
    # frame runs, as a child of the node that was current when it started.
    # The run is found by its frame: these are slower, and rarer, calls.

    def start(self, _clock=time.perf_counter):
        try:
            cell = self.local.cell
        except AttributeError:
            cell = self.collector.new_thread()
        current = cell[0]
        node = current[0].get(self.id)
        if node is None:
            node = current[0][self.id] = _new_node(current, self.id)
        self.collector.runs[sys._getframe(1)] = run = _ProfileRun(node, cell, current)
        cell[0] = node
        run.start = _clock()

    def finish(self):
        run = self.collector.runs.pop(sys._getframe(1), None)
        if run is None:
            return
        if run.running:
            run.suspend()
        node = run.node
        node[1] += 1
        if run.total > node[3]:
            node[3] = run.total

    def suspended(self, value):
        run = self.collector.runs.get(sys._getframe(1))
        if run is not None:
            run.suspend()
        return value

    def resumed(self, value):
        run = self.collector.runs.get(sys._getframe(1))
        if run is not None:
            run.resume(self.collector)
        return value

    def delegate(self, iterable):
        run = self.collector.runs.get(sys._getframe(1))
        return iterable if run is None else _Delegation(run, self.collector, iter(iterable))

    def awaiting(self, awaitable):
        run = self.collector.runs.get(sys._getframe(1))
        return awaitable if run is None else _Delegation(run, self.collector, _await_iterator(awaitable))

    def aiter(self, iterable):
        run = self.collector.runs.get(sys._getframe(1))
        return iterable if run is None else _AsyncIteration(run, self.collector, type(iterable).__aiter__(iterable))

    def acontext(self, manager):
        run = self.collector.runs.get(sys._getframe(1))
        return manager if run is None else _AsyncContext(run, self.collector, manager)

    # The `with` form of the same (ProbeShape::with_statement).
    __enter__ = enter

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self.raised()
        self.exit()
        return False


class _ProfileRun(object):
    """One call of a profiled generator or coroutine: its node, the thread
    cell and node it runs under, and the time it has run."""
    __slots__ = ('node', 'cell', 'saved', 'start', 'total', 'running')

    def __init__(self, node, cell, saved):
        self.node = node
        self.cell = cell
        self.saved = saved
        self.start = 0.0
        self.total = 0.0
        self.running = True

    def suspend(self, _clock=time.perf_counter):
        if not self.running:
            return
        elapsed = _clock() - self.start
        self.running = False
        self.node[2] += elapsed
        self.total += elapsed
        if self.cell[0] is self.node:
            self.cell[0] = self.saved

    def resume(self, collector, _clock=time.perf_counter):
        if self.running:
            return
        try:
            cell = collector.local.cell
        except AttributeError:
            cell = collector.new_thread()
        self.cell = cell
        self.saved = cell[0]
        cell[0] = self.node
        self.running = True
        self.start = _clock()


def _await_iterator(awaitable):
    """What `await awaitable` iterates."""
    method = getattr(type(awaitable), '__await__', None)
    if method is not None:
        return method(awaitable)
    code = getattr(awaitable, 'gi_code', None)
    if code is not None and code.co_flags & 0x100:  # CO_ITERABLE_COROUTINE (types.coroutine)
        return awaitable
    raise TypeError("object %s can't be used in 'await' expression" % type(awaitable).__name__)


class _Delegation(object):
    """What a profiled generator's `yield from` or coroutine's `await` goes
    through: its run is suspended while a value the inner iterator yields is
    out (the frame is suspended with it), and runs again when resumed."""
    __slots__ = ('run', 'collector', 'inner')

    def __init__(self, run, collector, inner):
        self.run = run
        self.collector = collector
        self.inner = inner

    def __iter__(self):
        return self

    __await__ = __iter__

    def __next__(self):
        return self.send(None)

    def send(self, value):
        run = self.run
        run.resume(self.collector)
        out = next(self.inner) if value is None else self.inner.send(value)
        run.suspend()
        return out

    def throw(self, *args):
        run = self.run
        run.resume(self.collector)
        throw = getattr(self.inner, 'throw', None)
        if throw is None:
            raise args[1] if len(args) > 1 and args[1] is not None else args[0]
        out = throw(*args)
        run.suspend()
        return out

    def close(self):
        close = getattr(self.inner, 'close', None)
        if close is not None:
            close()


class _AsyncIteration(object):
    """An `async for`'s iterator, each `__anext__` awaited through a _Delegation."""
    __slots__ = ('run', 'collector', 'inner')

    def __init__(self, run, collector, inner):
        self.run = run
        self.collector = collector
        self.inner = inner

    def __aiter__(self):
        return self

    def __anext__(self):
        return _Delegation(self.run, self.collector, _await_iterator(type(self.inner).__anext__(self.inner)))


class _AsyncContext(object):
    """An `async with`'s manager, its `__aenter__` and `__aexit__` awaited
    through a _Delegation."""
    __slots__ = ('run', 'collector', 'inner')

    def __init__(self, run, collector, inner):
        self.run = run
        self.collector = collector
        self.inner = inner

    def __aenter__(self):
        return _Delegation(self.run, self.collector, _await_iterator(type(self.inner).__aenter__(self.inner)))

    def __aexit__(self, kind, value, traceback):
        return _Delegation(self.run, self.collector,
                           _await_iterator(type(self.inner).__aexit__(self.inner, kind, value, traceback)))


class _ProfileCollector(object):
    """Aggregates calls per thread and path of probed calls: no record per
    call, nothing written anywhere. Recursion is folded when reported."""
    inlines_calls = True

    def __init__(self):
        self.local = threading.local()
        self.roots = []
        self.runs = {}          # frame -> _ProfileRun of generators and coroutines
        self.lost = 0
        self.started = time.time()
        self.ended = None

    def probe(self, ident):
        return _ProfileProbe(ident, self)

    def new_thread(self):
        """The calling thread's cell, holding its (new) root node."""
        root = _new_node(None, 0)
        cell = self.local.cell = [root]
        ident = threading.get_ident()
        # Named now: a thread may be gone when the profile is read. Not
        # current_thread(): in a thread threading did not start it would
        # make (and leave) a dummy Thread object.
        thread = getattr(threading, '_active', {}).get(ident)
        self.roots.append((ident, getattr(thread, 'name', None), root))
        return cell

    def unwind(self, cell, ident):
        """The current node is not the probe's own (never for plain
        functions): go up to the probe's own, or give up."""
        node = root = cell[0]
        while node is not None and node[_ID] != ident:
            root = node
            node = node[_PARENT]
            self.lost += 1
        if node is None:
            cell[0] = root
        return node

    def close(self):
        self.ended = time.time()

    def report(self):
        names = dict((t.ident, t.name) for t in list(threading.enumerate()))
        threads = []
        for ident, name, root in list(self.roots):
            out = {'children': {}}
            for child in list(root[_CHILDREN].values()):
                self.fold(child, out, {})
            threads.append({'id': ident, 'name': name or names.get(ident, 'Thread-%d' % ident),
                            'calls': self.node_list(out)})
        return {'threads': threads, 'lost': self.lost, 'started': self.started,
                'ended': self.ended if self.ended is not None else time.time()}

    def fold(self, node, parent_out, path):
        """Adds node's figures under parent_out; a call of a function already
        on the path (recursion) goes into that outer call's figures, whose
        total already holds its time."""
        ident = node[_ID]
        children = list(node[_CHILDREN].values())
        own = node[_TOTAL] - sum(child[_TOTAL] for child in children)
        out = path.get(ident)
        outer = out is None
        if outer:
            out = parent_out['children'].get(ident)
            if out is None:
                out = parent_out['children'][ident] = {'id': ident, 'hits': 0, 'total': 0.0, 'max': 0.0,
                                                       'self': 0.0, 'raised': 0, 'children': {}}
            out['total'] += node[_TOTAL]
            out['max'] = max(out['max'], node[_MAX])
            path[ident] = out
        out['hits'] += node[_HITS]
        out['self'] += own
        out['raised'] += node[_RAISED]
        for child in children:
            self.fold(child, out, path)
        if outer:
            del path[ident]

    def node_list(self, out):
        nodes = []
        for node in out['children'].values():
            node = dict(node)
            children = self.node_list(node)
            if children:
                node['children'] = children
            else:
                del node['children']
            nodes.append(node)
        return nodes


# The function profile's probe inlined (ProbeShape::calls as the CLI sends
# it, `P.enter()` / `try:` / `except P.caught: P.raised(); raise` /
# `finally: P.exit()`, rewritten in the syntax tree of a plain function): what
# enter and exit did through the thread-local cell, done by statements over
# locals of the frame named from the marker, so a call pays no Python call and
# one thread-local read (bench/README.md, profile):
#
#     try:
#         C = P.local.cell              # the thread's cell
#     except P.absent:
#         C = P.new_thread()
#     U = C[0]                          # the caller's node
#     N = U[0].get(ID) or P.child(C)    # this path's node
#     C[0] = N
#     K = P.clock
#     S = K()
#     try:
#         <body>
#     except P.caught:
#         N[4] += 1
#         raise
#     finally:
#         S = K() - S
#         N[1] += 1
#         N[2] += S
#         if S > N[3]:
#             N[3] = S
#         C[0] = U
#
# Not for a function that reads its locals (`locals()`, `vars()`: it would
# see these names) nor for generators and coroutines (start/finish): those
# keep the calls, which count the same.
_INLINE_ENTER = """try:
    {C} = {P}.local.cell
except {P}.absent:
    {C} = {P}.new_thread()
{U} = {C}[0]
{N} = {U}[0].get({ID}) or {P}.child({C})
{C}[0] = {N}
{K} = {P}.clock
{S} = {K}()
"""
_INLINE_EXIT = """{S} = {K}() - {S}
{N}[1] += 1
{N}[2] += {S}
if {S} > {N}[3]:
    {N}[3] = {S}
{C}[0] = {U}
"""


def _probe_method_call(statement, prefix, method):
    """The probe constant of `statement` if it is `'<prefix><id>'.method()`."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if isinstance(call, ast.Call) and not call.args and not call.keywords \
            and isinstance(call.func, ast.Attribute) and call.func.attr == method \
            and isinstance(call.func.value, ast.Constant) and type(call.func.value.value) is str \
            and call.func.value.value.startswith(prefix) and call.func.value.value[len(prefix):].isdigit():
        return call.func.value.value
    return None


def _inline_statements(template, names, constant, line, column):
    """template's statements with each name and the probe constant put in."""
    tree = ast.parse(template.format(P='__pyhot_probe__', **names))

    class Probe(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id == '__pyhot_probe__':
                return ast.copy_location(ast.Constant(constant), node)
            return node
    return [_placed(Probe().visit(statement), line, column) for statement in tree.body]


def _inline_profile_calls(tree, prefix):
    """Rewrites in tree each plain function's profile calls as statements
    (see _INLINE_ENTER): the functions that read their locals keep them."""
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        body = function.body
        for index, statement in enumerate(body[:-1]):
            constant = _probe_method_call(statement, prefix, 'enter')
            wrapped = body[index + 1]
            if constant is None or not isinstance(wrapped, ast.Try) or len(wrapped.finalbody) != 1 \
                    or _probe_method_call(wrapped.finalbody[0], prefix, 'exit') != constant \
                    or len(wrapped.handlers) != 1 or len(wrapped.handlers[0].body) != 2 \
                    or _probe_method_call(wrapped.handlers[0].body[0], prefix, 'raised') != constant:
                continue
            if any(isinstance(n, ast.Name) and n.id in ('locals', 'vars') for n in _own_nodes(function)):
                break
            base = _record_name(prefix, function, '_call')
            names = dict((key, '%s_%s' % (base, key.lower())) for key in 'CUNKS')
            names['ID'] = constant[len(prefix):]
            enter = _inline_statements(_INLINE_ENTER, names, constant, statement.lineno, statement.col_offset)
            exit_call = wrapped.finalbody[0]
            wrapped.finalbody = _inline_statements(_INLINE_EXIT, names, constant,
                                                   exit_call.lineno, exit_call.col_offset)
            raised = wrapped.handlers[0].body[0]
            wrapped.handlers[0].body[0] = _placed(ast.parse('{N}[4] += 1'.format(**names)).body[0],
                                                  raised.lineno, raised.col_offset)
            body[index:index + 1] = enter
            break


# Line profile (`pyhot profile PID --lines`): a unit carries `line_timing`
# (PROTOCOL.md, "instrument"), and the agent inserts the timer's calls into
# the function's syntax tree, each at its statement's own line and column:
# `<record> = '<marker>:<id>'.enter()` and a `try:` around the body whose
# `finally:` calls `<record>.exit()`, and `<record>.line(<n>)` before every
# statement (n: its line less the def line), at the end of a loop's body and
# before its `continue`s (the loop's own line: its test or next item is
# timed there), first in an `except` clause, in a `finally` around a
# `with` body (the manager's exit is the with line's; a `continue` in it
# times the loop's line after that exit, from a `finally` around the
# outermost with in the loop, _LineTimers.after_jump), and in the guard of
# a `case _ if ...:` that never matches before each case (its pattern's
# test is the case line's). The record is a local of
# the frame, named from the marker (so it clashes with no name of the
# program): recursion, threads and generators each time their own run.

class _LineRecord(object):
    """One run of a line-timed function: the line that started last and
    when. Time runs from one line's start to the next line's (or the
    function's exit), as line_profiler counts it."""
    __slots__ = ('hits', 'times', 'last', 'start', 'running')

    def line(self, index, _clock=time.perf_counter):
        now = _clock()
        self.times[self.last] += now - self.start
        self.hits[index] += 1
        self.last = index
        self.start = now

    def exit(self, _clock=time.perf_counter):
        if self.running:
            self.times[self.last] += _clock() - self.start
            self.running = False

    # A generator's or coroutine's suspensions: the time suspended is no
    # line's (the _Delegation of `yield from` and `await` calls these too).
    def suspend(self, _clock=time.perf_counter):
        if self.running:
            self.times[self.last] += _clock() - self.start
            self.running = False

    def resume(self, collector=None, _clock=time.perf_counter):
        if not self.running:
            self.running = True
            self.start = _clock()

    def suspended(self, value):
        self.suspend()
        return value

    def resumed(self, value):
        self.resume()
        return value

    def delegate(self, iterable):
        return _Delegation(self, None, iter(iterable))

    def awaiting(self, awaitable):
        return _Delegation(self, None, _await_iterator(awaitable))

    def aiter(self, iterable):
        return _AsyncIteration(self, None, type(iterable).__aiter__(iterable))

    def acontext(self, manager):
        return _AsyncContext(self, None, manager)


class _LineTimerProbe(object):
    """The constant a line-timed function calls at its start (`enter()`):
    a new record over its thread's counts (hits and seconds per line, index
    0 the def line, whose hits are the calls)."""
    __slots__ = ('id', 'collector', 'local', 'size', 'scope')

    def __init__(self, ident, collector):
        self.id = ident
        self.collector = collector
        self.local = threading.local()
        self.size = 1
        self.scope = 0

    def enter(self, _new=object.__new__, _record=_LineRecord):
        try:
            hits, times = self.local.counts
        except AttributeError:
            hits, times = self.local.counts = self.collector.new_counts(self)
        hits[0] += 1
        record = _new(_record)
        record.hits = hits
        record.times = times
        record.last = 0
        record.running = True
        record.start = 0.0     # what runs before the first line is the def line's
        return record

    def case(self, hits, times, last, start, index, _clock=time.perf_counter):
        """A case line's timer (_INLINE_CASE): the clock now."""
        now = _clock()
        times[last] += now - start
        hits[index] += 1
        return now

    def counts(self, _clock=time.perf_counter):
        """A plain function's start (`H, T, c, l, s = <probe>.counts()`):
        its thread's hit and time lists, the clock, the line before the
        first (0) and its start; its lines are timed by statements, not
        calls (see _LineTimers)."""
        try:
            hits, times = self.local.counts
        except AttributeError:
            hits, times = self.local.counts = self.collector.new_counts(self)
        hits[0] += 1
        return hits, times, _clock, 0, 0.0


class _LineTimeCollector(object):
    """Hits and time per line of each timed function, per thread (so no
    two threads add to one count), added up when reported."""

    def __init__(self):
        self.probes = {}
        self.counts = []        # (probe, hits, times) of every thread
        self.lock = threading.Lock()
        self.started = time.time()
        self.ended = None

    def probe(self, ident):
        probe = self.probes.get(ident)
        if probe is None:
            probe = self.probes[ident] = _LineTimerProbe(ident, self)
        return probe

    def shape(self, ident, scope, size):
        probe = self.probe(ident)
        probe.scope = scope
        probe.size = max(probe.size, size)

    def new_counts(self, probe):
        counts = ([0] * probe.size, [0.0] * probe.size)
        with self.lock:
            self.counts.append((probe, counts[0], counts[1]))
        return counts

    def close(self):
        self.ended = time.time()

    def report(self):
        functions = {}
        for probe, hits, times in list(self.counts):
            entry = functions.get(probe.id)
            if entry is None:
                entry = functions[probe.id] = {'id': probe.id, 'calls': 0, 'lines': {}}
            entry['calls'] += hits[0]
            for index in range(1, len(hits)):
                if hits[index] or times[index]:
                    line = entry['lines'].setdefault(probe.scope + index, [0, 0.0])
                    line[0] += hits[index]
                    line[1] += times[index]
        out = []
        for ident in sorted(functions):
            entry = functions[ident]
            entry['lines'] = [[line, hits, total] for line, (hits, total)
                              in sorted(entry['lines'].items())]
            out.append(entry)
        return {'threads': [], 'functions': out, 'lost': 0, 'started': self.started,
                'ended': self.ended if self.ended is not None else time.time()}


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _record_call(record, method, args, line, column):
    call = ast.Call(ast.Attribute(ast.Name(record, ast.Load()), method, ast.Load()), args, [])
    return _placed(ast.Expr(call), line, column)


# The statements that time a line of a plain function, inlined (no Python
# call: about a third cheaper than a record's method, bench/README.md):
# the clock, the time since the last line's start added to it, a hit.
_INLINE_LINE = '{t} = {c}()\n{T}[{l}] += {t} - {s}\n{H}[{k}] += 1\n{l} = {k}\n{s} = {t}\n'


# The same as one expression that is false (3.10+: a case guard): the
# probe's case() adds the time and the hit and returns the clock.
_INLINE_CASE = '({s} := {P}.case({H}, {T}, {l}, {s}, {k})) < 0 or ({l} := {k}) < 0'


def _inline_line(names, index):
    """_INLINE_LINE's statements for line index, built directly: parsing
    the text for each line would hold the target's interpreter longer."""
    def name(key, store=False):
        return ast.Name(names[key], ast.Store() if store else ast.Load())

    def item(key, value):
        return ast.Subscript(name(key), value if sys.version_info >= (3, 9) else ast.Index(value), ast.Store())
    return [ast.Assign([name('t', True)], ast.Call(name('c'), [], [])),
            ast.AugAssign(item('T', name('l')), ast.Add(), ast.BinOp(name('t'), ast.Sub(), name('s'))),
            ast.AugAssign(item('H', ast.Constant(index)), ast.Add(), ast.Constant(1)),
            ast.Assign([name('l', True)], ast.Constant(index)),
            ast.Assign([name('s', True)], name('t'))]


class _LineTimers(object):
    """Inserts one function's line timing (see above); `index(line)` is a
    text line's count index (its real line less the def's real line).
    `names`: the locals of the inline form (H, T, c, l, s, t), or None for
    a record's calls (generators and coroutines, whose suspensions the
    record sees)."""

    BLOCKS = ('body', 'orelse', 'finalbody')

    def __init__(self, record, index, names=None):
        self.record = record
        self.index = index
        self.names = names
        self.size = 1
        # A `continue` inside a with: the loop's line is timed after the
        # manager's exit (which is the with line's), from a `finally` around
        # the outermost with in the loop, told by this local that it is a
        # continue (`jump`: the loop whose with is being timed).
        self.jump = None
        self.jump_name = (names['t'] if names else record) + '_jump'
        self.jumps = False           # a continue in the with of `jump`
        self.function_jumps = False  # any: the local is set at the start

    def timer(self, line, column):
        index = self.index(line)
        self.size = max(self.size, index + 1)
        if self.names is None:
            return [_record_call(self.record, 'line', [ast.Constant(index)], line, column)]
        return [_placed(statement, line, column) for statement in _inline_line(self.names, index)]

    def block(self, statements, loop=None):
        out = []
        previous = None
        for statement in statements:
            if not isinstance(statement, (ast.Global, ast.Nonlocal)) and statement.lineno != previous:
                # Statements sharing a line (`a; b`) are one line's hit.
                out.extend(self.timer(statement.lineno, statement.col_offset))
            if isinstance(statement, ast.Continue) and loop is not None:
                if self.jump is loop:
                    self.jumps = True
                    out.append(_placed(ast.Assign([ast.Name(self.jump_name, ast.Store())], ast.Constant(1)),
                                       statement.lineno, statement.col_offset))
                else:
                    out.extend(self.timer(loop.lineno, statement.col_offset))
            previous = statement.lineno
            out.append(statement if isinstance(statement, _SCOPES) else self.nested(statement, loop))
        return out

    def nested(self, statement, loop):
        """Times the blocks of statement; returns what takes its place."""
        outermost_with = isinstance(statement, (ast.With, ast.AsyncWith)) and loop is not None \
            and self.jump is not loop
        if outermost_with:
            outer = (self.jump, self.jumps)
            self.jump, self.jumps = loop, False
        for field in self.BLOCKS:
            statements = getattr(statement, field, None)
            if isinstance(statements, list) and statements:
                # A loop's `continue` is timed on the loop's line; its `else`
                # is not its body (a `continue` there is the outer loop's).
                owner = statement if field == 'body' and isinstance(statement, _LOOPS) else loop
                setattr(statement, field, self.block(statements, owner))
        if isinstance(statement, _LOOPS):
            last = statement.body[-1]
            statement.body.extend(self.timer(statement.lineno, last.col_offset))
        for handler in getattr(statement, 'handlers', ()):
            first = handler.body[0]
            handler.body = self.timer(handler.lineno, first.col_offset) + self.block(handler.body, loop)
        if isinstance(statement, (ast.With, ast.AsyncWith)):
            # The manager's exit is the with line's (line_profiler's line
            # event there, 3.10+): timed in a `finally` inside the with, so
            # also after a return, break or exception in its body.
            first = statement.body[0]
            inner = ast.Try(statement.body, [], [], self.timer(statement.lineno, first.col_offset))
            inner.lineno, inner.col_offset = first.lineno, first.col_offset
            statement.body = [inner]
            if outermost_with:
                jumped = self.jumps
                self.jump, self.jumps = outer
                if jumped:
                    return self.after_jump(statement, loop)
        cases = []
        for case in getattr(statement, 'cases', ()):
            # A case's pattern is tested on its line: a `case _ if <timer>:`
            # that never matches goes first (a guard makes it refutable).
            pattern = case.pattern
            cases.append(_placed(ast.match_case(ast.MatchAs(None, None), self.case_timer(pattern.lineno),
                                                [ast.Pass()]), pattern.lineno, pattern.col_offset))
            case.body = self.block(case.body, loop)
            cases.append(case)
        if cases:
            statement.cases = cases
        return statement

    def after_jump(self, statement, loop):
        """`try: <with> finally: if J: J = 0; <loop line's timer>`."""
        line, column = statement.lineno, statement.col_offset
        jump = lambda context: ast.Name(self.jump_name, context)  # noqa: E731
        reset = _placed(ast.Assign([jump(ast.Store())], ast.Constant(0)), line, column)
        check = _placed(ast.If(jump(ast.Load()), [reset], []), line, column)
        check.body.extend(self.timer(loop.lineno, column))
        outer = ast.Try([statement], [], [], [check])
        outer.lineno, outer.col_offset = line, column
        outer.end_lineno, outer.end_col_offset = statement.end_lineno, statement.end_col_offset
        self.function_jumps = True
        return outer

    def case_timer(self, line):
        """timer(line) as an expression that is false."""
        index = self.index(line)
        self.size = max(self.size, index + 1)
        if self.names is None:
            return ast.Call(ast.Attribute(ast.Name(self.record, ast.Load()), 'line', ast.Load()),
                            [ast.Constant(index)], [])
        return ast.parse(_INLINE_CASE.format(k=index, P=repr(self.constant), **self.names), mode='eval').body


class _Suspensions(ast.NodeTransformer):
    """A generator's or coroutine's suspensions through its record, so the
    time suspended is not counted (nested scopes left alone)."""

    def __init__(self, record):
        self.record = record

    def call(self, method, node, value):
        out = ast.Call(ast.Attribute(ast.Name(self.record, ast.Load()), method, ast.Load()), [value], [])
        return ast.copy_location(out, node)

    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_FunctionDef

    def visit_Yield(self, node):
        self.generic_visit(node)
        value = node.value if node.value is not None else ast.copy_location(ast.Constant(None), node)
        node.value = self.call('suspended', node, value)
        return self.call('resumed', node, node)

    def visit_YieldFrom(self, node):
        self.generic_visit(node)
        node.value = self.call('delegate', node, node.value)
        return node

    def visit_Await(self, node):
        self.generic_visit(node)
        node.value = self.call('awaiting', node, node.value)
        return node

    def visit_AsyncFor(self, node):
        self.generic_visit(node)
        node.iter = self.call('aiter', node.iter, node.iter)
        return node

    def visit_AsyncWith(self, node):
        self.generic_visit(node)
        for item in node.items:
            item.context_expr = self.call('acontext', item.context_expr, item.context_expr)
        return node


def _record_name(marker, function, suffix='_lines'):
    """The record's local: from the marker, and not a name function uses."""
    base = '_' + ''.join(c if c.isalnum() else '_' for c in marker).strip('_') + suffix
    used = set(n.id for n in ast.walk(function) if isinstance(n, ast.Name))
    used.update(a.arg for a in ast.walk(function) if isinstance(a, ast.arg))
    name = base
    while any(n.startswith(name) for n in used):
        name += '_'
    return name


def _insert_line_timers(tree, raw, lines, prefix, qualname, shapes):
    """tree with the line timing of each `line_timing` entry inserted; the
    count size of each probe goes into shapes (probe id -> (def line, size))."""
    text_line = {}
    for index, real in enumerate(lines):
        text_line.setdefault(real, index + 1)
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.setdefault(node.lineno, node)
    for entry in _field(raw, 'line_timing', list):
        if not isinstance(entry, dict):
            raise _Failure('protocol', 'a line timing entry is not a JSON object')
        scope = _int_field(entry, 'scope', 1, MAX_LINE)
        probe = _int_field(entry, 'probe', 1, MAX_ID)
        function = functions.get(text_line.get(scope))
        if function is None:
            raise _Failure('internal', 'no function at line %d of %s' % (scope, qualname))
        record = _record_name(prefix, function)
        body = function.body
        doc = []
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            doc, body = body[:1], body[1:]
        if not body:
            continue
        reads_locals = sorted(set(n.id for n in _own_nodes(function)
                                  if isinstance(n, ast.Name) and n.id in ('locals', 'vars')))
        if reads_locals:
            # The timing keeps its state in the frame's locals: `f(**locals())`
            # or `json.dumps(vars())` would see it and fail while profiled.
            raise _Failure('refused', '%s calls %s(): line timing would add names to its locals; '
                           'time the lines of a function it calls, or profile it whole '
                           '(pyhot profile PID PATTERN)' % (qualname, reads_locals[0]))
        suspends = any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await, ast.AsyncFor, ast.AsyncWith))
                       for n in _own_nodes(function)) or isinstance(function, ast.AsyncFunctionDef)
        index = lambda line: max(1, lines[line - 1] - scope)  # noqa: E731
        first, last = body[0], body[-1]
        end_line = getattr(last, 'end_lineno', None) or last.lineno
        constant = ast.Constant('%s%d' % (prefix, probe))
        if suspends:
            timers = _LineTimers(record, index)
            body = [_Suspensions(record).visit(s) for s in body]
            enter = ast.Assign([ast.Name(record, ast.Store())],
                               ast.Call(ast.Attribute(constant, 'enter', ast.Load()), [], []))
            exits = [_record_call(record, 'exit', [], end_line, first.col_offset)]
        else:
            names = dict((key, '%s_%s' % (record, key.lower() + ('1' if key.isupper() else '')))
                         for key in ('H', 'T', 'c', 'l', 's', 't'))
            timers = _LineTimers(record, index, names)
            timers.constant = constant.value
            enter = ast.Assign([ast.Tuple([ast.Name(names[k], ast.Store()) for k in 'HTcls'], ast.Store())],
                               ast.Call(ast.Attribute(constant, 'counts', ast.Load()), [], []))
            exits = [_placed(statement, end_line, first.col_offset) for statement in ast.parse(
                '{T}[{l}] += {c}() - {s}\n'.format(**names)).body]
        timed = timers.block(body)
        if timers.function_jumps:
            enter = [enter, ast.Assign([ast.Name(timers.jump_name, ast.Store())], ast.Constant(0))]
        else:
            enter = [enter]
        wrapped = ast.Try(timed, [], [], exits)
        wrapped.lineno, wrapped.col_offset = first.lineno, first.col_offset
        wrapped.end_lineno, wrapped.end_col_offset = end_line, first.col_offset
        function.body = doc + [_placed(statement, first.lineno, first.col_offset) for statement in enter] + [wrapped]
        shapes[probe] = (scope, timers.size)
    return ast.fix_missing_locations(tree)


def _own_nodes(function):
    """The nodes of function's body, not of scopes nested in it."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES + (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            stack.extend(ast.iter_child_nodes(node))


# ---------------------------------------------------------------------------
# Looking without changing: stacks, values, instances (ops `stack`,
# `inspect`, `instances`). Nothing here imports a module, binds a name or
# fills a cache of the program's; the only user code that runs is a
# __repr__ (bounded, and a failure is reported, never hidden) and an
# expression the user gave.

# Not __file__: the agent may run from text with no file.
_AGENT_FILE = (lambda: None).__code__.co_filename
REPR_MAX_LENGTH = 4000
MAX_DEPTH = 10
MAX_ITEMS = 1000
MAX_INSTANCES = 100000
# How long `instances` may look at the objects of the heap (its own
# thread holds the GIL only between switches, but the program waits for
# the answer's pause of each gc call).
INSTANCES_TIME_LIMIT = 2.0
MAX_TASK_CHAIN = 100
MAX_FRAMES = 1000
_CONTAINERS = (list, tuple, set, frozenset, dict)
_NUMBERS = (int, float, bool, type(None))  # repr'd without user code
_CLASS_BOILERPLATE = frozenset(('__module__', '__qualname__', '__doc__', '__dict__', '__weakref__',
                                '__firstlineno__', '__static_attributes__'))


def _type_label(obj):
    cls = type(obj)
    module = getattr(cls, '__module__', None)
    name = getattr(cls, '__qualname__', cls.__name__)
    if module in (None, 'builtins'):
        return name
    return '%s.%s' % (module, name)


def _shorten(text, limit):
    if len(text) > limit:
        return text[:max(limit - 3, 0)] + '...'
    return text


class _BoundedRepr(object):
    """repr() bounded in depth, items and length: stack, inspect and
    instances show values with it, and so do watch and probe events.
    Builtin containers are walked here (their own repr could be huge);
    anything else is asked for its repr, and a __repr__ that raises is
    reported as such, whole (that it raised is the point)."""

    def __init__(self, length=200, items=20, depth=3):
        self.length = length
        self.items = items
        self.depth = depth

    def __call__(self, obj, level=0):
        kind = type(obj)
        if kind in _CONTAINERS:
            return _shorten(self.container(obj, level), self.length)
        if kind in _NUMBERS:
            return _shorten(repr(obj), self.length)
        if _is_a(obj, (str, bytes, bytearray)):
            text = repr(obj[:self.length])
            return text if len(obj) <= self.length else _shorten(text, self.length)
        return self.leaf(obj)

    def leaf(self, obj):
        try:
            text = repr(obj)
        except Exception as exc:
            return '<%s object at %#x: its __repr__ raised %s>' % (
                _type_label(obj), id(obj), _one_line(_safe_text(exc)))
        if not isinstance(text, str):
            return '<%s: __repr__ returned %s, not str>' % (_type_label(obj), _type_label(text))
        return _shorten(text, self.length)

    def container(self, obj, level):
        kind = type(obj)
        if kind is dict:
            opening, closing = '{', '}'
        elif kind is list:
            opening, closing = '[', ']'
        elif kind is tuple:
            opening, closing = '(', ')'
        elif not obj:
            return '%s()' % kind.__name__
        else:
            opening, closing = (kind.__name__ + '({', '})') if kind is frozenset else ('{', '}')
        if not obj:
            return opening + closing
        if level >= self.depth:
            return opening + '...' + closing
        parts = []
        used = 0
        for index, item in enumerate(obj.items() if kind is dict else obj):
            if index >= self.items or used > self.length:
                parts.append('...')
                break
            if kind is dict:
                part = '%s: %s' % (self(item[0], level + 1), self(item[1], level + 1))
            else:
                part = self(item, level + 1)
            used += len(part) + 2
            parts.append(part)
        if kind is tuple and len(obj) == 1:
            return '(%s,)' % parts[0]
        return opening + ', '.join(parts) + closing


def _source_line(filename, line, cache):
    """The text of a line, from linecache's cache when it has the file, else
    from the file (linecache itself is not filled: it is the program's)."""
    if not line or not filename:
        return ''
    lines = cache.get(filename)
    if lines is None:
        entry = linecache.cache.get(filename)
        if entry is not None and len(entry) >= 3:
            lines = entry[2]
        else:
            lines = ()
            if not (filename.startswith('<') and filename.endswith('>')):
                try:
                    with open(filename, 'rb') as f:
                        data = f.read(16 * 1024 * 1024)
                    lines = data.decode('utf-8', 'replace').splitlines()
                except (OSError, ValueError):
                    pass
        cache[filename] = lines
    if 0 < line <= len(lines):
        return lines[line - 1].strip()[:500]
    return ''


def _code_name(code):
    return getattr(code, 'co_qualname', code.co_name)


class _FrameView(object):
    """Frames as the protocol describes them, without pyhot's own."""

    def __init__(self, with_locals, bounded):
        self.with_locals = with_locals
        self.bounded = bounded
        self.lines = {}

    def is_own(self, code):
        return code.co_filename == _AGENT_FILE

    def frame(self, frame, line=None):
        code = frame.f_code
        if line is None:
            line = frame.f_lineno
        out = {'file': code.co_filename, 'line': line or 0, 'function': _code_name(code),
               'text': _source_line(code.co_filename, line, self.lines)}
        if self.with_locals:
            out['locals'] = self.locals(frame)
        return out

    def locals(self, frame):
        try:
            names = frame.f_locals
            items = list(names.items())[:MAX_ITEMS]
        except BaseException as exc:
            return {'<locals>': 'cannot be read: %s' % _one_line(_exception_text(exc))}
        return dict((str(name), self.bounded(value)) for name, value in items)

    def stack(self, frame):
        """Innermost last, as a traceback prints it."""
        frames = []
        while frame is not None and len(frames) < MAX_FRAMES:
            if not self.is_own(frame.f_code):
                frames.append(self.frame(frame))
            frame = frame.f_back
        frames.reverse()
        return frames


def _coroutine_chain(coro, view):
    """A coroutine's await chain, outermost first: each coroutine or
    generator it awaits through cr_await/gi_yieldfrom."""
    frames = []
    seen = set()
    while coro is not None and id(coro) not in seen and len(frames) < MAX_TASK_CHAIN:
        seen.add(id(coro))
        frame = getattr(coro, 'cr_frame', None) or getattr(coro, 'gi_frame', None) \
            or getattr(coro, 'ag_frame', None)
        if frame is not None:
            frames.append(view.frame(frame))
        inner = None
        for name in ('cr_await', 'gi_yieldfrom', 'ag_await'):
            inner = getattr(coro, name, None)
            if inner is not None:
                break
        if inner is None:
            break
        if not any(hasattr(inner, name) for name in ('cr_frame', 'gi_frame', 'ag_frame')):
            break
        coro = inner
    return frames


def _future_label(future, names):
    task = names.get(id(future))
    if task is not None:
        return 'task %r' % task
    # Never the future's own repr: it calls back into user objects.
    return '%s at %#x' % (_type_label(future), id(future))


class _Inspections(object):
    """The read-only ops (loader/PROTOCOL.md): stack, inspect, instances."""

    def table(self):
        return {'stack': self.op_stack, 'inspect': self.op_inspect,
                'instances': self.op_instances}

    # -- stack ----------------------------------------------------------------

    def op_stack(self, request):
        with_tasks = _flag_field(request, 'async')
        view = _FrameView(_flag_field(request, 'locals'),
                          _BoundedRepr(_int_field(request, 'repr_length', 10, REPR_MAX_LENGTH, 200)))
        frames = sys._current_frames()
        by_ident = dict((thread.ident, thread) for thread in threading.enumerate())
        main = threading.main_thread().ident
        threads = []
        for ident, frame in frames.items():
            thread = by_ident.get(ident)
            name = thread.name if thread is not None else None
            if name is not None and name.startswith(THREAD_NAME):
                continue
            stack = view.stack(frame)
            if not stack:
                continue  # a thread of pyhot's that threading does not know (its bootstrap)
            threads.append({
                'ident': ident, 'name': name if name is not None else '(not started by threading)',
                'native_id': getattr(thread, 'native_id', None) if thread is not None else None,
                'daemon': bool(thread.daemon) if thread is not None else None,
                'main': ident == main, 'frames': stack})
        del frames
        threads.sort(key=lambda t: (not t['main'], t['name']))
        reply = {'pid': os.getpid(), 'threads': threads}
        if with_tasks:
            reply['tasks'] = self.tasks(view)
        return reply

    def tasks(self, view):
        """Every asyncio task the asyncio module knows of (never imported
        here: a program that has not imported it has none)."""
        tasks_module = sys.modules.get('asyncio.tasks')
        if tasks_module is None:
            return []
        found = []
        for registry in ('_all_tasks', '_scheduled_tasks', '_eager_tasks'):
            tasks = getattr(tasks_module, registry, None)
            if tasks is not None:
                found.extend(list(tasks))
        unique = []
        seen = set()
        for task in found:
            if id(task) not in seen:
                seen.add(id(task))
                unique.append(task)
        names = {}
        for task in unique:
            try:
                names[id(task)] = str(task.get_name())
            except BaseException:
                names[id(task)] = '?'
        out = []
        for task in unique:
            try:
                done = task.done()
            except BaseException:
                done = False
            if done:
                continue
            loop = getattr(task, '_loop', None)
            try:
                coro = task.get_coro()
            except BaseException:
                coro = None
            frames = _coroutine_chain(coro, view)
            entry = {'name': names[id(task)], 'loop': '%#x' % id(loop),
                     'loop_thread': getattr(loop, '_thread_id', None),
                     'coroutine': _code_name(coro.cr_code) if hasattr(coro, 'cr_code') else
                     _type_label(coro), 'frames': frames}
            # What the task's innermost await is parked on (a future, a task).
            waiter = getattr(task, '_fut_waiter', None)
            if waiter is not None:
                entry['awaiting'] = _future_label(waiter, names)
            out.append(entry)
        del found, unique
        out.sort(key=lambda t: (str(t['loop_thread']), t['name']))
        return out

    # -- inspect --------------------------------------------------------------

    def op_inspect(self, request):
        path = _field(request, 'path', str)
        depth = _int_field(request, 'depth', 0, MAX_DEPTH, 1)
        bounded = _BoundedRepr(_int_field(request, 'repr_length', 10, REPR_MAX_LENGTH, 200),
                               _int_field(request, 'items', 1, MAX_ITEMS, 50), depth + 1)
        expr = _field(request, 'expr', str, None)
        module, value, where = _resolve_path(path)
        if expr is not None:
            value = _evaluate(expr, value, module)
            where = '%s -> %s' % (where, expr)
        return {'path': where, 'value': _describe(value, depth, bounded)}

    # -- instances ------------------------------------------------------------

    def op_instances(self, request):
        path = _field(request, 'class', str)
        limit = _int_field(request, 'limit', 0, MAX_INSTANCES, 20)
        time_limit = _field(request, 'time_limit', (int, float), INSTANCES_TIME_LIMIT)
        if not 0 < time_limit <= 60:
            raise _Failure('protocol', "field 'time_limit' must be above 0 and at most 60 seconds")
        bounded = _BoundedRepr(_int_field(request, 'repr_length', 10, REPR_MAX_LENGTH, 200), 10, 1)
        expr = _field(request, 'expr', str, None)
        code = _compile_expression(expr) if expr is not None else None
        module, cls, where = _resolve_path(path)
        if not _is_a(cls, type):
            raise _Failure('not_found', '%s is a %s, not a class' % (where, _type_label(cls)))
        started = time.monotonic()
        found, scanned, complete = _find_instances(cls, started + time_limit)
        shown = []
        for obj in found[:limit]:
            entry = {'id': '%#x' % id(obj), 'type': _type_label(obj)}
            if code is not None:
                entry['value'] = bounded(_evaluate_code(code, obj, module))
            else:
                entry['attributes'] = _instance_attributes(obj, bounded)
            shown.append(entry)
        reply = {'class': where, 'count': len(found), 'instances': shown, 'scanned': scanned,
                 'complete': complete, 'seconds': round(time.monotonic() - started, 6)}
        del found
        return reply


def _resolve_path(path):
    """MODULE[.NAME.ATTR...]: the longest prefix that is a loaded module
    (nothing is imported), then attributes found without running a
    property unless the path names one."""
    parts = path.split('.')
    if not path or not all(part.isidentifier() for part in parts):
        raise _Failure('not_found', "'%s' is not a dotted Python name (MODULE.NAME.ATTR)" % path[:200])
    for end in range(len(parts), 0, -1):
        module = sys.modules.get('.'.join(parts[:end]))
        if _is_a(module, types.ModuleType):
            break
    else:
        raise _Failure('not_found', "no module named '%s' is loaded in process %d (pyhot imports "
                       "nothing)%s" % (parts[0], os.getpid(), _nearest(parts[0], list(sys.modules))))
    where = '.'.join(parts[:end])
    value = module
    for part in parts[end:]:
        value = _attribute(value, part, where)
        where += '.' + part
    return module, value, where


def _edit_distance(a, b):
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _nearest(name, candidates):
    """'; nearest: A, B' for names a slip of the keyboard away, else ''."""
    scored = []
    for candidate in candidates:
        if not isinstance(candidate, str) or abs(len(candidate) - len(name)) > 3:
            continue
        distance = _edit_distance(name.lower(), candidate.lower())
        if distance <= max(1, len(name) // 3):
            scored.append((distance, candidate))
    scored.sort()
    return '; nearest: %s' % ', '.join(c for _, c in scored[:3]) if scored else ''


def _attribute(owner, name, where):
    if _is_a(owner, types.ModuleType):
        namespace = owner.__dict__
        if name in namespace:
            return namespace[name]
        raise _Failure('not_found', "module '%s' has no global '%s'%s"
                       % (where, name, _nearest(name, list(namespace)[:10000])))
    holders = ((_instance_dict(owner) or {}),) + tuple(
        c.__dict__ for c in (owner.__mro__ if _is_a(owner, type) else type(owner).__mro__))
    for holder in holders:
        if name in holder:
            found = holder[name]
            break
    else:
        names = [key for holder in holders for key in list(holder)[:10000]]
        raise _Failure('not_found', "%s (a %s) has no attribute '%s'%s"
                       % (where, _type_label(owner), name, _nearest(name, names)))
    if hasattr(type(found), '__get__') and not _is_a(found, (types.FunctionType, staticmethod, classmethod,
                                                               type)):
        # A property or other descriptor: the path asked for what it gives.
        try:
            return getattr(owner, name)
        except BaseException as exc:
            raise _Failure('refused', "reading %s.%s raised %s" % (where, name,
                                                                  _one_line(_exception_text(exc))))
    return found


def _compile_expression(expr):
    try:
        return compile(expr, '<pyhot expression>', 'eval', dont_inherit=True)
    except SyntaxError as exc:
        raise _Failure('compile', 'the expression is not valid Python: %s' % exc.msg)


def _evaluate_code(code, obj, module):
    # The module's globals as they are, read through a copy (a name the
    # expression binds stays out of the module); the object is `obj`.
    namespace = dict(module.__dict__)
    namespace['obj'] = obj
    try:
        return eval(code, namespace)
    except BaseException as exc:
        raise _Failure('refused', 'the expression raised %s' % _one_line(_exception_text(exc)))


def _evaluate(expr, obj, module):
    return _evaluate_code(_compile_expression(expr), obj, module)


def _describe(value, depth, bounded):
    """A value as the protocol's tree: its type, its bounded repr, and to
    `depth` levels its members (a container's items, a module's globals,
    a class's or an instance's attributes)."""
    out = {'type': _type_label(value), 'repr': bounded(value)}
    if depth <= 0:
        return out
    members = None
    if type(value) is dict:
        members = [(bounded(k), v) for k, v in value.items()]
    elif type(value) in (list, tuple):
        members = [('[%d]' % i, v) for i, v in enumerate(value)]
    elif type(value) in (set, frozenset):
        members = [('-', v) for v in value]
    elif _is_a(value, types.ModuleType):
        members = _public(value.__dict__)
    elif _is_a(value, type):
        members = [(k, v) for k, v in sorted(value.__dict__.items(), key=lambda kv: str(kv[0]))
                   if k not in _CLASS_BOILERPLATE]
    else:
        attributes = _instance_dict(value)
        if isinstance(attributes, dict):
            members = sorted(((str(k), v) for k, v in attributes.items()), key=lambda kv: kv[0])
    if members is not None:
        out['count'] = len(members)
        out['members'] = [dict(_describe(v, depth - 1, bounded), name=str(k))
                          for k, v in members[:bounded.items]]
    return out


def _public(namespace):
    return sorted(((str(k), v) for k, v in namespace.items()
                   if not (str(k).startswith('__') and str(k).endswith('__'))), key=lambda kv: kv[0])


def _instance_attributes(obj, bounded):
    attributes = _instance_dict(obj)
    out = {}
    if isinstance(attributes, dict):
        for name, value in list(attributes.items())[:MAX_ITEMS]:
            out[str(name)] = bounded(value)
    for cls in type(obj).__mro__:
        for name in cls.__dict__.get('__slots__', ()) if isinstance(cls.__dict__.get('__slots__', ()),
                                                                   (tuple, list)) else ():
            descriptor = cls.__dict__.get(name)
            if descriptor is not None and hasattr(descriptor, '__get__'):
                try:
                    out[name] = bounded(descriptor.__get__(obj, type(obj)))
                except AttributeError:
                    pass
    return out


def _subclasses(cls):
    found = [cls]
    seen = {id(cls)}
    index = 0
    while index < len(found):
        try:
            below = type.__subclasses__(found[index])
        except TypeError:
            below = []
        for sub in below:
            if id(sub) not in seen:
                seen.add(id(sub))
                found.append(sub)
        index += 1
    return found


def _find_instances(cls, deadline):
    """The live instances of cls and its subclasses, by type (no
    __instancecheck__ runs). An instance of a class defined in Python
    refers to its class, so gc.get_referrers finds them in one pass;
    other classes need a walk over every object, which stops at the
    deadline. Returns (instances, objects scanned or None, complete)."""
    classes = _subclasses(cls)
    wanted = set(id(c) for c in classes)
    if all(c.__flags__ & (1 << 9) for c in classes):  # Py_TPFLAGS_HEAPTYPE
        candidates = gc.get_referrers(*classes)
        found = [obj for obj in candidates if id(type(obj)) in wanted]
        del candidates
        return found, None, True
    objects = gc.get_objects()
    found = []
    complete = True
    scanned = 0
    for obj in objects:
        if scanned % 4096 == 0 and time.monotonic() > deadline:
            complete = False
            break
        scanned += 1
        if id(type(obj)) in wanted:
            found.append(obj)
    del objects
    return found, scanned, complete


# ---------------------------------------------------------------------------
# Watch: one event per call of a watched function (its arguments, its return
# value or exception, its time), kept in a bounded ring the client reads with
# a cursor. A slow client loses the oldest events, counted; the program never
# waits for it. The filter and the expressions are compiled once, when the
# watch is made, and evaluated only when a watched function runs.

WATCH_RING = 1000          # events kept for the client
WATCH_READ_MAX = 200       # events per read
WATCH_OPEN_CALLS = 10000   # calls entered and not yet left (abandoned generators)
WATCH_MAX_ARGS = 32
WATCH_ITEMS = 10           # items of a container shown
WATCH_TRACEBACK_LINES = 40


class _ReturnProbes(ast.NodeTransformer):
    """`return x` inside a probe's `with` (not in a nested function) becomes
    `return '<marker>'.returned(x)`: the marker constant is the probe object
    once bound, so the probe sees the value, on the return's own line."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.marker = None

    def visit_With(self, node):
        items = node.items
        expr = items[0].context_expr if len(items) == 1 else None
        value = getattr(expr, 'value', getattr(expr, 's', None))
        if type(value) is str and value.startswith(self.prefix) and items[0].optional_vars is None:
            outer, self.marker = self.marker, value
            self.generic_visit(node)
            self.marker = outer
            return node
        return self.generic_visit(node)

    def visit_FunctionDef(self, node):
        outer, self.marker = self.marker, None
        self.generic_visit(node)
        self.marker = outer
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Return(self, node):
        self.generic_visit(node)
        if self.marker is None or node.value is None:
            return node     # no value: the probe reports None (and async generators allow no other)
        marker = ast.copy_location(ast.Constant(self.marker), node.value)
        method = ast.copy_location(ast.Attribute(marker, 'returned', ast.Load()), node.value)
        node.value = ast.copy_location(ast.Call(method, [node.value], []), node.value)
        return node




def _safe_text(exc):
    try:
        return _exception_text(exc)[:200]
    except Exception:
        return type(exc).__name__


def _names_in(code):
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names_in(c)
    return names


def _watch_collector(request):
    options = _field(request, 'watch', dict, {})
    source = _field(options, 'filter', str, '')
    exprs = _field(options, 'exprs', list, [])
    if not all(type(e) is str and e for e in exprs) or len(exprs) > 32:
        raise _Failure('protocol', "field 'exprs' must be up to 32 expressions")

    def compiled(text, what):
        try:
            return compile(text, '<pyhot watch %s>' % what, 'eval')
        except (SyntaxError, ValueError) as exc:
            raise _Failure('refused', '%s %r does not compile: %s'
                           % (what, text, _exception_text(exc)))
    return _WatchCollector(
        compiled(source, '--filter') if source else None,
        [(text, compiled(text, '--expr')) for text in exprs],
        _int_field(options, 'limit', 0, MAX_ID, 0),
        _field(options, 'exceptions', bool, False),
        _BoundedRepr(_int_field(options, 'length', 8, 100000, 120), WATCH_ITEMS,
                     _int_field(options, 'depth', 1, 20, 3)))


class _WatchCall(object):
    """A call entered and not yet left."""
    __slots__ = ('start', 'wall', 'names', 'args', 'result', 'globals')


class _Probe(object):
    """What instrumented code calls (watch, line probe, trace): its id and
    its collector. Never raises into the program, never swallows its
    exceptions: what goes wrong in pyhot's part is the collector's `failed`."""
    __slots__ = ('id', 'collector')

    def __init__(self, ident, collector):
        self.id = ident
        self.collector = collector


class _EnteringProbe(_Probe):
    """The object a `with` wrapped around a function's body enters: the
    collector sees the function's frame (inherited, not called through,
    so frame 1 is the instrumented function's)."""
    __slots__ = ()

    def __enter__(self):
        collector = self.collector
        if not collector.stopped:
            try:
                collector.enter(sys._getframe(1))
            except Exception as exc:
                collector.failed(exc)


class _WatchProbe(_EnteringProbe):
    """The object a watched function's `with` enters."""
    __slots__ = ()

    def returned(self, value):
        call = self.collector.calls.get(id(sys._getframe(1)))
        if call is not None:
            call.result = value
        return value

    def __exit__(self, kind, value, tb):
        collector = self.collector
        call = collector.calls.pop(id(sys._getframe(1)), None)
        if call is not None and not collector.stopped:
            try:
                collector.leave(self.id, call, kind, value, tb)
            except Exception as exc:
                collector.failed(exc)
        return False


class _EventRing(object):
    """The events of a watch, a line probe or a trace: numbered, the last
    WATCH_RING kept, read with a cursor; `limit` events at most."""

    def __init__(self, limit, bounded):
        self.limit = limit
        self.bounded = bounded
        self.ring = collections.deque(maxlen=WATCH_RING)
        self.lock = threading.Lock()
        self.sequence = 0       # events made
        self.matched = 0
        self.filter_errors = 0
        self.first_filter_error = None
        self.errors = 0
        self.first_error = None
        self.dropped_calls = 0
        self.stopped = False
        self.started = time.time()

    def record(self, event):
        thread = threading.get_ident()
        event['thread'] = thread
        named = getattr(threading, '_active', {}).get(thread)
        event['thread_name'] = getattr(named, 'name', None) or 'Thread-%d' % thread
        with self.lock:
            if self.stopped:
                return
            self.matched += 1
            self.sequence += 1
            event['seq'] = self.sequence
            self.ring.append(event)
            if self.limit and self.matched >= self.limit:
                self.stopped = True

    def failed(self, exc):
        self.errors += 1
        if self.first_error is None:
            self.first_error = _safe_text(exc)

    def evaluate(self, code, scope, names):
        try:
            return self.bounded(eval(code, scope, names))
        except Exception as exc:
            return '<raised %s>' % _safe_text(exc)

    def events(self, cursor):
        with self.lock:
            ring = list(self.ring)
            made = self.sequence
        oldest = ring[0]['seq'] if ring else made + 1
        lost = max(0, oldest - cursor - 1) if cursor < made else 0
        out = [e for e in ring if e['seq'] > cursor][:WATCH_READ_MAX]
        return {'events': out, 'cursor': out[-1]['seq'] if out else max(cursor, made),
                'lost': lost, 'matched': self.matched, 'done': self.stopped and (
                    not out or out[-1]['seq'] == made),
                'filter_errors': self.filter_errors, 'filter_error': self.first_filter_error,
                'errors': self.errors, 'error': self.first_error,
                'unfinished': self.dropped_calls}

    def close(self):
        self.stopped = True

    def report(self):
        # instrument_read and instrument_remove's `data`, as a profile's.
        return {'threads': [], 'lost': 0, 'started': self.started, 'ended': time.time()}


class _WatchCollector(_EventRing):
    sees_returns = True

    def __init__(self, condition, exprs, limit, exceptions_only, bounded):
        _EventRing.__init__(self, limit, bounded)
        self.condition = condition
        # A filter over the arguments only is decided when the call starts.
        self.at_entry = condition is not None and not (
            _names_in(condition) & set(('_return', '_exception')))
        self.exprs = exprs
        self.exceptions_only = exceptions_only
        self.probes = {}
        self.calls = {}

    def probe(self, ident):
        # One object per id: the `with` and every `returned` share it.
        probe = self.probes.get(ident)
        if probe is None:
            probe = self.probes[ident] = _WatchProbe(ident, self)
        return probe

    def enter(self, frame):
        code = frame.f_code
        count = code.co_argcount + code.co_kwonlyargcount \
            + bool(code.co_flags & _CO_VARARGS) + bool(code.co_flags & _CO_VARKEYWORDS)
        values = frame.f_locals
        names = [n for n in code.co_varnames[:count] if n in values]
        args = dict((n, values[n]) for n in names)
        if self.at_entry and not self.test(frame.f_globals, args):
            return
        call = _WatchCall()
        call.start = time.perf_counter()
        call.wall = time.time()
        call.names = names
        call.args = args
        call.result = None
        call.globals = frame.f_globals
        if len(self.calls) >= WATCH_OPEN_CALLS:
            self.dropped_calls += len(self.calls)
            self.calls.clear()
        self.calls[id(frame)] = call

    def test(self, scope, names):
        try:
            return bool(eval(self.condition, scope, names))
        except Exception as exc:
            self.filter_errors += 1
            if self.first_filter_error is None:
                self.first_filter_error = _safe_text(exc)
            return False

    def leave(self, ident, call, kind, value, tb):
        elapsed = time.perf_counter() - call.start
        if self.exceptions_only and kind is None:
            return
        if self.condition is not None and not self.at_entry or self.exprs:
            names = dict(call.args)
            names['_return'] = call.result if kind is None else None
            names['_exception'] = value
            if not self.at_entry and self.condition is not None \
                    and not self.test(call.globals, names):
                return
        event = {'probe': ident, 'time': call.wall, 'duration': elapsed}
        bounded = self.bounded
        if self.exprs:
            event['exprs'] = [[text, self.evaluate(code, call.globals, names)]
                              for text, code in self.exprs]
        else:
            event['args'] = [[n, bounded(call.args[n])] for n in call.names[:WATCH_MAX_ARGS]]
            if kind is None:
                event['return'] = bounded(call.result)
        if kind is not None:
            event['exception'] = self.exception(kind, value, tb)
        self.record(event)

    def exception(self, kind, value, tb):
        try:
            message = _one_line(value)[:1000]
        except Exception as exc:
            message = '<str() raised %s>' % _safe_text(exc)
        try:
            lines = ''.join(traceback.format_exception(kind, value, tb)).splitlines()
        except Exception as exc:
            lines = ['<traceback could not be formatted: %s>' % _safe_text(exc)]
        if len(lines) > WATCH_TRACEBACK_LINES:
            cut = len(lines) - WATCH_TRACEBACK_LINES
            lines = lines[:2] + ['  ... %d lines ...' % cut] + lines[2 + cut:]
        return {'type': kind.__name__, 'message': message,
                'traceback': [line[:300] for line in lines]}

    def close(self):
        self.stopped = True
        self.calls.clear()


_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


# Line probes: `pyhot probe FILE:LINE` and `pyhot probe ... --var NAME`. The
# statements are inserted into the function's syntax tree, not its text: a
# probe before the statement at a line carries that statement's own line and
# column (so f_lineno in the probe, and every other line, are the real
# ones); a variable's probe comes after each statement that assigns it, at
# that statement's line.

def _placed(node, line, column):
    for child in ast.walk(node):
        child.lineno = child.end_lineno = line
        child.col_offset = child.end_col_offset = column
    return node


def _probe_call(marker, method, args, line, column):
    call = ast.Call(ast.Attribute(ast.Constant(marker), method, ast.Load()), args, [])
    return _placed(ast.Expr(call), line, column)


def _assigns(statement, name):
    """Whether statement (not counting its nested blocks) binds name."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
        targets = [statement.target] if getattr(statement, 'value', True) is not None else []
    else:
        return False
    return any(isinstance(n, ast.Name) and n.id == name
               for target in targets for n in ast.walk(target))


class _StatementProbes(object):
    """Inserts the probes of one function: before the statement at each of
    `lines` (text lines), after each assignment of each of `names`."""

    BLOCKS = ('body', 'orelse', 'finalbody')

    def __init__(self, lines, names):
        self.lines = dict(lines)      # text line -> marker
        self.names = dict(names)      # variable -> marker
        self.placed = set()

    def function(self, node):
        self.block(node, 'body')
        return node

    def block(self, node, field):
        statements = getattr(node, field, None)
        if not isinstance(statements, list):
            return
        out = []
        for statement in statements:
            if not isinstance(statement, ast.stmt):
                out.append(statement)
                continue
            marker = self.lines.get(statement.lineno)
            if marker is not None and statement.lineno not in self.placed:
                self.placed.add(statement.lineno)
                out.append(_probe_call(marker, 'hit', [], statement.lineno, statement.col_offset))
            out.append(statement)
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.nested(statement)
            for name, marker in self.names.items():
                if _assigns(statement, name):
                    out.append(_probe_call(marker, 'assigned', [ast.Name(name, ast.Load())],
                                           statement.lineno, statement.col_offset))
                elif isinstance(statement, (ast.For, ast.AsyncFor)) and any(
                        isinstance(n, ast.Name) and n.id == name for n in ast.walk(statement.target)):
                    statement.body.insert(0, _probe_call(
                        marker, 'assigned', [ast.Name(name, ast.Load())],
                        statement.lineno, statement.col_offset))
        statements[:] = out

    def nested(self, statement):
        for field in self.BLOCKS:
            self.block(statement, field)
        for handler in getattr(statement, 'handlers', ()):
            self.block(handler, 'body')
        for case in getattr(statement, 'cases', ()):
            self.block(case, 'body')


def _statement_starts(node):
    """The text lines where a statement of node's own body starts."""
    starts = []
    stack = [node]
    while stack:
        current = stack.pop()
        for field in ('body', 'orelse', 'finalbody', 'handlers', 'cases'):
            for child in getattr(current, field, None) or ():
                if isinstance(child, ast.stmt):
                    starts.append(child.lineno)
                    if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        stack.append(child)
                elif isinstance(child, (ast.excepthandler,)) or type(child).__name__ == 'match_case':
                    stack.append(child)
    return sorted(set(starts))


def _insert_statement_probes(tree, raw, lines, prefix, qualname):
    """tree with the unit's line and variable probes inserted (their lines
    real in `raw`, mapped to text lines through `lines`)."""
    text_line = {}
    for index, real in enumerate(lines):
        text_line.setdefault(real, index + 1)
    by_scope = {}
    for entry in _field(raw, 'line_probes', list, []):
        if not isinstance(entry, dict):
            raise _Failure('protocol', 'a line probe is not a JSON object')
        by_scope.setdefault(_int_field(entry, 'scope', 1, MAX_LINE), ([], []))[0].append(
            (_int_field(entry, 'line', 1, MAX_LINE), '%s%d' % (prefix, _int_field(entry, 'probe', 1, MAX_ID))))
    for entry in _field(raw, 'variable_probes', list, []):
        if not isinstance(entry, dict):
            raise _Failure('protocol', 'a variable probe is not a JSON object')
        by_scope.setdefault(_int_field(entry, 'scope', 1, MAX_LINE), ([], []))[1].append(
            (_field(entry, 'name', str), '%s%d' % (prefix, _int_field(entry, 'probe', 1, MAX_ID))))
    for scope, (at_lines, names) in by_scope.items():
        found = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.lineno == text_line.get(scope)]
        if not found:
            raise _Failure('internal', 'no function at line %d of %s' % (scope, qualname))
        starts = _statement_starts(found[0])
        wanted = []
        for real, marker in at_lines:
            line = text_line.get(real)
            if line not in starts:
                near = [lines[s - 1] for s in starts if abs(lines[s - 1] - real) <= 3]
                raise _Failure('refused', 'no statement of %s starts at line %d%s'
                               % (qualname, real, ' (statements start at %s)'
                                  % ', '.join(str(n) for n in near) if near else ''))
            wanted.append((line, marker))
        for name, marker in names:
            if not name.isidentifier():
                raise _Failure('protocol', 'variable %r is not a name' % name[:40])
            if not any(_assigns(n, name) for n in ast.walk(found[0]) if isinstance(n, ast.stmt)):
                raise _Failure('refused', '%s never assigns %s' % (qualname, name))
        _StatementProbes(wanted, names).function(found[0])
    return tree


class _LineProbe(_Probe):
    """The object a probed line calls before its statement (`hit`), or an
    assignment of a watched variable after it (`assigned`)."""
    __slots__ = ()

    def hit(self):
        collector = self.collector
        if not collector.stopped:
            try:
                collector.hit(self.id, sys._getframe(1))
            except Exception as exc:
                collector.failed(exc)

    def assigned(self, value):
        collector = self.collector
        if not collector.stopped:
            try:
                collector.assigned(self.id, sys._getframe(1), value)
            except Exception as exc:
                collector.failed(exc)


def _probe_collector(request):
    options = _field(request, 'probe', dict, {})
    prints = _field(options, 'prints', list, [])
    if not all(type(e) is str and e for e in prints) or len(prints) > 32:
        raise _Failure('protocol', "field 'prints' must be up to 32 expressions")
    source = _field(options, 'code', str, '')
    condition = _field(options, 'filter', str, '')
    try:
        compiled = [(text, compile(text, '<pyhot probe --print>', 'eval')) for text in prints]
        code = compile(source, '<pyhot probe --code>', 'exec') if source else None
        test = compile(condition, '<pyhot probe --filter>', 'eval') if condition else None
    except (SyntaxError, ValueError) as exc:
        raise _Failure('refused', 'does not compile: %s' % _exception_text(exc))
    return _LineProbeCollector(
        compiled, _field(options, 'locals', bool, False), code, test,
        _int_field(options, 'limit', 0, MAX_ID, 0),
        _BoundedRepr(_int_field(options, 'length', 8, 100000, 120), WATCH_ITEMS,
                     _int_field(options, 'depth', 1, 20, 3)))


class _LineProbeCollector(_EventRing):

    def __init__(self, prints, show_locals, code, condition, limit, bounded):
        _EventRing.__init__(self, limit, bounded)
        self.prints = prints
        self.show_locals = show_locals
        self.code = code
        self.condition = condition
        self.probes = {}

    def probe(self, ident):
        probe = self.probes.get(ident)
        if probe is None:
            probe = self.probes[ident] = _LineProbe(ident, self)
        return probe

    def passes(self, frame, names):
        if self.condition is None:
            return True
        try:
            return bool(eval(self.condition, frame.f_globals, names))
        except Exception as exc:
            self.filter_errors += 1
            if self.first_filter_error is None:
                self.first_filter_error = _safe_text(exc)
            return False

    def hit(self, ident, frame):
        names = frame.f_locals
        if not self.passes(frame, names):
            return
        event = {'probe': ident, 'time': time.time(), 'line': frame.f_lineno}
        if self.show_locals:
            bounded = self.bounded
            event['locals'] = [[n, bounded(v)] for n, v in list(names.items())]
        if self.prints:
            event['prints'] = [[text, self.evaluate(code, frame.f_globals, names)]
                               for text, code in self.prints]
        if self.code is not None:
            event['output'], event['error'] = self.run(frame, names)
        self.record(event)

    def assigned(self, ident, frame, value):
        if not self.passes(frame, frame.f_locals):
            return
        self.record({'probe': ident, 'time': time.time(), 'line': frame.f_lineno,
                     'value': self.bounded(value)})

    def run(self, frame, names):
        """--code, with the function's variables (a copy: assignments stay
        in the probe's namespace) and its globals; print() is captured."""
        output = []

        def captured(*args, **options):
            output.append(options.get('sep', ' ').join(str(a) for a in args)[:10000])
        namespace = dict(names)
        namespace['print'] = captured
        try:
            exec(self.code, frame.f_globals, namespace)
            error = None
        except Exception as exc:
            error = _safe_text(exc)
        return output[:100], error


# Trace: while a traced call runs, and only in its thread, a profile hook
# records the calls it makes; the hook the thread had before is put back
# when the call ends. A thread whose hook cannot be put back from Python (a
# C profiler) is not traced.

TRACE_MAX_NODES = 500


class _TraceProbe(_EnteringProbe):
    __slots__ = ()

    def __exit__(self, kind, value, tb):
        try:
            self.collector.leave(self.id, kind)
        except Exception as exc:
            self.collector.failed(exc)
        return False


def _trace_collector(request):
    options = _field(request, 'trace', dict, {})
    min_ms = _field(options, 'min_ms', (int, float), 0)
    if not 0 <= min_ms <= 3600000:
        raise _Failure('protocol', "field 'min_ms' must be 0 to 3600000")
    return _TraceCollector(_int_field(options, 'limit', 0, MAX_ID, 0), min_ms / 1000.0,
                           _int_field(options, 'depth', 1, 1000, 20))


def _frame_name(code, scope):
    return '%s.%s' % (scope.get('__name__', '?'), getattr(code, 'co_qualname', code.co_name))


class _TraceCollector(_EventRing):
    # [name, file:line, start, elapsed, children]
    def __init__(self, limit, min_seconds, depth):
        _EventRing.__init__(self, limit, None)
        self.min_seconds = min_seconds
        self.depth = depth
        self.local = threading.local()
        self.probes = {}
        self.skipped_threads = 0

    def probe(self, ident):
        probe = self.probes.get(ident)
        if probe is None:
            probe = self.probes[ident] = _TraceProbe(ident, self)
        return probe

    def enter(self, frame):
        local = self.local
        if getattr(local, 'depth', 0):
            local.depth += 1     # recursion: its calls are in the outer call's tree
            return
        saved = sys.getprofile()
        if saved is not None and not isinstance(saved, (types.FunctionType, types.MethodType)):
            self.skipped_threads += 1
            return
        code = frame.f_code
        root = [_frame_name(code, frame.f_globals), _def_where(code), time.perf_counter(), 0.0, []]
        local.depth = 1
        local.stack = [root]
        local.nodes = 1
        local.omitted = 0
        local.saved = saved
        local.wall = time.time()
        sys.setprofile(self.hook)

    def hook(self, frame, event, arg, _clock=time.perf_counter):
        if event == 'call':
            code = frame.f_code
            if code.co_filename == _AGENT_FILE:
                return
            local = self.local
            stack = local.stack
            parent = stack[-1]
            node = None
            if parent is not None and len(stack) <= self.depth:
                if local.nodes < TRACE_MAX_NODES:
                    node = [_frame_name(code, frame.f_globals), _def_where(code), _clock(), 0.0, []]
                    parent[4].append(node)
                    local.nodes += 1
                else:
                    local.omitted += 1
            stack.append(node)
        elif event == 'return':
            if frame.f_code.co_filename == _AGENT_FILE:
                return
            stack = self.local.stack
            if len(stack) > 1:
                node = stack.pop()
                if node is not None:
                    node[3] = _clock() - node[2]

    def leave(self, ident, kind):
        local = self.local
        depth = getattr(local, 'depth', 0)
        if not depth:
            return
        local.depth = depth - 1
        if local.depth:
            return
        end = time.perf_counter()
        sys.setprofile(local.saved)
        root = local.stack[0]
        root[3] = end - root[2]
        local.stack = local.saved = None
        if self.stopped or root[3] < self.min_seconds:
            return
        event = {'probe': ident, 'time': local.wall, 'duration': root[3],
                 'tree': self.tree(root), 'omitted': local.omitted}
        if kind is not None:
            event['raised'] = kind.__name__
        self.record(event)

    def tree(self, node):
        out = {'name': node[0], 'where': node[1], 'duration': node[3]}
        children = [self.tree(c) for c in node[4] if c[3] >= self.min_seconds]
        if children:
            out['children'] = children
        return out


def _def_where(code):
    return '%s:%d' % (os.path.basename(code.co_filename), code.co_firstlineno)



_COLLECTORS = {'profile': lambda request: _ProfileCollector(), 'watch': _watch_collector,
               'probe': _probe_collector, 'trace': _trace_collector,
               'lines': lambda request: _LineTimeCollector()}


# ---------------------------------------------------------------------------
# Entry points

def _agent():
    agent = sys.__dict__.get(_REGISTRY_KEY)
    if agent is None:
        agent = sys.__dict__.setdefault(_REGISTRY_KEY, _Agent())
    return agent


def start():
    """Starts the agent thread (once per process); returns the socket path,
    or None when it could not listen (see last_error())."""
    return _agent().start()


def stop():
    """Stops listening and removes the socket file."""
    agent = sys.__dict__.get(_REGISTRY_KEY)
    if agent is not None:
        agent.stop()


def socket_path():
    agent = sys.__dict__.get(_REGISTRY_KEY)
    return agent.path if agent is not None and agent.listener is not None else None


def last_error():
    agent = sys.__dict__.get(_REGISTRY_KEY)
    return agent.error if agent is not None else None


def _main(argv):
    if not argv or argv[0] in ('-h', '--help'):
        sys.stderr.write('usage: python -m pyhot_agent script.py [args...]\n')
        return 2
    path = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    start()
    # runpy reads the script itself, not through an import loader.
    data = _Baselines._read(path)
    if data is not None:
        _agent().operations.baselines.exact[_real(path)] = (_real(path), data)
    runpy.run_path(path, run_name='__main__')
    return 0


if __name__ == '__agent__':
    try:
        start()
    except Exception:
        pass
elif __name__ == '__main__':
    sys.modules.setdefault('pyhot_agent', sys.modules[__name__])
    sys.exit(_main(sys.argv[1:]))
