/*-------------------------------------------------------------------------
 *
 * modify.c
 *	  Check-and-append for one row id: the heart of DELETE, UPDATE and row
 *	  locks, and the row stripe locks it runs under.
 *
 * kvlsm_modify_row reads the row (SSTables first, outside the stripe
 * lock), then under the stripe lock re-reads the memtable part and, when
 * nothing conflicts, appends the caller's record.  Conflicts with running
 * transactions are waited for outside the stripe lock, then everything is
 * checked again.
 *
 * Locks: the stripe locks are a named tranche of KVLSM_STRIPES LWLocks,
 * requested and attached through kvlsm_table_request_locks() and
 * kvlsm_table_shmem_init() (called from _PG_init and the shmem startup hook
 * in src/kvlsm.c).  Lock order: row stripe lock -> LSM lock -> buffer locks
 * (kvlsm/table.h, kvlsm/lsm.h).  A stripe lock is held only while the
 * memtable part of a row is re-read and a record appended; SSTables are
 * read before it is taken and the version epoch tells whether they changed
 * meanwhile.  Waits (the heavyweight tuple lock, XactLockTableWait) happen
 * with no stripe lock held.  The record appended goes through the engine's
 * put, which writes it to the relation's log (WAL) as lsm.c describes.
 *
 * Called by rowops.c (delete, update, lock).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/table_internal.h"

#define KVLSM_STRIPES	1024

static LWLockPadded *stripe_locks = NULL;

void
kvlsm_table_request_locks(void)
{
	RequestNamedLWLockTranche("kvlsm_row_stripe", KVLSM_STRIPES);
}

void
kvlsm_table_shmem_init(void)
{
	stripe_locks = GetNamedLWLockTranche("kvlsm_row_stripe");
}

static LWLock *
stripe_for(KvlsmShared *sh, uint64 rowid)
{
	uint64		h = rowid * UINT64CONST(0x9E3779B97F4A7C15) ^ sh->tag.node.relNode;

	return &stripe_locks[(h >> 20) % KVLSM_STRIPES].lock;
}

/* ------------------------------------------------------------------------
 * Reading the row under its stripe lock
 * ------------------------------------------------------------------------
 */

/*
 * The records of the row: memtable records (fresh, read under the stripe
 * lock) + SSTable records (from before), newest first.  Allocated in cxt.
 */
static KvlsmRecord *
merge_fresh_records(KvlsmRecordSet *set, KvlsmRecordSet *memset_,
					MemoryContext cxt, int *nall)
{
	KvlsmRecord *all;
	int			i;
	int			j;

	*nall = 0;
	all = MemoryContextAlloc(cxt, sizeof(KvlsmRecord) * (set->n + memset_->n + 1));
	for (i = 0, j = 0; i < memset_->n || j < set->n;)
	{
		KvlsmRecord *r;

		if (j < set->n && set->recs[j].in_memtable)
		{
			j++;
			continue;
		}
		if (i < memset_->n && (j >= set->n || memset_->recs[i].seq > set->recs[j].seq))
			r = &memset_->recs[i++];
		else
			r = &set->recs[j++];
		all[(*nall)++] = *r;
	}
	return all;
}

/*
 * Read the row's records and resolve them, ending with its stripe lock
 * held.  Returns the stripe lock, or NULL (with no lock held) when a flush
 * or compaction changed the SSTables meanwhile: the caller reads again.
 * 'set' gets the SSTable part, 'memset_' the memtable part; the merged
 * array is allocated in memset_cxt.
 */
static LWLock *
lock_stripe_and_read(Relation rel, KvlsmShared *sh, uint64 rowid,
					 const char *key, KvlsmRecordSet *set,
					 KvlsmRecordSet *memset_, MemoryContext memset_cxt,
					 KvlsmRowState *st)
{
	uint64		epoch;
	LWLock	   *stripe;
	KvlsmRecord *all;
	int			nall;

	epoch = kvlsm_version_epoch(sh);
	kvlsm_fetch_row_records(rel, sh, rowid, set);

	stripe = stripe_for(sh, rowid);
	LWLockAcquire(stripe, LW_EXCLUSIVE);
	if (kvlsm_version_epoch(sh) != epoch)
	{
		LWLockRelease(stripe);
		return NULL;
	}
	kvlsm_recset_reset(memset_);
	kvlsm_memtable_records(sh, &kvlsm_bytewise_keyops, key, 8, memset_);
	if (kvlsm_version_epoch(sh) != epoch)
	{
		LWLockRelease(stripe);
		return NULL;
	}

	all = merge_fresh_records(set, memset_, memset_cxt, &nall);
	kvlsm_resolve_row(all, nall, st);
	return stripe;
}

/* ------------------------------------------------------------------------
 * Deciding: may the record be appended?
 * ------------------------------------------------------------------------
 */

/* the row has a DELETE of a transaction that did not abort */
static TM_Result
check_deleted_row(KvlsmRowState *st, uint64 rowid, KvlsmModifyKind kind,
				  LockTupleMode mode, CommandId cid, TM_FailureData *tmfd,
				  TransactionId *wait_xid)
{
	TM_Result	result = TM_Ok;

	if (st->xmax_status == KVLSM_XID_CURRENT)
	{
		if (kind == KVLSM_MODIFY_LOCK && st->cmax < cid)
			result = TM_Invisible;
		else if (st->cmax >= cid)
		{
			result = TM_SelfModified;
			tmfd->cmax = st->cmax;
		}
		else
			result = TM_Invisible;
		tmfd->xmax = st->xmax;
		if (st->is_update)
			kvlsm_rowid_to_tid(st->successor, &tmfd->ctid);
		else
			kvlsm_rowid_to_tid(rowid, &tmfd->ctid);
	}
	else if (st->xmax_status == KVLSM_XID_IN_PROGRESS)
	{
		LockTupleMode held = (!st->is_update || st->keys_updated) ?
			LockTupleExclusive : LockTupleNoKeyExclusive;

		if (kind == KVLSM_MODIFY_LOCK && !kvlsm_lock_modes_conflict(mode, held))
			result = TM_Ok;
		else
		{
			result = TM_BeingModified;
			*wait_xid = st->xmax;
		}
	}
	else if (kind == KVLSM_MODIFY_LOCK && mode == LockTupleKeyShare &&
			 st->is_update && !st->keys_updated && !st->moved)
	{
		/*
		 * KEY SHARE of a row whose committed update left the key alone: the
		 * key this lock protects still exists, so lock this version
		 * (kvlsm_row_lock then locks the newer ones), as heap_lock_tuple
		 * does.
		 */
		result = TM_Ok;
	}
	else
	{
		result = (st->is_update || st->moved) ? TM_Updated : TM_Deleted;
		tmfd->xmax = st->xmax;
		tmfd->cmax = InvalidCommandId;
		if (st->moved)
			ItemPointerSetMovedPartitions(&tmfd->ctid);	/* as heap */
		else if (st->is_update)
			kvlsm_rowid_to_tid(st->successor, &tmfd->ctid);
		else
			kvlsm_rowid_to_tid(rowid, &tmfd->ctid);
	}
	return result;
}

/* a running locker whose lock conflicts with 'mode' */
static TM_Result
check_lockers(KvlsmRowState *st, LockTupleMode mode, TransactionId *wait_xid)
{
	int			i;

	for (i = 0; i < st->nlockers; i++)
	{
		if (st->lockers[i].status == KVLSM_XID_CURRENT)
			continue;
		if (kvlsm_lock_modes_conflict(mode, st->lockers[i].mode))
		{
			*wait_xid = st->lockers[i].xid;
			return TM_BeingModified;
		}
	}
	return TM_Ok;
}

/*
 * What the row's records say about changing it in command 'cid'; when a
 * running transaction is in the way, TM_BeingModified and *wait_xid.
 */
static TM_Result
check_row(KvlsmRowState *st, uint64 rowid, KvlsmModifyKind kind,
		  LockTupleMode mode, CommandId cid, TM_FailureData *tmfd,
		  TransactionId *wait_xid)
{
	TM_Result	result = TM_Ok;

	if (!st->exists || st->killed || st->xmin_status == KVLSM_XID_ABORTED)
		result = TM_Invisible;
	else if (st->xmin_status == KVLSM_XID_CURRENT && st->cmin >= cid)
		result = TM_Invisible;
	else if (st->deleted)
		result = check_deleted_row(st, rowid, kind, mode, cid, tmfd, wait_xid);
	if (result == TM_Ok)
		result = check_lockers(st, mode, wait_xid);
	return result;
}

/* a lock that would add nothing: this transaction holds as much already */
static bool
lock_already_held(KvlsmRowState *st, LockTupleMode mode)
{
	int			i;

	/* already hold an equal or stronger lock? then nothing to add */
	for (i = 0; i < st->nlockers; i++)
		if (st->lockers[i].status == KVLSM_XID_CURRENT &&
			st->lockers[i].mode >= mode)
			break;
	if (i < st->nlockers)
		return true;
	if (st->deleted && st->xmax_status == KVLSM_XID_CURRENT)
		return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Waiting, and handing the row state out
 * ------------------------------------------------------------------------
 */

/*
 * Wait for the conflicting transaction, outside the stripe lock.  Queue on
 * the heavyweight tuple lock for fairness, as heap does, but not when this
 * transaction already holds a lock on the row: an upgrade that waited
 * behind a queued waiter (who waits for us) would deadlock
 * (heap_lock_tuple's skip_tuple_lock).  *have_tuple_lock says whether the
 * tuple lock is held (the caller releases it at the end).
 */
static void
wait_for_conflict(Relation rel, uint64 rowid, KvlsmRowState *st,
				  TransactionId wait_xid, LockWaitPolicy wait_policy,
				  bool *have_tuple_lock)
{
	bool		held_by_me;
	int			j;

	held_by_me = false;
	for (j = 0; j < st->nlockers; j++)
		if (st->lockers[j].status == KVLSM_XID_CURRENT)
			held_by_me = true;
	if (!*have_tuple_lock && !held_by_me)
	{
		ItemPointerData tid;

		kvlsm_rowid_to_tid(rowid, &tid);
		if (wait_policy == LockWaitError)
		{
			if (!ConditionalLockTuple(rel, &tid, ExclusiveLock))
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("could not obtain lock on row in relation \"%s\"",
								RelationGetRelationName(rel))));
		}
		else
			LockTuple(rel, &tid, ExclusiveLock);
		*have_tuple_lock = true;
	}
	if (wait_policy == LockWaitError)
	{
		if (!ConditionalXactLockTableWait(wait_xid))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not obtain lock on row in relation \"%s\"",
							RelationGetRelationName(rel))));
	}
	else
	{
		ItemPointerData tid;

		kvlsm_rowid_to_tid(rowid, &tid);
		XactLockTableWait(wait_xid, rel, &tid, XLTW_Lock);
	}
}

/* the row state for the caller, its tuple copied into cxt */
static void
copy_row_state(KvlsmRowState *st, KvlsmRowState *st_out, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	*st_out = *st;
	if (st->tuple)
	{
		char	   *t = palloc(st->tuplen);

		memcpy(t, st->tuple, st->tuplen);
		st_out->tuple = t;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Append 'rec' (its xid and cid filled in here) to row 'rowid' if the row
 * may be changed in command 'cid', waiting for conflicting transactions as
 * wait_policy says.  A lock record is left out when this transaction holds
 * as strong a lock already.  On any result but TM_WouldBlock, *st_out (if
 * given) is the row as it was judged, its tuple copied into cxt.
 */
TM_Result
kvlsm_modify_row(Relation rel, KvlsmShared *sh, uint64 rowid, KvlsmModifyKind kind,
				 LockTupleMode mode, KvlsmRowRecord *rec, CommandId cid,
				 Snapshot crosscheck, LockWaitPolicy wait_policy,
				 TM_FailureData *tmfd, KvlsmRowState *st_out, MemoryContext cxt)
{
	KvlsmRecordSet set;
	KvlsmRecordSet memset_;
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext,
												  "kvlsm modify",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext scratch2 = AllocSetContextCreate(CurrentMemoryContext,
												   "kvlsm modify mem",
												   ALLOCSET_SMALL_SIZES);
	TM_Result	result;
	char		key[8];
	bool		have_tuple_lock = false;
	TransactionId myxid = GetCurrentTransactionId();

	kvlsm_rowid_to_key(rowid, key);
	kvlsm_recset_init(&set, scratch);
	kvlsm_recset_init(&memset_, scratch2);

	for (;;)
	{
		LWLock	   *stripe;
		KvlsmRowState st;
		TransactionId wait_xid = InvalidTransactionId;

		CHECK_FOR_INTERRUPTS();
		stripe = lock_stripe_and_read(rel, sh, rowid, key, &set, &memset_,
									  scratch2, &st);
		if (stripe == NULL)
			continue;

		result = check_row(&st, rowid, kind, mode, cid, tmfd, &wait_xid);
		if (result == TM_Ok && kind == KVLSM_MODIFY_LOCK &&
			lock_already_held(&st, mode))
			rec = NULL;
		if (result == TM_Ok && crosscheck != InvalidSnapshot &&
			!kvlsm_row_visible(&st, crosscheck))
		{
			result = TM_Updated;
			tmfd->xmax = st.deleted ? st.xmax : InvalidTransactionId;
			tmfd->cmax = InvalidCommandId;
			kvlsm_rowid_to_tid(rowid, &tmfd->ctid);
		}

		if (result == TM_Ok && rec != NULL)
		{
			rec->xid = myxid;
			rec->cid = cid;
			kvlsm_put_row_record(rel, sh, rowid, rec, NULL);
		}
		LWLockRelease(stripe);

		if (result != TM_BeingModified)
		{
			if (st_out)
				copy_row_state(&st, st_out, cxt);
			break;
		}

		if (wait_policy == LockWaitSkip)
		{
			result = TM_WouldBlock;
			break;
		}
		wait_for_conflict(rel, rowid, &st, wait_xid, wait_policy,
						  &have_tuple_lock);
	}
	if (have_tuple_lock)
	{
		ItemPointerData tid;

		kvlsm_rowid_to_tid(rowid, &tid);
		UnlockTuple(rel, &tid, ExclusiveLock);
	}
	MemoryContextDelete(scratch);
	MemoryContextDelete(scratch2);
	return result;
}
