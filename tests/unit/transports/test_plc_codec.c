/*
 * test_plc_codec.c: the Q/GDW 1376.2 codec of the plc transport
 * (transports/plc/plc_frame.c, plc_du.c).
 *
 * Vectors: three real frames from public concentrator code
 * (docs/transports/plc.md, "Test vectors"), and a worked frame for every
 * AFN and Fn the transport uses, both directions, built by
 * plc_vectors.py from the standard's layouts with code that shares
 * nothing with the C codec (plc_vectors.h is its output; a ctest checks
 * it is current and that the doc shows the same bytes).  Each vector is
 * decoded and checked field by field, then encoded again from those
 * fields and compared byte for byte.  Then bad input: every kind of
 * broken frame and data unit is refused with its own error, and the
 * stream deframer drops a bad frame and finds the next good one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"
#include "plc_internal.h"
#include "plc_vectors.h"

/* Real frames (docs/transports/plc.md, "Test vectors"). */
/* AFN 03H F1 (vendor code and version), concentrator to module. */
static const uint8_t r_vendor_query[] = {
	0x68, 0x0f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x03, 0x01, 0x00, 0x45, 0x16
};
/* AFN 01H F2 (parameter area initialisation), reply of 4 bytes, seq 4. */
static const uint8_t r_param_init[] = {
	0x68, 0x0f, 0x00, 0x41, 0x00, 0x00, 0x04, 0x00, 0x00, 0x04,
	0x01, 0x02, 0x00, 0x4c, 0x16
};
/* AFN 03H F1 with the route flag set and 255 reply bytes expected. */
static const uint8_t r_vendor_bypass[] = {
	0x68, 0x0f, 0x00, 0x41, 0x01, 0x00, 0xff, 0x00, 0x00, 0x00,
	0x03, 0x01, 0x00, 0x45, 0x16
};

static const uint8_t master[6] = { 0x01, 0, 0, 0, 0, 0 };
static const uint8_t sta[6] = { 0x17, 0x00, 0x00, 0x05, 0x19, 0x20 };
static const uint8_t sta1[6] = { 0x01, 0x00, 0x00, 0x05, 0x19, 0x20 };
static const uint8_t up_frame[5] = { 0x55, 0x50, 0x01, 0x02, 0x03 };

/* Decodes v, checks the header, re-encodes the result and compares. */
static void
roundtrip(const uint8_t *v, size_t len, uint8_t c, uint8_t afn,
    unsigned int fn, uint8_t seq, struct plc_frame *f)
{
	uint8_t		 out[PLC_FRAME_MAX];
	int		 n;

	assert_int_equal(plc_decode(v, len, f), PLC_OK);
	assert_int_equal(f->c, c);
	assert_int_equal(f->afn, afn);
	assert_int_equal(f->fn, fn);
	assert_int_equal(f->info.seq, seq);
	n = plc_encode(f, out, sizeof(out));
	assert_int_equal(n, (int)len);
	assert_memory_equal(out, v, len);
}
#define RT(v, c, afn, fn, seq, f) roundtrip(v, sizeof(v), c, afn, fn, seq, f)

/* ------------------------------------------------------------------ */

static void
test_dt(void **state)
{
	uint8_t		 d1, d2;

	assert_int_equal(plc_fn_to_dt(1, &d1, &d2), PLC_OK);
	assert_int_equal(d1, 0x01);
	assert_int_equal(d2, 0x00);
	assert_int_equal(plc_fn_to_dt(10, &d1, &d2), PLC_OK);
	assert_int_equal(d1, 0x02);
	assert_int_equal(d2, 0x01);
	assert_int_equal(plc_fn_to_dt(21, &d1, &d2), PLC_OK);
	assert_int_equal(d1, 0x10);
	assert_int_equal(d2, 0x02);
	assert_int_equal(plc_fn_to_dt(201, &d1, &d2), PLC_OK);
	assert_int_equal(d1, 0x01);
	assert_int_equal(d2, 0x19);
	assert_int_equal(plc_fn_to_dt(248, &d1, &d2), PLC_OK);
	assert_int_equal(d1, 0x80);
	assert_int_equal(d2, 30);
	assert_int_equal(plc_fn_to_dt(0, &d1, &d2), PLC_E_RANGE);
	assert_int_equal(plc_fn_to_dt(249, &d1, &d2), PLC_E_RANGE);
	assert_int_equal(plc_dt_to_fn(0x01, 0), 1);
	assert_int_equal(plc_dt_to_fn(0x80, 30), 248);
	assert_int_equal(plc_dt_to_fn(0x00, 0), 0);	/* no Fn */
	assert_int_equal(plc_dt_to_fn(0x03, 0), 0);	/* two Fn */
	assert_int_equal(plc_dt_to_fn(0x01, 31), 0);	/* past F248 */
}

static void
test_real_frames(void **state)
{
	struct plc_frame f;

	RT(r_vendor_query, 0x41, 0x03, 1, 0, &f);
	assert_false(PLC_FRAME_UP(&f));
	assert_true(PLC_FRAME_PRM(&f));
	assert_int_equal(f.c & PLC_C_TYPE_MASK, PLC_COMM_NARROWBAND);
	assert_int_equal(f.info.module, 0);
	assert_int_equal(f.len, 0);

	RT(r_param_init, 0x41, 0x01, 2, 4, &f);
	assert_int_equal(f.info.reply_bytes, 4);

	RT(r_vendor_bypass, 0x41, 0x03, 1, 0, &f);
	assert_int_equal(f.info.route, 1);
	assert_int_equal(f.info.reply_bytes, 0xff);
}

static void
test_run_mode(void **state)
{
	struct plc_frame f;
	struct plc_run_mode m;
	struct plc_wr	 w;
	uint8_t		 du[128];

	RT(v_run_mode_query, 0x43, 0x03, 10, 1, &f);
	assert_int_equal(f.len, 0);
	RT(v_run_mode_answer, 0x83, 0x03, 10, 1, &f);
	assert_true(PLC_FRAME_UP(&f));
	assert_false(PLC_FRAME_PRM(&f));
	assert_int_equal(plc_du_run_mode_dec(f.data, f.len, &m), PLC_OK);
	assert_int_equal(m.comm, 2);
	assert_true(m.routing);
	assert_int_equal(m.channels, 1);
	assert_int_equal(m.monitor_s, 30);
	assert_int_equal(m.broadcast_s, 120);
	assert_int_equal(m.max_frame, 1024);
	assert_int_equal(m.max_segment, 1024);
	assert_int_equal(m.upgrade_wait, 10);
	assert_memory_equal(m.master, master, 6);
	assert_int_equal(m.max_nodes, 1015);
	assert_int_equal(m.nodes, 30);
	assert_string_equal(m.vendor, "HS");
	assert_string_equal(m.chip, "CC");
	assert_int_equal(m.version, 0x0102);
	assert_int_equal(m.nrates, 1);
	assert_int_equal(m.rate[0], 0x8000 | 100);
	/* The data unit again from the struct. */
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_run_mode(&w, &m), PLC_OK);
	assert_int_equal(w.len, f.len);
	assert_memory_equal(du, f.data, f.len);
	/* The same, reported by a module that powered up. */
	RT(v_run_mode_report, 0xc3, 0x03, 10, 9, &f);
	assert_true(PLC_FRAME_PRM(&f));
	/* One byte short, one byte too many. */
	assert_int_equal(plc_du_run_mode_dec(f.data, f.len - 1, &m),
	    PLC_E_SHORT);
	memcpy(du, f.data, f.len);
	du[f.len] = 0;
	assert_int_equal(plc_du_run_mode_dec(du, f.len + 1, &m), PLC_E_FORMAT);
}

static void
test_ack(void **state)
{
	struct plc_frame f;
	struct plc_confirm a;
	unsigned int	 code;

	RT(v_confirm, 0x83, 0x00, 1, 2, &f);
	assert_int_equal(plc_du_confirm_dec(f.data, f.len, &a), PLC_OK);
	assert_true(a.done);
	assert_int_equal(a.channels, 0x7fffffff);
	assert_int_equal(a.wait_s, 0);
	RT(v_confirm_wait, 0x83, 0x00, 1, 2, &f);
	assert_int_equal(plc_du_confirm_dec(f.data, f.len, &a), PLC_OK);
	assert_true(a.done);
	assert_int_equal(a.channels, 0);
	assert_int_equal(a.wait_s, 3);
	assert_int_equal(plc_du_confirm_dec(f.data, 4, &a), PLC_E_SHORT);

	RT(v_deny, 0x83, 0x00, 2, 3, &f);
	assert_int_equal(plc_du_deny_dec(f.data, f.len, &code), PLC_OK);
	assert_int_equal(code, PLC_DENY_NODE_SILENT);
	assert_string_equal(plc_deny_str(code), "station did not answer");
	assert_string_equal(plc_deny_str(200), "reserved error code");
	assert_int_equal(plc_du_deny_dec(f.data, 0, &code), PLC_E_SHORT);
}

static void
test_topology(void **state)
{
	struct plc_frame f;
	struct plc_topo_page tp;
	struct plc_node_page np;
	struct plc_route_state rs;
	struct plc_wr	 w;
	uint16_t	 start;
	uint8_t		 count, du[512];

	RT(v_topology_query, 0x43, 0x10, 21, 4, &f);
	assert_int_equal(plc_du_page_dec(f.data, f.len, &start, &count),
	    PLC_OK);
	assert_int_equal(start, 1);
	assert_int_equal(count, 32);

	RT(v_topology_answer, 0x83, 0x10, 21, 4, &f);
	assert_int_equal(plc_du_topology_dec(f.data, f.len, &tp), PLC_OK);
	assert_int_equal(tp.total, 3);
	assert_int_equal(tp.start, 1);
	assert_int_equal(tp.n, 3);
	assert_memory_equal(tp.node[0].addr, master, 6);
	assert_int_equal(tp.node[0].tei, 1);
	assert_int_equal(tp.node[0].role, PLC_ROLE_CCO);
	assert_int_equal(tp.node[0].level, 0);
	assert_memory_equal(tp.node[1].addr, sta1, 6);
	assert_int_equal(tp.node[1].tei, 2);
	assert_int_equal(tp.node[1].proxy, 1);
	assert_int_equal(tp.node[1].level, 1);
	assert_int_equal(tp.node[1].role, PLC_ROLE_PCO);
	assert_memory_equal(tp.node[2].addr, sta, 6);
	assert_int_equal(tp.node[2].proxy, 2);
	assert_int_equal(tp.node[2].level, 2);
	assert_int_equal(tp.node[2].role, PLC_ROLE_STA);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_topology(&w, &tp), PLC_OK);
	assert_memory_equal(du, f.data, f.len);

	RT(v_node_query, 0x43, 0x10, 2, 5, &f);
	RT(v_node_answer, 0x83, 0x10, 2, 5, &f);
	assert_int_equal(plc_du_node_info_dec(f.data, f.len, &np), PLC_OK);
	assert_int_equal(np.total, 2);
	assert_int_equal(np.n, 2);
	assert_int_equal(np.node[0].relay_level, 0);
	assert_int_equal(np.node[0].quality, 5);
	assert_int_equal(np.node[0].phase, 1);
	assert_memory_equal(np.node[1].addr, sta, 6);
	assert_int_equal(np.node[1].relay_level, 1);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_node_info(&w, &np), PLC_OK);
	assert_memory_equal(du, f.data, f.len);

	RT(v_relay_query, 0x43, 0x10, 3, 6, &f);
	assert_int_equal(f.len, 6);
	assert_memory_equal(f.data, sta, 6);
	RT(v_relay_answer, 0x83, 0x10, 3, 6, &f);
	assert_int_equal(plc_du_node_relay_dec(f.data, f.len, &np), PLC_OK);
	assert_int_equal(np.n, 1);
	assert_memory_equal(np.node[0].addr, sta1, 6);

	RT(v_route_state_answer, 0x83, 0x10, 4, 7, &f);
	assert_int_equal(plc_du_route_state_dec(f.data, f.len, &rs), PLC_OK);
	assert_true(rs.learned);
	assert_true(rs.working);
	assert_int_equal(rs.nodes, 30);
	assert_int_equal(rs.work, PLC_WORK_UPGRADE);
	assert_int_equal(rs.step[0], 8);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_route_state(&w, &rs), PLC_OK);
	assert_memory_equal(du, f.data, f.len);

	/* More entries than a page holds, and a page cut short. */
	memcpy(du, v_topology_answer + 13, sizeof(v_topology_answer) - 15);
	du[4] = PLC_PAGE_MAX + 1;
	assert_int_equal(plc_du_topology_dec(du, sizeof(v_topology_answer) -
	    15, &tp), PLC_E_RANGE);
	assert_int_equal(plc_du_topology_dec(v_topology_answer + 13,
	    sizeof(v_topology_answer) - 16, &tp), PLC_E_SHORT);
}

static void
test_forwarding(void **state)
{
	struct plc_frame f;
	const uint8_t	*msg;
	size_t		 msglen;
	uint16_t	 t;
	uint8_t		 proto, ctrl, dev;

	RT(v_monitor, 0x43, 0x13, 1, 8, &f);
	assert_int_equal(f.info.module, 1);
	assert_memory_equal(f.src, master, 6);
	assert_memory_equal(f.dst, sta, 6);
	assert_int_equal(plc_du_monitor_dec(f.data, f.len, &proto, &msg,
	    &msglen), PLC_OK);
	assert_int_equal(proto, PLC_PROTO_TRANSPARENT);
	assert_int_equal(msglen, sizeof(up_frame));
	assert_memory_equal(msg, up_frame, msglen);

	RT(v_monitor_answer, 0x83, 0x13, 1, 8, &f);
	assert_memory_equal(f.src, sta, 6);
	assert_memory_equal(f.dst, master, 6);
	assert_int_equal(f.info.q_cmd, 5);
	assert_int_equal(f.info.q_reply, 6);
	assert_int_equal(plc_du_monitor_up_dec(f.data, f.len, &t, &proto,
	    &msg, &msglen), PLC_OK);
	assert_int_equal(t, 1);
	assert_memory_equal(msg, up_frame, msglen);

	RT(v_broadcast, 0x43, 0x05, 3, 10, &f);
	assert_int_equal(plc_du_broadcast_dec(f.data, f.len, &ctrl, &msg,
	    &msglen), PLC_OK);
	assert_int_equal(ctrl, 0);
	assert_memory_equal(msg, up_frame, msglen);

	RT(v_event, 0xc3, 0x06, 5, 0x80, &f);
	assert_memory_equal(f.src, sta, 6);
	assert_int_equal(plc_du_event_dec(f.data, f.len, &dev, &proto, &msg,
	    &msglen), PLC_OK);
	assert_int_equal(dev, 1);
	assert_memory_equal(msg, up_frame, msglen);
	RT(v_event_confirm, 0x03, 0x00, 1, 0x80, &f);
	assert_memory_equal(f.dst, sta, 6);

	/* A message length past the data unit. */
	assert_int_equal(plc_du_monitor_dec(f.data, 3, &proto, &msg, &msglen),
	    PLC_E_SHORT);
}

static void
test_file(void **state)
{
	struct plc_frame f;
	struct plc_segment s;
	struct plc_upg_page pg;
	struct plc_wr	 w;
	uint32_t	 idx;
	uint16_t	 start;
	uint8_t		 count, du[512];
	unsigned int	 i;

	RT(v_segment, 0x43, 0x15, 1, 11, &f);
	assert_int_equal(plc_du_segment_dec(f.data, f.len, &s), PLC_OK);
	assert_int_equal(s.file, PLC_FILE_STATIONS);
	assert_int_equal(s.attr, PLC_ATTR_MIDDLE);
	assert_int_equal(s.cmd, PLC_CMD_MESSAGE);
	assert_int_equal(s.total, 3);
	assert_int_equal(s.index, 1);
	assert_int_equal(s.len, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(s.data[i], i);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_segment(&w, &s), PLC_OK);
	assert_memory_equal(du, f.data, f.len);
	/* A length past the data. */
	assert_int_equal(plc_du_segment_dec(f.data, f.len - 1, &s),
	    PLC_E_SHORT);

	RT(v_segment_ack, 0x83, 0x15, 1, 11, &f);
	assert_int_equal(plc_du_segment_ack_dec(f.data, f.len, &idx), PLC_OK);
	assert_int_equal(idx, 1);
	RT(v_segment_error, 0x83, 0x15, 1, 11, &f);
	assert_int_equal(plc_du_segment_ack_dec(f.data, f.len, &idx), PLC_OK);
	assert_int_equal(idx, PLC_SEG_ERROR);

	RT(v_upg_query, 0x43, 0xf0, 201, 12, &f);
	assert_int_equal(plc_du_page_dec(f.data, f.len, &start, &count),
	    PLC_OK);
	assert_int_equal(count, PLC_UPG_PAGE_MAX);
	RT(v_upg_answer, 0x83, 0xf0, 201, 12, &f);
	assert_int_equal(plc_du_upg_status_dec(f.data, f.len, &pg), PLC_OK);
	assert_int_equal(pg.total, 2);
	assert_int_equal(pg.file, PLC_FILE_STATIONS);
	assert_int_equal(pg.size, 40000);
	assert_int_equal(pg.n, 2);
	assert_int_equal(pg.st[0].state, PLC_UPG_DONE);
	assert_int_equal(pg.st[0].held, 40000);
	assert_memory_equal(pg.st[1].addr, sta, 6);
	assert_int_equal(pg.st[1].state, PLC_UPG_RECEIVING);
	assert_int_equal(pg.st[1].held, 8192);
	assert_int_equal(pg.st[1].received, 12288);
	plc_wr_init(&w, du, sizeof(du));
	assert_int_equal(plc_du_upg_status(&w, &pg), PLC_OK);
	assert_memory_equal(du, f.data, f.len);
	/* A station said to hold more than the file, or an unknown state. */
	memcpy(du, f.data, f.len);
	du[10 + 6 + 1 + 2] = 0x01;	/* first held = 0x019c40 + ... */
	assert_int_equal(plc_du_upg_status_dec(du, f.len, &pg), PLC_E_RANGE);
	memcpy(du, f.data, f.len);
	du[10 + 6] = 9;
	assert_int_equal(plc_du_upg_status_dec(du, f.len, &pg), PLC_E_RANGE);
}

/* ------------------------------------------------------------------ */
/* Bad frames                                                           */

static void
test_bad_frames(void **state)
{
	struct plc_frame f;
	uint8_t		 b[64];
	size_t		 n = sizeof(v_segment_ack);

	memcpy(b, v_segment_ack, n);
	b[n - 2] ^= 1;
	assert_int_equal(plc_decode(b, n, &f), PLC_E_CHECKSUM);
	memcpy(b, v_segment_ack, n);
	b[0] = 0x69;
	assert_int_equal(plc_decode(b, n, &f), PLC_E_START);
	memcpy(b, v_segment_ack, n);
	b[n - 1] = 0x17;
	assert_int_equal(plc_decode(b, n, &f), PLC_E_END);
	/* The length says more than there is, or less. */
	assert_int_equal(plc_decode(v_segment_ack, n - 1, &f), PLC_E_SHORT);
	memcpy(b, v_segment_ack, n);
	b[n] = 0;
	assert_int_equal(plc_decode(b, n + 1, &f), PLC_E_LENGTH);
	memcpy(b, v_segment_ack, n);
	b[1] = 10;			/* under the smallest frame */
	assert_int_equal(plc_decode(b, n, &f), PLC_E_LENGTH);
	b[1] = 0xff;
	b[2] = 0xff;			/* over PLC_FRAME_MAX */
	assert_int_equal(plc_decode(b, n, &f), PLC_E_LENGTH);
	/* Two Fn in DT1 (the CS fixed so only that is wrong). */
	memcpy(b, v_segment_ack, n);
	b[11] = 0x03;
	b[n - 2] = plc_sum(b + 3, n - 5);
	assert_int_equal(plc_decode(b, n, &f), PLC_E_FORMAT);
	/* A relay level without an address field. */
	memcpy(b, v_segment_ack, n);
	b[4] = 0x10;
	b[n - 2] = plc_sum(b + 3, n - 5);
	assert_int_equal(plc_decode(b, n, &f), PLC_E_FORMAT);
	/* The module flag set, but no room for the addresses. */
	memcpy(b, v_segment_ack, n);
	b[4] = 0x04;
	b[n - 2] = plc_sum(b + 3, n - 5);
	assert_int_equal(plc_decode(b, n, &f), PLC_E_FORMAT);
	assert_int_equal(plc_decode(b, 2, &f), PLC_E_SHORT);
	assert_string_equal(plc_strerror(PLC_E_CHECKSUM),
	    "checksum does not match");
}

static void
test_encode_limits(void **state)
{
	struct plc_frame f;
	uint8_t		 out[64];

	memset(&f, 0, sizeof(f));
	f.afn = PLC_AFN_QUERY;
	f.fn = 10;
	assert_int_equal(plc_encode(&f, out, 14), PLC_E_SPACE);
	assert_int_equal(plc_encode(&f, out, 15), 15);
	f.fn = 0;
	assert_int_equal(plc_encode(&f, out, sizeof(out)), PLC_E_RANGE);
	f.fn = 1;
	f.info.relay_level = 1;		/* relays but no address field */
	assert_int_equal(plc_encode(&f, out, sizeof(out)), PLC_E_RANGE);
	f.info.module = 1;
	f.info.relay_level = 16;
	assert_int_equal(plc_encode(&f, out, sizeof(out)), PLC_E_RANGE);
	/* One relay: A1, one A2, A3 = 18 address bytes. */
	f.info.relay_level = 1;
	assert_int_equal(plc_encode(&f, out, sizeof(out)), 15 + 18);
	assert_int_equal(plc_decode(out, 15 + 18, &f), PLC_OK);
	assert_int_equal(f.info.relay_level, 1);
}

/* ------------------------------------------------------------------ */
/* The stream deframer                                                  */

static void
test_deframer(void **state)
{
	struct plc_rx	 rx;
	const uint8_t	*p;
	uint8_t		 stream[256];
	size_t		 len, n = 0, i;
	int		 r, good = 0, bad = 0;

	/* Garbage, a frame with a bad checksum, a good frame, a stray 68H
	 * with a silly length, a good frame: fed one byte at a time. */
	stream[n++] = 0x00;
	stream[n++] = 0xfe;
	memcpy(stream + n, v_confirm, sizeof(v_confirm));
	stream[n + sizeof(v_confirm) - 2] ^= 0x55;
	n += sizeof(v_confirm);
	memcpy(stream + n, v_segment_ack, sizeof(v_segment_ack));
	n += sizeof(v_segment_ack);
	stream[n++] = 0x68;
	stream[n++] = 0x02;
	stream[n++] = 0x00;
	memcpy(stream + n, v_deny, sizeof(v_deny));
	n += sizeof(v_deny);

	plc_rx_init(&rx, 256);
	for (i = 0; i < n; i++) {
		assert_int_equal(plc_rx_feed(&rx, stream + i, 1), 1);
		while ((r = plc_rx_next(&rx, &p, &len)) != 0) {
			if (r < 0) {
				bad++;
				continue;
			}
			if (good == 0) {
				assert_int_equal(len, sizeof(v_segment_ack));
				assert_memory_equal(p, v_segment_ack, len);
			} else {
				assert_int_equal(len, sizeof(v_deny));
				assert_memory_equal(p, v_deny, len);
			}
			good++;
		}
	}
	assert_int_equal(good, 2);
	assert_true(bad >= 2);		/* the bad CS, the silly length */
	assert_true(rx.bad >= 2);

	/* Whole, in one piece: three frames back to back. */
	plc_rx_init(&rx, 256);
	n = 0;
	memcpy(stream, v_confirm, sizeof(v_confirm));
	n += sizeof(v_confirm);
	memcpy(stream + n, v_confirm, sizeof(v_confirm));
	n += sizeof(v_confirm);
	memcpy(stream + n, v_deny, sizeof(v_deny));
	n += sizeof(v_deny);
	assert_int_equal(plc_rx_feed(&rx, stream, n), n);
	good = 0;
	while ((r = plc_rx_next(&rx, &p, &len)) != 0) {
		assert_int_equal(r, 1);
		good++;
	}
	assert_int_equal(good, 3);

	/* A frame cut off: the line goes quiet, the start is dropped. */
	plc_rx_init(&rx, 256);
	assert_int_equal(plc_rx_feed(&rx, v_confirm, 8), 8);
	assert_int_equal(plc_rx_next(&rx, &p, &len), 0);
	assert_int_equal(plc_rx_stale(&rx), 1);
	assert_int_equal(plc_rx_feed(&rx, v_deny, sizeof(v_deny)),
	    sizeof(v_deny));
	assert_int_equal(plc_rx_next(&rx, &p, &len), 1);
	assert_memory_equal(p, v_deny, len);
	assert_int_equal(plc_rx_stale(&rx), 0);

	/* A frame longer than the deframer takes is refused. */
	plc_rx_init(&rx, 20);
	assert_int_equal(plc_rx_feed(&rx, v_monitor, sizeof(v_monitor)),
	    sizeof(v_monitor));
	assert_int_equal(plc_rx_next(&rx, &p, &len), PLC_E_LENGTH);
}

static void
test_addr(void **state)
{
	uint8_t		 a[6];
	char		 s[PLC_ADDR_TEXT];

	assert_int_equal(plc_addr_parse("201905000017", a), 0);
	assert_memory_equal(a, sta, 6);
	plc_addr_fmt(a, s, sizeof(s));
	assert_string_equal(s, "201905000017");
	assert_int_equal(plc_addr_parse("00000000abcd", a), 0);
	plc_addr_fmt(a, s, sizeof(s));
	assert_string_equal(s, "00000000ABCD");
	assert_int_equal(plc_addr_parse("20190500001", a), -1);
	assert_int_equal(plc_addr_parse("2019050000171", a), -1);
	assert_int_equal(plc_addr_parse("20190500001g", a), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dt),
		cmocka_unit_test(test_real_frames),
		cmocka_unit_test(test_run_mode),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_forwarding),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_deframer),
		cmocka_unit_test(test_addr),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
