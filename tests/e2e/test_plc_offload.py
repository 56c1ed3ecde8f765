#!/usr/bin/env python3
"""Module offload through a Q/GDW 1376.2 carrier module, end to end.

nginx with TLS is the cloud; upbridged's plc transport drives the
carrier module of a simulated station area (upsim --personality plc,
docs/simulator.md): 30 stations in 3 relay levels, 2 % loss per hop, on
the testbed's one clock (time scale 10).  Each station's device is an
upnode on its station module's UART (--transport plc).

The module's routing tree reaches the registry by itself (10H F21 ->
TP_PEER_FOUND with level and parent -> the engine's peer_route -> the
daemon's fo_route.c): every station's parent and level, and the six
stations others route through as relays.  The deployment goes through
the scheduler, so a relay is updated after every station behind it:
three waves (the leaves, the level-2 relays, the level-1 relays).  Each
wave's session offers over UP, then hands the package to the module
(AFN 15H F1, the module's segment size); the module distributes it
(broadcast carousel, status queries, unicast repair) and each station's
device takes the blocks out of band (up_node_put_block); the transport
reports each station's progress from the module's upgrade status, and UP
verifies, activates and confirms.  In the first wave the module resets
while it receives the file: the transfer resumes by segment id.  Every
station runs the new version, the cloud receives exactly one final
result per station, in relay order, and served exactly one copy.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

STATIONS = 30
LEVELS = 3
SIZE = 20000
SCALE = 10
LOSS = 2
CID = "plc-off"


def station_opts(n, levels, loss):
    """upsim endpoint options: n stations spread over the levels, the
    first three stations of each level relaying for the next one."""
    per = (n + levels - 1) // levels
    out, parent = {}, {}
    for k in range(n):
        lv = k // per
        o = "loss=%g" % loss
        if lv > 0:
            p = (lv - 1) * per + k % min(per, 3) + 1
            o += ",parent=n%d" % p
            parent[k + 1] = p
        out["n%d" % (k + 1)] = o
    return out, parent


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "plc-off",
                 keep=bool(os.environ.get("UB_E2E_KEEP")))
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        tb.publish([], [])
        opts, parent = station_opts(STATIONS, LEVELS, LOSS)
        relays = sorted(set(parent.values()))
        tb.start_air("plc", STATIONS, scale=SCALE, baud=9600, fmt="8E1",
                     seed=7, ep_opts=opts)
        tb.log("station area: %d stations in %d levels, relays %s"
               % (STATIONS, LEVELS, relays))
        tb.node_link = lambda nid: [
            "--transport", "plc",
            "--link-opt", "device=" + tb.air_path("n%d" % nid)]
        tb.write_conf(transport=[
            "[transport.plc0]",
            "type = plc",
            "device = %s" % tb.air_path("gw"),
            "status_interval_s = 2",
        ],
            # Link time (test_plc_forwarding.py says why).
            discover_interval_s=60, status_window_ms=5000,
            result_timeout_s=120)
        for k in range(1, STATIONS + 1):
            tb.start_node(k)
        tb.start_daemon()

        # The module's tree reaches the registry without a technician.
        def tree():
            nodes = {int(n["id"], 16): n for n in tb.upctl("nodes")}
            if len(nodes) != STATIONS:
                return False
            for k in range(1, STATIONS + 1):
                n = nodes[k]
                want_parent = parent.get(k)
                got = n.get("parent")
                if (want_parent is None) != (got is None):
                    return False
                if want_parent is not None and \
                        int(got, 16) != want_parent:
                    return False
                if n.get("level") != (1 if k <= 10 else
                                      2 if k <= 20 else 3):
                    return False
                if (n.get("role") == "relay") != (k in relays):
                    return False
            return True
        tb.wait_for(tree, 60, "the module's routing tree in the registry")
        tb.log("registry: 30 stations with parents and levels, %d relays"
               % len(relays))

        url = tb.make_package("app-1.1.0.bin", SIZE, seed=23)
        t0 = time.time()
        # The way, per campaign: the module distributes (docs/campaigns.md,
        # policy "offload"); a policy makes the deployment a rollout, so
        # the scheduler orders relays after the stations behind them.
        tb.publish_one(CID, tb.full("1.1.0", url),
                       policy={"offload": "module"})

        # The module resets while it takes the first wave's file.
        def segments():
            st = tb.air_status()
            gw = [e for e in st["endpoints"] if e["name"] == "gw"][0]
            return gw["plc"]["file_segments"]
        tb.wait_for(lambda: segments() >= 4, 120,
                    "the module to hold 4 segments of the file")
        tb.air_cmd("reset gw")
        tb.log("the carrier module resets mid-transfer")

        def all_updated():
            return all(tb.running(n).get("app") == "1.1.0"
                       for n in range(1, STATIONS + 1))
        tb.wait_for(all_updated, 400, "every station to run app 1.1.0")
        tb.log("all %d stations run app 1.1.0 after %.1f s (simulated "
               "%.0f s)" % (STATIONS, time.time() - t0,
                            (time.time() - t0) * SCALE))

        def finals_in():
            return len({r["node"] for r in tb.campaign_results(CID)
                        if r.get("final")}) >= STATIONS
        tb.wait_for(finals_in, 60, "one final result per station at the "
                    "cloud")
        time.sleep(2)
        finals = tb.check_exactly_once(CID)
        if len(finals) != STATIONS:
            raise Fail("final results for %d stations, expected %d"
                       % (len(finals), STATIONS))
        seq = {}
        for (node, comp), r in finals.items():
            if r.get("state") != "updated" or r.get("to") != "1.1.0":
                raise Fail("station %s result is %s" % (node, r))
            seq[int(node, 16)] = r["seq"]
        # Relays after every station behind them.
        for k, p in parent.items():
            if seq[p] <= seq[k]:
                raise Fail("relay %d reported (seq %d) before station %d "
                           "behind it (seq %d)" % (p, seq[p], k, seq[k]))
        # ... and a relay was offered the package only once every
        # station behind it had updated (the daemon's log, in order).
        offered, updated = {}, {}
        with open(tb.daemon_log) as f:
            for i, ln in enumerate(f):
                m = re.search(r"node 0x([0-9a-f]{16}) (offered|updated "
                              r"\(success\))", ln)
                if m:
                    d = offered if m.group(2) == "offered" else updated
                    d.setdefault(int(m.group(1), 16), i)
        for k, p in parent.items():
            if offered[p] <= updated[k]:
                raise Fail("relay %d offered (log line %d) before station "
                           "%d behind it updated (line %d)"
                           % (p, offered[p], k, updated[k]))
        tb.log("relays reported and were offered after the stations "
               "behind them")

        got = tb.cloud_bytes(url)
        if got != SIZE:
            raise Fail("the cloud served %d bytes, expected one copy (%d)"
                       % (got, SIZE))
        with open(tb.daemon_log) as f:
            log = f.read()
        st = tb.air_status()
        gw = [e for e in st["endpoints"] if e["name"] == "gw"][0]["plc"]
        # The reset, from the module's side: it held k segments of the
        # file (0 < k < all), of which the gateway had seen a
        # acknowledged: k, or k - 1 when the reset cut the answer to the
        # last one on its way (the module takes a segment, then
        # answers; which of the two happens depends on when the test's
        # reset lands).  The first segment asked after the reset was
        # segment a, with no clear before: resumed by segment id, at the
        # first segment not acknowledged.
        k = gw["reset_segments"]
        a = gw["reset_acked"]
        if gw["resets"] != 1 or not 0 < k < (SIZE + 1023) // 1024:
            raise Fail("module resets %d, holding %d segments: not one "
                       "reset mid-transfer" % (gw["resets"], k))
        if not 0 < a <= k <= a + 1:
            raise Fail("the module held %d segments at the reset, the "
                       "gateway had %d acknowledged" % (k, a))
        if gw["resume_segment"] != a or gw["resume_cleared"]:
            raise Fail("after the reset with %d segments held, %d "
                       "acknowledged, the transfer asked segment %d%s: "
                       "not resumed by segment id"
                       % (k, a, gw["resume_segment"], ", after a clear"
                          if gw["resume_cleared"] else ""))
        resumed = re.findall(r"the module restarted; resuming at segment "
                             r"(\d+) of", log)
        if resumed != [str(a)]:
            raise Fail("the transport's resume %s, the module held %d, "
                       "%d acknowledged" % (resumed, k, a))
        tb.log("the module reset holding %d segments (%d acknowledged); "
               "the transfer resumed at segment %d"
               % (k, a, gw["resume_segment"]))
        # Every station by the module: the transport saw each one done
        # in the module's upgrade status, each device took blocks out of
        # band, and no station was left to UP.
        done = set(re.findall(r"offload \d+: station (\w+) done", log))
        if len(done) != STATIONS:
            raise Fail("the module reported %d stations done, expected %d"
                       % (len(done), STATIONS))
        for n in range(1, STATIONS + 1):
            if "the module distributes the package" not in tb.node_log(n):
                raise Fail("station %d took no block out of band" % n)
        left = [int(x) for x in re.findall(r"offload over \(\d+ bytes to "
                                           r"the module\), (\d+) stations "
                                           r"left to UP", log)]
        offloads = log.count("distributes it to")
        if offloads < LEVELS or sum(left) != 0:
            raise Fail("%d offloads (one per wave at least: %d), %s "
                       "stations left to UP" % (offloads, LEVELS, left))
        if "the module gave a station up" in log:
            raise Fail("the module gave a station up (UP carried it)")
        tb.log("%d offloads, every station served by the module"
               % offloads)
        done = len(done)
        tb.log("module: %d file segments in, %d blocks broadcast, %d "
               "unicast, %d status queries; %d stations done by the module"
               % (gw["segments"], gw["blocks_broadcast"],
                  gw["blocks_unicast"], gw["queries"], done))
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
