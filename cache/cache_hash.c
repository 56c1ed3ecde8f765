/*
 * cache_hash.c: SHA-256 (one-shot and streaming), hex, and Ed25519
 * public keys and signature checks, all through OpenSSL 3 EVP.
 *
 * These are the daemon's only hash and signature helpers
 * (ARCHITECTURE.md: "hash/signature helpers live in cache/"): uplink/
 * checks the manifest signature here, the store hashes downloads here.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"

#include "cache.h"
#include "cache_internal.h"

#define CACHE_ED25519_LEN	32
#define CACHE_ED25519_SIGLEN	64

struct cache_sha {
	EVP_MD_CTX	*ctx;
};

struct cache_key {
	EVP_PKEY	*pkey;
};

static void	 cache_hash_broken(const char *)
		    __attribute__((__noreturn__));
static void	 cache_ssl_cause(char **, const char *, const char *);

/*
 * An EVP digest call on SHA-256 only fails when memory runs out or the
 * default provider is missing: a broken invariant, not bad input.  A
 * silently wrong digest would be worse than stopping.
 */
static void
cache_hash_broken(const char *what)
{
	up_logf(UP_LOG_WARN, "cache: %s failed (OpenSSL)", what);
	abort();
}

/*
 * Fills *cause with `what' and the first queued OpenSSL error, then
 * empties the thread's error queue so that no stale error reaches the
 * next, unrelated OpenSSL caller (libevent's TLS code reads it).
 */
static void
cache_ssl_cause(char **cause, const char *path, const char *what)
{
	char		 buf[256];
	unsigned long	 e;

	e = ERR_peek_last_error();
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		if (path != NULL)
			cache__cause(cause, "%s: %s (%s)", path, what, buf);
		else
			cache__cause(cause, "%s (%s)", what, buf);
	} else if (path != NULL)
		cache__cause(cause, "%s: %s", path, what);
	else
		cache__cause(cause, "%s", what);
	ERR_clear_error();
}

void
cache_sha256(const void *buf, size_t len, uint8_t out[CACHE_SHA_LEN])
{
	unsigned int	 n = 0;

	if (buf == NULL)
		buf = "";
	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != CACHE_SHA_LEN)
		cache_hash_broken("EVP_Digest");
}

void
cache_hex(const uint8_t sha[CACHE_SHA_LEN], char out[CACHE_HEX_LEN + 1])
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < CACHE_SHA_LEN; i++) {
		out[2 * i] = digits[sha[i] >> 4];
		out[2 * i + 1] = digits[sha[i] & 0xf];
	}
	out[CACHE_HEX_LEN] = '\0';
}

static int
cache_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return (ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (ch - 'a' + 10);
	if (ch >= 'A' && ch <= 'F')
		return (ch - 'A' + 10);
	return (-1);
}

/*
 * Exactly 64 hex digits and the end of the string: a 63- or 65-digit
 * value is a typo in a manifest or a file name, never a digest.  `sha'
 * is left untouched on error.
 */
int
cache_unhex(const char *s, uint8_t sha[CACHE_SHA_LEN])
{
	uint8_t		 tmp[CACHE_SHA_LEN];
	size_t		 i;
	int		 hi, lo;

	if (s == NULL)
		return (-1);
	for (i = 0; i < CACHE_SHA_LEN; i++) {
		if ((hi = cache_hexval(s[2 * i])) == -1)
			return (-1);
		if ((lo = cache_hexval(s[2 * i + 1])) == -1)
			return (-1);
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	if (s[CACHE_HEX_LEN] != '\0')
		return (-1);
	memcpy(sha, tmp, sizeof tmp);
	return (0);
}

struct cache_sha *
cache_sha_new(void)
{
	struct cache_sha	*s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return (NULL);
	if ((s->ctx = EVP_MD_CTX_new()) == NULL) {
		free(s);
		return (NULL);
	}
	if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
		ERR_clear_error();
		return (NULL);
	}
	return (s);
}

void
cache_sha_update(struct cache_sha *s, const void *buf, size_t len)
{
	if (len == 0)
		return;
	if (EVP_DigestUpdate(s->ctx, buf, len) != 1)
		cache_hash_broken("EVP_DigestUpdate");
}

/* Final digest; the context is then reset, ready for a new message. */
void
cache_sha_final(struct cache_sha *s, uint8_t out[CACHE_SHA_LEN])
{
	unsigned int	 n = 0;

	if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != CACHE_SHA_LEN)
		cache_hash_broken("EVP_DigestFinal_ex");
	if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1)
		cache_hash_broken("EVP_DigestInit_ex");
}

/*
 * dst takes src's state (a checkpoint of a running digest: the cache
 * writer keeps one at each verified chunk boundary).
 */
void
cache_sha_copy(struct cache_sha *dst, const struct cache_sha *src)
{
	if (EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1)
		cache_hash_broken("EVP_MD_CTX_copy_ex");
}

void
cache_sha_free(struct cache_sha *s)
{
	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->ctx);
	free(s);
}

/*
 * Only Ed25519 is accepted: the cloud signs with it (docs/manifest.md,
 * upmanifest genkey) and nodes check the same signature.  An RSA or EC
 * key in the configured file is an operator mistake that must be named,
 * not a signature failure later.
 */
static struct cache_key *
cache_key_wrap(EVP_PKEY *pkey, const char *path, char **cause)
{
	struct cache_key	*k;
	const char		*type;

	if (!EVP_PKEY_is_a(pkey, "ED25519")) {
		type = EVP_PKEY_get0_type_name(pkey);
		cache__cause(cause, "%s: not an Ed25519 public key "
		    "(key type %s)", path, type != NULL ? type : "unknown");
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return (NULL);
	}
	if ((k = calloc(1, sizeof *k)) == NULL) {
		cache__cause(cause, "%s: out of memory", path);
		EVP_PKEY_free(pkey);
		return (NULL);
	}
	k->pkey = pkey;
	return (k);
}

struct cache_key *
cache_key_load(const char *path, char **cause)
{
	BIO		*bio;
	EVP_PKEY	*pkey;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		cache_ssl_cause(cause, path, "cannot open");
		return (NULL);
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		cache_ssl_cause(cause, path,
		    "no PEM public key (SubjectPublicKeyInfo)");
		return (NULL);
	}
	return (cache_key_wrap(pkey, path, cause));
}

struct cache_key *
cache_key_from_raw(const uint8_t raw[32], char **cause)
{
	EVP_PKEY	*pkey;

	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	    CACHE_ED25519_LEN);
	if (pkey == NULL) {
		cache_ssl_cause(cause, NULL, "bad raw Ed25519 public key");
		return (NULL);
	}
	return (cache_key_wrap(pkey, "raw key", cause));
}

void
cache_key_free(struct cache_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int
cache_key_raw(const struct cache_key *k, uint8_t raw[32])
{
	size_t	 len = CACHE_ED25519_LEN;

	if (k == NULL ||
	    EVP_PKEY_get_raw_public_key(k->pkey, raw, &len) != 1 ||
	    len != CACHE_ED25519_LEN) {
		ERR_clear_error();
		return (-1);
	}
	return (0);
}

/*
 * Ed25519 is a one-shot scheme (RFC 8032 §5.1.7): EVP_DigestVerify with
 * a NULL digest, never the Init/Update/Final form.
 */
int
cache_sig_verify(const struct cache_key *k, const void *msg, size_t msglen,
    const uint8_t *sig, size_t siglen, char **cause)
{
	EVP_MD_CTX	*ctx;
	int		 rv;

	if (k == NULL) {
		cache__cause(cause, "no public key");
		return (-1);
	}
	if (sig == NULL || siglen != CACHE_ED25519_SIGLEN) {
		cache__cause(cause, "bad length: Ed25519 signature is %zu "
		    "bytes, expected %d", sig == NULL ? 0 : siglen,
		    CACHE_ED25519_SIGLEN);
		return (-1);
	}
	if (msg == NULL)
		msg = "";
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		cache__cause(cause, "out of memory");
		return (-1);
	}
	rv = -1;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
		cache_ssl_cause(cause, NULL, "cannot start verification");
	else if (EVP_DigestVerify(ctx, sig, siglen, msg, msglen) != 1) {
		cache__cause(cause, "signature does not verify");
		ERR_clear_error();
	} else
		rv = 0;
	EVP_MD_CTX_free(ctx);
	return (rv);
}
