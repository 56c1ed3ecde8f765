/*
 * mb_internal.h: inside the Modbus plugins (modbus-rtu, modbus-tcp),
 * docs/transports/modbus.md.
 *
 * libmodbus calls block (a request waits for its reply, up to the
 * response timeout), so every one of them runs on a worker thread: one
 * per serial bus, one per connected TCP server (a "channel").  The event
 * loop hands a channel jobs from a preallocated pool, the worker runs
 * them in order and hands them back through a socketpair; every host
 * callback then fires from the loop (tp_modbus.c), never from a worker
 * and never from inside an op.  The worker also keeps the line's
 * timing that libmodbus does not: the 3.5-character silence before
 * each request, and a broadcast that waits for no reply.
 *
 * Locking: one mutex per instance guards the queues (each channel's
 * pending jobs, the done list, the free list) and nothing else.  A job
 * is owned by the loop while free or done, by the worker from the time
 * it leaves the channel's queue until it is put on the done list.
 */
#ifndef MB_INTERNAL_H
#define MB_INTERNAL_H

#include <sys/queue.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <modbus.h>

#include "transport.h"
#include "up.h"

#define MB_UNITS_MAX	247	/* RTU unit ids 1..247 */
#define MB_TCP_PEERS_MAX 64	/* servers one modbus-tcp instance lists */
/*
 * Probes of a unit per round: a reply garbled on the line (CRC), from
 * another unit or an exception is tried again at once, up to
 * MB_PROBE_TRIES; silence (a timeout) once more, since the request may
 * have been what the line lost.
 */
#define MB_PROBE_TRIES	3
#define MB_PROBE_TRIES_SILENT 2
#define MB_POLL_REGS	16	/* frame registers the first poll read takes */

enum mb_kind {
	MB_RTU,
	MB_TCP
};

enum mb_op {
	MB_OP_SEND,		/* FC 0x10 into FRAME (unit 0: broadcast) */
	MB_OP_POLL,		/* FC 0x17 ack + outbox, FC 0x03 the rest */
	MB_OP_PROBE,		/* FC 0x04 the identity header */
	MB_OP_CONNECT,		/* TCP: connect, then probe */
	MB_OP_CLOSE		/* TCP: close the connection */
};

struct mb_chan;

struct mb_job {
	TAILQ_ENTRY(mb_job)	 entry;
	enum mb_op		 op;
	struct mb_chan		*chan;
	int			 peer;	/* index in tp->peers, -1: broadcast */
	uint8_t			 unit;	/* 0: broadcast */
	uint64_t		 cookie;
	/* In: MB_OP_SEND's frame, MB_OP_POLL's acknowledgement. */
	size_t			 len;
	uint8_t			 frame[UP_MB_FRAME_MAX];
	uint16_t		 ack;
	/* Out. */
	int			 status;	/* enum tp_status */
	int			 err;		/* errno of a failure */
	const char		*what;		/* the request that failed */
	uint32_t		 line_us;	/* time the job held the line */
	uint16_t		 seq;		/* MB_OP_POLL: the frame's */
	size_t			 rxlen;		/* ... length, 0: none */
	uint8_t			 rx[UP_MB_OB_MAX];
	struct up_mb_ident	 ident;		/* MB_OP_PROBE, _CONNECT */
};
TAILQ_HEAD(mb_jobq, mb_job);

/* One libmodbus context and the worker thread that owns it. */
struct mb_chan {
	struct tp		*t;
	modbus_t		*ctx;
	int			 peer;		/* TCP: its peer, RTU: -1 */
	pthread_t		 thread;
	bool			 running;	/* thread created */
	bool			 stop;		/* under t->lock */
	pthread_cond_t		 cond;		/* jobs queued or stop */
	struct mb_jobq		 q;		/* under t->lock */
	unsigned int		 depth;		/* queued + running (loop) */
	/* Worker only. */
	uint64_t		 quiet_ns;	/* line free for a request */
	bool			 connected;
};

enum mb_peer_state {
	MB_PS_IDLE,		/* TCP: not connected */
	MB_PS_CONNECTING,
	MB_PS_UP,
	MB_PS_CLOSING
};

/* A node: an RTU unit id, or a TCP server (and its unit id). */
struct mb_peer {
	struct tp_addr		 addr;
	uint8_t			 unit;
	bool			 found;		/* TP_PEER_FOUND told */
	bool			 probe_due;	/* to probe (RTU) */
	bool			 probing;	/* a probe is out */
	uint8_t			 probe_tries;	/* failed this round */
	uint16_t		 ack;		/* last outbox seq read */
	uint32_t		 errors;	/* in a row, for the logs */
	uint16_t		 rx_max;	/* its FRAME window, bytes */
	/* TCP. */
	char			 host[64];
	uint16_t		 port;
	enum mb_peer_state	 state;
	struct mb_chan		 chan;
};

struct tp {
	const struct tp_host	*host;
	char			*name;
	enum mb_kind		 kind;
	struct tp_caps		 caps;
	struct tp_stats		 stats;

	/* Line (RTU). */
	char			*device;
	unsigned int		 baud;
	char			 parity;	/* 'N', 'E', 'O' */
	int			 data_bits;
	int			 stop_bits;
	int			 rs485;		/* -1 auto, 0 no, 1 yes */
	uint32_t		 char_ns;	/* one character on the line */
	uint32_t		 t35_ns;	/* the silence between frames */
	uint32_t		 bcast_gap_us;	/* extra after a broadcast */

	uint32_t		 response_ms;
	uint32_t		 probe_s;	/* re-probe silent units */
	unsigned int		 queue;		/* tx_queue per channel */

	struct mb_peer		*peers;
	size_t			 npeers;
	struct mb_chan		 bus;		/* RTU: the one channel */

	pthread_mutex_t		 lock;
	bool			 lock_init;
	struct mb_jobq		 free;		/* under lock */
	struct mb_jobq		 done;		/* under lock */
	struct mb_job		*jobs;
	size_t			 njobs;
	int			 sp[2];		/* worker -> loop wake-ups */
	struct event		*ev_done;
	struct event		*ev_probe;	/* probe timer (RTU) */
	struct event		*ev_found;	/* deferred FOUND (TCP) */
	struct event		*ev_reopen;	/* a lost port (RTU) */

	bool			 started;
	bool			 want_writable;
	bool			 link_up;
	bool			 link_told;
	unsigned int		 in_cb;
	bool			 dead;
};

/* mb_chan.c: channels and their workers */
int		 mb__chan_init(struct tp *, struct mb_chan *, int peer,
		    char **cause);
int		 mb__chan_start(struct mb_chan *, char **cause);
/* Stops and joins the worker, closes and frees the context. */
void		 mb__chan_fini(struct mb_chan *);
/* Queues a job (lock held by the caller). */
void		 mb__chan_push(struct mb_chan *, struct mb_job *);

/* A serial line back to raw, before modbus_connect() (RTU). */
void		 mb__line_reset(const char *device);
/* Line time of n characters, us. */
uint32_t	 mb__chars_us(const struct tp *, size_t n);

#endif /* MB_INTERNAL_H */
