#!/usr/bin/python3
"""bench.py - what one gateway costs and how fast it is, for 1 to 1000 simulated devices.

For each scenario it starts a private mosquitto on loopback, panda2mqtt-load with that many
devices and one gateway serving them (tools/loadrun.py), waits until every device is
online, lets it settle, then measures for --seconds:
  CPU %      the gateway's user+system time over the window, in % of one core, and
             the system (kernel) part of it: the work its system calls cause
  RSS, anon  the gateway's VmRSS and RssAnon at the end of the window
  per device (RSS - RSS with one device) / (devices - 1)
  state      device frame sent -> the gateway's state publish received back from the
             broker (p50/p99/max, ms): an upper bound on the time inside the gateway
  command    command published -> frame received by the device (p50/p99/max, ms)
  discovery  the slowest device's first connection -> its discovery config received
Nothing here passes or fails on a figure: --smoke only checks that the tool works.

Usage: tools/bench.py [--build DIR] [--devices 1,10,100,500,1000] [--seconds 30]
                      [--rate 2] [--frames 1] [--commands 20] [--smoke] [--keep]
                      [--json FILE] [--perf FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadrun import ROOT, RunError, Session, raise_fd_limit  # noqa: E402


def lat(s, key):
    v = s[key]
    if not v.get("n"):
        return "-"
    return f'{v["p50"]:.2f} / {v["p99"]:.2f} / {v["max"]:.1f}'


def run_scenario(args, name, devices, rate, commands):
    with Session(args.build, keep=args.keep) as s:
        s.start_broker()
        s.start_load(devices, rate, commands=0, frames_per_push=args.frames)
        gw = s.start_gateway()
        first = s.wait_all_online(devices, timeout=30 + devices / 20)
        # Discovery: every device's config seen, from its first connection.
        disc = first["discovery"]
        time.sleep(args.warmup)
        s.control(f"commands {commands}")
        s.control("stats")  # a new window starts here
        perf = None
        if args.perf and devices == args.perf_devices:
            # A call-graph profile of the gateway over the window (perf, linux-perf).
            perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                                     "-o", args.perf, "-p", str(gw.pid), "--", "sleep",
                                     str(args.seconds)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        count = None
        if args.syscalls:
            # Every system call the gateway enters during the window (a tracepoint
            # counter: the calls are not slowed, unlike strace).
            count_file = os.path.join(s.dir, "syscalls.csv")
            count = subprocess.Popen(["perf", "stat", "-x", ",", "-o", count_file, "-e",
                                      "raw_syscalls:sys_enter", "-p", str(gw.pid), "--",
                                      "sleep", str(args.seconds)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (u0, k0), n0, t0, wake0 = gw.cpu_split_s(), gw.cpu_ns(), time.monotonic(), gw.wakeups()
        time.sleep(args.seconds)
        (u1, k1), n1, t1, wake1 = gw.cpu_split_s(), gw.cpu_ns(), time.monotonic(), gw.wakeups()
        if perf:
            perf.wait()
        syscalls = None
        if count:
            count.wait()
            syscalls = syscall_count(count_file)
        rss, anon, fds = gw.rss_kib(), gw.anon_kib(), gw.fds()
        w = s.control("stats")
        code = s.stop_gateway()
        if code != 0:
            raise RunError(f"{name}: the gateway exited {code}; see {s.gateway_log}")
        secs = t1 - t0
        return {
            "scenario": name, "devices": devices, "rate_hz": rate, "commands_per_s": commands,
            "seconds": round(secs, 2),
            "frames_per_s": round(w["frames_sent"] / secs, 1),
            # CPU from the scheduler's nanoseconds; the kernel's share of it from the
            # user/system split of /proc/PID/stat's ticks (only the split is that coarse)
            "cpu_percent": round(100 * (n1 - n0) / 1e9 / secs, 3),
            "sys_percent": round(100 * (n1 - n0) / 1e9 / secs
                                 * ((k1 - k0) / (u1 - u0 + k1 - k0) if u1 - u0 + k1 - k0 else 0), 3),
            "wakeups_per_s": round((wake1 - wake0) / secs, 1),
            "rss_kib": rss, "anon_kib": anon, "fds": fds,
            "states": w["states"], "frames_sent": w["frames_sent"],
            "state_latency_ms": w["state_latency_ms"],
            "commands_sent": w["commands_sent"], "commands_seen": w["commands_seen"],
            "command_latency_ms": w["command_latency_ms"],
            "discovery": disc, "online": w["online"],
            "syscalls": syscalls,
        }


def syscall_count(path):
    """The count in perf stat's CSV output ("COUNT,,raw_syscalls:sys_enter,...")."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.split(",")
                if len(fields) > 2 and fields[2].startswith("raw_syscalls:sys_enter"):
                    return int(fields[0])
    except (OSError, ValueError):
        pass
    raise RunError(f"perf stat counted no system calls ({path}): is linux-perf installed "
                   f"and tracing allowed (root, or kernel.perf_event_paranoid)?")


def table(rows):
    base = next((r for r in rows if r["devices"] == 1 and r["rate_hz"] > 0), None)
    out = ["| scenario | devices | frames/s | CPU % | of which kernel % | wakeups/s | RSS MiB | "
           "anon MiB | KiB/device | state p50 / p99 / max ms | command p50 / p99 / max ms | "
           "discovery worst ms |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    calls = any(r["syscalls"] is not None for r in rows)
    if calls:
        out[0] += " system calls/s | per frame |"
        out[1] += "---:|---:|"
    for r in rows:
        per = "-"
        if base and r["devices"] > 1 and r["rate_hz"] > 0:
            per = f'{(r["rss_kib"] - base["rss_kib"]) / (r["devices"] - 1):.1f}'
        d = r["discovery"]
        out.append(
            f'| {r["scenario"]} | {r["devices"]} | {r["frames_per_s"]:.0f} | '
            f'{r["cpu_percent"]:.2f} | {r["sys_percent"]:.2f} | {r["wakeups_per_s"]:.1f} | '
            f'{r["rss_kib"] / 1024:.2f} | '
            f'{r["anon_kib"] / 1024:.2f} | {per} | {lat(r, "state_latency_ms")} | '
            f'{lat(r, "command_latency_ms")} | {d.get("worst_ms", 0):.0f} |')
        if calls:
            n = r["syscalls"] or 0
            fps = r["frames_per_s"] * r["seconds"]
            out[-1] += f' {n / r["seconds"]:.0f} | {n / fps:.1f} |' if fps else \
                f' {n / r["seconds"]:.0f} | - |'
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build directory holding panda2mqtt and panda2mqtt-load")
    ap.add_argument("--devices", default="1,10,100,500,1000",
                    help="comma-separated device counts (each one scenario)")
    ap.add_argument("--seconds", type=float, default=30, help="measured window per scenario")
    ap.add_argument("--warmup", type=float, default=5, help="seconds before the window")
    ap.add_argument("--rate", type=float, default=2, help="pushes per device per second")
    ap.add_argument("--frames", type=int, default=1,
                    help="frames per push: the first a new chamber reading, the others "
                         "repeating it (what a real device's pushes mostly are)")
    ap.add_argument("--commands", type=float, default=20,
                    help="commands per second across the devices, under load")
    ap.add_argument("--smoke", action="store_true",
                    help="a few seconds with 1 and 10 devices: only checks that the tool works")
    ap.add_argument("--keep", action="store_true", help="keep the logs of each scenario")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--perf", metavar="FILE",
                    help="record a perf profile of the gateway during the window of the "
                         "largest scenario (read it with perf report -i FILE)")
    ap.add_argument("--syscalls", action="store_true",
                    help="also count the gateway's system calls in each window (perf stat "
                         "on the raw_syscalls tracepoint: linux-perf, as root)")
    args = ap.parse_args()
    if args.smoke:
        args.devices, args.seconds, args.warmup = "10", 2, 0.5
    raise_fd_limit()

    plan = [("idle", 1, 0, 0), ("commands, idle", 1, 0, 5)]
    counts = [int(x) for x in args.devices.split(",")]
    args.perf_devices = max(counts)
    per_push = f" x {args.frames} frames" if args.frames != 1 else ""
    plan += [(f"{n} x {args.rate:g} Hz{per_push}", n, args.rate, args.commands)
             for n in counts]
    rows = []
    try:
        for name, n, rate, commands in plan:
            print(f"bench: {name}: {n} device(s), {rate:g} Hz, {commands:g} commands/s ...",
                  file=sys.stderr, flush=True)
            rows.append(run_scenario(args, name, n, rate, commands))
    except RunError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.smoke:
        # The tool works: every scenario measured something of each kind.
        bad = [r["scenario"] for r in rows
               if r["online"] != r["devices"] or
               (r["rate_hz"] and not r["states"]) or
               (r["commands_per_s"] and not r["commands_seen"])]
        if bad:
            print(f"bench: smoke: no figures from {', '.join(bad)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
