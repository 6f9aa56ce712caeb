/*-------------------------------------------------------------------------
 *
 * manifest.h
 *	  Editing the manifest of one LSM: a private copy of the live SSTables
 *	  and free extents, placing new SSTables in free extents or at the end
 *	  of the file, and installing the copy atomically with the metapage.
 *	  Owned by src/engine/lsm.c; used by flush (lsm.c) and compaction
 *	  (compaction.c).
 *
 * Every edit happens under the flush lock (heavyweight page lock on the
 * metapage): read the current manifest, change the copy, install it.  A
 * compaction holds the flush lock only to pick its inputs, to place each
 * output and to install its result, never while it merges, so flushes go
 * on while it runs.  An output is placed at once and listed in the manifest
 * with level KVLSM_LEVEL_PENDING, which readers skip: a crash or an
 * abandoned compaction leaves pending tables that the next install returns
 * to the free list, so their pages are never leaked.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_MANIFEST_H
#define KVLSM_MANIFEST_H

#include "kvlsm/lsm.h"
#include "kvlsm/sstable.h"

/* largest pre-extension of the file, in pages (16 MB) */
#define KVLSM_EXTEND_MAX 2048

/* largest extent reserved for a compaction output (twice the largest output) */
#define KVLSM_MAX_RESERVE_PAGES ((uint32) ((uint64) 512 * 1024 * 1024 / BLCKSZ))

/*
 * How far past the end of the file a free extent or a reservation may lie:
 * the pages a file is extended by without WAL (pre-extension, and
 * reservations for compaction outputs, whose unused rest is freed) are not
 * there after an operating system crash or on a promoted standby.
 */
#define KVLSM_MAX_UNLOGGED_GAP (2 * KVLSM_EXTEND_MAX + KVLSM_MAX_RESERVE_PAGES)

/*
 * Manifest entries a flush leaves free for compaction outputs (a
 * compaction makes its outputs large enough to need fewer than this)
 */
#define KVLSM_COMPACTION_SLOTS 256

/* level of a compaction output that is not installed yet */
#define KVLSM_LEVEL_PENDING 0xFFFF

/*
 * Level of an SSTable that kvlsm_repair took out of service because it
 * failed verification: never read, never compacted, and its pages are
 * never reused, so the damaged data stays for inspection.
 */
#define KVLSM_LEVEL_QUARANTINE 0xFFFE

/* may readers and compaction use this table? */
#define KvlsmSstIsLive(desc) ((desc)->level < KVLSM_LEVEL_QUARANTINE)

typedef struct KvlsmManifestCopy
{
	KvlsmManifestHeader hdr;
	KvlsmSstDesc sst[KVLSM_MAX_SST];
	KvlsmExtent free[KVLSM_MAX_FREE_EXTENTS];
} KvlsmManifestCopy;

typedef struct KvlsmInstallArg
{
	BlockNumber new_manifest;
	uint64		new_version;
	bool		retire_frozen;
	uint64		bytes_flushed;
	uint64		bytes_in;
	uint64		bytes_out;
	bool		is_compaction;
	uint64		next_sstid;		/* 0: unchanged */
	bool		clear_reserve;	/* the reserve went back to the free list */
	bool		set_reserve;
	BlockNumber reserve_start;
	uint32		reserve_npages;
	/* compactions: the new toast_fxid and KVLSM_META_TOAST_SWEEP */
	bool		set_toast_state;
	FullTransactionId toast_fxid;
	bool		toast_sweep;
	/* set by kvlsm_manifest_prepare */
	bool		prepared;
	char	   *stream;			/* the serialized manifest */
	Size		stream_len;
} KvlsmInstallArg;

typedef struct KvlsmSortArg
{
	const KvlsmKeyOps *ops;
} KvlsmSortArg;

/* (key asc, seq desc) order of KvlsmRecords; arg is a KvlsmSortArg */
extern int	kvlsm_record_cmp(const void *a, const void *b, void *arg);
extern void kvlsm_recset_merge_runs(KvlsmRecordSet *set, const int *runs, int nruns,
									const KvlsmKeyOps *ops);

extern void kvlsm_manifest_read(Relation rel, const KvlsmMetaPageData *meta,
								KvlsmManifestCopy *mc);
extern char *kvlsm_manifest_try_read(Relation rel, BlockNumber slot,
									 KvlsmManifestCopy *mc, BlockNumber *blkno);
extern void kvlsm_manifest_give_extent(KvlsmManifestCopy *mc, BlockNumber start,
									   uint32 npages);
extern void kvlsm_manifest_place_sstable(Relation rel, KvlsmSstBuilder *b,
										 uint32 npages, KvlsmManifestCopy *mc,
										 KvlsmSstDesc *desc);
extern BlockNumber kvlsm_manifest_reserve_extent(Relation rel, KvlsmManifestCopy *mc,
												 uint32 npages);
extern void kvlsm_ensure_blocks(Relation rel, BlockNumber upto);
extern BlockNumber kvlsm_shrink(Relation rel);
extern void kvlsm_manifest_plan_log_reserve(const KvlsmMetaPageData *meta,
											KvlsmManifestCopy *mc,
											KvlsmInstallArg *ia);
extern bool kvlsm_manifest_drop_stale(KvlsmShared *sh, KvlsmManifestCopy *mc);
extern void kvlsm_manifest_prepare(Relation rel, KvlsmManifestCopy *mc,
								   KvlsmInstallArg *ia);
extern void kvlsm_manifest_install(Relation rel, KvlsmShared *sh,
								   KvlsmManifestCopy *mc, KvlsmInstallArg *ia);
extern void kvlsm_manifest_install_repaired(Relation rel, KvlsmManifestCopy *mc,
											KvlsmInstallArg *ia);
extern int	kvlsm_bloom_bits_for(const KvlsmMetaPageData *meta);
extern uint64 kvlsm_reserve_sstid(Relation rel);

#endif							/* KVLSM_MANIFEST_H */
