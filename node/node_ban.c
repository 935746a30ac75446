/*
 * node_ban.c - the table of banned keys and addresses.
 *
 * The table has a fixed size, so that key rotation cannot grow the node's
 * memory. Entries keep their strikes after the ban ends, so that a repeat
 * bans for longer, until CM_BAN_FORGET_MS later.
 *
 * An address is banned only from its CM_BAN_IP_STRIKES-th strike on: one
 * misbehaving node behind a NAT, or one on a host that runs other nodes
 * too, gets its key banned without locking out its neighbours, while a
 * peer that comes back from the same address with a fresh key after its
 * ban bans the address.
 */
#include <string.h>

#include "cm_util.h"
#include "node_internal.h"

void node_bans_init(node_bans *b, uint64_t base_ms, uint64_t max_ms)
{
	memset(b->entries, 0, sizeof(b->entries));
	b->base_ms = base_ms;
	b->max_ms = max_ms < base_ms ? base_ms : max_ms;
}

static bool entry_is(const node_ban *e, node_ban_kind kind,
		     const uint8_t *key, const char *ip)
{
	if (!e->used || e->kind != kind)
		return false;
	if (kind == NODE_BAN_KEY)
		return memcmp(e->key, key, NODE_KEY_LEN) == 0;
	return strcmp(e->ip, ip) == 0;
}

/* True when an entry's strikes are old enough to be forgotten. */
static bool entry_stale(const node_ban *e, uint64_t now_ms)
{
	return !e->used || now_ms >= e->until + CM_BAN_FORGET_MS;
}

static node_ban *find(node_bans *b, node_ban_kind kind, const uint8_t *key,
		      const char *ip)
{
	for (size_t i = 0; i < CM_BANS_MAX; i++)
		if (entry_is(&b->entries[i], kind, key, ip))
			return &b->entries[i];
	return NULL;
}

/* Returns a stale slot, else the one whose ban ended (or ends) first. */
static node_ban *make_room(node_bans *b, uint64_t now_ms)
{
	node_ban *first = &b->entries[0];

	for (size_t i = 0; i < CM_BANS_MAX; i++) {
		node_ban *e = &b->entries[i];

		if (entry_stale(e, now_ms))
			return e;
		if (e->until < first->until)
			first = e;
	}
	return first;
}

/* Returns base_ms doubled once for each strike past the first that bans,
 * at most max_ms; 0 for an address below CM_BAN_IP_STRIKES. */
static uint64_t ban_length(const node_bans *b, node_ban_kind kind,
			   unsigned strikes)
{
	unsigned first = kind == NODE_BAN_IP ? CM_BAN_IP_STRIKES : 1;
	uint64_t length = b->base_ms;

	if (strikes < first)
		return 0;
	for (unsigned i = first; i < strikes && length < b->max_ms; i++)
		length *= 2;
	return length < b->max_ms ? length : b->max_ms;
}

const node_ban *node_bans_strike(node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms)
{
	node_ban *e = find(b, kind, key, ip);

	if (e && entry_stale(e, now_ms))
		e->strikes = 0;
	if (!e) {
		e = make_room(b, now_ms);
		memset(e, 0, sizeof(*e));
		e->used = true;
		e->kind = kind;
		if (kind == NODE_BAN_KEY)
			memcpy(e->key, key, NODE_KEY_LEN);
		else
			cm_strlcpy(e->ip, ip, sizeof(e->ip));
	}
	if (e->strikes < UINT32_MAX)
		e->strikes++;
	e->length_ms = ban_length(b, kind, e->strikes);
	e->until = now_ms + e->length_ms;
	return e;
}

const node_ban *node_bans_active(const node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms)
{
	for (size_t i = 0; i < CM_BANS_MAX; i++) {
		const node_ban *e = &b->entries[i];

		if (entry_is(e, kind, key, ip))
			return now_ms < e->until ? e : NULL;
	}
	return NULL;
}
