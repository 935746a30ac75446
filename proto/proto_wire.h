/*
 * proto_wire.h - the messages that nodes exchange over ZeroMQ.
 *
 * Each ZeroMQ message carries exactly one msgpack array whose first element
 * is the message type (an unsigned integer) and whose further elements
 * depend on the type. The "Wire messages" part of proto/PROTOCOL.md
 * documents every message byte for byte. Lists of hashes (ids, chunk hashes) travel as one binary of
 * n * 32 bytes; the interest in HELLO is an array of 32-byte binaries.
 *
 * Encoders return a malloc'd buffer that the caller frees. The decoder
 * copies nothing: pointers in a decoded proto_wire_msg point into the input
 * buffer and are valid only as long as that buffer.
 */
#ifndef PROTO_WIRE_H
#define PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "proto_record.h"
#include "proto_recon.h"

/* Wire protocol version sent in HELLO. */
#define PROTO_WIRE_VERSION 1

/* Message types: the first element of every message. */
typedef enum proto_wire_type {
	PROTO_WIRE_HELLO = 1,
	PROTO_WIRE_PING = 2,
	PROTO_WIRE_RECORDS = 3,
	PROTO_WIRE_HAVE = 4,
	PROTO_WIRE_WANT = 5,
	PROTO_WIRE_MANIFEST_REQ = 6,
	PROTO_WIRE_MANIFEST = 7,
	PROTO_WIRE_CHUNK_REQ = 8,
	PROTO_WIRE_CHUNK = 9,
	PROTO_WIRE_NOT_FOUND = 10,
	/* 11 is unused: the wire tests use it as the unknown type. */
	PROTO_WIRE_RECON_START = 12,
	PROTO_WIRE_RECON = 13,
	PROTO_WIRE_PEERS_REQ = 14,
	PROTO_WIRE_PEERS = 15,
	PROTO_WIRE_GOODBYE = 16,
} proto_wire_type;

/* Node roles announced in HELLO. */
typedef enum proto_wire_role {
	PROTO_WIRE_ROLE_CREATOR = 1,
	PROTO_WIRE_ROLE_MIRROR = 2,
} proto_wire_role;

/* What a NOT_FOUND message refers to. */
typedef enum proto_wire_missing {
	PROTO_WIRE_MISSING_MANIFEST = 1,
	PROTO_WIRE_MISSING_CHUNK = 2,
} proto_wire_missing;

/* Bytes of an IPv4 and an IPv6 address in a PEERS entry. */
#define PROTO_WIRE_IPV4_LEN 4
#define PROTO_WIRE_IPV6_LEN 16

/* One address of a PEERS message: a node key and a numeric IP address
 * with a TCP port. The decoder accepts port 0, which nodes skip as
 * unusable. */
typedef struct proto_wire_peer {
	const uint8_t *key;          /* node CURVE public key, 32 bytes */
	uint8_t ip[PROTO_WIRE_IPV6_LEN]; /* ip_len bytes, network order */
	size_t ip_len;               /* PROTO_WIRE_IPV4_LEN or _IPV6_LEN */
	uint16_t port;
} proto_wire_peer;

/* Size of one interest entry as encoded: bin8 header (2 bytes) + key. */
#define PROTO_WIRE_KEY_ENTRY (2 + PROTO_KEY_LEN)

/*
 * A decoded message. Only the fields of `type` are set, the others are
 * zero. Pointers alias the decoded buffer.
 */
typedef struct proto_wire_msg {
	proto_wire_type type;

	/* HELLO */
	uint64_t version;
	proto_wire_role role;
	bool reply;                  /* true in the response to a HELLO */
	const uint8_t *node_key;     /* CURVE public key, 32 bytes */
	bool interest_all;           /* nil interest: every author */
	const uint8_t *interest;     /* n_interest encoded entries; read
				      * them with proto_wire_interest_key */
	size_t n_interest;

	/* HELLO, PING: the sender's wall clock when it sent the message,
	 * in ms since the Unix epoch (UTC); any 64-bit value decodes */
	uint64_t time_ms;
	uint16_t listen_port;        /* HELLO: TCP port where the sender
				      * accepts connections, 0 for none */

	/* RECORDS: record wire forms, not yet verified */
	const uint8_t *records[CM_WIRE_BATCH_MAX];
	size_t record_lens[CM_WIRE_BATCH_MAX];
	size_t n_records;

	/* HAVE, WANT: n_ids contiguous ids of PROTO_ID_LEN bytes */
	const uint8_t *ids;
	size_t n_ids;

	/* MANIFEST_REQ, MANIFEST, CHUNK_REQ, CHUNK, NOT_FOUND */
	const uint8_t *root;         /* media root hash, 32 bytes */
	uint64_t size;               /* MANIFEST: media size in bytes */
	const uint8_t *chunks;       /* MANIFEST: n_chunks contiguous hashes */
	size_t n_chunks;
	uint64_t index;              /* CHUNK_REQ, CHUNK, NOT_FOUND */
	const uint8_t *data;         /* CHUNK: chunk bytes */
	size_t data_len;
	proto_wire_missing missing;  /* NOT_FOUND */

	/* RECON_START, RECON: reconciliation (proto_recon.h) */
	uint64_t session;            /* chosen by the initiator */
	uint64_t round;              /* RECON: 1..CM_RECON_ROUNDS_MAX */
	const uint8_t *salt;         /* RECON_START: PROTO_RECON_SALT_LEN */
	uint64_t fp_len;             /* RECON_START: fingerprint bytes */
	uint64_t hash_len;           /* RECON_START: short hash bytes */
	bool recon_all;              /* RECON_START: nil authors, one scope
				      * of every author */
	const uint8_t *authors;      /* RECON_START: n_authors contiguous
				      * keys, one scope each */
	size_t n_authors;
	const uint8_t *payload;      /* ranges, read by proto_recon_next */
	size_t payload_len;

	/* PEERS: 0..CM_PEX_ENTRIES_MAX addresses; keys alias the buffer */
	proto_wire_peer peers[CM_PEX_ENTRIES_MAX];
	size_t n_peers;
} proto_wire_msg;

/* Returns the message type's name ("hello", "records", ...), or
 * "unknown". */
const char *proto_wire_type_name(proto_wire_type type);

/* Returns the i-th interest key of a decoded HELLO (i < n_interest). */
const uint8_t *proto_wire_interest_key(const proto_wire_msg *m, size_t i);

/*
 * Decodes one message strictly: the whole buffer must be one array of the
 * layout its type requires, with shortest-form integers and lengths, every
 * length backed by the input and within its CM_WIRE_* or record limit,
 * and no bytes after it. On failure returns the code of the first problem
 * (CM_ERR_TRUNCATED, CM_ERR_TRAILING, CM_ERR_BAD_TYPE, CM_ERR_TOO_LONG,
 * CM_ERR_TOO_MANY, CM_ERR_NONMINIMAL_INT, CM_ERR_NONMINIMAL_LEN,
 * CM_ERR_BAD_MESSAGE for an unknown type, a wrong element count or a
 * value out of range) with a detail. Records inside RECORDS are not
 * opened: pass them to proto_record_open.
 */
cm_err proto_wire_decode(const uint8_t *buf, size_t len, proto_wire_msg *m);

/*
 * Encoders. Each writes one complete message into a malloc'd buffer
 * (*out, *len) that the caller frees. They fail with CM_ERR_USAGE when an
 * argument breaks a limit that the decoder enforces, and with
 * CM_ERR_NOMEM when memory runs out.
 */

/* The fields of a HELLO. */
typedef struct proto_wire_hello_info {
	proto_wire_role role;
	bool reply;                  /* replies to a HELLO */
	const uint8_t *node_key;     /* 32 bytes */
	const uint8_t *interest;     /* n_interest keys of PROTO_KEY_LEN
				      * bytes, or NULL for every author */
	size_t n_interest;
	uint64_t time_ms;            /* sender's wall clock, ms since the
				      * Unix epoch */
	uint16_t listen_port;        /* 0: accepts no connections */
} proto_wire_hello_info;

/* HELLO. */
cm_err proto_wire_hello(const proto_wire_hello_info *h, uint8_t **out,
			size_t *len);

/* PING with the sender's wall clock in ms since the Unix epoch. */
cm_err proto_wire_ping(uint64_t time_ms, uint8_t **out, size_t *len);

/* RECORDS of n (1..CM_WIRE_BATCH_MAX) record wire forms. */
cm_err proto_wire_records(const uint8_t *const *records, const size_t *lens,
			  size_t n, uint8_t **out, size_t *len);

/* HAVE or WANT (type) of n (1..CM_WIRE_IDS_MAX) contiguous ids. */
cm_err proto_wire_ids(proto_wire_type type, const uint8_t *ids, size_t n,
		      uint8_t **out, size_t *len);

cm_err proto_wire_manifest_req(const uint8_t root[PROTO_HASH_LEN],
			       uint8_t **out, size_t *len);

/* MANIFEST of media `root`: its size and n contiguous chunk hashes. */
cm_err proto_wire_manifest(const uint8_t root[PROTO_HASH_LEN], uint64_t size,
			   const uint8_t *chunks, size_t n, uint8_t **out,
			   size_t *len);

cm_err proto_wire_chunk_req(const uint8_t root[PROTO_HASH_LEN],
			    uint64_t index, uint8_t **out, size_t *len);

/* CHUNK: bytes of chunk `index` of media `root`, at most CM_CHUNK_SIZE. */
cm_err proto_wire_chunk(const uint8_t root[PROTO_HASH_LEN], uint64_t index,
			const uint8_t *data, size_t data_len, uint8_t **out,
			size_t *len);

/* Maximum size of a CHUNK head, in bytes. */
#define PROTO_WIRE_CHUNK_HEAD_MAX 64

/* Encodes the head of a CHUNK message that carries data_len bytes: the
 * head followed by the data is the message that proto_wire_chunk builds,
 * so a caller can read the data straight into the message after the head.
 * Writes *len bytes (at most PROTO_WIRE_CHUNK_HEAD_MAX) into head.
 * CM_ERR_USAGE as proto_wire_chunk. */
cm_err proto_wire_chunk_head(const uint8_t root[PROTO_HASH_LEN],
			     uint64_t index, size_t data_len,
			     uint8_t head[PROTO_WIRE_CHUNK_HEAD_MAX],
			     size_t *len);

/* NOT_FOUND: the manifest of `root` (index 0) or chunk `index` of it. */
cm_err proto_wire_not_found(proto_wire_missing missing,
			    const uint8_t root[PROTO_HASH_LEN],
			    uint64_t index, uint8_t **out, size_t *len);

/*
 * RECON_START: the initiator's first message of session `session`, with
 * the session's salt, fingerprint and short hash sizes, the scopes
 * (authors: n_authors keys, 1..CM_WIRE_FOLLOWS_MAX, or NULL for one scope
 * of every author) and the first payload.
 */
cm_err proto_wire_recon_start(uint64_t session,
			      const uint8_t salt[PROTO_RECON_SALT_LEN],
			      size_t fp_len, size_t hash_len,
			      const uint8_t *authors, size_t n_authors,
			      const uint8_t *payload, size_t payload_len,
			      uint8_t **out, size_t *len);

/* RECON: message `round` (1..CM_RECON_ROUNDS_MAX) of a session; odd rounds
 * come from the responder, even ones from the initiator. */
cm_err proto_wire_recon(uint64_t session, uint64_t round,
			const uint8_t *payload, size_t payload_len,
			uint8_t **out, size_t *len);

/* PEERS_REQ: asks the peer for the addresses of nodes it reached. */
cm_err proto_wire_peers_req(uint8_t **out, size_t *len);

/* PEERS of n (0..CM_PEX_ENTRIES_MAX) addresses, each with a 4- or
 * 16-byte IP address. */
cm_err proto_wire_peers(const proto_wire_peer *peers, size_t n, uint8_t **out,
			size_t *len);

/* GOODBYE: announces that this node is stopping, so that the peer drops
 * the link at once instead of after CM_PEER_TIMEOUT_MS of silence. */
cm_err proto_wire_goodbye(uint8_t **out, size_t *len);

#endif
