#!/usr/bin/env python3
"""kill -9 of the daemon while the nodes activate loses no result.

The gateway is killed after it sent ACTIVATE and before any node reported.
The nodes reboot, come up on the new version and resend their RESULT with
back-off to the gateway address they last heard, which died with the old
process.  Started again, the gateway must get every result well inside
its result timeout (it polls the nodes it waits for, docs/engine.md), with
no node written off, and the cloud must hold exactly one result per node.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 4
SIZE = 512 * 1024
RESULT_TIMEOUT_S = 10
# Long enough that every node's RESULT back-off (1, 2, 4, 8, 16 s) has
# grown past the bound below: without polling the gateway would wait.
DOWN_S = 17
BOUND_S = 7


def node_log(tb, nid):
    try:
        with open(tb.nodes[nid]["log"]) as f:
            return f.read()
    except OSError:
        return ""


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "restart-act")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.2.0.bin", SIZE, seed=5)
        tb.publish(
            [{"id": "app-1.2.0", "component": "app", "version": "1.2.0",
              "hw": [], "kind": "full", "url": url}],
            [{"id": "all", "packages": ["app-1.2.0"], "target": {}}])
        tb.write_conf(activate_delay_ms=1500,
                      result_timeout_s=RESULT_TIMEOUT_S)
        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        tb.start_daemon()
        tb.wait_for(lambda: any("-> activating" in node_log(tb, n)
                                for n in range(1, NODES + 1)), 60,
                    "a node to activate")
        tb.log("killing upbridged with SIGKILL during the activation delay")
        tb.stop_daemon(signal.SIGKILL)
        tb.wait_for(lambda: all("-> updated" in node_log(tb, n)
                                for n in range(1, NODES + 1)), 30,
                    "every node to boot the new version")
        if tb.results():
            raise Fail("a result reached the cloud from a dead gateway")
        time.sleep(DOWN_S)
        t = time.time()
        tb.start_daemon()
        tb.wait_for(lambda: len({r["node"] for r in tb.results()}) >= NODES,
                    BOUND_S, "one result per node within %d s of the "
                    "restart" % BOUND_S)
        tb.log("all %d results at the cloud %.1f s after the restart"
               % (NODES, time.time() - t))
        time.sleep(2)
        res = tb.results()
        bad = [r for r in res if r.get("state") != "updated"]
        if len(res) != NODES or bad:
            raise Fail("expected %d 'updated' results, got %s"
                       % (NODES, res))
        with open(tb.daemon_log) as f:
            if "written off" in f.read():
                raise Fail("a node was written off")
        for nid in range(1, NODES + 1):
            if tb.running(nid).get("app") != "1.2.0":
                raise Fail("node %d does not run 1.2.0" % nid)
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d" % rc)
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
