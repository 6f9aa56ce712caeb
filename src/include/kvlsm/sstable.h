/*-------------------------------------------------------------------------
 *
 * sstable.h
 *	  Sorted string tables stored as extents of the relation's own pages:
 *	  building one from a sorted record stream, and reading it back.  The
 *	  SSTable module's table of contents; its files, one idea each:
 *
 *	  sst_block.c          the data block format and its one decoder
 *	                       (sst_block.h)
 *	  sst_block_builder.c  packing entries into data blocks
 *	  sst_builder.c        building a table: entries in, pages laid out
 *	  sst_writer.c         writing a table's pages (generic WAL)
 *	  sst_table_cache.c    per-backend cache of headers and indexes
 *	  sst_reader.c         bloom probes, data block cache, range reads
 *	  sst_walk.c           the whole-table walk of verify, repair, dump
 *	  bloom.c              bloom filter hashes and bits (bloom.h)
 *
 *	  (the builder's state is in sst_builder.h, the cache's in
 *	  sst_table_cache.h, for those files only).
 *
 * Extent layout: header page, data pages (prefix-compressed entries with a
 * restart every KVLSM_RESTART_INTERVAL entries, lz4 per page when enabled),
 * index pages (first key of every data page), bloom filter pages.  Every
 * page carries the SSTable id as owner and a crc32c.
 *
 * Readers copy the header and index into a backend-local cache keyed by
 * (filenode, incarnation, SSTable id), and probe the bloom filter pages in
 * shared buffers: SSTables are immutable, and an id is never reused within
 * a filenode, so the cache needs no invalidation.  A page whose owner is
 * not the expected SSTable (its extent was freed by a compaction and
 * reused) makes the read return KVLSM_SST_RETRY: the caller reloads the
 * manifest and starts over.
 *
 * Callers: the engine's flushes, merged reads, compactions and compaction
 * picker, and the admin functions (stats, verify, repair, dump).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SSTABLE_H
#define KVLSM_SSTABLE_H

#include "storage/bufmgr.h"

#include "kvlsm/bloom.h"
#include "kvlsm/lsm.h"
#include "kvlsm/sst_block.h"

typedef enum KvlsmSstStatus
{
	KVLSM_SST_OK,
	KVLSM_SST_RETRY
} KvlsmSstStatus;

/* a builder takes records in (key asc, seq desc) order */
typedef struct KvlsmSstBuilder KvlsmSstBuilder;

/* sst_builder.c */
extern KvlsmSstBuilder *kvlsm_sst_builder_begin(Relation rel, uint64 id,
												int level, int compression,
												int bloom_bits_per_key,
												const KvlsmKeyOps *ops);
extern void kvlsm_sst_builder_add(KvlsmSstBuilder *b, const char *key, int keylen,
								  uint64 seq, uint16 flags,
								  const char *val, int vallen);
extern uint32 kvlsm_sst_builder_count(KvlsmSstBuilder *b);
/* lays the SSTable out in pages; the caller then allocates and writes them */
extern uint32 kvlsm_sst_builder_finish(KvlsmSstBuilder *b);

/* sst_writer.c */
extern void kvlsm_sst_builder_set_compaction(KvlsmSstBuilder *b);
extern void kvlsm_sst_builder_pay(KvlsmSstBuilder *b);
extern void kvlsm_sst_builder_write(KvlsmSstBuilder *b, BlockNumber start,
									bool extend, KvlsmSstDesc *desc);
/* compaction outputs: data pages written to a reserved extent as made */
extern void kvlsm_sst_builder_stream_to(KvlsmSstBuilder *b, BlockNumber start,
										uint32 npages);
extern bool kvlsm_sst_builder_has_room(KvlsmSstBuilder *b, uint32 n, Size bytes);
extern uint32 kvlsm_sst_min_reserve(uint32 n, Size bytes, int bloom_bits_per_key);

/* sst_table_cache.c */
extern PGDLLIMPORT BufferAccessStrategy kvlsm_sst_read_strategy;
extern bool kvlsm_sst_bounds(Relation rel, const KvlsmSstDesc *desc,
							 char **min, int *minlen, char **max, int *maxlen);
extern void kvlsm_sst_cache_forget_all(void);

/* sst_reader.c */
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

/* sst_walk.c */
extern bool kvlsm_sst_walk(Relation rel, const KvlsmSstDesc *desc,
						   KvlsmSstHeader *hdr, KvlsmSstWalker *w);

#endif							/* KVLSM_SSTABLE_H */
