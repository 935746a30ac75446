/*
 * http_static.c - the web page: files of http/web embedded into the
 * binary at build time (http_web_files.c, made by embed_web.cmake).
 */
#include <string.h>

#include "http_internal.h"
#include "http_web.h"

bool http_static(http_request *req, const char *path,
		 struct MHD_Response **resp, unsigned *status)
{
	const http_web_file *file = NULL;

	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (size_t i = 0; i < http_web_files_count; i++)
		if (strcmp(path + 1, http_web_files[i].name) == 0)
			file = &http_web_files[i];
	if (file == NULL)
		return false;
	*resp = MHD_create_response_from_buffer(file->len, (void *)file->data,
						MHD_RESPMEM_PERSISTENT);
	if (*resp == NULL) {
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return true;
	}
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				file->type);
	/* The files change with the binary: revalidate on every load. */
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-cache");
	if (!req->head)
		req->bytes += file->len;
	*status = MHD_HTTP_OK;
	return true;
}
