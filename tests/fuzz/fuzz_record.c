/*
 * fuzz_record.c - libFuzzer harness for proto_record_open.
 *
 * Input: a record in its wire form. The harness opens it as a node does,
 * and checks what an accepted record promises (the wire aliases the input,
 * the body decodes again, the id is the body's hash).
 *
 * A mutated record almost never carries a valid signature, so the code
 * after the signature check would stay unreached. When the envelope of
 * the input is readable, the harness therefore also signs its body with
 * the PROTOCOL.md test key (seed bytes 0x01 to 0x20, the author of every
 * seed) and opens the re-signed record, which reaches the clock check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto_record.h"

/* 2026-12-04T17:00:00Z: after every seed's creation time, fixed so that
 * a run can be replayed. */
#define NOW_MS 1796403600000ULL

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_pk[crypto_sign_PUBLICKEYBYTES];
static uint8_t g_sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 1);
	crypto_sign_seed_keypair(g_pk, g_sk, seed);
	return 0;
}

static void check_accepted(const uint8_t *data, size_t size,
			   const proto_signed *s)
{
	static proto_record again;
	uint8_t id[PROTO_ID_LEN];
	size_t head = s->wire[1] == 0xc4 ? 2 : 3;
	size_t body_len = size - 1 - head - 2 - PROTO_SIG_LEN;

	if (s->wire != data || s->wire_len != size) {
		fprintf(stderr, "accepted record does not alias its input\n");
		abort();
	}
	if (proto_body_decode(data + 1 + head, body_len, &again) != CM_OK ||
	    proto_record_validate(&again) != CM_OK) {
		fprintf(stderr, "accepted record's body does not decode\n");
		abort();
	}
	proto_record_id(data + 1 + head, body_len, id);
	if (memcmp(id, s->id, sizeof(id)) != 0) {
		fprintf(stderr, "accepted record's id is not its body hash\n");
		abort();
	}
}

/* Finds the body of a wire record whose envelope starts with 92 and a
 * bin 8 or bin 16 header; returns false otherwise. */
static bool find_body(const uint8_t *data, size_t size, const uint8_t **body,
		      size_t *len)
{
	size_t head;

	if (size < 3 || data[0] != 0x92)
		return false;
	if (data[1] == 0xc4) {
		head = 2;
		*len = data[2];
	} else if (data[1] == 0xc5 && size >= 4) {
		head = 3;
		*len = (size_t)data[2] << 8 | data[3];
	} else {
		return false;
	}
	if (*len > size - 1 - head)
		return false;
	*body = data + 1 + head;
	return true;
}

/* Signs body with the test key and opens the result. */
static void open_resigned(const uint8_t *body, size_t len)
{
	static uint8_t wire[CM_RECORD_MAX];
	static proto_record r;
	static proto_signed s;
	uint8_t msg[64], sig[PROTO_SIG_LEN];
	const char *type;
	size_t n = 0, w = 0;

	if (len > CM_BODY_MAX || proto_body_decode(body, len, &r) != CM_OK)
		return;
	type = proto_kind_name(r.kind);
	memcpy(msg, "clipmesh/1/", 11);
	n = 11;
	memcpy(msg + n, type, strlen(type) + 1);
	n += strlen(type) + 1;
	proto_record_id(body, len, msg + n);
	n += PROTO_ID_LEN;
	crypto_sign_detached(sig, NULL, msg, n, g_sk);

	wire[w++] = 0x92;
	if (len <= 0xff) {
		wire[w++] = 0xc4;
	} else {
		wire[w++] = 0xc5;
		wire[w++] = (uint8_t)(len >> 8);
	}
	wire[w++] = (uint8_t)len;
	memcpy(wire + w, body, len);
	w += len;
	wire[w++] = 0xc4;
	wire[w++] = PROTO_SIG_LEN;
	memcpy(wire + w, sig, sizeof(sig));
	w += sizeof(sig);

	if (proto_record_open(wire, w, NOW_MS, &s) == CM_OK)
		check_accepted(wire, w, &s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static proto_signed s;
	const uint8_t *body;
	size_t body_len;

	if (proto_record_open(data, size, NOW_MS, &s) == CM_OK)
		check_accepted(data, size, &s);
	if (find_body(data, size, &body, &body_len))
		open_resigned(body, body_len);
	return 0;
}
