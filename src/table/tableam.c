/*-------------------------------------------------------------------------
 *
 * tableam.c
 *	  The kvlsm table access method: its TableAmRoutine and the callbacks
 *	  that translate between the executor's slots and TIDs and the table's
 *	  row operations, as heapam_handler.c does for heapam.c.
 *
 * Every TableAmRoutine field is set: what kvlsm does not support raises
 * ERRCODE_FEATURE_NOT_SUPPORTED (a NULL callback would be a crash on a
 * release build).  Bitmap scan callbacks are left NULL on purpose: the
 * planner then never builds bitmap heap scans over kvlsm tables, whose TIDs
 * are virtual and would make PrefetchBuffer read past the file.
 *
 * The work is done elsewhere in src/table/ (kvlsm/table_internal.h lists
 * it): rowops.c (insert, delete, update, lock; modify.c is their
 * check-and-append under the row stripe locks), rowrecord.c (a row id's
 * records), scan.c and sample.c (scans), fetch.c (single rows by TID),
 * filenode.c and rewrite.c (new files, VACUUM FULL / CLUSTER), vacuum.c,
 * indexbuild.c and estimate.c.  The callbacks here take no lock and write
 * no WAL themselves; the row operations do, as their files describe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "executor/tuptable.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "kvlsm/table_internal.h"
#include "kvlsm/maintenance.h"

static const TableAmRoutine kvlsm_methods;

bool
kvlsm_is_kvlsm_relation(Relation rel)
{
	return rel->rd_tableam == &kvlsm_methods;
}

static const TupleTableSlotOps *
kvlsm_slot_callbacks(Relation relation)
{
	return &TTSOpsHeapTuple;
}

/* ------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------
 */

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

/*
 * Insert the slot's row.  The slot gets the new TID, and its tuple (when it
 * is the slot's own, not a copy) the header of the writing transaction.
 */
static void
insert_slot(Relation rel, KvlsmShared *sh, TupleTableSlot *slot, CommandId cid,
			int options, uint32 spec_token)
{
	bool		shouldFree;
	HeapTuple	tup = ExecFetchSlotHeapTuple(slot, true, &shouldFree);
	TransactionId xid = GetCurrentTransactionId();
	uint64		rowid;

	rowid = kvlsm_row_insert(rel, sh, tup, xid, cid, options, spec_token);

	kvlsm_rowid_to_tid(rowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	if (!shouldFree)
		set_written_header(tup, &slot->tts_tid, xid, cid, InvalidTransactionId);
	if (shouldFree)
		heap_freetuple(tup);
}

static void
kvlsm_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
				   int options, BulkInsertState bistate)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	insert_slot(rel, sh, slot, cid, options, 0);
	kvlsm_maybe_flush(rel, sh);
}

static void
kvlsm_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							   int options, BulkInsertState bistate,
							   uint32 specToken)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	insert_slot(rel, sh, slot, cid, options, specToken);
}

static void
kvlsm_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								 uint32 specToken, bool succeeded)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	kvlsm_row_finish_speculative(rel, sh, kvlsm_tid_to_rowid(&slot->tts_tid),
								 succeeded);
	kvlsm_maybe_flush(rel, sh);
}

static void
kvlsm_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
				   CommandId cid, int options, BulkInsertState bistate)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	int			i;

	for (i = 0; i < ntuples; i++)
		insert_slot(rel, sh, slots[i], cid, options, 0);
	kvlsm_maybe_flush(rel, sh);
}

static TM_Result
kvlsm_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				   Snapshot snapshot, Snapshot crosscheck, bool wait,
				   TM_FailureData *tmfd, bool changingPart)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	TM_Result	result;

	result = kvlsm_row_delete(rel, sh, tid, cid, crosscheck, wait, tmfd,
							  changingPart);
	if (result == TM_Ok)
		kvlsm_maybe_flush(rel, sh);
	return result;
}

/*
 * Does the update change a key column (FK-referenced or unique)?  Compares
 * the slot with the current version the caller fetched; *oldtup becomes a
 * copy of that version when the table has key columns and it was found.
 */
static bool
update_changes_key(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				   HeapTuple *oldtup)
{
	Bitmapset  *keyattrs;
	bool		key_changed = false;

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
			*oldtup = ExecCopySlotHeapTuple(oslot);
		}
		ExecDropSingleTupleTableSlot(oslot);
	}
	return key_changed;
}

static TM_Result
kvlsm_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				   CommandId cid, Snapshot snapshot, Snapshot crosscheck,
				   bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				   bool *update_indexes)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	TM_Result	result;
	uint64		newrowid;
	bool		shouldFree;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	bool		key_changed;
	bool		locked_by_us;

	newtup = ExecFetchSlotHeapTuple(slot, true, &shouldFree);

	key_changed = update_changes_key(rel, otid, slot, &oldtup);
	*lockmode = key_changed ? LockTupleExclusive : LockTupleNoKeyExclusive;

	result = kvlsm_row_update(rel, sh, otid, newtup, oldtup, cid, crosscheck,
							  wait, tmfd, *lockmode, key_changed, &newrowid,
							  &locked_by_us);
	if (result != TM_Ok)
	{
		if (shouldFree)
			heap_freetuple(newtup);
		return result;
	}

	kvlsm_rowid_to_tid(newrowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	if (!shouldFree)
	{
		TransactionId xid = GetCurrentTransactionId();

		set_written_header(newtup, &slot->tts_tid, xid, cid,
						   locked_by_us ? xid : InvalidTransactionId);
	}
	*update_indexes = true;
	if (shouldFree)
		heap_freetuple(newtup);
	kvlsm_maybe_flush(rel, sh);
	return TM_Ok;
}

static TM_Result
kvlsm_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				 TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				 LockWaitPolicy wait_policy, uint8 flags, TM_FailureData *tmfd)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	TM_Result	result;
	KvlsmRowState st;

	result = kvlsm_row_lock(rel, sh, tid, cid, mode, wait_policy, flags, tmfd,
							&st);

	/* the version locked (or found) into the slot */
	if (result == TM_Ok || result == TM_SelfModified ||
		(result == TM_Invisible && st.exists))
	{
		if (st.exists && st.tuple != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);

			st.rowid = kvlsm_tid_to_rowid(tid);
			kvlsm_store_row(rel, &st, slot);
			MemoryContextSwitchTo(old);
		}
	}
	return result;
}

static void
kvlsm_finish_bulk_insert(Relation rel, int options)
{
}

static bool
kvlsm_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	return ItemPointerIsValid(tid);
}

/* ------------------------------------------------------------------------
 * TOAST
 * ------------------------------------------------------------------------
 */

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

/* ------------------------------------------------------------------------
 * The routine
 * ------------------------------------------------------------------------
 */

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
