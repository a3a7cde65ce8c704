"""Re-implementations, inside the target, of the reload *approach* of two
Python tools. They are NOT the tools (neither can be installed here: no
PyPI); they follow the published algorithms step by step so the work done
inside the target, under the GIL, is the same kind and amount.

- pfp_reload: PyFlightProfiler's `reload MODULE [CLASS] METHOD`
  (flight_profiler/plugins/reload/reload_agent.py, ReloadAgent.reload_function):
  import_module + getattr, inspect.getfile(module), tokenize.open + read +
  readlines, ast.parse of the whole file, find the def among the top-level
  nodes, cut its lines, compile them alone, exec into a scratch locals dict
  with the module's globals, compare code objects, assign __defaults__,
  __annotations__, __code__.

- JuriggedModel.refresh: jurigged's CodeFile.refresh() -> CodeFile(new
  source) + merge(order="new") (jurigged/codetools.py): ast.parse of the
  whole file, a variables/scopes pass over the tree, fill_real_extent over
  every node, collect_definitions (a tree of Definition objects holding the
  text of every statement and the whitespace between), correspond() against
  the previous tree (for every new child, every remaining old child is tried
  and the best candidate kept), then for a changed function: compile the
  function node alone, exec, and `conform` the live code through
  gc.get_referrers (codefind). The first refresh of a module also builds the
  model of the source cached at import (jurigged builds its CodeFile lazily).
  Simplified: no ovld dispatch, no event objects, no file write-back; the
  variables pass is a plain ast.NodeVisitor. Each simplification makes the
  stand-in cheaper than the tool, never dearer.
"""
import ast
import gc
import importlib
import inspect
import re
import sys
import tokenize
import types


# ---------------------------------------------------------------------------
# PyFlightProfiler

def _compare_code_objects_equal(code1, code2):
    if not isinstance(code1, types.CodeType) or not isinstance(code2, types.CodeType):
        return code1 == code2
    if code1.co_code != code2.co_code:
        return False
    for attr in ('co_argcount', 'co_posonlyargcount', 'co_kwonlyargcount', 'co_nlocals',
                 'co_stacksize', 'co_flags', 'co_names', 'co_varnames', 'co_freevars',
                 'co_cellvars'):
        if getattr(code1, attr, None) != getattr(code2, attr, None):
            return False
    if len(code1.co_consts) != len(code2.co_consts):
        return False
    for c1, c2 in zip(code1.co_consts, code2.co_consts):
        if isinstance(c1, types.CodeType) and isinstance(c2, types.CodeType):
            if not _compare_code_objects_equal(c1, c2):
                return False
        elif c1 != c2:
            return False
    return True


def _find_innermost_func(func, target_name):
    if hasattr(func, '__wrapped__'):
        return _find_innermost_func(func.__wrapped__, target_name)
    if getattr(func, '__closure__', None):
        for cell in func.__closure__:
            content = cell.cell_contents
            if isinstance(content, (types.FunctionType, types.MethodType)):
                if content.__name__ == target_name:
                    return _find_innermost_func(content, target_name) or content
    return func


def _locate_cls_method_in_file(file_path, method_name, class_name=None):
    with tokenize.open(file_path) as fp:
        source = fp.read()
        fp.seek(0)
        lines = fp.readlines()
    tree = ast.parse(source)
    target = None
    if class_name:
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.ClassDef) and node.name == class_name:
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name == method_name:
                        target = sub
                        break
                break
    else:
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == method_name:
                target = node
                break
    if target is None:
        return None, False
    end = getattr(target, 'end_lineno', target.lineno)
    return ''.join(lines[target.lineno - 1:end]), bool(target.decorator_list)


def pfp_reload(module_name, class_name, func_name):
    """Returns 'Reload is done successfully.' or 'Error: ...'."""
    try:
        module = importlib.import_module(module_name)
        owner = getattr(module, class_name) if class_name else module
        method_target = getattr(owner, func_name, None)
        if method_target is None:
            return 'Error: Cannot locate method %s in module %s.' % (func_name, module_name)
        is_classmethod = isinstance(method_target, types.MethodType)
        path = inspect.getfile(module)
        method_source, decorated = _locate_cls_method_in_file(path, func_name, class_name)
        if method_source is None:
            return 'Error: Could not extract method source from file %s.' % path
        if decorated:
            method_target = _find_innermost_func(method_target, func_name)
        original_code = method_target.__code__
        if class_name:
            compiled = compile('class %s:\n%s' % (class_name, method_source), path, 'exec')
        else:
            compiled = compile(method_source, path, 'exec')
        exec_locals = {}
        exec(compiled, module.__dict__, exec_locals)
        new_func = getattr(exec_locals[class_name], func_name) if class_name else exec_locals[func_name]
        if _compare_code_objects_equal(new_func.__code__, original_code):
            return 'Error: Method source has not changed.'
        live = method_target.__func__ if is_classmethod else method_target
        live.__defaults__ = new_func.__defaults__
        live.__annotations__ = new_func.__annotations__
        live.__code__ = new_func.__code__
        return 'Reload is done successfully.'
    except Exception as exc:  # the tool reports, never raises
        return 'Error: Unexpected error during reload: %s.' % exc


# ---------------------------------------------------------------------------
# jurigged

class _Info(object):
    current = None

    def __init__(self, filename, source):
        self.filename = filename
        self.source = source
        self.lines = source.splitlines(True)

    def get_segment(self, ext):
        lineno, end_lineno = ext.lineno - 1, ext.end_lineno - 1
        lines = self.lines
        if end_lineno == lineno:
            return lines[lineno].encode()[ext.col_offset:ext.end_col_offset].decode()
        first = lines[lineno].encode()[ext.col_offset:].decode()
        last = lines[end_lineno].encode()[:ext.end_col_offset].decode() if end_lineno < len(lines) else ''
        return ''.join([first] + lines[lineno + 1:end_lineno] + [last])


class _Extent(object):
    __slots__ = ('lineno', 'col_offset', 'end_lineno', 'end_col_offset', 'filename')

    def __init__(self, lineno, col_offset, end_lineno, end_col_offset, filename=None):
        self.lineno, self.col_offset = lineno, col_offset
        self.end_lineno, self.end_col_offset = end_lineno, end_col_offset
        self.filename = filename if filename is not None else _Info.current.filename


class _Correspondence(object):
    __slots__ = ('original', 'new', 'corresponds', 'changed', 'children')

    def __init__(self, original, new, corresponds, changed=False, children=None):
        self.original, self.new, self.corresponds = original, new, corresponds
        self.changed, self.children = changed, children

    def fitness(self):
        return (int(self.corresponds), 1 - int(self.changed))


_SEP_AT_START = re.compile(r'^ *[\n;]')
_SEP_AT_END = re.compile(r'[\n;] *$')


def _substantial(s):
    return not re.fullmatch(r' *(#.*)?\n?', s)


class _Definition(object):
    def __init__(self, node, name=None, filename=None):
        self.node, self.name, self.parent, self._code = node, name, None, None
        self.filename = filename if filename is not None else _Info.current.filename

    def set_parent(self, parent):
        self.parent = parent
        p = parent
        while p is not None:
            p._code = None
            p = p.parent

    @property
    def codestring(self):
        if self._code is None:
            self._code = self.reconstruct()
        return self._code

    def codepath(self):
        chain = []
        d = self
        while d is not None:
            chain.append(d)
            d = d.parent
        chain.reverse()
        return tuple((x.filename if i == 0 else x.name) or '<line>' for i, x in enumerate(chain))

    def well_separated(self, other):
        return _SEP_AT_END.search(self.codestring) or _SEP_AT_START.search(other.codestring)

    def walk(self):
        yield self


class _Line(_Definition):
    def __init__(self, node, text, filename=None):
        _Definition.__init__(self, node, None, filename)
        self.text = text

    def reconstruct(self):
        return self.text

    def prepend_text(self, text):
        self.text = text + self.text

    def append_text(self, text):
        self.text = self.text + text

    def stash(self, lineno, col):
        lines = self.text.split('\n')
        return (lineno + len(lines) - 1, col + len(lines[-1]) if len(lines) == 1 else len(lines[-1]))

    def equiv(self, other):
        return self.text == other.text

    def correspond(self, other):
        if type(other) is not type(self) or not self.equiv(other):
            return _Correspondence(self, other, False)
        return _Correspondence(self, other, True, False)


class _Header(_Line):
    def equiv(self, other):
        return self.text.strip() == other.text.strip()


class _Group(_Definition):
    ignore_names = False

    def __init__(self, node, name, children, variables=None):
        _Definition.__init__(self, node, name)
        self.variables = variables
        self.children = []
        for child in children:
            self.append(child)

    def append(self, *children, **kw):
        for child in children:
            if kw.get('ensure_separation') and self.children and not self.children[-1].well_separated(child):
                ws = _Line(None, '\n', self.filename)
                self.children.append(ws)
                ws.set_parent(self)
            self.children.append(child)
            child.set_parent(self)

    def prepend(self, *children):
        self.children[0:0] = children
        for child in children:
            child.set_parent(self)

    def prepend_text(self, text):
        self.children[0].prepend_text(text)

    def append_text(self, text):
        self.children[-1].append_text(text)

    def reconstruct(self):
        return ''.join([child.codestring for child in self.children])

    def walk(self):
        yield self
        for child in self.children:
            for d in child.walk():
                yield d

    def stash(self, lineno=1, col=0):
        for child in self.children:
            lineno, col = child.stash(lineno, col)
        return lineno, col

    def correspond(self, other):
        if type(other) is not type(self) or (not self.ignore_names and self.name != other.name):
            return _Correspondence(self, other, False)
        if self.codestring == other.codestring:
            return _Correspondence(self, other, True, False)
        childcorr = []
        children = list(self.children)
        for other_child in other.children:
            candidates = [corr for corr in (c.correspond(other_child) for c in children) if corr.corresponds]
            if not candidates:
                corr = _Correspondence(None, other_child, True, True)
            else:
                corr = max(candidates, key=lambda c: c.fitness())
                children.remove(corr.original)
            childcorr.append(corr)
        for child in children:
            childcorr.append(_Correspondence(child, None, True, True))
        mergeable = not any((isinstance(c.original, _Header) or isinstance(c.new, _Header)) and c.changed
                            for c in childcorr)
        return _Correspondence(self, other, mergeable, mergeable, childcorr if mergeable else None)

    def apply_correspondence(self, corr, model):
        if not corr.changed:
            return
        self.children = []
        for ccorr in corr.children:  # order="new"
            orig, new = ccorr.original, ccorr.new
            if orig is None:
                self.append(new, ensure_separation=True)
                model.evaluate(new)
            elif new is None:
                model.deleted.append(orig)
            elif ccorr.changed:
                self.append(orig, ensure_separation=True)
                orig.apply_correspondence(ccorr, model)
            else:
                self.append(orig, ensure_separation=True)


class _Module(_Group):
    ignore_names = True


class _Class(_Group):
    pass


class _Function(_Group):
    groundline = -1
    codeobj = None

    def stash(self, lineno=1, col=0):
        if not isinstance(self.parent, _Function):
            co = JuriggedModel.registry.get(self.codepath() + (self.groundline,))
            if co is not None and lineno - co.co_firstlineno:
                pass  # jurigged shifts line numbers here (recode); the bench never moves code
        return _Group.stash(self, lineno, col)

    def apply_correspondence(self, corr, model):
        model.reevaluate(self, corr.new)
        self.children = []
        self.append(*corr.new.children)


def _fill_real_extent(node):
    extents = [ext for ext in (_fill_real_extent(n) for n in ast.iter_child_nodes(node)) if ext]
    for deco in getattr(node, 'decorator_list', ()):
        extents.append(_Extent(deco.lineno, 0, deco.end_lineno, deco.end_col_offset))
    if hasattr(node, 'lineno'):
        extents.append(node)
        lineno, col = min((e.lineno, e.col_offset) for e in extents)
        end_lineno, end_col = max((e.end_lineno, e.end_col_offset) for e in extents)
        node.extent = _Extent(lineno, col, end_lineno, end_col)
    else:
        node.extent = None
    return node.extent


def _analyze_split(s):
    lines = s.splitlines(True)
    subst = max([i for i, line in enumerate(lines) if _substantial(line)], default=-1)
    left, middle = lines[:subst + 1], lines[subst + 1:]
    right = [middle.pop()] if middle and not middle[-1].endswith('\n') else []
    return ''.join(left), ''.join(middle), ''.join(right)


def _delta(a, b):
    return _Info.current.get_segment(_Extent(a.end_lineno, a.end_col_offset, b.lineno, b.col_offset))


def _distribute(between, d1, d2, cls=_Line):
    left, middle, right = _analyze_split(between)
    rval = ''
    if left:
        if d1:
            d1.append_text(left)
        else:
            rval += left
    if middle:
        rval += middle
    if right:
        if d2:
            d2.prepend_text(right)
        else:
            rval += right
    return [cls(None, rval)] if rval else []


def _begin(e):
    return _Extent(e.lineno, e.col_offset, e.lineno, e.col_offset)


def _end(e):
    return _Extent(e.end_lineno, e.end_col_offset, e.end_lineno, e.end_col_offset)


def _collect_list(nodes, varinfo):
    if not nodes:
        return []
    defns = [(node.extent, _collect(node, varinfo)) for node in nodes]
    out = []
    for (n1, d1), (n2, d2) in zip(defns[:-1], defns[1:]):
        out.append(d1)
        out.extend(_distribute(_delta(n1, n2), d1, d2))
    out.append(defns[-1][1])
    return out


def _collect(node, varinfo):
    info = _Info.current
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        defns = _collect_list(node.body, varinfo)
        fn = _Function(node, node.name, defns, varinfo.get(node))
        deco0 = _begin(node.extent)
        prelude = _distribute(_delta(deco0, node), None, None, cls=_Header)
        prelude += _distribute(_delta(_begin(node), node.body[0].extent), None, defns[0])
        fn.prepend(*prelude)
        fn.append(*_distribute(_delta(node.body[-1].extent, _end(node)), defns[-1], None))
        fn.groundline = deco0.lineno
        return fn
    if isinstance(node, ast.ClassDef):
        defns = _collect_list(node.body, varinfo)
        cls = _Class(node, node.name, defns, varinfo.get(node))
        cls.prepend(*_distribute(_delta(_begin(node.extent), node.body[0].extent), None, defns[0], cls=_Header))
        cls.append(*_distribute(_delta(node.body[-1].extent, _end(node)), defns[-1], None))
        return cls
    if isinstance(node, ast.Module):
        lines = info.lines
        begin = _Extent(1, 0, 1, 0)
        end = _Extent(len(lines), len(lines[-1]), len(lines), len(lines[-1]))
        mod = _Module(node, None, _collect_list(node.body, varinfo))
        if node.body:
            between = _delta(begin, node.body[0].extent)
            if between:
                mod.prepend(*_distribute(between, None, None))
            between = _delta(node.body[-1].extent, end)
            if between:
                mod.append(*_distribute(between, None, None))
        return mod
    return _Line(node, info.get_segment(node))


class _Variables(ast.NodeVisitor):
    """Per def/class: names assigned and read (jurigged.parse.variables)."""

    def __init__(self, out):
        self.out = out
        self.stack = [(set(), set())]

    def _scope(self, node):
        self.stack.append((set(), set()))
        self.generic_visit(node)
        assigned, read = self.stack.pop()
        self.out[node] = (assigned, read, read - assigned)
        self.stack[-1][1].update(read - assigned)

    def visit_FunctionDef(self, node):
        self.stack[-1][0].add(node.name)
        self._scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_arg(self, node):
        self.stack[-1][0].add(node.arg)
        self.generic_visit(node)

    def visit_Name(self, node):
        self.stack[-1][0 if isinstance(node.ctx, ast.Store) else 1].add(node.id)


class JuriggedModel(object):
    """One module's CodeFile: the previous tree, refreshed from the file."""
    registry = {}   # codefind: (filename, *qualpath, name, firstlineno) -> code

    @classmethod
    def collect_all(cls):
        """codefind's registry setup (jurigged does it once at start)."""
        for obj in gc.get_objects():
            if isinstance(obj, types.FunctionType):
                co = obj.__code__
                path = [p for p in obj.__qualname__.split('.')[:-1] if p != '<locals>']
                cls._assimilate(co, (co.co_filename,) + tuple(path))

    @classmethod
    def _assimilate(cls, code, path):
        if code.co_name.startswith('<'):
            return
        path = path + (code.co_name,)
        cls.registry.setdefault(path + (code.co_firstlineno,), code)
        for ct in code.co_consts:
            if isinstance(ct, types.CodeType):
                cls._assimilate(ct, path)

    def __init__(self, module, source):
        self.module = module
        self.filename = module.__file__
        self.root = self._build(source)
        self.deleted = []
        self.updated = []

    def _build(self, source):
        if not source.endswith('\n'):
            source += '\n'
        tree = ast.parse(source)
        varinfo = {}
        _Variables(varinfo).visit(tree)
        _Info.current = _Info(self.filename, source)
        try:
            _fill_real_extent(tree)
            root = _collect(tree, varinfo)
        finally:
            _Info.current = None
        root.filename = self.filename
        root.stash()
        return root

    def refresh(self):
        with open(self.filename, encoding='utf-8') as f:
            source = f.read()
        self.source = source
        if source == self.root.codestring:
            return []
        new = self._build(source)
        corr = self.root.correspond(new)
        self.updated = []
        self.root.apply_correspondence(corr, self)
        self.root.stash()
        return self.updated

    def evaluate(self, definition):
        if definition.node is not None:
            code = compile(ast.Module(body=[definition.node], type_ignores=[]), self.filename, 'exec')
            exec(code, vars(self.module), None)

    def reevaluate(self, old, new):
        node = new.node
        bare = ast.FunctionDef(name=node.name, args=node.args, body=node.body, decorator_list=[],
                               returns=node.returns, type_comment=None, lineno=node.lineno,
                               col_offset=node.col_offset, end_lineno=node.end_lineno,
                               end_col_offset=node.end_col_offset)
        if sys.version_info >= (3, 12):
            bare.type_params = []
        code = compile(ast.Module(body=[bare], type_ignores=[]), self.filename, 'exec')
        lcl = {}
        exec(code, vars(self.module), lcl)
        new_fn = lcl[node.name]
        old_code = old.codeobj or self.registry.get(old.codepath() + (old.groundline,))
        if old_code is None:
            raise RuntimeError('cannot find the live code of %s' % old.name)
        # codefind.conform(code, fn): every function running that code
        for fn in gc.get_referrers(old_code):
            if isinstance(fn, types.FunctionType) and fn.__code__ is old_code:
                if fn.__code__.co_freevars != new_fn.__code__.co_freevars:
                    raise RuntimeError('free variables changed')
                fn.__code__ = new_fn.__code__
                fn.__defaults__ = new_fn.__defaults__
                fn.__kwdefaults__ = new_fn.__kwdefaults__
        self.registry[old.codepath() + (old.groundline,)] = new_fn.__code__
        old.codeobj = new_fn.__code__
        self.updated.append(old.name)


_models = {}


def jurigged_reload(module_name, initial_sources, first=False):
    """jurigged's reaction to a save of the module's file. `first` drops the
    model, as for the first change jurigged sees in that file (its CodeFile is
    built lazily from the source cached at import)."""
    module = sys.modules[module_name]
    model = None if first else _models.get(module_name)
    if model is None:
        model = JuriggedModel(module, initial_sources[module_name])
        _models[module_name] = model
    updated = model.refresh()
    initial_sources[module_name] = model.source
    return 'updated: ' + ', '.join(updated) if updated else 'no change'
