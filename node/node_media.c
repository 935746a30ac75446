/*
 * node_media.c - fetching the media of stored clips from peers, and
 * serving manifests and chunks to peers.
 *
 * A fetch job per media root first gets the manifest (the chunk hashes,
 * checked against the root before it is stored), then requests the
 * missing chunks with at most CM_WIRE_CHUNKS_INFLIGHT requests in flight
 * per peer. Each chunk is checked against its hash before it is stored.
 * Jobs live in memory only; the chunks already stored survive a restart,
 * and the media scan at start-up queues the unfinished media again.
 *
 * NOTE: a job requests from one peer at a time and moves to the next
 * connected peer after a NOT_FOUND, an invalid response or
 * CM_PEER_TIMEOUT_MS of silence.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"
#include "proto_media.h"

/* One chunk request waiting for its response. */
typedef struct chunk_request {
	bool used;
	uint64_t index;
	node_link *link;
	uint64_t sent;                  /* monotonic ms */
} chunk_request;

struct node_media_job {
	bool used;
	uint8_t root[PROTO_HASH_LEN];
	uint64_t size;                  /* from the clip, then the manifest */
	char short_root[9];
	node_link *source;              /* peer asked now; NULL: any */
	unsigned attempts;              /* failed requests in a row */
	uint64_t not_before;            /* monotonic ms: retry backoff */

	uint64_t manifest_sent;         /* monotonic ms; 0: not asked */
	bool have_manifest;
	uint8_t (*chunks)[PROTO_HASH_LEN];
	size_t n_chunks;
	size_t next;                    /* lowest index not yet handled */
	chunk_request requests[CM_WIRE_CHUNKS_INFLIGHT];
};

/* Failed requests in a row after which a job gives up until the next
 * media scan. With the backoff below, that takes about 45 seconds. */
#define JOB_ATTEMPTS_MAX 8
#define JOB_BACKOFF_MS 500

cm_err node_media_init(node *n)
{
	n->jobs = calloc(CM_MEDIA_JOBS_MAX, sizeof(*n->jobs));
	n->chunk_buf = malloc(CM_CHUNK_SIZE);
	if (!n->jobs || !n->chunk_buf)
		return CM_ERR_NOMEM;
	return CM_OK;
}

static void job_free(node *n, node_media_job *job)
{
	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++) {
		chunk_request *req = &job->requests[i];

		if (req->used && req->link->chunks_in_flight > 0)
			req->link->chunks_in_flight--;
	}
	(void)n;
	free(job->chunks);
	memset(job, 0, sizeof(*job));
}

void node_media_free(node *n)
{
	if (n->jobs)
		for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
			job_free(n, &n->jobs[i]);
	free(n->jobs);
	n->jobs = NULL;
	free(n->chunk_buf);
	n->chunk_buf = NULL;
	free(n->served_chunks);
	n->served_chunks = NULL;
}

static node_media_job *job_find(node *n, const uint8_t root[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		if (n->jobs[i].used &&
		    memcmp(n->jobs[i].root, root, PROTO_HASH_LEN) == 0)
			return &n->jobs[i];
	return NULL;
}

/* Queues a fetch of `root` unless one runs; false when the table is
 * full. */
static bool job_add(node *n, const uint8_t root[PROTO_HASH_LEN],
		    uint64_t size, node_link *source)
{
	node_media_job *job = job_find(n, root);

	if (job) {
		if (!job->source)
			job->source = source;
		return true;
	}
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++) {
		job = &n->jobs[i];
		if (job->used)
			continue;
		job->used = true;
		memcpy(job->root, root, PROTO_HASH_LEN);
		job->size = size;
		job->source = source;
		cm_hex_short(root, job->short_root);
		cm_debug(NODE_LOG, "fetching media=%s size=%llu",
			 job->short_root, (unsigned long long)size);
		return true;
	}
	return false;
}

static bool link_usable(const node_link *l)
{
	return l && l->used && l->established;
}

/* Moves the job to the next connected peer after its current one, which
 * is the same peer again when it is the only one. */
static void job_next_peer(node *n, node_media_job *job)
{
	size_t start = 0;

	if (job->source)
		start = (size_t)(job->source - n->links) + 1;
	job->source = NULL;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[(start + i) % NODE_LINKS_MAX];

		if (link_usable(l)) {
			job->source = l;
			return;
		}
	}
}

/* Counts a failed request and waits before the next one, doubling the
 * wait each time up to CM_PEER_TIMEOUT_MS. The wait gives a peer that
 * lacks the media time to fetch it, which it does right after it stored
 * the clip. */
static void job_failed(node *n, node_media_job *job)
{
	uint64_t wait = JOB_BACKOFF_MS;

	for (unsigned i = 0; i < job->attempts && wait < CM_PEER_TIMEOUT_MS;
	     i++)
		wait *= 2;
	if (wait > CM_PEER_TIMEOUT_MS)
		wait = CM_PEER_TIMEOUT_MS;
	job->attempts++;
	job->not_before = cm_mono_ms() + wait;
	job_next_peer(n, job);
}

static node_link *job_link(node *n, node_media_job *job)
{
	if (!link_usable(job->source))
		job_next_peer(n, job);
	return job->source;
}

void node_media_want(node *n, node_link *from, const proto_signed *rec)
{
	char short_root[9];

	if (!node_wants(n, rec->rec.author))
		return;
	for (size_t i = 0; i < rec->rec.n_media; i++) {
		const proto_media_ref *ref = &rec->rec.media[i];

		if (store_media_complete(n->st, ref->hash))
			continue;
		if (!job_add(n, ref->hash, ref->size, from)) {
			cm_hex_short(ref->hash, short_root);
			cm_debug(NODE_LOG, "media queue full, media=%s waits "
				 "for the next scan", short_root);
		}
	}
}

/* --- Scan ----------------------------------------------------------- */

typedef struct media_list {
	uint8_t (*roots)[PROTO_HASH_LEN];
	uint64_t *sizes;
	size_t n;
	size_t cap;
} media_list;

static int media_list_add(media_list *ml, const proto_media_ref *ref)
{
	if (ml->n == ml->cap) {
		size_t cap = ml->cap ? 2 * ml->cap : 256;
		void *roots = realloc(ml->roots, cap * PROTO_HASH_LEN);
		void *sizes;

		if (!roots)
			return 1;
		ml->roots = roots;
		sizes = realloc(ml->sizes, cap * sizeof(*ml->sizes));
		if (!sizes)
			return 1;
		ml->sizes = sizes;
		ml->cap = cap;
	}
	memcpy(ml->roots[ml->n], ref->hash, PROTO_HASH_LEN);
	ml->sizes[ml->n] = ref->size;
	ml->n++;
	return 0;
}

/* Collects the media of each clip. Only memory is touched here, because
 * the store's read transaction is open during the walk. */
static int scan_record(void *ctx, const uint8_t id[PROTO_ID_LEN],
		       const uint8_t *wire, size_t len)
{
	static proto_record rec;
	const uint8_t *body;
	size_t body_len;

	(void)id;
	if (!node_record_body(wire, len, &body, &body_len) ||
	    proto_body_decode(body, body_len, &rec) ||
	    rec.kind != PROTO_KIND_CLIP)
		return 0;
	for (size_t i = 0; i < rec.n_media; i++)
		if (media_list_add(ctx, &rec.media[i]))
			return 1;
	return 0;
}

void node_media_scan(node *n, bool force)
{
	media_list ml = {0};
	size_t queued = 0;
	uint64_t now = cm_mono_ms();
	cm_err err;

	if (!force && now < n->next_media_scan)
		return;
	n->next_media_scan = now + CM_SYNC_INTERVAL_MS;
	n->media_rescan = false;
	if (!n->interest_all && n->n_interest == 0)
		return;

	err = store_scan(n->st, n->interest_all ? NULL : n->interest,
			 n->n_interest, scan_record, &ml);
	if (err)
		cm_error(NODE_LOG, "media scan failed: %s (%s)",
			 cm_err_name(err), cm_err_detail());

	for (size_t i = 0; i < ml.n; i++) {
		if (job_find(n, ml.roots[i]) ||
		    store_media_complete(n->st, ml.roots[i]))
			continue;
		if (!job_add(n, ml.roots[i], ml.sizes[i], NULL))
			break;
		queued++;
	}
	if (queued)
		cm_info(NODE_LOG, "media scan queued %zu incomplete media",
			queued);
	free(ml.roots);
	free(ml.sizes);
}

/* --- Fetch ---------------------------------------------------------- */

static void send_manifest_req(node *n, node_media_job *job)
{
	node_link *l = job_link(n, job);
	uint8_t *buf;
	size_t len;

	if (!l)
		return;
	job->manifest_sent = cm_mono_ms();
	if (proto_wire_manifest_req(job->root, &buf, &len))
		return;
	node_link_send(n, l, buf, len);
}

/* Uses a manifest stored by an earlier run or another process. */
static bool load_manifest(node *n, node_media_job *job)
{
	uint8_t (*chunks)[PROTO_HASH_LEN];
	uint64_t size;
	size_t count;

	if (store_manifest_get(n->st, job->root, &size, &chunks, &count))
		return false;
	free(job->chunks);
	job->chunks = chunks;
	job->n_chunks = count;
	job->size = size;
	job->have_manifest = true;
	job->next = 0;
	return true;
}

static chunk_request *request_of(node_media_job *job, uint64_t index)
{
	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++)
		if (job->requests[i].used && job->requests[i].index == index)
			return &job->requests[i];
	return NULL;
}

static void request_done(node_media_job *job, chunk_request *req)
{
	if (req->link->chunks_in_flight > 0)
		req->link->chunks_in_flight--;
	if (req->index < job->next)
		job->next = (size_t)req->index;
	memset(req, 0, sizeof(*req));
}

static void expire_requests(node *n, node_media_job *job, uint64_t now)
{
	bool expired = false;

	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++) {
		chunk_request *req = &job->requests[i];

		if (req->used && now - req->sent > CM_PEER_TIMEOUT_MS) {
			request_done(job, req);
			expired = true;
		}
	}
	if (expired)
		job_failed(n, job);
}

static chunk_request *free_request(node_media_job *job)
{
	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++)
		if (!job->requests[i].used)
			return &job->requests[i];
	return NULL;
}

/* Sends chunk requests while the job and its peer have room. */
static void request_chunks(node *n, node_media_job *job)
{
	chunk_request *req;

	while ((req = free_request(job))) {
		node_link *l = job_link(n, job);
		uint8_t *buf;
		size_t len;

		if (!l || l->chunks_in_flight >= CM_WIRE_CHUNKS_INFLIGHT)
			return;
		while (job->next < job->n_chunks &&
		       (request_of(job, job->next) ||
			store_chunk_has(n->st, job->chunks[job->next])))
			job->next++;
		if (job->next >= job->n_chunks)
			return;

		if (proto_wire_chunk_req(job->root, job->next, &buf, &len))
			return;
		if (node_link_send(n, l, buf, len))
			return;
		req->used = true;
		req->index = job->next;
		req->link = l;
		req->sent = cm_mono_ms();
		l->chunks_in_flight++;
		job->next++;
	}
}

static bool requests_pending(const node_media_job *job)
{
	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++)
		if (job->requests[i].used)
			return true;
	return false;
}

static void job_pump(node *n, node_media_job *job)
{
	uint64_t now = cm_mono_ms();

	if (job->attempts > JOB_ATTEMPTS_MAX) {
		cm_warn(NODE_LOG, "media=%s not fetched after %u failed "
			"requests; retrying at the next media scan",
			job->short_root, job->attempts);
		job_free(n, job);
		n->media_rescan = true;
		return;
	}
	if (now < job->not_before)
		return;
	if (!job->have_manifest && !load_manifest(n, job)) {
		if (job->manifest_sent == 0)
			send_manifest_req(n, job);
		else if (now - job->manifest_sent > CM_PEER_TIMEOUT_MS) {
			job->manifest_sent = 0;
			job_failed(n, job);
		}
		return;
	}

	expire_requests(n, job, now);
	request_chunks(n, job);
	if (job->next < job->n_chunks || requests_pending(job))
		return;

	if (store_media_complete(n->st, job->root)) {
		cm_info(NODE_LOG, "media complete media=%s size=%llu "
			"chunks=%zu", job->short_root,
			(unsigned long long)job->size, job->n_chunks);
		job_free(n, job);
		return;
	}
	job->next = 0; /* a chunk went missing: look again */
	job_failed(n, job);
}

void node_media_tick(node *n)
{
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		if (n->jobs[i].used)
			job_pump(n, &n->jobs[i]);
	if (n->media_rescan)
		node_media_scan(n, false);
}

void node_media_on_link_down(node *n, node_link *l)
{
	if (!n->jobs)
		return;
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++) {
		node_media_job *job = &n->jobs[i];

		if (!job->used)
			continue;
		if (job->source == l)
			job->source = NULL;
		for (size_t r = 0; r < CM_WIRE_CHUNKS_INFLIGHT; r++)
			if (job->requests[r].used &&
			    job->requests[r].link == l)
				request_done(job, &job->requests[r]);
	}
}

static void on_manifest(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);
	const uint8_t (*chunks)[PROTO_HASH_LEN] =
		(const uint8_t (*)[PROTO_HASH_LEN])m->chunks;
	cm_err err;

	if (!job || job->have_manifest)
		return; /* not requested, or received already */

	/* The root commits to the size, so the manifest's size is checked
	 * by the hash even when the clip declared another one. */
	err = proto_media_check_manifest(m->root, m->size, chunks,
					 m->n_chunks);
	if (err) {
		node_reject(n, l, "manifest", err, m->root);
		job->manifest_sent = 0;
		job_failed(n, job);
		return;
	}
	err = store_manifest_put(n->st, m->root, m->size, chunks,
				 m->n_chunks);
	if (err) {
		cm_error(NODE_LOG, "storing manifest media=%s failed: %s (%s)",
			 job->short_root, cm_err_name(err), cm_err_detail());
		return;
	}
	load_manifest(n, job);
	job->attempts = 0;
	job_pump(n, job);
}

static void on_chunk(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);
	uint8_t hash[PROTO_HASH_LEN];
	chunk_request *req;
	uint64_t expected;
	cm_err err;

	if (!job || !job->have_manifest || !(req = request_of(job, m->index)))
		return; /* not requested: drop it */
	request_done(job, req);

	expected = job->size - m->index * (uint64_t)CM_CHUNK_SIZE;
	if (expected > CM_CHUNK_SIZE)
		expected = CM_CHUNK_SIZE;
	proto_chunk_hash(m->data, m->data_len, hash);
	if (m->data_len != expected ||
	    memcmp(hash, job->chunks[m->index], PROTO_HASH_LEN) != 0) {
		cm_errf(CM_ERR_BAD_CHUNK, "chunk %llu of media %s",
			(unsigned long long)m->index, job->short_root);
		node_reject(n, l, "chunk", CM_ERR_BAD_CHUNK, NULL);
		job_failed(n, job);
		return;
	}

	err = store_chunks_put(n->st, 1, &job->chunks[m->index], &m->data,
			       &m->data_len);
	if (err) {
		cm_error(NODE_LOG, "storing a chunk of media=%s failed: %s "
			 "(%s)", job->short_root, cm_err_name(err),
			 cm_err_detail());
		return;
	}
	job->attempts = 0;
	job_pump(n, job);
}

static void on_not_found(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);

	if (!job)
		return;
	cm_debug(NODE_LOG, "peer=%s lacks media=%s", l->short_key,
		 job->short_root);
	for (size_t i = 0; i < CM_WIRE_CHUNKS_INFLIGHT; i++)
		if (job->requests[i].used && job->requests[i].link == l)
			request_done(job, &job->requests[i]);
	if (m->missing == PROTO_WIRE_MISSING_MANIFEST)
		job->manifest_sent = 0;
	if (job->source == l)
		job_failed(n, job);
}

/* --- Serving -------------------------------------------------------- */

static void send_not_found(node *n, node_link *l, proto_wire_missing what,
			   const uint8_t *root, uint64_t index)
{
	uint8_t *buf;
	size_t len;

	if (proto_wire_not_found(what, root, index, &buf, &len) == CM_OK)
		node_link_send(n, l, buf, len);
}

static void serve_manifest(node *n, node_link *l, const uint8_t *root)
{
	uint8_t (*chunks)[PROTO_HASH_LEN] = NULL;
	uint64_t size;
	size_t count, len;
	uint8_t *buf;

	if (store_manifest_get(n->st, root, &size, &chunks, &count)) {
		send_not_found(n, l, PROTO_WIRE_MISSING_MANIFEST, root, 0);
		return;
	}
	if (proto_wire_manifest(root, size, (const uint8_t *)chunks, count,
				&buf, &len) == CM_OK)
		node_link_send(n, l, buf, len);
	free(chunks);
}

/* Keeps the manifest of the media served last, because peers ask for
 * its chunks one by one. */
static bool served_manifest(node *n, const uint8_t *root)
{
	uint8_t (*chunks)[PROTO_HASH_LEN];
	uint64_t size;
	size_t count;

	if (n->served_chunks &&
	    memcmp(n->served_root, root, PROTO_HASH_LEN) == 0)
		return true;
	if (store_manifest_get(n->st, root, &size, &chunks, &count))
		return false;
	free(n->served_chunks);
	n->served_chunks = chunks;
	n->served_n = count;
	n->served_size = size;
	memcpy(n->served_root, root, PROTO_HASH_LEN);
	return true;
}

static void serve_chunk(node *n, node_link *l, const uint8_t *root,
			uint64_t index)
{
	size_t len = 0, msg_len;
	uint8_t *buf;

	if (!served_manifest(n, root) || index >= n->served_n ||
	    store_chunk_get(n->st, n->served_chunks[index], n->chunk_buf,
			    CM_CHUNK_SIZE, &len)) {
		send_not_found(n, l, PROTO_WIRE_MISSING_CHUNK, root, index);
		return;
	}
	if (proto_wire_chunk(root, index, n->chunk_buf, len, &buf,
			     &msg_len) == CM_OK)
		node_link_send(n, l, buf, msg_len);
}

void node_media_on_message(node *n, node_link *l, const proto_wire_msg *m)
{
	switch (m->type) {
	case PROTO_WIRE_MANIFEST_REQ:
		serve_manifest(n, l, m->root);
		break;
	case PROTO_WIRE_CHUNK_REQ:
		serve_chunk(n, l, m->root, m->index);
		break;
	case PROTO_WIRE_MANIFEST:
		on_manifest(n, l, m);
		break;
	case PROTO_WIRE_CHUNK:
		on_chunk(n, l, m);
		break;
	case PROTO_WIRE_NOT_FOUND:
		on_not_found(n, l, m);
		break;
	default:
		break;
	}
}

bool node_media_job_active(const node *n, size_t i)
{
	return n->jobs && i < CM_MEDIA_JOBS_MAX && n->jobs[i].used;
}
