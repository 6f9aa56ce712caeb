/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The engine's side of background work (see scheduler.h): the
 *	  registered scheduler, and what happens when there is none.
 *
 * The scheduler only queues work; when to flush, when to stall a writer
 * and how fast compactions may write are the engine's own policies
 * (maintenance.c, ratelimit.c), which ask kvlsm_have_scheduler() whether
 * anyone works in the background at all.
 *
 * Invariants: the pointer is set once per process in _PG_init, before any
 * shared memory or relation is touched; nothing here takes a lock or
 * writes WAL.  Callers: flush.c, maintenance.c, ratelimit.c (the engine),
 * src/worker/worker.c (kvlsm_set_scheduler).
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

/* has the layer above registered a scheduler (false: all in the foreground) */
bool
kvlsm_have_scheduler(void)
{
	return scheduler != NULL;
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
