"""The gateway on a clustered broker: RabbitMQ's MQTT plugin, two nodes on loopback.

The test starts its own two-node cluster (tests/brokers/brokers.py: its own node names,
ports, data directories, Erlang cookie and epmd; never the system service). The gateway
connects to node 1; the test's Home Assistant side (HomeAssistant: subscribes to '#',
sends Home Assistant's birth message on every connect) to node 2. The device is the
simulator.

What must work across the cluster, and does: discovery (valid for Home Assistant),
availability, state and commands, the gateway's Will when its process dies, a restart of
either node. The differences from mosquitto are measured here too, and asserted, so that
docs/BROKERS.md stays true: retained messages are held by the node that received them and
never handed to wildcard subscriptions; no Will when the gateway's node stops. Every wait
is bounded; the whole class by ctest's TIMEOUT."""
import json
import signal
import sys
import tempfile
import time
import unittest

from brokers import HomeAssistant, RabbitCluster, rabbit_missing, retained_now
from harness import Explains, Gateway, Sim, wait_until
import ha_schema

T = 60           # any one condition on a running cluster
T_NODE = 300     # a node's restart (the survivor of a two-node cluster may wait for it)


def log(msg):
    print(f"  {msg}", file=sys.stderr, flush=True)


@unittest.skipIf(rabbit_missing(), rabbit_missing())
class RabbitClusterTest(Explains, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="p2m-rabbit-")
        cls.addClassCleanup(cls.tmpdir.cleanup)
        cls.cluster = RabbitCluster(cls.tmpdir.name, nodes=2)
        cls.addClassCleanup(cls.cluster.stop)
        took = cls.cluster.start()
        cls.n1, cls.n2 = cls.cluster.nodes
        log(f"two-node cluster up in {took:.1f} s: {cls.n1.name} (MQTT {cls.n1.mqtt_port}), "
            f"{cls.n2.name} (MQTT {cls.n2.mqtt_port})")
        cls.base = f"p2m{cls.cluster.tag}"
        cls.ha = HomeAssistant(cls.n2.mqtt_port)  # Home Assistant on node 2, already up
        cls.addClassCleanup(cls.ha.close)
        cls.sim = Sim(cls.tmpdir.name)
        cls.addClassCleanup(cls.sim.stop)
        cls.gw = cls.start_gateway()

    @classmethod
    def start_gateway(cls):
        gw = Gateway(cls.tmpdir.name, cls.n1.mqtt_port,
                     {"dev1": {"host": "127.0.0.1", "port": cls.sim.port, "name": "Clustered",
                               "stale_timeout": 10, "refresh_interval": 5}},
                     base=cls.base)
        cls.addClassCleanup(lambda: gw.alive() and gw.stop(signal.SIGKILL))
        return gw

    # helpers
    def t(self, suffix=""):
        return f"{self.base}/dev1{suffix}"

    def wait_ha(self, topic, pred=lambda p: True, timeout=T, since=0.0):
        return self.explain(lambda: self.ha.wait(topic, pred, timeout, since))

    def assert_served(self, since=0.0, timeout=T):
        """Home Assistant on node 2 has, since `since`: valid discovery, the bridge and the
        device online, a whole state."""
        disc = json.loads(self.wait_ha("homeassistant/device/dev1/config",
                                       lambda p: bool(p), timeout, since))
        self.assertEqual(ha_schema.validate_device_discovery(disc), [])
        self.wait_ha(f"{self.base}/bridge/state", lambda p: p == "online", timeout, since)
        self.wait_ha(self.t("/availability"), lambda p: p == "online", timeout, since)
        state = json.loads(self.wait_ha(self.t("/details"), lambda p: "firmware_version" in p,
                                        timeout, since))
        self.assertEqual(state["firmware_version"], "V1.0.3")

    def command_reaches_device(self, target):
        before = len(self.sim.frames())
        self.ha.publish(self.t("/set/target_temperature"), str(target))  # through node 2
        self.explain(lambda: wait_until(lambda: len(self.sim.frames()) > before, T,
                                        what="the command at the simulator"))
        self.assertEqual(json.loads(self.sim.frames()[before]), {"settings": {"set_temp": target}})
        self.wait_ha(self.t(), lambda p: json.loads(p).get("target_temperature") == target)

    # tests, in name order, on one cluster
    def test_1_discovery_availability_state_across_the_cluster(self):
        self.assert_served()

    def test_2_commands_from_node_2_reach_the_device(self):
        self.command_reaches_device(41)
        # the plain and the JSON topic, in the proven order
        before = len(self.sim.frames())
        self.ha.publish(self.t("/set"), '{"mode":"heat","target_temperature":45}')
        self.explain(lambda: wait_until(lambda: len(self.sim.frames()) >= before + 4, T,
                                        what="4 frames at the simulator"))
        self.assertEqual([json.loads(f) for f in self.sim.frames()[before:before + 4]],
                         [{"settings": {"isrunning": 0}}, {"settings": {"work_mode": 2}},
                          {"settings": {"set_temp": 45}}, {"settings": {"work_on": True}}])

    def test_3_retained_messages_stay_on_their_node(self):
        """Differences from mosquitto, measured: the retained discovery and availability are
        on node 1 only, and no node hands retained messages to a wildcard subscription.
        What serves Home Assistant instead: its birth message, which the gateway answers
        with discovery (seen live on node 2)."""
        disc = "homeassistant/device/dev1/config"
        avail = self.t("/availability")
        seen = {
            "node 1, exact topic": retained_now(self.n1.mqtt_port, disc),
            "node 2, exact topic": retained_now(self.n2.mqtt_port, disc),
            "node 1, homeassistant/#": retained_now(self.n1.mqtt_port, "homeassistant/#"),
            "node 2, availability exact": retained_now(self.n2.mqtt_port, avail),
        }
        for what, got in seen.items():
            log(f"retained for a new subscriber on {what}: {[t for t, _ in got]}")
        self.assertEqual([t for t, _ in seen["node 1, exact topic"]], [disc])
        self.assertEqual(seen["node 2, exact topic"], [], "retained is node-local")
        self.assertEqual(seen["node 1, homeassistant/#"], [], "no retained for wildcards")
        self.assertEqual(seen["node 2, availability exact"], [])

        since = time.monotonic()
        self.ha.birth()
        disc_payload = self.wait_ha(disc, lambda p: bool(p), T, since)
        self.assertEqual(ha_schema.validate_device_discovery(json.loads(disc_payload)), [])

    def test_4_the_will_reaches_node_2_when_the_gateway_dies(self):
        since = time.monotonic()
        self.gw.proc.kill()  # SIGKILL: only the broker can say it is gone
        self.gw.proc.wait(30)
        self.wait_ha(f"{self.base}/bridge/state", lambda p: p == "offline", T, since)
        log(f"Will on node 2 {time.monotonic() - since:.1f} s after the kill")
        since = time.monotonic()
        type(self).gw = self.start_gateway()
        self.assert_served(since)

    def test_5_restart_of_the_gateways_node(self):
        since = time.monotonic()
        down, back = self.cluster.restart(self.n1, T_NODE)
        log(f"node 1 stopped in {down:.1f} s, answering again {back:.1f} s after the stop")
        # the gateway reconnects by itself and sends everything again, live to node 2
        self.assert_served(since, timeout=T_NODE)
        bridge = [p for _, p, _, at in self.ha.on(f"{self.base}/bridge/state") if at >= since]
        log(f"gateway served on node 2 again {time.monotonic() - since:.1f} s after the stop; "
            f"bridge/state seen on node 2 meanwhile: {bridge}")
        self.assertEqual(bridge[0], "online", "RabbitMQ sent the Will of a client of a node "
                         "that stopped: docs/BROKERS.md says it does not")
        self.command_reaches_device(42)

    def test_6_restart_of_home_assistants_node(self):
        births = self.ha.births
        since = time.monotonic()
        down, back = self.cluster.restart(self.n2, T_NODE)
        log(f"node 2 stopped in {down:.1f} s, answering again {back:.1f} s after the stop")
        self.explain(lambda: wait_until(lambda: self.ha.births > births, T_NODE, interval=0.5,
                                        what="Home Assistant reconnected to node 2"))
        log(f"Home Assistant reconnected {time.monotonic() - since:.1f} s after the stop")
        # node 2 has no retained copy of availability: its birth brings discovery back
        # and, a few seconds later, the bridge state, availability and state, live
        self.assertEqual(retained_now(self.n2.mqtt_port, self.t("/availability")), [])
        self.wait_ha("homeassistant/device/dev1/config", lambda p: bool(p), T_NODE, since)
        self.wait_ha(f"{self.base}/bridge/state", lambda p: p == "online", T, since)
        self.wait_ha(self.t("/availability"), lambda p: p == "online", T, since)
        self.wait_ha(self.t(), lambda p: '"mode"' in p, T, since)
        self.wait_ha(self.t("/details"), lambda p: "firmware_version" in p, T, since)
        log(f"after its node's restart Home Assistant had discovery, availability and state "
            f"{time.monotonic() - since:.1f} s after the stop")
        self.command_reaches_device(43)


if __name__ == "__main__":
    unittest.main()
