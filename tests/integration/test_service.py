"""Running panda2mqtt as a service people trust (docs/SERVICE.md), the process side:
reloading without dropping links (SIGHUP, the reload request), systemd readiness, status
and watchdog, and logs journald understands. The bridge device, the request API and
forgetting devices: test_service_bridge.py.
"""
import json
import os
import signal
import socket
import time
import unittest

from harness import free_port, wait_until
from service_case import MACS, NotifySocket, ServiceCase, connects, device, speak


class Reload(ServiceCase):
    """SIGHUP (systemctl reload) and bridge/request/reload read the file again."""

    def test_reload_applies_device_changes_and_keeps_unchanged_links(self):
        keep, drop, change = self.sim(MACS[0]), self.sim(MACS[1]), self.sim(MACS[2])
        gw = self.gateway({"keep": device(keep, name="Kept"), "drop": device(drop),
                           "change": device(change, name="Before")})
        for dev in ("keep", "drop", "change"):
            self.wait_online(dev)
            self.mqtt.wait_json(self.disc(dev), lambda d: d.get("components"))
        self.assertEqual([connects(s) for s in (keep, drop, change)], [1, 1, 1])
        add = self.sim(MACS[3])
        gw.rewrite({"keep": device(keep, name="Kept"), "change": device(change, name="After"),
                    "add": device(add)})
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)

        self.wait_online("add", since=t0)
        self.mqtt.wait_json(self.disc("add"), lambda d: d["device"]["name"], since=t0)
        # changed: reconnected (a second connection) and its new name in discovery
        wait_until(lambda: connects(change) == 2, 20, what="the changed device reconnected")
        self.mqtt.wait_json(self.disc("change"), lambda d: d["device"]["name"] == "After",
                            since=t0)
        # removed: withdrawn (empty retained discovery and availability) and let go
        self.wait_empty(self.disc("drop"), t0)
        self.wait_empty(self.t("drop", "/availability"), t0)
        wait_until(lambda: drop.control("clients") == "ok clients 0", 20,
                   what="the removed device's link closed")
        wait_until(lambda: self.info_ids() == ["add", "change", "keep"], 20,
                   what=f"bridge/info listing add, change, keep; last: {self.info()}")
        # unchanged: the same link, still speaking (a state after the reload), and no
        # other connection at its simulator
        t1 = time.monotonic()
        speak(keep, 33)
        self.mqtt.wait_json(self.t("keep"), lambda s: s["chamber_temperature"] == 33, since=t1)
        self.assertEqual(connects(keep), 1, "the unchanged device's link was dropped")
        self.assertEqual(keep.control("clients"), "ok clients 1")
        with open(keep.stderr) as f:
            self.assertNotIn("disconnected", f.read())
        self.assertNotIn("offline", [p for _, p, _, at in self.mqtt.on(
            self.t("keep", "/availability")) if at >= t0])
        self.assertNotIn("", [p for _, p, _, at in self.mqtt.on(self.disc("keep"))
                              if at >= t0], "the unchanged device was withdrawn")
        self.assertTrue(gw.alive())
        log = gw.log()
        self.assertIn("received Hangup; reloading", log)
        self.assertIn("device drop: no longer configured; withdrawn", log)
        self.assertIn("device change: its [device] section changed; connecting again", log)
        self.assertIn("device add: added to the configuration", log)
        self.assertIn("reload: done", log)

    def test_invalid_configuration_keeps_the_running_one(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        gw.rewrite({"dev1": device(sim)}, extra_ini="[safety]\nmax_target_temp = lots\n")
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the running configuration stays" in gw.log(), 15,
                   what="the reload refused")
        self.assertRegex(gw.log(), r"error: reload: .*gw-\d+\.ini:\d+: \[safety\] "
                         r"max_target_temp: 'lots' is not a number; the running "
                         r"configuration stays")
        # the same through the API: an error response carrying the transaction
        r = self.request("reload", {"transaction": "r-1"})
        self.assertEqual((r["status"], r["transaction"]), ("error", "r-1"))
        self.assertIn("'lots' is not a number", r["error"])
        # nothing changed: still running, same link
        t1 = time.monotonic()
        speak(sim, 34)
        self.mqtt.wait_json(self.t("dev1"), lambda s: s["chamber_temperature"] == 34, since=t1)
        self.assertTrue(gw.alive())
        self.assertEqual(connects(sim), 1)
        self.assertEqual(self.mqtt.last(self.t("dev1", "/availability")), "online")
        # and a valid file is taken again
        gw.rewrite({"dev1": device(sim)})
        r = self.request("reload", {"transaction": 2})
        self.assertEqual((r["status"], r["transaction"], r["data"]),
                         ("ok", 2, {"restart_needed": []}))
        wait_until(lambda: "reload: done" in gw.log(), 15, what="the reload applied")
        self.assertEqual(connects(sim), 1)

    def test_mqtt_change_makes_a_new_session_and_keeps_device_links(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        gw.rewrite({"dev1": device(sim)}, mqtt={"client_id": f"other{self.base}"})
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        bridge = f"{self.base}/bridge/state"
        self.mqtt.wait(bridge, lambda p: p == "offline", since=t0)
        self.mqtt.wait(bridge, lambda p: p == "online", since=t0)
        # everything retained again on the new session
        self.wait_online("dev1", since=t0)
        self.mqtt.wait(self.disc("dev1"), lambda p: p != "", since=t0)
        log = gw.log()
        self.assertIn("reload: [mqtt] changed; connecting to the broker again", log)
        self.assertEqual(log.count("mqtt: connected to"), 2)
        self.assertEqual(connects(sim), 1, "the device link went with the broker session")
        with open(self.broker.log) as f:
            self.assertIn(f"other{self.base}", f.read())  # the new client id

    def test_a_reload_during_a_reload_waits_its_turn(self):
        """An [mqtt] change ends the old session first: the loop turns while the broker
        acknowledges its "offline" (up to 2 s), and a second SIGHUP can come then. It is
        applied after the first, never inside it. A paused broker holds the first reload
        in that wait."""
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        t0 = time.monotonic()
        gw.rewrite({"dev1": device(sim)}, mqtt={"client_id": f"first{self.base}"})
        self.broker.pause()
        try:
            gw.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "reload: [mqtt] changed" in gw.log(), 15,
                       what="the first reload ending the session")
            gw.rewrite({"dev1": device(sim, name="Second")},
                       mqtt={"client_id": f"second{self.base}"})
            gw.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: gw.log().count("received Hangup") == 2, 15,
                       what="the second SIGHUP read")
        finally:
            self.broker.resume()
        wait_until(lambda: gw.log().count("reload: done") == 2, 30, what="both reloads done")
        log = gw.log()
        first_change = log.index("reload: [mqtt] changed")
        first_done = log.index("reload: done")
        self.assertLess(log.index("received Hangup", first_change), first_done,
                        "the second SIGHUP came after the first reload: nothing was tested")
        self.assertGreater(log.index("reload: [mqtt] changed", first_change + 1), first_done,
                           "the second reload ran inside the first")
        self.mqtt.wait_json(self.disc("dev1"), lambda d: d["device"]["name"] == "Second",
                            timeout=30, since=t0)
        self.wait_online("dev1", since=t0, timeout=30)
        with open(self.broker.log) as f:
            self.assertIn(f"second{self.base}", f.read())
        self.assertTrue(gw.alive())

    def test_safety_change_applies_at_once(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")

        def climate_max(d):
            return d["components"]["climate"]["max_temp"]
        self.assertEqual(climate_max(self.mqtt.wait_json(self.disc("dev1"))), 60)
        gw.rewrite({"dev1": device(sim)}, extra_ini="[safety]\nmax_target_temp = 45\n")
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        self.mqtt.wait_json(self.disc("dev1"), lambda d: climate_max(d) == 45, since=t0)
        t1 = time.monotonic()
        self.mqtt.publish(self.t("dev1", "/set"), json.dumps({"target_temperature": 50}))
        ev = self.mqtt.wait_json(self.t("dev1", "/event"),
                                 lambda e: e["event_type"] == "command_rejected", since=t1)
        self.assertIn("45", ev["reason"])
        self.assertEqual(connects(sim), 1)

    def test_what_takes_a_restart_is_said_and_kept(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)})
        self.wait_online("dev1")
        port = free_port()
        gw.rewrite({"dev1": device(sim)},
                   extra_ini=f"[dialin]\nport = {port}\nlisten = 127.0.0.1\n")
        r = self.request("reload", {"transaction": "x"})
        self.assertEqual((r["status"], r["data"]["restart_needed"]), ("ok", ["[dialin]"]))
        wait_until(lambda: "reload: done" in gw.log(), 15, what="the reload applied")
        self.assertIn("warning: reload: [dialin] changed; that takes a restart", gw.log())
        with socket.socket() as s:  # the running value (no endpoint) stays
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)

    def test_retained_requests_are_refused(self):
        """A retained request would be carried out again at every reconnect. The broker
        hands it over retained to a new subscription: the next gateway's."""
        topic = f"{self.base}/bridge/request/reload"
        self.mqtt.publish(topic, json.dumps({"transaction": "ret"}), retain=True)
        t0 = time.monotonic()
        gw = self.gateway({})
        r = self.mqtt.wait_json(f"{self.base}/bridge/response/reload", since=t0)
        self.assertEqual(r, {"status": "error", "data": {}, "transaction": "ret",
                             "error": "retained requests are not accepted; publish without "
                                      "the retain flag"})
        self.assertNotIn("reloading", gw.log())
        self.mqtt.publish(topic, "", retain=True)  # gone from the broker


def blocked_opening_fifo(pid):
    """Is the process asleep in open() of a FIFO (waiting for a writer)? Where the kernel
    hides wait channels (wchan "0"), asleep is all that can be seen."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip()
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if wchan in ("", "0"):
        return state == "S"
    return wchan in ("wait_for_partner", "fifo_open")


def unblock(path, text):
    """Write text to the FIFO at path if a reader waits on it (else nothing to do)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader; not a FIFO any more: a file took its place
        return
    try:
        os.set_blocking(fd, True)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Systemd(ServiceCase):
    """Type=notify: READY=1, STATUS=, RELOADING=1, STOPPING=1 and the watchdog's pings,
    with NOTIFY_SOCKET and WATCHDOG_USEC set as systemd sets them."""

    def test_ready_status_reload_watchdog_and_stop(self):
        notify = NotifySocket(self.tmpdir.name)
        self.addCleanup(notify.close)
        sim = self.sim()
        t0 = time.monotonic()
        gw = self.gateway({"dev1": device(sim)},
                          env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: notify.since(t0, "READY=1"), 15, what="READY=1")
        ready = notify.since(t0, "READY=1")[0][1]
        self.assertRegex(ready, r"STATUS=\d+ of 1 device\(s\) online")
        self.wait_online("dev1")
        wait_until(lambda: notify.since(t0, "STATUS=1 of 1 device(s) online"), 15,
                   what="STATUS with the device online")
        # WatchdogSec=1 s: a ping every half of it, from the loop
        wait_until(lambda: len(notify.since(t0, "WATCHDOG=1")) >= 4, 10,
                   what="four watchdog pings")

        self.frozen_loop_sends_no_pings(gw, notify)
        gw.rewrite({"dev1": device(sim)})  # a file again
        self.assertEqual(connects(sim), 1, "the device's link did not survive the freeze")

        t2 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: notify.since(t2, "READY=1"), 15, what="READY=1 after the reload")
        reloading = notify.since(t2, "RELOADING=1")
        self.assertTrue(reloading, "no RELOADING=1")
        self.assertLessEqual(reloading[0][0], notify.since(t2, "READY=1")[0][0])
        self.assertRegex(reloading[0][1], r"MONOTONIC_USEC=\d+")

        t3 = time.monotonic()
        self.assertEqual(gw.stop(), 0)
        wait_until(lambda: notify.since(t3, "STOPPING=1"), 5, what="STOPPING=1")

    def frozen_loop_sends_no_pings(self, gw, notify):
        """A loop that hangs stops the pings, so systemd kills and restarts the daemon.
        The loop is frozen for real while the process runs on: the file a reload reads
        is made a FIFO that nobody writes, and the loop blocks opening it (the blocking
        call a bug could make). Pings from anything but the loop (a thread, a signal
        handler) would go on; a stopped process (SIGSTOP) would prove nothing."""
        with open(gw.ini) as f:
            text = f.read()
        fifo = gw.ini + ".fifo"
        os.mkfifo(fifo, 0o600)
        os.replace(fifo, gw.ini)
        pid = gw.proc.pid
        gw.proc.send_signal(signal.SIGHUP)
        try:
            wait_until(lambda: "received Hangup; reloading" in gw.log(), 15,
                       what="the reload started")
            wait_until(lambda: blocked_opening_fifo(pid), 15,
                       what="the loop blocked opening the FIFO")
            mark = notify.mark()  # what follows it in the socket was sent after this
            # The window in which no ping may come (2.5 periods of WatchdogSec=1 s;
            # systemd gives up after one): watched, not a wait for something.
            window_end = time.monotonic() + 2.5
            while time.monotonic() < window_end:
                self.assertTrue(blocked_opening_fifo(pid), "the loop went on")
                self.assertEqual(notify.after(mark, "WATCHDOG=1"), [],
                                 "a ping while the loop was frozen")
                time.sleep(0.1)
            self.assertTrue(gw.alive())
            self.assertEqual(notify.after(mark, "WATCHDOG=1"), [])
        finally:
            unblock(gw.ini, text)  # never leave a frozen gateway to tearDown
        # it turns again: the reload it was in finishes, and the pings resume
        wait_until(lambda: notify.after(mark, "READY=1"), 15, what="READY=1 after the freeze")
        wait_until(lambda: notify.after(mark, "WATCHDOG=1"), 10, what="pings after the freeze")
        wait_until(lambda: gw.log().count("reload: done") == 1, 15, what="the reload done")

    def test_without_watchdog_usec_no_pings(self):
        notify = NotifySocket(self.tmpdir.name)
        self.addCleanup(notify.close)
        t0 = time.monotonic()
        self.gateway({}, env={"NOTIFY_SOCKET": notify.path})
        wait_until(lambda: notify.since(t0, "READY=1"), 15, what="READY=1")
        self.mqtt.wait(f"{self.base}/bridge/info")
        self.assertEqual(notify.since(t0, "WATCHDOG=1"), [])


class Logs(ServiceCase):
    """Priority prefixes when standard error is the journal; [log] level and -v."""

    def test_journal_prefixes_only_on_the_journal_stream(self):
        path = os.path.join(self.tmpdir.name, f"journal-{time.monotonic_ns()}.log")
        open(path, "w").close()
        st = os.stat(path)
        gw = self.gateway({}, logfile=path, verbose=False,
                          env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        self.mqtt.wait(f"{self.base}/bridge/info")
        self.request("restart", {})  # a warning
        wait_until(lambda: "refused" in gw.log(), 10, what="the warning line")
        lines = gw.log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>(error|warning|info|debug): ")
        self.assertTrue(any(line.startswith("<6>info: ") for line in lines))
        self.assertTrue(any(line.startswith("<4>warning: bridge: request restart refused")
                            for line in lines))
        # inherited by a process whose stderr is elsewhere: plain lines
        other = self.gateway({}, base=f"{self.base}o", verbose=False,
                             mqtt={"client_id": f"{self.base}o"},
                             env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        wait_until(lambda: "mqtt: connected" in other.log(), 15, what="the second gateway")
        self.assertTrue(other.log().startswith("info: "))
        self.assertNotIn("<6>", other.log())

    def test_log_level_from_the_file_and_verbose(self):
        sim = self.sim()
        gw = self.gateway({"dev1": device(sim)}, verbose=False,
                          extra_ini="[log]\nlevel = warning\n")
        self.wait_online("dev1")
        self.request("restart", {})
        wait_until(lambda: "warning: bridge: request restart refused" in gw.log(), 10,
                   what="the warning")
        self.assertNotIn("info:", gw.log())
        info = self.mqtt.wait_json(f"{self.base}/bridge/info", lambda i: "log_level" in i)
        self.assertEqual(info["log_level"], "warning")
        # -v: debug, whatever the file says
        loud = self.gateway({}, base=f"{self.base}v", mqtt={"client_id": f"{self.base}v"},
                            extra_ini="[log]\nlevel = error\n")
        self.mqtt.publish(f"{loud.base}/bridge/request/health", "{}")
        wait_until(lambda: "debug: bridge: request health" in loud.log(), 15,
                   what="debug lines with -v")


if __name__ == "__main__":
    unittest.main()
