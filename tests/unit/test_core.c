/* Unit tests of core/: errors, hex, time and the home folder. */
#define _GNU_SOURCE /* memmem */
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
#include "cm_keyfile.h"
#include "cm_limits.h"
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

static void time_parse_rejects_invalid_dates(void **state)
{
	uint64_t ms;

	(void)state;
	assert_false(cm_time_parse("2026-02-30T00:00:00Z", &ms));
	assert_false(cm_time_parse("2026-02-29", &ms));
	assert_false(cm_time_parse("2026-04-31", &ms));
	assert_false(cm_time_parse("2026-12-04T15:47:60Z", &ms));
	assert_false(cm_time_parse("2026-12-04T24:00:00Z", &ms));
	assert_true(cm_time_parse("2028-02-29", &ms));
	assert_true(cm_time_parse("2026-12-31T23:59:59.999Z", &ms));
	assert_int_equal(ms, 1798761599999ULL);
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

/* Makes ASan's allocator return NULL for a request it cannot serve, as
 * glibc's does, so that the allocation failure path of cm_array_reserve
 * runs under sanitizers too. Builds without ASan never call this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static void array_reserve_grows(void **state)
{
	uint32_t *items = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(cm_array_reserve((void **)&items, &cap, 0,
					  sizeof(*items)), CM_OK);
	assert_null(items);
	assert_int_equal(cap, 0);

	assert_int_equal(cm_array_reserve((void **)&items, &cap, 1,
					  sizeof(*items)), CM_OK);
	assert_non_null(items);
	assert_int_equal(cap, 16);
	for (uint32_t i = 0; i < 16; i++)
		items[i] = i;

	assert_int_equal(cm_array_reserve((void **)&items, &cap, 16,
					  sizeof(*items)), CM_OK);
	assert_int_equal(cap, 16);
	assert_int_equal(cm_array_reserve((void **)&items, &cap, 17,
					  sizeof(*items)), CM_OK);
	assert_int_equal(cap, 32);
	assert_int_equal(cm_array_reserve((void **)&items, &cap, 100,
					  sizeof(*items)), CM_OK);
	assert_int_equal(cap, 100);
	for (uint32_t i = 0; i < 16; i++)
		assert_int_equal(items[i], i);
	items[99] = 99;
	free(items);
}

static void array_reserve_rejects_overflow(void **state)
{
	uint8_t (*items)[32] = NULL;
	size_t cap = 0;

	(void)state;
	cm_err_clear();
	assert_int_equal(cm_array_reserve((void **)&items, &cap,
					  SIZE_MAX / 32 + 1, 32),
			 CM_ERR_NOMEM);
	assert_null(items);
	assert_int_equal(cap, 0);
	assert_non_null(strstr(cm_err_detail(), "overflow"));

	assert_int_equal(cm_array_reserve((void **)&items, &cap, SIZE_MAX,
					  1), CM_ERR_NOMEM);
	assert_null(items);
	assert_int_equal(cap, 0);
}

/* Twice this capacity in 32-byte items overflows size_t in bytes, so the
 * new capacity must stop at SIZE_MAX / 32 items and fail to allocate,
 * not wrap around to a small allocation that succeeds. The items are
 * never touched, so a NULL array is enough. */
static void array_reserve_doubling_capped(void **state)
{
	uint8_t (*items)[32] = NULL;
	size_t cap = SIZE_MAX / 32 / 2 + 1;

	(void)state;
	assert_int_equal(cm_array_reserve((void **)&items, &cap, cap + 1, 32),
			 CM_ERR_NOMEM);
	assert_null(items);
	assert_int_equal(cap, SIZE_MAX / 32 / 2 + 1);
}

static void array_reserve_failure_keeps_items(void **state)
{
	uint8_t *items = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(cm_array_reserve((void **)&items, &cap, 3, 1),
			 CM_OK);
	memcpy(items, "abc", 3);

	cm_err_clear();
	assert_int_equal(cm_array_reserve((void **)&items, &cap,
					  SIZE_MAX / 2 + 1, 1),
			 CM_ERR_NOMEM);
	assert_non_null(items);
	assert_int_equal(cap, 16);
	assert_memory_equal(items, "abc", 3);
	assert_non_null(strstr(cm_err_detail(), "cannot allocate"));
	free(items);
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
	bool created, restored;

	(void)state;
	assert_false(cm_home_is_init(home));
	assert_int_equal(cm_home_init(home, &created, &restored), CM_OK);
	assert_true(created);
	assert_true(cm_home_is_init(home));
	assert_int_equal(cm_home_init(home, &created, &restored), CM_OK);
	assert_false(created);
	assert_false(restored);

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

#define PASS "correct horse battery staple"
#define FAST_OPS CM_KEY_PWHASH_OPSLIMIT_MIN
#define FAST_MEM CM_KEY_PWHASH_MEMLIMIT_MIN

/* Seals a fresh secret with the cheapest accepted cost. */
static void seal_fresh(uint8_t secret[64], uint8_t file[CM_KEYFILE_LEN])
{
	randombytes_buf(secret, 64);
	assert_int_equal(cm_keyfile_seal(secret, PASS, strlen(PASS), FAST_OPS,
					 FAST_MEM, file),
			 CM_OK);
}

static void keyfile_round_trip(void **state)
{
	uint8_t secret[64], back[64], file[CM_KEYFILE_LEN];

	(void)state;
	seal_fresh(secret, file);
	assert_true(cm_keyfile_is_sealed(file, sizeof(file)));
	assert_memory_equal(file, CM_KEYFILE_MAGIC, CM_KEYFILE_MAGIC_LEN);
	assert_int_equal(file[CM_KEYFILE_MAGIC_LEN], CM_KEYFILE_VERSION);
	assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
					 strlen(PASS), back),
			 CM_OK);
	assert_memory_equal(secret, back, 64);
}

static void keyfile_wrong_passphrase(void **state)
{
	uint8_t secret[64], back[64], file[CM_KEYFILE_LEN];

	(void)state;
	seal_fresh(secret, file);
	memset(back, 0xaa, sizeof(back));
	assert_int_equal(cm_keyfile_open(file, sizeof(file), "wrong", 5, back),
			 CM_ERR_PASSPHRASE);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
}

/* A changed salt, nonce or box byte makes the box fail to open. */
static void keyfile_changed_byte(void **state)
{
	static const size_t offsets[] = {37, 60, 80, 100, CM_KEYFILE_LEN - 1};
	uint8_t secret[64], back[64], file[CM_KEYFILE_LEN];

	(void)state;
	seal_fresh(secret, file);
	for (size_t i = 0; i < sizeof(offsets) / sizeof(*offsets); i++) {
		file[offsets[i]] ^= 0x01;
		assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
						 strlen(PASS), back),
				 CM_ERR_PASSPHRASE);
		file[offsets[i]] ^= 0x01;
	}
}

/* The header is checked before Argon2id runs: a file that claims 1 TiB
 * of memory fails at once. */
static void keyfile_header_checked(void **state)
{
	uint8_t secret[64], back[64], file[CM_KEYFILE_LEN];
	uint8_t longer[CM_KEYFILE_LEN + 1];

	(void)state;
	seal_fresh(secret, file);

	file[CM_KEYFILE_MAGIC_LEN] = 2;
	assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_VERSION);
	file[CM_KEYFILE_MAGIC_LEN] = CM_KEYFILE_VERSION;

	file[CM_KEYFILE_MAGIC_LEN + 5 + 3] = 0x01; /* memlimit 1 TiB more */
	assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_FIELD);
	assert_non_null(strstr(cm_err_detail(), "bounds"));
	file[CM_KEYFILE_MAGIC_LEN + 5 + 3] = 0x00;

	file[CM_KEYFILE_MAGIC_LEN + 4] = 9; /* opslimit 9 */
	assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_FIELD);
	file[CM_KEYFILE_MAGIC_LEN + 4] = FAST_OPS;

	assert_int_equal(cm_keyfile_open(file, sizeof(file) - 1, PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_FIELD);
	memcpy(longer, file, sizeof(file));
	longer[sizeof(file)] = 0;
	assert_int_equal(cm_keyfile_open(longer, sizeof(longer), PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_FIELD);
	assert_int_equal(cm_keyfile_open(file, CM_KEYFILE_MAGIC_LEN, PASS,
					 strlen(PASS), back),
			 CM_ERR_BAD_VERSION);
	assert_int_equal(cm_keyfile_open(file, sizeof(file), PASS,
					 strlen(PASS), back),
			 CM_OK);
}

static void keyfile_seal_checks_input(void **state)
{
	uint8_t secret[64] = {0}, file[CM_KEYFILE_LEN];
	char *long_pass = calloc(1, CM_PASSPHRASE_MAX + 2);

	(void)state;
	assert_non_null(long_pass);
	memset(long_pass, 'p', CM_PASSPHRASE_MAX + 1);
	assert_int_equal(cm_keyfile_seal(secret, "", 0, FAST_OPS, FAST_MEM,
					 file),
			 CM_ERR_USAGE);
	assert_int_equal(cm_keyfile_seal(secret, long_pass,
					 CM_PASSPHRASE_MAX + 1, FAST_OPS,
					 FAST_MEM, file),
			 CM_ERR_USAGE);
	assert_int_equal(cm_keyfile_seal(secret, PASS, strlen(PASS), 1,
					 FAST_MEM, file),
			 CM_ERR_USAGE);
	free(long_pass);
}

/* Reads a whole small file into buf[cap]; returns its length. */
static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* A sealed identity is created, detected, rejected without or with a
 * wrong passphrase and loaded with the right one. Its file contains no
 * key bytes. */
static void sealed_identity_loads(void **state)
{
	uint8_t pub[32], pub2[32], *secret = NULL, file[512];
	char path[CM_HOME_PATH_MAX], hex[129];
	bool sealed = false;
	size_t n;

	(void)state;
	assert_int_equal(cm_key_new_sealed(home, "dana", PASS, strlen(PASS),
					   pub),
			 CM_OK);
	assert_int_equal(cm_key_is_sealed(home, "dana", &sealed), CM_OK);
	assert_true(sealed);
	assert_int_equal(cm_key_is_sealed(home, "alice", &sealed), CM_OK);
	assert_false(sealed);
	assert_int_equal(cm_key_is_sealed(home, "nobody", &sealed),
			 CM_ERR_NOT_FOUND);

	assert_int_equal(cm_key_load(home, "dana", pub2, &secret),
			 CM_ERR_PASSPHRASE);
	assert_null(secret);
	assert_non_null(strstr(cm_err_detail(), "dana"));
	assert_int_equal(cm_key_load_sealed(home, "dana", "guess", 5, pub2,
					    &secret),
			 CM_ERR_PASSPHRASE);
	assert_null(secret);
	assert_int_equal(cm_key_load_sealed(home, "dana", PASS, strlen(PASS),
					    pub2, &secret),
			 CM_OK);
	assert_memory_equal(pub, pub2, 32);

	cm_home_path(home, "keys/dana.key", path);
	n = slurp(path, file, sizeof(file));
	assert_int_equal(n, CM_KEYFILE_LEN);
	cm_hex_encode(secret, 32, hex);
	for (size_t i = 0; i + 32 <= n; i++)
		assert_memory_not_equal(file + i, secret, 32);
	assert_null(memmem(file, n, hex, 64));
	cm_secret_free(&secret);
}

static void sealed_key_readable_by_others_rejected(void **state)
{
	char path[CM_HOME_PATH_MAX];
	uint8_t pub[32], *secret = NULL;

	(void)state;
	cm_home_path(home, "keys/dana.key", path);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(cm_key_load_sealed(home, "dana", PASS, strlen(PASS),
					    pub, &secret),
			 CM_ERR_KEY_MODE);
	assert_null(secret);
	assert_non_null(strstr(cm_err_detail(), "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
}

/* cm_key_reseal changes the passphrase, and with NULL stores the key
 * plain again; the key itself stays the same. */
static void sealed_key_passphrase_changes(void **state)
{
	uint8_t pub[32], *secret = NULL, *again = NULL;
	char path[CM_HOME_PATH_MAX];
	struct stat st;
	bool sealed = true;

	(void)state;
	assert_int_equal(cm_key_load_sealed(home, "dana", PASS, strlen(PASS),
					    pub, &secret),
			 CM_OK);
	assert_int_equal(cm_key_reseal(home, "dana", secret, "new one", 7),
			 CM_OK);
	cm_home_path(home, "keys/dana.key", path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cm_key_load_sealed(home, "dana", PASS, strlen(PASS),
					    pub, &again),
			 CM_ERR_PASSPHRASE);
	assert_int_equal(cm_key_load_sealed(home, "dana", "new one", 7, pub,
					    &again),
			 CM_OK);
	assert_memory_equal(secret, again, 64);
	cm_secret_free(&again);

	assert_int_equal(cm_key_reseal(home, "dana", secret, NULL, 0), CM_OK);
	assert_int_equal(cm_key_is_sealed(home, "dana", &sealed), CM_OK);
	assert_false(sealed);
	assert_int_equal(cm_key_load(home, "dana", pub, &again), CM_OK);
	assert_memory_equal(secret, again, 64);
	cm_secret_free(&again);
	cm_secret_free(&secret);
}

/* The node's transport key is never sealed: a sealed node.key is an
 * error, not a prompt. */
static void transport_key_never_sealed(void **state)
{
	char path[CM_HOME_PATH_MAX], saved[CM_HOME_PATH_MAX + 8];
	uint8_t secret[64], file[CM_KEYFILE_LEN], pub[32], *sec = NULL;
	FILE *f;

	(void)state;
	cm_home_path(home, "node.key", path);
	snprintf(saved, sizeof(saved), "%s.saved", path);
	assert_int_equal(rename(path, saved), 0);
	seal_fresh(secret, file);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(file, 1, sizeof(file), f), sizeof(file));
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cm_home_transport_key(home, pub, &sec), CM_ERR_IO);
	assert_null(sec);
	assert_non_null(strstr(cm_err_detail(), "sealed"));
	assert_int_equal(rename(saved, path), 0);
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
	assert_int_equal(n, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_names_unique),
		cmocka_unit_test(error_detail_kept),
		cmocka_unit_test(hex_round_trip),
		cmocka_unit_test(time_parse_forms),
		cmocka_unit_test(time_parse_rejects_invalid_dates),
		cmocka_unit_test(parse_u64_strict),
		cmocka_unit_test(array_reserve_grows),
		cmocka_unit_test(array_reserve_rejects_overflow),
		cmocka_unit_test(array_reserve_doubling_capped),
		cmocka_unit_test(array_reserve_failure_keeps_items),
		cmocka_unit_test(home_init_and_keys),
		cmocka_unit_test(key_readable_by_others_rejected),
		cmocka_unit_test(keyfile_round_trip),
		cmocka_unit_test(keyfile_wrong_passphrase),
		cmocka_unit_test(keyfile_changed_byte),
		cmocka_unit_test(keyfile_header_checked),
		cmocka_unit_test(keyfile_seal_checks_input),
		cmocka_unit_test(sealed_identity_loads),
		cmocka_unit_test(sealed_key_readable_by_others_rejected),
		cmocka_unit_test(sealed_key_passphrase_changes),
		cmocka_unit_test(transport_key_never_sealed),
		cmocka_unit_test(key_list_counts),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, make_home, remove_home);
}
