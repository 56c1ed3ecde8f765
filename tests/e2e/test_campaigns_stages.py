#!/usr/bin/env python3
"""A staged rollout that advances (issue 4).

Six upnode processes run app 1.0.0.  The technician tags nodes 1-5
"site-a" with upctl (before the manifest arrives); node 6 has no tag.
The cloud publishes app 1.1.0 with a deployment that targets the tag and
a policy of two stages: a canary (node 1, must succeed, 2 s soak), then
the rest.  Checked against what the cloud received: node 1's result
comes first, the canary stage passes before the next starts, nodes 2-5
then update, node 6 is never offered, the campaign is done; `upctl
campaign staged --json` shows per-stage counts and success rates, and
`export --csv` one line per item.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

CID = "staged"


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "stages")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", 96 * 1024 + 7, 11)
        tb.publish([], [])
        tb.write_conf()
        for nid in range(1, 7):
            tb.start_node(nid)
        tb.start_daemon()
        for nid in range(1, 6):
            tb.tag(nid, "site-a")
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": CID, "packages": ["app-1.1.0"],
              "target": {"hw": ["sensor-v1"], "tags": ["site-a"]},
              "policy": {"stages": [
                  {"name": "canary", "nodes": ["0x1"], "success": 100,
                   "failure": 0, "soak": "2s"},
                  {"name": "all", "rest": True, "success": 100,
                   "failure": 50}]}}])

        tb.wait_event(CID, "done", 60, "the staged campaign to be done")
        for nid in range(1, 6):
            if tb.running(nid).get("app") != "1.1.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))
        if tb.running(6).get("app") != "1.0.0":
            raise Fail("untagged node 6 runs %s" % tb.running(6))

        res = tb.campaign_results(CID)
        per = {}
        for r in res:
            per.setdefault(r["node"], []).append(r)
        want = {tb.node_hex(n) for n in range(1, 6)}
        if set(per) != want:
            raise Fail("results for %s, want %s" % (sorted(per),
                                                    sorted(want)))
        for node, rs in per.items():
            r = rs[-1]
            if r.get("state") != "updated" or r.get("result") != 1 or \
               r.get("from") != "1.0.0" or r.get("to") != "1.1.0" or \
               r.get("item_state") != "succeeded":
                raise Fail("node %s: %s" % (node, r))
        canary = per[tb.node_hex(1)][0]
        if canary.get("stage") != "canary":
            raise Fail("node 1 is not in the canary stage: %s" % canary)
        for n in range(2, 6):
            r = per[tb.node_hex(n)][0]
            if r.get("stage") != "all" or r["seq"] < canary["seq"]:
                raise Fail("node %d reported before the canary or in the "
                           "wrong stage: %s" % (n, r))
        ev = [(e["event"], e.get("stage")) for e in tb.campaign_events(CID)]
        tb.log("events: %s" % ev)
        names = [e for e, _ in ev]
        if "stage-passed" not in names or "done" not in names:
            raise Fail("events %s" % ev)
        passed = names.index("stage-passed")
        later = [i for i, (e, s) in enumerate(ev)
                 if e == "stage-started" and s not in (None, 0, "canary")]
        if not later or later[0] < passed:
            raise Fail("the second stage started before the canary "
                       "passed: %s" % ev)

        view = tb.upctl("campaign", CID)
        st = view.get("stages", [])
        if view.get("state") != "done" or len(st) != 2 or \
           st[0].get("succeeded") != 1 or st[1].get("succeeded") != 4 or \
           st[0].get("success_rate") != 100 or \
           st[1].get("success_rate") != 100:
            raise Fail("upctl campaign view: %s" % view)
        csv = tb.upctl("campaign", CID, "export", "--csv",
                       json_out=False).stdout
        lines = [l for l in csv.splitlines() if l]
        if len(lines) != 6 or not lines[0].startswith("campaign,"):
            raise Fail("csv export:\n%s" % csv)
        table = tb.upctl("campaign", CID, json_out=False).stdout
        if "canary" not in table or "succeeded" not in table:
            raise Fail("upctl campaign table:\n%s" % table)
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
