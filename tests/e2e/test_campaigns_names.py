#!/usr/bin/env python3
"""Names a target uses that match nothing (issue 7).

Two upnode processes (sensor-v1, app 1.0.0) are known to the gateway;
node 1 carries the tag "north".  One manifest brings app 1.1.0 for
sensor-v1 and sensor-v2 with deployments whose names nothing attests: a
transport this gateway does not run, an `order' naming a component no
package brings, a tag no node carries, a hardware model no package is
for.  Each is refused, and the refusal that reaches the cloud names the
item.  A deployment for sensor-v2 (a model a package is for, but no node
is yet) is planned, and `upctl campaign' shows the warning.  No node is
offered anything.

upmanifest itself refuses the order and the hardware model (it checks
what a publisher can), so those two deployments are added to the signed
manifest afterwards and it is signed again with openssl, as another
publishing tool would: the gateway must not rely on the publisher.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

# Deployments upmanifest refuses too: added to the manifest by hand.
BY_HAND = ("typo-order", "typo-hw")

REFUSED = {
    "typo-transport": ({}, {"target": {"transports": ["lan9"]}},
                       "'lan9': this gateway has no such transport"),
    "typo-order": ({}, {"order": ["app", "modme"]},
                   "policy.order[1]: 'modme': no package of the "
                   "deployment is that component"),
    "typo-tag": ({"tags": ["nroth"]}, {},
                 "target tag 'nroth': no node carries it"),
    "typo-hw": ({"hw": ["sensr-v1"]}, {},
                "target hw 'sensr-v1': no package of the deployment is "
                "for it"),
}


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "names")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.1.0.bin", 32 * 1024 + 5, 17)
        tb.publish([], [])
        tb.write_conf()
        for nid in (1, 2):
            tb.start_node(nid)
        tb.start_daemon()
        tb.tag(1, "north")
        tb.wait_for(lambda: len(tb.upctl("nodes")) == 2, 30,
                    "both nodes to announce")

        deps, later = [], []
        for cid, (target, policy, _) in sorted(REFUSED.items()):
            (later if cid in BY_HAND else deps).append(
                {"id": cid, "packages": ["app-1.1.0"], "target": target,
                 "policy": policy})
        deps.append({"id": "future-hw", "packages": ["app-1.1.0"],
                     "target": {},
                     "policy": {"target": {"hw": ["sensor-v2"]}}})
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1", "sensor-v2"], "kind": "full",
              "url": url}], deps)
        tb.add_deployments_by_hand(later)

        for cid, (_, _, want) in sorted(REFUSED.items()):
            ev = tb.wait_event(cid, "refused", 30, "%s to be refused" % cid)
            reason = ev[0].get("reason", "")
            tb.log("%s refused: %s" % (cid, reason))
            if want not in reason:
                raise Fail("%s: refusal %r does not say %r"
                           % (cid, reason, want))

        view = tb.upctl("campaign", "future-hw")
        tb.log("future-hw: state %s, warnings %s"
               % (view.get("state"), view.get("warnings")))
        if "target hw 'sensor-v2': no node of that model yet" not in \
                view.get("warnings", []):
            raise Fail("no warning in the view: %s" % view)
        table = tb.upctl("campaign", "future-hw", json_out=False).stdout
        if "WARNING" not in table or "sensor-v2" not in table:
            raise Fail("upctl campaign table shows no warning:\n%s" % table)

        time.sleep(2)
        for nid in (1, 2):
            if tb.running(nid).get("app") != "1.0.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))
        if tb.results():
            raise Fail("results reached the cloud: %s" % tb.results())
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
