/*
 * proto_media.c - media chunk and root hashes, manifest checks and media
 * type detection by magic bytes.
 */
#include "proto_media.h"

#include <string.h>

#include <sodium.h>

#include "cm_limits.h"

#define MEDIA_DOMAIN "clipmesh/1/media" /* hashed with its NUL */

uint64_t proto_media_chunk_count(uint64_t size)
{
	return size / CM_CHUNK_SIZE + (size % CM_CHUNK_SIZE != 0);
}

void proto_chunk_hash(const uint8_t *data, size_t len,
		      uint8_t out[PROTO_HASH_LEN])
{
	crypto_generichash(out, PROTO_HASH_LEN, data, len, NULL, 0);
}

void proto_media_root(const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n,
		      uint64_t size, uint8_t root[PROTO_HASH_LEN])
{
	crypto_generichash_state st;
	uint8_t size_be[8];

	for (int i = 0; i < 8; i++)
		size_be[i] = (uint8_t)(size >> (56 - 8 * i));

	crypto_generichash_init(&st, NULL, 0, PROTO_HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *)MEDIA_DOMAIN,
				  sizeof(MEDIA_DOMAIN));
	crypto_generichash_update(&st, size_be, sizeof(size_be));
	for (size_t i = 0; i < n; i++)
		crypto_generichash_update(&st, chunks[i], PROTO_HASH_LEN);
	crypto_generichash_final(&st, root, PROTO_HASH_LEN);
}

cm_err proto_media_check_manifest(const uint8_t root[PROTO_HASH_LEN],
				  uint64_t size,
				  const uint8_t (*chunks)[PROTO_HASH_LEN],
				  size_t n)
{
	uint8_t computed[PROTO_HASH_LEN];
	uint64_t expected;

	if (size > CM_MEDIA_SIZE_MAX)
		return cm_errf(CM_ERR_BAD_MANIFEST,
			       "media size %llu is over the max of %llu bytes",
			       (unsigned long long)size, CM_MEDIA_SIZE_MAX);
	expected = proto_media_chunk_count(size);
	if (n != expected)
		return cm_errf(CM_ERR_BAD_MANIFEST,
			       "%zu chunk hashes for %llu bytes, expected %llu",
			       n, (unsigned long long)size,
			       (unsigned long long)expected);

	proto_media_root(chunks, n, size, computed);
	if (memcmp(computed, root, PROTO_HASH_LEN) != 0)
		return cm_errf(CM_ERR_BAD_MANIFEST,
			       "chunk hashes and size do not hash to the media "
			       "hash");
	return CM_OK;
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * ISO base media files (MP4, QuickTime) start with an "ftyp" box: 4-byte
 * size, "ftyp", major brand, minor version, compatible brands. HEIF and
 * AVIF still images use the same box, so their brands are not video.
 */
static const char *sniff_ftyp(const uint8_t *head, size_t len)
{
	static const char *const image_brands[] = {
		"mif1", "msf1", "heic", "heix", "heim", "heis",
		"hevc", "hevx", "avif", "avis", "crx ",
	};

	if (len < 16 || memcmp(head + 4, "ftyp", 4) != 0)
		return NULL;
	if (load_be32(head) < 16)
		return NULL;

	if (memcmp(head + 8, "qt  ", 4) == 0)
		return "video/quicktime";
	for (size_t i = 0; i < sizeof(image_brands) / sizeof(image_brands[0]);
	     i++)
		if (memcmp(head + 8, image_brands[i], 4) == 0)
			return NULL;
	return "video/mp4";
}

/*
 * Reads an EBML variable-length integer at head[*at]: its length is one
 * byte more than the number of leading zero bits of its first byte.
 * With keep_marker the length bit stays in the value, as element ids
 * are written. Returns false when it does not fit in len.
 */
static bool ebml_vint(const uint8_t *head, size_t len, size_t *at,
		      bool keep_marker, uint64_t *value)
{
	uint8_t first;
	unsigned n = 1;
	uint64_t v;

	if (*at >= len)
		return false;
	first = head[*at];
	if (first == 0)
		return false;
	while (!(first & (0x80 >> (n - 1))))
		n++;
	if (len - *at < n)
		return false;

	v = keep_marker ? first : first & (0xff >> n);
	for (unsigned i = 1; i < n; i++)
		v = v << 8 | head[*at + i];
	*at += n;
	*value = v;
	return true;
}

/*
 * WebM is Matroska with DocType "webm": walk the children of the EBML
 * header element (id 0x1A45DFA3) to the DocType element (id 0x4282).
 * A Matroska file (DocType "matroska") is not accepted.
 */
static const char *sniff_webm(const uint8_t *head, size_t len)
{
	static const uint8_t ebml_magic[4] = { 0x1a, 0x45, 0xdf, 0xa3 };
	size_t at = 4;
	size_t end;
	uint64_t size;

	if (len < 4 || memcmp(head, ebml_magic, 4) != 0)
		return NULL;
	if (!ebml_vint(head, len, &at, false, &size))
		return NULL;
	end = size < len - at ? at + (size_t)size : len;

	while (at < end) {
		uint64_t id;
		uint64_t body;

		if (!ebml_vint(head, end, &at, true, &id) ||
		    !ebml_vint(head, end, &at, false, &body))
			return NULL;
		if (body > end - at)
			return NULL;
		if (id == 0x4282) {
			/* EBML strings may be padded with NUL bytes. */
			size_t n = (size_t)body;

			while (n > 0 && head[at + n - 1] == 0)
				n--;
			if (n == 4 && memcmp(head + at, "webm", 4) == 0)
				return "video/webm";
			return NULL;
		}
		at += (size_t)body;
	}
	return NULL;
}

const char *proto_media_sniff(const uint8_t *head, size_t len)
{
	static const uint8_t png[8] = { 0x89, 'P', 'N', 'G',
					0x0d, 0x0a, 0x1a, 0x0a };
	static const uint8_t jpeg[3] = { 0xff, 0xd8, 0xff };
	const char *type;

	if (len >= sizeof(jpeg) && memcmp(head, jpeg, sizeof(jpeg)) == 0)
		return "image/jpeg";
	if (len >= sizeof(png) && memcmp(head, png, sizeof(png)) == 0)
		return "image/png";
	if (len >= 12 && memcmp(head, "RIFF", 4) == 0 &&
	    memcmp(head + 8, "WEBP", 4) == 0)
		return "image/webp";

	type = sniff_ftyp(head, len);
	if (type)
		return type;
	return sniff_webm(head, len);
}

int proto_media_type_known(const char *type)
{
	static const char *const known[] = {
		"video/mp4",  "video/webm", "video/quicktime",
		"image/jpeg", "image/png",  "image/webp",
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(type, known[i]) == 0)
			return 1;
	return 0;
}
