/*
 * tp_ble.c: the "ble" transport, UP over BLE GATT with the gateway as
 * the central and GATT client (docs/transports/ble.md).
 *
 * One instance is one controller.  It scans for nodes advertising the
 * UP service (TP_PEER_FOUND), connects to the ones the engine asks for,
 * at most max_peers at a time (connect() says TP_EAGAIN beyond that:
 * whom to connect next is the engine's choice), sets each connection up
 * (ble_client.c: MTU exchange, discovery, notifications, first credit)
 * and then reports it (TP_PEER_UP with that connection's frame size,
 * ATT_MTU − 3).  Frames to a node are copied into its connection's
 * queue and written as Write Commands as fast as the socket and the
 * node's credit allow; every frame accepted gets one tx_done: TP_OK when
 * it was written to the bearer, TP_ENOPEER when the connection died
 * first.  The node's frames arrive as notifications and go to rx().
 *
 * Two radios (ble_internal.h): the controller through BlueZ's kernel
 * interfaces (ble_hci.c, the default) and, for tests only, simulated
 * peripherals in a socket directory (ble_sim.c, `sim_dir').  Everything
 * above the radio is the same code.
 *
 * Host callbacks never fire from inside an op: connect(), disconnect()
 * and send() change state and arm events; the events (a connection's
 * fd, the tick, the deferred notifier) call the host.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "ble_internal.h"
#include "transports_internal.h"

#define TICK_MS		50	/* timeouts, simulated scans */
#define DRAIN_MS	5	/* a closing peer's writes are checked */
#define LINGER_MS	1000	/* longest a disconnect waits for them */
#define SEC_LOW		1	/* BT_SECURITY_LOW */

enum peer_state {
	BP_FREE,		/* slot unused */
	BP_IDLE,		/* known (found, or connected before) */
	BP_CONNECTING,		/* the radio's connect in progress */
	BP_SETUP,		/* connected, ATT set-up running */
	BP_UP,			/* frames flow */
	BP_CLOSING		/* disconnect() asked: drains, then closes */
};

/* Host notifications owed for a peer (fired from the loop). */
#define PEND_DOWN	0x01
#define PEND_FOUND	0x02
#define PEND_UP		0x04

struct ble_peer {
	struct tp		*tp;
	struct tp_addr		 addr;
	enum peer_state		 st;
	int			 fd;		/* while connecting */
	struct ble_conn		*conn;		/* owns the fd once set up */
	struct event		*ev_rd;
	struct event		*ev_wr;
	uint64_t		 t_start;	/* connect() asked */
	uint64_t		 seen_ms;	/* last advertisement */
	int16_t			 rssi;
	bool			 found_told;	/* FOUND since it was last up */
	unsigned int		 pend;
	int			 down_reason;
	uint32_t		 up_mtu;	/* told in TP_PEER_UP */
	uint64_t		 close_at;	/* CLOSING: closes by then */
};

struct tp {
	const struct tp_host	*host;
	char			*name;
	const struct ble_radio_ops *rops;
	struct ble_radio	*radio;

	uint32_t		 mtu;		/* ATT MTU offered */
	uint32_t		 max_peers;
	uint32_t		 peer_queue;
	uint64_t		 bitrate_bps;
	int			 security;
	uint32_t		 connect_ms;
	uint32_t		 att_ms;

	struct ble_peer		*peers;
	size_t			 npeers;	/* slots */
	struct ble_peer		*last;		/* of the last send() */
	uint32_t		 nconn;		/* not IDLE/FREE */
	uint32_t		 nconnecting;

	struct event		*ev_tick;
	struct event		*ev_scan;	/* radio's scan fd */
	struct event		*ev_notify;	/* deferred host calls */
	struct event		*ev_drain;	/* closing peers draining */

	bool			 started;
	bool			 link_told;
	bool			 want_writable;
	int			 in_cb;
	bool			 dead;

	struct tp_stats		 st;
};

static const char	*ble_check_adapter(const char *);
static const char	*ble_check_dir(const char *);
static const char	*ble_check_security(const char *);
static const char	*ble_check_phy(const char *);
static const char	*ble_check_interval(const char *);

static const struct tp_option tp_ble_options[] = {
	{ "adapter", TP_OPT_STRING, "hci0", 0, 0, NULL,
	  "the Bluetooth controller (HCI device name)", ble_check_adapter },
	{ "sim_dir", TP_OPT_STRING, "", 0, 0, NULL,
	  "TEST FACILITY: reach simulated peripherals (upnode --transport "
	  "ble) through the sockets in this directory instead of the "
	  "controller; empty = the controller", ble_check_dir },
	{ "mtu", TP_OPT_INT, "247", BLE_ATT_MTU_MIN, BLE_ATT_MTU_MAX, "bytes",
	  "ATT MTU offered; a connection uses the smaller of it and the "
	  "node's (247 fills one 251-byte LL PDU)", NULL },
	{ "max_peers", TP_OPT_INT, "4", 1, 32, "connections",
	  "nodes connected at once (the controller's limit)", NULL },
	{ "peer_queue", TP_OPT_INT, "16", 1, 1024, "frames",
	  "frames queued per connection", NULL },
	{ "bitrate_kbit", TP_OPT_INT, "1400", 1, 2000, "kbit/s",
	  "ATT payload rate of the controller, all connections together "
	  "(2M PHY with DLE: 1400; 1M: 790; 1M without DLE: 240)", NULL },
	{ "security", TP_OPT_STRING, "low", 0, 0, NULL,
	  "BT_SECURITY of each connection: low (none), medium (encrypted), "
	  "high (encrypted, authenticated pairing)", ble_check_security },
	{ "conn_interval_us", TP_OPT_INT, "15000", 0, 4000000, "us",
	  "connection interval asked for (7500-4000000, steps of 1250), "
	  "0 = the kernel's", ble_check_interval },
	{ "data_length", TP_OPT_INT, "251", 27, 251, "bytes",
	  "LL data length asked for", NULL },
	{ "phy", TP_OPT_STRING, "2M", 0, 0, NULL,
	  "PHY asked for: 1M, 2M or any", ble_check_phy },
	{ "scan_period_ms", TP_OPT_INT, "1000", 50, 600000, "ms",
	  "how often the list of advertisers is refreshed", NULL },
	{ "connect_timeout_ms", TP_OPT_INT, "10000", 100, 120000, "ms",
	  "a connection not made in this time is given up", NULL },
	{ "att_timeout_ms", TP_OPT_INT, "30000", 100, 120000, "ms",
	  "ATT transaction timeout (Core: 30 s); also how long frames wait "
	  "for the node's credit", NULL },
	{ "max_nodes", TP_OPT_INT, "256", 1, 65536, "nodes",
	  "nodes remembered (found or connected)", NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

static int	 tp_ble_open(const struct tp_host *, const struct tp_conf *,
		    struct tp **, char **);
static int	 tp_ble_start(struct tp *, char **);
static void	 tp_ble_close(struct tp *);
static void	 tp_ble_caps(struct tp *, struct tp_caps *);
static int	 tp_ble_send(struct tp *, const struct tp_addr *,
		    const struct iovec *, int, uint64_t);
static int	 tp_ble_addr_fmt(const struct tp_addr *, char *, size_t);
static int	 tp_ble_addr_parse(const char *, struct tp_addr *, char **);
static void	 tp_ble_stats(struct tp *, struct tp_stats *);
static int	 tp_ble_connect(struct tp *, const struct tp_addr *);
static void	 tp_ble_disconnect(struct tp *, const struct tp_addr *);

const struct tp_ops tp_ble_ops = {
	.name = "ble",
	.abi = TP_ABI_VERSION,
	.options = tp_ble_options,
	.open = tp_ble_open,
	.start = tp_ble_start,
	.close = tp_ble_close,
	.caps = tp_ble_caps,
	.send = tp_ble_send,
	.addr_fmt = tp_ble_addr_fmt,
	.addr_parse = tp_ble_addr_parse,
	.stats = tp_ble_stats,
	.connect = tp_ble_connect,
	.disconnect = tp_ble_disconnect
};

static void	 peer_teardown(struct ble_peer *, int reason, bool tell);
static void	 peer_closing(struct ble_peer *);
static void	 notify_flush(struct tp *);
static void	 notify_soon(struct tp *);
static void	 tp_ble_free(struct tp *);

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const char *
ble_check_adapter(const char *v)
{
	size_t		 i, n = strlen(v);

	if (n == 0 || n > 8)
		return ("an HCI device name such as hci0");
	for (i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') ||
		    (v[i] >= '0' && v[i] <= '9')))
			return ("an HCI device name such as hci0");
	return (NULL);
}

static const char *
ble_check_dir(const char *v)
{
	if (*v != '\0' && *v != '/')
		return ("an absolute path (or empty: the controller)");
	if (strlen(v) > 80)
		return ("too long for a UNIX socket path");
	return (NULL);
}

static int
security_level(const char *v)
{
	if (v == NULL || strcmp(v, "low") == 0)
		return (1);
	if (strcmp(v, "medium") == 0)
		return (2);
	if (strcmp(v, "high") == 0)
		return (3);
	return (-1);
}

static const char *
ble_check_security(const char *v)
{
	return (security_level(v) == -1 ? "low, medium or high" : NULL);
}

static const char *
ble_check_phy(const char *v)
{
	if (strcmp(v, "1M") != 0 && strcmp(v, "2M") != 0 &&
	    strcmp(v, "any") != 0)
		return ("1M, 2M or any");
	return (NULL);
}

static const char *
ble_check_interval(const char *v)
{
	long long	 n;

	if (tp__parse_int(v, &n) != 0)
		return ("an integer");
	if (n != 0 && (n < 7500 || n > 4000000 || n % 1250 != 0))
		return ("0, or 7500 to 4000000 in steps of 1250 "
		    "(Core Vol 6 Part B §4.5.1)");
	return (NULL);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

const char *
ble__name(const struct tp *tp)
{
	return (tp->name);
}

uint64_t
ble__now_ms(const struct tp *tp)
{
	return (tp->host->now_ms != NULL ? tp->host->now_ms(tp->host->arg) :
	    0);
}

static const char *
peer_str(const struct ble_peer *p, char *buf, size_t len)
{
	if (ble_addr_fmt(&p->addr, buf, len) == -1)
		snprintf(buf, len, "ble:?");
	return (buf);
}

static struct ble_peer *
peer_find(struct tp *tp, const struct tp_addr *a)
{
	size_t		 i;

	if (a->len != BLE_ADDR_LEN)
		return (NULL);
	if (tp->last != NULL && tp->last->st != BP_FREE &&
	    tp_addr_eq(&tp->last->addr, a))
		return (tp->last);
	for (i = 0; i < tp->npeers; i++)
		if (tp->peers[i].st != BP_FREE &&
		    tp_addr_eq(&tp->peers[i].addr, a))
			return (&tp->peers[i]);
	return (NULL);
}

/*
 * The peer of `a', added when new.  A full table forgets the idle peer
 * heard of least recently that owes the host nothing; NULL when every
 * slot is busy.
 */
static struct ble_peer *
peer_get(struct tp *tp, const struct tp_addr *a)
{
	struct ble_peer	*p, *old = NULL;
	size_t		 i;

	if ((p = peer_find(tp, a)) != NULL)
		return (p);
	for (i = 0; i < tp->npeers; i++) {
		p = &tp->peers[i];
		if (p->st == BP_FREE)
			break;
		if (p->st == BP_IDLE && p->pend == 0 &&
		    (old == NULL || p->seen_ms < old->seen_ms))
			old = p;
		p = NULL;
	}
	if (p == NULL)
		p = old;
	if (p == NULL)
		return (NULL);
	memset(p, 0, sizeof(*p));
	p->tp = tp;
	p->addr = *a;
	p->addr.flags = 0;
	p->st = BP_IDLE;
	p->fd = -1;
	p->rssi = INT16_MAX;
	return (p);
}

/* Scanning is off while a connection is being made (one radio). */
static void
scan_update(struct tp *tp)
{
	char		*cause = NULL;

	if (tp->radio == NULL || !tp->started)
		return;
	if (tp->rops->scan(tp->radio, tp->nconnecting == 0, &cause) == -1) {
		up_logf(UP_LOG_WARN, "transport.%s: scan: %s", tp->name,
		    cause != NULL ? cause : "failed");
		free(cause);
	}
}

/* ------------------------------------------------------------------ */
/* Host notifications                                                   */

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	tp->in_cb++;
	notify_flush(tp);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_ble_free(tp);
}

static void
notify_soon(struct tp *tp)
{
	if (tp->ev_notify != NULL)
		event_active(tp->ev_notify, EV_TIMEOUT, 0);
}

/*
 * A peer the engine disconnected: frames it still queued go back
 * (tx_done TP_ENOPEER), and once what was written has left the host (or
 * LINGER_MS passed) the connection closes.  Closing at once would lose
 * the last frames written, which the engine counts as sent: a kernel
 * discards what a closed socket had not handed on.
 */
static void
peer_closing(struct ble_peer *p)
{
	struct tp	*tp = p->tp;
	struct timeval	 tv = { 0, DRAIN_MS * 1000 };
	uint64_t	 cookie;
	int		 q = 0;

	if (p->conn != NULL) {
		while (ble_conn_pop_unsent(p->conn, &cookie)) {
			tp->st.tx_errors++;
			if (tp->host->tx_done != NULL && !tp->dead)
				tp->host->tx_done(tp->host->arg, tp, cookie,
				    TP_ENOPEER, 0);
		}
		if (tp->rops->outq != NULL)
			q = tp->rops->outq(tp->radio, ble_conn_fd(p->conn));
	}
	if (p->st != BP_CLOSING)
		return;		/* torn down from a callback meanwhile */
	if (q > 0 && ble__now_ms(tp) < p->close_at) {
		if (tp->ev_drain != NULL && !evtimer_pending(tp->ev_drain,
		    NULL))
			evtimer_add(tp->ev_drain, &tv);
		return;
	}
	peer_teardown(p, 0, false);
}

/*
 * Fires what is owed, from the loop only: closing peers drain and are
 * torn down first, then per peer DOWN, FOUND, UP.
 */
static void
notify_flush(struct tp *tp)
{
	struct tp_peer_info	 info;
	struct ble_peer		*p;
	size_t			 i;
	unsigned int		 pend;

	if (tp->dead)
		return;
	if (!tp->link_told && tp->started) {
		tp->link_told = true;
		if (tp->host->link != NULL)
			tp->host->link(tp->host->arg, tp, TP_LINK_UP);
	}
	for (i = 0; i < tp->npeers && !tp->dead; i++) {
		p = &tp->peers[i];
		if (p->st == BP_CLOSING)
			peer_closing(p);
		if ((pend = p->pend) == 0)
			continue;
		p->pend = 0;
		if (tp->host->peer == NULL)
			continue;
		memset(&info, 0, sizeof(info));
		info.rssi_dbm = p->rssi;
		if (pend & PEND_DOWN) {
			info.reason = p->down_reason;
			tp->host->peer(tp->host->arg, tp, &p->addr,
			    TP_PEER_DOWN, &info);
		}
		if ((pend & PEND_FOUND) && !tp->dead && p->st == BP_IDLE) {
			info.reason = 0;
			tp->host->peer(tp->host->arg, tp, &p->addr,
			    TP_PEER_FOUND, &info);
		}
		if ((pend & PEND_UP) && !tp->dead && p->st == BP_UP) {
			info.reason = 0;
			info.mtu = p->up_mtu;
			tp->host->peer(tp->host->arg, tp, &p->addr,
			    TP_PEER_UP, &info);
		}
	}
	if (tp->want_writable && !tp->dead && tp->host->writable != NULL) {
		tp->want_writable = false;
		tp->host->writable(tp->host->arg, tp);
	}
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

/*
 * Ends a peer's connection: every frame still queued gets its tx_done
 * (TP_ENOPEER), the fd and events go, the slot is free.  With `tell' a
 * TP_PEER_DOWN with `reason' is owed (fired now when called from the
 * loop, by notify_flush()).  A CLOSING peer owes a DOWN with reason 0.
 */
static void
peer_teardown(struct ble_peer *p, int reason, bool tell)
{
	struct tp		*tp = p->tp;
	struct ble_conn_stats	 cs;
	uint64_t		 cookie;

	if (p->st == BP_IDLE || p->st == BP_FREE)
		return;
	if (p->st == BP_CLOSING) {
		reason = 0;
		tell = true;
	}
	if (p->ev_rd != NULL)
		event_free(p->ev_rd);
	if (p->ev_wr != NULL)
		event_free(p->ev_wr);
	p->ev_rd = p->ev_wr = NULL;
	if (p->conn != NULL) {
		ble_conn_stats(p->conn, &cs);
		tp->st.rx_errors += cs.rx_bad + cs.rx_unknown;
		while (ble_conn_pop_unsent(p->conn, &cookie)) {
			tp->st.tx_errors++;
			if (tp->host->tx_done != NULL && !tp->dead)
				tp->host->tx_done(tp->host->arg, tp, cookie,
				    TP_ENOPEER, 0);
		}
		ble_conn_free(p->conn);	/* closes the fd */
		p->conn = NULL;
	} else if (p->fd != -1)
		close(p->fd);
	p->fd = -1;
	if (p->st == BP_CONNECTING && tp->nconnecting > 0)
		tp->nconnecting--;
	if (tp->nconn > 0)
		tp->nconn--;
	p->st = BP_IDLE;
	p->found_told = false;
	p->pend &= ~PEND_UP;
	if (tell) {
		p->pend |= PEND_DOWN;
		p->down_reason = reason;
	}
	/* Its frames are gone: the engine may go on with the others. */
	if (tp->want_writable)
		notify_soon(tp);
	scan_update(tp);
}

/* A connection failed: log why, tear it down, tell the host. */
static void
peer_lost(struct ble_peer *p, int reason, const char *why)
{
	struct tp	*tp = p->tp;
	char		 a[TP_ADDR_TEXT_MAX];

	up_logf(p->st == BP_UP ? UP_LOG_WARN : UP_LOG_INFO, "transport.%s: "
	    "%s: %s%s", tp->name, peer_str(p, a, sizeof(a)),
	    p->st == BP_CONNECTING ? "cannot connect: " :
	    p->st == BP_SETUP ? "set-up failed: " : "", why);
	peer_teardown(p, reason, true);
	notify_flush(tp);
}

static void
conn_ready(void *arg, struct ble_conn *c)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;
	char		 a[TP_ADDR_TEXT_MAX];

	if (p->st != BP_SETUP)
		return;
	p->st = BP_UP;
	p->up_mtu = (uint32_t)ble_conn_mtu(c) - 3;
	p->pend |= PEND_UP;
	up_logf(UP_LOG_INFO, "transport.%s: %s connected: ATT MTU %u, frames "
	    "up to %u bytes, credit %u", tp->name, peer_str(p, a, sizeof(a)),
	    ble_conn_mtu(c), p->up_mtu, ble_conn_credit(c));
	notify_flush(tp);
}

static void
conn_frame(void *arg, struct ble_conn *c, const uint8_t *frame, size_t len)
{
	struct ble_peer		*p = arg;
	struct tp		*tp = p->tp;
	struct tp_rxinfo	 ri;

	if (tp->dead || p->st == BP_CLOSING)
		return;
	/* A PEER_UP still owed goes first. */
	if (p->pend != 0)
		notify_flush(tp);
	tp->st.rx_frames++;
	tp->st.rx_bytes += len;
	if (tp->host->rx == NULL || tp->dead)
		return;
	ri.rssi_dbm = INT16_MAX;
	ri.snr_db = INT8_MAX;
	ri.rx_ms = ble__now_ms(tp);
	tp->host->rx(tp->host->arg, tp, &p->addr, frame, len, &ri);
}

static void
conn_sent(void *arg, struct ble_conn *c, uint64_t cookie)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;

	tp->st.tx_frames++;
	if (tp->host->tx_done != NULL && !tp->dead)
		tp->host->tx_done(tp->host->arg, tp, cookie, TP_OK, 0);
}

static void
conn_room(void *arg, struct ble_conn *c)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;

	if (tp->want_writable && !tp->dead) {
		tp->want_writable = false;
		if (tp->host->writable != NULL)
			tp->host->writable(tp->host->arg, tp);
	}
}

static int
conn_security(void *arg, struct ble_conn *c, int level)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;

	if (tp->rops->security == NULL)
		return (-1);
	return (tp->rops->security(tp->radio, ble_conn_fd(c), level));
}

static const struct ble_conn_cb conn_cb = {
	.ready = conn_ready,
	.frame = conn_frame,
	.sent = conn_sent,
	.room = conn_room,
	.security = conn_security
};

/* Writes what may go; asks for writability when the socket is full. */
static void
peer_tx(struct ble_peer *p)
{
	int	 rc;

	if (p->conn == NULL)
		return;
	rc = ble_conn_tx(p->conn, ble__now_ms(p->tp));
	if (rc == -1) {
		peer_lost(p, TP_EIO, ble_conn_why(p->conn));
		return;
	}
	if (rc == 1 && p->ev_wr != NULL && !event_pending(p->ev_wr, EV_WRITE,
	    NULL))
		event_add(p->ev_wr, NULL);
}

static void
peer_rd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;

	tp->in_cb++;
	if (p->conn != NULL && ble_conn_rx(p->conn, ble__now_ms(tp)) == -1)
		peer_lost(p, TP_EIO, ble_conn_why(p->conn));
	else if (!tp->dead)
		peer_tx(p);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_ble_free(tp);
}

/* The connection is made (or failed): start the ATT set-up. */
static void
peer_connected(struct ble_peer *p)
{
	struct tp		*tp = p->tp;
	struct ble_conn_params	 par;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		peer_lost(p, TP_ENOPEER, strerror(err));
		return;
	}
	memset(&par, 0, sizeof(par));
	par.mtu = (uint16_t)tp->mtu;
	par.queue = tp->peer_queue;
	par.att_timeout_ms = tp->att_ms;
	par.security = tp->security;
	if ((p->conn = ble_conn_new(p->fd, &par, &conn_cb, p)) == NULL) {
		peer_lost(p, TP_EIO, "out of memory");
		return;
	}
	p->ev_rd = event_new(tp->host->base, p->fd, EV_READ | EV_PERSIST,
	    peer_rd_cb, p);
	if (p->ev_rd == NULL || event_add(p->ev_rd, NULL) == -1) {
		peer_lost(p, TP_EIO, "cannot add an event");
		return;
	}
	p->fd = -1;	/* the connection owns it now */
	p->st = BP_SETUP;
	if (tp->nconnecting > 0)
		tp->nconnecting--;
	scan_update(tp);
	if (tp->rops->tune != NULL)
		tp->rops->tune(tp->radio, ble_conn_fd(p->conn));
	ble_conn_start(p->conn, ble__now_ms(tp));
	peer_tx(p);
}

static void
peer_wr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ble_peer	*p = arg;
	struct tp	*tp = p->tp;

	tp->in_cb++;
	if (p->st == BP_CONNECTING)
		peer_connected(p);
	else if (p->st == BP_SETUP || p->st == BP_UP)
		peer_tx(p);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_ble_free(tp);
}

/* ------------------------------------------------------------------ */
/* Scanning and the tick                                                */

static void
radio_seen(struct tp *tp, const struct ble_adv *adv)
{
	struct ble_peer	*p;
	uint64_t	 now = ble__now_ms(tp);

	if ((p = peer_get(tp, &adv->addr)) == NULL)
		return;		/* every slot busy: seen again later */
	p->seen_ms = now;
	p->rssi = adv->rssi;
	if (p->st == BP_IDLE && !p->found_told) {
		p->found_told = true;
		p->pend |= PEND_FOUND;
		notify_soon(tp);
	}
}

static const struct ble_radio_cb radio_cb = {
	.seen = radio_seen
};

static void
scan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	tp->in_cb++;
	tp->rops->scan_read(tp->radio, ble__now_ms(tp));
	notify_flush(tp);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_ble_free(tp);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	struct ble_peer	*p;
	uint64_t	 now = ble__now_ms(tp);
	size_t		 i;
	char		 why[64];

	tp->in_cb++;
	tp->rops->scan_read(tp->radio, now);
	for (i = 0; i < tp->npeers && !tp->dead; i++) {
		p = &tp->peers[i];
		if (p->st == BP_CONNECTING &&
		    now - p->t_start >= tp->connect_ms) {
			snprintf(why, sizeof(why), "no connection in %u ms",
			    tp->connect_ms);
			peer_lost(p, TP_ENOPEER, why);
		} else if ((p->st == BP_SETUP || p->st == BP_UP) &&
		    ble_conn_check(p->conn, now) == -1)
			peer_lost(p, TP_EIO, ble_conn_why(p->conn));
	}
	notify_flush(tp);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_ble_free(tp);
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

static int
tp_ble_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **tpp, char **cause)
{
	struct tp	*tp;
	const char	*dir, *v;

	*tpp = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (host == NULL || host->base == NULL)
		return (tp__cause(cause, "transport.%s: no event base",
		    conf->name != NULL ? conf->name : "?"));
	if ((tp = calloc(1, sizeof(*tp))) == NULL)
		return (tp__cause(cause, "transport: out of memory"));
	tp->host = host;
	if ((tp->name = strdup(conf->name != NULL ? conf->name : "ble")) ==
	    NULL) {
		free(tp);
		return (tp__cause(cause, "transport: out of memory"));
	}
	/* Checked by tp_conf_check(); re-checked where it matters. */
	tp->mtu = (uint32_t)tp_conf_int(conf, "mtu");
	tp->max_peers = (uint32_t)tp_conf_int(conf, "max_peers");
	tp->peer_queue = (uint32_t)tp_conf_int(conf, "peer_queue");
	tp->bitrate_bps = (uint64_t)tp_conf_int(conf, "bitrate_kbit") * 1000;
	tp->connect_ms = (uint32_t)tp_conf_int(conf, "connect_timeout_ms");
	tp->att_ms = (uint32_t)tp_conf_int(conf, "att_timeout_ms");
	tp->npeers = (size_t)tp_conf_int(conf, "max_nodes");
	v = tp_conf_str(conf, "security");
	tp->security = security_level(v);
	if (tp->mtu < BLE_ATT_MTU_MIN || tp->mtu > BLE_ATT_MTU_MAX ||
	    tp->max_peers == 0 || tp->peer_queue == 0 ||
	    tp->bitrate_bps == 0 || tp->npeers == 0 || tp->security == -1 ||
	    tp->connect_ms == 0 || tp->att_ms == 0) {
		tp__cause(cause, "transport.%s: options out of range (was "
		    "the section checked?)", tp->name);
		goto fail;
	}
	if ((tp->peers = calloc(tp->npeers, sizeof(*tp->peers))) == NULL) {
		tp__cause(cause, "transport.%s: out of memory", tp->name);
		goto fail;
	}
	dir = tp_conf_str(conf, "sim_dir");
	tp->rops = dir != NULL && *dir != '\0' ? &ble_radio_sim :
	    &ble_radio_hci;
	if ((tp->radio = tp->rops->open(tp, conf, &radio_cb, cause)) ==
	    NULL)
		goto fail;
	tp->ev_tick = event_new(host->base, -1, EV_PERSIST, tick_cb, tp);
	tp->ev_notify = event_new(host->base, -1, 0, notify_cb, tp);
	tp->ev_drain = evtimer_new(host->base, notify_cb, tp);
	if (tp->rops->scan_fd(tp->radio) != -1)
		tp->ev_scan = event_new(host->base,
		    tp->rops->scan_fd(tp->radio), EV_READ | EV_PERSIST,
		    scan_cb, tp);
	if (tp->ev_tick == NULL || tp->ev_notify == NULL ||
	    tp->ev_drain == NULL ||
	    (tp->rops->scan_fd(tp->radio) != -1 && tp->ev_scan == NULL)) {
		tp__cause(cause, "transport.%s: cannot create events",
		    tp->name);
		goto fail;
	}
	up_logf(UP_LOG_INFO, "transport.%s: ble (%s), ATT MTU %u, %u "
	    "connections, %u frames each, security %s", tp->name,
	    tp->rops->name, tp->mtu, tp->max_peers, tp->peer_queue,
	    v != NULL ? v : "low");
	*tpp = tp;
	return (0);
fail:
	tp_ble_free(tp);
	return (-1);
}

static int
tp_ble_start(struct tp *tp, char **cause)
{
	struct timeval	 tv = { 0, TICK_MS * 1000 };

	if (cause != NULL)
		*cause = NULL;
	if (tp->started)
		return (0);
	if (event_add(tp->ev_tick, &tv) == -1 ||
	    (tp->ev_scan != NULL && event_add(tp->ev_scan, NULL) == -1))
		return (tp__cause(cause, "transport.%s: cannot add events",
		    tp->name));
	tp->started = true;
	scan_update(tp);
	notify_soon(tp);	/* TP_LINK_UP */
	return (0);
}

static void
tp_ble_free(struct tp *tp)
{
	size_t		 i;

	if (tp == NULL)
		return;
	for (i = 0; tp->peers != NULL && i < tp->npeers; i++) {
		if (tp->peers[i].ev_rd != NULL)
			event_free(tp->peers[i].ev_rd);
		if (tp->peers[i].ev_wr != NULL)
			event_free(tp->peers[i].ev_wr);
		ble_conn_free(tp->peers[i].conn);
		if (tp->peers[i].conn == NULL && tp->peers[i].fd != -1 &&
		    tp->peers[i].st != BP_FREE)
			close(tp->peers[i].fd);
	}
	if (tp->ev_tick != NULL)
		event_free(tp->ev_tick);
	if (tp->ev_scan != NULL)
		event_free(tp->ev_scan);
	if (tp->ev_notify != NULL)
		event_free(tp->ev_notify);
	if (tp->ev_drain != NULL)
		event_free(tp->ev_drain);
	if (tp->radio != NULL)
		tp->rops->close(tp->radio);
	free(tp->peers);
	free(tp->name);
	free(tp);
}

static void
tp_ble_close(struct tp *tp)
{
	size_t		 i;

	if (tp == NULL || tp->dead)
		return;
	up_logf(UP_LOG_DEBUG, "transport.%s: close (tx %llu frames, rx %llu)",
	    tp->name, (unsigned long long)tp->st.tx_frames,
	    (unsigned long long)tp->st.rx_frames);
	if (tp->in_cb == 0) {
		tp_ble_free(tp);
		return;
	}
	/*
	 * Closed from inside one of our host callbacks: nothing fires any
	 * more, every fd closes now, and the memory goes when the
	 * callback up the stack returns.
	 */
	tp->dead = true;
	event_del(tp->ev_tick);
	event_del(tp->ev_notify);
	event_del(tp->ev_drain);
	if (tp->ev_scan != NULL)
		event_del(tp->ev_scan);
	for (i = 0; i < tp->npeers; i++) {
		if (tp->peers[i].ev_rd != NULL)
			event_del(tp->peers[i].ev_rd);
		if (tp->peers[i].ev_wr != NULL)
			event_del(tp->peers[i].ev_wr);
	}
}

static void
tp_ble_caps(struct tp *tp, struct tp_caps *c)
{
	memset(c, 0, sizeof(*c));
	/* The largest frame a write carries at the MTU we offer. */
	c->mtu = tp->mtu - 3;
	c->uplink_mtu = tp->mtu - 3;
	c->flags = TP_CAP_UNICAST | TP_CAP_CONNECT | TP_CAP_DISCOVERY |
	    TP_CAP_RELIABLE;
	/*
	 * docs/transports/ble.md, "What UP sees": compact by default, one
	 * connection per node (its address names it), the link layer's
	 * CRC-24 (no CRC-16 needed).
	 */
	c->flags |= TP_CAP_COMPACT | TP_CAP_ADDRESSED | TP_CAP_FCS;
	/*
	 * ATT value bytes per second of the controller (research §2.4):
	 * the frame is the ATT value, so no per-frame overhead on top.
	 */
	c->bitrate_bps = tp->bitrate_bps;
	c->frame_overhead = 0;
	c->max_peers = tp->max_peers;
	c->tx_queue = tp->max_peers * tp->peer_queue;
}

static void
tp_ble_stats(struct tp *tp, struct tp_stats *s)
{
	struct ble_conn_stats	 cs;
	size_t			 i;

	*s = tp->st;
	s->queued = 0;
	for (i = 0; i < tp->npeers; i++) {
		if (tp->peers[i].conn == NULL)
			continue;
		ble_conn_stats(tp->peers[i].conn, &cs);
		s->rx_errors += cs.rx_bad + cs.rx_unknown;
		s->queued += ble_conn_queued(tp->peers[i].conn);
	}
}

static int
tp_ble_send(struct tp *tp, const struct tp_addr *dst,
    const struct iovec *iov, int iovcnt, uint64_t cookie)
{
	struct ble_peer	*p;
	size_t		 len = 0;
	int		 i, rc;

	if (tp->dead)
		return (TP_EIO);
	if (dst->flags & TP_ADDR_F_BROADCAST)
		return (TP_ENOPEER);	/* BLE connections are one to one */
	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == NULL))
		return (TP_EMSGSIZE);
	if ((p = peer_find(tp, dst)) == NULL || p->st != BP_UP)
		return (TP_ENOPEER);
	tp->last = p;
	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	rc = ble_conn_queue(p->conn, iov, iovcnt, cookie);
	switch (rc) {
	case TP_OK:
		tp->st.tx_bytes += len;
		/* Written from the loop: tx_done never fires in here. */
		if (!event_pending(p->ev_wr, EV_WRITE, NULL))
			event_add(p->ev_wr, NULL);
		break;
	case TP_EAGAIN:
		tp->st.eagain++;
		tp->want_writable = true;
		break;
	default:
		tp->st.tx_errors++;
		break;
	}
	return (rc);
}

static int
tp_ble_connect(struct tp *tp, const struct tp_addr *dst)
{
	struct ble_peer	*p;
	char		*cause = NULL, a[TP_ADDR_TEXT_MAX];
	int		 fd;

	if (tp->dead || dst->len != BLE_ADDR_LEN ||
	    (dst->b[0] != BLE_ADDR_PUBLIC && dst->b[0] != BLE_ADDR_RANDOM))
		return (TP_ENOPEER);
	if ((p = peer_find(tp, dst)) != NULL && p->st != BP_IDLE) {
		if (p->st == BP_UP) {
			p->pend |= PEND_UP;	/* asked again: say it again */
			notify_soon(tp);
		}
		return (p->st == BP_CLOSING ? TP_EAGAIN : TP_OK);
	}
	if (tp->nconn >= tp->max_peers)
		return (TP_EAGAIN);
	if (p == NULL && (p = peer_get(tp, dst)) == NULL)
		return (TP_EAGAIN);	/* the table is all connections */
	p->t_start = ble__now_ms(tp);
	p->pend &= ~PEND_FOUND;
	tp->nconn++;
	tp->nconnecting++;
	p->st = BP_CONNECTING;
	scan_update(tp);
	fd = tp->rops->connect(tp->radio, &p->addr, tp->security, &cause);
	if (fd == -1) {
		up_logf(UP_LOG_INFO, "transport.%s: %s: cannot connect: %s",
		    tp->name, peer_str(p, a, sizeof(a)), cause != NULL ?
		    cause : "failed");
		free(cause);
		peer_teardown(p, TP_ENOPEER, true);
		notify_soon(tp);
		return (TP_OK);		/* TP_PEER_DOWN follows */
	}
	p->fd = fd;
	p->ev_wr = event_new(tp->host->base, fd, EV_WRITE, peer_wr_cb, p);
	if (p->ev_wr == NULL || event_add(p->ev_wr, NULL) == -1) {
		peer_teardown(p, TP_EIO, true);
		notify_soon(tp);
		return (TP_OK);
	}
	up_logf(UP_LOG_DEBUG, "transport.%s: %s: connecting", tp->name,
	    peer_str(p, a, sizeof(a)));
	return (TP_OK);
}

static void
tp_ble_disconnect(struct tp *tp, const struct tp_addr *dst)
{
	struct ble_peer	*p;

	if (tp->dead || (p = peer_find(tp, dst)) == NULL ||
	    p->st == BP_IDLE || p->st == BP_CLOSING)
		return;
	/* Torn down from the loop; a DOWN with reason 0 follows. */
	if (p->st == BP_CONNECTING && tp->nconnecting > 0) {
		tp->nconnecting--;
		scan_update(tp);
	}
	p->close_at = ble__now_ms(tp) + LINGER_MS;
	p->st = BP_CLOSING;
	p->pend &= ~PEND_UP;
	notify_soon(tp);
}

static int
tp_ble_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	return (ble_addr_fmt(a, buf, len));
}

static int
tp_ble_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	return (ble_addr_parse(s, a, cause));
}
