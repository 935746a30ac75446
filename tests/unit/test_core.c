/* Unit tests of core/: errors, hex, time and the home folder. */
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
#include <sodium.h>

#include "cm_config.h"
#include "cm_error.h"
#include "cm_home.h"
#include "cm_util.h"

static void error_names_unique(void **state)
{
	(void)state;
	for (int a = 0; a < CM_ERR_COUNT; a++) {
		assert_string_not_equal(cm_err_name((cm_err)a), "unknown");
		for (int b = a + 1; b < CM_ERR_COUNT; b++)
			assert_string_not_equal(cm_err_name((cm_err)a),
						cm_err_name((cm_err)b));
	}
	assert_string_equal(cm_err_name(CM_ERR_COUNT), "unknown");
}

static void error_detail_kept(void **state)
{
	(void)state;
	assert_int_equal(cm_errf(CM_ERR_TOO_LONG, "title is %d bytes", 201),
			 CM_ERR_TOO_LONG);
	assert_string_equal(cm_err_detail(), "title is 201 bytes");
	cm_err_clear();
	assert_string_equal(cm_err_detail(), "");
}

static void hex_round_trip(void **state)
{
	const uint8_t bin[4] = {0x00, 0xab, 0x7f, 0xff};
	uint8_t back[4];
	char hex[9];

	(void)state;
	cm_hex_encode(bin, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_true(cm_hex_decode("00AB7FFF", back, 4));
	assert_memory_equal(bin, back, 4);
	assert_false(cm_hex_decode("00ab7ff", back, 4));
	assert_false(cm_hex_decode("00ab7ffg", back, 4));
	assert_false(cm_hex_valid_prefix(""));
	assert_false(cm_hex_valid_prefix("12x4"));
	assert_true(cm_hex_valid_prefix("12aF"));
}

static void time_parse_forms(void **state)
{
	uint64_t ms;
	char text[32];

	(void)state;
	assert_true(cm_time_parse("2026-12-04T15:47:00Z", &ms));
	assert_int_equal(ms, 1796399220000ULL);
	assert_true(cm_time_parse("2026-12-04T15:47:00.5Z", &ms));
	assert_int_equal(ms, 1796399220500ULL);
	assert_true(cm_time_parse("2026-12-04", &ms));
	assert_int_equal(ms, 1796342400000ULL);
	assert_true(cm_time_parse("1234", &ms));
	assert_int_equal(ms, 1234);
	assert_false(cm_time_parse("2026-12-04T15:47:00", &ms));
	assert_false(cm_time_parse("2026-12-04T15:47:00+01:00", &ms));
	assert_false(cm_time_parse("yesterday", &ms));
	assert_false(cm_time_parse("-5", &ms));
	cm_time_rfc3339(1796399220500ULL, text);
	assert_string_equal(text, "2026-12-04T15:47:00.500Z");
}

static void parse_u64_strict(void **state)
{
	uint64_t v;

	(void)state;
	assert_true(cm_parse_u64("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
	assert_false(cm_parse_u64("18446744073709551616", &v));
	assert_false(cm_parse_u64("", &v));
	assert_false(cm_parse_u64(" 1", &v));
	assert_false(cm_parse_u64("1x", &v));
	assert_false(cm_parse_u64("-1", &v));
}

static char home[64];

static int make_home(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "/tmp/clipmesh-core.XXXXXX");
	return mkdtemp(home) == NULL ? -1 : 0;
}

static int remove_home(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	return system(cmd) == 0 ? 0 : -1;
}

static void home_init_and_keys(void **state)
{
	uint8_t pub[32], pub2[32], *secret = NULL;
	char path[CM_HOME_PATH_MAX], value[CM_HOME_PATH_MAX];
	cm_config *config = NULL;
	struct stat st;
	bool created;

	(void)state;
	assert_false(cm_home_is_init(home));
	assert_int_equal(cm_home_init(home, &created), CM_OK);
	assert_true(created);
	assert_true(cm_home_is_init(home));
	assert_int_equal(cm_home_init(home, &created), CM_OK);
	assert_false(created);

	cm_home_path(home, "node.key", path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cm_home_transport_key(home, pub, &secret), CM_OK);
	cm_secret_free(&secret);
	assert_null(secret);

	/* The config that init writes parses and sets the default listen. */
	cm_home_path(home, "config", value);
	assert_int_equal(cm_config_new(NULL, &config), CM_OK);
	assert_int_equal(cm_config_load(config, value), CM_OK);
	assert_string_equal(cm_config_text(config, CM_SETTING_LISTEN, 0),
			    CM_DEFAULT_LISTEN);
	assert_int_equal(cm_config_source(config, CM_SETTING_LISTEN, 0).kind,
			 CM_SOURCE_FILE);
	cm_config_free(&config);

	assert_int_equal(cm_key_new(home, "alice", pub), CM_OK);
	assert_int_equal(cm_key_new(home, "alice", pub2), CM_ERR_EXISTS);
	assert_int_equal(cm_key_new(home, "../x", pub2), CM_ERR_USAGE);
	assert_int_equal(cm_key_load(home, "alice", pub2, &secret), CM_OK);
	assert_memory_equal(pub, pub2, 32);
	cm_secret_free(&secret);
	assert_int_equal(cm_key_load(home, "bob", pub2, &secret),
			 CM_ERR_NOT_FOUND);
}

static void key_readable_by_others_rejected(void **state)
{
	char path[CM_HOME_PATH_MAX];
	uint8_t pub[32], *secret = NULL;

	(void)state;
	assert_int_equal(cm_key_new(home, "carol", pub), CM_OK);
	cm_home_path(home, "keys/carol.key", path);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cm_key_load(home, "carol", pub, &secret),
			 CM_ERR_KEY_MODE);
	assert_null(secret);
	assert_non_null(strstr(cm_err_detail(), "chmod 600"));
}

static int count_key(void *ctx, const char *name, const uint8_t pub[32])
{
	(void)name;
	(void)pub;
	(*(int *)ctx)++;
	return 0;
}

static void key_list_counts(void **state)
{
	int n = 0;

	(void)state;
	assert_int_equal(cm_key_list(home, count_key, &n), CM_OK);
	assert_int_equal(n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_names_unique),
		cmocka_unit_test(error_detail_kept),
		cmocka_unit_test(hex_round_trip),
		cmocka_unit_test(time_parse_forms),
		cmocka_unit_test(parse_u64_strict),
		cmocka_unit_test(home_init_and_keys),
		cmocka_unit_test(key_readable_by_others_rejected),
		cmocka_unit_test(key_list_counts),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, make_home, remove_home);
}
