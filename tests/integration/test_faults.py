"""Faults survived: device lost, frozen and back; a device that never answers the
upgrade; broker restarted and frozen; the gateway stopped cleanly and killed."""
import signal
import socket
import threading
import time
import unittest

from harness import GatewayTestCase, Sim, Mqtt, wait_until


class DeviceFaults(GatewayTestCase):
    def test_device_lost_and_back(self):
        self.wait_online()
        port = self.sim.port
        since = time.monotonic()
        self.sim.stop()
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", since=since)
        self.assertIn("link lost", self.gw.log())
        since = time.monotonic()
        self.sim = Sim(self.tmpdir.name, port=port)
        self.wait_online(timeout=40, since=since)
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.3", since=since)

    def test_frozen_device_goes_offline_after_staleness(self):
        self.wait_online()
        since = time.monotonic()
        self.sim.control("freeze")
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", timeout=15,
                       since=since)
        self.assertIn("no data for 4 s", self.gw.log())
        since = time.monotonic()
        self.sim.control("thaw")
        self.wait_online(timeout=40, since=since)

    def test_device_reboot(self):
        self.wait_online()
        since = time.monotonic()
        self.sim.control("reboot")
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", since=since)
        self.wait_online(timeout=40, since=since)

    def test_dropped_connection_reconnects(self):
        self.wait_online()
        since = time.monotonic()
        self.sim.control("drop")
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", since=since)
        self.wait_online(timeout=20, since=since)


class SilentServer:
    """Accepts TCP and never answers the WebSocket upgrade."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
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
        self.sock.close()
        for c in self.conns:
            c.close()


class UpgradeNeverAnswered(GatewayTestCase):
    def test_retries_when_upgrade_hangs(self):
        silent = SilentServer()
        try:
            self.gw.stop()
            self.gw = self.start_gateway_at(silent.port)
            wait_until(lambda: silent.accepted >= 2, 40, what="a second connection attempt")
            self.assertEqual(self.mqtt.last(self.t("/availability")), "offline")
            log = self.gw.log()
            self.assertTrue("upgrade was not answered" in log or "no upgrade within" in log,
                            log)
        finally:
            silent.close()

    def start_gateway_at(self, port):
        from harness import Gateway
        return Gateway(self.tmpdir.name, self.broker.port,
                       {"dev1": {"host": "127.0.0.1", "port": port, "stale_timeout": 4}},
                       base=self.base)


class BrokerFaults(GatewayTestCase):
    def test_broker_restart(self):
        self.wait_online()
        self.mqtt.close()
        self.broker.stop()
        time.sleep(1)
        self.broker.start()
        self.mqtt = Mqtt(self.broker.port)
        # persistence is off: everything seen now was published again by the gateway
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "online", timeout=40)
        self.mqtt.wait("homeassistant/device/dev1/config", timeout=10)
        self.wait_online(timeout=10)
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.3", timeout=10)
        # and commands work again
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set/power"), "ON")
        self.assertEqual(self.new_frames(before), [{"settings": {"work_on": True}}])

    def test_broker_frozen_and_resumed(self):
        self.wait_online()
        self.broker.pause()
        time.sleep(3)
        self.broker.resume()
        since = time.monotonic()
        before = len(self.sim.frames())
        wait_until(lambda: self.gw.alive(), 1)
        self.mqtt.publish(self.t("/set/power"), "ON")
        self.assertEqual(self.new_frames(before, timeout=30), [{"settings": {"work_on": True}}])
        self.wait_state(lambda s: s["power"] == "ON", since=since, timeout=20)


class Stopping(GatewayTestCase):
    def test_sigterm_is_clean(self):
        self.wait_online()
        since = time.monotonic()
        rc = self.gw.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "offline", since=since)
        self.mqtt.wait(self.t("/availability"), lambda p: p == "offline", since=since)
        self.assertIn("stopped", self.gw.log())
        self.gw.assert_clean_log(self)
        # the broker got a clean DISCONNECT, so no Will was needed: exactly one offline
        time.sleep(0.5)
        offline = [m for m in self.mqtt.on(f"{self.base}/bridge/state")
                   if m[1] == "offline" and m[3] >= since]
        self.assertEqual(len(offline), 1)
        self.restart_for_teardown()

    def test_sigkill_leaves_the_will(self):
        self.wait_online()
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "online")
        since = time.monotonic()
        self.gw.proc.kill()
        self.gw.proc.wait(5)
        # keepalive is 5 s: the broker notices the dead socket at once on loopback
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "offline", timeout=15,
                       since=since)
        self.restart_for_teardown()

    def restart_for_teardown(self):
        since = time.monotonic()
        self.gw = self.start_gateway()
        self.wait_online(since=since)


if __name__ == "__main__":
    unittest.main()
