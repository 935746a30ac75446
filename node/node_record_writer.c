/*
 * node_record_writer.c - a thread that stores verified records in write
 * transactions spanning many RECORDS messages, so that LMDB's commits
 * overlap with verifying the next messages on the node thread, and one
 * synced commit serves up to CM_INGEST_BATCH_MAX records.
 *
 * Records wait in a ring of RING_BATCHES batches, indexed by three
 * counters that only grow. The node thread appends the records of each
 * message to the open batch, batch `sealed`, which exists while sealed <
 * collected + RING_BATCHES. A batch is sealed (closed to appends and
 * handed to the writer thread) when the next message might not fit, or
 * by the writer thread once its first record waited CM_INGEST_BATCH_MS.
 * So a lone record waits at most that long plus a commit, while during a
 * catch-up the open batch keeps filling as long as the writer is busy
 * with the one before. The writer thread stores batches [written,
 * sealed), one transaction each, and the node thread collects
 * [collected, written). All three counters change under the lock.
 *
 * Batch contents need no lock beyond that, because each range has one
 * owner. The node thread appends to the open batch under the lock and
 * reads [collected, written). The writer thread reads and writes the
 * records and results of [written, sealed).
 *
 * After each transaction the writer thread adds one to an eventfd, which
 * the node's poll loop watches, so that the node thread collects the
 * results at once and counts the records stored only after their commit.
 *
 * Records are not copied out of the ZeroMQ message they arrived in: each
 * message's group keeps a reference to it (zmq_msg_copy shares the buffer
 * of a message of this size) until the node thread collects the group.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

/* Batches in the ring: one being written, one sealed and waiting, one
 * open. */
#define RING_BATCHES 3

/* The records of one message, and the message that contains their wire
 * bytes. Node thread only. */
typedef struct record_group {
	node_link *from;                /* NULL once the link dropped */
	uint8_t key[NODE_KEY_LEN];      /* the sender's node key */
	bool has_key;                   /* false for local input */
	zmq_msg_t msg;
	size_t first;
	size_t count;
} record_group;

typedef struct record_batch {
	proto_signed *recs;             /* CM_INGEST_BATCH_MAX */
	cm_err *results;                /* CM_INGEST_BATCH_MAX */
	record_group *groups;           /* CM_INGEST_BATCH_MAX */
	size_t n_recs;
	size_t n_groups;
	uint64_t seal_at;               /* monotonic ms */
	cm_err err;                     /* of the transaction */
	char detail[CM_ERR_DETAIL_MAX]; /* cm_err_detail() of err */
} record_batch;

struct node_record_writer {
	store *st;
	pthread_t thread;
	bool started;
	int wake_fd;                    /* eventfd, -1 when not open */
	pthread_mutex_t lock;
	pthread_cond_t queued;          /* records appended, or stopping */
	pthread_cond_t written_cond;    /* written grew */
	bool stopping;
	uint64_t sealed;
	uint64_t written;
	uint64_t collected;
	record_batch ring[RING_BATCHES];
};

static record_batch *batch_at(node_record_writer *w, uint64_t counter)
{
	return &w->ring[counter % RING_BATCHES];
}

/* Returns the open batch, or NULL when every batch of the ring is sealed
 * and not yet collected. Under the lock. */
static record_batch *open_batch(node_record_writer *w)
{
	if (w->sealed == w->collected + RING_BATCHES)
		return NULL;
	return batch_at(w, w->sealed);
}

static void seal(node_record_writer *w)
{
	w->sealed++;
	pthread_cond_signal(&w->queued);
}

static void store_batch(node_record_writer *w, record_batch *b)
{
	cm_err_clear();
	b->err = store_put_batch(w->st, b->recs, b->n_recs, b->results);
	cm_strlcpy(b->detail, b->err ? cm_err_detail() : "",
		   sizeof(b->detail));
}

/* Waits on `queued` until the monotonic time ms at the latest. */
static void wait_until(node_record_writer *w, uint64_t ms)
{
	uint64_t now = cm_mono_ms();
	struct timespec ts;

	if (ms <= now)
		return;
	/* `queued` waits on CLOCK_MONOTONIC (writer_sync_init). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)((ms - now) / 1000);
	ts.tv_nsec += (long)((ms - now) % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&w->queued, &w->lock, &ts);
}

/* Stores sealed batches and seals the open one when it is due, until
 * stopping is set and every appended record is stored. */
static void *writer_main(void *arg)
{
	node_record_writer *w = arg;

	/* The name shows in top, perf and /proc/PID/task. */
	pthread_setname_np(pthread_self(), "cm-records");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		record_batch *b;

		if (w->written < w->sealed) {
			b = batch_at(w, w->written);
			pthread_mutex_unlock(&w->lock);

			store_batch(w, b);

			pthread_mutex_lock(&w->lock);
			w->written++;
			pthread_cond_broadcast(&w->written_cond);
			node_event_signal(w->wake_fd, "record writer");
			continue;
		}
		b = open_batch(w);
		if (b && b->n_recs > 0 &&
		    (w->stopping || cm_mono_ms() >= b->seal_at)) {
			seal(w);
			continue;
		}
		if (w->stopping)
			break;
		if (b && b->n_recs > 0)
			wait_until(w, b->seal_at);
		else
			pthread_cond_wait(&w->queued, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static cm_err batch_alloc(record_batch *b)
{
	/* Pages of the arrays are touched only as records arrive, so a node
	 * that receives few records keeps little of them resident. */
	b->recs = malloc(CM_INGEST_BATCH_MAX * sizeof(*b->recs));
	b->results = malloc(CM_INGEST_BATCH_MAX * sizeof(*b->results));
	b->groups = malloc(CM_INGEST_BATCH_MAX * sizeof(*b->groups));
	if (!b->recs || !b->results || !b->groups)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a batch of %d "
			       "records", CM_INGEST_BATCH_MAX);
	return CM_OK;
}

/* Initialises the lock, the condition variables (`queued` on the
 * monotonic clock) and the eventfd. */
static cm_err writer_sync_init(node_record_writer *w)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->queued, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&w->written_cond, NULL);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0)
		return cm_errf(CM_ERR_IO, "eventfd for the record writer "
			       "failed: %s", strerror(errno));
	return CM_OK;
}

cm_err node_record_writer_start(store *st, node_record_writer **out)
{
	node_record_writer *w;
	cm_err err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return cm_errf(CM_ERR_NOMEM,
			       "cannot allocate the record writer");
	w->st = st;
	err = writer_sync_init(w);
	for (size_t i = 0; !err && i < RING_BATCHES; i++)
		err = batch_alloc(&w->ring[i]);
	if (err)
		goto out;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		err = cm_errf(CM_ERR_IO, "starting the record writer thread "
			      "failed");
		goto out;
	}
	w->started = true;
out:
	if (err)
		node_record_writer_stop(&w);
	*out = w;
	return err;
}

/* Releases the messages of batch b's groups and empties it. */
static void batch_clear(record_batch *b)
{
	for (size_t i = 0; i < b->n_groups; i++)
		zmq_msg_close(&b->groups[i].msg);
	b->n_groups = 0;
	b->n_recs = 0;
}

void node_record_writer_stop(node_record_writer **wp)
{
	node_record_writer *w = wp ? *wp : NULL;

	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		pthread_cond_signal(&w->queued);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	/* The thread stored every appended record; these were not
	 * collected. */
	for (size_t i = 0; i < RING_BATCHES; i++) {
		batch_clear(&w->ring[i]);
		free(w->ring[i].recs);
		free(w->ring[i].results);
		free(w->ring[i].groups);
	}
	pthread_cond_destroy(&w->queued);
	pthread_cond_destroy(&w->written_cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	*wp = NULL;
}

int node_record_writer_fd(const node_record_writer *w)
{
	return w ? w->wake_fd : -1;
}

size_t node_record_writer_queued(const node_record_writer *w)
{
	size_t count = 0;

	/* Only the node thread changes n_recs: it appends and clears. */
	for (size_t i = 0; w && i < RING_BATCHES; i++)
		count += w->ring[i].n_recs;
	return count;
}

/* Points g->msg at the message that contains the wire bytes of recs:
 * shares rx_msg when every record lies in it, else copies the records
 * into a message of its own. Sets each record's wire pointer into
 * g->msg. */
static bool group_take(record_group *g, zmq_msg_t *rx_msg,
		       proto_signed *recs, size_t count)
{
	const uint8_t *start = rx_msg ? zmq_msg_data(rx_msg) : NULL;
	size_t size = rx_msg ? zmq_msg_size(rx_msg) : 0;
	bool inside = rx_msg != NULL;
	size_t total = 0;
	uint8_t *data;

	for (size_t i = 0; i < count; i++) {
		const uint8_t *wire = recs[i].wire;

		inside = inside && wire >= start && recs[i].wire_len <= size &&
			 (size_t)(wire - start) <= size - recs[i].wire_len;
		total += recs[i].wire_len;
	}
	zmq_msg_init(&g->msg);
	if (inside && zmq_msg_copy(&g->msg, rx_msg) == 0) {
		data = zmq_msg_data(&g->msg);
		for (size_t i = 0; i < count; i++)
			recs[i].wire = data + (recs[i].wire - start);
		return true;
	}
	zmq_msg_close(&g->msg);
	if (zmq_msg_init_size(&g->msg, total ? total : 1) != 0)
		return false;
	data = zmq_msg_data(&g->msg);
	for (size_t i = 0; i < count; i++) {
		memcpy(data, recs[i].wire, recs[i].wire_len);
		recs[i].wire = data;
		data += recs[i].wire_len;
	}
	return true;
}

/* Waits until the writer stored a batch that is not collected yet.
 * Under the lock; the caller collects it. */
static void wait_written(node_record_writer *w)
{
	while (w->written == w->collected)
		pthread_cond_wait(&w->written_cond, &w->lock);
}

/* Returns the open batch with room for count more records, sealing a
 * fuller one and collecting a stored one as needed. Returns with the
 * lock held. */
static record_batch *batch_with_room(node_record_writer *w, size_t count,
				     node_record_settle_fn settle, void *ctx)
{
	record_batch *b;

	pthread_mutex_lock(&w->lock);
	while ((b = open_batch(w)) == NULL ||
	       b->n_recs + count > CM_INGEST_BATCH_MAX) {
		if (b) {
			seal(w);
			continue;
		}
		wait_written(w);
		pthread_mutex_unlock(&w->lock);
		node_record_writer_collect(w, settle, ctx);
		pthread_mutex_lock(&w->lock);
	}
	return b;
}

cm_err node_record_writer_put(node_record_writer *w, node_link *from,
			      void *rx_msg, const proto_signed *recs,
			      size_t count, node_record_settle_fn settle,
			      void *ctx)
{
	record_batch *b;
	record_group *g;

	if (count == 0)
		return CM_OK;
	if (count > CM_WIRE_BATCH_MAX)
		return cm_errf(CM_ERR_USAGE, "%zu records in one group, at "
			       "most %d", count, CM_WIRE_BATCH_MAX);
	b = batch_with_room(w, count, settle, ctx);
	g = &b->groups[b->n_groups];
	memcpy(b->recs + b->n_recs, recs, count * sizeof(*recs));
	if (!group_take(g, rx_msg, b->recs + b->n_recs, count)) {
		pthread_mutex_unlock(&w->lock);
		return cm_errf(CM_ERR_NOMEM, "cannot keep %zu records for the "
			       "writer", count);
	}
	g->from = from;
	g->has_key = from != NULL;
	if (from)
		memcpy(g->key, from->key, NODE_KEY_LEN);
	g->first = b->n_recs;
	g->count = count;
	if (b->n_recs == 0)
		b->seal_at = cm_mono_ms() + CM_INGEST_BATCH_MS;
	b->n_recs += count;
	b->n_groups++;
	/* Seal at once when a full message might not fit any more, so that
	 * the writer does not wait for the time bound. */
	if (b->n_recs + CM_WIRE_BATCH_MAX > CM_INGEST_BATCH_MAX)
		seal(w);
	else
		pthread_cond_signal(&w->queued);
	pthread_mutex_unlock(&w->lock);
	return CM_OK;
}

size_t node_record_writer_collect(node_record_writer *w,
				  node_record_settle_fn settle, void *ctx)
{
	uint64_t written, first;
	size_t count = 0;

	node_event_drain(w->wake_fd, "record writer");
	pthread_mutex_lock(&w->lock);
	first = w->collected;
	written = w->written;
	pthread_mutex_unlock(&w->lock);

	for (uint64_t i = first; i < written; i++) {
		record_batch *b = batch_at(w, i);

		for (size_t k = 0; k < b->n_groups; k++) {
			record_group *g = &b->groups[k];

			settle(ctx, g->from, g->has_key ? g->key : NULL,
			       b->recs + g->first,
			       b->results + g->first, g->count, b->err,
			       b->detail);
			count += g->count;
		}
		batch_clear(b);
	}

	pthread_mutex_lock(&w->lock);
	w->collected = written;
	pthread_mutex_unlock(&w->lock);
	return count;
}

/* True when a record of link `from` is queued and not yet collected.
 * Node thread only. */
static bool holds_link(node_record_writer *w, const node_link *from)
{
	for (size_t i = 0; i < RING_BATCHES; i++) {
		const record_batch *b = &w->ring[i];

		for (size_t k = 0; k < b->n_groups; k++)
			if (b->groups[k].from == from)
				return true;
	}
	return false;
}

void node_record_writer_flush(node_record_writer *w, const node_link *from,
			      node_record_settle_fn settle, void *ctx)
{
	record_batch *b;

	if (!holds_link(w, from))
		return;
	pthread_mutex_lock(&w->lock);
	b = open_batch(w);
	if (b && b->n_recs > 0)
		seal(w);
	while (w->written < w->sealed)
		pthread_cond_wait(&w->written_cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	node_record_writer_collect(w, settle, ctx);
}

void node_record_writer_forget(node_record_writer *w, const node_link *from)
{
	if (!w)
		return;
	for (size_t i = 0; i < RING_BATCHES; i++) {
		record_batch *b = &w->ring[i];

		for (size_t k = 0; k < b->n_groups; k++)
			if (b->groups[k].from == from)
				b->groups[k].from = NULL;
	}
}
