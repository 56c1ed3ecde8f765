#!/usr/bin/env python3
"""Eight BLE nodes, four connected at a time, through the whole path.

nginx with TLS is the cloud; upbridged downloads one signed package once
and serves it over its ble transport (docs/transports/ble.md) to eight
simulated peripherals (upnode --transport ble behind the link model:
15 ms connection events, 6 PDUs each, 2M PHY, ATT MTU 247), with at most
four connections at once (max_peers 4): the engine connects, serves and
disconnects them in turn.  One node loses its connection mid-transfer
(drop_at) and one loses power mid-transfer (--crash-at, then booted
again): both resume from their bitmaps.  Every node verifies, activates
and confirms the new version, the cloud gets exactly one result per node,
and the link never has more than four peers up.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 8
SIZE = 160 * 1024 + 33           # not a multiple of the block size
DROP_NODE = 2                    # loses its connection mid-transfer
DROP_AT = 200                    # ... at this Data write
CRASH_NODE = 5                   # loses power mid-transfer
CRASH_BLOCK = 250


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "ble")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", SIZE, seed=21)
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": "rollout-ble", "packages": ["app-1.1.0"],
              "target": {"hw": ["sensor-v1"]}}])
        tb.write_conf(transport=tb.ble_section(
            max_peers=4, scan_period_ms=200, connect_timeout_ms=3000))

        def link(nid):
            opts = {"interval_us": 15000, "pdus": 6, "phy": "2M",
                    "adv_delay_ms": 50, "supervision_ms": 500}
            if nid == DROP_NODE:
                opts["drop_at"] = DROP_AT
            return opts
        tb.ble_opts = link
        for nid in range(1, NODES + 1):
            extra = []
            if nid == CRASH_NODE:
                extra = ["--crash-at", "block:%d" % CRASH_BLOCK]
            tb.start_node(nid, extra=extra)
        t_start = time.time()
        tb.start_daemon()

        # Sample the link: never more than max_peers up, and used.
        seen = {"max": 0, "samples": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    st = tb.upctl("status")
                except Exception:       # the daemon may be busy: retry
                    time.sleep(0.2)
                    continue
                fo = st.get("fanout") or {}
                for link in fo.get("transports", []):
                    if link.get("name") == "ble0":
                        up = link.get("shape", {}).get("peers_up", 0)
                        seen["max"] = max(seen["max"], up)
                        seen["samples"] += 1
                time.sleep(0.2)
        th = threading.Thread(target=sample, daemon=True)
        th.start()

        crash = tb.nodes[CRASH_NODE]["proc"]
        tb.wait_for(lambda: crash.poll() is not None, 120,
                    "node %d to lose power at block %d"
                    % (CRASH_NODE, CRASH_BLOCK))
        if crash.returncode != 3:
            raise Fail("node %d exited %s, expected the crash code 3"
                       % (CRASH_NODE, crash.returncode))
        tb.log("node %d lost power after block %d; booting it again"
               % (CRASH_NODE, CRASH_BLOCK))
        tb.restart_node(CRASH_NODE)

        def all_updated():
            tb.check_daemon()
            return all(tb.running(n).get("app") == "1.1.0"
                       for n in range(1, NODES + 1))
        tb.wait_for(all_updated, 300, "every node to run app 1.1.0")
        t_nodes = time.time() - t_start
        tb.log("all %d BLE nodes run app 1.1.0 after %.1f s"
               % (NODES, t_nodes))

        def all_reported():
            res = tb.results()
            return len({r["node"] for r in res}) >= NODES and res
        tb.wait_for(all_reported, 90, "one result per node at the cloud")
        time.sleep(2)
        stop.set()
        th.join(5)
        res = tb.results()
        with open(os.path.join(tb.www, url), "rb") as f:
            pkg = f.read()
        per_node = {}
        for r in res:
            per_node.setdefault(r["node"], []).append(r)
        for nid in range(1, NODES + 1):
            rs = per_node.get(tb.node_hex(nid), [])
            if len(rs) != 1:
                raise Fail("node %d: %d results at the cloud, expected "
                           "one: %s" % (nid, len(rs), rs))
            r = rs[0]
            if r.get("state") != "updated" or r.get("to") != "1.1.0" or \
               r.get("from") != "1.0.0":
                raise Fail("node %d: result %s" % (nid, r))
            if tb.active_image(nid, SIZE) != pkg:
                raise Fail("node %d: the active image differs from the "
                           "package" % nid)

        # The faults really happened, on the BLE link.
        drop_log = open(tb.nodes[DROP_NODE]["log"]).read()
        if "connection lost (drop_at=%d)" % DROP_AT not in drop_log:
            raise Fail("node %d never lost its connection" % DROP_NODE)
        if seen["samples"] == 0:
            raise Fail("upctl status never showed the ble0 link")
        if seen["max"] > 4:
            raise Fail("%d peers up at once, max_peers is 4" % seen["max"])
        if seen["max"] < 2:
            raise Fail("never more than %d peer up: the connections "
                       "were not used in parallel" % seen["max"])
        with open(tb.nodes[CRASH_NODE]["log"]) as f:
            if "resum" not in f.read():
                raise Fail("node %d did not resume from its bitmap"
                           % CRASH_NODE)
        served = tb.cloud_bytes(url)
        if served != SIZE:
            raise Fail("the cloud served %d bytes of the package, "
                       "expected one copy (%d)" % (served, SIZE))
        tb.log("ok: %d nodes updated over BLE, at most %d connected at "
               "once, one copy from the cloud" % (NODES, seen["max"]))
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
