"""The third family, json_sensor (docs/protocol-json-sensor.md), end to end: a [device]
with type = json_sensor, a device found over DNS-SD under the family's own service type,
what Home Assistant is given, and the one command.

The device is json_sensor_device.py, written from the protocol document, not from the
driver; a real mosquitto and, for discovery, the machine's avahi-daemon. Every wait is
bounded."""
import json
import os
import time
import unittest

from harness import (Avahi, BrokerTestCase, Explains, Gateway, Mqtt, Publish, Sim, wait_until)
from json_sensor_device import JsonSensor
import ha_schema


class JsonSensorTestCase(Explains, BrokerTestCase):
    def setUp(self):
        self.base = f"js{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.stops = [self.mqtt.close]
        self.gw = None

    def tearDown(self):
        try:
            if self.gw:
                self.gw.assert_stopped_cleanly(self)
        finally:
            for stop in reversed(self.stops):
                stop()

    def sensor(self, **state):
        s = JsonSensor(**state)
        self.stops.append(s.stop)
        return s

    def gateway(self, devices, **kw):
        self.gw = Gateway(self.tmpdir.name, self.broker.port, devices, base=self.base, **kw)
        return self.gw


class Configured(JsonSensorTestCase):
    def setUp(self):
        super().setUp()
        self.dev = self.sensor()
        self.gateway({"box": {"type": "json_sensor", "host": "127.0.0.1",
                              "port": self.dev.port}})
        self.t = f"{self.base}/box"

    def test_discovery_has_what_the_sensor_reports(self):
        disc = self.explain(lambda: self.mqtt.wait_json(
            "homeassistant/device/box/config",
            lambda d: d["device"].get("sw_version") == "1.2.0", 15))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(disc["device"]["model"], "JSON sensor")
        self.assertEqual(disc["device"]["name"], "Dry box")  # the name it gives itself
        cmps = disc["components"]
        self.assertEqual(cmps["temperature"]["device_class"], "temperature")
        self.assertEqual(cmps["humidity"]["unit_of_measurement"], "%")
        self.assertEqual(cmps["interval"]["platform"], "number")
        # it reports no pressure and no battery: no such entities
        self.assertNotIn("pressure", cmps)
        self.assertNotIn("battery", cmps)
        # ... until it does
        self.dev.set(battery=91)
        disc = self.explain(lambda: self.mqtt.wait_json(
            "homeassistant/device/box/config", lambda d: "battery" in d["components"],
            15))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])

    def test_state_follows_the_readings(self):
        self.explain(lambda: self.mqtt.wait(f"{self.t}/availability", lambda p: p == "online",
                                            15))
        st = self.explain(lambda: self.mqtt.wait_state(
            self.t, lambda s: s.get("humidity") == 38.0, 15))
        self.assertEqual(st["temperature"], 24.5)
        self.assertEqual(st["firmware_version"], "1.2.0")
        since = time.monotonic()
        self.dev.set(humidity=12.5)
        self.explain(lambda: self.mqtt.wait_state(
            self.t, lambda s: s.get("humidity") == 12.5, 15, since))
        # a reading no hygrometer can give is not a humidity
        self.dev.set(humidity=250)
        self.explain(lambda: self.mqtt.wait_state(
            self.t, lambda s: "humidity" not in s or s["humidity"] is None, 15, since))
        self.assertIn("sensor.humidity", self.gw.log())

    def test_the_interval_command_and_what_is_refused(self):
        self.explain(lambda: self.mqtt.wait_state(self.t, lambda s: s.get("interval") == 10,
                                                  15))
        self.mqtt.publish(f"{self.t}/set/interval", "30")
        self.explain(lambda: wait_until(lambda: self.dev.frames(), 15,
                                        what="a frame at the sensor"))
        self.assertEqual([json.loads(f) for f in self.dev.frames()],
                         [{"sensor": {"interval": 30}}])
        self.explain(lambda: self.mqtt.wait_state(self.t, lambda s: s.get("interval") == 30,
                                                  15))
        # out of range, and a reading: refused, nothing sent
        for topic, payload in (("interval", "0"), ("interval", "3601"),
                               ("temperature", "20")):
            since = time.monotonic()
            self.mqtt.publish(f"{self.t}/set/{topic}", payload)
            ev = self.explain(lambda: self.mqtt.wait_json(
                f"{self.t}/event", lambda e: e["event_type"] == "command_rejected", 15,
                since))
            self.assertEqual(ev["field"], topic)
        self.assertEqual(len(self.dev.frames()), 1)


class WrongType(JsonSensorTestCase):
    def test_a_panda_breath_configured_as_a_json_sensor_is_not_served(self):
        """type names the family the gateway expects: a device that is another one is
        said so in the log, and gets no Home Assistant device."""
        sim = Sim(self.tmpdir.name)
        self.stops.append(sim.stop)
        gw = self.gateway({"box": {"type": "json_sensor", "host": "127.0.0.1",
                                   "port": sim.port}})
        # the Panda Breath serves /ws only: the sensor's path is refused
        wait_until(lambda: "device box: cannot reach ws://127.0.0.1" in gw.log() and
                   "/sensor" in gw.log(), 15, what="the refused link, logged")
        self.assertEqual(self.mqtt.on("homeassistant/device/box/config"), [])


class Found(JsonSensorTestCase):
    @classmethod
    def setUpClass(cls):
        why = Avahi.up()
        if why:
            raise unittest.SkipTest(f"avahi-daemon cannot run here: {why}")
        super().setUpClass()

    def test_found_under_its_own_service_type(self):
        """The family's DNS-SD type is browsed beside the Panda Breath's _http._tcp, and
        the service probed at the family's path."""
        sid = f"box-{os.urandom(3).hex()}"
        dev = self.sensor(id=sid, name=None)
        pub = Publish(f"Sensor {sid}", dev.port, stype="_json-sensor._tcp")
        self.stops.append(pub.stop)
        dev_id = f"sensor_{sid}"
        self.gateway({}, mdns=True)
        info = self.explain(lambda: self.mqtt.wait_json(
            f"{self.base}/bridge/info",
            lambda i: any(d["id"] == dev_id and d["online"] for d in i["devices"]), 30))
        entry = [d for d in info["devices"] if d["id"] == dev_id][0]
        self.assertEqual(entry["source"], "mdns")
        disc = self.explain(lambda: self.mqtt.wait_json(
            f"homeassistant/device/{dev_id}/config", lambda d: True, 15))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(disc["device"]["name"], "JSON sensor")  # it names itself nothing
        self.assertIn("looking for devices (_http._tcp, _json-sensor._tcp)", self.gw.log())


if __name__ == "__main__":
    unittest.main()
