/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  How the engine hands work to background processes, as LevelDB's
 *	  Env::Schedule does: one struct of callbacks that the layer above
 *	  (src/worker/worker.c) registers once in _PG_init.  With none
 *	  registered the engine works alone: every flush and compaction runs in
 *	  the foreground, no writer is slowed and nothing is rate limited.
 *	  Owned by src/engine/scheduler.c.
 *
 * The scheduler only runs jobs.  Flush triggers, write stalls and the
 * rate limiter are the engine's policies (maintenance.h, ratelimit.h,
 * included below so that the engine's writers find kvlsm_backpressure()
 * and kvlsm_charge_write() here as before).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SCHEDULER_H
#define KVLSM_SCHEDULER_H

#include "postgres.h"

#include "utils/rel.h"

#include "kvlsm/lsm.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/ratelimit.h"

typedef enum KvlsmJobKind
{
	KVLSM_JOB_FLUSH = 1,		/* flush if over memtable_size */
	KVLSM_JOB_FLUSH_FORCE = 2,	/* flush whatever is there */
	KVLSM_JOB_COMPACT = 3
} KvlsmJobKind;

typedef struct KvlsmScheduler
{
	/* queue a job for rel; false: the caller does it itself */
	bool		(*request_work) (Relation rel, KvlsmJobKind kind);
	/* have the relation with this tag flushed; false: nobody will */
	bool		(*request_flush_node) (const KvlsmLsmTag *tag);
	/* are there background workers (which serve every database)? */
	bool		(*have_workers) (void);
} KvlsmScheduler;

/* scheduler.c */
extern void kvlsm_set_scheduler(const KvlsmScheduler *scheduler);
extern bool kvlsm_have_scheduler(void);
extern bool kvlsm_schedule_work(Relation rel, KvlsmJobKind kind);
extern bool kvlsm_schedule_flush_node(const KvlsmLsmTag *tag);
extern bool kvlsm_have_background_workers(void);

#endif							/* KVLSM_SCHEDULER_H */
