/*
 * fuzz_body.c - libFuzzer harness for proto_body_decode and
 * proto_body_read_stored.
 *
 * Input: a record body. Besides the sanitizers it checks the canonical
 * property that PROTOCOL.md promises: a body that decodes re-encodes to
 * exactly the input bytes, so one record has one id. The reader of
 * stored bodies runs on every input too, since a damaged disk can give
 * it any bytes, and must read each body that decodes into the same
 * record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto_record.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static proto_record r, stored;
	static uint8_t again[CM_BODY_MAX];
	cm_err stored_err = proto_body_read_stored(data, size, &stored);
	size_t len;
	cm_err err;

	if (proto_body_decode(data, size, &r) != CM_OK)
		return 0;

	if (stored_err || memcmp(&stored, &r, sizeof(r)) != 0) {
		fprintf(stderr, "a body that decodes reads back from the store "
			"as %s, or as another record\n",
			cm_err_name(stored_err));
		abort();
	}

	err = proto_body_encode(&r, again, sizeof(again), &len);
	if (err) {
		fprintf(stderr, "decoded body does not encode: %s (%s)\n",
			cm_err_name(err), cm_err_detail());
		abort();
	}
	if (len != size || memcmp(again, data, size) != 0) {
		fprintf(stderr, "decoded body of %zu bytes re-encodes to %zu "
			"different bytes\n", size, len);
		abort();
	}
	return 0;
}
