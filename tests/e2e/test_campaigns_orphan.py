#!/usr/bin/env python3
"""No node sits in an orphan session; a technician can release a node
(issue 7, campaigns 2 and 3).

1. Node 1 loses power (upnode --crash-at block:40) while it receives
   rollout X.  The technician force-cancels X while the node is down.
   The node boots, resumes its half-received image of X's session and
   announces it: the gateway no longer runs that session for it, so it
   sends the node a targeted ABORT and the node goes back to idle.  A
   later rollout Y then updates it at once.  Before the fix the node
   kept the image and declined Y as busy until Y gave up.
2. Rollout DL (download-only) leaves node 2 holding a verified image.
   `upctl nodes' and `upctl node 2' say DL holds it; `upctl node 2
   reset' releases it: the node drops the image (ABORT), and no campaign
   holds it any more.
Each item of X, Y and DL has exactly one final record at the cloud.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 128 * 1024 + 3


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "orphan") as tb:
        tb.boot(nodes=((1, {"extra": ["--crash-at", "block:40"]}), 2),
                tags={1: ["x"], 2: ["dl"]})
        p11 = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 1))
        p12 = tb.full("1.2.0", tb.make_package("app-1.2.0.bin", SIZE, 2))
        once = {"retry": {"count": 0}}

        # 1. Power loss mid-transfer, cancel, boot: released.
        tb.publish([p11], [{"id": "dep-x", "packages": ["app-1.1.0"],
                            "target": {"tags": ["x"]}, "policy": once}])
        tb.wait_for(lambda: tb.nodes[1]["proc"].poll() is not None, 30,
                    "node 1 to lose power mid-transfer")
        tb.upctl("campaign", "dep-x", "force-cancel", json_out=False)
        tb.wait_event("dep-x", "cancelled", 10)
        tb.restart_node(1)
        tb.wait_for(lambda: "aborted by the gateway" in tb.node_log(1), 15,
                    "the gateway to release node 1's orphan session")
        tb.log("node 1 released from the cancelled session")

        tb.publish([p11, p12],
                   [{"id": "dep-y", "packages": ["app-1.2.0"],
                     "target": {"tags": ["x"]}, "policy": once}])
        tb.wait_event("dep-y", "done", 60, "rollout Y")
        if tb.running(1).get("app") != "1.2.0":
            raise Fail("node 1 runs %s" % tb.running(1))
        if ": busy" in tb.node_log(1):
            raise Fail("node 1 declined an offer as busy:\n%s"
                       % tb.node_log(1))
        x = tb.check_exactly_once("dep-x", [(tb.node_hex(1), "app")])
        if x[(tb.node_hex(1), "app")].get("item_state") != "cancelled":
            raise Fail("dep-x record %s" % x)
        y = tb.check_exactly_once("dep-y", [(tb.node_hex(1), "app")])
        if y[(tb.node_hex(1), "app")].get("state") != "updated":
            raise Fail("dep-y record %s" % y)

        # 2. A held node, shown and reset.
        tb.publish([p11, p12],
                   [{"id": "dep-dl", "packages": ["app-1.1.0"],
                     "target": {"tags": ["dl"]},
                     "policy": {"mode": "download-only"}}])
        tb.wait_event("dep-dl", "done", 60, "the download-only rollout")
        node2 = tb.upctl("node", "2")
        if node2.get("held_by") != "dep-dl" or \
           node2["campaigns"][0].get("state") != "verified":
            raise Fail("upctl node 2: %s" % node2)
        table = tb.upctl("nodes", json_out=False).stdout
        line = [l for l in table.splitlines()
                if l.startswith(tb.node_hex(2))]
        if not line or "dep-dl (held)" not in line[0]:
            raise Fail("upctl nodes does not show the hold:\n%s" % table)
        out = tb.upctl("node", "2", "reset", json_out=False).stdout
        if "1 campaign membership released" not in out:
            raise Fail("upctl node 2 reset: %r" % out)
        tb.wait_for(lambda: "verified -> idle" in tb.node_log(2), 10,
                    "node 2 to drop its held image")
        node2 = tb.upctl("node", "2")
        if node2.get("held_by") is not None or node2.get("campaigns"):
            raise Fail("node 2 still held: %s" % node2)
        r = tb.upctl("node", "0x7", "reset", check=False)
        if r.returncode != 1 or "unknown node 0x0000000000000007" not in \
           r.stderr:
            raise Fail("reset of an unknown node: %s %s" % (r.returncode,
                                                           r.stderr))
        time.sleep(2)
        dl = tb.check_exactly_once("dep-dl", [(tb.node_hex(2), "app")])
        if dl[(tb.node_hex(2), "app")].get("item_state") != "downloaded":
            raise Fail("dep-dl record %s" % dl)
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
