/*
 * test_media.c - chunk counts, root hashes, manifest checks and media type
 * detection. The root vectors are the ones in proto/PROTOCOL.md.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "proto_media.h"

/* Root hashes from proto/PROTOCOL.md. Byte i of the patterned files is
 * i mod 251. */
#define ROOT_EMPTY \
	"5c9a400ceb9ccc3d327a400d424738b00a89f5bfb782f7c38d0112d9022f1fd4"
#define ROOT_ABC \
	"375ff96fd6ecad7c67157a4345980a976af7070a27c6877441f1a0811eed755f"
#define ROOT_TWO_CHUNKS \
	"866cd2b3d17ba0288692ac14f76c27c4215e6793d1a14a610930e47b3138f09d"
#define ROOT_TWO_CHUNKS_PLUS_ONE \
	"17a7bb7c0ef5f40822ec7d0733a171c42b03ad33fa2879290c506db5190026cd"
#define CHUNK0 \
	"cf154c47ef5ba3ba0e59ec362634617821a3bcad5681e962bb3d50f63fbc7d68"
#define CHUNK1 \
	"86e6c78f160029dcb96b36cb65cbb6d8ce7fb69434aa4d4201b2e8b139bb8c54"
#define CHUNK2_OF_2_PLUS_ONE \
	"d84a4bb4af74076019925874c56a304a95bc1fdfa7b2406cbe39d689e9613bf9"

#define PATTERN_LEN (2 * CM_CHUNK_SIZE + 1)

static uint8_t *pattern;

static int setup_pattern(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	pattern = malloc(PATTERN_LEN);
	if (!pattern)
		return -1;
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (uint8_t)(i % 251);
	return 0;
}

static int teardown_pattern(void **state)
{
	(void)state;
	free(pattern);
	pattern = NULL;
	return 0;
}

static void assert_hex_equal(const uint8_t *bin, size_t len, const char *hex)
{
	char got[2 * PROTO_HASH_LEN + 1];

	assert_true(len <= PROTO_HASH_LEN);
	cm_hex_encode(bin, len, got);
	if (strcmp(got, hex) != 0) {
		print_error("hash differs\n     got %s\nexpected %s\n", got,
			    hex);
		fail();
	}
}

/* Hashes data chunk by chunk into chunks[] (room for 3) and returns the
 * chunk count. */
static size_t hash_chunks(const uint8_t *data, size_t len,
			  uint8_t chunks[][PROTO_HASH_LEN])
{
	size_t n = (size_t)proto_media_chunk_count(len);

	assert_true(n <= 3);
	for (size_t i = 0; i < n; i++) {
		size_t off = i * CM_CHUNK_SIZE;
		size_t part = len - off < CM_CHUNK_SIZE ? len - off
							: CM_CHUNK_SIZE;

		proto_chunk_hash(data + off, part, chunks[i]);
	}
	return n;
}

static void root_of(const uint8_t *data, size_t len,
		    uint8_t root[PROTO_HASH_LEN])
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	size_t n = hash_chunks(data, len, chunks);

	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])chunks, n, len,
			 root);
}

static void chunk_count(void **state)
{
	(void)state;
	assert_int_equal(proto_media_chunk_count(0), 0);
	assert_int_equal(proto_media_chunk_count(1), 1);
	assert_int_equal(proto_media_chunk_count(CM_CHUNK_SIZE - 1), 1);
	assert_int_equal(proto_media_chunk_count(CM_CHUNK_SIZE), 1);
	assert_int_equal(proto_media_chunk_count(CM_CHUNK_SIZE + 1), 2);
	assert_int_equal(proto_media_chunk_count(2 * CM_CHUNK_SIZE), 2);
	assert_int_equal(proto_media_chunk_count(2 * CM_CHUNK_SIZE + 1), 3);
	assert_int_equal(proto_media_chunk_count(CM_MEDIA_SIZE_MAX),
			 CM_MANIFEST_CHUNKS_MAX);
	assert_int_equal(proto_media_chunk_count(UINT64_MAX),
			 UINT64_MAX / CM_CHUNK_SIZE + 1);
}

static void root_empty(void **state)
{
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	root_of(NULL, 0, root);
	assert_hex_equal(root, sizeof(root), ROOT_EMPTY);
}

static void root_one_chunk(void **state)
{
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	root_of((const uint8_t *)"abc", 3, root);
	assert_hex_equal(root, sizeof(root), ROOT_ABC);
}

static void root_exact_multiple(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	assert_int_equal(hash_chunks(pattern, 2 * CM_CHUNK_SIZE, chunks), 2);
	assert_hex_equal(chunks[0], PROTO_HASH_LEN, CHUNK0);
	assert_hex_equal(chunks[1], PROTO_HASH_LEN, CHUNK1);
	root_of(pattern, 2 * CM_CHUNK_SIZE, root);
	assert_hex_equal(root, sizeof(root), ROOT_TWO_CHUNKS);
}

static void root_odd_size(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	assert_int_equal(hash_chunks(pattern, PATTERN_LEN, chunks), 3);
	assert_hex_equal(chunks[2], PROTO_HASH_LEN, CHUNK2_OF_2_PLUS_ONE);
	root_of(pattern, PATTERN_LEN, root);
	assert_hex_equal(root, sizeof(root), ROOT_TWO_CHUNKS_PLUS_ONE);
}

/* The root is BLAKE2b-256 over "clipmesh/1/media\0", the size as a
 * big-endian u64 and the chunk hashes, computed here with plain
 * libsodium. */
static void root_definition(void **state)
{
	static const uint8_t prefix[] = "clipmesh/1/media";
	uint8_t input[sizeof(prefix) + 8 + 3 * PROTO_HASH_LEN];
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t expected[PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
	uint64_t size = PATTERN_LEN;
	size_t n = hash_chunks(pattern, PATTERN_LEN, chunks);
	size_t len = 0;

	(void)state;
	memcpy(input, prefix, sizeof(prefix)); /* with its NUL */
	len += sizeof(prefix);
	for (int i = 7; i >= 0; i--)
		input[len++] = (uint8_t)(size >> (8 * i));
	memcpy(input + len, chunks, n * PROTO_HASH_LEN);
	len += n * PROTO_HASH_LEN;
	crypto_generichash(expected, sizeof(expected), input, len, NULL, 0);

	root_of(pattern, PATTERN_LEN, root);
	assert_memory_equal(root, expected, PROTO_HASH_LEN);
}

static void manifest_accepts_valid(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
	size_t n = hash_chunks(pattern, PATTERN_LEN, chunks);

	(void)state;
	root_of(pattern, PATTERN_LEN, root);
	assert_int_equal(proto_media_check_manifest(
				 root, PATTERN_LEN,
				 (const uint8_t(*)[PROTO_HASH_LEN])chunks, n),
			 CM_OK);

	root_of(NULL, 0, root);
	assert_int_equal(proto_media_check_manifest(root, 0, NULL, 0), CM_OK);
}

static void manifest_rejects_swapped_chunks(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t tmp[PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	root_of(pattern, 2 * CM_CHUNK_SIZE, root);
	assert_int_equal(hash_chunks(pattern, 2 * CM_CHUNK_SIZE, chunks), 2);
	memcpy(tmp, chunks[0], PROTO_HASH_LEN);
	memcpy(chunks[0], chunks[1], PROTO_HASH_LEN);
	memcpy(chunks[1], tmp, PROTO_HASH_LEN);
	assert_int_equal(proto_media_check_manifest(
				 root, 2 * CM_CHUNK_SIZE,
				 (const uint8_t(*)[PROTO_HASH_LEN])chunks, 2),
			 CM_ERR_BAD_MANIFEST);
}

static void manifest_rejects_wrong_size(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
	const uint8_t(*list)[PROTO_HASH_LEN] =
		(const uint8_t(*)[PROTO_HASH_LEN])chunks;

	(void)state;
	root_of(pattern, PATTERN_LEN, root);
	assert_int_equal(hash_chunks(pattern, PATTERN_LEN, chunks), 3);

	/* Same chunk count, different size: only the root can tell. */
	assert_int_equal(proto_media_check_manifest(root, PATTERN_LEN + 1,
						    list, 3),
			 CM_ERR_BAD_MANIFEST);
	/* A size whose chunk count differs from the list. */
	assert_int_equal(proto_media_check_manifest(root, 2 * CM_CHUNK_SIZE,
						    list, 3),
			 CM_ERR_BAD_MANIFEST);
	/* One chunk hash missing. */
	assert_int_equal(proto_media_check_manifest(root, PATTERN_LEN, list,
						    2),
			 CM_ERR_BAD_MANIFEST);
	/* Over the size limit. */
	assert_int_equal(proto_media_check_manifest(root,
						    CM_MEDIA_SIZE_MAX + 1,
						    list, 3),
			 CM_ERR_BAD_MANIFEST);
}

static void manifest_rejects_changed_chunk(void **state)
{
	uint8_t chunks[3][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];

	(void)state;
	root_of(pattern, PATTERN_LEN, root);
	hash_chunks(pattern, PATTERN_LEN, chunks);
	chunks[2][0] ^= 1;
	assert_int_equal(proto_media_check_manifest(
				 root, PATTERN_LEN,
				 (const uint8_t(*)[PROTO_HASH_LEN])chunks, 3),
			 CM_ERR_BAD_MANIFEST);
}

/* Returns the path of a file in samples/: in $SAMPLES when set, else in
 * the samples folder of the source tree that this file is part of. */
static void sample_path(const char *name, char *out, size_t cap)
{
	const char *dir = getenv("SAMPLES");
	const char *slash = strrchr(__FILE__, '/');
	int dir_len = slash ? (int)(slash - __FILE__) : 1;

	if (dir) {
		snprintf(out, cap, "%s/%s", dir, name);
		return;
	}
	snprintf(out, cap, "%.*s/../../samples/%s", dir_len,
		 slash ? __FILE__ : ".", name);
}

static void sniff_samples(void **state)
{
	static const struct {
		const char *file;
		const char *type;
	} samples[] = {
		{ "review-blender.mp4", "video/mp4" },
		{ "recensione-cuffie.mp4", "video/mp4" },
		{ "review-kettle.webm", "video/webm" },
		{ "photo-backpack.jpg", "image/jpeg" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		char path[4096];
		uint8_t head[64];
		size_t n;
		FILE *f;
		const char *type;

		sample_path(samples[i].file, path, sizeof(path));
		f = fopen(path, "rb");
		if (!f) {
			print_error("cannot open sample %s\n", path);
			fail();
		}
		n = fread(head, 1, sizeof(head), f);
		fclose(f);
		assert_int_equal(n, sizeof(head));

		type = proto_media_sniff(head, n);
		if (!type || strcmp(type, samples[i].type) != 0) {
			print_error("%s sniffed as %s, expected %s\n",
				    samples[i].file, type ? type : "NULL",
				    samples[i].type);
			fail();
		}
		assert_true(proto_media_type_known(type));
	}
}

static const char *sniff_hex(const char *hex)
{
	uint8_t head[64];
	size_t n = strlen(hex) / 2;

	assert_true(n <= sizeof(head));
	assert_true(cm_hex_decode(hex, head, n));
	return proto_media_sniff(head, n);
}

static void sniff_synthetic(void **state)
{
	(void)state;
	assert_string_equal(sniff_hex("89504e470d0a1a0a0000000d49484452"),
			    "image/png");
	assert_string_equal(sniff_hex("524946462400000057454250565038"),
			    "image/webp");
	assert_string_equal(sniff_hex("00000014667479707174202000000000"
				      "71742020"),
			    "video/quicktime");
	assert_string_equal(sniff_hex("0000001c667479706d703432000000006d70"
				      "3432"),
			    "video/mp4");
	assert_string_equal(sniff_hex("ffd8ffdb"), "image/jpeg");
	/* WebM DocType padded with a NUL byte. */
	assert_string_equal(sniff_hex("1a45dfa38a4282857765626d00"),
			    "video/webm");
}

static void sniff_rejects_junk(void **state)
{
	uint8_t junk[64];

	(void)state;
	memset(junk, 0, sizeof(junk));
	assert_null(proto_media_sniff(junk, sizeof(junk)));
	assert_null(proto_media_sniff(junk, 0));
	memcpy(junk, "hello, this is just some plain text!", 36);
	assert_null(proto_media_sniff(junk, 36));

	/* Matroska that is not WebM. */
	assert_null(sniff_hex("1a45dfa38e4282886d6174726f736b61"));
	/* A four-byte DocType other than "webm". */
	assert_null(sniff_hex("1a45dfa38742828461626364"));
	/* EBML header without a DocType in the bytes given. */
	assert_null(sniff_hex("1a45dfa39f4286810142f7810142f28104"));
	/* EBML child whose size runs past the header. */
	assert_null(sniff_hex("1a45dfa3854282ff7765626d"));
	/* RIFF but WAVE audio. */
	assert_null(sniff_hex("524946462400000057415645666d7420"));
	/* HEIF and AVIF still images use an ftyp box too. */
	assert_null(sniff_hex("00000018667479706865696300000000"
			      "6d696631"));
	assert_null(sniff_hex("0000001c667479706176696600000000"
			      "61766966"));
	/* ftyp whose box size is too small. */
	assert_null(sniff_hex("00000008667479706d70343200000000"));
	/* Too short to tell. */
	assert_null(sniff_hex("ffd8"));
	assert_null(sniff_hex("89504e470d0a1a"));
	assert_null(sniff_hex("1a45dfa3"));
}

static void type_known(void **state)
{
	(void)state;
	assert_true(proto_media_type_known("video/mp4"));
	assert_true(proto_media_type_known("video/webm"));
	assert_true(proto_media_type_known("video/quicktime"));
	assert_true(proto_media_type_known("image/jpeg"));
	assert_true(proto_media_type_known("image/png"));
	assert_true(proto_media_type_known("image/webp"));
	assert_false(proto_media_type_known("video/x-matroska"));
	assert_false(proto_media_type_known("Video/mp4"));
	assert_false(proto_media_type_known("video/mp4 "));
	assert_false(proto_media_type_known(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chunk_count),
		cmocka_unit_test(root_empty),
		cmocka_unit_test(root_one_chunk),
		cmocka_unit_test(root_exact_multiple),
		cmocka_unit_test(root_odd_size),
		cmocka_unit_test(root_definition),
		cmocka_unit_test(manifest_accepts_valid),
		cmocka_unit_test(manifest_rejects_swapped_chunks),
		cmocka_unit_test(manifest_rejects_wrong_size),
		cmocka_unit_test(manifest_rejects_changed_chunk),
		cmocka_unit_test(sniff_samples),
		cmocka_unit_test(sniff_synthetic),
		cmocka_unit_test(sniff_rejects_junk),
		cmocka_unit_test(type_known),
	};

	return cmocka_run_group_tests(tests, setup_pattern, teardown_pattern);
}
