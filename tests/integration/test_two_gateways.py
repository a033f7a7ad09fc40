"""Two gateways on one broker (docs/SCALING.md): what must differ between them, and what
happens when both serve the same device.

- Two gateways with the same client_id take the broker session from each other over and
  over: neither stays connected.
- Two gateways (distinct client_id and base_topic) that both serve one device (both found
  it, or both list it) each keep a WebSocket to it, and both publish its Home Assistant
  discovery to the same topic with the same unique ids: Home Assistant's device follows
  whichever spoke last. Configuration prevents it: the device served by one gateway only.
A real mosquitto and the simulator; every wait is bounded."""
import json
import time
import unittest

from harness import BrokerTestCase, Gateway, Mqtt, Sim, wait_until

DISC = "homeassistant/device/dev1/config"


class TwoGateways(BrokerTestCase):
    def setUp(self):
        self.tag = f"{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.sim = Sim(self.tmpdir.name)
        self.gws = []

    def tearDown(self):
        try:
            for gw in self.gws:
                gw.assert_stopped_cleanly(self)
        finally:
            self.sim.stop()
            self.mqtt.close()

    def gateway(self, name, client_id, devices):
        gw = Gateway(self.tmpdir.name, self.broker.port, devices, base=f"{name}{self.tag}",
                     mqtt={"client_id": client_id})
        self.gws.append(gw)
        return gw

    def device(self):
        return {"dev1": {"host": "127.0.0.1", "port": self.sim.port, "name": "Shared"}}

    def clients(self):
        return int(self.sim.control("clients").split()[-1])

    def discovery_bases(self):
        """Which gateways' discovery (by their bridge availability topic) reached the one
        discovery topic of the device."""
        bases = set()
        for _, payload, _, _ in self.mqtt.on(DISC):
            if payload:
                bases.add(json.loads(payload)["availability"][0]["topic"].split("/")[0])
        return bases

    def test_same_client_id_the_gateways_push_each_other_off(self):
        a = self.gateway("a", f"same{self.tag}", self.device())
        b = self.gateway("b", f"same{self.tag}", {})

        def lost(gw):
            return gw.log().count("connection to 127.0.0.1")
        wait_until(lambda: lost(a) >= 2 and lost(b) >= 2, 60, interval=0.2,
                   what="both gateways to lose their broker session twice")

    def test_two_gateways_serving_one_device_collide(self):
        a = self.gateway("a", f"a{self.tag}", self.device())
        b = self.gateway("b", f"b{self.tag}", self.device())
        wait_until(lambda: self.clients() == 2, 30, interval=0.2,
                   what="both gateways linked to the device")
        self.mqtt.publish("homeassistant/status", "online")  # both answer the birth
        wait_until(lambda: {a.base, b.base} <= self.discovery_bases(), 30,
                   what="discovery from both gateways on the one topic")
        unique = {json.loads(p)["components"]["climate"]["unique_id"]
                  for _, p, _, _ in self.mqtt.on(DISC)
                  if p and json.loads(p)["availability"][0]["topic"].split("/")[0]
                  in (a.base, b.base)}
        self.assertEqual(unique, {"panda2mqtt_dev1_climate"}, "the same entity for HA")

    def test_one_device_one_gateway(self):
        """The remedy: each device in one gateway's configuration only (and mdns off where
        the other gateway would find it too)."""
        a = self.gateway("a", f"a{self.tag}", self.device())
        b = self.gateway("b", f"b{self.tag}", {})
        self.mqtt.wait(f"{a.base}/dev1/availability", lambda p: p == "online", 30)
        self.mqtt.wait(f"{b.base}/bridge/state", lambda p: p == "online", 30)
        self.mqtt.publish("homeassistant/status", "online")
        marker = f"{a.base}/marker"
        self.mqtt.publish(marker, "m")  # after the birth's answers, in the broker's order
        self.mqtt.wait(marker)
        self.assertEqual(self.clients(), 1)
        self.assertIn(a.base, self.discovery_bases())
        self.assertNotIn(b.base, self.discovery_bases())


if __name__ == "__main__":
    unittest.main()
