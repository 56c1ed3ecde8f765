/*
 * upnode.h: inside the simulated LAN node (node-stubs/, docs/upnode.md).
 *
 * upnode.c parses the command line and runs the poll() loop;
 * node_port.c is the node's platform (struct up_port over a flash image
 * file with A/B slots, the boot record, the state file, OpenSSL crypto
 * and the simulated bootloader); node_link.c picks the node's link
 * (`--transport NAME') among the implementations, one file each
 * (node_lan.c: UDP multicast); node_serial.c opens serial lines for the
 * links that sit on one.  Functions return 0/-1; those a person reads
 * the reason of fill a malloc'd `char **cause' the caller frees.
 */
#ifndef UPNODE_H
#define UPNODE_H

#include <sys/types.h>

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include <openssl/evp.h>

#include "up.h"

/* Default size of each of the two slots. */
#define NODE_SLOT_SIZE_DEFAULT	(8u * 1024 * 1024)
/* Largest slot: offsets in the port ops are u32, two slots per file. */
#define NODE_SLOT_SIZE_MAX	(1024u * 1024 * 1024)
/* Blocks between state saves: each save fsyncs the flash and the state. */
#define NODE_SAVE_EVERY		512

/* Exit status of a simulated power cut (--crash-at). */
#define NODE_EXIT_CRASH		3

/* --crash-at points. */
enum node_crash {
	NODE_CRASH_NONE = 0,
	NODE_CRASH_OFFER,	/* an applicable offer, before ACCEPT */
	NODE_CRASH_BLOCK,	/* after storing `crash_block' blocks */
	NODE_CRASH_VERIFIED,	/* VERIFIED saved, before its RESULT */
	NODE_CRASH_ACTIVATE,	/* boot-once set, before the reboot */
	NODE_CRASH_CONFIRM,	/* UPDATED saved, before its RESULT */
	NODE_CRASH_ROWS		/* after `crash_rows' row store writes */
};

/*
 * --fec-rows: the parity row store of a node short of RAM, DIR/rows.bin
 * (up_port.rows_*): room for every decoder's rows of the largest frame.
 */
#define NODE_ROWS_STORE		(UP_NODE_FEC_SLOTS * UP_FEC_K_MAX * \
    UP_FRAME_MAX)

struct node_link_ops;

/* One KEY=VALUE option of the node's link (--link-opt, --group ...). */
#define NODE_LINK_OPTS_MAX	16
struct node_link_kv {
	const char	*key;
	const char	*value;
};

struct node_conf {
	uint64_t	 id;
	char		 hw[UP_NAME_MAX + 1];
	unsigned int	 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
	const char	*state_dir;
	const char	*pubkey;
	const struct node_link_ops *link;	/* --transport */
	unsigned int	 nlinkopt;
	struct node_link_kv linkopt[NODE_LINK_OPTS_MAX];
	uint32_t	 slot_size;
	double		 drop_pct;
	uint64_t	 seed;
	double		 time_scale;	/* --time-scale: the clock runs this
					 * many times real time (upsim) */
	enum node_crash	 crash;
	uint32_t	 crash_block;
	uint32_t	 crash_rows;
	int		 fec_rows;	/* --fec-rows: row budget, -1 none */
	int		 reject;	/* result code, 0 = none */
	bool		 health_ok;
	bool		 verbose;
};

/*
 * The boot record (DIR/boot.rec): which slot boots, the one-shot trial
 * slot, and what each slot holds.  Replaced atomically as a whole.
 */
#define NODE_SLOT_NONE		0xff
struct node_slot_info {
	uint8_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
};
struct node_boot {
	uint32_t	 slot_size;
	uint8_t		 active;	/* 0 = A, 1 = B */
	uint8_t		 boot_once;	/* slot to try once, or NONE */
	struct node_slot_info slot[2];
};

struct node_link;

/* The port's context: everything the platform of one node holds. */
struct node_port {
	const struct node_conf	*conf;
	int			 dirfd;
	int			 flash_fd;
	int			 pkg_fd;	/* DIR/pkg.bin: package area */
	int			 rows_fd;	/* DIR/rows.bin (--fec-rows) */
	uint32_t		 rows_writes;	/* row store writes */
	EVP_PKEY		*pkey;
	EVP_MD_CTX		*sha;		/* port->sha256_* */
	struct node_boot	 boot;
	struct node_slot_info	 running;	/* what runs now */
	uint64_t		 rng;		/* port->random */
	uint32_t		 blocks_written;
	bool			 reboot_pending;
	struct node_link	*link;		/* conf->link's instance */
	uint8_t			*iobuf;		/* state file image */
	size_t			 iocap;
	size_t			 bitmap_cap;	/* bytes the engine may use */
	/* Delta apply memory lent to the engine: the bound an MCU has. */
	struct up_vcd		 vcd;
	uint8_t			 vcd_buf[UP_VCD_WINDOW];
};

/* The port ops bound to a struct node_port. */
extern const struct up_port node_port_ops;

/* node_port.c */
int	 node_port_open(struct node_port *, const struct node_conf *,
	    char **cause);
void	 node_port_close(struct node_port *);
/*
 * The simulated bootloader: reads (or creates) the boot record, boots a
 * pending trial slot (health check: confirm or roll back), records what
 * runs in DIR/running.  Fills `info' for up_node_init().
 */
int	 node_port_boot(struct node_port *, struct up_node_info *,
	    char **cause);
/* Boot record file I/O, for node_port_boot and the tests. */
int	 node_boot_read(int dirfd, struct node_boot *);
int	 node_boot_write(int dirfd, const struct node_boot *);
/* Writes DIR/name atomically: temp file, fsync, rename, fsync dir. */
int	 node_write_atomic(int dirfd, const char *name, const void *,
	    size_t);
/* Reads a whole small file; -1 if absent or larger than cap. */
int	 node_read_file(int dirfd, const char *name, void *, size_t cap,
	    size_t *len);
/* Simulated power loss: logs the point and _exit()s without saving. */
void	 node_crash(const struct node_conf *, const char *point)
	    __attribute__((__noreturn__));
/* xorshift64*: a small seeded generator for jitter and frame drops. */
uint64_t node_rand(uint64_t *);

/* ------------------------------------------------------------------ */
/* The node's link (docs/upnode.md, "Links")                          */

/*
 * A link carries UP frames between the node and its gateway over one
 * transport: the node-side mirror of transports/transport.h.  Each
 * implementation is a const struct node_link_ops in its own file
 * (node_lan.c, ...) and one entry of node_link.c's table; `upnode
 * --transport NAME' picks it.  Rules every implementation keeps:
 *  - Nothing blocks.  send() never waits for pacing or for the line: a
 *    link that must queue keeps its own preallocated queue and asks for
 *    POLLOUT in pollfds() until it has drained.
 *  - A link owns its file descriptors and its timers (a timer is a
 *    timerfd among its fds).  upnode calls pollfds() before every
 *    poll(), so the set may change (a server link accepts connections),
 *    and calls recv() for every fd that poll() reported, whatever the
 *    event; a link stops returning an fd that would report forever
 *    (a hung-up serial device) until it reopened it.
 *  - Frames are borrowed for the duration of a call, both ways.
 *  - No op calls back into upnode or the engine.
 *  - Options come as KEY=VALUE pairs, checked against the link's table
 *    (node_link_opt_check) before open(); open() reads them with
 *    node_conf_link_opt() and may trust what the checks guarantee.
 */

/* Most fds one link asks upnode to poll. */
#define NODE_LINK_FDS_MAX	8
/* Where a frame came from, in the link's own bytes (lan: sockaddr_in). */
#define NODE_LINK_SRC_MAX	32
struct node_link_src {
	uint8_t		 len;		/* 0: the link has no addresses */
	uint8_t		 b[NODE_LINK_SRC_MAX];
};

/*
 * Facts about the link, as the gateway side's struct tp_caps.  upnode
 * hands the engine what it needs of them (up_node_set_link(),
 * docs/up-protocol.md §11.1): the uplink MTU, the form, the CRC rule,
 * whether node ids may be left out, the boot schedule.
 */
struct node_link_caps {
	size_t		 rx_max;	/* largest frame recv() returns whole;
					 * fixed while the link is open */
	size_t		 mtu_up;	/* largest frame send() takes (uplink) */
	uint32_t	 flags;
#define NODE_LINK_BROADCAST	0x0001	/* gateway frames may reach many nodes */
#define NODE_LINK_HALF_DUPLEX	0x0002	/* cannot receive while sending */
#define NODE_LINK_POLLED	0x0004	/* the node speaks only when asked */
#define NODE_LINK_COMPACT	0x0008	/* UP's compact form by default (a
					 * link with frames under UP_FRAME_MAX
					 * is compact anyway) */
#define NODE_LINK_WEAK_CHECK	0x0010	/* its frame check is too weak to
					 * carry compact frames without
					 * UP's CRC-16 (§11.3) */
#define NODE_LINK_ADDRESSED	0x0020	/* the link address names the node */
	uint16_t	 boot_slots;	/* boot ANNOUNCE/RESULT spread (§11.9): */
	uint16_t	 boot_slot_ms;	/* slots of slot_ms; 0 = at once */
};

struct node_link_opt {
	const char	*name;
	const char	*def;		/* default as text, NULL = required */
	const char	*help;
	/* NULL when the value is good, else a static reason. */
	const char	*(*check)(const char *value);
};

struct node_link_ops {
	const char	*name;		/* "lan", "lora", ... */
	const char	*help;		/* one line for --transport help */
	const struct node_link_opt *options;	/* NULL-name terminated */

	/*
	 * Opens the link with conf's options (and DIR, for what the link
	 * persists).  Returns the instance, or NULL with *cause set.
	 */
	struct node_link *(*open)(const struct node_conf *, int dirfd,
		    char **cause);
	/* Closes every fd and frees the instance; accepts NULL. */
	void	 (*close)(struct node_link *);
	void	 (*caps)(const struct node_link *, struct node_link_caps *);
	/* Fills up to `max' pollfds (fd and events); returns how many. */
	int	 (*pollfds)(struct node_link *, struct pollfd *, int max);
	/*
	 * Called for a pollfd of the last pollfds() that poll() reported
	 * (revents set).  Reads at most one frame into buf[cap]: returns
	 * its length, 0 when this fd has nothing more now (the call may
	 * also have done other work: accept, flush a queue), -1 on an
	 * error (errno set; upnode logs it and goes on).  *src says who
	 * sent it.
	 */
	ssize_t	 (*recv)(struct node_link *, const struct pollfd *,
		    uint8_t *buf, size_t cap, struct node_link_src *src);
	/*
	 * Optional: recv() read frames ahead for this pollfd (several per
	 * system call) and still holds some: upnode then polls without
	 * waiting and calls recv() for it whether or not the fd is ready.
	 */
	bool	 (*pending)(struct node_link *, const struct pollfd *);
	/*
	 * Sends one frame to the gateway (at most caps.mtu_up bytes).
	 * Returns 0, or -1 when it was not sent (the engine retries
	 * whatever it must).
	 */
	int	 (*send)(struct node_link *, const uint8_t *, size_t);

	/* Optional: a gateway frame that decoded whole came from src. */
	void	 (*gateway)(struct node_link *, const struct node_link_src *);
	/* Optional: the node rebooted; reload what the link persisted. */
	void	 (*boot)(struct node_link *);
	/* Optional: text form of a source, for logs; returns 0 or -1. */
	int	 (*src_fmt)(const struct node_link_src *, char *, size_t);
	/*
	 * Optional: the node's engine (re)started.  The link may read its
	 * state (never call it, never keep it past the next boot()) to
	 * show it, as the Modbus links' status and bitmap registers do.
	 */
	void	 (*engine)(struct node_link *, const struct up_node *);
	/*
	 * Optional: a piece of the package that arrived out of band (a
	 * carrier module's own file transfer; docs/up-node-engine.md
	 * "Blocks out of band").  `size' is the package's size while the
	 * node receives one (its engine is RECEIVING), else 0.  Returns
	 * the piece's length (copied into buf[cap]) and sets *off, its
	 * offset in the package, or 0 when none waits or size is 0: the
	 * link then leaves the piece unconfirmed and its sender repeats
	 * it.  The link confirms to its sender each piece it returns.
	 * upnode calls it after every turn of its loop, until it returns 0.
	 */
	ssize_t	 (*oob)(struct node_link *, uint64_t size, uint64_t *off,
		    uint8_t *buf, size_t cap);
};

/* node_link.c */
/* A malloc'd cause string for a `char **cause' (NULL if out of memory). */
char		*node_cause(const char *, ...)
		    __attribute__((__format__(__printf__, 1, 2)));
/* The link called `name', or NULL. */
const struct node_link_ops *node_link_find(const char *name);
/* The NULL-terminated table of links. */
const struct node_link_ops *const *node_link_list(void);
/*
 * Checks one option against the link's table: NULL when good, else a
 * static reason (unknown key or the option's own check).
 */
const char	*node_link_opt_check(const struct node_link_ops *,
		    const char *key, const char *value);
/* The value of `key' in conf, else the table default, else NULL. */
const char	*node_conf_link_opt(const struct node_conf *, const char *key);

/* node_lan.c: UDP multicast (docs/upnode.md, "LAN link") */
extern const struct node_link_ops node_link_lan;
/* node_modbus.c: Modbus RTU and TCP servers (docs/transports/modbus.md) */
extern const struct node_link_ops node_link_modbus_rtu;
extern const struct node_link_ops node_link_modbus_tcp;
/* node_lora.c: a RUI3 LoRa module on a serial line ("LoRa link") */
extern const struct node_link_ops node_link_lora;
/* node_plc.c: a station's carrier module (docs/upnode.md, "PLC link") */
extern const struct node_link_ops node_link_plc;

/* node_ble.c: a BLE peripheral behind a link model (docs/upnode.md) */
extern const struct node_link_ops node_link_ble;

/* node_serial.c: a serial line for the links that sit on one */
/*
 * Opens `path' (a tty or a pty slave) non-blocking and raw at `baud'
 * with `format' ("8N1", "8E1", "8O1", "8N2", data bits 5-8): the same
 * termios a driver of a real UART sets, INPCK on whenever there is a
 * parity bit.  Returns the fd, or -1 with *cause set.
 */
int		 node_serial_open(const char *path, unsigned int baud,
		    const char *format, char **cause);
/* The termios speed constant of a bit rate, or B0 if there is none. */
speed_t		 node_serial_speed(unsigned int baud);
/* After tcsetattr(fd, want) failed: 1 when what matters took anyway (a
 * pty dropping PARENB, which glibc reports as EINVAL). */
int		 node_serial_took(int fd, const struct termios *want);

#endif /* UPNODE_H */
