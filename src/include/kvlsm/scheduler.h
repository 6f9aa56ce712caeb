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
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SCHEDULER_H
#define KVLSM_SCHEDULER_H

#include "postgres.h"

#include "utils/rel.h"

#include "kvlsm/lsm.h"

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
	/* slow or stop a writer while background work falls behind */
	void		(*write_backpressure) (Relation rel, KvlsmShared *sh);
	/* charge bytes a flush or compaction wrote to the rate limiter */
	void		(*rate_limit) (uint64 bytes, bool is_flush);
} KvlsmScheduler;

/* scheduler.c */
extern void kvlsm_set_scheduler(const KvlsmScheduler *scheduler);
extern bool kvlsm_schedule_work(Relation rel, KvlsmJobKind kind);
extern bool kvlsm_schedule_flush_node(const KvlsmLsmTag *tag);
extern bool kvlsm_have_background_workers(void);
extern void kvlsm_backpressure(Relation rel, KvlsmShared *sh);
extern void kvlsm_charge_write(uint64 bytes, bool is_flush);

#endif							/* KVLSM_SCHEDULER_H */
