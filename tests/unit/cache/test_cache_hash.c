/*
 * test_cache_hash.c: SHA-256 vectors, hex parsing and Ed25519 keys and
 * signatures (cache_hash.c).  Keys are generated here with OpenSSL and
 * written as PEM into a temporary directory.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cache.h"

struct keys {
	char		 dir[64];
	char		 pub[128];	/* Ed25519 public key, PEM */
	char		 pub2[128];	/* another Ed25519 key */
	char		 ec[128];	/* EC P-256 public key, PEM */
	char		 priv[128];	/* Ed25519 private key, PEM */
	char		 junk[128];	/* not PEM at all */
	EVP_PKEY	*key;
	EVP_PKEY	*key2;
};

static void
write_pub(EVP_PKEY *k, const char *path)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
	struct keys	*k;
	EVP_PKEY	*ec;
	FILE		*f;

	k = calloc(1, sizeof *k);
	assert_non_null(k);
	strcpy(k->dir, "/tmp/ubcache-hash.XXXXXX");
	assert_non_null(mkdtemp(k->dir));
	snprintf(k->pub, sizeof k->pub, "%s/pub.pem", k->dir);
	snprintf(k->pub2, sizeof k->pub2, "%s/pub2.pem", k->dir);
	snprintf(k->ec, sizeof k->ec, "%s/ec.pem", k->dir);
	snprintf(k->priv, sizeof k->priv, "%s/priv.pem", k->dir);
	snprintf(k->junk, sizeof k->junk, "%s/junk.pem", k->dir);

	assert_non_null(k->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(k->key2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	write_pub(k->key, k->pub);
	write_pub(k->key2, k->pub2);
	write_pub(ec, k->ec);
	EVP_PKEY_free(ec);

	assert_non_null(f = fopen(k->priv, "w"));
	assert_int_equal(PEM_write_PrivateKey(f, k->key, NULL, NULL, 0,
	    NULL, NULL), 1);
	fclose(f);
	assert_non_null(f = fopen(k->junk, "w"));
	fputs("-----BEGIN PUBLIC KEY-----\nnot base64 !!\n"
	    "-----END PUBLIC KEY-----\n", f);
	fclose(f);
	*state = k;
	return (0);
}

static int
teardown(void **state)
{
	struct keys	*k = *state;

	unlink(k->pub);
	unlink(k->pub2);
	unlink(k->ec);
	unlink(k->priv);
	unlink(k->junk);
	rmdir(k->dir);
	EVP_PKEY_free(k->key);
	EVP_PKEY_free(k->key2);
	free(k);
	return (0);
}

static void
sign(EVP_PKEY *key, const void *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX	*ctx;
	size_t		 siglen = 64;

	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
	assert_int_equal(siglen, 64);
	EVP_MD_CTX_free(ctx);
}

static void
assert_hex(const uint8_t sha[CACHE_SHA_LEN], const char *want)
{
	char	 hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	assert_string_equal(hex, want);
}

/* FIPS 180-2 appendix B vectors, one-shot and streaming. */
static void
test_sha256_vectors(void **state)
{
	const char		*two = "abcdbcdecdefdefgefghfghighijhijk"
	    "ijkljklmklmnlmnomnopnopq";
	struct cache_sha	*s;
	uint8_t			 out[CACHE_SHA_LEN];
	char			 a[1000];
	size_t			 i;

	cache_sha256("abc", 3, out);
	assert_hex(out, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	cache_sha256("", 0, out);
	assert_hex(out, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");

	assert_non_null(s = cache_sha_new());
	for (i = 0; i < strlen(two); i += 5)
		cache_sha_update(s, two + i,
		    strlen(two) - i < 5 ? strlen(two) - i : 5);
	cache_sha_final(s, out);
	assert_hex(out, "248d6a61d20638b8e5c026930c3e6039"
	    "a33ce45964ff2167f6ecedd419db06c1");

	/* The context is ready again after final: one million 'a'. */
	memset(a, 'a', sizeof a);
	for (i = 0; i < 1000; i++)
		cache_sha_update(s, a, sizeof a);
	cache_sha_final(s, out);
	assert_hex(out, "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	cache_sha_free(s);
	cache_sha_free(NULL);
}

static void
test_hex(void **state)
{
	uint8_t	 sha[CACHE_SHA_LEN], back[CACHE_SHA_LEN];
	uint8_t	 keep[CACHE_SHA_LEN];
	char	 hex[CACHE_HEX_LEN + 1], bad[CACHE_HEX_LEN + 2];
	size_t	 i;

	for (i = 0; i < sizeof sha; i++)
		sha[i] = (uint8_t)(i * 37 + 5);
	cache_hex(sha, hex);
	assert_int_equal(strlen(hex), CACHE_HEX_LEN);
	assert_string_equal(hex, "052a4f74" "99bee308" "2d52779c" "c1e60b30"
	    "557a9fc4" "e90e3358" "7da2c7ec" "11365b80");
	assert_int_equal(cache_unhex(hex, back), 0);
	assert_memory_equal(sha, back, sizeof sha);

	/* Upper case is still hex. */
	for (i = 0; i < CACHE_HEX_LEN; i++)
		bad[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	bad[CACHE_HEX_LEN] = '\0';
	memset(back, 0, sizeof back);
	assert_int_equal(cache_unhex(bad, back), 0);
	assert_memory_equal(sha, back, sizeof sha);

	/* Wrong length, non-hex digits: rejected, output untouched. */
	memset(keep, 0xee, sizeof keep);
	memcpy(back, keep, sizeof back);
	memcpy(bad, hex, sizeof hex);
	bad[CACHE_HEX_LEN - 1] = '\0';
	assert_int_equal(cache_unhex(bad, back), -1);
	memcpy(bad, hex, CACHE_HEX_LEN);
	bad[CACHE_HEX_LEN] = '0';
	bad[CACHE_HEX_LEN + 1] = '\0';
	assert_int_equal(cache_unhex(bad, back), -1);
	memcpy(bad, hex, sizeof hex);
	bad[10] = 'g';
	assert_int_equal(cache_unhex(bad, back), -1);
	bad[10] = ' ';
	assert_int_equal(cache_unhex(bad, back), -1);
	assert_int_equal(cache_unhex("", back), -1);
	assert_int_equal(cache_unhex(NULL, back), -1);
	assert_memory_equal(back, keep, sizeof keep);
}

static void
test_ed25519_verify(void **state)
{
	struct keys		*k = *state;
	struct cache_key	*key, *key2, *raw;
	const char		 msg[] = "package descriptor bytes";
	uint8_t			 sig[64], bad[65], pub[32], got[32];
	char			 tampered[sizeof msg];
	size_t			 len = sizeof pub;
	char			*cause = NULL;

	sign(k->key, msg, sizeof msg, sig);
	key = cache_key_load(k->pub, &cause);
	assert_null(cause);
	assert_non_null(key);

	assert_int_equal(cache_sig_verify(key, msg, sizeof msg, sig, 64,
	    &cause), 0);
	assert_null(cause);

	/* Tampered message. */
	memcpy(tampered, msg, sizeof msg);
	tampered[0] ^= 1;
	assert_int_equal(cache_sig_verify(key, tampered, sizeof tampered,
	    sig, 64, &cause), -1);
	assert_string_equal(cause, "signature does not verify");
	free(cause);
	cause = NULL;

	/* Tampered signature. */
	memcpy(bad, sig, 64);
	bad[40] ^= 0x80;
	assert_int_equal(cache_sig_verify(key, msg, sizeof msg, bad, 64,
	    &cause), -1);
	assert_string_equal(cause, "signature does not verify");
	free(cause);
	cause = NULL;

	/* Wrong lengths. */
	memcpy(bad, sig, 64);
	bad[64] = 0;
	assert_int_equal(cache_sig_verify(key, msg, sizeof msg, bad, 65,
	    &cause), -1);
	assert_non_null(strstr(cause, "bad length"));
	free(cause);
	cause = NULL;
	assert_int_equal(cache_sig_verify(key, msg, sizeof msg, sig, 63,
	    &cause), -1);
	assert_non_null(strstr(cause, "bad length"));
	free(cause);
	cause = NULL;

	/* Another key does not verify it. */
	assert_non_null(key2 = cache_key_load(k->pub2, &cause));
	assert_int_equal(cache_sig_verify(key2, msg, sizeof msg, sig, 64,
	    &cause), -1);
	free(cause);
	cause = NULL;

	/* Raw bytes match OpenSSL's, and a key made from them verifies. */
	assert_int_equal(EVP_PKEY_get_raw_public_key(k->key, pub, &len), 1);
	assert_int_equal(cache_key_raw(key, got), 0);
	assert_memory_equal(pub, got, 32);
	assert_non_null(raw = cache_key_from_raw(pub, &cause));
	assert_int_equal(cache_sig_verify(raw, msg, sizeof msg, sig, 64,
	    NULL), 0);
	assert_int_equal(cache_sig_verify(NULL, msg, sizeof msg, sig, 64,
	    &cause), -1);
	free(cause);

	cache_key_free(raw);
	cache_key_free(key2);
	cache_key_free(key);
	cache_key_free(NULL);
}

/* Empty message and a signature over it. */
static void
test_ed25519_empty(void **state)
{
	struct keys		*k = *state;
	struct cache_key	*key;
	uint8_t			 sig[64];

	sign(k->key, "", 0, sig);
	assert_non_null(key = cache_key_load(k->pub, NULL));
	assert_int_equal(cache_sig_verify(key, NULL, 0, sig, 64, NULL), 0);
	assert_int_equal(cache_sig_verify(key, "x", 1, sig, 64, NULL), -1);
	cache_key_free(key);
}

static void
test_key_rejects(void **state)
{
	struct keys	*k = *state;
	char		*cause = NULL;
	char		 missing[160];

	/* An EC P-256 key is named as such. */
	assert_null(cache_key_load(k->ec, &cause));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "not an Ed25519 public key"));
	assert_non_null(strstr(cause, "EC"));
	assert_non_null(strstr(cause, k->ec));
	free(cause);
	cause = NULL;

	/* A private key file is not a public key file. */
	assert_null(cache_key_load(k->priv, &cause));
	assert_non_null(strstr(cause, "no PEM public key"));
	free(cause);
	cause = NULL;

	assert_null(cache_key_load(k->junk, &cause));
	assert_non_null(strstr(cause, "no PEM public key"));
	free(cause);
	cause = NULL;

	snprintf(missing, sizeof missing, "%s/absent.pem", k->dir);
	assert_null(cache_key_load(missing, &cause));
	assert_non_null(strstr(cause, "cannot open"));
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_ed25519_verify),
		cmocka_unit_test(test_ed25519_empty),
		cmocka_unit_test(test_key_rejects),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
