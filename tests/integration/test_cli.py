"""The command line contract: --help, --version, usage errors, --check-config."""
import os
import subprocess
import tempfile
import time
import unittest

from harness import GATEWAY


def run(*args, env=None, timeout=10):
    return subprocess.run([GATEWAY, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="p2m-cli-")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, text, mode=0o600):
        path = os.path.join(self.tmp.name, "p.ini")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("--config", "--verbose", "--check-config", "--version", "--help"):
            self.assertIn(word, r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^panda2mqtt \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        self.assertEqual(run("--no-such-option").returncode, 2)
        self.assertEqual(run("stray-argument").returncode, 2)
        self.assertEqual(run("-c").returncode, 2)

    def test_check_config_ok_without_connecting(self):
        # nothing listens on port 1: a connect attempt would fail or hang; --check-config
        # must not try
        path = self.write("[mqtt]\nhost = 127.0.0.1\nport = 1\n[discovery]\nmdns = false\n"
                          "[device garage]\nhost = 127.0.0.1\nport = 1\n")
        start = time.monotonic()
        r = run("--check-config", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid (1 static device(s), 0 named for discovery, mDNS off)", r.stdout)
        # a connect attempt would hang far longer than this, on any machine
        self.assertLess(time.monotonic() - start, 30)

    def test_check_config_errors_name_file_line_key(self):
        cases = [
            ("[mqtt]\nport = 99999\n", ":2: [mqtt] port:"),
            ("[mqtt]\nhost = x\nbogus = 1\n", ":3: [mqtt] bogus:"),
            ("[nosuch]\na = 1\n", ":1: [nosuch]"),
            ("[device Bad Id]\nhost = x\n", ":1:"),
            ("[discovery]\nmdns = no\n[device garage]\nport = 80\n",
             ":3: [device garage]: missing required key 'host'"),
            ("[safety]\nmax_target_temp = 90\n", ":2: [safety] max_target_temp:"),
            ("[device garage]\nhost = x\ntype = toaster\n",
             ":3: [device garage] type: unknown device family 'toaster'; known: "
             "panda_breath, ptalk, json_sensor"),
        ]
        for text, expect in cases:
            path = self.write(text)
            r = run("--check-config", "-c", path)
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn(path, r.stderr)
            self.assertIn(expect, r.stderr, text)

    def test_missing_config_file(self):
        r = run("--check-config", "-c", os.path.join(self.tmp.name, "absent.ini"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("absent.ini", r.stderr)

    def test_password_never_echoed(self):
        path = self.write("[mqtt]\npassword = Hunter2-Secret\npassword_file = /x\n")
        r = run("--check-config", "-c", path)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("Hunter2-Secret", r.stderr + r.stdout)

    def test_world_readable_password_warns(self):
        path = self.write("[mqtt]\npassword = Hunter2-Secret\n", mode=0o644)
        r = run("--check-config", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("readable", r.stderr)
        self.assertNotIn("Hunter2-Secret", r.stderr + r.stdout)

    def test_dot_in_topics_warns(self):
        """RabbitMQ delivers '.' as '/' (docs/BROKERS.md): valid, but said."""
        for text, warned in (("[mqtt]\nbase_topic = panda.breath\n", True),
                             ("[mqtt]\ndiscovery_prefix = home.assistant\n", True),
                             ("[mqtt]\nbase_topic = panda_breath\n", False)):
            r = run("--check-config", "-c", self.write(text))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual("turns it into '/'" in r.stderr, warned, (text, r.stderr))


if __name__ == "__main__":
    unittest.main()
