/* cli_text.c - printing untrusted text on a terminal: record fields from
 * peers and values echoed in error messages. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Returns whether code point c reorders the text around it on a
 * terminal that implements the Unicode bidirectional algorithm: the
 * embeddings, overrides and isolates, and the implicit marks. */
static bool is_bidi_control(unsigned c)
{
	return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	       c == 0x200e || c == 0x200f || c == 0x061c;
}

/* Decodes the UTF-8 sequence at s into *c and returns its length, or 0
 * when s does not start with a valid, shortest-form sequence. */
static size_t decode_utf8(const unsigned char *s, unsigned *c)
{
	size_t len, i;

	if (s[0] < 0x80) {
		*c = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		*c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		*c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		*c = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*c = (*c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && *c < 0x800) || (len == 4 && *c < 0x10000) ||
	    *c > 0x10ffff || (*c >= 0xd800 && *c <= 0xdfff))
		return 0;
	return len;
}

/* Returns the letter that follows the backslash in the C escape of
 * newline, tab, carriage return or backslash c. */
static char short_escape(unsigned c)
{
	switch (c) {
	case '\n':
		return 'n';
	case '\t':
		return 't';
	case '\r':
		return 'r';
	default:
		return '\\';
	}
}

/* Writes the escaped form of the character at s into piece[16] and
 * returns how many bytes of s it takes. */
static size_t escape_one(const char *s, char piece[16])
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned c;
	size_t len = decode_utf8(u, &c);

	if (len == 0) {
		snprintf(piece, 16, "\\x%02x", u[0]);
		return 1;
	}
	if (c == '\n' || c == '\t' || c == '\r' || c == '\\')
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

const char *cli_escape(const char *s, char *out, size_t cap)
{
	static const char ellipsis[] = "...";
	size_t used = 0;
	char piece[16];

	out[0] = '\0';
	while (*s != '\0') {
		size_t step = escape_one(s, piece), n = strlen(piece);

		/* Keep room for the ellipsis unless this is the last piece. */
		if (used + n + (s[step] ? sizeof(ellipsis) - 1 : 0) >= cap) {
			if (used + sizeof(ellipsis) <= cap)
				memcpy(out + used, ellipsis, sizeof(ellipsis));
			return out;
		}
		memcpy(out + used, piece, n + 1);
		used += n;
		s += step;
	}
	return out;
}

const char *cli_value(const char *value)
{
	static char buffers[4][CLI_VALUE_MAX + 4];
	static unsigned next;
	char *out = buffers[next++ % 4];

	return cli_escape(value, out, sizeof(buffers[0]));
}
