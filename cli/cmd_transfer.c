/* cmd_transfer.c - commands that move bytes in and out of the store:
 * media get, export and import. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cli_media.h"
#include "cm_util.h"
#include "proto_batch.h"
#include "proto_media.h"

/* Export file: this 16-byte magic, then per record a 4-byte big-endian
 * length followed by the record's exact wire bytes. */
static const char export_magic[16] = "clipmesh-export\n";

/* Records verified together and stored per transaction during import.
 * 1,024 imports about a quarter faster than 256 (fewer synced commits)
 * for about 30 MB more memory (bench/run.sh, 2 cores). */
#define IMPORT_BATCH 1024

enum { OPT_OUT = 1 };

typedef struct out_opts {
	const char *out;
} out_opts;

static int out_opt(void *state, int key, const char *value)
{
	(void)key;
	((out_opts *)state)->out = value;
	return -1;
}

/* Finds the media to write: a clip id (its first media) or a media hash. */
static int resolve_media(store *s, const char *arg, uint8_t root[32])
{
	uint8_t id[PROTO_ID_LEN], *wire = NULL;
	proto_signed *rec;
	size_t len;
	int rc = CLI_FAIL;

	if (store_media_resolve(s, arg, root) == CM_OK)
		return CLI_OK;
	if (cli_resolve_id(s, arg, id) != CLI_OK)
		return CLI_FAIL;
	rec = malloc(sizeof(*rec));
	if (rec != NULL && store_get(s, id, &wire, &len) == CM_OK &&
	    proto_record_open(wire, len, cm_now_ms(), rec) == CM_OK &&
	    rec->rec.kind == PROTO_KIND_CLIP) {
		memcpy(root, rec->rec.media[0].hash, PROTO_HASH_LEN);
		rc = CLI_OK;
	} else {
		fprintf(stderr, "clipmesh: record %s is not a clip\n", arg);
	}
	free(wire);
	free(rec);
	return rc;
}

/* Writes media `root` from the store to fd, checking every chunk. */
static cm_err write_media(store *s, const uint8_t root[32], int fd)
{
	cli_progress progress = {0};
	uint8_t(*chunks)[PROTO_HASH_LEN] = NULL;
	uint8_t *buf = malloc(CM_CHUNK_SIZE);
	uint64_t size;
	size_t n = 0;
	cm_err err;

	if (buf == NULL)
		return CM_ERR_NOMEM;
	err = store_manifest_get(s, root, &size, &chunks, &n);
	if (err == CM_ERR_NOT_FOUND)
		err = cm_errf(CM_ERR_MEDIA_MISSING,
			      "this node has not fetched the media yet; wait "
			      "for its node to sync");
	if (!err)
		cli_progress_start(&progress, "writing", size);
	for (size_t i = 0; !err && i < n; i++) {
		uint8_t hash[PROTO_HASH_LEN];
		size_t len;

		err = store_chunk_get_cold(s, chunks[i], buf, CM_CHUNK_SIZE,
					   &len);
		if (err == CM_ERR_NOT_FOUND) {
			err = cm_errf(CM_ERR_MEDIA_MISSING,
				      "chunk %zu of %zu is not here yet", i + 1,
				      n);
			break;
		}
		if (err)
			break;
		proto_chunk_hash(buf, len, hash);
		if (memcmp(hash, chunks[i], sizeof(hash)) != 0)
			err = cm_errf(CM_ERR_BAD_CHUNK,
				      "stored chunk %zu is corrupt; run "
				      "'clipmesh store check'", i);
		else if (write(fd, buf, len) != (ssize_t)len)
			err = cm_errf(CM_ERR_IO, "cannot write: %s",
				      strerror(errno));
		else
			cli_progress_add(&progress, len);
	}
	if (!err)
		cli_progress_end(&progress);
	else if (progress.enabled && progress.drawn)
		fputc('\n', stderr);
	free(chunks);
	free(buf);
	return err;
}

static int media_get(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"out", "FILE", 'o', "file to write (required)"},
		{0},
	};
	char tmp[CM_HOME_PATH_MAX + 16];
	out_opts o = {0};
	uint8_t root[32];
	store *s = NULL;
	int first, rc, fd;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, opts, false, "ID -o FILE",
		       "Write the media of clip ID (or of media hash ID) to "
		       "FILE, checking every chunk against its hash.",
		       out_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1 || o.out == NULL)
		return cli_usage_error(ctx, "expected one ID and -o FILE");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	if ((rc = resolve_media(s, argv[first], root)) != CLI_OK)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.partial", o.out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = cli_fail(cm_errf(CM_ERR_IO, "%s: %s", tmp,
				      strerror(errno)),
			      "cannot create the output file", NULL);
		goto out;
	}
	cm_err_clear();
	err = write_media(s, root, fd);
	if (!err && fsync(fd) != 0)
		err = cm_errf(CM_ERR_IO, "%s: %s", tmp, strerror(errno));
	close(fd);
	if (!err && rename(tmp, o.out) != 0)
		err = cm_errf(CM_ERR_IO, "cannot rename %s: %s", tmp,
			      strerror(errno));
	if (err) {
		unlink(tmp);
		rc = cli_fail(err, "cannot write the media", NULL);
	}
out:
	store_close(&s);
	return rc;
}

int cmd_media(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"get", media_get, "write a clip's media to a file"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 1);
}

typedef struct export_state {
	FILE *f;
	uint64_t count;
	bool failed;
} export_state;

static int export_record(void *ctx, const uint8_t id[PROTO_ID_LEN],
			 const uint8_t *wire, size_t len)
{
	export_state *st = ctx;
	uint8_t head[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
			   (uint8_t)(len >> 8), (uint8_t)len};

	(void)id;
	if (fwrite(head, 4, 1, st->f) != 1 ||
	    fwrite(wire, len, 1, st->f) != 1) {
		st->failed = true;
		return 1;
	}
	st->count++;
	return 0;
}

enum { OPT_AUTHOR = 2, OPT_PRODUCT, OPT_TAG, OPT_SINCE, OPT_UNTIL };

typedef struct export_opts {
	const cli_ctx *ctx;
	const char *out;
	uint8_t author[32];
	store_query q;        /* product, tag or time: clips through the feed */
	bool clips_only;
} export_opts;

static int export_opt(void *state, int key, const char *value)
{
	export_opts *o = state;
	uint64_t *ms = key == OPT_SINCE ? &o->q.since_ms : &o->q.until_ms;

	switch (key) {
	case 'o':
		o->out = value;
		return -1;
	case OPT_AUTHOR:
		o->q.author = o->author;
		return cli_parse_key(o->ctx, value, o->author) == CLI_OK
			       ? -1
			       : CLI_USAGE;
	case OPT_PRODUCT:
		o->q.product = value;
		break;
	case OPT_TAG:
		o->q.tag = value;
		break;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (!cm_time_parse(value, ms) || *ms == 0)
			return cli_usage_error(o->ctx,
					       "invalid time '%s': give an RFC "
					       "3339 UTC time, a date or "
					       "milliseconds since the epoch",
					       value);
		break;
	}
	o->clips_only = true;
	return -1;
}

/* Writes the clips matching o->q, newest first, page by page. */
static cm_err export_clips(store *s, export_opts *o, export_state *st)
{
	uint8_t cursor[STORE_CURSOR_LEN];
	bool more = true;
	cm_err err = CM_OK;

	o->q.limit = CM_FEED_LIMIT_MAX;
	while (!err && more && !st->failed) {
		err = store_feed(s, &o->q, export_record, st, cursor, &more);
		o->q.cursor = cursor;
	}
	return err;
}

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"out", "FILE", 'o', "file to write (required)"},
		{"author", "KEY", OPT_AUTHOR, "only records by this public key"},
		{"product", "REF", OPT_PRODUCT, "only clips about this product"},
		{"tag", "T", OPT_TAG, "only clips with this tag"},
		{"since", "TIME", OPT_SINCE, "only clips created at or after TIME"},
		{"until", "TIME", OPT_UNTIL, "only clips created before TIME"},
		{0},
	};
	char tmp[CM_HOME_PATH_MAX + 16];
	export_opts o = {.ctx = ctx};
	export_state st = {0};
	store *s = NULL;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, opts, false, "[filters] -o FILE",
		       "Write signed records to FILE as their exact wire "
		       "bytes, for 'clipmesh import' elsewhere. Without "
		       "filters, or with --author alone: clips, retractions "
		       "and profiles, oldest first. With --product, --tag, "
		       "--since or --until: the matching clips, newest first.",
		       export_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc || o.out == NULL)
		return cli_usage_error(ctx, "expected -o FILE");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.partial", o.out);
	st.f = fopen(tmp, "wb");
	if (st.f == NULL) {
		store_close(&s);
		fprintf(stderr, "clipmesh: cannot create %s: %s\n", tmp,
			strerror(errno));
		return CLI_FAIL;
	}
	cm_err_clear();
	fwrite(export_magic, sizeof(export_magic), 1, st.f);
	if (o.clips_only)
		err = export_clips(s, &o, &st);
	else
		err = store_scan(s, o.q.author, o.q.author ? 1 : 0,
				 export_record, &st);
	store_close(&s);
	if (fflush(st.f) != 0 || fsync(fileno(st.f)) != 0)
		st.failed = true;
	fclose(st.f);
	if (!err && !st.failed && rename(tmp, o.out) != 0)
		st.failed = true;
	if (err || st.failed) {
		unlink(tmp);
		return cli_fail(err ? err : CM_ERR_IO, "cannot export", NULL);
	}
	fprintf(stderr, "exported %llu records to %s\n",
		(unsigned long long)st.count, o.out);
	return CLI_OK;
}

typedef struct import_state {
	store *s;
	unsigned threads;
	/* One slot per record of the batch being read. */
	uint8_t *bufs;               /* IMPORT_BATCH * CM_RECORD_MAX */
	const uint8_t *wires[IMPORT_BATCH];
	size_t lens[IMPORT_BATCH];
	uint64_t indexes[IMPORT_BATCH]; /* 1-based position in the file */
	proto_signed *opened;        /* IMPORT_BATCH, from proto_open_batch */
	proto_open_result *results;  /* IMPORT_BATCH */
	proto_signed *valid;         /* IMPORT_BATCH, passed to the store */
	uint64_t valid_indexes[IMPORT_BATCH];
	size_t n_slots;
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
	if (st->n_accepted == st->cap_accepted) {
		size_t cap = st->cap_accepted * 2 + 1024;
		void *grown = realloc(st->accepted, cap * PROTO_ID_LEN);

		if (grown == NULL)
			return CM_ERR_NOMEM;
		st->accepted = grown;
		st->cap_accepted = cap;
	}
	memcpy(st->accepted[st->n_accepted++], id, PROTO_ID_LEN);
	return CM_OK;
}

/* Verifies the records in the slots over several threads, then stores the
 * valid ones in one transaction. */
static cm_err flush_batch(import_state *st)
{
	cm_err stored[IMPORT_BATCH];
	size_t n_valid = 0;
	cm_err err;

	proto_open_batch(st->wires, st->lens, st->n_slots, cm_now_ms(),
			 st->threads, st->opened, st->results);
	for (size_t i = 0; i < st->n_slots; i++) {
		if (st->results[i].err) {
			report_reject(st, st->indexes[i], st->results[i].err,
				      st->results[i].detail);
			continue;
		}
		st->valid[n_valid] = st->opened[i];
		st->valid_indexes[n_valid++] = st->indexes[i];
	}
	st->n_slots = 0;
	if (n_valid == 0)
		return CM_OK;
	err = store_put_batch(st->s, st->valid, n_valid, stored);
	for (size_t i = 0; !err && i < n_valid; i++) {
		if (stored[i] == CM_OK)
			err = remember_accepted(st, st->valid[i].id);
		else if (stored[i] == CM_ERR_DUPLICATE)
			st->duplicates++;
		else
			report_reject(st, st->valid_indexes[i], stored[i],
				      cm_err_text(stored[i]));
	}
	return err;
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
	report_reject(st, st->index, err, detail);
	if (flushed)
		return flushed;
	return cm_errf(err, "%s", detail);
}

/* Reads, verifies and stores every record of an open export file. */
static cm_err import_stream(import_state *st, FILE *f)
{
	uint8_t head[4];
	cm_err err;

	size_t got;

	while ((got = fread(head, 1, 4, f)) > 0) {
		size_t len = (size_t)head[0] << 24 | (size_t)head[1] << 16 |
			     (size_t)head[2] << 8 | head[3];

		if (got < 4) {
			st->index++;
			return stop_import(st, CM_ERR_TRUNCATED,
					   "the file ends inside the length of "
					   "record %llu",
					   (unsigned long long)st->index);
		}
		uint8_t *buf = st->bufs + st->n_slots * CM_RECORD_MAX;

		st->index++;
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
		st->wires[st->n_slots] = buf;
		st->lens[st->n_slots] = len;
		st->indexes[st->n_slots] = st->index;
		if (++st->n_slots == IMPORT_BATCH && (err = flush_batch(st)))
			return err;
	}
	if (ferror(f))
		return cm_errf(CM_ERR_IO, "read error");
	return flush_batch(st);
}

/* Allocates the batch buffers of an import. */
static cm_err import_alloc(import_state *st)
{
	st->bufs = malloc((size_t)IMPORT_BATCH * CM_RECORD_MAX);
	st->opened = malloc(IMPORT_BATCH * sizeof(*st->opened));
	st->results = malloc(IMPORT_BATCH * sizeof(*st->results));
	st->valid = malloc(IMPORT_BATCH * sizeof(*st->valid));
	if (!st->bufs || !st->opened || !st->results || !st->valid)
		return CM_ERR_NOMEM;
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

static void import_free(import_state *st)
{
	free(st->bufs);
	free(st->opened);
	free(st->results);
	free(st->valid);
	free(st->accepted);
	store_close(&st->s);
}

/* Opens an export file and checks its magic; prints the error. */
static FILE *open_export(const char *path)
{
	char magic[sizeof(export_magic)];
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (f == NULL) {
		fprintf(stderr, "clipmesh: cannot open %s: %s\n", path,
			strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		fprintf(stderr, "clipmesh: %s is not a regular file; give an "
				"export file made by 'clipmesh export'\n",
			path);
		return NULL;
	}
	if (fread(magic, sizeof(magic), 1, f) != 1 ||
	    memcmp(magic, export_magic, sizeof(magic)) != 0) {
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
	cli_notify_node(ctx->home, (const uint8_t(*)[32])st->accepted,
			st->n_accepted);
	print_import_counts(st);
	if (err)
		rc = cli_fail(err, "import stopped", NULL);
	else
		rc = st->rejected ? CLI_FAIL : CLI_OK;
out:
	import_free(st);
	free(st);
	fclose(f);
	return rc;
}
