/*
 * node_clock.c - the clock offset of each peer, from the wall-clock times
 * that HELLO and PING carry.
 *
 * A sample is the peer's time minus our time at receipt, plus half the
 * round trip when one is known: the message spent about that long on the
 * way, so the peer's clock had moved on by as much. The round trip is
 * measured from a HELLO we sent to the HELLO that replied to it, so only
 * the side that sent the first HELLO measures it, usually the one that
 * connected.
 *
 * A message held up in a queue (behind chunks on a slow link) makes the
 * peer look behind by the delay, never ahead. The offset is therefore the
 * largest sample of the last CM_CLOCK_WINDOW_MS to twice that, which is
 * the least delayed one.
 */
#include <stdlib.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

/* Bound of a reported offset, so that the sums below cannot overflow
 * whatever time a peer claims. */
#define OFFSET_BOUND (INT64_MAX / 4)

/* Returns a - b, bounded to +-OFFSET_BOUND. */
static int64_t bounded_difference(uint64_t a, uint64_t b)
{
	if (a >= b)
		return a - b > OFFSET_BOUND ? OFFSET_BOUND : (int64_t)(a - b);
	return b - a > OFFSET_BOUND ? -OFFSET_BOUND : -(int64_t)(b - a);
}

int64_t node_clock_offset(uint64_t peer_ms, uint64_t our_ms, uint64_t rtt_ms)
{
	uint64_t half_rtt = rtt_ms / 2;

	if (half_rtt > OFFSET_BOUND)
		half_rtt = OFFSET_BOUND;
	return bounded_difference(peer_ms, our_ms) + (int64_t)half_rtt;
}

uint64_t node_clock_now(const node *n)
{
	uint64_t now = cm_now_ms();
	int64_t shift = n->cfg->test_clock_offset_ms;

	if (shift >= 0)
		return now + (uint64_t)shift;
	if ((uint64_t)0 - (uint64_t)shift > now)
		return 0;
	return now - ((uint64_t)0 - (uint64_t)shift);
}

void node_clock_add_sample(node_clock *c, int64_t sample, uint64_t mono_ms)
{
	if (!c->known) {
		c->known = true;
		c->window_start = mono_ms;
		c->window_max_ms = sample;
		c->previous_max_ms = sample;
	} else if (mono_ms - c->window_start >= CM_CLOCK_WINDOW_MS) {
		c->window_start = mono_ms;
		c->previous_max_ms = c->window_max_ms;
		c->window_max_ms = sample;
	} else if (sample > c->window_max_ms) {
		c->window_max_ms = sample;
	}
	c->offset_ms = c->window_max_ms > c->previous_max_ms
			       ? c->window_max_ms
			       : c->previous_max_ms;
}

/* Adds one sample and logs when the offset crosses
 * CM_CLOCK_OFFSET_WARN_MS, once per crossing. */
static void note_sample(node *n, node_link *l, uint64_t peer_ms)
{
	node_clock *c = &l->clock;
	int64_t offset;
	bool beyond;

	node_clock_add_sample(c, node_clock_offset(peer_ms, node_clock_now(n),
						   c->rtt_ms),
			      cm_mono_ms());
	offset = c->offset_ms;
	beyond = llabs(offset) > CM_CLOCK_OFFSET_WARN_MS;
	if (beyond && !c->warned)
		cm_warn(NODE_LOG, "peer=%s endpoint=%s clock is %lld ms %s "
			"this node's; records more than %d ms ahead are "
			"rejected, so run 'timedatectl set-ntp true' on the "
			"machine whose clock is wrong", l->short_key,
			l->endpoint, llabs(offset),
			offset > 0 ? "ahead of" : "behind", CM_FUTURE_SKEW_MS);
	else if (!beyond && c->warned)
		cm_info(NODE_LOG, "peer=%s clock is within %d ms of this "
			"node's again", l->short_key, CM_CLOCK_OFFSET_WARN_MS);
	c->warned = beyond;
}

void node_clock_hello_sent(node_link *l, bool reply, uint64_t mono_ms)
{
	if (!reply)
		l->clock.asked_ms = mono_ms;
}

void node_clock_on_hello(node *n, node_link *l, const proto_wire_msg *m,
			 bool was_established)
{
	node_clock *c = &l->clock;

	/* Samples and the round trip of an earlier connection do not apply
	 * to this one. */
	if (!was_established) {
		c->known = false;
		c->rtt_ms = 0;
		c->warned = false;
	}
	if (m->reply && c->asked_ms != 0) {
		c->rtt_ms = cm_mono_ms() - c->asked_ms;
		c->asked_ms = 0;
	}
	note_sample(n, l, m->time_ms);
}

void node_clock_on_ping(node *n, node_link *l, const proto_wire_msg *m)
{
	note_sample(n, l, m->time_ms);
}
