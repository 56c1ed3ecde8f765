#!/usr/bin/env python3
"""kill -9 right after a download's first range keeps that range.

Issue 7: a kill in the first second of a download threw the partial file
away (its cache row was still in the daemon's open transaction) and the
download started again from byte 0.  Here the cloud is
tests/e2e/cutcloud.py, a real HTTPS server that logs every Range: it
answers the package's first range, stalls the second, answers the rest.
The daemon commits every 60 s, so the kill surely comes before the
commit.  The gateway is killed (SIGKILL) once the second range is asked
for, and started again on the same state directory:

  - its first request for the package after the restart starts where the
    first range ended (bytes=262144-), not at 0;
  - the cloud sent each byte of the package exactly once;
  - the node ends on the new version.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SIZE = 2 * 1024 * 1024 + 777
RANGE = 256 * 1024


def package_gets(log):
    """(range start, bytes sent, step) of every GET of app.bin, in
    the order they were logged."""
    out = []
    try:
        with open(log) as f:
            for line in f:
                p = line.split()
                if len(p) != 8 or p[2] != "GET" or \
                        not p[3].endswith("/app-1.2.0.bin"):
                    continue
                first = 0
                if p[6].startswith("bytes="):
                    first = int(p[6][6:].split("-")[0])
                out.append((first, int(p[5]), p[7]))
    except FileNotFoundError:
        pass
    return out


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "dlkill")
    cut = None
    ok = False
    try:
        # cloud.sh makes the CA and the server certificate; the server
        # itself is cutcloud.py on the same port.
        cloud_sh = os.path.join(srcdir, "tests", "e2e", "cloud.sh")
        tb.run("sh", cloud_sh, "start", tb.cloud, str(tb.https_port))
        tb.run("sh", cloud_sh, "stop", tb.cloud)
        log = os.path.join(tb.tmp, "cutcloud.log")
        cut = subprocess.Popen(
            [sys.executable,
             os.path.join(srcdir, "tests", "e2e", "cutcloud.py"),
             "--root", tb.www, "--port", str(tb.https_port),
             "--cert", os.path.join(tb.cloud, "server.pem"),
             "--key", os.path.join(tb.cloud, "server.key"),
             "--log", log, "--match", "app-1.2.0.bin",
             "--script", "full,stall,full"],
            stdout=subprocess.DEVNULL)
        tb.genkey()
        url = tb.make_package("app-1.2.0.bin", SIZE, seed=5)
        tb.publish(
            [{"id": "app-1.2.0", "component": "app", "version": "1.2.0",
              "hw": [], "kind": "full", "url": url}],
            [{"id": "all", "packages": ["app-1.2.0"], "target": {}}])
        tb.write_conf()
        with open(tb.conf) as f:
            conf = f.read().replace("commit_interval_ms = 500",
                                    "commit_interval_ms = 60000")
        with open(tb.conf, "w") as f:
            f.write(conf)
        tb.start_node(1)
        tb.start_daemon()

        tb.wait_for(lambda: any(g[2] == "stall"
                                for g in package_gets(log)), 60,
                    "the second range to be asked for")
        tb.log("killing upbridged with SIGKILL after the first range")
        tb.stop_daemon(signal.SIGKILL)
        before = package_gets(log)
        if before[0] != (0, RANGE, "full"):
            raise Fail("first range: %s" % (before,))
        time.sleep(0.5)
        tb.start_daemon()
        tb.wait_for(lambda: len(package_gets(log)) > len(before), 60,
                    "the download to go on after the restart")
        after = package_gets(log)[len(before)]
        tb.log("first GET after the restart: bytes=%d-" % after[0])
        if after[0] != RANGE:
            raise Fail("the download restarted at byte %d, not at %d "
                       "where the kept range ends" % (after[0], RANGE))
        tb.wait_for(lambda: tb.running(1).get("app") == "1.2.0", 120,
                    "the node to run 1.2.0")
        sent = sum(g[1] for g in package_gets(log))
        tb.log("package bytes served %d for %d" % (sent, SIZE))
        if sent != SIZE:
            raise Fail("the cloud sent %d bytes for a %d-byte package"
                       % (sent, SIZE))
        if "kept (" not in open(tb.daemon_log).read():
            raise Fail("the daemon log does not say the partial was kept")
        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d" % rc)
        ok = True
    finally:
        if cut is not None:
            cut.send_signal(signal.SIGTERM)
            cut.wait(10)
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
