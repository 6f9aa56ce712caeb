/*-------------------------------------------------------------------------
 *
 * rowops.c
 *	  Row operations of the kvlsm table AM: insert (plain and speculative),
 *	  delete, update and row locks, as heapam.c's heap_insert, heap_delete,
 *	  heap_update and heap_lock_tuple are for heap.  The callbacks in
 *	  tableam.c take tuples out of slots and TIDs, call these, and put the
 *	  results back into slots.
 *
 * An insert appends an INSERT record under a fresh row id; row ids are
 * never reused.  A delete, an update (a DELETE record naming the successor,
 * then the successor's INSERT) and a row lock go through the
 * check-and-append of modify.c, which holds the row's stripe lock while it
 * re-reads the row and appends; the waits happen outside it.  Every record
 * is written through the engine's put (the relation's log and WAL, lsm.c).
 *
 * TOAST: a new version is toasted here as heap would (and refused, with
 * heap's error, when heap could not store it); the old version's values
 * die with a delete or update in the same transaction, unless named
 * snapshots exist (toast_deferred below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/predicate.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/snapshots.h"
#include "kvlsm/table_internal.h"

/* ------------------------------------------------------------------------
 * The tuple a row version stores
 * ------------------------------------------------------------------------
 */

/*
 * While named snapshots exist, a DELETE or UPDATE leaves the old version's
 * TOAST values alone: they are heap rows in the TOAST table, which a
 * VACUUM there would remove with no regard for the snapshots.  The
 * compaction that drops the old version deletes them (the deferred
 * cleanup; see kvlsm_table_gc).  kvlsm_toast_delete_now() also covers a
 * snapshot being created meanwhile.
 */
static bool
toast_deferred(Relation rel)
{
	return OidIsValid(rel->rd_rel->reltoastrelid) && !kvlsm_toast_delete_now();
}

/*
 * Toast the tuple if needed; returns the tuple to store (maybe the input).
 * What remains must not be larger than heap would take (MaxHeapTupleSize,
 * with heap's error): the engine could store more (records span pages),
 * but a row heap refuses would make the table impossible to move back to
 * heap with ALTER TABLE ... SET ACCESS METHOD, or to restore into heap.
 */
HeapTuple
kvlsm_prepare_tuple(Relation rel, HeapTuple tup, HeapTuple oldtup, int options)
{
	HeapTuple	result = tup;

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_MATVIEW)
		return tup;
	if (HeapTupleHasExternal(tup) || tup->t_len > TOAST_TUPLE_THRESHOLD ||
		(oldtup != NULL && HeapTupleHasExternal(oldtup)))
	{
		if (OidIsValid(rel->rd_rel->reltoastrelid) ||
			HeapTupleHasExternal(tup) || tup->t_len > TOAST_TUPLE_THRESHOLD)
			result = heap_toast_insert_or_update(rel, tup, oldtup, options);
	}
	/* heap measures the aligned length (RelationGetBufferForTuple) */
	if (MAXALIGN(result->t_len) > MaxHeapTupleSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row is too big: size %zu, maximum size %zu",
						(Size) MAXALIGN(result->t_len), (Size) MaxHeapTupleSize)));
	return result;
}

/* ------------------------------------------------------------------------
 * Insert
 * ------------------------------------------------------------------------
 */

/*
 * Store 'tup' (toasted first) as a new row version of transaction 'xid',
 * command 'cid'; a speculative insertion when spec_token != 0.  Returns
 * its row id.  The caller's tuple is not changed.
 */
uint64
kvlsm_row_insert(Relation rel, KvlsmShared *sh, HeapTuple tup,
				 TransactionId xid, CommandId cid, int options,
				 uint32 spec_token)
{
	HeapTuple	totup;
	MinimalTuple mtup;
	KvlsmRowRecord rr;
	uint64		rowid;

	totup = kvlsm_prepare_tuple(rel, tup, NULL, options);
	mtup = minimal_tuple_from_heap_tuple(totup);

	rowid = kvlsm_alloc_rowids(rel, sh, 1);
	kvlsm_check_rowid(rel, rowid);

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);

	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_INSERT;
	rr.xid = xid;
	rr.cid = cid;
	if (spec_token != 0)
	{
		rr.flags |= KVLSM_INS_SPECULATIVE;
		rr.spec_token = spec_token;
	}
	kvlsm_put_row_record(rel, sh, rowid, &rr, mtup);
	pfree(mtup);

	if (totup != tup)
		heap_freetuple(totup);
	pgstat_count_heap_insert(rel, 1);
	return rowid;
}

/* the end of a speculative insertion: confirmed, or killed */
void
kvlsm_row_finish_speculative(Relation rel, KvlsmShared *sh, uint64 rowid,
							 bool succeeded)
{
	KvlsmRowRecord rr;

	if (succeeded)
	{
		/*
		 * Clear the token, as heap_finish_speculative does: waiters then
		 * wait for the inserting transaction instead of the insertion.
		 */
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_CONFIRM;
		rr.xid = GetCurrentTransactionId();
		kvlsm_put_row_record(rel, sh, rowid, &rr, NULL);
	}
	else
	{
		/* make the row never-existing for everyone, as heap_abort_speculative */
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_KILL;
		rr.xid = GetCurrentTransactionId();
		kvlsm_put_row_record(rel, sh, rowid, &rr, NULL);
	}
}

/* ------------------------------------------------------------------------
 * Delete
 * ------------------------------------------------------------------------
 */

/*
 * Delete the row version at 'tid' in command 'cid' (changingPart: moved to
 * another partition).  Waits for a running change of it unless !wait.
 */
TM_Result
kvlsm_row_delete(Relation rel, KvlsmShared *sh, ItemPointer tid, CommandId cid,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 bool changingPart)
{
	KvlsmRowRecord rr;
	KvlsmRowState oldst;
	TM_Result	result;

	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_DELETE;
	if (changingPart)
		rr.flags |= KVLSM_DEL_MOVED;
	if (toast_deferred(rel))
		rr.flags |= KVLSM_DEL_TOAST_DEFERRED;
	CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));
	result = kvlsm_modify_row(rel, sh, kvlsm_tid_to_rowid(tid),
							  KVLSM_MODIFY_DELETE, LockTupleExclusive, &rr, cid,
							  crosscheck, wait ? LockWaitBlock : LockWaitError,
							  tmfd, &oldst, CurrentMemoryContext);
	if (result == TM_Ok)
	{
		/*
		 * As heap_delete does: the row's out-of-line values die with it, in
		 * this transaction, so that compaction dropping the row later leaks
		 * nothing in the TOAST table.
		 */
		if (oldst.tuple != NULL && OidIsValid(rel->rd_rel->reltoastrelid) &&
			!(rr.flags & KVLSM_DEL_TOAST_DEFERRED))
		{
			HeapTuple	oldtup;

			oldst.rowid = kvlsm_tid_to_rowid(tid);
			oldtup = kvlsm_row_to_heaptuple(rel, &oldst);
			if (HeapTupleHasExternal(oldtup))
				heap_toast_delete(rel, oldtup, false);
			heap_freetuple(oldtup);
		}
		pgstat_count_heap_delete(rel);
	}
	return result;
}

/* ------------------------------------------------------------------------
 * Update
 * ------------------------------------------------------------------------
 */

/*
 * Carry the locks of running KEY SHARE lockers to the new version.  The
 * old row is read again now that the new version exists: a locker that
 * locked the old version after our delete record either finds the new
 * version itself (kvlsm_row_lock follows the chain) or is seen here.
 * Returns whether this transaction holds a lock on the old row.
 */
static bool
carry_key_share_locks(Relation rel, KvlsmShared *sh, uint64 oldrowid,
					  uint64 newrowid)
{
	KvlsmRowState oldst;
	bool		locked_by_us = false;
	int			i;

	{
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm carry locks",
												  ALLOCSET_SMALL_SIZES);
		KvlsmRecordSet set;

		kvlsm_recset_init(&set, cxt);
		kvlsm_fetch_row_records(rel, sh, oldrowid, &set);
		kvlsm_resolve_row(set.recs, set.n, &oldst);
		oldst.tuple = NULL;		/* points into cxt; not used below */
		MemoryContextDelete(cxt);
	}
	for (i = 0; i < oldst.nlockers; i++)
	{
		KvlsmRowRecord lr;

		if (oldst.lockers[i].status != KVLSM_XID_IN_PROGRESS ||
			oldst.lockers[i].mode != LockTupleKeyShare)
			continue;
		memset(&lr, 0, sizeof(lr));
		lr.kind = KVLSM_REC_LOCK;
		lr.lockmode = LockTupleKeyShare;
		lr.xid = oldst.lockers[i].xid;
		kvlsm_put_row_record(rel, sh, newrowid, &lr, NULL);
	}

	for (i = 0; i < oldst.nlockers; i++)
		if (oldst.lockers[i].status == KVLSM_XID_CURRENT)
			locked_by_us = true;
	return locked_by_us;
}

/*
 * Replace the row version at 'otid' with 'newtup' in command 'cid': a
 * DELETE record naming the successor (through the check-and-append), then
 * the successor's INSERT and the KEY SHARE locks it inherits.  'oldtup' is
 * the current version when the caller fetched it (NULL: taken from the
 * row as deleted); lockmode and key_changed say whether a key column
 * changed.  On TM_Ok, *newrowid is the successor and *locked_by_us whether
 * this transaction had locked the old version.
 */
TM_Result
kvlsm_row_update(Relation rel, KvlsmShared *sh, ItemPointer otid,
				 HeapTuple newtup, HeapTuple oldtup, CommandId cid,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode lockmode, bool key_changed, uint64 *newrowid,
				 bool *locked_by_us)
{
	KvlsmRowRecord rr;
	TM_Result	result;
	uint64		oldrowid = kvlsm_tid_to_rowid(otid);
	HeapTuple	totup;
	MinimalTuple mtup;
	KvlsmRowState oldst;
	KvlsmRowRecord ins;

	*newrowid = kvlsm_alloc_rowids(rel, sh, 1);
	kvlsm_check_rowid(rel, *newrowid);

	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_DELETE;
	rr.flags = KVLSM_DEL_UPDATE | (key_changed ? KVLSM_DEL_KEYS_UPDATED : 0);
	if (toast_deferred(rel))
		rr.flags |= KVLSM_DEL_TOAST_DEFERRED;
	rr.successor = *newrowid;
	CheckForSerializableConflictIn(rel, otid, ItemPointerGetBlockNumber(otid));
	result = kvlsm_modify_row(rel, sh, oldrowid, KVLSM_MODIFY_DELETE, lockmode,
							  &rr, cid, crosscheck,
							  wait ? LockWaitBlock : LockWaitError, tmfd,
							  &oldst, CurrentMemoryContext);
	if (result != TM_Ok)
		return result;

	if (oldtup == NULL && oldst.tuple != NULL)
	{
		oldst.rowid = oldrowid;
		oldtup = kvlsm_row_to_heaptuple(rel, &oldst);
	}

	/*
	 * With deferred cleanup the new version gets TOAST values of its own
	 * (none shared with the old one, none of the old one's deleted), so the
	 * compaction that drops the old version can delete all of its values.
	 */
	totup = kvlsm_prepare_tuple(rel, newtup,
								(rr.flags & KVLSM_DEL_TOAST_DEFERRED) ? NULL : oldtup, 0);
	mtup = minimal_tuple_from_heap_tuple(totup);
	memset(&ins, 0, sizeof(ins));
	ins.kind = KVLSM_REC_INSERT;
	ins.xid = GetCurrentTransactionId();
	ins.cid = cid;
	kvlsm_put_row_record(rel, sh, *newrowid, &ins, mtup);
	pfree(mtup);

	*locked_by_us = carry_key_share_locks(rel, sh, oldrowid, *newrowid);

	if (totup != newtup)
		heap_freetuple(totup);
	pgstat_count_heap_update(rel, false);
	return TM_Ok;
}

/* ------------------------------------------------------------------------
 * Row locks
 * ------------------------------------------------------------------------
 */

/*
 * Does a lock taken on this version have to hold on its newer versions too?
 * When it does not conflict with a running update of the row (KEY SHARE
 * against a non-key update), or it is KEY SHARE and the committed update
 * kept the key.
 */
static bool
lock_must_follow(KvlsmRowState *st, LockTupleMode mode)
{
	return st->deleted && st->is_update && !st->moved &&
		(st->xmax_status == KVLSM_XID_IN_PROGRESS ||
		 (st->xmax_status == KVLSM_XID_COMMITTED && mode == LockTupleKeyShare));
}

/* one LOCK record for the version 'rowid', through the check-and-append */
static TM_Result
lock_one_version(Relation rel, KvlsmShared *sh, uint64 rowid, CommandId cid,
				 LockTupleMode mode, LockWaitPolicy wait_policy,
				 TM_FailureData *tmfd, KvlsmRowState *st)
{
	KvlsmRowRecord rr;

	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_LOCK;
	rr.lockmode = mode;
	return kvlsm_modify_row(rel, sh, rowid, KVLSM_MODIFY_LOCK, mode, &rr, cid,
							InvalidSnapshot, wait_policy, tmfd, st,
							CurrentMemoryContext);
}

/*
 * Lock the version at *cur; with TUPLE_LOCK_FLAG_FIND_LAST_VERSION follow
 * its update chain to the newest version and lock that (*cur is then the
 * version locked, tmfd->traversed says whether the chain was followed).
 */
static TM_Result
lock_newest_version(Relation rel, KvlsmShared *sh, ItemPointer cur,
					CommandId cid, LockTupleMode mode,
					LockWaitPolicy wait_policy, uint8 flags,
					TM_FailureData *tmfd, KvlsmRowState *st)
{
	TM_Result	result;

	for (;;)
	{
		result = lock_one_version(rel, sh, kvlsm_tid_to_rowid(cur), cid, mode,
								  wait_policy, tmfd, st);
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			ItemPointerIndicatesMovedPartitions(&tmfd->ctid))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			!ItemPointerEquals(&tmfd->ctid, cur))
		{
			/* follow the update chain to the newest version */
			*cur = tmfd->ctid;
			tmfd->traversed = true;
			continue;
		}
		if (tmfd->traversed && st->exists && !st->killed &&
			(result == TM_SelfModified || result == TM_Invisible))
		{
			/*
			 * The chain, followed from a version another transaction
			 * updated, reached versions of our own.  As heapam_tuple_lock
			 * (which fetches them with SnapshotDirty): a version this
			 * transaction updated is followed whatever its cmax, one it
			 * deleted ends the chain, and a live version that a later
			 * command of ours inserted is reported as TM_SelfModified with
			 * its cmin, so that the executor can tell "changed by this
			 * very command" (ignored) from "changed by a command it
			 * triggered" (an error).
			 */
			if (st->deleted && st->xmax_status == KVLSM_XID_CURRENT)
			{
				if (st->is_update && !st->moved)
				{
					kvlsm_rowid_to_tid(st->successor, cur);
					continue;
				}
				result = TM_Deleted;
				tmfd->xmax = st->xmax;
				tmfd->cmax = InvalidCommandId;
				tmfd->ctid = *cur;
				break;
			}
			if (!st->deleted && st->xmin_status == KVLSM_XID_CURRENT &&
				st->cmin >= cid)
			{
				result = TM_SelfModified;
				tmfd->xmax = st->xmin;
				tmfd->cmax = st->cmin;
				tmfd->ctid = *cur;
				break;
			}
		}
		break;
	}
	return result;
}

/*
 * A lock that does not conflict with a running update of the row (KEY
 * SHARE against a non-key update) must hold on every newer version too, as
 * heap_lock_updated_tuple does: the updater already carried forward the
 * locks that existed when it updated, not this one.  Without this a
 * foreign key check could let the referenced row's new version be deleted.
 *
 * Locks the versions from 'next' on.  Returns TM_Ok, or the failure of a
 * newer version that lost the key or the row (in *tmfd).  *restart_at is
 * set, with *restart true, when a newer version changed the key and the
 * lock is to be taken on the newest version instead.
 */
static TM_Result
lock_newer_versions(Relation rel, KvlsmShared *sh, uint64 next, CommandId cid,
					LockTupleMode mode, LockWaitPolicy wait_policy,
					uint8 flags, TM_FailureData *tmfd,
					ItemPointer restart_at, bool *restart)
{
	int			guard = 0;

	*restart = false;
	for (;;)
	{
		KvlsmRowState nst;
		TM_FailureData ntmfd;
		TM_Result	nres;

		CHECK_FOR_INTERRUPTS();
		nres = lock_one_version(rel, sh, next, cid, mode, wait_policy,
								&ntmfd, &nst);
		if (nres == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
		{
			/* a newer version changed the key: lock the newest, as heap */
			if (ItemPointerIndicatesMovedPartitions(&ntmfd.ctid))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
			*restart_at = ntmfd.ctid;
			tmfd->traversed = true;
			*restart = true;
			return TM_Ok;
		}
		if (nres == TM_Updated || nres == TM_Deleted)
		{
			/* a newer version lost the key or the row: the lock fails */
			*tmfd = ntmfd;
			return nres;
		}
		if (nres != TM_Ok || !lock_must_follow(&nst, mode) || ++guard > 1000)
			break;
		next = nst.successor;
	}
	return TM_Ok;
}

/*
 * Lock the row version at *tid in 'mode' for command 'cid', as
 * heap_lock_tuple (with heapam_tuple_lock's chain following) does.  *tid
 * becomes the version locked and *st its state, its tuple palloc'd in the
 * current context.
 */
TM_Result
kvlsm_row_lock(Relation rel, KvlsmShared *sh, ItemPointer tid, CommandId cid,
			   LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
			   TM_FailureData *tmfd, KvlsmRowState *st)
{
	TM_Result	result;
	ItemPointerData cur = *tid;
	bool		restart;

	tmfd->traversed = false;
	do
	{
		result = lock_newest_version(rel, sh, &cur, cid, mode, wait_policy,
									 flags, tmfd, st);
		/* as heap does, tell the caller which version was locked */
		*tid = cur;

		restart = false;
		if (result == TM_Ok && lock_must_follow(st, mode))
			result = lock_newer_versions(rel, sh, st->successor, cid, mode,
										 wait_policy, flags, tmfd, &cur,
										 &restart);
	} while (restart);

	if (result == TM_Invisible && st->exists && st->xmin_status == KVLSM_XID_CURRENT)
	{
		/* inserted by this command: as heap, report it as invisible */
		tmfd->xmax = st->xmin;
		tmfd->cmax = st->cmin;
	}
	return result;
}
