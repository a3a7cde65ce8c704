"""Integration tests of the pyhot agent against real Python processes.

Every test starts a real target (see harness.AgentTarget), makes its edits
through the real pyhot binary (AgentTarget.reload) and checks from outside
what a user would notice; the tests of the agent's own robustness send raw
frames, with units taken from what the binary sent. Each test runs once per
interpreter found (see harness.py for PYHOT_TEST_PYTHONS):

    cd tests/integration && PYHOT_TEST_PYTHONS=debian-python3,python3.8 python3 -m unittest -v test_agent
"""

import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENT_FILE, AgentClient, AgentError, AgentTarget, encode_frame,  # noqa: E402
                     for_each_interpreter, wait_for)


def src(text):
    return textwrap.dedent(text).lstrip('\n')


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise KeyError(needle)


class AgentTests(object):
    python = None

    def target(self, files, modules=('app',), **options):
        target = AgentTarget(self.python, files, modules, **options)  # closes itself if it never gets ready
        self.addCleanup(target.close)
        return target

    def assertApplied(self, reload, count=None):
        """Every change the binary reported was applied (and count of them)."""
        statuses = reload.statuses()
        self.assertTrue(statuses and all(s == 'applied' for s in statuses), reload.document)
        if count is not None:
            self.assertEqual(len(statuses), count, reload.document)

    # -- basics -----------------------------------------------------------------

    def test_ping_modules_locate(self):
        t = self.target({'app.py': 'X = 1\n'})
        reply = t.call('ping')
        self.assertEqual(reply['pid'], t.pid)
        self.assertEqual(reply['thread'], 'pyhot-agent')
        self.assertTrue(reply['python'].startswith(t.eval('"%d.%d" % sys.version_info[:2]')[1:-1]))
        modules = {m['name']: m['file'] for m in t.call('modules')['modules']}
        self.assertEqual(modules.get('app'), t.path('app.py'))
        self.assertEqual(modules.get('__main__'), t.path('main.py'))
        self.assertNotIn('os', modules)
        self.assertNotIn('pyhot_agent', modules)
        self.assertEqual(t.call('locate', module='app')['file'], t.path('app.py'))
        self.assertEqual(t.call('module_for_file', file=t.path('app.py'))['module'], 'app')
        with self.assertRaises(AgentError) as caught:
            t.call('locate', module='not_imported_anywhere')
        self.assertEqual(caught.exception.kind, 'not_found')
        self.assertIn("No module named 'not_imported_anywhere'", caught.exception.message)
        self.assertEqual(t.call('snapshot', module='app')['source'], 'X = 1\n')   # recorded at import
        mode = stat.S_IMODE(os.stat(t.socket_dir).st_mode)
        self.assertEqual(mode, 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(t.socket).st_mode), 0o600)

    def test_swap_is_seen_by_every_reference_and_revert_is_exact(self):
        app = src('''
            import functools


            def greet(name):
                return 'hello ' + name

            def tick():
                return greet('tick')
            ''')
        other = src('''
            from app import greet
            REGISTRY = [greet]
            def use():
                return greet('other')
            ''')
        t = self.target({'app.py': app, 'other.py': other}, modules=('app', 'other'))
        t.exec('tick = app.tick')
        wait_for(lambda: t.value('state.get("tick")') == 'hello tick')
        t.exec("saved = tuple(getattr(app.greet, a) for a in "
               "('__code__', '__defaults__', '__kwdefaults__', '__annotations__', '__doc__'))")
        new = app.replace("'hello ' + name", "'HELLO ' + name")
        reload = t.reload('app.py', new)
        self.assertApplied(reload, 1)
        self.assertEqual(reload.result('greet')['objects'], 1)
        patch = reload.document['patch']
        self.assertEqual(t.value('app.greet("x")'), 'HELLO x')
        self.assertEqual(t.value('other.use()'), 'HELLO other')
        self.assertEqual(t.value('other.REGISTRY[0]("r")'), 'HELLO r')
        wait_for(lambda: t.value('state.get("tick")') == 'HELLO tick', what='loop sees new code')
        self.assertEqual(t.value('__import__("linecache").getline(app.__file__, 5).strip()'),
                         "return 'HELLO ' + name")
        self.assertEqual(t.call('snapshot', module='app')['source'], new)
        history = t.call('history')['patches']
        self.assertEqual([(p['id'], p['module'], p['reverted']) for p in history],
                         [(patch, 'app', False)])
        self.assertEqual(history[0]['changes'], [{'qualname': 'greet', 'verdict': 'swap'}])
        reverted = t.call('revert')
        self.assertEqual(reverted['reverted'], patch)
        self.assertEqual(t.value('app.greet("x")'), 'hello x')
        self.assertTrue(t.value("all(getattr(app.greet, a) is v for a, v in zip("
                                "('__code__', '__defaults__', '__kwdefaults__', '__annotations__',"
                                " '__doc__'), saved))"))
        self.assertTrue(t.call('history')['patches'][0]['reverted'])
        self.assertEqual(t.call('snapshot', module='app')['source'], app)   # back to the imported text
        with self.assertRaises(AgentError) as caught:
            t.call('revert')
        self.assertEqual(caught.exception.kind, 'not_found')

    def test_methods_static_class_property_mangled_super(self):
        app = src('''
            class Base:
                def who(self):
                    return 'base'

            class C(Base):
                def m(self):
                    return 'm1'

                @staticmethod
                def s(x):
                    return x + 1

                @classmethod
                def c(cls):
                    return cls.__name__ + '1'

                @property
                def p(self):
                    return self._p

                @p.setter
                def p(self, v):
                    self._p = v

                def __secret(self):
                    return 's1'

                def reveal(self):
                    return self.__secret()

                def who(self):
                    return 'c1+' + super().who()
            ''')
        new = (app.replace("'m1'", "'m2'").replace('x + 1', 'x + 2')
               .replace("'1'", "'2'").replace('return self._p', 'return self._p * 2')
               .replace('self._p = v', 'self._p = v + 100').replace("'s1'", "'s2'")
               .replace("'c1+'", "'c2+'"))
        t = self.target({'app.py': app})
        t.exec('obj = app.C(); obj.p = 1')
        self.assertEqual(t.value('(obj.m(), obj.s(1), obj.c(), obj.p, obj.reveal(), obj.who())'),
                         ('m1', 2, 'C1', 1, 's1', 'c1+base'))
        for _ in range(2):   # and once more after the revert
            reload = t.reload('app.py', new)
            self.assertEqual([reload.unit(q)['kind'] for q in ('C.s', 'C.c')], ['static_method', 'class_method'])
            self.assertApplied(reload, 7)
            t.exec('obj.p = 1')
            self.assertEqual(
                t.value('(obj.m(), app.C.s(1), obj.c(), obj.p, obj.reveal(), obj.who())'),
                ('m2', 3, 'C2', 202, 's2', 'c2+base'))
            t.call('revert')
            t.exec('obj.p = 1')
            self.assertEqual(t.value('(obj.m(), obj.s(1), obj.c(), obj.p, obj.reveal())'),
                             ('m1', 2, 'C1', 1, 's1'))

    def test_decorated_functions_swap_inner_function_without_rerunning_decorators(self):
        app = src('''
            import functools
            DECORATED = []

            def count(fn):
                DECORATED.append(fn.__name__)
                @functools.wraps(fn)
                def wrapper(*a, **k):
                    return fn(*a, **k)
                return wrapper

            def plain(fn):
                DECORATED.append(fn.__name__)
                def inner(*a, **k):
                    return ('plain', fn(*a, **k))
                return inner

            @count
            def wrapped(x):
                return x * 1

            @plain
            def nowraps(x):
                return x * 1

            @count
            @plain
            @count
            def stacked(x):
                return x * 1

            @functools.lru_cache(maxsize=None)
            def cached(x):
                return x * 1

            def padd(a, b):
                return a + b
            padd = functools.partial(padd, 1)
            ''')
        new = app.replace('x * 1', 'x * 2').replace('a + b', 'a * 10 + b')
        t = self.target({'app.py': app})
        self.assertEqual(t.value('(app.wrapped(2), app.nowraps(2), app.stacked(2), app.cached(2),'
                                 ' app.padd(2))'), (2, ('plain', 2), ('plain', 2), 2, 3))
        before = t.value('len(app.DECORATED)')
        reload = t.reload('app.py', new)
        stacked = reload.unit('stacked')['source']   # the decorators are kept, not run again
        self.assertIn('@__pyhot_keep__', stacked)
        self.assertNotIn('@count', stacked)
        self.assertNotIn('@plain', stacked)
        self.assertApplied(reload, 5)
        self.assertEqual(t.value('(app.wrapped(2), app.nowraps(2), app.stacked(2), app.cached(3),'
                                 ' app.padd(2))'), (4, ('plain', 4), ('plain', 4), 6, 12))
        self.assertEqual(t.value('len(app.DECORATED)'), before)

    def test_nested_closures_made_before_the_reload(self):
        app = src('''
            def make(k):
                def inner(x):
                    return x + k
                return inner

            def make2(k):
                def inner(x):
                    return x + k
                return inner

            def outer():
                a = 1
                b = 2
                def inner():
                    return a
                return inner
            ''')
        first = app.replace('return x + k', 'return x + k * 100', 1)        # make's inner
        second = first.replace('return x + k\n', 'return x + k * 100\n')    # and make2's
        third = second.replace('return a\n', 'return a + b\n')              # outer's inner uses b
        t = self.target({'app.py': app})
        t.exec('c1 = app.make(1); c2 = app.make2(1); c3 = app.outer()')
        # Enclosing function and nested function in one patch.
        reload = t.reload('app.py', first)
        self.assertApplied(reload, 2)
        self.assertEqual(reload.changes(), [('make', 'swap'), ('make.<locals>.inner', 'swap')])
        self.assertEqual(reload.result('make.<locals>.inner')['objects'], 1)
        self.assertEqual(t.value('(c1(1), app.make(2)(1))'), (101, 201))
        # A nested function: old closures and closures made later both change.
        reload = t.reload('app.py', second)
        self.assertApplied(reload)
        self.assertIn(('make2.<locals>.inner', 'swap'), reload.changes())
        self.assertEqual(t.value('(c2(1), app.make2(2)(1))'), (101, 201))
        t.call('revert')
        self.assertEqual(t.value('(c2(1), app.make2(2)(1))'), (2, 3))
        # Free variables changed: the binary's units with a swap for the nested
        # function are refused; the rebind it sends reports the closure that keeps old code.
        dry = t.reload('app.py', third, '--dry-run')
        request = dry.last_request()
        units = [dict(unit, verdict='swap') if unit['qualname'] == 'outer.<locals>.inner' else unit
                 for unit in request['units']]
        self.assertEqual(dry.unit('outer.<locals>.inner')['verdict'], 'rebind')
        with self.assertRaises(AgentError) as caught:
            t.apply(request, units=units, dry_run=False, verify=False)
        self.assertEqual(caught.exception.kind, 'refused')
        reload = t.reload('app.py', third)
        self.assertApplied(reload)
        self.assertIn(('outer.<locals>.inner', 'rebind'), reload.changes())
        self.assertIn('1 existing closure', reload.result('outer.<locals>.inner')['message'])
        self.assertEqual(t.value('(c3(), app.outer()())'), (1, 3))

    def test_a_reload_of_a_seen_file_is_two_requests(self):
        # Under GIL contention each request waits for the interpreter: the
        # file's module and its snapshot hash come in one answer, then the
        # apply (it was three: module_for_file, snapshot, apply).
        app = src('''
            def price(x):
                return x * 2
            ''')
        t = self.target({'app.py': app})
        self.assertApplied(t.reload('app.py', app.replace('x * 2', 'x * 3')))
        second = t.reload('app.py', app.replace('x * 2', 'x * 4'))
        self.assertApplied(second, 1)
        self.assertEqual(second.ops, ['module_for_file', 'apply'])
        self.assertEqual(t.value('app.price(1)'), 4)

    def test_defaults_use_class_level_and_reexecuted_names(self):
        app = src('''
            LIMIT = 5

            class C:
                SCALE = 3

                def m(self, v=SCALE, *, w=LIMIT):
                    return (v, w)

            def f(a=LIMIT, *, b=2):
                return (a, b)
            ''')
        new = (app.replace('LIMIT = 5', 'LIMIT = 7').replace('v=SCALE,', 'v=SCALE * 2,')
               .replace('w=LIMIT)', 'w=LIMIT + 1)').replace('a=LIMIT, *, b=2', 'a=LIMIT * 2, *, b=3'))
        t = self.target({'app.py': app})
        t.exec('obj = app.C()')
        t.reload('app.py', app)   # the first reload records what is live; the next re-runs changed statements
        reload = t.reload('app.py', new)
        self.assertApplied(reload, 3)
        self.assertEqual(reload.changes()[1:], [('C.m', 'swap'), ('f', 'swap')])
        self.assertEqual(reload.changes()[0][1], 'reexec')
        self.assertEqual(t.value('(app.LIMIT, obj.m(), app.f())'), (7, (6, 8), (14, 3)))
        t.call('revert')
        self.assertEqual(t.value('(app.LIMIT, obj.m(), app.f())'), (5, (3, 5), (5, 2)))

    def test_future_annotations_flag(self):
        app = src('''
            from __future__ import annotations

            def f(x: Undefined) -> AlsoUndefined:
                return 1
            ''')
        new = app.replace('return 1', 'return 2')
        t = self.target({'app.py': app})
        dry = t.reload('app.py', new, '--dry-run')
        self.assertEqual(dry.last_request()['future_flags'], ['annotations'])
        with self.assertRaises(AgentError) as caught:   # the binary's units without the flag: NameError
            t.apply(dry.last_request(), future_flags=[], dry_run=False, verify=False)
        self.assertIn('NameError', caught.exception.message)
        self.assertEqual(t.value('app.f(0)'), 1)
        self.assertApplied(t.reload('app.py', new))
        self.assertEqual(t.value('(app.f(0), app.f.__annotations__)'),
                         (2, {'x': 'Undefined', 'return': 'AlsoUndefined'}))

    def test_rebind_replaces_the_object_everywhere(self):
        app = src('''
            class Base:
                def hello(self):
                    return 'base'

            class C(Base):
                def hello(self):
                    return 'c'

            def traced(fn):
                return fn

            def helper():
                return 'h1'

            HANDLERS = {'h': helper}
            ''')
        other = 'from app import helper\nLIST = [helper]\n'
        # C.hello starts to use super() (a free variable more); helper gets a
        # decorator: both are rebound, the new objects replace the old ones.
        new = (app.replace("return 'c'", "return 'c+' + super().hello()").replace("'h1'", "'h2'")
               .replace('def helper', '@traced\ndef helper'))
        t = self.target({'app.py': app, 'other.py': other}, modules=('app', 'other'))
        t.exec('obj = app.C(); saved = app.helper')
        t.reload('app.py', app)   # the first reload records what is live
        dry = t.reload('app.py', new, '--dry-run')
        self.assertEqual(dry.unit('C.hello')['verdict'], 'rebind')
        hello_as_swap = dict(dry.unit('C.hello'), verdict='swap')
        with self.assertRaises(AgentError) as caught:
            t.apply(dry.last_request(), units=[hello_as_swap], dry_run=False, verify=False)
        self.assertEqual(caught.exception.kind, 'refused')
        self.assertIn('free variables', caught.exception.message)
        reload = t.reload('app.py', new)
        self.assertApplied(reload, 2)
        self.assertEqual(reload.changes(), [('C.hello', 'rebind'), ('helper', 'rebind')])
        self.assertEqual(t.value('(obj.hello(), app.helper(), app.HANDLERS["h"](), other.helper(),'
                                 ' other.LIST[0]())'), ('c+base', 'h2', 'h2', 'h2', 'h2'))
        t.call('revert')
        self.assertEqual(t.value('obj.hello()'), 'c')
        self.assertTrue(t.value('app.helper is saved and app.HANDLERS["h"] is saved and '
                                'other.helper is saved and other.LIST[0] is saved'))

    def test_define_delete_reexec_relocate_and_revert(self):
        app = src('''
            import os

            LIMIT = 5

            def old_fn():
                return 'old'

            class C:
                def m(self):
                    return 'm'
            ''')
        new = src('''
            import os
            import json

            LIMIT = 6

            class C:
                def m(self):
                    return 'm'

                def extra(self):
                    return 'extra ' + json.dumps(LIMIT)

            def new_fn():
                return 'new' + str(LIMIT)
            ''')
        t = self.target({'app.py': app})
        t.exec('obj = app.C(); saved = app.old_fn')
        t.reload('app.py', app)   # the first reload records what is live
        reload = t.reload('app.py', new)
        self.assertApplied(reload, 6)
        self.assertEqual(sorted(verdict for _, verdict in reload.changes()),
                         ['define', 'define', 'delete', 'reexec', 'reexec', 'relocate'])
        self.assertEqual(t.value('(obj.extra(), app.new_fn(), hasattr(app, "old_fn"), app.LIMIT)'),
                         ('extra 6', 'new6', False, 6))
        self.assertEqual(t.value('app.C.m.__code__.co_firstlineno'), line_of(new, 'def m'))
        reverted = t.call('revert')
        # Names the patch added stay bound (issue 10): code of the patch that
        # is still running may use them.
        self.assertEqual(sorted(reverted['kept']), ['C.extra', 'json', 'new_fn'])
        self.assertEqual(t.value('(hasattr(obj, "extra"), hasattr(app, "new_fn"), '
                                 'app.old_fn is saved, app.LIMIT, hasattr(app, "json"))'),
                         (True, True, True, 5, True))
        self.assertEqual(t.value('app.C.m.__code__.co_firstlineno'), line_of(app, 'def m'))

    def test_traceback_after_reload_points_at_the_new_lines(self):
        app = src('''
            def boom(x):
                y = x + 1
                raise ValueError(y)

            def later():
                raise KeyError('later')
            ''')
        new = src('''
            # a comment pushes everything down


            def boom(x):
                y = x + 2
                z = y * 2
                raise ValueError(z)

            def later():
                raise KeyError('later')
            ''')
        t = self.target({'app.py': app})
        t.reload('app.py', app)   # the first reload records what is live
        reload = t.reload('app.py', new)
        self.assertApplied(reload, 2)
        self.assertEqual(reload.changes(), [('boom', 'swap'), ('later', 'relocate')])
        text = t.eval_error('app.boom(1)')
        self.assertIn('File "%s", line %d, in boom' % (t.path('app.py'),
                                                        line_of(new, 'raise ValueError')), text)
        self.assertIn('raise ValueError(z)', text)
        self.assertIn('ValueError: 6', text)
        text = t.eval_error('app.later()')
        self.assertIn('line %d, in later' % line_of(new, "raise KeyError"), text)

    def test_dry_run_changes_nothing(self):
        app = 'def f():\n    return 1\n'
        new = 'def f():\n    return 2\n\ndef g():\n    return 3\n'
        t = self.target({'app.py': app})
        reload = t.reload('app.py', new, '--dry-run')
        self.assertEqual(reload.document['patch'], None)
        self.assertTrue(reload.document['dry_run'])
        self.assertEqual(reload.changes(), [('f', 'swap'), ('g', 'define')])
        self.assertEqual(reload.statuses(), ['would_apply', 'would_apply'])
        self.assertEqual(t.value('(app.f(), hasattr(app, "g"))'), (1, False))
        self.assertEqual(t.call('history')['patches'], [])
        self.assertEqual(t.call('snapshot', module='app')['source'], app)   # still the imported text

    def test_all_or_nothing(self):
        app = src('''
            class Descriptor:
                def __init__(self, fn):
                    self.fn = fn
                def __set_name__(self, owner, name):
                    raise RuntimeError('no ' + name)

            def f():
                return 1

            class C:
                def m(self):
                    return 'm'
            ''')
        new = app.replace('return 1', 'return 2')
        t = self.target({'app.py': app})
        # One definition that only CPython's compiler refuses: named by file and line, nothing is applied.
        bad_compile = new.replace("return 'm'", "nonlocal nowhere\n        return 'm'")
        reload = t.reload('app.py', bad_compile, check=1)
        self.assertEqual(reload.last_reply()['error']['kind'], 'compile')
        self.assertIn('%s:%d:' % (t.path('app.py'), line_of(bad_compile, 'nonlocal')), reload.document['error'])
        self.assertEqual(t.value('app.f()'), 1)
        # A unit for a definition the module does not have (the binary's unit for f, renamed).
        good = t.reload('app.py', new, '--dry-run').last_request()
        missing = dict(good['units'][0], qualname='nope', name='nope', source='def nope():\n    pass\n')
        with self.assertRaises(AgentError) as caught:
            t.apply(good, units=good['units'] + [missing], dry_run=False, verify=False)
        self.assertEqual(caught.exception.kind, 'not_found')
        # Fails while changing (after f was swapped): everything is undone.
        failing = new + "\n    @Descriptor\n    def extra(self):\n        return 1\n"
        reload = t.reload('app.py', failing, check=1)
        self.assertIn('no extra', reload.document['error'])
        self.assertEqual(t.value('(app.f(), hasattr(app.C, "extra"))'), (1, False))
        self.assertEqual(t.call('history')['patches'], [])

    def test_verify_reports_unchanged_definitions(self):
        app = src('''
            def same(x):
                return x + 1

            def changed(x):
                return x + 1
            ''')
        new = '\n\n' + app.replace('def changed(x):\n    return x + 1',
                                   'def changed(x):\n    return x + 2')
        # No record of the imported text: the binary must compare with the live code.
        t = self.target({'app.py': app}, env={'PYHOT_AGENT_RECORD_IMPORTS': '0'})
        reload = t.reload('app.py', new)
        # On first contact the binary asks the agent to verify every definition it sent.
        verify_request, verify_reply = reload.applies[0]
        self.assertTrue(verify_request['verify'])
        self.assertEqual([(r['qualname'], r['status']) for r in verify_reply['results']],
                         [('same', 'unchanged'), ('changed', 'would_apply')])
        # `same` moved down two lines: relocated (tracebacks point at its
        # new lines), not left where the imported text had it.
        self.assertEqual(reload.changes(), [('same', 'relocate'), ('changed', 'swap')])
        self.assertEqual(reload.statuses(), ['applied', 'applied'])
        self.assertEqual(t.value('(app.same(1), app.changed(1))'), (2, 3))
        self.assertEqual(t.value('app.same.__code__.co_firstlineno'), 3)
        self.assertEqual(t.call('history')['patches'][0]['changes'],
                         [{'qualname': 'same', 'verdict': 'relocate'},
                          {'qualname': 'changed', 'verdict': 'swap'}])
        self.assertEqual(t.call('snapshot', module='app')['source'], new)

    def test_running_generators_keep_old_code_new_calls_and_async_get_new(self):
        app = src('''
            def numbers():
                yield 1
                yield 1

            async def compute():
                return 1
            ''')
        new = app.replace('yield 1', 'yield 2').replace('return 1', 'return 2')
        t = self.target({'app.py': app})
        t.exec('g = app.numbers(); first = next(g)')
        reload = t.reload('app.py', new)
        self.assertEqual(reload.unit('compute')['kind'], 'async_function')
        self.assertApplied(reload, 2)
        self.assertEqual(t.value('(first, next(g), list(app.numbers()))'), (1, 1, [2, 2]))
        self.assertEqual(t.value('__import__("asyncio").run(app.compute())'), 2)
        self.assertEqual(t.stderr_text(), '')   # the agent never prints

    def test_closures_made_before_a_relocation_are_found_later(self):
        app = src('''
            def make(k):
                def inner(x):
                    return x + k
                return inner
            ''')
        moved = '\n\n' + app
        new = moved.replace('return x + k', 'return x - k')
        t = self.target({'app.py': app})
        t.exec('c1 = app.make(1)')
        t.reload('app.py', app)   # the first reload records what is live
        reload = t.reload('app.py', moved)
        self.assertApplied(reload, 1)
        self.assertEqual(reload.changes(), [('make', 'relocate')])
        t.exec('c2 = app.make(1)')
        # The closure made before the move moves with it (issue 14 item 11):
        # both are where a fresh import of the moved file puts `inner`.
        self.assertEqual(t.value('(c1.__code__.co_firstlineno, c2.__code__.co_firstlineno)'),
                         (4, 4))
        reload = t.reload('app.py', new)
        self.assertEqual(reload.result('make.<locals>.inner')['objects'], 2)
        self.assertEqual(t.value('(c1(5), c2(5), app.make(1)(5))'), (4, 4, 4))
        text = t.eval_error('c1(None)')
        self.assertIn('line %d, in inner' % line_of(new, 'return x - k'), text)

    # -- the socket ---------------------------------------------------------------

    def test_malformed_frames_get_errors_and_the_agent_keeps_serving(self):
        t = self.target({'app.py': 'X = 1\n'}, env={'PYHOT_AGENT_TIMEOUT': '1.5'})
        with t.client() as c:
            for raw, needle in ((b'{not json', 'malformed JSON'), (b'[1, 2]', 'JSON object'),
                                (b'\xff\xfe', 'malformed JSON'),
                                (b'{"v": 1, "op": "ping"}', 'id'),
                                (b'{"v": 2, "id": 7, "op": "ping"}', 'version'),
                                (b'{"v": 1, "id": 8, "op": "fly"}', 'unknown op'),
                                (b'{"v": 1, "id": 9, "op": "apply"}', 'module')):
                c.send_raw(encode_frame(raw))
                reply = c.recv_frame()
                self.assertFalse(reply['ok'], raw)
                self.assertEqual(reply['error']['kind'], 'protocol', raw)
                self.assertIn(needle, reply['error']['message'])
            self.assertEqual(reply['id'], 9)
            self.assertEqual(c.call('ping')['pid'], t.pid)
            c.send_raw(struct.pack('>I', 64 * 1024 * 1024 + 1))
            reply = c.recv_frame()
            self.assertEqual(reply['error']['kind'], 'protocol')
            self.assertIsNone(c.recv_frame())   # and the connection is closed
        with t.client() as c:                      # disconnect in the middle of a frame
            c.send_raw(struct.pack('>I', 100) + b'{"v": 1')
        stuck = t.client()                         # a client that never finishes its frame
        self.addCleanup(stuck.close)
        stuck.send_raw(b'\x00\x00')
        with t.client(timeout=20) as c:            # served once the agent gives up on it
            self.assertEqual(c.call('ping')['pid'], t.pid)

    def test_other_users_are_refused(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to run a client as another uid')
        t = self.target({'app.py': 'X = 1\n'})
        # Open the directory modes up on purpose, so only SO_PEERCRED stands in the way.
        os.chmod(t.dir, 0o711)
        os.chmod(t.socket_dir, 0o711)
        os.chmod(t.socket, 0o666)
        probe = ('import socket, struct, sys\n'
                 's = socket.socket(socket.AF_UNIX)\n'
                 's.settimeout(10)\n'
                 's.connect(sys.argv[1])\n'
                 'b = b\'{"v": 1, "id": 1, "op": "ping"}\'\n'
                 'try:\n'
                 '    s.sendall(struct.pack(">I", len(b)) + b)\n'
                 '    print("closed" if s.recv(4) == b"" else "reply")\n'
                 'except (BrokenPipeError, ConnectionResetError):\n'
                 '    print("closed")\n')
        results = {}
        python = '/usr/bin/python3'   # readable by nobody, unlike /root/.pyenv
        if not os.access(python, os.X_OK):
            self.skipTest('no /usr/bin/python3 to run the client as nobody')
        for who, user in (('root', None), ('nobody', 65534)):
            out = subprocess.run([python, '-c', probe, t.socket], user=user,
                                 group=user, extra_groups=[] if user else None,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
            results[who] = out.stdout.decode().strip() or out.stderr.decode()
        self.assertEqual(results, {'root': 'reply', 'nobody': 'closed'})
        self.assertEqual(t.call('ping')['pid'], t.pid)

    def test_two_clients_at_once(self):
        t = self.target({'app.py': 'X = 1\n'})
        errors = []

        def work():
            try:
                for _ in range(15):
                    with t.client() as c:
                        for _ in range(3):
                            c.call('ping')
                        c.call('history')
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        # A second client waits in the backlog until the first one leaves.
        first = t.client()
        first.call('ping')
        second = t.client()
        second.send_raw(encode_frame({'v': 1, 'id': 1, 'op': 'ping'}))
        first.close()
        self.assertEqual(second.recv_frame()['pid'], t.pid)
        second.close()

    def test_fork_child_gets_its_own_agent_and_inherits_patches(self):
        app = 'def f():\n    return 1\n'
        new = 'def f():\n    return 2\n'
        t = self.target({'app.py': app})
        patch = t.reload('app.py', new).document['patch']
        t.exec('''
            import os, time
            pid = os.fork()
            if pid == 0:
                try:
                    time.sleep(60)
                finally:
                    os._exit(0)
            state['child'] = pid
            ''')
        child = t.value('state["child"]')
        child_socket = os.path.join(t.socket_dir, '%d.sock' % child)
        try:
            wait_for(lambda: os.path.exists(child_socket), what='child socket')
            with AgentClient(child_socket) as c:
                self.assertEqual(c.call('ping')['pid'], child)
                self.assertEqual([p['id'] for p in c.call('history')['patches']], [patch])
                c.call('revert')          # in the child only
            self.assertEqual(t.value('app.f()'), 2)
            self.assertEqual(t.call('ping')['pid'], t.pid)
            self.assertTrue(os.path.exists(t.socket))
        finally:
            os.kill(child, signal.SIGKILL)
        t.exec('os.waitpid(state["child"], 0)')
        # The child's socket is now stale: a fresh start removes it.
        t.exec('import pyhot_agent; pyhot_agent.stop(); pyhot_agent.start()')
        self.assertFalse(os.path.exists(child_socket))
        self.assertEqual(t.call('ping')['pid'], t.pid)

    # -- ways to start ----------------------------------------------------------------

    def test_python_dash_m_runs_the_script_and_keeps_its_exit_status(self):
        t = self.target({'app.py': 'X = 1\n'}, start='none',
                        argv_prefix=('-m', 'pyhot_agent'), args=('one', 'two'))
        wait_for(lambda: os.path.exists(t.socket), what='agent socket')
        self.assertEqual(t.value('sys.argv'), [t.path('main.py'), 'one', 'two'])
        self.assertEqual(t.value('sys.modules["__main__"].__file__'), t.path('main.py'))
        modules = {m['name']: m['file'] for m in t.call('modules')['modules']}
        self.assertEqual(modules.get('__main__'), t.path('main.py'))
        t.exec('state["exit_code"] = 3; state["exit"] = True')
        self.assertEqual(t.process.wait(20), 3)
        self.assertFalse(os.path.exists(t.socket))   # removed at exit

    def test_start_is_idempotent_and_injection_finds_the_running_agent(self):
        t = self.target({'app.py': 'X = 1\n'})
        t.exec('import runpy; runpy.run_path(%r, run_name="__agent__")' % AGENT_FILE)
        self.assertEqual(t.value('[x.name for x in threading.enumerate()].count("pyhot-agent")'), 1)
        self.assertEqual(t.value('__import__("pyhot_agent").start()'), t.socket)
        self.assertEqual(t.call('ping')['pid'], t.pid)
        with t.client() as c:
            self.assertEqual(c.call('stop'), {'v': 1, 'id': 1, 'ok': True})
        wait_for(lambda: not os.path.exists(t.socket), what='socket removed')
        wait_for(lambda: t.value('[x.name for x in threading.enumerate()]'
                                   '.count("pyhot-agent")') == 0, what='thread ends')
        self.assertEqual(t.value('__import__("pyhot_agent").start()'), t.socket)
        self.assertEqual(t.call('ping')['pid'], t.pid)

    def test_injected_agent_removes_stale_sockets(self):
        dead = 4000000
        while True:
            try:
                os.kill(dead, 0)
                dead += 1
            except ProcessLookupError:
                break
        sock_dir = os.path.join(os.path.realpath('/tmp'), 'pyhot-stale-%d' % os.getpid())
        os.makedirs(sock_dir, 0o700, exist_ok=True)
        self.addCleanup(shutil.rmtree, sock_dir, True)
        stale = os.path.join(sock_dir, '%d.sock' % dead)
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        t = self.target({'app.py': 'X = 1\n'}, start='inject',
                        env={'PYHOT_AGENT_SOCKET_DIR': sock_dir})
        self.assertFalse(os.path.exists(stale))
        self.assertEqual(t.call('ping')['thread'], 'pyhot-agent')


class AgentTest(AgentTests, unittest.TestCase):
    pass


for_each_interpreter(AgentTest, globals())
del AgentTest

if __name__ == '__main__':
    unittest.main()
