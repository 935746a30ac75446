/*
 * http_media.c - GET /api/v1/media/HASH: media bytes read chunk by chunk
 * from the store while they are sent, never the whole file at once, with
 * a strong ETag, If-None-Match, and single byte ranges (RFC 9110).
 *
 * Each chunk is checked against its hash before it is sent, because
 * bytes that a damaged disk changed must not reach a client under the
 * media's ETag. Hashing cut one download's rate from 2.0 to 0.6 GB/s
 * (bench/RESULTS.md), so the hashes of chunks found intact are kept for
 * the rest of the run, and a popular video is hashed once. A chunk that
 * the disk changes after that goes unnoticed until a restart or `store
 * check`.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_util.h"
#include "http_internal.h"
#include "proto_media.h"

/* What the response callback reads: bytes [start, start + length) of the
 * media, one chunk at a time. */
typedef struct media_reader {
	store *st;
	http_request *req;             /* for the byte count of the log */
	uint8_t (*chunks)[PROTO_HASH_LEN];
	size_t n_chunks;
	uint64_t size;
	uint64_t start;
	uint64_t length;
	size_t loaded;                 /* index of the chunk in buf, or
					* n_chunks when none */
	size_t loaded_len;
	uint8_t buf[CM_CHUNK_SIZE];
} media_reader;

static void reader_free(void *cls)
{
	media_reader *r = cls;

	free(r->chunks);
	free(r);
}

struct http_checked {
	pthread_mutex_t lock;
	uint8_t hashes[CM_HTTP_CHECKED_CHUNKS][PROTO_HASH_LEN];
};

cm_err http_checked_new(http_checked **out)
{
	http_checked *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating the checked chunks");
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return CM_OK;
}

void http_checked_free(http_checked **c)
{
	if (c == NULL || *c == NULL)
		return;
	pthread_mutex_destroy(&(*c)->lock);
	free(*c);
	*c = NULL;
}

/* Returns the slot of a chunk hash: its first bytes are random. */
static size_t checked_slot(const uint8_t hash[PROTO_HASH_LEN])
{
	uint32_t v;

	memcpy(&v, hash, sizeof(v));
	return v % CM_HTTP_CHECKED_CHUNKS;
}

/* True when the chunk of `hash` was found intact in this run. */
static bool checked_has(http_checked *c, const uint8_t hash[PROTO_HASH_LEN])
{
	size_t slot = checked_slot(hash);
	bool found;

	pthread_mutex_lock(&c->lock);
	found = memcmp(c->hashes[slot], hash, PROTO_HASH_LEN) == 0;
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void checked_add(http_checked *c, const uint8_t hash[PROTO_HASH_LEN])
{
	size_t slot = checked_slot(hash);

	pthread_mutex_lock(&c->lock);
	memcpy(c->hashes[slot], hash, PROTO_HASH_LEN);
	pthread_mutex_unlock(&c->lock);
}

/* Loads chunk `index` into r->buf, checking its size against the
 * manifest's total size and its bytes against the chunk hash, so that
 * bytes changed on disk never reach a client under the media's ETag. */
static cm_err load_chunk(media_reader *r, size_t index)
{
	uint64_t expected = CM_CHUNK_SIZE;
	uint8_t hash[PROTO_HASH_LEN];
	cm_err err;

	if (r->loaded == index)
		return CM_OK;
	if (index == r->n_chunks - 1)
		expected = r->size - (uint64_t)index * CM_CHUNK_SIZE;
	err = store_chunk_get_cold(r->st, r->chunks[index], r->buf,
				   sizeof(r->buf), &r->loaded_len);
	if (!err && r->loaded_len != expected)
		err = cm_errf(CM_ERR_STORE, "chunk %zu is %zu bytes, the "
			      "manifest implies %llu", index, r->loaded_len,
			      (unsigned long long)expected);
	if (!err && !checked_has(r->req->srv->checked, r->chunks[index])) {
		proto_chunk_hash(r->buf, r->loaded_len, hash);
		if (memcmp(hash, r->chunks[index], PROTO_HASH_LEN) != 0)
			err = cm_errf(CM_ERR_BAD_CHUNK, "stored chunk %zu is "
				      "corrupt; run 'clipmesh store check'",
				      index);
		else
			checked_add(r->req->srv->checked, r->chunks[index]);
	}
	r->loaded = err ? r->n_chunks : index;
	return err;
}

static ssize_t read_media(void *cls, uint64_t pos, char *buf, size_t max)
{
	media_reader *r = cls;
	uint64_t at = r->start + pos, offset, left;
	size_t index, n;
	cm_err err;

	if (pos >= r->length)
		return MHD_CONTENT_READER_END_OF_STREAM;
	index = (size_t)(at / CM_CHUNK_SIZE);
	offset = at % CM_CHUNK_SIZE;
	err = load_chunk(r, index);
	if (err) {
		/* Eviction can free media while it is being sent. */
		cm_warn(HTTP_LOG, "media read stopped at byte %llu: %s (%s)",
			(unsigned long long)at, cm_err_name(err),
			cm_err_detail());
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	left = r->length - pos;
	n = r->loaded_len - (size_t)offset;
	if (n > max)
		n = max;
	if (n > left)
		n = (size_t)left;
	memcpy(buf, r->buf + offset, n);
	r->req->bytes += n;
	return (ssize_t)n;
}

/* --- Conditional and range requests ----------------------------------- */

typedef enum range_kind {
	RANGE_NONE,          /* absent or ignored: send everything */
	RANGE_OK,            /* satisfiable: send [first, last] */
	RANGE_UNSATISFIABLE, /* 416 */
} range_kind;

/*
 * Reads a run of decimal digits. RFC 9110 sets no limit on their number,
 * so a value past UINT64_MAX is read as UINT64_MAX: still a valid number,
 * and larger than any media size.
 */
static bool parse_digits(const char **p, uint64_t *value)
{
	const char *start = *p;
	uint64_t v = 0;

	while (**p >= '0' && **p <= '9') {
		uint64_t digit = (uint64_t)(**p - '0');

		v = v > (UINT64_MAX - digit) / 10 ? UINT64_MAX
						  : v * 10 + digit;
		(*p)++;
	}
	*value = v;
	return *p != start;
}

/*
 * Parses a Range header of one byte range: "bytes=a-b", "bytes=a-" or
 * "bytes=-n", with numbers of any length. A header in another form
 * (another unit, several ranges, bad syntax, b below a) is ignored, as
 * RFC 9110 allows, and the whole media is sent. A valid range whose
 * start is at or past the end of the media gets 416.
 */
static range_kind parse_range(const char *header, uint64_t size,
			      uint64_t *first, uint64_t *last)
{
	const char *p = header;
	uint64_t a = 0, b = 0;
	bool has_a, has_b;

	/* RFC 9110 compares range units without regard to case. */
	if (strncasecmp(p, "bytes=", 6) != 0)
		return RANGE_NONE;
	p += 6;
	while (*p == ' ')
		p++;
	has_a = parse_digits(&p, &a);
	if (*p++ != '-')
		return RANGE_NONE;
	has_b = parse_digits(&p, &b);
	while (*p == ' ')
		p++;
	if (*p != '\0' || (!has_a && !has_b) || (has_a && has_b && b < a))
		return RANGE_NONE;
	if (!has_a) {
		/* Suffix: the last b bytes. */
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return RANGE_OK;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*first = a;
	*last = has_b && b < size ? b : size - 1;
	return RANGE_OK;
}

/* --- The route -------------------------------------------------------- */

static void add_cache_headers(struct MHD_Response *resp, const char *etag)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"public, max-age=31536000, immutable");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
}

/* Makes the 404 response for media the store lacks, whole or in part. */
static unsigned missing(http_request *req, const uint8_t root[PROTO_HASH_LEN],
			const char *hex, struct MHD_Response **resp)
{
	uint64_t users = 0;

	if (store_media_users(req->srv->st, root, &users) == CM_OK &&
	    users == 0)
		return http_reply_error(req, MHD_HTTP_NOT_FOUND,
					json_pack("{s:b}", "complete", 0),
					resp,
					"no clip on this mirror lists media "
					"%s", hex);
	return http_reply_error(req, MHD_HTTP_NOT_FOUND,
				json_pack("{s:b}", "complete", 0), resp,
				"media %s is not fetched yet; the mirror "
				"fetches it from its peers, try again "
				"later", hex);
}

/* Reads the manifest and the first chunk; the first chunk gives the
 * media type. */
static cm_err open_reader(http_request *req, const uint8_t root[32],
			  media_reader **out)
{
	media_reader *r = calloc(1, sizeof(*r));
	cm_err err;

	*out = NULL;
	if (r == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating a media reader");
	r->st = req->srv->st;
	r->req = req;
	err = store_manifest_get(r->st, root, &r->size, &r->chunks,
				 &r->n_chunks);
	if (err) {
		free(r);
		return err;
	}
	r->loaded = r->n_chunks;
	if (r->n_chunks > 0 && (err = load_chunk(r, 0))) {
		reader_free(r);
		return err;
	}
	*out = r;
	return CM_OK;
}

static unsigned range_not_satisfiable(http_request *req, uint64_t size,
				      struct MHD_Response **resp)
{
	char value[48];
	unsigned status;

	status = http_reply_error(req, MHD_HTTP_RANGE_NOT_SATISFIABLE, NULL,
				  resp, "the requested range is outside the "
				  "media's %llu bytes",
				  (unsigned long long)size);
	snprintf(value, sizeof(value), "bytes */%llu",
		 (unsigned long long)size);
	if (*resp)
		MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_RANGE,
					value);
	return status;
}

/* Makes the 200 or 206 response that streams r (consumed). */
static unsigned send_media(media_reader *r, const char *etag,
			   range_kind range, uint64_t first, uint64_t last,
			   struct MHD_Response **resp)
{
	const char *type = NULL;
	char value[80];

	if (r->n_chunks > 0)
		type = proto_media_sniff(r->buf, r->loaded_len);
	r->start = range == RANGE_OK ? first : 0;
	r->length = range == RANGE_OK ? last - first + 1 : r->size;
	*resp = MHD_create_response_from_callback(
		r->length, CM_HTTP_MEDIA_BLOCK, read_media, r, reader_free);
	if (*resp == NULL) {
		reader_free(r);
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				type ? type : "application/octet-stream");
	add_cache_headers(*resp, etag);
	if (range != RANGE_OK)
		return MHD_HTTP_OK;
	snprintf(value, sizeof(value), "bytes %llu-%llu/%llu",
		 (unsigned long long)first, (unsigned long long)last,
		 (unsigned long long)r->size);
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_RANGE, value);
	return MHD_HTTP_PARTIAL_CONTENT;
}

unsigned http_media(http_request *req, const char *tail,
		    struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	uint8_t root[PROTO_HASH_LEN];
	char hex[2 * PROTO_HASH_LEN + 1], etag[2 * PROTO_HASH_LEN + 3];
	const char *header;
	uint64_t first = 0, last = 0;
	range_kind range = RANGE_NONE;
	media_reader *r;
	cm_err err;

	if (strlen(tail) != 2 * PROTO_HASH_LEN ||
	    !cm_hex_decode(tail, root, PROTO_HASH_LEN))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"invalid media hash '%.70s': give the "
					"64 hex digits of a clip's media "
					"hash", tail);
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	cm_hex_encode(root, PROTO_HASH_LEN, hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	if (!store_media_complete(req->srv->st, root))
		return missing(req, root, hex, resp);

	header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					     MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (header && http_etag_matches(header, etag)) {
		*resp = MHD_create_response_from_buffer(0, NULL,
							MHD_RESPMEM_PERSISTENT);
		if (*resp)
			add_cache_headers(*resp, etag);
		return MHD_HTTP_NOT_MODIFIED;
	}

	cm_err_clear();
	err = open_reader(req, root, &r);
	if (err == CM_ERR_NOT_FOUND)
		return missing(req, root, hex, resp);
	if (err)
		return http_reply_store_error(req, err, resp);

	header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					     MHD_HTTP_HEADER_RANGE);
	/* If-Range with another validator requests the whole media. */
	if (header) {
		const char *if_range = MHD_lookup_connection_value(
			req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);

		if (!if_range || strcmp(if_range, etag) == 0)
			range = parse_range(header, r->size, &first, &last);
	}
	if (range == RANGE_UNSATISFIABLE) {
		uint64_t size = r->size;

		reader_free(r);
		return range_not_satisfiable(req, size, resp);
	}
	return send_media(r, etag, range, first, last, resp);
}
