/*-------------------------------------------------------------------------
 *
 * reclaim.c
 *	  Space given back (extents.h): VACUUM's truncation of a free extent at
 *	  the end of the file (kvlsm_shrink), and the mark and sweep of pages
 *	  that nothing refers to (kvlsm_sweep_leaked_pages).
 *
 * Both work under the flush lock on a manifest copy.  Shrink installs the
 * manifest without the tail first and truncates the file after it, under
 * AccessExclusiveLock taken only if it comes at once (as heap's VACUUM
 * truncation); the sweep reads the relation size and the metapage under
 * the extension lock and gives what it finds to the flush's install.
 *
 * Callers: VACUUM (vacuum.c: kvlsm_shrink), the first flush of each LSM
 * after startup (flush.c: the sweep).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/storage.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"

#include "kvlsm/manifest.h"

/*
 * Where the file could end: the start of a free extent that reaches its
 * end, or InvalidBlockNumber.  The log reserve counts as free (it is
 * carved from the largest free extent, often the file's free tail): it
 * goes back into 'mc' first.  The extent found is taken out of 'mc'.
 */
static BlockNumber
free_tail(KvlsmMetaPageData *meta, KvlsmManifestCopy *mc, BlockNumber nblocks)
{
	uint32		i;

	if (meta->log_reserve_npages > 0)
	{
		kvlsm_manifest_give_extent(mc, meta->log_reserve_start, meta->log_reserve_npages);
		meta->log_reserve_npages = 0;
	}
	for (i = 0; i < mc->hdr.nfree; i++)
	{
		if (mc->free[i].start + mc->free[i].npages >= nblocks &&
			mc->free[i].start >= KVLSM_FIRST_DATA_BLKNO && mc->free[i].start < nblocks)
		{
			BlockNumber start = mc->free[i].start;

			mc->free[i] = mc->free[--mc->hdr.nfree];
			qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), kvlsm_extent_cmp);
			return start;
		}
	}
	return InvalidBlockNumber;
}

/*
 * VACUUM: give a free extent at the end of the file back to the file
 * system, as heap's VACUUM truncates empty pages at its end.  Like heap it
 * needs AccessExclusiveLock and takes it only if it comes within
 * 'max_wait_ms' of trying (VACUUM: 5 s; background workers: 0, one try),
 * never waiting in the lock queue: then no scan, writer
 * or background job is inside the relation, and standbys cancel their
 * queries on it because of the lock's WAL record, as for heap.  The
 * manifest without the extent is installed first and the file truncated
 * after it: a crash between the two leaves pages that no list names, which
 * the first flush after the restart sweeps up (kvlsm_sweep_leaked_pages).
 * Returns the number of blocks given back.
 */
BlockNumber
kvlsm_shrink(Relation rel, int max_wait_ms)
{
	KvlsmShared *sh;
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	KvlsmInstallArg ia;
	BlockNumber nblocks;
	BlockNumber newsize;
	int			tries;

	if (RecoveryInProgress() || RELATION_IS_LOCAL(rel))
		return 0;

	/*
	 * Worth the lock?  As heap's VACUUM: at least 1000 pages, or a
	 * sixteenth of the file.  Read without locks, as a hint.
	 */
	mc = palloc(sizeof(KvlsmManifestCopy));
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	nblocks = RelationGetNumberOfBlocks(rel);
	newsize = free_tail(&meta, mc, nblocks);
	if (newsize == InvalidBlockNumber ||
		(nblocks - newsize < 1000 && nblocks - newsize < nblocks / 16))
	{
		pfree(mc);
		return 0;
	}

	for (tries = 0; !ConditionalLockRelation(rel, AccessExclusiveLock); tries++)
	{
		/* VACUUM: 100 x 50 ms, heap's VACUUM_TRUNCATE_LOCK_TIMEOUT */
		if (tries >= max_wait_ms / 50)
		{
			pfree(mc);
			return 0;
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(50 * 1000L);
	}
	sh = kvlsm_attach(rel);
	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	nblocks = RelationGetNumberOfBlocks(rel);
	memset(&ia, 0, sizeof(ia));
	ia.clear_reserve = (meta.log_reserve_npages > 0);
	newsize = free_tail(&meta, mc, nblocks);
	if (newsize != InvalidBlockNumber)
	{
		/* a new reserve below the new end */
		kvlsm_manifest_plan_log_reserve(&meta, mc, &ia);
		/* a manifest that would need new pages at the end keeps the file */
		if (!kvlsm_manifest_fits_in_place(rel, mc, newsize))
			newsize = InvalidBlockNumber;
	}
	if (newsize != InvalidBlockNumber)
	{
		kvlsm_manifest_prepare(rel, mc, &ia);
		/*
		 * Checked before the install: once it is in WAL the free tail is in
		 * no list, so an error then would leave it lost until a restart's
		 * sweep.  The continuation pages just written lie in blocks free
		 * in the installed manifest too, so giving up here costs nothing.
		 */
		if (mc->hdr.cont_npages > 0 &&
			mc->hdr.cont_start + mc->hdr.cont_npages > newsize)
			elog(ERROR, "kvlsm: manifest of \"%s\" placed past the truncation point %u",
				 RelationGetRelationName(rel), newsize);
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		kvlsm_manifest_install(rel, sh, mc, &ia);
		LWLockRelease(&sh->lock);
		RelationTruncate(rel, newsize);
	}
	pfree(mc);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	UnlockRelation(rel, AccessExclusiveLock);
	return newsize == InvalidBlockNumber ? 0 : nblocks - newsize;
}

/*
 * What the metapage and the manifest refer to (continuation pages, SSTable
 * extents in any state, free extents, the log reserve), sorted by start;
 * *nmarks of them.
 */
static KvlsmExtent *
mark_referenced(const KvlsmManifestCopy *mc, const KvlsmMetaPageData *meta,
				uint32 *nmarks)
{
	KvlsmExtent *marks;
	uint32		n = 0;
	uint32		i;

	marks = palloc(sizeof(KvlsmExtent) * (mc->hdr.nsst + mc->hdr.nfree + 2));
	if (mc->hdr.cont_npages > 0)
	{
		marks[n].start = mc->hdr.cont_start;
		marks[n++].npages = mc->hdr.cont_npages;
	}
	for (i = 0; i < mc->hdr.nsst; i++)
	{
		marks[n].start = mc->sst[i].start;
		marks[n++].npages = mc->sst[i].npages;
	}
	for (i = 0; i < mc->hdr.nfree; i++)
		marks[n++] = mc->free[i];
	if (meta->log_reserve_npages > 0)
	{
		marks[n].start = meta->log_reserve_start;
		marks[n++].npages = meta->log_reserve_npages;
	}
	qsort(marks, n, sizeof(KvlsmExtent), kvlsm_extent_cmp);
	*nmarks = n;
	return marks;
}

/*
 * Is block 'blk', which nothing refers to, leaked?  Only a log page of the
 * active or frozen generation (or a newer one) is live.
 */
static bool
unmarked_page_is_leaked(Relation rel, BlockNumber blk,
						const KvlsmMetaPageData *meta)
{
	Buffer		buf = ReadBuffer(rel, blk);
	Page		page;
	bool		leaked;

	CHECK_FOR_INTERRUPTS();
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	leaked = true;
	if (!PageIsNew(page) &&
		KvlsmPageGetOpaque(page)->magic == KVLSM_MAGIC &&
		KvlsmPageGetOpaque(page)->page_type == KVLSM_PAGE_LOG)
	{
		uint64		gen = KvlsmPageGetOpaque(page)->owner;

		if ((meta->frozen.genid != 0 && gen == meta->frozen.genid) ||
			gen >= meta->active.genid)
			leaked = false;
	}
	UnlockReleaseBuffer(buf);
	return leaked;
}

/*
 * Mark and sweep of leaked pages (DESIGN section 8).  A crash between
 * writing pages and installing the manifest that lists them (a flush or a
 * compaction output written to new pages at the end of the file, a log
 * page added by extension), or a free list too full to take an extent,
 * leaves pages that nothing refers to.  Once per LSM after startup, the
 * first flush marks what the metapage and the manifest refer to (fixed
 * blocks, SSTable extents in any state, free extents, the log reserve)
 * and sweeps the rest: a page there is live only if it is a log page of
 * the active or frozen generation (or a newer one); anything else, zero
 * pages included, goes to the free list in the flush's install.
 *
 * Nothing is in flight while it looks: the caller holds the flush lock,
 * under which SSTables are written and installed, and the relation size
 * and metapage are read under the extension lock, which a log writer
 * holds from extending the file until the new page is linked
 * (kvlsm_new_page); pages added later lie beyond the size read.
 */
void
kvlsm_sweep_leaked_pages(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData meta;
	BlockNumber nblocks;
	KvlsmExtent *marks;
	uint32		nmarks;
	uint32		i;
	BlockNumber blk;
	BlockNumber run_start = InvalidBlockNumber;
	uint32		run_len = 0;
	uint64		reclaimed = 0;

	if (!RELATION_IS_LOCAL(rel))
		LockRelationForExtension(rel, ExclusiveLock);
	nblocks = RelationGetNumberOfBlocks(rel);
	kvlsm_read_metapage(rel, &meta);
	if (!RELATION_IS_LOCAL(rel))
		UnlockRelationForExtension(rel, ExclusiveLock);

	marks = mark_referenced(mc, &meta, &nmarks);

	i = 0;
	for (blk = KVLSM_FIRST_DATA_BLKNO; blk < nblocks; blk++)
	{
		bool		leaked;

		while (i < nmarks && (uint64) marks[i].start + marks[i].npages <= blk)
			i++;
		if (i < nmarks && marks[i].start <= blk)
		{
			/* skip the rest of this extent */
			blk = marks[i].start + marks[i].npages - 1;
			leaked = false;
		}
		else
			leaked = unmarked_page_is_leaked(rel, blk, &meta);
		if (leaked)
		{
			if (run_len > 0 && run_start + run_len == blk)
				run_len++;
			else
			{
				if (run_len > 0)
					kvlsm_manifest_give_extent(mc, run_start, run_len);
				run_start = blk;
				run_len = 1;
			}
			reclaimed++;
		}
	}
	if (run_len > 0)
		kvlsm_manifest_give_extent(mc, run_start, run_len);
	pfree(marks);
	if (reclaimed > 0)
	{
		sh->stats.pages_reclaimed += reclaimed;
		elog(LOG, "kvlsm: reclaimed " UINT64_FORMAT " leaked pages of relation \"%s\"",
			 reclaimed, RelationGetRelationName(rel));
	}
}
