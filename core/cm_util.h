/* cm_util.h - hex encoding, time, small string helpers and growing
 * arrays. */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"

/* Writes 2*len lowercase hex chars and a NUL to out (size 2*len+1). */
void cm_hex_encode(const uint8_t *bin, size_t len, char *out);

/*
 * Decodes exactly 2*len hex chars (either case) from hex into bin.
 * Returns false on a wrong length or a non-hex char.
 */
bool cm_hex_decode(const char *hex, uint8_t *bin, size_t len);

/* Returns true when s is 1 or more hex chars only. */
bool cm_hex_valid_prefix(const char *s);

/* Writes the first 8 hex chars of bin (for logs) into out[9]. */
void cm_hex_short(const uint8_t *bin, char out[9]);

/* Milliseconds since the Unix epoch, UTC. */
uint64_t cm_now_ms(void);

/* Monotonic milliseconds, for deadlines and intervals. */
uint64_t cm_mono_ms(void);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-12-04T15:47:00.123Z") into out[32]. */
void cm_time_rfc3339(uint64_t ms, char out[32]);

/*
 * Parses an RFC 3339 UTC time ("2026-12-04T15:47:00Z", optional .mmm),
 * a date ("2026-12-04", midnight UTC) or a plain integer of ms since the
 * epoch. Returns false when s is none of these.
 */
bool cm_time_parse(const char *s, uint64_t *ms);

/* Copies src into dst[cap] with truncation and NUL; returns strlen(src). */
size_t cm_strlcpy(char *dst, const char *src, size_t cap);

/* Parses a whole decimal unsigned number; false on junk or overflow. */
bool cm_parse_u64(const char *s, uint64_t *out);

/*
 * Makes room for at least `need` items of item_size bytes in the heap
 * array *items, which has room for *cap items (NULL and 0 when empty).
 * A short array is realloc'd to the largest of need, twice *cap and 16
 * items, so appending one item at a time costs amortised constant time.
 * *items and *cap change only on success. Fails with CM_ERR_NOMEM when
 * need * item_size overflows size_t or realloc fails, and *items then
 * still belongs to the caller. Pass the address of the caller's pointer,
 * for example (void **)&keys for a uint8_t *keys.
 */
cm_err cm_array_reserve(void **items, size_t *cap, size_t need,
			size_t item_size);

#define CM_ADDR_SOURCE_LEN 9

struct sockaddr;

/*
 * Writes the source that per-address limits count for a client address:
 * the family byte, then the IPv4 address (also when mapped into IPv6 by
 * a dual-stack socket) or the IPv6 /64. All zeros for other families.
 */
void cm_addr_source(const struct sockaddr *sa,
		    uint8_t out[CM_ADDR_SOURCE_LEN]);

#endif
