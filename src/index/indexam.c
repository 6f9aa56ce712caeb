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
 * column's bounds become a seek probe and a stop key (indexscan.c).
 *
 * Unique indexes check and insert under a heavyweight lock on a stripe
 * chosen by the first column's hash (equal keys hash alike under the
 * hash opclass), so inserters of different keys rarely wait for each
 * other.  Not yet: index-only scans (amcanreturn stays NULL until VACUUM
 * interlocks with scans, see DESIGN.md section 6) and a backward engine
 * iterator (backward scans materialise their range).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/nbtree.h"
#include "access/reloptions.h"
#include "access/relscan.h"
#include "access/table.h"
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
#include "kvlsm/kvlsm.h"
#include "kvlsm/compaction.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/manifest.h"
#include "kvlsm/relocate.h"
#include "kvlsm/page.h"
#include "kvlsm/table.h"


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
							 NULL, 0, 1024, NULL, &set);
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
 * The lock that makes a unique check and its insert atomic: one of
 * KVLSM_UNIQUE_STRIPES page locks past any real block, chosen by the first
 * column's hash; a NULL first column or a type without a hash opclass
 * takes stripe 0.  *hash gets the hash for the bloom filters.
 */
#define KVLSM_UNIQUE_STRIPES		1024
#define KVLSM_UNIQUE_STRIPE_BASE	((BlockNumber) 0xFFFF0000)

static BlockNumber
unique_stripe(Relation index, Datum *values, bool *isnull, bool *has_hash, uint64 *hash)
{
	KvlsmIndexKeyArg *ka = (KvlsmIndexKeyArg *) kvlsm_index_keyops(index)->arg;

	*has_hash = false;
	if (isnull[0] || !OidIsValid(ka->bloom_hash_oid))
		return KVLSM_UNIQUE_STRIPE_BASE;
	*hash = kvlsm_index_value_hash(&ka->bloom_hash, ka->collation[0], values[0]);
	*has_hash = true;
	return KVLSM_UNIQUE_STRIPE_BASE + (BlockNumber) (*hash % KVLSM_UNIQUE_STRIPES);
}

/*
 * Unique insert: under the key's stripe lock (so check and insert are
 * atomic against other inserters of an equal key), look up every entry
 * with equal key columns and check its heap row with a dirty snapshot, as
 * _bt_check_unique does.  A row whose inserter or deleter is still running
 * is waited for with the lock released, then everything is checked again.
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

		bool		has_hash;
		uint64		hash;
		BlockNumber stripe = unique_stripe(index, values, isnull, &has_hash, &hash);

		LockPage(index, stripe, ExclusiveLock);
		kvlsm_recset_init(&set, cxt);
		kvlsm_collect(index, sh, ops, lo, lolen, false, hi, hilen, 0,
					  has_hash ? &hash : NULL, &set);

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
			UnlockPage(index, stripe, ExclusiveLock);
			XactLockTableWait(xwait, heapRel, ht_ctid, XLTW_InsertIndex);
			continue;
		}
		if (conflict)
		{
			UnlockPage(index, stripe, ExclusiveLock);
			if (checkUnique == UNIQUE_CHECK_PARTIAL)
			{
				put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
				return false;
			}
			unique_violation(heapRel, index, values, isnull);
		}
		if (checkUnique != UNIQUE_CHECK_EXISTING)
			put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
		UnlockPage(index, stripe, ExclusiveLock);
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

	if (checkUnique == UNIQUE_CHECK_NO && indexInfo->ii_ExclusionOps != NULL)
		put_entry(index, sh, ops, values, isnull, ht_ctid, 0);
	else if (checkUnique == UNIQUE_CHECK_NO)
	{
		/*
		 * Deferred: no other backend looks for an uncommitted entry of a
		 * non-unique index (an exclusion constraint's check does, with a
		 * dirty snapshot: those entries go in at once, above), and
		 * batching the memtable inserts takes the LSM lock once per batch
		 * instead of once per row.
		 */
		int			keylen;
		char	   *key = kvlsm_index_make_key(index, KVLSM_IKEY_ENTRY,
											   IndexRelationGetNumberOfKeyAttributes(index),
											   values, isnull, ht_ctid, &keylen);
		bool		full = kvlsm_defer_put(index, sh, ops, key, keylen, 0);

		pfree(key);
		if (full)
			kvlsm_apply_deferred(index, sh);

		/*
		 * Batches that went in at commit may have filled the memtable:
		 * the flush request and any back-pressure are this insert's to
		 * act on (unlocked reads: a stale answer only delays it a row).
		 */
		else if (!sh->flush_requested && sh->frozen.genid == 0 &&
				 sh->nl0 < (uint32) Min(kvlsm_l0_slowdown_trigger, kvlsm_l0_stop_trigger) &&
				 kvlsm_arena_free_bytes() >= kvlsm_arena_total_bytes() / 8)
			return false;
	}
	else
		result = insert_unique(index, sh, ops, values, isnull, ht_ctid, heapRel,
							   checkUnique, indexInfo);
	kvlsm_maybe_flush(index, sh);
	return result;
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
							 NULL, 0, 1024, NULL, &set);
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

	/* as the table's VACUUM: move tables out of the end, truncate it */
	if (kvlsm_vacuum_truncate_option(info->index))
		kvlsm_vacuum_reclaim(info->index);
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

	amroutine->amstrategies = KVLSM_IDX_LIKE_STRATEGY;
	amroutine->amsupport = 1;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = true;
	amroutine->amcanorderbyop = false;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = true;
	amroutine->amcanmulticol = true;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = true;
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
	amroutine->ammarkpos = kvlsm_idx_markpos;
	amroutine->amrestrpos = kvlsm_idx_restrpos;
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
