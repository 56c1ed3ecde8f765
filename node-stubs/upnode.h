/*
 * upnode.h: inside the simulated LAN node (node-stubs/, docs/upnode.md).
 *
 * upnode.c parses the command line and runs the poll() loop;
 * node_port.c is the node's platform (struct up_port over a flash image
 * file with A/B slots, the boot record, the state file, OpenSSL crypto
 * and the simulated bootloader); node_lan.c is the UDP multicast link.
 * Functions return 0/-1; those a person reads the reason of fill a
 * malloc'd `char **cause' the caller frees.
 */
#ifndef UPNODE_H
#define UPNODE_H

#include <sys/types.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

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
	NODE_CRASH_CONFIRM	/* UPDATED saved, before its RESULT */
};

struct node_conf {
	uint64_t	 id;
	char		 hw[UP_NAME_MAX + 1];
	unsigned int	 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
	const char	*state_dir;
	const char	*pubkey;
	struct in_addr	 group;
	uint16_t	 port;
	struct in_addr	 iface;
	uint32_t	 slot_size;
	double		 drop_pct;
	uint64_t	 seed;
	enum node_crash	 crash;
	uint32_t	 crash_block;
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

struct node_lan;

/* The port's context: everything the platform of one node holds. */
struct node_port {
	const struct node_conf	*conf;
	int			 dirfd;
	int			 flash_fd;
	int			 pkg_fd;	/* DIR/pkg.bin: package area */
	EVP_PKEY		*pkey;
	struct node_boot	 boot;
	struct node_slot_info	 running;	/* what runs now */
	uint64_t		 rng;		/* port->random */
	uint32_t		 blocks_written;
	bool			 reboot_pending;
	struct node_lan		*lan;
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

/* node_lan.c */
struct node_lan	*node_lan_open(const struct node_conf *, int dirfd,
		    char **cause);
void		 node_lan_close(struct node_lan *);
/* Reloads the gateway's address from DIR/gateway (after a reboot). */
void		 node_lan_load_gateway(struct node_lan *);
int		 node_lan_send(struct node_lan *, const uint8_t *, size_t);
/* File descriptors to poll for input. */
int		 node_lan_fds(const struct node_lan *, int fds[2]);
/*
 * Reads one datagram from `fd' into buf[cap].  Returns its length, 0
 * when nothing is left, -1 on error.  `from' is the sender.
 */
ssize_t		 node_lan_recv(struct node_lan *, int fd, uint8_t *buf,
		    size_t cap, struct sockaddr_in *from);
/* A valid gateway frame came from `from': reply there from now on. */
void		 node_lan_set_gateway(struct node_lan *,
		    const struct sockaddr_in *from);

#endif /* UPNODE_H */
