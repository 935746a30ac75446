/*
 * cm_keyfile.h - identity secret keys sealed with a passphrase.
 *
 * A sealed key file (keys/NAME.key) holds, in this order (integers
 * big-endian, 149 bytes in all):
 *
 *   magic     16  "clipmesh-seckey\n"
 *   version    1  1
 *   opslimit   4  Argon2id passes (crypto_pwhash, ALG_ARGON2ID13)
 *   memlimit   8  Argon2id memory in bytes
 *   salt      16  random, crypto_pwhash_SALTBYTES
 *   nonce     24  random, crypto_secretbox_NONCEBYTES
 *   box       80  crypto_secretbox_easy of the 64-byte Ed25519 secret key
 *                 (16-byte tag first) under the 32-byte key that
 *                 crypto_pwhash derives from the passphrase and salt
 *
 * A plain key file contains the secret key as hex, so it never starts
 * with the magic. docs/ARCHITECTURE.md repeats this layout.
 */
#ifndef CM_KEYFILE_H
#define CM_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"

#define CM_KEYFILE_MAGIC "clipmesh-seckey\n"
#define CM_KEYFILE_MAGIC_LEN 16
#define CM_KEYFILE_VERSION 1
#define CM_KEYFILE_SECRET_LEN 64
#define CM_KEYFILE_LEN (CM_KEYFILE_MAGIC_LEN + 1 + 4 + 8 + 16 + 24 + 16 + \
			CM_KEYFILE_SECRET_LEN)

/* True when data starts with the sealed-key magic. */
bool cm_keyfile_is_sealed(const uint8_t *data, size_t len);

/*
 * Seals `secret` under passphrase `pass` (pass_len bytes, 1 to
 * CM_PASSPHRASE_MAX) with the given Argon2id cost, which must lie within
 * the CM_KEY_PWHASH_* bounds, into out[CM_KEYFILE_LEN]. Fails with
 * CM_ERR_USAGE on an empty or too long passphrase and CM_ERR_NOMEM when
 * Argon2id cannot get its memory.
 */
cm_err cm_keyfile_seal(const uint8_t secret[CM_KEYFILE_SECRET_LEN],
		       const char *pass, size_t pass_len,
		       unsigned long long opslimit, size_t memlimit,
		       uint8_t out[CM_KEYFILE_LEN]);

/*
 * Opens a sealed key file of `len` bytes into secret[64], which the caller
 * provides (in guarded memory). Checks the length, magic, version and the
 * cost bounds before it derives anything, so a file cannot make it
 * allocate more than CM_KEY_PWHASH_MEMLIMIT_MAX. Fails with
 * CM_ERR_PASSPHRASE when the box does not open (a wrong passphrase or a
 * changed byte), CM_ERR_BAD_VERSION on another version, CM_ERR_BAD_FIELD
 * on another length or a cost out of bounds. secret is wiped on failure.
 */
cm_err cm_keyfile_open(const uint8_t *data, size_t len, const char *pass,
		       size_t pass_len,
		       uint8_t secret[CM_KEYFILE_SECRET_LEN]);

#endif
