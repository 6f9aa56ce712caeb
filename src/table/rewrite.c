/*-------------------------------------------------------------------------
 *
 * rewrite.c
 *	  VACUUM FULL and CLUSTER of a kvlsm table: every row version still
 *	  visible to anyone is copied into the new filenode, as rewriteheap.c
 *	  and heapam_relation_copy_for_cluster do for heap.
 *
 * The caller holds AccessExclusiveLock on the table.  The new rows go
 * through the engine's put like any other (the new filenode's log and WAL,
 * lsm.c), re-toasted into the new table's TOAST relation; a row's DELETE
 * goes with it when its deleter did not abort.  How rows are chosen,
 * frozen and ordered is told at kvlsm_relation_copy_for_cluster.
 *
 * The callback is in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "catalog/pg_am.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplesort.h"

#include "kvlsm/snapshots.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/table_internal.h"

/* remember the oldest normal xid a rewrite writes unfrozen */
static void
note_kept_xid(TransactionId *oldest, TransactionId xid)
{
	if (TransactionIdIsNormal(xid) &&
		(!TransactionIdIsValid(*oldest) || TransactionIdPrecedes(xid, *oldest)))
		*oldest = xid;
}

/* what a rewrite keeps of a row version besides its tuple */
typedef struct RewriteRowMeta
{
	TransactionId xmin;			/* FrozenTransactionId once frozen */
	CommandId	cmin;
	bool		deleted;
	TransactionId xmax;
	CommandId	cmax;
	TimestampTz expires;
} RewriteRowMeta;

/* what of 'st' the rewrite keeps */
static void
rewrite_row_meta(KvlsmRowState *st, TransactionId OldestXmin, RewriteRowMeta *m)
{
	memset(m, 0, sizeof(*m));
	/* freeze only what no snapshot can still see as in progress */
	m->xmin = (st->xmin_status == KVLSM_XID_COMMITTED &&
			   TransactionIdPrecedes(st->xmin, OldestXmin)) ?
		FrozenTransactionId : st->xmin;
	m->cmin = st->cmin;
	m->expires = st->expires;
	m->deleted = st->deleted && st->xmax_status != KVLSM_XID_ABORTED;
	m->xmax = st->xmax;
	m->cmax = st->cmax;
}

/* write one row version into the rewritten table, re-toasted */
static void
rewrite_put_row(Relation NewTable, KvlsmShared *newsh, HeapTuple oldtup,
				const RewriteRowMeta *m, TransactionId *oldest_kept)
{
	KvlsmRowRecord rr;
	MinimalTuple mtup;
	uint64		rowid;

	/*
	 * Re-toast into the new table's toast relation, as heap's rewrite does:
	 * the old toast relation goes away with the old filenode.
	 */
	{
		HeapTuple	newtup = kvlsm_prepare_tuple(NewTable, oldtup, NULL, 0);

		mtup = minimal_tuple_from_heap_tuple(newtup);
		if (newtup != oldtup)
			heap_freetuple(newtup);
	}
	rowid = kvlsm_alloc_rowids(NewTable, newsh, 1);
	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_INSERT;
	rr.xid = m->xmin;
	rr.cid = m->cmin;
	rr.expires = m->expires;
	note_kept_xid(oldest_kept, rr.xid);
	kvlsm_put_row_record(NewTable, newsh, rowid, &rr, mtup);
	if (m->deleted)
	{
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_DELETE;
		rr.xid = m->xmax;
		rr.cid = m->cmax;
		note_kept_xid(oldest_kept, rr.xid);
		kvlsm_put_row_record(NewTable, newsh, rowid, &rr, NULL);
	}
	pfree(mtup);
	kvlsm_maybe_flush(NewTable, newsh);
}

/* CLUSTER: write the sorted rows, their other fields found through t_self */
static void
rewrite_sorted_rows(Relation NewTable, KvlsmShared *newsh,
					Tuplesortstate *sorter, RewriteRowMeta *metas,
					TransactionId *oldest_kept)
{
	HeapTuple	tup;

	tuplesort_performsort(sorter);
	while ((tup = tuplesort_getheaptuple(sorter, true)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		rewrite_put_row(NewTable, newsh, tup,
						&metas[kvlsm_tid_to_rowid(&tup->t_self)], oldest_kept);
	}
	tuplesort_end(sorter);
	if (metas)
		pfree(metas);
}

void
kvlsm_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								Relation OldIndex, bool use_sort,
								TransactionId OldestXmin,
								TransactionId *xid_cutoff,
								MultiXactId *multi_cutoff,
								double *num_tuples,
								double *tups_vacuumed,
								double *tups_recently_dead)
{
	/*
	 * VACUUM FULL / CLUSTER: copy every row still visible to anyone into
	 * the new filenode.  Rows are re-inserted with their original xmin so
	 * that snapshots older than the rewrite keep their view; the rewrite
	 * holds AccessExclusiveLock, so no writer races it.  CLUSTER orders the
	 * new row ids (the table's physical order) by the index: the rows go
	 * through a tuplesort on the index's key, their other fields in an
	 * array whose position travels in the tuple's t_self.  (Row id order is
	 * what a seq scan returns, so an index scan would buy nothing over the
	 * sort; for a non-btree index, which tuplesort cannot order by, heap
	 * scans the index: here the rows keep their row id order.)
	 */
	KvlsmShared *newsh = kvlsm_attach(NewTable);
	TableScanDesc scan;
	KvlsmScanDesc kscan;
	KvlsmRowState st;
	double		live = 0,
				dead = 0;
	GlobalVisState *vis = GlobalVisTestFor(OldTable);
	TransactionId oldest_kept = InvalidTransactionId;
	Tuplesortstate *sorter = NULL;
	RewriteRowMeta *metas = NULL;
	Size		nmeta = 0,
				maxmeta = 0;

	if (OldIndex != NULL && OldIndex->rd_rel->relam == BTREE_AM_OID)
		sorter = tuplesort_begin_cluster(RelationGetDescr(OldTable), OldIndex,
										 maintenance_work_mem, NULL,
										 TUPLESORT_NONE);

	scan = kvlsm_scan_begin(OldTable, SnapshotAny, 0, NULL, NULL, SO_TYPE_SEQSCAN);
	kscan = (KvlsmScanDesc) scan;
	while (kvlsm_scan_next_row(kscan, &st))
	{
		RewriteRowMeta m;
		HeapTuple	oldtup;

		CHECK_FOR_INTERRUPTS();
		if (st.killed || st.xmin_status == KVLSM_XID_ABORTED)
			continue;
		if (st.deleted && st.xmax_status == KVLSM_XID_COMMITTED &&
			kvlsm_xid_removable(vis, st.xmax))
		{
			dead++;
			continue;
		}
		if (st.deleted && st.xmax_status != KVLSM_XID_ABORTED)
			dead++;
		else
			live++;

		rewrite_row_meta(&st, OldestXmin, &m);
		oldtup = kvlsm_row_to_heaptuple(OldTable, &st);
		if (sorter == NULL)
		{
			rewrite_put_row(NewTable, newsh, oldtup, &m, &oldest_kept);
			heap_freetuple(oldtup);
			continue;
		}
		if (nmeta == maxmeta)
		{
			maxmeta = maxmeta ? maxmeta * 2 : 1024;
			metas = metas ?
				repalloc_huge(metas, maxmeta * sizeof(RewriteRowMeta)) :
				MemoryContextAllocHuge(CurrentMemoryContext, maxmeta * sizeof(RewriteRowMeta));
		}
		metas[nmeta] = m;
		kvlsm_rowid_to_tid(nmeta, &oldtup->t_self);
		nmeta++;
		tuplesort_putheaptuple(sorter, oldtup);
		heap_freetuple(oldtup);
	}
	kvlsm_scan_end(scan);

	if (sorter != NULL)
		rewrite_sorted_rows(NewTable, newsh, sorter, metas, &oldest_kept);

	*num_tuples = live;
	*tups_vacuumed = 0;
	*tups_recently_dead = dead;

	/*
	 * The new relfrozenxid (for the table and, through the swap, its new
	 * TOAST table): committed inserts older than OldestXmin were frozen, so
	 * the oldest xid written unfrozen bounds it, as OldestXmin does.  Versions
	 * kept for a named snapshot can be older than OldestXmin.  The caller's
	 * multixact cutoff stands: kvlsm stores no multixacts, and the TOAST
	 * table, a heap, needs a valid relminmxid.
	 */
	*xid_cutoff = OldestXmin;
	if (TransactionIdIsValid(oldest_kept) &&
		TransactionIdPrecedes(oldest_kept, *xid_cutoff))
		*xid_cutoff = oldest_kept;
}
