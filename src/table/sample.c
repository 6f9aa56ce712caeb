/*-------------------------------------------------------------------------
 *
 * sample.c
 *	  Sampling scans of a kvlsm table: ANALYZE's block sample and
 *	  TABLESAMPLE.  Both map the block numbers their samplers choose onto
 *	  windows of row ids and read them with the scan of scan.c.
 *
 * kvlsm's TIDs are virtual: a row id's TID block is rowid /
 * KVLSM_ROWS_PER_BLOCK, not a page of the file.  ANALYZE spreads row ids
 * evenly over the file's physical blocks instead (see
 * kvlsm_scan_analyze_next_block); TABLESAMPLE samples the TID blocks.  The
 * row id high-water mark is read from the shared state under its spinlock;
 * nothing else is locked between calls.
 *
 * The callbacks are in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tsmapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/spin.h"
#include "utils/rel.h"

#include "kvlsm/table_internal.h"

/* ------------------------------------------------------------------------
 * ANALYZE
 * ------------------------------------------------------------------------
 */

/*
 * ANALYZE samples physical blocks 0..nblocks-1.  Row ids are spread over
 * them evenly: physical block b stands for the row ids
 * [b*H/N, (b+1)*H/N) where H is the row id high-water mark, so the sample
 * is uniform over rows and acquire_sample_rows' density estimate holds.
 */
bool
kvlsm_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							  BufferAccessStrategy bstrategy)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	uint64		lo,
				hi;

	if (scan->analyze_nblocks == 0)
	{
		KvlsmShared *sh = scan->sh;

		scan->analyze_nblocks = Max(1, RelationGetNumberOfBlocks(sscan->rs_rd));
		SpinLockAcquire(&sh->mutex);
		scan->analyze_hwm = sh->next_rowid;
		SpinLockRelease(&sh->mutex);
	}
	lo = (uint64) ((double) scan->analyze_hwm * blockno / scan->analyze_nblocks);
	hi = (uint64) ((double) scan->analyze_hwm * (blockno + 1) / scan->analyze_nblocks);
	if (blockno + 1 >= scan->analyze_nblocks)
		hi = PG_UINT64_MAX - 1;
	kvlsm_recset_reset(&scan->set);
	scan->pos = 0;
	scan->resume_rowid = lo;
	scan->end_rowid = hi;
	scan->exhausted = (lo >= hi);
	return true;
}

bool
kvlsm_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							  double *liverows, double *deadrows,
							  TupleTableSlot *slot)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	KvlsmRowState st;

	while (kvlsm_scan_next_row(scan, &st))
	{
		if (st.killed || st.xmin_status == KVLSM_XID_ABORTED)
			continue;
		if (st.xmin_status == KVLSM_XID_IN_PROGRESS)
			continue;
		if (st.deleted && (st.xmax_status == KVLSM_XID_COMMITTED))
		{
			*deadrows += 1;
			continue;
		}
		*liverows += 1;
		kvlsm_store_row(sscan->rs_rd, &st, slot);
		return true;
	}
	ExecClearTuple(slot);
	return false;
}

/* ------------------------------------------------------------------------
 * TABLESAMPLE
 * ------------------------------------------------------------------------
 */

/*
 * TABLESAMPLE samples the blocks of the row's TIDs: block b holds the row
 * ids [b * KVLSM_ROWS_PER_BLOCK, (b + 1) * KVLSM_ROWS_PER_BLOCK), offsets 1
 * to KVLSM_ROWS_PER_BLOCK, up to the row id high-water mark.  SYSTEM picks
 * whole TID blocks, BERNOULLI single offsets, as on heap pages; which rows
 * a given seed picks differs from heap because the layout does.
 */
bool
kvlsm_scan_sample_next_block(TableScanDesc sscan, SampleScanState *scanstate)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber blockno;
	uint64		lo;

	if (!scan->sample_started)
	{
		uint64		hwm;

		SpinLockAcquire(&scan->sh->mutex);
		hwm = scan->sh->next_rowid;
		SpinLockRelease(&scan->sh->mutex);
		scan->sample_nblocks = (BlockNumber)
			((hwm + KVLSM_ROWS_PER_BLOCK - 1) / KVLSM_ROWS_PER_BLOCK);
	}
	if (tsm->NextSampleBlock)
		blockno = tsm->NextSampleBlock(scanstate, scan->sample_nblocks);
	else if (!scan->sample_started)
		blockno = scan->sample_nblocks > 0 ? 0 : InvalidBlockNumber;
	else if (scan->sample_block + 1 < scan->sample_nblocks)
		blockno = scan->sample_block + 1;
	else
		blockno = InvalidBlockNumber;
	scan->sample_started = true;
	scan->sample_have_row = false;
	scan->sample_block_done = false;
	if (!BlockNumberIsValid(blockno))
		return false;

	scan->sample_block = blockno;
	lo = (uint64) blockno * KVLSM_ROWS_PER_BLOCK;
	kvlsm_recset_reset(&scan->set);
	scan->pos = 0;
	scan->more = false;
	scan->resume_rowid = lo;
	scan->end_rowid = lo + KVLSM_ROWS_PER_BLOCK;
	scan->exhausted = false;
	return true;
}

bool
kvlsm_scan_sample_next_tuple(TableScanDesc sscan, SampleScanState *scanstate,
							 TupleTableSlot *slot)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	uint64		base = (uint64) scan->sample_block * KVLSM_ROWS_PER_BLOCK;

	for (;;)
	{
		OffsetNumber off;
		uint64		want;
		KvlsmRowState *st = &scan->sample_row;
		bool		visible;

		CHECK_FOR_INTERRUPTS();
		off = tsm->NextSampleTuple(scanstate, scan->sample_block,
								   KVLSM_ROWS_PER_BLOCK);
		if (!OffsetNumberIsValid(off))
			break;
		want = base + off - 1;

		/*
		 * Offsets come in increasing order: walk the block's rows along.
		 * Past its last row the sampler is still asked for every offset it
		 * wants, as heap does, so that its per-block state ends clean.
		 */
		if (scan->sample_block_done)
			continue;
		while (!scan->sample_have_row || st->rowid < want)
		{
			if (!kvlsm_scan_next_row(scan, st))
			{
				scan->sample_have_row = false;
				scan->sample_block_done = true;
				break;
			}
			scan->sample_have_row = true;
		}
		if (!scan->sample_have_row || st->rowid != want)
			continue;
		visible = kvlsm_row_visible(st, scan->vis_snapshot);
		if (scan->vis_snapshot == scan->base.rs_snapshot)
			kvlsm_check_serializable_out(scan->base.rs_rd, st, visible,
										 scan->base.rs_snapshot);
		if (visible)
		{
			kvlsm_store_row(scan->base.rs_rd, st, slot);
			pgstat_count_heap_getnext(scan->base.rs_rd);
			return true;
		}
	}
	ExecClearTuple(slot);
	return false;
}
