/*-------------------------------------------------------------------------
 *
 * indexam.c
 *	  The kvlsm_idx index access method callbacks.
 *
 * Entries go into the index's own LSM (same engine as kvlsm tables): an
 * insert is a memtable put, so random-key inserts never read or split
 * pages.  Scans merge memtables and SSTables in key order, take the newest
 * record of every (key, TID) (a bulk-delete tombstone hides the entry) and
 * test the scan keys with the operators' own functions.  The first index
 * column's bounds become a seek probe and a stop key.
 *
 * Unique indexes check and insert under a per-index heavyweight lock.
 * Not yet: index-only scans
 * (amcanreturn stays NULL until VACUUM interlocks with scans, see
 * DESIGN.md section 6), backward scans, mark/restore, bloom filters
 * hashed with the equality operator's hash opfamily (SSTables of indexes
 * are built without bloom filters for now: whole-key filters would need
 * the TID too).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/nbtree.h"
#include "access/reloptions.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "executor/tuptable.h"
#include "utils/snapmgr.h"
#include "access/genam.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/index_selfuncs.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "kvlsm/index.h"
#include "kvlsm/compaction.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/page.h"
#include "kvlsm/table.h"

#define INDEX_SCAN_BATCH 256

/* ------------------------------------------------------------------------
 * Build and insert
 * ------------------------------------------------------------------------
 */

static void check_unique_build(Relation heap, Relation index, IndexInfo *indexInfo,
							   KvlsmShared *sh, const KvlsmKeyOps *ops);

typedef struct BuildState
{
	KvlsmShared *sh;
	const KvlsmKeyOps *ops;
	double		indtuples;
	MemoryContext tmpcxt;
} BuildState;

static void
put_entry(Relation index, KvlsmShared *sh, const KvlsmKeyOps *ops,
		  Datum *values, bool *isnull, ItemPointer tid, uint16 flags)
{
	int			keylen;
	char	   *key = kvlsm_index_make_key(index, KVLSM_IKEY_ENTRY,
										   IndexRelationGetNumberOfKeyAttributes(index),
										   values, isnull, tid, &keylen);

	kvlsm_put(index, sh, ops, key, keylen, flags, NULL, 0);
	pfree(key);
}

static void
build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *state)
{
	BuildState *bs = (BuildState *) state;
	MemoryContext old = MemoryContextSwitchTo(bs->tmpcxt);

	put_entry(index, bs->sh, bs->ops, values, isnull, tid,
			  tupleIsAlive ? 0 : KVLSM_IREC_BUILD_DEAD);
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpcxt);
	bs->indtuples += 1;
	if (((uint64) bs->indtuples) % 1024 == 0)
		kvlsm_maybe_flush(index, bs->sh);
}

static IndexBuildResult *
kvlsm_idx_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	BuildState	bs;
	double		reltuples;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	/* the metapage and manifest slots of a new LSM */
	kvlsm_init_metapage_and_manifest(index, RelationGetSmgr(index), MAIN_FORKNUM,
									 KVLSM_KIND_INDEX, RelationNeedsWAL(index));
	kvlsm_forget(index);
	/* a build that rolls back leaves no shared state behind */
	kvlsm_schedule_release(index, NULL, false);

	bs.sh = kvlsm_attach(index);
	bs.ops = kvlsm_index_keyops(index);
	bs.indtuples = 0;
	bs.tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx build",
									  ALLOCSET_DEFAULT_SIZES);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
									   build_callback, &bs, NULL);
	kvlsm_maybe_flush(index, bs.sh);
	MemoryContextDelete(bs.tmpcxt);
	if (indexInfo->ii_Unique)
		check_unique_build(heap, index, indexInfo, bs.sh, bs.ops);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.indtuples;
	return result;
}

static void
kvlsm_idx_buildempty(Relation index)
{
	kvlsm_init_metapage_and_manifest(index, RelationGetSmgr(index), INIT_FORKNUM,
									 KVLSM_KIND_INDEX, true);
}

/*
 * Whole-index passes read the LSM in batches: remember the last key of a
 * batch (palloc'd in the current context) to continue after it.  False
 * when the batch was empty.
 */
static bool
advance_resume_key(KvlsmRecordSet *set, char **resume, int *resumelen)
{
	KvlsmRecord *last;

	if (set->n == 0)
		return false;
	last = &set->recs[set->n - 1];
	if (*resume)
		pfree(*resume);
	*resume = palloc(last->keylen);
	memcpy(*resume, last->key, last->keylen);
	*resumelen = last->keylen;
	return true;
}

static void
unique_violation(Relation heapRel, Relation index, Datum *values, bool *isnull)
{
	char	   *key_desc = BuildIndexValueDescription(index, values, isnull);

	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("duplicate key value violates unique constraint \"%s\"",
					RelationGetRelationName(index)),
			 key_desc ? errdetail("Key %s already exists.", key_desc) : 0,
			 errtableconstraint(heapRel, RelationGetRelationName(index))));
}

/*
 * A unique index built from the table: entries are in key order, so equal
 * keys are adjacent; rows already dead to new snapshots do not count, as in
 * btree's second spool.
 */
static void
check_unique_build(Relation heap, Relation index, IndexInfo *indexInfo,
				   KvlsmShared *sh, const KvlsmKeyOps *ops)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx unique build",
											  ALLOCSET_DEFAULT_SIZES);
	KvlsmRecordSet set;
	char	   *prev = NULL;
	char	   *resume = NULL;
	int			resumelen = 0;
	bool		more = true;

	kvlsm_recset_init(&set, cxt);
	while (more)
	{
		int			i;

		CHECK_FOR_INTERRUPTS();
		more = kvlsm_collect(index, sh, ops, resume, resumelen, resume != NULL,
							 NULL, 0, 1024, false, &set);
		for (i = 0; i < set.n; i++)
		{
			KvlsmRecord *r = &set.recs[i];

			if (r->flags & (KVLSM_IREC_TOMBSTONE | KVLSM_IREC_BUILD_DEAD))
				continue;
			if (prev != NULL &&
				kvlsm_index_keys_equal(index, kvlsm_index_key_tuple(prev),
									   kvlsm_index_key_tuple(r->key),
									   indexInfo->ii_NullsNotDistinct))
			{
				Datum		values[INDEX_MAX_KEYS];
				bool		isnull[INDEX_MAX_KEYS];

				index_deform_tuple(kvlsm_index_key_tuple(r->key),
								   RelationGetDescr(index), values, isnull);
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("could not create unique index \"%s\"",
								RelationGetRelationName(index)),
						 errdetail("Key %s is duplicated.",
								   BuildIndexValueDescription(index, values, isnull)),
						 errtableconstraint(heap, RelationGetRelationName(index))));
			}
			if (prev)
				pfree(prev);
			prev = palloc(r->keylen);
			memcpy(prev, r->key, r->keylen);
		}
		if (!advance_resume_key(&set, &resume, &resumelen))
			more = false;
	}
	MemoryContextDelete(cxt);
}

/*
 * Unique insert: under the index's unique-insert lock (a heavyweight page
 * lock on block 1, so check and insert are atomic against other inserters
 * of this index), look up every entry with equal key columns and check its
 * heap row with a dirty snapshot, as _bt_check_unique does.  A row whose
 * inserter or deleter is still running is waited for with the lock
 * released, then everything is checked again.
 */
static bool
insert_unique(Relation index, KvlsmShared *sh, const KvlsmKeyOps *ops,
			  Datum *values, bool *isnull, ItemPointer ht_ctid,
			  Relation heapRel, IndexUniqueCheck checkUnique, IndexInfo *indexInfo)
{
	int			natts = IndexRelationGetNumberOfKeyAttributes(index);
	bool		anynull = false;
	int			i;

	for (i = 0; i < natts; i++)
		anynull |= isnull[i];
	if (anynull && !indexInfo->ii_NullsNotDistinct)
	{
		if (checkUnique != UNIQUE_CHECK_EXISTING)
			put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
		return true;
	}

	for (;;)
	{
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx unique",
												  ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		KvlsmRecordSet set;
		int			lolen,
					hilen;
		char	   *lo = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_LOW, natts,
											  values, isnull, NULL, &lolen);
		char	   *hi = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_HIGH, natts,
											  values, isnull, NULL, &hilen);
		TransactionId xwait = InvalidTransactionId;
		bool		conflict = false;
		IndexFetchTableData *fetch;
		TupleTableSlot *slot;
		SnapshotData SnapshotDirty;

		LockPage(index, KVLSM_MANIFEST_BLKNO_A, ExclusiveLock);
		kvlsm_recset_init(&set, cxt);
		kvlsm_collect(index, sh, ops, lo, lolen, false, hi, hilen, 0, false, &set);

		InitDirtySnapshot(SnapshotDirty);
		fetch = table_index_fetch_begin(heapRel);
		slot = table_slot_create(heapRel, NULL);
		for (i = 0; i < set.n && !conflict && !TransactionIdIsValid(xwait);)
		{
			KvlsmRecord *r = &set.recs[i];
			int			j = i + 1;
			IndexTuple	itup;
			bool		call_again = false;
			bool		all_dead = false;

			while (j < set.n && ops->cmp(set.recs[j].key, set.recs[j].keylen,
										 r->key, r->keylen, ops->arg) == 0)
				j++;
			i = j;
			if (r->flags & KVLSM_IREC_TOMBSTONE)
				continue;
			itup = kvlsm_index_key_tuple(r->key);
			if (ItemPointerEquals(&itup->t_tid, ht_ctid))
				continue;
			if (table_index_fetch_tuple(fetch, &itup->t_tid, &SnapshotDirty, slot,
										&call_again, &all_dead))
			{
				if (TransactionIdIsValid(SnapshotDirty.xmin))
					xwait = SnapshotDirty.xmin;
				else if (TransactionIdIsValid(SnapshotDirty.xmax))
					xwait = SnapshotDirty.xmax;
				else
					conflict = true;
			}
		}
		ExecDropSingleTupleTableSlot(slot);
		table_index_fetch_end(fetch);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);

		if (TransactionIdIsValid(xwait))
		{
			UnlockPage(index, KVLSM_MANIFEST_BLKNO_A, ExclusiveLock);
			XactLockTableWait(xwait, heapRel, ht_ctid, XLTW_InsertIndex);
			continue;
		}
		if (conflict)
		{
			UnlockPage(index, KVLSM_MANIFEST_BLKNO_A, ExclusiveLock);
			if (checkUnique == UNIQUE_CHECK_PARTIAL)
			{
				put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
				return false;
			}
			unique_violation(heapRel, index, values, isnull);
		}
		if (checkUnique != UNIQUE_CHECK_EXISTING)
			put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
		UnlockPage(index, KVLSM_MANIFEST_BLKNO_A, ExclusiveLock);
		return true;
	}
}

static bool
kvlsm_idx_insert(Relation index, Datum *values, bool *isnull, ItemPointer ht_ctid,
				 Relation heapRel, IndexUniqueCheck checkUnique,
				 bool indexUnchanged, IndexInfo *indexInfo)
{
	KvlsmShared *sh = kvlsm_attach(index);
	const KvlsmKeyOps *ops = kvlsm_index_keyops(index);
	bool		result = false;

	if (checkUnique == UNIQUE_CHECK_NO)
		put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
	else
		result = insert_unique(index, sh, ops, values, isnull, ht_ctid, heapRel,
							   checkUnique, indexInfo);
	kvlsm_maybe_flush(index, sh);
	return result;
}

/* ------------------------------------------------------------------------
 * Scans
 * ------------------------------------------------------------------------
 */

typedef struct KvlsmIdxScanData
{
	KvlsmShared *sh;
	const KvlsmKeyOps *ops;
	MemoryContext cxt;			/* lives as long as the scan */
	MemoryContext batch_cxt;
	KvlsmRecordSet set;
	int			pos;
	bool		started;
	bool		exhausted;
	bool		impossible;		/* a scan key can never match */
	char	   *resume;			/* last key returned by the engine */
	int			resumelen;
	char	   *lo;				/* seek probe, or NULL */
	int			lolen;
	char	   *hi;				/* stop probe, or NULL */
	int			hilen;
	bool		recheck;
	/* backward scans: the matching TIDs, materialised in key order */
	ItemPointerData *back_tids;
	int			back_n;
	int			back_pos;
	bool		back_ready;
} KvlsmIdxScanData;

typedef KvlsmIdxScanData *KvlsmIdxScan;

static IndexScanDesc
kvlsm_idx_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	KvlsmIdxScan so = palloc0(sizeof(KvlsmIdxScanData));

	so->sh = kvlsm_attach(index);
	so->ops = kvlsm_index_keyops(index);
	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx scan",
									ALLOCSET_SMALL_SIZES);
	so->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx batch",
										  ALLOCSET_DEFAULT_SIZES);
	kvlsm_recset_init(&so->set, so->batch_cxt);
	scan->opaque = so;
	return scan;
}

/*
 * Derive the seek probe and stop probe from the scan keys on the first
 * column.  Only same-type keys are used for bounds (a cross-type argument
 * cannot be put into a probe of the column's type); every key is still
 * tested on every entry, so bounds only make the scan shorter.
 */
static void
set_bounds(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	Relation	index = scan->indexRelation;
	Oid			coltype = TupleDescAttr(RelationGetDescr(index), 0)->atttypid;
	bool		desc_first = (index->rd_indoption[0] & INDOPTION_DESC) != 0;
	ScanKey		lokey = NULL;
	ScanKey		hikey = NULL;
	int			i;
	MemoryContext old;

	so->lo = so->hi = NULL;
	so->impossible = false;
	for (i = 0; i < scan->numberOfKeys; i++)
	{
		ScanKey		key = &scan->keyData[i];

		if (key->sk_flags & SK_ISNULL)
		{
			if (!(key->sk_flags & (SK_SEARCHNULL | SK_SEARCHNOTNULL)))
				so->impossible = true;	/* col op NULL is never true */
			continue;
		}
		if (key->sk_attno != 1 ||
			(OidIsValid(key->sk_subtype) && key->sk_subtype != coltype))
			continue;
		switch (key->sk_strategy)
		{
			case BTEqualStrategyNumber:
				lokey = hikey = key;
				break;
			case BTGreaterEqualStrategyNumber:
			case BTGreaterStrategyNumber:
				if (desc_first)
					hikey = key;
				else
					lokey = key;
				break;
			case BTLessEqualStrategyNumber:
			case BTLessStrategyNumber:
				if (desc_first)
					lokey = key;
				else
					hikey = key;
				break;
		}
	}
	old = MemoryContextSwitchTo(so->cxt);
	if (lokey)
	{
		bool		isnull = false;

		so->lo = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_LOW, 1,
									  &lokey->sk_argument, &isnull, NULL, &so->lolen);
	}
	if (hikey)
	{
		bool		isnull = false;

		so->hi = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_HIGH, 1,
									  &hikey->sk_argument, &isnull, NULL, &so->hilen);
	}
	MemoryContextSwitchTo(old);
}

static void
kvlsm_idx_rescan(IndexScanDesc scan, ScanKey scankey, int nscankeys,
				 ScanKey orderbys, int norderbys)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	if (scankey && scan->numberOfKeys > 0)
		memmove(scan->keyData, scankey, scan->numberOfKeys * sizeof(ScanKeyData));
	MemoryContextReset(so->cxt);
	kvlsm_recset_reset(&so->set);
	so->pos = 0;
	so->started = false;
	so->exhausted = false;
	so->resume = NULL;
	so->back_tids = NULL;
	so->back_n = 0;
	so->back_ready = false;
	so->recheck = !kvlsm_is_kvlsm_relation(scan->heapRelation ? scan->heapRelation :
										   scan->indexRelation);
	set_bounds(scan);
}

static void
kvlsm_idx_endscan(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	MemoryContextDelete(so->cxt);
	MemoryContextDelete(so->batch_cxt);
	pfree(so);
}

static bool
refill(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	bool		more;

	if (so->exhausted || so->impossible)
		return false;
	if (so->resume)
		more = kvlsm_collect(scan->indexRelation, so->sh, so->ops,
							 so->resume, so->resumelen, true,
							 so->hi, so->hilen, INDEX_SCAN_BATCH, false, &so->set);
	else
		more = kvlsm_collect(scan->indexRelation, so->sh, so->ops,
							 so->lo, so->lolen, false,
							 so->hi, so->hilen, INDEX_SCAN_BATCH, false, &so->set);
	so->pos = 0;
	if (so->set.n == 0)
	{
		so->exhausted = true;
		return false;
	}
	/* remember where to continue, outside the batch memory */
	{
		KvlsmRecord *last = &so->set.recs[so->set.n - 1];
		MemoryContext old = MemoryContextSwitchTo(so->cxt);

		so->resume = palloc(last->keylen);
		memcpy(so->resume, last->key, last->keylen);
		so->resumelen = last->keylen;
		MemoryContextSwitchTo(old);
	}
	if (!more)
		so->exhausted = true;
	return true;
}

/* does the entry satisfy every scan key? */
static bool
entry_matches(IndexScanDesc scan, IndexTuple itup)
{
	TupleDesc	desc = RelationGetDescr(scan->indexRelation);
	int			i;

	for (i = 0; i < scan->numberOfKeys; i++)
	{
		ScanKey		key = &scan->keyData[i];
		bool		isnull;
		Datum		val = index_getattr(itup, key->sk_attno, desc, &isnull);

		if (key->sk_flags & SK_ISNULL)
		{
			if (key->sk_flags & SK_SEARCHNULL)
			{
				if (!isnull)
					return false;
			}
			else if (key->sk_flags & SK_SEARCHNOTNULL)
			{
				if (isnull)
					return false;
			}
			else
				return false;
			continue;
		}
		if (isnull)
			return false;
		if (!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											val, key->sk_argument)))
			return false;
	}
	return true;
}

/* next live entry in key order; false at the end */
static bool
next_entry(IndexScanDesc scan, IndexTuple *itup_out)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	for (;;)
	{
		KvlsmRecord *r;
		int			start;

		CHECK_FOR_INTERRUPTS();
		if (so->pos >= so->set.n && !refill(scan))
			return false;
		start = so->pos;
		r = &so->set.recs[start];
		/* records of one key are adjacent, newest first */
		so->pos++;
		while (so->pos < so->set.n &&
			   so->ops->cmp(so->set.recs[so->pos].key, so->set.recs[so->pos].keylen,
							r->key, r->keylen, so->ops->arg) == 0)
			so->pos++;
		if (r->flags & KVLSM_IREC_TOMBSTONE)
			continue;
		if (!entry_matches(scan, kvlsm_index_key_tuple(r->key)))
			continue;
		*itup_out = kvlsm_index_key_tuple(r->key);
		return true;
	}
}

static bool
kvlsm_idx_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	IndexTuple	itup;

	if (ScanDirectionIsBackward(dir))
	{
		/*
		 * The engine iterates forward only: a backward scan (ORDER BY ...
		 * DESC) collects the matching entries of its range first and returns
		 * them last to first.  Correct, but it reads the whole range even
		 * under a LIMIT; a backward engine iterator is future work.
		 * amcanbackward stays false, so cursors never change direction here.
		 */
		if (!so->back_ready)
		{
			MemoryContext old = MemoryContextSwitchTo(so->cxt);
			int			cap = 64;

			so->back_tids = palloc(sizeof(ItemPointerData) * cap);
			while (next_entry(scan, &itup))
			{
				if (so->back_n == cap)
				{
					cap *= 2;
					so->back_tids = repalloc_huge(so->back_tids, sizeof(ItemPointerData) * cap);
				}
				so->back_tids[so->back_n++] = itup->t_tid;
			}
			MemoryContextSwitchTo(old);
			so->back_pos = so->back_n;
			so->back_ready = true;
		}
		if (so->back_pos == 0)
			return false;
		scan->xs_heaptid = so->back_tids[--so->back_pos];
		scan->xs_recheck = so->recheck;
		return true;
	}
	if (!next_entry(scan, &itup))
		return false;
	scan->xs_heaptid = itup->t_tid;
	scan->xs_recheck = so->recheck;
	return true;
}

static int64
kvlsm_idx_getbitmap(IndexScanDesc scan, TIDBitmap *tbm)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	IndexTuple	itup;
	int64		n = 0;

	while (next_entry(scan, &itup))
	{
		tbm_add_tuples(tbm, &itup->t_tid, 1, so->recheck);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------------
 * VACUUM
 * ------------------------------------------------------------------------
 */

/*
 * Write a tombstone for every entry whose heap TID the callback reports
 * dead.  The tombstones reach WAL before this returns: VACUUM frees the
 * TIDs (and a standby replays that) before it commits, so a later insert
 * reusing a TID must find the old entry already dead.
 */
static IndexBulkDeleteResult *
kvlsm_idx_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
					 IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	KvlsmShared *sh = kvlsm_attach(index);
	const KvlsmKeyOps *ops = kvlsm_index_keyops(index);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx bulkdelete",
											  ALLOCSET_DEFAULT_SIZES);
	KvlsmRecordSet set;
	char	   *resume = NULL;
	int			resumelen = 0;
	bool		more = true;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));
	kvlsm_recset_init(&set, cxt);
	while (more)
	{
		int			i;

		vacuum_delay_point();
		more = kvlsm_collect(index, sh, ops, resume, resumelen, resume != NULL,
							 NULL, 0, 1024, false, &set);
		for (i = 0; i < set.n;)
		{
			KvlsmRecord *r = &set.recs[i];
			int			j = i + 1;

			while (j < set.n && ops->cmp(set.recs[j].key, set.recs[j].keylen,
										 r->key, r->keylen, ops->arg) == 0)
				j++;
			if (!(r->flags & KVLSM_IREC_TOMBSTONE))
			{
				IndexTuple	itup = kvlsm_index_key_tuple(r->key);

				if (callback(&itup->t_tid, callback_state))
				{
					kvlsm_put(index, sh, ops, r->key, r->keylen,
							  KVLSM_IREC_TOMBSTONE, NULL, 0);
					stats->tuples_removed += 1;
				}
				else
					stats->num_index_tuples += 1;
			}
			i = j;
		}
		if (!advance_resume_key(&set, &resume, &resumelen))
			more = false;
		kvlsm_maybe_flush(index, sh);
	}
	kvlsm_log_write_all(index, sh);
	MemoryContextDelete(cxt);
	stats->num_pages = RelationGetNumberOfBlocks(index);
	return stats;
}

static IndexBulkDeleteResult *
kvlsm_idx_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
	if (stats == NULL)
	{
		stats = palloc0(sizeof(IndexBulkDeleteResult));
		stats->num_index_tuples = info->num_heap_tuples;
		stats->estimated_count = true;
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}

static bytea *
kvlsm_idx_options(Datum reloptions, bool validate)
{
	if (validate && reloptions != (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm_idx indexes take no storage parameters yet")));
	return NULL;
}

static bool
kvlsm_idx_validate(Oid opclassoid)
{
	return true;
}

/* is this an index of our access method? (the routine copy's build callback) */
bool
kvlsm_is_kvlsm_index(Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_INDEX && rel->rd_indam != NULL &&
		rel->rd_indam->ambuild == kvlsm_idx_build;
}

PG_FUNCTION_INFO_V1(kvlsm_idx_handler);

Datum
kvlsm_idx_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = BTMaxStrategyNumber;
	amroutine->amsupport = 1;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = true;
	amroutine->amcanorderbyop = false;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = true;
	amroutine->amcanmulticol = true;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = true;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_NO_PARALLEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = kvlsm_idx_build;
	amroutine->ambuildempty = kvlsm_idx_buildempty;
	amroutine->aminsert = kvlsm_idx_insert;
	amroutine->ambulkdelete = kvlsm_idx_bulkdelete;
	amroutine->amvacuumcleanup = kvlsm_idx_vacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = btcostestimate;
	amroutine->amoptions = kvlsm_idx_options;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = NULL;
	amroutine->amvalidate = kvlsm_idx_validate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = kvlsm_idx_beginscan;
	amroutine->amrescan = kvlsm_idx_rescan;
	amroutine->amgettuple = kvlsm_idx_gettuple;
	amroutine->amgetbitmap = kvlsm_idx_getbitmap;
	amroutine->amendscan = kvlsm_idx_endscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}

/*
 * Compaction's garbage collection for one index key (key columns and TID,
 * newest record first).  The newest record of a key is all readers use,
 * so older ones go; a tombstone itself goes once no older table can hold
 * the entry it deletes.
 */
void
kvlsm_index_gc(KvlsmGcContext *ctx, KvlsmRecord *recs, int n, bool *keep)
{
	int			i;

	for (i = 1; i < n; i++)
		keep[i] = false;
	if ((recs[0].flags & KVLSM_IREC_TOMBSTONE) && ctx->bottommost)
		keep[0] = false;
}
