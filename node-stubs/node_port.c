/*
 * node_port.c: the platform of a simulated node (docs/upnode.md).
 *
 * Implements struct up_port over files in the state directory:
 *   flash.img   slot A at offset 0 and slot B at slot_size, each
 *               slot_size bytes (a sparse file: unwritten flash reads 0)
 *   boot.rec    the boot record: active slot, one-shot trial slot and
 *               what each slot holds; replaced atomically
 *   state.bin   the engine's state blob and block bitmap; replaced
 *               atomically (temp file, fsync, rename, fsync directory)
 *   running     "component=version" lines of what runs now
 *   pkg.bin     the package area: a delta package arrives here and is
 *               applied from the active slot into the staging slot
 * SHA-256 and Ed25519 come from OpenSSL's EVP interface.  The simulated
 * bootloader (node_port_boot) runs at every start and after every
 * simulated reboot.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"
#include "upnode.h"

#define BOOT_MAGIC	0x52425055u	/* "UPBR" */
#define BOOT_VERSION	1
#define STATE_MAGIC	0x54535055u	/* "UPST" */
#define STATE_VERSION	1
/* Flash erases in sectors; the simulator erases this much at a time. */
#define ERASE_CHUNK	(64 * 1024)

uint64_t
node_rand(uint64_t *s)
{
	uint64_t	 x = *s != 0 ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (x * 0x2545f4914f6cdd1dULL);
}

void
node_crash(const struct node_conf *conf, const char *point)
{
	fprintf(stderr, "upnode %016llx: crash-at %s: simulated power loss\n",
	    (unsigned long long)conf->id, point);
	fflush(stderr);
	/* _exit: no atexit handlers, no buffered state, like a power cut. */
	_exit(NODE_EXIT_CRASH);
}

/* ------------------------------------------------------------------ */
/* Files                                                              */

int
node_write_atomic(int dirfd, const char *name, const void *buf, size_t len)
{
	char		 tmp[256];
	const uint8_t	*p = buf;
	ssize_t		 n;
	int		 fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
		return (-1);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1)
		return (-1);
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	/* Data on disk before the name points at it. */
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) == -1)
		goto fail;
	/* And the rename itself durable. */
	(void)fsync(dirfd);
	return (0);
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	errno = saved;
	return (-1);
}

int
node_read_file(int dirfd, const char *name, void *buf, size_t cap,
    size_t *len)
{
	struct stat	 st;
	uint8_t		*p = buf;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	if (fstat(fd, &st) == -1 || st.st_size < 0 ||
	    (uint64_t)st.st_size > cap) {
		close(fd);
		errno = EFBIG;
		return (-1);
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, p + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	*len = off;
	return (0);
}

/* ------------------------------------------------------------------ */
/* Boot record                                                        */

static void
boot_wr_slot(struct up_wr *wr, const struct node_slot_info *s)
{
	unsigned int	 i;

	up_wr_u8(wr, s->ncomp);
	for (i = 0; i < s->ncomp; i++) {
		up_wr_str(wr, s->comp[i].name);
		up_wr_str(wr, s->comp[i].version);
	}
}

static void
boot_rd_slot(struct up_rd *rd, struct node_slot_info *s)
{
	unsigned int	 i;

	s->ncomp = up_rd_u8(rd);
	if (s->ncomp > UP_MAX_COMPONENTS) {
		rd->err = UP_ELEN;
		return;
	}
	for (i = 0; i < s->ncomp; i++) {
		up_rd_str(rd, s->comp[i].name, UP_NAME_MAX);
		up_rd_str(rd, s->comp[i].version, UP_VER_MAX);
	}
}

/*
 * Layout (little-endian): u32 "UPBR", u8 version 1, u32 slot_size,
 * u8 active, u8 boot_once, slot A, slot B (u8 count, then name and
 * version strings), u32 CRC-32 of everything before it.
 */
int
node_boot_write(int dirfd, const struct node_boot *b)
{
	uint8_t		 buf[2048];
	struct up_wr	 wr;

	up_wr_init(&wr, buf, sizeof(buf));
	up_wr_u32(&wr, BOOT_MAGIC);
	up_wr_u8(&wr, BOOT_VERSION);
	up_wr_u32(&wr, b->slot_size);
	up_wr_u8(&wr, b->active);
	up_wr_u8(&wr, b->boot_once);
	boot_wr_slot(&wr, &b->slot[0]);
	boot_wr_slot(&wr, &b->slot[1]);
	if (up_wr_err(&wr) == UP_OK)
		up_wr_u32(&wr, up_crc32(0, buf, wr.off));
	if (up_wr_err(&wr) != UP_OK) {
		errno = EOVERFLOW;
		return (-1);
	}
	return (node_write_atomic(dirfd, "boot.rec", buf, wr.off));
}

/* Returns 0, -1 when there is no record, -2 when it is corrupt. */
int
node_boot_read(int dirfd, struct node_boot *b)
{
	uint8_t		 buf[2048];
	struct up_rd	 rd;
	size_t		 len;
	uint32_t	 crc;

	if (node_read_file(dirfd, "boot.rec", buf, sizeof(buf), &len) == -1)
		return (errno == ENOENT ? -1 : -2);
	if (len < 8)
		return (-2);
	up_rd_init(&rd, buf + len - 4, 4);
	crc = up_rd_u32(&rd);
	if (up_crc32(0, buf, len - 4) != crc)
		return (-2);
	memset(b, 0, sizeof(*b));
	up_rd_init(&rd, buf, len - 4);
	if (up_rd_u32(&rd) != BOOT_MAGIC || up_rd_u8(&rd) != BOOT_VERSION)
		return (-2);
	b->slot_size = up_rd_u32(&rd);
	b->active = up_rd_u8(&rd);
	b->boot_once = up_rd_u8(&rd);
	boot_rd_slot(&rd, &b->slot[0]);
	boot_rd_slot(&rd, &b->slot[1]);
	if (up_rd_err(&rd) != UP_OK || up_rd_left(&rd) != 0)
		return (-2);
	if (b->active > 1 || (b->boot_once > 1 &&
	    b->boot_once != NODE_SLOT_NONE))
		return (-2);
	return (0);
}

/* Sets `component' to `version' in a slot's list, adding it if new. */
static void
slot_set_version(struct node_slot_info *s, const char *component,
    const char *version)
{
	unsigned int	 i;

	for (i = 0; i < s->ncomp; i++)
		if (strcmp(s->comp[i].name, component) == 0)
			break;
	if (i == s->ncomp) {
		if (s->ncomp >= UP_MAX_COMPONENTS)
			return;
		snprintf(s->comp[i].name, sizeof(s->comp[i].name), "%s",
		    component);
		s->ncomp++;
	}
	snprintf(s->comp[i].version, sizeof(s->comp[i].version), "%s",
	    version);
}

/* DIR/running: "component=version" lines, rewritten atomically. */
static int
port_write_running(struct node_port *np)
{
	char		 buf[UP_MAX_COMPONENTS *
			    (UP_NAME_MAX + UP_VER_MAX + 3)];
	size_t		 off = 0;
	unsigned int	 i;
	int		 n;

	for (i = 0; i < np->running.ncomp; i++) {
		n = snprintf(buf + off, sizeof(buf) - off, "%s=%s\n",
		    np->running.comp[i].name, np->running.comp[i].version);
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			return (-1);
		off += (size_t)n;
	}
	return (node_write_atomic(np->dirfd, "running", buf, off));
}

/* ------------------------------------------------------------------ */
/* The port ops                                                       */

static uint32_t
port_slot_base(const struct node_port *np, unsigned int slot)
{
	return (slot * np->conf->slot_size);
}

/* The staging slot is always the one that does not boot. */
static unsigned int
port_staging(const struct node_port *np)
{
	return (1u - np->boot.active);
}

static int
port_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct node_port *np = ctx;

	return (np->conf->link->send(np->link, frame, len));
}

static uint32_t
port_now_ms(void *ctx)
{
	struct node_port *np = ctx;
	struct timespec	 ts;
	uint64_t	 ms;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/*
	 * --time-scale: the node's clock runs with the simulated medium's
	 * (docs/simulator.md, "Time scale").  Truncation to u32 wraps every
	 * 49 days (of that clock); the engine copes.
	 */
	if (np->conf->time_scale > 1)
		ms = (uint64_t)((double)ms * np->conf->time_scale);
	return ((uint32_t)ms);
}

static uint32_t
port_random(void *ctx)
{
	struct node_port *np = ctx;

	return ((uint32_t)(node_rand(&np->rng) >> 32));
}

/*
 * state.bin: u32 "UPST", u8 version 1, u32 n, n state bytes, u32 m, m
 * bitmap bytes, u32 CRC-32 of everything before it.
 */
static int
port_save(void *ctx, const uint8_t *state, size_t state_len,
    const uint8_t *bitmap, size_t bitmap_len)
{
	struct node_port *np = ctx;
	struct up_wr	 wr;

	/*
	 * The bitmap claims blocks already written to flash.img: make the
	 * flash durable first, so a power cut cannot leave a claimed block
	 * in the page cache only.
	 */
	if (fdatasync(np->flash_fd) == -1) {
		up_logf(UP_LOG_WARN, "flash.img: fdatasync: %s",
		    strerror(errno));
		return (-1);
	}
	if (fdatasync(np->pkg_fd) == -1) {
		up_logf(UP_LOG_WARN, "pkg.bin: fdatasync: %s",
		    strerror(errno));
		return (-1);
	}
	up_wr_init(&wr, np->iobuf, np->iocap);
	up_wr_u32(&wr, STATE_MAGIC);
	up_wr_u8(&wr, STATE_VERSION);
	up_wr_u32(&wr, (uint32_t)state_len);
	up_wr_bytes(&wr, state, state_len);
	up_wr_u32(&wr, (uint32_t)bitmap_len);
	up_wr_bytes(&wr, bitmap, bitmap_len);
	if (up_wr_err(&wr) == UP_OK)
		up_wr_u32(&wr, up_crc32(0, np->iobuf, wr.off));
	if (up_wr_err(&wr) != UP_OK) {
		up_logf(UP_LOG_WARN, "state.bin: state too large");
		return (-1);
	}
	if (node_write_atomic(np->dirfd, "state.bin", np->iobuf, wr.off)
	    == -1) {
		up_logf(UP_LOG_WARN, "state.bin: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

static int
port_load(void *ctx, uint8_t *state, size_t state_cap, size_t *state_len,
    uint8_t *bitmap, size_t bitmap_cap, size_t *bitmap_len)
{
	struct node_port *np = ctx;
	struct up_rd	 rd;
	const uint8_t	*sp, *bp;
	size_t		 len;
	uint32_t	 sl, bl, crc;

	if (node_read_file(np->dirfd, "state.bin", np->iobuf, np->iocap,
	    &len) == -1) {
		if (errno != ENOENT)
			up_logf(UP_LOG_WARN, "state.bin: %s", strerror(errno));
		return (-1);
	}
	if (len < 4)
		goto bad;
	up_rd_init(&rd, np->iobuf + len - 4, 4);
	crc = up_rd_u32(&rd);
	if (up_crc32(0, np->iobuf, len - 4) != crc)
		goto bad;
	up_rd_init(&rd, np->iobuf, len - 4);
	if (up_rd_u32(&rd) != STATE_MAGIC || up_rd_u8(&rd) != STATE_VERSION)
		goto bad;
	sl = up_rd_u32(&rd);
	sp = up_rd_ptr(&rd, sl);
	bl = up_rd_u32(&rd);
	bp = up_rd_ptr(&rd, bl);
	if (up_rd_err(&rd) != UP_OK || up_rd_left(&rd) != 0 ||
	    sl > state_cap || bl > bitmap_cap)
		goto bad;
	memcpy(state, sp, sl);
	*state_len = sl;
	if (bl > 0)
		memcpy(bitmap, bp, bl);
	*bitmap_len = bl;
	return (0);
bad:
	/* A torn or foreign file is "nothing saved", never half a state. */
	up_logf(UP_LOG_WARN, "state.bin: corrupt, ignored");
	return (-1);
}

static uint32_t
port_slot_capacity(void *ctx)
{
	struct node_port *np = ctx;

	return (np->conf->slot_size);
}

/* The engine erases in steps of UP_NODE_ERASE_STEP (docs/upnode.md). */
static int
port_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct node_port *np = ctx;
	static uint8_t	 ff[ERASE_CHUNK];
	uint32_t	 base, done, n;

	if (off > np->conf->slot_size || len > np->conf->slot_size - off)
		return (-1);
	/* Erased NOR flash reads 0xff. */
	memset(ff, 0xff, sizeof(ff));
	base = port_slot_base(np, port_staging(np));
	for (done = 0; done < len; done += n) {
		n = len - done < ERASE_CHUNK ? len - done : ERASE_CHUNK;
		if (pwrite(np->flash_fd, ff, n, (off_t)base + off + done) !=
		    (ssize_t)n) {
			up_logf(UP_LOG_WARN, "flash.img: erase: %s",
			    strerror(errno));
			return (-1);
		}
	}
	if (off == 0)
		up_logf(UP_LOG_DEBUG, "slot %c: erasing", 'A' +
		    port_staging(np));
	return (0);
}

/* --crash-at block:N counts every write to the slot or the package
 * area (a delta apply's chunks included). */
static void
port_count_block(struct node_port *np)
{
	char		 point[32];

	np->blocks_written++;
	if (np->conf->crash == NODE_CRASH_BLOCK &&
	    np->blocks_written == np->conf->crash_block) {
		snprintf(point, sizeof(point), "block:%lu",
		    (unsigned long)np->conf->crash_block);
		node_crash(np->conf, point);
	}
}

static int
port_slot_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct node_port *np = ctx;
	uint32_t	 base;

	if (off > np->conf->slot_size || n > np->conf->slot_size - off)
		return (-1);
	base = port_slot_base(np, port_staging(np));
	if (pwrite(np->flash_fd, p, n, (off_t)base + off) != (ssize_t)n) {
		up_logf(UP_LOG_WARN, "flash.img: write: %s", strerror(errno));
		return (-1);
	}
	port_count_block(np);
	return (0);
}

static int
port_slot_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct node_port *np = ctx;
	uint32_t	 base;

	if (off > np->conf->slot_size || n > np->conf->slot_size - off)
		return (-1);
	base = port_slot_base(np, port_staging(np));
	if (pread(np->flash_fd, p, n, (off_t)base + off) != (ssize_t)n)
		return (-1);
	return (0);
}

/*
 * The parity row store (--fec-rows): a file, rewritten in place; what
 * it holds need not survive a power cut (up.h), so no fsync.
 */
static uint32_t
port_rows_capacity(void *ctx)
{
	struct node_port *np = ctx;

	return (np->rows_fd != -1 ? NODE_ROWS_STORE : 0);
}

static int
port_rows_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct node_port *np = ctx;

	if (np->rows_fd == -1 || off > NODE_ROWS_STORE ||
	    n > NODE_ROWS_STORE - off ||
	    pread(np->rows_fd, p, n, (off_t)off) != (ssize_t)n)
		return (-1);
	return (0);
}

static int
port_rows_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct node_port *np = ctx;

	if (np->rows_fd == -1 || off > NODE_ROWS_STORE ||
	    n > NODE_ROWS_STORE - off)
		return (-1);
	if (pwrite(np->rows_fd, p, n, (off_t)off) != (ssize_t)n) {
		up_logf(UP_LOG_WARN, "rows.bin: write: %s", strerror(errno));
		return (-1);
	}
	np->rows_writes++;
	if (np->conf->crash == NODE_CRASH_ROWS &&
	    np->rows_writes == np->conf->crash_rows) {
		char	 point[32];

		snprintf(point, sizeof(point), "rows:%lu",
		    (unsigned long)np->conf->crash_rows);
		node_crash(np->conf, point);
	}
	return (0);
}

/* The package area is its own file, as large as a slot. */
static uint32_t
port_pkg_capacity(void *ctx)
{
	struct node_port *np = ctx;

	return (np->conf->slot_size);
}

static int
port_pkg_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct node_port *np = ctx;

	/* Blocks land at their offsets; nothing to erase in a file. */
	if (off > np->conf->slot_size || len > np->conf->slot_size - off)
		return (-1);
	return (0);
}

static int
port_pkg_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct node_port *np = ctx;

	if (off > np->conf->slot_size || n > np->conf->slot_size - off)
		return (-1);
	if (pwrite(np->pkg_fd, p, n, (off_t)off) != (ssize_t)n) {
		up_logf(UP_LOG_WARN, "pkg.bin: write: %s", strerror(errno));
		return (-1);
	}
	port_count_block(np);
	return (0);
}

static int
port_pkg_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct node_port *np = ctx;

	if (off > np->conf->slot_size || n > np->conf->slot_size - off)
		return (-1);
	if (pread(np->pkg_fd, p, n, (off_t)off) != (ssize_t)n)
		return (-1);
	return (0);
}

/* The running image: the delta's source. */
static int
port_base_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct node_port *np = ctx;
	uint32_t	 base;

	if (off > np->conf->slot_size || n > np->conf->slot_size - off)
		return (-1);
	base = port_slot_base(np, np->boot.active);
	if (pread(np->flash_fd, p, n, (off_t)base + off) != (ssize_t)n)
		return (-1);
	return (0);
}

static int
port_offer_check(void *ctx, const struct up_offer *o)
{
	struct node_port *np = ctx;

	/*
	 * The engine calls this last: the offer passed its own checks and
	 * its signature (sig_verify) already.
	 */
	if (np->conf->crash == NODE_CRASH_OFFER)
		node_crash(np->conf, "offer");
	if (np->conf->reject != 0)
		return (np->conf->reject);
	return (UP_R_INITIAL);
}

/* SHA-256 (OpenSSL EVP), one hash at a time, for the engine's steps. */
static int
port_sha256_begin(void *ctx)
{
	struct node_port *np = ctx;

	if (np->sha == NULL && (np->sha = EVP_MD_CTX_new()) == NULL)
		return (-1);
	return (EVP_DigestInit_ex(np->sha, EVP_sha256(), NULL) == 1 ? 0 : -1);
}

static int
port_sha256_update(void *ctx, const uint8_t *p, size_t n)
{
	struct node_port *np = ctx;

	return (EVP_DigestUpdate(np->sha, p, n) == 1 ? 0 : -1);
}

static int
port_sha256_end(void *ctx, uint8_t md[32])
{
	struct node_port *np = ctx;
	unsigned int	 len = 0;

	if (EVP_DigestFinal_ex(np->sha, md, &len) != 1 || len != 32)
		return (-1);
	return (0);
}

/*
 * The cloud's Ed25519 signature over a descriptor (§6), with the key of
 * --pubkey.  This node requires one: UP_SIG_NONE or a short signature
 * is UP_R_SIGNATURE, another algorithm UP_R_UNSUPPORTED.
 */
static int
port_sig_verify(void *ctx, const struct up_offer *o, const uint8_t *desc,
    size_t len)
{
	struct node_port *np = ctx;
	EVP_MD_CTX	*vctx;
	int		 ok;

	if (o->sig_alg == UP_SIG_NONE || (o->sig_alg == UP_SIG_ED25519 &&
	    o->sig_len != 64)) {
		up_logf(UP_LOG_INFO, "verify: no Ed25519 signature");
		return (UP_R_SIGNATURE);
	}
	if (o->sig_alg != UP_SIG_ED25519)
		return (UP_R_UNSUPPORTED);
	if ((vctx = EVP_MD_CTX_new()) == NULL)
		return (UP_R_SIGNATURE);
	ok = EVP_DigestVerifyInit(vctx, NULL, NULL, NULL, np->pkey) == 1 &&
	    EVP_DigestVerify(vctx, o->sig, o->sig_len, desc, len) == 1;
	EVP_MD_CTX_free(vctx);
	if (!ok) {
		up_logf(UP_LOG_INFO, "verify: bad signature");
		return (UP_R_SIGNATURE);
	}
	return (UP_R_INITIAL);
}

static int
port_activate(void *ctx, const struct up_offer *o)
{
	struct node_port *np = ctx;
	struct node_boot b = np->boot;
	unsigned int	 t = port_staging(np);

	/* The staged slot holds what runs, with the component replaced. */
	b.slot[t] = np->running;
	slot_set_version(&b.slot[t], o->component, o->to_version);
	b.boot_once = (uint8_t)t;
	if (node_boot_write(np->dirfd, &b) == -1) {
		up_logf(UP_LOG_WARN, "boot.rec: %s", strerror(errno));
		return (-1);
	}
	np->boot = b;
	up_logf(UP_LOG_INFO, "node %016llx: slot %c set to boot once; "
	    "rebooting", (unsigned long long)np->conf->id, 'A' + t);
	if (np->conf->crash == NODE_CRASH_ACTIVATE)
		node_crash(np->conf, "activate");
	/* upnode.c reboots once the engine call returns. */
	np->reboot_pending = true;
	return (0);
}

static void
port_state_changed(void *ctx, uint8_t state, uint8_t result)
{
	struct node_port *np = ctx;

	(void)result;
	if (state == UP_NS_DOWNLOADED && np->rows_fd != -1)
		up_logf(UP_LOG_INFO, "node %016llx: parity row store: %lu "
		    "rows written since boot", (unsigned long long)
		    np->conf->id, (unsigned long)np->rows_writes);
	if (np->conf->crash == NODE_CRASH_VERIFIED &&
	    state == UP_NS_VERIFIED)
		node_crash(np->conf, "verified");
	if (np->conf->crash == NODE_CRASH_CONFIRM && state == UP_NS_UPDATED)
		node_crash(np->conf, "confirm");
}

const struct up_port node_port_ops = {
	.send = port_send,
	.now_ms = port_now_ms,
	.random = port_random,
	.save = port_save,
	.load = port_load,
	.slot_capacity = port_slot_capacity,
	.slot_erase = port_slot_erase,
	.slot_write = port_slot_write,
	.slot_read = port_slot_read,
	.offer_check = port_offer_check,
	.sha256_begin = port_sha256_begin,
	.sha256_update = port_sha256_update,
	.sha256_end = port_sha256_end,
	.sig_verify = port_sig_verify,
	.activate = port_activate,
	.state_changed = port_state_changed,
	.pkg_capacity = port_pkg_capacity,
	.pkg_erase = port_pkg_erase,
	.pkg_write = port_pkg_write,
	.pkg_read = port_pkg_read,
	.base_read = port_base_read,
	.rows_capacity = port_rows_capacity,
	.rows_read = port_rows_read,
	.rows_write = port_rows_write
};

/* ------------------------------------------------------------------ */
/* Open, boot, close                                                  */

static EVP_PKEY *
port_load_pubkey(const char *path, char **cause)
{
	EVP_PKEY	*pkey;
	FILE		*f;

	if ((f = fopen(path, "r")) == NULL) {
		*cause = node_cause("%s: %s", path, strerror(errno));
		return (NULL);
	}
	pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL) {
		*cause = node_cause("%s: not a PEM public key", path);
		return (NULL);
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		*cause = node_cause("%s: not an Ed25519 key", path);
		return (NULL);
	}
	return (pkey);
}

int
node_port_open(struct node_port *np, const struct node_conf *conf,
    char **cause)
{
	struct stat	 st;
	off_t		 want;

	memset(np, 0, sizeof(*np));
	np->conf = conf;
	np->dirfd = np->flash_fd = np->pkg_fd = np->rows_fd = -1;
	/*
	 * The id mixed by a multiply, not a plain XOR: with seed ^ id, two
	 * nodes started one after the other (pids p and p + 1, ids 2 and 3)
	 * could get the same stream, reply in the same slot every time and
	 * collide forever on a shared radio channel.
	 */
	np->rng = conf->seed ^ (conf->id * 0xbf58476d1ce4e5b9ULL);
	if (mkdir(conf->state_dir, 0755) == -1 && errno != EEXIST) {
		*cause = node_cause("%s: %s", conf->state_dir,
		    strerror(errno));
		return (-1);
	}
	np->dirfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (np->dirfd == -1) {
		*cause = node_cause("%s: %s", conf->state_dir,
		    strerror(errno));
		goto fail;
	}
	if ((np->pkey = port_load_pubkey(conf->pubkey, cause)) == NULL)
		goto fail;
	np->flash_fd = openat(np->dirfd, "flash.img",
	    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (np->flash_fd == -1 || fstat(np->flash_fd, &st) == -1) {
		*cause = node_cause("%s/flash.img: %s", conf->state_dir,
		    strerror(errno));
		goto fail;
	}
	want = (off_t)conf->slot_size * 2;
	if (st.st_size < want && ftruncate(np->flash_fd, want) == -1) {
		*cause = node_cause("%s/flash.img: %s", conf->state_dir,
		    strerror(errno));
		goto fail;
	}
	np->pkg_fd = openat(np->dirfd, "pkg.bin",
	    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (np->pkg_fd == -1 || fstat(np->pkg_fd, &st) == -1) {
		*cause = node_cause("%s/pkg.bin: %s", conf->state_dir,
		    strerror(errno));
		goto fail;
	}
	if (st.st_size < (off_t)conf->slot_size &&
	    ftruncate(np->pkg_fd, (off_t)conf->slot_size) == -1) {
		*cause = node_cause("%s/pkg.bin: %s", conf->state_dir,
		    strerror(errno));
		goto fail;
	}
	if (conf->fec_rows >= 0) {
		np->rows_fd = openat(np->dirfd, "rows.bin",
		    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (np->rows_fd == -1 ||
		    ftruncate(np->rows_fd, NODE_ROWS_STORE) == -1) {
			*cause = node_cause("%s/rows.bin: %s",
			    conf->state_dir, strerror(errno));
			goto fail;
		}
	}
	/* One bit per byte of slot: any block size fits. */
	np->bitmap_cap = up_bitmap_bytes(conf->slot_size);
	np->iocap = 32 + UP_NODE_STATE_MAX + np->bitmap_cap;
	if ((np->iobuf = malloc(np->iocap)) == NULL) {
		*cause = node_cause("out of memory");
		goto fail;
	}
	return (0);
fail:
	node_port_close(np);
	return (-1);
}

void
node_port_close(struct node_port *np)
{
	if (np->flash_fd != -1)
		close(np->flash_fd);
	if (np->pkg_fd != -1)
		close(np->pkg_fd);
	if (np->rows_fd != -1)
		close(np->rows_fd);
	if (np->dirfd != -1)
		close(np->dirfd);
	EVP_PKEY_free(np->pkey);
	EVP_MD_CTX_free(np->sha);
	free(np->iobuf);
	np->flash_fd = np->dirfd = np->pkg_fd = np->rows_fd = -1;
	np->pkey = NULL;
	np->sha = NULL;
	np->iobuf = NULL;
}

static void
port_boot_create(struct node_port *np, struct node_boot *b)
{
	const struct node_conf *conf = np->conf;
	unsigned int	 i;

	memset(b, 0, sizeof(*b));
	b->slot_size = conf->slot_size;
	b->active = 0;
	b->boot_once = NODE_SLOT_NONE;
	for (i = 0; i < conf->ncomp; i++)
		b->slot[0].comp[i] = conf->comp[i];
	b->slot[0].ncomp = (uint8_t)conf->ncomp;
}

int
node_port_boot(struct node_port *np, struct up_node_info *info,
    char **cause)
{
	const struct node_conf *conf = np->conf;
	struct node_boot *b = &np->boot;
	unsigned int	 t;
	int		 r;

	np->reboot_pending = false;
	if ((r = node_boot_read(np->dirfd, b)) != 0) {
		if (r == -2)
			up_logf(UP_LOG_WARN, "boot.rec: corrupt, starting "
			    "from the command line's components");
		port_boot_create(np, b);
		if (node_boot_write(np->dirfd, b) == -1) {
			*cause = node_cause("%s/boot.rec: %s",
			    conf->state_dir, strerror(errno));
			return (-1);
		}
	}
	if (b->slot_size != conf->slot_size) {
		*cause = node_cause("%s was made with --slot-size %lu",
		    conf->state_dir, (unsigned long)b->slot_size);
		return (-1);
	}

	if (b->boot_once != NODE_SLOT_NONE) {
		t = b->boot_once;
		/*
		 * Consume the one-shot flag before booting, as a bootloader
		 * does: a cut during the trial boot falls back to the old
		 * slot (MCUboot's "test" swap).
		 */
		b->boot_once = NODE_SLOT_NONE;
		if (node_boot_write(np->dirfd, b) == -1) {
			*cause = node_cause("%s/boot.rec: %s",
			    conf->state_dir, strerror(errno));
			return (-1);
		}
		if (conf->health_ok && b->slot[t].ncomp > 0) {
			b->active = (uint8_t)t;
			if (node_boot_write(np->dirfd, b) == -1) {
				*cause = node_cause("%s/boot.rec: %s",
				    conf->state_dir, strerror(errno));
				return (-1);
			}
			up_logf(UP_LOG_INFO, "node %016llx: boot: slot %c "
			    "passed its health check, confirmed",
			    (unsigned long long)conf->id, 'A' + t);
		} else
			up_logf(UP_LOG_INFO, "node %016llx: boot: slot %c "
			    "failed its health check, rolled back to slot %c",
			    (unsigned long long)conf->id, 'A' + t,
			    'A' + b->active);
	}

	np->running = b->slot[b->active];
	if (port_write_running(np) == -1) {
		*cause = node_cause("%s/running: %s", conf->state_dir,
		    strerror(errno));
		return (-1);
	}

	memset(info, 0, sizeof(*info));
	info->node_id = conf->id;
	snprintf(info->hw, sizeof(info->hw), "%s", conf->hw);
	/* One UDP datagram on an Ethernet LAN. */
	info->max_frame = UP_FRAME_MAX;
	info->free_kib = conf->slot_size / 1024;
	info->battery = UP_BATTERY_UNKNOWN;
	info->rssi_dbm = UP_RSSI_UNKNOWN;
	info->snr_db = UP_SNR_UNKNOWN;
	info->ncomp = np->running.ncomp;
	memcpy(info->comp, np->running.comp, sizeof(info->comp));
	return (0);
}
