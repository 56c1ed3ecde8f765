/*
 * ble_client.c: one ATT bearer of the "ble" transport, the GATT client
 * side (docs/transports/ble.md, "Connection set-up" and "Data flow").
 *
 * The bearer is any connected SOCK_SEQPACKET descriptor: each read is
 * one ATT PDU, each write one PDU.  That is what an L2CAP LE socket on
 * the ATT channel (CID 4) gives, what a simulated peripheral's UNIX
 * socket gives, and what a socketpair gives the tests, so the same code
 * runs on all three.
 *
 * Set-up, one request at a time as ATT allows (Vol 3 Part F §3.3.2):
 * Exchange MTU; Find By Type Value for the UP service; Read By Type for
 * its characteristic declarations; Find Information for the CCCDs of
 * Reply and Credit; two Write Requests turning notifications on; a Read
 * of Credit.  Then data: each UP frame is one Write Command on Data, at
 * most ATT_MTU − 3 bytes, as many in flight as the node's credit allows
 * (Credit is a cumulative count of writes the node has room for, sent as
 * notifications); the node's frames come as notifications on Reply.
 *
 * Failures are final for the connection: ble_conn_rx/tx/check return -1,
 * the state is BLE_C_DEAD and ble_conn_why() holds one sentence for the
 * log; the owner closes it and the engine resumes the node later from
 * its bitmap.  Malformed notifications and notifications on handles that
 * are not ours are counted and dropped: they cost the node nothing.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "ble_internal.h"

#define CTL_MAX		4	/* control PDUs waiting to be written */
#define CTL_LEN		32	/* our requests and answers fit */
#define RX_BUDGET	64	/* PDUs read per ble_conn_rx() */
/* A node may not grant more than this beyond what was written. */
#define CREDIT_AHEAD_MAX (1u << 20)

/* BT_SECURITY levels (<bluetooth/bluetooth.h>), without the header. */
#define SEC_MEDIUM	2
#define SEC_HIGH	3

enum { CH_DATA, CH_REPLY, CH_CREDIT, CH_N };

struct ble_chr_found {
	uint16_t	 value;		/* value handle, 0 = not found */
	uint16_t	 end;		/* last handle of its descriptors */
	uint8_t		 props;
	uint16_t	 cccd;
};

struct ble_txf {
	uint64_t	 cookie;
	uint16_t	 len;
};

struct ble_conn {
	int			 fd;
	const struct ble_conn_cb *cb;
	void			*arg;
	struct ble_conn_params	 par;
	enum ble_conn_state	 st;
	uint16_t		 mtu;		/* ATT_MTU in force */
	int			 security;

	/* Discovery. */
	uint16_t		 svc_start;
	uint16_t		 svc_end;
	uint16_t		 next;		/* where the search goes on */
	int			 open_chr;	/* ours whose end is open, -1 */
	struct ble_chr_found	 ch[CH_N];

	/* The request in flight (ATT allows one), kept for a retry. */
	uint8_t			 req[CTL_LEN];
	uint8_t			 req_len;
	bool			 req_out;
	uint64_t		 req_at;
	uint64_t		 now;		/* of the current call */

	/* Control PDUs to write before any data. */
	uint8_t			 ctl[CTL_MAX][CTL_LEN];
	uint8_t			 ctl_len[CTL_MAX];
	unsigned int		 ctl_head;
	unsigned int		 ctl_n;

	/* Credit: writes the node allows (cumulative), writes done. */
	uint32_t		 limit;
	uint32_t		 wr;
	uint64_t		 stall_since;	/* 0 = not waiting */

	/* Frames waiting to be written: a ring of fixed slots. */
	struct ble_txf		*q;
	uint8_t			*qbuf;
	uint32_t		 qcap;
	uint32_t		 qhead;
	uint32_t		 qn;
	size_t			 slot;		/* bytes per slot */
	bool			 want_room;

	struct ble_conn_stats	 stats;
	uint8_t			 rx[BLE_ATT_MTU_MAX + 1];
	char			 why[200];
};

static const char *const state_names[] = {
	"mtu", "service", "characteristics", "reply descriptor",
	"reply notifications", "credit descriptor", "credit notifications",
	"first credit", "ready", "dead"
};

const char *
ble_conn_state_str(enum ble_conn_state st)
{
	if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0]))
		return ("?");
	return (state_names[st]);
}

static uint16_t
get16(const uint8_t *p)
{
	return ((uint16_t)(p[0] | p[1] << 8));
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24);
}

static int
conn_fail(struct ble_conn *c, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

/* Records the first reason and kills the connection; returns -1. */
static int
conn_fail(struct ble_conn *c, const char *fmt, ...)
{
	va_list		 ap;

	if (c->st != BLE_C_DEAD) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
		c->st = BLE_C_DEAD;
	}
	return (-1);
}

struct ble_conn *
ble_conn_new(int fd, const struct ble_conn_params *par,
    const struct ble_conn_cb *cb, void *arg)
{
	struct ble_conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	c->fd = fd;
	c->cb = cb;
	c->arg = arg;
	c->par = *par;
	if (c->par.mtu < BLE_ATT_MTU_MIN)
		c->par.mtu = BLE_ATT_MTU_MIN;
	if (c->par.mtu > BLE_ATT_MTU_MAX)
		c->par.mtu = BLE_ATT_MTU_MAX;
	if (c->par.queue == 0)
		c->par.queue = 1;
	if (c->par.att_timeout_ms == 0)
		c->par.att_timeout_ms = 30000;	/* §3.3.3 */
	c->security = par->security;
	c->mtu = BLE_ATT_MTU_MIN;
	c->st = BLE_C_MTU;
	c->open_chr = -1;
	c->slot = (size_t)c->par.mtu - 3;
	c->qcap = c->par.queue;
	c->q = calloc(c->qcap, sizeof(*c->q));
	c->qbuf = calloc(c->qcap, c->slot);
	if (c->q == NULL || c->qbuf == NULL) {
		free(c->q);
		free(c->qbuf);
		free(c);
		return (NULL);
	}
	return (c);
}

void
ble_conn_free(struct ble_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	free(c->q);
	free(c->qbuf);
	free(c);
}

int
ble_conn_fd(const struct ble_conn *c)
{
	return (c->fd);
}

enum ble_conn_state
ble_conn_state(const struct ble_conn *c)
{
	return (c->st);
}

uint16_t
ble_conn_mtu(const struct ble_conn *c)
{
	return (c->mtu);
}

uint32_t
ble_conn_credit(const struct ble_conn *c)
{
	int32_t		 d = (int32_t)(c->limit - c->wr);

	return (d > 0 ? (uint32_t)d : 0);
}

uint32_t
ble_conn_queued(const struct ble_conn *c)
{
	return (c->qn);
}

const char *
ble_conn_why(const struct ble_conn *c)
{
	return (c->why[0] != '\0' ? c->why : "no error");
}

void
ble_conn_stats(const struct ble_conn *c, struct ble_conn_stats *s)
{
	*s = c->stats;
}

void
ble_conn_handles(const struct ble_conn *c, uint16_t *data, uint16_t *reply,
    uint16_t *credit)
{
	*data = c->ch[CH_DATA].value;
	*reply = c->ch[CH_REPLY].value;
	*credit = c->ch[CH_CREDIT].value;
}

/* ------------------------------------------------------------------ */
/* Control PDUs                                                         */

static int
ctl_push(struct ble_conn *c, const uint8_t *pdu, size_t len)
{
	unsigned int	 i;

	if (c->ctl_n == CTL_MAX || len > CTL_LEN)
		return (conn_fail(c, "too many ATT answers owed to the node "
		    "at once"));
	i = (c->ctl_head + c->ctl_n) % CTL_MAX;
	memcpy(c->ctl[i], pdu, len);
	c->ctl_len[i] = (uint8_t)len;
	c->ctl_n++;
	return (0);
}

/* Sends a request: ATT allows one in flight (§3.3.2). */
static int
conn_request(struct ble_conn *c, const uint8_t *pdu, ssize_t len)
{
	if (len <= 0 || (size_t)len > CTL_LEN || (size_t)len > c->mtu)
		return (conn_fail(c, "cannot encode the %s request",
		    ble_conn_state_str(c->st)));
	memcpy(c->req, pdu, (size_t)len);
	c->req_len = (uint8_t)len;
	c->req_out = true;
	c->req_at = c->now;
	return (ctl_push(c, pdu, (size_t)len));
}

/* ------------------------------------------------------------------ */
/* The set-up steps                                                     */

static int	 step_service(struct ble_conn *);
static int	 step_chars(struct ble_conn *);
static int	 step_desc(struct ble_conn *, int);
static int	 step_notify(struct ble_conn *, int);

void
ble_conn_start(struct ble_conn *c, uint64_t now_ms)
{
	uint8_t		 b[3];

	c->now = now_ms;
	c->st = BLE_C_MTU;
	(void)conn_request(c, b, ble_att_enc_mtu(b, sizeof(b),
	    BLE_ATT_MTU_REQ, c->par.mtu));
}

static int
step_service(struct ble_conn *c)
{
	uint8_t		 b[CTL_LEN];

	c->st = BLE_C_SERVICE;
	/* 7 + 16 = 23 bytes: fits the default ATT_MTU. */
	return (conn_request(c, b, ble_att_enc_find_type(b, sizeof(b),
	    0x0001, 0xffff, BLE_UUID_PRIMARY, ble_uuid_up_service,
	    BLE_UUID128_LEN)));
}

static int
step_chars(struct ble_conn *c)
{
	uint8_t		 b[CTL_LEN];

	c->st = BLE_C_CHARS;
	return (conn_request(c, b, ble_att_enc_range(b, sizeof(b),
	    BLE_ATT_READ_TYPE_REQ, c->next, c->svc_end,
	    BLE_UUID_CHARACTERISTIC)));
}

static const char *
chr_name(int i)
{
	return (i == CH_DATA ? "Data" : i == CH_REPLY ? "Reply" : "Credit");
}

static int
step_desc(struct ble_conn *c, int which)
{
	uint8_t		 b[CTL_LEN];

	c->st = which == CH_REPLY ? BLE_C_DESC_REPLY : BLE_C_DESC_CREDIT;
	if (c->next > c->ch[which].end || c->next == 0)
		return (conn_fail(c, "the node's %s characteristic has no "
		    "Client Characteristic Configuration descriptor",
		    chr_name(which)));
	return (conn_request(c, b, ble_att_enc_find_info(b, sizeof(b),
	    c->next, c->ch[which].end)));
}

static int
step_notify(struct ble_conn *c, int which)
{
	uint8_t		 b[CTL_LEN], on[2] = { BLE_CCCD_NOTIFY, 0 };

	c->st = which == CH_REPLY ? BLE_C_ON_REPLY : BLE_C_ON_CREDIT;
	return (conn_request(c, b, ble_att_enc_write(b, sizeof(b),
	    BLE_ATT_WRITE_REQ, c->ch[which].cccd, on, sizeof(on))));
}

static int
step_read_credit(struct ble_conn *c)
{
	uint8_t		 b[CTL_LEN];

	c->st = BLE_C_READ_CREDIT;
	return (conn_request(c, b, ble_att_enc_read(b, sizeof(b),
	    c->ch[CH_CREDIT].value)));
}

/* The characteristic search is over: check what it found. */
static int
chars_done(struct ble_conn *c)
{
	static const uint8_t	 need[CH_N] = {
		BLE_PROP_WRITE_CMD, BLE_PROP_NOTIFY,
		BLE_PROP_NOTIFY | BLE_PROP_READ
	};
	char			 u[40];
	int			 i;

	if (c->open_chr >= 0)
		c->ch[c->open_chr].end = c->svc_end;
	c->open_chr = -1;
	for (i = 0; i < CH_N; i++) {
		if (c->ch[i].value == 0) {
			ble_uuid_fmt(i == CH_DATA ? ble_uuid_up_data :
			    i == CH_REPLY ? ble_uuid_up_reply :
			    ble_uuid_up_credit, u, sizeof(u));
			return (conn_fail(c, "the node's UP service has no "
			    "%s characteristic (%s)", chr_name(i), u));
		}
		if ((c->ch[i].props & need[i]) != need[i])
			return (conn_fail(c, "the node's %s characteristic "
			    "has properties 0x%02x, needs 0x%02x",
			    chr_name(i), c->ch[i].props, need[i]));
	}
	c->next = c->ch[CH_REPLY].value + 1;
	return (step_desc(c, CH_REPLY));
}

static int
on_chars(struct ble_conn *c, const struct ble_att_msg *m)
{
	static const uint8_t *const uuids[CH_N] = {
		ble_uuid_up_data, ble_uuid_up_reply, ble_uuid_up_credit
	};
	struct ble_att_chr	 ch;
	size_t			 i;
	int			 k, e;

	for (i = 0; i < m->u.list.count; i++) {
		if ((e = ble_att_chr_at(m, i, &ch)) != BLE_OK)
			return (conn_fail(c, "bad characteristic "
			    "declaration: %s", ble_att_strerror(e)));
		/* Handles rise strictly within the range we asked for. */
		if (ch.decl < c->next || ch.decl > c->svc_end ||
		    ch.value > c->svc_end)
			return (conn_fail(c, "characteristic declaration "
			    "0x%04x outside 0x%04x-0x%04x", ch.decl, c->next,
			    c->svc_end));
		if (c->open_chr >= 0) {
			c->ch[c->open_chr].end = ch.decl - 1;
			c->open_chr = -1;
		}
		for (k = 0; k < CH_N; k++) {
			if (ch.uuid_len != BLE_UUID128_LEN ||
			    memcmp(ch.uuid, uuids[k], BLE_UUID128_LEN) != 0)
				continue;
			if (c->ch[k].value != 0)
				return (conn_fail(c, "the node's UP service "
				    "has two %s characteristics",
				    chr_name(k)));
			c->ch[k].value = ch.value;
			c->ch[k].props = ch.props;
			c->open_chr = k;
		}
		c->next = ch.decl + 1;
		if (ch.decl >= c->svc_end)
			return (chars_done(c));
	}
	return (step_chars(c));
}

static int
on_desc(struct ble_conn *c, const struct ble_att_msg *m, int which)
{
	const uint8_t	*e;
	uint16_t	 h;
	size_t		 i;

	for (i = 0; i < m->u.list.count; i++) {
		e = m->u.list.data + i * m->u.list.elen;
		h = get16(e);
		if (h < c->next || h > c->ch[which].end)
			return (conn_fail(c, "descriptor 0x%04x outside "
			    "0x%04x-0x%04x", h, c->next, c->ch[which].end));
		c->next = h + 1;
		if (m->u.list.format == 1 && get16(e + 2) == BLE_UUID_CCCD) {
			c->ch[which].cccd = h;
			return (step_notify(c, which));
		}
		if (h == 0xffff)
			break;
	}
	return (step_desc(c, which));
}

/*
 * The node refused a request for want of security.  A lower layer that
 * can raise it (an L2CAP socket: BT_SECURITY starts pairing) does, and
 * the request goes again; else the set-up fails with what to change.
 */
static int
on_security(struct ble_conn *c, const struct ble_att_msg *m)
{
	uint8_t		 again[CTL_LEN];
	int		 want;

	want = m->u.err.code == BLE_ATT_E_AUTHENTICATION ? SEC_HIGH :
	    SEC_MEDIUM;
	if (c->security >= want || c->cb->security == NULL ||
	    c->cb->security(c->arg, c, want) != 0)
		return (conn_fail(c, "the node requires %s for its UP "
		    "service (ATT error 0x%02x, %s) and the link cannot "
		    "provide it: set security = %s, pair the node",
		    want == SEC_HIGH ? "an authenticated link" :
		    "an encrypted link", m->u.err.code,
		    ble_att_errname(m->u.err.code), want == SEC_HIGH ?
		    "high" : "medium"));
	c->security = want;
	c->req_out = false;
	memcpy(again, c->req, c->req_len);
	return (conn_request(c, again, c->req_len));
}

static int
on_error(struct ble_conn *c, const struct ble_att_msg *m)
{
	char		 u[40];
	uint8_t		 code = m->u.err.code;

	switch (c->st) {
	case BLE_C_MTU:
		/* A server that cannot exchange keeps 23 (§3.4.2.2). */
		return (step_service(c));
	case BLE_C_SERVICE:
		if (code == BLE_ATT_E_NOT_FOUND) {
			ble_uuid_fmt(ble_uuid_up_service, u, sizeof(u));
			return (conn_fail(c, "the node has no UP GATT service "
			    "(%s)", u));
		}
		break;
	case BLE_C_CHARS:
		if (code == BLE_ATT_E_NOT_FOUND)
			return (chars_done(c));
		break;
	case BLE_C_DESC_REPLY:
	case BLE_C_DESC_CREDIT:
		if (code == BLE_ATT_E_NOT_FOUND)
			return (conn_fail(c, "the node's %s characteristic "
			    "has no Client Characteristic Configuration "
			    "descriptor", chr_name(c->st ==
			    BLE_C_DESC_REPLY ? CH_REPLY : CH_CREDIT)));
		break;
	case BLE_C_ON_REPLY:
	case BLE_C_ON_CREDIT:
	case BLE_C_READ_CREDIT:
		if (code == BLE_ATT_E_AUTHENTICATION ||
		    code == BLE_ATT_E_ENCRYPTION || code == BLE_ATT_E_KEY_SIZE)
			return (on_security(c, m));
		break;
	default:
		break;
	}
	return (conn_fail(c, "the node answered the %s step's %s with ATT "
	    "error 0x%02x (%s) on handle 0x%04x", ble_conn_state_str(c->st),
	    ble_att_opname(m->u.err.req), code, ble_att_errname(code),
	    m->u.err.handle));
}

/* A response to our request (already matched to it). */
static int
on_response(struct ble_conn *c, const struct ble_att_msg *m)
{
	uint32_t	 v;

	if (m->op == BLE_ATT_ERROR_RSP)
		return (on_error(c, m));
	switch (c->st) {
	case BLE_C_MTU:
		if (m->u.mtu < BLE_ATT_MTU_MIN)
			return (conn_fail(c, "the node's ATT MTU %u is below "
			    "the minimum 23", m->u.mtu));
		c->mtu = m->u.mtu < c->par.mtu ? m->u.mtu : c->par.mtu;
		return (step_service(c));
	case BLE_C_SERVICE:
		/* The first instance; the UUID is ours alone. */
		c->svc_start = get16(m->u.list.data);
		c->svc_end = get16(m->u.list.data + 2);
		c->next = c->svc_start;
		return (step_chars(c));
	case BLE_C_CHARS:
		return (on_chars(c, m));
	case BLE_C_DESC_REPLY:
		return (on_desc(c, m, CH_REPLY));
	case BLE_C_DESC_CREDIT:
		return (on_desc(c, m, CH_CREDIT));
	case BLE_C_ON_REPLY:
		c->next = c->ch[CH_CREDIT].value + 1;
		return (step_desc(c, CH_CREDIT));
	case BLE_C_ON_CREDIT:
		return (step_read_credit(c));
	case BLE_C_READ_CREDIT:
		if (m->u.value.len != 4)
			return (conn_fail(c, "the node's Credit value has %zu "
			    "bytes, not 4", m->u.value.len));
		v = get32(m->u.value.data);
		/* A notification may have brought a newer count. */
		if ((int32_t)(v - c->limit) > 0)
			c->limit = v;
		c->st = BLE_C_READY;
		if (c->cb->ready != NULL)
			c->cb->ready(c->arg, c);
		return (c->st == BLE_C_DEAD ? -1 : 0);
	default:
		return (conn_fail(c, "a response in state %s",
		    ble_conn_state_str(c->st)));
	}
}

/* ------------------------------------------------------------------ */
/* Receiving                                                            */

static void
on_credit(struct ble_conn *c, const uint8_t *v, size_t len)
{
	uint32_t	 lim;

	if (len != 4) {
		c->stats.rx_bad++;
		return;
	}
	lim = get32(v);
	if ((uint32_t)(lim - c->wr) > CREDIT_AHEAD_MAX &&
	    (int32_t)(lim - c->wr) > 0) {
		c->stats.rx_bad++;
		return;
	}
	if ((int32_t)(lim - c->limit) > 0) {
		c->limit = lim;
		c->stall_since = 0;
	}
}

/* A notification or indication's value. */
static int
on_value(struct ble_conn *c, const struct ble_att_msg *m)
{
	uint16_t	 h = m->u.hv.handle;

	if (h != 0 && h == c->ch[CH_REPLY].value && c->st >= BLE_C_ON_REPLY &&
	    c->st != BLE_C_DEAD) {
		if (m->u.hv.len == 0) {
			c->stats.rx_bad++;	/* no UP frame is empty */
			return (0);
		}
		c->stats.rx_frames++;
		c->stats.rx_bytes += m->u.hv.len;
		if (c->cb->frame != NULL)
			c->cb->frame(c->arg, c, m->u.hv.data, m->u.hv.len);
		return (c->st == BLE_C_DEAD ? -1 : 0);
	}
	if (h != 0 && h == c->ch[CH_CREDIT].value &&
	    c->st >= BLE_C_ON_CREDIT && c->st != BLE_C_DEAD) {
		on_credit(c, m->u.hv.data, m->u.hv.len);
		return (0);
	}
	c->stats.rx_unknown++;
	up_logf(UP_LOG_DEBUG, "ble: notification on handle 0x%04x, not "
	    "ours, dropped", h);
	return (0);
}

/* A request the node makes of us as a server. */
static int
on_peer_request(struct ble_conn *c, const uint8_t *p, size_t len)
{
	struct ble_att_msg	 m;
	uint8_t			 b[8];
	ssize_t			 n;
	int			 e;

	e = ble_att_decode(p, len, &m);
	if (e == BLE_OK && m.op == BLE_ATT_MTU_REQ) {
		/* The peripheral may start the exchange (§3.4.2.1). */
		if (m.u.mtu >= BLE_ATT_MTU_MIN && m.u.mtu < c->par.mtu &&
		    c->st == BLE_C_MTU)
			c->mtu = m.u.mtu;
		n = ble_att_enc_mtu(b, sizeof(b), BLE_ATT_MTU_RSP,
		    c->par.mtu);
	} else
		/* We hold no attributes for it: §3.4.1.1. */
		n = ble_att_enc_error(b, sizeof(b), p[0], 0x0000,
		    e == BLE_OK || e == BLE_EOPCODE ?
		    BLE_ATT_E_NOT_SUPPORTED : BLE_ATT_E_INVALID_PDU);
	return (ctl_push(c, b, (size_t)n));
}

static int
on_pdu(struct ble_conn *c, const uint8_t *p, size_t len)
{
	struct ble_att_msg	 m;
	uint8_t			 op = p[0], ack = BLE_ATT_CONFIRM;
	int			 e;

	if (ble_att_is_response(op)) {
		/* Matched to the one request in flight, or a fault. */
		if (!c->req_out || (op == BLE_ATT_ERROR_RSP ? false :
		    op != c->req[0] + 1))
			return (conn_fail(c, "unexpected %s from the node "
			    "(%s)", ble_att_opname(op), c->req_out ?
			    "another request is in flight" :
			    "no request in flight"));
		if (len > c->mtu)
			return (conn_fail(c, "%s of %zu bytes exceeds the ATT "
			    "MTU %u", ble_att_opname(op), len, c->mtu));
		if ((e = ble_att_decode(p, len, &m)) != BLE_OK)
			return (conn_fail(c, "malformed %s (%zu bytes): %s",
			    ble_att_opname(op), len, ble_att_strerror(e)));
		if (op == BLE_ATT_ERROR_RSP && m.u.err.req != c->req[0])
			return (conn_fail(c, "Error Response names the %s, "
			    "but the request in flight is the %s",
			    ble_att_opname(m.u.err.req),
			    ble_att_opname(c->req[0])));
		c->req_out = false;
		return (on_response(c, &m));
	}
	if (op == BLE_ATT_NOTIFY || op == BLE_ATT_INDICATE) {
		/* An indication is confirmed whatever it carries. */
		if (op == BLE_ATT_INDICATE && ctl_push(c, &ack, 1) == -1)
			return (-1);
		if (len > c->mtu) {
			c->stats.rx_bad++;
			up_logf(UP_LOG_DEBUG, "ble: %s of %zu bytes exceeds "
			    "the ATT MTU %u, dropped", ble_att_opname(op), len,
			    c->mtu);
			return (0);
		}
		if ((e = ble_att_decode(p, len, &m)) != BLE_OK) {
			c->stats.rx_bad++;
			up_logf(UP_LOG_DEBUG, "ble: malformed %s: %s, dropped",
			    ble_att_opname(op), ble_att_strerror(e));
			return (0);
		}
		return (on_value(c, &m));
	}
	if (op & BLE_ATT_CMD_FLAG) {
		c->stats.rx_bad++;	/* a command for a server we are not */
		return (0);
	}
	return (on_peer_request(c, p, len));
}

int
ble_conn_rx(struct ble_conn *c, uint64_t now_ms)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;
	int		 i;

	c->now = now_ms;
	if (c->st == BLE_C_DEAD)
		return (-1);
	for (i = 0; i < RX_BUDGET; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = c->rx;
		iov.iov_len = sizeof(c->rx);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (0);
			if (errno == EINTR)
				continue;
			return (conn_fail(c, "connection lost: %s",
			    strerror(errno)));
		}
		if (n == 0)
			return (conn_fail(c, "connection closed by the node"));
		if (msg.msg_flags & MSG_TRUNC) {
			/* Longer than any ATT PDU may be (§3.2.9). */
			c->stats.rx_bad++;
			if (ble_att_is_response(c->rx[0]))
				return (conn_fail(c, "%s longer than %d "
				    "bytes", ble_att_opname(c->rx[0]),
				    BLE_ATT_MTU_MAX));
			continue;
		}
		if (on_pdu(c, c->rx, (size_t)n) == -1)
			return (-1);
	}
	return (0);
}

int
ble_conn_check(struct ble_conn *c, uint64_t now_ms)
{
	c->now = now_ms;
	if (c->st == BLE_C_DEAD)
		return (-1);
	if (c->req_out && now_ms - c->req_at >= c->par.att_timeout_ms)
		return (conn_fail(c, "no answer to the %s (%s step) in %u ms "
		    "(ATT transaction timeout)", ble_att_opname(c->req[0]),
		    ble_conn_state_str(c->st), c->par.att_timeout_ms));
	if (c->stall_since != 0 && c->qn > 0 &&
	    now_ms - c->stall_since >= c->par.att_timeout_ms)
		return (conn_fail(c, "no credit from the node for %u ms with "
		    "%u frames waiting", c->par.att_timeout_ms, c->qn));
	return (0);
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

int
ble_conn_queue(struct ble_conn *c, const struct iovec *iov, int iovcnt,
    uint64_t cookie)
{
	struct ble_txf	*f;
	uint8_t		*dst;
	size_t		 len = 0;
	int		 i;

	if (c->st != BLE_C_READY)
		return (TP_ENOPEER);
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)c->mtu - 3 - len)
			return (TP_EMSGSIZE);
		len += iov[i].iov_len;
	}
	if (len == 0)
		return (TP_EMSGSIZE);
	if (c->qn == c->qcap) {
		c->want_room = true;
		return (TP_EAGAIN);
	}
	i = (int)((c->qhead + c->qn) % c->qcap);
	f = &c->q[i];
	dst = c->qbuf + (size_t)i * c->slot;
	f->cookie = cookie;
	f->len = (uint16_t)len;
	for (len = 0, i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > 0)
			memcpy(dst + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	c->qn++;
	return (TP_OK);
}

int
ble_conn_pop_unsent(struct ble_conn *c, uint64_t *cookie)
{
	if (c->qn == 0)
		return (0);
	*cookie = c->q[c->qhead].cookie;
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qn--;
	return (1);
}

static bool
send_retry(int e)
{
	return (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS);
}

int
ble_conn_tx(struct ble_conn *c, uint64_t now_ms)
{
	struct ble_txf	*f;
	struct msghdr	 msg;
	struct iovec	 iov[2];
	uint8_t		 hdr[3];
	uint64_t	 cookie;
	ssize_t		 n;

	c->now = now_ms;
	if (c->st == BLE_C_DEAD)
		return (-1);
	while (c->ctl_n > 0) {
		n = send(c->fd, c->ctl[c->ctl_head], c->ctl_len[c->ctl_head],
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1) {
			if (send_retry(errno))
				return (1);
			if (errno == EINTR)
				continue;
			return (conn_fail(c, "connection lost: %s",
			    strerror(errno)));
		}
		c->ctl_head = (c->ctl_head + 1) % CTL_MAX;
		c->ctl_n--;
	}
	if (c->st != BLE_C_READY)
		return (0);

	while (c->qn > 0) {
		if ((int32_t)(c->limit - c->wr) <= 0) {
			/* The node has no room: its Credit will say. */
			if (c->stall_since == 0) {
				c->stall_since = now_ms != 0 ? now_ms : 1;
				c->stats.credit_waits++;
			}
			return (0);
		}
		f = &c->q[c->qhead];
		ble_att_hv_hdr(hdr, BLE_ATT_WRITE_CMD, c->ch[CH_DATA].value);
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof(hdr);
		iov[1].iov_base = c->qbuf + (size_t)c->qhead * c->slot;
		iov[1].iov_len = f->len;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1) {
			if (send_retry(errno))
				return (1);
			if (errno == EINTR)
				continue;
			return (conn_fail(c, "connection lost: %s",
			    strerror(errno)));
		}
		c->wr++;
		c->stall_since = 0;
		c->stats.tx_frames++;
		c->stats.tx_bytes += f->len;
		cookie = f->cookie;
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qn--;
		if (c->cb->sent != NULL)
			c->cb->sent(c->arg, c, cookie);
		if (c->want_room) {
			c->want_room = false;
			if (c->cb->room != NULL)
				c->cb->room(c->arg, c);
		}
		if (c->st == BLE_C_DEAD)
			return (-1);
	}
	return (0);
}
