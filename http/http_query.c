/*
 * http_query.c - the routes that read records: the feed with its filters
 * and cursor, one clip, the raw signed bytes of any record, and one
 * creator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "http_internal.h"
#include "proto_product.h"
#include "proto_record.h"

/* --- GET /api/v1/clips ------------------------------------------------ */

typedef struct feed_request {
	store_query q;
	uint8_t author[PROTO_KEY_LEN];
	uint8_t cursor[STORE_CURSOR_LEN];
	bool empty;              /* until=0: nothing can match */
} feed_request;

static bool parse_ms(const char *name, const char *value, uint64_t *ms,
		     char *error, size_t cap)
{
	if (cm_time_parse(value, ms))
		return true;
	snprintf(error, cap, "invalid %s '%.40s': give milliseconds since "
		 "the epoch or an RFC 3339 UTC time", name, value);
	return false;
}

/* Fills f from the query; false with a message in error[cap]. */
static bool parse_feed(const http_params *p, feed_request *f, char *error,
		       size_t cap)
{
	const char *author = http_param(p, "author");
	const char *limit = http_param(p, "limit");
	const char *cursor = http_param(p, "cursor");
	const char *since = http_param(p, "since");
	const char *until = http_param(p, "until");
	uint64_t n;

	f->q.limit = CM_FEED_LIMIT_DEFAULT;
	f->q.product = http_param(p, "product");
	f->q.tag = http_param(p, "tag");
	if (author) {
		if (strlen(author) != 2 * PROTO_KEY_LEN ||
		    !cm_hex_decode(author, f->author, PROTO_KEY_LEN)) {
			snprintf(error, cap, "invalid author '%.70s': give "
				 "the 64 hex digits of a public key", author);
			return false;
		}
		f->q.author = f->author;
	}
	if (f->q.product && proto_product_check(f->q.product) != CM_OK) {
		snprintf(error, cap, "invalid product '%.100s': %s",
			 f->q.product, cm_err_detail());
		return false;
	}
	/* A tag that no valid clip can carry matches nothing, so it is
	 * the client's mistake, as an invalid product is. */
	cm_err_clear();
	if (f->q.tag && proto_tag_check(f->q.tag) != CM_OK) {
		snprintf(error, cap, "invalid tag '%.40s': %s, so no clip has "
			 "it", f->q.tag, cm_err_detail());
		return false;
	}
	if (since && !parse_ms("since", since, &f->q.since_ms, error, cap))
		return false;
	if (until && !parse_ms("until", until, &f->q.until_ms, error, cap))
		return false;
	if (since && until && f->q.since_ms > f->q.until_ms) {
		snprintf(error, cap, "since (%llu) is after until (%llu); "
			 "swap them", (unsigned long long)f->q.since_ms,
			 (unsigned long long)f->q.until_ms);
		return false;
	}
	f->empty = until && f->q.until_ms == 0;
	if (limit) {
		if (!cm_parse_u64(limit, &n) || n < 1 ||
		    n > CM_FEED_LIMIT_MAX) {
			snprintf(error, cap, "invalid limit '%.20s': give a "
				 "number from 1 to %d", limit,
				 CM_FEED_LIMIT_MAX);
			return false;
		}
		f->q.limit = (size_t)n;
	}
	if (cursor) {
		if (strlen(cursor) != 2 * STORE_CURSOR_LEN ||
		    !cm_hex_decode(cursor, f->cursor, STORE_CURSOR_LEN)) {
			snprintf(error, cap, "invalid cursor '%.90s': pass "
				 "the next_cursor of a previous page "
				 "unchanged", cursor);
			return false;
		}
		f->q.cursor = f->cursor;
	}
	return true;
}

typedef struct feed_page {
	store *st;
	json_t *clips;
	http_names names;
	proto_signed *rec;       /* scratch */
	cm_err err;
} feed_page;

static int add_clip(void *ctx, const uint8_t id[PROTO_ID_LEN],
		    const uint8_t *wire, size_t len)
{
	feed_page *page = ctx;
	json_t *o;

	if (http_record_decode(wire, len, id, page->rec) != CM_OK) {
		/* The rest of the page can still be served. */
		cm_error(HTTP_LOG, "left a record out of a feed page: %s; run "
			 "'clipmesh store check'", cm_err_detail());
		return 0;
	}
	o = http_record_json(page->st, page->rec, &page->names);
	if (o == NULL) {
		page->err = cm_errf(CM_ERR_NOMEM, "building the clip JSON");
		return 1;
	}
	json_array_append_new(page->clips, o);
	return 0;
}

unsigned http_clips(http_request *req, const char *tail,
		    struct MHD_Response **resp)
{
	static const char *const names[] = {"author", "product", "tag",
					    "since", "until", "limit",
					    "cursor", NULL};
	http_params p = {.names = names};
	feed_request f = {0};
	feed_page page = {.st = req->srv->st};
	uint8_t next[STORE_CURSOR_LEN];
	char next_hex[2 * STORE_CURSOR_LEN + 1], error[300];
	bool more = false;
	unsigned status;
	cm_err err;

	(void)tail;
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	cm_err_clear();
	if (!parse_feed(&p, &f, error, sizeof(error)))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", error);
	page.clips = json_array();
	page.rec = malloc(sizeof(*page.rec));
	if (page.clips == NULL || page.rec == NULL) {
		err = cm_errf(CM_ERR_NOMEM, "allocating a feed page");
		goto fail;
	}
	err = f.empty ? CM_OK
		      : store_feed(req->srv->st, &f.q, add_clip, &page, next,
				   &more);
	if (!err)
		err = page.err;
	if (err)
		goto fail;
	if (more)
		cm_hex_encode(next, sizeof(next), next_hex);
	http_names_free(&page.names);
	free(page.rec);
	return http_reply_json(req, MHD_HTTP_OK,
			       json_pack("{s:o, s:s?}", "clips", page.clips,
					 "next_cursor",
					 more ? next_hex : NULL),
			       resp);
fail:
	status = http_reply_store_error(req, err, resp);
	http_names_free(&page.names);
	json_decref(page.clips);
	free(page.rec);
	return status;
}

/* --- Records by id ---------------------------------------------------- */

/* Makes the 410 response for a retracted clip and returns 410, or returns
 * 0 when `hex` names no retracted clip. */
static unsigned check_retracted(http_request *req, const char *hex,
				struct MHD_Response **resp)
{
	uint8_t id[PROTO_ID_LEN], by[PROTO_ID_LEN];
	char by_hex[2 * PROTO_ID_LEN + 1];

	/* A retracted clip is gone, so only its full id can name it. */
	if (strlen(hex) != 2 * PROTO_ID_LEN ||
	    !cm_hex_decode(hex, id, PROTO_ID_LEN) ||
	    !store_is_retracted(req->srv->st, id, by))
		return 0;
	cm_hex_encode(by, PROTO_ID_LEN, by_hex);
	return http_reply_error(req, MHD_HTTP_GONE,
				json_pack("{s:s, s:b, s:s}", "id", hex,
					  "retracted", 1, "retraction",
					  by_hex),
				resp,
				"clip %.64s was retracted by its author; the "
				"retraction is record %s", hex, by_hex);
}

/* Resolves a full id or a hex prefix to a stored record and returns 0.
 * On failure it makes the 400, 404 or 500 response and returns its
 * status. */
static unsigned resolve(http_request *req, const char *hex,
			uint8_t id[PROTO_ID_LEN], struct MHD_Response **resp)
{
	size_t len = strlen(hex);
	cm_err err;

	if (len < CM_ID_PREFIX_MIN || len > 2 * PROTO_ID_LEN ||
	    !cm_hex_valid_prefix(hex))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"invalid id '%.70s': give a record "
					"id or a prefix of %d to 64 hex "
					"digits", hex, CM_ID_PREFIX_MIN);
	cm_err_clear();
	err = store_resolve(req->srv->st, hex, id);
	if (err == CM_ERR_NOT_FOUND)
		return http_reply_error(req, MHD_HTTP_NOT_FOUND, NULL, resp,
					"no record id starts with %s on this "
					"mirror", hex);
	if (err == CM_ERR_AMBIGUOUS)
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"id prefix %s matches several "
					"records; give more digits", hex);
	if (err)
		return http_reply_store_error(req, err, resp);
	return 0;
}

/* Checks that the route's tail is one path segment. */
static bool one_segment(const char *tail)
{
	return tail[0] && strchr(tail, '/') == NULL;
}

unsigned http_clip(http_request *req, const char *tail,
		   struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	uint8_t id[PROTO_ID_LEN], *wire = NULL;
	proto_signed *rec = NULL;
	unsigned status;
	size_t len;
	json_t *o;
	cm_err err, open_err;

	if (!one_segment(tail))
		return http_reply_error(req, MHD_HTTP_NOT_FOUND, NULL, resp,
					"no route %s; a clip is "
					"/api/v1/clips/ID", req->path);
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	if ((status = check_retracted(req, tail, resp)) ||
	    (status = resolve(req, tail, id, resp)))
		return status;
	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		err = cm_errf(CM_ERR_NOMEM, "allocating a record");
		goto fail;
	}
	err = store_get(req->srv->st, id, &wire, &len);
	if (!err && (open_err = proto_record_open(wire, len, cm_now_ms(),
						   rec)) != CM_OK)
		err = cm_errf(CM_ERR_STORE, "stored record %s fails "
			      "verification: %s", tail, cm_err_name(open_err));
	if (err)
		goto fail;
	if (rec->rec.kind != PROTO_KIND_CLIP) {
		status = http_reply_error(
			req, MHD_HTTP_NOT_FOUND, NULL, resp,
			"record %s is a %s, not a clip; its signed bytes are "
			"at /api/v1/records/ID/raw", tail,
			proto_kind_name(rec->rec.kind));
		goto out;
	}
	o = http_record_json(req->srv->st, rec, NULL);
	/* Checked again above, because a damaged disk can change it. */
	json_object_set_new(o, "verified", json_true());
	json_object_set_new(o, "retracted", json_false());
	status = http_reply_json(req, MHD_HTTP_OK, o, resp);
	goto out;
fail:
	status = http_reply_store_error(req, err, resp);
out:
	free(wire);
	free(rec);
	return status;
}

unsigned http_record_raw(http_request *req, const char *tail,
			 struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	char hex[2 * PROTO_ID_LEN + 1], etag[2 * PROTO_ID_LEN + 3];
	uint8_t id[PROTO_ID_LEN], *wire = NULL;
	const char *slash = strchr(tail, '/'), *header;
	unsigned status;
	size_t len = 0, n;
	cm_err err;

	n = slash ? (size_t)(slash - tail) : 0;
	if (!slash || strcmp(slash, "/raw") != 0 || n == 0 ||
	    n >= sizeof(hex))
		return http_reply_error(req, MHD_HTTP_NOT_FOUND, NULL, resp,
					"no route %s; a record's signed "
					"bytes are /api/v1/records/ID/raw",
					req->path);
	memcpy(hex, tail, n);
	hex[n] = '\0';
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	if ((status = check_retracted(req, hex, resp)) ||
	    (status = resolve(req, hex, id, resp)))
		return status;
	cm_hex_encode(id, PROTO_ID_LEN, hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					     MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (header && http_etag_matches(header, etag)) {
		*resp = MHD_create_response_from_buffer(0, NULL,
							MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_MODIFIED;
	} else {
		err = store_get(req->srv->st, id, &wire, &len);
		if (err)
			return http_reply_store_error(req, err, resp);
		*resp = MHD_create_response_from_buffer(len, wire,
							MHD_RESPMEM_MUST_FREE);
		if (*resp == NULL)
			free(wire);
		else
			MHD_add_response_header(*resp,
						MHD_HTTP_HEADER_CONTENT_TYPE,
						"application/octet-stream");
		status = MHD_HTTP_OK;
	}
	if (*resp == NULL)
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_ETAG, etag);
	/* A record's bytes never change under its id. */
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"public, max-age=31536000, immutable");
	if (status == MHD_HTTP_OK && !req->head)
		req->bytes += len;
	return status;
}

/* --- GET /api/v1/creators/KEY ----------------------------------------- */

/* Adds name, bio and the profile's id and time to o from the author's
 * newest profile, or nulls when none is stored. */
static cm_err add_profile(store *st, const uint8_t key[PROTO_KEY_LEN],
			  json_t *o, bool *found)
{
	proto_signed *rec = malloc(sizeof(*rec));
	uint8_t *wire = NULL;
	char when[32], id_hex[2 * PROTO_ID_LEN + 1];
	size_t len;
	cm_err err;

	*found = false;
	if (rec == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating a record");
	err = store_get_profile(st, key, &wire, &len);
	if (err == CM_ERR_NOT_FOUND) {
		json_object_set_new(o, "name", json_null());
		json_object_set_new(o, "bio", json_null());
		json_object_set_new(o, "profile_created_at", json_null());
		json_object_set_new(o, "profile_id", json_null());
		err = CM_OK;
		goto out;
	}
	if (!err)
		err = http_record_decode(wire, len, NULL, rec);
	if (err)
		goto out;
	*found = true;
	cm_hex_encode(rec->id, PROTO_ID_LEN, id_hex);
	json_object_set_new(o, "profile_id", json_string(id_hex));
	cm_time_rfc3339(rec->rec.created_ms, when);
	json_object_set_new(o, "name", json_string(rec->rec.name));
	json_object_set_new(o, "bio", rec->rec.bio[0]
					      ? json_string(rec->rec.bio)
					      : json_null());
	json_object_set_new(o, "profile_created_at", json_string(when));
out:
	free(wire);
	free(rec);
	return err;
}

unsigned http_creator(http_request *req, const char *tail,
		      struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	uint8_t key[PROTO_KEY_LEN];
	char hex[2 * PROTO_KEY_LEN + 1];
	uint64_t clips = 0;
	bool has_profile;
	json_t *o;
	cm_err err;

	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	if (strlen(tail) != 2 * PROTO_KEY_LEN ||
	    !cm_hex_decode(tail, key, PROTO_KEY_LEN))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"invalid creator key '%.70s': give "
					"the 64 hex digits of a public key",
					tail);
	cm_hex_encode(key, PROTO_KEY_LEN, hex);
	o = json_pack("{s:s}", "author", hex);
	if (o == NULL)
		return http_reply_store_error(req, CM_ERR_NOMEM, resp);
	err = add_profile(req->srv->st, key, o, &has_profile);
	if (!err)
		err = store_count_clips(req->srv->st, key, &clips);
	if (err) {
		json_decref(o);
		return http_reply_store_error(req, err, resp);
	}
	if (!has_profile && clips == 0) {
		json_decref(o);
		return http_reply_error(req, MHD_HTTP_NOT_FOUND, NULL, resp,
					"this mirror has neither a profile "
					"nor a clip of creator %s", tail);
	}
	json_object_set_new(o, "clips", json_integer((json_int_t)clips));
	return http_reply_json(req, MHD_HTTP_OK, o, resp);
}
