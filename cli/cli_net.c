#define _GNU_SOURCE
#include "cli_net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm_util.h"

#define INODES_MAX 64 /* listening sockets on one port */

bool cli_split_host_port(const char *hp, char *host, size_t cap,
			 unsigned *port)
{
	const char *colon = strrchr(hp, ':');
	uint64_t value;
	size_t n;

	/* A port alone is how the http setting names 127.0.0.1:PORT. */
	if (colon == NULL && cm_parse_u64(hp, &value) && value >= 1 &&
	    value <= 65535 && cap > strlen("127.0.0.1")) {
		cm_strlcpy(host, "127.0.0.1", cap);
		*port = (unsigned)value;
		return true;
	}
	if (colon == NULL || !cm_parse_u64(colon + 1, &value) || value == 0 ||
	    value > 65535)
		return false;
	n = (size_t)(colon - hp);
	if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') {
		hp++;
		n -= 2;
	}
	if (n == 0 || n >= cap)
		return false;
	memcpy(host, hp, n);
	host[n] = '\0';
	*port = (unsigned)value;
	return true;
}

static int lookup(const char *host, unsigned port, int flags,
		  struct addrinfo **res)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = flags | AI_NUMERICSERV};
	char service[8];

	snprintf(service, sizeof(service), "%u", port);
	return getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, service,
			   &hints, res);
}

int cli_port_try_bind(const char *host, unsigned port)
{
	struct addrinfo *res = NULL;
	int fd, on = 1, rc;

	if (lookup(host, port, AI_PASSIVE, &res) != 0)
		return EADDRNOTAVAIL;
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = errno;
		goto out;
	}
	/* As libzmq does, so that connections in TIME_WAIT do not count. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	rc = bind(fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : errno;
	close(fd);
out:
	freeaddrinfo(res);
	return rc;
}

/* Adds the inodes of sockets listening on `port` in a /proc/net/tcp
 * style file to inodes[*n]. */
static void listening_inodes(const char *table, unsigned port,
			     unsigned long *inodes, size_t *n)
{
	char line[512];
	FILE *f = fopen(table, "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL && *n < INODES_MAX) {
		char local[64];
		unsigned state, local_port;
		unsigned long inode;
		const char *colon;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*u %*u %lu",
			   local, &state, &inode) != 3)
			continue;
		colon = strrchr(local, ':');
		if (colon == NULL || sscanf(colon + 1, "%x", &local_port) != 1)
			continue;
		if (state == 0x0A && local_port == port) /* TCP_LISTEN */
			inodes[(*n)++] = inode;
	}
	fclose(f);
}

bool cli_port_held_by(pid_t pid, unsigned port)
{
	unsigned long inodes[INODES_MAX];
	char dir_path[64], link_path[320], target[64];
	struct dirent *ent;
	bool held = false;
	size_t n = 0;
	DIR *dir;

	listening_inodes("/proc/net/tcp", port, inodes, &n);
	listening_inodes("/proc/net/tcp6", port, inodes, &n);
	if (n == 0)
		return false;
	snprintf(dir_path, sizeof(dir_path), "/proc/%ld/fd", (long)pid);
	dir = opendir(dir_path);
	if (dir == NULL)
		return false;
	while (!held && (ent = readdir(dir)) != NULL) {
		unsigned long inode;
		ssize_t len;

		snprintf(link_path, sizeof(link_path), "%s/%s", dir_path,
			 ent->d_name);
		len = readlink(link_path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &inode) != 1)
			continue;
		for (size_t i = 0; i < n && !held; i++)
			held = inodes[i] == inode;
	}
	closedir(dir);
	return held;
}

/* Connects fd to addr, waiting at most timeout_ms; returns 0 or errno. */
static int connect_within(int fd, const struct addrinfo *addr,
			  unsigned timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	int err = 0;

	if (connect(fd, addr->ai_addr, addr->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	if (poll(&pfd, 1, (int)timeout_ms) <= 0)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

int cli_tcp_probe(const char *host, unsigned port, unsigned timeout_ms,
		  char *why, size_t cap)
{
	struct addrinfo *res = NULL;
	int fd, rc, gai;

	gai = lookup(host, port, 0, &res);
	if (gai != 0) {
		snprintf(why, cap, "cannot resolve %s: %s", host,
			 gai_strerror(gai));
		return EHOSTUNREACH;
	}
	fd = socket(res->ai_family,
		    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	rc = fd < 0 ? errno : connect_within(fd, res, timeout_ms);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	snprintf(why, cap, "%s", rc ? strerror(rc) : "connected");
	return rc;
}
