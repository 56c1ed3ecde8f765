#!/usr/bin/env python3
"""bench/table.py: medians of bench/race JSON lines as a Markdown table.

    python3 bench/table.py results.jsonl [more.jsonl ...]

One row per (nodes, loss, LAN rate, contender): runs, median wall time,
its ratio to the cut-through floor T_phys and to the store-and-forward
floor, WAN and LAN bytes as copies of the package, stalls, and the median
CPU figures (whole machine busy %, gateway and node processes' seconds).
"""

import json
import statistics
import sys

ORDER = ["upbridge", "direct", "uftp", "udpcast", "udpcast-pipe"]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, f="%.2f"):
    return f % x if x is not None else "–"


def main():
    recs = []
    for path in sys.argv[1:]:
        with open(path) as f:
            recs += [json.loads(l) for l in f if l.strip().startswith("{")]
    groups = {}
    for r in recs:
        key = (r["nodes"], r["loss_pct"], r["lan_mbit"], r["wan_mbit"],
               r["package_bytes"])
        groups.setdefault(key, {}).setdefault(r["contender"], []).append(r)
    print("| nodes | loss | W/L Mbit/s | contender | runs | wall s (median, "
          "range) | ÷ T_phys | ÷ T_sf | WAN × pkg | LAN × pkg | stalled | "
          "CPU busy % | CPU gw s | CPU nodes s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups):
        n, loss, lan, wan, size = key
        for c in sorted(groups[key], key=lambda c: ORDER.index(c)
                        if c in ORDER else 99):
            rs = groups[key][c]
            walls = [r["wall_s"] for r in rs if r.get("wall_s") is not None]
            w = med(walls)
            tp, tsf = rs[0]["t_phys_s"], rs[0]["t_sf_s"]
            rng = ("%.2f–%.2f" % (min(walls), max(walls))
                   if len(walls) > 1 else "")
            print("| %d | %g %% | %g/%g | %s | %d | %s %s | %s | %s | %s | %s "
                  "| %d | %s | %s | %s |" % (
                      n, loss, wan, lan, c, len(rs), fmt(w), rng,
                      fmt(w / tp if w else None), fmt(w / tsf if w else None),
                      fmt(med([r.get("wan_copies") for r in rs]), "%.3f"),
                      fmt(med([r.get("lan_copies") for r in rs]), "%.3f"),
                      sum(1 for r in rs if r.get("stalled")),
                      fmt(med([r.get("cpu_busy_pct") for r in rs]), "%.0f"),
                      fmt(med([r.get("cpu_gw_s") for r in rs])),
                      fmt(med([r.get("cpu_nodes_s") for r in rs]))))
    print()
    for key in sorted(groups):
        r0 = next(iter(groups[key].values()))[0]
        print("- %d nodes, %g %% loss, %g MiB, W %g / L %g Mbit/s: T_wan %.2f s,"
              " T_lan %.2f s, T_phys (cut-through) %.2f s, store-and-forward "
              "%.2f s" % (key[0], key[1], key[4] / (1 << 20), key[3], key[2],
                          r0["t_wan_s"], r0["t_lan_s"], r0["t_phys_s"],
                          r0["t_sf_s"]))


if __name__ == "__main__":
    main()
