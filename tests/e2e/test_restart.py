#!/usr/bin/env python3
"""kill -9 of the daemon mid-transfer loses nothing.

The gateway is killed (SIGKILL) while it multicasts; started again on the
same state directory it resumes the campaign (same session, the nodes keep
their bitmaps), every node ends on the new version, the package crossed
the uplink once, and the cloud holds exactly one result per node.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 4
SIZE = 3 * 1024 * 1024


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "restart")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-1.2.0.bin", SIZE, seed=3)
        tb.publish(
            [{"id": "app-1.2.0", "component": "app", "version": "1.2.0",
              "hw": [], "kind": "full", "url": url}],
            [{"id": "all", "packages": ["app-1.2.0"], "target": {}}])
        tb.write_conf()
        # A slow LAN (8 Mbit/s) so the transfer takes a few seconds.
        with open(tb.conf) as f:
            conf = f.read().replace("bitrate_mbit = 100", "bitrate_mbit = 8")
        with open(tb.conf, "w") as f:
            f.write(conf)
        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        tb.start_daemon()

        def some_progress():
            try:
                rows = tb.upctl("watch", "--once")
            except Exception:
                return False
            if isinstance(rows, dict):
                rows = rows.get("progress", [])
            return any(r.get("held", 0) > 100 for r in rows)
        tb.wait_for(some_progress, 60, "the transfer to be under way")
        tb.log("killing upbridged with SIGKILL mid-transfer")
        tb.stop_daemon(signal.SIGKILL)
        time.sleep(1)
        tb.start_daemon()
        tb.wait_for(lambda: all(tb.running(n).get("app") == "1.2.0"
                                for n in range(1, NODES + 1)), 120,
                    "every node to run 1.2.0")
        tb.wait_for(lambda: len({r["node"] for r in tb.results()}) >= NODES,
                    60, "one result per node at the cloud")
        time.sleep(2)
        res = tb.results()
        nodes = [r["node"] for r in res]
        if len(nodes) != NODES or len(set(nodes)) != NODES:
            raise Fail("expected one result per node, got %s" % res)
        got = tb.cloud_bytes(url)
        if got > SIZE + 256 * 1024:
            raise Fail("the cloud served %d bytes for a %d-byte package"
                       % (got, SIZE))
        tb.log("package bytes served %d for %d (resumed download)" %
               (got, SIZE))
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
