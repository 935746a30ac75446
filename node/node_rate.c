/* node_rate.c - token buckets for peer input limits, and peer scores. */
#include "node_internal.h"

#define MILLI 1000

void node_bucket_init(node_bucket *b, uint64_t rate, uint64_t burst,
		      uint64_t now_ms)
{
	b->rate = rate;
	b->cap = (int64_t)(burst * MILLI);
	b->level = b->cap;
	b->last_ms = now_ms;
}

/* Adds `rate` thousandths per elapsed millisecond, up to the cap. */
static void refill(node_bucket *b, uint64_t now_ms)
{
	uint64_t elapsed, room;

	if (now_ms <= b->last_ms || b->rate == 0)
		return;
	elapsed = now_ms - b->last_ms;
	b->last_ms = now_ms;
	room = (uint64_t)(b->cap - b->level);
	if (elapsed > room / b->rate)
		b->level = b->cap;
	else
		b->level += (int64_t)(elapsed * b->rate);
}

bool node_bucket_take(node_bucket *b, uint64_t amount, uint64_t now_ms)
{
	int64_t cost = (int64_t)(amount * MILLI);

	refill(b, now_ms);
	if (b->level < cost)
		return false;
	b->level -= cost;
	return true;
}

void node_bucket_charge(node_bucket *b, uint64_t amount, uint64_t now_ms)
{
	refill(b, now_ms);
	b->level -= (int64_t)(amount * MILLI);
}

uint64_t node_bucket_wait_ms(node_bucket *b, uint64_t now_ms)
{
	refill(b, now_ms);
	if (b->level > 0)
		return 0;
	if (b->rate == 0)
		return UINT64_MAX;
	return (uint64_t)(-b->level) / b->rate + 1;
}

void node_score_init(node_score *s, uint64_t now_ms)
{
	s->milli = CM_PEER_SCORE_MAX * MILLI;
	s->at_ms = now_ms;
}

/* Returns the score at now_ms in thousandths of a point. */
static int64_t score_milli(const node_score *s, uint64_t now_ms)
{
	uint64_t elapsed = now_ms > s->at_ms ? now_ms - s->at_ms : 0;
	uint64_t room = (uint64_t)(CM_PEER_SCORE_MAX * MILLI - s->milli);

	/* RECOVER points a second are RECOVER thousandths a millisecond. */
	if (elapsed > room / CM_PEER_SCORE_RECOVER)
		return CM_PEER_SCORE_MAX * MILLI;
	return s->milli + (int64_t)(elapsed * CM_PEER_SCORE_RECOVER);
}

int64_t node_score_points(const node_score *s, uint64_t now_ms)
{
	int64_t milli = score_milli(s, now_ms);

	/* Rounded down, so that a score below one point shows as 0. */
	return milli >= 0 ? milli / MILLI : -((-milli + MILLI - 1) / MILLI);
}

int64_t node_score_lower(node_score *s, unsigned penalty, uint64_t now_ms)
{
	if (now_ms > s->at_ms) {
		s->milli = score_milli(s, now_ms);
		s->at_ms = now_ms;
	}
	s->milli -= (int64_t)penalty * MILLI;
	return node_score_points(s, now_ms);
}
