"""The live process of the real-edit replay: imports one module from a file,
keeps references to everything it defined (the "old references" a fresh
import cannot see), then answers fingerprint requests on stdin/stdout while
its main thread sleeps. Started by replay.py, never by hand."""
import importlib.util
import json
import sys
import threading
import time
import types

PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _plain(value, depth=0):
    """A repr for values a fresh import makes the same way; None otherwise."""
    # Exact types only: a subclass (an IntEnum member, say) may spell its
    # module's name in its repr, which differs between two imports.
    if type(value) in PLAIN:
        text = repr(value)
    elif depth < 3 and type(value) in (tuple, list, frozenset, set):
        items = [_plain(item, depth + 1) for item in value]
        if any(item is None for item in items):
            return None
        if isinstance(value, (set, frozenset)):
            items.sort()
        text = type(value).__name__ + "(" + ", ".join(items) + ")"
    elif depth < 3 and type(value) is dict:
        items = []
        for key, item in value.items():
            key_text, item_text = _plain(key, depth + 1), _plain(item, depth + 1)
            if key_text is None or item_text is None:
                return None
            items.append(key_text + ": " + item_text)
        text = "{" + ", ".join(sorted(items)) + "}"
    else:
        return None
    return text if len(text) <= 4000 else text[:4000] + "...(%d)" % len(text)


def _code(code):
    table = getattr(code, "co_linetable", None) or getattr(code, "co_lnotab", b"")
    consts = []
    for const in code.co_consts:
        consts.append(_code(const) if isinstance(const, types.CodeType) else repr(const))
    return {"name": code.co_name, "qualname": getattr(code, "co_qualname", code.co_name),
            "firstlineno": code.co_firstlineno, "lines": table.hex(), "code": code.co_code.hex(),
            "consts": consts, "names": list(code.co_names), "varnames": list(code.co_varnames),
            "freevars": list(code.co_freevars), "cellvars": list(code.co_cellvars), "flags": code.co_flags}


def _function(fn):
    return {"code": _code(fn.__code__), "defaults": _plain(fn.__defaults__), "kwdefaults": _plain(fn.__kwdefaults__),
            "doc": fn.__doc__}


def _is_class(value):
    # Not isinstance(value, type): list[int] claims to be a type.
    return issubclass(type(value), type)


def _unwrap(value):
    """The functions a class attribute or module binding holds. Exact type
    checks: a types.GenericAlias answers isinstance() for the type it wraps."""
    if type(value) in (staticmethod, classmethod) and type(value.__func__) is types.FunctionType:
        return [("", value.__func__)]
    if type(value) is property:
        return [("." + name, getattr(value, name)) for name in ("fget", "fset", "fdel")
                if isinstance(getattr(value, name), types.FunctionType)]
    if type(value) is types.FunctionType:
        return [("", value)]
    return []


def fingerprint(module):
    """What a user could notice of a module: its names, plain values,
    classes and their attributes, every function's code (line numbers
    included), defaults and docstrings."""
    result = {"names": sorted(n for n in vars(module) if n not in ("__builtins__", "__loader__", "__spec__",
                                                                     "__cached__", "__name__", "__file__")),
              "values": {}, "functions": {}, "classes": {}}
    seen = set()

    def visit_class(prefix, cls):
        if id(cls) in seen or cls.__module__ != module.__name__:
            return
        seen.add(id(cls))
        attributes = {}
        for name, value in vars(cls).items():
            if name in ("__dict__", "__weakref__", "__module__"):
                continue
            for suffix, fn in _unwrap(value):
                result["functions"][prefix + "." + name + suffix] = _function(fn)
            if _is_class(value):
                visit_class(prefix + "." + name, value)
            attributes[name] = _plain(value) if _plain(value) is not None else type(value).__name__
            if name == "__annotations__" and type(value) is dict:
                # Names and what they name (a class by its qualname: two
                # imports' classes differ in __module__, not in the edit;
                # likewise in a repr, `typing.Dict[str, m.Profile]`).
                attributes[name] = sorted((str(key), getattr(item, "__qualname__", None)
                                           or repr(item).replace(module.__name__ + ".", "<module>."))
                                          for key, item in value.items())
        result["classes"][prefix] = {"doc": cls.__doc__, "attributes": attributes,
                                     "bases": [base.__qualname__ for base in cls.__bases__]}

    for name, value in vars(module).items():
        for suffix, fn in _unwrap(value):
            if fn.__module__ == module.__name__:
                result["functions"][name + suffix] = _function(fn)
        if _is_class(value):
            visit_class(name, value)
        elif _plain(value) is not None and not name.startswith("__"):
            result["values"][name] = _plain(value)
    return result


def import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def old_references(module):
    """Every function object the import made, keyed as fingerprint keys them."""
    held = {}
    for name, value in vars(module).items():
        for suffix, fn in _unwrap(value):
            held[name + suffix] = fn
        if _is_class(value) and value.__module__ == module.__name__:
            for attribute, member in vars(value).items():
                for suffix, fn in _unwrap(member):
                    held[name + "." + attribute + suffix] = fn
    return held


def main():
    name, path = sys.argv[1], sys.argv[2]
    module = import_file(name, path)
    held = old_references(module)
    fresh_count = [0]
    fresh = {}

    def answer(line):
        request = json.loads(line)
        if request["op"] == "live":
            live = fingerprint(sys.modules[name])
            live["held"] = {key: _code(fn.__code__) for key, fn in held.items()}
            return live
        if request["op"] == "fresh":
            fresh_count[0] += 1
            # Same file, so co_filename and line numbers match the live module.
            fresh["module"] = import_file("%s__fresh%d" % (name, fresh_count[0]), request["path"])
            return fingerprint(fresh["module"])
        if request["op"] == "calls":
            # What calling the code gives, where the fingerprint cannot look
            # (a function a registry holds): each expression evaluated in the
            # live module, or in the last fresh import.
            namespace = vars(fresh["module"] if request.get("fresh") else sys.modules[name])
            results = []
            for expression in request["expressions"]:
                try:
                    results.append(repr(eval(expression, namespace)))
                except Exception as error:
                    results.append("raised %s: %s" % (type(error).__name__, error))
            return results
        raise ValueError(request["op"])

    def serve():
        for line in sys.stdin:
            try:
                reply = {"ok": True, "value": answer(line)}
            except BaseException as error:  # the replay reports it; the target stays up
                reply = {"ok": False, "error": "%s: %s" % (type(error).__name__, error)}
            # default=repr: a __doc__ or default that is not JSON must not
            # end this thread (the replay would wait for ever).
            sys.stdout.write(json.dumps(reply, default=repr) + "\n")
            sys.stdout.flush()

    threading.Thread(target=serve, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
