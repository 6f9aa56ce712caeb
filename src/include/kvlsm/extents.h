/*-------------------------------------------------------------------------
 *
 * extents.h
 *	  Free space of one LSM's file: the free extents of a manifest copy,
 *	  placing SSTables and reservations in them or in new pages at the end
 *	  of the file (src/engine/extents.c), and giving space back: VACUUM's
 *	  truncation of a free tail and the sweep of leaked pages
 *	  (src/engine/reclaim.c).
 *
 * The free list is part of the manifest (manifest.h): it is changed in a
 * private copy under the flush lock and becomes true when the copy is
 * installed.  The file is extended under the relation extension lock,
 * without WAL for empty pages; new log pages keep that lock until they
 * are linked (kvlsm_new_page), which is what lets the sweep trust what it
 * reads under it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_EXTENTS_H
#define KVLSM_EXTENTS_H

#include "storage/buf.h"

#include "kvlsm/manifest.h"

/* pages set aside for new log pages at each install (2 MB) */
#define KVLSM_LOG_RESERVE_PAGES 256

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

/* extents.c */
extern int	kvlsm_extent_cmp(const void *a, const void *b);
extern void kvlsm_manifest_give_extent(KvlsmManifestCopy *mc, BlockNumber start,
									   uint32 npages);
extern void kvlsm_manifest_take_free_range(KvlsmManifestCopy *mc, uint32 i,
										   BlockNumber start, uint32 npages);
extern void kvlsm_ensure_blocks(Relation rel, BlockNumber upto);
extern BlockNumber kvlsm_manifest_new_pages(Relation rel,
											const KvlsmManifestCopy *mc,
											uint32 npages);
extern void kvlsm_manifest_place_sstable(Relation rel, KvlsmSstBuilder *b,
										 uint32 npages, KvlsmManifestCopy *mc,
										 KvlsmSstDesc *desc);
extern BlockNumber kvlsm_manifest_reserve_extent(Relation rel, KvlsmManifestCopy *mc,
												 uint32 npages);
extern void kvlsm_manifest_plan_log_reserve(const KvlsmMetaPageData *meta,
											KvlsmManifestCopy *mc,
											KvlsmInstallArg *ia);
extern void kvlsm_extend_past_listed(Relation rel, BlockNumber listed_end);
extern Buffer kvlsm_new_page(Relation rel, BlockNumber listed_end);
extern void kvlsm_new_page_done(Relation rel);

/* reclaim.c */
extern BlockNumber kvlsm_shrink(Relation rel, int max_wait_ms);
extern void kvlsm_sweep_leaked_pages(Relation rel, KvlsmShared *sh,
									 KvlsmManifestCopy *mc);

#endif							/* KVLSM_EXTENTS_H */
