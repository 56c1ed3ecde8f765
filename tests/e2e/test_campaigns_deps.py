#!/usr/bin/env python3
"""A two-component node updated in dependency order (issue 4), and a
policy that does not parse refused with a clear error upstream.

Two upnode processes run modem 1.4.0 and app 2.0.0.  The cloud publishes
modem 1.5.0 and app 3.0.0 with the constraint "app 3.x requires modem
>= 1.5".  Checked: on each node the modem is offered, activated and
confirmed before the app is offered (node log order), both run the new
versions, and the cloud's reports show the modem's result before the
app's.  A second deployment with a malformed window is refused: the
cloud receives a "refused" record naming policy.windows[0] (and the
deployment once), no campaign is created for it, and `upctl campaign`
shows the refusal and its reason.  (upmanifest refuses that policy too,
so it is added to the signed manifest by hand: the gateway must not rely
on the publisher.)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

CID = "combo"
HW = "combo-v1"


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "deps")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url_m = tb.make_package("modem-1.5.0.bin", 48 * 1024 + 5, 41)
        url_a = tb.make_package("app-3.0.0.bin", 80 * 1024 + 9, 42)
        tb.write_conf()
        for nid in (1, 2):
            tb.start_node(nid, hw=HW, comps=(("modem", "1.4.0"),
                                             ("app", "2.0.0")))
        tb.publish(
            [{"id": "modem-1.5.0", "component": "modem",
              "version": "1.5.0", "hw": [HW], "kind": "full",
              "url": url_m},
             {"id": "app-3.0.0", "component": "app", "version": "3.0.0",
              "hw": [HW], "kind": "full", "url": url_a}],
            [{"id": CID, "packages": ["app-3.0.0", "modem-1.5.0"],
              "target": {"hw": [HW]},
              "policy": {"requires": [
                  {"component": "app", "version": "3.x",
                   "requires": "modem", "range": ">=1.5"}]}}])
        tb.add_deployments_by_hand(
            [{"id": "bad", "packages": ["app-3.0.0"],
              "target": {"hw": [HW]},
              "policy": {"windows": ["25:00-03:00"]}}])
        tb.start_daemon()

        tb.wait_event(CID, "done", 60, "the two-component campaign")
        for nid in (1, 2):
            run = tb.running(nid)
            if run.get("modem") != "1.5.0" or run.get("app") != "3.0.0":
                raise Fail("node %d runs %s" % (nid, run))
            with open(tb.nodes[nid]["log"]) as f:
                text = f.read()
            im = text.find("switching to modem 1.5.0")
            ia = text.find("switching to app 3.0.0")
            if im < 0 or ia < 0 or ia < im:
                raise Fail("node %d: modem at %d, app at %d:\n%s"
                           % (nid, im, ia, text[-1500:]))
            # The app was offered only after the modem confirmed.
            io = text.find("runs modem=1.5.0")
            if io < 0 or io > ia:
                raise Fail("node %d: app switched before the modem "
                           "confirmed:\n%s" % (nid, text[-1500:]))

        # Each item's final record, not the first records that arrive:
        # an attempt retried (a provisional record) may come first, and
        # the cloud gets the records in batches (issue 7: this read
        # "4 records" as "4 final results" and failed under ASan).
        items = [(tb.node_hex(n), c) for n in (1, 2)
                 for c in ("modem", "app")]

        def finals():
            per = tb.item_records(CID)
            got = {k: [r for r in per.get(k, []) if r.get("final")]
                   for k in items}
            return got if all(got.values()) else None
        tb.wait_for(finals, 30, "a final record for each of the 4 items")
        fin = tb.check_exactly_once(CID, items)
        order = [r for r in tb.reports() if r.get("type") == "result"]
        for nid in (1, 2):
            m = fin[(tb.node_hex(nid), "modem")]
            a = fin[(tb.node_hex(nid), "app")]
            # Upload order: the modem's result went before the app's.
            if m["state"] != "updated" or a["state"] != "updated" or \
               order.index(m) > order.index(a) or \
               m["from"] != "1.4.0" or a["from"] != "2.0.0":
                raise Fail("node %d final records modem %s, app %s"
                           % (nid, m, a))

        ref = tb.wait_event("bad", "refused", 10)
        reason = ref[0].get("reason", "")
        tb.log("refused upstream: %s" % reason)
        if "policy.windows[0]" not in reason or "'bad'" not in reason:
            raise Fail("refusal reason %r" % reason)
        if reason.count("deployment 'bad':") != 1:
            raise Fail("refusal reason %r names the deployment twice"
                       % reason)
        # Nothing is created; `upctl campaign ID' shows the refusal
        # (issue 7: it used to say only "unknown campaign").
        if any(c.get("id") == "bad" for c in tb.upctl("campaigns")):
            raise Fail("a campaign exists for the refused deployment")
        r = tb.upctl("campaign", "bad")
        if r.get("state") != "refused" or r.get("reason") != reason or \
           "items" in r:
            raise Fail("upctl campaign bad: %s" % r)
        table = tb.upctl("campaign", "bad", json_out=False).stdout
        if "refused" not in table or reason not in table:
            raise Fail("upctl campaign bad says:\n%s" % table)
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
