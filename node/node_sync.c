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
 * WANT and receives RECORDS, which node_ingest stores and pushes on. An
 * id known as retracted is counted as a rejected record instead, so that
 * a retracted clip gets the same verdict from reconciliation as from
 * gossip. A record that the peer sent and this node rejected is not
 * requested from that peer again for CM_RECON_REFUSED_MS (n->refused):
 * otherwise each session would find it missing, request it, and start
 * the next session a few seconds later.
 *
 * A link holds at most one session per direction. A new RECON_START from
 * the peer replaces its old session, but a third within
 * CM_RECON_SESSION_GAP_MS is rejected, so a peer cannot make this node
 * rescan its store in a loop. A session that hears nothing for
 * CM_RECON_SESSION_TIMEOUT_MS ends; the next interval starts a new one.
 *
 * A session message that finds the queue towards the peer full, as the
 * RECORDS of a catch-up fill it, is kept and sent again by node_sync_tick,
 * one per direction. The other side waits for it, so dropping it stalled
 * the session until its timeout.
 *
 * The initiator paces its requests: it keeps at most
 * CM_RECON_FETCH_WINDOW requested records in flight and sends its next
 * round only when every id of the last answer is requested. Otherwise a
 * catch-up of a large store requested all of each answer's ids at once,
 * the peer's queue dropped most of the records, and the next answer
 * queued behind the rest until the session timed out. A session that
 * found records, or stopped at the round limit, is followed by a new one
 * CM_RECON_SESSION_GAP_MS after the requested records have arrived, so
 * that records dropped on the way, or not reached yet, come soon.
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
	uint64_t started_before;     /* monotonic ms: the session before */
	uint64_t last;               /* monotonic ms of the last message */
	uint8_t *authors;            /* scopes, malloc'd; NULL: all */
	size_t n_authors;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t wanted;
	uint8_t *held;               /* our next round, malloc'd, while the
				      * ids of the last answer are requested */
	size_t held_len;
	proto_recon_session recon;
} sync_session;

/* A session message that the full queue did not take, sent again later.
 * It outlives its session, because a responder's last answer ends the
 * session when it is written. */
typedef struct sync_unsent {
	uint8_t *buf;                /* malloc'd; NULL when none */
	size_t len;
	uint64_t since;              /* monotonic ms of the first attempt */
} sync_unsent;

/* Ids found by our sessions and not requested yet, and the records that
 * are requested and not received. The next round of a session waits
 * until the list is empty, so it holds the ids of one answer; a session
 * that a HELLO starts meanwhile can add another. Ids over
 * CM_RECON_FETCH_MAX are dropped, and the next session finds them. */
typedef struct sync_fetch {
	uint8_t *ids;                /* malloc'd, cap ids */
	size_t n;
	size_t head;                 /* ids before head are requested */
	size_t cap;
	uint64_t awaited;            /* requested, not received */
	uint64_t received;           /* the link's records received (stored
				      * or duplicate) at the last check */
	uint64_t progress_at;        /* monotonic ms of the last record or
				      * request */
} sync_fetch;

struct node_sync {
	sync_session out;            /* ours, as initiator */
	sync_session in;             /* the peer's, as responder */
	sync_unsent unsent[2];       /* of out, of in */
	sync_fetch fetch;
};

static void session_end(sync_session *ss)
{
	free(ss->held);
	ss->held = NULL;
	proto_recon_session_free(&ss->recon);
	free(ss->authors);
	ss->authors = NULL;
	ss->n_authors = 0;
	ss->active = false;
}

static void unsent_clear(sync_unsent *u)
{
	free(u->buf);
	u->buf = NULL;
	u->len = 0;
}

void node_sync_drop(node_link *l)
{
	if (!l->sync)
		return;
	session_end(&l->sync->out);
	session_end(&l->sync->in);
	unsent_clear(&l->sync->unsent[0]);
	unsent_clear(&l->sync->unsent[1]);
	free(l->sync->fetch.ids);
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

/* Hands a message to the link and counts its bytes once it is queued.
 * Frees buf, except that a message the full queue did not take becomes
 * the direction's unsent message, replacing an older one. */
static cm_err queue_recon(node *n, node_link *l, sync_unsent *u,
			  uint8_t *buf, size_t len, uint64_t since)
{
	uint8_t *copy = malloc(len);
	cm_err err;

	if (!copy) {
		free(buf);
		return cm_errf(CM_ERR_NOMEM, "cannot copy a reconciliation "
			       "message of %zu bytes", len);
	}
	memcpy(copy, buf, len);
	err = node_link_send(n, l, buf, len);
	if (err == CM_ERR_TIMEOUT) {
		unsent_clear(u);
		u->buf = copy;
		u->len = len;
		u->since = since;
		return CM_OK;
	}
	free(copy);
	if (!err)
		l->stats.recon_bytes_out += len;
	return err;
}

/* Sends a reconciliation message of session ss; see queue_recon. */
static cm_err send_recon(node *n, node_link *l, sync_session *ss,
			 uint8_t *buf, size_t len)
{
	sync_unsent *u = &l->sync->unsent[ss == &l->sync->out ? 0 : 1];

	ss->bytes_out += len;
	ss->last = cm_mono_ms();
	return queue_recon(n, l, u, buf, len, ss->last);
}

/* Tries the unsent messages again; gives one up after the session
 * timeout, as the peer has ended its side by then. */
static void send_unsent(node *n, node_link *l)
{
	uint64_t now = cm_mono_ms();

	for (size_t i = 0; i < 2; i++) {
		sync_unsent *u = &l->sync->unsent[i];
		uint8_t *buf = u->buf;
		cm_err err;

		if (!buf)
			continue;
		u->buf = NULL;
		if (now - u->since >= CM_RECON_SESSION_TIMEOUT_MS) {
			free(buf);
			cm_debug(NODE_LOG, "gave up a reconciliation message "
				 "to peer=%s: its queue stayed full",
				 l->short_key);
			continue;
		}
		err = queue_recon(n, l, u, buf, u->len, u->since);
		if (err)
			cm_debug(NODE_LOG, "sending a reconciliation message "
				 "to peer=%s failed: %s", l->short_key,
				 cm_err_name(err));
	}
}

/* Counts the records that arrived from the peer since the last call
 * against the awaited ones; after CM_RECON_FETCH_STALL_MS without one,
 * the rest count as lost. */
static void fetch_update(node_link *l, sync_fetch *f, uint64_t now)
{
	uint64_t received = l->stats.records_in + l->stats.duplicates_in;
	uint64_t arrived = received - f->received;

	f->received = received;
	if (arrived > 0)
		f->progress_at = now;
	f->awaited = arrived < f->awaited ? f->awaited - arrived : 0;
	if (f->awaited > 0 && now - f->progress_at >= CM_RECON_FETCH_STALL_MS) {
		cm_debug(NODE_LOG, "%llu records requested from peer=%s did "
			 "not arrive; the next session asks again",
			 (unsigned long long)f->awaited, l->short_key);
		f->awaited = 0;
	}
}

/* Sends WANT pages of the listed ids while fewer than
 * CM_RECON_FETCH_WINDOW requested records are awaited. */
static void fetch_pump(node *n, node_link *l)
{
	sync_fetch *f = &l->sync->fetch;
	uint64_t now = cm_mono_ms();
	size_t len;
	uint8_t *buf;

	fetch_update(l, f, now);
	while (f->head < f->n && f->awaited < CM_RECON_FETCH_WINDOW) {
		size_t page = f->n - f->head;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		if (proto_wire_ids(PROTO_WIRE_WANT,
				   f->ids + f->head * PROTO_ID_LEN, page, &buf,
				   &len))
			break;
		if (node_link_send(n, l, buf, len))
			break; /* queue full: the next tick tries again */
		f->head += page;
		f->awaited += page;
		f->progress_at = now;
	}
	if (f->head == f->n)
		f->head = f->n = 0;
}

/* True while ids found by our sessions wait to be requested. */
static bool fetch_pending(const node_link *l)
{
	return l->sync->fetch.n > 0;
}

/* True when no requested record is on its way either. */
static bool fetch_idle(const node_link *l)
{
	return l->sync->fetch.n == 0 && l->sync->fetch.awaited == 0;
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
	l->next_sync = now + n->limits.sync_interval_ms;
	if (err == CM_ERR_NOT_FOUND) {
		/* The peer closed its connection; its link goes soon. */
		cm_debug(NODE_LOG, "not starting reconciliation with peer=%s: "
			 "%s", l->short_key, cm_err_detail());
		return;
	}
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

/* Sends our held round once every id of the last answer is requested.
 * While records arrive, the session counts as active, so that it does not
 * time out waiting for its own fetch. */
static void send_held(node *n, node_link *l)
{
	sync_session *ss = &l->sync->out;
	uint8_t *buf = ss->held;
	cm_err err;

	if (!ss->active || !buf)
		return;
	if (fetch_pending(l)) {
		if (l->sync->fetch.progress_at > ss->last)
			ss->last = l->sync->fetch.progress_at;
		return;
	}
	ss->held = NULL;
	err = send_recon(n, l, ss, buf, ss->held_len);
	if (err) {
		cm_warn(NODE_LOG, "reconciliation with peer=%s stopped: %s "
			"(%s)", l->short_key, cm_err_name(err),
			cm_err_detail());
		session_end(ss);
	}
}

void node_sync_tick(node *n, node_link *l)
{
	uint64_t now;

	if (l->sync) {
		send_unsent(n, l);
		fetch_pump(n, l);
		send_held(n, l);
	}
	/* Read after the calls above, which may set a session's last
	 * activity to their own time. */
	now = cm_mono_ms();
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
	if (now < l->next_sync)
		return;
	if (l->sync && l->sync->out.active) {
		/* A session still running, as a long catch-up does, ends by
		 * itself or times out; the interval restarts from here. */
		l->next_sync = now + n->limits.sync_interval_ms;
		return;
	}
	if (l->sync && !fetch_idle(l))
		return; /* the records requested so far come first */
	node_sync_start(n, l);
}

/* Counts an id that the peer's session listed and that its author
 * retracted as a rejected record, as the record would be counted if it
 * came. Requesting it would only fetch bytes to reject. */
static void reject_retracted(node *n, node_link *l, const uint8_t *id)
{
	cm_errf(CM_ERR_RETRACTED, "clip was retracted by its author, so it "
		"is not requested");
	node_reject(n, l, "record", CM_ERR_RETRACTED, id);
}

/* Returns the nonzero tag of (l's peer, id) in n->refused. */
static uint64_t refused_tag(const node *n, const node_link *l,
			    const uint8_t id[PROTO_ID_LEN])
{
	uint8_t in[NODE_KEY_LEN + PROTO_ID_LEN], out[crypto_shorthash_BYTES];
	uint64_t tag;

	memcpy(in, l->key, NODE_KEY_LEN);
	memcpy(in + NODE_KEY_LEN, id, PROTO_ID_LEN);
	crypto_shorthash(out, in, sizeof(in), n->refused_salt);
	memcpy(&tag, out, sizeof(tag));
	return tag ? tag : 1;
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

/* True for rejections that come from the record itself, so that asking
 * the same peer again would bring the same verdict. */
static bool refusal_lasts(cm_err reason)
{
	return peer_fault(reason) && reason != CM_ERR_MEDIA_MISSING &&
	       reason != CM_ERR_DUPLICATE;
}

void node_sync_refused(node *n, const node_link *l,
		       const uint8_t id[PROTO_ID_LEN], cm_err reason)
{
	uint64_t tag;
	struct node_refused *r;

	if (!refusal_lasts(reason))
		return;
	tag = refused_tag(n, l, id);
	r = &n->refused[tag % NODE_REFUSED];
	r->tag = tag;
	r->until = cm_mono_ms() + CM_RECON_REFUSED_MS;
}

/* True when l's peer sent record id lately and this node rejected it. */
static bool was_refused(const node *n, const node_link *l,
			const uint8_t id[PROTO_ID_LEN], uint64_t now)
{
	uint64_t tag = refused_tag(n, l, id);
	const struct node_refused *r = &n->refused[tag % NODE_REFUSED];

	return r->tag == tag && now < r->until;
}

/* Adds the listed ids that we neither store nor know as retracted, and
 * that the peer did not send us lately only to be rejected, to the ids
 * to request, and requests what the window allows. */
static cm_err request_missing(node *n, node_link *l, sync_session *ss)
{
	proto_recon_session *r = &ss->recon;
	sync_fetch *f = &l->sync->fetch;
	size_t k = 0, left = 0, refused = 0;
	uint64_t now = cm_mono_ms();

	if (f->head > 0) {
		memmove(f->ids, f->ids + f->head * PROTO_ID_LEN,
			(f->n - f->head) * PROTO_ID_LEN);
		f->n -= f->head;
		f->head = 0;
	}
	if (f->n + r->n_want > f->cap && f->cap < CM_RECON_FETCH_MAX) {
		size_t cap = f->n + r->n_want;
		uint8_t *ids;

		if (cap > CM_RECON_FETCH_MAX)
			cap = CM_RECON_FETCH_MAX;
		ids = realloc(f->ids, cap * PROTO_ID_LEN);
		if (!ids) {
			r->n_want = 0;
			return cm_errf(CM_ERR_NOMEM, "cannot list %zu ids to "
				       "request", cap);
		}
		f->ids = ids;
		f->cap = cap;
	}
	for (size_t i = 0; i < r->n_want; i++) {
		const uint8_t *id = r->want + i * PROTO_ID_LEN;

		if (store_has(n->st, id))
			continue;
		if (was_refused(n, l, id, now)) {
			refused++;
			continue;
		}
		if (store_is_retracted(n->st, id, NULL)) {
			reject_retracted(n, l, id);
			continue;
		}
		if (f->n + k == f->cap) {
			left++;
			continue;
		}
		memcpy(f->ids + (f->n + k) * PROTO_ID_LEN, id, PROTO_ID_LEN);
		k++;
	}
	r->n_want = 0;
	f->n += k;
	ss->wanted += k;
	if (k > 0)
		cm_debug(NODE_LOG, "asking peer=%s for %zu records", l->short_key,
			 k);
	if (refused > 0)
		cm_debug(NODE_LOG, "not asking peer=%s again for %zu records "
			 "that it sent and this node rejected", l->short_key,
			 refused);
	if (left > 0)
		cm_debug(NODE_LOG, "%zu records of peer=%s left for the next "
			 "session: %d ids wait to be requested", left,
			 l->short_key, CM_RECON_FETCH_MAX);
	fetch_pump(n, l);
	return CM_OK;
}

/* Logs the end of a session and adds it to the link's statistics. */
static void log_end(node_link *l, const sync_session *ss, const char *role)
{
	l->stats.recon_sessions++;
	l->stats.recon_rounds += ss->round;
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
	l->stats.recon_bytes_in += msg_len;
	ss->last = cm_mono_ms();
	err = run_step(n, ss, m->payload, m->payload_len, &payload,
		       &payload_len, &done);
	if (!err)
		err = request_missing(n, l, ss);
	ss->round = m->round;
	if (!err && !done && ss->round + 2 > CM_RECON_ROUNDS_MAX) {
		/* The answer to our next round would pass the round limit.
		 * That is our own limit, not the peer's fault: a new session
		 * goes on once the records found so far have arrived. */
		free(payload);
		cm_info(NODE_LOG, "reconciliation with peer=%s reached %d "
			"rounds; a new session continues it", l->short_key,
			CM_RECON_ROUNDS_MAX);
		log_end(l, ss, "initiator");
		l->next_sync = cm_mono_ms() + CM_RECON_SESSION_GAP_MS;
		session_end(ss);
		return;
	}
	if (!err && !done) {
		err = proto_wire_recon(ss->id, ss->round + 1, payload,
				       payload_len, &buf, &len);
		if (!err && fetch_pending(l)) {
			ss->held = buf;
			ss->held_len = len;
		} else if (!err) {
			err = send_recon(n, l, ss, buf, len);
		}
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
	if (ss->wanted > 0) {
		/* Records dropped on the way show in a new session, which
		 * starts once the requested ones have arrived. */
		l->next_sync = cm_mono_ms() + CM_RECON_SESSION_GAP_MS;
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
	else if (err == CM_ERR_NOT_FOUND)
		/* The peer disconnected during the session: nothing failed
		 * on this side. */
		cm_info(NODE_LOG, "reconciliation with peer=%s ended: %s",
			l->short_key, cm_err_detail());
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

	uint64_t before = ss->started;

	/* Two starts may come close together: a node that was stopped
	 * for a while, or a slow link, delivers its queued messages at
	 * once. A third within CM_RECON_SESSION_GAP_MS is not honest. */
	if (ss->started_before &&
	    now - ss->started_before < CM_RECON_SESSION_GAP_MS) {
		cm_errf(CM_ERR_TOO_MANY, "3 reconciliation sessions started "
			"within %llu ms, minimum %d",
			(unsigned long long)(now - ss->started_before),
			CM_RECON_SESSION_GAP_MS);
		node_reject(n, l, "reconciliation start", CM_ERR_TOO_MANY,
			    NULL);
		return;
	}
	session_end(ss);
	memset(ss, 0, sizeof(*ss));
	ss->started_before = before;
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
	l->stats.recon_bytes_in += msg_len;
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
	l->stats.recon_bytes_in += msg_len;
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

static int compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, PROTO_ID_LEN);
}

/* Sorts ids[count] and removes repeats; returns how many are left. */
static size_t unique_ids(uint8_t *ids, size_t count)
{
	size_t k = 0;

	qsort(ids, count, PROTO_ID_LEN, compare_ids);
	for (size_t i = 0; i < count; i++) {
		if (k > 0 && memcmp(ids + (k - 1) * PROTO_ID_LEN,
				    ids + i * PROTO_ID_LEN, PROTO_ID_LEN) == 0)
			continue;
		memmove(ids + k * PROTO_ID_LEN, ids + i * PROTO_ID_LEN,
			PROTO_ID_LEN);
		k++;
	}
	return k;
}

/* Sends the record of each requested id once, however often the WANT
 * names it, so a WANT that repeats one id 4,096 times costs one record.
 * Stops at the first page that does not fit in the peer's queue, so that
 * a peer that requests more than it reads costs little work. */
void node_sync_on_want(node *n, node_link *l, const proto_wire_msg *m)
{
	uint8_t *ids = malloc(m->n_ids * PROTO_ID_LEN + 1);
	size_t count;

	if (!ids) {
		cm_error(NODE_LOG, "out of memory for a WANT of %zu ids from "
			 "peer=%s", m->n_ids, l->short_key);
		return;
	}
	memcpy(ids, m->ids, m->n_ids * PROTO_ID_LEN);
	count = unique_ids(ids, m->n_ids);
	for (size_t done = 0; done < count; done += CM_WIRE_BATCH_MAX) {
		size_t page = count - done;

		if (page > CM_WIRE_BATCH_MAX)
			page = CM_WIRE_BATCH_MAX;
		if (send_page(n, l, ids + done * PROTO_ID_LEN, page))
			break;
	}
	free(ids);
}
