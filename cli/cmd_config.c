/* cmd_config.c - config show (effective settings and their sources) and
 * config example (every setting commented out at its default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

#define VALUE_TEXT_MAX 320
#define EXAMPLE_WIDTH 72

typedef struct show_opts {
	const cli_ctx *ctx;
	cli_setting_flags flags;
} show_opts;

static int show_opt(void *state, int key, const char *value)
{
	show_opts *o = state;

	return cli_setting_flag(o->ctx, &o->flags, key, value);
}

/* Returns a new JSON object describing setting `id` and its value. */
static json_t *setting_json(const cm_config *c, cm_setting_id id)
{
	const cm_setting *s = cm_setting_get(id);
	char value[VALUE_TEXT_MAX], def[VALUE_TEXT_MAX], range[VALUE_TEXT_MAX];
	char source[CM_HOME_PATH_MAX + 16];
	json_t *o, *values, *sources;

	cm_setting_format_default(id, def, sizeof(def));
	cm_setting_describe_range(id, range, sizeof(range));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "name", s->name,
		      "section", s->section, "type",
		      cm_value_type_name(s->type), "default", def, "allowed",
		      range, "description", s->help, "flag", s->flag);
	if (o == NULL)
		return NULL;
	if (s->type != CM_VALUE_PEERS) {
		cm_config_format(c, id, 0, value, sizeof(value));
		cm_config_format_source(c, cm_config_source(c, id, 0), source,
					sizeof(source));
		json_object_set_new(o, "value", json_string(value));
		json_object_set_new(o, "source", json_string(source));
		if (cm_config_source(c, id, 0).overrides)
			json_object_set_new(o, "overrides_line", json_integer(
				cm_config_source(c, id, 0).overrides));
		return o;
	}
	values = json_array();
	sources = json_array();
	for (size_t i = 0; i < cm_config_count(c, id); i++) {
		cm_config_format(c, id, i, value, sizeof(value));
		cm_config_format_source(c, cm_config_source(c, id, i), source,
					sizeof(source));
		json_array_append_new(values, json_string(value));
		json_array_append_new(sources, json_string(source));
	}
	json_object_set_new(o, "value", values);
	json_object_set_new(o, "source", sources);
	return o;
}

static void show_text(const cm_config *c, cm_setting_id id)
{
	const cm_setting *s = cm_setting_get(id);
	char value[VALUE_TEXT_MAX], source[CM_HOME_PATH_MAX + 16];
	size_t n = cm_config_count(c, id);

	if (s->type == CM_VALUE_PEERS && n == 0) {
		printf("# %s: none (default)\n", s->name);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		cm_config_format(c, id, i, value, sizeof(value));
		cm_config_format_source(c, cm_config_source(c, id, i), source,
					sizeof(source));
		if (cm_config_source(c, id, i).overrides)
			printf("%s = %s  # %s, overrides line %u\n", s->name,
			       value, source,
			       cm_config_source(c, id, i).overrides);
		else
			printf("%s = %s  # %s\n", s->name, value, source);
	}
}

static int config_show(cli_ctx *ctx, int argc, char **argv)
{
	show_opts o = {.ctx = ctx};
	int first, rc;

	rc = cli_parse(ctx, argc, argv, cli_setting_opts, true,
		       "[setting options]",
		       "Print every effective setting with its value and "
		       "where it comes from: default, HOME/config:LINE or "
		       "the option. Takes the options of 'clipmesh node', "
		       "which override the file as they do there. With "
		       "--json, one object per setting.",
		       show_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	if ((rc = cli_need_home(ctx)) != CLI_OK ||
	    (rc = cli_load_settings(ctx, &o.flags)) != CLI_OK)
		return rc;
	if (!ctx->json)
		printf("# home %s, settings from %s\n", ctx->home,
		       cm_config_path(ctx->config));
	for (int i = 0; i < CM_SETTING_COUNT; i++) {
		if (ctx->json)
			cli_json_line(setting_json(ctx->config,
						   (cm_setting_id)i));
		else
			show_text(ctx->config, (cm_setting_id)i);
	}
	return CLI_OK;
}

/* Prints `text` as '#' comment lines of at most EXAMPLE_WIDTH columns,
 * breaking at spaces. */
static void print_wrapped(const char *text)
{
	const size_t width = EXAMPLE_WIDTH - 2;

	while (*text != '\0') {
		size_t len = strlen(text), cut = len;

		if (len > width) {
			cut = width;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = width;
		}
		printf("# %.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

static void example_setting(cm_setting_id id)
{
	const cm_setting *s = cm_setting_get(id);
	char def[VALUE_TEXT_MAX], range[VALUE_TEXT_MAX];
	char line[3 * VALUE_TEXT_MAX];

	cm_setting_format_default(id, def, sizeof(def));
	cm_setting_describe_range(id, range, sizeof(range));
	snprintf(line, sizeof(line), "%s: %s. Allowed: %s.", s->name, s->help,
		 range);
	printf("\n");
	print_wrapped(line);
	if (s->flag != NULL) {
		snprintf(line, sizeof(line), "Option %s overrides it.",
			 s->flag);
		print_wrapped(line);
	}
	if (s->type == CM_VALUE_PEERS)
		printf("#%s = clipmesh://KEYHEX@HOST:PORT\n", s->name);
	else
		printf("#%s = %s\n", s->name, def);
}

static int config_example(cli_ctx *ctx, int argc, char **argv)
{
	static const char *const sections[] = {"node", "mirror", "limits"};
	int first, rc;

	rc = cli_parse(ctx, argc, argv, NULL, false, "",
		       "Print an example HOME/config with every setting "
		       "commented out at its default (the text of "
		       "dist/clipmesh.conf.example).",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	print_wrapped("clipmesh.conf.example - every setting of HOME/config "
		      "at its default, written by 'clipmesh config "
		      "example'. Copy the lines you change into HOME/config "
		      "and remove their '#'. Sections are optional; a key "
		      "outside any section is valid too. clipmesh.conf(5) "
		      "describes the syntax, and 'clipmesh config show' "
		      "prints the effective values.");
	for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++) {
		printf("\n[%s]\n", sections[k]);
		for (int i = 0; i < CM_SETTING_COUNT; i++)
			if (strcmp(cm_setting_get((cm_setting_id)i)->section,
				   sections[k]) == 0)
				example_setting((cm_setting_id)i);
	}
	return CLI_OK;
}

int cmd_config(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"show", config_show, "print the effective settings"},
		{"example", config_example,
		 "print every setting at its default"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 2);
}
