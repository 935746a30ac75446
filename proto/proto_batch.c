#define _GNU_SOURCE /* pthread_setname_np */
#include "proto_batch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"

/* Threads beyond this number do not pay off for batches of records. */
#define MAX_THREADS 16

/*
 * The work shared by the threads of one proto_open_batch call. Each
 * thread takes the next unopened record from `next`, so a thread that
 * the scheduler holds back (the node's store writer runs beside the
 * verifiers on the same cores) leaves its records to the others instead
 * of making them wait at the join.
 */
typedef struct batch_work {
	const uint8_t *const *wires;
	const size_t *lens;
	size_t n;
	_Atomic size_t next;
	uint64_t now_ms;
	proto_signed *out;
	proto_open_result *results;
} batch_work;

static void *open_records(void *arg)
{
	batch_work *w = arg;
	size_t i;

	while ((i = atomic_fetch_add(&w->next, 1)) < w->n) {
		proto_open_result *res = &w->results[i];

		cm_err_clear();
		res->err = proto_record_open(w->wires[i], w->lens[i],
					     w->now_ms, &w->out[i]);
		cm_strlcpy(res->detail, res->err ? cm_err_detail() : "",
			   sizeof(res->detail));
	}
	return NULL;
}

void proto_open_batch(const uint8_t *const *wires, const size_t *lens,
		      size_t n, uint64_t now_ms, unsigned threads,
		      proto_signed *out, proto_open_result *results)
{
	batch_work work = {wires, lens, n, 0, now_ms, out, results};
	pthread_t ids[MAX_THREADS];
	bool started[MAX_THREADS] = {false};

	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (threads > n)
		threads = (unsigned)n;
	/* The caller's thread opens records too; a thread that cannot be
	 * started leaves its share to the others. */
	for (unsigned t = 1; t < threads; t++) {
		started[t] = pthread_create(&ids[t], NULL, open_records,
					    &work) == 0;
		/* The name shows in top, perf and /proc/PID/task. */
		if (started[t])
			pthread_setname_np(ids[t], "cm-verify");
	}
	open_records(&work);
	for (unsigned t = 1; t < threads; t++)
		if (started[t])
			pthread_join(ids[t], NULL);
}

unsigned proto_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (unsigned)n;
}
