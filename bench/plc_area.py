#!/usr/bin/env python3
"""bench/plc_area.py: the whole station area, both ways, same package.

    python3 bench/plc_area.py [--way module|up|both] [--stations N]
        [--levels L] [--size BYTES] [--loss PCT] [--scale S] [--seed K]
        [--runs R] [--bin DIR]

The real cloud (nginx, TLS), upbridged with its plc transport on the
carrier module of `upsim --personality plc` (N stations in L relay
levels, PCT % loss per hop, the testbed's one clock at time scale S),
and one `upnode --transport plc` per station.  One deployment of one
pseudo-random package, with the way chosen per campaign (its policy's
"offload": "module" or "up", docs/campaigns.md); the instance is the
same for both (offload = yes).  The policy makes it a rollout, so both
ways update the relays after the stations behind them, in the same
waves.

The whole-area time is from the daemon accepting the manifest that
carries the deployment to the last station's final result ("updated
(success)") in the daemon's log, in real time, times S: link time.
Prints one JSON line per run with the module's counters and the UP
block frames the session sent (its log line when it closes); exit 1
when a run fails (a station not updated).
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.abspath(os.path.join(here, ".."))
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
from testbed import Testbed, Fail  # noqa: E402
from test_plc_offload import station_opts  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (.*)$")


def stamps(path):
    out = []
    with open(path) as f:
        for line in f:
            m = STAMP.match(line.rstrip("\n"))
            if m:
                t = datetime.datetime.strptime(m.group(1),
                                               "%Y-%m-%d %H:%M:%S.%f")
                out.append((t.timestamp(), m.group(2)))
    return out


def run(a, way, k):
    tb = Testbed(a.bin, src, "plc-area", quiet=True)
    try:
        tb.start_cloud()
        tb.genkey()
        tb.publish([], [])
        opts, _ = station_opts(a.stations, a.levels, a.loss)
        tb.start_air("plc", a.stations, scale=a.scale, baud=9600,
                     fmt="8E1", seed=a.seed + k, ep_opts=opts)
        tb.node_link = lambda nid: [
            "--transport", "plc",
            "--link-opt", "device=" + tb.air_path("n%d" % nid)]
        tb.write_conf(transport=[
            "[transport.plc0]",
            "type = plc",
            "device = %s" % tb.air_path("gw"),
            "status_interval_s = 2",
        ], discover_interval_s=60, status_window_ms=5000,
            result_timeout_s=120)
        for n in range(1, a.stations + 1):
            tb.start_node(n)
        tb.start_daemon()
        tb.wait_for(lambda: len(tb.upctl("nodes")) == a.stations, 120,
                    "every station in the registry")
        # The tree too: parents for every station past level 1.
        tb.wait_for(lambda: sum(1 for n in tb.upctl("nodes")
                                if n.get("parent")) ==
                    a.stations - (a.stations + a.levels - 1) // a.levels,
                    120, "the module's routing tree")
        url = tb.make_package("app-2.0.0.bin", a.size, seed=31)
        tb.publish_one("area", tb.full("2.0.0", url),
                       policy={"offload": way})

        def updated():
            return all(tb.running(n).get("app") == "2.0.0"
                       for n in range(1, a.stations + 1))
        tb.wait_for(updated, 3000 / a.scale * 10, "every station updated",
                    interval=1.0)
        def finals():
            with open(tb.daemon_log) as f:
                return f.read().count("updated (success)") >= a.stations
        tb.wait_for(finals, 60, "every final result in the log")
        lines = stamps(tb.daemon_log)
        t0 = [t for t, s in lines if "manifest serial 2 accepted" in s][0]
        ends = [t for t, s in lines if "updated (success)" in s]
        offloads = sum(1 for _, s in lines if "distributes it to" in s)
        # The session's UP block frames, logged when it closes (when it
        # sent any): the campaign is done by then.
        def done():
            with open(tb.daemon_log) as f:
                return re.search(r"campaign \S+: done, ", f.read())
        tb.wait_for(done, 120, "the campaign to be done")
        with open(tb.daemon_log) as f:
            ss = re.findall(r"closed: (\d+) block frames \((\d+) in "
                            r"repair passes", f.read())
        gw = [e for e in tb.air_status()["endpoints"]
              if e["name"] == "gw"][0]["plc"]
        return {"way": way, "stations": a.stations, "levels": a.levels,
                "size": a.size, "loss_pct": a.loss, "time_scale": a.scale,
                "seed": a.seed + k,
                "area_s": round((max(ends) - t0) * a.scale, 1),
                "first_s": round((min(ends) - t0) * a.scale, 1),
                "offloads": offloads,
                "up_block_frames": sum(int(x[0]) for x in ss),
                "up_repair_frames": sum(int(x[1]) for x in ss),
                "blocks_broadcast": gw["blocks_broadcast"],
                "blocks_unicast": gw["blocks_unicast"],
                "file_segments_in": gw["segments"],
                "forwarded_requests": gw["requests"],
                "mac_frames": gw["mac_frames"]}
    finally:
        tb.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--way", choices=("module", "up", "both"),
                   default="both")
    p.add_argument("--stations", type=int, default=30)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--size", type=int, default=20000)
    p.add_argument("--loss", type=float, default=2)
    p.add_argument("--scale", type=float, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--bin", default=os.path.join(src, "build", "bin"))
    a = p.parse_args()
    ways = ("module", "up") if a.way == "both" else (a.way,)
    rc = 0
    for k in range(a.runs):
        for way in ways:
            try:
                print(json.dumps(run(a, way, k)), flush=True)
            except Fail as e:
                print(json.dumps({"way": way, "error": str(e)[:400]}),
                      flush=True)
                rc = 1
    return rc


if __name__ == "__main__":
    t = time.time()
    rc = main()
    sys.stderr.write("%.0f s\n" % (time.time() - t))
    sys.exit(rc)
