#!/usr/bin/env python3
"""bench/lora_fanout.py: a package over LoRa against its physical limit,
and a ChirpStack-style baseline on the same simulated air.

    python3 bench/lora_fanout.py [--nodes N] [--loss PCT] [--size-kib S]
        [--scale X] [--runs R] [--seed N] [--baseline] [--warm]
        [--fec-k K] [--keep] [--bin DIR]

The testbed of tests/e2e/test_lora_fanout.py without the faults: nginx
as the cloud, upsim's LoRa air (RUI3 modems on ptys, EU868 sub-band P,
869.525 MHz, 10 % duty, SF7/125, 222-byte frames) on a compressed
clock, upbridged with [transport.lora0], N upnode --transport lora each
losing PCT % of the frames on its own draw.  The gateway first learns
its field, then one deployment is published; everything is measured
from there, on the simulator's clock and its per-radio counters (exact:
the air model charges every frame its Semtech time on air).

Ours (default): the engine's session on a slow broadcast link (compact
frames, TS004 parity, count-list rounds from the nodes still missing
something).  Printed per run against research/transports.md §1.2/§1.6:

  M      = ceil(S / F), F the block the session chose (218 B)
  N99    = (M + 7 + 2.33 sqrt(M p / (1 - p))) / (1 - p)
  T_air  = N99 * ToA(frame)          the airtime bound
  T_min  = N99 * ToA(frame) / d      the wall-time bound at duty d

frames: the session's DATA and PARITY frames (the daemon's "block
frames") against N99, and every gateway frame; airtime: the gateway's
time on air against T_air; status bytes: what the nodes sent during the
session (ACCEPT, STATUS, RESULT), per node; wall: simulated seconds
from the deployment to the last node running the new version, against
T_min.

--warm: a first package goes out first, so the link has measured the
nodes' loss; the second one is measured (its first pass carries the
N99 batch of parity, engine/parity.c).

--baseline: ChirpStack's FUOTA flow (chirpstack/src/applayer/fuota:
one pass, a fixed redundancy of 10 %, no second round) on the same air
and nodes: one parity group of the whole package (fec_k = M), 10 %
proactive parity rows after it, and the run stops when the first status
request goes out (the pass is over; ChirpStack would only ask for the
status).  Success is the share of nodes holding every block then (their
logs' "-> downloaded"), airtime the gateway's until then.

Prints one JSON line per run.
"""

import argparse
import json
import math
import os
import re
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.abspath(os.path.join(here, ".."))
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
from testbed import Testbed  # noqa: E402

FREQ = 869525000
SF = 7
DUTY = 0.10          # sub-band P (ETSI EN 300 220-2)
FRAME = 222          # the RUI3 P2P payload the transport uses at SF7
BLOCK = 218          # the compact DATA's block at 222 bytes


def toa_s(pl, sf=SF, bw=125000, cr=1, pre=8, crc=1, ih=0):
    """Semtech's time on air (SX1272 datasheet §4.1.1.7)."""
    ts = (2 ** sf) / bw
    de = 1 if ts > 0.016 else 0
    n = 8 + max(math.ceil((8 * pl - 4 * sf + 28 + 16 * crc - 20 * ih)
                          / (4 * (sf - 2 * de))) * (cr + 4), 0)
    return (pre + 4.25) * ts + n * ts


def n99(m, p):
    return (m + 7 + 2.33 * math.sqrt(m * p / (1 - p))) / (1 - p)


def downloaded(tb, nodes):
    n = 0
    for i in range(1, nodes + 1):
        with open(tb.nodes[i]["log"], errors="replace") as f:
            if "-> downloaded" in f.read():
                n += 1
    return n


def run(args, seed):
    tb = Testbed(args.bin, src, "lora-bench", keep=args.keep, quiet=True)
    try:
        size = args.size_kib * 1024
        m = math.ceil(size / BLOCK)
        p = args.loss / 100.0
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", size, seed=seed)
        pkgs = [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
                 "hw": ["sensor-v1"], "kind": "full", "url": url}]
        ver = "1.1.0"
        if args.warm:
            url2 = tb.make_package("app-1.2.0.bin", size, seed=seed + 100)
            pkgs.append({"id": "app-1.2.0", "component": "app",
                         "version": "1.2.0", "hw": ["sensor-v1"],
                         "kind": "full", "url": url2})
        tb.publish(pkgs, [])
        ep = {"n%d" % i: "loss=%g,rssi=%d,snr=%d"
              % (args.loss, -80 - i, 9 - i % 5)
              for i in range(1, args.nodes + 1)}
        ep["gw"] = "loss=0"
        tb.start_air("lora", args.nodes, scale=args.scale,
                     opts=["freq=%d" % FREQ, "sf=%d" % SF], ep_opts=ep,
                     seed=seed)
        tb.node_link = lambda nid: [
            "--transport", "lora",
            "--link-opt", "device=" + tb.air_path("n%d" % nid),
            "--seed", str(1000 * seed + nid)]
        fan = dict(discover_interval_s=120, status_window_ms=8000,
                   offer_window_ms=8000, activate_delay_ms=2000,
                   result_timeout_s=1200, session_deadline_s=36000)
        if args.baseline:
            fan.update(fec_k=min(m, 128), fec_proactive=10)
        elif args.fec_k:
            fan.update(fec_k=args.fec_k)
        tb.write_conf(transport=[
            "[transport.lora0]", "type = lora",
            "device = %s" % tb.air_path("gw"),
            "frequency_hz = %d" % FREQ, "sf = %d" % SF], **fan)
        if args.baseline:
            with open(tb.conf) as f:
                c = f.read().replace("log_level = info",
                                     "log_level = debug")
            with open(tb.conf, "w") as f:
                f.write(c)
        for nid in range(1, args.nodes + 1):
            tb.start_node(nid)
        tb.start_daemon()
        tb.wait_for(lambda: len(tb.upctl("nodes")) == args.nodes, 300,
                    "the gateway to know its nodes", interval=1)
        if args.warm:
            # A first package, so the link knows the nodes' loss.
            tb.publish(pkgs, [{"id": "rollout-lora",
                               "packages": ["app-1.1.0"],
                               "target": {"hw": ["sensor-v1"]}}])
            tb.wait_for(lambda: all(
                tb.running(n).get("app") == "1.1.0"
                for n in range(1, args.nodes + 1)), 1200,
                "the first package everywhere", interval=0.2)
            tb.wait_for(lambda: "closed:" in open(tb.daemon_log).read(),
                        120, "the first session to close", interval=0.5)
            ver = "1.2.0"
        st0 = tb.air_status()
        eps0 = {e["name"]: e for e in st0["endpoints"]}
        t0 = time.time()
        tb.publish(pkgs, [{"id": "rollout-lora", "packages": ["app-" + ver],
                           "target": {"hw": ["sensor-v1"]}}])
        bound = n99(m, p)
        toa = toa_s(FRAME)
        out = {"mode": "baseline" if args.baseline else
               "ours, loss known" if args.warm else "ours",
               "nodes": args.nodes, "loss_pct": args.loss,
               "size": size, "M": m, "N99": round(bound, 1),
               "toa_ms": round(toa * 1e3, 1),
               "T_air_s": round(bound * toa, 1),
               "T_min_s": round(bound * toa / DUTY, 1), "seed": seed,
               "fec_k": args.fec_k or None}
        if args.baseline:
            def pass_over():
                with open(tb.daemon_log) as f:
                    return "status round" in f.read()
            tb.wait_for(pass_over, 600, "the end of the pass",
                        interval=0.05)
            st = tb.air_status()
            ok = downloaded(tb, args.nodes)
        else:
            def all_updated():
                return all(tb.running(n).get("app") == ver
                           for n in range(1, args.nodes + 1))
            tb.wait_for(all_updated, 1200, "every node to update",
                        interval=0.1)
            st = tb.air_status()
            ok = args.nodes
        eps = {e["name"]: e for e in st["endpoints"]}
        gw, gw0 = eps["gw"], eps0["gw"]
        up = sum(eps["n%d" % i]["tx_bytes"] - eps0["n%d" % i]["tx_bytes"]
                 for i in range(1, args.nodes + 1))
        air = (gw["airtime_us"] - gw0["airtime_us"]) / 1e6
        wall = (st["sim_ms"] - st0["sim_ms"]) / 1e3
        out.update(success=round(ok / args.nodes, 3),
                   gw_frames=gw["tx_frames"] - gw0["tx_frames"],
                   airtime_s=round(air, 1),
                   airtime_vs_T_air=round(air / (bound * toa), 2),
                   uplink_bytes_per_node=round(up / args.nodes, 1),
                   wall_sim_s=round(wall, 1),
                   wall_vs_T_min=round(wall / (bound * toa / DUTY), 2),
                   refused_duty=gw["modem"]["refused_duty"],
                   real_s=round(time.time() - t0, 1))
        if not args.baseline:
            def closed():
                with open(tb.daemon_log) as f:
                    return re.findall(r"closed: (\d+) block frames \((\d+) "
                                      r"in repair passes, (\d+) parity",
                                      f.read())
            tb.wait_for(closed, 120, "the session to close", interval=0.5)
            tb.wait_for(lambda: len(closed()) >= (2 if args.warm else 1),
                        120, "the session to close", interval=0.5)
            blk, rep, par = (int(x) for x in closed()[-1])
            out.update(block_frames=blk, repair_frames=rep,
                       parity_frames=par,
                       frames_vs_N99=round(blk / bound, 2))
        return out
    finally:
        tb.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=24)
    ap.add_argument("--loss", type=float, default=10)
    ap.add_argument("--size-kib", type=int, default=20)
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--seed", type=int, default=5,
                    help="the first run's seed (then +1 per run)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the testbed's directory (logs)")
    ap.add_argument("--fec-k", type=int, default=0,
                    help="blocks per parity group ([fanout] fec_k; "
                    "default the daemon's)")
    ap.add_argument("--warm", action="store_true",
                    help="measure a second package, the loss known")
    ap.add_argument("--bin", default=os.path.join(src, "build", "bin"))
    args = ap.parse_args()
    for r in range(args.runs):
        print(json.dumps(run(args, args.seed + r)), flush=True)


if __name__ == "__main__":
    main()
