/*
 * cmd_import.c - `clipmesh import`: reads an export file, verifies every
 * record and stores the valid ones.
 *
 * Records are read in batches. Each batch is verified on every core
 * (proto_open_batch) and then stored in one write transaction by a store
 * thread, while the main thread reads and verifies the next batch, so
 * the synced commit of one batch overlaps the verification of the next.
 * Two batches alternate; a batch's buffers stay untouched until its store
 * has finished, because the records it stores point into them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cm_util.h"
#include "proto_batch.h"

/* Records verified together and stored per transaction. Larger batches
 * mean fewer synced commits; each batch costs about 40 MB here. */
#define IMPORT_BATCH 512

/* One batch of records: the bytes read, the verdicts, and the records
 * handed to the store. */
typedef struct import_batch {
	uint8_t *bufs;                  /* IMPORT_BATCH * CM_RECORD_MAX */
	const uint8_t *wires[IMPORT_BATCH];
	size_t lens[IMPORT_BATCH];
	uint64_t indexes[IMPORT_BATCH]; /* 1-based position in the file */
	size_t n_slots;
	proto_signed *opened;           /* IMPORT_BATCH */
	proto_open_result *results;     /* IMPORT_BATCH */
	proto_signed *valid;            /* IMPORT_BATCH */
	uint64_t valid_indexes[IMPORT_BATCH];
	size_t n_valid;
	cm_err stored[IMPORT_BATCH];    /* store_put_batch results */
	cm_err store_err;
	store *s;
	pthread_t thread;
	bool storing;                   /* stored, results not yet counted */
	bool threaded;                  /* stored by `thread` */
} import_batch;

typedef struct import_state {
	store *s;
	unsigned threads;
	import_batch batches[2];
	unsigned current;               /* batch being filled */
	uint8_t (*accepted)[PROTO_ID_LEN];
	size_t n_accepted, cap_accepted;
	uint64_t duplicates, rejected, index;
	uint64_t reject_counts[CM_ERR_COUNT]; /* stored once, at the end */
	bool json;
} import_state;

static void report_reject(import_state *st, uint64_t index, cm_err why,
			  const char *detail)
{
	st->rejected++;
	st->reject_counts[why]++;
	if (st->json)
		cli_json_line(json_pack("{s:I, s:s, s:s}", "record",
					(json_int_t)index, "rejected",
					cm_err_name(why), "detail", detail));
	else
		fprintf(stderr, "clipmesh: record %llu rejected: %s%s%s\n",
			(unsigned long long)index, cm_err_name(why),
			*detail ? ": " : "", detail);
}

static cm_err remember_accepted(import_state *st, const uint8_t *id)
{
	cm_err err;

	err = cm_array_reserve((void **)&st->accepted, &st->cap_accepted,
			       st->n_accepted + 1, sizeof(*st->accepted));
	if (err)
		return err;
	memcpy(st->accepted[st->n_accepted++], id, PROTO_ID_LEN);
	return CM_OK;
}

static void *store_batch(void *arg)
{
	import_batch *b = arg;

	b->store_err = store_put_batch(b->s, b->valid, b->n_valid, b->stored);
	return NULL;
}

/* Waits for the store of batch b, if any, and counts its results. */
static cm_err finish_batch(import_state *st, import_batch *b)
{
	cm_err err;

	if (!b->storing)
		return CM_OK;
	if (b->threaded)
		pthread_join(b->thread, NULL);
	b->storing = false;
	err = b->store_err;
	for (size_t i = 0; !err && i < b->n_valid; i++) {
		if (b->stored[i] == CM_OK)
			err = remember_accepted(st, b->valid[i].id);
		else if (b->stored[i] == CM_ERR_DUPLICATE)
			st->duplicates++;
		else
			report_reject(st, b->valid_indexes[i], b->stored[i],
				      cm_err_text(b->stored[i]));
	}
	return err;
}

/* Verifies the filled batch, waits for the other batch's store, and
 * starts storing this one; then the other batch is filled next. */
static cm_err flush_batch(import_state *st)
{
	import_batch *b = &st->batches[st->current];
	import_batch *other = &st->batches[st->current ^ 1];
	cm_err err;

	proto_open_batch(b->wires, b->lens, b->n_slots, cm_now_ms(),
			 st->threads, b->opened, b->results);
	b->n_valid = 0;
	for (size_t i = 0; i < b->n_slots; i++) {
		if (b->results[i].err) {
			report_reject(st, b->indexes[i], b->results[i].err,
				      b->results[i].detail);
			continue;
		}
		b->valid[b->n_valid] = b->opened[i];
		b->valid_indexes[b->n_valid++] = b->indexes[i];
	}
	b->n_slots = 0;
	/* The store applies batches in file order: this one starts only
	 * after the previous one committed. */
	if ((err = finish_batch(st, other)))
		return err;
	if (b->n_valid > 0) {
		b->s = st->s;
		b->storing = true;
		b->threaded = pthread_create(&b->thread, NULL, store_batch,
					     b) == 0;
		if (!b->threaded)
			store_batch(b);
	}
	st->current ^= 1;
	return CM_OK;
}

/* Waits for both batches' stores and counts their results. */
static cm_err finish_all(import_state *st)
{
	cm_err first = finish_batch(st, &st->batches[st->current ^ 1]);
	cm_err second = finish_batch(st, &st->batches[st->current]);

	return first ? first : second;
}

/* Reports a framing error that stops the import as a rejection of record
 * st->index, stores the records read before it, and returns err with
 * the detail set. */
static cm_err stop_import(import_state *st, cm_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static cm_err stop_import(import_state *st, cm_err err, const char *fmt, ...)
{
	char detail[160];
	va_list ap;
	cm_err flushed;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	flushed = flush_batch(st);
	if (!flushed)
		flushed = finish_all(st);
	report_reject(st, st->index, err, detail);
	if (flushed)
		return flushed;
	return cm_errf(err, "%s", detail);
}

/* Reads, verifies and stores every record of an open export file. */
static cm_err import_stream(import_state *st, FILE *f)
{
	uint8_t head[4];
	size_t got;
	cm_err err;

	while ((got = fread(head, 1, 4, f)) > 0) {
		import_batch *b = &st->batches[st->current];
		size_t len = (size_t)head[0] << 24 | (size_t)head[1] << 16 |
			     (size_t)head[2] << 8 | head[3];
		uint8_t *buf = b->bufs + b->n_slots * CM_RECORD_MAX;

		st->index++;
		if (got < 4)
			return stop_import(st, CM_ERR_TRUNCATED,
					   "the file ends inside the length of "
					   "record %llu",
					   (unsigned long long)st->index);
		if (len == 0 || len > CM_RECORD_MAX)
			return stop_import(st, len ? CM_ERR_TOO_LONG
						   : CM_ERR_TRUNCATED,
					   "record %llu claims %zu bytes, "
					   "expected 1 to %d; the file is "
					   "damaged",
					   (unsigned long long)st->index, len,
					   CM_RECORD_MAX);
		if (fread(buf, len, 1, f) != 1)
			return stop_import(st, CM_ERR_TRUNCATED,
					   "the file ends inside record %llu",
					   (unsigned long long)st->index);
		b->wires[b->n_slots] = buf;
		b->lens[b->n_slots] = len;
		b->indexes[b->n_slots] = st->index;
		if (++b->n_slots == IMPORT_BATCH && (err = flush_batch(st)))
			return err;
	}
	if (ferror(f))
		return cm_errf(CM_ERR_IO, "read error");
	err = flush_batch(st);
	return err ? err : finish_all(st);
}

/* Allocates the buffers of both batches. */
static cm_err import_alloc(import_state *st)
{
	for (int i = 0; i < 2; i++) {
		import_batch *b = &st->batches[i];

		b->bufs = malloc((size_t)IMPORT_BATCH * CM_RECORD_MAX);
		b->opened = malloc(IMPORT_BATCH * sizeof(*b->opened));
		b->results = malloc(IMPORT_BATCH * sizeof(*b->results));
		b->valid = malloc(IMPORT_BATCH * sizeof(*b->valid));
		if (!b->bufs || !b->opened || !b->results || !b->valid)
			return CM_ERR_NOMEM;
	}
	return CM_OK;
}

/* Adds the rejections of this import to the store's counters, one write
 * per reason rather than one per rejected record. */
static void count_rejections(import_state *st)
{
	char counter[64];

	for (int why = 0; why < CM_ERR_COUNT; why++) {
		if (st->reject_counts[why] == 0)
			continue;
		snprintf(counter, sizeof(counter), "rejected.%s",
			 cm_err_name((cm_err)why));
		store_counter_add(st->s, counter, st->reject_counts[why]);
	}
}

/* Joins any store thread still running, then frees everything. */
static void import_free(import_state *st)
{
	finish_all(st);
	for (int i = 0; i < 2; i++) {
		free(st->batches[i].bufs);
		free(st->batches[i].opened);
		free(st->batches[i].results);
		free(st->batches[i].valid);
	}
	free(st->accepted);
	store_close(&st->s);
}

/* Opens an export file and checks its magic; prints the error. */
static FILE *open_export(const char *path)
{
	char magic[CLI_EXPORT_MAGIC_LEN];
	bool not_regular;
	FILE *f = cli_fopen_regular(path, &not_regular);

	if (f == NULL && not_regular) {
		fprintf(stderr, "clipmesh: %s is not a regular file; give an "
				"export file made by 'clipmesh export'\n",
			path);
		return NULL;
	}
	if (f == NULL) {
		fprintf(stderr, "clipmesh: cannot open %s: %s\n", path,
			strerror(errno));
		return NULL;
	}
	if (fread(magic, sizeof(magic), 1, f) != 1 ||
	    memcmp(magic, cli_export_magic, sizeof(magic)) != 0) {
		fclose(f);
		fprintf(stderr, "clipmesh: %s is not a clipmesh export file\n"
				"make one with 'clipmesh export -o FILE'\n",
			path);
		return NULL;
	}
	return f;
}

static void print_import_counts(const import_state *st)
{
	if (st->json)
		cli_json_line(json_pack("{s:I, s:I, s:I}", "accepted",
					(json_int_t)st->n_accepted,
					"duplicate", (json_int_t)st->duplicates,
					"rejected", (json_int_t)st->rejected));
	else
		printf("accepted %zu, duplicate %llu, rejected %llu\n",
		       st->n_accepted, (unsigned long long)st->duplicates,
		       (unsigned long long)st->rejected);
}
int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
	import_state *st = NULL;
	FILE *f = NULL;
	char why[256];
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, NULL, true, "FILE",
		       "Verify every record of an export file and store the "
		       "valid ones. Prints accepted, duplicate and rejected "
		       "counts; each rejection is reported with its reason. "
		       "Exits 1 when any record was rejected.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1)
		return cli_usage_error(ctx, "expected one FILE");
	if ((rc = cli_check_paths(ctx, argv + first, 1, "FILE")) >= 0)
		return rc;
	if ((f = open_export(argv[first])) == NULL)
		return CLI_FAIL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		fclose(f);
		return cli_fail(CM_ERR_NOMEM, "cannot import", NULL);
	}
	st->json = ctx->json;
	st->threads = proto_cpu_count();
	if ((rc = cli_open_store(ctx, &st->s)) != CLI_OK)
		goto out;
	cm_err_clear();
	err = import_alloc(st);
	if (!err)
		err = import_stream(st, f);
	count_rejections(st);
	/* Notifying sets an error detail of its own when no node runs. */
	cm_strlcpy(why, cm_err_detail(), sizeof(why));
	cli_notify_node(ctx->home, (const uint8_t(*)[32])st->accepted,
			st->n_accepted);
	print_import_counts(st);
	if (err)
		rc = cli_fail(cm_errf(err, "%s", why), "import stopped", NULL);
	else
		rc = st->rejected ? CLI_FAIL : CLI_OK;
out:
	import_free(st);
	free(st);
	fclose(f);
	return rc;
}
