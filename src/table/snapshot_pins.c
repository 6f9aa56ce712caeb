/*-------------------------------------------------------------------------
 *
 * snapshot_pins.c
 *	  What named snapshots pin: the oldest xmin and creation time any of
 *	  them needs in a database, the garbage-collection horizon that follows
 *	  from it, and the TOAST deleters a creator must wait for.  Owns the
 *	  module's shared memory (PinShared, snapshot_internal.h).
 *
 * The horizon is cached per database in shared memory and reloaded from
 * the catalog after a create or drop commits (or aborts).  A creating
 * transaction publishes its snapshot's xmin in shared memory before it
 * inserts the catalog row (kvlsm_snapshot_publish_creator); a reload keeps
 * that pin while the creator runs, so no compaction can slip between the
 * creation and the moment the row becomes visible.
 *
 * Locking: PinShared.mutex, a spinlock, around copies of the slots only;
 * the catalog is read (kvlsm_snapshot_catalog_oldest) with no lock held.
 * The TOAST-deleter slots are written without it, each by its own process.
 * No WAL: the catalog is the durable state.
 *
 * Callers: compaction through the GC policy (kvlsm_gc_horizon, registered
 * in src/kvlsm.c), the table AM's vacuum and TOAST code (vacuum.c, rowops.c),
 * visibility.c (kvlsm_snapshot_pin), DROP DATABASE (options.c), _PG_init
 * (shared memory), and snapshot_catalog.c (creators).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "kvlsm/snapshots.h"
#include "snapshot_internal.h"

PinShared  *kvlsm_snapshot_shared = NULL;

/* this transaction's TOAST deletes went ahead at once (its slot holds it) */
static TransactionId toast_deleted_now_xid = InvalidTransactionId;

/* this transaction created or dropped a snapshot: reload at its end */
static bool pins_changed = false;

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

	kvlsm_snapshot_shared = ShmemInitStruct("kvlsm named snapshot pins",
											kvlsm_snapshots_shmem_size(),
											&found);
	if (!found)
	{
		memset(kvlsm_snapshot_shared, 0, kvlsm_snapshots_shmem_size());
		SpinLockInit(&kvlsm_snapshot_shared->mutex);
		kvlsm_snapshot_shared->ndeleters = deleter_slots();
	}
}

/* ---------------------------------------------------------------------
 * TOAST deleters
 * ---------------------------------------------------------------------
 */

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
	PinShared  *pins = kvlsm_snapshot_shared;
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
TransactionId *
kvlsm_snapshot_wait_for_toast_deleters(int *nxids)
{
	PinShared  *pins = kvlsm_snapshot_shared;
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

/* ---------------------------------------------------------------------
 * Per-database pins
 * ---------------------------------------------------------------------
 */

/* the slot of a database; the caller holds the mutex */
static DbPins *
db_slot(Oid dbid, bool create)
{
	PinShared  *pins = kvlsm_snapshot_shared;
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
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;

	if (pins == NULL)
		return;
	SpinLockAcquire(&pins->mutex);
	slot = db_slot(dbid, false);
	if (slot != NULL)
		memset(slot, 0, sizeof(DbPins));
	SpinLockRelease(&pins->mutex);
}

/* the cached pin of this database, if it reflects the committed catalog */
static bool
cached_pin(TransactionId *pin, TimestampTz *pin_time)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;
	bool		valid = false;

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, true);
	if (slot != NULL && slot->valid)
	{
		valid = true;
		*pin = slot->pin;
		*pin_time = slot->pin_time;
	}
	SpinLockRelease(&pins->mutex);
	return valid;
}

/*
 * Reload.  A create that commits after this scan's snapshot was taken keeps
 * its published pin (its creator is still running or the slot is
 * invalidated again at its commit).
 */
static void
reload_pin(TransactionId *pin, TimestampTz *pin_time)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;
	TransactionId cpin;
	TimestampTz ctime;
	int			i;

	kvlsm_snapshot_catalog_oldest(&cpin, &ctime);
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
	*pin = cpin;
	*pin_time = ctime;
}

/* snapshots being created are pinned from before their row exists */
static void
add_creators(TransactionId *pin, TimestampTz *pin_time)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;
	int			i;

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, false);
	if (slot != NULL)
	{
		for (i = 0; i < slot->ncreators; i++)
		{
			if (!TransactionIdIsValid(*pin) ||
				TransactionIdPrecedes(slot->creators[i].xmin, *pin))
				*pin = slot->creators[i].xmin;
			if (*pin_time == 0 || slot->creators[i].time < *pin_time)
				*pin_time = slot->creators[i].time;
		}
	}
	SpinLockRelease(&pins->mutex);
}

TransactionId
kvlsm_snapshot_pin(TimestampTz *oldest_time)
{
	TransactionId pin = InvalidTransactionId;
	TimestampTz pin_time = 0;

	if (kvlsm_snapshot_shared == NULL || !OidIsValid(MyDatabaseId) ||
		!IsTransactionState())
	{
		if (oldest_time)
			*oldest_time = 0;
		return InvalidTransactionId;
	}

	if (!cached_pin(&pin, &pin_time))
	{
		if (IsInParallelMode())
		{
			/*
			 * A parallel worker (or a leader in parallel mode) cannot take
			 * the fresh snapshot a reload needs: answer as if everything
			 * were pinned, which only keeps more (its callers decide about
			 * removal).
			 */
			if (oldest_time)
				*oldest_time = 1;
			return FirstNormalTransactionId;
		}
		reload_pin(&pin, &pin_time);
	}
	add_creators(&pin, &pin_time);

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

/* ---------------------------------------------------------------------
 * Creators, and the end of a transaction that changed the pins
 * ---------------------------------------------------------------------
 */

/*
 * Publish the pin of a snapshot being created before its row exists (see
 * the file header): 'xmin' is the statement's, which no snapshot taken
 * later precedes.  Errors if too many are being created at once.  The
 * pins are reloaded when the creating transaction ends.
 */
void
kvlsm_snapshot_publish_creator(TransactionId creator, TransactionId xmin,
							   TimestampTz time)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;
	bool		published;

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, true);
	published = (slot != NULL && slot->ncreators < PIN_CREATORS);
	if (published)
	{
		slot->creators[slot->ncreators].creator = creator;
		slot->creators[slot->ncreators].xmin = xmin;
		slot->creators[slot->ncreators].time = time;
		slot->ncreators++;
	}
	SpinLockRelease(&pins->mutex);
	if (!published)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many named snapshots are being created at once"),
				 errhint("Retry when the other creating transactions have ended.")));
	pins_changed = true;
}

/* this transaction dropped a snapshot: reload the pins at its end */
void
kvlsm_snapshot_note_pins_changed(void)
{
	pins_changed = true;
}

static void
invalidate_pins(void)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	DbPins	   *slot;

	SpinLockAcquire(&pins->mutex);
	slot = db_slot(MyDatabaseId, false);
	if (slot != NULL)
		slot->valid = false;
	SpinLockRelease(&pins->mutex);
}

/* commit, abort or prepare (snapshots.c's transaction callback) */
void
kvlsm_snapshot_pins_at_xact_end(void)
{
	if (pins_changed && kvlsm_snapshot_shared != NULL)
		invalidate_pins();
	pins_changed = false;
}
