#!/usr/bin/env python3
"""The demo behind scripts/demo: one cloud, one gateway, a dozen nodes.

Publishes a signed 8 MiB package, starts upbridged and 12 upnode processes
on loopback multicast (10 compatible sensors, two of them on a lossy link;
one node of another hardware model; one node whose local policy declines),
shows live progress with `upctl watch`, then the per-node report as the
cloud received it.
"""

import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "e2e"))
from testbed import Testbed, Fail  # noqa: E402

SIZE = 8 * 1024 * 1024


def main():
    bindir, srcdir = sys.argv[1], sys.argv[2]
    keep = "--keep" in sys.argv
    tb = Testbed(bindir, srcdir, "demo", keep=keep)
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("sensor-app-1.1.0.bin", SIZE, seed=1)
        tb.publish(
            [{"id": "sensor-app-1.1.0", "component": "app",
              "version": "1.1.0", "hw": ["sensor-v1"], "kind": "full",
              "url": url}],
            [{"id": "spring-rollout", "packages": ["sensor-app-1.1.0"],
              "target": {"hw": ["sensor-v1"]}}])
        tb.write_conf()
        with open(tb.conf) as f:
            conf = f.read().replace("bitrate_mbit = 100", "bitrate_mbit = 20")
        with open(tb.conf, "w") as f:
            f.write(conf)
        for nid in range(1, 11):
            extra = ["--drop-pct", "2", "--seed", str(nid)] \
                if nid in (4, 9) else []
            tb.start_node(nid, extra=extra)
        tb.start_node(11, hw="gadget-v2")
        tb.start_node(12, extra=["--reject", "14"])
        tb.log("nodes: 10 x sensor-v1 (nodes 4 and 9 lose 2 % of frames), "
               "1 x gadget-v2, 1 x sensor-v1 that declines")
        t0 = time.time()
        tb.start_daemon()
        tb.wait_for(lambda: tb.upctl("campaigns"), 30, "the campaign")
        print()
        subprocess.run([tb.bin("upctl"), "-s", tb.sock, "watch",
                        "--until-idle"], timeout=600)
        print()
        tb.wait_for(lambda: len(tb.results()) >= 11, 60,
                    "the reports at the cloud")
        wall = time.time() - t0
        print(subprocess.run([tb.bin("upctl"), "-s", tb.sock, "campaigns"],
                             capture_output=True, text=True).stdout)
        print("Per-node results as the cloud received them "
              "(reports/%s/*.jsonl):" % "gw-e2e")
        fmt = "  %-20s %-8s %-8s %-9s %-13s %8s"
        print(fmt % ("node", "from", "to", "state", "result", "ms"))
        for r in sorted(tb.results(), key=lambda r: r["node"]):
            print(fmt % (r["node"], r.get("from", ""), r.get("to", ""),
                         r.get("state", ""), r.get("result_str", ""),
                         r.get("duration_ms", "")))
        served = tb.cloud_bytes(url)
        print()
        print("package %d bytes; the cloud served %d bytes of it "
              "(%.2f copies) for 10 target nodes" %
              (SIZE, served, served / SIZE))
        print("wall time from daemon start to the last report: %.1f s" % wall)
        print(subprocess.run([tb.bin("upctl"), "-s", tb.sock, "nodes"],
                             capture_output=True, text=True).stdout)
        tb.stop_daemon()
        ok = True
    except Fail as e:
        print("demo failed: %s" % e)
    finally:
        if not ok:
            tb.dump_logs()
        if keep:
            print("kept %s" % tb.tmp)
        tb.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
