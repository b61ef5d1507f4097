#!/usr/bin/env python3
"""bench/table.py OUT "1 2": the markdown tables of bench/server.sh from its raw results.

The Redis-implied bound: Redis runs one command at a time, so a matched player costs it
sum(n_c / r_c) seconds, where n_c is how many commands of class c a matched player sends
(client round trips, from the MONITOR calibration run; commands scripts run inside are part
of their EVALSHA) and r_c the ops/s redis-benchmark measured for that class on this machine.
The bound is 1 / sum(n_c / r_c) matched players/s.
"""

import json
import sys
from pathlib import Path

# Which redis-benchmark figure prices each client command.
PRICE = {
    "evalsha:try_match": "evalsha_try_match",
    "publish": "publish",
    "set": "set",
    "get": "get",
    "scan": "scan",
}


def price_of(command):
    if command in PRICE:
        return PRICE[command]
    if command.startswith("evalsha:"):
        return "evalsha_enqueue"
    return "sadd"


def load(out, name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rss_mib(out, name):
    path = out / f"{name}.rss"
    if not path.exists():
        return "-"
    values = [int(v) / 1024 for v in path.read_text().split()]
    return " + ".join(f"{v:.0f}" for v in values) + " MiB"


def bench_rates(out):
    rates = {}
    for line in (out / "redis-benchmark.txt").read_text().splitlines():
        name, _, value = line.partition(" ")
        try:
            rates[name] = float(value)
        except ValueError:
            pass
    return rates


def bound(top_level, rates):
    seconds = 0.0
    terms = []
    for command, per_player in sorted(top_level.items()):
        rate = rates.get(price_of(command))
        if not rate:
            continue
        seconds += per_player / rate
        terms.append(f"{per_player:.3f} {command} / {rate:,.0f}/s ({price_of(command)})")
    return (1.0 / seconds if seconds else 0.0), terms


def cpu_per_player(out, name, matched):
    """CPU microseconds per matched player of (servers, redis-server, loadgen)."""
    path = out / f"{name}.cpu"
    if not path.exists() or not matched:
        return None
    return [float(v) * 1e6 / matched for v in path.read_text().split()]


def lat(p):
    return f"{p['p50_ms']:.1f} / {p['p95_ms']:.1f} / {p['p99_ms']:.1f}"


def main():
    out = Path(sys.argv[1])
    instances = sys.argv[2].split()
    rates = bench_rates(out)
    print((out / "machine.txt").read_text())
    print("| instances | load | matched players/s | enqueue->start_loading p50/p95/p99 ms | "
          "enqueue->match_found p50/p95/p99 ms | peak RSS | verification | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for n in instances:
        for load_name in ("max", "half"):
            name = f"i{n}-{load_name}"
            r = load(out, name)
            if r is None:
                continue
            asked = "max" if r["rate_per_s"] == 0 else f"{r['rate_per_s']:.0f}/s offered"
            verdict = "passed" if r["verdict"]["passed"] else f"FAILED {r['verdict']['finding_counts']}"
            avg = (out / f"{name}.load").read_text().strip()
            print(f"| {n} | {asked} | {r['matched_players_per_s']:.0f} | "
                  f"{lat(r['enqueue_to_start_loading'])} | {lat(r['enqueue_to_match_found'])} | "
                  f"{rss_mib(out, name)} | {verdict} | {avg} |")
    print()
    print("| instances | CPU us/matched player: servers + Redis + loadgen = total "
          "| 2-core ceiling (2 s / total) | ceiling without the loadgen |")
    print("|---|---|---|---|")
    for n in instances:
        r = load(out, f"i{n}-max")
        cpu = cpu_per_player(out, f"i{n}-max", r and r["matched_players"])
        if cpu is None:
            continue
        total = sum(cpu)
        print(f"| {n} | {cpu[0]:.0f} + {cpu[1]:.0f} + {cpu[2]:.0f} = {total:.0f} | "
              f"{2e6 / total:,.0f} | {2e6 / (cpu[0] + cpu[1]):,.0f} |")
    print()
    print("| instances | Redis commands/matched player (all) | client round trips/matched player "
          "| Redis CPU us/matched player | Redis-implied bound players/s | max / bound |")
    print("|---|---|---|---|---|---|")
    arithmetic = []
    for n in instances:
        top = load(out, f"i{n}-max")
        cal = load(out, f"i{n}-monitor")
        if top is None or cal is None or top.get("redis") is None:
            continue
        top_level = cal["redis"]["top_level_per_matched_player"] or {}
        implied, terms = bound(top_level, rates)
        ratio = top["matched_players_per_s"] / implied if implied else 0.0
        print(f"| {n} | {top['redis']['commands_per_matched_player']:.1f} | "
              f"{sum(top_level.values()):.2f} | {top['redis']['cpu_us_per_matched_player']:.0f} | "
              f"{implied:,.0f} | {ratio:.2f} (bound is {1 / ratio if ratio else 0:.1f}x) |")
        arithmetic.append(f"Bound arithmetic ({n} instance(s)): 1 / (" + " + ".join(terms) + ")")
    print()
    for line in arithmetic:
        print(line)
        print()
    print("| redis-benchmark (-c 50, no pipelining) | ops/s |")
    print("|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
