#!/usr/bin/env python3
"""A finished campaign never comes back (issue 7, campaigns 1 and 2).

The issue's steps, on real upnodes with nginx as the cloud:
1. Rollout A brings app 1.0.0 -> 1.1.0 to nodes 1 and 2 and finishes.
2. A new manifest deploys B (app -> 1.2.0, waiting for `approve') and
   drops app-1.1.0 and A.  Node 3 appears on 1.0.0 while B waits: it
   joins B; A is finished and never takes it.  B is approved and brings
   every node to 1.2.0.
3. A manifest lists app-1.1.0 again.  Nothing happens: A does not
   reopen, no node goes back to 1.1.0, no node receives anything, and
   A's view and records are what they were when it finished.
4. A newer rollout C (1.3.0) then updates every node at once: no node
   sits in an orphan session declining offers as busy.

Before the fix A reopened for node 3 (it waited in waiting-package),
reused its old session id when app-1.1.0 came back, installed 1.1.0
over 1.2.0, and left nodes 1 and 2 downloaded in A's session.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 64 * 1024 + 5
FLEET = {"tags": ["fleet"]}


def campaign_state(tb, cid):
    r = tb.upctl("campaign", cid, check=False)
    return r.get("state") if isinstance(r, dict) else None


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "reopen") as tb:
        tb.boot(nodes=(1, 2), tags={1: ["fleet"], 2: ["fleet"]})
        u11 = tb.make_package("app-1.1.0.bin", SIZE, 11)
        u12 = tb.make_package("app-1.2.0.bin", SIZE, 12)
        u13 = tb.make_package("app-1.3.0.bin", SIZE, 13)
        p11, p12 = tb.full("1.1.0", u11), tb.full("1.2.0", u12)
        p13 = tb.full("1.3.0", u13)
        quick = {"retry": {"interval": "2s"}}

        # 1. A finishes.
        tb.publish_one("dep-a", p11, FLEET, quick)
        tb.wait_event("dep-a", "done", 60, "rollout A to finish")
        a_view = tb.upctl("campaign", "dep-a")
        a_records = len(tb.campaign_results("dep-a"))

        # 2. B waits for approval; node 3 appears meanwhile.
        tb.publish_one("dep-b", p12, FLEET, dict(quick, approve=True))
        tb.wait_for(lambda: campaign_state(tb, "dep-b") == "approval", 30,
                    "rollout B to wait for approval")
        tb.start_node(3)
        tb.tag(3, "fleet")
        tb.wait_for(lambda: any(i["node"] == tb.node_hex(3) for i in
                                tb.upctl("campaign", "dep-b")["items"]),
                    20, "node 3 to join rollout B")
        time.sleep(1)
        if any(i["node"] == tb.node_hex(3) for i in
               tb.upctl("campaign", "dep-a")["items"]):
            raise Fail("finished rollout A took node 3: %s"
                       % tb.upctl("campaign", "dep-a"))
        tb.upctl("campaign", "dep-b", "approve", json_out=False)
        tb.wait_event("dep-b", "done", 60, "rollout B to finish")
        for nid in (1, 2, 3):
            if tb.running(nid).get("app") != "1.2.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))

        # 3. app-1.1.0 is published again.
        logs = {n: len(tb.node_log(n)) for n in (1, 2, 3)}
        tb.publish([p11, p12], [{"id": "dep-b", "packages": ["app-1.2.0"],
                                 "target": FLEET, "policy": quick}])
        time.sleep(10)
        for nid in (1, 2, 3):
            if tb.running(nid).get("app") != "1.2.0":
                raise Fail("node %d went to %s" % (nid, tb.running(nid)))
            new = tb.node_log(nid)[logs[nid]:]
            if re.search(r"-> receiving", new):
                raise Fail("node %d entered a session again:\n%s"
                           % (nid, new))
        a_now = tb.upctl("campaign", "dep-a")
        if a_now["state"] != "done" or \
           len(a_now["items"]) != len(a_view["items"]) or \
           len(tb.campaign_results("dep-a")) != a_records:
            raise Fail("rollout A changed: %s" % a_now)
        ev = [e["event"] for e in tb.campaign_events("dep-a")]
        if ev.count("done") != 1 or ev[-1] != "done":
            raise Fail("rollout A events %s" % ev)
        tb.check_exactly_once("dep-a", [(tb.node_hex(n), "app")
                                        for n in (1, 2)])
        tb.check_exactly_once("dep-b", [(tb.node_hex(n), "app")
                                        for n in (1, 2, 3)])

        # 4. A newer rollout goes through at once.
        t0 = time.time()
        tb.publish_one("dep-c", p13, FLEET, {"retry": {"count": 0}})
        tb.wait_event("dep-c", "done", 60, "rollout C to finish")
        for nid in (1, 2, 3):
            if tb.running(nid).get("app") != "1.3.0":
                raise Fail("node %d runs %s after C" % (nid,
                                                        tb.running(nid)))
            if "declined app 1.3.0: busy" in tb.node_log(nid):
                raise Fail("node %d declined C as busy" % nid)
        tb.log("rollout C done in %.1f s" % (time.time() - t0))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
