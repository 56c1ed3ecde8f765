/*
 * test_uplink_manifest.c: uplink_manifest_parse on a good manifest and on
 * one bad variant per rule (docs/manifest.md), the strict base64 decoder
 * and uplink_pkg_offer (the fields the cloud signs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "uplink_internal.h"

#define SHA_A	"00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"
#define SHA_B	"ffeeddccbbaa99887766554433221100" \
		"ffeeddccbbaa99887766554433221100"
#define SHA_C	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
/* base64 of 64 bytes 0x00..0x3f */
#define SIG64	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp" \
		"KissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

static const char good[] =
"{\"version\":1,\"serial\":7,\"issued\":\"2026-11-22T01:02:03Z\","
" \"packages\":["
"  {\"id\":\"fw-1.2\",\"component\":\"fw\",\"version\":\"1.2.0\","
"   \"hw\":[\"sensor-v1\",\"sensor-v2\"],\"kind\":\"full\","
"   \"size\":1000,\"sha256\":\"" SHA_A "\","
"   \"image_size\":1000,\"image_sha256\":\"" SHA_A "\","
"   \"url\":\"packages/fw-1.2.bin\","
"   \"deps\":[{\"component\":\"boot\",\"min_version\":\"2.0\"}],"
"   \"chunk_size\":4096,\"chunks\":[\"" SHA_C "\"],"
"   \"up_sig\":\"" SIG64 "\"},"
"  {\"id\":\"fw-1.2-d\",\"component\":\"fw\",\"version\":\"1.2.0\","
"   \"kind\":\"delta\",\"delta_format\":\"vcdiff\","
"   \"base_version\":\"1.1.0\",\"size\":99,\"sha256\":\"" SHA_B "\","
"   \"image_size\":1000,\"image_sha256\":\"" SHA_A "\","
"   \"url\":\"packages/fw-1.1-1.2.vcdiff\",\"up_sig\":\"" SIG64 "\"}"
" ],"
" \"deployments\":["
"  {\"id\":\"d1\",\"packages\":[\"fw-1.2\",\"fw-1.2-d\"],"
"   \"target\":{\"hw\":[\"sensor-v1\"],\"tags\":[\"lab\",\"north\"]},"
"   \"policy\":{\"stages\":[10, 100],\"window\":\"night\"}},"
"  {\"id\":\"d2\",\"packages\":[\"fw-1.2\"]}"
" ]}";

static void
test_good(void **state)
{
	struct uplink_manifest *mf;
	const struct cache_pkg *p;
	char		*cause = NULL;
	uint8_t		 sha_a[32];
	int		 i;

	(void)state;
	mf = uplink_manifest_parse(good, strlen(good), &cause);
	if (mf == NULL)
		fail_msg("good manifest rejected: %s", cause);
	assert_int_equal(mf->serial, 7);
	assert_string_equal(mf->issued, "2026-11-22T01:02:03Z");
	assert_int_equal(mf->npkgs, 2);
	p = &mf->pkgs[0];
	assert_string_equal(p->id, "fw-1.2");
	assert_string_equal(p->component, "fw");
	assert_string_equal(p->version, "1.2.0");
	assert_int_equal(p->nhw, 2);
	assert_string_equal(p->hw[1], "sensor-v2");
	assert_int_equal(p->kind, UP_KIND_FULL);
	assert_int_equal(p->delta_format, UP_DELTA_NONE);
	assert_string_equal(p->base_version, "");
	assert_int_equal(p->size, 1000);
	for (i = 0; i < 32; i++)
		sha_a[i] = (uint8_t)((i % 16) * 0x11);
	assert_memory_equal(p->sha256, sha_a, 32);
	assert_memory_equal(p->image_sha256, sha_a, 32);
	assert_int_equal(p->image_size, 1000);
	assert_string_equal(p->url, "packages/fw-1.2.bin");
	assert_int_equal(p->ndeps, 1);
	assert_string_equal(p->dep_component[0], "boot");
	assert_string_equal(p->dep_min_version[0], "2.0");
	assert_int_equal(p->sig_len, 64);
	for (i = 0; i < 64; i++)
		assert_int_equal(p->sig[i], i);
	assert_int_equal(p->manifest_serial, 7);
	/* The chunk list (cut-through); the delta has none. */
	assert_non_null(mf->chunks);
	assert_int_equal(mf->chunks[0].chunk_size, 4096);
	assert_int_equal(mf->chunks[0].n, 1);
	assert_int_equal(mf->chunks[0].sha[0], 0x01);
	assert_int_equal(mf->chunks[0].sha[31], 0xef);
	assert_int_equal(mf->chunks[1].n, 0);
	assert_null(mf->chunks[1].sha);

	p = &mf->pkgs[1];
	assert_int_equal(p->kind, UP_KIND_DELTA);
	assert_int_equal(p->delta_format, UP_DELTA_VCDIFF);
	assert_string_equal(p->base_version, "1.1.0");
	assert_int_equal(p->nhw, 0);
	assert_int_equal(p->size, 99);
	assert_int_equal(p->image_size, 1000);
	assert_memory_equal(p->image_sha256, sha_a, 32);

	assert_int_equal(mf->ndeps, 2);
	assert_string_equal(mf->deps[0].id, "d1");
	assert_int_equal(mf->deps[0].npkgs, 2);
	assert_string_equal(mf->deps[0].pkgs[1], "fw-1.2-d");
	assert_int_equal(mf->deps[0].nhw, 1);
	assert_int_equal(mf->deps[0].ntags, 2);
	assert_string_equal(mf->deps[0].tags[1], "north");
	assert_string_equal(mf->deps[0].policy_json,
	    "{\"stages\":[10,100],\"window\":\"night\"}");
	assert_string_equal(mf->deps[1].policy_json, "{}");
	assert_int_equal(mf->deps[1].nhw, 0);
	uplink_manifest_free(mf);
	uplink_manifest_free(NULL);
}

/*
 * One bad variant: a JSON patch applied to `good' ("set" a member at a
 * path to a JSON value, or "del" it) and the text the cause must hold.
 */
struct bad {
	const char	*path;	/* "packages.0.sha256", "" = root */
	const char	*value;	/* JSON, or NULL to delete */
	const char	*cause;
};

static json_t *
walk(json_t *root, const char *path, char *last, size_t lastsz)
{
	char		 buf[256], *tok, *next, *save = NULL;
	json_t		*cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	tok = strtok_r(buf, ".", &save);
	while (tok != NULL) {
		next = strtok_r(NULL, ".", &save);
		if (next == NULL) {
			snprintf(last, lastsz, "%s", tok);
			return (cur);
		}
		if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(tok, NULL, 10));
		else
			cur = json_object_get(cur, tok);
		assert_non_null(cur);
		tok = next;
	}
	return (NULL);
}

static void
check_bad(const struct bad *b)
{
	json_t		*root, *parent, *v;
	json_error_t	 jerr;
	char		 last[64], *text, *cause = NULL;
	struct uplink_manifest *mf;

	root = json_loads(good, 0, &jerr);
	assert_non_null(root);
	parent = walk(root, b->path, last, sizeof(last));
	assert_non_null(parent);
	if (b->value == NULL) {
		if (json_is_array(parent))
			json_array_remove(parent, strtoul(last, NULL, 10));
		else
			json_object_del(parent, last);
	} else {
		v = json_loads(b->value, JSON_DECODE_ANY, &jerr);
		if (v == NULL)
			fail_msg("bad test value %s: %s", b->value, jerr.text);
		if (json_is_array(parent))
			json_array_set_new(parent, strtoul(last, NULL, 10), v);
		else
			json_object_set_new(parent, last, v);
	}
	text = json_dumps(root, 0);
	json_decref(root);
	mf = uplink_manifest_parse(text, strlen(text), &cause);
	if (mf != NULL)
		fail_msg("accepted %s = %s", b->path, b->value);
	assert_non_null(cause);
	if (strstr(cause, b->cause) == NULL)
		fail_msg("%s = %s: cause \"%s\" lacks \"%s\"", b->path,
		    b->value, cause, b->cause);
	free(cause);
	free(text);
}

static const struct bad bads[] = {
	{ "serial", NULL, "manifest: serial: missing" },
	{ "serial", "0", "serial: 0 is out of range" },
	{ "serial", "\"7\"", "serial: not an integer" },
	{ "serial", "7.5", "serial: not an integer" },
	{ "version", "2", "version: format 2 is not supported" },
	{ "version", NULL, "version: missing" },
	{ "issued", NULL, "issued: missing" },
	{ "issued", "\"2026-11-22T01:02:03.123456789+01:00xx\"",
	    "issued: longer than 31" },
	{ "extra", "1", "unknown member 'extra'" },
	{ "packages", NULL, "packages: missing" },
	{ "packages", "{}", "packages: missing or not an array" },
	{ "packages.0", "[]", "package #1: not an object" },
	{ "packages.0.id", NULL, "package #1: id: missing" },
	{ "packages.0.id", "\"\"", "id: empty" },
	{ "packages.0.id", "\"" "0123456789012345678901234567890123456789"
	    "012345678901234567890123" "\"", "id: longer than 63 bytes" },
	{ "packages.0.id", "\"fw 1.2\"", "id: character 3" },
	{ "packages.0.sha256", "\"0011\"",
	    "package 'fw-1.2': sha256: not 64 hex digits" },
	{ "packages.0.sha256", "\"" "zz112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff" "\"",
	    "package 'fw-1.2': sha256: not 64 hex digits" },
	{ "packages.0.sha256", NULL, "package 'fw-1.2': sha256: missing" },
	{ "packages.1.id", "\"fw-1.2\"", "package 'fw-1.2': id: listed twice" },
	{ "packages.1.sha256", "\"" SHA_A "\"", "same content as package" },
	{ "packages.0.component", "\"0123456789012345678901234567890123\"",
	    "package 'fw-1.2': component: longer than 31 bytes" },
	{ "packages.0.component", "7", "component: not a string" },
	{ "packages.0.version", "\"01234567890123456789012345678901\"",
	    "version: longer than 31 bytes" },
	{ "packages.0.hw", "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
	    "hw: more than 4 entries" },
	{ "packages.0.hw", "[\"a\",\"a\"]", "'a' is listed twice" },
	{ "packages.0.hw", "[\"a\",3]", "hw[1]: not a string" },
	{ "packages.0.hw", "\"a\"", "hw: not an array" },
	{ "packages.0.kind", "\"patch\"", "kind: 'patch' is not" },
	{ "packages.0.kind", NULL, "kind: missing" },
	{ "packages.0.base_version", "\"1.0\"",
	    "base_version: only for a delta" },
	{ "packages.0.delta_format", "\"vcdiff\"",
	    "delta_format: only for a delta" },
	{ "packages.1.base_version", NULL,
	    "package 'fw-1.2-d': base_version: missing" },
	{ "packages.1.base_version", "\"1.2.0\"",
	    "base_version: equals version" },
	{ "packages.1.delta_format", NULL, "delta_format: missing" },
	{ "packages.1.delta_format", "\"bsdiff\"", "is not \"vcdiff\"" },
	{ "packages.1.image_size", NULL, "image_size: missing" },
	{ "packages.1.image_sha256", NULL, "image_sha256: missing" },
	{ "packages.0.image_size", "1001", "image_size: differs from size" },
	{ "packages.0.image_sha256", "\"" SHA_C "\"",
	    "image_sha256: differs from sha256" },
	{ "packages.0.size", "4294967296",
	    "size: 4294967296 is out of range" },
	{ "packages.0.size", "0", "size: 0 is out of range" },
	{ "packages.0.size", "-5", "size: -5 is out of range" },
	{ "packages.0.size", "1e3", "size: not an integer" },
	{ "packages.0.url", NULL, "url: missing" },
	{ "packages.0.url", "\"../etc/passwd\"", "'.' and '..'" },
	{ "packages.0.url", "\"a/./b\"", "'.' and '..'" },
	{ "packages.0.url", "\"/abs/path\"", "empty segments" },
	{ "packages.0.url", "\"a//b\"", "empty segments" },
	{ "packages.0.url", "\"a/b/\"", "empty segments" },
	{ "packages.0.url", "\"a b\"", "url: character 2" },
	{ "packages.0.url", "\"a?x=1\"", "url: character 2" },
	{ "packages.0.deps", "{}", "deps: not an array" },
	{ "packages.0.deps", "[{\"component\":\"a\",\"min_version\":\"1\"},"
	    "{\"component\":\"b\",\"min_version\":\"1\"},"
	    "{\"component\":\"c\",\"min_version\":\"1\"},"
	    "{\"component\":\"d\",\"min_version\":\"1\"},"
	    "{\"component\":\"e\",\"min_version\":\"1\"}]",
	    "deps: more than 4 entries" },
	{ "packages.0.deps.0.min_version", NULL,
	    "package 'fw-1.2': deps[0]: min_version: missing" },
	{ "packages.0.deps.0.x", "1", "deps[0]: unknown member 'x'" },
	{ "packages.0.deps.0.component", "\"fw\"", "its own component" },
	{ "packages.0.security_version", "-1",
	    "package 'fw-1.2': security_version: -1 is out of range" },
	{ "packages.0.security_version", "4294967296",
	    "security_version: 4294967296 is out of range" },
	{ "packages.0.security_version", "\"3\"",
	    "security_version: not an integer" },
	{ "packages.0.allow_downgrade", "1",
	    "package 'fw-1.2': allow_downgrade: not true or false" },
	{ "packages.0.allow_downgrade", "\"yes\"",
	    "allow_downgrade: not true or false" },
	{ "packages.0.up_sig", NULL, "up_sig: missing" },
	{ "packages.0.up_sig", "\"AAAA\"", "up_sig: not the base64" },
	{ "packages.0.up_sig", "\"!!!!\"", "up_sig: not the base64" },
	{ "packages.0.base_verison", "\"1.0\"",
	    "package 'fw-1.2': unknown member 'base_verison'" },
	{ "packages.0.chunks", NULL,
	    "package 'fw-1.2': chunks: missing (required with chunk_size)" },
	{ "packages.0.chunk_size", NULL,
	    "chunk_size: missing (required with chunks)" },
	{ "packages.0.chunk_size", "100", "chunk_size: 100 is out of range" },
	{ "packages.0.chunk_size", "\"4096\"", "chunk_size: not an integer" },
	{ "packages.0.chunk_size", "512", "chunk_size: 512 is out of range" },
	{ "packages.0.chunks", "\"" SHA_C "\"", "chunks: not an array" },
	{ "packages.0.chunks", "[]",
	    "chunks: 0 entries, size 1000 in chunks of 4096 needs 1" },
	{ "packages.0.chunks", "[\"" SHA_C "\",\"" SHA_A "\"]",
	    "chunks: 2 entries" },
	{ "packages.0.chunks.0", "\"0011\"",
	    "package 'fw-1.2': chunks[0]: not 64 hex digits" },
	{ "packages.0.chunks.0", "7", "chunks[0]: not 64 hex digits" },
	{ "packages.1.chunk_size", "4096", "chunks: missing" },
	{ "deployments", "{}", "deployments: not an array" },
	{ "deployments.0.packages.1", "\"nope\"",
	    "deployment 'd1': packages: unknown package 'nope'" },
	{ "deployments.0.packages.1", "\"fw-1.2\"",
	    "deployment 'd1': packages: 'fw-1.2' is listed twice" },
	{ "deployments.0.packages", "[]", "packages: not a non-empty array" },
	{ "deployments.0.packages", NULL,
	    "deployment 'd1': packages: missing" },
	{ "deployments.1.id", "\"d1\"", "deployment 'd1': id: listed twice" },
	{ "deployments.1.id", NULL, "deployment #2: id: missing" },
	{ "deployments.0.policy", "[1]", "policy: not an object" },
	{ "deployments.0.target", "[]", "target: not an object" },
	{ "deployments.0.target.tags", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
	    "\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\","
	    "\"16\",\"17\"]", "tags: more than 16 entries" },
	{ "deployments.0.target.groups", "[]",
	    "deployment 'd1': target: unknown member 'groups'" },
	{ "deployments.0.target.hw.0", "\"" "0123456789012345678901234567890"
	    "12" "\"", "hw[0]: longer than 31 bytes" },
};

static void
test_bad(void **state)
{
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_bad(&bads[i]);
}

static void
test_not_json(void **state)
{
	static const char *const texts[] = {
		"", "[]", "{", "{\"version\":1,\"version\":1}", "null",
		"{\"version\":1} trailing"
	};
	char		*cause;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cause = NULL;
		assert_null(uplink_manifest_parse(texts[i], strlen(texts[i]),
		    &cause));
		assert_non_null(cause);
		assert_non_null(strstr(cause, "manifest"));
		free(cause);
	}
	/* An embedded NUL is not hidden by the length. */
	cause = NULL;
	assert_null(uplink_manifest_parse(good, sizeof(good), &cause));
	free(cause);
	/* NULL cause is allowed. */
	assert_null(uplink_manifest_parse("{}", 2, NULL));
}

/* Boundaries that must pass: 4 GiB - 1, exact-length strings, no hw. */
static void
test_limits_ok(void **state)
{
	json_t		*root, *p;
	char		*text, *cause = NULL;
	struct uplink_manifest *mf;

	(void)state;
	root = json_loads(good, 0, NULL);
	p = json_array_get(json_object_get(root, "packages"), 0);
	json_object_set_new(p, "size", json_integer(4294967295LL));
	json_object_set_new(p, "image_size", json_integer(4294967295LL));
	json_object_set_new(p, "component",
	    json_string("0123456789012345678901234567890"));
	json_object_del(p, "hw");
	json_object_del(p, "deps");
	json_object_del(p, "chunk_size");
	json_object_del(p, "chunks");
	json_object_del(root, "deployments");
	text = json_dumps(root, 0);
	json_decref(root);
	mf = uplink_manifest_parse(text, strlen(text), &cause);
	if (mf == NULL)
		fail_msg("rejected: %s", cause);
	assert_int_equal(mf->pkgs[0].size, 4294967295ULL);
	assert_int_equal(strlen(mf->pkgs[0].component), 31);
	assert_int_equal(mf->pkgs[0].nhw, 0);
	assert_int_equal(mf->ndeps, 0);
	uplink_manifest_free(mf);
	free(text);
}

static void
test_b64(void **state)
{
	uint8_t		 out[8];

	(void)state;
	assert_int_equal(uplink__b64_decode("Zm9v", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(uplink__b64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(uplink__b64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(uplink__b64_decode("Zm9vYmFy", 8, out, sizeof(out)),
	    6);
	/* Not canonical, bad characters, bad padding, too long. */
	assert_int_equal(uplink__b64_decode("Zh==", 4, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Zm9=", 4, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Zm9", 3, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Z=9v", 4, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Zm=v", 4, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Zg==Zg==", 8, out, sizeof(out)),
	    -1);
	assert_int_equal(uplink__b64_decode("Zm9v-mFy", 8, out, sizeof(out)),
	    -1);
	assert_int_equal(uplink__b64_decode("", 0, out, sizeof(out)), -1);
	assert_int_equal(uplink__b64_decode("Zm9vYmFyYmF6", 12, out, 8), -1);
}

static void
test_pkg_offer(void **state)
{
	struct uplink_manifest *mf;
	struct up_offer	 o;
	char		*cause = NULL;

	(void)state;
	mf = uplink_manifest_parse(good, strlen(good), &cause);
	assert_non_null(mf);
	assert_int_equal(uplink_pkg_offer(&mf->pkgs[0], &o), 0);
	assert_string_equal(o.component, "fw");
	assert_int_equal(o.nhw, 2);
	assert_string_equal(o.hw[0], "sensor-v1");
	assert_string_equal(o.from_version, "");
	assert_string_equal(o.to_version, "1.2.0");
	assert_int_equal(o.kind, UP_KIND_FULL);
	assert_int_equal(o.size, 1000);
	assert_int_equal(o.image_size, 1000);
	assert_memory_equal(o.sha256, mf->pkgs[0].sha256, 32);
	assert_int_equal(o.ndeps, 1);
	assert_string_equal(o.deps[0].component, "boot");
	assert_string_equal(o.deps[0].min_version, "2.0");
	assert_int_equal(o.sig_alg, UP_SIG_ED25519);
	assert_int_equal(o.sig_len, 64);
	assert_memory_equal(o.sig, mf->pkgs[0].sig, 64);
	assert_int_equal(o.block_size, 0);

	assert_int_equal(uplink_pkg_offer(&mf->pkgs[1], &o), 0);
	assert_int_equal(o.kind, UP_KIND_DELTA);
	assert_int_equal(o.delta_format, UP_DELTA_VCDIFF);
	assert_string_equal(o.from_version, "1.1.0");
	assert_int_equal(o.size, 99);
	assert_int_equal(o.image_size, 1000);
	assert_memory_equal(o.image_sha256, mf->pkgs[0].sha256, 32);

	mf->pkgs[0].size = 1ULL << 32;
	assert_int_equal(uplink_pkg_offer(&mf->pkgs[0], &o), -1);
	uplink_manifest_free(mf);
}

/*
 * The anti-rollback fields (docs/manifest.md, docs/up-protocol.md §5.4):
 * absent they mean security version 0 and no downgrade, the descriptor's
 * form 1 (what packages of before were signed over); present, they go
 * into the OFFER and make the descriptor form 2.
 */
static void
test_anti_rollback_fields(void **state)
{
	struct uplink_manifest *mf;
	struct up_offer	 o;
	json_t		*root, *p;
	char		*cause = NULL, *text;
	uint8_t		 desc[UP_DESC_MAX];

	(void)state;
	mf = uplink_manifest_parse(good, strlen(good), &cause);
	assert_non_null(mf);
	assert_int_equal(mf->pkgs[0].security_version, 0);
	assert_int_equal(mf->pkgs[0].allow_downgrade, 0);
	assert_int_equal(uplink_pkg_offer(&mf->pkgs[0], &o), 0);
	assert_int_equal(o.security_version, 0);
	assert_int_equal(o.desc_flags, 0);
	assert_true(up_desc_encode(&o, desc, sizeof(desc)) > 0);
	assert_memory_equal(desc, "UPD1", 4);
	uplink_manifest_free(mf);

	root = json_loads(good, 0, NULL);
	assert_non_null(root);
	p = json_array_get(json_object_get(root, "packages"), 0);
	json_object_set_new(p, "security_version", json_integer(4294967295));
	json_object_set_new(p, "allow_downgrade", json_true());
	p = json_array_get(json_object_get(root, "packages"), 1);
	json_object_set_new(p, "security_version", json_integer(3));
	json_object_set_new(p, "allow_downgrade", json_false());
	text = json_dumps(root, 0);
	json_decref(root);
	mf = uplink_manifest_parse(text, strlen(text), &cause);
	if (mf == NULL)
		fail_msg("rejected: %s", cause);
	free(text);
	assert_int_equal(mf->pkgs[0].security_version, 4294967295u);
	assert_int_equal(mf->pkgs[0].allow_downgrade, 1);
	assert_int_equal(uplink_pkg_offer(&mf->pkgs[0], &o), 0);
	assert_int_equal(o.security_version, 4294967295u);
	assert_int_equal(o.desc_flags, UP_DESC_DOWNGRADE);
	assert_true(up_desc_encode(&o, desc, sizeof(desc)) > 0);
	assert_memory_equal(desc, "UPD2", 4);
	assert_int_equal(uplink_pkg_offer(&mf->pkgs[1], &o), 0);
	assert_int_equal(o.security_version, 3);
	assert_int_equal(o.desc_flags, 0);
	uplink_manifest_free(mf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_limits_ok),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_pkg_offer),
		cmocka_unit_test(test_anti_rollback_fields),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
