"""Finding devices with Avahi: a real avahi-daemon on the system D-Bus, simulators that
announce themselves with --mdns, a real web server beside them, a real mosquitto.

tools/avahi-up.sh starts D-Bus and avahi-daemon when they are not running (as root, with
a loopback-only configuration); these tests stop and restart the daemon, so they take it
over for their duration. Every service name and MAC is unique to the test, so services
announced by anything else on the machine are never mistaken for ours."""
import http.server
import json
import os
import threading
import time
import unittest

from harness import (FAULT_SANITIZER_ENV, Avahi, Broker, Gateway, Mqtt, Publish,
                     RecoveryChecks, Sim, wait_until)


class Foreign:
    """A web server that is not a device: answers every request with 404, counts them."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_error(404)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class MdnsTest(RecoveryChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = Avahi.up()
        if why:
            raise unittest.SkipTest(f"avahi-daemon cannot run here: {why}")
        import tempfile
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-mdns-")
        cls.broker = Broker(cls.tmpdir.name)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.tmpdir.cleanup()
        Avahi.up()

    def setUp(self):
        self.tag = os.urandom(3).hex()
        self.base = f"p2m{self.tag}"
        self.prefix = f"ha{self.tag}"
        self.mqtt = Mqtt(self.broker.port)
        self.stoppers = []
        self.own_ids = set()  # the devices this test's simulators are
        self.gw = None

    def tearDown(self):
        try:
            if self.gw:
                self.gw.assert_stopped_cleanly(self)
        finally:
            for stop in reversed(self.stoppers):
                stop()
            self.mqtt.close()
            Avahi.up()

    # helpers
    def sim(self, label, mac=None, extra=()):
        mac = mac or ("0A" + os.urandom(5).hex().upper())
        # the firmware names its service after its hostname; both carry the label here
        sim = Sim(self.tmpdir.name,
                  extra=["--mac", mac, "--mdns", f"Panda {self.tag} {label}",
                         "--hostname", f"Panda-{self.tag}-{label}", *extra])
        self.stoppers.append(sim.stop)
        self.own_ids.add(f"panda_breath_{mac.lower()}")
        return sim, f"panda_breath_{mac.lower()}"

    def gateway(self, devices=None, sanitizer_env=None):
        self.gw = Gateway(self.tmpdir.name, self.broker.port, devices or {}, base=self.base,
                          prefix=self.prefix, mdns=True, sanitizer_env=sanitizer_env)
        return self.gw

    def avail(self, dev_id):
        return f"{self.base}/{dev_id}/availability"

    def with_log(self, wait):
        try:
            return wait()
        except AssertionError as e:
            raise AssertionError(f"{e}; bridge/info: "
                                 f"{self.mqtt.last(self.base + '/bridge/info')}; gateway log:\n"
                                 f"{self.gw.log()[-4000:] if self.gw else ''}") from None

    def wait_online(self, dev_id, timeout=20, since=0.0):
        self.with_log(lambda: self.mqtt.wait(self.avail(dev_id), lambda p: p == "online",
                                             timeout, since))

    def wait_info(self, pred, timeout=20):
        return self.with_log(lambda: self.mqtt.wait_json(f"{self.base}/bridge/info", pred,
                                                         timeout))

    def ids_in_info(self, info, configured=()):
        """The devices in bridge/info that this test made (its simulators' and the
        configured ones): avahi-daemon is machine-wide, so the gateway may also serve
        simulators that other tests announce at the same time."""
        return [d["id"] for d in info["devices"]
                if d["id"] in self.own_ids or d["id"] in configured]

    def discovery_topics(self):
        """Discovery topics whose latest payload is a config (not a removal) of a device
        of this test: avahi-daemon is machine-wide, so the gateway also finds simulators
        that other tests (another test class under ctest -j, another checkout's run)
        announce at the same time; everything this test announces carries its tag. Not
        the gateway's own device (docs/SERVICE.md)."""
        last = {t: p for t, p, _, _ in self.mqtt.all_payloads()
                if t.startswith(f"{self.prefix}/device/")
                and t != f"{self.prefix}/device/{self.base}_bridge/config"}
        return sorted(t for t, p in last.items() if p and self.tag in p)

    def warnings(self):
        return [line for line in self.gw.log().splitlines() if line.startswith("warning:")]

    # tests
    def test_two_devices_found_and_a_foreign_web_server_ignored(self):
        foreign = Foreign()
        self.stoppers.append(foreign.stop)
        self.stoppers.append(Publish(f"Web {self.tag}", foreign.port).stop)
        _, a = self.sim("A")
        _, b = self.sim("B")
        self.gateway()

        self.wait_online(a)
        self.wait_online(b)
        info = self.wait_info(lambda i: {a, b} <= set(self.ids_in_info(i)))
        for dev_id, label in ((a, "A"), (b, "B")):
            entry = [d for d in info["devices"] if d["id"] == dev_id]
            self.assertEqual(len(entry), 1, info)
            self.assertEqual(entry[0]["source"], "mdns")
            disc = self.mqtt.wait_json(f"{self.prefix}/device/{dev_id}/config")
            # a device without a [device] name is called by its hostname
            self.assertEqual(disc["device"]["name"], f"Panda-{self.tag}-{label}")
        self.assertEqual(self.discovery_topics(),
                         sorted(f"{self.prefix}/device/{i}/config" for i in (a, b)))

        # The web server was asked once for /ws, and is left alone from then on.
        wait_until(lambda: foreign.hits, 15, what="the web server to be probed")
        time.sleep(3)
        self.assertEqual(foreign.hits, ["/ws"])
        self.assertFalse([w for w in self.warnings() if f"Web {self.tag}" in w],
                         "the foreign web server must be rejected quietly")
        self.assertNotIn(str(foreign.port), json.dumps(self.mqtt.last_json(
            f"{self.base}/bridge/info")))

    def test_address_change_is_followed_not_duplicated(self):
        mac = "0B" + os.urandom(5).hex().upper()
        first, dev_id = self.sim("Moving", mac=mac)
        self.gateway()
        self.wait_online(dev_id)
        self.wait_info(lambda i: any(d["id"] == dev_id and d["host"] == "127.0.0.1"
                                     for d in i["devices"]))

        first.control("quit")
        first.proc.wait(10)
        moved_at = time.monotonic()
        self.sim("Moving", mac=mac,
                 extra=["--host", "127.0.0.2", "--mdns-host", f"p{self.tag}.local"])
        info = self.wait_info(lambda i: any(d["id"] == dev_id and d["host"] == "127.0.0.2"
                                            and d["online"] for d in i["devices"]))
        self.wait_online(dev_id, since=moved_at)
        self.assertEqual(self.ids_in_info(info).count(dev_id), 1, info)
        self.assertEqual(self.discovery_topics(), [f"{self.prefix}/device/{dev_id}/config"])
        self.assertIn(f"device {dev_id}: moved from 127.0.0.1:", self.gw.log())

    def test_avahi_daemon_restart_survived(self):
        """avahi-daemon restarted (FAULT_REPEATS times): the devices stay online, are
        found again and served once each, no fd or memory is kept from the old client,
        and a device announced afterwards is found."""
        _, a = self.sim("Before")
        _, b = self.sim("Beside")
        self.gateway(sanitizer_env=FAULT_SANITIZER_ENV)
        self.wait_online(a)
        self.wait_online(b)
        self.wait_info(lambda i: {a, b} <= set(self.ids_in_info(i)))
        online_at = time.monotonic()
        restarts = 0

        def confirmed(label):  # times the probe found the service to be a device
            return sum(1 for line in self.gw.log().splitlines()
                       if f"mdns: 'Panda {self.tag} {label}' at " in line and " is a " in line)

        def fault():
            nonlocal restarts
            seen = {label: confirmed(label) for label in ("Before", "Beside")}
            self.assertIsNone(Avahi.up(restart=True))
            restarts += 1
            self.with_log(lambda: wait_until(
                lambda: self.gw.log().count("mdns: connected to avahi-daemon") == restarts + 1,
                30, what="the gateway back on avahi-daemon"))
            # both services browsed, probed and matched to the devices already served
            self.with_log(lambda: wait_until(
                lambda: all(confirmed(label) > n for label, n in seen.items()), 30,
                what="both devices found again"))
            return None  # the links stayed up: no fresh state is due
        self.survive(fault, ids=(a, b), only=False)

        offline = [m for dev_id in (a, b) for m in self.mqtt.on(self.avail(dev_id))
                   if m[1] == "offline" and m[3] >= online_at]
        self.assertEqual(offline, [], "the devices must stay online while avahi restarts")
        _, c = self.sim("After")
        self.wait_online(c, timeout=30)
        log = self.gw.log()
        self.assertEqual(log.count("mdns: lost avahi-daemon"), restarts, log)
        self.assertEqual(log.count("mdns: connected to avahi-daemon"), restarts + 1, log)
        info = self.wait_info(lambda i: {a, b, c} <= set(self.ids_in_info(i)))
        for dev_id in (a, b, c):
            self.assertEqual(self.ids_in_info(info).count(dev_id), 1, info)

    def test_starts_without_avahi_and_picks_it_up_later(self):
        Avahi.stop()
        static = Sim(self.tmpdir.name)
        self.stoppers.append(static.stop)
        self.gateway({"garage": {"host": "127.0.0.1", "port": static.port}})
        self.wait_online("garage")
        wait_until(lambda: "mdns:" in self.gw.log(), 10, what="the mdns log line")
        self.assertTrue(self.gw.alive())

        self.assertIsNone(Avahi.up())
        _, found = self.sim("Late")
        self.wait_online(found, timeout=30)
        mdns_warnings = [w for w in self.warnings() if "mdns:" in w]
        self.assertEqual(len(mdns_warnings), 1, mdns_warnings)
        self.assertIn("static devices are served meanwhile", mdns_warnings[0])

    def test_record_gone_keeps_device_until_its_link_goes_quiet(self):
        mac = "0C" + os.urandom(5).hex().upper()
        dev_id = f"panda_breath_{mac.lower()}"
        # A section without host names a device that discovery finds.
        self.gateway({dev_id: {"name": "Garage heater", "stale_timeout": 3}})
        sim, _ = self.sim("Quiet", mac=mac)
        self.wait_online(dev_id)
        disc = self.mqtt.wait_json(f"{self.prefix}/device/{dev_id}/config")
        self.assertEqual(disc["device"]["name"], "Garage heater")

        gone_at = time.monotonic()
        sim.control("mdns off")
        time.sleep(4)  # longer than stale_timeout: the link still talks, so it stays
        self.assertEqual([m for m in self.mqtt.on(self.avail(dev_id))
                          if m[1] == "offline" and m[3] >= gone_at], [])

        quiet_at = time.monotonic()
        sim.control("freeze")
        self.mqtt.wait(self.avail(dev_id), lambda p: p == "offline", 15, since=quiet_at)
        back_at = time.monotonic()
        sim.control("thaw")
        sim.control("mdns on")
        self.wait_online(dev_id, timeout=30, since=back_at)

    def test_static_local_name_resolved_through_avahi_and_not_duplicated(self):
        host = f"p{self.tag}.local"
        sim, hw_id = self.sim("Named", extra=["--host", "127.0.0.2", "--mdns-host", host])
        self.gateway({"garage": {"host": host, "port": sim.port}})
        self.wait_online("garage")
        info = self.wait_info(lambda i: any(d["id"] == "garage" and d["host"] == "127.0.0.2"
                                            for d in i["devices"]))
        # The browse finds the same heater: it is served once, as the configured device.
        time.sleep(3)
        info = self.mqtt.last_json(f"{self.base}/bridge/info")
        self.assertEqual(self.ids_in_info(info, configured=("garage",)), ["garage"], info)
        self.assertEqual([d["source"] for d in info["devices"] if d["id"] == "garage"],
                         ["config"])
        self.assertEqual(self.discovery_topics(), [f"{self.prefix}/device/garage/config"])


if __name__ == "__main__":
    unittest.main()
