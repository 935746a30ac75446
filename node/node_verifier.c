/*
 * node_verifier.c - threads that open and verify the records of RECORDS
 * messages while the node thread goes on receiving. So every core
 * verifies, and the node thread waits only when CM_VERIFY_MESSAGES
 * messages are queued.
 *
 * Messages wait in a ring of CM_VERIFY_MESSAGES jobs, indexed by two
 * counters that only grow: the node thread fills job `filled` and
 * collects finished jobs from `collected`, in the order they arrived.
 * The verify threads take one record at a time from the oldest job with
 * records left (`taking`), so that a thread the scheduler holds back
 * leaves the rest to the others. All counters and a job's `next` change
 * under the lock. A thread writes only the output slot of the record it
 * took, and `done`, also counted under the lock, shows the node thread
 * when every slot of a job is written.
 *
 * When a job's last record is done, the finishing thread adds one to an
 * eventfd, which the node's poll loop watches, so that the node thread
 * collects the verdicts at once and hands the valid records to the record
 * writer.
 *
 * A job keeps a reference to the ZeroMQ message its records arrived in
 * (zmq_msg_copy shares the buffer of a message of this size), so nothing
 * is copied.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <zmq.h>

#include "cm_util.h"
#include "node_internal.h"
#include "proto_batch.h"

/* Threads beyond this number do not pay off for one node. */
#define VERIFY_THREADS_MAX 16

/* How much nicer than the node the verify threads run. Verifying is the
 * bulk of a catch-up, so the node thread and the record writer, whose
 * delays hold up everything behind them, run first when they have work.
 * At the node's own priority a catch-up of 200,000 clips on 2 cores was
 * about 7 % slower (bench/RESULTS.md). */
#define VERIFY_NICE 5

typedef struct verify_job {
	node_link *from;                /* NULL once the link dropped */
	uint8_t key[NODE_KEY_LEN];      /* the sender's node key */
	bool has_key;                   /* false for local input */
	bool dropped;                   /* its sender was banned since */
	zmq_msg_t msg;                  /* contains the wire bytes */
	const uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t lens[CM_WIRE_BATCH_MAX];
	size_t n;
	size_t next;                    /* first record not taken */
	size_t done;                    /* records whose verdict is written */
	uint64_t now_ms;
	proto_signed *out;              /* CM_WIRE_BATCH_MAX */
	proto_open_result results[CM_WIRE_BATCH_MAX];
} verify_job;

struct node_verifier {
	pthread_t threads[VERIFY_THREADS_MAX];
	unsigned n_threads;
	int wake_fd;                    /* eventfd, -1 when not open */
	pthread_mutex_t lock;
	pthread_cond_t work;            /* records to take, or stopping */
	pthread_cond_t finished;        /* a job's last record is done */
	bool stopping;
	uint64_t filled;
	uint64_t taking;                /* oldest job with records left */
	uint64_t collected;
	bool handing;                   /* job `collected` is with `done` */
	verify_job jobs[CM_VERIFY_MESSAGES];
};

static verify_job *job_at(node_verifier *v, uint64_t counter)
{
	return &v->jobs[counter % CM_VERIFY_MESSAGES];
}

/* Takes the next record to open, moving `taking` past jobs with none
 * left. Under the lock; false when there is none. */
static bool take(node_verifier *v, verify_job **job, size_t *index)
{
	while (v->taking < v->filled) {
		verify_job *j = job_at(v, v->taking);

		if (j->next < j->n) {
			*job = j;
			*index = j->next++;
			return true;
		}
		v->taking++;
	}
	return false;
}

/* Raises the calling thread's nice value by VERIFY_NICE, up to 19. Best
 * effort: a thread left at the process's priority verifies all the
 * same. */
static void lower_priority(void)
{
	id_t tid = (id_t)gettid();
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (errno != 0)
		return;
	nice = nice + VERIFY_NICE > 19 ? 19 : nice + VERIFY_NICE;
	(void)setpriority(PRIO_PROCESS, tid, nice);
}

static void *verifier_main(void *arg)
{
	node_verifier *v = arg;
	verify_job *job;
	size_t i;

	/* The name shows in top, perf and /proc/PID/task. */
	pthread_setname_np(pthread_self(), "cm-verify");
	lower_priority();
	pthread_mutex_lock(&v->lock);
	for (;;) {
		if (!take(v, &job, &i)) {
			if (v->stopping)
				break;
			pthread_cond_wait(&v->work, &v->lock);
			continue;
		}
		pthread_mutex_unlock(&v->lock);

		cm_err_clear();
		job->results[i].err = proto_record_open(
			job->wires[i], job->lens[i], job->now_ms, &job->out[i]);
		cm_strlcpy(job->results[i].detail,
			   job->results[i].err ? cm_err_detail() : "",
			   sizeof(job->results[i].detail));

		pthread_mutex_lock(&v->lock);
		if (++job->done == job->n) {
			pthread_cond_broadcast(&v->finished);
			node_event_signal(v->wake_fd, "record verifier");
		}
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static cm_err verifier_sync_init(node_verifier *v)
{
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->work, NULL);
	pthread_cond_init(&v->finished, NULL);
	v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->wake_fd < 0)
		return cm_errf(CM_ERR_IO, "eventfd for the record verifier "
			       "failed: %s", strerror(errno));
	return CM_OK;
}

cm_err node_verifier_start(node_verifier **out)
{
	unsigned threads = proto_cpu_count();
	node_verifier *v;
	cm_err err;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return cm_errf(CM_ERR_NOMEM,
			       "cannot allocate the record verifier");
	err = verifier_sync_init(v);
	/* Pages of the arrays are touched only as records arrive. */
	for (size_t i = 0; !err && i < CM_VERIFY_MESSAGES; i++) {
		v->jobs[i].out = malloc(CM_WIRE_BATCH_MAX *
					sizeof(*v->jobs[i].out));
		if (!v->jobs[i].out)
			err = cm_errf(CM_ERR_NOMEM, "cannot allocate %d records "
				      "to verify", CM_WIRE_BATCH_MAX);
	}
	if (threads > VERIFY_THREADS_MAX)
		threads = VERIFY_THREADS_MAX;
	for (unsigned t = 0; !err && t < threads; t++) {
		if (pthread_create(&v->threads[t], NULL, verifier_main, v) != 0)
			err = cm_errf(CM_ERR_IO, "starting record verifier "
				      "thread %u of %u failed", t + 1, threads);
		else
			v->n_threads++;
	}
	if (err)
		node_verifier_stop(&v);
	*out = v;
	return err;
}

void node_verifier_stop(node_verifier **vp)
{
	node_verifier *v = vp ? *vp : NULL;

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stopping = true;
	/* Records not taken yet are dropped: none was acknowledged. */
	for (uint64_t c = v->taking; c < v->filled; c++) {
		verify_job *j = job_at(v, c);

		j->done += j->n - j->next;
		j->next = j->n;
	}
	pthread_cond_broadcast(&v->work);
	pthread_mutex_unlock(&v->lock);
	for (unsigned t = 0; t < v->n_threads; t++)
		pthread_join(v->threads[t], NULL);
	for (uint64_t c = v->collected; c < v->filled; c++)
		zmq_msg_close(&job_at(v, c)->msg);
	for (size_t i = 0; i < CM_VERIFY_MESSAGES; i++)
		free(v->jobs[i].out);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	pthread_cond_destroy(&v->work);
	pthread_cond_destroy(&v->finished);
	pthread_mutex_destroy(&v->lock);
	free(v);
	*vp = NULL;
}

int node_verifier_fd(const node_verifier *v)
{
	return v ? v->wake_fd : -1;
}

bool node_verifier_full(const node_verifier *v)
{
	return v && v->filled == v->collected + CM_VERIFY_MESSAGES;
}

size_t node_verifier_queued(node_verifier *v)
{
	size_t count = 0;

	for (uint64_t c = v ? v->collected : 0; v && c < v->filled; c++)
		count += job_at(v, c)->n;
	return count;
}

/* True when job `c`, which was filled, has every verdict. Under the
 * lock. */
static bool job_finished(node_verifier *v, uint64_t c)
{
	verify_job *j = job_at(v, c);

	return j->done == j->n;
}

/* Hands finished jobs to `done` in the order they arrived, and returns
 * the number of their records. With wait, the jobs before `until` are
 * waited for first. */
static size_t collect(node_verifier *v, uint64_t until, bool wait,
		      node_verified_fn done, void *ctx)
{
	size_t count = 0;

	node_event_drain(v->wake_fd, "record verifier");
	for (;;) {
		verify_job *j;

		pthread_mutex_lock(&v->lock);
		if (wait)
			while (v->collected < until &&
			       !job_finished(v, v->collected))
				pthread_cond_wait(&v->finished, &v->lock);
		if (v->collected == v->filled ||
		    !job_finished(v, v->collected)) {
			pthread_mutex_unlock(&v->lock);
			return count;
		}
		j = job_at(v, v->collected);
		pthread_mutex_unlock(&v->lock);

		/* node_verifier_drop counted the records of a dropped job. */
		if (!j->dropped) {
			v->handing = true;
			done(ctx, j->from, j->has_key ? j->key : NULL,
			     &j->msg, j->wires, j->lens, j->out, j->results,
			     j->n);
			v->handing = false;
		}
		count += j->n;
		zmq_msg_close(&j->msg);

		pthread_mutex_lock(&v->lock);
		v->collected++;
		pthread_mutex_unlock(&v->lock);
	}
}

size_t node_verifier_collect(node_verifier *v, node_verified_fn done,
			     void *ctx)
{
	return collect(v, 0, false, done, ctx);
}

/* Fills job j with the records of m, which lie inside rx_msg. False when
 * a record lies outside it or the message cannot be shared. */
static bool job_fill(verify_job *j, zmq_msg_t *rx_msg,
		     const proto_wire_msg *m)
{
	const uint8_t *start = zmq_msg_data(rx_msg), *data;
	size_t size = zmq_msg_size(rx_msg);

	for (size_t i = 0; i < m->n_records; i++) {
		const uint8_t *wire = m->records[i];

		if (wire < start || m->record_lens[i] > size ||
		    (size_t)(wire - start) > size - m->record_lens[i])
			return false;
	}
	zmq_msg_init(&j->msg);
	if (zmq_msg_copy(&j->msg, rx_msg) != 0) {
		zmq_msg_close(&j->msg);
		return false;
	}
	data = zmq_msg_data(&j->msg);
	for (size_t i = 0; i < m->n_records; i++) {
		j->wires[i] = data + (m->records[i] - start);
		j->lens[i] = m->record_lens[i];
	}
	j->n = m->n_records;
	j->next = 0;
	j->done = 0;
	return true;
}

cm_err node_verifier_put(node_verifier *v, node_link *from, void *rx_msg,
			 const proto_wire_msg *m, uint64_t now_ms,
			 node_verified_fn done, void *ctx)
{
	verify_job *j;

	if (!v || !rx_msg)
		return cm_errf(CM_ERR_USAGE, "no verify threads or message");
	if (m->n_records == 0)
		return CM_OK;
	if (m->n_records > CM_WIRE_BATCH_MAX)
		return cm_errf(CM_ERR_USAGE, "%zu records in one message, at "
			       "most %d", m->n_records, CM_WIRE_BATCH_MAX);
	/* A full ring waits for its oldest job, which the threads are
	 * verifying, and hands it on. */
	if (node_verifier_full(v))
		collect(v, v->collected + 1, true, done, ctx);

	j = job_at(v, v->filled);
	if (!job_fill(j, rx_msg, m))
		return cm_errf(CM_ERR_NOMEM, "cannot keep a message of %zu "
			       "records to verify", m->n_records);
	j->from = from;
	j->has_key = from != NULL;
	if (from)
		memcpy(j->key, from->key, NODE_KEY_LEN);
	j->dropped = false;
	j->now_ms = now_ms;
	pthread_mutex_lock(&v->lock);
	v->filled++;
	pthread_cond_broadcast(&v->work);
	pthread_mutex_unlock(&v->lock);
	return CM_OK;
}

void node_verifier_flush(node_verifier *v, const node_link *from,
			 node_verified_fn done, void *ctx)
{
	uint64_t until = v->collected;

	for (uint64_t c = v->collected; c < v->filled; c++)
		if (job_at(v, c)->from == from)
			until = c + 1;
	if (until > v->collected)
		collect(v, until, true, done, ctx);
}

void node_verifier_forget(node_verifier *v, const node_link *from)
{
	if (!v)
		return;
	for (uint64_t c = v->collected; c < v->filled; c++)
		if (job_at(v, c)->from == from)
			job_at(v, c)->from = NULL;
}

size_t node_verifier_drop(node_verifier *v, const uint8_t key[NODE_KEY_LEN])
{
	size_t count = 0;
	uint64_t first;

	if (!v)
		return 0;
	pthread_mutex_lock(&v->lock);
	/* The job being handed on is the caller's own. */
	first = v->collected + (v->handing ? 1 : 0);
	for (uint64_t c = first; c < v->filled; c++) {
		verify_job *j = job_at(v, c);

		if (j->dropped || !j->has_key ||
		    memcmp(j->key, key, NODE_KEY_LEN) != 0)
			continue;
		/* Records that a thread took finish; the rest are skipped. */
		j->dropped = true;
		j->done += j->n - j->next;
		j->next = j->n;
		count += j->n;
		if (j->done == j->n) {
			pthread_cond_broadcast(&v->finished);
			node_event_signal(v->wake_fd, "record verifier");
		}
	}
	pthread_mutex_unlock(&v->lock);
	return count;
}
