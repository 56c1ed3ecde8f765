/*
 * plc_internal.h: inside the "plc" transport (transports/plc/), UP and
 * file transfer through a Q/GDW 1376.2 carrier module (docs/transports/
 * plc.md).
 *
 * Four files, one concern each:
 *  - plc_frame.c: the 1376.2 frame (Q/GDW 1376.2-2013 §4.3, §5.1-5.4):
 *    bounded cursors, encode and decode in both directions, the stream
 *    deframer that finds frames in what the UART delivers, addresses;
 *  - plc_du.c: the data units of the AFNs this transport speaks (§5.5);
 *  - plc_link.c: the link discipline on the UART: one request at a time,
 *    sequence numbers, retries and the module's own timeouts, confirming
 *    what the module reports by itself;
 *  - tp_plc.c: the plugin (transports/transport.h): module set-up,
 *    topology, UP frames carried in forwarding frames, the file transfer
 *    (AFN 15H F1) with resume by segment id, the upgrade status.
 *
 * Everything multi-byte on the wire is little-endian; station addresses
 * are the 6 bytes of the address field as sent (BCD, low byte first).
 * Decoders read through struct plc_cur and never past its length;
 * encoders write through struct plc_wr and never past its capacity.
 */
#ifndef PLC_INTERNAL_H
#define PLC_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct event;

/* ------------------------------------------------------------------ */
/* Sizes (Q/GDW 1376.2-2013 §4.3, §5.1)                                */

#define PLC_START		0x68
#define PLC_END			0x16
#define PLC_ADDR_LEN		6
#define PLC_INFO_LEN 6 /* information field R, both directions */
#define PLC_RELAY_MAX		15	/* relay level is 4 bits */
/* 68H, L (2), C, R (6), AFN, DT1, DT2, CS, 16H. */
#define PLC_FRAME_MIN		15
/*
 * The length field is 16 bits, but modules declare far less (03H F10:
 * 1024 or 2048 is common).  Frames longer than this are refused.
 */
#define PLC_FRAME_MAX		4096
/* Bytes the frame adds to its data unit without / with an address
 * field of no relays: 68 L L C R AFN DT DT CS 16, and A1 + A3. */
#define PLC_OVERHEAD		15
#define PLC_OVERHEAD_ADDR	27

/* Control field C (§5.1): D7 direction, D6 start flag, D5-D0 type. */
#define PLC_C_DIR_UP		0x80	/* module -> concentrator */
#define PLC_C_PRM		0x40	/* sent by the initiating station */
#define PLC_C_TYPE_MASK		0x3f
/* Communication types (D5-D0). */
#define PLC_COMM_NARROWBAND	1	/* centralised routing carrier */
#define PLC_COMM_DISTRIBUTED	2	/* distributed routing carrier */
#define PLC_COMM_HPLC		3	/* broadband carrier (HPLC) */
#define PLC_COMM_RF		10	/* micro-power wireless */

/* Application function codes (§5.4, table "AFN"). */
enum plc_afn {
	PLC_AFN_ACK = 0x00,		/* confirm / deny */
	PLC_AFN_INIT = 0x01,
	PLC_AFN_FORWARD = 0x02,		/* data forwarding */
	PLC_AFN_QUERY = 0x03,		/* query data */
	PLC_AFN_CONTROL = 0x05,		/* control commands */
	PLC_AFN_REPORT = 0x06,		/* module-initiated reports */
	PLC_AFN_ROUTE_QUERY = 0x10,	/* routing queries */
	PLC_AFN_ROUTE_SET = 0x11,
	PLC_AFN_ROUTE_CTRL = 0x12,
	PLC_AFN_ROUTE_FWD = 0x13,	/* routed data forwarding */
	PLC_AFN_ROUTE_READ = 0x14,
	PLC_AFN_FILE = 0x15,		/* file transfer */
	PLC_AFN_VENDOR = 0xf0		/* internal / vendor debugging */
};

/* Fn numbers this transport uses, by AFN (docs/transports/plc.md). */
#define PLC_FN_CONFIRM		1	/* 00H */
#define PLC_FN_DENY		2	/* 00H */
#define PLC_FN_RUN_MODE		10	/* 03H: module run mode info */
#define PLC_FN_BROADCAST	3	/* 05H: start broadcast */
#define PLC_FN_EVENT		5	/* 06H: report a station's event */
#define PLC_FN_NODE_COUNT	1	/* 10H: number of stations */
#define PLC_FN_NODE_INFO	2	/* 10H: station list, relay level */
#define PLC_FN_NODE_RELAY	3	/* 10H: a station's upper relays */
#define PLC_FN_ROUTE_STATE	4	/* 10H: route run state */
#define PLC_FN_TOPOLOGY		21	/* 10H: network topology */
#define PLC_FN_MONITOR 1 /* 13H: monitor (forward to) a station */
#define PLC_FN_FILE		1	/* 15H: file transfer mode 1 */
/* Vendor extension (AFN F0H, docs/transports/plc.md): per-station
 * upgrade status of the module's own distribution. */
#define PLC_FN_UPG_STATUS	201

/* Deny error codes (00H F2). */
enum plc_deny {
	PLC_DENY_TIMEOUT = 0, /* communication timeout */
	PLC_DENY_BAD_DU = 1, /* invalid data unit */
	PLC_DENY_LENGTH = 2,
	PLC_DENY_CHECKSUM = 3,
	PLC_DENY_NO_INFO = 4, /* information class does not exist */
	PLC_DENY_FORMAT = 5,
	PLC_DENY_DUP_METER = 6,
	PLC_DENY_NO_METER = 7, /* no such station */
	PLC_DENY_METER_SILENT = 8, /* the meter's application did not answer */
	PLC_DENY_BUSY = 9, /* master node busy */
	PLC_DENY_UNSUPPORTED = 10, /* master node does not support it */
	PLC_DENY_NODE_SILENT = 11, /* the station did not answer */
	PLC_DENY_NOT_IN_NET = 12 /* the station is not in the network */
};
const char	*plc_deny_str(unsigned int code);

/* Errors of the codec (negative), plc_strerror() names them. */
enum plc_err {
	PLC_OK = 0,
	PLC_E_SHORT = -1,	/* input ends before a length says */
	PLC_E_START = -2,	/* first byte is not 68H */
	PLC_E_LENGTH = -3,	/* length field out of range */
	PLC_E_END = -4,		/* last byte is not 16H */
	PLC_E_CHECKSUM = -5,	/* CS does not match */
	PLC_E_FORMAT = -6,	/* a field inconsistent with another */
	PLC_E_UNKNOWN = -7,	/* AFN or Fn this transport does not know */
	PLC_E_SPACE = -8,	/* output buffer too small */
	PLC_E_RANGE = -9	/* a value out of its range */
};
const char	*plc_strerror(int);

/* ------------------------------------------------------------------ */
/* Bounded cursors                                                     */

/* Reading: every get checks the length first; the first failure sticks. */
struct plc_cur {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 err;		/* 0 or PLC_E_SHORT */
};
void		 plc_cur_init(struct plc_cur *, const uint8_t *, size_t);
uint8_t		 plc_get_u8(struct plc_cur *);
uint16_t	 plc_get_u16(struct plc_cur *);
uint32_t	 plc_get_u32(struct plc_cur *);
/* Copies n bytes (zeros on failure). */
void		 plc_get_bytes(struct plc_cur *, uint8_t *, size_t n);
/* Borrows n bytes in place; NULL on failure. */
const uint8_t	*plc_get_ref(struct plc_cur *, size_t n);
size_t		 plc_cur_left(const struct plc_cur *);

/* Writing: every put checks the capacity first; the first failure sticks. */
struct plc_wr {
	uint8_t		*p;
	size_t		 cap;
	size_t		 len;
	int		 err;		/* 0 or PLC_E_SPACE */
};
void		 plc_wr_init(struct plc_wr *, uint8_t *, size_t cap);
void		 plc_put_u8(struct plc_wr *, uint8_t);
void		 plc_put_u16(struct plc_wr *, uint16_t);
void		 plc_put_u32(struct plc_wr *, uint32_t);
void		 plc_put_bytes(struct plc_wr *, const void *, size_t);

/* ------------------------------------------------------------------ */
/* plc_frame.c: the frame                                              */

/*
 * Information field R (§5.2).  Downlink and uplink share byte 0 (route
 * flag, communication module flag, relay level), byte 1's channel and
 * byte 5 (the message sequence number); the rest differs.
 */
struct plc_info {
	/* byte 0 */
	uint8_t		 route;		/* D0: 1 = bypass the routing */
	uint8_t		 attached;	/* D1 (down): attached nodes follow */
	uint8_t		 module;	/* D2: 1 = a station is addressed and
					 * the address field A is present */
	uint8_t		 collision;	/* D3 (down): collision detection */
	uint8_t		 relay_level;	/* D4-D7: relays in A2 */
	/* byte 1 */
	uint8_t		 channel;	/* D0-D3 */
	uint8_t		 ecc;		/* D4-D7 (down): error coding */
	/* down: bytes 2-4 */
	uint8_t		 reply_bytes;	/* expected answer bytes */
	uint16_t	 rate;		/* D15: 1 = kbit/s; 0 = default */
	/* up: bytes 2-4 */
	uint8_t		 phase;		/* D0-D3: measured phase */
	uint8_t		 meter_ch;	/* D4-D7: meter channel feature */
	uint8_t		 q_cmd;		/* last hop command quality, 0-15 */
	uint8_t		 q_reply;	/* last hop answer quality, 0-15 */
	uint8_t		 event;		/* D0 of byte 4: an event waits */
	/* byte 5 */
	uint8_t		 seq;
};

/*
 * A frame.  Decoding fills it from a buffer and `data' points into that
 * buffer (valid as long as it is); encoding reads it.
 */
struct plc_frame {
	uint8_t		 c;		/* control field */
	struct plc_info	 info;
	/* Address field A (§5.3), when info.module is 1. */
	uint8_t		 src[PLC_ADDR_LEN];	/* A1 */
	uint8_t		 relay[PLC_RELAY_MAX][PLC_ADDR_LEN]; /* A2 */
	uint8_t		 dst[PLC_ADDR_LEN];	/* A3 */
	uint8_t		 afn;
	uint16_t	 fn;		/* 1-248 */
	const uint8_t	*data;		/* the data unit */
	size_t		 len;
};
#define PLC_FRAME_UP(f)		(((f)->c & PLC_C_DIR_UP) != 0)
#define PLC_FRAME_PRM(f)	(((f)->c & PLC_C_PRM) != 0)

/* Fn <-> data unit identifier DT1/DT2 (§5.4.2): DT2 is the group,
 * DT1 one bit per Fn of the group.  One Fn per frame here. */
int		 plc_fn_to_dt(unsigned int fn, uint8_t *dt1, uint8_t *dt2);
/* The Fn of DT1/DT2, or 0 when DT1 has not exactly one bit set. */
unsigned int	 plc_dt_to_fn(uint8_t dt1, uint8_t dt2);

/* Arithmetic sum of the bytes mod 256 (the checksum CS). */
uint8_t		 plc_sum(const uint8_t *, size_t);

/*
 * Encodes `f' into buf[cap].  Returns the frame's length, or
 * PLC_E_SPACE / PLC_E_RANGE (a relay level over 15, an Fn not in
 * 1-248, a frame over PLC_FRAME_MAX).
 */
int		 plc_encode(const struct plc_frame *, uint8_t *buf, size_t cap);
/*
 * Decodes exactly one whole frame of `len' bytes: start, length (it must
 * equal len), end, checksum, the information and address fields, AFN and
 * DT.  It does not look at the data unit.  Returns PLC_OK or an error;
 * on error `f' is undefined.
 */
int		 plc_decode(const uint8_t *buf, size_t len, struct plc_frame *);

/*
 * The stream deframer: what the UART gives, in pieces, becomes whole
 * frames.  Bytes before a 68H are skipped (counted); a frame whose
 * length is out of range, whose end is not 16H or whose checksum is
 * wrong is dropped and the search resumes one byte after its start.
 */
struct plc_rx {
	uint8_t		 buf[PLC_FRAME_MAX];
	size_t		 len;
	size_t		 used;		/* the frame returned last, to drop */
	size_t		 max;		/* longest frame accepted */
	uint64_t	 skipped;	/* bytes not part of a frame */
	uint64_t	 bad;		/* frames dropped */
	int		 last_err;	/* why the last one was dropped */
};
void		 plc_rx_init(struct plc_rx *, size_t max);
/* Appends n bytes; returns how many were taken (the rest: call again
 * after plc_rx_next() made room). */
size_t		 plc_rx_feed(struct plc_rx *, const uint8_t *, size_t n);
/*
 * The next whole frame: 1 with *frame and *len set, pointing into the
 * deframer (valid until the next call), 0 when more bytes are needed,
 * or a negative plc_err for a frame just dropped (call again).
 */
int plc_rx_next(struct plc_rx *, const uint8_t **frame, size_t *len);
/* Forgets what is buffered (after a reset of the line). */
void		 plc_rx_reset(struct plc_rx *);
/*
 * The line went quiet with a partial frame buffered: its start byte was
 * not a frame's (a real frame's bytes follow each other without a
 * pause), so drop it and look for the next 68H.  Returns 1 when
 * something was dropped.
 */
int		 plc_rx_stale(struct plc_rx *);

/* Addresses: "123456789012", 12 decimal digits, most significant first
 * (as printed on a meter), to and from the 6 BCD bytes low first. */
#define PLC_ADDR_TEXT		13
int		 plc_addr_parse(const char *, uint8_t out[PLC_ADDR_LEN]);
void		 plc_addr_fmt(const uint8_t in[PLC_ADDR_LEN], char *buf,
		    size_t len);

/* ------------------------------------------------------------------ */
/* plc_du.c: data units (§5.5)                                         */

/* 00H F1 confirm: command status, channel states, wait time. */
struct plc_confirm {
	bool		 done;		/* D0: the command was carried out */
	uint32_t	 channels;	/* D1-D31: channel n busy */
	uint16_t	 wait_s;	/* wait before the next command */
};
int	 plc_du_confirm(struct plc_wr *, const struct plc_confirm *);
int	 plc_du_confirm_dec(const uint8_t *, size_t, struct plc_confirm *);
/* 00H F2 deny: one error code. */
int	 plc_du_deny_dec(const uint8_t *, size_t, unsigned int *code);

/* 03H F10 (up): the module's run mode information. */
#define PLC_RATES_MAX		15
struct plc_run_mode {
	uint8_t		 comm;		/* D0-D3 of the mode word: 1 narrow-
					 * band, 2 HPLC, 3 RF, 4 dual */
	bool		 routing;	/* D4: the module routes */
	bool		 need_list;	/* D5: stations must be sent to it */
	uint8_t		 read_mode;	/* D6-D7 */
	uint8_t		 delay_support;	/* byte 1 D0-D2 */
	bool		 bc_confirm_first; /* byte 1 D5: confirms a broadcast
					 * before carrying it out */
	uint8_t		 channels;	/* byte 2 */
	uint8_t		 monitor_s;	/* max time to monitor a station */
	uint16_t	 broadcast_s;	/* max time of a broadcast command */
	uint16_t	 max_frame;	/* longest 1376.2 frame it takes */
	uint16_t	 max_segment;	/* longest AFN 15H F1 segment */
	uint8_t		 upgrade_wait;	/* wait after the last segment, min */
	uint8_t		 master[PLC_ADDR_LEN];
	uint16_t	 max_nodes;
	uint16_t	 nodes;
	uint8_t		 published[3];	/* BCD day, month, year */
	uint8_t		 recorded[3];
	char		 vendor[3];	/* two ASCII letters */
	char		 chip[3];
	uint8_t		 ver_date[3];	/* BCD day, month, year */
	uint16_t	 version;	/* BCD, as sent (2 bytes) */
	uint8_t		 nrates;
	uint16_t	 rate[PLC_RATES_MAX];	/* D15: 1 = kbit/s */
};
int	 plc_du_run_mode(struct plc_wr *, const struct plc_run_mode *);
int	 plc_du_run_mode_dec(const uint8_t *, size_t, struct plc_run_mode *);

/* 05H F3 (down): start a broadcast: control word, length, message. */
#define PLC_PROTO_TRANSPARENT	0x00
int	 plc_du_broadcast(struct plc_wr *, uint8_t ctrl, const uint8_t *,
	    size_t);
int	 plc_du_broadcast_dec(const uint8_t *, size_t, uint8_t *ctrl,
	    const uint8_t **msg, size_t *msglen);

/* 06H F5 (up): a station's event: device type, protocol, message. */
int	 plc_du_event(struct plc_wr *, uint8_t devtype, uint8_t proto,
	    const uint8_t *, size_t);
int	 plc_du_event_dec(const uint8_t *, size_t, uint8_t *devtype,
	    uint8_t *proto, const uint8_t **msg, size_t *msglen);

/* 10H F1 (up): station count and the most the module routes. */
int	 plc_du_node_count_dec(const uint8_t *, size_t, uint16_t *count,
	    uint16_t *max);
/* 10H F2, F21, and the vendor status (down): start index, count. */
int	 plc_du_page(struct plc_wr *, uint16_t start, uint8_t count);
int	 plc_du_page_dec(const uint8_t *, size_t, uint16_t *start,
	    uint8_t *count);

/* 10H F2 (up): the station list, each with its relay level. */
struct plc_node {
	uint8_t		 addr[PLC_ADDR_LEN];
	uint8_t		 relay_level;	/* D0-D3 */
	uint8_t		 quality;	/* D4-D7 */
	uint8_t		 phase;		/* D8-D10 */
	uint8_t		 proto;		/* D11-D13 */
};
#define PLC_PAGE_MAX		32	/* entries we ask for per page */
struct plc_node_page {
	uint16_t	 total;
	uint8_t		 n;
	struct plc_node	 node[PLC_PAGE_MAX];
};
int	 plc_du_node_info(struct plc_wr *, const struct plc_node_page *);
int	 plc_du_node_info_dec(const uint8_t *, size_t,
	    struct plc_node_page *);

/* 10H F3 (down: a station; up: the stations that relay for it). */
int	 plc_du_node_relay_dec(const uint8_t *, size_t,
	    struct plc_node_page *);

/* 10H F4 (up): the route run state (what the module is busy with). */
#define PLC_WORK_READING	0
#define PLC_WORK_SEARCHING	1
#define PLC_WORK_UPGRADE	2
#define PLC_WORK_OTHER		3
struct plc_route_state {
	bool		 learned;	/* status D0: routing learnt */
	bool		 working;	/* status D1 */
	uint16_t	 nodes;
	uint16_t	 read;
	uint16_t	 read_relayed;
	uint8_t		 work;		/* work switch D6-D7: PLC_WORK_* */
	uint16_t	 rate;
	uint8_t		 relay_level[3];
	uint8_t		 step[3];
};
int	 plc_du_route_state(struct plc_wr *, const struct plc_route_state *);
int	 plc_du_route_state_dec(const uint8_t *, size_t,
	    struct plc_route_state *);

/* 10H F21 (up): the network topology, a page of nodes. */
#define PLC_ROLE_STA		1	/* leaf station */
#define PLC_ROLE_PCO		2	/* proxy: relays for others */
#define PLC_ROLE_CCO		4	/* the central coordinator */
struct plc_topo {
	uint8_t		 addr[PLC_ADDR_LEN];
	uint16_t	 tei;		/* D0-D11 */
	uint16_t	 proxy;		/* TEI of its proxy (parent) */
	uint8_t		 level;		/* D0-D3: 0 = the CCO */
	uint8_t		 role;		/* D4-D7: PLC_ROLE_* */
};
struct plc_topo_page {
	uint16_t	 total;
	uint16_t	 start;
	uint8_t		 n;
	struct plc_topo	 node[PLC_PAGE_MAX];
};
int	 plc_du_topology(struct plc_wr *, const struct plc_topo_page *);
int	 plc_du_topology_dec(const uint8_t *, size_t, struct plc_topo_page *);

/* 13H F1: monitor a station.  Down: protocol, delay flag, attached
 * nodes (none here), message.  Up: uplink time, protocol, message. */
int	 plc_du_monitor(struct plc_wr *, uint8_t proto, const uint8_t *,
	    size_t);
int	 plc_du_monitor_dec(const uint8_t *, size_t, uint8_t *proto,
	    const uint8_t **msg, size_t *msglen);
int	 plc_du_monitor_up(struct plc_wr *, uint16_t time_s, uint8_t proto,
	    const uint8_t *, size_t);
int	 plc_du_monitor_up_dec(const uint8_t *, size_t, uint16_t *time_s,
	    uint8_t *proto, const uint8_t **msg, size_t *msglen);

/* 15H F1: file transfer.  Down: one segment; up: the segment received. */
#define PLC_FILE_CLEAR		0x00	/* clear the downloaded file */
#define PLC_FILE_MODULE		0x03	/* upgrade the local module */
#define PLC_FILE_ALL		0x07	/* the module and every station */
#define PLC_FILE_STATIONS	0x08	/* every station */
#define PLC_ATTR_MIDDLE		0x00	/* start or middle segment */
#define PLC_ATTR_LAST		0x01
#define PLC_CMD_MESSAGE		0x00	/* download by messages */
/* The uplink segment id meaning "file error". */
#define PLC_SEG_ERROR		0x0000ffffu
/* Segment header: id, attribute, command, total (2), index (4), length (2). */
#define PLC_SEG_HDR		11
struct plc_segment {
	uint8_t		 file;
	uint8_t		 attr;
	uint8_t		 cmd;
	uint16_t	 total;
	uint32_t	 index;
	const uint8_t	*data;
	uint16_t	 len;
};
int	 plc_du_segment(struct plc_wr *, const struct plc_segment *);
int	 plc_du_segment_dec(const uint8_t *, size_t, struct plc_segment *);
int	 plc_du_segment_ack(struct plc_wr *, uint32_t index);
int	 plc_du_segment_ack_dec(const uint8_t *, size_t, uint32_t *index);

/* F0H F201 (up, vendor extension): per-station upgrade status. */
#define PLC_UPG_IDLE		0	/* not started for this station */
#define PLC_UPG_RECEIVING	1
#define PLC_UPG_DONE		2	/* holds the whole file */
#define PLC_UPG_FAILED		3	/* given up */
struct plc_upg {
	uint8_t		 addr[PLC_ADDR_LEN];
	uint8_t		 state;		/* PLC_UPG_* */
	uint32_t	 held;		/* bytes held from offset 0 */
	uint32_t	 received;	/* bytes received in all */
};
#define PLC_UPG_PAGE_MAX	16
struct plc_upg_page {
	uint16_t	 total;		/* stations in the distribution */
	uint16_t	 start;
	uint8_t		 file;		/* the file being distributed */
	uint32_t	 size;		/* its size */
	uint8_t		 n;
	struct plc_upg	 st[PLC_UPG_PAGE_MAX];
};
int	 plc_du_upg_status(struct plc_wr *, const struct plc_upg_page *);
int	 plc_du_upg_status_dec(const uint8_t *, size_t,
	    struct plc_upg_page *);

/* ------------------------------------------------------------------ */
/* The plugin (tp_plc.c, plc_link.c, plc_offload.c)                    */

/* What a request to the module is for: decides its answer's handling. */
enum plc_req_kind {
	PLC_REQ_NONE = 0,
	PLC_REQ_RUN_MODE,	/* 03H F10 */
	PLC_REQ_TOPOLOGY,	/* 10H F21, a page */
	PLC_REQ_NODE_INFO,	/* 10H F2, a page */
	PLC_REQ_NODE_RELAY,	/* 10H F3, one station */
	PLC_REQ_ROUTE_STATE,	/* 10H F4 */
	PLC_REQ_UPG_STATUS,	/* F0H F201, a page */
	PLC_REQ_CLEAR,		/* 15H F1, file 00H */
	PLC_REQ_SEGMENT,	/* 15H F1, one segment */
	PLC_REQ_UNICAST,	/* 13H F1, an UP frame to one station */
	PLC_REQ_BROADCAST	/* 05H F3, an UP frame to all */
};
const char	*plc_req_str(enum plc_req_kind);

/* The one request outstanding (1376.2 is stop-and-wait, §4.4). */
struct plc_req {
	enum plc_req_kind kind;
	uint8_t		 afn;		/* sent */
	uint16_t	 fn;
	uint8_t		 seq;
	bool		 addressed;	/* to a station: answers name it */
	uint8_t		 dst[PLC_ADDR_LEN];
	unsigned int	 tries;
	uint32_t	 timeout_ms;	/* per try, after the frame left */
	uint32_t	 arg;		/* page start, segment index */
	uint64_t	 cookie;	/* UP frames: the engine's */
	uint64_t	 sent_ms;	/* first try left the UART */
	uint32_t	 line_us;	/* UART time of the request */
	size_t		 len;
	uint8_t		 frame[PLC_FRAME_MAX];
};

/* An UP frame waiting for the UART (preallocated ring). */
struct plc_txslot {
	struct tp_addr	 dst;
	uint64_t	 cookie;
	size_t		 len;
	uint8_t		*buf;		/* mtu bytes, part of one allocation */
};

/* A station the module listed. */
struct plc_peer {
	uint8_t		 addr[PLC_ADDR_LEN];
	uint16_t	 tei;		/* 0 when only known from 10H F2 */
	uint16_t	 proxy;
	uint8_t		 level;		/* hops from the module, 1 = direct */
	uint8_t		 role;
	bool		 has_parent;
	uint8_t		 parent[PLC_ADDR_LEN];
	bool		 seen;		/* in the current topology walk */
	bool		 told;		/* the host heard of it */
	uint8_t		 told_level;
	bool		 told_has_parent;
	uint8_t		 told_parent[PLC_ADDR_LEN];
	/* Offload: what was last reported for it, and is it a target. */
	bool		 off_target;
	uint8_t		 off_state;	/* enum tp_offload_state + 1, 0 none */
	uint64_t	 off_bytes;
};

/* Where the module set-up and topology walk are. */
enum plc_init {
	PLC_INIT_RUN_MODE = 0,	/* waiting for 03H F10 */
	PLC_INIT_READY		/* the module is known: link up */
};
enum plc_walk {
	PLC_WALK_IDLE = 0,
	PLC_WALK_TOPOLOGY,	/* paging 10H F21 */
	PLC_WALK_NODES,		/* paging 10H F2 (F21 refused) */
	PLC_WALK_RELAYS		/* 10H F3 per station (F21 refused) */
};
/* The file transfer (plc_offload.c). */
enum plc_off_phase {
	PLC_OFF_NONE = 0,
	PLC_OFF_CLEAR,		/* clearing the module's old file */
	PLC_OFF_SEND,		/* segments, stop and wait */
	PLC_OFF_DISTRIBUTE,	/* the module distributes; status polls */
	PLC_OFF_DONE,
	PLC_OFF_CANCEL		/* clearing the module's file, then NONE */
};

struct plc_offload {
	enum plc_off_phase phase;
	uint32_t	 id;		/* the engine's handle */
	uint64_t	 size;
	uint8_t		 sha256[32];
	uint8_t		 file;		/* 07H or 08H */
	uint16_t	 seg;		/* segment size */
	uint32_t	 nseg;
	uint32_t	 next;		/* first segment not acknowledged */
	unsigned int	 restarts;	/* from segment 0 after a file error */
	unsigned int	 resumes;	/* by segment id after a module reset */
	bool		 all;		/* every station is a target */
	unsigned int	 ntargets;
	uint64_t	 t_start_ms;
	uint64_t	 t_sent_ms;	/* last segment acknowledged */
	uint64_t	 deadline_ms;	/* give the stations up */
	uint64_t	 next_poll_ms;
	uint16_t	 poll_start;	/* status page being read */
	bool		 no_status;	/* the module refused F0H F201 */
	unsigned int	 pending;	/* targets not DONE or FAILED */
	uint64_t	 bytes_taken;	/* reported as the module's */
};

struct tp {
	const struct tp_host	*host;
	char			*name;

	/* Options. */
	char			*device;
	unsigned int		 baud;
	char			 format[4];
	unsigned int		 char_bits;
	uint32_t		 timeout_ms;
	unsigned int		 retries;
	bool			 master_set;
	uint8_t			 master[PLC_ADDR_LEN];
	unsigned int		 comm_opt;	/* 0 = from the module */
	bool			 use_broadcast;
	bool			 use_offload;
	uint8_t			 offload_file;
	uint32_t		 seg_opt;	/* 0 = the module's */
	uint32_t		 mtu_opt;
	uint64_t		 bitrate_opt;
	uint32_t		 tx_queue;
	uint32_t		 status_ms;
	uint32_t		 topology_ms;
	uint32_t		 offload_timeout_ms;
	size_t			 max_peers;

	/* The UART (plc_link.c). */
	int			 fd;
	struct event		*ev_rd;
	struct event		*ev_wr;
	struct event		*ev_req;	/* the request's timeout */
	struct event		*ev_stale;	/* partial frame, line quiet */
	struct event *ev_pump; /* next request, from the loop */
	struct event		*ev_tick;	/* periodic work */
	struct plc_rx		 rx;
	uint8_t			 out[2 * PLC_FRAME_MAX];
	size_t			 outlen;
	uint8_t			 seq;
	struct plc_req		 req;
	uint64_t		 hold_until_ms;	/* a confirm's wait time */
	unsigned int		 fails;		/* requests failed in a row */

	/* The module. */
	enum plc_init		 init;
	bool			 link_up;
	int			 link_told;	/* -1: never */
	bool			 known;		/* run mode read once */
	struct plc_run_mode	 mode;
	uint8_t			 comm;		/* control field type */
	uint64_t		 next_probe_ms;
	uint64_t		 resets;	/* module resets seen */

	/* Topology. */
	enum plc_walk		 walk;
	uint16_t		 walk_start;
	size_t			 walk_relay;	/* F3: next peer index */
	uint16_t		 cco_tei;	/* the module's own TEI */
	bool			 no_f21;
	uint64_t		 next_walk_ms;
	struct plc_peer		*peers;
	size_t			 npeers;

	/* UP frames waiting (ring). */
	struct plc_txslot	*slots;
	uint8_t			*slotmem;
	size_t			 shead, slen;
	bool			 want_writable;
	bool			 prefer_up;	/* alternate with offload */

	/* Offload. */
	struct plc_offload	 off;
	uint8_t			*segbuf;	/* 2 x PLC_FRAME_MAX */

	int			 started;
	int			 in_cb;
	int			 dead;
	struct tp_stats		 st;
	uint64_t rx_dropped; /* frames dropped by the rules */
};

/* plc_link.c: the UART and the request discipline. */
int		 plc_link_open(struct tp *, char **cause);
void		 plc_link_close(struct tp *);
/* The request outstanding goes again now (the module restarted). */
void		 plc_link_resend(struct tp *);
/* The UART closed after it was lost: opens it again; 0 or -1. */
int		 plc_link_reopen(struct tp *);
/* No request outstanding and no wait time running. */
bool		 plc_link_idle(struct tp *);
/*
 * Sends a request: a frame to the module (addressed to station `dst' when
 * not NULL) with AFN/Fn and the data unit du[dulen].  The link must be
 * idle.  Its answer or failure comes back through tp_plc__answer() /
 * tp_plc__failed().  Returns 0, or -1 when it cannot be encoded.
 */
int		 plc_link_request(struct tp *, enum plc_req_kind, uint8_t afn,
		    uint16_t fn, const uint8_t *dst, const uint8_t *du,
		    size_t dulen, uint32_t timeout_ms, uint32_t arg,
		    uint64_t cookie);
/* Schedules the pump (tp_plc__pump) from the loop. */
void		 plc_link_kick(struct tp *);
/* Now on the host's clock, ms. */
uint64_t	 plc_now_ms(struct tp *);
uint64_t	 plc_real_ms(struct tp *, uint64_t);
/* UART time of n bytes, us. */
uint32_t	 plc_line_us(struct tp *, size_t n);

/* tp_plc.c: what the link hands up. */
/* The answer to the outstanding request (the request is still there). */
void		 tp_plc__answer(struct tp *, const struct plc_frame *);
/* The request failed: no answer after every try, or a deny (code >= 0,
 * else -1). */
void		 tp_plc__failed(struct tp *, int deny);
/* A frame the module sent by itself (PRM = 1), already confirmed. */
void		 tp_plc__report(struct tp *, const struct plc_frame *);
/* The UART was lost: the link is down until it opens again. */
void		 tp_plc__lost(struct tp *);
/* Picks the next request when the link is idle. */
void		 tp_plc__pump(struct tp *);
/* The file segment size in use: the module's, or less; 0 = none. */
uint32_t	 tp_plc__segment(struct tp *);

/* plc_topo.c: the module's topology, paged. */
/* A station of the table: finds or adds it (NULL when full). */
struct plc_peer	*plc_topo_peer(struct tp *, const uint8_t addr[PLC_ADDR_LEN],
		    bool add);
/* Starts a walk over the module's topology (now). */
void		 plc_topo_start(struct tp *);
/* Has a request to make now; makes it (the link is idle). */
bool		 plc_topo_pump(struct tp *);
void		 plc_topo_answer(struct tp *, const struct plc_frame *);
void		 plc_topo_failed(struct tp *, int deny);
/*
 * Every event callback of the plugin counts itself in tp->in_cb and ends
 * with this: the instance closed by the host from inside a callback is
 * freed here, when the outermost one returns.  True when it was freed.
 */
bool		 tp_plc__leave(struct tp *);
void		 tp_plc__log(struct tp *, int level, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));

/* plc_offload.c */
int		 plc_off_start(struct tp *, const struct tp_offload *,
		    char **cause);
void		 plc_off_cancel(struct tp *, uint32_t id);
/* Has a request to make now; makes it (the link is idle). */
bool		 plc_off_pump(struct tp *);
void		 plc_off_answer(struct tp *, const struct plc_frame *);
void		 plc_off_failed(struct tp *, int deny);
/* The module was reset (or came back): resume by segment id. */
void		 plc_off_module_reset(struct tp *);
void		 plc_off_tick(struct tp *);

#endif /* PLC_INTERNAL_H */
