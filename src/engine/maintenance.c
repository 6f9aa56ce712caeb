/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  The engine's maintenance policy in one place: the flush triggers a
 *	  writer checks at its safe points (kvlsm_maybe_flush: pending log
 *	  pages, a full memtable, a short arena, whose relief flushes the
 *	  largest memtable of the database), and write stalls
 *	  (RocksDB's write stall, which bounds L0,
 *	  that is read amplification, and memory): after a write, a full
 *	  memtable is switched and its flush queued, and writers are slowed
 *	  (kvlsm.l0_slowdown_trigger) and then stopped (kvlsm.l0_stop_trigger,
 *	  or a full memtable while the frozen one is still being flushed, or an
 *	  arena nearly full) until flushes and compactions catch up, for at most
 *	  kvlsm.stall_timeout.
 *
 * The work that ends a stall is queued through the registered scheduler
 * (scheduler.h); when nobody takes it the writer does it itself.  With no
 * scheduler registered every flush and compaction runs in the foreground
 * of the writer that needs it, nothing falls behind, and no writer is
 * slowed or stopped.
 *
 * Invariants: kvlsm_backpressure() runs at a safe point, with no stripe,
 * LSM or buffer lock held; it takes the LSM lock only to count stalls.
 * A stalled writer sleeps on the condition variable in this module's
 * shared memory, which kvlsm_notify_progress() broadcasts; it writes no
 * WAL itself (the flushes and compactions it runs do).
 *
 * Callers: the writers' safe points (kvlsm_maybe_flush: rowops.c and
 * tableam.c, indexam.c, vacuum.c, rewrite.c);
 * src/worker/worker.c (kvlsm_notify_progress, and the shared memory
 * through kvlsm_workers_shmem_size/_init); the GUC is registered in
 * _PG_init (src/kvlsm.c).  The flushes themselves are flush.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "utils/relfilenodemap.h"
#include "utils/timestamp.h"

#include "kvlsm/compaction.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/lsm.h"
#include "kvlsm/memtable.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/scheduler.h"

/* GUCs (registered in _PG_init) */
int			kvlsm_stall_timeout_ms = 60000;
int			kvlsm_l0_slowdown_trigger = 20;
int			kvlsm_l0_stop_trigger = 36;

/*
 * The shared memtable arena, like L0, has two thresholds: below an eighth
 * free, a writer at its safe point flushes the largest memtable of its
 * database (relieve_arena, RocksDB's write buffer manager); below a
 * sixteenth free, writers stop until flushes have given memory back.
 */
#define KVLSM_ARENA_RELIEVE_FRACTION 8
#define KVLSM_ARENA_STOP_FRACTION 16

typedef struct KvlsmMaintenanceShared
{
	ConditionVariable progress_cv;	/* a flush or compaction made progress */
} KvlsmMaintenanceShared;

static KvlsmMaintenanceShared *maint = NULL;

Size
kvlsm_maintenance_shmem_size(void)
{
	return MAXALIGN(sizeof(KvlsmMaintenanceShared));
}

void
kvlsm_maintenance_shmem_init(void)
{
	bool		found;

	maint = ShmemInitStruct("kvlsm maintenance", sizeof(KvlsmMaintenanceShared),
							&found);
	if (!found)
	{
		memset(maint, 0, sizeof(KvlsmMaintenanceShared));
		ConditionVariableInit(&maint->progress_cv);
	}
}

/* wake writers waiting for a flush or compaction */
void
kvlsm_notify_progress(void)
{
	if (maint != NULL)
		ConditionVariableBroadcast(&maint->progress_cv);
}

static bool
must_stop(KvlsmShared *sh)
{
	if (sh->frozen.genid != 0 && sh->active.bytes >= (uint64) sh->memtable_size)
		return true;
	if ((int) sh->nl0 >= kvlsm_l0_stop_trigger)
		return true;
	return kvlsm_arena_free_bytes() < kvlsm_arena_total_bytes() / KVLSM_ARENA_STOP_FRACTION;
}

/*
 * A memtable asks for a flush: switch memtables now and queue the flush of
 * what is frozen.  Returns true if nobody took the job and the writer
 * flushed in the foreground, which ends its back-pressure.
 */
static bool
hand_off_flush(Relation rel, KvlsmShared *sh)
{
	if (!sh->flush_requested || sh->active.bytes == 0)
		return false;

	/* switch memtables now; the worker flushes what is frozen */
	if (sh->frozen.genid == 0 && sh->active.bytes >= (uint64) sh->memtable_size)
		kvlsm_try_freeze(rel, sh);

	/*
	 * Set before queueing: the worker's flush clears it when it starts, and
	 * must not be able to clear it before we set it.
	 */
	if (!sh->job_queued)
	{
		sh->job_queued = true;
		if (!kvlsm_schedule_work(rel, KVLSM_JOB_FLUSH))
		{
			sh->job_queued = false;
			kvlsm_flush(rel, false);
			return true;
		}
	}
	return false;
}

/*
 * Stop the writer while must_stop(): make sure the work that ends the
 * stall is queued (or do it), then wait for progress, failing after
 * kvlsm.stall_timeout.  Returns whether the writer was stopped at all.
 */
static bool
stall(Relation rel, KvlsmShared *sh)
{
	TimestampTz start = 0;
	bool		counted = false;

	while (must_stop(sh))
	{
		long		waited_ms;

		if (start == 0)
			start = GetCurrentTimestamp();
		if (!counted)
		{
			LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
			sh->stats.stalls++;
			LWLockRelease(&sh->lock);
			counted = true;
		}
		/* make sure the work that ends the stall is queued (queueing dedups) */
		if ((sh->frozen.genid != 0 || sh->active.bytes > 0) &&
			!kvlsm_schedule_work(rel, sh->frozen.genid != 0 ? KVLSM_JOB_FLUSH :
								 KVLSM_JOB_FLUSH_FORCE))
		{
			kvlsm_flush(rel, true);
			continue;
		}
		if ((int) sh->nl0 >= kvlsm_l0_stop_trigger &&
			!kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT))
		{
			(void) kvlsm_compact_step(rel);
			continue;
		}
		waited_ms = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (kvlsm_stall_timeout_ms > 0 && waited_ms >= kvlsm_stall_timeout_ms)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("write to kvlsm relation \"%s\" stalled for %ld ms waiting for flush or compaction",
							RelationGetRelationName(rel), waited_ms),
					 errdetail("L0 has %d SSTables; the memtable holds %llu bytes.",
							   (int) sh->nl0, (unsigned long long) sh->active.bytes),
					 errhint("Raise kvlsm.max_workers or kvlsm.compaction_rate_limit, or kvlsm.stall_timeout.")));
		ConditionVariableTimedSleep(&maint->progress_cv, 100, PG_WAIT_EXTENSION);
	}
	if (!counted)
		return false;
	ConditionVariableCancelSleep();
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	sh->stats.stall_usecs += GetCurrentTimestamp() - start;
	LWLockRelease(&sh->lock);
	return true;
}

/* slowdown: a millisecond's pause every 64 writes while L0 is long */
static void
slow_down(KvlsmShared *sh)
{
	static int	slowdown_counter = 0;

	if ((int) sh->nl0 >= kvlsm_l0_slowdown_trigger && (++slowdown_counter % 64) == 0)
	{
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		sh->stats.slowdowns++;
		sh->stats.stall_usecs += 1000;
		LWLockRelease(&sh->lock);
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1,
						 PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Called at a safe point (no stripe, LSM or buffer lock held) after a
 * write that may have filled the memtable.  With a scheduler, queue the
 * flush and, if flushes or compactions fall behind, slow down or wait.
 */
void
kvlsm_backpressure(Relation rel, KvlsmShared *sh)
{
	/* no scheduler: all work is the writers' own, nobody falls behind */
	if (!kvlsm_have_scheduler())
		return;
	if (hand_off_flush(rel, sh))
		return;
	if (stall(rel, sh))
		return;
	slow_down(sh);
}

/* the largest memtable relieve_arena may flush */
typedef struct LargestMemtable
{
	bool		any_db;			/* of any database, else of ours */
	KvlsmLsmTag best;
	uint64		best_bytes;
} LargestMemtable;

/* kvlsm_foreach_lsm: note the entry if its memtable is the largest yet */
static void
note_largest_memtable(KvlsmShared *sh, void *arg)
{
	LargestMemtable *lm = arg;

	if ((!lm->any_db && sh->tag.node.dbNode != MyDatabaseId) ||
		(sh->tag.backend != InvalidBackendId && sh->tag.backend != MyBackendId) ||
		sh->frozen.genid != 0)
		return;
	if (sh->active.bytes > lm->best_bytes)
	{
		lm->best_bytes = sh->active.bytes;
		lm->best = sh->tag;
	}
}

/*
 * The arena shared by all kvlsm relations runs short: flush the largest
 * memtable of this database (RocksDB's write buffer manager), so that idle
 * relations do not pin memory that busy ones need.  Other databases'
 * memtables are flushed by their own writers.  Another relation is flushed
 * only if its lock can be had at once, so this never waits or deadlocks.
 */
static void
relieve_arena(Relation rel, KvlsmShared *self)
{
	LargestMemtable lm;
	KvlsmLsmTag best;
	Oid			relid;

	memset(&lm, 0, sizeof(lm));
	lm.any_db = !kvlsm_am_worker && kvlsm_have_background_workers();
	kvlsm_foreach_lsm(note_largest_memtable, &lm);
	if (lm.best_bytes == 0)
		return;
	best = lm.best;

	/* a worker of the relation's database flushes it */
	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) == 0 &&
		kvlsm_schedule_work(rel, KVLSM_JOB_FLUSH_FORCE))
		return;
	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) != 0 &&
		kvlsm_schedule_flush_node(&best))
		return;
	if (best.node.dbNode != MyDatabaseId)
	{
		if (self->active.bytes > 0)
			kvlsm_flush(rel, true);
		return;
	}

	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) == 0)
	{
		kvlsm_flush(rel, true);
		return;
	}
	relid = RelidByRelfilenode(best.node.spcNode == MyDatabaseTableSpace ? 0 : best.node.spcNode,
							   best.node.relNode);
	if (!OidIsValid(relid) || !ConditionalLockRelationOid(relid, RowExclusiveLock))
	{
		/* fall back to our own memtable */
		if (self->active.bytes > 0)
			kvlsm_flush(rel, true);
		return;
	}
	{
		Relation	other = try_relation_open(relid, NoLock);

		if (other != NULL)
		{
			if (RelFileNodeEquals(other->rd_node, best.node))
				kvlsm_flush(other, true);
			relation_close(other, NoLock);
		}
		UnlockRelationOid(relid, RowExclusiveLock);
	}
}

/*
 * Work the foreground does at a safe point (no stripe lock held): write
 * whole pending log pages, and flush the memtable when it is over its
 * size or the arena runs short.
 */
void
kvlsm_maybe_flush(Relation rel, KvlsmShared *sh)
{
	bool		arena_short;

	kvlsm_log_write_full_pages(rel, sh);
	if (RecoveryInProgress())
		return;
	arena_short = kvlsm_arena_free_bytes() < kvlsm_arena_total_bytes() / KVLSM_ARENA_RELIEVE_FRACTION;
	if (arena_short)
		relieve_arena(rel, sh);
	if (sh->flush_requested || arena_short || sh->frozen.genid != 0 ||
		sh->nl0 >= (uint32) Min(kvlsm_l0_slowdown_trigger, kvlsm_l0_stop_trigger))
		kvlsm_backpressure(rel, sh);
}
