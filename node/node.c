/*
 * node.c - node_run(): start-up, the poll loop, the ZAP handler and a
 * clean shutdown.
 *
 * Sockets: a ROUTER bound to the listen endpoint as CURVE server, one
 * DEALER per configured peer as CURVE client, the control ROUTER on an
 * ipc endpoint, and the ZAP handler (node_zap.c), bound before the ROUTER
 * so that no client connects unchecked.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define MONITOR_ENDPOINT "inproc://clipmesh.router.monitor"
#define POLL_MS 100
#define RECV_BURST 64 /* messages read per socket per loop turn */
#define FIXED_ITEMS 7 /* poll items before those of the outbound links */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

cm_err node_socket_defaults(void *sock)
{
	int64_t max = CM_WIRE_MSG_MAX;
	int hwm = CM_WIRE_HWM, linger = CM_LINGER_MS, ipv6 = 1;

	if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	    zmq_setsockopt(sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) ||
	    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)))
		return cm_errf(CM_ERR_ZMQ, "setting socket limits: %s",
			       zmq_strerror(errno));
	return CM_OK;
}

/*
 * Raises the soft limit on open descriptors to the hard limit, because
 * every inbound connection costs one and libzmq 4.3.4 aborts the process
 * (ipc_listener.cpp) when the control socket cannot accept for lack of
 * one. CM_CONNECTIONS_MAX and CM_FD_RESERVE keep peers below the limit.
 */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0) {
		cm_warn(NODE_LOG, "reading the open file limit failed: %s",
			strerror(errno));
		return;
	}
	if (lim.rlim_cur == lim.rlim_max)
		return;
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		cm_warn(NODE_LOG, "raising the open file limit to %llu failed: "
			"%s", (unsigned long long)lim.rlim_max,
			strerror(errno));
}

void node_fd_shutdown(int fd)
{
	/* shutdown(), not close(): the descriptor belongs to libzmq, which
	 * detects the closed connection and closes the fd. */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

void node_event_signal(int fd, const char *who)
{
	uint64_t one = 1;

	/* eventfd(2) fails a write with EAGAIN only when the counter would
	 * pass its maximum, and then a wake-up is pending anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cm_error(NODE_LOG, "waking the node thread from the %s failed: "
			 "%s", who, strerror(errno));
}

void node_event_drain(int fd, const char *who)
{
	uint64_t counter;

	if (read(fd, &counter, sizeof(counter)) < 0 && errno != EAGAIN)
		cm_error(NODE_LOG, "reading the %s's eventfd failed: %s", who,
			 strerror(errno));
}

/* Makes the error for a home whose lock another node holds, naming that
 * node's pid, which it wrote into the lock file. */
static cm_err lock_holder_error(int lock_fd, const char *home)
{
	char text[24] = "";
	ssize_t n = pread(lock_fd, text, sizeof(text) - 1, 0);
	long pid = n > 0 ? strtol(text, NULL, 10) : 0;

	if (pid > 0)
		return cm_errf(CM_ERR_EXISTS,
			       "another node (pid %ld) runs in %s; stop it "
			       "first", pid, home);
	return cm_errf(CM_ERR_EXISTS, "another node runs in %s; stop it first",
		       home);
}

/* Takes HOME/node.lock so that one node at most runs per home. */
static cm_err take_lock(node *n)
{
	char path[CM_HOME_PATH_MAX];
	cm_err err;

	err = cm_home_path(n->cfg->home, "node.lock", path);
	if (err)
		return err;
	n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lock_fd < 0)
		return cm_errf(CM_ERR_IO, "opening %s: %s", path,
			       strerror(errno));
	if (flock(n->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK
			       ? lock_holder_error(n->lock_fd, n->cfg->home)
			       : cm_errf(CM_ERR_IO, "locking %s: %s", path,
					 strerror(errno));
	if (ftruncate(n->lock_fd, 0) == 0)
		dprintf(n->lock_fd, "%ld\n", (long)getpid());
	return CM_OK;
}

/* Returns the TCP port that sock is bound to, or 0 when it is not a
 * TCP endpoint. */
static uint16_t bound_port(void *sock)
{
	char endpoint[NODE_ENDPOINT_MAX];
	size_t len = sizeof(endpoint);
	const char *colon;
	uint64_t port;

	if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len) ||
	    strncmp(endpoint, "tcp://", 6) != 0)
		return 0;
	colon = strrchr(endpoint, ':');
	if (!colon || !cm_parse_u64(colon + 1, &port) || port > UINT16_MAX)
		return 0;
	return (uint16_t)port;
}

static cm_err open_router(node *n)
{
	int on = 1, handshake = (int)n->limits.handshake_ms;
	int backlog = CM_LISTEN_BACKLOG;
	cm_err err;

	n->router = zmq_socket(n->ctx, ZMQ_ROUTER);
	if (!n->router)
		return cm_errf(CM_ERR_ZMQ, "creating ROUTER: %s",
			       zmq_strerror(errno));
	err = node_socket_defaults(n->router);
	if (err)
		return err;

	/* ROUTER_MANDATORY turns a send to a vanished peer into an error
	 * instead of a silent drop. */
	if (zmq_setsockopt(n->router, ZMQ_CURVE_SERVER, &on, sizeof(on)) ||
	    zmq_setsockopt(n->router, ZMQ_CURVE_SECRETKEY, n->secret,
			   NODE_KEY_LEN) ||
	    zmq_setsockopt(n->router, ZMQ_ZAP_DOMAIN, "clipmesh", 8) ||
	    zmq_setsockopt(n->router, ZMQ_ROUTER_MANDATORY, &on, sizeof(on)) ||
	    zmq_setsockopt(n->router, ZMQ_HANDSHAKE_IVL, &handshake,
			   sizeof(handshake)) ||
	    zmq_setsockopt(n->router, ZMQ_BACKLOG, &backlog, sizeof(backlog)))
		return cm_errf(CM_ERR_ZMQ, "setting ROUTER options: %s",
			       zmq_strerror(errno));

	/* libzmq 4.3.4 has no limit on accepted connections: the monitor
	 * reports each one with its descriptor, and the node shuts down
	 * those over the limit (node_conns_receive). */
	err = node_monitor_open(n->ctx, n->router, MONITOR_ENDPOINT,
				ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED,
				&n->monitor);
	if (err)
		return err;
	if (zmq_bind(n->router, n->cfg->listen))
		return cm_errf(CM_ERR_ZMQ,
			       "cannot listen on %s: %s; free the port or "
			       "give another with --listen or 'listen' in "
			       "HOME/config",
			       n->cfg->listen, zmq_strerror(errno));
	n->listen_port = bound_port(n->router);
	return CM_OK;
}

static int add_stored_peer(void *ctx, const char *addr)
{
	cm_err err = node_link_add_out(ctx, addr);

	if (err)
		cm_warn(NODE_LOG, "skipping stored peer %s: %s (%s)", addr,
			cm_err_name(err), cm_err_detail());
	return 0;
}

static cm_err add_peers(node *n)
{
	cm_err err;

	for (size_t i = 0; i < n->cfg->n_peers; i++) {
		err = node_link_add_out(n, n->cfg->peers[i]);
		if (err)
			return err;
	}
	err = store_peer_list(n->st, add_stored_peer, n);
	if (err)
		return err;
	node_known_load(n);
	return CM_OK;
}

static cm_err open_store(node *n)
{
	char dir[CM_HOME_PATH_MAX];
	cm_err err;

	err = cm_home_path(n->cfg->home, "store", dir);
	if (err)
		return err;
	return store_open_sized(dir, n->limits.store_map_size, &n->st);
}

static cm_err start(node *n)
{
	cm_err err;

	raise_fd_limit();
	node_conns_init(n);
	if (!cm_home_is_init(n->cfg->home))
		return cm_errf(CM_ERR_NOT_INIT, "%s is not initialised; run "
			       "clipmesh init", n->cfg->home);
	if ((err = take_lock(n)) || (err = open_store(n)) ||
	    (err = cm_home_transport_key(n->cfg->home, n->pub, &n->secret)))
		return err;
	cm_hex_short(n->pub, n->short_key);

	if ((err = node_ingest_start(n)) || (err = node_media_init(n)))
		return err;

	n->ctx = zmq_ctx_new();
	if (!n->ctx)
		return cm_errf(CM_ERR_ZMQ, "creating a ZeroMQ context: %s",
			       zmq_strerror(errno));
	if ((err = node_peer_limits_init(n)) ||
	    (err = node_zap_open(n->ctx, &n->zap)) || (err = open_router(n)) ||
	    (err = node_control_open(n)) || (err = add_peers(n)))
		return err;

	node_interest_refresh(n, true);
	node_media_scan(n, true);
	node_stats_publish(n, true);
	if (n->cfg->on_start) {
		err = n->cfg->on_start(n->cfg->hook_ctx, n->st);
		if (err)
			return err;
		n->hooks_started = true;
	}
	return CM_OK;
}

static void stop(node *n)
{
	/* First, so that the peers stop sending work while the rest of the
	 * stop runs. */
	node_goodbye_send_all(n);
	if (n->hooks_started && n->cfg->on_stop)
		n->cfg->on_stop(n->cfg->hook_ctx);
	node_stats_withdraw();
	/* Commits the records queued; they are not announced any more. */
	node_ingest_stop(n);
	node_flush_rejected(n);
	node_link_free_all(n);
	node_control_close(n);
	if (n->router) {
		zmq_socket_monitor(n->router, NULL, 0);
		zmq_close(n->router);
	}
	if (n->monitor)
		zmq_close(n->monitor);
	if (n->zap)
		zmq_close(n->zap);
	if (n->ctx)
		zmq_ctx_term(n->ctx);

	node_media_free(n);
	free(n->interest);
	free(n->allow);
	cm_secret_free(&n->secret);
	store_close(&n->st);
	if (n->lock_fd >= 0)
		close(n->lock_fd); /* releases the flock */
}

/* Receives up to RECV_BURST messages from peers connected to the ROUTER.
 * The CURVE key comes from the ZAP User-Id, so it cannot be forged. */
static void receive_router(node *n)
{
	for (int i = 0; i < RECV_BURST && !node_ingest_full(n); i++) {
		zmq_msg_t rid, msg;
		uint8_t key[NODE_KEY_LEN];
		const char *user_id, *ip;
		node_link *l;
		int fd;

		zmq_msg_init(&rid);
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&rid, n->router, ZMQ_DONTWAIT) < 0 ||
		    !zmq_msg_more(&rid) ||
		    zmq_msg_recv(&msg, n->router, 0) < 0) {
			zmq_msg_close(&rid);
			zmq_msg_close(&msg);
			return;
		}

		user_id = zmq_msg_gets(&msg, "User-Id");
		ip = zmq_msg_gets(&msg, "Peer-Address");
		fd = zmq_msg_get(&msg, ZMQ_SRCFD);
		if (!zmq_msg_more(&msg) && user_id &&
		    cm_hex_decode(user_id, key, NODE_KEY_LEN) &&
		    (l = node_link_in(n, zmq_msg_data(&rid), zmq_msg_size(&rid),
				      key, ip, fd))) {
			node_link_set_fd(l, fd);
			n->rx_msg = &msg;
			node_link_receive(n, l, zmq_msg_data(&msg),
					  zmq_msg_size(&msg));
			n->rx_msg = NULL;
		}

		/* Extra frames have no meaning in the protocol: drop them. */
		while (zmq_msg_more(&msg) &&
		       zmq_msg_recv(&msg, n->router, 0) >= 0)
			;
		zmq_msg_close(&rid);
		zmq_msg_close(&msg);
	}
}

cm_err node_monitor_open(void *ctx, void *sock, const char *endpoint,
			 int events, void **monitor)
{
	int zero = 0;

	if (zmq_socket_monitor(sock, endpoint, events))
		return cm_errf(CM_ERR_ZMQ, "monitoring a socket at %s: %s",
			       endpoint, zmq_strerror(errno));
	*monitor = zmq_socket(ctx, ZMQ_PAIR);
	if (!*monitor ||
	    zmq_setsockopt(*monitor, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_connect(*monitor, endpoint))
		return cm_errf(CM_ERR_ZMQ, "connecting to the monitor at %s: "
			       "%s", endpoint, zmq_strerror(errno));
	return CM_OK;
}

/* A monitor event is a 6-byte frame (16-bit event, 32-bit value, host
 * byte order) and a frame with the endpoint. */
bool node_monitor_read(void *monitor, uint16_t *event, int32_t *value)
{
	uint8_t head[6];
	char endpoint[NODE_ENDPOINT_MAX];
	int more = 0;
	size_t more_len = sizeof(more);
	int rc;

	rc = zmq_recv(monitor, head, sizeof(head), ZMQ_DONTWAIT);
	if (rc < 0)
		return false;
	zmq_getsockopt(monitor, ZMQ_RCVMORE, &more, &more_len);
	if (more)
		zmq_recv(monitor, endpoint, sizeof(endpoint), 0);
	if (rc != (int)sizeof(head))
		return node_monitor_read(monitor, event, value);
	memcpy(event, head, sizeof(*event));
	memcpy(value, head + 2, sizeof(*value));
	return true;
}

/* Receives up to RECV_BURST messages from an outbound peer, fewer when
 * its input limit pauses it. */
static void receive_dealer(node *n, node_link *l)
{
	uint64_t wake = UINT64_MAX;

	for (int i = 0; i < RECV_BURST && l->used && l->dealer &&
			!node_ingest_full(n) &&
			!node_link_paused(l, cm_mono_ms(), &wake);
	     i++) {
		zmq_msg_t msg;
		bool whole;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, l->dealer, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		whole = !zmq_msg_more(&msg);
		if (whole)
			node_link_set_fd(l, zmq_msg_get(&msg, ZMQ_SRCFD));
		if (whole && cm_mono_ms() >= l->ban_until) {
			n->rx_msg = &msg;
			node_link_receive(n, l, zmq_msg_data(&msg),
					  zmq_msg_size(&msg));
			n->rx_msg = NULL;
		}
		while (zmq_msg_more(&msg) &&
		       zmq_msg_recv(&msg, l->dealer, 0) >= 0)
			;
		zmq_msg_close(&msg);
	}
}

static void tick(node *n, uint64_t *next_flush)
{
	uint64_t now = cm_mono_ms();

	/* Stored records first, so that catch-up requests more at once. */
	node_ingest_collect(n);
	node_interest_refresh(n, false);
	node_links_tick(n);
	node_conns_close_silent(n);
	node_dial_fill(n);
	node_gossip_tick(n);
	node_media_tick(n);
	node_stats_publish(n, false);
	if (now >= *next_flush) {
		node_flush_rejected(n);
		cm_log_flush(false);
		*next_flush = now + CM_PING_INTERVAL_MS;
	}
}

/* Adds a poll item for each outbound link's DEALER that is not paused
 * and for the monitor of each DEALER, after the FIXED_ITEMS.
 * Returns the number of items. */
static size_t add_link_items(node *n, zmq_pollitem_t *items,
			     node_link **owners, uint64_t now, uint64_t *wake)
{
	size_t count = FIXED_ITEMS;

	/* Each turn starts at another link, and the links come before or
	 * after the ROUTER by turns (loop), so that while the verify
	 * threads are full no peer's socket is always read last. */
	for (size_t j = 0; j < NODE_LINKS_MAX; j++) {
		node_link *l = &n->links[(j + n->turns) % NODE_LINKS_MAX];
		short events;

		if (!l->used || l->dir != NODE_LINK_OUT || !l->dealer)
			continue;
		/* A paused DEALER is left unread, so that its peer waits on
		 * TCP instead of filling our memory, and so is every DEALER
		 * while the verify threads have a full queue. */
		if (!node_link_paused(l, now, wake)) {
			events = node_ingest_full(n) ? 0 : ZMQ_POLLIN;
			if (node_link_hello_waits(l, now))
				events |= ZMQ_POLLOUT;
			if (events) {
				owners[count] = l;
				items[count++] = (zmq_pollitem_t){
					l->dealer, 0, events, 0};
			}
		}
		if (l->dial_monitor) {
			owners[count] = l;
			items[count++] = (zmq_pollitem_t){l->dial_monitor, 0,
							  ZMQ_POLLIN, 0};
		}
	}
	return count;
}

/* Handles the ready items of the outbound links. An item whose socket
 * the link no longer has, because an earlier item of this turn closed
 * it, is skipped. A DEALER comes before its monitor, so that a HELLO
 * that arrived just before the connection closed still counts. */
static void handle_link_items(node *n, const zmq_pollitem_t *items,
			      node_link **owners, size_t count)
{
	for (size_t i = FIXED_ITEMS; i < count; i++) {
		node_link *l = owners[i];

		if (!items[i].revents)
			continue;
		if (items[i].socket == l->dial_monitor) {
			node_dial_on_event(n, l);
			continue;
		}
		if (items[i].socket != l->dealer)
			continue;
		/* A DEALER with ZMQ_IMMEDIATE becomes writable once its
		 * connection finished the CURVE handshake. */
		if (items[i].revents & ZMQ_POLLOUT)
			node_link_writable(n, l);
		if (items[i].revents & ZMQ_POLLIN)
			receive_dealer(n, l);
	}
}

static cm_err loop(node *n)
{
	zmq_pollitem_t items[FIXED_ITEMS + 2 * NODE_LINKS_MAX];
	node_link *owners[FIXED_ITEMS + 2 * NODE_LINKS_MAX];
	uint64_t next_flush = 0;

	while (!stop_signal) {
		uint64_t now = cm_mono_ms(), wake = now + POLL_MS;
		short router_events;
		bool links_first;
		size_t count;

		/* Peers wait while the verify threads are full, and the
		 * verify eventfd below ends the wait. */
		router_events = node_ingest_full(n) ? 0 : ZMQ_POLLIN;
		items[0] = (zmq_pollitem_t){n->router, 0, router_events, 0};
		items[1] = (zmq_pollitem_t){n->control, 0, ZMQ_POLLIN, 0};
		items[2] = (zmq_pollitem_t){n->zap, 0, ZMQ_POLLIN, 0};
		items[3] = (zmq_pollitem_t){n->monitor, 0, ZMQ_POLLIN, 0};
		/* The chunk writer's results; tick() collects them. */
		items[4] = (zmq_pollitem_t){NULL, node_media_wake_fd(n),
					    ZMQ_POLLIN, 0};
		/* The record writer's results; tick() collects them too. */
		items[5] = (zmq_pollitem_t){NULL, node_ingest_wake_fd(n),
					    ZMQ_POLLIN, 0};
		/* Verified records; tick() hands them to the writer. */
		items[6] = (zmq_pollitem_t){NULL, node_ingest_verify_fd(n),
					    ZMQ_POLLIN, 0};
		count = add_link_items(n, items, owners, now, &wake);
		if (node_media_busy(n))
			wake = now;

		if (zmq_poll(items, (int)count, (long)(wake - now)) < 0) {
			if (errno == EINTR)
				continue;
			return cm_errf(CM_ERR_ZMQ, "polling: %s",
				       zmq_strerror(errno));
		}
		if (items[3].revents & ZMQ_POLLIN)
			node_conns_receive(n);
		if (items[2].revents & ZMQ_POLLIN)
			node_zap_reply(n);
		links_first = n->turns++ % 2 == 1;
		if (links_first)
			handle_link_items(n, items, owners, count);
		if (items[0].revents & ZMQ_POLLIN)
			receive_router(n);
		if (items[1].revents & ZMQ_POLLIN)
			node_control_receive(n);
		if (!links_first)
			handle_link_items(n, items, owners, count);
		tick(n, &next_flush);
	}
	return CM_OK;
}

/* Copies the configured limits, with the cm_limits.h default for each
 * field left 0 and the counts capped by the sizes of the node's tables. */
static void resolve_limits(const node_limits *in, node_limits *out)
{
	*out = *in;
	if (out->peers_max == 0 || out->peers_max > CM_PEERS_MAX)
		out->peers_max = CM_PEERS_MAX;
	if (out->connections_max == 0 ||
	    out->connections_max > CM_CONNECTIONS_MAX)
		out->connections_max = CM_CONNECTIONS_MAX;
	if (out->media_fetches == 0 || out->media_fetches > CM_MEDIA_JOBS_MAX)
		out->media_fetches = CM_MEDIA_JOBS_MAX;
	if (out->peer_queued_max == 0)
		out->peer_queued_max = CM_PEER_QUEUED_MAX;
	if (out->queued_total_max == 0)
		out->queued_total_max = CM_QUEUED_TOTAL_MAX;
	if (out->sync_interval_ms == 0)
		out->sync_interval_ms = CM_SYNC_INTERVAL_MS;
	if (out->handshake_ms == 0 || out->handshake_ms > INT32_MAX)
		out->handshake_ms = CM_HANDSHAKE_MS;
	if (out->hello_timeout_ms == 0)
		out->hello_timeout_ms = CM_HELLO_DEADLINE_MS;
	if (out->reconnect_max_ms < CM_RECONNECT_MIN_MS)
		out->reconnect_max_ms = CM_RECONNECT_MAX_MS;
	if (out->store_map_size == 0)
		out->store_map_size = CM_STORE_MAP_SIZE;
}

/* Handlers that node_run replaces and restores. */
static struct sigaction old_int, old_term;

/* Installs the stop handler without SA_RESTART, so that zmq_poll returns
 * at once with EINTR. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	signal(SIGPIPE, SIG_IGN);
}

static void restore_signals(void)
{
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}

cm_err node_run(const node_config *cfg)
{
	node *n;
	cm_err err;

	if (!cfg || !cfg->home || !cfg->listen)
		return cm_errf(CM_ERR_USAGE, "node needs a home and a listen "
			       "endpoint");
	n = calloc(1, sizeof(*n));
	if (!n)
		return CM_ERR_NOMEM;
	n->cfg = cfg;
	randombytes_buf(n->refused_salt, sizeof(n->refused_salt));
	resolve_limits(&cfg->limits, &n->limits);
	n->lock_fd = -1;
	stop_signal = 0;
	catch_signals();

	/* Errors that end node_run are returned, not logged: the caller
	 * reports them. */
	n->learned_dial_after = cm_mono_ms() + CM_LEARNED_DIAL_DELAY_MS;
	err = start(n);
	if (err)
		goto out;
	cm_info(NODE_LOG, "started role=%s listen=%s node=%s interest=%s",
		cfg->role == NODE_ROLE_MIRROR ? "mirror" : "creator",
		cfg->listen, n->short_key,
		n->interest_all ? "all" : "own and followed authors");
	if (cfg->test_clock_offset_ms != 0)
		cm_warn(NODE_LOG, "test_clock_offset=%lld ms: this node "
			"tells its peers a wrong time, for testing only",
			(long long)cfg->test_clock_offset_ms);

	err = loop(n);
out:
	stop(n);
	restore_signals();
	if (!err)
		cm_info(NODE_LOG, "stopped");
	cm_log_flush(true);
	free(n);
	return err;
}
