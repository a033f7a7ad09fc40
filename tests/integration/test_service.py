"""Running panda2mqtt as a service people trust (docs/SERVICE.md): reloading without
dropping links, systemd readiness and watchdog, the gateway as a Home Assistant device,
the request/response API on MQTT, forgetting devices that are gone, and logs journald
understands.

A real mosquitto per class, the simulator (tools/panda2mqtt-sim) as devices, PTalk
simulators dialling in; every wait is bounded (harness.wait_until). The simulator logs
every WebSocket connection it accepts ("client N connected from"): counting those proves
that a device's link survived a reload (no new connection).
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

import ha_schema
from harness import (Avahi, BrokerTestCase, Gateway, Mqtt, Sim, free_port, wait_until)
from test_dialin import DEV as PTALK, PTalk, TOKEN

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


class Reload(ServiceCase):
    """SIGHUP (systemctl reload) and bridge/request/reload read the file again."""

    def test_reload_applies_device_changes_and_keeps_unchanged_links(self):
        keep, drop, change = self.sim(MACS[0]), self.sim(MACS[1]), self.sim(MACS[2])
        gw = self.gateway({"keep": device(keep, name="Kept"), "drop": device(drop),
                           "change": device(change, name="Before")})
        for dev in ("keep", "drop", "change"):
            self.wait_online(dev)
            self.mqtt.wait_json(self.disc(dev), lambda d: d.get("components"))
        self.assertEqual([connects(s) for s in (keep, drop, change)], [1, 1, 1])
        add = self.sim(MACS[3])
        gw.rewrite({"keep": device(keep, name="Kept"), "change": device(change, name="After"),
                    "add": device(add)})
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)

        self.wait_online("add", since=t0)
        self.mqtt.wait_json(self.disc("add"), lambda d: d["device"]["name"], since=t0)
        # changed: reconnected (a second connection) and its new name in discovery
        wait_until(lambda: connects(change) == 2, 20, what="the changed device reconnected")
        self.mqtt.wait_json(self.disc("change"), lambda d: d["device"]["name"] == "After",
                            since=t0)
        # removed: withdrawn (empty retained discovery and availability) and let go
        self.wait_empty(self.disc("drop"), t0)
        self.wait_empty(self.t("drop", "/availability"), t0)
        wait_until(lambda: drop.control("clients") == "ok clients 0", 20,
                   what="the removed device's link closed")
        wait_until(lambda: self.info_ids() == ["add", "change", "keep"], 20,
                   what=f"bridge/info listing add, change, keep; last: {self.info()}")
        # unchanged: the same link, still speaking (a state after the reload), and no
        # other connection at its simulator
        t1 = time.monotonic()
        speak(keep, 33)
        self.mqtt.wait_json(self.t("keep"), lambda s: s["chamber_temperature"] == 33, since=t1)
        self.assertEqual(connects(keep), 1, "the unchanged device's link was dropped")
        self.assertEqual(keep.control("clients"), "ok clients 1")
        with open(keep.stderr) as f:
            self.assertNotIn("disconnected", f.read())
        self.assertNotIn("offline", [p for _, p, _, at in self.mqtt.on(
            self.t("keep", "/availability")) if at >= t0])
        self.assertNotIn("", [p for _, p, _, at in self.mqtt.on(self.disc("keep"))
                              if at >= t0], "the unchanged device was withdrawn")
        self.assertTrue(gw.alive())
        log = gw.log()
        self.assertIn("received Hangup; reloading", log)
        self.assertIn("device drop: no longer configured; withdrawn", log)
        self.assertIn("device change: its [device] section changed; connecting again", log)
        self.assertIn("device add: added to the configuration", log)
        self.assertIn("reload: done", log)

    def test_invalid_configuration_keeps_the_running_one(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        gw.rewrite({"dev1": device(sim)}, extra_ini="[safety]\nmax_target_temp = lots\n")
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the running configuration stays" in gw.log(), 15,
                   what="the reload refused")
        self.assertRegex(gw.log(), r"error: reload: .*gw-\d+\.ini:\d+: \[safety\] "
                         r"max_target_temp: 'lots' is not a number; the running "
                         r"configuration stays")
        # the same through the API: an error response carrying the transaction
        r = self.request("reload", {"transaction": "r-1"})
        self.assertEqual((r["status"], r["transaction"]), ("error", "r-1"))
        self.assertIn("'lots' is not a number", r["error"])
        # nothing changed: still running, same link
        t1 = time.monotonic()
        speak(sim, 34)
        self.mqtt.wait_json(self.t("dev1"), lambda s: s["chamber_temperature"] == 34, since=t1)
        self.assertTrue(gw.alive())
        self.assertEqual(connects(sim), 1)
        self.assertEqual(self.mqtt.last(self.t("dev1", "/availability")), "online")
        # and a valid file is taken again
        gw.rewrite({"dev1": device(sim)})
        r = self.request("reload", {"transaction": 2})
        self.assertEqual((r["status"], r["transaction"], r["data"]),
                         ("ok", 2, {"restart_needed": []}))
        wait_until(lambda: "reload: done" in gw.log(), 15, what="the reload applied")
        self.assertEqual(connects(sim), 1)

    def test_mqtt_change_makes_a_new_session_and_keeps_device_links(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        gw.rewrite({"dev1": device(sim)}, mqtt={"client_id": f"other{self.base}"})
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        bridge = f"{self.base}/bridge/state"
        self.mqtt.wait(bridge, lambda p: p == "offline", since=t0)
        self.mqtt.wait(bridge, lambda p: p == "online", since=t0)
        # everything retained again on the new session
        self.wait_online("dev1", since=t0)
        self.mqtt.wait(self.disc("dev1"), lambda p: p != "", since=t0)
        log = gw.log()
        self.assertIn("reload: [mqtt] changed; connecting to the broker again", log)
        self.assertEqual(log.count("mqtt: connected to"), 2)
        self.assertEqual(connects(sim), 1, "the device link went with the broker session")
        with open(self.broker.log) as f:
            self.assertIn(f"other{self.base}", f.read())  # the new client id

    def test_safety_change_applies_at_once(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")

        def climate_max(d):
            return d["components"]["climate"]["max_temp"]
        self.assertEqual(climate_max(self.mqtt.wait_json(self.disc("dev1"))), 60)
        gw.rewrite({"dev1": device(sim)}, extra_ini="[safety]\nmax_target_temp = 45\n")
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        self.mqtt.wait_json(self.disc("dev1"), lambda d: climate_max(d) == 45, since=t0)
        t1 = time.monotonic()
        self.mqtt.publish(self.t("dev1", "/set"), json.dumps({"target_temperature": 50}))
        ev = self.mqtt.wait_json(self.t("dev1", "/event"),
                                 lambda e: e["event_type"] == "command_rejected", since=t1)
        self.assertIn("45", ev["reason"])
        self.assertEqual(connects(sim), 1)

    def test_what_takes_a_restart_is_said_and_kept(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        port = free_port()
        gw.rewrite({"dev1": device(sim)},
                   extra_ini=f"[dialin]\nport = {port}\nlisten = 127.0.0.1\n")
        r = self.request("reload", {"transaction": "x"})
        self.assertEqual((r["status"], r["data"]["restart_needed"]), ("ok", ["[dialin]"]))
        wait_until(lambda: "reload: done" in gw.log(), 15, what="the reload applied")
        self.assertIn("warning: reload: [dialin] changed; that takes a restart", gw.log())
        with socket.socket() as s:  # the running value (no endpoint) stays
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)

    def test_retained_requests_are_refused(self):
        """A retained request would be carried out again at every reconnect. The broker
        hands it over retained to a new subscription: the next gateway's."""
        topic = f"{self.base}/bridge/request/reload"
        self.mqtt.publish(topic, json.dumps({"transaction": "ret"}), retain=True)
        t0 = time.monotonic()
        gw = self.gateway({})
        r = self.mqtt.wait_json(f"{self.base}/bridge/response/reload", since=t0)
        self.assertEqual(r, {"status": "error", "data": {}, "transaction": "ret",
                             "error": "retained requests are not accepted; publish without "
                                      "the retain flag"})
        self.assertNotIn("reloading", gw.log())
        self.mqtt.publish(topic, "", retain=True)  # gone from the broker


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

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)


class Systemd(ServiceCase):
    """Type=notify: READY=1, STATUS=, RELOADING=1, STOPPING=1 and the watchdog's pings,
    with NOTIFY_SOCKET and WATCHDOG_USEC set as systemd sets them."""

    def test_ready_status_reload_watchdog_and_stop(self):
        notify = NotifySocket(self.tmpdir.name)
        self.addCleanup(notify.close)
        sim = self.sim()
        t0 = time.monotonic()
        gw = self.gateway({"dev1": device(sim)},
                          env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: notify.since(t0, "READY=1"), 15, what="READY=1")
        ready = notify.since(t0, "READY=1")[0][1]
        self.assertRegex(ready, r"STATUS=\d+ of 1 device\(s\) online")
        self.wait_online("dev1")
        wait_until(lambda: notify.since(t0, "STATUS=1 of 1 device(s) online"), 15,
                   what="STATUS with the device online")
        # WatchdogSec=1 s: a ping every half of it, from the loop
        wait_until(lambda: len(notify.since(t0, "WATCHDOG=1")) >= 4, 10,
                   what="four watchdog pings")

        # a frozen loop sends no pings (systemd would kill and restart it) ...
        gw.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic() + 0.2  # one may be on its way
        time.sleep(2.5)  # the window in which no ping may come: not a wait for one
        self.assertEqual(notify.since(stopped, "WATCHDOG=1"), [],
                         "pings from a stopped process")
        # ... and they resume when it runs again
        t1 = time.monotonic()
        gw.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: notify.since(t1, "WATCHDOG=1"), 10, what="pings after SIGCONT")

        t2 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: notify.since(t2, "READY=1"), 15, what="READY=1 after the reload")
        reloading = notify.since(t2, "RELOADING=1")
        self.assertTrue(reloading, "no RELOADING=1")
        self.assertLessEqual(reloading[0][0], notify.since(t2, "READY=1")[0][0])
        self.assertRegex(reloading[0][1], r"MONOTONIC_USEC=\d+")

        t3 = time.monotonic()
        self.assertEqual(gw.stop(), 0)
        wait_until(lambda: notify.since(t3, "STOPPING=1"), 5, what="STOPPING=1")

    def test_without_watchdog_usec_no_pings(self):
        notify = NotifySocket(self.tmpdir.name)
        self.addCleanup(notify.close)
        t0 = time.monotonic()
        self.gateway({}, env={"NOTIFY_SOCKET": notify.path})
        wait_until(lambda: notify.since(t0, "READY=1"), 15, what="READY=1")
        self.mqtt.wait(f"{self.base}/bridge/info")
        self.assertEqual(notify.since(t0, "WATCHDOG=1"), [])


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
        # no secret anywhere
        for topic, payload, _, _ in self.mqtt.all_payloads():
            for secret in (SECRET_PW, TOKEN):
                self.assertNotIn(secret, payload, topic)
        self.assertNotIn(SECRET_PW, gw.log())
        self.assertNotIn(TOKEN, gw.log())

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


class Logs(ServiceCase):
    """Priority prefixes when standard error is the journal; [log] level and -v."""

    def test_journal_prefixes_only_on_the_journal_stream(self):
        path = os.path.join(self.tmpdir.name, f"journal-{time.monotonic_ns()}.log")
        open(path, "w").close()
        st = os.stat(path)
        gw = self.gateway({}, logfile=path, verbose=False,
                          env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        self.mqtt.wait(f"{self.base}/bridge/info")
        self.request("restart", {})  # a warning
        wait_until(lambda: "refused" in gw.log(), 10, what="the warning line")
        lines = gw.log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>(error|warning|info|debug): ")
        self.assertTrue(any(line.startswith("<6>info: ") for line in lines))
        self.assertTrue(any(line.startswith("<4>warning: bridge: request restart refused")
                            for line in lines))
        # inherited by a process whose stderr is elsewhere: plain lines
        other = self.gateway({}, base=f"{self.base}o", verbose=False,
                             mqtt={"client_id": f"{self.base}o"},
                             env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        wait_until(lambda: "mqtt: connected" in other.log(), 15, what="the second gateway")
        self.assertTrue(other.log().startswith("info: "))
        self.assertNotIn("<6>", other.log())

    def test_log_level_from_the_file_and_verbose(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)}, verbose=False,
                          extra_ini="[log]\nlevel = warning\n")
        self.wait_online("dev1")
        self.request("restart", {})
        wait_until(lambda: "warning: bridge: request restart refused" in gw.log(), 10,
                   what="the warning")
        self.assertNotIn("info:", gw.log())
        info = self.mqtt.wait_json(f"{self.base}/bridge/info", lambda i: "log_level" in i)
        self.assertEqual(info["log_level"], "warning")
        # -v: debug, whatever the file says
        loud = self.gateway({}, base=f"{self.base}v", mqtt={"client_id": f"{self.base}v"},
                            extra_ini="[log]\nlevel = error\n")
        self.mqtt.publish(f"{loud.base}/bridge/request/health", "{}")
        wait_until(lambda: "debug: bridge: request health" in loud.log(), 15,
                   what="debug lines with -v")


if __name__ == "__main__":
    unittest.main()
