"""Heater safety ([safety]): each rule tripped on the real daemon against the simulator,
with the off frames checked at the simulator and the event checked on MQTT.

- chamber above max_chamber_temp while heating -> heating off + safety_cutoff event;
- a sensor fault while heating -> heating off + event; while not heating -> nothing sent;
- the broker unreachable for controller_lost_minutes while heating -> heating off;
  the rule is off by default: then a broker outage sends nothing;
- targets above max_target_temp and drying runs over 12 h are rejected (nothing sent)."""
import json
import time
import unittest

from harness import GatewayTestCase, wait_until


class SafetyCase(GatewayTestCase):
    safety_ini = ""

    def start_gateway(self, **kw):
        return super().start_gateway(extra_ini=f"[safety]\n{self.safety_ini}", **kw)

    def heat(self, target=45):
        self.wait_online()
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set"), json.dumps({"mode": "heat",
                                                      "target_temperature": target}))
        frames = self.new_frames(before, count=4)
        self.assertIn({"settings": {"work_on": True}}, frames)
        # the re-read after the command shows the heater on
        self.wait_state(lambda s: s["mode"] == "heat")

    def wait_off_frame(self, since_frames, timeout=20):
        def off():
            return any(json.loads(f) == {"settings": {"work_on": False}}
                       for f in self.sim.frames()[since_frames:])
        wait_until(off, timeout, what="the heater-off frame at the simulator")

    def cutoff_events(self, since=0.0):
        return [json.loads(p) for t, p, _, at in self.mqtt.all_payloads()
                if t == self.t("/event") and at >= since
                and json.loads(p)["event_type"] == "safety_cutoff"]


class ChamberOverTemperature(SafetyCase):
    safety_ini = "max_target_temp = 45\nmax_chamber_temp = 50\n"

    def test_chamber_above_limit_while_heating_turns_heating_off(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("set settings.cal_warehouse_temp 58")  # the next push reports it
        self.wait_off_frame(before)
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "safety_cutoff", since=since)
        self.assertEqual(ev["rule"], "max_chamber_temp")
        self.assertEqual(ev["limit"], 50)
        self.assertGreater(ev["chamber_temperature"], 50)
        self.wait_state(lambda s: s["mode"] == "off", since=since)
        self.assertIn("safety: chamber above max_chamber_temp", self.gw.log())
        # sent once, not at every push while the re-read was under way
        offs = [f for f in self.sim.frames()[before:]
                if json.loads(f) == {"settings": {"work_on": False}}]
        self.assertEqual(len(offs), 1, self.sim.frames()[before:])

    def test_hot_chamber_while_off_sends_nothing(self):
        self.wait_online()
        before = len(self.sim.frames())
        self.sim.control("set settings.cal_warehouse_temp 58")
        self.wait_state(lambda s: s["chamber_temperature"] > 50)
        time.sleep(2)
        self.assertEqual(self.sim.frames()[before:], [])
        self.assertEqual(self.cutoff_events(), [])

    def test_target_above_max_target_temp_rejected(self):
        self.wait_online()
        before = len(self.sim.frames())
        since = time.monotonic()
        self.mqtt.publish(self.t("/set"), json.dumps({"mode": "heat",
                                                      "target_temperature": 46}))
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "command_rejected", since=since)
        self.assertIn("46", ev["reason"])
        self.mqtt.publish(self.t("/set"), json.dumps({"drying": {"temperature": 40,
                                                                 "hours": 13}}))
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "command_rejected"
                            and e["field"].startswith("drying"), since=since)
        time.sleep(1)
        self.assertEqual(self.sim.frames()[before:], [])


class SensorFault(SafetyCase):
    def test_sensor_fault_while_heating_turns_heating_off(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("set settings.ptc_sensor_status 1")  # seen at the next re-read
        self.wait_off_frame(before)
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "safety_cutoff", since=since)
        self.assertEqual(ev["rule"], "sensor_fault")
        self.wait_state(lambda s: s["mode"] == "off", since=since)

    def test_sensor_fault_while_off_sends_nothing(self):
        self.wait_online()
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("set settings.ptc_sensor_status 1")
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "sensor_fault",
                            since=since)
        time.sleep(1)
        self.assertEqual(self.sim.frames()[before:], [])
        self.assertEqual(self.cutoff_events(since), [])


class SensorFaultRuleOff(SafetyCase):
    safety_ini = "sensor_fault_cutoff = false\n"

    def test_fault_reported_but_heating_left_on(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("set settings.ptc_sensor_status 1")
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "sensor_fault",
                            since=since, timeout=15)
        time.sleep(2)
        self.assertEqual(self.sim.frames()[before:], [])


class ControllerLost(SafetyCase):
    safety_ini = "controller_lost_minutes = 0.05\n"  # 3 s, for the test

    def test_broker_gone_while_heating_turns_heating_off(self):
        self.heat(45)
        before = len(self.sim.frames())
        try:
            self.broker.stop()
            self.wait_off_frame(before, timeout=30)
            self.assertIn("safety: the MQTT broker has been unreachable for 0.05 minute(s)",
                          self.gw.log())
        finally:
            self.broker.start()
        self.wait_state(lambda s: s["mode"] == "off", timeout=40)


class ControllerLostOffByDefault(SafetyCase):
    def test_broker_outage_sends_nothing(self):
        self.heat(45)
        before = len(self.sim.frames())
        try:
            self.broker.stop()
            time.sleep(6)
        finally:
            self.broker.start()
        self.wait_online(timeout=40, since=time.monotonic())
        self.assertEqual(self.sim.frames()[before:], [])
        self.assertNotIn("safety:", self.gw.log())


if __name__ == "__main__":
    unittest.main()
