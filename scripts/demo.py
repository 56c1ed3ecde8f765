#!/usr/bin/env python3
"""The demo behind scripts/demo: one cloud, one gateway, every transport.

nginx (TLS) is the cloud.  One upbridged runs one instance of every
transport it has, each with simulated nodes (docs/simulator.md):

  lan         LAN multicast on loopback: 10 sensors (two lose 2 % of the
              frames), one node of another hardware model (not targeted)
              and one whose local policy declines
  lora        LoRa nodes on upsim's LoRa air (RUI3 modems on pty pairs,
              EU868 sub-band P, SF7/125 kHz, 10 % duty cycle, 5 % loss)
  plc         PLC stations behind upsim's Q/GDW 1376.2 carrier module,
              two relay levels, 2 % loss per hop (UP over forwarding)
  ble         BLE peripherals behind the link model of ble_sim (sim_dir),
              two connections at a time
  modbus-rtu  Modbus RTU slaves on upsim's RS-485 bus (115,200 8E1)
  modbus-tcp  Modbus TCP servers on loopback

The gateway starts with an empty manifest; once every node has announced
itself, the cloud publishes one signed package per hardware model (one
model per link), sized for the link: LoRa and PLC are slow.  The demo
shows live progress (`upctl watch`), then the per-node results as the
cloud received them, grouped by transport, and per link what the link
sent against the package's size (and, on a simulated medium, what the
simulator counted on the line and the air).  It exits 1 unless every
targeted node ends as expected and the cloud served one copy of each
package.

Time: by default everything runs in real time (about a minute on 2 cores).
--time-scale S puts the whole testbed on one compressed clock, as the
LoRa and PLC tests do (upsim, [fanout] time_scale, upnode --time-scale;
docs/simulator.md "Time scale").  upbridged has one engine clock, so the
LAN, BLE and Modbus TCP links then run on it too: their windows and
pacing are S times shorter in real time on media that are not simulated
(loopback, the BLE link model), which is a faster demo, not a
measurement.

usage: demo.py BINDIR SRCDIR [--keep] [--quick] [--transports LIST]
               [--time-scale S]
  --keep            keep the temporary directory (logs, state, air)
  --quick           fewer nodes and smaller packages (the ctest demo_quick)
  --transports L    comma-separated subset of lan,lora,plc,ble,modbus-rtu,
                    modbus-tcp (default: all)
  --time-scale S    the testbed's one clock (default 1: real time)
"""

import argparse
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "e2e"))
from testbed import Testbed, Fail, free_port  # noqa: E402

TRANSPORTS = ["lan", "lora", "plc", "ble", "modbus-rtu", "modbus-tcp"]

# Per transport: its link's name, the hardware model of its nodes, the
# first node id, and (full, quick) node counts and package sizes.
LINKS = {
    "lan": {"link": "lan0", "hw": "sensor-v1", "base": 1,
            "nodes": (10, 2), "size": (8 << 20, 256 << 10)},
    "lora": {"link": "lora0", "hw": "lora-meter", "base": 101,
             "nodes": (4, 2), "size": (3 << 10, 1 << 10)},
    "plc": {"link": "plc0", "hw": "plc-meter", "base": 201,
            "nodes": (4, 2), "size": (4 << 10, 1 << 10)},
    "ble": {"link": "ble0", "hw": "ble-tag", "base": 301,
            "nodes": (4, 2), "size": (64 << 10, 8 << 10)},
    "modbus-rtu": {"link": "bus0", "hw": "rtu-drive", "base": 401,
                   "nodes": (4, 2), "size": (16 << 10, 2 << 10)},
    "modbus-tcp": {"link": "mbtcp0", "hw": "tcp-plc", "base": 501,
                   "nodes": (2, 1), "size": (128 << 10, 16 << 10)},
}
LAN_OTHER = 11          # a gadget-v2: not targeted
LAN_DECLINE = 12        # declines (--reject 14)
LAN_LOSSY = (4, 9)      # lose 2 % of the frames
RTU_BAUD = 115200


class Demo:
    def __init__(self, tb, which, quick):
        self.tb = tb
        self.which = which
        self.q = 1 if quick else 0
        self.sections = []
        self.links = {}         # node id -> upnode link args
        self.expect = {}        # node id -> (transport, final state)
        self.plan = []          # (transport, node ids)
        self.ports = {}         # modbus-tcp node id -> port

    def ids(self, t):
        d = LINKS[t]
        return list(range(d["base"], d["base"] + d["nodes"][self.q]))

    # -- one function per transport: its section and its nodes' links ----
    def lan(self, ids):
        for nid in ids:
            self.expect[nid] = ("lan", "updated")
        if not self.q:
            self.expect[LAN_DECLINE] = ("lan", "declined")

    def lora(self, ids):
        tb = self.tb
        ep = {"n%d" % (i + 1): "loss=5,rssi=%d,snr=%d" % (-85 - 3 * i, 8 - i)
              for i in range(len(ids))}
        tb.start_air("lora", len(ids), scale=self.scale, medium="lora",
                     opts=["freq=869525000", "sf=7"], ep_opts=ep, seed=5)
        for i, nid in enumerate(ids):
            self.links[nid] = [
                "--transport", "lora", "--link-opt",
                "device=" + tb.air_path("n%d" % (i + 1), "lora")]
        self.sections += [
            "[transport.lora0]", "type = lora",
            "device = %s" % tb.air_path("gw", "lora"),
            "frequency_hz = 869525000", "sf = 7",
            # Windows and intervals: the daemon derives them from the
            # link's airtime and duty cycle (docs/engine.md, "The link
            # profile").
            ""]

    def plc(self, ids):
        tb = self.tb
        half = (len(ids) + 1) // 2
        ep = {}
        for i in range(len(ids)):
            o = "loss=2"
            if i >= half:           # the second level, relayed by n1
                o += ",parent=n1"
            ep["n%d" % (i + 1)] = o
        tb.start_air("plc", len(ids), scale=self.scale, medium="plc",
                     baud=9600, fmt="8E1", seed=7, ep_opts=ep)
        for i, nid in enumerate(ids):
            self.links[nid] = [
                "--transport", "plc", "--link-opt",
                "device=" + tb.air_path("n%d" % (i + 1), "plc")]
        self.sections += [
            "[transport.plc0]", "type = plc",
            "device = %s" % tb.air_path("gw", "plc"),
            "status_interval_s = 1",
            "offload = no",         # UP carries the package
            # One module at 9600 baud answers a report at a time
            # (test_plc_forwarding.py): without these, the testbed's
            # LAN-sized [fanout] (a DISCOVER every 2 s) keeps the
            # module's queue full and no data goes out.
            "discover_interval_s = 60", "status_window_ms = 5000",
            "result_timeout_s = 120", ""]

    def ble(self, ids):
        tb = self.tb
        sec = tb.ble_section(max_peers=2, scan_period_ms=200,
                             connect_timeout_ms=3000)
        ble_link = tb.node_link
        tb.node_link = None
        tb.ble_opts = lambda nid: {"interval_us": 15000, "pdus": 6,
                                   "phy": "2M", "adv_delay_ms": 50,
                                   "supervision_ms": 500}
        for nid in ids:
            self.links[nid] = ble_link(nid)
        self.sections += sec + [""]

    def modbus_rtu(self, ids):
        tb = self.tb
        tb.start_air("rs485", len(ids), scale=self.scale, medium="rs485",
                     baud=RTU_BAUD, fmt="8E1", opts=["gap-chars=3.5"],
                     seed=11)
        for i, nid in enumerate(ids):
            self.links[nid] = [
                "--transport", "modbus-rtu", "--link-opt",
                "device=" + tb.air_path("n%d" % (i + 1), "rs485"),
                "--link-opt", "unit=%d" % (i + 1),
                "--link-opt", "baud=%d" % RTU_BAUD]
        self.sections += [
            "[transport.bus0]", "type = modbus-rtu",
            "device = %s" % tb.air_path("gw", "rs485"),
            "baud = %d" % RTU_BAUD, "format = 8E1",
            "units = 1-%d" % len(ids), "response_ms = 100", ""]

    def modbus_tcp(self, ids):
        for nid in ids:
            self.ports[nid] = free_port()
            self.links[nid] = [
                "--transport", "modbus-tcp", "--link-opt",
                "listen=127.0.0.1:%d" % self.ports[nid]]
        self.sections += [
            "[transport.mbtcp0]", "type = modbus-tcp",
            "peers = %s" % ", ".join("127.0.0.1:%d" % self.ports[n]
                                     for n in ids),
            "max_peers = 2", "response_ms = 1000", ""]

    # -- the whole testbed -------------------------------------------------
    def setup(self, scale):
        tb = self.tb
        self.scale = scale
        tb.time_scale = scale
        pkgs, deps = [], []
        for t in self.which:
            d = LINKS[t]
            ids = self.ids(t)
            size = d["size"][self.q]
            name = "%s-fw-1.1.0.bin" % d["hw"]
            url = tb.make_package(name, size, seed=d["base"])
            pid = "%s-1.1.0" % d["hw"]
            pkgs.append(tb.full("1.1.0", url, hw=(d["hw"],), pid=pid))
            deps.append({"id": "rollout-%s" % t, "packages": [pid],
                         "target": {"hw": [d["hw"]]}})
            d["url"], d["pkg_size"] = url, size
            getattr(self, t.replace("-", "_"))(ids)
            for nid in ids:
                self.expect.setdefault(nid, (t, "updated"))
            self.plan.append((t, ids))
        self.release = (pkgs, deps)
        tb.publish([], [])      # nothing yet: the nodes announce first
        tb.node_link = self.links.get
        tb.write_conf(transport=self.sections, lan="lan" in self.which,
                      lan_mbit=20)

    def start_nodes(self):
        tb = self.tb
        for t, ids in self.plan:
            hw = LINKS[t]["hw"]
            for nid in ids:
                extra = []
                if t == "lan" and nid in LAN_LOSSY:
                    extra = ["--drop-pct", "2"]
                tb.start_node(nid, hw=hw, extra=extra +
                              ["--seed", str(nid)])
            if t == "lan" and not self.q:
                tb.start_node(LAN_OTHER, hw="gadget-v2")
                tb.start_node(LAN_DECLINE, hw=hw, extra=["--reject", "14"])
            tb.log("%s: %d node(s) of %s%s" % (
                t, len(ids), hw, ", one gadget-v2 (not targeted), one "
                "that declines; nodes %s lose 2 %% of the frames"
                % " and ".join(map(str, LAN_LOSSY))
                if t == "lan" and not self.q else ""))

    def final_results(self):
        """{node id: its final record} of the nodes expected."""
        out = {}
        for r in self.tb.results():
            if not r.get("final", True):
                continue
            nid = int(r["node"], 16)
            if nid in self.expect:
                out[nid] = r
        return out


def fmt_bytes(n):
    if n >= 1 << 20:
        return "%.1f MiB" % (n / (1 << 20))
    if n >= 1 << 10:
        return "%.1f KiB" % (n / (1 << 10))
    return "%d B" % n


def report(demo, wall):
    tb = demo.tb
    res = demo.final_results()
    nodes = {int(n["id"], 16): n for n in tb.upctl("nodes")}
    st = tb.upctl("status")
    links = {l["name"]: l for l in (st.get("fanout") or {})
             .get("transports", [])}
    print("Per-node results as the cloud received them "
          "(reports/%s/*.jsonl), by transport:" % "gw-e2e")
    fmt = "  %-19s %-10s %-6s %-6s %-9s %-13s %9s"
    bad = []
    for t, ids in demo.plan:
        d = LINKS[t]
        print()
        print("%s (%s): %d node(s), package %s of %s" % (
            t, d["link"], len(ids), fmt_bytes(d["pkg_size"]), d["hw"]))
        print(fmt % ("node", "hw", "from", "to", "state", "result", "ms"))
        shown = list(ids)
        if t == "lan" and not demo.q:
            shown += [LAN_OTHER, LAN_DECLINE]
        for nid in shown:
            r = res.get(nid)
            hw = nodes.get(nid, {}).get("hw", "?")
            if r is None:
                print(fmt % (tb.node_hex(nid), hw, "", "", "-",
                             "not targeted" if nid not in demo.expect
                             else "no result", ""))
            else:
                print(fmt % (r["node"], hw, r.get("from", ""),
                             r.get("to", ""), r.get("state", ""),
                             r.get("result_str", ""),
                             r.get("duration_ms", "")))
            want = demo.expect.get(nid)
            if want and (r is None or r.get("state") != want[1]):
                bad.append((nid, want[1], r and r.get("state")))

    print()
    print("Per link: the UP bytes it sent against the package (a "
          "broadcast link sends about one copy and its repair, a link "
          "that serves nodes one by one a copy each), its frames by "
          "kind, and the simulator's count of the medium:")
    lf = "  %-11s %-7s %5s %10s %10s %7s %16s  %s"
    print(lf % ("transport", "link", "nodes", "package", "UP sent",
                "copies", "data/repair/ctrl", "the medium (simulator)"))
    for t, ids in demo.plan:
        d = LINKS[t]
        l = links.get(d["link"], {})
        sent = l.get("stats", {}).get("tx_bytes", 0)
        eng = l.get("stats", {}).get("engine", {})
        frames = "%d/%d/%d" % (eng.get("tx_data", 0),
                               eng.get("tx_repair", 0),
                               eng.get("tx_ctrl", 0))
        med = ""
        mname = {"lora": "lora", "plc": "plc",
                 "modbus-rtu": "rs485"}.get(t)
        if mname:
            ms = tb.air_status(mname)
            gw = [e for e in ms["endpoints"] if e["name"] == "gw"][0]
            med = "gateway %d frames, %s on its line, %.1f s on the " \
                  "medium; %.0f s simulated in all" % (
                      gw["tx_frames"], fmt_bytes(gw["tx_bytes"]),
                      gw["airtime_us"] / 1e6, ms["sim_ms"] / 1e3)
            if t == "lora":
                med += "; duty-cycle refusals %d" % \
                    gw["modem"]["refused_duty"]
        print(lf % (t, d["link"], len(ids), fmt_bytes(d["pkg_size"]),
                    fmt_bytes(sent), "%.2f" % (sent / d["pkg_size"]),
                    frames, med))
    print()
    total = sum(LINKS[t]["pkg_size"] for t, _ in demo.plan)
    served = sum(tb.cloud_bytes(LINKS[t]["url"]) for t, _ in demo.plan)
    print("the cloud served %s for %d package(s) of %s in all (%.2f "
          "copies)" % (fmt_bytes(served), len(demo.plan),
                       fmt_bytes(total), served / total))
    print("wall time from daemon start to the last report: %.1f s "
          "(time scale %g)" % (wall, demo.scale))
    if served != total:
        bad.append(("cloud", "one copy of each package", served))
    return bad


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, usage=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bindir")
    ap.add_argument("srcdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--time-scale", type=int, default=1)
    a = ap.parse_args()
    which = [t.strip() for t in a.transports.split(",") if t.strip()]
    unknown = [t for t in which if t not in TRANSPORTS]
    if unknown or not which:
        ap.error("--transports: unknown %s (have %s)"
                 % (",".join(unknown) or "(none)", ",".join(TRANSPORTS)))
    which = [t for t in TRANSPORTS if t in which]
    if not 1 <= a.time_scale <= 100:
        ap.error("--time-scale: 1 to 100")

    tb = Testbed(a.bindir, a.srcdir, "demo", keep=a.keep)
    demo = Demo(tb, which, a.quick)
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        demo.setup(a.time_scale)
        demo.start_nodes()
        t0 = time.time()
        tb.start_daemon()
        want = len(demo.expect) + (0 if demo.q or "lan" not in which
                                   else 1)
        tb.wait_for(lambda: len(tb.upctl("nodes")) >= want, 120,
                    "every node to announce itself")
        per = {}
        for n in tb.upctl("nodes"):
            per[n["transport"]] = per.get(n["transport"], 0) + 1
        tb.log("registry: %s" % ", ".join("%d on %s" % (per[k], k)
                                          for k in sorted(per)))
        # The cloud releases one package per hardware model.
        tb.publish(*demo.release)
        tb.wait_for(lambda: len(tb.upctl("campaigns")) >= len(which), 60,
                    "a campaign per package")
        print()
        subprocess.run([tb.bin("upctl"), "-s", tb.sock, "watch",
                        "--until-idle"], timeout=900)
        print()
        tb.wait_for(lambda: len(demo.final_results()) >= len(demo.expect),
                    120, "the reports at the cloud")
        wall = time.time() - t0
        print(subprocess.run([tb.bin("upctl"), "-s", tb.sock, "campaigns"],
                             capture_output=True, text=True).stdout)
        bad = report(demo, wall)
        print()
        print(subprocess.run([tb.bin("upctl"), "-s", tb.sock, "nodes"],
                             capture_output=True, text=True).stdout)
        tb.stop_daemon()
        if bad:
            raise Fail("not as expected: %s" % bad)
        ok = True
    except Fail as e:
        print("demo failed: %s" % e)
    finally:
        if not ok:
            tb.dump_logs()
        if a.keep:
            print("kept %s" % tb.tmp)
        tb.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
