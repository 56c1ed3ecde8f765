#!/usr/bin/env python3
"""kill -9 of the daemon during a stage's soak and during a dependency
wait resumes the rollouts where they were (issue 4), and the task
policy modes download-only and install-at.

One daemon, four rollouts on one LAN, each on its own hardware model so
their sessions never compete for a node:

- "soak" (sensor-v1, nodes 1-3): a canary (node 1, soak 10 s), then the
  rest.  Once the cloud has the canary's result, and before the second
  stage starts, the daemon is killed with SIGKILL and started again on
  the same state directory.  The second stage then starts by itself.
- "dl" (dl-v1, node 21): download-only.  The node stops at VERIFIED: it
  still runs 1.0.0, the cloud's record says "verified" and the item is
  "downloaded".
- "at" (at-v1, node 31): install-at, about 30 s after the start.  The
  node is held at VERIFIED until then (it survives the first kill -9
  held) and activates at that time, not before.
- "deps" (combo-v1, node 11, modem 1.4.0 + app 2.0.0, app 3.x requires
  modem >= 1.5), published after the first restart.  While the modem
  is activating (the app waits for it), the daemon is killed with
  SIGKILL again and started again.

Checked against what the cloud received: exactly one result per node and
component, the canary never offered again (its upnode log shows one
session and one slot switch for app 1.1.0), the soak stage passes and
the next starts after the restart, the modem confirms before the app is
offered, and every rollout ends "done".
"""

import datetime
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Testbed, Fail, main_wrapper  # noqa: E402

SOAK = 10           # seconds the canary stage soaks
AT_DELAY = 30       # install-at, seconds after the first publish


def rfc3339(t):
    return datetime.datetime.fromtimestamp(
        int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_of(r):
    return datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def node_log(tb, nid):
    with open(tb.nodes[nid]["log"]) as f:
        return f.read()


def nodes_known(tb):
    r = tb.run(tb.bin("upctl"), "-s", tb.sock, "--json", "nodes",
               check=False)
    return r.stdout.count('"hw"')


def one_per_item(tb, cid, want):
    """want: {(node hex, component)}; exactly one result each."""
    per = {}
    for r in tb.campaign_results(cid):
        per.setdefault((r["node"], r["component"]), []).append(r)
    if set(per) != want:
        raise Fail("%s: results for %s, want %s" % (cid, sorted(per),
                                                    sorted(want)))
    for k, rs in per.items():
        if len(rs) != 1:
            raise Fail("%s: %d results for %s: %s" % (cid, len(rs), k, rs))
    return {k: rs[0] for k, rs in per.items()}


def scenario(bindir, srcdir):
    tb = Testbed(bindir, srcdir, "crestart",
                 keep=bool(os.environ.get("UB_E2E_KEEP")))
    ok = False
    try:
        tb.start_cloud()
        tb.genkey()
        url_s = tb.make_package("app-1.1.0.bin", 64 * 1024 + 3, 51)
        url_d = tb.make_package("dl-1.1.0.bin", 40 * 1024 + 1, 52)
        url_t = tb.make_package("at-1.1.0.bin", 40 * 1024 + 5, 53)
        url_m = tb.make_package("modem-1.5.0.bin", 48 * 1024 + 5, 54)
        url_a = tb.make_package("capp-3.0.0.bin", 56 * 1024 + 9, 55)
        # The modem's activation takes a while: the window for kill -9.
        tb.write_conf(activate_delay_ms=2500)
        for nid in (1, 2, 3):
            tb.start_node(nid)
        tb.start_node(21, hw="dl-v1")
        tb.start_node(31, hw="at-v1")
        tb.start_node(11, hw="combo-v1", comps=(("modem", "1.4.0"),
                                                ("app", "2.0.0")))
        # The canary must be known when the manifest is planned.
        tb.publish([], [])
        tb.start_daemon()
        tb.wait_for(lambda: nodes_known(tb) >= 6, 20,
                    "the six nodes to announce")
        at = time.time() + AT_DELAY
        pkgs = [
            {"id": "app-1.1.0", "component": "app", "version": "1.1.0",
             "hw": ["sensor-v1"], "kind": "full", "url": url_s},
            {"id": "dl-1.1.0", "component": "app", "version": "1.1.0",
             "hw": ["dl-v1"], "kind": "full", "url": url_d},
            {"id": "at-1.1.0", "component": "app", "version": "1.1.0",
             "hw": ["at-v1"], "kind": "full", "url": url_t}]
        deps = [
            {"id": "soak", "packages": ["app-1.1.0"],
             "target": {"hw": ["sensor-v1"]},
             "policy": {"stages": [
                 {"name": "canary", "nodes": ["0x1"], "success": 100,
                  "failure": 0, "soak": "%ds" % SOAK},
                 {"name": "rest", "rest": True, "success": 100,
                  "failure": 50}]}},
            {"id": "dl", "packages": ["dl-1.1.0"],
             "target": {"hw": ["dl-v1"]},
             "policy": {"mode": "download-only"}},
            {"id": "at", "packages": ["at-1.1.0"],
             "target": {"hw": ["at-v1"]},
             "policy": {"mode": "install-at", "install_at": rfc3339(at)}}]
        tb.publish(pkgs, deps)

        # -- kill -9 during the canary's soak -------------------------
        c1 = tb.node_hex(1)
        tb.wait_for(lambda: tb.campaign_results("soak"), 40,
                    "the canary's result")
        ev = [(e["event"], e.get("stage"))
              for e in tb.campaign_events("soak")]
        v = tb.upctl("campaign", "soak")
        st = v.get("stages", [])
        if len(st) != 2 or st[1].get("state") != "pending":
            raise Fail("the rest stage is not pending at the kill: %s"
                       % st)
        if any(e == "stage-started" and s == "rest" for e, s in ev):
            raise Fail("the rest stage started before the kill: %s" % ev)
        if any(r["node"] != c1 for r in tb.campaign_results("soak")):
            raise Fail("a non-canary result before the soak ended")
        tb.stop_daemon(signal.SIGKILL)
        t_kill1 = time.time()
        tb.log("gateway: killed -9 during the canary's soak (%s)"
               % st[0].get("state"))
        tb.start_daemon()

        # -- a dependency wait: modem then app, kill -9 in between -------
        pkgs += [
            {"id": "modem-1.5.0", "component": "modem", "version": "1.5.0",
             "hw": ["combo-v1"], "kind": "full", "url": url_m},
            {"id": "capp-3.0.0", "component": "app", "version": "3.0.0",
             "hw": ["combo-v1"], "kind": "full", "url": url_a}]
        deps.append(
            {"id": "deps", "packages": ["capp-3.0.0", "modem-1.5.0"],
             "target": {"hw": ["combo-v1"]},
             "policy": {"requires": [
                 {"component": "app", "version": "3.x",
                  "requires": "modem", "range": ">=1.5"}]}})
        tb.publish(pkgs, deps)
        tb.wait_for(lambda: "-> activating" in node_log(tb, 11), 40,
                    "node 11's modem to activate")
        text = node_log(tb, 11)
        if "app 3.0.0" in text:
            raise Fail("node 11 was offered the app before the modem "
                       "confirmed:\n%s" % text[-1500:])
        v = tb.upctl("campaign", "deps")
        waits = [i.get("wait", "") for i in v.get("items", [])
                 if i.get("component") == "app"]
        tb.stop_daemon(signal.SIGKILL)
        tb.log("gateway: killed -9 while the modem activates; the app "
               "waits: %s" % waits)
        tb.start_daemon()

        # -- everything ends ----------------------------------------------
        for cid in ("soak", "deps", "dl", "at"):
            tb.wait_event(cid, "done", max(10, at - time.time() + 30),
                          "rollout %s to be done" % cid)
        time.sleep(1.5)     # a duplicate would arrive within a report

        # soak: one result per node, the canary first and only once.
        res = one_per_item(tb, "soak", {(tb.node_hex(n), "app")
                                        for n in (1, 2, 3)})
        for (node, _), r in res.items():
            if r["state"] != "updated" or r["item_state"] != "succeeded":
                raise Fail("soak: %s: %s" % (node, r))
        canary = res[(c1, "app")]
        for n in (2, 3):
            r = res[(tb.node_hex(n), "app")]
            if r["stage"] != "rest" or r["seq"] < canary["seq"] or \
               ts_of(r) < t_kill1 - 1:
                raise Fail("soak: node %d updated before the soak "
                           "ended: %s" % (n, r))
        text = node_log(tb, 1)
        nrecv = text.count("-> receiving")
        nswitch = text.count("switching to app 1.1.0")
        if nrecv != 1 or nswitch != 1:
            raise Fail("canary: %d sessions, %d switches to 1.1.0:\n%s"
                       % (nrecv, nswitch, text[-2000:]))
        ev = [(e["event"], e.get("stage"))
              for e in tb.campaign_events("soak")]
        tb.log("soak events: %s" % ev)
        names = [e for e, _ in ev]
        if names.count("stage-passed") < 1 or \
           ("stage-started", "rest") not in ev or \
           ev.index(("stage-started", "rest")) < names.index(
               "stage-passed"):
            raise Fail("soak events %s" % ev)
        for n in (1, 2, 3):
            if tb.running(n).get("app") != "1.1.0":
                raise Fail("node %d runs %s" % (n, tb.running(n)))

        # deps: the modem confirmed before the app was offered.
        res = one_per_item(tb, "deps", {(tb.node_hex(11), "modem"),
                                        (tb.node_hex(11), "app")})
        m, a = res[(tb.node_hex(11), "modem")], res[(tb.node_hex(11),
                                                     "app")]
        if m["state"] != "updated" or a["state"] != "updated" or \
           m["seq"] > a["seq"]:
            raise Fail("deps: modem %s, app %s" % (m, a))
        text = node_log(tb, 11)
        ic = text.find("runs modem=1.5.0")
        io = text.find("app 3.0.0")
        if ic < 0 or io < 0 or io < ic or \
           text.count("switching to modem 1.5.0") != 1:
            raise Fail("node 11: modem confirmed at %d, app first "
                       "seen at %d:\n%s" % (ic, io, text[-2500:]))
        run = tb.running(11)
        if run.get("modem") != "1.5.0" or run.get("app") != "3.0.0":
            raise Fail("node 11 runs %s" % run)

        # download-only: stopped at VERIFIED, still runs 1.0.0.
        r = one_per_item(tb, "dl", {(tb.node_hex(21), "app")})
        r = r[(tb.node_hex(21), "app")]
        if r["state"] != "verified" or r["item_state"] != "downloaded":
            raise Fail("dl: %s" % r)
        if tb.running(21).get("app") != "1.0.0" or \
           "switching to" in node_log(tb, 21):
            raise Fail("dl: node 21 runs %s" % tb.running(21))

        # install-at: activated at the given time, not before.
        r = one_per_item(tb, "at", {(tb.node_hex(31), "app")})
        r = r[(tb.node_hex(31), "app")]
        if r["state"] != "updated" or r["item_state"] != "succeeded" or \
           ts_of(r) < int(at):
            raise Fail("at: finished %s, install_at %s: %s"
                       % (r.get("ts"), rfc3339(at), r))
        if tb.running(31).get("app") != "1.1.0":
            raise Fail("at: node 31 runs %s" % tb.running(31))

        rc = tb.stop_daemon()
        if rc != 0:
            raise Fail("upbridged exited %d on SIGTERM" % rc)
        ok = True
    finally:
        if not ok:
            tb.dump_logs()
        tb.close()


if __name__ == "__main__":
    main_wrapper(scenario)
