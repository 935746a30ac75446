/*
 * cm_config.c - the effective configuration: defaults, HOME/config read
 * with libinih, and command-line overrides, each value with its source.
 */
#include "cm_config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cm_home.h"
#include "cm_limits.h"
#include "cm_util.h"

#define ERROR_MAX 1024
#define SHOWN_VALUE_MAX 80 /* bytes of a bad value quoted in a message */

/* One value with its source; text is malloc'd (NULL: off or numeric). */
typedef struct entry {
	char *text;
	uint64_t num;
	cm_source src;
} entry;

/* The values of one setting: exactly one for scalars. */
typedef struct slot {
	entry *entries;
	size_t n;
	bool from_flag;  /* a peer list already replaced by options */
} slot;

struct cm_config {
	slot slots[CM_SETTING_COUNT];
	cm_peer_check peer_check;
	char path[CM_HOME_PATH_MAX];
	char error[CM_HOME_PATH_MAX + ERROR_MAX + 32];
};

/* State of one file parse: the text, the line being read and the first
 * error found. */
typedef struct parse_state {
	cm_config *c;
	const char *label;
	const char *next;
	size_t left;
	unsigned line;
	unsigned error_line;      /* 0: none yet */
	char error[ERROR_MAX];
} parse_state;

static void entry_clear(entry *e)
{
	free(e->text);
	memset(e, 0, sizeof(*e));
}

static void slot_clear(slot *s)
{
	for (size_t i = 0; i < s->n; i++)
		entry_clear(&s->entries[i]);
	s->n = 0;
}

/* Sets a scalar slot to its default. */
static cm_err slot_default(cm_config *c, cm_setting_id id)
{
	const cm_setting *s = cm_setting_get(id);
	entry *e = &c->slots[id].entries[0];

	entry_clear(e);
	e->num = s->def;
	if (s->def_text != NULL) {
		e->text = strdup(s->def_text);
		if (e->text == NULL)
			return CM_ERR_NOMEM;
	}
	c->slots[id].n = 1;
	return CM_OK;
}

cm_err cm_config_new(cm_peer_check peer_check, cm_config **out)
{
	cm_config *c = calloc(1, sizeof(*c));
	cm_err err = CM_OK;

	*out = NULL;
	if (c == NULL)
		return CM_ERR_NOMEM;
	c->peer_check = peer_check;
	for (int i = 0; i < CM_SETTING_COUNT && !err; i++) {
		const cm_setting *s = cm_setting_get((cm_setting_id)i);
		size_t cap = s->type == CM_VALUE_PEERS ? s->max : 1;

		c->slots[i].entries = calloc(cap, sizeof(entry));
		if (c->slots[i].entries == NULL)
			err = CM_ERR_NOMEM;
		else if (s->type != CM_VALUE_PEERS)
			err = slot_default(c, (cm_setting_id)i);
	}
	if (err) {
		cm_config_free(&c);
		return err;
	}
	*out = c;
	return CM_OK;
}

void cm_config_free(cm_config **c)
{
	if (c == NULL || *c == NULL)
		return;
	for (int i = 0; i < CM_SETTING_COUNT; i++) {
		if ((*c)->slots[i].entries == NULL)
			continue;
		slot_clear(&(*c)->slots[i]);
		free((*c)->slots[i].entries);
	}
	free(*c);
	*c = NULL;
}

/* Copies `value` for a message: cut to SHOWN_VALUE_MAX bytes, with every
 * control character and every byte over 0x7e shown as '?', so that a
 * hostile file cannot write escape sequences to the terminal, C1 ones
 * in UTF-8 (such as c2 9b) or invalid UTF-8 included. Every valid value
 * is ASCII. */
static void shown_value(const char *value, char *out, size_t cap)
{
	size_t n = 0;

	for (; value[n] != '\0' && n + 1 < cap && n < SHOWN_VALUE_MAX; n++) {
		unsigned char ch = (unsigned char)value[n];

		out[n] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
	if (value[n] != '\0' && n >= 3)
		memcpy(out + n - 3, "...", 3);
}

/*
 * Validates `value` for setting `id` and stores it with `src`. On failure
 * writes "invalid value 'V' for KEY: expected ..." into why[cap].
 */
static cm_err apply(cm_config *c, cm_setting_id id, const char *value,
		    cm_source src, char *why, size_t cap)
{
	const cm_setting *s = cm_setting_get(id);
	slot *sl = &c->slots[id];
	char expected[320], shown[SHOWN_VALUE_MAX + 1];
	uint64_t num;
	bool off;
	entry *e;

	shown_value(value, shown, sizeof(shown));
	if (!cm_setting_parse(id, value, &num, &off, expected,
			      sizeof(expected))) {
		snprintf(why, cap, "invalid value '%s' for %s: %s", shown,
			 s->name, expected);
		return CM_ERR_USAGE;
	}
	if (s->type == CM_VALUE_PEERS && c->peer_check != NULL) {
		char detail[320];

		cm_err_clear();
		if (c->peer_check(value) != CM_OK) {
			/* The detail quotes the whole address. */
			cm_strlcpy(detail, cm_err_detail(), sizeof(detail));
			for (char *p = detail; *p != '\0'; p++)
				if ((unsigned char)*p < 0x20 ||
				    (unsigned char)*p >= 0x7f)
					*p = '?';
			snprintf(why, cap, "invalid value '%s' for %s: %s; "
				 "give the address 'clipmesh id' prints on "
				 "the peer", shown, s->name, detail);
			return CM_ERR_USAGE;
		}
	}

	if (s->type == CM_VALUE_PEERS) {
		if (src.kind == CM_SOURCE_FLAG && !sl->from_flag) {
			slot_clear(sl);
			sl->from_flag = true;
		}
		if (sl->n == s->max) {
			snprintf(why, cap, "too many %s entries: at most %llu",
				 s->name, (unsigned long long)s->max);
			return CM_ERR_USAGE;
		}
		e = &sl->entries[sl->n];
	} else {
		e = &sl->entries[0];
		if (src.kind == CM_SOURCE_FILE &&
		    e->src.kind == CM_SOURCE_FILE)
			src.overrides = e->src.line;
		entry_clear(e);
	}
	e->num = num;
	e->src = src;
	if (!off && (s->type == CM_VALUE_ENDPOINT ||
		     s->type == CM_VALUE_ADDRESS || s->type == CM_VALUE_PEERS)) {
		e->text = strdup(value);
		if (e->text == NULL)
			return CM_ERR_NOMEM;
	}
	if (s->type == CM_VALUE_PEERS)
		sl->n++;
	return CM_OK;
}

cm_err cm_config_set_flag(cm_config *c, cm_setting_id id, const char *value,
			  const char *flag)
{
	cm_source src = {.kind = CM_SOURCE_FLAG, .flag = flag};
	char why[ERROR_MAX - 64];
	cm_err err;

	err = apply(c, id, value, src, why, sizeof(why));
	if (err == CM_ERR_USAGE) {
		snprintf(c->error, sizeof(c->error), "%s: %s", flag, why);
		return cm_errf(err, "%s", c->error);
	}
	return err;
}

/* Records the first error of a parse; later ones are dropped. */
static void parse_error(parse_state *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void parse_error(parse_state *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->error_line != 0)
		return;
	ps->error_line = ps->line;
	va_start(ap, fmt);
	vsnprintf(ps->error, sizeof(ps->error), fmt, ap);
	va_end(ap);
}

static bool section_known(const char *section)
{
	return strcmp(section, "node") == 0 ||
	       strcmp(section, "mirror") == 0 ||
	       strcmp(section, "limits") == 0;
}

/*
 * Checks a "[section]" line before libinih sees it. libinih ignores what
 * follows the ']', so "[node] media = all" would lose its setting, and it
 * reports an unknown section only when a key follows it.
 */
static bool section_line_valid(parse_state *ps, const char *line)
{
	char name[SHOWN_VALUE_MAX + 1], shown[SHOWN_VALUE_MAX + 1];
	const char *end = strchr(line, ']');
	const char *rest;
	size_t n;

	if (end == NULL)
		return true; /* libinih reports the line as malformed */
	n = (size_t)(end - line - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, line + 1, n);
	name[n] = '\0';
	shown_value(name, shown, sizeof(shown));
	if (!section_known(name)) {
		parse_error(ps, "unknown section [%s]: use [node], [mirror] "
			    "or [limits], or none", shown);
		return false;
	}
	rest = end + 1;
	while (*rest == ' ' || *rest == '\t' || *rest == '\r' ||
	       *rest == '\n')
		rest++;
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		parse_error(ps, "text after [%s]: put each setting on a line "
			    "of its own below the section header", shown);
		return false;
	}
	return true;
}

/*
 * Hands libinih one line of the text. Leading blanks are dropped, so that
 * no line is taken as the continuation of the previous value. A line
 * over CM_CONFIG_LINE_MAX or holding a NUL byte is an error and ends the
 * parse.
 */
static char *read_line(char *str, int num, void *stream)
{
	parse_state *ps = stream;
	const char *nl;
	size_t len;

	if (ps->left == 0 || ps->error_line != 0)
		return NULL;
	ps->line++;
	nl = memchr(ps->next, '\n', ps->left);
	len = nl ? (size_t)(nl - ps->next) + 1 : ps->left;
	if (len > CM_CONFIG_LINE_MAX || len + 1 > (size_t)num) {
		parse_error(ps, "line is longer than %d bytes",
			    CM_CONFIG_LINE_MAX);
		return NULL;
	}
	if (memchr(ps->next, '\0', len) != NULL) {
		parse_error(ps, "line holds a NUL byte; the file must be "
			    "text");
		return NULL;
	}
	while (len > 0 && (*ps->next == ' ' || *ps->next == '\t')) {
		ps->next++;
		ps->left--;
		len--;
	}
	memcpy(str, ps->next, len);
	str[len] = '\0';
	ps->next += len;
	ps->left -= len;
	if (str[0] == '[' && !section_line_valid(ps, str))
		return NULL;
	return str;
}

/* libinih's callback for each "key = value"; returns 0 on an error. */
static int on_pair(void *user, const char *section, const char *name,
		   const char *value)
{
	parse_state *ps = user;
	cm_source src = {.kind = CM_SOURCE_FILE, .line = ps->line};
	char why[ERROR_MAX - 64], shown[SHOWN_VALUE_MAX + 1];
	const cm_setting *s;
	cm_setting_id id;

	if (section[0] != '\0' && !section_known(section)) {
		shown_value(section, shown, sizeof(shown));
		parse_error(ps, "unknown section [%s]: use [node], [mirror] "
			    "or [limits], or none", shown);
		return 0;
	}
	id = cm_setting_find(name);
	if (id == CM_SETTING_COUNT) {
		shown_value(name, shown, sizeof(shown));
		parse_error(ps, "unknown setting '%s'; 'clipmesh config show' "
			    "lists the settings", shown);
		return 0;
	}
	s = cm_setting_get(id);
	if (section[0] != '\0' && strcmp(section, s->section) != 0) {
		parse_error(ps, "%s belongs in [%s], not [%s]", name,
			    s->section, section);
		return 0;
	}
	if (apply(ps->c, id, value, src, why, sizeof(why)) != CM_OK) {
		parse_error(ps, "%s", why);
		return 0;
	}
	return 1;
}

/* Sets libinih's options. They are process-wide variables in Debian's
 * build (libinih 55); config loading is single-threaded. */
static void ini_setup(void)
{
	static char inline_prefixes[] = ";#";

	ini_max_line = CM_CONFIG_LINE_MAX + 3;
	ini_allow_multiline = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_prefixes;
	ini_stop_on_first_error = true;
}

cm_err cm_config_load_text(cm_config *c, const char *label, const char *text,
			   size_t len)
{
	parse_state ps = {.c = c, .label = label, .next = text, .left = len};
	int rc;

	cm_strlcpy(c->path, label, sizeof(c->path));
	c->error[0] = '\0';
	ini_setup();
	rc = ini_parse_stream(read_line, &ps, on_pair, &ps);
	if (rc == -2)
		return cm_errf(CM_ERR_NOMEM, "parsing %s", label);
	if (rc > 0 && (ps.error_line == 0 || (unsigned)rc < ps.error_line)) {
		ps.error_line = (unsigned)rc;
		snprintf(ps.error, sizeof(ps.error),
			 "expected 'key = value', '[section]' or a comment");
	}
	if (ps.error_line == 0)
		return CM_OK;
	snprintf(c->error, sizeof(c->error), "%s:%u: %s", label,
		 ps.error_line, ps.error);
	return cm_errf(CM_ERR_USAGE, "%s", c->error);
}

/* Records a problem with the config file as a whole, one that the
 * operator fixes; returns CM_ERR_USAGE. */
static cm_err file_error(cm_config *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static cm_err file_error(cm_config *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return cm_errf(CM_ERR_USAGE, "%s", c->error);
}

/* Opens the config without blocking on a FIFO. CM_ERR_NOT_FOUND when no
 * file is there; a symbolic link to a missing file is an error, because
 * the operator meant a file to be read. */
static cm_err open_file(cm_config *c, const char *path, int *fd)
{
	struct stat st;

	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd >= 0)
		return CM_OK;
	if (errno == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return file_error(c, "%s is a symbolic link to a missing "
				  "file: restore the file it names or remove "
				  "the link", path);
	if (errno == ENOENT)
		return CM_ERR_NOT_FOUND;
	return file_error(c, "cannot open %s: %s; make it a file that this "
			  "user can read", path, strerror(errno));
}

/* Reads a whole file of at most CM_CONFIG_FILE_MAX bytes into *text
 * (malloc'd, NUL-terminated). CM_ERR_NOT_FOUND when it does not exist;
 * CM_ERR_USAGE when it is not a regular file of at most that size. */
static cm_err read_file(cm_config *c, const char *path, char **text,
			size_t *len)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd = -1;
	cm_err err;

	err = open_file(c, path, &fd);
	if (err)
		return err;
	if (fstat(fd, &st) != 0) {
		err = file_error(c, "cannot read %s: %s", path,
				 strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		err = file_error(c, "%s is a directory, not a file: move it "
				 "away; 'clipmesh config example' prints a "
				 "file to start from", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = file_error(c, "%s is not a regular file (a FIFO, socket "
				 "or device): replace it with a text file",
				 path);
		goto out;
	}
	if (st.st_size > CM_CONFIG_FILE_MAX) {
		err = file_error(c, "%s is %lld bytes, over the limit of %d: "
				 "remove the lines it does not need", path,
				 (long long)st.st_size, CM_CONFIG_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	/* The file may grow between fstat and read: read one byte more
	 * than its size to notice. */
	n = read(fd, buf, (size_t)st.st_size + 1);
	if (n < 0 || n > st.st_size) {
		snprintf(c->error, sizeof(c->error), "cannot read %s: %s",
			 path, n < 0 ? strerror(errno) : "it changed size");
		err = cm_errf(CM_ERR_IO, "%s", c->error);
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = (size_t)n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

cm_err cm_config_load(cm_config *c, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	cm_err err;

	c->error[0] = '\0';
	cm_strlcpy(c->path, path, sizeof(c->path));
	err = read_file(c, path, &text, &len);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	err = cm_config_load_text(c, path, text, len);
	free(text);
	return err;
}

const char *cm_config_error(const cm_config *c)
{
	return c->error;
}

const char *cm_config_path(const cm_config *c)
{
	return c->path;
}

size_t cm_config_count(const cm_config *c, cm_setting_id id)
{
	return c->slots[id].n;
}

uint64_t cm_config_num(const cm_config *c, cm_setting_id id)
{
	return c->slots[id].n ? c->slots[id].entries[0].num : 0;
}

const char *cm_config_text(const cm_config *c, cm_setting_id id, size_t i)
{
	return i < c->slots[id].n ? c->slots[id].entries[i].text : NULL;
}

cm_source cm_config_source(const cm_config *c, cm_setting_id id, size_t i)
{
	cm_source none = {.kind = CM_SOURCE_DEFAULT};

	return i < c->slots[id].n ? c->slots[id].entries[i].src : none;
}

void cm_config_format(const cm_config *c, cm_setting_id id, size_t i,
		      char *out, size_t cap)
{
	const cm_setting *s = cm_setting_get(id);
	const entry *e;

	if (i >= c->slots[id].n) {
		snprintf(out, cap, "%s", "");
		return;
	}
	e = &c->slots[id].entries[i];
	switch (s->type) {
	case CM_VALUE_ENDPOINT:
	case CM_VALUE_ADDRESS:
	case CM_VALUE_PEERS:
		if (e->text != NULL)
			snprintf(out, cap, "%s", e->text);
		else
			snprintf(out, cap, "%s", s->zero ? s->zero : "");
		break;
	default:
		cm_setting_format_num(id, e->num, out, cap);
		break;
	}
}

void cm_config_format_source(const cm_config *c, cm_source src, char *out,
			     size_t cap)
{
	switch (src.kind) {
	case CM_SOURCE_DEFAULT:
		snprintf(out, cap, "default");
		break;
	case CM_SOURCE_FILE:
		snprintf(out, cap, "%s:%u", c->path, src.line);
		break;
	case CM_SOURCE_FLAG:
		snprintf(out, cap, "%s", src.flag);
		break;
	}
}
