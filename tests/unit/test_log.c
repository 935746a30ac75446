/* Unit tests of the logging module: line format, journal prefixes and
 * the rate limit of repeated warnings. stderr is redirected to a file
 * for each test and read back. */
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

#include "cm_limits.h"
#include "cm_log.h"

static char path[] = "/tmp/clipmesh-log-XXXXXX";
static int saved_stderr = -1;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* Sends stderr to a fresh temporary file. */
static int capture(void **state)
{
	int fd;

	(void)state;
	memcpy(path, "/tmp/clipmesh-log-XXXXXX", sizeof(path));
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
	fake_now = 1000000;
	cm_log_set_clock(fake_clock);
	cm_log_set_level(CM_LOG_DEBUG);
	unsetenv("JOURNAL_STREAM");
	cm_log_init();
	return 0;
}

static int restore(void **state)
{
	(void)state;
	cm_log_set_clock(NULL);
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	unlink(path);
	return 0;
}

/* Reads the captured lines into buf[cap]; returns the line count. */
static int captured(char *buf, size_t cap)
{
	FILE *f;
	size_t n;
	int lines = 0;

	fflush(stderr);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	return lines;
}

static int count_of(const char *text, const char *part)
{
	int n = 0;

	for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
		n++;
	return n;
}

static void line_has_time_level_module(void **state)
{
	char out[4096];

	(void)state;
	cm_info("node", "peer connected peer=%s", "1a2b3c4d");
	assert_int_equal(captured(out, sizeof(out)), 1);
	/* 2026-12-04T15:47:00.123Z info node: ... */
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[23], 'Z');
	assert_non_null(strstr(out, "Z info node: peer connected "
				    "peer=1a2b3c4d\n"));
}

static void level_filters_lines(void **state)
{
	char out[4096];

	(void)state;
	cm_log_set_level(CM_LOG_WARN);
	cm_info("node", "not printed");
	cm_warn("node", "printed");
	assert_int_equal(captured(out, sizeof(out)), 1);
	assert_null(strstr(out, "not printed"));
}

static void control_chars_stay_in_line(void **state)
{
	char out[4096];

	(void)state;
	cm_info("node", "value=%s", "a\nb\rc");
	assert_int_equal(captured(out, sizeof(out)), 1);
	assert_non_null(strstr(out, "value=a?b?c\n"));
}

static void repeats_suppressed_then_counted(void **state)
{
	char out[16384];

	(void)state;
	for (int i = 0; i < 50; i++)
		cm_warn("node", "peer %d sent a bad record", i);
	cm_warn("store", "other warning");
	assert_int_equal(captured(out, sizeof(out)), CM_LOG_REPEAT_BURST + 1);
	assert_int_equal(count_of(out, "sent a bad record"),
			 CM_LOG_REPEAT_BURST);

	/* The window ends: the next line of any kind reports the count. */
	fake_now += CM_LOG_REPEAT_WINDOW_MS;
	cm_info("node", "later");
	captured(out, sizeof(out));
	/* The count quotes the last line printed, not its format. */
	assert_non_null(strstr(out, "warn node: 45 more lines like \"peer 4 "
				    "sent a bad record\" suppressed in "));
	assert_int_equal(count_of(out, "more lines like"), 1);
}

/* A long message is quoted cut short, with a mark. */
static void repeats_quote_long_line(void **state)
{
	char out[16384], text[300];

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < CM_LOG_REPEAT_BURST + 1; i++)
		cm_warn("node", "long %s", text);
	fake_now += CM_LOG_REPEAT_WINDOW_MS;
	cm_info("node", "later");
	captured(out, sizeof(out));
	assert_non_null(strstr(out, "1 more lines like \"long xxx"));
	assert_non_null(strstr(out, "xxx...\" suppressed in "));
}

static void new_window_prints_again(void **state)
{
	char out[16384];

	(void)state;
	for (int i = 0; i < CM_LOG_REPEAT_BURST + 3; i++)
		cm_error("node", "disk full");
	fake_now += CM_LOG_REPEAT_WINDOW_MS + 1;
	for (int i = 0; i < CM_LOG_REPEAT_BURST; i++)
		cm_error("node", "disk full");
	captured(out, sizeof(out));
	assert_int_equal(count_of(out, "error node: disk full"),
			 2 * CM_LOG_REPEAT_BURST);
	assert_int_equal(count_of(out, "3 more lines like \"disk full\""), 1);
}

static void flush_reports_open_windows(void **state)
{
	char out[16384];

	(void)state;
	for (int i = 0; i < CM_LOG_REPEAT_BURST + 2; i++)
		cm_warn("node", "slow peer");
	cm_log_flush(false);
	captured(out, sizeof(out));
	assert_int_equal(count_of(out, "more lines like"), 0);
	cm_log_flush(true);
	captured(out, sizeof(out));
	assert_int_equal(count_of(out, "2 more lines like \"slow peer\""), 1);
}

static void info_lines_not_limited(void **state)
{
	char out[16384];

	(void)state;
	for (int i = 0; i < 20; i++)
		cm_info("node", "stored records");
	assert_int_equal(captured(out, sizeof(out)), 20);
}

static void journal_stream_gets_priorities(void **state)
{
	struct stat st;
	char env[64], out[4096];

	(void)state;
	assert_int_equal(fstat(2, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	cm_log_init();
	assert_true(cm_log_journal());
	cm_warn("node", "peer banned");
	cm_info("node", "started");
	cm_debug("node", "detail");
	cm_error("store", "map full");
	captured(out, sizeof(out));
	assert_non_null(strstr(out, "<4>warn node: peer banned\n"));
	assert_non_null(strstr(out, "<6>info node: started\n"));
	assert_non_null(strstr(out, "<7>debug node: detail\n"));
	assert_non_null(strstr(out, "<3>error store: map full\n"));
	assert_null(strchr(out, 'Z'));
}

static void other_stream_keeps_time(void **state)
{
	(void)state;
	setenv("JOURNAL_STREAM", "1:2", 1);
	cm_log_init();
	assert_false(cm_log_journal());
	setenv("JOURNAL_STREAM", "junk", 1);
	cm_log_init();
	assert_false(cm_log_journal());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(line_has_time_level_module,
						capture, restore),
		cmocka_unit_test_setup_teardown(level_filters_lines, capture,
						restore),
		cmocka_unit_test_setup_teardown(control_chars_stay_in_line,
						capture, restore),
		cmocka_unit_test_setup_teardown(repeats_suppressed_then_counted,
						capture, restore),
		cmocka_unit_test_setup_teardown(repeats_quote_long_line,
						capture, restore),
		cmocka_unit_test_setup_teardown(new_window_prints_again,
						capture, restore),
		cmocka_unit_test_setup_teardown(flush_reports_open_windows,
						capture, restore),
		cmocka_unit_test_setup_teardown(info_lines_not_limited,
						capture, restore),
		cmocka_unit_test_setup_teardown(journal_stream_gets_priorities,
						capture, restore),
		cmocka_unit_test_setup_teardown(other_stream_keeps_time,
						capture, restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
