/*
 * node_ble.c: the BLE link of a simulated node, `upnode --transport ble'
 * (docs/upnode.md "BLE link", docs/transports/ble.md).
 *
 * The node is a BLE peripheral with the UP GATT service in its ATT
 * server.  There is no radio: the gateway's ble plugin, configured with
 * `sim_dir', finds the node by its advertising report in DIR/ADDR.adv
 * and connects to DIR/ADDR.sock, a UNIX SOCK_SEQPACKET socket on which
 * each message is one ATT PDU, as on an L2CAP socket.
 *
 * What the socket lacks, the link model adds: the node reads the
 * gateway's PDUs and sends its own only in connection events, every
 * `interval_us', as a pair of controllers would move them.  An event is
 * a series of exchanges, the central's PDU, T_IFS, the peripheral's
 * PDU, T_IFS, each PDU carrying up to `data_length' bytes of L2CAP
 * (4-byte header + the ATT PDU: larger ATT PDUs take several LL PDUs).
 * Exchanges go on while either side has more to send, at most `pdus' of
 * them, and only while they end within the interval; the time of a PDU
 * is (preamble + access address 4 + header 2 + payload + MIC 4 when
 * `mic' and the payload is not empty + CRC 3) bytes at 1 or 2 Mbit/s,
 * the preamble 1 byte on 1M and 2 on 2M (research/transports.md §2.4).
 * Its limit for Write Commands is what the bench compares against.
 *
 * Faults: `drop_at'/`drop_every' lose the connection (the node goes
 * silent and closes it after `supervision_ms', as a supervision timeout
 * would); a node reset is upnode's own --crash-at (the process dies, the
 * connection with it) or a reboot into a new image (boot()).
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "upnode.h"

#define ATT_MTU_MIN	23
#define ATT_MTU_MAX	517
#define L2CAP_HDR	4
#define T_IFS_NS	150000ull
#define TXQ_MAX		16	/* ATT PDUs the node may have queued */
#define EVENTS_MAX	64	/* late events run back to back, at most */

/* ATT opcodes and errors (Core 5.3 Vol 3 Part F §3.4). */
#define OP_ERROR	0x01
#define OP_MTU_REQ	0x02
#define OP_MTU_RSP	0x03
#define OP_FIND_INFO	0x04
#define OP_FIND_INFO_RSP 0x05
#define OP_FIND_TYPE	0x06
#define OP_FIND_TYPE_RSP 0x07
#define OP_READ_TYPE	0x08
#define OP_READ_TYPE_RSP 0x09
#define OP_READ		0x0a
#define OP_READ_RSP	0x0b
#define OP_READ_GROUP	0x10
#define OP_READ_GROUP_RSP 0x11
#define OP_WRITE_REQ	0x12
#define OP_WRITE_RSP	0x13
#define OP_NOTIFY	0x1b
#define OP_WRITE_CMD	0x52
#define E_INVALID_HANDLE 0x01
#define E_READ_NOT_PERM	0x02
#define E_WRITE_NOT_PERM 0x03
#define E_INVALID_PDU	0x04
#define E_NOT_SUPPORTED	0x06
#define E_NOT_FOUND	0x0a
#define E_VALUE_LEN	0x0d
#define E_ENCRYPTION	0x0f
#define E_UNSUPP_GROUP	0x10

/*
 * The UP service, e84fXXXX-5a6a-4d2f-b31b-6c73e1665fa7, little-endian
 * as ATT carries it (docs/transports/ble.md).
 */
#define UP_UUID(x)	{ 0xa7, 0x5f, 0x66, 0xe1, 0x73, 0x6c, 0x1b, 0xb3, \
			  0x2f, 0x4d, 0x6a, 0x5a, (x), 0x00, 0x4f, 0xe8 }
static const uint8_t uuid_service[16] = UP_UUID(0x01);
static const uint8_t uuid_data[16] = UP_UUID(0x02);
static const uint8_t uuid_reply[16] = UP_UUID(0x03);
static const uint8_t uuid_credit[16] = UP_UUID(0x04);

/* The attribute table (docs/transports/ble.md). */
enum attr_kind {
	A_GAP, A_NAME_DECL, A_NAME, A_UP, A_DATA_DECL, A_DATA,
	A_REPLY_DECL, A_REPLY, A_REPLY_CCCD, A_CREDIT_DECL, A_CREDIT,
	A_CREDIT_CCCD
};
struct attr {
	uint16_t	 handle;
	enum attr_kind	 kind;
	uint16_t	 type16;	/* 0: the 128-bit type below */
	const uint8_t	*type128;
	uint16_t	 group_end;	/* services: their last handle */
};
static const struct attr attrs[] = {
	{ 0x0001, A_GAP, 0x2800, NULL, 0x0003 },
	{ 0x0002, A_NAME_DECL, 0x2803, NULL, 0 },
	{ 0x0003, A_NAME, 0x2a00, NULL, 0 },
	{ 0x0010, A_UP, 0x2800, NULL, 0x0018 },
	{ 0x0011, A_DATA_DECL, 0x2803, NULL, 0 },
	{ 0x0012, A_DATA, 0, uuid_data, 0 },
	{ 0x0013, A_REPLY_DECL, 0x2803, NULL, 0 },
	{ 0x0014, A_REPLY, 0, uuid_reply, 0 },
	{ 0x0015, A_REPLY_CCCD, 0x2902, NULL, 0 },
	{ 0x0016, A_CREDIT_DECL, 0x2803, NULL, 0 },
	{ 0x0017, A_CREDIT, 0, uuid_credit, 0 },
	{ 0x0018, A_CREDIT_CCCD, 0x2902, NULL, 0 },
};
#define NATTRS		(sizeof(attrs) / sizeof(attrs[0]))
#define H_DATA		0x0012
#define H_REPLY		0x0014
#define H_CREDIT	0x0017

enum ble_st {
	ST_QUIET,		/* not advertising yet (after boot, a drop) */
	ST_ADVERTISING,		/* .adv written, a central may connect */
	ST_CONNECTED,
	ST_SILENT		/* link lost: silent until supervision ends */
};

struct txpdu {
	uint16_t	 len;		/* ATT PDU bytes */
	uint16_t	 sent;		/* L2CAP bytes over the air so far */
	uint8_t		 b[ATT_MTU_MAX];
};

struct node_link {
	const struct node_conf	*conf;
	int			 simfd;		/* the sim directory */
	char			 sock_name[32];
	char			 adv_name[32];
	uint8_t			 bd[6];		/* most significant first */
	bool			 random;
	char			 name[32];	/* GAP device name */

	/* The model's parameters. */
	uint64_t		 interval_ns;
	uint32_t		 pdus;
	uint32_t		 data_length;
	bool			 phy2m;
	bool			 mic;
	uint16_t		 mtu_max;
	uint32_t		 buffers;
	bool			 need_enc;
	uint32_t		 supervision_ms;
	uint32_t		 adv_delay_ms;
	uint64_t		 drop_at;
	uint32_t		 drop_every;

	int			 lfd;		/* listening socket */
	int			 cfd;		/* the connection, or -1 */
	int			 tfd;		/* connection events */
	int			 afd;		/* one-shot: advertise, drop */
	int			 efd;		/* frames wait for upnode */
	enum ble_st		 st;

	/* The connection. */
	uint16_t		 mtu;		/* ATT_MTU */
	bool			 mtu_done;
	bool			 on_reply;	/* CCCDs */
	bool			 on_credit;
	uint32_t		 consumed;	/* frames given to upnode */
	uint32_t		 told;		/* last Credit value sent */
	uint32_t		 conn_writes;
	bool			 cur_has;	/* a gateway PDU on the air */
	uint16_t		 cur_len;	/* its ATT bytes */
	uint16_t		 cur_sent;	/* L2CAP bytes delivered */
	uint8_t			 cur[ATT_MTU_MAX + 1];
	struct txpdu		 txq[TXQ_MAX];
	unsigned int		 txh, txn;
	uint8_t			 credit_pdu[7];
	bool			 credit_due;

	/* Data writes received, waiting for upnode: `buffers' slots. */
	uint8_t			*rxq;
	uint16_t		*rxlen;
	uint32_t		 rxh, rxn;

	/* Counters (logged at close). */
	uint64_t		 writes;	/* Data writes, node's life */
	uint64_t		 events;
	uint64_t		 ll_m;		/* LL PDUs with data, central */
	uint64_t		 ll_s;		/* ... peripheral */
	uint64_t		 busy_ns;	/* air time of all exchanges */
	uint64_t		 overruns;
	uint64_t		 bad;
	uint64_t		 connections;
	uint64_t		 drops;
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const char *
check_uint(const char *v, unsigned long long lo, unsigned long long hi,
    unsigned long long step, const char *why)
{
	unsigned long long n;
	char		*end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
	    n < lo || n > hi || (step > 1 && n % step != 0))
		return (why);
	return (NULL);
}

static const char *
chk_dir(const char *v)
{
	if (v[0] != '/' || strlen(v) > 80)
		return ("an absolute path of at most 80 characters");
	return (NULL);
}

static int
parse_bd(const char *v, uint8_t bd[6])
{
	unsigned int	 b[6];
	char		 c;
	int		 i;

	if (strlen(v) != 17 || sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0],
	    &b[1], &b[2], &b[3], &b[4], &b[5], &c) != 6)
		return (-1);
	for (i = 0; i < 6; i++) {
		if (v[3 * i] == '+' || v[3 * i] == '-' || v[3 * i] == ' ' ||
		    v[3 * i + 1] == ':')
			return (-1);
		bd[i] = (uint8_t)b[i];
	}
	return (0);
}

static const char *
chk_addr(const char *v)
{
	uint8_t	 bd[6];

	if (strcmp(v, "auto") == 0)
		return (NULL);
	if (parse_bd(v, bd) == -1)
		return ("AA:BB:CC:DD:EE:FF or auto");
	return (NULL);
}

static const char *
chk_mtu(const char *v)
{
	return (check_uint(v, ATT_MTU_MIN, ATT_MTU_MAX, 1, "23 to 517"));
}

static const char *
chk_interval(const char *v)
{
	return (check_uint(v, 7500, 4000000, 1250,
	    "7500 to 4000000 in steps of 1250"));
}

static const char *
chk_pdus(const char *v)
{
	return (check_uint(v, 1, 1000, 1, "1 to 1000"));
}

static const char *
chk_dl(const char *v)
{
	return (check_uint(v, 27, 251, 1, "27 to 251"));
}

static const char *
chk_phy(const char *v)
{
	return (strcmp(v, "1M") == 0 || strcmp(v, "2M") == 0 ? NULL :
	    "1M or 2M");
}

static const char *
chk_bool(const char *v)
{
	return (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0 ? NULL :
	    "yes or no");
}

static const char *
chk_buffers(const char *v)
{
	return (check_uint(v, 1, 255, 1, "1 to 255"));
}

static const char *
chk_ms(const char *v)
{
	return (check_uint(v, 0, 600000, 1, "0 to 600000"));
}

static const char *
chk_supervision(const char *v)
{
	return (check_uint(v, 100, 32000, 1, "100 to 32000"));
}

static const char *
chk_count(const char *v)
{
	return (check_uint(v, 0, 4000000000ull, 1, "0 to 4000000000"));
}

static const struct node_link_opt ble_options[] = {
	{ "dir", NULL, "the simulated peripherals' directory (the gateway's "
	    "sim_dir)", chk_dir },
	{ "addr", "auto", "the node's address, AA:BB:CC:DD:EE:FF (public), "
	    "or auto: a random static address from the node id", chk_addr },
	{ "mtu", "247", "the ATT MTU it accepts", chk_mtu },
	{ "interval_us", "15000", "connection interval, us", chk_interval },
	{ "pdus", "6", "PDUs per connection event, each way (what the "
	    "controllers allow)", chk_pdus },
	{ "data_length", "251", "LL data length, bytes (27 without DLE)",
	    chk_dl },
	{ "phy", "2M", "PHY: 1M or 2M", chk_phy },
	{ "mic", "no", "count a 4-byte MIC per PDU (an encrypted link's "
	    "timing)", chk_bool },
	{ "buffers", "16", "receive buffers: the credit window, frames",
	    chk_buffers },
	{ "require_encryption", "no", "refuse CCCD writes on an unencrypted "
	    "link (ATT error 0x0f)", chk_bool },
	{ "supervision_ms", "1000", "silence before a lost connection "
	    "closes", chk_supervision },
	{ "adv_delay_ms", "100", "from boot or disconnect to advertising",
	    chk_ms },
	{ "drop_at", "0", "fault: lose the connection once, at the Nth Data "
	    "write of the node's life (0 = never)", chk_count },
	{ "drop_every", "0", "fault: lose every connection after N Data "
	    "writes on it (0 = never)", chk_count },
	{ NULL, NULL, NULL, NULL }
};

static unsigned long long
opt_u(const struct node_conf *conf, const char *key)
{
	return (strtoull(node_conf_link_opt(conf, key), NULL, 10));
}

static bool
opt_yes(const struct node_conf *conf, const char *key)
{
	return (strcmp(node_conf_link_opt(conf, key), "yes") == 0);
}

/* ------------------------------------------------------------------ */
/* Timers and advertising                                               */

static void
timer_set(int fd, uint64_t first_ns, uint64_t period_ns)
{
	struct itimerspec	 it;

	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)(first_ns / 1000000000ull);
	it.it_value.tv_nsec = (long)(first_ns % 1000000000ull);
	if (first_ns != 0 && it.it_value.tv_sec == 0 &&
	    it.it_value.tv_nsec == 0)
		it.it_value.tv_nsec = 1;
	it.it_interval.tv_sec = (time_t)(period_ns / 1000000000ull);
	it.it_interval.tv_nsec = (long)(period_ns % 1000000000ull);
	(void)timerfd_settime(fd, 0, &it, NULL);
}

static uint64_t
timer_read(int fd)
{
	uint64_t	 n;

	if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return (0);
	return (n);
}

/*
 * The advertising report (an HCI LE Advertising Report entry): ADV_IND,
 * the address, flags (LE General Discoverable, no BR/EDR) and the
 * complete list of 128-bit service UUIDs, RSSI -50 dBm.
 */
static void
adv_start(struct node_link *l)
{
	uint8_t		 b[40];
	size_t		 n = 0, d;
	int		 fd, i;
	char		 tmp[40];

	b[n++] = 0x00;
	b[n++] = l->random ? 0x01 : 0x00;
	for (i = 5; i >= 0; i--)
		b[n++] = l->bd[i];
	d = n++;
	b[n++] = 2;
	b[n++] = 0x01;
	b[n++] = 0x06;
	b[n++] = 17;
	b[n++] = 0x07;
	memcpy(b + n, uuid_service, 16);
	n += 16;
	b[d] = (uint8_t)(n - d - 1);
	b[n++] = (uint8_t)(int8_t)-50;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", l->adv_name);
	fd = openat(l->simfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1 || write(fd, b, n) != (ssize_t)n ||
	    renameat(l->simfd, tmp, l->simfd, l->adv_name) == -1) {
		up_logf(UP_LOG_WARN, "ble: advertising report %s: %s",
		    l->adv_name, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	close(fd);
	l->st = ST_ADVERTISING;
	up_logf(UP_LOG_DEBUG, "ble: advertising");
}

static void
adv_stop(struct node_link *l)
{
	(void)unlinkat(l->simfd, l->adv_name, 0);
}

/* Not connected: advertise after adv_delay_ms. */
static void
go_quiet(struct node_link *l)
{
	adv_stop(l);
	l->st = ST_QUIET;
	timer_set(l->afd, (uint64_t)l->adv_delay_ms * 1000000ull, 0);
}

/* ------------------------------------------------------------------ */
/* The connection                                                       */

static void
rx_signal(struct node_link *l, bool on)
{
	uint64_t	 v = 1;

	if (on)
		(void)write(l->efd, &v, sizeof(v));
	else
		(void)read(l->efd, &v, sizeof(v));
}

static void
conn_reset(struct node_link *l)
{
	l->mtu = ATT_MTU_MIN;
	l->mtu_done = false;
	l->on_reply = l->on_credit = false;
	l->consumed = 0;
	l->told = l->buffers;
	l->conn_writes = 0;
	l->cur_has = false;
	l->txh = l->txn = 0;
	l->credit_due = false;
	/* Frames received but not yet given to upnode are the node's. */
}

static void
conn_close(struct node_link *l, const char *why)
{
	if (l->cfd == -1)
		return;
	up_logf(UP_LOG_INFO, "ble: disconnected (%s)", why);
	close(l->cfd);
	l->cfd = -1;
	timer_set(l->tfd, 0, 0);
	conn_reset(l);
	go_quiet(l);
}

/* Fault: the link is lost; the node notices nothing until it times out. */
static void
conn_drop(struct node_link *l, const char *why)
{
	up_logf(UP_LOG_INFO, "ble: connection lost (%s), supervision timeout "
	    "in %u ms", why, l->supervision_ms);
	l->drops++;
	l->st = ST_SILENT;
	timer_set(l->tfd, 0, 0);
	timer_set(l->afd, (uint64_t)l->supervision_ms * 1000000ull, 0);
}

static void
accept_one(struct node_link *l)
{
	int	 fd;

	while ((fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if (l->st != ST_ADVERTISING || l->cfd != -1) {
			/* Not connectable now: a real central would time
			 * out; this one hears the refusal at once. */
			close(fd);
			continue;
		}
		l->cfd = fd;
		l->st = ST_CONNECTED;
		l->connections++;
		adv_stop(l);
		conn_reset(l);
		timer_set(l->tfd, l->interval_ns, l->interval_ns);
		up_logf(UP_LOG_INFO, "ble: connected");
	}
}

/* ------------------------------------------------------------------ */
/* The ATT server                                                       */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t
get16(const uint8_t *p)
{
	return ((uint16_t)(p[0] | p[1] << 8));
}

static int
tx_push(struct node_link *l, const uint8_t *pdu, size_t len)
{
	struct txpdu	*t;

	if (l->txn == TXQ_MAX || len > l->mtu)
		return (-1);
	t = &l->txq[(l->txh + l->txn) % TXQ_MAX];
	memcpy(t->b, pdu, len);
	t->len = (uint16_t)len;
	t->sent = 0;
	l->txn++;
	return (0);
}

static void
att_error(struct node_link *l, uint8_t req, uint16_t h, uint8_t code)
{
	uint8_t	 b[5];

	b[0] = OP_ERROR;
	b[1] = req;
	put16(b + 2, h);
	b[4] = code;
	(void)tx_push(l, b, sizeof(b));
}

static uint32_t
credit_value(const struct node_link *l)
{
	return (l->consumed + l->buffers);
}

/* An attribute's value; returns its length (at most cap). */
static size_t
attr_value(const struct node_link *l, const struct attr *a, uint8_t *v,
    size_t cap)
{
	uint8_t		 b[32];
	size_t		 n = 0;
	uint32_t	 c;

	switch (a->kind) {
	case A_GAP:
		put16(b, 0x1800);
		n = 2;
		break;
	case A_UP:
		memcpy(b, uuid_service, 16);
		n = 16;
		break;
	case A_NAME_DECL:
		b[0] = 0x02;		/* read */
		put16(b + 1, 0x0003);
		put16(b + 3, 0x2a00);
		n = 5;
		break;
	case A_NAME:
		n = strlen(l->name);
		memcpy(b, l->name, n);
		break;
	case A_DATA_DECL:
		b[0] = 0x04;		/* write without response */
		put16(b + 1, H_DATA);
		memcpy(b + 3, uuid_data, 16);
		n = 19;
		break;
	case A_REPLY_DECL:
		b[0] = 0x10;		/* notify */
		put16(b + 1, H_REPLY);
		memcpy(b + 3, uuid_reply, 16);
		n = 19;
		break;
	case A_CREDIT_DECL:
		b[0] = 0x12;		/* read, notify */
		put16(b + 1, H_CREDIT);
		memcpy(b + 3, uuid_credit, 16);
		n = 19;
		break;
	case A_CREDIT:
		c = credit_value(l);
		b[0] = (uint8_t)c;
		b[1] = (uint8_t)(c >> 8);
		b[2] = (uint8_t)(c >> 16);
		b[3] = (uint8_t)(c >> 24);
		n = 4;
		break;
	case A_REPLY_CCCD:
		put16(b, l->on_reply ? 1 : 0);
		n = 2;
		break;
	case A_CREDIT_CCCD:
		put16(b, l->on_credit ? 1 : 0);
		n = 2;
		break;
	case A_DATA:
	case A_REPLY:
		n = 0;
		break;
	}
	if (n > cap)
		n = cap;
	memcpy(v, b, n);
	return (n);
}

static const struct attr *
attr_find(uint16_t h)
{
	size_t	 i;

	for (i = 0; i < NATTRS; i++)
		if (attrs[i].handle == h)
			return (&attrs[i]);
	return (NULL);
}

/* Does the attribute's type equal the request's 2- or 16-byte UUID? */
static bool
type_is(const struct attr *a, const uint8_t *u, size_t ulen)
{
	if (ulen == 2)
		return (a->type16 != 0 && a->type16 == get16(u));
	return (a->type16 == 0 && memcmp(a->type128, u, 16) == 0);
}

static void
att_find_info(struct node_link *l, const uint8_t *p, size_t len)
{
	uint8_t		 b[ATT_MTU_MAX];
	uint16_t	 s, e;
	size_t		 i, n = 2, el = 0;

	if (len != 5)
		return (att_error(l, p[0], 0, E_INVALID_PDU));
	s = get16(p + 1);
	e = get16(p + 3);
	if (s == 0 || s > e)
		return (att_error(l, p[0], s, E_INVALID_HANDLE));
	for (i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];

		if (a->handle < s || a->handle > e)
			continue;
		if (el == 0) {
			el = a->type16 != 0 ? 4 : 18;
			b[1] = a->type16 != 0 ? 1 : 2;
		}
		if ((a->type16 != 0 ? 4u : 18u) != el || n + el > l->mtu)
			break;
		put16(b + n, a->handle);
		if (el == 4)
			put16(b + n + 2, a->type16);
		else
			memcpy(b + n + 2, a->type128, 16);
		n += el;
	}
	if (el == 0)
		return (att_error(l, p[0], s, E_NOT_FOUND));
	b[0] = OP_FIND_INFO_RSP;
	(void)tx_push(l, b, n);
}

static void
att_find_type(struct node_link *l, const uint8_t *p, size_t len)
{
	uint8_t		 b[ATT_MTU_MAX], v[32];
	uint16_t	 s, e;
	size_t		 i, n = 1, vl;

	if (len < 7)
		return (att_error(l, p[0], 0, E_INVALID_PDU));
	s = get16(p + 1);
	e = get16(p + 3);
	if (s == 0 || s > e)
		return (att_error(l, p[0], s, E_INVALID_HANDLE));
	for (i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];

		if (a->handle < s || a->handle > e || a->type16 == 0 ||
		    a->type16 != get16(p + 5))
			continue;
		vl = attr_value(l, a, v, sizeof(v));
		if (vl != len - 7 || memcmp(v, p + 7, vl) != 0)
			continue;
		if (n + 4 > l->mtu)
			break;
		put16(b + n, a->handle);
		put16(b + n + 2, a->group_end != 0 ? a->group_end :
		    a->handle);
		n += 4;
	}
	if (n == 1)
		return (att_error(l, p[0], s, E_NOT_FOUND));
	b[0] = OP_FIND_TYPE_RSP;
	(void)tx_push(l, b, n);
}

/* Read By Type and Read By Group Type: entries of one length. */
static void
att_read_type(struct node_link *l, const uint8_t *p, size_t len)
{
	uint8_t		 b[ATT_MTU_MAX], v[32];
	uint16_t	 s, e;
	size_t		 i, n = 2, el = 0, vl, head;
	bool		 group = p[0] == OP_READ_GROUP;

	if (len != 7 && len != 21)
		return (att_error(l, p[0], 0, E_INVALID_PDU));
	s = get16(p + 1);
	e = get16(p + 3);
	if (s == 0 || s > e)
		return (att_error(l, p[0], s, E_INVALID_HANDLE));
	if (group && (len != 7 || get16(p + 5) != 0x2800))
		return (att_error(l, p[0], s, E_UNSUPP_GROUP));
	head = group ? 4 : 2;
	for (i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];

		if (a->handle < s || a->handle > e ||
		    !type_is(a, p + 5, len - 5))
			continue;
		vl = attr_value(l, a, v, sizeof(v));
		if (el == 0)
			el = head + vl;
		if (head + vl != el || n + el > l->mtu)
			break;
		put16(b + n, a->handle);
		if (group)
			put16(b + n + 2, a->group_end);
		memcpy(b + n + head, v, vl);
		n += el;
	}
	if (el == 0)
		return (att_error(l, p[0], s, E_NOT_FOUND));
	b[0] = group ? OP_READ_GROUP_RSP : OP_READ_TYPE_RSP;
	b[1] = (uint8_t)el;
	(void)tx_push(l, b, n);
}

static void
att_read(struct node_link *l, const uint8_t *p, size_t len)
{
	const struct attr	*a;
	uint8_t			 b[ATT_MTU_MAX];
	size_t			 n;

	if (len != 3)
		return (att_error(l, p[0], 0, E_INVALID_PDU));
	if ((a = attr_find(get16(p + 1))) == NULL)
		return (att_error(l, p[0], get16(p + 1), E_INVALID_HANDLE));
	if (a->kind == A_DATA || a->kind == A_REPLY)
		return (att_error(l, p[0], a->handle, E_READ_NOT_PERM));
	b[0] = OP_READ_RSP;
	n = attr_value(l, a, b + 1, (size_t)l->mtu - 1);
	(void)tx_push(l, b, n + 1);
}

static void
att_write_req(struct node_link *l, const uint8_t *p, size_t len)
{
	const struct attr	*a;
	uint8_t			 rsp = OP_WRITE_RSP;
	uint16_t		 v;

	if (len < 3)
		return (att_error(l, p[0], 0, E_INVALID_PDU));
	if ((a = attr_find(get16(p + 1))) == NULL)
		return (att_error(l, p[0], get16(p + 1), E_INVALID_HANDLE));
	if (a->kind != A_REPLY_CCCD && a->kind != A_CREDIT_CCCD)
		return (att_error(l, p[0], a->handle, E_WRITE_NOT_PERM));
	if (len != 5)
		return (att_error(l, p[0], a->handle, E_VALUE_LEN));
	/* The simulated link is never encrypted. */
	if (l->need_enc)
		return (att_error(l, p[0], a->handle, E_ENCRYPTION));
	v = get16(p + 3);
	if (a->kind == A_REPLY_CCCD)
		l->on_reply = (v & 1) != 0;
	else {
		l->on_credit = (v & 1) != 0;
		/* The first notification tells the whole window. */
		l->told = credit_value(l) - 1;
	}
	(void)tx_push(l, &rsp, 1);
}

/* A Data write: one UP frame into the receive buffers. */
static void
att_data(struct node_link *l, const uint8_t *p, size_t len)
{
	uint32_t	 i;
	char		 why[64];

	if (len < 4 || get16(p + 1) != H_DATA) {
		l->bad++;
		return;
	}
	l->writes++;
	l->conn_writes++;
	if (l->rxn == l->buffers) {
		/* The gateway wrote past its credit. */
		if (l->overruns++ == 0)
			up_logf(UP_LOG_WARN, "ble: Data write with no buffer "
			    "free (past the credit): dropped");
		return;
	}
	i = (l->rxh + l->rxn) % l->buffers;
	memcpy(l->rxq + (size_t)i * (l->mtu_max - 3), p + 3, len - 3);
	l->rxlen[i] = (uint16_t)(len - 3);
	if (l->rxn++ == 0)
		rx_signal(l, true);
	if (l->drop_at != 0 && l->writes == l->drop_at) {
		snprintf(why, sizeof(why), "drop_at=%llu",
		    (unsigned long long)l->drop_at);
		conn_drop(l, why);
	} else if (l->drop_every != 0 && l->conn_writes % l->drop_every ==
	    0) {
		snprintf(why, sizeof(why), "drop_every=%u", l->drop_every);
		conn_drop(l, why);
	}
}

/* One ATT PDU from the gateway, complete (its last LL PDU arrived). */
static void
att_input(struct node_link *l, const uint8_t *p, size_t len)
{
	uint8_t		 b[3];
	uint16_t	 m;

	if (len == 0 || len > l->mtu) {
		l->bad++;	/* Vol 3 Part F §3.2.9: longer than ATT_MTU */
		return;
	}
	switch (p[0]) {
	case OP_MTU_REQ:
		if (len != 3)
			return (att_error(l, p[0], 0, E_INVALID_PDU));
		m = get16(p + 1);
		b[0] = OP_MTU_RSP;
		put16(b + 1, l->mtu_max);
		(void)tx_push(l, b, 3);
		/* Once per connection (§3.4.2.2); the response goes at 23. */
		if (!l->mtu_done) {
			l->mtu_done = true;
			if (m < ATT_MTU_MIN)
				m = ATT_MTU_MIN;
			l->mtu = m < l->mtu_max ? m : l->mtu_max;
		}
		return;
	case OP_FIND_INFO:
		return (att_find_info(l, p, len));
	case OP_FIND_TYPE:
		return (att_find_type(l, p, len));
	case OP_READ_TYPE:
	case OP_READ_GROUP:
		return (att_read_type(l, p, len));
	case OP_READ:
		return (att_read(l, p, len));
	case OP_WRITE_REQ:
		return (att_write_req(l, p, len));
	case OP_WRITE_CMD:
		return (att_data(l, p, len));
	default:
		if (p[0] & 0x40)
			l->bad++;	/* a command we do not know */
		else if ((p[0] & 1) == 0)
			att_error(l, p[0], 0, E_NOT_SUPPORTED);
		/* responses and confirmations: we asked for nothing */
		return;
	}
}

/* ------------------------------------------------------------------ */
/* The link model                                                       */

/* Air time of one LL PDU with `payload' bytes, ns. */
static uint64_t
pdu_ns(const struct node_link *l, uint32_t payload)
{
	uint64_t	 bytes;

	bytes = (l->phy2m ? 2 : 1) + 4 + 2 + payload + 3 +
	    (l->mic && payload > 0 ? 4 : 0);
	return (bytes * 8 * (l->phy2m ? 500 : 1000));
}

/* LL payload of the central's next PDU (0: empty), reading as needed. */
static int
central_next(struct node_link *l, uint32_t *len)
{
	ssize_t		 n;
	uint32_t	 left;

	*len = 0;
	if (!l->cur_has) {
		n = recv(l->cfd, l->cur, sizeof(l->cur), MSG_DONTWAIT);
		if (n == 0)
			return (-1);	/* the gateway disconnected */
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return (0);
			return (-1);
		}
		l->cur_has = true;
		l->cur_len = (uint16_t)n;
		l->cur_sent = 0;
	}
	left = (uint32_t)l->cur_len + L2CAP_HDR - l->cur_sent;
	*len = left < l->data_length ? left : l->data_length;
	return (0);
}

static void
credit_check(struct node_link *l)
{
	uint32_t	 c = credit_value(l);

	if (!l->on_credit || l->credit_due || c == l->told)
		return;
	l->credit_pdu[0] = OP_NOTIFY;
	put16(l->credit_pdu + 1, H_CREDIT);
	l->credit_pdu[3] = (uint8_t)c;
	l->credit_pdu[4] = (uint8_t)(c >> 8);
	l->credit_pdu[5] = (uint8_t)(c >> 16);
	l->credit_pdu[6] = (uint8_t)(c >> 24);
	l->credit_due = true;
	l->told = c;
}

/* LL payload of the peripheral's next PDU (0: empty). */
static uint32_t
periph_next(const struct node_link *l)
{
	uint32_t	 left;

	if (l->credit_due)
		return (sizeof(l->credit_pdu) + L2CAP_HDR);
	if (l->txn == 0)
		return (0);
	left = (uint32_t)l->txq[l->txh].len + L2CAP_HDR -
	    l->txq[l->txh].sent;
	return (left < l->data_length ? left : l->data_length);
}

/* The peripheral's PDU went: a whole ATT PDU reaches the gateway. */
static int
periph_sent(struct node_link *l, uint32_t len)
{
	struct txpdu	*t;
	const uint8_t	*p;
	size_t		 n;

	if (l->credit_due) {
		p = l->credit_pdu;
		n = sizeof(l->credit_pdu);
	} else {
		t = &l->txq[l->txh];
		t->sent = (uint16_t)(t->sent + len);
		if (t->sent < t->len + L2CAP_HDR)
			return (0);
		p = t->b;
		n = t->len;
	}
	if (send(l->cfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return (1);	/* the gateway is not reading */
		return (-1);
	}
	if (l->credit_due)
		l->credit_due = false;
	else {
		l->txh = (l->txh + 1) % TXQ_MAX;
		l->txn--;
	}
	return (0);
}

/*
 * One connection event.  Returns -1 when the gateway went away.
 * Exchanges: the central's PDU, T_IFS, ours, T_IFS; on while either
 * side has data (the MD bit), at most `pdus', within the interval.
 */
static int
model_event(struct node_link *l)
{
	uint64_t	 t = 0, d;
	uint32_t	 k, m, s;
	int		 rc;

	l->events++;
	credit_check(l);
	for (k = 0; k < l->pdus && l->st == ST_CONNECTED; k++) {
		if (central_next(l, &m) == -1)
			return (-1);
		s = periph_next(l);
		d = pdu_ns(l, m) + T_IFS_NS + pdu_ns(l, s) + T_IFS_NS;
		if (k > 0 && t + d > l->interval_ns)
			break;
		t += d;
		if (m > 0) {
			l->ll_m++;
			l->cur_sent = (uint16_t)(l->cur_sent + m);
			if (l->cur_sent == l->cur_len + L2CAP_HDR) {
				l->cur_has = false;
				att_input(l, l->cur, l->cur_len);
			}
		}
		if (s > 0) {
			l->ll_s++;
			if ((rc = periph_sent(l, s)) == -1)
				return (-1);
			if (rc == 1)
				break;
		}
		if (m == 0 && s == 0)
			break;
	}
	l->busy_ns += t;
	return (0);
}

/* ------------------------------------------------------------------ */
/* The node link ops                                                    */

static void	 ble_close(struct node_link *);

static struct node_link *
ble_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link	*l;
	struct sockaddr_un	 sun;
	const char		*dir = node_conf_link_opt(conf, "dir");
	const char		*addr = node_conf_link_opt(conf, "addr");
	char			 bd[18];
	int			 i;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = node_cause("out of memory");
		return (NULL);
	}
	l->conf = conf;
	l->simfd = l->lfd = l->cfd = l->tfd = l->afd = l->efd = -1;
	if (strcmp(addr, "auto") == 0) {
		/* Random static: the two top bits set (Vol 6 Part B §1.3). */
		l->bd[0] = 0xc0;
		for (i = 1; i < 6; i++)
			l->bd[i] = (uint8_t)(conf->id >> (8 * (5 - i)));
		l->random = true;
	} else
		(void)parse_bd(addr, l->bd);
	snprintf(bd, sizeof(bd), "%02X:%02X:%02X:%02X:%02X:%02X", l->bd[0],
	    l->bd[1], l->bd[2], l->bd[3], l->bd[4], l->bd[5]);
	snprintf(l->sock_name, sizeof(l->sock_name), "%s.sock", bd);
	snprintf(l->adv_name, sizeof(l->adv_name), "%s.adv", bd);
	snprintf(l->name, sizeof(l->name), "upnode-%llx",
	    (unsigned long long)conf->id);

	l->interval_ns = opt_u(conf, "interval_us") * 1000ull;
	l->pdus = (uint32_t)opt_u(conf, "pdus");
	l->data_length = (uint32_t)opt_u(conf, "data_length");
	l->phy2m = strcmp(node_conf_link_opt(conf, "phy"), "2M") == 0;
	l->mic = opt_yes(conf, "mic");
	l->mtu_max = (uint16_t)opt_u(conf, "mtu");
	l->buffers = (uint32_t)opt_u(conf, "buffers");
	l->need_enc = opt_yes(conf, "require_encryption");
	l->supervision_ms = (uint32_t)opt_u(conf, "supervision_ms");
	l->adv_delay_ms = (uint32_t)opt_u(conf, "adv_delay_ms");
	l->drop_at = opt_u(conf, "drop_at");
	l->drop_every = (uint32_t)opt_u(conf, "drop_every");
	l->rxq = calloc(l->buffers, (size_t)l->mtu_max - 3);
	l->rxlen = calloc(l->buffers, sizeof(*l->rxlen));
	if (l->rxq == NULL || l->rxlen == NULL) {
		*cause = node_cause("out of memory");
		goto fail;
	}
	conn_reset(l);

	if ((l->simfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		*cause = node_cause("dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", dir,
	    l->sock_name);
	/* A node that crashed left its socket behind. */
	(void)unlinkat(l->simfd, l->sock_name, 0);
	l->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (l->lfd == -1 || bind(l->lfd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1 || listen(l->lfd, 4) == -1) {
		*cause = node_cause("%s: %s", sun.sun_path, strerror(errno));
		goto fail;
	}
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->afd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->tfd == -1 || l->afd == -1 || l->efd == -1) {
		*cause = node_cause("timerfd/eventfd: %s", strerror(errno));
		goto fail;
	}
	go_quiet(l);
	up_logf(UP_LOG_INFO, "ble: peripheral %s%s in %s: interval %llu us, "
	    "%u PDUs per event, data length %u, %s PHY, ATT MTU %u, %u "
	    "buffers", bd, l->random ? " (random)" : "", dir,
	    (unsigned long long)(l->interval_ns / 1000), l->pdus,
	    l->data_length, l->phy2m ? "2M" : "1M", l->mtu_max, l->buffers);
	return (l);
fail:
	ble_close(l);
	return (NULL);
}

static void
ble_close(struct node_link *l)
{
	if (l == NULL)
		return;
	if (l->events > 0 || l->connections > 0)
		up_logf(UP_LOG_INFO, "ble: %llu connections, %llu events, "
		    "%llu/%llu LL PDUs with data (central/peripheral), %llu "
		    "Data writes, %llu overruns, %llu bad PDUs, %llu drops",
		    (unsigned long long)l->connections,
		    (unsigned long long)l->events,
		    (unsigned long long)l->ll_m, (unsigned long long)l->ll_s,
		    (unsigned long long)l->writes,
		    (unsigned long long)l->overruns,
		    (unsigned long long)l->bad,
		    (unsigned long long)l->drops);
	if (l->simfd != -1) {
		adv_stop(l);
		if (l->lfd != -1)
			(void)unlinkat(l->simfd, l->sock_name, 0);
		close(l->simfd);
	}
	if (l->lfd != -1)
		close(l->lfd);
	if (l->cfd != -1)
		close(l->cfd);
	if (l->tfd != -1)
		close(l->tfd);
	if (l->afd != -1)
		close(l->afd);
	if (l->efd != -1)
		close(l->efd);
	free(l->rxq);
	free(l->rxlen);
	free(l);
}

static void
ble_caps(const struct node_link *l, struct node_link_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->rx_max = (size_t)l->mtu_max - 3;
	caps->mtu_up = (size_t)l->mtu_max - 3;
	/*
	 * docs/transports/ble.md, "What UP sees": compact by default; the
	 * link layer's CRC-24 is strong enough (no CRC-16); one connection
	 * per node, so its address names it; no boot schedule, since
	 * connections do not collide.
	 */
	caps->flags = NODE_LINK_COMPACT | NODE_LINK_ADDRESSED;
}

static int
ble_pollfds(struct node_link *l, struct pollfd *pfd, int max)
{
	int	 n = 0;

	if (max < 5)
		return (0);
	pfd[n].fd = l->lfd;
	pfd[n++].events = POLLIN;
	pfd[n].fd = l->tfd;
	pfd[n++].events = POLLIN;
	pfd[n].fd = l->afd;
	pfd[n++].events = POLLIN;
	pfd[n].fd = l->efd;
	pfd[n++].events = POLLIN;
	if (l->cfd != -1 && l->st == ST_CONNECTED) {
		/* Only hang-ups: data is read in connection events. */
		pfd[n].fd = l->cfd;
		pfd[n++].events = 0;
	}
	return (n);
}

static ssize_t
ble_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap, struct node_link_src *src)
{
	uint64_t	 n;
	size_t		 len;

	if (pfd->fd == l->lfd)
		accept_one(l);
	else if (pfd->fd == l->tfd) {
		n = timer_read(l->tfd);
		if (n > EVENTS_MAX)
			n = EVENTS_MAX;
		while (n-- > 0 && l->st == ST_CONNECTED)
			if (model_event(l) == -1) {
				conn_close(l, "by the gateway");
				break;
			}
	} else if (pfd->fd == l->afd) {
		if (timer_read(l->afd) > 0) {
			if (l->st == ST_SILENT)
				conn_close(l, "supervision timeout");
			else if (l->st == ST_QUIET)
				adv_start(l);
		}
	} else if (pfd->fd == l->cfd && l->cfd != -1 &&
	    (pfd->revents & (POLLHUP | POLLERR)) && l->st == ST_CONNECTED)
		conn_close(l, "by the gateway");

	if (l->rxn == 0)
		return (0);
	len = l->rxlen[l->rxh];
	if (len > cap)
		len = cap;
	memcpy(buf, l->rxq + (size_t)l->rxh * (l->mtu_max - 3), len);
	l->rxh = (l->rxh + 1) % l->buffers;
	if (--l->rxn == 0)
		rx_signal(l, false);
	l->consumed++;
	src->len = 0;		/* one gateway: the connection */
	return ((ssize_t)len);
}

static int
ble_send(struct node_link *l, const uint8_t *frame, size_t len)
{
	uint8_t		 b[ATT_MTU_MAX];

	if (l->st != ST_CONNECTED || !l->on_reply) {
		up_logf(UP_LOG_DEBUG, "ble: no connection with notifications "
		    "on: frame of %zu bytes not sent", len);
		return (-1);
	}
	if (len + 3 > l->mtu) {
		up_logf(UP_LOG_DEBUG, "ble: frame of %zu bytes exceeds ATT_MTU "
		    "%u - 3: not sent", len, l->mtu);
		return (-1);
	}
	b[0] = OP_NOTIFY;
	put16(b + 1, H_REPLY);
	memcpy(b + 3, frame, len);
	if (tx_push(l, b, len + 3) == -1) {
		up_logf(UP_LOG_DEBUG, "ble: notification queue full");
		return (-1);
	}
	return (0);
}

/*
 * The node rebooted (a new image): its controller reset, so the
 * connection is gone; frames it had not read die with it.
 */
static void
ble_boot(struct node_link *l)
{
	if (l->cfd == -1 && l->st != ST_SILENT)
		return;
	l->rxh = l->rxn = 0;
	rx_signal(l, false);
	if (l->cfd != -1)
		conn_close(l, "the node rebooted");
	else
		go_quiet(l);
}

static int
ble_src_fmt(const struct node_link_src *src, char *buf, size_t len)
{
	return (snprintf(buf, len, "the BLE central") < 0 ? -1 : 0);
}

const struct node_link_ops node_link_ble = {
	.name = "ble",
	.help = "BLE GATT peripheral behind a link model (simulated; the "
	    "gateway's sim_dir)",
	.options = ble_options,
	.open = ble_open,
	.close = ble_close,
	.caps = ble_caps,
	.pollfds = ble_pollfds,
	.recv = ble_recv,
	.send = ble_send,
	.gateway = NULL,
	.boot = ble_boot,
	.src_fmt = ble_src_fmt
};
