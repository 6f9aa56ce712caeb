/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background flush and compaction: the launcher, the per-database
 *	  workers and their shared job queue, registered as the engine's
 *	  KvlsmScheduler (scheduler.h).  Owned by src/worker/worker.c.  Write
 *	  stalls and the compaction rate limiter are the engine's
 *	  (maintenance.h, ratelimit.h).
 *
 * Backends never wait for a worker while holding a lock a worker needs:
 * work on a relation that only this backend can see (temporary, or
 * created or given a new filenode in this transaction) or that it has
 * locked against RowExclusiveLock is done in the foreground.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_WORKER_H
#define KVLSM_WORKER_H

#include "postgres.h"

#include "utils/rel.h"

#include "kvlsm/lsm.h"
#include "kvlsm/scheduler.h"

/*
 * kvlsm.stall_timeout and kvlsm.compaction_rate_limit are the engine's GUCs
 * (defined in maintenance.c and ratelimit.c); included here so that
 * _PG_init, which registers every GUC, finds them where it did.
 */
#include "kvlsm/maintenance.h"
#include "kvlsm/ratelimit.h"

/* a row per worker slot, for kvlsm_workers() */
typedef struct KvlsmWorkerInfo
{
	int			pid;
	Oid			dbid;
	bool		busy;
	uint64		jobs_done;
} KvlsmWorkerInfo;

/* GUCs of the workers */
extern int	kvlsm_max_workers;
extern int	kvlsm_flush_interval_ms;

/* worker.c */
extern void kvlsm_workers_register(void);
/* ours and the engine's stall and rate limiter state (maintenance.c, ratelimit.c) */
extern Size kvlsm_workers_shmem_size(void);
extern void kvlsm_workers_shmem_init(void);
/* queue a job for a worker; false: do it yourself */
extern bool kvlsm_request_work(Relation rel, KvlsmJobKind kind);
extern bool kvlsm_request_flush_node(const KvlsmLsmTag *tag);
extern int	kvlsm_worker_info(KvlsmWorkerInfo *out, int max);
extern int	kvlsm_queued_jobs(void);
extern void kvlsm_workers_exclude_database(Oid dbid, bool forget_jobs);
extern void kvlsm_workers_unexclude_database(Oid dbid);
extern PGDLLEXPORT void kvlsm_launcher_main(Datum main_arg);
extern PGDLLEXPORT void kvlsm_worker_main(Datum main_arg);

#endif							/* KVLSM_WORKER_H */
