#!/usr/bin/env python3
"""bench/ble_fanout.py: a package over BLE, against the link model's limit.

    python3 bench/ble_fanout.py [--nodes N] [--max-peers P] [--size-kib S]
        [--interval-us U] [--pdus K] [--phy 1M|2M] [--data-length D]
        [--mtu M] [--buffers B] [--runs R] [--bin DIR]

The real cloud (nginx, TLS), upbridged with its ble transport on
simulated peripherals (sim_dir), and N upnode --transport ble processes
behind the link model (docs/upnode.md, "BLE link").  Per node, the
transfer time is from its session's start (its log's "idle -> receiving")
to its last block ("receiving -> downloaded"), read from the node's log as
the lines appear (polled every 5 ms); its goodput is the package's size
over that time.  That includes everything the engine does meanwhile on
that connection (the OFFER's answer, status rounds, the DATA headers);
not the connect and discovery before, nor the verify and activation
after.  The limit is the model's for the same settings (the central
always full, research/transports.md §2.4), as bench/ble_link.c computes
it.  With several nodes served at once they share the controller: the
engine paces the instance to its bitrate_kbit (1,400 kbit/s) at
rate_pct 90 %, and the aggregate (N × size over the span from the first
start to the last end) is printed against that.  Prints one JSON line
per run; exit 3 when a node is below 80 % of the link's limit.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.abspath(os.path.join(here, ".."))
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
from testbed import Testbed  # noqa: E402


# The ble instance's bitrate_kbit (1400, the controller's ATT ceiling on
# 2M PHY with DLE, research §2.4) at the testbed's rate_pct (90): the
# engine paces the whole instance to it, so nodes served at once share it.
CONTROLLER_BPS = 1400 * 1000 / 8
RATE_PCT = 90


def pdu_us(a, payload):
    m2 = a.phy == "2M"
    size = (2 if m2 else 1) + 4 + 2 + payload + 3
    return size * 8 / (2.0 if m2 else 1.0)


def model_limit(a):
    """ATT value bytes per second with the central always full."""
    events, left, frames = 10000, a.mtu + 4, 0
    for _ in range(events):
        t = 0.0
        for k in range(a.pdus):
            m = min(left, a.data_length)
            d = pdu_us(a, m) + 150 + pdu_us(a, 0) + 150
            if k > 0 and t + d > a.interval_us:
                break
            t += d
            left -= m
            if left == 0:
                frames += 1
                left = a.mtu + 4
    return frames * (a.mtu - 3) / (events * a.interval_us / 1e6)


class Watch(threading.Thread):
    """Times the state changes in a node's log as they appear."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.t, self.stop = path, {}, False

    def run(self):
        pos = 0
        while not self.stop:
            try:
                with open(self.path) as f:
                    f.seek(pos)
                    data = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                data = ""
            now = time.time()
            for key in ("idle -> receiving", "receiving -> downloaded"):
                if key in data and key not in self.t:
                    self.t[key] = now
            time.sleep(0.005)


def run_once(a, run):
    size = a.size_kib * 1024
    tb = Testbed(a.bin, src, "blebench", quiet=True)
    watches = {}
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("bench.bin", size, seed=run)
        tb.publish([{"id": "bench-2", "component": "app", "version": "2.0.0",
                     "hw": [], "kind": "full", "url": url}],
                   [{"id": "bench", "packages": ["bench-2"], "target": {}}])
        tb.write_conf(transport=tb.ble_section(
            max_peers=a.max_peers, mtu=a.mtu, scan_period_ms=200,
            peer_queue=max(16, a.buffers)))
        link = {"interval_us": a.interval_us, "pdus": a.pdus, "phy": a.phy,
                "data_length": a.data_length, "mtu": a.mtu,
                "buffers": a.buffers, "adv_delay_ms": 20}
        tb.ble_opts = lambda nid: link
        for nid in range(1, a.nodes + 1):
            tb.start_node(nid)
            watches[nid] = Watch(tb.nodes[nid]["log"])
            watches[nid].start()
        t0 = time.time()
        tb.start_daemon()
        tb.wait_for(lambda: all(tb.running(n).get("app") == "2.0.0"
                                for n in range(1, a.nodes + 1)),
                    1800, "all nodes updated", interval=0.05)
        t_all = time.time() - t0
        limit = model_limit(a)
        per = []
        for nid, w in sorted(watches.items()):
            w.stop = True
            t1 = w.t.get("idle -> receiving")
            t2 = w.t.get("receiving -> downloaded")
            if t1 is None or t2 is None or t2 <= t1:
                per.append(None)
                continue
            per.append(size / (t2 - t1))
        starts = [w.t.get("idle -> receiving") for w in watches.values()]
        ends = [w.t.get("receiving -> downloaded") for w in watches.values()]
        agg = 0.0
        if None not in starts and None not in ends:
            agg = size * a.nodes / (max(ends) - min(starts))
        good = [g for g in per if g is not None]
        worst = min(good) if len(good) == len(per) else 0.0
        out = {"bench": "ble_fanout", "run": run, "nodes": a.nodes,
               "max_peers": a.max_peers, "size_bytes": size,
               "interval_us": a.interval_us, "pdus": a.pdus, "phy": a.phy,
               "data_length": a.data_length, "mtu": a.mtu,
               "buffers": a.buffers, "limit_Bps": round(limit),
               "goodput_Bps": [round(g) if g else None for g in per],
               "worst_fraction": round(worst / limit, 3),
               "aggregate_Bps": round(agg),
               "controller_Bps": round(CONTROLLER_BPS * RATE_PCT / 100),
               "t_all_updated_s": round(t_all, 2)}
        print(json.dumps(out), flush=True)
        return worst / limit
    finally:
        for w in watches.values():
            w.stop = True
        tb.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--max-peers", type=int, default=4)
    p.add_argument("--size-kib", type=int, default=1024)
    p.add_argument("--interval-us", type=int, default=15000)
    p.add_argument("--pdus", type=int, default=6)
    p.add_argument("--phy", default="2M", choices=("1M", "2M"))
    p.add_argument("--data-length", type=int, default=251)
    p.add_argument("--mtu", type=int, default=247)
    p.add_argument("--buffers", type=int, default=16)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--bin", default=os.path.join(src, "build", "bin"))
    a = p.parse_args()
    if a.mtu - 3 < 20 or math.isnan(model_limit(a)):
        p.error("mtu")
    worst = min(run_once(a, r) for r in range(1, a.runs + 1))
    sys.exit(0 if worst >= 0.8 else 3)


if __name__ == "__main__":
    main()
