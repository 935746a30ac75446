/*
 * test_wire.c - wire message vectors and malformed messages.
 *
 * The vectors are the ones printed in proto/PROTOCOL.md (Wire messages); a change to
 * either must change both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "node.h"
#include "proto_wire.h"

/* ---- vectors (proto/PROTOCOL.md, wire "Test vectors") ---- */

#define X32(b) b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b
#define NODE_KEY_HEX X32("11")
#define AUTHOR_HEX X32("22")
#define ROOT_HEX X32("aa")
#define ID1_HEX X32("01")
#define ID2_HEX X32("02")
#define CHUNK1_HEX X32("bb")
#define CHUNK2_HEX X32("cc")

/* The time of the HELLO and PING vectors, 2026-12-04T15:47:00Z. */
#define TIME_MS 1796399220000ULL
#define TIME_HEX "cf000001a241bcc520"

/* The creator listens on port 7701, the mirror nowhere. */
#define HELLO_CREATOR \
	"98010101c2c420" NODE_KEY_HEX "91c420" AUTHOR_HEX TIME_HEX "cd1e15"
#define HELLO_MIRROR_REPLY "98010102c3c420" NODE_KEY_HEX "c0" TIME_HEX "00"
#define PING "9202" TIME_HEX
#define RECORDS "920391c403010203"
#define HAVE "9204c440" ID1_HEX ID2_HEX
#define WANT "9205c420" ID1_HEX
#define MANIFEST_REQ "9206c420" ROOT_HEX
#define MANIFEST \
	"9407c420" ROOT_HEX "ce000493e0c440" CHUNK1_HEX CHUNK2_HEX
#define CHUNK_REQ "9308c420" ROOT_HEX "01"
#define CHUNK "9409c420" ROOT_HEX "00c40568656c6c6f"
#define NOT_FOUND "940a02c420" ROOT_HEX "cc80"
#define PEERS_REQ "910e"
#define GOODBYE "9110"
/* 192.0.2.1 and 2001:db8::1, both at port 7701 (0x1e15). */
#define PEER_V4 "93c420" NODE_KEY_HEX "c404c0000201cd1e15"
#define PEER_V6 \
	"93c420" AUTHOR_HEX "c41020010db8000000000000000000000001cd1e15"
#define PEERS "920f92" PEER_V4 PEER_V6

static const char *const all_vectors[] = {
	HELLO_CREATOR, HELLO_MIRROR_REPLY, PING, RECORDS, HAVE, WANT,
	MANIFEST_REQ, MANIFEST, CHUNK_REQ, CHUNK, NOT_FOUND, PEERS_REQ, PEERS,
	GOODBYE,
};

static uint8_t node_key[32], author[32], root[32], id1[32], id2[32];

static const proto_wire_hello_info creator_hello = {
	.role = PROTO_WIRE_ROLE_CREATOR,
	.node_key = node_key,
	.interest = author,
	.n_interest = 1,
	.time_ms = TIME_MS,
	.listen_port = 7701,
};
static const proto_wire_hello_info mirror_reply = {
	.role = PROTO_WIRE_ROLE_MIRROR,
	.reply = true,
	.node_key = node_key,
	.time_ms = TIME_MS,
};
static uint8_t chunk_hashes[64];

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

/* Decodes hex into a malloc'd buffer; *len receives its size. */
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

/* Checks an encoder's output against a vector and frees it. */
static void assert_encoded(cm_err err, uint8_t *buf, size_t len,
			   const char *hex)
{
	char *got;

	assert_err(err, CM_OK);
	got = malloc(2 * len + 1);
	assert_non_null(got);
	cm_hex_encode(buf, len, got);
	if (strcmp(got, hex) != 0) {
		print_error("encoding differs\n     got %s\nexpected %s\n", got,
			    hex);
		fail();
	}
	free(got);
	free(buf);
}

/* The input of the last decode_hex call, which *m points into. */
static uint8_t *last_input;

/* Decodes a hex message, expecting `want`. m stays valid until the next
 * call. */
static void decode_hex(const char *hex, proto_wire_msg *m, cm_err want)
{
	size_t len;

	free(last_input);
	last_input = unhex(hex, &len);
	assert_err(proto_wire_decode(last_input, len, m), want);
}

static int setup(void **state)
{
	(void)state;
	memset(node_key, 0x11, 32);
	memset(author, 0x22, 32);
	memset(root, 0xaa, 32);
	memset(id1, 0x01, 32);
	memset(id2, 0x02, 32);
	memset(chunk_hashes, 0xbb, 32);
	memset(chunk_hashes + 32, 0xcc, 32);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(last_input);
	last_input = NULL;
	return 0;
}

/* ---- vectors: encoding ---- */

static void encode_vectors(void **state)
{
	uint8_t ids[64], *buf = NULL;
	const uint8_t record[3] = {1, 2, 3};
	const uint8_t *records[1] = {record};
	const size_t lens[1] = {3};
	size_t len = 0;
	cm_err err;

	(void)state;
	memcpy(ids, id1, 32);
	memcpy(ids + 32, id2, 32);

	err = proto_wire_hello(&creator_hello, &buf, &len);
	assert_encoded(err, buf, len, HELLO_CREATOR);
	err = proto_wire_hello(&mirror_reply, &buf, &len);
	assert_encoded(err, buf, len, HELLO_MIRROR_REPLY);
	err = proto_wire_ping(TIME_MS, &buf, &len);
	assert_encoded(err, buf, len, PING);
	err = proto_wire_records(records, lens, 1, &buf, &len);
	assert_encoded(err, buf, len, RECORDS);
	err = proto_wire_ids(PROTO_WIRE_HAVE, ids, 2, &buf, &len);
	assert_encoded(err, buf, len, HAVE);
	err = proto_wire_ids(PROTO_WIRE_WANT, ids, 1, &buf, &len);
	assert_encoded(err, buf, len, WANT);
	err = proto_wire_manifest_req(root, &buf, &len);
	assert_encoded(err, buf, len, MANIFEST_REQ);
	err = proto_wire_manifest(root, 300000, chunk_hashes, 2, &buf, &len);
	assert_encoded(err, buf, len, MANIFEST);
	err = proto_wire_chunk_req(root, 1, &buf, &len);
	assert_encoded(err, buf, len, CHUNK_REQ);
	err = proto_wire_chunk(root, 0, (const uint8_t *)"hello", 5, &buf,
			       &len);
	assert_encoded(err, buf, len, CHUNK);
	err = proto_wire_not_found(PROTO_WIRE_MISSING_CHUNK, root, 128, &buf,
				   &len);
	assert_encoded(err, buf, len, NOT_FOUND);
}

/* The two addresses of the PEERS vector. */
static void vector_peers(proto_wire_peer peers[2])
{
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

	memset(peers, 0, 2 * sizeof(*peers));
	peers[0].key = node_key;
	memcpy(peers[0].ip, (const uint8_t[]){192, 0, 2, 1}, 4);
	peers[0].ip_len = 4;
	peers[0].port = 7701;
	peers[1].key = author;
	memcpy(peers[1].ip, v6, 16);
	peers[1].ip_len = 16;
	peers[1].port = 7701;
}

static void encode_pex_vectors(void **state)
{
	proto_wire_peer peers[2];
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	(void)state;
	vector_peers(peers);
	err = proto_wire_peers_req(&buf, &len);
	assert_encoded(err, buf, len, PEERS_REQ);
	err = proto_wire_peers(peers, 2, &buf, &len);
	assert_encoded(err, buf, len, PEERS);
	err = proto_wire_peers(peers, 0, &buf, &len);
	assert_encoded(err, buf, len, "920f90");
}

static void decode_pex_vectors(void **state)
{
	proto_wire_peer want[2];
	proto_wire_msg m;

	(void)state;
	vector_peers(want);
	decode_hex(PEERS_REQ, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_PEERS_REQ);

	decode_hex(PEERS, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_PEERS);
	assert_int_equal(m.n_peers, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_memory_equal(m.peers[i].key, want[i].key, 32);
		assert_int_equal(m.peers[i].ip_len, want[i].ip_len);
		assert_memory_equal(m.peers[i].ip, want[i].ip, want[i].ip_len);
		assert_int_equal(m.peers[i].port, want[i].port);
	}

	decode_hex("920f90", &m, CM_OK);
	assert_int_equal(m.n_peers, 0);
	/* Port 0 decodes; nodes skip it as unusable. */
	decode_hex("920f9193c420" NODE_KEY_HEX "c404c000020100", &m, CM_OK);
	assert_int_equal(m.peers[0].port, 0);
}

static void decode_pex_invalid(void **state)
{
	char *many;
	size_t entry;
	proto_wire_msg m;

	(void)state;
	decode_hex("920e90", &m, CM_ERR_BAD_MESSAGE);     /* extra element */
	decode_hex("910f", &m, CM_ERR_BAD_MESSAGE);       /* no list */
	decode_hex("920fdc0021", &m, CM_ERR_TOO_MANY);    /* 33 entries */
	decode_hex("920f9192c420" NODE_KEY_HEX "c404c0000201", &m,
		   CM_ERR_BAD_MESSAGE);                   /* no port */
	decode_hex("920f9193c420" NODE_KEY_HEX "c405c000020101" "01", &m,
		   CM_ERR_BAD_MESSAGE);                   /* 5-byte ip */
	decode_hex("920f9193c420" NODE_KEY_HEX "c411" X32("00") "01", &m,
		   CM_ERR_TOO_LONG);                      /* 17-byte ip */
	decode_hex("920f9193c420" NODE_KEY_HEX "c404c0000201ce00010000", &m,
		   CM_ERR_BAD_MESSAGE);                   /* port 65536 */
	decode_hex("920f9193c41f" X32("11") "c404c0000201" "01", &m,
		   CM_ERR_BAD_MESSAGE);                   /* 31-byte key */
	decode_hex("920f9193c420" NODE_KEY_HEX "c404c0000201cd0001", &m,
		   CM_ERR_NONMINIMAL_INT);                /* port 1 in uint16 */
	decode_hex("920f91c0", &m, CM_ERR_BAD_TYPE);      /* entry is nil */

	/* 32 entries decode; a list that claims 33 is over the limit even
	 * when all 33 are present. */
	entry = strlen(PEER_V4);
	many = malloc(10 + 33 * entry + 1);
	assert_non_null(many);
	memcpy(many, "920fdc0020", 10);
	for (size_t i = 0; i < 33; i++)
		memcpy(many + 10 + i * entry, PEER_V4, entry);
	many[10 + 32 * entry] = '\0';
	decode_hex(many, &m, CM_OK);
	assert_int_equal(m.n_peers, 32);
	many[9] = '1';
	many[10 + 33 * entry] = '\0';
	decode_hex(many, &m, CM_ERR_TOO_MANY);
	free(many);
}

static void goodbye_vector(void **state)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	proto_wire_msg m;
	cm_err err;

	(void)state;
	err = proto_wire_goodbye(&buf, &len);
	assert_encoded(err, buf, len, GOODBYE);
	decode_hex(GOODBYE, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_GOODBYE);
	assert_string_equal(proto_wire_type_name(m.type), "goodbye");
}

/* GOODBYE has no fields, so anything after its type is an extra element,
 * whatever its type. */
static void goodbye_invalid(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex("921000", &m, CM_ERR_BAD_MESSAGE);     /* extra uint */
	decode_hex("9210c0", &m, CM_ERR_BAD_MESSAGE);     /* extra nil */
	decode_hex("9210c400", &m, CM_ERR_BAD_MESSAGE);   /* extra bin */
	decode_hex("91cc10", &m, CM_ERR_NONMINIMAL_INT);  /* type as uint8 */
	decode_hex("91c40110", &m, CM_ERR_BAD_TYPE);      /* type as bin */
	decode_hex(GOODBYE "00", &m, CM_ERR_TRAILING);
}

static void encode_pex_rejects_over_limit(void **state)
{
	proto_wire_peer peers[CM_PEX_ENTRIES_MAX + 1];
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	memset(peers, 0, sizeof(peers));
	for (size_t i = 0; i <= CM_PEX_ENTRIES_MAX; i++) {
		peers[i].key = node_key;
		peers[i].ip_len = 4;
		peers[i].port = 1;
	}
	assert_err(proto_wire_peers(peers, CM_PEX_ENTRIES_MAX + 1, &buf,
				    &len), CM_ERR_USAGE);
	peers[0].ip_len = 5;
	assert_err(proto_wire_peers(peers, 1, &buf, &len), CM_ERR_USAGE);
	assert_null(buf);
}

/* ---- vectors: decoding ---- */

static void decode_hello_vectors(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex(HELLO_CREATOR, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_HELLO);
	assert_int_equal(m.version, PROTO_WIRE_VERSION);
	assert_int_equal(m.role, PROTO_WIRE_ROLE_CREATOR);
	assert_false(m.reply);
	assert_false(m.interest_all);
	assert_int_equal(m.n_interest, 1);
	assert_memory_equal(proto_wire_interest_key(&m, 0), author, 32);
	assert_true(m.time_ms == TIME_MS);
	assert_int_equal(m.listen_port, 7701);

	decode_hex(HELLO_MIRROR_REPLY, &m, CM_OK);
	assert_int_equal(m.role, PROTO_WIRE_ROLE_MIRROR);
	assert_true(m.reply);
	assert_true(m.interest_all);
	assert_int_equal(m.n_interest, 0);
	assert_true(m.time_ms == TIME_MS);
	assert_int_equal(m.listen_port, 0);
}

/* Every time, from 0 to the largest uint64, goes through HELLO and PING in
 * its shortest form. */
static void hello_ping_time_roundtrip(void **state)
{
	static const struct {
		uint64_t ms;
		const char *hex;
	} times[] = {
		{0, "00"},
		{127, "7f"},
		{128, "cc80"},
		{65536, "ce00010000"},
		{0x100000000ULL, "cf0000000100000000"},
		{UINT64_MAX, "cfffffffffffffffff"},
	};
	char want[sizeof("98010102c3c420") + 64 + 2 + 18 + 2];
	proto_wire_hello_info h = mirror_reply;
	proto_wire_msg m;
	uint8_t *buf;
	size_t len;
	cm_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(*times); i++) {
		snprintf(want, sizeof(want), "98010102c3c420%sc0%s00",
			 NODE_KEY_HEX, times[i].hex);
		h.time_ms = times[i].ms;
		err = proto_wire_hello(&h, &buf, &len);
		assert_encoded(err, buf, len, want);
		decode_hex(want, &m, CM_OK);
		assert_true(m.time_ms == times[i].ms);

		snprintf(want, sizeof(want), "9202%s", times[i].hex);
		err = proto_wire_ping(times[i].ms, &buf, &len);
		assert_encoded(err, buf, len, want);
		decode_hex(want, &m, CM_OK);
		assert_int_equal(m.type, PROTO_WIRE_PING);
		assert_true(m.time_ms == times[i].ms);
	}
}

/* A HELLO without its time or listen port, or a PING without its time,
 * as nodes sent them before those were added, is rejected like any
 * message of the wrong length. */
static void decode_hello_ping_without_time(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex("96010101c2c420" NODE_KEY_HEX "91c420" AUTHOR_HEX, &m,
		   CM_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cm_err_detail(), "expected 8"));
	decode_hex("97010102c3c420" NODE_KEY_HEX "c0" TIME_HEX, &m,
		   CM_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cm_err_detail(), "expected 8"));
	decode_hex("9102", &m, CM_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cm_err_detail(), "expected 2"));
	/* Eight elements, but the last one missing from the input. */
	decode_hex("98010102c3c420" NODE_KEY_HEX "c0" TIME_HEX, &m,
		   CM_ERR_TRUNCATED);
}

/* The listen port is a shortest-form unsigned integer up to 65535. */
static void decode_listen_port(void **state)
{
	static const struct {
		const char *port_hex;
		cm_err want;
		uint16_t port;
	} cases[] = {
		{"00", CM_OK, 0},
		{"cdffff", CM_OK, 65535},
		{"ce00010000", CM_ERR_BAD_MESSAGE, 0},  /* 65536 */
		{"cc05", CM_ERR_NONMINIMAL_INT, 0},
		{"c0", CM_ERR_BAD_TYPE, 0},
		{"ff", CM_ERR_NEGATIVE_INT, 0},
	};
	char hex[200];
	proto_wire_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(hex, sizeof(hex), "98010102c3c420%sc0%s%s",
			 NODE_KEY_HEX, TIME_HEX, cases[i].port_hex);
		decode_hex(hex, &m, cases[i].want);
		if (cases[i].want == CM_OK)
			assert_int_equal(m.listen_port, cases[i].port);
	}
	decode_hex("98010102c3c420" NODE_KEY_HEX "c0" TIME_HEX "ce00010000",
		   &m, CM_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cm_err_detail(), "65536"));
}

/* The time is an unsigned integer in its shortest form like any other. */
static void decode_bad_time(void **state)
{
	static const struct {
		const char *time_hex;
		cm_err want;
	} cases[] = {
		{"c0", CM_ERR_BAD_TYPE},                 /* nil */
		{"c3", CM_ERR_BAD_TYPE},                 /* true */
		{"a15a", CM_ERR_BAD_TYPE},               /* a string */
		{"ff", CM_ERR_NEGATIVE_INT},             /* -1 */
		{"d3ffffffffffffffff", CM_ERR_NEGATIVE_INT}, /* int64 -1 */
		{"cb41da268ef1480000", CM_ERR_FLOAT},    /* a float64 */
		{"d40000", CM_ERR_EXT},                  /* fixext 1 */
		{"cc05", CM_ERR_NONMINIMAL_INT},         /* 5 as uint8 */
		{"cf00000000ffffffff", CM_ERR_NONMINIMAL_INT},
		{"cf000001a241bc", CM_ERR_TRUNCATED},    /* cut inside */
	};
	char hex[200];
	proto_wire_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(hex, sizeof(hex), "98010102c3c420%sc0%s00",
			 NODE_KEY_HEX, cases[i].time_hex);
		decode_hex(hex, &m, cases[i].want);
		snprintf(hex, sizeof(hex), "9202%s", cases[i].time_hex);
		decode_hex(hex, &m, cases[i].want);
	}
}

static void decode_hello_keys(void **state)
{
	uint8_t keys[3 * 32], *buf;
	proto_wire_hello_info h = creator_hello;
	proto_wire_msg m;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 3; i++)
		memset(keys + 32 * i, (int)(0x40 + i), 32);
	h.interest = keys;
	h.n_interest = 3;
	assert_err(proto_wire_hello(&h, &buf, &len), CM_OK);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_memory_equal(m.node_key, node_key, 32);
	assert_int_equal(m.n_interest, 3);
	assert_true(m.time_ms == TIME_MS);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(proto_wire_interest_key(&m, i),
				    keys + 32 * i, 32);
	free(buf);
}

static void decode_data_vectors(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex(PING, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_PING);
	assert_true(m.time_ms == TIME_MS);

	decode_hex(RECORDS, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_RECORDS);
	assert_int_equal(m.n_records, 1);
	assert_int_equal(m.record_lens[0], 3);
	assert_memory_equal(m.records[0], "\x01\x02\x03", 3);

	decode_hex(HAVE, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_HAVE);
	assert_int_equal(m.n_ids, 2);
	assert_memory_equal(m.ids, id1, 32);
	assert_memory_equal(m.ids + 32, id2, 32);

	decode_hex(WANT, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_WANT);
	assert_int_equal(m.n_ids, 1);
}

static void decode_media_vectors(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex(MANIFEST_REQ, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_MANIFEST_REQ);
	assert_memory_equal(m.root, root, 32);

	decode_hex(MANIFEST, &m, CM_OK);
	assert_int_equal(m.size, 300000);
	assert_int_equal(m.n_chunks, 2);
	assert_memory_equal(m.chunks, chunk_hashes, 64);

	decode_hex(CHUNK_REQ, &m, CM_OK);
	assert_int_equal(m.type, PROTO_WIRE_CHUNK_REQ);
	assert_int_equal(m.index, 1);

	decode_hex(CHUNK, &m, CM_OK);
	assert_int_equal(m.index, 0);
	assert_int_equal(m.data_len, 5);
	assert_memory_equal(m.data, "hello", 5);

	decode_hex(NOT_FOUND, &m, CM_OK);
	assert_int_equal(m.missing, PROTO_WIRE_MISSING_CHUNK);
	assert_int_equal(m.index, 128);
	assert_memory_equal(m.root, root, 32);
}

/* ---- malformed messages ---- */

static void decode_every_prefix_fails(void **state)
{
	proto_wire_msg m;

	(void)state;
	for (size_t v = 0; v < sizeof(all_vectors) / sizeof(*all_vectors);
	     v++) {
		size_t len;
		uint8_t *buf = unhex(all_vectors[v], &len);

		for (size_t cut = 0; cut < len; cut++) {
			cm_err err = proto_wire_decode(buf, cut, &m);

			if (err == CM_OK) {
				print_error("vector %zu cut to %zu of %zu "
					    "bytes decoded\n", v, cut, len);
				fail();
			}
		}
		free(buf);
	}
}

static void decode_trailing_byte(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex(PING "00", &m, CM_ERR_TRAILING);
	decode_hex("92020000", &m, CM_ERR_TRAILING);
	decode_hex(HAVE "c0", &m, CM_ERR_TRAILING);
}

static void decode_claims_beyond_input(void **state)
{
	proto_wire_msg m;

	(void)state;
	/* A bin16 claiming 256 bytes with 32 present. */
	decode_hex("9205c50100" ID1_HEX, &m, CM_ERR_TRUNCATED);
	/* A record claiming 1000 bytes with 3 present. */
	decode_hex("920391c503e8010203", &m, CM_ERR_TRUNCATED);
	/* An interest claiming 100 keys with one present. */
	decode_hex("98010101c2c420" NODE_KEY_HEX "dc0064c420" AUTHOR_HEX, &m,
		   CM_ERR_TRUNCATED);
	/* A chunk claiming 2^32-1 bytes: over the limit before the input
	 * is even looked at. */
	decode_hex("9409c420" ROOT_HEX "00c6ffffffff", &m, CM_ERR_TOO_LONG);
}

static void decode_over_limit_lists(void **state)
{
	const size_t n = CM_WIRE_IDS_MAX + 1;
	uint8_t *buf = calloc(1, 8 + n * 32);
	proto_wire_msg m;
	size_t len = 0;

	(void)state;
	assert_non_null(buf);
	/* HAVE with one id too many, all bytes present. */
	buf[len++] = 0x92;
	buf[len++] = 0x04;
	buf[len++] = 0xc6;
	buf[len++] = (uint8_t)((n * 32) >> 24);
	buf[len++] = (uint8_t)((n * 32) >> 16);
	buf[len++] = (uint8_t)((n * 32) >> 8);
	buf[len++] = (uint8_t)(n * 32);
	len += n * 32;
	assert_err(proto_wire_decode(buf, len, &m), CM_ERR_TOO_MANY);
	free(buf);

	/* RECORDS with CM_WIRE_BATCH_MAX + 1 records (array16 0x41). */
	decode_hex("9203dc0041", &m, CM_ERR_TOO_MANY);
	/* HELLO interest of CM_WIRE_FOLLOWS_MAX + 1 keys. */
	decode_hex("98010101c2c420" NODE_KEY_HEX "dc1001", &m,
		   CM_ERR_TOO_MANY);
	/* A manifest over CM_MANIFEST_CHUNKS_MAX hashes (bin32 of
	 * 16385 * 32 bytes). */
	decode_hex("9407c420" ROOT_HEX "01c600080020", &m, CM_ERR_TOO_MANY);
}

static void decode_over_limit_values(void **state)
{
	proto_wire_msg m;
	char hex[160];

	(void)state;
	/* A record one byte over CM_RECORD_MAX. */
	snprintf(hex, sizeof(hex), "920391c5%04x", CM_RECORD_MAX + 1);
	decode_hex(hex, &m, CM_ERR_TOO_LONG);
	/* A chunk one byte over CM_CHUNK_SIZE. */
	snprintf(hex, sizeof(hex), "9409c420%s00c6%08x", ROOT_HEX,
		 CM_CHUNK_SIZE + 1);
	decode_hex(hex, &m, CM_ERR_TOO_LONG);
	/* A manifest size over CM_MEDIA_SIZE_MAX. */
	decode_hex("9407c420" ROOT_HEX "cf0000000100000001c440" CHUNK1_HEX
		   CHUNK2_HEX, &m, CM_ERR_TOO_LONG);
	/* Chunk index CM_MANIFEST_CHUNKS_MAX (16384) is out of range. */
	decode_hex("9308c420" ROOT_HEX "cd4000", &m, CM_ERR_BAD_MESSAGE);
}

static void decode_message_too_long(void **state)
{
	size_t len = CM_WIRE_MSG_MAX + 1;
	uint8_t *buf = calloc(1, len);
	proto_wire_msg m;

	(void)state;
	assert_non_null(buf);
	buf[0] = 0x91;
	buf[1] = 0x02;
	assert_err(proto_wire_decode(buf, len, &m), CM_ERR_TOO_LONG);
	free(buf);
}

static void decode_wrong_types(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex("a0", &m, CM_ERR_BAD_TYPE);          /* not an array */
	decode_hex("91a102", &m, CM_ERR_BAD_TYPE);      /* type as str */
	decode_hex("91ff", &m, CM_ERR_NEGATIVE_INT);    /* type -1 */
	decode_hex("91ca40000000", &m, CM_ERR_FLOAT);   /* type 2.0 */
	decode_hex("91d40102", &m, CM_ERR_EXT);         /* fixext 1 */
	decode_hex("920490", &m, CM_ERR_BAD_TYPE);      /* ids as array */
	decode_hex("9205a0", &m, CM_ERR_BAD_TYPE);      /* ids as str */
	decode_hex("98010101c0c420" NODE_KEY_HEX "c000", &m,
		   CM_ERR_BAD_TYPE);                    /* reply flag nil */
	decode_hex("98010101c2c420" NODE_KEY_HEX "91d920" X32("41") "00", &m,
		   CM_ERR_BAD_TYPE);                    /* key as str */
}

static void decode_nonminimal(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex("91cc02", &m, CM_ERR_NONMINIMAL_INT);
	decode_hex("dc00019102", &m, CM_ERR_NONMINIMAL_LEN);
	decode_hex("9205c50020" ID1_HEX, &m, CM_ERR_NONMINIMAL_LEN);
	decode_hex("9308c420" ROOT_HEX "cd0001", &m, CM_ERR_NONMINIMAL_INT);
}

static void decode_bad_layout(void **state)
{
	proto_wire_msg m;

	(void)state;
	decode_hex("90", &m, CM_ERR_BAD_MESSAGE);         /* empty array */
	decode_hex("9100", &m, CM_ERR_BAD_MESSAGE);       /* type 0 */
	decode_hex("910b", &m, CM_ERR_BAD_MESSAGE);       /* type 11 */
	decode_hex("930200c0", &m, CM_ERR_BAD_MESSAGE);   /* ping + extra */
	decode_hex("9106", &m, CM_ERR_BAD_MESSAGE);       /* no root */
	decode_hex("9204c400", &m, CM_ERR_BAD_MESSAGE);   /* no ids */
	decode_hex("920390", &m, CM_ERR_BAD_MESSAGE);     /* no records */
	decode_hex("9204c421" ID1_HEX "01", &m,
		   CM_ERR_BAD_MESSAGE);                   /* 33-byte id list */
	decode_hex("9206c41f" ROOT_HEX, &m,
		   CM_ERR_BAD_MESSAGE);                   /* 31-byte root */
	decode_hex("98010103c2c420" NODE_KEY_HEX "c000", &m,
		   CM_ERR_BAD_MESSAGE);                   /* role 3 */
	decode_hex("98010101c2c41f" X32("11") "c000", &m,
		   CM_ERR_BAD_MESSAGE);                   /* 31-byte key */
	decode_hex("940a03c420" ROOT_HEX "00", &m,
		   CM_ERR_BAD_MESSAGE);                   /* not-found kind */
}

static void encode_rejects_over_limit(void **state)
{
	uint8_t *buf = NULL, ids[32] = {0};
	const uint8_t *records[1] = {ids};
	size_t lens[1] = {CM_RECORD_MAX + 1}, len;

	(void)state;
	assert_err(proto_wire_records(records, lens, 0, &buf, &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_records(records, lens, 1, &buf, &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_ids(PROTO_WIRE_HAVE, ids, 0, &buf, &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_ids(PROTO_WIRE_HAVE, ids, CM_WIRE_IDS_MAX + 1,
				  &buf, &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_ids(PROTO_WIRE_PING, ids, 1, &buf, &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_chunk(root, 0, ids, CM_CHUNK_SIZE + 1, &buf,
				    &len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_chunk_req(root, CM_MANIFEST_CHUNKS_MAX, &buf,
					&len),
		   CM_ERR_USAGE);
	assert_null(buf);
}

static void roundtrip_largest_messages(void **state)
{
	uint8_t *ids = calloc(CM_WIRE_IDS_MAX, 32);
	uint8_t *chunk = calloc(1, CM_CHUNK_SIZE);
	uint8_t *buf;
	proto_wire_msg m;
	size_t len;

	(void)state;
	assert_non_null(ids);
	assert_non_null(chunk);
	ids[CM_WIRE_IDS_MAX * 32 - 1] = 0x7f;
	assert_err(proto_wire_ids(PROTO_WIRE_WANT, ids, CM_WIRE_IDS_MAX, &buf,
				  &len),
		   CM_OK);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_int_equal(m.n_ids, CM_WIRE_IDS_MAX);
	assert_int_equal(m.ids[CM_WIRE_IDS_MAX * 32 - 1], 0x7f);
	free(buf);

	assert_err(proto_wire_chunk(root, CM_MANIFEST_CHUNKS_MAX - 1, chunk,
				    CM_CHUNK_SIZE, &buf, &len),
		   CM_OK);
	assert_err(proto_wire_decode(buf, len, &m), CM_OK);
	assert_int_equal(m.data_len, CM_CHUNK_SIZE);
	assert_int_equal(m.index, CM_MANIFEST_CHUNKS_MAX - 1);
	free(buf);
	free(chunk);
	free(ids);
}

/* A CHUNK head followed by the data decodes to the chunk, for each size
 * class of msgpack's bin header and of the index. */
static void chunk_head_then_data_decodes(void **state)
{
	static const size_t sizes[] = {1, 255, 256, 65535, 65536,
				       CM_CHUNK_SIZE};
	static const uint64_t indices[] = {0, 127, 128, 255, 256,
					   CM_MANIFEST_CHUNKS_MAX - 1};
	uint8_t *msg = malloc(PROTO_WIRE_CHUNK_HEAD_MAX + CM_CHUNK_SIZE);
	uint8_t *chunk = malloc(CM_CHUNK_SIZE);
	size_t head_len;
	proto_wire_msg m;

	(void)state;
	assert_non_null(msg);
	assert_non_null(chunk);
	for (size_t b = 0; b < CM_CHUNK_SIZE; b++)
		chunk[b] = (uint8_t)(b * 131 + 7);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t i = 0; i < sizeof(indices) / sizeof(indices[0]);
		     i++) {
			assert_err(proto_wire_chunk_head(root, indices[i],
							 sizes[s], msg,
							 &head_len),
				   CM_OK);
			memcpy(msg + head_len, chunk, sizes[s]);
			assert_err(proto_wire_decode(msg, head_len + sizes[s],
						     &m),
				   CM_OK);
			assert_int_equal(m.type, PROTO_WIRE_CHUNK);
			assert_memory_equal(m.root, root, 32);
			assert_int_equal(m.index, indices[i]);
			assert_int_equal(m.data_len, sizes[s]);
			assert_memory_equal(m.data, chunk, sizes[s]);
		}
	}
	assert_err(proto_wire_chunk_head(root, 0, CM_CHUNK_SIZE + 1, msg,
					 &head_len),
		   CM_ERR_USAGE);
	assert_err(proto_wire_chunk_head(root, CM_MANIFEST_CHUNKS_MAX,
					 CM_CHUNK_SIZE, msg, &head_len),
		   CM_ERR_USAGE);
	free(chunk);
	free(msg);
}

/* ---- peer addresses ---- */

static void addr_parse_valid(void **state)
{
	static const struct {
		const char *addr;
		const char *endpoint;
	} cases[] = {
		{"clipmesh://" NODE_KEY_HEX "@127.0.0.1:7701",
		 "tcp://127.0.0.1:7701"},
		{"clipmesh://" NODE_KEY_HEX "@node-1.example.org:65535",
		 "tcp://node-1.example.org:65535"},
		{"clipmesh://" NODE_KEY_HEX "@[::1]:1", "tcp://[::1]:1"},
		{"clipmesh://" X32("AB") "@host:80", "tcp://host:80"},
	};
	char endpoint[256];
	uint8_t key[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_err(node_parse_addr(cases[i].addr, endpoint, key),
			   CM_OK);
		assert_string_equal(endpoint, cases[i].endpoint);
	}
	assert_memory_equal(key, "\xab\xab\xab\xab", 4);
}

static void addr_parse_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"tcp://127.0.0.1:7701",
		"clipmesh://" X32("1") "@127.0.0.1:7701",   /* 32 digits */
		"clipmesh://" NODE_KEY_HEX "1@127.0.0.1:7701",
		"clipmesh://" X32("zz") "@127.0.0.1:7701",
		"clipmesh://" NODE_KEY_HEX "127.0.0.1:7701",  /* no '@' */
		"clipmesh://" NODE_KEY_HEX "@127.0.0.1",      /* no port */
		"clipmesh://" NODE_KEY_HEX "@:7701",          /* no host */
		"clipmesh://" NODE_KEY_HEX "@127.0.0.1:0",
		"clipmesh://" NODE_KEY_HEX "@127.0.0.1:65536",
		"clipmesh://" NODE_KEY_HEX "@127.0.0.1:77x",
		"clipmesh://" NODE_KEY_HEX "@host/path:7701",
		"clipmesh://" NODE_KEY_HEX "@[::1:7701",
		"clipmesh://" NODE_KEY_HEX "@*:7701",
	};
	char endpoint[256];
	uint8_t key[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		cm_err err = node_parse_addr(cases[i], endpoint, key);

		if (err != CM_ERR_USAGE) {
			print_error("\"%s\" returned %s, expected usage\n",
				    cases[i], cm_err_name(err));
			fail();
		}
		/* The detail names the rejected address. */
		assert_non_null(strstr(cm_err_detail(), "\""));
	}
}

static void addr_format_roundtrip(void **state)
{
	char addr[256], endpoint[256];
	uint8_t key[32];

	(void)state;
	assert_err(node_format_addr("tcp://127.0.0.1:7701", node_key, addr),
		   CM_OK);
	assert_string_equal(addr,
			    "clipmesh://" NODE_KEY_HEX "@127.0.0.1:7701");
	assert_err(node_parse_addr(addr, endpoint, key), CM_OK);
	assert_string_equal(endpoint, "tcp://127.0.0.1:7701");
	assert_memory_equal(key, node_key, 32);

	assert_err(node_format_addr("tcp://*:7701", node_key, addr),
		   CM_ERR_USAGE);
	assert_err(node_format_addr("ipc:///tmp/x", node_key, addr),
		   CM_ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encode_vectors),
		cmocka_unit_test(encode_pex_vectors),
		cmocka_unit_test(decode_pex_vectors),
		cmocka_unit_test(decode_pex_invalid),
		cmocka_unit_test(encode_pex_rejects_over_limit),
		cmocka_unit_test(goodbye_vector),
		cmocka_unit_test(goodbye_invalid),
		cmocka_unit_test(decode_hello_vectors),
		cmocka_unit_test(decode_hello_keys),
		cmocka_unit_test(hello_ping_time_roundtrip),
		cmocka_unit_test(decode_hello_ping_without_time),
		cmocka_unit_test(decode_listen_port),
		cmocka_unit_test(decode_bad_time),
		cmocka_unit_test(decode_data_vectors),
		cmocka_unit_test(decode_media_vectors),
		cmocka_unit_test(decode_every_prefix_fails),
		cmocka_unit_test(decode_trailing_byte),
		cmocka_unit_test(decode_claims_beyond_input),
		cmocka_unit_test(decode_over_limit_lists),
		cmocka_unit_test(decode_over_limit_values),
		cmocka_unit_test(decode_message_too_long),
		cmocka_unit_test(decode_wrong_types),
		cmocka_unit_test(decode_nonminimal),
		cmocka_unit_test(decode_bad_layout),
		cmocka_unit_test(encode_rejects_over_limit),
		cmocka_unit_test(roundtrip_largest_messages),
		cmocka_unit_test(chunk_head_then_data_decodes),
		cmocka_unit_test(addr_parse_valid),
		cmocka_unit_test(addr_parse_invalid),
		cmocka_unit_test(addr_format_roundtrip),
	};

	return cmocka_run_group_tests_name("wire", tests, setup, teardown);
}
