/*
 * node_peer.c - links to peers: creation, HELLO handshake, liveness,
 * sending, and dispatch of received messages.
 *
 * Handshake: each side sends HELLO (reply = false) when it needs the other
 * side's interest, and responds to every such HELLO with a HELLO whose
 * reply flag is set. No node responds to a reply, so two nodes cannot
 * bounce HELLOs forever. An outbound link repeats its HELLO every
 * CM_PING_INTERVAL_MS until one arrives; an inbound link that sends
 * anything before its HELLO gets our HELLO, which makes a peer that kept
 * its connection across our restart introduce itself again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define REJECT_LOG_LINES_PER_SECOND 5
#define HELLO_RETRY_MS 100 /* HELLO retry while no connection is up */

static void log_suppressed(node_link *l, uint64_t second);

static const char *role_name(proto_wire_role role)
{
	return role == PROTO_WIRE_ROLE_MIRROR ? "mirror" : "creator";
}

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

static cm_err open_dealer(node *n, node_link *l)
{
	int on = 1, ivl = 250, ivl_max = 30000;
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
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
			   sizeof(ivl_max)))
		return cm_errf(CM_ERR_ZMQ, "setting DEALER options: %s",
			       zmq_strerror(errno));
	if (zmq_connect(l->dealer, l->endpoint))
		return cm_errf(CM_ERR_ZMQ, "connecting to %s: %s", l->endpoint,
			       zmq_strerror(errno));
	return CM_OK;
}

cm_err node_link_add_out(node *n, const char *addr)
{
	node_link *slot = NULL;
	size_t outbound = 0;
	uint8_t key[NODE_KEY_LEN];
	char endpoint[NODE_ENDPOINT_MAX];
	cm_err err;

	err = node_parse_addr(addr, endpoint, key);
	if (err)
		return err;
	if (memcmp(key, n->pub, NODE_KEY_LEN) == 0) {
		cm_info(NODE_LOG, "skipping peer %s: it is this node", addr);
		return CM_OK;
	}

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used) {
			slot = slot ? slot : l;
			continue;
		}
		if (l->dir != NODE_LINK_OUT)
			continue;
		outbound++;
		if (memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return CM_OK; /* listed twice */
	}
	if (!slot || outbound >= n->limits.peers_max)
		return cm_errf(CM_ERR_TOO_MANY, "more than %u peers; raise "
			       "peers_max (at most %d)", n->limits.peers_max,
			       CM_PEERS_MAX);

	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->dir = NODE_LINK_OUT;
	slot->fd = -1;
	slot->opened = cm_mono_ms();
	memcpy(slot->key, key, NODE_KEY_LEN);
	cm_hex_short(key, slot->short_key);
	cm_strlcpy(slot->endpoint, endpoint, sizeof(slot->endpoint));

	err = open_dealer(n, slot);
	if (err) {
		if (slot->dealer)
			zmq_close(slot->dealer);
		memset(slot, 0, sizeof(*slot));
		return err;
	}
	cm_info(NODE_LOG, "connecting to peer=%s endpoint=%s", slot->short_key,
		slot->endpoint);
	return CM_OK;
}

/* Writes the TCP peer address of `fd` as "ip:port"; "" when it has none. */
static void fd_peer_name(int fd, char out[NODE_ENDPOINT_MAX])
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;

	out[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return;
	if (sa.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	} else {
		return;
	}
	snprintf(out, NODE_ENDPOINT_MAX, "%s:%u", ip, port);
}

/* Returns the bytes that the peer's TCP stack acknowledged on `fd`
 * (Linux 4.1 and later); 0 when unknown. */
static uint64_t fd_bytes_acked(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return 0;
	return info.tcpi_bytes_acked;
}

void node_link_set_fd(node_link *l, int fd)
{
	if (fd == l->fd)
		return;
	l->fd = fd;
	fd_peer_name(fd, l->fd_peer);
	l->fd_bytes_out = l->stats.bytes_out;
	l->fd_bytes_acked = fd_bytes_acked(fd);
}

/* Closes the link's TCP connection, unless its descriptor now belongs to
 * another connection (libzmq closed the old one and reused the number). */
static void link_close_connection(node_link *l)
{
	char now[NODE_ENDPOINT_MAX];

	if (l->fd < 0 || !l->fd_peer[0])
		return;
	fd_peer_name(l->fd, now);
	if (strcmp(now, l->fd_peer) == 0)
		node_fd_shutdown(l->fd);
	l->fd = -1;
}

uint64_t node_link_queued(const node_link *l)
{
	uint64_t sent, acked;

	if (l->fd < 0)
		return 0;
	sent = l->stats.bytes_out - l->fd_bytes_out;
	acked = fd_bytes_acked(l->fd) - l->fd_bytes_acked;
	return sent > acked ? sent - acked : 0;
}

/* True while the link and all links together have less queued than
 * the peer_queued_max and queued_total_max limits, so that one more
 * chunk may be sent. */
static bool may_queue_chunk(const node *n, const node_link *l)
{
	uint64_t total = 0;

	uint64_t now = cm_mono_ms();

	if (node_link_queued(l) >= n->limits.peer_queued_max)
		return false;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *other = &n->links[i];

		/* A peer silent for two ping intervals is likely gone (a
		 * killed process leaves its bytes unacknowledged until the
		 * link times out); its queue must not stop serving the
		 * others. A stalled peer that still pings counts. */
		if (!other->used ||
		    (other != l &&
		     now - other->last_rx > 2 * CM_PING_INTERVAL_MS))
			continue;
		total += node_link_queued(other);
	}
	return total < n->limits.queued_total_max;
}

/* Returns the inbound link that waited longest for its peer's HELLO, or
 * NULL when every inbound link is established. */
static node_link *oldest_unestablished(node *n)
{
	node_link *oldest = NULL;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used || l->dir != NODE_LINK_IN || l->established)
			continue;
		if (!oldest || l->opened < oldest->opened)
			oldest = l;
	}
	return oldest;
}

/* Frees an inbound slot for a new connection: evicts the link that waited
 * longest for a HELLO, and logs (at most every CM_BAN_LOG_INTERVAL_MS)
 * when the table is full of established links. */
static node_link *make_room(node *n)
{
	node_link *victim = oldest_unestablished(n);
	uint64_t now = cm_mono_ms();

	if (victim) {
		n->links_evicted++;
		link_close_connection(victim);
		node_link_drop(n, victim, "evicted before HELLO");
		return victim;
	}
	if (now >= n->table_full_log_until) {
		cm_warn(NODE_LOG, "inbound peer table full: %u established "
			"peers; new peers get no service",
			n->limits.peers_max);
		n->table_full_log_until = now + CM_BAN_LOG_INTERVAL_MS;
	}
	return NULL;
}

node_link *node_link_in(node *n, const uint8_t *routing_id, size_t len,
			const uint8_t key[NODE_KEY_LEN], const char *peer_ip)
{
	node_link *slot = NULL;
	size_t inbound = 0;

	if (len > NODE_ROUTING_ID_MAX)
		return NULL;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used) {
			slot = slot ? slot : l;
			continue;
		}
		if (l->dir != NODE_LINK_IN)
			continue;
		if (l->routing_id_len == len &&
		    memcmp(l->routing_id, routing_id, len) == 0)
			return l;
		inbound++;
	}

	/* A new connection from a key that has one already means the peer
	 * reconnected: close the old connection, which frees what libzmq
	 * still queues for it, and free its slot. */
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_IN &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0) {
			link_close_connection(l);
			node_link_drop(n, l, "replaced by a new connection");
			slot = slot ? slot : l;
			inbound--;
		}
	}
	if (!slot || inbound >= n->limits.peers_max) {
		slot = make_room(n);
		if (!slot)
			return NULL;
	}

	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->dir = NODE_LINK_IN;
	slot->fd = -1;
	memcpy(slot->routing_id, routing_id, len);
	slot->routing_id_len = len;
	memcpy(slot->key, key, NODE_KEY_LEN);
	cm_hex_short(key, slot->short_key);
	cm_strlcpy(slot->endpoint, peer_ip ? peer_ip : "", NODE_ENDPOINT_MAX);
	slot->last_rx = cm_mono_ms();
	slot->opened = slot->last_rx;
	return slot;
}

cm_err node_link_send(node *n, node_link *l, uint8_t *buf, size_t len)
{
	int rc;

	if (l->dir == NODE_LINK_OUT) {
		rc = zmq_send(l->dealer, buf, len, ZMQ_DONTWAIT);
	} else {
		rc = zmq_send(n->router, l->routing_id, l->routing_id_len,
			      ZMQ_DONTWAIT | ZMQ_SNDMORE);
		if (rc >= 0)
			rc = zmq_send(n->router, buf, len, ZMQ_DONTWAIT);
	}
	free(buf);

	if (rc < 0 && errno == EAGAIN)
		return CM_ERR_TIMEOUT;
	if (rc < 0 && errno == EHOSTUNREACH)
		return cm_errf(CM_ERR_NOT_FOUND, "peer %s is gone",
			       l->short_key);
	if (rc < 0)
		return cm_errf(CM_ERR_ZMQ, "sending to peer %s: %s",
			       l->short_key, zmq_strerror(errno));
	l->stats.bytes_out += len;
	return CM_OK;
}

static void send_hello(node *n, node_link *l, bool reply)
{
	proto_wire_role role = n->cfg->role == NODE_ROLE_MIRROR
				       ? PROTO_WIRE_ROLE_MIRROR
				       : PROTO_WIRE_ROLE_CREATOR;
	const uint8_t *interest = n->interest_all ? NULL : n->interest;
	uint8_t *buf;
	size_t len;

	l->last_hello = cm_mono_ms();
	l->hello_sent = false;
	if (proto_wire_hello(role, reply, n->pub, interest, n->n_interest,
			     &buf, &len))
		return;
	l->hello_sent = node_link_send(n, l, buf, len) == CM_OK;
}

static void send_ping(node *n, node_link *l)
{
	uint8_t *buf;
	size_t len;

	l->last_ping = cm_mono_ms();
	if (proto_wire_ping(&buf, &len))
		return;
	node_link_send(n, l, buf, len);
}

static bool set_interest(node_link *l, const proto_wire_msg *m)
{
	uint8_t *keys = NULL;

	if (!m->interest_all && m->n_interest > 0) {
		keys = malloc(m->n_interest * PROTO_KEY_LEN);
		if (!keys)
			return false;
		for (size_t i = 0; i < m->n_interest; i++)
			memcpy(keys + i * PROTO_KEY_LEN,
			       proto_wire_interest_key(m, i), PROTO_KEY_LEN);
	}
	free(l->interest);
	l->interest = keys;
	l->interest_all = m->interest_all;
	l->n_interest = keys ? node_keys_sort(keys, m->n_interest) : 0;
	return true;
}

static void on_hello(node *n, node_link *l, const proto_wire_msg *m)
{
	bool was_established = l->established;

	if (m->version != PROTO_WIRE_VERSION) {
		cm_errf(CM_ERR_BAD_VERSION, "peer speaks wire version %llu, "
			"this node %d", (unsigned long long)m->version,
			PROTO_WIRE_VERSION);
		node_reject(n, l, "hello", CM_ERR_BAD_VERSION, NULL);
		return;
	}
	if (memcmp(m->node_key, l->key, NODE_KEY_LEN) != 0) {
		cm_errf(CM_ERR_BAD_KEY, "hello names a key other than the "
			"connection's CURVE key");
		node_reject(n, l, "hello", CM_ERR_BAD_KEY, NULL);
		return;
	}
	if (!set_interest(l, m)) {
		cm_error(NODE_LOG, "out of memory for the interest of peer=%s",
			 l->short_key);
		return;
	}

	l->role = m->role;
	l->established = true;
	if (!was_established) {
		l->connected_ms = cm_now_ms();
		l->last_ping = cm_mono_ms();
		cm_info(NODE_LOG, "peer connected peer=%s endpoint=%s role=%s "
			"interest=%s", l->short_key, l->endpoint,
			role_name(l->role),
			l->interest_all ? "all" : "authors");
	}
	if (!m->reply)
		send_hello(n, l, true);

	node_sync_start(n, l);
	node_media_scan(n, false);
}

void node_link_receive(node *n, node_link *l, const uint8_t *buf,
		       size_t len)
{
	proto_wire_msg m;
	cm_err err;

	if (l->banned)
		return;
	l->last_rx = cm_mono_ms();
	l->stats.bytes_in += len;

	err = proto_wire_decode(buf, len, &m);
	if (err) {
		node_reject(n, l, "message", err, NULL);
		return;
	}
	if (m.type == PROTO_WIRE_HELLO) {
		on_hello(n, l, &m);
		return;
	}
	if (!l->established) {
		if (l->last_rx - l->last_hello >= CM_PING_INTERVAL_MS)
			send_hello(n, l, false);
		return;
	}

	switch (m.type) {
	case PROTO_WIRE_RECORDS:
		node_ingest(n, l, &m);
		break;
	case PROTO_WIRE_HAVE:
		node_gossip_on_have(n, l, &m);
		break;
	case PROTO_WIRE_WANT:
		node_sync_on_want(n, l, &m);
		break;
	case PROTO_WIRE_RECON_START:
	case PROTO_WIRE_RECON:
		node_sync_on_recon(n, l, &m, len);
		break;
	case PROTO_WIRE_CHUNK_REQ:
		if (!may_queue_chunk(n, l)) {
			/* A peer that does not read its replies. Dropped
			 * requests are not rejections: a slow honest peer
			 * requests the chunk again. */
			l->chunk_reqs_dropped++;
			n->chunk_reqs_dropped++;
			break;
		}
		node_media_on_message(n, l, &m);
		break;
	case PROTO_WIRE_MANIFEST_REQ:
	case PROTO_WIRE_MANIFEST:
	case PROTO_WIRE_CHUNK:
	case PROTO_WIRE_NOT_FOUND:
		node_media_on_message(n, l, &m);
		break;
	default: /* PING: last_rx is all it updates */
		break;
	}
}

void node_link_drop(node *n, node_link *l, const char *reason)
{
	log_suppressed(l, l->log_second + 1);
	if (l->established)
		cm_info(NODE_LOG, "peer disconnected peer=%s endpoint=%s "
			"reason=%s", l->short_key, l->endpoint, reason);
	node_media_on_link_down(n, l);

	l->established = false;
	free(l->interest);
	l->interest = NULL;
	l->n_interest = 0;
	node_sync_drop(l);
	l->chunks_in_flight = 0;

	if (l->dir == NODE_LINK_IN)
		memset(l, 0, sizeof(*l));
}

void node_link_free_all(node *n)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used)
			continue;
		node_link_drop(n, l, "node stopping");
		if (l->dir == NODE_LINK_OUT && l->dealer)
			zmq_close(l->dealer);
		memset(l, 0, sizeof(*l));
	}
}

void node_links_tick(node *n)
{
	uint64_t now = cm_mono_ms();

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];
		bool silent = now - l->last_rx > CM_PEER_TIMEOUT_MS;

		if (!l->used)
			continue;
		log_suppressed(l, now / 1000);
		if (l->banned) {
			node_link_drop(n, l, "banned");
			l->banned = false;
			continue;
		}
		if (silent && (l->established || l->dir == NODE_LINK_IN)) {
			node_link_drop(n, l, "timed out");
			if (!l->used)
				continue;
		}
		if (l->dir == NODE_LINK_IN && !l->established &&
		    now - l->opened >= n->limits.hello_timeout_ms) {
			cm_debug(NODE_LOG, "dropping peer=%s endpoint=%s: no "
				 "HELLO in %llu ms", l->short_key, l->endpoint,
				 (unsigned long long)n->limits.hello_timeout_ms);
			link_close_connection(l);
			node_link_drop(n, l, "no HELLO");
			continue;
		}

		if (!l->established) {
			/* Until a connection is up, sends fail at once
			 * (ZMQ_IMMEDIATE), so retry soon; after a HELLO went
			 * out, wait a ping interval for the reply. */
			uint64_t retry = l->hello_sent ? CM_PING_INTERVAL_MS
						       : HELLO_RETRY_MS;

			if (l->dir == NODE_LINK_OUT &&
			    now - l->last_hello >= retry &&
			    !node_is_banned(n, l->key))
				send_hello(n, l, false);
			continue;
		}
		if (now - l->last_ping >= CM_PING_INTERVAL_MS)
			send_ping(n, l);
		node_sync_tick(n, l);
	}
}

void node_links_rehello(node *n)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		if (n->links[i].used && n->links[i].established)
			send_hello(n, &n->links[i], false);
}

bool node_link_wants(const node_link *l, const uint8_t author[PROTO_KEY_LEN])
{
	return l->interest_all ||
	       node_keys_contain(l->interest, l->n_interest, author);
}

bool node_link_is_primary(const node *n, const node_link *l)
{
	for (const node_link *o = n->links; o < l; o++)
		if (o->used && o->established &&
		    memcmp(o->key, l->key, NODE_KEY_LEN) == 0)
			return false;
	return true;
}

bool node_is_banned(const node *n, const uint8_t key[NODE_KEY_LEN])
{
	uint64_t now = cm_mono_ms();

	for (size_t i = 0; i < CM_PEERS_MAX; i++)
		if (n->bans[i].until > now &&
		    memcmp(n->bans[i].key, key, NODE_KEY_LEN) == 0)
			return true;
	return false;
}

/* Bans the link's key, replacing the ban that ends first. The link is
 * dropped by the next tick, not here, because callers still use it. */
static void ban(node *n, node_link *l)
{
	struct node_ban *slot = &n->bans[0];
	uint64_t now = cm_mono_ms();

	for (size_t i = 1; i < CM_PEERS_MAX; i++)
		if (n->bans[i].until < slot->until)
			slot = &n->bans[i];
	memcpy(slot->key, l->key, NODE_KEY_LEN);
	slot->until = now + CM_PEER_BAN_MS;
	l->banned = true;

	/* Key rotation makes bans cheap to cause: one line per interval. */
	if (now < n->ban_log_until) {
		n->bans_unlogged++;
		return;
	}
	cm_warn(NODE_LOG, "banned peer=%s endpoint=%s for %d s: over %d "
		"rejected inputs in a minute (%llu other bans since the last "
		"line)", l->short_key, l->endpoint, CM_PEER_BAN_MS / 1000,
		CM_PEER_REJECTS_MAX, (unsigned long long)n->bans_unlogged);
	n->bans_unlogged = 0;
	n->ban_log_until = now + CM_BAN_LOG_INTERVAL_MS;
}

/* Logs how many rejection lines of a link were suppressed, once its
 * second is over. */
static void log_suppressed(node_link *l, uint64_t second)
{
	if (l->log_second == second)
		return;
	if (l->log_suppressed)
		cm_warn(NODE_LOG, "suppressed %llu rejection lines from "
			"peer=%s", (unsigned long long)l->log_suppressed,
			l->short_key);
	l->log_second = second;
	l->log_lines = 0;
	l->log_suppressed = 0;
}

/*
 * True for the reasons that count towards a ban: input that is malformed
 * or badly signed. Honest peers send records that are retracted, that
 * name another author's clip (a forged retraction they relayed) or that a
 * skewed clock dates in the future, so those reasons are only counted.
 */
static bool reason_is_hostile(cm_err reason)
{
	switch (reason) {
	case CM_ERR_FUTURE:
	case CM_ERR_RETRACTED:
	case CM_ERR_DUPLICATE:
	case CM_ERR_SUPERSEDED:
	case CM_ERR_NOT_AUTHOR:
	case CM_ERR_NOT_FOUND:
	case CM_ERR_MEDIA_MISSING:
	case CM_ERR_TIMEOUT:
	case CM_ERR_NOMEM:
	case CM_ERR_IO:
	case CM_ERR_STORE:
	case CM_ERR_STORE_FULL:
	case CM_ERR_ZMQ:
	case CM_ERR_CRYPTO:
		return false;
	default:
		return true;
	}
}

void node_reject(node *n, node_link *l, const char *what, cm_err reason,
		 const uint8_t *id)
{
	uint64_t now = cm_mono_ms();
	char short_id[9] = "-";

	n->rejected[reason]++;
	if (l) {
		cm_strlcpy(l->stats.last_error, cm_err_name(reason),
			   sizeof(l->stats.last_error));
		l->stats.last_error_ms = cm_now_ms();
		if (l->reject_minute != now / 60000) {
			l->reject_minute = now / 60000;
			l->rejects = 0;
		}
		if (reason_is_hostile(reason) &&
		    ++l->rejects > CM_PEER_REJECTS_MAX && !l->banned)
			ban(n, l);
		log_suppressed(l, now / 1000);
		if (l->log_lines >= REJECT_LOG_LINES_PER_SECOND) {
			l->log_suppressed++;
			return;
		}
		l->log_lines++;
	}

	if (id)
		cm_hex_short(id, short_id);
	cm_warn(NODE_LOG, "rejected %s reason=%s id=%s peer=%s: %s", what,
		cm_err_name(reason), short_id, l ? l->short_key : "local",
		cm_err_detail());
}

void node_flush_rejected(node *n)
{
	char name[64];

	for (int code = 0; code < CM_ERR_COUNT; code++) {
		cm_err err;

		if (!n->rejected[code])
			continue;
		snprintf(name, sizeof(name), "rejected.%s",
			 cm_err_name((cm_err)code));
		err = store_counter_add(n->st, name, n->rejected[code]);
		if (err) {
			cm_error(NODE_LOG, "counting %s failed: %s (%s)", name,
				 cm_err_name(err), cm_err_detail());
			return; /* keep the counts for the next flush */
		}
		n->rejected[code] = 0;
	}
}
