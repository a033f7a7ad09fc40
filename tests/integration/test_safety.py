"""Heater safety ([safety]): each rule tripped on the real daemon against the simulator,
with the off frames checked at the simulator and the event checked on MQTT.

- chamber above max_chamber_temp while heating -> heating off + safety_cutoff event;
- a sensor fault while heating -> heating off + event; while not heating -> nothing sent;
- a heater fault (ptc_heater_status, as the firmware reports one) while heating or
  drying -> heating off + event; shown as the heater problem sensor;
- while a rule holds, a flood of heat commands sends no heating frame, and the cut-off
  frame still arrives (reliability issue, finding F3);
- the broker unreachable for controller_lost_minutes while heating -> heating off;
  the rule is off by default: then a broker outage sends nothing;
- targets above max_target_temp and drying runs over max_drying_hours are rejected
  (nothing sent)."""
import json
import threading
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
    safety_ini = "max_target_temp = 45\nmax_chamber_temp = 50\nmax_drying_hours = 24\n"

    def test_chamber_above_limit_while_heating_turns_heating_off(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("set settings.warehouse_temper 58")  # the next push reports it
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
        self.sim.control("set settings.warehouse_temper 58")
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
                                                                 "hours": 25}}))
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


class HeaterFault(SafetyCase):
    def test_heater_fault_while_heating_turns_heating_off(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("fault heater 1")  # pushed to every client, as the firmware does
        self.wait_off_frame(before)
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "safety_cutoff", since=since)
        self.assertEqual(ev["rule"], "heater_fault")
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "heater_fault"
                            and e["code"] == 1, since=since)
        st = self.wait_state(lambda s: s["mode"] == "off" and s["heater_fault"] == "ON",
                             since=since)
        self.assertEqual(st["action"], "off")
        self.assertIn("safety: the heater reports a fault while heating", self.gw.log())

    def test_heater_fault_while_drying_stops_the_run(self):
        self.wait_online()
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set"), json.dumps({"drying": {"temperature": 50,
                                                                 "hours": 30}}))
        self.new_frames(before, count=6)
        self.wait_state(lambda s: s["drying"] == "ON")
        before = len(self.sim.frames())
        self.sim.control("fault heater 3")
        self.wait_off_frame(before)
        self.assertIn({"settings": {"isrunning": 0}},
                      [json.loads(f) for f in self.sim.frames()[before:]])

    def test_fault_cleared_is_no_fault(self):
        self.wait_online()
        since = time.monotonic()
        self.sim.control("fault heater 1")
        self.wait_state(lambda s: s["heater_fault"] == "ON", since=since)
        # not heating: nothing sent; then the fault goes, and the next snapshot says so
        self.sim.control("fault clear")
        self.wait_state(lambda s: s["heater_fault"] == "OFF", since=time.monotonic(),
                        timeout=20)
        self.assertEqual(self.cutoff_events(since), [])


class HeaterFaultRuleOff(SafetyCase):
    safety_ini = "heater_fault_cutoff = false\n"

    def test_fault_shown_but_heating_left_on(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        self.sim.control("fault heater 1")
        self.wait_state(lambda s: s["heater_fault"] == "ON", since=since)
        time.sleep(2)
        self.assertEqual(self.sim.frames()[before:], [])
        self.assertEqual(self.cutoff_events(since), [])


class FloodWhileRuleHolds(SafetyCase):
    """Thousands of heat commands while the chamber is above max_chamber_temp: the
    cut-off's frames arrive, no frame that heats follows, and the refusals say why
    (the outbox coalesces, so no queue fills and no safety frame is dropped)."""
    safety_ini = "max_target_temp = 45\nmax_chamber_temp = 50\n"

    def test_flood_of_heat_commands(self):
        self.heat(45)
        before = len(self.sim.frames())
        since = time.monotonic()
        # a chamber that stays too hot: the rule holds for the whole flood
        self.sim.control("pin on")
        self.sim.control("set settings.warehouse_temper 58")
        flood = threading.Thread(target=self.flood, args=(3000,))
        flood.start()
        self.wait_off_frame(before, timeout=30)
        flood.join(60)
        self.assertFalse(flood.is_alive())
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "command_refused", since=since,
                                 timeout=30)
        self.assertEqual(ev["rule"], "max_chamber_temp")
        self.wait_state(lambda s: s["mode"] == "off", since=since, timeout=30)
        # once the rule held, nothing that heats reached the device
        time.sleep(2)
        frames = [json.loads(f) for f in self.sim.frames()[before:]]
        off = frames.index({"settings": {"work_on": False}})
        heating = [f for f in frames[off:] if f in ({"settings": {"work_on": True}},
                                                     {"settings": {"isrunning": 1}})]
        self.assertEqual(heating, [], frames)
        log = self.gw.log()
        self.assertNotIn("could not queue", log)
        self.assertTrue(self.gw.alive())
        # the log is not flooded: refusals are rate-limited
        self.assertLess(log.count("command refused"), 50)

    def flood(self, n):
        cmd = json.dumps({"mode": "heat", "target_temperature": 45})
        for i in range(n):
            self.mqtt.publish(self.t("/set") if i % 2 else self.t("/set/power"),
                              cmd if i % 2 else "ON")


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
