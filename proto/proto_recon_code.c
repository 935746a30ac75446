/*
 * proto_recon_code.c - the byte coding of reconciliation payloads:
 * numbers, the range writer and the decoder.
 */
#include "proto_recon.h"

#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

/* Longest LEB128 encoding of a number below 2^126: 18 groups of 7 bits. */
#define VARINT_MAX 18

/* The first byte of a range is `mode << MODE_SHIFT | depth`. */
#define MODE_SHIFT 5
#define DEPTH_MASK 0x1f
#define MODE_MAX PROTO_RECON_SUM

/* Longest LEB128 encoding of a 64-bit count. */
#define COUNT_GROUPS_MAX 10

static unsigned shift_of(unsigned depth)
{
	return PROTO_RECON_KEY_BITS - 4 * depth;
}

static unsigned trailing_zeros(proto_recon_key k)
{
	uint64_t low = (uint64_t)k;

	if (low)
		return (unsigned)__builtin_ctzll(low);
	return 64 + (unsigned)__builtin_ctzll((uint64_t)(k >> 64));
}

/* Returns the smallest depth whose bucket boundaries include bound b
 * (0 < b <= END). */
static unsigned coarsest_depth(proto_recon_key b)
{
	unsigned tz = trailing_zeros(b);

	if (tz >= PROTO_RECON_KEY_BITS)
		return 0;
	return (PROTO_RECON_KEY_BITS - tz + 3) / 4;
}

/* --- Numbers -------------------------------------------------------- */

static size_t varint_put(uint8_t *out, proto_recon_key v)
{
	size_t n = 0;

	do {
		uint8_t b = (uint8_t)(v & 0x7f);

		v >>= 7;
		out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

/* Reads a LEB128 number of at most max_groups groups in shortest form. */
static cm_err varint_get(const uint8_t **p, size_t *left, size_t max_groups,
			 proto_recon_key *v)
{
	proto_recon_key value = 0;

	for (size_t i = 0; i < max_groups; i++) {
		uint8_t b;

		if (*left == 0)
			return cm_errf(CM_ERR_TRUNCATED,
				       "payload ends inside a number");
		b = **p;
		(*p)++;
		(*left)--;
		value |= (proto_recon_key)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return cm_errf(CM_ERR_NONMINIMAL_INT,
					       "number with a zero last "
					       "group");
			*v = value;
			return CM_OK;
		}
	}
	return cm_errf(CM_ERR_BAD_MESSAGE, "number of more than %zu groups",
		       max_groups);
}

/* --- Writing -------------------------------------------------------- */

static void writer_reserve(proto_recon_writer *w, size_t extra)
{
	size_t cap;
	uint8_t *buf;

	if (w->failed || w->len + extra <= w->cap)
		return;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + extra)
		cap *= 2;
	buf = realloc(w->buf, cap);
	if (!buf) {
		w->failed = true;
		return;
	}
	w->buf = buf;
	w->cap = cap;
}

/* Appends the mode and depth byte and the step count of a range ending
 * at hi, with room for `extra` bytes of data after them. */
static void writer_head(proto_recon_writer *w, proto_recon_key hi,
			proto_recon_mode mode, size_t extra)
{
	unsigned depth = coarsest_depth(hi);
	unsigned s = shift_of(depth);
	proto_recon_key steps = (hi >> s) - (w->prev >> s);

	writer_reserve(w, PROTO_RECON_RANGE_HEAD_MAX + extra);
	if (w->failed)
		return;
	w->buf[w->len++] = (uint8_t)(mode << MODE_SHIFT | depth);
	w->len += varint_put(w->buf + w->len, steps);
	w->n_ranges++;
	w->prev = hi == PROTO_RECON_END ? 0 : hi;
}

static void writer_bytes(proto_recon_writer *w, const uint8_t *data,
			 size_t len)
{
	if (w->failed || len == 0)
		return;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
}

static void writer_range(proto_recon_writer *w, proto_recon_key hi,
			 proto_recon_mode mode, const uint8_t *data, size_t n,
			 size_t item_len)
{
	writer_head(w, hi, mode, n * item_len);
	if (w->failed || mode == PROTO_RECON_SKIP)
		return;
	w->len += varint_put(w->buf + w->len, n);
	writer_bytes(w, data, n * item_len);
}

/* Checks that hi follows the last bound, counting a pending SKIP. */
static cm_err writer_check(const proto_recon_writer *w, proto_recon_key hi)
{
	proto_recon_key bound = w->skip_pending ? w->skip_hi : w->prev;

	if (hi <= bound || hi > PROTO_RECON_END)
		return cm_errf(CM_ERR_USAGE, "range bound does not increase");
	return CM_OK;
}

cm_err proto_recon_write(proto_recon_writer *w, proto_recon_key hi,
			 proto_recon_mode mode, const uint8_t *data, size_t n,
			 size_t item_len)
{
	cm_err err = writer_check(w, hi);

	if (err)
		return err;
	if (mode == PROTO_RECON_FP || mode == PROTO_RECON_SUM)
		return cm_errf(CM_ERR_USAGE, "FP and SUM ranges need "
			       "proto_recon_write_fp");
	if (mode == PROTO_RECON_SKIP) {
		w->skip_pending = true;
		w->skip_hi = hi;
		return CM_OK;
	}
	proto_recon_write_flush(w);
	writer_range(w, hi, mode, data, n, item_len);
	w->active = true;
	return w->failed ? CM_ERR_NOMEM : CM_OK;
}

cm_err proto_recon_write_fp(proto_recon_writer *w, proto_recon_key hi,
			    uint64_t count, const uint8_t *fp, size_t fp_len,
			    const uint8_t *sum_low)
{
	proto_recon_mode mode = sum_low ? PROTO_RECON_SUM : PROTO_RECON_FP;
	cm_err err = writer_check(w, hi);

	if (err)
		return err;
	proto_recon_write_flush(w);
	writer_head(w, hi, mode, fp_len + PROTO_RECON_SUM_LOW_LEN);
	if (!w->failed)
		w->len += varint_put(w->buf + w->len, count);
	writer_bytes(w, fp, fp_len);
	if (sum_low)
		writer_bytes(w, sum_low, PROTO_RECON_SUM_LOW_LEN);
	w->active = true;
	return w->failed ? CM_ERR_NOMEM : CM_OK;
}

void proto_recon_write_flush(proto_recon_writer *w)
{
	if (!w->skip_pending)
		return;
	w->skip_pending = false;
	writer_range(w, w->skip_hi, PROTO_RECON_SKIP, NULL, 0, 0);
}

/* --- Decoding ------------------------------------------------------- */

/* Reads the bound of the next range, after `prev`. */
static cm_err read_bound(const uint8_t **p, size_t *left, uint8_t head,
			 proto_recon_key prev, proto_recon_key *hi)
{
	unsigned depth = head & DEPTH_MASK;
	proto_recon_key steps = 0, room;
	unsigned s;
	cm_err err;

	err = varint_get(p, left, VARINT_MAX, &steps);
	if (err)
		return err;
	s = shift_of(depth);
	room = (PROTO_RECON_END >> s) - (prev >> s);
	if (steps == 0 || steps > room)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "range step count out of range at depth %u",
			       depth);
	*hi = ((prev >> s) + steps) << s;
	if (coarsest_depth(*hi) != depth)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "range bound at depth %u is not in its "
			       "shortest form", depth);
	return CM_OK;
}

/* Reads the count and fingerprint of an FP or SUM range, and the low 32
 * bits of the id sum of a SUM range. */
static cm_err read_fp(const uint8_t **p, size_t *left, proto_recon_range *r,
		      size_t fp_len)
{
	size_t need = fp_len;
	proto_recon_key count = 0;
	cm_err err;

	err = varint_get(p, left, COUNT_GROUPS_MAX, &count);
	if (err)
		return err;
	if (count > UINT64_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "record count over 2^64");
	r->count = (uint64_t)count;
	if (r->mode == PROTO_RECON_SUM)
		need += PROTO_RECON_SUM_LOW_LEN;
	if (*left < need)
		return cm_errf(CM_ERR_TRUNCATED,
			       "payload ends inside a fingerprint");
	r->data = *p;
	if (r->mode == PROTO_RECON_SUM)
		for (size_t i = 0; i < PROTO_RECON_SUM_LOW_LEN; i++)
			r->sum_low |= (uint32_t)(*p)[fp_len + i] << (8 * i);
	*p += need;
	*left -= need;
	return CM_OK;
}

/* Reads the data of a range of `mode`. */
static cm_err read_data(const uint8_t **p, size_t *left, proto_recon_range *r,
			size_t fp_len, size_t hash_len)
{
	proto_recon_key n = 0;
	size_t item_len = 0, max = 0;
	cm_err err;

	switch (r->mode) {
	case PROTO_RECON_SKIP:
		return CM_OK;
	case PROTO_RECON_FP:
	case PROTO_RECON_SUM:
		return read_fp(p, left, r, fp_len);
	case PROTO_RECON_IDS:
		item_len = hash_len;
		max = CM_RECON_IDS_MAX;
		break;
	case PROTO_RECON_FULL:
		item_len = PROTO_ID_LEN;
		max = CM_RECON_FULL_MAX;
		break;
	}

	err = varint_get(p, left, 3, &n);
	if (err)
		return err;
	if (n > max)
		return cm_errf(CM_ERR_TOO_MANY, "list of %llu in a range, "
			       "limit %zu", (unsigned long long)n, max);
	if ((size_t)n * item_len > *left)
		return cm_errf(CM_ERR_TRUNCATED,
			       "list of %llu claims more than the %zu bytes "
			       "left", (unsigned long long)n, *left);
	r->data = *p;
	r->n = (size_t)n;
	*p += r->n * item_len;
	*left -= r->n * item_len;
	return CM_OK;
}

static cm_err ranges_grow(proto_recon_range **ranges, size_t n, size_t *cap)
{
	if (n < *cap)
		return CM_OK;
	if (n >= CM_RECON_RANGES_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "over %d ranges in a message",
			       CM_RECON_RANGES_MAX);
	return cm_array_reserve((void **)ranges, cap, n + 1, sizeof(**ranges));
}

cm_err proto_recon_decode(const uint8_t *payload, size_t len,
			  size_t n_scopes, size_t fp_len, size_t hash_len,
			  proto_recon_range **ranges, size_t *n_ranges)
{
	const uint8_t *p = payload;
	size_t left = len, n = 0, cap = 0, scope = 0;
	proto_recon_key prev = 0;
	cm_err err = CM_OK;

	*ranges = NULL;
	*n_ranges = 0;
	while (scope < n_scopes) {
		proto_recon_range *r;
		uint8_t head;

		if (left == 0) {
			err = cm_errf(CM_ERR_TRUNCATED, "payload ends in scope "
				      "%zu of %zu", scope + 1, n_scopes);
			goto out;
		}
		err = ranges_grow(ranges, n, &cap);
		if (err)
			goto out;
		r = &(*ranges)[n];
		memset(r, 0, sizeof(*r));
		head = *p++;
		left--;
		if (head >> MODE_SHIFT > MODE_MAX) {
			err = cm_errf(CM_ERR_BAD_MESSAGE, "range mode %u, "
				      "limit %d", head >> MODE_SHIFT,
				      MODE_MAX);
			goto out;
		}
		r->mode = (proto_recon_mode)(head >> MODE_SHIFT);
		err = read_bound(&p, &left, head, prev, &r->hi);
		if (!err)
			err = read_data(&p, &left, r, fp_len, hash_len);
		if (err)
			goto out;
		n++;
		prev = r->hi;
		if (r->hi == PROTO_RECON_END) {
			prev = 0;
			scope++;
		}
	}
	if (left)
		err = cm_errf(CM_ERR_TRAILING, "%zu bytes after the last scope",
			      left);
out:
	if (err) {
		free(*ranges);
		*ranges = NULL;
		return err;
	}
	*n_ranges = n;
	return CM_OK;
}
