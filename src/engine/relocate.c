/*-------------------------------------------------------------------------
 *
 * relocate.c
 *	  Moving live SSTables out of the end of the file into free extents
 *	  lower down, so that free space gathers at the end, where truncation
 *	  (reclaim.c: kvlsm_shrink) gives it back to the file system.
 *
 * An LSM frees space in the middle of its file: compaction outputs are
 * reserved before their inputs are freed, and flushes retire log pages
 * wherever they lay.  Placement already takes the lowest free extent that
 * fits (extents.c), but a table written at the end while the holes were
 * too small stays there and keeps the file long.  Here such a table is
 * copied, page for page, into the lowest free extent below it that can
 * hold it, under a new SSTable id (every page names its owner, so readers
 * that still follow the old manifest find the old pages or notice that
 * they were recycled and read again, as after a compaction); its old
 * extent becomes free.  Nothing is decoded or merged: it costs a read and
 * a write of the table's pages, as a trivial move does in RocksDB when it
 * must change files.
 *
 * Invariants: a relocation holds the LSM's compaction claim
 * (KvlsmShared.compacting_pid), so no compaction changes the tables while
 * it copies, and takes the flush lock (heavyweight lock on the metapage)
 * only to reserve the target and to install the move.  The target is
 * listed first as a pending table (KVLSM_LEVEL_PENDING), as a compaction
 * output is: a crash or an error while copying leaves a pending table,
 * which the next claim returns to the free list.  Pages are written as
 * full images through generic WAL, four per record, the header page last,
 * so standbys and crash recovery need nothing of their own.  A backend
 * holds one buffer lock to read a page (copied out, released) and the
 * locks of at most four target pages, in ascending order, to write them.
 *
 * Callers: VACUUM (vacuum.c) before it truncates; the background workers
 * through kvlsm_reclaim_space after a compaction job (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/guc.h"

#include "kvlsm/compaction.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/manifest.h"
#include "kvlsm/ratelimit.h"
#include "kvlsm/relocate.h"
#include "kvlsm/scheduler.h"

/* GUCs (registered in _PG_init) */
int			kvlsm_background_truncate = KVLSM_BGTRUNC_AUTO;

/*
 * On by default.  It was opt-in while a corruption seen under pgbench,
 * autovacuum and the workers together was unexplained: after a crash
 * recovery that replays a truncation (or on a promoted standby), free
 * extents may lie past the end of the file, and the log writer added its
 * pages there; relocation, which fills low free extents eagerly, then
 * overwrote them.  The log writer now extends past what the manifest lists
 * (KvlsmShared.listed_end); test/t/018_space_reclaim.pl section 6.
 */
bool		kvlsm_space_reclaim = true;

/*
 * Relocate only in files at least this long (pages: 1 MB) whose free pages
 * are more than a quarter of the file: the space target of issue 23
 * ("free pages <= 25% of any kvlsm file in steady state").
 */
#define RELOCATE_MIN_PAGES		128
#define RELOCATE_FREE_SHARE		4

/* the free pages of a manifest copy, the log reserve included */
static uint64
free_pages(const KvlsmMetaPageData *meta, const KvlsmManifestCopy *mc)
{
	uint64		n = meta->log_reserve_npages;
	uint32		i;

	for (i = 0; i < mc->hdr.nfree; i++)
		n += mc->free[i].npages;
	return n;
}

/*
 * The live table lying highest in the file that fits a free extent wholly
 * below it, and (in *target) the lowest such extent; -1 if none.
 */
static int
pick_move(const KvlsmManifestCopy *mc, uint32 *target)
{
	int			best = -1;
	uint32		i,
				k;

	for (i = 0; i < mc->hdr.nsst; i++)
	{
		const KvlsmSstDesc *d = &mc->sst[i];

		if (d->level >= KVLSM_MAX_LEVELS)
			continue;			/* pending outputs, quarantined tables */
		if (best >= 0 && d->start < mc->sst[best].start)
			continue;
		for (k = 0; k < mc->hdr.nfree; k++)
		{
			if (mc->free[k].start >= d->start)
				break;			/* the list is sorted by start */
			if (mc->free[k].npages >= d->npages)
			{
				best = i;
				*target = k;
				break;
			}
		}
	}
	return best;
}

/* install a manifest edit with no metapage change (the caller holds the flush lock) */
static void
install_edit(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc, bool moved)
{
	KvlsmInstallArg ia;

	memset(&ia, 0, sizeof(ia));
	kvlsm_manifest_prepare(rel, mc, &ia);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh, mc, &ia);
	if (moved)
		sh->gen_epoch++;
	LWLockRelease(&sh->lock);
}

/*
 * Under the flush lock: if the file is worth it, choose a table to move,
 * claim the LSM as a compaction does, and list its target as a pending
 * table with a new id.  Returns false when there is nothing to do or a
 * compaction runs.
 */
static bool
plan_move(Relation rel, KvlsmShared *sh, KvlsmSstDesc *from, KvlsmSstDesc *to)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	uint32		target = 0;
	int			i;
	bool		found = false;

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	if (sh->compacting_pid != 0)
		goto done;
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	/* targets of moves and outputs of compactions that died */
	if (kvlsm_manifest_drop_stale(sh, mc))
		install_edit(rel, sh, mc, false);
	if (nblocks < RELOCATE_MIN_PAGES ||
		free_pages(&meta, mc) * RELOCATE_FREE_SHARE <= nblocks)
		goto done;
	i = pick_move(mc, &target);
	if (i < 0 || mc->hdr.nsst >= KVLSM_MAX_SST)
		goto done;

	*from = mc->sst[i];
	*to = *from;
	to->id = kvlsm_reserve_sstid(rel);
	to->start = mc->free[target].start;
	kvlsm_manifest_take_free_range(mc, target, to->start, to->npages);

	/*
	 * Listed as a reservation, as a compaction output that is not written
	 * yet: pending, no entries, no keys, so that readers and kvlsm_verify
	 * pass it by until install_move lists the table there.
	 */
	{
		KvlsmSstDesc *r = &mc->sst[mc->hdr.nsst++];

		memset(r, 0, sizeof(*r));
		r->id = to->id;
		r->start = to->start;
		r->npages = to->npages;
		r->level = KVLSM_LEVEL_PENDING;
		r->minkeylen = r->maxkeylen = 0xFF;
	}

	install_edit(rel, sh, mc, false);

	/*
	 * Claimed only once the reservation is listed, so that an error before
	 * leaves no claim behind; nobody can claim in between (we hold the
	 * flush lock, which every claimer takes first).
	 */
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	sh->compacting_pid = MyProcPid;
	LWLockRelease(&sh->lock);
	found = true;
done:
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);
	return found;
}

/*
 * Copy page 'from_blk' (a page of SSTable 'old_id') to 'img' as a page of
 * SSTable 'new_id'.  False if the page is no longer the table's, which a
 * claimed table's pages cannot be unless the file was damaged.
 */
static bool
copy_page(Relation rel, BlockNumber from_blk, uint64 old_id, uint64 new_id,
		  BufferAccessStrategy strategy, char *img)
{
	Buffer		buf = ReadBufferExtended(rel, MAIN_FORKNUM, from_blk, RBM_NORMAL, strategy);
	Page		page;
	KvlsmPageOpaque opaque;
	bool		ok;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = KvlsmPageGetOpaque(page);
	ok = !PageIsNew(page) && opaque->owner == old_id &&
		opaque->page_type >= KVLSM_PAGE_SST_HEADER &&
		opaque->page_type <= KVLSM_PAGE_SST_BLOOM;
	if (ok)
		memcpy(img, page, BLCKSZ);
	UnlockReleaseBuffer(buf);
	if (!ok)
		return false;
	kvlsm_page_check(rel, from_blk, (Page) img, KvlsmPageGetOpaque((Page) img)->page_type);

	opaque = KvlsmPageGetOpaque((Page) img);
	opaque->owner = new_id;
	if (opaque->page_type == KVLSM_PAGE_SST_HEADER)
		((KvlsmSstHeader *) PageGetContents((Page) img))->id = new_id;
	kvlsm_page_set_crc((Page) img);
	return true;
}

/* write 'n' (at most four) page images to 'at' .. at+n-1 in one WAL record */
static void
write_pages(Relation rel, BlockNumber at, char **imgs, int n,
			BufferAccessStrategy strategy)
{
	Buffer		bufs[MAX_GENERIC_XLOG_PAGES];
	GenericXLogState *state;
	int			j;

	/* free pages: whatever they held is overwritten whole */
	for (j = 0; j < n; j++)
		bufs[j] = ReadBufferExtended(rel, MAIN_FORKNUM, at + j, RBM_ZERO_AND_LOCK, strategy);
	state = GenericXLogStart(rel);
	for (j = 0; j < n; j++)
		memcpy(GenericXLogRegisterBuffer(state, bufs[j], GENERIC_XLOG_FULL_IMAGE),
			   imgs[j], BLCKSZ);
	GenericXLogFinish(state);
	for (j = 0; j < n; j++)
		UnlockReleaseBuffer(bufs[j]);
}

/* copy pages first .. first+n-1 of 'from' to the same places in 'to' */
static void
copy_pages(Relation rel, const KvlsmSstDesc *from, const KvlsmSstDesc *to,
		   uint32 first, int n, BufferAccessStrategy strategy, char **imgs)
{
	int			j;

	CHECK_FOR_INTERRUPTS();
	kvlsm_charge_write((uint64) n * BLCKSZ, false);
	for (j = 0; j < n; j++)
	{
		if (!copy_page(rel, from->start + first + j, from->id, to->id, strategy, imgs[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: page of SSTable %llu expected while moving it",
							RelationGetRelationName(rel), from->start + first + j,
							(unsigned long long) from->id)));
	}
	write_pages(rel, to->start + first, imgs, n, strategy);
}

/*
 * Copy every page of 'from' to 'to': data, index and filter pages first,
 * the header page last (a table whose header is not written yet is no
 * table to anyone who finds its pages).
 */
static void
copy_table(Relation rel, const KvlsmSstDesc *from, const KvlsmSstDesc *to)
{
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKWRITE);
	char	   *imgs[MAX_GENERIC_XLOG_PAGES];
	uint32		first;
	int			j;

	for (j = 0; j < MAX_GENERIC_XLOG_PAGES; j++)
		imgs[j] = palloc(BLCKSZ);
	kvlsm_ensure_blocks(rel, to->start + to->npages);
	for (first = 1; first < to->npages; first += MAX_GENERIC_XLOG_PAGES)
	{
		copy_pages(rel, from, to, first,
				   Min(MAX_GENERIC_XLOG_PAGES, to->npages - first), strategy, imgs);
		if (first == 1)
			kvlsm_crash_point_rel(KVLSM_CP_RELOCATE_MID, RelationGetRelid(rel));
	}
	copy_pages(rel, from, to, 0, 1, strategy, imgs);
	for (j = 0; j < MAX_GENERIC_XLOG_PAGES; j++)
		pfree(imgs[j]);
	FreeAccessStrategy(strategy);
}

/*
 * Swap the table's old place for its new one in one install: the table
 * keeps its position in the manifest's list (readers take the list's
 * order for the tables' age: newest last), now with the new id and start,
 * the pending reservation leaves the list, and the old extent is freed.
 */
static void
install_move(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *from,
			 const KvlsmSstDesc *to)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	int			old_i = -1;
	int			res_i = -1;
	uint32		i;

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	for (i = 0; i < mc->hdr.nsst; i++)
	{
		KvlsmSstDesc *d = &mc->sst[i];

		if (d->id == from->id && d->start == from->start && d->level == from->level)
			old_i = i;
		else if (d->id == to->id && d->start == to->start && d->level == KVLSM_LEVEL_PENDING)
			res_i = i;
	}
	if (old_i < 0 || res_i < 0)
		elog(ERROR, "kvlsm: SSTable %llu of \"%s\" changed while it was moved",
			 (unsigned long long) from->id, RelationGetRelationName(rel));
	kvlsm_manifest_give_extent(mc, from->start, from->npages);
	mc->sst[old_i] = *to;
	memmove(&mc->sst[res_i], &mc->sst[res_i + 1],
			sizeof(KvlsmSstDesc) * (mc->hdr.nsst - res_i - 1));
	mc->hdr.nsst--;
	install_edit(rel, sh, mc, true);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);
}

static void
end_move(int code, Datum arg)
{
	KvlsmShared *sh = (KvlsmShared *) DatumGetPointer(arg);

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	if (sh->compacting_pid == MyProcPid)
		sh->compacting_pid = 0;
	LWLockRelease(&sh->lock);
}

/*
 * Move tables from the end of the file into free extents below them while
 * the file's free pages are over a quarter of it and some table can move.
 * Returns the number of tables moved.
 */
int
kvlsm_relocate_tail(Relation rel)
{
	KvlsmShared *sh;
	KvlsmSstDesc from;
	KvlsmSstDesc to;
	int			moved = 0;

	if (RecoveryInProgress())
		return 0;
	sh = kvlsm_attach(rel);
	while (plan_move(rel, sh, &from, &to))
	{
		PG_ENSURE_ERROR_CLEANUP(end_move, PointerGetDatum(sh));
		{
			copy_table(rel, &from, &to);
			install_move(rel, sh, &from, &to);
		}
		PG_END_ENSURE_ERROR_CLEANUP(end_move, PointerGetDatum(sh));
		end_move(0, PointerGetDatum(sh));
		moved++;
		CHECK_FOR_INTERRUPTS();
	}

	/*
	 * While we held the compaction claim, a flush that made a compaction
	 * due did not schedule one (kvlsm_compaction_needed says no while a
	 * claim is held), and nothing else would: schedule it now.
	 */
	if (moved > 0 && kvlsm_compaction_needed(sh))
		(void) kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT);
	return moved;
}

/*
 * Does the memtable's log keep the end of the file?  Log pages are taken
 * from the reserve low in the file, but when it runs out between two
 * installs new ones extend the file, and they stay there until the
 * memtable is flushed: past the live SSTables, they stop truncation.  Only
 * worth asking when more than a quarter of the file is free.
 */
static bool
log_keeps_tail(Relation rel)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	BlockNumber reach = KVLSM_FIRST_DATA_BLKNO;
	bool		keeps;
	uint32		i;

	kvlsm_read_metapage(rel, &meta);
	if (meta.active.npages == 0 || meta.active.tail == InvalidBlockNumber ||
		nblocks < RELOCATE_MIN_PAGES)
		return false;
	mc = palloc(sizeof(KvlsmManifestCopy));
	kvlsm_manifest_read(rel, &meta, mc);
	for (i = 0; i < mc->hdr.nsst; i++)
		reach = Max(reach, mc->sst[i].start + mc->sst[i].npages);
	keeps = free_pages(&meta, mc) * RELOCATE_FREE_SHARE > nblocks &&
		(meta.active.tail >= reach || meta.active.head >= reach);
	pfree(mc);
	return keeps;
}

/*
 * Does a standby stream from this server with hot_standby_feedback?  Its
 * walsender then carries the standby's xmin: in its PGPROC, or in its
 * physical replication slot's xmin.  Such a standby runs queries, and
 * that is all the primary can know of them.
 */
static bool
feedback_standby_streaming(void)
{
	int			i;

	for (i = 0; WalSndCtl != NULL && i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		PGPROC	   *proc;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		state = walsnd->state;
		SpinLockRelease(&walsnd->mutex);
		if (pid == 0 || state != WALSNDSTATE_STREAMING)
			continue;
		proc = BackendPidGetProc(pid);
		if (proc != NULL && TransactionIdIsValid(proc->xmin))
			return true;
	}
	for (i = 0; ReplicationSlotCtl != NULL && i < max_replication_slots; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
		bool		held;

		SpinLockAcquire(&slot->mutex);
		held = slot->in_use && slot->active_pid != 0 &&
			slot->data.database == InvalidOid &&
			TransactionIdIsValid(slot->effective_xmin);
		SpinLockRelease(&slot->mutex);
		if (held)
			return true;
	}
	return false;
}

/*
 * May a free end be given back without a user's VACUUM (by the workers or
 * autovacuum)?  Truncation takes an AccessExclusiveLock, and its WAL
 * record cancels the queries a hot standby runs on the relation, even with
 * hot_standby_feedback, after max_standby_streaming_delay.  Heap's
 * autovacuum seldom finds a free end; an LSM's compactions and moves make
 * one all the time.  So by default (auto) nothing is truncated unasked
 * while a standby says, by sending feedback, that it runs queries: the
 * file keeps its size and its free end is reused for new tables; a VACUUM
 * by hand still truncates, as heap's does.
 */
bool
kvlsm_unasked_truncate_allowed(void)
{
	switch (kvlsm_background_truncate)
	{
		case KVLSM_BGTRUNC_ON:
			return true;
		case KVLSM_BGTRUNC_OFF:
			return false;
		default:
			return !feedback_standby_streaming();
	}
}

/*
 * The vacuum_truncate storage parameter that governs 'rel': its own for a
 * table or materialized view, its table's for a kvlsm_idx index
 * (PostgreSQL 15 does not pass VACUUM's TRUNCATE option to index access
 * methods, and the workers have no VACUUM options at all).
 */
bool
kvlsm_vacuum_truncate_option(Relation rel)
{
	Relation	table = rel;
	StdRdOptions *opts;
	bool		allowed;

	if (rel->rd_rel->relkind == RELKIND_INDEX)
		table = table_open(rel->rd_index->indrelid, NoLock);
	opts = (StdRdOptions *) table->rd_options;
	/* tables and materialized views keep their storage parameters as StdRdOptions */
	allowed = (table->rd_rel->relkind != RELKIND_RELATION &&
			   table->rd_rel->relkind != RELKIND_MATVIEW) ||
		opts == NULL || opts->vacuum_truncate;
	if (table != rel)
		table_close(table, NoLock);
	return allowed;
}

/*
 * VACUUM (of a kvlsm table or a kvlsm_idx index; the caller has checked
 * the TRUNCATE option): give back what the file does not need.  If the
 * memtable's log pages keep the end of the file, flush it first (one
 * level-0 table, at the lowest free extent); then move tables out of the
 * end and truncate, waiting up to 5 s for the lock as heap's VACUUM does.
 * Autovacuum truncates only when kvlsm.background_truncate allows it.
 */
void
kvlsm_vacuum_reclaim(Relation rel)
{
	bool		truncate;

	if (RecoveryInProgress() || RELATION_IS_LOCAL(rel))
		return;
	truncate = !IsAutoVacuumWorkerProcess() || kvlsm_unasked_truncate_allowed();
	if (!kvlsm_space_reclaim)
	{
		/* as before issue 23: tables give a free tail back, indexes keep theirs */
		if (rel->rd_rel->relkind != RELKIND_INDEX && truncate)
			(void) kvlsm_shrink(rel, 5000);
		return;
	}
	if (log_keeps_tail(rel))
		kvlsm_flush(rel, true);
	(void) kvlsm_relocate_tail(rel);
	if (truncate)
		(void) kvlsm_shrink(rel, 5000);
}

/*
 * Background space reclaim (workers, after compaction): move tables out
 * of the tail, then give a free tail back if kvlsm.background_truncate
 * and the relation's vacuum_truncate allow it and its lock comes at once.
 * No flush: a worker would flush memtables that are still filling after
 * every compaction.
 */
void
kvlsm_reclaim_space(Relation rel)
{
	if (!kvlsm_space_reclaim || !kvlsm_vacuum_truncate_option(rel))
		return;
	(void) kvlsm_relocate_tail(rel);
	if (kvlsm_unasked_truncate_allowed())
		(void) kvlsm_shrink(rel, 0);
}
