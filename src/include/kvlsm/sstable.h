/*-------------------------------------------------------------------------
 *
 * sstable.h
 *	  Sorted string tables stored as extents of the relation's own pages:
 *	  building one from a sorted record stream, and reading it back.  Owned
 *	  by src/engine/sstable.c.
 *
 * Extent layout: header page, data pages (prefix-compressed entries with a
 * restart every KVLSM_RESTART_INTERVAL entries, lz4 per page when enabled),
 * index pages (first key of every data page), bloom filter pages.  Every
 * page carries the SSTable id as owner and a crc32c.
 *
 * Readers copy the header, index and bloom filter into a backend-local
 * cache keyed by (filenode, incarnation, SSTable id): SSTables are
 * immutable, and an id is never reused within a filenode, so the cache
 * needs no invalidation.  A page whose owner is not the expected SSTable
 * (its extent was freed by a compaction and reused) makes the read return
 * KVLSM_SST_RETRY: the caller reloads the manifest and starts over.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SSTABLE_H
#define KVLSM_SSTABLE_H

#include "storage/bufmgr.h"

#include "kvlsm/lsm.h"

#define KVLSM_RESTART_INTERVAL 16
/* uncompressed payload of one data page: up to four pages' worth with lz4 */
#define KVLSM_MAX_PAYLOAD (4 * KVLSM_PAGE_CAPACITY)

typedef enum KvlsmSstStatus
{
	KVLSM_SST_OK,
	KVLSM_SST_RETRY
} KvlsmSstStatus;

/* a builder takes records in (key asc, seq desc) order */
typedef struct KvlsmSstBuilder KvlsmSstBuilder;

extern KvlsmSstBuilder *kvlsm_sst_builder_begin(Relation rel, uint64 id,
												int level, int compression,
												int bloom_bits_per_key,
												const KvlsmKeyOps *ops);
extern void kvlsm_sst_builder_add(KvlsmSstBuilder *b, const char *key, int keylen,
								  uint64 seq, uint16 flags,
								  const char *val, int vallen);
extern void kvlsm_sst_builder_set_compaction(KvlsmSstBuilder *b);
extern void kvlsm_sst_builder_pay(KvlsmSstBuilder *b);
extern PGDLLIMPORT BufferAccessStrategy kvlsm_sst_read_strategy;
extern uint32 kvlsm_sst_builder_count(KvlsmSstBuilder *b);
/* lays the SSTable out in pages; the caller then allocates and writes them */
extern uint32 kvlsm_sst_builder_finish(KvlsmSstBuilder *b);
extern void kvlsm_sst_builder_write(KvlsmSstBuilder *b, BlockNumber start,
									bool extend, KvlsmSstDesc *desc);
/* compaction outputs: data pages written to a reserved extent as made */
extern void kvlsm_sst_builder_stream_to(KvlsmSstBuilder *b, BlockNumber start,
										uint32 npages);
extern bool kvlsm_sst_builder_has_room(KvlsmSstBuilder *b, uint32 n, Size bytes);
extern uint32 kvlsm_sst_min_reserve(uint32 n, Size bytes, int bloom_bits_per_key);

extern bool kvlsm_sst_pivot(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *desc,
							const KvlsmKeyOps *ops, const char *key, int keylen,
							int back, const char **pivot, int *pivotlen);
extern KvlsmSstStatus kvlsm_sst_collect(Relation rel, KvlsmShared *sh,
										const KvlsmSstDesc *desc,
										const KvlsmKeyOps *ops,
										const char *start, int startlen,
										bool start_exclusive,
										const char *end, int endlen,
										int maxkeys, const uint64 *bloom_hash,
										KvlsmRecordSet *out,
										bool *limited);

extern bool kvlsm_sst_bounds(Relation rel, const KvlsmSstDesc *desc,
							 char **min, int *minlen, char **max, int *maxlen);
extern void kvlsm_sst_cache_forget_all(void);

/*
 * A whole-SSTable walk for verification, repair and dumps: every problem
 * found in the pages is reported (never raised) and the walk goes on;
 * 'entry' sees every decodable entry in stored order.  'ops' enables the
 * key order checks.
 */
typedef struct KvlsmSstWalker
{
	void		(*problem) (void *arg, BlockNumber blkno, const char *msg);
	void		(*entry) (void *arg, BlockNumber blkno, const char *key,
						  int keylen, uint64 seq, uint16 flags,
						  const char *val, uint32 vallen);
	void	   *arg;
	const KvlsmKeyOps *ops;
	bool		check_bloom;
	/* set by the walk: the key range its header records (NULL: none) */
	char	   *hdr_minkey;
	int			hdr_minkeylen;
	char	   *hdr_maxkey;
	int			hdr_maxkeylen;
} KvlsmSstWalker;

extern bool kvlsm_sst_walk(Relation rel, const KvlsmSstDesc *desc,
						   KvlsmSstHeader *hdr, KvlsmSstWalker *w);

#endif							/* KVLSM_SSTABLE_H */
