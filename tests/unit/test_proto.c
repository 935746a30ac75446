/*
 * test_proto.c - record encoding, strict decoding, ids and signatures.
 *
 * The vectors are the ones printed in proto/PROTOCOL.md; a change to
 * either must change both.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "proto_canon.h"
#include "proto_record.h"

/* ---- vectors (proto/PROTOCOL.md, "Test vectors") ---- */

#define VEC_PUBLIC_KEY \
	"79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"

#define CLIP_BODY                                                          \
	"8ba6617574686f72c42079b5562e8fe654f94078b112e8a98ba7901f853ae695" \
	"bed7e0e3910bad049664a763726561746564cf000001a241bcc520a46c616e67" \
	"a2656ea56d656469619283a468617368c420866cd2b3d17ba0288692ac14f76c" \
	"27c4215e6793d1a14a610930e47b3138f09da473697a65ce00080000a4747970" \
	"65a9766964656f2f6d703483a468617368c420375ff96fd6ecad7c67157a4345" \
	"980a976af7070a27c6877441f1a0811eed755fa473697a6503a474797065aa69" \
	"6d6167652f6a706567a770726f64756374b26774696e3a323030303030303030" \
	"31303132a6726174696e6704a47461677392a7626c656e646572a76b69746368" \
	"656ea474657874d94f437275736865642069636520696e2074656e207365636f" \
	"6e647320e280942071756965746572207468616e206d79206f6c64206f6e652e" \
	"0a546865206c69642069732061206269742073746966662ea57469746c65be43" \
	"6f756e746572746f7020626c656e6465722c206669727374207765656ba47479" \
	"7065a4636c6970a17601"
#define CLIP_ID \
	"38e8f47a86f2f7eefecc373869ec56549385fdc93779bace668c5914217671fc"
#define CLIP_SIG                                                           \
	"81c11d8b5df47fe37937aabee000b77ef90a13dbf869f16d21b8b8f9d034b3c7" \
	"8190333533affb0df66e18fbff7244c86f6d50057b34fc35ee899f93a966f90e"
#define CLIP_WIRE "92c5018a" CLIP_BODY "c440" CLIP_SIG

#define RETRACT_BODY                                                       \
	"85a6617574686f72c42079b5562e8fe654f94078b112e8a98ba7901f853ae695" \
	"bed7e0e3910bad049664a763726561746564cf000001a241cd3fe0a674617267" \
	"6574c42038e8f47a86f2f7eefecc373869ec56549385fdc93779bace668c5914" \
	"217671fca474797065a772657472616374a17601"
#define RETRACT_ID \
	"effaa552ccfee5b7bde95cf42ac297b3f69d5077e0a3a0442d29426eddb03cc4"
#define RETRACT_SIG                                                        \
	"2f21385dda72e561a8f2f740a2ceaeebb64322cb9be442cb9ac22b7e558f3990" \
	"dd62de9716aeed430634f24dbf23a400a2c5012925313cb9afecadabf3fcda05"
#define RETRACT_WIRE "92c474" RETRACT_BODY "c440" RETRACT_SIG

#define PROFILE_BODY                                                       \
	"86a6617574686f72c42079b5562e8fe654f94078b112e8a98ba7901f853ae695" \
	"bed7e0e3910bad049664a362696fd9344b69746368656e20676164676574732c" \
	"20756e626f7865642e0a486f6e6573742074616b65732c206e6f2073706f6e73" \
	"6f72732ea763726561746564cf000001a241ad34c0a46e616d65ab4164612052" \
	"657669657773a474797065a770726f66696c65a17601"
#define PROFILE_ID \
	"fbc7e24fc52a86b5d121f6f48ca00597df2235d0762d43e2c47e1e2f4fd9944a"
#define PROFILE_SIG                                                        \
	"a2f7bf02d3be2c7b81c34998508c0353a8ea579b5a6f0b6be54d90e4b73c4cba" \
	"29ff401dfc3a35484912c92fa8ab1818b9606f3d528eadcec102d6dd59d4ec0f"
#define PROFILE_WIRE "92c496" PROFILE_BODY "c440" PROFILE_SIG

/* Media roots from the media vectors, used as the clip's references. */
#define MEDIA_TWO_CHUNKS \
	"866cd2b3d17ba0288692ac14f76c27c4215e6793d1a14a610930e47b3138f09d"
#define MEDIA_ABC \
	"375ff96fd6ecad7c67157a4345980a976af7070a27c6877441f1a0811eed755f"

/* Pieces of the bodies above, used to build variants. */
#define K_AUTHOR "a6617574686f72"
#define K_BIO "a362696f"
#define K_CREATED "a763726561746564"
#define K_LANG "a46c616e67"
#define K_MEDIA "a56d65646961"
#define K_NAME "a46e616d65"
#define K_RATING "a6726174696e67"
#define K_TAGS "a474616773"
#define K_TARGET "a6746172676574"
#define K_TEXT "a474657874"
#define K_TITLE "a57469746c65"
#define K_TYPE "a474797065"
#define K_V "a176"
#define V_RETRACT "a772657472616374"
#define RETRACT_CREATED "cf000001a241cd3fe0"
#define TAGS_VALUE "92a7626c656e646572a76b69746368656e"
#define NAME_VALUE "ab4164612052657669657773"
#define BIO_VALUE                                                          \
	"d9344b69746368656e20676164676574732c20756e626f7865642e0a486f6e65" \
	"73742074616b65732c206e6f2073706f6e736f72732e"
#define TEXT_VALUE                                                         \
	"d94f437275736865642069636520696e2074656e207365636f6e647320e28094" \
	"2071756965746572207468616e206d79206f6c64206f6e652e0a546865206c69" \
	"642069732061206269742073746966662e"
#define VIDEO_MP4 "a9766964656f2f6d7034"
#define MEDIA_VALUE                                                        \
	"9283a468617368c420" MEDIA_TWO_CHUNKS "a473697a65ce00080000"      \
	"a474797065" VIDEO_MP4 "83a468617368c420" MEDIA_ABC "a473697a6503" \
	"a474797065aa696d6167652f6a706567"

/* The clock used to open records: 2026-12-04T16:10:00Z, a few minutes
 * after the newest vector. */
#define NOW_MS 1796400600000ULL

static uint8_t public_key[PROTO_KEY_LEN];
static uint8_t secret_key[PROTO_SECRET_LEN];

/* ---- helpers ---- */

#define assert_err(expr, expected) \
	check_err((expr), (expected), #expr, __FILE__, __LINE__)

static void check_err(cm_err got, cm_err want, const char *call,
		      const char *file, int line)
{
	if (got == want)
		return;
	print_error("%s returned %s (detail: %s), expected %s\n", call,
		    cm_err_name(got), cm_err_detail(), cm_err_name(want));
	_fail(file, line);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_int_equal(strlen(hex) % 2, 0);
	assert_true(n <= cap);
	assert_true(cm_hex_decode(hex, out, n));
	return n;
}

static void assert_hex_equal(const uint8_t *bin, size_t len, const char *hex)
{
	char *got = malloc(2 * len + 1);

	assert_non_null(got);
	cm_hex_encode(bin, len, got);
	if (strcmp(got, hex) != 0) {
		print_error("bytes differ\n     got %s\nexpected %s\n", got,
			    hex);
		free(got);
		fail();
	}
	free(got);
}

/* Replaces the first occurrence of `from` in in[len] with `to`; fails the
 * test when `from` does not occur. Returns the new length. */
static size_t splice(const uint8_t *in, size_t len, const uint8_t *from,
		     size_t from_len, const uint8_t *to, size_t to_len,
		     uint8_t *out, size_t cap)
{
	for (size_t at = 0; at + from_len <= len; at++) {
		if (memcmp(in + at, from, from_len) != 0)
			continue;
		assert_true(len - from_len + to_len <= cap);
		memcpy(out, in, at);
		memcpy(out + at, to, to_len);
		memcpy(out + at + to_len, in + at + from_len,
		       len - at - from_len);
		return len - from_len + to_len;
	}
	print_error("splice: pattern of %zu bytes not found\n", from_len);
	fail();
	return 0;
}

static size_t splice_hex(const uint8_t *in, size_t len, const char *from,
			 const char *to, uint8_t *out, size_t cap)
{
	uint8_t f[512];
	uint8_t t[512];
	size_t flen = unhex(from, f, sizeof(f));
	size_t tlen = unhex(to, t, sizeof(t));

	return splice(in, len, f, flen, t, tlen, out, cap);
}

/* Writes a minimal msgpack str of n copies of c into out; returns its
 * size. */
static size_t make_str(size_t n, char c, uint8_t *out)
{
	size_t h;

	if (n < 32) {
		out[0] = (uint8_t)(0xa0 | n);
		h = 1;
	} else if (n < 256) {
		out[0] = 0xd9;
		out[1] = (uint8_t)n;
		h = 2;
	} else {
		out[0] = 0xda;
		out[1] = (uint8_t)(n >> 8);
		out[2] = (uint8_t)n;
		h = 3;
	}
	memset(out + h, c, n);
	return h + n;
}

static void make_clip(proto_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, public_key, PROTO_KEY_LEN);
	r->created_ms = 1796399220000ULL;
	cm_strlcpy(r->product, "gtin:2000000001012", sizeof(r->product));
	cm_strlcpy(r->title, "Countertop blender, first week",
		   sizeof(r->title));
	cm_strlcpy(r->text,
		   "Crushed ice in ten seconds \xe2\x80\x94 quieter than my "
		   "old one.\nThe lid is a bit stiff.",
		   sizeof(r->text));
	r->rating = 4;
	cm_strlcpy(r->lang, "en", sizeof(r->lang));
	cm_strlcpy(r->tags[0], "blender", sizeof(r->tags[0]));
	cm_strlcpy(r->tags[1], "kitchen", sizeof(r->tags[1]));
	r->n_tags = 2;
	unhex(MEDIA_TWO_CHUNKS, r->media[0].hash, PROTO_HASH_LEN);
	r->media[0].size = 2 * CM_CHUNK_SIZE;
	cm_strlcpy(r->media[0].type, "video/mp4", sizeof(r->media[0].type));
	unhex(MEDIA_ABC, r->media[1].hash, PROTO_HASH_LEN);
	r->media[1].size = 3;
	cm_strlcpy(r->media[1].type, "image/jpeg", sizeof(r->media[1].type));
	r->n_media = 2;
}

static void make_retract(proto_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->author, public_key, PROTO_KEY_LEN);
	r->created_ms = 1796400300000ULL;
	unhex(CLIP_ID, r->target, PROTO_ID_LEN);
}

static void make_profile(proto_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_PROFILE;
	memcpy(r->author, public_key, PROTO_KEY_LEN);
	r->created_ms = 1796398200000ULL;
	cm_strlcpy(r->name, "Ada Reviews", sizeof(r->name));
	cm_strlcpy(r->bio,
		   "Kitchen gadgets, unboxed.\nHonest takes, no sponsors.",
		   sizeof(r->bio));
}

/* Builds a wire record [body, sig] by hand, so tests can pair any body
 * with any signature. */
static size_t make_wire(const uint8_t *body, size_t len,
			const uint8_t sig[PROTO_SIG_LEN], uint8_t *out)
{
	size_t n = 0;

	out[n++] = 0x92;
	if (len < 256) {
		out[n++] = 0xc4;
	} else {
		out[n++] = 0xc5;
		out[n++] = (uint8_t)(len >> 8);
	}
	out[n++] = (uint8_t)len;
	memcpy(out + n, body, len);
	n += len;
	out[n++] = 0xc4;
	out[n++] = PROTO_SIG_LEN;
	memcpy(out + n, sig, PROTO_SIG_LEN);
	return n + PROTO_SIG_LEN;
}

static void sign_id(const char *type, const uint8_t id[PROTO_ID_LEN],
		    uint8_t sig[PROTO_SIG_LEN])
{
	uint8_t msg[64];
	size_t n = (size_t)snprintf((char *)msg, sizeof(msg), "clipmesh/1/%s",
				    type);

	msg[n++] = '\0';
	memcpy(msg + n, id, PROTO_ID_LEN);
	n += PROTO_ID_LEN;
	assert_int_equal(crypto_sign_detached(sig, NULL, msg, n, secret_key),
			 0);
}

static int setup_keys(void **state)
{
	uint8_t seed[32];

	(void)state;
	if (sodium_init() < 0)
		return -1;
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 1);
	crypto_sign_seed_keypair(public_key, secret_key, seed);
	return 0;
}

/* ---- vectors ---- */

static void check_vector(const proto_record *r, const char *body_hex,
			 const char *id_hex, const char *sig_hex,
			 const char *wire_hex)
{
	uint8_t body[CM_BODY_MAX];
	uint8_t wire[CM_RECORD_MAX];
	uint8_t id[PROTO_ID_LEN];
	size_t body_len;
	size_t wire_len;
	proto_signed opened;
	proto_record decoded;

	assert_err(proto_body_encode(r, body, sizeof(body), &body_len), CM_OK);
	assert_hex_equal(body, body_len, body_hex);

	proto_record_id(body, body_len, id);
	assert_hex_equal(id, PROTO_ID_LEN, id_hex);

	assert_err(proto_body_decode(body, body_len, &decoded), CM_OK);
	assert_memory_equal(&decoded, r, sizeof(decoded));

	assert_err(proto_record_sign(r, secret_key, wire, sizeof(wire),
				     &wire_len, id),
		   CM_OK);
	assert_hex_equal(wire, wire_len, wire_hex);
	assert_hex_equal(id, PROTO_ID_LEN, id_hex);

	assert_err(proto_record_open(wire, wire_len, NOW_MS, &opened), CM_OK);
	assert_memory_equal(&opened.rec, r, sizeof(opened.rec));
	assert_hex_equal(opened.id, PROTO_ID_LEN, id_hex);
	assert_hex_equal(opened.sig, PROTO_SIG_LEN, sig_hex);
	assert_ptr_equal(opened.wire, wire);
	assert_int_equal(opened.wire_len, wire_len);
}

static void vector_public_key(void **state)
{
	(void)state;
	assert_hex_equal(public_key, PROTO_KEY_LEN, VEC_PUBLIC_KEY);
}

static void vector_clip(void **state)
{
	proto_record r;

	(void)state;
	make_clip(&r);
	check_vector(&r, CLIP_BODY, CLIP_ID, CLIP_SIG, CLIP_WIRE);
}

static void vector_retract(void **state)
{
	proto_record r;

	(void)state;
	make_retract(&r);
	check_vector(&r, RETRACT_BODY, RETRACT_ID, RETRACT_SIG, RETRACT_WIRE);
}

static void vector_profile(void **state)
{
	proto_record r;

	(void)state;
	make_profile(&r);
	check_vector(&r, PROFILE_BODY, PROFILE_ID, PROFILE_SIG, PROFILE_WIRE);
}

/* The signature in each vector verifies with plain libsodium over the
 * documented message, independently of proto_record_open(). */
static void vector_signature_message(void **state)
{
	static const struct {
		const char *type;
		const char *id;
		const char *sig;
	} vectors[] = {
		{ "clip", CLIP_ID, CLIP_SIG },
		{ "retract", RETRACT_ID, RETRACT_SIG },
		{ "profile", PROFILE_ID, PROFILE_SIG },
	};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		uint8_t msg[64];
		uint8_t sig[PROTO_SIG_LEN];
		size_t n = strlen(vectors[i].type);

		memcpy(msg, "clipmesh/1/", 11);
		memcpy(msg + 11, vectors[i].type, n + 1);
		unhex(vectors[i].id, msg + 12 + n, PROTO_ID_LEN);
		unhex(vectors[i].sig, sig, sizeof(sig));
		assert_int_equal(crypto_sign_verify_detached(
					 sig, msg, 12 + n + PROTO_ID_LEN,
					 public_key),
				 0);
	}
}

/* ---- encoder output is minimal ---- */

/* Encodes r and checks that `expected_hex` occurs in the body right
 * after `key_hex`. */
static void check_encoded_as(const proto_record *r, const char *key_hex,
			     const char *expected_hex)
{
	uint8_t body[CM_BODY_MAX];
	uint8_t pattern[64];
	size_t body_len;
	size_t klen;
	size_t vlen;
	proto_record back;

	assert_err(proto_body_encode(r, body, sizeof(body), &body_len), CM_OK);
	klen = unhex(key_hex, pattern, sizeof(pattern));
	vlen = unhex(expected_hex, pattern + klen, sizeof(pattern) - klen);
	assert_non_null(memmem(body, body_len, pattern, klen + vlen));
	assert_err(proto_body_decode(body, body_len, &back), CM_OK);
}

static void encode_minimal_uint(void **state)
{
	static const struct {
		uint64_t value;
		const char *hex;
	} cases[] = {
		{ 0, "00" },
		{ 127, "7f" },
		{ 128, "cc80" },
		{ 255, "ccff" },
		{ 256, "cd0100" },
		{ 65535, "cdffff" },
		{ 65536, "ce00010000" },
		{ 4294967295ULL, "ceffffffff" },
		{ 4294967296ULL, "cf0000000100000000" },
		{ UINT64_MAX, "cfffffffffffffffff" },
	};
	proto_record r;

	(void)state;
	make_retract(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.created_ms = cases[i].value;
		check_encoded_as(&r, K_CREATED, cases[i].hex);
	}
}

static void encode_minimal_str(void **state)
{
	static const struct {
		size_t len;
		const char *header;
	} cases[] = {
		{ 1, "a1" },     { 31, "bf" },     { 32, "d920" },
		{ 200, "d9c8" }, { 255, "d9ff" },  { 256, "da0100" },
		{ 999, "da03e7" },
	};
	proto_record r;

	(void)state;
	make_profile(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(r.bio, 'b', cases[i].len);
		r.bio[cases[i].len] = '\0';
		check_encoded_as(&r, K_BIO, cases[i].header);
	}
}

static void encode_minimal_containers(void **state)
{
	proto_record r;

	(void)state;
	make_clip(&r);
	r.n_tags = CM_TAGS_MAX;
	for (size_t i = 0; i < CM_TAGS_MAX; i++)
		snprintf(r.tags[i], sizeof(r.tags[i]), "t%02zu", i);
	check_encoded_as(&r, K_TAGS, "dc0010a3743030");

	r.n_tags = 15;
	check_encoded_as(&r, K_TAGS, "9fa3743030");
}

/* ---- strict decoding: one case per non-canonical form ---- */

enum base { CLIP, RETRACT, PROFILE };

/* A body variant: the base body with `from` replaced by `to`. */
struct variant {
	const char *name;
	enum base base;
	const char *from;
	const char *to;
	cm_err expected;
};

/* A variant that needs two replacements, e.g. a new key and the map
 * header that counts it. */
struct variant2 {
	const char *name;
	enum base base;
	const char *from;
	const char *to;
	const char *from2;
	const char *to2;
	cm_err expected;
};

static const struct variant2 variants2[] = {
	{ "unknown key", RETRACT, "85" K_AUTHOR, "86" K_AUTHOR, K_V "01",
	  K_V "01" "a17a01", CM_ERR_UNKNOWN_KEY },
	{ "key of another type", RETRACT, "85" K_AUTHOR, "86" K_AUTHOR,
	  K_TYPE V_RETRACT, K_TITLE "a178" K_TYPE V_RETRACT,
	  CM_ERR_UNKNOWN_KEY },
	{ "media map of 4", CLIP, "83a468617368", "84a468617368",
	  "a474797065" VIDEO_MP4, "a474797065" VIDEO_MP4 "a17a01",
	  CM_ERR_TOO_MANY },
	{ "missing target", RETRACT, "85" K_AUTHOR, "84" K_AUTHOR,
	  K_TARGET "c420" CLIP_ID, "", CM_ERR_MISSING_FIELD },
	{ "missing media size", CLIP, "83a468617368c420" MEDIA_ABC,
	  "82a468617368c420" MEDIA_ABC, "a473697a6503", "",
	  CM_ERR_MISSING_FIELD },
};

static const struct variant variants[] = {
	/* integers */
	{ "v as uint8", RETRACT, K_V "01", K_V "cc01", CM_ERR_NONMINIMAL_INT },
	{ "v as uint16", RETRACT, K_V "01", K_V "cd0001",
	  CM_ERR_NONMINIMAL_INT },
	{ "v as uint32", RETRACT, K_V "01", K_V "ce00000001",
	  CM_ERR_NONMINIMAL_INT },
	{ "v as uint64", RETRACT, K_V "01", K_V "cf0000000000000001",
	  CM_ERR_NONMINIMAL_INT },
	{ "v as int8", RETRACT, K_V "01", K_V "d001", CM_ERR_NONMINIMAL_INT },
	{ "created uint64 under 2^32", RETRACT, K_CREATED RETRACT_CREATED,
	  K_CREATED "cf00000000ffffffff", CM_ERR_NONMINIMAL_INT },
	{ "rating as uint8", CLIP, K_RATING "04", K_RATING "cc04",
	  CM_ERR_NONMINIMAL_INT },
	{ "v negative fixint", RETRACT, K_V "01", K_V "ff",
	  CM_ERR_NEGATIVE_INT },
	{ "v negative int8", RETRACT, K_V "01", K_V "d0ff",
	  CM_ERR_NEGATIVE_INT },
	{ "v negative int64", RETRACT, K_V "01", K_V "d3ffffffffffffffff",
	  CM_ERR_NEGATIVE_INT },
	{ "v 2", RETRACT, K_V "01", K_V "02", CM_ERR_BAD_VERSION },
	{ "v 0", RETRACT, K_V "01", K_V "00", CM_ERR_BAD_VERSION },

	/* lengths */
	{ "key as str8", RETRACT, K_TYPE, "d90474797065",
	  CM_ERR_NONMINIMAL_LEN },
	{ "str as str16", RETRACT, V_RETRACT, "da000772657472616374",
	  CM_ERR_NONMINIMAL_LEN },
	{ "str as str32", RETRACT, V_RETRACT, "db0000000772657472616374",
	  CM_ERR_NONMINIMAL_LEN },
	{ "fixstr as str16", CLIP, "be436f756e746572",
	  "da001e436f756e746572", CM_ERR_NONMINIMAL_LEN },
	{ "bin as bin16", RETRACT, K_AUTHOR "c420", K_AUTHOR "c50020",
	  CM_ERR_NONMINIMAL_LEN },
	{ "bin as bin32", RETRACT, K_AUTHOR "c420", K_AUTHOR "c600000020",
	  CM_ERR_NONMINIMAL_LEN },
	{ "map as map16", RETRACT, "85" K_AUTHOR, "de0005" K_AUTHOR,
	  CM_ERR_NONMINIMAL_LEN },
	{ "map as map32", RETRACT, "85" K_AUTHOR, "df00000005" K_AUTHOR,
	  CM_ERR_NONMINIMAL_LEN },
	{ "array as array16", CLIP, K_TAGS "92", K_TAGS "dc0002",
	  CM_ERR_NONMINIMAL_LEN },
	{ "inner map as map16", CLIP, "9283a468617368", "92de0003a468617368",
	  CM_ERR_NONMINIMAL_LEN },

	/* keys */
	{ "unsorted keys", RETRACT,
	  K_AUTHOR "c420" VEC_PUBLIC_KEY K_CREATED RETRACT_CREATED,
	  K_CREATED RETRACT_CREATED K_AUTHOR "c420" VEC_PUBLIC_KEY,
	  CM_ERR_UNSORTED_KEYS },
	{ "unsorted media keys", CLIP,
	  "a468617368c420" MEDIA_ABC "a473697a6503",
	  "a473697a6503a468617368c420" MEDIA_ABC, CM_ERR_UNSORTED_KEYS },
	{ "duplicate key", RETRACT, "85" K_AUTHOR "c420" VEC_PUBLIC_KEY,
	  "86" K_AUTHOR "c420" VEC_PUBLIC_KEY K_AUTHOR "c420" VEC_PUBLIC_KEY,
	  CM_ERR_DUPLICATE_KEY },
	{ "unknown media key", CLIP, "a473697a6503", "a473697a6603",
	  CM_ERR_UNKNOWN_KEY },
	{ "key not a string", RETRACT, K_AUTHOR, "01", CM_ERR_BAD_TYPE },
	{ "key a map", RETRACT, K_AUTHOR, "80", CM_ERR_TOO_DEEP },

	/* forbidden types */
	{ "float64", RETRACT, K_V "01", K_V "cb3ff0000000000000",
	  CM_ERR_FLOAT },
	{ "float32", RETRACT, K_V "01", K_V "ca3f800000", CM_ERR_FLOAT },
	{ "nil", RETRACT, K_V "01", K_V "c0", CM_ERR_BAD_TYPE },
	{ "true", RETRACT, K_V "01", K_V "c3", CM_ERR_BAD_TYPE },
	{ "false", RETRACT, K_V "01", K_V "c2", CM_ERR_BAD_TYPE },
	{ "reserved 0xc1", RETRACT, K_V "01", K_V "c1", CM_ERR_BAD_TYPE },
	{ "fixext1", RETRACT, K_V "01", K_V "d40101", CM_ERR_EXT },
	{ "ext8", RETRACT, K_V "01", K_V "c7010101", CM_ERR_EXT },
	{ "string where bin", RETRACT, K_TARGET "c420", K_TARGET "d920",
	  CM_ERR_BAD_TYPE },
	{ "map where array", CLIP, K_TAGS "92", K_TAGS "82", CM_ERR_BAD_TYPE },

	/* nesting */
	{ "map where bin", RETRACT, K_TARGET "c420" CLIP_ID,
	  K_TARGET "81a16101", CM_ERR_TOO_DEEP },
	{ "array where uint", RETRACT, K_V "01", K_V "9101", CM_ERR_TOO_DEEP },
	{ "array in tags", CLIP, K_TAGS "92a7", K_TAGS "9291a7",
	  CM_ERR_TOO_DEEP },
	{ "map in media hash", CLIP, "a468617368c420" MEDIA_ABC,
	  "a46861736881a16101", CM_ERR_TOO_DEEP },

	/* bytes after the map */
	{ "trailing byte", RETRACT, V_RETRACT K_V "01",
	  V_RETRACT K_V "01" "00", CM_ERR_TRAILING },

	/* empty optionals */
	{ "empty text", CLIP, K_TEXT TEXT_VALUE, K_TEXT "a0",
	  CM_ERR_EMPTY_OPTIONAL },
	{ "empty lang", CLIP, K_LANG "a2656e", K_LANG "a0",
	  CM_ERR_EMPTY_OPTIONAL },
	{ "empty tags", CLIP, K_TAGS TAGS_VALUE, K_TAGS "90",
	  CM_ERR_EMPTY_OPTIONAL },
	{ "empty bio", PROFILE, K_BIO BIO_VALUE, K_BIO "a0",
	  CM_ERR_EMPTY_OPTIONAL },
	{ "empty media", CLIP, K_MEDIA MEDIA_VALUE, K_MEDIA "90",
	  CM_ERR_MISSING_FIELD },
	{ "empty name", PROFILE, K_NAME NAME_VALUE, K_NAME "a0",
	  CM_ERR_MISSING_FIELD },

	/* field values */
	{ "type unknown", RETRACT, V_RETRACT, "a8726574726163747a",
	  CM_ERR_BAD_KIND },
	{ "rating 0", CLIP, K_RATING "04", K_RATING "00", CM_ERR_BAD_FIELD },
	{ "rating 6", CLIP, K_RATING "04", K_RATING "06", CM_ERR_BAD_FIELD },
	{ "target 31 bytes", RETRACT, K_TARGET "c420" CLIP_ID,
	  K_TARGET "c41f" "38e8f47a86f2f7eefecc373869ec5654"
		   "9385fdc93779bace668c5914217671",
	  CM_ERR_BAD_FIELD },
	{ "target 33 bytes", RETRACT, K_TARGET "c420", K_TARGET "c421",
	  CM_ERR_TOO_LONG },
	{ "tags unsorted", CLIP, TAGS_VALUE,
	  "92a76b69746368656ea7626c656e646572", CM_ERR_BAD_FIELD },
	{ "tags duplicate", CLIP, TAGS_VALUE,
	  "92a7626c656e646572a7626c656e646572", CM_ERR_BAD_FIELD },
	{ "tag with space", CLIP, "a76b69746368656e", "a76b69742068656e",
	  CM_ERR_BAD_FIELD },
	{ "tag with nbsp", CLIP, "a76b69746368656e", "a86b6974c2a068656e",
	  CM_ERR_BAD_FIELD },
	{ "tag empty", CLIP, TAGS_VALUE, "92a0a7626c656e646572",
	  CM_ERR_BAD_FIELD },
	{ "lang starts with digit", CLIP, K_LANG "a2656e", K_LANG "a2316e",
	  CM_ERR_BAD_FIELD },
	{ "lang one letter", CLIP, K_LANG "a2656e", K_LANG "a165",
	  CM_ERR_BAD_FIELD },
	{ "lang underscore", CLIP, K_LANG "a2656e", K_LANG "a5656e5f7573",
	  CM_ERR_BAD_FIELD },
	{ "media size 0", CLIP, "a473697a6503", "a473697a6500",
	  CM_ERR_BAD_FIELD },
	{ "media size over max", CLIP, "a473697a6503",
	  "a473697a65cf0000000100000001", CM_ERR_BAD_FIELD },
	{ "media type unknown", CLIP, "aa696d6167652f6a706567",
	  "a9766964656f2f617669", CM_ERR_BAD_MEDIA_TYPE },
	{ "gtin check digit", CLIP, "6774696e3a32303030303030303031303132",
	  "6774696e3a32303030303030303031303133", CM_ERR_BAD_GTIN },
	{ "product untyped", CLIP, "b26774696e3a32303030303030303031303132",
	  "ad32303030303030303031303132", CM_ERR_BAD_PRODUCT },

	/* UTF-8 and control characters, in the profile name */
	{ "utf8 overlong 2-byte", PROFILE, NAME_VALUE, "a3c0af41",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 overlong 3-byte", PROFILE, NAME_VALUE, "a3e080af",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 overlong 4-byte", PROFILE, NAME_VALUE, "a4f08080af",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 surrogate", PROFILE, NAME_VALUE, "a3eda080", CM_ERR_BAD_UTF8 },
	{ "utf8 over U+10FFFF", PROFILE, NAME_VALUE, "a4f4908080",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 lead byte f5", PROFILE, NAME_VALUE, "a4f5808080",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 stray continuation", PROFILE, NAME_VALUE, "a24180",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 truncated sequence", PROFILE, NAME_VALUE, "a341e282",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 lead then ascii", PROFILE, NAME_VALUE, "a3e24141",
	  CM_ERR_BAD_UTF8 },
	{ "utf8 valid 4-byte", PROFILE, NAME_VALUE, "a4f09f8e89", CM_OK },
	{ "control NUL", PROFILE, NAME_VALUE, "a24100", CM_ERR_CONTROL_CHAR },
	{ "control BEL", PROFILE, NAME_VALUE, "a24107", CM_ERR_CONTROL_CHAR },
	{ "control DEL", PROFILE, NAME_VALUE, "a2417f", CM_ERR_CONTROL_CHAR },
	{ "control C1 NEL", PROFILE, NAME_VALUE, "a341c285",
	  CM_ERR_CONTROL_CHAR },
	{ "newline in name", PROFILE, NAME_VALUE, "a2410a",
	  CM_ERR_CONTROL_CHAR },
	{ "tab in bio", PROFILE, "2e0a486f6e657374", "2e09486f6e657374",
	  CM_ERR_CONTROL_CHAR },
	{ "CR in text", CLIP, "2e0a546865", "2e0d546865",
	  CM_ERR_CONTROL_CHAR },
	{ "bad utf8 in title", CLIP, "be436f756e746572", "befe6f756e746572",
	  CM_ERR_BAD_UTF8 },
};

static const char *base_hex(enum base base)
{
	switch (base) {
	case CLIP:
		return CLIP_BODY;
	case RETRACT:
		return RETRACT_BODY;
	case PROFILE:
		break;
	}
	return PROFILE_BODY;
}

/* Decodes the base body with up to two replacements; returns whether
 * the result was `expected`, printing the variant otherwise. */
static bool decode_variant(const char *name, enum base base,
			   const char *from, const char *to,
			   const char *from2, const char *to2,
			   cm_err expected)
{
	static uint8_t body[CM_BODY_MAX];
	static uint8_t once[CM_BODY_MAX];
	static uint8_t twice[CM_BODY_MAX];
	const uint8_t *input = once;
	proto_record r;
	size_t len = unhex(base_hex(base), body, sizeof(body));
	cm_err err;

	len = splice_hex(body, len, from, to, once, sizeof(once));
	if (from2) {
		len = splice_hex(once, len, from2, to2, twice, sizeof(twice));
		input = twice;
	}

	err = proto_body_decode(input, len, &r);
	if (err == expected)
		return true;
	print_error("variant \"%s\": got %s (%s), expected %s\n", name,
		    cm_err_name(err), cm_err_detail(), cm_err_name(expected));
	return false;
}

static void decode_variants(void **state)
{
	size_t failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		const struct variant *v = &variants[i];

		if (!decode_variant(v->name, v->base, v->from, v->to, NULL,
				    NULL, v->expected))
			failures++;
	}
	for (size_t i = 0; i < sizeof(variants2) / sizeof(variants2[0]); i++) {
		const struct variant2 *v = &variants2[i];

		if (!decode_variant(v->name, v->base, v->from, v->to, v->from2,
				    v->to2, v->expected))
			failures++;
	}
	assert_int_equal(failures, 0);
}

static void decode_every_prefix_truncated(void **state)
{
	static const char *const bodies[] = { CLIP_BODY, RETRACT_BODY,
					      PROFILE_BODY };
	uint8_t body[CM_BODY_MAX];
	proto_record r;

	(void)state;
	for (size_t b = 0; b < 3; b++) {
		size_t len = unhex(bodies[b], body, sizeof(body));

		for (size_t cut = 0; cut < len; cut++)
			assert_err(proto_body_decode(body, cut, &r),
				   CM_ERR_TRUNCATED);
	}
}

/* A header that claims 2^32 - 1 elements in a few bytes fails before any
 * loop or allocation. */
static void decode_huge_count_tiny_input(void **state)
{
	uint8_t body[64];
	proto_record r;
	size_t len;

	(void)state;
	len = unhex("81" K_TAGS "ddffffffff", body, sizeof(body));
	assert_err(proto_body_decode(body, len, &r), CM_ERR_TRUNCATED);

	len = unhex("dfffffffff" K_TAGS, body, sizeof(body));
	assert_err(proto_body_decode(body, len, &r), CM_ERR_TRUNCATED);

	len = unhex("81" K_TITLE "dbffffffff41", body, sizeof(body));
	assert_err(proto_body_decode(body, len, &r), CM_ERR_TRUNCATED);
}

static void decode_too_many(void **state)
{
	static uint8_t body[CM_BODY_MAX];
	static uint8_t longer[CM_BODY_MAX];
	uint8_t tags[3 + (CM_TAGS_MAX + 1) * 4];
	uint8_t old[32];
	size_t old_len;
	proto_record r;
	size_t len;
	size_t n = 0;

	(void)state;
	/* 17 sorted, unique tags "t00".."t16" where 16 are allowed. */
	tags[n++] = 0xdc;
	tags[n++] = 0x00;
	tags[n++] = CM_TAGS_MAX + 1;
	for (int i = 0; i <= CM_TAGS_MAX; i++) {
		tags[n++] = 0xa3;
		tags[n++] = 't';
		tags[n++] = (uint8_t)('0' + i / 10);
		tags[n++] = (uint8_t)('0' + i % 10);
	}
	len = unhex(CLIP_BODY, body, sizeof(body));
	old_len = unhex(TAGS_VALUE, old, sizeof(old));
	len = splice(body, len, old, old_len, tags, n, longer, sizeof(longer));
	assert_err(proto_body_decode(longer, len, &r), CM_ERR_TOO_MANY);

	/* A body map with more entries than there are known keys. */
	len = unhex("de0010", body, sizeof(body));
	memset(body + len, 0xa0, 64);
	assert_err(proto_body_decode(body, len + 64, &r), CM_ERR_TOO_MANY);
}

/* Containers nested far deeper than the schema are rejected at the
 * first level too deep, without recursion. */
static void decode_deep_nesting(void **state)
{
	static uint8_t body[CM_BODY_MAX];
	proto_record r;
	size_t len;

	(void)state;
	len = unhex("81" K_TAGS, body, sizeof(body));
	memset(body + len, 0x91, 10000);
	body[len + 10000] = 0xa1;
	body[len + 10001] = 'x';
	assert_err(proto_body_decode(body, len + 10002, &r), CM_ERR_TOO_DEEP);

	len = unhex("81" K_TITLE, body, sizeof(body));
	memset(body + len, 0x81, 10000);
	assert_err(proto_body_decode(body, len + 10000, &r), CM_ERR_TOO_DEEP);
}

static void decode_body_over_max(void **state)
{
	static uint8_t body[CM_BODY_MAX + 1];
	proto_record r;

	(void)state;
	memset(body, 0, sizeof(body));
	assert_err(proto_body_decode(body, sizeof(body), &r), CM_ERR_TOO_LONG);
}

/* ---- string limits: max accepted, max + 1 rejected ---- */

/*
 * Sets a field of r to max copies of 'a', checks that the body encodes
 * and decodes, then lengthens that string in the body by one byte and
 * checks that decoding fails with CM_ERR_TOO_LONG.
 */
static void check_limit(proto_record *r, char *field, size_t max,
			const char *prefix)
{
	static uint8_t body[CM_BODY_MAX];
	static uint8_t longer[CM_BODY_MAX];
	uint8_t at_max[8 + 4096];
	uint8_t over[8 + 4096];
	size_t plen = strlen(prefix);
	size_t len;
	size_t n_at;
	size_t n_over;
	proto_record back;

	size_t offset = (size_t)(field - (char *)r);

	memcpy(field, prefix, plen);
	memset(field + plen, 'a', max - plen);
	field[max] = '\0';
	assert_err(proto_body_encode(r, body, sizeof(body), &len), CM_OK);
	assert_err(proto_body_decode(body, len, &back), CM_OK);
	assert_string_equal((char *)&back + offset, field);

	/* The string as encoded, and one byte longer: header, prefix, then
	 * the run of 'a's. */
	n_at = make_str(max, 'a', at_max);
	memcpy(at_max + n_at - max, prefix, plen);
	n_over = make_str(max + 1, 'a', over);
	memcpy(over + n_over - max - 1, prefix, plen);
	len = splice(body, len, at_max, n_at, over, n_over, longer,
		     sizeof(longer));
	assert_err(proto_body_decode(longer, len, &back), CM_ERR_TOO_LONG);
}

static void limit_strings(void **state)
{
	proto_record r;

	(void)state;
	make_clip(&r);
	check_limit(&r, r.title, CM_TITLE_MAX, "");
	make_clip(&r);
	check_limit(&r, r.text, CM_TEXT_MAX, "");
	make_clip(&r);
	check_limit(&r, r.lang, CM_LANG_MAX, "");
	make_clip(&r);
	check_limit(&r, r.tags[1], CM_TAG_MAX, "k");
	make_clip(&r);
	check_limit(&r, r.product, CM_PRODUCT_MAX, "url:https://example.com/");
	make_profile(&r);
	check_limit(&r, r.name, CM_NAME_MAX, "");
	make_profile(&r);
	check_limit(&r, r.bio, CM_BIO_MAX, "");
}

static void limit_title_detail(void **state)
{
	static uint8_t body[CM_BODY_MAX];
	static uint8_t longer[CM_BODY_MAX];
	uint8_t at_max[2 + CM_TITLE_MAX];
	uint8_t over[2 + CM_TITLE_MAX + 1];
	proto_record r;
	size_t len;

	(void)state;
	make_clip(&r);
	memset(r.title, 'a', CM_TITLE_MAX);
	r.title[CM_TITLE_MAX] = '\0';
	assert_err(proto_body_encode(&r, body, sizeof(body), &len), CM_OK);
	len = splice(body, len, at_max, make_str(CM_TITLE_MAX, 'a', at_max),
		     over, make_str(CM_TITLE_MAX + 1, 'a', over), longer,
		     sizeof(longer));
	assert_err(proto_body_decode(longer, len, &r), CM_ERR_TOO_LONG);
	assert_string_equal(cm_err_detail(), "title is 201 bytes, max 200");
}

/* ---- validation of records built in memory ---- */

static void validate_rejects(void **state)
{
	proto_record r;

	(void)state;
	make_clip(&r);
	assert_err(proto_record_validate(&r), CM_OK);

	make_clip(&r);
	cm_strlcpy(r.tags[0], "zzz", sizeof(r.tags[0]));
	assert_err(proto_record_validate(&r), CM_ERR_BAD_FIELD);

	make_clip(&r);
	r.rating = 6;
	assert_err(proto_record_validate(&r), CM_ERR_BAD_FIELD);

	make_clip(&r);
	r.n_media = 0;
	assert_err(proto_record_validate(&r), CM_ERR_MISSING_FIELD);

	make_clip(&r);
	r.n_media = CM_MEDIA_MAX + 1;
	assert_err(proto_record_validate(&r), CM_ERR_TOO_MANY);

	make_clip(&r);
	r.n_tags = CM_TAGS_MAX + 1;
	assert_err(proto_record_validate(&r), CM_ERR_TOO_MANY);

	make_clip(&r);
	cm_strlcpy(r.media[0].type, "video/x-msvideo", sizeof(r.media[0].type));
	assert_err(proto_record_validate(&r), CM_ERR_BAD_MEDIA_TYPE);

	make_clip(&r);
	r.title[0] = '\0';
	assert_err(proto_record_validate(&r), CM_ERR_MISSING_FIELD);

	make_clip(&r);
	memset(r.title, 'a', sizeof(r.title));
	assert_err(proto_record_validate(&r), CM_ERR_TOO_LONG);

	make_clip(&r);
	cm_strlcpy(r.name, "stray", sizeof(r.name));
	assert_err(proto_record_validate(&r), CM_ERR_BAD_FIELD);

	make_retract(&r);
	r.rating = 3;
	assert_err(proto_record_validate(&r), CM_ERR_BAD_FIELD);

	make_profile(&r);
	r.target[5] = 1;
	assert_err(proto_record_validate(&r), CM_ERR_BAD_FIELD);

	make_profile(&r);
	r.kind = (proto_kind)9;
	assert_err(proto_record_validate(&r), CM_ERR_BAD_KIND);
}

static void sort_tags_sorts_and_dedups(void **state)
{
	proto_record r;

	(void)state;
	make_clip(&r);
	cm_strlcpy(r.tags[0], "kitchen", sizeof(r.tags[0]));
	cm_strlcpy(r.tags[1], "Blender", sizeof(r.tags[1]));
	cm_strlcpy(r.tags[2], "kitchen", sizeof(r.tags[2]));
	cm_strlcpy(r.tags[3], "\xc3\xa9t\xc3\xa9", sizeof(r.tags[3]));
	r.n_tags = 4;
	proto_record_sort_tags(&r);

	assert_int_equal(r.n_tags, 3);
	assert_string_equal(r.tags[0], "Blender");
	assert_string_equal(r.tags[1], "kitchen");
	assert_string_equal(r.tags[2], "\xc3\xa9t\xc3\xa9");
	assert_string_equal(r.tags[3], "");
	assert_err(proto_record_validate(&r), CM_OK);
}

static void sign_wrong_secret(void **state)
{
	uint8_t pk[PROTO_KEY_LEN];
	uint8_t sk[PROTO_SECRET_LEN];
	uint8_t wire[CM_RECORD_MAX];
	uint8_t id[PROTO_ID_LEN];
	size_t len;
	proto_record r;

	(void)state;
	crypto_sign_keypair(pk, sk);
	make_profile(&r);
	assert_err(proto_record_sign(&r, sk, wire, sizeof(wire), &len, id),
		   CM_ERR_BAD_KEY);

	/* A secret whose public half was replaced by the author's key. */
	memcpy(sk + 32, public_key, PROTO_KEY_LEN);
	assert_err(proto_record_sign(&r, sk, wire, sizeof(wire), &len, id),
		   CM_ERR_BAD_KEY);
}

static void sign_small_buffer(void **state)
{
	uint8_t wire[100];
	uint8_t id[PROTO_ID_LEN];
	size_t len;
	proto_record r;

	(void)state;
	make_profile(&r);
	assert_err(proto_record_sign(&r, secret_key, wire, sizeof(wire), &len,
				     id),
		   CM_ERR_USAGE);
}

/* ---- envelope ---- */

static void open_envelope_variants(void **state)
{
	static const struct {
		const char *name;
		const char *from;
		const char *to;
		cm_err expected;
	} cases[] = {
		{ "array of 1", "92c474", "91c474", CM_ERR_MISSING_FIELD },
		{ "array of 3", "92c474", "93c474", CM_ERR_TOO_MANY },
		{ "array16", "92c474", "dc0002c474", CM_ERR_NONMINIMAL_LEN },
		{ "map", "92c474", "82c474", CM_ERR_BAD_TYPE },
		{ "body bin16", "92c474", "92c50074", CM_ERR_NONMINIMAL_LEN },
		{ "body as str", "92c474", "92d974", CM_ERR_BAD_TYPE },
		{ "signature bin16", "c440" RETRACT_SIG, "c50040" RETRACT_SIG,
		  CM_ERR_NONMINIMAL_LEN },
		{ "signature 63 bytes", "c4402f21", "c43f21",
		  CM_ERR_BAD_SIGNATURE },
		{ "signature 65 bytes", "c440" RETRACT_SIG,
		  "c441" RETRACT_SIG "00", CM_ERR_TOO_LONG },
		{ "trailing byte", RETRACT_SIG, RETRACT_SIG "00",
		  CM_ERR_TRAILING },
	};
	uint8_t wire[CM_RECORD_MAX];
	uint8_t mutated[CM_RECORD_MAX];
	proto_signed out;
	size_t failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = unhex(RETRACT_WIRE, wire, sizeof(wire));
		cm_err err;

		len = splice_hex(wire, len, cases[i].from, cases[i].to, mutated,
				 sizeof(mutated));
		err = proto_record_open(mutated, len, NOW_MS, &out);
		if (err != cases[i].expected) {
			print_error("case \"%s\": got %s (%s), expected %s\n",
				    cases[i].name, cm_err_name(err),
				    cm_err_detail(),
				    cm_err_name(cases[i].expected));
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void open_every_prefix_truncated(void **state)
{
	uint8_t wire[CM_RECORD_MAX];
	proto_signed out;
	size_t len;

	(void)state;
	len = unhex(CLIP_WIRE, wire, sizeof(wire));
	for (size_t cut = 0; cut < len; cut++)
		assert_err(proto_record_open(wire, cut, NOW_MS, &out),
			   CM_ERR_TRUNCATED);
}

static void open_over_max(void **state)
{
	static uint8_t wire[CM_RECORD_MAX + 1];
	proto_signed out;

	(void)state;
	assert_err(proto_record_open(wire, sizeof(wire), NOW_MS, &out),
		   CM_ERR_TOO_LONG);
}

/* ---- forgeries ---- */

/* Flipping any bit pattern in any byte of a signed record must make it
 * fail to open. */
static void open_every_byte_changed(void **state)
{
	static const char *const wires[] = { CLIP_WIRE, RETRACT_WIRE,
					     PROFILE_WIRE };
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	uint8_t wire[CM_RECORD_MAX];
	proto_signed out;
	size_t accepted = 0;

	(void)state;
	for (size_t w = 0; w < 3; w++) {
		size_t len = unhex(wires[w], wire, sizeof(wire));

		assert_err(proto_record_open(wire, len, NOW_MS, &out), CM_OK);
		for (size_t at = 0; at < len; at++) {
			for (size_t m = 0; m < sizeof(masks); m++) {
				wire[at] ^= masks[m];
				if (proto_record_open(wire, len, NOW_MS,
						      &out) == CM_OK) {
					print_error("wire %zu accepted with "
						    "byte %zu ^ 0x%02x\n",
						    w, at, masks[m]);
					accepted++;
				}
				wire[at] ^= masks[m];
			}
		}
	}
	assert_int_equal(accepted, 0);
}

/* Adds the group order L to the little-endian scalar s (s + L < 2^256
 * because s < L < 2^253). */
static void add_group_order(uint8_t s[32])
{
	static const uint8_t order[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
		0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
	};
	unsigned carry = 0;

	for (int i = 0; i < 32; i++) {
		unsigned sum = s[i] + order[i] + carry;

		s[i] = (uint8_t)sum;
		carry = sum >> 8;
	}
	assert_int_equal(carry, 0);
}

/* S + L is the same scalar mod L, so a verifier that did not require
 * S < L would accept it as a second signature for the same record. */
static void open_rejects_unreduced_s(void **state)
{
	uint8_t wire[CM_RECORD_MAX];
	proto_signed out;
	size_t len;

	(void)state;
	len = unhex(RETRACT_WIRE, wire, sizeof(wire));
	add_group_order(wire + len - 32);
	assert_err(proto_record_open(wire, len, NOW_MS, &out),
		   CM_ERR_BAD_SIGNATURE);
}

/*
 * With the identity point as public key A, [S]B = R + [k]A holds for
 * R = [s]B and S = s whatever the message, so a verifier that accepted
 * small-order keys would accept this universal forgery.
 */
static void open_rejects_small_order_key(void **state)
{
	/* The identity and a point of order 8, both in libsodium's
	 * small-order list. */
	static const char *const keys[] = {
		"01000000000000000000000000000000"
		"00000000000000000000000000000000",
		"c7176a703d4dd84fba3c0b760d10670f"
		"2a2053fa2c39ccc64ec7fd7792ac037a",
	};
	uint8_t body[CM_BODY_MAX];
	uint8_t wire[CM_RECORD_MAX];
	uint8_t sig[PROTO_SIG_LEN];
	size_t body_len;
	size_t len;
	proto_signed out;
	proto_record r;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		make_profile(&r);
		unhex(keys[i], r.author, PROTO_KEY_LEN);
		assert_err(proto_body_encode(&r, body, sizeof(body), &body_len),
			   CM_OK);

		crypto_core_ed25519_scalar_random(sig + 32);
		assert_int_equal(crypto_scalarmult_ed25519_base_noclamp(
					 sig, sig + 32),
				 0);
		len = make_wire(body, body_len, sig, wire);
		assert_err(proto_record_open(wire, len, NOW_MS, &out),
			   CM_ERR_BAD_KEY);
	}
}

/* A signature made for one record type never verifies as another. */
static void open_rejects_replayed_type(void **state)
{
	uint8_t body[CM_BODY_MAX];
	uint8_t wire[CM_RECORD_MAX];
	uint8_t sig[PROTO_SIG_LEN];
	uint8_t id[PROTO_ID_LEN];
	size_t body_len;
	size_t len;
	proto_signed out;

	(void)state;
	body_len = unhex(PROFILE_BODY, body, sizeof(body));
	proto_record_id(body, body_len, id);

	/* The clip vector's signature attached to the profile body. */
	unhex(CLIP_SIG, sig, sizeof(sig));
	len = make_wire(body, body_len, sig, wire);
	assert_err(proto_record_open(wire, len, NOW_MS, &out),
		   CM_ERR_BAD_SIGNATURE);

	/* The profile's own id signed under the clip domain. */
	sign_id("clip", id, sig);
	len = make_wire(body, body_len, sig, wire);
	assert_err(proto_record_open(wire, len, NOW_MS, &out),
		   CM_ERR_BAD_SIGNATURE);

	/* The same id signed under the profile domain opens. */
	sign_id("profile", id, sig);
	len = make_wire(body, body_len, sig, wire);
	assert_err(proto_record_open(wire, len, NOW_MS, &out), CM_OK);
}

/* ---- time ---- */

static cm_err open_created(uint64_t created, uint64_t now)
{
	uint8_t wire[CM_RECORD_MAX];
	uint8_t id[PROTO_ID_LEN];
	size_t len;
	proto_signed out;
	proto_record r;
	cm_err err;

	make_profile(&r);
	r.created_ms = created;
	err = proto_record_sign(&r, secret_key, wire, sizeof(wire), &len, id);
	if (err)
		return err;
	return proto_record_open(wire, len, now, &out);
}

static void open_future(void **state)
{
	(void)state;
	assert_err(open_created(NOW_MS + CM_FUTURE_SKEW_MS, NOW_MS), CM_OK);
	assert_err(open_created(NOW_MS + CM_FUTURE_SKEW_MS + 1, NOW_MS),
		   CM_ERR_FUTURE);
	assert_err(open_created(UINT64_MAX, NOW_MS), CM_ERR_FUTURE);
	assert_err(open_created(UINT64_MAX, UINT64_MAX), CM_OK);
	assert_err(open_created(0, NOW_MS), CM_OK);
}

/* Decoding a stored record gives what proto_record_open gives, computes
 * the id when none is passed, and still rejects a damaged envelope, but
 * does not check the signature. */
static void decode_stored_record(void **state)
{
	uint8_t wire[CM_RECORD_MAX], given[PROTO_ID_LEN];
	uint8_t id[PROTO_ID_LEN];
	proto_signed *opened = malloc(sizeof(*opened));
	proto_signed *stored = malloc(sizeof(*stored));
	proto_record r;
	size_t len;

	(void)state;
	assert_non_null(opened);
	assert_non_null(stored);
	make_clip(&r);
	assert_err(proto_record_sign(&r, secret_key, wire, sizeof(wire), &len,
				     id),
		   CM_OK);
	assert_err(proto_record_open(wire, len, NOW_MS, opened), CM_OK);
	assert_err(proto_record_decode_stored(wire, len, NULL, stored), CM_OK);
	assert_memory_equal(stored->id, id, PROTO_ID_LEN);
	assert_memory_equal(&stored->rec, &opened->rec, sizeof(r));
	assert_memory_equal(stored->sig, opened->sig, PROTO_SIG_LEN);
	assert_ptr_equal(stored->wire, wire);
	assert_int_equal(stored->wire_len, len);

	memset(given, 0xab, sizeof(given));
	assert_err(proto_record_decode_stored(wire, len, given, stored), CM_OK);
	assert_memory_equal(stored->id, given, PROTO_ID_LEN);

	wire[len - 1] ^= 1; /* the signature's last byte */
	assert_err(proto_record_open(wire, len, NOW_MS, opened),
		   CM_ERR_BAD_SIGNATURE);
	assert_err(proto_record_decode_stored(wire, len, NULL, stored), CM_OK);
	assert_err(proto_record_decode_stored(wire, len - 1, NULL, stored),
		   CM_ERR_TRUNCATED);
	free(opened);
	free(stored);
}

/* Decodes hex into body after replacing the first `from` by `to`, which
 * has the same length. Returns the body's length. */
static size_t unhex_replaced(const char *hex, const char *from,
			     const char *to, uint8_t *body, size_t cap)
{
	char edited[2 * CM_BODY_MAX + 1];
	char *at;

	assert_int_equal(strlen(from), strlen(to));
	assert_true(strlen(hex) < sizeof(edited));
	memcpy(edited, hex, strlen(hex) + 1);
	at = strstr(edited, from);
	assert_non_null(at);
	memcpy(at, to, strlen(to));
	return unhex(edited, body, cap);
}

/* The clip's "product" and "rating" keys with their values. */
#define PRODUCT_PAIR \
	"a770726f64756374b26774696e3a32303030303030303031303132"
#define RATING_PAIR "a6726174696e6704"

/* A stored body reads back as the strict decoder reads it. Broken
 * msgpack still fails, and schema rules are left to the check before
 * storing. */
static void read_stored_body(void **state)
{
	static const char *const bodies[] = { CLIP_BODY, RETRACT_BODY,
					      PROFILE_BODY };
	uint8_t body[CM_BODY_MAX];
	proto_record *strict = malloc(sizeof(*strict));
	proto_record *stored = malloc(sizeof(*stored));
	size_t len;

	(void)state;
	assert_non_null(strict);
	assert_non_null(stored);
	for (size_t b = 0; b < 3; b++) {
		len = unhex(bodies[b], body, sizeof(body));
		assert_err(proto_body_decode(body, len, strict), CM_OK);
		assert_err(proto_body_read_stored(body, len, stored), CM_OK);
		assert_memory_equal(stored, strict, sizeof(*strict));
		for (size_t cut = 0; cut < len; cut++)
			assert_err(proto_body_read_stored(body, cut, stored),
				   CM_ERR_TRUNCATED);
	}

	/* Tags out of order: a schema rule, checked before storing only. */
	len = unhex_replaced(CLIP_BODY, "a7626c656e646572a76b69746368656e",
			     "a76b69746368656ea7626c656e646572", body,
			     sizeof(body));
	assert_err(proto_body_decode(body, len, strict), CM_ERR_BAD_FIELD);
	assert_err(proto_body_read_stored(body, len, stored), CM_OK);
	assert_string_equal(stored->tags[0], "kitchen");

	/* Map keys out of order or unknown: rejected by both. */
	len = unhex_replaced(CLIP_BODY, PRODUCT_PAIR RATING_PAIR,
			     RATING_PAIR PRODUCT_PAIR, body, sizeof(body));
	assert_err(proto_body_decode(body, len, strict),
		   CM_ERR_UNSORTED_KEYS);
	assert_err(proto_body_read_stored(body, len, stored),
		   CM_ERR_UNSORTED_KEYS);
	len = unhex_replaced(CLIP_BODY, "a6617574686f72", "a6617574686f73",
			     body, sizeof(body));
	assert_err(proto_body_decode(body, len, strict), CM_ERR_UNKNOWN_KEY);
	assert_err(proto_body_read_stored(body, len, stored),
		   CM_ERR_UNKNOWN_KEY);
	free(strict);
	free(stored);
}

/* Error details name the tag or media item by its index. */
static void details_name_the_item(void **state)
{
	uint8_t body[CM_BODY_MAX];
	proto_record r;
	size_t len;

	(void)state;
	len = unhex_replaced(CLIP_BODY, "6b69746368656e", "6b6974630a656e",
			     body, sizeof(body));
	assert_err(proto_body_decode(body, len, &r), CM_ERR_CONTROL_CHAR);
	assert_non_null(strstr(cm_err_detail(), "tags[1]"));

	len = unhex_replaced(CLIP_BODY, "696d6167652f6a706567",
			     "696d6167652f6a0a6567", body, sizeof(body));
	assert_err(proto_body_decode(body, len, &r), CM_ERR_CONTROL_CHAR);
	assert_non_null(strstr(cm_err_detail(), "media[1].type"));
}

static void index_label_cuts_short(void **state)
{
	char out[16];

	(void)state;
	proto_index_label(out, sizeof(out), "media", 2, ".type");
	assert_string_equal(out, "media[2].type");
	proto_index_label(out, sizeof(out), "tags", 0, "");
	assert_string_equal(out, "tags[0]");
	proto_index_label(out, sizeof(out), "tags", 1234567, "");
	assert_string_equal(out, "tags[1234567]");
	proto_index_label(out, 5, "media", 2, ".type");
	assert_string_equal(out, "medi");
	proto_index_label(out, 8, "media", 12, "");
	assert_string_equal(out, "media[1");
	proto_index_label(out, 1, "media", 2, "");
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vector_public_key),
		cmocka_unit_test(vector_clip),
		cmocka_unit_test(vector_retract),
		cmocka_unit_test(vector_profile),
		cmocka_unit_test(vector_signature_message),
		cmocka_unit_test(encode_minimal_uint),
		cmocka_unit_test(encode_minimal_str),
		cmocka_unit_test(encode_minimal_containers),
		cmocka_unit_test(decode_variants),
		cmocka_unit_test(decode_every_prefix_truncated),
		cmocka_unit_test(decode_huge_count_tiny_input),
		cmocka_unit_test(decode_too_many),
		cmocka_unit_test(decode_deep_nesting),
		cmocka_unit_test(decode_body_over_max),
		cmocka_unit_test(limit_strings),
		cmocka_unit_test(limit_title_detail),
		cmocka_unit_test(validate_rejects),
		cmocka_unit_test(sort_tags_sorts_and_dedups),
		cmocka_unit_test(sign_wrong_secret),
		cmocka_unit_test(sign_small_buffer),
		cmocka_unit_test(open_envelope_variants),
		cmocka_unit_test(open_every_prefix_truncated),
		cmocka_unit_test(open_over_max),
		cmocka_unit_test(open_every_byte_changed),
		cmocka_unit_test(open_rejects_unreduced_s),
		cmocka_unit_test(open_rejects_small_order_key),
		cmocka_unit_test(open_rejects_replayed_type),
		cmocka_unit_test(open_future),
		cmocka_unit_test(decode_stored_record),
		cmocka_unit_test(read_stored_body),
		cmocka_unit_test(details_name_the_item),
		cmocka_unit_test(index_label_cuts_short),
	};

	return cmocka_run_group_tests(tests, setup_keys, NULL);
}
