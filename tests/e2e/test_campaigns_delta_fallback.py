#!/usr/bin/env python3
"""A delta that fails on the node falls back to the full image (issue 7,
bad input).

Nodes 1 and 2 say they run app 1.0.0, but their slots do not hold the
1.0.0 image the cloud made its delta from (a wrong base).  The cloud
publishes the full 1.1.0 image and the xdelta3 delta 1.0.0 -> 1.1.0;
the rollout picks the delta, which is much smaller.  Each node rebuilds
an image that does not match image_sha256 and fails (integrity).  The
gateway does not retry the delta: it falls back to the full image at
once, says why in its log and in the record of that attempt (a
provisional one), and each node ends on the real 1.1.0 image, with one
final record whose path is "full".  Before the fix the delta was
retried as a transient error until the retries ran out.

Node 3 (another model) gets the same from a deployment without a policy
(the issue-2 path): its delta campaign records the failure with the
fallback as the reason, and the node joins the full image's campaign.
"""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402
from test_delta import firmware, new_version  # noqa: E402
from test_campaigns_delta import xdelta  # noqa: E402

SIZE = 192 * 1024 + 33


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "fallback") as tb:
        tb.boot(nodes=(1, 2, (3, {"hw": "gadget"})),
                tags={1: ["f"], 2: ["f"]})
        v10 = firmware(SIZE, 1)
        v11 = new_version(v10, 2)
        u11 = tb.write_package("app-1.1.0.bin", v11)
        work = os.path.join(tb.tmp, "work")
        os.makedirs(work)
        ud, dsize, p11, p10 = xdelta(tb, work, v10, v11,
                                     "app-1.0.0-1.1.0.vcdiff")
        tb.log("delta %d bytes, full %d" % (dsize, len(v11)))
        delta = {"id": "app-1.0.0-1.1.0", "component": "app",
                 "version": "1.1.0", "hw": ["sensor-v1"], "kind": "delta",
                 "delta_format": "vcdiff", "base_version": "1.0.0",
                 "url": ud, "image_file": os.path.relpath(p11, tb.tmp),
                 "base_file": os.path.relpath(p10, tb.tmp)}
        full = tb.full("1.1.0", u11)
        # The gadget's own images (a manifest lists each content once).
        g10 = firmware(SIZE, 5)
        g11 = new_version(g10, 6)
        gud, _, gp11, gp10 = xdelta(tb, work, g10, g11,
                                    "g-1.0.0-1.1.0.vcdiff")
        gfull = tb.full("1.1.0", tb.write_package("g-1.1.0.bin", g11),
                        hw=("gadget",), pid="g-1.1.0")
        gdelta = dict(delta, id="g-1.0.0-1.1.0", hw=["gadget"], url=gud,
                      image_file=os.path.relpath(gp11, tb.tmp),
                      base_file=os.path.relpath(gp10, tb.tmp))
        tb.publish([full, delta, gfull, gdelta],
                   [{"id": "fb", "packages": ["app-1.1.0",
                                              "app-1.0.0-1.1.0"],
                     "target": {"tags": ["f"]},
                     "policy": {"retry": {"count": 2, "interval": "2s"}}},
                    {"id": "plain", "packages": ["g-1.1.0",
                                                 "g-1.0.0-1.1.0"],
                     "target": {"hw": ["gadget"]}}])
        tb.wait_event("fb", "done", 90, "the rollout")

        sha = hashlib.sha256(v11).hexdigest()
        items = [(tb.node_hex(n), "app") for n in (1, 2)]
        fin = tb.check_exactly_once("fb", items)
        for nid, k in zip((1, 2), items):
            if tb.running(nid).get("app") != "1.1.0" or hashlib.sha256(
                    tb.active_image(nid, len(v11))).hexdigest() != sha:
                raise Fail("node %d does not boot the 1.1.0 image" % nid)
            f = fin[k]
            if f.get("state") != "updated" or f.get("path") != "full" or \
               f.get("package") != "app-1.1.0" or \
               f.get("item_state") != "succeeded":
                raise Fail("node %d final record %s" % (nid, f))
            first = tb.item_records("fb")[k][0]
            why = ("delta app-1.0.0-1.1.0 failed on the node (integrity): "
                   "falls back to the full image app-1.1.0")
            if first.get("final") is not False or \
               first.get("package") != "app-1.0.0-1.1.0" or \
               first.get("result_str") != "integrity" or \
               first.get("reason") != why:
                raise Fail("node %d delta record %s" % (nid, first))
            if len(tb.item_records("fb")[k]) != 2:
                raise Fail("node %d: the delta was tried again: %s"
                           % (nid, tb.item_records("fb")[k]))
        with open(tb.daemon_log) as f:
            if "falls back to the full image app-1.1.0" not in f.read():
                raise Fail("the daemon did not log the fallback")

        # The issue-2 path: node 3.
        tb.wait_for(lambda: tb.running(3).get("app") == "1.1.0", 60,
                    "node 3 to run 1.1.0")
        if hashlib.sha256(tb.active_image(3, len(g11))).hexdigest() != \
           hashlib.sha256(g11).hexdigest():
            raise Fail("node 3 does not boot the 1.1.0 image")
        tb.wait_for(lambda: len([r for r in tb.results()
                                 if r["node"] == tb.node_hex(3)]) >= 2,
                    20, "node 3's two records")
        n3 = [r for r in tb.results() if r["node"] == tb.node_hex(3)]
        why = ("delta g-1.0.0-1.1.0 failed on the node (integrity): falls "
               "back to the full image g-1.1.0")
        if len(n3) != 2 or n3[0].get("package") != "g-1.0.0-1.1.0" or \
           n3[0].get("reason") != why or n3[1].get("package") != \
           "g-1.1.0" or n3[1].get("state") != "updated":
            raise Fail("node 3 records %s" % n3)
        if tb.cloud_bytes(u11) != len(v11):
            raise Fail("the full image was served %d bytes, want %d once"
                       % (tb.cloud_bytes(u11), len(v11)))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
