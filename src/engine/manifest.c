/*-------------------------------------------------------------------------
 *
 * manifest.c
 *	  The manifest of one LSM (manifest.h): reading it from its slot and
 *	  continuation pages, loading it into the shared entry's cache, and
 *	  installing a new one (continuation pages first, then the slot page
 *	  with the metapage's edit in one record).
 *
 * The manifest (live SSTables and free extents) lives in one of two fixed
 * slots; an install writes the other slot and switches the metapage to it
 * in the same generic WAL record, so it is atomic.  Installs and flushes
 * are serialised by the flush lock, a heavyweight page lock on the
 * metapage block (interruptible and seen by the deadlock detector, unlike
 * an LWLock held across I/O).
 *
 * A manifest larger than its slot page continues on an extent of
 * continuation pages, written in records of their own before the switch,
 * on pages free both in the new manifest and in the installed one (shadow
 * paging, see KvlsmManifestHeader).  Readers without the flush lock (a
 * standby, inspection) recognise a continuation page recycled by a later
 * install by its owner and start over.
 *
 * Callers: flush (flush.c), compaction (compaction.c), shrink (reclaim.c),
 * repair (verify.c), attach (logreader.c loads the cache).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"

#include "kvlsm/span.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/manifest.h"

/* bytes of a manifest's stream: its descriptors, then its free extents */
static Size
manifest_stream_len(uint32 nsst, uint32 nfree)
{
	return sizeof(KvlsmSstDesc) * nsst + sizeof(KvlsmExtent) * nfree;
}

/* continuation pages a stream of 'len' bytes needs */
static uint32
manifest_cont_pages(Size len)
{
	if (len <= KVLSM_MANIFEST_FIRST_CAPACITY)
		return 0;
	return (len - KVLSM_MANIFEST_FIRST_CAPACITY + KVLSM_PAGE_CAPACITY - 1) /
		KVLSM_PAGE_CAPACITY;
}

/* copy the payload of one manifest page (checked already) into 'dst' */
static char *
take_manifest_piece(Page page, Size skip, char *dst, Size want)
{
	Size		have = kvlsm_span_piece_len(page);

	if (have < skip + want)
		return psprintf("manifest page holds %zu bytes where %zu were expected",
						have, skip + want);
	memcpy(dst, (char *) PageGetContents(page) + skip, want);
	return NULL;
}

/*
 * Read the manifest in slot page 'slot' and its continuation pages into
 * 'mc', with a share lock on one page at a time.  NULL when it is whole and
 * consistent; else what is wrong and, in *blkno, where.  A continuation
 * page that belongs to another version was recycled by a later install
 * while we read (possible only without the flush lock: a standby, or an
 * inspection), or is damaged: the caller tells which by looking at the
 * metapage again.
 */
char *
kvlsm_manifest_try_read(Relation rel, BlockNumber slot, KvlsmManifestCopy *mc,
						BlockNumber *blkno)
{
	Buffer		buf;
	Page		page;
	char	   *problem;
	char	   *stream = NULL;
	Size		len = 0;
	Size		done;
	uint32		i;

	*blkno = slot;
	if (!kvlsm_block_exists(rel, slot))
		return psprintf("manifest slot %u lies beyond the end of the file", slot);
	buf = ReadBuffer(rel, slot);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	problem = kvlsm_page_problem(page, KVLSM_PAGE_MANIFEST);
	if (problem == NULL &&
		((PageHeader) page)->pd_lower < SizeOfPageHeaderData + sizeof(KvlsmManifestHeader))
		problem = pstrdup("manifest page too short for its header");
	if (problem == NULL)
	{
		memcpy(&mc->hdr, PageGetContents(page), sizeof(mc->hdr));
		len = manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree);
		if (mc->hdr.nsst > KVLSM_MAX_SST || mc->hdr.nfree > KVLSM_MAX_FREE_EXTENTS)
			problem = psprintf("manifest lists %u SSTables and %u free extents (at most %d and %d)",
							   mc->hdr.nsst, mc->hdr.nfree, KVLSM_MAX_SST,
							   KVLSM_MAX_FREE_EXTENTS);
		else if (mc->hdr.cont_npages < manifest_cont_pages(len) ||
				 mc->hdr.cont_npages >= KVLSM_MAX_MANIFEST_PAGES)
			problem = psprintf("manifest of %zu bytes has %u continuation pages",
							   len, mc->hdr.cont_npages);
		else
		{
			stream = palloc(Max(len, 1));
			problem = take_manifest_piece(page, MAXALIGN(sizeof(KvlsmManifestHeader)),
										  stream, Min(len, KVLSM_MANIFEST_FIRST_CAPACITY));
		}
	}
	UnlockReleaseBuffer(buf);

	done = Min(len, KVLSM_MANIFEST_FIRST_CAPACITY);
	for (i = 0; problem == NULL && done < len; i++)
	{
		BlockNumber b = mc->hdr.cont_start + i;
		Size		want = Min(len - done, KVLSM_PAGE_CAPACITY);

		*blkno = b;
		if (b < KVLSM_FIRST_DATA_BLKNO || !kvlsm_block_exists(rel, b))
		{
			problem = psprintf("manifest continuation page %u lies outside the data blocks", b);
			break;
		}
		buf = ReadBuffer(rel, b);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		problem = kvlsm_page_problem(page, KVLSM_PAGE_MANIFEST);
		if (problem == NULL &&
			(!kvlsm_page_owner_is(page, KVLSM_PAGE_MANIFEST, mc->hdr.version) ||
			 KvlsmPageGetOpaque(page)->link != i))
			problem = psprintf("continuation page %u of manifest version %llu belongs to version %llu at position %u",
							   i, (unsigned long long) mc->hdr.version,
							   (unsigned long long) KvlsmPageGetOpaque(page)->owner,
							   KvlsmPageGetOpaque(page)->link);
		if (problem == NULL)
			problem = take_manifest_piece(page, 0, stream + done, want);
		UnlockReleaseBuffer(buf);
		done += want;
	}
	if (problem == NULL)
	{
		memcpy(mc->sst, stream, sizeof(KvlsmSstDesc) * mc->hdr.nsst);
		memcpy(mc->free, stream + sizeof(KvlsmSstDesc) * mc->hdr.nsst,
			   sizeof(KvlsmExtent) * mc->hdr.nfree);
	}
	if (stream)
		pfree(stream);
	return problem;
}

/*
 * Read the manifest the metapage 'meta' names.  Without the flush lock the
 * manifest may move on while we read: when the metapage names a newer one
 * by then, read that instead.  A manifest that stays unreadable is damaged.
 */
void
kvlsm_manifest_read(Relation rel, const KvlsmMetaPageData *meta, KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData cur = *meta;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		BlockNumber blkno;
		uint64		tried = cur.manifest_version;
		char	   *problem;

		problem = kvlsm_manifest_try_read(rel, cur.manifest_blkno, mc, &blkno);
		if (problem == NULL)
			return;
		kvlsm_read_metapage(rel, &cur);
		if (cur.manifest_version == tried || attempt >= 1000)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: %s",
							RelationGetRelationName(rel), blkno, problem)));
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * The end of everything manifest 'mc' and the log reserve of 'meta' list:
 * SSTables in any state, free extents, continuation pages.
 */
static BlockNumber
listed_end(const KvlsmManifestCopy *mc, const KvlsmMetaPageData *meta)
{
	BlockNumber end = KVLSM_FIRST_DATA_BLKNO;
	uint32		i;

	for (i = 0; i < mc->hdr.nsst; i++)
		end = Max(end, mc->sst[i].start + mc->sst[i].npages);
	for (i = 0; i < mc->hdr.nfree; i++)
		end = Max(end, mc->free[i].start + mc->free[i].npages);
	if (mc->hdr.cont_npages > 0)
		end = Max(end, mc->hdr.cont_start + mc->hdr.cont_npages);
	if (meta->log_reserve_npages > 0)
		end = Max(end, meta->log_reserve_start + meta->log_reserve_npages);
	return end;
}

/* read the manifest named by the metapage into the shared entry */
void
kvlsm_manifest_load(Relation rel, KvlsmShared *sh, const KvlsmMetaPageData *meta)
{
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));

	kvlsm_manifest_read(rel, meta, mc);
	kvlsm_set_ssts(sh, kvlsm_alloc_ssts(mc->hdr.nsst), mc->sst, mc->hdr.nsst);
	sh->manifest_version = mc->hdr.version;
	sh->listed_end = listed_end(mc, meta);
	pfree(mc);
}

static void
install_edit(KvlsmMetaPageData *meta, KvlsmInstallArg *ia)
{
	meta->manifest_blkno = ia->new_manifest;
	meta->manifest_version = ia->new_version;
	if (ia->next_sstid > meta->next_sstid)
		meta->next_sstid = ia->next_sstid;
	if (ia->retire_frozen)
	{
		meta->frozen.genid = 0;
		meta->frozen.head = meta->frozen.tail = InvalidBlockNumber;
		meta->frozen.npages = 0;
		meta->frozen.tail_used = 0;
		meta->flushes++;
		meta->bytes_flushed += ia->bytes_flushed;
	}
	/*
	 * Only installs refill the reserve and they are serialised by the flush
	 * lock, so a reserve planned as empty is still empty here.
	 */
	if (ia->clear_reserve)
	{
		/* kvlsm_shrink gave the reserve back to the free list */
		meta->log_reserve_start = InvalidBlockNumber;
		meta->log_reserve_npages = 0;
	}
	if (ia->set_reserve)
	{
		Assert(meta->log_reserve_npages == 0);
		meta->log_reserve_start = ia->reserve_start;
		meta->log_reserve_npages = ia->reserve_npages;
	}
	if (ia->set_toast_state)
	{
		meta->toast_fxid = ia->toast_fxid;
		if (ia->toast_sweep)
			meta->flags |= KVLSM_META_TOAST_SWEEP;
		else
			meta->flags &= ~KVLSM_META_TOAST_SWEEP;
	}
	if (ia->is_compaction)
	{
		meta->compactions++;
		meta->bytes_compacted_in += ia->bytes_in;
		meta->bytes_compacted_out += ia->bytes_out;
	}
}

/*
 * Pages for the continuation of a new manifest: free in 'mc' and also in
 * the installed manifest 'cur', since pages this edit freed (compaction
 * inputs, a retired log chain) are still in use if it never installs.  Else
 * new pages at the end of the file.  Both lists are sorted by start.
 */
static BlockNumber
find_free_in_both(KvlsmManifestCopy *mc, const KvlsmManifestCopy *cur,
				  uint32 npages, uint32 *extent)
{
	uint32		i,
				j = 0,
				k;

	for (i = 0; cur != NULL && i < mc->hdr.nfree; i++)
	{
		uint64		s1 = mc->free[i].start;
		uint64		e1 = s1 + mc->free[i].npages;

		while (j < cur->hdr.nfree &&
			   (uint64) cur->free[j].start + cur->free[j].npages <= s1)
			j++;
		for (k = j; k < cur->hdr.nfree && cur->free[k].start < e1; k++)
		{
			uint64		s = Max(s1, cur->free[k].start);
			uint64		e = Min(e1, (uint64) cur->free[k].start + cur->free[k].npages);

			if (e > s && e - s >= npages)
			{
				*extent = i;
				return (BlockNumber) s;
			}
		}
	}
	return InvalidBlockNumber;
}

/* the installed manifest, its free list sorted; NULL if unreadable */
static KvlsmManifestCopy *
read_installed(Relation rel)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *cur = palloc(sizeof(KvlsmManifestCopy));
	BlockNumber blkno;

	kvlsm_read_metapage(rel, &meta);
	if (kvlsm_manifest_try_read(rel, meta.manifest_blkno, cur, &blkno) != NULL)
	{
		pfree(cur);
		return NULL;			/* being repaired: new pages only */
	}
	qsort(cur->free, cur->hdr.nfree, sizeof(KvlsmExtent), kvlsm_extent_cmp);
	return cur;
}

/* continuation pages the manifest 'mc' will need when installed */
static uint32
manifest_cont_needed(const KvlsmManifestCopy *mc)
{
	/*
	 * Room for two more free extents than listed now: taking the extent may
	 * split one, and the current continuation pages come back as one.
	 */
	return manifest_cont_pages(manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree + 2));
}

/*
 * Would the continuation pages of 'mc' go below block 'below'?
 * kvlsm_shrink asks before it gives the file's tail from there back: the
 * install finds the same pages (same lists, same search), or extends the
 * file.
 */
bool
kvlsm_manifest_fits_in_place(Relation rel, KvlsmManifestCopy *mc,
							 BlockNumber below)
{
	uint32		need = manifest_cont_needed(mc);
	KvlsmManifestCopy *cur;
	uint32		extent;
	BlockNumber start;
	bool		fits;

	if (need == 0)
		return true;
	cur = read_installed(rel);
	qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), kvlsm_extent_cmp);
	start = find_free_in_both(mc, cur, need, &extent);
	fits = start != InvalidBlockNumber && (uint64) start + need <= below;
	if (cur)
		pfree(cur);
	return fits;
}

/* 'npages' pages for the continuation of 'mc' (see find_free_in_both) */
static BlockNumber
alloc_manifest_pages(Relation rel, KvlsmManifestCopy *mc,
					 const KvlsmManifestCopy *cur, uint32 npages)
{
	BlockNumber start;
	uint32		extent;

	start = find_free_in_both(mc, cur, npages, &extent);
	if (start != InvalidBlockNumber)
	{
		kvlsm_manifest_take_free_range(mc, extent, start, npages);
		kvlsm_ensure_blocks(rel, start + npages);
		return start;
	}
	return kvlsm_manifest_new_pages(rel, mc, npages);
}

/*
 * Write the continuation pages of manifest 'mc' (its stream in 'stream'),
 * a few per generic WAL record.  Pages past the stream's end (the extent
 * was sized with room for the extents the allocation itself adds) carry no
 * payload.
 */
static void
write_manifest_cont(Relation rel, const KvlsmManifestCopy *mc,
					const char *stream, Size len)
{
	uint32		i = 0;

	while (i < mc->hdr.cont_npages)
	{
		int			n = Min(MAX_GENERIC_XLOG_PAGES, mc->hdr.cont_npages - i);
		Buffer		bufs[MAX_GENERIC_XLOG_PAGES];
		GenericXLogState *state;
		int			k;

		for (k = 0; k < n; k++)
		{
			bufs[k] = ReadBufferExtended(rel, MAIN_FORKNUM, mc->hdr.cont_start + i + k,
										 RBM_ZERO_AND_LOCK, NULL);
		}
		state = GenericXLogStart(rel);
		for (k = 0; k < n; k++)
		{
			Page		page = GenericXLogRegisterBuffer(state, bufs[k],
														 GENERIC_XLOG_FULL_IMAGE);
			Size		off = KVLSM_MANIFEST_FIRST_CAPACITY +
				(Size) (i + k) * KVLSM_PAGE_CAPACITY;

			kvlsm_page_init(page, KVLSM_PAGE_MANIFEST, mc->hdr.version);
			KvlsmPageGetOpaque(page)->link = i + k;
			kvlsm_span_fill(page, stream, len, off);
			kvlsm_page_set_crc(page);
		}
		GenericXLogFinish(state);
		for (k = 0; k < n; k++)
			UnlockReleaseBuffer(bufs[k]);
		i += n;
	}
}

/*
 * First half of an install, done before the caller takes the LSM lock for
 * the second (kvlsm_manifest_install), so that readers do not wait for it:
 * choose the slot and version, place and write the continuation pages
 * (see KvlsmManifestHeader), and serialize the manifest.  The caller holds
 * the flush lock, so no other install comes between the two halves; 'mc'
 * must not change between them.
 */
void
kvlsm_manifest_prepare(Relation rel, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	KvlsmMetaPageData meta;
	BlockNumber old_cont_start = mc->hdr.cont_start;
	uint32		old_cont_npages = mc->hdr.cont_npages;

	kvlsm_read_metapage(rel, &meta);
	ia->new_manifest = (meta.manifest_blkno == KVLSM_MANIFEST_BLKNO_A) ?
		KVLSM_MANIFEST_BLKNO_B : KVLSM_MANIFEST_BLKNO_A;
	ia->new_version = meta.manifest_version + 1;
	mc->hdr.version = ia->new_version;

	/*
	 * A manifest that outgrows its slot page continues in new pages; the
	 * current ones go back only after the new ones are chosen, so the two
	 * never share a page.
	 */
	mc->hdr.cont_start = InvalidBlockNumber;
	mc->hdr.cont_npages = manifest_cont_needed(mc);
	if (mc->hdr.cont_npages > 0)
	{
		KvlsmManifestCopy *cur = read_installed(rel);

		qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), kvlsm_extent_cmp);
		mc->hdr.cont_start = alloc_manifest_pages(rel, mc, cur, mc->hdr.cont_npages);
		if (cur)
			pfree(cur);
	}
	if (old_cont_npages > 0)
		kvlsm_manifest_give_extent(mc, old_cont_start, old_cont_npages);

	ia->stream_len = manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree);
	Assert(manifest_cont_pages(ia->stream_len) <= mc->hdr.cont_npages);
	ia->stream = palloc(Max(ia->stream_len, 1));
	memcpy(ia->stream, mc->sst, sizeof(KvlsmSstDesc) * mc->hdr.nsst);
	memcpy(ia->stream + sizeof(KvlsmSstDesc) * mc->hdr.nsst, mc->free,
		   sizeof(KvlsmExtent) * mc->hdr.nfree);
	write_manifest_cont(rel, mc, ia->stream, ia->stream_len);
	ia->prepared = true;
	kvlsm_crash_point(KVLSM_CP_MANIFEST_CONT);
}

/*
 * Install a new manifest: after kvlsm_manifest_prepare (called here if the
 * caller did not), write the slot page that is not current and switch the
 * metapage to it in one generic WAL record (manifest block first, metapage
 * last).  The caller holds the flush lock and, when 'sh' is given, the LSM
 * lock exclusively: the shared entry's cache is then replaced too.
 */
void
kvlsm_manifest_install(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc,
					   KvlsmInstallArg *ia)
{
	Buffer		mbuf;
	Buffer		metabuf;
	GenericXLogState *state;
	Page		mpage;
	Page		metapage;
	BlockNumber target;
	BlockNumber end;
	char	   *stream;
	Size		len;
	Size		first;
	dsa_pointer cache = InvalidDsaPointer;

	if (!ia->prepared)
		kvlsm_manifest_prepare(rel, mc, ia);
	target = ia->new_manifest;
	stream = ia->stream;
	len = ia->stream_len;

	mbuf = ReadBuffer(rel, target);
	metabuf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	/* the cache's room, before the record: afterwards it cannot fail */
	if (sh != NULL)
		cache = kvlsm_alloc_ssts(mc->hdr.nsst);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	Assert(KvlsmPageGetMeta(BufferGetPage(metabuf))->manifest_version + 1 == ia->new_version);
	state = GenericXLogStart(rel);
	mpage = GenericXLogRegisterBuffer(state, mbuf, GENERIC_XLOG_FULL_IMAGE);
	metapage = GenericXLogRegisterBuffer(state, metabuf, 0);

	kvlsm_page_init(mpage, KVLSM_PAGE_MANIFEST, KvlsmPageGetMeta(metapage)->incarnation);
	memcpy(PageGetContents(mpage), &mc->hdr, sizeof(mc->hdr));
	first = Min(len, KVLSM_MANIFEST_FIRST_CAPACITY);
	memcpy((char *) PageGetContents(mpage) + MAXALIGN(sizeof(KvlsmManifestHeader)),
		   stream, first);
	((PageHeader) mpage)->pd_lower = SizeOfPageHeaderData +
		MAXALIGN(sizeof(KvlsmManifestHeader)) + first;

	install_edit(KvlsmPageGetMeta(metapage), ia);
	end = listed_end(mc, KvlsmPageGetMeta(metapage));
	kvlsm_page_set_crc(mpage);
	kvlsm_page_set_crc(metapage);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(mbuf);
	UnlockReleaseBuffer(metabuf);
	pfree(stream);
	ia->stream = NULL;
	ia->prepared = false;
	if (sh != NULL)
	{
		kvlsm_set_ssts(sh, cache, mc->sst, mc->hdr.nsst);
		sh->manifest_version = mc->hdr.version;
		sh->listed_end = end;
	}
	kvlsm_crash_point(KVLSM_CP_AFTER_INSTALL);
}

/*
 * Outputs of a compaction that is no longer running (it failed, was
 * abandoned, or the server crashed) go back to the free list.  Called
 * under the flush lock with a fresh copy; true if the copy changed.
 */
bool
kvlsm_manifest_drop_stale(KvlsmShared *sh, KvlsmManifestCopy *mc)
{
	uint32		i,
				j;
	bool		changed = false;

	if (sh->compacting_pid != 0)
		return false;
	for (i = 0, j = 0; i < mc->hdr.nsst; i++)
	{
		if (mc->sst[i].level == KVLSM_LEVEL_PENDING)
		{
			kvlsm_manifest_give_extent(mc, mc->sst[i].start, mc->sst[i].npages);
			changed = true;
		}
		else
			mc->sst[j++] = mc->sst[i];
	}
	mc->hdr.nsst = j;
	return changed;
}

/*
 * Install a manifest built by kvlsm_repair.  The shared copy of a loaded
 * entry (a primary's is authoritative: attach never rereads it) is replaced
 * in the same step as the switch, under the LSM lock, with its room taken
 * before the WAL record, as flush and compaction do: an error can no longer
 * come between the record and the new copy and leave readers with the old
 * SSTable list.  The caller holds the flush lock (and AccessExclusiveLock).
 */
void
kvlsm_manifest_install_repaired(Relation rel, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	KvlsmLsmTag tag;
	KvlsmShared *sh;

	kvlsm_make_tag(rel, &tag);
	sh = kvlsm_lookup_shared(&tag);
	kvlsm_manifest_prepare(rel, mc, ia);
	if (sh == NULL)
	{
		kvlsm_manifest_install(rel, NULL, mc, ia);
		return;
	}
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh->loaded ? sh : NULL, mc, ia);
	if (sh->loaded)
		sh->gen_epoch++;
	LWLockRelease(&sh->lock);
}
