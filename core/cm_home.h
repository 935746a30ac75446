/*
 * cm_home.h - the home folder: where it is, what it contains, and the key
 * files in it.
 *
 * Layout of a home:
 *   config              settings (cm_config.h, clipmesh.conf(5))
 *   store/              the LMDB environment
 *   node.key            CURVE transport secret key, hex, mode 0600
 *   node.pub            CURVE transport public key, hex
 *   keys/NAME.key       Ed25519 identity secret key, mode 0600: hex, or
 *                       sealed with a passphrase (cm_keyfile.h)
 *   keys/NAME.pub       Ed25519 identity public key, hex
 *   control.sock        IPC socket of the running node
 *
 * Secret keys are returned in sodium_malloc'd memory; free them with
 * cm_secret_free(), which wipes them. The node's transport key is never
 * sealed, so that a node starts unattended.
 */
#ifndef CM_HOME_H
#define CM_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"

#define CM_HOME_PATH_MAX 4096
#define CM_KEY_NAME_MAX 32
#define CM_DEFAULT_LISTEN "tcp://127.0.0.1:7701"

/*
 * Resolves the home folder: `flag` when not NULL, else $CLIPMESH_HOME,
 * else $XDG_DATA_HOME/clipmesh, else $HOME/.local/share/clipmesh.
 * Writes the path into out[CM_HOME_PATH_MAX].
 */
cm_err cm_home_resolve(const char *flag, char *out);

/* Joins home and a relative name into out[CM_HOME_PATH_MAX]. */
cm_err cm_home_path(const char *home, const char *name, char *out);

/* True when `home` holds a store and node key (made by cm_home_init). */
bool cm_home_is_init(const char *home);

/*
 * Creates the home (mode 0700), its store folder, a CURVE transport key
 * pair and a default config. Existing files are kept; *created tells
 * whether anything was new. A missing node.pub is written from node.key
 * and sets *pub_restored. Returns CM_ERR_EXISTS when home is a folder
 * that is not empty and not a home. Returns CM_ERR_NOT_FOUND when
 * node.pub exists without node.key, because a new key pair would change
 * the node's identity.
 */
cm_err cm_home_init(const char *home, bool *created, bool *pub_restored);

/* Reads the transport key pair (32-byte binary keys). *secret is
 * sodium_malloc'd. CM_ERR_NOT_INIT when the home has none;
 * CM_ERR_KEY_MODE when the secret file is readable by group or others. */
cm_err cm_home_transport_key(const char *home, uint8_t public_key[32],
			     uint8_t **secret);

/* Reads only the transport public key (node.pub), so that a caller that
 * compares keys needs no access to the secret key. CM_ERR_NOT_FOUND when
 * the file is missing. */
cm_err cm_home_transport_public(const char *home, uint8_t public_key[32]);

/* Checks an identity name: 1..CM_KEY_NAME_MAX chars of [A-Za-z0-9_.-],
 * not starting with '.'. */
bool cm_key_name_valid(const char *name);

/* Creates identity NAME; fails with CM_ERR_EXISTS when it exists. */
cm_err cm_key_new(const char *home, const char *name, uint8_t public_key[32]);

/* Creates identity NAME with its secret key sealed under passphrase
 * `pass` (pass_len bytes; NULL: a plain key, as cm_key_new). */
cm_err cm_key_new_sealed(const char *home, const char *name, const char *pass,
			 size_t pass_len, uint8_t public_key[32]);

/* Loads identity NAME: *secret (64 bytes, sodium_malloc'd) and its
 * public key. CM_ERR_NOT_FOUND when there is no such identity,
 * CM_ERR_PASSPHRASE when its key is sealed, CM_ERR_KEY_MODE when the
 * secret key file is readable by group or others. */
cm_err cm_key_load(const char *home, const char *name, uint8_t public_key[32],
		   uint8_t **secret);

/* As cm_key_load, and opens a sealed key with passphrase `pass`
 * (pass_len bytes; ignored for a plain key). CM_ERR_PASSPHRASE when the
 * passphrase is wrong or the sealed file was changed. */
cm_err cm_key_load_sealed(const char *home, const char *name,
			  const char *pass, size_t pass_len,
			  uint8_t public_key[32], uint8_t **secret);

/* Sets *sealed to whether identity NAME's secret key file is sealed,
 * without reading more than its magic. CM_ERR_NOT_FOUND when there is no
 * such identity. */
cm_err cm_key_is_sealed(const char *home, const char *name, bool *sealed);

/* Replaces identity NAME's secret key file with `secret` (64 bytes)
 * sealed under `pass`, or plain when pass is NULL, through a new file
 * and a rename, so that the old file stays whole until the new one is on
 * disk. */
cm_err cm_key_reseal(const char *home, const char *name,
		     const uint8_t *secret, const char *pass,
		     size_t pass_len);

/* Calls fn for each identity, sorted by name. */
cm_err cm_key_list(const char *home,
		   int (*fn)(void *ctx, const char *name,
			     const uint8_t public_key[32]),
		   void *ctx);

/* Wipes and frees a secret from cm_home_transport_key or cm_key_load;
 * sets *secret to NULL. Accepts NULL. */
void cm_secret_free(uint8_t **secret);

/* Writes the ZeroMQ endpoint of the node's control socket into
 * out[CM_HOME_PATH_MAX] ("ipc://HOME/control.sock"). Fails when the path
 * exceeds the IPC path limit (107 bytes). */
cm_err cm_home_control_endpoint(const char *home, char *out);

#endif
