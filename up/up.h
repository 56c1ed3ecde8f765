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
#define UP_F_REPAIR		0x02	/* DATA/PARITY/XOR: in a repair round */

/*
 * Compact frames (docs/up-protocol.md §11): the same messages for links
 * of 20 to 255 bytes.  Byte 0, the form byte, is `1 M C X t t t t':
 * bit 7 marks the compact form (a full frame starts with its version,
 * 1), M a 4-byte MIC trailer, C a CRC-16 trailer, X a per-type bit, and
 * the low nibble the type (1..14 as enum up_type, 15 SEG).  No length
 * and no session in the header; DATA, PARITY and XOR name their session
 * by a one-byte tag.
 */
#define UP_FORM_FULL		0	/* struct up_msg.form: §3 */
#define UP_FORM_COMPACT		1	/* §11 */
#define UP_C_MARK		0x80	/* form byte: compact */
#define UP_CF_MIC		0x40	/* form byte: MIC trailer */
#define UP_CF_CRC		0x20	/* form byte: CRC-16 trailer */
#define UP_C_X			0x10	/* form byte: per-type bit */
#define UP_C_TYPE		0x0f	/* form byte: the type */
#define UP_C_MIC_LEN		4
#define UP_C_CRC_LEN		2
#define UP_C_MTU_MIN		20	/* smallest link for compact frames */
/* Header bytes of a compact DATA or PARITY: form, tag, u16 index (the
 * u24 form adds one). */
#define UP_C_DATA_HDR		4

/* ANNOUNCE caps (§11.5.1) and ACCEPT caps of the session (§11.5.4). */
#define UP_CAP_XOR		0x01	/* repairs from XOR frames */
#define UP_CAP_MIC		0x02	/* reserved: has MIC keys (§11.10) */
#define UP_ACAP_PARITY		0x01	/* can use this session's PARITY */
#define UP_ACAP_XOR		0x02	/* can use this session's XOR */

/* Status body forms (§11.7). */
#define UP_SB_BITMAP		0	/* the slice of §4.7 */
#define UP_SB_RUNS		1	/* run list */
#define UP_SB_COUNTS		2	/* count list: rows needed per group */

/* Compact STATUS_REQ `req' (§11.5.7). */
#define UP_SQ_FORM		0x03	/* the status form wanted */
#define UP_SQ_MISSING		0x04	/* only nodes missing a block answer */

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
	UP_T_ABORT = 0x0d,	/* either way: give the session up */
	UP_T_XOR = 0x0e,	/* gw -> all: XOR of blocks, one unknown each */
	UP_T_SEG = 0x0f		/* compact only: a slice of a message */
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

/*
 * Descriptor flags (OFFER desc_flags, signed, docs/up-protocol.md §4.3).
 * UP_DESC_DOWNGRADE: the cloud allows this package to replace a newer
 * version (never below the node's security floor, §5.4).  A node declines
 * an offer with any other bit set (UP_R_UNSUPPORTED).
 */
#define UP_DESC_DOWNGRADE	0x01
#define UP_DESC_KNOWN		UP_DESC_DOWNGRADE

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
	UP_R_ALREADY = 18,	/* already runs this version */
	UP_R_BUSY = 19,		/* busy with another package; offer again */
	UP_R_DOWNGRADE = 20	/* older than what runs, or below the node's
				   security floor (anti-rollback, §5.4) */
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
 * OFFER.  The fields from `component' to `desc_flags' form the package
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
	uint32_t	 security_version;	/* anti-rollback (§5.4) */
	uint8_t		 desc_flags;	/* UP_DESC_* */
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
	/*
	 * The compact forms (docs/up-protocol.md §11.7); all zero for the
	 * bitmap slice above, the only form of full frames.  A run list
	 * uses held and first_missing too; a count list only `missing'.
	 * `list' holds the encoded entries (borrowed from the frame, or
	 * from the builder's buffer).
	 */
	uint8_t		 form;		/* UP_SB_* */
	bool		 cut;		/* entries stop before the end */
	uint32_t	 nent;		/* runs or groups listed */
	uint32_t	 missing;	/* count list: blocks missing */
	const uint8_t	*list;
	uint16_t	 list_len;
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

/*
 * XOR (docs/up-protocol.md §4.15): the XOR of n blocks, each zero-padded
 * to len bytes.  A node that misses exactly one of them recovers it.
 */
struct up_xor {
	uint8_t		 n;		/* 1 .. UP_XOR_MAX */
	uint32_t	 index[UP_XOR_MAX];	/* strictly increasing */
	uint16_t	 len;		/* longest block of the n */
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

/*
 * SEG (compact only, docs/up-protocol.md §11.8): slice i of n of a
 * compact message.  `chunk' is borrowed from the frame.
 */
struct up_seg {
	bool		 from_node;	/* X: a node sent it (§11.8) */
	uint8_t		 mtag;		/* message tag */
	uint8_t		 i;		/* 0 .. n - 1 */
	uint8_t		 n;		/* 2 .. UP_SEG_NMAX */
	uint16_t	 len;
	const uint8_t	*chunk;
};

/*
 * What a compact frame carries beyond the fields it shares with the
 * full form (docs/up-protocol.md §11.5); all zero in a full frame.
 */
struct up_cx {
	uint8_t		 cflags;	/* UP_CF_CRC, UP_CF_MIC */
	uint8_t		 mic[UP_C_MIC_LEN];	/* kept, not checked (§11.10) */
	uint8_t		 tag;		/* OFFER assigns; DATA, PARITY, XOR */
	uint8_t		 fec_k;		/* OFFER: parity group size, 0 none */
	uint16_t	 slots;		/* DISCOVER, OFFER, STATUS_REQ, */
	uint16_t	 slot_ms;	/* VERIFY: reply schedule (§11.9) */
	uint8_t		 req;		/* STATUS_REQ: UP_SQ_* */
	uint8_t		 caps;		/* ANNOUNCE UP_CAP_*, ACCEPT UP_ACAP_* */
	uint8_t		 fec_kmax;	/* ANNOUNCE */
	uint16_t	 uplink_mtu;	/* ANNOUNCE */
	uint16_t	 seg_max;	/* ANNOUNCE */
};

struct up_msg {
	uint8_t		 type;		/* enum up_type (or UP_T_SEG) */
	uint8_t		 flags;		/* full frames: UP_F_* */
	uint32_t	 session;	/* 0 in compact DATA/PARITY/XOR */
	uint8_t		 form;		/* UP_FORM_FULL or UP_FORM_COMPACT */
	struct up_cx	 cx;		/* compact frames only */
	union {
		struct up_announce	announce;
		struct up_discover	discover;
		struct up_offer		offer;
		struct up_accept	accept;
		struct up_data		data;	/* DATA, PARITY */
		struct up_xor		xor_;	/* XOR */
		struct up_target	target;	/* STATUS_REQ, VERIFY,
						   RESULT_ACK, ABORT */
		struct up_status	status;
		struct up_activate	activate;
		struct up_result_msg	result;
		struct up_seg		seg;	/* SEG */
	} u;
};

/*
 * Decodes and checks one frame: version, type, lengths, CRC, every field
 * range.  On error `m' is unspecified and nothing else changed.  `buf' is
 * borrowed; DATA/PARITY/XOR data and status bitmaps in `m' point into it.
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

/*
 * Fast path for XOR (docs/up-protocol.md §4.15), the same idea: the
 * block list of n indices (1 <= n <= UP_XOR_MAX, strictly increasing,
 * neighbours less than 2^28 apart) encodes in up_xor_list_len() bytes
 * (u32 first index plus LEB128 gaps; 0 for an invalid list), and the
 * data starts at frame offset up_xor_data_off() (UP_HDR_LEN + 1 + that
 * length; 0 for an invalid list).  The caller XORs `len' bytes straight
 * into buf + up_xor_data_off(); up_xor_seal() writes the header, n, the
 * list and the CRC around them and returns the frame length, or
 * UP_EINVAL (NULL buf, invalid list), UP_ERANGE (session 0), UP_ELEN
 * (len 0) or UP_ENOSPC (longer than cap or UP_FRAME_MAX).  The bytes are
 * exactly up_encode()'s for the same message.  A frame is
 * up_xor_data_off() + len + UP_CRC_LEN bytes.
 */
size_t		 up_xor_list_len(uint8_t n, const uint32_t *index);
size_t		 up_xor_data_off(uint8_t n, const uint32_t *index);
int		 up_xor_seal(uint8_t *buf, size_t cap, uint8_t flags,
		    uint32_t session, uint8_t n, const uint32_t *index,
		    uint16_t len);

/*
 * The OFFER payload (§4.3) through a cursor.  The codec uses these, and
 * so does the node engine to persist the offer it accepted, so the two
 * share one layout.  up_offer_rd checks every count before it indexes an
 * array; field ranges are up_decode's job.  up_offer_rd_v1 reads the
 * layout from before security_version and desc_flags (both read as 0):
 * what node engines of that time saved, so an engine updated over the
 * air still finds the session it was installed by.
 */
void		 up_offer_wr(struct up_wr *, const struct up_offer *);
void		 up_offer_rd(struct up_rd *, struct up_offer *);
void		 up_offer_rd_v1(struct up_rd *, struct up_offer *);

/* Reads only the header (no CRC check): for cheap dispatch/filtering. */
int		 up_peek(const uint8_t *buf, size_t len, uint8_t *type,
		    uint32_t *session);

/*
 * The canonical package descriptor the cloud signs (docs/up-protocol.md
 * §6): with security_version 0 and desc_flags 0, "UPD1" followed by the
 * fields from component through the dependencies in wire order (the
 * bytes of before those two fields existed, so packages signed then still
 * verify); otherwise "UPD2", the same fields, security_version and
 * desc_flags.  Returns its length or an up_err.  The signing tool and
 * every node call this same function, so the bytes cannot drift apart.
 * A buffer of UP_DESC_MAX bytes always suffices (565 with the default
 * limits).
 */
#define UP_DESC_MAX	(4 + (1 + UP_NAME_MAX) + 1 + \
			    UP_MAX_HW * (1 + UP_NAME_MAX) + \
			    2 * (1 + UP_VER_MAX) + 2 + 4 + 32 + 4 + 32 + 1 + \
			    UP_MAX_DEPS * (2 + UP_NAME_MAX + UP_VER_MAX) + 4 + 1)
int		 up_desc_encode(const struct up_offer *o, uint8_t *buf,
		    size_t cap);

/* Blocks of `size' bytes in `block_size' blocks (0 if block_size is 0). */
uint32_t	 up_nblocks(uint32_t size, uint16_t block_size);

/* ------------------------------------------------------------------ */
/* up_version.c: the order of versions (docs/up-protocol.md §2.7)     */

/*
 * Compares two NUL-terminated version strings: <0 when a is older than
 * b, 0 when they are the same version, >0 when a is newer.  Semantic
 * Versioning's order, total for any string: "+build" is ignored, a '-'
 * starts a pre-release that sorts before its release ("2.0.0-rc1" <
 * "2.0.0"), dot-separated fields compare as numbers when both are digits
 * ("1.10" > "1.9", "1.2" == "1.2.0", any length), numbers before words,
 * words byte by byte.  The node engine (dependencies, anti-rollback) and
 * the gateway's scheduler both use this function.
 */
int		 up_version_cmp(const char *a, const char *b);

/* ------------------------------------------------------------------ */
/* up_cframe.c: compact frames (docs/up-protocol.md §11)              */

/*
 * Decodes one compact frame, with the rules of §11.11: UP_EVERSION when
 * byte 0 does not mark a compact frame, then the trailers (a CRC-16
 * when C is set, a MIC kept in m->cx.mic when M is set), the type, the
 * X and M rules and every field.  The message comes out in the same
 * struct as a full frame's (m->form UP_FORM_COMPACT, the compact-only
 * fields in m->cx): a compact DATA's index in m->u.data.index with
 * session 0 and the tag in m->cx.tag, a PARITY's code (§11.5.6) in
 * m->u.data.index, a node id left out as 0, a status body's form in
 * st.form.  Borrows from `buf' like up_decode().
 */
int		 up_cdecode(const uint8_t *buf, size_t len, struct up_msg *m);
/* Either form: up_decode() or up_cdecode() by byte 0. */
int		 up_decode_any(const uint8_t *buf, size_t len,
		    struct up_msg *m);
/*
 * up_encode() encodes m->form UP_FORM_COMPACT messages as compact
 * frames: the X bit follows from the fields (a node id present when not
 * 0; a 3-byte index when above 0xffff), C and M from m->cx.cflags (the
 * MIC bytes are m->cx.mic, written as given).  Anything up_cdecode()
 * accepts re-encodes to the same bytes.
 */

/*
 * Fast path for compact DATA and PARITY, as up_seal_data() for full
 * frames: the caller places `len' bytes at buf + up_cdata_off(index)
 * (4, or 5 past index 0xffff; 0 for an index past 2^24 - 1, which the
 * compact form cannot carry); this writes the form byte, the tag, the
 * index (a PARITY's code) and, with UP_CF_CRC in cflags, the CRC-16.
 * Returns the frame length, or UP_EINVAL (bad type, index or cflags:
 * a MIC cannot be sealed yet), UP_ELEN (len 0 or longer than
 * UP_FRAME_MAX), UP_ENOSPC (cap).
 */
size_t		 up_cdata_off(uint32_t index);
int		 up_cseal(uint8_t *buf, size_t cap, uint8_t type,
		    uint8_t cflags, uint8_t tag, uint32_t index, uint16_t len);

/*
 * The code of a compact PARITY (§11.5.6): (row - 1) * ngroups + group.
 * up_cparity_code() returns UP_OK and *code, or UP_ERANGE (row 0 or
 * past UP_FEC_ROW_MAX, group >= ngroups, a code past 2^24 - 1);
 * up_cparity_split() is its inverse (UP_ERANGE for a row past
 * UP_FEC_ROW_MAX or ngroups 0).
 */
int		 up_cparity_code(uint32_t row, uint32_t group,
		    uint32_t ngroups, uint32_t *code);
int		 up_cparity_split(uint32_t code, uint32_t ngroups,
		    uint32_t *row, uint32_t *group);
struct up_fec_parity;
/*
 * The FEC fields of a decoded compact PARITY, given the session's k (the
 * compact OFFER's fec_k) and nblocks: like up_fec_parity_parse() for a
 * full one.  UP_EINVAL for another message, UP_ERANGE for k 0, a row
 * past UP_FEC_ROW_MAX or a group past the package.
 */
int		 up_cparity_parse(const struct up_msg *, uint16_t k,
		    uint32_t nblocks, struct up_fec_parity *);

/*
 * The largest block size whose compact DATA and PARITY frames fit a
 * link of `mtu' bytes, with the trailers of cflags (UP_CF_CRC,
 * UP_CF_MIC) reserved: mtu minus the header (the 3-byte index when the
 * package then has more than 65,536 blocks) minus the trailers.  0 when
 * nothing fits or the package would need more than 2^24 blocks.  Parity
 * codes past 0xffff need the 3-byte index too: with a narrow block size
 * (nblocks <= 65,536) send only codes up to 0xffff.
 */
uint16_t	 up_cblock_size(uint32_t size, uint32_t mtu, uint8_t cflags);

/*
 * The gateway's session tags on one link instance (§11.4): tags lo..hi
 * (a range, so gateways sharing a medium can be given disjoint ones),
 * handed out in turn from `next' (which the caller persists), skipping
 * tags in use and tags released less than their session's staleness
 * time ago.  up_ctags_take() returns a tag or UP_ENOSPC; the caller
 * stores it with the session.  up_ctags_release() frees it at now_s +
 * stale_s (seconds of a monotonic clock; stale_s is the session's
 * deadline_s, or UP_NODE_STALE_S when that is 0).  up_ctags_hold() marks
 * a tag in use again after a restart (the sessions the caller resumes).
 */
struct up_ctags {
	uint8_t		 lo;
	uint8_t		 hi;
	uint8_t		 next;
	uint8_t		 used[32];	/* bit per tag */
	uint32_t	 free_at[256];	/* s: when a released tag is free */
};
int		 up_ctags_init(struct up_ctags *, uint8_t lo, uint8_t hi,
		    uint8_t next);
int		 up_ctags_take(struct up_ctags *, uint32_t now_s);
void		 up_ctags_hold(struct up_ctags *, uint8_t tag);
void		 up_ctags_release(struct up_ctags *, uint8_t tag,
		    uint32_t now_s, uint32_t stale_s);

/* ------------------------------------------------------------------ */
/* up_seg.c: segmentation (docs/up-protocol.md §11.8)                 */

#ifndef UP_SEG_NMAX
#define UP_SEG_NMAX		64	/* segments per message, at most 64 */
#endif
#ifndef UP_SEG_MSG_MAX
#define UP_SEG_MSG_MAX		768	/* a node's reassembly buffer */
#endif
#define UP_SEG_HDR_LEN		4	/* form, mtag, i, n */

/*
 * Sender side.  A compact message of msg_len bytes (encoded with
 * UP_CF_CRC set, as §11.8 requires) that is longer than the link's mtu
 * goes out as up_seg_count() SEG frames; up_seg_build() writes frame i
 * into out[cap] and returns its length.  Every frame is at most mtu
 * bytes; seg_cflags may ask for a CRC-16 on each segment (UP_CF_CRC),
 * and a node sets UP_C_X in it to mark its segments as its own (§11.8).
 * up_seg_count() returns the count (2 .. UP_SEG_NMAX), 1 when the
 * message fits one frame (send it whole), or UP_ELEN when it would need
 * more than UP_SEG_NMAX segments or mtu is below UP_C_MTU_MIN.
 */
int		 up_seg_count(size_t msg_len, size_t mtu, uint8_t seg_cflags);
int		 up_seg_build(const uint8_t *msg, size_t msg_len, size_t mtu,
		    uint8_t seg_cflags, uint8_t mtag, uint8_t i, uint8_t *out,
		    size_t cap);

/*
 * Receiver side: one message in reassembly over a caller buffer
 * (borrowed for the reassembler's life).  Fields are private to
 * up_seg.c.
 */
struct up_seg_rx {
	uint8_t		*buf;
	size_t		 cap;
	uint64_t	 got;		/* bit i: segment i held */
	uint16_t	 c;		/* chunk of a non-last segment */
	uint16_t	 last_len;	/* length of the last segment */
	uint8_t		 mtag;
	uint8_t		 n;
	uint8_t		 ngot;
	bool		 active;	/* a message in reassembly */
	bool		 stashed;	/* last segment parked at the end */
	bool		 done;		/* done_*: the message completed last */
	uint8_t		 done_mtag;
	uint8_t		 done_n;
	uint32_t	 completed;	/* statistics */
	uint32_t	 discarded;
};
void		 up_seg_rx_init(struct up_seg_rx *, uint8_t *buf, size_t cap);
/* Forgets the message in reassembly and the last completed one. */
void		 up_seg_rx_reset(struct up_seg_rx *);
/*
 * Takes one decoded SEG (the rules of §11.8).  Returns 0 when the
 * segment was kept or ignored and the message is not complete, the
 * message's length (> 0) when it completed: the message is then in
 * buf[0, length), a compact non-SEG frame with C set and a good CRC-16,
 * ready for up_cdecode(), and stays there until the next call.  Errors:
 * UP_EINVAL (not a SEG), UP_ELEN (the message does not fit the buffer:
 * dropped), UP_EBADCRC / UP_ETYPE (the completed message is not a valid
 * segmented message: dropped).
 */
int		 up_seg_rx_put(struct up_seg_rx *, const struct up_seg *);

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
 * within [0, nblocks).  Blocks past the slice (or past the last run of
 * a cut run list) are not visited; a count list names no block and
 * visits nothing.
 */
void		 up_status_foreach_missing(const struct up_status_body *st,
		    uint32_t nblocks, void (*fn)(void *, uint32_t), void *arg);

/* ------------------------------------------------------------------ */
/* up_status.c: run lists, count lists, the aggregator (§11.7)        */

/*
 * Node side: builds a status body that fits `budget' bytes of frame
 * (the whole body: its varints and entries), cutting the list when it
 * must (st->cut).  The entries go to out[cap] and st->list points there.
 * Returns the body's length in bytes (what the encoder writes), or
 * UP_ENOSPC when not even an empty list fits (or out is too small for
 * one entry).
 *
 * up_status_runs(): the run list of a "held" bitmap (§11.7).
 * up_status_counts(): the count list of a session of ngroups parity
 * groups; need(arg, g) says how many rows group g still needs (0 for a
 * complete group), `missing' is the node's missing block count.
 */
int		 up_status_runs(const struct up_bitmap *held, uint8_t *out,
		    size_t cap, size_t budget, struct up_status_body *st);
int		 up_status_counts(uint32_t missing, uint32_t ngroups,
		    uint32_t (*need)(void *, uint32_t), void *arg,
		    uint8_t *out, size_t cap, size_t budget,
		    struct up_status_body *st);
/* Bytes of a status body on the wire (any form). */
size_t		 up_status_body_len(const struct up_status_body *);

/*
 * Gateway side.  up_status_check() checks a decoded body against the
 * session (nblocks blocks, ngroups parity groups; 0 when the session has
 * no parity, then a count list may only name group 0): every run and
 * group inside the package, held and missing at most nblocks,
 * first_missing at most nblocks.  UP_OK or UP_ERANGE; a body that fails
 * must not be used at all.
 *
 * up_status_foreach_run() calls fn(arg, first, count) for each missing
 * run (a bitmap slice gives its runs too) and up_status_foreach_need()
 * fn(arg, group, need) for each count-list entry; both stop at the
 * package's end and return UP_OK, or UP_ERANGE when the body runs past
 * it (entries before that were visited: check first).
 *
 * up_status_described() is the end of what the body describes: blocks
 * [0, end) are held or listed missing (for a count list, groups [0,
 * end)); nblocks (ngroups) when it describes everything.
 */
int		 up_status_check(const struct up_status_body *,
		    uint32_t nblocks, uint32_t ngroups);
int		 up_status_foreach_run(const struct up_status_body *,
		    uint32_t nblocks, void (*fn)(void *, uint32_t, uint32_t),
		    void *arg);
int		 up_status_foreach_need(const struct up_status_body *,
		    uint32_t ngroups, void (*fn)(void *, uint32_t, uint32_t),
		    void *arg);
uint32_t	 up_status_described(const struct up_status_body *,
		    uint32_t nblocks, uint32_t ngroups);

/*
 * A status round's aggregate, for the gateway (caller memory: a bitmap
 * of nblocks bits and one byte per group).  up_status_agg_add() takes
 * one node's body, of any form, after up_status_check(): the blocks it
 * names missing join the union `missing', and need[g] becomes the
 * largest count of rows any node needs in group g (for bitmap slices and
 * run lists: its missing blocks in g, as the gateway does not know the
 * rows it holds), saturating at 255.  A body that fails the check
 * returns UP_ERANGE and changes nothing.
 */
struct up_status_agg {
	uint32_t	 nblocks;
	uint16_t	 k;		/* group size, 0: one group */
	uint32_t	 ngroups;
	struct up_bitmap missing;	/* union of the missing blocks */
	uint8_t		*need;		/* ngroups bytes */
	uint32_t	 bodies;	/* bodies added */
	uint32_t	 complete;	/* ... that miss nothing at all */
	uint32_t	 cut;		/* ... that stopped before the end */
	uint32_t	 counts;	/* ... count lists (no block named) */
	/* up_status_agg_add()'s scratch: one group's count. */
	uint32_t	 g_cur;
	uint32_t	 g_n;
};
/*
 * Binds an aggregator to nblocks blocks in groups of k (0: one group)
 * over bits[bits_len] (at least up_bitmap_bytes(nblocks)) and
 * need[need_len] (at least up_fec_ngroups(nblocks, k), or 1); clears
 * both.  UP_OK or UP_EINVAL.
 */
int		 up_status_agg_init(struct up_status_agg *, uint32_t nblocks,
		    uint16_t k, uint8_t *bits, size_t bits_len, uint8_t *need,
		    size_t need_len);
int		 up_status_agg_add(struct up_status_agg *,
		    const struct up_status_body *);

/* ------------------------------------------------------------------ */
/* up_vcdiff.c: VCDIFF decoder (RFC 3284)                             */

/*
 * A streaming decoder for plain VCDIFF (RFC 3284) as `xdelta3 -e -9 -S
 * none -A -n [-W 16384]' writes it: the default code table (§5.6),
 * VCD_SOURCE and VCD_TARGET windows, ADD/COPY/RUN with every address mode
 * (self, here, near, same; §5.3), xdelta3's application header (skipped)
 * and its Adler-32 window checksum (Win_Indicator bit 0x04, checked when
 * present).  Secondary compression (VCD_DECOMPRESS, compressed sections)
 * and application-defined code tables (VCD_CODETABLE) are refused with
 * UP_EVERSION.
 *
 * Everything goes through the caller's callbacks, each returning 0 or -1
 * (a -1 fails the decode with UP_EPORT):
 *  - delta_read(off, p, n): n bytes of the delta at off.  The decoder
 *    only asks for bytes inside [0, delta_len).
 *  - source_read(off, p, n): the source (the base image), only inside
 *    [0, source_len).
 *  - target_write(off, p, n): the target, in order: off is always the
 *    number of bytes written before, and off + n <= target_max.
 *  - target_read(off, p, n): reads back target bytes already written
 *    (off + n <= bytes written).  May be NULL; see below.
 *
 * Memory: no allocation.  The caller provides the struct (about 4 KiB:
 * the address caches of the default table, (4 + 3 * 256) * 4 bytes, and
 * three UP_VCD_SECBUF section read buffers) and one window buffer of
 * buf_len bytes.  A COPY may read the current target window's own earlier
 * bytes (RFC 3284 §3), so a target window must fit the buffer
 * (UP_VCD_WINDOW = 16 KiB for deltas made with `-W 16384') unless
 * target_read is given: then bytes that no longer fit are flushed and
 * read back from the output, and any window size decodes with any
 * buf_len >= UP_VCD_BUF_MIN (slower: one read per such COPY).  So the
 * RAM a node needs is sizeof(struct up_vcd) + buf_len, never the image.
 *
 * Errors (sticky; up_vcd_why() says which rule broke): UP_ESHORT a field
 * or section runs past the end of the delta or its window; UP_ERANGE a
 * bad magic, integer, address or size (a COPY outside source + target so
 * far, a target longer than target_max); UP_ELEN a window whose lengths
 * or sections do not add up; UP_EVERSION an unsupported feature (above);
 * UP_ENOSPC a window larger than buf_len without target_read;
 * UP_EBADCRC an Adler-32 mismatch; UP_EPORT a callback failed.  A
 * malformed delta never makes the decoder read or write outside the
 * bounds above.
 */
#define UP_VCD_WINDOW		16384	/* -W 16384: node profile */
#define UP_VCD_BUF_MIN		64	/* smallest window buffer */
#ifndef UP_VCD_SECBUF
#define UP_VCD_SECBUF		256	/* read-ahead per section */
#endif
#define UP_VCD_NEAR		4	/* s_near of the default table */
#define UP_VCD_SAME		3	/* s_same of the default table */
/* up_vcd_run(): more to do; call again. */
#define UP_VCD_MORE		1

struct up_vcd_io {
	int	 (*delta_read)(void *ctx, uint32_t off, uint8_t *p,
		    size_t n);
	int	 (*source_read)(void *ctx, uint32_t off, uint8_t *p,
		    size_t n);
	int	 (*target_write)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);
	int	 (*target_read)(void *ctx, uint32_t off, uint8_t *p,
		    size_t n);
};

/* One section (data, instructions or addresses) read through a buffer. */
struct up_vcd_sec {
	uint32_t	 next;		/* delta offset to fetch next */
	uint32_t	 end;		/* delta offset past the section */
	uint16_t	 at;		/* next unread byte of buf */
	uint16_t	 have;		/* bytes in buf */
	uint8_t		 buf[UP_VCD_SECBUF];
};

/* The decoder's state; fields are private to up_vcdiff.c. */
struct up_vcd {
	const struct up_vcd_io	*io;
	void			*ctx;
	uint8_t			*buf;		/* the window buffer */
	uint32_t		 buf_len;
	uint32_t		 delta_len;
	uint32_t		 source_len;
	uint32_t		 target_max;
	uint32_t		 off;		/* next window header */
	uint32_t		 written;	/* target bytes written */
	int			 err;		/* sticky up_err */
	const char		*why;		/* what broke (logs) */
	uint8_t			 phase;
	/* The current window (RFC 3284 §4.2, §4.3). */
	uint8_t			 win_ind;
	bool			 has_adler;
	uint32_t		 adler;		/* expected Adler-32 */
	uint32_t		 adler_run;	/* of the bytes flushed */
	uint32_t		 src_len;	/* source segment length */
	uint32_t		 src_pos;	/* and position */
	uint32_t		 tlen;		/* target window length */
	uint32_t		 t;		/* window bytes decoded */
	uint32_t		 flushed;	/* window bytes written out */
	uint32_t		 wend;		/* delta offset at its end */
	/* Address caches (§5.1), reset at every window. */
	uint32_t		 near[UP_VCD_NEAR];
	uint32_t		 next_slot;
	uint32_t		 same[UP_VCD_SAME * 256];
	struct up_vcd_sec	 data, inst, addr;
	/* Statistics, for tests and logs. */
	uint32_t		 windows;	/* windows decoded */
	uint32_t		 max_window;	/* largest target window */
	uint32_t		 readbacks;	/* target_read calls */
};

/*
 * Starts decoding a delta of delta_len bytes that rebuilds at most
 * target_max bytes from a source of source_len bytes.  `buf' (buf_len
 * bytes, at least UP_VCD_BUF_MIN) is the window buffer, borrowed until
 * the decode ends.  `io' and `ctx' are borrowed likewise.  No I/O.
 * Returns UP_OK or UP_EINVAL.
 */
int		 up_vcd_init(struct up_vcd *, const struct up_vcd_io *io,
		    void *ctx, uint32_t delta_len, uint32_t source_len,
		    uint32_t target_max, uint8_t *buf, size_t buf_len);
/*
 * Decodes until about `budget' target bytes were produced (0: no limit),
 * stopping only between instructions, so a node can apply a large delta
 * in steps from its main loop.  Returns UP_VCD_MORE when there is more,
 * UP_OK when the whole delta was applied (up_vcd_written() bytes), or an
 * up_err; after an error every call returns the same error.
 */
int		 up_vcd_run(struct up_vcd *, uint32_t budget);
/* Target bytes handed to target_write so far (after an error too). */
uint32_t	 up_vcd_written(const struct up_vcd *);
/* The first error's reason ("adler32 mismatch", ...), or "" if none. */
const char	*up_vcd_why(const struct up_vcd *);

/* ------------------------------------------------------------------ */
/* up_fec.c: TS004 parity code (docs/up-protocol.md §4.6)             */

/*
 * The forward-error-correction code of LoRaWAN TS004 (Fragmented Data
 * Block Transport v1.0.0 §7-8, v2.0.0 Appendix A), bit-exact, applied per
 * group of k consecutive blocks: group g holds blocks [g*k, min(g*k + k,
 * nblocks)), M = that count, and parity row r (r >= 1, TS004's coded
 * fragment N = M + r) is the XOR of the group's blocks i (0-based within
 * the group, the package's last block zero-padded to block_size) whose bit
 * is set in matrix_line(r, M).  The gateway picks k and announces it in
 * every PARITY frame; the matrix is O(M^2), so a whole 300 MB package is
 * never one TS004 block.
 *
 * PARITY payload (docs/up-protocol.md §4.6): u32 row (the codec's
 * up_data.index), u32 group, u16 k, then block_size parity bytes at frame
 * offset UP_FEC_DATA_OFF.  up_decode() only checks the row and one byte
 * after it; up_fec_parity_parse() checks the rest.
 */
#ifndef UP_FEC_K_MAX
#define UP_FEC_K_MAX		128	/* largest group a decoder takes */
#endif
#define UP_FEC_ROW_MAX		0xffff	/* highest parity row */
#define UP_FEC_HDR_LEN		6	/* group u32 + k u16 after the row */
#define UP_FEC_DATA_OFF		(UP_DATA_OFF + UP_FEC_HDR_LEN)
#define UP_PARITY_OVERHEAD	(UP_DATA_OVERHEAD + UP_FEC_HDR_LEN)

/* TS004 Appendix A PRBS23: x' = (x >> 1) + (((x ^ (x >> 5)) & 1) << 22). */
uint32_t	 up_fec_prbs23(uint32_t x);
/*
 * matrix_line(row, m) of TS004 Appendix A into bits[(m + 7) / 8] (LSB
 * first, §2.5; bit i = source fragment i, 0-based).  1 <= row <=
 * UP_FEC_ROW_MAX, 1 <= m <= 65535.  Returns the number of bits set (at
 * most m / 2) or UP_EINVAL / UP_ENOSPC.
 */
int		 up_fec_matrix_line(uint32_t row, uint32_t m, uint8_t *bits,
		    size_t cap);
/* Groups of k blocks in nblocks (0 if k is 0), and M of group g. */
uint32_t	 up_fec_ngroups(uint32_t nblocks, uint16_t k);
uint16_t	 up_fec_group_len(uint32_t nblocks, uint16_t k, uint32_t g);
/* dst[i] ^= src[i] for n bytes. */
void		 up_fec_xor(uint8_t *dst, const uint8_t *src, size_t n);

/* A PARITY frame's fields (data borrowed from the frame). */
struct up_fec_parity {
	uint32_t	 row;
	uint32_t	 group;
	uint16_t	 k;
	uint16_t	 len;		/* parity bytes */
	const uint8_t	*data;
};
/*
 * Takes the FEC fields out of a decoded PARITY message: UP_ELEN when
 * fewer than UP_FEC_HDR_LEN + 1 bytes follow the row, UP_ERANGE for row
 * 0 or > UP_FEC_ROW_MAX or k 0, UP_EINVAL for another type.
 */
int		 up_fec_parity_parse(const struct up_msg *,
		    struct up_fec_parity *);
/*
 * Fast path like up_seal_data(): the caller placed `len' parity bytes at
 * buf + UP_FEC_DATA_OFF; this writes the header, row, group, k and CRC.
 * Returns the frame length or an up_err.
 */
int		 up_fec_seal_parity(uint8_t *buf, size_t cap, uint8_t flags,
		    uint32_t session, uint32_t row, uint32_t group, uint16_t k,
		    uint16_t len);

/*
 * Encoder: out[blen] = parity row `row' of a group of m blocks.  read(ctx,
 * i, buf, blen) fills buf with the group's block i (0-based), a short
 * last block zero-padded; it returns 0 or -1 (then UP_EPORT).  `bits' is
 * scratch of (m + 7) / 8 bytes, `scratch' of blen bytes.
 */
typedef int	 up_fec_read_fn(void *ctx, uint16_t i, uint8_t *buf,
		    size_t blen);
int		 up_fec_encode(uint32_t row, uint16_t m, uint8_t *out,
		    size_t blen, uint8_t *bits, uint8_t *scratch,
		    up_fec_read_fn *read, void *ctx);

/*
 * Gateway planner: how many consecutive rows first_row, first_row + 1,
 * ... a node missing the group's blocks set in missing[(m + 7) / 8] needs
 * so that they determine every missing block (GF(2) rank == missing
 * count).  Returns that count (0 when nothing is missing), or -1 when
 * max_rows rows do not suffice or an argument is bad.  Cost: about
 * rows * (m + missing) bit operations; no I/O.
 */
int		 up_fec_rows_needed(uint16_t m, const uint8_t *missing,
		    uint32_t first_row, unsigned int max_rows);

/*
 * Incremental decoder of one group (TS004 Appendix A.2 in Gauss-Jordan
 * form).  Source blocks (up_fec_dec_source) and parity rows
 * (up_fec_dec_parity) arrive in any order.  A parity row is reduced by
 * the known blocks and the stored rows; a row that adds nothing is
 * dropped, else it is stored with a pivot among the missing blocks and
 * eliminated from every other stored row.  A stored row whose vector is
 * a single block IS that block: it is handed to ops->src_write at once
 * and forgotten, so blocks come out as soon as they are determined, and
 * the stored rows never exceed the missing blocks.
 *
 * Memory (no allocation): the struct (about 2.4 KB with UP_FEC_K_MAX 128:
 * one bit vector per stored row), 2 * blen bytes of scratch, and the
 * parity rows: the first rows_len / blen of them in caller RAM (`rows'),
 * and, when ops->row_read and row_write are set, up to store_rows more
 * wherever the caller keeps them (a flash row store), addressed by
 * group and store row 0 .. store_rows - 1.  A row is written to the
 * store when it is stored, rewritten when another row is eliminated
 * from it and read back when used; its content only matters until the
 * decoder is bound again (nothing in it survives a reboot usefully).
 * The ops return 0 or -1 (then UP_EPORT; the decoder may have lost
 * rows, never a block).  src_read/src_write take the group's block i
 * (0-based), blen bytes, a short last block zero-padded on read and to be
 * trimmed by the caller on write.  They may not call the decoder.
 */
struct up_fec_ops {
	int	 (*src_read)(void *ctx, uint32_t group, uint16_t i,
		    uint8_t *buf, size_t blen);
	int	 (*src_write)(void *ctx, uint32_t group, uint16_t i,
		    const uint8_t *buf, size_t blen);
	int	 (*row_read)(void *ctx, uint32_t group, uint16_t row,
		    uint8_t *buf, size_t blen);
	int	 (*row_write)(void *ctx, uint32_t group, uint16_t row,
		    const uint8_t *buf, size_t blen);
};

#define UP_FEC_VEC_BYTES	((UP_FEC_K_MAX + 7) / 8)

/* Fields are private to up_fec.c. */
struct up_fec_dec {
	const struct up_fec_ops	*ops;
	void			*ctx;
	uint8_t			*rows;		/* RAM rows or NULL */
	uint16_t		 nram;		/* rows in RAM, then store */
	uint8_t			*scratch;	/* 2 * blen */
	uint32_t		 group;
	uint16_t		 m;		/* blocks in the group */
	uint16_t		 k;		/* group size announced */
	uint16_t		 blen;
	uint16_t		 nknown;	/* blocks known */
	uint16_t		 nrows;		/* rows stored */
	uint16_t		 maxrows;
	uint32_t		 stamp;		/* for the caller (LRU) */
	uint8_t			 known[UP_FEC_VEC_BYTES];
	uint16_t		 piv[UP_FEC_K_MAX];
	uint8_t			 vec[UP_FEC_K_MAX][UP_FEC_VEC_BYTES];
};

/*
 * Binds a decoder to group `group' of m blocks (1 <= m <= k <=
 * UP_FEC_K_MAX) of blen-byte blocks, with rows_len / blen rows in RAM
 * (`rows', may be NULL) and store_rows in the row store (ignored
 * without ops->row_read/row_write).  Nothing is known yet: tell it the
 * blocks already held with up_fec_dec_source() (no I/O while no row is
 * stored).  Returns UP_OK or UP_EINVAL (bad sizes, no row storage).
 */
int		 up_fec_dec_init(struct up_fec_dec *, const struct up_fec_ops *,
		    void *ctx, uint32_t group, uint16_t m, uint16_t k,
		    uint16_t blen, uint8_t *scratch, uint8_t *rows,
		    size_t rows_len, uint16_t store_rows);
/*
 * Block i of the group is now known (held; src_read may read it).
 * Returns the number of blocks this recovered (>= 0) or an up_err.
 */
int		 up_fec_dec_source(struct up_fec_dec *, uint16_t i);
/*
 * One parity row (len must be blen).  Returns the number of blocks it
 * recovered (>= 0), or UP_EINVAL (bad row/len), UP_ENOSPC (a useful row
 * but no room to store it: dropped), UP_EPORT.
 */
int		 up_fec_dec_parity(struct up_fec_dec *, uint32_t row,
		    const uint8_t *data, size_t len);
/* Blocks of the group still missing (0: complete). */
uint16_t	 up_fec_dec_missing(const struct up_fec_dec *);
/* Rows stored (useful parity held for the missing blocks). */
uint16_t	 up_fec_dec_rows(const struct up_fec_dec *);

/* ------------------------------------------------------------------ */
/* up_modbus.c: UP over Modbus, the register map                      */
/* (docs/transports/modbus.md)                                        */

/*
 * A node on Modbus RTU or TCP is a Modbus server (slave) that holds this
 * register map; the gateway is the client (master).  UP frames travel
 * whole: the gateway writes one frame into the FRAME window with FC 0x10
 * (a broadcast to unit 0 on RTU reaches every node), and reads what the
 * node has to say from its outbox with FC 0x17 (acknowledging the last
 * frame it read in the same request) or FC 0x03.  Identity, status and
 * the missing-block bitmap are plain registers any Modbus tool can read.
 * Addresses are PDU addresses (0-based).  A register holds two frame
 * bytes, the first in its high byte, so the frame's bytes go on the wire
 * in order; numbers wider than 16 bits take several registers, the most
 * significant first (the usual Modbus word order).
 *
 * Input registers (FC 0x04, read-only):
 */
#define UP_MB_MAGIC		0x5550	/* "UP" */
#define UP_MB_MAPVER		1
#define UP_MB_ID		0x0000	/* identity block */
#define UP_MB_ID_MAGIC		0x0000	/* UP_MB_MAGIC */
#define UP_MB_ID_MAPVER		0x0001	/* UP_MB_MAPVER */
#define UP_MB_ID_NODE		0x0002	/* u64 node id, 4 registers */
#define UP_MB_ID_RX_MAX		0x0006	/* largest frame FRAME takes, bytes */
#define UP_MB_ID_TX_MAX		0x0007	/* largest frame the outbox holds */
#define UP_MB_ID_FLAGS		0x0008	/* UP_MB_IDF_* */
#define UP_MB_IDF_COMPACT	0x0001	/* takes compact frames (spec §11) */
#define UP_MB_ID_NCOMP		0x0009	/* components that follow */
#define UP_MB_ID_HDR_N		10	/* registers 0x0000-0x0009 */
#define UP_MB_ID_HW		0x0010	/* hardware model, 16 registers */
#define UP_MB_STR_N		16	/* registers of a string: 32 bytes */
#define UP_MB_ID_COMP		0x0020	/* component i: name at +32 i, */
#define UP_MB_ID_COMP_N		32	/* ... version at +32 i + 16 */
#define UP_MB_ID_N		(UP_MB_ID_COMP + UP_MAX_COMPONENTS * \
				    UP_MB_ID_COMP_N)
#define UP_MB_ST		0x0200	/* status block */
#define UP_MB_ST_N		16
#define UP_MB_BITMAP		0x1000	/* missing blocks, 16 a register */
#define UP_MB_BITMAP_N		0xf000	/* to 0xffff */
/*
 * Holding registers (FC 0x03 read, 0x06/0x10 write, 0x17 both):
 */
#define UP_MB_FRAME		0x0100	/* a frame of 2n bytes, FC 0x10 */
#define UP_MB_FRAME_ODD		0x0180	/* 2n - 1 bytes, last low byte 0 */
#define UP_MB_FRAME_N		123	/* registers: MODBUS_MAX_WRITE_REGISTERS */
#define UP_MB_FRAME_MAX		(2 * UP_MB_FRAME_N)	/* 246 bytes */
#define UP_MB_CTRL		0x0300	/* command, then its u32 argument */
#define UP_MB_CTRL_N		3
#define UP_MB_CMD_VERIFY	1	/* VERIFY the current session */
#define UP_MB_CMD_ACTIVATE	2	/* ACTIVATE it, delay = argument ms */
#define UP_MB_CMD_ABORT		3	/* ABORT it, reason = argument */
#define UP_MB_BMBASE		0x0310	/* u32: block of UP_MB_BITMAP's bit 0 */
#define UP_MB_BMBASE_N		2
#define UP_MB_OB		0x0400	/* outbox: ack, seq, length, frame */
#define UP_MB_OB_ACK		0x0400	/* write: the seq last read */
#define UP_MB_OB_SEQ		0x0401	/* the frame's seq (never 0) */
#define UP_MB_OB_LEN		0x0402	/* its bytes, 0: empty */
#define UP_MB_OB_DATA		0x0403
#define UP_MB_OB_MAX		UP_FRAME_MAX	/* bytes */
#define UP_MB_OB_N		(3 + (UP_MB_OB_MAX + 1) / 2)
/* Most registers one read (FC 0x03/0x04/0x17) returns. */
#define UP_MB_READ_MAX		125

/* The areas of the map; which function codes may touch each. */
enum up_mb_area {
	UP_MB_A_NONE = 0,
	UP_MB_A_ID,		/* input */
	UP_MB_A_ST,		/* input */
	UP_MB_A_BITMAP,		/* input */
	UP_MB_A_FRAME,		/* holding, write from its start only */
	UP_MB_A_FRAME_ODD,	/* holding, write from its start only */
	UP_MB_A_CTRL,		/* holding */
	UP_MB_A_BMBASE,		/* holding */
	UP_MB_A_OB		/* holding: read; write UP_MB_OB_ACK only */
};

/* Modbus exception codes the map answers with. */
#define UP_MB_EX_FUNCTION	0x01	/* function code not supported */
#define UP_MB_EX_ADDRESS	0x02	/* outside the map, or crosses areas */
#define UP_MB_EX_VALUE		0x03	/* bad count or value */

/*
 * Checks a request against the map, before anything is applied: `fc'
 * the function code, [addr, addr + n) what it reads (FC 0x03, 0x04,
 * 0x17) or writes (0x06: n = 1, 0x10), [waddr, waddr + wn) what FC 0x17
 * writes.  Returns 0 when the request may be served, else the exception
 * code to answer with; *area (may be NULL) gets the area written (or
 * read, for reads).
 */
int		 up_mb_check(uint8_t fc, uint16_t addr, uint16_t n,
		    uint16_t waddr, uint16_t wn, enum up_mb_area *area);

/* The identity block (UP_MB_ID .. + UP_MB_ID_N). */
struct up_mb_ident {
	uint64_t	 node_id;
	uint16_t	 mapver;
	uint16_t	 rx_max;
	uint16_t	 tx_max;
	uint16_t	 flags;
	char		 hw[UP_NAME_MAX + 1];
	uint8_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
};
/* Fills regs[UP_MB_ID_N]. */
void		 up_mb_ident_encode(const struct up_mb_ident *, uint16_t *);
/*
 * Decodes the first n registers of the block (at least UP_MB_ID_HDR_N:
 * the header; UP_MB_ID_HW + UP_MB_STR_N adds the model, each component
 * needs its 32 registers).  UP_ESHORT when n is below the header,
 * UP_ERANGE for a wrong magic, map version or count, UP_ELEN for a
 * string without its NUL padding.  Components past n are left out.
 */
int		 up_mb_ident_decode(const uint16_t *, size_t n,
		    struct up_mb_ident *);

/* The status block (UP_MB_ST .. + UP_MB_ST_N). */
struct up_mb_status {
	uint8_t		 state;		/* enum up_node_state */
	uint8_t		 result;	/* enum up_result of the session */
	uint32_t	 session;
	uint32_t	 nblocks;
	uint32_t	 held;
	uint32_t	 first_missing;
	uint16_t	 block_size;
	uint16_t	 outbox;	/* frames waiting */
	uint32_t	 rx_frames;	/* frames written into FRAME */
	uint32_t	 rx_errors;	/* requests refused */
};
void		 up_mb_status_encode(const struct up_mb_status *, uint16_t *);
/* UP_ESHORT below UP_MB_ST_N registers, UP_ERANGE for a bad state. */
int		 up_mb_status_decode(const uint16_t *, size_t n,
		    struct up_mb_status *);

/*
 * A frame of len bytes (1 .. UP_MB_FRAME_MAX) as the registers of one
 * FC 0x10 write: fills regs[(len + 1) / 2] and returns the start
 * address (UP_MB_FRAME, or UP_MB_FRAME_ODD for an odd length); 0 when
 * len is out of range.
 */
uint16_t	 up_mb_frame_regs(const uint8_t *frame, size_t len,
		    uint16_t *regs);
/*
 * The frame an FC 0x10 write of n registers at addr carries, into
 * buf[cap].  Returns its length, or UP_ERANGE (not a frame window, or
 * too many registers), UP_ELEN (odd window with a non-zero pad byte, or
 * n == 0), UP_ENOSPC.
 */
int		 up_mb_frame_take(uint16_t addr, const uint16_t *regs,
		    size_t n, uint8_t *buf, size_t cap);

/* Bytes <-> registers, first byte high; an odd tail pads with 0. */
void		 up_mb_put_bytes(uint16_t *regs, const uint8_t *, size_t len);
void		 up_mb_get_bytes(uint8_t *, const uint16_t *regs, size_t len);

/*
 * The outbox header from regs[0] = UP_MB_OB_SEQ, regs[1] = UP_MB_OB_LEN:
 * a frame of len bytes (0: empty) whose sequence number is seq (never
 * 0).  Decoding checks len <= UP_MB_OB_MAX (UP_ELEN) and seq != 0 when
 * len != 0 (UP_ERANGE).
 */
int		 up_mb_ob_decode(const uint16_t *regs, uint16_t *seq,
		    uint16_t *len);

/* CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of an RTU ADU;
 * sent low byte first.  up_mb_crc16("123456789", 9) == 0x4B37. */
uint16_t	 up_mb_crc16(const uint8_t *, size_t);

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
	/*
	 * Optional (may be NULL): progress saves of the bitmap alone,
	 * in place (docs/up-node-engine.md, "Persistence and flash wear").
	 * Writes bytes [off, off + n) of the bitmap that the last save()
	 * stored; load() returns the bitmap with them.  Between two save()
	 * calls the engine only ever sets bits, so a port may program them
	 * into erased NOR flash without an erase (keep the bitmap inverted:
	 * erased 0xff = missing) or append them to a journal.  Need not be
	 * atomic: after a cut, load() may give any mix of the old and new
	 * bits of the span, all of them true.  Without it every progress
	 * save rewrites the state blob and the whole bitmap.
	 */
	int	 (*save_bitmap)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);

	/*
	 * Optional (may be NULL): the parity row store
	 * (docs/up-node-engine.md, "Parity"), memory outside RAM where the
	 * TS004 decoders keep the rows beyond the row budget
	 * (up_node_set_fec_rows()).  rows_capacity returns its size in
	 * bytes; rows_read and rows_write read and overwrite n bytes
	 * (one block_size row) at off, any offset below the capacity, the
	 * same row many times while its group decodes.  Nothing in it has
	 * to survive a reboot: the decoders are not persisted, and the
	 * engine reads only rows it wrote since it started.  Without it
	 * a group missing more blocks than the budget holds waits for
	 * plain retransmission or more rounds.
	 */
	uint32_t (*rows_capacity)(void *ctx);
	int	 (*rows_read)(void *ctx, uint32_t off, uint8_t *p, size_t n);
	int	 (*rows_write)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);

	/*
	 * The inactive (staging) slot.  slot_erase erases [off, off + len)
	 * to the flash's erased value.  The engine erases a package's range
	 * in steps of UP_NODE_ERASE_STEP bytes from offset 0, one step per
	 * up_node_tick() (docs/up-node-engine.md, "Work in steps"): every
	 * `off' is a multiple of UP_NODE_ERASE_STEP, so a step that is a
	 * multiple of the flash sector keeps every range sector-aligned;
	 * the last range ends at the package's size, which the port rounds
	 * up to its sector.
	 */
	uint32_t (*slot_capacity)(void *ctx);
	int	 (*slot_erase)(void *ctx, uint32_t off, uint32_t len);
	int	 (*slot_write)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);
	int	 (*slot_read)(void *ctx, uint32_t off, uint8_t *p, size_t n);

	/*
	 * Local policy before accepting an offer: return UP_R_INITIAL to
	 * accept or a result code to decline.  May be NULL (accept).
	 */
	int	 (*offer_check)(void *ctx, const struct up_offer *);

	/*
	 * SHA-256, the platform's (hardware or a library).  The engine
	 * verifies a staged image itself, in steps of UP_NODE_VERIFY_STEP
	 * bytes per up_node_tick(): it reads the slot (or the package
	 * area) with slot_read (pkg_read) and feeds the bytes here.  One
	 * hash at a time: sha256_begin starts a new one, dropping any
	 * other.  With UP_NODE_HASH_RX (the default) that one hash is
	 * begun when a transfer starts (an OFFER, a boot in RECEIVING or
	 * DOWNLOADED) and takes each block as it is stored in order, so
	 * the context must stay valid across calls for the whole transfer
	 * (docs/up-node-engine.md, "Hash on receipt").
	 */
	int	 (*sha256_begin)(void *ctx);
	int	 (*sha256_update)(void *ctx, const uint8_t *p, size_t n);
	int	 (*sha256_end)(void *ctx, uint8_t md[32]);

	/*
	 * The cloud's signature over a package descriptor: o->sig (of
	 * algorithm o->sig_alg, o->sig_len bytes) over desc[0, len), which
	 * is up_desc_encode(o).  Returns UP_R_INITIAL when it verifies with
	 * the provisioned key, UP_R_SIGNATURE when it does not (or there is
	 * no signature where the node requires one), UP_R_UNSUPPORTED for
	 * an algorithm the platform does not have.  The engine calls it
	 * when it takes an OFFER, before anything is erased, and again
	 * after VERIFY hashed the image (docs/up-protocol.md §5.4, §6).
	 * NULL: the node checks no signature.  Only for tests: such a node
	 * trusts the gateway's word for the version, the security version
	 * and the downgrade permission.
	 */
	int	 (*sig_verify)(void *ctx, const struct up_offer *o,
		    const uint8_t *desc, size_t len);

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

	/*
	 * Delta packages (docs/up-node-engine.md, "Deltas").  Optional: if
	 * any is NULL, or up_node_set_delta_mem() was not called, delta
	 * offers are declined UP_R_UNSUPPORTED.  A delta arrives in the
	 * package area (not the staging slot: the image is rebuilt there
	 * from the running image); DATA blocks go to pkg_write instead of
	 * slot_write.  pkg_erase is called in steps like slot_erase.
	 * base_read reads the running image (the delta's source; random
	 * access, any offset below slot_capacity).  The engine hashes the
	 * rebuilt image in the staging slot against o->image_sha256 itself.
	 */
	uint32_t (*pkg_capacity)(void *ctx);
	int	 (*pkg_erase)(void *ctx, uint32_t off, uint32_t len);
	int	 (*pkg_write)(void *ctx, uint32_t off, const uint8_t *p,
		    size_t n);
	int	 (*pkg_read)(void *ctx, uint32_t off, uint8_t *p, size_t n);
	int	 (*base_read)(void *ctx, uint32_t off, uint8_t *p, size_t n);
};

/*
 * Largest persisted state blob, bytes: a fixed part, the whole offer
 * (the signed descriptor must survive a reboot so a node can verify
 * after a power cut) and the security floors (§5.4).  up_node.c checks
 * at compile time that its encoding fits.
 */
#define UP_NODE_STATE_MAX	(128 + (UP_MAX_HW + 1) * (UP_NAME_MAX + 1) + \
    2 * (UP_VER_MAX + 1) + UP_MAX_DEPS * (UP_NAME_MAX + UP_VER_MAX + 2) + \
    UP_SIG_MAX + 1 + UP_MAX_COMPONENTS * (UP_NAME_MAX + 5))

/* Bytes of missing-block bitmap one STATUS or ACCEPT may carry. */
#define UP_NODE_SLICE_MAX	(UP_FRAME_MAX - UP_OVERHEAD - 32)
/* The engine's frame scratch: a whole frame, or a descriptor to check. */
#define UP_NODE_SCRATCH		(UP_FRAME_MAX > UP_DESC_MAX ? UP_FRAME_MAX : \
    UP_DESC_MAX)

/*
 * The engine's tunables (UP_NODE_SAVE_EVERY, UP_NODE_SAVE_DELAY_MS,
 * UP_NODE_IDLE_MS, UP_NODE_STALE_S, UP_NODE_RESULT_MIN_MS/_MAX_MS, the
 * step sizes UP_NODE_ERASE_STEP, UP_NODE_VERIFY_STEP and
 * UP_NODE_APPLY_STEP, UP_NODE_FEC_SLOTS, UP_NODE_FEC_ROWS) are in
 * up_config.h, where a port overrides them.
 */

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

/*
 * Anti-rollback (docs/up-protocol.md §5.4): the lowest security_version
 * the node still installs for a component.  It rises to an image's
 * security_version when that image is confirmed and never falls.
 */
struct up_node_floor {
	char		 component[UP_NAME_MAX + 1];
	uint32_t	 security_version;
};

/* A one-shot engine timer; wrap-safe (compared as now - due). */
struct up_node_timer {
	uint32_t	 due;		/* ms */
	bool		 armed;
};

/*
 * The node's link, as its transport page describes it
 * (docs/up-protocol.md §11.1; up_node_set_link()).  The largest frame
 * the node receives is up_node_info.max_frame.
 */
struct up_node_link {
	uint16_t	 uplink_mtu;	/* largest frame it sends; 0 = UP_FRAME_MAX */
	uint8_t		 flags;		/* UP_NL_* */
	uint16_t	 slots;		/* boot schedule (§11.9): ANNOUNCE and */
	uint16_t	 slot_ms;	/* RESULTs after a boot; 0 = at once */
};
#define UP_NL_COMPACT		0x01	/* the link's default form is compact */
#define UP_NL_CRC		0x02	/* compact frames need the CRC-16 (§11.3) */
#define UP_NL_ADDRESSED		0x04	/* the link address names the node */

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
	uint32_t		 dirty_bytes;	/* their bytes */
	uint32_t		 dirty_lo;	/* bitmap bytes they changed, */
	uint32_t		 dirty_hi;	/* [lo, hi] (lo > hi: none) */
	uint32_t		 save_cost;	/* bytes of the last save() */
	uint32_t		 save_every;	/* blocks between saves */
	uint32_t		 save_bytes;	/* bytes written by saves */
	uint32_t		 last_activity;	/* ms, last frame of `session' */
	uint32_t		 result_tries;
	struct up_node_timer	 t_announce;	/* reply to DISCOVER */
	struct up_node_timer	 t_status;	/* reply to STATUS_REQ */
	struct up_node_timer	 t_result;	/* final RESULT resend */
	struct up_node_timer	 t_activate;	/* ACTIVATE delay */
	struct up_node_timer	 t_save;	/* flush dirty bitmap */
	uint32_t		 rx_frames;
	uint32_t		 rx_errors;
	struct up_vcd		*vcd;		/* delta decoder, or NULL */
	uint8_t			*vcd_buf;	/* its window buffer */
	size_t			 vcd_buf_len;
	uint8_t			 work;		/* work in steps, or 0 */
	uint32_t		 work_off;	/* its progress, bytes */
	/*
	 * Hash on receipt (UP_NODE_HASH_RX): while `hash_live', the port's
	 * SHA-256 context holds the hash of the area's first `hash_off'
	 * bytes, all of them held.  Not persisted: rebuilt from the area
	 * after a boot.
	 */
	bool			 hash_live;
	uint32_t		 hash_off;
	uint32_t		 hash_rx;	/* bytes hashed as received */
	uint8_t			*hash_buf;	/* up_node_set_hash_buf, or NULL */
	size_t			 hash_buf_len;
	/* Anti-rollback floors, persisted with the state (§5.4). */
	struct up_node_floor	 floor[UP_MAX_COMPONENTS];
	uint8_t			 nfloor;
	/* FEC (up_node_set_fec_workspace): NULL = PARITY ignored. */
	uint8_t			*fec_ws;
	size_t			 fec_ws_len;
	struct up_fec_dec	*fec_dec;	/* fec_nslots decoders */
	uint8_t			*fec_scratch;	/* 2 * fec_blen */
	uint8_t			*fec_rows;	/* fec_nslots * fec_rows_len */
	size_t			 fec_rows_len;	/* row bytes per decoder */
	uint32_t		 fec_session;	/* carved for this session */
	uint16_t		 fec_blen;	/* ... and block size */
	uint16_t		 fec_k;		/* group size in use */
	uint8_t			 fec_nslots;
	uint8_t			 fec_inuse;	/* bit per decoder */
	uint32_t		 fec_clock;	/* LRU stamps */
	uint16_t		 fec_budget;	/* RAM rows per decoder */
	uint16_t		 fec_store_rows; /* store rows per decoder */
	uint32_t		 fec_rows_rx;	/* PARITY frames used */
	uint32_t		 fec_recovered;	/* blocks decoded */
	/*
	 * Compact frames (docs/up-protocol.md §11).  The session's form,
	 * tag and parity group size come from its OFFER and are persisted
	 * with it; `tag_bound' goes when another session takes the tag.
	 */
	struct up_node_link	 link;
	bool			 compact;	/* session offered compact */
	bool			 tag_bound;	/* `tag' names it on the link */
	uint8_t			 tag;
	uint8_t			 sess_k;	/* compact OFFER's k, 0 none */
	bool			 integrity_retry; /* §11.3 retry used */
	/* Answers scheduled in reply slots (§11.9). */
	struct up_node_timer	 t_accept;	/* ACCEPT for acc_session */
	uint32_t		 acc_session;
	uint8_t			 acc_code;
	bool			 acc_compact;
	struct up_node_timer	 t_vreply;	/* the answer to a VERIFY */
	bool			 vreply_compact;
	bool			 vreply_result;	/* a RESULT even in RECEIVING */
	uint16_t		 vslots;	/* the schedule of the VERIFY */
	uint16_t		 vslot_ms;	/* that started the checks */
	bool			 st_compact;	/* the pending STATUS's form */
	uint8_t			 st_req;	/* and its UP_SQ_* */
	bool			 ann_compact;	/* the pending ANNOUNCE's form */
	/* Segmentation (§11.8): one message in reassembly. */
	struct up_seg_rx	 seg_rx;
	uint8_t			 seg_mtag;	/* next tag of our own */
	uint32_t		 seg_sent;	/* messages sent segmented */
	uint8_t			 seg_buf[UP_SEG_MSG_MAX];
	uint8_t			 slice[UP_NODE_SLICE_MAX];	/* tx scratch */
	uint8_t			 frame[UP_NODE_SCRATCH];	/* tx scratch */
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
 * A block of the node's session that arrived out of band: its link
 * delivered it by other means than a DATA frame, e.g. a PLC carrier
 * module's own file transfer (docs/up-node-engine.md, "Blocks out of
 * band"; docs/up-protocol.md §5.2 step 3).  `session' is the session it
 * belongs to (the link layer learns it from up_node_get_state()),
 * `index' its block index and `len' the block's exact length
 * (offer.block_size, the last one shorter).  It is stored exactly like
 * a DATA block (§4.5): written, marked held, saved in time; with the
 * last one the node is DOWNLOADED and answers VERIFY as usual.
 * Returns UP_OK (stored, or already held), UP_ESTATE (not RECEIVING that
 * session, or its staging area not erased that far yet: nothing done,
 * hand it again later), UP_ERANGE (index past the package), UP_ELEN
 * (not the block's length), UP_EPORT (the slot write failed: the node
 * gave the session up, as for a DATA frame).
 */
int		 up_node_put_block(struct up_node *, uint32_t session,
		    uint32_t index, const uint8_t *data, size_t len);

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

/*
 * The node's link (docs/up-protocol.md §11.1, docs/up-node-engine.md
 * "Small links").  Without it the node sends full frames of up to
 * UP_FRAME_MAX bytes and answers boot-time at once, as on the LAN; it
 * still decodes compact frames and answers them in the compact form.
 * With UP_NL_COMPACT its own unsolicited frames are compact; it never
 * sends a frame larger than uplink_mtu (messages that do not fit go in
 * segments, status lists are cut); with UP_NL_CRC it drops compact
 * frames without the CRC-16 and sets it on its own.  Copies `link'.
 * Call after up_node_init() and before up_node_start().
 */
void		 up_node_set_link(struct up_node *,
		    const struct up_node_link *);

/*
 * FEC workspace (docs/up-node-engine.md, "Parity"): caller memory, at
 * least 16-byte aligned, that the engine carves, per session, into up to
 * UP_NODE_FEC_SLOTS TS004 group decoders (struct up_fec_dec each) with
 * their parity rows in RAM, plus 2 * block_size bytes of scratch.  About
 * UP_NODE_FEC_SLOTS * (2.4 KB + 64 * block_size) decodes any loss of four
 * groups of 64 at once; less memory means fewer slots or rows (a group
 * missing more blocks than its decoder has rows is left to plain
 * retransmission).  NULL or too small: PARITY frames are ignored and
 * retransmission alone repairs.  Decoder state is not persisted; blocks
 * it recovers are held and persisted like DATA.  Call after
 * up_node_init().
 */
void		 up_node_set_fec_workspace(struct up_node *, void *ws,
		    size_t len);

/*
 * The row budget (docs/up-node-engine.md, "Parity"): at most `rows'
 * parity rows in RAM per group decoder (default UP_NODE_FEC_ROWS; 0:
 * every row in the port's row store).  Rows a group needs beyond it go
 * to port->rows_write while there is room.  A node with little RAM
 * gives a small workspace and budget and a row store in flash.  Call
 * after up_node_init().
 */
void		 up_node_set_fec_rows(struct up_node *, uint16_t rows);

/*
 * Lends the engine the memory to apply VCDIFF deltas (up_vcdiff.c): the
 * decoder state and a window buffer of buf_len bytes (UP_VCD_WINDOW
 * holds a `-W 16384' window whole; with the port's slot_read any size >=
 * UP_VCD_BUF_MIN works, slower).  Without it delta offers are declined
 * UP_R_UNSUPPORTED.  Call after up_node_init() and before
 * up_node_start() (a saved delta session is only resumed with it);
 * borrowed for the engine's life.  After VERIFY the engine applies the
 * delta in steps of UP_NODE_APPLY_STEP target bytes from up_node_tick().
 */
void		 up_node_set_delta_mem(struct up_node *, struct up_vcd *,
		    uint8_t *buf, size_t buf_len);

/*
 * Optional: lends the engine a buffer for the reads of its hashing
 * (VERIFY, and the read-back of the hash on receipt), so each
 * slot_read (pkg_read) brings up to `len' bytes, not the
 * UP_NODE_SLICE_MAX of its own scratch: fewer, larger reads where a
 * read has a fixed cost (a system call, an SPI command).  A step still
 * hashes at most UP_NODE_VERIFY_STEP bytes.  Borrowed for the engine's
 * life; NULL or a len below UP_NODE_SLICE_MAX: the scratch.
 */
void		 up_node_set_hash_buf(struct up_node *, uint8_t *buf,
		    size_t len);

/*
 * The security floor of `component' (docs/up-protocol.md §5.4): the
 * lowest security_version the node installs for it (0: none yet).
 */
uint32_t	 up_node_get_floor(const struct up_node *,
		    const char *component);

/*
 * Raises the floor of `component' to `security_version' (never lowers
 * it) and persists it: for a platform that learns the running image's
 * security version elsewhere (an image header the bootloader checked, a
 * hardware counter).  Call after up_node_start().  Returns UP_OK,
 * UP_ESTATE before start, UP_ENOSPC when every one of the
 * UP_MAX_COMPONENTS floors is taken, or UP_EPORT (not saved; the floor
 * holds in RAM and is saved with the next state change).
 */
int		 up_node_raise_floor(struct up_node *, const char *component,
		    uint32_t security_version);

/* The node's state (enum up_node_state); session and result if not
 * NULL.  For logs and tests. */
uint8_t		 up_node_get_state(const struct up_node *,
		    uint32_t *session, uint8_t *result);

#endif /* UP_H */
