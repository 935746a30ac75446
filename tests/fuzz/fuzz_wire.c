/*
 * fuzz_wire.c - libFuzzer harness for proto_wire_decode.
 *
 * Input: one ZeroMQ message. Besides the sanitizers it checks that the
 * matching encoder turns every message the decoder accepts back into
 * exactly the input bytes, because the wire format has one encoding per
 * message. It also opens the records of a RECORDS message as a node does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto_wire.h"

#define NOW_MS 1796403600000ULL

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? 1 : 0;
}

/* Encodes a HELLO from decoded fields; the interest keys are copied out
 * of their encoded entries first. */
static cm_err encode_hello(const proto_wire_msg *m, uint8_t **out,
			   size_t *len)
{
	static uint8_t keys[CM_WIRE_FOLLOWS_MAX * PROTO_KEY_LEN];
	proto_wire_hello_info h = {
		.role = m->role,
		.reply = m->reply,
		.node_key = m->node_key,
		.interest = keys,
		.n_interest = m->n_interest,
		.time_ms = m->time_ms,
		.listen_port = m->listen_port,
	};

	if (m->n_interest > CM_WIRE_FOLLOWS_MAX) {
		fprintf(stderr, "HELLO decoded with %zu interest keys\n",
			m->n_interest);
		abort();
	}
	for (size_t i = 0; i < m->n_interest; i++)
		memcpy(keys + i * PROTO_KEY_LEN, proto_wire_interest_key(m, i),
		       PROTO_KEY_LEN);
	if (m->interest_all)
		h.interest = NULL;
	return proto_wire_hello(&h, out, len);
}

/* Encodes m with the encoder of its type; CM_ERR_NOT_FOUND when this
 * harness has none for the type. */
static cm_err encode(const proto_wire_msg *m, uint8_t **out, size_t *len)
{
	switch (m->type) {
	case PROTO_WIRE_HELLO:
		return encode_hello(m, out, len);
	case PROTO_WIRE_PING:
		return proto_wire_ping(m->time_ms, out, len);
	case PROTO_WIRE_RECORDS:
		return proto_wire_records(m->records, m->record_lens,
					  m->n_records, out, len);
	case PROTO_WIRE_HAVE:
	case PROTO_WIRE_WANT:
		return proto_wire_ids(m->type, m->ids, m->n_ids, out, len);
	case PROTO_WIRE_MANIFEST_REQ:
		return proto_wire_manifest_req(m->root, out, len);
	case PROTO_WIRE_MANIFEST:
		return proto_wire_manifest(m->root, m->size, m->chunks,
					   m->n_chunks, out, len);
	case PROTO_WIRE_CHUNK_REQ:
		return proto_wire_chunk_req(m->root, m->index, out, len);
	case PROTO_WIRE_CHUNK:
		return proto_wire_chunk(m->root, m->index, m->data,
					m->data_len, out, len);
	case PROTO_WIRE_NOT_FOUND:
		return proto_wire_not_found(m->missing, m->root, m->index,
					    out, len);
	case PROTO_WIRE_PEERS_REQ:
		return proto_wire_peers_req(out, len);
	case PROTO_WIRE_PEERS:
		return proto_wire_peers(m->peers, m->n_peers, out, len);
	case PROTO_WIRE_GOODBYE:
		return proto_wire_goodbye(out, len);
	default:
		/* NOTE: types without a case here (the reconciliation
		 * messages so far) are decoded but not re-encoded. */
		return CM_ERR_NOT_FOUND;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static proto_wire_msg m;
	static proto_signed rec;
	uint8_t *again = NULL;
	size_t len = 0;
	cm_err err;

	if (proto_wire_decode(data, size, &m) != CM_OK)
		return 0;

	for (size_t i = 0; i < m.n_records; i++)
		(void)proto_record_open(m.records[i], m.record_lens[i], NOW_MS,
					&rec);

	/* The decoder passes any HELLO version on, because the node counts
	 * other versions as bad_version, but the encoder writes only
	 * PROTO_WIRE_VERSION. */
	if (m.type == PROTO_WIRE_HELLO && m.version != PROTO_WIRE_VERSION)
		return 0;

	err = encode(&m, &again, &len);
	if (err == CM_ERR_NOT_FOUND)
		return 0;
	if (err) {
		fprintf(stderr, "decoded %s message does not encode: %s (%s)\n",
			proto_wire_type_name(m.type), cm_err_name(err),
			cm_err_detail());
		abort();
	}
	if (len != size || memcmp(again, data, size) != 0) {
		fprintf(stderr, "decoded %s message of %zu bytes re-encodes "
			"to %zu different bytes\n",
			proto_wire_type_name(m.type), size, len);
		abort();
	}
	free(again);
	return 0;
}
