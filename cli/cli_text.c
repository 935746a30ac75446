/* cli_text.c - printing untrusted text on a terminal: record fields from
 * peers and values echoed in error messages. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "proto_canon.h"

/* Returns whether code point c reorders the text around it on a
 * terminal that implements the Unicode bidirectional algorithm: the
 * embeddings, overrides and isolates, and the implicit marks. */
static bool is_bidi_control(uint32_t c)
{
	return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	       c == 0x200e || c == 0x200f || c == 0x061c;
}

/* Returns the letter that follows the backslash in the C escape of
 * newline, tab or carriage return c. */
static char short_escape(uint32_t c)
{
	switch (c) {
	case '\n':
		return 'n';
	case '\t':
		return 't';
	default:
		return 'r';
	}
}

/* Writes the escaped form of the character at the start of s (the
 * NUL-terminated string at s) into piece[16] and returns how many bytes
 * of s it takes. */
static size_t escape_one(const char *s, char piece[16])
{
	const uint8_t *u = (const uint8_t *)s;
	size_t len = 0;
	uint32_t c;

	/* A code point takes at most 4 bytes, and a NUL ends s earlier. */
	if (!proto_utf8_next(u, strnlen(s, 4), &len, &c)) {
		snprintf(piece, 16, "\\x%02x", u[0]);
		return 1;
	}
	if (c == '\n' || c == '\t' || c == '\r')
		snprintf(piece, 16, "\\%c", short_escape(c));
	else if (c < 0x20 || c == 0x7f)
		snprintf(piece, 16, "\\x%02x", c);
	else if ((c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
		 is_bidi_control(c))
		snprintf(piece, 16, "\\u{%x}", c);
	else {
		memcpy(piece, s, len);
		piece[len] = '\0';
	}
	return len;
}

void cli_put_text(FILE *f, const char *s)
{
	char piece[16];

	while (*s != '\0') {
		s += escape_one(s, piece);
		fputs(piece, f);
	}
}

/* Returns the length of the escaped form of s. */
static size_t escaped_len(const char *s)
{
	char piece[16];
	size_t len = 0;

	while (*s != '\0') {
		s += escape_one(s, piece);
		len += strlen(piece);
	}
	return len;
}

void cli_put_lines(FILE *f, const char *s, int indent)
{
	char piece[16];

	while (*s != '\0') {
		if (*s == '\n') {
			fprintf(f, "\n%*s", indent, "");
			s++;
			continue;
		}
		s += escape_one(s, piece);
		fputs(piece, f);
	}
}

const char *cli_escape(const char *s, char *out, size_t cap)
{
	static const char ellipsis[] = "...";
	/* Room for the text: all of out when it fits, else all but the
	 * ellipsis that marks the cut. */
	size_t room = escaped_len(s) < cap ? cap : cap - strlen(ellipsis);
	size_t used = 0;
	char piece[16];

	out[0] = '\0';
	while (*s != '\0') {
		size_t step = escape_one(s, piece), n = strlen(piece);

		if (used + n >= room)
			break;
		memcpy(out + used, piece, n + 1);
		used += n;
		s += step;
	}
	if (*s != '\0')
		memcpy(out + used, ellipsis, sizeof(ellipsis));
	return out;
}

const char *cli_value(const char *value)
{
	static char buffers[4][CLI_VALUE_MAX + 4];
	static unsigned next;
	char *out = buffers[next++ % 4];

	return cli_escape(value, out, sizeof(buffers[0]));
}
