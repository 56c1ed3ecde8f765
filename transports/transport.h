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
 */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define TP_ABI_VERSION		1

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
	uint64_t	 bitrate_bps;	/* link rate usable for UP frames */
	uint32_t	 frame_overhead; /* link bytes added per frame */
	uint32_t	 duty_cycle_ppm; /* 0 = unregulated */
	uint32_t	 duty_window_ms; /* credit window for duty cycle */
	uint32_t	 min_gap_us;	/* silence required between frames */
	uint32_t	 max_peers;	/* concurrent unicast peers, 0 = any */
	uint32_t	 tx_queue;	/* frames accepted before TP_EAGAIN */
};

/* Results of send(). */
enum tp_status {
	TP_OK = 0,
	TP_EAGAIN = -1,		/* busy: host->writable() follows */
	TP_EMSGSIZE = -2,	/* frame larger than mtu */
	TP_ENOPEER = -3,	/* unknown or disconnected peer */
	TP_EIO = -4		/* link failure; a TP_LINK_DOWN follows */
};

/* Per-frame receive facts. */
struct tp_rxinfo {
	int16_t		 rssi_dbm;	/* or INT16_MAX if unknown */
	int8_t		 snr_db;	/* or INT8_MAX if unknown */
	uint64_t	 rx_ms;		/* host->now_ms() at reception */
};

enum tp_link_event {
	TP_LINK_UP,
	TP_LINK_DOWN,
	TP_CAPS_CHANGED
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
	 * A frame arrived from `src'.  `frame' is the plugin's buffer,
	 * valid only during the call.
	 */
	void		 (*rx)(void *arg, struct tp *, const struct tp_addr *src,
			    const uint8_t *frame, size_t len,
			    const struct tp_rxinfo *);
	/* The plugin can take frames again after TP_EAGAIN. */
	void		 (*writable)(void *arg, struct tp *);
	/* Optional: a frame left the radio (half-duplex links). */
	void		 (*tx_done)(void *arg, struct tp *, uint64_t cookie,
			    int status, uint32_t airtime_us);
	/* Link up/down or capabilities changed. */
	void		 (*link)(void *arg, struct tp *, enum tp_link_event);
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

	/* Text form of an address; returns 0 or -1. */
	int	(*addr_fmt)(const struct tp_addr *, char *buf, size_t len);
	/* Parses the text form; returns 0, or -1 with *cause set. */
	int	(*addr_parse)(const char *, struct tp_addr *, char **cause);

	/* Optional: exact time on air of a frame, microseconds. */
	uint32_t (*airtime)(struct tp *, const struct tp_addr *, size_t len);
	/* Optional: counters. */
	void	(*stats)(struct tp *, struct tp_stats *);
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
