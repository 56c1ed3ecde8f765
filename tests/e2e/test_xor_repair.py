#!/usr/bin/env python3
"""XOR repair on real nodes: one frame repairs a loss at many nodes.

Six upnode processes each drop 5 % of the frames they receive (their own
random streams), so every repair round has losses spread over all of
them.  The gateway repairs with XOR frames (docs/up-protocol.md §4.15):
every node must end on the new version and the cloud must hold one
result per node.  The session's summary line must show XOR frames, and
fewer repair frames than resending the union would need: with six nodes
at 5 % about 26 % of the blocks are lost somewhere, 1 − 0.95^6, so the
union costs about 200 frames for 752 blocks, while XOR needs about the
worst node's losses, near 40.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 6
SIZE = 1024 * 1024 + 333
LOSS = "5"


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "xor")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-2.0.0.bin", SIZE, seed=21)
        # Every node is in the registry before the package is published:
        # a node whose first DISCOVER was among its 5 % would otherwise
        # join the running session late and take the whole package in
        # repair passes, which is not what this test measures.
        tb.publish([], [])
        tb.write_conf(max_rounds=10)
        for nid in range(1, NODES + 1):
            tb.start_node(nid, extra=["--drop-pct", LOSS,
                                      "--seed", str(100 + nid)])
        tb.start_daemon()
        tb.wait_for(lambda: len(tb.upctl("nodes")) == NODES, 30,
                    "every node in the registry")
        tb.publish(
            [{"id": "app-2.0.0", "component": "app", "version": "2.0.0",
              "hw": [], "kind": "full", "url": url}],
            [{"id": "all", "packages": ["app-2.0.0"], "target": {}}])
        tb.wait_for(lambda: all(tb.running(n).get("app") == "2.0.0"
                                for n in range(1, NODES + 1)), 90,
                    "every node to run 2.0.0")
        tb.wait_for(lambda: len({r["node"] for r in tb.results()}) >= NODES,
                    30, "one result per node at the cloud")
        res = tb.results()
        if len(res) != NODES or any(r["state"] != "updated" for r in res):
            raise Fail("expected %d 'updated' results, got %s"
                       % (NODES, res))
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d" % rc)
        with open(tb.daemon_log) as f:
            log = f.read()
        m = re.search(r"session \w+ closed: (\d+) block frames \((\d+) in "
                      r"repair passes, (\d+) parity, (\d+) xor\)", log)
        if m is None:
            raise Fail("no session summary in the log")
        blocks, repair, parity, xor = (int(x) for x in m.groups())
        tb.log("%d block frames: %d in repair passes, %d parity, %d xor"
               % (blocks, repair, parity, xor))
        if xor == 0:
            raise Fail("no XOR frame was sent")
        if repair > 120:
            raise Fail("%d repair frames: XOR should need about 40, the "
                       "union about 200" % repair)
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
