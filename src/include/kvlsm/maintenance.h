/*-------------------------------------------------------------------------
 *
 * maintenance.h
 *	  The engine's maintenance policy: flush triggers at a writer's safe
 *	  point (kvlsm_maybe_flush, arena relief) and write stalls: after a write, hand a full memtable to
 *	  a flush, and slow or stop the writer while flushes and compactions
 *	  fall behind (RocksDB's write stall), for at most kvlsm.stall_timeout.
 *	  Owned by src/engine/maintenance.c.
 *
 * Queueing the work goes through the registered scheduler (scheduler.h);
 * work nobody takes is done by the writer itself.  With no scheduler
 * registered no writer is slowed or stopped.  Stalled writers sleep on a
 * condition variable that kvlsm_notify_progress() wakes.
 *
 * Callers: the writers' safe points (kvlsm_maybe_flush, which calls
 * kvlsm_backpressure);
 * src/worker/worker.c (kvlsm_notify_progress after each job, and the
 * shared memory through kvlsm_workers_shmem_size/_init); the GUC is
 * registered in _PG_init (src/kvlsm.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_MAINTENANCE_H
#define KVLSM_MAINTENANCE_H

#include "postgres.h"

#include "utils/rel.h"

#include "kvlsm/lsm.h"

/* GUCs: how long a write may stall before it fails, ms (0: forever);
 * the L0 table counts that slow and that stop writers */
extern int	kvlsm_stall_timeout_ms;
extern int	kvlsm_l0_slowdown_trigger;
extern int	kvlsm_l0_stop_trigger;

/* maintenance.c */
extern Size kvlsm_maintenance_shmem_size(void);
extern void kvlsm_maintenance_shmem_init(void);
extern void kvlsm_backpressure(Relation rel, KvlsmShared *sh);
extern void kvlsm_notify_progress(void);
extern void kvlsm_maybe_flush(Relation rel, KvlsmShared *sh);

#endif							/* KVLSM_MAINTENANCE_H */
