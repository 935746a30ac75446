#include "cm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cm_limits.h"
#include "cm_util.h"

/* One warning being counted: its key (module, format) and its window. */
typedef struct repeat_slot {
	const char *module;     /* NULL: free */
	const char *fmt;
	cm_log_level level;
	uint64_t window_start;  /* monotonic ms */
	unsigned printed;
	uint64_t suppressed;
	char example[120];      /* the last printed message, cut short */
} repeat_slot;

static cm_log_level min_level = CM_LOG_INFO;
static bool journal;
static uint64_t (*clock_ms)(void) = cm_mono_ms;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static repeat_slot slots[CM_LOG_REPEAT_SLOTS];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* sd-daemon(3) priorities: debug 7, info 6, warning 4, err 3. */
static const int level_priorities[] = {7, 6, 4, 3};

void cm_log_init(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	journal = stream != NULL &&
		  sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
		  fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		  (unsigned long long)st.st_ino == ino;
}

bool cm_log_journal(void)
{
	return journal;
}

void cm_log_set_level(cm_log_level level)
{
	min_level = level;
}

int cm_log_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

int cm_log_enabled(cm_log_level level)
{
	return level >= min_level;
}

void cm_log_set_clock(uint64_t (*now_ms)(void))
{
	pthread_mutex_lock(&lock);
	clock_ms = now_ms ? now_ms : cm_mono_ms;
	memset(slots, 0, sizeof(slots));
	pthread_mutex_unlock(&lock);
}

/* Writes the prefix (time or priority, level, module) into line[cap];
 * returns its length. */
static size_t format_prefix(char *line, size_t cap, cm_log_level level,
			    const char *module)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int w;

	if (journal) {
		w = snprintf(line, cap, "<%d>%s %s: ", level_priorities[level],
			     level_names[level], module);
		return w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	w = snprintf(line + n, cap - n, ".%03ldZ %s %s: ",
		     ts.tv_nsec / 1000000, level_names[level], module);
	if (w < 0)
		return n;
	return n + (size_t)w < cap ? n + (size_t)w : cap - 1;
}

/* Prints one finished line; one write per line so that lines of several
 * threads never interleave. */
static void emit(const char *line)
{
	fprintf(stderr, "%s\n", line);
}

/* Prints how many lines of a slot were suppressed, and frees it. */
static void report_slot(repeat_slot *s, uint64_t now)
{
	char line[CM_LOG_LINE_MAX];
	size_t n;

	if (s->suppressed > 0) {
		n = format_prefix(line, sizeof(line), s->level, s->module);
		snprintf(line + n, sizeof(line) - n,
			 "%llu more lines like \"%s\" suppressed in %llu ms",
			 (unsigned long long)s->suppressed, s->example,
			 (unsigned long long)(now - s->window_start));
		emit(line);
	}
	memset(s, 0, sizeof(*s));
}

/* Reports and frees the slots whose window ended (all with `all`). */
static void flush_locked(uint64_t now, bool all)
{
	for (size_t i = 0; i < CM_LOG_REPEAT_SLOTS; i++) {
		repeat_slot *s = &slots[i];

		if (s->module != NULL &&
		    (all || now - s->window_start >= CM_LOG_REPEAT_WINDOW_MS))
			report_slot(s, now);
	}
}

void cm_log_flush(bool all)
{
	pthread_mutex_lock(&lock);
	flush_locked(clock_ms(), all);
	pthread_mutex_unlock(&lock);
}

/* Finds the slot of (module, fmt), or takes a free one, or else the one
 * whose window is oldest (reporting it first). */
static repeat_slot *slot_for(const char *module, const char *fmt,
			     uint64_t now)
{
	repeat_slot *free_slot = NULL, *oldest = &slots[0];

	for (size_t i = 0; i < CM_LOG_REPEAT_SLOTS; i++) {
		repeat_slot *s = &slots[i];

		if (s->module == NULL) {
			free_slot = free_slot ? free_slot : s;
			continue;
		}
		if (strcmp(s->module, module) == 0 && strcmp(s->fmt, fmt) == 0)
			return s;
		if (s->window_start < oldest->window_start)
			oldest = s;
	}
	if (free_slot != NULL)
		return free_slot;
	report_slot(oldest, now);
	return oldest;
}

/* Counts a warning or error. Returns its slot when it is to be
 * printed, NULL when it is suppressed. */
static repeat_slot *repeat_allows(cm_log_level level, const char *module,
				  const char *fmt, uint64_t now)
{
	repeat_slot *s = slot_for(module, fmt, now);

	if (s->module == NULL) {
		s->module = module;
		s->fmt = fmt;
		s->level = level;
		s->window_start = now;
	}
	if (s->printed < CM_LOG_REPEAT_BURST) {
		s->printed++;
		return s;
	}
	s->suppressed++;
	return NULL;
}

/* Keeps message as the slot's example, marked when cut short. */
static void keep_example(repeat_slot *s, const char *message)
{
	size_t cap = sizeof(s->example);

	if (strlen(message) < cap) {
		memcpy(s->example, message, strlen(message) + 1);
		return;
	}
	memcpy(s->example, message, cap - 4);
	memcpy(s->example + cap - 4, "...", 4);
}

void cm_log_write(cm_log_level level, const char *module, const char *fmt,
		  ...)
{
	char line[CM_LOG_LINE_MAX];
	repeat_slot *slot = NULL;
	uint64_t now;
	size_t n;
	va_list ap;

	pthread_mutex_lock(&lock);
	now = clock_ms();
	flush_locked(now, false);
	if (level >= CM_LOG_WARN &&
	    (slot = repeat_allows(level, module, fmt, now)) == NULL)
		goto out;
	n = format_prefix(line, sizeof(line), level, module);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One event per line: a value with a line break or another control
	 * character cannot start a line of its own. */
	for (char *p = line + n; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (slot != NULL)
		keep_example(slot, line + n);
	emit(line);
out:
	pthread_mutex_unlock(&lock);
}
