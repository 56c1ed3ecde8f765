/*
 * test_tp_ble.c: the "ble" plugin as the engine sees it (transport.h),
 * against the simulated peripheral of node-stubs/node_ble.c, both in
 * this process: the plugin on a libevent loop, each node link driven by
 * poll() as upnode drives it.  The plugin reaches the nodes through its
 * `sim_dir' (docs/transports/ble.md, "Simulated peripherals"), so
 * everything but the controller is the real code on both ends: the
 * advertising report, the ATT set-up, credits, writes, notifications,
 * the link model's pacing and its faults.
 *
 * Also: the real radio without a controller fails at open with a message
 * that says why (this machine's kernel has no Bluetooth at all), and the
 * option checks.  Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"
#include "transport.h"
#include "ub_test.h"
#include "upnode.h"

#define WAIT_MS		5000
#define MAXN		4
#define MAXEV		64

struct node {
	struct node_conf	 conf;
	struct node_link	*l;
	struct tp_addr		 addr;
	int			 frames;
	uint8_t			 last[600];
	size_t			 last_len;
	uint8_t			 first;		/* byte 0 of every frame */
	bool			 in_order;
};

struct ev {
	enum tp_peer_event	 what;
	struct tp_addr		 addr;
	uint32_t		 mtu;
	int			 reason;
};

struct fx {
	char			 dir[64];
	struct event_base	*base;
	struct tp_host		 host;
	const struct tp_ops	*ops;
	struct tp		*tp;
	struct node		 n[MAXN];
	int			 nn;

	struct ev		 ev[MAXEV];
	int			 nev;
	int			 in_op;		/* a callback here is a bug */
	int			 rx;
	struct tp_addr		 rx_src;
	uint8_t			 rx_last[600];
	size_t			 rx_len;
	int			 done_ok;
	int			 done_err;
	uint64_t		 done_seen[256];
	int			 link_up;
	int			 writable;
	int			 close_in_rx;
};

static char	 logbuf[16384];

static void
log_capture(int level, const char *fmt, va_list ap)
{
	size_t	 n = strlen(logbuf);

	if (n < sizeof(logbuf) - 2) {
		vsnprintf(logbuf + n, sizeof(logbuf) - n - 1, fmt, ap);
		strcat(logbuf, "\n");
	}
}

static void
h_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	struct fx	*f = arg;

	assert_int_equal(f->in_op, 0);
	f->rx++;
	f->rx_src = *src;
	assert_true(len <= sizeof(f->rx_last));
	memcpy(f->rx_last, frame, len);
	f->rx_len = len;
	if (f->close_in_rx) {
		f->ops->close(tp);
		f->tp = NULL;
	}
}

static void
h_writable(void *arg, struct tp *tp)
{
	struct fx	*f = arg;

	assert_int_equal(f->in_op, 0);
	f->writable++;
}

static void
h_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t air)
{
	struct fx	*f = arg;

	assert_int_equal(f->in_op, 0);
	assert_true(cookie < 256);
	/* Exactly one tx_done per frame accepted. */
	assert_int_equal(f->done_seen[cookie], 0);
	f->done_seen[cookie]++;
	if (status == TP_OK)
		f->done_ok++;
	else {
		assert_int_equal(status, TP_ENOPEER);
		f->done_err++;
	}
}

static void
h_link(void *arg, struct tp *tp, enum tp_link_event e)
{
	struct fx	*f = arg;

	assert_int_equal(f->in_op, 0);
	if (e == TP_LINK_UP)
		f->link_up++;
}

static void
h_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event e, const struct tp_peer_info *info)
{
	struct fx	*f = arg;

	assert_int_equal(f->in_op, 0);
	assert_true(f->nev < MAXEV);
	f->ev[f->nev].what = e;
	f->ev[f->nev].addr = *a;
	f->ev[f->nev].mtu = info->mtu;
	f->ev[f->nev].reason = info->reason;
	f->nev++;
}

static struct fx *
fx_new(void)
{
	struct fx	*f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_tp_ble.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->host.base = f->base;
	f->host.arg = f;
	f->host.now_ms = ubt_host_now_ms;
	f->host.rx = h_rx;
	f->host.writable = h_writable;
	f->host.tx_done = h_tx_done;
	f->host.link = h_link;
	f->host.peer = h_peer;
	f->ops = tp_find("ble");
	assert_non_null(f->ops);
	logbuf[0] = '\0';
	return (f);
}

/* Opens the plugin on the sim dir with extra KEY=VALUE options. */
static void
fx_open(struct fx *f, const char *const *kv)
{
	struct tp_kv	 pairs[16];
	struct tp_conf	 conf;
	char		*cause = NULL;
	size_t		 n = 0;

	pairs[n].key = "sim_dir";
	pairs[n++].value = f->dir;
	pairs[n].key = "scan_period_ms";
	pairs[n++].value = "50";
	for (; kv != NULL && *kv != NULL; kv += 2) {
		pairs[n].key = kv[0];
		pairs[n++].value = kv[1];
	}
	conf.name = "ble0";
	conf.options = f->ops->options;
	conf.nkv = n;
	conf.kv = pairs;
	assert_int_equal(tp_conf_check(&conf, &cause), 0);
	f->in_op++;
	assert_int_equal(f->ops->open(&f->host, &conf, &f->tp, &cause), 0);
	assert_int_equal(f->ops->start(f->tp, &cause), 0);
	f->in_op--;
}

/* A simulated node with link options KEY, VALUE, ..., NULL. */
static struct node *
node_add(struct fx *f, uint64_t id, ...)
{
	struct node	*n = &f->n[f->nn++];
	va_list		 ap;
	const char	*k, *v;
	char		*cause = NULL, a[64];

	n->conf.id = id;
	n->conf.link = &node_link_ble;
	n->conf.linkopt[n->conf.nlinkopt].key = "dir";
	n->conf.linkopt[n->conf.nlinkopt++].value = f->dir;
	va_start(ap, id);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		assert_null(node_link_opt_check(&node_link_ble, k, v));
		n->conf.linkopt[n->conf.nlinkopt].key = k;
		n->conf.linkopt[n->conf.nlinkopt++].value = v;
	}
	va_end(ap);
	n->l = node_link_ble.open(&n->conf, -1, &cause);
	if (n->l == NULL)
		fail_msg("node open: %s", cause);
	node_link_ble.boot(n->l);
	/* auto: random static C0 + the low 40 bits of the id. */
	snprintf(a, sizeof(a), "ble:C0:%02X:%02X:%02X:%02X:%02X/random",
	    (unsigned)(id >> 32) & 0xff, (unsigned)(id >> 24) & 0xff,
	    (unsigned)(id >> 16) & 0xff, (unsigned)(id >> 8) & 0xff,
	    (unsigned)id & 0xff);
	assert_int_equal(f->ops->addr_parse(a, &n->addr, &cause), 0);
	n->in_order = true;
	return (n);
}

/* One turn: the plugin's loop, then every node as upnode would. */
static void
turn(struct fx *f, int ms)
{
	struct pollfd		 pfd[MAXN][NODE_LINK_FDS_MAX];
	struct pollfd		 all[MAXN * NODE_LINK_FDS_MAX];
	struct node_link_src	 src;
	uint8_t			 buf[600];
	int			 cnt[MAXN], i, j, k = 0;
	ssize_t			 r;

	event_base_loop(f->base, EVLOOP_NONBLOCK);
	for (i = 0; i < f->nn; i++) {
		cnt[i] = f->n[i].l == NULL ? 0 :
		    node_link_ble.pollfds(f->n[i].l, pfd[i], NODE_LINK_FDS_MAX);
		for (j = 0; j < cnt[i]; j++)
			all[k++] = pfd[i][j];
	}
	(void)poll(all, (nfds_t)k, ms);
	for (k = 0, i = 0; i < f->nn; i++) {
		for (j = 0; j < cnt[i]; j++, k++) {
			if (all[k].revents == 0)
				continue;
			while ((r = node_link_ble.recv(f->n[i].l, &all[k],
			    buf, sizeof(buf), &src)) > 0) {
				struct node *n = &f->n[i];

				if (n->frames > 0 && buf[0] != (uint8_t)
				    (n->first + 1))
					n->in_order = false;
				n->first = buf[0];
				n->frames++;
				memcpy(n->last, buf, (size_t)r);
				n->last_len = (size_t)r;
			}
		}
	}
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

typedef bool (*cond_fn)(struct fx *, void *);

static bool
wait_for(struct fx *f, cond_fn c, void *arg, int ms)
{
	uint64_t	 end = ubt_now_ms() + (uint64_t)ms;

	while (!c(f, arg)) {
		if (ubt_now_ms() >= end)
			return (false);
		turn(f, 2);
	}
	return (true);
}

struct want {
	enum tp_peer_event	 what;
	const struct tp_addr	*addr;
	int			 count;
};

static int
count_ev(struct fx *f, enum tp_peer_event what, const struct tp_addr *a)
{
	int	 i, n = 0;

	for (i = 0; i < f->nev; i++)
		if (f->ev[i].what == what && (a == NULL ||
		    tp_addr_eq(&f->ev[i].addr, a)))
			n++;
	return (n);
}

static const struct ev *
last_ev(struct fx *f, enum tp_peer_event what, const struct tp_addr *a)
{
	int	 i;

	for (i = f->nev - 1; i >= 0; i--)
		if (f->ev[i].what == what && tp_addr_eq(&f->ev[i].addr, a))
			return (&f->ev[i]);
	return (NULL);
}

static bool
c_event(struct fx *f, void *arg)
{
	struct want	*w = arg;

	return (count_ev(f, w->what, w->addr) >= w->count);
}

static void
wait_event(struct fx *f, enum tp_peer_event what, const struct tp_addr *a,
    int count)
{
	struct want	 w = { what, a, count };

	if (!wait_for(f, c_event, &w, WAIT_MS))
		fail_msg("no peer event %d (wanted %d, have %d); log:\n%s",
		    what, count, count_ev(f, what, a), logbuf);
}

static int
op_connect(struct fx *f, const struct tp_addr *a)
{
	int	 rc;

	f->in_op++;
	rc = f->ops->connect(f->tp, a);
	f->in_op--;
	return (rc);
}

static int
op_send(struct fx *f, const struct tp_addr *a, const uint8_t *p,
    size_t len, uint64_t cookie)
{
	struct iovec	 iov = { (void *)(uintptr_t)p, len };
	int		 rc;

	f->in_op++;
	rc = f->ops->send(f->tp, a, &iov, 1, cookie);
	f->in_op--;
	return (rc);
}

/*
 * Sends `count' frames of `len' bytes, byte 0 = their number, as the
 * engine would: on TP_EAGAIN it waits for writable() and goes on.
 */
static void
send_frames(struct fx *f, struct node *n, int count, size_t len,
    uint64_t cookie0)
{
	uint8_t		 frame[600];
	uint64_t	 end = ubt_now_ms() + WAIT_MS;
	int		 i = 0, rc, w;

	while (i < count) {
		memset(frame, i, len);
		w = f->writable;
		rc = op_send(f, &n->addr, frame, len, cookie0 + (uint64_t)i);
		if (rc == TP_OK) {
			i++;
			continue;
		}
		if (rc != TP_EAGAIN)
			fail_msg("send %d: %d", i, rc);
		while (f->writable == w) {
			if (ubt_now_ms() >= end)
				fail_msg("no writable() after TP_EAGAIN");
			turn(f, 2);
		}
	}
}

static void
fx_free(struct fx *f)
{
	int	 i;

	if (f->tp != NULL)
		f->ops->close(f->tp);
	for (i = 0; i < f->nn; i++)
		node_link_ble.close(f->n[i].l);
	event_base_free(f->base);
	rmdir(f->dir);
	free(f);
}

/* Found and connected, with the MTU the two ends agreed. */
static void
connect_node(struct fx *f, struct node *n, int nth)
{
	wait_event(f, TP_PEER_FOUND, &n->addr, nth);
	assert_int_equal(op_connect(f, &n->addr), TP_OK);
	wait_event(f, TP_PEER_UP, &n->addr, nth);
}

/* Removes what upnode left in the sim dir (its state directory). */
static void
system_rm(const char *dir)
{
	char	 cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/state' '%s/pub.pem'", dir,
	    dir);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------ */

static void
t_no_controller(void **state)
{
	const struct tp_ops	*ops = tp_find("ble");
	struct event_base	*base = event_base_new();
	struct tp_host		 host;
	struct tp_conf		 conf;
	struct tp		*tp = NULL;
	char			*cause = NULL;

	memset(&host, 0, sizeof(host));
	host.base = base;
	host.now_ms = ubt_host_now_ms;
	memset(&conf, 0, sizeof(conf));
	conf.name = "ble0";
	conf.options = ops->options;
	/* The default: the controller hci0, which this machine lacks. */
	assert_int_equal(ops->open(&host, &conf, &tp, &cause), -1);
	assert_null(tp);
	assert_non_null(cause);
	/*
	 * This machine's kernel has no Bluetooth at all; a kernel with it
	 * but no hci0 gets the second message.
	 */
	if (strstr(cause, "no Bluetooth on this machine: the kernel has no "
	    "AF_BLUETOOTH sockets") == NULL && strstr(cause, "no Bluetooth "
	    "controller \"hci0\"") == NULL)
		fail_msg("unclear: %s", cause);
	assert_non_null(strstr(cause, "transport.ble0: "));
	free(cause);
	event_base_free(base);
}

static void
t_options(void **state)
{
	const struct tp_ops	*ops = tp_find("ble");
	static const char *const bad[][3] = {
		{ "conn_interval_us", "8000", "steps of 1250" },
		{ "conn_interval_us", "5000", "7500 to 4000000" },
		{ "security", "max", "low, medium or high" },
		{ "sim_dir", "relative/dir", "absolute path" },
		{ "adapter", "hci0;rm", "HCI device name" },
		{ "phy", "3M", "1M, 2M or any" },
		{ "mtu", "22", "" },
		{ "max_peers", "0", "" },
	};
	struct tp_kv		 kv;
	struct tp_conf		 conf;
	struct event_base	*base = event_base_new();
	struct tp_host		 host;
	struct tp		*tp = NULL;
	char			*cause = NULL;
	size_t			 i;
	struct tp_caps		 c;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kv.key = bad[i][0];
		kv.value = bad[i][1];
		conf.name = "ble0";
		conf.options = ops->options;
		conf.nkv = 1;
		conf.kv = &kv;
		assert_int_equal(tp_conf_check(&conf, &cause), -1);
		assert_non_null(strstr(cause, bad[i][2]));
		free(cause);
		cause = NULL;
	}

	/* sim_dir that is not there; security the simulation lacks. */
	memset(&host, 0, sizeof(host));
	host.base = base;
	host.now_ms = ubt_host_now_ms;
	kv.key = "sim_dir";
	kv.value = "/nonexistent/ble";
	conf.nkv = 1;
	assert_int_equal(ops->open(&host, &conf, &tp, &cause), -1);
	assert_non_null(strstr(cause, "sim_dir \"/nonexistent/ble\": No such "
	    "file"));
	free(cause);
	cause = NULL;
	{
		struct tp_kv	 two[2] = { { "sim_dir", "/tmp" },
				    { "security", "medium" } };

		conf.nkv = 2;
		conf.kv = two;
		assert_int_equal(ops->open(&host, &conf, &tp, &cause), -1);
		assert_non_null(strstr(cause, "security must be low"));
		free(cause);
		cause = NULL;
		conf.nkv = 1;
		assert_int_equal(ops->open(&host, &conf, &tp, &cause), 0);
		ops->caps(tp, &c);
		assert_int_equal(c.mtu, 244);
		assert_int_equal(c.uplink_mtu, 244);
		assert_int_equal(c.max_peers, 4);
		assert_int_equal(c.tx_queue, 64);
		assert_true(c.flags & TP_CAP_CONNECT);
		assert_true(c.flags & TP_CAP_UNICAST);
		assert_false(c.flags & TP_CAP_BROADCAST);
		assert_true(c.flags & TP_CAP_COMPACT);
		assert_true(c.flags & TP_CAP_ADDRESSED);
		assert_true(c.flags & TP_CAP_FCS);
		assert_int_equal(c.bitrate_bps, 1400000);
		ops->close(tp);
	}
	event_base_free(base);
}

static void
t_found_connect_frames(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 frame[244], reply[50];
	struct tp_stats	 st;
	int		 i;

	fx_open(f, NULL);
	n = node_add(f, 0x1122334455ULL, "interval_us", "7500", NULL);
	wait_event(f, TP_PEER_FOUND, &n->addr, 1);
	assert_true(f->link_up == 1);
	assert_int_equal(op_connect(f, &n->addr), TP_OK);
	/* Nothing fires inside connect(); the set-up follows. */
	assert_int_equal(count_ev(f, TP_PEER_UP, NULL), 0);
	wait_event(f, TP_PEER_UP, &n->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_UP, &n->addr)->mtu, 244);
	/* Asked again while up: TP_OK, and it says UP again. */
	assert_int_equal(op_connect(f, &n->addr), TP_OK);
	wait_event(f, TP_PEER_UP, &n->addr, 2);

	/* Frames to the node, in order, whole. */
	send_frames(f, n, 40, sizeof(frame), 0);
	assert_true(f->writable > 0);
	for (i = 0; i < 200 && n->frames < 40; i++)
		turn(f, 5);
	assert_int_equal(n->frames, 40);
	assert_true(n->in_order);
	assert_int_equal(n->last_len, 244);
	assert_int_equal(n->last[243], 39);
	assert_int_equal(f->done_ok, 40);
	/* Larger than the connection carries. */
	assert_int_equal(op_send(f, &n->addr, frame, 245, 99),
	    TP_EMSGSIZE);

	/* The node's frame, as a notification, from its address. */
	memset(reply, 0xab, sizeof(reply));
	assert_int_equal(node_link_ble.send(n->l, reply, sizeof(reply)), 0);
	for (i = 0; i < 100 && f->rx == 0; i++)
		turn(f, 5);
	assert_int_equal(f->rx, 1);
	assert_int_equal(f->rx_len, 50);
	assert_true(tp_addr_eq(&f->rx_src, &n->addr));
	/* Too large for the node's uplink: refused, not cut. */
	assert_int_equal(node_link_ble.send(n->l, frame, 245), -1);
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.tx_frames, 40);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(st.rx_errors, 0);
	assert_null(strstr(logbuf, "past the credit"));
	fx_free(f);
}

static void
t_mtu23(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 frame[21];
	int		 i;

	fx_open(f, NULL);
	/* A node that accepts no more than the default ATT MTU. */
	n = node_add(f, 0x23, "mtu", "23", "data_length", "27", "phy", "1M",
	    NULL);
	connect_node(f, n, 1);
	assert_int_equal(last_ev(f, TP_PEER_UP, &n->addr)->mtu, 20);
	memset(frame, 7, sizeof(frame));
	assert_int_equal(op_send(f, &n->addr, frame, 21, 1), TP_EMSGSIZE);
	assert_int_equal(op_send(f, &n->addr, frame, 20, 2), TP_OK);
	for (i = 0; i < 100 && n->frames == 0; i++)
		turn(f, 5);
	assert_int_equal(n->frames, 1);
	assert_int_equal(n->last_len, 20);
	fx_free(f);
}

static void
t_max_peers(void **state)
{
	struct fx	*f = fx_new();
	struct node	*a, *b, *c;
	static const char *const kv[] = { "max_peers", "2", NULL };

	fx_open(f, kv);
	a = node_add(f, 0xa, NULL);
	b = node_add(f, 0xb, NULL);
	c = node_add(f, 0xc, NULL);
	wait_event(f, TP_PEER_FOUND, &c->addr, 1);
	wait_event(f, TP_PEER_FOUND, &b->addr, 1);
	wait_event(f, TP_PEER_FOUND, &a->addr, 1);
	assert_int_equal(op_connect(f, &a->addr), TP_OK);
	assert_int_equal(op_connect(f, &b->addr), TP_OK);
	/* Two connecting count against max_peers already. */
	assert_int_equal(op_connect(f, &c->addr), TP_EAGAIN);
	wait_event(f, TP_PEER_UP, &a->addr, 1);
	wait_event(f, TP_PEER_UP, &b->addr, 1);
	assert_int_equal(op_connect(f, &c->addr), TP_EAGAIN);
	/* A slot freed: DOWN with reason 0 follows, not inside the call. */
	f->in_op++;
	f->ops->disconnect(f->tp, &a->addr);
	f->in_op--;
	assert_int_equal(count_ev(f, TP_PEER_DOWN, &a->addr), 0);
	wait_event(f, TP_PEER_DOWN, &a->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &a->addr)->reason, 0);
	assert_int_equal(op_connect(f, &c->addr), TP_OK);
	wait_event(f, TP_PEER_UP, &c->addr, 1);
	/* The node saw the disconnect and advertises again. */
	wait_event(f, TP_PEER_FOUND, &a->addr, 2);
	fx_free(f);
}

static void
t_connect_nobody(void **state)
{
	struct fx	*f = fx_new();
	struct tp_addr	 a;
	char		*cause = NULL;

	fx_open(f, NULL);
	assert_int_equal(f->ops->addr_parse("ble:C0:00:00:00:00:99/random",
	    &a, &cause), 0);
	assert_int_equal(op_connect(f, &a), TP_OK);
	assert_int_equal(f->nev, 0);
	wait_event(f, TP_PEER_DOWN, &a, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &a)->reason, TP_ENOPEER);
	assert_non_null(strstr(logbuf, "no such peripheral"));
	/* Broadcast and unknown peers: no. */
	tp_addr_broadcast(&a);
	assert_int_equal(op_send(f, &a, (const uint8_t *)"x", 1, 0),
	    TP_ENOPEER);
	assert_int_equal(op_connect(f, &a), TP_ENOPEER);
	fx_free(f);
}

static bool
c_done(struct fx *f, void *arg)
{
	return (f->done_ok + f->done_err >= *(int *)arg);
}

static void
t_drop_and_resume(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 frame[100];
	int		 i, want = 60, got_before;

	memset(frame, 0, sizeof(frame));

	fx_open(f, NULL);
	/* Lost at the 10th write; the node closes after 200 ms. */
	n = node_add(f, 0xd, "drop_at", "10", "supervision_ms", "200",
	    "adv_delay_ms", "20", "buffers", "4", NULL);
	connect_node(f, n, 1);
	/* As many as fit in the queue, then the node drops. */
	for (i = 0; i < want && op_send(f, &n->addr, frame, sizeof(frame),
	    (uint64_t)i) == TP_OK; i++)
		frame[0] = (uint8_t)(i + 1);
	want = i;
	assert_int_equal(want, 16);
	wait_event(f, TP_PEER_DOWN, &n->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &n->addr)->reason, TP_EIO);
	/*
	 * Every frame accounted for: written, or given back because the
	 * credit (4 buffers beyond the 10 consumed) held it.
	 */
	assert_true(wait_for(f, c_done, &want, WAIT_MS));
	assert_int_equal(f->done_ok + f->done_err, want);
	assert_true(f->done_err > 0);
	/* The node got exactly the first ten, in order. */
	got_before = n->frames;
	assert_int_equal(got_before, 10);
	assert_true(n->in_order);
	assert_non_null(strstr(logbuf, "connection lost (drop_at=10)"));

	/* It advertises again; a new connection carries on. */
	connect_node(f, n, 2);
	memset(frame, 10, sizeof(frame));
	assert_int_equal(op_send(f, &n->addr, frame, sizeof(frame), 200),
	    TP_OK);
	for (i = 0; i < 100 && n->frames == got_before; i++)
		turn(f, 5);
	assert_int_equal(n->frames, got_before + 1);
	fx_free(f);
}

static void
t_node_gone(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 frame[100];
	int		 i;

	fx_open(f, NULL);
	n = node_add(f, 0xe, NULL);
	connect_node(f, n, 1);
	memset(frame, 1, sizeof(frame));
	for (i = 0; i < 5; i++)
		assert_int_equal(op_send(f, &n->addr, frame, sizeof(frame),
		    (uint64_t)i), TP_OK);
	/* The node's process dies: its sockets close with it. */
	node_link_ble.close(n->l);
	n->l = NULL;
	wait_event(f, TP_PEER_DOWN, &n->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &n->addr)->reason, TP_EIO);
	i = 5;
	assert_true(wait_for(f, c_done, &i, WAIT_MS));
	assert_int_equal(op_send(f, &n->addr, frame, sizeof(frame), 9),
	    TP_ENOPEER);
	fx_free(f);
}

static void
t_encryption_required(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;

	fx_open(f, NULL);
	n = node_add(f, 0xf, "require_encryption", "yes", NULL);
	wait_event(f, TP_PEER_FOUND, &n->addr, 1);
	assert_int_equal(op_connect(f, &n->addr), TP_OK);
	wait_event(f, TP_PEER_DOWN, &n->addr, 1);
	assert_int_equal(count_ev(f, TP_PEER_UP, NULL), 0);
	assert_non_null(strstr(logbuf, "requires an encrypted link"));
	assert_non_null(strstr(logbuf, "security = medium"));
	fx_free(f);
}

static void
t_close_in_callback(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 reply[10] = { 1 };
	int		 i;

	fx_open(f, NULL);
	n = node_add(f, 0x10, NULL);
	connect_node(f, n, 1);
	f->close_in_rx = 1;
	assert_int_equal(node_link_ble.send(n->l, reply, sizeof(reply)), 0);
	assert_int_equal(node_link_ble.send(n->l, reply, sizeof(reply)), 0);
	for (i = 0; i < 100 && f->tp != NULL; i++)
		turn(f, 5);
	assert_null(f->tp);
	assert_int_equal(f->rx, 1);
	for (i = 0; i < 10; i++)
		turn(f, 5);
	fx_free(f);
}

/*
 * The link model's pace: 200 frames of 244 bytes at 2 PDUs per 7.5 ms
 * event take at least 100 events (750 ms): the model never delivers
 * faster than its limit.  The upper bound is loose (a loaded machine
 * runs late), but a model that ignored its events would fail it by far.
 */
static void
t_model_pace(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	uint8_t		 frame[244];
	uint64_t	 t0, dt;
	int		 sent = 0;
	static const char *const kv[] = { "peer_queue", "64", NULL };

	fx_open(f, kv);
	n = node_add(f, 0x11, "interval_us", "7500", "pdus", "2",
	    "buffers", "32", NULL);
	connect_node(f, n, 1);
	memset(frame, 0, sizeof(frame));
	t0 = ubt_now_ms();
	while (n->frames < 200 && ubt_now_ms() - t0 < 10000) {
		while (sent < 200 && sent - n->frames < 60 &&
		    op_send(f, &n->addr, frame, sizeof(frame),
		    (uint64_t)sent) == TP_OK)
			sent++;
		turn(f, 2);
	}
	dt = ubt_now_ms() - t0;
	assert_int_equal(n->frames, 200);
	if (dt < 740 || dt > 3000)
		fail_msg("200 frames at 2 per 7.5 ms took %llu ms",
		    (unsigned long long)dt);
	fx_free(f);
}

static bool
c_ok(struct fx *f, void *arg)
{
	return (f->done_ok >= *(int *)arg);
}

/*
 * A disconnect right after the last frame was written loses nothing:
 * the plugin waits until the node has read what was written before it
 * closes (the node's events are 30 ms apart here).
 */
static void
t_disconnect_drains(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;
	int		 ten = 10;

	fx_open(f, NULL);
	n = node_add(f, 0x13, "interval_us", "30000", "pdus", "2", NULL);
	connect_node(f, n, 1);
	send_frames(f, n, 10, 200, 0);
	assert_true(wait_for(f, c_ok, &ten, WAIT_MS));
	assert_true(n->frames < 10);
	f->in_op++;
	f->ops->disconnect(f->tp, &n->addr);
	f->in_op--;
	wait_event(f, TP_PEER_DOWN, &n->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &n->addr)->reason, 0);
	assert_int_equal(n->frames, 10);
	assert_true(n->in_order);
	fx_free(f);
}

static pid_t
upnode_start(struct fx *f, const char *state, const char *pub)
{
	char	 opt[128];
	pid_t	 pid;
	int	 fd;

	snprintf(opt, sizeof(opt), "dir=%s", f->dir);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		execl(UB_BINARY_DIR "/bin/upnode", "upnode", "--id", "0x77",
		    "--hw", "sim-1", "--component", "app=1.0.0",
		    "--state-dir", state, "--pubkey", pub, "--transport",
		    "ble", "--link-opt", opt, "--link-opt", "adv_delay_ms=10",
		    (char *)NULL);
		_exit(127);
	}
	return (pid);
}

/*
 * The real upnode over the BLE link: found, connected, answers a
 * DISCOVER with its ANNOUNCE as a notification; killed (a power cut),
 * its connection goes down; started again, it is found again.
 */
static void
t_upnode(void **state)
{
	struct fx	*f = fx_new();
	struct tp_addr	 a;
	struct up_msg	 m;
	uint8_t		 frame[256];
	char		 st[128], pub[128], *cause = NULL;
	EVP_PKEY	*key;
	FILE		*fp;
	pid_t		 pid;
	int		 n, i;

	snprintf(st, sizeof(st), "%s/state", f->dir);
	snprintf(pub, sizeof(pub), "%s/pub.pem", f->dir);
	assert_int_equal(mkdir(st, 0755), 0);
	assert_non_null(key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(fp = fopen(pub, "w"));
	assert_int_equal(PEM_write_PUBKEY(fp, key), 1);
	fclose(fp);
	EVP_PKEY_free(key);
	fx_open(f, NULL);
	assert_int_equal(f->ops->addr_parse("ble:C0:00:00:00:00:77/random",
	    &a, &cause), 0);

	pid = upnode_start(f, st, pub);
	wait_event(f, TP_PEER_FOUND, &a, 1);
	assert_int_equal(op_connect(f, &a), TP_OK);
	wait_event(f, TP_PEER_UP, &a, 1);
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = 0;
	assert_true((n = up_encode(&m, frame, sizeof(frame))) > 0);
	assert_int_equal(op_send(f, &a, frame, (size_t)n, 1), TP_OK);
	for (i = 0; i < 1000 && f->rx == 0; i++)
		turn(f, 5);
	assert_int_equal(f->rx, 1);
	assert_true(tp_addr_eq(&f->rx_src, &a));
	assert_int_equal(up_decode(f->rx_last, f->rx_len, &m), UP_OK);
	assert_int_equal(m.type, UP_T_ANNOUNCE);

	/* A power cut: the connection dies with the process. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	wait_event(f, TP_PEER_DOWN, &a, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &a)->reason, TP_EIO);
	/* Booted again: it unlinks its stale socket and advertises. */
	pid = upnode_start(f, st, pub);
	wait_event(f, TP_PEER_FOUND, &a, 2);
	assert_int_equal(op_connect(f, &a), TP_OK);
	wait_event(f, TP_PEER_UP, &a, 2);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	wait_event(f, TP_PEER_DOWN, &a, 2);
	system_rm(f->dir);
	fx_free(f);
}

/* A reboot into a new image drops the connection (node link boot()). */
static void
t_node_reboot(void **state)
{
	struct fx	*f = fx_new();
	struct node	*n;

	fx_open(f, NULL);
	n = node_add(f, 0x12, "adv_delay_ms", "10", NULL);
	connect_node(f, n, 1);
	node_link_ble.boot(n->l);
	wait_event(f, TP_PEER_DOWN, &n->addr, 1);
	assert_int_equal(last_ev(f, TP_PEER_DOWN, &n->addr)->reason, TP_EIO);
	connect_node(f, n, 2);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_no_controller),
		cmocka_unit_test(t_options),
		cmocka_unit_test(t_found_connect_frames),
		cmocka_unit_test(t_mtu23),
		cmocka_unit_test(t_max_peers),
		cmocka_unit_test(t_connect_nobody),
		cmocka_unit_test(t_drop_and_resume),
		cmocka_unit_test(t_node_gone),
		cmocka_unit_test(t_encryption_required),
		cmocka_unit_test(t_close_in_callback),
		cmocka_unit_test(t_model_pace),
		cmocka_unit_test(t_upnode),
		cmocka_unit_test(t_node_reboot),
		cmocka_unit_test(t_disconnect_drains),
	};

	up_log_set_hook(log_capture);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
