/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  kvlsm_verify: checking every page of one LSM.  Also the walk and the
 *	  whole-relation check that kvlsm_repair (repair.c) builds on, through
 *	  verify_internal.h.
 *
 * kvlsm_verify works like amcheck's verify_heapam: one result row per
 * problem (block, SSTable, level, message), none when the relation is
 * healthy.  It never stops at the first bad page: the metapage, the
 * manifest, the free-extent accounting and the log chains are checked from
 * private page copies, and each SSTable is walked by kvlsm_sst_walk, which
 * reports what it finds instead of raising it.  Errors that the buffer
 * manager itself raises (PostgreSQL's page checksums) are caught per
 * SSTable in a subtransaction and reported as a problem too.
 *
 * It takes only AccessShareLock, so flushes and compactions go on while it
 * runs; a table that a compaction retires during the walk may have its
 * pages reused, so the problems found in an SSTable are kept only if the
 * SSTable is still listed when its walk ends (ids are never reused, so one
 * that is still listed was never freed).  It works on a standby.  Pages are
 * copied out under a share lock on one buffer at a time; nothing here
 * writes, so nothing here is WAL-logged.
 *
 * Callers: SQL (kvlsm_verify, kvlsmctl verify); repair.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/admin.h"
#include "kvlsm/compaction.h"
#include "kvlsm/index.h"
#include "kvlsm/lsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/page.h"
#include "kvlsm/sstable.h"
#include "kvlsm/table.h"
#include "verify_internal.h"

static Problem *
make_problem(BlockNumber blkno, int64 sstable, int level, const char *msg)
{
	Problem    *p = palloc(sizeof(Problem));

	p->blkno = blkno;
	p->sstable = sstable;
	p->level = level;
	p->msg = pstrdup(msg);
	return p;
}

/* a private copy of one page, under a share lock on its buffer */
void
kvlsm_verify_copy_page(Relation rel, BlockNumber blkno, char *dst)
{
	Buffer		buf = ReadBuffer(rel, blkno);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(dst, BufferGetPage(buf), BLCKSZ);
	UnlockReleaseBuffer(buf);
}

/*
 * Read the metapage and the manifest it names into 'lc', checking both;
 * problems are appended to *problems.  Returns false when either is
 * unusable.  An install between the two reads is noticed (versions differ)
 * and the read is retried.
 */
static bool
read_layout(Relation rel, LayoutCopy *lc, List **problems)
{
	PGAlignedBlock page;
	int			attempt;

	for (attempt = 0; attempt < 10; attempt++)
	{
		char	   *problem;
		PageHeader	ph = (PageHeader) page.data;

		lc->nblocks = RelationGetNumberOfBlocks(rel);
		if (lc->nblocks < KVLSM_FIRST_DATA_BLKNO)
		{
			*problems = lappend(*problems,
								make_problem(InvalidBlockNumber, -1, -1,
											 psprintf("relation has %u blocks, fewer than the metapage and manifest slots",
													  lc->nblocks)));
			return false;
		}
		kvlsm_verify_copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
		problem = kvlsm_page_problem((Page) page.data, KVLSM_PAGE_META);
		if (problem == NULL &&
			ph->pd_lower - SizeOfPageHeaderData < KVLSM_META_MIN_SIZE)
			problem = psprintf("metapage holds %u bytes, fewer than its %zu-byte contents",
							   (unsigned) (ph->pd_lower - SizeOfPageHeaderData),
							   (Size) KVLSM_META_MIN_SIZE);
		if (problem == NULL)
		{
			kvlsm_metapage_contents((Page) page.data, &lc->meta);
			if (lc->meta.magic != KVLSM_MAGIC || lc->meta.version != KVLSM_FORMAT_VERSION)
				problem = psprintf("metapage has magic 0x%08X and version %u",
								   lc->meta.magic, lc->meta.version);
			else if (lc->meta.manifest_blkno != KVLSM_MANIFEST_BLKNO_A &&
					 lc->meta.manifest_blkno != KVLSM_MANIFEST_BLKNO_B)
				problem = psprintf("metapage names block %u as the manifest",
								   lc->meta.manifest_blkno);
		}
		if (problem != NULL)
		{
			*problems = lappend(*problems,
								make_problem(KVLSM_METAPAGE_BLKNO, -1, -1, problem));
			return false;
		}

		{
			BlockNumber blkno;

			problem = kvlsm_manifest_try_read(rel, lc->meta.manifest_blkno, &lc->mc,
											  &blkno);
			if (problem != NULL)
			{
				KvlsmMetaPageData now;

				/* an install that recycled a continuation page meanwhile? */
				kvlsm_verify_copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
				kvlsm_metapage_contents((Page) page.data, &now);
				if (now.manifest_version != lc->meta.manifest_version)
					continue;
				*problems = lappend(*problems, make_problem(blkno, -1, -1, problem));
				return false;
			}
		}
		if (lc->mc.hdr.version != lc->meta.manifest_version)
			continue;			/* an install ran between the two reads */
		return true;
	}
	*problems = lappend(*problems,
						make_problem(KVLSM_METAPAGE_BLKNO, -1, -1,
									 "manifest version keeps differing from the metapage's"));
	return false;
}

/* is an SSTable with this id listed (in any state) in the current manifest? */
static bool
sst_still_listed(Relation rel, uint64 id)
{
	LayoutCopy *lc = palloc(sizeof(LayoutCopy));
	List	   *ignored = NIL;
	bool		found = false;
	uint32		i;

	if (read_layout(rel, lc, &ignored))
	{
		for (i = 0; i < lc->mc.hdr.nsst; i++)
			if (lc->mc.sst[i].id == id)
				found = true;
	}
	else
		found = true;			/* keep the problems; the layout's are reported too */
	pfree(lc);
	return found;
}

/* an extent of the relation and what it is, for the accounting check */
typedef struct Extent
{
	BlockNumber start;
	uint32		npages;
	int64		sstable;		/* -1: a free extent or the log reserve */
	const char *what;
	bool		unlogged;		/* may lie past the file (KVLSM_MAX_UNLOGGED_GAP) */
} Extent;

static int
extent_start_cmp(const void *a, const void *b)
{
	const Extent *ea = a;
	const Extent *eb = b;

	return (ea->start > eb->start) - (ea->start < eb->start);
}

/*
 * Check the metapage's counters against the manifest and that every extent
 * lies inside the relation, past the fixed blocks, with no two sharing a
 * block.  Returns the extents sorted by start (for the log chain check).
 */
static Extent *
check_accounting(LayoutCopy *lc, List **problems, int *nextents)
{
	Extent	   *ext;
	int			n = 0;
	uint32		i;
	uint64		max_id = 0;
	uint64		max_seq = 0;

	ext = palloc(sizeof(Extent) * (lc->mc.hdr.nsst + lc->mc.hdr.nfree + 2));
	if (lc->mc.hdr.cont_npages > 0)
	{
		ext[n].start = lc->mc.hdr.cont_start;
		ext[n].npages = lc->mc.hdr.cont_npages;
		ext[n].sstable = -1;
		ext[n].what = "manifest continuation";
		ext[n].unlogged = false;
		n++;
	}
	for (i = 0; i < lc->mc.hdr.nsst; i++)
	{
		KvlsmSstDesc *d = &lc->mc.sst[i];

		ext[n].start = d->start;
		ext[n].npages = d->npages;
		ext[n].sstable = (int64) d->id;
		ext[n].what = "SSTable";
		/* the reservation of an output being written */
		ext[n].unlogged = (d->level == KVLSM_LEVEL_PENDING && d->nentries == 0);
		n++;
		max_id = Max(max_id, d->id);
		if (d->nentries > 0)
			max_seq = Max(max_seq, d->maxseq);
		if (d->level >= KVLSM_MAX_LEVELS && d->level != KVLSM_LEVEL_PENDING &&
			d->level != KVLSM_LEVEL_QUARANTINE)
			*problems = lappend(*problems,
								make_problem(lc->meta.manifest_blkno, (int64) d->id, d->level,
											 psprintf("manifest places SSTable %llu at level %u",
													  (unsigned long long) d->id, d->level)));
	}
	for (i = 0; i < lc->mc.hdr.nfree; i++)
	{
		ext[n].start = lc->mc.free[i].start;
		ext[n].npages = lc->mc.free[i].npages;
		ext[n].sstable = -1;
		ext[n].what = "free extent";
		ext[n].unlogged = true;
		n++;
	}
	if (lc->meta.log_reserve_npages > 0)
	{
		ext[n].start = lc->meta.log_reserve_start;
		ext[n].npages = lc->meta.log_reserve_npages;
		ext[n].sstable = -1;
		ext[n].what = "log reserve";
		ext[n].unlogged = true;
		n++;
	}
	qsort(ext, n, sizeof(Extent), extent_start_cmp);
	for (i = 0; i < (uint32) n; i++)
	{
		/*
		 * Free extents and the log reserve may end past the file by what
		 * an OS crash can take of a pre-extension (kvlsm_ensure_blocks).
		 */
		if (ext[i].npages == 0 || ext[i].start < KVLSM_FIRST_DATA_BLKNO ||
			(uint64) ext[i].start + ext[i].npages >
			(uint64) lc->nblocks + (ext[i].unlogged ? KVLSM_MAX_UNLOGGED_GAP : 0))
			*problems = lappend(*problems,
								make_problem(ext[i].start, ext[i].sstable, -1,
											 psprintf("%s of blocks %u-%llu lies outside the data blocks %u-%u",
													  ext[i].what, ext[i].start,
													  (unsigned long long) ext[i].start + ext[i].npages - 1,
													  KVLSM_FIRST_DATA_BLKNO, lc->nblocks - 1)));
		if (i > 0 && (uint64) ext[i - 1].start + ext[i - 1].npages > ext[i].start)
			*problems = lappend(*problems,
								make_problem(ext[i].start, ext[i].sstable, -1,
											 psprintf("%s at block %u overlaps the %s at blocks %u-%llu",
													  ext[i].what, ext[i].start, ext[i - 1].what,
													  ext[i - 1].start,
													  (unsigned long long) ext[i - 1].start + ext[i - 1].npages - 1)));
	}
	if (lc->mc.hdr.nsst > 0 && max_id >= lc->meta.next_sstid)
		*problems = lappend(*problems,
							make_problem(KVLSM_METAPAGE_BLKNO, -1, -1,
										 psprintf("next SSTable id %llu is not above the largest listed id %llu",
												  (unsigned long long) lc->meta.next_sstid,
												  (unsigned long long) max_id)));
	if (max_seq >= lc->meta.seq_hwm)
		*problems = lappend(*problems,
							make_problem(KVLSM_METAPAGE_BLKNO, -1, -1,
										 psprintf("sequence high-water mark %llu is not above the largest stored sequence number %llu",
												  (unsigned long long) lc->meta.seq_hwm,
												  (unsigned long long) max_seq)));
	*nextents = n;
	return ext;
}

/* the extent holding 'blkno', or NULL */
static Extent *
find_extent(Extent *ext, int n, BlockNumber blkno)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (blkno < ext[mid].start)
			hi = mid - 1;
		else if ((uint64) blkno >= (uint64) ext[mid].start + ext[mid].npages)
			lo = mid + 1;
		else
			return &ext[mid];
	}
	return NULL;
}

/*
 * Walk one memtable generation's log chain from its tail: every page must
 * be a sound log page of that generation, outside every extent, and the
 * chain must have the length and head the metapage records.
 */
static List *
check_log_chain(Relation rel, const LayoutCopy *lc, const KvlsmLogChain *chain,
				const char *name, Extent *ext, int next)
{
	List	   *problems = NIL;
	PGAlignedBlock page;
	BlockNumber b = chain->tail;
	BlockNumber last = InvalidBlockNumber;
	uint32		n = 0;

	if (chain->genid == 0)
		return NIL;
	while (b != InvalidBlockNumber && n <= chain->npages)
	{
		char	   *problem;
		Extent	   *e;

		CHECK_FOR_INTERRUPTS();
		if (b < KVLSM_FIRST_DATA_BLKNO || b >= lc->nblocks)
		{
			problems = lappend(problems,
							   make_problem(b, -1, -1,
											psprintf("%s log chain refers to block %u outside the data blocks",
													 name, b)));
			break;
		}
		e = find_extent(ext, next, b);
		if (e != NULL)
			problems = lappend(problems,
							   make_problem(b, e->sstable, -1,
											psprintf("%s log chain page lies inside the %s at block %u",
													 name, e->what, e->start)));
		kvlsm_verify_copy_page(rel, b, page.data);
		problem = kvlsm_page_problem((Page) page.data, KVLSM_PAGE_LOG);
		if (problem == NULL && KvlsmPageGetOpaque((Page) page.data)->owner != chain->genid)
			problem = psprintf("log page of generation %llu in the %s log chain of generation %llu",
							   (unsigned long long) KvlsmPageGetOpaque((Page) page.data)->owner,
							   name, (unsigned long long) chain->genid);
		if (problem != NULL)
		{
			problems = lappend(problems, make_problem(b, -1, -1, problem));
			break;
		}
		n++;
		last = b;
		b = KvlsmPageGetOpaque((Page) page.data)->link;
	}
	if (problems == NIL && (n != chain->npages || last != chain->head))
		problems = lappend(problems,
						   make_problem(chain->tail, -1, -1,
										psprintf("%s log chain has %u pages ending at block %u, the metapage says %u pages from block %u",
												 name, n, last, chain->npages, chain->head)));
	return problems;
}

/* does the current metapage still list a chain of this generation? */
static bool
chain_still_listed(Relation rel, uint64 genid)
{
	KvlsmMetaPageData meta;

	kvlsm_read_metapage(rel, &meta);
	return meta.active.genid == genid || meta.frozen.genid == genid;
}

/* ---------------------------------------------------------------------
 * Walking SSTables
 * ---------------------------------------------------------------------
 */

typedef struct WalkArg
{
	SstResult  *res;
	MemoryContext cxt;
} WalkArg;

static void
walk_problem_cb(void *arg, BlockNumber blkno, const char *msg)
{
	WalkArg    *wa = arg;
	MemoryContext old = MemoryContextSwitchTo(wa->cxt);

	wa->res->problems = lappend(wa->res->problems,
								make_problem(blkno, (int64) wa->res->desc.id,
											 wa->res->desc.level, msg));
	MemoryContextSwitchTo(old);
}

static void
walk_entry_cb(void *arg, BlockNumber blkno, const char *key, int keylen,
			  uint64 seq, uint16 flags, const char *val, uint32 vallen)
{
	WalkArg    *wa = arg;
	SstResult  *res = wa->res;
	MemoryContext old = MemoryContextSwitchTo(wa->cxt);

	if (res->minkey == NULL)
	{
		res->minkey = palloc(Max(keylen, 1));
		memcpy(res->minkey, key, keylen);
		res->minkeylen = keylen;
	}
	if (res->maxkey == NULL)
		res->maxkey = palloc(KVLSM_MAX_KEY_SIZE);
	memcpy(res->maxkey, key, keylen);
	res->maxkeylen = keylen;
	res->entries_seen++;
	if (res->is_table)
	{
		KvlsmRowRecord rr;
		const char *body;
		uint32		bodylen;

		if (kvlsm_decode_row_record(val, vallen, &rr, &body, &bodylen) &&
			TransactionIdIsNormal(rr.xid))
		{
			if (!TransactionIdIsValid(res->minxid) || TransactionIdPrecedes(rr.xid, res->minxid))
				res->minxid = rr.xid;
			if (!TransactionIdIsValid(res->maxxid) || TransactionIdFollows(rr.xid, res->maxxid))
				res->maxxid = rr.xid;
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Walk one SSTable, catching errors raised below us (the buffer manager's
 * checksum failures, a comparator's complaint about a damaged key) in a
 * subtransaction, so that one bad page never ends the check.  Only data
 * corruption is caught: a cancel or anything else still ends the query.
 */
void
kvlsm_verify_walk_sstable(Relation rel, const KvlsmSstDesc *desc, bool check_bloom,
						  SstResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	WalkArg		wa;
	KvlsmSstWalker w;

	memset(res, 0, sizeof(*res));
	res->desc = *desc;
	res->is_table = rel->rd_rel->relkind != RELKIND_INDEX;
	wa.res = res;
	wa.cxt = cxt;
	memset(&w, 0, sizeof(w));
	w.problem = walk_problem_cb;
	w.entry = walk_entry_cb;
	w.arg = &wa;
	w.ops = kvlsm_keyops(rel);
	w.check_bloom = check_bloom;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		res->walked = kvlsm_sst_walk(rel, desc, &res->hdr, &w);
		if (w.hdr_minkey != NULL && res->problems != NIL)
		{
			/*
			 * Damaged pages hide keys: the range the header records is the
			 * one that may be lost.
			 */
			res->minkey = w.hdr_minkey;
			res->minkeylen = w.hdr_minkeylen;
			res->maxkey = w.hdr_maxkey;
			res->maxkeylen = w.hdr_maxkeylen;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_DATA_CORRUPTED &&
			edata->sqlerrcode != ERRCODE_INDEX_CORRUPTED)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		res->problems = lappend(res->problems,
								make_problem(InvalidBlockNumber, (int64) desc->id,
											 desc->level, edata->message));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

static int
level_member_cmp(const void *a, const void *b, void *arg)
{
	const SstResult *ra = *(SstResult *const *) a;
	const SstResult *rb = *(SstResult *const *) b;
	const KvlsmKeyOps *ops = arg;

	return ops->cmp(ra->minkey, ra->minkeylen, rb->minkey, rb->minkeylen, ops->arg);
}

/* the tables of every level below L0 must have disjoint key ranges */
static List *
check_levels(Relation rel, SstResult *results, int n)
{
	const KvlsmKeyOps *ops = kvlsm_keyops(rel);
	SstResult **members = palloc(sizeof(SstResult *) * Max(n, 1));
	List	   *problems = NIL;
	int			level;

	for (level = 1; level < KVLSM_MAX_LEVELS; level++)
	{
		int			m = 0;
		int			i;

		for (i = 0; i < n; i++)
			if (results[i].desc.level == level && results[i].walked &&
				results[i].problems == NIL && results[i].minkey != NULL)
				members[m++] = &results[i];
		qsort_arg(members, m, sizeof(SstResult *), level_member_cmp, (void *) ops);
		for (i = 1; i < m; i++)
		{
			SstResult  *prev = members[i - 1];
			SstResult  *cur = members[i];

			if (ops->cmp(prev->maxkey, prev->maxkeylen, cur->minkey, cur->minkeylen, ops->arg) >= 0)
				problems = lappend(problems,
								   make_problem(cur->desc.start, (int64) cur->desc.id, level,
												psprintf("key range of SSTable %llu overlaps SSTable %llu in the same level",
														 (unsigned long long) cur->desc.id,
														 (unsigned long long) prev->desc.id)));
		}
	}
	pfree(members);
	return problems;
}

/*
 * Check the whole relation; returns the problems.  With 'results' the
 * per-SSTable results are returned too (for repair), and *lc_out gets the
 * layout when it was usable.
 */
List *
kvlsm_verify_relation(Relation rel, bool check_bloom, SstResult **results_out,
					  int *nresults, LayoutCopy **lc_out)
{
	LayoutCopy *lc = palloc0(sizeof(LayoutCopy));
	List	   *problems = NIL;
	Extent	   *ext;
	int			next;
	SstResult  *results;
	uint32		i;
	List	   *chain_problems;

	*nresults = 0;
	if (results_out)
		*results_out = NULL;
	if (lc_out)
		*lc_out = NULL;
	if (!read_layout(rel, lc, &problems))
		return problems;
	if (lc_out)
		*lc_out = lc;

	ext = check_accounting(lc, &problems, &next);
	chain_problems = check_log_chain(rel, lc, &lc->meta.active, "active", ext, next);
	if (chain_problems != NIL && chain_still_listed(rel, lc->meta.active.genid))
		problems = list_concat(problems, chain_problems);
	chain_problems = check_log_chain(rel, lc, &lc->meta.frozen, "frozen", ext, next);
	if (chain_problems != NIL && chain_still_listed(rel, lc->meta.frozen.genid))
		problems = list_concat(problems, chain_problems);

	results = palloc0(sizeof(SstResult) * Max(lc->mc.hdr.nsst, 1));
	for (i = 0; i < lc->mc.hdr.nsst; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (lc->mc.sst[i].level == KVLSM_LEVEL_QUARANTINE ||
			(lc->mc.sst[i].level == KVLSM_LEVEL_PENDING && lc->mc.sst[i].nentries == 0))
		{
			/*
			 * Known bad, out of service since kvlsm_repair; or the extent
			 * reserved for a compaction output still being written.
			 */
			results[i].desc = lc->mc.sst[i];
			continue;
		}
		kvlsm_verify_walk_sstable(rel, &lc->mc.sst[i], check_bloom, &results[i]);
		if (results[i].problems != NIL &&
			!sst_still_listed(rel, lc->mc.sst[i].id))
			results[i].problems = NIL;	/* retired and reused meanwhile */
		problems = list_concat(problems, results[i].problems);
	}
	problems = list_concat(problems, check_levels(rel, results, lc->mc.hdr.nsst));
	*nresults = lc->mc.hdr.nsst;
	if (results_out)
		*results_out = results;
	return problems;
}

static void
emit_problems(FunctionCallInfo fcinfo, List *problems)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	foreach(lc, problems)
	{
		Problem    *p = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {0};

		if (p->blkno == InvalidBlockNumber)
			nulls[0] = true;
		else
			values[0] = Int64GetDatum(p->blkno);
		if (p->sstable < 0)
			nulls[1] = true;
		else
			values[1] = Int64GetDatum(p->sstable);
		if (p->level < 0 || p->level >= KVLSM_MAX_LEVELS)
			nulls[2] = true;
		else
			values[2] = Int32GetDatum(p->level);
		values[3] = CStringGetTextDatum(p->msg);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * kvlsm_verify(rel regclass, check_bloom bool DEFAULT true)
 *	 RETURNS SETOF (blkno bigint, sstable bigint, level int, msg text)
 */
PG_FUNCTION_INFO_V1(kvlsm_verify);
Datum
kvlsm_verify(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), AccessShareLock);
	bool		check_bloom = PG_GETARG_BOOL(1);
	List	   *problems;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	problems = kvlsm_verify_relation(rel, check_bloom, NULL, &n, NULL);
	emit_problems(fcinfo, problems);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}
