/*
 * test_node_port.c: the simulated node's POSIX port (node-stubs/
 * node_port.c): atomic files, the boot record, the simulated bootloader
 * (confirm and roll back), the state file and image verification with
 * real SHA-256 and Ed25519 keys made for the test.  Files live in a
 * mkdtemp() directory that is removed afterwards.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"
#include "upnode.h"

#define SLOT		(64 * 1024)

static char		 tmpdir[64];
static char		 statedir[128];
static char		 pubpath[128];
static EVP_PKEY		*priv;
static struct node_conf	 conf;
static struct node_port	 np;
static uint8_t		 image[40000];

static void
rm_dir(const char *path)
{
	char		 p[512];
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) == -1 && errno == EISDIR)
			rm_dir(p);
	}
	closedir(d);
	rmdir(path);
}

static int
setup(void **state)
{
	char		*cause = NULL;
	FILE		*f;
	size_t		 i;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/upnode-test-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	snprintf(pubpath, sizeof(pubpath), "%s/pub.pem", tmpdir);
	priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(priv);
	assert_non_null(f = fopen(pubpath, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, priv), 1);
	fclose(f);

	memset(&conf, 0, sizeof(conf));
	conf.id = 0x42;
	strcpy(conf.hw, "sim-1");
	conf.ncomp = 2;
	strcpy(conf.comp[0].name, "app");
	strcpy(conf.comp[0].version, "1.0.0");
	strcpy(conf.comp[1].name, "os");
	strcpy(conf.comp[1].version, "2.3");
	conf.state_dir = statedir;
	conf.pubkey = pubpath;
	conf.slot_size = SLOT;
	conf.seed = 7;
	conf.health_ok = true;
	for (i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 13 + (i >> 9));
	if (node_port_open(&np, &conf, &cause) == -1)
		fail_msg("node_port_open: %s", cause);
	return (0);
}

static int
teardown(void **state)
{
	node_port_close(&np);
	EVP_PKEY_free(priv);
	rm_dir(tmpdir);
	return (0);
}

static void
read_text(const char *name, char *buf, size_t cap)
{
	size_t		 len;

	assert_int_equal(node_read_file(np.dirfd, name, buf, cap - 1, &len),
	    0);
	buf[len] = '\0';
}

static void
test_write_atomic(void **state)
{
	char		 buf[64], p[256];
	struct stat	 st;
	size_t		 len;

	assert_int_equal(node_write_atomic(np.dirfd, "f", "one", 3), 0);
	read_text("f", buf, sizeof(buf));
	assert_string_equal(buf, "one");
	assert_int_equal(node_write_atomic(np.dirfd, "f", "second", 6), 0);
	read_text("f", buf, sizeof(buf));
	assert_string_equal(buf, "second");
	/* No temp file is left behind. */
	snprintf(p, sizeof(p), "%s/f.tmp", statedir);
	assert_int_equal(stat(p, &st), -1);
	/* Too large for the caller's buffer: refused, not truncated. */
	assert_int_equal(node_read_file(np.dirfd, "f", buf, 3, &len), -1);
}

static void
test_boot_record(void **state)
{
	struct node_boot b, r;
	uint8_t		 raw[2048];
	size_t		 len;

	assert_int_equal(node_boot_read(np.dirfd, &r), -1);
	memset(&b, 0, sizeof(b));
	b.slot_size = SLOT;
	b.active = 1;
	b.boot_once = NODE_SLOT_NONE;
	b.slot[0].ncomp = 1;
	strcpy(b.slot[0].comp[0].name, "app");
	strcpy(b.slot[0].comp[0].version, "1.0.0");
	b.slot[1].ncomp = 1;
	strcpy(b.slot[1].comp[0].name, "app");
	strcpy(b.slot[1].comp[0].version, "1.1.0");
	assert_int_equal(node_boot_write(np.dirfd, &b), 0);
	assert_int_equal(node_boot_read(np.dirfd, &r), 0);
	assert_int_equal(r.active, 1);
	assert_int_equal(r.boot_once, NODE_SLOT_NONE);
	assert_int_equal(r.slot_size, SLOT);
	assert_string_equal(r.slot[1].comp[0].version, "1.1.0");

	/* Any flipped byte is detected. */
	assert_int_equal(node_read_file(np.dirfd, "boot.rec", raw,
	    sizeof(raw), &len), 0);
	raw[len / 2] ^= 0x40;
	assert_int_equal(node_write_atomic(np.dirfd, "boot.rec", raw, len),
	    0);
	assert_int_equal(node_boot_read(np.dirfd, &r), -2);
}

static void
test_first_boot(void **state)
{
	struct up_node_info info;
	char		*cause = NULL, buf[256];

	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	assert_true(info.node_id == 0x42);
	assert_string_equal(info.hw, "sim-1");
	assert_int_equal(info.ncomp, 2);
	assert_string_equal(info.comp[0].version, "1.0.0");
	assert_int_equal(info.free_kib, SLOT / 1024);
	assert_int_equal(np.boot.active, 0);
	read_text("running", buf, sizeof(buf));
	assert_string_equal(buf, "app=1.0.0\nos=2.3\n");
	/* A different --slot-size on an existing directory is refused. */
	conf.slot_size = SLOT * 2;
	assert_int_equal(node_port_boot(&np, &info, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "--slot-size"));
	free(cause);
	conf.slot_size = SLOT;
}

static void
stage(struct up_offer *o, size_t size)
{
	uint8_t		 desc[2048];
	EVP_MD_CTX	*ctx;
	size_t		 siglen = 64;
	uint32_t	 off;
	int		 dlen;

	memset(o, 0, sizeof(*o));
	strcpy(o->component, "app");
	strcpy(o->to_version, "1.1.0");
	o->kind = UP_KIND_FULL;
	o->size = o->image_size = (uint32_t)size;
	EVP_Digest(image, size, o->sha256, NULL, EVP_sha256(), NULL);
	memcpy(o->image_sha256, o->sha256, 32);
	o->block_size = 1000;
	o->nblocks = up_nblocks(o->size, o->block_size);
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	dlen = up_desc_encode(o, desc, sizeof(desc));
	assert_true(dlen > 0);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, priv), 1);
	assert_int_equal(EVP_DigestSign(ctx, o->sig, &siglen, desc,
	    (size_t)dlen), 1);
	EVP_MD_CTX_free(ctx);

	assert_int_equal(node_port_ops.slot_erase(&np, 0, o->size), 0);
	for (off = 0; off < size; off += 1000)
		assert_int_equal(node_port_ops.slot_write(&np, off,
		    image + off, size - off < 1000 ? size - off : 1000), 0);
}

/*
 * What the engine does at VERIFY with the port's primitives: SHA-256 of
 * the staged slot through slot_read and sha256_*, then sig_verify over
 * the descriptor.
 */
static int
port_check(const struct up_offer *o)
{
	uint8_t		 md[32], buf[700], desc[UP_DESC_MAX];
	uint32_t	 off, n;
	int		 dlen;

	assert_int_equal(node_port_ops.sha256_begin(&np), 0);
	for (off = 0; off < o->size; off += n) {
		n = o->size - off < sizeof(buf) ? o->size - off :
		    (uint32_t)sizeof(buf);
		assert_int_equal(node_port_ops.slot_read(&np, off, buf, n), 0);
		assert_int_equal(node_port_ops.sha256_update(&np, buf, n), 0);
	}
	assert_int_equal(node_port_ops.sha256_end(&np, md), 0);
	if (memcmp(md, o->sha256, 32) != 0)
		return (UP_R_INTEGRITY);
	dlen = up_desc_encode(o, desc, sizeof(desc));
	assert_true(dlen > 0);
	return (node_port_ops.sig_verify(&np, o, desc, (size_t)dlen));
}

static void
test_verify(void **state)
{
	struct up_node_info info;
	struct up_offer	 o;
	char		*cause = NULL;
	uint8_t		 b;

	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	stage(&o, sizeof(image));
	assert_int_equal(port_check(&o), UP_R_INITIAL);
	/* The image went to slot B (A runs). */
	assert_int_equal(node_port_ops.slot_read(&np, 0, &b, 1), 0);
	assert_int_equal(b, image[0]);
	/* Flash corrupted after the transfer. */
	b ^= 1;
	assert_int_equal(node_port_ops.slot_write(&np, 0, &b, 1), 0);
	assert_int_equal(port_check(&o), UP_R_INTEGRITY);
	b ^= 1;
	assert_int_equal(node_port_ops.slot_write(&np, 0, &b, 1), 0);
	/* The descriptor changed after signing (a forged hw list). */
	o.nhw = 1;
	strcpy(o.hw[0], "sim-1");
	assert_int_equal(port_check(&o), UP_R_SIGNATURE);
	o.nhw = 0;
	o.sig[10] ^= 1;
	assert_int_equal(port_check(&o), UP_R_SIGNATURE);
	o.sig[10] ^= 1;
	o.sig_alg = UP_SIG_NONE;
	assert_int_equal(port_check(&o), UP_R_SIGNATURE);
	/* An algorithm it does not have. */
	o.sig_alg = 7;
	assert_int_equal(port_check(&o), UP_R_UNSUPPORTED);
	o.sig_alg = UP_SIG_ED25519;
	assert_int_equal(port_check(&o), UP_R_INITIAL);
	/* Out of the slot. */
	assert_int_equal(node_port_ops.slot_write(&np, SLOT - 1, image, 2),
	    -1);
	assert_int_equal(node_port_ops.slot_erase(&np, 0, SLOT + 1), -1);
	assert_int_equal(node_port_ops.slot_erase(&np, SLOT, 1), -1);
}

static void
test_activate_confirm(void **state)
{
	struct up_node_info info;
	struct up_offer	 o;
	struct node_boot b;
	char		*cause = NULL, buf[256];

	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	stage(&o, 5000);
	assert_int_equal(node_port_ops.activate(&np, &o), 0);
	assert_true(np.reboot_pending);
	assert_int_equal(node_boot_read(np.dirfd, &b), 0);
	assert_int_equal(b.boot_once, 1);
	assert_int_equal(b.active, 0);
	assert_string_equal(b.slot[1].comp[0].version, "1.1.0");
	assert_string_equal(b.slot[1].comp[1].version, "2.3");
	/* Still the old version until the reboot. */
	read_text("running", buf, sizeof(buf));
	assert_string_equal(buf, "app=1.0.0\nos=2.3\n");

	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	assert_false(np.reboot_pending);
	assert_string_equal(info.comp[0].version, "1.1.0");
	read_text("running", buf, sizeof(buf));
	assert_string_equal(buf, "app=1.1.0\nos=2.3\n");
	assert_int_equal(node_boot_read(np.dirfd, &b), 0);
	assert_int_equal(b.active, 1);
	assert_int_equal(b.boot_once, NODE_SLOT_NONE);

	/* The next update stages into slot A, the one not running. */
	stage(&o, 3000);
	assert_int_equal(node_port_ops.slot_read(&np, 0, (uint8_t *)buf, 1),
	    0);
	assert_int_equal((uint8_t)buf[0], image[0]);
	assert_int_equal(node_boot_read(np.dirfd, &b), 0);
	assert_int_equal(b.active, 1);
}

static void
test_activate_rollback(void **state)
{
	struct up_node_info info;
	struct up_offer	 o;
	struct node_boot b;
	char		*cause = NULL, buf[256];

	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	stage(&o, 5000);
	assert_int_equal(node_port_ops.activate(&np, &o), 0);
	conf.health_ok = false;
	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	conf.health_ok = true;
	assert_string_equal(info.comp[0].version, "1.0.0");
	read_text("running", buf, sizeof(buf));
	assert_string_equal(buf, "app=1.0.0\nos=2.3\n");
	assert_int_equal(node_boot_read(np.dirfd, &b), 0);
	assert_int_equal(b.active, 0);
	/* The trial was consumed: the next boot does not retry it. */
	assert_int_equal(b.boot_once, NODE_SLOT_NONE);
	assert_int_equal(node_port_boot(&np, &info, &cause), 0);
	assert_string_equal(info.comp[0].version, "1.0.0");
}

static void
test_state_file(void **state)
{
	uint8_t		 st[UP_NODE_STATE_MAX], bm[100], raw[4096];
	uint8_t		 st2[UP_NODE_STATE_MAX], bm2[100];
	size_t		 sl = 0, bl = 0, len;

	/* Nothing saved yet. */
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    sizeof(bm2), &bl), -1);
	memset(st, 0x11, 300);
	memset(bm, 0x22, sizeof(bm));
	assert_int_equal(node_port_ops.save(&np, st, 300, bm, 100), 0);
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    sizeof(bm2), &bl), 0);
	assert_int_equal(sl, 300);
	assert_int_equal(bl, 100);
	assert_memory_equal(st, st2, 300);
	assert_memory_equal(bm, bm2, 100);
	/* A bitmap larger than the caller's buffer is refused. */
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    50, &bl), -1);
	/* A torn (truncated) or corrupted file is "nothing saved". */
	assert_int_equal(node_read_file(np.dirfd, "state.bin", raw,
	    sizeof(raw), &len), 0);
	assert_int_equal(node_write_atomic(np.dirfd, "state.bin", raw,
	    len - 10), 0);
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    sizeof(bm2), &bl), -1);
	raw[20] ^= 1;
	assert_int_equal(node_write_atomic(np.dirfd, "state.bin", raw, len),
	    0);
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    sizeof(bm2), &bl), -1);
	raw[20] ^= 1;
	assert_int_equal(node_write_atomic(np.dirfd, "state.bin", raw, len),
	    0);
	assert_int_equal(node_port_ops.load(&np, st2, sizeof(st2), &sl, bm2,
	    sizeof(bm2), &bl), 0);
}

static void
test_offer_policy(void **state)
{
	struct up_offer	 o;

	memset(&o, 0, sizeof(o));
	o.sig_alg = UP_SIG_ED25519;
	assert_int_equal(node_port_ops.offer_check(&np, &o), UP_R_INITIAL);
	conf.reject = UP_R_LOW_BATTERY;
	assert_int_equal(node_port_ops.offer_check(&np, &o),
	    UP_R_LOW_BATTERY);
	conf.reject = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_atomic, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_boot_record, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_first_boot, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activate_confirm, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_activate_rollback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_offer_policy, setup,
		    teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
