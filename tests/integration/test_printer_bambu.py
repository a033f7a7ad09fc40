"""Parts 2 and 3 of "Auto mode with any printer": a virtual Bambu printer for Panda
Breath firmware before V1.0.3, and one shared connection to a real Bambu printer.

Everything that speaks TLS or checks passwords is a stock mosquitto configured by
tools/panda2mqtt-bambu-setup (openssl certificates, mosquitto_passwd); the clients are
paho over TLS with user bblp, subscribing the way the Panda Breath does
(device/<serial>/report, a pushall on device/<serial>/request).
"""
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

import ha_schema
from harness import (WAIT_SCALE, Broker, Gateway, Mosquitto, Mqtt, free_port, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = os.path.join(HERE, "..", "..", "tools", "panda2mqtt-bambu-setup")
CODE = "Ac9Code31"  # the access code; must never reach a publish or a log line


class TlsClient:
    """A paho client over TLS as the Panda Breath connects: user bblp, no certificate check
    (the device does not verify the broker's certificate)."""

    def __init__(self, port, password=CODE, subscribe=None, user="bblp"):
        self.messages = []
        self.lock = threading.Lock()
        self.result = None
        self.done = threading.Event()
        self.client = paho.Client(client_id=f"panda-{time.monotonic_ns()}")
        self.client.tls_set(cert_reqs=ssl.CERT_NONE)
        self.client.tls_insecure_set(True)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message

        def on_connect(c, u, f, rc):
            self.result = rc
            if rc == 0 and subscribe:
                for t in subscribe:
                    c.subscribe(t, qos=0)
            self.done.set()
        self.client.on_connect = on_connect
        self.client.on_disconnect = lambda c, u, rc: self.done.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.done.wait(10 * WAIT_SCALE)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode("utf-8", "replace")))

    def topics(self):
        with self.lock:
            return [t for t, _ in self.messages]

    def on(self, topic):
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=0)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def run_setup(*args):
    run = subprocess.run(["sh", SETUP, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


class BambuTestCase(unittest.TestCase):
    serial = "01P00A0TEST0001"

    def setUp(self):
        # mosquitto drops to its own user before it reads the password file: that user
        # must reach the generated files
        self.tmp = tempfile.mkdtemp(prefix="p2m-test-bambu-")
        os.chmod(self.tmp, 0o755)
        self.code_file = os.path.join(self.tmp, "code")
        with open(self.code_file, "w") as f:
            f.write(CODE + "\n")
        os.chmod(self.code_file, 0o600)
        self.procs = []
        extra = self.prepare()
        self.main = Broker(self.tmp)
        self.procs.append(self.main)
        if extra:  # Broker writes its own configuration: add to it and start again
            self.main.stop()
            with open(self.main.conf, "a") as f:
                f.write(extra)
            self.main.start()
        self.watch = Mqtt(self.main.port)
        self.watch_sys = Mqtt(self.main.port, subscribe="$SYS/broker/connection/#")
        self.gw = None
        self.clients = []

    def prepare(self):
        """Before the main broker starts; returns lines for its configuration."""
        return ""

    def tearDown(self):
        try:
            if self.gw and self.gw.alive():
                self.gw.assert_stopped_cleanly(self, timeout=15, scaled=False)
        finally:
            for c in self.clients:
                c.close()
            self.watch.close()
            self.watch_sys.close()
            for p in reversed(self.procs):
                p.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_gateway(self, ini):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.gw = Gateway(self.tmp, self.main.port, {}, base=self.base, extra_ini=ini)

    def tls(self, port, **kw):
        c = TlsClient(port, **kw)
        self.clients.append(c)
        return c

    def assert_no_secret(self):
        self.assertNotIn(CODE, self.gw.log())
        for topic, payload, _, _ in self.watch.all_payloads():
            self.assertNotIn(CODE, payload, topic)


class VirtualBambuPrinter(BambuTestCase):
    """Part 2: the gateway's device/SN/report, served by the generated TLS mosquitto."""

    def test_panda_breath_reads_virtual_printer_over_tls(self):
        vp = os.path.join(self.tmp, "vp")
        port = free_port()
        run_setup("virtual-printer", "--serial", self.serial, "--out", vp, "--port", str(port),
                  "--listen", "127.0.0.1", "--broker", f"127.0.0.1:{self.main.port}",
                  "--access-code-file", self.code_file)
        for f, mode in (("passwd", 0o600), ("server.key", 0o600), ("ca.key", 0o600),
                        ("mosquitto.conf", 0o600), ("server.crt", 0o644)):
            self.assertEqual(os.stat(os.path.join(vp, f)).st_mode & 0o777, mode, f)
        with open(os.path.join(vp, "passwd")) as f:
            self.assertNotIn(CODE, f.read())  # hashed by mosquitto_passwd
        self.procs.append(Mosquitto(os.path.join(vp, "mosquitto.conf"),
                                    os.path.join(self.tmp, "vp.log"), [port]))
        self.start_gateway(
            "[printer]\nbed_temperature_topic = src/bed\nbed_target_topic = src/target\n"
            "print_state_topic = src/state\nha_device = false\n\n"
            f"[bambu_virtual]\nserial = {self.serial}\ninterval = 1\n")
        report = f"device/{self.serial}/report"
        request = f"device/{self.serial}/request"
        self.watch.wait(f"{self.base}/bridge/state", lambda p: p == "online")
        self.watch.publish("src/bed", "58.5", retain=True)
        self.watch.publish("src/target", "60", retain=True)
        self.watch.publish("src/state", "printing", retain=True)

        # wrong password, no password: refused
        self.assertEqual(self.tls(port, password="wrong").result, 5)
        self.assertEqual(self.tls(port, user=None).result, 5)

        panda = self.tls(port, subscribe=[report])
        self.assertEqual(panda.result, 0)
        snoop = self.tls(port, subscribe=["#"])  # the ACL lets bblp read the report only
        self.assertEqual(snoop.result, 0)

        def latest():
            for p in reversed(panda.on(report)):
                r = json.loads(p)["print"]
                if r.get("bed_temper") == 58.5:
                    return r
            return None
        r = wait_until(latest, 20, interval=0.1, what="a report through the TLS listener")
        self.assertEqual(r["bed_target_temper"], 60)
        self.assertEqual(r["gcode_state"], "RUNNING")

        # the device's pushall goes out to the gateway's broker and is answered at once
        seq = max(json.loads(p)["print"]["sequence_id"] for p in panda.on(report))
        panda.publish(request, '{"pushing":{"sequence_id":"0","command":"pushall"}}')
        self.watch.wait(request, lambda p: "pushall" in p)
        self.watch.publish("src/bed", "20", retain=True)
        wait_until(lambda: any(json.loads(p)["print"]["bed_temper"] == 20
                               for p in panda.on(report)), 10, what="the new bed value")
        self.assertGreater(max(json.loads(p)["print"]["sequence_id"]
                               for p in panda.on(report)), seq)

        # bblp may write nothing but the request
        panda.publish(f"device/{self.serial}/other", "x")
        panda.publish("homeassistant/status", "offline")
        time.sleep(1.5)
        self.assertEqual(set(snoop.topics()), {report})
        self.assertEqual(self.watch.on(f"device/{self.serial}/other"), [])
        self.assertEqual(self.watch.on("homeassistant/status"), [])
        self.assert_no_secret()


class SharedPrinterBridge(BambuTestCase):
    """Part 3: the generated bridge to a printer (a TLS mosquitto with user bblp standing
    in for it); the gateway shows the printer's entities from the bridged reports."""

    def prepare(self):
        sn = self.serial
        # the stand-in printer: certificate with CN = serial, user bblp + access code
        printer = os.path.join(self.tmp, "printer")
        pport = free_port()
        run_setup("virtual-printer", "--serial", sn, "--out", printer,
                  "--access-code-file", self.code_file)
        acl = os.path.join(printer, "printer.acl")
        with open(acl, "w") as f:
            f.write(f"user bblp\ntopic readwrite device/{sn}/#\n")
        os.chmod(acl, 0o644)
        conf = os.path.join(printer, "printer.conf")
        with open(conf, "w") as f:
            f.write("persistence false\nallow_anonymous false\n"
                    f"password_file {printer}/passwd\nacl_file {acl}\n"
                    f"listener {pport} 127.0.0.1\ncertfile {printer}/server.crt\n"
                    f"keyfile {printer}/server.key\n")
        self.printer_broker = Mosquitto(conf, os.path.join(self.tmp, "printer.log"), [pport])
        self.pport = pport

        # the generated bridge, included by a second mosquitto (the user's broker)
        bridge_dir = os.path.join(self.tmp, "bridge")
        run_setup("bridge", "--printer", "127.0.0.1", "--port", str(pport), "--serial", sn,
                  "--access-code-file", self.code_file, "--ca",
                  os.path.join(printer, "ca.crt"), "--out", bridge_dir)
        bconf = os.path.join(bridge_dir, f"bambu-bridge-{sn}.conf")
        self.assertEqual(os.stat(bconf).st_mode & 0o777, 0o600)
        with open(bconf) as f:
            text = f.read()
        for line in (f"address 127.0.0.1:{pport}", "remote_username bblp",
                     f"topic device/{sn}/report in 0", f"topic device/{sn}/request out 0",
                     "try_private false", "notifications false",
                     "bridge_attempt_unsubscribe false", "cleansession true",
                     "bridge_insecure true", "bridge_cafile /"):
            self.assertIn(line, text)
        return f"include_dir {bridge_dir}\n"

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.printer_broker.stop()

    def test_bridge_shares_one_printer_connection(self):
        sn, pport = self.serial, self.pport
        self.start_gateway(f"[printer]\nbambu_report_topic = device/{sn}/report\n"
                           "id = x1c\nname = X1 Carbon\n")
        # Home Assistant, the Panda Breath (bridged) and the gateway all on the one broker
        dev = self.tls(pport, subscribe=[f"device/{sn}/#"])  # the printer's side
        report = {"print": {"bed_temper": 60.5, "bed_target_temper": 60, "nozzle_temper": 219.5,
                            "nozzle_target_temper": 220, "gcode_state": "RUNNING",
                            "mc_percent": 12, "mc_remaining_time": 42,
                            "ams": {"ams": [{"id": "0", "tray": [{"id": "0"}] * 4}]},
                            "lights_report": [{"node": "chamber_light", "mode": "on"}],
                            "command": "push_status", "msg": 0, "sequence_id": "1"}}

        def bridged():  # the bridge connects on its own schedule: publish until it is up
            dev.publish(f"device/{sn}/report", json.dumps(report))
            return self.watch.on(f"device/{sn}/report")
        wait_until(bridged, 30, interval=0.5, what="the report bridged in")

        st = self.watch.wait_json(f"{self.base}/x1c", lambda s: s["bed_temperature"] == 60.5,
                                  timeout=15)
        self.assertEqual(st["print_state"], "RUNNING")
        self.assertEqual(st["nozzle_temperature"], 219.5)
        self.assertEqual(st["progress"], 12)
        # only the table's values are published, nothing else of the report
        self.assertNotIn("ams", json.dumps(st))
        self.assertNotIn("device", st)
        disc = self.watch.wait_json("homeassistant/device/x1c/config")
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(disc["device"]["name"], "X1 Carbon")
        self.watch.wait(f"{self.base}/x1c/availability", lambda p: p == "online")
        # an incremental report (Bambu P1 sends only what changed) is merged
        since = time.monotonic()
        dev.publish(f"device/{sn}/report", '{"print":{"bed_temper":61.0}}')
        st = self.watch.wait_json(f"{self.base}/x1c", lambda s: s["bed_temperature"] == 61.0,
                                  since=since)
        self.assertEqual(st["print_state"], "RUNNING")
        self.assertEqual(st["nozzle_temperature"], 219.5)

        # requests go out, through the same connection
        self.watch.publish(f"device/{sn}/request",
                           '{"pushing":{"sequence_id":"0","command":"pushall"}}')
        wait_until(lambda: dev.on(f"device/{sn}/request"), 10, what="the request at the printer")

        # nothing else crosses, either way
        self.watch.publish(f"device/{sn}/report", '{"print":{"from":"broker"}}')
        self.watch.publish(f"device/{sn}/other", "broker")
        self.watch.publish("homeassistant/status", "online")
        dev.publish(f"device/{sn}/other", "printer")
        time.sleep(2)
        self.assertFalse([p for p in dev.on(f"device/{sn}/report") if "broker" in p])
        # (the printer's side sees its own publishes: MQTT 3.1.1 has no "no local")
        self.assertEqual(dev.on(f"device/{sn}/other"), ["printer"])
        self.assertEqual([p for p in self.watch.on(f"device/{sn}/other") if p == "printer"], [])
        self.assertEqual(self.watch_sys.all_payloads(), [])  # notifications false
        self.assert_no_secret()

        # the printer's certificate is checked against --ca: a bridge made with another
        # CA never connects (only the hostname check is off)
        other = os.path.join(self.tmp, "other-ca")
        run_setup("virtual-printer", "--serial", "OTHER", "--out", other,
                  "--access-code-file", self.code_file)
        wrong_dir = os.path.join(self.tmp, "wrong")
        run_setup("bridge", "--printer", "127.0.0.1", "--port", str(pport), "--serial", sn,
                  "--access-code-file", self.code_file, "--ca",
                  os.path.join(other, "ca.crt"), "--out", wrong_dir)
        wport = free_port()
        wconf = os.path.join(self.tmp, "wrong.conf")
        with open(wconf, "w") as f:
            f.write(f"listener {wport} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"include_dir {wrong_dir}\n")
        wlog = os.path.join(self.tmp, "wrong.log")
        self.procs.append(Mosquitto(wconf, wlog, [wport]))
        wrong_watch = Mqtt(wport)
        try:
            for _ in range(8):
                dev.publish(f"device/{sn}/report", '{"print":{"bed_temper":99}}')
                time.sleep(0.5)
            self.assertEqual(wrong_watch.on(f"device/{sn}/report"), [])
        finally:
            wrong_watch.close()
        with open(wlog) as f:
            self.assertIn("certificate verify failed", f.read())


if __name__ == "__main__":
    unittest.main()
