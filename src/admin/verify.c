/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  kvlsm_verify and kvlsm_repair: checking every page of one LSM, and
 *	  taking the SSTables that fail out of service.
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
 * that is still listed was never freed).  It works on a standby.
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
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/admin.h"
#include "kvlsm/compaction.h"
#include "kvlsm/index.h"
#include "kvlsm/lsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/page.h"
#include "kvlsm/sstable.h"
#include "kvlsm/table.h"

/* one problem found */
typedef struct Problem
{
	BlockNumber blkno;			/* InvalidBlockNumber: not about one block */
	int64		sstable;		/* -1: not about one SSTable */
	int			level;			/* -1: unknown */
	char	   *msg;
} Problem;

/* what a walk of one SSTable found */
typedef struct SstResult
{
	KvlsmSstDesc desc;
	bool		walked;			/* the header was usable */
	List	   *problems;
	KvlsmSstHeader hdr;
	char	   *minkey;			/* first and last key seen */
	int			minkeylen;
	char	   *maxkey;
	int			maxkeylen;
	uint64		entries_seen;
	TransactionId minxid;		/* tables: xids of the records seen */
	TransactionId maxxid;
	bool		is_table;
} SstResult;

/* a private, checked copy of the metapage and the manifest it names */
typedef struct LayoutCopy
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy mc;
	BlockNumber nblocks;
} LayoutCopy;

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

static void
copy_page(Relation rel, BlockNumber blkno, char *dst)
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
		copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
		problem = kvlsm_page_problem((Page) page.data, KVLSM_PAGE_META);
		if (problem == NULL &&
			ph->pd_lower - SizeOfPageHeaderData < sizeof(KvlsmMetaPageData))
			problem = psprintf("metapage holds %u bytes, fewer than its %zu-byte contents",
							   (unsigned) (ph->pd_lower - SizeOfPageHeaderData),
							   sizeof(KvlsmMetaPageData));
		if (problem == NULL)
		{
			memcpy(&lc->meta, KvlsmPageGetMeta((Page) page.data), sizeof(lc->meta));
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
				copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
				memcpy(&now, KvlsmPageGetMeta((Page) page.data), sizeof(now));
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
		copy_page(rel, b, page.data);
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
	if (res->is_table && vallen >= sizeof(KvlsmRowRecord))
	{
		KvlsmRowRecord rr;

		memcpy(&rr, val, sizeof(rr));
		if (TransactionIdIsNormal(rr.xid))
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
static void
walk_one(Relation rel, const KvlsmSstDesc *desc, bool check_bloom, SstResult *res)
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
static List *
verify_relation(Relation rel, bool check_bloom, SstResult **results_out,
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
		walk_one(rel, &lc->mc.sst[i], check_bloom, &results[i]);
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
	problems = verify_relation(rel, check_bloom, NULL, &n, NULL);
	emit_problems(fcinfo, problems);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Repair
 * ---------------------------------------------------------------------
 */

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
		copy_page(rel, b, page.data);
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
	PGAlignedBlock page;
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc0(sizeof(KvlsmManifestCopy));
	KvlsmSstDesc *cands;
	int			ncands = 0;
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	BlockNumber other;
	BlockNumber b;
	uint64		maxid = 0;
	uint64		base_maxid = 0;
	bool	   *used;
	int			i;
	int			nkept = 0,
				nfound = 0,
				nquarantined = 0;
	char	   *problem;

	if (nblocks < KVLSM_FIRST_DATA_BLKNO)
		return false;
	copy_page(rel, KVLSM_METAPAGE_BLKNO, page.data);
	if (kvlsm_page_problem((Page) page.data, KVLSM_PAGE_META) != NULL)
		return false;
	memcpy(&meta, KvlsmPageGetMeta((Page) page.data), sizeof(meta));
	if (meta.magic != KVLSM_MAGIC || meta.version != KVLSM_FORMAT_VERSION ||
		(meta.manifest_blkno != KVLSM_MANIFEST_BLKNO_A &&
		 meta.manifest_blkno != KVLSM_MANIFEST_BLKNO_B))
		return false;

	cands = palloc(sizeof(KvlsmSstDesc) * (KVLSM_MAX_SST * 4));

	/* the previous version, if its slot is sound */
	other = meta.manifest_blkno == KVLSM_MANIFEST_BLKNO_A ?
		KVLSM_MANIFEST_BLKNO_B : KVLSM_MANIFEST_BLKNO_A;
	{
		/*
		 * Its continuation pages went back to the free list when the
		 * current version was installed: if they were reused since, it is
		 * unreadable and the scan alone finds the tables.
		 */
		KvlsmManifestCopy *prev = palloc(sizeof(KvlsmManifestCopy));
		BlockNumber blkno;

		problem = kvlsm_manifest_try_read(rel, other, prev, &blkno);
		if (problem == NULL && prev->hdr.version < meta.manifest_version)
			for (i = 0; i < (int) prev->hdr.nsst; i++)
			{
				if (prev->sst[i].level == KVLSM_LEVEL_PENDING)
					continue;	/* an unfinished compaction's output */
				cands[ncands++] = prev->sst[i];
				base_maxid = Max(base_maxid, prev->sst[i].id);
			}
		pfree(prev);
	}
	maxid = base_maxid;

	/* every newer SSTable, by its header page */
	for (b = KVLSM_FIRST_DATA_BLKNO; b < nblocks; b++)
	{
		KvlsmPageOpaque opaque;

		CHECK_FOR_INTERRUPTS();
		copy_page(rel, b, page.data);
		if (kvlsm_page_problem((Page) page.data, KVLSM_PAGE_SST_HEADER) != NULL)
			continue;
		opaque = KvlsmPageGetOpaque((Page) page.data);
		if (opaque->owner <= base_maxid)
			continue;			/* listed above, or retired before it */
		if (ncands >= KVLSM_MAX_SST * 4)
			break;
		desc_from_header(b, PageGetContents((Page) page.data), &cands[ncands]);
		if (cands[ncands].id != opaque->owner || cands[ncands].npages == 0)
			continue;
		maxid = Max(maxid, cands[ncands].id);
		ncands++;
		nfound++;
	}

	/* keep what verifies */
	used = palloc0(sizeof(bool) * nblocks);
	for (i = 0; i < ncands; i++)
	{
		SstResult	res;
		KvlsmSstDesc *d = &cands[i];

		walk_one(rel, d, true, &res);
		if (res.problems == NIL && res.walked &&
			mark_used(used, nblocks, d->start, d->npages))
		{
			if (mc->hdr.nsst >= KVLSM_MAX_SST)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("kvlsm_repair found more SSTables in \"%s\" than a manifest holds",
								RelationGetRelationName(rel))));
			mc->sst[mc->hdr.nsst++] = *d;
			nkept++;
			repair_row(out, d->id > base_maxid ? (dry_run ? "would recover" : "recovered") :
					   (dry_run ? "would keep" : "kept"), &res,
					   d->id > base_maxid ? "found by its header page, newer than the last readable manifest; placed in L0" :
					   "listed by the previous manifest version");
		}
		else if (d->id <= base_maxid && res.walked &&
				 mark_used(used, nblocks, d->start, d->npages) &&
				 mc->hdr.nsst < KVLSM_MAX_SST)
		{
			/* damaged in place: out of service, pages not reused */
			d->level = KVLSM_LEVEL_QUARANTINE;
			mc->sst[mc->hdr.nsst++] = *d;
			nquarantined++;
			repair_row(out, dry_run ? "would drop" : "quarantined", &res,
					   "listed by the previous manifest version, fails verification");
		}
		else if (d->id <= base_maxid)
			repair_row(out, "retired", &res,
					   "listed by the previous manifest version, its pages now hold something else");
	}

	/* the log chains and the reserve stay; everything else is free */
	mark_chain(rel, used, nblocks, &meta.active);
	mark_chain(rel, used, nblocks, &meta.frozen);
	if (meta.log_reserve_npages > 0)
		(void) mark_used(used, nblocks, meta.log_reserve_start, meta.log_reserve_npages);
	for (b = KVLSM_FIRST_DATA_BLKNO; b < nblocks;)
	{
		BlockNumber e = b;

		if (used[b])
		{
			b++;
			continue;
		}
		while (e < nblocks && !used[e])
			e++;
		kvlsm_manifest_give_extent(mc, b, e - b);
		b = e;
	}

	{
		StringInfoData msg;

		initStringInfo(&msg);
		appendStringInfo(&msg, "manifest slot %u is unusable; %s a manifest from slot %u (%s) and a scan of %u blocks: %d SSTables kept, %d of them found by the scan, %d quarantined, %u free extents",
						 meta.manifest_blkno, dry_run ? "would rebuild" : "rebuilt", other,
						 problem == NULL ? "the previous version" : "also unusable, so from the scan alone",
						 nblocks, nkept, nfound, nquarantined, mc->hdr.nfree);
		repair_row(out, dry_run ? "would rebuild manifest" : "rebuilt manifest", NULL, msg.data);
	}

	if (!dry_run)
	{
		KvlsmInstallArg ia;

		memset(&ia, 0, sizeof(ia));
		ia.next_sstid = maxid + 1;
		LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
		kvlsm_manifest_install_repaired(rel, mc, &ia);
		UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	}
	return true;
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
	Oid			heapid = InvalidOid;
	List	   *problems;
	SstResult  *results;
	LayoutCopy *lc;
	int			n;
	int			i;
	int			ndrop = 0;
	RepairOut	out;
	const KvlsmKeyOps *ops;
	bool		is_index;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("kvlsm_repair cannot run during recovery"),
				 errhint("Repair the primary; the standby receives the repair through WAL.")));

	/*
	 * Check ownership and the access method before taking the lock, so
	 * that nobody can hold AccessExclusiveLock on a relation they could
	 * not repair (as RangeVarCallbackOwnsTable does for DDL).
	 */
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
	rel = kvlsm_open_relation(relid, AccessExclusiveLock);
	is_index = rel->rd_rel->relkind == RELKIND_INDEX;
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	out.rel = rel;
	ops = kvlsm_keyops(rel);

	problems = verify_relation(rel, true, &results, &n, &lc);
	if (lc == NULL && (is_index || rebuild_manifest(rel, dry_run, &out)))
	{
		/* a table's manifest was rebuilt; an index is replaced whole */
		close_and_rebuild_indexes(rel, dry_run, &out);
		if (!is_index)
			warn_repair(dry_run ? "would rebuild the manifest" : "rebuilt the manifest", relid);
		return (Datum) 0;
	}
	if (lc == NULL)
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

	/* what would be lost */
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
		repair_row(&out, dry_run ? "would drop" : "dropped", &results[i], msg.data);
	}

	/*
	 * Versions that surviving tables hold under a newer dropped table: a
	 * delete (or, in an index, a tombstone) that only the dropped table held
	 * no longer hides them, so they may come back.
	 */
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

				repair_row(&out, "suspect", &results[i], detail);
			}
		}
	}

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
		KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
		KvlsmMetaPageData meta;
		KvlsmInstallArg ia;
		uint32		k;

		/*
		 * Under the flush lock, from a fresh copy: with AccessExclusiveLock
		 * no worker flushes or compacts this relation, but the copy read
		 * for verification must still be the installed one.
		 */
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
				repair_row(&out, "quarantined", &results[i],
						   "its extent is kept out of service and never reused");

		close_and_rebuild_indexes(rel, false, &out);
		rel = NULL;
	}

	warn_repair(psprintf("%s %d SSTable%s", dry_run ? "would drop" : "dropped",
						 ndrop, ndrop == 1 ? "" : "s"), relid);
	if (rel != NULL)
		relation_close(rel, NoLock);
	return (Datum) 0;
}
