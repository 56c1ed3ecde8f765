/*
 * transport.h: the transport plugin interface, the one public header of
 * transports/.
 *
 * A plugin is a const struct tp_ops (Redis ConnectionType / nginx module
 * shape).  One instance (struct tp, owned by the plugin) is one broadcast
 * domain: one LAN interface, one radio, one serial bus, one carrier
 * module.  The engine (engine/) owns sessions, pacing and retransmission;
 * a plugin owns its file descriptors, its timers and its buffers, and only
 * moves frames.  A plugin includes only this header and up/up.h;
 * everything else reaches it through struct tp_host.
 *
 * Rules every plugin keeps:
 *  - Frames are borrowed for the duration of a call, both ways.  A plugin
 *    that must queue copies into its own ring, preallocated at open.
 *  - send() never blocks and never sleeps for pacing.  When it cannot take
 *    a frame it returns TP_EAGAIN and later calls host->writable().
 *  - No re-entrancy: a plugin never calls a host callback from inside one
 *    of its own ops (send, close, ...); it defers with an event.
 *  - close() is synchronous: afterwards no callback fires and every fd is
 *    closed.
 *  - Optional ops are NULL when the link has no such thing; a capability
 *    flag says which optional ops a plugin implements (TP_CAP_CONNECT:
 *    connect/disconnect, TP_CAP_POLLED: poll, TP_CAP_OFFLOAD:
 *    offload_start/offload_cancel).  The engine calls nothing else.
 *
 * The link shapes the engine serves (docs/engine.md, "Link shapes"):
 *  - broadcast: one send reaches the domain (LAN multicast, LoRa class
 *    C, RS-485 unit 0, PLC forwarding broadcast); nodes may answer
 *    unprompted within the windows the engine gives them;
 *  - connected unicast with limited peers (BLE, Modbus TCP): peers are
 *    found (TP_PEER_FOUND), connected on the engine's request up to
 *    max_peers at once (TP_PEER_UP, with that connection's MTU), and
 *    lost (TP_PEER_DOWN);
 *  - polled (Modbus RTU, any link where a node may not speak first):
 *    nothing arrives unless the engine polls a node; the engine
 *    schedules the polls and paces them like frames;
 *  - module offload (a PLC carrier module's own file transfer): the
 *    engine hands the module a whole package and hears per-peer
 *    progress; UP frames still carry offer/verify/activate/result.
 */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define TP_ABI_VERSION		3

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

/*
 * A link address as a small value type, copied and compared with
 * tp_addr_eq().  The bytes are the plugin's own (IPv4 address + port for
 * "lan"); only the plugin interprets them.  The text form (addr_fmt) is
 * what SQLite, config and upctl show.
 */
#define TP_ADDR_MAX		24
struct tp_addr {
	uint8_t		 len;
	uint8_t		 flags;
#define TP_ADDR_F_BROADCAST	0x01	/* the whole broadcast domain */
	uint8_t		 b[TP_ADDR_MAX];
};
#define TP_ADDR_TEXT_MAX	64

/* ------------------------------------------------------------------ */
/* Capabilities: facts about the link, not policy                      */

struct tp_caps {
	uint32_t	 mtu;		/* largest UP frame one send carries */
	uint32_t	 flags;
#define TP_CAP_BROADCAST	0x0001	/* one send reaches the domain */
#define TP_CAP_UNICAST		0x0002	/* can address one peer */
#define TP_CAP_LINK_ACK		0x0004	/* link confirms delivery */
#define TP_CAP_HALF_DUPLEX	0x0008	/* cannot receive while sending */
#define TP_CAP_LBT		0x0010	/* listen before talk */
#define TP_CAP_DISCOVERY	0x0020	/* finds peers by itself */
#define TP_CAP_RELIABLE		0x0040	/* link retransmits (TCP) */
#define TP_CAP_CONNECT		0x0080	/* unicast needs connect() first */
#define TP_CAP_POLLED		0x0100	/* nodes speak only when polled */
#define TP_CAP_OFFLOAD		0x0200	/* the module distributes packages */
	/*
	 * UP's compact form (docs/up-protocol.md §11.1), as the link's
	 * transport page states it: COMPACT, compact frames are the link's
	 * default (every link but the LAN); ADDRESSED, the link address
	 * names the node, so node frames may leave their node id out (BLE
	 * connections, Modbus unit ids, PLC station addresses; not raw
	 * LoRa); FCS, the link checks every frame with at least a CRC-16
	 * before it reaches UP (§11.3: LoRa with its payload CRC on, BLE,
	 * Modbus RTU and TCP; not a 1376.2 module's 8-bit sum), so compact
	 * frames may go without UP's CRC-16.
	 */
#define TP_CAP_COMPACT		0x0400
#define TP_CAP_ADDRESSED	0x0800
#define TP_CAP_FCS		0x1000
	uint64_t	 bitrate_bps;	/* link rate usable for UP frames */
	uint32_t	 frame_overhead; /* link bytes added per frame */
	uint32_t	 duty_cycle_ppm; /* 0 = unregulated (band 0) */
	uint32_t	 duty_window_ms; /* credit window for duty cycle */
	uint32_t	 min_gap_us;	/* silence required between frames */
	uint32_t	 max_peers;	/* concurrent unicast peers, 0 = any */
	uint32_t	 tx_queue;	/* frames accepted before TP_EAGAIN */

	/*
	 * Regulated sub-bands (EU868: 0.1 %, 1 % and 10 % bands, ETSI EN
	 * 300 220-2).  nbands = 0 means one band described by
	 * duty_cycle_ppm/duty_window_ms above; otherwise band[i] holds
	 * each band's budget, duty_cycle_ppm is ignored, and the plugin's
	 * band() op says which band a frame will use.  The engine keeps
	 * one ledger per band and never lets a band overspend.
	 */
#define TP_BANDS_MAX		8	/* EU868: six (K L M N P Q) */
	uint8_t		 nbands;
	struct tp_band {
		uint32_t duty_ppm;	/* 0 = unregulated */
		uint32_t window_ms;	/* credit window */
	}		 band[TP_BANDS_MAX];

	/*
	 * Largest frame a node may send back on this link, 0 = mtu.  A
	 * node's own limit (its ANNOUNCE) may be lower still.
	 */
	uint32_t	 uplink_mtu;
	/*
	 * Time a node may take to answer a frame before the link gives it
	 * up (polled links: the response timeout; others: 0 = unknown).
	 */
	uint32_t	 response_ms;
	/* Offload (TP_CAP_OFFLOAD): the module's segment size, bytes. */
	uint32_t	 offload_segment;
};

/* Results of send(). */
enum tp_status {
	TP_OK = 0,
	TP_EAGAIN = -1,		/* busy: host->writable() follows */
	TP_EMSGSIZE = -2,	/* frame larger than mtu */
	TP_ENOPEER = -3,	/* unknown or disconnected peer */
	TP_EIO = -4,		/* link failure; a TP_LINK_DOWN follows */
	/*
	 * tx_done only: the peer refused the frame or the poll for now,
	 * busy (Modbus exception 06, Server Device Busy): it is alive and
	 * took nothing; ask again later.  The engine backs off per node
	 * and never counts it as silence.
	 */
	TP_EBUSY = -5
};

/* Per-frame receive facts. */
struct tp_rxinfo {
	int16_t		 rssi_dbm;	/* or INT16_MAX if unknown */
	int8_t		 snr_db;	/* or INT8_MAX if unknown */
	uint64_t	 rx_ms;		/* host->now_ms() at reception */
};

enum tp_link_event {
	TP_LINK_UP,
	TP_LINK_DOWN,		/* sessions freeze, nothing is written off */
	TP_CAPS_CHANGED		/* read caps() again; sessions re-plan */
};

/*
 * Peers of a connected-unicast link (TP_CAP_CONNECT), and peers a link
 * discovers by itself (TP_CAP_DISCOVERY).
 */
enum tp_peer_event {
	TP_PEER_FOUND,		/* seen (advertising, listed), not connected */
	TP_PEER_UP,		/* connected: frames to it may be sent */
	TP_PEER_DOWN,		/* disconnected or connect failed */
	TP_PEER_MTU,		/* the connection's MTU changed */
	TP_PEER_ROUTE		/* its place in the routing tree changed */
};
struct tp_peer_info {
	uint32_t	 mtu;		/* largest UP frame to this peer, 0 = caps */
	int16_t		 rssi_dbm;	/* or INT16_MAX if unknown */
	int		 reason;	/* TP_PEER_DOWN: a tp_status, 0 = asked */
	/*
	 * Where the peer sits on a link that relays through its own nodes
	 * (a PLC carrier module's routing tree, a mesh), as the link knows
	 * it; set with TP_PEER_FOUND and TP_PEER_ROUTE.  level: hops from
	 * the gateway's own module or radio, 1 = heard directly, 0 =
	 * unknown.  parent: the peer whose node relays this one's frames;
	 * parent.len == 0 when none does (heard directly, or unknown).
	 * The daemon maps both to its registry (node parent and level), so
	 * relays update after the nodes behind them.
	 */
	uint8_t		 level;
	struct tp_addr	 parent;
};

/* Module offload (TP_CAP_OFFLOAD). */
enum tp_offload_state {
	TP_OFF_QUEUED,		/* the module has the file, not this peer */
	TP_OFF_RECEIVING,	/* the peer is receiving; bytes says how far */
	TP_OFF_DONE,		/* the peer holds the whole package */
	TP_OFF_FAILED		/* the module gave this peer up */
};
struct tp_offload {
	uint32_t		 id;	/* the engine's handle, echoed back */
	uint64_t		 size;	/* package bytes */
	const uint8_t		*sha256; /* 32 bytes, borrowed for the call */
	uint32_t		 npeers; /* 0 = every peer behind the module */
	const struct tp_addr	*peers;	/* borrowed for the call */
};

struct tp_stats {
	uint64_t	 tx_frames;
	uint64_t	 tx_bytes;
	uint64_t	 rx_frames;
	uint64_t	 rx_bytes;
	uint64_t	 tx_errors;
	uint64_t	 rx_errors;	/* link-level errors, not UP errors */
	uint64_t	 eagain;
	uint32_t	 queued;	/* frames in the plugin's queue now */
};

struct tp;	/* one instance, private to its plugin */

/*
 * What the engine lends a plugin at open.  Borrowed for the lifetime of
 * the instance.  Callbacks run on the event loop, never from inside an
 * op the engine is calling.
 */
struct tp_host {
	struct event_base *base;
	void		*arg;		/* first argument of every callback */
	uint64_t	 (*now_ms)(void *arg);	/* monotonic, fakeable */
	/*
	 * How many times faster than real time now_ms() runs: 1 (or 0)
	 * on a real link; more on a simulated medium run on a compressed
	 * clock (docs/simulator.md, "Time scale").  Durations the plugin
	 * derives from the link (a frame's time on air) last that much less
	 * real time; margins for the host's own latency do not shrink.
	 */
	double		 time_scale;
	/*
	 * Non-zero: the host calls ops->flush() (where the plugin has it)
	 * after every run of send()s, before it returns to its loop, so
	 * the plugin may hold the frames send() accepted until then.
	 */
	int		 flushes;

	/*
	 * A frame arrived from `src'.  `frame' is the plugin's buffer,
	 * valid only during the call.
	 */
	void		 (*rx)(void *arg, struct tp *, const struct tp_addr *src,
			    const uint8_t *frame, size_t len,
			    const struct tp_rxinfo *);
	/* The plugin can take frames again after TP_EAGAIN. */
	void		 (*writable)(void *arg, struct tp *);
	/*
	 * Optional: a frame left the radio (half-duplex links), or a poll
	 * ended.  With TP_CAP_LINK_ACK, status TP_OK means the peer
	 * confirmed the frame and any other status that it did not (the
	 * engine then repeats what must arrive, e.g. a RESULT_ACK); without
	 * it, TP_OK only says the frame was sent.  The low 16 bits of a
	 * cookie are the engine's (its peer index), the plugin echoes the
	 * whole value.
	 */
	void		 (*tx_done)(void *arg, struct tp *, uint64_t cookie,
			    int status, uint32_t airtime_us);
	/* Link up/down or capabilities changed. */
	void		 (*link)(void *arg, struct tp *, enum tp_link_event);

	/*
	 * Optional (TP_CAP_CONNECT, TP_CAP_DISCOVERY, TP_CAP_POLLED): a
	 * peer was found, connected, lost, or its MTU changed.  `info' is
	 * borrowed.  TP_PEER_FOUND comes once when a peer is first seen (a
	 * scan, a probed unit id, a module's station list) and again only
	 * after it was lost, never per advertisement: the engine visits a
	 * found peer it cannot reach with a DISCOVER to all (connect, a
	 * unicast DISCOVER, its ANNOUNCE, polled for where need be).
	 */
	void		 (*peer)(void *arg, struct tp *, const struct tp_addr *,
			    enum tp_peer_event, const struct tp_peer_info *);

	/*
	 * Optional (TP_CAP_OFFLOAD).  offload_read: the plugin pulls len
	 * package bytes at off of offload `id' into its own buf; returns 0
	 * or -1 (the offload then fails).  offload_progress: what the
	 * module reports of one peer (peer NULL: the module itself took
	 * `bytes' of the file); bytes is what that peer holds.
	 */
	int		 (*offload_read)(void *arg, struct tp *, uint32_t id,
			    uint64_t off, uint8_t *buf, size_t len);
	void		 (*offload_progress)(void *arg, struct tp *, uint32_t id,
			    const struct tp_addr *peer, enum tp_offload_state,
			    uint64_t bytes);
};

/* ------------------------------------------------------------------ */
/* Options: the plugin's part of the config file                       */

/*
 * A plugin declares its options as a table; the config parser validates
 * an instance's section against it before open() sees it, so open() can
 * read values with tp_conf_*() and trust types and bounds.
 */
enum tp_opt_type {
	TP_OPT_STRING,
	TP_OPT_INT,		/* min/max apply */
	TP_OPT_BOOL		/* yes/no, true/false, on/off, 1/0 */
};
struct tp_option {
	const char	*name;
	enum tp_opt_type type;
	const char	*def;		/* default as text, NULL = required */
	long long	 min;
	long long	 max;
	const char	*unit;		/* for help text, may be NULL */
	const char	*help;
	/*
	 * Optional extra check of a value that passed the type check
	 * (e.g. "an IPv4 multicast address"): returns NULL when the value
	 * is good, else a static reason that tp_conf_check() puts in its
	 * cause.  Must not allocate or do I/O.
	 */
	const char	*(*check)(const char *value);
};

/* One [transport.NAME] section: `type = PLUGIN' and the plugin's keys. */
struct tp_kv {
	const char	*key;
	const char	*value;
};
struct tp_conf {
	const char		*name;	/* instance name, e.g. "lan0" */
	const struct tp_option	*options;	/* the plugin's table */
	size_t			 nkv;
	const struct tp_kv	*kv;
};

/* ------------------------------------------------------------------ */
/* The ops                                                              */

struct tp_ops {
	const char		*name;	/* "lan", "ble", "lora", ... */
	int			 abi;	/* TP_ABI_VERSION */
	const struct tp_option	*options;	/* NULL-name terminated */

	/*
	 * Creates an instance: fds, events on host->base, buffers.  Does
	 * not start receiving.  Returns 0, or -1 with *cause set
	 * (caller frees).
	 */
	int	(*open)(const struct tp_host *, const struct tp_conf *,
		    struct tp **, char **cause);
	/* Begins receiving and discovery. */
	int	(*start)(struct tp *, char **cause);
	/* Synchronous teardown; accepts NULL. */
	void	(*close)(struct tp *);
	void	(*caps)(struct tp *, struct tp_caps *);

	/*
	 * Sends one frame (the iovecs concatenated) to `dst', or to the
	 * broadcast domain when dst->flags has TP_ADDR_F_BROADCAST.  The
	 * iovecs are borrowed for the call.  `cookie' comes back in
	 * tx_done.  Returns an enum tp_status.
	 */
	int	(*send)(struct tp *, const struct tp_addr *dst,
		    const struct iovec *iov, int iovcnt, uint64_t cookie);
	/*
	 * Optional: the end of a run of send()s (one wake-up of the
	 * engine's pacer), called only by a host that set host->flushes.
	 * A plugin may then hold frames send() accepted (TP_OK) and hand
	 * them to the link together here (the LAN: one sendmmsg() for a
	 * batch of multicast frames).  Frames the link refuses now are
	 * still held: send() returns TP_EAGAIN until they are gone, and
	 * writable() says when.  Frames the link fails (it went down) are
	 * dropped and counted, and a TP_LINK_DOWN follows, as after a
	 * send() that returned TP_EIO.
	 */
	void	(*flush)(struct tp *);

	/* Text form of an address; returns 0 or -1. */
	int	(*addr_fmt)(const struct tp_addr *, char *buf, size_t len);
	/* Parses the text form; returns 0, or -1 with *cause set. */
	int	(*addr_parse)(const char *, struct tp_addr *, char **cause);

	/* Optional: exact time on air of a frame, microseconds. */
	uint32_t (*airtime)(struct tp *, const struct tp_addr *, size_t len);
	/* Optional: counters. */
	void	(*stats)(struct tp *, struct tp_stats *);

	/*
	 * Optional, with caps.nbands > 0: the band index (< nbands) a frame
	 * of len bytes to dst would use.  Pure: no I/O.
	 */
	unsigned int (*band)(struct tp *, const struct tp_addr *dst,
		    size_t len);

	/*
	 * TP_CAP_CONNECT: asks for a connection to dst.  Returns TP_OK
	 * (TP_PEER_UP or TP_PEER_DOWN follows, never from inside this
	 * call), TP_EAGAIN (no free slot: max_peers are connected or being
	 * connected) or TP_ENOPEER.  disconnect() frees the slot; a
	 * TP_PEER_DOWN with reason 0 follows.  The engine disconnects a
	 * peer once the frames it queued for it are sent (and confirmed by
	 * tx_done when the plugin reports it): a disconnect() may drop what
	 * the plugin still holds.
	 *
	 * The engine calls connect(), disconnect(), poll() and
	 * offload_start() only from its own loop (eng_run), never from
	 * inside a host callback.  offload_cancel() may come from inside
	 * one (the daemon may stop a session from a callback): it only
	 * stops the transfer and calls nothing back.
	 */
	int	(*connect)(struct tp *, const struct tp_addr *dst);
	void	(*disconnect)(struct tp *, const struct tp_addr *dst);

	/*
	 * TP_CAP_POLLED: asks dst for what it has to send (Modbus: read
	 * its outbox registers).  At most one frame comes per poll: it
	 * arrives by rx(); then tx_done(cookie) reports the poll's end
	 * (status TP_OK whether or not a frame came, else a tp_status) and
	 * its time on the link.  The engine polls again at once after a
	 * poll that brought a frame (more may wait).
	 * Returns TP_OK, TP_EAGAIN or TP_ENOPEER like send().  poll_time
	 * is the link time of one poll with an empty answer, us, which the
	 * engine charges to the pacer before it polls.
	 */
	int	(*poll)(struct tp *, const struct tp_addr *dst, uint64_t cookie);
	uint32_t (*poll_time)(struct tp *, const struct tp_addr *dst);

	/*
	 * TP_CAP_OFFLOAD: hands the module a whole package.  The plugin
	 * pulls bytes with host->offload_read() at the module's pace and
	 * reports per-peer progress with host->offload_progress(); it may
	 * resume a transfer the module interrupted (by segment) without
	 * the engine.  Returns 0, or -1 with *cause set.  offload_cancel()
	 * stops it; no progress for `id' follows.
	 */
	int	(*offload_start)(struct tp *, const struct tp_offload *,
		    char **cause);
	void	(*offload_cancel)(struct tp *, uint32_t id);
};

/* tp_registry.c */
/* The plugin called `name', or NULL.  Plugins are compiled in. */
const struct tp_ops	*tp_find(const char *name);
/* The NULL-terminated list of compiled-in plugins. */
const struct tp_ops	*const *tp_list(void);

/* tp_conf.c */
/*
 * Validates a section against its option table: unknown keys, missing
 * required keys, bad integers, out-of-range values.  Returns 0, or -1
 * with *cause naming the instance, key and problem.
 * The key "type" (the plugin's name) is always allowed; a key given twice,
 * a bad bool and a value an option's check() refuses are errors too.
 */
int		 tp_conf_check(const struct tp_conf *, char **cause);
/* Value of `key' in the section, else the table default, else NULL. */
const char	*tp_conf_str(const struct tp_conf *, const char *key);
/* Integer / bool value (checked by tp_conf_check); def if absent. */
long long	 tp_conf_int(const struct tp_conf *, const char *key);
int		 tp_conf_bool(const struct tp_conf *, const char *key);

/* tp_addr.c */
int		 tp_addr_eq(const struct tp_addr *, const struct tp_addr *);
/* The broadcast address value. */
void		 tp_addr_broadcast(struct tp_addr *);

#endif /* TRANSPORT_H */
