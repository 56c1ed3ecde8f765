/*
 * uplink_manifest.c: parse and check a cloud manifest (docs/manifest.md).
 *
 * The manifest is checked whole before anything uses it: every field
 * typed, every string bounded by the fixed arrays it lands in (too long
 * is an error, never a silent truncation), every reference resolved.
 * The first problem found is the cause, naming the item it is in, e.g.
 *   package 'fw-1.2': sha256: not 64 hex digits
 * Unknown members are errors too: a manifest is a signed document of
 * format version 1, and a misspelt optional member ("base_verison")
 * must not pass as absent.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "uplink_internal.h"

#define MANIFEST_FORMAT		1
/* Deps one package may carry: the fixed arrays of struct cache_pkg. */
#define PKG_MAX_DEPS		4
/* UP sizes are u32 (docs/up-protocol.md: OFFER). */
#define PKG_SIZE_MAX		UINT32_MAX

struct mctx {
	char		*cause;
	char		 where[128];	/* "package 'x'" or "" */
};

static int	 mfail(struct mctx *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));

static int
mfail(struct mctx *m, const char *fmt, ...)
{
	va_list		 ap;
	char		 msg[384];

	if (m->cause != NULL)
		return (-1);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m->where[0] != '\0') {
		if (asprintf(&m->cause, "%s: %s", m->where, msg) == -1)
			m->cause = NULL;
	} else
		m->cause = strdup(msg);
	return (-1);
}

/* Printable identifiers: what ids, names and versions may contain. */
static int
ident_char(int c, int ver)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return (1);
	if (c == '.' || c == '_' || c == '-' || c == '+')
		return (1);
	if (ver && c == '~')
		return (1);
	return (0);
}

enum skind {
	S_ID,		/* ids, component and hardware names, tags */
	S_VER,		/* versions: also '~' */
	S_URL,		/* relative URL path */
	S_TEXT		/* informational: printable ASCII */
};

/*
 * Copies string member `key' of `o' into dst[max + 1].  Returns 1 when
 * copied, 0 when absent and optional, -1 on error.
 */
static int
get_str(struct mctx *m, json_t *o, const char *key, char *dst, size_t max,
    enum skind kind, int required)
{
	json_t		*v;
	const char	*s;
	size_t		 len, i;

	dst[0] = '\0';
	if ((v = json_object_get(o, key)) == NULL) {
		if (required)
			return (mfail(m, "%s: missing", key));
		return (0);
	}
	if (!json_is_string(v))
		return (mfail(m, "%s: not a string", key));
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0)
		return (mfail(m, "%s: empty", key));
	if (len > max)
		return (mfail(m, "%s: longer than %zu bytes", key, max));
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		switch (kind) {
		case S_ID:
		case S_VER:
			if (!ident_char(c, kind == S_VER))
				return (mfail(m, "%s: character %zu is not "
				    "one of A-Z a-z 0-9 . _ - +%s", key, i + 1,
				    kind == S_VER ? " ~" : ""));
			break;
		case S_URL:
			if (!ident_char(c, 1) && c != '/')
				return (mfail(m, "%s: character %zu is not "
				    "allowed in a package path", key, i + 1));
			break;
		case S_TEXT:
			if (c < 0x20 || c > 0x7e)
				return (mfail(m, "%s: not printable ASCII",
				    key));
			break;
		}
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
	return (1);
}

/* A relative path under the base URL: no "", "." or ".." segment. */
static int
check_url(struct mctx *m, const char *url)
{
	const char	*p, *seg;
	size_t		 n;

	p = url;
	for (;;) {
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (n == 0)
			return (mfail(m, "url: must be a relative path "
			    "without empty segments"));
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return (mfail(m, "url: '.' and '..' are not allowed"));
		if (*p == '\0')
			break;
		p++;
	}
	return (0);
}

/* Integer member in [min, max]; 1 copied, 0 absent and optional, -1. */
static int
get_int(struct mctx *m, json_t *o, const char *key, int64_t min, int64_t max,
    int64_t *out, int required)
{
	json_t		*v;
	json_int_t	 i;

	if ((v = json_object_get(o, key)) == NULL) {
		if (required)
			return (mfail(m, "%s: missing", key));
		return (0);
	}
	if (!json_is_integer(v))
		return (mfail(m, "%s: not an integer", key));
	i = json_integer_value(v);
	if (i < min || i > max)
		return (mfail(m, "%s: %lld is out of range [%lld, %lld]", key,
		    (long long)i, (long long)min, (long long)max));
	*out = i;
	return (1);
}

static int
get_sha(struct mctx *m, json_t *o, const char *key, uint8_t out[32],
    int required)
{
	char		 hex[CACHE_HEX_LEN + 2];
	json_t		*v;
	int		 i, hi, lo;

	if ((v = json_object_get(o, key)) == NULL) {
		if (required)
			return (mfail(m, "%s: missing", key));
		return (0);
	}
	if (!json_is_string(v) || json_string_length(v) != CACHE_HEX_LEN)
		return (mfail(m, "%s: not 64 hex digits", key));
	memcpy(hex, json_string_value(v), CACHE_HEX_LEN);
	for (i = 0; i < CACHE_SHA_LEN; i++) {
		hi = hex[2 * i];
		lo = hex[2 * i + 1];
#define HEXVAL(c) ((c) >= '0' && (c) <= '9' ? (c) - '0' :		\
	    (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 :			\
	    (c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10 : -1)
		if (HEXVAL(hi) < 0 || HEXVAL(lo) < 0)
			return (mfail(m, "%s: not 64 hex digits", key));
		out[i] = (uint8_t)(HEXVAL(hi) << 4 | HEXVAL(lo));
#undef HEXVAL
	}
	return (1);
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '+')
		return (62);
	if (c == '/')
		return (63);
	return (-1);
}

int
uplink__b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t		 i, n = 0, pad = 0;
	int		 v[4], k;
	uint32_t	 w;

	if (len == 0 || len % 4 != 0)
		return (-1);
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	if ((len / 4) * 3 - pad > cap)
		return (-1);
	for (i = 0; i < len; i += 4) {
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len &&
			    k >= 4 - (int)pad)
				v[k] = 0;
			else if ((v[k] = b64val((unsigned char)s[i + k])) < 0)
				return (-1);
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[n++] = (uint8_t)(w >> 16);
		if (i + 4 < len || pad < 2)
			out[n++] = (uint8_t)(w >> 8);
		if (i + 4 < len || pad < 1)
			out[n++] = (uint8_t)w;
		/* Canonical only: the bits under the padding are zero. */
		if (i + 4 == len && ((pad == 1 && (v[2] & 0x3) != 0) ||
		    (pad == 2 && (v[1] & 0xf) != 0)))
			return (-1);
	}
	return ((int)n);
}

/* Every member of `o' must be one of the NULL-terminated `keys'. */
static int
check_keys(struct mctx *m, json_t *o, const char *const *keys)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	json_object_foreach(o, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return (mfail(m, "unknown member '%.64s'", k));
	}
	return (0);
}

/* An array member of strings into dst[n][max + 1]; 0 absent is empty. */
static int
get_strs(struct mctx *m, json_t *o, const char *key, size_t nmax,
    char *dst, size_t max, enum skind kind, size_t *count)
{
	json_t		*a, *v, *tmp;
	size_t		 i, j;
	char		 name[48];
	char		*slot;

	*count = 0;
	if ((a = json_object_get(o, key)) == NULL)
		return (0);
	if (!json_is_array(a))
		return (mfail(m, "%s: not an array", key));
	if (json_array_size(a) > nmax)
		return (mfail(m, "%s: more than %zu entries", key, nmax));
	json_array_foreach(a, i, v) {
		snprintf(name, sizeof(name), "%s[%zu]", key, i);
		/* get_str takes an object: wrap the element. */
		if ((tmp = json_object()) == NULL ||
		    json_object_set(tmp, name, v) != 0) {
			json_decref(tmp);
			return (mfail(m, "out of memory"));
		}
		slot = dst + i * (max + 1);
		if (get_str(m, tmp, name, slot, max, kind, 1) != 1) {
			json_decref(tmp);
			return (-1);
		}
		json_decref(tmp);
		for (j = 0; j < i; j++)
			if (strcmp(dst + j * (max + 1), slot) == 0)
				return (mfail(m, "%s: '%s' is listed twice",
				    key, slot));
	}
	*count = json_array_size(a);
	return (0);
}

static const char *const pkg_keys[] = {
	"id", "component", "version", "hw", "kind", "delta_format",
	"base_version", "size", "sha256", "image_size", "image_sha256",
	"url", "deps", "security_version", "allow_downgrade", "up_sig",
	"chunk_size", "chunks", NULL
};

/* A boolean member; 1 copied, 0 absent (then false), -1 on error. */
static int
get_bool(struct mctx *m, json_t *o, const char *key, int *out)
{
	json_t		*v;

	*out = 0;
	if ((v = json_object_get(o, key)) == NULL)
		return (0);
	if (!json_is_boolean(v))
		return (mfail(m, "%s: not true or false", key));
	*out = json_is_true(v);
	return (1);
}

/*
 * The chunk list (cut-through): optional, but both members or neither;
 * exactly ceil(size / chunk_size) hex digests.
 */
static int
parse_chunks(struct mctx *m, json_t *o, const struct cache_pkg *p,
    struct uplink_chunks *ch)
{
	json_t		*a, *v, *tmp;
	int64_t		 cs;
	uint64_t	 want;
	size_t		 i;
	int		 r;

	if ((r = get_int(m, o, "chunk_size", UPLINK_CHUNK_MIN,
	    UPLINK_CHUNK_MAX, &cs, 0)) < 0)
		return (-1);
	a = json_object_get(o, "chunks");
	if (r == 0 && a == NULL)
		return (0);
	if (r == 0)
		return (mfail(m, "chunk_size: missing (required with "
		    "chunks)"));
	if (a == NULL)
		return (mfail(m, "chunks: missing (required with "
		    "chunk_size)"));
	if (!json_is_array(a))
		return (mfail(m, "chunks: not an array"));
	want = (p->size + (uint64_t)cs - 1) / (uint64_t)cs;
	if (json_array_size(a) != want)
		return (mfail(m, "chunks: %zu entries, size %llu in chunks "
		    "of %lld needs %llu", json_array_size(a),
		    (unsigned long long)p->size, (long long)cs,
		    (unsigned long long)want));
	if (want > CACHE_CHUNKS_MAX)
		return (mfail(m, "chunks: more than %u entries",
		    CACHE_CHUNKS_MAX));
	if ((ch->sha = malloc((size_t)want * CACHE_SHA_LEN)) == NULL)
		return (mfail(m, "out of memory"));
	json_array_foreach(a, i, v) {
		char	 name[32];

		snprintf(name, sizeof(name), "chunks[%zu]", i);
		if ((tmp = json_object()) == NULL ||
		    json_object_set(tmp, name, v) != 0) {
			json_decref(tmp);
			return (mfail(m, "out of memory"));
		}
		r = get_sha(m, tmp, name, ch->sha + i * CACHE_SHA_LEN, 1);
		json_decref(tmp);
		if (r != 1)
			return (-1);
	}
	ch->chunk_size = (uint32_t)cs;
	ch->n = (uint32_t)want;
	return (0);
}

static int
parse_pkg(struct mctx *m, json_t *o, size_t idx, struct cache_pkg *p,
    struct uplink_chunks *ch)
{
	char		 kind[16], fmt[16], sig[128];
	json_t		*deps, *d;
	size_t		 i, n;
	int64_t		 v;
	int		 r, len;
	static const char *const dep_keys[] = {
		"component", "min_version", NULL
	};

	snprintf(m->where, sizeof(m->where), "package #%zu", idx + 1);
	if (!json_is_object(o))
		return (mfail(m, "not an object"));
	if (get_str(m, o, "id", p->id, CACHE_ID_MAX, S_ID, 1) != 1)
		return (-1);
	snprintf(m->where, sizeof(m->where), "package '%s'", p->id);
	if (check_keys(m, o, pkg_keys) != 0)
		return (-1);
	if (get_str(m, o, "component", p->component, CACHE_NAME_MAX, S_ID,
	    1) != 1 ||
	    get_str(m, o, "version", p->version, CACHE_VER_MAX, S_VER,
	    1) != 1)
		return (-1);
	if (get_strs(m, o, "hw", CACHE_HW_MAX, &p->hw[0][0], CACHE_NAME_MAX,
	    S_ID, &n) != 0)
		return (-1);
	p->nhw = (int)n;

	if (get_str(m, o, "kind", kind, sizeof(kind) - 1, S_ID, 1) != 1)
		return (-1);
	if (strcmp(kind, "full") == 0)
		p->kind = UP_KIND_FULL;
	else if (strcmp(kind, "delta") == 0)
		p->kind = UP_KIND_DELTA;
	else
		return (mfail(m, "kind: '%s' is not \"full\" or \"delta\"",
		    kind));
	if ((r = get_str(m, o, "delta_format", fmt, sizeof(fmt) - 1, S_ID,
	    0)) < 0)
		return (-1);
	if ((r = get_str(m, o, "base_version", p->base_version,
	    CACHE_VER_MAX, S_VER, 0)) < 0)
		return (-1);
	if (p->kind == UP_KIND_DELTA) {
		if (p->base_version[0] == '\0')
			return (mfail(m, "base_version: missing (required "
			    "for a delta)"));
		if (fmt[0] == '\0')
			return (mfail(m, "delta_format: missing (required "
			    "for a delta)"));
		if (strcmp(fmt, "vcdiff") != 0)
			return (mfail(m, "delta_format: '%s' is not "
			    "\"vcdiff\"", fmt));
		p->delta_format = UP_DELTA_VCDIFF;
		if (strcmp(p->base_version, p->version) == 0)
			return (mfail(m, "base_version: equals version"));
	} else {
		if (fmt[0] != '\0')
			return (mfail(m, "delta_format: only for a delta"));
		if (p->base_version[0] != '\0')
			return (mfail(m, "base_version: only for a delta"));
		p->delta_format = UP_DELTA_NONE;
	}

	/* UP carries sizes as u32: 4 GiB - 1 at most. */
	if (get_int(m, o, "size", 1, PKG_SIZE_MAX, &v, 1) != 1)
		return (-1);
	p->size = (uint64_t)v;
	if (get_sha(m, o, "sha256", p->sha256, 1) != 1)
		return (-1);
	if ((r = get_int(m, o, "image_size", 1, PKG_SIZE_MAX, &v,
	    p->kind == UP_KIND_DELTA)) < 0)
		return (-1);
	p->image_size = r == 1 ? (uint64_t)v : p->size;
	if ((r = get_sha(m, o, "image_sha256", p->image_sha256,
	    p->kind == UP_KIND_DELTA)) < 0)
		return (-1);
	if (r == 0)
		memcpy(p->image_sha256, p->sha256, CACHE_SHA_LEN);
	if (p->kind == UP_KIND_FULL) {
		if (p->image_size != p->size)
			return (mfail(m, "image_size: differs from size for "
			    "a full package"));
		if (memcmp(p->image_sha256, p->sha256, CACHE_SHA_LEN) != 0)
			return (mfail(m, "image_sha256: differs from sha256 "
			    "for a full package"));
	}

	if (get_str(m, o, "url", p->url, CACHE_URL_MAX, S_URL, 1) != 1 ||
	    check_url(m, p->url) != 0)
		return (-1);
	if (parse_chunks(m, o, p, ch) != 0)
		return (-1);

	p->ndeps = 0;
	if ((deps = json_object_get(o, "deps")) != NULL) {
		if (!json_is_array(deps))
			return (mfail(m, "deps: not an array"));
		if (json_array_size(deps) > PKG_MAX_DEPS)
			return (mfail(m, "deps: more than %d entries",
			    PKG_MAX_DEPS));
		json_array_foreach(deps, i, d) {
			snprintf(m->where, sizeof(m->where),
			    "package '%s': deps[%zu]", p->id, i);
			if (!json_is_object(d))
				return (mfail(m, "not an object"));
			if (check_keys(m, d, dep_keys) != 0 ||
			    get_str(m, d, "component", p->dep_component[i],
			    CACHE_NAME_MAX, S_ID, 1) != 1 ||
			    get_str(m, d, "min_version",
			    p->dep_min_version[i], CACHE_VER_MAX, S_VER,
			    1) != 1)
				return (-1);
			if (strcmp(p->dep_component[i], p->component) == 0)
				return (mfail(m, "component: a package cannot "
				    "depend on its own component"));
		}
		p->ndeps = (int)json_array_size(deps);
		snprintf(m->where, sizeof(m->where), "package '%s'", p->id);
	}

	/*
	 * Anti-rollback (docs/up-protocol.md §5.4): both signed in the UP
	 * descriptor.  Absent (a manifest of before): security version 0,
	 * no downgrade, the descriptor's form 1.
	 */
	if ((r = get_int(m, o, "security_version", 0, UINT32_MAX, &v,
	    0)) < 0)
		return (-1);
	p->security_version = r == 1 ? (uint32_t)v : 0;
	if (get_bool(m, o, "allow_downgrade", &p->allow_downgrade) < 0)
		return (-1);

	if (get_str(m, o, "up_sig", sig, sizeof(sig) - 1, S_TEXT, 1) != 1)
		return (-1);
	len = uplink__b64_decode(sig, strlen(sig), p->sig, sizeof(p->sig));
	if (len != 64)
		return (mfail(m, "up_sig: not the base64 of a 64-byte "
		    "Ed25519 signature"));
	p->sig_len = (size_t)len;
	m->where[0] = '\0';
	return (0);
}

static const char *const dep_top_keys[] = {
	"id", "packages", "target", "policy", NULL
};
static const char *const target_keys[] = { "hw", "tags", NULL };

static int
parse_deployment(struct mctx *m, json_t *o, size_t idx,
    const struct uplink_manifest *mf, struct uplink_deployment *d)
{
	json_t		*a, *v, *t, *pol;
	size_t		 i, j, n;
	const char	*pid;

	snprintf(m->where, sizeof(m->where), "deployment #%zu", idx + 1);
	if (!json_is_object(o))
		return (mfail(m, "not an object"));
	if (get_str(m, o, "id", d->id, CACHE_ID_MAX, S_ID, 1) != 1)
		return (-1);
	snprintf(m->where, sizeof(m->where), "deployment '%s'", d->id);
	if (check_keys(m, o, dep_top_keys) != 0)
		return (-1);

	if ((a = json_object_get(o, "packages")) == NULL)
		return (mfail(m, "packages: missing"));
	if (!json_is_array(a) || json_array_size(a) == 0)
		return (mfail(m, "packages: not a non-empty array"));
	if (json_array_size(a) > UPLINK_MAX_DEP_PKGS)
		return (mfail(m, "packages: more than %d entries",
		    UPLINK_MAX_DEP_PKGS));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			return (mfail(m, "packages[%zu]: not a string", i));
		pid = json_string_value(v);
		if (json_string_length(v) > CACHE_ID_MAX ||
		    strlen(pid) != json_string_length(v))
			return (mfail(m, "packages[%zu]: not a package id",
			    i));
		for (j = 0; j < mf->npkgs; j++)
			if (strcmp(mf->pkgs[j].id, pid) == 0)
				break;
		if (j == mf->npkgs)
			return (mfail(m, "packages: unknown package '%s'",
			    pid));
		for (j = 0; j < i; j++)
			if (strcmp(d->pkgs[j], pid) == 0)
				return (mfail(m, "packages: '%s' is listed "
				    "twice", pid));
		memcpy(d->pkgs[i], pid, strlen(pid) + 1);
	}
	d->npkgs = json_array_size(a);

	if ((t = json_object_get(o, "target")) != NULL) {
		if (!json_is_object(t))
			return (mfail(m, "target: not an object"));
		snprintf(m->where, sizeof(m->where), "deployment '%s': target",
		    d->id);
		if (check_keys(m, t, target_keys) != 0)
			return (-1);
		if (get_strs(m, t, "hw", CACHE_HW_MAX, &d->hw[0][0],
		    CACHE_NAME_MAX, S_ID, &n) != 0)
			return (-1);
		d->nhw = n;
		if (get_strs(m, t, "tags", UPLINK_MAX_TAGS, &d->tags[0][0],
		    CACHE_NAME_MAX, S_ID, &n) != 0)
			return (-1);
		d->ntags = n;
		snprintf(m->where, sizeof(m->where), "deployment '%s'",
		    d->id);
	}

	/* The policy is the scheduler's: kept as compact JSON. */
	if ((pol = json_object_get(o, "policy")) != NULL) {
		if (!json_is_object(pol))
			return (mfail(m, "policy: not an object"));
		d->policy_json = json_dumps(pol, JSON_COMPACT);
	} else
		d->policy_json = strdup("{}");
	if (d->policy_json == NULL)
		return (mfail(m, "policy: out of memory"));
	m->where[0] = '\0';
	return (0);
}

static const char *const top_keys[] = {
	"version", "serial", "issued", "packages", "deployments", NULL
};

struct uplink_manifest *
uplink_manifest_parse(const char *json, size_t len, char **cause)
{
	struct mctx	 m;
	struct uplink_manifest *mf = NULL;
	json_t		*root = NULL, *a, *v;
	json_error_t	 jerr;
	int64_t		 n;
	size_t		 i, j;

	memset(&m, 0, sizeof(m));
	if (len > UPLINK_MANIFEST_MAX) {
		mfail(&m, "manifest: larger than %d bytes",
		    UPLINK_MANIFEST_MAX);
		goto fail;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		mfail(&m, "manifest: JSON error at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		mfail(&m, "manifest: not a JSON object");
		goto fail;
	}
	if ((mf = calloc(1, sizeof(*mf))) == NULL) {
		mfail(&m, "out of memory");
		goto fail;
	}
	snprintf(m.where, sizeof(m.where), "manifest");
	if (check_keys(&m, root, top_keys) != 0)
		goto fail;
	if (get_int(&m, root, "version", 0, INT64_MAX, &n, 1) != 1)
		goto fail;
	if (n != MANIFEST_FORMAT) {
		mfail(&m, "version: format %lld is not supported (only %d)",
		    (long long)n, MANIFEST_FORMAT);
		goto fail;
	}
	if (get_int(&m, root, "serial", 1, INT64_MAX, &mf->serial, 1) != 1)
		goto fail;
	if (get_str(&m, root, "issued", mf->issued, sizeof(mf->issued) - 1,
	    S_TEXT, 1) != 1)
		goto fail;

	if ((a = json_object_get(root, "packages")) == NULL ||
	    !json_is_array(a)) {
		mfail(&m, "packages: missing or not an array");
		goto fail;
	}
	if (json_array_size(a) > UPLINK_MAX_PACKAGES) {
		mfail(&m, "packages: more than %d entries",
		    UPLINK_MAX_PACKAGES);
		goto fail;
	}
	if (json_array_size(a) > 0 &&
	    ((mf->pkgs = calloc(json_array_size(a), sizeof(*mf->pkgs))) ==
	    NULL || (mf->chunks = calloc(json_array_size(a),
	    sizeof(*mf->chunks))) == NULL)) {
		mfail(&m, "out of memory");
		goto fail;
	}
	json_array_foreach(a, i, v) {
		struct cache_pkg *p = &mf->pkgs[i];

		mf->npkgs = i + 1;	/* chunks[i] is freed on failure */
		if (parse_pkg(&m, v, i, p, &mf->chunks[i]) != 0)
			goto fail;
		p->manifest_serial = mf->serial;
		for (j = 0; j < i; j++) {
			snprintf(m.where, sizeof(m.where), "package '%s'",
			    p->id);
			if (strcmp(mf->pkgs[j].id, p->id) == 0) {
				mfail(&m, "id: listed twice");
				goto fail;
			}
			if (memcmp(mf->pkgs[j].sha256, p->sha256,
			    CACHE_SHA_LEN) == 0) {
				mfail(&m, "sha256: same content as package "
				    "'%s'", mf->pkgs[j].id);
				goto fail;
			}
			m.where[0] = '\0';
		}
	}

	snprintf(m.where, sizeof(m.where), "manifest");
	if ((a = json_object_get(root, "deployments")) == NULL)
		a = NULL;
	else if (!json_is_array(a)) {
		mfail(&m, "deployments: not an array");
		goto fail;
	} else if (json_array_size(a) > UPLINK_MAX_DEPLOYMENTS) {
		mfail(&m, "deployments: more than %d entries",
		    UPLINK_MAX_DEPLOYMENTS);
		goto fail;
	}
	if (a != NULL && json_array_size(a) > 0) {
		if ((mf->deps = calloc(json_array_size(a),
		    sizeof(*mf->deps))) == NULL) {
			mfail(&m, "out of memory");
			goto fail;
		}
		json_array_foreach(a, i, v) {
			mf->ndeps = i + 1;
			if (parse_deployment(&m, v, i, mf, &mf->deps[i]) != 0)
				goto fail;
			for (j = 0; j < i; j++)
				if (strcmp(mf->deps[j].id,
				    mf->deps[i].id) == 0) {
					snprintf(m.where, sizeof(m.where),
					    "deployment '%s'", mf->deps[i].id);
					mfail(&m, "id: listed twice");
					goto fail;
				}
		}
	}
	json_decref(root);
	return (mf);

fail:
	json_decref(root);
	uplink_manifest_free(mf);
	if (cause != NULL)
		*cause = m.cause != NULL ? m.cause : strdup("manifest: error");
	else
		free(m.cause);
	return (NULL);
}

void
uplink_manifest_free(struct uplink_manifest *mf)
{
	size_t		 i;

	if (mf == NULL)
		return;
	for (i = 0; i < mf->ndeps; i++)
		free(mf->deps[i].policy_json);
	if (mf->chunks != NULL)
		for (i = 0; i < mf->npkgs; i++)
			free(mf->chunks[i].sha);
	free(mf->chunks);
	free(mf->deps);
	free(mf->pkgs);
	free(mf);
}

int
uplink_pkg_offer(const struct cache_pkg *p, struct up_offer *o)
{
	int		 i;

	memset(o, 0, sizeof(*o));
	if (p->size > UINT32_MAX || p->image_size > UINT32_MAX ||
	    p->nhw < 0 || p->nhw > UP_MAX_HW || p->ndeps < 0 ||
	    p->ndeps > UP_MAX_DEPS || p->sig_len > UP_SIG_MAX)
		return (-1);
	/* The arrays have the same bounds (cache.h: == UP_*_MAX). */
	memcpy(o->component, p->component, sizeof(o->component));
	o->nhw = (uint8_t)p->nhw;
	for (i = 0; i < p->nhw; i++)
		memcpy(o->hw[i], p->hw[i], sizeof(o->hw[i]));
	if (p->kind == UP_KIND_DELTA)
		memcpy(o->from_version, p->base_version,
		    sizeof(o->from_version));
	memcpy(o->to_version, p->version, sizeof(o->to_version));
	o->kind = (uint8_t)p->kind;
	o->delta_format = (uint8_t)p->delta_format;
	o->size = (uint32_t)p->size;
	memcpy(o->sha256, p->sha256, sizeof(o->sha256));
	memcpy(o->image_sha256, p->image_sha256, sizeof(o->image_sha256));
	o->image_size = (uint32_t)p->image_size;
	o->ndeps = (uint8_t)p->ndeps;
	for (i = 0; i < p->ndeps; i++) {
		memcpy(o->deps[i].component, p->dep_component[i],
		    sizeof(o->deps[i].component));
		memcpy(o->deps[i].min_version, p->dep_min_version[i],
		    sizeof(o->deps[i].min_version));
	}
	o->security_version = p->security_version;
	o->desc_flags = p->allow_downgrade ? UP_DESC_DOWNGRADE : 0;
	if (p->sig_len > 0) {
		o->sig_alg = UP_SIG_ED25519;
		o->sig_len = (uint8_t)p->sig_len;
		memcpy(o->sig, p->sig, p->sig_len);
	}
	return (0);
}
