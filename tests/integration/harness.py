"""Integration test harness: real mosquitto, the simulator and the daemon, on loopback.

Each helper starts a real process and cleans it up; every wait has a deadline, so a
hung component fails the test instead of hanging it. Run by ctest with P2M_BUILD_DIR
set; by hand: P2M_BUILD_DIR=build /usr/bin/python3 -m unittest -v test_gateway
(tests/README.md). The other suites (tests/brokers, tests/cross, tests/image) import it
too: whatever two test files need (a gateway with [mqtt] keys of their own, a mosquitto
with TLS or passwords, certificates, waits that explain themselves) lives here.
"""
import json
import os
import pwd
import queue
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

import ha_schema

HERE = os.path.dirname(os.path.abspath(__file__))
# /proc readings and free ports are shared with the benchmark and soak tools.
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from loadrun import Proc, free_port  # noqa: E402
BUILD = os.path.abspath(os.environ.get("P2M_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
# The daemon under test may be another architecture's (tools/test-cross.sh: the arm64 or
# armhf package's daemon, P2M_GATEWAY), run under an emulator (P2M_EMULATOR, e.g.
# "qemu-aarch64-static"); the simulator is always this build's, native.
GATEWAY = os.environ.get("P2M_GATEWAY") or os.path.join(BUILD, "panda2mqtt")
EMULATOR = shlex.split(os.environ.get("P2M_EMULATOR", ""))
SIM = os.path.join(BUILD, "panda2mqtt-sim")
AVAHI_UP = os.path.join(HERE, "..", "..", "tools", "avahi-up.sh")
SANITIZED = os.environ.get("P2M_SANITIZE", "0") in ("1", "ON", "TRUE", "true")

# What the gateway must log when it refuses a broker's certificate (OpenSSL's reason).
TLS_VERIFY_FAILED = re.compile(r"(?im)^(warning|error): mqtt: .*certificate verify failed")

# The secrets the simulator holds (see panda2mqtt-sim --help).
SIM_SECRETS = ("SimWifiPass-7f3a9c", "SimApPass-51d2e8", "SimAccess-90b4c1")

# Every wait's bound is multiplied by this: the bounds are written for an idle machine, and
# the suite must pass when the other core is busy (tools/busy-core.sh; docs/RELIABILITY.md).
# A wait ends as soon as its condition holds, so a passing test is no slower for it.
WAIT_SCALE = float(os.environ.get("P2M_WAIT_SCALE", "4"))

SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=0:exitcode=66:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=66",
}


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """pred() until it is true; fails after timeout (times WAIT_SCALE) seconds."""
    timeout *= WAIT_SCALE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_port(port, timeout=10, host="127.0.0.1"):
    def up():
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_until(up, timeout, what=f"port {port} on {host}")


def explained(wait, log, tail=3000, what="gateway log"):
    """wait(), with the tail of log() (what is under test says why) added to the
    AssertionError it may raise; what names the log (or says more: a callable is asked
    when the wait has failed)."""
    try:
        return wait()
    except AssertionError as e:
        said = what() if callable(what) else what
        raise AssertionError(f"{e}; {said}:\n{log()[-tail:]}") from None


class Explains:
    """Mixin for a test case: self.explain(wait) runs wait() and, when it fails, adds the
    tail of explain_log() (by default the log of self.gw, the gateway under test)."""

    explain_tail = 3000
    explain_what = "gateway log"

    def explain_log(self):
        return self.gw.log()

    def explain(self, wait):
        return explained(wait, self.explain_log, self.explain_tail, self.explain_what)


class Broker:
    """A real mosquitto on a free loopback port (of addr); restartable on the same port."""

    def __init__(self, tmp, port=None, addr="127.0.0.1"):
        self.port = port or free_port()
        self.addr = addr
        self.conf = os.path.join(tmp, f"mosquitto-{addr}-{self.port}.conf")
        self.log = os.path.join(tmp, f"mosquitto-{addr}-{self.port}.log")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} {addr}\nallow_anonymous true\npersistence false\n")
        self.proc = None
        self.start()

    def start(self):
        with open(self.log, "a") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=out,
                                         stderr=subprocess.STDOUT)
        wait_port(self.port, host=self.addr)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


def mosquitto_passwd(path, user, password):
    """A mosquitto password file at path holding user (made anew)."""
    subprocess.run(["mosquitto_passwd", "-b", "-c", path, user, password], check=True,
                   capture_output=True, timeout=30)


class Mosquitto:
    """mosquitto with a configuration file of the test's (or one that
    tools/panda2mqtt-bambu-setup made), its output appended to log; started at once, and
    each of listeners (a port on 127.0.0.1, or (addr, port)) waited for. With
    connection_messages on, its log says who connected where: see connections()."""

    def __init__(self, conf, log, listeners):
        self.conf, self.log = conf, log
        with open(log, "a") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=out,
                                         stderr=subprocess.STDOUT)
        for listener in listeners:
            addr, port = listener if isinstance(listener, tuple) else ("127.0.0.1", listener)
            wait_port(port, host=addr)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def connections(self, port, offset=0):
        """Sources (address:port) of the TCP connections accepted on a listener, in the log
        from offset on."""
        return re.findall(rf"New connection from (\S+) on port {port}\.", self.text()[offset:])

    def tls_attempts(self, port, offset=0, failure="alert"):
        """TLS connection attempts on a listener since offset. mosquitto 2.0 logs a
        handshake that the client ends early as "Client connection from ... failed" alone
        (no "New connection" line, no port): those whose reason matches failure count
        too (a TLS alert, e.g. "bad certificate": only a TLS listener can log one; a port
        probe ends in an EOF)."""
        return len(self.connections(port, offset)) + len(re.findall(
            rf"Client connection from \S+ failed: .*{failure}", self.text()[offset:]))

    def client_source(self, client_id, username, offset=0):
        """Source (address:port) of the last MQTT session of client_id as username since
        offset, or None."""
        found = re.findall(rf"New client connected from (\S+) as {re.escape(client_id)} "
                           rf"\([^)]*u'{re.escape(username)}'\)", self.text()[offset:])
        return found[-1] if found else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class TlsMosquitto(Mosquitto):
    """mosquitto on addr with a TLS listener for each (port, (certificate, key)) of tls,
    the CA ca, and a plain anonymous listener on plain_port for the test's own observer.
    The TLS listeners want a user of the password file passwd (None: anyone). Every
    connection is logged (connections(), tls_attempts(), client_source())."""

    def __init__(self, tmp, ca, tls, plain_port, addr="127.0.0.1", passwd=None):
        self.addr, self.plain_port = addr, plain_port
        self.tls_ports = [port for port, _ in tls]
        name = os.path.join(tmp, f"mosquitto-{addr}-{self.tls_ports[0]}")
        # started as root, mosquitto would switch to a user that cannot read tmp
        lines = [f"user {pwd.getpwuid(os.getuid()).pw_name}", "per_listener_settings true",
                 "persistence false", "log_dest stderr", "log_type all",
                 "connection_messages true"]
        for port, (crt, key) in tls:
            lines += [f"listener {port} {addr}", f"cafile {ca}", f"certfile {crt}",
                      f"keyfile {key}", "require_certificate false"]
            lines += (["allow_anonymous false", f"password_file {passwd}"] if passwd
                      else ["allow_anonymous true"])
        lines += [f"listener {plain_port} {addr}", "allow_anonymous true"]
        with open(name + ".conf", "w") as f:
            f.write("\n".join(lines) + "\n")
        super().__init__(name + ".conf", name + ".log",
                         [(addr, port) for port in self.tls_ports + [plain_port]])


def openssl(*args, cwd):
    run = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=30)
    if run.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {run.stderr}")


class Pki:
    """A throwaway CA, a second unrelated CA, and two server certificates signed by the
    first (localhost + 127.0.0.1, and localhost only), made with the openssl command in
    directory d; server_cert() makes more."""

    EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def __init__(self, d):
        self.dir = d
        self.ca = self._ca("ca")
        self.other_ca = self._ca("otherca")
        self.server = self.server_cert("server", "DNS:localhost,IP:127.0.0.1")
        self.server_name_only = self.server_cert("server-name-only", "DNS:localhost")
        openssl("verify", "-CAfile", self.ca, self.server[0], self.server_name_only[0],
                cwd=d)

    def _ca(self, name):
        openssl("req", "-x509", *self.EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
                "-days", "2", "-subj", f"/CN=panda2mqtt test {name}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return os.path.join(self.dir, f"{name}.crt")

    def server_cert(self, name, san):
        """A server certificate for the subjectAltName san, signed by the CA:
        (certificate, key) paths."""
        with open(os.path.join(self.dir, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        openssl("req", "-new", *self.EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", "/CN=localhost", cwd=self.dir)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(secrets.randbits(63)), "-days", "2",
                "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=self.dir)
        return (os.path.join(self.dir, f"{name}.crt"), os.path.join(self.dir, f"{name}.key"))


class Avahi:
    """The machine's avahi-daemon (and system D-Bus), started by tools/avahi-up.sh."""

    @staticmethod
    def up(restart=False, as_is=False, timeout=30):
        """Start it if needed; returns None, or why it cannot run (then skip). as_is: a
        running avahi-daemon is used as it is (else it is restarted loopback-only if it
        was not started so); restart: restarted in any case."""
        mode = ["--restart"] if restart else [] if as_is else ["--loopback"]
        run = subprocess.run(["sh", AVAHI_UP, *mode], capture_output=True, text=True,
                             timeout=timeout)
        if run.returncode != 0:
            return run.stderr.strip() or f"tools/avahi-up.sh exited {run.returncode}"
        return None

    @staticmethod
    def stop():
        subprocess.run(["avahi-daemon", "-k"], capture_output=True, timeout=10)
        wait_until(lambda: subprocess.run(["avahi-daemon", "-c"], capture_output=True,
                                          timeout=10).returncode != 0,
                   10, what="avahi-daemon to stop")


class Publish:
    """avahi-publish announcing a service (e.g. a web server that is not a device)."""

    def __init__(self, name, port, stype="_http._tcp"):
        self.proc = subprocess.Popen(["avahi-publish", "-s", name, stype, str(port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("Established"), f"avahi-publish: {line}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Sim:
    """panda2mqtt-sim with its control channel on stdin and its frame log."""

    def __init__(self, tmp, port=0, firmware="V1.0.3", push_interval=0.5, extra=()):
        self.tmp = tmp
        self.frames_log = os.path.join(tmp, f"frames-{time.monotonic_ns()}.log")
        self.stderr = os.path.join(tmp, f"sim-{time.monotonic_ns()}.log")
        open(self.frames_log, "w").close()
        env = dict(os.environ, **(SANITIZER_ENV if SANITIZED else {}))
        with open(self.stderr, "w") as err:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [SIM, "--port", str(port), "--firmware", firmware, "--push-interval",
                 str(push_interval), "--frames-log", self.frames_log, *extra],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, bufsize=1, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next_line(10)
        assert first.startswith("ready port="), first
        self.port = int(first.split("=", 1)[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _next_line(self, timeout):
        try:
            return self.lines.get(timeout=timeout * WAIT_SCALE)
        except queue.Empty:
            raise AssertionError("simulator said nothing") from None

    def control(self, command, timeout=5):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout * WAIT_SCALE
        while time.monotonic() < deadline:
            line = self._next_line(max(0.01, deadline - time.monotonic()))
            if line.startswith("ok ") or line.startswith("error "):
                assert line.startswith("ok "), f"simulator: {line}"
                return line
        raise AssertionError(f"simulator did not confirm {command!r}")

    def frames(self):
        with open(self.frames_log) as f:
            return [line.rstrip("\n") for line in f]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Gateway:
    """The daemon under test, configured through a real INI file.

    mqtt: [mqtt] keys that replace or add to the defaults (host, port, base_topic,
    discovery_prefix, keepalive 5), e.g. TLS keys or a client_id. env: environment
    variables to set, or to remove (None).
    wrap: a command the daemon runs under (e.g. one that gives it a mount namespace)."""

    def __init__(self, tmp, broker_port, devices, base="panda2mqtt", prefix="homeassistant",
                 extra_ini="", verbose=True, mdns=False, sanitizer_env=None, mqtt=None,
                 env=None, wrap=(), logfile=None, discovery=None):
        """logfile: where stderr goes (default a new file in tmp; an existing one is
        truncated, keeping its inode); discovery: more [discovery] keys."""
        self.tmp = tmp
        self.broker_port = broker_port
        self.base = base
        self.prefix = prefix
        self.mqtt_keys, self.mdns = {}, False
        stamp = time.monotonic_ns()
        self.ini = os.path.join(tmp, f"gw-{stamp}.ini")
        self.logfile = logfile or os.path.join(tmp, f"gw-{stamp}.log")
        self.rewrite(devices, extra_ini=extra_ini, mdns=mdns, mqtt=mqtt, discovery=discovery)
        full_env = dict(os.environ, **((sanitizer_env or SANITIZER_ENV) if SANITIZED else {}))
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        args = [*wrap, *EMULATOR, GATEWAY, "-c", self.ini] + (["-v"] if verbose else [])
        with open(self.logfile, "w") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                         env=full_env)

    def rewrite(self, devices, extra_ini="", mdns=None, mqtt=None, discovery=None):
        """Write the INI file (again: a reload reads it, SIGHUP or bridge/request/reload).
        mqtt, mdns: as in the constructor, the last file's when None; discovery: more
        [discovery] keys."""
        self.mqtt_keys = self.mqtt_keys if mqtt is None else mqtt
        self.mdns = self.mdns if mdns is None else mdns
        keys = dict({"host": "127.0.0.1", "port": self.broker_port, "base_topic": self.base,
                     "discovery_prefix": self.prefix, "keepalive": 5}, **self.mqtt_keys)
        self.base = keys["base_topic"]
        self.prefix = keys["discovery_prefix"]
        self.client_id = keys.get("client_id", "panda2mqtt")
        disc = dict({"mdns": "true" if self.mdns else "false"}, **(discovery or {}))
        with open(self.ini + ".new", "w") as f:
            f.write("[mqtt]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                    + "\n[discovery]\n" + "".join(f"{k} = {v}\n" for k, v in disc.items())
                    + "\n")
            for dev_id, opts in devices.items():
                f.write(f"[device {dev_id}]\n")
                for k, v in opts.items():
                    f.write(f"{k} = {v}\n")
                f.write("\n")
            f.write(extra_ini)
        os.chmod(self.ini + ".new", 0o600)
        os.replace(self.ini + ".new", self.ini)  # never half a file for a reload to read

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15, scaled=True):
        """Stop it with sig, within timeout seconds (times WAIT_SCALE when scaled); its
        exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * WAIT_SCALE if scaled else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("gateway did not stop on " + str(sig))
        return self.proc.returncode

    # What the process holds, from /proc: fds and resident memory.
    def fds(self):
        """The number of open file descriptors."""
        return Proc(self.proc.pid).fds()

    def fd_targets(self):
        """{fd: what it points at}, e.g. socket:[123], anon_inode:[eventfd], a path."""
        out = {}
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                pass  # closed while listing
        return dict(sorted(out.items()))

    def settled_fds(self, window=1.0):
        """The fd count with no short-lived connection open: the least seen over window
        seconds (a snapshot re-read holds a second socket for a few milliseconds)."""
        least = self.fds()
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            time.sleep(0.02)
            least = min(least, self.fds())
        return least

    def rss_kib(self):
        """VmRSS from /proc/PID/status, in KiB."""
        return Proc(self.proc.pid).rss_kib()

    def assert_clean_log(self, test):
        log = self.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            test.assertNotIn(bad, log, f"sanitizer report in the gateway log:\n{log[-4000:]}")

    def assert_stopped_cleanly(self, test, **stop):
        """Stop it (SIGTERM; stop's arguments): exit code 0, no sanitizer report."""
        rc = self.stop(**stop)
        test.assertEqual(rc, 0, f"gateway exit code {rc}; log:\n{self.log()[-3000:]}")
        self.assert_clean_log(test)


class Mqtt:
    """A paho client that records every message it sees (subscribed to '#')."""

    def __init__(self, port, subscribe="#", host="127.0.0.1"):
        self.messages = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = paho.Client(client_id=f"test-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: (c.subscribe(subscribe, qos=1),
                                                       self.connected.set())
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10 * WAIT_SCALE):
            raise AssertionError("test MQTT client could not connect")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode("utf-8", "replace"),
                                  bool(msg.retain), time.monotonic()))

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m[0] == topic]

    def last(self, topic):
        got = self.on(topic)
        return got[-1][1] if got else None

    def last_json(self, topic):
        value = self.last(topic)
        return json.loads(value) if value is not None else None

    def wait(self, topic, pred=lambda payload: True, timeout=10, since=0.0):
        def match():
            for t, payload, _, at in reversed(self.on(topic)):
                if at >= since and pred(payload):
                    return payload
            return None
        return wait_until(match, timeout, what=f"a matching message on {topic}")

    def wait_json(self, topic, pred=lambda obj: True, timeout=10, since=0.0):
        def p(payload):
            try:
                return pred(json.loads(payload))
            except (ValueError, KeyError, TypeError):
                return False
        return json.loads(self.wait(topic, p, timeout, since))

    def state(self, topic):
        """A device's state as one dict: the latest JSON on topic, on topic/details
        (its configuration and diagnostic entities) and on topic/update (its update
        entity), and when the newest one arrived."""
        merged, newest = {}, 0.0
        for t in (topic + "/update", topic + "/details", topic):
            got = [m for m in self.on(t) if m[1]]
            if got:
                try:
                    merged.update(json.loads(got[-1][1]))
                except ValueError:
                    pass
                newest = max(newest, got[-1][3])
        return merged, newest

    def wait_state(self, topic, pred=lambda obj: True, timeout=10, since=0.0):
        """A state (see state()) that pred accepts, one of its topics heard after since."""
        def match():
            merged, newest = self.state(topic)
            try:
                return merged if newest >= since and merged and pred(merged) else None
            except (KeyError, TypeError):
                return None
        return wait_until(match, timeout, what=f"a matching state on {topic}[/details|/update]")

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish()

    def all_payloads(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# After a fault the gateway must be back where it was: see RecoveryChecks.
# P2M_FAULT_REPEATS=8 measures the growth over more repetitions (by hand, not in ctest).
FAULT_REPEATS = int(os.environ.get("P2M_FAULT_REPEATS", "3"))
# RSS may grow by at most this much from the end of a fault's first repetition to the end
# of its last. What RSS measures under ASan (what ctest runs) is mostly ASan's quarantine:
# freed blocks stay resident until 256 MiB of later frees push them out, so RSS grows with
# every byte freed. Measured over 8 repetitions of each fault here and in test_mdns.py,
# default quarantine: +70-140 KiB per repetition for device faults, +500-600 KiB for
# broker faults and avahi-daemon restarts (discovery, state and bridge/info built and
# freed again on every reconnect), more when a slow host makes a reconnect back off
# longer. The plain build over the same runs: not one KiB, the same RSS after all 8. So
# these gateways run with the quarantine capped at 1 MiB (FAULT_SANITIZER_ENV: a freed
# block stays poisoned for seconds of churn, far longer than a use after free in a
# reconnect path, which happens within one callback chain), and RecoveryChecks.warm_up
# fills it before the baseline (WARM_UP_BIRTHS Home Assistant births, ~1 s). RSS is flat
# after that: over 8 repetitions of every fault no repetition ended more than 624 KiB
# above the first, and the third at most 380 KiB above it. 1.5 MiB from the first to the
# third is four times that, and a 1 MiB buffer kept per reconnect fails it. Unreachable
# leaks of any size are LeakSanitizer's: reported at the gateway's exit, they fail the
# test through assert_clean_log.
RSS_GROWTH_MAX_KIB = 1536
WARM_UP_BIRTHS = 40
FAULT_SANITIZER_ENV = dict(SANITIZER_ENV,
                           ASAN_OPTIONS=SANITIZER_ENV["ASAN_OPTIONS"] + ":quarantine_size_mb=1")


class RecoveryChecks:
    """What must hold after every fault, for a test case with self.gw and self.mqtt:
    the bridge and every device online, a state for each (fresh: published after the
    fault), discovery present and valid, bridge/info listing each device exactly once,
    the fd count back to what it was before the fault, and RSS not growing with
    repetitions of the fault. Every wait is bounded."""

    def online_in_info(self):
        """How many devices bridge/info says are online (each holds one socket)."""
        try:
            info = json.loads(self.mqtt.last(f"{self.gw.base}/bridge/info") or "")
            return sum(1 for d in info["devices"] if d["online"])
        except (ValueError, KeyError, TypeError):
            return 0

    def warm_up(self, dev_id, births=WARM_UP_BIRTHS):
        """Fill ASan's (capped) quarantine before RSS is measured: each Home Assistant
        birth makes the gateway build, send and free the discovery of every device."""
        topic = f"{self.gw.prefix}/device/{dev_id}/config"
        want = len(self.mqtt.on(topic)) + births
        for _ in range(births):
            self.mqtt.publish(f"{self.gw.prefix}/status", "online")
        wait_until(lambda: len(self.mqtt.on(topic)) >= want, 20,
                   what=f"discovery sent again {births} times")

    def fault_baseline(self, ids=("dev1",)):
        """Taken with the gateway settled (and warmed up), before the fault."""
        self.warm_up(ids[0])
        return {"fds": self.gw.settled_fds(), "fd_targets": self.gw.fd_targets(),
                "rss_kib": self.gw.rss_kib(), "online": self.online_in_info()}

    def assert_recovered(self, baseline, ids=("dev1",), since=None, only=True, timeout=30):
        """ids: the devices that must be served; only: bridge/info lists nothing else
        (with mdns other tests' simulators may be found too, but none twice); since:
        each device's state must have been published at or after that monotonic time."""
        gw, mqtt = self.gw, self.mqtt
        deadline = time.monotonic() + timeout * WAIT_SCALE

        def wait(pred, what, seen):
            left = max(0.1, deadline - time.monotonic()) / WAIT_SCALE
            try:
                return wait_until(pred, left, what=what)
            except AssertionError as e:
                raise AssertionError(f"not recovered: {e}; {seen()}; gateway log:\n"
                                     f"{gw.log()[-3000:]}") from None

        bridge = f"{gw.base}/bridge/state"
        wait(lambda: mqtt.last(bridge) == "online", f"{bridge} online",
             lambda: f"last: {mqtt.last(bridge)!r}")
        for dev_id in ids:
            avail = f"{gw.base}/{dev_id}/availability"
            wait(lambda: mqtt.last(avail) == "online", f"{avail} online",
                 lambda: f"last: {mqtt.last(avail)!r}")

            state_topic = f"{gw.base}/{dev_id}"

            def fresh_state():  # the latest state: published after since, and whole
                got = mqtt.on(state_topic)
                if not got or (since is not None and got[-1][3] < since):
                    return False
                state, _ = mqtt.state(state_topic)  # main and details together
                return state.get("firmware_version") is not None
            wait(fresh_state, f"a fresh state on {state_topic}",
                 lambda: f"last: {mqtt.last(state_topic)!r}")

            disc_topic = f"{gw.prefix}/device/{dev_id}/config"
            want_avail = [bridge, avail]

            def discovery_errors():  # this gateway's, valid for Home Assistant
                try:
                    disc = json.loads(mqtt.last(disc_topic) or "")
                except ValueError:
                    return ["no discovery, or not JSON"]
                if not isinstance(disc, dict):
                    return ["not a JSON object"]
                if [a.get("topic") for a in disc.get("availability", [])] != want_avail:
                    return [f"availability is not {want_avail}"]
                return ha_schema.validate_device_discovery(disc)
            wait(lambda: discovery_errors() == [], f"valid discovery on {disc_topic}",
                 lambda: f"{discovery_errors()}; last: {mqtt.last(disc_topic)!r}")

        info_topic = f"{gw.base}/bridge/info"

        def info_ok():
            try:
                devices = json.loads(mqtt.last(info_topic) or "")["devices"]
            except (ValueError, KeyError, TypeError):
                return False
            listed = [d["id"] for d in devices]
            if len(set(listed)) != len(listed) or (only and sorted(listed) != sorted(ids)):
                return False
            return set(ids) <= set(listed) and all(d["online"] for d in devices
                                                   if d["id"] in ids)
        wait(info_ok, f"{info_topic} listing {list(ids)} once each, online",
             lambda: f"last: {mqtt.last(info_topic)}")

        # Reconnects close sockets asynchronously (lws, libmosquitto, idle callbacks). With
        # mdns a simulator of another test may have been found meanwhile (or gone): one
        # socket per online device more (or fewer) than before is no leak.
        def fds_expected():
            return baseline["fds"] + self.online_in_info() - baseline["online"]
        wait(lambda: gw.fds() == fds_expected(), "the fd count back to before the fault",
             lambda: f"{gw.fds()} open now, {fds_expected()} expected: {gw.fd_targets()}; "
             f"before the fault {baseline['fds']}: {baseline['fd_targets']}")
        return gw.rss_kib()

    def assert_rss_bounded(self, rss_kib):
        """rss_kib: RSS after each repetition of a fault."""
        growth = rss_kib[-1] - rss_kib[0]
        self.assertLessEqual(growth, RSS_GROWTH_MAX_KIB,
                             f"RSS grew {growth} KiB from the first repetition to the last "
                             f"({rss_kib} KiB)")

    def survive(self, fault, times=FAULT_REPEATS, **recovered):
        """Run fault() times times, checking recovery after each. fault returns the
        monotonic time from which a fresh state is due (or None). Returns the measures."""
        baseline = self.fault_baseline(recovered.get("ids", ("dev1",)))
        rss = []
        started = time.monotonic()
        for _ in range(times):
            since = fault()
            rss.append(self.assert_recovered(baseline, since=since, **recovered))
        self.assert_rss_bounded(rss)
        print(f"\n  {self.id().split('.', 1)[-1]}: {times} x; fds {baseline['fds']} "
              f"before, {self.gw.fds()} after; RSS KiB {baseline['rss_kib']} before, after "
              f"each {rss}; {time.monotonic() - started:.1f} s", file=sys.stderr)
        return baseline, rss


class BrokerTestCase(unittest.TestCase):
    """A real mosquitto and a temporary directory per class."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-test-")
        cls.broker = Broker(cls.tmpdir.name)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.tmpdir.cleanup()


class GatewayTestCase(RecoveryChecks, BrokerTestCase):
    """One broker per class; one simulator and gateway per test."""

    firmware = "V1.0.3"
    gateway_sanitizer_env = None  # SANITIZER_ENV; FAULT_SANITIZER_ENV where RSS is bounded
    device_opts = {"stale_timeout": 4, "refresh_interval": 5}
    device_name = "Test heater"  # None: the [device] section names none
    sim_extra = ()  # more panda2mqtt-sim options (--dialect doc, --printer-link, ...)

    def setUp(self):
        self.base = f"p2m{time.monotonic_ns() % 10**9}"
        self.mqtt = Mqtt(self.broker.port)
        self.sim = Sim(self.tmpdir.name, firmware=self.firmware, extra=self.sim_extra)
        self.gw = self.start_gateway()

    def start_gateway(self, **kw):
        opts = dict({"host": "127.0.0.1", "port": self.sim.port}, **self.device_opts)
        if self.device_name:
            opts["name"] = self.device_name
        kw.setdefault("sanitizer_env", self.gateway_sanitizer_env)
        return Gateway(self.tmpdir.name, self.broker.port, {"dev1": opts}, base=self.base, **kw)

    def tearDown(self):
        try:
            self.gw.assert_stopped_cleanly(self)
        finally:
            self.sim.stop()
            self.mqtt.close()

    # topics
    def t(self, suffix=""):
        return f"{self.base}/dev1{suffix}"

    def wait_online(self, timeout=15, since=0.0):
        self.mqtt.wait(self.t("/availability"), lambda p: p == "online", timeout, since)

    def wait_state(self, pred, timeout=15, since=0.0):
        return self.mqtt.wait_state(self.t(), pred, timeout, since)

    def new_frames(self, before, timeout=5, count=1):
        wait_until(lambda: len(self.sim.frames()) >= before + count, timeout,
                   what=f"{count} frame(s) at the simulator")
        return [json.loads(f) for f in self.sim.frames()[before:]]


class FaultTestCase(GatewayTestCase):
    """A GatewayTestCase whose gateways bound RSS growth (see RSS_GROWTH_MAX_KIB)."""
    gateway_sanitizer_env = FAULT_SANITIZER_ENV
