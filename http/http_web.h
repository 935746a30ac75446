/* http_web.h - the files of http/web, embedded at build time. */
#ifndef HTTP_WEB_H
#define HTTP_WEB_H

#include <stddef.h>

typedef struct http_web_file {
	const char *name;            /* path below http/web, e.g. "app.js" */
	const char *type;            /* Content-Type */
	const unsigned char *data;
	size_t len;
} http_web_file;

extern const http_web_file http_web_files[];
extern const size_t http_web_files_count;

#endif
