"""pyhot stack, inspect and instances against real processes: a known set
of threads (names, daemon) and asyncio tasks with their await chains, the
locals of a frame with a __repr__ that raises, known globals, attributes
and instances; a main thread that holds the GIL in a C call (what pyhot
says, and on 3.13 the stacks read from outside; the bootstrap queued then
never runs later); bad input; and nothing changed in the target after each
command."""
import json
import os
import sys
import textwrap
import unittest

from harness import AGENT_FILE, PYHOT, TargetTestCase, for_each_interpreter, pyhot, read_line, wait_for

SHOP = '''
import asyncio
import threading

PRICES = {'apple': 90, 'pear': 120}
NESTED = {'tiers': [1, [2, [3]]], 'name': 'gold'}


class Cart:
    TAX = 0.2

    def __init__(self, owner):
        self.owner = owner
        self.items = ['apple']


class BigCart(Cart):
    pass


class Broken:
    def __repr__(self):
        raise ValueError('no repr today')


carts = [Cart('ann'), Cart('bob'), BigCart('cy')]
stop = threading.Event()


def worker_loop():
    stop.wait()


def counting(count, label):
    total = count * 2
    stop.wait()


async def leaf():
    await asyncio.sleep(3600)


async def middle():
    await leaf()


def run_loop():
    loop = asyncio.new_event_loop()

    async def main():
        await loop.create_task(middle(), name='middle-task')

    loop.run_until_complete(main())


def start():
    threading.Thread(target=worker_loop, name='worker-a', daemon=True).start()
    threading.Thread(target=worker_loop, name='worker-b', daemon=False).start()
    threading.Thread(target=counting, args=(3, Broken()), name='counter', daemon=True).start()
    threading.Thread(target=run_loop, name='loop-thread', daemon=True).start()
'''

# What a command could change: loaded modules, the module's globals, builtins.
STATE = ("(sorted(__import__('sys').modules), sorted(vars(shop)), sorted(vars(__import__('builtins'))), "
         "shop.PRICES, [c.owner for c in shop.carts])")

# The main thread blocks in libc's sleep through a PyDLL, which keeps the
# GIL for the whole call: no Python code runs in the process meanwhile.
HOLDS_GIL = '''
import ctypes
import sys
import threading
import time


def bystander():
    while True:
        time.sleep(0.01)


def hold_gil():
    libc = ctypes.PyDLL(None)
    print('holding', flush=True)
    libc.sleep(60)


threading.Thread(target=bystander, name='bystander', daemon=True).start()
time.sleep(0.2)
hold_gil()
'''

# The main thread holds the GIL in sleep() until SIGUSR1 (its handler is
# Python's, so the sleep returns), then runs Python again: a bootstrap pyhot
# queued meanwhile would run then. It says what of pyhot is in the process
# once the agent, had it been started, would be up. (Not pause(): it does
# not go back to sleep after the injector's ptrace stop, as sleep does.)
HOLDS_GIL_UNTIL_SIGNAL = '''
import ctypes
import signal
import sys
import threading
import time

signal.signal(signal.SIGUSR1, lambda number, frame: None)
print('holding', flush=True)
left = ctypes.PyDLL(None).sleep(120)
print('released' if left > 0 else 'slept', flush=True)


def pyhot_in_process():
    return sorted(k for k in vars(sys) if k.startswith('_pyhot')) + sorted(
        t.name for t in threading.enumerate() if t.name.startswith('pyhot'))


until = time.monotonic() + 3
while time.monotonic() < until and not pyhot_in_process():
    time.sleep(0.05)
print('pyhot in process: %r' % pyhot_in_process(), flush=True)
time.sleep(60)
'''


def functions(frames):
    return [frame['function'].split('.')[-1] for frame in frames]


class StackTest(TargetTestCase):
    def setUp(self):
        self.target = self.start({'shop.py': SHOP}, ['shop'], setup='shop.start()')
        self.addCleanup(self.target.call, 'shop.stop.set()')
        self.before = self.target.call(STATE)

    def tearDown(self):
        self.assertEqual(self.target.call(STATE), self.before, 'the target changed')

    def stack(self, *options):
        done = pyhot('stack', self.target.pid, '--json', *options, check=0)
        return json.loads(done.stdout)

    def thread(self, document, name):
        found = [t for t in document['threads'] if t['name'] == name]
        self.assertEqual(len(found), 1, [t['name'] for t in document['threads']])
        return found[0]

    def test_threads_with_names_daemon_and_lines(self):
        document = wait_for(lambda: (lambda d: d if any(t['name'] == 'loop-thread' for t in d['threads']) else None)(
            self.stack()), 10, 'the loop thread')
        names = sorted(t['name'] for t in document['threads'])
        self.assertTrue({'MainThread', 'worker-a', 'worker-b', 'counter', 'loop-thread'} <= set(names), names)
        self.assertFalse([n for n in names if n.startswith('pyhot')], names)
        for thread in document['threads']:
            for frame in thread['frames']:
                self.assertNotIn('pyhot_agent', frame['file'])
        self.assertTrue(self.thread(document, 'MainThread')['main'])
        self.assertIs(self.thread(document, 'worker-a')['daemon'], True)
        self.assertIs(self.thread(document, 'worker-b')['daemon'], False)
        worker = self.thread(document, 'worker-a')
        self.assertEqual(worker['native_id'] is not None, True)
        mine = [f for f in worker['frames'] if f['file'] == self.target.path('shop.py')]
        self.assertEqual([(f['function'], f['line'], f['text']) for f in mine],
                         [("worker_loop", 30, "stop.wait()")])
        # Innermost last: threading's wait is below worker_loop.
        self.assertEqual(functions(worker['frames'])[-1], 'wait')
        text = pyhot('stack', self.target.pid, check=0).stdout
        self.assertIn('Thread worker-a (ident ', text)
        self.assertIn(', daemon)', text)
        self.assertIn('File "%s", line 30, in worker_loop\n    stop.wait()' % self.target.path('shop.py'), text)

    def test_async_tasks_and_their_await_chains(self):
        def tasks():
            document = self.stack('--async')
            return document if any(t['name'] == 'middle-task' for t in document['tasks']) else None
        document = wait_for(tasks, 10, 'the task')
        middle = [t for t in document['tasks'] if t['name'] == 'middle-task'][0]
        self.assertEqual(functions(middle['frames']), ['middle', 'leaf', 'sleep'])
        self.assertEqual(middle['frames'][1]['text'], 'await asyncio.sleep(3600)')
        self.assertIn('Future', middle['awaiting'])
        loop_thread = self.thread(document, 'loop-thread')
        self.assertEqual(middle['loop_thread'], loop_thread['ident'])
        outer = [t for t in document['tasks'] if t['name'] != 'middle-task']
        self.assertEqual(len(outer), 1)
        self.assertEqual(outer[0]['awaiting'], "task 'middle-task'")
        text = pyhot('stack', self.target.pid, '--async', check=0).stdout
        self.assertIn("Task 'middle-task' (middle, loop ", text)
        self.assertIn('in thread loop-thread)', text)

    def test_locals_are_bounded_and_a_raising_repr_is_named(self):
        document = self.stack('--locals')
        frame = [f for f in self.thread(document, 'counter')['frames'] if f['function'] == 'counting'][0]
        self.assertEqual(frame['locals']['count'], '3')
        self.assertEqual(frame['locals']['total'], '6')
        self.assertIn('its __repr__ raised ValueError: no repr today', frame['locals']['label'])

    def test_inspect_globals_attributes_and_expressions(self):
        prices = json.loads(pyhot('inspect', self.target.pid, 'shop.PRICES', '--json', check=0).stdout)
        self.assertEqual({m['name']: m['repr'] for m in prices['value']['members']}, {"'apple'": '90', "'pear'": '120'})
        module = json.loads(pyhot('inspect', self.target.pid, 'shop', '--json', check=0).stdout)
        members = {m['name']: m['type'] for m in module['value']['members']}
        self.assertEqual(members['PRICES'], 'dict')
        self.assertEqual(members['Cart'], 'type')
        tax = json.loads(pyhot('inspect', self.target.pid, 'shop.BigCart.TAX', '--json', check=0).stdout)
        self.assertEqual(tax['value']['repr'], '0.2')
        owner = pyhot('inspect', self.target.pid, 'shop.carts', '--expr', 'obj[1].owner.upper()', check=0).stdout
        self.assertEqual(owner, "shop.carts -> obj[1].owner.upper(): str = 'BOB'\n")
        nested = pyhot('inspect', self.target.pid, 'shop.NESTED', '--depth', '3', check=0).stdout
        self.assertIn("  'tiers': list (2 members)\n    [0]: int = 1\n    [1]: list (2 members)\n", nested)

    def test_instances_are_counted_and_limited(self):
        document = json.loads(pyhot('instances', self.target.pid, 'shop.Cart', '--json', check=0).stdout)
        self.assertEqual(document['count'], 3)
        self.assertTrue(document['complete'])
        self.assertEqual(sorted(i['attributes']['owner'] for i in document['instances']), ["'ann'", "'bob'", "'cy'"])
        self.assertEqual(sorted(i['type'] for i in document['instances']), ['shop.BigCart', 'shop.Cart', 'shop.Cart'])
        text = pyhot('instances', self.target.pid, 'shop.Cart', '--limit', '1', '--expr', 'obj.owner', check=0).stdout
        self.assertTrue(text.startswith('3 live instances of shop.Cart'), text)
        self.assertIn('... 2 more', text)
        self.target.call("shop.carts.append(shop.Cart('dee'))")
        self.before = self.target.call(STATE)
        self.assertEqual(json.loads(pyhot('instances', self.target.pid, 'shop.BigCart', '--json',
                                          check=0).stdout)['count'], 1)
        self.assertEqual(json.loads(pyhot('instances', self.target.pid, 'shop.Cart', '--json',
                                          check=0).stdout)['count'], 4)

    def test_instances_of_a_class_not_defined_in_python_are_found_by_a_walk(self):
        self.target.call("shop.NESTED.setdefault('ordered', __import__('collections').OrderedDict(a=1))")
        self.before = self.target.call(STATE)
        document = json.loads(pyhot('instances', self.target.pid, 'collections.OrderedDict', '--limit', '100000',
                                    '--json', check=0).stdout)
        self.assertTrue(document['complete'])
        self.assertGreater(document['scanned'], 1000)
        self.assertGreaterEqual(document['count'], 1)  # the one made here, and any the standard library made
        self.assertEqual({i['type'] for i in document['instances']}, {'collections.OrderedDict'})

    def test_bad_input_is_one_line_and_exit_1(self):
        cases = [
            (('inspect', 'nosuch.thing'), "no module named 'nosuch' is loaded"),
            (('inspect', 'shop.nosuch'), "module 'shop' has no global 'nosuch'"),
            (('inspect', 'shop.PRICE'), "module 'shop' has no global 'PRICE'; nearest: PRICES"),
            (('inspect', 'shop.Cart.nosuch'), "has no attribute 'nosuch'"),
            (('inspect', 'shop.PRICES', '--expr', '1/0'), 'the expression raised ZeroDivisionError'),
            (('inspect', 'shop.PRICES', '--expr', 'obj['), 'the expression is not valid Python'),
            (('instances', 'shop.PRICES'), 'is a dict, not a class'),
            (('instances', 'shop.nosuch'), "has no global 'nosuch'"),
        ]
        for arguments, message in cases:
            done = pyhot(arguments[0], self.target.pid, *arguments[1:])
            self.assertEqual(done.returncode, 1, (arguments, done.stderr))
            self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
            self.assertIn(message, done.stderr)
            self.assertEqual(done.stdout, '')
            self.assertEqual(self.target.call(STATE), self.before, arguments)


class HeldGilTest(TargetTestCase):
    """The main thread holds the GIL in a C call: the agent cannot run."""

    def held(self, prepared):
        directory = self.enterContext_dir()
        path = os.path.join(directory, 'holds_gil.py')
        with open(path, 'w') as handle:
            handle.write(HOLDS_GIL.lstrip('\n'))
        command = [self.python, path]
        if prepared:
            command = [PYHOT, 'run', '--'] + command
        import subprocess
        process = self.spawn(command, stdout=subprocess.PIPE, text=True)
        self.assertEqual(read_line(process).strip(), 'holding')
        return process, path

    def enterContext_dir(self):
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix='pyhot-test-')
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def check(self, prepared):
        process, path = self.held(prepared)
        done = pyhot('stack', process.pid, '--timeout', '1500', timeout=60)
        self.assertIn('did not answer within 1500 ms', done.stdout)
        if self.python_label == 'python3.13':
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            # restart_syscall: the sleep as the kernel resumed it after the injector's ptrace stop.
            self.assertRegex(done.stdout, r'Thread tid %d \(main\) holds the GIL and is in (clock_nanosleep|restart_syscall)\.'
                             % process.pid)
            self.assertIn('File "%s", line 15, in hold_gil\n    libc.sleep(60)' % path, done.stdout)
            self.assertIn('File "%s", line 9, in bystander' % path, done.stdout)
            document = json.loads(pyhot('stack', process.pid, '--timeout', '1500', '--json').stdout)
            holders = [t for t in document['threads'] if t['holds_gil']]
            self.assertEqual([t['native_id'] for t in holders], [process.pid])
            self.assertEqual(functions(holders[0]['frames']), ['<module>', 'hold_gil'])
        else:
            self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
            self.assertRegex(done.stdout, r'tid %d \(main\)  in (clock_nanosleep|restart_syscall)' % process.pid)
            self.assertIn('an out-of-process stack is not available on this version', done.stdout)
        self.assertIsNone(process.poll(), 'the target died')
        with open('/proc/%d/stat' % process.pid) as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
        self.assertNotIn(state, ('T', 't'), 'the target was left stopped')

    def test_with_the_agent_running(self):
        self.check(prepared=True)

    def test_a_bootstrap_that_could_not_run_never_runs_later(self):
        # pyhot gave up on the agent: when the main thread gets back to
        # Python, nothing of pyhot's starts (the queued bootstrap expired).
        path = os.path.join(self.enterContext_dir(), 'holds_gil.py')
        with open(path, 'w') as handle:
            handle.write(HOLDS_GIL_UNTIL_SIGNAL.lstrip('\n'))
        import signal
        import subprocess
        process = self.spawn([self.python, path], stdout=subprocess.PIPE, text=True)
        self.assertEqual(read_line(process).strip(), 'holding')
        done = pyhot('stack', process.pid, '--timeout', '1000', timeout=60)
        self.assertIn('did not answer within 1000 ms', done.stdout)
        self.assertIn('it expired', done.stdout + done.stderr)
        import select
        self.assertEqual(select.select([process.stdout], [], [], 0.5)[0], [], 'the sleep ended early')
        os.kill(process.pid, signal.SIGUSR1)
        self.assertEqual(read_line(process).strip(), 'released')
        self.assertEqual(read_line(process).strip(), 'pyhot in process: []')

    def test_without_an_agent(self):
        self.check(prepared=False)


for_each_interpreter(StackTest, globals())
for_each_interpreter(HeldGilTest, globals())
del StackTest, HeldGilTest

if __name__ == '__main__':
    unittest.main()
