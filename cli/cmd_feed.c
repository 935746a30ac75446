/* cmd_feed.c - commands that read records: feed and show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "proto_json.h"
#include "cm_util.h"
#include "node.h"
#include "proto_product.h"

enum {
	OPT_AUTHOR = 1,
	OPT_PRODUCT,
	OPT_TAG,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_LIMIT,
	OPT_CURSOR,
};

typedef struct feed_opts {
	const cli_ctx *ctx;
	uint8_t author[PROTO_KEY_LEN];
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q;
	bool has_until;       /* until_ms 0 means "no bound" to the store */
	int rc;
} feed_opts;

static int parse_time(const cli_ctx *ctx, const char *option,
		      const char *value, uint64_t *ms)
{
	if (!cm_time_parse(value, ms))
		return cli_usage_error(ctx,
				       "invalid --%s '%s': give a real "
				       "date and time in RFC 3339 UTC "
				       "(2026-12-04T15:00:00Z), a date "
				       "(2026-12-04) or milliseconds since "
				       "the epoch",
				       option, cli_value(value));
	return -1;
}

static int feed_opt(void *state, int key, const char *value)
{
	feed_opts *o = state;
	uint64_t n;

	switch (key) {
	case OPT_AUTHOR:
		if (cli_parse_key(o->ctx, value, o->author) != CLI_OK)
			return CLI_USAGE;
		o->q.author = o->author;
		return -1;
	case OPT_PRODUCT:
		o->q.product = value;
		return -1;
	case OPT_TAG:
		o->q.tag = value;
		return cli_check_tag(o->ctx, value);
	case OPT_SINCE:
		return parse_time(o->ctx, "since", value, &o->q.since_ms);
	case OPT_UNTIL:
		o->has_until = true;
		return parse_time(o->ctx, "until", value, &o->q.until_ms);
	case OPT_LIMIT:
		if (!cm_parse_u64(value, &n) || n < 1 || n > CM_FEED_LIMIT_MAX)
			return cli_usage_error(o->ctx,
					       "invalid --limit '%s': give a "
					       "number from 1 to %d",
					       cli_value(value),
					       CM_FEED_LIMIT_MAX);
		o->q.limit = (size_t)n;
		return -1;
	case OPT_CURSOR:
		if (!cm_hex_decode(value, o->cursor, STORE_CURSOR_LEN))
			return cli_usage_error(o->ctx,
					       "invalid --cursor '%s': pass the "
					       "cursor a previous page printed",
					       cli_value(value));
		o->q.cursor = o->cursor;
		return -1;
	}
	return -1;
}

/* Options shared by feed and export. */
static const cli_opt filter_opts[] = {
	{"author", "KEY", OPT_AUTHOR, "only clips by this public key", false},
	{"product", "REF", OPT_PRODUCT, "only clips about this product", false},
	{"tag", "T", OPT_TAG, "only clips with this tag", false},
	{"since", "TIME", OPT_SINCE, "only clips created at or after TIME",
	 false},
	{"until", "TIME", OPT_UNTIL, "only clips created before TIME", false},
	{"limit", "N", OPT_LIMIT, "clips per page, 1 to 1000 (default 20)",
	 false},
	{"cursor", "C", OPT_CURSOR, "continue after a previous page", false},
	{0},
};

typedef struct feed_print {
	const cli_ctx *ctx;
	store *s;
} feed_print;

/* Copies the display name of author's newest profile into name[cap], or
 * the first 8 hex chars of the key when no profile is stored; returns
 * whether a profile was found. */
static bool author_name(store *s, const uint8_t author[PROTO_KEY_LEN],
			char *name, size_t cap)
{
	bool found = false;
	proto_signed *profile = malloc(sizeof(*profile));
	uint8_t *wire = NULL;
	size_t len;
	char short_key[9];

	cm_hex_short(author, short_key);
	cm_strlcpy(name, short_key, cap);
	if (profile != NULL &&
	    store_get_profile(s, author, &wire, &len) == CM_OK &&
	    proto_record_open(wire, len, cm_now_ms(), profile) == CM_OK) {
		cm_strlcpy(name, profile->rec.name, cap);
		found = true;
	}
	free(wire);
	free(profile);
	return found;
}

static void print_clip_line(store *s, const proto_signed *rec)
{
	const proto_record *r = &rec->rec;
	char id[2 * PROTO_ID_LEN + 1], author[CM_NAME_MAX + 1], when[32];

	cm_hex_encode(rec->id, PROTO_ID_LEN, id);
	author_name(s, r->author, author, sizeof(author));
	cm_time_rfc3339(r->created_ms, when);
	printf("%.16s  %s  ", id, when);
	cli_put_text(stdout, author);
	printf("  %s  ",
	       r->rating ? (const char *[]){"", "*", "**", "***", "****",
					    "*****"}[r->rating]
			 : "-");
	cli_put_text(stdout, r->product);
	fputs("  ", stdout);
	cli_put_text(stdout, r->title);
	putchar('\n');
}

static int print_feed_item(void *ctx, const uint8_t id[PROTO_ID_LEN],
			   const uint8_t *wire, size_t len)
{
	const feed_print *out = ctx;
	proto_signed rec;

	(void)id;
	if (proto_record_open(wire, len, cm_now_ms(), &rec) != CM_OK) {
		fprintf(stderr, "clipmesh: warning: stored record fails "
				"verification; run 'clipmesh store check'\n");
		return 0;
	}
	if (out->ctx->json) {
		char name[CM_NAME_MAX + 1];
		json_t *o = proto_record_json(&rec);

		bool known = author_name(out->s, rec.rec.author, name,
					 sizeof(name));

		json_object_set_new(o, "author_name",
				    known ? json_string(name) : json_null());
		cli_json_line(o);
	} else {
		print_clip_line(out->s, &rec);
	}
	return 0;
}

int cmd_feed(cli_ctx *ctx, int argc, char **argv)
{
	feed_opts o = {.ctx = ctx};
	uint8_t next[STORE_CURSOR_LEN];
	char next_hex[2 * STORE_CURSOR_LEN + 1];
	bool more = false;
	store *s = NULL;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, filter_opts, true, "[filters]",
		       "List clips newest first, one page at a time. When "
		       "more clips follow, the cursor of the next page is "
		       "printed on stderr. " CLI_TIME_FORMS,
		       feed_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	if (o.q.product && proto_product_check(o.q.product) != CM_OK)
		return cli_usage_error(ctx, "invalid --product '%s': %s",
				       cli_value(o.q.product),
				       cm_err_detail());
	if (o.has_until && o.q.until_ms == 0)
		return CLI_OK; /* nothing is older than the epoch */
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	if (o.q.limit == 0)
		o.q.limit = (size_t)cm_config_num(ctx->config,
						  CM_SETTING_FEED_LIMIT);
	cm_err_clear();
	err = store_feed(s, &o.q, print_feed_item,
			 &(feed_print){.ctx = ctx, .s = s}, next, &more);
	store_close(&s);
	if (err)
		return cli_fail(err, "cannot read the feed", NULL);
	if (more) {
		cm_hex_encode(next, sizeof(next), next_hex);
		fprintf(stderr, "next page: --cursor %s\n", next_hex);
	}
	return CLI_OK;
}

/* Adds the chunks of media `root` present in the store to m: "chunks"
 * and "chunks_total", both null while the manifest is not here yet. */
static void add_chunk_counts(store *s, json_t *m, const uint8_t *root)
{
	uint8_t (*chunks)[PROTO_HASH_LEN] = NULL;
	bool *present = NULL;
	uint64_t size;
	size_t n = 0, count = 0;

	if (store_manifest_get(s, root, &size, &chunks, &n) != CM_OK) {
		json_object_set_new(m, "chunks", json_null());
		json_object_set_new(m, "chunks_total", json_null());
		return;
	}
	present = calloc(n ? n : 1, sizeof(*present));
	if (present &&
	    store_chunks_present(s, (const uint8_t (*)[PROTO_HASH_LEN])chunks,
				 n, present, &count) == CM_OK) {
		json_object_set_new(m, "chunks", json_integer((json_int_t)count));
		json_object_set_new(m, "chunks_total",
				    json_integer((json_int_t)n));
	}
	free(present);
	free(chunks);
}

/* Returns the running node's transfer of `hex_root` from its status, or
 * NULL when no node runs or it does not fetch that media. */
static json_t *find_transfer(json_t *status, const char *hex_root)
{
	json_t *transfers = json_object_get(status, "transfers"), *t;
	size_t i;

	json_array_foreach(transfers, i, t) {
		const char *root = json_string_value(json_object_get(t, "root"));

		if (root && strcmp(root, hex_root) == 0)
			return t;
	}
	return NULL;
}

/* Adds the running node's fetch of m: "fetching" with its rate and the
 * connected peers that have the missing chunks ("has"), lack them or
 * sent bad data. */
static void add_transfer(json_t *status, json_t *m, const uint8_t *root)
{
	char hex[2 * PROTO_HASH_LEN + 1];
	json_t *t, *sources, *p;
	size_t i;

	if (!json_is_array(json_object_get(status, "transfers")))
		return; /* a node without transfer reporting */
	cm_hex_encode(root, PROTO_HASH_LEN, hex);
	t = find_transfer(status, hex);
	if (!t) {
		json_object_set_new(m, "fetching", json_false());
		return;
	}
	json_object_set_new(m, "fetching", json_true());
	json_object_set(m, "rate", json_object_get(t, "rate"));
	sources = json_array();
	json_array_foreach(json_object_get(t, "peers"), i, p)
		if (json_is_string(json_object_get(p, "state")) &&
		    strcmp(json_string_value(json_object_get(p, "state")),
			   "has") == 0)
			json_array_append(sources, json_object_get(p, "peer"));
	json_object_set_new(m, "peers_with_rest", sources);
}

/* Adds where each media item of a clip is: complete in the store or not,
 * how many chunks are here, and which connected peers the running node
 * fetches the rest from. */
static void add_media_state(const char *home, store *s, json_t *o,
			    const proto_record *r)
{
	json_t *media = json_object_get(o, "media"), *status = NULL;
	char *status_text = NULL;

	if (node_status(home, &status_text) == CM_OK) {
		status = json_loads(status_text, 0, NULL);
		free(status_text);
	}
	for (size_t i = 0; i < r->n_media; i++) {
		json_t *m = json_array_get(media, i);
		bool complete = store_media_complete(s, r->media[i].hash);

		json_object_set_new(m, "present", json_boolean(complete));
		add_chunk_counts(s, m, r->media[i].hash);
		if (!complete && status)
			add_transfer(status, m, r->media[i].hash);
	}
	json_decref(status);
}

/* Returns whether value is an array of strings only, such as tags. */
static bool is_string_list(const json_t *value)
{
	const json_t *item;
	size_t i;

	if (!json_is_array(value))
		return false;
	json_array_foreach(value, i, item)
		if (!json_is_string(item))
			return false;
	return true;
}

/* Prints one field per line, with the continuation lines of a text or
 * bio indented under the value column. Record fields come from peers, so
 * strings are escaped and other values are JSON with every non-ASCII
 * character escaped, and no field can print a line that starts with a
 * key. */
static void print_show_text(json_t *o)
{
	const char *key;
	json_t *value, *item;
	size_t i;

	json_object_foreach(o, key, value) {
		int column = printf("%-10s ", key);
		char *text;

		if (json_is_string(value)) {
			cli_put_lines(stdout, json_string_value(value),
				      column > 0 ? column : 11);
		} else if (is_string_list(value)) {
			json_array_foreach(value, i, item) {
				fputs(i ? ", " : "", stdout);
				cli_put_text(stdout, json_string_value(item));
			}
		} else {
			text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY |
						 JSON_ENSURE_ASCII);
			fputs(text ? text : "?", stdout);
			free(text);
		}
		putchar('\n');
	}
}

int cmd_show(cli_ctx *ctx, int argc, char **argv)
{
	uint8_t id[PROTO_ID_LEN], by[PROTO_ID_LEN];
	uint8_t *wire = NULL;
	proto_signed *rec = NULL;
	store *s = NULL;
	size_t len;
	json_t *o;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, NULL, true, "ID",
		       "Show one record (an id or a prefix of at least 8 hex "
		       "characters), its verification status and whether "
		       "it was retracted.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1)
		return cli_usage_error(ctx, "expected one ID");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	/* A retracted clip is gone, so only its full id can name it. */
	if (cm_hex_decode(argv[first], id, PROTO_ID_LEN) &&
	    store_is_retracted(s, id, by)) {
		char hex[2 * PROTO_ID_LEN + 1];

		cm_hex_encode(by, PROTO_ID_LEN, hex);
		o = json_pack("{s:s, s:b, s:s}", "id", argv[first],
			      "retracted", 1, "retraction", hex);
		goto print;
	}
	if ((rc = cli_resolve_id(s, argv[first], id)) != CLI_OK)
		goto out;
	rec = malloc(sizeof(*rec));
	if (rec == NULL || (err = store_get(s, id, &wire, &len))) {
		rc = cli_fail(CM_ERR_NOMEM, "cannot read the record", NULL);
		goto out;
	}
	cm_err_clear();
	err = proto_record_open(wire, len, cm_now_ms(), rec);
	if (err) {
		fprintf(stderr, "clipmesh: stored record %s fails "
				"verification: %s\n", cli_value(argv[first]),
			cm_err_name(err));
		rc = CLI_FAIL;
		goto out;
	}
	o = proto_record_json(rec);
	json_object_set_new(o, "verified", json_true());
	json_object_set_new(o, "retracted", json_false());
	if (rec->rec.kind == PROTO_KIND_CLIP)
		add_media_state(ctx->home, s, o, &rec->rec);
print:
	if (ctx->json)
		cli_json_line(o);
	else {
		print_show_text(o);
		json_decref(o);
	}
	rc = CLI_OK;
out:
	free(wire);
	free(rec);
	store_close(&s);
	return rc;
}
