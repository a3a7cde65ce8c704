"""The ways to start a program with the agent, and `pyhot ps` seeing it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import PYHOT, for_each_interpreter, kill_group, pyhot, spawn, wait_for

APP = '''
import sys, time
import work
print("args", sys.argv[1:], flush=True)
if "--start" in sys.argv:
    import pyhot_agent
    pyhot_agent.start()
while True:
    with open("out.txt", "w") as handle:
        handle.write(str(work.answer()))
    time.sleep(0.02)
'''


class StartTest(unittest.TestCase):
    python = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-start-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "app.py"), "w") as handle:
            handle.write(APP)
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 1\n")

    def launch(self, command, env=None):
        log_path = os.path.join(self.dir, "program.log")
        log = open(log_path, "w")
        self.addCleanup(log.close)
        process = spawn(command, cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(kill_group, process)

        def first_line():
            with open(log_path) as handle:
                line = handle.readline()
            if not line.endswith("\n") and process.poll() is not None:
                raise AssertionError("the program exited %d: %s" % (process.returncode, line))
            return line if line.endswith("\n") else None
        self.assertIn("args", wait_for(first_line, 20, "the program's first line"))
        return process

    def answer(self):
        try:
            with open(os.path.join(self.dir, "out.txt")) as handle:
                return handle.read()
        except OSError:
            return None

    def agent_listed(self, pid):
        listing = json.loads(pyhot("ps", "--json", check=0).stdout)
        return any(p["pid"] == pid and p["agent"] for p in listing["processes"])

    def reload_and_see(self, pid):
        wait_for(lambda: self.answer() == "1", 10, "the program to run")
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 2\n")
        # The agent was started with the program: no attach is needed, so
        # this works where ptrace is not allowed.
        pyhot("reload", pid, os.path.join(self.dir, "work.py"), check=0)
        wait_for(lambda: self.answer() == "2", 10, "the new code to run")

    def test_pyhot_run_passes_arguments_and_starts_the_agent(self):
        process = self.launch([PYHOT, "run", "--", self.python, "app.py", "--flag", "x"])
        wait_for(lambda: self.agent_listed(process.pid), 10, "pyhot ps to show the agent")
        self.reload_and_see(process.pid)

    def test_python_m_pyhot_agent(self):
        agent_dir = pyhot("agent-path", check=0).stdout.strip()
        self.assertTrue(os.path.exists(os.path.join(agent_dir, "pyhot_agent.py")))
        env = dict(os.environ, PYTHONPATH=agent_dir)
        process = self.launch([self.python, "-m", "pyhot_agent", "app.py", "--flag"], env=env)
        wait_for(lambda: self.agent_listed(process.pid), 10, "pyhot ps to show the agent")
        self.reload_and_see(process.pid)

    def test_import_and_start_in_the_program(self):
        agent_dir = pyhot("agent-path", check=0).stdout.strip()
        env = dict(os.environ, PYTHONPATH=agent_dir)
        process = self.launch([self.python, "app.py", "--start"], env=env)
        wait_for(lambda: self.agent_listed(process.pid), 10, "pyhot ps to show the agent")
        self.reload_and_see(process.pid)

    def test_ps_lists_an_unprepared_process_without_an_agent(self):
        process = self.launch([self.python, "app.py"])
        listing = json.loads(pyhot("ps", "--json", check=0).stdout)
        entry = [p for p in listing["processes"] if p["pid"] == process.pid]
        self.assertEqual(len(entry), 1)
        self.assertFalse(entry[0]["agent"])
        self.assertIn("app.py", entry[0]["command"])


for_each_interpreter(StartTest, globals())
del StartTest

if __name__ == "__main__":
    unittest.main()
