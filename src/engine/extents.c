/*-------------------------------------------------------------------------
 *
 * extents.c
 *	  Free space of one LSM's file (extents.h): the free extents listed in
 *	  a manifest copy (take first fit, take a given range, give back with
 *	  neighbours merged), and the file's growth: placing an SSTable or a
 *	  compaction output's reservation in a free extent or in new pages at
 *	  the end, the log reserve, and single new log pages.
 *
 * The free list changes only in a private manifest copy under the flush
 * lock; it becomes true when that copy is installed (manifest.c), so pages
 * taken here are in no list until then.  The file grows under the
 * relation extension lock by empty pages written without WAL (as heap's
 * bulk extension): after an operating system crash, or on a promoted
 * standby, listed free pages may lie past the end of the file, and their
 * users extend it again (kvlsm_ensure_blocks).  A new log page keeps the
 * extension lock until the page is linked (kvlsm_new_page), so that the
 * sweep of leaked pages (reclaim.c) never takes it for leaked.
 *
 * Callers: flush (flush.c), compaction outputs (compaction.c), manifest
 * continuation pages (manifest.c), the log writer (logwriter.c), shrink
 * and sweep (reclaim.c), repair (verify.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/bufmgr.h"
#include "storage/lmgr.h"

#include "kvlsm/crashpoint.h"
#include "kvlsm/manifest.h"

/* take 'npages' from the start of free extent 'i' */
static BlockNumber
take_free_extent_at(KvlsmManifestCopy *mc, uint32 i, uint32 npages)
{
	BlockNumber start = mc->free[i].start;

	Assert(mc->free[i].npages >= npages);
	mc->free[i].start += npages;
	mc->free[i].npages -= npages;
	if (mc->free[i].npages == 0)
	{
		memmove(&mc->free[i], &mc->free[i + 1],
				sizeof(KvlsmExtent) * (mc->hdr.nfree - i - 1));
		mc->hdr.nfree--;
	}
	return start;
}

/* take 'npages' from the free extents (first fit); Invalid if none fits */
static BlockNumber
take_free_extent(KvlsmManifestCopy *mc, uint32 npages)
{
	uint32		i;

	for (i = 0; i < mc->hdr.nfree; i++)
	{
		if (mc->free[i].npages >= npages)
			return take_free_extent_at(mc, i, npages);
	}
	return InvalidBlockNumber;
}

/* qsort order of free extents (KvlsmExtent): by start */
int
kvlsm_extent_cmp(const void *a, const void *b)
{
	const KvlsmExtent *ea = a;
	const KvlsmExtent *eb = b;

	return (ea->start > eb->start) - (ea->start < eb->start);
}

/* return an extent to the free list, merging neighbours */
void
kvlsm_manifest_give_extent(KvlsmManifestCopy *mc, BlockNumber start, uint32 npages)
{
	uint32		i,
				j;

	if (mc->hdr.nfree >= KVLSM_MAX_FREE_EXTENTS)
	{
		/* no room: keep the larger extents, leak the smallest */
		uint32		smallest = 0;

		for (i = 1; i < mc->hdr.nfree; i++)
			if (mc->free[i].npages < mc->free[smallest].npages)
				smallest = i;
		if (mc->free[smallest].npages >= npages)
			return;
		mc->free[smallest] = mc->free[--mc->hdr.nfree];
	}
	mc->free[mc->hdr.nfree].start = start;
	mc->free[mc->hdr.nfree].npages = npages;
	mc->hdr.nfree++;
	qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), kvlsm_extent_cmp);
	for (i = 0, j = 0; i < mc->hdr.nfree; i++)
	{
		if (j > 0 && mc->free[j - 1].start + mc->free[j - 1].npages == mc->free[i].start)
			mc->free[j - 1].npages += mc->free[i].npages;
		else
			mc->free[j++] = mc->free[i];
	}
	mc->hdr.nfree = j;
}

/* take pages [start, start + npages) out of free extent 'i' */
void
kvlsm_manifest_take_free_range(KvlsmManifestCopy *mc, uint32 i,
							   BlockNumber start, uint32 npages)
{
	KvlsmExtent e = mc->free[i];
	BlockNumber tail_start = start + npages;
	uint32		tail = e.start + e.npages - tail_start;

	Assert(start >= e.start && tail_start <= e.start + e.npages);
	if (start == e.start)
	{
		(void) take_free_extent_at(mc, i, npages);
		return;
	}
	mc->free[i].npages = start - e.start;
	if (tail > 0)
		kvlsm_manifest_give_extent(mc, tail_start, tail);
}

/*
 * Add n empty pages at the end of the file (the caller holds the extension
 * lock).  Through a bulk-write ring, so that up to 16 MB of empty pages do
 * not push the working set out of shared buffers.
 */
static void
extend_empty(Relation rel, uint32 n)
{
	BufferAccessStrategy ring;
	uint32		i;

	if (n == 0)
		return;
	ring = GetAccessStrategy(BAS_BULKWRITE);
	for (i = 0; i < n; i++)
		ReleaseBuffer(ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, ring));
	FreeAccessStrategy(ring);
}

/*
 * The first block new pages at the end of the file may take: past the
 * file, and past every free extent and the log reserve, which may lie
 * beyond it after an operating system crash (kvlsm_ensure_blocks).  The
 * caller holds the extension lock, then extends up to the block returned.
 */
static BlockNumber
extension_start(Relation rel, const KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData meta;
	BlockNumber start = RelationGetNumberOfBlocks(rel);
	uint32		i;

	for (i = 0; i < mc->hdr.nfree; i++)
		start = Max(start, mc->free[i].start + mc->free[i].npages);
	kvlsm_read_metapage(rel, &meta);
	if (meta.log_reserve_npages > 0)
		start = Max(start, meta.log_reserve_start + meta.log_reserve_npages);
	return start;
}

/*
 * Free extents and the log reserve may lie past the end of the file: the
 * pages a file is pre-extended by are not WAL-logged (like heap's bulk
 * extension), so an operating system crash can lose them while the
 * manifest that lists them survives (and a promoted standby never had
 * them).  A user of such pages extends the file up to them again.  The gap
 * is at most a pre-extension plus the log reserve, or a compaction
 * output's reservation; a larger one means a damaged manifest.
 */
void
kvlsm_ensure_blocks(Relation rel, BlockNumber upto)
{
	bool		local = RELATION_IS_LOCAL(rel);

	if (RelationGetNumberOfBlocks(rel) >= upto)
		return;
	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	kvlsm_extend_past_listed(rel, upto);
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
}

/*
 * 'npages' new pages at the end of the file, past every free extent of 'mc'
 * and the log reserve; returns the first.
 */
BlockNumber
kvlsm_manifest_new_pages(Relation rel, const KvlsmManifestCopy *mc,
						 uint32 npages)
{
	BlockNumber start;
	bool		local = RELATION_IS_LOCAL(rel);

	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	start = extension_start(rel, mc);
	extend_empty(rel, start + npages - RelationGetNumberOfBlocks(rel));
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
	return start;
}

/* write a laid-out SSTable to a free extent or to new pages at the end */
void
kvlsm_manifest_place_sstable(Relation rel, KvlsmSstBuilder *b, uint32 npages,
			  KvlsmManifestCopy *mc, KvlsmSstDesc *desc)
{
	BlockNumber start = take_free_extent(mc, npages);

	if (start != InvalidBlockNumber)
	{
		kvlsm_ensure_blocks(rel, start + npages);
		kvlsm_sst_builder_write(b, start, false, desc);
		kvlsm_crash_point(KVLSM_CP_EXTENT_REUSE);
	}
	else
	{
		bool		local = RELATION_IS_LOCAL(rel);
		uint32		extra;

		if (!local)
			LockRelationForExtension(rel, ExclusiveLock);
		start = extension_start(rel, mc);
		extend_empty(rel, start - RelationGetNumberOfBlocks(rel));
		kvlsm_sst_builder_write(b, start, true, desc);

		/*
		 * Grow the file by an eighth of its size at a time (at most
		 * KVLSM_EXTEND_MAX pages): what the SSTable does not take becomes a
		 * free extent for the next ones, so a growing relation extends its
		 * file, and takes the extension lock, a few times per doubling
		 * rather than for every SSTable, and its extents lie together.
		 * VACUUM gives a free tail back (kvlsm_shrink).
		 */
		extra = Min(start / 8, KVLSM_EXTEND_MAX);
		if (extra > npages)
		{
			extend_empty(rel, extra - npages);
			kvlsm_manifest_give_extent(mc, start + npages, extra - npages);
		}
		if (!local)
			UnlockRelationForExtension(rel, ExclusiveLock);
	}
}

/*
 * Set aside 'npages' for a compaction output written as it is built
 * (compaction.c): from a free extent, or new pages at the end of the file.
 * A free extent that ends where the file would grow from (what the last
 * output left unused of its reservation, typically) is taken first: the
 * output starts there and the file grows only by what that extent lacks,
 * so a compaction's outputs lie together and the file grows by about
 * their size.
 */
BlockNumber
kvlsm_manifest_reserve_extent(Relation rel, KvlsmManifestCopy *mc, uint32 npages)
{
	BlockNumber start = take_free_extent(mc, npages);
	bool		local = RELATION_IS_LOCAL(rel);

	if (start != InvalidBlockNumber)
	{
		kvlsm_ensure_blocks(rel, start + npages);
		return start;
	}
	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	start = extension_start(rel, mc);
	if (mc->hdr.nfree > 0 &&
		mc->free[mc->hdr.nfree - 1].start + mc->free[mc->hdr.nfree - 1].npages == start)
	{
		/* sorted by start: the last extent is the free tail; too small */
		start = mc->free[mc->hdr.nfree - 1].start;
		mc->hdr.nfree--;
	}
	/*
	 * No pre-extension past the reservation (kvlsm_manifest_place_sstable
	 * has one for flushes): an output is large, the next one starts where
	 * this one's unused pages are, and pages added beyond it would be room
	 * the compaction never needed.
	 */
	extend_empty(rel, start + npages - RelationGetNumberOfBlocks(rel));
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
	return start;
}

/*
 * Set aside free pages for the next log pages, taken in the install record:
 * KVLSM_LOG_RESERVE_PAGES from the lowest free extent that has them (else
 * the largest), so that log pages, which come and go with every memtable,
 * stay low in the file and leave its end free for truncation.
 */
void
kvlsm_manifest_plan_log_reserve(const KvlsmMetaPageData *meta, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	uint32		i;
	uint32		best = 0;

	if (meta->log_reserve_npages > 0 || mc->hdr.nfree == 0)
		return;
	for (i = 1; i < mc->hdr.nfree; i++)
	{
		if (mc->free[best].npages >= KVLSM_LOG_RESERVE_PAGES)
			break;				/* sorted by start: the lowest that fits */
		if (mc->free[i].npages > mc->free[best].npages)
			best = i;
	}
	ia->set_reserve = true;
	ia->reserve_npages = Min(mc->free[best].npages, KVLSM_LOG_RESERVE_PAGES);
	ia->reserve_start = take_free_extent_at(mc, best, ia->reserve_npages);
}

/*
 * Extend the relation by one page; returns it pinned, not locked, with the
 * relation extension lock still held (unless the relation is local): the
 * caller releases it with kvlsm_new_page_done() once the page is linked
 * into the metapage's structures, so that a page sweep, which reads the
 * relation size and the metapage under the extension lock, never sees a
 * new page that is not linked yet (kvlsm_sweep_leaked_pages).
 */
Buffer
kvlsm_new_page(Relation rel, BlockNumber listed_end)
{
	if (!RELATION_IS_LOCAL(rel))
		LockRelationForExtension(rel, ExclusiveLock);
	kvlsm_extend_past_listed(rel, listed_end);
	return ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
}

/*
 * Before a page is added at the end with P_NEW (the log writer: single
 * pages, spans), outside any manifest copy: make the file reach the end
 * of what the installed manifest and the log reserve list
 * (KvlsmShared.listed_end), so that the new page lies past them.  Listed
 * pages lie past the end of the file only after a crash (recovery replays
 * a truncation over pages that were pre-extended after it, without WAL)
 * or on a promoted standby (which never had the pre-extended pages); a
 * page added there would be a log page and a free page at once, and the
 * next SSTable or move placed there would overwrite the log.  The caller
 * holds the extension lock.
 */
void
kvlsm_extend_past_listed(Relation rel, BlockNumber listed_end)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);

	if (listed_end == InvalidBlockNumber || nblocks >= listed_end)
		return;
	/* see kvlsm_ensure_blocks for the largest gap a crash leaves */
	if (listed_end - nblocks > KVLSM_MAX_UNLOGGED_GAP)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\": free space listed at block %u, far past the end of the file (%u blocks)",
						RelationGetRelationName(rel), listed_end - 1, nblocks)));
	extend_empty(rel, listed_end - nblocks);
}

void
kvlsm_new_page_done(Relation rel)
{
	if (!RELATION_IS_LOCAL(rel))
		UnlockRelationForExtension(rel, ExclusiveLock);
}
