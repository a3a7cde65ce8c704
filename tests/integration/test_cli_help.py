"""What an installed tool is expected to have: `--help` of every command
with an example, and colour only on a terminal, never under NO_COLOR
(autoreload is the command that colours)."""
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import PYHOT, kill_group, pyhot, spawn, wait_for

COMMANDS = ["defs", "check", "reload", "module", "history", "revert", "ps", "agent-path", "autoreload", "run",
            "bundle", "apply", "profile", "stack", "inspect", "instances", "watch", "probe", "trace"]


class HelpTest(unittest.TestCase):

    def test_every_command_has_an_example(self):
        for command in COMMANDS:
            done = pyhot(command, "--help")
            self.assertEqual(done.returncode, 0, command + ": " + done.stdout + done.stderr)
            self.assertIn("Example:\n", done.stdout, command)
            example = done.stdout.split("Example:\n", 1)[1].splitlines()[0]
            self.assertIn("pyhot " + command, example, command)


class ColourTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyhot-colour-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "work.py"), "w") as handle:
            handle.write("def answer():\n    return 1\n")
        with open(os.path.join(self.dir, "main.py"), "w") as handle:
            handle.write("import time, work\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n")
        self.target = spawn([sys.executable, "main.py"], cwd=self.dir, stdout=subprocess.PIPE)
        self.addCleanup(kill_group, self.target)
        self.assertEqual(self.target.stdout.readline().strip(), b"ready")

    def on_terminal(self, env):
        """autoreload --once on a pseudo-terminal: everything it wrote."""
        main, secondary = pty.openpty()
        process = subprocess.Popen([PYHOT, "autoreload", str(self.target.pid), "work.py", "--once"], stdin=subprocess.DEVNULL,
                                   stdout=secondary, stderr=secondary, env=env, cwd=self.dir, start_new_session=True)
        os.close(secondary)
        output = b""
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([main], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(main, 4096)
                    except OSError:
                        break  # the terminal closed: pyhot exited
                    if not chunk:
                        break
                    output += chunk
                elif process.poll() is not None:
                    break
        finally:
            os.close(main)
            if process.poll() is None:
                process.kill()
            process.wait(10)
        self.assertEqual(process.returncode, 0, output)
        return output

    def test_colour_on_a_terminal_only_and_never_under_no_color(self):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        self.assertIn(b"\x1b[", self.on_terminal(env))
        plain = self.on_terminal(dict(env, NO_COLOR="1"))
        self.assertIn(b"nothing to apply", plain)
        self.assertNotIn(b"\x1b[", plain)
        piped = pyhot("autoreload", self.target.pid, "work.py", "--once", cwd=self.dir, env=env)
        self.assertEqual(piped.returncode, 0, piped.stdout + piped.stderr)
        self.assertIn("nothing to apply", piped.stdout)
        self.assertNotIn("\x1b[", piped.stdout + piped.stderr)


if __name__ == "__main__":
    unittest.main()
