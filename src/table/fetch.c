/*-------------------------------------------------------------------------
 *
 * fetch.c
 *	  Single rows of a kvlsm table by TID: index fetches, fetching a row
 *	  version, following an update chain to its latest version, checking
 *	  a slot's row against a snapshot, and telling an index which of its
 *	  entries point to rows dead to everyone.
 *
 * Each read is one point lookup of a row id's records (rowrecord.c),
 * resolved and judged by visibility.c; no lock is held after it returns.
 * Rows read for a snapshot are predicate-locked as heap locks the tuples it
 * returns, and checked for serializable conflicts out, unless a named
 * snapshot took the scan's place (kvlsm_scan_snapshot).
 *
 * The callbacks are in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "kvlsm/snapshots.h"
#include "kvlsm/table_internal.h"

/* ------------------------------------------------------------------------
 * Index fetches
 * ------------------------------------------------------------------------
 */

typedef struct KvlsmIndexFetchData
{
	IndexFetchTableData base;
	KvlsmShared *sh;
	MemoryContext cxt;
	KvlsmRecordSet set;

	/*
	 * The snapshot rows are judged by, chosen at the first fetch with a
	 * given snapshot (a named snapshot may take its place): a scan begun
	 * inside a row-level security policy's current-data scope keeps
	 * current data, and one begun before kvlsm_snapshot_use() does not
	 * switch to history halfway.
	 */
	Snapshot	vis_for;
	Snapshot	vis_snapshot;
} KvlsmIndexFetchData;

IndexFetchTableData *
kvlsm_index_fetch_begin(Relation rel)
{
	KvlsmIndexFetchData *f = palloc0(sizeof(KvlsmIndexFetchData));

	f->base.rel = rel;
	f->sh = kvlsm_attach(rel);
	f->cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm index fetch",
								   ALLOCSET_SMALL_SIZES);
	kvlsm_recset_init(&f->set, f->cxt);
	return &f->base;
}

void
kvlsm_index_fetch_reset(IndexFetchTableData *scan)
{
}

void
kvlsm_index_fetch_end(IndexFetchTableData *scan)
{
	KvlsmIndexFetchData *f = (KvlsmIndexFetchData *) scan;

	MemoryContextDelete(f->cxt);
	pfree(f);
}

bool
kvlsm_index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid,
						Snapshot snapshot, TupleTableSlot *slot,
						bool *call_again, bool *all_dead)
{
	KvlsmIndexFetchData *f = (KvlsmIndexFetchData *) scan;
	KvlsmRowState st;
	uint64		rowid = kvlsm_tid_to_rowid(tid);
	bool		visible;
	Snapshot	vis_snapshot;

	*call_again = false;
	if (all_dead)
		*all_dead = false;
	if (f->vis_for != snapshot)
	{
		f->vis_snapshot = kvlsm_scan_snapshot(scan->rel, snapshot);
		f->vis_for = snapshot;
	}
	kvlsm_fetch_row_records(scan->rel, f->sh, rowid, &f->set);
	kvlsm_resolve_row(f->set.recs, f->set.n, &st);
	if (!st.exists || st.killed || st.xmin_status == KVLSM_XID_ABORTED)
	{
		/* a row that never existed for anyone: the index entry is dead */
		if (all_dead && (!st.exists || st.killed || st.xmin_status == KVLSM_XID_ABORTED))
			*all_dead = true;
		if (snapshot->snapshot_type == SNAPSHOT_DIRTY)
		{
			snapshot->xmin = snapshot->xmax = InvalidTransactionId;
			snapshot->speculativeToken = 0;
		}
		return false;
	}
	vis_snapshot = f->vis_snapshot;
	visible = kvlsm_row_visible(&st, vis_snapshot);
	if (vis_snapshot == snapshot)
		kvlsm_check_serializable_out(scan->rel, &st, visible, snapshot);
	if (visible)
	{
		MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);

		kvlsm_store_row(scan->rel, &st, slot);
		MemoryContextSwitchTo(old);
		if (IsMVCCSnapshot(snapshot) && vis_snapshot == snapshot)
			PredicateLockTID(scan->rel, tid, snapshot, st.xmin);
	}
	else if (all_dead && st.deleted && st.xmax_status == KVLSM_XID_COMMITTED)
	{
		GlobalVisState *vis = GlobalVisTestFor(scan->rel);

		if (kvlsm_xid_removable(vis, st.xmax))
			*all_dead = true;
	}
	return visible;
}

/* ------------------------------------------------------------------------
 * Non-modifying row operations
 * ------------------------------------------------------------------------
 */

bool
kvlsm_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
						TupleTableSlot *slot)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm fetch",
											  ALLOCSET_SMALL_SIZES);
	KvlsmRecordSet set;
	KvlsmRowState st;
	bool		found = false;
	Snapshot	vis_snapshot;

	kvlsm_recset_init(&set, cxt);
	kvlsm_fetch_row_records(rel, sh, kvlsm_tid_to_rowid(tid), &set);
	kvlsm_resolve_row(set.recs, set.n, &st);
	vis_snapshot = kvlsm_scan_snapshot(rel, snapshot);
	found = kvlsm_row_visible(&st, vis_snapshot);
	if (vis_snapshot == snapshot)
		kvlsm_check_serializable_out(rel, &st, found, snapshot);
	if (found && IsMVCCSnapshot(snapshot) && vis_snapshot == snapshot)
		PredicateLockTID(rel, tid, snapshot, st.xmin);
	if (found)
	{
		MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);

		kvlsm_store_row(rel, &st, slot);
		MemoryContextSwitchTo(old);
	}
	MemoryContextDelete(cxt);
	return found;
}

void
kvlsm_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	Relation	rel = sscan->rs_rd;
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm latest tid",
											  ALLOCSET_SMALL_SIZES);
	KvlsmRecordSet set;
	ItemPointerData cur = *tid;
	int			guard = 0;

	kvlsm_recset_init(&set, cxt);
	for (;;)
	{
		KvlsmRowState st;

		CHECK_FOR_INTERRUPTS();
		kvlsm_fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&cur), &set);
		kvlsm_resolve_row(set.recs, set.n, &st);
		if (!st.exists)
			break;
		if (kvlsm_row_visible(&st, ((KvlsmScanDesc) sscan)->vis_snapshot))
			*tid = cur;
		if (!st.deleted || !st.is_update || st.moved || st.xmax_status == KVLSM_XID_ABORTED ||
			++guard > 100000)
			break;
		kvlsm_rowid_to_tid(st.successor, &cur);
	}
	MemoryContextDelete(cxt);
}

bool
kvlsm_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm satisfies",
											  ALLOCSET_SMALL_SIZES);
	KvlsmRecordSet set;
	KvlsmRowState st;
	bool		res;

	kvlsm_recset_init(&set, cxt);
	kvlsm_fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&slot->tts_tid), &set);
	kvlsm_resolve_row(set.recs, set.n, &st);
	res = kvlsm_row_visible(&st, kvlsm_scan_snapshot(rel, snapshot));
	MemoryContextDelete(cxt);
	return res;
}

/*
 * btree's simple and bottom-up deletion ask which index entries point to
 * rows dead to everyone.  A row id that does not exist, or whose delete is
 * removable for everyone, qualifies.
 */
TransactionId
kvlsm_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm index delete",
											  ALLOCSET_SMALL_SIZES);
	KvlsmRecordSet set;
	GlobalVisState *vis = GlobalVisTestFor(rel);
	TransactionId latest = InvalidTransactionId;
	int			i;
	int			ndeletable_prefix = 0;

	kvlsm_recset_init(&set, cxt);
	for (i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *d = &delstate->deltids[i];
		TM_IndexStatus *s = &delstate->status[d->id];
		KvlsmRowState st;
		bool		dead = false;

		if (!s->promising && delstate->bottomup)
			continue;
		kvlsm_fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&d->tid), &set);
		kvlsm_resolve_row(set.recs, set.n, &st);
		if (!st.exists || st.killed || st.xmin_status == KVLSM_XID_ABORTED)
			dead = true;
		else if (st.deleted && st.xmax_status == KVLSM_XID_COMMITTED &&
				 kvlsm_xid_removable(vis, st.xmax))
		{
			dead = true;
			if (!TransactionIdIsValid(latest) || TransactionIdPrecedes(latest, st.xmax))
				latest = st.xmax;
		}
		if (dead)
		{
			s->knowndeletable = true;
			ndeletable_prefix = i + 1;
			if (delstate->bottomup)
				delstate->bottomupfreespace += s->freespace;
		}
	}
	MemoryContextDelete(cxt);

	/*
	 * As heap_index_delete_tuples: the array ends at the last deletable
	 * entry, so that it is empty when nothing is (nbtree relies on that).
	 */
	delstate->ndeltids = ndeletable_prefix;
	return latest;
}
