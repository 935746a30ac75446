/*
 * corpus_peer.h - the minimal CURVE peer that push_records and
 * recon_records use to hand corpus records to a running clipmesh node.
 *
 * The peer connects with a fresh key pair (or, when the environment
 * variable CORPUS_PEER_KEY names a file, the key pair kept in that file,
 * made on first use, so that several runs are one peer to the node),
 * sends a HELLO with an empty
 * interest, so that the node sends it no records, and waits for the
 * node's HELLO. Records are framed by hand, not with
 * proto_wire_records(), so that records over the size limit reach the
 * node too. Errors are printed on stderr with the program name.
 */
#ifndef CORPUS_PEER_H
#define CORPUS_PEER_H

#include <stddef.h>
#include <stdint.h>

/* Time the node gets to reply to our HELLO, generous for ASan builds. */
#define CORPUS_PEER_HELLO_TIMEOUT_MS 10000

/* An open link to one node. */
typedef struct corpus_peer {
	const char *prog;        /* program name for error messages */
	void *ctx;               /* ZeroMQ context */
	void *sock;              /* DEALER socket */
	uint8_t pub[32];         /* our CURVE public key */
} corpus_peer;

/*
 * Connects to ADDRESS (clipmesh://KEYHEX@HOST:PORT, as `clipmesh id`
 * prints it), sends HELLO and waits for the node's HELLO. Returns the
 * exit code for the caller: 0 on success, 2 on an invalid address and 1
 * on any other failure. On failure p is closed.
 */
int corpus_peer_open(corpus_peer *p, const char *prog, const char *address);

/* Closes the link after ZeroMQ has delivered what is queued, waiting up
 * to 5 s for it. Accepts a peer that is not open. */
void corpus_peer_close(corpus_peer *p);

/*
 * Reads a record file of at most 1 MiB into a malloc'd buffer (caller
 * frees) and sets *len. Returns NULL after printing an error.
 */
uint8_t *corpus_peer_read_file(const corpus_peer *p, const char *path,
			       size_t *len);

/* Sends the record bytes as the only record of one RECORDS message, with
 * the shortest bin header for len. Returns 0, or -1 with errno set. */
int corpus_peer_send_record(const corpus_peer *p, const uint8_t *rec,
			    size_t len);

#endif
