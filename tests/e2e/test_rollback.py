#!/usr/bin/env python3
"""Anti-rollback on real nodes (docs/up-protocol.md §5.4, issue 7).

Two upnode processes, the real daemon, nginx as the cloud.

1. app 1.0.0 -> 1.1.0 (security version 1).  A listener on the multicast
   group records the session, as anyone on the LAN could.
2. app 1.1.0 -> 2.0.0 (security version 2); node 2 loses power right
   after its boot record says "boot the new slot once" (--crash-at
   activate) and is powered up again: it confirms 2.0.0.
3. With the gateway stopped, the recorded OFFER and DATA of the 1.1.0
   session are replayed: both nodes decline `downgrade' (code 20), and
   their flash, package area and saved state are byte for byte what they
   were: nothing erased, written or saved.
4. A signed downgrade below the floor (app 1.4.0, allow_downgrade,
   security version 1) is declined `downgrade' and reported upstream so.
5. A signed downgrade at the floor (app 1.5.0, allow_downgrade, security
   version 2): node 2 loses power in the middle of the transfer
   (--crash-at block:20); powered up again, with the gateway stopped, it
   refuses the replayed 1.1.0 session while holding the partial 1.5.0
   one untouched; the gateway comes back and both nodes run 1.5.0.
"""

import hashlib
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 200 * 1024
NODES = (1, 2)
T_OFFER, T_ACCEPT, T_DATA = 0x03, 0x04, 0x05
R_DOWNGRADE = 20


class Recorder:
    """Joins the group and keeps every UP frame a gateway multicasts."""

    def __init__(self, group, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((group, port))
        mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.s.settimeout(0.2)
        self.frames = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                b, _ = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(b) >= 14 and b[0] == 1:
                self.frames.append(b)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()


def up_str(b, off):
    n = b[off]
    return b[off + 1:off + 1 + n].decode(), off + 1 + n


def offer_of(frame):
    """(session, component, to_version) of an OFFER frame."""
    session = struct.unpack_from("<I", frame, 4)[0]
    off = 10
    comp, off = up_str(frame, off)
    nhw = frame[off]
    off += 1
    for _ in range(nhw):
        _, off = up_str(frame, off)
    _, off = up_str(frame, off)            # from_version
    to, off = up_str(frame, off)
    return session, comp, to


def session_stream(frames, component, version):
    """The first OFFER of component/version and the DATA of its session."""
    offer = None
    for f in frames:
        if f[1] == T_OFFER and offer_of(f)[1:] == (component, version):
            offer = f
            break
    if offer is None:
        raise Fail("no OFFER for %s %s was recorded" % (component, version))
    sess = offer[4:8]
    data = {}
    for f in frames:
        if f[1] == T_DATA and f[4:8] == sess:
            data.setdefault(struct.unpack_from("<I", f, 10)[0], f)
    return offer, [data[i] for i in sorted(data)]


def replay(tb, offer, data, want_nodes):
    """Sends the recorded stream to the group as a rogue host would and
    returns {node_id: ACCEPT code} of the answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                 socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    dst = (tb.group, tb.mport)
    codes = {}
    s.settimeout(0.05)
    end = time.time() + 10
    while time.time() < end and not want_nodes <= set(codes):
        s.sendto(offer, dst)
        for d in data:
            s.sendto(d, dst)
        t = time.time() + 0.5
        while time.time() < t:
            try:
                b, _ = s.recvfrom(2048)
            except socket.timeout:
                continue
            if len(b) >= 23 and b[0] == 1 and b[1] == T_ACCEPT:
                nid, code = struct.unpack_from("<QB", b, 10)
                codes[nid] = code
    s.close()
    return codes


def node_files(tb, nid):
    """SHA-256 of the node's flash, package area and saved state."""
    d = tb.nodes[nid]["dir"]
    out = {}
    for name in ("flash.img", "pkg.bin", "state.bin", "boot.rec"):
        h = hashlib.sha256()
        with open(os.path.join(d, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[name] = h.hexdigest()
    return out


def stop_node(tb, nid):
    p = tb.nodes[nid]["proc"]
    p.send_signal(signal.SIGTERM)
    p.wait(10)


def wait_version(tb, version, nodes, timeout):
    tb.wait_for(lambda: all(tb.running(n).get("app") == version
                            for n in nodes), timeout,
                "nodes %s to run app %s" % (list(nodes), version))


def pkg(tb, version, sv, seed, downgrade=False):
    url = tb.make_package("app-%s.bin" % version, SIZE, seed=seed)
    p = {"id": "app-%s" % version, "component": "app",
         "version": version, "hw": ["sensor-v1"], "kind": "full",
         "url": url, "security_version": sv}
    if downgrade:
        p["allow_downgrade"] = True
    return p


def deploy(tb, p, dep):
    tb.publish([p], [{"id": dep, "packages": [p["id"]],
                      "target": {"hw": ["sensor-v1"]}}])


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "rollback")
    rec = None
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        tb.write_conf()
        for nid in NODES:
            tb.start_node(nid)

        # 1. 1.0.0 -> 1.1.0 (security version 1), recorded.
        rec = Recorder(tb.group, tb.mport)
        deploy(tb, pkg(tb, "1.1.0", 1, seed=11), "d-1.1.0")
        tb.start_daemon()
        wait_version(tb, "1.1.0", NODES, 120)
        rec.close()
        offer, data = session_stream(rec.frames, "app", "1.1.0")
        tb.log("recorded the 1.1.0 session: OFFER and %d DATA frames"
               % len(data))
        if len(data) < 100:
            raise Fail("only %d DATA frames recorded" % len(data))

        # 2. 1.1.0 -> 2.0.0 (security version 2); node 2 loses power
        # after its boot record says "try the new slot once".
        stop_node(tb, 2)
        tb.restart_node(2, extra=("--crash-at", "activate"))
        deploy(tb, pkg(tb, "2.0.0", 2, seed=20), "d-2.0.0")
        wait_version(tb, "2.0.0", (1,), 120)
        tb.wait_for(lambda: tb.nodes[2]["proc"].poll() is not None, 60,
                    "node 2's power cut at activate")
        if tb.nodes[2]["proc"].returncode != 3:
            raise Fail("node 2 exited %s, not at its crash point"
                       % tb.nodes[2]["proc"].returncode)
        tb.restart_node(2)
        wait_version(tb, "2.0.0", NODES, 60)
        tb.log("both nodes run 2.0.0 (node 2 through a power cut)")

        # 3. The replay, with the gateway stopped.
        if tb.stop_daemon() != 0:
            raise Fail("upbridged did not stop cleanly")
        time.sleep(1.5)     # a last save timer, then quiet files
        before = {n: node_files(tb, n) for n in NODES}
        codes = replay(tb, offer, data, set(NODES))
        if codes != {n: R_DOWNGRADE for n in NODES}:
            raise Fail("replayed 1.1.0 answered %s, not downgrade (20)"
                       % codes)
        time.sleep(1.5)
        for n in NODES:
            if node_files(tb, n) != before[n]:
                raise Fail("node %d changed its files after the replay"
                           % n)
            if tb.running(n).get("app") != "2.0.0":
                raise Fail("node %d runs %s" % (n, tb.running(n)))
            with open(tb.nodes[n]["log"]) as f:
                if "declined app 1.1.0: downgrade" not in f.read():
                    raise Fail("node %d did not log the decline" % n)
        tb.log("replayed 1.1.0 session declined 'downgrade'; flash, "
               "package area and state untouched")

        # 4. A signed downgrade below the floor: declined, reported so.
        deploy(tb, pkg(tb, "1.4.0", 1, seed=14, downgrade=True),
               "d-1.4.0")
        tb.start_daemon()

        def declined():
            rs = [r for r in tb.results() if r.get("to") == "1.4.0"]
            return len(rs) >= len(NODES) and rs
        rs = tb.wait_for(declined, 60, "the 1.4.0 results upstream")
        for r in rs:
            if r.get("result") != R_DOWNGRADE or \
                    r.get("result_str") != "downgrade":
                raise Fail("1.4.0 reported %s, not downgrade" % r)
        for n in NODES:
            if tb.running(n).get("app") != "2.0.0":
                raise Fail("node %d runs %s after 1.4.0" % (n,
                           tb.running(n)))
        tb.log("signed downgrade below the floor declined, reported "
               "'downgrade'")

        # 5. A signed downgrade at the floor, node 2 cut mid-transfer.
        stop_node(tb, 2)
        tb.restart_node(2, extra=("--crash-at", "block:20"))
        deploy(tb, pkg(tb, "1.5.0", 2, seed=15, downgrade=True),
               "d-1.5.0")
        wait_version(tb, "1.5.0", (1,), 120)
        tb.wait_for(lambda: tb.nodes[2]["proc"].poll() is not None, 60,
                    "node 2's power cut at block 20")
        if tb.stop_daemon() != 0:
            raise Fail("upbridged did not stop cleanly")
        tb.restart_node(2)
        time.sleep(2)
        before = node_files(tb, 2)
        codes = replay(tb, offer, data, {2})
        if codes.get(2) != R_DOWNGRADE:
            raise Fail("node 2, cut mid-update, answered the replay %s"
                       % codes)
        time.sleep(1.5)
        if node_files(tb, 2) != before:
            raise Fail("node 2 changed its files after the replay")
        tb.log("node 2, cut in the middle of 1.5.0, refuses the replayed "
               "1.1.0 and keeps its partial transfer")
        tb.start_daemon()
        wait_version(tb, "1.5.0", NODES, 120)
        tb.log("signed downgrade to 1.5.0 installed on both nodes")
        if tb.stop_daemon() != 0:
            raise Fail("upbridged did not stop cleanly")
        ok = True
    finally:
        if rec is not None:
            rec.close()
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
