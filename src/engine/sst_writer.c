/*-------------------------------------------------------------------------
 *
 * sst_writer.c
 *	  Writing an SSTable's page images to its extent: the laid-out extent
 *	  of a flush in one go, or a compaction output's data pages streamed
 *	  into a reserved extent as they are made, with the header page last.
 *	  Also how many pages such a reservation needs, and what a compaction
 *	  output pays the rate limiter.
 *
 * WAL: every page is written as a full image, at most
 * MAX_GENERIC_XLOG_PAGES pages per generic WAL record; the header page,
 * which makes the table whole, is written last.  Nothing refers to the
 * table before its manifest install (a streaming output is listed as a
 * pending reservation), so pages written in several records are never
 * seen in part.  Locks: one record's buffers are locked exclusively in
 * ascending block order and released at its end; extending the file needs
 * the caller to hold the relation extension lock.
 *
 * Callers: flushes and compactions through the functions in sstable.h;
 * the block builder (sst_block_builder.c) streams full batches of data
 * pages through kvlsm_sst_stream_out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "kvlsm/crashpoint.h"
#include "kvlsm/scheduler.h"
#include "kvlsm/sst_builder.h"

/* a compaction's output: its writes wait for kvlsm.compaction_rate_limit */
void
kvlsm_sst_builder_set_compaction(KvlsmSstBuilder *b)
{
	b->compaction = true;
	/* like COPY: a large output must not push the working set out of the cache */
	b->strategy = GetAccessStrategy(BAS_BULKWRITE);
}

/*
 * Pay the rate limiter for every page of a laid-out compaction output that
 * is not paid yet.  Called before the flush lock is taken to place the
 * table: waiting for tokens while holding it would hold up flushes.
 */
void
kvlsm_sst_builder_pay(KvlsmSstBuilder *b)
{
	/* a streaming builder was charged for every data page, written or not */
	uint32		pages = b->stream ? b->total_pages - b->written : b->extent_pages;

	if (b->compaction && pages > b->charged)
		kvlsm_charge_write((uint64) (pages - b->charged) * BLCKSZ, false);
	b->charged = Max(b->charged, pages);
}

/*
 * Write page images to blocks at .. at+count-1, four pages per generic WAL
 * record, each a full image, waiting for the rate limiter for pages not
 * charged yet (b->charged counts pages charged as they were made).  With
 * 'extend' the blocks are new at the end of the file (the caller holds the
 * relation extension lock).
 */
static void
write_images(KvlsmSstBuilder *b, BlockNumber at, char **images, uint32 count,
			 bool extend)
{
	uint32		i = 0;

	while (i < count)
	{
		GenericXLogState *state;
		Buffer		bufs[MAX_GENERIC_XLOG_PAGES];
		int			n = Min(MAX_GENERIC_XLOG_PAGES, count - i);
		int			j;

		CHECK_FOR_INTERRUPTS();
		if (b->charged >= (uint32) n)
			b->charged -= n;
		else
		{
			kvlsm_charge_write((uint64) (n - b->charged) * BLCKSZ, !b->compaction);
			b->charged = 0;
		}
		for (j = 0; j < n; j++)
		{
			if (extend)
			{
				bufs[j] = ReadBufferExtended(b->rel, MAIN_FORKNUM, P_NEW,
											 RBM_NORMAL, b->strategy);
				if (BufferGetBlockNumber(bufs[j]) != at + i + j)
					elog(ERROR, "kvlsm: extended block %u, expected %u",
						 BufferGetBlockNumber(bufs[j]), at + i + j);
			}
			else
				bufs[j] = ReadBufferExtended(b->rel, MAIN_FORKNUM, at + i + j,
											 RBM_NORMAL, b->strategy);
			LockBuffer(bufs[j], BUFFER_LOCK_EXCLUSIVE);
		}
		state = GenericXLogStart(b->rel);
		for (j = 0; j < n; j++)
		{
			Page		page = GenericXLogRegisterBuffer(state, bufs[j],
														 GENERIC_XLOG_FULL_IMAGE);

			memcpy(page, images[i + j], BLCKSZ);
		}
		GenericXLogFinish(state);
		for (j = 0; j < n; j++)
			UnlockReleaseBuffer(bufs[j]);
		i += n;
	}
}

/*
 * Streaming: write the data pages made since the last call to their place
 * in the reserved extent and free their images.  Nothing refers to the
 * table yet (it is listed as a pending reservation), so pages written in
 * several records are never seen in part.
 */
void
kvlsm_sst_stream_out(KvlsmSstBuilder *b)
{
	uint32		n = b->npages - b->written;
	uint32		i;

	if (n == 0)
		return;
	/* the header page comes first, then the data pages */
	if (1 + b->npages > b->stream_pages)
		elog(ERROR, "kvlsm: SSTable %llu outgrew its reserved %u pages",
			 (unsigned long long) b->id, b->stream_pages);
	for (i = b->written; i < b->npages; i++)
		kvlsm_page_set_crc((Page) b->pages[i]);
	write_images(b, b->stream_start + 1 + b->written, &b->pages[b->written], n, false);
	for (i = b->written; i < b->npages; i++)
	{
		pfree(b->pages[i]);
		b->pages[i] = NULL;
	}
	b->written = b->npages;
	kvlsm_crash_point(KVLSM_CP_COMPACTION_STREAM);
}

/*
 * Make 'b' write its data pages into [start, start + npages) as it goes
 * (compaction outputs: memory stays bounded by a batch of pages, the index
 * and the filter's hashes, whatever the output's size).  The caller asks
 * kvlsm_sst_builder_has_room before adding each key's records.
 */
void
kvlsm_sst_builder_stream_to(KvlsmSstBuilder *b, BlockNumber start, uint32 npages)
{
	Assert(b->nentries == 0);
	b->stream = true;
	b->stream_start = start;
	b->stream_pages = npages;
}

/*
 * Pages a table needs at most, once records of 'bytes' more bytes in 'n'
 * entries are added to what the builder holds ('b' NULL: an empty one),
 * with the index and the filter.  Loose on purpose: a data page is at
 * least half full unless an entry larger than half a page comes next, so
 * twice the payload's pages bound it, plus a page per entry for spans.
 */
static uint32
pages_bound(KvlsmSstBuilder *b, uint32 n, Size bytes, int bloom_bits_per_key)
{
	Size		payload = (b ? b->payload_len : 0) + bytes;
	/* (+4: entries an lz4 cut carries over are re-encoded, maybe longer) */
	uint32		more_data = 2 * (payload / KVLSM_PAGE_CAPACITY) + 4 + n;
	Size		index_bytes = (b ? b->index.len : 0) +
		(Size) more_data * (6 + KVLSM_MAX_KEY_SIZE);
	uint32		index_pages = index_bytes / (KVLSM_PAGE_CAPACITY - 6 - KVLSM_MAX_KEY_SIZE) + 1;
	uint64		nbits = (uint64) ((b ? b->nhashes : 0) + n) * Max(bloom_bits_per_key, 0);
	uint32		bloom_pages = (Max(nbits, 64) / 8 + 8) / KVLSM_PAGE_CAPACITY + 1;

	return 1 + (b ? b->npages : 0) + more_data + index_pages + bloom_pages;
}

/* can 'n' entries of 'bytes' bytes (headers, keys, values) still go in? */
bool
kvlsm_sst_builder_has_room(KvlsmSstBuilder *b, uint32 n, Size bytes)
{
	if (!b->stream)
		return true;
	return pages_bound(b, n, bytes, b->bloom_bits_per_key) <= b->stream_pages;
}

/* pages an empty table must have room for to take such entries */
uint32
kvlsm_sst_min_reserve(uint32 n, Size bytes, int bloom_bits_per_key)
{
	return pages_bound(NULL, n, bytes, bloom_bits_per_key);
}

/*
 * Write the laid-out extent at blocks start .. start+n-1, four pages per
 * generic WAL record, each a full image.  With 'extend' the blocks are new
 * at the end of the file (the caller holds the relation extension lock).
 * A streaming builder writes its header at 'start' (its reservation's
 * first page) and the data pages it still holds, the index and the filter
 * after the data already written.
 */
void
kvlsm_sst_builder_write(KvlsmSstBuilder *b, BlockNumber start, bool extend,
						KvlsmSstDesc *desc)
{
	if (b->stream)
	{
		Assert(start == b->stream_start && !extend);
		write_images(b, start + 1 + b->written, b->extent + 1,
					 b->extent_pages - 1, false);
		/* the header last, once the table is whole */
		write_images(b, start, b->extent, 1, false);
	}
	else
		write_images(b, start, b->extent, b->extent_pages, extend);

	memset(desc, 0, sizeof(*desc));
	desc->id = b->id;
	desc->minseq = b->nentries ? b->minseq : 0;
	desc->maxseq = b->maxseq;
	desc->nbytes = b->nbytes;
	desc->start = start;
	desc->npages = b->stream ? b->total_pages : b->extent_pages;
	desc->nentries = b->nentries;
	desc->level = b->level;
	if (b->minkeylen <= KVLSM_DESC_KEY_MAX && b->maxkeylen <= KVLSM_DESC_KEY_MAX &&
		b->nentries > 0)
	{
		desc->minkeylen = b->minkeylen;
		desc->maxkeylen = b->maxkeylen;
		memcpy(desc->minkey, b->minkey, b->minkeylen);
		memcpy(desc->maxkey, b->maxkey, b->maxkeylen);
	}
	else
	{
		desc->minkeylen = 0xFF;
		desc->maxkeylen = 0xFF;
	}
	MemoryContextDelete(b->cxt);
}
