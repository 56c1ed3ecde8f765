#!/usr/bin/env python3
"""The LoRa path below the sessions, on real processes.

upsim's LoRa air (node-stubs/sim_lora.c) with RUI3 modems on pty pairs at
time scale 20; upbridged with a [transport.lora0] section on the
gateway's modem and [fanout] time_scale = 20; three upnode processes with
--transport lora --time-scale 20 (two class C, one asleep with receive
windows, woken by the gateway's long preamble).  The gateway's DISCOVERs
reach the nodes, their ANNOUNCEs reach the gateway and every node is in
the registry; the gateway's modem resets and the link comes back; the
modem's regulator never had to refuse a frame (the engine's pacer kept
the sub-band's duty cycle).  nginx is the cloud, as everywhere.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 3
SCALE = 20
SLEEPER = 3


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "lora-link")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        tb.publish([], [])
        tb.start_air("lora", NODES, scale=SCALE,
                     opts=["freq=869525000", "sf=7"],
                     ep_opts={"gw": "rssi=-70,snr=9",
                              "n1": "rssi=-101,snr=3"})

        def link(nid):
            a = ["--transport", "lora",
                 "--link-opt", "device=" + tb.air_path("n%d" % nid)]
            if nid == SLEEPER:
                a += ["--link-opt", "sleep=on",
                      "--link-opt", "wake_ms=1000",
                      "--link-opt", "awake_ms=20000"]
            return a
        tb.node_link = link
        tb.write_conf(transport=[
            "[transport.lora0]",
            "type = lora",
            "device = %s" % tb.air_path("gw"),
            "frequency_hz = 869525000",
            "sf = 7",
            "wake_ms = 1200",
            "node_awake_ms = 20000",
        ], discover_interval_s=10,
            # Answers to a DISCOVER spread over its window; a LoRa
            # ANNOUNCE is 112 ms on air, so the LAN's 200 ms would make
            # them all collide (per-link profiles: issue 8 §2).
            status_window_ms=5000)
        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        tb.start_daemon()

        tb.wait_for(lambda: len(tb.upctl("nodes")) == NODES, 60,
                    "every node announced over LoRa")
        tb.log("registry: %d nodes heard over lora0" % NODES)
        for n in tb.upctl("nodes"):
            if "lora0" not in str(n):
                raise Fail("node not on lora0: %s" % n)

        # The gateway's modem resets: down, set up again, up.
        tb.air_cmd("reset gw")

        def relinked():
            with open(tb.daemon_log) as f:
                text = f.read()
            return ("modem fault: the modem reset" in text and
                    text.count("modem ready") >= 2)
        tb.wait_for(relinked, 30, "the gateway's modem set up again")
        tb.log("gateway modem reset survived")

        # The sleeper hears the gateway only when a DISCOVER with the
        # long wake preamble comes after the node's boot ANNOUNCE, and
        # the gateway's second DISCOVER comes after the reset: wait for
        # both (bounded), then check the counters.
        def all_heard():
            eps = {e["name"]: e for e in tb.air_status()["endpoints"]}
            return eps["gw"]["tx_frames"] >= 2 and all(
                eps["n%d" % i]["modem"]["rx_events"] > 0
                for i in range(1, NODES + 1))
        try:
            tb.wait_for(all_heard, 30, "every node heard the gateway")
        except Fail:
            pass            # reported below with the modem's counters
        st = tb.air_status()
        eps = {e["name"]: e for e in st["endpoints"]}
        gw = eps["gw"]
        if gw["modem"]["refused_duty"] != 0:
            raise Fail("the modem refused %d frames for duty cycle"
                       % gw["modem"]["refused_duty"])
        if gw["tx_frames"] < 2:
            raise Fail("the gateway sent %d frames" % gw["tx_frames"])
        for i in range(1, NODES + 1):
            m = eps["n%d" % i]["modem"]
            if m["rx_events"] == 0:
                raise Fail("n%d heard nothing: %s" % (i, m))
        tb.log("air: gateway sent %d frames, %.1f s on air (simulated "
               "%.0f s), sleeper woke %d times"
               % (gw["tx_frames"], gw["airtime_us"] / 1e6,
                  st["sim_ms"] / 1e3, eps["n%d" % SLEEPER]["modem"][
                      "rx_events"]))
        with open(tb.nodes[SLEEPER]["log"]) as f:
            if "woken by a frame" not in f.read():
                raise Fail("the sleeping node was never woken")
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
