/*
 * cm_error.h - the one error type of clipmesh.
 *
 * Every fallible function in core/, proto/, store/ and node/ returns a
 * cm_err. CM_OK is zero, so `if (err)` tests for failure. Each code has a
 * stable short name (used as the "reason" when rejected input is counted
 * and logged) and a one-line English description.
 *
 * A function that fails may also record a detail line (which value, which
 * limit) with cm_errf(); callers read it with cm_err_detail(). The detail is
 * per thread and stays until the next cm_errf() on that thread.
 */
#ifndef CM_ERROR_H
#define CM_ERROR_H

#define CM_ERR_LIST(X)                                                       \
	X(CM_OK, "ok", "success")                                            \
	X(CM_ERR_NOMEM, "nomem", "out of memory")                            \
	X(CM_ERR_IO, "io", "input/output error")                             \
	X(CM_ERR_USAGE, "usage", "invalid argument")                         \
	X(CM_ERR_NOT_FOUND, "not_found", "not found")                        \
	X(CM_ERR_EXISTS, "exists", "already exists")                         \
	X(CM_ERR_AMBIGUOUS, "ambiguous", "ambiguous id prefix")              \
	X(CM_ERR_STORE, "store", "store (LMDB) failure")                     \
	X(CM_ERR_STORE_FULL, "store_full", "store map is full")              \
	X(CM_ERR_STORE_VERSION, "store_version",                             \
	  "store written by a newer clipmesh")                               \
	X(CM_ERR_ZMQ, "zmq", "ZeroMQ failure")                               \
	X(CM_ERR_CRYPTO, "crypto", "cryptographic library failure")          \
	X(CM_ERR_KEY_MODE, "key_mode", "key file readable by others")        \
	X(CM_ERR_NOT_INIT, "not_initialised", "home is not initialised")     \
	/* Decoding: malformed or non-canonical msgpack. */                  \
	X(CM_ERR_TRUNCATED, "truncated", "input ends inside a value")        \
	X(CM_ERR_TRAILING, "trailing_bytes", "bytes after the end")          \
	X(CM_ERR_BAD_TYPE, "bad_type", "value has the wrong msgpack type")   \
	X(CM_ERR_NONMINIMAL_INT, "nonminimal_int",                           \
	  "integer not in its shortest encoding")                            \
	X(CM_ERR_NONMINIMAL_LEN, "nonminimal_len",                           \
	  "length not in its shortest encoding")                             \
	X(CM_ERR_NEGATIVE_INT, "negative_int", "negative integer")           \
	X(CM_ERR_FLOAT, "float", "floating-point value")                     \
	X(CM_ERR_EXT, "ext", "msgpack extension type")                       \
	X(CM_ERR_UNSORTED_KEYS, "unsorted_keys", "map keys not sorted")      \
	X(CM_ERR_DUPLICATE_KEY, "duplicate_key", "duplicate map key")        \
	X(CM_ERR_UNKNOWN_KEY, "unknown_key", "unknown map key")              \
	X(CM_ERR_MISSING_FIELD, "missing_field", "required field missing")   \
	X(CM_ERR_EMPTY_OPTIONAL, "empty_optional",                           \
	  "optional field present but empty")                                \
	X(CM_ERR_TOO_DEEP, "too_deep", "nesting deeper than the schema")     \
	X(CM_ERR_TOO_LONG, "too_long", "value over its size limit")          \
	X(CM_ERR_TOO_MANY, "too_many", "list over its length limit")         \
	X(CM_ERR_BAD_UTF8, "bad_utf8", "invalid UTF-8")                      \
	X(CM_ERR_CONTROL_CHAR, "control_char", "control character in text")  \
	X(CM_ERR_NONCANONICAL, "noncanonical",                               \
	  "encoding differs from the canonical one")                         \
	/* Record semantics. */                                              \
	X(CM_ERR_BAD_VERSION, "bad_version", "unsupported record version")   \
	X(CM_ERR_BAD_KIND, "bad_kind", "unknown record type")                \
	X(CM_ERR_BAD_FIELD, "bad_field", "field value out of range")         \
	X(CM_ERR_BAD_PRODUCT, "bad_product", "invalid product reference")    \
	X(CM_ERR_BAD_GTIN, "bad_gtin", "GTIN check digit does not match")    \
	X(CM_ERR_BAD_MEDIA_TYPE, "bad_media_type", "unsupported media type") \
	X(CM_ERR_BAD_SIGNATURE, "bad_signature", "signature does not verify") \
	X(CM_ERR_BAD_KEY, "bad_key", "invalid public key")                   \
	X(CM_ERR_FUTURE, "future", "record dated too far in the future")     \
	X(CM_ERR_RETRACTED, "retracted", "record was retracted")             \
	X(CM_ERR_DUPLICATE, "duplicate", "record already stored")            \
	X(CM_ERR_SUPERSEDED, "superseded", "a newer profile is stored")      \
	X(CM_ERR_NOT_AUTHOR, "not_author",                                   \
	  "retraction author differs from clip author")                      \
	/* Media. */                                                         \
	X(CM_ERR_BAD_CHUNK, "bad_chunk", "chunk hash does not match")        \
	X(CM_ERR_BAD_MANIFEST, "bad_manifest",                               \
	  "chunk list does not match the media hash")                        \
	X(CM_ERR_MEDIA_MISSING, "media_missing", "media not in the store")   \
	/* Wire. */                                                          \
	X(CM_ERR_BAD_MESSAGE, "bad_message", "malformed wire message")       \
	X(CM_ERR_TIMEOUT, "timeout", "timed out")                            \
	/* Keys. */                                                          \
	X(CM_ERR_PASSPHRASE, "passphrase",                                   \
	  "wrong passphrase or damaged key file")                            \
	/* Peers. */                                                         \
	X(CM_ERR_PEER_BANNED, "peer_banned",                                 \
	  "sender was banned before its input was stored")

typedef enum cm_err {
#define CM_ERR_ENUM(code, name, text) code,
	CM_ERR_LIST(CM_ERR_ENUM)
#undef CM_ERR_ENUM
	CM_ERR_COUNT
} cm_err;

/* Returns the stable short name of err, e.g. "unsorted_keys". Never NULL. */
const char *cm_err_name(cm_err err);

/* Returns the one-line description of err. Never NULL. */
const char *cm_err_text(cm_err err);

/* Size of the detail buffer, with its terminating NUL. */
#define CM_ERR_DETAIL_MAX 512

/*
 * Records a printf-style detail for err on this thread and returns err, so
 * that `return cm_errf(CM_ERR_TOO_LONG, "title is %zu bytes", n);` both
 * explains and fails. The detail is truncated to CM_ERR_DETAIL_MAX - 1
 * bytes.
 */
cm_err cm_errf(cm_err err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Returns this thread's last detail, or "" when none was recorded. */
const char *cm_err_detail(void);

/* Clears this thread's detail. */
void cm_err_clear(void);

#endif
