/*
 * node_media.c - fetching the media of stored clips from several peers
 * at once.
 *
 * A fetch job per media root first gets the manifest (the chunk hashes,
 * checked against the root before it is stored) from one peer at a time,
 * the peer that sent the clip first. It then requests the missing chunks
 * from every connected peer in parallel. Each peer has a window of
 * requests in flight for the job (at most CM_WIRE_CHUNKS_INFLIGHT per
 * peer over all jobs); a window refills as its peer answers, so faster
 * peers serve more chunks. A window grows by one per chunk that passes
 * its hash check and halves when a request times out, and timed-out
 * requests go back to the pool for the other peers. Each peer's timeout
 * follows its measured response times (node_media_rto.c), and manifest
 * requests time out after the same time. Once the pool is empty, a peer with
 * room also takes over requests that waited at another peer for longer
 * than its own timeout, so a stalled peer does not hold the last chunks.
 *
 * A NOT_FOUND means that the peer lacks the media for now: it gets no
 * requests of the job for a while, doubling up to CM_PEER_TIMEOUT_MS,
 * because it may be fetching the media itself. A peer that sends a bad
 * manifest or chunk is counted by node_reject and gets no more requests of
 * the job while any other peer can be asked; the chunk is fetched
 * elsewhere.
 *
 * The node thread checks a chunk's length on arrival and queues it with
 * its expected hash for the hasher and writer threads
 * (node_media_writer.c). The hasher compares the hashes, and the writer
 * stores the chunks that match, up to CM_MEDIA_WRITE_BATCH of them in one
 * write transaction, while the node thread receives the next ones. A
 * chunk counts as stored only once the node thread collected the result
 * of its commit. A chunk that fails the hash check comes back unstored
 * and is handled like a chunk of the wrong length: its peer is
 * penalised and the chunk is requested again. Requests in flight over
 * all jobs and chunks waiting for the writer together stay within
 * CM_MEDIA_WRITE_SLOTS, so every requested chunk finds a slot.
 * Jobs live in memory only: a restarted node finds the stored manifest
 * and chunks and fetches only the missing ones, and the media scan at
 * start-up queues the unfinished media again.
 *
 * Answers count only from the peer that a request went to; anything
 * else is dropped. A manifest must match the size that the clip declares.
 *
 * Media that cannot be fetched must not hold the slots: a job that fails
 * JOB_ATTEMPTS_MAX times in a row gives up, and a stuck job (failed since
 * its last progress) makes room for the media of a newly arrived clip.
 * Either way the root gets a fetch backoff in the store, from
 * CM_MEDIA_RETRY_MIN_MS doubling to CM_MEDIA_RETRY_MAX_MS, which scans
 * and restarts respect. Media that never failed before and makes room
 * waits only CM_MEDIA_MAKE_ROOM_RETRY_MS, until the first scan after
 * that. A peer that connects to the running node may
 * serve such media, so it makes one scan ignore them
 * (node_media_peer_up). Clips that find no free slot wait in a pending
 * stack, newest first, and scans queue the newest clips first.
 */
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"
#include "proto_media.h"

/* State of one chunk in a job. */
enum {
	CHUNK_MISSING,  /* in the pool: nobody asked */
	CHUNK_ASKED,    /* requested from asked_by[i] at asked_at[i] */
	CHUNK_QUEUED,   /* received, queued for the hash check and commit */
	CHUNK_STORED,
};

_Static_assert(NODE_LINKS_MAX <= UINT16_MAX, "link index fits asked_by");

/* What a job knows about the peer on one link. */
typedef struct job_source {
	unsigned in_flight;             /* chunk requests of this job */
	unsigned window;                /* 1..CM_WIRE_CHUNKS_INFLIGHT */
	unsigned not_found;             /* NOT_FOUNDs in a row */
	uint64_t lacks_until;           /* monotonic ms; ask again after */
	uint64_t chunks;                /* received chunks that passed the
					 * hash check */
} job_source;

struct node_media_job {
	bool used;
	uint8_t root[PROTO_HASH_LEN];
	uint64_t size;                  /* from the clip, then the manifest */
	uint64_t clip_size;             /* declared by the clip */
	uint32_t failures;              /* earlier runs that gave up */
	char short_root[9];
	node_link *first;               /* sent the clip: asked first */
	unsigned attempts;              /* failures without progress */
	uint64_t not_before;            /* monotonic ms: retry backoff */

	node_link *manifest_link;       /* asked for the manifest */
	uint64_t manifest_sent;         /* monotonic ms; 0: not asked */
	bool have_manifest;
	uint8_t (*chunks)[PROTO_HASH_LEN];
	size_t n_chunks;
	uint8_t *state;                 /* CHUNK_*, per chunk */
	uint16_t *asked_by;             /* link index, per chunk */
	uint64_t *asked_at;             /* monotonic ms, per chunk */
	bool *reasked;                  /* per chunk: asked again after a
					 * timeout, so not timed */
	size_t next;                    /* lowest index that may be missing */
	size_t done;                    /* chunks stored */
	size_t in_flight;
	size_t writing;                 /* chunks queued for the writer */

	job_source sources[NODE_LINKS_MAX];
	uint8_t bad[CM_PEERS_MAX][NODE_KEY_LEN]; /* penalised peers */
	size_t n_bad;
	uint64_t bad_retry;             /* monotonic ms: a penalised peer
					 * may be asked when no other can */

	uint64_t started;               /* monotonic ms */
	uint64_t bytes_in;              /* bytes received since started
					 * that passed the hash check */
	uint64_t next_expire;           /* monotonic ms of the next sweep */
};

/* Ids of the clips whose media was too large, logged once each. */
#define SKIPPED_LOGGED 64

/* Media of a clip that found every fetch slot taken. */
typedef struct pending_entry {
	uint8_t root[PROTO_HASH_LEN];
	uint64_t size;
} pending_entry;

struct node_media_state {
	node_media_writer *writer;
	uint8_t skipped[SKIPPED_LOGGED][PROTO_ID_LEN];
	size_t n_skipped;
	pending_entry pending[CM_MEDIA_PENDING_MAX]; /* a stack: the last
						      * is the newest */
	size_t n_pending;
	bool store_failing;             /* the last chunk write failed */
	uint64_t store_pause_ms;        /* length of the current pause */
	uint64_t store_paused_until;    /* monotonic ms: no chunk or
					 * manifest requests before, after a
					 * failed write */
	uint64_t next_budget;           /* monotonic ms of the next budget
					 * check */
};

/* Failures without progress after which a job gives up until the next
 * media scan. With the backoff below, that takes about 45 seconds. */
#define JOB_ATTEMPTS_MAX 8
#define JOB_BACKOFF_MS 500
#define LACKS_MS_MIN 1000
#define EXPIRE_SWEEP_MS 500
#define BUDGET_CHECK_MS 1000

static void job_free(node *n, node_media_job *job);
static void budget_enforce(node *n, bool now);

/* Allocations below this size come from malloc's arenas instead of
 * their own mmap, and freed memory up to the trim threshold stays in the
 * arenas. Each chunk passes through several such buffers (ZeroMQ's
 * messages, LMDB's overflow pages). With glibc's defaults many of them
 * went back to the kernel when freed, and the next chunk faulted them in
 * and zeroed them again: a node fetching 1 GiB took about 350,000 page
 * faults, and 5,000 with these settings. Peak memory stays the same,
 * because the memory is reused rather than returned. */
#define MALLOC_MMAP_THRESHOLD (2 * CM_WIRE_MSG_MAX)
#define MALLOC_TRIM_THRESHOLD (64 * 1024 * 1024)

/* Frees what publishes that died left (store_publish_sweep). */
static cm_err publishes_sweep(node *n)
{
	store_sweep_report rep;
	cm_err err;

	err = store_publish_sweep(n->st, &rep);
	if (err) {
		cm_error(NODE_LOG, "freeing the media of stopped publishes "
			 "failed: %s (%s)", cm_err_name(err), cm_err_detail());
		return err;
	}
	if (rep.publishes > 0)
		cm_info(NODE_LOG, "freed %llu media, %llu bytes, of %llu "
			"publishes that stopped", (unsigned long long)rep.media,
			(unsigned long long)rep.bytes,
			(unsigned long long)rep.publishes);
	return CM_OK;
}

/* Frees the chunks that no manifest lists, which only a publish by an
 * older release leaves. The walk reads the keys of every chunk once per
 * start; docs/ARCHITECTURE.md gives its measured cost. */
static cm_err unlisted_free(node *n)
{
	uint64_t started = cm_mono_ms(), chunks, bytes;
	cm_err err;

	err = store_chunks_unlisted_free(n->st, &chunks, &bytes);
	if (err) {
		cm_error(NODE_LOG, "freeing chunks that no manifest lists "
			 "failed: %s (%s)", cm_err_name(err), cm_err_detail());
		return err;
	}
	cm_debug(NODE_LOG, "chunk walk took %llu ms",
		 (unsigned long long)(cm_mono_ms() - started));
	if (chunks > 0)
		cm_info(NODE_LOG, "freed %llu chunks, %llu bytes, that no "
			"manifest lists", (unsigned long long)chunks,
			(unsigned long long)bytes);
	return CM_OK;
}

cm_err node_media_init(node *n)
{
	cm_err err;

	if (mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) != 1)
		cm_debug(NODE_LOG, "setting malloc's mmap and trim thresholds "
			 "failed (an allocator other than glibc's?); media "
			 "transfers take more page faults");

	n->jobs = calloc(CM_MEDIA_JOBS_MAX, sizeof(*n->jobs));
	n->media = calloc(1, sizeof(*n->media));
	if (!n->jobs || !n->media)
		return CM_ERR_NOMEM;
	err = node_media_scanner_new(n, &n->media_scan);
	if (!err)
		err = store_media_index_ensure(n->st);
	if (!err)
		err = unlisted_free(n);
	if (!err)
		err = publishes_sweep(n);
	if (err)
		return err;
	return node_media_writer_start(n->st, &n->media->writer);
}

int node_media_wake_fd(const node *n)
{
	return n->media ? node_media_writer_fd(n->media->writer) : -1;
}

static size_t link_index(const node *n, const node_link *l)
{
	return (size_t)(l - n->links);
}

/* Takes chunk i's request off its link's counters. */
static void request_release(node *n, node_media_job *job, size_t i)
{
	node_link *l = &n->links[job->asked_by[i]];
	job_source *src = &job->sources[job->asked_by[i]];

	if (l->chunks_in_flight > 0)
		l->chunks_in_flight--;
	if (src->in_flight > 0)
		src->in_flight--;
	if (job->in_flight > 0)
		job->in_flight--;
}

/* Puts chunk i back into the pool. */
static void chunk_return(node *n, node_media_job *job, size_t i)
{
	if (job->state[i] == CHUNK_ASKED)
		request_release(n, job, i);
	job->state[i] = CHUNK_MISSING;
	if (i < job->next)
		job->next = i;
}

static void job_free(node *n, node_media_job *job)
{
	if (job->state)
		for (size_t i = 0; i < job->n_chunks; i++)
			if (job->state[i] == CHUNK_ASKED)
				request_release(n, job, i);
	free(job->chunks);
	free(job->state);
	free(job->asked_by);
	free(job->asked_at);
	free(job->reasked);
	memset(job, 0, sizeof(*job));
}

void node_media_free(node *n)
{
	/* Stopping the writer stores the chunks still queued. */
	if (n->media) {
		node_media_writer_stop(&n->media->writer);
	}
	node_media_scanner_free(&n->media_scan);
	if (n->jobs)
		for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
			job_free(n, &n->jobs[i]);
	free(n->jobs);
	n->jobs = NULL;
	free(n->served_chunks);
	n->served_chunks = NULL;
	free(n->media);
	n->media = NULL;
}

static node_media_job *job_find(node *n, const uint8_t root[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		if (n->jobs[i].used &&
		    memcmp(n->jobs[i].root, root, PROTO_HASH_LEN) == 0)
			return &n->jobs[i];
	return NULL;
}

bool node_media_fetching(node *n, const uint8_t root[PROTO_HASH_LEN])
{
	return job_find(n, root) != NULL;
}

bool node_media_slot_free(const node *n)
{
	for (size_t i = 0; i < n->limits.media_fetches; i++)
		if (!n->jobs[i].used)
			return true;
	return false;
}

static uint64_t retry_ms(uint32_t failures)
{
	uint64_t wait = CM_MEDIA_RETRY_MIN_MS;

	for (uint32_t i = 1; i < failures && wait < CM_MEDIA_RETRY_MAX_MS; i++)
		wait *= 2;
	return wait > CM_MEDIA_RETRY_MAX_MS ? CM_MEDIA_RETRY_MAX_MS : wait;
}

/* Queues a backoff change for the chunk writer thread, so that the node
 * thread does not wait for the store's write lock, and writes it here
 * only when the queue is full. Until the write, get_backoff finds it in
 * the queue, but a scan reads the store and may queue the media again. */
static cm_err set_backoff(node *n, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t until_ms, uint32_t failures)
{
	if (node_media_writer_backoff(n->media->writer, root, until_ms,
				      failures))
		return CM_OK;
	return store_media_backoff_set(n->st, root, until_ms, failures);
}

/* Reads the backoff of root from the writer's queue, else the store. */
static cm_err get_backoff(node *n, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t *until_ms, uint32_t *failures)
{
	if (node_media_writer_backoff_get(n->media->writer, root, until_ms,
					  failures))
		return CM_OK;
	return store_media_backoff_get(n->st, root, until_ms, failures);
}

/* Ends a job that makes no progress and keeps its root from being
 * fetched again for `wait` ms, in the store so that restarts respect it.
 * Counts one more failure. */
static void job_end(node *n, node_media_job *job, const char *why,
		    uint64_t wait)
{
	uint32_t failures = job->failures + 1;
	cm_err err = set_backoff(n, job->root, cm_now_ms() + wait, failures);

	if (err)
		cm_error(NODE_LOG, "storing the fetch backoff of media=%s "
			 "failed: %s (%s)", job->short_root, cm_err_name(err),
			 cm_err_detail());
	cm_warn(NODE_LOG, "media=%s not fetched: %s; retrying in %llu s "
		"(failure %u)", job->short_root, why,
		(unsigned long long)(wait / 1000), (unsigned)failures);
	node_media_retry_due_at(n, wait);
	job_free(n, job);
}

/* Ends a job that makes no progress, with the backoff of its failures. */
static void job_give_up(node *n, node_media_job *job, const char *why)
{
	job_end(n, job, why, retry_ms(job->failures + 1));
}

/* Returns a free slot, else with `evict` the slot of the stuck job with
 * the most failures in a row, which gives up; NULL when none. */
static node_media_job *job_slot(node *n, bool evict)
{
	node_media_job *stuck = NULL;

	for (size_t i = 0; i < n->limits.media_fetches; i++) {
		node_media_job *job = &n->jobs[i];

		if (!job->used)
			return job;
		if (job->attempts > 0 &&
		    (!stuck || job->attempts > stuck->attempts))
			stuck = job;
	}
	if (!evict || !stuck)
		return NULL;
	/* Its peers may get the media soon, as a relay does when a cut
	 * heals, and this node gets no notice of it. So media that never
	 * failed before comes back after a short pause. */
	job_end(n, stuck, "stuck, making room for newer media",
		stuck->failures == 0 ? CM_MEDIA_MAKE_ROOM_RETRY_MS
				     : retry_ms(stuck->failures + 1));
	return stuck;
}

bool node_media_fetch_add(node *n, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t size, node_link *first, bool evict,
			  bool retry)
{
	node_media_job *job = job_find(n, root);
	uint64_t until = 0, now = cm_now_ms();
	uint32_t failures = 0;

	if (job) {
		if (!job->first)
			job->first = first;
		return true;
	}
	/* A retry leaves out the backoffs longer than any that a failed
	 * fetch gets: those of media that the budget evicted. */
	if (get_backoff(n, root, &until, &failures) == CM_OK &&
	    until > (retry ? now + CM_MEDIA_RETRY_MAX_MS : now)) {
		node_media_retry_due_at(n, until - now);
		return true;
	}
	job = job_slot(n, evict);
	if (!job)
		return false;
	job->used = true;
	memcpy(job->root, root, PROTO_HASH_LEN);
	job->size = size;
	job->clip_size = size;
	job->failures = failures;
	job->first = first;
	job->started = cm_mono_ms();
	for (size_t s = 0; s < NODE_LINKS_MAX; s++)
		job->sources[s].window = CM_WIRE_CHUNKS_INFLIGHT;
	cm_hex_short(root, job->short_root);
	cm_debug(NODE_LOG, "fetching media=%s size=%llu", job->short_root,
		 (unsigned long long)size);
	return true;
}

/* Keeps media that found no slot for later, dropping the oldest entry
 * when the stack is full (a scan finds it again). */
static void pending_push(node *n, const uint8_t root[PROTO_HASH_LEN],
			 uint64_t size)
{
	struct node_media_state *ms = n->media;
	char short_root[9];

	for (size_t i = 0; i < ms->n_pending; i++)
		if (memcmp(ms->pending[i].root, root, PROTO_HASH_LEN) == 0)
			return;
	if (ms->n_pending == CM_MEDIA_PENDING_MAX) {
		memmove(&ms->pending[0], &ms->pending[1],
			(CM_MEDIA_PENDING_MAX - 1) * sizeof(ms->pending[0]));
		ms->n_pending--;
		node_media_rescan(n);
	}
	memcpy(ms->pending[ms->n_pending].root, root, PROTO_HASH_LEN);
	ms->pending[ms->n_pending].size = size;
	ms->n_pending++;
	cm_hex_short(root, short_root);
	cm_debug(NODE_LOG, "fetch slots full, media=%s waits (%zu waiting)",
		 short_root, ms->n_pending);
}

/* Starts the newest waiting fetches while slots are free or stuck. */
static void pending_admit(node *n)
{
	struct node_media_state *ms = n->media;

	while (ms->n_pending > 0) {
		pending_entry *e = &ms->pending[ms->n_pending - 1];

		if (!store_media_complete(n->st, e->root) &&
		    !node_media_fetch_add(n, e->root, e->size, NULL, true,
					  false))
			return;
		ms->n_pending--;
	}
}

/* --- Policy ----------------------------------------------------------- */

static uint64_t size_max(const node *n)
{
	return n->cfg->media_size_max ? n->cfg->media_size_max
				      : CM_MEDIA_FETCH_SIZE_DEFAULT;
}

/* True when the node's media policy covers clips by `author`. */
bool node_media_covers(const node *n, const uint8_t author[PROTO_KEY_LEN])
{
	if (n->cfg->role == NODE_ROLE_MIRROR)
		return true;
	switch (n->cfg->media) {
	case NODE_MEDIA_NONE:
		return false;
	case NODE_MEDIA_ALL:
		return true;
	case NODE_MEDIA_FOLLOWED:
	default:
		return node_wants(n, author);
	}
}

/* True when the clip's media fits the size limit; logs a clip over it
 * once per run (the last SKIPPED_LOGGED clips are remembered). */
bool node_media_clip_fits(node *n, const uint8_t id[PROTO_ID_LEN],
			  const proto_record *rec)
{
	struct node_media_state *ms = n->media;
	uint64_t total = 0;
	char short_id[9];

	for (size_t i = 0; i < rec->n_media; i++)
		total += rec->media[i].size;
	if (total <= size_max(n))
		return true;
	for (size_t i = 0; i < ms->n_skipped && i < SKIPPED_LOGGED; i++)
		if (memcmp(ms->skipped[i], id, PROTO_ID_LEN) == 0)
			return false;
	memcpy(ms->skipped[ms->n_skipped % SKIPPED_LOGGED], id, PROTO_ID_LEN);
	ms->n_skipped++;
	cm_hex_short(id, short_id);
	cm_info(NODE_LOG, "not fetching the media of clip=%s: %llu bytes is "
		"over the limit of %llu bytes (--media-max)", short_id,
		(unsigned long long)total, (unsigned long long)size_max(n));
	return false;
}

void node_media_want(node *n, node_link *from, const proto_signed *rec)
{
	if (!node_media_covers(n, rec->rec.author) ||
	    !node_media_clip_fits(n, rec->id, &rec->rec))
		return;
	for (size_t i = 0; i < rec->rec.n_media; i++) {
		const proto_media_ref *ref = &rec->rec.media[i];

		if (store_media_complete(n->st, ref->hash))
			continue;
		if (!node_media_fetch_add(n, ref->hash, ref->size, from, true,
					  false))
			pending_push(n, ref->hash, ref->size);
	}
}

void node_media_peer_up(node *n)
{
	/* The new peer may serve what failed so far, so the running
	 * fetches ask it at once. They keep their attempts: only progress
	 * resets them, or a peer that reconnects every few seconds would
	 * keep fetches that no peer can serve from ever giving up. */
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		n->jobs[i].not_before = 0;
	node_media_scan_retry(n);
	node_media_scan(n, false);
}

/* --- Sources ---------------------------------------------------------- */

static bool link_usable(const node_link *l)
{
	return l && l->used && l->established && !l->banned;
}

static bool key_bad(const node_media_job *job, const uint8_t *key)
{
	for (size_t i = 0; i < job->n_bad; i++)
		if (memcmp(job->bad[i], key, NODE_KEY_LEN) == 0)
			return true;
	return false;
}

/* Penalises the peer with `key` for this job; true the first time. */
static bool mark_bad(node_media_job *job, const uint8_t key[NODE_KEY_LEN])
{
	char short_key[9];

	if (key_bad(job, key))
		return false;
	if (job->n_bad < CM_PEERS_MAX)
		memcpy(job->bad[job->n_bad++], key, NODE_KEY_LEN);
	cm_hex_short(key, short_key);
	cm_warn(NODE_LOG, "peer=%s sent bad data for media=%s; asking other "
		"peers", short_key, job->short_root);
	return true;
}

/* True when some usable peer that is not penalised may be asked now or
 * soon (it did not report the media missing recently). */
static bool good_source_exists(const node *n, const node_media_job *job,
			       uint64_t now)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (link_usable(l) && !key_bad(job, l->key) &&
		    job->sources[i].lacks_until <= now)
			return true;
	}
	return false;
}

/* True when link i may be asked by the job now; a penalised peer only
 * when no other peer can be asked and the job's backoff allows. */
static bool source_allowed(const node *n, const node_media_job *job,
			   size_t i, uint64_t now, bool bad_ok)
{
	const node_link *l = &n->links[i];

	if (!link_usable(l) || job->sources[i].lacks_until > now)
		return false;
	return !key_bad(job, l->key) || bad_ok;
}

static bool bad_sources_ok(const node *n, const node_media_job *job,
			   uint64_t now)
{
	return now >= job->bad_retry && !good_source_exists(n, job, now);
}

static uint64_t backoff_ms(unsigned count, uint64_t base)
{
	uint64_t wait = base;

	for (unsigned i = 1; i < count && wait < CM_PEER_TIMEOUT_MS; i++)
		wait *= 2;
	return wait > CM_PEER_TIMEOUT_MS ? CM_PEER_TIMEOUT_MS : wait;
}

/* Counts a failure without progress and pauses the job, doubling the
 * pause each time up to CM_PEER_TIMEOUT_MS. */
static void job_failed(node_media_job *job)
{
	job->attempts++;
	job->not_before = cm_mono_ms() + backoff_ms(job->attempts,
						     JOB_BACKOFF_MS);
}

/* Notes that the peer on link i lacks the media for now. */
static void source_lacks(node_media_job *job, size_t i, uint64_t now)
{
	job_source *src = &job->sources[i];

	src->not_found++;
	src->lacks_until = now + backoff_ms(src->not_found, LACKS_MS_MIN);
}

/* --- Manifest ----------------------------------------------------------- */

/* Picks the peer to ask for the manifest: the one that sent the clip,
 * else the first usable peer after the one asked last. */
static node_link *manifest_source(node *n, node_media_job *job, uint64_t now)
{
	bool bad_ok = bad_sources_ok(n, job, now);
	size_t start = 0;

	if (job->first && source_allowed(n, job, link_index(n, job->first),
					 now, bad_ok))
		return job->first;
	if (job->manifest_link)
		start = link_index(n, job->manifest_link) + 1;
	for (size_t k = 0; k < NODE_LINKS_MAX; k++) {
		size_t i = (start + k) % NODE_LINKS_MAX;

		if (source_allowed(n, job, i, now, bad_ok))
			return &n->links[i];
	}
	return NULL;
}

static void send_manifest_req(node *n, node_media_job *job, uint64_t now)
{
	node_link *l = manifest_source(n, job, now);
	uint8_t *buf;
	size_t len;

	if (!l)
		return;
	if (proto_wire_manifest_req(job->root, &buf, &len))
		return;
	if (node_link_send(n, l, buf, len))
		return;
	job->manifest_link = l;
	job->manifest_sent = now;
}

/* Ends the manifest request in flight; `lacks`: its peer lacks it. */
static void manifest_failed(node *n, node_media_job *job, uint64_t now)
{
	if (job->manifest_link)
		source_lacks(job, link_index(n, job->manifest_link), now);
	if (job->first == job->manifest_link)
		job->first = NULL;
	job->manifest_sent = 0;
	if (!good_source_exists(n, job, now))
		job_failed(job);
}

/* Returns the time after which the manifest request in flight times
 * out, in ms: the timeout of chunk requests to the same peer, so that a
 * stalled peer is left as quickly for the manifest as for chunks. */
static uint64_t manifest_timeout(const node_media_job *job)
{
	if (!job->manifest_link)
		return CM_CHUNK_TIMEOUT_INITIAL_MS;
	return node_rto_timeout(&job->manifest_link->chunk_rto);
}

/* Gives up the manifest request in flight after manifest_timeout, so
 * that the next request goes to another peer, and doubles the timeout
 * of its peer as a chunk request's timeout does. */
static void manifest_timed_out(node *n, node_media_job *job, uint64_t now)
{
	node_link *l = job->manifest_link;

	if (l) {
		cm_debug(NODE_LOG, "manifest of media=%s timed out at peer=%s "
			 "after %llu ms (timeout %llu ms)", job->short_root,
			 l->short_key,
			 (unsigned long long)(now - job->manifest_sent),
			 (unsigned long long)manifest_timeout(job));
		node_rto_backoff(&l->chunk_rto);
	}
	manifest_failed(n, job, now);
}

/* Allocates the per-chunk state of a job whose manifest is known and
 * marks the chunks stored already, by an earlier run or another media
 * that shares them. */
static cm_err job_setup_chunks(node *n, node_media_job *job)
{
	bool *present = NULL;
	size_t count = 0;
	cm_err err;

	job->state = calloc(job->n_chunks ? job->n_chunks : 1, 1);
	job->asked_by = calloc(job->n_chunks ? job->n_chunks : 1,
			       sizeof(*job->asked_by));
	job->asked_at = calloc(job->n_chunks ? job->n_chunks : 1,
			       sizeof(*job->asked_at));
	job->reasked = calloc(job->n_chunks ? job->n_chunks : 1,
			      sizeof(*job->reasked));
	present = calloc(job->n_chunks ? job->n_chunks : 1, sizeof(*present));
	if (!job->state || !job->asked_by || !job->asked_at ||
	    !job->reasked || !present) {
		err = cm_errf(CM_ERR_NOMEM, "fetch state of %zu chunks",
			      job->n_chunks);
		goto out;
	}
	err = store_chunks_present(n->st,
				   (const uint8_t (*)[PROTO_HASH_LEN])job->chunks,
				   job->n_chunks, present, &count);
	if (err)
		goto out;
	for (size_t i = 0; i < job->n_chunks; i++)
		if (present[i])
			job->state[i] = CHUNK_STORED;
	job->done = count;
	if (count > 0)
		cm_info(NODE_LOG, "resuming media=%s: %zu of %zu chunks stored "
			"already", job->short_root, count, job->n_chunks);
out:
	free(present);
	return err;
}

/* Takes `size`, which the media root commits to, when the clip that
 * started the job declared another one. Any key can sign a clip that
 * names someone else's media with a wrong size, so the declared size
 * counts only for the size limit, which the real size must meet too.
 * Returns false when the job gave up. */
static bool size_differs(node *n, node_media_job *job, uint64_t size)
{
	char why[160]; /* fits three 20-digit numbers */

	if (size > size_max(n)) {
		snprintf(why, sizeof(why), "it is %llu bytes, over the limit of "
			 "%llu (--media-max), though a clip declares %llu",
			 (unsigned long long)size,
			 (unsigned long long)size_max(n),
			 (unsigned long long)job->clip_size);
		job_give_up(n, job, why);
		return false;
	}
	cm_info(NODE_LOG, "media=%s is %llu bytes, not the %llu that a clip "
		"declares; fetching it", job->short_root,
		(unsigned long long)size, (unsigned long long)job->clip_size);
	job->clip_size = size;
	job->size = size;
	return true;
}

/* Pauses the job of media whose stored manifest is damaged. A peer's
 * manifest of the same root is not stored over it, so asking peers again
 * would loop at network speed, and a damaged chunk list would blame
 * honest peers for every chunk. The job gives up after JOB_ATTEMPTS_MAX
 * pauses, like one that no peer serves. */
static void manifest_damaged(node_media_job *job)
{
	cm_warn(NODE_LOG, "stored manifest of media=%s is damaged (%s), so "
		"its fetch pauses; restore the store from a backup",
		job->short_root, cm_err_detail());
	job_failed(job);
}

/* Uses a manifest stored by an earlier run or another process, once it
 * matches the media root. */
static bool load_manifest(node *n, node_media_job *job)
{
	uint8_t (*chunks)[PROTO_HASH_LEN];
	uint64_t size;
	size_t count;
	cm_err err;

	cm_err_clear();
	err = store_manifest_get(n->st, job->root, &size, &chunks, &count);
	if (err == CM_ERR_NOT_FOUND)
		return false;
	if (!err)
		err = proto_media_check_manifest(
			job->root, size,
			(const uint8_t (*)[PROTO_HASH_LEN])chunks, count);
	if (err) {
		free(chunks);
		manifest_damaged(job);
		return false;
	}
	if (size != job->clip_size && !size_differs(n, job, size)) {
		free(chunks);
		return false;
	}
	free(job->chunks);
	job->chunks = chunks;
	job->n_chunks = count;
	job->size = size;
	job->next = 0;
	err = job_setup_chunks(n, job);
	if (err) {
		cm_error(NODE_LOG, "preparing the fetch of media=%s failed: "
			 "%s (%s)", job->short_root, cm_err_name(err),
			 cm_err_detail());
		free(job->state);
		free(job->asked_by);
		free(job->asked_at);
		free(job->reasked);
		job->state = NULL;
		job->asked_by = NULL;
		job->asked_at = NULL;
		job->reasked = NULL;
		job_failed(job);
		return false;
	}
	job->have_manifest = true;
	return true;
}

/* --- Chunks ------------------------------------------------------------- */

/* Returns the lowest missing chunk at or after job->next, or n_chunks. */
static size_t next_missing(node *n, node_media_job *job)
{
	while (job->next < job->n_chunks) {
		size_t i = job->next;

		if (job->state[i] == CHUNK_MISSING) {
			/* Another media or process may have stored it. */
			if (!store_chunk_has(n->st, job->chunks[i]))
				return i;
			job->state[i] = CHUNK_STORED;
			job->done++;
		}
		job->next++;
	}
	return job->n_chunks;
}

static bool send_chunk_req(node *n, node_media_job *job, size_t link,
			   size_t i, uint64_t now)
{
	node_link *l = &n->links[link];
	uint8_t *buf;
	size_t len;

	if (proto_wire_chunk_req(job->root, i, &buf, &len))
		return false;
	if (node_link_send(n, l, buf, len))
		return false;
	job->state[i] = CHUNK_ASKED;
	job->asked_by[i] = (uint16_t)link;
	job->asked_at[i] = now;
	job->sources[link].in_flight++;
	job->in_flight++;
	l->chunks_in_flight++;
	if (i >= job->next)
		job->next = i + 1;
	return true;
}

/* Returns how many more chunk requests may be sent, so that the chunks
 * requested over all jobs and those queued for the writer fit in its
 * CM_MEDIA_WRITE_SLOTS slots. */
static size_t request_room(const node *n)
{
	size_t used = node_media_writer_pending(n->media->writer);

	for (size_t j = 0; j < CM_MEDIA_JOBS_MAX; j++)
		if (n->jobs[j].used)
			used += n->jobs[j].in_flight;
	return used < CM_MEDIA_WRITE_SLOTS ? CM_MEDIA_WRITE_SLOTS - used : 0;
}

/* Asks link k for the chunk that has waited longest at another peer, if
 * it waited longer than k's own timeout. So once the pool is empty, the
 * last chunks of a job move from a stalled peer to a responsive one. The
 * stalled peer's window halves, and its late response is dropped. False
 * when no request qualifies or sending failed. */
static bool steal_request(node *n, node_media_job *job, size_t k,
			  uint64_t now)
{
	uint64_t limit = node_rto_timeout(&n->links[k].chunk_rto);
	size_t oldest = job->n_chunks, from;

	if (job->in_flight <= job->sources[k].in_flight)
		return false;
	for (size_t i = 0; i < job->n_chunks; i++) {
		if (job->state[i] != CHUNK_ASKED || job->asked_by[i] == k ||
		    now - job->asked_at[i] <= limit)
			continue;
		if (oldest == job->n_chunks ||
		    job->asked_at[i] < job->asked_at[oldest])
			oldest = i;
	}
	if (oldest == job->n_chunks)
		return false;

	from = job->asked_by[oldest];
	if (job->sources[from].window > 1)
		job->sources[from].window /= 2;
	cm_debug(NODE_LOG, "chunk %zu of media=%s moves from peer=%s after "
		 "%llu ms to peer=%s (timeout %llu ms)", oldest,
		 job->short_root, n->links[from].short_key,
		 (unsigned long long)(now - job->asked_at[oldest]),
		 n->links[k].short_key, (unsigned long long)limit);
	chunk_return(n, job, oldest);
	job->reasked[oldest] = true;
	return send_chunk_req(n, job, k, oldest, now);
}

/* Fills the windows of the peers, one request per peer in turn, so that
 * the missing chunks spread over every peer with room. Once no chunk is
 * missing, a peer with room takes over requests that wait too long
 * elsewhere (steal_request). */
static void request_chunks(node *n, node_media_job *job, uint64_t now)
{
	bool bad_ok = bad_sources_ok(n, job, now);
	size_t room = request_room(n);
	bool sent = true;

	if (now < n->media->store_paused_until)
		return;

	while (sent && room > 0) {
		sent = false;
		for (size_t k = 0; k < NODE_LINKS_MAX; k++) {
			job_source *src = &job->sources[k];
			size_t i;

			if (room == 0)
				return;
			if (!source_allowed(n, job, k, now, bad_ok) ||
			    src->in_flight >= src->window ||
			    n->links[k].chunks_in_flight >=
				    CM_WIRE_CHUNKS_INFLIGHT)
				continue;
			i = next_missing(n, job);
			if (i >= job->n_chunks) {
				if (steal_request(n, job, k, now)) {
					sent = true;
					room--;
				}
				continue;
			}
			if (send_chunk_req(n, job, k, i, now)) {
				sent = true;
				room--;
			}
		}
	}
}

/* Returns requests that waited longer than their peer's timeout to the
 * pool, halves the window of those peers, and doubles their timeout once
 * per sweep. */
static void expire_requests(node *n, node_media_job *job, uint64_t now)
{
	bool timed_out[NODE_LINKS_MAX] = {false};
	bool expired = false;

	if (now < job->next_expire || job->in_flight == 0)
		return;
	job->next_expire = now + EXPIRE_SWEEP_MS;
	for (size_t i = 0; i < job->n_chunks; i++) {
		size_t k = job->asked_by[i];
		node_link *l = &n->links[k];
		uint64_t timeout;

		if (job->state[i] != CHUNK_ASKED)
			continue;
		timeout = node_rto_timeout(&l->chunk_rto);
		if (now - job->asked_at[i] <= timeout)
			continue;
		if (job->sources[k].window > 1)
			job->sources[k].window /= 2;
		cm_debug(NODE_LOG, "chunk %zu of media=%s timed out at "
			 "peer=%s after %llu ms (timeout %llu ms)", i,
			 job->short_root, l->short_key,
			 (unsigned long long)(now - job->asked_at[i]),
			 (unsigned long long)timeout);
		chunk_return(n, job, i);
		job->reasked[i] = true;
		timed_out[k] = true;
		expired = true;
	}
	for (size_t k = 0; expired && k < NODE_LINKS_MAX; k++)
		if (timed_out[k])
			node_rto_backoff(&n->links[k].chunk_rto);
	if (expired && !good_source_exists(n, job, now))
		job_failed(job);
}

/* --- Writing ----------------------------------------------------------- */

/* Ends a job whose media was freed while it ran, over the media budget or
 * because its clips were removed. An eviction also stored a backoff, so
 * a scan does not queue the media again at once. */
static void job_drop_freed(node *n, node_media_job *job)
{
	cm_info(NODE_LOG, "media=%s was freed while it was being fetched; "
		"stopping its fetch", job->short_root);
	job_free(n, job);
}

/* Ends the jobs whose manifest is no longer stored. */
static void jobs_drop_freed(node *n)
{
	for (size_t j = 0; j < CM_MEDIA_JOBS_MAX; j++) {
		node_media_job *job = &n->jobs[j];

		if (job->used && job->have_manifest &&
		    !store_manifest_has(n->st, job->root))
			job_drop_freed(n, job);
	}
}

/* Returns the link to the peer with `key` that sent chunk i: the link
 * that the chunk was requested on, else another link to that peer, else
 * NULL once the peer is no longer connected. */
static node_link *chunk_sender(node *n, const node_media_job *job, size_t i,
			       const uint8_t key[NODE_KEY_LEN])
{
	node_link *l = &n->links[job->asked_by[i]];

	if (l->used && memcmp(l->key, key, NODE_KEY_LEN) == 0)
		return l;
	for (size_t k = 0; k < NODE_LINKS_MAX; k++)
		if (n->links[k].used &&
		    memcmp(n->links[k].key, key, NODE_KEY_LEN) == 0)
			return &n->links[k];
	return NULL;
}

/* Rejects and counts chunk i, which the peer with `key` sent on link l
 * (NULL once that peer disconnected), lowering the score of a link of
 * that key. The chunk goes back to the pool, and the peer gets no more
 * requests of the job while another peer can be asked. */
static void chunk_bad(node *n, node_media_job *job, size_t i, node_link *l,
		      const uint8_t key[NODE_KEY_LEN])
{
	char short_key[9];

	cm_hex_short(key, short_key);
	cm_errf(CM_ERR_BAD_CHUNK, "chunk %zu of media %s from peer=%s%s", i,
		job->short_root, short_key, l ? "" : ", since disconnected");
	(void)node_reject_sender(n, l, key, "chunk", CM_ERR_BAD_CHUNK, NULL);
	chunk_return(n, job, i);
	if (mark_bad(job, key)) {
		job->attempts++;
		job->bad_retry = cm_mono_ms() + backoff_ms(job->attempts,
							   JOB_BACKOFF_MS);
	}
}

/* Credits the peer that sent chunk i with a chunk that passed its hash
 * check: grows its window and counts the chunk and its bytes. */
static void chunk_credit(node *n, node_media_job *job, size_t i,
			 const uint8_t key[NODE_KEY_LEN])
{
	node_link *l = chunk_sender(n, job, i, key);
	uint64_t len = job->size - (uint64_t)i * CM_CHUNK_SIZE;
	job_source *src;

	job->bytes_in += len < CM_CHUNK_SIZE ? len : CM_CHUNK_SIZE;
	if (!l)
		return;
	src = &job->sources[link_index(n, l)];
	src->chunks++;
	if (src->window < CM_WIRE_CHUNKS_INFLIGHT)
		src->window++;
}

/* Pauses every chunk and manifest request after a write of fetched
 * media failed, so that a full map or disk does not turn into a loop of
 * fetching and failing at network speed. The first pause lasts
 * CM_STORE_FULL_RETRY_MS, and each failure after a pause doubles it up to
 * CM_MEDIA_STORE_PAUSE_MAX_MS. The fetches keep their attempts, because
 * no peer failed. */
static void store_failed(node *n)
{
	struct node_media_state *ms = n->media;
	uint64_t now = cm_mono_ms();

	if (!ms->store_failing) {
		cm_error(NODE_LOG, "storing fetched media failed; media fetches "
			 "pause until a write succeeds, %d s at first. Free "
			 "disk space or raise store_map_size",
			 CM_STORE_FULL_RETRY_MS / 1000);
		ms->store_pause_ms = CM_STORE_FULL_RETRY_MS;
	} else if (now >= ms->store_paused_until) {
		ms->store_pause_ms *= 2;
		if (ms->store_pause_ms > CM_MEDIA_STORE_PAUSE_MAX_MS)
			ms->store_pause_ms = CM_MEDIA_STORE_PAUSE_MAX_MS;
	}
	ms->store_failing = true;
	ms->store_paused_until = now + ms->store_pause_ms;
}

static void store_works(node *n)
{
	if (!n->media->store_failing)
		return;
	n->media->store_failing = false;
	cm_info(NODE_LOG, "media chunks are stored again");
}

/* Settles a chunk once the hasher checked it and, when it matched, the
 * writer's transaction ended. A stored chunk is marked so. After a
 * failed transaction the chunk returns to the pool and every chunk
 * request of the node pauses (store_failed).
 * A job whose media was freed meanwhile ends, and a chunk whose hash
 * differs is rejected. A chunk of a job that ended is skipped.
 * node_media_tick pumps the jobs right after collecting. */
static void chunk_settle(void *ctx, const uint8_t root[PROTO_HASH_LEN],
			 uint64_t index, const uint8_t hash[PROTO_HASH_LEN],
			 const uint8_t peer[NODE_KEY_LEN],
			 node_write_result result)
{
	node *n = ctx;
	node_media_job *job = job_find(n, root);
	size_t i = (size_t)index;

	if (!job || !job->state || index >= job->n_chunks ||
	    job->state[i] != CHUNK_QUEUED ||
	    memcmp(job->chunks[i], hash, PROTO_HASH_LEN) != 0)
		return;
	job->writing--;
	switch (result) {
	case NODE_WRITE_STORED:
		store_works(n);
		chunk_credit(n, job, i, peer);
		job->state[i] = CHUNK_STORED;
		job->done++;
		job->attempts = 0;
		break;
	case NODE_WRITE_FAILED:
		/* The peer served the chunk: the failure is the store's. */
		chunk_credit(n, job, i, peer);
		chunk_return(n, job, i);
		store_failed(n);
		break;
	case NODE_WRITE_UNLISTED:
		job_drop_freed(n, job);
		break;
	case NODE_WRITE_BAD:
		chunk_bad(n, job, i, chunk_sender(n, job, i, peer), peer);
		break;
	}
}

/* Collects the results of the hasher's checks and the writer's finished
 * transactions. The jobs pumped next in node_media_tick then request
 * more chunks or finish. */
static void writes_collect(node *n)
{
	node_media_writer_collect(n->media->writer, chunk_settle, n);
}

/* Queues a received chunk, which the peer on link l sent, for the hash
 * check and the commit. */
static void write_chunk(node *n, node_media_job *job, size_t i,
			const node_link *l, const uint8_t *data, size_t len)
{
	if (!node_media_writer_put(n->media->writer, job->root, i,
				   job->chunks[i], l->key, n->rx_msg, data,
				   len)) {
		/* request_room keeps a slot for every request, so this is
		 * only a safeguard: the chunk is requested again. Its request
		 * was released on arrival, so it must not be released twice. */
		cm_debug(NODE_LOG, "no writer slot for chunk %zu of media=%s",
			 i, job->short_root);
		job->state[i] = CHUNK_MISSING;
		chunk_return(n, job, i);
		return;
	}
	job->state[i] = CHUNK_QUEUED;
	job->writing++;
}

/* --- Budget ------------------------------------------------------------- */

/* A growing list of author keys. */
typedef struct key_buf {
	uint8_t *keys;
	size_t n;
	size_t cap;
} key_buf;

static int keep_identity(void *ctx, const char *name,
			 const uint8_t public_key[32])
{
	key_buf *kb = ctx;

	(void)name;
	if (cm_array_reserve((void **)&kb->keys, &kb->cap, kb->n + 1,
			     PROTO_KEY_LEN))
		return 1;
	memcpy(kb->keys + kb->n++ * PROTO_KEY_LEN, public_key, PROTO_KEY_LEN);
	return 0;
}

/* Collects the authors whose media the budget never evicts: the node's
 * identities and followed keys. *keys is malloc'd. */
static cm_err budget_keep(node *n, uint8_t **keys, size_t *count)
{
	key_buf kb = {0};
	uint8_t *follows = NULL;
	size_t n_follows = 0;
	cm_err err;

	err = cm_key_list(n->cfg->home, keep_identity, &kb);
	if (!err)
		err = store_following(n->st, &follows, &n_follows);
	for (size_t i = 0; !err && i < n_follows; i++)
		if (keep_identity(&kb, NULL, follows + i * PROTO_KEY_LEN))
			err = CM_ERR_NOMEM;
	free(follows);
	if (err) {
		free(kb.keys);
		return err;
	}
	*keys = kb.keys;
	*count = kb.n;
	return CM_OK;
}

/* Frees what stopped publishes left, then evicts whole media while the
 * stored chunks exceed --media-budget; at most every BUDGET_CHECK_MS
 * unless `now`. */
static void budget_enforce(node *n, bool now)
{
	uint64_t mono = cm_mono_ms(), media = 0, bytes = 0;
	uint8_t *keep = NULL;
	size_t n_keep = 0;
	store_counts counts;
	cm_err err;

	if (!now && mono < n->media->next_budget)
		return;
	n->media->next_budget = mono + BUDGET_CHECK_MS;
	publishes_sweep(n);
	if (n->cfg->media_budget == 0)
		return;
	err = store_get_counts(n->st, &counts);
	if (err || counts.chunk_bytes <= n->cfg->media_budget)
		return;
	err = budget_keep(n, &keep, &n_keep);
	if (!err)
		err = store_media_evict(n->st, n->cfg->media_budget, keep,
					n_keep,
					cm_now_ms() + CM_MEDIA_EVICT_RETRY_MS,
					&media, &bytes);
	free(keep);
	if (err) {
		cm_error(NODE_LOG, "enforcing the media budget failed: %s (%s)",
			 cm_err_name(err), cm_err_detail());
		return;
	}
	if (media == 0)
		return;
	cm_info(NODE_LOG, "media budget of %llu bytes: evicted %llu media, "
		"%llu bytes", (unsigned long long)n->cfg->media_budget,
		(unsigned long long)media, (unsigned long long)bytes);
	jobs_drop_freed(n);
}

/* --- Job progress ------------------------------------------------------- */

static void job_finish(node *n, node_media_job *job)
{
	double secs = (double)(cm_mono_ms() - job->started) / 1000.0;

	if (store_media_complete(n->st, job->root)) {
		cm_info(NODE_LOG, "media complete media=%s size=%llu "
			"chunks=%zu seconds=%.1f", job->short_root,
			(unsigned long long)job->size, job->n_chunks, secs);
		if (job->failures > 0)
			set_backoff(n, job->root, 0, 0);
		job_free(n, job);
		budget_enforce(n, true);
		return;
	}
	/* A chunk went missing since it was stored: look again. */
	for (size_t i = 0; i < job->n_chunks; i++)
		if (job->state[i] == CHUNK_STORED &&
		    !store_chunk_has(n->st, job->chunks[i])) {
			job->state[i] = CHUNK_MISSING;
			job->done--;
		}
	job->next = 0;
	job_failed(job);
}

static void job_pump(node *n, node_media_job *job)
{
	uint64_t now = cm_mono_ms();

	if (job->attempts > JOB_ATTEMPTS_MAX) {
		job_give_up(n, job, "no peer served it");
		return;
	}
	if (now < job->not_before)
		return;
	if (!job->have_manifest && !load_manifest(n, job)) {
		if (!job->used)
			return; /* the clip's size was wrong: given up */
		if (job->manifest_sent != 0 &&
		    now - job->manifest_sent > manifest_timeout(job))
			manifest_timed_out(n, job, now);
		if (job->manifest_sent == 0 && now >= job->not_before &&
		    now >= n->media->store_paused_until)
			send_manifest_req(n, job, now);
		return;
	}

	expire_requests(n, job, now);
	if (now < job->not_before)
		return;
	request_chunks(n, job, now);
	if (job->done == job->n_chunks && job->in_flight == 0 &&
	    job->writing == 0)
		job_finish(n, job);
}

void node_media_tick(node *n)
{
	writes_collect(n);
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		if (n->jobs[i].used)
			job_pump(n, &n->jobs[i]);
	pending_admit(n);
	budget_enforce(n, false);
	node_media_scan_tick(n);
}

void node_media_on_link_down(node *n, node_link *l)
{
	size_t k = link_index(n, l);

	memset(&l->chunk_rto, 0, sizeof(l->chunk_rto));
	if (!n->jobs)
		return;
	for (size_t j = 0; j < CM_MEDIA_JOBS_MAX; j++) {
		node_media_job *job = &n->jobs[j];

		if (!job->used)
			continue;
		if (job->first == l)
			job->first = NULL;
		if (job->manifest_link == l) {
			job->manifest_link = NULL;
			job->manifest_sent = 0;
		}
		for (size_t i = 0; job->state && i < job->n_chunks; i++)
			if (job->state[i] == CHUNK_ASKED &&
			    job->asked_by[i] == k) {
				chunk_return(n, job, i);
				job->reasked[i] = true;
			}
		memset(&job->sources[k], 0, sizeof(job->sources[k]));
		job->sources[k].window = CM_WIRE_CHUNKS_INFLIGHT;
	}
}

/* --- Responses ---------------------------------------------------------- */

static void on_manifest(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);
	const uint8_t (*chunks)[PROTO_HASH_LEN] =
		(const uint8_t (*)[PROTO_HASH_LEN])m->chunks;
	uint64_t now = cm_mono_ms();
	cm_err err;

	if (!job || job->have_manifest || job->manifest_link != l ||
	    job->manifest_sent == 0)
		return; /* not requested from this peer, or received already */

	/* The root commits to the size, so the manifest's size is checked
	 * by the hash even when the clip declared another one. */
	err = proto_media_check_manifest(m->root, m->size, chunks,
					 m->n_chunks);
	if (err) {
		node_reject(n, l, "manifest", err, m->root);
		if (mark_bad(job, l->key))
			job->bad_retry = now + backoff_ms(job->attempts + 1,
							  JOB_BACKOFF_MS);
		job->manifest_sent = 0;
		job_failed(job);
		return;
	}
	if (m->size != job->clip_size && !size_differs(n, job, m->size))
		return;
	err = store_manifest_put(n->st, m->root, m->size, chunks,
				 m->n_chunks);
	if (err) {
		cm_error(NODE_LOG, "storing manifest media=%s failed: %s (%s)",
			 job->short_root, cm_err_name(err), cm_err_detail());
		job->manifest_sent = 0;
		store_failed(n);
		return;
	}
	job->manifest_sent = 0;
	if (!load_manifest(n, job))
		return;
	job->attempts = 0;
	job->sources[link_index(n, l)].not_found = 0;
	job_pump(n, job);
}

/* True when the chunk has the length that its index requires. The hash
 * is checked off the node thread, before the chunk is stored. */
static bool chunk_length_valid(const node_media_job *job,
			       const proto_wire_msg *m)
{
	uint64_t expected;

	expected = job->size - m->index * (uint64_t)CM_CHUNK_SIZE;
	if (expected > CM_CHUNK_SIZE)
		expected = CM_CHUNK_SIZE;
	return m->data_len == expected;
}

static void on_chunk(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);
	size_t k = link_index(n, l), i;
	uint64_t now = cm_mono_ms();

	if (!job || !job->have_manifest || m->index >= job->n_chunks)
		return;
	i = (size_t)m->index;
	if (job->state[i] != CHUNK_ASKED || job->asked_by[i] != k)
		return; /* not requested from this peer: drop it */

	if (!chunk_length_valid(job, m)) {
		chunk_bad(n, job, i, l, l->key);
		job_pump(n, job);
		return;
	}

	/* The response time measures the peer's speed, so it is sampled
	 * before the hash check. A chunk that fails the check gets its
	 * peer penalised in chunk_settle. */
	if (!job->reasked[i])
		node_rto_sample(&l->chunk_rto, now - job->asked_at[i]);
	request_release(n, job, i);
	write_chunk(n, job, i, l, m->data, m->data_len);
	job->sources[k].not_found = 0;
	job_pump(n, job);
}

static void on_not_found(node *n, node_link *l, const proto_wire_msg *m)
{
	node_media_job *job = job_find(n, m->root);
	size_t k = link_index(n, l);
	uint64_t now = cm_mono_ms();

	if (!job)
		return;
	if (m->missing == PROTO_WIRE_MISSING_MANIFEST) {
		if (job->have_manifest || job->manifest_link != l ||
		    job->manifest_sent == 0)
			return;
		cm_debug(NODE_LOG, "peer=%s lacks the manifest of media=%s",
			 l->short_key, job->short_root);
		manifest_failed(n, job, now);
		job_pump(n, job);
		return;
	}
	if (!job->have_manifest || m->index >= job->n_chunks ||
	    job->state[m->index] != CHUNK_ASKED ||
	    job->asked_by[m->index] != k)
		return;
	cm_debug(NODE_LOG, "peer=%s lacks chunk %llu of media=%s",
		 l->short_key, (unsigned long long)m->index, job->short_root);
	chunk_return(n, job, (size_t)m->index);
	source_lacks(job, k, now);
	if (!good_source_exists(n, job, now) && job->in_flight == 0)
		job_failed(job);
	job_pump(n, job);
}

void node_media_on_message(node *n, node_link *l, const proto_wire_msg *m)
{
	switch (m->type) {
	case PROTO_WIRE_MANIFEST_REQ:
	case PROTO_WIRE_CHUNK_REQ:
		node_media_serve(n, l, m);
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

/* --- Status ------------------------------------------------------------- */

static const char *source_state(const node *n, const node_media_job *job,
				size_t k, uint64_t now)
{
	if (key_bad(job, n->links[k].key))
		return "bad";
	if (job->sources[k].lacks_until > now)
		return "lacks";
	return "has";
}

static json_t *job_peers_json(const node *n, const node_media_job *job,
			      uint64_t now)
{
	json_t *peers = json_array();

	for (size_t k = 0; peers && k < NODE_LINKS_MAX; k++) {
		const job_source *src = &job->sources[k];
		const node_link *l = &n->links[k];

		if (!link_usable(l) ||
		    (src->chunks == 0 && src->in_flight == 0 &&
		     src->lacks_until == 0 && !key_bad(job, l->key)))
			continue;
		json_array_append_new(
			peers,
			json_pack("{s:s, s:I, s:I, s:I, s:s}", "peer",
				  l->short_key, "chunks", (json_int_t)src->chunks,
				  "in_flight", (json_int_t)src->in_flight,
				  "timeout_ms",
				  (json_int_t)node_rto_timeout(&l->chunk_rto),
				  "state", source_state(n, job, k, now)));
	}
	return peers;
}

static json_t *job_json(const node *n, const node_media_job *job,
			uint64_t now)
{
	char hex[2 * PROTO_HASH_LEN + 1];
	uint64_t elapsed = now - job->started;
	uint64_t bytes_done = 0;

	cm_hex_encode(job->root, PROTO_HASH_LEN, hex);
	if (job->have_manifest && job->done > 0) {
		bytes_done = (uint64_t)job->done * CM_CHUNK_SIZE;
		if (bytes_done > job->size)
			bytes_done = job->size;
	}
	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:o}",
			 "root", hex,
			 "manifest", job->have_manifest,
			 "chunks_done", (json_int_t)job->done,
			 "chunks_total", (json_int_t)job->n_chunks,
			 "bytes_done", (json_int_t)bytes_done,
			 "size", (json_int_t)job->size,
			 "rate", (json_int_t)(elapsed
				? job->bytes_in * 1000 / elapsed : 0),
			 "peers", job_peers_json(n, job, now));
}

json_t *node_media_transfers_json(const node *n)
{
	json_t *list = json_array();
	uint64_t now = cm_mono_ms();

	for (size_t i = 0; list && n->jobs && i < CM_MEDIA_JOBS_MAX; i++)
		if (n->jobs[i].used)
			json_array_append_new(list,
					      job_json(n, &n->jobs[i], now));
	return list;
}
