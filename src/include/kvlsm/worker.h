/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background flush and compaction: the launcher, the per-database
 *	  workers, their shared job queue, the compaction rate limiter and the
 *	  back-pressure that stalls writers.  Owned by src/worker/worker.c.
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

/* GUCs of the workers */
extern int	kvlsm_max_workers;
extern int	kvlsm_flush_interval_ms;
extern int	kvlsm_compaction_rate_limit_kb;	/* kB per second, 0 = none */
extern int	kvlsm_stall_timeout_ms;

extern void kvlsm_workers_register(void);
extern Size kvlsm_workers_shmem_size(void);
extern void kvlsm_workers_shmem_init(void);

/* queue a job for a worker; false: do it yourself */
extern bool kvlsm_request_work(Relation rel, KvlsmJobKind kind);
extern bool kvlsm_request_flush_node(const KvlsmLsmTag *tag);
/* slow or stop a writer while flushes and compactions fall behind */
extern void kvlsm_write_backpressure(Relation rel, KvlsmShared *sh);
/* wake writers waiting for a flush or compaction */
extern void kvlsm_notify_progress(void);
/* token bucket shared by all workers; flushes never wait */
extern void kvlsm_rate_limit(uint64 bytes, bool is_flush);

/* a row per worker slot, for kvlsm_workers() */
typedef struct KvlsmWorkerInfo
{
	int			pid;
	Oid			dbid;
	bool		busy;
	uint64		jobs_done;
} KvlsmWorkerInfo;
extern int	kvlsm_worker_info(KvlsmWorkerInfo *out, int max);
extern int	kvlsm_queued_jobs(void);
extern void kvlsm_workers_exclude_database(Oid dbid, bool forget_jobs);
extern void kvlsm_workers_unexclude_database(Oid dbid);

extern PGDLLEXPORT void kvlsm_launcher_main(Datum main_arg);
extern PGDLLEXPORT void kvlsm_worker_main(Datum main_arg);

#endif							/* KVLSM_WORKER_H */
