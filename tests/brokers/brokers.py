"""Brokers other than mosquitto, started by the tests themselves, on loopback only.

- RabbitCluster: Debian's rabbitmq-server (3.10, MQTT plugin) as N nodes clustered on
  this machine, never the system service: each node has its own name, ports (MQTT, AMQP,
  Erlang distribution), data and log directories under the test's temporary directory;
  the cluster has its own Erlang cookie (a $HOME of its own) and its own epmd on a free
  port (ERL_EPMD_PORT), so nothing is shared with any other RabbitMQ or Erlang node here.
- Aedes: the aedes MQTT broker (Node.js, from npm: tools/brokers/), one process.

Every wait has a deadline; stop() always ends what start() began."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Mqtt, free_port, wait_port, wait_until  # noqa: E402

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
AEDES_DIR = os.path.join(ROOT, "tools", "brokers")


def rabbit_missing():
    """None, or why RabbitMQ cannot run here."""
    for f in ("rabbitmq-server", "rabbitmqctl"):
        if not os.access(os.path.join(RABBIT_BIN, f), os.X_OK):
            return f"{RABBIT_BIN}/{f} not found (apt-get install rabbitmq-server)"
    return None


def aedes_missing():
    if not shutil.which("node"):
        return "node not found"
    if not os.path.isdir(os.path.join(AEDES_DIR, "node_modules", "aedes")):
        return f"aedes not installed in {AEDES_DIR} (tools/install-deps.sh: npm ci there)"
    return None


class RabbitNode:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"p2m{index}-{cluster.tag}@localhost"
        self.dir = os.path.join(cluster.dir, f"node{index}")
        self.mqtt_port, self.amqp_port, self.dist_port = free_port(), free_port(), free_port()
        self.log = os.path.join(self.dir, "stdout.log")
        self.proc = None
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
                    f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}\n"
                    "mqtt.allow_anonymous = true\n"
                    "mqtt.default_user = guest\nmqtt.default_pass = guest\n"
                    "log.console = false\nlog.file.level = info\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").close()

    def env(self):
        return dict(os.environ, HOME=self.cluster.dir, ERL_EPMD_PORT=str(self.cluster.epmd_port),
                    RABBITMQ_NODENAME=self.name, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                    RABBITMQ_NODE_PORT=str(self.amqp_port),
                    RABBITMQ_DIST_PORT=str(self.dist_port),
                    RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"),
                    RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq.conf"),
                    RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                    RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                    RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                    RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"),
                    RABBITMQ_PLUGINS_EXPAND_DIR=os.path.join(self.dir, "plugins-expand"),
                    # loopback only: epmd and the inter-node (distribution) listener too
                    ERL_EPMD_ADDRESS="127.0.0.1",
                    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface "
                                                        "{127,0,0,1}")

    def ctl(self, *args, timeout=120, check=True):
        run = subprocess.run([os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.name,
                              "--timeout", str(timeout), *args],
                             env=self.env(), capture_output=True, text=True,
                             timeout=timeout + 30)
        self.last_rc = run.returncode
        if check and run.returncode != 0:
            raise AssertionError(f"rabbitmqctl -n {self.name} {' '.join(args)}: "
                                 f"{run.returncode}\n{run.stdout}{run.stderr}\n"
                                 f"node log:\n{self.tail()}")
        return run.stdout

    def start(self):
        with open(self.log, "a") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([os.path.join(RABBIT_BIN, "rabbitmq-server")],
                                         env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def await_up(self, timeout=180):
        """Until the node says it has booted (it must first be known to epmd, which
        await_startup does not wait for) and its MQTT port answers."""
        def booted():
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.tail()}")
            self.ctl("await_startup", timeout=10, check=False)
            return self.last_rc == 0
        try:
            wait_until(booted, timeout, interval=1, what=f"node {self.name} to boot")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.tail()}") from None
        wait_port(self.mqtt_port, timeout=60)

    def stop(self, timeout=120):
        """Stop the node's VM (rabbitmqctl stop), or kill it when that does not work."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.ctl("stop", timeout=timeout, check=False)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def tail(self, n=4000):
        out = ""
        for path in (self.log, os.path.join(self.dir, "log", f"{self.name}.log")):
            try:
                with open(path, errors="replace") as f:
                    out += f"--- {path}\n{f.read()[-n:]}\n"
            except OSError:
                pass
        return out


class RabbitCluster:
    """N RabbitMQ nodes with the MQTT plugin, joined into one cluster."""

    def __init__(self, tmp, nodes=2):
        self.dir = os.path.join(tmp, "rabbit")
        os.makedirs(self.dir)
        self.tag = os.urandom(3).hex()
        self.epmd_port = free_port()
        cookie = os.path.join(self.dir, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write("P2MTEST" + os.urandom(12).hex().upper())
        os.chmod(cookie, 0o400)
        self.nodes = [RabbitNode(self, i + 1) for i in range(nodes)]

    def start(self, timeout=240):
        started = time.monotonic()
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            n.await_up(timeout)
        first = self.nodes[0]
        for n in self.nodes[1:]:
            n.ctl("stop_app")
            n.ctl("join_cluster", first.name)
            n.ctl("start_app")
            n.await_up(timeout)
        wait_until(lambda: all(m.name in first.ctl("cluster_status") for m in self.nodes),
                   60, interval=1, what="every node in the cluster status")
        return time.monotonic() - started

    def restart(self, node, timeout=300):
        """Stop one node and start it again (it rejoins: same name, same data directory).
        Returns (seconds down, seconds until it answers again)."""
        t0 = time.monotonic()
        node.stop()
        down = time.monotonic() - t0
        node.start()
        node.await_up(timeout)
        return down, time.monotonic() - t0

    def stop(self):
        for n in reversed(self.nodes):
            try:
                n.stop(timeout=60)
            except Exception:  # noqa: BLE001 - the kill below ends it anyway
                pass
            n.kill()
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True,
                       timeout=30, env=dict(os.environ, ERL_EPMD_PORT=str(self.epmd_port)))


class Aedes:
    """tools/brokers/aedes-broker.js on a free loopback port; restartable on that port.
    Its retained messages live in memory: a restart loses them."""

    def __init__(self, tmp, port=None):
        self.port = port or free_port()
        self.log = os.path.join(tmp, f"aedes-{self.port}.log")
        self.proc = None
        self.start()

    def start(self):
        with open(self.log, "a") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(["node", os.path.join(AEDES_DIR, "aedes-broker.js"),
                                          "--port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=AEDES_DIR)
        wait_port(self.port, timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @staticmethod
    def version():
        with open(os.path.join(AEDES_DIR, "node_modules", "aedes", "package.json")) as f:
            return json.load(f)["version"]


class HomeAssistant(Mqtt):
    """The test's Home Assistant side: subscribes to everything it needs and, on every
    connect and reconnect (paho reconnects by itself), sends Home Assistant's birth
    message, homeassistant/status = online (not retained, as Home Assistant does)."""

    def __init__(self, port, prefix="homeassistant", subscribe="#"):
        self.prefix = prefix
        self.topic = subscribe
        self.births = 0
        super().__init__(port, subscribe=subscribe)
        # Subscribed for sure (SUBACK) before anything else: on a cluster a message
        # published elsewhere before that is not delivered.
        subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, granted: subscribed.set()
        self.client.on_connect = self._on_connect
        self.client.subscribe(self.topic, qos=1)
        if not subscribed.wait(30):
            raise AssertionError(f"no SUBACK for {self.topic} within 30 s")
        self.birth()

    def _on_connect(self, client, userdata, flags, rc):
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        self.birth()

    def birth(self):
        self.births += 1
        self.client.publish(f"{self.prefix}/status", "online", qos=1)


def retained_now(port, topic, timeout=30):
    """What a new client subscribing to topic (exactly, or a wildcard) is given as
    retained, judged without a fixed wait: after the subscription it publishes a marker
    to itself and waits for it; a broker hands out retained messages while it answers the
    SUBSCRIBE, before it takes the client's next PUBLISH. Returns [(topic, payload)]."""
    marker = f"p2m-marker/{os.urandom(4).hex()}"
    got, done = [], threading.Event()
    client = paho.Client(client_id=f"probe-{time.monotonic_ns()}")

    def on_message(c, u, msg):
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            got.append((msg.topic, msg.payload.decode("utf-8", "replace")))

    def on_subscribe(c, u, mid, granted):
        if mid == state["mid"]:
            c.publish(marker, "m", qos=1)

    state = {}
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, u, f, rc: state.update(
        mid=c.subscribe([(topic, 1), (marker, 1)])[1])
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise AssertionError(f"no marker back within {timeout} s on port {port}")
        return got
    finally:
        client.loop_stop()
        client.disconnect()
