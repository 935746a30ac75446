/*
 * fuzz_recon.c - libFuzzer harness for the reconciliation message
 * handler (proto_recon_next), the code that replies to a peer's RECON.
 *
 * Input: one byte that picks the side and the number of scopes, then the
 * payload from the peer. The handler runs against a fixed in-memory set
 * of 600 records in two scopes. Besides the sanitizers it checks that
 * every reply stays within the message budget and decodes again, and
 * that the want list of an initiator only grows by whole ids.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto_recon.h"

#define SET_SIZE 600
#define SCOPES_MAX 2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The set, sorted by key; item i is in scope i % SCOPES_MAX. */
static proto_recon_item set[SET_SIZE];

static int item_order(const void *a, const void *b)
{
	const proto_recon_item *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	for (uint32_t i = 0; i < SET_SIZE; i++) {
		uint8_t seed[4] = {(uint8_t)i, (uint8_t)(i >> 8), 0, 0};

		crypto_generichash(set[i].id, PROTO_ID_LEN, seed, sizeof(seed),
				   NULL, 0);
		/* A few records share a time, as records of one import do. */
		set[i].key = proto_recon_key_of(1700000000000ULL + i / 3 * 997,
						set[i].id);
	}
	qsort(set, SET_SIZE, sizeof(set[0]), item_order);
	return 0;
}

static bool in_scope(size_t i, size_t scope)
{
	return i % SCOPES_MAX == scope;
}

static cm_err set_agg(void *ctx, size_t scope, proto_recon_key lo,
		      proto_recon_key hi, proto_recon_agg *out)
{
	proto_recon_source *src = ctx;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < SET_SIZE; i++) {
		if (set[i].key >= lo && set[i].key < hi && in_scope(i, scope))
			proto_recon_agg_id(out, set[i].id, false);
	}
	src->work++;
	return CM_OK;
}

static cm_err set_items(void *ctx, size_t scope, proto_recon_key lo,
			proto_recon_key hi, proto_recon_item *out, size_t max,
			size_t *n)
{
	proto_recon_source *src = ctx;

	*n = 0;
	for (size_t i = 0; i < SET_SIZE; i++) {
		if (set[i].key < lo || set[i].key >= hi || !in_scope(i, scope))
			continue;
		if (*n == max)
			return CM_ERR_TOO_MANY;
		out[(*n)++] = set[i];
		src->work++;
	}
	return CM_OK;
}

/* Checks that a reply the handler wrote is well formed. */
static void check_answer(const proto_recon_session *s, const uint8_t *out,
			 size_t len)
{
	proto_recon_range *ranges = NULL;
	size_t n = 0;

	if (len > s->params.msg_max + 4096)
		abort();
	if (proto_recon_decode(out, len, s->n_scopes, s->params.fp_len,
			       s->params.hash_len, &ranges, &n) != CM_OK)
		abort();
	free(ranges);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_recon_source src = {.agg = set_agg, .items = set_items};
	proto_recon_session s = {0};
	uint8_t *first = NULL, *out = NULL;
	size_t first_len = 0, len = 0;
	bool done = false;

	if (size < 1)
		return 0;
	src.ctx = &src;
	s.initiator = data[0] & 1;
	s.n_scopes = 1 + (data[0] >> 1 & 1);
	s.src = &src;
	s.params = proto_recon_defaults();
	memset(s.salt, 0x5a, sizeof(s.salt));
	if (s.initiator) {
		if (proto_recon_first(&s, &first, &first_len) != CM_OK)
			abort();
		check_answer(&s, first, first_len);
	}
	if (proto_recon_next(&s, data + 1, size - 1, &out, &len, &done) ==
	    CM_OK) {
		if (out != NULL)
			check_answer(&s, out, len);
		if (s.n_want > s.cap_want)
			abort();
	}
	free(out);
	free(first);
	proto_recon_session_free(&s);
	return 0;
}
