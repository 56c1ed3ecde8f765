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
};

typedef void	 tp_mem_rx_fn(void *arg, const uint8_t *frame, size_t len);
/* Sees every gateway frame the medium accepts, at its clock's now. */
typedef void	 tp_mem_tx_fn(void *arg, uint64_t now_us, const uint8_t *frame,
		    size_t len);

extern const struct tp_ops tp_mem_ops;
/* With ops->airtime returning params.airtime_us. */
extern const struct tp_ops tp_mem_air_ops;

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

#endif /* TP_MEM_H */
