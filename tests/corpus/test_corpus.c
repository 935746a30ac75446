/*
 * test_corpus.c - every record of the bad-input corpus is rejected with
 * the reason its index line names, and every record of valid/ is
 * accepted and stored.
 *
 * Usage: test_corpus DIR, where DIR holds index.tsv, the rejected
 * records, valid/ and setup/ (see tests/corpus/records/README.md).
 * Records are opened with proto_record_open at the current time, as a
 * node does. A record with a setup file is checked by storing the setup
 * record in a fresh store first and then storing the record.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm_error.h"
#include "cm_util.h"
#include "proto_record.h"
#include "store.h"

/* The corpus must keep at least this many rejected records. */
#define CORPUS_MIN 40
/* Larger than every corpus record, so that oversized ones load whole. */
#define FILE_MAX (256 * 1024)
#define NAME_MAX_LEN 128
#define STORE_TEST_MAP (64ULL * 1024 * 1024)

static const char *g_dir;

typedef struct entry {
	char file[NAME_MAX_LEN];
	char reason[48];
	char setup[NAME_MAX_LEN];
} entry;

/* Reads file DIR/name into a malloc'd buffer. */
static uint8_t *load(const char *name, size_t *len)
{
	char path[1024];
	uint8_t *buf = malloc(FILE_MAX);
	FILE *f;

	assert_non_null(buf);
	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	*len = fread(buf, 1, FILE_MAX, f);
	if (!feof(f))
		fail_msg("%s is over %d bytes", path, FILE_MAX);
	fclose(f);
	return buf;
}

/* Parses index.tsv into a malloc'd array; returns the entry count. */
static size_t read_index(entry **out)
{
	char path[1024], line[1024];
	size_t n = 0, cap = 256;
	entry *e = calloc(cap, sizeof(*e));
	FILE *f;

	assert_non_null(e);
	snprintf(path, sizeof(path), "%s/index.tsv", g_dir);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *file, *reason, *setup, *save = NULL;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		file = strtok_r(line, "\t\n", &save);
		reason = strtok_r(NULL, "\t\n", &save);
		setup = strtok_r(NULL, "\t\n", &save);
		if (file == NULL || reason == NULL || setup == NULL)
			fail_msg("index line %zu has fewer than 3 fields", n + 1);
		if (n == cap)
			fail_msg("index has more than %zu lines", cap);
		snprintf(e[n].file, sizeof(e[n].file), "%s", file);
		snprintf(e[n].reason, sizeof(e[n].reason), "%s", reason);
		snprintf(e[n].setup, sizeof(e[n].setup), "%s", setup);
		n++;
	}
	fclose(f);
	*out = e;
	return n;
}

/* Opens a fresh store in a new temporary folder. */
static store *fresh_store(char dir[64])
{
	store *s = NULL;

	snprintf(dir, 64, "/tmp/clipmesh-corpus.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open_sized(dir, STORE_TEST_MAP, &s), CM_OK);
	return s;
}

static void remove_store(store **s, const char *dir)
{
	char path[128];

	store_close(s);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

/* Returns the reason name that opening and then storing `name` yields,
 * after storing `setup` (or nothing for "-") in a fresh store. */
static const char *verdict(const char *name, const char *setup)
{
	proto_signed *rec = malloc(sizeof(*rec));
	uint8_t *wire, *setup_wire = NULL;
	char dir[64];
	store *s = NULL;
	size_t len, setup_len;
	cm_err err, result;

	assert_non_null(rec);
	wire = load(name, &len);
	if (strcmp(setup, "-") != 0) {
		setup_wire = load(setup, &setup_len);
		s = fresh_store(dir);
		err = proto_record_open(setup_wire, setup_len, cm_now_ms(),
					rec);
		if (err)
			fail_msg("setup %s is rejected: %s (%s)", setup,
				 cm_err_name(err), cm_err_detail());
		assert_int_equal(store_put_batch(s, rec, 1, &result), CM_OK);
		if (result != CM_OK)
			fail_msg("setup %s is not stored: %s", setup,
				 cm_err_name(result));
	}

	cm_err_clear();
	err = proto_record_open(wire, len, cm_now_ms(), rec);
	if (!err && s != NULL) {
		assert_int_equal(store_put_batch(s, rec, 1, &result), CM_OK);
		err = result;
	}
	if (s != NULL)
		remove_store(&s, dir);
	free(setup_wire);
	free(wire);
	free(rec);
	return cm_err_name(err);
}

static void corpus_rejects_with_reason(void **state)
{
	entry *e = NULL;
	size_t n = read_index(&e), wrong = 0;

	(void)state;
	if (n < CORPUS_MIN)
		fail_msg("the corpus has %zu records, expected at least %d",
			 n, CORPUS_MIN);
	for (size_t i = 0; i < n; i++) {
		const char *got = verdict(e[i].file, e[i].setup);

		if (strcmp(got, e[i].reason) == 0)
			continue;
		print_error("%s: expected %s, got %s (%s)\n", e[i].file,
			    e[i].reason, got, cm_err_detail());
		wrong++;
	}
	free(e);
	if (wrong)
		fail_msg("%zu of %zu corpus records got the wrong verdict",
			 wrong, n);
}

/* Every record file in DIR has an index line, so none is left
 * unchecked. */
static void corpus_index_complete(void **state)
{
	entry *e = NULL;
	size_t n = read_index(&e), orphans = 0;
	struct dirent *d;
	DIR *dir = opendir(g_dir);

	(void)state;
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		size_t len = strlen(d->d_name);
		bool listed = false;

		if (len < 4 || strcmp(d->d_name + len - 4, ".rec") != 0)
			continue;
		for (size_t i = 0; i < n && !listed; i++)
			listed = strcmp(e[i].file, d->d_name) == 0;
		if (!listed) {
			print_error("%s has no line in index.tsv\n", d->d_name);
			orphans++;
		}
	}
	closedir(dir);
	free(e);
	assert_int_equal(orphans, 0);
}

/* Records at each limit are accepted and stored, each in a fresh store
 * because the profiles share an author and would supersede each other. */
static void corpus_valid_accepted(void **state)
{
	char path[1024], name[300], dir_name[64];
	proto_signed *rec = malloc(sizeof(*rec));
	size_t n = 0, wrong = 0;
	struct dirent *d;
	store *s = NULL;
	DIR *dir;

	(void)state;
	assert_non_null(rec);
	snprintf(path, sizeof(path), "%s/valid", g_dir);
	dir = opendir(path);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		uint8_t *wire;
		size_t len;
		cm_err err, result = CM_OK;

		if (strstr(d->d_name, ".rec") == NULL)
			continue;
		snprintf(name, sizeof(name), "valid/%s", d->d_name);
		wire = load(name, &len);
		cm_err_clear();
		err = proto_record_open(wire, len, cm_now_ms(), rec);
		if (!err) {
			s = fresh_store(dir_name);
			assert_int_equal(store_put_batch(s, rec, 1, &result),
					 CM_OK);
			remove_store(&s, dir_name);
		}
		if (err || result) {
			print_error("%s: expected ok, got %s (%s)\n", name,
				    cm_err_name(err ? err : result),
				    cm_err_detail());
			wrong++;
		}
		free(wire);
		n++;
	}
	closedir(dir);
	free(rec);
	if (n == 0)
		fail_msg("%s holds no .rec files", path);
	if (wrong)
		fail_msg("%zu of %zu valid records were rejected", wrong, n);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(corpus_rejects_with_reason),
		cmocka_unit_test(corpus_index_complete),
		cmocka_unit_test(corpus_valid_accepted),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_corpus DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	g_dir = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
