/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Resolve the records of one row id into a row state, and decide its
 *	  visibility under every kind of snapshot PostgreSQL hands a table AM.
 *
 * The rules mirror heapam_visibility.c, with the row's xmin/cmin taken
 * from its INSERT record and xmax/cmax from its newest DELETE whose
 * transaction did not abort.  Since insert and delete are separate
 * records, no combo command id is needed.  Status checks follow heap's
 * order (current transaction, then in progress, then the commit log), so a
 * transaction that commits between two checks is never taken for aborted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtxlog.h"
#include "access/xloginsert.h"
#include "access/transam.h"

#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "access/xact.h"
#include "storage/predicate.h"
#include "utils/backend_status.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"

#include "kvlsm/table.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/compaction.h"

int
kvlsm_xid_status(TransactionId xid)
{
	if (!TransactionIdIsNormal(xid))
		return (xid == FrozenTransactionId || xid == BootstrapTransactionId) ?
			KVLSM_XID_COMMITTED : KVLSM_XID_ABORTED;
	if (TransactionIdIsCurrentTransactionId(xid))
		return KVLSM_XID_CURRENT;
	if (TransactionIdIsInProgress(xid))
		return KVLSM_XID_IN_PROGRESS;
	if (TransactionIdDidCommit(xid))
		return KVLSM_XID_COMMITTED;
	return KVLSM_XID_ABORTED;
}

/*
 * Resolve records (one row id, sorted by sequence descending).  The hint
 * byte of a memtable record caches a final status (committed/aborted).
 */
void
kvlsm_resolve_row(const KvlsmRecord *recs, int n, KvlsmRowState *st)
{
	int			i;

	memset(st, 0, sizeof(*st));
	if (n > 0)
		st->rowid = kvlsm_key_to_rowid(recs[0].key);
	for (i = 0; i < n; i++)
	{
		KvlsmRowRecord rr;
		const char *body;
		uint32		bodylen;
		int			status;

		kvlsm_read_row_record(st->rowid, recs[i].val, recs[i].vallen, &rr, &body, &bodylen);
		status = recs[i].hint ? recs[i].hint : kvlsm_xid_status(rr.xid);

		switch (rr.kind)
		{
			case KVLSM_REC_INSERT:
				st->exists = true;
				st->xmin = rr.xid;
				st->cmin = rr.cid;
				st->xmin_status = status;
				st->spec_token = ((rr.flags & KVLSM_INS_SPECULATIVE) && !st->confirmed) ?
					rr.spec_token : 0;
				st->expires = rr.expires;
				st->tuple = body;
				st->tuplen = bodylen;
				/* everything else about this row is newer: done */
				return;
			case KVLSM_REC_DELETE:
				if (!st->deleted && status != KVLSM_XID_ABORTED)
				{
					st->deleted = true;
					st->xmax = rr.xid;
					st->cmax = rr.cid;
					st->xmax_status = status;
					st->is_update = (rr.flags & KVLSM_DEL_UPDATE) != 0;
					st->keys_updated = (rr.flags & KVLSM_DEL_KEYS_UPDATED) != 0;
					st->moved = (rr.flags & KVLSM_DEL_MOVED) != 0;
					st->successor = rr.successor;
				}
				break;
			case KVLSM_REC_LOCK:
				if (status == KVLSM_XID_CURRENT || status == KVLSM_XID_IN_PROGRESS)
				{
					if (st->nlockers < KVLSM_MAX_LOCKERS)
					{
						st->lockers[st->nlockers].xid = rr.xid;
						st->lockers[st->nlockers].mode = rr.lockmode;
						st->lockers[st->nlockers].status = status;
						st->nlockers++;
					}
				}
				break;
			case KVLSM_REC_KILL:
				st->killed = true;
				break;
			case KVLSM_REC_CONFIRM:
				st->confirmed = true;
				break;
			case KVLSM_REC_PURGE:
				st->purged = true;
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm row %llu has a record of unknown kind %d",
								(unsigned long long) st->rowid, rr.kind)));
		}
	}
}

/* heap's lock-strength conflict table (README.tuplock) */
bool
kvlsm_lock_modes_conflict(LockTupleMode a, LockTupleMode b)
{
	static const bool conflicts[4][4] = {
		/* KeyShare, Share, NoKeyExclusive, Exclusive */
		{false, false, false, true},
		{false, false, true, true},
		{false, true, true, true},
		{true, true, true, true}
	};

	return conflicts[a][b];
}

static bool
visible_mvcc(KvlsmRowState *st, Snapshot snapshot)
{
	if (st->xmin_status == KVLSM_XID_CURRENT)
	{
		if (st->cmin >= snapshot->curcid)
			return false;
	}
	else if (XidInMVCCSnapshot(st->xmin, snapshot))
		return false;
	else if (st->xmin_status != KVLSM_XID_COMMITTED &&
			 !TransactionIdDidCommit(st->xmin))
		return false;

	if (!st->deleted)
		return true;
	if (st->xmax_status == KVLSM_XID_CURRENT)
		return st->cmax >= snapshot->curcid;
	if (XidInMVCCSnapshot(st->xmax, snapshot))
		return true;
	if (st->xmax_status == KVLSM_XID_COMMITTED || TransactionIdDidCommit(st->xmax))
		return false;
	return true;
}

bool
kvlsm_row_visible(KvlsmRowState *st, Snapshot snapshot)
{
	if (!st->exists || st->killed)
		return false;

	/*
	 * TTL: a row past its end of life is gone for every snapshot taken
	 * after it, judged at the snapshot's time: the transaction's start for
	 * REPEATABLE READ and SERIALIZABLE (so they stay repeatable), the
	 * statement's otherwise, and also for dirty snapshots (unique checks).
	 */
	if (st->expires != 0 && snapshot->snapshot_type != SNAPSHOT_ANY)
	{
		TimestampTz at = (snapshot->snapshot_type == SNAPSHOT_MVCC &&
						  IsolationUsesXactSnapshot()) ?
			GetCurrentTransactionStartTimestamp() : GetCurrentStatementStartTimestamp();

		/* a named snapshot judges TTL at its own time */
		if (kvlsm_snapshot_ttl_time(snapshot) != 0)
			at = kvlsm_snapshot_ttl_time(snapshot);

		if (st->expires <= at)
			return false;
	}

	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return visible_mvcc(st, snapshot);

		case SNAPSHOT_ANY:
			return true;

		case SNAPSHOT_SELF:
		case SNAPSHOT_TOAST:
			if (st->xmin_status == KVLSM_XID_ABORTED ||
				st->xmin_status == KVLSM_XID_IN_PROGRESS)
				return false;
			if (!st->deleted)
				return true;
			if (st->xmax_status == KVLSM_XID_IN_PROGRESS)
				return true;
			return false;

		case SNAPSHOT_DIRTY:
			snapshot->xmin = snapshot->xmax = InvalidTransactionId;
			snapshot->speculativeToken = 0;
			if (st->xmin_status == KVLSM_XID_ABORTED)
				return false;
			if (st->xmin_status == KVLSM_XID_IN_PROGRESS)
			{
				snapshot->xmin = st->xmin;
				snapshot->speculativeToken = st->spec_token;
				if (st->deleted && st->xmax == st->xmin)
					return false;
				return true;
			}
			if (!st->deleted)
				return true;
			if (st->xmax_status == KVLSM_XID_CURRENT)
				return false;
			if (st->xmax_status == KVLSM_XID_IN_PROGRESS)
			{
				snapshot->xmax = st->xmax;
				return true;
			}
			return false;

		case SNAPSHOT_NON_VACUUMABLE:
			if (st->xmin_status == KVLSM_XID_ABORTED)
				return false;
			if (!st->deleted || st->xmax_status != KVLSM_XID_COMMITTED)
				return true;
			return !GlobalVisTestIsRemovableXid(snapshot->vistest, st->xmax);

		case SNAPSHOT_HISTORIC_MVCC:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("logical decoding of kvlsm tables is not supported")));
	}
	return false;
}

/*
 * SERIALIZABLE: report a read of a row that a concurrent transaction
 * inserted or deleted, as HeapCheckForSerializableConflictOut does for
 * heap tuples.  Called for every row a scan examines, visible or not.
 */
void
kvlsm_check_serializable_out(Relation rel, KvlsmRowState *st, bool visible,
							 Snapshot snapshot)
{
	TransactionId xid;

	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;
	if (!st->exists || st->killed || st->xmin_status == KVLSM_XID_ABORTED)
		return;
	if (st->deleted)
	{
		xid = visible ? st->xmax : st->xmin;
		if (TransactionIdPrecedes(xid, TransactionXmin))
			return;
	}
	else
	{
		if (visible)
			return;
		xid = st->xmin;
	}
	if (TransactionIdEquals(xid, GetTopTransactionIdIfAny()))
		return;
	if (TransactionIdPrecedes(xid, TransactionXmin))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

/*
 * Is 'xid' finished, and did it commit?  Only xids older than the horizon
 * are judged; for a newer one *finished is false.  A finished xid that did
 * not commit aborted (or crashed).
 */
static bool
xid_committed_before(TransactionId xid, TransactionId horizon, bool *finished)
{
	if (!TransactionIdIsNormal(xid))
	{
		*finished = true;
		return xid != InvalidTransactionId;
	}
	*finished = TransactionIdPrecedes(xid, horizon);
	return *finished && TransactionIdDidCommit(xid);
}

/*
 * Freezing (what heap_prepare_freeze_tuple does for heap): a kept record of
 * a committed transaction older than the freeze limit gets
 * FrozenTransactionId, so its status is never looked up in the commit log
 * again and relfrozenxid can move past it.  Every other normal xid left in
 * the output is reported, as it holds relfrozenxid back.
 */
/* a standby snapshot that has not seen 'xid' finish needs what we drop */
static void
note_removed(KvlsmGcContext *ctx, TransactionId xid)
{
	if (TransactionIdIsNormal(xid) &&
		(!TransactionIdIsValid(ctx->latest_removed) ||
		 TransactionIdFollows(xid, ctx->latest_removed)))
		ctx->latest_removed = xid;
}

static void
freeze_row(KvlsmGcContext *ctx, KvlsmRecord *recs, int n, const bool *keep)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		KvlsmRowRecord rr;
		const char *body;
		uint32		bodylen;
		bool		finished;

		if (!keep[i])
			continue;
		if (!kvlsm_decode_row_record(recs[i].val, recs[i].vallen, &rr, &body, &bodylen))
			continue;			/* kvlsm_table_gc kept it for readers to report */
		if (!TransactionIdIsNormal(rr.xid))
			continue;
		if (TransactionIdIsValid(ctx->freeze_limit) &&
			TransactionIdPrecedes(rr.xid, ctx->freeze_limit) &&
			xid_committed_before(rr.xid, ctx->horizon, &finished))
		{
			note_removed(ctx, rr.xid);
			kvlsm_row_record_set_xid((char *) recs[i].val, FrozenTransactionId);
			continue;
		}
		if (!TransactionIdIsValid(ctx->oldest_xid) ||
			TransactionIdPrecedes(rr.xid, ctx->oldest_xid))
			ctx->oldest_xid = rr.xid;
	}
}

static bool
row_has_external(const KvlsmRecord *ins)
{
	KvlsmRowRecord rr;
	const char *body;
	uint32		bodylen;

	return kvlsm_decode_row_record(ins->val, ins->vallen, &rr, &body, &bodylen) &&
		body != NULL && kvlsm_body_has_external(body, bodylen);
}

typedef struct ExpiredToast
{
	MemoryContext cxt;
	List	   *tuples;			/* MinimalTuples of expired rows */
} ExpiredToast;

static void
delete_expired_toast(KvlsmGcContext *ctx)
{
	ExpiredToast *et = ctx->filter_state;
	ListCell   *lc;

	foreach(lc, et->tuples)
	{
		HeapTuple	tup = heap_tuple_from_minimal_tuple((MinimalTuple) lfirst(lc));

		heap_toast_delete(ctx->rel, tup, false);
		heap_freetuple(tup);
	}
	MemoryContextDelete(et->cxt);
	ctx->filter_state = NULL;
	ctx->after_install = NULL;
}

static void
remember_expired_toast(KvlsmGcContext *ctx, const KvlsmRecord *ins)
{
	ExpiredToast *et = ctx->filter_state;
	MemoryContext old;
	KvlsmRowRecord rr;
	const char *body;
	uint32		bodylen;

	/* row_has_external() said yes: the record decodes and has a tuple */
	if (!kvlsm_decode_row_record(ins->val, ins->vallen, &rr, &body, &bodylen) || body == NULL)
		return;

	if (et == NULL)
	{
		/* freed with the transaction if the compaction fails */
		MemoryContext cxt = AllocSetContextCreate(CurTransactionContext,
												  "kvlsm expired TOAST values",
												  ALLOCSET_DEFAULT_SIZES);

		et = MemoryContextAllocZero(cxt, sizeof(ExpiredToast));
		et->cxt = cxt;
		ctx->filter_state = et;
		ctx->after_install = delete_expired_toast;
	}
	old = MemoryContextSwitchTo(et->cxt);
	et->tuples = lappend(et->tuples, kvlsm_body_to_minimal_tuple(body, bodylen));
	MemoryContextSwitchTo(old);
}

/*
 * Compaction's garbage collection for the records of one row id (newest
 * first).  The row's INSERT is its oldest record, so when the INSERT is
 * among the inputs nothing older exists anywhere.
 *
 * - A row dead to every snapshot (insert aborted or killed, or a delete
 *   committed before the horizon) is dropped whole once VACUUM has removed
 *   its index entries (its PURGE record is among the inputs), or at once if
 *   the table has no index.  Until then index entries may point at it, and
 *   its records are what lets VACUUM find it.
 * - Records of a row that lives on: deletes by aborted transactions and
 *   locks of transactions that have ended are dropped; they decide nothing
 *   any more.
 * - Records without their INSERT at the bottom (no older table overlaps)
 *   belong to a row already dropped: they go too.
 */
void
kvlsm_table_gc(KvlsmGcContext *ctx, KvlsmRecord *recs, int n, bool *keep)
{
	int			ins = -1;
	bool		purged = false;
	bool		dead = false;
	bool		expired = false;
	bool		toast_left = false;	/* a DELETE deferred the TOAST cleanup */
	TransactionId deleter = InvalidTransactionId;
	bool		finished;
	KvlsmRowRecord local[8];
	KvlsmRowRecord *rrs = n <= lengthof(local) ? local : palloc(sizeof(KvlsmRowRecord) * n);
	int			i;

	for (i = 0; i < n; i++)
	{
		const char *body;
		uint32		bodylen;

		if (!kvlsm_decode_row_record(recs[i].val, recs[i].vallen, &rrs[i], &body, &bodylen))
			goto done;			/* leave it for kvlsm_resolve_row to report */
		if (rrs[i].kind == KVLSM_REC_INSERT)
			ins = i;
		else if (rrs[i].kind == KVLSM_REC_PURGE)
			purged = true;
		else if (rrs[i].kind == KVLSM_REC_KILL)
			dead = true;
	}
	if (ins < 0)
	{
		if (ctx->bottommost)
			for (i = 0; i < n; i++)
				keep[i] = false;
		goto done;
	}

	{
		KvlsmRowRecord rr = rrs[ins];

		if (!xid_committed_before(rr.xid, ctx->horizon, &finished) && finished)
			dead = true;
		/* past its TTL for every running transaction */
		if (rr.expires != 0 && finished)
		{
			if (ctx->ttl_horizon == 0)
				ctx->ttl_horizon = kvlsm_ttl_horizon();
			if (rr.expires <= ctx->ttl_horizon)
				dead = expired = true;
		}
	}
	for (i = 0; i < ins; i++)
	{
		KvlsmRowRecord rr = rrs[i];
		bool		committed;

		if (rr.kind != KVLSM_REC_DELETE && rr.kind != KVLSM_REC_LOCK)
			continue;
		committed = xid_committed_before(rr.xid, ctx->horizon, &finished);
		if (!finished)
			continue;
		if (rr.kind == KVLSM_REC_DELETE && committed)
		{
			dead = true;
			deleter = rr.xid;
			if (rr.flags & KVLSM_DEL_TOAST_DEFERRED)
				toast_left = true;
		}
		else
			keep[i] = false;	/* aborted delete, or an ended lock */
	}
	if (dead && (purged || !ctx->has_indexes))
	{
		/*
		 * A row that expired without a DELETE, or whose DELETE left its
		 * out-of-line values for later because named snapshots existed,
		 * still owns them (otherwise a DELETE deletes them, as heap_delete
		 * does): they are deleted once the compaction is installed, in the
		 * compacting transaction.  VACUUM must not take an xid, so its
		 * compactions keep such rows for a later one.
		 */
		if (((!TransactionIdIsValid(deleter) && expired) || toast_left) &&
			row_has_external(&recs[ins]))
		{
			if (MyProc->statusFlags & PROC_IN_VACUUM)
				goto keep_row;
			remember_expired_toast(ctx, &recs[ins]);
		}
		for (i = 0; i < n; i++)
			keep[i] = false;
		if (expired && !TransactionIdIsValid(deleter))
		{
			ctx->ttl_rows_dropped++;
			ctx->ttl_max_expired = Max(ctx->ttl_max_expired, rrs[ins].expires);
		}
		note_removed(ctx, deleter);
		goto done;
	}
keep_row:
	freeze_row(ctx, recs, n, keep);
done:
	if (rrs != local)
		pfree(rrs);
}

/*
 * A time before which expired rows are invisible to every running
 * transaction and every named snapshot: the start of the oldest
 * transaction (snapshots are judged at their transaction's or statement's
 * start, neither earlier), or the creation of the oldest named snapshot.
 * Snapshots known by their xmin alone (hot-standby feedback, replication
 * slots) count from the time the next xid was still below that xmin; if
 * no sample goes back that far, nothing expires.
 */
TimestampTz
kvlsm_ttl_horizon(void)
{
	TimestampTz horizon = GetCurrentTimestamp();
	int			n = pgstat_fetch_stat_numbackends();
	int			i;
	TimestampTz pin_time;
	TransactionId oldest = GetOldestNonRemovableTransactionId(NULL);

	(void) kvlsm_snapshot_pin(&pin_time);
	if (pin_time != 0 && pin_time < horizon)
		horizon = pin_time;

	if (TransactionIdIsNormal(oldest) && TransactionIdPrecedes(oldest, ReadNextTransactionId()))
	{
		TimestampTz t = kvlsm_time_before_xid(oldest);

		if (t < horizon)
			horizon = t;
	}

	for (i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *lbe = pgstat_fetch_stat_local_beentry(i);

		if (lbe == NULL)
			continue;
		if (lbe->backendStatus.st_xact_start_timestamp != 0 &&
			lbe->backendStatus.st_xact_start_timestamp < horizon)
			horizon = lbe->backendStatus.st_xact_start_timestamp;
	}
	return horizon;
}

/*
 * Hot-standby safety for garbage collection (DESIGN section 8).  Generic
 * WAL redo raises no recovery conflicts, so before a compaction install or
 * a VACUUM index cleanup makes row versions disappear on a standby, log a
 * record whose redo does exactly what heap's pruning does: cancel standby
 * queries whose snapshot could still need versions removed by transactions
 * up to 'latest_removed'.  nbtree's REUSE_PAGE record is that record: its
 * redo only calls ResolveRecoveryConflictWithSnapshotFullXid() for the
 * relation given, touches no page, and needs no redo of kvlsm's own, so
 * max_standby_streaming_delay, hot_standby_feedback and
 * pg_stat_database_conflicts work as they do for heap.
 */
void
kvlsm_log_recovery_conflict(Relation rel, TransactionId latest_removed)
{
	xl_btree_reuse_page xlrec;
	FullTransactionId next;
	uint32		epoch;

	if (!TransactionIdIsNormal(latest_removed) || !RelationNeedsWAL(rel) ||
		!XLogStandbyInfoActive())
		return;
	next = ReadNextFullTransactionId();
	epoch = EpochFromFullTransactionId(next);
	if (TransactionIdFollows(latest_removed, XidFromFullTransactionId(next)))
		epoch--;				/* from before the last wraparound of the counter */
	xlrec.node = rel->rd_node;
	xlrec.block = KVLSM_METAPAGE_BLKNO;
	xlrec.latestRemovedFullXid = FullTransactionIdFromEpochAndXid(epoch, latest_removed);
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, SizeOfBtreeReusePage);
	XLogInsert(RM_BTREE_ID, XLOG_BTREE_REUSE_PAGE);
}
