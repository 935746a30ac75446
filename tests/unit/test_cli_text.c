/* Unit tests of the CLI's text escapes (cli/cli_text.c): what they
 * escape, how cli_put_lines breaks lines, and where cli_escape cuts
 * text that does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

/* Returns what cli_put_text writes for s; the caller frees it. */
static char *put_text(const char *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	cli_put_text(f, s);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void escape_keeps_text_that_fits(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(cli_escape("0123456789abcd", out, sizeof(out)),
			    "0123456789abcd");
	assert_string_equal(cli_escape("0123456789abcde", out, sizeof(out)),
			    "0123456789abcde");
	assert_string_equal(cli_escape("", out, sizeof(out)), "");
}

static void escape_cuts_text_too_long(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(cli_escape("0123456789abcdef", out, sizeof(out)),
			    "0123456789ab...");
	assert_string_equal(cli_escape("0123456789abcdefghij", out,
				       sizeof(out)),
			    "0123456789ab...");
}

static void escape_counts_escaped_length(void **state)
{
	char out[16];

	(void)state;
	/* 14 bytes of input, 15 once the newline is escaped: fits. */
	assert_string_equal(cli_escape("123456789ab\ncd", out, sizeof(out)),
			    "123456789ab\\ncd");
	/* 15 bytes of input, 16 escaped: cut before the escape. */
	assert_string_equal(cli_escape("0123456789ab\ncd", out, sizeof(out)),
			    "0123456789ab...");
}

static void escape_cuts_at_character(void **state)
{
	char out[8];

	(void)state;
	/* Before "..." and its NUL, 4 bytes are left: "abc" fits, and the
	 * 2-byte é after it does not. */
	assert_string_equal(cli_escape("abc\xc3\xa9xyzw", out, sizeof(out)),
			    "abc...");
	/* An escape is never cut in half either. */
	assert_string_equal(cli_escape("ab\x01xyzw", out, sizeof(out)),
			    "ab...");
}

static void escape_smallest_cap(void **state)
{
	char out[4];

	(void)state;
	assert_string_equal(cli_escape("abc", out, sizeof(out)), "abc");
	assert_string_equal(cli_escape("abcd", out, sizeof(out)), "...");
}

static void put_text_escapes_controls(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"a\nb", "a\\nb"},
		{"a\tb", "a\\tb"},
		{"a\rb", "a\\rb"},
		{"a\x1b[31mb", "a\\x1b[31mb"},
		{"a\x7f", "a\\x7f"},
		{"a\xc2\x85", "a\\u{85}"},
		{"a\xe2\x80\xae", "a\\u{202e}"},
		{"a\xe2\x80\xa8", "a\\u{2028}"},
		{"a\xe2\x81\xa6", "a\\u{2066}"},
		{"a\xff", "a\\xff"},
		{"Caf\xc3\xa9", "Caf\xc3\xa9"},
		{"C:\\temp", "C:\\temp"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = put_text(cases[i].in);

		assert_string_equal(text, cases[i].out);
		free(text);
	}
}

static void put_lines_indents_newlines(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	cli_put_lines(f, "one\ntwo\tx\n\x1b[2J", 3);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(text, "one\n   two\\tx\n   \\x1b[2J");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escape_keeps_text_that_fits),
		cmocka_unit_test(escape_cuts_text_too_long),
		cmocka_unit_test(escape_counts_escaped_length),
		cmocka_unit_test(escape_cuts_at_character),
		cmocka_unit_test(escape_smallest_cap),
		cmocka_unit_test(put_text_escapes_controls),
		cmocka_unit_test(put_lines_indents_newlines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
