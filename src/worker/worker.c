/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers for flush and compaction (DESIGN.md section 7).
 *
 * A launcher (a static background worker, started once recovery is over,
 * so never on a standby) watches a job queue in shared memory and starts
 * per-database workers (dynamic background workers connected to one
 * database) while jobs wait and fewer than kvlsm.max_workers run.  It also
 * queues a forced flush for every memtable older than kvlsm.flush_interval.
 * A worker takes jobs of its database, flushes first, each in a
 * transaction of its own: it opens the relation with RowExclusiveLock
 * (autovacuum's ShareUpdateExclusiveLock would fight VACUUM, ANALYZE and
 * CREATE INDEX CONCURRENTLY), drops the catalog snapshot so it holds back
 * no cleanup horizon, does the work, and commits.  DDL waits for it; a
 * compaction polls LockHasWaitersRelation() and gives up (compaction.c).
 * A failed job is logged and dropped; the next write queues it again.
 *
 * This is the engine's KvlsmScheduler (scheduler.h): it only queues and
 * runs jobs.  Writers are slowed and stopped until workers catch up by the
 * engine's write stalls (src/engine/maintenance.c), which sleep until
 * kvlsm_notify_progress() after each job; compactions are paced by the
 * engine's rate limiter (src/engine/ratelimit.c).  Both keep their state
 * in shared memory that kvlsm_workers_shmem_size/_init set up with ours.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/relfilenodemap.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/compaction.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/manifest.h"
#include "kvlsm/ratelimit.h"
#include "kvlsm/relocate.h"
#include "kvlsm/worker.h"
#include "kvlsm/index.h"
#include "kvlsm/table.h"
#include "kvlsm/snapshots.h"

/* GUCs (registered in _PG_init) */
int			kvlsm_max_workers = 2;
int			kvlsm_flush_interval_ms = 60000;

#define MAX_JOBS			1024
#define MAX_WORKER_SLOTS	64
#define WORKER_IDLE_EXIT_MS 30000
#define LAUNCHER_NAP_MS		1000
#define MAX_JOB_FAILURES	3
#define MAX_DB_EXCLUSIONS	16
#define EXCLUDE_WAIT_MS		10000

typedef struct KvlsmJob
{
	bool		in_use;
	bool		running;
	int			kind;
	int			failures;
	Oid			dbid;
	Oid			relid;			/* InvalidOid: look up by filenode */
	RelFileNode node;
} KvlsmJob;

typedef struct WorkerSlot
{
	bool		in_use;
	bool		busy;
	bool		compacting;		/* busy with a compaction job */
	int			pid;			/* 0 while starting */
	Oid			dbid;
	Latch	   *latch;
	uint64		jobs_done;
	TimestampTz launched;
} WorkerSlot;

/*
 * A database that DROP DATABASE, ALTER DATABASE RENAME / SET TABLESPACE or
 * CREATE DATABASE ... TEMPLATE is about to work on: those refuse to run
 * while other sessions are connected to it, and PostgreSQL 15 asks only
 * autovacuum workers to leave, so kvlsm's workers leave by themselves and
 * none is started there until the command is over.
 */
typedef struct DbExclusion
{
	Oid			dbid;
	int			pid;			/* the backend running the command; 0: free */
} DbExclusion;

typedef struct KvlsmWorkerShared
{
	slock_t		mutex;
	DbExclusion excluded[MAX_DB_EXCLUSIONS];
	int			launcher_pid;
	Latch	   *launcher_latch;
	KvlsmJob	jobs[MAX_JOBS];
	WorkerSlot	slots[MAX_WORKER_SLOTS];
} KvlsmWorkerShared;

static KvlsmWorkerShared *ws = NULL;
static int	my_slot = -1;
static int	my_job = -1;
static bool worker_connected = false;
static bool exclusion_callback_registered = false;

/* is 'dbid' excluded from workers?  The caller holds ws->mutex. */
static bool
db_excluded(Oid dbid)
{
	int			i;

	for (i = 0; i < MAX_DB_EXCLUSIONS; i++)
		if (ws->excluded[i].pid != 0 && ws->excluded[i].dbid == dbid)
			return true;
	return false;
}

/*
 * Ours, and the shared state of the engine's write stalls and rate limiter
 * (maintenance.c, ratelimit.c), which _PG_init requests and sets up
 * through these two calls.
 */
Size
kvlsm_workers_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(KvlsmWorkerShared));

	size = add_size(size, kvlsm_maintenance_shmem_size());
	size = add_size(size, kvlsm_ratelimit_shmem_size());
	return size;
}

void
kvlsm_workers_shmem_init(void)
{
	bool		found;

	ws = ShmemInitStruct("kvlsm workers", sizeof(KvlsmWorkerShared), &found);
	if (!found)
	{
		memset(ws, 0, sizeof(KvlsmWorkerShared));
		SpinLockInit(&ws->mutex);
	}
	kvlsm_maintenance_shmem_init();
	kvlsm_ratelimit_shmem_init();
}

static bool
have_workers(void)
{
	return kvlsm_max_workers > 0;
}

/* this layer's side of the engine's scheduler (scheduler.h) */
static const KvlsmScheduler worker_scheduler = {
	.request_work = kvlsm_request_work,
	.request_flush_node = kvlsm_request_flush_node,
	.have_workers = have_workers,
};

void
kvlsm_workers_register(void)
{
	BackgroundWorker bgw;

	/* the engine hands its background work to this layer (scheduler.h) */
	kvlsm_set_scheduler(&worker_scheduler);
	if (kvlsm_max_workers <= 0)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "kvlsm");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "kvlsm_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "kvlsm launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "kvlsm launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ---------------------------------------------------------------------
 * The queue
 * ---------------------------------------------------------------------
 */

static bool
enqueue(Oid dbid, Oid relid, const RelFileNode *node, int kind)
{
	int			i;
	int			free_slot = -1;
	Latch	   *wake = NULL;
	bool		ok = true;

	SpinLockAcquire(&ws->mutex);
	if (ws->launcher_pid == 0 || db_excluded(dbid))
	{
		SpinLockRelease(&ws->mutex);
		return false;
	}
	for (i = 0; i < MAX_JOBS; i++)
	{
		KvlsmJob   *j = &ws->jobs[i];

		if (!j->in_use)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		/* the same work is already waiting (a running job may be past it) */
		if (!j->running && RelFileNodeEquals(j->node, *node) &&
			(j->kind == kind ||
			 (j->kind == KVLSM_JOB_FLUSH_FORCE && kind == KVLSM_JOB_FLUSH)))
			break;
	}
	if (i == MAX_JOBS)
	{
		if (free_slot < 0)
			ok = false;
		else
		{
			KvlsmJob   *j = &ws->jobs[free_slot];

			memset(j, 0, sizeof(*j));
			j->in_use = true;
			j->kind = kind;
			j->dbid = dbid;
			j->relid = relid;
			j->node = *node;
		}
	}
	/*
	 * A new job: an idle worker of the database takes it, or the launcher
	 * starts one.  Work already queued was announced when it was queued
	 * (busy workers take the next job when they finish, the launcher
	 * rescans every second): writers that keep asking must not keep
	 * waking the launcher for it.
	 */
	if (ok && i == MAX_JOBS)
	{
		for (i = 0; i < MAX_WORKER_SLOTS; i++)
			if (ws->slots[i].in_use && ws->slots[i].dbid == dbid &&
				!ws->slots[i].busy && ws->slots[i].latch != NULL)
			{
				wake = ws->slots[i].latch;
				break;
			}
		if (wake == NULL)
			wake = ws->launcher_latch;
	}
	SpinLockRelease(&ws->mutex);
	if (wake)
		SetLatch(wake);
	return ok;
}

/* flush the memtable of a relation known only by its filenode */
bool
kvlsm_request_flush_node(const KvlsmLsmTag *tag)
{
	if (ws == NULL || kvlsm_max_workers <= 0 || tag->backend != InvalidBackendId)
		return false;
	return enqueue(tag->node.dbNode, InvalidOid, &tag->node, KVLSM_JOB_FLUSH_FORCE);
}

bool
kvlsm_request_work(Relation rel, KvlsmJobKind kind)
{
	if (ws == NULL || kvlsm_max_workers <= 0 || kvlsm_am_worker ||
		RecoveryInProgress())
		return false;

	/*
	 * A worker cannot see what only this transaction or backend can, and
	 * would wait for a lock this backend holds until it commits.
	 */
	if (RELATION_IS_LOCAL(rel) ||
		rel->rd_backend != InvalidBackendId ||
		rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId ||
		CheckRelationLockedByMe(rel, ShareLock, true))
		return false;
	return enqueue(MyDatabaseId, RelationGetRelid(rel), &rel->rd_node, kind);
}

/* ---------------------------------------------------------------------
 * Launcher
 * ---------------------------------------------------------------------
 */

typedef struct IdleArg
{
	TimestampTz cutoff;
} IdleArg;

static void
queue_idle_flush(KvlsmShared *sh, void *arg)
{
	IdleArg    *ia = arg;

	if (sh->tag.backend != InvalidBackendId || !sh->authoritative)
		return;
	/* a frozen memtable waits for a flush: make sure one is queued */
	if (sh->frozen.genid == 0 &&
		(sh->active.entries == 0 || sh->active_since == 0 ||
		 sh->active_since > ia->cutoff))
		return;
	(void) enqueue(sh->tag.node.dbNode, InvalidOid, &sh->tag.node,
				   KVLSM_JOB_FLUSH_FORCE);
}

static void
launcher_exit(int code, Datum arg)
{
	SpinLockAcquire(&ws->mutex);
	ws->launcher_pid = 0;
	ws->launcher_latch = NULL;
	SpinLockRelease(&ws->mutex);
}

static bool
start_worker(Oid dbid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	int			slot = -1;
	int			i;

	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < Min(kvlsm_max_workers, MAX_WORKER_SLOTS); i++)
		if (!ws->slots[i].in_use)
		{
			slot = i;
			memset(&ws->slots[i], 0, sizeof(WorkerSlot));
			ws->slots[i].in_use = true;
			ws->slots[i].dbid = dbid;
			ws->slots[i].launched = GetCurrentTimestamp();
			break;
		}
	SpinLockRelease(&ws->mutex);
	if (slot < 0)
		return false;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "kvlsm");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "kvlsm_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "kvlsm worker for database %u", dbid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "kvlsm worker");
	bgw.bgw_main_arg = Int32GetDatum(slot);
	bgw.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
	{
		SpinLockAcquire(&ws->mutex);
		ws->slots[slot].in_use = false;
		SpinLockRelease(&ws->mutex);
		ereport(LOG,
				(errmsg("kvlsm could not start a worker for database %u", dbid),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	return true;
}

/* databases with waiting jobs that no idle worker of theirs can take */
static void
launch_needed_workers(void)
{
	Oid			need[MAX_WORKER_SLOTS];
	int			nneed = 0;
	int			compacting = 0;
	int			i,
				k;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&ws->mutex);
	/* a slot whose worker never attached (failed start) is reclaimed */
	for (k = 0; k < MAX_WORKER_SLOTS; k++)
		if (ws->slots[k].in_use && ws->slots[k].pid == 0 &&
			TimestampDifferenceExceeds(ws->slots[k].launched, now, 60000))
			ws->slots[k].in_use = false;
	for (k = 0; k < MAX_WORKER_SLOTS; k++)
		if (ws->slots[k].in_use && ws->slots[k].compacting)
			compacting++;
	for (i = 0; i < MAX_JOBS && nneed < MAX_WORKER_SLOTS; i++)
	{
		KvlsmJob   *j = &ws->jobs[i];
		bool		served = false;

		if (!j->in_use || j->running || db_excluded(j->dbid))
			continue;
		/* a compaction waits for a compacting worker to finish (take_job) */
		if (j->kind == KVLSM_JOB_COMPACT && kvlsm_max_workers > 1 &&
			compacting >= kvlsm_max_workers - 1)
			continue;
		for (k = 0; k < MAX_WORKER_SLOTS; k++)
			if (ws->slots[k].in_use && ws->slots[k].dbid == j->dbid &&
				(!ws->slots[k].busy || ws->slots[k].pid == 0))
				served = true;
		for (k = 0; k < nneed; k++)
			if (need[k] == j->dbid)
				served = true;
		if (!served)
			need[nneed++] = j->dbid;
	}
	SpinLockRelease(&ws->mutex);
	for (k = 0; k < nneed; k++)
		if (!start_worker(need[k]))
			break;
}

void
kvlsm_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&ws->mutex);
	ws->launcher_pid = MyProcPid;
	ws->launcher_latch = MyLatch;
	SpinLockRelease(&ws->mutex);
	before_shmem_exit(launcher_exit, 0);
	/* connected to no database, like the logical replication launcher: shows in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	for (;;)
	{
		long		nap = LAUNCHER_NAP_MS;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (kvlsm_flush_interval_ms > 0)
		{
			IdleArg		ia;

			ia.cutoff = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													-kvlsm_flush_interval_ms);
			kvlsm_foreach_lsm(queue_idle_flush, &ia);
			nap = Min(nap, Max(kvlsm_flush_interval_ms / 4, 10));
		}
		launch_needed_workers();
		/* the xid/time samples TTL conflicts and feedback are judged by */
		kvlsm_xid_time_sample();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------------
 * Worker
 * ---------------------------------------------------------------------
 */

static void
worker_exit(int code, Datum arg)
{
	SpinLockAcquire(&ws->mutex);
	if (my_job >= 0 && ws->jobs[my_job].in_use)
	{
		/* interrupted: leave it for another worker */
		ws->jobs[my_job].running = false;
		ws->jobs[my_job].failures++;
	}
	if (my_slot >= 0 && !worker_connected)
	{
		/*
		 * The database could not be connected to (dropped, or closed to
		 * connections): its waiting jobs cannot run, and left queued they
		 * would make the launcher start worker after worker for it.
		 */
		Oid			dbid = ws->slots[my_slot].dbid;
		int			i;

		for (i = 0; i < MAX_JOBS; i++)
			if (ws->jobs[i].in_use && !ws->jobs[i].running && ws->jobs[i].dbid == dbid)
				ws->jobs[i].in_use = false;
	}
	if (my_slot >= 0)
		ws->slots[my_slot].in_use = false;
	if (ws->launcher_latch)
		SetLatch(ws->launcher_latch);
	SpinLockRelease(&ws->mutex);
	kvlsm_notify_progress();
}

/* take the next job of this database, flushes first */
static bool
take_job(KvlsmJob *job)
{
	int			i;
	int			best = -1;
	int			compacting = 0;
	int			k;

	SpinLockAcquire(&ws->mutex);
	/* one worker always stays free for flushes, as RocksDB keeps a flush pool */
	for (k = 0; k < MAX_WORKER_SLOTS; k++)
		if (ws->slots[k].in_use && ws->slots[k].compacting)
			compacting++;
	for (i = 0; i < MAX_JOBS; i++)
	{
		KvlsmJob   *j = &ws->jobs[i];

		if (!j->in_use || j->running || j->dbid != MyDatabaseId)
			continue;
		if (j->kind == KVLSM_JOB_COMPACT && kvlsm_max_workers > 1 &&
			compacting >= kvlsm_max_workers - 1)
			continue;
		if (best < 0 || (j->kind != KVLSM_JOB_COMPACT && ws->jobs[best].kind == KVLSM_JOB_COMPACT))
			best = i;
	}
	if (best >= 0)
	{
		ws->jobs[best].running = true;
		*job = ws->jobs[best];
		my_job = best;
		ws->slots[my_slot].busy = true;
		ws->slots[my_slot].compacting = (job->kind == KVLSM_JOB_COMPACT);
	}
	SpinLockRelease(&ws->mutex);
	return best >= 0;
}

static void
finish_job(bool failed)
{
	SpinLockAcquire(&ws->mutex);
	if (failed && ++ws->jobs[my_job].failures < MAX_JOB_FAILURES)
		ws->jobs[my_job].running = false;
	else
		ws->jobs[my_job].in_use = false;
	my_job = -1;
	ws->slots[my_slot].busy = false;
	ws->slots[my_slot].compacting = false;
	ws->slots[my_slot].jobs_done++;
	SpinLockRelease(&ws->mutex);
	kvlsm_notify_progress();
}

static bool
is_kvlsm_relation(Relation rel)
{
	if (rel->rd_rel->relkind == RELKIND_INDEX)
		return kvlsm_is_kvlsm_index(rel);
	return kvlsm_is_kvlsm_relation(rel);
}

static void
run_job(KvlsmJob *job)
{
	Oid			relid = job->relid;
	Relation	rel;

	if (!OidIsValid(relid))
		relid = RelidByRelfilenode(job->node.spcNode == MyDatabaseTableSpace ? 0 :
								   job->node.spcNode, job->node.relNode);
	if (!OidIsValid(relid))
		return;
	rel = try_relation_open(relid, RowExclusiveLock);
	if (rel == NULL)
		return;
	/* hold no snapshot while working: it would hold back every cleanup */
	InvalidateCatalogSnapshot();
	if (RelFileNodeEquals(rel->rd_node, job->node) && is_kvlsm_relation(rel))
	{
		if (job->kind == KVLSM_JOB_COMPACT)
		{
			pgstat_report_activity(STATE_RUNNING, "kvlsm compaction");
			while (kvlsm_compact_step(rel))
			{
				kvlsm_notify_progress();
				CHECK_FOR_INTERRUPTS();
			}
			/* what compaction freed in the middle of the file, gathered at its end */
			pgstat_report_activity(STATE_RUNNING, "kvlsm space reclaim");
			kvlsm_reclaim_space(rel);
		}
		else
		{
			KvlsmShared *sh = kvlsm_attach(rel);

			pgstat_report_activity(STATE_RUNNING, "kvlsm flush");
			kvlsm_flush(rel, job->kind == KVLSM_JOB_FLUSH_FORCE);
			kvlsm_notify_progress();
			if (kvlsm_compaction_needed(sh))
				(void) enqueue(MyDatabaseId, RelationGetRelid(rel), &rel->rd_node,
							   KVLSM_JOB_COMPACT);
		}
	}
	relation_close(rel, RowExclusiveLock);
}

void
kvlsm_worker_main(Datum main_arg)
{
	Oid			dbid;
	TimestampTz idle_since;
	MemoryContext job_cxt;

	my_slot = DatumGetInt32(main_arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	kvlsm_am_worker = true;

	SpinLockAcquire(&ws->mutex);
	dbid = ws->slots[my_slot].dbid;
	ws->slots[my_slot].pid = MyProcPid;
	ws->slots[my_slot].latch = MyLatch;
	SpinLockRelease(&ws->mutex);
	before_shmem_exit(worker_exit, 0);

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	worker_connected = true;
	pgstat_report_appname("kvlsm worker");

	job_cxt = AllocSetContextCreate(TopMemoryContext, "kvlsm worker job",
									ALLOCSET_DEFAULT_SIZES);
	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		KvlsmJob	job;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		SpinLockAcquire(&ws->mutex);
		if (db_excluded(MyDatabaseId))
		{
			SpinLockRelease(&ws->mutex);
			break;
		}
		SpinLockRelease(&ws->mutex);
		if (!take_job(&job))
		{
			if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
										   WORKER_IDLE_EXIT_MS))
				break;
			pgstat_report_activity(STATE_IDLE, NULL);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		/* as autovacuum does: an error ends the job, not the worker */
		PG_TRY();
		{
			MemoryContext old = MemoryContextSwitchTo(job_cxt);

			StartTransactionCommand();
			run_job(&job);
			CommitTransactionCommand();
			MemoryContextSwitchTo(old);
			finish_job(false);
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			RESUME_INTERRUPTS();
			finish_job(true);
		}
		PG_END_TRY();
		MemoryContextReset(job_cxt);
		idle_since = GetCurrentTimestamp();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * Databases closed to workers
 * ---------------------------------------------------------------------
 */

/* a backend that dies while excluding a database gives it back */
static void
unexclude_mine(int code, Datum arg)
{
	int			i;

	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < MAX_DB_EXCLUSIONS; i++)
		if (ws->excluded[i].pid == MyProcPid)
			ws->excluded[i].pid = 0;
	SpinLockRelease(&ws->mutex);
}

/*
 * Close 'dbid' to workers: none starts there, and those connected leave
 * (SIGTERM; a job in progress is abandoned and rolled back, and queued
 * again by the next write).  Waits up to EXCLUDE_WAIT_MS for them to be
 * gone; the caller's command then reports any session still there, as it
 * would for a user's.  With 'forget_jobs', the database's queued jobs are
 * dropped (DROP DATABASE).
 */
void
kvlsm_workers_exclude_database(Oid dbid, bool forget_jobs)
{
	TimestampTz start = GetCurrentTimestamp();
	int			i;

	if (ws == NULL || !OidIsValid(dbid))
		return;
	if (!exclusion_callback_registered)
	{
		before_shmem_exit(unexclude_mine, 0);
		exclusion_callback_registered = true;
	}
	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < MAX_DB_EXCLUSIONS; i++)
		if (ws->excluded[i].pid == 0)
		{
			ws->excluded[i].dbid = dbid;
			ws->excluded[i].pid = MyProcPid;
			break;
		}
	if (forget_jobs)
		for (i = 0; i < MAX_JOBS; i++)
			if (ws->jobs[i].in_use && !ws->jobs[i].running && ws->jobs[i].dbid == dbid)
				ws->jobs[i].in_use = false;
	SpinLockRelease(&ws->mutex);
	/* all slots taken (16 such commands at once): the wait below still helps */

	for (;;)
	{
		int			pids[MAX_WORKER_SLOTS];
		int			npids = 0;
		bool		any = false;

		SpinLockAcquire(&ws->mutex);
		for (i = 0; i < MAX_WORKER_SLOTS; i++)
		{
			if (!ws->slots[i].in_use || ws->slots[i].dbid != dbid)
				continue;
			any = true;
			if (ws->slots[i].pid != 0)
				pids[npids++] = ws->slots[i].pid;
		}
		SpinLockRelease(&ws->mutex);
		if (!any ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), EXCLUDE_WAIT_MS))
			break;
		for (i = 0; i < npids; i++)
			(void) kill(pids[i], SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* open 'dbid' to workers again (this backend's exclusion of it) */
void
kvlsm_workers_unexclude_database(Oid dbid)
{
	int			i;
	Latch	   *launcher;

	if (ws == NULL || !OidIsValid(dbid))
		return;
	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < MAX_DB_EXCLUSIONS; i++)
		if (ws->excluded[i].pid == MyProcPid && ws->excluded[i].dbid == dbid)
			ws->excluded[i].pid = 0;
	launcher = ws->launcher_latch;
	SpinLockRelease(&ws->mutex);
	if (launcher)
		SetLatch(launcher);
}

/* ---------------------------------------------------------------------
 * Inspection
 * ---------------------------------------------------------------------
 */

int
kvlsm_worker_info(KvlsmWorkerInfo *out, int max)
{
	int			i,
				n = 0;

	if (ws == NULL)
		return 0;
	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < MAX_WORKER_SLOTS && n < max; i++)
		if (ws->slots[i].in_use)
		{
			out[n].pid = ws->slots[i].pid;
			out[n].dbid = ws->slots[i].dbid;
			out[n].busy = ws->slots[i].busy;
			out[n].jobs_done = ws->slots[i].jobs_done;
			n++;
		}
	SpinLockRelease(&ws->mutex);
	return n;
}

int
kvlsm_queued_jobs(void)
{
	int			i,
				n = 0;

	if (ws == NULL)
		return 0;
	SpinLockAcquire(&ws->mutex);
	for (i = 0; i < MAX_JOBS; i++)
		if (ws->jobs[i].in_use)
			n++;
	SpinLockRelease(&ws->mutex);
	return n;
}
