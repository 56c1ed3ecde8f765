/*
 * tp_modbus.c: the modbus-rtu and modbus-tcp transport plugins
 * (docs/transports/modbus.md).
 *
 * The gateway is the Modbus client (master); every node is a server
 * (slave) holding the UP register map of up/up_modbus.c.  A UP frame the
 * engine sends is one FC 0x10 write into the node's FRAME window, to
 * unit 0 (every node on the bus at once, no reply) when the engine
 * broadcasts; a poll is one FC 0x17 that acknowledges the last outbox
 * frame read and reads the next one.  Nodes never speak first, so both
 * plugins are TP_CAP_POLLED: the engine decides when each node is asked.
 *
 *  - modbus-rtu: one serial bus, one worker (mb_chan.c); broadcast,
 *    unicast and polls share the half-duplex line in the order the engine
 *    hands them over.  Nodes are found by probing the configured unit
 *    ids' identity registers (TP_PEER_FOUND), twice or three times
 *    when a probe fails (MB_PROBE_TRIES), again every probe_s for those
 *    that did not answer.
 *  - modbus-tcp: one worker per server, so up to max_peers nodes are
 *    served at once (TP_CAP_CONNECT); no broadcast.
 *
 * Every libmodbus call runs on a worker; this file runs on the event
 * loop and is the only one that calls the host back, from the event the
 * workers wake (ev_done), never from inside an op.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "mb_internal.h"
#include "transports_internal.h"

#define RTU_ADDR_LEN	1
#define TCP_ADDR_LEN	7	/* IPv4, port (big-endian), unit */

/* ------------------------------------------------------------------ */
/* Options                                                              */

/* "1-16,20": unit ids 1..247 into set[]; returns how many, -1 if bad. */
static int
parse_units(const char *v, bool set[MB_UNITS_MAX + 1])
{
	const char	*p = v;
	char		*end;
	unsigned long	 a, b, u;
	int		 n = 0;

	memset(set, 0, sizeof(bool) * (MB_UNITS_MAX + 1));
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return (-1);
		a = strtoul(p, &end, 10);
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				return (-1);
			b = strtoul(p, &end, 10);
			p = end;
		}
		if (a < 1 || b > MB_UNITS_MAX || a > b)
			return (-1);
		for (u = a; u <= b; u++)
			if (!set[u]) {
				set[u] = true;
				n++;
			}
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return (n);
		if (*p++ != ',')
			return (-1);
	}
}

static const char *
check_units(const char *v)
{
	bool	 set[MB_UNITS_MAX + 1];

	if (parse_units(v, set) <= 0)
		return ("a list of unit ids 1-247, e.g. \"1-16,20\"");
	return (NULL);
}

static const char *
check_format(const char *v)
{
	if (strlen(v) != 3 || (v[0] != '7' && v[0] != '8') ||
	    strchr("NEO", v[1]) == NULL || (v[2] != '1' && v[2] != '2'))
		return ("data bits 7-8, parity N/E/O, stop bits 1-2, "
		    "e.g. \"8E1\"");
	return (NULL);
}

static const char *
check_rs485(const char *v)
{
	if (strcmp(v, "auto") != 0 && strcmp(v, "yes") != 0 &&
	    strcmp(v, "no") != 0)
		return ("auto, yes or no");
	return (NULL);
}

/* One "host:port[/unit]" of a peers list; host is an IPv4 address. */
static int
parse_peer(const char *s, size_t len, struct mb_peer *p)
{
	char		 buf[64], *colon, *slash, *end;
	struct in_addr	 a;
	unsigned long	 port, unit = 1;

	if (len == 0 || len >= sizeof(buf) - 8)
		return (-1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash < '0' || *slash > '9')
			return (-1);
		unit = strtoul(slash, &end, 10);
		if (*end != '\0' || unit > 255)
			return (-1);
	}
	if ((colon = strrchr(buf, ':')) == NULL)
		return (-1);
	*colon++ = '\0';
	if (*colon < '0' || *colon > '9')
		return (-1);
	port = strtoul(colon, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return (-1);
	if (inet_pton(AF_INET, buf, &a) != 1)
		return (-1);
	if (p != NULL) {
		memset(p, 0, sizeof(*p));
		snprintf(p->host, sizeof(p->host), "%s", buf);
		p->port = (uint16_t)port;
		p->unit = (uint8_t)unit;
		p->addr.len = TCP_ADDR_LEN;
		memcpy(p->addr.b, &a, 4);
		p->addr.b[4] = (uint8_t)(port >> 8);
		p->addr.b[5] = (uint8_t)port;
		p->addr.b[6] = (uint8_t)unit;
	}
	return (0);
}

/* Walks a comma-separated peers list; returns the count, -1 if bad. */
static int
parse_peers(const char *v, struct mb_peer *out, size_t max)
{
	const char	*p = v, *e;
	size_t		 n = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ',' && *e != ' '; e++)
			;
		if (n >= max || parse_peer(p, (size_t)(e - p),
		    out != NULL ? &out[n] : NULL) == -1)
			return (-1);
		n++;
		while (*e == ' ')
			e++;
		if (*e == '\0')
			return ((int)n);
		if (*e != ',')
			return (-1);
		p = e + 1;
	}
}

static const char *
check_peers(const char *v)
{
	if (parse_peers(v, NULL, MB_TCP_PEERS_MAX) <= 0)
		return ("a list of IPv4 host:port[/unit], at most 64");
	return (NULL);
}

static const struct tp_option rtu_options[] = {
	{ "device", TP_OPT_STRING, NULL, 0, 0, NULL,
	    "the serial port of the RS-485 bus", NULL },
	{ "baud", TP_OPT_INT, "19200", 1200, 4000000, "bit/s",
	    "the bus's bit rate", NULL },
	{ "format", TP_OPT_STRING, "8E1", 0, 0, NULL,
	    "data bits, parity, stop bits (Modbus RTU: 8E1, or 8N2)",
	    check_format },
	{ "rs485", TP_OPT_STRING, "auto", 0, 0, NULL,
	    "the kernel's RS-485 mode (TIOCSRS485): auto uses it where the "
	    "port has it", check_rs485 },
	{ "units", TP_OPT_STRING, "1-16", 0, 0, NULL,
	    "the unit ids whose identity registers are probed", check_units },
	{ "response_ms", TP_OPT_INT, "200", 5, 10000, "ms",
	    "how long a node may take to answer, after the request's "
	    "last character", NULL },
	{ "broadcast_gap_us", TP_OPT_INT, "0", 0, 10000000, "us",
	    "silence after a broadcast besides the 3.5 characters, for "
	    "nodes that write flash before they listen again", NULL },
	{ "probe_s", TP_OPT_INT, "60", 0, 86400, "s",
	    "probe the units that did not answer again after this long, "
	    "0 = only at start", NULL },
	{ "queue", TP_OPT_INT, "4", 1, 64, "frames",
	    "requests handed to the bus's worker before TP_EAGAIN", NULL },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, NULL }
};

static const struct tp_option tcp_options[] = {
	{ "peers", TP_OPT_STRING, NULL, 0, 0, NULL,
	    "the nodes' Modbus TCP servers, host:port[/unit], comma "
	    "separated", check_peers },
	{ "max_peers", TP_OPT_INT, "4", 1, MB_TCP_PEERS_MAX, "connections",
	    "nodes served at once", NULL },
	{ "response_ms", TP_OPT_INT, "1000", 5, 60000, "ms",
	    "how long a server may take to answer", NULL },
	{ "bitrate_kbps", TP_OPT_INT, "10000", 8, 10000000, "kbit/s",
	    "the network's rate the gateway may use for UP frames", NULL },
	{ "queue", TP_OPT_INT, "2", 1, 64, "frames",
	    "requests handed to one connection's worker before TP_EAGAIN",
	    NULL },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, NULL }
};

/* ------------------------------------------------------------------ */
/* Jobs and the loop side                                               */

static struct mb_job *
job_get(struct tp *t)
{
	struct mb_job	*j;

	pthread_mutex_lock(&t->lock);
	if ((j = TAILQ_FIRST(&t->free)) != NULL)
		TAILQ_REMOVE(&t->free, j, entry);
	pthread_mutex_unlock(&t->lock);
	return (j);
}

static void
job_queue(struct tp *t, struct mb_chan *c, struct mb_job *j)
{
	pthread_mutex_lock(&t->lock);
	mb__chan_push(c, j);
	pthread_mutex_unlock(&t->lock);
}

static struct mb_chan *
peer_chan(struct tp *t, int peer)
{
	return (t->kind == MB_RTU || peer < 0 ? &t->bus :
	    &t->peers[peer].chan);
}

static int
peer_find(const struct tp *t, const struct tp_addr *a)
{
	size_t		 i;

	for (i = 0; i < t->npeers; i++)
		if (tp_addr_eq(&t->peers[i].addr, a))
			return ((int)i);
	return (-1);
}

static void
peer_tell(struct tp *t, struct mb_peer *p, enum tp_peer_event ev,
    int reason)
{
	struct tp_peer_info info;

	if (t->host->peer == NULL)
		return;
	memset(&info, 0, sizeof(info));
	info.mtu = p->rx_max != 0 ? p->rx_max : UP_MB_FRAME_MAX;
	info.rssi_dbm = INT16_MAX;
	info.reason = reason;
	t->in_cb++;
	t->host->peer(t->host->arg, t, &p->addr, ev, &info);
	t->in_cb--;
}

static void
set_link(struct tp *t, bool up)
{
	struct timeval	 tv = { 1, 0 };

	if (t->link_up == up)
		return;
	t->link_up = up;
	/* A lost port is opened again every second (reopen_cb). */
	if (!up)
		evtimer_add(t->ev_reopen, &tv);
	up_logf(up ? UP_LOG_INFO : UP_LOG_WARN, "transport.%s: %s %s",
	    t->name, t->device, up ? "open again" : "lost");
	if (t->host->link != NULL) {
		t->in_cb++;
		t->host->link(t->host->arg, t, up ? TP_LINK_UP :
		    TP_LINK_DOWN);
		t->in_cb--;
	}
}

/* A failure, logged once at warn, then at debug until a success. */
static void
job_log(struct tp *t, struct mb_job *j, struct mb_peer *p)
{
	char		 who[TP_ADDR_TEXT_MAX + 16];
	int		 level = UP_LOG_WARN;

	if (p != NULL) {
		if (p->errors++ > 0)
			level = UP_LOG_DEBUG;
		if (t->kind == MB_RTU)
			snprintf(who, sizeof(who), "unit %u", p->unit);
		else
			snprintf(who, sizeof(who), "%s:%u", p->host, p->port);
	} else
		snprintf(who, sizeof(who), "broadcast");
	up_logf(level, "transport.%s: %s: %s: %s", t->name, who,
	    j->what != NULL ? j->what : "request", modbus_strerror(j->err));
}

static void probe_pump(struct tp *);

/* One finished job, on the loop. */
static void
job_done(struct tp *t, struct mb_job *j)
{
	struct mb_peer	*p = j->peer >= 0 ? &t->peers[j->peer] : NULL;
	struct tp_rxinfo ri;

	if (j->status != TP_OK && j->op != MB_OP_PROBE)
		job_log(t, j, p);
	else if (j->status == TP_OK && p != NULL)
		p->errors = 0;

	switch (j->op) {
	case MB_OP_SEND:
		if (j->status == TP_OK) {
			t->stats.tx_frames++;
			t->stats.tx_bytes += j->len;
		} else
			t->stats.tx_errors++;
		break;
	case MB_OP_POLL:
		if (j->status != TP_OK) {
			t->stats.rx_errors++;
			break;
		}
		if (j->rxlen == 0 || j->seq == p->ack)
			break;	/* empty, or read before (our ack was lost) */
		p->ack = j->seq;
		t->stats.rx_frames++;
		t->stats.rx_bytes += j->rxlen;
		memset(&ri, 0, sizeof(ri));
		ri.rssi_dbm = INT16_MAX;
		ri.snr_db = INT8_MAX;
		ri.rx_ms = t->host->now_ms(t->host->arg);
		t->in_cb++;
		t->host->rx(t->host->arg, t, &p->addr, j->rx, j->rxlen, &ri);
		t->in_cb--;
		break;
	case MB_OP_PROBE:
		p->probing = false;
		if (j->status != TP_OK) {
			up_logf(UP_LOG_DEBUG, "transport.%s: unit %u: %s: %s",
			    t->name, p->unit, j->what,
			    modbus_strerror(j->err));
			p->probe_tries++;
			if (p->probe_tries < (j->err == ETIMEDOUT ?
			    MB_PROBE_TRIES_SILENT : MB_PROBE_TRIES))
				p->probe_due = true;	/* probe_pump() */
			break;
		}
		p->rx_max = j->ident.rx_max < UP_MB_FRAME_MAX ?
		    j->ident.rx_max : UP_MB_FRAME_MAX;
		if (!p->found) {
			p->found = true;
			up_logf(UP_LOG_INFO, "transport.%s: unit %u: node "
			    "%016llx", t->name, p->unit,
			    (unsigned long long)j->ident.node_id);
			peer_tell(t, p, TP_PEER_FOUND, 0);
		}
		break;
	case MB_OP_CONNECT:
		if (t->kind == MB_RTU) {
			if (j->status == TP_OK)
				set_link(t, true);
			break;
		}
		if (p->state != MB_PS_CONNECTING)
			break;	/* disconnect() came first: CLOSE follows */
		if (j->status == TP_OK) {
			p->state = MB_PS_UP;
			p->rx_max = j->ident.rx_max < UP_MB_FRAME_MAX ?
			    j->ident.rx_max : UP_MB_FRAME_MAX;
			p->ack = 0;
			peer_tell(t, p, TP_PEER_UP, 0);
		} else {
			p->state = MB_PS_IDLE;
			peer_tell(t, p, TP_PEER_DOWN, TP_ENOPEER);
		}
		return;
	case MB_OP_CLOSE:
		p->state = MB_PS_IDLE;
		peer_tell(t, p, TP_PEER_DOWN, 0);
		return;
	}
	if (t->dead)
		return;
	if ((j->op == MB_OP_SEND || j->op == MB_OP_POLL) &&
	    t->host->tx_done != NULL) {
		t->in_cb++;
		t->host->tx_done(t->host->arg, t, j->cookie, j->status,
		    j->line_us);
		t->in_cb--;
	}
	if (t->dead || j->status != TP_EIO)
		return;
	/* The port or the connection failed. */
	if (t->kind == MB_RTU)
		set_link(t, false);
	else if (p != NULL && p->state == MB_PS_UP) {
		p->state = MB_PS_IDLE;
		peer_tell(t, p, TP_PEER_DOWN, TP_EIO);
	}
}

static void tp_modbus_free(struct tp *);

static bool
has_room(struct tp *t)
{
	size_t		 i;

	if (TAILQ_EMPTY(&t->free))
		return (false);
	if (t->kind == MB_RTU)
		return (t->bus.depth < t->queue);
	for (i = 0; i < t->npeers; i++)
		if (t->peers[i].state == MB_PS_UP &&
		    t->peers[i].chan.depth < t->queue)
			return (true);
	return (false);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*t = arg;
	struct mb_jobq	 q;
	struct mb_job	*j;
	char		 buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	TAILQ_INIT(&q);
	pthread_mutex_lock(&t->lock);
	TAILQ_CONCAT(&q, &t->done, entry);
	pthread_mutex_unlock(&t->lock);
	while ((j = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, j, entry);
		j->chan->depth--;
		if (!t->dead)
			job_done(t, j);
		pthread_mutex_lock(&t->lock);
		TAILQ_INSERT_TAIL(&t->free, j, entry);
		pthread_mutex_unlock(&t->lock);
	}
	if (t->dead) {
		if (t->in_cb == 0)
			tp_modbus_free(t);
		return;
	}
	probe_pump(t);
	if (t->want_writable && has_room(t)) {
		t->want_writable = false;
		t->in_cb++;
		t->host->writable(t->host->arg, t);
		t->in_cb--;
		if (t->dead && t->in_cb == 0)
			tp_modbus_free(t);
	}
}

/* ------------------------------------------------------------------ */
/* Probing (RTU): the configured units' identity registers              */

static void
probe_pump(struct tp *t)
{
	struct mb_job	*j;
	size_t		 i;

	if (t->kind != MB_RTU || !t->started || !t->link_up)
		return;
	/* One probe at a time, and only in a free slot of the queue. */
	for (i = 0; i < t->npeers; i++)
		if (t->peers[i].probing)
			return;
	for (i = 0; i < t->npeers; i++) {
		struct mb_peer *p = &t->peers[i];

		if (!p->probe_due)
			continue;
		if (t->bus.depth >= t->queue || (j = job_get(t)) == NULL)
			return;
		p->probe_due = false;
		p->probing = true;
		j->op = MB_OP_PROBE;
		j->peer = (int)i;
		j->unit = p->unit;
		job_queue(t, &t->bus, j);
		return;
	}
}

static void
probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*t = arg;
	struct timeval	 tv;
	size_t		 i;
	bool		 any = false;

	for (i = 0; i < t->npeers; i++)
		if (!t->peers[i].found) {
			t->peers[i].probe_due = true;
			t->peers[i].probe_tries = 0;
			any = true;
		}
	if (any)
		probe_pump(t);
	if (t->probe_s > 0) {
		tv.tv_sec = t->probe_s;
		tv.tv_usec = 0;
		evtimer_add(t->ev_probe, &tv);
	}
}

static void
reopen_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*t = arg;
	struct timeval	 tv = { 1, 0 };
	struct mb_job	*j;

	if (t->link_up)
		return;
	if (t->bus.depth == 0 && (j = job_get(t)) != NULL) {
		j->op = MB_OP_CONNECT;
		j->peer = -1;
		j->unit = 0;
		job_queue(t, &t->bus, j);
	}
	evtimer_add(t->ev_reopen, &tv);
}

static void
found_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*t = arg;
	size_t		 i;

	/* A TCP server list is what we were told exists. */
	for (i = 0; i < t->npeers && !t->dead; i++) {
		if (t->peers[i].found)
			continue;
		t->peers[i].found = true;
		peer_tell(t, &t->peers[i], TP_PEER_FOUND, 0);
	}
	if (t->dead && t->in_cb == 0)
		tp_modbus_free(t);
}

/* ------------------------------------------------------------------ */
/* Open, start, close                                                   */

static void
tp_modbus_free(struct tp *t)
{
	if (t == NULL)
		return;
	if (t->ev_done != NULL)
		event_free(t->ev_done);
	if (t->ev_probe != NULL)
		event_free(t->ev_probe);
	if (t->ev_found != NULL)
		event_free(t->ev_found);
	if (t->ev_reopen != NULL)
		event_free(t->ev_reopen);
	if (t->sp[0] != -1)
		close(t->sp[0]);
	if (t->sp[1] != -1)
		close(t->sp[1]);
	if (t->lock_init)
		pthread_mutex_destroy(&t->lock);
	free(t->jobs);
	free(t->peers);
	free(t->device);
	free(t->name);
	free(t);
}

/* Stops the workers and closes the ports: no callback fires after. */
static void
tp_modbus_stop(struct tp *t)
{
	size_t		 i;

	mb__chan_fini(&t->bus);
	for (i = 0; i < t->npeers; i++)
		mb__chan_fini(&t->peers[i].chan);
	if (t->ev_done != NULL)
		event_del(t->ev_done);
	if (t->ev_probe != NULL)
		event_del(t->ev_probe);
	if (t->ev_found != NULL)
		event_del(t->ev_found);
	if (t->ev_reopen != NULL)
		event_del(t->ev_reopen);
}

static void
line_timing(struct tp *t)
{
	unsigned int	 bits;

	bits = 1 + (unsigned int)t->data_bits + (t->parity != 'N') +
	    (unsigned int)t->stop_bits;
	t->char_ns = (uint32_t)((uint64_t)bits * 1000000000ULL / t->baud);
	/* Modbus over Serial Line V1.02 §2.5.1.1: fixed above 19200. */
	t->t35_ns = t->baud > 19200 ? 1750000 : t->char_ns * 7 / 2;
}

static int
open_rtu(struct tp *t, const struct tp_conf *conf, char **cause)
{
	const char	*fmt = tp_conf_str(conf, "format");
	const char	*rs485 = tp_conf_str(conf, "rs485");
	bool		 set[MB_UNITS_MAX + 1];
	size_t		 n = 0;
	int		 u;

	if ((t->device = strdup(tp_conf_str(conf, "device"))) == NULL)
		return (tp__cause(cause, "transport.%s: out of memory",
		    t->name));
	t->baud = (unsigned int)tp_conf_int(conf, "baud");
	t->data_bits = fmt[0] - '0';
	t->parity = fmt[1];
	t->stop_bits = fmt[2] - '0';
	t->rs485 = strcmp(rs485, "auto") == 0 ? -1 :
	    strcmp(rs485, "yes") == 0;
	t->bcast_gap_us = (uint32_t)tp_conf_int(conf, "broadcast_gap_us");
	t->probe_s = (uint32_t)tp_conf_int(conf, "probe_s");
	line_timing(t);

	if (parse_units(tp_conf_str(conf, "units"), set) <= 0)
		return (tp__cause(cause, "transport.%s: units: bad list",
		    t->name));
	if ((t->peers = calloc(MB_UNITS_MAX, sizeof(*t->peers))) == NULL)
		return (tp__cause(cause, "transport.%s: out of memory",
		    t->name));
	for (u = 1; u <= MB_UNITS_MAX; u++) {
		if (!set[u])
			continue;
		t->peers[n].unit = (uint8_t)u;
		t->peers[n].addr.len = RTU_ADDR_LEN;
		t->peers[n].addr.b[0] = (uint8_t)u;
		n++;
	}
	t->npeers = n;

	if (mb__chan_init(t, &t->bus, -1, cause) == -1)
		return (tp__cause(cause, "transport.%s: %s", t->name,
		    *cause != NULL ? *cause : "out of memory"));
	/* Opening a tty does not block (libmodbus opens it O_NDELAY). */
	mb__line_reset(t->device);
	if (modbus_connect(t->bus.ctx) == -1)
		return (tp__cause(cause, "transport.%s: cannot open %s: %s",
		    t->name, t->device, modbus_strerror(errno)));
	t->bus.connected = true;
	if (t->rs485 != 0 && modbus_rtu_set_serial_mode(t->bus.ctx,
	    MODBUS_RTU_RS485) == -1) {
		if (t->rs485 == 1)
			return (tp__cause(cause, "transport.%s: %s has no "
			    "kernel RS-485 mode: %s", t->name, t->device,
			    modbus_strerror(errno)));
		up_logf(UP_LOG_DEBUG, "transport.%s: %s: no kernel RS-485 "
		    "mode (%s): the adapter drives the line direction",
		    t->name, t->device, modbus_strerror(errno));
	}
	t->link_up = true;
	t->link_told = true;
	up_logf(UP_LOG_INFO, "transport.%s: modbus-rtu on %s, %u %d%c%d, "
	    "%zu units, t3.5 %u us", t->name, t->device, t->baud,
	    t->data_bits, t->parity, t->stop_bits, t->npeers,
	    t->t35_ns / 1000);
	return (0);
}

static int
open_tcp(struct tp *t, const struct tp_conf *conf, char **cause)
{
	int		 n;
	size_t		 i;

	if ((t->peers = calloc(MB_TCP_PEERS_MAX, sizeof(*t->peers))) == NULL)
		return (tp__cause(cause, "transport.%s: out of memory",
		    t->name));
	if ((n = parse_peers(tp_conf_str(conf, "peers"), t->peers,
	    MB_TCP_PEERS_MAX)) <= 0)
		return (tp__cause(cause, "transport.%s: peers: bad list",
		    t->name));
	t->npeers = (size_t)n;
	for (i = 0; i < t->npeers; i++) {
		if (mb__chan_init(t, &t->peers[i].chan, (int)i, cause) == -1)
			return (tp__cause(cause, "transport.%s: %s", t->name,
			    *cause != NULL ? *cause : "out of memory"));
	}
	t->link_up = true;
	t->link_told = true;
	up_logf(UP_LOG_INFO, "transport.%s: modbus-tcp, %zu servers, %u at "
	    "once", t->name, t->npeers, t->caps.max_peers);
	return (0);
}

static void
fill_caps(struct tp *t, const struct tp_conf *conf)
{
	struct tp_caps	*c = &t->caps;

	memset(c, 0, sizeof(*c));
	c->mtu = UP_MB_FRAME_MAX;
	c->uplink_mtu = UP_MB_FRAME_MAX;
	c->tx_queue = t->queue;
	c->response_ms = t->response_ms;
	/*
	 * UP's compact form is the link's default; a unit id (or a TCP
	 * server) names the node, and the RTU CRC-16 (TCP's checksum over
	 * Ethernet's CRC-32) checks every frame before UP sees it
	 * (docs/up-protocol.md §11.1, §11.3).
	 */
	c->flags = TP_CAP_UNICAST | TP_CAP_POLLED | TP_CAP_LINK_ACK |
	    TP_CAP_DISCOVERY | TP_CAP_COMPACT | TP_CAP_ADDRESSED |
	    TP_CAP_FCS;
	if (t->kind == MB_RTU) {
		unsigned int bits = 1 + (unsigned int)t->data_bits +
		    (t->parity != 'N') + (unsigned int)t->stop_bits;

		c->flags |= TP_CAP_BROADCAST | TP_CAP_HALF_DUPLEX;
		/* Frame bytes at the line's character rate. */
		c->bitrate_bps = (uint64_t)t->baud * 8 / bits;
		/* unit, FC, address, count, byte count, CRC */
		c->frame_overhead = 9;
		c->min_gap_us = t->t35_ns / 1000 + t->bcast_gap_us;
	} else {
		c->flags |= TP_CAP_CONNECT | TP_CAP_RELIABLE;
		c->bitrate_bps = (uint64_t)tp_conf_int(conf, "bitrate_kbps") *
		    1000;
		/* MBAP header, FC, address, count, byte count; TCP/IP */
		c->frame_overhead = 7 + 6 + 40;
		c->max_peers = (uint32_t)tp_conf_int(conf, "max_peers");
	}
}

static int
tp_modbus_open(enum mb_kind kind, const struct tp_host *host,
    const struct tp_conf *conf, struct tp **tpp, char **cause)
{
	struct tp	*t;
	size_t		 i, nchan;

	if (cause != NULL)
		*cause = NULL;
	*tpp = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return (tp__cause(cause, "transport.%s: out of memory",
		    conf->name));
	t->sp[0] = t->sp[1] = -1;
	t->host = host;
	t->kind = kind;
	TAILQ_INIT(&t->free);
	TAILQ_INIT(&t->done);
	if ((t->name = strdup(conf->name)) == NULL ||
	    pthread_mutex_init(&t->lock, NULL) != 0) {
		tp__cause(cause, "transport.%s: out of memory", conf->name);
		goto fail;
	}
	t->lock_init = true;
	t->queue = (unsigned int)tp_conf_int(conf, "queue");
	t->response_ms = (uint32_t)tp_conf_int(conf, "response_ms");
	if (kind == MB_TCP)
		t->caps.max_peers = (uint32_t)tp_conf_int(conf, "max_peers");
	if ((kind == MB_RTU ? open_rtu(t, conf, cause) :
	    open_tcp(t, conf, cause)) == -1)
		goto fail;
	fill_caps(t, conf);

	/* Every job the instance can ever have out, allocated once. */
	nchan = kind == MB_RTU ? 1 : t->npeers;
	t->njobs = nchan * (t->queue + 2) + 1;
	if ((t->jobs = calloc(t->njobs, sizeof(*t->jobs))) == NULL) {
		tp__cause(cause, "transport.%s: out of memory", t->name);
		goto fail;
	}
	for (i = 0; i < t->njobs; i++)
		TAILQ_INSERT_TAIL(&t->free, &t->jobs[i], entry);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, t->sp) == -1) {
		tp__cause(cause, "transport.%s: socketpair: %s", t->name,
		    strerror(errno));
		goto fail;
	}
	t->ev_done = event_new(host->base, t->sp[0], EV_READ | EV_PERSIST,
	    done_cb, t);
	t->ev_probe = evtimer_new(host->base, probe_cb, t);
	t->ev_found = event_new(host->base, -1, 0, found_cb, t);
	t->ev_reopen = evtimer_new(host->base, reopen_cb, t);
	if (t->ev_done == NULL || t->ev_probe == NULL || t->ev_found == NULL ||
	    t->ev_reopen == NULL ||
	    event_add(t->ev_done, NULL) == -1) {
		tp__cause(cause, "transport.%s: cannot create events",
		    t->name);
		goto fail;
	}
	if (kind == MB_RTU) {
		if (mb__chan_start(&t->bus, cause) == -1)
			goto fail;
	} else {
		for (i = 0; i < t->npeers; i++)
			if (mb__chan_start(&t->peers[i].chan, cause) == -1)
				goto fail;
	}
	*tpp = t;
	return (0);

fail:
	tp_modbus_stop(t);
	tp_modbus_free(t);
	return (-1);
}

static int
tp_rtu_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **tpp, char **cause)
{
	return (tp_modbus_open(MB_RTU, host, conf, tpp, cause));
}

static int
tp_tcp_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **tpp, char **cause)
{
	return (tp_modbus_open(MB_TCP, host, conf, tpp, cause));
}

static int
tp_modbus_start(struct tp *t, char **cause)
{
	struct timeval	 tv = { 0, 0 };

	if (cause != NULL)
		*cause = NULL;
	if (t->started)
		return (0);
	t->started = true;
	/* Both run from the loop: no callback from inside start(). */
	if (t->kind == MB_RTU)
		evtimer_add(t->ev_probe, &tv);
	else
		event_active(t->ev_found, EV_TIMEOUT, 0);
	return (0);
}

static void
tp_modbus_close(struct tp *t)
{
	if (t == NULL)
		return;
	tp_modbus_stop(t);
	if (t->in_cb > 0) {
		/* Called from one of our callbacks: free when it returns. */
		t->dead = true;
		return;
	}
	tp_modbus_free(t);
}

static void
tp_modbus_caps(struct tp *t, struct tp_caps *c)
{
	*c = t->caps;
}

static void
tp_modbus_stats(struct tp *t, struct tp_stats *s)
{
	size_t		 i;

	*s = t->stats;
	s->queued = t->bus.depth;
	for (i = 0; t->kind == MB_TCP && i < t->npeers; i++)
		s->queued += t->peers[i].chan.depth;
}

/* ------------------------------------------------------------------ */
/* Frames and polls                                                     */

/* The channel and peer of dst; TP_OK or a tp_status. */
static int
route(struct tp *t, const struct tp_addr *dst, int *peer,
    struct mb_chan **c)
{
	if (dst->flags & TP_ADDR_F_BROADCAST) {
		if (t->kind != MB_RTU)
			return (TP_ENOPEER);
		*peer = -1;
		*c = &t->bus;
	} else {
		if ((*peer = peer_find(t, dst)) == -1)
			return (TP_ENOPEER);
		if (t->kind == MB_TCP && t->peers[*peer].state != MB_PS_UP)
			return (TP_ENOPEER);
		*c = peer_chan(t, *peer);
	}
	if (!t->link_up)
		return (TP_EIO);
	if ((*c)->depth >= t->queue) {
		t->want_writable = true;
		t->stats.eagain++;
		return (TP_EAGAIN);
	}
	return (TP_OK);
}

static int
tp_modbus_send(struct tp *t, const struct tp_addr *dst,
    const struct iovec *iov, int iovcnt, uint64_t cookie)
{
	struct mb_chan	*c;
	struct mb_job	*j;
	size_t		 len = 0;
	int		 i, peer, st;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len == 0 || len > UP_MB_FRAME_MAX)
		return (TP_EMSGSIZE);
	if ((st = route(t, dst, &peer, &c)) != TP_OK)
		return (st);
	if (peer >= 0 && t->peers[peer].rx_max != 0 &&
	    len > t->peers[peer].rx_max)
		return (TP_EMSGSIZE);
	if ((j = job_get(t)) == NULL) {
		t->want_writable = true;
		t->stats.eagain++;
		return (TP_EAGAIN);
	}
	j->op = MB_OP_SEND;
	j->peer = peer;
	j->unit = peer >= 0 ? t->peers[peer].unit : 0;
	j->cookie = cookie;
	j->len = 0;
	for (i = 0; i < iovcnt; i++) {
		memcpy(j->frame + j->len, iov[i].iov_base, iov[i].iov_len);
		j->len += iov[i].iov_len;
	}
	job_queue(t, c, j);
	return (TP_OK);
}

static int
tp_modbus_poll(struct tp *t, const struct tp_addr *dst, uint64_t cookie)
{
	struct mb_chan	*c;
	struct mb_job	*j;
	int		 peer, st;

	if (dst->flags & TP_ADDR_F_BROADCAST)
		return (TP_ENOPEER);
	if ((st = route(t, dst, &peer, &c)) != TP_OK)
		return (st);
	if ((j = job_get(t)) == NULL) {
		t->want_writable = true;
		t->stats.eagain++;
		return (TP_EAGAIN);
	}
	j->op = MB_OP_POLL;
	j->peer = peer;
	j->unit = t->peers[peer].unit;
	j->cookie = cookie;
	j->ack = t->peers[peer].ack;
	job_queue(t, c, j);
	return (TP_OK);
}

/* FC 0x17 (ack + header and MB_POLL_REGS registers), both silences. */
static uint32_t
tp_modbus_poll_time(struct tp *t, const struct tp_addr *dst)
{
	if (t->kind == MB_TCP)
		return (1000);
	return (mb__chars_us(t, 15 + 5 + 2 * (2 + MB_POLL_REGS)) +
	    2 * (t->t35_ns / 1000));
}

static uint32_t
tp_modbus_airtime(struct tp *t, const struct tp_addr *dst, size_t len)
{
	size_t		 req = 9 + 2 * ((len + 1) / 2);

	if (t->kind == MB_TCP)
		return ((uint32_t)((len + t->caps.frame_overhead) * 8 *
		    1000000ULL / t->caps.bitrate_bps));
	if (dst->flags & TP_ADDR_F_BROADCAST)
		return (mb__chars_us(t, req) + t->t35_ns / 1000 +
		    t->bcast_gap_us);
	/* The request, its 8-byte confirmation, a silence after each. */
	return (mb__chars_us(t, req + 8) + 2 * (t->t35_ns / 1000));
}

static int
tp_modbus_connect(struct tp *t, const struct tp_addr *dst)
{
	struct mb_peer	*p;
	struct mb_job	*j;
	size_t		 i, busy = 0;
	int		 peer;

	if (t->kind != MB_TCP || (peer = peer_find(t, dst)) == -1)
		return (TP_ENOPEER);
	p = &t->peers[peer];
	if (p->state == MB_PS_UP || p->state == MB_PS_CONNECTING)
		return (TP_OK);
	for (i = 0; i < t->npeers; i++)
		if (t->peers[i].state != MB_PS_IDLE)
			busy++;
	if (busy >= t->caps.max_peers || (j = job_get(t)) == NULL)
		return (TP_EAGAIN);
	p->state = MB_PS_CONNECTING;
	j->op = MB_OP_CONNECT;
	j->peer = peer;
	j->unit = p->unit;
	job_queue(t, &p->chan, j);
	modbus_set_slave(p->chan.ctx, p->unit);
	return (TP_OK);
}

static void
tp_modbus_disconnect(struct tp *t, const struct tp_addr *dst)
{
	struct mb_peer	*p;
	struct mb_job	*j;
	int		 peer;

	if (t->kind != MB_TCP || (peer = peer_find(t, dst)) == -1)
		return;
	p = &t->peers[peer];
	if (p->state != MB_PS_UP && p->state != MB_PS_CONNECTING)
		return;
	/* The pool holds a CONNECT and a CLOSE per peer besides its queue. */
	if ((j = job_get(t)) == NULL)
		return;
	p->state = MB_PS_CLOSING;
	j->op = MB_OP_CLOSE;
	j->peer = peer;
	j->unit = p->unit;
	job_queue(t, &p->chan, j);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static int
rtu_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	int		 n;

	if (a->flags & TP_ADDR_F_BROADCAST)
		n = snprintf(buf, len, "broadcast");
	else if (a->len != RTU_ADDR_LEN)
		return (-1);
	else
		n = snprintf(buf, len, "%u", a->b[0]);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

static int
rtu_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	char		*end;
	unsigned long	 u;

	if (cause != NULL)
		*cause = NULL;
	memset(a, 0, sizeof(*a));
	if (strcmp(s, "broadcast") == 0) {
		tp_addr_broadcast(a);
		return (0);
	}
	if (*s < '0' || *s > '9' || (u = strtoul(s, &end, 10)) < 1 ||
	    u > MB_UNITS_MAX || *end != '\0')
		return (tp__cause(cause, "\"%s\": not a unit id 1-247", s));
	a->len = RTU_ADDR_LEN;
	a->b[0] = (uint8_t)u;
	return (0);
}

static int
tcp_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	char		 ip[INET_ADDRSTRLEN];
	int		 n;

	if (a->len != TCP_ADDR_LEN ||
	    inet_ntop(AF_INET, a->b, ip, sizeof(ip)) == NULL)
		return (-1);
	n = snprintf(buf, len, "%s:%u/%u", ip, a->b[4] << 8 | a->b[5],
	    a->b[6]);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

static int
tcp_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	struct mb_peer	 p;

	if (cause != NULL)
		*cause = NULL;
	if (parse_peer(s, strlen(s), &p) == -1)
		return (tp__cause(cause, "\"%s\": not host:port[/unit]", s));
	*a = p.addr;
	return (0);
}

const struct tp_ops tp_modbus_rtu_ops = {
	.name = "modbus-rtu",
	.abi = TP_ABI_VERSION,
	.options = rtu_options,
	.open = tp_rtu_open,
	.start = tp_modbus_start,
	.close = tp_modbus_close,
	.caps = tp_modbus_caps,
	.send = tp_modbus_send,
	.addr_fmt = rtu_addr_fmt,
	.addr_parse = rtu_addr_parse,
	.airtime = tp_modbus_airtime,
	.stats = tp_modbus_stats,
	.poll = tp_modbus_poll,
	.poll_time = tp_modbus_poll_time
};

const struct tp_ops tp_modbus_tcp_ops = {
	.name = "modbus-tcp",
	.abi = TP_ABI_VERSION,
	.options = tcp_options,
	.open = tp_tcp_open,
	.start = tp_modbus_start,
	.close = tp_modbus_close,
	.caps = tp_modbus_caps,
	.send = tp_modbus_send,
	.addr_fmt = tcp_addr_fmt,
	.addr_parse = tcp_addr_parse,
	.airtime = tp_modbus_airtime,
	.stats = tp_modbus_stats,
	.connect = tp_modbus_connect,
	.disconnect = tp_modbus_disconnect,
	.poll = tp_modbus_poll,
	.poll_time = tp_modbus_poll_time
};
