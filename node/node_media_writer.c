/*
 * node_media_writer.c - two threads that check fetched media chunks
 * against their expected BLAKE2b hashes and store the valid ones. So
 * neither the hashing nor LMDB's commits (copying the dirty pages into
 * the file and syncing it) run on the node thread.
 *
 * The slots form a ring of CM_MEDIA_WRITE_SLOTS chunks, indexed by four
 * counters that only grow. The node thread fills slot `filled`. The
 * hasher thread hashes the slots from `checked` up to `filled`, one at a
 * time, and marks each valid or not. The writer thread stores the valid
 * slots from `written` up to `checked`, at most CM_MEDIA_WRITE_BATCH
 * slots in one write transaction, and records each slot's result. The
 * node thread collects the results from `collected` up to `written`. So
 * collected <= written <= checked <= filled <= collected +
 * CM_MEDIA_WRITE_SLOTS. The node thread alone changes `filled`, the
 * hasher alone `checked` and the writer alone `written`, each under the
 * lock; only the node thread uses `collected`. Slot contents need no
 * lock, because each range has one owner: the node thread fills slot
 * `filled` and reads [collected, written), the hasher reads and marks
 * [checked, filled), and the writer reads [written, checked).
 *
 * Two threads instead of one, because a commit mostly waits for its
 * sync: while the writer commits one batch, the hasher checks the next.
 * A chunk that fails its check is never stored; its result
 * NODE_WRITE_BAD reaches the node thread in queue order like the others.
 *
 * After each transaction the writer thread adds one to an eventfd, which
 * the node's poll loop watches, so that the node thread collects the
 * results at once and marks the chunks stored only after their commit.
 *
 * A slot does not copy its chunk: it holds a reference to the ZeroMQ
 * message that the chunk arrived in (zmq_msg_copy shares the buffer of a
 * message of this size), and the node thread closes it on collecting.
 *
 * The writer thread also stores the fetch backoffs that the node thread
 * queues (node_media_writer_backoff), all that wait in one transaction.
 * A write transaction waits for the record writer's commit and then
 * syncs. On the node thread, such waits stopped it for up to 2 s during
 * a catch-up.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.h>

#include "cm_log.h"
#include "node_internal.h"
#include "proto_media.h"

typedef struct write_slot {
	uint8_t root[PROTO_HASH_LEN];
	uint8_t hash[PROTO_HASH_LEN];   /* expected BLAKE2b of the chunk */
	uint8_t peer[NODE_KEY_LEN];     /* sent the chunk */
	uint64_t index;
	zmq_msg_t msg;                  /* contains the chunk */
	size_t offset;                  /* of the chunk in msg */
	size_t len;
	bool valid;                     /* set by the hasher thread */
	node_write_result result;       /* set by the writer thread */
} write_slot;

/* Fetch backoffs that the writer thread has not stored yet. */
#define WRITER_BACKOFFS 64

struct node_media_writer {
	store *st;
	pthread_t hasher;
	pthread_t writer;
	bool hasher_started;
	bool writer_started;
	int wake_fd;                    /* eventfd, -1 when not open */
	pthread_mutex_t lock;
	pthread_cond_t queued;          /* filled grew, or stopping */
	pthread_cond_t checked_more;    /* checked grew, a backoff was
					 * queued, or hasher_done */
	bool stopping;
	bool hasher_done;               /* the hasher checked every slot
					 * and ended, or never started */
	uint64_t filled;
	uint64_t checked;
	uint64_t written;
	uint64_t collected;
	write_slot slots[CM_MEDIA_WRITE_SLOTS];
	store_backoff backoffs[WRITER_BACKOFFS]; /* waiting to be stored, one
						  * per root */
	size_t n_backoffs;
};

static write_slot *slot_at(node_media_writer *w, uint64_t counter)
{
	return &w->slots[counter % CM_MEDIA_WRITE_SLOTS];
}

static const uint8_t *slot_data(write_slot *s)
{
	return (const uint8_t *)zmq_msg_data(&s->msg) + s->offset;
}

/* Hashes the chunks of queued slots until stopping is set and every
 * queued slot is checked. */
static void *hasher_main(void *arg)
{
	node_media_writer *w = arg;

	/* The name shows in top, perf and /proc/PID/task. */
	pthread_setname_np(pthread_self(), "cm-chunk-hash");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		uint8_t hash[PROTO_HASH_LEN];
		write_slot *s;

		while (w->checked == w->filled && !w->stopping)
			pthread_cond_wait(&w->queued, &w->lock);
		if (w->checked == w->filled)
			break;
		s = slot_at(w, w->checked);
		pthread_mutex_unlock(&w->lock);

		proto_chunk_hash(slot_data(s), s->len, hash);
		s->valid = memcmp(hash, s->hash, PROTO_HASH_LEN) == 0;

		pthread_mutex_lock(&w->lock);
		w->checked++;
		pthread_cond_signal(&w->checked_more);
	}
	w->hasher_done = true;
	pthread_cond_signal(&w->checked_more);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Stores the valid chunks of slots [first, first + count) in one write
 * transaction and sets the results of all of them. */
static void store_slots(node_media_writer *w, uint64_t first, size_t count)
{
	uint8_t hashes[CM_MEDIA_WRITE_BATCH][PROTO_HASH_LEN];
	const uint8_t *data[CM_MEDIA_WRITE_BATCH];
	size_t lens[CM_MEDIA_WRITE_BATCH];
	bool listed[CM_MEDIA_WRITE_BATCH];
	size_t n_valid = 0;
	cm_err err = CM_OK;

	for (size_t i = 0; i < count; i++) {
		write_slot *s = slot_at(w, first + i);

		if (!s->valid)
			continue;
		memcpy(hashes[n_valid], s->hash, PROTO_HASH_LEN);
		data[n_valid] = slot_data(s);
		lens[n_valid] = s->len;
		n_valid++;
	}
	if (n_valid > 0)
		err = store_fetched_chunks_put(
			w->st, n_valid,
			(const uint8_t (*)[PROTO_HASH_LEN])hashes, data, lens,
			listed);
	if (err)
		cm_error(NODE_LOG, "storing %zu chunk%s failed: %s (%s)",
			 n_valid, n_valid == 1 ? "" : "s", cm_err_name(err),
			 cm_err_detail());

	for (size_t i = 0, v = 0; i < count; i++) {
		write_slot *s = slot_at(w, first + i);

		if (!s->valid)
			s->result = NODE_WRITE_BAD;
		else if (err)
			s->result = NODE_WRITE_FAILED;
		else
			s->result = listed[v] ? NODE_WRITE_STORED
					      : NODE_WRITE_UNLISTED;
		if (s->valid)
			v++;
	}
}

/* Stores the queued backoffs in one transaction. Called and returns
 * with the lock held, which it drops while it writes. */
static void store_backoffs(node_media_writer *w)
{
	store_backoff batch[WRITER_BACKOFFS];
	size_t n = w->n_backoffs, n_kept = 0;
	cm_err err;

	memcpy(batch, w->backoffs, n * sizeof(batch[0]));
	pthread_mutex_unlock(&w->lock);
	err = store_media_backoffs_set(w->st, batch, n);
	if (err)
		cm_error(NODE_LOG, "storing %zu fetch backoffs failed: %s (%s)",
			 n, cm_err_name(err), cm_err_detail());
	pthread_mutex_lock(&w->lock);
	/* Entries queued meanwhile came after the batch. A root of the
	 * batch queued again overwrote its entry, which is then kept. */
	for (size_t i = 0; i < w->n_backoffs; i++) {
		const store_backoff *b = &w->backoffs[i];
		bool stored = i < n && b->until_ms == batch[i].until_ms &&
			      b->failures == batch[i].failures &&
			      memcmp(b->root, batch[i].root,
				     PROTO_HASH_LEN) == 0;

		if (!stored)
			w->backoffs[n_kept++] = w->backoffs[i];
	}
	w->n_backoffs = n_kept;
}

/* Stores checked slots and queued backoffs until the hasher ended and
 * every checked slot and backoff is stored. */
static void *writer_main(void *arg)
{
	node_media_writer *w = arg;

	pthread_setname_np(pthread_self(), "cm-chunk-write");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		uint64_t first;
		size_t count;

		while (w->written == w->checked && w->n_backoffs == 0 &&
		       !w->hasher_done)
			pthread_cond_wait(&w->checked_more, &w->lock);
		if (w->n_backoffs > 0) {
			store_backoffs(w);
			continue;
		}
		if (w->written == w->checked)
			break;
		first = w->written;
		count = (size_t)(w->checked - w->written);
		if (count > CM_MEDIA_WRITE_BATCH)
			count = CM_MEDIA_WRITE_BATCH;
		pthread_mutex_unlock(&w->lock);

		store_slots(w, first, count);

		pthread_mutex_lock(&w->lock);
		w->written += count;
		node_event_signal(w->wake_fd, "chunk writer");
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

cm_err node_media_writer_start(store *st, node_media_writer **out)
{
	node_media_writer *w;
	cm_err err = CM_OK;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return cm_errf(CM_ERR_NOMEM,
			       "cannot allocate the chunk writer");
	w->st = st;
	w->wake_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->queued, NULL);
	pthread_cond_init(&w->checked_more, NULL);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0) {
		err = cm_errf(CM_ERR_IO, "eventfd for the chunk writer failed: "
			      "%s", strerror(errno));
		goto out;
	}
	if (pthread_create(&w->writer, NULL, writer_main, w) != 0) {
		err = cm_errf(CM_ERR_IO, "starting the chunk writer thread "
			      "failed");
		goto out;
	}
	w->writer_started = true;
	if (pthread_create(&w->hasher, NULL, hasher_main, w) != 0) {
		err = cm_errf(CM_ERR_IO, "starting the chunk hasher thread "
			      "failed");
		goto out;
	}
	w->hasher_started = true;
out:
	if (err)
		node_media_writer_stop(&w);
	*out = w;
	return err;
}

void node_media_writer_stop(node_media_writer **wp)
{
	node_media_writer *w = wp ? *wp : NULL;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	if (!w->hasher_started)
		w->hasher_done = true;
	pthread_cond_signal(&w->queued);
	pthread_cond_signal(&w->checked_more);
	pthread_mutex_unlock(&w->lock);
	if (w->hasher_started)
		pthread_join(w->hasher, NULL);
	if (w->writer_started)
		pthread_join(w->writer, NULL);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	/* The threads checked and stored every queued slot; these were not
	 * collected. */
	for (; w->collected < w->filled; w->collected++)
		zmq_msg_close(&slot_at(w, w->collected)->msg);
	pthread_cond_destroy(&w->checked_more);
	pthread_cond_destroy(&w->queued);
	pthread_mutex_destroy(&w->lock);
	free(w);
	*wp = NULL;
}

int node_media_writer_fd(const node_media_writer *w)
{
	return w ? w->wake_fd : -1;
}

size_t node_media_writer_free(const node_media_writer *w)
{
	return CM_MEDIA_WRITE_SLOTS - (size_t)(w->filled - w->collected);
}

/* Points slot s at the chunk data[len]: shares rx_msg when data lies in
 * it, else copies the bytes into a message of its own. */
static bool slot_take(write_slot *s, zmq_msg_t *rx_msg, const uint8_t *data,
		      size_t len)
{
	const uint8_t *start;

	if (!rx_msg) {
		if (zmq_msg_init_size(&s->msg, len) != 0)
			return false;
		memcpy(zmq_msg_data(&s->msg), data, len);
		s->offset = 0;
		return true;
	}
	zmq_msg_init(&s->msg);
	start = zmq_msg_data(rx_msg);
	if (data < start || len > zmq_msg_size(rx_msg) ||
	    (size_t)(data - start) > zmq_msg_size(rx_msg) - len ||
	    zmq_msg_copy(&s->msg, rx_msg) != 0) {
		zmq_msg_close(&s->msg);
		return false;
	}
	s->offset = (size_t)(data - start);
	return true;
}

bool node_media_writer_put(node_media_writer *w,
			   const uint8_t root[PROTO_HASH_LEN], uint64_t index,
			   const uint8_t hash[PROTO_HASH_LEN],
			   const uint8_t peer[NODE_KEY_LEN], void *rx_msg,
			   const uint8_t *data, size_t len)
{
	write_slot *s;

	if (node_media_writer_free(w) == 0 || len > CM_CHUNK_SIZE)
		return false;
	s = slot_at(w, w->filled);
	if (!slot_take(s, rx_msg, data, len))
		return false;
	memcpy(s->root, root, PROTO_HASH_LEN);
	memcpy(s->hash, hash, PROTO_HASH_LEN);
	memcpy(s->peer, peer, NODE_KEY_LEN);
	s->index = index;
	s->valid = false;
	s->len = len;

	pthread_mutex_lock(&w->lock);
	w->filled++;
	pthread_cond_signal(&w->queued);
	pthread_mutex_unlock(&w->lock);
	return true;
}

size_t node_media_writer_collect(node_media_writer *w,
				 node_media_settle_fn settle, void *ctx)
{
	uint64_t written;
	size_t count = 0;

	node_event_drain(w->wake_fd, "chunk writer");
	pthread_mutex_lock(&w->lock);
	written = w->written;
	pthread_mutex_unlock(&w->lock);

	for (; w->collected < written; w->collected++, count++) {
		write_slot *s = slot_at(w, w->collected);

		settle(ctx, s->root, s->index, s->hash, s->peer, s->result);
		zmq_msg_close(&s->msg);
	}
	return count;
}

/* Returns the queued entry of root, or NULL. Under the lock. */
static store_backoff *backoff_find(node_media_writer *w,
				   const uint8_t root[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < w->n_backoffs; i++)
		if (memcmp(w->backoffs[i].root, root, PROTO_HASH_LEN) == 0)
			return &w->backoffs[i];
	return NULL;
}

bool node_media_writer_backoff(node_media_writer *w,
			       const uint8_t root[PROTO_HASH_LEN],
			       uint64_t until_ms, uint32_t failures)
{
	store_backoff *e;
	bool queued = false;

	if (!w)
		return false;
	pthread_mutex_lock(&w->lock);
	e = backoff_find(w, root);
	if (!e && w->n_backoffs < WRITER_BACKOFFS && !w->stopping)
		e = &w->backoffs[w->n_backoffs++];
	if (e) {
		memcpy(e->root, root, PROTO_HASH_LEN);
		e->until_ms = until_ms;
		e->failures = failures;
		pthread_cond_signal(&w->checked_more);
		queued = true;
	}
	pthread_mutex_unlock(&w->lock);
	return queued;
}

bool node_media_writer_backoff_get(node_media_writer *w,
				   const uint8_t root[PROTO_HASH_LEN],
				   uint64_t *until_ms, uint32_t *failures)
{
	store_backoff *e;

	if (!w)
		return false;
	pthread_mutex_lock(&w->lock);
	e = backoff_find(w, root);
	if (e) {
		*until_ms = e->until_ms;
		*failures = e->failures;
	}
	pthread_mutex_unlock(&w->lock);
	return e != NULL;
}

size_t node_media_writer_pending(const node_media_writer *w)
{
	return (size_t)(w->filled - w->collected);
}
