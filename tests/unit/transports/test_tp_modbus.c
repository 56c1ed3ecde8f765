/*
 * test_tp_modbus.c: the modbus-rtu and modbus-tcp plugins
 * (transports/modbus/, docs/transports/modbus.md) against real upnode
 * processes (`--transport modbus-rtu|modbus-tcp', libmodbus servers), on
 * upsim's rs485 bus over pty pairs and on loopback TCP.  The test is the
 * plugin's host: it records what the plugin reports on its own event
 * loop.
 *
 * Covered: probing the configured unit ids finds the nodes that are
 * there; a poll reads a node's outbox (its ANNOUNCE) once, and never
 * twice; a broadcast reaches every node and costs no response timeout;
 * a unit that does not answer, a node that answers for another unit id,
 * a node that answers with exception 6, and a bus that garbles half of
 * what the gateway hears (CRC errors): each a clear failure of that one
 * request, and the bus serves the next one; every outbox frame arrives
 * exactly once through the loss.  The node's side: a register write
 * outside the map, into the middle of a window, an unknown function
 * code, a bad pad byte, an unaligned bitmap base, a command without a
 * session: each refused with its exception, and the node still serves.
 * TCP: servers listed, connected up to max_peers, polled, disconnected;
 * a server that is not there and one that dies.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <modbus.h>

#include "transport.h"
#include "up.h"

#define UPSIM		UB_BINARY_DIR "/bin/upsim"
#define UPNODE		UB_BINARY_DIR "/bin/upnode"
#define BAUD		"115200"
#define MAXN		8
#define MAXEV		256
/*
 * Bounds of the waits on a condition: generous, for the ASan build on
 * a loaded machine (each wait ends as soon as its condition holds).
 */
#define WAIT_MS		20000
/* The gateway's response timeouts: far above a starved node's delay. */
#define RTU_RESPONSE	"1000"
#define TCP_RESPONSE	"5000"

static char		 dir[64];
static pid_t		 sim_pid = -1, node_pid[MAXN];
static int		 ctl_fd = -1;
static struct event_base *base;

/* ------------------------------------------------------------------ */
/* The host: what the plugin reported                                   */

struct rec {
	int		 kind;		/* 'r' rx, 't' tx_done, 'p' peer */
	struct tp_addr	 addr;
	uint64_t	 cookie;
	int		 status;	/* tx_done status, peer event */
	int		 reason;
	uint32_t	 us;
	uint8_t		 frame[UP_FRAME_MAX];
	size_t		 len;
};
static struct rec	 recs[MAXEV];
static int		 nrecs;
static int		 writable;

static uint64_t
host_now(void *arg)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static struct rec *
rec_new(int kind)
{
	assert_true(nrecs < MAXEV);
	memset(&recs[nrecs], 0, sizeof(recs[0]));
	recs[nrecs].kind = kind;
	return (&recs[nrecs++]);
}

static void
host_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *f, size_t len, const struct tp_rxinfo *ri)
{
	struct rec	*r = rec_new('r');

	r->addr = *src;
	assert_true(len <= sizeof(r->frame));
	memcpy(r->frame, f, len);
	r->len = len;
}

static void
host_writable(void *arg, struct tp *tp)
{
	writable++;
}

static void
host_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t us)
{
	struct rec	*r = rec_new('t');

	r->cookie = cookie;
	r->status = status;
	r->us = us;
}

static void
host_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
}

static void
host_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	struct rec	*r = rec_new('p');

	r->addr = *a;
	r->status = ev;
	r->reason = info->reason;
}

static struct tp_host host = {
	.now_ms = host_now,
	.rx = host_rx,
	.writable = host_writable,
	.tx_done = host_tx_done,
	.link = host_link,
	.peer = host_peer,
};

/* Index of the first record of `kind' with `cookie' (or any), else -1. */
static int
find(int kind, uint64_t cookie, bool any)
{
	int		 i;

	for (i = 0; i < nrecs; i++)
		if (recs[i].kind == kind && (any || recs[i].cookie == cookie))
			return (i);
	return (-1);
}

static void
loop_for(int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs the loop until the tx_done of `cookie' is in; its index. */
static int
wait_done(uint64_t cookie, int ms)
{
	uint64_t	 end = host_now(NULL) + (uint64_t)ms;
	int		 i;

	while ((i = find('t', cookie, false)) == -1 && host_now(NULL) < end)
		loop_for(5);
	return (i);
}

static int
count(int kind)
{
	int		 i, n = 0;

	for (i = 0; i < nrecs; i++)
		n += recs[i].kind == kind;
	return (n);
}

static int
count_from(int kind, const struct tp_addr *a)
{
	int		 i, n = 0;

	for (i = 0; i < nrecs; i++)
		n += recs[i].kind == kind && tp_addr_eq(&recs[i].addr, a);
	return (n);
}

/* ------------------------------------------------------------------ */
/* Processes                                                            */

static void
sh(const char *fmt, ...)
{
	char		 cmd[512];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static pid_t
spawn(const char *const argv[], const char *log, int *outfd)
{
	int		 p[2], fd;
	pid_t		 pid;

	if (outfd != NULL)
		assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		if (outfd != NULL) {
			dup2(p[1], 1);
			close(p[0]);
		} else
			dup2(fd, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (outfd != NULL) {
		close(p[1]);
		*outfd = p[0];
	}
	return (pid);
}

static void
stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, NULL, 0);
	*pid = -1;
}

/* upsim's rs485 bus with endpoints gw, n1 .. n(nodes). */
static void
sim_start(int nodes)
{
	char		 linkdir[96], ctl[96], line[256], eps[MAXN][16];
	const char	*argv[40];
	struct sockaddr_un sun;
	FILE		*f;
	int		 i, k = 0, fd;

	snprintf(linkdir, sizeof(linkdir), "%s/bus", dir);
	snprintf(ctl, sizeof(ctl), "%s/ctl", dir);
	argv[k++] = UPSIM;
	argv[k++] = "--personality";
	argv[k++] = "rs485";
	argv[k++] = "--endpoint";
	argv[k++] = "gw";
	for (i = 1; i <= nodes; i++) {
		snprintf(eps[i], sizeof(eps[i]), "n%d", i);
		argv[k++] = "--endpoint";
		argv[k++] = eps[i];
	}
	argv[k++] = "--baud";
	argv[k++] = BAUD;
	argv[k++] = "--format";
	argv[k++] = "8E1";
	argv[k++] = "--seed";
	argv[k++] = "7";
	argv[k++] = "--link-dir";
	argv[k++] = linkdir;
	argv[k++] = "--control";
	argv[k++] = ctl;
	argv[k] = NULL;
	snprintf(line, sizeof(line), "%s/upsim.log", dir);
	sim_pid = spawn(argv, line, &fd);
	f = fdopen(fd, "r");
	while (fgets(line, sizeof(line), f) != NULL &&
	    strcmp(line, "ready\n") != 0)
		;
	fclose(f);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ctl);
	ctl_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(ctl_fd, (struct sockaddr *)&sun,
	    sizeof(sun)), 0);
}

static void
sim_ctl(const char *cmd)
{
	char		 buf[256];
	ssize_t		 n;

	assert_true(write(ctl_fd, cmd, strlen(cmd)) > 0);
	assert_true(write(ctl_fd, "\n", 1) == 1);
	n = read(ctl_fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(strncmp(buf, "ok", 2) == 0);
}

/* Frames endpoint `ep' has sent on the bus, from upsim's status. */
static long
sim_tx_frames(const char *ep)
{
	static char	 buf[16384];
	char		 key[32];
	const char	*p;
	size_t		 len = 0;
	ssize_t		 n;

	assert_true(write(ctl_fd, "status\n", 7) == 7);
	while (len < sizeof(buf) - 1 && (len == 0 || buf[len - 1] != '\n')) {
		n = read(ctl_fd, buf + len, sizeof(buf) - 1 - len);
		assert_true(n > 0);
		len += (size_t)n;
	}
	buf[len] = '\0';
	snprintf(key, sizeof(key), "{\"name\": \"%s\"", ep);
	assert_non_null(p = strstr(buf, key));
	assert_non_null(p = strstr(p, "\"tx_frames\": "));
	return (strtol(p + 13, NULL, 10));
}

/* upnode i on the bus (rtu) or on a TCP port; extra link options. */
static void
node_start(int i, const char *transport, const char *opt1, const char *opt2)
{
	char		 id[16], sd[96], log[96], dev[128], unit[32];
	const char	*argv[40];
	int		 k = 0;

	snprintf(id, sizeof(id), "%d", i);
	snprintf(sd, sizeof(sd), "%s/n%d", dir, i);
	snprintf(log, sizeof(log), "%s/n%d.log", dir, i);
	snprintf(dev, sizeof(dev), "device=%s/bus/n%d", dir, i);
	snprintf(unit, sizeof(unit), "unit=%d", i);
	argv[k++] = UPNODE;
	argv[k++] = "--id";
	argv[k++] = id;
	argv[k++] = "--hw";
	argv[k++] = "sim";
	argv[k++] = "--component";
	argv[k++] = "fw=1.0";
	argv[k++] = "--state-dir";
	argv[k++] = sd;
	argv[k++] = "--pubkey";
	argv[k++] = "pub.pem";
	argv[k++] = "--slot-size";
	argv[k++] = "64K";
	argv[k++] = "--transport";
	argv[k++] = transport;
	if (strcmp(transport, "modbus-rtu") == 0) {
		argv[k++] = "--link-opt";
		argv[k++] = dev;
		argv[k++] = "--link-opt";
		argv[k++] = unit;
		argv[k++] = "--link-opt";
		argv[k++] = "baud=" BAUD;
	}
	if (opt1 != NULL) {
		argv[k++] = "--link-opt";
		argv[k++] = opt1;
	}
	if (opt2 != NULL) {
		argv[k++] = "--link-opt";
		argv[k++] = opt2;
	}
	argv[k++] = "-v";
	argv[k] = NULL;
	node_pid[i] = spawn(argv, log, NULL);
}

/*
 * Waits until node i has opened its line or its TCP server (its log
 * says so), up to WAIT_MS: a node under ASan on a loaded machine may
 * take seconds to start, and a probe or a connect before then fails.
 */
static void
node_ready(int i)
{
	char		 log[96], line[256];
	uint64_t	 end = host_now(NULL) + WAIT_MS;
	FILE		*f;
	int		 st;

	snprintf(log, sizeof(log), "%s/n%d.log", dir, i);
	for (;;) {
		if ((f = fopen(log, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL)
				if (strstr(line, ": modbus-rtu unit ") !=
				    NULL || strstr(line, ": modbus-tcp server "
				    "on ") != NULL) {
					fclose(f);
					return;
				}
			fclose(f);
		}
		if (waitpid(node_pid[i], &st, WNOHANG) == node_pid[i]) {
			node_pid[i] = -1;
			fail_msg("node %d exited before it opened its link", i);
		}
		if (host_now(NULL) >= end)
			fail_msg("node %d did not open its link in %d ms", i,
			    WAIT_MS);
		usleep(20000);
	}
}

static int
setup(void **state)
{
	int		 i;

	snprintf(dir, sizeof(dir), "/tmp/tp_modbus.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chdir(dir), 0);
	sh("openssl genpkey -algorithm ed25519 -out key.pem 2>/dev/null && "
	    "openssl pkey -in key.pem -pubout -out pub.pem");
	for (i = 0; i < MAXN; i++)
		node_pid[i] = -1;
	base = event_base_new();
	host.base = base;
	nrecs = 0;
	writable = 0;
	return (0);
}

static int
teardown(void **state)
{
	int		 i;

	for (i = 0; i < MAXN; i++)
		stop(&node_pid[i]);
	if (ctl_fd != -1)
		close(ctl_fd);
	ctl_fd = -1;
	stop(&sim_pid);
	event_base_free(base);
	if (getenv("TP_MODBUS_KEEP") == NULL)
		sh("rm -rf %s", dir);
	return (0);
}

static struct tp *
open_plugin(const char *type, const struct tp_kv *kv, size_t nkv)
{
	const struct tp_ops *ops = tp_find(type);
	struct tp_conf	 conf;
	struct tp	*tp;
	char		*cause = NULL;

	assert_non_null(ops);
	memset(&conf, 0, sizeof(conf));
	conf.name = "mb0";
	conf.options = ops->options;
	conf.nkv = nkv;
	conf.kv = kv;
	if (tp_conf_check(&conf, &cause) != 0)
		fail_msg("%s", cause);
	if (ops->open(&host, &conf, &tp, &cause) != 0)
		fail_msg("%s", cause);
	assert_int_equal(ops->start(tp, &cause), 0);
	return (tp);
}

static struct tp_addr
unit(int u)
{
	struct tp_addr	 a;

	memset(&a, 0, sizeof(a));
	a.len = 1;
	a.b[0] = (uint8_t)u;
	return (a);
}

static size_t
discover(uint8_t *buf, uint16_t window_ms)
{
	struct up_msg	 m;
	int		 n;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = window_ms;
	n = up_encode(&m, buf, UP_FRAME_MAX);
	assert_true(n > 0);
	return ((size_t)n);
}

static int
send_frame(const struct tp_ops *ops, struct tp *tp, const struct tp_addr *a,
    const uint8_t *f, size_t len, uint64_t cookie)
{
	struct iovec	 iov = { (void *)f, len };

	return (ops->send(tp, a, &iov, 1, cookie));
}

/* Polls `a' until an ANNOUNCE of node `id' came or `tries' are over. */
static int
poll_announce(const struct tp_ops *ops, struct tp *tp, int u, uint64_t id,
    int tries, uint64_t *cookie)
{
	struct tp_addr	 a = unit(u);
	struct up_msg	 m;
	int		 i, got = 0, before;

	for (i = 0; i < tries; i++) {
		before = nrecs;
		assert_int_equal(ops->poll(tp, &a, ++*cookie), TP_OK);
		assert_true(wait_done(*cookie, WAIT_MS) >= 0);
		for (; before < nrecs; before++) {
			if (recs[before].kind != 'r')
				continue;
			assert_int_equal(up_decode_any(recs[before].frame,
			    recs[before].len, &m), UP_OK);
			if (m.type == UP_T_ANNOUNCE &&
			    m.u.announce.node_id == id)
				got++;
		}
		if (got > 0)
			return (got);
	}
	return (got);
}

/* ------------------------------------------------------------------ */
/* modbus-rtu                                                           */

static void
test_rtu(void **state)
{
	const struct tp_ops *ops = tp_find("modbus-rtu");
	struct tp_kv	 kv[5];
	char		 dev[96];
	struct tp	*tp;
	struct tp_addr	 bc, a;
	struct tp_stats	 st;
	uint8_t		 f[UP_FRAME_MAX];
	uint64_t	 cookie = 0, t0;
	size_t		 len;
	long		 tx4;
	int		 i, found = 0, got;

	sim_start(5);
	node_start(1, "modbus-rtu", NULL, NULL);
	node_start(2, "modbus-rtu", NULL, NULL);
	/* Unit 4 answers as unit 9; unit 5 is always busy. */
	node_start(4, "modbus-rtu", "answer-unit=9", NULL);
	node_start(5, "modbus-rtu", "busy-pct=100", NULL);
	for (i = 1; i <= 5; i++)
		if (i != 3)
			node_ready(i);

	snprintf(dev, sizeof(dev), "%s/bus/gw", dir);
	kv[0] = (struct tp_kv){ "device", dev };
	kv[1] = (struct tp_kv){ "baud", BAUD };
	kv[2] = (struct tp_kv){ "units", "1-5" };
	kv[3] = (struct tp_kv){ "response_ms", RTU_RESPONSE };
	kv[4] = (struct tp_kv){ "probe_s", "0" };
	tp = open_plugin("modbus-rtu", kv, 5);

	/* Probing finds 1, 2 and 5 (4 answers as another unit, 3 is off). */
	t0 = host_now(NULL);
	while (count('p') < 3 && host_now(NULL) < t0 + WAIT_MS)
		loop_for(10);
	loop_for(200);
	for (i = 0; i < nrecs; i++) {
		if (recs[i].kind != 'p')
			continue;
		assert_int_equal(recs[i].status, TP_PEER_FOUND);
		assert_true(recs[i].addr.b[0] == 1 || recs[i].addr.b[0] == 2 ||
		    recs[i].addr.b[0] == 5);
		found++;
	}
	assert_int_equal(found, 3);

	/* The boot ANNOUNCE waits in node 1's outbox: read once, only once. */
	assert_int_equal(poll_announce(ops, tp, 1, 1, 3, &cookie), 1);
	nrecs = 0;
	a = unit(1);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ops->poll(tp, &a, ++cookie), TP_OK);
		assert_true(wait_done(cookie, WAIT_MS) >= 0);
	}
	assert_int_equal(count('r'), 0);
	assert_int_equal(recs[find('t', cookie, false)].status, TP_OK);

	/*
	 * A broadcast: no reply, no response timeout waited; not even from
	 * the node that answers as another unit (a reply to unit 0 would
	 * collide with the next request).
	 */
	tp_addr_broadcast(&bc);
	len = discover(f, 20);
	loop_for(50);
	tx4 = sim_tx_frames("n4");
	nrecs = 0;
	t0 = host_now(NULL);
	assert_int_equal(send_frame(ops, tp, &bc, f, len, ++cookie), TP_OK);
	assert_true((i = wait_done(cookie, WAIT_MS)) >= 0);
	assert_int_equal(recs[i].status, TP_OK);
	/* Well below the 1,000 ms a response timeout would take. */
	assert_true(host_now(NULL) - t0 < 500);
	/* Its airtime: 9 + 16 bytes at 11 bits and 115200 bit/s, + t3.5. */
	assert_in_range(recs[i].us, 2300, 4500);
	loop_for(100);
	assert_int_equal(sim_tx_frames("n4"), tx4);
	assert_int_equal(poll_announce(ops, tp, 1, 1, 5, &cookie), 1);
	assert_int_equal(poll_announce(ops, tp, 2, 2, 5, &cookie), 1);

	/* Unicast to a node, then to a unit nobody answers for, then on. */
	nrecs = 0;
	a = unit(2);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	assert_int_equal(recs[wait_done(cookie, WAIT_MS)].status, TP_OK);
	a = unit(3);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	assert_true((i = wait_done(cookie, WAIT_MS)) >= 0);
	assert_int_equal(recs[i].status, TP_ENOPEER);
	a = unit(4);	/* answers for unit 9: refused by the gateway */
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	assert_true((i = wait_done(cookie, WAIT_MS)) >= 0);
	assert_int_equal(recs[i].status, TP_ENOPEER);
	a = unit(5);	/* exception 6, server busy: alive, ask later */
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	assert_true((i = wait_done(cookie, WAIT_MS)) >= 0);
	assert_int_equal(recs[i].status, TP_EBUSY);
	a = unit(1);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	assert_int_equal(recs[wait_done(cookie, WAIT_MS)].status, TP_OK);
	ops->stats(tp, &st);
	assert_int_equal(st.tx_errors, 3);

	/* Too long a frame; a unit not configured; a full queue. */
	assert_int_equal(send_frame(ops, tp, &a, f, UP_MB_FRAME_MAX + 1,
	    ++cookie), TP_EMSGSIZE);
	a = unit(7);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie),
	    TP_ENOPEER);
	a = unit(1);
	for (i = 0; i < 4; i++)
		assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie),
		    TP_OK);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie),
	    TP_EAGAIN);
	writable = 0;
	while (writable == 0 && wait_done(cookie - 1, 10) == -1)
		;
	loop_for(50);
	assert_true(writable > 0);

	/*
	 * Half of what the gateway hears is garbled: CRC errors and lost
	 * replies.  Each fails alone; the outbox's acknowledgement still
	 * hands over node 2's ANNOUNCE exactly once.
	 */
	loop_for(100);
	sim_ctl("loss gw 50");
	a = unit(2);
	len = discover(f, 10);
	assert_int_equal(send_frame(ops, tp, &a, f, len, ++cookie), TP_OK);
	(void)wait_done(cookie, WAIT_MS);
	loop_for(50);
	nrecs = 0;
	got = poll_announce(ops, tp, 2, 2, 40, &cookie);
	assert_int_equal(got, 1);
	for (i = 0; i < 10; i++) {
		assert_int_equal(ops->poll(tp, &a, ++cookie), TP_OK);
		assert_true(wait_done(cookie, WAIT_MS) >= 0);
	}
	assert_int_equal(count('r'), 1);
	ops->stats(tp, &st);
	assert_true(st.rx_errors > 0);
	sim_ctl("loss gw 0");

	ops->close(tp);
}

/* ------------------------------------------------------------------ */
/* The node's side: requests outside the map                            */

static void
test_node_refuses(void **state)
{
	char		 dev[96];
	modbus_t	*ctx;
	uint16_t	 r[UP_MB_ID_N], v[4] = { 0, 0, 0, 0 };
	uint8_t		 bits[8], f[UP_FRAME_MAX];
	struct up_mb_ident id;
	struct up_mb_status st;
	uint64_t	 t0;
	size_t		 len;
	int		 n;

	sim_start(1);
	node_start(1, "modbus-rtu", NULL, NULL);
	node_ready(1);
	snprintf(dev, sizeof(dev), "%s/bus/gw", dir);
	ctx = modbus_new_rtu(dev, 115200, 'E', 8, 1);
	assert_non_null(ctx);
	assert_int_equal(modbus_connect(ctx), 0);
	modbus_set_slave(ctx, 1);
	modbus_set_response_timeout(ctx, 1, 0);

	assert_int_equal(modbus_read_input_registers(ctx, UP_MB_ID,
	    UP_MB_ID_N > 125 ? 125 : UP_MB_ID_N, r), 125);
	assert_int_equal(modbus_read_input_registers(ctx, UP_MB_ID + 125,
	    UP_MB_ID_N - 125 > 125 ? 125 : UP_MB_ID_N - 125, r + 125),
	    UP_MB_ID_N - 125 > 125 ? 125 : UP_MB_ID_N - 125);
	if (UP_MB_ID_N > 250)
		assert_int_equal(modbus_read_input_registers(ctx,
		    UP_MB_ID + 250, UP_MB_ID_N - 250, r + 250),
		    UP_MB_ID_N - 250);
	assert_int_equal(up_mb_ident_decode(r, UP_MB_ID_N, &id), UP_OK);
	assert_true(id.node_id == 1);
	assert_string_equal(id.hw, "sim");
	assert_int_equal(id.ncomp, 1);
	assert_string_equal(id.comp[0].name, "fw");
	assert_string_equal(id.comp[0].version, "1.0");

	/* Outside the map, the middle of a window, unknown functions. */
	assert_int_equal(modbus_write_registers(ctx, 0x0500, 4, v), -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(modbus_write_registers(ctx, UP_MB_FRAME + 1, 2, v),
	    -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(modbus_write_register(ctx, UP_MB_OB_SEQ, 1), -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(modbus_read_registers(ctx, UP_MB_ID, 2, v), -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(modbus_read_bits(ctx, 0, 8, bits), -1);
	assert_int_equal(errno, EMBXILFUN);
	/* Bad values: a pad byte, an unaligned base, no session. */
	v[0] = 0x0102;
	v[1] = 0x03ff;
	assert_int_equal(modbus_write_registers(ctx, UP_MB_FRAME_ODD, 2, v),
	    -1);
	assert_int_equal(errno, EMBXILVAL);
	v[0] = 0;
	v[1] = 5;
	assert_int_equal(modbus_write_registers(ctx, UP_MB_BMBASE, 2, v), -1);
	assert_int_equal(errno, EMBXILVAL);
	assert_int_equal(modbus_write_register(ctx, UP_MB_CTRL,
	    UP_MB_CMD_VERIFY), -1);
	assert_int_equal(errno, EMBXILVAL);

	/* Still serving; it counted what it refused. */
	assert_int_equal(modbus_read_input_registers(ctx, UP_MB_ST,
	    UP_MB_ST_N, r), UP_MB_ST_N);
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N, &st), UP_OK);
	assert_int_equal(st.state, UP_NS_IDLE);
	assert_int_equal(st.rx_errors, 8);

	/*
	 * A frame through the window, its answer through the outbox: the
	 * boot ANNOUNCE first, acknowledged, then the DISCOVER's.
	 */
	v[0] = 0;
	assert_int_equal(modbus_write_and_read_registers(ctx, UP_MB_OB_ACK, 1,
	    v, UP_MB_OB_SEQ, 2, r), 2);
	assert_true(r[0] != 0 && r[1] > 0);
	v[0] = r[0];
	assert_int_equal(modbus_write_and_read_registers(ctx, UP_MB_OB_ACK, 1,
	    v, UP_MB_OB_SEQ, 2, r), 2);
	assert_int_equal(r[1], 0);
	len = discover(f, 1);
	{
		uint16_t regs[UP_MB_FRAME_N];
		uint16_t addr = up_mb_frame_regs(f, len, regs);

		assert_int_equal(modbus_write_registers(ctx, addr,
		    (int)(len + 1) / 2, regs), (int)(len + 1) / 2);
	}
	/* Its ANNOUNCE comes within the DISCOVER's window: polled for. */
	t0 = host_now(NULL);
	do {
		n = modbus_write_and_read_registers(ctx, UP_MB_OB_ACK, 1, v,
		    UP_MB_OB_SEQ, 2, r);
		assert_int_equal(n, 2);
		if (r[1] > 0)
			break;
		usleep(20000);
	} while (host_now(NULL) < t0 + WAIT_MS);
	assert_true(r[0] != 0 && r[0] != v[0] && r[1] > 0);
	assert_int_equal(modbus_read_input_registers(ctx, UP_MB_ST,
	    UP_MB_ST_N, r), UP_MB_ST_N);
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N, &st), UP_OK);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(st.outbox, 1);

	modbus_close(ctx);
	modbus_free(ctx);
}

/* ------------------------------------------------------------------ */
/* modbus-tcp                                                           */

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t	 sl = sizeof(sin);
	int		 fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return (port);
}

static int
wait_peer(const struct tp_addr *a, int ev, int ms, int *reason)
{
	uint64_t	 end = host_now(NULL) + (uint64_t)ms;
	int		 i;

	for (;;) {
		for (i = 0; i < nrecs; i++)
			if (recs[i].kind == 'p' && recs[i].status == ev &&
			    tp_addr_eq(&recs[i].addr, a)) {
				if (reason != NULL)
					*reason = recs[i].reason;
				recs[i].kind = 'x';
				return (0);
			}
		if (host_now(NULL) >= end)
			return (-1);
		loop_for(5);
	}
}

static void
test_tcp(void **state)
{
	const struct tp_ops *ops = tp_find("modbus-tcp");
	struct tp_kv	 kv[3];
	struct tp_addr	 p[3];
	struct tp	*tp;
	char		 peers[128], l1[64], l2[64], *cause;
	uint8_t		 f[UP_FRAME_MAX];
	uint64_t	 cookie = 100, t0;
	size_t		 len;
	int		 port[3], i, reason;

	for (i = 0; i < 3; i++)
		port[i] = free_port();
	snprintf(l1, sizeof(l1), "listen=127.0.0.1:%d", port[0]);
	snprintf(l2, sizeof(l2), "listen=127.0.0.1:%d", port[1]);
	node_start(1, "modbus-tcp", l1, NULL);
	node_start(2, "modbus-tcp", l2, NULL);
	node_ready(1);
	node_ready(2);
	snprintf(peers, sizeof(peers), "127.0.0.1:%d, 127.0.0.1:%d,"
	    "127.0.0.1:%d/3", port[0], port[1], port[2]);
	kv[0] = (struct tp_kv){ "peers", peers };
	kv[1] = (struct tp_kv){ "max_peers", "2" };
	kv[2] = (struct tp_kv){ "response_ms", TCP_RESPONSE };
	tp = open_plugin("modbus-tcp", kv, 3);
	for (i = 0; i < 3; i++) {
		char	 s[64];

		snprintf(s, sizeof(s), "127.0.0.1:%d%s", port[i],
		    i == 2 ? "/3" : "");
		assert_int_equal(ops->addr_parse(s, &p[i], &cause), 0);
		assert_int_equal(wait_peer(&p[i], TP_PEER_FOUND, WAIT_MS, NULL),
		    0);
	}
	/* No broadcast on TCP; no frames before a connection. */
	len = discover(f, 10);
	assert_int_equal(send_frame(ops, tp, &p[0], f, len, ++cookie),
	    TP_ENOPEER);

	assert_int_equal(ops->connect(tp, &p[0]), TP_OK);
	assert_int_equal(ops->connect(tp, &p[1]), TP_OK);
	assert_int_equal(ops->connect(tp, &p[2]), TP_EAGAIN);
	assert_int_equal(wait_peer(&p[0], TP_PEER_UP, WAIT_MS, NULL), 0);
	assert_int_equal(wait_peer(&p[1], TP_PEER_UP, WAIT_MS, NULL), 0);

	/*
	 * Both served at once: the boot ANNOUNCEs, one from each (a node
	 * queues its own once its loop runs: polled again until in).
	 */
	nrecs = 0;
	t0 = host_now(NULL);
	while ((count_from('r', &p[0]) == 0 || count_from('r', &p[1]) == 0) &&
	    host_now(NULL) < t0 + WAIT_MS) {
		assert_int_equal(ops->poll(tp, &p[0], ++cookie), TP_OK);
		assert_int_equal(ops->poll(tp, &p[1], ++cookie), TP_OK);
		assert_true(wait_done(cookie, WAIT_MS) >= 0);
		assert_true(wait_done(cookie - 1, WAIT_MS) >= 0);
	}
	assert_int_equal(count_from('r', &p[0]), 1);
	assert_int_equal(count_from('r', &p[1]), 1);
	assert_int_equal(send_frame(ops, tp, &p[1], f, len, ++cookie), TP_OK);
	assert_int_equal(recs[wait_done(cookie, WAIT_MS)].status, TP_OK);

	/* A slot freed; the third server is not there. */
	ops->disconnect(tp, &p[1]);
	assert_int_equal(wait_peer(&p[1], TP_PEER_DOWN, WAIT_MS, &reason), 0);
	assert_int_equal(reason, 0);
	assert_int_equal(ops->connect(tp, &p[2]), TP_OK);
	assert_int_equal(wait_peer(&p[2], TP_PEER_DOWN, WAIT_MS, &reason), 0);
	assert_int_equal(reason, TP_ENOPEER);

	/* A server that dies: the next request fails, the peer is down. */
	stop(&node_pid[1]);
	nrecs = 0;
	assert_int_equal(send_frame(ops, tp, &p[0], f, len, ++cookie), TP_OK);
	assert_true((i = wait_done(cookie, WAIT_MS)) >= 0);
	assert_int_equal(recs[i].status, TP_EIO);
	assert_int_equal(wait_peer(&p[0], TP_PEER_DOWN, WAIT_MS, &reason), 0);
	assert_int_equal(reason, TP_EIO);
	ops->close(tp);
}

static void
log_hook(int level, const char *fmt, va_list ap)
{
	if (level > UP_LOG_INFO && getenv("TP_MODBUS_DEBUG") == NULL)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rtu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_refuses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	up_log_set_hook(log_hook);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
