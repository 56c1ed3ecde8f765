#!/usr/bin/env python3
"""Every item's final state goes upstream exactly once (issue 7,
campaigns 5, and the small things of `upctl campaign').

Rollout R (app and modem 1.1.0, modem first) over three nodes in two
stages, the second waiting for approval:
- node 1's modem rolls back (upnode --health fail): failed; its app,
  which waits for the modem, is skipped;
- node 2's app succeeds;
- node 3 is in the second stage, which waits for approval; the
  technician cancels the rollout then: its app is cancelled.
Rollout E (nodes 4 and 5) waits for a maintenance window that does not
open before its deadline: both items expire.
A third deployment names an unknown node in a stage and is refused.

Checked at the cloud: each of the six items has exactly one final record
(skipped, cancelled and expired ones included: they used to get none)
and none after it; the refusal names the deployment once.  Checked with
upctl: `watch --once' shows R waiting for approval (it used to say "no
active campaign"), the table's RESULT column shows the result (it used
to repeat PATH), the stage table has CANC and EXP columns, and a
finished rollout has no next_wake.
"""

import datetime
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 64 * 1024 + 17


def state_of(tb, cid):
    r = tb.upctl("campaign", cid, check=False)
    return r.get("state") if isinstance(r, dict) else None


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "records") as tb:
        two = (("app", "1.0.0"), ("modem", "1.0.0"))
        tb.boot(nodes=((1, {"comps": two, "extra": ["--health", "fail"]}),
                       2, 3, 4, 5),
                tags={1: ["r"], 2: ["r"], 3: ["r"], 4: ["e"], 5: ["e"]})
        pa = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 1))
        pm = tb.full("1.1.0", tb.make_package("modem-1.1.0.bin", SIZE, 2),
                     component="modem")
        now = datetime.datetime.now(datetime.timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        later = now + datetime.timedelta(hours=12)
        window = "%02d:%02d-%02d:%02d" % (later.hour, later.minute,
                                          (later.hour + 1) % 24,
                                          later.minute)
        tb.publish([pa, pm], [
            {"id": "dep-r", "packages": ["app-1.1.0", "modem-1.1.0"],
             "target": {"tags": ["r"]},
             "policy": {"order": ["modem", "app"], "retry": {"count": 0},
                        "deadline": (now + datetime.timedelta(days=1))
                        .strftime(fmt),
                        "stages": [{"name": "first",
                                    "nodes": ["0x1", "0x2"],
                                    "success": 0, "failure": 100},
                                   {"name": "second", "rest": True,
                                    "approve": True}]}},
            {"id": "dep-e", "packages": ["app-1.1.0"],
             "target": {"tags": ["e"]},
             "policy": {"windows": [window], "utc_offset": "Z",
                        "deadline": (now + datetime.timedelta(seconds=15))
                        .strftime(fmt)}},
            {"id": "bad-plan", "packages": ["app-1.1.0"],
             "target": {"tags": ["r"]},
             "policy": {"stages": [{"name": "c", "nodes": ["0x999"]}]}}])

        ref = tb.wait_event("bad-plan", "refused", 20)[0]["reason"]
        if ref.count("deployment 'bad-plan'") != 1 or "0x999" not in \
           ref.lower().replace("0x0000000000000999", "0x999"):
            raise Fail("refusal reason %r" % ref)

        tb.wait_for(lambda: state_of(tb, "dep-r") == "approval", 60,
                    "rollout R to wait for approval")

        # The first stage passes on node 2 alone (no threshold); node 1
        # goes on: wait for its modem's roll-back and its app's skip.
        def first_stage_final():
            items = {(i["node"], i["component"]): i["state"] for i in
                     tb.upctl("campaign", "dep-r")["items"]}
            return items.get((tb.node_hex(1), "modem")) == "failed" and \
                items.get((tb.node_hex(1), "app")) == "skipped"
        tb.wait_for(first_stage_final, 60, "node 1's modem to roll back")
        watch = tb.upctl("watch", "--once", json_out=False).stdout
        if "no active campaign" in watch or not re.search(
                r"dep-r\s+\(rollout\)\s+approval", watch):
            raise Fail("watch --once while R waits:\n%s" % watch)
        table = tb.upctl("campaign", "dep-r", json_out=False).stdout
        if not re.search(r"0x0000000000000002\s+app\s+1\.0\.0 -> 1\.1\.0"
                         r"\s+full\s+first\s+succeeded\s+success\s+0",
                         table):
            raise Fail("the item table of R:\n%s" % table)
        if not re.search(r"STAGE\s+STATE\s+NODES\s+PEND\s+ACT\s+OK\s+"
                         r"FAIL\s+SKIP\s+CANC\s+EXP", table):
            raise Fail("no cancelled/expired columns:\n%s" % table)

        tb.upctl("campaign", "dep-r", "cancel", json_out=False)
        tb.wait_event("dep-r", "cancelled", 10)
        tb.wait_event("dep-e", "expired", 40, "rollout E to expire")
        table = tb.upctl("campaign", "dep-r", json_out=False).stdout
        if not re.search(r"second\s+\S+\s+1\s+0\s+0\s+0\s+0\s+0\s+1\s+0",
                         table):
            raise Fail("stage 'second' does not count its cancel:\n%s"
                       % table)
        for cid in ("dep-r", "dep-e"):
            v = tb.upctl("campaign", cid)
            if v.get("next_wake") is not None:
                raise Fail("%s is %s with next_wake %s" % (
                    cid, v.get("state"), v.get("next_wake")))

        h = tb.node_hex
        r = tb.check_exactly_once("dep-r", [(h(1), "modem"), (h(1), "app"),
                                            (h(2), "app"), (h(3), "app")])
        want = {(h(1), "modem"): "failed", (h(1), "app"): "skipped",
                (h(2), "app"): "succeeded", (h(3), "app"): "cancelled"}
        for k, st in want.items():
            if r[k].get("item_state") != st:
                raise Fail("dep-r %s: %s, want %s" % (k, r[k], st))
        if r[(h(1), "modem")].get("result_str") != "rolled_back":
            raise Fail("node 1 modem: %s" % r[(h(1), "modem")])
        e = tb.check_exactly_once("dep-e", [(h(4), "app"), (h(5), "app")])
        for k, rec in e.items():
            if rec.get("item_state") != "expired" or \
               "window closed" not in rec.get("reason", ""):
                raise Fail("dep-e %s: %s" % (k, rec))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
