"""What test_service.py and test_service_bridge.py share: a test case with a real
mosquitto per class, simulators (tools/panda2mqtt-sim) as devices, PTalk simulators
dialling in, and gateways, all stopped at its end; the service manager's end of
sd_notify. Every wait is bounded (harness.wait_until). The simulator logs every WebSocket
connection it accepts ("client N connected from"): counting those proves that a device's
link survived a reload (no new connection).
"""
import json
import os
import re
import socket
import sys
import threading
import time

from harness import BrokerTestCase, Gateway, Mqtt, Sim, wait_until
from test_dialin import PTalk

MACS = ("0A0000000001", "0A0000000002", "0A0000000003", "0A0000000004")
# No snapshot re-reads (a re-read is a second, short connection at the simulator): every
# connection the simulator counts is then a (re)connection of the device's link.
LINK_ONLY = {"stale_timeout": 6, "refresh_interval": 0}


def connects(sim):
    """WebSocket connections the simulator has accepted so far."""
    with open(sim.stderr, errors="replace") as f:
        return len(re.findall(r"client \d+ connected from", f.read()))


def device(sim, **opts):
    return dict({"host": "127.0.0.1", "port": sim.port}, **LINK_ONLY, **opts)


def speak(sim, temp):
    """Make the device send a frame that changes its state (a chamber temperature)."""
    sim.control("push " + json.dumps({"settings": {"warehouse_temper": temp}}))


class ServiceCase(BrokerTestCase):
    """Gateways, simulators and PTalks made by the test, all stopped at its end."""

    def setUp(self):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.sims, self.ptalks, self.gws = [], [], []

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is not None and any(t is self for t, _ in result.failures + result.errors):
            for gw in self.gws:  # what the gateway said, next to the failure
                print(f"\n--- {gw.logfile}\n{gw.log()[-4000:]}", file=sys.stderr)
        try:
            for gw in self.gws:
                rc = gw.stop()
                self.assertEqual(rc, 0, f"gateway exit code {rc}; log:\n{gw.log()[-3000:]}")
                gw.assert_clean_log(self)
        finally:
            for p in self.sims + self.ptalks:
                p.stop()
            self.mqtt.close()

    def sim(self, mac=MACS[0], **kw):
        sim = Sim(self.tmpdir.name, extra=("--mac", mac), **kw)
        self.sims.append(sim)
        return sim

    def ptalk(self, port, **kw):
        p = PTalk(self.tmpdir.name, port, **kw)
        self.ptalks.append(p)
        return p

    def gateway(self, devices, **kw):
        """A gateway, once its session is up: the broker has its subscriptions when its
        bridge/state says online (it subscribes first), so requests reach it."""
        kw.setdefault("base", self.base)
        t0 = time.monotonic()
        gw = Gateway(self.tmpdir.name, self.broker.port, devices, **kw)
        self.gws.append(gw)
        self.mqtt.wait(f"{gw.base}/bridge/state", lambda p: p == "online", since=t0)
        return gw

    # topics
    def t(self, dev, suffix=""):
        return f"{self.base}/{dev}{suffix}"

    def disc(self, dev):
        return f"homeassistant/device/{dev}/config"

    def wait_empty(self, topic, since, timeout=20):
        """An empty payload on topic after since (a retained message deleted). Not
        Mqtt.wait: its match returns the payload, and "" reads as no match."""
        wait_until(lambda: any(p == "" and at >= since for _, p, _, at in self.mqtt.on(topic)),
                   timeout, what=f"an empty payload on {topic}")

    def wait_online(self, dev, since=0.0, timeout=20):
        self.mqtt.wait(self.t(dev, "/availability"), lambda p: p == "online", timeout, since)

    def request(self, verb, payload, since=None, retain=False, timeout=15):
        """Publish a request and return its response (the first after it was sent)."""
        t0 = time.monotonic() if since is None else since
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self.mqtt.publish(f"{self.base}/bridge/request/{verb}", body, retain=retain)
        return self.mqtt.wait_json(f"{self.base}/bridge/response/{verb}", timeout=timeout,
                                   since=t0)

    def info(self):
        return self.mqtt.last_json(f"{self.base}/bridge/info")

    def info_ids(self):
        info = self.info()
        return sorted(d["id"] for d in info["devices"]) if info else None


class NotifySocket:
    """The service manager's end of sd_notify: an AF_UNIX datagram socket."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic, text)
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def since(self, t0, word):
        """The messages from t0 on with a line that is (or starts with) word."""
        with self.lock:
            return [(at, m) for at, m in self.messages
                    if at >= t0 and any(line.startswith(word) for line in m.split("\n"))]

    def mark(self):
        """A datagram of the test's own, once it has been read: a point in the socket's
        queue. What the gateway sent before it was queued before it, whenever the reader
        thread got to it; so what comes after it was sent after mark() was called."""
        marker = f"TEST-MARK={time.monotonic_ns()}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(marker.encode(), self.path)
        wait_until(lambda: any(m == marker for _, m in self.messages), 5, what=marker)
        return marker

    def after(self, marker, word):
        """The messages read after marker with a line that is (or starts with) word."""
        with self.lock:
            texts = [m for _, m in self.messages]
        rest = texts[texts.index(marker) + 1:]
        return [m for m in rest if any(line.startswith(word) for line in m.split("\n"))]

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)
