/*-------------------------------------------------------------------------
 *
 * logreader.c
 *	  Loading and catching up the memtable from log pages: the reader of
 *	  what logwriter.c writes (LevelDB keeps log_writer and log_reader
 *	  together the same way).
 *
 * Each memtable generation has a chain of log pages, linked backwards from
 * its tail (page.h).  A generation remembers how far it has applied its
 * chain (replay_block, replay_nitems), so a catch-up applies only what was
 * added since.  On a primary the memtable is ahead of its log and this
 * runs once, when an entry is loaded; on a hot standby it runs at every
 * attach, over the pages recovery replayed.  A record larger than a page
 * is a span of pages written in one WAL record (logwriter.c): its pieces
 * are joined before the record is applied.
 *
 * Locks: the caller (kvlsm_attach) holds the LSM lock exclusively; pages
 * are copied out under a share lock on one buffer at a time, and applied
 * after it is released.  Nothing here writes WAL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"

#include "kvlsm/compress.h"
#include "kvlsm/span.h"
#include "kvlsm/logreader.h"
#include "kvlsm/manifest.h"

/* copies of the log pages of one chain, from its tail backwards */
typedef struct LogPageCopies
{
	char	  **pages;
	BlockNumber *blocks;
	int			n;
	int			cap;
} LogPageCopies;

/*
 * Copy the log pages of 'chain' from its tail back to the last page 'gen'
 * applied (or to the chain's head) into 'lp'.  False when the chain was
 * retired under us (standby): the page copies are freed, and the caller
 * starts over from a fresh metapage.
 */
static bool
copy_chain_back(Relation rel, KvlsmMemGen *gen, const KvlsmLogChain *chain,
				LogPageCopies *lp)
{
	BlockNumber b = chain->tail;
	int			i;

	while (b != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page;
		char	   *copy;

		CHECK_FOR_INTERRUPTS();
		buf = kvlsm_read_buffer(rel, b);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		copy = palloc(BLCKSZ);
		memcpy(copy, page, BLCKSZ);
		UnlockReleaseBuffer(buf);
		if (!kvlsm_page_owner_is((Page) copy, KVLSM_PAGE_LOG, chain->genid))
		{
			/*
			 * On a standby the chain can be retired and its pages reused
			 * while we walk it: start over from a fresh metapage.  On a
			 * primary the chain is stable under the LSM lock, so this is
			 * corruption.
			 */
			if (RecoveryInProgress())
			{
				for (i = 0; i < lp->n; i++)
					pfree(lp->pages[i]);
				pfree(copy);
				return false;
			}
			kvlsm_page_check(rel, b, (Page) copy, KVLSM_PAGE_LOG);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: log page of generation %llu found in the chain of generation %llu",
							RelationGetRelationName(rel), b,
							(unsigned long long) KvlsmPageGetOpaque((Page) copy)->owner,
							(unsigned long long) chain->genid)));
		}
		kvlsm_page_check(rel, b, (Page) copy, KVLSM_PAGE_LOG);
		if (lp->n == lp->cap)
		{
			lp->cap = lp->cap ? lp->cap * 2 : 16;
			lp->pages = lp->pages ?
				repalloc(lp->pages, sizeof(char *) * lp->cap) :
				palloc(sizeof(char *) * lp->cap);
			lp->blocks = lp->blocks ?
				repalloc(lp->blocks, sizeof(BlockNumber) * lp->cap) :
				palloc(sizeof(BlockNumber) * lp->cap);
		}
		lp->pages[lp->n] = copy;
		lp->blocks[lp->n] = b;
		lp->n++;
		if (b == gen->replay_block)
			break;
		b = KvlsmPageGetOpaque((Page) copy)->link;
	}
	return true;
}

/*
 * A record larger than a page: join its pieces, the span's first page
 * lp->pages[i] and the continuation pages that follow it (lower indexes,
 * since the copies run from the tail backwards).  Returns the joined bytes
 * (*len of them) and, in *npages, how many pages they took.
 */
static char *
join_span(Relation rel, const LogPageCopies *lp, int i, Size *len,
		  uint32 *npages)
{
	Page		page = (Page) lp->pages[i];
	KvlsmPageOpaque opaque = KvlsmPageGetOpaque(page);
	Size		cap = KVLSM_MAX_SPAN_PAGES * KVLSM_PAGE_CAPACITY;
	char	   *span;

	*len = 0;
	*npages = 1;
	span = palloc(cap);
	kvlsm_span_append(page, span, len, cap);
	while (i - (int) *npages >= 0 &&
		   (KvlsmPageGetOpaque((Page) lp->pages[i - *npages])->flags & KVLSM_PAGE_FLAG_CONT) &&
		   *npages < KVLSM_MAX_SPAN_PAGES)
	{
		/* fewer than KVLSM_MAX_SPAN_PAGES pieces always fit */
		kvlsm_span_append((Page) lp->pages[i - *npages], span, len, cap);
		(*npages)++;
	}
	if (*npages < 2 || opaque->nitems != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: log record spanning pages is incomplete",
						RelationGetRelationName(rel), lp->blocks[i])));
	return span;
}

/*
 * Insert the records in [p, endp) of log page 'blkno' (at most 'nitems'),
 * from item 'skip' on, into 'gen', marked logged.  Returns the number of
 * items walked.
 */
static uint32
apply_log_records(Relation rel, KvlsmMemGen *gen, const KvlsmKeyOps *ops,
				  BlockNumber blkno, const char *p, const char *endp,
				  uint32 nitems, uint32 skip)
{
	uint32		item = 0;

	while (p < endp && item < nitems)
	{
		KvlsmRecordHeader rh;
		KvlsmSkipNode *node;

		memcpy(&rh, p, sizeof(rh));
		if (p + sizeof(rh) + rh.keylen + rh.vallen > endp)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: log record %u runs past the page",
							RelationGetRelationName(rel), blkno, item)));
		if (item >= skip)
		{
			node = kvlsm_memgen_insert(gen, p + sizeof(rh), rh.keylen, rh.seq,
									   rh.flags, p + sizeof(rh) + rh.keylen,
									   rh.vallen, ops->cmp, ops->arg);
			if (node == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("kvlsm memtable memory is full while loading \"%s\"",
								RelationGetRelationName(rel)),
						 errhint("Increase kvlsm.memtable_memory.")));
			node->logged = 1;
			gen->unlogged--;
		}
		p += sizeof(rh) + rh.keylen + rh.vallen;
		item++;
	}
	return item;
}

/*
 * Apply the copied pages forward, oldest first, advancing the generation's
 * replay position page by page; each copy is freed once applied.
 */
static void
apply_page_copies(Relation rel, KvlsmMemGen *gen, const KvlsmKeyOps *ops,
				  LogPageCopies *lp)
{
	char	  **pages = lp->pages;
	BlockNumber *blocks = lp->blocks;
	int			i;

	for (i = lp->n - 1; i >= 0; i--)
	{
		Page		page = (Page) pages[i];
		KvlsmPageOpaque opaque = KvlsmPageGetOpaque(page);
		char	   *p = (char *) page + SizeOfPageHeaderData;
		char	   *endp = (char *) page + ((PageHeader) page)->pd_lower;
		uint32		item;
		uint32		skip = (blocks[i] == gen->replay_block) ? gen->replay_nitems : 0;
		uint32		npages = 1;
		char	   *span = NULL;

		if (opaque->flags & KVLSM_PAGE_FLAG_CONT)
		{
			/*
			 * Only the last piece of a span applied before (the tail then)
			 * comes alone: a span is written in one WAL record with the
			 * tail moved to its last piece.
			 */
			if (blocks[i] != gen->replay_block)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: log page continues a record whose first page is missing",
								RelationGetRelationName(rel), blocks[i])));
			pfree(pages[i]);
			continue;
		}
		if (opaque->flags & KVLSM_PAGE_FLAG_SPAN)
		{
			Size		len;

			span = join_span(rel, lp, i, &len, &npages);
			p = span;
			endp = span + len;
		}

		item = apply_log_records(rel, gen, ops, blocks[i], p, endp,
								 opaque->nitems, skip);
		if (span != NULL)
		{
			int			k;

			/* the span's last piece is where the chain went on from */
			for (k = 0; k < (int) npages - 1; k++)
				pfree(pages[i - k]);
			i -= npages - 1;
			pfree(span);
			item = 0;
		}
		gen->replay_block = blocks[i];
		gen->replay_nitems = item;
		if (blocks[i] != gen->replay_block || skip == 0)
			gen->replay_npages += npages;
		pfree(pages[i]);
	}
}

/*
 * Apply the log pages of 'chain' that 'gen' has not seen yet.  Pages are
 * linked backwards from the tail, so walk back to the last page applied,
 * then apply forward.  The caller holds the LSM lock exclusively.
 */
static bool
replay_chain(Relation rel, KvlsmShared *sh, KvlsmMemGen *gen,
			 const KvlsmLogChain *chain, const KvlsmKeyOps *ops)
{
	LogPageCopies lp;

	memset(&lp, 0, sizeof(lp));
	if (!copy_chain_back(rel, gen, chain, &lp))
		return false;
	apply_page_copies(rel, gen, ops, &lp);
	if (lp.pages)
	{
		pfree(lp.pages);
		pfree(lp.blocks);
	}
	return true;
}

/*
 * Bring the memtable generations in line with the metapage's chains.
 * Returns false when a chain changed under us (standby): re-read the
 * metapage and call again.
 */
bool
kvlsm_catch_up(Relation rel, KvlsmShared *sh, const KvlsmMetaPageData *meta,
			   const KvlsmKeyOps *ops)
{
	/* drop generations the metapage no longer has (flushed meanwhile) */
	if (sh->frozen.genid != 0 && sh->frozen.genid != meta->frozen.genid)
		kvlsm_memgen_release(&sh->frozen);
	if (sh->active.genid != 0 && sh->active.genid != meta->active.genid)
	{
		if (meta->frozen.genid == sh->active.genid && sh->frozen.genid == 0)
		{
			sh->frozen = sh->active;
			memset(&sh->active, 0, sizeof(sh->active));
		}
		else
			kvlsm_memgen_release(&sh->active);
	}
	if (meta->frozen.genid != 0 && sh->frozen.genid == 0)
		kvlsm_memgen_init(&sh->frozen, meta->frozen.genid);
	if (sh->active.genid == 0)
		kvlsm_memgen_init(&sh->active, meta->active.genid);

	if (meta->frozen.genid != 0 &&
		!replay_chain(rel, sh, &sh->frozen, &meta->frozen, ops))
		return false;
	if (!replay_chain(rel, sh, &sh->active, &meta->active, ops))
		return false;

	if (sh->manifest_version != meta->manifest_version)
		kvlsm_manifest_load(rel, sh, meta);
	sh->memtable_size = meta->memtable_size;
	sh->compression = meta->compression;
	sh->bottom_compression = kvlsm_bottom_compression(meta->compression,
													  meta->bottom_compression);
	sh->compaction_style = meta->compaction_style;
	sh->ttl_usecs = meta->ttl_usecs;
	sh->gen_epoch++;
	return true;
}
