"""MQTT over TLS, against a real mosquitto TLS listener with certificates made here.

The test makes a throwaway CA (and an unrelated second one) with the openssl command
line, a server certificate for localhost + 127.0.0.1 and one for localhost only, and
runs one mosquitto with three listeners on loopback: TLS with a password file (full
certificate), the same with the name-only certificate, and a plain anonymous one that
only the test's own observer uses. The daemon must verify the broker (CA and host
name) unless told `insecure = true`, authenticate with a password from the INI, the
environment or a password_file, say clearly why a connection fails, keep retrying
with backoff, and never publish or log the password or a device secret."""
import os
import socket
import tempfile
import time
import unittest

from harness import (SIM_SECRETS, TLS_VERIFY_FAILED, Gateway, Mqtt, Pki, Sim, TlsMosquitto,
                     free_port, mosquitto_passwd, wait_until)

USERNAME = "p2m-gateway"
# Distinctive, so that a leak anywhere is found by a plain substring search.
PASSWORD = "TlsPw-4c1e9b!x"
ENV_PW = "PANDA2MQTT_MQTT_PASSWORD"


class TlsBroker(TlsMosquitto):
    """The test's mosquitto: a TLS listener per server certificate of pki (full, and
    name-only), each wanting USERNAME and PASSWORD, and a plain anonymous listener for
    the test's observer."""

    def __init__(self, tmp, pki):
        self.tls_port, self.name_only_port = free_port(), free_port()
        passwd = os.path.join(tmp, "mosquitto.passwd")
        mosquitto_passwd(passwd, USERNAME, PASSWORD)
        super().__init__(tmp, pki.ca, [(self.tls_port, pki.server),
                                       (self.name_only_port, pki.server_name_only)],
                         free_port(), passwd=passwd)

    def client_source(self, client_id, offset=0):
        """Source of the last MQTT session of client_id with our username, or None."""
        return super().client_source(client_id, USERNAME, offset)


class TlsTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-tls-")
        cls.pki = Pki(cls.tmpdir.name)
        cls.broker = TlsBroker(cls.tmpdir.name, cls.pki)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.gateways = []
        self.mqtt = Mqtt(self.broker.plain_port)
        self.sim = Sim(self.tmpdir.name)

    def tearDown(self):
        try:
            for gw in self.gateways:
                gw.assert_stopped_cleanly(self)
        finally:
            self.sim.stop()
            self.mqtt.close()

    def gateway(self, env=None, **mqtt):
        """Start a gateway; mqtt holds [mqtt] keys (host, port, cafile, ...). The password
        comes from the INI unless env says otherwise: the machine's is never inherited."""
        n = len(self.gateways)
        mqtt = dict({"host": "localhost", "client_id": f"p2m-{self._testMethodName[5:25]}-{n}",
                     "tls": "true", "cafile": self.pki.ca, "username": USERNAME}, **mqtt)
        gw = Gateway(self.tmpdir.name, self.broker.tls_port,
                     {"dev1": {"host": "127.0.0.1", "port": self.sim.port, "name": "TLS heater",
                               "stale_timeout": 4, "refresh_interval": 5}},
                     base=f"tls{time.monotonic_ns() % 10**9}", mqtt=mqtt,
                     env=dict({ENV_PW: None}, **(env or {})))
        self.gateways.append(gw)
        return gw

    def bridge_states(self, gw):
        return [p for _, p, _, _ in self.mqtt.on(f"{gw.base}/bridge/state")]

    def wait_connected(self, gw, timeout=20):
        self.mqtt.wait(f"{gw.base}/bridge/state", lambda p: p == "online", timeout)
        source = wait_until(lambda: self.broker.client_source(gw.client_id), 10,
                            what=f"{gw.client_id} in the broker log")
        return source

    def assert_session_on(self, gw, port):
        """The broker accepted the gateway's session (client id, username) on port."""
        source = self.wait_connected(gw)
        self.assertIn(source, self.broker.connections(port),
                      f"{gw.client_id} did not connect through port {port}:\n"
                      f"{self.broker.text()[-3000:]}")

    def assert_refused_and_retried(self, gw, port, offset, window, attempts):
        """For window seconds the gateway gets no session; it logs why and retries."""
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            self.assertNotIn("online", self.bridge_states(gw), "connected anyway")
            self.assertTrue(gw.alive(), f"gateway died:\n{gw.log()[-3000:]}")
            time.sleep(0.2)
        self.assertIsNone(self.broker.client_source(gw.client_id, offset),
                          "the broker accepted an MQTT session")
        log = gw.log()
        with self.subTest("the reason is logged as a warning or error"):
            self.assertRegex(log, TLS_VERIFY_FAILED,
                             f"no warning/error line saying 'certificate verify failed':\n"
                             f"{log[-3000:]}")
        with self.subTest("retried"):
            tried = self.broker.tls_attempts(port, offset)
            self.assertGreaterEqual(tried, attempts,
                                    f"{tried} TLS connection attempt(s) in {window} s;"
                                    f" gateway log:\n{log[-3000:]}")


class Tls(TlsTestCase):
    def test_tls_with_ca_hostname_and_password(self):
        offset = len(self.broker.text())
        gw = self.gateway(password=PASSWORD)
        self.assert_session_on(gw, self.broker.tls_port)
        self.mqtt.wait(f"{gw.base}/dev1/availability", lambda p: p == "online", 15)
        # this gateway's discovery (not a retained one left by an earlier test)
        disc = self.mqtt.wait_json("homeassistant/device/dev1/config",
                                   lambda d: d["availability"][0]["topic"] ==
                                   f"{gw.base}/bridge/state"
                                   and d["device"].get("sw_version") == "V1.0.3", 15)
        self.assertIn("climate", disc["components"])
        st = self.mqtt.wait_state(f"{gw.base}/dev1", lambda s: s["firmware_version"], 15)
        self.assertEqual(st["mode"], "off")
        self.assertIn("mqtt: connected to localhost:", gw.log())
        self.assertIn("(TLS)", gw.log())
        # The listener the gateway used speaks TLS only: plain MQTT gets no CONNACK.
        connect = bytes([0x10, 14, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 2]) + b"pl"
        with socket.create_connection(("127.0.0.1", self.broker.tls_port), timeout=5) as s:
            s.sendall(connect)
            try:
                answer = s.recv(16)
            except (ConnectionResetError, socket.timeout):
                answer = b""
        self.assertFalse(answer.startswith(b"\x20"), "TLS listener answered plain MQTT")
        self.assertIsNotNone(self.broker.client_source(gw.client_id, offset))

    def test_wrong_ca_is_refused_logged_and_retried(self):
        offset = len(self.broker.text())
        gw = self.gateway(password=PASSWORD, cafile=self.pki.other_ca)
        # tried again (the backoff starts at 1 s; the count is not a timing target)
        self.assert_refused_and_retried(gw, self.broker.tls_port, offset, 8.5, 2)
        self.assertIn("unknown ca", self.broker.text()[offset:])
        self.assertEqual(gw.stop(), 0)

    def test_hostname_mismatch_refused_unless_insecure(self):
        # the certificate names localhost only; the gateway dials 127.0.0.1
        offset = len(self.broker.text())
        gw = self.gateway(password=PASSWORD, host="127.0.0.1",
                          port=self.broker.name_only_port)
        self.assert_refused_and_retried(gw, self.broker.name_only_port, offset, 8.5, 2)
        self.assertEqual(gw.stop(), 0)
        insecure = self.gateway(password=PASSWORD, host="127.0.0.1",
                                port=self.broker.name_only_port, insecure="true")
        self.assert_session_on(insecure, self.broker.name_only_port)


class Passwords(TlsTestCase):
    def test_password_from_environment_wins(self):
        # the INI's password is wrong: the environment's must be the one used. Also the
        # IP address SAN: 127.0.0.1 is verified against the full certificate.
        gw = self.gateway(env={ENV_PW: PASSWORD}, password="not-the-password",
                          host="127.0.0.1")
        self.assert_session_on(gw, self.broker.tls_port)
        self.assertNotIn("refused", gw.log())

    def test_password_file(self):
        path = os.path.join(self.tmpdir.name, "mqtt-password")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(PASSWORD + "\n")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        gw = self.gateway(password_file=path)
        self.assert_session_on(gw, self.broker.tls_port)
        self.assertNotIn("readable by every user", gw.log())

    def test_wrong_password_is_refused_logged_and_retried(self):
        wrong = "WrongPw-77d2a0"
        offset = len(self.broker.text())
        gw = self.gateway(password=wrong)
        line = (f"error: mqtt: broker localhost:{self.broker.tls_port} refused the "
                "connection: Connection Refused: not authorised.")
        wait_until(lambda: gw.log().count(line) >= 2, 10, what="two refusals, retried")
        self.assertNotIn("online", self.bridge_states(gw))
        self.assertTrue(gw.alive())
        self.assertIn("disconnected, not authorised", self.broker.text()[offset:])
        self.assertNotIn(wrong, gw.log())
        self.assertEqual(gw.stop(), 0)


class Secrets(TlsTestCase):
    def test_no_secret_in_any_publish_topic_or_log_line(self):
        gw = self.gateway(password=PASSWORD)
        self.assert_session_on(gw, self.broker.tls_port)
        t = f"{gw.base}/dev1"
        self.mqtt.wait(f"{t}/availability", lambda p: p == "online", 15)
        self.mqtt.wait_state(t, lambda s: s["firmware_version"], 15)
        typed = {"printer_access_code": "AccCode-31f7", "wifi_password": "WifiPw-c09e2d",
                 "hotspot_password": "HotspotPw-5a81"}
        since = time.monotonic()
        self.mqtt.publish(f"{t}/set", '{"mode":"heat","target_temperature":45}')
        self.mqtt.wait_json(t, lambda s: s["mode"] == "heat", 15, since)
        # the write-only secrets, used in the frames that need them
        self.mqtt.publish(f"{t}/set/scan_printers", "PRESS")
        self.mqtt.publish(f"{t}/set/scan_wifi", "PRESS")
        self.mqtt.wait_json("homeassistant/device/dev1/config",
                            lambda d: d["availability"][0]["topic"].startswith(gw.base)
                            and "Sim X1C" in d["components"]["printer"]["options"]
                            and "SimNet" in d["components"]["wifi_network"]["options"], 15)
        before = len(self.sim.frames())
        self.mqtt.publish(f"{t}/set", '{"printer":"Sim X1C","printer_access_code":"%s",'
                          '"printer_bind":"PRESS"}' % typed["printer_access_code"])
        self.mqtt.publish(f"{t}/set", '{"wifi_network":"SimNet","wifi_password":"%s",'
                          '"wifi_join":"PRESS"}' % typed["wifi_password"])
        self.mqtt.publish(f"{t}/set/hotspot_password", typed["hotspot_password"])
        wait_until(lambda: all(any(v in f for f in self.sim.frames()[before:])
                               for v in typed.values()), 10,
                   what="the typed secrets in frames at the simulator")
        # a dropped link and a re-read: every snapshot (with the device's secrets) again
        since = time.monotonic()
        self.sim.control("drop")
        self.mqtt.wait(f"{t}/availability", lambda p: p == "online", 15, since)
        self.mqtt.wait_json(t, lambda s: True, 15, since)
        self.assertEqual(gw.stop(), 0)
        self.mqtt.wait(f"{gw.base}/bridge/state", lambda p: p == "offline", 10)

        payloads = self.mqtt.all_payloads()
        self.assertGreater(len(payloads), 10)
        log = gw.log()
        command_topics = {f"{t}/set", *(f"{t}/set/{k}" for k in typed)}
        for secret in (PASSWORD, *SIM_SECRETS, *typed.values()):
            for topic, payload, _, _ in payloads:
                self.assertNotIn(secret, topic, "secret in a topic")
                if topic in command_topics:
                    continue  # what the test itself sent
                self.assertNotIn(secret, payload, f"secret published on {topic}")
            self.assertNotIn(secret, log, "secret in the gateway log")
        self.assertIn(f"(p2, c1, k5, u'{USERNAME}')", self.broker.text())


if __name__ == "__main__":
    unittest.main()
