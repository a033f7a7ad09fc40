"""loadrun.py - the parts tools/bench.py and tools/soak.py share: a private mosquitto on
loopback, panda2mqtt-load (many simulated devices and the clock that times them), one
gateway serving them, and what /proc says about that gateway.

Owns: starting and stopping those processes in a temporary directory, and reading figures.
Does not own: what a run does or what its figures mean (bench.py, soak.py)."""
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
# Sanitizer and valgrind reports (valgrind's summary says "definitely lost: 0 bytes" too).
REPORT_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|==ERROR|"
                       r"Invalid (read|write|free)|uninitialised|"
                       r"definitely lost: [1-9]|ERROR SUMMARY: [1-9]")


class RunError(Exception):
    pass


def raise_fd_limit():
    """1000 devices need more than the usual 1024 descriptors (the gateway: one socket
    per device, plus re-reads; the load generator: two per device)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise RunError(f"timed out after {timeout:.0f} s waiting for {what}")


class Proc:
    """What /proc says about one process: CPU seconds, RSS, anonymous RSS, open fds."""

    def __init__(self, pid):
        self.pid = pid

    def cpu_split_s(self):
        """(user, system) CPU seconds: the system part is the kernel's work for the
        process's system calls (reads and writes on its sockets, polling)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime

    def cpu_s(self):
        return sum(self.cpu_split_s())

    def cpu_ns(self):
        """CPU time to the nanosecond (the scheduler's sum_exec_runtime of each of the
        process's threads, /proc/PID/task/*/schedstat): /proc/PID/stat counts in 10 ms
        ticks, too coarse for a gateway that uses a few ticks in a window."""
        total = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
        return total

    def status_kib(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self.status_kib("VmRSS")

    def anon_kib(self):
        return self.status_kib("RssAnon")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def wakeups(self):
        """Context switches so far: how often the process woke up."""
        return self.status_kib("voluntary_ctxt_switches") + \
            self.status_kib("nonvoluntary_ctxt_switches")


class Session:
    """A temporary directory holding one broker, one load generator and one gateway."""

    def __init__(self, build, keep=False):
        self.build = os.path.abspath(build)
        for exe in ("panda2mqtt", "panda2mqtt-load"):
            if not os.access(os.path.join(self.build, exe), os.X_OK):
                raise RunError(f"{self.build}/{exe} not found: build first "
                               f"(cmake -S . -B build && cmake --build build)")
        self.dir = tempfile.mkdtemp(prefix="p2m-load.")
        self.keep = keep
        self.broker = self.load = self.gateway = None
        self.load_buf = b""
        self.broker_port = None

    # --- broker ---
    def start_broker(self):
        self.broker_port = free_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\nmax_queued_messages 100000\n"
                    # Latency is what is measured: no Nagle delay in the broker either.
                    "set_tcp_nodelay true\n")
        self.broker = subprocess.Popen(["mosquitto", "-c", conf],
                                       stdout=open(os.path.join(self.dir, "mosquitto.log"), "w"),
                                       stderr=subprocess.STDOUT)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.broker_port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, "mosquitto to listen")

    # --- load generator ---
    def start_load(self, devices, rate, flap=0.0, commands=0.0, stale_timeout=60, seed=1,
                   freeze=None, frames_per_push=1):
        self.devices_ini = os.path.join(self.dir, "devices.ini")
        cmd = [os.path.join(self.build, "panda2mqtt-load"), "--devices", str(devices),
               "--rate", str(rate), "--flap", str(flap), "--commands", str(commands),
               "--broker", f"127.0.0.1:{self.broker_port}", "--config-out", self.devices_ini,
               "--stale-timeout", str(stale_timeout), "--seed", str(seed)]
        if freeze:
            cmd += ["--freeze", str(freeze)]
        if frames_per_push != 1:
            cmd += ["--frames-per-push", str(frames_per_push)]
        self.load = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(self.dir, "load.log"), "w"))
        line = self._load_line(30 + devices / 50)
        if not line.startswith("ready"):
            raise RunError(f"panda2mqtt-load did not start: {line!r}")

    def _load_line(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.load_buf:
            left = end - time.monotonic()
            if left <= 0:
                raise RunError("panda2mqtt-load did not answer")
            r, _, _ = select.select([self.load.stdout], [], [], left)
            if r:
                chunk = os.read(self.load.stdout.fileno(), 65536)
                if not chunk:
                    raise RunError("panda2mqtt-load exited; see " +
                                   os.path.join(self.dir, "load.log"))
                self.load_buf += chunk
        line, self.load_buf = self.load_buf.split(b"\n", 1)
        return line.decode()

    def control(self, line):
        self.load.stdin.write((line + "\n").encode())
        self.load.stdin.flush()
        if line == "stats":
            return json.loads(self._load_line(10))
        reply = self._load_line(10)
        if not reply.startswith("ok"):
            raise RunError(f"panda2mqtt-load: {reply}")
        return reply

    # --- gateway ---
    def start_gateway(self, wrapper=(), env_extra=None):
        conf = os.path.join(self.dir, "panda2mqtt.ini")
        with open(conf, "w") as f:
            f.write(f"[mqtt]\nhost = 127.0.0.1\nport = {self.broker_port}\n"
                    "[discovery]\nmdns = false\n")
            with open(self.devices_ini) as d:
                f.write(d.read())
        self.gateway_log = os.path.join(self.dir, "gateway.log")
        env = dict(os.environ)
        env.update(env_extra or {})
        self.gateway = subprocess.Popen(list(wrapper) + [os.path.join(self.build, "panda2mqtt"),
                                                          "-c", conf],
                                        stdout=open(self.gateway_log, "w"),
                                        stderr=subprocess.STDOUT, env=env)
        self.gateway_proc = Proc(self.gateway.pid)
        self.gateway_started = time.monotonic()
        return self.gateway_proc

    def wait_all_online(self, devices, timeout):
        def ready():
            if self.gateway.poll() is not None:
                raise RunError(f"the gateway exited ({self.gateway.returncode}); see "
                               f"{self.gateway_log}")
            s = self.control("stats")
            return s if s["online"] == devices and s["linked"] == devices else None
        return wait_for(ready, timeout, f"all {devices} devices online", interval=0.5)

    def stop_gateway(self, timeout=30):
        """SIGTERM; the exit status (0 when clean)."""
        if not self.gateway or self.gateway.poll() is not None:
            return self.gateway.returncode if self.gateway else None
        self.gateway.send_signal(signal.SIGTERM)
        try:
            return self.gateway.wait(timeout)
        except subprocess.TimeoutExpired:
            self.gateway.kill()
            self.gateway.wait()
            raise RunError("the gateway did not stop within 30 s of SIGTERM")

    def gateway_errors(self):
        """Sanitizer and valgrind reports in the gateway's log."""
        with open(self.gateway_log, errors="replace") as f:
            return [line.rstrip() for line in f if REPORT_RE.search(line)]

    def close(self):
        for p in (self.gateway, self.load, self.broker):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.load:
            for stream in (self.load.stdin, self.load.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
