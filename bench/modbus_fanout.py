#!/usr/bin/env python3
"""bench/modbus_fanout.py: a package over Modbus RTU, against the line.

    python3 bench/modbus_fanout.py [--nodes N] [--size-kib S]
        [--baud B] [--format 8E1] [--modes broadcast,unicast]
        [--unicast-slots K] [--runs R] [--bin DIR]

The real cloud (nginx, TLS), upbridged with a modbus-rtu bus on upsim's
rs485 personality (11-bit characters for 8E1 or 8N2, the 3.5-character
silence, every node hearing every character, no loss), and N `upnode
--transport modbus-rtu` slaves on it, units 1..N.  One package goes to
every node, once with the engine's polled-bus shape (poll_broadcast =
yes: the blocks go once to unit 0, then each node's bitmap is polled and
only its missing blocks are written to it) and once with every node
served alone (poll_broadcast = no, unicast_slots nodes at a time on the
half-duplex bus).

Measured per mode, up to the last node's "receiving -> downloaded"
(every node holds every block), read from the nodes' logs as the lines
appear (polled every 5 ms):
 - session_s: from the first node's "idle -> receiving" (it took the
   OFFER), so the OFFER round is in it;
 - transfer_s: from the session's first pass of data (the daemon's
   "pass 1" line; the bench runs it at log_level debug): what the line
   limits below bound.  Both include everything the engine does
   meanwhile (status polls, repairs, UP's headers; for unicast, the
   OFFER to each node alone).
The simulated bus runs at time scale 1, so wall time is line time.

The line limits (research/transports.md §3.6), with c bits a character,
t3.5 the inter-frame silence (3.5 characters, 1.75 ms above 19,200
bit/s), ceil(S/246) FC 0x10 requests of 255 bytes, their 8-byte replies:

  unicast, per node:  T_min = ceil(S/246) * ((255 + 8) c / baud + 2 t3.5
                              + t_slave + t_usb)
  broadcast, all N:   T_bc  = ceil(S/246) * (255 c / baud + t3.5)
                              + N * t_poll

with t_slave = t_usb = 0 (the node stub answers after t3.5; ptys have no
USB latency) and t_poll one outbox poll of the transport (an FC 0x17
acknowledging and reading 18 registers: 15 + 41 bytes, 2 t3.5), the one
read per node that tells the gateway it misses nothing.  Unicast only,
N nodes take at least N * T_min.  Target: within T/0.9 (fraction
T / measured >= 0.9).  Prints one JSON line per mode and run; exit 3 when
the polled-bus shape misses the target.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.abspath(os.path.join(here, ".."))
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
from testbed import Testbed  # noqa: E402

FRAME = 246                     # bytes one FC 0x10 carries (123 registers)
REQ = FRAME + 9                 # unit, fc, addr, count, byte count, CRC
REPLY = 8                       # unit, fc, addr, count, CRC
POLL_REQ = 15                   # FC 0x17: write 1 register, read 18
POLL_REPLY = 3 + 2 * 18 + 2


def char_bits(fmt):
    return 1 + int(fmt[0]) + (fmt[1] != "N") + int(fmt[2])


def t35(a):
    c = char_bits(a.format)
    return 0.00175 if a.baud > 19200 else 3.5 * c / a.baud


def limits(a, size):
    c = char_bits(a.format)
    n = math.ceil(size / FRAME)
    t_min = n * ((REQ + REPLY) * c / a.baud + 2 * t35(a))
    t_poll = (POLL_REQ + POLL_REPLY) * c / a.baud + 2 * t35(a)
    t_bc = n * (REQ * c / a.baud + t35(a)) + a.nodes * t_poll
    return t_min, t_bc


class Watch(threading.Thread):
    """Times the state changes in a node's log as they appear."""

    KEYS = ("idle -> receiving", "receiving -> downloaded")

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.t, self.stop = path, {}, False

    def run(self):
        pos = 0
        while not self.stop:
            try:
                with open(self.path) as f:
                    f.seek(pos)
                    data = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                data = ""
            now = time.time()
            for key in self.KEYS:
                if key in data and key not in self.t:
                    self.t[key] = now
            time.sleep(0.005)


def pass1(path):
    """The wall time of the first "session ...: pass 1" line."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "
                         r"session \w+: pass 1,", line)
            if m:
                t = datetime.datetime.strptime(m.group(1),
                                               "%Y-%m-%d %H:%M:%S.%f")
                return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None     # every node served alone: no pass to all


def run_once(a, mode, run):
    size = a.size_kib * 1024
    tb = Testbed(a.bin, src, "mbbench", quiet=True)
    watches = {}
    try:
        tb.start_cloud()
        tb.genkey()
        tb.publish([], [])
        tb.start_air("rs485", a.nodes, baud=a.baud, fmt=a.format,
                     opts=["gap-chars=3.5"], loss=0, seed=run)
        tb.node_link = lambda nid: [
            "--transport", "modbus-rtu",
            "--link-opt", "device=" + tb.air_path("n%d" % nid),
            "--link-opt", "unit=%d" % nid,
            "--link-opt", "baud=%d" % a.baud,
            "--link-opt", "format=" + a.format]
        # rate_pct 100: the bus worker keeps the line's own timing; the
        # engine's pacer only charges what the plugin reports.
        tb.write_conf(transport=[
            "[transport.bus0]",
            "type = modbus-rtu",
            "device = %s" % tb.air_path("gw"),
            "baud = %d" % a.baud,
            "format = %s" % a.format,
            "units = 1-%d" % a.nodes,
            "response_ms = 100",
            "probe_s = 10",
            "poll_broadcast = %s" % ("yes" if mode == "broadcast"
                                     else "no"),
            "unicast_slots = %d" % a.unicast_slots,
        ], rate_pct=100, discover_interval_s=600, result_timeout_s=120)
        with open(tb.conf) as f:
            conf = f.read()
        with open(tb.conf, "w") as f:
            f.write(conf.replace("log_level = info", "log_level = debug"))
        for nid in range(1, a.nodes + 1):
            tb.start_node(nid)
            watches[nid] = Watch(tb.nodes[nid]["log"])
            watches[nid].start()
        tb.start_daemon()
        tb.wait_for(lambda: len(tb.upctl("nodes")) >= a.nodes, 120,
                    "every node in the registry")
        url = tb.make_package("bench.bin", size, seed=run)
        pkg = tb.full("2.0.0", url)
        tb.publish_one("bench", pkg, target={})
        nodes = range(1, a.nodes + 1)
        tb.wait_for(lambda: all(tb.running(n).get("app") == "2.0.0"
                                for n in nodes),
                    1800, "all nodes updated", interval=0.05)
        st = tb.air_status()
        starts = [w.t.get(Watch.KEYS[0]) for w in watches.values()]
        ends = [w.t.get(Watch.KEYS[1]) for w in watches.values()]
        if None in starts or None in ends:
            raise RuntimeError("a node's log lacks its transfer")
        span = max(ends) - min(starts)
        t_data = pass1(tb.daemon_log)
        transfer = max(ends) - (t_data if t_data is not None
                                else min(starts))
        t_min, t_bc = limits(a, size)
        bound = t_bc if mode == "broadcast" else a.nodes * t_min
        gw = [e for e in st["endpoints"] if e["name"] == "gw"][0]
        out = {"bench": "modbus_fanout", "mode": mode, "run": run,
               "nodes": a.nodes, "size_bytes": size, "baud": a.baud,
               "format": a.format, "unicast_slots": a.unicast_slots,
               "session_s": round(span, 3),
               "transfer_s": round(transfer, 3),
               "line_limit_s": round(bound, 3),
               "fraction": round(bound / transfer, 3),
               "t_min_one_node_s": round(t_min, 3),
               "gw_frames": gw["tx_frames"],
               "gw_line_s": round(gw["airtime_us"] / 1e6, 3),
               "collisions": st["collisions"]}
        print(json.dumps(out), flush=True)
        return out
    finally:
        for w in watches.values():
            w.stop = True
        tb.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=16)
    p.add_argument("--size-kib", type=int, default=24)
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--format", default="8E1",
                   choices=("8E1", "8O1", "8N2", "8N1"))
    p.add_argument("--modes", default="broadcast,unicast")
    p.add_argument("--unicast-slots", type=int, default=4)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--bin", default=os.path.join(src, "build", "bin"))
    a = p.parse_args()
    modes = a.modes.split(",")
    if not modes or set(modes) - {"broadcast", "unicast"}:
        p.error("--modes: broadcast, unicast")
    if not 1 <= a.nodes <= 247:
        p.error("--nodes: 1-247")
    res = [run_once(a, m, r) for r in range(1, a.runs + 1) for m in modes]
    by = {}
    for r in res:
        by.setdefault(r["mode"], []).append(r["transfer_s"])
    if "broadcast" in by and "unicast" in by:
        print(json.dumps({"bench": "modbus_fanout", "speedup":
                          round(min(by["unicast"]) / min(by["broadcast"]),
                                2)}), flush=True)
    bad = [r for r in res if r["mode"] == "broadcast" and
           r["fraction"] < 0.9]
    sys.exit(3 if bad else 0)


if __name__ == "__main__":
    main()
