/*
 * node_dial.c - dialling outbound peers with backoff, and the known
 * peers that the node keeps in its store.
 *
 * Every outbound link dials on its own schedule instead of ZeroMQ's
 * reconnect timer. In libzmq 4.3 (src/stream_connecter_base.cpp) the
 * backoff starts again from ZMQ_RECONNECT_IVL after each TCP connect, so
 * a host that accepts TCP and fails the CURVE handshake (a wrong key)
 * would be dialled every few hundred milliseconds. A dial
 * opens a DEALER with reconnection off; when the peer's HELLO has not
 * arrived within CM_DIAL_TIMEOUT_MS, the DEALER is closed and the next
 * dial waits node_backoff_ms(failures). A link that was up and went
 * silent is dialled again after the shortest backoff.
 *
 * With reconnection off, libzmq 4.3 makes one TCP connect per dial and
 * gives up when it fails or when the connection closes. A monitor on
 * the DEALER reports either, so a refused connect or a failed handshake
 * fails the dial at once. CM_DIAL_TIMEOUT_MS remains for dials that
 * hang: a SYN that gets no reply, or a connection without a HELLO.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define TCP_SCHEME "tcp://"
#define FILL_INTERVAL_MS 1000

/* Causes of a failed dial, as status shows them in "dial_error". */
#define DIAL_CONNECT_FAILED "connect_failed"
#define DIAL_CLOSED "closed_before_hello"
#define DIAL_TIMED_OUT "no_hello_in_time"

static cm_err set_curve_client(node *n, void *sock,
			       const uint8_t server_key[NODE_KEY_LEN])
{
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key,
			   NODE_KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, n->pub, NODE_KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, n->secret,
			   NODE_KEY_LEN))
		return cm_errf(CM_ERR_ZMQ, "setting CURVE client keys: %s",
			       zmq_strerror(errno));
	return CM_OK;
}

/* Watches the DEALER for the end of its one connect attempt (CLOSED:
 * the connect failed) and of its connection (DISCONNECTED), before and
 * after the HELLO. Must run before zmq_connect, so that no event is
 * missed. */
static cm_err open_dial_monitor(node *n, node_link *l)
{
	char endpoint[64];

	snprintf(endpoint, sizeof(endpoint), "inproc://clipmesh.dial.%llu",
		 (unsigned long long)++n->dial_monitors);
	return node_monitor_open(n->ctx, l->dealer, endpoint,
				 ZMQ_EVENT_CLOSED | ZMQ_EVENT_DISCONNECTED,
				 &l->dial_monitor);
}

static void close_dial_monitor(node_link *l)
{
	if (!l->dial_monitor)
		return;
	zmq_socket_monitor(l->dealer, NULL, 0);
	zmq_close(l->dial_monitor);
	l->dial_monitor = NULL;
}

static cm_err open_dealer(node *n, node_link *l)
{
	int on = 1, no_reconnect = -1;
	cm_err err;

	l->dealer = zmq_socket(n->ctx, ZMQ_DEALER);
	if (!l->dealer)
		return cm_errf(CM_ERR_ZMQ, "creating DEALER: %s",
			       zmq_strerror(errno));
	err = node_socket_defaults(l->dealer);
	if (err)
		return err;
	err = set_curve_client(n, l->dealer, l->key);
	if (err)
		return err;

	/* IMMEDIATE makes sends fail while there is no connection, instead
	 * of queueing HELLOs for a peer that may never come. */
	if (zmq_setsockopt(l->dealer, ZMQ_IMMEDIATE, &on, sizeof(on)) ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL, &no_reconnect,
			   sizeof(no_reconnect)))
		return cm_errf(CM_ERR_ZMQ, "setting DEALER options: %s",
			       zmq_strerror(errno));
	err = open_dial_monitor(n, l);
	if (err)
		return err;
	if (zmq_connect(l->dealer, l->endpoint))
		return cm_errf(CM_ERR_ZMQ, "connecting to %s: %s", l->endpoint,
			       zmq_strerror(errno));
	return CM_OK;
}

void node_dial_close(node_link *l)
{
	close_dial_monitor(l);
	if (l->dealer)
		zmq_close(l->dealer);
	l->dealer = NULL;
	l->dial_started = 0;
	l->hello_sent = false;
	l->fd = -1;
}

cm_err node_dial_open(node *n, node_link *l)
{
	uint64_t now = cm_mono_ms();
	cm_err err;

	err = open_dealer(n, l);
	if (err) {
		node_dial_close(l);
		return err;
	}
	l->dials++;
	l->dial_started = now ? now : 1;
	l->last_hello = 0;
	l->last_rx = now;
	cm_info(NODE_LOG, "dialling peer=%s endpoint=%s dial=%llu%s",
		l->short_key, l->endpoint, (unsigned long long)l->dials,
		l->candidate ? " learned=unverified" : "");
	return CM_OK;
}

/* Writes a known peer to the store. A failure is logged, and the node
 * keeps the peer in memory only. */
static void known_save(node *n, node_known *k)
{
	store_known_peer p;
	cm_err err;
	char short_key[9];

	memset(&p, 0, sizeof(p));
	memcpy(p.key, k->key, NODE_KEY_LEN);
	cm_strlcpy(p.addr, k->addr, sizeof(p.addr));
	p.origin = k->source == NODE_KNOWN_LEARNED ? STORE_KNOWN_LEARNED
						   : STORE_KNOWN_CONFIGURED;
	p.failures = k->failures;
	p.last_seen_ms = k->last_seen_ms;
	err = store_known_put(n->st, &p);
	if (!err) {
		k->stored = true;
		return;
	}
	cm_hex_short(k->key, short_key);
	cm_warn(NODE_LOG, "storing known peer=%s failed: %s (%s)", short_key,
		cm_err_name(err), cm_err_detail());
}

/* Removes a known peer that is not configured after too many failed
 * dials, with its link and its stored entry. */
static void known_forget(node *n, node_known *k, node_link *l)
{
	cm_err err;

	cm_warn(NODE_LOG, "forgetting peer=%s endpoint=%s after %u failed "
		"dials", l->short_key, l->endpoint, k->failures);
	if (k->stored) {
		err = store_known_del(n->st, k->key);
		if (err)
			cm_warn(NODE_LOG, "deleting known peer=%s failed: %s "
				"(%s)", l->short_key, cm_err_name(err),
				cm_err_detail());
	}
	memset(k, 0, sizeof(*k));
	n->peers.forgotten++;
	node_link_remove_out(n, l);
}

/* Writes the log text of a dial failure's cause. */
static void dial_error_text(const char *cause, char out[64])
{
	if (strcmp(cause, DIAL_CONNECT_FAILED) == 0)
		cm_strlcpy(out, "TCP connect failed (refused or unreachable)",
			   64);
	else if (strcmp(cause, DIAL_CLOSED) == 0)
		cm_strlcpy(out, "connection closed before the HELLO", 64);
	else
		snprintf(out, 64, "no HELLO in %d ms", CM_DIAL_TIMEOUT_MS);
}

/* Ends a dial that brought no HELLO, for `cause` (a DIAL_* string): a
 * candidate is dropped, a known peer waits for its backoff, or is
 * forgotten after CM_KNOWN_FAILURES_MAX failures unless it is
 * configured. */
static void dial_failed(node *n, node_link *l, uint64_t now,
			const char *cause)
{
	node_known *k = node_known_find(&n->peers, l->key);
	node_candidate *c;
	char text[64];
	uint64_t wait;

	node_dial_close(l);
	l->dial_error = cause;
	dial_error_text(cause, text);
	if (l->candidate) {
		cm_info(NODE_LOG, "learned address not verified: %s, "
			"peer=%s endpoint=%s; dropped", text, l->short_key,
			l->endpoint);
		c = node_candidate_find(&n->peers, l->key);
		if (c)
			memset(c, 0, sizeof(*c));
		n->peers.unverified++;
		node_link_remove_out(n, l);
		return;
	}

	if (k && k->failures < UINT32_MAX)
		k->failures++;
	if (k && k->source != NODE_KNOWN_CONFIGURED &&
	    k->failures >= CM_KNOWN_FAILURES_MAX) {
		known_forget(n, k, l);
		return;
	}
	if (k && k->stored)
		known_save(n, k);

	wait = node_backoff_ms(k ? k->failures : 1, n->limits.reconnect_max_ms,
			       randombytes_random());
	l->next_dial = now + wait;
	cm_warn(NODE_LOG, "dial failed: %s, peer=%s endpoint=%s; failures=%u, "
		"next dial in %llu ms", text, l->short_key,
		l->endpoint, k ? k->failures : 0, (unsigned long long)wait);
}

void node_dial_on_event(node *n, node_link *l)
{
	uint16_t event;
	int32_t value;

	while (l->dial_monitor &&
	       node_monitor_read(l->dial_monitor, &event, &value)) {
		if (l->probe) {
			/* The peer closed after our GOODBYE: done. */
			if (event == ZMQ_EVENT_CLOSED ||
			    event == ZMQ_EVENT_DISCONNECTED)
				l->orphan = true;
			continue;
		}
		if (l->established) {
			/* The peer's end closed: it stopped or crashed, and
			 * the liveness timeout need not run out. */
			if (event == ZMQ_EVENT_DISCONNECTED)
				node_link_drop(n, l, "connection closed");
			return;
		}
		if (event == ZMQ_EVENT_CLOSED)
			dial_failed(n, l, cm_mono_ms(), DIAL_CONNECT_FAILED);
		else if (event == ZMQ_EVENT_DISCONNECTED)
			dial_failed(n, l, cm_mono_ms(), DIAL_CLOSED);
	}
}

bool node_dial_tick(node *n, node_link *l, uint64_t now)
{
	if (l->orphan || (l->probe && now >= l->probe_end)) {
		node_link_remove_out(n, l);
		return false;
	}
	if (l->probe)
		return false; /* waits for the peer to close */
	if (!l->dealer) {
		if (now < l->next_dial || now < l->ban_until)
			return false;
		if (node_dial_open(n, l)) {
			cm_warn(NODE_LOG, "dialling peer=%s failed: %s",
				l->short_key, cm_err_detail());
			l->next_dial = now + CM_DIAL_TIMEOUT_MS;
			return false;
		}
		return true;
	}
	if (!l->established && now - l->dial_started >= CM_DIAL_TIMEOUT_MS) {
		dial_failed(n, l, now, DIAL_TIMED_OUT);
		return false;
	}
	return true;
}

/* Sets the numeric address PEERS shares from "IP:PORT" (IPv6 without
 * brackets, as the link's connection shows it) or "[IPv6]:PORT". */
static void known_set_numeric(node_known *k, const char *ip_port)
{
	char host[NODE_ENDPOINT_MAX];
	const char *colon = strrchr(ip_port, ':');
	uint64_t port;
	size_t len;

	if (!colon || !cm_parse_u64(colon + 1, &port) || port == 0 ||
	    port > UINT16_MAX)
		return;
	len = (size_t)(colon - ip_port);
	if (len >= 2 && ip_port[0] == '[' && ip_port[len - 1] == ']') {
		ip_port++;
		len -= 2;
	}
	if (len >= sizeof(host))
		return;
	memcpy(host, ip_port, len);
	host[len] = '\0';

	if (inet_pton(AF_INET, host, k->ip) == 1) {
		k->ip_len = PROTO_WIRE_IPV4_LEN;
	} else if (inet_pton(AF_INET6, host, k->ip) == 1) {
		k->ip_len = PROTO_WIRE_IPV6_LEN;
	} else {
		k->ip_len = 0;
		return;
	}
	k->port = (uint16_t)port;
}

/* Keys of the known peers that have a link, for node_known_add. */
static size_t busy_keys(const node *n, uint8_t *keys)
{
	size_t count = 0;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_OUT && !l->candidate)
			memcpy(keys + NODE_KEY_LEN * count++, l->key,
			       NODE_KEY_LEN);
	}
	return count;
}

/* True when candidate c is the address that its own peer announced
 * (node_pex_on_announce), not one that another peer sent. */
static bool self_announced(const node_candidate *c)
{
	return memcmp(c->source, c->key, NODE_KEY_LEN) == 0;
}

/* Ends the link that verified an announced address: the peer is
 * connected already, or the node has the outbound links it wants. The
 * GOODBYE lets the peer free its slot at once. */
static void end_probe(node *n, node_link *l)
{
	uint8_t *buf;
	size_t len;

	l->probe_end = cm_mono_ms() + CM_GOODBYE_WAIT_MS;
	l->next_pex = 0;
	if (proto_wire_goodbye(&buf, &len) == CM_OK)
		node_link_send(n, l, buf, len);
	cm_info(NODE_LOG, "peer=%s listens at %s as it announced; closing "
		"the connection that checked it", l->short_key,
		l->endpoint + strlen(TCP_SCHEME));
	/* No sync, ping, media or gossip uses it from now on. */
	node_link_forget(n, l, "address checked");
}

/* Returns the number of established outbound links other than l that
 * are neither candidates' nor probes'. */
static size_t links_kept(const node *n, const node_link *l)
{
	size_t count = 0;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *o = &n->links[i];

		count += o != l && o->used && o->dir == NODE_LINK_OUT &&
			 o->established && !o->candidate && !o->probe;
	}
	return count;
}

/* Turns a verified candidate into a learned known peer. Returns NULL
 * when the table has no room. */
static node_known *promote(node *n, node_link *l)
{
	static uint8_t busy[NODE_LINKS_MAX * NODE_KEY_LEN];
	node_candidate *c = node_candidate_find(&n->peers, l->key);
	bool announced = c && self_announced(c);
	const char *addr = l->endpoint + strlen(TCP_SCHEME);
	node_known *k = node_known_find(&n->peers, l->key);

	/* A learned peer that announced a new address moves there. */
	if (k && k->source == NODE_KNOWN_LEARNED)
		snprintf(k->addr, sizeof(k->addr), "%s", addr);
	else if (!k)
		k = node_known_add(&n->peers, l->key, addr, NODE_KNOWN_LEARNED,
				   busy, busy_keys(n, busy));
	if (c)
		memset(c, 0, sizeof(*c));
	if (!k)
		return NULL;
	l->candidate = false;
	n->peers.learned++;
	cm_info(NODE_LOG, "learned peer=%s endpoint=%s: verified by its "
		"HELLO", l->short_key, l->endpoint);
	if (announced && (node_link_up(n, l->key, NULL, true) ||
			  links_kept(n, l) >= n->cfg->peers_learned))
		l->probe = true;
	return k;
}

void node_dial_on_hello(node *n, node_link *l)
{
	node_known *k;

	l->dial_error = NULL;
	if (l->candidate) {
		k = promote(n, l);
		if (!k) {
			cm_warn(NODE_LOG, "no room for learned peer=%s: %d "
				"known peers", l->short_key,
				CM_KNOWN_PEERS_MAX);
			l->orphan = true;
			n->peers.unverified++;
			return;
		}
	} else {
		k = node_known_find(&n->peers, l->key);
	}
	if (!k)
		return;
	k->failures = 0;
	k->last_seen_ms = cm_now_ms();
	if (l->fd_peer[0])
		known_set_numeric(k, l->fd_peer);
	known_save(n, k);
	if (l->probe)
		end_probe(n, l);
	else
		l->next_pex = cm_mono_ms();
}

void node_dial_link_down(node *n, node_link *l)
{
	uint64_t now = cm_mono_ms();

	node_dial_close(l);
	if (l->probe) {
		l->orphan = true;
		return;
	}
	l->next_dial = now + node_backoff_ms(1, n->limits.reconnect_max_ms,
					     randombytes_random());
	if (l->next_dial < l->ban_until)
		l->next_dial = l->ban_until;
}

/* Adds a peer from the store to the table, or merges it into the
 * configured entry of the same key. */
static int load_one(void *ctx, const store_known_peer *p)
{
	node *n = ctx;
	char addr[NODE_ENDPOINT_MAX], hex[2 * NODE_KEY_LEN + 1];
	char endpoint[NODE_ENDPOINT_MAX];
	uint8_t key[NODE_KEY_LEN];
	node_known *k;

	if (memcmp(p->key, n->pub, NODE_KEY_LEN) == 0)
		return 0;
	cm_hex_encode(p->key, NODE_KEY_LEN, hex);
	snprintf(addr, sizeof(addr), "clipmesh://%s@%s", hex, p->addr);
	if (node_parse_addr(addr, endpoint, key)) {
		cm_warn(NODE_LOG, "skipping stored known peer: %s",
			cm_err_detail());
		return 0;
	}

	k = node_known_find(&n->peers, p->key);
	if (!k)
		k = node_known_add(&n->peers, p->key, p->addr,
				   p->origin == STORE_KNOWN_LEARNED
					   ? NODE_KNOWN_LEARNED
					   : NODE_KNOWN_REMEMBERED,
				   NULL, 0);
	if (!k)
		return 1; /* the table is full */
	k->stored = true;
	k->failures = p->failures;
	k->last_seen_ms = p->last_seen_ms;
	if (k->source != NODE_KNOWN_CONFIGURED)
		known_set_numeric(k, p->addr);
	return 0;
}

void node_known_load(node *n)
{
	size_t skipped = 0;
	cm_err err;

	err = store_known_list(n->st, load_one, n, &skipped);
	if (err)
		cm_warn(NODE_LOG, "reading known peers failed: %s (%s)",
			cm_err_name(err), cm_err_detail());
	if (skipped)
		cm_warn(NODE_LOG, "skipped %zu stored known peers of an "
			"unknown layout", skipped);
}

/* True when known peer a is to be dialled before b: configured first,
 * then the fewest failures, then the latest HELLO. */
static bool dial_before(const node_known *a, const node_known *b)
{
	bool a_configured = a->source == NODE_KNOWN_CONFIGURED;
	bool b_configured = b->source == NODE_KNOWN_CONFIGURED;

	if (a_configured != b_configured)
		return a_configured;
	if (a->failures != b->failures)
		return a->failures < b->failures;
	return a->last_seen_ms > b->last_seen_ms;
}

/* True when a candidate link dials `key`. */
static bool candidate_dialling(void *ctx, const uint8_t *key)
{
	node *n = ctx;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (l->used && l->candidate &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return true;
	}
	return false;
}

/* Returns the known peer without a link that is the best to dial next. */
static node_known *next_unlinked(node *n)
{
	static uint8_t busy[NODE_LINKS_MAX * NODE_KEY_LEN];
	size_t n_busy = busy_keys(n, busy);
	node_known *best = NULL;

	for (size_t i = 0; i < CM_KNOWN_PEERS_MAX; i++) {
		node_known *k = &n->peers.known[i];
		bool linked = false;

		if (!k->used)
			continue;
		for (size_t j = 0; j < n_busy && !linked; j++)
			linked = memcmp(busy + j * NODE_KEY_LEN, k->key,
					NODE_KEY_LEN) == 0;
		/* A learned peer that dialled this node needs no second
		 * connection. One that the operator named is dialled
		 * anyway. */
		if (linked || candidate_dialling(n, k->key) ||
		    (k->source == NODE_KNOWN_LEARNED &&
		     (node_link_up(n, k->key, NULL, true) ||
		      cm_mono_ms() < n->learned_dial_after)))
			continue;
		if (!best || dial_before(k, best))
			best = k;
	}
	return best;
}

/* Returns how many outbound links the node may have before it dials
 * known peer k: peers_max for a peer the operator named, fewer for one
 * that peer exchange brought, so that learning keeps the mesh sparse. */
static unsigned out_limit(const node *n, const node_known *k)
{
	unsigned learned = n->cfg->peers_learned;

	if (k->source != NODE_KNOWN_LEARNED)
		return n->limits.peers_max;
	return learned < n->limits.peers_max ? learned : n->limits.peers_max;
}

/* Starts verifying candidates, at most CM_PEX_VERIFY_MAX at once and
 * below peers_max outbound links. A candidate from PEERS waits until
 * the node has fewer outbound links than peers_learned, because it may
 * become one. An address that its peer announced is checked anyway:
 * that check usually ends its connection at once (end_probe). */
static void verify_candidates(node *n)
{
	size_t running = 0;
	char endpoint[NODE_ENDPOINT_MAX];

	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		running += n->links[i].used && n->links[i].candidate;
	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX &&
			   running < CM_PEX_VERIFY_MAX &&
			   node_links_out(n) < n->limits.peers_max;
	     i++) {
		node_candidate *c = &n->peers.candidates[i];

		/* Checks alone never take the last outbound slot. */
		if (!c->used || candidate_dialling(n, c->key) ||
		    (self_announced(c)
			     ? node_links_out(n) + 1 >= n->limits.peers_max
			     : node_links_out(n) >= n->cfg->peers_learned))
			continue;
		/* Dialled meanwhile: a check would replace that connection
		 * at the peer. */
		if (self_announced(c) && node_link_out_find(n, c->key)) {
			memset(c, 0, sizeof(*c));
			continue;
		}
		if (node_is_banned(n, c->key)) {
			memset(c, 0, sizeof(*c));
			continue;
		}
		snprintf(endpoint, sizeof(endpoint), TCP_SCHEME "%s", c->addr);
		if (node_link_open_out(n, c->key, endpoint, true, NULL)) {
			cm_warn(NODE_LOG, "dialling a learned address failed: "
				"%s", cm_err_detail());
			memset(c, 0, sizeof(*c));
			continue;
		}
		running++;
	}
}

void node_dial_fill(node *n)
{
	uint64_t now = cm_mono_ms();
	char endpoint[NODE_ENDPOINT_MAX];
	node_known *k;

	if (now < n->next_dial_fill)
		return;
	n->next_dial_fill = now + FILL_INTERVAL_MS;

	while ((k = next_unlinked(n)) && node_links_out(n) < out_limit(n, k)) {
		snprintf(endpoint, sizeof(endpoint), TCP_SCHEME "%s", k->addr);
		if (node_link_open_out(n, k->key, endpoint, false, NULL)) {
			cm_warn(NODE_LOG, "dialling a known peer failed: %s",
				cm_err_detail());
			break;
		}
	}
	node_candidates_expire(&n->peers, now, candidate_dialling, n);
	verify_candidates(n);
}

/* Returns the outbound link of known peer k, or NULL. */
static const node_link *link_of(const node *n, const node_known *k)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_OUT && !l->candidate &&
		    memcmp(l->key, k->key, NODE_KEY_LEN) == 0)
			return l;
	}
	return NULL;
}

/* One known peer: "peer", "address", "source", "state" (connected,
 * dialling, waiting for its next dial, or idle without a link because
 * peers_max links exist), "failures", "last_seen" (RFC 3339 or null),
 * "next_dial_ms" (ms from now while waiting, else null) and "dial_error"
 * (the cause of the last failed dial since the last HELLO, else null). */
static json_t *known_json(const node *n, const node_known *k, uint64_t now)
{
	const node_link *l = link_of(n, k);
	const char *state = "idle";
	char short_key[9], seen[32] = "";
	json_t *next = json_null();

	if (l && l->established) {
		state = "connected";
	} else if (l && l->dealer) {
		state = "dialling";
	} else if (l) {
		state = "waiting";
		next = json_integer(l->next_dial > now
					    ? (json_int_t)(l->next_dial - now)
					    : 0);
	}
	cm_hex_short(k->key, short_key);
	if (k->last_seen_ms)
		cm_time_rfc3339(k->last_seen_ms, seen);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:o, s:s?}",
			 "peer", short_key, "address", k->addr,
			 "source", node_known_source_name(k->source),
			 "state", state, "failures", (json_int_t)k->failures,
			 "last_seen", k->last_seen_ms ? seen : NULL,
			 "next_dial_ms", next,
			 "dial_error", l ? l->dial_error : NULL);
}

json_t *node_known_json(node *n)
{
	uint64_t now = cm_mono_ms();
	json_t *list = json_array();

	for (size_t i = 0; list && i < CM_KNOWN_PEERS_MAX; i++)
		if (n->peers.known[i].used)
			json_array_append_new(
				list, known_json(n, &n->peers.known[i], now));
	return list;
}
