/*
 * node_stats.c - a snapshot of the node's counters that other threads of
 * the process (the HTTP API's /metrics) read under a mutex, so that they
 * never touch the node thread's live state.
 */
#include <pthread.h>

#include "cm_util.h"
#include "node_internal.h"

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static node_stats published;
static bool running;

void node_link_stats_add(node_link_stats *to, const node_link_stats *from)
{
	to->records_in += from->records_in;
	to->records_out += from->records_out;
	to->bytes_in += from->bytes_in;
	to->bytes_out += from->bytes_out;
	to->duplicates_in += from->duplicates_in;
	to->recon_sessions += from->recon_sessions;
	to->recon_rounds += from->recon_rounds;
	to->recon_bytes_in += from->recon_bytes_in;
	to->recon_bytes_out += from->recon_bytes_out;
}

static void collect(node *n, node_stats *out)
{
	node_link_stats sum = n->closed;

	*out = (node_stats){.updated_ms = cm_now_ms()};
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		if (!l->used)
			continue;
		out->links++;
		out->peers_connected += l->established;
		node_link_stats_add(&sum, &l->stats);
	}
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		out->media_fetching += node_media_job_active(n, i);
	out->bytes_in = sum.bytes_in;
	out->bytes_out = sum.bytes_out;
	out->records_in = sum.records_in;
	out->records_out = sum.records_out;
	out->duplicates_in = sum.duplicates_in;
	out->sync_sessions = sum.recon_sessions;
	out->sync_rounds = sum.recon_rounds;
	out->connections_refused = n->conns_refused;
}

void node_stats_publish(node *n, bool force)
{
	uint64_t now = cm_mono_ms();
	node_stats fresh;

	if (!force && now < n->next_stats)
		return;
	n->next_stats = now + NODE_STATS_INTERVAL_MS;
	collect(n, &fresh);
	pthread_mutex_lock(&stats_lock);
	published = fresh;
	running = true;
	pthread_mutex_unlock(&stats_lock);
}

void node_stats_withdraw(void)
{
	pthread_mutex_lock(&stats_lock);
	running = false;
	pthread_mutex_unlock(&stats_lock);
}

cm_err node_stats_snapshot(node_stats *out)
{
	cm_err err = CM_OK;

	pthread_mutex_lock(&stats_lock);
	if (running)
		*out = published;
	else
		err = CM_ERR_NOT_FOUND;
	pthread_mutex_unlock(&stats_lock);
	return err;
}
