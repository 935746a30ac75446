/*
 * gen_vectors.c - prints the "## Test vectors" section of proto/PROTOCOL.md,
 * from its heading to the end of the file, computed by the reference
 * implementation in proto/. With --wire it prints the table of wire
 * message vectors instead (gen_vectors_wire.c).
 *
 * The output must equal that section or table byte for byte;
 * tools/check_vectors.sh compares both. To check the records from the
 * repository root with a build in build/:
 *
 *   build/tools/gen_vectors |
 *     diff - <(sed -n '/^## Test vectors$/,$p' proto/PROTOCOL.md)
 *
 * After a deliberate format change, replace the section with the output.
 * tools/check_protocol.py re-derives the same vectors without this code.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "gen_vectors.h"
#include "proto_media.h"
#include "proto_record.h"

/* Byte i of the patterned media file is i % PATTERN_MOD. */
#define PATTERN_MOD 251
#define PATTERN_LEN (2 * CM_CHUNK_SIZE + 1)

/* Hex blocks are wrapped at this many characters. */
#define HEX_WIDTH 64

/* Width of the byte column in the annotated retraction body. */
#define NOTE_COLUMN 38

#define CLIP_CREATED_MS 1796399220000ULL
#define RETRACT_CREATED_MS 1796400300000ULL
#define PROFILE_CREATED_MS 1796398200000ULL

/* One signed record and the parts of it that the document shows. */
struct vector {
	uint8_t body[CM_BODY_MAX];
	size_t body_len;
	uint8_t wire[CM_RECORD_MAX];
	size_t wire_len;
	uint8_t id[PROTO_ID_LEN];
	uint8_t sig[PROTO_SIG_LEN];
};

/* One line of the annotated body: `head` header bytes, then `payload`
 * bytes, then the label. */
struct annotation {
	size_t head;
	size_t payload;
	const char *label;
};

static void print_hex_lines(const uint8_t *bin, size_t len)
{
	static char hex[2 * CM_RECORD_MAX + 1];
	size_t hex_len = 2 * len;

	cm_hex_encode(bin, len, hex);
	for (size_t at = 0; at < hex_len; at += HEX_WIDTH)
		printf("%.*s\n", HEX_WIDTH, hex + at);
}

static void print_hex_block(const uint8_t *bin, size_t len)
{
	printf("```\n");
	print_hex_lines(bin, len);
	printf("```\n");
}

static void print_hex_inline(const uint8_t *bin, size_t len)
{
	char hex[2 * PROTO_HASH_LEN + 1];

	cm_hex_encode(bin, len, hex);
	printf("%s", hex);
}

/* Appends "aa bb cc" (len bytes, space-separated) to out[cap]. */
static void append_spaced(char *out, size_t cap, const uint8_t *bin,
			  size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t used = strlen(out);

		snprintf(out + used, cap - used, "%s%02x", i ? " " : "",
			 bin[i]);
	}
}

/* Fills the patterned media file of PATTERN_LEN bytes. */
static void make_pattern(uint8_t *data)
{
	for (size_t i = 0; i < PATTERN_LEN; i++)
		data[i] = (uint8_t)(i % PATTERN_MOD);
}

static cm_err media_root_of(const uint8_t *data, size_t len,
			    uint8_t root[PROTO_HASH_LEN])
{
	size_t n = (size_t)proto_media_chunk_count(len);
	uint8_t (*chunks)[PROTO_HASH_LEN];

	chunks = calloc(n ? n : 1, PROTO_HASH_LEN);
	if (!chunks)
		return cm_errf(CM_ERR_NOMEM, "%zu chunk hashes", n);

	for (size_t i = 0; i < n; i++) {
		size_t offset = i * CM_CHUNK_SIZE;
		size_t chunk_len = len - offset;

		if (chunk_len > CM_CHUNK_SIZE)
			chunk_len = CM_CHUNK_SIZE;
		proto_chunk_hash(data + offset, chunk_len, chunks[i]);
	}
	proto_media_root((const uint8_t (*)[PROTO_HASH_LEN])chunks, n, len,
			 root);
	free(chunks);
	return CM_OK;
}

static cm_err print_media_row(const char *what, const uint8_t *data,
			      size_t len)
{
	uint8_t root[PROTO_HASH_LEN];
	cm_err err;

	err = media_root_of(data, len, root);
	if (err)
		return err;
	printf("| %s | %zu | %" PRIu64 " | `", what, len,
	       proto_media_chunk_count(len));
	print_hex_inline(root, sizeof(root));
	printf("` |\n");
	return CM_OK;
}

static void print_chunk(const char *what, const uint8_t *data, size_t len)
{
	uint8_t hash[PROTO_HASH_LEN];

	proto_chunk_hash(data, len, hash);
	printf("%s\n", what);
	print_hex_lines(hash, sizeof(hash));
}

static cm_err print_media(const uint8_t *pattern)
{
	char what[64];
	cm_err err;

	printf("### Media\n\n");
	printf("\"Patterned file of N bytes\" means the file whose byte i is "
	       "`i mod %d`\n", PATTERN_MOD);
	printf("(so it starts `00 01 02 ... %02x 00 01`).\n\n",
	       PATTERN_MOD - 1);
	printf("| file | size | chunks | root hash |\n");
	printf("|---|---|---|---|\n");

	err = print_media_row("empty", pattern, 0);
	if (!err)
		err = print_media_row("the ASCII bytes `abc`",
				      (const uint8_t *)"abc", 3);
	if (!err)
		err = print_media_row("patterned, exactly 2 chunks", pattern,
				      2 * CM_CHUNK_SIZE);
	if (!err)
		err = print_media_row("patterned, 2 chunks + 1 byte", pattern,
				      PATTERN_LEN);
	if (err)
		return err;

	printf("\nChunk hashes of the patterned files (chunks 0 and 1 are "
	       "the same in both):\n\n```\n");
	snprintf(what, sizeof(what), "chunk 0 (bytes 0..%d)",
		 CM_CHUNK_SIZE - 1);
	print_chunk(what, pattern, CM_CHUNK_SIZE);
	snprintf(what, sizeof(what), "chunk 1 (bytes %d..%d)", CM_CHUNK_SIZE,
		 2 * CM_CHUNK_SIZE - 1);
	print_chunk(what, pattern + CM_CHUNK_SIZE, CM_CHUNK_SIZE);
	snprintf(what, sizeof(what),
		 "chunk 2 of the %d-byte file (the single byte 0x%02x)",
		 PATTERN_LEN, pattern[2 * CM_CHUNK_SIZE]);
	print_chunk(what, pattern + 2 * CM_CHUNK_SIZE, 1);
	printf("```\n\n");
	return CM_OK;
}

/*
 * Encodes, signs and reopens r, so that every printed vector has passed
 * the same checks as a record received from a peer.
 */
static cm_err sign_vector(const proto_record *r,
			  const uint8_t secret[PROTO_SECRET_LEN],
			  struct vector *v)
{
	proto_signed opened;
	cm_err err;

	err = proto_body_encode(r, v->body, sizeof(v->body), &v->body_len);
	if (err)
		return err;
	err = proto_record_sign(r, secret, v->wire, sizeof(v->wire),
				&v->wire_len, v->id);
	if (err)
		return err;
	err = proto_record_open(v->wire, v->wire_len, r->created_ms, &opened);
	if (err)
		return err;
	memcpy(v->sig, opened.sig, PROTO_SIG_LEN);
	return CM_OK;
}

/*
 * Prints body, id, signature and wire form. With describe_envelope, the
 * wire heading also spells out the bytes that frame the body.
 */
static void print_vector(const struct vector *v, bool describe_envelope)
{
	char head[32] = "";

	printf("Body (%zu bytes):\n\n", v->body_len);
	print_hex_block(v->body, v->body_len);
	printf("\nId:\n\n");
	print_hex_block(v->id, sizeof(v->id));
	printf("\nSignature:\n\n");
	print_hex_block(v->sig, sizeof(v->sig));

	printf("\nWire (%zu bytes)", v->wire_len);
	if (describe_envelope) {
		/* The wire form is array header, bin header, body, then the
		 * 2-byte bin header and the signature. */
		size_t head_len = v->wire_len - v->body_len - 2 -
				  PROTO_SIG_LEN;

		append_spaced(head, sizeof(head), v->wire, head_len);
		printf(" is `%s`, the body, `c4 40`, the signature", head);
	}
	printf(":\n\n");
	print_hex_block(v->wire, v->wire_len);
}

static cm_err build_clip(proto_record *r, const uint8_t *author,
			 const uint8_t *pattern)
{
	cm_err err;

	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, author, PROTO_KEY_LEN);
	r->created_ms = CLIP_CREATED_MS;
	cm_strlcpy(r->product, "gtin:2000000001012", sizeof(r->product));
	cm_strlcpy(r->title, "Countertop blender, first week",
		   sizeof(r->title));
	cm_strlcpy(r->text,
		   "Crushed ice in ten seconds \xe2\x80\x94 quieter than my "
		   "old one.\nThe lid is a bit stiff.",
		   sizeof(r->text));
	r->rating = 4;
	cm_strlcpy(r->lang, "en", sizeof(r->lang));
	cm_strlcpy(r->tags[0], "blender", sizeof(r->tags[0]));
	cm_strlcpy(r->tags[1], "kitchen", sizeof(r->tags[1]));
	r->n_tags = 2;

	err = media_root_of(pattern, 2 * CM_CHUNK_SIZE, r->media[0].hash);
	if (err)
		return err;
	r->media[0].size = 2 * CM_CHUNK_SIZE;
	cm_strlcpy(r->media[0].type, "video/mp4", sizeof(r->media[0].type));

	err = media_root_of((const uint8_t *)"abc", 3, r->media[1].hash);
	if (err)
		return err;
	r->media[1].size = 3;
	cm_strlcpy(r->media[1].type, "image/jpeg", sizeof(r->media[1].type));
	r->n_media = 2;
	return CM_OK;
}

/* Prints "1796399220000 (2026-12-04T15:47:00.000Z)". */
static void print_time(uint64_t ms)
{
	char rfc3339[32];

	cm_time_rfc3339(ms, rfc3339);
	printf("%" PRIu64 " (%s)", ms, rfc3339);
}

/* Prints a text with one line feed as "`line 1` line feed `line 2`". */
static void print_two_lines(const char *text)
{
	const char *feed = strchr(text, '\n');

	if (!feed) {
		printf("`%s`", text);
		return;
	}
	printf("`%.*s` line feed `%s`", (int)(feed - text), text, feed + 1);
}

static void print_clip_table(const proto_record *r)
{
	printf("| field | value |\n|---|---|\n");
	printf("| author | the public key above |\n");
	printf("| created | ");
	print_time(r->created_ms);
	printf(" |\n");
	printf("| lang | `%s` |\n", r->lang);
	printf("| media[0] | hash of the 2-chunk patterned file, size %" PRIu64
	       ", `%s` |\n", r->media[0].size, r->media[0].type);
	printf("| media[1] | hash of `abc`, size %" PRIu64 ", `%s` |\n",
	       r->media[1].size, r->media[1].type);
	printf("| product | `%s` |\n", r->product);
	printf("| rating | %u |\n", r->rating);
	printf("| tags | `%s`, `%s` |\n", r->tags[0], r->tags[1]);
	printf("| text | ");
	print_two_lines(r->text);
	printf(" (the dash is U+2014, `e2 80 94`) |\n");
	printf("| title | `%s` |\n\n", r->title);
}

/* Appends the hex of bin[len], shortened to "aabbccdd...eeff0011" when it
 * is longer than 8 bytes. */
static void append_payload(char *out, size_t cap, const uint8_t *bin,
			   size_t len)
{
	char first[9], last[9];
	char hex[2 * 8 + 1];
	size_t used = strlen(out);

	if (len <= 8) {
		cm_hex_encode(bin, len, hex);
		snprintf(out + used, cap - used, " %s", hex);
		return;
	}
	cm_hex_encode(bin, 4, first);
	cm_hex_encode(bin + len - 4, 4, last);
	snprintf(out + used, cap - used, " %s...%s", first, last);
}

/* Prints the retraction body one msgpack item a line, each with its
 * meaning. Fails when the annotations do not cover the body exactly. */
static cm_err print_retract_notes(const struct vector *v, uint64_t created)
{
	char created_note[48];
	size_t at = 0;
	const struct annotation notes[] = {
		{ 1, 0, "fixmap, 5 entries" },
		{ 1, 6, "\"author\"" },
		{ 2, 32, "bin 8 of 32: the public key" },
		{ 1, 7, "\"created\"" },
		{ 1, 8, created_note },
		{ 1, 6, "\"target\"" },
		{ 2, 32, "bin 8 of 32: the clip id" },
		{ 1, 4, "\"type\"" },
		{ 1, 7, "\"retract\"" },
		{ 1, 1, "\"v\"" },
		{ 1, 0, "1" },
	};

	snprintf(created_note, sizeof(created_note), "uint 64: %" PRIu64,
		 created);
	printf("```\n");
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
		const struct annotation *note = &notes[i];
		char bytes[NOTE_COLUMN + 1] = "";

		if (note->head + note->payload > v->body_len - at)
			return cm_errf(CM_ERR_TRUNCATED,
				       "retraction body ends inside note %zu",
				       i);
		append_spaced(bytes, sizeof(bytes), v->body + at, note->head);
		at += note->head;
		if (note->payload)
			append_payload(bytes, sizeof(bytes), v->body + at,
				       note->payload);
		at += note->payload;
		printf("%-*s%s\n", NOTE_COLUMN, bytes, note->label);
	}
	printf("```\n\n");

	if (at != v->body_len)
		return cm_errf(CM_ERR_TRAILING,
			       "retraction notes cover %zu of %zu body bytes",
			       at, v->body_len);
	return CM_OK;
}

static void print_profile_table(const proto_record *r)
{
	printf("| field | value |\n|---|---|\n");
	printf("| created | ");
	print_time(r->created_ms);
	printf(" |\n");
	printf("| name | `%s` |\n", r->name);
	printf("| bio | ");
	print_two_lines(r->bio);
	printf(" |\n\n");
}

static void print_intro(const uint8_t seed[32], const uint8_t *public_key)
{
	printf("## Test vectors\n\n");
	printf("All records are signed with the Ed25519 key pair that "
	       "libsodium's\n");
	printf("`crypto_sign_seed_keypair` derives from the 32-byte seed\n`");
	print_hex_inline(seed, 32);
	printf("`\n(bytes 0x%02x to 0x%02x). Its public key:\n\n", seed[0],
	       seed[31]);
	print_hex_block(public_key, PROTO_KEY_LEN);
	printf("\nLong hex values are wrapped at %d characters; join the "
	       "lines.\n\n", HEX_WIDTH);
}

static cm_err print_records(const uint8_t *public_key,
			    const uint8_t *secret, const uint8_t *pattern)
{
	static struct vector v;
	uint8_t clip_id[PROTO_ID_LEN];
	proto_record r;
	cm_err err;

	err = build_clip(&r, public_key, pattern);
	if (!err)
		err = sign_vector(&r, secret, &v);
	if (err)
		return err;
	memcpy(clip_id, v.id, PROTO_ID_LEN);
	printf("### Clip\n\n");
	print_clip_table(&r);
	print_vector(&v, true);

	memset(&r, 0, sizeof(r));
	r.kind = PROTO_KIND_RETRACT;
	memcpy(r.author, public_key, PROTO_KEY_LEN);
	r.created_ms = RETRACT_CREATED_MS;
	memcpy(r.target, clip_id, PROTO_ID_LEN);
	err = sign_vector(&r, secret, &v);
	if (err)
		return err;
	printf("\n### Retraction\n\nRetracts the clip above: created ");
	print_time(r.created_ms);
	printf(",\ntarget the clip's id. The body, annotated:\n\n");
	err = print_retract_notes(&v, r.created_ms);
	if (err)
		return err;
	print_vector(&v, false);

	memset(&r, 0, sizeof(r));
	r.kind = PROTO_KIND_PROFILE;
	memcpy(r.author, public_key, PROTO_KEY_LEN);
	r.created_ms = PROFILE_CREATED_MS;
	cm_strlcpy(r.name, "Ada Reviews", sizeof(r.name));
	cm_strlcpy(r.bio, "Kitchen gadgets, unboxed.\nHonest takes, no "
		   "sponsors.", sizeof(r.bio));
	err = sign_vector(&r, secret, &v);
	if (err)
		return err;
	printf("\n### Profile\n\n");
	print_profile_table(&r);
	print_vector(&v, false);
	return CM_OK;
}

int main(int argc, char **argv)
{
	static uint8_t pattern[PATTERN_LEN];
	uint8_t seed[32];
	uint8_t public_key[PROTO_KEY_LEN];
	uint8_t secret[PROTO_SECRET_LEN];
	cm_err err;

	if (argc == 2 && strcmp(argv[1], "--wire") == 0) {
		err = gen_print_wire_vectors();
		if (err)
			fprintf(stderr, "gen_vectors: %s: %s\n",
				cm_err_text(err), cm_err_detail());
		return err ? 1 : 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: gen_vectors [--wire]\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "gen_vectors: sodium_init failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(i + 1);
	crypto_sign_seed_keypair(public_key, secret, seed);
	make_pattern(pattern);

	print_intro(seed, public_key);
	err = print_media(pattern);
	if (!err)
		err = print_records(public_key, secret, pattern);
	sodium_memzero(secret, sizeof(secret));
	if (err) {
		fprintf(stderr, "gen_vectors: %s: %s\n", cm_err_text(err),
			cm_err_detail());
		return 1;
	}
	return 0;
}
