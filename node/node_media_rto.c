/*
 * node_media_rto.c - the timeout of chunk requests to one peer, derived
 * from that peer's measured response times the way TCP derives its
 * retransmission timeout (RFC 6298). The smoothed response time SRTT and
 * the mean deviation RTTVAR follow each sample with gains 1/8 and 1/4,
 * the timeout is SRTT + 4 RTTVAR, and each timeout doubles it. A
 * response time runs from sending a CHUNK_REQ to receiving its chunk, so
 * it includes the peer's queue of earlier requests and the node's own
 * receive queue.
 */
#include "node_internal.h"

static uint64_t clamp_timeout(uint64_t ms)
{
	if (ms < CM_CHUNK_TIMEOUT_MIN_MS)
		return CM_CHUNK_TIMEOUT_MIN_MS;
	if (ms > CM_CHUNK_TIMEOUT_MAX_MS)
		return CM_CHUNK_TIMEOUT_MAX_MS;
	return ms;
}

uint64_t node_rto_timeout(const node_rto *r)
{
	if (r->timeout_ms == 0)
		return CM_CHUNK_TIMEOUT_INITIAL_MS;
	return clamp_timeout(r->timeout_ms);
}

void node_rto_sample(node_rto *r, uint64_t response_ms)
{
	uint64_t deviation;

	if (response_ms > CM_CHUNK_TIMEOUT_MAX_MS)
		response_ms = CM_CHUNK_TIMEOUT_MAX_MS;
	if (r->samples == 0) {
		r->srtt_ms = response_ms;
		r->rttvar_ms = response_ms / 2;
	} else {
		deviation = r->srtt_ms > response_ms
				    ? r->srtt_ms - response_ms
				    : response_ms - r->srtt_ms;
		r->rttvar_ms = (3 * r->rttvar_ms + deviation) / 4;
		r->srtt_ms = (7 * r->srtt_ms + response_ms) / 8;
	}
	r->samples++;
	r->timeout_ms = clamp_timeout(r->srtt_ms + 4 * r->rttvar_ms);
}

void node_rto_backoff(node_rto *r)
{
	r->timeout_ms = clamp_timeout(2 * node_rto_timeout(r));
}
