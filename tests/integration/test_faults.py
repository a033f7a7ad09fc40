"""Faults on the device side survived: device lost, frozen, rebooted and dropped; a
device that accepts TCP but never answers the upgrade. (The MQTT side, broker and the
gateway's own end: test_faults_mqtt.py.)

Each fault is repeated (harness.FAULT_REPEATS) and after every repetition the gateway
must be back where it was (harness.RecoveryChecks.assert_recovered): availability, a
fresh state, valid discovery, bridge/info listing the device once, the fd count back to
what it was before the fault; and RSS must not grow with the repetitions."""
import socket
import threading
import time
import unittest

from harness import FaultTestCase, Sim, wait_until


class DeviceFaults(FaultTestCase):
    def went_offline(self, since, timeout=10):
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", timeout, since)
        return time.monotonic()

    def test_device_lost_and_back(self):
        self.wait_online()
        port = self.sim.port

        def fault():
            since = time.monotonic()
            self.sim.stop()
            back = self.went_offline(since)
            self.sim = Sim(self.tmpdir.name, port=port)
            return back
        self.survive(fault)
        self.assertIn("link lost", self.gw.log())
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.3")

    def test_frozen_device_goes_offline_after_staleness(self):
        self.wait_online()

        def fault():
            since = time.monotonic()
            self.sim.control("freeze")
            back = self.went_offline(since, timeout=15)
            self.sim.control("thaw")
            return back
        self.survive(fault)
        self.assertIn("no data for 4 s", self.gw.log())

    def test_device_reboot(self):
        self.wait_online()

        def fault():
            since = time.monotonic()
            self.sim.control("reboot")
            return self.went_offline(since)
        self.survive(fault)

    def test_dropped_connection_reconnects(self):
        self.wait_online()

        def fault():
            since = time.monotonic()
            self.sim.control("drop")
            return self.went_offline(since)
        self.survive(fault)


class SilentServer:
    """Accepts TCP and never answers the WebSocket upgrade."""

    def __init__(self, port=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.stopping = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept(): close() alone would not
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()


class UpgradeNeverAnswered(FaultTestCase):
    HUNG = ("upgrade was not answered", "no upgrade within")

    def hangs_seen(self):
        log = self.gw.log()
        return sum(log.count(h) for h in self.HUNG)

    def test_retries_when_upgrade_hangs(self):
        """The device's port answers TCP but never the upgrade: the attempt is given up
        (10 s), the device stays offline, and the next attempt reaches it again."""
        self.wait_online()
        port = self.sim.port

        def fault():
            since = time.monotonic()
            hangs = self.hangs_seen()
            self.sim.stop()
            silent = SilentServer(port)
            try:
                self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", 10, since)
                wait_until(lambda: silent.accepted >= 1, 10, what="a connection attempt")
                wait_until(lambda: self.hangs_seen() > hangs, 20,
                           what="the hung upgrade given up")
                self.assertEqual(self.mqtt.last(self.t("/availability")), "offline")
            finally:
                silent.close()
            back = time.monotonic()
            self.sim = Sim(self.tmpdir.name, port=port)
            return back
        self.survive(fault, timeout=40)


if __name__ == "__main__":
    unittest.main()
