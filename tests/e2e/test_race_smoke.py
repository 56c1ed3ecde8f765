#!/usr/bin/env python3
"""Smoke version of the race (issue 3, docs/benchmarks.md).

bench/race with 3 nodes, a 2 MiB package and 1 % independent UDP loss on
every node, upbridge against direct download, on the real namespace
testbed (nginx with TLS in a cloud namespace, tbf-shaped WAN and LAN,
nftables loss).  Checks correctness, not time: every node of both runs
holds a verified copy, upbridge fetched the package over the WAN once
(link bytes <= 1.10 x the package, headers included) while direct moved
about one copy per node, and the testbed left no namespace behind.

Needs root (network namespaces); without it, or when namespaces cannot be
made, it fails with the reason: CI runs as root.
"""

import json
import os
import subprocess
import sys

NODES = 3
SIZE_MIB = 2
LOSS = 1


def fail(msg):
    print("FAIL: %s" % msg, flush=True)
    sys.exit(1)


def namespaces():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True,
                       text=True)
    return {l.split()[0] for l in r.stdout.splitlines() if l.split()}


def main():
    if len(sys.argv) < 3:
        print("usage: %s BINDIR SRCDIR" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    bindir, srcdir = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        fail("the race testbed needs root (network namespaces, tc, "
             "nftables); run ctest as root")
    probe = "ubsmoke%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True,
                       text=True)
    if r.returncode != 0:
        fail("cannot create a network namespace: %s" % r.stderr.strip())
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)

    race = os.path.join(srcdir, "bench", "race")
    argv = [sys.executable, race, "--nodes", str(NODES), "--size-mib",
            str(SIZE_MIB), "--loss-pct", str(LOSS), "--contenders",
            "upbridge,direct", "--bin", bindir, "--timeout", "240"]
    print("running: %s" % " ".join(argv), flush=True)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=500)
    except subprocess.TimeoutExpired:
        p.terminate()            # bench/race cleans up on SIGTERM
        out, err = p.communicate(timeout=60)
        sys.stderr.write(err)
        fail("bench/race did not finish in 500 s")
    sys.stderr.write(err)
    left = sorted(n for n in namespaces() if n.startswith("ubr%d-" % p.pid))
    if left:
        fail("namespaces left behind: %s" % " ".join(left))
    if p.returncode != 0:
        fail("bench/race exited %d" % p.returncode)
    recs = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rec = json.loads(line)
            recs[rec["contender"]] = rec
            print(line, flush=True)
    for c in ("upbridge", "direct"):
        if c not in recs:
            fail("no result line for %s" % c)
    size = SIZE_MIB << 20
    for c, rec in recs.items():
        for k in ("contender", "nodes", "package_bytes", "loss_pct",
                  "wall_s", "wan_bytes", "lan_bytes", "t_phys_s", "ratio",
                  "cpu_busy_pct"):
            if k not in rec:
                fail("%s: field %s missing" % (c, k))
        if rec["package_bytes"] != size or rec["nodes"] != NODES:
            fail("%s: wrong scenario in the record" % c)
        if rec.get("error"):
            fail("%s: %s" % (c, rec["error"]))
        if rec["verified_nodes"] != NODES or rec["stalled"] or \
                rec["wall_s"] is None:
            fail("%s: %d of %d nodes hold a verified copy"
                 % (c, rec["verified_nodes"], NODES))
        if rec["lan_bytes"] < size:
            fail("%s: the gateway sent %d bytes on the LAN, less than "
                 "the package" % (c, rec["lan_bytes"]))
        if rec["loss_pct"] != LOSS:
            fail("%s: loss not applied" % c)
    ub, direct = recs["upbridge"], recs["direct"]
    # One copy over the WAN: package + TCP/IP/Ethernet headers (1514/1448)
    # + TLS, the manifest and the Range requests' headers.
    if not size <= ub["wan_bytes"] <= 1.10 * size:
        fail("upbridge moved %d bytes over the WAN for a %d-byte package "
             "(want one copy, <= 1.10 x)" % (ub["wan_bytes"], size))
    if not NODES * size <= direct["wan_bytes"] <= NODES * 1.10 * size:
        fail("direct moved %d bytes over the WAN, want about %d copies"
             % (direct["wan_bytes"], NODES))
    # The loss was really injected into the UDP fan-out.
    if ub.get("loss_drops", 0) <= 0:
        fail("no UDP datagram was dropped at 1 %% loss (nftables rule "
             "inactive?)")
    print("upbridge: %.2f s, WAN %.3f x, LAN %.3f x; direct: %.2f s, "
          "WAN %.3f x" % (ub["wall_s"], ub["wan_copies"], ub["lan_copies"],
                          direct["wall_s"], direct["wan_copies"]))
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
