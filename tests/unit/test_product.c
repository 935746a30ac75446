/* test_product.c - typed product references (proto_product_check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "proto_product.h"

struct product_case {
	const char *ref;
	cm_err expected;
};

/* Runs every case and reports each mismatch, then fails once. */
static void run_cases(const struct product_case *cases, size_t n)
{
	size_t failures = 0;

	for (size_t i = 0; i < n; i++) {
		cm_err err = proto_product_check(cases[i].ref);

		if (err != cases[i].expected) {
			print_error("\"%s\": got %s (%s), expected %s\n",
				    cases[i].ref, cm_err_name(err),
				    cm_err_detail(),
				    cm_err_name(cases[i].expected));
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void gtin_valid(void **state)
{
	static const struct product_case cases[] = {
		{ "gtin:96385074", CM_OK },        /* GTIN-8 */
		{ "gtin:73513537", CM_OK },        /* GTIN-8 */
		{ "gtin:036000291452", CM_OK },    /* GTIN-12 (UPC-A) */
		{ "gtin:4006381333931", CM_OK },   /* GTIN-13 */
		{ "gtin:10614141000415", CM_OK },  /* GTIN-14 */
		{ "gtin:00012345600012", CM_OK },  /* GTIN-14 */
		{ "gtin:9780306406157", CM_OK },   /* an ISBN as GTIN-13 */
	};

	(void)state;
	RUN(cases);
}

/* The GTINs of the clips in samples/. */
static void gtin_samples_valid(void **state)
{
	static const struct product_case cases[] = {
		{ "gtin:2000000001012", CM_OK },
		{ "gtin:2000000002026", CM_OK },
		{ "gtin:2000000003030", CM_OK },
		{ "gtin:2000000004044", CM_OK },
	};

	(void)state;
	RUN(cases);
}

static void gtin_wrong_check_digit(void **state)
{
	static const struct product_case cases[] = {
		{ "gtin:96385075", CM_ERR_BAD_GTIN },
		{ "gtin:036000291453", CM_ERR_BAD_GTIN },
		{ "gtin:4006381333932", CM_ERR_BAD_GTIN },
		{ "gtin:10614141000416", CM_ERR_BAD_GTIN },
		{ "gtin:2000000001013", CM_ERR_BAD_GTIN },
		{ "gtin:2000000004040", CM_ERR_BAD_GTIN },
		/* two swapped digits change the weighted sum */
		{ "gtin:0400638133393", CM_ERR_BAD_GTIN },
	};

	(void)state;
	RUN(cases);
}

static void gtin_malformed(void **state)
{
	static const struct product_case cases[] = {
		{ "gtin:", CM_ERR_BAD_PRODUCT },
		{ "gtin:9638507", CM_ERR_BAD_PRODUCT },          /* 7 digits */
		{ "gtin:963850740", CM_ERR_BAD_PRODUCT },        /* 9 digits */
		{ "gtin:40063813339310", CM_ERR_BAD_GTIN },      /* 14, bad */
		{ "gtin:400638133393100", CM_ERR_BAD_PRODUCT },  /* 15 digits */
		{ "gtin:400638133393a", CM_ERR_BAD_PRODUCT },
		{ "gtin: 4006381333931", CM_ERR_BAD_PRODUCT },
		{ "gtin:4006381333931 ", CM_ERR_BAD_PRODUCT },
		{ "gtin:-4006381333931", CM_ERR_BAD_PRODUCT },
		{ "GTIN:4006381333931", CM_ERR_BAD_PRODUCT },
		{ "4006381333931", CM_ERR_BAD_PRODUCT },
		{ "", CM_ERR_BAD_PRODUCT },
	};

	(void)state;
	RUN(cases);
}

static void isbn_cases(void **state)
{
	static const struct product_case cases[] = {
		{ "isbn:080442957X", CM_OK },     /* ISBN-10 ending in X */
		{ "isbn:097522980X", CM_OK },
		{ "isbn:0306406152", CM_OK },
		{ "isbn:9780306406157", CM_OK },  /* ISBN-13 */
		{ "isbn:0306406153", CM_ERR_BAD_PRODUCT },
		{ "isbn:0804429579", CM_ERR_BAD_PRODUCT },
		{ "isbn:080442957x", CM_ERR_BAD_PRODUCT },  /* lowercase x */
		{ "isbn:X804429570", CM_ERR_BAD_PRODUCT },  /* X not last */
		{ "isbn:9780306406158", CM_ERR_BAD_PRODUCT },
		{ "isbn:4006381333931", CM_ERR_BAD_PRODUCT }, /* not 978/979 */
		{ "isbn:978-0306406157", CM_ERR_BAD_PRODUCT },
		{ "isbn:030640615", CM_ERR_BAD_PRODUCT },
		{ "isbn:", CM_ERR_BAD_PRODUCT },
	};

	(void)state;
	RUN(cases);
}

static void asin_cases(void **state)
{
	static const struct product_case cases[] = {
		{ "asin:B07XJ8C8F5", CM_OK },
		{ "asin:0306406152", CM_OK },
		{ "asin:b07xj8c8f5", CM_ERR_BAD_PRODUCT },
		{ "asin:B07XJ8C8F", CM_ERR_BAD_PRODUCT },
		{ "asin:B07XJ8C8F55", CM_ERR_BAD_PRODUCT },
		{ "asin:B07XJ8C-F5", CM_ERR_BAD_PRODUCT },
	};

	(void)state;
	RUN(cases);
}

static void url_cases(void **state)
{
	static const struct product_case cases[] = {
		{ "url:http://example.com", CM_OK },
		{ "url:https://example.com/p/123?ref=clip#top", CM_OK },
		{ "url:https://shop.example.com:8443/item", CM_OK },
		{ "url:https://user@example.com/", CM_OK },
		{ "url:http://[2001:db8::1]:80/x", CM_OK },
		{ "url:https://example.com/caf\xc3\xa9", CM_OK },
		{ "url:ftp://example.com/file", CM_ERR_BAD_PRODUCT },
		{ "url:javascript:alert(1)", CM_ERR_BAD_PRODUCT },
		{ "url:https://exa mple.com", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com/a b", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com/\t", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com/\x7f", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com/\xc2\xa0", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com/\xff", CM_ERR_BAD_PRODUCT },
		{ "url:HTTPS://example.com", CM_ERR_BAD_PRODUCT },
		{ "url:https://", CM_ERR_BAD_PRODUCT },
		{ "url:https:///path", CM_ERR_BAD_PRODUCT },
		{ "url:https://user@/path", CM_ERR_BAD_PRODUCT },
		{ "url:https://:443/", CM_ERR_BAD_PRODUCT },
		{ "url:https://example.com:44x/", CM_ERR_BAD_PRODUCT },
		{ "url:http://[]/", CM_ERR_BAD_PRODUCT },
		{ "url:http://[2001:db8::1/", CM_ERR_BAD_PRODUCT },
		{ "url:example.com", CM_ERR_BAD_PRODUCT },
		{ "url:", CM_ERR_BAD_PRODUCT },
	};

	(void)state;
	RUN(cases);
}

static void unknown_prefix(void **state)
{
	static const struct product_case cases[] = {
		{ "ean:4006381333931", CM_ERR_BAD_PRODUCT },
		{ "https://example.com", CM_ERR_BAD_PRODUCT },
		{ "\x01\x02", CM_ERR_BAD_PRODUCT },
	};

	(void)state;
	RUN(cases);
}

static void length_limit(void **state)
{
	char ref[CM_PRODUCT_MAX + 2];
	size_t prefix = strlen("url:https://example.com/");

	(void)state;
	memcpy(ref, "url:https://example.com/", prefix);
	memset(ref + prefix, 'a', CM_PRODUCT_MAX - prefix);
	ref[CM_PRODUCT_MAX] = '\0';
	assert_int_equal(proto_product_check(ref), CM_OK);

	ref[CM_PRODUCT_MAX] = 'a';
	ref[CM_PRODUCT_MAX + 1] = '\0';
	assert_int_equal(proto_product_check(ref), CM_ERR_BAD_PRODUCT);
	assert_string_equal(cm_err_detail(),
			    "product reference is over 512 bytes");
}

static void gtin_detail(void **state)
{
	(void)state;
	assert_int_equal(proto_product_check("gtin:2000000001013"),
			 CM_ERR_BAD_GTIN);
	assert_string_equal(cm_err_detail(),
			    "gtin 2000000001013 ends in check digit 3, "
			    "expected 2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gtin_valid),
		cmocka_unit_test(gtin_samples_valid),
		cmocka_unit_test(gtin_wrong_check_digit),
		cmocka_unit_test(gtin_malformed),
		cmocka_unit_test(isbn_cases),
		cmocka_unit_test(asin_cases),
		cmocka_unit_test(url_cases),
		cmocka_unit_test(unknown_prefix),
		cmocka_unit_test(length_limit),
		cmocka_unit_test(gtin_detail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
