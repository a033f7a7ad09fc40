"""The core path, end to end: the simulator, a real mosquitto and the daemon.

Discovery content (validated against Home Assistant's schemas, strict), state following
the device, commands arriving at the device as the right frames, availability, and
bad input from both sides."""
import json
import time
import unittest

from harness import GatewayTestCase, SIM_SECRETS, wait_until
import ha_schema


class Discovery(GatewayTestCase):
    def test_discovery_is_valid_and_complete(self):
        topic = "homeassistant/device/dev1/config"
        # this test's gateway's (not a discovery retained by the class's earlier tests)
        url = f"http://127.0.0.1:{self.sim.port}/"
        disc = self.mqtt.wait_json(topic, lambda d: d["device"].get("sw_version") == "V1.0.3"
                                   and d["device"].get("configuration_url") == url)
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(ha_schema.validate_topic(topic), [])
        self.assertEqual(disc["device"]["manufacturer"], "BIQU")
        self.assertEqual(disc["device"]["model"], "Panda Breath")
        self.assertEqual(disc["device"]["name"], "Test heater")
        self.assertEqual(disc["origin"]["name"], "panda2mqtt")
        self.assertEqual([a["topic"] for a in disc["availability"]],
                         [f"{self.base}/bridge/state", f"{self.base}/dev1/availability"])
        self.assertEqual(disc["availability_mode"], "all")
        cmps = disc["components"]
        for key in ("climate", "chamber_temperature", "heater_temperature", "work_mode", "power"):
            self.assertIn(key, cmps)
        self.assertEqual(cmps["climate"]["modes"], ["off", "heat", "auto", "dry"])
        self.assertEqual(cmps["climate"]["mode_command_topic"], f"{self.base}/dev1/set/mode")

    def test_discovery_retained_and_resent_on_ha_birth(self):
        topic = "homeassistant/device/dev1/config"
        self.mqtt.wait(topic)
        # a late subscriber gets the retained copy
        from harness import Mqtt
        late = Mqtt(self.broker.port, subscribe=topic)
        try:
            late.wait(topic, timeout=5)
            self.assertTrue(late.on(topic)[0][2], "discovery is not retained")
        finally:
            late.close()
        before = len(self.mqtt.on(topic))
        self.mqtt.publish("homeassistant/status", "online")
        wait_until(lambda: len(self.mqtt.on(topic)) > before, 10, what="discovery re-sent")

    def test_bridge_state_and_info(self):
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "online")
        info = self.mqtt.wait_json(f"{self.base}/bridge/info",
                                   lambda i: i["devices"] and i["devices"][0]["online"])
        self.assertIn("version", info)
        self.assertEqual(info["devices"][0]["id"], "dev1")
        self.assertEqual(info["devices"][0]["fw_version"], "V1.0.3")


class State(GatewayTestCase):
    def test_state_is_what_the_device_reports(self):
        self.wait_online()
        st = self.wait_state(lambda s: s["firmware_version"] == "V1.0.3")
        self.assertEqual(st["mode"], "off")
        self.assertEqual(st["power"], "OFF")
        self.assertEqual(st["target_temperature"], 40)
        self.assertEqual(st["work_mode"], "always_on")
        self.assertIsInstance(st["chamber_temperature"], (int, float))
        self.assertIsInstance(st["heater_temperature"], (int, float))
        self.assertIn("settings", st["device"])
        from harness import Mqtt
        late = Mqtt(self.broker.port, subscribe=self.t())
        try:
            late.wait(self.t(), timeout=5)
            self.assertTrue(late.on(self.t())[0][2], "state is not retained")
        finally:
            late.close()

    def test_change_on_the_device_shows_within_refresh(self):
        self.wait_state(lambda s: s["target_temperature"] == 40)
        # as if someone used the device's own buttons: not broadcast by the device
        self.sim.control("set settings.set_temp 52")
        self.sim.control("set settings.work_on true")
        st = self.wait_state(lambda s: s["target_temperature"] == 52 and s["power"] == "ON",
                             timeout=15)
        self.assertEqual(st["mode"], "heat")

    def test_temperature_pushes_follow(self):
        self.wait_online()
        self.sim.control('push {"settings":{"cal_warehouse_temp":33.3,"warehouse_temper":33.7}}')
        st = self.wait_state(lambda s: s["chamber_temperature"] == 33.3)
        self.assertEqual(st["chamber_temperature_raw"], 33.7)


class Commands(GatewayTestCase):
    def command(self, topic_suffix, payload, count):
        self.wait_online()
        self.wait_state(lambda s: s["firmware_version"] is not None)
        before = len(self.sim.frames())
        self.mqtt.publish(self.t(topic_suffix), payload)
        frames = self.new_frames(before, count=count)
        time.sleep(0.5)  # nothing more may follow
        self.assertEqual(len(self.sim.frames()), before + count, self.sim.frames()[before:])
        return frames

    def test_heat_to_45_in_the_proven_order(self):
        since = time.monotonic()
        frames = self.command("/set", '{"mode":"heat","target_temperature":45}', 4)
        self.assertEqual(frames, [{"settings": {"isrunning": 0}}, {"settings": {"work_mode": 2}},
                                  {"settings": {"set_temp": 45}}, {"settings": {"work_on": True}}])
        # the state comes from the device's fresh snapshot, not from the command
        st = self.wait_state(lambda s: s["mode"] == "heat" and s["target_temperature"] == 45,
                             since=since)
        self.assertEqual(st["power"], "ON")

    def test_per_field_topics(self):
        frames = self.command("/set/target_temperature", "47.0", 1)
        self.assertEqual(frames, [{"settings": {"set_temp": 47}}])
        frames = self.command("/set/power", "ON", 1)
        self.assertEqual(frames, [{"settings": {"work_on": True}}])
        frames = self.command("/set/work_mode", "auto", 1)
        self.assertEqual(frames, [{"settings": {"work_mode": 1}}])
        frames = self.command("/set/mode", "off", 1)
        self.assertEqual(frames, [{"settings": {"work_on": False}}])

    def test_dry_mode(self):
        frames = self.command("/set", '{"mode":"dry","target_temperature":55}', 4)
        self.assertEqual(frames, [{"settings": {"work_mode": 3}},
                                  {"settings": {"filament_temp": 55}},
                                  {"settings": {"filament_drying_mode": 3}},
                                  {"settings": {"isrunning": 1}}])
        self.wait_state(lambda s: s["mode"] == "dry")

    def test_work_on_is_always_boolean(self):
        frames = self.command("/set/power", "1", 1)
        self.assertIs(frames[0]["settings"]["work_on"], True)

    def test_bad_commands_send_nothing_and_say_why(self):
        self.wait_online()
        self.wait_state(lambda s: s["firmware_version"] is not None)
        cases = [
            ("/set", "not json", ""),
            ("/set", "[1,2]", ""),
            ("/set", '{"target_temperature":75}', "target_temperature"),
            ("/set", '{"target_temperature":"hot"}', "target_temperature"),
            ("/set", '{"mode":"cool"}', "mode"),
            ("/set", '{"bogus":1}', "bogus"),
            ("/set", '{"mode":"heat","target_temperature":45,"bogus":1}', "bogus"),
            ("/set", "{}", ""),
            ("/set/target_temperature", "-3", "target_temperature"),
            ("/set/power", "maybe", "power"),
            ("/set/mode", "", "mode"),
            ("/set/chamber_temperature", "20", "chamber_temperature"),
            ("/set/nosuchfield", "1", "nosuchfield"),
        ]
        before = len(self.sim.frames())
        for suffix, payload, field in cases:
            since = time.monotonic()
            self.mqtt.publish(self.t(suffix), payload)
            ev = self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "command_rejected",
                                     since=since)
            self.assertEqual(ev["field"], field, (suffix, payload, ev))
            self.assertTrue(ev["reason"])
        time.sleep(1)
        self.assertEqual(self.sim.frames()[before:], [])
        self.assertIn("command rejected", self.gw.log())
        self.assertTrue(self.gw.alive())

    def test_retained_command_is_not_executed(self):
        self.wait_online()
        before = len(self.sim.frames())
        since = time.monotonic()
        self.mqtt.publish(self.t("/set/power"), "ON", retain=True)
        try:
            # the gateway sees it live (retain flag cleared on live delivery), so
            # restart it: then the broker delivers the retained copy
            self.mqtt.wait(self.t("/set/power"))
            self.gw.stop()
            self.gw = self.start_gateway()
            self.wait_online(since=since)
            time.sleep(1)
            self.assertIn("retained command", self.gw.log())
            # the live delivery is a real command (one frame); the retained replay is not
            self.assertLessEqual(len(self.sim.frames()) - before, 1)
        finally:
            self.mqtt.publish(self.t("/set/power"), "", retain=True)


class OldFirmware(GatewayTestCase):
    firmware = "V1.0.0"

    def test_v100_target_is_written_as_temp(self):
        self.wait_online()
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.0")
        before = len(self.sim.frames())
        since = time.monotonic()
        self.mqtt.publish(self.t("/set/target_temperature"), "44")
        frames = self.new_frames(before)
        self.assertEqual(frames, [{"settings": {"temp": 44}}])
        self.wait_state(lambda s: s["target_temperature"] == 44, since=since)


class BadDeviceInput(GatewayTestCase):
    def test_garbage_from_the_device_is_logged_not_fatal(self):
        self.wait_online()
        for cmd in ('push {not json', 'push [1,2,3]', 'push {"settings":{"cal_warehouse_temp":"hot"}}',
                    'push {"weird_root":{"a":1}}', 'push {"settings":7}', "pushbin 64"):
            self.sim.control(cmd)
        since = time.monotonic()
        self.sim.control('pushfrag {"settings":{"cal_warehouse_temp":41.5}}')
        self.wait_state(lambda s: s["chamber_temperature"] == 41.5, since=since)
        log = self.gw.log()
        self.assertIn("not valid JSON", log)
        self.assertIn("settings.cal_warehouse_temp: expected a number", log)
        self.assertIn("unknown root 'weird_root'", log)
        self.assertIn("binary message ignored", log)
        self.assertTrue(self.gw.alive())

    def test_oversized_message_closes_and_reconnects(self):
        self.wait_online()
        since = time.monotonic()
        self.sim.control("pushbig 200000")
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", since=since)
        self.wait_online(since=since)
        self.assertIn("message larger than", self.gw.log())


class Secrets(GatewayTestCase):
    def test_no_secret_in_any_publish_or_log_line(self):
        self.wait_online()
        self.wait_state(lambda s: s["firmware_version"] is not None)
        # exercise commands, re-reads and a reconnect so that every path has run
        self.mqtt.publish(self.t("/set"), '{"mode":"heat","target_temperature":45}')
        self.wait_state(lambda s: s["mode"] == "heat")
        self.sim.control("drop")
        self.wait_state(lambda s: s["mode"] == "heat", since=time.monotonic())
        payloads = self.mqtt.all_payloads()
        self.assertGreater(len(payloads), 5)
        log = self.gw.log()
        for secret in SIM_SECRETS:
            for topic, payload, _, _ in payloads:
                self.assertNotIn(secret, payload, f"secret published on {topic}")
            self.assertNotIn(secret, log, "secret in the gateway log")


if __name__ == "__main__":
    unittest.main()
