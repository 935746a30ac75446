/*
 * push_records.c - a minimal peer that pushes record files to a running
 * clipmesh node, for tests/e2e/test_bad_input.sh.
 *
 * Usage: push_records ADDRESS FILE...
 *
 * Connects to ADDRESS (clipmesh://KEYHEX@HOST:PORT, as `clipmesh id`
 * prints it) as the peer of corpus_peer.h. Then it sends each FILE as the
 * only record of one RECORDS message. Exits 0 when every message was
 * handed to ZeroMQ, 1 on a failure, 2 on bad usage. Whether the node
 * accepted a record is for the caller to read from `clipmesh status`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <zmq.h>

#include "corpus_peer.h"

int main(int argc, char **argv)
{
	corpus_peer peer;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: push_records ADDRESS FILE...\n");
		return 2;
	}
	rc = corpus_peer_open(&peer, "push_records", argv[1]);
	if (rc != 0)
		return rc;

	for (int i = 2; i < argc && rc == 0; i++) {
		size_t len;
		uint8_t *rec = corpus_peer_read_file(&peer, argv[i], &len);

		if (rec == NULL) {
			rc = 1;
		} else if (corpus_peer_send_record(&peer, rec, len) != 0) {
			fprintf(stderr, "push_records: sending %s failed: %s\n",
				argv[i], zmq_strerror(errno));
			rc = 1;
		}
		free(rec);
	}
	corpus_peer_close(&peer);
	return rc;
}
