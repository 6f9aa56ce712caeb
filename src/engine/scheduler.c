/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The engine's side of background work (see scheduler.h): the
 *	  registered scheduler, and what happens when there is none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "kvlsm/scheduler.h"

/* per process: set in _PG_init, so every backend and worker inherits it */
static const KvlsmScheduler *scheduler = NULL;

void
kvlsm_set_scheduler(const KvlsmScheduler *s)
{
	scheduler = s;
}

bool
kvlsm_schedule_work(Relation rel, KvlsmJobKind kind)
{
	return scheduler != NULL && scheduler->request_work(rel, kind);
}

bool
kvlsm_schedule_flush_node(const KvlsmLsmTag *tag)
{
	return scheduler != NULL && scheduler->request_flush_node(tag);
}

bool
kvlsm_have_background_workers(void)
{
	return scheduler != NULL && scheduler->have_workers();
}

void
kvlsm_backpressure(Relation rel, KvlsmShared *sh)
{
	if (scheduler != NULL)
		scheduler->write_backpressure(rel, sh);
}

void
kvlsm_charge_write(uint64 bytes, bool is_flush)
{
	if (scheduler != NULL)
		scheduler->rate_limit(bytes, is_flush);
}
