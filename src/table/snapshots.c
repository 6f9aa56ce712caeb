/*-------------------------------------------------------------------------
 *
 * snapshots.c
 *	  Named snapshots: kvlsm_snapshot_create, kvlsm_snapshot_drop and
 *	  kvlsm_snapshot_use, the horizon they pin, and the substitution of
 *	  the named snapshot in scans of kvlsm tables.  See snapshots.h.
 *
 * The catalog is the extension's table kvlsm_named_snapshot, so snapshots
 * survive restarts and replicate.  The horizon is cached per database in
 * shared memory and reloaded from the catalog after a create or drop
 * commits (or aborts).  A creating transaction publishes its snapshot's
 * xmin in shared memory before it inserts the catalog row; a reload keeps
 * that pin while the creator runs, so no compaction can slip between the
 * creation and the moment the row becomes visible.
 *
 * Time travel is transaction-scoped and is never a setting: a function
 * turns it on for the rest of the transaction, which it makes read only.
 * It applies to MVCC snapshots of kvlsm tables only, never inside a
 * security-restricted operation or a SECURITY DEFINER function, and only
 * on tables the user owns.  A table whose file was created after the
 * snapshot (CREATE, TRUNCATE, VACUUM FULL, CLUSTER, a rewriting ALTER
 * TABLE: the metapage records the creating xid) has no history for it: an
 * error, never today's contents.  While it is on, the planner is told that
 * no index of a kvlsm table is unique (an index built later must not
 * justify join removal or inner-unique joins), and cached plans are reset.
 * Row-level security policies that read tables see current data: their
 * clauses are evaluated inside a scope that switches the substitution off
 * (wrap_policies).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/xid8.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/page.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/table.h"

int			kvlsm_snapshot_max_age = 150000000;

#define PIN_DBS 64
#define PIN_CREATORS 8
/* the expanded in-progress list of one snapshot: at most this many xids */
#define MAX_EXPANDED_XIDS (16 * 1024 * 1024)

typedef struct PinCreator
{
	TransactionId creator;		/* the creating transaction */
	TransactionId xmin;
	TimestampTz time;
} PinCreator;

typedef struct DbPins
{
	Oid			dbid;			/* InvalidOid: free slot */
	bool		valid;			/* pin/time reflect the committed catalog */
	TransactionId pin;
	TimestampTz pin_time;
	int			ncreators;
	PinCreator	creators[PIN_CREATORS];
} DbPins;

#define PIN_ESTIMATES 64

/*
 * (time, next xid) samples, one a second at most, over the last hour or
 * more: TTL expiry is judged by time, standby conflicts and feedback speak
 * in xids (kvlsm_xid_at_time, kvlsm_time_before_xid).
 */
#define XIDTIME_SLOTS 4096

typedef struct XidTimeSample
{
	TimestampTz time;
	TransactionId xid;
} XidTimeSample;

typedef struct RetainedEstimate
{
	Oid			dbid;			/* InvalidOid: free */
	char		name[NAMEDATALEN];
	int64		bytes;
	TimestampTz at;
} RetainedEstimate;

typedef struct PinShared
{
	slock_t		mutex;
	DbPins		dbs[PIN_DBS];

	/*
	 * TOAST deleters, one slot per PGPROC (pgprocno): the top-level xid of
	 * the last transaction of that process that may have deleted TOAST
	 * values of a kvlsm table at once rather than leaving them to
	 * compaction (kvlsm_toast_delete_now).  A creating snapshot waits for
	 * these transactions and checks that it sees their outcome.
	 */
	/* the latest kvlsm_snapshot_retained() result of each snapshot */
	RetainedEstimate estimates[PIN_ESTIMATES];

	/* ring of xid/time samples; nsamples counts up to XIDTIME_SLOTS */
	int			nsamples;
	int			next_sample;
	XidTimeSample samples[XIDTIME_SLOTS];

	int			ndeleters;
	TransactionId deleters[FLEXIBLE_ARRAY_MEMBER];
} PinShared;

static PinShared *pins = NULL;

/* this transaction's TOAST deletes went ahead at once (its slot holds it) */
static TransactionId toast_deleted_now_xid = InvalidTransactionId;

/* this transaction created or dropped a snapshot: reload at its end */
static bool pins_changed = false;

/* the named snapshot kvlsm_snapshot_retained() is measuring */
static Snapshot est_snapshot = NULL;
static TimestampTz est_time = 0;

/* the named snapshot in use in this transaction */
static Snapshot tt_snapshot = NULL;
static TimestampTz tt_time = 0;
static char tt_name[NAMEDATALEN];
static List *tt_checked = NIL;	/* relids that passed the checks */

/*
 * Open current-data scopes of row-level security policies (see
 * wrap_policies): the token each kvlsm_rls_enter() returned, and
 * per subtransaction nesting level the depth at its start, so an error
 * caught by a subtransaction closes the scopes it left open.
 */
static uint64 *rls_tokens = NULL;
static int	rls_depth = 0;
static int	rls_max = 0;
static int *rls_sub_depth = NULL;
static int	rls_sub_max = 0;

static get_relation_info_hook_type prev_get_relation_info = NULL;
static planner_hook_type prev_planner = NULL;

static void record_estimate(const char *name, int64 bytes);
static void forget_estimate(const char *name);

/* one TOAST-deleter slot per PGPROC, as ProcGlobal->allProcs has them */
static int
deleter_slots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
kvlsm_snapshots_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(PinShared, deleters),
							 mul_size(deleter_slots(), sizeof(TransactionId))));
}

void
kvlsm_snapshots_shmem_init(void)
{
	bool		found;

	pins = ShmemInitStruct("kvlsm named snapshot pins", kvlsm_snapshots_shmem_size(),
						   &found);
	if (!found)
	{
		memset(pins, 0, kvlsm_snapshots_shmem_size());
		SpinLockInit(&pins->mutex);
		pins->ndeleters = deleter_slots();
	}
}

/*
 * Record the next xid with the time, at most once a second (the launcher
 * calls this every time it wakes; compaction too, before it looks back).
 */
void
kvlsm_xid_time_sample(void)
{
	TimestampTz now = GetCurrentTimestamp();
	XidTimeSample *last;

	if (pins == NULL)
		return;
	SpinLockAcquire(&pins->mutex);
	last = pins->nsamples > 0 ?
		&pins->samples[(pins->next_sample + XIDTIME_SLOTS - 1) % XIDTIME_SLOTS] : NULL;
	if (last == NULL || now - last->time >= USECS_PER_SEC)
	{
		pins->samples[pins->next_sample].time = now;
		pins->samples[pins->next_sample].xid = ReadNextTransactionId();
		pins->next_sample = (pins->next_sample + 1) % XIDTIME_SLOTS;
		if (pins->nsamples < XIDTIME_SLOTS)
			pins->nsamples++;
	}
	SpinLockRelease(&pins->mutex);
}

/*
 * An xid no snapshot taken before time 't' has as its xmin or beyond: the
 * next xid of the first sample at or after 't' (a snapshot's xmin is never
 * past the next xid when it is taken, and the next xid only grows), or the
 * next xid now.  Too late rather than too early when samples are missing.
 */
TransactionId
kvlsm_xid_at_time(TimestampTz t)
{
	TransactionId result = InvalidTransactionId;
	int			i;

	kvlsm_xid_time_sample();
	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < pins->nsamples; i++)
	{
		/* oldest first */
		XidTimeSample *s = &pins->samples[(pins->next_sample - pins->nsamples + i +
										   XIDTIME_SLOTS) % XIDTIME_SLOTS];

		if (s->time >= t)
		{
			result = s->xid;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	return TransactionIdIsValid(result) ? result : ReadNextTransactionId();
}

/*
 * A time no snapshot whose xmin is 'xid' was taken before: that of the last
 * sample whose next xid was still below it (the next xid had not reached
 * 'xid' then).  0 when no sample is that old: nothing is known.
 */
TimestampTz
kvlsm_time_before_xid(TransactionId xid)
{
	TimestampTz result = 0;
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = pins->nsamples - 1; i >= 0; i--)
	{
		XidTimeSample *s = &pins->samples[(pins->next_sample - pins->nsamples + i +
										   XIDTIME_SLOTS) % XIDTIME_SLOTS];

		if (TransactionIdPrecedes(s->xid, xid))
		{
			result = s->time;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	return result;
}

/*
 * The xid a removal of row versions conflicts with on hot standbys (a
 * query whose snapshot's xmin is not past it is cancelled): the newest
 * deleter whose versions went, and for rows dropped at the end of their
 * TTL, which snapshots judge by time, the next xid when the latest of them
 * expired (every snapshot taken before then has an xmin up to that).
 */
TransactionId
kvlsm_conflict_xid(TransactionId latest_removed, TimestampTz ttl_max_expired)
{
	if (ttl_max_expired != 0)
	{
		TransactionId x = kvlsm_xid_at_time(ttl_max_expired);

		if (!TransactionIdIsValid(latest_removed) || TransactionIdFollows(x, latest_removed))
			latest_removed = x;
	}
	return latest_removed;
}

/*
 * May this transaction delete the TOAST values of a row version of a kvlsm
 * table now, as heap does, rather than leave them to the compaction that
 * drops the version (the deferred cleanup)?  Only while no named snapshot
 * of the database exists.
 *
 * A snapshot being created can still need values deleted by a transaction
 * it does not see as finished, though, and a VACUUM of the TOAST table
 * would remove them regardless of named snapshots.  So before it looks at
 * the pins a deleter records its xid in its slot, and a creator, after
 * publishing its pin, waits for every recorded transaction and checks that
 * its snapshot sees how each ended (kvlsm_snapshot_create).  The spinlock
 * of the pin check orders the two: either the deleter sees the pin (and
 * defers), or the creator sees the slot.  A slot is reused only once every
 * running snapshot sees its old transaction as finished; until then its
 * process defers instead.
 */
bool
kvlsm_toast_delete_now(void)
{
	TransactionId xid = GetTopTransactionId();
	volatile TransactionId *slot;
	bool		now;

	if (pins == NULL || MyProc == NULL || MyProc->pgprocno >= pins->ndeleters)
		return false;			/* not preloaded: defer, which is always safe */
	slot = &pins->deleters[MyProc->pgprocno];
	if (*slot != xid)
	{
		TransactionId old = *slot;

		if (TransactionIdIsValid(old) && !GlobalVisCheckRemovableXid(NULL, old))
			return false;
		*slot = xid;
	}
	now = !TransactionIdIsValid(kvlsm_snapshot_pin(NULL));
	if (now)
		toast_deleted_now_xid = xid;
	else if (toast_deleted_now_xid != xid)
		*slot = InvalidTransactionId;	/* nothing was deleted at once after all */
	return now;
}

/*
 * Wait for every transaction that may have deleted TOAST values at once
 * (see above) and return their xids.  Called by a creator after its pin is
 * published.
 */
static TransactionId *
wait_for_toast_deleters(int *nxids)
{
	TransactionId *xids;
	int			n = 0;
	int			i;
	TransactionId me = GetTopTransactionIdIfAny();

	xids = palloc(sizeof(TransactionId) * pins->ndeleters);
	pg_memory_barrier();
	for (i = 0; i < pins->ndeleters; i++)
	{
		TransactionId x = ((volatile PinShared *) pins)->deleters[i];

		if (TransactionIdIsValid(x) && !TransactionIdEquals(x, me) &&
			!GlobalVisCheckRemovableXid(NULL, x))
			xids[n++] = x;
	}
	for (i = 0; i < n; i++)
		XactLockTableWait(xids[i], NULL, NULL, XLTW_None);
	*nxids = n;
	return xids;
}

/* the slot of a database; the caller holds the mutex */
static DbPins *
db_slot(Oid dbid, bool create)
{
	int			i;
	DbPins	   *free_slot = NULL;

	for (i = 0; i < PIN_DBS; i++)
	{
		if (pins->dbs[i].dbid == dbid)
			return &pins->dbs[i];
		if (pins->dbs[i].dbid == InvalidOid && free_slot == NULL)
			free_slot = &pins->dbs[i];
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(DbPins));
	free_slot->dbid = dbid;
	return free_slot;
}

/* DROP DATABASE: its pin slot is free again */
void
kvlsm_snapshots_forget_database(Oid dbid)
{
	DbPins	   *slot;

	if (pins == NULL)
		return;
	SpinLockAcquire(&pins->mutex);
	slot = db_slot(dbid, false);
	if (slot != NULL)
		memset(slot, 0, sizeof(DbPins));
	SpinLockRelease(&pins->mutex);
}

/* the catalog table, or InvalidOid if the extension is not in this database */
static Oid
catalog_relid(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("kvlsm_named_snapshot", nsp);
}

static char *
catalog_name(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"kvlsm\" is not installed in this database")));
	return quote_qualified_identifier(get_namespace_name(nsp), "kvlsm_named_snapshot");
}

/* catalog columns */
#define ANUM_NAME		1
#define ANUM_CREATED_AT	2
#define ANUM_CREATED_BY	3
#define ANUM_XMIN		4
#define ANUM_XMAX		5
#define ANUM_XIP		6
#define ANUM_EXPIRES	7

/* the 32-bit xid of a stored xid8 */
static TransactionId
xid_of(Datum d)
{
	return XidFromFullTransactionId(DatumGetFullTransactionId(d));
}

/* a snapshot is usable until the next xid reaches its expiry */
static bool
expired(FullTransactionId expires)
{
	return FullTransactionIdFollowsOrEquals(ReadNextFullTransactionId(), expires);
}

/* min xmin and creation time over the usable snapshots in the catalog */
static void
scan_catalog(TransactionId *pin, TimestampTz *pin_time)
{
	Oid			relid = catalog_relid();
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;

	*pin = InvalidTransactionId;
	*pin_time = 0;
	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		TransactionId xmin;
		TimestampTz t;

		if (expired(DatumGetFullTransactionId(slot_getattr(slot, ANUM_EXPIRES, &isnull))))
			continue;
		xmin = xid_of(slot_getattr(slot, ANUM_XMIN, &isnull));
		t = DatumGetTimestampTz(slot_getattr(slot, ANUM_CREATED_AT, &isnull));
		if (!TransactionIdIsValid(*pin) || TransactionIdPrecedes(xmin, *pin))
			*pin = xmin;
		if (*pin_time == 0 || t < *pin_time)
			*pin_time = t;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

TransactionId
kvlsm_snapshot_pin(TimestampTz *oldest_time)
{
	DbPins	   *slot;
	TransactionId pin = InvalidTransactionId;
	TimestampTz pin_time = 0;
	bool		valid = false;
	int			i;

	if (pins == NULL || !OidIsValid(MyDatabaseId) || !IsTransactionState())
	{
		if (oldest_time)
			*oldest_time = 0;
		return InvalidTransactionId;
	}

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, true);
	if (slot != NULL && slot->valid)
	{
		valid = true;
		pin = slot->pin;
		pin_time = slot->pin_time;
	}
	SpinLockRelease(&pins->mutex);

	if (!valid && IsInParallelMode())
	{
		/*
		 * A parallel worker (or a leader in parallel mode) cannot take the
		 * fresh snapshot a reload needs: answer as if everything were
		 * pinned, which only keeps more (its callers decide about removal).
		 */
		if (oldest_time)
			*oldest_time = 1;
		return FirstNormalTransactionId;
	}
	if (!valid)
	{
		TransactionId cpin;
		TimestampTz ctime;

		/*
		 * Reload.  A create that commits after this scan's snapshot was
		 * taken keeps its published pin (its creator is still running or
		 * the slot is invalidated again at its commit).
		 */
		scan_catalog(&cpin, &ctime);
		SpinLockAcquire(&pins->mutex);
		slot = db_slot(MyDatabaseId, true);
		if (slot != NULL)
		{
			int			j = 0;

			slot->pin = cpin;
			slot->pin_time = ctime;
			slot->valid = true;
			for (i = 0; i < slot->ncreators; i++)
			{
				/* the scan saw the committed row of a finished creator */
				if (TransactionIdIsInProgress(slot->creators[i].creator))
					slot->creators[j++] = slot->creators[i];
			}
			slot->ncreators = j;
		}
		SpinLockRelease(&pins->mutex);
		pin = cpin;
		pin_time = ctime;
	}

	/* snapshots being created are pinned from before their row exists */
	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, false);
	if (slot != NULL)
	{
		for (i = 0; i < slot->ncreators; i++)
		{
			if (!TransactionIdIsValid(pin) ||
				TransactionIdPrecedes(slot->creators[i].xmin, pin))
				pin = slot->creators[i].xmin;
			if (pin_time == 0 || slot->creators[i].time < pin_time)
				pin_time = slot->creators[i].time;
		}
	}
	SpinLockRelease(&pins->mutex);

	if (oldest_time)
		*oldest_time = pin_time;
	return pin;
}

bool
kvlsm_xid_removable(GlobalVisState *vis, TransactionId xid)
{
	TransactionId pin;

	if (!GlobalVisTestIsRemovableXid(vis, xid))
		return false;
	pin = kvlsm_snapshot_pin(NULL);
	return !TransactionIdIsValid(pin) || TransactionIdPrecedes(xid, pin);
}

TransactionId
kvlsm_gc_horizon(Relation rel)
{
	TransactionId horizon;
	TransactionId pin = kvlsm_snapshot_pin(NULL);

	/*
	 * The horizon of an index is its table's (the horizon functions take
	 * tables only); the index's lock keeps the table from being dropped.
	 */
	if (rel->rd_rel->relkind == RELKIND_INDEX)
	{
		Relation	heap = RelationIdGetRelation(rel->rd_index->indrelid);

		if (!RelationIsValid(heap))
			elog(ERROR, "could not open the table of index \"%s\"",
				 RelationGetRelationName(rel));
		horizon = GetOldestNonRemovableTransactionId(heap);
		RelationClose(heap);
	}
	else
		horizon = GetOldestNonRemovableTransactionId(rel);

	if (TransactionIdIsValid(pin) && TransactionIdPrecedes(pin, horizon))
		horizon = pin;
	return horizon;
}

static void
invalidate_pins(void)
{
	DbPins	   *slot;

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, false);
	if (slot != NULL)
		slot->valid = false;
	SpinLockRelease(&pins->mutex);
}

static void
snapshots_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (pins_changed && pins != NULL)
				invalidate_pins();
			pins_changed = false;
			if (tt_snapshot != NULL)
			{
				/* plans made without unique indexes are not kept */
				ResetPlanCache();
			}
			tt_snapshot = NULL;
			tt_checked = NIL;	/* in TopTransactionContext */
			rls_depth = 0;
			break;
		default:
			break;
	}
}

static void
snapshots_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (level >= rls_sub_max)
			{
				int			newmax = Max(level + 1, rls_sub_max * 2);

				if (rls_sub_depth == NULL)
					rls_sub_depth = MemoryContextAlloc(TopMemoryContext,
													   sizeof(int) * newmax);
				else
					rls_sub_depth = repalloc(rls_sub_depth, sizeof(int) * newmax);
				rls_sub_max = newmax;
			}
			rls_sub_depth[level] = rls_depth;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			if (level < rls_sub_max && rls_sub_depth[level] < rls_depth)
				rls_depth = rls_sub_depth[level];
			break;
		default:
			break;
	}
}

/*
 * Does a policy expression read tables: a subquery, a function not built
 * in, or one of the built-in functions that run SQL?
 */
static bool
user_function_checker(Oid funcid, void *context)
{
	switch (funcid)
	{
		case F_TABLE_TO_XML:
		case F_QUERY_TO_XML:
		case F_CURSOR_TO_XML:
		case F_TABLE_TO_XMLSCHEMA:
		case F_QUERY_TO_XMLSCHEMA:
		case F_CURSOR_TO_XMLSCHEMA:
		case F_TABLE_TO_XML_AND_XMLSCHEMA:
		case F_QUERY_TO_XML_AND_XMLSCHEMA:
		case F_SCHEMA_TO_XML:
		case F_SCHEMA_TO_XMLSCHEMA:
		case F_SCHEMA_TO_XML_AND_XMLSCHEMA:
		case F_DATABASE_TO_XML:
		case F_DATABASE_TO_XMLSCHEMA:
		case F_DATABASE_TO_XML_AND_XMLSCHEMA:
		case F_TS_REWRITE_TSQUERY_TEXT:
		case F_TS_STAT_TEXT:
		case F_TS_STAT_TEXT_TEXT:
			return true;
		default:
			return funcid >= FirstGenbkiObjectId;
	}
}

static bool
policy_reads_tables(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan))
		return true;
	/*
	 * Preprocessing made an uncorrelated subquery an InitPlan, which the
	 * clause reaches through a PARAM_EXEC Param and runs when it first
	 * needs the value: inside the scope, once the clause is wrapped.
	 * (Other PARAM_EXEC Params, outer references, are wrapped needlessly
	 * but harmlessly.)
	 */
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	if (check_functions_in_node(node, user_function_checker, NULL))
		return true;
	return expression_tree_walker(node, policy_reads_tables, context);
}

/*
 * Row-level security policies are evaluated by the query itself, with its
 * snapshot: while time travelling, a policy's subquery would read the
 * named snapshot's data, where PostgreSQL's rules want current data (a
 * revoked permission must stay revoked).  So each policy clause that
 * reads tables (a subquery, or a function not built in) is wrapped as
 * kvlsm_rls_scope(kvlsm_rls_enter(), clause).  Function arguments are
 * evaluated in order, so the clause, with every SubPlan, InitPlan and
 * function it runs, is evaluated inside a scope in which scans of kvlsm
 * tables use the transaction's own snapshot.  That holds because the
 * executor begins a subplan's scans when the subplan first runs (SeqNext,
 * IndexNext and the like begin them lazily; the one node that begins its
 * scan at startup, the bitmap heap scan, never scans a kvlsm table), and
 * an index fetch asks kvlsm_scan_snapshot() again every time.
 *
 * This is done when the planner builds the relation's RelOptInfo: the
 * policy clauses are still on the range table entry then (they become
 * restriction clauses later), including those of SQL functions the
 * planner inlines, which a planner_hook would never see.  Policies that
 * only look at the row itself are left alone, so they still drive index
 * scans.
 */
static void
wrap_policies(PlannerInfo *root, RelOptInfo *rel)
{
	RangeTblEntry *rte = root->simple_rte_array[rel->relid];
	Oid			enter = InvalidOid;
	Oid			scope = InvalidOid;
	ListCell   *lc;

	foreach(lc, rte->securityQuals)
	{
		/* one security level: an implicitly ANDed list once preprocessed */
		List	   *clauses = IsA(lfirst(lc), List) ? lfirst(lc) : list_make1(lfirst(lc));
		ListCell   *cc;

		foreach(cc, clauses)
		{
			Node	   *clause = lfirst(cc);

			if (!policy_reads_tables(clause, NULL))
				continue;
			if (!OidIsValid(scope))
			{
				char	   *nsp = get_namespace_name(kvlsm_extension_schema());
				Oid			scope_args[2] = {INT8OID, BOOLOID};

				enter = LookupFuncName(list_make2(makeString(nsp), makeString("kvlsm_rls_enter")),
									   0, NULL, false);
				scope = LookupFuncName(list_make2(makeString(nsp), makeString("kvlsm_rls_scope")),
									   2, scope_args, false);
			}
			if (IsA(clause, FuncExpr) && ((FuncExpr *) clause)->funcid == scope)
				continue;		/* wrapped already (a relation planned twice) */
			lfirst(cc) = makeFuncExpr(scope, BOOLOID,
									  list_make2(makeFuncExpr(enter, INT8OID, NIL, InvalidOid,
															  InvalidOid, COERCE_EXPLICIT_CALL),
												 clause),
									  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
		if (!IsA(lfirst(lc), List))
			lfirst(lc) = linitial(clauses);
	}
}

/*
 * While time travelling the planner must not trust unique indexes of kvlsm
 * tables, and must not meet a policy that would read historic data.
 */
static void
snapshots_get_relation_info(PlannerInfo *root, Oid relationObjectId,
							bool inhparent, RelOptInfo *rel)
{
	if (prev_get_relation_info)
		prev_get_relation_info(root, relationObjectId, inhparent, rel);
	if (tt_snapshot != NULL)
		wrap_policies(root, rel);
	if (tt_snapshot != NULL && rel->indexlist != NIL)
	{
		Relation	r = table_open(relationObjectId, NoLock);
		bool		kv = kvlsm_is_kvlsm_relation(r);
		ListCell   *lc;

		table_close(r, NoLock);
		if (kv)
			foreach(lc, rel->indexlist)
				((IndexOptInfo *) lfirst(lc))->unique = false;
	}
}

/*
 * No parallel plans while time travelling: the named snapshot lives in
 * this backend only, and parallel workers would scan kvlsm tables with the
 * transaction's snapshot (current rows mixed with the leader's historic
 * ones).  Cached plans were reset when time travel began.
 */
static PlannedStmt *
snapshots_planner(Query *parse, const char *query_string, int cursorOptions,
				  ParamListInfo boundParams)
{
	if (tt_snapshot != NULL)
		cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
kvlsm_snapshots_init(void)
{
	DefineCustomIntVariable("kvlsm.snapshot_max_age",
							"Age in transactions after which a named snapshot stops holding back garbage collection and can no longer be used.",
							"Applies to snapshots created afterwards; keep it below autovacuum_freeze_max_age.",
							&kvlsm_snapshot_max_age, 150000000, 1000, 1500000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	RegisterXactCallback(snapshots_xact_callback, NULL);
	RegisterSubXactCallback(snapshots_subxact_callback, NULL);
	prev_get_relation_info = get_relation_info_hook;
	get_relation_info_hook = snapshots_get_relation_info;
	prev_planner = planner_hook;
	planner_hook = snapshots_planner;
}

/* ---------------------------------------------------------------------
 * Time travel
 * ---------------------------------------------------------------------
 */

bool
kvlsm_time_travel_active(void)
{
	return tt_snapshot != NULL;
}

TimestampTz
kvlsm_snapshot_ttl_time(Snapshot snapshot)
{
	if (snapshot != NULL && snapshot == tt_snapshot)
		return tt_time;
	if (snapshot != NULL && snapshot == est_snapshot)
		return est_time;
	return 0;
}

/* may this relation be read through the named snapshot?  Errors if not. */
static void
check_relation(Relation rel)
{
	KvlsmMetaPageData meta;

	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot read \"%s\" through named snapshot \"%s\"",
						RelationGetRelationName(rel), tt_name),
				 errdetail("Time travel is allowed only on tables the user owns.")));
	kvlsm_read_metapage(rel, &meta);
	if (TransactionIdIsNormal(meta.created_xid) &&
		XidInMVCCSnapshot(meta.created_xid, tt_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_SNAPSHOT_TOO_OLD),
				 errmsg("\"%s\" has no history as old as named snapshot \"%s\"",
						RelationGetRelationName(rel), tt_name),
				 errdetail("The table was created, truncated or rewritten after the snapshot was taken.")));
}

Snapshot
kvlsm_scan_snapshot(Relation rel, Snapshot snapshot)
{
	MemoryContext old;

	if (tt_snapshot == NULL || snapshot == NULL || snapshot == tt_snapshot ||
		snapshot->snapshot_type != SNAPSHOT_MVCC)
		return snapshot;
	if (InSecurityRestrictedOperation() || InLocalUserIdChange())
		return snapshot;
	/* a row-level security policy sees current data */
	if (rls_depth > 0)
		return snapshot;
	if (!list_member_oid(tt_checked, RelationGetRelid(rel)))
	{
		check_relation(rel);
		old = MemoryContextSwitchTo(TopTransactionContext);
		tt_checked = lappend_oid(tt_checked, RelationGetRelid(rel));
		MemoryContextSwitchTo(old);
	}
	return tt_snapshot;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

static FullTransactionId
full_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (TransactionIdFollows(xid, XidFromFullTransactionId(next)))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

static void
check_name(text *name, char *buf)
{
	char	   *s = text_to_cstring(name);

	if (strlen(s) == 0 || strlen(s) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a named snapshot needs a name of 1 to %d bytes", NAMEDATALEN - 1)));
	strlcpy(buf, s, NAMEDATALEN);
}

static int
xid_cmp(const void *a, const void *b)
{
	TransactionId xa = *(const TransactionId *) a;
	TransactionId xb = *(const TransactionId *) b;

	return (xa > xb) - (xa < xb);
}

/*
 * kvlsm_snapshot_create(name): record the caller's snapshot under a name.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_create);
Datum
kvlsm_snapshot_create(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Snapshot	snap;
	TransactionId *xids;
	int			nxids = 0;
	int			cap;
	Datum	   *elems;
	ArrayType  *xiparr;
	TimestampTz now = GetCurrentTimestamp();
	FullTransactionId expires;
	TransactionId me;
	DbPins	   *slot;
	bool		published;
	TransactionId *deleters;
	int			ndeleters;
	Snapshot	fresh = NULL;
	Oid			argtypes[7] = {TEXTOID, TIMESTAMPTZOID, OIDOID, XID8OID, XID8OID,
	XID8ARRAYOID, XID8OID};
	Datum		values[7];
	char	   *sql;
	int			i;
	TupleDesc	tupdesc;
	Datum		result[3];
	bool		nulls[3] = {0};

	check_name(PG_GETARG_TEXT_PP(0), name);
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create a named snapshot during recovery"),
				 errhint("Create it on the primary; it replicates to the standbys.")));
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot create a named snapshot in a transaction that has written"),
				 errhint("Create each named snapshot in its own transaction, before it writes anything.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	snap = GetActiveSnapshot();
	if (snap == NULL || snap->snapshot_type != SNAPSHOT_MVCC)
		elog(ERROR, "kvlsm_snapshot_create needs an MVCC snapshot");

	/*
	 * Publish the pin before the row exists (see the file header), with the
	 * statement's xmin, which no snapshot taken later precedes.
	 */
	me = GetTopTransactionId();
	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, true);
	published = (slot != NULL && slot->ncreators < PIN_CREATORS);
	if (published)
	{
		slot->creators[slot->ncreators].creator = me;
		slot->creators[slot->ncreators].xmin = snap->xmin;
		slot->creators[slot->ncreators].time = now;
		slot->ncreators++;
	}
	SpinLockRelease(&pins->mutex);
	if (!published)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many named snapshots are being created at once"),
				 errhint("Retry when the other creating transactions have ended.")));
	pins_changed = true;

	/*
	 * Transactions that deleted TOAST values at once, not knowing of the pin
	 * yet, must have ended, and the snapshot must see how: else it could
	 * need values that a VACUUM of the TOAST table removes.  In READ
	 * COMMITTED the snapshot is taken after the wait, so it does; a
	 * transaction snapshot taken earlier may not, and then creating the
	 * snapshot fails (retrying in a new transaction succeeds).
	 */
	deleters = wait_for_toast_deleters(&ndeleters);
	if (!IsolationUsesXactSnapshot())
	{
		fresh = RegisterSnapshot(GetLatestSnapshot());
		snap = fresh;
		now = GetCurrentTimestamp();
	}
	for (i = 0; i < ndeleters; i++)
	{
		if (XidInMVCCSnapshot(deleters[i], snap) && TransactionIdDidCommit(deleters[i]))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create named snapshot \"%s\" because of a concurrent delete", name),
					 errdetail("Transaction %u, which committed after this transaction's snapshot was taken, deleted TOAST values of a kvlsm table that the snapshot could need.",
							   deleters[i]),
					 errhint("Retry in a new transaction, or create the snapshot in a READ COMMITTED transaction.")));
	}

	/*
	 * Every xid in progress for the snapshot, subtransactions included.  An
	 * overflowed subxid cache means pg_subtrans must be asked, which is only
	 * possible now: expand the range [xmin, xmax) explicitly.
	 */
	if (!snap->suboverflowed)
	{
		cap = Max(snap->xcnt + snap->subxcnt, 1);
		xids = palloc(sizeof(TransactionId) * cap);
		for (i = 0; i < (int) snap->xcnt; i++)
			xids[nxids++] = snap->xip[i];
		for (i = 0; i < snap->subxcnt; i++)
			xids[nxids++] = snap->subxip[i];
	}
	else
	{
		TransactionId x;

		cap = 1024;
		xids = palloc(sizeof(TransactionId) * cap);
		for (x = snap->xmin; TransactionIdPrecedes(x, snap->xmax);)
		{
			TransactionId cur = x;

			TransactionIdAdvance(x);
			CHECK_FOR_INTERRUPTS();
			if (!XidInMVCCSnapshot(cur, snap))
				continue;
			if (nxids >= MAX_EXPANDED_XIDS)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many transactions in progress for a named snapshot"),
						 errdetail("At most %d in-progress transactions can be recorded.", MAX_EXPANDED_XIDS)));
			if (nxids >= cap)
			{
				cap *= 2;
				xids = repalloc_huge(xids, sizeof(TransactionId) * cap);
			}
			xids[nxids++] = cur;
		}
	}
	qsort(xids, nxids, sizeof(TransactionId), xid_cmp);
	elems = palloc(sizeof(Datum) * Max(nxids, 1));
	for (i = 0; i < nxids; i++)
		elems[i] = FullTransactionIdGetDatum(full_xid(xids[i]));
	xiparr = construct_array(elems, nxids, XID8OID, sizeof(FullTransactionId), true, TYPALIGN_DOUBLE);
	expires = FullTransactionIdFromU64(U64FromFullTransactionId(ReadNextFullTransactionId()) +
									   (uint64) kvlsm_snapshot_max_age);

	SPI_connect();
	sql = psprintf("SELECT 1 FROM %s WHERE name OPERATOR(pg_catalog.=) $1", catalog_name());
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args(sql, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not read the named snapshot catalog");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("named snapshot \"%s\" already exists", name)));
	sql = psprintf("INSERT INTO %s VALUES ($1, $2, $3, $4, $5, $6, $7)", catalog_name());
	values[1] = TimestampTzGetDatum(now);
	values[2] = ObjectIdGetDatum(GetUserId());
	values[3] = FullTransactionIdGetDatum(full_xid(snap->xmin));
	values[4] = FullTransactionIdGetDatum(full_xid(snap->xmax));
	values[5] = PointerGetDatum(xiparr);
	values[6] = FullTransactionIdGetDatum(expires);
	if (SPI_execute_with_args(sql, 7, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "kvlsm: could not insert into the named snapshot catalog");
	SPI_finish();

	result[0] = CStringGetTextDatum(name);
	result[1] = FullTransactionIdGetDatum(full_xid(snap->xmin));
	result[2] = TimestampTzGetDatum(now);
	if (fresh != NULL)
		UnregisterSnapshot(fresh);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls)));
}

/* kvlsm_snapshot_drop(name): forget it; compaction may then reclaim */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_drop);
Datum
kvlsm_snapshot_drop(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	uint64		n;

	check_name(PG_GETARG_TEXT_PP(0), name);
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot drop a named snapshot during recovery")));
	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1", catalog_name()),
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "kvlsm: could not delete from the named snapshot catalog");
	n = SPI_processed;
	SPI_finish();
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("named snapshot \"%s\" does not exist", name)));
	pins_changed = true;
	forget_estimate(name);
	PG_RETURN_BOOL(true);
}

/*
 * Read the named snapshot 'name' from the catalog into a snapshot allocated
 * in 'cxt', and its creation time.  Errors if there is no such snapshot or
 * it is too old to use.
 */
static Snapshot
load_named_snapshot(const char *name, MemoryContext cxt, TimestampTz *created)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	FullTransactionId expires;
	ArrayType  *arr;
	Datum	   *elems;
	int			nelems;
	Snapshot	snap;
	int			i;

	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT created_at, snap_xmin, snap_xmax, xip, expires_xid FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
									   catalog_name()),
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not read the named snapshot catalog");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("named snapshot \"%s\" does not exist", name)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	expires = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 5, &isnull));
	if (expired(expires))
		ereport(ERROR,
				(errcode(ERRCODE_SNAPSHOT_TOO_OLD),
				 errmsg("named snapshot \"%s\" is too old", name),
				 errdetail("It is older than kvlsm.snapshot_max_age allowed when it was created: garbage collection no longer keeps what it needs."),
				 errhint("Drop it with kvlsm_snapshot_drop().")));

	snap = MemoryContextAllocZero(cxt, sizeof(SnapshotData));
	snap->snapshot_type = SNAPSHOT_MVCC;
	snap->xmin = xid_of(SPI_getbinval(tup, desc, 2, &isnull));
	snap->xmax = xid_of(SPI_getbinval(tup, desc, 3, &isnull));
	arr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull));
	deconstruct_array(arr, XID8OID, sizeof(FullTransactionId), true, TYPALIGN_DOUBLE,
					  &elems, NULL, &nelems);
	snap->xip = MemoryContextAlloc(cxt,
								   sizeof(TransactionId) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		snap->xip[i] = xid_of(elems[i]);
	snap->xcnt = nelems;
	snap->subxip = NULL;
	snap->subxcnt = 0;
	snap->suboverflowed = false;
	snap->takenDuringRecovery = false;
	snap->copied = true;
	snap->curcid = GetCurrentCommandId(false);
	*created = DatumGetTimestampTz(SPI_getbinval(tup, desc, 1, &isnull));
	SPI_finish();

	return snap;
}

/*
 * kvlsm_snapshot_retained(name): per kvlsm table of the database, the row
 * versions the snapshot sees that nothing else keeps any more (deleted by
 * transactions every running snapshot sees as committed, or past their
 * TTL), and their record bytes: roughly what compaction could reclaim if
 * the snapshot were dropped (less what other named snapshots still see).
 * Reads every version of every kvlsm table, like pgstattuple; the total is
 * kept in shared memory for the kvlsm_snapshots view.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_retained);
Datum
kvlsm_snapshot_retained(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		name[NAMEDATALEN];
	Snapshot	snap;
	TimestampTz created;
	List	   *relids = NIL;
	ListCell   *lc;
	int64		total = 0;
	uint64		i;
	MemoryContext callercxt = CurrentMemoryContext;

	check_name(PG_GETARG_TEXT_PP(0), name);
	InitMaterializedSRF(fcinfo, 0);
	snap = load_named_snapshot(name, callercxt, &created);

	SPI_connect();
	/* every name qualified: a caller's search_path must not matter here */
	if (SPI_execute("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am a "
					"ON a.oid OPERATOR(pg_catalog.=) c.relam "
					"WHERE a.amname OPERATOR(pg_catalog.=) 'kvlsm' "
					"AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog.\"char\"[]) "
					"ORDER BY c.oid",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not list kvlsm tables");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		/* outside SPI's context, which SPI_finish frees */
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);

		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();

	est_snapshot = snap;
	est_time = created;
	PG_TRY();
	{
		foreach(lc, relids)
		{
			Relation	rel = try_relation_open(lfirst_oid(lc), AccessShareLock);
			KvlsmMetaPageData meta;
			uint64		versions;
			uint64		bytes;
			Datum		values[3];
			bool		nulls[3] = {0};

			if (rel == NULL)
				continue;
			/* a table whose history began after the snapshot keeps nothing for it */
			kvlsm_read_metapage(rel, &meta);
			if (TransactionIdIsNormal(meta.created_xid) &&
				XidInMVCCSnapshot(meta.created_xid, snap))
			{
				relation_close(rel, AccessShareLock);
				continue;
			}
			kvlsm_table_retained(rel, snap, &versions, &bytes);
			values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
			values[1] = Int64GetDatum((int64) versions);
			values[2] = Int64GetDatum((int64) bytes);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			total += bytes;
			relation_close(rel, AccessShareLock);
		}
	}
	PG_FINALLY();
	{
		est_snapshot = NULL;
	}
	PG_END_TRY();
	record_estimate(name, total);
	return (Datum) 0;
}

/* keep the latest estimate of a snapshot for the view (oldest slot goes) */
static void
record_estimate(const char *name, int64 bytes)
{
	RetainedEstimate *target = NULL;
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
		{
			target = e;
			break;
		}
		if (target == NULL || e->dbid == InvalidOid ||
			(target->dbid != InvalidOid && e->at < target->at))
			target = e;
	}
	target->dbid = MyDatabaseId;
	strlcpy(target->name, name, NAMEDATALEN);
	target->bytes = bytes;
	target->at = GetCurrentTimestamp();
	SpinLockRelease(&pins->mutex);
}

/* a dropped snapshot's estimate goes with it */
static void
forget_estimate(const char *name)
{
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
			memset(e, 0, sizeof(RetainedEstimate));
	}
	SpinLockRelease(&pins->mutex);
}

/* kvlsm_snapshot_retained_estimate(name): the latest estimate, if any */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_retained_estimate);
Datum
kvlsm_snapshot_retained_estimate(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	TupleDesc	tupdesc;
	Datum		values[2] = {0};
	bool		nulls[2] = {true, true};
	int			i;

	check_name(PG_GETARG_TEXT_PP(0), name);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
		{
			values[0] = Int64GetDatum(e->bytes);
			values[1] = TimestampTzGetDatum(e->at);
			nulls[0] = nulls[1] = false;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * kvlsm_snapshot_use(name): for the rest of the transaction, scans of kvlsm
 * tables see what was visible when the snapshot was taken.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_use);
Datum
kvlsm_snapshot_use(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Snapshot	snap;

	check_name(PG_GETARG_TEXT_PP(0), name);
	RequireTransactionBlock(true, "kvlsm_snapshot_use()");
	if (tt_snapshot != NULL)
	{
		if (strcmp(tt_name, name) == 0)
			PG_RETURN_VOID();
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("named snapshot \"%s\" is already in use in this transaction", tt_name)));
	}
	if (InSecurityRestrictedOperation() || InLocalUserIdChange())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot use a named snapshot inside a security-restricted operation or a SECURITY DEFINER function")));
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot use a named snapshot in a transaction that has written"),
				 errhint("Call kvlsm_snapshot_use() first in a read-only transaction.")));
	/* a cursor's scans would switch to history halfway */
	if (!ThereAreNoReadyPortals())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot use a named snapshot while cursors are open"),
				 errhint("Call kvlsm_snapshot_use() before opening cursors.")));

	snap = load_named_snapshot(name, TopTransactionContext, &tt_time);

	strlcpy(tt_name, name, NAMEDATALEN);
	tt_checked = NIL;
	tt_snapshot = snap;
	/* the rest of the transaction is read only, and plans are made anew */
	XactReadOnly = true;
	ResetPlanCache();
	PG_RETURN_VOID();
}

/*
 * kvlsm_rls_enter() and kvlsm_rls_scope(token, result): the current-data
 * scope around a row-level security policy clause (see wrap_policies).
 * The token is random, so nothing the clause calls can close a scope it
 * did not open and make the rest of the policy read historic data.
 */
PG_FUNCTION_INFO_V1(kvlsm_rls_enter);
Datum
kvlsm_rls_enter(PG_FUNCTION_ARGS)
{
	uint64		token;

	/* not the global PRNG: enter() would show its outputs to anyone */
	if (!pg_strong_random(&token, sizeof(token)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random token")));

	if (rls_depth == rls_max)
	{
		int			newmax = rls_max ? rls_max * 2 : 8;

		if (rls_tokens == NULL)
			rls_tokens = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * newmax);
		else
			rls_tokens = repalloc(rls_tokens, sizeof(uint64) * newmax);
		rls_max = newmax;
	}
	rls_tokens[rls_depth++] = token;
	PG_RETURN_INT64((int64) token);
}

PG_FUNCTION_INFO_V1(kvlsm_rls_scope);
Datum
kvlsm_rls_scope(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || rls_depth == 0 ||
		rls_tokens[rls_depth - 1] != (uint64) PG_GETARG_INT64(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm_rls_scope() does not close the innermost scope kvlsm_rls_enter() opened"),
				 errdetail("These functions are internal to row-level security while time travelling.")));
	rls_depth--;
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_BOOL(PG_GETARG_BOOL(1));
}
