/*
 * node_sync.c - anti-entropy between two connected nodes by range-based
 * set reconciliation (proto_recon.h), and the WANT / RECORDS exchange
 * that fetches what it finds missing.
 *
 * Each side pulls. After the handshake, and every CM_SYNC_INTERVAL_MS
 * after that, a node starts a session as initiator over its own interest.
 * A mirror's session has one scope of every author, and a creator node's
 * has one scope per identity and followed author. The peer responds as
 * responder.
 * Both sessions of a link run at once and are told apart by round parity:
 * the responder sends odd rounds. When a session lists ids the initiator
 * neither stores nor knows as retracted, the initiator asks for them in
 * WANT and receives RECORDS, which node_ingest stores and pushes on.
 *
 * A link holds at most one session per direction. A new RECON_START from
 * the peer replaces its old session, but not within
 * CM_RECON_SESSION_GAP_MS / 2 of the previous one, so a peer cannot make
 * this node rescan its store in a loop. A session that hears nothing for
 * CM_RECON_SESSION_TIMEOUT_MS ends; the next interval starts a new one.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

/* One direction of reconciliation on a link. */
typedef struct sync_session {
	bool active;
	uint64_t id;
	uint64_t round;              /* last round sent */
	uint64_t started;            /* monotonic ms */
	uint64_t last;               /* monotonic ms of the last message */
	uint8_t *authors;            /* scopes, malloc'd; NULL: all */
	size_t n_authors;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t wanted;
	proto_recon_session recon;
} sync_session;

struct node_sync {
	sync_session out;            /* ours, as initiator */
	sync_session in;             /* the peer's, as responder */
};

static void session_end(sync_session *ss)
{
	proto_recon_session_free(&ss->recon);
	free(ss->authors);
	ss->authors = NULL;
	ss->n_authors = 0;
	ss->active = false;
}

void node_sync_drop(node_link *l)
{
	if (!l->sync)
		return;
	session_end(&l->sync->out);
	session_end(&l->sync->in);
	free(l->sync);
	l->sync = NULL;
}

static bool sync_alloc(node_link *l)
{
	if (!l->sync)
		l->sync = calloc(1, sizeof(*l->sync));
	return l->sync != NULL;
}

/* Runs one step of a session against our store: the first payload when
 * `in` is NULL, else the response to `in`. */
static cm_err run_step(node *n, sync_session *ss, const uint8_t *in,
		       size_t in_len, uint8_t **out, size_t *len, bool *done)
{
	proto_recon_source src = {0};
	store_recon_view *view = NULL;
	cm_err err;

	*done = false;
	err = store_recon_open(n->st, ss->authors, ss->n_authors, &src,
			       &view);
	if (err)
		return err;
	ss->recon.src = &src;
	if (in)
		err = proto_recon_next(&ss->recon, in, in_len, out, len, done);
	else
		err = proto_recon_first(&ss->recon, out, len);
	ss->recon.src = NULL;
	store_recon_close(&view);
	return err;
}

/* Sends a reconciliation message and counts its bytes. */
static cm_err send_recon(node *n, node_link *l, sync_session *ss,
			 uint8_t *buf, size_t len)
{
	cm_err err = node_link_send(n, l, buf, len);

	if (!err)
		ss->bytes_out += len;
	ss->last = cm_mono_ms();
	return err;
}

/* Copies the scopes of our interest into ss. */
static bool copy_interest(node *n, sync_session *ss)
{
	if (n->interest_all)
		return true;
	ss->authors = malloc(n->n_interest * PROTO_KEY_LEN);
	if (!ss->authors)
		return false;
	memcpy(ss->authors, n->interest, n->n_interest * PROTO_KEY_LEN);
	ss->n_authors = n->n_interest;
	return true;
}

/* Builds and sends the first message of a new session of ours. */
static cm_err start_session(node *n, node_link *l, sync_session *ss)
{
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len = 0, len = 0;
	bool done;
	cm_err err;

	memset(ss, 0, sizeof(*ss));
	if (!copy_interest(n, ss))
		return cm_errf(CM_ERR_NOMEM, "cannot copy %zu authors",
			       n->n_interest);
	randombytes_buf(&ss->id, sizeof(ss->id));
	randombytes_buf(ss->recon.salt, sizeof(ss->recon.salt));
	ss->recon.initiator = true;
	ss->recon.params = proto_recon_defaults();
	ss->recon.n_scopes = ss->authors ? ss->n_authors : 1;
	ss->started = cm_mono_ms();

	err = run_step(n, ss, NULL, 0, &payload, &payload_len, &done);
	if (!err)
		err = proto_wire_recon_start(ss->id, ss->recon.salt,
					     ss->recon.params.fp_len,
					     ss->recon.params.hash_len,
					     ss->authors, ss->n_authors,
					     payload, payload_len, &buf, &len);
	free(payload);
	if (!err)
		err = send_recon(n, l, ss, buf, len);
	if (err) {
		session_end(ss);
		return err;
	}
	ss->active = true;
	return CM_OK;
}

void node_sync_start(node *n, node_link *l)
{
	uint64_t now = cm_mono_ms();
	sync_session *ss;
	cm_err err;

	if (!l->established)
		return;
	if (!n->interest_all && n->n_interest == 0) {
		l->next_sync = now + n->limits.sync_interval_ms;
		return;
	}
	if (!sync_alloc(l)) {
		cm_error(NODE_LOG, "out of memory for reconciliation with "
			 "peer=%s", l->short_key);
		return;
	}
	ss = &l->sync->out;
	if (ss->started && now - ss->started < CM_RECON_SESSION_GAP_MS) {
		/* A HELLO right after a session began: start again soon. */
		l->next_sync = ss->started + CM_RECON_SESSION_GAP_MS;
		return;
	}

	err = store_fp_ensure(n->st);
	if (!err) {
		session_end(ss);
		err = start_session(n, l, ss);
	}
	if (err == CM_ERR_TIMEOUT) {
		/* Queue full: try again after the next pings. */
		l->next_sync = now + CM_PING_INTERVAL_MS;
		return;
	}
	l->next_sync = now + n->limits.sync_interval_ms;
	if (err) {
		cm_error(NODE_LOG, "starting reconciliation with peer=%s "
			 "failed: %s (%s)", l->short_key, cm_err_name(err),
			 cm_err_detail());
		return;
	}
	cm_debug(NODE_LOG, "reconciliation with peer=%s started: %zu "
		 "scopes, %llu bytes", l->short_key, ss->recon.n_scopes,
		 (unsigned long long)ss->bytes_out);
}

void node_sync_tick(node *n, node_link *l)
{
	uint64_t now = cm_mono_ms();

	if (l->sync) {
		sync_session *sessions[2] = {&l->sync->out, &l->sync->in};

		/* The responder's side ends this way whenever the
		 * initiator's last response settled everything, because an
		 * initiator does not send such a response. So only our own
		 * side's timeout is logged. */
		for (size_t i = 0; i < 2; i++) {
			if (!sessions[i]->active ||
			    now - sessions[i]->last <
				    CM_RECON_SESSION_TIMEOUT_MS)
				continue;
			if (i == 0)
				cm_info(NODE_LOG, "reconciliation with "
					"peer=%s timed out after round %llu",
					l->short_key, (unsigned long long)
						sessions[i]->round);
			session_end(sessions[i]);
		}
	}
	if (now >= l->next_sync)
		node_sync_start(n, l);
}

/* Asks the peer for the listed ids that we neither store nor know as
 * retracted, in WANT pages. */
static void request_missing(node *n, node_link *l, sync_session *ss)
{
	proto_recon_session *r = &ss->recon;
	size_t k = 0, len;
	uint8_t *buf;

	for (size_t i = 0; i < r->n_want; i++) {
		const uint8_t *id = r->want + i * PROTO_ID_LEN;

		if (store_has(n->st, id) || store_is_retracted(n->st, id, NULL))
			continue;
		memmove(r->want + k * PROTO_ID_LEN, id, PROTO_ID_LEN);
		k++;
	}
	r->n_want = 0;
	ss->wanted += k;
	for (size_t done = 0; done < k; done += CM_WIRE_IDS_MAX) {
		size_t page = k - done;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		if (proto_wire_ids(PROTO_WIRE_WANT,
				   r->want + done * PROTO_ID_LEN, page, &buf,
				   &len))
			return;
		if (node_link_send(n, l, buf, len))
			return; /* queue full: the next session asks again */
	}
	if (k > 0)
		cm_debug(NODE_LOG, "asking peer=%s for %zu records",
			 l->short_key, k);
}

/* True when err blames the peer's message rather than this node. */
static bool peer_fault(cm_err err)
{
	switch (err) {
	case CM_ERR_NOMEM:
	case CM_ERR_IO:
	case CM_ERR_USAGE:
	case CM_ERR_STORE:
	case CM_ERR_STORE_FULL:
	case CM_ERR_ZMQ:
	case CM_ERR_TIMEOUT:
	case CM_ERR_NOT_FOUND:
		return false;
	default:
		return true;
	}
}

/* Logs the end of a session and adds it to the link's statistics. */
static void log_end(node_link *l, const sync_session *ss, const char *role)
{
	l->stats.recon_sessions++;
	l->stats.recon_rounds += ss->round;
	l->stats.recon_bytes_in += ss->bytes_in;
	l->stats.recon_bytes_out += ss->bytes_out;
	cm_debug(NODE_LOG, "reconciliation as %s with peer=%s done: %llu "
		 "rounds, %llu bytes in, %llu out, %llu records wanted",
		 role, l->short_key, (unsigned long long)ss->round,
		 (unsigned long long)ss->bytes_in,
		 (unsigned long long)ss->bytes_out,
		 (unsigned long long)ss->wanted);
}

/* Handles the responder's round m->round of our session. */
static void on_answer(node *n, node_link *l, const proto_wire_msg *m,
		      size_t msg_len)
{
	sync_session *ss = &l->sync->out;
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len = 0, len = 0;
	bool done = false;
	cm_err err;

	if (!ss->active || m->session != ss->id ||
	    m->round != ss->round + 1) {
		cm_debug(NODE_LOG, "ignored reconciliation round %llu from "
			 "peer=%s: not the one expected",
			 (unsigned long long)m->round, l->short_key);
		return;
	}
	ss->bytes_in += msg_len;
	ss->last = cm_mono_ms();
	err = run_step(n, ss, m->payload, m->payload_len, &payload,
		       &payload_len, &done);
	if (!err)
		request_missing(n, l, ss);
	ss->round = m->round;
	if (!err && !done && ss->round + 1 > CM_RECON_ROUNDS_MAX)
		err = cm_errf(CM_ERR_TOO_MANY, "session needs more than %d "
			      "rounds", CM_RECON_ROUNDS_MAX);
	if (!err && !done) {
		err = proto_wire_recon(ss->id, ss->round + 1, payload,
				       payload_len, &buf, &len);
		if (!err)
			err = send_recon(n, l, ss, buf, len);
		if (!err)
			ss->round++;
	}
	free(payload);
	if (err && peer_fault(err)) {
		node_reject(n, l, "reconciliation message", err, NULL);
	} else if (err) {
		cm_warn(NODE_LOG, "reconciliation with peer=%s stopped: %s "
			"(%s)", l->short_key, cm_err_name(err),
			cm_err_detail());
	} else if (!done) {
		return;
	} else {
		log_end(l, ss, "initiator");
	}
	session_end(ss);
}

/* Answers `in` of the peer's session and sends round `round`. */
static void answer(node *n, node_link *l, const uint8_t *in, size_t in_len,
		   uint64_t round)
{
	sync_session *ss = &l->sync->in;
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len = 0, len = 0;
	bool done = false;
	cm_err err;

	err = run_step(n, ss, in, in_len, &payload, &payload_len, &done);
	if (!err)
		err = proto_wire_recon(ss->id, round, payload, payload_len,
				       &buf, &len);
	free(payload);
	if (!err)
		err = send_recon(n, l, ss, buf, len);
	if (!err) {
		ss->round = round;
		if (done || round + 1 > CM_RECON_ROUNDS_MAX) {
			log_end(l, ss, "responder");
			session_end(ss);
		}
		return;
	}
	if (peer_fault(err))
		node_reject(n, l, "reconciliation message", err, NULL);
	else
		cm_warn(NODE_LOG, "answering reconciliation of peer=%s "
			"failed: %s (%s)", l->short_key, cm_err_name(err),
			cm_err_detail());
	session_end(ss);
}

static void on_start(node *n, node_link *l, const proto_wire_msg *m,
		     size_t msg_len)
{
	sync_session *ss = &l->sync->in;
	uint64_t now = cm_mono_ms();

	if (ss->started && now - ss->started < CM_RECON_SESSION_GAP_MS / 2) {
		cm_errf(CM_ERR_TOO_MANY, "reconciliation sessions started "
			"%llu ms apart, minimum %d",
			(unsigned long long)(now - ss->started),
			CM_RECON_SESSION_GAP_MS / 2);
		node_reject(n, l, "reconciliation start", CM_ERR_TOO_MANY,
			    NULL);
		return;
	}
	session_end(ss);
	memset(ss, 0, sizeof(*ss));
	if (!m->recon_all) {
		ss->authors = malloc(m->n_authors * PROTO_KEY_LEN);
		if (!ss->authors) {
			cm_error(NODE_LOG, "out of memory for %zu authors of "
				 "peer=%s", m->n_authors, l->short_key);
			return;
		}
		memcpy(ss->authors, m->authors, m->n_authors * PROTO_KEY_LEN);
		ss->n_authors = m->n_authors;
	}
	ss->id = m->session;
	ss->started = ss->last = now;
	ss->bytes_in = msg_len;
	ss->active = true;
	memcpy(ss->recon.salt, m->salt, PROTO_RECON_SALT_LEN);
	ss->recon.params = proto_recon_defaults();
	ss->recon.params.fp_len = (size_t)m->fp_len;
	ss->recon.params.hash_len = (size_t)m->hash_len;
	ss->recon.n_scopes = ss->authors ? ss->n_authors : 1;
	answer(n, l, m->payload, m->payload_len, 1);
}

void node_sync_on_recon(node *n, node_link *l, const proto_wire_msg *m,
			size_t msg_len)
{
	sync_session *ss;

	if (!sync_alloc(l)) {
		cm_error(NODE_LOG, "out of memory for reconciliation with "
			 "peer=%s", l->short_key);
		return;
	}
	if (m->type == PROTO_WIRE_RECON_START) {
		on_start(n, l, m, msg_len);
		return;
	}
	if (m->round % 2 == 1) {
		on_answer(n, l, m, msg_len);
		return;
	}

	ss = &l->sync->in;
	if (!ss->active || m->session != ss->id ||
	    m->round != ss->round + 1) {
		cm_debug(NODE_LOG, "ignored reconciliation round %llu from "
			 "peer=%s: not the one expected",
			 (unsigned long long)m->round, l->short_key);
		return;
	}
	ss->bytes_in += msg_len;
	ss->last = cm_mono_ms();
	answer(n, l, m->payload, m->payload_len, m->round + 1);
}

/* Sends up to CM_WIRE_BATCH_MAX requested records in one RECORDS. */
static cm_err send_page(node *n, node_link *l, const uint8_t *ids,
			size_t count)
{
	uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t k = 0;
	cm_err err;

	for (size_t i = 0; i < count; i++) {
		if (node_load_record(n, ids + i * PROTO_ID_LEN, &wires[k],
				     &n->batch[k]))
			continue; /* not stored, or retracted since */
		k++;
	}
	err = node_send_records(n, l, n->batch, k);
	for (size_t i = 0; i < k; i++)
		free(wires[i]);
	return err;
}

/* Stops at the first page that does not fit in the peer's queue, so that
 * a peer that requests more than it reads costs little work. */
void node_sync_on_want(node *n, node_link *l, const proto_wire_msg *m)
{
	for (size_t done = 0; done < m->n_ids; done += CM_WIRE_BATCH_MAX) {
		size_t page = m->n_ids - done;

		if (page > CM_WIRE_BATCH_MAX)
			page = CM_WIRE_BATCH_MAX;
		if (send_page(n, l, m->ids + done * PROTO_ID_LEN, page))
			return;
	}
}
