"""Faults on the MQTT side survived: broker restarted and frozen; the gateway stopped
cleanly (offline published, exit 0) and killed (the broker publishes the Will).

Each broker fault is repeated (harness.FAULT_REPEATS) and after every repetition the
gateway must be back where it was (harness.RecoveryChecks.assert_recovered):
availability, a fresh state, valid discovery, bridge/info listing the device once, the
fd count back to what it was before the fault; and RSS must not grow with the
repetitions. A stopped gateway is checked through what it left on the broker and through
the gateway started after it."""
import signal
import time
import unittest

from harness import FaultTestCase, Mqtt, wait_until


class BrokerFaults(FaultTestCase):
    def test_broker_restart(self):
        self.wait_online()

        def fault():
            self.mqtt.close()
            self.broker.stop()
            time.sleep(1)
            since = time.monotonic()
            self.broker.start()
            self.mqtt = Mqtt(self.broker.port)
            # persistence is off: everything seen now was published again by the gateway
            self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "online", timeout=40)
            return since
        self.survive(fault)
        self.wait_state(lambda s: s["firmware_version"] == "V1.0.3", timeout=10)
        # and commands work again
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set/power"), "ON")
        self.assertEqual(self.new_frames(before), [{"settings": {"work_on": True}}])

    def test_broker_frozen_and_resumed(self):
        self.wait_online()
        powers = iter(["ON", "OFF"] * 10)

        def fault():
            self.broker.pause()
            time.sleep(3)
            self.broker.resume()
            since = time.monotonic()
            before = len(self.sim.frames())
            wait_until(lambda: self.gw.alive(), 1)
            power = next(powers)
            self.mqtt.publish(self.t("/set/power"), power)
            self.assertEqual(self.new_frames(before, timeout=30),
                             [{"settings": {"work_on": power == "ON"}}])
            self.wait_state(lambda s: s["power"] == power, since=since, timeout=20)
            return since
        self.survive(fault)


class Stopping(FaultTestCase):
    """The process is gone: what it left on the broker is checked, then a restarted
    gateway must serve the device once, online, with as many fds as the first one."""

    def test_sigterm_is_clean(self):
        self.wait_online()
        baseline = self.fault_baseline()
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
        # and both stay for whoever subscribes later (Home Assistant restarting)
        self.assertEqual(self.retained(f"{self.base}/bridge/state"), "offline")
        self.assertEqual(self.retained(self.t("/availability")), "offline")
        self.restart_and_check(baseline)

    def test_sigkill_leaves_the_will(self):
        self.wait_online()
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "online")
        baseline = self.fault_baseline()
        since = time.monotonic()
        self.gw.proc.kill()
        self.gw.proc.wait(5)
        # keepalive is 5 s: the broker notices the dead socket at once on loopback
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "offline", timeout=15,
                       since=since)
        self.assertEqual(self.retained(f"{self.base}/bridge/state"), "offline")
        self.restart_and_check(baseline)

    def retained(self, topic):
        """What a client subscribing now is given on topic: the retained message."""
        late = Mqtt(self.broker.port, subscribe=topic)
        try:
            late.wait(topic, timeout=5)
            _, payload, retain, _ = late.on(topic)[-1]
            self.assertTrue(retain, f"{topic}: {payload!r} is not retained")
            return payload
        finally:
            late.close()

    def restart_and_check(self, baseline):
        since = time.monotonic()
        self.gw = self.start_gateway()
        self.wait_online(since=since)
        self.assert_recovered(baseline, since=since)


if __name__ == "__main__":
    unittest.main()
