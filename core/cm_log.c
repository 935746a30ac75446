#include "cm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static cm_log_level min_level = CM_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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

void cm_log_write(cm_log_level level, const char *module, const char *fmt,
		  ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ",
			      ts.tv_nsec / 1000000, level_names[level],
			      module);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One write per line so that lines from threads never interleave. */
	fprintf(stderr, "%s\n", line);
}
