/*
 * fuzz_body.c - libFuzzer harness for proto_body_decode.
 *
 * Input: a record body. Besides the sanitizers it checks the canonical
 * property that PROTOCOL.md promises: a body that decodes re-encodes to
 * exactly the input bytes, so one record has one id.
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
	static proto_record r;
	static uint8_t again[CM_BODY_MAX];
	size_t len;
	cm_err err;

	if (proto_body_decode(data, size, &r) != CM_OK)
		return 0;

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
