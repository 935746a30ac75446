/* Unit tests of the settings table and the HOME/config parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm_config.h"
#include "cm_home.h"
#include "cm_limits.h"
#include "node.h"

#define PEER_A \
	"clipmesh://1111111111111111111111111111111111111111111111111111111111111111@127.0.0.1:7701"
#define PEER_B \
	"clipmesh://2222222222222222222222222222222222222222222222222222222222222222@[::1]:7702"

static cm_err check_peer(const char *addr)
{
	char endpoint[256];
	uint8_t key[32];

	return node_parse_addr(addr, endpoint, key);
}

/* Parses `text` into a new configuration in *c; returns the result. */
static cm_err parse(const char *text, cm_config **c)
{
	assert_int_equal(cm_config_new(check_peer, c), CM_OK);
	return cm_config_load_text(*c, "test.conf", text, strlen(text));
}

static void assert_error_contains(const cm_config *c, const char *part)
{
	if (strstr(cm_config_error(c), part) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", cm_config_error(c), part);
}

static void table_names_unique(void **state)
{
	(void)state;
	for (int a = 0; a < CM_SETTING_COUNT; a++) {
		const cm_setting *s = cm_setting_get((cm_setting_id)a);

		assert_non_null(s->name);
		assert_non_null(s->help);
		assert_int_equal(cm_setting_find(s->name), a);
		for (int b = a + 1; b < CM_SETTING_COUNT; b++)
			assert_string_not_equal(
				s->name, cm_setting_get((cm_setting_id)b)->name);
	}
	assert_int_equal(cm_setting_find("no_such_setting"), CM_SETTING_COUNT);
}

/* Every default must itself be a valid value: write it, read it back. */
static void defaults_parse_back(void **state)
{
	cm_config *c = NULL, *back = NULL;
	char def[320], line[400];

	(void)state;
	assert_int_equal(cm_config_new(check_peer, &c), CM_OK);
	for (int i = 0; i < CM_SETTING_COUNT; i++) {
		const cm_setting *s = cm_setting_get((cm_setting_id)i);

		if (s->type == CM_VALUE_PEERS)
			continue;
		cm_setting_format_default((cm_setting_id)i, def, sizeof(def));
		snprintf(line, sizeof(line), "%s = %s\n", s->name, def);
		if (parse(line, &back) != CM_OK)
			fail_msg("default of %s does not parse: %s", s->name,
				 cm_config_error(back));
		assert_int_equal(cm_config_num(back, (cm_setting_id)i),
				 cm_config_num(c, (cm_setting_id)i));
		cm_config_free(&back);
	}
	cm_config_free(&c);
}

static void defaults_from_limits(void **state)
{
	cm_config *c = NULL;

	(void)state;
	assert_int_equal(cm_config_new(NULL, &c), CM_OK);
	assert_string_equal(cm_config_text(c, CM_SETTING_LISTEN, 0),
			    CM_DEFAULT_LISTEN);
	assert_int_equal(cm_config_num(c, CM_SETTING_PEERS_MAX), CM_PEERS_MAX);
	assert_int_equal(cm_config_num(c, CM_SETTING_MEDIA_MAX),
			 CM_MEDIA_FETCH_SIZE_DEFAULT);
	assert_int_equal(cm_config_num(c, CM_SETTING_SYNC_INTERVAL),
			 CM_SYNC_INTERVAL_MS);
	assert_int_equal(cm_config_num(c, CM_SETTING_STORE_MAP_SIZE),
			 CM_STORE_MAP_SIZE);
	assert_null(cm_config_text(c, CM_SETTING_HTTP, 0));
	assert_int_equal(cm_config_count(c, CM_SETTING_PEER), 0);
	assert_int_equal(cm_config_source(c, CM_SETTING_LISTEN, 0).kind,
			 CM_SOURCE_DEFAULT);
	cm_config_free(&c);
	assert_null(c);
}

static void file_values_and_lines(void **state)
{
	cm_config *c = NULL;
	char text[64];

	(void)state;
	assert_int_equal(parse("# a comment\n"
			       "; another\n"
			       "\n"
			       "listen = tcp://0.0.0.0:7801\n"
			       "media_max = 1G   # inline comment\n"
			       "[limits]\n"
			       "  sync_interval=90s\n"
			       "[node]\n"
			       "media = none ; inline comment\n",
			       &c),
			 CM_OK);
	assert_string_equal(cm_config_text(c, CM_SETTING_LISTEN, 0),
			    "tcp://0.0.0.0:7801");
	assert_int_equal(cm_config_source(c, CM_SETTING_LISTEN, 0).line, 4);
	assert_int_equal(cm_config_num(c, CM_SETTING_MEDIA_MAX), 1ULL << 30);
	assert_int_equal(cm_config_source(c, CM_SETTING_MEDIA_MAX, 0).line, 5);
	assert_int_equal(cm_config_num(c, CM_SETTING_SYNC_INTERVAL), 90000);
	assert_int_equal(cm_config_source(c, CM_SETTING_SYNC_INTERVAL, 0).line,
			 7);
	cm_config_format(c, CM_SETTING_MEDIA, 0, text, sizeof(text));
	assert_string_equal(text, "none");
	cm_config_format_source(c, cm_config_source(c, CM_SETTING_MEDIA, 0),
				text, sizeof(text));
	assert_string_equal(text, "test.conf:9");
	cm_config_free(&c);
}

static void later_line_wins(void **state)
{
	cm_config *c = NULL;

	(void)state;
	assert_int_equal(parse("listen = tcp://127.0.0.1:7701\n"
			       "listen = tcp://127.0.0.1:7702\n",
			       &c),
			 CM_OK);
	assert_string_equal(cm_config_text(c, CM_SETTING_LISTEN, 0),
			    "tcp://127.0.0.1:7702");
	assert_int_equal(cm_config_source(c, CM_SETTING_LISTEN, 0).line, 2);
	/* The earlier line is named, so that editing it is not in vain. */
	assert_int_equal(cm_config_source(c, CM_SETTING_LISTEN, 0).overrides,
			 1);
	assert_int_equal(cm_config_source(c, CM_SETTING_MEDIA, 0).overrides,
			 0);
	cm_config_free(&c);

	/* An option overrides the file, but it is no second line. */
	assert_int_equal(parse("media = all\n", &c), CM_OK);
	assert_int_equal(cm_config_set_flag(c, CM_SETTING_MEDIA, "none",
					    "--media"),
			 CM_OK);
	assert_int_equal(cm_config_source(c, CM_SETTING_MEDIA, 0).overrides,
			 0);
	cm_config_free(&c);
}

static void peer_lines_add_up(void **state)
{
	cm_config *c = NULL;

	(void)state;
	assert_int_equal(parse("peer = " PEER_A "\npeer = " PEER_B "\n", &c),
			 CM_OK);
	assert_int_equal(cm_config_count(c, CM_SETTING_PEER), 2);
	assert_string_equal(cm_config_text(c, CM_SETTING_PEER, 0), PEER_A);
	assert_string_equal(cm_config_text(c, CM_SETTING_PEER, 1), PEER_B);
	assert_int_equal(cm_config_source(c, CM_SETTING_PEER, 1).line, 2);
	cm_config_free(&c);
}

static void flag_overrides_file(void **state)
{
	cm_config *c = NULL;

	(void)state;
	assert_int_equal(parse("media_budget = 10G\npeer = " PEER_A "\n", &c),
			 CM_OK);
	assert_int_equal(cm_config_set_flag(c, CM_SETTING_MEDIA_BUDGET, "2G",
					    "--media-budget"),
			 CM_OK);
	assert_int_equal(cm_config_num(c, CM_SETTING_MEDIA_BUDGET), 2ULL << 30);
	assert_int_equal(cm_config_source(c, CM_SETTING_MEDIA_BUDGET, 0).kind,
			 CM_SOURCE_FLAG);
	assert_string_equal(
		cm_config_source(c, CM_SETTING_MEDIA_BUDGET, 0).flag,
		"--media-budget");

	/* Peers from options replace those of the file. */
	assert_int_equal(cm_config_set_flag(c, CM_SETTING_PEER, PEER_B,
					    "--peer"),
			 CM_OK);
	assert_int_equal(cm_config_count(c, CM_SETTING_PEER), 1);
	assert_string_equal(cm_config_text(c, CM_SETTING_PEER, 0), PEER_B);

	assert_int_equal(cm_config_set_flag(c, CM_SETTING_MEDIA_MAX, "0",
					    "--media-max"),
			 CM_ERR_USAGE);
	assert_error_contains(c, "--media-max: invalid value '0'");
	cm_config_free(&c);
}

static void zero_words(void **state)
{
	cm_config *c = NULL;
	char text[64];

	(void)state;
	assert_int_equal(parse("media_budget = unlimited\nhttp = off\n", &c),
			 CM_OK);
	assert_int_equal(cm_config_num(c, CM_SETTING_MEDIA_BUDGET), 0);
	cm_config_format(c, CM_SETTING_MEDIA_BUDGET, 0, text, sizeof(text));
	assert_string_equal(text, "unlimited");
	assert_null(cm_config_text(c, CM_SETTING_HTTP, 0));
	cm_config_free(&c);

	assert_int_equal(parse("http = 127.0.0.1:8080\n", &c), CM_OK);
	assert_string_equal(cm_config_text(c, CM_SETTING_HTTP, 0),
			    "127.0.0.1:8080");
	cm_config_free(&c);

	/* The word, not the number: 0 would mean "unlimited" here. */
	assert_int_equal(parse("media_budget = 0\n", &c), CM_ERR_USAGE);
	assert_error_contains(c, "invalid value '0' for media_budget: "
			      "expected a size of at least 1");
	cm_config_free(&c);
}

/* One bad file per case: the error must name the line and the cause. */
static void bad_lines_named(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		{"listen = tcp://127.0.0.1:7701\nbogus = 1\n",
		 "test.conf:2: unknown setting 'bogus'"},
		{"\n\nmedia_max = 12Q\n",
		 "test.conf:3: invalid value '12Q' for media_max: expected a "
		 "size from 1 to 4G"},
		{"media = some\n",
		 "test.conf:1: invalid value 'some' for media: expected all, "
		 "followed or none"},
		{"peers_max = 0\n", "test.conf:1: invalid value '0' for "
				    "peers_max: expected a whole number from "
				    "1 to 64"},
		{"peers_max = 65\n", "invalid value '65' for peers_max"},
		{"sync_interval = 500ms\n", "invalid value '500ms' for sync_interval: "
					 "expected a duration from 1s to 1d"},
		{"sync_interval = 5x\n", "invalid value '5x'"},
		{"listen = 127.0.0.1:7701\n", "expected a ZeroMQ endpoint"},
		{"listen = tcp://localhost:7701\n",
		 "invalid value 'tcp://localhost:7701' for listen: expected a "
		 "ZeroMQ endpoint tcp://IP:PORT"},
		{"listen = tcp://localhost:7701\n",
		 "give an IP address such as 127.0.0.1 or 0.0.0.0"},
		{"listen = tcp://[localhost]:7701\n", "not a host name"},
		{"listen = tcp://1.2.3:7701\n", "not a host name"},
		{"listen = tcp://127.0.0.1:0\n", "invalid value"},
		{"listen = tcp://127.0.0.1:99999\n",
		 "for listen: port 99999 is out of range 1-65535; expected"},
		{"listen = tcp://127.0.0.1:-1\n",
		 "port '-1' is not a number from 1 to 65535"},
		{"listen = tcp://127.0.0.1\n", "the port is missing"},
		{"listen = tcp://[::1]\n", "the port is missing"},
		{"http = 127.0.0.1:0\n", "port 0 is out of range 1-65535"},
		{"http = 70000\n", "port 70000 is out of range 1-65535"},
		{"listen =\n", "invalid value '' for listen"},
		{"http = 65536\n", "expected HOST:PORT"},
		{"http = 127.0.0.1\n", "expected HOST:PORT"},
		{"http = 127.0.0.1\n", "the port is missing"},
		{"peer = clipmesh://abc@127.0.0.1:1\n",
		 "invalid value 'clipmesh://abc@127.0.0.1:1' for peer"},
		{"# ok\njust words\n",
		 "test.conf:2: expected 'key = value', '[section]' or a "
		 "comment"},
		{"[limits\n", "test.conf:1: expected 'key = value'"},
		{"[other]\nlisten = tcp://127.0.0.1:1\n",
		 "test.conf:1: unknown section [other]"},
		{"[limits]\nlisten = tcp://127.0.0.1:1\n",
		 "test.conf:2: listen belongs in [node], not [limits]"},
		{"media_max = 18446744073709551615K\n", "invalid value"},
		{"feed_limit = -1\n", "invalid value '-1'"},
	};
	cm_config *c = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(cases[i].text, &c) != CM_ERR_USAGE)
			fail_msg("case %zu was accepted: %s", i,
				 cases[i].text);
		assert_error_contains(c, cases[i].error);
		cm_config_free(&c);
	}
}

static void hostile_text_rejected(void **state)
{
	char text[CM_CONFIG_LINE_MAX + 64];
	cm_config *c = NULL;

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "listen = ", 9);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(parse(text, &c), CM_ERR_USAGE);
	assert_error_contains(c, "test.conf:1: line is longer than");
	cm_config_free(&c);

	assert_int_equal(cm_config_new(NULL, &c), CM_OK);
	assert_int_equal(cm_config_load_text(c, "test.conf",
					     "feed_limit = 5\nx\0y = 1\n", 23),
			 CM_ERR_USAGE);
	assert_error_contains(c, "test.conf:2: line holds a NUL byte");
	cm_config_free(&c);

	/* A control character in a value is not echoed to the terminal. */
	assert_int_equal(parse("media = \x1b[31mall\n", &c), CM_ERR_USAGE);
	assert_error_contains(c, "invalid value '?[31mall'");
	cm_config_free(&c);

	/* Nor a C1 control in UTF-8, nor one inside a peer address, which
	 * the address check quotes in full. */
	assert_int_equal(parse("media = \xc2\x9b" "31mall\n", &c),
			 CM_ERR_USAGE);
	assert_error_contains(c, "invalid value '??31mall'");
	cm_config_free(&c);
	assert_int_equal(parse("peer = clipmesh://\x1b[31mzz@127.0.0.1:1\n",
			       &c), CM_ERR_USAGE);
	assert_null(strchr(cm_config_error(c), '\x1b'));
	cm_config_free(&c);
}

static void missing_file_keeps_defaults(void **state)
{
	cm_config *c = NULL;

	(void)state;
	assert_int_equal(cm_config_new(NULL, &c), CM_OK);
	assert_int_equal(cm_config_load(c, "/nonexistent/clipmesh/config"),
			 CM_OK);
	assert_int_equal(cm_config_num(c, CM_SETTING_FEED_LIMIT),
			 CM_FEED_LIMIT_DEFAULT);
	cm_config_free(&c);
}

static void oversized_file_rejected(void **state)
{
	char path[] = "/tmp/clipmesh-config-XXXXXX";
	cm_config *c = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, CM_CONFIG_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(cm_config_new(NULL, &c), CM_OK);
	assert_int_equal(cm_config_load(c, path), CM_ERR_USAGE);
	assert_error_contains(c, "over the limit of 65536");
	cm_config_free(&c);
	unlink(path);
}

/* Loads `path` into a new configuration and checks that it fails with
 * CM_ERR_USAGE and an error containing `part`. */
static void assert_load_rejected(const char *path, const char *part)
{
	cm_config *c = NULL;

	assert_int_equal(cm_config_new(NULL, &c), CM_OK);
	assert_int_equal(cm_config_load(c, path), CM_ERR_USAGE);
	assert_error_contains(c, part);
	cm_config_free(&c);
}

/* A FIFO must not block the command, and a directory, a symbolic link
 * to a missing file or a loop of links is named with the fix. */
static void odd_files_rejected(void **state)
{
	char dir[] = "/tmp/clipmesh-config-XXXXXX";
	char path[sizeof(dir) + 16];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);

	assert_int_equal(mkfifo(path, 0600), 0);
	assert_load_rejected(path, "is not a regular file (a FIFO");
	assert_int_equal(unlink(path), 0);

	assert_int_equal(mkdir(path, 0700), 0);
	assert_load_rejected(path, "is a directory, not a file");
	assert_int_equal(rmdir(path), 0);

	assert_int_equal(symlink("/nonexistent/clipmesh.conf", path), 0);
	assert_load_rejected(path, "symbolic link to a missing file");
	assert_int_equal(unlink(path), 0);

	assert_int_equal(symlink("config", path), 0);
	assert_load_rejected(path, "cannot open");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* libinih drops what follows "[section]" and accepts an unknown section
 * that no key follows; both would lose settings without a word. */
static void section_lines_checked(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		{"[node] media = all\n", "test.conf:1: text after [node]"},
		{"[limits]]\npeers_max = 3\n", "test.conf:1: text after"},
		{"media = all\n[nodes]\n", "test.conf:2: unknown section "
					     "[nodes]"},
		{"[]\nmedia = all\n", "test.conf:1: unknown section []"},
		{"[\x1b]2;x\x07]\n", "test.conf:1: unknown section [?]"},
	};
	cm_config *c = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].text, &c), CM_ERR_USAGE);
		assert_error_contains(c, cases[i].error);
		cm_config_free(&c);
	}
	assert_int_equal(parse("[node] ; comment\nmedia = all\n[limits]\t"
			       "# another\n", &c), CM_OK);
	assert_int_equal(cm_config_num(c, CM_SETTING_MEDIA), 0);
	cm_config_free(&c);
}

static void sizes_and_durations(void **state)
{
	uint64_t v;

	(void)state;
	assert_true(cm_parse_size("0", &v));
	assert_int_equal(v, 0);
	assert_true(cm_parse_size("512M", &v));
	assert_int_equal(v, 512ULL << 20);
	assert_true(cm_parse_size("2T", &v));
	assert_int_equal(v, 2ULL << 40);
	assert_false(cm_parse_size("1.5G", &v));
	assert_false(cm_parse_size("1GB", &v));
	assert_false(cm_parse_size("G", &v));
	assert_false(cm_parse_size(" 1", &v));
	assert_false(cm_parse_size("16777216T", &v));
	assert_true(cm_parse_duration("250ms", &v));
	assert_int_equal(v, 250);
	assert_true(cm_parse_duration("2m", &v));
	assert_int_equal(v, 120000);
	assert_true(cm_parse_duration("7", &v));
	assert_int_equal(v, 7000);
	assert_true(cm_parse_duration("1d", &v));
	assert_int_equal(v, 86400000);
	assert_false(cm_parse_duration("1w", &v));
	assert_false(cm_parse_duration("s", &v));
	assert_false(cm_parse_duration("99999999999999999999ms", &v));
}

static void values_format_canonically(void **state)
{
	cm_config *c = NULL;
	char text[64];

	(void)state;
	assert_int_equal(parse("media_max = 1048576\nsync_interval = 1500ms\n"
			       "store_map_size = 1025M\n",
			       &c),
			 CM_OK);
	cm_config_format(c, CM_SETTING_MEDIA_MAX, 0, text, sizeof(text));
	assert_string_equal(text, "1M");
	cm_config_format(c, CM_SETTING_SYNC_INTERVAL, 0, text, sizeof(text));
	assert_string_equal(text, "1500ms");
	cm_config_format(c, CM_SETTING_STORE_MAP_SIZE, 0, text, sizeof(text));
	assert_string_equal(text, "1025M");
	cm_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_names_unique),
		cmocka_unit_test(defaults_parse_back),
		cmocka_unit_test(defaults_from_limits),
		cmocka_unit_test(file_values_and_lines),
		cmocka_unit_test(later_line_wins),
		cmocka_unit_test(peer_lines_add_up),
		cmocka_unit_test(flag_overrides_file),
		cmocka_unit_test(zero_words),
		cmocka_unit_test(bad_lines_named),
		cmocka_unit_test(hostile_text_rejected),
		cmocka_unit_test(missing_file_keeps_defaults),
		cmocka_unit_test(oversized_file_rejected),
		cmocka_unit_test(odd_files_rejected),
		cmocka_unit_test(section_lines_checked),
		cmocka_unit_test(sizes_and_durations),
		cmocka_unit_test(values_format_canonically),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
