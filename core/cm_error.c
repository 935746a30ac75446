#include "cm_error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char detail[CM_ERR_DETAIL_MAX];

const char *cm_err_name(cm_err err)
{
	switch (err) {
#define CM_ERR_NAME(code, name, text) \
	case code:                    \
		return name;
		CM_ERR_LIST(CM_ERR_NAME)
#undef CM_ERR_NAME
	default:
		return "unknown";
	}
}

const char *cm_err_text(cm_err err)
{
	switch (err) {
#define CM_ERR_TEXT(code, name, text) \
	case code:                    \
		return text;
		CM_ERR_LIST(CM_ERR_TEXT)
#undef CM_ERR_TEXT
	default:
		return "unknown error";
	}
}

cm_err cm_errf(cm_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return err;
}

const char *cm_err_detail(void)
{
	return detail;
}

void cm_err_clear(void)
{
	detail[0] = '\0';
}
