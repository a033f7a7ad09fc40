"""Integration test harness: real mosquitto, the simulator and the daemon, on loopback.

Each helper starts a real process and cleans it up; every wait has a deadline, so a
hung component fails the test instead of hanging it. Run by ctest with P2M_BUILD_DIR
set; by hand: P2M_BUILD_DIR=build /usr/bin/python3 -m unittest -v test_gateway
"""
import json
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("P2M_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
GATEWAY = os.path.join(BUILD, "panda2mqtt")
SIM = os.path.join(BUILD, "panda2mqtt-sim")
AVAHI_UP = os.path.join(HERE, "..", "..", "tools", "avahi-up.sh")
SANITIZED = os.environ.get("P2M_SANITIZE", "0") in ("1", "ON", "TRUE", "true")

# The secrets the simulator holds (see panda2mqtt-sim --help).
SIM_SECRETS = ("SimWifiPass-7f3a9c", "SimApPass-51d2e8", "SimAccess-90b4c1")

SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=0:exitcode=66:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=66",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_port(port, timeout=10):
    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_until(up, timeout, what=f"port {port}")


class Broker:
    """A real mosquitto on a free loopback port; restartable on the same port."""

    def __init__(self, tmp, port=None):
        self.port = port or free_port()
        self.conf = os.path.join(tmp, f"mosquitto-{self.port}.conf")
        self.log = os.path.join(tmp, f"mosquitto-{self.port}.log")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf],
                                     stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        wait_port(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


class Avahi:
    """The machine's avahi-daemon (and system D-Bus), started by tools/avahi-up.sh."""

    @staticmethod
    def up(restart=False):
        """Start it if needed; returns None, or why it cannot run (then skip)."""
        run = subprocess.run(["sh", AVAHI_UP, "--restart" if restart else "--loopback"],
                             capture_output=True, text=True, timeout=30)
        if run.returncode != 0:
            return run.stderr.strip() or f"tools/avahi-up.sh exited {run.returncode}"
        return None

    @staticmethod
    def stop():
        subprocess.run(["avahi-daemon", "-k"], capture_output=True, timeout=10)
        wait_until(lambda: subprocess.run(["avahi-daemon", "-c"], capture_output=True,
                                          timeout=10).returncode != 0,
                   10, what="avahi-daemon to stop")


class Publish:
    """avahi-publish announcing a service (e.g. a web server that is not a device)."""

    def __init__(self, name, port, stype="_http._tcp"):
        self.proc = subprocess.Popen(["avahi-publish", "-s", name, stype, str(port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("Established"), f"avahi-publish: {line}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Sim:
    """panda2mqtt-sim with its control channel on stdin and its frame log."""

    def __init__(self, tmp, port=0, firmware="V1.0.3", push_interval=0.5, extra=()):
        self.tmp = tmp
        self.frames_log = os.path.join(tmp, f"frames-{time.monotonic_ns()}.log")
        self.stderr = os.path.join(tmp, f"sim-{time.monotonic_ns()}.log")
        open(self.frames_log, "w").close()
        env = dict(os.environ, **(SANITIZER_ENV if SANITIZED else {}))
        self.proc = subprocess.Popen(
            [SIM, "--port", str(port), "--firmware", firmware, "--push-interval",
             str(push_interval), "--frames-log", self.frames_log, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.stderr, "w"),
            text=True, bufsize=1, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next_line(10)
        assert first.startswith("ready port="), first
        self.port = int(first.split("=", 1)[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _next_line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("simulator said nothing") from None

    def control(self, command, timeout=5):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._next_line(max(0.01, deadline - time.monotonic()))
            if line.startswith("ok ") or line.startswith("error "):
                assert line.startswith("ok "), f"simulator: {line}"
                return line
        raise AssertionError(f"simulator did not confirm {command!r}")

    def frames(self):
        with open(self.frames_log) as f:
            return [line.rstrip("\n") for line in f]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Gateway:
    """The daemon under test, configured through a real INI file."""

    def __init__(self, tmp, broker_port, devices, base="panda2mqtt", prefix="homeassistant",
                 extra_ini="", verbose=True, mdns=False):
        self.tmp = tmp
        self.base = base
        self.prefix = prefix
        self.ini = os.path.join(tmp, f"gw-{time.monotonic_ns()}.ini")
        self.logfile = os.path.join(tmp, f"gw-{time.monotonic_ns()}.log")
        with open(self.ini, "w") as f:
            f.write(f"[mqtt]\nhost = 127.0.0.1\nport = {broker_port}\nbase_topic = {base}\n"
                    f"discovery_prefix = {prefix}\nkeepalive = 5\n\n"
                    f"[discovery]\nmdns = {'true' if mdns else 'false'}\n\n")
            for dev_id, opts in devices.items():
                f.write(f"[device {dev_id}]\n")
                for k, v in opts.items():
                    f.write(f"{k} = {v}\n")
                f.write("\n")
            f.write(extra_ini)
        os.chmod(self.ini, 0o600)
        env = dict(os.environ, **(SANITIZER_ENV if SANITIZED else {}))
        args = [GATEWAY, "-c", self.ini] + (["-v"] if verbose else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.logfile, "w"), env=env)

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("gateway did not stop on " + str(sig))
        return self.proc.returncode

    def assert_clean_log(self, test):
        log = self.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            test.assertNotIn(bad, log, f"sanitizer report in the gateway log:\n{log[-4000:]}")


class Mqtt:
    """A paho client that records every message it sees (subscribed to '#')."""

    def __init__(self, port, subscribe="#"):
        self.messages = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = paho.Client(client_id=f"test-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: (c.subscribe(subscribe, qos=1),
                                                       self.connected.set())
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("test MQTT client could not connect")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode("utf-8", "replace"),
                                  bool(msg.retain), time.monotonic()))

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m[0] == topic]

    def last(self, topic):
        got = self.on(topic)
        return got[-1][1] if got else None

    def last_json(self, topic):
        value = self.last(topic)
        return json.loads(value) if value is not None else None

    def wait(self, topic, pred=lambda payload: True, timeout=10, since=0.0):
        def match():
            for t, payload, _, at in reversed(self.on(topic)):
                if at >= since and pred(payload):
                    return payload
            return None
        return wait_until(match, timeout, what=f"a matching message on {topic}")

    def wait_json(self, topic, pred=lambda obj: True, timeout=10, since=0.0):
        def p(payload):
            try:
                return pred(json.loads(payload))
            except (ValueError, KeyError, TypeError):
                return False
        return json.loads(self.wait(topic, p, timeout, since))

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish()

    def all_payloads(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class GatewayTestCase(unittest.TestCase):
    """One broker per class; one simulator and gateway per test."""

    firmware = "V1.0.3"
    device_opts = {"stale_timeout": 4, "refresh_interval": 5}

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-test-")
        cls.broker = Broker(cls.tmpdir.name)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.sim = Sim(self.tmpdir.name, firmware=self.firmware)
        self.gw = self.start_gateway()

    def start_gateway(self, **kw):
        opts = dict({"host": "127.0.0.1", "port": self.sim.port, "name": "Test heater"},
                    **self.device_opts)
        return Gateway(self.tmpdir.name, self.broker.port, {"dev1": opts}, base=self.base, **kw)

    def tearDown(self):
        try:
            rc = self.gw.stop()
            self.assertEqual(rc, 0, f"gateway exit code {rc}; log:\n{self.gw.log()[-3000:]}")
            self.gw.assert_clean_log(self)
        finally:
            self.sim.stop()
            self.mqtt.close()

    # topics
    def t(self, suffix=""):
        return f"{self.base}/dev1{suffix}"

    def wait_online(self, timeout=15, since=0.0):
        self.mqtt.wait(self.t("/availability"), lambda p: p == "online", timeout, since)

    def wait_state(self, pred, timeout=15, since=0.0):
        return self.mqtt.wait_json(self.t(), pred, timeout, since)

    def new_frames(self, before, timeout=5, count=1):
        wait_until(lambda: len(self.sim.frames()) >= before + count, timeout,
                   what=f"{count} frame(s) at the simulator")
        return [json.loads(f) for f in self.sim.frames()[before:]]
