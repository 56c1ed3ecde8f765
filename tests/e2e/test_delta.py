#!/usr/bin/env python3
"""A VCDIFF delta update on real components.

The cloud (nginx) publishes a full image 1.0.0; upbridged fans it out and
four upnode processes (booted on 0.9.0) run it.  Then the cloud publishes a
delta 1.0.0 -> 1.1.0 made by the real xdelta3 tool
(`xdelta3 -e -9 -S none -A -n -s old new out`) next to the full 1.1.0.
The gateway chooses the delta for nodes on 1.0.0 (smaller, base matches),
downloads only the delta, multicasts it; every node receives it into its
package area, checks its SHA-256 and signature, applies it from its running
slot into the other slot with bounded memory, checks the rebuilt image
against image_sha256, activates and confirms.  Checked: every node runs
1.1.0, the slot it boots holds exactly the new image, each node's result
for 1.1.0 says updated from 1.0.0, and the cloud served the delta's bytes
once and none of the full 1.1.0.
"""

import hashlib
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 4
SIZE = 768 * 1024 + 123


def firmware(size, seed):
    """Something like a linked image: code words, strings, padding."""
    rnd = random.Random(seed)
    words = [b"sensor", b"error: ", b"timeout", b"radio", b"%s:%d ",
             b"littlefs", b"mbedtls"]
    out = bytearray()
    while len(out) < size:
        kind = rnd.randrange(8)
        if kind < 5:
            for _ in range(rnd.randrange(64, 1024)):
                w = 0x4600 + rnd.randrange(64) * 0x101
                if rnd.randrange(4) == 0:
                    w = rnd.getrandbits(32)
                out += w.to_bytes(4, "little")
        elif kind < 7:
            for _ in range(rnd.randrange(10, 100)):
                out += rnd.choice(words)
        else:
            out += bytes(rnd.randrange(100, 2000))
    return bytes(out[:size])


def new_version(old, seed):
    """Scattered patches, an insertion that shifts the rest, a tail."""
    rnd = random.Random(seed)
    b = bytearray(old)
    for _ in range(300):
        i = rnd.randrange(len(b))
        b[i] ^= 1 + rnd.randrange(255)
    cut = len(b) // 3
    b[cut:cut] = firmware(700, seed + 1)
    b += firmware(5000, seed + 2)
    return bytes(b)


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "delta")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        old = firmware(SIZE, 1)
        new = new_version(old, 2)
        url_old = tb.write_package("app-1.0.0.bin", old)
        url_new = tb.write_package("app-1.1.0.bin", new)

        # The delta, made by the real tool with the flags.
        work = os.path.join(tb.tmp, "work")
        os.makedirs(work)
        p_old = os.path.join(work, "app-1.0.0.bin")
        p_new = os.path.join(work, "app-1.1.0.bin")
        p_delta = os.path.join(tb.www, "packages", "app-1.0.0-1.1.0.vcdiff")
        for path, data in ((p_old, old), (p_new, new)):
            with open(path, "wb") as f:
                f.write(data)
        subprocess.run(["xdelta3", "-e", "-9", "-S", "none", "-A", "-n",
                        "-f", "-s", p_old, p_new, p_delta], check=True)
        delta_size = os.path.getsize(p_delta)
        url_delta = "packages/app-1.0.0-1.1.0.vcdiff"
        tb.log("images %d -> %d bytes; xdelta3 delta %d bytes (%.1f %%)"
               % (len(old), len(new), delta_size,
                  100.0 * delta_size / len(new)))
        if delta_size >= len(new) // 4:
            raise Fail("the delta is not small (%d bytes)" % delta_size)

        # 1. The full image 1.0.0, to nodes that run 0.9.0.
        tb.publish(
            [{"id": "app-1.0.0", "component": "app", "version": "1.0.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url_old}],
            [{"id": "base", "packages": ["app-1.0.0"],
              "target": {"hw": ["sensor-v1"]}}])
        tb.write_conf()
        for nid in range(1, NODES + 1):
            tb.start_node(nid, comps=(("app", "0.9.0"),))
        tb.start_daemon()

        def all_run(v):
            return all(tb.running(n).get("app") == v
                       for n in range(1, NODES + 1))
        tb.wait_for(lambda: all_run("1.0.0"), 180,
                    "every node to run app 1.0.0")
        tb.log("all %d nodes run the full 1.0.0" % NODES)
        for n in range(1, NODES + 1):
            if tb.active_image(n, len(old)) != old:
                raise Fail("node %d does not boot the 1.0.0 image" % n)

        # 2. The delta 1.0.0 -> 1.1.0 beside the full 1.1.0.
        spec_dir = os.path.dirname(os.path.join(tb.tmp, "spec.json"))
        tb.publish(
            [{"id": "app-1.1.0", "component": "app", "version": "1.1.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url_new},
             {"id": "app-1.0.0-1.1.0", "component": "app",
              "version": "1.1.0", "hw": ["sensor-v1"], "kind": "delta",
              "delta_format": "vcdiff", "base_version": "1.0.0",
              "url": url_delta,
              "base_file": os.path.relpath(p_old, spec_dir),
              "image_file": os.path.relpath(p_new, spec_dir)}],
            [{"id": "upgrade", "packages": ["app-1.1.0",
                                            "app-1.0.0-1.1.0"],
              "target": {"hw": ["sensor-v1"]}}])
        t0 = time.time()
        tb.wait_for(lambda: all_run("1.1.0"), 180,
                    "every node to run app 1.1.0")
        tb.log("all %d nodes run 1.1.0 after %.1f s" % (NODES,
                                                      time.time() - t0))

        want = hashlib.sha256(new).hexdigest()
        for n in range(1, NODES + 1):
            img = tb.active_image(n, len(new))
            if hashlib.sha256(img).hexdigest() != want:
                raise Fail("node %d boots an image that is not 1.1.0"
                           % n)
            with open(tb.nodes[n]["log"]) as f:
                text = f.read()
            if "applying the app 1.0.0 -> 1.1.0 delta" not in text:
                raise Fail("node %d did not apply a delta:\n%s"
                           % (n, text[-2000:]))

        def reported():
            res = [r for r in tb.results() if r.get("to") == "1.1.0"]
            return len({r["node"] for r in res}) >= NODES and res
        tb.wait_for(reported, 60, "a 1.1.0 result per node at the cloud")
        time.sleep(2)
        res = [r for r in tb.results() if r.get("to") == "1.1.0"]
        per_node = {}
        for r in res:
            per_node.setdefault(r["node"], []).append(r)
        if len(per_node) != NODES:
            raise Fail("1.1.0 results for %d nodes" % len(per_node))
        for node, rs in sorted(per_node.items()):
            if len(rs) != 1:
                raise Fail("node %s has %d results: %s" % (node, len(rs),
                                                           rs))
            r = rs[0]
            if r.get("state") != "updated" or r.get("result") != 1 or \
               r.get("from") != "1.0.0" or \
               r.get("package") != "app-1.0.0-1.1.0":
                raise Fail("node %s result is %s" % (node, r))

        # The uplink carried the delta once and never the full 1.1.0.
        got_delta = tb.cloud_bytes(url_delta)
        got_full = tb.cloud_bytes(url_new)
        tb.log("cloud served %d bytes of the delta (%d), %d of the full "
               "1.1.0" % (got_delta, delta_size, got_full))
        if got_delta != delta_size:
            raise Fail("the cloud served %d bytes of the delta, expected "
                       "%d" % (got_delta, delta_size))
        if got_full != 0:
            raise Fail("the full 1.1.0 was fetched (%d bytes)" % got_full)

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
