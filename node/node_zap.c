/*
 * node_zap.c - the ZAP handler, which decides which CURVE clients may
 * connect to the node's ROUTER.
 *
 * libzmq sends the handler one request per CURVE handshake, with the
 * client's address and public key, and accepts the client only on a "200"
 * reply. The handler denies a key or an address while it is banned, a key
 * that is not in the allow-list in allow-list mode, and a new key from an
 * address that already has CM_PEER_LINKS_PER_IP inbound links. Accepted
 * clients get their key in hex as the User-Id of their messages, so that
 * each inbound link has its peer's authenticated key. The NULL
 * mechanism (the local control socket) is always accepted.
 */
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES_MAX 8

static const char *const verdict_names[NODE_ZAP_VERDICTS] = {
	[NODE_ZAP_ACCEPT] = "accepted",
	[NODE_ZAP_BANNED_KEY] = "banned_key",
	[NODE_ZAP_BANNED_IP] = "banned_ip",
	[NODE_ZAP_NOT_ALLOWED] = "not_allowed",
	[NODE_ZAP_ADDRESS_FULL] = "address_full",
};

static const char *const verdict_texts[NODE_ZAP_VERDICTS] = {
	[NODE_ZAP_ACCEPT] = "accepted",
	[NODE_ZAP_BANNED_KEY] = "the key is banned",
	[NODE_ZAP_BANNED_IP] = "the address is banned",
	[NODE_ZAP_NOT_ALLOWED] = "the key is not in the allow-list",
	[NODE_ZAP_ADDRESS_FULL] = "the address is at its link limit",
};

const char *node_zap_verdict_name(node_zap_verdict v)
{
	return v < NODE_ZAP_VERDICTS ? verdict_names[v] : "unknown";
}

cm_err node_zap_open(void *ctx, void **zap)
{
	int linger = 0;

	*zap = zmq_socket(ctx, ZMQ_REP);
	if (!*zap)
		return cm_errf(CM_ERR_ZMQ, "creating the ZAP handler: %s",
			       zmq_strerror(errno));
	if (zmq_setsockopt(*zap, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_bind(*zap, ZAP_ENDPOINT)) {
		int saved = errno;

		zmq_close(*zap);
		*zap = NULL;
		return cm_errf(CM_ERR_ZMQ, "binding the ZAP handler to %s "
			       "failed: %s; the node does not start without "
			       "it, because libzmq would let every CURVE "
			       "client in", ZAP_ENDPOINT, zmq_strerror(saved));
	}
	return CM_OK;
}

node_zap_verdict node_zap_check(const node *n, const uint8_t key[NODE_KEY_LEN],
				const char *ip)
{
	uint64_t now = cm_mono_ms();

	if (n->allow_only && !node_keys_contain(n->allow, n->n_allow, key))
		return NODE_ZAP_NOT_ALLOWED;
	if (node_bans_active(&n->bans, NODE_BAN_KEY, key, NULL, now))
		return NODE_ZAP_BANNED_KEY;
	if (ip[0] && node_bans_active(&n->bans, NODE_BAN_IP, NULL, ip, now))
		return NODE_ZAP_BANNED_IP;

	/* Listed keys are trusted, so the address limit does not apply to
	 * them: several listed nodes may share one NAT address. */
	if (!n->allow_only && ip[0] &&
	    node_links_from_ip(n, ip, key) >= CM_PEER_LINKS_PER_IP)
		return NODE_ZAP_ADDRESS_FULL;
	return NODE_ZAP_ACCEPT;
}

/* Counts a denial and logs it, at most one line per
 * CM_BAN_LOG_INTERVAL_MS, because a denied client keeps reconnecting. */
static void log_denial(node *n, node_zap_verdict v,
		       const uint8_t key[NODE_KEY_LEN], const char *ip)
{
	uint64_t now = cm_mono_ms();
	char short_key[9];

	n->zap_denied[v]++;
	if (now < n->zap_log_until) {
		n->zap_unlogged++;
		return;
	}
	cm_hex_short(key, short_key);
	cm_warn(NODE_LOG, "denied connection peer=%s ip=%s: %s (%llu more "
		"denials since the last line)", short_key, ip[0] ? ip : "-",
		verdict_texts[v], (unsigned long long)n->zap_unlogged);
	n->zap_unlogged = 0;
	n->zap_log_until = now + CM_BAN_LOG_INTERVAL_MS;
}

static void zap_send(void *zap, zmq_msg_t *request_id, bool accept,
		     const char *user_id)
{
	const int more = ZMQ_SNDMORE;

	zmq_send(zap, "1.0", 3, more);
	zmq_send(zap, zmq_msg_data(request_id), zmq_msg_size(request_id),
		 more);
	zmq_send(zap, accept ? "200" : "400", 3, more);
	zmq_send(zap, accept ? "OK" : "denied", accept ? 2 : 6, more);
	zmq_send(zap, user_id, strlen(user_id), more);
	zmq_send(zap, "", 0, 0);
}

static bool frame_is(zmq_msg_t *frame, const char *text)
{
	return zmq_msg_size(frame) == strlen(text) &&
	       memcmp(zmq_msg_data(frame), text, strlen(text)) == 0;
}

/* Decides on a CURVE request whose frames are complete. */
static bool curve_accept(node *n, zmq_msg_t *frames, size_t count,
			 char user_id[2 * NODE_KEY_LEN + 1])
{
	char raw[NODE_IP_MAX] = "", ip[NODE_IP_MAX];
	const uint8_t *key;
	node_zap_verdict v;
	size_t ip_len;

	if (count != 7 || zmq_msg_size(&frames[6]) != NODE_KEY_LEN)
		return false;
	key = zmq_msg_data(&frames[6]);
	ip_len = zmq_msg_size(&frames[3]);
	if (ip_len < sizeof(raw)) {
		memcpy(raw, zmq_msg_data(&frames[3]), ip_len);
		raw[ip_len] = '\0';
	}
	node_ip_normalize(raw, ip);
	v = node_zap_check(n, key, ip);
	if (v != NODE_ZAP_ACCEPT) {
		log_denial(n, v, key, ip);
		return false;
	}
	cm_hex_encode(key, NODE_KEY_LEN, user_id);
	return true;
}

/*
 * Frames of a request: version, request id, domain, address, routing id,
 * mechanism, then the credentials (for CURVE the client's 32-byte public
 * key).
 */
void node_zap_reply(node *n)
{
	zmq_msg_t frames[ZAP_FRAMES_MAX];
	char user_id[2 * NODE_KEY_LEN + 1] = "";
	bool accept = false, more = true;
	size_t count = 0;

	while (more && count < ZAP_FRAMES_MAX) {
		zmq_msg_init(&frames[count]);
		if (zmq_msg_recv(&frames[count], n->zap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&frames[count]);
			goto out;
		}
		more = zmq_msg_more(&frames[count]);
		count++;
	}
	if (more || count < 6)
		goto out; /* a REP socket cannot reply to a partial request */

	if (frame_is(&frames[5], "CURVE"))
		accept = curve_accept(n, frames, count, user_id);
	else if (frame_is(&frames[5], "NULL"))
		accept = true; /* the local control socket */
	zap_send(n->zap, &frames[1], accept, user_id);
out:
	for (size_t i = 0; i < count; i++)
		zmq_msg_close(&frames[i]);
}
