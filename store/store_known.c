/*
 * store_known.c - peers this node reached, kept across restarts in the
 * "known_peers" database.
 *
 * Key: the node's 32-byte CURVE public key. Value (integers big-endian):
 *
 *   1 byte   value version, 1
 *   1 byte   origin: 1 configured (--peer, a config line, `peer add`),
 *            2 learned through peer exchange
 *   4 bytes  failed dials in a row
 *   8 bytes  last time this node completed a HELLO with the peer, wall
 *            clock ms since the Unix epoch; 0 for never
 *   rest     the address as HOST:PORT, 1 to STORE_KNOWN_ADDR_MAX bytes
 *
 * Adding this database needed no store format change: a release that
 * does not know it never opens it, and opening a store creates it empty.
 * An entry of another version or length is skipped when listed, so a
 * later value layout needs a new version byte, not a new format.
 */
#include "store_internal.h"

#include <string.h>

#define VALUE_VERSION 1
#define VALUE_HEAD 14 /* version, origin, failures, last seen */

static bool origin_valid(store_known_origin origin)
{
	return origin == STORE_KNOWN_CONFIGURED ||
	       origin == STORE_KNOWN_LEARNED;
}

cm_err store_known_put(store *s, const store_known_peer *p)
{
	uint8_t value[VALUE_HEAD + STORE_KNOWN_ADDR_MAX];
	size_t addr_len = strnlen(p->addr, STORE_KNOWN_ADDR_MAX + 1);
	MDB_txn *txn = NULL;
	cm_err err;

	if (addr_len == 0 || addr_len > STORE_KNOWN_ADDR_MAX)
		return cm_errf(CM_ERR_USAGE, "known peer address of %zu bytes, "
			       "expected 1 to %d", addr_len,
			       STORE_KNOWN_ADDR_MAX);
	if (!origin_valid(p->origin))
		return cm_errf(CM_ERR_USAGE, "known peer origin %d",
			       (int)p->origin);

	value[0] = VALUE_VERSION;
	value[1] = (uint8_t)p->origin;
	for (int i = 0; i < 4; i++)
		value[2 + i] = (uint8_t)(p->failures >> (24 - 8 * i));
	store_be64_put(value + 6, p->last_seen_ms);
	memcpy(value + VALUE_HEAD, p->addr, addr_len);

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_db_put(s, txn, STORE_DB_KNOWN_PEERS, p->key,
			   PROTO_KEY_LEN, value, VALUE_HEAD + addr_len, 0);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

cm_err store_known_del(store *s, const uint8_t key[PROTO_KEY_LEN])
{
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_db_del(s, txn, STORE_DB_KNOWN_PEERS, key, PROTO_KEY_LEN);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

/* Decodes one entry. Returns false when its key or value does not have
 * the layout above. */
static bool decode_entry(const MDB_val *k, const MDB_val *v,
			 store_known_peer *p)
{
	const uint8_t *b = v->mv_data;
	size_t addr_len;

	if (k->mv_size != PROTO_KEY_LEN || v->mv_size <= VALUE_HEAD ||
	    v->mv_size > VALUE_HEAD + STORE_KNOWN_ADDR_MAX ||
	    b[0] != VALUE_VERSION || !origin_valid(b[1]))
		return false;
	addr_len = v->mv_size - VALUE_HEAD;
	if (memchr(b + VALUE_HEAD, '\0', addr_len))
		return false;

	memset(p, 0, sizeof(*p));
	memcpy(p->key, k->mv_data, PROTO_KEY_LEN);
	p->origin = (store_known_origin)b[1];
	p->failures = (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
		      (uint32_t)b[4] << 8 | b[5];
	p->last_seen_ms = store_be64_get(b + 6);
	memcpy(p->addr, b + VALUE_HEAD, addr_len);
	p->addr[addr_len] = '\0';
	return true;
}

/* Passes each decodable entry to the caller's function. */
typedef struct known_walk {
	int (*fn)(void *ctx, const store_known_peer *p);
	void *ctx;
	size_t skipped;
} known_walk;

static int call_known_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	known_walk *w = ctx;
	store_known_peer p;

	if (!decode_entry(k, v, &p)) {
		w->skipped++;
		return 0;
	}
	return w->fn(w->ctx, &p);
}

cm_err store_known_list(store *s,
			int (*fn)(void *ctx, const store_known_peer *p),
			void *ctx, size_t *skipped)
{
	known_walk w = {fn, ctx, 0};
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_walk(s, txn, STORE_DB_KNOWN_PEERS, call_known_fn, &w);
	mdb_txn_abort(txn);
	*skipped = w.skipped;
	return err;
}
