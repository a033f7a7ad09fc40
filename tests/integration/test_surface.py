"""The whole Panda Breath in Home Assistant: every entity and command, end to end.

Each command goes through MQTT as Home Assistant (or an automation) would send it, and
is checked frame by frame at the simulator; state is checked as re-read from the device."""
import json
import re
import time
import unittest

from harness import GatewayTestCase
import ha_schema

EXPECTED_COMPONENTS = {
    "climate": "climate", "power": "switch", "work_mode": "select",
    "auto_bed_threshold": "number", "filter_bed_threshold": "number", "drying": "switch",
    "drying_preset": "select", "drying_temperature": "number", "drying_hours": "number",
    "drying_remaining": "sensor", "drying_ends_at": "sensor", "chamber_temperature": "sensor",
    "heater_fault": "binary_sensor", "chamber_sensor_fault": "binary_sensor",
    "heater_sensor_fault": "binary_sensor", "firmware_version": "sensor",
    "wifi_state": "sensor", "ip_address": "sensor", "hostname": "text", "scan_wifi": "button",
    "wifi_network": "select", "wifi_password": "text", "wifi_join": "button",
    "hotspot": "switch", "hotspot_ssid": "text", "hotspot_password": "text",
    "printer_state": "sensor", "bound_printer": "sensor", "scan_printers": "button",
    "klipper_port": "number", "scan_klipper": "button",
    "printer": "select", "printer_access_code": "text", "printer_bind": "button",
    "printer_unbind": "button", "restart": "button", "factory_reset": "button", "event": "event",
}


class Surface(GatewayTestCase):
    def ready(self):
        self.wait_online()
        return self.wait_state(lambda s: s["firmware_version"] is not None)

    def send(self, suffix, payload, count, timeout=5):
        before = len(self.sim.frames())
        self.mqtt.publish(self.t(suffix), payload)
        frames = self.new_frames(before, count=count, timeout=timeout)
        time.sleep(0.3)
        self.assertEqual(len(self.sim.frames()), before + count, self.sim.frames()[before:])
        return frames

    def test_every_entity_is_discovered_and_valid(self):
        self.ready()
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: d["device"].get("sw_version") == "V1.0.3")
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        got = {k: v["platform"] for k, v in disc["components"].items()}
        self.assertEqual(got, EXPECTED_COMPONENTS)
        cmps = disc["components"]
        self.assertEqual(cmps["wifi_password"]["mode"], "password")
        # a state, or Home Assistant keeps the typed secret as the entity's state
        for key in ("wifi_password", "hotspot_password", "printer_access_code"):
            self.assertEqual(cmps[key]["state_topic"], self.t("/details"), key)
            self.assertEqual(cmps[key]["min"], 0, key)
        self.assertIs(cmps["factory_reset"]["enabled_by_default"], False)
        self.assertEqual(cmps["heater_fault"]["device_class"], "problem")
        self.assertEqual(cmps["drying_hours"]["min"], 1)
        self.assertEqual(cmps["drying_hours"]["max"], 99)
        self.assertEqual(cmps["drying_temperature"]["min"], 40)
        self.assertEqual(cmps["auto_bed_threshold"]["min"], 40)
        self.assertEqual(cmps["klipper_port"]["max"], 65535)
        for ev in ("drying_finished", "safety_cutoff", "heater_fault", "command_refused",
                   "command_failed", "command_rejected", "device_rebooted"):
            self.assertIn(ev, cmps["event"]["event_types"])
        # no option Home Assistant would read as its own unknown state
        for key, c in cmps.items():
            for opt in c.get("options", []):
                self.assertNotIn(opt.lower(), ("unknown", "none"), key)
        # every template reads a key that is published on its own topic
        self.mqtt.wait_json(self.t("/details"))
        for key, c in cmps.items():
            for topic_key, tpl_key in (("state_topic", "value_template"),
                                       ("json_attributes_topic", "json_attributes_template"),
                                       ("mode_state_topic", "mode_state_template"),
                                       ("temperature_state_topic", "temperature_state_template"),
                                       ("current_temperature_topic",
                                        "current_temperature_template"),
                                       ("action_topic", "action_template")):
                if topic_key not in c or c[topic_key].endswith("/event"):
                    continue
                field = re.match(r"\{\{ value_json\.(\w+)", c[tpl_key]).group(1)
                published = self.mqtt.last_json(c[topic_key])
                self.assertIn(field, published, (key, topic_key, c[topic_key]))

    def test_state_fields(self):
        st = self.ready()
        for key in ("drying", "drying_preset", "drying_temperature", "drying_hours",
                    "auto_bed_threshold", "filter_bed_threshold", "wifi_state", "ip_address",
                    "hostname", "hotspot", "hotspot_ssid", "printer_state",
                    "chamber_sensor_fault", "heater_sensor_fault", "heater_fault", "action",
                    "klipper_port", "bound_printer"):
            self.assertIn(key, st)
            self.assertIsNotNone(st[key], key)
        self.assertEqual(st["auto_bed_threshold"], 80)
        self.assertEqual(st["filter_bed_threshold"], 30)
        self.assertEqual(st["wifi_state"], "connected")
        self.assertEqual(st["printer_state"], "connected")
        self.assertEqual(st["hostname"], "PandaBreath")
        self.assertEqual(st["chamber_sensor_fault"], "OFF")
        self.assertEqual(st["chamber_sensor"], {"code": 0, "status": "ok"})
        self.assertEqual(st["heater_fault"], "OFF")
        self.assertEqual(st["klipper_port"], 80)
        self.assertEqual(st["bound_printer"], "Sim X1C (127.0.0.2)")
        # whether a secret is held, never the secret
        self.assertEqual(st["wifi_password"], "")
        self.assertEqual(st["printer_access_code"], "")
        self.assertEqual(st["hotspot_password"], "********")

    def test_drying_overnight_in_one_message(self):
        self.ready()
        since = time.monotonic()
        frames = self.send("/set", '{"drying":{"temperature":55,"hours":8}}', 6)
        self.assertEqual(frames, [
            {"settings": {"work_mode": 3}}, {"settings": {"filament_temp": 55}},
            {"settings": {"filament_drying_mode": 3}}, {"settings": {"filament_timer": 8}},
            {"settings": {"filament_drying_mode": 3}}, {"settings": {"isrunning": 1}}])
        st = self.wait_state(lambda s: s["drying"] == "ON" and s["mode"] == "dry", since=since)
        self.assertEqual(st["drying_temperature"], 55)
        self.assertEqual(st["drying_hours"], 8)
        self.assertGreater(st["drying_remaining"], 8 * 3600 - 120)
        self.assertRegex(st["drying_ends_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\+00:00$")
        # stop it
        since = time.monotonic()
        self.assertEqual(self.send("/set/drying", "OFF", 1), [{"settings": {"isrunning": 0}}])
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "drying_stopped",
                            since=since)

    def test_numbers_selects_switches(self):
        self.ready()
        cases = [
            ("/set/auto_bed_threshold", "70", [{"settings": {"hotbedtemp": 70}}]),
            ("/set/filter_bed_threshold", "35", [{"settings": {"filtertemp": 35}}]),
            ("/set/drying_temperature", "50", [{"settings": {"filament_temp": 50}},
                                               {"settings": {"filament_drying_mode": 3}}]),
            ("/set/drying_hours", "6", [{"settings": {"filament_timer": 6}},
                                        {"settings": {"filament_drying_mode": 3}}]),
            ("/set/drying_preset", "petg", [{"settings": {"filament_drying_mode": 2}}]),
            ("/set/hotspot", "ON", [{"ap": {"on": 1}}]),
            ("/set/hotspot_ssid", "MyPanda", [{"ap": {"ssid": "MyPanda"}}]),
        ]
        for suffix, payload, frames in cases:
            self.assertEqual(self.send(suffix, payload, len(frames)), frames, suffix)
        since = time.monotonic()
        st = self.wait_state(lambda s: s["auto_bed_threshold"] == 70 and s["hotspot"] == "ON",
                             since=since - 2)
        self.assertEqual(st["filter_bed_threshold"], 35)
        self.assertEqual(st["hotspot_ssid"], "MyPanda")

    def test_buttons(self):
        self.ready()
        for suffix, frames in (("/set/scan_printers", [{"printer": {"scan": 1}}]),
                               ("/set/scan_klipper", [{"printer": {"scan_port": 80}}]),
                               ("/set/scan_wifi", [{"wifi": {"scan": 1}}]),
                               ("/set/printer_unbind", [{"printer": {"disconnect": 1}}])):
            self.assertEqual(self.send(suffix, "PRESS", len(frames)), frames, suffix)

    def test_restart_reports_the_reboot(self):
        self.ready()
        since = time.monotonic()
        self.assertEqual(self.send("/set/restart", "PRESS", 1), [{"settings": {"reset": 1}}])
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "device_rebooted",
                            since=since, timeout=30)

    def test_printer_scan_choose_and_bind(self):
        self.ready()
        self.send("/set/scan_printers", "PRESS", 1)
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: "Sim X1C" in d["components"]["printer"]["options"],
                                   timeout=10)
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        # nothing is sent for a choice or a typed code: the gateway holds them
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set/printer"), "Sim X1C")
        self.mqtt.publish(self.t("/set/printer_access_code"), "12345678")
        self.wait_state(lambda s: s["printer"] == "Sim X1C")
        self.assertEqual(self.sim.frames()[before:], [])
        frames = self.send("/set/printer_bind", "PRESS", 1)
        self.assertEqual(frames[0]["printer"]["name"], "Sim X1C")
        self.assertEqual(frames[0]["printer"]["access_code"], "12345678")
        self.assertIn("sn", frames[0]["printer"])
        self.assertIn("ip", frames[0]["printer"])
        # the access code never comes back on MQTT nor in the log
        time.sleep(2)
        for topic, payload, _, _ in self.mqtt.all_payloads():
            if topic.endswith("/set/printer_access_code"):
                continue
            self.assertNotIn("12345678", payload, topic)
        self.assertNotIn("12345678", self.gw.log())

    def test_wifi_scan_choose_and_join(self):
        self.ready()
        self.send("/set/scan_wifi", "PRESS", 1)
        self.mqtt.wait_json("homeassistant/device/dev1/config",
                            lambda d: "SimNet" in d["components"]["wifi_network"]["options"],
                            timeout=10)
        self.mqtt.publish(self.t("/set/wifi_network"), "SimNet")
        self.mqtt.publish(self.t("/set/wifi_password"), "NewWifiPass-1")
        self.wait_state(lambda s: s["wifi_network"] == "SimNet")
        frames = self.send("/set/wifi_join", "PRESS", 1)
        self.assertEqual(frames, [{"wifi": {"ssid": "SimNet", "password": "NewWifiPass-1"}}])
        time.sleep(1)
        for topic, payload, _, _ in self.mqtt.all_payloads():
            if not topic.endswith("/set/wifi_password"):
                self.assertNotIn("NewWifiPass-1", payload, topic)
        self.assertNotIn("NewWifiPass-1", self.gw.log())

    def test_hostname_hotspot_password_factory_reset(self):
        self.ready()
        frames = self.send("/set/hotspot_password", "HotspotPass-9", 1)
        self.assertEqual(frames, [{"ap": {"password": "HotspotPass-9"}}])
        since = time.monotonic()
        self.assertEqual(self.send("/set/hostname", "garage-panda", 1),
                         [{"sta": {"hostname": "garage-panda"}}])
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "device_rebooted",
                            since=since, timeout=30)
        self.wait_state(lambda s: s["hostname"] == "garage-panda", since=since, timeout=30)
        since = time.monotonic()
        self.assertEqual(self.send("/set/factory_reset", "PRESS", 1),
                         [{"settings": {"factory_reset": 1}}])
        self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "device_rebooted",
                            since=since, timeout=30)
        for topic, payload, _, _ in self.mqtt.all_payloads():
            if not topic.endswith("/set/hotspot_password"):
                self.assertNotIn("HotspotPass-9", payload, topic)
        self.assertNotIn("HotspotPass-9", self.gw.log())

    def klipper_scan_and_choose(self, port):
        self.ready()
        self.assertEqual(self.send("/set/klipper_port", str(port), 0), [])
        self.wait_state(lambda s: s["klipper_port"] == port)
        self.assertEqual(self.send("/set/scan_klipper", "PRESS", 1),
                         [{"printer": {"scan_port": port}}])
        self.mqtt.wait_json("homeassistant/device/dev1/config",
                            lambda d: "Sim Voron" in d["components"]["printer"]["options"],
                            timeout=10)
        self.mqtt.publish(self.t("/set/printer"), "Sim Voron")
        self.wait_state(lambda s: s["printer"] == "Sim Voron")

    def test_klipper_scan_and_bind_after_the_reply(self):
        self.klipper_scan_and_choose(7126)
        before = len(self.sim.frames())
        start = time.monotonic()
        since = time.monotonic()
        self.mqtt.publish(self.t("/set/printer_bind"), "PRESS")
        frames = self.new_frames(before, count=2, timeout=20)
        # the device's printer_type reply, then its 5 s (the simulator refuses a bind
        # that comes sooner than 4 s after printer_type)
        self.assertGreaterEqual(time.monotonic() - start, 4.5)
        self.assertEqual(frames, [{"settings": {"printer_type": 2}},
                                  {"printer": {"name": "Klipper", "ip": "127.0.0.3",
                                               "port": 7126}}])
        self.assertIn("confirmed printer_type", self.gw.log())
        # read back as printer.host / printer.port
        self.wait_state(lambda s: s["bound_printer"] == "127.0.0.3:7126", since=since,
                        timeout=20)

    def test_klipper_bind_refused_sends_no_bind(self):
        self.klipper_scan_and_choose(80)
        self.sim.control("refuse printer_type")
        before = len(self.sim.frames())
        since = time.monotonic()
        self.mqtt.publish(self.t("/set/printer_bind"), "PRESS")
        ev = self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "command_failed",
                                 since=since)
        self.assertEqual(ev["command"], "printer_type")
        self.assertIs(ev["sent_by_gateway"], True)
        time.sleep(6)
        self.assertEqual([json.loads(f) for f in self.sim.frames()[before:]],
                         [{"settings": {"printer_type": 2}}])
        self.assertIn("the device refused printer_type", self.gw.log())

    def test_klipper_bind_without_a_reply_waits_longer(self):
        self.klipper_scan_and_choose(80)
        self.sim.control("noreply printer_type")
        before = len(self.sim.frames())
        start = time.monotonic()
        self.mqtt.publish(self.t("/set/printer_bind"), "PRESS")
        frames = self.new_frames(before, count=2, timeout=30)
        self.assertGreaterEqual(time.monotonic() - start, 14.5)
        self.assertEqual(frames[1], {"printer": {"name": "Klipper", "ip": "127.0.0.3",
                                                 "port": 80}})
        self.assertIn("no printer_type reply; going on", self.gw.log())

    def test_refused_hostname_restarts_nothing(self):
        self.ready()
        self.sim.control("refuse set_hostname")
        since = time.monotonic()
        self.assertEqual(self.send("/set/hostname", "garage-panda", 1),
                         [{"sta": {"hostname": "garage-panda"}}])
        ev = self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "command_failed",
                                 since=since)
        self.assertEqual(ev["command"], "set_hostname")
        # no restart: the link stays, no reboot is announced, the name is unchanged
        self.sim.control("drop")
        self.wait_online(since=time.monotonic())
        time.sleep(1)
        events = [json.loads(p)["event_type"] for t, p, _, at in self.mqtt.all_payloads()
                  if t == self.t("/event") and at >= since]
        self.assertNotIn("device_rebooted", events)
        self.assertEqual(self.wait_state(lambda s: True)["hostname"], "PandaBreath")

    def test_a_reply_to_another_client(self):
        self.ready()
        since = time.monotonic()
        self.sim.control('push {"response":{"type":"set_ap","ok":0}}')
        ev = self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "command_failed",
                                 since=since)
        self.assertEqual(ev["command"], "set_ap")
        self.assertIs(ev["sent_by_gateway"], False)

    def test_drying_for_30_hours(self):
        self.ready()
        since = time.monotonic()
        self.send("/set", '{"drying":{"temperature":50,"hours":30}}', 6)
        st = self.wait_state(lambda s: s["drying"] == "ON" and s["drying_hours"] == 30,
                             since=since)
        # the countdown is believed beyond 12 h
        self.assertGreater(st["drying_remaining"], 29 * 3600)
        self.assertIsNotNone(st["drying_ends_at"])

    def test_command_that_does_not_take_is_reported(self):
        self.ready()
        self.sim.control("ignore settings.hotbedtemp")
        since = time.monotonic()
        self.send("/set/auto_bed_threshold", "65", 1)
        ev = self.mqtt.wait_json(self.t("/event"),
                                 lambda e: e["event_type"] == "command_not_applied", since=since)
        self.assertEqual(ev["field"], "settings.hotbedtemp")
        self.assertEqual(ev["expected"], 65)
        self.assertEqual(ev["reported"], 80)
        # the re-read changed nothing: the state says what it said, 80
        st, _ = self.mqtt.state(self.t())
        self.assertEqual(st["auto_bed_threshold"], 80)

    def test_sensor_fault_event(self):
        self.ready()
        since = time.monotonic()
        self.sim.control("set settings.ptc_sensor_status 2")
        ev = self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == "sensor_fault",
                                 since=since, timeout=15)
        self.assertEqual(ev["sensor"], "heater")
        self.assertEqual(ev["status"], "open")
        st = self.wait_state(lambda s: s["heater_sensor_fault"] == "ON", since=since)
        self.assertEqual(st["heater_sensor"], {"code": 2, "status": "open"})

    def test_invalid_commands(self):
        self.ready()
        before = len(self.sim.frames())
        for suffix, payload, field in (
                ("/set", '{"drying":{"hours":100}}', "drying_hours"),
                ("/set", '{"drying":{"temperature":39}}', "drying_temperature"),
                ("/set/auto_bed_threshold", "39", "auto_bed_threshold"),
                ("/set/filter_bed_threshold", "121", "filter_bed_threshold"),
                ("/set/target_temperature", "61", "target_temperature"),
                ("/set/klipper_port", "0", "klipper_port"),
                ("/set", '{"drying":{"temperature":55,"speed":2}}', "drying"),
                ("/set/hostname", "bad name!", "hostname"),
                ("/set/restart", "YES", "restart"),
                ("/set/printer_bind", "PRESS", "printer_bind"),
                ("/set/wifi_join", "PRESS", "wifi_join"),
                ("/set/printer", "Nope", "printer"),
                ("/set/hotspot_password", "short", "hotspot_password")):
            since = time.monotonic()
            self.mqtt.publish(self.t(suffix), payload)
            ev = self.mqtt.wait_json(self.t("/event"),
                                     lambda e: e["event_type"] == "command_rejected", since=since)
            self.assertEqual(ev["field"], field, (suffix, payload))
        time.sleep(1)
        self.assertEqual(self.sim.frames()[before:], [])


class OwnHaLink(GatewayTestCase):
    firmware = "V1.0.4"

    def test_v104_with_own_ha_link_gets_no_duplicates(self):
        self.wait_online()
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.4")
        time.sleep(1)
        # retained copies may be left by an earlier test on this broker; what this
        # gateway publishes live must only ever withdraw
        live = [p for _, p, retained, _ in self.mqtt.on("homeassistant/device/dev1/config")
                if not retained]
        self.assertTrue(live and all(p == "" for p in live), live)
        self.assertIn("runs its own Home Assistant MQTT link", self.gw.log())

    def test_v104_duplicates_on_request(self):
        self.gw.stop()
        since = time.monotonic()
        opts = dict(self.device_opts, duplicate_ha_entities="true")
        from harness import Gateway
        self.gw = Gateway(self.tmpdir.name, self.broker.port,
                          {"dev1": dict({"host": "127.0.0.1", "port": self.sim.port}, **opts)},
                          base=self.base)
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: d["device"].get("sw_version") == "V1.0.4",
                                   since=since)
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])


if __name__ == "__main__":
    unittest.main()
