#!/usr/bin/env python3
"""A staged rollout that halts on injected failures (issue 4).

Four upnode processes run app 1.0.0, tagged "site-b".  Nodes 2 and 3 fail
their health check after the reboot (`upnode --health fail`: they roll
back).  The policy: canary node 1, then a batch of nodes 2 and 3 with a
failure limit of 0 %, then the rest (node 4).  Checked against the
cloud's reports: the canary succeeds; nodes 2 and 3 report failed,
rolled_back, as final failures; the campaign says upstream that it halted
and why; node 4 is never offered (it runs 1.0.0, no result); `upctl
campaign halt` shows the halt; `approve` is refused (exit 1) and
`force-cancel` finishes the campaign as cancelled.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

CID = "halt"


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "halt")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", 64 * 1024 + 3, 21)
        tb.publish([], [])
        tb.write_conf()
        for nid in range(1, 5):
            extra = ("--health", "fail") if nid in (2, 3) else ()
            tb.start_node(nid, extra=extra)
        tb.start_daemon()
        for nid in range(1, 5):
            tb.tag(nid, "site-b")
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": CID, "packages": ["app-1.1.0"],
              "target": {"tags": ["site-b"]},
              "policy": {"stages": [
                  {"name": "canary", "nodes": ["0x1"], "success": 100,
                   "failure": 0},
                  {"name": "batch", "nodes": ["0x2", "0x3"],
                   "success": 100, "failure": 0},
                  {"name": "rest", "rest": True}],
                  "retry": {"count": 0}}}])

        halted = tb.wait_event(CID, "halted", 60, "the campaign to halt")
        reason = halted[0].get("reason", "")
        tb.log("halted upstream: %s" % reason)
        if "batch" not in reason or "failed" not in reason:
            raise Fail("halt reason %r" % reason)

        def three():
            per = {r["node"]: r for r in tb.campaign_results(CID)}
            return len(per) >= 3 and per
        per = tb.wait_for(three, 30, "results of nodes 1-3")
        if per.get(tb.node_hex(1), {}).get("state") != "updated":
            raise Fail("canary: %s" % per.get(tb.node_hex(1)))
        for n in (2, 3):
            r = per.get(tb.node_hex(n))
            if r is None or r.get("state") != "failed" or \
               r.get("result_str") != "rolled_back" or \
               r.get("item_state") != "failed":
                raise Fail("node %d: %s" % (n, r))
            if tb.running(n).get("app") != "1.0.0":
                raise Fail("node %d runs %s" % (n, tb.running(n)))
        # Node 4 stays untouched while the campaign is halted.
        time.sleep(3)
        if tb.node_hex(4) in {r["node"] for r in tb.campaign_results(CID)}:
            raise Fail("node 4 was updated by a halted campaign")
        if tb.running(4).get("app") != "1.0.0":
            raise Fail("node 4 runs %s" % tb.running(4))
        with open(tb.nodes[4]["log"]) as f:
            if "switching to" in f.read():
                raise Fail("node 4 activated something")

        view = tb.upctl("campaign", CID)
        st = {s["name"]: s for s in view.get("stages", [])}
        if view.get("state") != "halted" or \
           st["batch"].get("failed") != 2 or \
           st["canary"].get("succeeded") != 1 or \
           st["rest"].get("succeeded") != 0:
            raise Fail("upctl campaign view: %s" % view)
        # A halted campaign cannot be paused twice, nor approved.
        r = tb.upctl("campaign", CID, "approve", json_out=False, check=False)
        if r.returncode != 1:
            raise Fail("approve of a halted campaign: %d %s" % (
                r.returncode, r.stdout + r.stderr))
        tb.upctl("campaign", CID, "force-cancel", json_out=False)
        tb.wait_event(CID, "cancelled", 20)
        view = tb.upctl("campaign", CID)
        if view.get("state") != "cancelled":
            raise Fail("after force-cancel: %s" % view.get("state"))
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
