/*
 * proto_record.h - clip, retraction and profile records: canonical msgpack
 * encoding, strict decoding, ids and Ed25519 signatures.
 *
 * Wire form of a signed record (the exact bytes that are stored, gossiped
 * and exported): a msgpack array of two binaries, [body, signature].
 * The body is the canonical msgpack map described in proto/PROTOCOL.md.
 * id = BLAKE2b-256(body). The signature is Ed25519 over
 * "clipmesh/1/<type>\0" followed by the 32-byte id, so that a clip
 * signature never verifies as a retraction or profile signature.
 *
 * Call sodium_init() once before any function here, as libsodium requires.
 * The functions keep no state and may run on several threads at once.
 */
#ifndef PROTO_RECORD_H
#define PROTO_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "cm_limits.h"

#define PROTO_ID_LEN 32
#define PROTO_KEY_LEN 32     /* Ed25519 public key */
#define PROTO_SECRET_LEN 64  /* Ed25519 secret key (libsodium layout) */
#define PROTO_SIG_LEN 64
#define PROTO_HASH_LEN 32

typedef enum proto_kind {
	PROTO_KIND_CLIP = 1,
	PROTO_KIND_RETRACT = 2,
	PROTO_KIND_PROFILE = 3,
} proto_kind;

/* One media reference inside a clip: the media root hash, its total size
 * in bytes and its media type (e.g. "video/mp4"). */
typedef struct proto_media_ref {
	uint8_t hash[PROTO_HASH_LEN];
	uint64_t size;
	char type[CM_MEDIA_TYPE_MAX + 1];
} proto_media_ref;

/*
 * A decoded record. Strings are NUL-terminated UTF-8; an absent optional
 * string is "". rating 0 means no rating. Fields that do not belong to
 * `kind` are zero.
 */
typedef struct proto_record {
	proto_kind kind;
	uint8_t author[PROTO_KEY_LEN];
	uint64_t created_ms;

	/* clip */
	char product[CM_PRODUCT_MAX + 1];
	char title[CM_TITLE_MAX + 1];
	char text[CM_TEXT_MAX + 1];
	unsigned rating;
	char lang[CM_LANG_MAX + 1];
	char tags[CM_TAGS_MAX][CM_TAG_MAX + 1];
	size_t n_tags;
	proto_media_ref media[CM_MEDIA_MAX];
	size_t n_media;

	/* retraction */
	uint8_t target[PROTO_ID_LEN];

	/* profile */
	char name[CM_NAME_MAX + 1];
	char bio[CM_BIO_MAX + 1];
} proto_record;

/* A verified signed record. `wire` points into the buffer that was passed to
 * proto_record_open() and is valid only as long as that buffer. */
typedef struct proto_signed {
	proto_record rec;
	uint8_t id[PROTO_ID_LEN];
	uint8_t sig[PROTO_SIG_LEN];
	const uint8_t *wire;
	size_t wire_len;
} proto_signed;

/* Returns "clip", "retract" or "profile"; "unknown" otherwise. */
const char *proto_kind_name(proto_kind kind);

/*
 * Checks every field of r against the schema and limits (lengths, UTF-8,
 * control characters, rating range, product reference, media types, sorted
 * unique tags). Does not check the time or a signature.
 */
cm_err proto_record_validate(const proto_record *r);

/*
 * Checks one tag as proto_record_validate() does: 1 to CM_TAG_MAX bytes
 * of valid UTF-8 without control characters or whitespace. The error
 * detail names the first offending character.
 */
cm_err proto_tag_check(const char *tag);

/*
 * Returns true when key is a usable Ed25519 public key: a canonical
 * encoding of a point in the main subgroup, so not the all-zero key or
 * another point of small order (libsodium's
 * crypto_core_ed25519_is_valid_point).
 */
bool proto_key_valid(const uint8_t key[PROTO_KEY_LEN]);

/*
 * Sorts r->tags bytewise and drops duplicates, the order that
 * proto_record_validate() requires. Tags past CM_TAGS_MAX are dropped.
 * Each of the first n_tags tags must be NUL-terminated in its buffer.
 */
void proto_record_sort_tags(proto_record *r);

/*
 * Encodes the canonical body of r into out[cap]; *len receives its size.
 * Validates r first. Fails with CM_ERR_TOO_LONG when the body would exceed
 * CM_BODY_MAX.
 */
cm_err proto_body_encode(const proto_record *r, uint8_t *out, size_t cap,
			 size_t *len);

/*
 * Strictly decodes a body into *r: any encoding other than the canonical
 * one, an unknown key or a schema violation fails with the code naming the
 * first problem found (CM_ERR_NONMINIMAL_INT, CM_ERR_UNSORTED_KEYS, ...).
 * No allocation depends on a length claimed by the input.
 */
cm_err proto_body_decode(const uint8_t *body, size_t len, proto_record *r);

/*
 * Decodes a body that proto_body_decode accepted before it was stored,
 * read back from our own store. It checks the msgpack types, the key
 * order and the text encoding as proto_body_decode does. It skips the
 * schema's rules on values and the canonical encoding check, which
 * halves the time per clip (1.0 against 2.0 us, bench/RESULTS.md). Feed
 * pages, media scans and records sent to peers use it. Never use it on
 * input from outside the store: `store check` opens every stored record
 * with proto_record_open instead.
 */
cm_err proto_body_read_stored(const uint8_t *body, size_t len,
			      proto_record *r);

/* id = BLAKE2b-256(body). */
void proto_record_id(const uint8_t *body, size_t len,
		     uint8_t id[PROTO_ID_LEN]);

/*
 * Signs r with secret (whose public half must equal r->author) and writes
 * the wire form into out[cap] (CM_RECORD_MAX is always enough); *len and
 * id receive the wire size and the record id.
 */
cm_err proto_record_sign(const proto_record *r,
			 const uint8_t secret[PROTO_SECRET_LEN], uint8_t *out,
			 size_t cap, size_t *len, uint8_t id[PROTO_ID_LEN]);

/*
 * Decodes and verifies the wire form of a record: envelope, canonical
 * body, schema, signature, and a creation time no later than
 * now_ms + CM_FUTURE_SKEW_MS. On success fills *out; out->wire aliases
 * `wire`. Retraction state is the store's business, not checked here.
 */
cm_err proto_record_open(const uint8_t *wire, size_t len, uint64_t now_ms,
			 proto_signed *out);

/*
 * Decodes the wire form of a record that proto_record_open verified
 * before it was stored, reading it back from our own store: checks the
 * envelope and reads the body with proto_body_read_stored. It checks
 * neither the signature nor the time again. `id` is the record's id
 * (the store keys records by it), or NULL to compute it from the body.
 * Never use it on input from outside the store.
 */
cm_err proto_record_decode_stored(const uint8_t *wire, size_t len,
				  const uint8_t id[PROTO_ID_LEN],
				  proto_signed *out);

#endif
