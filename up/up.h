/*
 * up.h: the UP (Upgrade Protocol) library, the one public header of up/.
 *
 * Portable C99.  Only <stdint.h>, <stddef.h>, <stdbool.h>, <string.h>
 * and <stdarg.h>; no malloc, no OS calls, no globals except const tables
 * and the single log hook below.  Built into the gateway (bridge/,
 * transports/) and into every node (node-stubs/), and usable alone on an
 * MCU.  docs/up-protocol.md is normative; this header follows it.
 *
 * Conventions:
 *  - Every function that can fail returns an enum up_err (UP_OK == 0,
 *    errors < 0) or, for encoders, the encoded length (> 0) or an error.
 *  - Buffers are caller-owned.  A decoded message borrows nothing from the
 *    frame except the `data' pointer of DATA and PARITY, which points into
 *    the caller's frame buffer and is valid as long as that buffer is.
 *  - All multi-byte integers on the wire are little-endian; nothing is a
 *    struct laid on the wire.
 */
#ifndef UP_H
#define UP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "up_config.h"

/* ------------------------------------------------------------------ */
/* up_err.c: error codes                                              */

enum up_err {
	UP_OK = 0,
	UP_ESHORT = -1,		/* input shorter than a length says */
	UP_EBADCRC = -2,	/* frame CRC-32 does not match */
	UP_EVERSION = -3,	/* unknown protocol version */
	UP_ETYPE = -4,		/* unknown message type */
	UP_ELEN = -5,		/* a length field is inconsistent or too big */
	UP_ERANGE = -6,		/* a field value is out of its range */
	UP_ENOSPC = -7,		/* output buffer too small */
	UP_EINVAL = -8,		/* bad argument from the caller */
	UP_ESTATE = -9,		/* message not valid in the current state */
	UP_EPORT = -10		/* a port operation failed */
};

/* Returns a static, human-readable string for an up_err. */
const char	*up_strerror(int);

/* ------------------------------------------------------------------ */
/* up_log.c: the log hook                                             */

/*
 * Lower folders of the daemon (cache/, uplink/, transports/,
 * scheduler/) may not include bridge/ headers, so they log through this
 * hook; bridge/ points it at its log API, node stubs at stderr.  The hook
 * is the one mutable global of up/.  With no hook set, nothing is printed.
 */
enum up_log_level {
	UP_LOG_WARN = 0,
	UP_LOG_INFO = 1,
	UP_LOG_DEBUG = 2
};
typedef void	 up_log_fn(int level, const char *fmt, va_list ap);
void		 up_log_set_hook(up_log_fn *);
void		 up_logf(int level, const char *fmt, ...)
		    __attribute__((__format__(__printf__, 2, 3)));

/* ------------------------------------------------------------------ */
/* up_crc.c: checksums                                                */

/*
 * CRC-32/ISO-HDLC (the Ethernet/zlib CRC: reflected polynomial
 * 0xEDB88320, init and xorout 0xFFFFFFFF).  Pass 0 as `crc' to start;
 * feed the result back to continue.  up_crc32(0, "123456789", 9) ==
 * 0xCBF43926.
 */
uint32_t	 up_crc32(uint32_t crc, const void *buf, size_t len);
/*
 * CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no xorout), for link
 * framings.  It has no xorout, so pass UP_CRC16_INIT (not 0) as `crc' to
 * start; feed the result back to continue.
 * up_crc16_ccitt(UP_CRC16_INIT, "123456789", 9) == 0x29B1.
 */
#define UP_CRC16_INIT		0xffff
uint16_t	 up_crc16_ccitt(uint16_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* up_buf.c: bounds-checked cursors                                   */

/*
 * Every decoder in the project reads through a cursor.  A read past the
 * end sets `err' (sticky) and returns zero; callers check up_rd_err() once
 * after a group of reads.  Writers likewise never write past `cap'.
 */
struct up_rd {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 err;
};
struct up_wr {
	uint8_t		*p;
	size_t		 cap;
	size_t		 off;
	int		 err;
};
void		 up_rd_init(struct up_rd *, const void *, size_t);
uint8_t		 up_rd_u8(struct up_rd *);
uint16_t	 up_rd_u16(struct up_rd *);
uint32_t	 up_rd_u32(struct up_rd *);
uint64_t	 up_rd_u64(struct up_rd *);
/* Copies n bytes out; sets UP_ESHORT if fewer remain. */
void		 up_rd_bytes(struct up_rd *, void *, size_t);
/* Returns a pointer to the next n bytes and skips them, or NULL. */
const uint8_t	*up_rd_ptr(struct up_rd *, size_t);
/* A u8-length-prefixed string into dst[max+1], NUL-terminated; rejects
 * lengths over max (UP_ELEN) and embedded NULs (UP_ERANGE). */
void		 up_rd_str(struct up_rd *, char *dst, size_t max);
size_t		 up_rd_left(const struct up_rd *);
int		 up_rd_err(const struct up_rd *);

void		 up_wr_init(struct up_wr *, void *, size_t);
void		 up_wr_u8(struct up_wr *, uint8_t);
void		 up_wr_u16(struct up_wr *, uint16_t);
void		 up_wr_u32(struct up_wr *, uint32_t);
void		 up_wr_u64(struct up_wr *, uint64_t);
void		 up_wr_bytes(struct up_wr *, const void *, size_t);
void		 up_wr_str(struct up_wr *, const char *);
int		 up_wr_err(const struct up_wr *);

/* ------------------------------------------------------------------ */
/* up_frame.c: the wire codec (docs/up-protocol.md §3, §4)            */

#define UP_PROTO_VERSION	1

/*
 * Frame layout (all little-endian):
 *   0  u8   version (UP_PROTO_VERSION)
 *   1  u8   type (enum up_type)
 *   2  u8   flags (UP_F_*)
 *   3  u8   reserved, 0 on send, ignored on receive
 *   4  u32  session id (0 for session-less messages)
 *   8  u16  payload length n
 *  10  n    payload
 *  10+n u32 CRC-32 of bytes [0, 10+n)
 */
#define UP_HDR_LEN		10
#define UP_CRC_LEN		4
#define UP_OVERHEAD		(UP_HDR_LEN + UP_CRC_LEN)
/* Offset of the block bytes inside a DATA or PARITY frame. */
#define UP_DATA_OFF		(UP_HDR_LEN + 4)
/* Bytes of a DATA frame that are not block payload. */
#define UP_DATA_OVERHEAD	(UP_OVERHEAD + 4)

/* Header flags. */
#define UP_F_LAST		0x01	/* DATA: last block of the image */
#define UP_F_REPAIR		0x02	/* DATA/PARITY: sent in a repair round */

enum up_type {
	UP_T_ANNOUNCE = 0x01,	/* node -> gw: who I am, what I run */
	UP_T_DISCOVER = 0x02,	/* gw -> all: announce yourselves */
	UP_T_OFFER = 0x03,	/* gw -> all: an update session */
	UP_T_ACCEPT = 0x04,	/* node -> gw: accept/decline + what I hold */
	UP_T_DATA = 0x05,	/* gw -> all: one block */
	UP_T_PARITY = 0x06,	/* gw -> all: one FEC parity block */
	UP_T_STATUS_REQ = 0x07,	/* gw -> node(s): report missing blocks */
	UP_T_STATUS = 0x08,	/* node -> gw: missing-block bitmap slice */
	UP_T_VERIFY = 0x09,	/* gw -> node(s): check hash and signature */
	UP_T_ACTIVATE = 0x0a,	/* gw -> node(s): switch slot after delay */
	UP_T_RESULT = 0x0b,	/* node -> gw: state + result code */
	UP_T_RESULT_ACK = 0x0c,	/* gw -> node: result stored, stop resending */
	UP_T_ABORT = 0x0d	/* either way: give the session up */
};

/* Update kinds in an OFFER. */
#define UP_KIND_FULL		0
#define UP_KIND_DELTA		1

/* Delta formats (UP_KIND_DELTA only). */
#define UP_DELTA_NONE		0
#define UP_DELTA_VCDIFF		1	/* RFC 3284, no secondary compressor */

/* Signature algorithms. */
#define UP_SIG_NONE		0
#define UP_SIG_ED25519		1

/* Unknown values in ANNOUNCE. */
#define UP_BATTERY_UNKNOWN	0xff	/* or mains powered */
#define UP_RSSI_UNKNOWN		INT16_MAX
#define UP_SNR_UNKNOWN		INT8_MAX

/*
 * Result codes (RESULT.result, ACCEPT.code, ABORT.reason).  0..9 are the
 * values of LwM2M Object 5 resource 5 "Update Result" (OMA-TS-LightweightM2M
 * v1.1, Object 5) with the same meaning; 10 and up are UP's own.
 */
enum up_result {
	UP_R_INITIAL = 0,	/* nothing happened yet / accept */
	UP_R_SUCCESS = 1,	/* updated, running and confirmed */
	UP_R_NO_SPACE = 2,	/* not enough flash for the image */
	UP_R_NO_MEMORY = 3,	/* out of RAM during the update */
	UP_R_CONN_LOST = 4,	/* transfer did not complete */
	UP_R_INTEGRITY = 5,	/* SHA-256 of the image did not match */
	UP_R_UNSUPPORTED = 6,	/* unsupported package kind or format */
	UP_R_INVALID_URI = 7,	/* (LwM2M) kept for table compatibility */
	UP_R_FAILED = 8,	/* applying the update failed */
	UP_R_PROTOCOL = 9,	/* unsupported protocol version */
	UP_R_SIGNATURE = 10,	/* cloud signature did not verify */
	UP_R_ROLLED_BACK = 11,	/* new image did not confirm; old runs */
	UP_R_DEPENDENCY = 12,	/* a dependency is not satisfied */
	UP_R_INCOMPATIBLE = 13,	/* hardware model not in the offer */
	UP_R_DECLINED = 14,	/* declined by the node's local policy */
	UP_R_ABORTED = 15,	/* session aborted */
	UP_R_BASE_MISMATCH = 16,/* delta base is not the running version */
	UP_R_LOW_BATTERY = 17,	/* battery below the node's threshold */
	UP_R_ALREADY = 18	/* already runs this version */
};
/* Short name of a result code ("success", "integrity", ...). */
const char	*up_result_str(int);

/* Node states (RESULT.state); docs/up-protocol.md §5. */
enum up_node_state {
	UP_NS_IDLE = 0,		/* no session */
	UP_NS_RECEIVING = 1,	/* accepted, blocks arriving */
	UP_NS_DOWNLOADED = 2,	/* every block held */
	UP_NS_VERIFIED = 3,	/* hash and signature checked */
	UP_NS_ACTIVATING = 4,	/* rebooting into the new slot */
	UP_NS_UPDATED = 5,	/* new image runs and confirmed */
	UP_NS_FAILED = 6	/* see result code */
};
const char	*up_state_str(int);

struct up_component {
	char		 name[UP_NAME_MAX + 1];
	char		 version[UP_VER_MAX + 1];
};

/* ANNOUNCE, session 0. */
struct up_announce {
	uint64_t	 node_id;	/* stable, unique, != 0 */
	char		 hw[UP_NAME_MAX + 1];	/* hardware model */
	uint16_t	 max_frame;	/* largest UP frame it can take */
	uint32_t	 free_kib;	/* free space for a staged image */
	uint8_t		 battery;	/* percent, or UP_BATTERY_UNKNOWN */
	int16_t		 rssi_dbm;	/* or UP_RSSI_UNKNOWN */
	int8_t		 snr_db;	/* or UP_SNR_UNKNOWN */
	uint32_t	 session;	/* session in progress or 0 */
	uint8_t		 state;		/* enum up_node_state */
	uint8_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
};

/* DISCOVER, session 0: every node announces within window_ms. */
struct up_discover {
	uint16_t	 window_ms;
};

struct up_dep {
	char		 component[UP_NAME_MAX + 1];
	char		 min_version[UP_VER_MAX + 1];
};

/*
 * OFFER.  The fields from `component' to `deps' form the package
 * descriptor that the cloud signs (up_desc_encode); block_size and
 * nblocks describe this session only.
 */
struct up_offer {
	char		 component[UP_NAME_MAX + 1];
	uint8_t		 nhw;
	char		 hw[UP_MAX_HW][UP_NAME_MAX + 1];
	char		 from_version[UP_VER_MAX + 1];	/* "" for full */
	char		 to_version[UP_VER_MAX + 1];
	uint8_t		 kind;		/* UP_KIND_* */
	uint8_t		 delta_format;	/* UP_DELTA_* */
	uint32_t	 size;		/* bytes of the package sent */
	uint8_t		 sha256[32];	/* of the package sent */
	uint8_t		 image_sha256[32];	/* of the resulting image */
	uint32_t	 image_size;	/* bytes of the resulting image */
	uint8_t		 ndeps;
	struct up_dep	 deps[UP_MAX_DEPS];
	uint8_t		 sig_alg;	/* UP_SIG_* */
	uint8_t		 sig_len;
	uint8_t		 sig[UP_SIG_MAX];
	uint16_t	 block_size;	/* payload bytes per DATA frame */
	uint32_t	 nblocks;	/* ceil(size / block_size) */
	uint32_t	 deadline_s;	/* give up after this many seconds */
};

/*
 * Status body, shared by ACCEPT and STATUS: how many blocks the node holds
 * and a slice of its missing-block bitmap starting at first_missing.  Bit i
 * (LSB-first in byte i/8) set means block first_missing + i is MISSING.
 * Blocks at or after first_missing + nbits are not described by this
 * frame; blocks before first_missing are all held.  `bits' points into
 * the decoded frame (borrowed).
 */
struct up_status_body {
	uint32_t	 held;		/* blocks the node holds */
	uint32_t	 first_missing;	/* == nblocks when complete */
	uint16_t	 nbits;
	const uint8_t	*bits;		/* (nbits + 7) / 8 bytes */
};

/* ACCEPT: code UP_R_INITIAL accepts; any other code declines. */
struct up_accept {
	uint64_t	 node_id;
	uint8_t		 code;
	struct up_status_body st;
};

/* DATA and PARITY. */
struct up_data {
	uint32_t	 index;		/* block index, or TS004 parity row */
	uint16_t	 len;
	const uint8_t	*data;		/* borrowed from the frame */
};

/* STATUS_REQ, VERIFY, RESULT_ACK, ABORT: target 0 means every node. */
struct up_target {
	uint64_t	 node_id;
	uint16_t	 window_ms;	/* STATUS_REQ: reply within */
	uint8_t		 reason;	/* ABORT: enum up_result */
};

struct up_status {
	uint64_t	 node_id;
	uint8_t		 state;		/* enum up_node_state */
	struct up_status_body st;
};

struct up_activate {
	uint64_t	 node_id;	/* 0 = every verified node */
	uint32_t	 delay_ms;	/* switch after this delay */
};

struct up_result_msg {
	uint64_t	 node_id;
	uint8_t		 state;		/* enum up_node_state */
	uint8_t		 result;	/* enum up_result */
	char		 component[UP_NAME_MAX + 1];
	char		 version[UP_VER_MAX + 1];	/* running now */
};

struct up_msg {
	uint8_t		 type;		/* enum up_type */
	uint8_t		 flags;
	uint32_t	 session;
	union {
		struct up_announce	announce;
		struct up_discover	discover;
		struct up_offer		offer;
		struct up_accept	accept;
		struct up_data		data;	/* DATA, PARITY */
		struct up_target	target;	/* STATUS_REQ, VERIFY,
						   RESULT_ACK, ABORT */
		struct up_status	status;
		struct up_activate	activate;
		struct up_result_msg	result;
	} u;
};

/*
 * Decodes and checks one frame: version, type, lengths, CRC, every field
 * range.  On error `m' is unspecified and nothing else changed.  `buf' is
 * borrowed; DATA/PARITY/status bitmaps in `m' point into it.
 */
int		 up_decode(const uint8_t *buf, size_t len, struct up_msg *m);

/*
 * Encodes `m' into buf[cap].  Returns the frame length (> 0) or an
 * up_err (UP_ENOSPC when cap is too small, UP_EINVAL/UP_ERANGE for bad
 * fields).
 */
int		 up_encode(const struct up_msg *m, uint8_t *buf, size_t cap);

/*
 * Fast path for DATA/PARITY: the caller has already placed `len' block
 * bytes at buf + UP_DATA_OFF (for instance with pread straight into the
 * frame); this writes header, index and CRC around them.  Returns the frame
 * length or an up_err.  No copy of the block.
 */
int		 up_seal_data(uint8_t *buf, size_t cap, uint8_t type,
		    uint8_t flags, uint32_t session, uint32_t index,
		    uint16_t len);

/* Reads only the header (no CRC check): for cheap dispatch/filtering. */
int		 up_peek(const uint8_t *buf, size_t len, uint8_t *type,
		    uint32_t *session);

/*
 * The canonical package descriptor the cloud signs (docs/up-protocol.md
 * §6): "UPD1" followed by the descriptor fields of `o' in wire order.
 * Returns its length or an up_err.  The signing tool and every node call
 * this same function, so the bytes cannot drift apart.  A buffer of
 * UP_DESC_MAX bytes always suffices (560 with the default limits).
 */
#define UP_DESC_MAX	(4 + (1 + UP_NAME_MAX) + 1 + \
			    UP_MAX_HW * (1 + UP_NAME_MAX) + \
			    2 * (1 + UP_VER_MAX) + 2 + 4 + 32 + 4 + 32 + 1 + \
			    UP_MAX_DEPS * (2 + UP_NAME_MAX + UP_VER_MAX))
int		 up_desc_encode(const struct up_offer *o, uint8_t *buf,
		    size_t cap);

/* Blocks of `size' bytes in `block_size' blocks (0 if block_size is 0). */
uint32_t	 up_nblocks(uint32_t size, uint16_t block_size);

/* ------------------------------------------------------------------ */
/* up_bitmap.c: block bitmaps                                         */

/*
 * A bitmap of `nbits' bits over caller memory of (nbits + 7) / 8 bytes,
 * LSB-first in each byte.  In node state a set bit means "held"; in a
 * status slice a set bit means "missing" (docs/up-protocol.md §4.7).
 */
struct up_bitmap {
	uint8_t		*bits;
	uint32_t	 nbits;
};
size_t		 up_bitmap_bytes(uint32_t nbits);
void		 up_bitmap_init(struct up_bitmap *, uint8_t *, uint32_t nbits);
void		 up_bitmap_clear_all(struct up_bitmap *);
void		 up_bitmap_set(struct up_bitmap *, uint32_t);
void		 up_bitmap_clear(struct up_bitmap *, uint32_t);
bool		 up_bitmap_get(const struct up_bitmap *, uint32_t);
uint32_t	 up_bitmap_count(const struct up_bitmap *);
/* First index >= from whose bit is 0 (or 1), or nbits if none. */
uint32_t	 up_bitmap_next_clear(const struct up_bitmap *, uint32_t from);
uint32_t	 up_bitmap_next_set(const struct up_bitmap *, uint32_t from);

/*
 * Fills `st' from a "held" bitmap: held count, first missing block and a
 * missing-bit slice of at most max_bits bits written into out[] (which
 * must hold (max_bits + 7) / 8 bytes).  st->bits points at out.
 */
void		 up_status_from_bitmap(const struct up_bitmap *held,
		    uint8_t *out, uint16_t max_bits,
		    struct up_status_body *st);
/*
 * Calls fn(arg, index) for every block a status body says is missing,
 * within [0, nblocks).  Blocks past the slice are not visited.
 */
void		 up_status_foreach_missing(const struct up_status_body *st,
		    uint32_t nblocks, void (*fn)(void *, uint32_t), void *arg);

/* ------------------------------------------------------------------ */
/* up_node.c: the node-side engine (docs/up-protocol.md §5)           */

/*
 * What a node's platform provides, as a const ops struct bound at link
 * time (LoRaMac-node's Radio_s shape).  `ctx' is the port's own pointer.
 * Every function returns 0 on success and -1 on failure unless said.
 * None of them may call back into the engine.
 */
struct up_port {
	/* Send one encoded frame to the gateway.  May drop silently. */
	int	 (*send)(void *ctx, const uint8_t *frame, size_t len);
	/* Milliseconds from any fixed origin; wraps are handled. */
	uint32_t (*now_ms)(void *ctx);
	/* A random number, for reply back-off. */
	uint32_t (*random)(void *ctx);

	/*
	 * Persisted engine state: `state' is an opaque blob of at most
	 * UP_NODE_STATE_MAX bytes, `bitmap' the held-block bitmap.  save
	 * must be atomic (all or nothing survives a power cut).  load
	 * returns 0 and the lengths, or -1 when nothing was saved.
	 */
	int	 (*save)(void *ctx, const uint8_t *state, size_t state_len,
		    const uint8_t *bitmap, size_t bitmap_len);
	int	 (*load)(void *ctx, uint8_t *state, size_t state_cap,
		    size_t *state_len, uint8_t *bitmap, size_t bitmap_cap,
		    size_t *bitmap_len);

	/* The inactive (staging) slot. */
	uint32_t (*slot_capacity)(void *ctx);
	int	 (*slot_prepare)(void *ctx, uint32_t size);	/* erase */
	int	 (*slot_write)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);
	int	 (*slot_read)(void *ctx, uint32_t off, uint8_t *p, size_t n);

	/*
	 * Local policy before accepting an offer: return UP_R_INITIAL to
	 * accept or a result code to decline.  May be NULL (accept).
	 */
	int	 (*offer_check)(void *ctx, const struct up_offer *);

	/*
	 * Verify the staged image: SHA-256 of the slot's first o->size
	 * bytes against o->sha256, then the cloud signature over
	 * up_desc_encode(o).  Returns UP_R_INITIAL when both hold, else
	 * UP_R_INTEGRITY or UP_R_SIGNATURE.  Crypto is the platform's.
	 */
	int	 (*image_verify)(void *ctx, const struct up_offer *o);

	/*
	 * Mark the staged slot to boot once and reboot into it.  On a real
	 * MCU this does not return.  A simulator returns 0, and once the
	 * engine call that invoked it has returned, it discards the
	 * engine, runs its boot path and calls up_node_init() and
	 * up_node_start() again as the new image.  The engine has already
	 * persisted ACTIVATING when this is called; -1 fails the update
	 * (FAILED, UP_R_FAILED).
	 */
	int	 (*activate)(void *ctx, const struct up_offer *o);

	/*
	 * Optional (may be NULL): the engine entered `state' with result
	 * `result' and has already persisted it.  For the platform's
	 * logs, LEDs or test hooks.  The engine logs through up_logf().
	 */
	void	 (*state_changed)(void *ctx, uint8_t state, uint8_t result);
};

/*
 * Largest persisted state blob, bytes: a fixed part plus the whole
 * offer (the signed descriptor must survive a reboot so a node can
 * verify after a power cut).  up_node.c checks at compile time that its
 * encoding fits.
 */
#define UP_NODE_STATE_MAX	(128 + (UP_MAX_HW + 1) * (UP_NAME_MAX + 1) + \
    2 * (UP_VER_MAX + 1) + UP_MAX_DEPS * (UP_NAME_MAX + UP_VER_MAX + 2) + \
    UP_SIG_MAX)

/* Bytes of missing-block bitmap one STATUS or ACCEPT may carry. */
#define UP_NODE_SLICE_MAX	(UP_FRAME_MAX - UP_OVERHEAD - 32)

/* Defaults: blocks between bitmap saves; longest tick interval. */
#define UP_NODE_SAVE_EVERY	64
#define UP_NODE_SAVE_DELAY_MS	1000
#define UP_NODE_IDLE_MS		60000
/* A session with no frame for this long (or its deadline_s) is stale:
 * a new offer for another package may replace it. */
#define UP_NODE_STALE_S		300
/* Final RESULT back-off: 1 s, doubling, at most this. */
#define UP_NODE_RESULT_MAX_MS	30000

/* What the node says about itself in ANNOUNCE. */
struct up_node_info {
	uint64_t	 node_id;
	char		 hw[UP_NAME_MAX + 1];
	uint16_t	 max_frame;
	uint32_t	 free_kib;
	uint8_t		 battery;
	int16_t		 rssi_dbm;
	int8_t		 snr_db;
	uint8_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
};

/* A one-shot engine timer; wrap-safe (compared as now - due). */
struct up_node_timer {
	uint32_t	 due;		/* ms */
	bool		 armed;
};

/*
 * The engine's state.  The caller allocates it (static or on the stack)
 * and owns the bitmap buffer, sized for the largest image it accepts:
 * up_bitmap_bytes(slot_capacity / smallest block size).  Fields are
 * private to up_node.c.
 */
struct up_node {
	const struct up_port	*port;
	void			*ctx;
	struct up_node_info	 info;
	uint8_t			*bitmap_buf;
	size_t			 bitmap_cap;	/* bytes */
	struct up_bitmap	 held;		/* blocks of `session' held */
	uint32_t		 nheld;		/* bits set in `held' */
	struct up_offer		 offer;		/* of `session' */
	uint32_t		 session;	/* 0 = none */
	uint8_t			 state;		/* enum up_node_state */
	uint8_t			 result;	/* enum up_result */
	bool			 unacked;	/* final RESULT not acked yet */
	bool			 switched;	/* port->activate was called */
	bool			 started;	/* up_node_start() done */
	uint32_t		 dirty;		/* blocks since last save */
	uint32_t		 save_every;	/* blocks between saves */
	uint32_t		 last_activity;	/* ms, last frame of `session' */
	uint32_t		 result_tries;
	struct up_node_timer	 t_announce;	/* reply to DISCOVER */
	struct up_node_timer	 t_status;	/* reply to STATUS_REQ */
	struct up_node_timer	 t_result;	/* final RESULT resend */
	struct up_node_timer	 t_activate;	/* ACTIVATE delay */
	struct up_node_timer	 t_save;	/* flush dirty bitmap */
	uint32_t		 rx_frames;
	uint32_t		 rx_errors;
	uint8_t			 slice[UP_NODE_SLICE_MAX];	/* tx scratch */
	uint8_t			 frame[UP_FRAME_MAX];	/* tx scratch */
};

/*
 * Binds the engine to its port.  Copies `info'.  No I/O.
 */
void		 up_node_init(struct up_node *, const struct up_port *,
		    void *ctx, const struct up_node_info *info,
		    uint8_t *bitmap_buf, size_t bitmap_cap);

/*
 * Starts the engine after (re)boot: loads persisted state through
 * port->load and resumes it.  `running_version' is the version of
 * the offered component that the platform booted.  If an activation was
 * pending and the new version runs, the node confirms it (UPDATED,
 * UP_R_SUCCESS); if the old one runs, the update rolled back (FAILED,
 * UP_R_ROLLED_BACK).  Either way a RESULT is then sent until acknowledged.
 * Finally the node announces itself.  `running_version' may be NULL:
 * the engine then takes the offered component's version from the
 * `info' given to up_node_init() (what a simulator's boot path fills
 * in).  A missing or corrupt saved state starts the node IDLE.
 * Returns UP_OK or an up_err.
 */
int		 up_node_start(struct up_node *, const char *running_version);

/*
 * Feeds one received frame.  Decodes and acts on it (may call
 * port->send, slot_write, save, activate).  Bad frames return an up_err
 * and change nothing.
 */
int		 up_node_input(struct up_node *, const uint8_t *, size_t);

/*
 * Runs the engine's timers (announce, delayed status replies, RESULT
 * retransmission, delayed activation, periodic state saves).  Call at
 * least every up_node_next_ms() milliseconds.
 */
void		 up_node_tick(struct up_node *);

/* Milliseconds until the engine next needs up_node_tick(), at most
 * UP_NODE_IDLE_MS; 0 when a timer is due. */
uint32_t	 up_node_next_ms(const struct up_node *);

/* Updates the component version the node reports (after an update). */
void		 up_node_set_version(struct up_node *, const char *component,
		    const char *version);

/* Saves blocks received since the last save now (before a clean
 * shutdown or a deep sleep).  Returns UP_OK or UP_EPORT. */
int		 up_node_flush(struct up_node *);

/* Blocks between bitmap saves while receiving (default
 * UP_NODE_SAVE_EVERY; 0 = default).  Call after up_node_init(). */
void		 up_node_set_save_every(struct up_node *, uint32_t blocks);

/* The node's state (enum up_node_state); session and result if not
 * NULL.  For logs and tests. */
uint8_t		 up_node_get_state(const struct up_node *,
		    uint32_t *session, uint8_t *result);

#endif /* UP_H */
