/*
 * store_waiting.c - the media roots listed by the clips whose "mref"
 * entries still wait (store_budget.c writes them late), kept in memory so
 * that counting the users of a root decodes each waiting clip once
 * instead of once per count. The HTTP server counts users to word a 404,
 * which anyone can request, and decoding every waiting clip cost about
 * 30 ms of CPU per request with 16,383 of them.
 *
 * The list covers the clips accepted after log number `done` ("mref_seq")
 * up to `scanned`. A count first adds the roots of the clips accepted
 * since `scanned`. When "mref_seq" moves, the waiting entries were
 * written or must be written again, so the list starts over. A clip
 * removed while its entry waits may still be in the list, so each match
 * is checked against the records database.
 */
#include "store_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

/* One media root that a waiting clip lists. */
typedef struct waiting_ref {
	uint8_t root[PROTO_HASH_LEN];
	uint8_t id[PROTO_ID_LEN];
} waiting_ref;

typedef struct waiting_list {
	waiting_ref *refs;
	size_t n;
	size_t cap;
} waiting_list;

struct store_waiting {
	pthread_mutex_t lock;           /* HTTP threads count at once */
	bool valid;
	uint64_t done;                  /* "mref_seq" the list starts after */
	uint64_t scanned;               /* last log number read */
	waiting_list list;              /* sorted by root, then id */
};

cm_err store_waiting_new(store_waiting **out)
{
	store_waiting *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return cm_errf(CM_ERR_NOMEM,
			       "cannot allocate the waiting media list");
	pthread_mutex_init(&w->lock, NULL);
	*out = w;
	return CM_OK;
}

void store_waiting_free(store_waiting **wp)
{
	store_waiting *w = wp ? *wp : NULL;

	if (!w)
		return;
	pthread_mutex_destroy(&w->lock);
	free(w->list.refs);
	free(w);
	*wp = NULL;
}

static int ref_compare(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(waiting_ref));
}

static cm_err list_add(void *ctx, const proto_record *rec,
		       const uint8_t id[PROTO_ID_LEN])
{
	waiting_list *l = ctx;

	for (size_t i = 0; i < rec->n_media; i++) {
		if (cm_array_reserve((void **)&l->refs, &l->cap, l->n + 1,
				     sizeof(*l->refs)))
			return cm_errf(CM_ERR_NOMEM, "cannot list %zu waiting "
				       "media roots", l->n + 1);
		memcpy(l->refs[l->n].root, rec->media[i].hash, PROTO_HASH_LEN);
		memcpy(l->refs[l->n].id, id, PROTO_ID_LEN);
		l->n++;
	}
	return CM_OK;
}

/* Merges the sorted list `more` into w's list. */
static cm_err list_merge(store_waiting *w, const waiting_list *more)
{
	waiting_list *l = &w->list;
	size_t n = l->n + more->n, i = 0, j = 0, k = 0;
	waiting_ref *merged;

	if (more->n == 0)
		return CM_OK;
	merged = malloc(n * sizeof(*merged));
	if (!merged)
		return cm_errf(CM_ERR_NOMEM, "cannot list %zu waiting media "
			       "roots", n);
	while (i < l->n && j < more->n)
		merged[k++] = ref_compare(&l->refs[i], &more->refs[j]) <= 0
				      ? l->refs[i++]
				      : more->refs[j++];
	while (i < l->n)
		merged[k++] = l->refs[i++];
	while (j < more->n)
		merged[k++] = more->refs[j++];
	free(l->refs);
	l->refs = merged;
	l->n = n;
	l->cap = n;
	return CM_OK;
}

/* Brings w up to the log head: starts over when "mref_seq" moved, then
 * adds the roots of the clips accepted since the last read. */
static cm_err waiting_update(store *s, MDB_txn *txn, store_waiting *w,
			     uint64_t done, uint64_t head)
{
	waiting_list more = {0};
	cm_err err;

	if (!w->valid || w->done != done || w->scanned > head) {
		w->list.n = 0;
		w->done = done;
		w->scanned = done;
		w->valid = true;
	}
	if (w->scanned >= head)
		return CM_OK;
	err = store_log_walk_clips(s, txn, w->scanned, list_add, &more);
	if (!err && more.n > 1)
		qsort(more.refs, more.n, sizeof(*more.refs), ref_compare);
	if (!err)
		err = list_merge(w, &more);
	free(more.refs);
	if (err) {
		w->valid = false;
		return err;
	}
	w->scanned = head;
	return CM_OK;
}

/* Returns the index of the first entry of w's list whose root is not
 * below root. */
static size_t lower_bound(const waiting_list *l,
			  const uint8_t root[PROTO_HASH_LEN])
{
	size_t low = 0, high = l->n;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (memcmp(l->refs[mid].root, root, PROTO_HASH_LEN) < 0)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* A root and the number of waiting clips found to list it. */
typedef struct root_users {
	const uint8_t *root;
	uint64_t count;
} root_users;

static cm_err count_user(void *ctx, const proto_record *rec,
			 const uint8_t id[PROTO_ID_LEN])
{
	root_users *u = ctx;

	(void)id;
	for (size_t i = 0; i < rec->n_media; i++)
		if (memcmp(rec->media[i].hash, u->root, PROTO_HASH_LEN) == 0)
			u->count++;
	return CM_OK;
}

cm_err store_waiting_users(store *s, MDB_txn *txn, uint64_t done,
			   uint64_t head, const uint8_t root[PROTO_HASH_LEN],
			   uint64_t *count)
{
	store_waiting *w = s->waiting;
	const waiting_list *l = &w->list;
	root_users users = {root, 0};
	MDB_val v;
	cm_err err;

	*count = 0;
	/* More clips wait only after "mref_seq" was set back, and only
	 * until the next write catches up. The list is not grown to the
	 * whole log for that. NOTE: until then each count decodes every
	 * waiting clip. */
	if (head - done > CM_MREF_DEFER_MAX) {
		err = store_log_walk_clips(s, txn, done, count_user, &users);
		*count = users.count;
		return err;
	}
	pthread_mutex_lock(&w->lock);
	err = waiting_update(s, txn, w, done, head);
	for (size_t i = lower_bound(l, root); !err && i < l->n; i++) {
		if (memcmp(l->refs[i].root, root, PROTO_HASH_LEN) != 0)
			break;
		err = store_db_get(s, txn, STORE_DB_RECORDS, l->refs[i].id,
				   PROTO_ID_LEN, &v);
		if (err == CM_ERR_NOT_FOUND) {
			err = CM_OK; /* removed while its entry waited */
			continue;
		}
		if (!err)
			(*count)++;
	}
	pthread_mutex_unlock(&w->lock);
	return err;
}
