/*
 * cm_log.h - one line per event on stderr:
 *   2026-12-04T15:47:00.123Z info node: peer connected peer=1a2b3c4d
 * The level is checked before formatting. Never pass secrets, signatures
 * or payloads; shorten ids and keys with cm_hex_short().
 */
#ifndef CM_LOG_H
#define CM_LOG_H

typedef enum cm_log_level {
	CM_LOG_DEBUG = 0,
	CM_LOG_INFO,
	CM_LOG_WARN,
	CM_LOG_ERROR,
} cm_log_level;

/* Sets the lowest level that is printed (default CM_LOG_INFO). */
void cm_log_set_level(cm_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int cm_log_parse_level(const char *name);

int cm_log_enabled(cm_log_level level);

void cm_log_write(cm_log_level level, const char *module, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));

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
