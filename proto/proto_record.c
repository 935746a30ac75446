/*
 * proto_record.c - record validation, ids, signing and opening of signed
 * records. Body encoding and decoding are in proto_body.c, and
 * proto/PROTOCOL.md describes the format that both files implement.
 */
#include "proto_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "proto_body.h"
#include "proto_canon.h"
#include "proto_media.h"
#include "proto_product.h"

#define SIGN_PREFIX "clipmesh/1/"
/* "clipmesh/1/" + the longest type name + NUL + id. */
#define SIGN_MSG_MAX (sizeof(SIGN_PREFIX) + 7 + PROTO_ID_LEN)

const char *proto_kind_name(proto_kind kind)
{
	switch (kind) {
	case PROTO_KIND_CLIP:
		return "clip";
	case PROTO_KIND_RETRACT:
		return "retract";
	case PROTO_KIND_PROFILE:
		return "profile";
	}
	return "unknown";
}

/* ---- validation ---- */

/*
 * Checks a string field stored NUL-terminated in a buffer of cap bytes:
 * min..max bytes, valid UTF-8, no control characters. *len receives its
 * length.
 */
static cm_err check_string(const char *what, const char *s, size_t cap,
			   size_t min, size_t max, bool allow_newline,
			   size_t *len)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		return cm_errf(CM_ERR_TOO_LONG,
			       "%s has no NUL within its %zu-byte buffer", what,
			       cap);
	if (n > max)
		return cm_errf(CM_ERR_TOO_LONG, "%s is %zu bytes, max %zu",
			       what, n, max);
	if (n == 0 && min > 0)
		return cm_errf(CM_ERR_MISSING_FIELD, "%s is empty", what);
	if (n < min)
		return cm_errf(CM_ERR_BAD_FIELD, "%s is %zu byte%s, min %zu",
			       what, n, n == 1 ? "" : "s", min);
	*len = n;
	return proto_text_check(what, (const uint8_t *)s, n, allow_newline);
}

/* Optional string: "" means absent and is always valid. */
static cm_err check_optional(const char *what, const char *s, size_t cap,
			     size_t min, size_t max, bool allow_newline)
{
	size_t n;

	if (s[0] == '\0')
		return CM_OK;
	return check_string(what, s, cap, min, max, allow_newline, &n);
}

static cm_err check_lang(const char *lang)
{
	cm_err err;

	err = check_optional("lang", lang, CM_LANG_MAX + 1, 2, CM_LANG_MAX,
			     false);
	if (err || lang[0] == '\0')
		return err;

	if (!((lang[0] >= 'a' && lang[0] <= 'z') ||
	      (lang[0] >= 'A' && lang[0] <= 'Z')))
		return cm_errf(CM_ERR_BAD_FIELD,
			       "lang \"%s\" does not start with a letter",
			       lang);
	for (const char *c = lang; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') ||
			  (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '-';

		if (!ok)
			return cm_errf(CM_ERR_BAD_FIELD,
				       "lang \"%s\" has a character other than "
				       "A-Z, a-z, 0-9 and '-'",
				       lang);
	}
	return CM_OK;
}

/* Checks one tag. The error names it as `what`, e.g. "tags[2]". */
static cm_err check_tag(const char *what, const char *tag)
{
	size_t len, at = 0;
	uint32_t cp;
	cm_err err;

	err = check_string(what, tag, CM_TAG_MAX + 1, 1, CM_TAG_MAX, false,
			   &len);
	if (err == CM_ERR_MISSING_FIELD)
		return cm_errf(CM_ERR_BAD_FIELD, "%s is empty", what);
	if (err)
		return err;

	while (at < len) {
		size_t start = at;

		proto_utf8_next((const uint8_t *)tag, len, &at, &cp);
		if (proto_is_space(cp))
			return cm_errf(CM_ERR_BAD_FIELD,
				       "%s has whitespace U+%04" PRIX32
				       " at byte %zu",
				       what, cp, start);
	}
	return CM_OK;
}

cm_err proto_tag_check(const char *tag)
{
	/* check_tag expects a buffer of CM_TAG_MAX + 1 bytes. */
	if (strlen(tag) > CM_TAG_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "tag is %zu bytes, max %d",
			       strlen(tag), CM_TAG_MAX);
	return check_tag("tag", tag);
}

bool proto_key_valid(const uint8_t key[PROTO_KEY_LEN])
{
	return crypto_core_ed25519_is_valid_point(key) == 1;
}

static cm_err check_tags(const proto_record *r)
{
	char what[48];
	cm_err err;

	if (r->n_tags > CM_TAGS_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "tags has %zu items, max %d",
			       r->n_tags, CM_TAGS_MAX);

	for (size_t i = 0; i < r->n_tags; i++) {
		const char *tag = r->tags[i];

		proto_index_label(what, sizeof(what), "tags", i, "");
		if ((err = check_tag(what, tag)))
			return err;

		/* strcmp compares as unsigned char, i.e. bytewise. */
		if (i > 0 && strcmp(r->tags[i - 1], tag) >= 0)
			return cm_errf(CM_ERR_BAD_FIELD,
				       "%s \"%s\" is not after tags[%zu] "
				       "\"%s\": tags must be sorted "
				       "bytewise and unique",
				       what, tag, i - 1, r->tags[i - 1]);
	}
	return CM_OK;
}

static cm_err check_media(const proto_record *r)
{
	char what[48];
	size_t len;
	cm_err err;

	if (r->n_media == 0)
		return cm_errf(CM_ERR_MISSING_FIELD,
			       "media is empty, a clip needs 1 to %d media "
			       "references",
			       CM_MEDIA_MAX);
	if (r->n_media > CM_MEDIA_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "media has %zu items, max %d",
			       r->n_media, CM_MEDIA_MAX);

	for (size_t i = 0; i < r->n_media; i++) {
		const proto_media_ref *m = &r->media[i];

		if (m->size < 1 || m->size > CM_MEDIA_SIZE_MAX)
			return cm_errf(CM_ERR_BAD_FIELD,
				       "media[%zu].size is %" PRIu64
				       ", expected 1..%llu",
				       i, m->size, CM_MEDIA_SIZE_MAX);

		proto_index_label(what, sizeof(what), "media", i, ".type");
		err = check_string(what, m->type, CM_MEDIA_TYPE_MAX + 1, 1,
				   CM_MEDIA_TYPE_MAX, false, &len);
		if (err)
			return err;
		if (!proto_media_type_known(m->type))
			return cm_errf(CM_ERR_BAD_MEDIA_TYPE,
				       "%s \"%s\" is not a supported media "
				       "type",
				       what, m->type);
	}
	return CM_OK;
}

static cm_err check_clip(const proto_record *r)
{
	size_t len;
	cm_err err;

	err = check_string("product", r->product, CM_PRODUCT_MAX + 1, 1,
			   CM_PRODUCT_MAX, false, &len);
	if (err)
		return err;
	err = proto_product_check(r->product);
	if (err)
		return err;

	err = check_string("title", r->title, CM_TITLE_MAX + 1, 1,
			   CM_TITLE_MAX, false, &len);
	if (err)
		return err;
	err = check_optional("text", r->text, CM_TEXT_MAX + 1, 1, CM_TEXT_MAX,
			     true);
	if (err)
		return err;

	if (r->rating != 0 &&
	    (r->rating < CM_RATING_MIN || r->rating > CM_RATING_MAX))
		return cm_errf(CM_ERR_BAD_FIELD,
			       "rating is %u, expected %d..%d (or 0 for none)",
			       r->rating, CM_RATING_MIN, CM_RATING_MAX);

	err = check_lang(r->lang);
	if (err)
		return err;
	err = check_tags(r);
	if (err)
		return err;
	return check_media(r);
}

static cm_err check_profile(const proto_record *r)
{
	size_t len;
	cm_err err;

	err = check_string("name", r->name, CM_NAME_MAX + 1, 1, CM_NAME_MAX,
			   false, &len);
	if (err)
		return err;
	return check_optional("bio", r->bio, CM_BIO_MAX + 1, 1, CM_BIO_MAX,
			      true);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/*
 * Rejects fields of another kind. The encoder would silently drop them,
 * so a record carrying them would not survive an encode/decode round trip.
 */
static cm_err check_foreign_fields(const proto_record *r)
{
	const char *kind = proto_kind_name(r->kind);
	const char *field = NULL;

	if (r->kind != PROTO_KIND_CLIP) {
		if (r->product[0])
			field = "product";
		else if (r->title[0])
			field = "title";
		else if (r->text[0])
			field = "text";
		else if (r->rating)
			field = "rating";
		else if (r->lang[0])
			field = "lang";
		else if (r->n_tags)
			field = "tags";
		else if (r->n_media)
			field = "media";
	}
	if (!field && r->kind != PROTO_KIND_RETRACT &&
	    !all_zero(r->target, sizeof(r->target)))
		field = "target";
	if (!field && r->kind != PROTO_KIND_PROFILE) {
		if (r->name[0])
			field = "name";
		else if (r->bio[0])
			field = "bio";
	}

	if (field)
		return cm_errf(CM_ERR_BAD_FIELD, "%s is set on a %s record",
			       field, kind);
	return CM_OK;
}

cm_err proto_record_validate(const proto_record *r)
{
	cm_err err;

	switch (r->kind) {
	case PROTO_KIND_CLIP:
		err = check_clip(r);
		break;
	case PROTO_KIND_RETRACT:
		err = CM_OK; /* target is any 32 bytes */
		break;
	case PROTO_KIND_PROFILE:
		err = check_profile(r);
		break;
	default:
		return cm_errf(CM_ERR_BAD_KIND, "record kind %d is unknown",
			       (int)r->kind);
	}
	if (err)
		return err;
	return check_foreign_fields(r);
}

static int compare_tags(const void *a, const void *b)
{
	return strcmp(a, b);
}

void proto_record_sort_tags(proto_record *r)
{
	size_t unique = 0;

	if (r->n_tags > CM_TAGS_MAX)
		r->n_tags = CM_TAGS_MAX;
	qsort(r->tags, r->n_tags, sizeof(r->tags[0]), compare_tags);

	for (size_t i = 0; i < r->n_tags; i++) {
		if (unique > 0 &&
		    strcmp(r->tags[unique - 1], r->tags[i]) == 0)
			continue;
		if (unique != i)
			memcpy(r->tags[unique], r->tags[i],
			       sizeof(r->tags[0]));
		unique++;
	}
	for (size_t i = unique; i < r->n_tags; i++)
		memset(r->tags[i], 0, sizeof(r->tags[0]));
	r->n_tags = unique;
}

/* ---- ids and signatures ---- */

void proto_record_id(const uint8_t *body, size_t len,
		     uint8_t id[PROTO_ID_LEN])
{
	crypto_generichash(id, PROTO_ID_LEN, body, len, NULL, 0);
}

/* Builds the signed message "clipmesh/1/<type>\0" || id. */
static size_t sign_message(proto_kind kind, const uint8_t id[PROTO_ID_LEN],
			   uint8_t msg[SIGN_MSG_MAX])
{
	const char *name = proto_kind_name(kind);
	size_t prefix_len = strlen(SIGN_PREFIX);
	size_t name_len = strlen(name);

	memcpy(msg, SIGN_PREFIX, prefix_len);
	memcpy(msg + prefix_len, name, name_len + 1);
	memcpy(msg + prefix_len + name_len + 1, id, PROTO_ID_LEN);
	return prefix_len + name_len + 1 + PROTO_ID_LEN;
}

/* Checks that secret is a well-formed libsodium secret key (seed ||
 * public key) whose public key is `author`. */
static cm_err check_secret(const uint8_t secret[PROTO_SECRET_LEN],
			   const uint8_t author[PROTO_KEY_LEN])
{
	uint8_t pk[PROTO_KEY_LEN];
	uint8_t sk[PROTO_SECRET_LEN];
	bool ok;

	crypto_sign_seed_keypair(pk, sk, secret);
	sodium_memzero(sk, sizeof(sk));
	ok = memcmp(pk, secret + 32, PROTO_KEY_LEN) == 0 &&
	     memcmp(pk, author, PROTO_KEY_LEN) == 0;
	if (!ok)
		return cm_errf(CM_ERR_BAD_KEY,
			       "secret key does not belong to the record's "
			       "author");
	return CM_OK;
}

static cm_err write_envelope(const uint8_t *body, size_t body_len,
			     const uint8_t sig[PROTO_SIG_LEN], uint8_t *out,
			     size_t cap, size_t *len)
{
	struct proto_sink sink = { out, cap, 0, false };
	msgpack_packer pk;

	msgpack_packer_init(&pk, &sink, proto_sink_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_bin_with_body(&pk, body, body_len);
	msgpack_pack_bin_with_body(&pk, sig, PROTO_SIG_LEN);
	if (sink.full)
		return cm_errf(CM_ERR_USAGE,
			       "signed record does not fit in %zu bytes", cap);
	*len = sink.len;
	return CM_OK;
}

cm_err proto_record_sign(const proto_record *r,
			 const uint8_t secret[PROTO_SECRET_LEN], uint8_t *out,
			 size_t cap, size_t *len, uint8_t id[PROTO_ID_LEN])
{
	uint8_t body[CM_BODY_MAX];
	uint8_t msg[SIGN_MSG_MAX];
	uint8_t sig[PROTO_SIG_LEN];
	size_t body_len;
	size_t msg_len;
	cm_err err;

	err = proto_body_encode(r, body, sizeof(body), &body_len);
	if (err)
		return err;
	err = check_secret(secret, r->author);
	if (err)
		return err;

	proto_record_id(body, body_len, id);
	msg_len = sign_message(r->kind, id, msg);
	if (crypto_sign_detached(sig, NULL, msg, msg_len, secret) != 0)
		return cm_errf(CM_ERR_CRYPTO, "crypto_sign_detached failed");
	return write_envelope(body, body_len, sig, out, cap, len);
}

/* Splits a wire record into body and signature. */
static cm_err read_envelope(const uint8_t *wire, size_t len,
			    const uint8_t **body, size_t *body_len,
			    const uint8_t **sig)
{
	proto_reader rd;
	size_t n;
	size_t sig_len;
	cm_err err;

	if (len > CM_RECORD_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "record is %zu bytes, max %d",
			       len, CM_RECORD_MAX);

	proto_reader_init(&rd, wire, len);
	err = proto_read_array(&rd, "record", 2, &n);
	if (err)
		return err;
	if (n != 2)
		return cm_errf(CM_ERR_MISSING_FIELD,
			       "record has %zu items, expected 2 "
			       "(body, signature)",
			       n);
	err = proto_read_bin(&rd, "body", CM_BODY_MAX, body, body_len);
	if (err)
		return err;
	err = proto_read_bin(&rd, "signature", PROTO_SIG_LEN, sig, &sig_len);
	if (err)
		return err;
	if (sig_len != PROTO_SIG_LEN)
		return cm_errf(CM_ERR_BAD_SIGNATURE,
			       "signature is %zu bytes, expected %d", sig_len,
			       PROTO_SIG_LEN);
	if (proto_reader_left(&rd) > 0)
		return cm_errf(CM_ERR_TRAILING,
			       "%zu byte%s the record at byte %zu",
			       proto_reader_left(&rd),
			       proto_reader_left(&rd) == 1 ? " follows"
							   : "s follow",
			       proto_reader_offset(&rd));
	return CM_OK;
}

/*
 * Verifies the signature with libsodium's crypto_sign_verify_detached,
 * which alone decides acceptance. On failure the author key is examined
 * only to choose between CM_ERR_BAD_KEY and CM_ERR_BAD_SIGNATURE.
 */
static cm_err verify(const proto_record *r, const uint8_t id[PROTO_ID_LEN],
		     const uint8_t sig[PROTO_SIG_LEN])
{
	uint8_t msg[SIGN_MSG_MAX];
	size_t msg_len = sign_message(r->kind, id, msg);

	if (crypto_sign_verify_detached(sig, msg, msg_len, r->author) == 0)
		return CM_OK;
	if (!proto_key_valid(r->author))
		return cm_errf(CM_ERR_BAD_KEY,
			       "author key is not a valid Ed25519 public key");
	return cm_errf(CM_ERR_BAD_SIGNATURE,
		       "%s signature does not verify under the author key",
		       proto_kind_name(r->kind));
}

cm_err proto_record_open(const uint8_t *wire, size_t len, uint64_t now_ms,
			 proto_signed *out)
{
	const uint8_t *body;
	const uint8_t *sig;
	size_t body_len;
	uint64_t created;
	cm_err err;

	memset(out, 0, sizeof(*out));
	err = read_envelope(wire, len, &body, &body_len, &sig);
	if (err)
		return err;
	err = proto_body_decode(body, body_len, &out->rec);
	if (err)
		return err;

	proto_record_id(body, body_len, out->id);
	err = verify(&out->rec, out->id, sig);
	if (err)
		return err;

	/* Written as a difference so that now_ms + skew cannot overflow. */
	created = out->rec.created_ms;
	if (created > now_ms && created - now_ms > CM_FUTURE_SKEW_MS)
		return cm_errf(CM_ERR_FUTURE,
			       "created is %" PRIu64 " ms ahead of this clock, "
			       "max %d",
			       created - now_ms, CM_FUTURE_SKEW_MS);

	memcpy(out->sig, sig, PROTO_SIG_LEN);
	out->wire = wire;
	out->wire_len = len;
	return CM_OK;
}

cm_err proto_record_decode_stored(const uint8_t *wire, size_t len,
				  const uint8_t id[PROTO_ID_LEN],
				  proto_signed *out)
{
	const uint8_t *body;
	const uint8_t *sig;
	size_t body_len;
	cm_err err;

	memset(out, 0, sizeof(*out));
	err = read_envelope(wire, len, &body, &body_len, &sig);
	if (err)
		return err;
	err = proto_body_read_stored(body, body_len, &out->rec);
	if (err)
		return err;
	if (id)
		memcpy(out->id, id, PROTO_ID_LEN);
	else
		proto_record_id(body, body_len, out->id);
	memcpy(out->sig, sig, PROTO_SIG_LEN);
	out->wire = wire;
	out->wire_len = len;
	return CM_OK;
}
