/*
 * proto_canon.h - strict msgpack pull reader and text rules, used by the
 * record codec and by the node's control socket.
 *
 * The reader accepts only the msgpack subset that records use, each value
 * in its shortest encoding: positive fixint and uint 8/16/32/64, str,
 * bin, array and map. Every other type fails with its own code
 * (CM_ERR_NEGATIVE_INT, CM_ERR_FLOAT, CM_ERR_EXT, CM_ERR_BAD_TYPE for nil,
 * bool and the unused byte 0xc1). A map or array where the schema expects
 * a scalar fails with CM_ERR_TOO_DEEP. Claimed lengths and counts are
 * checked against the remaining input (CM_ERR_TRUNCATED) and the caller's
 * maximum before anything is read or copied, and nothing is allocated.
 *
 * `what` arguments name the field in error details, e.g. "title".
 */
#ifndef PROTO_CANON_H
#define PROTO_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"

typedef struct proto_reader {
	const uint8_t *start;
	const uint8_t *pos;
	const uint8_t *end;
} proto_reader;

void proto_reader_init(proto_reader *rd, const uint8_t *buf, size_t len);

/* Returns the number of bytes not read yet. */
size_t proto_reader_left(const proto_reader *rd);

/* Returns the offset of the next byte from the start of the input. */
size_t proto_reader_offset(const proto_reader *rd);

/* Reads an unsigned integer in its shortest form. */
cm_err proto_read_uint(proto_reader *rd, const char *what, uint64_t *v);

/*
 * Reads a str header and body of at most max bytes. *s points into the
 * input and is not NUL-terminated. Content is not checked here.
 */
cm_err proto_read_str(proto_reader *rd, const char *what, size_t max,
		      const uint8_t **s, size_t *len);

/* Reads a bin header and body of at most max bytes; *b points into the
 * input. */
cm_err proto_read_bin(proto_reader *rd, const char *what, size_t max,
		      const uint8_t **b, size_t *len);

/* Reads an array header of at most max elements (CM_ERR_TOO_MANY). */
cm_err proto_read_array(proto_reader *rd, const char *what, size_t max,
			size_t *n);

/* Reads a map header of at most max entries (CM_ERR_TOO_MANY). */
cm_err proto_read_map(proto_reader *rd, const char *what, size_t max,
		      size_t *n);

/*
 * Decodes one UTF-8 code point from s[*i] (len bytes in all) into *cp and
 * advances *i. Returns false on a malformed sequence: a stray continuation
 * byte, a truncated sequence, an overlong form, a surrogate
 * (U+D800..U+DFFF) or a value above U+10FFFF.
 */
bool proto_utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp);

/* Returns true for C0 (U+0000..U+001F), DEL (U+007F) and C1
 * (U+0080..U+009F) code points. */
bool proto_is_control(uint32_t cp);

/* Returns true for the Unicode White_Space code points. */
bool proto_is_space(uint32_t cp);

/*
 * Checks that s[len] is valid UTF-8 without control characters; '\n' is
 * allowed when allow_newline is true. Fails with CM_ERR_BAD_UTF8 or
 * CM_ERR_CONTROL_CHAR, with a detail naming `what` and the byte offset.
 */
cm_err proto_text_check(const char *what, const uint8_t *s, size_t len,
			bool allow_newline);

/* Size of the buffer proto_printable() writes. */
#define PROTO_SHOWN_MAX 40

/*
 * Copies at most 32 bytes of untrusted s into out for an error detail,
 * replacing every byte outside printable ASCII with '?' and marking a cut
 * with "...". Returns out.
 */
const char *proto_printable(const uint8_t *s, size_t len,
			    char out[PROTO_SHOWN_MAX]);

/*
 * Writes "<prefix>[<index>]<suffix>" into out[cap], cut short to fit,
 * such as "media[2].type". cap is at least 1. Error details name media
 * references and tags this way, and a name is made for every item read.
 * With snprintf that took about a tenth of the time to decode a clip.
 */
void proto_index_label(char *out, size_t cap, const char *prefix,
		       size_t index, const char *suffix);

#endif
