#!/usr/bin/env python3
"""Peak RSS of upbridged: a big fan-out and a big registry.

    bench/rss.py [--bindir build/bin] [--size-mib 1024] [--nodes 2]
                 [--registry 10000] [--lan-mbit 300] [--only fanout|registry]

1. fanout: nginx (tests/e2e/cloud.sh) serves a --size-mib package, the
   daemon downloads it (cut-through: it multicasts while it downloads)
   and fans it out to --nodes upnode processes on loopback multicast
   (sparse flash files, slot = package size).  Sampled every 0.2 s:
   VmRSS; at the end VmHWM from /proc/<pid>/status.
2. registry: a daemon with no nodes gets --registry distinct ANNOUNCE
   frames (docs/up-protocol.md §3, §4.1, CRC-32 trailer) from one UDP
   socket, sent to its LAN group and port; once `upctl status` counts
   them all, VmHWM is read ("vm_hwm_kib"); then one `upctl nodes` lists
   them all and VmHWM is read again ("listed_hwm_kib": the control
   socket's reply buffer on top).

Prints one JSON line per scenario: {"scenario", "vm_hwm_kib",
"vm_rss_kib", ...}.  Besides VmHWM (what the issue's target counts):
the daemon's own memory, from /proc/<pid>/smaps_rollup (Private_Dirty:
pages no other process shares: heap, stacks, written data of the
libraries) and /proc/<pid>/smaps ([heap] Rss), and the file-backed
pages of the shared libraries (RssFile), which VmHWM counts too.  Everything runs on loopback; only the processes it
starts are stopped.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
from testbed import Testbed, Fail  # noqa: E402


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "VmData"):
                out[k] = int(v.split()[0])
    return out


def proc_smaps(pid):
    """Private_Dirty, Pss, Shared_Clean (smaps_rollup), [heap] Rss."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Private_Dirty", "Private_Clean", "Shared_Clean",
                         "Pss", "Anonymous"):
                    out[k.lower() + "_kib"] = int(v.split()[0])
        heap = None
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if line.rstrip().endswith("[heap]"):
                    heap = 0
                elif heap == 0 and line.startswith("Rss:"):
                    heap = int(line.split()[1])
                    break
        out["heap_rss_kib"] = heap
    except OSError:
        pass
    return out


def upstr(s):
    b = s.encode()
    return struct.pack("<B", len(b)) + b


def announce(node_id, hw="loadtest", comps=(("app", "1.0.0"),)):
    """One ANNOUNCE frame (docs/up-protocol.md §4.1), CRC-32 trailer."""
    p = struct.pack("<Q", node_id) + upstr(hw)
    p += struct.pack("<HIBhbIBB", 1472, 65536, 0xFF, 0x7FFF, 0x7F, 0, 0,
                     len(comps))
    for name, ver in comps:
        p += upstr(name) + upstr(ver)
    hdr = struct.pack("<BBBBIH", 1, 0x01, 0, 0, 0, len(p))
    body = hdr + p
    return body + struct.pack("<I", zlib.crc32(body) & 0xffffffff)


def fanout(args):
    tb = Testbed(args.bindir, SRC, "rss-fanout", quiet=args.quiet)
    size = args.size_mib << 20
    tb.slot_size = size
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("big.bin", size, seed=3)
        tb.publish(
            [{"id": "big-1", "component": "app", "version": "9.0.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": "rss", "packages": ["big-1"],
              "target": {"hw": ["sensor-v1"]}}])
        tb.write_conf(result_timeout_s=120)
        with open(tb.conf) as f:
            conf = f.read()
        conf = conf.replace("bitrate_mbit = 100",
                            "bitrate_mbit = %d" % args.lan_mbit)
        conf = conf.replace("cache_quota_mb = 256",
                            "cache_quota_mb = %d" % (args.size_mib * 2))
        conf = conf.replace("range_kib = 256", "range_kib = 1024")
        with open(tb.conf, "w") as f:
            f.write(conf)
        for nid in range(1, args.nodes + 1):
            tb.start_node(nid)
        t0 = time.time()
        tb.start_daemon()
        pid = tb.daemon.pid
        peak = 0
        samples = []
        deadline = t0 + args.timeout
        while time.time() < deadline:
            tb.check_daemon()
            st = proc_status(pid)
            peak = max(peak, st.get("VmRSS", 0))
            samples.append((round(time.time() - t0, 1), st.get("VmRSS")))
            if all(tb.running(n).get("app") == "9.0.0"
                   for n in range(1, args.nodes + 1)):
                break
            time.sleep(0.2)
        else:
            raise Fail("fan-out not done in %d s" % args.timeout)
        wall = time.time() - t0
        st = proc_status(pid)
        res = {"scenario": "fanout", "package_bytes": size,
               "nodes": args.nodes, "wall_s": round(wall, 1),
               "vm_hwm_kib": st["VmHWM"], "vm_rss_kib": st["VmRSS"],
               "rss_anon_kib": st.get("RssAnon"),
               "rss_file_kib": st.get("RssFile"),
               "sampled_peak_rss_kib": peak,
               "cloud_bytes": tb.cloud_bytes(url)}
        res.update(proc_smaps(pid))
        if args.samples:
            res["samples"] = samples
        tb.stop_daemon()
        return res
    except Exception:
        if not args.quiet:
            tb.dump_logs()
        raise
    finally:
        tb.close()


def registry(args):
    tb = Testbed(args.bindir, SRC, "rss-registry", quiet=args.quiet)
    try:
        tb.start_cloud()
        tb.genkey()
        url = tb.make_package("small.bin", 4096, seed=1)
        tb.publish(
            [{"id": "small-1", "component": "app", "version": "2.0.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}], [])
        tb.write_conf(discover_interval_s=3600)
        tb.start_daemon()
        pid = tb.daemon.pid
        time.sleep(1)
        base = proc_status(pid)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                     socket.inet_aton("127.0.0.1"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        t0 = time.time()
        for i in range(args.registry):
            s.sendto(announce(0x10000 + i), (tb.group, tb.mport))
            if i % 50 == 49:
                time.sleep(0.005)   # the daemon's socket buffer
        send_s = time.time() - t0

        def count():
            # `status' counts them without listing (no big reply).
            r = tb.upctl("status", check=False)
            if isinstance(r, dict):
                return int(r.get("nodes", 0))
            return 0

        def listed():
            r = tb.upctl("nodes", check=False)
            if isinstance(r, list):
                return len(r)
            if isinstance(r, dict):
                return len(r.get("nodes", []))
            return 0
        n = 0
        end = time.time() + 60
        while time.time() < end:
            n = count()
            if n >= args.registry:
                break
            time.sleep(0.5)
        st = proc_status(pid)
        sm = proc_smaps(pid)
        nl = listed()
        lst = proc_status(pid)
        res = {"scenario": "registry", "announced": args.registry,
               "registered": n, "send_s": round(send_s, 1),
               "vm_hwm_kib": st["VmHWM"], "vm_rss_kib": st["VmRSS"],
               "rss_anon_kib": st.get("RssAnon"),
               "rss_file_kib": st.get("RssFile"),
               "idle_hwm_kib": base["VmHWM"],
               "listed": nl, "listed_hwm_kib": lst["VmHWM"],
               "listed_rss_kib": lst["VmRSS"]}
        res.update(sm)
        tb.stop_daemon()
        return res
    finally:
        tb.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bindir", default=os.path.join(SRC, "build", "bin"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--registry", type=int, default=10000)
    ap.add_argument("--lan-mbit", type=int, default=300)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--only", choices=("fanout", "registry"))
    ap.add_argument("--samples", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    try:
        if args.only in (None, "fanout"):
            print(json.dumps(fanout(args)), flush=True)
        if args.only in (None, "registry"):
            print(json.dumps(registry(args)), flush=True)
    except Fail as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
