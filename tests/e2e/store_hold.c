/*
 * store_hold.c - holds the write lock of an LMDB store, so that an
 * end-to-end test can stop a clipmesh process at its next write
 * transaction without a timed wait.
 *
 * Usage: store_hold STORE_DIR
 *
 * Prints "held" on stdout once its write transaction began, then waits
 * for SIGTERM or SIGINT, aborts the transaction (writing nothing) and
 * exits 0. Exits 1 when LMDB fails, 2 on bad usage.
 */
#include <signal.h>
#include <stdio.h>

#include <lmdb.h>

int main(int argc, char **argv)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	sigset_t stop;
	int rc, sig;

	if (argc != 2) {
		fprintf(stderr, "usage: store_hold STORE_DIR\n");
		return 2;
	}
	/* Blocked before the lock is taken, so that a signal that comes
   * early waits for sigwait instead of ending the process. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_maxdbs(env, 32);
	if (!rc)
		rc = mdb_env_open(env, argv[1], 0, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc) {
		printf("held\n");
		fflush(stdout);
		sigwait(&stop, &sig);
		mdb_txn_abort(txn);
	}
	if (env)
		mdb_env_close(env);
	if (rc) {
		fprintf(stderr, "store_hold: %s\n", mdb_strerror(rc));
		return 1;
	}
	return 0;
}
