"""Panda Breath firmware updates from Home Assistant (issue 17), end to end: the gateway's
update entity, its checks, the HTTP upload (POST /ota on the device's port) and the
confirmation after the restart, against panda2mqtt-sim's POST /ota (tools/sim_ota.c).

- discovery: an update entity that passes Home Assistant's schemas; latest_version is the
  newest image of [firmware] dir, release_summary its .txt; nothing is sent on its own;
- success: the bytes the device receives equal the image file, with the device page's
  headers; progress published as it goes; firmware_updated; the entity shows the new
  version after the restart; [dialin] firmware_dir still works as the old name;
- refusals, each sending nothing: heating, drying, the version already installed (and
  "reinstall" then installs it), a truncated image, one for another chip, a bad digest,
  an oversized one;
- failures after sending: the device refuses (ok:0), the device goes away half way, the
  device comes back on its old version: firmware_update_failed with the reason, and the
  entity shows what the device reports.
"""
import hashlib
import json
import os
import struct
import time
import unittest

import ha_schema
from harness import Explains, GatewayTestCase, Mqtt, Sim, wait_until

INSTALLED = "V1.0.3"
CHIP_ESP32C3 = 5
OTA_MAX = 0x480000


def esp_image(version="V1.0.4", chip=CHIP_ESP32C3, hash_appended=True, payload=200 * 1024,
              zeros=0, seed=1):
    """An ESP-IDF application image as esptool lays one out: the 24-byte header (magic
    0xE9, chip id at byte 12, hash_appended at byte 23), two segments (the first starts
    with esp_app_desc_t: its version at image byte 48), the XOR checksum at the end of the
    16-byte padding, then the SHA-256 of all of it when hash_appended."""
    rnd = hashlib.sha256(str(seed).encode()).digest() * (payload // 32 + 1)
    desc = (struct.pack("<II8x", 0xABCD5432, 0) + version.encode().ljust(32, b"\0")
            + b"panda_breath".ljust(32, b"\0") + bytes(256 - 80))
    segments = [desc + rnd[:payload // 2 // 4 * 4],
                rnd[payload // 2 // 4 * 4:payload // 4 * 4] + bytes(zeros // 4 * 4)]
    header = struct.pack("<BBBBIB3sHBHH4sB", 0xE9, len(segments), 2, 0x1F, 0x42000020, 0xEE,
                         bytes(3), chip, 0, 0, 0xFFFF, bytes(4), 1 if hash_appended else 0)
    assert len(header) == 24
    body, xor = bytearray(header), 0xEF
    for i, data in enumerate(segments):
        body += struct.pack("<II", 0x42000020 + i * 0x100000, len(data)) + data
        for b in data.rstrip(b"\0"):
            xor ^= b
    body += bytes(15 - len(body) % 16) + bytes([xor])
    if hash_appended:
        body += hashlib.sha256(body).digest()
    return bytes(body)


class OtaTestCase(Explains, GatewayTestCase):
    """A simulator that saves what POST /ota brings, and a gateway with [firmware] dir.
    Each test puts its images in place (image()) before the gateway starts (start())."""

    # no periodic re-read: the offered image must show up without one
    device_opts = {"stale_timeout": 4, "refresh_interval": 0}


    def setUp(self):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.fwdir = os.path.join(self.tmpdir.name, f"fw-{time.monotonic_ns()}")
        os.mkdir(self.fwdir)
        self.saved = os.path.join(self.tmpdir.name, f"ota-{time.monotonic_ns()}.bin")
        self.gw = None

    def tearDown(self):
        if self.gw:
            super().tearDown()

    def start(self, firmware_ini=None, extra_sim=()):
        self.mqtt = Mqtt(self.broker.port)
        self.sim = Sim(self.tmpdir.name, firmware=INSTALLED,
                       extra=("--ota-save", self.saved, "--reboot-time", "1", *extra_sim))
        ini = firmware_ini if firmware_ini is not None else f"[firmware]\ndir = {self.fwdir}\n"
        self.gw = self.start_gateway(extra_ini=ini)
        self.wait_online()

    def image(self, name, data, notes=None):
        path = os.path.join(self.fwdir, name)
        with open(path, "wb") as f:
            f.write(data)
        if notes is not None:
            with open(path[:-4] + ".txt", "w") as f:
                f.write(notes)
        return path

    def update_state(self, pred, since=0.0, timeout=15):
        return self.explain(lambda: self.wait_state(
            lambda s: s.get("firmware_update") is not None and pred(s["firmware_update"]),
            timeout=timeout, since=since))["firmware_update"]

    def event(self, event_type, since, timeout=20):
        return self.explain(lambda: self.mqtt.wait_json(
            self.t("/event"), lambda e: e["event_type"] == event_type, timeout, since))

    def install(self, payload="install"):
        t0 = time.monotonic()
        self.mqtt.publish(self.t("/set/firmware_update"), payload)
        return t0

    def received(self):
        with open(self.saved + ".json") as f:
            return json.load(f)

    def assert_nothing_sent(self):
        self.assertFalse(os.path.exists(self.saved), "the device received an upload")
        self.assertNotIn("POST /ota", self.sim_log())

    def sim_log(self):
        with open(self.sim.stderr, errors="replace") as f:
            return f.read()

    def progress(self, since):
        return [json.loads(p)["firmware_update"] for t, p, _, at in self.mqtt.all_payloads()
                if t == self.t("/update") and at >= since and p]


class TestOtaEntity(OtaTestCase):

    def test_discovery_and_state_offer_the_newest_image(self):
        self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4"), notes="Fixes the\nfan.\n")
        self.image("panda_breath-V1.0.10.bin", esp_image("V1.0.10"), notes="x" * 400)
        self.image("ptalk-9.9.9.bin", b"another family's")
        self.start()
        disc = self.mqtt.wait_json(f"homeassistant/device/dev1/config",
                                   lambda d: "firmware_update" in d.get("components", {}))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        comp = disc["components"]["firmware_update"]
        self.assertEqual((comp["platform"], comp["device_class"], comp["payload_install"]),
                         ("update", "firmware", "install"))
        self.assertIn("firmware_update_failed", disc["components"]["event"]["event_types"])
        self.assertIn("firmware_updated", disc["components"]["event"]["event_types"])
        u = self.update_state(lambda u: u["latest_version"] == "V1.0.10")
        self.assertEqual(u["installed_version"], INSTALLED)
        self.assertFalse(u["in_progress"])
        self.assertEqual(len(u["release_summary"]), 255)
        self.assertTrue(u["release_summary"].endswith("…"))
        # nothing installs on its own
        self.assert_nothing_sent()


    def test_an_image_put_in_later_is_offered_at_once(self):
        self.start()
        u = self.update_state(lambda u: True)
        self.assertEqual(u["latest_version"], INSTALLED)  # nothing to offer
        t0 = time.monotonic()
        path = self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4"), notes="New.")
        # the directory is read again every 5 s; no need to wait for a re-read
        u = self.update_state(lambda u: u["latest_version"] == "V1.0.4", since=t0)
        self.assertEqual(u["release_summary"], "New.")
        os.unlink(path)
        self.update_state(lambda u: u["latest_version"] == INSTALLED, since=time.monotonic())
        self.assert_nothing_sent()

    def test_a_retained_install_installs_nothing(self):
        self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4"))
        self.mqtt_early = Mqtt(self.broker.port)
        topic = f"{self.base}/dev1/set/firmware_update"
        self.mqtt_early.publish(topic, "install", retain=True)
        try:
            self.start()
            self.update_state(lambda u: u["latest_version"] == "V1.0.4")
            self.explain(lambda: wait_until(lambda: "retained command" in self.gw.log(), 10,
                                            what="the retained command refused"))
            self.assert_nothing_sent()
        finally:
            self.mqtt_early.publish(topic, "", retain=True)
            self.mqtt_early.close()


class TestOtaSuccess(OtaTestCase):

    def check_success(self, image_path, version, t0):
        with open(image_path, "rb") as f:
            image = f.read()
        ev = self.event("firmware_updated", t0, timeout=40)
        self.assertEqual(ev["version"], version)
        u = self.update_state(lambda u: u["installed_version"] == version
                              and not u["in_progress"], since=t0)
        self.assertEqual(u["latest_version"], version)
        # the device got exactly the file, with its own page's headers
        with open(self.saved, "rb") as f:
            self.assertEqual(f.read(), image)
        got = self.received()
        self.assertEqual(got["content_type"], "application/octet-stream;charset=UTF-8")
        self.assertEqual(got["ota_type"], "ota_fw")
        self.assertEqual((got["content_length"], got["bytes"]), (len(image), len(image)))
        self.assertIsNone(got["refused"])
        self.assertEqual(got["sha256"], hashlib.sha256(image).hexdigest())
        self.assertEqual(self.sim_log().count("POST /ota"), 1)
        # progress as it went, never backwards
        seen = self.progress(t0)
        numbers = [u["update_percentage"] for u in seen
                   if u["in_progress"] and u["update_percentage"] is not None]
        self.assertEqual(numbers, sorted(numbers))
        self.assertIn(100, numbers)
        self.assertGreater(len(set(numbers)), 3)
        self.assertTrue(any(u["in_progress"] for u in seen))

    def test_update_installs_the_image_byte_for_byte(self):
        path = self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4", payload=600 * 1024))
        self.start()
        self.update_state(lambda u: u["latest_version"] == "V1.0.4")
        t0 = self.install()
        self.check_success(path, "V1.0.4", t0)
        self.event("device_rebooted", t0)
        # nothing newer now: a second install is refused and sends nothing more
        t1 = self.install()
        self.assertIn("not newer", self.event("firmware_update_failed", t1)["reason"])
        self.assertEqual(self.sim_log().count("POST /ota"), 1)

    def test_image_without_appended_digest(self):
        path = self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4", hash_appended=False))
        self.start()
        self.update_state(lambda u: u["latest_version"] == "V1.0.4")
        self.check_success(path, "V1.0.4", self.install())

    def test_old_key_dialin_firmware_dir(self):
        path = self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4"))
        self.start(firmware_ini=f"[dialin]\nfirmware_dir = {self.fwdir}\n")
        self.assertIn("[dialin] firmware_dir is deprecated", self.gw.log())
        self.update_state(lambda u: u["latest_version"] == "V1.0.4")
        self.check_success(path, "V1.0.4", self.install())

    def test_reinstall_of_the_installed_version(self):
        path = self.image(f"panda_breath-{INSTALLED}.bin", esp_image(INSTALLED))
        self.start()
        self.update_state(lambda u: u["latest_version"] == INSTALLED)
        t0 = self.install()
        ev = self.event("firmware_update_failed", t0)
        self.assertEqual(ev["stage"], "refused")
        self.assertIn("reinstall", ev["reason"])
        self.assert_nothing_sent()
        self.check_success(path, INSTALLED, self.install("reinstall"))


class TestOtaRefusals(OtaTestCase):
    """Each refusal: firmware_update_failed with the reason, nothing sent, the entity back
    to not in progress."""

    def refused(self, stage, reason, setup=None, image=None):
        self.image("panda_breath-V1.0.4.bin", image or esp_image("V1.0.4"))
        self.start()
        self.update_state(lambda u: u["latest_version"] == "V1.0.4")
        if setup:
            setup()
        t0 = self.install()
        ev = self.event("firmware_update_failed", t0)
        self.assertEqual(ev["stage"], stage, ev)
        self.assertIn(reason, ev["reason"])
        # (a refusal before the check publishes nothing new: the state never changed)
        u = self.update_state(lambda u: not u["in_progress"])
        self.assertEqual(u["installed_version"], INSTALLED)
        self.assertIn(reason, self.gw.log())
        # give a wrong upload every chance to show up
        wait_until(lambda: "firmware update refused" in self.gw.log()
                   or "firmware update failed" in self.gw.log(), 5)
        self.assert_nothing_sent()

    def switch_on(self, field):
        def on():
            self.mqtt.publish(self.t(f"/set/{field}"), "ON")
            self.explain(lambda: self.wait_state(lambda s: s[field] == "ON", timeout=20))
        return on

    def test_refused_while_heating(self):
        self.refused("refused", "heating or drying", self.switch_on("power"))

    def test_refused_while_drying(self):
        self.refused("refused", "heating or drying", self.switch_on("drying"))

    def test_truncated_image(self):
        self.refused("check", "truncated", image=esp_image("V1.0.4")[:-100])

    def test_image_for_another_chip(self):
        self.refused("check", "built for ESP32 (chip id 0)", image=esp_image("V1.0.4", chip=0))

    def test_image_with_a_bad_digest(self):
        img = bytearray(esp_image("V1.0.4"))
        img[-1] ^= 0xFF
        self.refused("check", "SHA-256 does not match", image=bytes(img))

    def test_oversized_image(self):
        self.refused("check", "larger than", image=esp_image("V1.0.4", zeros=OTA_MAX))


class TestOtaFailures(OtaTestCase):

    def failed(self, mode, stage, reason):
        self.image("panda_breath-V1.0.4.bin", esp_image("V1.0.4", payload=600 * 1024))
        self.start()
        self.sim.control(f"ota {mode}")
        self.update_state(lambda u: u["latest_version"] == "V1.0.4")
        t0 = self.install()
        ev = self.event("firmware_update_failed", t0, timeout=60)
        self.assertEqual(ev["stage"], stage, ev)
        self.assertIn(reason, ev["reason"])
        self.assertEqual(ev["version"], "V1.0.4")
        # the entity shows what the device reports: still the old version, offered the new
        u = self.update_state(lambda u: not u["in_progress"], since=t0)
        self.assertEqual((u["installed_version"], u["latest_version"]), (INSTALLED, "V1.0.4"))
        self.wait_online()
        self.explain(lambda: self.wait_state(lambda s: s["firmware_version"] == INSTALLED,
                                             since=t0))
        return ev

    def test_device_refuses_the_image(self):
        self.failed("refuse", "install", "refused the image")
        self.assertEqual(self.received()["refused"], "refused (control: ota refuse)")

    def test_device_goes_away_during_the_upload(self):
        self.failed("drop", "upload", "")
        self.assertLess(os.path.getsize(self.saved), len(esp_image("V1.0.4", payload=600 * 1024)))

    def test_device_stops_reading_the_upload(self):
        # the time bound: 30 s without a byte going out or coming in
        self.failed("stall", "upload", "nothing sent or received for 30 s")

    def test_device_comes_back_on_its_old_version(self):
        self.failed("old", "confirm", f"came back on firmware {INSTALLED}, not V1.0.4")
        self.assertIsNone(self.received()["refused"])


if __name__ == "__main__":
    unittest.main()
