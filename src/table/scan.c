/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Scans of a kvlsm table: sequential (forward and backward), TID range
 *	  and parallel scans, and the full passes over every record that the
 *	  TOAST sweep and named snapshots make.
 *
 * Scans hold nothing between calls but a resume row id: each refill copies
 * the records of the next batch of row ids out of the engine, so an idle
 * cursor pins no memtable memory and never sees a half-installed flush.
 * No lock is held between calls either; the engine's reads take what they
 * need (lsm.c).  Rows come out in row id order, which is TID order.
 *
 * The scan descriptor (KvlsmScanDescData, kvlsm/table_internal.h) is also
 * driven by sample.c (ANALYZE, TABLESAMPLE), and kvlsm_scan_next_row by the
 * full passes of vacuum.c, rewrite.c and indexbuild.c, which judge every
 * row themselves.  The callbacks are in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/predicate.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "kvlsm/snapshots.h"
#include "kvlsm/table_internal.h"

#define SCAN_BATCH_ROWS 2048

/*
 * Parallel scans hand out row id ranges of PARALLEL_CHUNK_ROWS from a
 * shared counter, up to the metapage's row id high-water mark taken when
 * the scan was set up (every row the scan's snapshot can see lies below
 * it).
 */
#define PARALLEL_CHUNK_ROWS 8192

typedef struct KvlsmParallelScanDescData
{
	ParallelTableScanDescData base;
	uint64		hwm;
	pg_atomic_uint64 next_chunk;
} KvlsmParallelScanDescData;

/* ------------------------------------------------------------------------
 * Beginning and ending
 * ------------------------------------------------------------------------
 */

TableScanDesc
kvlsm_scan_begin(Relation rel, Snapshot snapshot, int nkeys, ScanKey key,
				 ParallelTableScanDesc pscan, uint32 flags)
{
	KvlsmScanDesc scan = palloc0(sizeof(KvlsmScanDescData));

	RelationIncrementReferenceCount(rel);
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_key = key;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->sh = kvlsm_attach(rel);
	scan->vis_snapshot = kvlsm_scan_snapshot(rel, snapshot);
	scan->batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
											"kvlsm scan batch",
											ALLOCSET_DEFAULT_SIZES);
	kvlsm_recset_init(&scan->set, scan->batch_cxt);
	scan->end_rowid = PG_UINT64_MAX;
	scan->bpos = -1;

	if ((flags & (SO_TYPE_SEQSCAN | SO_TYPE_SAMPLESCAN)) && snapshot &&
		IsMVCCSnapshot(snapshot))
		PredicateLockRelation(rel, snapshot);
	return &scan->base;
}

void
kvlsm_scan_rescan(TableScanDesc sscan, ScanKey key, bool set_params,
				  bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;

	kvlsm_recset_reset(&scan->set);
	scan->pos = 0;
	scan->started = false;
	scan->exhausted = false;
	scan->more = false;
	scan->resume_rowid = scan->range_lo;
	scan->dir = 0;
	scan->have_last = false;
	scan->sample_started = false;
	scan->sample_have_row = false;
	/* a TID range set by scan_set_tidrange survives a rescan */
}

void
kvlsm_scan_end(TableScanDesc sscan)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;

	MemoryContextDelete(scan->batch_cxt);
	RelationDecrementReferenceCount(scan->base.rs_rd);
	if (scan->base.rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(scan->base.rs_snapshot);
	pfree(scan);
}

/* ------------------------------------------------------------------------
 * Forward: batches of row ids
 * ------------------------------------------------------------------------
 */

/* fetch the next batch of row ids into scan->set; false at the end */
static bool
scan_refill(KvlsmScanDesc scan)
{
	char		startkey[8];
	char		endkey[8];
	bool		bounded = scan->end_rowid != PG_UINT64_MAX;

	if (scan->base.rs_parallel != NULL &&
		(scan->exhausted || scan->resume_rowid >= scan->end_rowid || scan->end_rowid == PG_UINT64_MAX))
	{
		KvlsmParallelScanDescData *ps = (KvlsmParallelScanDescData *) scan->base.rs_parallel;
		uint64		chunk = pg_atomic_fetch_add_u64(&ps->next_chunk, 1);
		uint64		lo = chunk * PARALLEL_CHUNK_ROWS;

		if (lo >= ps->hwm)
		{
			scan->exhausted = true;
			scan->end_rowid = 0;
			return false;
		}
		scan->resume_rowid = lo;
		scan->end_rowid = Min(lo + PARALLEL_CHUNK_ROWS, ps->hwm);
		scan->exhausted = false;
		bounded = true;
	}
	if (scan->exhausted)
		return false;
	kvlsm_rowid_to_key(scan->resume_rowid, startkey);
	if (bounded)
	{
		if (scan->resume_rowid >= scan->end_rowid)
		{
			scan->exhausted = true;
			return false;
		}
		kvlsm_rowid_to_key(scan->end_rowid - 1, endkey);
	}
	scan->more = kvlsm_collect(scan->base.rs_rd, scan->sh, &kvlsm_bytewise_keyops,
							   startkey, 8, false,
							   bounded ? endkey : NULL, bounded ? 8 : 0,
							   SCAN_BATCH_ROWS, NULL, &scan->set);
	scan->pos = 0;
	if (scan->set.n == 0)
	{
		scan->exhausted = true;
		if (scan->base.rs_parallel != NULL)
			return scan_refill(scan);
		return false;
	}
	scan->resume_rowid = kvlsm_key_to_rowid(scan->set.recs[scan->set.n - 1].key) + 1;
	if (!scan->more && scan->base.rs_parallel == NULL)
		scan->exhausted = true;
	else if (!scan->more)
		scan->resume_rowid = scan->end_rowid;	/* claim the next chunk */
	return true;
}

/*
 * Next row state from the scan's batch (any visibility); false at the end.
 */
bool
kvlsm_scan_next_row(KvlsmScanDesc scan, KvlsmRowState *st)
{
	for (;;)
	{
		int			start;

		if (scan->pos >= scan->set.n)
		{
			if (!scan_refill(scan))
				return false;
		}
		start = scan->pos;
		while (scan->pos < scan->set.n &&
			   memcmp(scan->set.recs[scan->pos].key, scan->set.recs[start].key, 8) == 0)
			scan->pos++;
		kvlsm_resolve_row(&scan->set.recs[start], scan->pos - start, st);
		if (st->exists)
			return true;
	}
}

/* ------------------------------------------------------------------------
 * Backward: windows below the last row returned
 * ------------------------------------------------------------------------
 */

#define BACKWARD_WINDOW 512

/* backward: the next row state below the current position; false at start */
static bool
scan_prev_row(KvlsmScanDesc scan, KvlsmRowState *st)
{
	for (;;)
	{
		int			end;
		int			start;

		if (scan->bpos < 0)
		{
			uint64		lo;
			char		startkey[8];
			char		endkey[8];

			if (scan->bhi <= scan->range_lo)
				return false;
			lo = (scan->bhi - scan->range_lo > BACKWARD_WINDOW) ?
				scan->bhi - BACKWARD_WINDOW : scan->range_lo;
			kvlsm_rowid_to_key(lo, startkey);
			kvlsm_rowid_to_key(scan->bhi - 1, endkey);
			kvlsm_collect(scan->base.rs_rd, scan->sh, &kvlsm_bytewise_keyops,
						  startkey, 8, false, endkey, 8, 0, NULL, &scan->set);
			scan->bpos = scan->set.n - 1;
			scan->bhi = lo;
			continue;
		}
		end = scan->bpos;
		start = end;
		while (start > 0 &&
			   memcmp(scan->set.recs[start - 1].key, scan->set.recs[end].key, 8) == 0)
			start--;
		scan->bpos = start - 1;
		kvlsm_resolve_row(&scan->set.recs[start], end - start + 1, st);
		if (st->exists)
			return true;
	}
}

/* set the scan up to move in 'dir' from its current position */
static void
scan_turn(KvlsmScanDesc scan, int dir)
{
	kvlsm_recset_reset(&scan->set);
	scan->pos = 0;
	scan->bpos = -1;
	scan->exhausted = false;
	if (dir > 0)
		scan->resume_rowid = scan->have_last ? scan->last_rowid + 1 : scan->range_lo;
	else
	{
		uint64		top = scan->end_rowid;

		if (top == PG_UINT64_MAX)
		{
			/* every row id in use lies below the metapage's high-water mark */
			KvlsmMetaPageData meta;

			kvlsm_read_metapage(scan->base.rs_rd, &meta);
			top = meta.rowid_hwm;
		}
		scan->bhi = scan->have_last ? scan->last_rowid : top;
	}
	scan->dir = dir;
}

/* ------------------------------------------------------------------------
 * Rows into slots
 * ------------------------------------------------------------------------
 */

bool
kvlsm_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
					   TupleTableSlot *slot)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	KvlsmRowState st;
	int			dir = ScanDirectionIsBackward(direction) ? -1 : 1;

	if (scan->dir != dir)
		scan_turn(scan, dir);

	while (dir > 0 ? kvlsm_scan_next_row(scan, &st) : scan_prev_row(scan, &st))
	{
		bool		visible;

		CHECK_FOR_INTERRUPTS();
		visible = kvlsm_row_visible(&st, scan->vis_snapshot);
		if (scan->vis_snapshot == scan->base.rs_snapshot)
			kvlsm_check_serializable_out(scan->base.rs_rd, &st, visible,
										 scan->base.rs_snapshot);
		if (visible)
		{
			scan->have_last = true;
			scan->last_rowid = st.rowid;
			kvlsm_store_row(scan->base.rs_rd, &st, slot);
			pgstat_count_heap_getnext(scan->base.rs_rd);
			return true;
		}
	}
	/* past the end: a turn starts again from this end, as heap does */
	scan->have_last = false;
	scan->dir = 0;
	ExecClearTuple(slot);
	return false;
}

/* ------------------------------------------------------------------------
 * TID range scans
 * ------------------------------------------------------------------------
 */

void
kvlsm_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid, ItemPointer maxtid)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;

	scan->resume_rowid = kvlsm_tid_to_rowid(mintid);
	if (ItemPointerGetOffsetNumberNoCheck(mintid) == 0)
		scan->resume_rowid = (uint64) ItemPointerGetBlockNumberNoCheck(mintid) * KVLSM_ROWS_PER_BLOCK;
	scan->range_lo = scan->resume_rowid;
	scan->dir = 0;
	scan->have_last = false;
	if (ItemPointerGetOffsetNumberNoCheck(maxtid) == 0)
	{
		if (ItemPointerGetBlockNumberNoCheck(maxtid) == 0)
			scan->end_rowid = 0;
		else
			scan->end_rowid = (uint64) ItemPointerGetBlockNumberNoCheck(maxtid) * KVLSM_ROWS_PER_BLOCK;
	}
	else
		scan->end_rowid = Min(kvlsm_tid_to_rowid(maxtid) + 1,
							  ((uint64) ItemPointerGetBlockNumberNoCheck(maxtid) + 1) * KVLSM_ROWS_PER_BLOCK);
	scan->started = true;
	scan->exhausted = false;
	scan->pos = 0;
	scan->set.n = 0;
}

bool
kvlsm_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
								TupleTableSlot *slot)
{
	return kvlsm_scan_getnextslot(sscan, direction, slot);
}

/* ------------------------------------------------------------------------
 * Parallel scans
 * ------------------------------------------------------------------------
 */

Size
kvlsm_parallelscan_estimate(Relation rel)
{
	return sizeof(KvlsmParallelScanDescData);
}

Size
kvlsm_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
	KvlsmParallelScanDescData *ps = (KvlsmParallelScanDescData *) pscan;
	KvlsmMetaPageData meta;

	kvlsm_read_metapage(rel, &meta);
	ps->base.phs_relid = RelationGetRelid(rel);
	ps->base.phs_syncscan = false;
	ps->hwm = meta.rowid_hwm;
	pg_atomic_init_u64(&ps->next_chunk, 0);
	return sizeof(KvlsmParallelScanDescData);
}

void
kvlsm_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	KvlsmParallelScanDescData *ps = (KvlsmParallelScanDescData *) pscan;

	pg_atomic_write_u64(&ps->next_chunk, 0);
}

/* ------------------------------------------------------------------------
 * Full passes over every record
 * ------------------------------------------------------------------------
 */

/*
 * Hand every record of every row version of 'rel' to fn, in batches of
 * whole rows (records of one row id adjacent, newest first): a full pass
 * over the table, whatever the records' visibility.
 */
void
kvlsm_table_each_batch(Relation rel, KvlsmRecordBatchFn fn, void *arg)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "kvlsm full pass",
											  ALLOCSET_DEFAULT_SIZES);
	KvlsmRecordSet set;
	uint64		resume = 0;
	bool		more = true;

	kvlsm_recset_init(&set, cxt);
	while (more)
	{
		char		startkey[8];

		CHECK_FOR_INTERRUPTS();
		kvlsm_recset_reset(&set);
		kvlsm_rowid_to_key(resume, startkey);
		more = kvlsm_collect(rel, sh, &kvlsm_bytewise_keyops, startkey, 8, false,
							 NULL, 0, SCAN_BATCH_ROWS, NULL, &set);
		if (set.n == 0)
			break;
		fn(set.recs, set.n, arg);
		resume = kvlsm_key_to_rowid(set.recs[set.n - 1].key) + 1;
	}
	MemoryContextDelete(cxt);
}
