"""testbed.py: a real cloud, a real daemon and real nodes on loopback.

Shared by the end-to-end tests (tests/e2e/test_*.py) and scripts/demo.
Everything runs from a private temporary directory: nginx with TLS as the
cloud (tests/e2e/cloud.sh), upbridged with its own state directory and
control socket, and upnode processes on a private multicast group and port.
Only processes started here are ever signalled, by PID.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

GW_ID = "gw-e2e"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fail(Exception):
    pass


class Testbed:
    def __init__(self, bindir, srcdir, name="e2e", keep=False, quiet=False):
        self.bindir = os.path.abspath(bindir)
        self.srcdir = os.path.abspath(srcdir)
        self.keep = keep
        self.quiet = quiet
        self.tmp = tempfile.mkdtemp(prefix="upbridge-%s-" % name)
        self.cloud = os.path.join(self.tmp, "cloud")
        self.www = os.path.join(self.cloud, "www", "cloud")
        self.https_port = free_port()
        self.group = "239.255.%d.%d" % (random.randint(1, 254),
                                        random.randint(1, 254))
        self.mport = free_udp_port()
        self.daemon = None
        self.daemon_log = os.path.join(self.tmp, "upbridged.log")
        self.nodes = {}          # id -> dict(proc, dir, log, args)
        self.cloud_started = False
        self.conf = os.path.join(self.tmp, "upbridged.conf")
        self.sock = os.path.join(self.tmp, "upbridged.sock")
        self.state = os.path.join(self.tmp, "state")
        self.key = os.path.join(self.tmp, "cloud.key.pem")
        self.pub = os.path.join(self.tmp, "cloud.pub.pem")
        self.serial = 0
        self.slot_size = 16 << 20   # per A/B slot of every upnode
        # A simulated medium (start_air): upsim, its link dir, control
        # socket and status file; nodes then use its link.
        self.air = None
        self.air_dir = os.path.join(self.tmp, "air")
        self.air_ctl = os.path.join(self.tmp, "air.ctl")
        self.air_json = os.path.join(self.tmp, "air.json")
        self.air_log = os.path.join(self.tmp, "upsim.log")
        self.media = {}          # None or a name -> its upsim (start_air)
        self.time_scale = 1
        # None: the LAN; else a function of the node id giving its extra
        # upnode args (None: that node is on the LAN)
        self.node_link = None
        # Simulated BLE peripherals (ble_section): their socket directory
        # and each node's link options (docs/upnode.md, "BLE link").
        self.ble_dir = os.path.join(self.tmp, "ble")
        self.ble_opts = lambda nid: {}
        self.t0 = time.time()
        # A SIGTERM (timeout(1), a runner) must still run close(), or the
        # test's nginx and nodes outlive it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    # -- helpers ---------------------------------------------------------
    def log(self, msg):
        if not self.quiet:
            print("[%6.1fs] %s" % (time.time() - self.t0, msg), flush=True)

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def run(self, *args, check=True, capture=True, timeout=60):
        r = subprocess.run(list(args), capture_output=capture, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise Fail("%s exited %d: %s%s" % (" ".join(args), r.returncode,
                                                r.stdout or "",
                                                r.stderr or ""))
        return r

    def wait_for(self, pred, timeout, what, interval=0.2):
        end = time.time() + timeout
        while time.time() < end:
            v = pred()
            if v:
                return v
            self.check_daemon()
            self.check_air()
            time.sleep(interval)
        raise Fail("timed out after %ds waiting for %s" % (timeout, what))

    # -- cloud -----------------------------------------------------------
    def start_cloud(self):
        cloud_sh = os.path.join(self.srcdir, "tests", "e2e", "cloud.sh")
        self.run("sh", cloud_sh, "start", self.cloud, str(self.https_port))
        self.cloud_started = True
        self.log("cloud: nginx with TLS on https://127.0.0.1:%d/cloud/"
                 % self.https_port)

    def cloud_bytes(self, suffix):
        cloud_sh = os.path.join(self.srcdir, "tests", "e2e", "cloud.sh")
        r = self.run("sh", cloud_sh, "bytes", self.cloud, suffix)
        return int(r.stdout.strip() or "0")

    def genkey(self):
        self.run(self.bin("upmanifest"), "genkey", self.key, self.pub)

    def make_package(self, name, size, seed):
        """A deterministic pseudo-random image under www/packages/."""
        rnd = random.Random(seed)
        path = os.path.join(self.www, "packages", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                n = min(left, 65536)
                f.write(rnd.randbytes(n))
                left -= n
        return "packages/" + name

    def write_package(self, name, data):
        """Puts `data' (bytes) under www/packages/; returns its url."""
        path = os.path.join(self.www, "packages", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return "packages/" + name

    def publish(self, packages, deployments):
        """packages: list of dicts (id, component, version, hw, url, ...)."""
        self.serial += 1
        spec = {"version": 1, "serial": self.serial,
                "packages": packages, "deployments": deployments}
        path = os.path.join(self.tmp, "spec-%d.json" % self.serial)
        with open(path, "w") as f:
            json.dump(spec, f, indent=1)
        self.run(self.bin("upmanifest"), "build", "-k", self.key, "-s", path,
                 "-r", self.www, "--serial", str(self.serial))
        self.log("cloud: published manifest serial %d (%d package(s))"
                 % (self.serial, len(packages)))

    def add_deployments_by_hand(self, deps):
        """Appends deployments to the published manifest under a new
        serial and signs it again with the cloud key (openssl, Ed25519),
        as a publishing tool other than upmanifest would: for what
        upmanifest refuses but a gateway must refuse too."""
        path = os.path.join(self.www, "manifest.json")
        with open(path) as f:
            mf = json.load(f)
        self.serial += 1
        mf["serial"] = self.serial
        mf["deployments"] += deps
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(mf, indent=2) + "\n")
        self.run("openssl", "pkeyutl", "-sign", "-inkey", self.key,
                 "-rawin", "-in", path + ".tmp", "-out", path + ".sig.tmp")
        os.rename(path + ".tmp", path)
        os.rename(path + ".sig.tmp", path + ".sig")
        self.log("cloud: manifest serial %d: %d deployment(s) added by "
                 "hand" % (self.serial, len(deps)))

    def reports(self):
        """Every report record the cloud received, in upload order."""
        d = os.path.join(self.www, "reports", GW_ID)
        out = []
        if not os.path.isdir(d):
            return out
        names = sorted((n for n in os.listdir(d) if n.endswith(".jsonl")),
                       key=lambda n: int(n.split(".")[0]))
        for n in names:
            with open(os.path.join(d, n)) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        out.append(json.loads(line))
        return out

    def results(self):
        return [r for r in self.reports() if r.get("type") == "result"]

    # -- campaigns (issue 4) ---------------------------------------------
    @staticmethod
    def node_hex(nid):
        return "0x%016x" % nid

    def tag(self, nid, *tags):
        """upctl node NID tag add TAG (a node may be tagged before it
        first announces)."""
        for t in tags:
            self.upctl("node", str(nid), "tag", "add", t, json_out=False)

    def campaign_results(self, cid):
        return [r for r in self.results() if r.get("campaign") == cid]

    def campaign_events(self, cid):
        return [r for r in self.reports() if r.get("type") == "campaign"
                and r.get("campaign") == cid]

    def wait_event(self, cid, event, timeout, what=None):
        def pred():
            ev = [e for e in self.campaign_events(cid)
                  if e.get("event") == event]
            return ev or None
        return self.wait_for(pred, timeout, what or "event %s of %s"
                             % (event, cid))

    # -- daemon ----------------------------------------------------------
    # -- a simulated medium (docs/simulator.md) ---------------------------
    def start_air(self, personality, nodes, scale=1, opts=(), ep_opts=None,
                  baud=115200, fmt="8N1", loss=0, seed=1, medium=None):
        """upsim with endpoint gw and n1..nN; nodes then use it.
        medium: None for the testbed's one medium (air_path(name) etc.),
        or a name for one more, side by side (air_path(name, medium));
        every medium runs on the testbed's one clock (scale)."""
        m = self._medium_paths(medium)
        args = [self.bin("upsim"), "--personality", personality,
                "--baud", str(baud), "--format", fmt,
                "--time-scale", str(scale), "--seed", str(seed),
                "--loss", str(loss), "--link-dir", m["dir"],
                "--control", m["ctl"], "--status", m["json"],
                "--status-ms", "500"]
        if os.environ.get("UB_AIR_VERBOSE"):
            args.append("--verbose")  # its debug lines, in air_log
        os.makedirs(m["dir"], exist_ok=True)
        for o in opts:
            args += ["--opt", o]
        for i in range(nodes + 1):
            name = "gw" if i == 0 else "n%d" % i
            extra = (ep_opts or {}).get(name, "")
            args += ["--endpoint", name + ("," + extra if extra else "")]
        m["fh"] = open(m["log"], "a")
        p = subprocess.Popen(args, stdout=subprocess.PIPE,
                             stderr=m["fh"], text=True)
        m["proc"] = p
        self.media[medium] = m
        if medium is None:
            self.air, self.air_fh = p, m["fh"]
        while True:
            line = p.stdout.readline()
            if not line:
                raise Fail("upsim exited:\n" + self.tail(m["log"]))
            if line.strip() == "ready":
                break
        self.time_scale = scale
        self.log("%s: upsim %s, %d nodes, time scale %g, pid %d"
                 % (medium or "air", personality, nodes, scale, p.pid))

    def _medium_paths(self, medium):
        if medium is None:
            return {"dir": self.air_dir, "ctl": self.air_ctl,
                    "json": self.air_json, "log": self.air_log}
        base = os.path.join(self.tmp, medium)
        return {"dir": base, "ctl": base + ".ctl", "json": base + ".json",
                "log": os.path.join(self.tmp, "upsim-%s.log" % medium)}

    def air_path(self, name, medium=None):
        return os.path.join(self._medium_paths(medium)["dir"], name)

    def air_cmd(self, cmd, medium=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self._medium_paths(medium)["ctl"])
        s.sendall((cmd + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        reply = buf.decode().strip()
        if reply.startswith("error"):
            raise Fail("upsim: %s: %s" % (cmd, reply))
        return reply

    def air_status(self, medium=None):
        return json.loads(self.air_cmd("status", medium))

    def stop_air(self):
        """Stops every medium (upsim) started here."""
        for m in self.media.values():
            p = m.pop("proc", None)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            m["fh"].close()
        self.air = None

    # -- simulated BLE peripherals (docs/transports/ble.md) -----------------
    def ble_section(self, **opts):
        """The lines of a [transport.ble0] that reaches simulated
        peripherals in self.ble_dir (its sim_dir), for write_conf(); nodes
        started after it run upnode --transport ble there, with the link
        options self.ble_opts(nid)."""
        os.makedirs(self.ble_dir, exist_ok=True)

        def link(nid):
            args = ["--transport", "ble", "--link-opt",
                    "dir=%s" % self.ble_dir]
            for kv in self.ble_opts(nid).items():
                args += ["--link-opt", "%s=%s" % kv]
            return args
        self.node_link = link
        return (["[transport.ble0]", "type = ble",
                 "sim_dir = %s" % self.ble_dir] +
                ["%s = %s" % kv for kv in opts.items()])

    def write_conf(self, lan_mbit=100, transport=None, lan=None, **fanout):
        """transport: None for the LAN, else the lines of its sections;
        lan: the LAN's section too (default: only without transport)."""
        fan = {"block_size": 1400, "rate_pct": 90, "offer_window_ms": 600,
               "status_window_ms": 200, "activate_delay_ms": 300,
               "discover_interval_s": 2, "result_timeout_s": 30}
        if self.time_scale != 1:
            fan["time_scale"] = self.time_scale
        fan.update(fanout)
        lines = [
            "[gateway]",
            "id = %s" % GW_ID,
            "state_dir = %s" % self.state,
            "control_socket = %s" % self.sock,
            "log_level = info",
            "cache_quota_mb = 256",
            "commit_interval_ms = 500",
            "",
            "[cloud]",
            "url = https://127.0.0.1:%d/cloud" % self.https_port,
            "ca_file = %s" % os.path.join(self.cloud, "ca.pem"),
            "public_key = %s" % self.pub,
            "poll_interval_s = 2",
            "report_interval_s = 1",
            "range_kib = 256",
            "",
            "[fanout]",
        ]
        lines += ["%s = %s" % kv for kv in fan.items()]
        if transport is not None:
            lines += [""] + list(transport) + [""]
        if lan is None:
            lan = transport is None
        if lan:
            lines += self.lan_section(lan_mbit)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))

    def lan_section(self, lan_mbit=100):
        """The lines of [transport.lan0]: loopback multicast."""
        return [
            "",
            "[transport.lan0]",
            "type = lan",
            "group = %s" % self.group,
            "port = %d" % self.mport,
            "interface = 127.0.0.1",
            "ttl = 1",
            "loop = yes",
            "bitrate_mbit = %d" % lan_mbit,
            "",
        ]

    def start_daemon(self):
        self.daemon_fh = open(self.daemon_log, "a")
        self.daemon = subprocess.Popen(
            [self.bin("upbridged"), "-d", "-f", self.conf],
            stdout=self.daemon_fh, stderr=subprocess.STDOUT)
        # The socket's name may be a stale one of a daemon killed
        # before, or bound and not yet listening: wait until a connect
        # is accepted, not until the name exists.
        self.wait_for(self.control_listening, 20, "the control socket")
        self.log("gateway: upbridged pid %d" % self.daemon.pid)

    def control_listening(self):
        self.check_daemon()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def check_daemon(self):
        if self.daemon is not None and self.daemon.poll() is not None:
            rc = self.daemon.returncode
            self.daemon = None
            raise Fail("upbridged died (exit %s); log:\n%s"
                       % (rc, self.tail(self.daemon_log)))

    def check_air(self):
        """A simulator died (a crash): fail now.  Waiting on would
        leave the nodes reopening their ptys' names, which the system
        hands to the next test's simulator."""
        for name, m in self.media.items():
            p = m.get("proc")
            if p is not None and p.poll() is not None and \
                    not m.get("reported"):
                m["reported"] = True
                if name is None:
                    self.air = None
                raise Fail("upsim%s died (exit %s); log:\n%s"
                           % (" " + name if name else "", p.returncode,
                              self.tail(m["log"])))

    def stop_daemon(self, sig=signal.SIGTERM, timeout=20):
        if self.daemon is None:
            return None
        p, self.daemon = self.daemon, None
        p.send_signal(sig)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Fail("upbridged did not stop within %ds" % timeout)
        self.daemon_fh.close()
        return rc

    def upctl(self, *args, json_out=True, check=True):
        argv = [self.bin("upctl"), "-s", self.sock]
        if json_out:
            argv.append("--json")
        argv += list(args)
        r = self.run(*argv, check=check)
        if json_out and r.returncode == 0:
            return json.loads(r.stdout)
        return r

    # -- nodes -----------------------------------------------------------
    def start_node(self, nid, hw="sensor-v1", comps=(("app", "1.0.0"),),
                   extra=()):
        d = os.path.join(self.tmp, "node%d" % nid)
        os.makedirs(d, exist_ok=True)
        args = [self.bin("upnode"), "--id", str(nid), "--hw", hw,
                "--state-dir", d, "--pubkey", self.pub,
                "--slot-size", str(self.slot_size)]
        link = self.node_link(nid) if self.node_link else None
        if link is None:        # the LAN
            args += ["--group", self.group, "--port", str(self.mport),
                     "--iface", "127.0.0.1"]
        else:
            args += link
        if self.time_scale != 1:
            args += ["--time-scale", str(self.time_scale)]
        for c, v in comps:
            args += ["--component", "%s=%s" % (c, v)]
        args += list(extra)
        logp = os.path.join(self.tmp, "node%d.log" % nid)
        fh = open(logp, "a")
        p = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
        self.nodes[nid] = {"proc": p, "dir": d, "log": logp, "fh": fh,
                           "hw": hw, "comps": comps}
        return p

    def restart_node(self, nid, extra=()):
        n = self.nodes[nid]
        if n["proc"].poll() is None:
            raise Fail("node %d is still running" % nid)
        n["fh"].close()
        return self.start_node(nid, n["hw"], n["comps"], extra)

    def running(self, nid):
        path = os.path.join(self.nodes[nid]["dir"], "running")
        try:
            with open(path) as f:
                return dict(l.strip().split("=", 1) for l in f
                            if "=" in l)
        except FileNotFoundError:
            return {}

    def active_image(self, nid, size):
        """The first `size' bytes of the slot node `nid' boots (its
        boot.rec: "UPBR", u8 version, u32 slot size, u8 active)."""
        d = self.nodes[nid]["dir"]
        with open(os.path.join(d, "boot.rec"), "rb") as f:
            rec = f.read()
        slot_size = int.from_bytes(rec[5:9], "little")
        active = rec[9]
        with open(os.path.join(d, "flash.img"), "rb") as f:
            f.seek(active * slot_size)
            return f.read(size)

    def stop_nodes(self):
        for n in self.nodes.values():
            p = n["proc"]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for n in self.nodes.values():
            p = n["proc"]
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            n["fh"].close()

    def node_log(self, nid):
        """The text node `nid' logged so far."""
        try:
            with open(self.nodes[nid]["log"]) as f:
                return f.read()
        except OSError:
            return ""

    def kill_node(self, nid, sig=signal.SIGKILL):
        """Power loss (SIGKILL) or a clean stop of node `nid'."""
        p = self.nodes[nid]["proc"]
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(10)

    # -- one call set-ups (issue 7: the e2e tests repeat these) ----------
    def __enter__(self):
        return self

    def __exit__(self, etype, value, trace):
        """Dumps the logs when the test failed; always cleans up."""
        if etype is not None:
            self.dump_logs()
        self.close()
        return False

    def boot(self, nodes=(), tags=None, **conf):
        """The cloud (nginx) with an empty manifest, the daemon and the
        nodes.  nodes: ids, or (id, dict of start_node arguments);
        tags: {id: [tag, ...]} given with upctl once the daemon runs;
        conf: [fanout] options for write_conf."""
        self.start_cloud()
        self.genkey()
        self.publish([], [])
        self.write_conf(**conf)
        for n in nodes:
            nid, kw = (n, {}) if isinstance(n, int) else n
            self.start_node(nid, **kw)
        self.start_daemon()
        for nid, tl in (tags or {}).items():
            self.tag(nid, *tl)

    @staticmethod
    def full(version, url, component="app", hw=("sensor-v1",), pid=None):
        """A full-image package entry of a manifest spec."""
        return {"id": pid or "%s-%s" % (component, version),
                "component": component, "version": version,
                "hw": list(hw), "kind": "full", "url": url}

    def publish_one(self, dep_id, pkg, target=None, policy=None,
                    packages=()):
        """Publishes one deployment `dep_id' of one package (a dict from
        full()), with `packages' listed beside it; returns dep_id."""
        dep = {"id": dep_id, "packages": [pkg["id"]],
               "target": target if target is not None else {}}
        if policy is not None:
            dep["policy"] = policy
        self.publish([pkg] + [p for p in packages if p["id"] != pkg["id"]],
                     [dep])
        return dep_id

    def item_records(self, cid):
        """{(node, component): [records]} of campaign `cid', in order."""
        out = {}
        for r in self.campaign_results(cid):
            out.setdefault((r["node"], r.get("component")), []).append(r)
        return out

    def check_exactly_once(self, cid, items=None):
        """Every item of `cid' (or the (node, component) keys `items')
        has exactly one final record and nothing after it (issue 7):
        records before it are provisional ("final": false).  Returns
        {(node, component): final record}."""
        recs = self.item_records(cid)
        keys = set(items) if items is not None else set(recs)
        out = {}
        for k in sorted(keys):
            rs = recs.get(k, [])
            finals = [i for i, r in enumerate(rs) if r.get("final")]
            if len(finals) != 1 or finals[0] != len(rs) - 1:
                raise Fail("campaign %s item %s: want one final record, "
                           "last; got %s" % (cid, k, rs))
            out[k] = rs[-1]
        if items is not None and set(recs) - keys:
            raise Fail("campaign %s: records for other items: %s"
                       % (cid, sorted(set(recs) - keys)))
        return out

    # -- teardown --------------------------------------------------------
    def tail(self, path, n=40):
        try:
            with open(path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def dump_logs(self):
        print("---- upbridged log ----\n" + self.tail(self.daemon_log, 80))
        for name, m in self.media.items():
            if os.path.exists(m["log"]):
                print("---- upsim %s log ----\n%s"
                      % (name or "air", self.tail(m["log"], 20)))
            p = m.get("proc")
            if p is None or p.poll() is not None:
                continue
            try:
                for e in self.air_status(name)["endpoints"]:
                    e.pop("pty", None)
                    print("---- %s %s ----\n%s" % (name or "air",
                                                  e["name"], e))
            except (OSError, ValueError, Fail):
                pass
        for nid, n in sorted(self.nodes.items()):
            print("---- node %d log ----\n%s" % (nid, self.tail(n["log"], 15)))

    def close(self):
        try:
            if self.daemon is not None:
                self.stop_daemon(signal.SIGKILL)
        except Fail:
            pass
        self.stop_nodes()
        self.stop_air()
        if self.cloud_started:
            cloud_sh = os.path.join(self.srcdir, "tests", "e2e", "cloud.sh")
            subprocess.run(["sh", cloud_sh, "stop", self.cloud],
                           capture_output=True)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main_wrapper(fn):
    """Runs fn(bindir, srcdir) as a test: exit 0 pass, 1 fail."""
    if len(sys.argv) < 3:
        print("usage: %s BINDIR SRCDIR" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    try:
        fn(sys.argv[1], sys.argv[2])
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)
