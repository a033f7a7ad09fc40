"""Tests of the Home Assistant add-on without a container or a Supervisor.

- tools/check-addon.py accepts addon/panda2mqtt and rejects broken manifests;
- rootfs/usr/bin/panda2mqtt-addon-config turns options + a fake Supervisor MQTT answer
  into an INI that the built daemon's --check-config accepts, with the password only
  in a 0600 file;
- the s6 run script, with the few bashio functions it uses stubbed, execs the daemon
  with that INI and no secret on its command line.

Run: python3 -m unittest discover -v -s tests/addon   (needs python3-yaml and jq;
the --check-config steps use $P2M_BUILD_DIR/panda2mqtt, default build/, and are
skipped when it is not built).
"""
import copy
import importlib.util
import json
import os
import stat
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon" / "panda2mqtt"
GEN = ADDON / "rootfs" / "usr" / "bin" / "panda2mqtt-addon-config"
RUN = ADDON / "rootfs" / "etc" / "services.d" / "panda2mqtt" / "run"
DAEMON = Path(os.environ.get("P2M_BUILD_DIR", ROOT / "build")) / "panda2mqtt"
SECRET = "Sup3r;Secret pw"  # has " ;"-like content: must survive via password_file

_spec = importlib.util.spec_from_file_location("check_addon", ROOT / "tools" / "check-addon.py")
check_addon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_addon)

# What the Supervisor answers on GET /services/mqtt with the Mosquitto add-on.
FAKE_SERVICE = {"result": "ok", "data": {
    "addon": "core_mosquitto", "host": "core-mosquitto", "port": 1883, "ssl": False,
    "protocol": "3.1.1", "username": "addons", "password": SECRET}}


def load_config():
    return yaml.safe_load((ADDON / "config.yaml").read_text(encoding="utf-8"))


class CheckerTest(unittest.TestCase):
    def test_addon_is_clean(self):
        self.assertEqual(check_addon.check_addon(ADDON), [])

    def test_version_matches_project(self):
        self.assertIn(f"project(panda2mqtt VERSION {load_config()['version']} ",
                      (ROOT / "CMakeLists.txt").read_text())

    def test_required_settings(self):
        cfg = load_config()
        self.assertEqual(cfg["slug"], "panda2mqtt")
        self.assertEqual(sorted(cfg["arch"]), ["aarch64", "amd64"])
        self.assertIs(cfg["init"], False)
        self.assertIs(cfg["host_network"], True)
        self.assertIn("mqtt:need", cfg["services"])
        for key in ("host", "port", "username", "password", "base_topic",
                    "discovery_prefix", "tls", "cafile"):
            self.assertIn(key, cfg["schema"]["mqtt"])
        self.assertEqual(set(cfg["schema"]["devices"][0]), {"id", "host", "port", "name",
                                                              "duplicate_ha_entities"})

    def broken(self, change):
        cfg = load_config()
        change(cfg)
        return check_addon.check_config(cfg)

    def test_rejects_broken_manifests(self):
        cases = {
            "missing name": lambda c: c.pop("name"),
            "unquoted version": lambda c: c.update(version=0.1),
            "bad version": lambda c: c.update(version="0.1"),
            "bad arch": lambda c: c.update(arch=["x86_64"]),
            "bad slug": lambda c: c.update(slug="panda 2"),
            "bad service": lambda c: c.update(services=["mqtt:must"]),
            "bad map": lambda c: c.update(map=["etc:rw"]),
            "option without schema": lambda c: c["options"].update(extra=1),
            "nested option without schema": lambda c: c["options"]["mqtt"].update(x="y"),
            "unknown type": lambda c: c["schema"].update(mdns="boolean"),
            "bad regex": lambda c: c["schema"]["devices"][0].update(id="match(([)"),
            "required without default": lambda c: c["schema"].update(must="str"),
            "default of wrong type": lambda c: c["options"].update(mdns="yes"),
            "default out of range": lambda c: c["options"].update(max_target_temp=99),
            "default not in list": lambda c: c["options"].update(log_level="trace"),
            "explicit null": lambda c: c.update(image=None),
            "device without id": lambda c: c["options"].update(devices=[{"host": "a"}]),
        }
        for name, change in cases.items():
            with self.subTest(name):
                self.assertNotEqual(self.broken(change), [], name)


class ConfigGenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.out = self.dir / "out"

    def tearDown(self):
        self.tmp.cleanup()

    def options(self, **changes):
        opts = copy.deepcopy(load_config()["options"])  # the add-on's defaults
        opts["devices"] = [{"id": "garage", "host": "192.168.1.50", "name": "Garage heater"},
                           {"id": "lab", "host": "10.0.0.2", "port": 8080,
                            "duplicate_ha_entities": True}]
        opts.update(changes)
        return opts

    def generate(self, options, service=FAKE_SERVICE):
        (self.dir / "options.json").write_text(json.dumps(options))
        env = dict(os.environ)
        env.pop("P2M_MQTT_SERVICE", None)
        if service is not None:
            (self.dir / "service.json").write_text(json.dumps(service))
            env["P2M_MQTT_SERVICE"] = str(self.dir / "service.json")
        return subprocess.run([str(GEN), str(self.dir / "options.json"), str(self.out)],
                              env=env, capture_output=True, text=True, timeout=30)

    def ini(self):
        return (self.out / "panda2mqtt.ini").read_text()

    def check_config(self):
        if not DAEMON.exists():
            self.skipTest(f"{DAEMON} is not built")
        env = {k: v for k, v in os.environ.items() if k != "PANDA2MQTT_MQTT_PASSWORD"}
        r = subprocess.run([str(DAEMON), "--check-config", "-c", str(self.out / "panda2mqtt.ini")],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        return r.stdout

    def test_supervisor_broker_and_credentials(self):
        r = self.generate(self.options())
        self.assertEqual(r.returncode, 0, r.stderr)
        ini = self.ini()
        self.assertIn("host = core-mosquitto\n", ini)
        self.assertIn("port = 1883\n", ini)
        self.assertIn("username = addons\n", ini)
        self.assertIn(f"password_file = {self.out}/mqtt-password\n", ini)
        self.assertIn("[device garage]\nhost = 192.168.1.50\nname = Garage heater\n", ini)
        self.assertIn("[device lab]\nhost = 10.0.0.2\nport = 8080\n"
                      "duplicate_ha_entities = true\n", ini)
        self.assertIn("mdns = true\n", ini)  # the add-on's default
        self.assertIn("max_target_temp = 60\n", ini)
        self.assertNotIn(SECRET, ini)
        pw = self.out / "mqtt-password"
        self.assertEqual(pw.read_text(), SECRET + "\n")
        for f in (pw, self.out / "panda2mqtt.ini"):
            self.assertEqual(stat.S_IMODE(f.stat().st_mode), 0o600, f)
        self.assertIn("2 static device(s), 0 named for discovery, mDNS on",
                      self.check_config())

    def test_device_without_host_names_a_found_one(self):
        r = self.generate(self.options(devices=[
            {"id": "panda_breath_3c84279a1b2c", "name": "Garage heater"}]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[device panda_breath_3c84279a1b2c]\nname = Garage heater\n", self.ini())
        self.assertIn("0 static device(s), 1 named for discovery, mDNS on", self.check_config())

    def test_data_only_answer_and_tls(self):
        service = dict(FAKE_SERVICE["data"], ssl=True, port=8883)
        r = self.generate(self.options(mdns=False, max_target_temp=45), service)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tls = true\n", self.ini())
        self.assertIn("port = 8883\n", self.ini())
        self.assertIn("mdns = false\n", self.ini())
        self.assertIn("max_target_temp = 45\n", self.ini())
        self.check_config()

    def test_own_broker_never_gets_supervisor_credentials(self):
        mqtt = dict(load_config()["options"]["mqtt"], host="192.168.1.10", port=1884)
        r = self.generate(self.options(mqtt=mqtt))
        self.assertEqual(r.returncode, 0, r.stderr)
        ini = self.ini()
        self.assertIn("host = 192.168.1.10\nport = 1884\n", ini)
        self.assertNotIn("username", ini)
        self.assertNotIn("password_file", ini)
        self.assertFalse((self.out / "mqtt-password").exists())
        self.check_config()

    def test_own_credentials_with_supervisor_broker(self):
        mqtt = dict(load_config()["options"]["mqtt"], username="me", password="mine")
        r = self.generate(self.options(mqtt=mqtt))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("host = core-mosquitto\n", self.ini())
        self.assertIn("username = me\n", self.ini())
        self.assertEqual((self.out / "mqtt-password").read_text(), "mine\n")

    def test_firmware_dir_for_every_family(self):
        # the share folder's firmware images, for the Panda Breath and PTalk alike
        r = self.generate(self.options())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[firmware]\ndir = /share/panda2mqtt/firmware\n", self.ini())
        self.assertNotIn("firmware_dir", self.ini())
        self.check_config()

    def test_dialin(self):
        token = "addon-dialin-token-51c9"
        r = self.generate(self.options(dialin_port=8765, dialin_token=token,
                                       dialin_allow="ptalk_a1b2c3d4e5f6"))
        self.assertEqual(r.returncode, 0, r.stderr)
        ini = self.ini()
        self.assertIn(f"[dialin]\nport = 8765\ntoken_file = {self.out}/dialin-token\n"
                      "allow = ptalk_a1b2c3d4e5f6\n", ini)
        self.assertNotIn(token, ini)
        tok = self.out / "dialin-token"
        self.assertEqual(tok.read_text(), token + "\n")
        self.assertEqual(stat.S_IMODE(tok.stat().st_mode), 0o600)
        out = self.check_config()
        self.assertIn("dial-in on port 8765 with a token", out)
        self.assertNotIn(token, out)
        # off unless a port is given; a short token is refused
        r = self.generate(self.options())
        self.assertNotIn("[dialin]", self.ini())
        self.assertFalse(tok.exists())
        r = self.generate(self.options(dialin_port=8765, dialin_token="short"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("dialin_token", r.stderr)

    def test_log_level_and_forget_after(self):
        r = self.generate(self.options())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[log]\nlevel = info\n", self.ini())  # the default
        self.assertNotIn("forget_after", self.ini())
        for level in ("error", "warning", "debug"):
            r = self.generate(self.options(log_level=level, forget_after=0.5))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"[log]\nlevel = {level}\n", self.ini())
            self.assertIn("[discovery]\nmdns = true\nforget_after = 0.5\n", self.ini())
            self.check_config()
        r = self.generate(self.options(forget_after=30))
        self.assertIn("forget_after = 30\n", self.ini())
        self.check_config()
        for name, opts in {"log level": {"log_level": "trace"},
                           "negative days": {"forget_after": -1},
                           "days as text": {"forget_after": "30"}}.items():
            with self.subTest(name):
                r = self.generate(self.options(**opts))
                self.assertEqual(r.returncode, 1, name)
                self.assertIn("panda2mqtt-addon-config:", r.stderr)

    def test_no_devices_is_valid(self):
        r = self.generate(self.options(devices=[]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("[device", self.ini())
        self.check_config()

    def test_rejected_options(self):
        cases = {
            "no broker at all": (self.options(), None),
            "failed service answer": (self.options(), {"result": "error", "message": "x"}),
            "line break in a name": (self.options(devices=[
                {"id": "a", "host": "h", "name": "x\n[mqtt]\nhost = evil"}]), FAKE_SERVICE),
            "comment in a name": (self.options(devices=[
                {"id": "a", "host": "h", "name": "x ; y"}]), FAKE_SERVICE),
            "bad id": (self.options(devices=[{"id": "A B", "host": "h"}]), FAKE_SERVICE),
            "same id twice": (self.options(devices=[{"id": "a", "host": "h"},
                                                    {"id": "a", "host": "i"}]), FAKE_SERVICE),
            "line break in a password": (self.options(), dict(
                FAKE_SERVICE, data=dict(FAKE_SERVICE["data"], password="a\nb"))),
        }
        for name, (opts, service) in cases.items():
            with self.subTest(name):
                r = self.generate(opts, service)
                self.assertEqual(r.returncode, 1, name)
                self.assertIn("panda2mqtt-addon-config:", r.stderr)
                self.assertNotIn(SECRET, r.stderr)

    def test_run_script_with_stubbed_bashio(self):
        (self.dir / "options.json").write_text(json.dumps(self.options(mdns=False,
                                                                       log_level="debug")))
        fake_daemon = self.dir / "fake-daemon"
        fake_daemon.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >"$P2M_ARGS_LOG"\n')
        fake_daemon.chmod(0o755)
        data = FAKE_SERVICE["data"]
        stubs = f"""
bashio::services.available() {{ [ "$1" = mqtt ]; }}
bashio::services() {{ jq -r --arg k "$2" '.[$k]' {self.dir}/svc-data.json; }}
bashio::config() {{ jq -r --arg k "$1" '.[$k]' "$P2M_OPTIONS"; }}
bashio::config.true() {{ [ "$(bashio::config "$1")" = true ]; }}
bashio::log.info() {{ echo "INFO: $*"; }}
bashio::exit.nok() {{ echo "FATAL: $*"; exit 1; }}
"""
        (self.dir / "svc-data.json").write_text(json.dumps(data))
        env = dict(os.environ, P2M_RUN_DIR=str(self.out), P2M_OPTIONS=str(self.dir / "options.json"),
                   P2M_DAEMON=str(fake_daemon), P2M_ARGS_LOG=str(self.dir / "args"),
                   PATH=f"{GEN.parent}:{os.environ['PATH']}")
        r = subprocess.run(["bash", "-c", f'{stubs}\nsource "$0"', str(RUN)], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        args = (self.dir / "args").read_text().split("\n")
        # the level goes in the INI, where the bridge's select can change it at run time
        self.assertEqual(args[:3], ["-c", str(self.out / "panda2mqtt.ini"), ""])
        self.assertIn("[log]\nlevel = debug\n", self.ini())
        self.assertNotIn(SECRET, "".join(args) + r.stdout + r.stderr)
        self.assertFalse((self.out / "mqtt-service.json").exists())
        self.assertIn("host = core-mosquitto\n", self.ini())
        self.check_config()


if __name__ == "__main__":
    unittest.main()
