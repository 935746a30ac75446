/*
 * node_goodbye.c - GOODBYE: a node that stops cleanly sends it to its
 * peers, so that they drop the link at once instead of after
 * CM_PEER_TIMEOUT_MS of silence.
 *
 * The sender keeps each connection open until the peer has closed it or
 * CM_GOODBYE_WAIT_MS has passed. A peer closes its side only after it
 * read the GOODBYE, and a sender that closed first could lose it: a
 * DEALER with ZMQ_IMMEDIATE drops the messages it has not handed to the
 * application when its connection ends (libzmq 4.3,
 * session_base_t::reconnect), and a ROUTER keeps them only for its own
 * linger. Waiting for the peer's close avoids both.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

/* Sends GOODBYE to link l. Returns false when it could not be queued. */
static bool send_goodbye(node *n, node_link *l)
{
	uint8_t *buf;
	size_t len;

	if (proto_wire_goodbye(&buf, &len) != CM_OK)
		return false;
	return node_link_send(n, l, buf, len) == CM_OK;
}

/* Waits until every connection in fds (n_fds entries) is closed by its
 * peer, or until deadline (monotonic ms). Returns the number still
 * open. libzmq owns the descriptors: this only polls them. */
static size_t wait_for_closes(struct pollfd *fds, size_t n_fds,
			      uint64_t deadline)
{
	size_t open = n_fds;
	uint64_t now;

	for (size_t i = 0; i < n_fds; i++)
		fds[i].events = POLLRDHUP;
	while (open > 0 && (now = cm_mono_ms()) < deadline) {
		if (poll(fds, n_fds, (int)(deadline - now)) < 0) {
			if (errno == EINTR)
				continue;
			cm_warn(NODE_LOG, "waiting for peers to close after "
				"GOODBYE failed: %s", strerror(errno));
			break;
		}
		for (size_t i = 0; i < n_fds; i++) {
			/* POLLNVAL: libzmq already closed the descriptor
			 * after the peer's close. */
			if (fds[i].fd >= 0 &&
			    (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR |
					       POLLNVAL))) {
				fds[i].fd = -1; /* poll skips it from now on */
				open--;
			}
		}
	}
	return open;
}

void node_goodbye_send_all(node *n)
{
	struct pollfd fds[NODE_LINKS_MAX];
	size_t sent = 0, skipped = 0, n_fds = 0, open;
	uint64_t start;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used || !l->established)
			continue;
		if (!send_goodbye(n, l)) {
			skipped++;
			continue;
		}
		sent++;
		if (l->fd >= 0)
			fds[n_fds++] = (struct pollfd){.fd = l->fd};
	}
	if (sent == 0 && skipped == 0)
		return;
	cm_info(NODE_LOG, "sent GOODBYE to %zu peers, skipped %zu whose send "
		"queue was full or closed", sent, skipped);

	start = cm_mono_ms();
	open = wait_for_closes(fds, n_fds, start + CM_GOODBYE_WAIT_MS);
	if (open > 0)
		cm_info(NODE_LOG, "%zu peers did not close their connection "
			"within %d ms of the GOODBYE; stopping anyway", open,
			CM_GOODBYE_WAIT_MS);
	else
		cm_debug(NODE_LOG, "every peer closed its connection %llu ms "
			 "after the GOODBYE",
			 (unsigned long long)(cm_mono_ms() - start));
}

void node_goodbye_receive(node *n, node_link *l)
{
	/* No HELLO goes back either: the peer is stopping. */
	if (!l->established) {
		cm_debug(NODE_LOG, "ignoring GOODBYE from peer=%s endpoint=%s: "
			 "no HELLO yet", l->short_key, l->endpoint);
		return;
	}
	if (l->dir == NODE_LINK_IN)
		node_link_depart(n, l);
	else
		node_link_drop(n, l, "goodbye");
}
