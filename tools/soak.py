#!/usr/bin/python3
"""soak.py - many devices that drop, reboot and freeze against one gateway for a long time;
then every device must be present once, online, publishing, and the gateway no bigger.

It starts a private mosquitto on loopback, panda2mqtt-load with --devices simulated
devices pushing at --rate, and one gateway (tools/loadrun.py). Each device then fails at
random (mean --flap seconds apart): its connections dropped, a reboot (connections refused
for 3 s), or a freeze (TCP open, silent for 8 s, beyond the gateway's 5 s stale_timeout).

  1. warm-up: faults for a tenth of the run (at least 10 s), then calm, recovery and
     the baseline: the gateway's RSS, RssAnon and open descriptors;
  2. the run: faults for --minutes, sampled every 10 s;
  3. calm, recovery, and the end figures.
It passes when, after the run: every device is online (its availability topic) and
linked; every device published a state in the last 5 s; bridge/info lists each device
exactly once, all online; the descriptor count equals the baseline; RSS grew by at most
--rss-slack KiB; the gateway exits 0 on SIGTERM and its log holds no sanitizer or
valgrind report. Under ASan the quarantine is capped at 1 MiB so that RSS means something.

Usage: tools/soak.py [--build DIR] [--devices 100] [--minutes 10] [--flap 30] [--rate 2]
                     [--valgrind] [--rss-slack KIB] [--keep] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadrun import ROOT, RunError, Session, raise_fd_limit, wait_for  # noqa: E402

STALE_TIMEOUT = 5  # the gateway's, per device: frozen devices are noticed quickly
RECOVERY_S = 120   # backoff is at most 30 s; a frozen device needs 8 s + stale_timeout


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def recover(s, n):
    """Faults off; wait until every device is online, linked and publishing again."""
    s.control("faults off")

    def ok():
        if s.gateway.poll() is not None:
            raise RunError(f"the gateway exited ({s.gateway.returncode}); see {s.gateway_log}")
        st = s.control("stats")
        good = (st["online"] == n and st["linked"] == n and st["quiet"] == 0 and
                st["info_devices"] == n and st["info_online"] == n)
        return st if good else None
    try:
        return wait_for(ok, RECOVERY_S, "every device back online and publishing",
                        interval=1)
    except RunError:
        st = s.control("stats")
        raise RunError(f"not recovered within {RECOVERY_S} s: {json.dumps(st)}")


def figures(gw):
    return {"rss_kib": gw.rss_kib(), "anon_kib": gw.anon_kib(), "fds": gw.fds(),
            "cpu_s": round(gw.cpu_s(), 2)}


def faults_for(s, gw, seconds, samples):
    s.control("faults on")
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(10, left))
        if s.gateway.poll() is not None:
            raise RunError(f"the gateway exited ({s.gateway.returncode}); see {s.gateway_log}")
        st = s.control("stats")
        f = figures(gw)
        f.update({"t": round(time.monotonic() - s.gateway_started), "online": st["online"],
                  "faults": sum(st["faults"].values())})
        samples.append(f)
        log(f"t={f['t']}s online={st['online']}/{st['devices']} rss={f['rss_kib']} KiB "
            f"fds={f['fds']} faults={f['faults']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build directory holding panda2mqtt and panda2mqtt-load")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=10, help="length of the faulty run")
    ap.add_argument("--flap", type=float, default=30,
                    help="mean seconds between faults, per device")
    ap.add_argument("--rate", type=float, default=2, help="pushes per device per second")
    ap.add_argument("--valgrind", action="store_true",
                    help="run the gateway under valgrind memcheck (use a plain build)")
    ap.add_argument("--rss-slack", type=int, default=1024,
                    help="KiB RSS may grow between baseline and end (default 1024)")
    ap.add_argument("--keep", action="store_true", help="keep the logs")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    raise_fd_limit()
    n = args.devices
    run_s = args.minutes * 60
    warm_s = max(10.0, run_s / 10)
    wrapper = ()
    if args.valgrind:
        # A small freed-block queue (default 20 MB), or RSS grows until it is full.
        wrapper = ("valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                   "--freelist-vol=1000000")
    env = {"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1:exitcode=66",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    result = {"devices": n, "minutes": args.minutes, "flap_s": args.flap, "rate_hz": args.rate,
              "valgrind": args.valgrind, "samples": []}
    failures = []
    s = Session(args.build, keep=args.keep)
    try:
        s.start_broker()
        s.start_load(n, args.rate, flap=args.flap, stale_timeout=STALE_TIMEOUT)
        gw = s.start_gateway(wrapper=wrapper, env_extra=env)
        s.wait_all_online(n, timeout=60 + n / 5 + (120 if args.valgrind else 0))
        log(f"{n} devices online; warm-up with faults for {warm_s:.0f} s")
        faults_for(s, gw, warm_s, [])
        recover(s, n)
        time.sleep(5)
        base = figures(gw)
        log(f"baseline: {base}; faults for {run_s:.0f} s")
        faults_for(s, gw, run_s, result["samples"])
        end_stats = recover(s, n)
        time.sleep(5)
        end = figures(gw)
        last = s.control("stats")
        log(f"end: {end}")
        result.update({"baseline": base, "end": end, "end_stats": last})
        result["faults_in_run"] = sum(smp["faults"] for smp in result["samples"])
        if last["quiet"] or last["online"] != n or last["linked"] != n:
            failures.append(f"after recovery: {json.dumps(last)}")
        if end_stats["info_duplicates"] or end_stats["info_missing"] or \
                end_stats["info_devices"] != n:
            failures.append(f"bridge/info: {end_stats['info_devices']} listed, "
                            f"{end_stats['info_duplicates']} duplicates, "
                            f"{end_stats['info_missing']} missing")
        if end["fds"] != base["fds"]:
            failures.append(f"descriptors: {base['fds']} at baseline, {end['fds']} at the end")
        if end["rss_kib"] - base["rss_kib"] > args.rss_slack:
            failures.append(f"RSS grew {end['rss_kib'] - base['rss_kib']} KiB "
                            f"(more than {args.rss_slack})")
        code = s.stop_gateway(timeout=120 if args.valgrind else 30)
        result["exit_code"] = code
        if code != 0:
            failures.append(f"the gateway exited {code} on SIGTERM")
        errors = s.gateway_errors()
        result["sanitizer_or_valgrind_lines"] = len(errors)
        if errors:
            failures.append("reports in the gateway log:\n  " + "\n  ".join(errors[:20]))
    except RunError as e:
        failures.append(str(e))
        s.keep = True
    finally:
        s.close()
    result["failures"] = failures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if "baseline" in result and "end" in result:
        b, e = result["baseline"], result["end"]
        print("| devices | minutes | flap s | faults | RSS KiB base / end | anon KiB base / end "
              "| fds base / end | exit | reports |")
        print("|---:|---:|---:|---:|---|---|---|---:|---:|")
        print(f"| {n} | {args.minutes:g} | {args.flap:g} | {result['faults_in_run']} | "
              f"{b['rss_kib']} / {e['rss_kib']} | {b['anon_kib']} / {e['anon_kib']} | "
              f"{b['fds']} / {e['fds']} | {result.get('exit_code')} | "
              f"{result.get('sanitizer_or_valgrind_lines')} |")
    if failures:
        for f in failures:
            log("FAIL: " + f)
        if s.keep:
            log(f"logs kept in {s.dir}")
        return 1
    log("pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
