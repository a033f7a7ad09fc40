"""Part 1 of "Auto mode with any printer": the virtual Moonraker.

The gateway serves Moonraker's GET /printer/info and /websocket JSON-RPC from a bed
temperature and print state it reads on MQTT (plain payloads, as Home Assistant's
statestream publishes them). The simulator plays a Panda Breath with firmware V1.0.3's
Klipper link (--printer-link): bound to the gateway only by the user's bind command, it
polls printer.objects.query every second and its Auto mode heats while the bed is at or
above its threshold. An independent JSON-RPC client (python3-websockets) checks the
answers, malformed input and the size cap.
"""
import asyncio
import json
import socket
import time
import unittest
import urllib.error
import urllib.request

import os

import ha_schema
from harness import SIM_SECRETS, GatewayTestCase, Sim, free_port, wait_until

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "panda_breath")

try:
    import websockets
except ImportError:  # Debian: python3-websockets (tools/install-deps.sh)
    websockets = None

BED = "statestream/sensor/printer_bed/state"
BED_TARGET = "statestream/sensor/printer_bed_target/state"
STATE = "statestream/sensor/printer_state/state"
NOZZLE = "statestream/printer/nozzle"


class MoonrakerCase(GatewayTestCase):
    """A simulator with the Klipper link, and a gateway serving the virtual Moonraker."""
    device_opts = {"stale_timeout": 10, "refresh_interval": 5}
    printer_ini = ""

    def setUp(self):
        self.mport = free_port()
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        from harness import Mqtt
        self.mqtt = Mqtt(self.broker.port)
        for topic in (BED, BED_TARGET, STATE, NOZZLE):  # nothing retained from a last test
            self.mqtt.publish(topic, "", retain=True)
        self.sim = Sim(self.tmpdir.name, firmware="V1.0.3",
                       extra=("--printer-link", "--klipper-found", f"127.0.0.1:{self.mport}"))
        self.gw = self.start_gateway(extra_ini=(
            f"[printer]\nbed_temperature_topic = {BED}\nbed_target_topic = {BED_TARGET}\n"
            f"print_state_topic = {STATE}\nnozzle_temperature_topic = {NOZZLE}\n"
            "nozzle_temperature_path = extruder.temperature\nname = Any printer\n"
            f"{self.printer_ini}\n"
            f"[moonraker]\nport = {self.mport}\nlisten = 127.0.0.1\n"))
        wait_until(lambda: self._port_open(), 15, what="the virtual Moonraker's port")

    def _port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.mport), timeout=0.2):
                return True
        except OSError:
            return False

    def rpc(self, *requests):
        """Send each request on one WebSocket; return the replies (None: connection closed)."""
        async def go():
            out = []
            async with websockets.connect(f"ws://127.0.0.1:{self.mport}/websocket",
                                          max_size=2**20) as ws:
                for r in requests:
                    await ws.send(r if isinstance(r, str) else json.dumps(r))
                    try:
                        out.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
                    except websockets.ConnectionClosed:
                        out.append(None)
                        break
            return out
        return asyncio.run(go())

    def query(self):
        """printer.objects.query for heater_bed and webhooks, on a fresh connection."""
        return self.rpc({"jsonrpc": "2.0", "method": "printer.objects.query",
                         "params": {"objects": {"heater_bed": None, "webhooks": None}},
                         "id": 1})[0]["result"]["status"]


class VirtualMoonraker(MoonrakerCase):
    @unittest.skipIf(websockets is None, "python3-websockets is not installed")
    def test_independent_jsonrpc_client(self):
        self.mqtt.publish(BED, "61.5", retain=True)
        self.mqtt.publish(BED_TARGET, "65", retain=True)
        self.mqtt.publish(STATE, "RUNNING", retain=True)
        self.mqtt.publish(NOZZLE, '{"extruder": {"temperature": 215.25}}', retain=True)
        objs = {"webhooks": None, "print_stats": ["state"], "virtual_sdcard": None,
                "extruder": ["temperature", "target"], "heater_bed": None, "toolhead": None}

        def queried():
            r = self.rpc({"jsonrpc": "2.0", "method": "printer.objects.query",
                          "params": {"objects": objs}, "id": 7})[0]
            st = r["result"]["status"]
            return r if st["heater_bed"]["temperature"] == 61.5 and \
                st["extruder"]["temperature"] == 215.25 and \
                st["print_stats"]["state"] == "printing" else None
        r = wait_until(queried, 10, interval=0.2, what="the MQTT values in the query")
        self.assertEqual(r["jsonrpc"], "2.0")
        self.assertEqual(r["id"], 7)
        st = r["result"]["status"]
        self.assertIsInstance(r["result"]["eventtime"], float)
        self.assertEqual(st["webhooks"]["state"], "ready")
        self.assertEqual(st["print_stats"], {"state": "printing"})  # only what was asked
        self.assertEqual(st["extruder"], {"temperature": 215.25, "target": 0})
        self.assertEqual(st["heater_bed"]["target"], 65)
        self.assertTrue(st["virtual_sdcard"]["is_active"])
        self.assertNotIn("toolhead", st)  # objects that do not exist are left out

        info, objects, sub, server, unknown = self.rpc(
            {"jsonrpc": "2.0", "method": "printer.info", "id": "a"},
            {"jsonrpc": "2.0", "method": "printer.objects.list", "id": 2},
            {"jsonrpc": "2.0", "method": "printer.objects.subscribe",
             "params": {"objects": {"heater_bed": ["temperature"]}}, "id": 3},
            {"jsonrpc": "2.0", "method": "server.info", "id": 4},
            {"jsonrpc": "2.0", "method": "printer.gcode.script",
             "params": {"script": "M104 S0"}, "id": 5})

        async def notification_first():  # a notification (no id) gets no reply
            async with websockets.connect(f"ws://127.0.0.1:{self.mport}/websocket") as ws:
                await ws.send('{"jsonrpc":"2.0","method":"printer.info"}')
                await ws.send('{"jsonrpc":"2.0","method":"nope"}')
                await ws.send('{"jsonrpc":"2.0","method":"printer.info","id":"n"}')
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
        self.assertEqual(asyncio.run(notification_first())["id"], "n")
        self.assertEqual(info["id"], "a")
        self.assertEqual(info["result"]["state"], "ready")
        self.assertEqual(objects["result"]["objects"],
                         ["webhooks", "print_stats", "virtual_sdcard", "extruder", "heater_bed"])
        self.assertEqual(sub["result"]["status"], {"heater_bed": {"temperature": 61.5}})
        self.assertTrue(server["result"]["klippy_connected"])
        self.assertEqual(unknown["error"]["code"], -32601)
        self.assertEqual(unknown["id"], 5)

        # malformed input: errors, never a crash; the connection stays usable
        bad = self.rpc("{not json", "[1,2]", '{"jsonrpc":"2.0","id":1}',
                       '{"jsonrpc":"2.0","method":"printer.objects.query","params":{},"id":9}',
                       "[" * 20 + "]" * 20,
                       {"jsonrpc": "2.0", "method": "printer.info", "id": 10})
        self.assertEqual([b["error"]["code"] for b in bad[:5]],
                         [-32700, -32600, -32600, -32602, -32600])
        self.assertEqual(bad[5]["result"]["state"], "ready")
        # a message over the cap closes that connection only
        big = self.rpc({"jsonrpc": "2.0", "method": "printer.info", "id": 1,
                        "pad": "x" * 40000})
        self.assertEqual(big, [None])
        self.assertEqual(self.rpc({"jsonrpc": "2.0", "method": "printer.info",
                                   "id": 11})[0]["id"], 11)

        # the firmware's own request, byte for byte (a literal in the V1.0.3 binary), on a
        # connection that is pinged as the firmware pings it
        with open(os.path.join(FIXTURES, "moonraker-request-v1.0.3.json")) as f:
            literal = f.read()

        async def firmware_like():
            async with websockets.connect(f"ws://127.0.0.1:{self.mport}/websocket") as ws:
                pong = await ws.ping(b"ping")
                await asyncio.wait_for(pong, 5)  # answered, or this times out
                await ws.send(literal)
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
        r = asyncio.run(firmware_like())
        self.assertEqual(r["id"], 1001)
        st = r["result"]["status"]
        self.assertEqual(set(st), {"webhooks", "virtual_sdcard", "print_stats", "extruder",
                                   "heater_bed"})  # no gcode_macro _KNOMI_STATUS
        self.assertEqual(st["webhooks"], {"state": "ready"})
        self.assertEqual(st["virtual_sdcard"], {"progress": 0})
        self.assertEqual(st["print_stats"], {"state": "printing"})
        self.assertEqual(st["heater_bed"], {"temperature": 61.5, "target": 65})
        # only the print states the firmware knows: a failed print is "cancelled"
        self.mqtt.publish(STATE, "FAILED", retain=True)
        wait_until(lambda: asyncio.run(firmware_like())["result"]["status"]["print_stats"]
                   ["state"] == "cancelled", 10, interval=0.2, what="cancelled")
        self.mqtt.publish(STATE, "RUNNING", retain=True)

        # HTTP: GET /printer/info (how the device's Klipper scan recognises Moonraker)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/printer/info",
                                    timeout=5) as resp:
            self.assertEqual(resp.status, 200)
            body = json.loads(resp.read())
        self.assertEqual(body["result"]["state"], "ready")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/nope", timeout=5)
        self.assertEqual(cm.exception.code, 404)

        # the printer as its own Home Assistant device
        disc = self.mqtt.wait_json("homeassistant/device/printer/config",
                                   lambda d: d["device"]["name"] == "Any printer")
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        st = self.mqtt.wait_json(f"{self.base}/printer",
                                 lambda s: s["nozzle_temperature"] == 215.25 and
                                 s["print_state"] == "RUNNING")
        self.assertEqual(st["print_state"], "RUNNING")
        self.assertEqual(st["bed_temperature"], 61.5)
        self.mqtt.wait(f"{self.base}/printer/availability", lambda p: p == "online")

        # bad source input is logged with its topic, and changes nothing
        self.mqtt.publish(BED, "hot", retain=True)
        self.mqtt.publish(STATE, "dancing", retain=True)
        wait_until(lambda: f"printer: {STATE}: not a print state" in self.gw.log(), 10,
                   what="the bad print state logged")
        self.assertIn(f"printer: {BED}: not a temperature", self.gw.log())
        r = self.rpc({"jsonrpc": "2.0", "method": "printer.objects.query",
                      "params": {"objects": {"heater_bed": None, "print_stats": None}},
                      "id": 1})[0]
        self.assertEqual(r["result"]["status"]["heater_bed"]["temperature"], 61.5)
        self.assertEqual(r["result"]["status"]["print_stats"]["state"], "printing")
        self.assertTrue(self.gw.alive())

    def chamber(self):
        return self.mqtt.last_json(self.t())["chamber_temperature"]

    def test_sim_binds_on_command_and_auto_mode_follows_mqtt_bed(self):
        self.wait_online()
        self.mqtt.publish(BED, "25.0", retain=True)
        self.wait_state(lambda s: s["printer_state"] is not None)
        time.sleep(2)
        # the gateway never binds on its own
        self.assertFalse(any('"printer"' in f or "printer_type" in f
                             for f in self.sim.frames()), self.sim.frames())
        # the device scans and binds the port it is given
        self.mqtt.publish(self.t("/set/klipper_port"), str(self.mport))
        self.wait_state(lambda s: s["klipper_port"] == self.mport)
        self.mqtt.publish(self.t("/set/scan_klipper"), "PRESS")
        self.mqtt.wait_json("homeassistant/device/dev1/config",
                            lambda d: "Sim Voron" in d["components"]["printer"]["options"],
                            timeout=10)
        self.mqtt.publish(self.t("/set/printer"), "Sim Voron")
        self.wait_state(lambda s: s["printer"] == "Sim Voron")
        self.mqtt.publish(self.t("/set/printer_bind"), "PRESS")
        # the device polls the gateway's Moonraker and says ready; it keeps the printer
        # as printer.host / printer.port
        self.wait_state(lambda s: s["printer_state"] == "ready", timeout=40)
        self.wait_state(lambda s: s["bound_printer"] == f"127.0.0.1:{self.mport}")
        self.mqtt.publish(self.t("/set"), '{"mode":"auto","auto_bed_threshold":60}')
        self.wait_state(lambda s: s["mode"] == "auto" and s["auto_bed_threshold"] == 60,
                        timeout=20)
        # nothing on the WebSocket says the element heats: the chamber says it (the
        # simulator's model moves it 0.5 °C a push while heating, and cools it to 22)
        time.sleep(2)
        cold = self.chamber()
        time.sleep(3)
        self.assertLessEqual(self.chamber(), cold)

        self.mqtt.publish(BED, "65.0", retain=True)  # the bed crosses the threshold
        wait_until(lambda: self.chamber() >= cold + 3, 30, what="the chamber warming")
        hot = self.chamber()
        self.mqtt.publish(BED, "45.0", retain=True)  # and drops back
        wait_until(lambda: self.chamber() <= hot - 2, 30, what="the chamber cooling")
        with open(self.sim.stderr) as f:
            log = f.read()
        self.assertIn("bed 65.0 C >= hotbedtemp 60: Auto mode heats", log)
        self.assertIn("bed 45.0 C < hotbedtemp 60: Auto mode idles", log)
        # the device's client pinged, and the virtual Moonraker answered every PING
        self.assertNotIn("no PONG received", log)
        self.assertIn("moonraker: client 127.0.0.1 connected", self.gw.log())
        # the bind went through the gateway: the device's access code and Wi-Fi
        # passwords still never reach a publish or a log line
        for secret in SIM_SECRETS:
            self.assertNotIn(secret, self.gw.log())
            for topic, payload, _, _ in self.mqtt.all_payloads():
                self.assertNotIn(secret, payload, topic)



class StaleSource(MoonrakerCase):
    printer_ini = "stale_timeout = 10\n"

    @unittest.skipIf(websockets is None, "python3-websockets is not installed")
    def test_quiet_source_is_forgotten(self):
        """A printer that stops reporting must not keep its last hot bed (and Auto mode)."""
        self.mqtt.publish(BED, "70", retain=False)
        wait_until(lambda: self.query()["heater_bed"]["temperature"] == 70, 10,
                   interval=0.2, what="the bed temperature")
        self.mqtt.wait(f"{self.base}/printer/availability", lambda p: p == "online")
        since = time.monotonic()
        st = wait_until(lambda: (lambda q: q if q["webhooks"]["state"] == "startup" else None)(
            self.query()), 20, interval=0.5, what="the quiet source forgotten")
        self.assertGreaterEqual(time.monotonic() - since, 8)
        self.assertEqual(st["heater_bed"]["temperature"], 0)
        self.mqtt.wait(f"{self.base}/printer/availability", lambda p: p == "offline")
        self.assertIn("printer: nothing on its topics for 10 s", self.gw.log())
        self.mqtt.publish(BED, "30", retain=False)  # back
        wait_until(lambda: self.query()["heater_bed"]["temperature"] == 30, 10,
                   interval=0.2, what="the source back")
        self.mqtt.wait(f"{self.base}/printer/availability", lambda p: p == "online",
                       since=since)


if __name__ == "__main__":
    unittest.main()
