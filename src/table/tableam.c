/*-------------------------------------------------------------------------
 *
 * tableam.c
 *	  The kvlsm table access method callbacks.
 *
 * Every TableAmRoutine field is set: what kvlsm does not support raises
 * ERRCODE_FEATURE_NOT_SUPPORTED (a NULL callback would be a crash on a
 * release build).  Bitmap scan callbacks are left NULL on purpose: the
 * planner then never builds bitmap heap scans over kvlsm tables, whose TIDs
 * are virtual and would make PrefetchBuffer read past the file.
 *
 * Scans hold nothing between calls but a resume row id: each refill copies
 * the records of the next batch of row ids out of the engine, so an idle
 * cursor pins no memtable memory and never sees a half-installed flush.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/tsmapi.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "catalog/pg_am.h"
#include <math.h>
#include "utils/memutils.h"
#include "utils/tuplesort.h"
#include "utils/rel.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/table.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/compaction.h"

#define SCAN_BATCH_ROWS 2048
#define KVLSM_STRIPES	1024

static const TableAmRoutine kvlsm_methods;

static LWLockPadded *stripe_locks = NULL;

void		kvlsm_table_request_locks(void);
void		kvlsm_table_shmem_init(void);

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

bool
kvlsm_is_kvlsm_relation(Relation rel)
{
	return rel->rd_tableam == &kvlsm_methods;
}

static void
check_rowid(Relation rel, uint64 rowid)
{
	if (rowid >= KVLSM_MAX_ROWID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm table \"%s\" has used up its row id space",
						RelationGetRelationName(rel)),
				 errhint("Rewrite the table with VACUUM FULL.")));
}

/* ------------------------------------------------------------------------
 * Reading rows
 * ------------------------------------------------------------------------
 */

/* all records of one row id, newest first */
static void
fetch_row_records(Relation rel, KvlsmShared *sh, uint64 rowid, KvlsmRecordSet *set)
{
	char		key[8];
	uint64		h;

	kvlsm_rowid_to_key(rowid, key);
	h = kvlsm_key_hash(key, 8);
	kvlsm_collect(rel, sh, &kvlsm_bytewise_keyops, key, 8, false, key, 8, 0,
				  &h, set);
}

/* build a heap tuple (palloc'd in the current context) from a row state */
static HeapTuple
row_to_heaptuple(Relation rel, KvlsmRowState *st)
{
	HeapTuple	tup;
	Size		len = st->tuplen + MINIMAL_TUPLE_OFFSET;
	HeapTupleHeader hdr;

	tup = palloc(HEAPTUPLESIZE + len);
	tup->t_len = len;
	tup->t_tableOid = RelationGetRelid(rel);
	tup->t_data = hdr = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	memset(hdr, 0, MINIMAL_TUPLE_OFFSET);
	memcpy((char *) hdr + MINIMAL_TUPLE_OFFSET, st->tuple, st->tuplen);
	/* the minimal tuple's t_len is not the heap tuple's; fix the header */
	kvlsm_rowid_to_tid(st->rowid, &tup->t_self);
	hdr->t_ctid = tup->t_self;
	HeapTupleHeaderSetXmin(hdr, st->xmin);
	HeapTupleHeaderSetCmin(hdr, st->cmin);
	hdr->t_infomask &= ~HEAP_XACT_MASK;
	hdr->t_infomask |= HEAP_XMAX_INVALID;
	if (st->xmin_status == KVLSM_XID_COMMITTED)
		hdr->t_infomask |= HEAP_XMIN_COMMITTED;
	HeapTupleHeaderSetXmax(hdr, InvalidTransactionId);
	if (st->deleted && st->xmax_status != KVLSM_XID_ABORTED)
	{
		hdr->t_infomask &= ~HEAP_XMAX_INVALID;
		HeapTupleHeaderSetXmax(hdr, st->xmax);
	}
	return tup;
}

static void
store_row(Relation rel, KvlsmRowState *st, TupleTableSlot *slot)
{
	/* the slot frees the tuple: it must live in the slot's own context */
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	HeapTuple	tup = row_to_heaptuple(rel, st);

	MemoryContextSwitchTo(old);
	ExecStoreHeapTuple(tup, slot, true);
	slot->tts_tableOid = RelationGetRelid(rel);
}

/* ------------------------------------------------------------------------
 * Slot callbacks and sequential scans
 * ------------------------------------------------------------------------
 */

static const TupleTableSlotOps *
kvlsm_slot_callbacks(Relation relation)
{
	return &TTSOpsHeapTuple;
}

typedef struct KvlsmScanDescData
{
	TableScanDescData base;
	KvlsmShared *sh;
	Snapshot	vis_snapshot;	/* rs_snapshot, or the named snapshot in use */
	MemoryContext batch_cxt;
	KvlsmRecordSet set;
	int			pos;			/* next record in set */
	bool		started;
	bool		exhausted;
	bool		more;
	uint64		resume_rowid;	/* first row id of the next batch */
	uint64		range_lo;		/* lower limit (TID range scans) */
	int			dir;			/* direction of the current batch: 1, -1, 0 */
	bool		have_last;
	uint64		last_rowid;		/* row id last returned */
	uint64		bhi;			/* backward: next window ends below this */
	int			bpos;			/* backward: next record index, going down */
	uint64		end_rowid;		/* exclusive upper limit (TID range scans) */
	/* analyze */
	uint64		analyze_hwm;
	BlockNumber analyze_nblocks;
	/* TABLESAMPLE: TID blocks 0..sample_nblocks-1, see sample_next_block */
	bool		sample_started;
	BlockNumber sample_nblocks;
	BlockNumber sample_block;
	bool		sample_have_row;	/* sample_row: next row of the block */
	bool		sample_block_done;	/* no rows left in the block */
	KvlsmRowState sample_row;
} KvlsmScanDescData;

typedef KvlsmScanDescData *KvlsmScanDesc;

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

static TableScanDesc
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

static void
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

static void
kvlsm_scan_end(TableScanDesc sscan)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;

	MemoryContextDelete(scan->batch_cxt);
	RelationDecrementReferenceCount(scan->base.rs_rd);
	if (scan->base.rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(scan->base.rs_snapshot);
	pfree(scan);
}

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
static bool
scan_next_row(KvlsmScanDesc scan, KvlsmRowState *st)
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

static bool
kvlsm_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
					   TupleTableSlot *slot)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	KvlsmRowState st;
	int			dir = ScanDirectionIsBackward(direction) ? -1 : 1;

	if (scan->dir != dir)
		scan_turn(scan, dir);

	while (dir > 0 ? scan_next_row(scan, &st) : scan_prev_row(scan, &st))
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
			store_row(scan->base.rs_rd, &st, slot);
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

static void
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

static bool
kvlsm_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
								TupleTableSlot *slot)
{
	return kvlsm_scan_getnextslot(sscan, direction, slot);
}

/* ------------------------------------------------------------------------
 * Parallel scans
 * ------------------------------------------------------------------------
 */

static Size
kvlsm_parallelscan_estimate(Relation rel)
{
	return sizeof(KvlsmParallelScanDescData);
}

static Size
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

static void
kvlsm_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	KvlsmParallelScanDescData *ps = (KvlsmParallelScanDescData *) pscan;

	pg_atomic_write_u64(&ps->next_chunk, 0);
}

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

static IndexFetchTableData *
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

static void
kvlsm_index_fetch_reset(IndexFetchTableData *scan)
{
}

static void
kvlsm_index_fetch_end(IndexFetchTableData *scan)
{
	KvlsmIndexFetchData *f = (KvlsmIndexFetchData *) scan;

	MemoryContextDelete(f->cxt);
	pfree(f);
}

static bool
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
	fetch_row_records(scan->rel, f->sh, rowid, &f->set);
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

		store_row(scan->rel, &st, slot);
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
 * Writes
 * ------------------------------------------------------------------------
 */

/* serialise a row record with an optional tuple into palloc'd bytes */
static char *
make_record(KvlsmRowRecord *rr, MinimalTuple mtup, int *len)
{
	int			tlen = mtup ? mtup->t_len : 0;
	char	   *buf = palloc(sizeof(KvlsmRowRecord) + tlen);

	memcpy(buf, rr, sizeof(KvlsmRowRecord));
	if (mtup)
		memcpy(buf + sizeof(KvlsmRowRecord), mtup, tlen);
	*len = sizeof(KvlsmRowRecord) + tlen;
	return buf;
}

static void
put_row_record(Relation rel, KvlsmShared *sh, uint64 rowid, KvlsmRowRecord *rr,
			   MinimalTuple mtup)
{
	char		key[8];
	int			len;
	char	   *val = make_record(rr, mtup, &len);

	/* option ttl: a new row version lives ttl from its transaction's start */
	if (rr->kind == KVLSM_REC_INSERT && rr->expires == 0 && sh->ttl_usecs > 0)
	{
		/*
		 * Options refuse a ttl whose sum could overflow; a metapage written
		 * before that check may still hold one, and an overflowed sum would
		 * hide the row at once: such a row never expires.
		 */
		if (pg_add_s64_overflow(GetCurrentTransactionStartTimestamp(), sh->ttl_usecs,
								&rr->expires))
			rr->expires = DT_NOEND;
		memcpy(val, rr, sizeof(KvlsmRowRecord));
	}
	kvlsm_rowid_to_key(rowid, key);
	kvlsm_put(rel, sh, &kvlsm_bytewise_keyops, key, 8, 0, val, len);
	pfree(val);
}

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
static HeapTuple
prepare_tuple(Relation rel, HeapTuple tup, HeapTuple oldtup, int options)
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

/*
 * The slot's tuple after an insert or update shows the writing transaction
 * in its header, as heap_insert / heap_update leave it: RETURNING xmin (a
 * row version token for optimistic concurrency in ORMs), cmin, and xmax =
 * our own xid, lock only, when we had locked the row we updated.
 */
static void
set_written_header(HeapTuple tup, ItemPointer tid, TransactionId xid,
				   CommandId cid, TransactionId locker)
{
	HeapTupleHeader hdr = tup->t_data;

	hdr->t_infomask &= ~HEAP_XACT_MASK;
	hdr->t_infomask2 &= ~HEAP2_XACT_MASK;
	HeapTupleHeaderSetXmin(hdr, xid);
	HeapTupleHeaderSetCmin(hdr, cid);
	if (TransactionIdIsValid(locker))
	{
		HeapTupleHeaderSetXmax(hdr, locker);
		hdr->t_infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
	}
	else
	{
		HeapTupleHeaderSetXmax(hdr, InvalidTransactionId);
		hdr->t_infomask |= HEAP_XMAX_INVALID;
	}
	tup->t_self = *tid;
	hdr->t_ctid = *tid;
}

static void
insert_one(Relation rel, KvlsmShared *sh, TupleTableSlot *slot, CommandId cid,
		   int options, uint32 spec_token)
{
	bool		shouldFree;
	HeapTuple	tup = ExecFetchSlotHeapTuple(slot, true, &shouldFree);
	HeapTuple	totup;
	MinimalTuple mtup;
	KvlsmRowRecord rr;
	uint64		rowid;
	TransactionId xid = GetCurrentTransactionId();

	totup = prepare_tuple(rel, tup, NULL, options);
	mtup = minimal_tuple_from_heap_tuple(totup);

	rowid = kvlsm_alloc_rowids(rel, sh, 1);
	check_rowid(rel, rowid);

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
	put_row_record(rel, sh, rowid, &rr, mtup);
	pfree(mtup);

	kvlsm_rowid_to_tid(rowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	if (!shouldFree)
		set_written_header(tup, &slot->tts_tid, xid, cid, InvalidTransactionId);
	if (totup != tup)
		heap_freetuple(totup);
	if (shouldFree)
		heap_freetuple(tup);
	pgstat_count_heap_insert(rel, 1);
}

static void
kvlsm_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
				   int options, BulkInsertState bistate)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	insert_one(rel, sh, slot, cid, options, 0);
	kvlsm_maybe_flush(rel, sh);
}

static void
kvlsm_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							   int options, BulkInsertState bistate,
							   uint32 specToken)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	insert_one(rel, sh, slot, cid, options, specToken);
}

static void
kvlsm_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								 uint32 specToken, bool succeeded)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	KvlsmRowRecord rr;
	uint64		rowid = kvlsm_tid_to_rowid(&slot->tts_tid);

	if (succeeded)
	{
		/*
		 * Clear the token, as heap_finish_speculative does: waiters then
		 * wait for the inserting transaction instead of the insertion.
		 */
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_CONFIRM;
		rr.xid = GetCurrentTransactionId();
		put_row_record(rel, sh, rowid, &rr, NULL);
	}
	else
	{
		/* make the row never-existing for everyone, as heap_abort_speculative */
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_KILL;
		rr.xid = GetCurrentTransactionId();
		put_row_record(rel, sh, rowid, &rr, NULL);
	}
	kvlsm_maybe_flush(rel, sh);
}

static void
kvlsm_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
				   CommandId cid, int options, BulkInsertState bistate)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	int			i;

	for (i = 0; i < ntuples; i++)
		insert_one(rel, sh, slots[i], cid, options, 0);
	kvlsm_maybe_flush(rel, sh);
}

/*
 * Check-and-append for one row id: the heart of DELETE, UPDATE and row
 * locks.  Reads the row (SSTables first, outside the stripe lock), then
 * under the stripe lock re-reads the memtable part and, when nothing
 * conflicts, appends 'rec'.  Conflicts with running transactions are waited
 * for outside the stripe lock, then everything is checked again.
 */
typedef enum ModifyKind
{
	MODIFY_DELETE,
	MODIFY_LOCK
} ModifyKind;

static TM_Result
modify_row(Relation rel, KvlsmShared *sh, uint64 rowid, ModifyKind kind,
		   LockTupleMode mode, KvlsmRowRecord *rec, CommandId cid,
		   Snapshot crosscheck, LockWaitPolicy wait_policy, TM_FailureData *tmfd,
		   KvlsmRowState *st_out, MemoryContext cxt)
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
		uint64		epoch;
		LWLock	   *stripe;
		KvlsmRowState st;
		KvlsmRecord *all;
		int			nall = 0;
		int			i;
		TransactionId wait_xid = InvalidTransactionId;
		int			j;
		bool		held_by_me;

		CHECK_FOR_INTERRUPTS();
		epoch = kvlsm_version_epoch(sh);
		fetch_row_records(rel, sh, rowid, &set);

		stripe = stripe_for(sh, rowid);
		LWLockAcquire(stripe, LW_EXCLUSIVE);
		if (kvlsm_version_epoch(sh) != epoch)
		{
			LWLockRelease(stripe);
			continue;
		}
		kvlsm_recset_reset(&memset_);
		kvlsm_memtable_records(sh, &kvlsm_bytewise_keyops, key, 8, &memset_);
		if (kvlsm_version_epoch(sh) != epoch)
		{
			LWLockRelease(stripe);
			continue;
		}

		/* memtable records (fresh) + SSTable records (from before) */
		all = MemoryContextAlloc(scratch2, sizeof(KvlsmRecord) * (set.n + memset_.n + 1));
		for (i = 0, j = 0; i < memset_.n || j < set.n;)
		{
			KvlsmRecord *r;

			if (j < set.n && set.recs[j].in_memtable)
			{
				j++;
				continue;
			}
			if (i < memset_.n && (j >= set.n || memset_.recs[i].seq > set.recs[j].seq))
				r = &memset_.recs[i++];
			else
				r = &set.recs[j++];
			all[nall++] = *r;
		}
		kvlsm_resolve_row(all, nall, &st);

		result = TM_Ok;
		if (!st.exists || st.killed || st.xmin_status == KVLSM_XID_ABORTED)
			result = TM_Invisible;
		else if (st.xmin_status == KVLSM_XID_CURRENT && st.cmin >= cid)
			result = TM_Invisible;
		else if (st.deleted)
		{
			if (st.xmax_status == KVLSM_XID_CURRENT)
			{
				if (kind == MODIFY_LOCK && st.cmax < cid)
					result = TM_Invisible;
				else if (st.cmax >= cid)
				{
					result = TM_SelfModified;
					tmfd->cmax = st.cmax;
				}
				else
					result = TM_Invisible;
				tmfd->xmax = st.xmax;
				if (st.is_update)
					kvlsm_rowid_to_tid(st.successor, &tmfd->ctid);
				else
					kvlsm_rowid_to_tid(rowid, &tmfd->ctid);
			}
			else if (st.xmax_status == KVLSM_XID_IN_PROGRESS)
			{
				LockTupleMode held = (!st.is_update || st.keys_updated) ?
					LockTupleExclusive : LockTupleNoKeyExclusive;

				if (kind == MODIFY_LOCK && !kvlsm_lock_modes_conflict(mode, held))
					result = TM_Ok;
				else
				{
					result = TM_BeingModified;
					wait_xid = st.xmax;
				}
			}
			else if (kind == MODIFY_LOCK && mode == LockTupleKeyShare &&
					 st.is_update && !st.keys_updated && !st.moved)
			{
				/*
				 * KEY SHARE of a row whose committed update left the key
				 * alone: the key this lock protects still exists, so lock
				 * this version (kvlsm_tuple_lock then locks the newer
				 * ones), as heap_lock_tuple does.
				 */
				result = TM_Ok;
			}
			else
			{
				result = (st.is_update || st.moved) ? TM_Updated : TM_Deleted;
				tmfd->xmax = st.xmax;
				tmfd->cmax = InvalidCommandId;
				if (st.moved)
					ItemPointerSetMovedPartitions(&tmfd->ctid);	/* as heap */
				else if (st.is_update)
					kvlsm_rowid_to_tid(st.successor, &tmfd->ctid);
				else
					kvlsm_rowid_to_tid(rowid, &tmfd->ctid);
			}
		}
		if (result == TM_Ok)
		{
			for (i = 0; i < st.nlockers; i++)
			{
				if (st.lockers[i].status == KVLSM_XID_CURRENT)
					continue;
				if (kvlsm_lock_modes_conflict(mode, st.lockers[i].mode))
				{
					result = TM_BeingModified;
					wait_xid = st.lockers[i].xid;
					break;
				}
			}
		}
		if (result == TM_Ok && kind == MODIFY_LOCK)
		{
			/* already hold an equal or stronger lock? then nothing to add */
			for (i = 0; i < st.nlockers; i++)
				if (st.lockers[i].status == KVLSM_XID_CURRENT &&
					st.lockers[i].mode >= mode)
					break;
			if (i < st.nlockers)
				rec = NULL;
			if (st.deleted && st.xmax_status == KVLSM_XID_CURRENT)
				rec = NULL;
		}
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
			put_row_record(rel, sh, rowid, rec, NULL);
		}
		LWLockRelease(stripe);

		if (result != TM_BeingModified)
		{
			if (st_out)
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				*st_out = st;
				if (st.tuple)
				{
					char	   *t = palloc(st.tuplen);

					memcpy(t, st.tuple, st.tuplen);
					st_out->tuple = t;
				}
				MemoryContextSwitchTo(old);
			}
			break;
		}

		/* wait for the conflicting transaction, outside the stripe lock */
		if (wait_policy == LockWaitSkip)
		{
			result = TM_WouldBlock;
			break;
		}
		/*
		 * Queue on the heavyweight tuple lock for fairness, as heap does, but
		 * not when this transaction already holds a lock on the row: an
		 * upgrade that waited behind a queued waiter (who waits for us)
		 * would deadlock (heap_lock_tuple's skip_tuple_lock).
		 */
		held_by_me = false;
		for (j = 0; j < st.nlockers; j++)
			if (st.lockers[j].status == KVLSM_XID_CURRENT)
				held_by_me = true;
		if (!have_tuple_lock && !held_by_me)
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
			have_tuple_lock = true;
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

static TM_Result
kvlsm_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				   Snapshot snapshot, Snapshot crosscheck, bool wait,
				   TM_FailureData *tmfd, bool changingPart)
{
	KvlsmShared *sh = kvlsm_attach(rel);
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
	result = modify_row(rel, sh, kvlsm_tid_to_rowid(tid), MODIFY_DELETE,
						LockTupleExclusive, &rr, cid, crosscheck,
						wait ? LockWaitBlock : LockWaitError, tmfd,
						&oldst, CurrentMemoryContext);
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
			oldtup = row_to_heaptuple(rel, &oldst);
			if (HeapTupleHasExternal(oldtup))
				heap_toast_delete(rel, oldtup, false);
			heap_freetuple(oldtup);
		}
		pgstat_count_heap_delete(rel);
		kvlsm_maybe_flush(rel, sh);
	}
	return result;
}

static TM_Result
kvlsm_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				   CommandId cid, Snapshot snapshot, Snapshot crosscheck,
				   bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				   bool *update_indexes)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	KvlsmRowRecord rr;
	TM_Result	result;
	uint64		oldrowid = kvlsm_tid_to_rowid(otid);
	uint64		newrowid;
	bool		shouldFree;
	HeapTuple	newtup;
	HeapTuple	totup;
	HeapTuple	oldtup = NULL;
	MinimalTuple mtup;
	KvlsmRowState oldst;
	Bitmapset  *keyattrs;
	bool		key_changed = false;
	KvlsmRowRecord ins;
	int			i;

	newtup = ExecFetchSlotHeapTuple(slot, true, &shouldFree);

	/* does the update change a key column (FK-referenced or unique)? */
	keyattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	if (!bms_is_empty(keyattrs))
	{
		/* compare with the current version the caller fetched */
		TupleTableSlot *oslot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
		SnapshotData SnapshotAnyLocal = *SnapshotAny;

		if (table_tuple_fetch_row_version(rel, otid, &SnapshotAnyLocal, oslot))
		{
			int			attr = -1;

			slot_getallattrs(oslot);
			slot_getallattrs(slot);
			while ((attr = bms_next_member(keyattrs, attr)) >= 0)
			{
				AttrNumber	attno = attr + FirstLowInvalidHeapAttributeNumber;
				Form_pg_attribute att;

				if (attno <= 0)
					continue;
				att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
				if (oslot->tts_isnull[attno - 1] != slot->tts_isnull[attno - 1] ||
					(!slot->tts_isnull[attno - 1] &&
					 !datumIsEqual(oslot->tts_values[attno - 1],
								   slot->tts_values[attno - 1],
								   att->attbyval, att->attlen)))
				{
					key_changed = true;
					break;
				}
			}
			oldtup = ExecCopySlotHeapTuple(oslot);
		}
		ExecDropSingleTupleTableSlot(oslot);
	}
	*lockmode = key_changed ? LockTupleExclusive : LockTupleNoKeyExclusive;

	newrowid = kvlsm_alloc_rowids(rel, sh, 1);
	check_rowid(rel, newrowid);

	memset(&rr, 0, sizeof(rr));
	rr.kind = KVLSM_REC_DELETE;
	rr.flags = KVLSM_DEL_UPDATE | (key_changed ? KVLSM_DEL_KEYS_UPDATED : 0);
	if (toast_deferred(rel))
		rr.flags |= KVLSM_DEL_TOAST_DEFERRED;
	rr.successor = newrowid;
	CheckForSerializableConflictIn(rel, otid, ItemPointerGetBlockNumber(otid));
	result = modify_row(rel, sh, oldrowid, MODIFY_DELETE, *lockmode, &rr, cid,
						crosscheck, wait ? LockWaitBlock : LockWaitError, tmfd,
						&oldst, CurrentMemoryContext);
	if (result != TM_Ok)
	{
		if (shouldFree)
			heap_freetuple(newtup);
		return result;
	}

	if (oldtup == NULL && oldst.tuple != NULL)
	{
		oldst.rowid = oldrowid;
		oldtup = row_to_heaptuple(rel, &oldst);
	}

	/*
	 * With deferred cleanup the new version gets TOAST values of its own
	 * (none shared with the old one, none of the old one's deleted), so the
	 * compaction that drops the old version can delete all of its values.
	 */
	totup = prepare_tuple(rel, newtup,
						  (rr.flags & KVLSM_DEL_TOAST_DEFERRED) ? NULL : oldtup, 0);
	mtup = minimal_tuple_from_heap_tuple(totup);
	memset(&ins, 0, sizeof(ins));
	ins.kind = KVLSM_REC_INSERT;
	ins.xid = GetCurrentTransactionId();
	ins.cid = cid;
	put_row_record(rel, sh, newrowid, &ins, mtup);
	pfree(mtup);

	/*
	 * Carry the locks of running KEY SHARE lockers to the new version.  The
	 * old row is read again now that the new version exists: a locker that
	 * locked the old version after our delete record either finds the new
	 * version itself (kvlsm_tuple_lock follows the chain) or is seen here.
	 */
	{
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm carry locks",
												  ALLOCSET_SMALL_SIZES);
		KvlsmRecordSet set;

		kvlsm_recset_init(&set, cxt);
		fetch_row_records(rel, sh, oldrowid, &set);
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
		put_row_record(rel, sh, newrowid, &lr, NULL);
	}

	kvlsm_rowid_to_tid(newrowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	if (!shouldFree)
	{
		TransactionId locker = InvalidTransactionId;

		for (i = 0; i < oldst.nlockers; i++)
			if (oldst.lockers[i].status == KVLSM_XID_CURRENT)
				locker = ins.xid;
		set_written_header(newtup, &slot->tts_tid, ins.xid, cid, locker);
	}
	*update_indexes = true;
	if (totup != newtup)
		heap_freetuple(totup);
	if (shouldFree)
		heap_freetuple(newtup);
	pgstat_count_heap_update(rel, false);
	kvlsm_maybe_flush(rel, sh);
	return TM_Ok;
}

static TM_Result
kvlsm_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				 TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				 LockWaitPolicy wait_policy, uint8 flags, TM_FailureData *tmfd)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	KvlsmRowRecord rr;
	TM_Result	result;
	ItemPointerData cur = *tid;
	KvlsmRowState st;

	tmfd->traversed = false;
restart:
	for (;;)
	{
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_LOCK;
		rr.lockmode = mode;
		result = modify_row(rel, sh, kvlsm_tid_to_rowid(&cur), MODIFY_LOCK, mode,
							&rr, cid, InvalidSnapshot, wait_policy, tmfd,
							&st, CurrentMemoryContext);
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			ItemPointerIndicatesMovedPartitions(&tmfd->ctid))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			!ItemPointerEquals(&tmfd->ctid, &cur))
		{
			/* follow the update chain to the newest version */
			cur = tmfd->ctid;
			tmfd->traversed = true;
			continue;
		}
		if (tmfd->traversed && st.exists && !st.killed &&
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
			if (st.deleted && st.xmax_status == KVLSM_XID_CURRENT)
			{
				if (st.is_update && !st.moved)
				{
					kvlsm_rowid_to_tid(st.successor, &cur);
					continue;
				}
				result = TM_Deleted;
				tmfd->xmax = st.xmax;
				tmfd->cmax = InvalidCommandId;
				tmfd->ctid = cur;
				break;
			}
			if (!st.deleted && st.xmin_status == KVLSM_XID_CURRENT &&
				st.cmin >= cid)
			{
				result = TM_SelfModified;
				tmfd->xmax = st.xmin;
				tmfd->cmax = st.cmin;
				tmfd->ctid = cur;
				break;
			}
		}
		break;
	}
	/* as heap does, tell the caller which version was locked */
	*tid = cur;

	/*
	 * A lock that does not conflict with a running update of the row (KEY
	 * SHARE against a non-key update) must hold on every newer version too,
	 * as heap_lock_updated_tuple does: the updater already carried forward
	 * the locks that existed when it updated, not this one.  Without this a
	 * foreign key check could let the referenced row's new version be
	 * deleted.
	 */
	if (result == TM_Ok && st.deleted && st.is_update && !st.moved &&
		(st.xmax_status == KVLSM_XID_IN_PROGRESS ||
		 (st.xmax_status == KVLSM_XID_COMMITTED && mode == LockTupleKeyShare)))
	{
		uint64		next = st.successor;
		int			guard = 0;

		for (;;)
		{
			KvlsmRowState nst;
			TM_FailureData ntmfd;
			TM_Result	nres;

			CHECK_FOR_INTERRUPTS();
			memset(&rr, 0, sizeof(rr));
			rr.kind = KVLSM_REC_LOCK;
			rr.lockmode = mode;
			nres = modify_row(rel, sh, next, MODIFY_LOCK, mode, &rr, cid,
							  InvalidSnapshot, wait_policy, &ntmfd, &nst,
							  CurrentMemoryContext);
			if (nres == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
			{
				/* a newer version changed the key: lock the newest, as heap */
				if (ItemPointerIndicatesMovedPartitions(&ntmfd.ctid))
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
				cur = ntmfd.ctid;
				tmfd->traversed = true;
				goto restart;
			}
			if (nres == TM_Updated || nres == TM_Deleted)
			{
				/* a newer version lost the key or the row: the lock fails */
				result = nres;
				*tmfd = ntmfd;
				break;
			}
			if (nres != TM_Ok || !nst.deleted || !nst.is_update || nst.moved ||
				!(nst.xmax_status == KVLSM_XID_IN_PROGRESS ||
				  (nst.xmax_status == KVLSM_XID_COMMITTED && mode == LockTupleKeyShare)) ||
				++guard > 1000)
				break;
			next = nst.successor;
		}
	}

	if (result == TM_Ok || result == TM_SelfModified ||
		(result == TM_Invisible && st.exists))
	{
		if (st.exists && st.tuple != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);

			st.rowid = kvlsm_tid_to_rowid(&cur);
			store_row(rel, &st, slot);
			MemoryContextSwitchTo(old);
		}
	}
	if (result == TM_Invisible && st.exists && st.xmin_status == KVLSM_XID_CURRENT)
	{
		/* inserted by this command: as heap, report it as invisible */
		tmfd->xmax = st.xmin;
		tmfd->cmax = st.cmin;
	}
	return result;
}

static void
kvlsm_finish_bulk_insert(Relation rel, int options)
{
}

/* ------------------------------------------------------------------------
 * Non-modifying row operations
 * ------------------------------------------------------------------------
 */

static bool
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
	fetch_row_records(rel, sh, kvlsm_tid_to_rowid(tid), &set);
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

		store_row(rel, &st, slot);
		MemoryContextSwitchTo(old);
	}
	MemoryContextDelete(cxt);
	return found;
}

static bool
kvlsm_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	return ItemPointerIsValid(tid);
}

static void
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
		fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&cur), &set);
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

static bool
kvlsm_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm satisfies",
											  ALLOCSET_SMALL_SIZES);
	KvlsmRecordSet set;
	KvlsmRowState st;
	bool		res;

	kvlsm_recset_init(&set, cxt);
	fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&slot->tts_tid), &set);
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
static TransactionId
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
		fetch_row_records(rel, sh, kvlsm_tid_to_rowid(&d->tid), &set);
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

/* ------------------------------------------------------------------------
 * DDL callbacks
 * ------------------------------------------------------------------------
 */

static void
kvlsm_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								char persistence, TransactionId *freezeXid,
								MultiXactId *minmulti)
{
	SMgrRelation srel;

	/*
	 * Like heap, WAL-log the new file's first pages only when its changes
	 * will be WAL-logged at all.  With wal_level = minimal a filenode created
	 * in this transaction is synced (or logged whole) at commit instead; an
	 * early image of the metapage in WAL would be replayed over the final
	 * one after a crash.
	 */
	bool		needs_wal = (persistence == RELPERSISTENCE_PERMANENT && XLogIsNeeded());

	/* TRUNCATE / rewrite: the old filenode's shared state goes at commit */
	if (!RelFileNodeEquals(rel->rd_node, *newrnode))
		kvlsm_schedule_release(rel, NULL, true);
	/* and the new one's, if this transaction rolls back */
	kvlsm_schedule_release(rel, newrnode, false);

	*freezeXid = RecentXmin;
	/* kvlsm creates no multixacts */
	*minmulti = InvalidMultiXactId;

	srel = RelationCreateStorage(*newrnode, persistence, true);
	kvlsm_init_metapage_and_manifest(rel, srel, MAIN_FORKNUM, KVLSM_KIND_TABLE,
									 needs_wal);
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		/* the init fork holds a fresh metapage; reset copies it over main */
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		kvlsm_init_metapage_and_manifest(rel, srel, INIT_FORKNUM,
										 KVLSM_KIND_TABLE, true);
	}
	smgrclose(srel);
	kvlsm_forget(rel);
}

static void
kvlsm_relation_nontransactional_truncate(Relation rel)
{
	/*
	 * TRUNCATE of a table created in the same transaction: start the file
	 * over with a new incarnation, so stale shared state is not reused.
	 */
	SMgrRelation srel;

	RelationTruncate(rel, 0);
	srel = RelationGetSmgr(rel);
	kvlsm_init_metapage_and_manifest(rel, srel, MAIN_FORKNUM, KVLSM_KIND_TABLE,
									 RelationNeedsWAL(rel));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED &&
		smgrexists(srel, INIT_FORKNUM))
	{
		smgrtruncate(srel, (ForkNumber[]) {INIT_FORKNUM}, 1, (BlockNumber[]) {0});
		kvlsm_init_metapage_and_manifest(rel, srel, INIT_FORKNUM,
										 KVLSM_KIND_TABLE, true);
	}
	kvlsm_forget(rel);
}

/*
 * ALTER TABLE ... SET TABLESPACE: copy the file page by page, as heap does.
 * Everything an LSM holds is on its pages (metapage, manifest, SSTables,
 * and the log pages that the memtable is rebuilt from), so the copy is a
 * complete LSM: the first backend to use the new filenode loads it as after
 * a restart.  This transaction's records still in backend memory are
 * written to the log first, and dirty buffers reach the file before it is
 * read; the AccessExclusiveLock keeps writers and workers out meanwhile.
 */
static void
kvlsm_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	SMgrRelation dstrel;
	char		persistence = rel->rd_rel->relpersistence;
	ForkNumber	fork;

	kvlsm_log_write_all(rel, kvlsm_attach(rel));
	FlushRelationBuffers(rel);

	/* the old filenode's shared state goes at commit, the new one's on abort */
	kvlsm_schedule_release(rel, NULL, true);
	kvlsm_schedule_release(rel, newrnode, false);

	dstrel = RelationCreateStorage(*newrnode, persistence, true);
	RelationCopyStorage(RelationGetSmgr(rel), dstrel, MAIN_FORKNUM, persistence);
	for (fork = MAIN_FORKNUM + 1; fork <= MAX_FORKNUM; fork++)
	{
		if (!smgrexists(RelationGetSmgr(rel), fork))
			continue;
		smgrcreate(dstrel, fork, false);
		/* as heap: the init fork of an unlogged table is WAL-logged too */
		if (persistence == RELPERSISTENCE_PERMANENT ||
			(persistence == RELPERSISTENCE_UNLOGGED && fork == INIT_FORKNUM))
			log_smgrcreate(newrnode, fork);
		RelationCopyStorage(RelationGetSmgr(rel), dstrel, fork, persistence);
	}
	RelationDropStorage(rel);
	smgrclose(dstrel);
}

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
		HeapTuple	newtup = prepare_tuple(NewTable, oldtup, NULL, 0);

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
	put_row_record(NewTable, newsh, rowid, &rr, mtup);
	if (m->deleted)
	{
		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_DELETE;
		rr.xid = m->xmax;
		rr.cid = m->cmax;
		note_kept_xid(oldest_kept, rr.xid);
		put_row_record(NewTable, newsh, rowid, &rr, NULL);
	}
	pfree(mtup);
	kvlsm_maybe_flush(NewTable, newsh);
}

static void
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
	while (scan_next_row(kscan, &st))
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

		memset(&m, 0, sizeof(m));
		/* freeze only what no snapshot can still see as in progress */
		m.xmin = (st.xmin_status == KVLSM_XID_COMMITTED &&
				  TransactionIdPrecedes(st.xmin, OldestXmin)) ?
			FrozenTransactionId : st.xmin;
		m.cmin = st.cmin;
		m.expires = st.expires;
		m.deleted = st.deleted && st.xmax_status != KVLSM_XID_ABORTED;
		m.xmax = st.xmax;
		m.cmax = st.cmax;
		oldtup = row_to_heaptuple(OldTable, &st);
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
	{
		HeapTuple	tup;

		tuplesort_performsort(sorter);
		while ((tup = tuplesort_getheaptuple(sorter, true)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			rewrite_put_row(NewTable, newsh, tup,
							&metas[kvlsm_tid_to_rowid(&tup->t_self)], &oldest_kept);
		}
		tuplesort_end(sorter);
		if (metas)
			pfree(metas);
	}

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

static IndexVacuumInfo
vacuum_info(Relation index, double live, bool estimated, BufferAccessStrategy bstrategy)
{
	IndexVacuumInfo ivinfo;

	ivinfo.index = index;
	ivinfo.analyze_only = false;
	ivinfo.report_progress = false;
	ivinfo.estimated_count = estimated;
	ivinfo.message_level = DEBUG2;
	ivinfo.num_heap_tuples = live;
	ivinfo.strategy = bstrategy;
	return ivinfo;
}

/* remove the index entries of 'dead' from every index, then forget them */
static void
vacuum_indexes(Relation rel, Relation *indrels, int nindexes,
			   IndexBulkDeleteResult **stats, VacDeadItems *dead,
			   double live, BufferAccessStrategy bstrategy)
{
	int			i;

	for (i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo = vacuum_info(indrels[i], live, true, bstrategy);

		stats[i] = vac_bulkdel_one_index(&ivinfo, stats[i], dead);
	}

	/*
	 * No index points at these rows any more: a PURGE record lets
	 * compaction drop them (kvlsm_table_gc).  Losing one in a crash only
	 * means the next VACUUM finds the row again.
	 */
	{
		KvlsmShared *sh = kvlsm_attach(rel);
		KvlsmRowRecord rr;

		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_PURGE;
		rr.xid = InvalidTransactionId;
		for (i = 0; i < dead->num_items; i++)
		{
			put_row_record(rel, sh, kvlsm_tid_to_rowid(&dead->items[i]), &rr, NULL);
			if ((i & 255) == 255)
				kvlsm_maybe_flush(rel, sh);
		}
		kvlsm_maybe_flush(rel, sh);
	}
	dead->num_items = 0;
}

/*
 * VACUUM: find row ids dead to everyone (aborted or killed inserts, and
 * deletes older than every snapshot) and hand them to every index's
 * ambulkdelete, as lazy vacuum does with dead heap TIDs; report live and
 * dead counts so autovacuum's thresholds work.  Row ids are never reused,
 * so an index entry that survives can only point at a missing row, never
 * at a wrong one.  The versions themselves are dropped by compaction.
 *
 * Dead rows are handed to the indexes once and then marked purged, so
 * that compaction may drop them.
 */
static void
kvlsm_relation_vacuum(Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy)
{
	TableScanDesc scan;
	KvlsmRowState st;
	double		live = 0,
				dead = 0;
	BlockNumber nblocks;
	GlobalVisState *vis = GlobalVisTestFor(rel);
	Relation   *indrels = NULL;
	int			nindexes = 0;
	IndexBulkDeleteResult **stats = NULL;
	VacDeadItems *dead_items = NULL;
	bool		do_index = params->index_cleanup != VACOPTVALUE_DISABLED;
	int			i;
	TransactionId OldestXmin;
	MultiXactId OldestMxact;
	TransactionId FreezeLimit;
	MultiXactId MultiXactCutoff;
	TransactionId new_frozen_xid = InvalidTransactionId;
	TransactionId latest_removed = InvalidTransactionId;
	TimestampTz ttl_horizon = kvlsm_ttl_horizon();
	TimestampTz ttl_max_expired = 0;
	MultiXactId new_min_multi = InvalidMultiXactId;
	bool		aggressive;

	aggressive = vacuum_set_xid_limits(rel, params->freeze_min_age,
									   params->freeze_table_age,
									   params->multixact_freeze_min_age,
									   params->multixact_freeze_table_age,
									   &OldestXmin, &OldestMxact,
									   &FreezeLimit, &MultiXactCutoff);

	/*
	 * Named snapshots: nothing one may see as in progress is frozen, so
	 * relfrozenxid never passes the oldest one's xmin and the commit log
	 * it needs is kept.
	 */
	{
		TransactionId pin = kvlsm_snapshot_pin(NULL);

		if (TransactionIdIsValid(pin) && TransactionIdPrecedes(pin, FreezeLimit))
			FreezeLimit = pin;
	}

	if (do_index)
	{
		vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indrels);
		if (nindexes > 0)
		{
			int			max_items = (int) Min((Size) maintenance_work_mem * 1024L / sizeof(ItemPointerData),
											  (Size) MaxAllocSize / sizeof(ItemPointerData) - 16);

			max_items = Max(max_items, 1024);
			dead_items = palloc(vac_max_items_to_alloc_size(max_items));
			dead_items->max_items = max_items;
			dead_items->num_items = 0;
			stats = palloc0(sizeof(IndexBulkDeleteResult *) * nindexes);
		}
	}

	scan = kvlsm_scan_begin(rel, SnapshotAny, 0, NULL, NULL, SO_TYPE_SEQSCAN);
	while (scan_next_row((KvlsmScanDesc) scan, &st))
	{
		bool		is_dead = false;

		CHECK_FOR_INTERRUPTS();
		vacuum_delay_point();
		if (st.killed || st.xmin_status == KVLSM_XID_ABORTED)
			is_dead = true;
		else if (st.expires != 0 && st.xmin_status == KVLSM_XID_COMMITTED &&
				 st.expires <= ttl_horizon)
		{
			/* past its TTL for every running transaction */
			is_dead = true;
			dead++;
			ttl_max_expired = Max(ttl_max_expired, st.expires);
		}
		else if (st.deleted && st.xmax_status == KVLSM_XID_COMMITTED &&
				 kvlsm_xid_removable(vis, st.xmax))
		{
			is_dead = true;
			dead++;
			if (!st.purged && TransactionIdIsNormal(st.xmax) &&
				(!TransactionIdIsValid(latest_removed) ||
				 TransactionIdFollows(st.xmax, latest_removed)))
				latest_removed = st.xmax;
		}
		else if (!st.deleted || st.xmax_status == KVLSM_XID_ABORTED)
			live++;

		/* a purged row has no index entries left: nothing to do again */
		if (is_dead && dead_items != NULL && !st.purged)
		{
			kvlsm_rowid_to_tid(st.rowid, &dead_items->items[dead_items->num_items++]);
			if (dead_items->num_items >= dead_items->max_items)
			{
				kvlsm_log_recovery_conflict(rel, kvlsm_conflict_xid(latest_removed, ttl_max_expired));
				vacuum_indexes(rel, indrels, nindexes, stats, dead_items, live, bstrategy);
			}
		}
	}
	kvlsm_scan_end(scan);

	if (dead_items != NULL)
	{
		if (dead_items->num_items > 0)
		{
			/* as heap's prune records do: standby snapshots that need the rows go first */
			kvlsm_log_recovery_conflict(rel, kvlsm_conflict_xid(latest_removed, ttl_max_expired));
			vacuum_indexes(rel, indrels, nindexes, stats, dead_items, live, bstrategy);
		}
		for (i = 0; i < nindexes; i++)
		{
			IndexVacuumInfo ivinfo = vacuum_info(indrels[i], live, false, bstrategy);

			stats[i] = vac_cleanup_one_index(&ivinfo, stats[i]);
			if (stats[i] && !stats[i]->estimated_count)
				vac_update_relstats(indrels[i], stats[i]->num_pages,
									stats[i]->num_index_tuples, 0, false,
									InvalidTransactionId, InvalidMultiXactId,
									NULL, NULL, false);
		}
	}
	if (indrels != NULL)
		vac_close_indexes(nindexes, indrels, NoLock);

	/*
	 * An aggressive VACUUM (VACUUM FREEZE, or relfrozenxid older than
	 * vacuum_freeze_table_age, as anti-wraparound autovacuum runs) flushes
	 * and compacts the whole relation, freezing committed xids older than
	 * the freeze limit, and moves relfrozenxid to the oldest xid left.
	 * kvlsm stores no multixacts, so relminmxid moves to the cutoff.
	 */
	if (aggressive)
	{
		TransactionId oldest;

		kvlsm_flush_all(rel);
		oldest = kvlsm_compact_freeze(rel, FreezeLimit);
		new_frozen_xid = FreezeLimit;
		if (TransactionIdIsValid(oldest) && TransactionIdPrecedes(oldest, new_frozen_xid))
			new_frozen_xid = oldest;
		new_min_multi = MultiXactCutoff;
	}

	/*
	 * The file shrinks only here, as heap's does: a free extent that
	 * compaction left at its end goes back to the file system.
	 */
	if (params->truncate != VACOPTVALUE_DISABLED)
		(void) kvlsm_shrink(rel);

	nblocks = RelationGetNumberOfBlocks(rel);
	vac_update_relstats(rel, nblocks, live, 0, nindexes > 0 || rel->rd_rel->relhasindex,
						new_frozen_xid, new_min_multi,
						NULL, NULL, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 live, dead);
}

/*
 * ANALYZE samples physical blocks 0..nblocks-1.  Row ids are spread over
 * them evenly: physical block b stands for the row ids
 * [b*H/N, (b+1)*H/N) where H is the row id high-water mark, so the sample
 * is uniform over rows and acquire_sample_rows' density estimate holds.
 */
static bool
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

static bool
kvlsm_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							  double *liverows, double *deadrows,
							  TupleTableSlot *slot)
{
	KvlsmScanDesc scan = (KvlsmScanDesc) sscan;
	KvlsmRowState st;

	while (scan_next_row(scan, &st))
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
		store_row(sscan->rs_rd, &st, slot);
		return true;
	}
	ExecClearTuple(slot);
	return false;
}

static double
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

	while (scan_next_row((KvlsmScanDesc) scan, &st))
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
		store_row(tableRelation, &st, slot);
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
static void
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
	while (scan_next_row((KvlsmScanDesc) scan, &st))
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
		store_row(tableRelation, &st, slot);
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

/*
 * The main fork always exists (created with the relation), so it is sized
 * without smgrexists(): mdexists() closes and reopens the file to notice an
 * unlink, and the planner sizes every kvlsm table of every query this way.
 */
static uint64
kvlsm_relation_size(Relation rel, ForkNumber forkNumber)
{
	uint64		nblocks = 0;

	if (forkNumber == MAIN_FORKNUM)
		nblocks = smgrnblocks(RelationGetSmgr(rel), MAIN_FORKNUM);
	else if (forkNumber == InvalidForkNumber)
	{
		int			i;

		for (i = 0; i < MAX_FORKNUM; i++)
			if (smgrexists(RelationGetSmgr(rel), i))
				nblocks += smgrnblocks(RelationGetSmgr(rel), i);
	}
	else if (smgrexists(RelationGetSmgr(rel), forkNumber))
		nblocks = smgrnblocks(RelationGetSmgr(rel), forkNumber);
	return nblocks * BLCKSZ;
}

static bool
kvlsm_relation_needs_toast_table(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (att->attlen < 0 && att->attstorage != TYPSTORAGE_PLAIN)
			return true;
	}
	return false;
}

static Oid
kvlsm_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

static void
kvlsm_estimate_rel_size(Relation rel, int32 *attr_widths, BlockNumber *pages,
						double *tuples, double *allvisfrac)
{
	BlockNumber curpages = RelationGetNumberOfBlocks(rel);
	double		reltuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;

	if (reltuples < 0 && curpages < 10 && !rel->rd_rel->relhassubclass)
	{
		/*
		 * Never vacuumed or analyzed and small: plan it as heap plans a new
		 * table (at least 10 pages, tuples from the column widths), not by
		 * the few entries it holds now.  Heap's reason holds here too (a
		 * cached plan must not assume a table that is being filled stays
		 * tiny), and planning new tables alike keeps SERIALIZABLE behaviour
		 * alike: an equality on a key of a fresh table is then an index
		 * scan that predicate-locks the rows it reads, where a seq scan
		 * would lock the whole relation and make every writer a conflict.
		 */
		table_block_relation_estimate_size(rel, attr_widths, pages, tuples,
										   allvisfrac,
										   MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData),
										   BLCKSZ - SizeOfPageHeaderData);
		*allvisfrac = 0;
		return;
	}

	*pages = curpages;
	*allvisfrac = 0;
	if (reltuples >= 0 && relpages > 0)
	{
		*tuples = rint(reltuples / relpages * curpages);
		return;
	}
	if (reltuples >= 0 && relpages == 0)
	{
		*tuples = reltuples;
		return;
	}
	/* never analyzed: count what the engine holds */
	{
		KvlsmShared copy;
		KvlsmSstDesc *ssts;
		uint64		n;
		uint32		i;

		ssts = kvlsm_snapshot_state(rel, &copy);
		n = copy.active.entries + copy.frozen.entries;
		for (i = 0; i < copy.nsst; i++)
			n += ssts[i].nentries;
		*tuples = (double) n;
		pfree(ssts);
	}
}

/*
 * TABLESAMPLE samples the blocks of the row's TIDs: block b holds the row
 * ids [b * KVLSM_ROWS_PER_BLOCK, (b + 1) * KVLSM_ROWS_PER_BLOCK), offsets 1
 * to KVLSM_ROWS_PER_BLOCK, up to the row id high-water mark.  SYSTEM picks
 * whole TID blocks, BERNOULLI single offsets, as on heap pages; which rows
 * a given seed picks differs from heap because the layout does.
 */
static bool
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

static bool
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
			if (!scan_next_row(scan, st))
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
			store_row(scan->base.rs_rd, st, slot);
			pgstat_count_heap_getnext(scan->base.rs_rd);
			return true;
		}
	}
	ExecClearTuple(slot);
	return false;
}

static const TableAmRoutine kvlsm_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = kvlsm_slot_callbacks,

	.scan_begin = kvlsm_scan_begin,
	.scan_end = kvlsm_scan_end,
	.scan_rescan = kvlsm_scan_rescan,
	.scan_getnextslot = kvlsm_scan_getnextslot,

	.scan_set_tidrange = kvlsm_scan_set_tidrange,
	.scan_getnextslot_tidrange = kvlsm_scan_getnextslot_tidrange,

	.parallelscan_estimate = kvlsm_parallelscan_estimate,
	.parallelscan_initialize = kvlsm_parallelscan_initialize,
	.parallelscan_reinitialize = kvlsm_parallelscan_reinitialize,

	.index_fetch_begin = kvlsm_index_fetch_begin,
	.index_fetch_reset = kvlsm_index_fetch_reset,
	.index_fetch_end = kvlsm_index_fetch_end,
	.index_fetch_tuple = kvlsm_index_fetch_tuple,

	.tuple_insert = kvlsm_tuple_insert,
	.tuple_insert_speculative = kvlsm_tuple_insert_speculative,
	.tuple_complete_speculative = kvlsm_tuple_complete_speculative,
	.multi_insert = kvlsm_multi_insert,
	.tuple_delete = kvlsm_tuple_delete,
	.tuple_update = kvlsm_tuple_update,
	.tuple_lock = kvlsm_tuple_lock,
	.finish_bulk_insert = kvlsm_finish_bulk_insert,

	.tuple_fetch_row_version = kvlsm_fetch_row_version,
	.tuple_get_latest_tid = kvlsm_get_latest_tid,
	.tuple_tid_valid = kvlsm_tuple_tid_valid,
	.tuple_satisfies_snapshot = kvlsm_tuple_satisfies_snapshot,
	.index_delete_tuples = kvlsm_index_delete_tuples,

	.relation_set_new_filenode = kvlsm_relation_set_new_filenode,
	.relation_nontransactional_truncate = kvlsm_relation_nontransactional_truncate,
	.relation_copy_data = kvlsm_relation_copy_data,
	.relation_copy_for_cluster = kvlsm_relation_copy_for_cluster,
	.relation_vacuum = kvlsm_relation_vacuum,
	.scan_analyze_next_block = kvlsm_scan_analyze_next_block,
	.scan_analyze_next_tuple = kvlsm_scan_analyze_next_tuple,
	.index_build_range_scan = kvlsm_index_build_range_scan,
	.index_validate_scan = kvlsm_index_validate_scan,

	.relation_size = kvlsm_relation_size,
	.relation_needs_toast_table = kvlsm_relation_needs_toast_table,
	.relation_toast_am = kvlsm_relation_toast_am,
	.relation_fetch_toast_slice = heap_fetch_toast_slice,

	.relation_estimate_size = kvlsm_estimate_rel_size,

	.scan_bitmap_next_block = NULL,
	.scan_bitmap_next_tuple = NULL,
	.scan_sample_next_block = kvlsm_scan_sample_next_block,
	.scan_sample_next_tuple = kvlsm_scan_sample_next_tuple
};

PG_FUNCTION_INFO_V1(kvlsm_tableam_handler);

Datum
kvlsm_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&kvlsm_methods);
}

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

typedef struct RetainedState
{
	Relation	rel;
	Snapshot	named;
	TimestampTz now;
	KvlsmRowState st;
	uint64		versions;
	uint64		bytes;
} RetainedState;

static void
count_retained(KvlsmRecord *recs, int n, void *arg)
{
	RetainedState *rs = arg;
	KvlsmRowState *st = &rs->st;
	int			pos = 0;

	while (pos < n)
	{
		int			start = pos;
		uint64		recbytes = 0;

		while (pos < n && memcmp(recs[pos].key, recs[start].key, 8) == 0)
			recbytes += sizeof(KvlsmRecordHeader) + 8 + recs[pos++].vallen;
		kvlsm_resolve_row(&recs[start], pos - start, st);
		if (!kvlsm_row_visible(st, rs->named))
			continue;
		if ((st->deleted && st->xmax_status == KVLSM_XID_COMMITTED &&
			 GlobalVisCheckRemovableXid(rs->rel, st->xmax)) ||
			(st->expires != 0 && st->expires <= rs->now))
		{
			rs->versions++;
			rs->bytes += recbytes;
		}
	}
}

/*
 * For kvlsm_snapshot_retained(): the row versions of 'rel' that 'named'
 * sees and that nothing but named snapshots keeps any more: deleted by a
 * transaction that every running snapshot sees as committed, or past their
 * TTL.  Counts them and their record bytes (a full pass over the table).
 */
void
kvlsm_table_retained(Relation rel, Snapshot named, uint64 *versions, uint64 *bytes)
{
	RetainedState *rs = palloc0(sizeof(RetainedState));

	rs->rel = rel;
	rs->named = named;
	rs->now = GetCurrentTimestamp();
	kvlsm_table_each_batch(rel, count_retained, rs);
	*versions = rs->versions;
	*bytes = rs->bytes;
	pfree(rs);
}
