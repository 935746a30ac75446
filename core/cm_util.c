#define _GNU_SOURCE
#include "cm_util.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const char hex_digits[] = "0123456789abcdef";

void cm_hex_encode(const uint8_t *bin, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex_digits[bin[i] >> 4];
		out[2 * i + 1] = hex_digits[bin[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool cm_hex_decode(const char *hex, uint8_t *bin, size_t len)
{
	if (strlen(hex) != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]);
		int lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		bin[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool cm_hex_valid_prefix(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (hex_value(*s) < 0)
			return false;
	return true;
}

void cm_hex_short(const uint8_t *bin, char out[9])
{
	cm_hex_encode(bin, 4, out);
}

uint64_t cm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t cm_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cm_time_rfc3339(uint64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

bool cm_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Checks that tm is a real UTC date and time. strptime accepts day 31 in
 * any month and second 60, which timegm would roll over into the next
 * month or minute instead of rejecting. */
static bool tm_is_calendar_time(const struct tm *tm)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	int year = tm->tm_year + 1900;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	int max_day;

	if (tm->tm_mon < 0 || tm->tm_mon > 11)
		return false;
	max_day = days[tm->tm_mon] + (tm->tm_mon == 1 && leap);
	return tm->tm_mday >= 1 && tm->tm_mday <= max_day &&
	       tm->tm_hour <= 23 && tm->tm_min <= 59 && tm->tm_sec <= 59;
}

bool cm_time_parse(const char *s, uint64_t *ms)
{
	struct tm tm;
	const char *rest;
	unsigned frac = 0;
	time_t secs;

	if (cm_parse_u64(s, ms))
		return true;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%d", &tm);
	if (rest == NULL)
		return false;
	if (*rest == 'T') {
		rest = strptime(rest + 1, "%H:%M:%S", &tm);
		if (rest == NULL)
			return false;
		if (*rest == '.') {
			int digits = 0;

			for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
				if (digits++ < 3)
					frac = frac * 10 + (unsigned)(*rest - '0');
			}
			if (digits == 0)
				return false;
			for (; digits < 3; digits++)
				frac *= 10;
		}
		if (*rest != 'Z' || rest[1] != '\0')
			return false;
	} else if (*rest != '\0') {
		return false;
	}
	if (!tm_is_calendar_time(&tm))
		return false;
	secs = timegm(&tm);
	if (secs < 0)
		return false;
	*ms = (uint64_t)secs * 1000 + frac;
	return true;
}

size_t cm_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t len = strlen(src);

	if (cap > 0) {
		size_t n = len < cap - 1 ? len : cap - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

/* The capacity of an array's first allocation, in items. */
#define ARRAY_FIRST_CAP 16

cm_err cm_array_reserve(void **items, size_t *cap, size_t need,
			size_t item_size)
{
	size_t max_items, new_cap;
	void *old, *grown;

	assert(item_size > 0);
	if (need <= *cap)
		return CM_OK;
	max_items = SIZE_MAX / item_size;
	if (need > max_items)
		return cm_errf(CM_ERR_NOMEM, "%zu items of %zu bytes overflow "
			       "size_t", need, item_size);
	new_cap = *cap > max_items / 2 ? max_items : 2 * *cap;
	if (new_cap < ARRAY_FIRST_CAP)
		new_cap = ARRAY_FIRST_CAP;
	if (new_cap > max_items)
		new_cap = max_items;
	if (new_cap < need)
		new_cap = need;

	/* The caller's pointer has its own type, such as uint8_t *, so it is
	 * read and written with memcpy and never through a void * lvalue. */
	memcpy(&old, items, sizeof(old));
	grown = realloc(old, new_cap * item_size);
	if (grown == NULL)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate %zu items of "
			       "%zu bytes", new_cap, item_size);
	memcpy(items, &grown, sizeof(grown));
	*cap = new_cap;
	return CM_OK;
}

void cm_addr_source(const struct sockaddr *sa,
		    uint8_t out[CM_ADDR_SOURCE_LEN])
{
	const struct in6_addr *v6;

	memset(out, 0, CM_ADDR_SOURCE_LEN);
	if (sa->sa_family == AF_INET) {
		out[0] = AF_INET;
		memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	v6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(v6)) {
		out[0] = AF_INET;
		memcpy(out + 1, v6->s6_addr + 12, 4);
	} else {
		out[0] = AF_INET6;
		memcpy(out + 1, v6->s6_addr, 8);
	}
}
