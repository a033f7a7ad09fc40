#!/usr/bin/env python3
"""Instructions per device frame, and bytes per state message, counted with callgrind.

The workload of the efficiency issue: DEVICES simulated Panda Breaths (panda2mqtt-load),
one push a second each, FRAMES frames a push (a new chamber reading, then frames that
change nothing), a private mosquitto. The gateway runs under valgrind --tool=callgrind with
instrumentation off; once every device is online and the warm-up is over, it is switched
on (callgrind_control -i on) for the window and off again, so start-up and discovery are
not counted. Instruction counts are repeatable on a busy machine; seconds are not.

Usage: tools/callgrind-frame.py [--build DIR] [--devices 10] [--frames 3] [--seconds 30]
                                [--top 15] [--keep]
Prints the figures and the functions with the most inclusive instructions. Needs
valgrind (callgrind_control, callgrind_annotate).
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadrun import ROOT, RunError, Session  # noqa: E402


def top_functions(out, n):
    run = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True,
                         text=True, check=True)
    rows = []
    for line in run.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), float(m.group(2)), m.group(3)))
    return rows[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--frames", type=int, default=3, help="frames per push (default 3)")
    ap.add_argument("--rate", type=float, default=1, help="pushes per device per second")
    ap.add_argument("--seconds", type=float, default=30, help="the counted window")
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    with Session(args.build, keep=args.keep) as s:
        out = os.path.join(s.dir, "callgrind.out")
        s.start_broker()
        s.start_load(args.devices, args.rate, frames_per_push=args.frames)
        gw = s.start_gateway(wrapper=("valgrind", "--tool=callgrind", "--instr-atstart=no",
                                      f"--callgrind-out-file={out}"))
        s.wait_all_online(args.devices, timeout=120 + args.devices)
        time.sleep(args.warmup)
        s.control("stats")  # a new window starts here
        subprocess.run(["callgrind_control", "-i", "on", str(gw.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        time.sleep(args.seconds)
        subprocess.run(["callgrind_control", "-i", "off", str(gw.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        w = s.control("stats")
        code = s.stop_gateway(timeout=120)
        if code != 0:
            raise RunError(f"the gateway exited {code}; see {s.gateway_log}")
        top = top_functions(out, args.top + 1)
        if not top or "PROGRAM TOTALS" not in top[0][2]:
            raise RunError(f"no instruction total in {out}")
        ir = top[0][0]
        frames = w["frames_sent"]
        print(f"callgrind-frame: {args.devices} devices, {args.rate:g} push/s, "
              f"{args.frames} frames/push, {args.seconds:g} s window")
        print(f"frames received by the gateway: {frames}")
        print(f"instructions: {ir:,}")
        print(f"instructions per device frame: {ir / max(frames, 1):,.0f}")
        print(f"state messages: {w['state_messages']} (new readings: {w['states']}), "
              f"bytes mean {w['state_bytes_mean']:.0f}, max {w['state_bytes_max']:.0f}")
        print(f"\ntop {args.top} functions, inclusive instructions:")
        for n, pct, name in top[1:]:
            print(f"{n:>14,} {pct:6.2f}%  {name}")
        if args.keep:
            print(f"\ncallgrind output kept: {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunError as e:
        print(f"callgrind-frame: {e}", file=sys.stderr)
        sys.exit(1)
