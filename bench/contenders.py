"""contenders.py: the five ways bench/race moves one package to N nodes.

Each contender is a function (ctx, rundir, meter) -> dict.  It starts its
receivers first (untimed: a node waits for updates before the update
exists), then calls meter.start() at t0, the moment the package is known
to be available in the cloud, and meter.stop() when every node holds a
verified copy or the contender's timeout passed.  It returns per-node
completion times (seconds after t0, None for a node that never got there)
and the CPU seconds of the processes it ran on the gateway and the nodes.

"Verified copy": for upbridge, the node's DIR/running shows the new
version (upnode switches only after SHA-256 + Ed25519 verification, then
activates and boots it); for the others, sha256sum run on the node over the
received file printed the package's hash (the time includes that check).
"""

import json
import os
import random
import shlex
import signal
import subprocess
import time

import racebed
from racebed import LAN_GW, Proc, node_ip

POLL_S = 0.05


class Meter:
    """Snapshots of the link counters and CPU at t0 and at the end."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.t0 = None
        self.t1 = None

    def start(self):
        self.c0 = self.ctx.bed.counters()
        self.cpu0 = racebed.cpu_jiffies()
        self.cloud0 = self.ctx.cloud.worker_cpu_s()
        self.loss0 = self.ctx.bed.loss_counts() if self.ctx.loss_pct else []
        self.t0 = time.monotonic()
        return self.t0

    def stop(self):
        self.t1 = time.monotonic()
        self.c1 = self.ctx.bed.counters()
        self.cpu1 = racebed.cpu_jiffies()
        self.cloud1 = self.ctx.cloud.worker_cpu_s()
        self.loss1 = self.ctx.bed.loss_counts() if self.ctx.loss_pct else []

    def result(self):
        d = racebed.Netbed.diff(self.c0, self.c1)
        busy = self.cpu1[0] - self.cpu0[0]
        total = max(1, self.cpu1[1] - self.cpu0[1])
        hz = os.sysconf("SC_CLK_TCK")
        out = {
            "wan_bytes": d["wan_down"]["bytes"],
            "wan_pkts": d["wan_down"]["packets"],
            "wan_up_bytes": d["wan_up"]["bytes"],
            "lan_bytes": d["lan"]["bytes"],
            "lan_pkts": d["lan"]["packets"],
            "lan_tbf_drops": d["lan"]["drops"],
            "wan_tbf_drops": d["wan_down"]["drops"] + d["wan_up"]["drops"],
            "cpu_busy_pct": round(100.0 * busy / total, 1),
            "cpu_all_s": round(busy / hz, 2),
            "cpu_cloud_s": round(self.cloud1 - self.cloud0, 2),
        }
        if self.loss0:
            out["loss_drops"] = sum(self.loss1) - sum(self.loss0)
        return out


def wait_nodes(ctx, meter, done_at, check, timeout):
    """Polls check(i) -> bool for every node not done yet, until all are
    done or timeout; fills done_at[i] with seconds after t0."""
    end = meter.t0 + timeout
    while True:
        now = time.monotonic()
        for i in range(1, ctx.nodes + 1):
            if done_at[i] is None and check(i):
                done_at[i] = now - meter.t0
        if all(v is not None for v in done_at.values()):
            return True
        if now > end:
            return False
        time.sleep(POLL_S)


def stop_all(procs, sig=signal.SIGTERM):
    for p in procs:          # signal all first, so they stop in parallel
        if p.poll() is None:
            p._signal(sig)
    for p in procs:
        p.stop(sig)


def node_argv(ctx, argv):
    """A node's command line: under SCHED_BATCH with --node-sched batch
    (every contender's nodes alike; docs/benchmarks.md, "Node
    scheduling")."""
    if getattr(ctx, "node_sched", "normal") == "batch":
        return ["chrt", "--batch", "0"] + list(argv)
    return list(argv)


def sha_ok(path, want):
    try:
        with open(path) as f:
            return f.read().split()[0:1] == [want]
    except (OSError, IndexError):
        return False


def curl_argv(ctx, out):
    return ["curl", "-sS", "--fail", "--cacert", ctx.cloud.ca, "-o", out,
            ctx.cloud.url(ctx.pkg_rel)]


def gw_download(ctx, rundir, meter, out):
    """The gateway's one download (uftp, udpcast).  Returns (proc,
    seconds) or raises on failure."""
    p = Proc(ctx.bed.gw, curl_argv(ctx, out),
             os.path.join(rundir, "gw-curl.log"), t0=meter.t0)
    rc = p.wait(ctx.timeout)
    if rc is None:
        p.stop()
        raise ContenderError("gateway download did not finish in %.0f s"
                             % ctx.timeout)
    if rc != 0:
        raise ContenderError("gateway download failed (curl exit %d)" % rc)
    return p, p.end - meter.t0


class ContenderError(Exception):
    pass


def finish(ctx, meter, done_at, gw_procs, node_procs, extra=None):
    meter.stop()
    stop_all(gw_procs + node_procs)
    times = [done_at[i] for i in range(1, ctx.nodes + 1)]
    ok = [t for t in times if t is not None]
    r = {
        "verified_nodes": len(ok),
        "stalled": len(ok) < ctx.nodes,
        "wall_s": round(max(ok), 3) if len(ok) == ctx.nodes else None,
        "node_first_s": round(min(ok), 3) if ok else None,
        "node_median_s": round(sorted(ok)[len(ok) // 2], 3) if ok else None,
        "cpu_gw_s": round(sum(p.cpu_s for p in gw_procs), 2),
        "cpu_nodes_s": round(sum(p.cpu_s for p in node_procs), 2),
    }
    r.update(meter.result())
    if extra:
        r.update(extra)
    return r


# ---------------------------------------------------------------- direct
def run_direct(ctx, rundir, meter):
    """Every node fetches the package from the cloud at once."""
    procs = []
    meter.start()
    for i, ns in enumerate(ctx.bed.nodes, 1):
        d = os.path.join(rundir, "n%d" % i)
        os.makedirs(d)
        f = os.path.join(d, "pkg.bin")
        cmd = "%s && sha256sum %s > %s.sha" % (
            " ".join(shlex.quote(a) for a in curl_argv(ctx, f)),
            shlex.quote(f), shlex.quote(f))
        procs.append(Proc(ns, node_argv(ctx, ["sh", "-c", cmd]),
                          os.path.join(d, "log"), t0=meter.t0))
    done_at = {i: None for i in range(1, ctx.nodes + 1)}

    def check(i):
        p = procs[i - 1]
        if p.poll() is None:
            return False
        d = os.path.join(rundir, "n%d" % i)
        if p.rc == 0 and sha_ok(os.path.join(d, "pkg.bin.sha"), ctx.sha):
            return True
        done_at[i] = None
        return False
    timeout = ctx.timeout_direct
    end = meter.t0 + timeout
    while True:
        now = time.monotonic()
        for i in range(1, ctx.nodes + 1):
            if done_at[i] is None and procs[i - 1].poll() is not None:
                if check(i):
                    done_at[i] = procs[i - 1].end - meter.t0
        if all(p.poll() is not None for p in procs) or now > end:
            break
        time.sleep(POLL_S)
    return finish(ctx, meter, done_at, [], procs)


# ------------------------------------------------------------------ uftp
HOOK = """#!/bin/sh
# uftpd postreceive hook (bench/race): hash every received file, then
# publish the hash atomically; the race polls for FILE.sha.
[ "$1" = "-I" ] && shift 2
for f in "$@"; do
	sha256sum "$f" > "$f.sha.tmp" && mv "$f.sha.tmp" "$f.sha"
done
"""


def uftp_settings(ctx):
    """What the race sets beyond the research page's command lines."""
    return {"uftp_grtt": ctx.uftp_grtt}


def run_uftp(ctx, rundir, meter):
    """Gateway downloads once with curl, then uftp -> uftpd on each node:
    the research page's command lines (1.6), closed group (-H) of every
    node's id, rate a little under the LAN rate, 1400-byte blocks.  Tuned
    for the testbed (docs/benchmarks.md): the group round trip starts at
    the LAN's (-r; UFTP's 0.5 s default times every announce and status
    round for a WAN until it has measured better)."""
    hook = os.path.join(rundir, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.chmod(hook, 0o755)
    r = random.Random()
    pub = "239.254.%d.1" % r.randint(1, 254)
    priv = "239.254.%d.2" % r.randint(1, 254)
    port = 1044
    nodes = []
    ids = []
    for i, ns in enumerate(ctx.bed.nodes, 1):
        d = os.path.join(rundir, "n%d" % i)
        os.makedirs(os.path.join(d, "rx"))
        os.makedirs(os.path.join(d, "tmp"))
        uid = "0x%08X" % (0x0A000000 + i)
        ids.append(uid)
        nodes.append(Proc(ns, node_argv(ctx, [
            "uftpd", "-d", "-I", node_ip(i), "-D", os.path.join(d, "rx"),
            "-T", os.path.join(d, "tmp"), "-B", "4194304", "-U", uid,
            "-M", pub, "-p", str(port), "-q", "-s", hook]),
            os.path.join(d, "log"), stamp=False))
    hosts = os.path.join(rundir, "nodes.txt")
    with open(hosts, "w") as f:
        f.write("\n".join(ids) + "\n")
    time.sleep(0.5)             # let every uftpd bind and join
    gwdir = os.path.join(rundir, "gw")
    os.makedirs(gwdir)
    pkg = os.path.join(gwdir, ctx.pkg_name)
    meter.start()
    gw = []
    try:
        dl, t_dl = gw_download(ctx, rundir, meter, pkg)
    except ContenderError as e:
        return dict(finish(ctx, meter, {i: None for i in range(
            1, ctx.nodes + 1)}, [], nodes), error=str(e))
    gw.append(dl)
    kbps = int(ctx.lan_mbit * 1000 * ctx.rate_pct / 100)
    sender = Proc(ctx.bed.gw, [
        "uftp", "-I", LAN_GW, "-M", pub, "-P", priv, "-p", str(port),
        "-b", str(ctx.block), "-R", str(kbps), "-B", "4194304",
        "-r", ctx.uftp_grtt,
        "-H", "@" + hosts, "-S", os.path.join(rundir, "uftp.status"),
        pkg], os.path.join(rundir, "uftp.log"), t0=meter.t0)
    gw.append(sender)
    done_at = {i: None for i in range(1, ctx.nodes + 1)}

    def check(i):
        return sha_ok(os.path.join(rundir, "n%d" % i, "rx",
                                   ctx.pkg_name + ".sha"), ctx.sha)
    wait_nodes(ctx, meter, done_at, check, ctx.timeout)
    sender.wait(5)
    extra = {"t_download_s": round(t_dl, 3), "sender_rc": sender.poll()}
    extra.update(uftp_settings(ctx))
    return finish(ctx, meter, done_at, gw, nodes, extra)


# --------------------------------------------------------------- udpcast
#
# Tuned for the testbed (docs/benchmarks.md, "The contenders"):
#  - udp-sender sends one HELLO and then looks at --min-receivers only
#    every 2 s, so it started 2 s after the last receiver had answered.
#    With --rexmit-hello-interval it sends a HELLO every that many ms and
#    looks each time: it starts within that interval, and a receiver that
#    lost a HELLO hears the next one.  (--min-wait, tried too, only adds a
#    wait.)
#  - udp-receiver waits --exit-wait ms (500 by default) after the final
#    REQACK, in case its last ACK was lost.  On the testbed only what the
#    nodes receive is dropped, never their ACKs, so 20 ms is enough; the
#    file is complete before that wait begins.
def udp_settings(ctx):
    return {"udp_hello_ms": ctx.udp_hello_ms,
            "udp_exit_wait_ms": ctx.udp_exit_wait_ms}


def udp_receivers(ctx, rundir, portbase):
    nodes = []
    for i, ns in enumerate(ctx.bed.nodes, 1):
        d = os.path.join(rundir, "n%d" % i)
        os.makedirs(d)
        f = os.path.join(d, "pkg.bin")
        cmd = ("udp-receiver --interface eth0 --portbase %d --nokbd "
               "--exit-wait %d --file %s && sha256sum %s > %s.sha"
               % (portbase, ctx.udp_exit_wait_ms, shlex.quote(f),
                  shlex.quote(f), shlex.quote(f)))
        nodes.append(Proc(ns, node_argv(ctx, ["sh", "-c", cmd]),
                          os.path.join(d, "log")))
    return nodes


def udp_sender_argv(ctx, portbase, data_addr):
    kbit = int(ctx.lan_mbit * 1000 * ctx.rate_pct / 100)
    argv = ["udp-sender", "--interface", "lan", "--portbase", str(portbase),
            "--mcast-data-address", data_addr,
            "--min-receivers", str(ctx.nodes), "--max-bitrate",
            "%dk" % kbit, "--full-duplex", "--nokbd"]
    if ctx.udp_hello_ms > 0:
        argv += ["--rexmit-hello-interval", str(ctx.udp_hello_ms)]
    return argv


def wait_udp(ctx, rundir, meter, nodes):
    done_at = {i: None for i in range(1, ctx.nodes + 1)}

    def check(i):
        p = nodes[i - 1]
        return (p.poll() == 0 and
                sha_ok(os.path.join(rundir, "n%d" % i, "pkg.bin.sha"),
                       ctx.sha))
    wait_nodes(ctx, meter, done_at, check, ctx.timeout)
    # A receiver that exited is done at its exit time, not at our poll.
    for i in done_at:
        if done_at[i] is not None and nodes[i - 1].end is not None:
            done_at[i] = min(done_at[i], nodes[i - 1].end - meter.t0)
    return done_at


def run_udpcast(ctx, rundir, meter):
    """Gateway downloads once with curl, then udp-sender --file."""
    portbase = 9000
    data = "239.253.%d.%d" % (random.randint(1, 254), random.randint(1, 254))
    nodes = udp_receivers(ctx, rundir, portbase)
    time.sleep(0.5)
    gwdir = os.path.join(rundir, "gw")
    os.makedirs(gwdir)
    pkg = os.path.join(gwdir, ctx.pkg_name)
    meter.start()
    gw = []
    try:
        dl, t_dl = gw_download(ctx, rundir, meter, pkg)
    except ContenderError as e:
        return dict(finish(ctx, meter, {i: None for i in range(
            1, ctx.nodes + 1)}, [], nodes), error=str(e))
    gw.append(dl)
    sender = Proc(ctx.bed.gw, udp_sender_argv(ctx, portbase, data) +
                  ["--file", pkg], os.path.join(rundir, "udp-sender.log"),
                  t0=meter.t0)
    gw.append(sender)
    done_at = wait_udp(ctx, rundir, meter, nodes)
    extra = {"t_download_s": round(t_dl, 3)}
    extra.update(udp_settings(ctx))
    return finish(ctx, meter, done_at, gw, nodes, extra)


def run_udpcast_pipe(ctx, rundir, meter):
    """curl | udp-sender on the gateway: cut-through from stock tools."""
    portbase = 9000
    data = "239.253.%d.%d" % (random.randint(1, 254), random.randint(1, 254))
    nodes = udp_receivers(ctx, rundir, portbase)
    time.sleep(0.5)
    cmd = "%s | %s" % (
        " ".join(shlex.quote(a) for a in curl_argv(ctx, "-")),
        " ".join(shlex.quote(a) for a in udp_sender_argv(ctx, portbase,
                                                         data)))
    meter.start()
    sender = Proc(ctx.bed.gw, ["sh", "-c", cmd],
                  os.path.join(rundir, "udp-sender.log"), t0=meter.t0)
    done_at = wait_udp(ctx, rundir, meter, nodes)
    return finish(ctx, meter, done_at, [sender], nodes, udp_settings(ctx))


# -------------------------------------------------------------- upbridge
def run_upbridge(ctx, rundir, meter):
    """upbridged on the gateway (lan transport on the gateway's LAN
    address, paced at rate_pct of L), upnode in every node namespace.
    Nodes register first (untimed); t0 is when the manifest with the
    deployment is published and the daemon is told to poll (upctl
    refresh): the same moment the other contenders start downloading."""
    r = random.Random()
    group = "239.255.%d.%d" % (r.randint(1, 254), r.randint(1, 254))
    mport = 4242
    # One time base for the daemon's and every node's log stamps, so the
    # timeline (offer, first DATA, pass end, repair, verify, activate)
    # can be read across processes.
    base = time.monotonic()
    state = os.path.join(rundir, "state")
    sock = os.path.join(rundir, "upbridged.sock")
    conf = os.path.join(rundir, "upbridged.conf")
    fan = {"block_size": ctx.block, "rate_pct": ctx.rate_pct,
           "offer_window_ms": 500, "status_window_ms": 200,
           "activate_delay_ms": 0, "discover_interval_s": 2,
           "result_timeout_s": 60}
    fan.update(ctx.ub_fanout)
    lines = ["[gateway]", "id = gw-race", "state_dir = %s" % state,
             "control_socket = %s" % sock,
             "log_level = %s" % getattr(ctx, "ub_log", "info"),
             "cache_quota_mb = %d" % max(256, 4 * (ctx.size >> 20)),
             "commit_interval_ms = 1000", "",
             "[cloud]", "url = %s" % ctx.cloud.url().rstrip("/"),
             "ca_file = %s" % ctx.cloud.ca,
             "public_key = %s" % ctx.pub, "poll_interval_s = 3600",
             "report_interval_s = 1", "", "[fanout]"]
    lines += ["%s = %s" % kv for kv in fan.items()]
    lines += ["", "[transport.lan0]", "type = lan", "group = %s" % group,
              "port = %d" % mport, "interface = %s" % LAN_GW, "ttl = 1",
              "loop = no", "bitrate_mbit = %d" % ctx.lan_mbit, ""]
    with open(conf, "w") as f:
        f.write("\n".join(lines))

    ctx.publish(deploy=False)
    verified_at = {}
    t0_box = [None]

    def node_line(i):
        def f(line, now):
            if "-> verified" in line and i not in verified_at \
                    and t0_box[0] is not None:
                verified_at[i] = now - t0_box[0]
        return f
    slot = ((ctx.size >> 20) + 2) << 20
    nodes = []
    for i, ns in enumerate(ctx.bed.nodes, 1):
        d = os.path.join(rundir, "n%d" % i)
        nodes.append(Proc(ns, node_argv(ctx, [
            ctx.bin("upnode"), "--id", str(i), "--hw", "race-hw",
            "--component", "app=1.0.0", "--state-dir", d,
            "--pubkey", ctx.pub, "--group", group, "--port", str(mport),
            "--iface", node_ip(i), "--slot-size", str(slot)]),
            os.path.join(rundir, "n%d.log" % i), t0=base,
            on_line=node_line(i)))
    events = {}

    def gw_line(line, now):
        if t0_box[0] is None:
            return
        if "downloaded and verified" in line and "download" not in events:
            events["download"] = now - t0_box[0]
        elif ": session " in line and "session" not in events:
            events["session"] = now - t0_box[0]
    daemon = Proc(ctx.bed.gw, [ctx.bin("upbridged"), "-d", "-f", conf],
                  os.path.join(rundir, "upbridged.log"), t0=base,
                  on_line=gw_line)
    gw = [daemon]
    end = time.monotonic() + 30
    nreg = 0
    while True:
        if daemon.poll() is not None:
            stop_all(nodes)
            raise ContenderError("upbridged exited %s: see %s"
                                 % (daemon.rc, daemon.log.name))
        if os.path.exists(sock):
            q = subprocess.run([ctx.bin("upctl"), "-s", sock, "--json",
                                "nodes"], capture_output=True, text=True)
            if q.returncode == 0:
                try:
                    nreg = len(json.loads(q.stdout))
                except ValueError:
                    nreg = 0
                if nreg >= ctx.nodes:
                    break
        if time.monotonic() > end:
            stop_all(gw + nodes)
            raise ContenderError("only %d of %d nodes registered with "
                                 "upbridged in 30 s" % (nreg, ctx.nodes))
        time.sleep(0.2)
    ctx.publish(deploy=True)
    t0_box[0] = meter.start()
    q = subprocess.run([ctx.bin("upctl"), "-s", sock, "refresh"],
                       capture_output=True, text=True)
    if q.returncode != 0:
        stop_all(gw + nodes)
        raise ContenderError("upctl refresh failed: %s" % q.stderr.strip())
    done_at = {i: None for i in range(1, ctx.nodes + 1)}

    def check(i):
        try:
            with open(os.path.join(rundir, "n%d" % i, "running")) as f:
                return "app=%s" % ctx.version in f.read().split()
        except OSError:
            return False

    def check_alive(i):
        if daemon.poll() is not None:
            raise ContenderError("upbridged died (exit %s)" % daemon.rc)
        return check(i)
    try:
        wait_nodes(ctx, meter, done_at, check_alive, ctx.timeout)
    except ContenderError as e:
        return dict(finish(ctx, meter, done_at, gw, nodes), error=str(e))
    ver = [verified_at.get(i) for i in range(1, ctx.nodes + 1)]
    extra = {"t_download_s": events.get("download"),
             "t_session_s": events.get("session"),
             "log_t0_s": round(t0_box[0] - base, 3),
             "wall_verified_s": (round(max(ver), 3)
                                 if all(v is not None for v in ver)
                                 else None)}
    res = finish(ctx, meter, done_at, gw, nodes, extra)
    res["daemon_maxrss_kib"] = daemon.maxrss_kib
    for k in ("t_download_s", "t_session_s"):
        if res.get(k) is not None:
            res[k] = round(res[k], 3)
    return res


CONTENDERS = {
    "upbridge": run_upbridge,
    "direct": run_direct,
    "uftp": run_uftp,
    "udpcast": run_udpcast,
    "udpcast-pipe": run_udpcast_pipe,
}

# Tools each contender needs, to decide whether bench-setup must run.
NEEDS = {
    "upbridge": [],
    "direct": [],
    "uftp": ["uftp", "uftpd"],
    "udpcast": ["udp-sender", "udp-receiver"],
    "udpcast-pipe": ["udp-sender", "udp-receiver"],
}
