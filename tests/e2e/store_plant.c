/*
 * store_plant.c - writes one raw value into a stopped node's LMDB store,
 * as a damaged disk could leave it, for the end-to-end tests.
 *
 * Usage: store_plant STORE_DIR DATABASE KEYHEX VALUEHEX
 *
 * Exits 0 once the value is committed, 1 when LMDB fails, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "cm_util.h"

/* Decodes hex into a malloc'd buffer, or returns NULL on bad hex. */
static unsigned char *decode(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	unsigned char *out;

	if (n % 2 != 0)
		return NULL;
	*len = n / 2;
	out = malloc(*len ? *len : 1);
	if (out && !cm_hex_decode(hex, out, *len)) {
		free(out);
		return NULL;
	}
	return out;
}

int main(int argc, char **argv)
{
	unsigned char *key = NULL, *value = NULL;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	MDB_dbi dbi;
	size_t key_len = 0, value_len = 0;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: store_plant STORE_DIR DATABASE KEYHEX "
			"VALUEHEX\n");
		return 2;
	}
	key = decode(argv[3], &key_len);
	value = decode(argv[4], &value_len);
	if (!key || !value) {
		fprintf(stderr, "store_plant: invalid hex\n");
		return 2;
	}
	k = (MDB_val){key_len, key};
	v = (MDB_val){value_len, value};
	rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_maxdbs(env, 32);
	if (!rc)
		rc = mdb_env_open(env, argv[1], 0, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, argv[2], 0, &dbi);
	if (!rc)
		rc = mdb_put(txn, dbi, &k, &v, 0);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	free(key);
	free(value);
	if (rc) {
		fprintf(stderr, "store_plant: %s\n", mdb_strerror(rc));
		return 1;
	}
	return 0;
}
