#!/usr/bin/env python3
"""A mixed fleet: each base version gets its delta, an unknown version
the full image (issue 4).

Phase 1 brings nodes 1-2 to the full image 1.0.0 and nodes 3-4 to the
full image 1.1.0 (two tag-targeted deployments); node 5 stays on 0.8.0.
Phase 2 publishes the full 1.2.0 beside two VCDIFF deltas made by the
real xdelta3 (`xdelta3 -e -9 -S none -A -n -s old new out`): 1.0.0 ->
1.2.0 and 1.1.0 -> 1.2.0.  The scheduler plans one session per distinct
base plus one full session.  Checked against the cloud's reports: nodes
1-2 got the 1.0.0 delta, nodes 3-4 the 1.1.0 delta (path "delta"), node
5 the full image (path "full"); every node boots exactly the 1.2.0 image;
the cloud served each delta and the full 1.2.0 once.
"""

import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402
from test_delta import firmware, new_version  # noqa: E402

SIZE = 256 * 1024 + 77


def xdelta(tb, work, old, new, name):
    p_old = os.path.join(work, name + ".old")
    p_new = os.path.join(work, name + ".new")
    out = os.path.join(tb.www, "packages", name)
    for path, data in ((p_old, old), (p_new, new)):
        with open(path, "wb") as f:
            f.write(data)
    subprocess.run(["xdelta3", "-e", "-9", "-S", "none", "-A", "-n", "-f",
                    "-s", p_old, p_new, out], check=True)
    return "packages/" + name, os.path.getsize(out), p_new, p_old


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "mixed")
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        v10 = firmware(SIZE, 1)
        v11 = new_version(v10, 2)
        v12 = new_version(v11, 3)
        u10 = tb.write_package("app-1.0.0.bin", v10)
        u11 = tb.write_package("app-1.1.0.bin", v11)
        u12 = tb.write_package("app-1.2.0.bin", v12)
        work = os.path.join(tb.tmp, "work")
        os.makedirs(work)
        ud_a, size_a, p12, p10 = xdelta(tb, work, v10, v12,
                                        "app-1.0.0-1.2.0.vcdiff")
        ud_b, size_b, _, p11 = xdelta(tb, work, v11, v12,
                                      "app-1.1.0-1.2.0.vcdiff")
        bases = {"1.0.0": p10, "1.1.0": p11}
        tb.log("deltas %d and %d bytes, full %d" % (size_a, size_b,
                                                    len(v12)))

        # Phase 1: two base versions (and node 5 on an unknown one).
        full = lambda v, u: {"id": "app-" + v, "component": "app",
                             "version": v, "hw": ["sensor-v1"],
                             "kind": "full", "url": u}
        tb.write_conf()
        for nid in range(1, 6):
            tb.start_node(nid, comps=(("app", "0.8.0" if nid == 5
                                       else "0.9.0"),))
        tb.publish([], [])
        tb.start_daemon()
        for nid in range(1, 6):
            tb.tag(nid, "fleet", "grp-a" if nid <= 2 else
                   "grp-b" if nid <= 4 else "odd")
        # Both sessions share the medium: a node busy with one declines
        # the other's offer, and the scheduler retries it (2 s here).
        quick = {"retry": {"interval": "2s"}}
        tb.publish([full("1.0.0", u10), full("1.1.0", u11)],
                   [{"id": "base-a", "packages": ["app-1.0.0"],
                     "target": {"tags": ["grp-a"]}, "policy": quick},
                    {"id": "base-b", "packages": ["app-1.1.0"],
                     "target": {"tags": ["grp-b"]}, "policy": quick}])
        want = {1: "1.0.0", 2: "1.0.0", 3: "1.1.0", 4: "1.1.0",
                5: "0.8.0"}
        tb.wait_for(lambda: all(tb.running(n).get("app") == v
                                for n, v in want.items()), 60,
                    "nodes on their base versions")
        tb.log("bases: %s" % {n: tb.running(n)["app"] for n in want})

        # Phase 2: the mixed fleet.
        spec_dir = tb.tmp
        delta = lambda base, u: {
            "id": "app-%s-1.2.0" % base, "component": "app",
            "version": "1.2.0", "hw": ["sensor-v1"], "kind": "delta",
            "delta_format": "vcdiff", "base_version": base, "url": u,
            "base_file": os.path.relpath(bases[base], spec_dir),
            "image_file": os.path.relpath(p12, spec_dir)}
        tb.publish([full("1.2.0", u12), delta("1.0.0", ud_a),
                    delta("1.1.0", ud_b)],
                   [{"id": "mixed", "packages": ["app-1.2.0",
                                                 "app-1.0.0-1.2.0",
                                                 "app-1.1.0-1.2.0"],
                     "target": {"tags": ["fleet"]},
                     "policy": {"listen_weight": 100}}])
        tb.wait_event("mixed", "done", 60, "the mixed-fleet campaign")

        expect = {1: ("app-1.0.0-1.2.0", "delta", "1.0.0"),
                  2: ("app-1.0.0-1.2.0", "delta", "1.0.0"),
                  3: ("app-1.1.0-1.2.0", "delta", "1.1.0"),
                  4: ("app-1.1.0-1.2.0", "delta", "1.1.0"),
                  5: ("app-1.2.0", "full", "0.8.0")}
        res = tb.wait_for(lambda: len(tb.campaign_results("mixed")) >= 5
                          and tb.campaign_results("mixed"), 20,
                          "5 results of the mixed campaign")
        per = {r["node"]: r for r in res}
        sha = hashlib.sha256(v12).hexdigest()
        for nid, (pkg, path, frm) in expect.items():
            r = per.get(tb.node_hex(nid))
            if r is None or r.get("package") != pkg or \
               r.get("path") != path or r.get("from") != frm or \
               r.get("state") != "updated" or r.get("to") != "1.2.0":
                raise Fail("node %d: %s, want %s" % (nid, r, expect[nid]))
            if hashlib.sha256(tb.active_image(nid, len(v12))).hexdigest() \
               != sha:
                raise Fail("node %d does not boot the 1.2.0 image" % nid)
        for u, size in ((ud_a, size_a), (ud_b, size_b), (u12, len(v12))):
            got = tb.cloud_bytes(u)
            if got != size:
                raise Fail("the cloud served %d bytes of %s, want %d"
                           % (got, u, size))
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
