/*
 * proto_canon.c - strict msgpack pull reader and UTF-8 text rules.
 *
 * msgpack-c's unpacker is not used for records because it accepts
 * non-shortest forms without telling the caller and sizes allocations
 * from the lengths an input claims. This reader walks the input in place
 * and rejects every encoding other than the canonical one.
 */
#include "proto_canon.h"

#include <inttypes.h>
#include <string.h>

/* msgpack type families, keyed by the first byte of a value. */
enum family {
	FAM_UINT,
	FAM_INT, /* signed forms: negative fixint and int 8/16/32/64 */
	FAM_STR,
	FAM_BIN,
	FAM_ARRAY,
	FAM_MAP,
	FAM_NIL,
	FAM_BOOL,
	FAM_FLOAT,
	FAM_EXT,
	FAM_UNUSED, /* 0xc1 */
};

/* The shape of one head byte: its family, how many big-endian bytes of
 * length or value follow it, and the smallest value that may use it. */
struct head {
	enum family fam;
	unsigned extra;
	uint64_t min;
	uint64_t fixed; /* value carried in the head byte itself */
};

/* Returns the indefinite article for noun: "an" before a vowel. */
static const char *article(const char *noun)
{
	return strchr("aeiou", noun[0]) != NULL ? "an" : "a";
}

static const char *family_name(enum family fam)
{
	switch (fam) {
	case FAM_UINT:
		return "unsigned integer";
	case FAM_INT:
		return "signed integer";
	case FAM_STR:
		return "string";
	case FAM_BIN:
		return "binary";
	case FAM_ARRAY:
		return "array";
	case FAM_MAP:
		return "map";
	case FAM_NIL:
		return "nil";
	case FAM_BOOL:
		return "boolean";
	case FAM_FLOAT:
		return "float";
	case FAM_EXT:
		return "extension";
	case FAM_UNUSED:
		break;
	}
	return "reserved byte 0xc1";
}

static struct head head_fixed(enum family fam, uint64_t fixed)
{
	struct head h = { fam, 0, 0, fixed };

	return h;
}

static struct head head_sized(enum family fam, unsigned extra, uint64_t min)
{
	struct head h = { fam, extra, min, 0 };

	return h;
}

static struct head head_of(uint8_t b)
{
	if (b <= 0x7f)
		return head_fixed(FAM_UINT, b);
	if (b <= 0x8f)
		return head_fixed(FAM_MAP, b & 0x0f);
	if (b <= 0x9f)
		return head_fixed(FAM_ARRAY, b & 0x0f);
	if (b <= 0xbf)
		return head_fixed(FAM_STR, b & 0x1f);
	if (b >= 0xe0)
		return head_fixed(FAM_INT, 0);

	switch (b) {
	case 0xc0:
		return head_fixed(FAM_NIL, 0);
	case 0xc2:
	case 0xc3:
		return head_fixed(FAM_BOOL, 0);
	case 0xc4:
		return head_sized(FAM_BIN, 1, 0);
	case 0xc5:
		return head_sized(FAM_BIN, 2, 1u << 8);
	case 0xc6:
		return head_sized(FAM_BIN, 4, 1u << 16);
	case 0xc7:
	case 0xc8:
	case 0xc9:
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return head_fixed(FAM_EXT, 0);
	case 0xca:
	case 0xcb:
		return head_fixed(FAM_FLOAT, 0);
	case 0xcc:
		return head_sized(FAM_UINT, 1, 1u << 7);
	case 0xcd:
		return head_sized(FAM_UINT, 2, 1u << 8);
	case 0xce:
		return head_sized(FAM_UINT, 4, 1u << 16);
	case 0xcf:
		return head_sized(FAM_UINT, 8, 1ull << 32);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		return head_sized(FAM_INT, 1u << (b - 0xd0), 0);
	case 0xd9:
		return head_sized(FAM_STR, 1, 32);
	case 0xda:
		return head_sized(FAM_STR, 2, 1u << 8);
	case 0xdb:
		return head_sized(FAM_STR, 4, 1u << 16);
	case 0xdc:
		return head_sized(FAM_ARRAY, 2, 16);
	case 0xdd:
		return head_sized(FAM_ARRAY, 4, 1u << 16);
	case 0xde:
		return head_sized(FAM_MAP, 2, 16);
	case 0xdf:
		return head_sized(FAM_MAP, 4, 1u << 16);
	default:
		return head_fixed(FAM_UNUSED, 0);
	}
}

void proto_reader_init(proto_reader *rd, const uint8_t *buf, size_t len)
{
	rd->start = buf;
	rd->pos = buf;
	rd->end = buf + len;
}

size_t proto_reader_left(const proto_reader *rd)
{
	return (size_t)(rd->end - rd->pos);
}

size_t proto_reader_offset(const proto_reader *rd)
{
	return (size_t)(rd->pos - rd->start);
}

static uint64_t load_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool is_scalar(enum family fam)
{
	return fam == FAM_UINT || fam == FAM_STR || fam == FAM_BIN;
}

/*
 * Builds the error for a value of family `found` where `want` was
 * expected. A signed form that contains a non-negative value is a
 * non-shortest unsigned integer when an unsigned one was expected.
 */
static cm_err type_error(const proto_reader *rd, const char *what,
			 enum family want, struct head h)
{
	size_t at = proto_reader_offset(rd);
	const char *found = family_name(h.fam);

	switch (h.fam) {
	case FAM_INT:
		if (h.extra > 0 && proto_reader_left(rd) - 1 < h.extra)
			return cm_errf(CM_ERR_TRUNCATED,
				       "%s: input ends inside the integer at "
				       "byte %zu",
				       what, at);
		if (h.extra > 0 && !(rd->pos[1] & 0x80)) {
			if (want == FAM_UINT)
				return cm_errf(CM_ERR_NONMINIMAL_INT,
					       "%s is a non-negative integer "
					       "in a signed form at byte %zu",
					       what, at);
			break;
		}
		return cm_errf(CM_ERR_NEGATIVE_INT,
			       "%s is a negative integer at byte %zu", what,
			       at);
	case FAM_FLOAT:
		return cm_errf(CM_ERR_FLOAT, "%s is a float at byte %zu", what,
			       at);
	case FAM_EXT:
		return cm_errf(CM_ERR_EXT,
			       "%s is an extension type at byte %zu", what,
			       at);
	case FAM_ARRAY:
	case FAM_MAP:
		if (is_scalar(want))
			return cm_errf(CM_ERR_TOO_DEEP,
				       "%s is %s %s at byte %zu, expected %s "
				       "%s",
				       what, article(found), found, at,
				       article(family_name(want)),
				       family_name(want));
		break;
	default:
		break;
	}
	return cm_errf(CM_ERR_BAD_TYPE, "%s is %s %s at byte %zu, expected %s %s",
		       what, article(found), found, at,
		       article(family_name(want)), family_name(want));
}

/* Returns the size of the shortest head that carries `value` (for an
 * integer, the whole integer). */
static unsigned shortest_head(enum family fam, uint64_t value)
{
	switch (fam) {
	case FAM_UINT:
		if (value <= 0x7f)
			return 1;
		break;
	case FAM_STR:
		if (value <= 31)
			return 1;
		break;
	case FAM_BIN:
		break; /* there is no fixbin, so bin 8 is the shortest */
	default:
		/* Arrays and maps have no 8-bit count form. */
		if (value <= 15)
			return 1;
		return value < 1u << 16 ? 3 : 5;
	}
	if (value < 1u << 8)
		return 2;
	if (value < 1u << 16)
		return 3;
	return value < 1ull << 32 ? 5 : 9;
}

/*
 * Consumes the head of a value of family `want` and returns the integer,
 * length or count it carries. Rejects any head longer than the shortest
 * one that fits the value.
 */
static cm_err read_head(proto_reader *rd, const char *what, enum family want,
			uint64_t *value)
{
	struct head h;
	size_t at = proto_reader_offset(rd);

	if (proto_reader_left(rd) == 0)
		return cm_errf(CM_ERR_TRUNCATED, "%s: input ends at byte %zu",
			       what, at);
	h = head_of(rd->pos[0]);
	if (h.fam != want)
		return type_error(rd, what, want, h);
	if (proto_reader_left(rd) - 1 < h.extra)
		return cm_errf(CM_ERR_TRUNCATED,
			       "%s: input ends inside the header at byte %zu",
			       what, at);

	*value = h.extra ? load_be(rd->pos + 1, h.extra) : h.fixed;
	if (*value < h.min) {
		if (want == FAM_UINT)
			return cm_errf(CM_ERR_NONMINIMAL_INT,
				       "%s: %" PRIu64 " takes %u bytes at byte "
				       "%zu, its shortest form takes %u",
				       what, *value, 1 + h.extra, at,
				       shortest_head(want, *value));
		return cm_errf(CM_ERR_NONMINIMAL_LEN,
			       "%s: %s of length %" PRIu64 " has a %u-byte "
			       "header at byte %zu, its shortest header is "
			       "%u bytes",
			       what, family_name(want), *value, 1 + h.extra,
			       at, shortest_head(want, *value));
	}
	rd->pos += 1 + h.extra;
	return CM_OK;
}

cm_err proto_read_uint(proto_reader *rd, const char *what, uint64_t *v)
{
	return read_head(rd, what, FAM_UINT, v);
}

static cm_err read_bytes(proto_reader *rd, const char *what,
			 enum family fam, size_t max, const uint8_t **p,
			 size_t *len)
{
	uint64_t n;
	cm_err err;

	err = read_head(rd, what, fam, &n);
	if (err)
		return err;
	if (n > proto_reader_left(rd))
		return cm_errf(CM_ERR_TRUNCATED,
			       "%s claims %" PRIu64 " bytes, %zu remain", what,
			       n, proto_reader_left(rd));
	if (n > max)
		return cm_errf(CM_ERR_TOO_LONG,
			       "%s is %" PRIu64 " bytes, max %zu", what, n,
			       max);

	*p = rd->pos;
	*len = (size_t)n;
	rd->pos += n;
	return CM_OK;
}

cm_err proto_read_str(proto_reader *rd, const char *what, size_t max,
		      const uint8_t **s, size_t *len)
{
	return read_bytes(rd, what, FAM_STR, max, s, len);
}

cm_err proto_read_bin(proto_reader *rd, const char *what, size_t max,
		      const uint8_t **b, size_t *len)
{
	return read_bytes(rd, what, FAM_BIN, max, b, len);
}

/* Each element of a container takes at least min_bytes of input, so a
 * count the remaining input cannot hold is rejected before any loop. */
static cm_err read_container(proto_reader *rd, const char *what,
			     enum family fam, size_t min_bytes, size_t max,
			     size_t *n)
{
	uint64_t count;
	cm_err err;

	err = read_head(rd, what, fam, &count);
	if (err)
		return err;
	if (count > proto_reader_left(rd) / min_bytes)
		return cm_errf(CM_ERR_TRUNCATED,
			       "%s claims %" PRIu64 " items, only %zu bytes "
			       "remain",
			       what, count, proto_reader_left(rd));
	if (count > max)
		return cm_errf(CM_ERR_TOO_MANY,
			       "%s has %" PRIu64 " items, max %zu", what, count,
			       max);

	*n = (size_t)count;
	return CM_OK;
}

cm_err proto_read_array(proto_reader *rd, const char *what, size_t max,
			size_t *n)
{
	return read_container(rd, what, FAM_ARRAY, 1, max, n);
}

cm_err proto_read_map(proto_reader *rd, const char *what, size_t max,
		      size_t *n)
{
	return read_container(rd, what, FAM_MAP, 2, max, n);
}

bool proto_utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp)
{
	size_t at = *i;
	uint8_t b = s[at];
	unsigned n;
	uint32_t v;
	uint32_t min;

	if (b < 0x80) {
		*cp = b;
		*i = at + 1;
		return true;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		n = 1;
		v = b & 0x1f;
		min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		n = 2;
		v = b & 0x0f;
		min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 3;
		v = b & 0x07;
		min = 0x10000;
	} else {
		/* A continuation byte, 0xc0/0xc1 (always overlong) or
		 * 0xf5..0xff (above U+10FFFF). */
		return false;
	}

	if (len - at - 1 < n)
		return false;
	for (unsigned k = 1; k <= n; k++) {
		uint8_t c = s[at + k];

		if ((c & 0xc0) != 0x80)
			return false;
		v = v << 6 | (c & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return false;

	*cp = v;
	*i = at + 1 + n;
	return true;
}

bool proto_is_control(uint32_t cp)
{
	return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
}

bool proto_is_space(uint32_t cp)
{
	switch (cp) {
	case 0x0009:
	case 0x000a:
	case 0x000b:
	case 0x000c:
	case 0x000d:
	case 0x0020:
	case 0x0085:
	case 0x00a0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202f:
	case 0x205f:
	case 0x3000:
		return true;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

cm_err proto_text_check(const char *what, const uint8_t *s, size_t len,
			bool allow_newline)
{
	size_t i = 0;

	while (i < len) {
		size_t at = i;
		uint32_t cp;

		if (!proto_utf8_next(s, len, &i, &cp))
			return cm_errf(CM_ERR_BAD_UTF8,
				       "%s has invalid UTF-8 at byte %zu", what,
				       at);
		if (proto_is_control(cp) && !(allow_newline && cp == '\n'))
			return cm_errf(CM_ERR_CONTROL_CHAR,
				       "%s has control character U+%04" PRIX32
				       " at byte %zu",
				       what, cp, at);
	}
	return CM_OK;
}

const char *proto_printable(const uint8_t *s, size_t len,
			    char out[PROTO_SHOWN_MAX])
{
	size_t n = len < 32 ? len : 32;

	for (size_t i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

void proto_index_label(char *out, size_t cap, const char *prefix,
		       size_t index, const char *suffix)
{
	char digits[24];
	size_t nd = 0, len = 0;

	do {
		digits[nd++] = (char)('0' + index % 10);
		index /= 10;
	} while (index > 0);
	for (const char *p = prefix; *p && len + 1 < cap; p++)
		out[len++] = *p;
	if (len + 1 < cap)
		out[len++] = '[';
	while (nd > 0 && len + 1 < cap)
		out[len++] = digits[--nd];
	if (len + 1 < cap)
		out[len++] = ']';
	for (const char *p = suffix; *p && len + 1 < cap; p++)
		out[len++] = *p;
	out[len] = '\0';
}
