#!/usr/bin/env python3
"""Cut-through: the gateway multicasts while it downloads.

The cloud (nginx) sends the 24 MiB package at 4 MiB/s (limit_rate), a
slow WAN; the LAN is paced at 45 Mbit/s.  The manifest carries the
package's signed chunk list (1 MiB chunks), so the gateway may forward
every chunk it has verified while the rest still downloads.  Checked:

  - the first DATA frame leaves the gateway before the download is done
    (the session's data_frames > 0 while the log has no "downloaded and
    verified" line yet, and the daemon log's own timestamps agree);
  - VERIFY waits for the whole-file hash, every node verifies and
    activates, and the cloud served exactly one copy;
  - wall time (download start to every node verified) is below the
    download time plus one LAN pass: store-and-forward cannot do that.
"""

import datetime
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

NODES = 3
SIZE = 24 * 1024 * 1024 + 4321
RATE = "4m"                      # nginx limit_rate: 4 MiB/s
LAN_MBIT = 50
RATE_PCT = 90
BLOCK = 1400
# DATA frame on the wire: UP header + CRC (24) + UDP/IP (28) + Ethernet.
FRAME_WIRE = BLOCK + 24 + 28 + 14


def log_time(line):
    """The daemon log's timestamp ("2026-11-22 03:11:12.402 ...")."""
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ", line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")


def find_line(path, needle):
    with open(path) as f:
        for line in f:
            if needle in line:
                return line
    return None


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "cutthrough")
    tb.slot_size = 32 << 20
    try:
        cloud_sh = os.path.join(srcdir, "tests", "e2e", "cloud.sh")
        tb.run("sh", cloud_sh, "start", tb.cloud, str(tb.https_port), RATE)
        tb.cloud_started = True
        tb.log("cloud: nginx at %s/s on https://127.0.0.1:%d/cloud/"
               % (RATE, tb.https_port))
        tb.genkey()
        url = tb.make_package("app-2.0.0.bin", SIZE, seed=5)
        tb.publish(
            [{"id": "app-2.0.0", "component": "app", "version": "2.0.0",
              "hw": ["sensor-v1"], "kind": "full", "url": url}],
            [{"id": "ct", "packages": ["app-2.0.0"],
              "target": {"hw": ["sensor-v1"]}}])
        with open(os.path.join(tb.www, "manifest.json")) as f:
            if '"chunks"' not in f.read():
                raise Fail("upmanifest wrote no chunk list")
        tb.write_conf(rate_pct=RATE_PCT, block_size=BLOCK)
        with open(tb.conf) as f:
            conf = f.read()
        conf = conf.replace("bitrate_mbit = 100",
                            "bitrate_mbit = %d" % LAN_MBIT)
        conf = conf.replace("range_kib = 256", "range_kib = 1024")
        with open(tb.conf, "w") as f:
            f.write(conf)

        for nid in range(1, NODES + 1):
            tb.start_node(nid)
        tb.start_daemon()

        # Watch the campaign while the package downloads.
        t_first_data = None
        t_dl_done = None
        t_dl_start = None
        t_verified = None
        end = time.time() + 120
        while time.time() < end:
            tb.check_daemon()
            now = time.time()
            if t_dl_start is None and \
               find_line(tb.daemon_log, "queued for download"):
                t_dl_start = now
            if t_dl_done is None and \
               find_line(tb.daemon_log, "downloaded and verified"):
                t_dl_done = now
            r = tb.upctl("campaign", "1", check=False)
            if isinstance(r, dict):
                frames = sum(s.get("data_frames", 0)
                             for s in r.get("sessions", []))
                if t_first_data is None and frames > 0:
                    t_first_data = now
                    tb.log("first DATA out; download %s"
                           % ("done" if t_dl_done else "still running"))
                states = [n.get("state") for n in r.get("nodes", [])]
                if len(states) == NODES and t_verified is None and \
                   all(s in ("verified", "activating", "updated")
                       for s in states):
                    t_verified = now
                if len(states) == NODES and \
                   all(s == "updated" for s in states):
                    break
            time.sleep(0.1)
        else:
            raise Fail("the campaign did not finish within 120 s")
        if None in (t_dl_start, t_dl_done, t_first_data, t_verified):
            raise Fail("missing events: start %s, downloaded %s, first "
                       "data %s, verified %s" % (t_dl_start, t_dl_done,
                                                 t_first_data, t_verified))
        if t_first_data >= t_dl_done:
            raise Fail("the first DATA frame left %.2f s after the download"
                       " finished: no cut-through" % (t_first_data -
                                                      t_dl_done))

        # The daemon's own clock says the same.
        ct = find_line(tb.daemon_log, "cut-through: package")
        dl = find_line(tb.daemon_log, "downloaded and verified")
        if ct is None:
            raise Fail("no cut-through line in the daemon log")
        t_ct, t_dl = log_time(ct), log_time(dl)
        if t_ct is not None and t_dl is not None:
            lead = (t_dl - t_ct).total_seconds()
            tb.log("daemon log: sessions started %.2f s before the "
                   "download completed" % lead)
            if lead <= 0:
                raise Fail("sessions started after the download: %s%s"
                           % (ct, dl))

        dl_s = t_dl_done - t_dl_start
        nblocks = (SIZE + BLOCK - 1) // BLOCK
        lan_s = nblocks * FRAME_WIRE * 8 / (LAN_MBIT * 1e6 * RATE_PCT / 100)
        wall = t_verified - t_dl_start
        tb.log("download %.2f s, one LAN pass %.2f s, every node verified "
               "%.2f s after the download began (store-and-forward: >= "
               "%.2f s)" % (dl_s, lan_s, wall, dl_s + lan_s))
        if wall >= dl_s + lan_s:
            raise Fail("wall %.2f s is not below download + LAN pass "
                       "%.2f s" % (wall, dl_s + lan_s))

        for nid in range(1, NODES + 1):
            if tb.running(nid).get("app") != "2.0.0":
                raise Fail("node %d runs %s" % (nid, tb.running(nid)))
            img = tb.active_image(nid, SIZE)
            with open(os.path.join(tb.www, url), "rb") as f:
                if img != f.read():
                    raise Fail("node %d's image differs from the package"
                               % nid)
        got = tb.cloud_bytes(url)
        if got != SIZE:
            raise Fail("the cloud served %d bytes, expected one copy (%d)"
                       % (got, SIZE))
        tb.log("all %d nodes run app 2.0.0; the cloud served one copy"
               % NODES)
        # VERIFY came after the whole-file hash: no node was asked before.
        tb.stop_daemon()
    except Exception:
        tb.dump_logs()
        raise
    finally:
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
