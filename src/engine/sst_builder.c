/*-------------------------------------------------------------------------
 *
 * sst_builder.c
 *	  Building an SSTable in memory: a builder takes records in (key asc,
 *	  seq desc) order, keeps the key range, sequence range and the bloom
 *	  filter's hashes, and at finish lays the whole extent out as page
 *	  images: header page, data pages, index pages, bloom filter pages.
 *	  See sstable.h for the extent layout.
 *
 * Entries are packed into data blocks by sst_block_builder.c; the laid-out
 * pages are written by sst_writer.c (which also streams a compaction
 * output's data pages as they are made).  Nothing here takes a lock or
 * writes WAL.  Callers: flushes and compactions (the engine's flush and
 * compaction code).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"


#include "utils/memutils.h"

#include "kvlsm/compress.h"
#include "kvlsm/sst_builder.h"

KvlsmSstBuilder *
kvlsm_sst_builder_begin(Relation rel, uint64 id, int level, int compression,
						int bloom_bits_per_key, const KvlsmKeyOps *ops)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "kvlsm sstable builder",
											  ALLOCSET_DEFAULT_SIZES);
	KvlsmSstBuilder *b = MemoryContextAllocZero(cxt, sizeof(KvlsmSstBuilder));

	b->rel = rel;
	b->id = id;
	b->level = level;
	b->compression = compression;
	b->bloom_bits_per_key = bloom_bits_per_key;
	b->ops = ops;
	b->cxt = cxt;
	/*
	 * Compressed, a page takes as many entries as compress into it, up to
	 * four pages' worth, so compression saves pages rather than page space.
	 */
	b->payload_max = (KVLSM_SPEC_METHOD(compression) != KVLSM_COMPRESSION_NONE) ?
		KVLSM_MAX_PAYLOAD : KVLSM_PAGE_CAPACITY;
	/* a record larger than a page takes a block of its own, up to this */
	b->payload = MemoryContextAlloc(cxt, KVLSM_MAX_PAYLOAD);
	b->lastkey = MemoryContextAlloc(cxt, KVLSM_MAX_KEY_SIZE);
	b->fit_lastkey = MemoryContextAlloc(cxt, KVLSM_MAX_KEY_SIZE);
	b->next_trial = KVLSM_PAGE_CAPACITY;
	if (KVLSM_SPEC_METHOD(compression) != KVLSM_COMPRESSION_NONE)
		b->trialbuf = MemoryContextAlloc(cxt, kvlsm_compress_bound(compression,
																   KVLSM_MAX_PAYLOAD));
	b->maxpages = 64;
	b->pages = MemoryContextAlloc(cxt, sizeof(char *) * b->maxpages);
	b->maxhashes = 1024;
	b->hashes = MemoryContextAlloc(cxt, sizeof(uint64) * b->maxhashes);
	b->minseq = PG_UINT64_MAX;
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&b->index);
		MemoryContextSwitchTo(old);
	}
	return b;
}

/*
 * bloom: one hash per distinct key (per distinct first column of an
 * index, whose entries of one value are adjacent)
 */
static void
note_bloom_hash(KvlsmSstBuilder *b, const char *key, int keylen)
{
	uint64		h;

	if (kvlsm_bloom_key_hash(b->ops, key, keylen, &h) &&
		(b->nhashes == 0 || b->hashes[b->nhashes - 1] != h))
	{
		if (b->nhashes == b->maxhashes)
		{
			b->maxhashes *= 2;
			b->hashes = repalloc_huge(b->hashes, sizeof(uint64) * b->maxhashes);
		}
		b->hashes[b->nhashes++] = h;
	}
}

/* the table's key and sequence ranges, entry count and logical size */
static void
note_entry(KvlsmSstBuilder *b, const char *key, int keylen, uint64 seq,
		   int vallen)
{
	if (b->nentries == 0)
	{
		b->minkey = MemoryContextAlloc(b->cxt, keylen);
		memcpy(b->minkey, key, keylen);
		b->minkeylen = keylen;
	}
	if (b->maxkey == NULL || b->maxkeylen < keylen)
		b->maxkey = b->maxkey ? repalloc(b->maxkey, Max(keylen, 1)) :
			MemoryContextAlloc(b->cxt, Max(keylen, 1));
	memcpy(b->maxkey, key, keylen);
	b->maxkeylen = keylen;
	b->minseq = Min(b->minseq, seq);
	b->maxseq = Max(b->maxseq, seq);
	b->nbytes += sizeof(KvlsmRecordHeader) + keylen + vallen;
	b->nentries++;
}

void
kvlsm_sst_builder_add(KvlsmSstBuilder *b, const char *key, int keylen,
					  uint64 seq, uint16 flags, const char *val, int vallen)
{
	if (keylen > KVLSM_MAX_KEY_SIZE)
		elog(ERROR, "kvlsm key of %d bytes exceeds the maximum", keylen);
	kvlsm_sst_place_entry(b, key, keylen, seq, flags, val, vallen);
	if (b->bloom_bits_per_key > 0)
		note_bloom_hash(b, key, keylen);
	note_entry(b, key, keylen, seq, vallen);
}

uint32
kvlsm_sst_builder_count(KvlsmSstBuilder *b)
{
	return b->nentries;
}

static char *
new_image(KvlsmSstBuilder *b, uint16 type)
{
	char	   *img = MemoryContextAlloc(b->cxt, BLCKSZ);

	kvlsm_page_init((Page) img, type, b->id);
	return img;
}

/*
 * The bloom filter of the hashes collected, as a bit array of *nbits bits
 * probed *k times per key, and the pages it takes.
 */
static char *
build_filter(KvlsmSstBuilder *b, uint32 *nbits, int *k, uint32 *npages)
{
	char	   *bits;
	uint32		i;

	kvlsm_bloom_filter_shape(b->nhashes, b->bloom_bits_per_key, nbits, k);
	bits = MemoryContextAllocZero(b->cxt, *nbits / 8);
	for (i = 0; i < b->nhashes; i++)
		kvlsm_bloom_set(bits, *nbits, b->hashes[i], *k);
	*npages = (*nbits / 8 + KVLSM_PAGE_CAPACITY - 1) / KVLSM_PAGE_CAPACITY;
	return bits;
}

/* index pages: entries never straddle a page */
static uint32
count_index_pages(KvlsmSstBuilder *b)
{
	uint32		nindex_pages = 0;
	uint32		off = 0;
	uint32		used = 0;

	while (off < (uint32) b->index.len)
	{
		uint16		kl;

		memcpy(&kl, b->index.data + off, 2);
		if (used == 0)
			nindex_pages++;
		if (used + 2 + kl + 4 > KVLSM_PAGE_CAPACITY)
		{
			nindex_pages++;
			used = 0;
		}
		used += 2 + kl + 4;
		off += 2 + kl + 4;
	}
	return nindex_pages;
}

/* the header page of a table of 'total' pages */
static char *
make_header_page(KvlsmSstBuilder *b, uint32 total, uint32 nindex_pages,
				 uint32 nbloom_pages, uint32 nbits, int k)
{
	char	   *img = new_image(b, KVLSM_PAGE_SST_HEADER);
	KvlsmSstHeader *hdr = (KvlsmSstHeader *) PageGetContents((Page) img);
	Size		hdrlen;

	memset(hdr, 0, sizeof(*hdr));
	hdr->id = b->id;
	hdr->minseq = b->nentries ? b->minseq : 0;
	hdr->maxseq = b->maxseq;
	hdr->level = b->level;
	hdr->npages = total;
	hdr->nentries = b->nentries;
	hdr->ndata = b->npages;
	hdr->nindex = nindex_pages;
	hdr->nbloom = nbloom_pages;
	hdr->bloom_nbits = nbits;
	hdr->bloom_k = k;
	hdr->index_entries = b->index_entries;
	/* key range in the header only when it fits comfortably */
	if (b->minkeylen + b->maxkeylen <= KVLSM_PAGE_CAPACITY - MAXALIGN(sizeof(*hdr)) - 64)
	{
		hdr->minkeylen = b->minkeylen;
		hdr->maxkeylen = b->maxkeylen;
		memcpy((char *) hdr + sizeof(*hdr), b->minkey, b->minkeylen);
		memcpy((char *) hdr + sizeof(*hdr) + b->minkeylen, b->maxkey, b->maxkeylen);
	}
	hdrlen = sizeof(*hdr) + hdr->minkeylen + hdr->maxkeylen;
	((PageHeader) img)->pd_lower = ((char *) hdr - img) + hdrlen;
	return img;
}

/*
 * index pages: (uint16 keylen, key, uint32 data page number), one per
 * data block, as b->index holds them already; placed in the extent from
 * position 'pos' on.  Returns the position after them.
 */
static uint32
add_index_pages(KvlsmSstBuilder *b, uint32 pos)
{
	uint32		off = 0;
	char	   *cur = NULL;
	uint32		used = 0;

	while (off < (uint32) b->index.len)
	{
		uint16		kl;

		memcpy(&kl, b->index.data + off, 2);
		if (cur == NULL || used + 2 + kl + 4 > KVLSM_PAGE_CAPACITY)
		{
			cur = new_image(b, KVLSM_PAGE_SST_INDEX);
			b->extent[pos++] = cur;
			used = 0;
		}
		memcpy(cur + SizeOfPageHeaderData + used, b->index.data + off, 2 + kl + 4);
		used += 2 + kl + 4;
		((PageHeader) cur)->pd_lower = SizeOfPageHeaderData + used;
		KvlsmPageGetOpaque((Page) cur)->nitems++;
		off += 2 + kl + 4;
	}
	return pos;
}

/* the filter's bits cut into pages, placed from 'pos' on */
static uint32
add_bloom_pages(KvlsmSstBuilder *b, uint32 pos, const char *bits,
				uint32 nbits, uint32 nbloom_pages)
{
	uint32		i;

	for (i = 0; i < nbloom_pages; i++)
	{
		uint32		len = Min(KVLSM_PAGE_CAPACITY, nbits / 8 - i * KVLSM_PAGE_CAPACITY);
		char	   *img = new_image(b, KVLSM_PAGE_SST_BLOOM);

		memcpy(img + SizeOfPageHeaderData, bits + (Size) i * KVLSM_PAGE_CAPACITY, len);
		((PageHeader) img)->pd_lower = SizeOfPageHeaderData + len;
		b->extent[pos++] = img;
	}
	return pos;
}

/*
 * Lay out the whole extent in memory: header, data, index and bloom pages.
 * Returns the number of pages the extent needs.
 */
uint32
kvlsm_sst_builder_finish(KvlsmSstBuilder *b)
{
	uint32		nindex_pages;
	uint32		nbloom_pages = 0;
	uint32		nbits = 0;
	int			k = 0;
	char	   *bits = NULL;
	uint32		total;
	uint32		i;
	uint32		pos;

	/*
	 * A page cut to fit lz4 carries its last entries into a new page, which
	 * may need finishing (and cutting) in turn.
	 */
	while (b->page_items > 0)
		kvlsm_sst_finish_data_page(b);

	/* bloom filter */
	if (b->bloom_bits_per_key > 0 && b->nhashes > 0)
		bits = build_filter(b, &nbits, &k, &nbloom_pages);

	nindex_pages = count_index_pages(b);

	total = 1 + b->npages + nindex_pages + nbloom_pages;
	b->total_pages = total;
	if (b->stream && total > b->stream_pages)
		elog(ERROR, "kvlsm: SSTable %llu needs %u pages, %u were reserved",
			 (unsigned long long) b->id, total, b->stream_pages);
	/* a streaming builder lays out only what follows the written data */
	b->extent_pages = b->stream ? total - b->written : total;
	b->extent = MemoryContextAlloc(b->cxt, sizeof(char *) * b->extent_pages);

	b->extent[0] = make_header_page(b, total, nindex_pages, nbloom_pages,
									nbits, k);
	pos = 1;
	for (i = b->stream ? b->written : 0; i < b->npages; i++)
		b->extent[pos++] = b->pages[i];
	pos = add_index_pages(b, pos);
	pos = add_bloom_pages(b, pos, bits, nbits, nbloom_pages);
	Assert(pos == b->extent_pages);

	for (i = 0; i < b->extent_pages; i++)
		kvlsm_page_set_crc((Page) b->extent[i]);
	return total;
}
