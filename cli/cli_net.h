/* cli_net.h - TCP checks of `clipmesh doctor`: ports, their owners and
 * peers' reachability. */
#ifndef CLI_NET_H
#define CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Splits "HOST:PORT" (HOST may be "[v6]" or "*") into host[cap] without
 * brackets and *port; false when it has no valid port. */
bool cli_split_host_port(const char *hp, char *host, size_t cap,
			 unsigned *port);

/*
 * Tries to bind a TCP socket to host:port (host "*" means every
 * address). Returns 0 when the port is free, else the errno of bind
 * (EADDRINUSE when something listens there) or of the name lookup.
 */
int cli_port_try_bind(const char *host, unsigned port);

/* True when process `pid` has a TCP socket listening on `port` (read
 * from /proc). */
bool cli_port_held_by(pid_t pid, unsigned port);

/*
 * Opens a TCP connection to host:port within timeout_ms and closes it.
 * Returns 0 on success, else an errno (ETIMEDOUT, ECONNREFUSED...);
 * a failed name lookup writes its message into why[cap] and returns
 * EHOSTUNREACH.
 */
int cli_tcp_probe(const char *host, unsigned port, unsigned timeout_ms,
		  char *why, size_t cap);

#endif
