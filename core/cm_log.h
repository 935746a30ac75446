/*
 * cm_log.h - one line per event on stderr:
 *   2026-12-04T15:47:00.123Z info node: peer connected peer=1a2b3c4d
 * When stderr is the systemd journal, the time is left to the journal and
 * the line starts with an sd-daemon priority prefix instead:
 *   <6>info node: peer connected peer=1a2b3c4d
 *
 * The level is checked before formatting. Warnings and errors that repeat
 * (same module and format string) are printed CM_LOG_REPEAT_BURST times
 * per CM_LOG_REPEAT_WINDOW_MS; the rest are counted and reported in one
 * line once the window ends. Never pass secrets, signatures or payloads;
 * shorten ids and keys with cm_hex_short(). Thread-safe.
 */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cm_log_level {
	CM_LOG_DEBUG = 0,
	CM_LOG_INFO,
	CM_LOG_WARN,
	CM_LOG_ERROR,
} cm_log_level;

/*
 * Chooses the line format: journal style when $JOURNAL_STREAM names the
 * device and inode of stderr, as systemd sets it for a service whose
 * output goes to the journal. Call once at start and again after stderr
 * changes.
 */
void cm_log_init(void);

/* True when lines carry a priority prefix instead of a time. */
bool cm_log_journal(void);

/* Sets the lowest level that is printed (default CM_LOG_INFO). */
void cm_log_set_level(cm_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int cm_log_parse_level(const char *name);

int cm_log_enabled(cm_log_level level);

void cm_log_write(cm_log_level level, const char *module, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));

/* Prints the count of lines suppressed in every repeat window that has
 * ended; with `all`, in every window. A long-running program calls it
 * periodically and with `all` before it exits. */
void cm_log_flush(bool all);

/* Replaces the clock of the repeat windows (monotonic ms); NULL restores
 * the real one. For tests. */
void cm_log_set_clock(uint64_t (*now_ms)(void));

#define cm_log(level, module, ...)                               \
	do {                                                     \
		if (cm_log_enabled(level))                       \
			cm_log_write(level, module, __VA_ARGS__); \
	} while (0)

#define cm_debug(module, ...) cm_log(CM_LOG_DEBUG, module, __VA_ARGS__)
#define cm_info(module, ...) cm_log(CM_LOG_INFO, module, __VA_ARGS__)
#define cm_warn(module, ...) cm_log(CM_LOG_WARN, module, __VA_ARGS__)
#define cm_error(module, ...) cm_log(CM_LOG_ERROR, module, __VA_ARGS__)

#endif
