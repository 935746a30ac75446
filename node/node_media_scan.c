/*
 * node_media_scan.c - the walk of the store that finds media to fetch.
 *
 * A clip that arrives queues its media at once (node_media_want). The
 * scan finds the rest: media pushed out of the pending stack, media whose
 * fetch backoff ended, and fetches that a restart left unfinished. It
 * walks every stored clip that the media policy covers, oldest first,
 * keeps the newest SCAN_FOUND_MAX media that are incomplete and not in a
 * backoff, and queues them newest first into the free fetch slots. When
 * it had to leave older media out, it requests another scan.
 *
 * A scan runs at start-up, then at most once per sync_interval and only
 * when something may have changed and a fetch slot is free, since
 * without a free slot it could queue nothing. It walks SCAN_PART_RECORDS
 * records at a time and gives the node thread back after SCAN_SLICE_MS.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define SCAN_PART_RECORDS 256
#define SCAN_SLICE_MS 10
/* A scan keeps the newest this many distinct media that it may fetch and
 * that no fetch has yet, more than the slots, and scans again for the
 * older ones. */
#define SCAN_FOUND_MAX (2 * CM_MEDIA_JOBS_MAX)

/* A retry scan recognises the backoffs of evicted media by their length. */
_Static_assert(CM_MEDIA_EVICT_RETRY_MS > CM_MEDIA_RETRY_MAX_MS,
	       "evicted media has a longer backoff than a failed fetch");

/* Media found by a scan, oldest clip first. */
typedef struct media_list {
	node *n;
	uint8_t (*roots)[PROTO_HASH_LEN];
	uint64_t *sizes;
	size_t count;
	/* Capacities in items, one each because the two arrays grow one
	 * after the other and either realloc may fail alone. */
	size_t roots_cap;
	size_t sizes_cap;
	bool out_of_memory;  /* an entry could not be added */
} media_list;

struct node_media_scanner {
	/* The scan in progress. */
	bool running;
	store_scan_part part;
	media_list found;    /* media that may be fetched now */
	bool dropped;        /* older media left out of `found` */
	uint64_t records;    /* visited so far */

	bool retry;          /* the running scan ignores fetch backoffs */

	/* When the next scan runs. */
	bool rescan;         /* something changed: scan again */
	bool retry_next;     /* the next scan ignores fetch backoffs */
	uint64_t retry_after; /* monotonic ms; no retry_next before */
	uint64_t next_scan;  /* monotonic ms; no scan before */
	uint64_t retry_due;  /* monotonic ms at which a fetch backoff ends;
			      * 0: none known */

	/* For status. */
	uint64_t scans_done; /* scans that walked to the end */
	uint64_t last_records; /* records the last one visited */
};

cm_err node_media_scanner_new(const node *n, node_media_scanner **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return CM_ERR_NOMEM;
	/* The peers that connect right after a start bring nothing new:
	 * the backoffs were set while the node had them. */
	(*out)->retry_after = cm_mono_ms() + n->limits.sync_interval_ms;
	return CM_OK;
}

static void scan_end(node_media_scanner *scan)
{
	free(scan->found.roots);
	free(scan->found.sizes);
	memset(&scan->found, 0, sizeof(scan->found));
	memset(&scan->part, 0, sizeof(scan->part));
	scan->running = false;
	scan->retry = false;
	scan->dropped = false;
	scan->records = 0;
}

void node_media_scanner_free(node_media_scanner **scan)
{
	if (!*scan)
		return;
	scan_end(*scan);
	free(*scan);
	*scan = NULL;
}

void node_media_rescan(node *n)
{
	n->media_scan->rescan = true;
}

bool node_media_scan_retry(node *n)
{
	node_media_scanner *scan = n->media_scan;
	uint64_t now = cm_mono_ms();

	if (now < scan->retry_after)
		return false;
	scan->retry_after = now + n->limits.sync_interval_ms;
	scan->retry_next = true;
	scan->rescan = true;
	cm_info(NODE_LOG, "a peer connected: the next media scan also takes "
		"media in a fetch backoff");
	return true;
}

void node_media_retry_due_at(node *n, uint64_t wait)
{
	node_media_scanner *scan = n->media_scan;
	uint64_t due = cm_mono_ms() + wait;

	if (scan->retry_due == 0 || due < scan->retry_due)
		scan->retry_due = due;
}

static int media_list_add(media_list *ml, const proto_media_ref *ref)
{
	size_t need = ml->count + 1;

	if (cm_array_reserve((void **)&ml->roots, &ml->roots_cap, need,
			     sizeof(*ml->roots)) ||
	    cm_array_reserve((void **)&ml->sizes, &ml->sizes_cap, need,
			     sizeof(*ml->sizes)))
		return 1;
	memcpy(ml->roots[ml->count], ref->hash, PROTO_HASH_LEN);
	ml->sizes[ml->count] = ref->size;
	ml->count++;
	return 0;
}
/* Collects the media of each clip that the policy covers. Only memory
 * is touched here, because the store's read transaction is open during
 * the walk. */
static int scan_record(void *ctx, const uint8_t id[PROTO_ID_LEN],
		       const uint8_t *wire, size_t len)
{
	static proto_record rec;
	media_list *ml = ctx;
	const uint8_t *body;
	size_t body_len;

	if (!node_record_body(wire, len, &body, &body_len) ||
	    proto_body_read_stored(body, body_len, &rec) ||
	    rec.kind != PROTO_KIND_CLIP || !node_media_covers(ml->n, rec.author) ||
	    !node_media_clip_fits(ml->n, id, &rec))
		return 0;
	for (size_t i = 0; i < rec.n_media; i++)
		if (media_list_add(ml, &rec.media[i])) {
			ml->out_of_memory = true;
			return 1;
		}
	return 0;
}

/* Keeps the entries of the list from `first` on whose media may be
 * fetched now (incomplete, no backoff running) and drops the others, so
 * that a scan of a large store keeps only what it can queue. */
static cm_err keep_fetchable(node *n, media_list *ml, size_t first)
{
	uint64_t now = cm_now_ms(), next_retry = 0;
	size_t n_new = ml->count - first, n_kept = first;
	bool *fetch;
	cm_err err;

	if (n_new == 0)
		return CM_OK;
	fetch = calloc(n_new, sizeof(*fetch));
	if (!fetch)
		return cm_errf(CM_ERR_NOMEM, "cannot check %zu media", n_new);
	/* A retry takes media whose fetch backoff ends within the longest
	 * one a failed fetch gets, which leaves out the longer backoff of
	 * media that the budget evicted. */
	err = store_media_fetchable(
		n->st, (const uint8_t (*)[PROTO_HASH_LEN])ml->roots + first,
		n_new, n->media_scan->retry ? now + CM_MEDIA_RETRY_MAX_MS : now,
		fetch, &next_retry);
	if (next_retry > now)
		node_media_retry_due_at(n, next_retry - now);
	for (size_t i = 0; !err && i < n_new; i++) {
		if (!fetch[i])
			continue;
		memmove(ml->roots[n_kept], ml->roots[first + i],
			PROTO_HASH_LEN);
		ml->sizes[n_kept] = ml->sizes[first + i];
		n_kept++;
	}
	if (!err)
		ml->count = n_kept;
	free(fetch);
	return err;
}

/* Keeps the newest SCAN_FOUND_MAX distinct media that the scan found
 * and that no fetch has yet, once the list grows past that. */
static void keep_newest(node_media_scanner *scan)
{
	node *n = scan->found.n;
	media_list *ml = &scan->found;
	uint8_t roots[SCAN_FOUND_MAX][PROTO_HASH_LEN];
	uint64_t sizes[SCAN_FOUND_MAX];
	size_t n_kept = 0;

	if (ml->count <= SCAN_FOUND_MAX)
		return;
	for (size_t i = ml->count; i-- > 0;) {
		bool seen = node_media_fetching(n, ml->roots[i]);

		for (size_t k = 0; !seen && k < n_kept; k++)
			seen = memcmp(roots[k], ml->roots[i],
				      PROTO_HASH_LEN) == 0;
		if (seen)
			continue;
		if (n_kept == SCAN_FOUND_MAX) {
			scan->dropped = true;
			break;
		}
		memcpy(roots[n_kept], ml->roots[i], PROTO_HASH_LEN);
		sizes[n_kept] = ml->sizes[i];
		n_kept++;
	}
	/* Back to oldest first. */
	for (size_t k = 0; k < n_kept; k++) {
		memcpy(ml->roots[k], roots[n_kept - 1 - k], PROTO_HASH_LEN);
		ml->sizes[k] = sizes[n_kept - 1 - k];
	}
	ml->count = n_kept;
}

/* Queues the media of the list, newest clip first, into the free slots.
 * Requests another scan when some did not fit. */
static size_t scan_queue(node *n, media_list *ml)
{
	size_t queued = 0;

	for (size_t i = ml->count; i-- > 0;) {
		if (node_media_fetching(n, ml->roots[i]))
			continue;
		if (!node_media_fetch_add(n, ml->roots[i], ml->sizes[i],
					  NULL, false, n->media_scan->retry)) {
			n->media_scan->rescan = true;
			break;
		}
		queued++;
	}
	return queued;
}

/* Sets the authors whose clips a scan walks (NULL: all). False when the
 * policy fetches no media. */
static bool scan_authors(const node *n, const uint8_t **authors,
			 size_t *n_authors)
{
	bool all = n->cfg->role == NODE_ROLE_MIRROR ||
		   n->cfg->media == NODE_MEDIA_ALL || n->interest_all;

	if (n->cfg->role != NODE_ROLE_MIRROR &&
	    n->cfg->media == NODE_MEDIA_NONE)
		return false;
	if (!all && n->n_interest == 0)
		return false;
	*authors = all ? NULL : n->interest;
	*n_authors = all ? 0 : n->n_interest;
	return true;
}

static void scan_begin(node *n)
{
	node_media_scanner *scan = n->media_scan;

	scan->next_scan = cm_mono_ms() + n->limits.sync_interval_ms;
	scan->rescan = false;
	scan->retry_due = 0;
	scan_end(scan);
	scan->running = true;
	scan->retry = scan->retry_next;
	scan->retry_next = false;
	scan->part.max = SCAN_PART_RECORDS;
	scan->found.n = n;
}

/*
 * Walks the store on for about SCAN_SLICE_MS, and queues what the scan
 * found once the walk reaches the end. Run in one go, a scan of 1,000,000
 * clips kept the node thread busy for about 3 s, so messages waited
 * that long. Between slices the node polls its sockets (node_media_busy).
 */
static void scan_step(node *n)
{
	node_media_scanner *scan = n->media_scan;
	uint64_t until = cm_mono_ms() + SCAN_SLICE_MS;
	const uint8_t *authors;
	size_t n_authors, queued;
	cm_err err = CM_OK;

	if (!scan_authors(n, &authors, &n_authors)) {
		scan_end(scan);
		return;
	}
	do {
		size_t first = scan->found.count;

		err = store_scan_part_run(n->st, authors, n_authors, &scan->part,
					  scan_record, &scan->found);
		scan->records += scan->part.visited;
		if (!err && scan->found.out_of_memory)
			err = cm_errf(CM_ERR_NOMEM, "out of memory after "
				      "%zu media found", scan->found.count);
		if (!err)
			err = keep_fetchable(n, &scan->found, first);
		if (!err)
			keep_newest(scan);
	} while (!err && !scan->part.done && cm_mono_ms() < until);
	if (err) {
		/* Scan again later rather than never. */
		cm_error(NODE_LOG, "media scan failed: %s (%s); scanning again "
			 "later", cm_err_name(err), cm_err_detail());
		scan->rescan = true;
		scan_end(scan);
		return;
	}
	if (!scan->part.done)
		return;
	queued = scan_queue(n, &scan->found);
	if (scan->dropped)
		scan->rescan = true;
	if (queued)
		cm_info(NODE_LOG, "media scan queued %zu incomplete media",
			queued);
	scan->scans_done++;
	scan->last_records = scan->records;
	scan_end(scan);
}

/*
 * Starts a requested scan once sync_interval passed since the last, and
 * walks on with a running one. The store is walked only when something
 * may have changed (a peer came, media did not fit, a backoff ended) and
 * a fetch slot is free, because a scan queues media only into free
 * slots. Before that last condition, a mirror of 1,000,000 clips whose
 * media no peer had walked its whole store every 30 s, about a tenth of
 * a core while idle.
 */
void node_media_scan_tick(node *n)
{
	node_media_scanner *scan = n->media_scan;
	uint64_t now = cm_mono_ms();

	if (!scan->running) {
		if (scan->retry_due != 0 && now >= scan->retry_due)
			scan->rescan = true;
		if (!scan->rescan || now < scan->next_scan ||
		    !node_media_slot_free(n))
			return;
		scan_begin(n);
	}
	scan_step(n);
}

void node_media_scan(node *n, bool force)
{
	if (force) {
		/* Called at start, once the node listens and dialled its
		 * peers. */
		n->media_scan->retry_after =
			cm_mono_ms() + n->limits.sync_interval_ms;
		scan_begin(n);
		scan_step(n);
		return;
	}
	/* node_media_tick starts it: each HELLO of a burst of peers would
	 * otherwise walk one more slice of a running scan. */
	n->media_scan->rescan = true;
}

bool node_media_busy(const node *n)
{
	return n->media_scan && n->media_scan->running;
}

json_t *node_media_scans_json(const node *n)
{
	const node_media_scanner *scan = n->media_scan;

	if (!scan)
		return NULL;
	return json_pack("{s:I, s:I, s:b}", "done", (json_int_t)scan->scans_done,
			 "records", (json_int_t)scan->last_records,
			 "running", scan->running);
}
