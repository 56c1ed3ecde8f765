/*
 * node_modbus.c: the Modbus links of a simulated node, `upnode
 * --transport modbus-rtu' and `--transport modbus-tcp'
 * (docs/transports/modbus.md, docs/upnode.md "Links").
 *
 * The node is a Modbus server (slave) holding the UP register map of
 * up/up_modbus.c in a libmodbus mapping, and libmodbus answers every
 * request (modbus_reply, modbus_reply_exception).  What a register means
 * is applied here first: a write into FRAME is a UP frame for the engine,
 * an FC 0x17 acknowledges the outbox, reads of the identity, status and
 * bitmap registers are filled from the engine's state just before.
 *
 * Requests are framed here, not by modbus_receive(), for two reasons.
 * It blocks until a whole request has arrived, and a node link must
 * not block.  And on a multi-drop bus a libmodbus RTU server takes the
 * frame after every request for another unit as that unit's reply and
 * drops it (modbus-rtu.c, confirmation_to_ignore): when that unit is
 * silent (switched off, or a test's timeout), the master's next request
 * is thrown away, and it may be for us.  Here a frame is whatever the
 * CRC says it is: at each start the lengths a request and a reply of
 * that function code would have are tried, and a run that matches none
 * is skipped a byte at a time, or dropped after a silence.  A request
 * for this unit is answered after the 3.5-character silence that ends
 * it on a real bus (reply_delay_us), broadcasts (unit 0) are applied
 * and never answered.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <modbus.h>

#include "up.h"
#include "upnode.h"

#define RTU_ADU_MAX	256
#define RX_CAP		1024
#define TCP_CONNS	4
#define TCP_ADU_MAX	260
#define OBQ_MAX		16

enum mb_link_kind {
	MBL_RTU,
	MBL_TCP
};

struct mb_conn {
	int		 fd;		/* -1: free */
	size_t		 len;
	uint8_t		 buf[2 * TCP_ADU_MAX];
};

struct ob_frame {
	uint16_t	 seq;
	uint16_t	 len;
	uint8_t		 b[UP_MB_OB_MAX];
};

struct node_link {
	const struct node_conf	*conf;
	enum mb_link_kind	 kind;
	modbus_t		*ctx;
	modbus_mapping_t	*map;
	const struct up_node	*eng;
	uint8_t			 unit;
	uint8_t			 answer_unit;	/* fault: reply as this unit */
	uint32_t		 answer_unit_pct; /* ... this share of replies */
	uint32_t		 busy_pct;	/* fault: refuse FRAME writes */
	uint32_t		 hangup_after;	/* fault: TCP hang-up, 0 = never */
	uint64_t		 rng;

	/* RTU */
	int			 fd;
	int			 tfd;		/* timerfd: reply, resync */
	uint64_t		 char_ns;
	uint64_t		 t35_ns;
	uint64_t		 reply_ns;	/* delay before a reply */
	uint8_t			 rx[RX_CAP];
	size_t			 rxlen;
	uint64_t		 last_rx_ns;
	uint8_t			 req[RTU_ADU_MAX];	/* waiting for reply */
	size_t			 reqlen;
	uint64_t		 req_at;	/* reply then */
	bool			 again;		/* rx holds unparsed frames */

	/* TCP */
	int			 lfd;
	struct mb_conn		 conns[TCP_CONNS];

	/* The outbox: frames for the gateway, oldest first. */
	struct ob_frame		 ob[OBQ_MAX];
	unsigned int		 ob_head;
	unsigned int		 ob_n;
	unsigned int		 ob_cap;
	uint16_t		 seq;
	size_t			 mtu_up;

	uint32_t		 bmbase;
	uint32_t		 rx_frames;
	uint32_t		 rx_errors;
	uint32_t		 frame_errors;	/* bytes skipped, CRC */
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const char *
check_uint(const char *v, unsigned long lo, unsigned long hi)
{
	char		*end;
	unsigned long	 n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
	    n < lo || n > hi)
		return ("out of range");
	return (NULL);
}

static const char *
check_unit(const char *v)
{
	return (check_uint(v, 1, 247) == NULL ? NULL : "a unit id 1-247");
}

static const char *
check_answer_unit(const char *v)
{
	return (check_uint(v, 0, 247) == NULL ? NULL : "0 or a unit id");
}

static const char *
check_baud(const char *v)
{
	if (check_uint(v, 50, 4000000) != NULL ||
	    node_serial_speed((unsigned int)strtoul(v, NULL, 10)) == B0)
		return ("a bit rate termios knows");
	return (NULL);
}

static const char *
check_format(const char *v)
{
	if (strlen(v) != 3 || (v[0] != '7' && v[0] != '8') ||
	    strchr("NEO", v[1]) == NULL || (v[2] != '1' && v[2] != '2'))
		return ("e.g. 8E1, 8N2");
	return (NULL);
}

static const char *
check_delay(const char *v)
{
	if (strcmp(v, "auto") == 0)
		return (NULL);
	return (check_uint(v, 0, 10000000) == NULL ? NULL :
	    "auto or 0-10000000 us");
}

static const char *
check_pct(const char *v)
{
	return (check_uint(v, 0, 100) == NULL ? NULL : "0-100");
}

static const char *
check_count(const char *v)
{
	return (check_uint(v, 0, 1000000000) == NULL ? NULL :
	    "0-1000000000");
}

static const char *
check_obq(const char *v)
{
	return (check_uint(v, 1, OBQ_MAX) == NULL ? NULL : "1-16");
}

static const char *
check_mtu(const char *v)
{
	return (check_uint(v, 20, UP_MB_OB_MAX) == NULL ? NULL : "20-1472");
}

static const char *
check_listen(const char *v)
{
	char		 host[64];
	const char	*colon = strrchr(v, ':');
	struct in_addr	 a;

	if (colon == NULL || (size_t)(colon - v) >= sizeof(host))
		return ("IPv4:port");
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1 ||
	    check_uint(colon + 1, 1, 65535) != NULL)
		return ("IPv4:port");
	return (NULL);
}

static const struct node_link_opt rtu_options[] = {
	{ "device", NULL, "the serial port (a pty of upsim's rs485 bus)",
	    NULL },
	{ "unit", NULL, "the node's unit id, 1-247", check_unit },
	{ "baud", "19200", "bit rate", check_baud },
	{ "format", "8E1", "data bits, parity, stop bits", check_format },
	{ "reply-delay-us", "auto", "silence before a reply (auto: t3.5)",
	    check_delay },
	{ "outbox", "8", "frames the outbox holds", check_obq },
	{ "uplink-mtu", "246", "largest frame the engine should send",
	    check_mtu },
	{ "answer-unit", "0", "fault: answer as this unit id (0: own)",
	    check_answer_unit },
	{ "answer-unit-pct", "100", "fault: the share of replies answer-unit "
	    "takes (the rest go out as the node's own)", check_pct },
	{ "busy-pct", "0", "fault: refuse this share of FRAME writes with "
	    "exception 6 (busy)", check_pct },
	{ NULL, NULL, NULL, NULL }
};

static const struct node_link_opt tcp_options[] = {
	{ "listen", "127.0.0.1:1502", "the Modbus TCP server's address",
	    check_listen },
	{ "unit", "1", "the unit id (any is answered)", check_unit },
	{ "outbox", "8", "frames the outbox holds", check_obq },
	{ "uplink-mtu", "246", "largest frame the engine should send",
	    check_mtu },
	{ "busy-pct", "0", "fault: refuse this share of FRAME writes with "
	    "exception 6 (busy)", check_pct },
	{ "hangup-after", "0", "fault: close the gateway's connection once, "
	    "after this many frames written (0: never)", check_count },
	{ NULL, NULL, NULL, NULL }
};

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

/* ------------------------------------------------------------------ */
/* The register map: filled from the engine before a read               */

static void
fill_ident(struct node_link *l)
{
	struct up_mb_ident id;
	const struct up_node_info *info = l->eng != NULL ? &l->eng->info :
	    NULL;
	unsigned int	 i;

	memset(&id, 0, sizeof(id));
	id.node_id = l->conf->id;
	id.rx_max = UP_MB_FRAME_MAX;
	id.tx_max = (uint16_t)l->mtu_up;
	/* The node engine decodes both forms (spec §11.1). */
	id.flags = UP_MB_IDF_COMPACT;
	if (info != NULL) {
		snprintf(id.hw, sizeof(id.hw), "%s", info->hw);
		id.ncomp = info->ncomp;
		for (i = 0; i < info->ncomp && i < UP_MAX_COMPONENTS; i++)
			id.comp[i] = info->comp[i];
	} else {
		snprintf(id.hw, sizeof(id.hw), "%s", l->conf->hw);
		id.ncomp = (uint8_t)l->conf->ncomp;
		for (i = 0; i < l->conf->ncomp; i++)
			id.comp[i] = l->conf->comp[i];
	}
	up_mb_ident_encode(&id, l->map->tab_input_registers + UP_MB_ID);
}

static bool
held(const struct up_node *e, uint32_t b)
{
	return (b < e->held.nbits && up_bitmap_get(&e->held, b));
}

static void
fill_status(struct node_link *l)
{
	struct up_mb_status st;
	const struct up_node *e = l->eng;
	uint32_t	 b;

	memset(&st, 0, sizeof(st));
	if (e != NULL) {
		st.state = up_node_get_state(e, &st.session, &st.result);
		if (st.session != 0) {
			st.nblocks = e->offer.nblocks;
			st.block_size = e->offer.block_size;
			st.held = e->nheld < st.nblocks ? e->nheld :
			    st.nblocks;
			for (b = 0; b < st.nblocks && held(e, b); b++)
				;
			st.first_missing = b;
		}
	}
	st.outbox = (uint16_t)l->ob_n;
	st.rx_frames = l->rx_frames;
	st.rx_errors = l->rx_errors;
	up_mb_status_encode(&st, l->map->tab_input_registers + UP_MB_ST);
}

/* The bitmap window [addr, addr + n): 1 = missing. */
static void
fill_bitmap(struct node_link *l, uint16_t addr, uint16_t n)
{
	const struct up_node *e = l->eng;
	uint32_t	 nblocks = 0, b, session = 0;
	uint16_t	 r, v;
	uint8_t		 result;
	int		 i;

	if (e != NULL) {
		(void)up_node_get_state(e, &session, &result);
		if (session != 0)
			nblocks = e->offer.nblocks;
	}
	for (r = addr; r < addr + n; r++) {
		v = 0;
		for (i = 0; i < 16; i++) {
			b = l->bmbase + 16 * (uint32_t)(r - UP_MB_BITMAP) +
			    (uint32_t)i;
			if (b < nblocks && !held(e, b))
				v |= (uint16_t)(1u << i);
		}
		l->map->tab_input_registers[r] = v;
	}
}

static void
fill_ob(struct node_link *l)
{
	uint16_t	*r = l->map->tab_registers;
	struct ob_frame	*f;

	if (l->ob_n == 0) {
		r[UP_MB_OB_SEQ] = 0;
		r[UP_MB_OB_LEN] = 0;
		return;
	}
	f = &l->ob[l->ob_head];
	r[UP_MB_OB_SEQ] = f->seq;
	r[UP_MB_OB_LEN] = f->len;
	up_mb_put_bytes(r + UP_MB_OB_DATA, f->b, f->len);
}

static void
ob_ack(struct node_link *l, uint16_t seq)
{
	if (l->ob_n > 0 && l->ob[l->ob_head].seq == seq) {
		l->ob_head = (l->ob_head + 1) % l->ob_cap;
		l->ob_n--;
	}
}

static uint16_t
next_seq(struct node_link *l)
{
	if (++l->seq == 0)
		l->seq = 1;
	return (l->seq);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static uint16_t
be16(const uint8_t *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}

/* The frame a CTRL command stands for, encoded into buf. */
static int
ctrl_frame(struct node_link *l, uint16_t cmd, uint32_t arg, uint8_t *buf,
    size_t cap)
{
	struct up_msg	 m;
	uint32_t	 session = 0;
	uint8_t		 result;

	if (l->eng == NULL)
		return (-1);
	(void)up_node_get_state(l->eng, &session, &result);
	if (session == 0)
		return (-1);
	memset(&m, 0, sizeof(m));
	m.session = session;
	switch (cmd) {
	case UP_MB_CMD_VERIFY:
		m.type = UP_T_VERIFY;
		m.u.target.node_id = l->conf->id;
		break;
	case UP_MB_CMD_ACTIVATE:
		m.type = UP_T_ACTIVATE;
		m.u.activate.node_id = l->conf->id;
		m.u.activate.delay_ms = arg;
		break;
	case UP_MB_CMD_ABORT:
		m.type = UP_T_ABORT;
		m.u.target.node_id = l->conf->id;
		m.u.target.reason = (uint8_t)arg;
		break;
	default:
		return (-1);
	}
	return (up_encode(&m, buf, cap));
}

static void
reply_exception(struct node_link *l, const uint8_t *req, int ex, bool bcast)
{
	l->rx_errors++;
	up_logf(UP_LOG_DEBUG, "modbus: refused function 0x%02x: exception %d",
	    req[0], ex);
	if (!bcast)
		(void)modbus_reply_exception(l->ctx, req - (l->kind == MBL_RTU ?
		    1 : 7), (unsigned int)ex);
}

/*
 * Serves one request: pdu is the function code and what follows (the
 * ADU's unit id, and the MBAP header on TCP, are just before it);
 * adu/adulen the whole ADU for modbus_reply.  Fills buf with a UP frame
 * the request carried and returns its length, 0 when there is none.
 */
static ssize_t
serve(struct node_link *l, uint8_t *adu, size_t adulen, const uint8_t *pdu,
    size_t pdulen, bool bcast, uint8_t *buf, size_t cap)
{
	enum up_mb_area	 area;
	uint8_t		 fc = pdu[0];
	uint16_t	 addr = 0, n = 0, waddr = 0, wn = 0, regs[UP_MB_FRAME_N];
	const uint8_t	*wdata = NULL;
	size_t		 need;
	ssize_t		 out = 0;
	int		 ex, flen;

	/* Fields by function code; lengths were checked by the framer. */
	switch (fc) {
	case 0x03:
	case 0x04:
		need = 5;
		break;
	case 0x06:
		need = 5;
		break;
	case 0x10:
		need = pdulen >= 6 ? 6 + (size_t)pdu[5] : 6;
		break;
	case 0x17:
		need = pdulen >= 10 ? 10 + (size_t)pdu[9] : 10;
		break;
	default:
		reply_exception(l, pdu, UP_MB_EX_FUNCTION, bcast);
		return (0);
	}
	if (pdulen != need) {
		reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
		return (0);
	}
	addr = be16(pdu + 1);
	n = be16(pdu + 3);
	if (fc == 0x06) {
		n = 1;
		wdata = pdu + 3;
	} else if (fc == 0x10) {
		if (pdu[5] != 2 * n) {
			reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
			return (0);
		}
		wdata = pdu + 6;
	} else if (fc == 0x17) {
		waddr = be16(pdu + 5);
		wn = be16(pdu + 7);
		if (pdu[9] != 2 * wn) {
			reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
			return (0);
		}
		wdata = pdu + 10;
	}
	if ((ex = up_mb_check(fc, addr, n, waddr, wn, &area)) != 0) {
		reply_exception(l, pdu, ex, bcast);
		return (0);
	}
	if (fc == 0x17) {
		/* The write part first: the outbox acknowledgement. */
		ob_ack(l, be16(wdata));
	} else if (fc == 0x06 || fc == 0x10) {
		switch (area) {
		case UP_MB_A_FRAME:
		case UP_MB_A_FRAME_ODD:
			if (l->busy_pct > 0 &&
			    node_rand(&l->rng) % 100 < l->busy_pct) {
				reply_exception(l, pdu, 0x06, bcast);
				return (0);
			}
			for (need = 0; need < n; need++)
				regs[need] = be16(wdata + 2 * need);
			if ((flen = up_mb_frame_take(addr, regs, n, buf,
			    cap)) < 0) {
				reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
				return (0);
			}
			l->rx_frames++;
			out = flen;
			break;
		case UP_MB_A_CTRL:
			if ((flen = ctrl_frame(l, be16(wdata), n >= 3 ?
			    (uint32_t)be16(wdata + 2) << 16 | be16(wdata + 4) :
			    0, buf, cap)) < 0) {
				reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
				return (0);
			}
			out = flen;
			break;
		case UP_MB_A_BMBASE: {
			uint32_t base = (uint32_t)be16(wdata) << 16 |
			    be16(wdata + 2);

			if (base % 16 != 0) {
				reply_exception(l, pdu, UP_MB_EX_VALUE, bcast);
				return (0);
			}
			l->bmbase = base;
			break;
		}
		case UP_MB_A_OB:
			ob_ack(l, be16(wdata));
			break;
		default:
			break;
		}
	}
	/* What the reply reads, as of now. */
	if (fc == 0x04) {
		if (area == UP_MB_A_ID)
			fill_ident(l);
		else if (area == UP_MB_A_ST)
			fill_status(l);
		else
			fill_bitmap(l, addr, n);
	} else if (fc == 0x03 || fc == 0x17)
		fill_ob(l);
	/*
	 * Never for a broadcast: libmodbus keeps quiet for unit 0 only, so
	 * a broadcast "answered as another unit" would be a reply on the
	 * bus, colliding with the gateway's next request.
	 */
	if (l->kind == MBL_RTU && !bcast && l->answer_unit != 0 &&
	    node_rand(&l->rng) % 100 < l->answer_unit_pct) {
		adu[0] = l->answer_unit;	/* fault injection */
		up_logf(UP_LOG_DEBUG, "modbus: fault: answering function "
		    "0x%02x as unit %u", fc, l->answer_unit);
	}
	if (modbus_reply(l->ctx, adu, (int)adulen, l->map) == -1)
		up_logf(UP_LOG_DEBUG, "modbus: reply: %s",
		    modbus_strerror(errno));
	/* A command register reads back 0 once done. */
	if (area == UP_MB_A_CTRL)
		memset(l->map->tab_registers + UP_MB_CTRL, 0,
		    UP_MB_CTRL_N * sizeof(uint16_t));
	return (out);
}

/* ------------------------------------------------------------------ */
/* RTU framing                                                          */

/* Lengths an ADU starting with unit, fc (and what follows) may have. */
static int
rtu_candidates(const uint8_t *b, size_t n, size_t *c)
{
	uint8_t		 fc = b[1];
	int		 k = 0;

	if (fc & 0x80) {
		c[k++] = 5;			/* exception reply */
		return (k);
	}
	switch (fc) {
	case 0x01: case 0x02: case 0x03: case 0x04:
		c[k++] = 8;			/* request */
		if (n >= 3)
			c[k++] = 5 + (size_t)b[2];	/* reply */
		break;
	case 0x05: case 0x06:
		c[k++] = 8;
		break;
	case 0x0f: case 0x10:
		c[k++] = 8;			/* reply */
		if (n >= 7)
			c[k++] = 9 + (size_t)b[6];	/* request */
		break;
	case 0x17:
		if (n >= 3)
			c[k++] = 5 + (size_t)b[2];	/* reply */
		if (n >= 11)
			c[k++] = 13 + (size_t)b[10];	/* request */
		break;
	default:
		break;
	}
	return (k);
}

/* Largest length a frame starting so could still turn out to have. */
static size_t
rtu_could_need(const uint8_t *b, size_t n)
{
	if (n < 3)
		return (RTU_ADU_MAX);
	switch (b[1]) {
	case 0x0f: case 0x10:
		return (n < 7 ? RTU_ADU_MAX : 9 + (size_t)b[6]);
	case 0x17:
		return (n < 11 ? RTU_ADU_MAX : 13 + (size_t)b[10]);
	case 0x01: case 0x02: case 0x03: case 0x04:
		return (5 + (size_t)b[2] > 8 ? 5 + (size_t)b[2] : 8);
	default:
		return (b[1] & 0x80 ? 5 : 8);
	}
}

static bool
crc_ok(const uint8_t *b, size_t len)
{
	uint16_t	 crc = up_mb_crc16(b, len - 2);

	return (b[len - 2] == (crc & 0xff) && b[len - 1] == crc >> 8);
}

/* The length of a whole, checked frame at b, 0 if none starts there. */
static size_t
rtu_whole_at(const uint8_t *b, size_t n)
{
	size_t		 c[4];
	int		 k, i;

	if (n < 4)
		return (0);
	k = rtu_candidates(b, n, c);
	for (i = 0; i < k; i++)
		if (c[i] >= 4 && c[i] <= RTU_ADU_MAX && c[i] <= n &&
		    crc_ok(b, c[i]))
			return (c[i]);
	return (0);
}

/*
 * The line has been silent: whatever is buffered has ended (a silence
 * of 3.5 characters ends an RTU frame).  Noise at the front (a frame
 * the line garbled, whose first bytes promised more) must not take a
 * whole request that came after it down with it: skip to the first
 * whole frame in the buffer.  Only at a silence, never while bytes
 * still come: a checked frame can hide inside a long one's payload.
 */
static bool
rtu_salvage(struct node_link *l)
{
	size_t		 off;

	for (off = 1; off + 4 <= l->rxlen; off++)
		if (rtu_whole_at(l->rx + off, l->rxlen - off) > 0) {
			memmove(l->rx, l->rx + off, l->rxlen - off);
			l->rxlen -= off;
			l->frame_errors++;
			return (true);
		}
	return (false);
}

/*
 * The next whole frame at rx[0]: its length, 0 when more bytes may
 * complete one, and skips a byte that starts none.
 */
static size_t
rtu_frame(struct node_link *l)
{
	size_t		 len;

	while (l->rxlen >= 4) {
		if ((len = rtu_whole_at(l->rx, l->rxlen)) > 0)
			return (len);
		if (l->rxlen < rtu_could_need(l->rx, l->rxlen) &&
		    l->rxlen < RTU_ADU_MAX)
			return (0);
		/* Nothing starts here: hunt for the next frame. */
		memmove(l->rx, l->rx + 1, --l->rxlen);
		l->frame_errors++;
	}
	return (0);
}

static void
rtu_arm(struct node_link *l)
{
	struct itimerspec its;
	uint64_t	 at = 0;

	memset(&its, 0, sizeof(its));
	if (l->again)
		at = now_ns();
	else if (l->reqlen > 0)
		at = l->req_at;
	else if (l->rxlen > 0)
		/* A partial frame: dropped after a silence. */
		at = l->last_rx_ns + l->t35_ns * 4 + 20000000ULL;
	if (at != 0) {
		its.it_value.tv_sec = (time_t)(at / 1000000000ULL);
		its.it_value.tv_nsec = (long)(at % 1000000000ULL);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	(void)timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Serves the request waiting for its reply time, if that has come. */
static ssize_t
rtu_reply_due(struct node_link *l, uint8_t *buf, size_t cap)
{
	uint8_t		 adu[RTU_ADU_MAX];
	size_t		 len = l->reqlen;

	if (len == 0 || now_ns() < l->req_at)
		return (0);
	memcpy(adu, l->req, len);
	l->reqlen = 0;
	return (serve(l, adu, len, adu + 1, len - 3, false, buf, cap));
}

static ssize_t
rtu_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap)
{
	uint8_t		 adu[RTU_ADU_MAX];
	uint64_t	 exp;
	ssize_t		 n, out;
	size_t		 len;

	if (pfd->fd == l->tfd)
		(void)!read(l->tfd, &exp, sizeof(exp));
	if ((out = rtu_reply_due(l, buf, cap)) != 0)
		goto done;
	if (pfd->fd == l->fd) {
		while (l->rxlen < sizeof(l->rx) &&
		    (n = read(l->fd, l->rx + l->rxlen,
		    sizeof(l->rx) - l->rxlen)) > 0) {
			l->rxlen += (size_t)n;
			l->last_rx_ns = now_ns();
		}
	}
	l->again = false;
again:
	/* Whole frames in the buffer, one UP frame returned per call. */
	while (l->reqlen == 0 && (len = rtu_frame(l)) > 0) {
		memcpy(adu, l->rx, len);
		memmove(l->rx, l->rx + len, l->rxlen - len);
		l->rxlen -= len;
		if (adu[0] == 0) {
			/* Broadcast: applied, never answered. */
			out = serve(l, adu, len, adu + 1, len - 3, true, buf,
			    cap);
			if (out != 0) {
				l->again = l->rxlen > 0;
				goto done;
			}
		} else if (adu[0] == l->unit) {
			/* Answered after the silence that ends it. */
			memcpy(l->req, adu, len);
			l->reqlen = len;
			l->req_at = l->last_rx_ns + l->reply_ns;
			if ((out = rtu_reply_due(l, buf, cap)) != 0) {
				l->again = l->rxlen > 0;
				goto done;
			}
		}
		/* Other units' requests and replies are not ours. */
	}
	/* A partial frame that stayed silent too long is noise. */
	if (pfd->fd == l->tfd && l->reqlen == 0 && l->rxlen > 0 &&
	    now_ns() >= l->last_rx_ns + l->t35_ns * 4 + 20000000ULL) {
		if (rtu_salvage(l))
			goto again;
		l->frame_errors++;
		l->rxlen = 0;
	}
	out = 0;
done:
	rtu_arm(l);
	return (out);
}

/* ------------------------------------------------------------------ */
/* TCP                                                                  */

static void
tcp_accept(struct node_link *l)
{
	int		 fd, i, one = 1;

	while ((fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		for (i = 0; i < TCP_CONNS; i++)
			if (l->conns[i].fd == -1)
				break;
		if (i == TCP_CONNS) {
			/* A server takes so many clients; the rest wait. */
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		l->conns[i].fd = fd;
		l->conns[i].len = 0;
	}
}

static void
tcp_drop(struct mb_conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static ssize_t
tcp_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap)
{
	struct mb_conn	*c = NULL;
	uint8_t		 adu[TCP_ADU_MAX];
	size_t		 len;
	ssize_t		 n, out;
	int		 i;

	if (pfd->fd == l->lfd) {
		tcp_accept(l);
		return (0);
	}
	for (i = 0; i < TCP_CONNS; i++)
		if (l->conns[i].fd == pfd->fd)
			c = &l->conns[i];
	if (c == NULL)
		return (0);
	if (c->len < sizeof(c->buf)) {
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
			tcp_drop(c);
			return (0);
		}
		if (n > 0)
			c->len += (size_t)n;
	}
	/* MBAP: transaction, protocol 0, length (unit + PDU), unit. */
	while (c->len >= 8) {
		len = 6 + (size_t)be16(c->buf + 4);
		if (be16(c->buf + 2) != 0 || len < 8 || len > TCP_ADU_MAX) {
			/* Not Modbus TCP: nothing after it can be framed. */
			up_logf(UP_LOG_WARN, "modbus-tcp: bad MBAP header, "
			    "connection closed");
			tcp_drop(c);
			return (0);
		}
		if (c->len < len)
			break;
		memcpy(adu, c->buf, len);
		memmove(c->buf, c->buf + len, c->len - len);
		c->len -= len;
		modbus_set_socket(l->ctx, c->fd);
		out = serve(l, adu, len, adu + 7, len - 7, false, buf, cap);
		if (l->hangup_after != 0 && l->rx_frames >= l->hangup_after) {
			/* Fault: the gateway's connection drops, once. */
			up_logf(UP_LOG_INFO, "modbus-tcp: fault: hung up after "
			    "%u frames", l->rx_frames);
			l->hangup_after = 0;
			tcp_drop(c);
			return (out);
		}
		if (out != 0)
			return (out);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* The link ops                                                         */

static void
mbl_close(struct node_link *l)
{
	int		 i;

	if (l == NULL)
		return;
	for (i = 0; i < TCP_CONNS; i++)
		if (l->conns[i].fd != -1)
			close(l->conns[i].fd);
	if (l->lfd != -1)
		close(l->lfd);
	if (l->tfd != -1)
		close(l->tfd);
	if (l->ctx != NULL) {
		if (l->kind == MBL_RTU)
			modbus_close(l->ctx);
		modbus_free(l->ctx);
	}
	if (l->map != NULL)
		modbus_mapping_free(l->map);
	free(l);
}

static struct node_link *
mbl_new(const struct node_conf *conf, enum mb_link_kind kind, char **cause)
{
	struct node_link *l;
	int		 i;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = node_cause("out of memory");
		return (NULL);
	}
	l->conf = conf;
	l->kind = kind;
	l->fd = l->tfd = l->lfd = -1;
	for (i = 0; i < TCP_CONNS; i++)
		l->conns[i].fd = -1;
	l->rng = conf->seed ^ conf->id ^ (uint64_t)now_ns();
	if (l->rng == 0)
		l->rng = 1;
	l->seq = (uint16_t)node_rand(&l->rng);
	l->ob_cap = (unsigned int)strtoul(node_conf_link_opt(conf, "outbox"),
	    NULL, 10);
	l->mtu_up = strtoul(node_conf_link_opt(conf, "uplink-mtu"), NULL, 10);
	l->unit = (uint8_t)strtoul(node_conf_link_opt(conf, "unit"), NULL,
	    10);
	l->busy_pct = (uint32_t)strtoul(node_conf_link_opt(conf, "busy-pct"),
	    NULL, 10);
	if (kind == MBL_TCP)
		l->hangup_after = (uint32_t)strtoul(node_conf_link_opt(conf,
		    "hangup-after"), NULL, 10);
	/* Holding up to the outbox's end, every input register. */
	l->map = modbus_mapping_new_start_address(0, 0, 0, 0, 0,
	    UP_MB_OB + UP_MB_OB_N, 0, 0x10000);
	if (l->map == NULL) {
		*cause = node_cause("modbus mapping: %s",
		    modbus_strerror(errno));
		mbl_close(l);
		return (NULL);
	}
	return (l);
}

/*
 * A pty keeps the termios of the program that had it last (upsim holds
 * every line open) and never keeps PARENB (the kernel clears it).  So a
 * node booting again on its line asks libmodbus for the format the line
 * already shows, and glibc's tcsetattr() reports a request of which
 * nothing took effect as EINVAL: the node could not open its line after
 * a power cut.  A line is given back raw, the way a port comes up, so
 * that libmodbus's settings change it.  Best effort: a port that cannot
 * be opened here fails with its reason in modbus_connect().
 */
static void
rtu_line_reset(const char *device)
{
	struct termios	 t;
	int		 fd;

	if ((fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1)
		return;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_iflag &= ~(tcflag_t)INPCK;
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	close(fd);
}

static struct node_link *
rtu_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link *l;
	const char	*fmt = node_conf_link_opt(conf, "format");
	const char	*delay = node_conf_link_opt(conf, "reply-delay-us");
	unsigned int	 baud, bits;

	if ((l = mbl_new(conf, MBL_RTU, cause)) == NULL)
		return (NULL);
	baud = (unsigned int)strtoul(node_conf_link_opt(conf, "baud"), NULL,
	    10);
	l->answer_unit = (uint8_t)strtoul(node_conf_link_opt(conf,
	    "answer-unit"), NULL, 10);
	l->answer_unit_pct = (uint32_t)strtoul(node_conf_link_opt(conf,
	    "answer-unit-pct"), NULL, 10);
	bits = 1 + (unsigned int)(fmt[0] - '0') + (fmt[1] != 'N') +
	    (unsigned int)(fmt[2] - '0');
	l->char_ns = (uint64_t)bits * 1000000000ULL / baud;
	l->t35_ns = baud > 19200 ? 1750000 : l->char_ns * 7 / 2;
	l->reply_ns = strcmp(delay, "auto") == 0 ? l->t35_ns :
	    strtoull(delay, NULL, 10) * 1000;

	/* libmodbus opens the port and sets termios (INPCK with parity). */
	rtu_line_reset(node_conf_link_opt(conf, "device"));
	l->ctx = modbus_new_rtu(node_conf_link_opt(conf, "device"), (int)baud,
	    fmt[1], fmt[0] - '0', fmt[2] - '0');
	if (l->ctx == NULL || modbus_set_slave(l->ctx, l->unit) == -1 ||
	    modbus_connect(l->ctx) == -1) {
		*cause = node_cause("%s: %s", node_conf_link_opt(conf, "device"),
		    modbus_strerror(errno));
		mbl_close(l);
		return (NULL);
	}
	l->fd = modbus_get_socket(l->ctx);
	(void)fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
	/*
	 * A UART that has just been powered has nothing in its receive
	 * FIFO.  A pty keeps what the bus carried while this process was
	 * gone (a simulated power cut): answering those stale requests
	 * now would talk over the master, who gave up on them long ago.
	 */
	(void)tcflush(l->fd, TCIFLUSH);
	if ((l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1) {
		*cause = node_cause("timerfd: %s", strerror(errno));
		mbl_close(l);
		return (NULL);
	}
	up_logf(UP_LOG_INFO, "node %016llx: modbus-rtu unit %u on %s, %u %s",
	    (unsigned long long)conf->id, l->unit,
	    node_conf_link_opt(conf, "device"), baud, fmt);
	return (l);
}

static struct node_link *
tcp_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link *l;
	const char	*listen_at = node_conf_link_opt(conf, "listen");
	const char	*colon = strrchr(listen_at, ':');
	char		 host[64];

	if ((l = mbl_new(conf, MBL_TCP, cause)) == NULL)
		return (NULL);
	memcpy(host, listen_at, (size_t)(colon - listen_at));
	host[colon - listen_at] = '\0';
	l->ctx = modbus_new_tcp_pi(host, colon + 1);
	if (l->ctx == NULL || (l->lfd = modbus_tcp_pi_listen(l->ctx,
	    TCP_CONNS)) == -1) {
		*cause = node_cause("listen on %s: %s", listen_at,
		    modbus_strerror(errno));
		mbl_close(l);
		return (NULL);
	}
	(void)fcntl(l->lfd, F_SETFL, fcntl(l->lfd, F_GETFL) | O_NONBLOCK);
	up_logf(UP_LOG_INFO, "node %016llx: modbus-tcp server on %s",
	    (unsigned long long)conf->id, listen_at);
	return (l);
}

static void
mbl_caps(const struct node_link *l, struct node_link_caps *c)
{
	c->rx_max = UP_MB_FRAME_MAX;
	c->mtu_up = l->mtu_up;
	/* Compact by default; the unit id (or the server) names the node. */
	c->flags = NODE_LINK_POLLED | NODE_LINK_COMPACT | NODE_LINK_ADDRESSED;
	if (l->kind == MBL_RTU)
		c->flags |= NODE_LINK_BROADCAST | NODE_LINK_HALF_DUPLEX;
}

static int
mbl_pollfds(struct node_link *l, struct pollfd *pfd, int max)
{
	int		 n = 0, i;

	if (l->kind == MBL_RTU) {
		pfd[n].fd = l->fd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = l->tfd;
		pfd[n++].events = POLLIN;
		return (n);
	}
	pfd[n].fd = l->lfd;
	pfd[n++].events = POLLIN;
	for (i = 0; i < TCP_CONNS && n < max; i++) {
		if (l->conns[i].fd == -1)
			continue;
		pfd[n].fd = l->conns[i].fd;
		pfd[n++].events = POLLIN;
	}
	return (n);
}

static ssize_t
mbl_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap, struct node_link_src *src)
{
	src->len = 0;	/* the gateway is the bus master: no address */
	if (l->kind == MBL_RTU)
		return (rtu_recv(l, pfd, buf, cap));
	return (tcp_recv(l, pfd, buf, cap));
}

/*
 * A frame for the gateway goes into the outbox, where the next poll
 * reads it.  A full outbox drops its oldest frame: UP repeats what it
 * needs, and the newest state is worth more.
 */
static int
mbl_send(struct node_link *l, const uint8_t *frame, size_t len)
{
	struct ob_frame	*f;
	unsigned int	 last;

	if (len == 0 || len > UP_MB_OB_MAX)
		return (-1);
	/*
	 * A repeat of the last frame is dropped while that one waits
	 * unread behind another; the head may have been read already (its
	 * acknowledgement comes with the next poll), so a repeat of it is
	 * a new answer and is kept.
	 */
	if (l->ob_n > 1) {
		last = (l->ob_head + l->ob_n - 1) % l->ob_cap;
		if (l->ob[last].len == len &&
		    memcmp(l->ob[last].b, frame, len) == 0)
			return (0);
	}
	if (l->ob_n == l->ob_cap) {
		up_logf(UP_LOG_DEBUG, "modbus: outbox full, oldest frame "
		    "dropped");
		l->ob_head = (l->ob_head + 1) % l->ob_cap;
		l->ob_n--;
	}
	f = &l->ob[(l->ob_head + l->ob_n) % l->ob_cap];
	f->seq = next_seq(l);
	f->len = (uint16_t)len;
	memcpy(f->b, frame, len);
	l->ob_n++;
	return (0);
}

/* A reboot wipes the node's RAM: the outbox and the bitmap window. */
static void
mbl_boot(struct node_link *l)
{
	l->ob_head = l->ob_n = 0;
	l->bmbase = 0;
	l->seq = (uint16_t)node_rand(&l->rng);
	l->eng = NULL;
}

static void
mbl_engine(struct node_link *l, const struct up_node *e)
{
	l->eng = e;
}

const struct node_link_ops node_link_modbus_rtu = {
	.name = "modbus-rtu",
	.help = "Modbus RTU slave on a serial line (libmodbus)",
	.options = rtu_options,
	.open = rtu_open,
	.close = mbl_close,
	.caps = mbl_caps,
	.pollfds = mbl_pollfds,
	.recv = mbl_recv,
	.send = mbl_send,
	.boot = mbl_boot,
	.engine = mbl_engine
};

const struct node_link_ops node_link_modbus_tcp = {
	.name = "modbus-tcp",
	.help = "Modbus TCP server (libmodbus)",
	.options = tcp_options,
	.open = tcp_open,
	.close = mbl_close,
	.caps = mbl_caps,
	.pollfds = mbl_pollfds,
	.recv = mbl_recv,
	.send = mbl_send,
	.boot = mbl_boot,
	.engine = mbl_engine
};
