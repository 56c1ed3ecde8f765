/*
 * test_sim_plc.c: the station-area simulator (sim_plc.c) against the real
 * plc transport (transports/plc/), on real pty pairs.
 *
 * The simulator runs in this process on its own loop (time scale 20),
 * the transport opens the `gw' pty as its module's UART, and the test
 * plays each station's device on its pty with the module-side codec
 * (q1376.h): it answers forwarded frames, confirms broadcasts and
 * acknowledges file blocks, checking each against the package.
 * The station area: n1 and n2 under the module, n3 and n4 under n1, n5
 * and n6 under n3 (three relay levels).
 *
 * Covered: the topology the transport reports (levels, parents); UP to a
 * station three hops away and its answer, a station event, a broadcast
 * to every device, a frame to a station that dropped off; module offload
 * of a package to every station with loss on the hops; a module reset in
 * the middle of the transfer (resume by segment id, with the file kept
 * in flash, and start over without); a station that drops off during
 * the distribution and returns, and a relay that reboots: every device
 * ends with the whole package and the transport reports each done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/time.h>

#include <poll.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transport.h"
#include "q1376.h"
#include "upnode.h"
#include "upsim.h"
#include "ub_test.h"

#define NST		6		/* stations */
#define SCALE		20.0
#define PKG		20000
#define WAIT_MS		20000

struct dev {
	struct sim_ep	*ep;
	int		 fd;
	struct event	*ev;
	struct q_rx	 rx;
	uint8_t		 addr[6];
	bool		 mute;		/* acknowledges no block */
	unsigned int	 fwd, bcast, blocks, bad_blocks;
	uint8_t		 have[(PKG + 399) / 400 / 8 + 1];
	unsigned int	 nhave;
	uint8_t		 last[255];
	size_t		 last_len;
};

struct pg {
	struct tp_addr	 a;
	uint8_t		 level;
	struct tp_addr	 parent;
	enum tp_offload_state st;
	uint64_t	 bytes;
};

static struct {
	struct event_base *base;
	struct sim	*sim;
	struct sim_ep	*gw;
	struct dev	 dev[NST];
	const struct tp_ops *ops;
	struct tp	*tp;
	struct tp_host	 host;
	int		 up;
	unsigned int	 npeer;
	struct pg	 peer[NST];
	int		 rx_n;
	struct tp_addr	 rx_src;
	uint8_t		 rx_buf[256];
	size_t		 rx_len;
	int		 done_n, done_status;
	bool		 module_done;
	uint8_t		 pkg[PKG];
} T;

/* ------------------------------------------------------------------ */
/* The host of the transport                                            */

static struct pg *
peer_of(const struct tp_addr *a)
{
	unsigned int	 i;

	for (i = 0; i < T.npeer; i++)
		if (tp_addr_eq(&T.peer[i].a, a))
			return (&T.peer[i]);
	return (NULL);
}

static void
h_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	T.rx_n++;
	T.rx_src = *src;
	memcpy(T.rx_buf, frame, len);
	T.rx_len = len;
}

static void
h_writable(void *arg, struct tp *tp)
{
}

static void
h_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t us)
{
	T.done_n++;
	T.done_status = status;
}

static void
h_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	if (ev == TP_LINK_UP)
		T.up++;
}

static void
h_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	struct pg	*p;

	if ((p = peer_of(a)) == NULL) {
		assert_true(T.npeer < NST);
		p = &T.peer[T.npeer++];
		p->a = *a;
	}
	p->level = info->level;
	p->parent = info->parent;
}

static int
h_read(void *arg, struct tp *tp, uint32_t id, uint64_t off, uint8_t *buf,
    size_t len)
{
	assert_true(off + len <= PKG);
	memcpy(buf, T.pkg + off, len);
	return (0);
}

static void
h_progress(void *arg, struct tp *tp, uint32_t id, const struct tp_addr *a,
    enum tp_offload_state st, uint64_t bytes)
{
	struct pg	*p;

	if (a == NULL) {
		if (st == TP_OFF_DONE)
			T.module_done = true;
		return;
	}
	assert_non_null(p = peer_of(a));
	p->st = st;
	p->bytes = bytes;
}

/* ------------------------------------------------------------------ */
/* The devices on the stations' ports                                   */

static void
dev_send(struct dev *d, uint8_t c, uint8_t seq, uint8_t afn, uint16_t fn,
    const uint8_t *du, size_t dulen)
{
	struct q_frame	 f;
	uint8_t		 out[Q_MAX];
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = c;
	f.r[5] = seq;
	f.afn = afn;
	f.fn = fn;
	f.data = du;
	f.len = dulen;
	assert_true((n = q_encode(&f, out, sizeof(out))) > 0);
	assert_int_equal(write(d->fd, out, (size_t)n), n);
}

static void
dev_frame(struct dev *d, const uint8_t *p, size_t len)
{
	struct q_frame	 f;
	const char	*why;
	uint8_t		 du[300];
	size_t		 off = 0, mlen, o = 0;
	bool		 ok = true;
	uint32_t	 idx, blen;

	assert_int_equal(q_decode(p, len, &f, &why), 0);
	assert_false(f.c & Q_DIR_UP);
	if (f.afn == 0x13 && f.fn == 1) {
		off = 3;
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		assert_true(ok && f.len - off == mlen);
		d->fwd++;
		memcpy(d->last, f.data + off, mlen);
		d->last_len = mlen;
		/* The answer: the frame with one byte more. */
		o = q_put(du, sizeof(du), o, 0, 2);
		o = q_put(du, sizeof(du), o, 0, 1);
		o = q_put(du, sizeof(du), o, mlen + 1, 1);
		o = q_put_bytes(du, sizeof(du), o, f.data + off, mlen);
		o = q_put(du, sizeof(du), o, 0xaa, 1);
		dev_send(d, Q_DIR_UP | Q_COMM_HPLC, Q_SEQ(&f), 0x13, 1, du, o);
	} else if (f.afn == 0x05 && f.fn == 3) {
		d->bcast++;
		off = 1;
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		memcpy(d->last, f.data + off, mlen);
		d->last_len = mlen;
	} else if (f.afn == 0x15 && f.fn == 1) {
		off = 5;
		idx = q_get(f.data, f.len, &off, 4, &ok);
		blen = q_get(f.data, f.len, &off, 2, &ok);
		assert_true(ok && f.len - off == blen);
		d->blocks++;
		if ((uint64_t)idx * 400 + blen > PKG ||
		    memcmp(f.data + off, T.pkg + idx * 400, blen) != 0) {
			d->bad_blocks++;
			return;
		}
		if (d->mute)
			return;
		if (!(d->have[idx / 8] & (1u << (idx % 8)))) {
			d->have[idx / 8] |= (uint8_t)(1u << (idx % 8));
			d->nhave++;
		}
		(void)q_put(du, sizeof(du), 0, idx, 4);
		dev_send(d, Q_DIR_UP | Q_COMM_HPLC, Q_SEQ(&f), 0x15, 1, du, 4);
	}
}

static void
dev_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev	*d = arg;
	const uint8_t	*p;
	uint8_t		 buf[512];
	size_t		 len;
	ssize_t		 n;
	int		 r;

	while ((n = read(d->fd, buf, sizeof(buf))) > 0) {
		(void)q_rx_feed(&d->rx, buf, (size_t)n);
		while ((r = q_rx_next(&d->rx, &p, &len)) != 0)
			if (r > 0)
				dev_frame(d, p, len);
	}
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

static void
brk_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(T.base);
}

#define WAIT_FOR(cond)	UBT_WAIT_FOR(T.base, cond, WAIT_MS)

static void
command(const char *line)
{
	char		*cause = NULL;

	if (sim_command(T.sim, line, &cause) != 0)
		fail_msg("%s: %s", line, cause);
}

/* The station area, the transport on gw. */
static void
area_new(const char **opts, unsigned int nopt)
{
	static const char *const parent[NST] = { "gw", "gw", "n1", "n1",
	    "n3", "n3" };
	struct event_config *cfg;
	struct sim_conf	 conf;
	struct tp_conf	 tc;
	struct tp_kv	 kv[8];
	char		*cause = NULL, name[8], *eq;
	unsigned int	 i;

	memset(&T, 0, sizeof(T));
	for (i = 0; i < PKG; i++)
		T.pkg[i] = (uint8_t)(i * 31 + (i >> 8));
	cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	T.base = event_base_new_with_config(cfg);
	event_config_free(cfg);

	memset(&conf, 0, sizeof(conf));
	assert_non_null(conf.pers = sim_personality_find("plc"));
	conf.time_scale = SCALE;
	conf.seed = 7;
	conf.verbose = getenv("TEST_LOG") != NULL;
	assert_int_equal(sim_fmt_parse("8E1", 9600, &conf.fmt), 0);
	for (i = 0; i < nopt; i++) {
		static char	 buf[16][64];

		snprintf(buf[i], sizeof(buf[i]), "%s", opts[i]);
		assert_non_null(eq = strchr(buf[i], '='));
		*eq = '\0';
		conf.opt[conf.nopt].key = buf[i];
		conf.opt[conf.nopt++].value = eq + 1;
	}
	if ((T.sim = sim_new(T.base, &conf, &cause)) == NULL)
		fail_msg("%s", cause);
	assert_non_null(T.gw = sim_ep_add(T.sim, "gw", &cause));
	for (i = 0; i < NST; i++) {
		snprintf(name, sizeof(name), "n%u", i + 1);
		assert_non_null(T.dev[i].ep = sim_ep_add(T.sim, name, &cause));
		assert_int_equal(sim_ep_set(T.dev[i].ep, "parent", parent[i],
		    &cause), 0);
	}
	if (sim_start(T.sim, &cause) != 0)
		fail_msg("%s", cause);
	for (i = 0; i < NST; i++) {
		struct dev	*d = &T.dev[i];

		q_rx_init(&d->rx);
		snprintf(name, sizeof(name), "%04u", i + 1);
		d->fd = node_serial_open(d->ep->pty, 9600, "8E1", &cause);
		assert_true(d->fd >= 0);
		d->ev = event_new(T.base, d->fd, EV_READ | EV_PERSIST,
		    dev_read_cb, d);
		event_add(d->ev, NULL);
	}

	T.host.base = T.base;
	T.host.now_ms = ubt_host_now_ms;
	T.host.rx = h_rx;
	T.host.writable = h_writable;
	T.host.tx_done = h_tx_done;
	T.host.link = h_link;
	T.host.peer = h_peer;
	T.host.offload_read = h_read;
	T.host.offload_progress = h_progress;
	assert_non_null(T.ops = tp_find("plc"));
	i = 0;
	kv[i++] = (struct tp_kv){ "type", "plc" };
	kv[i++] = (struct tp_kv){ "device", T.gw->pty };
	kv[i++] = (struct tp_kv){ "status_interval_s", "1" };
	kv[i++] = (struct tp_kv){ "timeout_ms", "1000" };
	tc.name = "plc0";
	tc.options = T.ops->options;
	tc.kv = kv;
	tc.nkv = i;
	assert_int_equal(tp_conf_check(&tc, &cause), 0);
	if (T.ops->open(&T.host, &tc, &T.tp, &cause) != 0)
		fail_msg("%s", cause);
	assert_int_equal(T.ops->start(T.tp, &cause), 0);
	WAIT_FOR(T.up >= 1 && T.npeer == NST);
}

static void
area_free(void)
{
	unsigned int	 i;

	T.ops->close(T.tp);
	for (i = 0; i < NST; i++) {
		event_free(T.dev[i].ev);
		if (T.dev[i].fd != -1)
			close(T.dev[i].fd);
	}
	sim_free(T.sim);
	event_base_free(T.base);
}

static struct tp_addr
station(unsigned int i)
{
	struct tp_addr	 a;
	char		 s[24];

	snprintf(s, sizeof(s), "plc:20190500%04u", i + 1);
	assert_int_equal(T.ops->addr_parse(s, &a, NULL), 0);
	return (a);
}

/* ------------------------------------------------------------------ */

static void
check_topology(void)
{
	static const unsigned int level[NST] = { 1, 1, 2, 2, 3, 3 };
	static const int parent[NST] = { -1, -1, 0, 0, 2, 2 };
	struct tp_addr	 a, pa;
	struct pg	*p;
	unsigned int	 i;

	for (i = 0; i < NST; i++) {
		a = station(i);
		assert_non_null(p = peer_of(&a));
		assert_int_equal(p->level, level[i]);
		if (parent[i] < 0)
			assert_int_equal(p->parent.len, 0);
		else {
			pa = station((unsigned int)parent[i]);
			assert_true(tp_addr_eq(&p->parent, &pa));
		}
	}
}

static void
test_topology(void **state)
{
	const char	*opts[] = { "topology=f2" };

	/* 10H F21, then a module without it: 10H F2 and F3. */
	area_new(NULL, 0);
	check_topology();
	area_free();
	area_new(opts, 1);
	check_topology();
	area_free();
}

static void
test_forwarding(void **state)
{
	struct tp_addr	 a, bc;
	struct iovec	 iov;
	uint8_t		 msg[40];
	unsigned int	 i;

	area_new(NULL, 0);
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	/* Three hops down, the device's answer three hops up. */
	a = station(4);
	assert_int_equal(T.ops->send(T.tp, &a, &iov, 1, 1), TP_OK);
	WAIT_FOR(T.rx_n == 1 && T.done_n == 1);
	assert_int_equal(T.done_status, TP_OK);
	assert_true(tp_addr_eq(&T.rx_src, &a));
	assert_int_equal(T.rx_len, sizeof(msg) + 1);
	assert_memory_equal(T.rx_buf, msg, sizeof(msg));
	assert_int_equal(T.dev[4].fwd, 1);
	assert_int_equal(T.dev[3].fwd, 0);

	/* A broadcast reaches every device. */
	tp_addr_broadcast(&bc);
	assert_int_equal(T.ops->send(T.tp, &bc, &iov, 1, 2), TP_OK);
	WAIT_FOR(T.done_n == 2);
	for (i = 0; i < NST; i++)
		WAIT_FOR(T.dev[i].bcast == 1);

	/* A device speaks unprompted: an event from its station. */
	{
		uint8_t		 du[64];
		size_t		 o = 0;

		o = q_put(du, sizeof(du), o, 1, 1);
		o = q_put(du, sizeof(du), o, 0, 1);
		o = q_put(du, sizeof(du), o, 3, 1);
		o = q_put_bytes(du, sizeof(du), o, "abc", 3);
		dev_send(&T.dev[3], Q_DIR_UP | Q_PRM | Q_COMM_HPLC, 9, 0x06,
		    5, du, o);
	}
	WAIT_FOR(T.rx_n == 2);
	a = station(3);
	assert_true(tp_addr_eq(&T.rx_src, &a));
	assert_int_equal(T.rx_len, 3);

	/* A station that dropped off: forwarded, nothing comes back. */
	command("detach n6");
	a = station(5);
	assert_int_equal(T.ops->send(T.tp, &a, &iov, 1, 3), TP_OK);
	WAIT_FOR(T.done_n == 3);
	assert_int_equal(T.done_status, TP_OK);
	assert_int_equal(T.rx_n, 2);
	assert_int_equal(T.dev[5].fwd, 0);
	area_free();
}

/* The station link of upnode (node_plc.c) on n5's port. */
static struct {
	struct node_link *l;
	struct event	*ev;
	int		 n;
	uint8_t		 buf[255];
	ssize_t		 len;
} NL;

static void
nl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pollfd	 pfd;
	struct node_link_src src;
	ssize_t		 n;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = POLLIN;
	while ((n = node_link_plc.recv(NL.l, &pfd, NL.buf, sizeof(NL.buf),
	    &src)) > 0) {
		NL.n++;
		NL.len = n;
		/* The node answers at once, as the UP engine does. */
		if (NL.buf[0] == 0x42)
			assert_int_equal(node_link_plc.send(NL.l, NL.buf,
			    (size_t)n), 0);
	}
}

static void
test_node_link(void **state)
{
	struct node_conf conf;
	struct node_link_caps caps;
	struct pollfd	 pfd;
	struct tp_addr	 a, bc;
	struct iovec	 iov;
	uint8_t		 msg[20];
	char		*cause = NULL;

	area_new(NULL, 0);
	/* n5's device is upnode's link now. */
	event_free(T.dev[4].ev);
	close(T.dev[4].fd);
	memset(&conf, 0, sizeof(conf));
	conf.link = &node_link_plc;
	conf.linkopt[0].key = "device";
	conf.linkopt[0].value = T.dev[4].ep->pty;
	conf.nlinkopt = 1;
	assert_null(node_link_opt_check(&node_link_plc, "device",
	    T.dev[4].ep->pty));
	assert_non_null(node_link_opt_check(&node_link_plc, "baud", "9601"));
	assert_non_null(node_link_opt_check(&node_link_plc, "bogus", "1"));
	if ((NL.l = node_link_plc.open(&conf, -1, &cause)) == NULL)
		fail_msg("%s", cause);
	node_link_plc.caps(NL.l, &caps);
	assert_int_equal(caps.rx_max, 255);
	assert_int_equal(caps.mtu_up, 255);
	/* Compact, with UP's CRC-16 (the 8-bit sum is no frame check), the
	 * station address names the node (up-protocol §11.1, §11.3). */
	assert_int_equal(caps.flags, NODE_LINK_BROADCAST |
	    NODE_LINK_HALF_DUPLEX | NODE_LINK_COMPACT | NODE_LINK_WEAK_CHECK |
	    NODE_LINK_ADDRESSED);
	assert_int_equal(caps.boot_slots, 32);
	assert_int_equal(caps.boot_slot_ms, 500);
	assert_non_null(node_link_opt_check(&node_link_plc, "boot_slot_ms",
	    "60001"));
	assert_null(node_link_opt_check(&node_link_plc, "boot_slots", "0"));
	assert_int_equal(node_link_plc.pollfds(NL.l, &pfd, 1), 1);
	NL.ev = event_new(T.base, pfd.fd, EV_READ | EV_PERSIST, nl_cb, NULL);
	event_add(NL.ev, NULL);

	/* Forwarded to n5, answered by the link within reply_ms: the
	 * answer comes back in the module's reply. */
	memset(msg, 0x42, sizeof(msg));
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	a = station(4);
	assert_int_equal(T.ops->send(T.tp, &a, &iov, 1, 1), TP_OK);
	WAIT_FOR(T.rx_n == 1 && T.done_n == 1);
	assert_true(tp_addr_eq(&T.rx_src, &a));
	assert_int_equal(T.rx_len, sizeof(msg));
	assert_int_equal(NL.n, 1);
	/* A broadcast reaches it too. */
	msg[0] = 0x01;
	tp_addr_broadcast(&bc);
	assert_int_equal(T.ops->send(T.tp, &bc, &iov, 1, 2), TP_OK);
	WAIT_FOR(NL.n == 2);
	assert_int_equal(NL.len, sizeof(msg));
	/* What the node sends by itself goes up as an event. */
	assert_int_equal(node_link_plc.send(NL.l, (const uint8_t *)"hello",
	    5), 0);
	/*
	 * Wait for it by content, not by count: on a loaded machine the
	 * node's answer above can come after the module's reply window,
	 * and the module's retry of the forwarding then brings a second
	 * answer up first.
	 */
	WAIT_FOR(T.rx_n >= 2 && T.rx_len == 5 &&
	    memcmp(T.rx_buf, "hello", 5) == 0);
	assert_true(tp_addr_eq(&T.rx_src, &a));
	assert_int_equal(T.rx_len, 5);
	assert_memory_equal(T.rx_buf, "hello", 5);
	/* Too long for the link. */
	assert_int_equal(node_link_plc.send(NL.l, T.pkg, 256), -1);

	event_free(NL.ev);
	node_link_plc.close(NL.l);
	T.dev[4].ev = event_new(T.base, -1, 0, brk_cb, NULL);
	T.dev[4].fd = -1;
	area_free();
}

static unsigned long long gw_stat(const char *);

static void
offload(void)
{
	struct tp_offload o;
	char		*cause = NULL;

	memset(&o, 0, sizeof(o));
	o.id = 1;
	o.size = PKG;
	if (T.ops->offload_start(T.tp, &o, &cause) != 0)
		fail_msg("%s", cause);
}

static void
all_done(void)
{
	unsigned int	 i;

	for (i = 0; i < NST; i++) {
		WAIT_FOR(T.dev[i].nhave == (PKG + 399) / 400);
		assert_int_equal(T.dev[i].bad_blocks, 0);
	}
	for (i = 0; i < NST; i++) {
		WAIT_FOR(T.peer[i].st == TP_OFF_DONE);
		assert_int_equal(T.peer[i].bytes, PKG);
	}
}

static void
test_offload(void **state)
{
	const char	*opts[] = { "rounds=1" };

	/* One broadcast round over lossy hops: the stragglers get their
	 * blocks by unicast repair. */
	area_new(opts, 1);
	command("loss n3 10");
	command("loss n5 20");
	offload();
	WAIT_FOR(T.module_done);
	all_done();
	assert_true(gw_stat("blocks_unicast") > 0);
	area_free();
}

/* A status line's number for the gw endpoint's "plc" member. */
static unsigned long long
gw_stat(const char *key)
{
	char		*buf = NULL, *p, pat[64];
	size_t		 len = 0;
	FILE		*f = open_memstream(&buf, &len);
	unsigned long long v;

	sim_status_json(T.sim, f);
	fclose(f);
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	assert_non_null(p = strstr(buf, pat));
	v = strtoull(p + strlen(pat), NULL, 10);
	free(buf);
	return (v);
}

static void
test_offload_reset(void **state)
{
	unsigned int	 nseg = (PKG + 1023) / 1024;

	area_new(NULL, 0);
	offload();
	/* The module resets once it holds 8 segments. */
	WAIT_FOR(gw_stat("file_segments") >= 8);
	command("reset gw");
	WAIT_FOR(T.module_done);
	/* Resumed by segment id: the segments after the reset, not the
	 * whole file again (the clear, a repeat or two). */
	assert_true(gw_stat("segments") <= nseg + 4);
	all_done();
	area_free();
}

static void
test_offload_no_flash(void **state)
{
	const char	*opts[] = { "flash=no" };
	unsigned int	 nseg = (PKG + 1023) / 1024;

	area_new(opts, 1);
	offload();
	WAIT_FOR(gw_stat("file_segments") >= 8);
	command("reset gw");
	WAIT_FOR(T.module_done);
	/* The module lost its file: it refused the resumed segment and
	 * the transfer started over. */
	assert_true(gw_stat("segments") > nseg + 4);
	all_done();
	area_free();
}

/* Waits until the simulator's clock passes `ms' more. */
static void
sim_wait_ms(uint64_t ms)
{
	uint64_t	 until = sim_now(T.sim) + ms * SIM_NS_PER_MS;

	WAIT_FOR(sim_now(T.sim) >= until);
}

static void
test_offload_faults(void **state)
{
	const char	*opts[] = { "repair-rounds=30" };

	area_new(opts, 1);
	offload();
	WAIT_FOR(T.module_done);
	/* n6 drops off during the carousel and returns 16 s later; the
	 * relay n3 (n5 and n6 behind it) reboots meanwhile. */
	command("detach n6");
	sim_wait_ms(6000);
	command("reboot n3 3000");
	sim_wait_ms(10000);
	command("attach n6");
	all_done();
	area_free();
}

static void
test_offload_give_up(void **state)
{
	const char	*opts[] = { "repair-rounds=3" };
	unsigned int	 i;

	area_new(opts, 1);
	/* n6 is gone for good: the module gives it up, the others get
	 * everything. */
	command("detach n6");
	offload();
	for (i = 0; i < NST - 1; i++) {
		WAIT_FOR(T.dev[i].nhave == (PKG + 399) / 400);
		WAIT_FOR(T.peer[i].st == TP_OFF_DONE);
	}
	WAIT_FOR(T.peer[5].st == TP_OFF_FAILED);
	assert_int_equal(T.dev[5].nhave, 0);
	area_free();
}

static void
log_hook(int level, const char *fmt, va_list ap)
{
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_forwarding),
		cmocka_unit_test(test_node_link),
		cmocka_unit_test(test_offload),
		cmocka_unit_test(test_offload_reset),
		cmocka_unit_test(test_offload_no_flash),
		cmocka_unit_test(test_offload_faults),
		cmocka_unit_test(test_offload_give_up),
	};

	/* TEST_LOG=1: the transport's and the simulator's logs. */
	if (getenv("TEST_LOG") != NULL)
		up_log_set_hook(log_hook);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
