"""Names that move: the broker's and a device's host names are resolved again before
every (re)connect, without blocking the loop, over plain MQTT and over TLS, where the
certificate is checked against the name while an address is dialled.

What names mean is the test's: the gateway runs in a mount namespace of its own
(`unshare --mount`, as root) in which a temporary hosts file and resolv.conf are
bind-mounted over /etc/hosts and /etc/resolv.conf. Nothing on the machine changes, and
the namespace goes with the gateway. resolv.conf names a small DNS server that the test
runs on a loopback address (port 53), so both ways a name is looked up are exercised:
the hosts file, and DNS (what the add-on's core-mosquitto takes). A broker or device
"moves" when its record changes and the old address stops answering. Before this
change the gateway resolved the broker's name once (and then dialled the old address
forever), and a device's name on the loop (freezing everything for the resolver's
timeout at every redial): test_broker_that_moves_is_followed_plain and
test_device_lookup_does_not_block_the_loop fail on that code.

Brokers and simulators listen on two loopback addresses (127.R.0.2 and 127.R.0.3, R
picked per run) with the same port; nothing listens on 127.R.0.4. Every wait has a
deadline sized for a busy machine, and each test a bound of its own (TEST_BOUND); none
is a fixed sleep standing in for a condition."""
import os
import random
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (TLS_VERIFY_FAILED, WAIT_SCALE, Broker, Gateway, Mqtt, Pki, Sim,
                     TlsMosquitto, explained, free_port, wait_until)

NAME = "p2m-broker.test"        # the broker's name, on its certificate
OTHER = "p2m-elsewhere.test"    # a name for the same broker that its certificate lacks
DEVICE = "p2m-heater.test"      # a device's name
WAIT = 60  # seconds for one condition: reconnects back off (1, 2, 4 s ...), ASan is slow
TEST_BOUND = 150  # seconds for a whole test, every wait included (times WAIT_SCALE)


class DnsServer:
    """Answers A queries for the names in self.records (NXDOMAIN for other names, an
    empty answer for other types of a known name), over UDP on addr:53. Queries for the
    names in self.silent are counted and never answered."""

    def __init__(self, addr):
        self.records = {}
        self.silent = set()
        self.queries = {}
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def set(self, name, *addrs):
        with self.lock:
            self.records[name.lower()] = list(addrs)

    def _serve(self):
        while self.running:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(q)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        off, labels = 12, []
        while off < len(q) and q[off]:
            n = q[off]
            labels.append(q[off + 1:off + 1 + n].decode("ascii", "replace"))
            off += 1 + n
        off += 1
        if off + 4 > len(q):
            return None
        qtype = struct.unpack("!H", q[off:off + 2])[0]
        off += 4
        name = ".".join(labels).lower()
        with self.lock:
            self.queries[name] = self.queries.get(name, 0) + 1
            if name in self.silent:
                return None
            addrs = self.records.get(name)
        answers = b""
        if addrs is not None and qtype == 1:
            for a in addrs:
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(a)
        flags = 0x8180 if addrs is not None else 0x8183
        header = q[:2] + struct.pack("!HHHHH", flags, 1,
                                     len(addrs) if addrs and qtype == 1 else 0, 0, 0)
        return header + q[12:off] + answers

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


class Names:
    """The hosts file and resolv.conf the gateway sees, and the DNS server they name."""

    BASE_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"

    def __init__(self, tmp, dns_addr):
        self.hosts_path = os.path.join(tmp, "hosts")
        self.resolv_path = os.path.join(tmp, "resolv.conf")
        self.dns = DnsServer(dns_addr)
        with open(self.resolv_path, "w") as f:
            f.write(f"nameserver {dns_addr}\n")
        self.hosts({})

    def hosts(self, entries):
        """Rewrite the hosts file in place (the bind mount follows the inode)."""
        text = self.BASE_HOSTS + "".join(f"{a} {n}\n" for n, a in entries.items())
        with open(self.hosts_path, "w") as f:
            f.write(text)

    def wrap(self):
        """The command that runs a program in a mount namespace of its own, seeing this
        hosts file and resolv.conf (Gateway's wrap)."""
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf '
                  '&& shift 2 && exec "$@"')
        return ["unshare", "--mount", "sh", "-c", script, "sh", self.hosts_path,
                self.resolv_path]

    def stop(self):
        self.dns.stop()


def namespaces_usable(tmp):
    """None if this process may run a command with its own /etc/hosts, else why not."""
    probe = os.path.join(tmp, "probe-hosts")
    with open(probe, "w") as f:
        f.write("127.0.0.9 p2m-probe.test\n")
    try:
        run = subprocess.run(["unshare", "--mount", "sh", "-c",
                              'mount --bind "$0" /etc/hosts && getent hosts p2m-probe.test',
                              probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if run.returncode != 0 or "127.0.0.9" not in run.stdout:
        return f"unshare --mount with a bind-mounted /etc/hosts failed: {run.stderr.strip()}"
    return None


class AddressRecord:
    """avahi-publish announcing name -> addr (an mDNS address record, no reverse), kept
    up while it lives: avahi-daemon is shared with other tests, which may restart it,
    and avahi-publish exits when the daemon goes away, so it is started again."""

    def __init__(self, name, addr):
        self.args = ["avahi-publish", "-a", "-R", name, addr]
        self.established = threading.Event()
        self.stopping = threading.Event()
        self.proc = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._keep, daemon=True)
        self.thread.start()
        if not self.established.wait(30):
            self.stop()
            raise AssertionError(f"avahi-publish could not publish {name}")

    def _keep(self):
        while not self.stopping.is_set():
            with self.lock:
                if self.stopping.is_set():
                    return
                self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
            for line in self.proc.stdout:
                if line.startswith("Established"):
                    self.established.set()
            self.proc.wait()
            self.proc.stdout.close()
            self.stopping.wait(0.5)  # the daemon is restarting: try again shortly

    def stop(self):
        with self.lock:
            self.stopping.set()
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
        self.thread.join(15)


class NamesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-names-")
        why = namespaces_usable(cls.tmpdir.name)
        if why:
            cls.tmpdir.cleanup()
            raise unittest.SkipTest(why)
        # Loopback addresses of this run: A and B for what moves, C where nothing
        # listens, .53 for the DNS server.
        net = random.randint(64, 250)
        cls.A, cls.B = f"127.{net}.0.2", f"127.{net}.0.3"
        cls.C = f"127.{net}.0.4"  # nothing ever listens there
        dns_addr = f"127.{net}.0.53"
        try:
            cls.names = Names(cls.tmpdir.name, dns_addr)
        except OSError as e:
            cls.tmpdir.cleanup()
            raise unittest.SkipTest(f"cannot serve DNS on {dns_addr}:53: {e}")
        cls.pki = Pki(cls.tmpdir.name)
        # the broker's certificate names it, and only it: no address, no localhost
        cls.named_cert = cls.pki.server_cert("named", f"DNS:{NAME}")

    @classmethod
    def tearDownClass(cls):
        cls.names.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.deadline = time.monotonic() + TEST_BOUND * WAIT_SCALE
        self.stops = []  # run in reverse at tearDown
        self.gw = None
        self.names.hosts({})
        with self.names.dns.lock:
            self.names.dns.records.clear()
            self.names.dns.silent.clear()

    def tearDown(self):
        try:
            if self.gw:
                self.gw.assert_stopped_cleanly(self)
        finally:
            for stop in reversed(self.stops):
                stop()

    def wait_for(self, seconds=WAIT):
        """A wait's bound: seconds, or what is left of the test's own bound (the
        harness scales waits by WAIT_SCALE, so the remainder is divided by it)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fail(f"over the test's bound of {TEST_BOUND * WAIT_SCALE} s")
        return min(seconds, left / WAIT_SCALE)

    def keep(self, thing, stop="stop"):
        self.stops.append(getattr(thing, stop))
        return thing

    def gateway(self, mqtt, device, extra=""):
        """The gateway in a mount namespace of its own (self.names' hosts file and
        resolv.conf), with [mqtt] keys of its own and one device, dev1."""
        base = f"nm{time.monotonic_ns() % 10**9}"
        self.gw = Gateway(self.tmpdir.name, mqtt["port"], {"dev1": dict(
            {"name": "Named heater", "stale_timeout": 4, "refresh_interval": 5}, **device)},
            base=base, extra_ini=extra, mqtt=dict({"client_id": f"p2m-{base}"}, **mqtt),
            wrap=self.names.wrap())
        return self.gw

    def tls_broker(self, addr, tls_port, plain_port):
        """mosquitto on addr: TLS (anonymous) with the certificate that names NAME only,
        and plain for the test's observer."""
        return self.keep(TlsMosquitto(self.tmpdir.name, self.pki.ca,
                                      [(tls_port, self.named_cert)], plain_port, addr))

    def observer(self, port, host):
        return self.keep(Mqtt(port, host=host), "close")

    def sim(self, addr, port=0):
        return self.keep(Sim(self.tmpdir.name, port=port, extra=("--host", addr)))

    def wait_bridge(self, obs):
        gw = self.gw

        def online():
            obs.wait(f"{gw.base}/bridge/state", lambda p: p == "online", self.wait_for())
            obs.wait(f"{gw.base}/dev1/availability", lambda p: p == "online",
                     self.wait_for())
            return obs.wait_state(f"{gw.base}/dev1", lambda s: s.get("firmware_version"),
                                  self.wait_for())
        return explained(online, gw.log, 4000, lambda: f"alive: {gw.alive()}; gateway log")


class BrokerNames(NamesTestCase):
    def test_broker_that_moves_is_followed_plain(self):
        """[mqtt] host is a name in the hosts file; the broker moves to another
        address: the gateway's reconnect finds it there."""
        sim = self.sim("127.0.0.1")
        port = free_port()
        broker_a = self.keep(Broker(self.tmpdir.name, port, self.A))
        self.names.hosts({NAME: self.A})
        obs_a = self.observer(port, self.A)
        gw = self.gateway({"host": NAME, "port": port}, {"host": "127.0.0.1", "port": sim.port})
        self.wait_bridge(obs_a)

        broker_b = self.keep(Broker(self.tmpdir.name, port, self.B))
        obs_b = self.observer(port, self.B)
        self.names.hosts({NAME: self.B})
        broker_a.stop()
        self.wait_bridge(obs_b)
        self.assertTrue(broker_b.proc.poll() is None)
        log = gw.log()
        self.assertIn(f"mqtt: connected to {NAME}:{port} ({self.A})", log)
        self.assertIn(f"mqtt: broker {NAME} moved from {self.A} to {self.B}", log)
        self.assertIn(f"mqtt: connected to {NAME}:{port} ({self.B})", log)

    def test_broker_that_moves_is_followed_tls(self):
        """The same over TLS, with the name from DNS: the certificate carries only the
        name, so each session proves it was checked against the name, not the address."""
        sim = self.sim("127.0.0.1")
        tls_port, plain_port = free_port(), free_port()
        broker_a = self.tls_broker(self.A, tls_port, plain_port)
        self.names.dns.set(NAME, self.A)
        obs_a = self.observer(plain_port, self.A)
        gw = self.gateway({"host": NAME, "port": tls_port, "tls": "true",
                           "cafile": self.pki.ca},
                          {"host": "127.0.0.1", "port": sim.port})
        self.wait_bridge(obs_a)

        self.tls_broker(self.B, tls_port, plain_port)
        obs_b = self.observer(plain_port, self.B)
        self.names.dns.set(NAME, self.B)
        broker_a.stop()
        self.wait_bridge(obs_b)
        log = gw.log()
        self.assertIn(f"mqtt: connecting to {NAME}:{tls_port} (TLS)", log)
        self.assertIn(f"mqtt: connected to {NAME}:{tls_port} ({self.A})", log)
        self.assertIn(f"mqtt: connected to {NAME}:{tls_port} ({self.B})", log)
        self.assertIn(f"mqtt: broker {NAME} moved from {self.A} to {self.B}", log)
        self.assertNotIn("certificate of broker", log)

    def test_tls_name_not_on_certificate_is_refused_and_retried(self):
        """The same broker under a name its certificate does not carry: no session,
        the reason logged, attempts go on; insecure = true (no name check) connects."""
        sim = self.sim("127.0.0.1")
        tls_port, plain_port = free_port(), free_port()
        broker = self.tls_broker(self.A, tls_port, plain_port)
        self.names.hosts({OTHER: self.A})
        obs = self.observer(plain_port, self.A)
        gw = self.gateway({"host": OTHER, "port": tls_port, "tls": "true",
                           "cafile": self.pki.ca},
                          {"host": "127.0.0.1", "port": sim.port})
        try:
            wait_until(lambda: broker.tls_attempts(tls_port, failure="bad certificate") >= 2,
                       self.wait_for(), what="two TLS attempts (retried)")
        except AssertionError as e:
            raise AssertionError(f"{e}; gateway log:\n{gw.log()[-3000:]}\nbroker log:\n"
                                 f"{broker.text()[-3000:]}") from None
        wait_until(lambda: TLS_VERIFY_FAILED.search(gw.log()), self.wait_for(15),
                   what="'certificate verify failed' in the gateway log")
        log = gw.log()
        self.assertIn(f"the certificate of broker {OTHER} is refused: hostname mismatch", log)
        self.assertTrue(gw.alive())
        self.assertNotIn("online", [p for _, p, _, _ in obs.on(f"{gw.base}/bridge/state")])
        self.assertNotIn(f"p2m-{gw.base}", broker.text(), "the broker accepted a session")
        gw.assert_stopped_cleanly(self)

        self.gw = None
        gw = self.gateway({"host": OTHER, "port": tls_port, "tls": "true",
                           "cafile": self.pki.ca, "insecure": "true"},
                          {"host": "127.0.0.1", "port": sim.port})
        self.wait_bridge(obs)

    def test_broker_name_whose_first_address_is_dead(self):
        """A name with two addresses, the first one dead: the second is tried at once,
        not after a backoff (libmosquitto's own lookup tried them in turn)."""
        sim = self.sim("127.0.0.1")
        port = free_port()
        self.keep(Broker(self.tmpdir.name, port, self.B))
        self.names.dns.set(NAME, self.C, self.B)
        obs = self.observer(port, self.B)
        gw = self.gateway({"host": NAME, "port": port}, {"host": "127.0.0.1", "port": sim.port})
        self.wait_bridge(obs)
        log = gw.log()
        self.assertIn(f"mqtt: broker {NAME} is at {self.C}", log)
        self.assertIn(f"mqtt: trying the next address of {NAME}", log)
        self.assertIn(f"mqtt: connected to {NAME}:{port} ({self.B})", log)
        self.assertNotIn("next connection attempt in", log.split("trying the next address")[0])

    def test_broker_local_name_through_avahi(self):
        """A .local broker name is asked of avahi-daemon (not DNS), again on every
        reconnect. Runs only when avahi-daemon is already up (never started here)."""
        if subprocess.run(["avahi-daemon", "-c"], capture_output=True,
                          timeout=10).returncode != 0:
            self.skipTest("avahi-daemon is not running")
        local = f"p2m-broker-{random.randint(0, 10**6)}.local"
        sim = self.sim("127.0.0.1")
        port = free_port()
        broker_a = self.keep(Broker(self.tmpdir.name, port, self.A))
        obs_a = self.observer(port, self.A)
        pub = self.keep(AddressRecord(local, self.A))
        gw = self.gateway({"host": local, "port": port}, {"host": "127.0.0.1", "port": sim.port})
        self.wait_bridge(obs_a)

        self.keep(Broker(self.tmpdir.name, port, self.B))
        obs_b = self.observer(port, self.B)
        pub.stop()
        self.keep(AddressRecord(local, self.B))
        broker_a.stop()
        self.wait_bridge(obs_b)
        log = gw.log()
        self.assertIn(f"mqtt: connected to {local}:{port} ({self.A})", log)
        self.assertIn(f"mqtt: connected to {local}:{port} ({self.B})", log)
        self.assertEqual(self.names.dns.queries.get(local, 0), 0, "asked DNS for a .local name")

    def test_tls_server_name_indication_is_the_name(self):
        """SNI carries the broker's name, not the address dialled (a TLS front end that
        routes by name needs it)."""
        port = free_port()
        seen = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.named_cert)
        ctx.sni_callback = lambda sock, name, c: seen.append(name)
        srv = socket.create_server((self.A, port))
        srv.settimeout(0.2)
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                conn.settimeout(5)
                try:
                    with ctx.wrap_socket(conn, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    conn.close()
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.stops.append(lambda: (stop.set(), thread.join(5), srv.close()))
        self.names.hosts({NAME: self.A})
        self.gateway({"host": NAME, "port": port, "tls": "true", "cafile": self.pki.ca},
                     {"host": "127.0.0.1", "port": 9})
        wait_until(lambda: seen, self.wait_for(), what="a TLS ClientHello at the fake broker")
        self.assertEqual(seen[0], NAME)


class DeviceNames(NamesTestCase):
    def device_moves(self, publish):
        """[device] host is a name; the device moves to another address (the old one
        stops answering): the gateway's redial finds it at the new one."""
        broker = self.keep(Broker(self.tmpdir.name))
        obs = self.observer(broker.port, "127.0.0.1")
        sim_a = self.sim(self.A)
        publish(self.A)
        gw = self.gateway({"host": "127.0.0.1", "port": broker.port},
                          {"host": DEVICE, "port": sim_a.port})
        self.wait_bridge(obs)

        sim_b = self.sim(self.B, port=sim_a.port)
        publish(self.B)
        since = time.monotonic()
        sim_a.stop()
        obs.wait(f"{gw.base}/dev1/availability", lambda p: p == "offline", self.wait_for(),
                 since)
        obs.wait(f"{gw.base}/dev1/availability", lambda p: p == "online", self.wait_for(),
                 since)
        obs.wait_state(f"{gw.base}/dev1", lambda s: s.get("firmware_version"),
                       self.wait_for(), since)
        self.assertIn(f"device dev1: {DEVICE} is now at {self.B} (was {self.A})", gw.log())
        self.assertTrue(sim_b.proc.poll() is None)

    def test_device_that_moves_is_followed_hosts_file(self):
        self.device_moves(lambda addr: self.names.hosts({DEVICE: addr}))

    def test_device_that_moves_is_followed_dns(self):
        self.device_moves(lambda addr: self.names.dns.set(DEVICE, addr))

    def test_device_name_whose_first_address_is_dead(self):
        """A device name with two addresses, the first one dead: the second is dialled
        at the next second, not after a backoff."""
        broker = self.keep(Broker(self.tmpdir.name))
        obs = self.observer(broker.port, "127.0.0.1")
        sim = self.sim(self.B)
        self.names.dns.set(DEVICE, self.C, self.B)
        gw = self.gateway({"host": "127.0.0.1", "port": broker.port},
                          {"host": DEVICE, "port": sim.port})
        self.wait_bridge(obs)
        log = gw.log()
        self.assertIn(f"device dev1: {DEVICE} is {self.C}", log)
        self.assertIn(f"device dev1: {DEVICE} is {self.B}", log)
        self.assertNotIn("is now at", log)  # trying the next address is not a move

    def test_device_name_that_does_not_resolve_is_retried(self):
        """A name nobody knows: the reason is logged, the gateway keeps trying, and the
        device comes online once the name appears."""
        broker = self.keep(Broker(self.tmpdir.name))
        obs = self.observer(broker.port, "127.0.0.1")
        sim = self.sim(self.A)
        gw = self.gateway({"host": "127.0.0.1", "port": broker.port},
                          {"host": DEVICE, "port": sim.port})
        wait_until(lambda: gw.log().count(f"cannot resolve {DEVICE}") >= 2, self.wait_for(),
                   what="two failed lookups, logged")
        obs.wait(f"{gw.base}/bridge/state", lambda p: p == "online", self.wait_for())
        self.names.dns.set(DEVICE, self.A)
        self.wait_bridge(obs)

    def test_device_lookup_does_not_block_the_loop(self):
        """While a device's name gets no answer from DNS (each lookup waits for its
        timeout), the gateway keeps serving: Home Assistant's birth message is answered
        with discovery at once, every time. A lookup made on the loop (lws's
        getaddrinfo) froze everything for the resolver's timeout at every redial."""
        silent = "p2m-silent.test"
        broker = self.keep(Broker(self.tmpdir.name))
        obs = self.observer(broker.port, "127.0.0.1")
        sim = self.sim("127.0.0.1")
        with self.names.dns.lock:
            self.names.dns.silent.add(silent)
        # dev1 at an address; dev2 at the name that never resolves
        gw = self.gateway({"host": "127.0.0.1", "port": broker.port},
                          {"host": "127.0.0.1", "port": sim.port},
                          extra=f"\n[device dev2]\nhost = {silent}\nport = {sim.port}\n")
        self.wait_bridge(obs)
        topic = "homeassistant/device/dev1/config"

        def queries():
            with self.names.dns.lock:
                return self.names.dns.queries.get(silent, 0)
        first = queries()
        latencies = []
        deadline = time.monotonic() + self.wait_for() * WAIT_SCALE
        # at least three more lookups of the silent name (three redials), probing all along
        while queries() < first + 6 and time.monotonic() < deadline:
            since = time.monotonic()
            obs.publish("homeassistant/status", "online")
            obs.wait(topic, timeout=self.wait_for(), since=since)
            latencies.append(time.monotonic() - since)
        # an idle loop answers in milliseconds; a lookup on the loop blocked for seconds
        self.assertLess(max(latencies), 4, f"birth answered after {max(latencies):.1f} s "
                        f"({len(latencies)} probes)")
        self.assertGreaterEqual(queries(), first + 6, "the silent name was not asked again")
        self.assertIn(f"cannot resolve {silent}", gw.log())


if __name__ == "__main__":
    unittest.main()
