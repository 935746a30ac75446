/*
 * fuzz_text.c - libFuzzer harness for the text parsers that read input
 * from clients and files: times (cm_time_parse, which the CLI and the
 * HTTP API's since and until use), product references
 * (proto_product_check) and the config file (cm_config_load_text).
 *
 * Input: a selector byte, then the text. Besides the sanitizers it
 * checks that a parsed time prints as RFC 3339 and parses back to the
 * same value, and that an accepted product reference fits its limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_config.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "proto_product.h"

/* Maximum length of a time text tried; real ones are under 32 bytes. */
#define TIME_TEXT_MAX 64
/* Times up to the year 9999, which RFC 3339 can write. */
#define TIME_MS_MAX 253402300799999ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies data[size] into a NUL-terminated string in out[cap]. Returns
 * false when it does not fit or contains a NUL. */
static bool to_text(const uint8_t *data, size_t size, char *out, size_t cap)
{
	if (size >= cap || memchr(data, '\0', size))
		return false;
	memcpy(out, data, size);
	out[size] = '\0';
	return true;
}

static void fuzz_time(const uint8_t *data, size_t size)
{
	char text[TIME_TEXT_MAX], printed[32];
	uint64_t ms, again;

	if (!to_text(data, size, text, sizeof(text)) ||
	    !cm_time_parse(text, &ms) || ms > TIME_MS_MAX)
		return;
	cm_time_rfc3339(ms, printed);
	if (!cm_time_parse(printed, &again) || again != ms) {
		fprintf(stderr, "%s parsed as %llu, printed as %s\n", text,
			(unsigned long long)ms, printed);
		abort();
	}
}

static void fuzz_product(const uint8_t *data, size_t size)
{
	char text[CM_PRODUCT_MAX + 64];

	if (!to_text(data, size, text, sizeof(text)))
		return;
	if (proto_product_check(text) == CM_OK &&
	    strlen(text) > CM_PRODUCT_MAX) {
		fprintf(stderr, "product reference of %zu bytes accepted\n",
			strlen(text));
		abort();
	}
}

static void fuzz_config(const uint8_t *data, size_t size)
{
	cm_config *config = NULL;

	if (cm_config_new(NULL, &config) != CM_OK)
		return;
	(void)cm_config_load_text(config, "fuzz", (const char *)data, size);
	cm_config_free(&config);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_time(data + 1, size - 1);
		break;
	case 1:
		fuzz_product(data + 1, size - 1);
		break;
	default:
		fuzz_config(data + 1, size - 1);
		break;
	}
	return 0;
}
