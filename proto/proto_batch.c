#include "proto_batch.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"

/* Threads beyond this number do not pay off for batches of records. */
#define MAX_THREADS 16

typedef struct batch_range {
	const uint8_t *const *wires;
	const size_t *lens;
	size_t begin, end;
	uint64_t now_ms;
	proto_signed *out;
	proto_open_result *results;
} batch_range;

static void *open_range(void *arg)
{
	batch_range *r = arg;

	for (size_t i = r->begin; i < r->end; i++) {
		proto_open_result *res = &r->results[i];

		cm_err_clear();
		res->err = proto_record_open(r->wires[i], r->lens[i],
					     r->now_ms, &r->out[i]);
		cm_strlcpy(res->detail, res->err ? cm_err_detail() : "",
			   sizeof(res->detail));
	}
	return NULL;
}

void proto_open_batch(const uint8_t *const *wires, const size_t *lens,
		      size_t n, uint64_t now_ms, unsigned threads,
		      proto_signed *out, proto_open_result *results)
{
	batch_range ranges[MAX_THREADS];
	pthread_t ids[MAX_THREADS];
	bool started[MAX_THREADS] = {false};
	size_t per;

	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (threads > n)
		threads = (unsigned)n;
	if (threads <= 1) {
		open_range(&(batch_range){wires, lens, 0, n, now_ms, out,
					  results});
		return;
	}
	per = (n + threads - 1) / threads;
	for (unsigned t = 0; t < threads; t++) {
		size_t begin = t * per;
		size_t end = begin + per < n ? begin + per : n;

		ranges[t] = (batch_range){wires, lens, begin, end, now_ms,
					  out, results};
	}
	/* Range 0 runs in the caller's thread; the others get their own. */
	for (unsigned t = 1; t < threads; t++)
		started[t] = pthread_create(&ids[t], NULL, open_range,
					    &ranges[t]) == 0;
	open_range(&ranges[0]);
	for (unsigned t = 1; t < threads; t++) {
		if (started[t])
			pthread_join(ids[t], NULL);
		else
			open_range(&ranges[t]);
	}
}

unsigned proto_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (unsigned)n;
}
