#!/usr/bin/env python3
"""UP over forwarding through a Q/GDW 1376.2 carrier module, end to end.

nginx with TLS is the cloud; upbridged's plc transport drives the
carrier module of a simulated station area (upsim --personality plc,
docs/simulator.md): 30 stations in 3 relay levels, every hop losing 2 %
of its frames, on a compressed clock (the testbed's one clock: upsim,
[fanout] time_scale and upnode --time-scale).  Each station's device is
an upnode on its station module's UART (--transport plc).  The daemon
downloads the package once and sends UP in the module's forwarding
frames: broadcasts (05H F3) for data, "monitor a station" (13H F1) for
one station, station events (06H F5) back.  Midway the module resets
(it loses the request it was serving) and a relay reboots (the stations
behind it drop off for 3 s).  Every station verifies, activates and
confirms the new version, the cloud receives exactly one final result
per station, and served exactly one copy of the package.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

STATIONS = 30
LEVELS = 3
SIZE = 20000
SCALE = 10
LOSS = 2


def station_opts(n, levels, loss):
    """upsim endpoint options: n stations spread over the levels, the
    first stations of each level relaying for the next one."""
    per = (n + levels - 1) // levels
    out = {}
    for k in range(n):
        lv = k // per
        o = "loss=%g" % loss
        if lv > 0:
            o += ",parent=n%d" % ((lv - 1) * per + k % min(per, 3) + 1)
        out["n%d" % (k + 1)] = o
    return out


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "plc-fwd",
                 keep=bool(os.environ.get("UB_E2E_KEEP")))
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", SIZE, seed=21)
        tb.publish([tb.full("1.1.0", url)],
                   [{"id": "plc-1", "packages": ["app-1.1.0"],
                     "target": {"hw": ["sensor-v1"]}}])
        tb.start_air("plc", STATIONS, scale=SCALE, baud=9600, fmt="8E1",
                     seed=5, ep_opts=station_opts(STATIONS, LEVELS, LOSS))
        tb.log("station area: %d stations in %d levels, %g %% loss per "
               "hop" % (STATIONS, LEVELS, LOSS))
        tb.node_link = lambda nid: [
            "--transport", "plc",
            "--link-opt", "device=" + tb.air_path("n%d" % nid)]
        tb.write_conf(transport=[
            "[transport.plc0]",
            "type = plc",
            "device = %s" % tb.air_path("gw"),
            "status_interval_s = 1",
            # UP carries the package (test_plc_offload.py: the module).
            "offload = no",
        ],
            # Link time (the testbed's one clock): a PLC area answers
            # through one module at 9600 baud, a report at a time, so
            # the LAN's windows would be too short and its DISCOVER
            # every 2 s would flood the module's report queue
            # (per-link profiles: issue 8 §2).
            discover_interval_s=60, status_window_ms=5000,
            result_timeout_s=120)
        for k in range(1, STATIONS + 1):
            tb.start_node(k)
        t0 = time.time()
        tb.start_daemon()

        def receiving():
            return sum(1 for n in range(1, STATIONS + 1)
                       if "receiving" in tb.node_log(n))
        tb.wait_for(lambda: receiving() >= STATIONS // 2, 120,
                    "half the stations to receive")
        # The module resets mid-session; a relay with stations behind
        # it reboots.
        tb.air_cmd("reset gw")
        tb.log("the carrier module resets")
        tb.air_cmd("reboot n11 3000")
        tb.log("relay n11 reboots for 3 s (simulated)")

        def all_updated():
            return all(tb.running(n).get("app") == "1.1.0"
                       for n in range(1, STATIONS + 1))
        tb.wait_for(all_updated, 300, "every station to run app 1.1.0")
        tb.log("all %d stations run app 1.1.0 after %.1f s (simulated "
               "%.0f s)" % (STATIONS, time.time() - t0,
                            (time.time() - t0) * SCALE))

        def all_reported():
            res = tb.results()
            return len({r["node"] for r in res}) >= STATIONS and res
        tb.wait_for(all_reported, 60, "one result per station at the "
                    "cloud")
        time.sleep(2)
        finals = tb.check_exactly_once("1")
        if len(finals) != STATIONS:
            raise Fail("results for %d stations, expected %d"
                       % (len(finals), STATIONS))
        for k, r in sorted(finals.items()):
            if r.get("state") != "updated" or r.get("to") != "1.1.0":
                raise Fail("station %s result is %s" % (k, r))

        got = tb.cloud_bytes(url)
        if got != SIZE:
            raise Fail("the cloud served %d bytes, expected one copy (%d)"
                       % (got, SIZE))
        nodes = tb.upctl("nodes")
        addrs = sorted(n.get("addr", "") for n in nodes)
        if len(nodes) != STATIONS or not all(a.startswith("plc:")
                                             for a in addrs):
            raise Fail("upctl nodes: %s" % addrs)
        st = tb.air_status()
        gw = [e for e in st["endpoints"] if e["name"] == "gw"][0]["plc"]
        tb.log("module: %d requests (%d denied), %d reports, medium %d "
               "frames, %d hop retries" % (gw["requests"], gw["denied"],
                                            gw["reports"], gw["mac_frames"],
                                            gw["mac_retries"]))
        with open(tb.daemon_log) as f:
            if "module SM SM restarted" not in f.read():
                raise Fail("the transport did not see the module reset")
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
