/*-------------------------------------------------------------------------
 *
 * indexbuild.c
 *	  Index builds over a kvlsm table: the scan that feeds CREATE INDEX
 *	  (index_build_range_scan) and the second pass of CREATE INDEX /
 *	  REINDEX CONCURRENTLY (index_validate_scan).
 *
 * Both walk every row in row id order with the scan of scan.c and judge
 * each row themselves (SnapshotAny, or the MVCC snapshot of a concurrent
 * build).  A unique build waits for a row's running inserter outside any
 * kvlsm lock, as heap does.  kvlsm has no HOT chains: every version is
 * indexed under its own TID.  Partial-range builds are refused.
 *
 * The callbacks are in tableam.c's TableAmRoutine; the callers hold the
 * locks CREATE INDEX takes on the table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "kvlsm/snapshots.h"
#include "kvlsm/table_internal.h"

double
kvlsm_index_build_range_scan(Relation tableRelation, Relation indexRelation,
							 IndexInfo *indexInfo, bool allow_sync,
							 bool anyvisible, bool progress,
							 BlockNumber start_blockno, BlockNumber numblocks,
							 IndexBuildCallback callback, void *callback_state,
							 TableScanDesc scan)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	double		reltuples = 0;
	ExprState  *predicate;
	TupleTableSlot *slot;
	EState	   *estate;
	ExprContext *econtext;
	KvlsmRowState st;
	bool		own_scan = (scan == NULL);
	GlobalVisState *vis = GlobalVisTestFor(tableRelation);
	Snapshot	snapshot = SnapshotAny;
	bool		mvcc;

	if (start_blockno != 0 || numblocks != InvalidBlockNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("partial index builds of kvlsm tables are not supported")));

	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	slot = table_slot_create(tableRelation, NULL);
	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(indexInfo->ii_Predicate, estate);

	/*
	 * As heap: a concurrent build (CREATE INDEX / REINDEX CONCURRENTLY)
	 * indexes the rows visible to an MVCC snapshot, and validate_index later
	 * adds those committed after it; other builds index every row that is
	 * not dead to everyone.  A parallel build's workers get the snapshot
	 * with their scan.
	 */
	if (own_scan)
	{
		if (indexInfo->ii_Concurrent)
			snapshot = RegisterSnapshot(GetTransactionSnapshot());
		scan = kvlsm_scan_begin(tableRelation, snapshot, 0, NULL, NULL,
								SO_TYPE_SEQSCAN);
	}
	else
		snapshot = scan->rs_snapshot;
	mvcc = IsMVCCSnapshot(snapshot);

	while (kvlsm_scan_next_row((KvlsmScanDesc) scan, &st))
	{
		bool		alive;

		CHECK_FOR_INTERRUPTS();
		if (mvcc)
		{
			if (!kvlsm_row_visible(&st, snapshot))
				continue;
			alive = true;
		}
		else
		{
			if (st.killed || st.xmin_status == KVLSM_XID_ABORTED)
				continue;
			/* dead to everyone: not indexed */
			if (st.deleted && st.xmax_status == KVLSM_XID_COMMITTED &&
				kvlsm_xid_removable(vis, st.xmax))
				continue;
			if (st.xmin_status == KVLSM_XID_IN_PROGRESS && indexInfo->ii_Unique)
			{
				/* wait for the inserter so the unique check sees its outcome */
				ItemPointerData tid;

				kvlsm_rowid_to_tid(st.rowid, &tid);
				XactLockTableWait(st.xmin, tableRelation, &tid, XLTW_InsertIndexUnique);
				st.xmin_status = kvlsm_xid_status(st.xmin);
				if (st.xmin_status == KVLSM_XID_ABORTED)
					continue;
			}
			alive = !(st.deleted && st.xmax_status == KVLSM_XID_COMMITTED);
			if (st.xmin_status == KVLSM_XID_IN_PROGRESS)
				alive = true;
		}

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		kvlsm_store_row(tableRelation, &st, slot);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(indexInfo, slot, estate, values, isnull);
		callback(indexRelation, &slot->tts_tid, values, isnull, alive,
				 callback_state);
		if (alive)
			reltuples += 1;
	}

	/* like heap, end the scan even when the caller began it (parallel build) */
	kvlsm_scan_end(scan);
	if (own_scan && snapshot != SnapshotAny)
		UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	indexInfo->ii_ExpressionsState = NIL;
	indexInfo->ii_PredicateState = NULL;
	return reltuples;
}

/*
 * Second pass of CREATE INDEX / REINDEX CONCURRENTLY: insert every row
 * visible to 'snapshot' whose TID the index does not hold yet.
 * state->tuplesort yields the TIDs the index holds, sorted; a seq scan
 * visits rows in row id order, which is TID order, so one merge pass finds
 * the missing ones.  Simpler than heap's: kvlsm has no HOT chains, so every
 * version is indexed under its own TID.
 */
void
kvlsm_index_validate_scan(Relation tableRelation, Relation indexRelation,
						  IndexInfo *indexInfo, Snapshot snapshot,
						  ValidateIndexState *state)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	ExprState  *predicate;
	TupleTableSlot *slot;
	EState	   *estate;
	ExprContext *econtext;
	TableScanDesc scan;
	KvlsmRowState st;
	ItemPointerData indexcursor;
	bool		have_cursor = false;
	bool		tuplesort_empty = false;

	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	slot = table_slot_create(tableRelation, NULL);
	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(indexInfo->ii_Predicate, estate);

	scan = kvlsm_scan_begin(tableRelation, snapshot, 0, NULL, NULL,
							SO_TYPE_SEQSCAN);
	while (kvlsm_scan_next_row((KvlsmScanDesc) scan, &st))
	{
		ItemPointerData tid;

		CHECK_FOR_INTERRUPTS();
		if (!kvlsm_row_visible(&st, snapshot))
			continue;
		state->htups += 1;
		kvlsm_rowid_to_tid(st.rowid, &tid);

		/* advance the index's TIDs up to this row's */
		while (!tuplesort_empty &&
			   (!have_cursor || ItemPointerCompare(&indexcursor, &tid) < 0))
		{
			Datum		ts_val;
			bool		ts_isnull;

			tuplesort_empty = !tuplesort_getdatum(state->tuplesort, true,
												  &ts_val, &ts_isnull, NULL);
			Assert(tuplesort_empty || !ts_isnull);
			if (!tuplesort_empty)
			{
				itemptr_decode(&indexcursor, DatumGetInt64(ts_val));
				have_cursor = true;
#ifndef USE_FLOAT8_BYVAL
				pfree(DatumGetPointer(ts_val));
#endif
			}
		}
		if (have_cursor && !tuplesort_empty &&
			ItemPointerCompare(&indexcursor, &tid) == 0)
			continue;			/* already indexed */

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		kvlsm_store_row(tableRelation, &st, slot);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(indexInfo, slot, estate, values, isnull);
		index_insert(indexRelation, values, isnull, &tid, tableRelation,
					 indexInfo->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, indexInfo);
		state->tups_inserted += 1;
	}
	kvlsm_scan_end(scan);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	indexInfo->ii_ExpressionsState = NIL;
	indexInfo->ii_PredicateState = NULL;
}
