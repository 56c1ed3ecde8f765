#!/usr/bin/env python3
"""A download-only hold does not block a later update (issue 7,
campaigns 3 and 4).

Rollout DL (mode download-only) leaves nodes 1-3 holding a verified
app 1.1.0 image they do not activate; `upctl nodes' shows DL holding
them.  Then rollout NEW brings app 1.2.0 (install-now, one retry): its
offer supersedes each held image (the gateway tells the node to drop
it) and every node runs 1.2.0 at once.  Before the fix the held nodes
declined NEW as busy until its retries ran out, and the cloud was told
"conn_lost" (no answer to the offer) instead of the nodes' own reason.
Checked at the cloud: DL's items stay "downloaded" with one final record
each, NEW's items succeeded with one final record each, no conn_lost
record, and no campaign holds a node afterwards.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 96 * 1024 + 1
NODES = (1, 2, 3)


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "held") as tb:
        tb.boot(nodes=NODES, tags={n: ["fleet"] for n in NODES})
        p11 = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 1))
        p12 = tb.full("1.2.0", tb.make_package("app-1.2.0.bin", SIZE, 2))
        fleet = {"tags": ["fleet"]}

        tb.publish_one("dep-dl", p11, fleet, {"mode": "download-only"})
        tb.wait_event("dep-dl", "done", 60, "the download-only rollout")
        for nid in NODES:
            if tb.running(nid).get("app") != "1.0.0":
                raise Fail("node %d activated: %s" % (nid,
                                                      tb.running(nid)))
        table = tb.upctl("nodes", json_out=False).stdout
        for nid in NODES:
            line = [l for l in table.splitlines()
                    if l.startswith(tb.node_hex(nid))]
            if not line or "dep-dl (held)" not in line[0]:
                raise Fail("upctl nodes does not show node %d held:\n%s"
                           % (nid, table))
        if tb.upctl("node", "1").get("held_by") != "dep-dl":
            raise Fail("upctl node 1: %s" % tb.upctl("node", "1"))

        t0 = time.time()
        tb.publish([p11, p12], [{"id": "dep-new", "packages": ["app-1.2.0"],
                                 "target": fleet,
                                 "policy": {"retry": {"count": 1,
                                                      "interval": "2s"}}}])
        tb.wait_event("dep-new", "done", 60, "the later rollout")
        tb.log("the later rollout took %.1f s" % (time.time() - t0))
        for nid in NODES:
            if tb.running(nid).get("app") != "1.2.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))
            if tb.upctl("node", str(nid)).get("held_by") is not None:
                raise Fail("node %d still held" % nid)
        items = [(tb.node_hex(n), "app") for n in NODES]
        new = tb.check_exactly_once("dep-new", items)
        dl = tb.check_exactly_once("dep-dl", items)
        for k in items:
            if new[k].get("item_state") != "succeeded":
                raise Fail("dep-new %s: %s" % (k, new[k]))
            if dl[k].get("item_state") != "downloaded":
                raise Fail("dep-dl %s: %s" % (k, dl[k]))
        lost = [r for r in tb.results() if r.get("result_str") ==
                "conn_lost"]
        if lost:
            raise Fail("conn_lost records: %s" % lost)
        view = tb.upctl("campaign", "dep-dl")
        if [i["state"] for i in view["items"]] != ["downloaded"] * 3:
            raise Fail("dep-dl view: %s" % view["items"])
        with open(tb.daemon_log) as f:
            if "superseded by campaign dep-new" not in f.read():
                raise Fail("the daemon did not log the supersede")
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
