/*-------------------------------------------------------------------------
 *
 * meta.c
 *	  Changes to the metapage outside manifest installs: the durable
 *	  counters (chunks of row ids and sequence numbers reserved before any
 *	  of them is handed out, SSTable ids for compaction outputs), the
 *	  per-relation options kept there, and the reset of its statistics.
 *
 * Every change is one generic WAL record on the metapage alone
 * (kvlsm_edit_metapage), made while the caller holds the LSM lock
 * exclusively (or the flush lock), so that the shared entry and the
 * metapage change together.  A server hands out row ids and sequence
 * numbers only below the marks in the metapage, so none is reused after a
 * crash or a promotion (attach starts above the marks).
 *
 * Callers: writes (lsm.c: sequence numbers), the table AM (row ids),
 * freeze (flush.c), compaction (SSTable ids, bloom bits), the ddl layer
 * (options), admin (counters).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"

#include "kvlsm/compaction.h"
#include "kvlsm/compress.h"
#include "kvlsm/lsm.h"
#include "kvlsm/scheduler.h"

/* GUC (registered in _PG_init) */
int			kvlsm_bloom_bits_per_key = 10;

#define ALLOC_CHUNK		8192	/* row ids / sequence numbers per reservation */

/*
 * Change the metapage under a generic WAL record.  'fn' edits the copy in
 * place.  The caller holds the LSM lock exclusively (or the flush lock) so
 * that shared state and metapage change together.
 */
void
kvlsm_edit_metapage(Relation rel, KvlsmMetaEditFn fn, void *arg)
{
	Buffer		buf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(rel);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	kvlsm_metapage_cover(page);
	fn(KvlsmPageGetMeta(page), arg);
	kvlsm_page_set_crc(page);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

static void
set_rowid_hwm(KvlsmMetaPageData *meta, void *arg)
{
	meta->rowid_hwm = Max(meta->rowid_hwm, *(uint64 *) arg);
}

static void
set_seq_hwm(KvlsmMetaPageData *meta, void *arg)
{
	meta->seq_hwm = Max(meta->seq_hwm, *(uint64 *) arg);
}

uint64
kvlsm_alloc_rowids(Relation rel, KvlsmShared *sh, uint64 n)
{
	uint64		first;

	for (;;)
	{
		SpinLockAcquire(&sh->mutex);
		if (sh->next_rowid + n <= sh->rowid_limit)
		{
			first = sh->next_rowid;
			sh->next_rowid += n;
			SpinLockRelease(&sh->mutex);
			return first;
		}
		SpinLockRelease(&sh->mutex);

		/* reserve the next chunk durably before handing any of it out */
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		if (sh->next_rowid + n > sh->rowid_limit)
		{
			uint64		newlimit = sh->next_rowid + n + ALLOC_CHUNK;

			kvlsm_edit_metapage(rel, set_rowid_hwm, &newlimit);
			SpinLockAcquire(&sh->mutex);
			sh->rowid_limit = newlimit;
			SpinLockRelease(&sh->mutex);
		}
		LWLockRelease(&sh->lock);
	}
}

/* next sequence number; the caller holds the LSM lock exclusively */
uint64
kvlsm_next_seq(Relation rel, KvlsmShared *sh)
{
	uint64		seq;

	if (sh->next_seq >= sh->seq_limit)
	{
		uint64		newlimit = sh->next_seq + ALLOC_CHUNK;

		kvlsm_edit_metapage(rel, set_seq_hwm, &newlimit);
		sh->seq_limit = newlimit;
	}
	seq = sh->next_seq++;
	return seq;
}

static void
bump_sstid(KvlsmMetaPageData *meta, void *arg)
{
	*(uint64 *) arg = meta->next_sstid++;
}

/*
 * Take an SSTable id for a compaction output (its pages carry it as their
 * owner before the table is installed).  Caller holds the flush lock, so
 * a flush cannot hand out the same id.
 */
uint64
kvlsm_reserve_sstid(Relation rel)
{
	uint64		id;

	kvlsm_edit_metapage(rel, bump_sstid, &id);
	return id;
}

/*
 * Bits per key of the bloom filters of new SSTables: the relation's option
 * bloom_bits_per_key, else kvlsm.bloom_bits_per_key.  Tables hash whole
 * keys (row ids); indexes hash the first key column with the column's hash
 * opclass (indexkey.c), since an entry's key also holds the heap TID.
 */
int
kvlsm_bloom_bits_for(const KvlsmMetaPageData *meta)
{
	if (meta->bloom_bits_option > 0)
		return meta->bloom_bits_option - 1;
	return kvlsm_bloom_bits_per_key;
}

typedef struct OptionArg
{
	int32		compression;
	int32		bottom_compression;
	int64		memtable_size;
	int32		compaction_style;
} OptionArg;

static void
options_edit(KvlsmMetaPageData *meta, void *arg)
{
	OptionArg  *oa = arg;

	if (oa->compression >= 0)
		meta->compression = oa->compression;
	if (oa->bottom_compression >= 0)
		meta->bottom_compression = oa->bottom_compression;
	if (oa->memtable_size > 0)
		meta->memtable_size = oa->memtable_size;
	if (oa->compaction_style >= 0)
		meta->compaction_style = oa->compaction_style;
}

/*
 * store per-relation options in the metapage (negative / 0: unchanged);
 * bottom_compression is KVLSM_BOTTOM_SAME or a spec + 1
 */
void
kvlsm_store_options(Relation rel, int32 compression, int32 bottom_compression,
					int64 memtable_size, int32 compaction_style)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	OptionArg	oa;
	KvlsmMetaPageData meta;

	oa.compression = compression;
	oa.bottom_compression = bottom_compression;
	oa.memtable_size = memtable_size;
	oa.compaction_style = compaction_style;
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_edit_metapage(rel, options_edit, &oa);
	kvlsm_read_metapage(rel, &meta);
	sh->compression = meta.compression;
	sh->bottom_compression = kvlsm_bottom_compression(meta.compression,
													  meta.bottom_compression);
	if (memtable_size > 0)
		sh->memtable_size = memtable_size;
	if (compaction_style >= 0)
		sh->compaction_style = compaction_style;
	LWLockRelease(&sh->lock);
	/* a new style or size may make a compaction due at once */
	if (compaction_style >= 0 && kvlsm_compaction_needed(sh))
		(void) kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT);
}

static void
bloom_bits_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->bloom_bits_option = *(int32 *) arg;
}

/*
 * The option bloom_bits_per_key (bits + 1; 0: kvlsm.bloom_bits_per_key),
 * in the metapage; SSTables written from now on follow it.
 */
void
kvlsm_store_bloom_bits(Relation rel, int32 option)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_edit_metapage(rel, bloom_bits_edit, &option);
	LWLockRelease(&sh->lock);
}

static void
ttl_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->ttl_usecs = *(int64 *) arg;
}

/* the table option ttl (0 = none), in the metapage */
void
kvlsm_store_ttl(Relation rel, int64 ttl_usecs)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_edit_metapage(rel, ttl_edit, &ttl_usecs);
	sh->ttl_usecs = ttl_usecs;
	LWLockRelease(&sh->lock);
}

static void
reset_counters_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->flushes = 0;
	meta->compactions = 0;
	meta->bytes_flushed = 0;
	meta->bytes_compacted_in = 0;
	meta->bytes_compacted_out = 0;
	meta->log_bytes = 0;
	meta->logical_bytes = 0;
}

/*
 * kvlsm_stats_reset: zero the counters kept in shared memory and the
 * persistent ones in the metapage (WAL-logged, so standbys reset too).
 */
void
kvlsm_reset_counters(Relation rel)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_edit_metapage(rel, reset_counters_edit, NULL);
	memset(&sh->stats, 0, sizeof(sh->stats));
	sh->stats.reset_at = GetCurrentTimestamp();
	LWLockRelease(&sh->lock);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
}
