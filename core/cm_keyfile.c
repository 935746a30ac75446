/* cm_keyfile.c - sealing identity secret keys with a passphrase. */
#include "cm_keyfile.h"

#include <string.h>

#include <sodium.h>

#include "cm_limits.h"

#define DERIVED_LEN crypto_secretbox_KEYBYTES

/* Offsets of the fields, in the order cm_keyfile.h lists them. */
#define AT_VERSION CM_KEYFILE_MAGIC_LEN
#define AT_OPSLIMIT (AT_VERSION + 1)
#define AT_MEMLIMIT (AT_OPSLIMIT + 4)
#define AT_SALT (AT_MEMLIMIT + 8)
#define AT_NONCE (AT_SALT + crypto_pwhash_SALTBYTES)
#define AT_BOX (AT_NONCE + crypto_secretbox_NONCEBYTES)

_Static_assert(AT_BOX + crypto_secretbox_MACBYTES + CM_KEYFILE_SECRET_LEN ==
		       CM_KEYFILE_LEN,
	       "sealed key layout does not add up");
_Static_assert(CM_KEY_PWHASH_OPSLIMIT ==
			       crypto_pwhash_argon2id_OPSLIMIT_MODERATE &&
		       CM_KEY_PWHASH_MEMLIMIT ==
			       crypto_pwhash_argon2id_MEMLIMIT_MODERATE,
	       "the key cost is documented as libsodium's MODERATE");

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool cost_in_bounds(uint64_t opslimit, uint64_t memlimit)
{
	return opslimit >= CM_KEY_PWHASH_OPSLIMIT_MIN &&
	       opslimit <= CM_KEY_PWHASH_OPSLIMIT_MAX &&
	       memlimit >= CM_KEY_PWHASH_MEMLIMIT_MIN &&
	       memlimit <= CM_KEY_PWHASH_MEMLIMIT_MAX;
}

/* Derives the box key from the passphrase into derived (guarded memory). */
static cm_err derive(uint8_t *derived, const char *pass, size_t pass_len,
		     const uint8_t *salt, uint64_t opslimit, uint64_t memlimit)
{
	if (crypto_pwhash(derived, DERIVED_LEN, pass, pass_len, salt,
			  opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return cm_errf(CM_ERR_NOMEM, "Argon2id could not get %llu MiB "
			       "of memory to derive the key",
			       (unsigned long long)(memlimit >> 20));
	return CM_OK;
}

bool cm_keyfile_is_sealed(const uint8_t *data, size_t len)
{
	return len >= CM_KEYFILE_MAGIC_LEN &&
	       memcmp(data, CM_KEYFILE_MAGIC, CM_KEYFILE_MAGIC_LEN) == 0;
}

cm_err cm_keyfile_seal(const uint8_t secret[CM_KEYFILE_SECRET_LEN],
		       const char *pass, size_t pass_len,
		       unsigned long long opslimit, size_t memlimit,
		       uint8_t out[CM_KEYFILE_LEN])
{
	uint8_t *derived;
	cm_err err;

	if (pass_len == 0 || pass_len > CM_PASSPHRASE_MAX)
		return cm_errf(CM_ERR_USAGE, "the passphrase is %zu bytes; "
			       "give 1 to %d", pass_len, CM_PASSPHRASE_MAX);
	if (!cost_in_bounds(opslimit, memlimit))
		return cm_errf(CM_ERR_USAGE, "Argon2id cost %llu passes over "
			       "%zu bytes is out of bounds", opslimit,
			       memlimit);
	derived = sodium_malloc(DERIVED_LEN);
	if (!derived)
		return CM_ERR_NOMEM;

	memcpy(out, CM_KEYFILE_MAGIC, CM_KEYFILE_MAGIC_LEN);
	out[AT_VERSION] = CM_KEYFILE_VERSION;
	put_be(out + AT_OPSLIMIT, opslimit, 4);
	put_be(out + AT_MEMLIMIT, memlimit, 8);
	randombytes_buf(out + AT_SALT, crypto_pwhash_SALTBYTES);
	randombytes_buf(out + AT_NONCE, crypto_secretbox_NONCEBYTES);

	err = derive(derived, pass, pass_len, out + AT_SALT, opslimit,
		     memlimit);
	if (!err)
		crypto_secretbox_easy(out + AT_BOX, secret,
				      CM_KEYFILE_SECRET_LEN, out + AT_NONCE,
				      derived);
	sodium_free(derived);
	return err;
}

cm_err cm_keyfile_open(const uint8_t *data, size_t len, const char *pass,
		       size_t pass_len,
		       uint8_t secret[CM_KEYFILE_SECRET_LEN])
{
	uint64_t opslimit, memlimit;
	uint8_t *derived;
	cm_err err;

	if (!cm_keyfile_is_sealed(data, len))
		return cm_errf(CM_ERR_BAD_FIELD, "not a sealed key file");
	if (len < AT_OPSLIMIT || data[AT_VERSION] != CM_KEYFILE_VERSION)
		return cm_errf(CM_ERR_BAD_VERSION, "sealed key file of "
			       "version %d; this build reads version %d",
			       len < AT_OPSLIMIT ? -1 : data[AT_VERSION],
			       CM_KEYFILE_VERSION);
	if (len != CM_KEYFILE_LEN)
		return cm_errf(CM_ERR_BAD_FIELD, "sealed key file is %zu "
			       "bytes, expected %d", len, CM_KEYFILE_LEN);
	opslimit = get_be(data + AT_OPSLIMIT, 4);
	memlimit = get_be(data + AT_MEMLIMIT, 8);
	if (!cost_in_bounds(opslimit, memlimit))
		return cm_errf(CM_ERR_BAD_FIELD, "sealed key file asks for "
			       "%llu Argon2id passes over %llu bytes, outside "
			       "the accepted bounds",
			       (unsigned long long)opslimit,
			       (unsigned long long)memlimit);

	derived = sodium_malloc(DERIVED_LEN);
	if (!derived)
		return CM_ERR_NOMEM;
	err = derive(derived, pass, pass_len, data + AT_SALT, opslimit,
		     memlimit);
	if (!err && crypto_secretbox_open_easy(
			    secret, data + AT_BOX,
			    crypto_secretbox_MACBYTES + CM_KEYFILE_SECRET_LEN,
			    data + AT_NONCE, derived) != 0)
		err = cm_errf(CM_ERR_PASSPHRASE, "the passphrase does not "
			      "open the key (or the file was changed)");
	if (err)
		sodium_memzero(secret, CM_KEYFILE_SECRET_LEN);
	sodium_free(derived);
	return err;
}
