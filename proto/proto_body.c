/*
 * proto_body.c - canonical encoding and strict decoding of record bodies.
 * The "Body" part of proto/PROTOCOL.md describes the format. Validation,
 * ids and signatures are in proto_record.c.
 */
#include "proto_body.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "proto_canon.h"
#include "proto_record.h"

/* Body keys, one bit each. The enum order is the canonical key order. */
enum field {
	F_AUTHOR,
	F_BIO,
	F_CREATED,
	F_LANG,
	F_MEDIA,
	F_NAME,
	F_PRODUCT,
	F_RATING,
	F_TAGS,
	F_TARGET,
	F_TEXT,
	F_TITLE,
	F_TYPE,
	F_V,
	F_COUNT
};

/* Sorted bytewise, in enum field order. */
static const char *const field_keys[F_COUNT] = {
	"author", "bio",    "created", "lang",  "media", "name", "product",
	"rating", "tags",   "target",  "text",  "title", "type", "v",
};

#define BIT(f) (1u << (f))
#define COMMON_FIELDS (BIT(F_AUTHOR) | BIT(F_CREATED) | BIT(F_TYPE) | BIT(F_V))

struct kind_schema {
	unsigned allowed;
	unsigned required;
};

static struct kind_schema schema_of(proto_kind kind)
{
	struct kind_schema s = { 0, 0 };

	switch (kind) {
	case PROTO_KIND_CLIP:
		s.required = COMMON_FIELDS | BIT(F_PRODUCT) | BIT(F_TITLE) |
			     BIT(F_MEDIA);
		s.allowed = s.required | BIT(F_TEXT) | BIT(F_RATING) |
			    BIT(F_LANG) | BIT(F_TAGS);
		break;
	case PROTO_KIND_RETRACT:
		s.required = COMMON_FIELDS | BIT(F_TARGET);
		s.allowed = s.required;
		break;
	case PROTO_KIND_PROFILE:
		s.required = COMMON_FIELDS | BIT(F_NAME);
		s.allowed = s.required | BIT(F_BIO);
		break;
	}
	return s;
}

static bool kind_from_name(const uint8_t *s, size_t len, proto_kind *kind)
{
	static const proto_kind kinds[] = { PROTO_KIND_CLIP,
					    PROTO_KIND_RETRACT,
					    PROTO_KIND_PROFILE };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *name = proto_kind_name(kinds[i]);

		if (strlen(name) == len && memcmp(name, s, len) == 0) {
			*kind = kinds[i];
			return true;
		}
	}
	return false;
}

/* ---- canonical encoding ---- */

int proto_sink_write(void *data, const char *buf, size_t len)
{
	struct proto_sink *s = data;

	if (s->full || len > s->cap - s->len) {
		s->full = true;
		return -1;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/*
 * The msgpack_pack_* calls below ignore their return values because
 * proto_sink_write() records the only failure (a full buffer) in
 * proto_sink.full, which the caller checks once at the end.
 */
static void pack_key(msgpack_packer *pk, enum field f)
{
	const char *key = field_keys[f];

	msgpack_pack_str_with_body(pk, key, strlen(key));
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_media_ref(msgpack_packer *pk, const proto_media_ref *m)
{
	msgpack_pack_map(pk, 3);
	pack_str(pk, "hash");
	msgpack_pack_bin_with_body(pk, m->hash, PROTO_HASH_LEN);
	pack_str(pk, "size");
	msgpack_pack_uint64(pk, m->size);
	pack_str(pk, "type");
	pack_str(pk, m->type);
}

/* Packs the fields of r in canonical key order; `present` has one bit
 * per field to write. */
static void pack_fields(msgpack_packer *pk, const proto_record *r,
			unsigned present)
{
	for (enum field f = 0; f < F_COUNT; f++) {
		if (!(present & BIT(f)))
			continue;
		pack_key(pk, f);

		switch (f) {
		case F_AUTHOR:
			msgpack_pack_bin_with_body(pk, r->author,
						   PROTO_KEY_LEN);
			break;
		case F_BIO:
			pack_str(pk, r->bio);
			break;
		case F_CREATED:
			msgpack_pack_uint64(pk, r->created_ms);
			break;
		case F_LANG:
			pack_str(pk, r->lang);
			break;
		case F_MEDIA:
			msgpack_pack_array(pk, r->n_media);
			for (size_t i = 0; i < r->n_media; i++)
				pack_media_ref(pk, &r->media[i]);
			break;
		case F_NAME:
			pack_str(pk, r->name);
			break;
		case F_PRODUCT:
			pack_str(pk, r->product);
			break;
		case F_RATING:
			msgpack_pack_uint64(pk, r->rating);
			break;
		case F_TAGS:
			msgpack_pack_array(pk, r->n_tags);
			for (size_t i = 0; i < r->n_tags; i++)
				pack_str(pk, r->tags[i]);
			break;
		case F_TARGET:
			msgpack_pack_bin_with_body(pk, r->target,
						   PROTO_ID_LEN);
			break;
		case F_TEXT:
			pack_str(pk, r->text);
			break;
		case F_TITLE:
			pack_str(pk, r->title);
			break;
		case F_TYPE:
			pack_str(pk, proto_kind_name(r->kind));
			break;
		case F_V:
			msgpack_pack_uint64(pk, CM_RECORD_VERSION);
			break;
		case F_COUNT:
			break;
		}
	}
}

/* Returns the set of fields r carries: the required ones of its kind and
 * the optional ones that are not empty. */
static unsigned present_fields(const proto_record *r)
{
	unsigned present = schema_of(r->kind).required;

	if (r->kind == PROTO_KIND_CLIP) {
		if (r->text[0])
			present |= BIT(F_TEXT);
		if (r->rating)
			present |= BIT(F_RATING);
		if (r->lang[0])
			present |= BIT(F_LANG);
		if (r->n_tags)
			present |= BIT(F_TAGS);
	}
	if (r->kind == PROTO_KIND_PROFILE && r->bio[0])
		present |= BIT(F_BIO);
	return present;
}

static unsigned count_bits(unsigned v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* Encodes an already validated record. */
static cm_err encode_body(const proto_record *r, uint8_t *out, size_t cap,
			  size_t *len)
{
	struct proto_sink sink = { out, cap, 0, false };
	msgpack_packer pk;
	unsigned present = present_fields(r);

	msgpack_packer_init(&pk, &sink, proto_sink_write);
	msgpack_pack_map(&pk, count_bits(present));
	pack_fields(&pk, r, present);

	if (sink.full)
		return cm_errf(sink.cap >= CM_BODY_MAX ? CM_ERR_TOO_LONG
						       : CM_ERR_USAGE,
			       "body does not fit in %zu bytes (max %d)",
			       sink.cap, CM_BODY_MAX);
	if (sink.len > CM_BODY_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "body is %zu bytes, max %d",
			       sink.len, CM_BODY_MAX);
	*len = sink.len;
	return CM_OK;
}

cm_err proto_body_encode(const proto_record *r, uint8_t *out, size_t cap,
			 size_t *len)
{
	cm_err err;

	err = proto_record_validate(r);
	if (err)
		return err;
	return encode_body(r, out, cap, len);
}

/* ---- strict decoding ---- */

static int compare_keys(const uint8_t *a, size_t alen, const uint8_t *b,
			size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* Keys of one map as they are read, to check order and membership. */
struct key_cursor {
	const char *map;        /* map name for details, e.g. "body" */
	const char *const *keys; /* the known keys, sorted */
	size_t n_keys;
	const uint8_t *prev;
	size_t prev_len;
};

/*
 * Reads the next key of a map: a string strictly greater (bytewise) than
 * the previous key and one of the known keys. *index receives its index.
 */
static cm_err read_key(proto_reader *rd, struct key_cursor *kc,
		       size_t *index)
{
	char shown[PROTO_SHOWN_MAX];
	const uint8_t *key;
	size_t len;
	cm_err err;

	err = proto_read_str(rd, "map key", proto_reader_left(rd), &key,
			     &len);
	if (err)
		return err;

	if (kc->prev) {
		int c = compare_keys(kc->prev, kc->prev_len, key, len);

		if (c == 0)
			return cm_errf(CM_ERR_DUPLICATE_KEY,
				       "%s has key \"%s\" twice", kc->map,
				       proto_printable(key, len, shown));
		if (c > 0)
			return cm_errf(CM_ERR_UNSORTED_KEYS,
				       "%s key \"%s\" comes after a greater "
				       "key",
				       kc->map,
				       proto_printable(key, len, shown));
	}
	kc->prev = key;
	kc->prev_len = len;

	for (size_t i = 0; len > 0 && i < kc->n_keys; i++) {
		if (kc->keys[i][0] == (char)key[0] &&
		    strlen(kc->keys[i]) == len &&
		    memcmp(kc->keys[i], key, len) == 0) {
			*index = i;
			return CM_OK;
		}
	}
	return cm_errf(CM_ERR_UNKNOWN_KEY, "%s has unknown key \"%s\"", kc->map,
		       proto_printable(key, len, shown));
}

/* Reads a string of at most max bytes that passes the text rules and
 * copies it NUL-terminated into out (max + 1 bytes). */
static cm_err read_text(proto_reader *rd, const char *what, size_t max,
			bool optional, bool allow_newline, char *out)
{
	const uint8_t *s;
	size_t len;
	cm_err err;

	err = proto_read_str(rd, what, max, &s, &len);
	if (err)
		return err;
	if (optional && len == 0)
		return cm_errf(CM_ERR_EMPTY_OPTIONAL,
			       "%s is present but empty: omit the key instead",
			       what);
	err = proto_text_check(what, s, len, allow_newline);
	if (err)
		return err;

	memcpy(out, s, len);
	out[len] = '\0';
	return CM_OK;
}

/* Reads a bin of exactly n bytes into out. */
static cm_err read_fixed_bin(proto_reader *rd, const char *what, size_t n,
			     uint8_t *out)
{
	const uint8_t *b;
	size_t len;
	cm_err err;

	err = proto_read_bin(rd, what, n, &b, &len);
	if (err)
		return err;
	if (len != n)
		return cm_errf(CM_ERR_BAD_FIELD,
			       "%s is %zu bytes, expected %zu", what, len, n);
	memcpy(out, b, n);
	return CM_OK;
}

static cm_err read_media_ref(proto_reader *rd, size_t index,
			     proto_media_ref *m)
{
	static const char *const keys[] = { "hash", "size", "type" };
	char map[32];
	char what[48];
	struct key_cursor kc = { map, keys, 3, NULL, 0 };
	unsigned seen = 0;
	size_t n;
	cm_err err;

	proto_index_label(map, sizeof(map), "media", index, "");
	err = proto_read_map(rd, map, 3, &n);
	if (err)
		return err;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		err = read_key(rd, &kc, &k);
		if (err)
			return err;
		proto_index_label(what, sizeof(what), "media", index, ".");
		strncat(what, keys[k], sizeof(what) - strlen(what) - 1);
		if (k == 0)
			err = read_fixed_bin(rd, what, PROTO_HASH_LEN, m->hash);
		else if (k == 1)
			err = proto_read_uint(rd, what, &m->size);
		else
			err = read_text(rd, what, CM_MEDIA_TYPE_MAX, false,
					false, m->type);
		if (err)
			return err;
		seen |= 1u << k;
	}

	for (size_t k = 0; k < 3; k++)
		if (!(seen & (1u << k)))
			return cm_errf(CM_ERR_MISSING_FIELD, "%s.%s is missing",
				       map, keys[k]);
	return CM_OK;
}

static cm_err read_media(proto_reader *rd, proto_record *r)
{
	cm_err err;

	err = proto_read_array(rd, "media", CM_MEDIA_MAX, &r->n_media);
	if (err)
		return err;
	if (r->n_media == 0)
		return cm_errf(CM_ERR_MISSING_FIELD,
			       "media is empty, a clip needs 1 to %d media "
			       "references",
			       CM_MEDIA_MAX);
	for (size_t i = 0; i < r->n_media; i++) {
		err = read_media_ref(rd, i, &r->media[i]);
		if (err)
			return err;
	}
	return CM_OK;
}

static cm_err read_tags(proto_reader *rd, proto_record *r)
{
	char what[48];
	cm_err err;

	err = proto_read_array(rd, "tags", CM_TAGS_MAX, &r->n_tags);
	if (err)
		return err;
	if (r->n_tags == 0)
		return cm_errf(CM_ERR_EMPTY_OPTIONAL,
			       "tags is present but empty: omit the key "
			       "instead");
	for (size_t i = 0; i < r->n_tags; i++) {
		proto_index_label(what, sizeof(what), "tags", i, "");
		err = read_text(rd, what, CM_TAG_MAX, false, false, r->tags[i]);
		if (err)
			return err;
	}
	return CM_OK;
}

static cm_err read_small_uint(proto_reader *rd, const char *what,
			      uint64_t min, uint64_t max, cm_err code,
			      unsigned *out)
{
	uint64_t v;
	cm_err err;

	err = proto_read_uint(rd, what, &v);
	if (err)
		return err;
	if (v < min || v > max)
		return cm_errf(code, "%s is %" PRIu64 ", expected %" PRIu64
				     "..%" PRIu64,
			       what, v, min, max);
	*out = (unsigned)v;
	return CM_OK;
}

static cm_err read_type(proto_reader *rd, proto_record *r)
{
	char shown[PROTO_SHOWN_MAX];
	const uint8_t *s;
	size_t len;
	cm_err err;

	err = proto_read_str(rd, "type", proto_reader_left(rd), &s, &len);
	if (err)
		return err;
	if (!kind_from_name(s, len, &r->kind))
		return cm_errf(CM_ERR_BAD_KIND,
			       "type \"%s\" is unknown, expected clip, retract "
			       "or profile",
			       proto_printable(s, len, shown));
	return CM_OK;
}

static cm_err read_field(proto_reader *rd, enum field f, proto_record *r)
{
	unsigned version;

	switch (f) {
	case F_AUTHOR:
		return read_fixed_bin(rd, "author", PROTO_KEY_LEN, r->author);
	case F_BIO:
		return read_text(rd, "bio", CM_BIO_MAX, true, true, r->bio);
	case F_CREATED:
		return proto_read_uint(rd, "created", &r->created_ms);
	case F_LANG:
		return read_text(rd, "lang", CM_LANG_MAX, true, false, r->lang);
	case F_MEDIA:
		return read_media(rd, r);
	case F_NAME:
		return read_text(rd, "name", CM_NAME_MAX, false, false,
				 r->name);
	case F_PRODUCT:
		return read_text(rd, "product", CM_PRODUCT_MAX, false, false,
				 r->product);
	case F_RATING:
		return read_small_uint(rd, "rating", CM_RATING_MIN,
				       CM_RATING_MAX, CM_ERR_BAD_FIELD,
				       &r->rating);
	case F_TAGS:
		return read_tags(rd, r);
	case F_TARGET:
		return read_fixed_bin(rd, "target", PROTO_ID_LEN, r->target);
	case F_TEXT:
		return read_text(rd, "text", CM_TEXT_MAX, true, true, r->text);
	case F_TITLE:
		return read_text(rd, "title", CM_TITLE_MAX, false, false,
				 r->title);
	case F_TYPE:
		return read_type(rd, r);
	case F_V:
		return read_small_uint(rd, "v", CM_RECORD_VERSION,
				       CM_RECORD_VERSION, CM_ERR_BAD_VERSION,
				       &version);
	case F_COUNT:
		break;
	}
	return CM_ERR_BAD_TYPE;
}

/* Checks the keys read against the schema of the record's type. */
static cm_err check_present(const proto_record *r, unsigned seen)
{
	struct kind_schema s;

	if (!(seen & BIT(F_TYPE)))
		return cm_errf(CM_ERR_MISSING_FIELD, "type is missing");
	s = schema_of(r->kind);

	for (enum field f = 0; f < F_COUNT; f++) {
		if ((seen & BIT(f)) && !(s.allowed & BIT(f)))
			return cm_errf(CM_ERR_UNKNOWN_KEY,
				       "key \"%s\" is not a field of a %s",
				       field_keys[f], proto_kind_name(r->kind));
	}
	for (enum field f = 0; f < F_COUNT; f++) {
		if ((s.required & BIT(f)) && !(seen & BIT(f)))
			return cm_errf(CM_ERR_MISSING_FIELD, "%s is missing",
				       field_keys[f]);
	}
	return CM_OK;
}

/* Reads the body map into r; no semantic checks beyond the types. */
static cm_err read_body(const uint8_t *body, size_t len, proto_record *r)
{
	struct key_cursor kc = { "body", field_keys, F_COUNT, NULL, 0 };
	proto_reader rd;
	unsigned seen = 0;
	size_t n;
	cm_err err;

	proto_reader_init(&rd, body, len);
	err = proto_read_map(&rd, "body", F_COUNT, &n);
	if (err)
		return err;

	for (size_t i = 0; i < n; i++) {
		size_t f;

		err = read_key(&rd, &kc, &f);
		if (err)
			return err;
		err = read_field(&rd, (enum field)f, r);
		if (err)
			return err;
		seen |= BIT(f);
	}

	if (proto_reader_left(&rd) > 0)
		return cm_errf(CM_ERR_TRAILING,
			       "%zu byte%s the body map at byte %zu",
			       proto_reader_left(&rd),
			       proto_reader_left(&rd) == 1 ? " follows"
							   : "s follow",
			       proto_reader_offset(&rd));
	return check_present(r, seen);
}

cm_err proto_body_read_stored(const uint8_t *body, size_t len,
			      proto_record *r)
{
	memset(r, 0, sizeof(*r));
	if (len > CM_BODY_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "body is %zu bytes, max %d",
			       len, CM_BODY_MAX);
	return read_body(body, len, r);
}

cm_err proto_body_decode(const uint8_t *body, size_t len, proto_record *r)
{
	uint8_t again[CM_BODY_MAX];
	size_t again_len;
	cm_err err;

	memset(r, 0, sizeof(*r));
	if (len > CM_BODY_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "body is %zu bytes, max %d",
			       len, CM_BODY_MAX);

	err = read_body(body, len, r);
	if (err)
		return err;
	err = proto_record_validate(r);
	if (err)
		return err;

	/* Second line of defence: the reader should already have rejected
	 * every other encoding, so a difference here is a bug in it. */
	err = encode_body(r, again, sizeof(again), &again_len);
	if (err)
		return err;
	if (again_len != len || memcmp(again, body, len) != 0)
		return cm_errf(CM_ERR_NONCANONICAL,
			       "body of %zu bytes differs from its %zu-byte "
			       "canonical encoding",
			       len, again_len);
	return CM_OK;
}
