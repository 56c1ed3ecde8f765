#!/usr/bin/env python3
"""A package over Modbus RTU and Modbus TCP, on real processes.

nginx is the cloud; upbridged downloads a signed package once and sends
it over two links: bus0, a modbus-rtu master on the gateway's pty of
upsim's RS-485 bus (115,200 bit/s 8E1: 11-bit characters, the
3.5-character silence, broadcast reaching every node, two talkers
colliding) with 16 `upnode --transport modbus-rtu` slaves on it, units
1-16; and mbtcp0, a modbus-tcp client of 4 `upnode --transport
modbus-tcp` servers on loopback, 2 served at once.  libmodbus on both
ends.  Every node verifies, activates, confirms, and the cloud gets one
final result per node, never two.

The data goes once by broadcast (unit 0, no reply, no response timeout
waited) to every RTU node; then each node's bitmap is polled and only
its missing blocks are written to it: the bus session's first pass is
one frame per block, its repairs a fraction of one more copy, where
unicast alone would write every block 16 times.

Faults and bad input, mid-transfer; each a clear error in the daemon's
log, the session resumes from the node's bitmap, nothing is lost and
nothing reported twice:
 - an RTU node loses power (--crash-at block:N) while the first pass
   goes to every node, and boots again: requests to it time out while
   it is off, and it resumes from its bitmap (its repair is only what
   it missed);
 - a TCP node hangs up its connection (link-opt hangup-after=N: a
   disconnect, the node keeps running): the gateway connects again on
   the member's next turn and the node resumes from its bitmap;
 - the bus loses LOSS % of what each endpoint hears (upsim's loss draw:
   CRC errors on both sides);
 - an RTU node refuses BUSY_PCT % of its FRAME writes with exception 6
   (busy), broadcasts included (link-opt busy-pct): the gateway takes
   busy as an answer (the node is alive), asks it again after a growing
   back-off and never writes it off for that (at 30 % a node once
   refused one STATUS_REQ three times in a row and was written off);
 - an RTU node answers WRONG_PCT % of requests as another unit id
   (link-opt answer-unit, answer-unit-pct): the gateway refuses those
   replies ("Response not from requested slave");
 - a second Modbus TCP client writes into a TCP node's registers
   outside the map and into the middle of its FRAME window while the
   gateway sends it the package: exception 2 each, nothing applied.

And the daemon answers `upctl status` promptly while the bus is busy:
every libmodbus call runs on a worker thread, never on the event loop.

Knobs (environment): MB_RTU_NODES, MB_TCP_NODES, MB_SIZE, MB_LOSS,
MB_BAUD.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, free_port, main_wrapper  # noqa: E402

RTU_NODES = int(os.environ.get("MB_RTU_NODES", "16"))
TCP_NODES = int(os.environ.get("MB_TCP_NODES", "4"))
SIZE = int(os.environ.get("MB_SIZE", str(24 * 1024)))
LOSS = float(os.environ.get("MB_LOSS", "1"))
BAUD = int(os.environ.get("MB_BAUD", "115200"))
TCP_BASE = 101                  # TCP node ids 101..
CRASH_NODE = 5                  # an RTU node that loses power
CRASH_BLOCK = 30
HANGUP_NODE = TCP_BASE + 1      # a TCP node that hangs up
HANGUP_AFTER = 25               # FRAME writes before it hangs up
BUSY_NODE = 9                   # refuses some FRAME writes: exception 6
BUSY_PCT = 30
WRONG_NODE = 12                 # answers some requests as another unit
WRONG_UNIT = 99
WRONG_PCT = 15
ODD_NODE = TCP_BASE + 2         # a second client writes outside its map
STATUS_MAX_S = 1.0              # upctl status answers within this


def scenario(bindir, srcdir):
    with Testbed(bindir, srcdir, "modbus-fanout",
                 keep=os.environ.get("MB_KEEP") == "1") as tb:
        run(tb)


def run(tb):
    tb.start_cloud()
    tb.genkey()
    tb.publish([], [])
    tb.start_air("rs485", RTU_NODES, baud=BAUD, fmt="8E1",
                 opts=["gap-chars=3.5"], loss=LOSS, seed=11)
    ports = {TCP_BASE + i: free_port() for i in range(TCP_NODES)}

    def link(nid):
        if nid >= TCP_BASE:
            a = ["--transport", "modbus-tcp",
                 "--link-opt", "listen=127.0.0.1:%d" % ports[nid]]
            if nid == HANGUP_NODE:
                a += ["--link-opt", "hangup-after=%d" % HANGUP_AFTER]
            return a
        return ["--transport", "modbus-rtu",
                "--link-opt", "device=" + tb.air_path("n%d" % nid),
                "--link-opt", "unit=%d" % nid,
                "--link-opt", "baud=%d" % BAUD,
                "--seed", str(1000 + nid)] + fault(nid)

    def fault(nid):
        if nid == BUSY_NODE:
            # -v: the node logs every request it refuses.
            return ["--link-opt", "busy-pct=%d" % BUSY_PCT, "-v"]
        if nid == WRONG_NODE:
            # -v: the node logs every reply it gives as another unit.
            return ["--link-opt", "answer-unit=%d" % WRONG_UNIT,
                    "--link-opt", "answer-unit-pct=%d" % WRONG_PCT, "-v"]
        return []
    tb.node_link = link
    tb.write_conf(transport=[
        "[transport.bus0]",
        "type = modbus-rtu",
        "device = %s" % tb.air_path("gw"),
        "baud = %d" % BAUD,
        "format = 8E1",
        "units = 1-%d" % RTU_NODES,
        # Long enough that a node process starved of CPU (a loaded
        # machine, the ASan build) still answers within it: a reply
        # after the timeout collides with the next request.
        "response_ms = 1000",
        "probe_s = 10",
        "",
        "[transport.mbtcp0]",
        "type = modbus-tcp",
        "peers = %s" % ", ".join("127.0.0.1:%d" % ports[n]
                                 for n in sorted(ports)),
        "max_peers = 2",
        "response_ms = 1000",
    ], discover_interval_s=600, result_timeout_s=120)
    # Debug: the plugin logs only a unit's first failure in a row at
    # info; each fault below must be found in the log whatever came
    # before it.
    with open(tb.conf) as f:
        conf = f.read()
    with open(tb.conf, "w") as f:
        f.write(conf.replace("log_level = info", "log_level = debug"))
    rtu = list(range(1, RTU_NODES + 1))
    tcp = sorted(ports)
    nodes = rtu + tcp
    for nid in nodes:
        extra = []
        if nid == CRASH_NODE:
            extra = ["--crash-at", "block:%d" % CRASH_BLOCK]
        tb.start_node(nid, extra=extra)
    tb.start_daemon()

    def registered():
        return len(tb.upctl("nodes")) >= len(nodes)
    tb.wait_for(registered, 120, "every node in the registry (probes, "
                "visits, ANNOUNCEs)")
    tb.log("registry: %d Modbus nodes (%d RTU, %d TCP)"
           % (len(nodes), len(rtu), len(tcp)))

    url = tb.make_package("app-1.1.0.bin", SIZE, seed=23)
    pkg = tb.full("1.1.0", url)
    t0 = time.time()
    sim0 = tb.air_status()["sim_ms"]
    tb.publish_one("rollout-modbus", pkg, target={"hw": ["sensor-v1"]})
    # A deployment without a policy is numbered campaign: its id.
    camps = tb.wait_for(lambda: tb.upctl("campaigns"), 60,
                        "the deployment's campaign")
    cid = str(camps[0]["id"])

    # The sessions as the daemon last showed them (they go when done).
    seen = {}

    def sample():
        r = tb.upctl("campaign", cid, check=False)
        if isinstance(r, dict):
            for s in r.get("sessions", []):
                seen[s["transport"]] = s

    # A second client writes outside the map of a TCP node that is
    # receiving the package: exception 2 each time, nothing applied.
    tb.wait_for(lambda: "receiving" in tb.node_log(ODD_NODE), 120,
                "node %d receiving" % ODD_NODE)
    for addr, what in ((0x0500, "outside the map"),
                       (0x0101, "the middle of FRAME"),
                       (0x0200, "the status block (read-only)")):
        ex = write_regs(ports[ODD_NODE], addr, [0x1234, 0x5678])
        if ex != 2:
            raise Fail("node %d: a write to 0x%04x (%s) got %s, expected "
                       "exception 2" % (ODD_NODE, addr, what, ex))
    tb.log("node %d refused 3 writes outside its map with exception 2 "
           "while receiving" % ODD_NODE)

    # Mid-transfer: the RTU node loses power and boots again; the
    # daemon answers status promptly while the bus carries the pass.
    slow = []
    crash = tb.nodes[CRASH_NODE]["proc"]
    end = time.time() + 300
    while crash.poll() is None:
        if time.time() > end:
            raise Fail("node %d never reached block %d"
                       % (CRASH_NODE, CRASH_BLOCK))
        t = time.time()
        tb.upctl("status")
        dt = time.time() - t
        slow.append(dt)
        if dt > STATUS_MAX_S:
            raise Fail("upctl status took %.2f s while the bus was busy"
                       % dt)
        tb.check_daemon()
        sample()
        time.sleep(0.1)
    if crash.returncode != 3:
        raise Fail("node %d exited %s, expected 3 (crash-at)"
                   % (CRASH_NODE, crash.returncode))
    busy = tb.air_status()
    gw = [e for e in busy["endpoints"] if e["name"] == "gw"][0]
    if gw["tx_frames"] < CRASH_BLOCK:
        raise Fail("the gateway had sent %d frames on the bus when node "
                   "%d crashed" % (gw["tx_frames"], CRASH_NODE))
    tb.log("node %d lost power after block %d (%d status calls meanwhile,"
           " slowest %.0f ms); booting it again"
           % (CRASH_NODE, CRASH_BLOCK, len(slow), 1000 * max(slow or [0])))
    # Off until the gateway has asked it something (after the pass to
    # all, which it does not answer): that request times out.
    def asked_off():
        with open(tb.daemon_log) as f:
            return any("transport.bus0: unit %d: " % CRASH_NODE in l and
                       "timed out" in l for l in f)
    tb.wait_for(asked_off, 60, "a request to node %d, off, to time out"
                % CRASH_NODE)
    tb.restart_node(CRASH_NODE)

    def all_updated():
        sample()
        return all(tb.running(n).get("app") == "1.1.0" for n in nodes)
    tb.wait_for(all_updated, 300, "every node to run app 1.1.0",
                interval=0.5)
    t_all = time.time() - t0
    st = tb.air_status()
    tb.log("all %d nodes run app 1.1.0 after %.1f s (bus: %.1f s "
           "simulated)" % (len(nodes), t_all, (st["sim_ms"] - sim0) / 1e3))

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
    want = open(os.path.join(tb.www, url), "rb").read()
    for n in nodes:
        if tb.active_image(n, SIZE) != want:
            raise Fail("node %d boots an image that is not the package"
                       % n)
    got = tb.cloud_bytes(url)
    if got != SIZE:
        raise Fail("the cloud served %d bytes, expected one copy (%d)"
                   % (got, SIZE))

    # Broadcast, then only what each node missed.
    bus = seen.get("bus0")
    if bus is None:
        raise Fail("never saw the bus session in upctl campaign")
    nb = bus["nblocks"]
    alone = bus["unicast_frames"]
    to_all = bus["data_frames"] - alone
    tb.log("bus session: %s shape, %d blocks; %d broadcast (%d of them "
           "again, by the repair plan), %d written to one node alone "
           "(unicast only: %d)" % (bus.get("shape"), nb, to_all,
                                   to_all - nb, alone, RTU_NODES * nb))
    if bus.get("shape") != "polled":
        raise Fail("the bus session's shape is %s, not polled"
                   % bus.get("shape"))
    if to_all < nb:
        raise Fail("%d broadcast block frames for %d blocks: not one "
                   "pass to every node" % (to_all, nb))
    # Then what nodes missed: the node that lost power up to the rest of
    # the pass, the others a few blocks each (loss, refusals), a node
    # that missed the pass altogether (a starved process) all of it: to
    # all again where that costs less line time than to each node alone
    # (engine/rplan.c; at no broadcast gap, every missed block), else to
    # the node.  A node starved of CPU through a pass costs a copy more
    # (seen: three copies in all under a load average of 10).  Unicast
    # alone is RTU_NODES copies; this stays far below half that.
    if to_all + alone >= RTU_NODES * nb // 2:
        raise Fail("%d block frames to all and %d to single nodes for %d "
                   "blocks: not just what the nodes missed"
                   % (to_all, alone, nb))

    # Resumed, not started over; each fault a clear error in the log.
    if "resum" not in tb.node_log(CRASH_NODE):
        raise Fail("node %d did not resume from its bitmap" % CRASH_NODE)
    log = tb.node_log(HANGUP_NODE)
    if "hung up" not in log:
        raise Fail("node %d never hung up" % HANGUP_NODE)
    with open(tb.daemon_log) as f:
        text = f.read()
    # The wrong-unit fault is drawn per reply: a short session may ask
    # node WRONG_NODE too few times for it to fire.  When it fired, the
    # gateway must have refused that reply by name.
    checks = [("a timeout", CRASH_NODE, "timed out")]
    # The loss draw garbles a byte of a frame: of a reply to the
    # gateway, most often a data byte (the CRC fails), sometimes its
    # unit, function or length (another error, or a timeout).  The
    # repair plan now broadcasts what nodes miss, so the gateway reads
    # few replies and at 1 % may see none garbled: the CRC error is
    # required once upsim garbled several replies to it.
    eps0 = {e["name"]: e for e in st["endpoints"]}
    if eps0["gw"]["rx_lost"] >= 3:
        checks.append(("a CRC error", None, "Invalid CRC"))
    else:
        tb.log("the line garbled %d replies to the gateway"
               % eps0["gw"]["rx_lost"])
    if "fault: answering" in tb.node_log(WRONG_NODE):
        checks.append(("another unit's answer", WRONG_NODE,
                       "not from requested"))
    else:
        tb.log("node %d's fault never fired (no reply drew it)"
               % WRONG_NODE)
    for what, unit, msg in checks:
        pre = "transport.bus0: unit %d: " % unit if unit else \
            "transport.bus0: unit "
        if not any(pre in l and msg in l for l in text.splitlines()):
            raise Fail("the daemon log names no %s (%r%s)" % (what, pre,
                                                               msg))
    # Exception 6: the node refused writes (broadcasts among them, never
    # answered: its bitmap tells); its unicast ones (STATUS_REQs, repair,
    # VERIFY: dozens at 30 %) the gateway names, and backs off from, and
    # the node updated above, not written off.
    if "exception 6" not in tb.node_log(BUSY_NODE):
        raise Fail("node %d refused no write with exception 6" % BUSY_NODE)
    pre = "transport.bus0: unit %d: " % BUSY_NODE
    if not any(pre in l and "busy" in l for l in text.splitlines()):
        raise Fail("the daemon log names no busy refusal of unit %d"
                   % BUSY_NODE)
    # The back-off itself is test_eng_shapes' (test_busy_backoff): here
    # the refused writes may all have been frames outside a turn.
    tb.log("node %d: %d busy refusals named by the gateway, %d back-offs"
           % (BUSY_NODE, sum(1 for l in text.splitlines()
                             if pre in l and "busy" in l),
              text.count("busy, asked again")))
    if "written off: busy" in text:
        raise Fail("a busy node was written off")
    if "lost its connection" not in text:
        raise Fail("the daemon log does not say node %d lost its "
                   "connection" % HANGUP_NODE)
    eps = {e["name"]: e for e in st["endpoints"]}
    gw = eps["gw"]
    lost = gw["rx_lost"] + sum(eps["n%d" % i]["rx_lost"] for i in rtu)
    tb.log("bus: gateway %d transmissions, %.1f s on the line, %d "
           "collisions; %d receptions garbled by the line"
           % (gw["tx_frames"], gw["airtime_us"] / 1e6, st["collisions"],
              lost))
    if LOSS > 0 and lost == 0:
        raise Fail("the bus garbled nothing at %g %% loss" % LOSS)
    # Two talkers at once.  The gateway must never talk over an answer
    # it still waits for; a node starved of CPU on a loaded machine can
    # answer after the gateway's response timeout, and its late answer
    # then meets the gateway's next request.  So each node's collisions
    # must be matched by as many timeouts the gateway logged for it.
    lines = text.splitlines()
    for i in rtu:
        c = eps["n%d" % i]["collisions"]
        if c == 0:
            continue
        pre = "transport.bus0: unit %d: " % i
        late = sum(1 for l in lines if pre in l and "timed out" in l)
        if c > late:
            raise Fail("node %d's frames collided %d times, with %d "
                       "timeouts of the gateway's to explain them: two "
                       "talkers at once" % (i, c, late))
        tb.log("node %d collided %d times, each after the gateway gave "
               "up on it (%d timeouts): a late answer" % (i, c, late))
    if gw["collisions"] > sum(eps["n%d" % i]["collisions"] for i in rtu):
        raise Fail("the gateway's frames collided %d times, more than "
                   "the nodes'" % gw["collisions"])
    tb.log("status while busy: %d calls, slowest %.0f ms"
           % (len(slow), 1000 * max(slow)))
    if "Traceback" in text:
        raise Fail("daemon log has a traceback")


def write_regs(port, addr, values, unit=1):
    """One FC 0x10 from a second Modbus TCP client; returns the
    exception code of the reply, 0 if the write was taken."""
    pdu = struct.pack(">BHHB", 0x10, addr, len(values), 2 * len(values))
    pdu += b"".join(struct.pack(">H", v) for v in values)
    adu = struct.pack(">HHHB", 0x4242, 0, len(pdu) + 1, unit) + pdu
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(adu)
        buf = b""
        while len(buf) < 9:
            chunk = s.recv(260)
            if not chunk:
                raise Fail("port %d closed without a reply" % port)
            buf += chunk
    tid, _, _, _, fc = struct.unpack(">HHHBB", buf[:8])
    if tid != 0x4242:
        raise Fail("reply to transaction %04x, sent 4242" % tid)
    return buf[8] if fc == 0x90 else 0


if __name__ == "__main__":
    main_wrapper(scenario)
