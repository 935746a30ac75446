/*
 * proto_batch.h - opening many signed records at once, with signature
 * verification spread over several threads.
 *
 * Verification dominates the cost of ingesting records (an Ed25519 verify
 * takes about 43 to 48 us on one core of the machines we measure on), so
 * import opens each batch in parallel and then stores it from one thread.
 * The node keeps verify threads of its own (node_verifier.c), which take
 * records the same way from a queue of messages.
 */
#ifndef PROTO_BATCH_H
#define PROTO_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "proto_record.h"

/* Result of opening one record of a batch: the error code and the detail
 * that proto_record_open recorded (the detail is per thread, so the batch
 * copies it here). */
typedef struct proto_open_result {
	cm_err err;
	char detail[160];
} proto_open_result;

/*
 * Opens records wires[i] (lens[i] bytes) with proto_record_open at now_ms
 * into out[i] and results[i], using up to `threads` threads including the
 * caller's (1 means all in the caller's thread). out[i].wire aliases
 * wires[i]. Each thread takes the next record not yet taken, so the
 * records are shared out however the threads get scheduled; when a
 * thread cannot be started, the others do its share.
 */
void proto_open_batch(const uint8_t *const *wires, const size_t *lens,
		      size_t n, uint64_t now_ms, unsigned threads,
		      proto_signed *out, proto_open_result *results);

/* Returns the number of online processors, at least 1. */
unsigned proto_cpu_count(void);

#endif
