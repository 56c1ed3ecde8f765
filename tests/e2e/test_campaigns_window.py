#!/usr/bin/env python3
"""A maintenance window holds a campaign until it opens (issue 4), and a
kill -9 of the daemon during the wait does not lose it.

Three upnode processes run app 1.0.0.  The deployment's policy has one
window, in the gateway's local time, that opens at the next minute
boundary at least 8 s away and lasts two minutes.  Checked: until the
window opens, no node is offered anything and `upctl campaign` says why
the items wait ("window closed; opens ..."); the daemon is killed with
SIGKILL during the wait and started again: the campaign is resumed from
SQLite, still waiting; once the window opens every node updates, exactly
one result per node reaches the cloud, and none finished before the
window opened.
"""

import datetime
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

CID = "nightly"
NODES = 3


def next_window():
    """(opening unix time, "HH:MM-HH:MM") in local time."""
    now = time.time()
    t = (int(now) // 60 + 1) * 60
    if t - now < 8:
        t += 60
    a = datetime.datetime.fromtimestamp(t)
    b = datetime.datetime.fromtimestamp(t + 120)
    return t, "%02d:%02d-%02d:%02d" % (a.hour, a.minute, b.hour, b.minute)


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "window")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", 64 * 1024 + 1, 31)
        tb.write_conf()
        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        opens, window = next_window()
        tb.log("window %s opens in %.1f s" % (window, opens - time.time()))
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": CID, "packages": ["app-1.1.0"],
              "target": {"hw": ["sensor-v1"]},
              "policy": {"windows": [window]}}])
        tb.start_daemon()

        def waiting():
            try:
                v = tb.upctl("campaign", CID)
            except Fail:
                return None
            items = v.get("items", [])
            if len(items) == NODES and all(
                    "window closed" in i.get("wait", "") for i in items):
                return v
            return None
        v = tb.wait_for(waiting, 20, "the items to wait for the window")
        tb.log("waiting: %s" % v["items"][0]["wait"])

        # kill -9 during the window wait, then start again.
        tb.stop_daemon(signal.SIGKILL)
        tb.log("gateway: killed -9 during the window wait")
        tb.start_daemon()
        v = tb.wait_for(waiting, 20, "the resumed campaign to wait")
        if time.time() < opens - 1 and tb.campaign_results(CID):
            raise Fail("results before the window opened")
        for nid in range(1, NODES + 1):
            if tb.running(nid).get("app") != "1.0.0":
                raise Fail("node %d updated before the window" % nid)

        def all_reported():
            per = {}
            for r in tb.campaign_results(CID):
                per.setdefault(r["node"], []).append(r)
            return len(per) == NODES and per
        per = tb.wait_for(all_reported, (opens - time.time()) + 45,
                          "a result per node after the window opened")
        time.sleep(1.5)
        per = all_reported()
        for node, rs in per.items():
            if len(rs) != 1 or rs[0].get("state") != "updated":
                raise Fail("node %s results %s" % (node, rs))
            ts = datetime.datetime.strptime(
                rs[0]["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if ts < opens:
                raise Fail("node %s finished at %s, before the window "
                           "opened" % (node, rs[0]["ts"]))
        for nid in range(1, NODES + 1):
            if tb.running(nid).get("app") != "1.1.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))
        tb.wait_event(CID, "done", 20)
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
