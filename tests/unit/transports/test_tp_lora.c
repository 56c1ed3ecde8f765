/*
 * test_tp_lora.c: the "lora" plugin, unchanged, against the medium
 * simulator's RUI3 modems (node-stubs/sim_lora.c) on real pty pairs, on
 * one event loop.
 *
 * The gateway's modem is the plugin's (device = its pty); the nodes'
 * modems are played by the test with plain AT lines.  The host clock
 * is the simulator's (a compressed clock, time scale 20), as the daemon
 * runs it in the end-to-end tests, so every airtime figure is exact.
 * Faults come from the simulator's control commands: a modem reset
 * mid-frame, a silent modem, garbage and truncated lines, busy and
 * error answers, a duty-cycle refusal; plus a modem found in LoRaWAN
 * mode, frames longer than the data rate allows, sleeping nodes woken
 * by a long preamble, and configurations that must not open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"
#include "lora_internal.h"
#include "upnode.h"
#include "upsim.h"

#define SCALE		20.0
/*
 * Sleeping nodes' tests run slower: a receive window must open inside
 * the wake preamble, and the test opens it from its own loop, which a
 * loaded host may stall.  At scale 2 a 1 s preamble lasts 500 ms of real
 * time, not 50.
 */
#define SCALE_WAKE	2.0

static double		 scale = SCALE;
#define NNODE		2
#define MAXEV		64

struct node {
	struct sim_ep	*ep;
	int		 fd;
	struct event	*ev;
	char		 buf[16384];
	size_t		 len;
};

static struct {
	struct event_base *base;
	struct event	*ev_timeout;
	struct sim	*sim;
	struct sim_ep	*gw;
	struct node	 node[NNODE];
	struct tp_host	 host;
	struct tp	*tp;
	/* What the host heard. */
	int		 up, down, writable;
	unsigned int	 nrx;
	uint8_t		 rx[8][256];
	size_t		 rxlen[8];
	struct tp_rxinfo rxi[8];
	struct tp_addr	 rxsrc;
	unsigned int	 ndone;
	uint64_t	 done_cookie[MAXEV];
	int		 done_status[MAXEV];
	uint32_t	 done_air[MAXEV];
} F;

/* ------------------------------------------------------------------ */
/* The host                                                             */

static uint64_t
h_now_ms(void *arg)
{
	return (sim_now(F.sim) / SIM_NS_PER_MS);
}

static void
h_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	if (F.nrx < 8) {
		memcpy(F.rx[F.nrx], frame, len);
		F.rxlen[F.nrx] = len;
		F.rxi[F.nrx] = *ri;
	}
	F.rxsrc = *src;
	F.nrx++;
}

static void
h_writable(void *arg, struct tp *tp)
{
	F.writable++;
}

static void
h_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t airtime_us)
{
	if (F.ndone < MAXEV) {
		F.done_cookie[F.ndone] = cookie;
		F.done_status[F.ndone] = status;
		F.done_air[F.ndone] = airtime_us;
	}
	F.ndone++;
}

static void
h_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	if (ev == TP_LINK_UP)
		F.up++;
	else if (ev == TP_LINK_DOWN)
		F.down++;
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(F.base);
}

static void
run_ms(unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(F.ev_timeout, &tv);
	event_base_dispatch(F.base);
	evtimer_del(F.ev_timeout);
}

#define WAIT_FOR(cond, ms) do {						\
	unsigned int	 waited_;					\
									\
	for (waited_ = 0; !(cond) && waited_ < (ms); waited_ += 5)	\
		run_ms(5);						\
	if (!(cond))							\
		fail_msg("after %u ms: %s", (unsigned int)(ms), #cond);	\
} while (0)

static void
node_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node	*n = arg;
	ssize_t		 r;

	while (n->len < sizeof(n->buf) - 1 && (r = read(n->fd, n->buf +
	    n->len, sizeof(n->buf) - 1 - n->len)) > 0) {
		n->len += (size_t)r;
		n->buf[n->len] = '\0';
	}
}

static void
node_say(unsigned int i, const char *s)
{
	char	 line[600];
	size_t	 n;

	n = (size_t)snprintf(line, sizeof(line), "%s\r\n", s);
	assert_int_equal(write(F.node[i].fd, line, n), (ssize_t)n);
}

/* Occurrences of `s' in what node i heard. */
static unsigned int
node_count(unsigned int i, const char *s)
{
	const char	*p = F.node[i].buf;
	unsigned int	 k = 0;

	while ((p = strstr(p, s)) != NULL) {
		k++;
		p += strlen(s);
	}
	return (k);
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */

struct kv {
	const char	*k, *v;
};

/*
 * A simulator with the gateway's modem and NNODE nodes' modems;
 * sim_opts/gw_opts are extra personality and gateway endpoint options.
 */
static void
air_new(const struct kv *sim_opts, const struct kv *gw_opts)
{
	struct event_config *cfg;
	struct sim_conf	 conf;
	char		*cause = NULL, name[4];
	unsigned int	 i;

	memset(&F, 0, sizeof(F));
	memset(&conf, 0, sizeof(conf));
	conf.pers = &sim_lora;
	conf.time_scale = scale;
	conf.seed = 7;
	assert_int_equal(sim_fmt_parse("8N1", 115200, &conf.fmt), 0);
	for (i = 0; sim_opts != NULL && sim_opts[i].k != NULL; i++) {
		conf.opt[conf.nopt].key = sim_opts[i].k;
		conf.opt[conf.nopt++].value = sim_opts[i].v;
	}
	assert_non_null(cfg = event_config_new());
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	assert_non_null(F.base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	assert_non_null(F.ev_timeout = evtimer_new(F.base, timeout_cb, NULL));
	assert_non_null(F.sim = sim_new(F.base, &conf, &cause));
	assert_non_null(F.gw = sim_ep_add(F.sim, "gw", &cause));
	assert_int_equal(sim_ep_set(F.gw, "rssi", "-95", &cause), 0);
	assert_int_equal(sim_ep_set(F.gw, "snr", "4", &cause), 0);
	for (i = 0; gw_opts != NULL && gw_opts[i].k != NULL; i++)
		if (sim_ep_set(F.gw, gw_opts[i].k, gw_opts[i].v, &cause) != 0)
			fail_msg("%s", cause);
	for (i = 0; i < NNODE; i++) {
		snprintf(name, sizeof(name), "n%u", i + 1);
		assert_non_null(F.node[i].ep = sim_ep_add(F.sim, name,
		    &cause));
	}
	if (sim_start(F.sim, &cause) == -1)
		fail_msg("%s", cause);
	for (i = 0; i < NNODE; i++) {
		F.node[i].fd = node_serial_open(F.node[i].ep->pty, 115200,
		    "8N1", &cause);
		assert_true(F.node[i].fd != -1);
		assert_non_null(F.node[i].ev = event_new(F.base,
		    F.node[i].fd, EV_READ | EV_PERSIST, node_read_cb,
		    &F.node[i]));
		event_add(F.node[i].ev, NULL);
	}
	F.host.base = F.base;
	F.host.now_ms = h_now_ms;
	F.host.time_scale = scale;
	F.host.rx = h_rx;
	F.host.writable = h_writable;
	F.host.tx_done = h_tx_done;
	F.host.link = h_link;
}

/* The nodes' modems listen, as a class C node's would. */
static void
nodes_listen(void)
{
	unsigned int	 i;

	for (i = 0; i < NNODE; i++) {
		node_say(i, "AT+PRECV=65533");
	}
	WAIT_FOR(node_count(0, "OK") >= 1 && node_count(1, "OK") >= 1, 2000);
}

/* Opens and starts the plugin on the gateway's pty with `opts'. */
static int
lora_open(const struct kv *opts, char **cause)
{
	struct tp_kv	 kv[24];
	struct tp_conf	 conf;
	size_t		 n = 0, i;

	kv[n].key = "type";
	kv[n++].value = "lora";
	kv[n].key = "device";
	kv[n++].value = F.gw->pty;
	for (i = 0; opts != NULL && opts[i].k != NULL; i++) {
		kv[n].key = opts[i].k;
		kv[n++].value = opts[i].v;
	}
	memset(&conf, 0, sizeof(conf));
	conf.name = "lora0";
	conf.options = tp_lora_ops.options;
	conf.nkv = n;
	conf.kv = kv;
	if (tp_conf_check(&conf, cause) != 0)
		return (-1);
	if (tp_lora_ops.open(&F.host, &conf, &F.tp, cause) != 0)
		return (-1);
	return (tp_lora_ops.start(F.tp, cause));
}

static void
lora_up(const struct kv *opts)
{
	char	*cause = NULL;

	if (lora_open(opts, &cause) != 0)
		fail_msg("%s", cause);
	WAIT_FOR(F.up == 1, 3000);
}

static void
air_free(void)
{
	unsigned int	 i;

	tp_lora_ops.close(F.tp);
	for (i = 0; i < NNODE; i++) {
		event_free(F.node[i].ev);
		close(F.node[i].fd);
	}
	sim_free(F.sim);
	event_free(F.ev_timeout);
	event_base_free(F.base);
}

static int
send_frame(const uint8_t *b, size_t len, uint64_t cookie)
{
	struct tp_addr	 dst;
	struct iovec	 iov;

	tp_addr_broadcast(&dst);
	iov.iov_base = (void *)(uintptr_t)b;
	iov.iov_len = len;
	return (tp_lora_ops.send(F.tp, &dst, &iov, 1, cookie));
}

static void
sim_cmd(const char *s)
{
	char	*cause = NULL;

	if (sim_command(F.sim, s, &cause) != 0)
		fail_msg("%s: %s", s, cause);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void
test_init_caps(void **state)
{
	static const struct kv o[] = { { "sf", "9" }, { "coding_rate", "6" },
	    { "frequency_hz", "868300000" }, { NULL, NULL } };
	struct lora_phy	 p;
	struct tp_caps	 c;
	struct tp_addr	 dst;
	char		 buf[64];

	air_new(NULL, NULL);
	lora_up(o);
	tp_lora_ops.caps(F.tp, &c);
	assert_int_equal(c.mtu, 115);		/* SF9/125: DR3 */
	assert_int_equal(c.uplink_mtu, 115);
	assert_int_equal(c.flags, TP_CAP_BROADCAST | TP_CAP_UNICAST |
	    TP_CAP_HALF_DUPLEX | TP_CAP_COMPACT | TP_CAP_FCS);
	assert_int_equal(c.nbands, 6);
	assert_int_equal(c.duty_cycle_ppm, 10000);	/* band M: 1 % */
	assert_int_equal(c.duty_window_ms, 3600000);
	assert_int_equal(c.band[2].duty_ppm, 10000);
	assert_int_equal(c.band[4].duty_ppm, 100000);
	assert_int_equal(c.band[0].duty_ppm, 1000);
	tp_addr_broadcast(&dst);
	assert_int_equal(tp_lora_ops.band(F.tp, &dst, 50), 2);
	memset(&p, 0, sizeof(p));
	p.sf = 9;
	p.bw_khz = 125;
	p.cr = 2;
	p.preamble = 8;
	p.crc = true;
	p.ldro = -1;
	assert_int_equal(tp_lora_ops.airtime(F.tp, &dst, 100),
	    lora_toa_ns(&p, 100, 0) / 1000);
	/* The modem was set as asked and listens. */
	assert_int_equal(tp_lora_ops.addr_fmt(&dst, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lora:broadcast");
	assert_int_equal(tp_lora_ops.addr_parse("lora:air", &dst, NULL), 0);
	assert_int_equal(tp_lora_ops.addr_fmt(&dst, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lora:air");
	assert_int_equal(tp_lora_ops.addr_parse("lan:1.2.3.4:5", &dst, NULL),
	    -1);
	assert_int_equal(F.down, 0);
	air_free();
}

/*
 * Three frames: two fit the queue, the third waits for writable().
 * Every frame reaches both nodes; tx_done reports each with its exact
 * time on air, the same figure as the simulator's.
 */
static void
test_send(void **state)
{
	uint8_t		 b[222];
	struct tp_stats	 st;
	uint64_t	 air = 0;
	unsigned int	 i;

	air_new(NULL, NULL);
	nodes_listen();
	lora_up(NULL);
	memset(b, 0xa5, sizeof(b));
	assert_int_equal(send_frame(b, 222, 1), TP_OK);
	b[0] = 2;
	assert_int_equal(send_frame(b, 51, 2), TP_OK);
	assert_int_equal(send_frame(b, 51, 3), TP_EAGAIN);
	WAIT_FOR(F.writable == 1, 3000);
	b[0] = 3;
	assert_int_equal(send_frame(b, 20, 3), TP_OK);
	WAIT_FOR(F.ndone == 3, 3000);
	for (i = 0; i < 3; i++) {
		assert_int_equal(F.done_cookie[i], i + 1);
		assert_int_equal(F.done_status[i], TP_OK);
		air += F.done_air[i];
	}
	assert_int_equal(F.done_air[0], 348416);	/* SF7/125, 222 B */
	assert_int_equal(F.done_air[1], 102656);
	assert_int_equal(air * 1000, F.gw->st.airtime_ns);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 3 &&
	    node_count(1, "+EVT:RXP2P:") == 3, 2000);
	assert_non_null(strstr(F.node[0].buf, ":03A5A5A5"));
	tp_lora_ops.stats(F.tp, &st);
	assert_int_equal(st.tx_frames, 3);
	assert_int_equal(st.tx_bytes, 222 + 51 + 20);
	assert_int_equal(st.tx_errors, 0);
	/* Too long, empty, or to an address that is not lora's. */
	assert_int_equal(send_frame(b, 223, 9), TP_EMSGSIZE);
	assert_int_equal(send_frame(b, 0, 9), TP_EMSGSIZE);
	air_free();
}

/* Frames from nodes; a frame over the data rate's size is refused. */
static void
test_receive(void **state)
{
	static const struct kv o[] = { { "mtu", "40" }, { NULL, NULL } };
	char		 line[600];
	struct tp_stats	 st;
	char		 addr[32];

	air_new(NULL, NULL);
	nodes_listen();
	lora_up(o);
	node_say(0, "AT+PSEND=C1DE0102");
	WAIT_FOR(F.nrx == 1, 3000);
	assert_int_equal(F.rxlen[0], 4);
	assert_memory_equal(F.rx[0], "\xc1\xde\x01\x02", 4);
	assert_true(F.rxi[0].rssi_dbm >= -96 && F.rxi[0].rssi_dbm <= -94);
	assert_true(F.rxi[0].snr_db >= 3 && F.rxi[0].snr_db <= 5);
	assert_int_equal(tp_lora_ops.addr_fmt(&F.rxsrc, addr, sizeof(addr)),
	    0);
	assert_string_equal(addr, "lora:air");
	/* 45 bytes against a 40-byte mtu: bad input, nothing delivered. */
	snprintf(line, sizeof(line), "AT+PSEND=%090d", 0);
	node_say(1, line);
	WAIT_FOR(node_count(1, "+EVT:TXP2P DONE") == 1, 3000);
	run_ms(100);
	assert_int_equal(F.nrx, 1);
	tp_lora_ops.stats(F.tp, &st);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(st.rx_errors, 1);
	assert_int_equal(F.down, 0);
	air_free();
}

/*
 * The modem resets while a frame is on the air: the frame is reported
 * failed (never sent), the link goes down and up, and the next frame
 * goes out.
 */
static void
test_reset_mid_frame(void **state)
{
	static const struct kv o[] = { { "sf", "12" }, { NULL, NULL } };
	static const struct kv so[] = { { "sf", "12" }, { NULL, NULL } };
	uint8_t		 b[51];

	air_new(so, NULL);
	nodes_listen();
	lora_up(o);
	memset(b, 0x11, sizeof(b));
	assert_int_equal(send_frame(b, 51, 7), TP_OK);
	/* SF12: 2.5 s on the air, 120 ms of real time. */
	WAIT_FOR(F.gw->st.tx_frames == 1, 2000);
	sim_cmd("reset gw");
	WAIT_FOR(F.ndone == 1, 3000);
	assert_int_equal(F.done_status[0], TP_EIO);
	assert_int_equal(F.done_air[0], 0);
	WAIT_FOR(F.down == 1 && F.up == 2, 5000);
	/* Cut on the air: no node got it. */
	assert_int_equal(node_count(0, "+EVT:RXP2P:"), 0);
	assert_int_equal(send_frame(b, 51, 8), TP_OK);
	WAIT_FOR(F.ndone == 2, 5000);
	assert_int_equal(F.done_status[1], TP_OK);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 1, 3000);
	air_free();
}

/* A modem that stops answering; it answers again later. */
static void
test_silent_modem(void **state)
{
	uint8_t		 b[30];

	air_new(NULL, NULL);
	nodes_listen();
	lora_up(NULL);
	memset(b, 0x22, sizeof(b));
	sim_cmd("silence gw on");
	assert_int_equal(send_frame(b, 30, 1), TP_OK);
	WAIT_FOR(F.down == 1, 4000);
	WAIT_FOR(F.ndone == 1, 100);
	assert_int_equal(F.done_status[0], TP_EIO);
	/* Down: the engine is told to wait. */
	assert_int_equal(send_frame(b, 30, 2), TP_EAGAIN);
	sim_cmd("silence gw off");
	WAIT_FOR(F.up == 2, 8000);
	WAIT_FOR(F.writable >= 1, 1000);
	assert_int_equal(send_frame(b, 30, 3), TP_OK);
	WAIT_FOR(F.ndone == 2, 3000);
	assert_int_equal(F.done_status[1], TP_OK);
	/*
	 * The node's receive line follows the end of the frame on the air
	 * (TX DONE) by its serial line's time: wait for it, then check
	 * that the frame the silent modem never sent did not arrive.
	 */
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") >= 1, 3000);
	run_ms(50);
	assert_int_equal(node_count(0, "+EVT:RXP2P:"), 1);
	air_free();
}

/*
 * Garbage on the line, a truncated answer (the OK of a send: the TX
 * DONE that follows still confirms the frame), a truncated receive
 * line: counted, logged, nothing else changes.
 */
static void
test_garbage(void **state)
{
	uint8_t		 b[30];
	struct tp_stats	 st;

	air_new(NULL, NULL);
	nodes_listen();
	lora_up(NULL);
	memset(b, 0x33, sizeof(b));
	sim_cmd("garble gw");
	run_ms(50);
	sim_cmd("truncate gw");
	assert_int_equal(send_frame(b, 30, 1), TP_OK);
	WAIT_FOR(F.ndone == 1, 3000);
	assert_int_equal(F.done_status[0], TP_OK);
	/* A receive line cut in half. */
	sim_cmd("truncate gw");
	node_say(0, "AT+PSEND=0102030405060708090A");
	WAIT_FOR(node_count(0, "+EVT:TXP2P DONE") == 1, 3000);
	run_ms(100);
	assert_int_equal(F.nrx, 0);
	tp_lora_ops.stats(F.tp, &st);
	assert_true(st.rx_errors >= 2);
	assert_int_equal(F.down, 0);
	/* And it still works. */
	node_say(0, "AT+PSEND=AA");
	WAIT_FOR(F.nrx == 1, 3000);
	air_free();
}

/* Busy answers are retried; errors once, then the frame is dropped. */
static void
test_busy_error(void **state)
{
	uint8_t		 b[30];

	air_new(NULL, NULL);
	nodes_listen();
	lora_up(NULL);
	memset(b, 0x44, sizeof(b));
	sim_cmd("busy gw 3");
	assert_int_equal(send_frame(b, 30, 1), TP_OK);
	WAIT_FOR(F.ndone == 1, 3000);
	assert_int_equal(F.done_status[0], TP_OK);
	sim_cmd("error gw 1");
	assert_int_equal(send_frame(b, 30, 2), TP_OK);
	WAIT_FOR(F.ndone == 2, 3000);
	assert_int_equal(F.done_status[1], TP_OK);
	sim_cmd("error gw 2");
	assert_int_equal(send_frame(b, 30, 3), TP_OK);
	WAIT_FOR(F.ndone == 3, 3000);
	assert_int_equal(F.done_status[2], TP_EIO);
	assert_int_equal(F.done_air[2], 0);
	assert_int_equal(F.down, 0);
	/*
	 * Eight busy answers in a row: the modem is re-initialised.  The
	 * plugin backs off 20 ms << try before each of the seven retries,
	 * 40 + 80 + ... + 2560 = 5080 ms in all, so the wait allows that
	 * and the eight round trips on a loaded host.
	 */
	sim_cmd("busy gw 8");
	assert_int_equal(send_frame(b, 30, 4), TP_OK);
	WAIT_FOR(F.ndone == 4, 5080 + 3000);
	assert_int_equal(F.done_status[3], TP_EIO);
	WAIT_FOR(F.down == 1 && F.up == 2, 5000);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 2, 1000);
	air_free();
}

/*
 * The modem's own regulator: on 869.0 MHz (band N, 0.1 %: 3.6 s an
 * hour) a second 2.5-second SF12 frame is refused; the plugin reports
 * it refused (TP_EAGAIN), not sent, and the link stays up.
 */
static void
test_duty_refused(void **state)
{
	static const struct kv o[] = { { "sf", "12" },
	    { "frequency_hz", "869000000" }, { NULL, NULL } };
	static const struct kv so[] = { { "freq", "869000000" },
	    { "sf", "12" }, { NULL, NULL } };
	uint8_t		 b[51];
	struct tp_caps	 c;

	air_new(so, NULL);
	nodes_listen();
	lora_up(o);
	tp_lora_ops.caps(F.tp, &c);
	assert_int_equal(c.duty_cycle_ppm, 1000);
	memset(b, 0x55, sizeof(b));
	assert_int_equal(send_frame(b, 51, 1), TP_OK);
	assert_int_equal(send_frame(b, 51, 2), TP_OK);
	WAIT_FOR(F.ndone == 2, 5000);
	assert_int_equal(F.done_status[0], TP_OK);
	assert_int_equal(F.done_air[0], 2465792);
	assert_int_equal(F.done_status[1], TP_EAGAIN);
	assert_int_equal(F.done_air[1], 0);
	assert_int_equal(F.down, 0);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 1, 2000);
	air_free();
}

/* A modem found in LoRaWAN mode is switched (it reboots) and set up. */
static void
test_lorawan_mode(void **state)
{
	static const struct kv go[] = { { "mode", "lorawan" }, { NULL, NULL } };

	air_new(NULL, go);
	nodes_listen();
	lora_up(NULL);
	assert_int_equal(F.gw->st.resets, 0);
	assert_int_equal(send_frame((const uint8_t *)"hello", 5, 1), TP_OK);
	WAIT_FOR(node_count(0, ":68656C6C6F") == 1, 3000);
	air_free();
}

/*
 * Sleeping nodes: a node that listens 30 ms every second catches a
 * frame sent with a one-second wake preamble; the frame's time on air
 * includes it, and the next frame (nodes awake) has the usual preamble.
 */
static void
test_wake(void **state)
{
	static const struct kv o[] = { { "wake_ms", "1000" },
	    { "node_awake_ms", "10000" }, { NULL, NULL } };
	struct lora_phy	 p;
	struct tp_addr	 dst;
	uint32_t	 predicted;
	unsigned int	 k;

	scale = SCALE_WAKE;
	air_new(NULL, NULL);
	scale = SCALE;
	lora_up(o);
	memset(&p, 0, sizeof(p));
	p.sf = 7;
	p.bw_khz = 125;
	p.cr = 1;
	p.preamble = 8;
	p.crc = true;
	p.ldro = -1;
	tp_addr_broadcast(&dst);
	predicted = tp_lora_ops.airtime(F.tp, &dst, 40);
	assert_int_equal(predicted, lora_toa_ns(&p, 40, lora_preamble_for_ms(
	    &p, 1000)) / 1000);
	assert_true(predicted > 1000000);
	assert_int_equal(send_frame((const uint8_t *)"wake-me-up-wake-me-up-wake-"
	    "me-up-1234567", 40, 1), TP_OK);
	/*
	 * Node 0 sleeps, with a 30 ms window every second (simulated),
	 * the first as soon as the frame's preamble is on the air: the
	 * window falls inside it however late the test's loop runs, up to
	 * the preamble's 500 ms of real time.
	 */
	WAIT_FOR(F.gw->st.tx_frames == 1, 3000);
	for (k = 0; k < 8 && F.ndone == 0; k++) {
		node_say(0, "AT+PRECV=30");
		run_ms((unsigned int)(1000 / SCALE_WAKE));
	}
	WAIT_FOR(F.ndone == 1, 3000);
	assert_int_equal(F.done_status[0], TP_OK);
	assert_int_equal(F.done_air[0], predicted);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 1, 1000);
	/* Awake now: the usual preamble. */
	assert_int_equal(tp_lora_ops.airtime(F.tp, &dst, 40),
	    lora_toa_ns(&p, 40, 8) / 1000);
	node_say(0, "AT+PRECV=65533");
	run_ms(20);
	assert_int_equal(send_frame((const uint8_t *)"again", 5, 2), TP_OK);
	WAIT_FOR(F.ndone == 2, 3000);
	assert_int_equal(F.done_air[1], lora_toa_ns(&p, 5, 8) / 1000);
	WAIT_FOR(node_count(0, "+EVT:RXP2P:") == 2, 1000);
	air_free();
}

/* Configurations that must not open, each with a reason. */
static void
test_bad_config(void **state)
{
	static const struct kv gap[] = { { "frequency_hz", "868650000" },
	    { NULL, NULL } };
	static const struct kv sf[] = { { "sf", "6" }, { NULL, NULL } };
	static const struct kv bw[] = { { "bandwidth_khz", "200" },
	    { NULL, NULL } };
	static const struct kv mtu[] = { { "mtu", "10" }, { NULL, NULL } };
	static const struct kv baud[] = { { "baud", "12345" }, { NULL, NULL } };
	static const struct kv fmt[] = { { "format", "9N1" }, { NULL, NULL } };
	static const struct kv wake[] = { { "wake_ms", "5000" },
	    { "node_awake_ms", "4000" }, { NULL, NULL } };
	static const struct kv pw[] = { { "power_dbm", "2" }, { NULL, NULL } };
	const struct kv *bad[] = { gap, sf, bw, mtu, baud, fmt, wake, pw };
	char		*cause;
	size_t		 i;

	air_new(NULL, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cause = NULL;
		F.tp = NULL;
		assert_int_equal(lora_open(bad[i], &cause), -1);
		assert_non_null(cause);
		fprintf(stderr, "refused: %s\n", cause);
		free(cause);
		assert_null(F.tp);
	}
	/* No such device. */
	{
		struct tp_kv	 kv[2] = { { "type", "lora" },
				    { "device", "/nonexistent/tty" } };
		struct tp_conf	 conf = { "lora0", tp_lora_ops.options, 2,
				    kv };

		cause = NULL;
		assert_int_equal(tp_lora_ops.open(&F.host, &conf, &F.tp,
		    &cause), -1);
		assert_non_null(strstr(cause, "/nonexistent/tty"));
		free(cause);
	}
	F.tp = NULL;
	air_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_caps),
		cmocka_unit_test(test_send),
		cmocka_unit_test(test_receive),
		cmocka_unit_test(test_reset_mid_frame),
		cmocka_unit_test(test_silent_modem),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_busy_error),
		cmocka_unit_test(test_duty_refused),
		cmocka_unit_test(test_lorawan_mode),
		cmocka_unit_test(test_wake),
		cmocka_unit_test(test_bad_config)
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
