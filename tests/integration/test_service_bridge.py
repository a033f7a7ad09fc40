"""Running panda2mqtt as a service people trust (docs/SERVICE.md), the MQTT side: the
gateway as a Home Assistant device, the request/response API on <base>/bridge/request,
and forgetting found and dialled-in devices that are gone. Reloading, systemd and logs:
test_service.py.
"""
import json
import os
import time
import unittest

import ha_schema
from harness import Avahi, SIM_SECRETS, Sim, free_port, wait_until
from service_case import ServiceCase, device
from test_dialin import DEV as PTALK, TOKEN


class BridgeDevice(ServiceCase):
    """The gateway as a Home Assistant device: <prefix>/device/<base>_bridge/config."""

    def test_bridge_discovery_is_valid_and_unique_per_base_topic(self):
        sim = self.sim()
        self.gateway({"dev1": device(sim)})
        other = f"{self.base}b"
        self.gateway({}, base=other, mqtt={"client_id": other})
        self.wait_online("dev1")
        disc = self.mqtt.wait_json(self.disc(f"{self.base}_bridge"))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        comps = disc["components"]
        self.assertEqual(sorted(comps), ["connection_state", "devices_online", "devices_total",
                                         "log_level", "mdns_browse", "reload", "version"])
        self.assertEqual(comps["connection_state"]["state_topic"], f"{self.base}/bridge/state")
        self.assertEqual(comps["mdns_browse"], {"platform": "button"})  # mdns is off
        self.assertEqual(comps["log_level"]["command_topic"],
                         f"{self.base}/bridge/request/log_level")
        info = self.mqtt.wait_json(f"{self.base}/bridge/info",
                                   lambda i: i["devices_online"] == 1)
        self.assertEqual((info["devices_total"], info["log_level"]), (1, "debug"))  # -v
        # a second gateway (another base topic) is another device, no id shared
        disc2 = self.mqtt.wait_json(self.disc(f"{other}_bridge"))
        self.assertEqual(ha_schema.validate_device_discovery(disc2), [])
        self.assertNotEqual(disc["device"]["identifiers"], disc2["device"]["identifiers"])
        ids = {c["unique_id"] for c in comps.values() if "unique_id" in c}
        ids2 = {c["unique_id"] for c in disc2["components"].values() if "unique_id" in c}
        self.assertEqual(ids & ids2, set())
        # sent again when Home Assistant comes online
        t0 = time.monotonic()
        self.mqtt.publish("homeassistant/status", "online")
        self.mqtt.wait(self.disc(f"{self.base}_bridge"), since=t0)

    def test_log_level_select_changes_logging_at_run_time(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)}, verbose=False)
        self.wait_online("dev1")
        disc = self.mqtt.wait_json(self.disc(f"{self.base}_bridge"))
        select = disc["components"]["log_level"]
        self.assertEqual(select["options"], ["error", "warning", "info", "debug"])

        def choose(option):  # what Home Assistant publishes for the select
            t0 = time.monotonic()
            self.mqtt.publish(select["command_topic"],
                              select["command_template"].replace("{{ value }}", option))
            r = self.mqtt.wait_json(f"{self.base}/bridge/response/log_level", since=t0)
            self.assertEqual(r, {"status": "ok", "data": {"value": option}})
            self.mqtt.wait_json(f"{self.base}/bridge/info",
                                lambda i: i["log_level"] == option, since=t0)
        self.assertNotIn("debug:", gw.log())
        choose("debug")
        self.request("health", {})  # "debug: bridge: request health"
        wait_until(lambda: "debug:" in gw.log(), 10, what="debug lines")
        choose("warning")
        mark = len(gw.log())
        t0 = time.monotonic()
        self.mqtt.publish("homeassistant/status", "online")  # logs an info line
        self.mqtt.wait(self.disc(f"{self.base}_bridge"), since=t0)
        self.request("health", {})
        self.request("log_level", {"value": "loud"})  # a warning line
        wait_until(lambda: "warning: bridge: request log_level refused" in gw.log()[mark:], 10,
                   what="the warning")
        self.assertNotIn("info:", gw.log()[mark:])
        self.assertNotIn("debug:", gw.log()[mark:])

    def test_browse_button_needs_mdns(self):
        self.gateway({})
        r = self.request("mdns/browse", {"transaction": "b"})
        self.assertEqual(r, {"status": "error", "data": {}, "error": "[discovery] mdns is off",
                             "transaction": "b"})


SECRET_PW = "Health-Secret-pw-4c1e"
WRONG_TOKEN = "dialin-token-wrong-77aa31c0"


class Api(ServiceCase):
    """<base>/bridge/request/<verb>: health, bad input, device/remove of a configured
    device."""

    def test_health(self):
        sim = self.sim()
        port = free_port()
        gw = self.gateway({"dev1": device(sim)},
                          mqtt={"username": "u", "password": SECRET_PW},
                          extra_ini=f"[dialin]\nport = {port}\nlisten = 127.0.0.1\n"
                                    f"token = {TOKEN}\n")
        self.wait_online("dev1")
        self.mqtt.wait(self.t("dev1"))
        r = self.request("health", {"transaction": "h"})
        self.assertEqual((r["status"], r["transaction"]), ("ok", "h"))
        h = r["data"]
        self.assertGreaterEqual(h["uptime_s"], 0)
        self.assertGreater(h["memory"]["rss_kib"], 1000)
        self.assertEqual(h["mqtt"], {"connected": True})
        self.assertEqual(h["gone"], [])
        (d,) = h["devices"]
        self.assertEqual((d["id"], d["source"], d["online"], d["links"], d["reconnects"]),
                         ("dev1", "config", True, 1, 0))
        self.assertGreater(d["frames"], 0)
        self.assertGreater(d["publishes"], 0)
        self.assertIsNone(d["last_error"])
        # a dropped link: a reconnect, and why it went
        sim.control("drop")
        wait_until(lambda: self.request("health", {})["data"]["devices"][0]["reconnects"] == 1,
                   20, interval=0.5, what="the reconnect counted")
        d = self.request("health", {})["data"]["devices"][0]
        self.assertIsInstance(d["last_error"], str)
        # a PTalk with a wrong token is refused; one with the token dials in and goes
        intruder = self.ptalk(port, token=WRONG_TOKEN, mac="A1B2C3D4E501")
        wait_until(lambda: "wrong or missing token" in gw.log(), 15, what="the refusal")
        intruder.stop()
        pt = self.ptalk(port)
        self.wait_online(PTALK)
        pt.stop()
        self.mqtt.wait(self.t(PTALK, "/availability"), lambda p: p == "offline")

        def ptalk_entry():
            devs = self.request("health", {})["data"]["devices"]
            return next((d for d in devs if d["id"] == PTALK and d["last_error"]), None)
        d = wait_until(ptalk_entry, 15, interval=0.5, what="the PTalk's link error")
        self.assertEqual((d["source"], d["online"], d["links"]), ("dialin", False, 1))
        # no secret anywhere: not in a health response, another publish or a log line
        secrets = (SECRET_PW, TOKEN, WRONG_TOKEN, *SIM_SECRETS)
        responses = [p for _, p, _, _ in self.mqtt.on(f"{self.base}/bridge/response/health")]
        self.assertGreaterEqual(len(responses), 4)
        for topic, payload, _, _ in self.mqtt.all_payloads():
            for secret in secrets:
                self.assertNotIn(secret, payload, topic)
        for secret in secrets:
            self.assertNotIn(secret, gw.log())

    def test_bad_requests_are_answered_and_logged_sparingly(self):
        gw = self.gateway({}, verbose=False)
        self.mqtt.wait(f"{self.base}/bridge/info")
        cases = [
            ("health", "not json", "not JSON"),
            ("health", "[1]", "must be a JSON object"),
            ("health", "x" * 5000, "larger than 4096 bytes"),
            ("device/remove", json.dumps({"id": 5, "transaction": "t5"}), "must be a string"),
            ("device/remove", json.dumps({"id": "../x"}), "'id' must be"),
            ("log_level", json.dumps({"value": ["debug"]}), "must be a string"),
            ("restart", "{}", "unknown request"),
            ("health/deeper/levels", "{}", "unknown request"),
            ("health", json.dumps({"transaction": {"a": 1}}), "'transaction' must be"),
            ("health", "\xff\xfe", "not JSON"),
        ]
        for verb, payload, error in cases:
            r = self.request(verb, payload)
            self.assertEqual(r["status"], "error", (verb, payload))
            self.assertIn(error, r["error"], (verb, payload))
        self.assertEqual(self.request("device/remove", {"id": 5, "transaction": "t5"})
                         ["transaction"], "t5")
        # a flood: every request answered, a few log lines, the gateway unmoved
        t0 = time.monotonic()
        for i in range(300):
            self.mqtt.publish(f"{self.base}/bridge/request/health", f"junk {i}")
        wait_until(lambda: len([m for m in self.mqtt.on(f"{self.base}/bridge/response/health")
                                if m[3] >= t0]) >= 300, 30, what="300 responses")
        refused = gw.log().count("refused: the payload is not JSON")
        self.assertLessEqual(refused, 5, "the refusals are rate-limited")
        # a verb too long to answer on: logged, no response, no harm
        self.mqtt.publish(f"{self.base}/bridge/request/{'v' * 100}", "{}")
        r = self.request("health", {"transaction": "after"})
        self.assertEqual((r["status"], r["transaction"]), ("ok", "after"))
        self.assertTrue(gw.alive())

    def test_configured_devices_are_not_removed(self):
        sim = self.sim()
        self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        r = self.request("device/remove", {"id": "dev1", "transaction": "abc"})
        self.assertEqual(r, {"status": "error", "data": {}, "transaction": "abc",
                             "error": "configured devices are removed from the configuration"})
        r = self.request("device/remove", {"id": "nosuch"})
        self.assertEqual((r["status"], r["error"]), ("error", "no such device"))
        self.assertEqual(self.mqtt.last(self.t("dev1", "/availability")), "online")


class Forget(ServiceCase):
    """Found and dialled-in devices are forgotten on request or after [discovery]
    forget_after days offline, and served again when seen again; configured ones never."""

    def dialin_gateway(self, devices=None, **kw):
        self.port = free_port()
        ini = (f"[dialin]\nport = {self.port}\nlisten = 127.0.0.1\ntoken = {TOKEN}\n")
        gw = self.gateway(devices or {}, extra_ini=ini, **kw)
        wait_until(lambda: "dialin: devices may connect" in gw.log(), 10,
                   what="the dialin endpoint")
        return gw

    def assert_withdrawn(self, dev, since):
        for suffix in ("", "/details", "/availability"):
            self.wait_empty(self.t(dev, suffix), since)
        self.wait_empty(self.disc(dev), since, timeout=30)

    def test_forget_button_withdraws_a_dialin_device_until_it_dials_in_again(self):
        gw = self.dialin_gateway()
        pt = self.ptalk(self.port)
        self.wait_online(PTALK)
        disc = self.mqtt.wait_json(self.disc(PTALK), lambda d: "forget" in d["components"])
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        button = disc["components"]["forget"]
        self.assertEqual(button["availability"], [{"topic": f"{self.base}/bridge/state"}])
        pt.stop()
        self.mqtt.wait(self.t(PTALK, "/availability"), lambda p: p == "offline")
        # pressed in Home Assistant: its payload on its command topic
        t0 = time.monotonic()
        self.mqtt.publish(button["command_topic"], button["payload_press"])
        r = self.mqtt.wait_json(f"{self.base}/bridge/response/device/remove", since=t0)
        self.assertEqual(r, {"status": "ok", "data": {"id": PTALK}})
        self.assert_withdrawn(PTALK, t0)
        wait_until(lambda: self.info_ids() == [], 10, what="bridge/info without it")
        self.assertIn(f"device {PTALK}: forgotten (asked to)", gw.log())
        r = self.request("device/remove", {"id": PTALK})
        self.assertEqual((r["status"], r["error"]), ("error", "no such device"))
        # seen again: served again
        t1 = time.monotonic()
        self.ptalk(self.port)
        self.wait_online(PTALK, since=t1)
        self.mqtt.wait_json(self.disc(PTALK), lambda d: "forget" in d["components"], since=t1)

    def test_forget_after_withdraws_found_devices_only(self):
        sim = self.sim()
        # 0.0001 days: 8.64 s offline
        gw = self.dialin_gateway({"dev1": device(sim)}, discovery={"forget_after": "0.0001"})
        pt = self.ptalk(self.port)
        self.wait_online(PTALK)
        self.wait_online("dev1")
        t0 = time.monotonic()
        pt.stop()
        sim.stop()
        self.mqtt.wait(self.t(PTALK, "/availability"), lambda p: p == "offline", since=t0)
        self.mqtt.wait(self.t("dev1", "/availability"), lambda p: p == "offline", since=t0)
        self.assert_withdrawn(PTALK, t0)
        forgotten = time.monotonic()
        self.assertGreaterEqual(forgotten - t0, 8.0, "forgotten before forget_after")
        self.assertIn(f"device {PTALK}: forgotten (offline for [discovery] forget_after = "
                      "0.0001 day(s))", gw.log())
        # the configured device, offline as long, stays
        self.assertNotEqual(self.mqtt.last(self.disc("dev1")), "")
        self.assertEqual(self.mqtt.last(self.t("dev1", "/availability")), "offline")
        self.assertNotIn("device dev1: forgotten", gw.log())
        wait_until(lambda: self.info_ids() == ["dev1"], 10, what="bridge/info with dev1 only")

    def test_devices_of_an_earlier_run_can_be_forgotten(self):
        first = self.dialin_gateway()
        pt = self.ptalk(self.port)
        self.wait_online(PTALK)
        pt.stop()
        self.assertEqual(first.stop(), 0)
        self.mqtt.wait(self.t(PTALK, "/availability"), lambda p: p == "offline")
        # beside it, retained availability under ids no gateway could have used (under
        # this test's own base topic, in this class's broker)
        for junk in ("Not An Id", "", "x" * 33):
            self.mqtt.publish(self.t(junk, "/availability"), "offline", retain=True)
            self.mqtt.wait(self.t(junk, "/availability"), lambda p: p == "offline")
        # a new run that does not serve it: the broker still holds its entities
        self.gateway({})
        wait_until(lambda: self.request("health", {})["data"]["gone"] == [PTALK], 20,
                   interval=0.5, what="the earlier run's device noticed")
        t0 = time.monotonic()
        r = self.request("device/remove", {"id": PTALK, "transaction": 1})
        self.assertEqual(r, {"status": "ok", "data": {"id": PTALK}, "transaction": 1})
        self.assert_withdrawn(PTALK, t0)
        self.assertEqual(self.request("health", {})["data"]["gone"], [])


class Rebrowse(ServiceCase):
    """A found device that was forgotten is found again when the bridge's "Search for
    devices" button (mdns/browse) browses DNS-SD from scratch. Needs avahi-daemon."""

    @classmethod
    def setUpClass(cls):
        why = Avahi.up()
        if why:
            raise unittest.SkipTest(f"avahi-daemon cannot run here: {why}")
        super().setUpClass()

    def test_forgotten_found_device_comes_back_on_browse(self):
        tag = os.urandom(3).hex()
        mac = "0B" + os.urandom(5).hex().upper()
        dev = f"panda_breath_{mac.lower()}"
        # announcing itself; a name and MAC of this test's own (test_mdns.py)
        self.sims.append(Sim(self.tmpdir.name, extra=("--mac", mac, "--mdns", f"Panda {tag}",
                                                      "--hostname", f"Panda-{tag}")))
        gw = self.gateway({}, mdns=True)
        self.wait_online(dev, timeout=40)
        disc = self.mqtt.wait_json(self.disc(dev), lambda d: "forget" in d["components"])
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        bridge = self.mqtt.wait_json(self.disc(f"{self.base}_bridge"))
        button = bridge["components"]["mdns_browse"]
        self.assertEqual(button["command_topic"], f"{self.base}/bridge/request/mdns/browse")
        t0 = time.monotonic()
        r = self.request("device/remove", {"id": dev})
        self.assertEqual(r["status"], "ok")
        self.wait_empty(self.disc(dev), t0)
        wait_until(lambda: dev not in (self.info_ids() or []), 10, what="bridge/info without it")
        # pressed: browsing from scratch finds it again
        t1 = time.monotonic()
        self.mqtt.publish(button["command_topic"], button["payload_press"])
        r = self.mqtt.wait_json(f"{self.base}/bridge/response/mdns/browse", since=t1)
        self.assertEqual(r, {"status": "ok", "data": {}})
        self.wait_online(dev, since=t1, timeout=40)
        self.mqtt.wait_json(self.disc(dev), lambda d: "forget" in d["components"], since=t1)
        self.assertIn("mdns: browsing again from scratch", gw.log())


if __name__ == "__main__":
    unittest.main()
