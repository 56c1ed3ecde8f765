/*
 * ble_internal.h: inside the "ble" transport (docs/transports/ble.md).
 *
 * The gateway is a GATT client.  Four parts, one file each:
 *  - ble_att.c: the ATT PDU codec (Core 5.3 Vol 3 Part F §3.4) for the
 *    PDUs a client sends and receives, the advertising report parser
 *    and the UP service's UUIDs;
 *  - ble_client.c: one ATT bearer as a client state machine (MTU
 *    exchange, discovery of the UP service, notifications on, credits,
 *    pipelined writes without response) over any SOCK_SEQPACKET
 *    descriptor: an L2CAP LE socket on the ATT channel, a UNIX socket to
 *    a simulated peripheral, one end of a socketpair in the tests;
 *  - ble_hci.c and ble_sim.c: the two radios: BlueZ's kernel interfaces
 *    through libbluetooth (LE scanning on an HCI socket, L2CAP
 *    connections), and the test facility that reaches simulated
 *    peripherals (upnode --transport ble) through a socket directory;
 *  - tp_ble.c: the plugin: options, peers, connection slots, the
 *    event loop.
 * Nothing here allocates per frame: a connection's queue is sized when
 * it is created.
 */
#ifndef BLE_INTERNAL_H
#define BLE_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* ------------------------------------------------------------------ */
/* ATT (Core 5.3 Vol 3 Part F)                                         */

#define BLE_ATT_MTU_MIN		23	/* LE default ATT_MTU, §3.2.8 */
#define BLE_ATT_MTU_MAX		517	/* largest a PDU may be, §3.2.9 */
#define BLE_ATT_CID		4	/* the LE ATT fixed channel */

/* Opcodes (§3.4.8). */
#define BLE_ATT_ERROR_RSP	0x01
#define BLE_ATT_MTU_REQ		0x02
#define BLE_ATT_MTU_RSP		0x03
#define BLE_ATT_FIND_INFO_REQ	0x04
#define BLE_ATT_FIND_INFO_RSP	0x05
#define BLE_ATT_FIND_TYPE_REQ	0x06
#define BLE_ATT_FIND_TYPE_RSP	0x07
#define BLE_ATT_READ_TYPE_REQ	0x08
#define BLE_ATT_READ_TYPE_RSP	0x09
#define BLE_ATT_READ_REQ	0x0a
#define BLE_ATT_READ_RSP	0x0b
#define BLE_ATT_READ_GROUP_REQ	0x10
#define BLE_ATT_READ_GROUP_RSP	0x11
#define BLE_ATT_WRITE_REQ	0x12
#define BLE_ATT_WRITE_RSP	0x13
#define BLE_ATT_NOTIFY		0x1b
#define BLE_ATT_INDICATE	0x1d
#define BLE_ATT_CONFIRM		0x1e
#define BLE_ATT_WRITE_CMD	0x52
#define BLE_ATT_CMD_FLAG	0x40	/* a command: never answered */

/* Error codes (§3.4.1.1). */
#define BLE_ATT_E_INVALID_HANDLE	0x01
#define BLE_ATT_E_READ_NOT_PERM		0x02
#define BLE_ATT_E_WRITE_NOT_PERM	0x03
#define BLE_ATT_E_INVALID_PDU		0x04
#define BLE_ATT_E_AUTHENTICATION	0x05
#define BLE_ATT_E_NOT_SUPPORTED		0x06
#define BLE_ATT_E_INVALID_OFFSET	0x07
#define BLE_ATT_E_AUTHORIZATION		0x08
#define BLE_ATT_E_NOT_FOUND		0x0a
#define BLE_ATT_E_KEY_SIZE		0x0c
#define BLE_ATT_E_VALUE_LEN		0x0d
#define BLE_ATT_E_UNLIKELY		0x0e
#define BLE_ATT_E_ENCRYPTION		0x0f
#define BLE_ATT_E_UNSUPP_GROUP		0x10
#define BLE_ATT_E_RESOURCES		0x11

/* GATT declarations and descriptors (Assigned Numbers §3.5, §3.7). */
#define BLE_UUID_PRIMARY	0x2800
#define BLE_UUID_CHARACTERISTIC	0x2803
#define BLE_UUID_CCCD		0x2902
#define BLE_CCCD_NOTIFY		0x0001

/* Characteristic properties (Vol 3 Part G §3.3.1.1). */
#define BLE_PROP_READ		0x02
#define BLE_PROP_WRITE_CMD	0x04
#define BLE_PROP_WRITE		0x08
#define BLE_PROP_NOTIFY		0x10

/*
 * The UP GATT service (docs/transports/ble.md, "The UP service").
 * 128-bit UUIDs as they travel in ATT PDUs: little-endian, the reverse
 * of the text form.
 */
#define BLE_UUID128_LEN		16
extern const uint8_t	 ble_uuid_up_service[BLE_UUID128_LEN];
extern const uint8_t	 ble_uuid_up_data[BLE_UUID128_LEN];
extern const uint8_t	 ble_uuid_up_reply[BLE_UUID128_LEN];
extern const uint8_t	 ble_uuid_up_credit[BLE_UUID128_LEN];

/* Codec results. */
enum ble_att_err {
	BLE_OK = 0,
	BLE_ESHORT = -1,	/* shorter than its fixed fields */
	BLE_ELEN = -2,		/* a length that does not add up */
	BLE_EOPCODE = -3,	/* an opcode the codec does not know */
	BLE_EFORMAT = -4,	/* a field with a value the spec forbids */
	BLE_ESPACE = -5		/* the output buffer is too small */
};

/*
 * A decoded PDU.  Pointers point into the decoded buffer (borrowed for
 * as long as it is).
 */
struct ble_att_msg {
	uint8_t		 op;
	union {
		struct {
			uint8_t	 req;		/* opcode in error */
			uint16_t handle;
			uint8_t	 code;
		} err;
		uint16_t	 mtu;		/* MTU_REQ, MTU_RSP */
		struct {			/* *_RSP lists */
			const uint8_t *data;
			size_t	 elen;		/* bytes per entry */
			size_t	 count;
			uint8_t	 format;	/* FIND_INFO_RSP: 1 or 2 */
		} list;
		struct {			/* READ_RSP */
			const uint8_t *data;
			size_t	 len;
		} value;
		struct {			/* NOTIFY, INDICATE, WRITE_* */
			uint16_t handle;
			const uint8_t *data;
			size_t	 len;
		} hv;
		struct {			/* requests a server gets */
			uint16_t start;
			uint16_t end;
			uint16_t handle;
			const uint8_t *uuid;	/* or value, FIND_TYPE */
			size_t	 uuid_len;
			uint16_t type16;	/* FIND_TYPE's type */
		} req;
	} u;
};

/* One characteristic declaration of a READ_TYPE_RSP. */
struct ble_att_chr {
	uint16_t	 decl;		/* declaration handle */
	uint8_t		 props;
	uint16_t	 value;		/* value handle */
	uint8_t		 uuid[BLE_UUID128_LEN];	/* 16-bit: in [0..1] */
	uint8_t		 uuid_len;	/* 2 or 16 */
};

/* ble_att.c */
const char	*ble_att_strerror(int);
const char	*ble_att_errname(uint8_t code);
const char	*ble_att_opname(uint8_t op);
/* 1 when op is a response or a confirmation (what answers a request). */
bool		 ble_att_is_response(uint8_t op);
/* 1 when op is a request a server must answer (not a command). */
bool		 ble_att_is_request(uint8_t op);
/*
 * Decodes one PDU, checking every length before it reads.  Returns
 * BLE_OK or a ble_att_err; m is only valid on BLE_OK.
 */
int		 ble_att_decode(const uint8_t *, size_t, struct ble_att_msg *);
/* Reads entry i of a READ_TYPE_RSP as a characteristic declaration. */
int		 ble_att_chr_at(const struct ble_att_msg *, size_t i,
		    struct ble_att_chr *);
/* Encoders: return the PDU's length, or BLE_ESPACE. */
ssize_t		 ble_att_enc_mtu(uint8_t *, size_t, uint8_t op, uint16_t);
ssize_t		 ble_att_enc_find_type(uint8_t *, size_t, uint16_t start,
		    uint16_t end, uint16_t type, const uint8_t *, size_t);
ssize_t		 ble_att_enc_range(uint8_t *, size_t, uint8_t op,
		    uint16_t start, uint16_t end, uint16_t uuid16);
ssize_t		 ble_att_enc_find_info(uint8_t *, size_t, uint16_t start,
		    uint16_t end);
ssize_t		 ble_att_enc_read(uint8_t *, size_t, uint16_t handle);
ssize_t		 ble_att_enc_write(uint8_t *, size_t, uint8_t op,
		    uint16_t handle, const uint8_t *, size_t);
ssize_t		 ble_att_enc_error(uint8_t *, size_t, uint8_t req,
		    uint16_t handle, uint8_t code);
/* The 3-byte header of a WRITE_CMD or NOTIFY; the value follows. */
void		 ble_att_hv_hdr(uint8_t hdr[3], uint8_t op, uint16_t handle);
/* The text form of a 128-bit UUID (37 bytes with the NUL). */
void		 ble_uuid_fmt(const uint8_t le[BLE_UUID128_LEN], char *,
		    size_t);

/* ------------------------------------------------------------------ */
/* Addresses and advertising                                           */

/*
 * A tp_addr of this plugin: 7 bytes, the address type (BDADDR_LE_PUBLIC
 * 1 or BDADDR_LE_RANDOM 2, as <bluetooth/bluetooth.h> numbers them) then
 * the six address bytes most significant first, as the text form
 * "ble:AA:BB:CC:DD:EE:FF" (public) or "...:FF/random" reads.
 */
#define BLE_ADDR_LEN		7
#define BLE_ADDR_PUBLIC		1
#define BLE_ADDR_RANDOM		2
/* "AA:BB:CC:DD:EE:FF" without the prefix and type; buf >= 18. */
void		 ble_addr_bd_fmt(const struct tp_addr *, char *, size_t);
int		 ble_addr_fmt(const struct tp_addr *, char *, size_t);
int		 ble_addr_parse(const char *, struct tp_addr *, char **);

/*
 * One LE Advertising Report entry (Core Vol 4 Part E §7.7.65.2):
 * event type, address type (0 public, 1 random), address (6 bytes,
 * least significant first), data length, data, RSSI.  The simulated
 * peripherals write the same bytes in their .adv file.
 */
struct ble_adv {
	struct tp_addr	 addr;
	bool		 connectable;	/* ADV_IND or ADV_DIRECT_IND */
	bool		 up_service;	/* lists the UP service's UUID */
	int16_t		 rssi;		/* INT16_MAX when unknown (127) */
};
/*
 * Parses the entry at p; *used is its length.  Returns BLE_OK or a
 * ble_att_err (an AD structure that runs past the data is BLE_ELEN).
 */
int		 ble_adv_parse(const uint8_t *p, size_t len, size_t *used,
		    struct ble_adv *);

/* ------------------------------------------------------------------ */
/* One ATT bearer, the client side (ble_client.c)                      */

struct ble_conn;

/*
 * What a connection tells its owner.  Called from ble_conn_rx() and
 * ble_conn_tx() only, never from ble_conn_new/queue/free, so the owner
 * calls those from its own event callbacks.
 */
struct ble_conn_cb {
	/* The UP service is set up: frames may be queued. */
	void	 (*ready)(void *arg, struct ble_conn *);
	/* A Reply notification: one UP frame, borrowed for the call. */
	void	 (*frame)(void *arg, struct ble_conn *, const uint8_t *,
		    size_t);
	/* A queued frame was written to the bearer. */
	void	 (*sent)(void *arg, struct ble_conn *, uint64_t cookie);
	/* The queue, full at ble_conn_queue(), has room again. */
	void	 (*room)(void *arg, struct ble_conn *);
	/*
	 * The node asked for encryption or authentication (ATT error 0x05,
	 * 0x0c, 0x0f) during set-up: raise the link's security to `level'
	 * (BT_SECURITY_*) and return 0 (the request is sent again), or -1
	 * (the set-up fails).  May be NULL: fails.
	 */
	int	 (*security)(void *arg, struct ble_conn *, int level);
};

struct ble_conn_params {
	uint16_t	 mtu;		/* ATT_MTU we offer (our receive MTU) */
	uint32_t	 queue;		/* frames queued before TP_EAGAIN */
	uint32_t	 att_timeout_ms; /* a request or a credit stall */
	int		 security;	/* the link's level now, BT_SECURITY_* */
};

enum ble_conn_state {
	BLE_C_MTU,		/* exchanging the MTU */
	BLE_C_SERVICE,		/* finding the UP service */
	BLE_C_CHARS,		/* its characteristics */
	BLE_C_DESC_REPLY,	/* the Reply CCCD */
	BLE_C_ON_REPLY,		/* its notifications on */
	BLE_C_DESC_CREDIT,	/* the Credit CCCD */
	BLE_C_ON_CREDIT,	/* its notifications on */
	BLE_C_READ_CREDIT,	/* the first credit */
	BLE_C_READY,
	BLE_C_DEAD		/* failed; ble_conn_why() says why */
};

struct ble_conn_stats {
	uint64_t	 tx_frames;	/* data writes */
	uint64_t	 tx_bytes;	/* their UP bytes */
	uint64_t	 rx_frames;	/* Reply notifications */
	uint64_t	 rx_bytes;
	uint64_t	 rx_unknown;	/* notifications on other handles */
	uint64_t	 rx_bad;	/* malformed, oversized, unexpected */
	uint64_t	 credit_waits;	/* times the queue waited for credit */
};

/*
 * Takes `fd' (a connected SOCK_SEQPACKET, non-blocking; closed by
 * ble_conn_free).  Nothing is sent until ble_conn_start().  Returns NULL
 * when memory is short.
 */
struct ble_conn	*ble_conn_new(int fd, const struct ble_conn_params *,
		    const struct ble_conn_cb *, void *arg);
/* Closes the fd and frees; accepts NULL. */
void		 ble_conn_free(struct ble_conn *);
/* Queues the MTU exchange; the set-up runs from ble_conn_rx(). */
void		 ble_conn_start(struct ble_conn *, uint64_t now_ms);
/*
 * Reads what the bearer has (at most a budget of PDUs) and acts on it.
 * Returns 0, or -1 when the connection failed (ble_conn_why()).
 */
int		 ble_conn_rx(struct ble_conn *, uint64_t now_ms);
/*
 * Writes what may go: control PDUs, then queued frames while the node
 * gave credit.  Returns 1 when the socket is full and more waits (ask
 * for writability), 0 when nothing can be written now, -1 on failure.
 */
int		 ble_conn_tx(struct ble_conn *, uint64_t now_ms);
/*
 * Copies one UP frame (the iovecs concatenated) into the queue.  Returns
 * TP_OK, TP_EAGAIN (full: room() follows), TP_EMSGSIZE (larger than the
 * connection's MTU − 3) or TP_ENOPEER (not ready, or failed).
 */
int		 ble_conn_queue(struct ble_conn *, const struct iovec *,
		    int iovcnt, uint64_t cookie);
/*
 * Checks the ATT transaction timer and the credit stall.  Returns 0, or
 * -1 when the connection failed.
 */
int		 ble_conn_check(struct ble_conn *, uint64_t now_ms);
/* Removes the oldest frame not yet written; 0 when there was none. */
int		 ble_conn_pop_unsent(struct ble_conn *, uint64_t *cookie);

int		 ble_conn_fd(const struct ble_conn *);
enum ble_conn_state ble_conn_state(const struct ble_conn *);
const char	*ble_conn_state_str(enum ble_conn_state);
uint16_t	 ble_conn_mtu(const struct ble_conn *);	/* ATT_MTU */
uint32_t	 ble_conn_credit(const struct ble_conn *); /* writes allowed now */
uint32_t	 ble_conn_queued(const struct ble_conn *);
const char	*ble_conn_why(const struct ble_conn *);
void		 ble_conn_stats(const struct ble_conn *,
		    struct ble_conn_stats *);
/* Handles found by discovery (0 until found), for tests and logs. */
void		 ble_conn_handles(const struct ble_conn *, uint16_t *data,
		    uint16_t *reply, uint16_t *credit);

/* ------------------------------------------------------------------ */
/* Radios: how peers are found and connected (ble_hci.c, ble_sim.c)     */

struct tp;
struct ble_radio;

/* What a radio reports to the plugin. */
struct ble_radio_cb {
	/* An advertiser of the UP service was seen. */
	void	 (*seen)(struct tp *, const struct ble_adv *);
};

struct ble_radio_ops {
	const char	*name;
	/*
	 * Opens the radio with the instance's options.  Returns the radio,
	 * or NULL with *cause set to a message for people.
	 */
	struct ble_radio *(*open)(struct tp *, const struct tp_conf *,
		    const struct ble_radio_cb *, char **cause);
	void	 (*close)(struct ble_radio *);
	/* Scanning on or off (off while connections are being made). */
	int	 (*scan)(struct ble_radio *, bool on, char **cause);
	/*
	 * The fd scanning reads (EV_READ), or -1 when the radio scans from
	 * the periodic tick instead.
	 */
	int	 (*scan_fd)(struct ble_radio *);
	/* Reads what scan_fd has, or rescans from the tick. */
	void	 (*scan_read)(struct ble_radio *, uint64_t now_ms);
	/*
	 * Starts a non-blocking connection to the ATT channel of `dst' at
	 * `security' (BT_SECURITY_*).  Returns the fd (connected or in
	 * progress: wait for writability, then SO_ERROR), or -1 with
	 * *cause set.
	 */
	int	 (*connect)(struct ble_radio *, const struct tp_addr *,
		    int security, char **cause);
	/* The connection on fd is up: ask for its parameters (optional). */
	void	 (*tune)(struct ble_radio *, int fd);
	/* Raises fd's security to level; returns 0 or -1 (optional). */
	int	 (*security)(struct ble_radio *, int fd, int level);
	/*
	 * Bytes written to fd that have not left the host yet (the kernel
	 * has not handed them to the controller, or the simulated
	 * peripheral has not read them), -1 when unknown.  A disconnect
	 * waits for 0 before it closes, so the last frames are not lost.
	 */
	int	 (*outq)(struct ble_radio *, int fd);
};

extern const struct ble_radio_ops ble_radio_hci;
extern const struct ble_radio_ops ble_radio_sim;

/* tp_ble.c, for the radios */
const char	*ble__name(const struct tp *);
uint64_t	 ble__now_ms(const struct tp *);

/*
 * The simulated peripherals' directory (ble_sim.c): DIR/ADDR.sock is a
 * peripheral's listening SOCK_SEQPACKET socket, DIR/ADDR.adv its
 * advertising report (struct ble_adv's bytes) while it advertises;
 * ADDR is "AA:BB:CC:DD:EE:FF".
 */
#define BLE_SIM_SOCK_SUFFIX	".sock"
#define BLE_SIM_ADV_SUFFIX	".adv"

#endif /* BLE_INTERNAL_H */
