"""racebed.py: the network-namespace testbed of bench/race (issue 3).

    cloud ns                gateway ns                 lan ns           node ns (x N)
    nginx, TLS   wan ====== wan   (routes)   lan ===== gw  [br0]  nK ===== eth0
    10.200.0.1   tbf W      10.200.0.2  10.201.0.1 tbf L                   10.201.0.(10+K)
                            tbf W (uplink)                                 nft: udp loss P %

* WAN: one veth pair cloud <-> gateway, shaped with tbf at W on both
  egresses (cloud -> gw carries the package, gw -> cloud the ACKs and the
  reports).
* LAN: a Linux bridge (multicast snooping off: it floods a group to every
  port, as a switch without IGMP snooping does) in its own namespace, one
  veth to the gateway and one per node.  The gateway's LAN egress is shaped
  with tbf at L: everything the gateway sends to the nodes (multicast and
  unicast, and the cloud's bytes it routes for `direct`) goes through it.
* Loss: an nftables rule in every node namespace drops P % of the UDP
  datagrams that node receives (input hook, numgen random), so each node
  loses its own independent packets (research/multicast-delta.md 4.4).
  TCP is not dropped.
* The gateway forwards (ip_forward=1), so nodes reach the cloud directly.

Byte counts are those of the tbf qdiscs (`tc -s qdisc`), i.e. link bytes
with the Ethernet header, counted per segment even for GSO packets: the
"link bytes tbf sees" of docs/transports/lan.md.

Every namespace name starts with a prefix unique to the process (ubr<pid>),
so parallel races never clash; namespaces of races whose process is gone
can be removed with `cleanup_stale()`.  Only processes started through
`Proc` are ever signalled, by pid.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time

WAN_CLOUD = "10.200.0.1"
WAN_GW = "10.200.0.2"
LAN_GW = "10.201.0.1"
LAN_NET = "10.201.0.0/24"
WAN_NET = "10.200.0.0/24"
MAX_NODES = 200


def node_ip(i):
    return "10.201.0.%d" % (10 + i)


class BedError(Exception):
    pass


def sh(argv, check=True, timeout=60, quiet=False):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise BedError("%s exited %d: %s" % (" ".join(argv), r.returncode,
                                             (r.stderr or r.stdout).strip()))
    return r


def cleanup_stale(log=print):
    """Deletes namespaces ubr<pid>-* whose race process no longer runs."""
    r = sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^ubr(\d+)-", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists("/proc/%d" % pid):
            continue
        left = sh(["ip", "netns", "pids", name], check=False).stdout.split()
        if left:
            log("racebed: stale namespace %s still holds pids %s (not "
                "signalled; they were not started by this race)"
                % (name, " ".join(left)))
        sh(["ip", "netns", "del", name], check=False)


def cpu_jiffies():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    idle = v[3] + v[4]
    total = sum(v[:8])
    return total - idle, total


def proc_cpu_s(pid):
    """utime + stime (+ reaped children) of a live process, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    t = sum(int(x) for x in fields[11:15])
    return t / os.sysconf("SC_CLK_TCK")


class Proc:
    """A process we started inside a namespace, reaped with wait4 so its
    CPU time and peak RSS are known.  Output goes to `log`, each line
    prefixed with the seconds since `t0` when `stamp` is set; `on_line`
    (if given) sees every line with its monotonic time.  Every live Proc
    is in Proc.live, so a cleanup can stop exactly what was started."""

    live = set()

    def __init__(self, ns, argv, log, t0=None, stamp=True, on_line=None,
                 env=None, stdin=subprocess.DEVNULL):
        self.argv = argv
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.log = open(log, "ab")
        full = ["ip", "netns", "exec", ns] + list(argv)
        self.p = subprocess.Popen(full, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT,
                                  start_new_session=True, env=env)
        self.pid = self.p.pid
        Proc.live.add(self)
        self.rc = None
        self.end = None          # monotonic time it was reaped
        self.cpu_s = 0.0
        self.maxrss_kib = 0
        self.stamp = stamp
        self.on_line = on_line
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in iter(self.p.stdout.readline, b""):
            now = time.monotonic()
            if self.on_line is not None:
                try:
                    self.on_line(line.decode("utf-8", "replace"), now)
                except Exception:    # a parser bug must not kill output
                    pass
            if self.stamp:
                self.log.write(b"[%8.3f] " % (now - self.t0) + line)
            else:
                self.log.write(line)
        self.p.stdout.close()

    def _reaped(self, status, ru):
        self.end = time.monotonic()
        self.rc = os.waitstatus_to_exitcode(status)
        self.cpu_s = ru.ru_utime + ru.ru_stime
        self.maxrss_kib = ru.ru_maxrss
        self.p.returncode = self.rc     # keep Popen from waiting again
        Proc.live.discard(self)

    def poll(self):
        if self.rc is not None:
            return self.rc
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.rc, self.end = -1, time.monotonic()
            Proc.live.discard(self)
            return self.rc
        if pid == 0:
            return None
        self._reaped(status, ru)
        return self.rc

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                return None
            time.sleep(0.02)
        return self.rc

    def _signal(self, sig):
        # Our child leads its own process group (start_new_session), so
        # the group holds exactly what we started: the program and, for
        # `sh -c "a && b"`, its children.  Never a name, never others.
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Signals our process group, then SIGKILL after `grace`; also
        ends what the group still holds after its leader exited."""
        if self.poll() is None:
            self._signal(sig)
            if self.wait(grace) is None:
                self._signal(signal.SIGKILL)
                self.wait(5)
            # A member that outlived its leader (sh killed while its child
            # ran): while any member lives the group id cannot be reused,
            # and we reaped the leader only milliseconds ago.
            self._signal(signal.SIGKILL)
        self.reader.join(2)
        try:
            self.log.close()
        except Exception:
            pass
        return self.rc


class Netbed:
    def __init__(self, nodes, wan_mbit, lan_mbit, loss_pct, log=print,
                 prefix=None, lan_latency_ms=50, wan_latency_ms=50):
        if not 1 <= nodes <= MAX_NODES:
            raise BedError("nodes must be 1..%d" % MAX_NODES)
        self.n = nodes
        self.wan_mbit = wan_mbit
        self.lan_mbit = lan_mbit
        self.loss_pct = loss_pct
        self.log = log
        self.prefix = prefix or "ubr%d" % os.getpid()
        self.cloud = self.prefix + "-cloud"
        self.gw = self.prefix + "-gw"
        self.lan = self.prefix + "-lan"
        self.nodes = ["%s-n%d" % (self.prefix, i) for i in range(1, nodes + 1)]
        self.lan_latency_ms = lan_latency_ms
        self.wan_latency_ms = wan_latency_ms
        self.made = []

    def ns_all(self):
        return [self.cloud, self.gw, self.lan] + self.nodes

    def ip(self, ns, *args):
        return sh(["ip", "-n", ns] + list(args))

    def nsexec(self, ns, *args, check=True, timeout=60):
        return sh(["ip", "netns", "exec", ns] + list(args), check=check,
                  timeout=timeout)

    @staticmethod
    def _burst(mbit):
        # At least a few full frames and ~2 ms of line time: tbf needs a
        # bucket above the MTU and above what one timer tick releases.
        return max(32 * 1024, int(mbit * 1e6 / 8 * 0.002))

    def shape(self, ns, dev, mbit, latency_ms):
        sh(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
            "rate", "%dkbit" % int(mbit * 1000),
            "burst", str(self._burst(mbit)),
            "latency", "%dms" % latency_ms])

    def setup(self):
        t = time.monotonic()
        for ns in self.ns_all():
            sh(["ip", "netns", "add", ns])
            self.made.append(ns)
            self.ip(ns, "link", "set", "lo", "up")
        # WAN
        self.ip(self.gw, "link", "add", "wan", "type", "veth", "peer",
                "name", "wan", "netns", self.cloud)
        self.ip(self.cloud, "addr", "add", WAN_CLOUD + "/24", "dev", "wan")
        self.ip(self.gw, "addr", "add", WAN_GW + "/24", "dev", "wan")
        self.ip(self.cloud, "link", "set", "wan", "up")
        self.ip(self.gw, "link", "set", "wan", "up")
        self.ip(self.cloud, "route", "add", LAN_NET, "via", WAN_GW)
        # LAN bridge
        self.ip(self.lan, "link", "add", "br0", "type", "bridge",
                "mcast_snooping", "0", "stp_state", "0",
                "forward_delay", "0")
        self.ip(self.lan, "link", "set", "br0", "up")
        self.ip(self.gw, "link", "add", "lan", "type", "veth", "peer",
                "name", "gw", "netns", self.lan)
        self.ip(self.lan, "link", "set", "gw", "master", "br0", "up")
        self.ip(self.gw, "addr", "add", LAN_GW + "/24", "brd", "+",
                "dev", "lan")
        self.ip(self.gw, "link", "set", "lan", "up")
        self.ip(self.gw, "route", "add", "224.0.0.0/4", "dev", "lan")
        self.nsexec(self.gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for i, ns in enumerate(self.nodes, 1):
            port = "n%d" % i
            self.ip(ns, "link", "add", "eth0", "type", "veth", "peer",
                    "name", port, "netns", self.lan)
            self.ip(self.lan, "link", "set", port, "master", "br0", "up")
            self.ip(ns, "addr", "add", node_ip(i) + "/24", "brd", "+",
                    "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
            self.ip(ns, "route", "add", "default", "via", LAN_GW)
            self.ip(ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            if self.loss_pct > 0:
                self.add_loss(ns, self.loss_pct)
        # Shaping
        self.shape(self.cloud, "wan", self.wan_mbit, self.wan_latency_ms)
        self.shape(self.gw, "wan", self.wan_mbit, self.wan_latency_ms)
        self.shape(self.gw, "lan", self.lan_mbit, self.lan_latency_ms)
        self.log("testbed: %d namespaces (prefix %s) up in %.1f s"
                 % (len(self.made), self.prefix, time.monotonic() - t))

    def add_loss(self, ns, pct):
        # numgen random mod 10000 < pct*100: 0.01 % resolution.
        thr = int(round(pct * 100))
        rules = ("table inet ubloss {\n"
                 " chain input {\n"
                 "  type filter hook input priority 0; policy accept;\n"
                 "  meta l4proto udp numgen random mod 10000 < %d "
                 "counter drop\n"
                 " }\n"
                 "}\n" % thr)
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                           input=rules, capture_output=True, text=True)
        if r.returncode != 0:
            raise BedError("nft in %s failed: %s" % (ns, r.stderr.strip()))

    def loss_counts(self):
        """Packets the loss rule dropped, per node."""
        out = []
        for ns in self.nodes:
            r = self.nsexec(ns, "nft", "-j", "list", "table", "inet",
                            "ubloss", check=False)
            n = 0
            if r.returncode == 0:
                for o in json.loads(r.stdout).get("nftables", []):
                    rule = o.get("rule")
                    if not rule:
                        continue
                    for e in rule.get("expr", []):
                        if "counter" in e:
                            n += e["counter"].get("packets", 0)
            out.append(n)
        return out

    def check_paths(self, url, ca):
        """Every node reaches the cloud through the bridge and the
        gateway (this image has no ping; curl proves the whole path).  A
        bridge port needs a moment to reach "forwarding", hence retries."""
        end = time.monotonic() + 20
        for i, ns in enumerate(self.nodes, 1):
            while True:
                r = self.nsexec(ns, "curl", "-s", "-o", "/dev/null",
                                "--max-time", "2", "--cacert", ca, url,
                                check=False)
                if r.returncode == 0:
                    break
                if time.monotonic() > end:
                    raise BedError("node %d (%s) cannot reach the cloud "
                                   "at %s (curl exit %d)"
                                   % (i, node_ip(i), url, r.returncode))
                time.sleep(0.1)

    def qdisc_stats(self, ns, dev):
        r = sh(["tc", "-n", ns, "-s", "-j", "qdisc", "show", "dev", dev])
        for q in json.loads(r.stdout):
            if q.get("kind") == "tbf":
                return {"bytes": q.get("bytes", 0),
                        "packets": q.get("packets", 0),
                        "drops": q.get("drops", 0)}
        raise BedError("no tbf on %s in %s" % (dev, ns))

    def counters(self):
        return {"wan_down": self.qdisc_stats(self.cloud, "wan"),
                "wan_up": self.qdisc_stats(self.gw, "wan"),
                "lan": self.qdisc_stats(self.gw, "lan")}

    @staticmethod
    def diff(a, b):
        return {k: {f: b[k][f] - a[k][f] for f in a[k]} for k in a}

    def teardown(self):
        for ns in reversed(self.made):
            left = sh(["ip", "netns", "pids", ns], check=False).stdout.split()
            if left:
                self.log("testbed: namespace %s still holds pids %s"
                         % (ns, " ".join(left)))
            sh(["ip", "netns", "del", ns], check=False)
        self.made = []


def nginx_conf(dir, port):
    user = "user root;" if os.geteuid() == 0 else ""
    return """# Written by bench/racebed.py; every path is under %(d)s.
%(user)s
worker_processes 1;
daemon off;
master_process on;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 1024; }
http {
	default_type application/octet-stream;
	types { application/json json; }
	log_format cloud '$request_method $uri $status $body_bytes_sent '
	    '$remote_addr $http_range';
	access_log %(d)s/access.log cloud;
	client_body_temp_path %(d)s/tmp/body;
	proxy_temp_path %(d)s/tmp/proxy;
	fastcgi_temp_path %(d)s/tmp/fastcgi;
	uwsgi_temp_path %(d)s/tmp/uwsgi;
	scgi_temp_path %(d)s/tmp/scgi;
	sendfile on;
	keepalive_timeout 65;
	server {
		listen %(ip)s:%(port)d ssl;
		server_name %(ip)s;
		ssl_certificate %(d)s/server.pem;
		ssl_certificate_key %(d)s/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		root %(d)s/www;
		location /cloud/ { autoindex off; }
		location /cloud/reports/ {
			dav_methods PUT;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
			client_max_body_size 16m;
		}
		location / { return 404; }
	}
}
""" % {"d": dir, "user": user, "ip": WAN_CLOUD, "port": port}


class Cloud:
    """nginx with TLS in the cloud namespace, on the WAN address, with its
    own CA (the same shape as tests/e2e/cloud.sh, which serves loopback
    only)."""

    PORT = 8443

    def __init__(self, bed, dir, log=print):
        self.bed = bed
        self.dir = dir
        self.www = os.path.join(dir, "www", "cloud")
        self.ca = os.path.join(dir, "ca.pem")
        self.proc = None
        self.log = log

    def url(self, rel=""):
        return "https://%s:%d/cloud/%s" % (WAN_CLOUD, self.PORT, rel)

    def make_certs(self):
        d = self.dir
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:%s\n" % WAN_CLOUD)
        j = lambda n: os.path.join(d, n)   # noqa: E731
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", j("ca.key"),
            "-out", j("ca.pem"), "-days", "30", "-subj",
            "/CN=upbridge race CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign"])
        sh(["openssl", "req", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", j("server.key"),
            "-out", j("server.csr"), "-subj", "/CN=%s" % WAN_CLOUD])
        sh(["openssl", "x509", "-req", "-in", j("server.csr"), "-CA",
            j("ca.pem"), "-CAkey", j("ca.key"), "-CAcreateserial", "-out",
            j("server.pem"), "-days", "30", "-extfile", ext])

    def start(self):
        os.makedirs(os.path.join(self.www, "reports"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.make_certs()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(self.dir, self.PORT))
        nginx = "/usr/sbin/nginx"
        self.proc = Proc(self.bed.cloud, [nginx, "-p", self.dir, "-c", conf,
                                          "-e", os.path.join(self.dir,
                                                             "error.log")],
                         os.path.join(self.dir, "nginx.out"))
        end = time.monotonic() + 20
        while True:
            r = self.bed.nsexec(self.bed.gw, "curl", "-s", "-o", "/dev/null",
                                "--max-time", "2", "--cacert", self.ca,
                                self.url(), check=False)
            if r.returncode == 0:
                break
            if self.proc.poll() is not None or time.monotonic() > end:
                raise BedError("nginx does not answer on %s: %s"
                               % (self.url(), open(os.path.join(
                                   self.dir, "error.log")).read()[-400:]))
            time.sleep(0.1)
        self.log("cloud: nginx (pid %d) on %s" % (self.proc.pid, self.url()))

    def worker_cpu_s(self):
        """CPU seconds of the nginx master and its workers so far."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        pid = self.proc.pid
        total = proc_cpu_s(pid)
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                for c in f.read().split():
                    total += proc_cpu_s(int(c))
        except OSError:
            pass
        return total

    def served(self, suffix, since_line=0):
        """Body bytes of GETs of URIs ending in suffix, from line since_line
        of the access log; returns (bytes, lines)."""
        n, lines = 0, 0
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                for lines, l in enumerate(f, 1):
                    if lines <= since_line:
                        continue
                    p = l.split()
                    if len(p) >= 4 and p[0] == "GET" and \
                            p[1].endswith(suffix) and p[3].isdigit():
                        n += int(p[3])
        except OSError:
            pass
        return n, lines

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGQUIT)
            self.proc = None
