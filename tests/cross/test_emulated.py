"""The daemon of another architecture, run under qemu-user, against native peers.

tools/test-cross.sh runs this (through ctest, in the cross build) with P2M_GATEWAY set to
the daemon of the arm64 (or armhf) Debian package and P2M_EMULATOR to qemu-aarch64-static
(qemu-arm-static); P2M_BUILD_DIR is the native build, whose simulator plays the device.
The mosquitto, the avahi-daemon and the simulator are this machine's own, native.

Shown here: the emulated daemon is really of the other architecture (its ELF header), finds
the simulator through the real avahi-daemon (DNS-SD over the system D-Bus, no address in
its configuration), publishes discovery that Home Assistant's schemas accept (strict),
availability and the device's state, carries a command to the device as the proven
frames, and stops cleanly on SIGTERM (exit 0, offline retained). Every wait is bounded and
generous: emulation and a busy machine make everything slower, never different.
Without P2M_EMULATOR it runs the native daemon the same way."""
import json
import os
import platform
import signal
import struct
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import (EMULATOR, GATEWAY, Avahi, Broker, Explains, Gateway, Mqtt,  # noqa: E402
                     Sim, wait_until)
import ha_schema  # noqa: E402

TIMEOUT = 60  # seconds for any one condition
# ELF e_machine values
MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x28: "arm"}


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return MACHINES.get(struct.unpack_from("<H", head, 18)[0], "other")


class EmulatedDaemon(Explains, unittest.TestCase):
    """One broker, one simulator announced over DNS-SD, one (emulated) gateway for the
    class; the tests run in name order against it."""

    explain_tail = 4000

    @classmethod
    def setUpClass(cls):
        # Start avahi-daemon (loopback only) if none runs; a running one is used as it is.
        why = Avahi.up(as_is=True, timeout=60)
        if why:
            raise unittest.SkipTest(f"avahi-daemon cannot run here: {why}")
        # each thing started is stopped by a class cleanup, even when setUpClass fails later
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-emulated-")
        cls.addClassCleanup(cls.tmpdir.cleanup)
        cls.tag = os.urandom(3).hex()
        cls.base = f"p2m{cls.tag}"
        cls.prefix = f"ha{cls.tag}"
        mac = "0C" + os.urandom(5).hex().upper()
        cls.dev = f"panda_breath_{mac.lower()}"
        cls.broker = Broker(cls.tmpdir.name)
        cls.addClassCleanup(cls.broker.stop)
        cls.mqtt = Mqtt(cls.broker.port)
        cls.addClassCleanup(cls.mqtt.close)
        # the firmware names its service after its hostname, which names the device
        cls.sim = Sim(cls.tmpdir.name, extra=["--mac", mac, "--mdns", f"Emulated {cls.tag}",
                                              "--hostname", f"Emulated-{cls.tag}"])
        cls.addClassCleanup(cls.sim.stop)
        cls.started = time.monotonic()
        cls.gw = Gateway(cls.tmpdir.name, cls.broker.port, {}, base=cls.base,
                         prefix=cls.prefix, mdns=True)
        cls.addClassCleanup(lambda: cls.gw.alive() and cls.gw.stop(signal.SIGKILL))

    def t(self, suffix=""):
        return f"{self.base}/{self.dev}{suffix}"

    def test_0_the_daemon_is_of_the_emulated_architecture(self):
        machine = elf_machine(GATEWAY)
        print(f"\n  daemon {GATEWAY}: {machine}, run with {EMULATOR or 'no emulator'}",
              file=sys.stderr)
        if EMULATOR:
            self.assertNotEqual(machine, platform.machine(),
                                "P2M_EMULATOR is set but the daemon is native")
        self.assertTrue(self.gw.alive(), self.gw.log()[-3000:])

    def test_1_found_through_dns_sd_with_valid_discovery(self):
        info = self.explain(lambda: self.mqtt.wait_json(
            f"{self.base}/bridge/info",
            lambda i: any(d["id"] == self.dev and d["online"] for d in i["devices"]),
            TIMEOUT))
        entry = [d for d in info["devices"] if d["id"] == self.dev]
        self.assertEqual(len(entry), 1, info)
        self.assertEqual(entry[0]["source"], "mdns")
        print(f"  found and online {time.monotonic() - self.started:.1f} s after start",
              file=sys.stderr)
        topic = f"{self.prefix}/device/{self.dev}/config"
        disc = self.explain(lambda: self.mqtt.wait_json(
            topic, lambda d: d["device"].get("sw_version") == "V1.0.3", TIMEOUT))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(ha_schema.validate_topic(topic, prefix=self.prefix), [])
        # a device without a [device] name is called by the name it gives itself
        self.assertEqual(disc["device"]["name"], f"Emulated-{self.tag}")
        self.assertEqual([a["topic"] for a in disc["availability"]],
                         [f"{self.base}/bridge/state", self.t("/availability")])
        retained = [m for m in self.mqtt.on(topic) if m[1]]
        self.assertTrue(retained, "no discovery")

    def test_2_availability_and_state(self):
        self.explain(lambda: self.mqtt.wait(self.t("/availability"), lambda p: p == "online",
                                            TIMEOUT))
        self.explain(lambda: self.mqtt.wait_json(
            self.t("/details"), lambda s: s["firmware_version"] == "V1.0.3", TIMEOUT))
        st = self.explain(lambda: self.mqtt.wait_json(self.t(), lambda s: "mode" in s,
                                                      TIMEOUT))
        self.assertEqual(st["mode"], "off")
        self.assertIsInstance(st["chamber_temperature"], (int, float))
        self.sim.control('push {"settings":{"warehouse_temper":31.5}}')
        self.explain(lambda: self.mqtt.wait_json(
            self.t(), lambda s: s["chamber_temperature"] == 31.5, TIMEOUT))

    def test_3_a_command_reaches_the_device_in_the_proven_order(self):
        self.explain(lambda: self.mqtt.wait(self.t("/availability"), lambda p: p == "online",
                                            TIMEOUT))
        before = len(self.sim.frames())
        since = time.monotonic()
        self.mqtt.publish(self.t("/set"), '{"mode":"heat","target_temperature":45}')
        self.explain(lambda: wait_until(lambda: len(self.sim.frames()) >= before + 4, TIMEOUT,
                                        what="4 frames at the simulator"))
        frames = [json.loads(f) for f in self.sim.frames()[before:before + 4]]
        self.assertEqual(frames, [{"settings": {"isrunning": 0}}, {"settings": {"work_mode": 2}},
                                  {"settings": {"set_temp": 45}}, {"settings": {"work_on": True}}])
        st = self.explain(lambda: self.mqtt.wait_json(
            self.t(), lambda s: s["mode"] == "heat" and s["target_temperature"] == 45,
            TIMEOUT, since))
        self.assertEqual(st["power"], "ON")

    def test_4_clean_stop(self):
        since = time.monotonic()
        rc = self.gw.stop(timeout=TIMEOUT)
        self.assertEqual(rc, 0, self.gw.log()[-3000:])
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "offline", TIMEOUT, since)
        for bad in ("AddressSanitizer", "runtime error:", "qemu:"):
            self.assertNotIn(bad, self.gw.log())


if __name__ == "__main__":
    unittest.main()
