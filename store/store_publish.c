/*
 * store_publish.c - publishing local media in steps that a dead publish
 * cannot leave unreclaimable (store.h describes the steps), the sweep
 * that frees what dead publishes left, and the freeing of chunks that no
 * manifest lists.
 *
 * Liveness is an flock on one lock file per publish, in the folder
 * STORE_PUBLISH_DIR of the store folder. The kernel drops the lock when
 * its process exits or is killed, so a lock that can be taken belongs to
 * a dead publish.
 */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"

/* Attempts at a lock file that a sweep deleted before it was locked. */
#define LOCK_CREATE_TRIES 8

struct store_publish {
	store *s;
	uint8_t token[STORE_PUBLISH_TOKEN_LEN];
	char path[CM_HOME_PATH_MAX]; /* lock file */
	int fd;			     /* holds the flock */
	bool finished;		     /* marker deleted with the record */
};

static cm_err lock_path(const store *s,
			const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			char out[CM_HOME_PATH_MAX])
{
	char hex[2 * STORE_PUBLISH_TOKEN_LEN + 1];
	int len;

	cm_hex_encode(token, STORE_PUBLISH_TOKEN_LEN, hex);
	len = snprintf(out, CM_HOME_PATH_MAX, "%s/%s/%s", s->dir,
		       STORE_PUBLISH_DIR, hex);
	if (len < 0 || len >= CM_HOME_PATH_MAX)
		return cm_errf(CM_ERR_IO,
			       "lock file path in %s is over %d "
			       "bytes; use a shorter home path",
			       s->dir, CM_HOME_PATH_MAX);
	return CM_OK;
}

static void marker_key(uint8_t out[STORE_PUBLISH_KEY_LEN],
		       const uint8_t token[STORE_PUBLISH_TOKEN_LEN])
{
	memcpy(out, STORE_PUBLISH_PREFIX, STORE_PUBLISH_PREFIX_LEN);
	memcpy(out + STORE_PUBLISH_PREFIX_LEN, token, STORE_PUBLISH_TOKEN_LEN);
}

/* Whether the process that owns a lock file still runs. */
typedef enum lock_state {
	LOCK_RUNNING, /* locked, or it cannot be checked */
	LOCK_DEAD,    /* free or gone */
} lock_state;

/*
 * Tries to take the lock of token's lock file. When it is free, returns
 * LOCK_DEAD and leaves the lock taken on *lock_fd (-1 when the file is
 * gone), which the caller closes once it deleted the marker. A lock file
 * that cannot be opened for another reason counts as running, so that an
 * unreadable folder never frees media under a running publish.
 */
static lock_state lock_probe(const store *s,
			     const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			     int *lock_fd)
{
	char path[CM_HOME_PATH_MAX];
	int fd;

	*lock_fd = -1;
	if (lock_path(s, token, path))
		return LOCK_RUNNING;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? LOCK_DEAD : LOCK_RUNNING;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return LOCK_RUNNING;
	}
	*lock_fd = fd;
	return LOCK_DEAD;
}

/* True when the marker value v lists root. */
static bool marker_lists(const MDB_val *v, const uint8_t root[PROTO_HASH_LEN])
{
	const uint8_t *roots = v->mv_data;

	for (size_t i = 0; i + PROTO_HASH_LEN <= v->mv_size;
	     i += PROTO_HASH_LEN)
		if (memcmp(roots + i, root, PROTO_HASH_LEN) == 0)
			return true;
	return false;
}

/* Finds the first marker key after `key` (or at it, without `after`);
 * CM_ERR_NOT_FOUND when there is none. */
static cm_err marker_next(store *s, MDB_txn *txn,
			  uint8_t key[STORE_PUBLISH_KEY_LEN], bool after,
			  MDB_val *value)
{
	MDB_val k;
	cm_err err;

	err = store_seek(s, txn, STORE_DB_META, key, STORE_PUBLISH_KEY_LEN,
			 after, &k, value);
	if (err)
		return err;
	if (k.mv_size != STORE_PUBLISH_KEY_LEN ||
	    memcmp(k.mv_data, STORE_PUBLISH_PREFIX, STORE_PUBLISH_PREFIX_LEN))
		return CM_ERR_NOT_FOUND;
	memcpy(key, k.mv_data, STORE_PUBLISH_KEY_LEN);
	return CM_OK;
}

/* Like store_publish_root_busy, but ignores the marker of token `self`
 * (may be NULL), whose lock this process holds. */
static bool root_busy(store *s, MDB_txn *txn,
		      const uint8_t root[PROTO_HASH_LEN], const uint8_t *self)
{
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	const uint8_t *token = key + STORE_PUBLISH_PREFIX_LEN;
	MDB_val v;

	memset(key, 0, sizeof(key));
	memcpy(key, STORE_PUBLISH_PREFIX, STORE_PUBLISH_PREFIX_LEN);
	for (bool after = false;; after = true) {
		cm_err err = marker_next(s, txn, key, after, &v);

		if (err == CM_ERR_NOT_FOUND)
			return false;
		if (err)
			return true;
		if (!marker_lists(&v, root) ||
		    (self && !memcmp(token, self, STORE_PUBLISH_TOKEN_LEN)))
			continue;
		if (store_publish_running(s, token))
			return true;
	}
}

bool store_publish_running(store *s,
			   const uint8_t token[STORE_PUBLISH_TOKEN_LEN])
{
	int lock_fd;

	if (lock_probe(s, token, &lock_fd) == LOCK_RUNNING)
		return true;
	if (lock_fd >= 0)
		close(lock_fd);
	return false;
}

bool store_publish_root_busy(store *s, MDB_txn *txn,
			     const uint8_t root[PROTO_HASH_LEN])
{
	return root_busy(s, txn, root, NULL);
}

/* Frees one root of a dead or failed publish unless a stored clip or
 * another running publish lists it. */
static cm_err root_free(store *s, MDB_txn *txn,
			const uint8_t root[PROTO_HASH_LEN],
			const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			store_sweep_report *rep)
{
	uint64_t freed = 0;
	MDB_val v;
	cm_err err;

	err = store_media_listed_txn(s, txn, root);
	if (err != CM_ERR_NOT_FOUND)
		return err; /* CM_OK: a clip lists it */
	if (root_busy(s, txn, root, token))
		return CM_OK;
	err = store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			   &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (!err)
		err = store_media_free_txn(s, txn, root, &freed);
	if (err)
		return err;
	rep->media++;
	rep->bytes += freed;
	return CM_OK;
}

/* Frees the media of the marker of token inside txn and deletes the
 * marker; a marker that is gone already changes nothing. */
static cm_err marker_free_txn(store *s, MDB_txn *txn,
			      const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			      store_sweep_report *rep)
{
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	uint8_t roots[CM_MEDIA_MAX * PROTO_HASH_LEN];
	size_t len;
	MDB_val v;
	cm_err err;

	marker_key(key, token);
	err = store_db_get(s, txn, STORE_DB_META, key, sizeof(key), &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	/* Writes below move the map's pages, so the list is copied. */
	len = v.mv_size < sizeof(roots) ? v.mv_size : sizeof(roots);
	len -= len % PROTO_HASH_LEN;
	memcpy(roots, v.mv_data, len);
	err = store_mrefs_catch_up(s, txn);
	for (size_t i = 0; !err && i < len; i += PROTO_HASH_LEN)
		err = root_free(s, txn, roots + i, token, rep);
	if (!err)
		err = store_db_del(s, txn, STORE_DB_META, key, sizeof(key));
	if (!err)
		rep->publishes++;
	return err;
}

/* Frees the marker of token and its media in one write transaction. */
static cm_err marker_free(store *s,
			  const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			  store_sweep_report *rep)
{
	store_sweep_report done = {0};
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = marker_free_txn(s, txn, token, &done);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	err = store_txn_commit(txn);
	if (!err) {
		rep->publishes += done.publishes;
		rep->media += done.media;
		rep->bytes += done.bytes;
	}
	return err;
}

/* --- One publish ------------------------------------------------------- */

static cm_err lock_dir_make(const store *s)
{
	char dir[CM_HOME_PATH_MAX];
	int len;

	len = snprintf(dir, sizeof(dir), "%s/%s", s->dir, STORE_PUBLISH_DIR);
	if (len < 0 || (size_t)len >= sizeof(dir))
		return cm_errf(CM_ERR_IO, "store path %s is too long", s->dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return cm_errf(CM_ERR_IO,
			       "cannot create %s: %s; check the "
			       "permissions of the home",
			       dir, strerror(errno));
	return CM_OK;
}

/* Takes the flock on fd, waiting for a sweep that holds it; 0 or -1. */
static int lock_wait(int fd)
{
	int rc;

	do
		rc = flock(fd, LOCK_EX);
	while (rc != 0 && errno == EINTR);
	return rc;
}

/*
 * Creates a new lock file under a random token and locks it. A sweep
 * deletes a lock file that no marker names once it can lock it, which
 * can happen between the open and the flock here, so the file must
 * still be the one at its path once locked.
 */
static cm_err lock_create(store_publish *p)
{
	struct stat locked, named;
	cm_err err;

	for (int i = 0; i < LOCK_CREATE_TRIES; i++) {
		randombytes_buf(p->token, sizeof(p->token));
		if ((err = lock_path(p->s, p->token, p->path)))
			return err;
		p->fd = open(p->path,
			     O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			     0600);
		if (p->fd < 0)
			return cm_errf(CM_ERR_IO,
				       "cannot create the lock "
				       "file %s: %s; check the permissions "
				       "of the home",
				       p->path, strerror(errno));
		if (lock_wait(p->fd) != 0)
			return cm_errf(CM_ERR_IO, "cannot lock %s: %s", p->path,
				       strerror(errno));
		if (fstat(p->fd, &locked) == 0 && stat(p->path, &named) == 0 &&
		    locked.st_dev == named.st_dev &&
		    locked.st_ino == named.st_ino)
			return CM_OK;
		close(p->fd);
		p->fd = -1;
	}
	return cm_errf(CM_ERR_IO,
		       "lock files in %s/%s were deleted %d times "
		       "before they were locked; check what deletes them",
		       p->s->dir, STORE_PUBLISH_DIR, LOCK_CREATE_TRIES);
}

/* Stores the manifests and the marker in one write transaction. */
static cm_err marker_put(store_publish *p, const store_manifest *media,
			 size_t n)
{
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	uint8_t roots[CM_MEDIA_MAX * PROTO_HASH_LEN];
	MDB_txn *txn = NULL;
	cm_err err;

	if (n > CM_MEDIA_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "%zu media in one publish, "
			       "max %d",
			       n, CM_MEDIA_MAX);
	for (size_t i = 0; i < n; i++)
		memcpy(roots + i * PROTO_HASH_LEN, media[i].root,
		       PROTO_HASH_LEN);
	marker_key(key, p->token);
	err = store_txn_begin(p->s, true, &txn);
	if (err)
		return err;
	for (size_t i = 0; !err && i < n; i++)
		err = store_manifest_put_txn(p->s, txn, &media[i]);
	if (!err)
		err = store_db_put(p->s, txn, STORE_DB_META, key, sizeof(key),
				   roots, n * PROTO_HASH_LEN, 0);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

/* Deletes the lock file, releases the lock and frees p. */
static void publish_free(store_publish *p)
{
	if (p->fd >= 0) {
		unlink(p->path);
		close(p->fd);
	}
	free(p);
}

cm_err store_publish_begin(store *s, const store_manifest *media, size_t n,
			   store_publish **out)
{
	store_publish *p;
	cm_err err;

	*out = NULL;
	err = store_media_index_ensure(s);
	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a publish");
	p->s = s;
	p->fd = -1;
	err = lock_dir_make(s);
	if (!err)
		err = lock_create(p);
	if (!err)
		err = marker_put(p, media, n);
	if (err) {
		publish_free(p);
		return err;
	}
	*out = p;
	return CM_OK;
}

cm_err store_publish_chunks_put(store_publish *p,
				const uint8_t root[PROTO_HASH_LEN], size_t n,
				const uint8_t (*hashes)[PROTO_HASH_LEN],
				const uint8_t *const *data, const size_t *lens)
{
	return store_root_chunks_put(p->s, root, n, hashes, data, lens);
}

/* Deletes the marker in the record's transaction once it is stored. */
static cm_err marker_done(void *ctx, MDB_txn *txn, const cm_err *results)
{
	store_publish *p = ctx;
	uint8_t key[STORE_PUBLISH_KEY_LEN];

	if (results[0] != CM_OK && results[0] != CM_ERR_DUPLICATE)
		return CM_OK;
	marker_key(key, p->token);
	return store_db_del(p->s, txn, STORE_DB_META, key, sizeof(key));
}

cm_err store_publish_finish(store_publish *p, const proto_signed *rec,
			    cm_err *result)
{
	cm_err err;

	err = store_put_batch_then(p->s, rec, 1, result, marker_done, p);
	if (!err)
		p->finished = *result == CM_OK || *result == CM_ERR_DUPLICATE;
	return err;
}

void store_publish_end(store_publish **pp)
{
	store_publish *p = pp ? *pp : NULL;
	store_sweep_report rep = {0};
	cm_err err;

	if (!p)
		return;
	*pp = NULL;
	if (!p->finished) {
		cm_err_clear();
		err = marker_free(p->s, p->token, &rep);
		if (err)
			cm_warn("store",
				"freeing the media of a failed publish "
				"failed: %s (%s); the next publish or node "
				"start frees it",
				cm_err_name(err), cm_err_detail());
	}
	publish_free(p);
}

/* --- Sweep -------------------------------------------------------------- */

/* Deletes a lock file after its marker was freed, then drops the lock. */
static void lock_remove(store *s, const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			int lock_fd)
{
	char path[CM_HOME_PATH_MAX];

	if (lock_fd < 0)
		return;
	if (!lock_path(s, token, path))
		unlink(path);
	close(lock_fd);
}

/* Frees the marker of token when its publish is dead. */
static cm_err sweep_one(store *s, const uint8_t token[STORE_PUBLISH_TOKEN_LEN],
			store_sweep_report *rep)
{
	int lock_fd;
	cm_err err;

	if (lock_probe(s, token, &lock_fd) == LOCK_RUNNING)
		return CM_OK;
	err = marker_free(s, token, rep);
	if (!err)
		lock_remove(s, token, lock_fd);
	else if (lock_fd >= 0)
		close(lock_fd);
	return err;
}

/* Frees the markers of dead publishes, one write transaction each. */
static cm_err sweep_markers(store *s, store_sweep_report *rep)
{
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err = CM_OK;

	memset(key, 0, sizeof(key));
	memcpy(key, STORE_PUBLISH_PREFIX, STORE_PUBLISH_PREFIX_LEN);
	for (bool after = false; !err; after = true) {
		err = store_txn_begin(s, false, &txn);
		if (err)
			return err;
		err = marker_next(s, txn, key, after, &v);
		mdb_txn_abort(txn);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (!err)
			err = sweep_one(s, key + STORE_PUBLISH_PREFIX_LEN, rep);
	}
	return err;
}

/* Deletes lock file `name` when no marker names it and it is free: its
 * publish died before it stored its marker, or after it deleted it. */
static void sweep_stray(store *s, const char *name)
{
	uint8_t token[STORE_PUBLISH_TOKEN_LEN];
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	int lock_fd;

	if (strlen(name) != 2 * STORE_PUBLISH_TOKEN_LEN ||
	    !cm_hex_decode(name, token, sizeof(token)))
		return;
	marker_key(key, token);
	if (store_key_exists(s, STORE_DB_META, key, sizeof(key)) ||
	    lock_probe(s, token, &lock_fd) == LOCK_RUNNING)
		return;
	/* Checked again under the lock: a publish may have stored it. */
	if (store_key_exists(s, STORE_DB_META, key, sizeof(key))) {
		if (lock_fd >= 0)
			close(lock_fd);
		return;
	}
	lock_remove(s, token, lock_fd);
}

static void sweep_strays(store *s)
{
	char dir[CM_HOME_PATH_MAX];
	struct dirent *entry;
	DIR *d;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", s->dir,
			     STORE_PUBLISH_DIR) >= sizeof(dir))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((entry = readdir(d)) != NULL)
		sweep_stray(s, entry->d_name);
	closedir(d);
}

cm_err store_publish_sweep(store *s, store_sweep_report *rep)
{
	cm_err err;

	memset(rep, 0, sizeof(*rep));
	err = store_media_index_ensure(s);
	if (!err)
		err = sweep_markers(s, rep);
	if (!err)
		sweep_strays(s);
	return err;
}

/* --- Chunks that no manifest lists ------------------------------------ */

/* Hashes of chunks, grown as needed. */
typedef struct hash_list {
	uint8_t (*hashes)[PROTO_HASH_LEN];
	size_t n;
	size_t cap;
} hash_list;

static cm_err hash_list_add(hash_list *l, const void *hash)
{
	if (cm_array_reserve((void **)&l->hashes, &l->cap, l->n + 1,
			     sizeof(*l->hashes)))
		return cm_errf(CM_ERR_NOMEM, "cannot list %zu chunk hashes",
			       l->n + 1);
	memcpy(l->hashes[l->n++], hash, PROTO_HASH_LEN);
	return CM_OK;
}

/* Lists the chunks that no manifest lists, walking the chunk keys in a
 * read transaction. The chunk values are not read: a chunk's size and
 * page number are in its leaf node. */
static cm_err unlisted_find(store *s, hash_list *out)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	cm_err err;
	int rc;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_CHUNKS], &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return store_mdb_error(rc, "mdb_cursor_open", "chunks");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (k.mv_size == PROTO_HASH_LEN &&
		    !store_chunk_listed_txn(s, txn, k.mv_data))
			err = hash_list_add(out, k.mv_data);
	if (!err && rc != MDB_NOTFOUND)
		err = store_mdb_error(rc, "mdb_cursor_get", "chunks");
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return err;
}

/* Deletes the listed chunks that are still unlisted in txn. */
static cm_err unlisted_delete(store *s, MDB_txn *txn, const hash_list *l,
			      uint64_t *chunks, uint64_t *bytes)
{
	MDB_val v;
	cm_err err;

	for (size_t i = 0; i < l->n; i++) {
		if (store_chunk_listed_txn(s, txn, l->hashes[i]))
			continue;
		err = store_db_get(s, txn, STORE_DB_CHUNKS, l->hashes[i],
				   PROTO_HASH_LEN, &v);
		if (err == CM_ERR_NOT_FOUND)
			continue;
		if (err)
			return err;
		*bytes += v.mv_size;
		(*chunks)++;
		err = store_db_del(s, txn, STORE_DB_CHUNKS, l->hashes[i],
				   PROTO_HASH_LEN);
		if (err)
			return err;
	}
	return store_chunk_bytes_sub(s, txn, *bytes);
}

cm_err store_chunks_unlisted_free(store *s, uint64_t *chunks, uint64_t *bytes)
{
	hash_list l = {0};
	MDB_txn *txn = NULL;
	cm_err err;

	*chunks = 0;
	*bytes = 0;
	err = unlisted_find(s, &l);
	if (err || l.n == 0)
		goto out;
	err = store_txn_begin(s, true, &txn);
	if (!err)
		err = unlisted_delete(s, txn, &l, chunks, bytes);
	if (!err) {
		err = store_txn_commit(txn);
		txn = NULL;
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	if (err) {
		*chunks = 0;
		*bytes = 0;
	}
	free(l.hashes);
	return err;
}
