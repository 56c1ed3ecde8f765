#!/usr/bin/env python3
"""A node that declines as busy is reported as busy (issue 7, campaigns
4 and 5).

Node 1 runs app 1.0.0 and modem 1.0.0.  Two rollouts arrive in the same
manifest, one for each component (retries 2 s apart), on an 8 Mbit/s
LAN, so each transfer takes longer than the offer rounds.  The node has
one staging slot: it takes one offer and answers the other with result
19, busy, round after round.  The gateway logs that decline and reports it with its real
reason, as a provisional record ("final": false), retries it, and both
components end updated, each with exactly one final record.  Before the
fix the busy node was written off as "no answer to the offer" and
reported conn_lost.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 4 * 1024 * 1024 + 9	# 4 s at 8 Mbit/s: longer than the offer rounds


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "busy") as tb:
        tb.boot(nodes=((1, {"comps": (("app", "1.0.0"),
                                      ("modem", "1.0.0"))}),),
                tags={1: ["two"]}, lan_mbit=8)
        pa = tb.full("1.1.0", tb.make_package("app-1.1.0.bin", SIZE, 1))
        pm = tb.full("1.1.0", tb.make_package("modem-1.1.0.bin", SIZE, 2),
                     component="modem")
        pol = {"retry": {"count": 4, "interval": "2s", "backoff": 1}}
        tb.publish([pa, pm],
                   [{"id": "r-app", "packages": ["app-1.1.0"],
                     "target": {"tags": ["two"]}, "policy": pol},
                    {"id": "r-modem", "packages": ["modem-1.1.0"],
                     "target": {"tags": ["two"]}, "policy": pol}])
        for cid in ("r-app", "r-modem"):
            tb.wait_event(cid, "done", 90, "rollout %s" % cid)
        run = tb.running(1)
        if run.get("app") != "1.1.0" or run.get("modem") != "1.1.0":
            raise Fail("node 1 runs %s" % run)
        if "busy" not in tb.node_log(1):
            raise Fail("the node never declined as busy; the test "
                       "proves nothing:\n%s" % tb.node_log(1))
        busy = [r for r in tb.results() if r.get("result_str") == "busy"]
        lost = [r for r in tb.results() if r.get("result_str") ==
                "conn_lost"]
        if not busy or lost:
            raise Fail("busy records %s, conn_lost records %s"
                       % (busy, lost))
        for r in busy:
            if r.get("final") is not False or r.get("state") != \
               "declined" or "busy" not in r.get("reason", ""):
                raise Fail("busy record %s" % r)
        with open(tb.daemon_log) as f:
            if "declined: busy" not in f.read():
                raise Fail("the daemon did not log the busy decline")
        tb.check_exactly_once("r-app", [(tb.node_hex(1), "app")])
        tb.check_exactly_once("r-modem", [(tb.node_hex(1), "modem")])
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)


if __name__ == "__main__":
    main_wrapper(scenario)
