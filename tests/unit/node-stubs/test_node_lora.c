/*
 * test_node_lora.c: the node's LoRa link (node-stubs/node_lora.c) and
 * the gateway's plugin (transports/lora/) on the same simulated air
 * (node-stubs/sim_lora.c), all on one event loop: the node link exactly
 * as upnode drives it (pollfds, poll, recv, send), the plugin as the
 * engine does, the simulator on a compressed clock (scale 20) that the
 * nodes and the gateway share.
 *
 * Covered: class-C nodes hear the gateway and are heard; sleeping nodes
 * (receive windows) are woken by the gateway's long preamble, stay awake
 * while frames come, fall asleep after awake_ms of silence and are woken
 * again; a node's modem that resets is set up again by the link; a
 * gateway frame longer than the node's data rate allows is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/uio.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"
#include "upnode.h"
#include "upsim.h"

#define SCALE		20.0
/*
 * Sleeping nodes run slower: a node's receive window, opened by its
 * link's timer in this process, must fall inside the gateway's 1 s wake
 * preamble; at scale 20 that is 50 ms of real time, which a loaded host
 * can stall through.  At scale 2 it is 500 ms.
 */
#define SCALE_SLEEP	2.0

static double		 scale = SCALE;
#define NNODE		2

struct tnode {
	struct node_conf	 conf;
	struct node_link	*link;
	struct sim_ep		*ep;
	unsigned int		 nrx;
	uint8_t			 last[256];
	size_t			 last_len;
};

static struct {
	struct event_base *base;
	struct event	*ev_timeout;
	struct event	*ev_poll;
	struct sim	*sim;
	struct sim_ep	*gw;
	struct tnode	 n[NNODE];
	struct tp_host	 host;
	struct tp	*tp;
	int		 up;
	unsigned int	 nrx, ndone, nok;
	uint8_t		 rx[256];
	size_t		 rxlen;
} F;

static uint64_t
h_now_ms(void *arg)
{
	return (sim_now(F.sim) / SIM_NS_PER_MS);
}

static void
h_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	memcpy(F.rx, frame, len);
	F.rxlen = len;
	F.nrx++;
}

static void
h_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t air)
{
	F.ndone++;
	if (status == TP_OK)
		F.nok++;
}

static void
h_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	if (ev == TP_LINK_UP)
		F.up++;
}

/* upnode's loop, one round, for every node. */
static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pollfd	 pfd[NODE_LINK_FDS_MAX];
	struct node_link_src src;
	uint8_t		 buf[256];
	unsigned int	 i;
	int		 k, nfd;
	ssize_t		 n;

	for (i = 0; i < NNODE; i++) {
		nfd = node_link_lora.pollfds(F.n[i].link, pfd,
		    NODE_LINK_FDS_MAX);
		if (poll(pfd, (nfds_t)nfd, 0) <= 0)
			continue;
		for (k = 0; k < nfd; k++) {
			if (pfd[k].revents == 0)
				continue;
			while ((n = node_link_lora.recv(F.n[i].link, &pfd[k],
			    buf, sizeof(buf), &src)) > 0) {
				F.n[i].nrx++;
				memcpy(F.n[i].last, buf, (size_t)n);
				F.n[i].last_len = (size_t)n;
			}
		}
	}
}

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

/* A member of the endpoint's modem status: its text from the value. */
static const char *
modem_get(struct sim_ep *ep, const char *key)
{
	static char	 buf[65536];
	char		 k[64];
	FILE		*f;
	char		*p;

	assert_non_null(f = fmemopen(buf, sizeof(buf), "w"));
	sim_status_json(F.sim, f);
	fclose(f);
	p = strstr(buf, ep->pty);
	assert_non_null(p);
	snprintf(k, sizeof(k), "\"%s\": ", key);
	p = strstr(p, k);
	assert_non_null(p);
	return (p + strlen(k));
}

static const char *
modem_rx(struct sim_ep *ep)
{
	return (modem_get(ep, "rx") + 1);
}

static void
setup(const char *node_sleep, const char *gw_wake)
{
	struct event_config *cfg;
	struct sim_conf	 conf;
	struct tp_kv	 kv[8];
	struct tp_conf	 tc;
	struct timeval	 tv = { 0, 1000 };
	char		*cause = NULL, name[4];
	size_t		 nkv = 0;
	unsigned int	 i;

	memset(&F, 0, sizeof(F));
	memset(&conf, 0, sizeof(conf));
	conf.pers = &sim_lora;
	conf.time_scale = scale;
	conf.seed = 3;
	assert_int_equal(sim_fmt_parse("8N1", 115200, &conf.fmt), 0);
	assert_non_null(cfg = event_config_new());
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	assert_non_null(F.base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	assert_non_null(F.ev_timeout = evtimer_new(F.base, timeout_cb, NULL));
	assert_non_null(F.sim = sim_new(F.base, &conf, &cause));
	assert_non_null(F.gw = sim_ep_add(F.sim, "gw", &cause));
	for (i = 0; i < NNODE; i++) {
		snprintf(name, sizeof(name), "n%u", i + 1);
		assert_non_null(F.n[i].ep = sim_ep_add(F.sim, name, &cause));
	}
	if (sim_start(F.sim, &cause) == -1)
		fail_msg("%s", cause);

	for (i = 0; i < NNODE; i++) {
		struct node_conf *c = &F.n[i].conf;

		c->id = i + 1;
		c->seed = 42;
		c->time_scale = scale;
		c->link = &node_link_lora;
		c->linkopt[c->nlinkopt].key = "device";
		c->linkopt[c->nlinkopt++].value = F.n[i].ep->pty;
		if (node_sleep != NULL) {
			c->linkopt[c->nlinkopt].key = "sleep";
			c->linkopt[c->nlinkopt++].value = "on";
			c->linkopt[c->nlinkopt].key = "wake_ms";
			c->linkopt[c->nlinkopt++].value = node_sleep;
			c->linkopt[c->nlinkopt].key = "awake_ms";
			c->linkopt[c->nlinkopt++].value = "5000";
		}
		F.n[i].link = node_link_lora.open(c, -1, &cause);
		if (F.n[i].link == NULL)
			fail_msg("%s", cause);
	}
	assert_non_null(F.ev_poll = event_new(F.base, -1, EV_PERSIST, poll_cb,
	    NULL));
	event_add(F.ev_poll, &tv);

	F.host.base = F.base;
	F.host.now_ms = h_now_ms;
	F.host.time_scale = scale;
	F.host.rx = h_rx;
	F.host.tx_done = h_tx_done;
	F.host.link = h_link;
	kv[nkv].key = "type";
	kv[nkv++].value = "lora";
	kv[nkv].key = "device";
	kv[nkv++].value = F.gw->pty;
	if (gw_wake != NULL) {
		kv[nkv].key = "wake_ms";
		kv[nkv++].value = gw_wake;
		kv[nkv].key = "node_awake_ms";
		kv[nkv++].value = "5000";
	}
	memset(&tc, 0, sizeof(tc));
	tc.name = "lora0";
	tc.options = tp_lora_ops.options;
	tc.nkv = nkv;
	tc.kv = kv;
	if (tp_conf_check(&tc, &cause) != 0 ||
	    tp_lora_ops.open(&F.host, &tc, &F.tp, &cause) != 0 ||
	    tp_lora_ops.start(F.tp, &cause) != 0)
		fail_msg("%s", cause);
	WAIT_FOR(F.up == 1, 3000);
}

static void
teardown(void)
{
	unsigned int	 i;

	tp_lora_ops.close(F.tp);
	for (i = 0; i < NNODE; i++)
		node_link_lora.close(F.n[i].link);
	event_free(F.ev_poll);
	sim_free(F.sim);
	event_free(F.ev_timeout);
	event_base_free(F.base);
}

static int
gw_send(const char *s, uint64_t cookie)
{
	struct tp_addr	 dst;
	struct iovec	 iov;

	tp_addr_broadcast(&dst);
	iov.iov_base = (void *)(uintptr_t)s;
	iov.iov_len = strlen(s);
	return (tp_lora_ops.send(F.tp, &dst, &iov, 1, cookie));
}

/* Class C: both ways, and the caps the node's engine is given. */
static void
test_class_c(void **state)
{
	struct node_link_caps c;

	setup(NULL, NULL);
	node_link_lora.caps(F.n[0].link, &c);
	assert_int_equal(c.rx_max, 222);
	assert_int_equal(c.mtu_up, 222);
	/* Compact, no CRC-16 of UP's (LoRa's own), no addresses. */
	assert_int_equal(c.flags, NODE_LINK_BROADCAST | NODE_LINK_HALF_DUPLEX |
	    NODE_LINK_COMPACT);
	/* Boot slots of a 222-byte frame's 348.4 ms on air, and 50 ms. */
	assert_int_equal(c.boot_slots, 32);
	assert_int_equal(c.boot_slot_ms, 349 + 50);
	/* Let the nodes' modems come up. */
	WAIT_FOR(strncmp(modem_rx(F.n[0].ep), "continuous", 10) == 0 &&
	    strncmp(modem_rx(F.n[1].ep), "continuous", 10) == 0, 3000);
	assert_int_equal(gw_send("frame one", 1), TP_OK);
	assert_int_equal(gw_send("frame two", 2), TP_OK);
	WAIT_FOR(F.n[0].nrx == 2 && F.n[1].nrx == 2, 3000);
	assert_memory_equal(F.n[1].last, "frame two", 9);
	assert_int_equal(node_link_lora.send(F.n[0].link,
	    (const uint8_t *)"up from n1", 10), 0);
	WAIT_FOR(F.nrx == 1, 3000);
	assert_memory_equal(F.rx, "up from n1", 10);
	/* Too long for the uplink. */
	{
		uint8_t	 big[223];

		memset(big, 0, sizeof(big));
		assert_int_equal(node_link_lora.send(F.n[0].link, big, 223),
		    -1);
	}
	teardown();
}

/*
 * Sleeping nodes (a 30 ms window every second) are woken by the
 * gateway's one-second preamble, stay awake while frames come, sleep
 * after 5 s of silence, and are woken again.
 */
static void
test_sleep_wake(void **state)
{
	scale = SCALE_SLEEP;
	setup("1000", "1000");
	scale = SCALE;
	run_ms((unsigned int)(2000 / SCALE_SLEEP));
	/* Asleep: windows or off, never continuous. */
	assert_true(strncmp(modem_rx(F.n[0].ep), "continuous", 10) != 0);
	assert_int_equal(gw_send("wake up", 1), TP_OK);
	WAIT_FOR(F.n[0].nrx == 1 && F.n[1].nrx == 1, 5000);
	WAIT_FOR(strncmp(modem_rx(F.n[0].ep), "continuous", 10) == 0, 2000);
	/* Awake: an ordinary frame gets through. */
	assert_int_equal(gw_send("still here", 2), TP_OK);
	WAIT_FOR(F.n[0].nrx == 2 && F.n[1].nrx == 2, 5000);
	/* 5 s of silence (2.5 s real): asleep again. */
	WAIT_FOR(strncmp(modem_rx(F.n[0].ep), "continuous", 10) != 0 &&
	    strncmp(modem_rx(F.n[1].ep), "continuous", 10) != 0, 10000);
	assert_int_equal(gw_send("wake again", 3), TP_OK);
	WAIT_FOR(F.n[0].nrx == 3 && F.n[1].nrx == 3, 5000);
	assert_memory_equal(F.n[0].last, "wake again", 10);
	/* The gateway's TX DONE may come after the nodes' lines. */
	WAIT_FOR(F.nok == 3, 2000);
	assert_int_equal(F.ndone, 3);
	teardown();
}

/* A node's modem resets: the link sets it up again. */
static void
test_node_modem_reset(void **state)
{
	char		*cause = NULL;
	unsigned long	 cmds;

	setup(NULL, NULL);
	WAIT_FOR(strncmp(modem_rx(F.n[0].ep), "continuous", 10) == 0, 3000);
	cmds = strtoul(modem_get(F.n[0].ep, "cmds"), NULL, 10);
	assert_int_equal(sim_command(F.sim, "reset n1", &cause), 0);
	/* The banner, then the whole script again, listening. */
	WAIT_FOR(strtoul(modem_get(F.n[0].ep, "cmds"), NULL, 10) >=
	    cmds + 6 && strncmp(modem_rx(F.n[0].ep), "continuous", 10) == 0,
	    5000);
	assert_int_equal(F.n[0].ep->st.resets, 1);
	assert_int_equal(gw_send("after reset", 1), TP_OK);
	WAIT_FOR(F.n[0].nrx == 1, 3000);
	teardown();
}

/* Warnings on stderr: a failure under load says what happened. */
static void
log_hook(int level, const char *fmt, va_list ap)
{
	if (level > UP_LOG_WARN)
		return;
	fprintf(stderr, "log: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_c),
		cmocka_unit_test(test_sleep_wake),
		cmocka_unit_test(test_node_modem_reset)
	};

	up_log_set_hook(log_hook);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
