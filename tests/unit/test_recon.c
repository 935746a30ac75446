/*
 * test_recon.c - reconciliation: the message vectors of proto/PROTOCOL.md
 * ("Reconciliation"), malformed payloads and messages, and whole sessions
 * between two real LMDB stores in temporary folders, run through the wire
 * encoders and decoder.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm_util.h"
#include "proto_recon.h"
#include "proto_wire.h"
#include "store.h"

/* ---- vectors (proto/PROTOCOL.md, "Reconciliation") ---- */

#define X16(b) b b b b b b b b b b b b b b b b
#define X32(b) X16(b) X16(b)
#define SALT_HEX X16("33")
#define T0 1700000000000ULL

/* Initiator payload, one scope: no records below 2^72 (IDS, none), then
 * 5 records with fingerprint aabbccdd up to 2^120 and two short hashes up
 * to 2^121. Then 3 records with fingerprint 11223344 and the id sum's low
 * 32 bits 0x04030201 up to 2^122, and SKIP to the end. */
#define PAYLOAD_OFFER \
	"4d0100" "210105aabbccdd" "4101020102030405060708" \
	"8102031122334401020304" "0001"
/* Responder payload: one full id over the whole key space. */
#define PAYLOAD_FULL "600101" X32("01")
/* Two scopes: 7 records with fingerprint 11223344, then nothing. */
#define PAYLOAD_SCOPES "20010711223344" "0001"

#define START_ALL "970c01c410" SALT_HEX "0404c0c422" PAYLOAD_OFFER
#define START_AUTHORS \
	"970ccd1234c410" SALT_HEX "0404c440" X32("22") X32("44") \
	"c409" PAYLOAD_SCOPES
#define RECON_ROUND1 "940d0101c423" PAYLOAD_FULL

/* Fingerprints with the salt above, 4 bytes. */
#define FP_EMPTY "ea49986f"
#define FP_01_02 "f37db9bc" /* ids 01..01 and 02..02: count 2, sum 03..03 */

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

static uint8_t *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *out = malloc(n ? n : 1);

	assert_non_null(out);
	assert_int_equal(strlen(hex) % 2, 0);
	assert_true(cm_hex_decode(hex, out, n));
	*len = n;
	return out;
}

static void assert_hex(const uint8_t *buf, size_t len, const char *hex)
{
	char *got = malloc(2 * len + 1);

	assert_non_null(got);
	cm_hex_encode(buf, len, got);
	if (strcmp(got, hex) != 0) {
		print_error("bytes differ\n     got %s\nexpected %s\n", got,
			    hex);
		fail();
	}
	free(got);
}

static cm_err decode_payload_hex(const char *hex, size_t n_scopes,
				 proto_recon_range **ranges, size_t *n)
{
	size_t len;
	uint8_t *buf = unhex(hex, &len);
	cm_err err = proto_recon_decode(buf, len, n_scopes, 4, 4, ranges, n);

	free(buf);
	if (err == CM_OK) {
		/* The ranges alias the input: keep only counts and bounds. */
		for (size_t i = 0; i < *n; i++)
			(*ranges)[i].data = NULL;
	}
	return err;
}

/* ---- vectors ---- */

static void payload_vectors_encode(void **state)
{
	const uint8_t fp[4] = {0xaa, 0xbb, 0xcc, 0xdd};
	const uint8_t hashes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t scope_fp[4] = {0x11, 0x22, 0x33, 0x44};
	const uint8_t sum_low[4] = {1, 2, 3, 4};
	uint8_t id[32];
	proto_recon_writer w = {0};

	(void)state;
	assert_err(proto_recon_write(&w, (proto_recon_key)1 << 72,
				     PROTO_RECON_IDS, NULL, 0, 4), CM_OK);
	assert_err(proto_recon_write_fp(&w, (proto_recon_key)1 << 120, 5,
					fp, 4, NULL), CM_OK);
	assert_err(proto_recon_write(&w, (proto_recon_key)1 << 121,
				     PROTO_RECON_IDS, hashes, 2, 4), CM_OK);
	assert_err(proto_recon_write_fp(&w, (proto_recon_key)1 << 122, 3,
					scope_fp, 4, sum_low), CM_OK);
	/* Two SKIP ranges in a row are written as one. */
	assert_err(proto_recon_write(&w, (proto_recon_key)1 << 123,
				     PROTO_RECON_SKIP, NULL, 0, 0), CM_OK);
	assert_err(proto_recon_write(&w, PROTO_RECON_END, PROTO_RECON_SKIP,
				     NULL, 0, 0), CM_OK);
	proto_recon_write_flush(&w);
	assert_hex(w.buf, w.len, PAYLOAD_OFFER);
	free(w.buf);

	memset(&w, 0, sizeof(w));
	memset(id, 0x01, sizeof(id));
	assert_err(proto_recon_write(&w, PROTO_RECON_END, PROTO_RECON_FULL,
				     id, 1, 32), CM_OK);
	assert_hex(w.buf, w.len, PAYLOAD_FULL);
	free(w.buf);

	memset(&w, 0, sizeof(w));
	assert_err(proto_recon_write_fp(&w, PROTO_RECON_END, 7, scope_fp, 4,
					NULL), CM_OK);
	assert_err(proto_recon_write(&w, PROTO_RECON_END, PROTO_RECON_SKIP,
				     NULL, 0, 0), CM_OK);
	proto_recon_write_flush(&w);
	assert_hex(w.buf, w.len, PAYLOAD_SCOPES);
	free(w.buf);
}

static void payload_vectors_decode(void **state)
{
	proto_recon_range *r = NULL;
	size_t n = 0;

	(void)state;
	assert_err(decode_payload_hex(PAYLOAD_OFFER, 1, &r, &n), CM_OK);
	assert_int_equal(n, 5);
	assert_true(r[0].hi == (proto_recon_key)1 << 72);
	assert_int_equal(r[0].mode, PROTO_RECON_IDS);
	assert_int_equal(r[0].n, 0);
	assert_true(r[1].hi == (proto_recon_key)1 << 120);
	assert_int_equal(r[1].mode, PROTO_RECON_FP);
	assert_int_equal(r[1].count, 5);
	assert_true(r[2].hi == (proto_recon_key)1 << 121);
	assert_int_equal(r[2].mode, PROTO_RECON_IDS);
	assert_int_equal(r[2].n, 2);
	assert_true(r[3].hi == (proto_recon_key)1 << 122);
	assert_int_equal(r[3].mode, PROTO_RECON_SUM);
	assert_int_equal(r[3].count, 3);
	assert_int_equal(r[3].sum_low, 0x04030201);
	assert_true(r[4].hi == PROTO_RECON_END);
	assert_int_equal(r[4].mode, PROTO_RECON_SKIP);
	free(r);

	assert_err(decode_payload_hex(PAYLOAD_FULL, 1, &r, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].mode, PROTO_RECON_FULL);
	assert_int_equal(r[0].n, 1);
	free(r);

	assert_err(decode_payload_hex(PAYLOAD_SCOPES, 2, &r, &n), CM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].mode, PROTO_RECON_FP);
	assert_int_equal(r[0].count, 7);
	assert_int_equal(r[1].mode, PROTO_RECON_SKIP);
	free(r);
}

static void message_vectors(void **state)
{
	uint8_t salt[16], authors[64], *payload, *buf;
	size_t payload_len, len;
	proto_wire_msg m;

	(void)state;
	memset(salt, 0x33, sizeof(salt));
	memset(authors, 0x22, 32);
	memset(authors + 32, 0x44, 32);

	payload = unhex(PAYLOAD_OFFER, &payload_len);
	assert_err(proto_wire_recon_start(1, salt, 4, 4, NULL, 0, payload,
					  payload_len, &buf, &len), CM_OK);
	assert_hex(buf, len, START_ALL);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_RECON_START);
	assert_int_equal(m.session, 1);
	assert_memory_equal(m.salt, salt, 16);
	assert_int_equal(m.fp_len, 4);
	assert_int_equal(m.hash_len, 4);
	assert_true(m.recon_all);
	assert_int_equal(m.payload_len, payload_len);
	assert_memory_equal(m.payload, payload, payload_len);
	free(buf);
	free(payload);

	payload = unhex(PAYLOAD_SCOPES, &payload_len);
	assert_err(proto_wire_recon_start(0x1234, salt, 4, 4, authors, 2,
					  payload, payload_len, &buf, &len),
		   CM_OK);
	assert_hex(buf, len, START_AUTHORS);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_false(m.recon_all);
	assert_int_equal(m.n_authors, 2);
	assert_memory_equal(m.authors, authors, 64);
	free(buf);
	free(payload);

	payload = unhex(PAYLOAD_FULL, &payload_len);
	assert_err(proto_wire_recon(1, 1, payload, payload_len, &buf, &len),
		   CM_OK);
	assert_hex(buf, len, RECON_ROUND1);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_RECON);
	assert_int_equal(m.round, 1);
	assert_int_equal(m.payload_len, payload_len);
	free(buf);
	free(payload);
}

static void fingerprint_vectors(void **state)
{
	uint8_t salt[16], id[32], fp[4];
	proto_recon_agg a = {0};

	(void)state;
	memset(salt, 0x33, sizeof(salt));
	proto_recon_fingerprint(salt, &a, fp, 4);
	assert_hex(fp, 4, FP_EMPTY);

	memset(id, 0x01, sizeof(id));
	proto_recon_agg_id(&a, id, false);
	memset(id, 0x02, sizeof(id));
	proto_recon_agg_id(&a, id, false);
	proto_recon_fingerprint(salt, &a, fp, 4);
	assert_hex(fp, 4, FP_01_02);

	/* Removing an id restores the aggregate exactly. */
	memset(id, 0xff, sizeof(id));
	proto_recon_agg_id(&a, id, false);
	proto_recon_agg_id(&a, id, true);
	proto_recon_fingerprint(salt, &a, fp, 4);
	assert_hex(fp, 4, FP_01_02);
}

static void key_layout(void **state)
{
	uint8_t id[32];

	(void)state;
	memset(id, 0xff, sizeof(id));
	id[0] = 0xab;
	/* created_ms in the top 64 bits, then the first 60 id bits. */
	assert_true(proto_recon_key_of(1, id) ==
		    ((proto_recon_key)1 << 60 | 0xabfffffffffffffULL));
	assert_true(proto_recon_width(0) == PROTO_RECON_END);
	assert_true(proto_recon_width(16) == (proto_recon_key)1 << 60);
	assert_true(proto_recon_width(31) == 1);
}

/* ---- malformed payloads and messages ---- */

static void payload_malformed(void **state)
{
	static const struct {
		const char *hex;
		cm_err reason;
	} cases[] = {
		{"", CM_ERR_TRUNCATED},
		{"000100", CM_ERR_TRAILING},
		{"a001", CM_ERR_BAD_MESSAGE},         /* mode 5 */
		{"e001", CM_ERR_BAD_MESSAGE},         /* mode 7 */
		{"0000", CM_ERR_BAD_MESSAGE},         /* zero steps */
		{"0002", CM_ERR_BAD_MESSAGE},         /* past the end */
		{"008100", CM_ERR_NONMINIMAL_INT},    /* steps 1 in 2 bytes */
		{"02100001", CM_ERR_BAD_MESSAGE},     /* 2^120 at depth 2 */
		{"4001c808", CM_ERR_TOO_MANY},        /* 1096 short hashes */
		{"40010201020304", CM_ERR_TRUNCATED}, /* 2 claimed, 1 sent */
		{"210105aabbccdd", CM_ERR_TRUNCATED}, /* scope unfinished */
		{"200105aabb", CM_ERR_TRUNCATED},     /* short fingerprint */
		{"2001", CM_ERR_TRUNCATED},           /* no count */
		/* a sum of 3 bytes */
		{"800105aabbccdd010203", CM_ERR_TRUNCATED},
		/* count 2^64 */
		{"200180808080808080808002aabbccdd", CM_ERR_BAD_MESSAGE},
		/* count of 11 groups */
		{"20018080808080808080808001aabbccdd", CM_ERR_BAD_MESSAGE},
		{"20018000aabbccdd", CM_ERR_NONMINIMAL_INT}, /* count 0 */
		{"6001c10801", CM_ERR_TOO_MANY},      /* 1089 full ids */
	};
	proto_recon_range *r = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cm_err err = decode_payload_hex(cases[i].hex, 1, &r, &n);

		if (err != cases[i].reason)
			fail_msg("payload %s: %s (%s), expected %s",
				 cases[i].hex, cm_err_name(err),
				 cm_err_detail(), cm_err_name(cases[i].reason));
		assert_null(r);
		assert_int_equal(n, 0);
	}
}

static void payload_too_many_ranges(void **state)
{
	const uint8_t fp[4] = {0};
	proto_recon_writer w = {0};
	proto_recon_range *r = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 1; i <= CM_RECON_RANGES_MAX; i++)
		assert_err(proto_recon_write_fp(&w, (proto_recon_key)i, 1, fp,
						4, NULL), CM_OK);
	assert_err(proto_recon_write_fp(&w, PROTO_RECON_END, 1, fp, 4, NULL),
		   CM_OK);
	assert_err(proto_recon_decode(w.buf, w.len, 1, 4, 4, &r, &n),
		   CM_ERR_TOO_MANY);
	assert_null(r);
	free(w.buf);
}

static void message_malformed(void **state)
{
	static const struct {
		const char *hex;
		cm_err reason;
	} cases[] = {
		/* salt of 15 bytes */
		{"970c01c40f" "333333333333333333333333333333" "0404c0c40100",
		 CM_ERR_BAD_MESSAGE},
		/* fingerprint of 1 byte, short hash of 9 bytes */
		{"970c01c410" SALT_HEX "0104c0c40100", CM_ERR_BAD_MESSAGE},
		{"970c01c410" SALT_HEX "0409c0c40100", CM_ERR_BAD_MESSAGE},
		/* empty author list, author list of 33 bytes */
		{"970c01c410" SALT_HEX "0404c400c40100", CM_ERR_BAD_MESSAGE},
		{"970c01c410" SALT_HEX "0404c421" X32("22") "22c40100",
		 CM_ERR_BAD_MESSAGE},
		/* rounds 0 and 65 */
		{"940d0100c40100", CM_ERR_BAD_MESSAGE},
		{"940d0141c40100", CM_ERR_BAD_MESSAGE},
		/* a RECON of 3 elements */
		{"930d0101", CM_ERR_BAD_MESSAGE},
		/* payload bin16 claiming 256 bytes, 1 present */
		{"940d0101c5010000", CM_ERR_TRUNCATED},
	};
	proto_wire_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *buf = unhex(cases[i].hex, &len);
		cm_err err = proto_wire_decode(buf, len, &m);

		free(buf);
		if (err != cases[i].reason)
			fail_msg("message %s: %s (%s), expected %s",
				 cases[i].hex, cm_err_name(err),
				 cm_err_detail(), cm_err_name(cases[i].reason));
	}
}

/* A source with no records, for session checks that need no store. */
static cm_err empty_agg(void *ctx, size_t scope, proto_recon_key lo,
			proto_recon_key hi, proto_recon_agg *out)
{
	(void)ctx;
	(void)scope;
	(void)lo;
	(void)hi;
	memset(out, 0, sizeof(*out));
	return CM_OK;
}

static cm_err empty_items(void *ctx, size_t scope, proto_recon_key lo,
			  proto_recon_key hi, proto_recon_item *out,
			  size_t max, size_t *n)
{
	(void)ctx;
	(void)scope;
	(void)lo;
	(void)hi;
	(void)out;
	(void)max;
	*n = 0;
	return CM_OK;
}

static void session_wrong_modes(void **state)
{
	proto_recon_source src = {.agg = empty_agg, .items = empty_items};
	proto_recon_session s = {.n_scopes = 1, .src = &src};
	uint8_t *in, *out = NULL;
	size_t in_len, out_len = 0;
	bool done;

	(void)state;
	s.params = proto_recon_defaults();
	/* A responder never accepts full ids. */
	in = unhex(PAYLOAD_FULL, &in_len);
	assert_err(proto_recon_next(&s, in, in_len, &out, &out_len, &done),
		   CM_ERR_BAD_MESSAGE);
	assert_null(out);
	free(in);

	/* An initiator never accepts short hashes. */
	s.initiator = true;
	in = unhex(PAYLOAD_OFFER, &in_len);
	assert_err(proto_recon_next(&s, in, in_len, &out, &out_len, &done),
		   CM_ERR_BAD_MESSAGE);
	free(in);

	/* Rounds are bounded. */
	s.initiator = false;
	s.round = CM_RECON_ROUNDS_MAX;
	in = unhex("0001", &in_len);
	assert_err(proto_recon_next(&s, in, in_len, &out, &out_len, &done),
		   CM_ERR_TOO_MANY);
	free(in);
	proto_recon_session_free(&s);
}

/* ---- single ranges against a set in memory ---- */

#define MEM_SET_SIZE 200

/* A set of records in key order, as a source for one scope. */
typedef struct mem_set {
	proto_recon_item items[MEM_SET_SIZE];
	size_t n;
} mem_set;

static cm_err mem_agg(void *ctx, size_t scope, proto_recon_key lo,
		      proto_recon_key hi, proto_recon_agg *out)
{
	const mem_set *set = ctx;

	(void)scope;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < set->n; i++)
		if (set->items[i].key >= lo && set->items[i].key < hi)
			proto_recon_agg_id(out, set->items[i].id, false);
	return CM_OK;
}

static cm_err mem_items(void *ctx, size_t scope, proto_recon_key lo,
			proto_recon_key hi, proto_recon_item *out, size_t max,
			size_t *n)
{
	const mem_set *set = ctx;

	(void)scope;
	*n = 0;
	for (size_t i = 0; i < set->n; i++) {
		if (set->items[i].key < lo || set->items[i].key >= hi)
			continue;
		if (*n == max)
			return CM_ERR_TOO_MANY;
		out[(*n)++] = set->items[i];
	}
	return CM_OK;
}

/* Fills set with records one second apart, ids from their numbers. */
static void mem_set_fill(mem_set *set)
{
	set->n = MEM_SET_SIZE;
	for (uint32_t i = 0; i < MEM_SET_SIZE; i++) {
		proto_recon_item *it = &set->items[i];

		crypto_generichash(it->id, PROTO_ID_LEN, (const uint8_t *)&i,
				   sizeof(i), NULL, 0);
		it->key = proto_recon_key_of(T0 + i * 1000ULL, it->id);
	}
}

/* Returns the aggregate of the set without record `skip`. */
static proto_recon_agg mem_agg_without(const mem_set *set, size_t skip)
{
	proto_recon_agg a = {0};

	for (size_t i = 0; i < set->n; i++)
		if (i != skip)
			proto_recon_agg_id(&a, set->items[i].id, false);
	return a;
}

/* One payload of a single range, a responder's answer to it and the set
 * of records that answered. */
typedef struct exchange {
	mem_set *set;
	proto_recon_writer w;
	proto_recon_range *r;     /* the decoded answer */
	size_t n;
	uint8_t *answer;
} exchange;

static exchange *exchange_new(void)
{
	exchange *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->set = calloc(1, sizeof(*x->set));
	assert_non_null(x->set);
	mem_set_fill(x->set);
	return x;
}

static void exchange_free(exchange *x)
{
	free(x->r);
	free(x->answer);
	free(x->w.buf);
	free(x->set);
	free(x);
}

/* Sends the payload in x->w to a responder whose records are x->set and
 * decodes its answer. */
static void exchange_run(exchange *x)
{
	proto_recon_source src = {.agg = mem_agg, .items = mem_items,
				  .ctx = x->set};
	proto_recon_session s = {.n_scopes = 1, .src = &src};
	size_t len = 0;
	bool done = false;

	s.params = proto_recon_defaults();
	memset(s.salt, 0x33, sizeof(s.salt));
	assert_err(proto_recon_next(&s, x->w.buf, x->w.len, &x->answer, &len,
				    &done), CM_OK);
	assert_err(proto_recon_decode(x->answer, len, 1, s.params.fp_len,
				      s.params.hash_len, &x->r, &x->n),
		   CM_OK);
	proto_recon_session_free(&s);
}

/* Writes one range over the whole key space with the count and the
 * fingerprint of aggregate a, and with its sum when `sum`. */
static void write_whole(proto_recon_writer *w, const proto_recon_agg *a,
			bool sum, bool break_fp)
{
	uint8_t salt[PROTO_RECON_SALT_LEN], fp[4];

	memset(salt, 0x33, sizeof(salt));
	proto_recon_fingerprint(salt, a, fp, sizeof(fp));
	if (break_fp)
		fp[0] ^= 0x01;
	assert_err(proto_recon_write_fp(w, PROTO_RECON_END, a->count, fp,
					sizeof(fp), sum ? a->sum : NULL),
		   CM_OK);
}

static void sum_finds_missing_record(void **state)
{
	exchange *x = exchange_new();
	proto_recon_agg a = mem_agg_without(x->set, 57);

	(void)state;
	write_whole(&x->w, &a, true, false);
	exchange_run(x);
	assert_int_equal(x->n, 1);
	assert_int_equal(x->r[0].mode, PROTO_RECON_FULL);
	assert_int_equal(x->r[0].n, 1);
	assert_memory_equal(x->r[0].data, x->set->items[57].id,
			    PROTO_ID_LEN);
	exchange_free(x);
}

static void sum_wrong_fingerprint_splits(void **state)
{
	exchange *x = exchange_new();
	proto_recon_agg a = mem_agg_without(x->set, 57);

	(void)state;
	/* Count and sum point at record 57, but the fingerprint shows that
	 * the sets differ in more: no id may be sent on the sum alone. */
	write_whole(&x->w, &a, true, true);
	exchange_run(x);
	assert_true(x->n >= 3);
	for (size_t i = 0; i < x->n; i++)
		assert_int_not_equal(x->r[i].mode, PROTO_RECON_FULL);
	exchange_free(x);
}

static void fp_one_more_asks_for_sum(void **state)
{
	exchange *x = exchange_new();
	proto_recon_agg a = mem_agg_without(x->set, 3);

	(void)state;
	/* One record more than the initiator: the responder sends its own
	 * count and fingerprint of the same range back. */
	write_whole(&x->w, &a, false, false);
	exchange_run(x);
	assert_int_equal(x->n, 1);
	assert_int_equal(x->r[0].mode, PROTO_RECON_FP);
	assert_true(x->r[0].hi == PROTO_RECON_END);
	assert_int_equal(x->r[0].count, MEM_SET_SIZE);
	exchange_free(x);
}

static void hostile_counts_answered(void **state)
{
	static const uint64_t counts[] = {0, 1, MEM_SET_SIZE - 1,
					  MEM_SET_SIZE + 1, UINT64_MAX};
	const uint8_t fp[4] = {1, 2, 3, 4};
	const uint8_t sum_low[4] = {5, 6, 7, 8};

	(void)state;
	for (size_t i = 0; i < 2 * sizeof(counts) / sizeof(counts[0]); i++) {
		exchange *x = exchange_new();

		assert_err(proto_recon_write_fp(&x->w, PROTO_RECON_END,
						counts[i / 2], fp, sizeof(fp),
						i % 2 ? sum_low : NULL),
			   CM_OK);
		exchange_run(x);
		assert_true(x->n >= 1);
		exchange_free(x);
	}
}

/* ---- sessions between two stores ---- */

typedef struct test_key {
	uint8_t pk[PROTO_KEY_LEN];
	uint8_t sk[PROTO_SECRET_LEN];
} test_key;

typedef struct test_record {
	uint8_t wire[CM_RECORD_MAX];
	size_t len;
	proto_signed sig;
} test_record;

typedef struct fixture {
	char dir_a[64];
	char dir_b[64];
	store *a;       /* the initiator's store */
	store *b;       /* the responder's store */
	test_key x, y;
} fixture;

static void key_make(test_key *k, uint8_t seed_byte)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, seed_byte, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
}

static test_record *sign_record(const proto_record *r, const test_key *k)
{
	test_record *t = calloc(1, sizeof(*t));
	uint8_t id[PROTO_ID_LEN];

	assert_non_null(t);
	assert_err(proto_record_sign(r, k->sk, t->wire, sizeof(t->wire),
				     &t->len, id), CM_OK);
	assert_err(proto_record_open(t->wire, t->len, cm_now_ms(), &t->sig),
		   CM_OK);
	return t;
}

static test_record *make_clip(const test_key *k, uint64_t created,
			      unsigned number)
{
	proto_record *r = calloc(1, sizeof(*r));
	test_record *t;

	assert_non_null(r);
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	r->created_ms = created;
	cm_strlcpy(r->product, "gtin:4006381333931", sizeof(r->product));
	snprintf(r->title, sizeof(r->title), "Review number %u", number);
	cm_strlcpy(r->lang, "en", sizeof(r->lang));
	crypto_generichash(r->media[0].hash, PROTO_HASH_LEN,
			   (const uint8_t *)&number, sizeof(number), NULL, 0);
	r->media[0].size = 1000;
	cm_strlcpy(r->media[0].type, "video/mp4", sizeof(r->media[0].type));
	r->n_media = 1;
	t = sign_record(r, k);
	free(r);
	return t;
}

static test_record *make_retraction(const test_key *k, uint64_t created,
				    const uint8_t target[PROTO_ID_LEN])
{
	proto_record *r = calloc(1, sizeof(*r));
	test_record *t;

	assert_non_null(r);
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	r->created_ms = created;
	memcpy(r->target, target, PROTO_ID_LEN);
	t = sign_record(r, k);
	free(r);
	return t;
}

/* Stores records recs[0..n) in one batch; each must be added. */
static void put_all(store *s, test_record **recs, size_t n)
{
	proto_signed *batch = calloc(n ? n : 1, sizeof(*batch));
	cm_err *results = calloc(n ? n : 1, sizeof(*results));

	assert_non_null(batch);
	assert_non_null(results);
	for (size_t i = 0; i < n; i++)
		batch[i] = recs[i]->sig;
	assert_err(store_put_batch(s, batch, n, results), CM_OK);
	for (size_t i = 0; i < n; i++)
		if (results[i] != CM_OK)
			fail_msg("record %zu not stored: %s", i,
				 cm_err_name(results[i]));
	free(batch);
	free(results);
}

static void put_range(store *s, test_record **recs, size_t from, size_t to)
{
	put_all(s, recs + from, to - from);
}

static void remove_dir(const char *dir)
{
	char path[256];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
		    (int)sizeof(path))
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	cm_strlcpy(f->dir_a, "/tmp/test_recon_a.XXXXXX", sizeof(f->dir_a));
	cm_strlcpy(f->dir_b, "/tmp/test_recon_b.XXXXXX", sizeof(f->dir_b));
	assert_non_null(mkdtemp(f->dir_a));
	assert_non_null(mkdtemp(f->dir_b));
	assert_err(store_open_sized(f->dir_a, 256ULL << 20, &f->a), CM_OK);
	assert_err(store_open_sized(f->dir_b, 256ULL << 20, &f->b), CM_OK);
	assert_err(store_fp_ensure(f->a), CM_OK);
	assert_err(store_fp_ensure(f->b), CM_OK);
	key_make(&f->x, 7);
	key_make(&f->y, 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	store_close(&f->a);
	store_close(&f->b);
	remove_dir(f->dir_a);
	remove_dir(f->dir_b);
	free(f);
	return 0;
}

/* Outcome of one session: the ids the initiator should fetch (those it
 * neither stores nor knows as retracted, as node_sync.c filters them). */
typedef struct outcome {
	uint8_t *want;
	size_t n_want;
	unsigned round_trips;
	size_t bytes;
} outcome;

static void collect_want(store *a, proto_recon_session *s, outcome *o)
{
	for (size_t i = 0; i < s->n_want; i++) {
		const uint8_t *id = s->want + i * PROTO_ID_LEN;

		if (store_has(a, id) || store_is_retracted(a, id, NULL))
			continue;
		o->want = realloc(o->want, (o->n_want + 1) * PROTO_ID_LEN);
		assert_non_null(o->want);
		memcpy(o->want + o->n_want * PROTO_ID_LEN, id, PROTO_ID_LEN);
		o->n_want++;
	}
	s->n_want = 0;
}

/* Runs one step of session s against store st. */
static void step(store *st, const uint8_t *authors, size_t n_authors,
		 proto_recon_session *s, const proto_wire_msg *in,
		 uint8_t **out, size_t *len, bool *done)
{
	proto_recon_source src = {0};
	store_recon_view *view = NULL;

	assert_err(store_recon_open(st, authors, n_authors, &src, &view),
		   CM_OK);
	s->src = &src;
	*done = false;
	if (in)
		assert_err(proto_recon_next(s, in->payload, in->payload_len,
					    out, len, done), CM_OK);
	else
		assert_err(proto_recon_first(s, out, len), CM_OK);
	store_recon_close(&view);
	s->src = NULL;
}

/* Reconciles store a (initiator) with store b over `authors` (NULL: all),
 * passing every message through the wire encoders and decoder. */
static void reconcile(store *a, store *b, const uint8_t *authors,
		      size_t n_authors, outcome *o)
{
	proto_recon_session si = {.initiator = true}, sr = {0};
	uint8_t *payload = NULL, *msg = NULL;
	size_t payload_len = 0, msg_len = 0;
	uint64_t round = 0;
	proto_wire_msg m;
	bool done = false;

	memset(o, 0, sizeof(*o));
	randombytes_buf(si.salt, sizeof(si.salt));
	si.params = proto_recon_defaults();
	si.n_scopes = authors ? n_authors : 1;
	step(a, authors, n_authors, &si, NULL, &payload, &payload_len, &done);
	assert_err(proto_wire_recon_start(7, si.salt, si.params.fp_len,
					  si.params.hash_len, authors,
					  n_authors, payload, payload_len,
					  &msg, &msg_len), CM_OK);
	free(payload);
	o->bytes += msg_len;
	assert_err(proto_wire_decode(msg, msg_len, &m), CM_OK);
	memcpy(sr.salt, m.salt, sizeof(sr.salt));
	sr.params = proto_recon_defaults();
	sr.params.fp_len = m.fp_len;
	sr.params.hash_len = m.hash_len;
	sr.n_scopes = m.recon_all ? 1 : m.n_authors;

	for (;;) {
		step(b, authors, n_authors, &sr, &m, &payload, &payload_len,
		     &done);
		free(msg);
		assert_err(proto_wire_recon(7, ++round, payload, payload_len,
					    &msg, &msg_len), CM_OK);
		free(payload);
		o->bytes += msg_len;
		o->round_trips++;
		assert_err(proto_wire_decode(msg, msg_len, &m), CM_OK);

		step(a, authors, n_authors, &si, &m, &payload, &payload_len,
		     &done);
		free(msg);
		msg = NULL;
		collect_want(a, &si, o);
		if (done) {
			free(payload);
			break;
		}
		assert_true(round + 2 <= CM_RECON_ROUNDS_MAX);
		assert_err(proto_wire_recon(7, ++round, payload, payload_len,
					    &msg, &msg_len), CM_OK);
		free(payload);
		o->bytes += msg_len;
		assert_err(proto_wire_decode(msg, msg_len, &m), CM_OK);
	}
	proto_recon_session_free(&si);
	proto_recon_session_free(&sr);
}

static int id_compare(const void *a, const void *b)
{
	return memcmp(a, b, PROTO_ID_LEN);
}

/* Checks that the session wants exactly records recs[i] for the indexes
 * in expected[0..n). */
static void assert_wants(outcome *o, test_record **recs,
			 const size_t *expected, size_t n)
{
	uint8_t *ids = calloc(n ? n : 1, PROTO_ID_LEN);

	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		memcpy(ids + i * PROTO_ID_LEN, recs[expected[i]]->sig.id,
		       PROTO_ID_LEN);
	qsort(ids, n, PROTO_ID_LEN, id_compare);
	if (o->n_want)
		qsort(o->want, o->n_want, PROTO_ID_LEN, id_compare);
	if (o->n_want != n)
		fail_msg("session wants %zu records, expected %zu", o->n_want,
			 n);
	if (n)
		assert_memory_equal(o->want, ids, n * PROTO_ID_LEN);
	free(ids);
	free(o->want);
	o->want = NULL;
}

/* Makes n clips by key k, clip i created at T0 + i * step_ms. */
static test_record **make_clips(const test_key *k, size_t n,
				uint64_t step_ms, unsigned first_number)
{
	test_record **recs = calloc(n, sizeof(*recs));

	assert_non_null(recs);
	for (size_t i = 0; i < n; i++)
		recs[i] = make_clip(k, T0 + i * step_ms,
				    first_number + (unsigned)i);
	return recs;
}

static void free_records(test_record **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i]);
	free(recs);
}

static size_t *index_range(size_t from, size_t to)
{
	size_t *idx = calloc(to - from ? to - from : 1, sizeof(*idx));

	assert_non_null(idx);
	for (size_t i = from; i < to; i++)
		idx[i - from] = i;
	return idx;
}

static void stores_equal(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 400, 1500, 0);
	outcome o;

	put_all(f->a, recs, 400);
	put_all(f->b, recs, 400);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, NULL, 0);
	assert_int_equal(o.round_trips, 1);
	free_records(recs, 400);
}

static void one_missing(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 400, 1500, 0);
	const size_t expected[] = {217};
	outcome o;

	put_range(f->a, recs, 0, 217);
	put_range(f->a, recs, 218, 400);
	put_all(f->b, recs, 400);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, expected, 1);
	assert_true(o.round_trips <= 3);
	free_records(recs, 400);
}

static void many_missing_both_ways(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 1000, 700, 0);
	size_t *expected = calloc(250, sizeof(*expected));
	size_t k = 0;
	outcome o;

	/* a lacks every fourth record; b lacks every seventh. */
	for (size_t i = 0; i < 1000; i++) {
		test_record *one[1] = {recs[i]};

		if (i % 4 != 0)
			put_all(f->a, one, 1);
		else if (i % 7 != 0)
			expected[k++] = i;
		if (i % 7 != 0)
			put_all(f->b, one, 1);
	}
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, expected, k);
	free(expected);
	free_records(recs, 1000);
}

static void scattered_missing_traffic(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 3000, 1000, 0);
	size_t expected[30];
	outcome o;

	/* a lacks every 100th record, spread over the whole time range. */
	for (size_t i = 0; i < 30; i++)
		expected[i] = i * 100 + 37;
	for (size_t i = 0; i < 3000; i++) {
		test_record *one[1] = {recs[i]};

		if (i % 100 != 37)
			put_all(f->a, one, 1);
	}
	put_all(f->b, recs, 3000);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, expected, 30);
	/* 2,096 bytes in 2 round trips when written, of which the ids take
	 * 960; splits of 16 pieces at every level took 5,147 bytes. */
	assert_true(o.bytes <= 30 * 100);
	assert_true(o.round_trips <= 3);
	free_records(recs, 3000);
}

static void initiator_empty(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 600, 30000, 0);
	size_t *all = index_range(0, 600);
	outcome o;

	put_all(f->b, recs, 600);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, all, 600);
	free(all);
	free_records(recs, 600);
}

static void responder_empty(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 300, 1000, 0);
	outcome o;

	put_all(f->a, recs, 300);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, NULL, 0);
	assert_int_equal(o.round_trips, 1);
	free_records(recs, 300);
}

static void equal_timestamps(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 300, 0, 0);
	size_t expected[30];
	outcome o;

	for (size_t i = 0; i < 30; i++)
		expected[i] = i * 10;
	for (size_t i = 0; i < 300; i++) {
		test_record *one[1] = {recs[i]};

		if (i % 10 != 0)
			put_all(f->a, one, 1);
	}
	put_all(f->b, recs, 300);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, recs, expected, 30);
	free_records(recs, 300);
}

static void retractions(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 3, 60000, 0);
	test_record *r1 = make_retraction(&f->x, T0 + 500000,
					  recs[1]->sig.id);
	test_record *r2 = make_retraction(&f->x, T0 + 600000,
					  recs[2]->sig.id);
	test_record *both[5] = {recs[0], recs[1], recs[2], r1, r2};
	const size_t expected[] = {3};
	outcome o;

	/* b retracted clip 1, which a still has: a wants the retraction.
	 * a retracted clip 2, which b still has: a must not want it back. */
	put_all(f->a, recs, 3);
	put_all(f->a, &r2, 1);
	put_all(f->b, recs, 3);
	put_all(f->b, &r1, 1);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, both, expected, 1);

	/* Once a stores the retraction, the two stores agree except for
	 * records that each side retracted. */
	put_all(f->a, &r1, 1);
	reconcile(f->a, f->b, NULL, 0, &o);
	assert_wants(&o, both, NULL, 0);
	free(r1);
	free(r2);
	free_records(recs, 3);
}

static void author_scopes(void **state)
{
	fixture *f = *state;
	test_record **xs = make_clips(&f->x, 200, 2000, 0);
	test_record **ys = make_clips(&f->y, 200, 2000, 1000);
	uint8_t authors[2 * PROTO_KEY_LEN];
	size_t expected[20];
	outcome o;

	for (size_t i = 0; i < 20; i++)
		expected[i] = 180 + i;
	put_range(f->a, xs, 0, 180);
	put_range(f->a, ys, 0, 100);
	put_all(f->b, xs, 200);
	put_all(f->b, ys, 200);

	/* Following x only: y's missing records are not wanted. */
	reconcile(f->a, f->b, f->x.pk, 1, &o);
	assert_wants(&o, xs, expected, 20);

	/* Scopes sorted like a node's interest; y's are wanted too. */
	if (memcmp(f->x.pk, f->y.pk, PROTO_KEY_LEN) < 0) {
		memcpy(authors, f->x.pk, PROTO_KEY_LEN);
		memcpy(authors + PROTO_KEY_LEN, f->y.pk, PROTO_KEY_LEN);
	} else {
		memcpy(authors, f->y.pk, PROTO_KEY_LEN);
		memcpy(authors + PROTO_KEY_LEN, f->x.pk, PROTO_KEY_LEN);
	}
	reconcile(f->a, f->b, authors, 2, &o);
	assert_int_equal(o.n_want, 120);
	free(o.want);
	free_records(xs, 200);
	free_records(ys, 200);
}

typedef struct sum_state {
	proto_recon_agg agg;
} sum_state;

static int sum_record(void *ctx, const uint8_t id[PROTO_ID_LEN],
		      const uint8_t *wire, size_t len)
{
	sum_state *s = ctx;

	(void)wire;
	(void)len;
	proto_recon_agg_id(&s->agg, id, false);
	return 0;
}

/* Checks the whole-store aggregate against a scan of every record. */
static void assert_aggregate_matches(store *s)
{
	proto_recon_source src = {0};
	store_recon_view *view = NULL;
	sum_state expected = {0};
	proto_recon_agg got;

	assert_err(store_scan(s, NULL, 0, sum_record, &expected), CM_OK);
	assert_err(store_recon_open(s, NULL, 0, &src, &view), CM_OK);
	assert_err(src.agg(src.ctx, 0, 0, PROTO_RECON_END, &got), CM_OK);
	assert_int_equal(got.count, expected.agg.count);
	assert_memory_equal(got.sum, expected.agg.sum, PROTO_RECON_SUM_LEN);
	/* Two ranges cut at a key inside a bucket of stored depth, so
	 * that each is summed from buckets of many depths and a scan. */
	{
		const uint8_t zero[PROTO_ID_LEN] = {0};
		proto_recon_key cut = proto_recon_key_of(T0 + 4500, zero);
		proto_recon_agg low, high;

		assert_err(src.agg(src.ctx, 0, 0, cut, &low), CM_OK);
		assert_err(src.agg(src.ctx, 0, cut, PROTO_RECON_END, &high),
			   CM_OK);
		proto_recon_agg_add(&low, &high);
		assert_int_equal(low.count, expected.agg.count);
		assert_memory_equal(low.sum, expected.agg.sum,
				    PROTO_RECON_SUM_LEN);
	}
	store_recon_close(&view);
}

static void aggregates_follow_store(void **state)
{
	fixture *f = *state;
	test_record **recs = make_clips(&f->x, 50, 3000, 0);
	test_record *r = make_retraction(&f->x, T0 + 400000, recs[3]->sig.id);
	char dir[64];
	store *fresh = NULL;

	put_all(f->a, recs, 50);
	assert_aggregate_matches(f->a);
	/* The retraction removes clip 3 and adds itself. */
	put_all(f->a, &r, 1);
	assert_aggregate_matches(f->a);

	/* A store filled before its aggregates existed gets them rebuilt. */
	cm_strlcpy(dir, "/tmp/test_recon_c.XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	assert_err(store_open_sized(dir, 64ULL << 20, &fresh), CM_OK);
	put_all(fresh, recs, 50);
	assert_err(store_fp_ensure(fresh), CM_OK);
	assert_aggregate_matches(fresh);
	store_close(&fresh);
	remove_dir(dir);
	free(r);
	free_records(recs, 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(payload_vectors_encode),
		cmocka_unit_test(payload_vectors_decode),
		cmocka_unit_test(message_vectors),
		cmocka_unit_test(fingerprint_vectors),
		cmocka_unit_test(key_layout),
		cmocka_unit_test(payload_malformed),
		cmocka_unit_test(payload_too_many_ranges),
		cmocka_unit_test(message_malformed),
		cmocka_unit_test(session_wrong_modes),
		cmocka_unit_test(sum_finds_missing_record),
		cmocka_unit_test(sum_wrong_fingerprint_splits),
		cmocka_unit_test(fp_one_more_asks_for_sum),
		cmocka_unit_test(hostile_counts_answered),
		cmocka_unit_test_setup_teardown(stores_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(one_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(many_missing_both_ways, setup,
						teardown),
		cmocka_unit_test_setup_teardown(scattered_missing_traffic,
						setup, teardown),
		cmocka_unit_test_setup_teardown(initiator_empty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(responder_empty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(equal_timestamps, setup,
						teardown),
		cmocka_unit_test_setup_teardown(retractions, setup, teardown),
		cmocka_unit_test_setup_teardown(author_scopes, setup, teardown),
		cmocka_unit_test_setup_teardown(aggregates_follow_store, setup,
						teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
