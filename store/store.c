/*
 * store.c - opening the LMDB environment, LMDB helpers and record reads.
 *
 * One LMDB environment per home, opened with MDB_NOTLS so that read
 * transactions are not bound to a thread, and mdb_reader_check() at open
 * to free the reader slots of killed processes. A running node and CLI
 * commands open it at once; every write is one short write transaction.
 * Numbers inside keys are big-endian, so byte order is numeric order.
 * Named databases ("created" is the record's created_ms):
 *
 *   records    id -> wire bytes (every kind)
 *   sync       created || id -> kind byte (every kind; store_scan)
 *   feed       created || id -> "" (clips)
 *   author     author || created || id -> kind byte (every kind)
 *   product    BLAKE2b-128(product) || created || id -> "" (clips)
 *   tag        BLAKE2b-128(tag) || created || id -> "" (clips, per tag)
 *   retracted  target || author || retraction id -> pending or confirmed
 *   profiles   author -> created || id of the newest profile
 *   chunks     chunk hash -> bytes
 *   manifests  media root -> size || chunk hashes
 *   follows    key -> "";  peers: address -> "";  counters: name -> u64
 *   meta       name -> u64 (format version, store totals, log head)
 *   fp         reconciliation aggregates per time bucket (store_fp.c)
 *   log        sequence number -> id, in acceptance order (store_log.c)
 *   known_peers  node key -> origin, failures, last seen, HOST:PORT
 *              (store_known.c)
 *
 * The retracted key carries the retraction's author because a retraction
 * can arrive before its clip. Only when the clip arrives can the store
 * tell a valid retraction (same author) from a forged one, which it then
 * deletes. A retracted clip loses its record and every index entry.
 */
#include "store_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cm_log.h"
#include "cm_util.h"

static const struct {
	const char *name;
	unsigned flags;
} db_specs[STORE_DB_COUNT] = {
	[STORE_DB_RECORDS] = {"records", 0},
	[STORE_DB_SYNC] = {"sync", 0},
	[STORE_DB_FEED] = {"feed", 0},
	[STORE_DB_AUTHOR] = {"author", 0},
	[STORE_DB_PRODUCT] = {"product", 0},
	[STORE_DB_TAG] = {"tag", 0},
	[STORE_DB_RETRACTED] = {"retracted", 0},
	[STORE_DB_PROFILES] = {"profiles", 0},
	[STORE_DB_CHUNKS] = {"chunks", 0},
	[STORE_DB_MANIFESTS] = {"manifests", 0},
	[STORE_DB_FOLLOWS] = {"follows", 0},
	[STORE_DB_PEERS] = {"peers", 0},
	[STORE_DB_COUNTERS] = {"counters", 0},
	[STORE_DB_META] = {"meta", 0},
	[STORE_DB_FP] = {"fp", 0},
	[STORE_DB_LOG] = {"log", 0},
	[STORE_DB_KNOWN_PEERS] = {"known_peers", 0},
};

const char *store_db_name(store_db db)
{
	return db_specs[db].name;
}

cm_err store_mdb_error(int rc, const char *call, const char *object)
{
	cm_err err = CM_ERR_STORE;

	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		err = CM_ERR_STORE_FULL;
	else if (rc == ENOMEM)
		err = CM_ERR_NOMEM;
	else if (rc > 0)
		err = CM_ERR_IO;
	if (rc == MDB_MAP_FULL)
		return cm_errf(err, "%s %s failed: %s; raise store_map_size "
			       "in HOME/config (clipmesh.conf(5))", call,
			       object, mdb_strerror(rc));
	return cm_errf(err, "%s %s failed: %s", call, object,
		       mdb_strerror(rc));
}

void store_be64_put(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

uint64_t store_be64_get(const uint8_t in[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

void store_label_hash(const char *label, uint8_t out[STORE_LABEL_HASH_LEN])
{
	crypto_generichash(out, STORE_LABEL_HASH_LEN,
			   (const unsigned char *)label, strlen(label), NULL,
			   0);
}

size_t store_index_key(uint8_t out[STORE_INDEX_KEY_MAX], const uint8_t *prefix,
		       size_t prefix_len, uint64_t created_ms,
		       const uint8_t id[PROTO_ID_LEN])
{
	if (prefix_len > 0)
		memcpy(out, prefix, prefix_len);
	store_be64_put(out + prefix_len, created_ms);
	memcpy(out + prefix_len + 8, id, PROTO_ID_LEN);
	return prefix_len + STORE_TIME_KEY_LEN;
}

static void entry_set(store_index_entry *e, store_db db,
		      const uint8_t *prefix, size_t prefix_len,
		      const proto_record *rec, const uint8_t id[PROTO_ID_LEN],
		      bool kind_value)
{
	e->db = db;
	e->key_len = store_index_key(e->key, prefix, prefix_len,
				     rec->created_ms, id);
	e->value = (uint8_t)rec->kind;
	e->value_len = kind_value ? 1 : 0;
}

size_t store_index_entries(const proto_record *rec,
			   const uint8_t id[PROTO_ID_LEN],
			   store_index_entry out[STORE_INDEX_ENTRIES_MAX])
{
	uint8_t label[STORE_LABEL_HASH_LEN];
	size_t n = 0;

	entry_set(&out[n++], STORE_DB_SYNC, NULL, 0, rec, id, true);
	entry_set(&out[n++], STORE_DB_AUTHOR, rec->author, PROTO_KEY_LEN,
		  rec, id, true);
	if (rec->kind != PROTO_KIND_CLIP)
		return n;

	entry_set(&out[n++], STORE_DB_FEED, NULL, 0, rec, id, false);
	store_label_hash(rec->product, label);
	entry_set(&out[n++], STORE_DB_PRODUCT, label, sizeof(label), rec, id,
		  false);
	for (size_t i = 0; i < rec->n_tags && i < CM_TAGS_MAX; i++) {
		store_label_hash(rec->tags[i], label);
		entry_set(&out[n++], STORE_DB_TAG, label, sizeof(label), rec,
			  id, false);
	}
	return n;
}

/* --- Opening and closing ------------------------------------------- */

cm_err store_needs_repair(store *s, const char *item)
{
	s->needs_write = true;
	return cm_errf(CM_ERR_STORE, "the store's %s needs a repair", item);
}

/* Opens database i in txn. Without `write`, a missing database needs
 * the write transaction. */
static cm_err open_db(store *s, MDB_txn *txn, int i, bool write)
{
	int rc = mdb_dbi_open(txn, db_specs[i].name,
			      db_specs[i].flags | (write ? MDB_CREATE : 0),
			      &s->dbi[i]);

	if (rc == MDB_NOTFOUND && !write)
		return store_needs_repair(s, db_specs[i].name);
	if (rc)
		return store_mdb_error(rc, "mdb_dbi_open", db_specs[i].name);
	return CM_OK;
}

/* Checks in read transaction txn that the store has the current format,
 * which a new or older store lacks. */
static cm_err format_current(store *s, MDB_txn *txn)
{
	uint64_t format = 0;
	cm_err err = open_db(s, txn, STORE_DB_META, false);

	if (!err)
		err = store_format_get(s, txn, &format);
	if (!err && format != STORE_FORMAT)
		err = store_needs_repair(s, "format");
	return err;
}

/* Opens every database and runs the open checks in one transaction:
 * with `write`, creating, migrating and repairing what needs it, else
 * failing with s->needs_write set where a write would be needed. */
static cm_err open_dbs_txn(store *s, const char *dir, bool write)
{
	MDB_txn *txn = NULL;
	uint64_t migrate_from = 0;
	cm_err err;
	int rc;

	err = store_txn_begin(s, write, &txn);
	if (err)
		return err;
	if (write)
		err = store_format_check(s, txn, dir, &migrate_from);
	else
		err = format_current(s, txn);
	for (int i = 0; !err && i < STORE_DB_COUNT; i++)
		err = open_db(s, txn, i, write);
	if (!err && migrate_from)
		err = store_format_migrate(s, txn, dir, migrate_from);
	if (!err)
		err = store_log_check_head(s, txn, dir, write);
	if (!err)
		err = store_mrefs_init(s, txn, dir, write);
	if (!err)
		err = store_chunk_bytes_init(s, txn, dir, write);
	if (err)
		goto out;
	if (write) {
		err = store_txn_commit(txn);
	} else {
		/* Committed, a read transaction keeps the handles it opened
		 * for the whole environment. */
		rc = mdb_txn_commit(txn);
		if (rc)
			err = store_mdb_error(rc, "mdb_txn_commit", dir);
	}
	txn = NULL;
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

/*
 * Opens the databases in a read transaction when the store needs no
 * write, else in a write transaction. A write transaction waits for the
 * one a running node has open, so every CLI command waited for the
 * node's commits: up to 2 s for `clipmesh status` during a catch-up.
 * Other errors of the read transaction, such as a damaged key that no
 * repair fixes, are returned as they are.
 */
static cm_err open_dbs(store *s, const char *dir)
{
	cm_err err;

	s->needs_write = false;
	err = open_dbs_txn(s, dir, false);
	if (!err || !s->needs_write)
		return err;
	s->needs_write = false;
	return open_dbs_txn(s, dir, true);
}

/* Checks that the data file reaches the last page in use. LMDB maps the
 * file and reads pages in place. A file cut short by a damaged disk or an
 * interrupted copy would end the process with SIGBUS at its first read of
 * a missing page instead of returning an error. */
static cm_err check_file_size(store *s, const char *dir)
{
	MDB_envinfo info;
	MDB_stat stat;
	struct stat st;
	uint64_t needed;
	int fd = -1;
	int rc;

	rc = mdb_env_info(s->env, &info);
	if (!rc)
		rc = mdb_env_stat(s->env, &stat);
	if (!rc)
		rc = mdb_env_get_fd(s->env, &fd);
	if (rc)
		return store_mdb_error(rc, "mdb_env_info", dir);
	if (fstat(fd, &st) != 0)
		return cm_errf(CM_ERR_IO, "fstat of %s/data.mdb failed: %s", dir,
			       strerror(errno));
	needed = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	if ((uint64_t)st.st_size >= needed)
		return CM_OK;
	return cm_errf(CM_ERR_STORE, "store %s: data.mdb is %llu bytes, but "
		       "its pages reach %llu bytes, so the file was cut short "
		       "(a damaged disk or an interrupted copy); restore the "
		       "store from a backup ('clipmesh store backup')", dir,
		       (unsigned long long)st.st_size,
		       (unsigned long long)needed);
}

/* Fails when dir/data.mdb exists but is empty. LMDB would write a new
 * store into it, so a file emptied by a damaged disk would lose every
 * record without a word. */
static cm_err check_not_emptied(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    sizeof(path))
		return cm_errf(CM_ERR_USAGE, "store folder path of %zu bytes "
			       "is too long", strlen(dir));
	if (stat(path, &st) != 0 || st.st_size > 0)
		return CM_OK;
	return cm_errf(CM_ERR_STORE, "store %s: data.mdb is empty; restore "
		       "the store from a backup ('clipmesh store backup'), or "
		       "delete the empty file to start a new store", dir);
}

/* Takes the exclusive flock on the store folder `fd`, waiting at most
 * CM_STORE_LOCK_WAIT_MS. A process that hangs while it holds the lock
 * would otherwise block every command on this home without a word. */
static cm_err lock_store_folder(int fd, const char *dir)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};
	uint64_t deadline = cm_mono_ms() + CM_STORE_LOCK_WAIT_MS;

	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		/* On another error, such as a file system without
		 * locks, the store opens without the lock. */
		if (errno != EWOULDBLOCK && errno != EINTR)
			return CM_OK;
		if (cm_mono_ms() >= deadline)
			return cm_errf(CM_ERR_TIMEOUT, "timed out after %d ms "
				       "waiting for the lock on store folder "
				       "%s, which another process holds while "
				       "it opens the store; end the clipmesh "
				       "process that hangs there and try again",
				       CM_STORE_LOCK_WAIT_MS, dir);
		nanosleep(&pause, NULL);
	}
	return CM_OK;
}

/*
 * Opens the environment while holding a lock on the store folder. LMDB
 * creates data.mdb empty before it writes the first pages, so without
 * the lock another process could find that file empty and reject it.
 */
static cm_err open_env_locked(store *s, const char *dir,
			       uint64_t map_size)
{
	cm_err err;
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOTDIR)
		return cm_errf(CM_ERR_IO, "store folder %s is not a folder; "
			       "move that file aside so that the store can "
			       "be created, or restore the store from a backup",
			       dir);
	if (fd < 0)
		return cm_errf(CM_ERR_IO, "cannot open store folder %s: %s",
			       dir, strerror(errno));
	err = lock_store_folder(fd, dir);
	if (!err)
		err = check_not_emptied(dir);
	if (!err)
		err = store_check_meta_pages(dir);
	rc = err ? 0 : mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
	close(fd);
	if (err)
		return err;
	if (rc == ENOMEM)
		return cm_errf(CM_ERR_NOMEM, "mdb_env_open %s failed: %s: the "
			       "map of %llu bytes does not fit this process's "
			       "address space; lower store_map_size in "
			       "HOME/config or raise the limit (ulimit -v)",
			       dir, mdb_strerror(rc),
			       (unsigned long long)map_size);
	if (rc == EROFS || rc == EACCES)
		return cm_errf(CM_ERR_IO, "mdb_env_open %s failed: %s: every "
			       "command writes to the store folder, reads "
			       "included (LMDB keeps its lock file there); "
			       "mount it read-write or make it writable "
			       "for this user", dir, mdb_strerror(rc));
	if (rc)
		return store_mdb_error(rc, "mdb_env_open", dir);
	return CM_OK;
}

/*
 * Warns that the pages in use (`used` bytes) exceed store_map_size. LMDB
 * 0.9 then maps exactly the pages in use, so the setting has no effect,
 * and only writes that fit in the store's free pages succeed. Warns once
 * per process, however often the process opens the store.
 */
static void warn_map_small(const char *dir, size_t used, uint64_t map_size)
{
	static atomic_flag warned = ATOMIC_FLAG_INIT;

	if (atomic_flag_test_and_set(&warned))
		return;
	cm_warn("store", "store %s uses %zu bytes, more than store_map_size "
		"(%llu bytes), so LMDB maps the %zu bytes in use: writes that "
		"do not fit in the store's free pages fail with MDB_MAP_FULL; "
		"raise store_map_size in HOME/config above %zu bytes", dir,
		used, (unsigned long long)map_size, used, used);
}

static cm_err open_env(store *s, const char *dir, uint64_t map_size)
{
	MDB_envinfo info;
	int dead = 0;
	cm_err err;
	int rc;

	rc = mdb_env_set_mapsize(s->env, (size_t)map_size);
	if (rc)
		return store_mdb_error(rc, "mdb_env_set_mapsize", dir);
	rc = mdb_env_set_maxreaders(s->env, CM_STORE_MAX_READERS);
	if (rc)
		return store_mdb_error(rc, "mdb_env_set_maxreaders", dir);
	rc = mdb_env_set_maxdbs(s->env, STORE_DB_COUNT);
	if (rc)
		return store_mdb_error(rc, "mdb_env_set_maxdbs", dir);
	err = open_env_locked(s, dir, map_size);
	if (err)
		return err;
	err = check_file_size(s, dir);
	if (err)
		return err;

	if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > map_size)
		warn_map_small(dir, info.me_mapsize, map_size);

	rc = mdb_reader_check(s->env, &dead);
	if (rc)
		return store_mdb_error(rc, "mdb_reader_check", dir);
	s->map_base = store_map_locate(s);
	if (dead > 0)
		cm_info("store", "freed %d reader slots of dead processes",
			dead);
	return CM_OK;
}

cm_err store_open_sized(const char *dir, uint64_t map_size, store **out)
{
	store *s = NULL;
	cm_err err;
	int rc;

	*out = NULL;
	if (sodium_init() < 0)
		return cm_errf(CM_ERR_CRYPTO, "sodium_init failed");
	if (map_size > SIZE_MAX)
		return cm_errf(CM_ERR_USAGE, "map size %llu is over SIZE_MAX",
			       (unsigned long long)map_size);
	s = calloc(1, sizeof(*s));
	if (!s)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate the store");
	err = store_waiting_new(&s->waiting);
	if (err) {
		free(s);
		return err;
	}
	s->dir = strdup(dir);
	if (!s->dir) {
		err = cm_errf(CM_ERR_NOMEM, "cannot copy the store path");
		goto out;
	}

	rc = mdb_env_create(&s->env);
	if (rc) {
		s->env = NULL;
		err = store_mdb_error(rc, "mdb_env_create", dir);
		goto out;
	}
	err = open_env(s, dir, map_size);
	if (err)
		goto out;
	err = open_dbs(s, dir);
out:
	if (err)
		store_close(&s);
	*out = s;
	return err;
}

cm_err store_open(const char *dir, store **out)
{
	return store_open_sized(dir, CM_STORE_MAP_SIZE, out);
}

void store_close(store **s)
{
	if (!s || !*s)
		return;
	if ((*s)->env)
		mdb_env_close((*s)->env);
	store_waiting_free(&(*s)->waiting);
	free((*s)->dir);
	free(*s);
	*s = NULL;
}

/* --- Transactions and single operations ---------------------------- */

cm_err store_txn_begin(store *s, bool write, MDB_txn **txn)
{
	unsigned flags = write ? 0 : MDB_RDONLY;
	int dead = 0;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, flags, txn);
	if (rc == MDB_READERS_FULL) {
		/* Slots of killed readers are freed only by a check. */
		mdb_reader_check(s->env, &dead);
		rc = mdb_txn_begin(s->env, NULL, flags, txn);
	}
	if (rc) {
		*txn = NULL;
		return store_mdb_error(rc, "mdb_txn_begin",
				       write ? "(write)" : "(read)");
	}
	return CM_OK;
}

/*
 * Returns the error of a commit in env that failed with rc. LMDB reports
 * a write that a full disk cut short as EIO, so on EIO or ENOSPC with the
 * file system of the store folder nearly full the error names the disk.
 */
static cm_err commit_error(MDB_env *env, int rc)
{
	const char *dir = NULL;
	struct statvfs fs;
	uint64_t free_bytes;

	if ((rc != EIO && rc != ENOSPC) || mdb_env_get_path(env, &dir) != 0 ||
	    statvfs(dir, &fs) != 0)
		return store_mdb_error(rc, "mdb_txn_commit", "(write)");
	free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (free_bytes >= CM_STORE_DISK_FULL_FREE)
		return store_mdb_error(rc, "mdb_txn_commit", "(write)");
	return cm_errf(CM_ERR_STORE_FULL, "mdb_txn_commit failed: %s, "
		       "because the disk holding %s is full (%llu bytes "
		       "free); free disk space", mdb_strerror(rc), dir,
		       (unsigned long long)free_bytes);
}

cm_err store_txn_commit(MDB_txn *txn)
{
	MDB_env *env = mdb_txn_env(txn);
	int rc = mdb_txn_commit(txn);

	if (rc)
		return commit_error(env, rc);
	return CM_OK;
}

cm_err store_db_get(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len, MDB_val *val)
{
	MDB_val k = {key_len, (void *)key};
	int rc;

	rc = mdb_get(txn, s->dbi[db], &k, val);
	if (rc == MDB_NOTFOUND)
		return CM_ERR_NOT_FOUND;
	if (rc)
		return store_mdb_error(rc, "mdb_get", store_db_name(db));
	return CM_OK;
}

cm_err store_db_put(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len, const void *val, size_t val_len,
		    unsigned flags)
{
	MDB_val k = {key_len, (void *)key};
	MDB_val v = {val_len, (void *)val};
	int rc;

	rc = mdb_put(txn, s->dbi[db], &k, &v, flags);
	if (rc == MDB_KEYEXIST)
		return CM_ERR_EXISTS;
	if (rc)
		return store_mdb_error(rc, "mdb_put", store_db_name(db));
	return CM_OK;
}

cm_err store_db_del(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len)
{
	MDB_val k = {key_len, (void *)key};
	int rc;

	rc = mdb_del(txn, s->dbi[db], &k, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "mdb_del", store_db_name(db));
	return CM_OK;
}

cm_err store_seek(store *s, MDB_txn *txn, store_db db, const void *key,
		  size_t key_len, bool after, MDB_val *found_key,
		  MDB_val *found_val)
{
	MDB_cursor *cur = NULL;
	int rc;

	rc = mdb_cursor_open(txn, s->dbi[db], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open",
				       store_db_name(db));
	found_key->mv_size = key_len;
	found_key->mv_data = (void *)key;
	rc = mdb_cursor_get(cur, found_key, found_val, MDB_SET_RANGE);
	if (rc == 0 && after && found_key->mv_size == key_len &&
	    memcmp(found_key->mv_data, key, key_len) == 0)
		rc = mdb_cursor_get(cur, found_key, found_val, MDB_NEXT);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return CM_ERR_NOT_FOUND;
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_get",
				       store_db_name(db));
	return CM_OK;
}

cm_err store_u64_get(store *s, MDB_txn *txn, store_db db, const void *key,
		     size_t key_len, uint64_t *value)
{
	MDB_val v;
	cm_err err;

	*value = 0;
	err = store_db_get(s, txn, db, key, key_len, &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	if (v.mv_size != 8)
		return cm_errf(CM_ERR_STORE, "value in %s is %zu bytes, not 8",
			       store_db_name(db), v.mv_size);
	*value = store_be64_get(v.mv_data);
	return CM_OK;
}

cm_err store_u64_add(store *s, MDB_txn *txn, store_db db, const void *key,
		     size_t key_len, uint64_t delta)
{
	uint8_t buf[8];
	uint64_t value;
	cm_err err;

	err = store_u64_get(s, txn, db, key, key_len, &value);
	if (err)
		return err;
	value = delta > UINT64_MAX - value ? UINT64_MAX : value + delta;
	store_be64_put(buf, value);
	return store_db_put(s, txn, db, key, key_len, buf, sizeof(buf), 0);
}

/* --- Stored records ------------------------------------------------- */

/* Reads the length of a msgpack bin header at wire[*pos]. */
static bool read_bin(const uint8_t *wire, size_t len, size_t *pos,
		     size_t *bin_len)
{
	size_t p = *pos;
	size_t n;

	if (p + 2 > len)
		return false;
	if (wire[p] == 0xc4) {
		n = wire[p + 1];
		p += 2;
	} else if (wire[p] == 0xc5 && p + 3 <= len) {
		n = (size_t)wire[p + 1] << 8 | wire[p + 2];
		p += 3;
	} else {
		return false;
	}
	if (n > len - p)
		return false;
	*pos = p;
	*bin_len = n;
	return true;
}

cm_err store_wire_body(const uint8_t *wire, size_t len, const uint8_t **body,
		       size_t *body_len)
{
	size_t pos = 1;
	size_t n = 0;

	/* Stored records were verified on arrival; the checks only keep a
	 * damaged file from causing reads past the value. Bodies are at most
	 * CM_BODY_MAX (16 KiB), so bin8 or bin16 is their canonical header. */
	if (len < 1 || wire[0] != 0x92 || !read_bin(wire, len, &pos, &n))
		return cm_errf(CM_ERR_STORE,
			       "stored record of %zu bytes has no valid "
			       "envelope; run clipmesh store check",
			       len);
	*body = wire + pos;
	*body_len = n;
	return CM_OK;
}

cm_err store_load_record(store *s, MDB_txn *txn, const uint8_t id[PROTO_ID_LEN],
			 proto_record *rec, MDB_val *wire)
{
	const uint8_t *body = NULL;
	size_t body_len = 0;
	char hex[9];
	MDB_val v;
	cm_err err;

	err = store_db_get(s, txn, STORE_DB_RECORDS, id, PROTO_ID_LEN, &v);
	if (err)
		return err;
	err = store_wire_body(v.mv_data, v.mv_size, &body, &body_len);
	if (err)
		return err;
	err = proto_body_read_stored(body, body_len, rec);
	if (err) {
		cm_hex_short(id, hex);
		return cm_errf(CM_ERR_STORE,
			       "stored record %s does not decode: %s; run "
			       "clipmesh store check",
			       hex, cm_err_name(err));
	}
	if (wire)
		*wire = v;
	return CM_OK;
}

cm_err store_get(store *s, const uint8_t id[PROTO_ID_LEN], uint8_t **wire,
		 size_t *len)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	*wire = NULL;
	*len = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_RECORDS, id, PROTO_ID_LEN, &v);
	if (err)
		goto out;
	*wire = malloc(v.mv_size);
	if (!*wire) {
		err = cm_errf(CM_ERR_NOMEM, "cannot copy a record of %zu bytes",
			      v.mv_size);
		goto out;
	}
	memcpy(*wire, v.mv_data, v.mv_size);
	*len = v.mv_size;
out:
	mdb_txn_abort(txn);
	return err;
}

bool store_key_exists(store *s, store_db db, const void *key,
		      size_t key_len)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	if (store_txn_begin(s, false, &txn))
		return false;
	err = store_db_get(s, txn, db, key, key_len, &v);
	mdb_txn_abort(txn);
	return err == CM_OK;
}

bool store_has(store *s, const uint8_t id[PROTO_ID_LEN])
{
	return store_key_exists(s, STORE_DB_RECORDS, id, PROTO_ID_LEN);
}

/* store_is_retracted within txn. */
static bool retracted_in(store *s, MDB_txn *txn,
			 const uint8_t id[PROTO_ID_LEN],
			 uint8_t retraction[PROTO_ID_LEN])
{
	MDB_val k, v;

	/* Confirming a retraction deletes the forged ones and confirms all
	 * of its author's, so the first entry of id is confirmed if any is. */
	if (store_seek(s, txn, STORE_DB_RETRACTED, id, PROTO_ID_LEN, false,
		       &k, &v) != CM_OK ||
	    k.mv_size != STORE_RETRACTED_KEY_LEN ||
	    memcmp(k.mv_data, id, PROTO_ID_LEN) != 0 || v.mv_size != 1 ||
	    *(uint8_t *)v.mv_data != STORE_RETRACT_CONFIRMED)
		return false;
	if (retraction)
		memcpy(retraction,
		       (uint8_t *)k.mv_data + PROTO_ID_LEN + PROTO_KEY_LEN,
		       PROTO_ID_LEN);
	return true;
}

bool store_is_retracted(store *s, const uint8_t id[PROTO_ID_LEN],
			uint8_t retraction[PROTO_ID_LEN])
{
	MDB_txn *txn = NULL;
	bool found;

	if (store_txn_begin(s, false, &txn))
		return false;
	found = retracted_in(s, txn, id, retraction);
	mdb_txn_abort(txn);
	return found;
}

cm_err store_lacks(store *s, const uint8_t *ids, size_t count, bool *lacks)
{
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *id = ids + i * PROTO_ID_LEN;
		MDB_val v;

		lacks[i] = store_db_get(s, txn, STORE_DB_RECORDS, id,
					PROTO_ID_LEN, &v) != CM_OK &&
			   !retracted_in(s, txn, id, NULL);
	}
	mdb_txn_abort(txn);
	return CM_OK;
}

/* True when key (32 bytes) starts with the first `nibbles` hex digits of
 * prefix, which contains them high nibble first. */
static bool key_has_prefix(const uint8_t *key, const uint8_t *prefix,
			   size_t nibbles)
{
	size_t bytes = nibbles / 2;

	if (memcmp(key, prefix, bytes) != 0)
		return false;
	if (nibbles % 2 == 0)
		return true;
	return (key[bytes] & 0xf0) == prefix[bytes];
}

static int nibble_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

cm_err store_resolve_prefix(store *s, store_db db, const char *what,
			    const char *hex_prefix, uint8_t out[32])
{
	uint8_t low[32] = {0};
	size_t nibbles = strnlen(hex_prefix, 65);
	MDB_txn *txn = NULL;
	MDB_val k, v;
	cm_err err;

	if (nibbles < CM_ID_PREFIX_MIN || nibbles > 64 ||
	    !cm_hex_valid_prefix(hex_prefix))
		return cm_errf(CM_ERR_USAGE,
			       "invalid %s prefix \"%.70s\": give %d to 64 hex "
			       "digits",
			       what, hex_prefix, CM_ID_PREFIX_MIN);
	for (size_t i = 0; i < nibbles; i++)
		low[i / 2] |= (uint8_t)(nibble_value(hex_prefix[i])
					<< (i % 2 ? 0 : 4));

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	/* low is the smallest key with the prefix: the first key >= low is
	 * the only candidate, and a second match right after it means the
	 * prefix is ambiguous. */
	err = store_seek(s, txn, db, low, sizeof(low), false, &k, &v);
	if (err == CM_OK && (k.mv_size != 32 ||
			     !key_has_prefix(k.mv_data, low, nibbles)))
		err = CM_ERR_NOT_FOUND;
	if (err == CM_ERR_NOT_FOUND) {
		err = cm_errf(CM_ERR_NOT_FOUND, "no %s starts with %s", what,
			      hex_prefix);
		goto out;
	}
	if (err)
		goto out;
	memcpy(out, k.mv_data, 32);

	err = store_seek(s, txn, db, out, 32, true, &k, &v);
	if (err == CM_OK && k.mv_size == 32 &&
	    key_has_prefix(k.mv_data, low, nibbles)) {
		err = cm_errf(CM_ERR_AMBIGUOUS,
			      "more than one %s starts with %s; give more "
			      "digits",
			      what, hex_prefix);
		goto out;
	}
	err = err == CM_ERR_NOT_FOUND ? CM_OK : err;
out:
	mdb_txn_abort(txn);
	return err;
}

cm_err store_resolve(store *s, const char *hex_prefix,
		     uint8_t id[PROTO_ID_LEN])
{
	return store_resolve_prefix(s, STORE_DB_RECORDS, "record id",
				    hex_prefix, id);
}

cm_err store_get_profile(store *s, const uint8_t author[PROTO_KEY_LEN],
			 uint8_t **wire, size_t *len)
{
	MDB_txn *txn = NULL;
	uint8_t id[PROTO_ID_LEN];
	MDB_val v;
	cm_err err;

	*wire = NULL;
	*len = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_PROFILES, author, PROTO_KEY_LEN,
			   &v);
	if (err)
		goto out;
	if (v.mv_size != 8 + PROTO_ID_LEN) {
		err = cm_errf(CM_ERR_STORE,
			      "profiles entry is %zu bytes, not %d", v.mv_size,
			      8 + PROTO_ID_LEN);
		goto out;
	}
	memcpy(id, (uint8_t *)v.mv_data + 8, PROTO_ID_LEN);
	mdb_txn_abort(txn);
	txn = NULL;
	/* A newer profile may replace this one in between: then store_get
	 * returns CM_ERR_NOT_FOUND, as if the author had none for a moment. */
	err = store_get(s, id, wire, len);
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

static cm_err db_entries(store *s, MDB_txn *txn, store_db db,
			 uint64_t *entries)
{
	MDB_stat st;
	int rc;

	rc = mdb_stat(txn, s->dbi[db], &st);
	if (rc)
		return store_mdb_error(rc, "mdb_stat", store_db_name(db));
	*entries = st.ms_entries;
	return CM_OK;
}

cm_err store_get_counts(store *s, store_counts *out)
{
	MDB_txn *txn = NULL;
	uint64_t records = 0;
	cm_err err;

	memset(out, 0, sizeof(*out));
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = db_entries(s, txn, STORE_DB_RECORDS, &records);
	if (!err)
		err = db_entries(s, txn, STORE_DB_FEED, &out->clips);
	if (!err)
		err = db_entries(s, txn, STORE_DB_PROFILES, &out->profiles);
	if (!err)
		err = db_entries(s, txn, STORE_DB_CHUNKS, &out->chunks);
	if (!err)
		err = store_u64_get(s, txn, STORE_DB_META,
				    STORE_META_CHUNK_BYTES,
				    strlen(STORE_META_CHUNK_BYTES),
				    &out->chunk_bytes);
	mdb_txn_abort(txn);
	if (err)
		return err;
	/* Every stored record is a clip (one feed entry), the newest profile
	 * of its author (one profiles entry) or a retraction. */
	if (records >= out->clips + out->profiles)
		out->retractions = records - out->clips - out->profiles;
	return CM_OK;
}
