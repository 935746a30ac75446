/*
 * node_conn.c - the inbound TCP connections of the ROUTER, as its socket
 * monitor reports them: the connection limit and the closing of
 * connections that never become a link.
 *
 * libzmq 4.3.4 neither limits accepted connections nor closes one that
 * finished the CURVE handshake and then sends nothing (the HELLO
 * deadline in node_peer.c starts with a first message). The node
 * therefore tracks each connection by its descriptor, from the monitor's
 * ACCEPTED and DISCONNECTED events, and shuts down those it does not
 * want with shutdown(2), which libzmq notices.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define EVENTS_BURST 64 /* connections refused per read of the monitor */

/* Returns the current soft limit on open descriptors, which another
 * process may lower at any time (prlimit). */
static uint64_t fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0 || lim.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return lim.rlim_cur;
}

/* Returns how long a connection may go without an inbound link before
 * it is shut down: its whole handshake, then the wait for a HELLO. */
static uint64_t silent_limit_ms(const node *n)
{
	return n->limits.handshake_ms + n->limits.hello_timeout_ms;
}

void node_conns_init(node *n)
{
	for (size_t i = 0; i < CM_CONNECTIONS_MAX; i++)
		n->conns[i] = (node_conn){.fd = -1};
	n->n_conns = 0;
	n->conns_next_check = UINT64_MAX;
}

/* Forgets a tracked inbound connection; false when it was not tracked. */
static bool conn_forget(node *n, int fd)
{
	for (size_t i = 0; i < CM_CONNECTIONS_MAX; i++) {
		if (n->conns[i].fd == fd) {
			n->conns[i].fd = -1;
			n->n_conns--;
			return true;
		}
	}
	return false;
}

/* Writes the source of connection fd as cm_addr_source gives it; all
 * zeros when the address is unknown. */
static void conn_source(int fd, uint8_t out[CM_ADDR_SOURCE_LEN])
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	memset(out, 0, CM_ADDR_SOURCE_LEN);
	if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0)
		cm_addr_source((struct sockaddr *)&sa, out);
}

/* Returns how many tracked connections come from `source`. */
static size_t conns_from(const node *n,
			 const uint8_t source[CM_ADDR_SOURCE_LEN])
{
	size_t count = 0;

	for (size_t i = 0; i < CM_CONNECTIONS_MAX; i++)
		if (n->conns[i].fd >= 0 &&
		    memcmp(n->conns[i].source, source,
			   CM_ADDR_SOURCE_LEN) == 0)
			count++;
	return count;
}

/* Tracks a new inbound connection; false when it is over the limit, in
 * count, in descriptors or from its address. */
static bool conn_track(node *n, int fd)
{
	uint64_t limit = fd_limit();
	uint64_t deadline = cm_mono_ms() + silent_limit_ms(n);
	uint8_t source[CM_ADDR_SOURCE_LEN];

	if (n->n_conns >= n->limits.connections_max ||
	    (limit >= CM_FD_RESERVE && (uint64_t)fd >= limit - CM_FD_RESERVE))
		return false;
	conn_source(fd, source);
	if (source[0] != 0 && conns_from(n, source) >= CM_CONNECTIONS_PER_IP) {
		n->conns_refused_source++;
		return false;
	}
	for (size_t i = 0; i < CM_CONNECTIONS_MAX; i++) {
		if (n->conns[i].fd < 0) {
			n->conns[i].fd = fd;
			memcpy(n->conns[i].source, source, sizeof(source));
			n->conns[i].deadline = deadline;
			n->n_conns++;
			if (deadline < n->conns_next_check)
				n->conns_next_check = deadline;
			return true;
		}
	}
	return false;
}

/* Decides whether a log line about `count` more closed connections is
 * due, at most one per CM_BAN_LOG_INTERVAL_MS. When it is, stores in
 * *skipped the count closed since the last line and starts a new
 * interval that ends at *until; otherwise adds count to *unlogged. */
static bool log_due(uint64_t *until, uint64_t *unlogged, size_t count,
		    uint64_t *skipped)
{
	uint64_t now = cm_mono_ms();

	if (now < *until) {
		*unlogged += count;
		return false;
	}
	*skipped = *unlogged;
	*unlogged = 0;
	*until = now + CM_BAN_LOG_INTERVAL_MS;
	return true;
}

static void log_refused(node *n, size_t refused)
{
	uint64_t skipped;

	n->conns_refused += refused;
	if (!log_due(&n->conns_log_until, &n->conns_unlogged, refused,
		     &skipped))
		return;
	cm_warn(NODE_LOG, "closed %zu new inbound connections (%llu more "
		"since the last line): %zu open, limit %u and %d per "
		"address, descriptor limit %llu less %d in reserve", refused,
		(unsigned long long)skipped, n->n_conns,
		n->limits.connections_max, CM_CONNECTIONS_PER_IP,
		(unsigned long long)fd_limit(), CM_FD_RESERVE);
}

/*
 * Reads the queued monitor events, tracks the inbound connections and
 * shuts down the new ones over the limit. The shutdowns wait until the
 * queue is drained, so that a connection that already ended (and whose
 * descriptor may have been reused) is not touched.
 */
void node_conns_receive(node *n)
{
	int refused[EVENTS_BURST];
	size_t n_refused = 0;
	uint16_t event;
	int32_t fd;

	for (int i = 0;
	     i < 4 * EVENTS_BURST && node_monitor_read(n->monitor, &event, &fd);
	     i++) {
		if (event == ZMQ_EVENT_ACCEPTED && !conn_track(n, fd) &&
		    n_refused < EVENTS_BURST) {
			refused[n_refused++] = fd;
		} else if (event == ZMQ_EVENT_DISCONNECTED &&
			   !conn_forget(n, fd)) {
			for (size_t k = 0; k < n_refused; k++)
				if (refused[k] == fd)
					refused[k] = -1;
		}
	}
	/* NOTE: an accepted connection over the limit that does not fit in
	 * `refused` stays open until its handshake times out. */
	for (size_t k = 0; k < n_refused; k++)
		node_fd_shutdown(refused[k]);
	if (n_refused)
		log_refused(n, n_refused);
}

static void log_silent(node *n, size_t closed)
{
	uint64_t skipped;

	n->conns_silent += closed;
	if (!log_due(&n->conns_silent_log_until, &n->conns_silent_unlogged,
		     closed, &skipped))
		return;
	cm_warn(NODE_LOG, "closed %zu inbound connection%s that no peer "
		"link used for %llu ms (%llu more since the last line); "
		"inbound connections at most %u", closed,
		closed == 1 ? "" : "s", (unsigned long long)silent_limit_ms(n),
		(unsigned long long)skipped, n->limits.connections_max);
}

static int compare_fds(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Stores the descriptors of the inbound links, sorted, in fds; returns
 * how many. A link's descriptor comes from ZMQ_SRCFD of its messages. */
static size_t linked_fds(const node *n, int fds[NODE_LINKS_MAX])
{
	size_t count = 0;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_IN && l->fd >= 0)
			fds[count++] = l->fd;
	}
	qsort(fds, count, sizeof(fds[0]), compare_fds);
	return count;
}

/*
 * A connection's deadline starts at its ACCEPTED event. When it passes,
 * the connection gets a new deadline if an inbound link uses its
 * descriptor, and is shut down otherwise. A connection that stays open
 * after its link was dropped (a link timeout does not close it) is thus
 * closed too. UINT64_MAX marks one that is shut down and waits for its
 * DISCONNECTED event. A link whose connection ended keeps the old
 * descriptor until it times out, so a new connection that reuses that
 * number counts as used until then.
 */
void node_conns_close_silent(node *n)
{
	int fds[NODE_LINKS_MAX];
	size_t n_fds, n_closed = 0;
	uint64_t now = cm_mono_ms(), next = UINT64_MAX;

	if (now < n->conns_next_check)
		return;

	/* libzmq queues a connection's DISCONNECTED event before it closes
	 * the descriptor (stream_engine_base_t::error), so once the queue is
	 * read, each descriptor in the table belongs to the connection it
	 * was accepted for. A shutdown then cannot hit a newer connection
	 * that reuses the number, unless both the end and the new accept
	 * fall between this read and the shutdown. */
	node_conns_receive(n);
	n_fds = linked_fds(n, fds);
	for (size_t i = 0; i < CM_CONNECTIONS_MAX; i++) {
		node_conn *c = &n->conns[i];

		if (c->fd < 0 || c->deadline == UINT64_MAX)
			continue;
		if (now >= c->deadline &&
		    bsearch(&c->fd, fds, n_fds, sizeof(fds[0]), compare_fds))
			c->deadline = now + silent_limit_ms(n);
		if (now >= c->deadline) {
			node_fd_shutdown(c->fd);
			c->deadline = UINT64_MAX;
			n_closed++;
			continue;
		}
		if (c->deadline < next)
			next = c->deadline;
	}
	n->conns_next_check = next;
	if (n_closed)
		log_silent(n, n_closed);
}
