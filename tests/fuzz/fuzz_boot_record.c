/*
 * fuzz_boot_record.c: upnode's own files (node-stubs/node_port.c) on
 * arbitrary bytes: the boot record parser (node_boot_read, DIR/boot.rec)
 * and the state file parser (the port's load(), DIR/state.bin).  Both
 * read a file, so every input is written to both names in a directory
 * made once with mkdtemp() under $TMPDIR (or /tmp; run libFuzzer with
 * TMPDIR=/dev/shm to keep it off the disk) and removed at exit.
 *
 * Both files end in a CRC-32 of what precedes it, so each input is also
 * tried with its last four bytes made the right CRC.
 *
 * Invariants (abort() on a violation):
 *  - node_boot_read() returns 0, or -2 for a corrupt record (the file
 *    exists, so never -1); a record it accepts has an active slot 0 or
 *    1, a trial slot 0, 1 or none, at most UP_MAX_COMPONENTS components
 *    per slot, and written back with node_boot_write() reads back the
 *    same;
 *  - load() returns 0 or -1; on 0 the lengths fit the buffers it was
 *    given.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "upnode.h"

#define FZ_MAX_IN	4096
#define FZ_SLOT_SIZE	(64u * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char		 dir[PATH_MAX];
static int		 fz_dirfd = -1;
static struct node_conf	 conf;
static struct node_port	 np;
static uint8_t		 fixed[FZ_MAX_IN];

static void
fz_cleanup(void)
{
	static const char *const names[] = { "boot.rec", "state.bin",
	    "boot.rec.tmp", "state.bin.tmp" };
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlinkat(fz_dirfd, names[i], 0);
	close(fz_dirfd);
	rmdir(dir);
}

static void
fz_quiet(int level, const char *fmt, va_list ap)
{
}

static void
fz_setup(void)
{
	const char	*tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_boot_record.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL ||
	    (fz_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
	atexit(fz_cleanup);
	up_log_set_hook(fz_quiet);

	/* Only what the port's load() uses: the directory and a buffer. */
	conf.slot_size = FZ_SLOT_SIZE;
	conf.state_dir = dir;
	np.conf = &conf;
	np.dirfd = fz_dirfd;
	np.flash_fd = -1;
	np.bitmap_cap = up_bitmap_bytes(FZ_SLOT_SIZE);
	np.iocap = 32 + UP_NODE_STATE_MAX + np.bitmap_cap;
	if ((np.iobuf = malloc(np.iocap)) == NULL)
		abort();
}

static void
fz_put(const char *name, const uint8_t *data, size_t size)
{
	int	 fd;

	fd = openat(fz_dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1 || (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

static void
fz_slot_ok(const struct node_slot_info *s)
{
	unsigned int	 i;

	if (s->ncomp > UP_MAX_COMPONENTS)
		abort();
	for (i = 0; i < s->ncomp; i++)
		if (strlen(s->comp[i].name) > UP_NAME_MAX ||
		    strlen(s->comp[i].version) > UP_VER_MAX)
			abort();
}

static int
fz_boot_eq(const struct node_boot *a, const struct node_boot *b)
{
	unsigned int	 s, i;

	if (a->slot_size != b->slot_size || a->active != b->active ||
	    a->boot_once != b->boot_once)
		return (0);
	for (s = 0; s < 2; s++) {
		if (a->slot[s].ncomp != b->slot[s].ncomp)
			return (0);
		for (i = 0; i < a->slot[s].ncomp; i++)
			if (strcmp(a->slot[s].comp[i].name,
			    b->slot[s].comp[i].name) != 0 ||
			    strcmp(a->slot[s].comp[i].version,
			    b->slot[s].comp[i].version) != 0)
				return (0);
	}
	return (1);
}

static void
fz_boot(const uint8_t *data, size_t size)
{
	struct node_boot	 b, b2;
	int			 r;

	fz_put("boot.rec", data, size);
	r = node_boot_read(fz_dirfd, &b);
	if (r == -2)
		return;
	if (r != 0)
		abort();
	if (b.active > 1 || (b.boot_once > 1 && b.boot_once != NODE_SLOT_NONE))
		abort();
	fz_slot_ok(&b.slot[0]);
	fz_slot_ok(&b.slot[1]);
	if (node_boot_write(fz_dirfd, &b) != 0 ||
	    node_boot_read(fz_dirfd, &b2) != 0 || !fz_boot_eq(&b, &b2))
		abort();
}

static void
fz_state(const uint8_t *data, size_t size)
{
	static uint8_t	 state[UP_NODE_STATE_MAX];
	static uint8_t	*bitmap;
	size_t		 slen = SIZE_MAX, blen = SIZE_MAX;
	int		 r;

	if (bitmap == NULL && (bitmap = malloc(np.bitmap_cap)) == NULL)
		abort();
	fz_put("state.bin", data, size);
	r = node_port_ops.load(&np, state, sizeof(state), &slen, bitmap,
	    np.bitmap_cap, &blen);
	if (r == -1)
		return;
	if (r != 0 || slen > sizeof(state) || blen > np.bitmap_cap)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t	 crc;

	if (fz_dirfd == -1)
		fz_setup();
	if (size > FZ_MAX_IN)
		return (0);
	fz_boot(data, size);
	fz_state(data, size);
	if (size < 8)
		return (0);
	memcpy(fixed, data, size);
	crc = up_crc32(0, fixed, size - 4);
	fixed[size - 4] = (uint8_t)crc;
	fixed[size - 3] = (uint8_t)(crc >> 8);
	fixed[size - 2] = (uint8_t)(crc >> 16);
	fixed[size - 1] = (uint8_t)(crc >> 24);
	fz_boot(fixed, size);
	fz_state(fixed, size);
	return (0);
}
