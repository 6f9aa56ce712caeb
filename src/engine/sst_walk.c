/*-------------------------------------------------------------------------
 *
 * sst_walk.c
 *	  Walking a whole SSTable (kvlsm_verify, kvlsm_repair,
 *	  kvlsm_sstable_dump): header, index, bloom filter and every data
 *	  block, each entry checked against the header, the index, the filter
 *	  and the entry before it.
 *
 * Unlike the readers (sst_reader.c), a walk raises no error for what it
 * finds in the pages: every problem goes to the walker's callback and the
 * walk goes on with the next page, so one bad page never hides the state
 * of the others.  Data blocks are decoded by the same decoder as the
 * readers' (sst_block.c), entries with every length checked against the
 * page.
 *
 * Pages are copied out of shared buffers under a share lock, one at a
 * time, and checked after the lock is released; no other lock is taken
 * and nothing is written.  Callers: src/admin/verify.c, src/admin/inspect.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"

#include "kvlsm/sstable.h"

/* one walk of one SSTable */
typedef struct WalkState
{
	Relation	rel;
	const KvlsmSstDesc *desc;
	KvlsmSstHeader *hdr;		/* the header page's copy (the caller's) */
	KvlsmSstWalker *w;
	BlockNumber nblocks;		/* of the relation */
	char	   *pagebuf;		/* BLCKSZ bytes: the page being looked at */
	/* the key range the header records (NULL: none) */
	char	   *minkey;
	char	   *maxkey;
	/* the index: first key and first data page of every data block */
	char	  **index_keys;
	uint16	   *index_keylens;
	uint32	   *index_pagenos;
	uint32		nindex;			/* entries; UINT32_MAX: index unknown */
	char	   *bloom;			/* the filter's bits; NULL: none or unreadable */
	/* the data blocks */
	uint32		nblock;			/* data blocks seen */
	char	   *payload;		/* KVLSM_MAX_PAYLOAD bytes each */
	char	   *spanbuf;
	char	   *curkey;			/* KVLSM_MAX_KEY_SIZE bytes each */
	char	   *prevkey;
	int			prevkeylen;		/* -1: no entry to compare the next with */
	uint64		prevseq;
	uint64		nentries;
	bool		entries_complete;	/* every data block was decoded whole */
	bool		first_entry;
} WalkState;

static void
walk_problem(const KvlsmSstWalker *w, BlockNumber blkno, const char *fmt,...)
	pg_attribute_printf(3, 4);

static void
walk_problem(const KvlsmSstWalker *w, BlockNumber blkno, const char *fmt,...)
{
	va_list		args;
	StringInfoData msg;

	initStringInfo(&msg);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}
	if (w->problem)
		w->problem(w->arg, blkno, msg.data);
	pfree(msg.data);
}

/*
 * Copy one page of the SSTable out of shared buffers and check it; false
 * (and a problem reported) when it is not a sound page of that type and
 * owner.
 */
static bool
walk_read_page(Relation rel, const KvlsmSstWalker *w, BlockNumber blkno,
			   uint16 type, uint64 owner, BlockNumber nblocks, char *dst)
{
	Buffer		buf;
	char	   *problem;
	KvlsmPageOpaque opaque;

	if (blkno >= nblocks)
	{
		walk_problem(w, blkno, "%s of SSTable %llu lies beyond the end of the relation (%u blocks)",
					 kvlsm_page_type_name(type), (unsigned long long) owner, nblocks);
		return false;
	}
	buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, kvlsm_sst_read_strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(dst, BufferGetPage(buf), BLCKSZ);
	UnlockReleaseBuffer(buf);

	problem = kvlsm_page_problem((Page) dst, type);
	if (problem != NULL)
	{
		walk_problem(w, blkno, "%s", problem);
		return false;
	}
	opaque = KvlsmPageGetOpaque((Page) dst);
	if (opaque->owner != owner)
	{
		walk_problem(w, blkno, "%s belongs to SSTable %llu, expected SSTable %llu",
					 kvlsm_page_type_name(type),
					 (unsigned long long) opaque->owner, (unsigned long long) owner);
		return false;
	}
	return true;
}

/* the pieces of a span, for the block decoder: problems reported */
static bool
walk_data_page(void *arg, BlockNumber blkno, char *dst)
{
	WalkState  *ws = (WalkState *) arg;

	return walk_read_page(ws->rel, ws->w, blkno, KVLSM_PAGE_SST_DATA,
						  ws->desc->id, ws->nblocks, dst);
}

/*
 * The header page: copied to *ws->hdr and checked against the manifest
 * and against itself.  False when it cannot be used.
 */
static bool
walk_header(WalkState *ws)
{
	const KvlsmSstDesc *desc = ws->desc;
	KvlsmSstHeader *hdr = ws->hdr;
	KvlsmSstWalker *w = ws->w;
	char	   *hp;

	if (!walk_read_page(ws->rel, w, desc->start, KVLSM_PAGE_SST_HEADER, desc->id,
						ws->nblocks, ws->pagebuf))
		return false;
	hp = PageGetContents((Page) ws->pagebuf);
	memcpy(hdr, hp, sizeof(*hdr));
	if (hdr->id != desc->id || hdr->npages != desc->npages ||
		hdr->nentries != desc->nentries ||
		(desc->nentries > 0 &&
		 (hdr->minseq != desc->minseq || hdr->maxseq != desc->maxseq)))
		walk_problem(w, desc->start,
					 "SSTable header (id %llu, %u pages, %u entries, seq %llu-%llu) does not match the manifest (id %llu, %u pages, %u entries, seq %llu-%llu)",
					 (unsigned long long) hdr->id, hdr->npages, hdr->nentries,
					 (unsigned long long) hdr->minseq, (unsigned long long) hdr->maxseq,
					 (unsigned long long) desc->id, desc->npages, desc->nentries,
					 (unsigned long long) desc->minseq, (unsigned long long) desc->maxseq);
	if ((uint64) 1 + hdr->ndata + hdr->nindex + hdr->nbloom > desc->npages ||
		(hdr->nbloom > 0 &&
		 (hdr->bloom_nbits == 0 || hdr->bloom_k == 0 ||
		  (uint64) hdr->nbloom * KVLSM_PAGE_CAPACITY < hdr->bloom_nbits / 8)) ||
		sizeof(*hdr) + (Size) hdr->minkeylen + hdr->maxkeylen >
		((PageHeader) ws->pagebuf)->pd_lower - SizeOfPageHeaderData)
	{
		walk_problem(w, desc->start,
					 "SSTable header describes an impossible layout (%u data, %u index, %u bloom pages in an extent of %u, keys of %u and %u bytes)",
					 hdr->ndata, hdr->nindex, hdr->nbloom, desc->npages,
					 hdr->minkeylen, hdr->maxkeylen);
		return false;
	}
	if (hdr->minkeylen > 0 || hdr->maxkeylen > 0)
	{
		ws->minkey = palloc(hdr->minkeylen + 1);
		ws->maxkey = palloc(hdr->maxkeylen + 1);
		memcpy(ws->minkey, hp + sizeof(*hdr), hdr->minkeylen);
		memcpy(ws->maxkey, hp + sizeof(*hdr) + hdr->minkeylen, hdr->maxkeylen);
		w->hdr_minkey = ws->minkey;
		w->hdr_minkeylen = hdr->minkeylen;
		w->hdr_maxkey = ws->maxkey;
		w->hdr_maxkeylen = hdr->maxkeylen;
	}
	return true;
}

/* index pages: (uint16 keylen, key, uint32 data page number) */
static void
walk_index(WalkState *ws)
{
	const KvlsmSstDesc *desc = ws->desc;
	KvlsmSstHeader *hdr = ws->hdr;
	KvlsmSstWalker *w = ws->w;
	uint32		i;

	ws->index_keys = palloc0(sizeof(char *) * Max(1, hdr->ndata));
	ws->index_keylens = palloc0(sizeof(uint16) * Max(1, hdr->ndata));
	ws->index_pagenos = palloc0(sizeof(uint32) * Max(1, hdr->ndata));
	for (i = 0; i < hdr->nindex; i++)
	{
		BlockNumber blk = desc->start + 1 + hdr->ndata + i;
		uint32		off = 0;
		uint32		len;

		if (!walk_read_page(ws->rel, w, blk, KVLSM_PAGE_SST_INDEX, desc->id, ws->nblocks,
							ws->pagebuf))
		{
			ws->nindex = UINT32_MAX;	/* index unknown: skip its checks */
			continue;
		}
		len = ((PageHeader) ws->pagebuf)->pd_lower - SizeOfPageHeaderData;
		while (off < len && ws->nindex != UINT32_MAX)
		{
			char	   *p = ws->pagebuf + SizeOfPageHeaderData + off;
			uint16		kl;
			uint32		dataidx;

			memcpy(&kl, p, 2);
			if (off + 2 + kl + 4 > len || ws->nindex >= hdr->ndata)
			{
				walk_problem(w, blk, "SSTable index page holds a malformed entry at offset %u", off);
				ws->nindex = UINT32_MAX;
				break;
			}
			memcpy(&dataidx, p + 2 + kl, 4);
			if (dataidx >= hdr->ndata || (ws->nindex == 0 && dataidx != 0) ||
				(ws->nindex > 0 && dataidx <= ws->index_pagenos[ws->nindex - 1]))
				walk_problem(w, blk, "SSTable index entry %u points to data page %u", ws->nindex, dataidx);
			ws->index_pagenos[ws->nindex] = dataidx;
			ws->index_keys[ws->nindex] = palloc(Max(kl, 1));
			memcpy(ws->index_keys[ws->nindex], p + 2, kl);
			ws->index_keylens[ws->nindex] = kl;
			ws->nindex++;
			off += 2 + kl + 4;
		}
	}
	if (ws->nindex != UINT32_MAX && ws->nindex != hdr->index_entries)
		walk_problem(w, desc->start, "SSTable index has %u entries, the header says %u",
					 ws->nindex, hdr->index_entries);
}

/* bloom filter pages, copied into ws->bloom (left NULL if one is unusable) */
static void
walk_bloom(WalkState *ws)
{
	const KvlsmSstDesc *desc = ws->desc;
	KvlsmSstHeader *hdr = ws->hdr;
	uint32		i;

	if (hdr->nbloom == 0)
		return;
	ws->bloom = palloc(hdr->bloom_nbits / 8 + 1);
	for (i = 0; i < hdr->nbloom && ws->bloom != NULL; i++)
	{
		BlockNumber blk = desc->start + 1 + hdr->ndata + hdr->nindex + i;
		uint32		len = Min(KVLSM_PAGE_CAPACITY,
							  hdr->bloom_nbits / 8 - i * KVLSM_PAGE_CAPACITY);

		if (!walk_read_page(ws->rel, ws->w, blk, KVLSM_PAGE_SST_BLOOM, desc->id, ws->nblocks,
							ws->pagebuf))
		{
			pfree(ws->bloom);
			ws->bloom = NULL;
			break;
		}
		memcpy(ws->bloom + (Size) i * KVLSM_PAGE_CAPACITY,
			   ws->pagebuf + SizeOfPageHeaderData, len);
	}
}

/*
 * One decoded entry (the iterator's current one) of the data block whose
 * first page is 'blk', checked against the index, the header, the entry
 * before it and the filter, then handed to the walker.
 */
static void
walk_check_entry(WalkState *ws, BlockNumber blk,
				 const KvlsmDataBlockIter *it)
{
	KvlsmSstHeader *hdr = ws->hdr;
	KvlsmSstWalker *w = ws->w;
	uint32		j = it->entryno;
	const char *curkey = it->key;
	int			keylen = it->keylen;
	uint64		seq = it->eh.seq;

	if (j == 0 && ws->nindex != UINT32_MAX && ws->nblock - 1 < ws->nindex &&
		(ws->index_keylens[ws->nblock - 1] != keylen ||
		 memcmp(ws->index_keys[ws->nblock - 1], curkey, keylen) != 0))
		walk_problem(w, blk, "first key of data block %u differs from its index entry",
					 ws->nblock - 1);
	if (ws->first_entry && ws->minkey != NULL &&
		(hdr->minkeylen != keylen || memcmp(ws->minkey, curkey, keylen) != 0))
		walk_problem(w, blk, "first key differs from the smallest key in the SSTable header");
	ws->first_entry = false;
	if (ws->desc->nentries > 0 && (seq < hdr->minseq || seq > hdr->maxseq))
		walk_problem(w, blk, "entry %u has sequence number %llu outside the SSTable's range %llu-%llu",
					 j, (unsigned long long) seq,
					 (unsigned long long) hdr->minseq, (unsigned long long) hdr->maxseq);
	if (w->ops != NULL && ws->prevkeylen >= 0)
	{
		int			c = w->ops->cmp(ws->prevkey, ws->prevkeylen, curkey, keylen, w->ops->arg);

		if (c > 0 || (c == 0 && ws->prevseq <= seq))
			walk_problem(w, blk, "entry %u is out of order (key %s the previous key, sequence %llu after %llu)",
						 j, c > 0 ? "sorts before" : "equals",
						 (unsigned long long) seq, (unsigned long long) ws->prevseq);
	}
	if (w->check_bloom && ws->bloom != NULL)
	{
		uint64		h;

		if (kvlsm_bloom_key_hash(w->ops, curkey, keylen, &h) &&
			!kvlsm_bloom_test(ws->bloom, hdr->bloom_nbits, h, hdr->bloom_k))
			walk_problem(w, blk, "bloom filter does not contain the key of entry %u", j);
	}
	if (w->entry)
		w->entry(w->arg, blk, curkey, keylen, seq, it->eh.flags,
				 it->val, it->eh.vallen);
	memcpy(ws->prevkey, curkey, keylen);
	ws->prevkeylen = keylen;
	ws->prevseq = seq;
}

/* every entry of a decoded data block, until one cannot be decoded */
static void
walk_block_entries(WalkState *ws, const KvlsmDataBlock *block)
{
	KvlsmDataBlockIter it;
	KvlsmEntryStatus status;

	kvlsm_data_block_iter_init(&it, block, ws->curkey, true);
	while ((status = kvlsm_data_block_next(&it)) != KVLSM_ENTRY_END)
	{
		if (status == KVLSM_ENTRY_PAST_END)
		{
			walk_problem(ws->w, block->blkno, "entry %u runs past the page data", it.entryno);
			ws->entries_complete = false;
			break;
		}
		if (status == KVLSM_ENTRY_BAD_LENGTHS)
		{
			walk_problem(ws->w, block->blkno, "entry %u has bad lengths (shared %u, unshared %u, value %u)",
						 it.entryno, it.eh.shared, it.eh.unshared, it.eh.vallen);
			ws->entries_complete = false;
			break;
		}
		ws->nentries++;
		walk_check_entry(ws, block->blkno, &it);
	}
}

/* what the decoder found wrong in a data block, as a problem */
static void
report_block_problem(WalkState *ws, const KvlsmDataBlock *block,
					 KvlsmDataBlockStatus status)
{
	KvlsmSstWalker *w = ws->w;
	BlockNumber blk = block->blkno;

	switch (status)
	{
		case KVLSM_DATA_BLOCK_OK:
		case KVLSM_DATA_BLOCK_UNREADABLE:
			/* the page read reported it */
			break;
		case KVLSM_DATA_BLOCK_MID_SPAN:
			walk_problem(w, blk, "data page is piece %u of a span whose first page was not seen",
						 block->link);
			break;
		case KVLSM_DATA_BLOCK_BAD_SPAN:
			walk_problem(w, blk, "data block spans %u pages", block->link);
			break;
		case KVLSM_DATA_BLOCK_BAD_PIECE:
			walk_problem(w, block->bad_blkno, "data page is not piece %u of the span at block %u",
						 block->bad_piece, blk);
			break;
		case KVLSM_DATA_BLOCK_TOO_LONG:

			/*
			 * Longer than any payload: a compressed block cannot decompress
			 * to it, a raw one cannot hold it.
			 */
			if (block->flags & KVLSM_PAGE_FLAG_COMPRESSED)
				walk_problem(w, blk, "%s data block does not decompress to its %u bytes",
							 (block->flags & KVLSM_PAGE_FLAG_ZSTD) ? "zstd" : "lz4", block->datalen);
			else
				walk_problem(w, blk, "data length %u exceeds the block contents", block->datalen);
			break;
		case KVLSM_DATA_BLOCK_BAD_COMPRESSED:
			walk_problem(w, blk, "%s data block does not decompress to its %u bytes",
						 (block->flags & KVLSM_PAGE_FLAG_ZSTD) ? "zstd" : "lz4", block->datalen);
			break;
		case KVLSM_DATA_BLOCK_SHORT:
			walk_problem(w, blk, "data length %u exceeds the block contents", block->datalen);
			break;
	}
}

/*
 * A data block whose first page cannot be used: its entries are unknown.
 * The index says where the next block starts, if it knows this one.
 * Returns the data page to go on from.
 */
static uint32
skip_unreadable_block(WalkState *ws, uint32 i)
{
	ws->entries_complete = false;
	ws->prevkeylen = -1;
	if (ws->nindex != UINT32_MAX && ws->nblock < ws->nindex &&
		ws->index_pagenos[ws->nblock] == i)
	{
		ws->nblock++;
		if (ws->nblock < ws->nindex)
			return ws->index_pagenos[ws->nblock];
		return ws->hdr->ndata;	/* it was the last block */
	}
	return i + 1;
}

/*
 * The data block starting at data page 'i' (one page, or a span of pages):
 * decoded and its entries walked.  Returns the data page to go on from.
 */
static uint32
walk_data_block(WalkState *ws, uint32 i)
{
	KvlsmSstWalker *w = ws->w;
	BlockNumber blk = ws->desc->start + 1 + i;
	KvlsmDataBlock block;
	KvlsmDataBlockStatus status;

	CHECK_FOR_INTERRUPTS();
	if (!walk_read_page(ws->rel, w, blk, KVLSM_PAGE_SST_DATA, ws->desc->id, ws->nblocks,
						ws->pagebuf))
		return skip_unreadable_block(ws, i);

	status = kvlsm_data_block_start(&block, blk, ws->pagebuf);
	if (status == KVLSM_DATA_BLOCK_OK)
	{
		if (ws->nindex != UINT32_MAX &&
			(ws->nblock >= ws->nindex || ws->index_pagenos[ws->nblock] != i))
			walk_problem(w, blk, "data block %u starts at data page %u, its index entry says %u",
						 ws->nblock, i,
						 ws->nblock < ws->nindex ? ws->index_pagenos[ws->nblock] : UINT32_MAX);
		ws->nblock++;
		status = kvlsm_data_block_read(&block, i, ws->hdr->ndata, ws->pagebuf,
									   walk_data_page, ws, ws->payload,
									   ws->spanbuf);
	}
	if (status == KVLSM_DATA_BLOCK_OK)
		walk_block_entries(ws, &block);
	else
	{
		report_block_problem(ws, &block, status);
		ws->entries_complete = false;
		ws->prevkeylen = -1;
	}
	return i + block.npages;
}

/* counts and the last key, once every data block was decoded whole */
static void
walk_totals(WalkState *ws)
{
	const KvlsmSstDesc *desc = ws->desc;
	KvlsmSstHeader *hdr = ws->hdr;
	KvlsmSstWalker *w = ws->w;

	if (ws->nindex != UINT32_MAX && ws->nblock != ws->nindex)
		walk_problem(w, desc->start, "SSTable has %u data blocks, its index %u entries",
					 ws->nblock, ws->nindex);
	if (ws->nentries != hdr->nentries)
		walk_problem(w, desc->start, "SSTable holds %llu entries, the header says %u",
					 (unsigned long long) ws->nentries, hdr->nentries);
	if (ws->maxkey != NULL && ws->prevkeylen >= 0 &&
		(hdr->maxkeylen != ws->prevkeylen ||
		 memcmp(ws->maxkey, ws->prevkey, ws->prevkeylen) != 0))
		walk_problem(w, desc->start + hdr->ndata,
					 "last key differs from the largest key in the SSTable header");
}

/*
 * Walk every page of the SSTable 'desc' names.  Fills *hdr (zeroed when the
 * header page is unusable) and returns false when the header page cannot
 * be used, in which case no entries were seen.
 */
bool
kvlsm_sst_walk(Relation rel, const KvlsmSstDesc *desc, KvlsmSstHeader *hdr,
			   KvlsmSstWalker *w)
{
	PGAlignedBlock pagebuf;
	WalkState	ws;
	uint32		i;

	memset(&ws, 0, sizeof(ws));
	ws.rel = rel;
	ws.desc = desc;
	ws.hdr = hdr;
	ws.w = w;
	ws.nblocks = RelationGetNumberOfBlocks(rel);
	ws.pagebuf = pagebuf.data;
	ws.prevkeylen = -1;
	ws.entries_complete = true;
	ws.first_entry = true;

	memset(hdr, 0, sizeof(*hdr));
	w->hdr_minkey = w->hdr_maxkey = NULL;
	if (!walk_header(&ws))
		return false;
	walk_index(&ws);
	walk_bloom(&ws);

	/* data blocks: one page each, or a span of pages */
	ws.payload = palloc(KVLSM_MAX_PAYLOAD);
	ws.spanbuf = palloc(KVLSM_MAX_PAYLOAD);
	ws.prevkey = palloc(KVLSM_MAX_KEY_SIZE);
	ws.curkey = palloc(KVLSM_MAX_KEY_SIZE);
	i = 0;
	while (i < hdr->ndata)
		i = walk_data_block(&ws, i);
	if (ws.entries_complete)
		walk_totals(&ws);
	pfree(ws.payload);
	pfree(ws.spanbuf);
	pfree(ws.prevkey);
	pfree(ws.curkey);
	return true;
}
