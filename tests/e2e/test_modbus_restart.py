#!/usr/bin/env python3
"""kill -9 of the gateway mid-transfer on a Modbus RTU bus loses nothing.

upbridged is a modbus-rtu master on its pty of upsim's RS-485 bus
(115,200 bit/s 8E1) with RTU_NODES `upnode --transport modbus-rtu`
slaves.  While the first pass goes to every node it is killed with
SIGKILL and started again on the same config and state directory: the
restarted daemon opens the same line again (a pty keeps the termios the
dead master left on it, and a request whose parity the pty cannot keep
was refused with EINVAL), probes the units, resumes the campaign, and
every node ends on the new version, with exactly one final record each
at the cloud and the package downloaded once.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

RTU_NODES = 4
SIZE = 48 * 1024
BAUD = 115200


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "modbus-restart",
                 keep=os.environ.get("MB_KEEP") == "1") as tb:
        run(tb)


def run(tb):
    tb.start_cloud()
    tb.genkey()
    tb.publish([], [])
    tb.start_air("rs485", RTU_NODES, baud=BAUD, fmt="8E1",
                 opts=["gap-chars=3.5"], seed=5)

    def link(nid):
        return ["--transport", "modbus-rtu",
                "--link-opt", "device=" + tb.air_path("n%d" % nid),
                "--link-opt", "unit=%d" % nid,
                "--link-opt", "baud=%d" % BAUD,
                "--seed", str(500 + nid)]
    tb.node_link = link
    tb.write_conf(transport=[
        "[transport.bus0]",
        "type = modbus-rtu",
        "device = %s" % tb.air_path("gw"),
        "baud = %d" % BAUD,
        "format = 8E1",
        "units = 1-%d" % RTU_NODES,
        "response_ms = 1000",
        "probe_s = 5",
    ], discover_interval_s=600, result_timeout_s=120)
    nodes = list(range(1, RTU_NODES + 1))
    for nid in nodes:
        tb.start_node(nid)
    tb.start_daemon()
    tb.wait_for(lambda: len(tb.upctl("nodes")) >= len(nodes), 120,
                "every node in the registry")

    url = tb.make_package("app-1.1.0.bin", SIZE, seed=31)
    pkg = tb.full("1.1.0", url)
    tb.publish_one("rollout-restart", pkg, target={"hw": ["sensor-v1"]})
    camps = tb.wait_for(lambda: tb.upctl("campaigns"), 60,
                        "the deployment's campaign")
    cid = str(camps[0]["id"])

    # Mid-pass: some node holds blocks, none holds them all.
    def under_way():
        gw = [e for e in tb.air_status()["endpoints"] if e["name"] == "gw"]
        return any("receiving" in tb.node_log(n) for n in nodes) and \
            gw[0]["tx_frames"] > 20
    tb.wait_for(under_way, 120, "the first pass to be under way")
    tb.log("killing upbridged with SIGKILL mid-transfer")
    tb.stop_daemon(signal.SIGKILL)
    with open(tb.daemon_log) as f:
        before = len(f.read())
    tb.start_daemon()

    def reopened():
        tb.check_daemon()
        with open(tb.daemon_log) as f:
            f.seek(before)
            text = f.read()
        if "cannot open" in text:
            raise Fail("the restarted daemon cannot open the bus:\n%s"
                       % "\n".join(l for l in text.splitlines()
                                   if "cannot open" in l))
        return "transport.bus0: modbus-rtu on" in text
    tb.wait_for(reopened, 30, "the restarted daemon to open the bus")
    tb.log("the restarted daemon opened %s again" % tb.air_path("gw"))

    tb.wait_for(lambda: all(tb.running(n).get("app") == "1.1.0"
                            for n in nodes), 300,
                "every node to run app 1.1.0", interval=0.5)

    def all_reported():
        keys = {r["node"] for r in tb.campaign_results(cid)
                if r.get("final")}
        return len(keys) >= len(nodes)
    tb.wait_for(all_reported, 120, "a final result per node at the cloud")
    time.sleep(3)       # anything reported twice would come by now
    finals = tb.check_exactly_once(cid)
    if len(finals) != len(nodes):
        raise Fail("final records for %d nodes, expected %d"
                   % (len(finals), len(nodes)))
    for key, r in finals.items():
        if r.get("state") != "updated" or r.get("to") != "1.1.0":
            raise Fail("%s: %s" % (key, r))
    got = tb.cloud_bytes(url)
    if got != SIZE:
        raise Fail("the cloud served %d bytes, expected one copy (%d)"
                   % (got, SIZE))
    st = tb.air_status()
    if st["collisions"] != 0:
        raise Fail("%d collisions on the bus" % st["collisions"])


if __name__ == "__main__":
    main_wrapper(scenario)
