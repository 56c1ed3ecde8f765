#!/usr/bin/env python3
"""bench/fanout_lan.py: wall time and uplink bytes of one LAN fan-out.

    python3 bench/fanout_lan.py [--nodes N] [--size-mib S] [--lan-mbit L]
                                [--loss-pct P] [--runs R] [--bin DIR]

Runs the real cloud (nginx, TLS), upbridged and N upnode processes on
loopback multicast, publishes one signed package of S MiB and measures, per
run, the wall time from daemon start until every node runs the new version
(verified, activated, confirmed) and until the cloud holds every result, and
the package bytes the cloud served.  Prints one JSON line per run.  The LAN
rate is the pacing rate the daemon is told (loopback itself is not shaped;
issue 3's namespace testbed shapes it with tbf).
"""

import argparse
import json
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.abspath(os.path.join(here, ".."))
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
from testbed import Testbed  # noqa: E402


def run_once(args, run):
    size = int(args.size_mib * 1024 * 1024)
    tb = Testbed(args.bin, src, "bench", quiet=True)
    tb.slot_size = max(16 << 20, (size + (1 << 20)) & ~((1 << 20) - 1))
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("bench.bin", size, seed=run)
        tb.publish([{"id": "bench-2", "component": "app", "version": "2.0.0",
                     "hw": [], "kind": "full", "url": url}],
                   [{"id": "bench", "packages": ["bench-2"], "target": {}}])
        tb.write_conf()
        with open(tb.conf) as f:
            conf = f.read().replace("bitrate_mbit = 100",
                                    "bitrate_mbit = %d" % args.lan_mbit)
        with open(tb.conf, "w") as f:
            f.write(conf)
        for nid in range(1, args.nodes + 1):
            extra = []
            if args.loss_pct > 0:
                extra = ["--drop-pct", str(args.loss_pct),
                         "--seed", str(run * 1000 + nid)]
            tb.start_node(nid, extra=extra)
        t0 = time.time()
        tb.start_daemon()
        tb.wait_for(lambda: all(tb.running(n).get("app") == "2.0.0"
                                for n in range(1, args.nodes + 1)),
                    600, "all nodes updated", interval=0.05)
        t_nodes = time.time() - t0
        tb.wait_for(lambda: len(tb.results()) >= args.nodes, 120,
                    "all results", interval=0.05)
        t_reports = time.time() - t0
        served = tb.cloud_bytes(url)
        lan_s = size * 8 / (args.lan_mbit * 1e6)
        tb.stop_daemon()
        return {"nodes": args.nodes, "package_bytes": size,
                "lan_mbit": args.lan_mbit, "loss_pct": args.loss_pct,
                "wall_nodes_s": round(t_nodes, 2),
                "wall_reports_s": round(t_reports, 2),
                "uplink_package_bytes": served,
                "uplink_copies": round(served / size, 4),
                "lan_one_pass_s": round(lan_s, 2)}
    finally:
        tb.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--size-mib", type=float, default=32)
    ap.add_argument("--lan-mbit", type=int, default=100)
    ap.add_argument("--loss-pct", type=float, default=0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--bin", default=os.path.join(src, "build", "bin"))
    args = ap.parse_args()
    for run in range(1, args.runs + 1):
        print(json.dumps(run_once(args, run)), flush=True)


if __name__ == "__main__":
    main()
