/*-------------------------------------------------------------------------
 *
 * sst_table_cache.h
 *	  Inside the SSTable readers: the per-backend cache of SSTable
 *	  metadata (header, index, where the bloom filter lies) and the checked
 *	  page reads it is filled with.  Owned by src/engine/sst_table_cache.c;
 *	  used by it and by src/engine/sst_reader.c only.  Everyone else uses
 *	  the functions in sstable.h.
 *
 * Entries are keyed by (filenode, incarnation, SSTable id): SSTables are
 * immutable, and an id is never reused within a filenode, so the cache
 * needs no invalidation.  It lives in TopMemoryContext, is bounded
 * (dropped whole when it grows past its limit) and is dropped by
 * kvlsm_sst_cache_forget_all.  Page reads hold one buffer share lock at a
 * time, copy the page out and check the copy after releasing it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SST_TABLE_CACHE_H
#define KVLSM_SST_TABLE_CACHE_H

#include "postgres.h"

#include "kvlsm/sstable.h"

typedef struct KvlsmSstCacheKey
{
	KvlsmLsmTag tag;
	uint64		incarnation;
	uint64		id;
} KvlsmSstCacheKey;

typedef struct KvlsmSstCacheEntry
{
	KvlsmSstCacheKey key;
	bool		valid;
	BlockNumber start;
	uint32		ndata;
	uint32		nindex_entries;
	char	  **index_keys;		/* first key of each data block */
	uint16	   *index_keylens;
	uint32	   *index_pagenos;	/* first data page of each block */
	uint32		bloom_nbits;
	uint32		bloom_k;
	BlockNumber bloom_start;	/* first filter page; probed in shared buffers */
	uint32		nbloom;			/* filter pages; 0: no filter */
	uint8	   *bloom_checked;	/* filter pages whose checksum this backend
								 * verified (immutable while the owner matches) */
} KvlsmSstCacheEntry;

/* sst_table_cache.c */
extern bool kvlsm_sst_read_page(Relation rel, BlockNumber blkno, uint16 type,
								uint64 owner, char *dst);
extern KvlsmSstCacheEntry *kvlsm_sst_cache_load(Relation rel, KvlsmShared *sh,
												const KvlsmSstDesc *desc);
extern uint32 kvlsm_sst_index_search(KvlsmSstCacheEntry *e,
									 const KvlsmKeyOps *ops,
									 const char *key, int keylen);

#endif							/* KVLSM_SST_TABLE_CACHE_H */
