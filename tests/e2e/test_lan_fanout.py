#!/usr/bin/env python3
"""The foundation's whole path on real components.

nginx with TLS is the cloud; upbridged downloads one signed package once,
multicasts it with UP over loopback to 10 upnode processes (one with 3 %
frame loss, one that loses power mid-transfer and resumes from its bitmap),
every node verifies, activates and confirms the new version, and the cloud
receives exactly one result per node.  An eleventh node boots the new
image but fails its health check: it rolls back to the old slot and the
cloud gets its failure, with the reason.  SIGHUP reloads the daemon's
configuration without disturbing it.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 10
SIZE = 1536 * 1024 + 77          # not a multiple of the block size
CRASH_NODE = 3
CRASH_BLOCK = 300
LOSSY_NODE = 7
SICK_NODE = NODES + 1            # new image fails its health check


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "fanout")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", SIZE, seed=11)
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": "rollout-1", "packages": ["app-1.1.0"],
              "target": {"hw": ["sensor-v1"]}}])
        tb.write_conf()

        for nid in range(1, NODES + 1):
            extra = []
            if nid == CRASH_NODE:
                extra = ["--crash-at", "block:%d" % CRASH_BLOCK]
            if nid == LOSSY_NODE:
                extra = ["--drop-pct", "3", "--seed", "7"]
            tb.start_node(nid, extra=extra)
        tb.start_node(SICK_NODE, extra=["--health", "fail"])
        t_start = time.time()
        tb.start_daemon()

        # The node that "loses power" mid-transfer, then boots again.
        crash = tb.nodes[CRASH_NODE]["proc"]
        tb.wait_for(lambda: crash.poll() is not None, 90,
                    "node %d to crash at block %d" % (CRASH_NODE,
                                                       CRASH_BLOCK))
        if crash.returncode != 3:
            raise Fail("node %d exited %s, expected the crash code 3"
                       % (CRASH_NODE, crash.returncode))
        tb.log("node %d lost power after block %d; booting it again"
               % (CRASH_NODE, CRASH_BLOCK))
        tb.restart_node(CRASH_NODE)

        def all_updated():
            return all(tb.running(n).get("app") == "1.1.0"
                       for n in range(1, NODES + 1))
        tb.wait_for(all_updated, 180, "every node to run app 1.1.0")
        t_nodes = time.time() - t_start
        tb.log("all %d nodes run app 1.1.0 after %.1f s" % (NODES, t_nodes))

        def all_reported():
            res = tb.results()
            return len({r["node"] for r in res}) >= NODES + 1 and res
        tb.wait_for(all_reported, 60, "one result per node at the cloud")
        time.sleep(2)      # let any duplicate arrive before counting
        res = tb.results()
        per_node = {}
        for r in res:
            per_node.setdefault(r["node"], []).append(r)
        if len(per_node) != NODES + 1:
            raise Fail("results for %d nodes, expected %d"
                       % (len(per_node), NODES + 1))
        sick = "0x%016x" % SICK_NODE
        for node, rs in sorted(per_node.items()):
            if len(rs) != 1:
                raise Fail("node %s has %d results: %s" % (node, len(rs), rs))
            r = rs[0]
            if node == sick:
                if r.get("state") != "failed" or \
                   r.get("result_str") != "rolled_back":
                    raise Fail("node %s (failing health check) reported %s"
                               % (node, r))
                continue
            if r.get("state") != "updated" or r.get("result") != 1 or \
               r.get("to") != "1.1.0" or r.get("from") != "1.0.0":
                raise Fail("node %s result is %s" % (node, r))

        if tb.running(SICK_NODE).get("app") != "1.0.0":
            raise Fail("node %d runs %s after its rollback"
                       % (SICK_NODE, tb.running(SICK_NODE)))
        tb.log("node %d failed its health check and rolled back to 1.0.0"
               % SICK_NODE)

        # One download over the uplink, whatever the node count.
        got = tb.cloud_bytes(url)
        tb.log("package %d bytes, served by the cloud %d bytes (%.3fx)"
               % (SIZE, got, got / SIZE))
        if got != SIZE:
            raise Fail("the cloud served %d bytes of the package, expected "
                       "exactly one copy (%d)" % (got, SIZE))

        # The node that crashed resumed from its bitmap, not from zero.
        with open(tb.nodes[CRASH_NODE]["log"]) as f:
            text = f.read()
        if "resum" not in text:
            raise Fail("node %d did not say it resumed:\n%s"
                       % (CRASH_NODE, text[-2000:]))

        # What the technician sees.
        nodes = tb.upctl("nodes")
        if len(nodes) != NODES + 1:
            raise Fail("upctl nodes lists %d nodes" % len(nodes))
        st = tb.upctl("status")
        tb.log("upctl status: %s" % str(st)[:200])
        camps = tb.upctl("campaigns")
        one = tb.upctl("campaign", str(camps[0]["id"]))
        if not one:
            raise Fail("upctl campaign %s shows nothing" % camps[0]["id"])
        node = tb.upctl("node", "0x%016x" % 1)
        if "1.1.0" not in str(node):
            raise Fail("upctl node 1 does not show app 1.1.0: %s" % node)

        # SIGHUP: the configuration is read again, the daemon carries on.
        tb.daemon.send_signal(signal.SIGHUP)

        def reloaded():
            with open(tb.daemon_log) as f:
                return "reload" in f.read().lower()
        # The daemon's own log line, not a fixed pause (a loaded host
        # may take longer than a second to get to the signal).
        tb.wait_for(reloaded, 20, "the daemon to log the SIGHUP reload")
        tb.check_daemon()
        tb.upctl("status")

        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
