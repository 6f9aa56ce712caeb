/*-------------------------------------------------------------------------
 *
 * manifest.h
 *	  Editing the manifest of one LSM: a private copy of the live SSTables
 *	  and free extents, read from the pages and installed atomically with
 *	  the metapage.  Owned by src/engine/manifest.c; placing new SSTables in
 *	  free extents or at the end of the file is extents.c's (extents.h,
 *	  included at the end).  Used by flush (flush.c), compaction
 *	  (compaction.c), shrink (reclaim.c) and repair (verify.c).
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

/* manifest.c */
extern char *kvlsm_manifest_try_read(Relation rel, BlockNumber slot,
									 KvlsmManifestCopy *mc, BlockNumber *blkno);
extern void kvlsm_manifest_read(Relation rel, const KvlsmMetaPageData *meta,
								KvlsmManifestCopy *mc);
extern void kvlsm_manifest_load(Relation rel, KvlsmShared *sh,
								const KvlsmMetaPageData *meta);
extern bool kvlsm_manifest_fits_in_place(Relation rel, KvlsmManifestCopy *mc,
										 BlockNumber below);
extern void kvlsm_manifest_prepare(Relation rel, KvlsmManifestCopy *mc,
								   KvlsmInstallArg *ia);
extern void kvlsm_manifest_install(Relation rel, KvlsmShared *sh,
								   KvlsmManifestCopy *mc, KvlsmInstallArg *ia);
extern bool kvlsm_manifest_drop_stale(KvlsmShared *sh, KvlsmManifestCopy *mc);
extern void kvlsm_manifest_install_repaired(Relation rel, KvlsmManifestCopy *mc,
											KvlsmInstallArg *ia);

/* free extents and file space; its includers expect them here */
#include "kvlsm/extents.h"

#endif							/* KVLSM_MANIFEST_H */
