/*
 * tp_mem.h: an in-memory transport implementing struct tp_ops, for the
 * fan-out engine's tests (tests/unit/engine/, and the campaigns' in
 * tests/unit/bridge/) (STYLE.md, "Tests": fakes at the seams).
 *
 * A medium is one broadcast domain shared by one gateway instance (opened
 * by the engine through tp_mem_ops, section name == medium name) and any
 * number of simulated receivers.  Frames from the gateway are copied into
 * a ring of tx_queue slots (TP_EAGAIN when full, then writable() once it
 * drains) and delivered from an event, never from inside send(); each
 * receiver drops a configurable share of them (independent per-receiver
 * loss, deterministic PRNG).  Receivers send back through
 * tp_mem_node_send(), also delivered from an event.  The medium counts
 * what crossed it so tests can check the engine's traffic.
 *
 * Link shapes (docs/engine.md, "Link shapes"), chosen by caps.flags and
 * run on the medium's fake clock (tp_mem_set_clock, required):
 *  - TP_CAP_CONNECT: every receiver is a peripheral the gateway must
 *    connect to (at most caps.max_peers at once, TP_EAGAIN beyond);
 *    TP_PEER_FOUND for each at start, TP_PEER_UP after connect_ms with
 *    the connection's first MTU (mtu_first, e.g. ATT 23 - 3), TP_PEER_MTU
 *    mtu_ms later with caps.mtu (the MTU exchange).  A frame larger than
 *    its connection's MTU is refused (TP_EMSGSIZE, counted).  Each
 *    connection moves its frames at peer_bps, one after the other, with
 *    a tx_done each; at most caps.tx_queue frames wait in all.  A node
 *    sends only while connected (else its frame is lost, counted).
 *  - TP_CAP_POLLED: a half-duplex bus at caps.bitrate_bps, one operation
 *    at a time: a broadcast frame, a unicast frame confirmed by the node
 *    (ack_len bytes after turn_us), or a poll (8 bytes, turn_us, the
 *    node's oldest outbox frame or an empty answer of 5 bytes), each
 *    followed by caps.min_gap_us of silence.  A node's frames wait in its
 *    outbox (8 at most) until polled.  Loss hits frames, confirmations
 *    (a lost unicast frame ends with TP_EIO) and poll answers (TP_EIO,
 *    the frame stays in the outbox).
 *  - TP_CAP_OFFLOAD: a carrier module.  offload_start() makes it pull
 *    the package through offload_read() in segments of
 *    caps.offload_segment bytes and send one segment every seg_ms to its
 *    stations on its own medium (each station's loss: off_loss), then
 *    repeat what each misses for off_rounds rounds, reporting per
 *    station progress; a station still missing segments is given up
 *    (TP_OFF_FAILED).  Stations get the bytes through their oob hook.
 *  - A radio (TP_CAP_BROADCAST and TP_CAP_HALF_DUPLEX, none of the three
 *    above): every frame, the gateway's and the nodes', is on the air
 *    for its time on air (air_fn, else (len + frame_overhead) * 8 /
 *    bitrate); the gateway sends one frame at a time, receivers get it
 *    when it ends, and tx_done reports it then with its airtime.  The
 *    gateway hears nothing while it sends, a node nothing while it
 *    sends, and two node frames on the air at once are both lost
 *    (collisions); a node sends its frames one after the other.  Loss
 *    is drawn per receiver and frame as on the wire.
 */
#ifndef TP_MEM_H
#define TP_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

struct event_base;
struct tp_mem_medium;
struct tp_mem_node;

struct tp_mem_params {
	struct tp_caps	 caps;		/* reported as is */
	uint32_t	 airtime_us;	/* tp_mem_air_ops: per frame */
	bool		 tx_done;	/* call host->tx_done per frame */
	/* TP_CAP_CONNECT */
	uint32_t	 connect_ms;
	uint32_t	 mtu_first;	/* 0: caps.mtu from the start */
	uint32_t	 mtu_ms;	/* 0: no exchange */
	uint64_t	 peer_bps;	/* 0: caps.bitrate_bps */
	/* TP_CAP_POLLED */
	uint32_t	 turn_us;
	uint32_t	 ack_len;
	uint32_t	 bcast_gap_us;	/* more silence after a broadcast */
	/* TP_CAP_OFFLOAD */
	uint32_t	 seg_ms;
	uint32_t	 off_rounds;
	/*
	 * A radio's time on air of a len-byte frame, us (NULL: from the
	 * caps' rate): tp_mem_air_ops's airtime() and the radio's timing.
	 */
	uint32_t	 (*air_fn)(size_t len);
	/* tx_done reports this much more airtime than air_fn (a model
	 * that underestimates), us. */
	uint32_t	 air_extra_us;
};

struct tp_mem_counts {
	uint64_t	 frames;	/* gateway frames accepted */
	uint64_t	 bytes;
	uint64_t	 by_type[16];	/* per UP type */
	uint64_t	 data_lost_any;	/* DATA lost by >= 1 receiver */
	uint64_t	 lost;		/* receiver-frame drops */
	uint64_t	 eagain;
	uint64_t	 max_outstanding;	/* sent, no tx_done yet */
	uint64_t	 first_us;	/* any frame, monotonic */
	uint64_t	 last_us;
	uint64_t	 first_data_us;	/* monotonic, 0 = none yet */
	uint64_t	 last_data_us;
	uint64_t	 data_bytes;	/* DATA frames, bytes */
	uint32_t	 last_offer_session;
	uint32_t	 last_session;	/* of any gateway frame */
	/* Link shapes. */
	uint64_t	 max_frame;	/* largest gateway frame */
	uint64_t	 data_bcast;	/* DATA frames to all */
	uint64_t	 data_unicast;	/* ... to one node */
	uint64_t	 emsgsize;	/* refused: larger than its mtu */
	uint64_t	 connects;
	uint64_t	 disconnects;
	uint64_t	 drops;		/* connections the test dropped */
	uint64_t	 max_connected;
	uint64_t	 ul_lost;	/* node frames with no connection */
	uint64_t	 polls;
	uint64_t	 polls_empty;
	uint64_t	 bus_us;	/* polled: bus busy */
	uint64_t	 busy;		/* polled: refused busy (TP_EBUSY) */
	uint64_t	 off_segments;	/* module: segments sent */
	uint64_t	 off_reads;	/* module: offload_read calls */
	/* A radio. */
	uint64_t	 air_us;	/* the gateway's time on air */
	uint64_t	 ul_frames;	/* node frames sent */
	uint64_t	 ul_air_us;	/* ... their time on air */
	uint64_t	 collisions;	/* node frames lost to each other */
	uint64_t	 deaf;		/* ... lost while the gateway sent */
	uint64_t	 missed;	/* gateway frames a sending node missed */
};

typedef void	 tp_mem_rx_fn(void *arg, const uint8_t *frame, size_t len);
/*
 * Sees every gateway frame the medium accepts, at its clock's now (a
 * radio: when the frame goes on the air).
 */
typedef void	 tp_mem_tx_fn(void *arg, uint64_t now_us, const uint8_t *frame,
		    size_t len);

extern const struct tp_ops tp_mem_ops;
/* With ops->airtime: params.air_fn, else params.airtime_us. */
extern const struct tp_ops tp_mem_air_ops;
/* A polled bus: poll, poll_time, exact bus airtime (caps TP_CAP_POLLED). */
extern const struct tp_ops tp_mem_bus_ops;

/* Creates (or resets) the medium `name'. */
struct tp_mem_medium *tp_mem_medium_new(struct event_base *,
		    const char *name, const struct tp_mem_params *);
void		 tp_mem_medium_free(struct tp_mem_medium *);
/* While held, sent frames stay in the ring (forces TP_EAGAIN). */
void		 tp_mem_hold(struct tp_mem_medium *, bool);
struct tp_mem_counts *tp_mem_counts(struct tp_mem_medium *);
/* Frames queued in the ring now. */
unsigned int	 tp_mem_queued(struct tp_mem_medium *);
/* True while a gateway instance is open on it. */
bool		 tp_mem_open(struct tp_mem_medium *);
/*
 * A fake clock (tclock.h) for the medium's counters and its receivers'
 * timers (sim_node.c); NULL (the default): the real clock.
 */
struct tclock;
void		 tp_mem_set_clock(struct tp_mem_medium *, struct tclock *);
struct tclock	*tp_mem_clock(struct tp_mem_medium *);
void		 tp_mem_set_tx_hook(struct tp_mem_medium *, tp_mem_tx_fn *,
		    void *);

/* A receiver with link address `id' (1..255) and loss in percent. */
struct tp_mem_node *tp_mem_node_new(struct tp_mem_medium *, uint8_t id,
		    double loss_pct, uint32_t seed, tp_mem_rx_fn *, void *arg);
void		 tp_mem_node_free(struct tp_mem_node *);
void		 tp_mem_node_loss(struct tp_mem_node *, double loss_pct);
/* Sends a frame from the receiver to the gateway (copied). */
void		 tp_mem_node_send(struct tp_mem_node *, const uint8_t *,
		    size_t);
/* RESULT_ACKs unicast to this receiver. */
uint64_t	 tp_mem_node_acks(struct tp_mem_node *);

/*
 * Link shapes.  link: the node's connection is up with mtu, or down
 * (0); oob: the module delivered file bytes [off, off + len).
 */
typedef void	 tp_mem_link_fn(void *arg, uint32_t mtu);
typedef void	 tp_mem_oob_fn(void *arg, uint64_t off, const uint8_t *,
		    size_t len);
void		 tp_mem_node_hooks(struct tp_mem_node *, tp_mem_link_fn *,
		    tp_mem_oob_fn *);
/* The node's connection drops now (a fault: TP_PEER_DOWN, TP_EIO). */
void		 tp_mem_node_drop(struct tp_mem_node *);
/* An absent node: connects to it fail. */
void		 tp_mem_node_absent(struct tp_mem_node *, bool);
/*
 * A polled bus: the node refuses pct % of the operations to it (its
 * unicast frames and polls end with TP_EBUSY, Modbus exception 06;
 * broadcasts it ignores) until the medium's clock reaches until_us.
 */
void		 tp_mem_node_busy(struct tp_mem_node *, double pct,
		    uint64_t until_us);
/* Its unicast frames and polls refused so far. */
uint64_t	 tp_mem_node_busy_refused(struct tp_mem_node *);
/* Its next connections keep their first MTU (no exchange). */
void		 tp_mem_node_no_exchange(struct tp_mem_node *, bool);
/* Its loss on the module's own medium (offload), percent. */
void		 tp_mem_node_off_loss(struct tp_mem_node *, double);
/* Its connection's mtu now, 0: not connected. */
uint32_t	 tp_mem_node_mtu(struct tp_mem_node *);
/* Connections up or being made now. */
unsigned int	 tp_mem_connected(struct tp_mem_medium *);
/* The link goes down / up, or its caps change (TP_CAPS_CHANGED). */
void		 tp_mem_link(struct tp_mem_medium *, enum tp_link_event);
void		 tp_mem_set_caps(struct tp_mem_medium *, const struct tp_caps *);

#endif /* TP_MEM_H */
