/*-------------------------------------------------------------------------
 *
 * repair.c
 *	  kvlsm_repair: taking the SSTables that fail verification out of
 *	  service, or rebuilding a table's manifest when its current slot is
 *	  unusable.
 *
 * kvlsm_repair works like pg_surgery: owner only, never during recovery,
 * AccessExclusiveLock, and a dry run unless asked.  It reports which
 * SSTables fail verification and would be dropped (with their key,
 * sequence and xid ranges and entry counts) and which surviving SSTables
 * hold versions that the dropped ones may have superseded; applied, it
 * installs a manifest without them, keeps their extents in quarantine (see
 * KVLSM_LEVEL_QUARANTINE), leaves every high-water mark as it is and
 * rebuilds the table's indexes.
 *
 * Locks, in order: the owner and the access method are checked before any
 * lock; an index's table is locked (ShareLock) before the index, as
 * REINDEX does; the relation is opened with AccessExclusiveLock; a new
 * manifest is installed under the flush lock (the metapage's page lock,
 * ExclusiveLock) by kvlsm_manifest_install_repaired, which writes it as
 * generic WAL, so the repair reaches every standby.
 *
 * Callers: SQL only (kvlsm_repair).  It verifies through verify.c
 * (verify_internal.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "kvlsm/admin.h"
#include "kvlsm/compaction.h"
#include "kvlsm/lsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/page.h"
#include "verify_internal.h"

typedef struct RepairOut
{
	ReturnSetInfo *rsinfo;
	Relation	rel;
} RepairOut;

/*
 * One result row: action, sstable, level, start_block, pages, entries,
 * min_key, max_key, min_seq, max_seq, min_xid, max_xid, detail.
 */
static void
repair_row(RepairOut *out, const char *action, const SstResult *r,
		   const char *detail)
{
	Datum		values[13];
	bool		nulls[13] = {0};

	values[0] = CStringGetTextDatum(action);
	if (r == NULL)
	{
		int			i;

		for (i = 1; i < 12; i++)
			nulls[i] = true;
	}
	else
	{
		values[1] = Int64GetDatum(r->desc.id);
		if (r->desc.level < KVLSM_MAX_LEVELS)
			values[2] = Int32GetDatum(r->desc.level);
		else
			nulls[2] = true;
		values[3] = Int64GetDatum(r->desc.start);
		values[4] = Int64GetDatum(r->desc.npages);
		values[5] = Int64GetDatum(r->desc.nentries);
		if (r->minkey != NULL)
		{
			values[6] = kvlsm_key_as_text(out->rel, r->minkey, r->minkeylen);
			values[7] = kvlsm_key_as_text(out->rel, r->maxkey, r->maxkeylen);
		}
		else
			nulls[6] = nulls[7] = true;
		values[8] = Int64GetDatum(r->desc.minseq);
		values[9] = Int64GetDatum(r->desc.maxseq);
		if (TransactionIdIsValid(r->minxid))
		{
			values[10] = TransactionIdGetDatum(r->minxid);
			values[11] = TransactionIdGetDatum(r->maxxid);
		}
		else
			nulls[10] = nulls[11] = true;
	}
	if (detail)
		values[12] = CStringGetTextDatum(detail);
	else
		nulls[12] = true;
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/* may the key ranges of two walked tables overlap?  Unknown ranges may. */
static bool
results_overlap(const KvlsmKeyOps *ops, const SstResult *a, const SstResult *b)
{
	if (a->minkey == NULL || b->minkey == NULL)
		return true;
	return ops->cmp(a->minkey, a->minkeylen, b->maxkey, b->maxkeylen, ops->arg) <= 0 &&
		ops->cmp(b->minkey, b->minkeylen, a->maxkey, a->maxkeylen, ops->arg) <= 0;
}

/*
 * Close the relation (keeping its lock: REINDEX refuses a relation this
 * session still has open) and, unless a dry run, rebuild its indexes, or
 * the index itself, which is derived data and is replaced whole.
 */
static void
close_and_rebuild_indexes(Relation rel, bool dry_run, RepairOut *out)
{
	Oid			relid = RelationGetRelid(rel);
	bool		is_index = rel->rd_rel->relkind == RELKIND_INDEX;
	char		persistence = rel->rd_rel->relpersistence;
	List	   *indexes = is_index ? list_make1_oid(relid) : RelationGetIndexList(rel);
	ReindexParams params = {0};
	ListCell   *c;

	relation_close(rel, NoLock);
	if (!dry_run)
	{
		if (is_index)
			reindex_index(relid, false, persistence, &params);
		else
			reindex_relation(relid, REINDEX_REL_PROCESS_TOAST, &params);
		CommandCounterIncrement();
	}
	foreach(c, indexes)
		repair_row(out, dry_run ? "would rebuild index" : "rebuilt index", NULL,
				   get_rel_name(lfirst_oid(c)));
}

/* the closing WARNING of an applied or planned repair */
static void
warn_repair(const char *what, Oid relid)
{
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("kvlsm_repair %s of \"%s\"", what, get_rel_name(relid)),
			 errhint("If a standby holds an intact copy, failing over to it or re-cloning from it loses nothing: repair is WAL-logged and spreads the loss to every standby.")));
}

/* ---------------------------------------------------------------------
 * Rebuilding an unusable manifest
 * ---------------------------------------------------------------------
 */

/* what a manifest rebuild has found so far */
typedef struct ManifestRebuild
{
	Relation	rel;
	bool		dry_run;
	RepairOut  *out;
	BlockNumber nblocks;
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;		/* the manifest being built */
	KvlsmSstDesc *cands;		/* the SSTables that may go into it */
	int			ncands;
	uint64		base_maxid;		/* the largest id the previous version lists */
	uint64		maxid;			/* the largest id of any candidate */
	bool	   *used;			/* per block: in use under the new manifest */
	int			nkept;
	int			nfound;			/* of them, found by the scan */
	int			nquarantined;
} ManifestRebuild;

/* mark blocks [start, start + n) used; false if any lies outside */
static bool
mark_used(bool *used, BlockNumber nblocks, BlockNumber start, uint32 n)
{
	uint32		i;

	if (start < KVLSM_FIRST_DATA_BLKNO || (uint64) start + n > nblocks)
		return false;
	for (i = 0; i < n; i++)
		used[start + i] = true;
	return true;
}

/* mark the pages of a log chain, walking it from its tail */
static void
mark_chain(Relation rel, bool *used, BlockNumber nblocks, const KvlsmLogChain *chain)
{
	PGAlignedBlock page;
	BlockNumber b = chain->tail;
	uint32		n = 0;

	if (chain->genid == 0)
		return;
	while (b != InvalidBlockNumber && b >= KVLSM_FIRST_DATA_BLKNO && b < nblocks &&
		   n++ <= chain->npages)
	{
		kvlsm_verify_copy_page(rel, b, page.data);
		if (kvlsm_page_problem((Page) page.data, KVLSM_PAGE_LOG) != NULL ||
			KvlsmPageGetOpaque((Page) page.data)->owner != chain->genid)
			break;
		used[b] = true;
		b = KvlsmPageGetOpaque((Page) page.data)->link;
	}
}

/* a descriptor for an SSTable found by its header page */
static void
desc_from_header(BlockNumber start, const char *contents, KvlsmSstDesc *d)
{
	KvlsmSstHeader hdr;

	memcpy(&hdr, contents, sizeof(hdr));
	memset(d, 0, sizeof(*d));
	d->id = hdr.id;
	d->minseq = hdr.minseq;
	d->maxseq = hdr.maxseq;
	d->nbytes = (uint64) hdr.npages * BLCKSZ;	/* record bytes are not kept there */
	d->start = start;
	d->npages = hdr.npages;
	d->nentries = hdr.nentries;
	d->level = 0;				/* L0 lets its range overlap anything */
	if (hdr.minkeylen > 0 && hdr.minkeylen <= KVLSM_DESC_KEY_MAX &&
		hdr.maxkeylen <= KVLSM_DESC_KEY_MAX)
	{
		d->minkeylen = hdr.minkeylen;
		d->maxkeylen = hdr.maxkeylen;
		memcpy(d->minkey, contents + sizeof(hdr), hdr.minkeylen);
		memcpy(d->maxkey, contents + sizeof(hdr) + hdr.minkeylen, hdr.maxkeylen);
	}
	else
		d->minkeylen = d->maxkeylen = 0xFF;
}

/* a copy of the metapage into *meta, if it is sound and names a manifest slot */
static bool
read_sound_metapage(Relation rel, BlockNumber nblocks, KvlsmMetaPageData *meta)
{
	PGAlignedBlock page;

	if (nblocks < KVLSM_FIRST_DATA_BLKNO)
		return false;
	kvlsm_verify_copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
	if (kvlsm_page_problem((Page) page.data, KVLSM_PAGE_META) != NULL)
		return false;
	kvlsm_metapage_contents((Page) page.data, meta);
	if (meta->magic != KVLSM_MAGIC || meta->version != KVLSM_FORMAT_VERSION ||
		(meta->manifest_blkno != KVLSM_MANIFEST_BLKNO_A &&
		 meta->manifest_blkno != KVLSM_MANIFEST_BLKNO_B))
		return false;
	return true;
}

/*
 * The previous version, if its slot ('other') is sound: its SSTables become
 * candidates.  Returns why the slot is unreadable, or NULL.
 */
static char *
add_previous_version(ManifestRebuild *rb, BlockNumber other)
{
	/*
	 * Its continuation pages went back to the free list when the current
	 * version was installed: if they were reused since, it is unreadable and
	 * the scan alone finds the tables.
	 */
	KvlsmManifestCopy *prev = palloc(sizeof(KvlsmManifestCopy));
	BlockNumber blkno;
	char	   *problem;
	int			i;

	problem = kvlsm_manifest_try_read(rb->rel, other, prev, &blkno);
	if (problem == NULL && prev->hdr.version < rb->meta.manifest_version)
		for (i = 0; i < (int) prev->hdr.nsst; i++)
		{
			if (prev->sst[i].level == KVLSM_LEVEL_PENDING)
				continue;		/* an unfinished compaction's output */
			rb->cands[rb->ncands++] = prev->sst[i];
			rb->base_maxid = Max(rb->base_maxid, prev->sst[i].id);
		}
	pfree(prev);
	return problem;
}

/* every newer SSTable, by its header page */
static void
add_newer_headers(ManifestRebuild *rb)
{
	PGAlignedBlock page;
	BlockNumber b;

	for (b = KVLSM_FIRST_DATA_BLKNO; b < rb->nblocks; b++)
	{
		KvlsmPageOpaque opaque;
		KvlsmSstDesc *d;

		CHECK_FOR_INTERRUPTS();
		kvlsm_verify_copy_page(rb->rel, b, page.data);
		if (kvlsm_page_problem((Page) page.data, KVLSM_PAGE_SST_HEADER) != NULL)
			continue;
		opaque = KvlsmPageGetOpaque((Page) page.data);
		if (opaque->owner <= rb->base_maxid)
			continue;			/* listed above, or retired before it */
		if (rb->ncands >= KVLSM_MAX_SST * 4)
			break;
		d = &rb->cands[rb->ncands];
		desc_from_header(b, PageGetContents((Page) page.data), d);
		if (d->id != opaque->owner || d->npages == 0)
			continue;
		rb->maxid = Max(rb->maxid, d->id);
		rb->ncands++;
		rb->nfound++;
	}
}

/*
 * Keep what verifies.  A table of the old version whose extent now holds
 * something else was retired since and is left out; one that is damaged in
 * place is quarantined.
 */
static void
keep_what_verifies(ManifestRebuild *rb)
{
	bool		dry_run = rb->dry_run;
	KvlsmManifestCopy *mc = rb->mc;
	int			i;

	for (i = 0; i < rb->ncands; i++)
	{
		SstResult	res;
		KvlsmSstDesc *d = &rb->cands[i];

		kvlsm_verify_walk_sstable(rb->rel, d, true, &res);
		if (res.problems == NIL && res.walked &&
			mark_used(rb->used, rb->nblocks, d->start, d->npages))
		{
			if (mc->hdr.nsst >= KVLSM_MAX_SST)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("kvlsm_repair found more SSTables in \"%s\" than a manifest holds",
								RelationGetRelationName(rb->rel))));
			mc->sst[mc->hdr.nsst++] = *d;
			rb->nkept++;
			repair_row(rb->out, d->id > rb->base_maxid ? (dry_run ? "would recover" : "recovered") :
					   (dry_run ? "would keep" : "kept"), &res,
					   d->id > rb->base_maxid ? "found by its header page, newer than the last readable manifest; placed in L0" :
					   "listed by the previous manifest version");
		}
		else if (d->id <= rb->base_maxid && res.walked &&
				 mark_used(rb->used, rb->nblocks, d->start, d->npages) &&
				 mc->hdr.nsst < KVLSM_MAX_SST)
		{
			/* damaged in place: out of service, pages not reused */
			d->level = KVLSM_LEVEL_QUARANTINE;
			mc->sst[mc->hdr.nsst++] = *d;
			rb->nquarantined++;
			repair_row(rb->out, dry_run ? "would drop" : "quarantined", &res,
					   "listed by the previous manifest version, fails verification");
		}
		else if (d->id <= rb->base_maxid)
			repair_row(rb->out, "retired", &res,
					   "listed by the previous manifest version, its pages now hold something else");
	}
}

/* the log chains and the reserve stay; everything else is free */
static void
free_what_is_unused(ManifestRebuild *rb)
{
	BlockNumber b;

	mark_chain(rb->rel, rb->used, rb->nblocks, &rb->meta.active);
	mark_chain(rb->rel, rb->used, rb->nblocks, &rb->meta.frozen);
	if (rb->meta.log_reserve_npages > 0)
		(void) mark_used(rb->used, rb->nblocks, rb->meta.log_reserve_start,
						 rb->meta.log_reserve_npages);
	for (b = KVLSM_FIRST_DATA_BLKNO; b < rb->nblocks;)
	{
		BlockNumber e = b;

		if (rb->used[b])
		{
			b++;
			continue;
		}
		while (e < rb->nblocks && !rb->used[e])
			e++;
		kvlsm_manifest_give_extent(rb->mc, b, e - b);
		b = e;
	}
}

/*
 * The current manifest slot is unusable (the metapage is fine): rebuild a
 * manifest from the other slot, which holds the previous version, plus
 * every SSTable whose header page is found in the relation with an id newer
 * than all it lists (the outputs of the last flushes and compactions), each
 * kept only if it verifies.  Such a table goes to L0, where ranges may
 * overlap; compaction sorts them out.  A table of the old version whose
 * extent now holds something else was retired since and is left out; one
 * that is damaged in place is quarantined.  The free list is rebuilt from
 * what nothing uses.  Returns false if the metapage is unusable too.
 */
static bool
rebuild_manifest(Relation rel, bool dry_run, RepairOut *out)
{
	ManifestRebuild rb;
	BlockNumber other;
	char	   *problem;

	memset(&rb, 0, sizeof(rb));
	rb.rel = rel;
	rb.dry_run = dry_run;
	rb.out = out;
	rb.mc = palloc0(sizeof(KvlsmManifestCopy));
	rb.nblocks = RelationGetNumberOfBlocks(rel);
	if (!read_sound_metapage(rel, rb.nblocks, &rb.meta))
		return false;

	rb.cands = palloc(sizeof(KvlsmSstDesc) * (KVLSM_MAX_SST * 4));

	/* the previous version, if its slot is sound */
	other = rb.meta.manifest_blkno == KVLSM_MANIFEST_BLKNO_A ?
		KVLSM_MANIFEST_BLKNO_B : KVLSM_MANIFEST_BLKNO_A;
	problem = add_previous_version(&rb, other);
	rb.maxid = rb.base_maxid;

	/* every newer SSTable, by its header page */
	add_newer_headers(&rb);

	/* keep what verifies, then free what nothing uses */
	rb.used = palloc0(sizeof(bool) * rb.nblocks);
	keep_what_verifies(&rb);
	free_what_is_unused(&rb);

	{
		StringInfoData msg;

		initStringInfo(&msg);
		appendStringInfo(&msg, "manifest slot %u is unusable; %s a manifest from slot %u (%s) and a scan of %u blocks: %d SSTables kept, %d of them found by the scan, %d quarantined, %u free extents",
						 rb.meta.manifest_blkno, dry_run ? "would rebuild" : "rebuilt", other,
						 problem == NULL ? "the previous version" : "also unusable, so from the scan alone",
						 rb.nblocks, rb.nkept, rb.nfound, rb.nquarantined, rb.mc->hdr.nfree);
		repair_row(out, dry_run ? "would rebuild manifest" : "rebuilt manifest", NULL, msg.data);
	}

	if (!dry_run)
	{
		KvlsmInstallArg ia;

		memset(&ia, 0, sizeof(ia));
		ia.next_sstid = rb.maxid + 1;
		LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
		kvlsm_manifest_install_repaired(rel, rb.mc, &ia);
		UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Dropping the SSTables that fail verification
 * ---------------------------------------------------------------------
 */

/*
 * Check ownership and the access method before taking the lock, so that
 * nobody can hold AccessExclusiveLock on a relation they could not repair
 * (as RangeVarCallbackOwnsTable does for DDL); then open it.
 */
static Relation
open_for_repair(Oid relid)
{
	Oid			heapid = InvalidOid;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("kvlsm_repair cannot run during recovery"),
				 errhint("Repair the primary; the standby receives the repair through WAL.")));

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	kvlsm_check_relation_am(relid);

	/* like REINDEX: lock the table before its index */
	if (get_rel_relkind(relid) == RELKIND_INDEX)
	{
		heapid = IndexGetRelation(relid, true);
		if (OidIsValid(heapid))
			LockRelationOid(heapid, ShareLock);
	}
	return kvlsm_open_relation(relid, AccessExclusiveLock);
}

/* the metapage or the manifest is unusable and cannot be rebuilt */
static void refuse_unusable_layout(Relation rel, List *problems) pg_attribute_noreturn();

static void
refuse_unusable_layout(Relation rel, List *problems)
{
	ListCell   *c;
	StringInfoData msg;

	initStringInfo(&msg);
	foreach(c, problems)
	{
		Problem    *p = lfirst(c);

		appendStringInfo(&msg, "%sblock %u: %s", msg.len ? "; " : "", p->blkno, p->msg);
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("kvlsm_repair cannot repair \"%s\": its metapage or manifest is unusable",
					RelationGetRelationName(rel)),
			 errdetail("%s", msg.data),
			 errhint("Restore the relation from a standby or a backup that holds an intact copy.")));
}

/* what would be lost: one row per SSTable to drop; returns their number */
static int
report_dropped(RepairOut *out, SstResult *results, int n, bool dry_run)
{
	int			ndrop = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		ListCell   *c;
		StringInfoData msg;

		if (results[i].problems == NIL || results[i].desc.level == KVLSM_LEVEL_QUARANTINE)
			continue;
		ndrop++;
		initStringInfo(&msg);
		appendStringInfo(&msg, "%llu of its %u entries were readable; ",
						 (unsigned long long) results[i].entries_seen,
						 results[i].desc.nentries);
		foreach(c, results[i].problems)
		{
			Problem    *p = lfirst(c);

			if (p->blkno != InvalidBlockNumber)
				appendStringInfo(&msg, "block %u: ", p->blkno);
			appendStringInfo(&msg, "%s%s", p->msg, lnext(results[i].problems, c) ? "; " : "");
		}
		repair_row(out, dry_run ? "would drop" : "dropped", &results[i], msg.data);
	}
	return ndrop;
}

/*
 * Versions that surviving tables hold under a newer dropped table: a
 * delete (or, in an index, a tombstone) that only the dropped table held
 * no longer hides them, so they may come back.
 */
static void
report_suspects(RepairOut *out, const KvlsmKeyOps *ops, SstResult *results,
				int n, bool dry_run)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		int			j;

		if (results[i].problems != NIL || !KvlsmSstIsLive(&results[i].desc))
			continue;
		for (j = 0; j < n; j++)
		{
			if (results[j].problems == NIL || results[j].desc.level == KVLSM_LEVEL_QUARANTINE)
				continue;
			if (results[i].desc.minseq < results[j].desc.maxseq &&
				results_overlap(ops, &results[i], &results[j]))
			{
				char	   *detail = psprintf("holds versions older than SSTable %llu, which %s dropped: rows it deleted there may reappear and its newer row versions are lost",
											  (unsigned long long) results[j].desc.id,
											  dry_run ? "would be" : "was");

				repair_row(out, "suspect", &results[i], detail);
			}
		}
	}
}

/*
 * Install the verified manifest with the failing SSTables quarantined.
 * Under the flush lock, from a fresh copy: with AccessExclusiveLock no
 * worker flushes or compacts this relation, but the copy read for
 * verification must still be the installed one.
 */
static void
quarantine_failed(Relation rel, LayoutCopy *lc, SstResult *results, int n,
				  RepairOut *out)
{
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	KvlsmMetaPageData meta;
	KvlsmInstallArg ia;
	uint32		k;
	int			i;

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	if (meta.manifest_version != lc->mc.hdr.version)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("manifest of \"%s\" changed while it was verified",
						RelationGetRelationName(rel)),
				 errhint("Run kvlsm_repair again.")));
	memcpy(mc, &lc->mc, sizeof(KvlsmManifestCopy));
	for (k = 0; k < mc->hdr.nsst; k++)
	{
		for (i = 0; i < n; i++)
			if (results[i].desc.id == mc->sst[k].id && results[i].problems != NIL)
				mc->sst[k].level = KVLSM_LEVEL_QUARANTINE;
	}
	memset(&ia, 0, sizeof(ia));
	kvlsm_manifest_install_repaired(rel, mc, &ia);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);

	for (i = 0; i < n; i++)
		if (results[i].problems != NIL && results[i].desc.level != KVLSM_LEVEL_QUARANTINE)
			repair_row(out, "quarantined", &results[i],
					   "its extent is kept out of service and never reused");
}

/*
 * kvlsm_repair(rel regclass, dry_run bool DEFAULT true)
 *	 RETURNS SETOF (action, sstable, level, start_block, pages, entries,
 *					min_key, max_key, min_seq, max_seq, min_xid, max_xid, detail)
 */
PG_FUNCTION_INFO_V1(kvlsm_repair);
Datum
kvlsm_repair(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		dry_run = PG_GETARG_BOOL(1);
	Relation	rel;
	List	   *problems;
	SstResult  *results;
	LayoutCopy *lc;
	int			n;
	int			ndrop;
	RepairOut	out;
	const KvlsmKeyOps *ops;
	bool		is_index;

	rel = open_for_repair(relid);
	is_index = rel->rd_rel->relkind == RELKIND_INDEX;
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	out.rel = rel;
	ops = kvlsm_keyops(rel);

	problems = kvlsm_verify_relation(rel, true, &results, &n, &lc);
	if (lc == NULL && (is_index || rebuild_manifest(rel, dry_run, &out)))
	{
		/* a table's manifest was rebuilt; an index is replaced whole */
		close_and_rebuild_indexes(rel, dry_run, &out);
		if (!is_index)
			warn_repair(dry_run ? "would rebuild the manifest" : "rebuilt the manifest", relid);
		return (Datum) 0;
	}
	if (lc == NULL)
		refuse_unusable_layout(rel, problems);

	ndrop = report_dropped(&out, results, n, dry_run);
	report_suspects(&out, ops, results, n, dry_run);

	if (ndrop == 0)
	{
		repair_row(&out, "none", NULL,
				   problems == NIL ? "kvlsm_verify found no problem" :
				   "no SSTable fails verification; the problems kvlsm_verify reports are not in SSTables and repair cannot fix them");
		relation_close(rel, NoLock);
		return (Datum) 0;
	}

	if (!dry_run)
	{
		quarantine_failed(rel, lc, results, n, &out);
		close_and_rebuild_indexes(rel, false, &out);
		rel = NULL;
	}

	warn_repair(psprintf("%s %d SSTable%s", dry_run ? "would drop" : "dropped",
						 ndrop, ndrop == 1 ? "" : "s"), relid);
	if (rel != NULL)
		relation_close(rel, NoLock);
	return (Datum) 0;
}
