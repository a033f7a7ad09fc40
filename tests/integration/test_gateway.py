"""The core path, end to end: the simulator, a real mosquitto and the daemon.

Discovery content (validated against Home Assistant's schemas, strict), state following
the device, commands arriving at the device as the right frames, availability, and
bad input from both sides."""
import json
import time
import unittest

from harness import GatewayTestCase, SIM_SECRETS
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
        # the MAC from the hotspot name ties the device to HA's other integrations
        self.assertEqual(disc["device"]["connections"], [["mac", "3c:84:27:9a:1b:2c"]])
        cmps = disc["components"]
        for key in ("climate", "chamber_temperature", "heater_fault", "work_mode", "power",
                    "klipper_port", "bound_printer"):
            self.assertIn(key, cmps)
        # the official firmware feeds no heater temperature and no "heating" flag
        for key in ("heater_temperature", "chamber_temperature_raw", "heater_active"):
            self.assertNotIn(key, cmps)
        self.assertEqual(cmps["heater_fault"]["device_class"], "problem")
        self.assertIn("safety_cutoff", cmps["event"]["event_types"])
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
        self.wait_online()
        self.wait_state(lambda s: s.get("firmware_version"))
        since = time.monotonic()
        self.mqtt.publish("homeassistant/status", "online")
        self.mqtt.wait(topic, timeout=10, since=since)
        # ... and then, once Home Assistant has subscribed to the entities' topics, what
        # a broker may not hand it retained (docs/BROKERS.md): bridge state,
        # availability and the whole state, live, after the discovery
        disc_at = [m[3] for m in self.mqtt.on(topic) if m[3] >= since][0]
        for t, pred in ((f"{self.base}/bridge/state", lambda p: p == "online"),
                        (f"{self.base}/dev1/availability", lambda p: p == "online"),
                        (f"{self.base}/dev1", lambda p: '"mode"' in p),
                        (f"{self.base}/dev1/details", lambda p: "firmware_version" in p)):
            self.mqtt.wait(t, pred, timeout=15, since=since)
            again = [m for m in self.mqtt.on(t) if m[3] >= since]
            self.assertGreater(again[-1][3], disc_at, f"{t} before the discovery")

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
        self.assertNotIn("heater_temperature", st)
        self.assertEqual(st["heater_fault"], "OFF")
        self.assertEqual(st["action"], "off")
        # the device's own report: a topic of its own, allow-listed, retained
        report = self.mqtt.wait_json(self.t("/report"), lambda r: "settings" in r)
        self.assertEqual(report["settings"]["fw_version"], "V1.0.3")
        self.assertNotIn("password", json.dumps(report))
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
        self.sim.control('push {"settings":{"warehouse_temper":33}}')
        self.wait_state(lambda s: s["chamber_temperature"] == 33)

    def test_impossible_readings_are_unknown_and_logged_once(self):
        self.wait_online()
        self.wait_state(lambda s: s["chamber_temperature"] is not None)
        since = time.monotonic()
        self.sim.control('push {"settings":{"warehouse_temper":1e999,"work_mode":1e30}}')
        self.wait_state(lambda s: s["chamber_temperature"] is None and s["work_mode"] is None,
                        since=since)
        self.sim.control('push {"settings":{"warehouse_temper":1e999,"work_mode":1e30}}')
        self.sim.control('push {"settings":{"warehouse_temper":31}}')
        self.wait_state(lambda s: s["chamber_temperature"] == 31, since=since)
        log = self.gw.log()
        self.assertEqual(log.count("settings.warehouse_temper: "), 1, log)
        self.assertEqual(log.count("settings.work_mode: "), 1, log)
        self.assertIn("is not a finite number; shown as unknown", log)
        self.assertIn("is not a code this field takes; shown as unknown", log)


class Efficiency(GatewayTestCase):
    """Publish only what changed, and in small messages (the efficiency issue): the main
    state (what changes with every reading) apart from the configuration and diagnostic
    entities (<base>/<id>/details), the raw report on a topic of its own."""

    def count(self, suffix=""):
        return len([m for m in self.mqtt.on(self.t(suffix)) if m[1]])

    def test_only_changes_are_published(self):
        self.wait_online()
        st = self.wait_state(lambda s: s["chamber_temperature"] is not None)
        self.sim.control("pin on")  # the simulator's own pushes repeat one reading
        reading = st["chamber_temperature"]
        self.sim.control(f"set settings.warehouse_temper {reading + 3}")
        self.wait_state(lambda s: s["chamber_temperature"] == reading + 3)
        time.sleep(2)  # pushes of that same reading go on, every 0.5 s
        main, details = self.count(), self.count("/details")
        time.sleep(3)
        self.assertEqual(self.count(), main, "a push that changes nothing was published")
        self.assertEqual(self.count("/details"), details)
        # a new reading: one main state message, no details
        self.sim.control(f"set settings.warehouse_temper {reading + 5}")
        self.wait_state(lambda s: s["chamber_temperature"] == reading + 5)
        time.sleep(2)
        self.assertEqual(self.count(), main + 1)
        self.assertEqual(self.count("/details"), details)
        for suffix in ("", "/details"):
            for _, payload, _, _ in self.mqtt.on(self.t(suffix)):
                self.assertLessEqual(len(payload), 600, (suffix, payload))
        self.assertNotIn("hostname", self.mqtt.last_json(self.t()))
        self.assertIn("hostname", self.mqtt.last_json(self.t("/details")))


class Debounce(GatewayTestCase):
    device_opts = {"stale_timeout": 4, "refresh_interval": 5, "debounce": 1500}

    def test_a_burst_publishes_once(self):
        self.wait_online()
        st = self.wait_state(lambda s: s["chamber_temperature"] is not None)
        self.sim.control("pin on")
        reading = st["chamber_temperature"]
        time.sleep(2)
        before = len([m for m in self.mqtt.on(self.t()) if m[1]])
        # the model's reading moves (its own pushes say so from now on), and five new
        # readings are pushed at once: a burst far shorter than the debounce
        self.sim.control(f"set settings.warehouse_temper {reading + 5}")
        for i in range(1, 6):
            self.sim.control(f'push {{"settings":{{"warehouse_temper":{reading + i}}}}}')
        self.wait_state(lambda s: s["chamber_temperature"] == reading + 5)
        time.sleep(3)
        states = [json.loads(p) for _, p, _, _ in self.mqtt.on(self.t())[before:] if p]
        self.assertEqual([s["chamber_temperature"] for s in states], [reading + 5], states)


class NamedByTheDevice(GatewayTestCase):
    """A configured device without a name is called what the device calls itself."""
    device_name = None
    sim_extra = ("--hostname", "Garage-Dryer")

    def test_name_is_the_hostname(self):
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: d["device"].get("sw_version") == "V1.0.3")
        self.assertEqual(disc["device"]["name"], "Garage-Dryer")
        info = self.mqtt.wait_json(f"{self.base}/bridge/info",
                                   lambda i: i["devices"] and i["devices"][0]["online"])
        self.assertEqual(info["devices"][0]["name"], "Garage-Dryer")


class DocumentDialect(GatewayTestCase):
    """A device that sends the base document's calibrated fields (panda2mqtt-sim --dialect
    doc): the chamber is still warehouse_temper, the heater temperature appears once
    cal_ptc_temp has been seen, and ptc_heater_status 0 is shown but trips nothing."""
    sim_extra = ("--dialect", "doc")

    def test_calibrated_fields(self):
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: "heater_temperature" in d["components"])
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.sim.control('push {"settings":{"cal_warehouse_temp":33.3,"warehouse_temper":33.7,'
                         '"cal_ptc_temp":50}}')
        st = self.wait_state(lambda s: s["chamber_temperature"] == 33.7)
        self.assertEqual(st["heater_temperature"], 50)


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
        for cmd in ('push {not json', 'push [1,2,3]', 'push {"settings":{"warehouse_temper":"hot"}}',
                    'push {"weird_root":{"a":1}}', 'push {"settings":7}', "pushbin 64"):
            self.sim.control(cmd)
        since = time.monotonic()
        self.sim.control('pushfrag {"settings":{"warehouse_temper":41}}')
        self.wait_state(lambda s: s["chamber_temperature"] == 41, since=since)
        log = self.gw.log()
        self.assertIn("not valid JSON", log)
        self.assertIn("settings.warehouse_temper: expected a number", log)
        self.assertIn("weird_root: unknown root", log)
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
