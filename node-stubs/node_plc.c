/*
 * node_plc.c: the "plc" node link, a device on the UART of its station's
 * carrier module (docs/upnode.md, "PLC link").
 *
 * A station module (STA) of a State Grid station area hands its device
 * what the concentrator's module forwards to it.  Here the station port
 * speaks 1376.2 frames with the module as the initiating side (the
 * simulator's convention, docs/simulator.md "plc"):
 *  - 13H F1 (PRM 1): an UP frame forwarded to this station.  The frame
 *    the node sends next, within reply_ms, is its answer (13H F1, PRM 0,
 *    the request's sequence number): the module carries it back to the
 *    concentrator in its reply;
 *  - 05H F3 (PRM 1): an UP frame broadcast to every station; confirmed;
 *  - what the node sends otherwise goes as a station event (06H F5, PRM
 *    1), which the module confirms and reports to the concentrator;
 *  - 15H F1 (PRM 1): a block of the file the module distributes (module
 *    offload): file id, attribute (1: the last block), command, total
 *    blocks, block index, length, bytes.  The link holds the latest one
 *    until upnode takes it (oob(): blocks out of band,
 *    docs/up-node-engine.md) and acknowledges it then (15H F1, PRM 0,
 *    the request's sequence number, the block index), so the module
 *    counts a block only once the node has it.  Its offset: index x the
 *    length of any block but the last (they are all that long), and the
 *    package's size less its length for the last one.
 *
 * The UART: node_serial_open() (raw, 9600 8E1 by default, INPCK), read
 * and written without blocking; a partial frame the line left quiet for
 * 20 character times and 250 ms is dropped before the next bytes are
 * read.
 */
#include <sys/types.h>
#include <sys/timerfd.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "q1376.h"
#include "upnode.h"

#define PLC_MSG_MAX		255
#define PLC_BLOCK_MAX		4096	/* a 15H F1 block to a device */

struct node_link {
	int		 fd;		/* -1 while the line is gone */
	int		 tfd;		/* a timer then, to open it again */
	char		*device;
	char		 format[4];
	unsigned int	 baud;
	unsigned int	 char_bits;
	uint64_t	 reply_ms;
	uint16_t	 boot_slots, boot_slot_ms;
	struct q_rx	 rx;
	uint64_t	 last_rx_ms;
	bool		 pending;	/* a 13H F1 waits for our answer */
	uint8_t		 pending_seq;
	uint64_t	 pending_ms;
	uint8_t		 seq;		/* our events */
	uint8_t		 out[2 * Q_MAX];
	size_t		 outlen;
	/* The latest 15H F1 block, until upnode takes it (oob). */
	struct {
		bool		 full;
		uint8_t		 seq;
		bool		 last;
		uint32_t	 index;
		uint16_t	 len;
		uint8_t		 b[PLC_BLOCK_MAX];
	}		 blk;
	uint32_t	 bsize;		/* a block but the last, 0: not seen */
	uint64_t	 bsize_of;	/* ... of a package this long */
	uint64_t	 blocks_taken;
};

static const char *
plc_check_format(const char *v)
{
	if (strlen(v) != 3 || v[0] < '5' || v[0] > '8' ||
	    strchr("NEO", v[1]) == NULL || (v[2] != '1' && v[2] != '2'))
		return ("not a character format (8E1, 8N1, ...)");
	return (NULL);
}

static const char *
plc_check_baud(const char *v)
{
	char		*end;
	unsigned long	 b = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || node_serial_speed((unsigned int)b) ==
	    B0)
		return ("not a serial bit rate");
	return (NULL);
}

static const char *
plc_check_ms(const char *v)
{
	char		*end;
	unsigned long	 ms = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || ms == 0 || ms > 600000)
		return ("not a time in ms (1-600000)");
	return (NULL);
}

static const char *
plc_check_slots(const char *v)
{
	char		*end;
	unsigned long	 n = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n > 1024)
		return ("not a number of slots (0-1024)");
	return (NULL);
}

static const char *
plc_check_slot_ms(const char *v)
{
	char		*end;
	unsigned long	 ms = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || ms > 60000)
		return ("not a slot in ms (0-60000)");
	return (NULL);
}

static const struct node_link_opt plc_options[] = {
	{ "device", NULL, "the UART of the station's module (a pty of "
	    "upsim)", NULL },
	{ "baud", "9600", "its rate", plc_check_baud },
	{ "format", "8E1", "its character format", plc_check_format },
	{ "reply_ms", "300", "what the node sends this soon after a "
	    "forwarded frame is its answer", plc_check_ms },
	{ "boot_slots", "32", "a boot ANNOUNCE or RESULT waits a random "
	    "one of this many slots (0: at once)", plc_check_slots },
	{ "boot_slot_ms", "500", "a slot, ms: about one station event "
	    "through the module and its confirm", plc_check_slot_ms },
	{ NULL, NULL, NULL, NULL }
};

static uint64_t
plc_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static struct node_link *
plc_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link *l;
	const char	*dev = node_conf_link_opt(conf, "device");
	const char	*fmt = node_conf_link_opt(conf, "format");

	if (dev == NULL) {
		*cause = node_cause("plc: device=PATH is required");
		return (NULL);
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = node_cause("plc: out of memory");
		return (NULL);
	}
	l->baud = (unsigned int)strtoul(node_conf_link_opt(conf, "baud"),
	    NULL, 10);
	l->char_bits = 1 + (unsigned int)(fmt[0] - '0') + (fmt[1] != 'N') +
	    (unsigned int)(fmt[2] - '0');
	l->reply_ms = strtoull(node_conf_link_opt(conf, "reply_ms"), NULL,
	    10);
	l->boot_slots = (uint16_t)strtoul(node_conf_link_opt(conf,
	    "boot_slots"), NULL, 10);
	l->boot_slot_ms = (uint16_t)strtoul(node_conf_link_opt(conf,
	    "boot_slot_ms"), NULL, 10);
	q_rx_init(&l->rx);
	l->tfd = -1;
	snprintf(l->format, sizeof(l->format), "%s", fmt);
	if ((l->device = strdup(dev)) == NULL ||
	    (l->fd = node_serial_open(dev, l->baud, fmt, cause)) == -1) {
		free(l->device);
		free(l);
		return (NULL);
	}
	return (l);
}

/*
 * The line is gone (the module's side hung up: a pty whose master
 * closed reads EIO): close it and try to open it again every second,
 * rather than returning an fd that would report forever.
 */
static void
plc_lost(struct node_link *l)
{
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };

	up_logf(UP_LOG_WARN, "plc: %s: the line is gone; opening it again "
	    "every second", l->device);
	close(l->fd);
	l->fd = -1;
	l->outlen = 0;
	l->pending = false;
	q_rx_init(&l->rx);
	if (l->tfd == -1 && (l->tfd = timerfd_create(CLOCK_MONOTONIC,
	    TFD_NONBLOCK | TFD_CLOEXEC)) != -1)
		(void)timerfd_settime(l->tfd, 0, &its, NULL);
}

static void
plc_reopen(struct node_link *l)
{
	uint64_t	 n;
	char		*cause = NULL;

	(void)read(l->tfd, &n, sizeof(n));
	if ((l->fd = node_serial_open(l->device, l->baud, l->format,
	    &cause)) == -1) {
		free(cause);
		return;
	}
	up_logf(UP_LOG_INFO, "plc: %s: open again", l->device);
	close(l->tfd);
	l->tfd = -1;
}

static void
plc_close(struct node_link *l)
{
	if (l == NULL)
		return;
	if (l->fd != -1)
		close(l->fd);
	if (l->tfd != -1)
		close(l->tfd);
	free(l->device);
	free(l);
}

static void
plc_caps(const struct node_link *l, struct node_link_caps *c)
{
	memset(c, 0, sizeof(*c));
	c->rx_max = PLC_MSG_MAX;
	c->mtu_up = PLC_MSG_MAX;
	/*
	 * UP's compact form by default; the frame's 8-bit sum is no frame
	 * check, so compact frames carry UP's CRC-16; the station address
	 * names the node (docs/up-protocol.md §11.1, §11.3).
	 */
	c->flags = NODE_LINK_BROADCAST | NODE_LINK_HALF_DUPLEX |
	    NODE_LINK_COMPACT | NODE_LINK_WEAK_CHECK | NODE_LINK_ADDRESSED;
	c->boot_slots = l->boot_slots;
	c->boot_slot_ms = l->boot_slot_ms;
}

static int
plc_pollfds(struct node_link *l, struct pollfd *pfd, int max)
{
	if (max < 1)
		return (0);
	if (l->fd == -1) {
		pfd[0].fd = l->tfd;
		pfd[0].events = POLLIN;
		return (l->tfd != -1 ? 1 : 0);
	}
	pfd[0].fd = l->fd;
	pfd[0].events = (short)(POLLIN | (l->outlen > 0 ? POLLOUT : 0));
	return (1);
}

static void
plc_flush(struct node_link *l)
{
	ssize_t		 n;

	while (l->outlen > 0) {
		n = write(l->fd, l->out, l->outlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		memmove(l->out, l->out + n, l->outlen - (size_t)n);
		l->outlen -= (size_t)n;
	}
}

static int
plc_frame_out(struct node_link *l, uint8_t c, uint8_t seq, uint8_t afn,
    uint16_t fn, const uint8_t *du, size_t dulen)
{
	struct q_frame	 f;
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = c;
	f.r[5] = seq;
	f.afn = afn;
	f.fn = fn;
	f.data = du;
	f.len = dulen;
	if ((n = q_encode(&f, l->out + l->outlen, sizeof(l->out) -
	    l->outlen)) < 0) {
		errno = ENOBUFS;
		return (-1);
	}
	l->outlen += (size_t)n;
	plc_flush(l);
	return (0);
}

/* One whole frame from the module: a frame for the node, or 0. */
static ssize_t
plc_frame_in(struct node_link *l, const uint8_t *p, size_t len,
    uint8_t *buf, size_t cap)
{
	struct q_frame	 f;
	const char	*why;
	uint8_t		 du[8];
	size_t		 off = 0, mlen, n;
	bool		 ok = true;

	if (q_decode(p, len, &f, &why) != 0 || (f.c & Q_DIR_UP) ||
	    !(f.c & Q_PRM))
		return (0);	/* a confirm of our event, or garbage */
	switch (f.afn << 8 | (f.fn & 0xff)) {
	case 0x13 << 8 | 1:
		/* protocol, delay flag, attached n, n addresses, length */
		(void)q_get(f.data, f.len, &off, 2, &ok);
		n = q_get(f.data, f.len, &off, 1, &ok);
		off += 6 * n;
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || off > f.len || f.len - off != mlen || mlen == 0 ||
		    mlen > cap)
			return (0);
		memcpy(buf, f.data + off, mlen);
		l->pending = true;
		l->pending_seq = Q_SEQ(&f);
		l->pending_ms = plc_now_ms();
		return ((ssize_t)mlen);
	case 0x05 << 8 | 3:
		/* control word, length, message; confirmed */
		(void)q_put(du, sizeof(du), 0, 1, 4);
		(void)q_put(du, sizeof(du), 4, 0, 2);
		(void)plc_frame_out(l, Q_DIR_UP | Q_COMM_HPLC, Q_SEQ(&f),
		    0x00, 1, du, 6);
		(void)q_get(f.data, f.len, &off, 1, &ok);
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || f.len - off != mlen || mlen == 0 || mlen > cap)
			return (0);
		memcpy(buf, f.data + off, mlen);
		return ((ssize_t)mlen);
	case 0x15 << 8 | 1: {
		/* A block of the module's distribution: see the top. */
		uint32_t	 attr, idx, blen;

		(void)q_get(f.data, f.len, &off, 1, &ok);	/* file id */
		attr = q_get(f.data, f.len, &off, 1, &ok);
		(void)q_get(f.data, f.len, &off, 1, &ok);	/* command */
		(void)q_get(f.data, f.len, &off, 2, &ok);	/* total */
		idx = q_get(f.data, f.len, &off, 4, &ok);
		blen = q_get(f.data, f.len, &off, 2, &ok);
		if (!ok || f.len - off != blen || blen == 0 ||
		    blen > PLC_BLOCK_MAX)
			return (0);
		l->blk.full = true;
		l->blk.seq = Q_SEQ(&f);
		l->blk.last = attr == 1;
		l->blk.index = idx;
		l->blk.len = (uint16_t)blen;
		memcpy(l->blk.b, f.data + off, blen);
		return (0);
	}
	}
	return (0);
}

static ssize_t
plc_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap, struct node_link_src *src)
{
	const uint8_t	*p;
	uint8_t		 in[512];
	size_t		 len;
	ssize_t		 n, got;
	uint64_t	 now;
	int		 r;

	src->len = 0;
	if (l->fd == -1) {
		if (pfd->fd == l->tfd)
			plc_reopen(l);
		return (0);
	}
	if (pfd->fd != l->fd)
		return (0);
	if (pfd->revents & POLLOUT)
		plc_flush(l);
	for (;;) {
		while ((r = q_rx_next(&l->rx, &p, &len)) != 0) {
			if (r < 0)
				continue;
			if ((got = plc_frame_in(l, p, len, buf, cap)) > 0)
				return (got);
		}
		n = read(l->fd, in, sizeof(in));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		if (n <= 0) {
			plc_lost(l);
			return (0);
		}
		now = plc_now_ms();
		/* A partial frame from before a pause is not one. */
		if (l->rx.len > l->rx.used && now - l->last_rx_ms >
		    20ULL * l->char_bits * 1000 / l->baud + 250)
			q_rx_stale(&l->rx);
		l->last_rx_ms = now;
		(void)q_rx_feed(&l->rx, in, (size_t)n);
	}
}

static int
plc_send(struct node_link *l, const uint8_t *frame, size_t len)
{
	uint8_t		 du[4 + PLC_MSG_MAX];
	size_t		 o = 0;

	if (len == 0 || len > PLC_MSG_MAX) {
		errno = EMSGSIZE;
		return (-1);
	}
	if (l->fd == -1) {
		errno = EIO;
		return (-1);
	}
	if (l->pending && plc_now_ms() - l->pending_ms <= l->reply_ms) {
		/* The answer to the forwarded frame. */
		l->pending = false;
		o = q_put(du, sizeof(du), o, 0, 2);
		o = q_put(du, sizeof(du), o, 0, 1);
		o = q_put(du, sizeof(du), o, len, 1);
		o = q_put_bytes(du, sizeof(du), o, frame, len);
		return (plc_frame_out(l, Q_DIR_UP | Q_COMM_HPLC,
		    l->pending_seq, 0x13, 1, du, o));
	}
	l->pending = false;
	o = q_put(du, sizeof(du), o, 1, 1);	/* a meter */
	o = q_put(du, sizeof(du), o, 0, 1);	/* transparent */
	o = q_put(du, sizeof(du), o, len, 1);
	o = q_put_bytes(du, sizeof(du), o, frame, len);
	return (plc_frame_out(l, Q_DIR_UP | Q_PRM | Q_COMM_HPLC, ++l->seq,
	    0x06, 5, du, o));
}

static ssize_t
plc_oob(struct node_link *l, uint64_t size, uint64_t *off, uint8_t *buf,
    size_t cap)
{
	uint8_t		 du[4];
	uint64_t	 o;

	if (!l->blk.full || size == 0)
		return (0);
	l->blk.full = false;
	if (size != l->bsize_of) {
		l->bsize = 0;
		l->bsize_of = size;
	}
	if (l->blk.len > cap || l->blk.len > size)
		return (0);
	if (l->blk.last) {
		o = size - l->blk.len;
		if (l->bsize != 0 && o != (uint64_t)l->blk.index * l->bsize)
			return (0);	/* not this package's */
	} else {
		o = (uint64_t)l->blk.index * l->blk.len;
		if (o + l->blk.len > size)
			return (0);
		l->bsize = l->blk.len;
	}
	(void)q_put(du, sizeof(du), 0, l->blk.index, 4);
	(void)plc_frame_out(l, Q_DIR_UP | Q_COMM_HPLC, l->blk.seq, 0x15, 1,
	    du, sizeof(du));
	memcpy(buf, l->blk.b, l->blk.len);
	*off = o;
	if (l->blocks_taken++ == 0)
		up_logf(UP_LOG_INFO, "plc: the module distributes the "
		    "package: blocks of %u bytes out of band",
		    (unsigned int)(l->blk.last ? l->blk.len : l->bsize));
	return ((ssize_t)l->blk.len);
}

const struct node_link_ops node_link_plc = {
	.name = "plc",
	.help = "a device on the UART of its station's carrier module "
	    "(Q/GDW 1376.2 station port; upsim --personality plc)",
	.options = plc_options,
	.open = plc_open,
	.close = plc_close,
	.caps = plc_caps,
	.pollfds = plc_pollfds,
	.recv = plc_recv,
	.send = plc_send,
	.oob = plc_oob
};
