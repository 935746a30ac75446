/* Unit tests of proto_open_batch: the same verdicts as proto_record_open,
 * one by one, whatever the number of threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm_util.h"
#include "proto_batch.h"

#define RECORDS 101

static uint8_t wires[RECORDS][CM_RECORD_MAX];
static const uint8_t *wire_ptrs[RECORDS];
static size_t lens[RECORDS];

/* Signs RECORDS clips; every seventh gets one flipped byte in its
 * signature and every eleventh is dated an hour ahead. */
static int make_records(void **state)
{
	uint8_t pk[32], sk[64], id[PROTO_ID_LEN];
	proto_record *r = calloc(1, sizeof(*r));
	uint64_t now = cm_now_ms();

	(void)state;
	if (r == NULL)
		return -1;
	crypto_sign_keypair(pk, sk);
	for (size_t i = 0; i < RECORDS; i++) {
		memset(r, 0, sizeof(*r));
		r->kind = PROTO_KIND_CLIP;
		memcpy(r->author, pk, 32);
		r->created_ms = i % 11 == 0 ? now + 3600000 : now - i;
		strcpy(r->product, "gtin:2000000001012");
		snprintf(r->title, sizeof(r->title), "clip %zu", i);
		r->n_media = 1;
		r->media[0].size = 1 + i;
		strcpy(r->media[0].type, "video/mp4");
		if (proto_record_sign(r, sk, wires[i], CM_RECORD_MAX, &lens[i],
				      id))
			return -1;
		if (i % 7 == 0)
			wires[i][lens[i] - 1] ^= 1;
		wire_ptrs[i] = wires[i];
	}
	free(r);
	return 0;
}

static void check_threads(unsigned threads)
{
	proto_signed *out = calloc(RECORDS, sizeof(*out));
	proto_signed *one = calloc(1, sizeof(*one));
	proto_open_result *results = calloc(RECORDS, sizeof(*results));
	uint64_t now = cm_now_ms();

	assert_non_null(out);
	assert_non_null(one);
	assert_non_null(results);
	proto_open_batch(wire_ptrs, lens, RECORDS, now, threads, out,
			 results);
	for (size_t i = 0; i < RECORDS; i++) {
		cm_err expected = proto_record_open(wires[i], lens[i], now,
						    one);

		assert_int_equal(results[i].err, expected);
		if (expected == CM_OK) {
			assert_memory_equal(out[i].id, one->id, PROTO_ID_LEN);
			assert_ptr_equal(out[i].wire, wires[i]);
			assert_string_equal(results[i].detail, "");
		} else {
			assert_string_not_equal(results[i].detail, "");
		}
	}
	assert_int_equal(results[11].err, CM_ERR_FUTURE);
	assert_int_equal(results[7].err, CM_ERR_BAD_SIGNATURE);
	assert_int_equal(results[1].err, CM_OK);
	free(out);
	free(one);
	free(results);
}

static void batch_one_thread(void **state)
{
	(void)state;
	check_threads(1);
}

static void batch_two_threads(void **state)
{
	(void)state;
	check_threads(2);
}

static void batch_more_threads_than_records(void **state)
{
	proto_signed out[2];
	proto_open_result results[2];

	(void)state;
	proto_open_batch(wire_ptrs + 1, lens + 1, 2, cm_now_ms(), 64, out,
			 results);
	assert_int_equal(results[0].err, CM_OK);
	assert_int_equal(results[1].err, CM_OK);
	proto_open_batch(wire_ptrs, lens, 0, cm_now_ms(), 4, out, results);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(batch_one_thread),
		cmocka_unit_test(batch_two_threads),
		cmocka_unit_test(batch_more_threads_than_records),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, make_records, NULL);
}
