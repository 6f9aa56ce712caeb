/*-------------------------------------------------------------------------
 *
 * sst_reader.c
 *	  Reading records out of an SSTable: the bloom filter probe, the
 *	  per-backend cache of decompressed data blocks of point lookups, the
 *	  records of a key range (kvlsm_sst_collect) and the index keys that
 *	  backward scans step down by (kvlsm_sst_pivot).
 *
 * Data blocks are decoded by sst_block.c; what it finds wrong in a block
 * is raised here as ERRCODE_DATA_CORRUPTED naming the relation and block.
 * A page whose owner is not the expected SSTable (its extent was freed by
 * a compaction and reused) makes a read return KVLSM_SST_RETRY: the caller
 * reloads the manifest and starts over.  One buffer content lock at a
 * time: pages are copied out (or, for filter probes, tested in place under
 * a share lock) and the lock released before anything else is taken.
 *
 * Callers: the engine's merged reads (kvlsm_collect, kvlsm_pivot_below),
 * compactions reading their inputs (compaction.c) and kvlsm_key_history
 * (admin/inspect.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "kvlsm/sst_table_cache.h"

typedef enum BloomProbe
{
	BLOOM_ABSENT,				/* the key is not in the SSTable */
	BLOOM_MAYBE,
	BLOOM_RECYCLED				/* the extent was reused: start over */
} BloomProbe;

/*
 * Test a key's bits in the filter pages, read through shared buffers (the
 * block cache) rather than copied into backend memory: a backend that
 * probes many large SSTables would otherwise keep megabytes of filters per
 * SSTable, and drop and reload them all when its cache overflows.  At most
 * bloom_k pages are touched, usually one or two.
 */
static BloomProbe
bloom_probe(Relation rel, KvlsmSstCacheEntry *e, uint64 owner, uint64 h)
{
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;
	BloomProbe	result = BLOOM_MAYBE;
	uint32		i;

	for (i = 0; i < e->bloom_k; i++)
	{
		uint32		bit = kvlsm_bloom_bit(h, i, e->bloom_nbits);
		uint32		byte = bit / 8;
		BlockNumber blk = e->bloom_start + byte / KVLSM_PAGE_CAPACITY;

		if (blk != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = ReadBufferExtended(rel, MAIN_FORKNUM, blk, RBM_NORMAL, NULL);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (!kvlsm_page_owner_is(page, KVLSM_PAGE_SST_BLOOM, owner))
			{
				result = BLOOM_RECYCLED;
				break;
			}
			/*
			 * Checked in place (immutable under the share lock), once per
			 * page and backend: a checksum of 8 kB per probe would cost
			 * more than the probe saves.
			 */
			{
				uint32		pageno = blk - e->bloom_start;

				if ((e->bloom_checked[pageno / 8] & (1 << (pageno % 8))) == 0)
				{
					kvlsm_page_check(rel, blk, page, KVLSM_PAGE_SST_BLOOM);
					e->bloom_checked[pageno / 8] |= (1 << (pageno % 8));
				}
			}
			cur = blk;
		}
		if ((((unsigned char *) page)[SizeOfPageHeaderData + byte % KVLSM_PAGE_CAPACITY] &
			 (1 << (bit % 8))) == 0)
		{
			result = BLOOM_ABSENT;
			break;
		}
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	return result;
}

/*
 * Decompressed data pages of point lookups, per backend: a direct-mapped
 * cache keyed by (filenode, incarnation, SSTable id, page number).
 * SSTables never change and ids are never reused, so entries need no
 * invalidation.  A miss decompresses straight into its slot, so it costs
 * nothing extra; scans do not use it, so one big scan does not flush it.
 */
#define PAGE_CACHE_SLOTS 256

typedef struct PageCacheSlot
{
	KvlsmSstCacheKey sst;
	uint32		pageno;
	bool		valid;
	uint32		datalen;
	uint32		nitems;
	uint16		flags;			/* the block's first page's (the header format) */
	char	   *data;			/* KVLSM_MAX_PAYLOAD bytes, allocated once */
} PageCacheSlot;

static PageCacheSlot *page_cache = NULL;

static PageCacheSlot *
page_cache_slot(const KvlsmSstCacheKey *sst, uint32 pageno)
{
	uint32		h;

	if (page_cache == NULL)
		page_cache = MemoryContextAllocZero(TopMemoryContext,
											sizeof(PageCacheSlot) * PAGE_CACHE_SLOTS);
	h = hash_bytes((const unsigned char *) sst, sizeof(KvlsmSstCacheKey)) ^
		(pageno * 0x9E3779B1);
	return &page_cache[h % PAGE_CACHE_SLOTS];
}

/* the pieces of a span, for the block decoder: checked data pages */
typedef struct DataPageSource
{
	Relation	rel;
	uint64		owner;
} DataPageSource;

static bool
read_data_page(void *arg, BlockNumber blkno, char *dst)
{
	DataPageSource *src = (DataPageSource *) arg;

	return kvlsm_sst_read_page(src->rel, blkno, KVLSM_PAGE_SST_DATA, src->owner, dst);
}

/* what the decoder found wrong in a data block, as an error */
static void
raise_block_error(Relation rel, const KvlsmDataBlock *block,
				  KvlsmDataBlockStatus status)
{
	BlockNumber blkno = block->blkno;

	switch (status)
	{
		case KVLSM_DATA_BLOCK_MID_SPAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: SSTable index points into the middle of a data block",
							RelationGetRelationName(rel), blkno)));
			break;
		case KVLSM_DATA_BLOCK_BAD_SPAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: data block spans %u pages",
							RelationGetRelationName(rel), blkno, block->link)));
			break;
		case KVLSM_DATA_BLOCK_BAD_PIECE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: not piece %u of the data block at block %u",
							RelationGetRelationName(rel), block->bad_blkno,
							block->bad_piece, blkno)));
			break;
		case KVLSM_DATA_BLOCK_TOO_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: data length %u exceeds the largest data block",
							RelationGetRelationName(rel), blkno, block->datalen)));
			break;
		case KVLSM_DATA_BLOCK_BAD_COMPRESSED:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: %s data block does not decompress",
							RelationGetRelationName(rel), blkno,
							(block->flags & KVLSM_PAGE_FLAG_ZSTD) ? "zstd" : "lz4")));
			break;
		case KVLSM_DATA_BLOCK_SHORT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: data length %u exceeds the block",
							RelationGetRelationName(rel), blkno, block->datalen)));
			break;
		case KVLSM_DATA_BLOCK_OK:
		case KVLSM_DATA_BLOCK_UNREADABLE:
			break;
	}
	elog(ERROR, "kvlsm: unexpected data block status %d", (int) status);
}

/*
 * The payload of data block 'blockno' of an SSTable: from the page cache,
 * or read through shared buffers (checked, reassembled when it spans pages,
 * and decompressed).  Returns false when a page was recycled.
 */
static bool
get_data_page(Relation rel, KvlsmSstCacheEntry *e, const KvlsmSstDesc *desc,
			  uint32 blockno, bool use_cache, char *pagebuf, char **payload,
			  KvlsmDataBlock *block)
{
	PageCacheSlot *slot = NULL;
	BlockNumber blkno = e->start + 1 + e->index_pagenos[blockno];
	char	   *target;
	DataPageSource src;
	KvlsmDataBlockStatus status;

	if (use_cache)
	{
		slot = page_cache_slot(&e->key, blockno);
		if (slot->valid && slot->pageno == blockno &&
			memcmp(&slot->sst, &e->key, sizeof(KvlsmSstCacheKey)) == 0)
		{
			memset(block, 0, sizeof(*block));
			block->blkno = blkno;
			block->data = slot->data;
			block->datalen = slot->datalen;
			block->nitems = slot->nitems;
			block->flags = slot->flags;
			return true;
		}
		slot->valid = false;
		if (slot->data == NULL)
			slot->data = MemoryContextAlloc(TopMemoryContext, KVLSM_MAX_PAYLOAD);
		target = slot->data;
	}
	else
	{
		if (*payload == NULL)
			*payload = palloc(KVLSM_MAX_PAYLOAD);
		target = *payload;
	}

	if (!kvlsm_sst_read_page(rel, blkno, KVLSM_PAGE_SST_DATA, desc->id, pagebuf))
		return false;
	src.rel = rel;
	src.owner = desc->id;
	status = kvlsm_data_block_start(block, blkno, pagebuf);
	if (status == KVLSM_DATA_BLOCK_OK)
		status = kvlsm_data_block_read(block, e->index_pagenos[blockno],
									   e->ndata, pagebuf, read_data_page, &src,
									   target, NULL);
	if (status == KVLSM_DATA_BLOCK_UNREADABLE)
		return false;
	if (status != KVLSM_DATA_BLOCK_OK)
		raise_block_error(rel, block, status);

	if (slot != NULL)
	{
		if (block->data != target)
		{
			memcpy(target, block->data, block->datalen);
			block->data = target;
		}
		slot->sst = e->key;
		slot->pageno = blockno;
		slot->datalen = block->datalen;
		slot->nitems = block->nitems;
		slot->flags = block->flags;
		slot->valid = true;
	}
	return true;
}

/* a range being collected from one SSTable */
typedef struct CollectState
{
	Relation	rel;
	const KvlsmKeyOps *ops;
	const char *start;			/* NULL: from the first key */
	int			startlen;
	bool		start_exclusive;
	const char *end;			/* NULL: to the last key */
	int			endlen;
	int			maxkeys;		/* distinct keys to collect; 0: all */
	KvlsmRecordSet *out;
	char	   *keybuf;			/* the current entry's whole key */
	int			nkeys;			/* distinct keys collected */
	char	   *lastkey;		/* the last key collected, in 'out' */
	int			lastkeylen;
	bool		past_start;
	bool		limited;		/* stopped after maxkeys keys */
} CollectState;

/*
 * Add the block's entries within the range to cs->out.  Returns true when
 * the range ends in this block (past its end, or maxkeys reached).
 */
static bool
collect_block(CollectState *cs, const KvlsmDataBlock *block)
{
	const KvlsmKeyOps *ops = cs->ops;
	KvlsmDataBlockIter it;
	KvlsmEntryStatus status;

	kvlsm_data_block_iter_init(&it, block, cs->keybuf, false);
	while ((status = kvlsm_data_block_next(&it)) != KVLSM_ENTRY_END)
	{
		int			c;

		if (status == KVLSM_ENTRY_PAST_END)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: entry %u runs past the page data",
							RelationGetRelationName(cs->rel), block->blkno, it.entryno)));
		if (status == KVLSM_ENTRY_BAD_LENGTHS)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: entry %u has bad lengths",
							RelationGetRelationName(cs->rel), block->blkno, it.entryno)));

		/* keys ascend: once one is past the start, all are */
		if (cs->start && !cs->past_start)
		{
			c = ops->cmp(it.key, it.keylen, cs->start, cs->startlen, ops->arg);
			if (c < 0 || (c == 0 && cs->start_exclusive))
				continue;
			cs->past_start = true;
		}
		if (cs->end)
		{
			c = ops->cmp(it.key, it.keylen, cs->end, cs->endlen, ops->arg);
			if (c > 0)
				return true;
		}
		if (cs->lastkey == NULL || cs->lastkeylen != it.keylen ||
			ops->cmp(cs->lastkey, cs->lastkeylen, it.key, it.keylen, ops->arg) != 0)
		{
			if (cs->maxkeys > 0 && cs->nkeys >= cs->maxkeys)
			{
				cs->limited = true;
				return true;
			}
			cs->nkeys++;
		}
		kvlsm_recset_add(cs->out, it.key, it.keylen, it.eh.seq, it.eh.flags,
						 it.val, it.eh.vallen, 0, false);
		cs->lastkey = (char *) cs->out->recs[cs->out->n - 1].key;
		cs->lastkeylen = it.keylen;
	}
	return false;
}

/*
 * Collect records with keys in [start, end] (start exclusive if asked; end
 * NULL = unbounded), stopping after 'maxkeys' distinct keys (0 = no limit).
 * *limited is set when it stopped early: keys after the last one collected
 * may exist in this SSTable.
 */
KvlsmSstStatus
kvlsm_sst_collect(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *desc,
				  const KvlsmKeyOps *ops,
				  const char *start, int startlen, bool start_exclusive,
				  const char *end, int endlen, int maxkeys,
				  const uint64 *bloom_hash, KvlsmRecordSet *out, bool *limited)
{
	KvlsmSstCacheEntry *e;
	uint32		pageno;
	PGAlignedBlock pagebuf;
	char	   *payload = NULL;
	/* aligned: comparators may read typed fields of the key in place */
	union
	{
		char		data[KVLSM_MAX_KEY_SIZE];
		double		align;
	}			keyu;
	int			nkeys_before_probe = -1;
	CollectState cs;

	*limited = false;
	e = kvlsm_sst_cache_load(rel, sh, desc);
	if (e == NULL)
		return KVLSM_SST_RETRY;
	if (e->ndata == 0)
		return KVLSM_SST_OK;

	if (bloom_hash && e->nbloom > 0)
	{
		sh->stats.bloom_checks++;
		switch (bloom_probe(rel, e, desc->id, *bloom_hash))
		{
			case BLOOM_ABSENT:
				sh->stats.bloom_negatives++;
				return KVLSM_SST_OK;
			case BLOOM_RECYCLED:
				return KVLSM_SST_RETRY;
			case BLOOM_MAYBE:
				break;
		}
	}
	sh->stats.sst_probes++;
	if (bloom_hash && e->nbloom > 0)
		nkeys_before_probe = out->n;

	memset(&cs, 0, sizeof(cs));
	cs.rel = rel;
	cs.ops = ops;
	cs.start = start;
	cs.startlen = startlen;
	cs.start_exclusive = start_exclusive;
	cs.end = end;
	cs.endlen = endlen;
	cs.maxkeys = maxkeys;
	cs.out = out;
	cs.keybuf = keyu.data;
	cs.lastkeylen = -1;

	pageno = start ? kvlsm_sst_index_search(e, ops, start, startlen) : 0;
	for (; pageno < e->nindex_entries; pageno++)
	{
		KvlsmDataBlock block;

		CHECK_FOR_INTERRUPTS();
		if (!get_data_page(rel, e, desc, pageno, bloom_hash != NULL, pagebuf.data,
						   &payload, &block))
			return KVLSM_SST_RETRY;
		if (collect_block(&cs, &block))
			break;
	}
	*limited = cs.limited;
	if (payload)
		pfree(payload);
	/* the filter said "maybe" and the table does not hold the key */
	if (nkeys_before_probe >= 0 && out->n == nkeys_before_probe)
		sh->stats.bloom_false_positives++;
	return KVLSM_SST_OK;
}

/*
 * A key of this SSTable below 'key' (NULL: above every key), 'back' data
 * blocks down: the first key of the block that many blocks before the one
 * 'key' falls in, or of a later block if that one starts at 'key'.  Points
 * into the backend's SSTable cache: copy it before the next read.  False
 * when the SSTable holds nothing below 'key' or its extent was recycled.
 * Backward index scans step down by such keys (kvlsm_pivot_below).
 */
bool
kvlsm_sst_pivot(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *desc,
				const KvlsmKeyOps *ops, const char *key, int keylen, int back,
				const char **pivot, int *pivotlen)
{
	KvlsmSstCacheEntry *e = kvlsm_sst_cache_load(rel, sh, desc);
	uint32		idx;

	if (e == NULL || e->nindex_entries == 0)
		return false;
	idx = key ? kvlsm_sst_index_search(e, ops, key, keylen) : e->nindex_entries - 1;
	idx = idx >= (uint32) back ? idx - back : 0;
	while (key != NULL &&
		   ops->cmp(e->index_keys[idx], e->index_keylens[idx], key, keylen, ops->arg) >= 0)
	{
		if (idx == 0)
			return false;
		idx--;
	}
	*pivot = e->index_keys[idx];
	*pivotlen = e->index_keylens[idx];
	return true;
}
