"""The gateway on a second broker implementation that is not mosquitto: aedes (Node.js,
npm "aedes" 1.2.0, in-memory persistence; tools/brokers/aedes-broker.js), one node.

What Home Assistant needs, checked the way it gets it: retained discovery (valid for Home
Assistant) handed to a new wildcard subscriber, retained availability and state, commands,
the Will when the gateway dies, and a broker restart (aedes forgets every retained message:
the gateway sends them all again when it reconnects). Every wait is bounded."""
import json
import signal
import sys
import tempfile
import time
import unittest

from brokers import Aedes, HomeAssistant, aedes_missing, retained_now
from harness import Explains, Gateway, Sim, wait_until
import ha_schema

T = 30


def log(msg):
    print(f"  {msg}", file=sys.stderr, flush=True)


@unittest.skipIf(aedes_missing(), aedes_missing())
class AedesTest(Explains, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-aedes-")
        cls.addClassCleanup(cls.tmpdir.cleanup)
        cls.broker = Aedes(cls.tmpdir.name)
        cls.addClassCleanup(cls.broker.stop)
        log(f"aedes {Aedes.version()} on port {cls.broker.port}")
        cls.base = f"p2m{time.monotonic_ns() % 10**9}"
        cls.ha = HomeAssistant(cls.broker.port)
        cls.addClassCleanup(cls.ha.close)
        cls.sim = Sim(cls.tmpdir.name)
        cls.addClassCleanup(cls.sim.stop)
        cls.gw = cls.start_gateway()

    @classmethod
    def start_gateway(cls):
        gw = Gateway(cls.tmpdir.name, cls.broker.port,
                     {"dev1": {"host": "127.0.0.1", "port": cls.sim.port, "name": "On aedes",
                               "stale_timeout": 10, "refresh_interval": 5}},
                     base=cls.base)
        cls.addClassCleanup(lambda: gw.alive() and gw.stop(signal.SIGKILL))
        return gw

    def t(self, suffix=""):
        return f"{self.base}/dev1{suffix}"

    def retained_for_a_new_subscriber(self):
        """What a Home Assistant that subscribes now is handed: bounded, no fixed wait."""
        def whole():
            got = dict(retained_now(self.broker.port, "#"))
            disc = got.get("homeassistant/device/dev1/config")
            if not disc or got.get(self.t("/availability")) != "online" or \
                    got.get(f"{self.base}/bridge/state") != "online" or \
                    "firmware_version" not in got.get(self.t("/details"), ""):
                return None
            return got
        return self.explain(lambda: wait_until(whole, T, interval=0.5,
                                               what="retained discovery, availability, state"))

    def test_1_retained_discovery_availability_state_for_a_wildcard_subscriber(self):
        got = self.retained_for_a_new_subscriber()
        disc = json.loads(got["homeassistant/device/dev1/config"])
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(json.loads(got[self.t("/details")])["firmware_version"], "V1.0.3")

    def test_2_commands(self):
        before = len(self.sim.frames())
        self.ha.publish(self.t("/set"), '{"mode":"heat","target_temperature":45}')
        self.explain(lambda: wait_until(lambda: len(self.sim.frames()) >= before + 4, T,
                                        what="4 frames at the simulator"))
        self.assertEqual([json.loads(f) for f in self.sim.frames()[before:before + 4]],
                         [{"settings": {"isrunning": 0}}, {"settings": {"work_mode": 2}},
                          {"settings": {"set_temp": 45}}, {"settings": {"work_on": True}}])
        self.explain(lambda: self.ha.wait_json(self.t(), lambda s: s["mode"] == "heat", T))

    def test_3_broker_restart_loses_retained_and_the_gateway_restores_it(self):
        since = time.monotonic()
        self.broker.stop()
        self.broker.start()  # same port, nothing retained any more
        self.explain(lambda: self.ha.wait(f"{self.base}/bridge/state",
                                          lambda p: p == "online", T, since))
        log(f"gateway back on the restarted aedes {time.monotonic() - since:.1f} s after")
        self.retained_for_a_new_subscriber()

    def test_4_will_when_the_gateway_dies(self):
        since = time.monotonic()
        self.gw.proc.kill()
        self.gw.proc.wait(30)
        self.explain(lambda: self.ha.wait(f"{self.base}/bridge/state",
                                          lambda p: p == "offline", T, since))
        got = dict(retained_now(self.broker.port, f"{self.base}/bridge/state"))
        self.assertEqual(got, {f"{self.base}/bridge/state": "offline"}, "the Will is retained")
        type(self).gw = self.start_gateway()
        self.retained_for_a_new_subscriber()


if __name__ == "__main__":
    unittest.main()
