/*
 * gen.c - writes the bad-input corpus: signed records that every entry
 * point must reject, each with the reason it must report, and records at
 * the limits that every entry point must accept.
 *
 * Usage: corpus_gen DIR
 * Writes DIR/NAME.rec (must be rejected), DIR/valid/NAME.rec (must be
 * accepted), DIR/setup/NAME.rec (stored before the record that needs it)
 * and DIR/index.tsv with one line per rejected record:
 *   file <TAB> reason (cm_err_name) <TAB> setup file or "-" <TAB> why
 *
 * Every record is built byte by byte here, not with proto/, so that a bug
 * in the encoder cannot hide the same bug in the decoder. Records are
 * signed with the key of the PROTOCOL.md test vectors (seed bytes 0x01 to
 * 0x20) over the domain-separated message, so a record is rejected only
 * for the one defect its name states. Ed25519 signatures are
 * deterministic, so the output is the same on every run.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#define VALUE_MAX (80 * 1024)
#define FIELDS_MAX 20
#define WIRE_MAX (VALUE_MAX * 2)
#define TAGS_GEN 17 /* one over the 16-tag limit */

/* Clip times of the PROTOCOL.md vectors: 2026-12-04T15:47:00Z and the
 * retraction at 16:05. */
#define CLIP_CREATED 1796399220000ULL
#define RETRACT_CREATED 1796400300000ULL
/* 2100-01-01T00:00:00Z: far past any clock skew for decades. */
#define FAR_FUTURE 4102444800000ULL

/* A growing byte string of fixed capacity. */
typedef struct sink {
	uint8_t *p;
	size_t len;
	size_t cap;
} sink;

/* One key and its already encoded value. */
typedef struct field {
	char key[40];
	uint8_t val[VALUE_MAX];
	size_t len;
} field;

/* A body under construction: fields in output order, an optional raw map
 * header in place of the canonical one, and the type name to sign with. */
typedef struct body_draft {
	field f[FIELDS_MAX];
	size_t n;
	uint8_t head[8];
	size_t head_len;
	const char *sign_type;
} body_draft;

static uint8_t g_pk[crypto_sign_PUBLICKEYBYTES];
static uint8_t g_sk[crypto_sign_SECRETKEYBYTES];
static uint8_t g_other_sk[crypto_sign_SECRETKEYBYTES];
static body_draft g_body;
static const char *g_dir;
static FILE *g_index;
static unsigned g_bad, g_valid;

/* ---- msgpack writing ---- */

static void put(sink *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		fprintf(stderr, "corpus_gen: buffer of %zu bytes too small\n",
			s->cap);
		exit(1);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void put_byte(sink *s, uint8_t b)
{
	put(s, &b, 1);
}

static void put_be(sink *s, uint64_t v, unsigned bytes)
{
	for (unsigned i = bytes; i > 0; i--)
		put_byte(s, (uint8_t)(v >> (8 * (i - 1))));
}

/* Writes head byte `h` followed by v in the width that h implies. */
static void put_head(sink *s, uint8_t h, uint64_t v)
{
	unsigned width = 0;

	switch (h) {
	case 0xcc: case 0xd0: case 0xd9: case 0xc4:
		width = 1;
		break;
	case 0xcd: case 0xd1: case 0xda: case 0xc5: case 0xdc: case 0xde:
		width = 2;
		break;
	case 0xce: case 0xd2: case 0xdb: case 0xc6: case 0xdd: case 0xdf:
		width = 4;
		break;
	case 0xcf: case 0xd3:
		width = 8;
		break;
	}
	put_byte(s, h);
	put_be(s, v, width);
}

static void mp_uint(sink *s, uint64_t v)
{
	if (v < 0x80)
		put_byte(s, (uint8_t)v);
	else if (v <= 0xff)
		put_head(s, 0xcc, v);
	else if (v <= 0xffff)
		put_head(s, 0xcd, v);
	else if (v <= 0xffffffffULL)
		put_head(s, 0xce, v);
	else
		put_head(s, 0xcf, v);
}

static void mp_str_head(sink *s, size_t n)
{
	if (n < 32)
		put_byte(s, (uint8_t)(0xa0 | n));
	else if (n <= 0xff)
		put_head(s, 0xd9, n);
	else if (n <= 0xffff)
		put_head(s, 0xda, n);
	else
		put_head(s, 0xdb, n);
}

static void mp_str(sink *s, const void *p, size_t n)
{
	mp_str_head(s, n);
	put(s, p, n);
}

static void mp_bin_head(sink *s, size_t n)
{
	if (n <= 0xff)
		put_head(s, 0xc4, n);
	else if (n <= 0xffff)
		put_head(s, 0xc5, n);
	else
		put_head(s, 0xc6, n);
}

static void mp_bin(sink *s, const void *p, size_t n)
{
	mp_bin_head(s, n);
	put(s, p, n);
}

static void mp_array_head(sink *s, size_t n)
{
	if (n < 16)
		put_byte(s, (uint8_t)(0x90 | n));
	else
		put_head(s, n <= 0xffff ? 0xdc : 0xdd, n);
}

static void mp_map_head(sink *s, size_t n)
{
	if (n < 16)
		put_byte(s, (uint8_t)(0x80 | n));
	else
		put_head(s, n <= 0xffff ? 0xde : 0xdf, n);
}

/* ---- body fields ---- */

static field *find(const char *key)
{
	for (size_t i = 0; i < g_body.n; i++)
		if (strcmp(g_body.f[i].key, key) == 0)
			return &g_body.f[i];
	return NULL;
}

/* Returns a sink over the value of `key`, emptied; adds the key at the
 * end when the body does not have it yet. */
static sink value_of(const char *key)
{
	field *f = find(key);
	sink s;

	if (f == NULL) {
		assert(g_body.n < FIELDS_MAX);
		f = &g_body.f[g_body.n++];
		snprintf(f->key, sizeof(f->key), "%s", key);
	}
	f->len = 0;
	s.p = f->val;
	s.len = 0;
	s.cap = sizeof(f->val);
	return s;
}

static void commit(const char *key, const sink *s)
{
	find(key)->len = s->len;
}

static void set_uint(const char *key, uint64_t v)
{
	sink s = value_of(key);

	mp_uint(&s, v);
	commit(key, &s);
}

static void set_str(const char *key, const void *p, size_t n)
{
	sink s = value_of(key);

	mp_str(&s, p, n);
	commit(key, &s);
}

static void set_text(const char *key, const char *text)
{
	set_str(key, text, strlen(text));
}

static void set_bin(const char *key, const void *p, size_t n)
{
	sink s = value_of(key);

	mp_bin(&s, p, n);
	commit(key, &s);
}

/* Sets the value of `key` to raw bytes given as a hex string. */
static void set_raw_hex(const char *key, const char *hex)
{
	sink s = value_of(key);
	uint8_t b;

	for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
		if (sscanf(hex + i, "%2hhx", &b) != 1)
			abort();
		put_byte(&s, b);
	}
	commit(key, &s);
}

static void drop(const char *key)
{
	field *f = find(key);

	assert(f != NULL);
	memmove(f, f + 1, (size_t)(&g_body.f[g_body.n] - (f + 1)) * sizeof(*f));
	g_body.n--;
}

static int field_compare(const void *a, const void *b)
{
	const field *x = a, *y = b;
	size_t nx = strlen(x->key), ny = strlen(y->key);
	int c = memcmp(x->key, y->key, nx < ny ? nx : ny);

	if (c != 0)
		return c;
	return nx < ny ? -1 : nx > ny;
}

static void sort_fields(void)
{
	qsort(g_body.f, g_body.n, sizeof(field), field_compare);
}

static void swap_fields(const char *a, const char *b)
{
	field *x = find(a), *y = find(b);
	static field tmp;

	tmp = *x;
	*x = *y;
	*y = tmp;
}

/* Writes one media reference map in canonical form. */
static void media_ref(sink *s, const uint8_t hash[32], uint64_t size,
		      const char *type)
{
	mp_map_head(s, 3);
	mp_str(s, "hash", 4);
	mp_bin(s, hash, 32);
	mp_str(s, "size", 4);
	mp_uint(s, size);
	mp_str(s, "type", 4);
	mp_str(s, type, strlen(type));
}

static const uint8_t media_mp4[32] = {
	0x86, 0x6c, 0xd2, 0xb3, 0xd1, 0x7b, 0xa0, 0x28, 0x86, 0x92, 0xac,
	0x14, 0xf7, 0x6c, 0x27, 0xc4, 0x21, 0x5e, 0x67, 0x93, 0xd1, 0xa1,
	0x4a, 0x61, 0x09, 0x30, 0xe4, 0x7b, 0x31, 0x38, 0xf0, 0x9d,
};
static const uint8_t media_abc[32] = {
	0x37, 0x5f, 0xf9, 0x6f, 0xd6, 0xec, 0xad, 0x7c, 0x67, 0x15, 0x7a,
	0x43, 0x45, 0x98, 0x0a, 0x97, 0x6a, 0xf7, 0x07, 0x0a, 0x27, 0xc6,
	0x87, 0x74, 0x41, 0xf1, 0xa0, 0x81, 0x1e, 0xed, 0x75, 0x5f,
};

/* Sets `media` to n references, the first two those of the vector clip. */
static void set_media(size_t n, const char *type0)
{
	sink s = value_of("media");

	mp_array_head(&s, n);
	for (size_t i = 0; i < n; i++)
		media_ref(&s, i % 2 ? media_abc : media_mp4,
			  i % 2 ? 3 : 524288,
			  i == 0 ? type0 : (i % 2 ? "image/jpeg" : "video/mp4"));
	commit("media", &s);
}

/* Sets `tags` to n strings given as an array of C strings. */
static void set_tags(const char *const *tags, size_t n)
{
	sink s = value_of("tags");

	mp_array_head(&s, n);
	for (size_t i = 0; i < n; i++)
		mp_str(&s, tags[i], strlen(tags[i]));
	commit("tags", &s);
}

static void reset(const char *sign_type)
{
	g_body.n = 0;
	g_body.head_len = 0;
	g_body.sign_type = sign_type;
}

/* The clip of the PROTOCOL.md test vectors, field for field. */
static void base_clip(void)
{
	static const char *const tags[] = { "blender", "kitchen" };

	reset("clip");
	set_bin("author", g_pk, sizeof(g_pk));
	set_uint("created", CLIP_CREATED);
	set_text("lang", "en");
	set_media(2, "video/mp4");
	set_text("product", "gtin:2000000001012");
	set_uint("rating", 4);
	set_tags(tags, 2);
	set_text("text", "Crushed ice in ten seconds \xe2\x80\x94 quieter "
			 "than my old one.\nThe lid is a bit stiff.");
	set_text("title", "Countertop blender, first week");
	set_text("type", "clip");
	set_uint("v", 1);
}

static void vector_clip_id(uint8_t id[32]);

static void base_retract(void)
{
	uint8_t target[32];

	vector_clip_id(target);
	reset("retract");
	set_bin("author", g_pk, sizeof(g_pk));
	set_uint("created", RETRACT_CREATED);
	set_bin("target", target, sizeof(target));
	set_text("type", "retract");
	set_uint("v", 1);
}

static void base_profile(void)
{
	reset("profile");
	set_bin("author", g_pk, sizeof(g_pk));
	set_text("bio", "Kitchen gadgets, unboxed.\nHonest takes, no "
			"sponsors.");
	set_uint("created", 1796398200000ULL);
	set_text("name", "Ada Reviews");
	set_text("type", "profile");
	set_uint("v", 1);
}

/* ---- serialising and signing ---- */

static void write_body(sink *s)
{
	if (g_body.head_len)
		put(s, g_body.head, g_body.head_len);
	else
		mp_map_head(s, g_body.n);
	for (size_t i = 0; i < g_body.n; i++) {
		mp_str(s, g_body.f[i].key, strlen(g_body.f[i].key));
		put(s, g_body.f[i].val, g_body.f[i].len);
	}
}

/* Signs `body` as PROTOCOL.md specifies: Ed25519 over
 * "clipmesh/1/" type 0x00 BLAKE2b-256(body). */
static void sign_body(const uint8_t *b, size_t len, const char *type,
		      const uint8_t *sk, uint8_t sig[64])
{
	uint8_t msg[64], id[32];
	size_t n = 0;

	crypto_generichash(id, sizeof(id), b, len, NULL, 0);
	memcpy(msg, "clipmesh/1/", 11);
	n = 11;
	memcpy(msg + n, type, strlen(type));
	n += strlen(type);
	msg[n++] = 0;
	memcpy(msg + n, id, 32);
	n += 32;
	crypto_sign_detached(sig, NULL, msg, n, sk);
}

static void vector_clip_id(uint8_t id[32])
{
	static uint8_t b[VALUE_MAX];
	sink s = { b, 0, sizeof(b) };
	body_draft saved = g_body;

	base_clip();
	write_body(&s);
	crypto_generichash(id, 32, s.p, s.len, NULL, 0);
	g_body = saved;
}

/* Builds the wire form [body, sig] of the current body. */
static void build_wire(sink *w, const uint8_t *sk)
{
	static uint8_t b[WIRE_MAX];
	sink s = { b, 0, sizeof(b) };
	uint8_t sig[64];

	write_body(&s);
	sign_body(s.p, s.len, g_body.sign_type, sk, sig);
	put_byte(w, 0x92);
	mp_bin(w, s.p, s.len);
	mp_bin(w, sig, sizeof(sig));
}

static void write_file(const char *sub, const char *name, const uint8_t *p,
		       size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s%s/%s.rec", g_dir, *sub ? "/" : "",
		 sub, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "corpus_gen: cannot write %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
}

/* Writes wire bytes as a rejected record with its expected reason. */
static void bad_wire(const char *name, const char *reason, const char *setup,
		     const char *why, const uint8_t *p, size_t len)
{
	write_file("", name, p, len);
	fprintf(g_index, "%s.rec\t%s\t%s\t%s\n", name, reason,
		setup ? setup : "-", why);
	g_bad++;
}

/* Signs the current body and writes it as a rejected record. */
static void bad(const char *name, const char *reason, const char *why)
{
	static uint8_t w[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };

	build_wire(&s, g_sk);
	bad_wire(name, reason, NULL, why, s.p, s.len);
}

static void good_in(const char *sub, const char *name)
{
	static uint8_t w[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };

	build_wire(&s, g_sk);
	write_file(sub, name, s.p, s.len);
	if (strcmp(sub, "valid") == 0)
		g_valid++;
}

static void good(const char *name)
{
	good_in("valid", name);
}

/* Fills out[n] with 'a'..'z' repeated, NUL-terminated. */
static const char *letters(size_t n)
{
	static char buf[VALUE_MAX];

	assert(n < sizeof(buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + i % 26);
	buf[n] = '\0';
	return buf;
}

/* Sets the title to n letters. */
static void title_of(size_t n)
{
	set_str("title", letters(n), n);
}

/* ---- the cases ---- */

/* The envelope: array of two, bin body, bin signature of 64 bytes. */
static void envelope_cases(void)
{
	static uint8_t w[WIRE_MAX], v[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };
	sink t = { v, 0, sizeof(v) };
	uint8_t sig[64];
	static uint8_t b[WIRE_MAX];
	sink body = { b, 0, sizeof(b) };

	base_clip();
	write_body(&body);
	sign_body(body.p, body.len, "clip", g_sk, sig);
	build_wire(&t, g_sk);

	s.len = 0;
	put(&s, t.p, t.len);
	put_byte(&s, 0x00);
	bad_wire("env-trailing-byte", "trailing_bytes", NULL,
		 "one zero byte after a valid record", s.p, s.len);

	bad_wire("env-cut-one-byte", "truncated", NULL,
		 "a valid record without its last byte", t.p, t.len - 1);
	bad_wire("env-empty", "truncated", NULL, "zero bytes", t.p, 0);

	s.len = 0;
	put_byte(&s, 0x93);
	put(&s, t.p + 1, t.len - 1);
	mp_bin(&s, sig, 64);
	bad_wire("env-array-of-3", "too_many", NULL,
		 "the envelope has a third element", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x91);
	mp_bin(&s, body.p, body.len);
	bad_wire("env-array-of-1", "missing_field", NULL,
		 "the envelope has no signature", s.p, s.len);

	s.len = 0;
	put_head(&s, 0xdc, 2);
	put(&s, t.p + 1, t.len - 1);
	bad_wire("env-array16", "nonminimal_len", NULL,
		 "the envelope uses array 16 for two elements", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x82);
	put(&s, t.p + 1, t.len - 1);
	bad_wire("env-map", "bad_type", NULL,
		 "the envelope is a map, not an array", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	put_head(&s, 0xc6, body.len);
	put(&s, body.p, body.len);
	mp_bin(&s, sig, 64);
	bad_wire("env-body-bin32", "nonminimal_len", NULL,
		 "a 394-byte body in bin 32", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	mp_str(&s, body.p, body.len);
	mp_bin(&s, sig, 64);
	bad_wire("env-body-as-str", "bad_type", NULL,
		 "the body is a str, not a bin", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	put_head(&s, 0xc5, 0x4000);
	put(&s, body.p, body.len);
	mp_bin(&s, sig, 64);
	bad_wire("env-body-claims-16384", "truncated", NULL,
		 "the body bin claims 16384 bytes and 460 follow", s.p,
		 s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	put_head(&s, 0xc6, 0xffffffffULL);
	put(&s, body.p, 16);
	bad_wire("env-body-claims-4g", "truncated", NULL,
		 "the body bin 32 claims 4 GiB and 16 bytes follow", s.p,
		 s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	for (int i = 0; i < 2000; i++)
		put_byte(&s, 0x91);
	put_byte(&s, 0x01);
	bad_wire("env-nested-2000", "too_deep", NULL,
		 "2000 nested arrays where the body bin belongs", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	mp_bin(&s, body.p, body.len);
	mp_bin(&s, sig, 63);
	bad_wire("env-sig-63-bytes", "bad_signature", NULL,
		 "a signature one byte short", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	mp_bin(&s, body.p, body.len);
	put_head(&s, 0xc4, 65);
	put(&s, sig, 64);
	put_byte(&s, 0x00);
	bad_wire("env-sig-65-bytes", "too_long", NULL,
		 "a signature one byte long", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	mp_bin(&s, body.p, body.len);
	mp_bin(&s, sig, 0);
	bad_wire("env-sig-empty", "bad_signature", NULL,
		 "an empty signature", s.p, s.len);

	s.len = 0;
	put_byte(&s, 0x92);
	mp_bin(&s, body.p, body.len);
	put_head(&s, 0xc5, 64);
	put(&s, sig, 64);
	bad_wire("env-sig-bin16", "nonminimal_len", NULL,
		 "the signature in bin 16", s.p, s.len);
}

/* Records over the size limits. */
static void size_cases(void)
{
	static uint8_t w[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };
	uint8_t sig[64];

	base_clip();
	set_str("zz-padding", letters(20000), 20000);
	bad("size-wire-20k", "too_long",
	    "a 20 KB record, over the 16512-byte record limit");

	base_clip();
	set_str("zz-padding", letters(70000), 70000);
	bad("size-wire-70k", "too_long",
	    "a 70 KB record whose body needs bin 32");

	/* Body of 16385 bytes: the wire (16454 bytes) fits, the body not. */
	base_clip();
	set_str("zz-padding", letters(16385 - 394 - 14), 16385 - 394 - 14);
	{
		static uint8_t b[WIRE_MAX];
		sink body = { b, 0, sizeof(b) };

		write_body(&body);
		assert(body.len == 16385);
		sign_body(body.p, body.len, "clip", g_sk, sig);
		put_byte(&s, 0x92);
		mp_bin(&s, body.p, body.len);
		mp_bin(&s, sig, 64);
	}
	bad_wire("size-body-16385", "too_long", NULL,
		 "a body one byte over 16384 in a record under 16512", s.p,
		 s.len);
}

/* Map and container headers of the body. */
static void container_cases(void)
{
	base_clip();
	g_body.head[0] = 0x8d;
	g_body.head_len = 1;
	bad("body-map-claims-13", "truncated",
	    "the body map claims 13 entries and 11 follow");

	base_clip();
	g_body.head[0] = 0x8f;
	g_body.head_len = 1;
	bad("body-map-15-entries", "too_many",
	    "the body map claims 15 entries, more than the 14 known keys");

	base_clip();
	g_body.head[0] = 0xde;
	g_body.head[1] = 0xff;
	g_body.head[2] = 0xff;
	g_body.head_len = 3;
	bad("body-map-claims-65535", "truncated",
	    "the body map 16 claims 65535 entries in 393 bytes");

	base_clip();
	g_body.head[0] = 0xde;
	g_body.head[1] = 0x00;
	g_body.head[2] = 0x0b;
	g_body.head_len = 3;
	bad("body-map16", "nonminimal_len",
	    "the body map uses map 16 for 11 entries");

	base_clip();
	drop("text");
	drop("title");
	drop("type");
	drop("v");
	set_raw_hex("tags", "93a7626c656e646572a76b69746368656e");
	bad("body-tags-claims-3", "truncated",
	    "tags claims 3 strings and the body ends after 2");

	base_clip();
	set_raw_hex("title", "dbffffffff");
	bad("body-str32-claims-4g", "truncated",
	    "title is a str 32 that claims 4 GiB");

	base_clip();
	{
		sink s = value_of("title");
		for (int i = 0; i < 1000; i++)
			put_byte(&s, 0x91);
		put_byte(&s, 0x01);
		commit("title", &s);
	}
	bad("body-title-nested-1000", "too_deep",
	    "title is 1000 nested arrays");

	base_clip();
	{
		sink s = value_of("rating");
		for (int i = 0; i < 1000; i++) {
			put_byte(&s, 0x81);
			mp_str(&s, "a", 1);
		}
		put_byte(&s, 0x01);
		commit("rating", &s);
	}
	bad("body-rating-nested-maps", "too_deep",
	    "rating is 1000 nested maps");

	base_clip();
	set_raw_hex("tags", "9191919191919191a3616263");
	bad("body-tag-nested", "too_deep", "a tag inside nested arrays");

	base_clip();
	set_raw_hex("media", "92");
	{
		field *m = find("media");
		sink s = { m->val, m->len, sizeof(m->val) };

		media_ref(&s, media_mp4, 524288, "video/mp4");
		m->len = s.len;
	}
	drop("product");
	drop("rating");
	drop("tags");
	drop("text");
	drop("title");
	drop("type");
	drop("v");
	bad("body-media-claims-2", "truncated",
	    "media claims 2 references and the body ends after 1");
}

/* Integers, lengths and keys in a form other than the shortest. */
static void canonical_cases(void)
{
	base_clip();
	set_raw_hex("rating", "cc04");
	bad("int-rating-uint8", "nonminimal_int", "rating 4 as uint 8");

	base_clip();
	set_raw_hex("v", "cd0001");
	bad("int-v-uint16", "nonminimal_int", "v 1 as uint 16");

	base_clip();
	set_raw_hex("created", "cf0000000000000001");
	bad("int-created-uint64", "nonminimal_int", "created 1 as uint 64");

	base_clip();
	set_raw_hex("rating", "d004");
	bad("int-rating-int8", "nonminimal_int",
	    "rating 4 as the signed int 8");

	base_clip();
	set_raw_hex("rating", "ff");
	bad("int-rating-negative", "negative_int", "rating -1");

	base_clip();
	set_raw_hex("rating", "ca40800000");
	bad("int-rating-float", "float", "rating 4.0 as float 32");

	base_clip();
	set_raw_hex("rating", "d40104");
	bad("int-rating-ext", "ext", "rating as fixext 1");

	base_clip();
	set_raw_hex("rating", "c0");
	bad("int-rating-nil", "bad_type", "rating nil");

	base_clip();
	set_raw_hex("rating", "c3");
	bad("int-rating-true", "bad_type", "rating true");

	base_clip();
	set_raw_hex("rating", "c1");
	bad("int-rating-c1", "bad_type", "rating is the unused byte c1");

	base_clip();
	{
		const char *t = "Countertop blender, first week";
		sink s = value_of("title");

		put_head(&s, 0xd9, strlen(t));
		put(&s, t, strlen(t));
		commit("title", &s);
	}
	bad("len-title-str8", "nonminimal_len", "a 30-byte title in str 8");

	base_clip();
	{
		sink s = value_of("lang");

		put_head(&s, 0xda, 2);
		put(&s, "en", 2);
		commit("lang", &s);
	}
	bad("len-lang-str16", "nonminimal_len", "lang \"en\" in str 16");

	base_clip();
	{
		sink s = value_of("author");

		put_head(&s, 0xc5, 32);
		put(&s, g_pk, 32);
		commit("author", &s);
	}
	bad("len-author-bin16", "nonminimal_len", "author in bin 16");

	base_clip();
	{
		static const char *const tags[] = { "blender", "kitchen" };
		sink s = value_of("tags");

		put_head(&s, 0xdc, 2);
		for (int i = 0; i < 2; i++)
			mp_str(&s, tags[i], strlen(tags[i]));
		commit("tags", &s);
	}
	bad("len-tags-array16", "nonminimal_len", "2 tags in array 16");

	base_clip();
	swap_fields("text", "title");
	bad("key-unsorted", "unsorted_keys", "title comes before text");

	base_clip();
	swap_fields("lang", "media");
	swap_fields("lang", "author");
	bad("key-unsorted-first", "unsorted_keys",
	    "the first key is lang, then media, then author");

	base_clip();
	set_text("title", "Countertop blender, first week");
	{
		field *t = find("title");

		memmove(t + 1, t, (size_t)(&g_body.f[g_body.n] - t) *
					  sizeof(*t));
		g_body.n++;
	}
	bad("key-duplicate", "duplicate_key", "title twice");

	base_clip();
	set_uint("zz", 1);
	bad("key-unknown", "unknown_key", "an unknown key zz after v");

	base_clip();
	set_text("name", "Ada");
	sort_fields();
	bad("key-of-profile", "unknown_key",
	    "a clip with the profile key name");

	base_retract();
	set_text("title", "why");
	sort_fields();
	bad("key-title-in-retract", "unknown_key",
	    "a retraction with a title");

	base_clip();
	snprintf(find("type")->key, sizeof(g_body.f[0].key), "%s", "\x01");
	sort_fields();
	bad("key-control-char", "unknown_key",
	    "the first key is \\x01 in place of type");
}

/* Schema: missing, empty and out-of-range fields. */
static void schema_cases(void)
{
	static const char *const unsorted[] = { "kitchen", "blender" };
	static const char *const twice[] = { "blender", "blender" };
	static const char *const space[] = { "first week" };
	static const char *const nbsp[] = { "first\xc2\xa0week" };

	base_clip();
	drop("title");
	bad("field-no-title", "missing_field", "a clip without title");

	base_clip();
	drop("type");
	bad("field-no-type", "missing_field", "a body without type");

	base_clip();
	set_media(0, "video/mp4");
	bad("field-media-empty", "missing_field", "a clip with media []");

	base_clip();
	set_text("text", "");
	bad("field-text-empty", "empty_optional", "text present and empty");

	base_clip();
	set_tags(NULL, 0);
	bad("field-tags-empty", "empty_optional", "tags present and empty");

	base_clip();
	set_tags(unsorted, 2);
	bad("field-tags-unsorted", "bad_field", "tags kitchen, blender");

	base_clip();
	set_tags(twice, 2);
	bad("field-tags-duplicate", "bad_field", "the tag blender twice");

	base_clip();
	set_tags(space, 1);
	bad("field-tag-space", "bad_field", "a tag with a space");

	base_clip();
	set_tags(nbsp, 1);
	bad("field-tag-nbsp", "bad_field", "a tag with U+00A0");

	base_clip();
	set_uint("v", 2);
	bad("field-v-2", "bad_version", "v is 2");

	base_clip();
	set_text("type", "video");
	bad("field-type-video", "bad_kind", "type video");

	base_clip();
	set_uint("rating", 6);
	bad("field-rating-6", "bad_field", "rating 6");

	base_clip();
	set_uint("rating", 0);
	bad("field-rating-0", "bad_field", "rating 0");

	base_clip();
	set_text("lang", "e");
	bad("field-lang-1-byte", "bad_field", "lang of one letter");

	base_clip();
	set_text("lang", "en_US");
	bad("field-lang-underscore", "bad_field", "lang en_US");

	base_clip();
	set_media(1, "video/avi");
	bad("field-media-avi", "bad_media_type", "media type video/avi");

	base_clip();
	{
		sink s = value_of("media");

		mp_array_head(&s, 1);
		media_ref(&s, media_mp4, 0, "video/mp4");
		commit("media", &s);
	}
	bad("field-media-size-0", "bad_field", "media size 0");

	base_clip();
	{
		sink s = value_of("media");

		mp_array_head(&s, 1);
		media_ref(&s, media_mp4, 4294967297ULL, "video/mp4");
		commit("media", &s);
	}
	bad("field-media-size-4g-plus-1", "bad_field",
	    "media size 4294967297, one over 4 GiB");

	base_clip();
	set_raw_hex("media", "9183a468617368c41f"
			     "00000000000000000000000000000000"
			     "000000000000000000000000000000"
			     "a473697a6503a474797065aa696d6167652f6a706567");
	bad("field-media-hash-31", "bad_field", "a media hash of 31 bytes");

	base_clip();
	set_bin("author", g_pk, 31);
	bad("field-author-31", "bad_field", "author of 31 bytes");

	base_clip();
	set_text("product", "gtin:2000000001013");
	bad("field-gtin-check", "bad_gtin", "a GTIN with a wrong check digit");

	base_clip();
	set_text("product", "ean:2000000001012");
	bad("field-product-ean", "bad_product", "the unknown prefix ean:");

	base_clip();
	set_text("product", "url:ftp://example.com/x");
	bad("field-product-ftp", "bad_product", "an ftp URL");

	base_retract();
	set_bin("target", g_pk, 31);
	bad("field-target-31", "bad_field", "a retraction target of 31 bytes");

	base_profile();
	drop("name");
	bad("field-profile-no-name", "missing_field", "a profile without name");
}

/* Each string limit: at the limit (valid) and one byte over. */
static void limit_cases(void)
{
	static char tagbuf[TAGS_GEN][40];
	const char *tags[TAGS_GEN];
	char euro[256];
	size_t n = 0;

	base_clip();
	title_of(200);
	good("limit-title-200");
	title_of(201);
	bad("limit-title-201", "too_long", "a title of 201 bytes");

	/* 66 three-byte euro signs and 2 letters: 200 bytes, 68 characters. */
	for (int i = 0; i < 66; i++)
		n += (size_t)snprintf(euro + n, sizeof(euro) - n, "\xe2\x82\xac");
	base_clip();
	memcpy(euro + n, "ab", 3);
	set_text("title", euro);
	good("limit-title-200-utf8");
	memcpy(euro + n, "abc", 4);
	set_text("title", euro);
	bad("limit-title-201-utf8", "too_long",
	    "a title of 69 characters and 201 bytes");

	base_clip();
	set_str("text", letters(4000), 4000);
	good("limit-text-4000");
	set_str("text", letters(4001), 4001);
	bad("limit-text-4001", "too_long", "a text of 4001 bytes");

	base_clip();
	{
		char url[600] = "url:https://example.com/";
		size_t len = strlen(url);

		memcpy(url + len, letters(512 - len), 512 - len + 1);
		set_text("product", url);
		good("limit-product-512");
		memcpy(url + len, letters(513 - len), 513 - len + 1);
		set_text("product", url);
		bad("limit-product-513", "too_long",
		    "a product URL of 513 bytes");
	}

	base_clip();
	set_text("lang", "x-abcdefgh-abcdefgh-abcdefgh-abcdef");
	good("limit-lang-35");
	set_text("lang", "x-abcdefgh-abcdefgh-abcdefgh-abcdefg");
	bad("limit-lang-36", "too_long", "a lang of 36 bytes");

	for (int i = 0; i < TAGS_GEN; i++) {
		snprintf(tagbuf[i], sizeof(tagbuf[i]), "tag%02d", i);
		tags[i] = tagbuf[i];
	}
	base_clip();
	set_tags(tags, 16);
	good("limit-tags-16");
	set_tags(tags, 17);
	bad("limit-tags-17", "too_many", "17 tags");

	base_clip();
	memcpy(tagbuf[0], letters(32), 33);
	set_tags(tags, 1);
	good("limit-tag-32");
	memcpy(tagbuf[0], letters(33), 34);
	set_tags(tags, 1);
	bad("limit-tag-33", "too_long", "a tag of 33 bytes");

	base_clip();
	set_media(8, "video/mp4");
	good("limit-media-8");
	set_media(9, "video/mp4");
	bad("limit-media-9", "too_many", "9 media references");

	base_clip();
	{
		sink s = value_of("media");

		mp_array_head(&s, 1);
		media_ref(&s, media_mp4, 4294967296ULL, "video/mp4");
		commit("media", &s);
	}
	good("limit-media-size-4g");
	set_media(1, letters(65));
	bad("limit-media-type-65", "too_long", "a media type of 65 bytes");

	base_profile();
	set_str("name", letters(64), 64);
	good("limit-name-64");
	set_str("name", letters(65), 65);
	bad("limit-name-65", "too_long", "a profile name of 65 bytes");

	base_profile();
	set_str("bio", letters(1000), 1000);
	good("limit-bio-1000");
	set_str("bio", letters(1001), 1001);
	bad("limit-bio-1001", "too_long", "a bio of 1001 bytes");
}

/* Invalid UTF-8 and control characters in text fields. */
static void text_cases(void)
{
	static const struct {
		const char *name, *field, *text, *reason, *why;
	} cases[] = {
		{ "utf8-stray-continuation", "title", "ab\x80" "cd",
		  "bad_utf8", "a continuation byte 80 at a start" },
		{ "utf8-overlong-slash", "title", "a\xc0\xaf", "bad_utf8",
		  "\"/\" in the overlong form c0 af" },
		{ "utf8-overlong-3-byte", "title", "a\xe0\x80\xaf", "bad_utf8",
		  "\"/\" in the overlong form e0 80 af" },
		{ "utf8-surrogate", "title", "a\xed\xa0\x80", "bad_utf8",
		  "the surrogate U+D800" },
		{ "utf8-above-10ffff", "title", "a\xf4\x90\x80\x80",
		  "bad_utf8", "U+110000" },
		{ "utf8-cut-sequence", "title", "ab\xe2\x80", "bad_utf8",
		  "a 3-byte sequence cut after 2 bytes" },
		{ "utf8-byte-ff", "text", "a\xff", "bad_utf8",
		  "the byte ff in text" },
		{ "utf8-tag-f5", "tags", "a\xf5\x80\x80\x80", "bad_utf8",
		  "the byte f5 in a tag" },
		{ "ctl-title-tab", "title", "a\tb", "control_char",
		  "a tab in the title" },
		{ "ctl-title-newline", "title", "a\nb", "control_char",
		  "a line feed in the title (allowed only in text and bio)" },
		{ "ctl-text-cr", "text", "a\r\nb", "control_char",
		  "a carriage return in text" },
		{ "ctl-title-del", "title", "a\x7f" "b", "control_char",
		  "DEL in the title" },
		{ "ctl-title-c1", "title", "a\xc2\x85" "b", "control_char",
		  "the C1 control U+0085 in the title" },
		{ "ctl-product-esc", "product", "url:https://x.example/\x1b",
		  "control_char", "an escape byte in a product URL" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		base_clip();
		if (strcmp(cases[i].field, "tags") == 0)
			set_tags(&cases[i].text, 1);
		else
			set_text(cases[i].field, cases[i].text);
		bad(cases[i].name, cases[i].reason, cases[i].why);
	}

	/* A title with a NUL byte in the middle. */
	base_clip();
	set_str("title", "a\0b", 3);
	bad("ctl-title-nul", "control_char", "a NUL byte in the title");

	base_clip();
	set_text("text", "line one\nline two");
	good("text-with-newline");
}

/* Little-endian addition of L, the Ed25519 group order, to s. */
static void add_order(uint8_t s[32])
{
	static const uint8_t l[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
		0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	};
	unsigned carry = 0;

	for (int i = 0; i < 32; i++) {
		unsigned v = s[i] + l[i] + carry;

		s[i] = (uint8_t)v;
		carry = v >> 8;
	}
}

/* Writes the current body with signature `sig` as a rejected record. */
static void bad_sig(const char *name, const char *reason, const char *why,
		    const uint8_t sig[64])
{
	static uint8_t w[WIRE_MAX], b[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };
	sink body = { b, 0, sizeof(b) };

	write_body(&body);
	put_byte(&s, 0x92);
	mp_bin(&s, body.p, body.len);
	mp_bin(&s, sig, 64);
	bad_wire(name, reason, NULL, why, s.p, s.len);
}

static void hex32(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			abort();
}

/* Signatures and keys. */
static void signature_cases(void)
{
	static uint8_t b[WIRE_MAX];
	sink body = { b, 0, sizeof(b) };
	uint8_t sig[64], key[32];

	base_clip();
	write_body(&body);
	sign_body(body.p, body.len, "clip", g_sk, sig);

	sig[10] ^= 0x01;
	bad_sig("sig-bit-flipped", "bad_signature", "one bit of R flipped",
		sig);
	sig[10] ^= 0x01;

	add_order(sig + 32);
	bad_sig("sig-s-plus-order", "bad_signature",
		"S + L: the same signature with S not reduced", sig);

	memset(sig + 32, 0xff, 32);
	bad_sig("sig-s-all-ff", "bad_signature", "S of 32 ff bytes", sig);

	sign_body(body.p, body.len, "clip", g_sk, sig);
	memset(sig, 0, 32);
	sig[0] = 0x01;
	bad_sig("sig-r-identity", "bad_signature",
		"R is the identity point, which has small order", sig);

	sign_body(body.p, body.len, "retract", g_sk, sig);
	bad_sig("sig-retract-domain", "bad_signature",
		"a clip signed as a retraction", sig);

	sign_body(body.p, body.len, "clip", g_other_sk, sig);
	bad_sig("sig-other-key", "bad_signature",
		"a clip signed by a key other than its author", sig);

	static const struct {
		const char *name, *hex, *why;
	} keys[] = {
		{ "key-identity",
		  "0100000000000000000000000000000000000000000000000000000000000000",
		  "the identity point as author key (order 1)" },
		{ "key-zero",
		  "0000000000000000000000000000000000000000000000000000000000000000",
		  "the point of order 4 encoded as zero" },
		{ "key-order-8",
		  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		  "a point of order 8 as author key" },
		{ "key-noncanonical",
		  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		  "y = p, a non-canonical encoding of small order" },
		{ "key-not-on-curve",
		  "0200000000000000000000000000000000000000000000000000000000000000",
		  "y = 2, which has no point on the curve" },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		base_clip();
		hex32(keys[i].hex, key);
		set_bin("author", key, 32);
		body.len = 0;
		write_body(&body);
		sign_body(body.p, body.len, "clip", g_sk, sig);
		bad_sig(keys[i].name, "bad_key", keys[i].why, sig);
	}
}

/* Creation times and retraction. */
static void time_cases(void)
{
	static uint8_t w[WIRE_MAX];
	sink s = { w, 0, sizeof(w) };

	base_clip();
	set_uint("created", UINT64_MAX);
	bad("time-uint64-max", "future", "created 2^64 - 1 ms");

	base_clip();
	set_uint("created", FAR_FUTURE);
	bad("time-year-2100", "future", "created 2100-01-01");

	base_retract();
	set_uint("created", FAR_FUTURE);
	bad("time-retract-2100", "future", "a retraction dated 2100-01-01");

	base_clip();
	set_uint("created", 0);
	good("time-zero");

	base_clip();
	good("vector-clip");
	base_retract();
	good_in("setup", "retract-vector-clip");
	base_profile();
	good("vector-profile");

	/* The vector clip, rejected once its retraction is stored. */
	base_clip();
	build_wire(&s, g_sk);
	bad_wire("retracted-vector-clip", "retracted",
		 "setup/retract-vector-clip.rec",
		 "the vector clip after its retraction is stored", s.p, s.len);
}

static void make_dir(const char *sub)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", g_dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "corpus_gen: cannot create %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	uint8_t seed[32], other[32], pk[32];
	char path[1024];

	if (argc != 2) {
		fprintf(stderr, "usage: corpus_gen DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	g_dir = argv[1];
	make_dir("");
	make_dir("valid");
	make_dir("setup");

	for (int i = 0; i < 32; i++) {
		seed[i] = (uint8_t)(i + 1);
		other[i] = (uint8_t)(0x80 + i);
	}
	crypto_sign_seed_keypair(g_pk, g_sk, seed);
	crypto_sign_seed_keypair(pk, g_other_sk, other);

	snprintf(path, sizeof(path), "%s/index.tsv", g_dir);
	g_index = fopen(path, "w");
	if (g_index == NULL) {
		fprintf(stderr, "corpus_gen: cannot write %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	fprintf(g_index, "# file\treason\tsetup\twhy\n");

	envelope_cases();
	size_cases();
	container_cases();
	canonical_cases();
	schema_cases();
	limit_cases();
	text_cases();
	signature_cases();
	time_cases();

	if (fclose(g_index) != 0)
		return 1;
	printf("corpus_gen: %u rejected and %u valid records in %s\n", g_bad,
	       g_valid, g_dir);
	return 0;
}
