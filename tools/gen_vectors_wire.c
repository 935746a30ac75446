/*
 * gen_vectors_wire.c - the table of wire message vectors in
 * proto/PROTOCOL.md ("## Wire messages", "### Test vectors"), encoded by
 * proto_wire.c.
 *
 * The table writes a run of 32 equal bytes, which is always one hash or
 * key of the vector values, as <xx×32>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_vectors.h"
#include "proto_wire.h"

#define HASH_RUN 32

/* 2026-12-04T15:47:00Z, the time in the HELLO and PING vectors. */
#define WIRE_TIME_MS 1796399220000ULL

/* The values the vectors are made of, as PROTOCOL.md lists them. */
typedef struct wire_values {
	uint8_t node_key[PROTO_KEY_LEN];
	uint8_t author[PROTO_KEY_LEN];
	uint8_t root[PROTO_HASH_LEN];
	uint8_t ids[2 * PROTO_ID_LEN];
	uint8_t chunks[2 * PROTO_HASH_LEN];
} wire_values;

/* True when the HASH_RUN bytes at p are all equal. */
static bool is_run(const uint8_t *p)
{
	for (size_t i = 1; i < HASH_RUN; i++)
		if (p[i] != p[0])
			return false;
	return true;
}

/* Prints one table row and frees buf; passes err through. */
static cm_err print_row(const char *what, cm_err err, uint8_t *buf,
			size_t len)
{
	size_t i = 0;

	if (err)
		return err;
	printf("| %s | `", what);
	while (i < len) {
		printf("%s", i ? " " : "");
		if (len - i >= HASH_RUN && is_run(buf + i)) {
			printf("<%02x\xc3\x97%d>", buf[i], HASH_RUN);
			i += HASH_RUN;
		} else {
			printf("%02x", buf[i]);
			i++;
		}
	}
	printf("` |\n");
	free(buf);
	return CM_OK;
}

static cm_err print_link_rows(const wire_values *v)
{
	proto_wire_hello_info creator = {
		.role = PROTO_WIRE_ROLE_CREATOR,
		.node_key = v->node_key,
		.interest = v->author,
		.n_interest = 1,
		.time_ms = WIRE_TIME_MS,
		.listen_port = 7701,
	};
	proto_wire_hello_info mirror = {
		.role = PROTO_WIRE_ROLE_MIRROR,
		.reply = true,
		.node_key = v->node_key,
		.time_ms = WIRE_TIME_MS,
	};
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_hello(&creator, &buf, &len);
	err = print_row("HELLO, creator, not a reply, interest [author], "
			"listening on port 7701", err, buf, len);
	if (err)
		return err;
	err = proto_wire_hello(&mirror, &buf, &len);
	err = print_row("HELLO, mirror, reply, interest nil, not listening",
			err, buf, len);
	if (err)
		return err;
	err = proto_wire_ping(WIRE_TIME_MS, &buf, &len);
	return print_row("PING", err, buf, len);
}

static cm_err print_record_rows(const wire_values *v)
{
	static const uint8_t record[] = {1, 2, 3};
	const uint8_t *records[] = {record};
	const size_t lens[] = {sizeof(record)};
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_records(records, lens, 1, &buf, &len);
	err = print_row("RECORDS with one 3-byte record `01 02 03`", err, buf,
			len);
	if (err)
		return err;
	err = proto_wire_ids(PROTO_WIRE_HAVE, v->ids, 2, &buf, &len);
	err = print_row("HAVE of two ids", err, buf, len);
	if (err)
		return err;
	err = proto_wire_ids(PROTO_WIRE_WANT, v->ids, 1, &buf, &len);
	return print_row("WANT of one id", err, buf, len);
}

static cm_err print_media_rows(const wire_values *v)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_manifest_req(v->root, &buf, &len);
	err = print_row("MANIFEST_REQ", err, buf, len);
	if (err)
		return err;
	err = proto_wire_manifest(v->root, 300000, v->chunks, 2, &buf, &len);
	err = print_row("MANIFEST, size 300000, two chunks", err, buf, len);
	if (err)
		return err;
	err = proto_wire_chunk_req(v->root, 1, &buf, &len);
	err = print_row("CHUNK_REQ, index 1", err, buf, len);
	if (err)
		return err;
	err = proto_wire_chunk(v->root, 0, (const uint8_t *)"hello", 5, &buf,
			       &len);
	err = print_row("CHUNK, index 0, data \"hello\"", err, buf, len);
	if (err)
		return err;
	err = proto_wire_not_found(PROTO_WIRE_MISSING_CHUNK, v->root, 128,
				   &buf, &len);
	return print_row("NOT_FOUND, chunk 128", err, buf, len);
}

/* PEERS_REQ, and PEERS of the documentation addresses 192.0.2.1 and
 * 2001:db8::1 (RFC 5737, RFC 3849), both at port 7701. */
static cm_err print_pex_rows(const wire_values *v)
{
	proto_wire_peer peers[2] = {
		{.key = v->node_key, .ip = {192, 0, 2, 1}, .ip_len = 4,
		 .port = 7701},
		{.key = v->author, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 1},
		 .ip_len = 16, .port = 7701},
	};
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_peers_req(&buf, &len);
	err = print_row("PEERS_REQ", err, buf, len);
	if (err)
		return err;
	err = proto_wire_peers(peers, 2, &buf, &len);
	return print_row("PEERS, 192.0.2.1 and 2001:db8::1, port 7701", err,
			 buf, len);
}

static cm_err print_goodbye_row(void)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_goodbye(&buf, &len);
	return print_row("GOODBYE", err, buf, len);
}

cm_err gen_print_wire_vectors(void)
{
	wire_values v;
	cm_err err;

	memset(v.node_key, 0x11, sizeof(v.node_key));
	memset(v.author, 0x22, sizeof(v.author));
	memset(v.root, 0xaa, sizeof(v.root));
	memset(v.ids, 0x01, PROTO_ID_LEN);
	memset(v.ids + PROTO_ID_LEN, 0x02, PROTO_ID_LEN);
	memset(v.chunks, 0xbb, PROTO_HASH_LEN);
	memset(v.chunks + PROTO_HASH_LEN, 0xcc, PROTO_HASH_LEN);

	printf("| message | hex |\n|---|---|\n");
	err = print_link_rows(&v);
	if (!err)
		err = print_record_rows(&v);
	if (!err)
		err = print_media_rows(&v);
	if (!err)
		err = print_pex_rows(&v);
	if (!err)
		err = print_goodbye_row();
	return err;
}
