"""PTalk devices that dial in: the [dialin] endpoint, the PTalk driver, firmware updates,
token and allowlist, and a second connection claiming a connected device's id.

A real mosquitto per class; per test, the gateway with [dialin] on a free loopback port
and `panda2mqtt-sim ptalk` processes connecting to it.
"""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import asyncio

import ha_schema
from harness import (SANITIZED, SANITIZER_ENV, SIM, BrokerTestCase, Gateway, Mqtt,
                     free_port, wait_until)

try:
    import websockets
except ImportError:  # Debian: python3-websockets (tools/install-deps.sh)
    websockets = None

TOKEN = "dialin-token-3f9a61c2e8"
MAC = "A1B2C3D4E5F6"
DEV = "ptalk_a1b2c3d4e5f6"


class PTalk:
    """One simulated PTalk that dials in (panda2mqtt-sim ptalk)."""

    def __init__(self, tmp, port, token=TOKEN, mac=MAC, extra=()):
        stamp = time.monotonic_ns()
        self.frames_log = os.path.join(tmp, f"ptalk-frames-{stamp}.log")
        self.logfile = os.path.join(tmp, f"ptalk-{stamp}.log")
        open(self.frames_log, "w").close()
        url = f"ws://127.0.0.1:{port}/ws" + (f"?token={token}" if token else "")
        env = dict(os.environ, **(SANITIZER_ENV if SANITIZED else {}))
        self.proc = subprocess.Popen(
            [SIM, "ptalk", "--url", url, "--device-id", mac, "--frames-log", self.frames_log,
             "--reboot-ms", "800", "--reconnect-ms", "300", *extra],
            stdout=open(self.logfile, "w"), stderr=subprocess.STDOUT, env=env)

    def frames(self):
        with open(self.frames_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def commands(self):
        return [f.get("cmd") for f in self.frames() if "cmd" in f]

    def log(self):
        with open(self.logfile) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class DialinTestCase(BrokerTestCase):
    token = TOKEN
    extra_dialin = ""

    def setUp(self):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.fwdir = tempfile.mkdtemp(prefix="fw-", dir=self.tmpdir.name)
        self.port = free_port()
        self.sims = []
        ini = (f"[dialin]\nport = {self.port}\nlisten = 127.0.0.1\n"
               f"firmware_dir = {self.fwdir}\n" + (f"token = {self.token}\n" if self.token else "")
               + self.extra_dialin +
               f"\n[device {DEV}]\nname = Kitchen speaker\nrefresh_interval = 5\n"
               "stale_timeout = 6\n")
        self.gw = Gateway(self.tmpdir.name, self.broker.port, {}, base=self.base, extra_ini=ini)
        wait_until(lambda: "dialin: devices may connect" in self.gw.log(), 10,
                   what="the dialin endpoint")

    def tearDown(self):
        try:
            self.gw.assert_stopped_cleanly(self)
            # Wi-Fi is provisioned over BLE: the gateway never sends set_wifi.
            for sim in self.sims:
                self.assertNotIn("set_wifi", sim.commands())
            # the token is a secret: never in a log line or a publish
            if self.token:
                self.assertNotIn(self.token, self.gw.log())
                for topic, payload, _, _ in self.mqtt.all_payloads():
                    self.assertNotIn(self.token, payload, topic)
        finally:
            for sim in self.sims:
                sim.stop()
            self.mqtt.close()

    def ptalk(self, **kw):
        sim = PTalk(self.tmpdir.name, self.port, **kw)
        self.sims.append(sim)
        return sim

    def t(self, suffix="", dev=DEV):
        return f"{self.base}/{dev}{suffix}"

    def wait_online(self, timeout=15, since=0.0, dev=DEV):
        self.mqtt.wait(self.t("/availability", dev), lambda p: p == "online", timeout, since)

    def wait_state(self, pred, timeout=15, since=0.0):
        return self.mqtt.wait_state(self.t(), pred, timeout, since)

    def event(self, event_type, since, timeout=15):
        return self.mqtt.wait_json(self.t("/event"), lambda e: e["event_type"] == event_type,
                                   timeout, since)


class TestPTalk(DialinTestCase):

    def test_handshake_registers_device_with_valid_discovery(self):
        self.ptalk()
        self.wait_online()
        disc = self.mqtt.wait_json(f"homeassistant/device/{DEV}/config")
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(disc["device"]["name"], "Kitchen speaker")  # from [device <id>]
        self.assertEqual(disc["device"]["model"], "PTalk speaker")
        self.assertNotIn("configuration_url", disc["device"])  # no web page to link
        comps = disc["components"]
        self.assertEqual({k: c["platform"] for k, c in comps.items()}, {
            "volume": "number", "brightness": "number", "device_name": "text",
            "battery": "sensor", "connectivity": "sensor", "firmware_version": "sensor",
            "uptime": "sensor", "mac_address": "sensor", "reboot": "button",
            "firmware_update": "update", "event": "event",
            "forget": "button"})  # a device that dials in can be forgotten (SERVICE.md)
        self.assertEqual((comps["volume"]["min"], comps["volume"]["max"]), (0, 100))
        # the handshake, then the whole state from request_status
        state = self.wait_state(lambda s: s["volume"] is not None)
        self.assertEqual((state["volume"], state["brightness"], state["battery"]), (60, 100, 85))
        self.assertEqual(state["connectivity"], "ONLINE")
        self.assertEqual(state["firmware_version"], "1.0.1")
        self.assertEqual(state["mac_address"], MAC)
        info = self.mqtt.wait_json(f"{self.base}/bridge/info",
                                   lambda i: any(d["id"] == DEV for d in i["devices"]))
        dev = [d for d in info["devices"] if d["id"] == DEV][0]
        self.assertEqual((dev["source"], dev["host"], dev["online"]), ("dialin", "127.0.0.1", True))

    def test_status_is_polled(self):
        self.ptalk()
        first = self.wait_state(lambda s: s["uptime"] is not None)
        # refresh_interval = 5: request_status again, and the uptime moves on
        self.wait_state(lambda s: s["uptime"] is not None and s["uptime"] > first["uptime"],
                        timeout=15)

    def test_commands_become_requests_and_answers_become_state(self):
        sim = self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        self.mqtt.publish(self.t("/set/volume"), "75")
        self.mqtt.publish(self.t("/set"), json.dumps({"brightness": 40,
                                                      "device_name": "Living room"}))
        self.wait_state(lambda s: s["volume"] == 75 and s["brightness"] == 40
                                and s["device_name"] == "Living room")
        # the device's own report, on a topic of its own, follows at the next re-read
        report = self.mqtt.wait_json(self.t("/report"), lambda r: r["ptalk"]["volume"] == 75,
                                     timeout=15)
        self.assertEqual(report["ptalk"]["device_name"], "Living room")
        cmds = sim.frames()
        self.assertIn({"cmd": "set_volume", "volume": 75}, cmds)
        self.assertIn({"cmd": "set_brightness", "brightness": 40}, cmds)
        self.assertIn({"cmd": "set_device_name", "device_name": "Living room"}, cmds)

    def test_bad_commands_never_reach_the_device(self):
        sim = self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        since = time.monotonic()
        before = len(sim.frames())
        for topic, payload, reason in (
                ("/set/volume", "101", "out of range"),
                ("/set/brightness", "4.5", "whole"),
                ("/set/device_name", "", "empty"),
                ("/set", json.dumps({"wifi_ssid": "Home", "wifi_password": "x"}),
                 "unknown field"),
                ("/set/firmware_update", "install", "no firmware image")):
            t0 = time.monotonic()
            self.mqtt.publish(self.t(topic), payload)
            e = self.event("command_rejected", t0)
            self.assertIn(reason, e["reason"], (topic, payload))
        time.sleep(0.5)
        sent = [f for f in sim.frames()[before:] if f.get("cmd") != "request_status"]
        self.assertEqual(sent, [])
        self.assertGreater(time.monotonic(), since)

    def test_refusals_become_events(self):
        self.ptalk(extra=("--refuse", "set_brightness:invalid_param"))
        self.wait_state(lambda s: s["volume"] == 60)
        t0 = time.monotonic()
        self.mqtt.publish(self.t("/set/brightness"), "10")
        e = self.event("command_failed", t0)
        self.assertEqual((e["command"], e["status"]), ("set_brightness", "invalid_param"))
        self.assertIn("message", e)
        # the state says what the device has, not what was asked
        state, _ = self.mqtt.state(self.t())
        self.assertEqual(state["brightness"], 100)

    def test_reboot_reconnects_and_is_reported(self):
        sim = self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        t0 = time.monotonic()
        self.mqtt.publish(self.t("/set/reboot"), "PRESS")
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", 10, t0)
        self.event("device_rebooted", t0)
        self.wait_online(since=t0)
        self.assertIn("reboot", sim.commands())
        self.assertIn("rebooting (reboot command)", sim.log())

    def test_firmware_update_with_progress(self):
        image = os.urandom(300 * 1024 + 123)
        with open(os.path.join(self.fwdir, "ptalk-1.0.2.bin"), "wb") as f:
            f.write(image)
        with open(os.path.join(self.fwdir, "ptalk-1.0.10.bin"), "wb") as f:
            f.write(image[::-1])  # the newest by version order: 1.0.10 > 1.0.2
        with open(os.path.join(self.fwdir, "other-9.9.bin"), "wb") as f:
            f.write(b"not for this family")
        sim = self.ptalk()
        state = self.wait_state(lambda s: s["firmware_update"] is not None
                                and s["firmware_update"]["latest_version"] == "1.0.10")
        self.assertEqual(state["firmware_update"]["installed_version"], "1.0.1")
        self.assertFalse(state["firmware_update"]["in_progress"])
        t0 = time.monotonic()
        self.mqtt.publish(self.t("/set/firmware_update"), "install")
        self.event("update_sent", t0, timeout=30)
        self.event("device_rebooted", t0, timeout=30)
        done = self.wait_state(lambda s: s["firmware_update"]["installed_version"] == "1.0.10"
                               and not s["firmware_update"]["in_progress"], since=t0)
        self.assertEqual(done["firmware_version"], "1.0.10")
        # the update entity's state has a topic of its own (its progress changes often)
        progress = [json.loads(p)["firmware_update"] for t, p, _, at in self.mqtt.all_payloads()
                    if t == self.t("/update") and at >= t0]
        percents = [u["update_percentage"] for u in progress if u["in_progress"]]
        self.assertIn(100, percents)
        numbers = [p for p in percents if p is not None]
        self.assertEqual(numbers, sorted(numbers))
        self.assertGreater(len(numbers), 3)
        # the device got exactly the image, after request_ota
        digest = hashlib.sha256(image[::-1]).hexdigest()
        self.assertIn(f"received {len(image)} bytes sha256 {digest}", sim.log())
        cmds = sim.commands()
        self.assertIn("request_ota", cmds)
        ota = [f for f in sim.frames() if f.get("cmd") == "request_ota"][0]
        self.assertEqual(ota["version"], "1.0.10")
        # nothing more to offer now
        t1 = time.monotonic()
        self.mqtt.publish(self.t("/set/firmware_update"), "install")
        self.assertIn("already installed", self.event("command_rejected", t1)["reason"])

    def test_refused_update_sends_no_image(self):
        with open(os.path.join(self.fwdir, "ptalk-2.0.0.bin"), "wb") as f:
            f.write(os.urandom(40000))
        sim = self.ptalk(extra=("--refuse", "request_ota:error"))
        self.wait_state(lambda s: s["firmware_update"] is not None
                        and s["firmware_update"]["latest_version"] == "2.0.0")
        t0 = time.monotonic()
        self.mqtt.publish(self.t("/set/firmware_update"), "install")
        self.assertEqual(self.event("command_failed", t0)["command"], "request_ota")
        self.event("update_failed", t0)
        self.wait_state(lambda s: not s["firmware_update"]["in_progress"], since=t0)
        time.sleep(0.5)
        self.assertNotIn("binary", json.dumps(sim.frames()))

    def test_dropped_link_reconnects_as_the_same_device(self):
        sim = self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        t0 = time.monotonic()
        sim.proc.send_signal(signal.SIGUSR1)
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", 10, t0)
        self.wait_online(since=t0)
        info = self.mqtt.wait_json(f"{self.base}/bridge/info",
                                   lambda i: any(d["id"] == DEV and d["online"]
                                                 for d in i["devices"]), since=t0)
        self.assertEqual(len(info["devices"]), 1)

    def test_second_claim_refused_while_the_first_answers(self):
        self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        self.ptalk()  # same device_id
        wait_until(lambda: "still answers" in self.gw.log(), 15,
                   what="the second connection refused\n" + self.gw.log()[-3000:])
        self.assertRegex(self.gw.log(), re.compile(
            r"refused ptalk_a1b2c3d4e5f6 from 127\.0\.0\.1: .* still answers"))
        self.assertEqual(self.mqtt.last(self.t("/availability")), "online")

    def test_second_claim_taken_when_the_first_is_gone(self):
        first = self.ptalk()
        self.wait_state(lambda s: s["volume"] == 60)
        first.proc.send_signal(signal.SIGSTOP)  # hung: its socket stays open
        t0 = time.monotonic()
        second = self.ptalk(extra=("--battery", "42"))
        wait_until(lambda: "did not answer within" in self.gw.log(), 15,
                   what="the new connection taken")
        self.wait_state(lambda s: s["battery"] == 42, since=t0)
        self.assertIn("request_status", second.commands())


class TestDialinSecurity(DialinTestCase):
    extra_dialin = "allow = ptalk_a1b2c3d4e5f6, 11:22:33:44:55:66\n"

    def test_wrong_or_missing_token_is_refused(self):
        for token in ("not-the-token-at-all", None):
            self.ptalk(token=token)
        wait_until(lambda: self.gw.log().count("wrong or missing token") >= 2, 15,
                   what="both connections refused")
        time.sleep(1)
        self.assertIsNone(self.mqtt.last(self.t("/availability")))

    def test_allowlist(self):
        self.ptalk(mac="112233445566")
        self.wait_online(dev="ptalk_112233445566")
        self.ptalk(mac="AABBCCDDEEFF")
        wait_until(lambda: "refused ptalk_aabbccddeeff" in self.gw.log(), 15,
                   what="the device not on the list refused")
        self.assertIn("not in [dialin] allow", self.gw.log())
        self.assertIsNone(self.mqtt.last(self.t("/availability", "ptalk_aabbccddeeff")))

    def test_not_a_handshake_is_refused(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /ws?token={TOKEN} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.assertIn(b"101", s.recv(4096))
        payload = b'{"hello":"world"}'
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask +
                  bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        wait_until(lambda: "not the handshake of any device family" in self.gw.log(), 10,
                   what="the connection refused")
        s.close()
        self.assertTrue(self.gw.alive())


class TestDialinFlood(DialinTestCase):
    """Finding F2: with no token, a flood of connections each claiming a new id must not
    register a device (and leave a retained discovery config) per connection."""
    token = None
    extra_dialin = "max_devices = 8\n"
    FLOOD = 400

    @unittest.skipIf(websockets is None, "python3-websockets is not installed")
    def test_flood_registers_at_most_the_cap(self):
        async def one(i):
            try:
                async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws",
                                              open_timeout=20, close_timeout=2) as ws:
                    await ws.send(json.dumps({"cmd": "device_handshake",
                                              "device_id": f"F00D{i:08X}",
                                              "firmware_version": "1.0.0",
                                              "device_name": f"flood {i}"}))
                    try:
                        await asyncio.wait_for(ws.recv(), 2)
                    except (asyncio.TimeoutError, websockets.ConnectionClosed):
                        pass
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass  # refused while too many wait for their handshake: as intended

        async def flood():
            for start in range(0, self.FLOOD, 25):  # 25 at a time, under the 32 waiting
                await asyncio.gather(*(one(i) for i in range(start, start + 25)))
        asyncio.run(flood())

        def registered():
            info = self.mqtt.last_json(f"{self.base}/bridge/info")
            return info and [d["id"] for d in info["devices"] if d["id"].startswith("ptalk_f00d")]
        ids = wait_until(registered, 20, what="bridge/info listing the flood's devices")
        time.sleep(2)
        ids = registered()
        self.assertLessEqual(len(ids), 8, ids)
        configs = {t for t, p, _, _ in self.mqtt.all_payloads()
                   if t.startswith("homeassistant/device/ptalk_f00d") and p}
        self.assertLessEqual(len(configs), 8, sorted(configs))
        log = self.gw.log()
        self.assertIn("[dialin] max_devices (8)", log)
        self.assertLess(log.count("max_devices"), 10, "one line a minute, not one per id")
        # a device named by a [device] section is still served past the cap
        self.ptalk(token=None)
        self.wait_online()
        self.assertTrue(self.gw.alive())


if __name__ == "__main__":
    unittest.main()
