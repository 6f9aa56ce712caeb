/*-------------------------------------------------------------------------
 *
 * flush.c
 *	  Freezing the active memtable and flushing the frozen one to a new L0
 *	  SSTable.  When to do so is decided in maintenance.c.
 *
 * A freeze switches the active generation to frozen in one metapage edit
 * (meta.c); records whose log copy is not yet written are carried into
 * the new active generation, so a flush writes only logged records (WAL
 * before flush).  A flush holds the flush lock (heavyweight page lock on
 * the metapage) throughout; it takes the LSM lock only to freeze and to
 * install, never while it builds the SSTable.  The install retires the
 * frozen log chain, whose pages become free extents, and refills the log
 * reserve, in the same record as the manifest switch (manifest.c).
 *
 * Callers: the flush triggers and write stalls (maintenance.c), the
 * workers (worker.c: flush jobs, kvlsm_try_freeze), admin (kvlsm_flush()),
 * VACUUM (kvlsm_flush_all).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"

#include "kvlsm/compaction.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/manifest.h"
#include "kvlsm/scheduler.h"

/* set in background workers (src/worker/worker.c) */
bool		kvlsm_am_worker = false;

typedef struct FreezeArg
{
	uint64		new_genid;
} FreezeArg;

static void
freeze_edit(KvlsmMetaPageData *meta, void *arg)
{
	FreezeArg  *fa = arg;

	meta->frozen = meta->active;
	fa->new_genid = meta->next_genid++;
	meta->active.genid = fa->new_genid;
	meta->active.head = meta->active.tail = InvalidBlockNumber;
	meta->active.npages = 0;
	meta->active.tail_used = 0;
}

/*
 * Freeze the active generation: records whose log copy is not yet written
 * are copied into the new active generation (their owners will log them
 * into its chain), so the frozen generation holds only logged records.
 * Caller holds the flush lock and the LSM lock exclusively.
 */
static void
freeze_active(Relation rel, KvlsmShared *sh)
{
	const KvlsmKeyOps *ops = kvlsm_keyops(rel);
	KvlsmMemGen newgen;
	KvlsmSkipNode *n;
	FreezeArg	fa;

	memset(&newgen, 0, sizeof(newgen));
	if (!kvlsm_memgen_init(&newgen, 0))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm memtable memory is full"),
				 errhint("Increase kvlsm.memtable_memory.")));
	for (n = kvlsm_memgen_first(&sh->active); n != NULL; n = n->next[0])
	{
		KvlsmSkipNode *copy;

		if (n->logged || n->aborted)
			continue;
		copy = kvlsm_memgen_insert(&newgen, KvlsmSkipNodeKey(n), n->keylen,
								   n->seq, n->recflags, KvlsmSkipNodeValue(n),
								   n->vallen, ops->cmp, ops->arg);
		if (copy == NULL)
		{
			kvlsm_memgen_release(&newgen);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("kvlsm memtable memory is full"),
					 errhint("Increase kvlsm.memtable_memory.")));
		}
		copy->hint = n->hint;
	}
	kvlsm_edit_metapage(rel, freeze_edit, &fa);
	newgen.genid = fa.new_genid;
	sh->frozen = sh->active;
	sh->active = newgen;
	sh->active_since = GetCurrentTimestamp();
	sh->gen_epoch++;
}

/*
 * A writer that filled the memtable switches it to frozen itself (cheap:
 * no SSTable is written) and leaves the flush to a worker, so the next
 * writes go to a fresh memtable at once, as RocksDB switches memtables in
 * the write path.  Only if the flush lock is free right now and nothing is
 * frozen yet; otherwise the writer goes on, or stalls (worker.c).
 */
void
kvlsm_try_freeze(Relation rel, KvlsmShared *sh)
{
	if (sh->frozen.genid != 0 || RecoveryInProgress())
		return;
	if (!ConditionalLockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock))
		return;
	PG_TRY();
	{
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		if (sh->frozen.genid == 0 && sh->active.entries > 0 &&
			sh->active.bytes >= (uint64) sh->memtable_size)
			freeze_active(rel, sh);
		LWLockRelease(&sh->lock);
	}
	PG_FINALLY();
	{
		UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	}
	PG_END_TRY();
}

static int
block_cmp(const void *a, const void *b)
{
	BlockNumber ba = *(const BlockNumber *) a;
	BlockNumber bb = *(const BlockNumber *) b;

	return (ba > bb) - (ba < bb);
}

/*
 * Give the pages of a retired log chain back as free extents.  Walks the
 * chain from its tail; pages are checked to be that generation's.
 */
static void
free_chain_pages(Relation rel, const KvlsmLogChain *chain, KvlsmManifestCopy *mc)
{
	BlockNumber *blocks;
	uint32		n = 0;
	uint32		cap = Max(chain->npages, 16);
	BlockNumber b = chain->tail;
	uint32		i;

	blocks = palloc(sizeof(BlockNumber) * cap);
	while (b != InvalidBlockNumber && n < chain->npages)
	{
		Buffer		buf = kvlsm_read_buffer(rel, b);
		Page		page;
		BlockNumber link;
		bool		ok;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		ok = kvlsm_page_owner_is(page, KVLSM_PAGE_LOG, chain->genid);
		link = ok ? KvlsmPageGetOpaque(page)->link : InvalidBlockNumber;
		UnlockReleaseBuffer(buf);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u is not a log page of generation %llu",
							RelationGetRelationName(rel), b,
							(unsigned long long) chain->genid)));
		blocks[n++] = b;
		b = link;
	}
	qsort(blocks, n, sizeof(BlockNumber), block_cmp);
	for (i = 0; i < n;)
	{
		uint32		j = i + 1;

		while (j < n && blocks[j] == blocks[j - 1] + 1)
			j++;
		kvlsm_manifest_give_extent(mc, blocks[i], j - i);
		i = j;
	}
	pfree(blocks);
}

static int	flush_depth = 0;

/*
 * Flush everything written so far: a flush writes the frozen memtable if
 * one is waiting, else the active one, so a second flush writes what the
 * active memtable held meanwhile (kvlsm_flush() for users, and VACUUM
 * before its freezing compaction, which must see every record).
 */
void
kvlsm_flush_all(Relation rel)
{
	kvlsm_flush(rel, true);
	kvlsm_flush(rel, true);
}

/*
 * Leave the last manifest slots to compaction outputs: when the
 * manifest is nearly full, compact (or wait for the compaction that
 * runs) before adding another table.
 */
static void
wait_for_manifest_room(Relation rel, KvlsmShared *sh)
{
	while (sh->nsst >= KVLSM_MAX_SST - KVLSM_COMPACTION_SLOTS)
	{
		CHECK_FOR_INTERRUPTS();
		if (kvlsm_compact_step(rel))
			continue;
		if (sh->compacting_pid == 0)
			break;
		pg_usleep(10000L);
	}
}

/*
 * Under the flush lock: have a frozen generation to flush, freezing the
 * active one if none is waiting.  False when there is nothing to flush
 * (an empty memtable, or one under its size when not forced and the arena
 * is not short).
 */
static bool
freeze_for_flush(Relation rel, KvlsmShared *sh, bool force)
{
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	sh->flush_requested = false;
	sh->job_queued = false;
	if (sh->frozen.genid == 0)
	{
		if (sh->active.entries == 0 ||
			(!force && sh->active.bytes < (uint64) sh->memtable_size &&
			 kvlsm_arena_free_bytes() >= kvlsm_arena_total_bytes() / 8))
		{
			LWLockRelease(&sh->lock);
			return false;
		}
		freeze_active(rel, sh);
	}
	LWLockRelease(&sh->lock);
	return true;
}

/*
 * Write the logged records of the frozen generation (aborted ones
 * dropped) as a new L0 SSTable placed in 'mc', if there are any, and note
 * it in 'ia'.
 */
static void
write_frozen_sstable(Relation rel, KvlsmShared *sh,
					 const KvlsmMetaPageData *meta, KvlsmManifestCopy *mc,
					 KvlsmInstallArg *ia)
{
	KvlsmSstBuilder *b;
	KvlsmSkipNode *n;
	KvlsmSstDesc desc;
	uint32		npages;

	b = kvlsm_sst_builder_begin(rel, meta->next_sstid, 0, sh->compression,
								kvlsm_bloom_bits_for(meta), kvlsm_keyops(rel));
	for (n = kvlsm_memgen_first(&sh->frozen); n != NULL; n = n->next[0])
	{
		if (!n->logged || n->aborted)
			continue;
		kvlsm_sst_builder_add(b, KvlsmSkipNodeKey(n), n->keylen, n->seq,
							  n->recflags, KvlsmSkipNodeValue(n), n->vallen);
	}
	if (kvlsm_sst_builder_count(b) > 0)
	{
		npages = kvlsm_sst_builder_finish(b);
		kvlsm_manifest_place_sstable(rel, b, npages, mc, &desc);
		kvlsm_crash_point(KVLSM_CP_FLUSH_BEFORE_INSTALL);
		mc->sst[mc->hdr.nsst++] = desc;
		ia->bytes_flushed = (uint64) desc.npages * BLCKSZ;
		ia->next_sstid = desc.id + 1;
	}
}

/*
 * Flush the frozen generation and install the result: the new table, the
 * retired chain's pages freed, the log reserve refilled.  The caller holds
 * the flush lock; 'wal_before' is the WAL position the flush started at.
 */
static void
flush_frozen(Relation rel, KvlsmShared *sh, uint64 wal_before)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	KvlsmInstallArg ia;

	/*
	 * The frozen generation changes only here, under the flush lock, so
	 * it can be read without the LSM lock.
	 */
	kvlsm_read_metapage(rel, &meta);
	mc = palloc(sizeof(KvlsmManifestCopy));
	kvlsm_manifest_read(rel, &meta, mc);
	kvlsm_manifest_drop_stale(sh, mc);
	if (!sh->swept)
	{
		sh->swept = true;	/* once: a failed sweep is not retried */
		kvlsm_sweep_leaked_pages(rel, sh, mc);
	}
	if (mc->hdr.nsst >= KVLSM_MAX_SST)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm relation \"%s\" has too many SSTables to flush",
						RelationGetRelationName(rel)),
				 errhint("Run kvlsm_compact() on it.")));

	memset(&ia, 0, sizeof(ia));
	ia.retire_frozen = true;
	write_frozen_sstable(rel, sh, &meta, mc, &ia);

	/* the retired chain's pages become free; refill the log reserve */
	kvlsm_crash_point(KVLSM_CP_BEFORE_RETIRE_CHAIN);
	free_chain_pages(rel, &meta.frozen, mc);
	kvlsm_manifest_plan_log_reserve(&meta, mc, &ia);

	kvlsm_manifest_prepare(rel, mc, &ia);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh, mc, &ia);
	kvlsm_memgen_release(&sh->frozen);
	sh->gen_epoch++;
	sh->stats.flushes++;
	sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
	if (!kvlsm_am_worker)
		sh->stats.foreground_flushes++;
	LWLockRelease(&sh->lock);
	pfree(mc);
}

/*
 * Flush the memtable to a new L0 SSTable.  With 'force' any non-empty
 * memtable is flushed; otherwise only one over its size.  Runs in the
 * calling backend until background workers take this over.
 */
void
kvlsm_flush(Relation rel, bool force)
{
	KvlsmShared *sh;
	uint64		wal_before;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot flush kvlsm relation \"%s\" during recovery",
						RelationGetRelationName(rel))));
	if (flush_depth > 0)
		return;

	sh = kvlsm_attach(rel);
	/* our own pending records go first, so that they can be flushed too */
	kvlsm_log_write_full_pages(rel, sh);
	wait_for_manifest_room(rel, sh);

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	flush_depth++;
	wal_before = pgWalUsage.wal_bytes;
	PG_TRY();
	{
		if (freeze_for_flush(rel, sh, force))
			flush_frozen(rel, sh, wal_before);
	}
	PG_FINALLY();
	{
		flush_depth--;
	}
	PG_END_TRY();
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);

	/* a worker runs compactions as jobs of their own */
	if (!kvlsm_am_worker && kvlsm_compaction_needed(sh))
	{
		if (!kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT))
		{
			while (kvlsm_compact_step(rel))
				CHECK_FOR_INTERRUPTS();
		}
	}
}
