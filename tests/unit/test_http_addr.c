/*
 * test_http_addr.c - the parser of the HTTP API's listen address
 * (http_parse_addr): the forms it takes and the ones it rejects.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

/* Parses text and checks the family, port and numeric host. */
static void expect_addr(const char *text, int family, const char *host,
			uint16_t port)
{
	struct sockaddr_storage addr;
	socklen_t len = 0;
	char shown[INET6_ADDRSTRLEN];

	assert_int_equal(http_parse_addr(text, &addr, &len), CM_OK);
	assert_int_equal(addr.ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&addr;

		assert_int_equal(len, sizeof(*v4));
		assert_int_equal(ntohs(v4->sin_port), port);
		inet_ntop(AF_INET, &v4->sin_addr, shown, sizeof(shown));
	} else {
		const struct sockaddr_in6 *v6 =
			(const struct sockaddr_in6 *)&addr;

		assert_int_equal(len, sizeof(*v6));
		assert_int_equal(ntohs(v6->sin6_port), port);
		inet_ntop(AF_INET6, &v6->sin6_addr, shown, sizeof(shown));
	}
	assert_string_equal(shown, host);
}

static void addr_forms_accepted(void **state)
{
	(void)state;
	expect_addr("8080", AF_INET, "127.0.0.1", 8080);
	expect_addr("0.0.0.0:80", AF_INET, "0.0.0.0", 80);
	expect_addr("localhost:9000", AF_INET, "127.0.0.1", 9000);
	expect_addr("[::1]:65535", AF_INET6, "::1", 65535);
	expect_addr("[::]:1", AF_INET6, "::", 1);
}

static void addr_invalid_rejected(void **state)
{
	static const char *const bad[] = {
		"", "0", "65536", "127.0.0.1:", "127.0.0.1:-1",
		"example.org:80", "[::1]80", "[::1", "::1:80",
		"[::ffff:127.0.0.1]:8080",
	};
	struct sockaddr_storage addr;
	socklen_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cm_err_clear();
		assert_int_equal(http_parse_addr(bad[i], &addr, &len),
				 CM_ERR_USAGE);
		assert_non_null(strstr(cm_err_detail(), "invalid HTTP address"));
	}
}

static void addr_mapped_names_fix(void **state)
{
	struct sockaddr_storage addr;
	socklen_t len;

	(void)state;
	assert_int_equal(http_parse_addr("[::ffff:127.0.0.1]:8080", &addr,
					 &len),
			 CM_ERR_USAGE);
	assert_non_null(strstr(cm_err_detail(), "IPv4-mapped"));
	assert_non_null(strstr(cm_err_detail(), "IPV4:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(addr_forms_accepted),
		cmocka_unit_test(addr_invalid_rejected),
		cmocka_unit_test(addr_mapped_names_fix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
