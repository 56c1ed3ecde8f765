/*
 * sim_plc.h: inside the station-area personality (sim_plc.c: the
 * personality, the carrier medium and routing; sim_plc_cco.c: the
 * module at gw and its distribution; sim_plc_sta.c: the station
 * modules and their devices).  Nothing outside these three includes it.
 */
#ifndef SIM_PLC_H
#define SIM_PLC_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>

#include "upsim.h"

/* 1376.2 numbers (docs/transports/plc.md). */
#define AFN_ACK			0x00
#define AFN_QUERY		0x03
#define AFN_CONTROL		0x05
#define AFN_REPORT		0x06
#define AFN_ROUTE_QUERY		0x10
#define AFN_ROUTE_FWD		0x13
#define AFN_FILE		0x15
#define AFN_VENDOR		0xf0
#define DENY_NO_INFO		4
#define DENY_FORMAT		5
#define DENY_METER_SILENT	8
#define DENY_BUSY		9
#define DENY_UNSUPPORTED	10
#define DENY_NODE_SILENT	11
#define DENY_NOT_IN_NET		12
#define SEG_ERROR		0x0000ffffu

/* Carrier messages: type, hop target (endpoint index, FFFFH = the
 * sender's children), destination address (FF = every station), origin
 * address, message id, body. */
#define M_HDR			19
#define M_FWD			1	/* body: UP frame */
#define M_FWD_REPLY		2	/* body: answered (1), UP frame */
#define M_BCAST			3	/* body: UP frame */
#define M_EVENT			4	/* body: UP frame */
#define M_START			5	/* body: generation u16, size u32,
					 * block u16 */
#define M_BLOCK			6	/* body: index u32, generation u16,
					 * size u32, block u16, data */
#define M_QUERY			7	/* body: none */
#define M_QREPLY		8	/* body: have u32, dev u32, held u32,
					 * n u8, n missing u32 */
#define M_HOP_ALL		0xffff
#define M_MISSING_MAX		48

/* Upgrade states of F0H F201. */
#define UPG_IDLE		0
#define UPG_RECEIVING		1
#define UPG_DONE		2
#define UPG_FAILED		3

/* A carrier frame waiting for the medium. */
struct plc_msg {
	struct plc_msg	*next;
	unsigned int	 from;		/* endpoint that transmits it */
	int		 to;		/* endpoint, -1 = its children */
	unsigned int	 tries;
	size_t		 len;
	uint8_t		 b[];
};

/* The medium, scheduled by the coordinator: one frame at a time. */
struct plc_mac {
	struct plc_msg	*head;
	struct plc_msg	**tail;
	struct plc_msg	*air;		/* on the medium */
	const struct sim_tx *tx;
	bool		 acked;		/* its target heard it */
	bool		 ended;		/* tx_done */
	bool		 delivered;	/* its target's delivery came */
	uint64_t	 frames, retries, lost;
};

/* What a station module has to hand its device. */
struct plc_devq {
	uint8_t		 kind;		/* M_FWD or M_BCAST */
	uint32_t	 id;
	uint8_t		 len;
	uint8_t		 b[255];
};
#define DEVQ_MAX		8

/* The coordinator's view of one station in a distribution. */
struct plc_view {
	uint8_t		 state;		/* UPG_* */
	uint32_t	 have;		/* blocks its module reported */
	uint32_t	 dev;		/* blocks its device holds */
	uint32_t held; /* plc__contiguous blocks of its device */
	uint8_t		 nmissing;
	uint32_t	 missing[M_MISSING_MAX];
	unsigned int	 tries;		/* repair rounds without progress */
	bool		 asked;		/* a query is out */
	bool		 answered;	/* in the current status round */
};

/* One endpoint: the module at gw, or a station and its module. */
struct plc_node {
	struct sim_ep	*ep;
	bool		 cco;
	uint8_t		 addr[6];
	int		 parent;	/* endpoint index, -1 = none */
	unsigned int	 level;
	unsigned int	 nchild;
	uint64_t	 rate;		/* bit/s of its hop to its parent */
	struct q_rx	 rx;		/* frames from its program */
	struct event	*ev_stale;
	uint8_t		 seq;		/* its own PRM=1 frames */
	uint32_t	 flood_seen;	/* last flood id repeated */
	bool		 rebooting;
	struct event	*ev_reboot;

	/* Station: the device port. */
	struct plc_devq	 devq[DEVQ_MAX];
	unsigned int	 devq_head, devq_len;
	uint8_t		 dev_busy;	/* 0, M_FWD, M_BLOCK */
	uint8_t		 dev_seq;
	uint32_t	 dev_id;	/* M_FWD being answered */
	uint32_t	 dev_block;
	unsigned int	 dev_tries;
	struct event	*ev_dev;

	/* Station: the file. */
	uint16_t	 gen;		/* the module's file generation */
	uint32_t	 size;
	uint16_t	 bsize;
	uint32_t	 nblocks;
	uint8_t		*have;		/* bitmap: the module holds it */
	uint8_t		*dev;		/* bitmap: the device acknowledged */
	/* The blocks it holds (size bytes): its own copy, as a station
	 * module's flash, whatever the coordinator does with its file
	 * since (clears it, takes a new one). */
	uint8_t		*data;
	uint32_t	 nhave, ndev;

	struct plc_view	 view;		/* the coordinator's, of this one */
};

/* Distribution phases of the coordinator. */
enum plc_dist {
	D_IDLE = 0,
	D_START,		/* flooding the start notice */
	D_ROUND,		/* broadcast carousel */
	D_STATUS,		/* querying each station */
	D_REPAIR,		/* unicast blocks to a straggler */
	D_DONE
};

struct plc_sim {
	struct sim	*sim;
	struct plc_node	*node;		/* by endpoint index */
	unsigned int	 n;
	struct plc_node	*cco;
	struct plc_mac	 mac;
	uint32_t	 ids;

	/* Options. */
	uint16_t	 segment;
	uint16_t	 max_frame;
	uint8_t		 wait_min;
	uint8_t		 monitor_s;
	uint16_t	 broadcast_s;
	uint64_t	 module_ns;	/* per file segment */
	uint64_t	 answer_ns;	/* per local request */
	uint64_t	 boot_ns;
	uint64_t	 rate;
	unsigned int	 frame_bytes;
	uint16_t	 block;
	uint64_t	 pace_ns;
	unsigned int	 rounds;
	uint64_t	 query_ns;
	unsigned int	 repair_rounds;
	bool		 status_ext;
	bool		 f21;
	bool		 flash;
	uint64_t	 device_ns;
	unsigned int	 retries;

	/* The module's UART side. */
	bool		 booting;
	struct event	*ev_boot;
	struct event	*ev_req;	/* a request's processing or wait */
	enum {
		R_IDLE = 0,
		R_PROC,		/* its processing time runs */
		R_FWD,		/* 13H F1: waiting for the station */
		R_BCAST		/* 05H F3: its first hop on the medium */
	}		 req;
	uint8_t		 req_seq;
	uint8_t		 req_frame[Q_MAX];	/* the request, kept */
	size_t		 req_len;
	uint64_t	 req_t0;	/* its first character */
	int		 req_station;	/* 13H F1: endpoint */
	uint32_t	 req_id;	/* 13H F1 / 05H F3: message id */
	uint64_t	 requests, denied;

	/* Reports to the concentrator (06H F5, 03H F10), one at a time. */
	struct {
		uint8_t	 addr[6];
		bool	 run_mode;
		uint8_t	 len;
		uint8_t	 b[255];
	}		 rep[64];
	unsigned int	 rep_head, rep_len;
	bool		 rep_out;
	uint8_t		 rep_seq;
	unsigned int	 rep_tries;
	struct event	*ev_rep;
	uint64_t	 reports, reports_lost;

	/* The file, in "flash". */
	uint8_t		 file_id;
	uint16_t	 file_total;	/* segments */
	uint16_t	 file_seg;	/* length of segment 0 */
	uint16_t	 file_have;	/* plc__contiguous segments */
	uint32_t	 file_size;
	uint16_t	 file_gen;	/* counts the files completed */
	bool		 file_done;
	/* The transfer (hop 1): segment 0's first character, the last
	 * segment's acknowledgement's last (simulated ns). */
	uint64_t	 seg0_ns, segn_ns;
	uint8_t		*file;
	uint64_t	 segments_in;
	/*
	 * Resets, and what the transfer did after the last one: the
	 * segments held then, the first segment asked after it (-1: none
	 * yet) and whether a clear came first (the transfer started over
	 * rather than resumed by segment id).
	 */
	unsigned int	 resets;
	int		 reset_have;
	int		 resume_seg;
	bool		 resume_cleared;
	/*
	 * The last segment acknowledged (its index, and when the answer's
	 * last character is on the gateway's line), and at the last reset
	 * how many segments the gateway had seen acknowledged: a reset cuts
	 * an answer still on its way, so the module may hold one segment
	 * more than the gateway knows of (ack_idx -1: none since the
	 * clear; reset_acked -1: no reset yet).
	 */
	int		 ack_idx;
	uint64_t	 ack_ns;
	int		 reset_acked;

	/* The distribution. */
	enum plc_dist	 dist;
	struct event	*ev_dist;
	unsigned int	 round;
	uint32_t	 nblocks;
	uint32_t	 next_block;
	uint8_t		*need;		/* blocks the round sends */
	unsigned int	 starts;
	unsigned int	 qidx;		/* station being queried */
	uint32_t	 qid;
	unsigned int	 ridx;		/* straggler being repaired */
	unsigned int	 rblk;		/* its missing block being sent */
	uint64_t	 t_file_ns;	/* file complete */
	uint64_t	 t_done_ns;
	uint64_t	 blocks_bc, blocks_uc, queries;
};

/* The personality's state (sim_plc.c owns it). */
extern struct plc_sim	*plcs;
/* The destination of a flood. */
extern const uint8_t	 plc__all_stations[6];

/* sim_plc.c: helpers, the medium, routing, lines */
int		 plc__cause(char **, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
bool		 plc__opt_uint(const char *key, unsigned long max,
		    unsigned long *, char **cause);
bool		 plc__opt_bool(const char *key);
struct plc_node	*plc__node_of(const struct sim_ep *);
/* The station with this address, or NULL. */
struct plc_node	*plc__node_by_addr(const uint8_t addr[6]);
unsigned int	 plc__node_idx(const struct plc_node *);
/* Is a an ancestor of b, or b itself? */
bool		 plc__ancestor(const struct plc_node *a,
		    const struct plc_node *b);
bool		 plc__bit_get(const uint8_t *, uint32_t);
void		 plc__bit_set(uint8_t *, uint32_t);
/* Bits set from 0 on. */
uint32_t	 plc__contiguous(const uint8_t *, uint32_t n);
uint64_t	 plc__airtime(struct sim *, const struct sim_ep *, size_t);
/* Queues a carrier frame from `from' to endpoint `to' (-1: its
 * children). */
void		 plc__mac_send(struct plc_node *from, int to, const uint8_t *,
		    size_t);
void		 plc__mac_pump(void);
/* A message's header: type, destination, origin, id. */
void		 plc__msg_build(uint8_t *, uint8_t type, const uint8_t dst[6],
		    const uint8_t org[6], uint32_t id);
/* Sends a message from `from' toward its destination, hop by hop. */
void		 plc__msg_route(struct plc_node *from, const uint8_t *,
		    size_t);
/* A message reached a node (its own, a flood, or to pass on). */
void		 plc__message(struct plc_node *, const uint8_t *, size_t);
/* A 1376.2 frame to a node's program; when its last character is due. */
uint64_t	 plc__line_frame(struct plc_node *, uint8_t c, uint8_t seq,
		    bool addressed, const uint8_t *src, const uint8_t *dst,
		    uint8_t afn, uint16_t fn, const uint8_t *du, size_t dulen);
void		 plc__stale_cb(evutil_socket_t, short, void *);

/* sim_plc_cco.c: the module at gw */
void		 plc__cco_frame(const uint8_t *, size_t, uint64_t t_end);
void		 plc__cco_fwd_reply(const uint8_t *, size_t);
void		 plc__cco_report(const uint8_t addr[6], bool run_mode,
		    const uint8_t *, size_t);
void		 plc__cco_qreply(struct plc_node *, const uint8_t *, size_t);
void		 plc__cco_confirm_now(void);
size_t		 plc__cco_run_mode(uint8_t *du, size_t cap);
void		 plc__cco_boot_cb(evutil_socket_t, short, void *);
void		 plc__cco_req_cb(evutil_socket_t, short, void *);
void		 plc__cco_report_cb(evutil_socket_t, short, void *);
void		 plc__dist_cb(evutil_socket_t, short, void *);
void		 plc__dist_kick(uint64_t at);

/* sim_plc_sta.c: the stations */
void		 plc__sta_file_init(struct plc_node *, uint16_t gen,
		    uint32_t size, uint16_t bsize);
void		 plc__sta_qreply(struct plc_node *, uint32_t id);
void		 plc__sta_frame(struct plc_node *, const uint8_t *, size_t);
void		 plc__sta_reset(struct plc_node *);
void		 plc__dev_pump(struct plc_node *);
void		 plc__dev_cb(evutil_socket_t, short, void *);
void		 plc__devq_push(struct plc_node *, uint8_t kind, uint32_t id,
		    const uint8_t *, size_t);

#endif /* SIM_PLC_H */
