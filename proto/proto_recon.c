/*
 * proto_recon.c - keys, fingerprints and the session logic of range-based
 * set reconciliation; proto_recon_code.c writes and reads the payloads.
 */
#include "proto_recon.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

/* Pieces one split writes at most. */
#define SPLIT_RANGES_MAX 64

/* --- Keys and buckets ----------------------------------------------- */

proto_recon_key proto_recon_key_of(uint64_t created_ms,
				   const uint8_t id[PROTO_ID_LEN])
{
	uint64_t prefix = 0;

	for (int i = 0; i < 8; i++)
		prefix = prefix << 8 | id[i];
	return (proto_recon_key)created_ms << 60 | prefix >> 4;
}

proto_recon_key proto_recon_width(unsigned depth)
{
	return (proto_recon_key)1 << (PROTO_RECON_KEY_BITS - 4 * depth);
}

static unsigned shift_of(unsigned depth)
{
	return PROTO_RECON_KEY_BITS - 4 * depth;
}

/* Returns the smallest depth that has a bucket boundary strictly inside
 * (lo, hi); hi - lo must be at least 2. */
static unsigned inner_depth(proto_recon_key lo, proto_recon_key hi)
{
	unsigned d;

	for (d = 1; d < PROTO_RECON_DEPTH_MAX; d++) {
		unsigned s = shift_of(d);

		if (((lo >> s) + 1) << s < hi)
			break;
	}
	return d;
}

/* --- Aggregates, fingerprints, short hashes ------------------------- */

/* a += b, both 256-bit little-endian. */
static void sum_add(uint8_t a[PROTO_RECON_SUM_LEN],
		    const uint8_t b[PROTO_RECON_SUM_LEN])
{
	unsigned carry = 0;

	for (size_t i = 0; i < PROTO_RECON_SUM_LEN; i++) {
		carry += (unsigned)a[i] + b[i];
		a[i] = (uint8_t)carry;
		carry >>= 8;
	}
}

void proto_recon_agg_id(proto_recon_agg *a, const uint8_t id[PROTO_ID_LEN],
			bool remove)
{
	uint8_t neg[PROTO_RECON_SUM_LEN];
	unsigned carry = 1;

	if (!remove) {
		sum_add(a->sum, id);
		a->count++;
		return;
	}
	/* Two's complement: adding -id mod 2^256 subtracts id. */
	for (size_t i = 0; i < PROTO_RECON_SUM_LEN; i++) {
		carry += (uint8_t)~id[i];
		neg[i] = (uint8_t)carry;
		carry >>= 8;
	}
	sum_add(a->sum, neg);
	a->count--;
}

void proto_recon_agg_add(proto_recon_agg *a, const proto_recon_agg *b)
{
	sum_add(a->sum, b->sum);
	a->count += b->count;
}

void proto_recon_fingerprint(const uint8_t salt[PROTO_RECON_SALT_LEN],
			     const proto_recon_agg *a, uint8_t *out,
			     size_t fp_len)
{
	uint8_t in[8 + PROTO_RECON_SUM_LEN];
	uint8_t full[crypto_generichash_BYTES_MIN];
	uint64_t count = a->count;

	for (int i = 7; i >= 0; i--) {
		in[i] = (uint8_t)count;
		count >>= 8;
	}
	memcpy(in + 8, a->sum, PROTO_RECON_SUM_LEN);
	crypto_generichash(full, sizeof(full), in, sizeof(in), salt,
			   PROTO_RECON_SALT_LEN);
	memcpy(out, full, fp_len);
}

void proto_recon_short_hash(const uint8_t salt[PROTO_RECON_SALT_LEN],
			    const uint8_t id[PROTO_ID_LEN], uint8_t *out,
			    size_t hash_len)
{
	uint8_t full[crypto_shorthash_BYTES];

	crypto_shorthash(full, id, PROTO_ID_LEN, salt);
	memcpy(out, full, hash_len);
}

/* --- Sessions ------------------------------------------------------- */

proto_recon_params proto_recon_defaults(void)
{
	proto_recon_params p = {
		.fp_len = PROTO_RECON_FP_DEFAULT,
		.hash_len = PROTO_RECON_HASH_DEFAULT,
		.leaf = 16,
		.full_small = 1,
		.pieces_per_diff = 2,
		.split_sums = true,
		.msg_max = CM_WIRE_MSG_MAX - 256 * 1024,
	};

	return p;
}

/* State while one payload is answered. */
typedef struct step {
	proto_recon_session *s;
	proto_recon_writer w;
	size_t scope;
	proto_recon_key lo;       /* bound where the current range starts */
	proto_recon_item *items;  /* CM_RECON_FULL_MAX + 1 or more */
	uint64_t *hashes;         /* CM_RECON_IDS_MAX */
} step;

#define ITEMS_SCRATCH \
	((CM_RECON_FULL_MAX > CM_RECON_IDS_MAX ? CM_RECON_FULL_MAX \
					       : CM_RECON_IDS_MAX) + 1)

static cm_err own_agg(step *st, proto_recon_key lo, proto_recon_key hi,
		      proto_recon_agg *out)
{
	proto_recon_source *src = st->s->src;

	memset(out, 0, sizeof(*out));
	return src->agg(src->ctx, st->scope, lo, hi, out);
}

static cm_err own_items(step *st, proto_recon_key lo, proto_recon_key hi,
			size_t max, size_t *n)
{
	proto_recon_source *src = st->s->src;

	*n = 0;
	return src->items(src->ctx, st->scope, lo, hi, st->items, max, n);
}

/* Returns the low 32 bits of a little-endian number. */
static uint32_t low32(const uint8_t *le)
{
	uint32_t v = 0;

	for (int i = PROTO_RECON_SUM_LOW_LEN - 1; i >= 0; i--)
		v = v << 8 | le[i];
	return v;
}

/* Writes an FP range with our count and fingerprint or, with sum, a SUM
 * range that also carries the low 32 bits of our id sum. */
static cm_err write_fp(step *st, proto_recon_key hi, const proto_recon_agg *a,
		       bool sum)
{
	uint8_t fp[PROTO_RECON_FP_MAX];

	proto_recon_fingerprint(st->s->salt, a, fp, st->s->params.fp_len);
	return proto_recon_write_fp(&st->w, hi, a->count, fp,
				    st->s->params.fp_len, sum ? a->sum : NULL);
}

/* A range with none of our records: the initiator says so with an empty
 * IDS, which asks for all of the responder's ids there; the responder has
 * nothing to offer and settles it. */
static cm_err write_gap(step *st, proto_recon_key hi)
{
	if (st->s->initiator)
		return proto_recon_write(&st->w, hi, PROTO_RECON_IDS, NULL, 0,
					 st->s->params.hash_len);
	return proto_recon_write(&st->w, hi, PROTO_RECON_SKIP, NULL, 0, 0);
}

/* One range that a split writes: a piece with records, or a gap. */
typedef struct piece {
	proto_recon_key hi;
	proto_recon_agg agg;
} piece;

/* How one split cuts and writes its pieces. */
typedef struct split_plan {
	size_t pieces;           /* pieces wanted, 2..SPLIT_RANGES_MAX */
	bool sums;               /* write pieces of a few records as SUM */
} split_plan;

/* Cuts [lo, hi) at the boundaries of the first depth that has one inside
 * it; fills out[16] and returns the number of pieces. */
static cm_err cut(step *st, proto_recon_key lo, proto_recon_key hi,
		  piece *out, size_t *n)
{
	unsigned s = shift_of(inner_depth(lo, hi));
	cm_err err;

	*n = 0;
	while (lo < hi) {
		proto_recon_key b = ((lo >> s) + 1) << s;

		if (b > hi)
			b = hi;
		err = own_agg(st, lo, b, &out[*n].agg);
		if (err)
			return err;
		out[*n].hi = b;
		(*n)++;
		lo = b;
	}
	return CM_OK;
}

/* Writes the pieces of a split, merging neighbouring gaps. */
static cm_err write_pieces(step *st, const piece *list, size_t n, bool sums)
{
	cm_err err = CM_OK;

	for (size_t i = 0; i < n && !err; i++) {
		uint64_t count = list[i].agg.count;

		if (count > 0)
			err = write_fp(st, list[i].hi, &list[i].agg,
				       sums && count <= CM_RECON_FULL_MAX);
		else if (i + 1 == n || list[i + 1].agg.count > 0)
			err = write_gap(st, list[i].hi);
	}
	return err;
}

/* Merges neighbouring pieces without records; returns the new count. */
static size_t merge_gaps(piece *list, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (k > 0 && list[i].agg.count == 0 &&
		    list[k - 1].agg.count == 0) {
			list[k - 1].hi = list[i].hi;
			continue;
		}
		list[k++] = list[i];
	}
	return k;
}

/*
 * Joins neighbouring pieces into groups of about `quota` records; gaps
 * inside a group join it. Returns the new count, or n unchanged when the
 * groups would be a single range, which would not narrow anything.
 */
static size_t group_pieces(piece *list, size_t n, uint64_t quota)
{
	piece out[SPLIT_RANGES_MAX];
	size_t k = 0;
	bool open = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t count = list[i].agg.count;

		if (open && count > 0 &&
		    out[k - 1].agg.count + count > quota + quota / 2)
			open = false;
		if (open) {
			out[k - 1].hi = list[i].hi;
			proto_recon_agg_add(&out[k - 1].agg, &list[i].agg);
		} else if (k > 0 && count == 0 && out[k - 1].agg.count == 0) {
			out[k - 1].hi = list[i].hi;
		} else {
			out[k++] = list[i];
			open = count > 0;
		}
		if (open && out[k - 1].agg.count >= quota)
			open = false;
	}
	if (k < 2)
		return n;
	memcpy(list, out, k * sizeof(out[0]));
	return k;
}

/*
 * Splits [lo, hi), where we hold at least 2 records, into about
 * plan->pieces ranges along bucket boundaries. A piece that holds more
 * than its share of our records is cut again (up to 64 pieces), so that
 * records bunched in time still split about evenly and one message passes
 * over the levels where they are not spread. Neighbouring small pieces
 * are then joined, so that a range with few differences costs few
 * fingerprints.
 */
static cm_err split(step *st, proto_recon_key lo, proto_recon_key hi,
		    const split_plan *plan)
{
	piece list[SPLIT_RANGES_MAX];
	piece cuts[16];
	size_t n_list = 0, n_cuts = 0;
	uint64_t total = 0, quota;
	cm_err err;

	err = cut(st, lo, hi, list, &n_list);
	if (err)
		return err;
	for (size_t i = 0; i < n_list; i++)
		total += list[i].agg.count;
	quota = (total + plan->pieces - 1) / plan->pieces;

	for (;;) {
		size_t big = 0;
		proto_recon_key piece_lo;

		for (size_t i = 1; i < n_list; i++)
			if (list[i].agg.count > list[big].agg.count)
				big = i;
		piece_lo = big ? list[big - 1].hi : lo;
		if (list[big].agg.count <= quota ||
		    list[big].agg.count < 2 || list[big].hi - piece_lo < 2 ||
		    n_list + 15 > SPLIT_RANGES_MAX)
			break;
		err = cut(st, piece_lo, list[big].hi, cuts, &n_cuts);
		if (err)
			return err;
		memmove(&list[big + n_cuts], &list[big + 1],
			(n_list - big - 1) * sizeof(list[0]));
		memcpy(&list[big], cuts, n_cuts * sizeof(list[0]));
		n_list = merge_gaps(list, n_list + n_cuts - 1);
	}
	n_list = group_pieces(list, n_list, quota);
	return write_pieces(st, list, n_list, plan->sums);
}

/*
 * Plans the split of a range where the two sides hold `mine` and
 * `theirs` records and their fingerprints differ. The count difference
 * estimates the differences (at least 2 when the counts are equal: one
 * record on each side). Pieces aim at `pieces_per_diff` per difference
 * and at most half the records that a SUM answer may scan, so that the
 * next round can settle a piece with one difference by a SUM.
 */
static split_plan plan_split(const proto_recon_params *p, uint64_t mine,
			     uint64_t theirs)
{
	uint64_t diffs = mine > theirs ? mine - theirs : theirs - mine;
	uint64_t larger = mine > theirs ? mine : theirs;
	uint64_t pieces, by_scan = larger / (CM_RECON_FULL_MAX / 2) + 1;
	split_plan plan;

	if (diffs < 2)
		diffs = 2;
	pieces = diffs > SPLIT_RANGES_MAX ? SPLIT_RANGES_MAX
					  : diffs * p->pieces_per_diff;
	if (pieces < by_scan)
		pieces = by_scan;
	if (pieces > SPLIT_RANGES_MAX)
		pieces = SPLIT_RANGES_MAX;
	if (pieces < 2)
		pieces = 2;
	plan.pieces = (size_t)pieces;
	plan.sums = p->split_sums && pieces >= diffs;
	return plan;
}

/* Initiator: lists our records in [lo, hi) as short hashes. */
static cm_err offer_ids(step *st, proto_recon_key hi)
{
	size_t hash_len = st->s->params.hash_len;
	uint8_t *hashes = NULL;
	size_t n = 0;
	cm_err err;

	/* NOTE: past CM_RECON_IDS_MAX records under one key (same
	 * millisecond and same first 60 id bits) the rest are not offered. */
	err = own_items(st, st->lo, hi, CM_RECON_IDS_MAX, &n);
	if (err && err != CM_ERR_TOO_MANY)
		return err;
	if (n > 0) {
		hashes = malloc(n * hash_len);
		if (!hashes)
			return cm_errf(CM_ERR_NOMEM, "cannot allocate %zu "
				       "short hashes", n);
	}
	for (size_t i = 0; i < n; i++)
		proto_recon_short_hash(st->s->salt, st->items[i].id,
				       hashes + i * hash_len, hash_len);
	err = proto_recon_write(&st->w, hi, PROTO_RECON_IDS, hashes, n,
				hash_len);
	free(hashes);
	return err;
}

static int u64_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Responder: sends the ids of our records in [lo, hi) that are not among
 * the n ids `skip` (NULL: send all). */
static cm_err send_full(step *st, proto_recon_key hi, size_t n_items,
			const uint64_t *skip, size_t n_skip)
{
	size_t hash_len = st->s->params.hash_len;
	uint8_t *ids = NULL;
	size_t k = 0;
	cm_err err;

	if (n_items > 0) {
		ids = malloc(n_items * PROTO_ID_LEN);
		if (!ids)
			return cm_errf(CM_ERR_NOMEM, "cannot allocate %zu ids",
				       n_items);
	}
	for (size_t i = 0; i < n_items; i++) {
		uint8_t h[8] = {0};
		uint64_t v = 0;

		if (skip) {
			proto_recon_short_hash(st->s->salt, st->items[i].id, h,
					       hash_len);
			for (size_t j = 0; j < 8; j++)
				v = v << 8 | h[j];
			if (n_skip && bsearch(&v, skip, n_skip, sizeof(v),
					      u64_compare) != NULL)
				continue;
		}
		memcpy(ids + k * PROTO_ID_LEN, st->items[i].id, PROTO_ID_LEN);
		k++;
	}
	if (k == 0)
		err = proto_recon_write(&st->w, hi, PROTO_RECON_SKIP, NULL, 0,
					0);
	else
		err = proto_recon_write(&st->w, hi, PROTO_RECON_FULL, ids, k,
					PROTO_ID_LEN);
	free(ids);
	return err;
}

/* Responder: answers the initiator's short hashes of [lo, hi). */
static cm_err answer_ids(step *st, const proto_recon_range *r)
{
	size_t hash_len = st->s->params.hash_len;
	size_t n = 0;
	cm_err err;

	err = own_items(st, st->lo, r->hi, CM_RECON_FULL_MAX, &n);
	if (err == CM_ERR_TOO_MANY && r->hi - st->lo >= 2) {
		proto_recon_agg own;
		split_plan plan;

		err = own_agg(st, st->lo, r->hi, &own);
		if (err)
			return err;
		plan = plan_split(&st->s->params, own.count, r->n);
		plan.sums = false;
		return split(st, st->lo, r->hi, &plan);
	}
	if (err && err != CM_ERR_TOO_MANY)
		return err;

	for (size_t i = 0; i < r->n; i++) {
		uint64_t v = 0;

		for (size_t j = 0; j < 8; j++)
			v = v << 8 |
			    (j < hash_len ? r->data[i * hash_len + j] : 0);
		st->hashes[i] = v;
	}
	qsort(st->hashes, r->n, sizeof(uint64_t), u64_compare);
	return send_full(st, r->hi, n, r->n ? st->hashes : NULL, r->n);
}

/* Initiator: adds the ids of a FULL range to the want list. */
static cm_err take_full(proto_recon_session *s, const proto_recon_range *r)
{
	cm_err err;

	err = cm_array_reserve((void **)&s->want, &s->cap_want,
			       s->n_want + r->n, PROTO_ID_LEN);
	if (err)
		return err;
	if (r->n)
		memcpy(s->want + s->n_want * PROTO_ID_LEN, r->data,
		       r->n * PROTO_ID_LEN);
	s->n_want += r->n;
	return CM_OK;
}

/* Reads our aggregate of the current range and compares it with the
 * peer's count and fingerprint; *equal when both match. */
static cm_err compare_fp(step *st, const proto_recon_range *r,
			 proto_recon_agg *own, bool *equal)
{
	uint8_t fp[PROTO_RECON_FP_MAX];
	cm_err err;

	err = own_agg(st, st->lo, r->hi, own);
	if (err)
		return err;
	proto_recon_fingerprint(st->s->salt, own, fp, st->s->params.fp_len);
	*equal = own->count == r->count &&
		 memcmp(fp, r->data, st->s->params.fp_len) == 0;
	return CM_OK;
}

/*
 * Initiator: answers a differing range of the responder's. With one
 * record fewer than the responder, a SUM lets the responder find that
 * record, unless listing our few records is shorter. A few records are
 * listed, more are split.
 */
static cm_err initiator_differs(step *st, const proto_recon_range *r,
				const proto_recon_agg *own)
{
	const proto_recon_params *p = &st->s->params;
	size_t sum_cost = p->fp_len + PROTO_RECON_SUM_LOW_LEN + 2;
	split_plan plan;

	if (own->count == 0)
		return write_gap(st, r->hi);
	if (r->count == own->count + 1 && r->count <= CM_RECON_FULL_MAX &&
	    own->count * p->hash_len >= sum_cost)
		return write_fp(st, r->hi, own, true);
	if (own->count <= p->leaf || r->hi - st->lo < 2)
		return offer_ids(st, r->hi);
	plan = plan_split(p, own->count, r->count);
	return split(st, st->lo, r->hi, &plan);
}

/* Initiator: handles one range of the responder's payload. */
static cm_err initiator_range(step *st, const proto_recon_range *r)
{
	proto_recon_agg own;
	bool equal = false;
	cm_err err;

	switch (r->mode) {
	case PROTO_RECON_SKIP:
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP,
					 NULL, 0, 0);
	case PROTO_RECON_FULL:
		err = take_full(st->s, r);
		if (err)
			return err;
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP,
					 NULL, 0, 0);
	case PROTO_RECON_FP:
		break;
	case PROTO_RECON_IDS:
	case PROTO_RECON_SUM:
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "responder sent an initiator's mode");
	}

	err = compare_fp(st, r, &own, &equal);
	if (err)
		return err;
	if (equal)
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP,
					 NULL, 0, 0);
	return initiator_differs(st, r, &own);
}

/*
 * Responder: looks for the one record that a SUM range lacks. With one
 * record more than the initiator, the difference of the id sums is that
 * record's id when it is the only difference. A record whose id matches
 * the low 32 bits is sent when removing it from our aggregate gives the
 * initiator's fingerprint, which is salted, so the short sum only picks
 * candidates. *found is false when no record passes, and
 * when our records in the range are too many to scan.
 */
static cm_err find_missing(step *st, const proto_recon_range *r,
			   const proto_recon_agg *own, bool *found)
{
	uint32_t target = low32(own->sum) - r->sum_low;
	uint8_t fp[PROTO_RECON_FP_MAX];
	size_t n = 0;
	cm_err err;

	*found = false;
	err = own_items(st, st->lo, r->hi, CM_RECON_FULL_MAX, &n);
	if (err == CM_ERR_TOO_MANY)
		return CM_OK;
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		proto_recon_agg rest = *own;

		if (low32(st->items[i].id) != target)
			continue;
		proto_recon_agg_id(&rest, st->items[i].id, true);
		proto_recon_fingerprint(st->s->salt, &rest, fp,
					st->s->params.fp_len);
		if (memcmp(fp, r->data, st->s->params.fp_len) != 0)
			continue;
		*found = true;
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_FULL,
					 st->items[i].id, 1, PROTO_ID_LEN);
	}
	return CM_OK;
}

/*
 * Responder: answers a differing FP or SUM range of the initiator's. A
 * SUM with one record fewer is settled by that record's id. Very few
 * records are sent whole. With one record more than an FP shows, our own
 * FP asks the initiator for a SUM. Otherwise the range is split.
 */
static cm_err responder_differs(step *st, const proto_recon_range *r,
				const proto_recon_agg *own)
{
	const proto_recon_params *p = &st->s->params;
	bool one_more = own->count == r->count + 1;
	split_plan plan;
	size_t n = 0;
	cm_err err;

	if (own->count == 0)
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP, NULL,
					 0, 0);
	if (r->mode == PROTO_RECON_SUM && one_more) {
		bool found = false;

		err = find_missing(st, r, own, &found);
		if (err || found)
			return err;
	}
	if (own->count <= p->full_small || r->hi - st->lo < 2) {
		err = own_items(st, st->lo, r->hi, CM_RECON_FULL_MAX, &n);
		if (err && err != CM_ERR_TOO_MANY)
			return err;
		return send_full(st, r->hi, n, NULL, 0);
	}
	if (r->mode == PROTO_RECON_FP && one_more &&
	    own->count <= CM_RECON_FULL_MAX)
		return write_fp(st, r->hi, own, false);
	plan = plan_split(p, own->count, r->count);
	plan.sums = false;
	/* A SUM that one more record did not explain hides at least 3. */
	if (r->mode == PROTO_RECON_SUM && one_more && plan.pieces < 3)
		plan.pieces = 3;
	return split(st, st->lo, r->hi, &plan);
}

/* Responder: handles one range of the initiator's payload. */
static cm_err responder_range(step *st, const proto_recon_range *r)
{
	proto_recon_agg own;
	bool equal = false;
	cm_err err;

	switch (r->mode) {
	case PROTO_RECON_SKIP:
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP,
					 NULL, 0, 0);
	case PROTO_RECON_IDS:
		return answer_ids(st, r);
	case PROTO_RECON_FP:
	case PROTO_RECON_SUM:
		break;
	case PROTO_RECON_FULL:
		return cm_errf(CM_ERR_BAD_MESSAGE, "initiator sent full ids");
	}

	err = compare_fp(st, r, &own, &equal);
	if (err)
		return err;
	if (equal)
		return proto_recon_write(&st->w, r->hi, PROTO_RECON_SKIP,
					 NULL, 0, 0);
	return responder_differs(st, r, &own);
}

/* Bytes that one deferred range takes at most. */
static size_t defer_cost(const proto_recon_params *p)
{
	return PROTO_RECON_RANGE_HEAD_MAX + p->fp_len;
}

/* True when the payload broke its size, range or work budget, counting
 * room for one deferred range in this scope and in each of the
 * `scopes_left` that follow. */
static bool over_budget(const step *st, size_t scopes_left)
{
	const proto_recon_params *p = &st->s->params;

	/* Per scope: a SKIP that waits to be merged, and the deferred FP. */
	size_t ranges = 2 * (scopes_left + 1);

	return st->w.len + ranges * defer_cost(p) > p->msg_max ||
	       st->w.n_ranges + ranges > CM_RECON_RANGES_MAX ||
	       st->s->src->work > CM_RECON_WORK_MAX;
}

/* Answers the rest of a scope, from lo on, in a later round: one range
 * with our count and fingerprint, which the peer splits again unless it
 * matches.
 * NOTE: the range also covers ranges settled in earlier rounds, so a
 * responder may send ids there again and the initiator list them twice. */
static cm_err defer(step *st, proto_recon_key lo)
{
	proto_recon_agg own;
	cm_err err;

	err = own_agg(st, lo, PROTO_RECON_END, &own);
	if (err)
		return err;
	st->s->deferred++;
	return write_fp(st, PROTO_RECON_END, &own, false);
}

/* Takes back what was written since `before`, keeping the buffer. */
static void undo(proto_recon_writer *w, const proto_recon_writer *before)
{
	uint8_t *buf = w->buf;
	size_t cap = w->cap;
	bool failed = w->failed;

	*w = *before;
	w->buf = buf;
	w->cap = cap;
	w->failed = failed;
}

static cm_err step_init(step *st, proto_recon_session *s)
{
	memset(st, 0, sizeof(*st));
	st->s = s;
	st->items = malloc(ITEMS_SCRATCH * sizeof(*st->items));
	st->hashes = malloc(CM_RECON_IDS_MAX * sizeof(*st->hashes));
	if (!st->items || !st->hashes)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate reconciliation "
			       "scratch space");
	return CM_OK;
}

static cm_err step_finish(step *st, cm_err err, uint8_t **out, size_t *len)
{
	free(st->items);
	free(st->hashes);
	if (!err && st->w.failed)
		err = cm_errf(CM_ERR_NOMEM, "cannot grow a payload of %zu "
			      "bytes", st->w.len);
	if (err) {
		free(st->w.buf);
		return err;
	}
	*out = st->w.buf;
	*len = st->w.len;
	return CM_OK;
}

static bool params_valid(const proto_recon_params *p)
{
	return p->fp_len >= PROTO_RECON_FP_MIN &&
	       p->fp_len <= PROTO_RECON_FP_MAX &&
	       p->hash_len >= PROTO_RECON_HASH_MIN &&
	       p->hash_len <= PROTO_RECON_HASH_MAX && p->leaf >= 1 &&
	       p->leaf <= CM_RECON_IDS_MAX &&
	       p->full_small <= CM_RECON_FULL_MAX &&
	       p->pieces_per_diff >= 1 &&
	       p->pieces_per_diff <= SPLIT_RANGES_MAX;
}

cm_err proto_recon_first(proto_recon_session *s, uint8_t **out, size_t *len)
{
	/* Nothing is known of the peer yet, so the first split takes as
	 * many pieces as a split may. */
	const split_plan first_plan = {.pieces = SPLIT_RANGES_MAX};
	step st;
	cm_err err;

	*out = NULL;
	*len = 0;
	if (!s->initiator || !params_valid(&s->params) || s->n_scopes == 0)
		return cm_errf(CM_ERR_USAGE, "invalid reconciliation session");
	err = step_init(&st, s);
	for (size_t i = 0; i < s->n_scopes && !err; i++) {
		proto_recon_agg own;

		st.scope = i;
		err = own_agg(&st, 0, PROTO_RECON_END, &own);
		if (err)
			break;
		/* One scope (a mirror's): split at once, which saves a round.
		 * Many (one per author): their whole fingerprints first. */
		st.lo = 0;
		if (own.count <= s->params.leaf)
			err = offer_ids(&st, PROTO_RECON_END);
		else if (s->n_scopes > 1)
			err = write_fp(&st, PROTO_RECON_END, &own, false);
		else
			err = split(&st, 0, PROTO_RECON_END, &first_plan);
		proto_recon_write_flush(&st.w);
	}
	s->round = 1;
	return step_finish(&st, err, out, len);
}

/* Rejects a mode that the peer's role never sends. */
static cm_err check_modes(const proto_recon_session *s,
			  const proto_recon_range *ranges, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		proto_recon_mode m = ranges[i].mode;

		if (s->initiator &&
		    (m == PROTO_RECON_IDS || m == PROTO_RECON_SUM))
			return cm_errf(CM_ERR_BAD_MESSAGE, "responder sent %s",
				       m == PROTO_RECON_IDS ? "short hashes"
							    : "an id sum");
		if (!s->initiator && m == PROTO_RECON_FULL)
			return cm_errf(CM_ERR_BAD_MESSAGE,
				       "initiator sent full ids");
	}
	return CM_OK;
}

cm_err proto_recon_next(proto_recon_session *s, const uint8_t *in,
			size_t in_len, uint8_t **out, size_t *len, bool *done)
{
	proto_recon_range *ranges = NULL;
	size_t n_ranges = 0;
	proto_recon_key lo = 0;
	proto_recon_key defer_lo = 0;
	bool deferring = false;
	step st;
	cm_err err;

	*out = NULL;
	*len = 0;
	*done = false;
	if (!params_valid(&s->params))
		return cm_errf(CM_ERR_USAGE, "invalid reconciliation session");
	if (s->round >= CM_RECON_ROUNDS_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "session past %d rounds",
			       CM_RECON_ROUNDS_MAX);
	s->round++;
	err = proto_recon_decode(in, in_len, s->n_scopes, s->params.fp_len,
				 s->params.hash_len, &ranges, &n_ranges);
	if (err)
		return err;

	err = check_modes(s, ranges, n_ranges);
	if (err) {
		free(ranges);
		return err;
	}
	err = step_init(&st, s);
	s->deferred = 0;
	for (size_t i = 0; i < n_ranges && !err; i++) {
		const proto_recon_range *r = &ranges[i];
		proto_recon_writer before = st.w;

		/* Once deferring, every range of the scope waits, FULL ones
		 * too: the responder sends their ids again later. A FULL
		 * range writes no more than a SKIP, so it never starts the
		 * deferral, and its ids are never taken twice. */
		if (!deferring) {
			st.lo = lo;
			err = s->initiator ? initiator_range(&st, r)
					   : responder_range(&st, r);
			if (!err && r->mode != PROTO_RECON_FULL &&
			    over_budget(&st, s->n_scopes - st.scope - 1)) {
				undo(&st.w, &before);
				deferring = true;
				defer_lo = lo;
			}
		}
		lo = r->hi;
		if (r->hi == PROTO_RECON_END) {
			if (deferring && !err)
				err = defer(&st, defer_lo);
			defer_lo = 0;
			proto_recon_write_flush(&st.w);
			st.scope++;
			lo = 0;
		}
	}
	free(ranges);
	*done = !st.w.active;
	return step_finish(&st, err, out, len);
}

void proto_recon_session_free(proto_recon_session *s)
{
	free(s->want);
	s->want = NULL;
	s->n_want = 0;
	s->cap_want = 0;
}
