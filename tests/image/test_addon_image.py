"""The add-on image, run: its own run script, INI generator and daemon, inside the image.

tools/test-addon-image.sh builds the image (addon/panda2mqtt/Dockerfile on a debootstrapped
Debian bookworm base, buildah, vfs storage, chroot isolation) and runs this with
P2M_ADDON_IMAGE, P2M_BUILDAH_ROOT and P2M_BUILDAH_RUNROOT set; P2M_BUILD_DIR is the native
build whose simulator plays the device.

The container gets what the Supervisor would give it: /data/options.json (the add-on's
options) and the MQTT service's answer (through tests/image/bashio-stub.sh, the test's
stand-in for bashio, which the Home Assistant base image ships and this one does not), the
host's network and the host's system D-Bus (the add-on reaches the host's avahi-daemon
through it). It runs the add-on's s6 run script, which writes the INI with
panda2mqtt-addon-config and execs the daemon. The broker is a real mosquitto that wants
the Supervisor's user and password on the add-on's port; the device is the native
simulator announced over DNS-SD. Every wait is bounded."""
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import (Avahi, Explains, Mosquitto, Mqtt, Sim, free_port,  # noqa: E402
                     mosquitto_passwd, wait_until)
import ha_schema  # noqa: E402

IMAGE = os.environ.get("P2M_ADDON_IMAGE", "")
STORE = ["--root", os.environ.get("P2M_BUILDAH_ROOT", ""),
         "--runroot", os.environ.get("P2M_BUILDAH_RUNROOT", ""), "--storage-driver", "vfs"]
TIMEOUT = 60
SECRET = "Addon-Image-pw;7c1d"  # the Supervisor's MQTT password: never in the INI or a log


def children(pid):
    """Every descendant of pid, from /proc."""
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


@unittest.skipUnless(IMAGE, "P2M_ADDON_IMAGE is not set (tools/test-addon-image.sh sets it)")
class AddonImage(Explains, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = Avahi.up(as_is=True, timeout=60)
        if why:
            raise unittest.SkipTest(f"avahi-daemon cannot run here: {why}")
        # each thing started is stopped by a class cleanup, even when setUpClass fails later
        cls.tmp = tempfile.TemporaryDirectory(prefix="p2m-image-")
        cls.addClassCleanup(cls.tmp.cleanup)
        d = cls.tmp.name
        os.chmod(d, 0o755)  # mosquitto reads its password file as user mosquitto
        cls.tag = os.urandom(3).hex()
        mac = "0E" + os.urandom(5).hex().upper()
        cls.dev = f"panda_breath_{mac.lower()}"
        cls.base = f"p2m{cls.tag}"

        # mosquitto: the add-on's port wants a user and password, the test's does not
        cls.test_port, cls.addon_port = free_port(), free_port()
        mosquitto_passwd(f"{d}/passwd", "addons", SECRET)
        os.chmod(f"{d}/passwd", 0o644)
        with open(f"{d}/mosquitto.conf", "w") as f:
            f.write(f"per_listener_settings true\npersistence false\n"
                    f"listener {cls.test_port} 127.0.0.1\nallow_anonymous true\n"
                    f"listener {cls.addon_port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {d}/passwd\n")
        cls.broker = Mosquitto(f"{d}/mosquitto.conf", f"{d}/mosquitto.log",
                               [cls.test_port, cls.addon_port])
        cls.addClassCleanup(cls.broker.stop)
        cls.addon_out = open(f"{d}/addon.log", "w")
        cls.addClassCleanup(cls.addon_out.close)
        cls.mqtt = Mqtt(cls.test_port)
        cls.addClassCleanup(cls.mqtt.close)
        cls.sim = Sim(d, extra=["--mac", mac, "--mdns", f"Image {cls.tag}"])
        cls.addClassCleanup(cls.sim.stop)

        # What the Supervisor gives the add-on
        cls.data, cls.rundir = f"{d}/data", f"{d}/run"
        os.makedirs(cls.data)
        os.makedirs(cls.rundir)
        with open(f"{cls.data}/options.json", "w") as f:
            json.dump({"mqtt": {"base_topic": cls.base, "discovery_prefix": "homeassistant",
                                "tls": False},
                       "mdns": True,
                       "devices": [{"id": cls.dev, "name": "Add-on heater"}],
                       "max_target_temp": 45, "log_level": "debug"}, f)
        with open(f"{cls.data}/stub-mqtt-service.json", "w") as f:
            json.dump({"addon": "core_mosquitto", "host": "127.0.0.1", "port": cls.addon_port,
                       "ssl": False, "protocol": "3.1.1", "username": "addons",
                       "password": SECRET}, f)
        # a working container of the image, removed in tearDownClass
        made = subprocess.run(["buildah", *STORE, "from", "--pull=never", IMAGE],
                              capture_output=True, text=True, timeout=300)
        if made.returncode != 0:
            raise AssertionError(f"buildah from {IMAGE}: {made.stderr}")
        cls.container = made.stdout.strip()
        cls.addClassCleanup(cls.remove_container)
        cls.log = f"{d}/addon.log"
        cls.started = time.monotonic()
        cls.proc = subprocess.Popen(
            ["buildah", *STORE, "run", "--isolation", "chroot",
             "-v", f"{HERE}/bashio-stub.sh:/stub/bashio-stub.sh:ro",
             "-v", f"{cls.data}:/data", "-v", f"{cls.rundir}:/run/panda2mqtt",
             "-v", "/run/dbus:/run/dbus",
             "--", cls.container, "bash", "-c",
             ". /stub/bashio-stub.sh; . /etc/services.d/panda2mqtt/run"],
            stdout=cls.addon_out, stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls.kill_addon)

    @classmethod
    def kill_addon(cls):
        if cls.proc.poll() is None:
            for pid in children(cls.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            cls.proc.kill()
            cls.proc.wait(30)

    @classmethod
    def remove_container(cls):
        subprocess.run(["buildah", *STORE, "rm", cls.container], capture_output=True,
                       timeout=120)

    def addon_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    # failures show the add-on's log (its run script's lines and the daemon's)
    explain_tail = 4000
    explain_what = "add-on log"

    def explain_log(self):
        return self.addon_log()

    def daemon_pid(self):
        for pid in children(self.proc.pid):
            args = cmdline(pid)
            if args and args[0].endswith(b"/panda2mqtt"):
                return pid
        return None

    def t(self, suffix=""):
        return f"{self.base}/{self.dev}{suffix}"

    # tests, in name order, on the one add-on
    def test_1_run_script_wrote_the_ini_from_the_options(self):
        ini_path = f"{self.rundir}/panda2mqtt.ini"
        self.explain(lambda: wait_until(lambda: os.path.exists(ini_path) and self.daemon_pid(),
                                        TIMEOUT, what="the INI and the daemon"))
        with open(ini_path) as f:
            ini = f.read()
        self.assertIn(f"host = 127.0.0.1\nport = {self.addon_port}\nusername = addons\n"
                      f"password_file = /run/panda2mqtt/mqtt-password\n", ini)
        self.assertIn(f"base_topic = {self.base}\n", ini)
        self.assertIn(f"[device {self.dev}]\nname = Add-on heater\n", ini)
        self.assertIn("mdns = true\n", ini)
        self.assertIn("max_target_temp = 45\n", ini)
        self.assertNotIn(SECRET, ini)
        for name in ("panda2mqtt.ini", "mqtt-password"):
            self.assertEqual(stat.S_IMODE(os.stat(f"{self.rundir}/{name}").st_mode), 0o600, name)
        self.assertFalse(os.path.exists(f"{self.rundir}/mqtt-service.json"))
        # the level is in the INI, so that Home Assistant's Log level select and a
        # reload can change it (-v would pin debug)
        self.assertIn("[log]\nlevel = debug\n", ini)
        self.assertIn("[firmware]\ndir = /share/panda2mqtt/firmware", ini)
        args = cmdline(self.daemon_pid())
        self.assertEqual([a for a in args if a], [b"/usr/sbin/panda2mqtt", b"-c",
                                                  b"/run/panda2mqtt/panda2mqtt.ini"])
        self.assertNotIn(SECRET.encode(), b" ".join(args))

    def test_2_found_through_the_hosts_avahi_with_valid_discovery(self):
        info = self.explain(lambda: self.mqtt.wait_json(
            f"{self.base}/bridge/info",
            lambda i: any(d["id"] == self.dev and d["online"] for d in i["devices"]), TIMEOUT))
        self.assertEqual([d["source"] for d in info["devices"] if d["id"] == self.dev], ["mdns"])
        print(f"\n  online {time.monotonic() - self.started:.1f} s after buildah run",
              file=sys.stderr)
        topic = f"homeassistant/device/{self.dev}/config"
        disc = self.explain(lambda: self.mqtt.wait_json(
            topic, lambda d: d["device"].get("sw_version") == "V1.0.3", TIMEOUT))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.assertEqual(disc["device"]["name"], "Add-on heater")
        self.assertEqual(disc["components"]["climate"]["max_temp"], 45)  # max_target_temp

    def test_3_state_and_a_command(self):
        self.explain(lambda: self.mqtt.wait(self.t("/availability"), lambda p: p == "online",
                                            TIMEOUT))
        self.explain(lambda: self.mqtt.wait_json(
            self.t("/details"), lambda s: s["firmware_version"] == "V1.0.3", TIMEOUT))
        before = len(self.sim.frames())
        self.mqtt.publish(self.t("/set"), '{"mode":"heat","target_temperature":44}')
        self.explain(lambda: wait_until(lambda: len(self.sim.frames()) >= before + 4, TIMEOUT,
                                        what="4 frames at the simulator"))
        frames = [json.loads(f) for f in self.sim.frames()[before:before + 4]]
        self.assertEqual(frames, [{"settings": {"isrunning": 0}}, {"settings": {"work_mode": 2}},
                                  {"settings": {"set_temp": 44}}, {"settings": {"work_on": True}}])
        # above the add-on's max_target_temp: refused, nothing sent
        self.mqtt.publish(self.t("/set/target_temperature"), "50")
        self.explain(lambda: self.mqtt.wait_json(
            self.t("/event"), lambda e: e["event_type"] == "command_rejected", TIMEOUT))
        self.assertEqual(len(self.sim.frames()), before + 4)

    def test_4_clean_stop(self):
        pid = self.daemon_pid()
        self.assertIsNotNone(pid, self.addon_log()[-3000:])
        since = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(self.proc.wait(TIMEOUT), 0, self.addon_log()[-3000:])
        self.mqtt.wait(f"{self.base}/bridge/state", lambda p: p == "offline", TIMEOUT, since)
        log = self.addon_log()
        self.assertNotIn(SECRET, log)
        self.assertIn("[stub bashio] INFO: Starting panda2mqtt", log)


if __name__ == "__main__":
    unittest.main()
