/*
 * test_ble_client.c: the ble transport's ATT client state machine
 * (transports/ble/ble_client.c) over a SOCK_SEQPACKET socketpair.
 *
 * The test plays the peripheral's ATT server by hand on the other end:
 * it reads each PDU the client writes, checks its bytes, and writes the
 * answer a server would (or a wrong one).  The attribute table is the
 * UP service as docs/transports/ble.md lays it out on the simulated node:
 *   0x0010 service, 0x0011/0x0012 Data (write without response),
 *   0x0013/0x0014 Reply (notify) + CCCD 0x0015,
 *   0x0016/0x0017 Credit (read, notify) + CCCD 0x0018, end 0x0018.
 * Everything is synchronous: no event loop, no timers but the ones the
 * test passes in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ble_internal.h"

#define H_SVC		0x0010
#define H_DATA		0x0012
#define H_REPLY		0x0014
#define H_REPLY_CCCD	0x0015
#define H_CREDIT	0x0017
#define H_CREDIT_CCCD	0x0018
#define H_END		0x0018

struct fx {
	int		 srv;		/* the peripheral's end */
	struct ble_conn	*c;
	uint64_t	 now;
	int		 ready;
	int		 frames;
	uint8_t		 frame[600];
	size_t		 frame_len;
	uint64_t	 sent[64];
	int		 nsent;
	int		 room;
	int		 sec_calls;
	int		 sec_answer;	/* what security() returns */
};

static void
cb_ready(void *arg, struct ble_conn *c)
{
	((struct fx *)arg)->ready++;
}

static void
cb_frame(void *arg, struct ble_conn *c, const uint8_t *p, size_t len)
{
	struct fx	*f = arg;

	f->frames++;
	assert_true(len <= sizeof(f->frame));
	memcpy(f->frame, p, len);
	f->frame_len = len;
}

static void
cb_sent(void *arg, struct ble_conn *c, uint64_t cookie)
{
	struct fx	*f = arg;

	assert_true(f->nsent < 64);
	f->sent[f->nsent++] = cookie;
}

static void
cb_room(void *arg, struct ble_conn *c)
{
	((struct fx *)arg)->room++;
}

static int
cb_security(void *arg, struct ble_conn *c, int level)
{
	struct fx	*f = arg;

	f->sec_calls++;
	return (f->sec_answer);
}

static const struct ble_conn_cb cbs = {
	cb_ready, cb_frame, cb_sent, cb_room, cb_security
};

static struct fx *
fx_new(uint16_t mtu, uint32_t queue)
{
	struct fx		*f;
	struct ble_conn_params	 par;
	int			 sv[2];

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK,
	    0, sv), 0);
	f->srv = sv[1];
	memset(&par, 0, sizeof(par));
	par.mtu = mtu;
	par.queue = queue;
	par.att_timeout_ms = 30000;
	par.security = 1;
	f->now = 1000;
	f->c = ble_conn_new(sv[0], &par, &cbs, f);
	assert_non_null(f->c);
	return (f);
}

static void
fx_free(struct fx *f)
{
	ble_conn_free(f->c);
	if (f->srv != -1)
		close(f->srv);
	free(f);
}

/* The client writes what it has; returns ble_conn_tx's answer. */
static int
flush(struct fx *f)
{
	return (ble_conn_tx(f->c, f->now));
}

/* Reads the next PDU the client sent; -1 when there is none. */
static ssize_t
srv_read(struct fx *f, uint8_t *b, size_t cap)
{
	ssize_t	 n;

	flush(f);
	n = recv(f->srv, b, cap, MSG_DONTWAIT);
	if (n == -1)
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	return (n);
}

static void
srv_expect(struct fx *f, const uint8_t *want, size_t len)
{
	uint8_t		 b[600];
	ssize_t		 n = srv_read(f, b, sizeof(b));

	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(b, want, len);
}

#define EXPECT(f, ...)	do {					\
	static const uint8_t want_[] = { __VA_ARGS__ };		\
	srv_expect((f), want_, sizeof(want_));			\
} while (0)

/* The server answers; the client reads it.  Returns ble_conn_rx's. */
static int
srv_send(struct fx *f, const uint8_t *p, size_t len)
{
	assert_int_equal(send(f->srv, p, len, 0), (ssize_t)len);
	return (ble_conn_rx(f->c, f->now));
}

#define SEND(f, ...)	srv_send((f), (const uint8_t[]){ __VA_ARGS__ },	\
	sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void
expect_nothing(struct fx *f)
{
	uint8_t	 b[8];

	assert_int_equal(srv_read(f, b, sizeof(b)), -1);
}

/* A Read By Type Response entry: declaration of a 128-bit UUID. */
static size_t
chr_entry(uint8_t *b, uint16_t decl, uint8_t props, const uint8_t *uuid)
{
	b[0] = (uint8_t)decl;
	b[1] = (uint8_t)(decl >> 8);
	b[2] = props;
	b[3] = (uint8_t)(decl + 1);
	b[4] = (uint8_t)((decl + 1) >> 8);
	memcpy(b + 5, uuid, 16);
	return (21);
}

static int
send_chars(struct fx *f, uint16_t decl, uint8_t props, const uint8_t *uuid)
{
	uint8_t	 b[2 + 21];

	b[0] = BLE_ATT_READ_TYPE_RSP;
	b[1] = 21;
	chr_entry(b + 2, decl, props, uuid);
	return (srv_send(f, b, sizeof(b)));
}

/* The client's MTU request and the service search, answered. */
static void
setup_to_chars(struct fx *f, uint16_t srv_mtu)
{
	uint8_t	 b[32];

	ble_conn_start(f->c, f->now);
	EXPECT(f, BLE_ATT_MTU_REQ, 0xf7, 0x00);
	b[0] = BLE_ATT_MTU_RSP;
	b[1] = (uint8_t)srv_mtu;
	b[2] = (uint8_t)(srv_mtu >> 8);
	assert_int_equal(srv_send(f, b, 3), 0);

	b[0] = BLE_ATT_FIND_TYPE_REQ;
	b[1] = 0x01; b[2] = 0x00; b[3] = 0xff; b[4] = 0xff;
	b[5] = 0x00; b[6] = 0x28;
	memcpy(b + 7, ble_uuid_up_service, 16);
	srv_expect(f, b, 23);
	assert_int_equal(SEND(f, BLE_ATT_FIND_TYPE_RSP, 0x10, 0x00, 0x18,
	    0x00), 0);
}

/* The whole set-up against a good server, to READY with `credit'. */
static void
setup_all(struct fx *f, uint16_t srv_mtu, uint32_t credit)
{
	uint8_t	 b[8];

	setup_to_chars(f, srv_mtu);
	EXPECT(f, BLE_ATT_READ_TYPE_REQ, 0x10, 0x00, 0x18, 0x00, 0x03, 0x28);
	assert_int_equal(send_chars(f, 0x0011, BLE_PROP_WRITE_CMD,
	    ble_uuid_up_data), 0);
	EXPECT(f, BLE_ATT_READ_TYPE_REQ, 0x12, 0x00, 0x18, 0x00, 0x03, 0x28);
	assert_int_equal(send_chars(f, 0x0013, BLE_PROP_NOTIFY,
	    ble_uuid_up_reply), 0);
	EXPECT(f, BLE_ATT_READ_TYPE_REQ, 0x14, 0x00, 0x18, 0x00, 0x03, 0x28);
	assert_int_equal(send_chars(f, 0x0016, BLE_PROP_NOTIFY |
	    BLE_PROP_READ, ble_uuid_up_credit), 0);
	EXPECT(f, BLE_ATT_READ_TYPE_REQ, 0x17, 0x00, 0x18, 0x00, 0x03, 0x28);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_TYPE_REQ,
	    0x17, 0x00, BLE_ATT_E_NOT_FOUND), 0);
	/* Reply's descriptors lie between 0x0015 and 0x0015. */
	EXPECT(f, BLE_ATT_FIND_INFO_REQ, 0x15, 0x00, 0x15, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_FIND_INFO_RSP, 0x01, 0x15, 0x00,
	    0x02, 0x29), 0);
	EXPECT(f, BLE_ATT_WRITE_REQ, 0x15, 0x00, 0x01, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_WRITE_RSP), 0);
	EXPECT(f, BLE_ATT_FIND_INFO_REQ, 0x18, 0x00, 0x18, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_FIND_INFO_RSP, 0x01, 0x18, 0x00,
	    0x02, 0x29), 0);
	EXPECT(f, BLE_ATT_WRITE_REQ, 0x18, 0x00, 0x01, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_WRITE_RSP), 0);
	EXPECT(f, BLE_ATT_READ_REQ, 0x17, 0x00);
	assert_int_equal(f->ready, 0);
	b[0] = BLE_ATT_READ_RSP;
	b[1] = (uint8_t)credit;
	b[2] = (uint8_t)(credit >> 8);
	b[3] = (uint8_t)(credit >> 16);
	b[4] = (uint8_t)(credit >> 24);
	assert_int_equal(srv_send(f, b, 5), 0);
	assert_int_equal(f->ready, 1);
	assert_int_equal(ble_conn_state(f->c), BLE_C_READY);
}

static int
queue(struct fx *f, size_t len, uint8_t fill, uint64_t cookie)
{
	uint8_t		 buf[600];
	struct iovec	 iov[2];

	memset(buf, fill, sizeof(buf));
	/* Two pieces, as the engine hands header and block. */
	iov[0].iov_base = buf;
	iov[0].iov_len = len < 5 ? len : 5;
	iov[1].iov_base = buf + iov[0].iov_len;
	iov[1].iov_len = len - iov[0].iov_len;
	return (ble_conn_queue(f->c, iov, 2, cookie));
}

static int
send_credit(struct fx *f, uint32_t limit)
{
	uint8_t	 b[7] = { BLE_ATT_NOTIFY, H_CREDIT, 0x00 };

	b[3] = (uint8_t)limit;
	b[4] = (uint8_t)(limit >> 8);
	b[5] = (uint8_t)(limit >> 16);
	b[6] = (uint8_t)(limit >> 24);
	return (srv_send(f, b, sizeof(b)));
}

/* ------------------------------------------------------------------ */

static void
t_setup(void **state)
{
	struct fx	*f = fx_new(247, 8);
	uint16_t	 d, r, c;

	setup_all(f, 185, 6);
	/* ATT_MTU is the smaller of the two. */
	assert_int_equal(ble_conn_mtu(f->c), 185);
	assert_int_equal(ble_conn_credit(f->c), 6);
	ble_conn_handles(f->c, &d, &r, &c);
	assert_int_equal(d, H_DATA);
	assert_int_equal(r, H_REPLY);
	assert_int_equal(c, H_CREDIT);
	expect_nothing(f);
	/* Frames up to ATT_MTU - 3 = 182 bytes. */
	assert_int_equal(queue(f, 183, 1, 1), TP_EMSGSIZE);
	assert_int_equal(queue(f, 182, 1, 1), TP_OK);
	assert_int_equal(queue(f, 0, 1, 2), TP_EMSGSIZE);
	fx_free(f);
}

static void
t_not_ready(void **state)
{
	struct fx	*f = fx_new(247, 8);

	/* Nothing may be queued before the set-up is done. */
	assert_int_equal(queue(f, 10, 1, 1), TP_ENOPEER);
	setup_to_chars(f, 247);
	assert_int_equal(queue(f, 10, 1, 1), TP_ENOPEER);
	fx_free(f);
}

static void
t_mtu_default(void **state)
{
	struct fx	*f = fx_new(247, 8);

	/* A server that cannot exchange: the client keeps 23. */
	ble_conn_start(f->c, f->now);
	EXPECT(f, BLE_ATT_MTU_REQ, 0xf7, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_MTU_REQ, 0x00,
	    0x00, BLE_ATT_E_NOT_SUPPORTED), 0);
	assert_int_equal(ble_conn_state(f->c), BLE_C_SERVICE);
	assert_int_equal(ble_conn_mtu(f->c), 23);
	fx_free(f);

	/* Below 23 is refused. */
	f = fx_new(247, 8);
	ble_conn_start(f->c, f->now);
	EXPECT(f, BLE_ATT_MTU_REQ, 0xf7, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_MTU_RSP, 0x16, 0x00), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "below the minimum 23"));
	fx_free(f);

	/* MTU 23: 20-byte frames, the compact forms' size. */
	f = fx_new(247, 8);
	setup_all(f, 23, 4);
	assert_int_equal(queue(f, 21, 1, 1), TP_EMSGSIZE);
	assert_int_equal(queue(f, 20, 1, 1), TP_OK);
	fx_free(f);
}

static void
t_credit(void **state)
{
	struct fx	*f = fx_new(247, 16);
	uint8_t		 b[600];
	int		 i;
	ssize_t		 n;

	setup_all(f, 247, 4);
	for (i = 0; i < 10; i++)
		assert_int_equal(queue(f, 244, (uint8_t)i, 100 + i), TP_OK);
	assert_int_equal(ble_conn_queued(f->c), 10);
	/* Four writes go: the node's credit. */
	assert_int_equal(flush(f), 0);
	for (i = 0; i < 4; i++) {
		n = recv(f->srv, b, sizeof(b), MSG_DONTWAIT);
		assert_int_equal(n, 247);
		assert_int_equal(b[0], BLE_ATT_WRITE_CMD);
		assert_int_equal(b[1], H_DATA);
		assert_int_equal(b[2], 0);
		assert_int_equal(b[3], i);
		assert_int_equal(b[246], i);
	}
	expect_nothing(f);
	assert_int_equal(f->nsent, 4);
	assert_int_equal(f->sent[0], 100);
	assert_int_equal(f->sent[3], 103);
	assert_int_equal(ble_conn_credit(f->c), 0);

	/* An old or equal count changes nothing. */
	assert_int_equal(send_credit(f, 3), 0);
	assert_int_equal(send_credit(f, 4), 0);
	expect_nothing(f);
	/* Four more. */
	assert_int_equal(send_credit(f, 8), 0);
	for (i = 4; i < 8; i++) {
		n = srv_read(f, b, sizeof(b));
		assert_int_equal(n, 247);
		assert_int_equal(b[3], i);
	}
	expect_nothing(f);
	/* A credit far beyond what was written is refused as bogus. */
	assert_int_equal(send_credit(f, 8 + (1u << 21)), 0);
	expect_nothing(f);
	assert_int_equal(send_credit(f, 100), 0);
	for (i = 8; i < 10; i++)
		assert_int_equal(srv_read(f, b, sizeof(b)), 247);
	assert_int_equal(f->nsent, 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(f->sent[i], 100 + i);
	fx_free(f);
}

static void
t_queue_full(void **state)
{
	struct fx	*f = fx_new(247, 3);
	uint8_t		 b[600];

	setup_all(f, 247, 0);
	assert_int_equal(queue(f, 10, 1, 1), TP_OK);
	assert_int_equal(queue(f, 10, 2, 2), TP_OK);
	assert_int_equal(queue(f, 10, 3, 3), TP_OK);
	assert_int_equal(queue(f, 10, 4, 4), TP_EAGAIN);
	assert_int_equal(flush(f), 0);
	assert_int_equal(f->room, 0);
	assert_int_equal(send_credit(f, 1), 0);
	assert_int_equal(srv_read(f, b, sizeof(b)), 13);
	/* Room again: said once. */
	assert_int_equal(f->room, 1);
	assert_int_equal(queue(f, 10, 4, 4), TP_OK);
	fx_free(f);
}

static void
t_notifications(void **state)
{
	struct fx		*f = fx_new(247, 8);
	struct ble_conn_stats	 st;
	uint8_t			 big[600];

	setup_all(f, 100, 4);
	/* A UP frame on Reply. */
	assert_int_equal(SEND(f, BLE_ATT_NOTIFY, H_REPLY, 0x00, 0x01, 0x02,
	    0x03), 0);
	assert_int_equal(f->frames, 1);
	assert_int_equal(f->frame_len, 3);
	assert_int_equal(f->frame[2], 0x03);
	/* On a handle that is not ours: dropped, counted. */
	assert_int_equal(SEND(f, BLE_ATT_NOTIFY, 0x33, 0x00, 0x01), 0);
	/* Empty: no UP frame is. */
	assert_int_equal(SEND(f, BLE_ATT_NOTIFY, H_REPLY, 0x00), 0);
	/* Credit of 3 bytes. */
	assert_int_equal(SEND(f, BLE_ATT_NOTIFY, H_CREDIT, 0x00, 9, 0, 0), 0);
	assert_int_equal(ble_conn_credit(f->c), 4);
	/* Longer than ATT_MTU (100). */
	memset(big, 0, sizeof(big));
	big[0] = BLE_ATT_NOTIFY;
	big[1] = H_REPLY;
	assert_int_equal(srv_send(f, big, 101), 0);
	/* Truncated: no handle. */
	assert_int_equal(SEND(f, BLE_ATT_NOTIFY, H_REPLY), 0);
	/* Longer than any ATT PDU may be (MSG_TRUNC). */
	assert_int_equal(srv_send(f, big, 600), 0);
	assert_int_equal(f->frames, 1);
	ble_conn_stats(f->c, &st);
	assert_int_equal(st.rx_unknown, 1);
	assert_int_equal(st.rx_bad, 5);
	assert_int_equal(st.rx_frames, 1);
	/* An indication is confirmed, and its value used. */
	assert_int_equal(SEND(f, BLE_ATT_INDICATE, H_REPLY, 0x00, 0x07), 0);
	EXPECT(f, BLE_ATT_CONFIRM);
	assert_int_equal(f->frames, 2);
	assert_int_equal(ble_conn_state(f->c), BLE_C_READY);
	fx_free(f);
}

static void
t_peer_requests(void **state)
{
	struct fx	*f = fx_new(247, 8);

	setup_all(f, 247, 4);
	/* The node reads from us: we hold nothing for it. */
	assert_int_equal(SEND(f, BLE_ATT_READ_REQ, 0x01, 0x00), 0);
	EXPECT(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_REQ, 0x00, 0x00,
	    BLE_ATT_E_NOT_SUPPORTED);
	/* A malformed request: invalid PDU. */
	assert_int_equal(SEND(f, BLE_ATT_READ_REQ, 0x01), 0);
	EXPECT(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_REQ, 0x00, 0x00,
	    BLE_ATT_E_INVALID_PDU);
	/* An MTU request: answered with ours. */
	assert_int_equal(SEND(f, BLE_ATT_MTU_REQ, 0x40, 0x00), 0);
	EXPECT(f, BLE_ATT_MTU_RSP, 0xf7, 0x00);
	/* A command: ignored, never answered. */
	assert_int_equal(SEND(f, BLE_ATT_WRITE_CMD, 0x01, 0x00, 0x01), 0);
	expect_nothing(f);
	assert_int_equal(ble_conn_state(f->c), BLE_C_READY);
	fx_free(f);
}

static void
t_no_service(void **state)
{
	struct fx	*f = fx_new(247, 8);

	ble_conn_start(f->c, f->now);
	EXPECT(f, BLE_ATT_MTU_REQ, 0xf7, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_MTU_RSP, 0xf7, 0x00), 0);
	assert_true(srv_read(f, (uint8_t[32]){ 0 }, 32) == 23);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_FIND_TYPE_REQ,
	    0x01, 0x00, BLE_ATT_E_NOT_FOUND), -1);
	assert_int_equal(ble_conn_state(f->c), BLE_C_DEAD);
	assert_non_null(strstr(ble_conn_why(f->c), "no UP GATT service "
	    "(e84f0001-5a6a-4d2f-b31b-6c73e1665fa7)"));
	/* Dead is dead. */
	assert_int_equal(flush(f), -1);
	assert_int_equal(ble_conn_rx(f->c, f->now), -1);
	fx_free(f);
}

static void
t_bad_chars(void **state)
{
	struct fx	*f;

	/* Credit missing. */
	f = fx_new(247, 8);
	setup_to_chars(f, 247);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0011, BLE_PROP_WRITE_CMD,
	    ble_uuid_up_data), 0);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, MSG_DONTWAIT);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, MSG_DONTWAIT);
	assert_int_equal(send_chars(f, 0x0013, BLE_PROP_NOTIFY,
	    ble_uuid_up_reply), 0);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, MSG_DONTWAIT);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_TYPE_REQ,
	    0x14, 0x00, BLE_ATT_E_NOT_FOUND), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "no Credit "
	    "characteristic (e84f0004-"));
	fx_free(f);

	/* Data without write-without-response. */
	f = fx_new(247, 8);
	setup_to_chars(f, 247);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0011, BLE_PROP_WRITE,
	    ble_uuid_up_data), 0);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0013, BLE_PROP_NOTIFY,
	    ble_uuid_up_reply), 0);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0016, BLE_PROP_NOTIFY |
	    BLE_PROP_READ, ble_uuid_up_credit), 0);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_TYPE_REQ,
	    0x17, 0x00, BLE_ATT_E_NOT_FOUND), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "Data characteristic has "
	    "properties 0x08, needs 0x04"));
	fx_free(f);

	/* A declaration outside the range asked for. */
	f = fx_new(247, 8);
	setup_to_chars(f, 247);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0030, BLE_PROP_WRITE_CMD,
	    ble_uuid_up_data), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "outside"));
	fx_free(f);

	/* Two Data characteristics. */
	f = fx_new(247, 8);
	setup_to_chars(f, 247);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0011, BLE_PROP_WRITE_CMD,
	    ble_uuid_up_data), 0);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(send_chars(f, 0x0013, BLE_PROP_WRITE_CMD,
	    ble_uuid_up_data), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "two Data"));
	fx_free(f);
}

/* Runs the set-up up to the Reply CCCD write, with `reply_has_cccd'. */
static void
setup_to_desc(struct fx *f, int reply_has_cccd)
{
	uint8_t	 b[32];

	setup_to_chars(f, 247);
	srv_read(f, b, sizeof(b));
	send_chars(f, 0x0011, BLE_PROP_WRITE_CMD, ble_uuid_up_data);
	srv_read(f, b, sizeof(b));
	send_chars(f, 0x0013, BLE_PROP_NOTIFY, ble_uuid_up_reply);
	srv_read(f, b, sizeof(b));
	send_chars(f, 0x0016, BLE_PROP_NOTIFY | BLE_PROP_READ,
	    ble_uuid_up_credit);
	srv_read(f, b, sizeof(b));
	SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_TYPE_REQ, 0x17, 0x00,
	    BLE_ATT_E_NOT_FOUND);
	EXPECT(f, BLE_ATT_FIND_INFO_REQ, 0x15, 0x00, 0x15, 0x00);
	if (!reply_has_cccd)
		return;
	assert_int_equal(SEND(f, BLE_ATT_FIND_INFO_RSP, 0x01, 0x15, 0x00,
	    0x02, 0x29), 0);
	EXPECT(f, BLE_ATT_WRITE_REQ, 0x15, 0x00, 0x01, 0x00);
}

static void
t_no_cccd(void **state)
{
	struct fx	*f = fx_new(247, 8);

	setup_to_desc(f, 0);
	/* A descriptor of another type fills the range: none left. */
	assert_int_equal(SEND(f, BLE_ATT_FIND_INFO_RSP, 0x01, 0x15, 0x00,
	    0x01, 0x29), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "Reply characteristic has "
	    "no Client Characteristic Configuration"));
	fx_free(f);

	f = fx_new(247, 8);
	setup_to_desc(f, 0);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_FIND_INFO_REQ,
	    0x15, 0x00, BLE_ATT_E_NOT_FOUND), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "no Client"));
	fx_free(f);
}

static void
t_security(void **state)
{
	struct fx	*f = fx_new(247, 8);

	/* The link cannot be encrypted: a clear error. */
	f->sec_answer = -1;
	setup_to_desc(f, 1);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_WRITE_REQ, 0x15,
	    0x00, BLE_ATT_E_ENCRYPTION), -1);
	assert_int_equal(f->sec_calls, 1);
	assert_non_null(strstr(ble_conn_why(f->c), "requires an encrypted "
	    "link"));
	assert_non_null(strstr(ble_conn_why(f->c), "security = medium"));
	fx_free(f);

	/* It can: the same request again, then on as usual. */
	f = fx_new(247, 8);
	f->sec_answer = 0;
	setup_to_desc(f, 1);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_WRITE_REQ, 0x15,
	    0x00, BLE_ATT_E_ENCRYPTION), 0);
	EXPECT(f, BLE_ATT_WRITE_REQ, 0x15, 0x00, 0x01, 0x00);
	/* Asked again at the same level: no loop. */
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_WRITE_REQ, 0x15,
	    0x00, BLE_ATT_E_ENCRYPTION), -1);
	assert_int_equal(f->sec_calls, 1);
	fx_free(f);

	/* Another error on the write: named with its step. */
	f = fx_new(247, 8);
	setup_to_desc(f, 1);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_WRITE_REQ, 0x15,
	    0x00, BLE_ATT_E_WRITE_NOT_PERM), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "ATT error 0x03 (write "
	    "not permitted) on handle 0x0015"));
	fx_free(f);
}

static void
t_unexpected(void **state)
{
	struct fx	*f;

	/* A response nobody asked for. */
	f = fx_new(247, 8);
	setup_all(f, 247, 4);
	assert_int_equal(SEND(f, BLE_ATT_WRITE_RSP), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "unexpected Write "
	    "Response"));
	fx_free(f);

	/* The wrong response to the request in flight. */
	f = fx_new(247, 8);
	ble_conn_start(f->c, f->now);
	flush(f);
	assert_int_equal(SEND(f, BLE_ATT_READ_RSP, 0x01), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "another request"));
	fx_free(f);

	/* An Error Response naming another request. */
	f = fx_new(247, 8);
	ble_conn_start(f->c, f->now);
	flush(f);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_READ_REQ, 0x01,
	    0x00, BLE_ATT_E_NOT_FOUND), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "names the Read "
	    "Request"));
	fx_free(f);

	/* A truncated response. */
	f = fx_new(247, 8);
	setup_to_chars(f, 247);
	flush(f);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, 0);
	assert_int_equal(SEND(f, BLE_ATT_READ_TYPE_RSP, 21, 0x11, 0x00), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "malformed Read By Type "
	    "Response"));
	fx_free(f);

	/* A response longer than the MTU in force (23 before exchange). */
	f = fx_new(247, 8);
	ble_conn_start(f->c, f->now);
	flush(f);
	assert_int_equal(SEND(f, BLE_ATT_ERROR_RSP, BLE_ATT_MTU_REQ, 0, 0,
	    BLE_ATT_E_NOT_SUPPORTED), 0);
	recv(f->srv, (uint8_t[32]){ 0 }, 32, MSG_DONTWAIT);
	flush(f);
	{
		uint8_t	 b[40];

		memset(b, 0, sizeof(b));
		b[0] = BLE_ATT_FIND_TYPE_RSP;
		b[1] = 0x10;
		b[3] = 0x18;
		assert_int_equal(srv_send(f, b, 25), -1);
		assert_non_null(strstr(ble_conn_why(f->c), "exceeds the ATT "
		    "MTU 23"));
	}
	fx_free(f);

	/* The Credit value is not 4 bytes. */
	f = fx_new(247, 8);
	setup_to_desc(f, 1);
	SEND(f, BLE_ATT_WRITE_RSP);
	srv_read(f, (uint8_t[32]){ 0 }, 32);
	SEND(f, BLE_ATT_FIND_INFO_RSP, 0x01, 0x18, 0x00, 0x02, 0x29);
	srv_read(f, (uint8_t[32]){ 0 }, 32);
	SEND(f, BLE_ATT_WRITE_RSP);
	EXPECT(f, BLE_ATT_READ_REQ, 0x17, 0x00);
	assert_int_equal(SEND(f, BLE_ATT_READ_RSP, 1, 2), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "2 bytes, not 4"));
	fx_free(f);
}

static void
t_disconnect(void **state)
{
	struct fx	*f = fx_new(247, 16);
	uint8_t		 b[600];
	uint64_t	 cookie, got[16];
	int		 i, n = 0;

	setup_all(f, 247, 4);
	for (i = 0; i < 8; i++)
		assert_int_equal(queue(f, 200, (uint8_t)i, 10 + i), TP_OK);
	assert_int_equal(flush(f), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(recv(f->srv, b, sizeof(b), 0), 203);
	/* The node goes away mid-transfer. */
	close(f->srv);
	f->srv = -1;
	assert_int_equal(ble_conn_rx(f->c, f->now), -1);
	assert_string_equal(ble_conn_why(f->c), "connection closed by the "
	    "node");
	assert_int_equal(ble_conn_queue(f->c, &(struct iovec){ b, 10 }, 1,
	    99), TP_ENOPEER);
	/* Nothing lost: each frame was either written or comes back. */
	while (ble_conn_pop_unsent(f->c, &cookie))
		got[n++] = cookie;
	assert_int_equal(f->nsent, 4);
	assert_int_equal(n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(f->sent[i], 10 + i);
		assert_int_equal(got[i], 14 + i);
	}
	fx_free(f);

	/* Writing into a closed bearer fails the same way. */
	f = fx_new(247, 16);
	setup_all(f, 247, 4);
	assert_int_equal(queue(f, 20, 1, 1), TP_OK);
	close(f->srv);
	f->srv = -1;
	assert_int_equal(flush(f), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "connection lost"));
	fx_free(f);
}

static void
t_timeouts(void **state)
{
	struct fx	*f = fx_new(247, 16);

	/* A request with no answer: the ATT transaction timeout. */
	ble_conn_start(f->c, f->now);
	flush(f);
	assert_int_equal(ble_conn_check(f->c, f->now + 29999), 0);
	assert_int_equal(ble_conn_check(f->c, f->now + 30000), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "no answer to the Exchange "
	    "MTU Request (mtu step) in 30000 ms"));
	fx_free(f);

	/* Frames waiting for credit that never comes. */
	f = fx_new(247, 16);
	setup_all(f, 247, 1);
	assert_int_equal(queue(f, 20, 1, 1), TP_OK);
	assert_int_equal(queue(f, 20, 2, 2), TP_OK);
	assert_int_equal(flush(f), 0);
	assert_int_equal(ble_conn_check(f->c, f->now + 29999), 0);
	/* Credit refreshes the wait. */
	f->now += 20000;
	assert_int_equal(send_credit(f, 2), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(queue(f, 20, 3, 3), TP_OK);
	assert_int_equal(flush(f), 0);
	assert_int_equal(ble_conn_check(f->c, f->now + 29999), 0);
	assert_int_equal(ble_conn_check(f->c, f->now + 30000), -1);
	assert_non_null(strstr(ble_conn_why(f->c), "no credit from the node "
	    "for 30000 ms with 1 frames waiting"));
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_setup),
		cmocka_unit_test(t_not_ready),
		cmocka_unit_test(t_mtu_default),
		cmocka_unit_test(t_credit),
		cmocka_unit_test(t_queue_full),
		cmocka_unit_test(t_notifications),
		cmocka_unit_test(t_peer_requests),
		cmocka_unit_test(t_no_service),
		cmocka_unit_test(t_bad_chars),
		cmocka_unit_test(t_no_cccd),
		cmocka_unit_test(t_security),
		cmocka_unit_test(t_unexpected),
		cmocka_unit_test(t_disconnect),
		cmocka_unit_test(t_timeouts),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
