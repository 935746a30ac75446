/*
 * proto_recon.h - range-based set reconciliation over (created time, id).
 *
 * Two nodes find the records that one of them lacks with traffic that
 * grows with their difference, not with their stores. Each record has a
 * 124-bit key: created_ms (64 bits) followed by the first 60 bits of its
 * id. The key space [0, 2^124) is cut into buckets: depth d has 16^d
 * buckets of 2^(124 - 4d) keys each, so depth 16 buckets are one
 * millisecond wide and depth 31 buckets are single keys.
 *
 * A message lists, per scope, ranges that cover the whole key space in
 * order. Each range ends at a bucket boundary and carries a mode. SKIP
 * marks it settled. FP carries the sender's record count and fingerprint
 * of the range, and SUM adds the low 32 bits of the initiator's id sum,
 * from which the responder finds a single record that the initiator
 * lacks. IDS lists salted short hashes of the initiator's records, and
 * FULL the ids of responder records that the initiator may lack. A side
 * whose fingerprint differs splits the range along bucket boundaries
 * into about as many pieces as the counts show differences or, when the
 * range is small, lists its records. The "Reconciliation" part of
 * proto/PROTOCOL.md gives the byte layout.
 *
 * The session logic here reads records through proto_recon_source, so it
 * works on any ordered set; store_fp.c provides one over an LMDB store.
 * A session is pull-only: the initiator learns the ids it lacks (the
 * `want` list) and fetches them with WANT. The responder learns nothing
 * it acts on; it runs its own session to pull.
 */
#ifndef PROTO_RECON_H
#define PROTO_RECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "proto_record.h"

/* A record's position: created_ms << 60 | the first 60 bits of its id.
 * Uses the unsigned __int128 of GCC and Clang. */
typedef unsigned __int128 proto_recon_key;

#define PROTO_RECON_KEY_BITS 124
#define PROTO_RECON_END ((proto_recon_key)1 << PROTO_RECON_KEY_BITS)
#define PROTO_RECON_DEPTH_MAX 31
#define PROTO_RECON_SALT_LEN 16
#define PROTO_RECON_SUM_LEN 32
/* Bytes of the id sum that a SUM range carries: its low 32 bits. */
#define PROTO_RECON_SUM_LOW_LEN 4

/* Output bytes of one range at most, besides its data: the mode and depth
 * byte, the step count (18 bytes below 2^126) and the list length or
 * record count (10 bytes below 2^64). */
#define PROTO_RECON_RANGE_HEAD_MAX (1 + 18 + 10)

/* Fingerprint and short-hash sizes an initiator may choose, in bytes. */
#define PROTO_RECON_FP_MIN 2
#define PROTO_RECON_FP_MAX 16
#define PROTO_RECON_HASH_MIN 2
#define PROTO_RECON_HASH_MAX 8

/* Defaults chosen by measurement with bench/bench_recon.c. */
#define PROTO_RECON_FP_DEFAULT 4
#define PROTO_RECON_HASH_DEFAULT 4

typedef enum proto_recon_mode {
	PROTO_RECON_SKIP = 0,
	PROTO_RECON_FP = 1,
	PROTO_RECON_IDS = 2,
	PROTO_RECON_FULL = 3,
	PROTO_RECON_SUM = 4,
} proto_recon_mode;

/* Count of a set of records and the sum of their ids, each read as a
 * 256-bit little-endian integer, mod 2^256. */
typedef struct proto_recon_agg {
	uint64_t count;
	uint8_t sum[PROTO_RECON_SUM_LEN];
} proto_recon_agg;

/* One record of a set. */
typedef struct proto_recon_item {
	proto_recon_key key;
	uint8_t id[PROTO_ID_LEN];
} proto_recon_item;

/* Returns the key of a record. */
proto_recon_key proto_recon_key_of(uint64_t created_ms,
				   const uint8_t id[PROTO_ID_LEN]);

/* Returns the width in keys of a bucket at depth d (0..31). */
proto_recon_key proto_recon_width(unsigned depth);

/* Adds id to (remove == false) or removes it from an aggregate. */
void proto_recon_agg_id(proto_recon_agg *a, const uint8_t id[PROTO_ID_LEN],
			bool remove);

/* Adds aggregate b to a. */
void proto_recon_agg_add(proto_recon_agg *a, const proto_recon_agg *b);

/* Writes the salted fingerprint of an aggregate (fp_len bytes). */
void proto_recon_fingerprint(const uint8_t salt[PROTO_RECON_SALT_LEN],
			     const proto_recon_agg *a, uint8_t *out,
			     size_t fp_len);

/* Writes the salted short hash of an id (hash_len bytes). */
void proto_recon_short_hash(const uint8_t salt[PROTO_RECON_SALT_LEN],
			    const uint8_t id[PROTO_ID_LEN], uint8_t *out,
			    size_t hash_len);

/* --- Payload coding ------------------------------------------------ */

/* One decoded range [previous bound, hi). data aliases the payload: the
 * fingerprint (FP, SUM), n short hashes (IDS) or n ids (FULL). */
typedef struct proto_recon_range {
	proto_recon_key hi;
	proto_recon_mode mode;
	const uint8_t *data;
	size_t n;
	uint64_t count;          /* FP, SUM: the sender's records in the range */
	uint32_t sum_low;        /* SUM: low 32 bits of the sender's id sum */
} proto_recon_range;

/*
 * Decodes a payload of n_scopes coverings of the key space. *ranges is
 * malloc'd (caller frees) and holds *n_ranges ranges, scope after scope;
 * each scope ends with a range whose hi is PROTO_RECON_END. Fails with
 * CM_ERR_BAD_MESSAGE on a bound that does not increase or is not written
 * at its coarsest depth, a mode over 4 or a count over 2^64 - 1,
 * CM_ERR_NONMINIMAL_INT on a number not in its shortest form,
 * CM_ERR_TOO_MANY over CM_RECON_RANGES_MAX ranges or a list over its
 * limit,
 * CM_ERR_TRUNCATED when a length is not backed by the input, and
 * CM_ERR_TRAILING on bytes after the last scope. Allocation grows only
 * with ranges read, and each range takes at least 2 input bytes.
 */
cm_err proto_recon_decode(const uint8_t *payload, size_t len,
			  size_t n_scopes, size_t fp_len, size_t hash_len,
			  proto_recon_range **ranges, size_t *n_ranges);

/* A payload being written: ranges are appended in key order. */
typedef struct proto_recon_writer {
	uint8_t *buf;            /* malloc'd */
	size_t len;
	size_t cap;
	bool failed;             /* out of memory */
	proto_recon_key prev;    /* bound of the last range written */
	size_t n_ranges;
	bool skip_pending;       /* a SKIP range ending at skip_hi waits to
				  * be merged with following SKIP ranges */
	proto_recon_key skip_hi;
	bool active;             /* a range other than SKIP was written */
} proto_recon_writer;

/* Appends a SKIP, IDS or FULL range [previous bound, hi); data as in
 * proto_recon_range, `n` items of item_len bytes. Consecutive SKIP ranges
 * are merged. Returns CM_ERR_USAGE when hi does not increase or for the
 * modes FP and SUM, which proto_recon_write_fp writes. */
cm_err proto_recon_write(proto_recon_writer *w, proto_recon_key hi,
			 proto_recon_mode mode, const uint8_t *data, size_t n,
			 size_t item_len);

/* Appends an FP range [previous bound, hi) of `count` records with the
 * fingerprint fp (fp_len bytes) or, when sum_low is not NULL, a SUM
 * range that also carries those PROTO_RECON_SUM_LOW_LEN bytes. Returns CM_ERR_USAGE when hi does not
 * increase. */
cm_err proto_recon_write_fp(proto_recon_writer *w, proto_recon_key hi,
			    uint64_t count, const uint8_t *fp, size_t fp_len,
			    const uint8_t *sum_low);

/* Writes the pending SKIP range; call at the end of each scope. */
void proto_recon_write_flush(proto_recon_writer *w);

/* --- Sessions ------------------------------------------------------- */

/* Read access to one side's set, per scope (0..n_scopes-1). */
typedef struct proto_recon_source {
	/* Sets *out to the aggregate of the records with keys in [lo, hi). */
	cm_err (*agg)(void *ctx, size_t scope, proto_recon_key lo,
		      proto_recon_key hi, proto_recon_agg *out);
	/* Copies the records with keys in [lo, hi), in key order, into
	 * out[max]. CM_ERR_TOO_MANY when there are more than max. */
	cm_err (*items)(void *ctx, size_t scope, proto_recon_key lo,
			proto_recon_key hi, proto_recon_item *out, size_t max,
			size_t *n);
	void *ctx;
	/* Aggregate reads and items scanned so far; the source adds to it
	 * and the session stops answering ranges over CM_RECON_WORK_MAX. */
	uint64_t work;
} proto_recon_source;

/* Tuning of a session's own decisions; the peer need not agree. */
typedef struct proto_recon_params {
	size_t fp_len;       /* fingerprint bytes (initiator's choice) */
	size_t hash_len;     /* short hash bytes (initiator's choice) */
	size_t leaf;         /* initiator: list records when it has at most
			      * this many in a differing range */
	size_t full_small;   /* responder: send ids instead of splitting at
			      * most this many records */
	size_t pieces_per_diff; /* pieces a split aims for per difference
				 * that the counts show */
	bool split_sums;     /* initiator: send the pieces of a split as SUM
			      * when they expect at most one difference */
	size_t msg_max;      /* payload size budget, bytes */
} proto_recon_params;

/* Returns the default parameters. */
proto_recon_params proto_recon_defaults(void);

typedef struct proto_recon_session {
	bool initiator;
	uint8_t salt[PROTO_RECON_SALT_LEN];
	size_t n_scopes;
	proto_recon_params params;
	proto_recon_source *src;
	unsigned round;          /* messages handled or sent so far */
	/* Initiator: ids from FULL ranges, n_want * PROTO_ID_LEN bytes,
	 * malloc'd. The caller drains them (see proto_recon_session_free). */
	uint8_t *want;
	size_t n_want;
	size_t cap_want;
	size_t deferred;         /* scopes partly left for a later round */
} proto_recon_session;

/*
 * Starts a session as initiator: writes the first payload (*out, *len,
 * malloc'd, caller frees). The salt must be random and new per session.
 */
cm_err proto_recon_first(proto_recon_session *s, uint8_t **out, size_t *len);

/*
 * Handles one payload from the peer and writes the answer (*out, *len,
 * malloc'd, caller frees). *done is set when the answer settles every
 * range: an initiator then sends nothing and the session is over, while a
 * responder still sends it so that the initiator learns the end. Fails on
 * a malformed payload (see proto_recon_decode), on a mode that the peer's
 * role may not send, and with CM_ERR_TOO_MANY past CM_RECON_ROUNDS_MAX.
 */
cm_err proto_recon_next(proto_recon_session *s, const uint8_t *in,
			size_t in_len, uint8_t **out, size_t *len, bool *done);

/* Frees the want list. */
void proto_recon_session_free(proto_recon_session *s);

#endif
