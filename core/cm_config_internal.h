/*
 * cm_config_internal.h - value parsing shared by the two files of the
 * configuration: the table (cm_settings.c) and the file reader
 * (cm_config.c).
 */
#ifndef CM_CONFIG_INTERNAL_H
#define CM_CONFIG_INTERNAL_H

#include "cm_config.h"

/*
 * Parses `text` as a value of setting `id`. For numeric and enum types
 * it sets *num; for text types it sets *off when text is the setting's
 * word for "unset" (`zero`). A peer address is only checked for length
 * here; the configuration's peer_check does the rest. On failure writes
 * what is wrong and what is allowed into why[cap] and returns false.
 */
bool cm_setting_parse(cm_setting_id id, const char *text, uint64_t *num,
		      bool *off, char *why, size_t cap);

/* Writes a numeric or enum value of `id` as the file holds it. */
void cm_setting_format_num(cm_setting_id id, uint64_t num, char *out,
			   size_t cap);

#endif
