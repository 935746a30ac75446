/*
 * proto_product.c - typed product references: gtin:, isbn:, asin:, url:.
 *
 * Each type accepts one spelling only (no spaces, hyphens or lowercase
 * variants), so the same product is referred to by the same string and
 * feed filters can compare references bytewise.
 */
#include "proto_product.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cm_limits.h"
#include "proto_canon.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/*
 * Returns the GS1 check digit of the len - 1 digits before the last one:
 * weights 3 and 1 alternate leftwards, starting with 3 next to the check
 * digit. GTIN-8/12/13/14 and ISBN-13 share this rule.
 */
static int gs1_check_digit(const char *digits, size_t len)
{
	unsigned sum = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		unsigned d = (unsigned)(digits[len - 2 - i] - '0');

		sum += i % 2 == 0 ? 3 * d : d;
	}
	return (int)((10 - sum % 10) % 10);
}

static cm_err check_gtin(const char *gtin)
{
	size_t len = strlen(gtin);
	int expected;

	if (len != 8 && len != 12 && len != 13 && len != 14)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "gtin has %zu characters, expected 8, 12, 13 or "
			       "14 digits",
			       len);
	if (!all_digits(gtin, len))
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "gtin has a character other than 0-9");

	expected = gs1_check_digit(gtin, len);
	if (gtin[len - 1] - '0' != expected)
		return cm_errf(CM_ERR_BAD_GTIN,
			       "gtin %s ends in check digit %c, expected %d",
			       gtin, gtin[len - 1], expected);
	return CM_OK;
}

/* ISBN-10: digit i (from 0) has weight 10 - i, 'X' is 10, and the sum
 * must be a multiple of 11. */
static cm_err check_isbn10(const char *isbn)
{
	unsigned sum = 0;

	if (!all_digits(isbn, 9) || !(is_digit(isbn[9]) || isbn[9] == 'X'))
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "isbn of 10 characters must be 9 digits and a "
			       "digit or 'X'");
	for (unsigned i = 0; i < 10; i++) {
		unsigned d = isbn[i] == 'X' ? 10 : (unsigned)(isbn[i] - '0');

		sum += (10 - i) * d;
	}
	if (sum % 11 != 0)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "isbn %s has a wrong check digit", isbn);
	return CM_OK;
}

static cm_err check_isbn13(const char *isbn)
{
	int expected;

	if (!all_digits(isbn, 13))
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "isbn of 13 characters must be 13 digits");
	if (strncmp(isbn, "978", 3) != 0 && strncmp(isbn, "979", 3) != 0)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "isbn %s does not start with 978 or 979", isbn);

	expected = gs1_check_digit(isbn, 13);
	if (isbn[12] - '0' != expected)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "isbn %s ends in check digit %c, expected %d",
			       isbn, isbn[12], expected);
	return CM_OK;
}

static cm_err check_isbn(const char *isbn)
{
	size_t len = strlen(isbn);

	if (len == 10)
		return check_isbn10(isbn);
	if (len == 13)
		return check_isbn13(isbn);
	return cm_errf(CM_ERR_BAD_PRODUCT,
		       "isbn has %zu characters, expected 10 or 13", len);
}

static cm_err check_asin(const char *asin)
{
	size_t len = strlen(asin);

	if (len != 10)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "asin has %zu characters, expected 10", len);
	for (size_t i = 0; i < len; i++) {
		char c = asin[i];

		if (!is_digit(c) && !(c >= 'A' && c <= 'Z'))
			return cm_errf(CM_ERR_BAD_PRODUCT,
				       "asin has a character other than A-Z "
				       "and 0-9 at position %zu",
				       i);
	}
	return CM_OK;
}

/* Rejects invalid UTF-8, control characters and whitespace anywhere in
 * the URL. */
static cm_err check_url_text(const char *url)
{
	const uint8_t *s = (const uint8_t *)url;
	size_t len = strlen(url);
	size_t i = 0;

	while (i < len) {
		size_t at = i;
		uint32_t cp;

		if (!proto_utf8_next(s, len, &i, &cp))
			return cm_errf(CM_ERR_BAD_PRODUCT,
				       "url has invalid UTF-8 at byte %zu", at);
		if (proto_is_control(cp) || proto_is_space(cp))
			return cm_errf(CM_ERR_BAD_PRODUCT,
				       "url has a space or control character "
				       "at byte %zu",
				       at);
	}
	return CM_OK;
}

/*
 * Checks the authority of an http(s) URL (the text after "//" up to the
 * first '/', '?' or '#'): optional "userinfo@", then a non-empty host
 * (a bracketed IPv6 literal or a name), then an optional ":port" of
 * digits.
 */
static cm_err check_authority(const char *auth, size_t len)
{
	const char *at = memchr(auth, '@', len);
	const char *host = auth;
	const char *end = auth + len;
	const char *port;

	/* Userinfo cannot contain '@', so the last '@' ends it. */
	while (at) {
		host = at + 1;
		at = memchr(host, '@', (size_t)(end - host));
	}

	if (host < end && *host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close || close == host + 1)
			return cm_errf(CM_ERR_BAD_PRODUCT,
				       "url has an unterminated or empty IPv6 "
				       "host");
		port = close + 1;
		if (port < end && *port != ':')
			return cm_errf(CM_ERR_BAD_PRODUCT,
				       "url has text after its IPv6 host");
	} else {
		port = memchr(host, ':', (size_t)(end - host));
		if (!port)
			port = end;
		if (port == host)
			return cm_errf(CM_ERR_BAD_PRODUCT, "url has no host");
	}

	if (port < end && !all_digits(port + 1, (size_t)(end - port - 1)))
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "url port is not a decimal number");
	return CM_OK;
}

static cm_err check_url(const char *url)
{
	const char *rest;
	cm_err err;

	if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "url must start with http:// or https://");

	err = check_url_text(url);
	if (err)
		return err;
	return check_authority(rest, strcspn(rest, "/?#"));
}

cm_err proto_product_check(const char *ref)
{
	static const struct {
		const char *prefix;
		cm_err (*check)(const char *value);
	} types[] = {
		{ "gtin:", check_gtin },
		{ "isbn:", check_isbn },
		{ "asin:", check_asin },
		{ "url:", check_url },
	};
	char shown[PROTO_SHOWN_MAX];
	size_t len = strnlen(ref, CM_PRODUCT_MAX + 1);

	if (len > CM_PRODUCT_MAX)
		return cm_errf(CM_ERR_BAD_PRODUCT,
			       "product reference is over %d bytes",
			       CM_PRODUCT_MAX);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = strlen(types[i].prefix);

		if (strncmp(ref, types[i].prefix, n) == 0)
			return types[i].check(ref + n);
	}
	return cm_errf(CM_ERR_BAD_PRODUCT,
		       "product reference \"%s\" does not start with gtin:, "
		       "isbn:, asin: or url:",
		       proto_printable((const uint8_t *)ref, len, shown));
}
