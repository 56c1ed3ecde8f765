/*
 * test_tp_plc.c: the "plc" plugin against a scripted carrier module on a
 * real pty pair.
 *
 * The plugin opens the pty's slave as its UART (termios, 8E1 with
 * INPCK); the test holds the master and plays the module: it reads the
 * plugin's requests with its own deframer, checks them and answers with
 * frames it builds, including wrong ones.  A small host on a libevent
 * loop records what the plugin reports.  Every wait is bounded: the loop
 * runs in slices until a frame or a callback arrives or a deadline passes.
 *
 * Covered: set-up (03H F10), the topology walk (10H F21 pages, parents by
 * proxy TEI, TP_PEER_FOUND then TP_PEER_ROUTE) and its fallback (10H F2
 * and F3), UP to one station (13H F1) and to all (05H F3), station events
 * (06H F5) confirmed with their sequence number, module offload (clear,
 * segments, resume by segment id after a module reset, a file error, an
 * acknowledgement for a segment never sent, status pages with a station
 * nobody knows), the link going down when the module is silent and coming
 * back, and bad frames of every kind dropped without harm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transport.h"
#include "transports_internal.h"
#include "plc_internal.h"
#include "ub_test.h"

#define WAIT_MS		3000
#define NPEERS_MAX	16
#define PKG_SIZE	1000
#define SEG		128

static const uint8_t	 master_addr[6] = { 0x01, 0, 0, 0, 0, 0 };
static const uint8_t	 sta1[6] = { 0x01, 0x00, 0x00, 0x05, 0x19, 0x20 };
static const uint8_t	 sta2[6] = { 0x02, 0x00, 0x00, 0x05, 0x19, 0x20 };
static const uint8_t	 stranger[6] = { 0x99, 0x00, 0x00, 0x05, 0x19, 0x20 };

struct peer_ev {
	struct tp_addr		 a;
	enum tp_peer_event	 ev;
	uint8_t			 level;
	struct tp_addr		 parent;
};

struct progress {
	bool			 module;	/* peer NULL */
	struct tp_addr		 a;
	enum tp_offload_state	 st;
	uint64_t		 bytes;
};

struct fx {
	struct event_base	*base;
	struct tp_host		 host;
	struct tp		*tp;
	int			 mfd;		/* the module's side */
	char			 slave[64];
	struct plc_rx		 rx;
	/* Frames from the plugin, decoded into a copy. */
	uint8_t			 fbuf[PLC_FRAME_MAX];
	size_t			 flen;
	struct plc_frame	 f;
	bool			 have;
	uint8_t			 seq;		/* the module's own */

	/* What the host heard. */
	int			 up, down, caps;
	int			 rx_n;
	struct tp_addr		 rx_src;
	uint8_t			 rx_buf[256];
	size_t			 rx_len;
	int			 done_n;
	uint64_t		 done_cookie;
	int			 done_status;
	int			 writable;
	unsigned int		 npeer;
	struct peer_ev		 peer[NPEERS_MAX * 2];
	unsigned int		 nprog;
	struct progress		 prog[256];
	uint8_t			 pkg[PKG_SIZE];
};

static struct fx	*F;

/* ------------------------------------------------------------------ */
/* The host                                                             */

static void
h_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	F->rx_n++;
	F->rx_src = *src;
	assert_true(len <= sizeof(F->rx_buf));
	memcpy(F->rx_buf, frame, len);
	F->rx_len = len;
}

static void
h_writable(void *arg, struct tp *tp)
{
	F->writable++;
}

static void
h_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t airtime)
{
	F->done_n++;
	F->done_cookie = cookie;
	F->done_status = status;
}

static void
h_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	if (ev == TP_LINK_UP)
		F->up++;
	else if (ev == TP_LINK_DOWN)
		F->down++;
	else
		F->caps++;
}

static void
h_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	struct peer_ev	*p;

	assert_true(F->npeer < NPEERS_MAX * 2);
	p = &F->peer[F->npeer++];
	p->a = *a;
	p->ev = ev;
	p->level = info->level;
	p->parent = info->parent;
}

static int
h_read(void *arg, struct tp *tp, uint32_t id, uint64_t off, uint8_t *buf,
    size_t len)
{
	if (off + len > PKG_SIZE)
		return (-1);
	memcpy(buf, F->pkg + off, len);
	return (0);
}

static void
h_progress(void *arg, struct tp *tp, uint32_t id, const struct tp_addr *peer,
    enum tp_offload_state st, uint64_t bytes)
{
	struct progress	*p;

	assert_int_equal(id, 7);
	assert_true(F->nprog < 256);
	p = &F->prog[F->nprog++];
	p->module = peer == NULL;
	if (peer != NULL)
		p->a = *peer;
	p->st = st;
	p->bytes = bytes;
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

static void
run_ms(unsigned int ms)
{
	ubt_run_ms(F->base, ms);
}

/* Reads what the plugin wrote; true when a whole frame is in F->f. */
static bool
module_poll(void)
{
	const uint8_t	*p;
	uint8_t		 buf[512];
	size_t		 len;
	ssize_t		 n;
	int		 r;

	if (F->have)
		return (true);
	for (;;) {
		while ((r = plc_rx_next(&F->rx, &p, &len)) != 0) {
			if (r < 0)
				continue;
			memcpy(F->fbuf, p, len);
			F->flen = len;
			assert_int_equal(plc_decode(F->fbuf, len, &F->f),
			    PLC_OK);
			F->have = true;
			return (true);
		}
		n = read(F->mfd, buf, sizeof(buf));
		if (n <= 0)
			return (false);
		assert_int_equal(plc_rx_feed(&F->rx, buf, (size_t)n), n);
	}
}

#define WAIT_FOR(cond)	UBT_WAIT_FOR(F->base, cond, WAIT_MS)

/* The next request of the plugin, which must be AFN/Fn. */
static struct plc_frame *
expect(uint8_t afn, unsigned int fn)
{
	WAIT_FOR(module_poll());
	F->have = false;
	if (F->f.afn != afn || F->f.fn != fn)
		fail_msg("expected AFN %02X F%u, got AFN %02X F%u", afn, fn,
		    F->f.afn, F->f.fn);
	assert_false(PLC_FRAME_UP(&F->f));
	return (&F->f);
}

/* Nothing from the plugin for ms. */
static void
expect_silence(unsigned int ms)
{
	unsigned int	 w;

	for (w = 0; w < ms; w += 5) {
		run_ms(5);
		if (module_poll())
			fail_msg("unexpected AFN %02X F%u", F->f.afn,
			    F->f.fn);
	}
}

/* The module writes a frame. */
static void
module_send(uint8_t c, uint8_t seq, const uint8_t *src, const uint8_t *dst,
    uint8_t afn, unsigned int fn, const uint8_t *du, size_t dulen)
{
	struct plc_frame f;
	uint8_t		 out[PLC_FRAME_MAX];
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = c;
	f.info.seq = seq;
	if (src != NULL) {
		f.info.module = 1;
		memcpy(f.src, src, 6);
		memcpy(f.dst, dst, 6);
	}
	f.afn = afn;
	f.fn = (uint16_t)fn;
	f.data = du;
	f.len = dulen;
	n = plc_encode(&f, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(write(F->mfd, out, (size_t)n), n);
}

/* Answers the request in F->f. */
static void
answer(uint8_t afn, unsigned int fn, const uint8_t *du, size_t dulen)
{
	const uint8_t	*src = NULL, *dst = NULL;

	if (F->f.info.module) {
		src = F->f.dst;
		dst = F->f.src;
	}
	module_send(0x83, F->f.info.seq, src, dst, afn, fn, du, dulen);
}

static void
answer_confirm(uint16_t wait_s)
{
	struct plc_confirm a = { true, 0, wait_s };
	struct plc_wr	 w;
	uint8_t		 du[8];

	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_confirm(&w, &a), 0);
	answer(PLC_AFN_ACK, PLC_FN_CONFIRM, du, w.len);
}

static void
answer_deny(uint8_t code)
{
	answer(PLC_AFN_ACK, PLC_FN_DENY, &code, 1);
}

static void
answer_run_mode(uint16_t segment)
{
	struct plc_run_mode m;
	struct plc_wr	 w;
	uint8_t		 du[128];

	memset(&m, 0, sizeof(m));
	m.comm = 2;
	m.routing = true;
	m.monitor_s = 1;
	m.broadcast_s = 1;
	m.max_frame = 512;
	m.max_segment = segment;
	m.upgrade_wait = 1;
	memcpy(m.master, master_addr, 6);
	m.max_nodes = 64;
	m.nodes = 2;
	memcpy(m.vendor, "TS", 2);
	memcpy(m.chip, "TC", 2);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_run_mode(&w, &m), 0);
	answer(PLC_AFN_QUERY, PLC_FN_RUN_MODE, du, w.len);
}

/* The topology: sta1 heard directly (a PCO), sta2 behind it. */
static void
answer_topology(bool sta2_direct)
{
	struct plc_topo_page pg;
	struct plc_wr	 w;
	uint16_t	 start;
	uint8_t		 count, du[256];

	assert_int_equal(plc_du_page_dec(F->f.data, F->f.len, &start,
	    &count), 0);
	memset(&pg, 0, sizeof(pg));
	pg.total = 3;
	pg.start = start;
	if (start == 1) {
		/* Two per page, to make the walk page. */
		memcpy(pg.node[0].addr, master_addr, 6);
		pg.node[0].tei = 1;
		pg.node[0].role = PLC_ROLE_CCO;
		memcpy(pg.node[1].addr, sta1, 6);
		pg.node[1].tei = 2;
		pg.node[1].proxy = 1;
		pg.node[1].level = 1;
		pg.node[1].role = PLC_ROLE_PCO;
		pg.n = 2;
	} else {
		assert_int_equal(start, 3);
		memcpy(pg.node[0].addr, sta2, 6);
		pg.node[0].tei = 3;
		pg.node[0].proxy = sta2_direct ? 1 : 2;
		pg.node[0].level = sta2_direct ? 1 : 2;
		pg.node[0].role = PLC_ROLE_STA;
		pg.n = 1;
	}
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_topology(&w, &pg), 0);
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY, du, w.len);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                               */

static int
setup(void **state)
{
	struct event_config *cfg;
	struct tp_conf	 conf;
	struct tp_kv	 kv[8];
	char		*cause = NULL, *s;
	size_t		 i, nkv = 0;

	F = calloc(1, sizeof(*F));
	assert_non_null(F);
	for (i = 0; i < PKG_SIZE; i++)
		F->pkg[i] = (uint8_t)(i * 7 + 3);
	F->mfd = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(F->mfd >= 0);
	assert_int_equal(grantpt(F->mfd), 0);
	assert_int_equal(unlockpt(F->mfd), 0);
	assert_non_null(s = ptsname(F->mfd));
	snprintf(F->slave, sizeof(F->slave), "%s", s);
	assert_int_equal(fcntl(F->mfd, F_SETFL, O_NONBLOCK), 0);
	plc_rx_init(&F->rx, PLC_FRAME_MAX);

	cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	F->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	F->host.base = F->base;
	F->host.now_ms = ubt_host_now_ms;
	F->host.rx = h_rx;
	F->host.writable = h_writable;
	F->host.tx_done = h_tx_done;
	F->host.link = h_link;
	F->host.peer = h_peer;
	F->host.offload_read = h_read;
	F->host.offload_progress = h_progress;

	kv[nkv++] = (struct tp_kv){ "type", "plc" };
	kv[nkv++] = (struct tp_kv){ "device", F->slave };
	kv[nkv++] = (struct tp_kv){ "baud", "115200" };
	kv[nkv++] = (struct tp_kv){ "timeout_ms", "150" };
	kv[nkv++] = (struct tp_kv){ "retries", "1" };
	kv[nkv++] = (struct tp_kv){ "tx_queue", "2" };
	kv[nkv++] = (struct tp_kv){ "status_interval_s", "1" };
	conf.name = "plc0";
	conf.options = tp_plc_ops.options;
	conf.kv = kv;
	conf.nkv = nkv;
	assert_int_equal(tp_conf_check(&conf, &cause), 0);
	if (tp_plc_ops.open(&F->host, &conf, &F->tp, &cause) != 0)
		fail_msg("open: %s", cause);
	assert_int_equal(tp_plc_ops.start(F->tp, &cause), 0);
	*state = F;
	return (0);
}

static int
teardown(void **state)
{
	tp_plc_ops.close(F->tp);
	if (F->mfd != -1)
		close(F->mfd);
	event_base_free(F->base);
	free(F);
	return (0);
}

/* The module answers the set-up and the topology walk. */
static void
bring_up(uint16_t segment)
{
	struct tp_caps	 c;

	expect(PLC_AFN_QUERY, PLC_FN_RUN_MODE);
	answer_run_mode(segment);
	WAIT_FOR(F->up == 1);
	/* What open() could not know (TP_CAP_OFFLOAD, response_ms): the
	 * engine reads the caps again. */
	WAIT_FOR(F->caps == 1);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
	answer_topology(false);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
	answer_topology(false);
	WAIT_FOR(F->npeer == 2);
	tp_plc_ops.caps(F->tp, &c);
	assert_int_equal(c.mtu, 255);
	assert_true(c.flags & TP_CAP_BROADCAST);
	assert_true(c.flags & TP_CAP_HALF_DUPLEX);
	/* Compact by default, addressed, no FCS (the 8-bit sum). */
	assert_true(c.flags & TP_CAP_COMPACT);
	assert_true(c.flags & TP_CAP_ADDRESSED);
	assert_false(c.flags & TP_CAP_FCS);
	assert_int_equal(c.response_ms, 1000);
	if (segment > 0) {
		assert_true(c.flags & TP_CAP_OFFLOAD);
		assert_int_equal(c.offload_segment, segment);
	} else
		assert_false(c.flags & TP_CAP_OFFLOAD);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void
test_setup_topology(void **state)
{
	struct tp_addr	 a;

	bring_up(SEG);
	assert_int_equal(F->peer[0].ev, TP_PEER_FOUND);
	assert_memory_equal(F->peer[0].a.b, sta1, 6);
	assert_int_equal(F->peer[0].level, 1);
	assert_int_equal(F->peer[0].parent.len, 0);
	assert_memory_equal(F->peer[1].a.b, sta2, 6);
	assert_int_equal(F->peer[1].level, 2);
	assert_int_equal(F->peer[1].parent.len, 6);
	assert_memory_equal(F->peer[1].parent.b, sta1, 6);
	/* Nothing else unless asked. */
	expect_silence(300);
	assert_int_equal(tp_plc_ops.addr_fmt(&F->peer[1].a, (char *)F->rx_buf,
	    sizeof(F->rx_buf)), 0);
	assert_string_equal((char *)F->rx_buf, "plc:201905000002");
	assert_int_equal(tp_plc_ops.addr_parse("plc:201905000002", &a, NULL),
	    0);
	assert_true(tp_addr_eq(&a, &F->peer[1].a));
}

static void
test_topology_moves(void **state)
{
	bring_up(SEG);
	/* The next walk (a module restart starts one now): sta2 is heard
	 * directly. */
	module_send(0xc3, 0x40, NULL, NULL, PLC_AFN_QUERY, PLC_FN_RUN_MODE,
	    NULL, 0);	/* bad data unit: dropped, but confirmed */
	expect(PLC_AFN_ACK, PLC_FN_CONFIRM);
	assert_int_equal(F->f.info.seq, 0x40);
	assert_int_equal(F->down, 0);
	/* A good report: the module restarted. */
	{
		struct plc_run_mode m;
		struct plc_wr	 w;
		uint8_t		 du[128];

		memset(&m, 0, sizeof(m));
		m.comm = 2;
		m.monitor_s = 1;
		m.max_frame = 512;
		m.max_segment = SEG;
		memcpy(m.master, master_addr, 6);
		plc_wr_init(&w, du, sizeof(du));
		assert_int_equal(plc_du_run_mode(&w, &m), 0);
		module_send(0xc3, 0x41, NULL, NULL, PLC_AFN_QUERY,
		    PLC_FN_RUN_MODE, du, w.len);
	}
	expect(PLC_AFN_ACK, PLC_FN_CONFIRM);
	assert_int_equal(F->f.info.seq, 0x41);
	/* The link stays up: the engine's sessions go on. */
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
	answer_topology(true);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
	answer_topology(true);
	WAIT_FOR(F->npeer == 3);
	assert_int_equal(F->up, 1);
	assert_int_equal(F->down, 0);
	assert_int_equal(F->peer[2].ev, TP_PEER_ROUTE);
	assert_memory_equal(F->peer[2].a.b, sta2, 6);
	assert_int_equal(F->peer[2].level, 1);
	assert_int_equal(F->peer[2].parent.len, 0);
}

static void
test_topology_fallback(void **state)
{
	struct plc_node_page np;
	struct plc_wr	 w;
	uint8_t		 du[128];

	expect(PLC_AFN_QUERY, PLC_FN_RUN_MODE);
	answer_run_mode(0);
	WAIT_FOR(F->up == 1);
	/* A narrowband module: no F21. */
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
	answer_deny(PLC_DENY_UNSUPPORTED);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_INFO);
	memset(&np, 0, sizeof(np));
	np.total = 2;
	np.n = 2;
	memcpy(np.node[0].addr, sta1, 6);
	memcpy(np.node[1].addr, sta2, 6);
	np.node[1].relay_level = 1;
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_node_info(&w, &np), 0);
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_INFO, du, w.len);
	/* Only sta2 is relayed: its upper relay is asked for. */
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_RELAY);
	assert_memory_equal(F->f.data, sta2, 6);
	du[0] = 1;
	memcpy(du + 1, sta1, 6);
	du[7] = 0;
	du[8] = 0;
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_RELAY, du, 9);
	WAIT_FOR(F->npeer == 2);
	assert_int_equal(F->peer[1].level, 2);
	assert_memory_equal(F->peer[1].parent.b, sta1, 6);
}

static void
test_forwarding(void **state)
{
	struct tp_addr	 dst, bc;
	struct iovec	 iov;
	struct plc_frame *f;
	uint8_t		 msg[4] = { 1, 2, 3, 4 }, du[64];
	const uint8_t	*m;
	size_t		 mlen;
	struct plc_wr	 w;
	uint8_t		 proto, dev;

	bring_up(SEG);
	memset(&dst, 0, sizeof(dst));
	dst.len = 6;
	memcpy(dst.b, sta2, 6);
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	assert_int_equal(tp_plc_ops.send(F->tp, &dst, &iov, 1, 11), TP_OK);
	f = expect(PLC_AFN_ROUTE_FWD, PLC_FN_MONITOR);
	assert_int_equal(f->info.module, 1);
	assert_memory_equal(f->src, master_addr, 6);
	assert_memory_equal(f->dst, sta2, 6);
	assert_int_equal(plc_du_monitor_dec(f->data, f->len, &proto, &m,
	    &mlen), 0);
	assert_int_equal(mlen, 4);
	assert_memory_equal(m, msg, 4);
	/* An answer from another station first: dropped. */
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_monitor_up(&w, 0, 0, msg, 3), 0);
	module_send(0x83, f->info.seq, sta1, master_addr, PLC_AFN_ROUTE_FWD,
	    PLC_FN_MONITOR, du, w.len);
	/* And one with another sequence number. */
	module_send(0x83, (uint8_t)(f->info.seq + 1), sta2, master_addr,
	    PLC_AFN_ROUTE_FWD, PLC_FN_MONITOR, du, w.len);
	/* And one with an AFN and Fn that answer something else, and one
	 * with an Fn no one defined. */
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE, du, w.len);
	answer(0x7e, 200, du, w.len);
	run_ms(30);
	assert_int_equal(F->done_n, 0);
	assert_int_equal(F->rx_n, 0);
	/* The real answer. */
	answer(PLC_AFN_ROUTE_FWD, PLC_FN_MONITOR, du, w.len);
	WAIT_FOR(F->done_n == 1 && F->rx_n == 1);
	assert_int_equal(F->done_cookie, 11);
	assert_int_equal(F->done_status, TP_OK);
	assert_memory_equal(F->rx_src.b, sta2, 6);
	assert_int_equal(F->rx_len, 3);

	/* A station that does not answer: forwarded, no reply. */
	assert_int_equal(tp_plc_ops.send(F->tp, &dst, &iov, 1, 12), TP_OK);
	expect(PLC_AFN_ROUTE_FWD, PLC_FN_MONITOR);
	answer_deny(PLC_DENY_METER_SILENT);
	WAIT_FOR(F->done_n == 2);
	assert_int_equal(F->done_status, TP_OK);
	/* A station not in the network. */
	assert_int_equal(tp_plc_ops.send(F->tp, &dst, &iov, 1, 13), TP_OK);
	expect(PLC_AFN_ROUTE_FWD, PLC_FN_MONITOR);
	answer_deny(PLC_DENY_NOT_IN_NET);
	WAIT_FOR(F->done_n == 3);
	assert_int_equal(F->done_status, TP_ENOPEER);

	/* Broadcast; the queue holds two, the third waits. */
	tp_addr_broadcast(&bc);
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 21), TP_OK);
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 22), TP_OK);
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 23),
	    TP_EAGAIN);
	f = expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	assert_int_equal(f->info.module, 0);
	WAIT_FOR(F->writable == 1);
	answer_confirm(0);
	WAIT_FOR(F->done_n == 4);
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	answer_confirm(0);
	WAIT_FOR(F->done_n == 5);
	assert_int_equal(F->done_cookie, 22);
	/* Too long a frame. */
	iov.iov_len = 256;
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 24),
	    TP_EMSGSIZE);
	iov.iov_len = sizeof(msg);

	/* A station's event: confirmed with its number, delivered. */
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_event(&w, 1, 0, msg, 4), 0);
	module_send(0xc3, 0x77, sta1, master_addr, PLC_AFN_REPORT,
	    PLC_FN_EVENT, du, w.len);
	f = expect(PLC_AFN_ACK, PLC_FN_CONFIRM);
	assert_int_equal(f->info.seq, 0x77);
	assert_memory_equal(f->dst, sta1, 6);
	WAIT_FOR(F->rx_n == 2);
	assert_memory_equal(F->rx_src.b, sta1, 6);
	assert_int_equal(F->rx_len, 4);
	/* One without a station address: confirmed, not delivered. */
	module_send(0xc3, 0x78, NULL, NULL, PLC_AFN_REPORT, PLC_FN_EVENT,
	    du, w.len);
	expect(PLC_AFN_ACK, PLC_FN_CONFIRM);
	(void)plc_du_event_dec(du, w.len, &dev, &proto, &m, &mlen);
	run_ms(30);
	assert_int_equal(F->rx_n, 2);
	/* A request the concentrator does not serve: denied. */
	module_send(0xc3, 0x79, NULL, NULL, PLC_AFN_ROUTE_READ, 1, NULL, 0);
	f = expect(PLC_AFN_ACK, PLC_FN_DENY);
	assert_int_equal(f->data[0], PLC_DENY_UNSUPPORTED);

	/* A module that does not broadcast: the link is unicast only. */
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 25), TP_OK);
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	answer_deny(PLC_DENY_UNSUPPORTED);
	WAIT_FOR(F->caps == 2);
	assert_int_equal(F->done_status, TP_ENOPEER);
	{
		struct tp_caps	 c;

		tp_plc_ops.caps(F->tp, &c);
		assert_false(c.flags & TP_CAP_BROADCAST);
	}
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 26),
	    TP_ENOPEER);
}

static void
test_bad_frames(void **state)
{
	uint8_t		 junk[40];
	size_t		 i;

	bring_up(SEG);
	/* Garbage, a frame with a bad checksum, a downlink frame, an
	 * answer when nothing was asked: all dropped, no reply. */
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37);
	assert_int_equal(write(F->mfd, junk, sizeof(junk)),
	    (ssize_t)sizeof(junk));
	module_send(0x43, 1, NULL, NULL, PLC_AFN_QUERY, 10, NULL, 0);
	module_send(0x83, 1, NULL, NULL, PLC_AFN_QUERY, 10, NULL, 0);
	{
		uint8_t		 b[15] = { 0x68, 0x0f, 0x00, 0x83, 0, 0, 0, 0,
				    0, 5, 0x03, 0x02, 0x01, 0x00, 0x16 };

		assert_int_equal(write(F->mfd, b, sizeof(b)), 15);
	}
	expect_silence(300);
	assert_int_equal(F->down, 0);
	assert_int_equal(F->rx_n, 0);
}

static void
test_link_down(void **state)
{
	bring_up(SEG);
	/* The module stops answering: a broadcast is tried twice, fails,
	 * the module is asked its run mode, twice, and the link goes
	 * down. */
	{
		struct tp_addr	 bc;
		struct iovec	 iov;
		uint8_t		 b = 1;

		tp_addr_broadcast(&bc);
		iov.iov_base = &b;
		iov.iov_len = 1;
		assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 5),
		    TP_OK);
	}
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	WAIT_FOR(F->done_n == 1);
	assert_int_equal(F->done_status, TP_EIO);
	/* Another request fails too: two in a row, the link is down. */
	{
		struct tp_addr	 bc;
		struct iovec	 iov;
		uint8_t		 b = 1;

		tp_addr_broadcast(&bc);
		iov.iov_base = &b;
		iov.iov_len = 1;
		assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 6),
		    TP_OK);
	}
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	expect(PLC_AFN_CONTROL, PLC_FN_BROADCAST);
	WAIT_FOR(F->down == 1);
	{
		struct iovec	 iov;
		uint8_t		 b = 1;

		iov.iov_base = &b;
		iov.iov_len = 1;
		assert_int_equal(tp_plc_ops.send(F->tp, &F->peer[0].a, &iov,
		    1, 7), TP_EIO);
	}
	/* It comes back. */
	expect(PLC_AFN_QUERY, PLC_FN_RUN_MODE);
	answer_run_mode(SEG);
	WAIT_FOR(F->up == 2);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY);
}

static void
test_line_lost(void **state)
{
	struct tp_addr	 bc;
	struct iovec	 iov;
	uint8_t		 b = 1;

	bring_up(SEG);
	/* The module's side of the line goes away: the slave reads EIO. */
	close(F->mfd);
	F->mfd = -1;
	WAIT_FOR(F->down == 1);
	tp_addr_broadcast(&bc);
	iov.iov_base = &b;
	iov.iov_len = 1;
	assert_int_equal(tp_plc_ops.send(F->tp, &bc, &iov, 1, 1), TP_EIO);
	/* It tries to open it again, quietly; nothing spins. */
	run_ms(300);
	assert_int_equal(F->down, 1);
}

/* The module takes segments; returns the segment's index. */
static uint32_t
take_segment(struct plc_segment *s)
{
	struct plc_frame *f;
	uint8_t		 du[4];
	struct plc_wr	 w;

	f = expect(PLC_AFN_FILE, PLC_FN_FILE);
	assert_int_equal(plc_du_segment_dec(f->data, f->len, s), 0);
	assert_int_equal(s->file, PLC_FILE_STATIONS);
	assert_int_equal(s->total, (PKG_SIZE + SEG - 1) / SEG);
	assert_int_equal(s->len, s->index + 1 == s->total ?
	    PKG_SIZE - s->index * SEG : SEG);
	assert_memory_equal(s->data, F->pkg + s->index * SEG, s->len);
	assert_int_equal(s->attr, s->index + 1 == s->total ? 1 : 0);
	plc_wr_init(&w, du, sizeof(du));
	(void)plc_du_segment_ack(&w, s->index);
	return (s->index);
}

static void
ack_segment(uint32_t index)
{
	uint8_t		 du[4];
	struct plc_wr	 w;

	plc_wr_init(&w, du, sizeof(du));
	(void)plc_du_segment_ack(&w, index);
	answer(PLC_AFN_FILE, PLC_FN_FILE, du, w.len);
}

static void
test_offload(void **state)
{
	struct tp_offload o;
	struct plc_segment s;
	struct plc_frame *f;
	struct plc_upg_page pg;
	struct plc_wr	 w;
	uint8_t		 sha[32] = { 0 }, du[300];
	char		*cause = NULL;
	uint32_t	 i, n = (PKG_SIZE + SEG - 1) / SEG;
	unsigned int	 k;
	bool		 sta1_done = false, sta2_recv = false;

	bring_up(SEG);
	memset(&o, 0, sizeof(o));
	o.id = 7;
	o.size = PKG_SIZE;
	o.sha256 = sha;
	if (tp_plc_ops.offload_start(F->tp, &o, &cause) != 0)
		fail_msg("offload_start: %s", cause);
	/* A second one is refused while this one runs. */
	assert_int_equal(tp_plc_ops.offload_start(F->tp, &o, &cause), -1);
	free(cause);

	/* Clear, then segments 0 and 1. */
	f = expect(PLC_AFN_FILE, PLC_FN_FILE);
	assert_int_equal(plc_du_segment_dec(f->data, f->len, &s), 0);
	assert_int_equal(s.file, PLC_FILE_CLEAR);
	ack_segment(0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(take_segment(&s), i);
		ack_segment(i);
	}
	/* Segment 2: acknowledged as segment 5 (never sent): dropped; the
	 * request goes again at its timeout, with the same number. */
	assert_int_equal(take_segment(&s), 2);
	{
		uint8_t		 seq = F->f.info.seq;

		ack_segment(5);
		assert_int_equal(take_segment(&s), 2);
		assert_int_equal(F->f.info.seq, seq);
	}
	ack_segment(2);
	/* Segment 3: the module resets (its run mode report) instead. */
	assert_int_equal(take_segment(&s), 3);
	{
		struct plc_run_mode m;

		memset(&m, 0, sizeof(m));
		m.comm = 2;
		m.monitor_s = 1;
		m.max_frame = 512;
		m.max_segment = SEG;
		memcpy(m.master, master_addr, 6);
		plc_wr_init(&w, du, sizeof(du));
		assert_int_equal(plc_du_run_mode(&w, &m), 0);
		module_send(0xc3, 0x10, NULL, NULL, PLC_AFN_QUERY,
		    PLC_FN_RUN_MODE, du, w.len);
	}
	expect(PLC_AFN_ACK, PLC_FN_CONFIRM);
	/* The lost request goes again at once, the walk and the transfer
	 * take turns: the transfer resumes at segment 3, by its id. */
	for (k = 0; k < 4; k++) {
		WAIT_FOR(module_poll());
		if (F->f.afn == PLC_AFN_ROUTE_QUERY) {
			F->have = false;
			answer_topology(false);
			continue;
		}
		assert_int_equal(take_segment(&s), 3);
		ack_segment(3);
		break;
	}
	assert_true(k < 4);
	/* Segment 4: the module says file error: start over (clear). */
	for (;;) {
		WAIT_FOR(module_poll());
		if (F->f.afn == PLC_AFN_ROUTE_QUERY) {
			F->have = false;
			answer_topology(false);
			continue;
		}
		break;
	}
	assert_int_equal(take_segment(&s), 4);
	ack_segment(PLC_SEG_ERROR);
	f = expect(PLC_AFN_FILE, PLC_FN_FILE);
	assert_int_equal(plc_du_segment_dec(f->data, f->len, &s), 0);
	assert_int_equal(s.file, PLC_FILE_CLEAR);
	ack_segment(0);
	for (i = 0; i < n; i++) {
		assert_int_equal(take_segment(&s), i);
		if (i == 5) {
			/* A deny "busy": the same segment again later. */
			answer_deny(PLC_DENY_BUSY);
			assert_int_equal(take_segment(&s), i);
		}
		ack_segment(i);
	}
	/* The module holds the file. */
	WAIT_FOR(F->nprog > 0 && F->prog[F->nprog - 1].module &&
	    F->prog[F->nprog - 1].st == TP_OFF_DONE);
	assert_int_equal(F->prog[F->nprog - 1].bytes, PKG_SIZE);

	/* Status pages: sta1 done, a stranger, sta2 receiving. */
	f = expect(PLC_AFN_VENDOR, PLC_FN_UPG_STATUS);
	memset(&pg, 0, sizeof(pg));
	pg.total = 3;
	pg.start = 1;
	pg.file = PLC_FILE_STATIONS;
	pg.size = PKG_SIZE;
	pg.n = 3;
	memcpy(pg.st[0].addr, sta1, 6);
	pg.st[0].state = PLC_UPG_DONE;
	pg.st[0].held = pg.st[0].received = PKG_SIZE;
	memcpy(pg.st[1].addr, stranger, 6);
	pg.st[1].state = PLC_UPG_DONE;
	pg.st[1].held = pg.st[1].received = PKG_SIZE;
	memcpy(pg.st[2].addr, sta2, 6);
	pg.st[2].state = PLC_UPG_RECEIVING;
	pg.st[2].held = 256;
	pg.st[2].received = 512;
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_upg_status(&w, &pg), 0);
	k = F->nprog;
	answer(PLC_AFN_VENDOR, PLC_FN_UPG_STATUS, du, w.len);
	WAIT_FOR(F->nprog >= k + 2);
	run_ms(50);
	assert_int_equal(F->nprog, k + 2);	/* not the stranger */
	for (k = 0; k < F->nprog; k++) {
		if (F->prog[k].module)
			continue;
		assert_false(memcmp(F->prog[k].a.b, stranger, 6) == 0);
		if (memcmp(F->prog[k].a.b, sta1, 6) == 0 &&
		    F->prog[k].st == TP_OFF_DONE)
			sta1_done = true;
		if (memcmp(F->prog[k].a.b, sta2, 6) == 0 &&
		    F->prog[k].st == TP_OFF_RECEIVING &&
		    F->prog[k].bytes == 256)
			sta2_recv = true;
	}
	assert_true(sta1_done);
	assert_true(sta2_recv);
	/* The next round: sta2 done too; the offload is over. */
	f = expect(PLC_AFN_VENDOR, PLC_FN_UPG_STATUS);
	pg.n = 1;
	pg.total = 1;
	memcpy(pg.st[0].addr, sta2, 6);
	pg.st[0].state = PLC_UPG_DONE;
	pg.st[0].held = pg.st[0].received = PKG_SIZE;
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_upg_status(&w, &pg), 0);
	answer(PLC_AFN_VENDOR, PLC_FN_UPG_STATUS, du, w.len);
	WAIT_FOR(F->prog[F->nprog - 1].st == TP_OFF_DONE &&
	    memcmp(F->prog[F->nprog - 1].a.b, sta2, 6) == 0);
	expect_silence(1300);
	/* Over: another can start. */
	assert_int_equal(tp_plc_ops.offload_start(F->tp, &o, &cause), 0);
	expect(PLC_AFN_FILE, PLC_FN_FILE);
	tp_plc_ops.offload_cancel(F->tp, 7);
}

static void
test_offload_no_status(void **state)
{
	struct tp_offload o;
	struct plc_segment s;
	struct plc_route_state rs;
	struct plc_wr	 w;
	uint8_t		 du[64];
	char		*cause = NULL;
	uint32_t	 i, n = (PKG_SIZE + SEG - 1) / SEG;

	bring_up(SEG);
	memset(&o, 0, sizeof(o));
	o.id = 7;
	o.size = PKG_SIZE;
	assert_int_equal(tp_plc_ops.offload_start(F->tp, &o, &cause), 0);
	expect(PLC_AFN_FILE, PLC_FN_FILE);
	/* A module that confirms the clear instead of echoing an index. */
	answer_confirm(0);
	for (i = 0; i < n; i++) {
		assert_int_equal(take_segment(&s), i);
		ack_segment(i);
	}
	/* No vendor status: the route state instead. */
	expect(PLC_AFN_VENDOR, PLC_FN_UPG_STATUS);
	answer_deny(PLC_DENY_UNSUPPORTED);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE);
	memset(&rs, 0, sizeof(rs));
	rs.work = PLC_WORK_UPGRADE;
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_route_state(&w, &rs), 0);
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE, du, w.len);
	expect(PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE);
	rs.work = PLC_WORK_READING;
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_route_state(&w, &rs), 0);
	answer(PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE, du, w.len);
	/* Done: nothing more is asked. */
	expect_silence(1300);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_setup_topology, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_topology_moves, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_topology_fallback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_forwarding, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_down, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_line_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_offload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offload_no_status, setup,
		    teardown),
	};

	up_log_set_hook(NULL);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
