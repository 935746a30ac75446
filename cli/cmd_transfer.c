/* cmd_transfer.c - commands that move bytes out of the store: media get
 * and export (import is in cmd_import.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cli_media.h"
#include "cm_util.h"
#include "proto_media.h"

const char cli_export_magic[CLI_EXPORT_MAGIC_LEN] = "clipmesh-export\n";

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

/*
 * Creates tmp, the partial file that a rename turns into `path` once it
 * is complete, and opens it for writing into *fd. `path` must be new or a
 * regular file, because the rename would replace a device, FIFO or folder
 * with the file. The partial file is created afresh and without following
 * links, so that a link planted at its name cannot redirect the write.
 */
static cm_err output_create(const char *path, char *tmp, size_t tmp_size,
			    int *fd)
{
	struct stat st;

	*fd = -1;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return cm_errf(CM_ERR_IO, "%s is not a regular file; give the "
			       "path of a new or regular file", path);
	if ((size_t)snprintf(tmp, tmp_size, "%s.partial", path) >= tmp_size)
		return cm_errf(CM_ERR_IO, "output path of %zu bytes is too "
			       "long", strlen(path));
	if (unlink(tmp) != 0 && errno != ENOENT)
		return cm_errf(CM_ERR_IO, "cannot remove the old %s: %s", tmp,
			       strerror(errno));
	*fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   0644);
	if (*fd < 0)
		return cm_errf(CM_ERR_IO, "cannot create %s: %s", tmp,
			       strerror(errno));
	return CM_OK;
}

/* Prints the media hashes of a clip that has more than one. */
static void print_media_choice(const char *arg, const proto_record *clip)
{
	char hex[2 * PROTO_HASH_LEN + 1];

	fprintf(stderr,
		"clipmesh: clip %s has %zu media; give the hash of the one to "
		"write:\n",
		cli_value(arg), clip->n_media);
	for (size_t i = 0; i < clip->n_media; i++) {
		cm_hex_encode(clip->media[i].hash, PROTO_HASH_LEN, hex);
		fprintf(stderr, "  clipmesh media get %s -o FILE  # ", hex);
		cli_put_text(stderr, clip->media[i].type);
		fputc('\n', stderr);
	}
}

/* True when the clip lists more than one distinct media hash. */
static bool has_several_media(const proto_record *clip)
{
	for (size_t i = 1; i < clip->n_media; i++)
		if (memcmp(clip->media[i].hash, clip->media[0].hash,
			   PROTO_HASH_LEN) != 0)
			return true;
	return false;
}

/* Accepts a whole hash that names no record as media this node lacks
 * when a stored clip lists it, so that write_media reports why it is
 * missing. Prints the error for a hash that nothing in the store names. */
static int resolve_listed_media(store *s, const char *arg,
				const uint8_t root[PROTO_HASH_LEN])
{
	uint64_t users = 0;
	cm_err err;

	cm_err_clear();
	err = store_media_users(s, root, &users);
	if (err)
		return cli_fail(err, "cannot look up the media", NULL);
	if (users > 0)
		return CLI_OK;
	fprintf(stderr,
		"clipmesh: no record or media with hash '%s' in the store\n"
		"check the id with 'clipmesh feed' or the media hash with "
		"'clipmesh show ID'\n",
		cli_value(arg));
	return CLI_FAIL;
}

/*
 * Finds the media to write: a media hash, or a clip id when the clip has
 * exactly one distinct media. Returns CLI_USAGE for a malformed id or a
 * clip with several media, so that no file silently holds only one of
 * them.
 */
static int resolve_media(store *s, const char *arg, uint8_t root[32])
{
	uint8_t id[PROTO_ID_LEN], *wire = NULL;
	proto_signed *rec;
	size_t len;
	int rc;

	if (store_media_resolve(s, arg, root) == CM_OK)
		return CLI_OK;
	if (cm_hex_decode(arg, root, PROTO_HASH_LEN) &&
	    store_resolve(s, arg, id) == CM_ERR_NOT_FOUND)
		return resolve_listed_media(s, arg, root);
	if ((rc = cli_resolve_id(s, arg, id)) != CLI_OK)
		return rc;
	rec = malloc(sizeof(*rec));
	if (rec == NULL || store_get(s, id, &wire, &len) != CM_OK ||
	    proto_record_open(wire, len, cm_now_ms(), rec) != CM_OK ||
	    rec->rec.kind != PROTO_KIND_CLIP) {
		fprintf(stderr, "clipmesh: record %s is not a clip\n",
			cli_value(arg));
		rc = CLI_FAIL;
	} else if (has_several_media(&rec->rec)) {
		print_media_choice(arg, &rec->rec);
		rc = CLI_USAGE;
	} else {
		memcpy(root, rec->rec.media[0].hash, PROTO_HASH_LEN);
		rc = CLI_OK;
	}
	free(wire);
	free(rec);
	return rc;
}

/* Returns why media that is not in the store is missing, from the
 * home's media policy (the setting media). */
static const char *media_missing_reason(const cli_ctx *ctx)
{
	if (cli_media_policy(ctx->config) == NODE_MEDIA_NONE)
		return "this node's media policy is none, so its node fetches "
		       "no media; set 'media = followed' (or all) in "
		       "HOME/config or start the node with --media followed, "
		       "then wait for it to sync";
	return "this node has not fetched the media yet; a node fetches the "
	       "media of its own and followed creators ('clipmesh follow "
	       "KEY') unless it runs with --media all or as a mirror, so "
	       "follow the author if needed and wait for the node to sync";
}

/* Writes media `root` from the store to fd, checking every chunk. When
 * the store lacks its manifest, the error message is `missing`. A
 * progress bar is drawn on a terminal unless quiet. */
static cm_err write_media(store *s, const uint8_t root[32], int fd,
			  const char *missing, bool quiet)
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
		err = cm_errf(CM_ERR_MEDIA_MISSING, "%s", missing);
	if (!err)
		cli_progress_start(&progress, "writing", size);
	if (quiet)
		progress.enabled = false;
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

/* Writes media `root` to standard output, which may be a pipe, so
 * nothing else is written there and no progress bar is drawn. */
static int media_to_stdout(const cli_ctx *ctx, store *s,
			   const uint8_t root[32])
{
	cm_err err;

	cm_err_clear();
	err = write_media(s, root, STDOUT_FILENO, media_missing_reason(ctx),
			  true);
	if (err)
		return cli_fail(err, "cannot write the media", NULL);
	return CLI_OK;
}

static int media_get(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"out", "FILE", 'o',
		 "file to write (required; - for standard output)", false},
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
		       "FILE, checking every chunk against its hash. A clip "
		       "with several media is rejected with the list of "
		       "their hashes: give one of those.",
		       out_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1 || o.out == NULL)
		return cli_usage_error(ctx, "expected one ID and -o FILE");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	if ((rc = resolve_media(s, argv[first], root)) != CLI_OK)
		goto out;
	if (strcmp(o.out, "-") == 0) {
		rc = media_to_stdout(ctx, s, root);
		goto out;
	}
	cm_err_clear();
	err = output_create(o.out, tmp, sizeof(tmp), &fd);
	if (err) {
		rc = cli_fail(err, "cannot create the output file", NULL);
		goto out;
	}
	err = write_media(s, root, fd, media_missing_reason(ctx), false);
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
		if (cli_check_tag(o->ctx, value) >= 0)
			return CLI_USAGE;
		o->q.tag = value;
		break;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (!cm_time_parse(value, ms) || *ms == 0)
			return cli_usage_error(o->ctx,
					       "invalid --%s '%s': give a real "
					       "date and time in RFC 3339 UTC "
					       "(2026-12-04T15:00:00Z), a date "
					       "(2026-12-04) or milliseconds "
					       "since the epoch after 0",
					       key == OPT_SINCE ? "since"
								: "until",
					       cli_value(value));
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

/* Ends an export to standard output, which may be a pipe that cannot
 * be synced, and reports on stderr only. */
static int finish_stdout_export(export_state *st, cm_err err)
{
	if (fflush(stdout) != 0)
		st->failed = true;
	if (err || st->failed)
		return cli_fail(err ? err : CM_ERR_IO, "cannot export", NULL);
	fprintf(stderr, "exported %llu records to standard output\n",
		(unsigned long long)st->count);
	return CLI_OK;
}

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"out", "FILE", 'o',
		 "file to write (required; - for standard output)", false},
		{"author", "KEY", OPT_AUTHOR, "only records by this public key",
		 false},
		{"product", "REF", OPT_PRODUCT, "only clips about this product",
		 false},
		{"tag", "T", OPT_TAG, "only clips with this tag", false},
		{"since", "TIME", OPT_SINCE,
		 "only clips created at or after TIME", false},
		{"until", "TIME", OPT_UNTIL, "only clips created before TIME",
		 false},
		{0},
	};
	char tmp[CM_HOME_PATH_MAX + 16];
	export_opts o = {.ctx = ctx};
	export_state st = {0};
	store *s = NULL;
	bool to_stdout;
	int first, rc, fd;
	cm_err err = CM_OK;

	rc = cli_parse(ctx, argc, argv, opts, false, "[filters] -o FILE",
		       "Write signed records to FILE as their exact wire "
		       "bytes, for 'clipmesh import' elsewhere. Without "
		       "filters, or with --author alone: clips, retractions "
		       "and profiles, oldest first. With --product, --tag, "
		       "--since or --until: the matching clips, newest "
		       "first. " CLI_TIME_FORMS,
		       export_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc || o.out == NULL)
		return cli_usage_error(ctx, "expected -o FILE");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	to_stdout = strcmp(o.out, "-") == 0;
	if (to_stdout)
		st.f = stdout;
	else
		err = output_create(o.out, tmp, sizeof(tmp), &fd);
	if (!err && !to_stdout) {
		st.f = fdopen(fd, "wb");
		if (st.f == NULL) {
			err = cm_errf(CM_ERR_IO, "fdopen of %s failed: %s",
				      tmp, strerror(errno));
			close(fd);
			unlink(tmp);
		}
	}
	if (err) {
		store_close(&s);
		return cli_fail(err, "cannot create the output file", NULL);
	}
	cm_err_clear();
	fwrite(cli_export_magic, CLI_EXPORT_MAGIC_LEN, 1, st.f);
	if (o.clips_only)
		err = export_clips(s, &o, &st);
	else
		err = store_scan(s, o.q.author, o.q.author ? 1 : 0,
				 export_record, &st);
	store_close(&s);
	if (to_stdout)
		return finish_stdout_export(&st, err);
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
