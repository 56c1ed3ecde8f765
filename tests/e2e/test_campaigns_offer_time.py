#!/usr/bin/env python3
"""Versions only go up, read at offer time; one campaign per node and
component at a time (issue 7, campaigns 1).

1. Rollouts A (app 1.1.0) and B (app 1.2.0) both plan node 1, on 1.0.0.
   A's package cannot be fetched yet (the cloud lacks the file), so A
   waits for it while B installs 1.2.0.  Then A's package arrives: the
   node runs 1.2.0 by now, so A does not offer 1.1.0 (its item is
   skipped, with the reason).  Before the fix A offered what it had
   planned and node 1 went back to 1.1.0.
2. On an 8 Mbit/s LAN, rollout C (app 1.3.0, 4 MiB) is sending to node
   1 when rollout D (app 1.4.0) arrives: D does not offer while C holds
   the node (the daemon says D waits for C), and offers once C is done.
   The node never has to decline an offer as busy, and ends on 1.4.0.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 64 * 1024 + 3


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "offer-time") as tb:
        tb.boot(nodes=(1,), tags={1: ["t"]}, lan_mbit=8)
        t = {"tags": ["t"]}
        pol = {"retry": {"count": 0}}
        p11 = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 1))
        p12 = tb.full("1.2.0", tb.make_package("app-1.2.0.bin", SIZE, 2))
        path11 = os.path.join(tb.www, p11["url"])

        # 1. A waits for its package while B goes ahead.
        tb.publish([p11, p12],
                   [{"id": "dep-a", "packages": ["app-1.1.0"],
                     "target": t, "policy": pol},
                    {"id": "dep-b", "packages": ["app-1.2.0"],
                     "target": t, "policy": pol}])
        os.rename(path11, path11 + ".away")
        tb.wait_event("dep-b", "done", 60, "rollout B")
        if tb.running(1).get("app") != "1.2.0":
            raise Fail("node 1 runs %s after B" % tb.running(1))
        os.rename(path11 + ".away", path11)
        tb.log("A's package is at the cloud now")
        tb.wait_event("dep-a", "done", 90, "rollout A to finish")
        time.sleep(2)
        if tb.running(1).get("app") != "1.2.0":
            raise Fail("node 1 went back to %s" % tb.running(1))
        a = tb.check_exactly_once("dep-a", [(tb.node_hex(1), "app")])
        rec = a[(tb.node_hex(1), "app")]
        if rec.get("item_state") != "skipped" or \
           "runs app 1.2.0 by now, not older than 1.1.0" not in \
           rec.get("reason", ""):
            raise Fail("rollout A's record %s" % rec)
        if "1.1.0: busy" in tb.node_log(1) or \
           "-> receiving" in tb.node_log(1).split("app=1.2.0")[-1]:
            raise Fail("node 1 was offered 1.1.0:\n%s" % tb.node_log(1))

        # 2. D waits while C holds the node.
        p13 = tb.full("1.3.0", tb.make_package("app-1.3.0.bin",
                                               4 * 1024 * 1024, 3))
        p14 = tb.full("1.4.0", tb.make_package("app-1.4.0.bin", SIZE, 4))
        deps = [{"id": "dep-c", "packages": ["app-1.3.0"], "target": t,
                 "policy": pol}]
        tb.publish([p13, p14], deps)
        tb.wait_for(lambda: "-> receiving" in
                    tb.node_log(1).split("app=1.2.0")[-1], 30,
                    "rollout C to send to node 1")
        tb.publish([p13, p14], deps + [{"id": "dep-d",
                                        "packages": ["app-1.4.0"],
                                        "target": t, "policy": pol}])
        tb.wait_event("dep-d", "done", 90, "rollout D")
        if tb.running(1).get("app") != "1.4.0":
            raise Fail("node 1 runs %s" % tb.running(1))
        with open(tb.daemon_log) as f:
            log = f.read()
        if "its app is in campaign dep-c" not in log:
            raise Fail("D did not wait for C")
        if ": busy" in tb.node_log(1):
            raise Fail("node 1 declined an offer as busy:\n%s"
                       % tb.node_log(1))
        for cid in ("dep-b", "dep-c", "dep-d"):
            r = tb.check_exactly_once(cid, [(tb.node_hex(1), "app")])
            if r[(tb.node_hex(1), "app")].get("item_state") != "succeeded":
                raise Fail("%s: %s" % (cid, r))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
