#!/usr/bin/env python3
"""Bad input from the cloud changes nothing and is never offered.

1. A manifest altered after signing is rejected: no campaign, no offer.
2. A package whose bytes on the server do not match the signed SHA-256 is
   never cached as valid and never offered: the nodes keep running 1.0.0.
3. Once the publisher fixes the package, the same gateway updates every node.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 3
SIZE = 200 * 1024


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "tamper")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("app-2.0.0.bin", SIZE, seed=5)
        pkgs = [{"id": "app-2.0.0", "component": "app", "version": "2.0.0",
                 "hw": ["sensor-v1"], "kind": "full", "url": url}]
        deps = [{"id": "d1", "packages": ["app-2.0.0"],
                 "target": {"hw": ["sensor-v1"]}}]
        tb.publish(pkgs, deps)

        # 1. Alter the signed manifest: change the version it names.
        mpath = os.path.join(tb.www, "manifest.json")
        with open(mpath) as f:
            good = f.read()
        with open(mpath, "w") as f:
            f.write(good.replace("2.0.0", "2.0.1", 1))
        tb.write_conf()
        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        tb.start_daemon()

        def refused():
            with open(tb.daemon_log) as f:
                return "signature" in f.read()
        # Wait for the daemon to have read and refused the manifest (its
        # log), then look: a fixed pause could end before the first poll
        # on a loaded host.
        tb.wait_for(refused, 30, "the daemon to log the signature failure")
        time.sleep(2)
        camps = tb.upctl("campaigns")
        if camps:
            raise Fail("a tampered manifest created campaigns: %s" % camps)
        tb.log("tampered manifest rejected")

        # 2. Correct manifest, corrupted package bytes on the server.
        with open(mpath, "w") as f:
            f.write(good)
        ppath = os.path.join(tb.www, url)
        with open(ppath, "r+b") as f:
            f.seek(SIZE // 2)
            b = f.read(1)
            f.seek(SIZE // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        with open(tb.daemon_log) as f:
            seen = len(f.read())
        tb.upctl("refresh", json_out=False)

        def mismatch():
            with open(tb.daemon_log) as f:
                return "mismatch" in f.read()[seen:]
        # The daemon downloaded the package and refused it (its log):
        # only then does "nothing was offered" say something.
        tb.wait_for(mismatch, 60, "the daemon to log the hash mismatch")
        time.sleep(2)
        for nid in range(1, NODES + 1):
            if tb.running(nid).get("app") != "1.0.0":
                raise Fail("node %d runs %s after a corrupt package"
                           % (nid, tb.running(nid)))
        if tb.results():
            raise Fail("results reported for a corrupt package: %s"
                       % tb.results())
        tb.log("corrupt package never cached as valid nor offered")

        # 3. The publisher fixes the file: the update goes through.
        with open(ppath, "r+b") as f:
            f.seek(SIZE // 2)
            f.write(b)
        tb.wait_for(lambda: all(tb.running(n).get("app") == "2.0.0"
                                for n in range(1, NODES + 1)), 120,
                    "every node to run 2.0.0 after the fix")
        tb.wait_for(lambda: len(tb.results()) >= NODES, 30,
                    "the results at the cloud")
        tb.log("after the fix every node runs 2.0.0")
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
