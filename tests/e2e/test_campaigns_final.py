#!/usr/bin/env python3
"""Every item's final state goes upstream exactly once, also when the
node never speaks again (issue 7, campaigns 5; docs/manifest.md, "Final
and provisional records").

A node that loses power right after it was told to activate (upnode
--crash-at activate: its boot record says boot-once, it never reports)
is written off after result_timeout_s: conn_lost, a provisional record,
since it may yet report.  Before the fix that record stayed provisional
until the node spoke again, which it may never do.

Issue-2 deployment "all" over nodes 1, 2 and 3 (result_timeout_s 10,
final_after_s 6): node 1 updates; nodes 2 and 3 crash at activate.  Both
get their provisional conn_lost record, then, once final_after_s passed
with no word from them, exactly one final record (conn_lost, final).
Rollout "dep-r" (no retries) over nodes 4, 5 and 6: node 4 updates;
nodes 5 and 6 crash at activate.  The rollout is done once both are
written off: its items get their final record then (the campaign can no
longer change them), without waiting for final_after_s.

Nodes 3 and 6 then boot again: they run 1.1.0 and report it.  The
daemon records the truth (the registry: `upctl nodes' shows 1.1.0) and
sends a "late_result" record, never a second "result" record: each item
keeps exactly one final record, the last of its results.  Node 2 and 5
stay down for good: one final record each.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 96 * 1024 + 5
RESULT_TIMEOUT_S = 10     # nodes 1 and 4 report well within it, ASan too
FINAL_AFTER_S = 6


def finals(recs):
    return [r for r in recs if r.get("final") is True]


def late(tb, node):
    return [r for r in tb.reports() if r.get("type") == "late_result" and
            r.get("node") == tb.node_hex(node)]


def node_version(tb, nid):
    for n in tb.upctl("nodes"):
        if n.get("id") == tb.node_hex(nid):
            for c in n.get("components", []):
                if c.get("name") == "app":
                    return c.get("version")
    return None


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "final") as tb:
        crash = {"extra": ["--crash-at", "activate"]}
        tb.boot(nodes=(1, (2, crash), (3, crash), (4, {"hw": "r-hw"}),
                       (5, dict(crash, hw="r-hw")),
                       (6, dict(crash, hw="r-hw"))),
                tags={4: ["r"], 5: ["r"], 6: ["r"]},
                result_timeout_s=RESULT_TIMEOUT_S,
                final_after_s=FINAL_AFTER_S)
        pa = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 3))
        pr = tb.full("1.1.0", tb.make_package("app-r-1.1.0.bin", SIZE, 4),
                     hw=("r-hw",), pid="app-r-1.1.0")
        tb.publish([pa, pr], [
            {"id": "all", "packages": ["app-1.1.0"],
             "target": {"hw": ["sensor-v1"]}},
            {"id": "dep-r", "packages": ["app-r-1.1.0"],
             "target": {"tags": ["r"]},
             "policy": {"retry": {"count": 0}}}])

        down = (2, 3, 5, 6)
        tb.wait_for(lambda: all(tb.nodes[n]["proc"].poll() is not None
                                for n in down), 90,
                    "nodes 2, 3, 5 and 6 to lose power at activate")
        t_down = time.time()
        tb.log("nodes 2, 3, 5, 6 down after ACTIVATE")

        # The rollout ends when both are written off: final at once.
        tb.wait_event("dep-r", "done", RESULT_TIMEOUT_S + 30,
                      "rollout dep-r to finish")
        per = tb.item_records("dep-r")
        for n in (5, 6):
            rs = per.get((tb.node_hex(n), "app"), [])
            if not finals(rs) or finals(rs)[-1].get("result_str") != \
               "conn_lost":
                raise Fail("rollout item of node %d: no final conn_lost "
                           "record once the rollout is done: %s" % (n, rs))

        # The issue-2 items: provisional, then final after final_after_s.
        def closed():
            per = tb.item_records("1")
            return all(finals(per.get((tb.node_hex(n), "app"), []))
                       for n in (2, 3))
        tb.wait_for(closed, RESULT_TIMEOUT_S + FINAL_AFTER_S + 30,
                    "final records for nodes 2 and 3")
        per = tb.item_records("1")
        for n in (2, 3):
            rs = per.get((tb.node_hex(n), "app"), [])
            if len(rs) != 2 or rs[0].get("final") is not False or \
               rs[1].get("final") is not True or any(
                   r.get("result_str") != "conn_lost" for r in rs):
                raise Fail("node %d: want a provisional then a final "
                           "conn_lost record, got %s" % (n, rs))
        t_final = time.time()
        if t_final - t_down < RESULT_TIMEOUT_S + FINAL_AFTER_S - 2:
            raise Fail("final records %.1f s after the nodes went down: "
                       "before final_after_s" % (t_final - t_down))

        # Nodes 3 and 6 come back running 1.1.0: the truth is kept,
        # reported as late, never as a second final result.
        tb.restart_node(3)
        tb.restart_node(6)
        for n in (3, 6):
            tb.wait_for(lambda n=n: tb.running(n).get("app") == "1.1.0",
                        30, "node %d to run 1.1.0" % n)
        tb.wait_for(lambda: late(tb, 3) and late(tb, 6), 30,
                    "late_result records of nodes 3 and 6")
        tb.wait_for(lambda: node_version(tb, 3) == "1.1.0" and
                    node_version(tb, 6) == "1.1.0", 20,
                    "the registry to show 1.1.0 on nodes 3 and 6")
        time.sleep(3)
        for n in (3, 6):
            lr = late(tb, n)
            if len(lr) != 1 or lr[0].get("state") != "updated" or \
               lr[0].get("result_str") != "success" or "final" in lr[0]:
                raise Fail("node %d late records %s" % (n, lr))

        h = tb.node_hex
        r1 = tb.check_exactly_once("1", [(h(1), "app"), (h(2), "app"),
                                         (h(3), "app")])
        rr = tb.check_exactly_once("dep-r", [(h(4), "app"), (h(5), "app"),
                                             (h(6), "app")])
        for k, want in ((r1[(h(1), "app")], "success"),
                        (r1[(h(2), "app")], "conn_lost"),
                        (r1[(h(3), "app")], "conn_lost"),
                        (rr[(h(4), "app")], "success"),
                        (rr[(h(5), "app")], "conn_lost"),
                        (rr[(h(6), "app")], "conn_lost")):
            if k.get("result_str") != want:
                raise Fail("final record %s, want %s" % (k, want))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
