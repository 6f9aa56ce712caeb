/*-------------------------------------------------------------------------
 *
 * sstable.c
 *	  Build SSTables into page images and write them to an extent; read
 *	  them back through shared buffers.  See sstable.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <lz4.h>

#include "access/generic_xlog.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "kvlsm/crashpoint.h"
#include "kvlsm/sstable.h"
#include "kvlsm/scheduler.h"

/* on-page entry header; unaligned, always accessed with memcpy */
typedef struct EntryHeader
{
	uint16		shared;
	uint16		unshared;
	uint32		vallen;
	uint64		seq;
	uint16		flags;
} EntryHeader;

#define ENTRY_HEADER_SIZE	(2 + 2 + 4 + 8 + 2)

static inline void
decode_entry_header(const char *p, EntryHeader *eh)
{
	memcpy(&eh->shared, p, 2);
	memcpy(&eh->unshared, p + 2, 2);
	memcpy(&eh->vallen, p + 4, 4);
	memcpy(&eh->seq, p + 8, 8);
	memcpy(&eh->flags, p + 16, 2);
}

struct KvlsmSstBuilder
{
	Relation	rel;
	bool		compaction;		/* writes wait for the rate limiter */
	BufferAccessStrategy strategy;	/* compaction outputs: a bulk-write ring */
	uint32		charged;		/* pages already taken from the limiter */
	uint64		id;
	int			level;
	int			compression;
	int			bloom_bits_per_key;
	const KvlsmKeyOps *ops;		/* its bloom_hash, if any, hashes keys */
	MemoryContext cxt;

	/* current data page payload */
	char	   *payload;
	uint32		payload_len;
	uint32		page_items;
	char	   *lastkey;
	int			lastkeylen;
	uint32		payload_max;	/* uncompressed bytes a page may take */
	/* lz4: the longest prefix of the payload known to fit compressed */
	uint32		fit_len;
	uint32		fit_items;
	char	   *fit_lastkey;
	int			fit_lastkeylen;
	uint32		next_trial;
	char	   *trialbuf;
	int			page_trials;	/* trial compressions of the current page */
	uint32		trial_len;		/* trialbuf holds payload [0, trial_len)... */
	int			trial_clen;		/* ...compressed to this many bytes */

	/* finished data pages */
	char	  **pages;
	uint32		npages;
	uint32		maxpages;

	/* index: first key of every data page */
	StringInfoData index;		/* entries: uint16 keylen, key */
	uint32		index_entries;

	uint64	   *hashes;
	uint32		nhashes;
	uint32		maxhashes;

	char	   *minkey;
	int			minkeylen;
	char	   *maxkey;
	int			maxkeylen;
	uint64		minseq;
	uint64		maxseq;
	uint64		nbytes;
	uint32		nentries;

	/* laid-out extent */
	char	  **extent;
	uint32		extent_pages;

	/*
	 * Streaming (compaction outputs): data pages go to the reserved extent
	 * [stream_start, stream_start + stream_pages) as they are made, from
	 * its second page on; pages[] keeps only those not written yet, from
	 * 'written' on.  The header, index and filter pages follow at the end.
	 */
	bool		stream;
	BlockNumber stream_start;
	uint32		stream_pages;
	uint32		written;
	uint32		total_pages;	/* of the finished table */
};

/* data pages collected before a streaming builder writes them: a record's worth */
#define STREAM_BATCH MAX_GENERIC_XLOG_PAGES

static void write_images(KvlsmSstBuilder *b, BlockNumber at, char **images,
						 uint32 n, bool extend);
static void stream_out(KvlsmSstBuilder *b);

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
	 * With lz4 a page takes as many entries as compress into it, up to four
	 * pages' worth, so compression saves pages rather than page space.
	 */
	b->payload_max = (compression == KVLSM_COMPRESSION_LZ4) ?
		KVLSM_MAX_PAYLOAD : KVLSM_PAGE_CAPACITY;
	/* a record larger than a page takes a block of its own, up to this */
	b->payload = MemoryContextAlloc(cxt, KVLSM_MAX_PAYLOAD);
	b->lastkey = MemoryContextAlloc(cxt, KVLSM_MAX_KEY_SIZE);
	b->fit_lastkey = MemoryContextAlloc(cxt, KVLSM_MAX_KEY_SIZE);
	b->next_trial = KVLSM_PAGE_CAPACITY;
	if (compression == KVLSM_COMPRESSION_LZ4)
		b->trialbuf = MemoryContextAlloc(cxt, LZ4_compressBound(KVLSM_MAX_PAYLOAD));
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

uint64
kvlsm_key_hash(const char *key, int keylen)
{
	return hash_bytes_extended((const unsigned char *) key, keylen, 0x6b766c73);
}

/* the hash a key enters bloom filters with; false: it enters none */
static bool
bloom_key_hash(const KvlsmKeyOps *ops, const char *key, int keylen, uint64 *h)
{
	if (ops != NULL && ops->bloom_hash != NULL)
		return ops->bloom_hash(key, keylen, ops->arg, h);
	*h = kvlsm_key_hash(key, keylen);
	return true;
}

/* compressed size of the first 'len' payload bytes (or len when smaller) */
static uint32
stored_size(KvlsmSstBuilder *b, uint32 len)
{
	int			clen;

	if (b->compression != KVLSM_COMPRESSION_LZ4)
		return len;
	clen = LZ4_compress_default(b->payload, b->trialbuf, len,
								LZ4_compressBound(b->payload_max));
	b->trial_len = len;
	b->trial_clen = clen;
	if (clen <= 0 || (uint32) clen >= len)
		return len;
	return clen;
}

/*
 * Emit payload bytes [0, len) holding 'items' entries as a data block: one
 * page, or a span of pages when even the stored (maybe compressed) form is
 * larger than a page, which only a record larger than a page causes.
 */
static void
emit_data_page(KvlsmSstBuilder *b, uint32 len, uint32 items)
{
	const char *stored = b->payload;
	uint32		storedlen = len;
	bool		lz4 = false;
	uint32		npieces;
	uint32		i;

	if (b->compression == KVLSM_COMPRESSION_LZ4)
	{
		int			clen;

		/* the last trial compressed exactly this payload: reuse it */
		if (b->trial_len == len && b->trial_clen > 0)
			clen = b->trial_clen;
		else
			clen = LZ4_compress_default(b->payload, b->trialbuf, len,
										LZ4_compressBound(KVLSM_MAX_PAYLOAD));
		/* keep the compressed form only when it saves something */
		if (clen > 0 && (uint32) clen < len)
		{
			stored = b->trialbuf;
			storedlen = clen;
			lz4 = true;
		}
	}
	b->trial_len = 0;

	npieces = Max(1, (storedlen + KVLSM_PAGE_CAPACITY - 1) / KVLSM_PAGE_CAPACITY);
	if (len > KVLSM_MAX_PAYLOAD || npieces > KVLSM_MAX_PAYLOAD / KVLSM_PAGE_CAPACITY)
		elog(ERROR, "kvlsm: data block payload of %u bytes does not fit", len);

	for (i = 0; i < npieces; i++)
	{
		char	   *img = MemoryContextAlloc(b->cxt, BLCKSZ);
		Page		page = (Page) img;
		KvlsmPageOpaque opaque;
		uint32		piece = Min(KVLSM_PAGE_CAPACITY, storedlen - i * KVLSM_PAGE_CAPACITY);

		kvlsm_page_init(page, KVLSM_PAGE_SST_DATA, b->id);
		opaque = KvlsmPageGetOpaque(page);
		if (i == 0)
		{
			opaque->nitems = items;
			opaque->datalen = len;
			if (lz4)
				opaque->flags |= KVLSM_PAGE_FLAG_LZ4;
			if (npieces > 1)
			{
				opaque->flags |= KVLSM_PAGE_FLAG_SPAN;
				opaque->link = npieces;
			}
		}
		else
		{
			opaque->flags |= KVLSM_PAGE_FLAG_CONT;
			opaque->link = i;
		}
		memcpy((char *) page + SizeOfPageHeaderData,
			   stored + (Size) i * KVLSM_PAGE_CAPACITY, piece);
		((PageHeader) page)->pd_lower = SizeOfPageHeaderData + piece;

		if (b->npages == b->maxpages)
		{
			b->maxpages *= 2;
			b->pages = repalloc(b->pages, sizeof(char *) * b->maxpages);
		}
		b->pages[b->npages++] = img;
		if (b->stream && b->npages - b->written >= STREAM_BATCH)
			stream_out(b);

		/*
		 * A compaction pays for its data pages as it makes them, so that
		 * the rate limiter paces the merge itself, not only the final
		 * write.
		 */
		if (b->compaction)
		{
			kvlsm_charge_write(BLCKSZ, false);
			b->charged++;
		}
	}
}

static void place_entry(KvlsmSstBuilder *b, const char *key, int keylen,
						uint64 seq, uint16 flags, const char *val, int vallen);

/* the payload was emitted: the next entry starts a new data block */
static void
start_new_page(KvlsmSstBuilder *b)
{
	b->payload_len = 0;
	b->page_items = 0;
	b->fit_len = 0;
	b->fit_items = 0;
	b->next_trial = KVLSM_PAGE_CAPACITY;
	b->page_trials = 0;
}

/*
 * Append one entry to the payload (an index entry first when it starts a
 * data block: its first key and the page the block will start at).
 */
static void
append_entry(KvlsmSstBuilder *b, const char *key, int keylen, int shared,
			 uint64 seq, uint16 flags, const char *val, int vallen)
{
	EntryHeader eh;
	char	   *p;

	if (b->page_items == 0)
	{
		uint16		kl = keylen;
		uint32		pageno = b->npages;

		appendBinaryStringInfo(&b->index, (char *) &kl, sizeof(kl));
		appendBinaryStringInfo(&b->index, key, keylen);
		appendBinaryStringInfo(&b->index, (char *) &pageno, sizeof(pageno));
		b->index_entries++;
	}

	eh.shared = shared;
	eh.unshared = keylen - shared;
	eh.vallen = vallen;
	eh.seq = seq;
	eh.flags = flags;
	p = b->payload + b->payload_len;
	memcpy(p, &eh.shared, 2);
	memcpy(p + 2, &eh.unshared, 2);
	memcpy(p + 4, &eh.vallen, 4);
	memcpy(p + 8, &eh.seq, 8);
	memcpy(p + 16, &eh.flags, 2);
	p += ENTRY_HEADER_SIZE;
	memcpy(p, key + shared, keylen - shared);
	p += keylen - shared;
	if (vallen > 0)
		memcpy(p, val, vallen);
	b->payload_len += ENTRY_HEADER_SIZE + (keylen - shared) + vallen;
	b->page_items++;
	if (b->payload_len <= KVLSM_PAGE_CAPACITY)
	{
		/* an uncompressed page's worth always fits */
		b->fit_len = b->payload_len;
		b->fit_items = b->page_items;
		memcpy(b->fit_lastkey, key, keylen);
		b->fit_lastkeylen = keylen;
	}
	memcpy(b->lastkey, key, keylen);
	b->lastkeylen = keylen;
}

/*
 * Finish the current data page.  An lz4 payload that no longer compresses
 * into one page is cut at the last prefix known to fit, and the entries
 * after it start the next page (re-encoded, since their key prefixes refer
 * to the page they leave).
 */
static void
finish_data_page(KvlsmSstBuilder *b)
{
	uint32		len = b->payload_len;
	uint32		items = b->page_items;
	char	   *rest = NULL;
	uint32		restlen = 0;
	uint32		restitems = 0;

	if (items == 0)
		return;
	if (len > KVLSM_PAGE_CAPACITY && len != b->fit_len &&
		stored_size(b, len) > KVLSM_PAGE_CAPACITY)
	{
		Assert(b->fit_items > 0);
		restlen = len - b->fit_len;
		restitems = items - b->fit_items;
		rest = palloc(restlen);
		memcpy(rest, b->payload + b->fit_len, restlen);
		len = b->fit_len;
		items = b->fit_items;
	}
	emit_data_page(b, len, items);
	start_new_page(b);

	if (rest != NULL)
	{
		char		key[KVLSM_MAX_KEY_SIZE];
		uint32		off = 0;
		uint32		i;

		memcpy(key, b->fit_lastkey, b->fit_lastkeylen);
		for (i = 0; i < restitems; i++)
		{
			uint16		shared,
						unshared;
			uint32		vallen;
			uint64		seq;
			uint16		flags;
			char	   *p = rest + off;

			memcpy(&shared, p, 2);
			memcpy(&unshared, p + 2, 2);
			memcpy(&vallen, p + 4, 4);
			memcpy(&seq, p + 8, 8);
			memcpy(&flags, p + 16, 2);
			memcpy(key + shared, p + ENTRY_HEADER_SIZE, unshared);
			place_entry(b, key, shared + unshared, seq, flags,
						p + ENTRY_HEADER_SIZE + unshared, vallen);
			off += ENTRY_HEADER_SIZE + unshared + vallen;
		}
		pfree(rest);
	}
}

/* put one entry on the current data page, starting a new page as needed */
static void
place_entry(KvlsmSstBuilder *b, const char *key, int keylen, uint64 seq,
			uint16 flags, const char *val, int vallen)
{
	int			shared = 0;
	Size		need;

	/*
	 * An entry larger than a page shares no block: it gets one of its own,
	 * which spans pages unless lz4 makes it fit one.
	 */
	if ((Size) ENTRY_HEADER_SIZE + keylen + vallen > KVLSM_PAGE_CAPACITY)
	{
		if ((Size) ENTRY_HEADER_SIZE + keylen + vallen > KVLSM_MAX_PAYLOAD)
			elog(ERROR, "kvlsm record of %d bytes does not fit a data block",
				 keylen + vallen);
		while (b->page_items > 0)
			finish_data_page(b);
		append_entry(b, key, keylen, 0, seq, flags, val, vallen);
		emit_data_page(b, b->payload_len, 1);
		start_new_page(b);
		return;
	}

	/* share a prefix with the previous key, except at restart points */
	if (b->page_items % KVLSM_RESTART_INTERVAL != 0)
	{
		int			lim = Min(keylen, b->lastkeylen);

		while (shared < lim && key[shared] == b->lastkey[shared])
			shared++;
	}
	need = ENTRY_HEADER_SIZE + (keylen - shared) + vallen;

	if (b->compression == KVLSM_COMPRESSION_LZ4 && b->page_items > 0 &&
		b->payload_len + need > b->next_trial &&
		b->payload_len + need <= b->payload_max)
	{
		/* does what we have still compress into a page? */
		uint32		sz = stored_size(b, b->payload_len);

		b->page_trials++;
		if (sz <= KVLSM_PAGE_CAPACITY &&
			(sz * 10 >= b->payload_len * 9 || b->page_trials >= 2))
		{
			/*
			 * Saves less than a tenth, or a second trial fits: more trials
			 * would cost more CPU than the few entries they add are worth
			 * (random keys, as in most secondary indexes, compress
			 * little).  End the page.
			 */
			b->fit_len = b->payload_len;
			b->fit_items = b->page_items;
			memcpy(b->fit_lastkey, b->lastkey, b->lastkeylen);
			b->fit_lastkeylen = b->lastkeylen;
			b->next_trial = 0;
		}
		else if (sz <= KVLSM_PAGE_CAPACITY)
		{
			double		ratio = (double) sz / b->payload_len;
			uint32		room = (uint32) ((KVLSM_PAGE_CAPACITY - sz) / Max(ratio, 0.05) * 0.9);

			b->fit_len = b->payload_len;
			b->fit_items = b->page_items;
			memcpy(b->fit_lastkey, b->lastkey, b->lastkeylen);
			b->fit_lastkeylen = b->lastkeylen;
			/* aim close to the limit: the second trial ends the page */
			b->next_trial = b->payload_len + Max((uint32) (room * 0.97 / 0.9), 256);
		}
		else
			b->next_trial = 0;	/* full: finish below */
	}
	if (b->page_items > 0 &&
		(b->payload_len + need > b->payload_max ||
		 (b->compression == KVLSM_COMPRESSION_LZ4 && b->next_trial == 0)))
	{
		finish_data_page(b);
		/* the carried entries may have started a page: recompute */
		place_entry(b, key, keylen, seq, flags, val, vallen);
		return;
	}
	append_entry(b, key, keylen, shared, seq, flags, val, vallen);
}

void
kvlsm_sst_builder_add(KvlsmSstBuilder *b, const char *key, int keylen,
					  uint64 seq, uint16 flags, const char *val, int vallen)
{
	if (keylen > KVLSM_MAX_KEY_SIZE)
		elog(ERROR, "kvlsm key of %d bytes exceeds the maximum", keylen);
	place_entry(b, key, keylen, seq, flags, val, vallen);

	/*
	 * bloom: one hash per distinct key (per distinct first column of an
	 * index, whose entries of one value are adjacent)
	 */
	if (b->bloom_bits_per_key > 0)
	{
		uint64		h;

		if (bloom_key_hash(b->ops, key, keylen, &h) &&
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

/* the i-th filter bit of a hash: double hashing with its two halves */
static inline uint32
bloom_bit(uint64 h, uint32 i, uint32 nbits)
{
	return ((uint32) h + i * ((uint32) (h >> 32) | 1)) % nbits;
}

static void
bloom_set(char *bits, uint32 nbits, uint64 h, int k)
{
	int			i;

	for (i = 0; i < k; i++)
	{
		uint32		bit = bloom_bit(h, i, nbits);

		bits[bit / 8] |= (1 << (bit % 8));
	}
}

static bool
bloom_test(const char *bits, uint32 nbits, uint64 h, int k)
{
	int			i;

	for (i = 0; i < k; i++)
	{
		uint32		bit = bloom_bit(h, i, nbits);

		if ((bits[bit / 8] & (1 << (bit % 8))) == 0)
			return false;
	}
	return true;
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
	char	   *img;
	KvlsmSstHeader *hdr;
	Size		hdrlen;

	/*
	 * A page cut to fit lz4 carries its last entries into a new page, which
	 * may need finishing (and cutting) in turn.
	 */
	while (b->page_items > 0)
		finish_data_page(b);

	/* bloom filter */
	if (b->bloom_bits_per_key > 0 && b->nhashes > 0)
	{
		nbits = Max(64, b->nhashes * (uint32) b->bloom_bits_per_key);
		nbits = TYPEALIGN(8, nbits);
		k = (int) (b->bloom_bits_per_key * 0.69);
		k = Max(1, Min(k, 30));
		bits = MemoryContextAllocZero(b->cxt, nbits / 8);
		for (i = 0; i < b->nhashes; i++)
			bloom_set(bits, nbits, b->hashes[i], k);
		nbloom_pages = (nbits / 8 + KVLSM_PAGE_CAPACITY - 1) / KVLSM_PAGE_CAPACITY;
	}

	/* index pages: entries never straddle a page */
	nindex_pages = 0;
	{
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
	}

	total = 1 + b->npages + nindex_pages + nbloom_pages;
	b->total_pages = total;
	if (b->stream && total > b->stream_pages)
		elog(ERROR, "kvlsm: SSTable %llu needs %u pages, %u were reserved",
			 (unsigned long long) b->id, total, b->stream_pages);
	/* a streaming builder lays out only what follows the written data */
	b->extent_pages = b->stream ? total - b->written : total;
	b->extent = MemoryContextAlloc(b->cxt, sizeof(char *) * b->extent_pages);

	/* header */
	img = new_image(b, KVLSM_PAGE_SST_HEADER);
	hdr = (KvlsmSstHeader *) PageGetContents((Page) img);
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
	b->extent[0] = img;

	pos = 1;
	for (i = b->stream ? b->written : 0; i < b->npages; i++)
		b->extent[pos++] = b->pages[i];

	/*
	 * index pages: (uint16 keylen, key, uint32 data page number), one per
	 * data block, as b->index holds them already
	 */
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
	}

	for (i = 0; i < nbloom_pages; i++)
	{
		uint32		len = Min(KVLSM_PAGE_CAPACITY, nbits / 8 - i * KVLSM_PAGE_CAPACITY);

		img = new_image(b, KVLSM_PAGE_SST_BLOOM);
		memcpy(img + SizeOfPageHeaderData, bits + (Size) i * KVLSM_PAGE_CAPACITY, len);
		((PageHeader) img)->pd_lower = SizeOfPageHeaderData + len;
		b->extent[pos++] = img;
	}
	Assert(pos == b->extent_pages);

	for (i = 0; i < b->extent_pages; i++)
		kvlsm_page_set_crc((Page) b->extent[i]);
	return total;
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
static void
stream_out(KvlsmSstBuilder *b)
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

/* ---------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------
 */

typedef struct SstCacheKey
{
	KvlsmLsmTag tag;
	uint64		incarnation;
	uint64		id;
} SstCacheKey;

typedef struct SstCacheEntry
{
	SstCacheKey key;
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
} SstCacheEntry;

/*
 * Set by a compaction while it reads its inputs (a bulk-read ring, as a
 * sequential scan of a large table uses), NULL otherwise.
 */
BufferAccessStrategy kvlsm_sst_read_strategy = NULL;

static HTAB *sst_cache = NULL;
static MemoryContext sst_cache_cxt = NULL;
static Size sst_cache_bytes = 0;

#define SST_CACHE_MAX_BYTES (64 * 1024 * 1024)

void
kvlsm_sst_cache_forget_all(void)
{
	if (sst_cache_cxt != NULL)
		MemoryContextDelete(sst_cache_cxt);
	sst_cache_cxt = NULL;
	sst_cache = NULL;
	sst_cache_bytes = 0;
}

static void
sst_cache_init(void)
{
	HASHCTL		ctl;

	if (sst_cache != NULL)
		return;
	sst_cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "kvlsm sstable cache",
										  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SstCacheKey);
	ctl.entrysize = sizeof(SstCacheEntry);
	ctl.hcxt = sst_cache_cxt;
	sst_cache = hash_create("kvlsm sstable cache", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Read one page of an SSTable, check it, and copy it to 'dst'.  Returns
 * false when the page no longer belongs to this SSTable.
 */
static bool
read_sst_page(Relation rel, BlockNumber blkno, uint16 type, uint64 owner,
			  char *dst)
{
	Buffer		buf;
	Page		page;
	bool		ok;

	if (!kvlsm_block_exists(rel, blkno))
		return false;
	buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, kvlsm_sst_read_strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	ok = kvlsm_page_owner_is(page, type, owner);
	if (ok)
		memcpy(dst, page, BLCKSZ);
	UnlockReleaseBuffer(buf);
	/* checks run on the private copy, after the lock is released */
	if (ok)
		kvlsm_page_check(rel, blkno, (Page) dst, type);
	return ok;
}

static SstCacheEntry *
sst_cache_load(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *desc)
{
	SstCacheKey key;
	SstCacheEntry *e;
	bool		found;
	PGAlignedBlock pagebuf;
	KvlsmSstHeader hdr;
	MemoryContext old;
	uint32		i;
	uint32		n;

	sst_cache_init();
	memset(&key, 0, sizeof(key));
	key.tag = sh->tag;
	key.incarnation = sh->incarnation;
	key.id = desc->id;
	e = hash_search(sst_cache, &key, HASH_FIND, NULL);
	if (e != NULL && e->valid)
		return e;

	if (sst_cache_bytes > SST_CACHE_MAX_BYTES)
	{
		kvlsm_sst_cache_forget_all();
		sst_cache_init();
	}

	if (!read_sst_page(rel, desc->start, KVLSM_PAGE_SST_HEADER, desc->id, pagebuf.data))
		return NULL;
	memcpy(&hdr, PageGetContents((Page) pagebuf.data), sizeof(hdr));
	if (hdr.id != desc->id || hdr.npages != desc->npages)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: SSTable header does not match the manifest",
						RelationGetRelationName(rel), desc->start),
				 errdetail("Manifest says SSTable %llu with %u pages, header says %llu with %u pages.",
						   (unsigned long long) desc->id, desc->npages,
						   (unsigned long long) hdr.id, hdr.npages)));

	old = MemoryContextSwitchTo(sst_cache_cxt);
	e = hash_search(sst_cache, &key, HASH_ENTER, &found);
	e->valid = false;
	e->start = desc->start;
	e->ndata = hdr.ndata;
	e->nindex_entries = hdr.index_entries;
	e->index_keys = palloc(sizeof(char *) * Max(1, hdr.index_entries));
	e->index_keylens = palloc(sizeof(uint16) * Max(1, hdr.index_entries));
	e->index_pagenos = palloc(sizeof(uint32) * Max(1, hdr.index_entries));
	e->bloom_nbits = hdr.bloom_nbits;
	e->bloom_k = hdr.bloom_k;
	e->bloom_start = desc->start + 1 + hdr.ndata + hdr.nindex;
	e->nbloom = hdr.nbloom;
	e->bloom_checked = palloc0((hdr.nbloom + 7) / 8);
	MemoryContextSwitchTo(old);

	n = 0;
	for (i = 0; i < hdr.nindex; i++)
	{
		BlockNumber blk = desc->start + 1 + hdr.ndata + i;
		PageHeader	ph;
		uint32		off = 0;
		uint32		len;

		if (!read_sst_page(rel, blk, KVLSM_PAGE_SST_INDEX, desc->id, pagebuf.data))
		{
			hash_search(sst_cache, &key, HASH_REMOVE, NULL);
			return NULL;
		}
		ph = (PageHeader) pagebuf.data;
		len = ph->pd_lower - SizeOfPageHeaderData;
		while (off < len && n < hdr.index_entries)
		{
			uint16		kl;
			char	   *p = pagebuf.data + SizeOfPageHeaderData + off;

			memcpy(&kl, p, 2);
			e->index_keys[n] = MemoryContextAlloc(sst_cache_cxt, Max(kl, 1));
			memcpy(e->index_keys[n], p + 2, kl);
			e->index_keylens[n] = kl;
			memcpy(&e->index_pagenos[n], p + 2 + kl, 4);
			/* blocks ascend from page 0 and lie within the data pages */
			if (e->index_pagenos[n] >= hdr.ndata ||
				(n == 0 && e->index_pagenos[n] != 0) ||
				(n > 0 && e->index_pagenos[n] <= e->index_pagenos[n - 1]))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: SSTable index entry %u points to data page %u",
								RelationGetRelationName(rel), blk, n,
								e->index_pagenos[n])));
			sst_cache_bytes += kl + 20;
			n++;
			off += 2 + kl + 4;
		}
	}
	if (n != hdr.index_entries)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\": SSTable %llu index has %u entries, expected %u",
						RelationGetRelationName(rel),
						(unsigned long long) desc->id, n, hdr.index_entries)));

	e->valid = true;
	return e;
}

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
bloom_probe(Relation rel, SstCacheEntry *e, uint64 owner, uint64 h)
{
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;
	BloomProbe	result = BLOOM_MAYBE;
	uint32		i;

	for (i = 0; i < e->bloom_k; i++)
	{
		uint32		bit = bloom_bit(h, i, e->bloom_nbits);
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

/* index of the last data page whose first key is <= key (0 if none) */
static uint32
index_search(SstCacheEntry *e, const KvlsmKeyOps *ops, const char *key, int keylen)
{
	uint32		lo = 0,
				hi = e->nindex_entries;

	/*
	 * Equal keys can continue from the previous page, so start one page
	 * before the first page that begins with a key >= key.
	 */
	lo = 0;
	hi = e->nindex_entries;
	while (lo < hi)
	{
		uint32		mid = lo + (hi - lo) / 2;

		if (ops->cmp(e->index_keys[mid], e->index_keylens[mid], key, keylen, ops->arg) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 ? lo - 1 : 0;
}

/* a data page's decoded payload */
typedef struct DataPage
{
	char	   *data;
	uint32		datalen;
	uint32		nitems;
} DataPage;

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
	SstCacheKey sst;
	uint32		pageno;
	bool		valid;
	uint32		datalen;
	uint32		nitems;
	char	   *data;			/* KVLSM_MAX_PAYLOAD bytes, allocated once */
} PageCacheSlot;

static PageCacheSlot *page_cache = NULL;

static PageCacheSlot *
page_cache_slot(const SstCacheKey *sst, uint32 pageno)
{
	uint32		h;

	if (page_cache == NULL)
		page_cache = MemoryContextAllocZero(TopMemoryContext,
											sizeof(PageCacheSlot) * PAGE_CACHE_SLOTS);
	h = hash_bytes((const unsigned char *) sst, sizeof(SstCacheKey)) ^
		(pageno * 0x9E3779B1);
	return &page_cache[h % PAGE_CACHE_SLOTS];
}

/*
 * Read the pieces of a span that follow its first page, blocks
 * first+1 .. first+npieces-1, appending them to 'dst' after the first
 * piece's 'len' bytes.  Returns the stored length, or 0 when a page was
 * recycled.
 */
static uint32
read_span(Relation rel, const KvlsmSstDesc *desc, BlockNumber first,
		  uint32 npieces, char *pagebuf, char *dst, uint32 len)
{
	uint32		i;

	for (i = 1; i < npieces; i++)
	{
		KvlsmPageOpaque opaque;
		uint32		piece;

		if (!read_sst_page(rel, first + i, KVLSM_PAGE_SST_DATA, desc->id, pagebuf))
			return 0;
		opaque = KvlsmPageGetOpaque((Page) pagebuf);
		piece = ((PageHeader) pagebuf)->pd_lower - SizeOfPageHeaderData;
		if (!(opaque->flags & KVLSM_PAGE_FLAG_CONT) || opaque->link != i ||
			len + piece > KVLSM_MAX_PAYLOAD)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: not piece %u of the data block at block %u",
							RelationGetRelationName(rel), first + i, i, first)));
		memcpy(dst + len, pagebuf + SizeOfPageHeaderData, piece);
		len += piece;
	}
	return len;
}

/*
 * The payload of data block 'blockno' of an SSTable: from the page cache,
 * or read through shared buffers (checked, reassembled when it spans pages,
 * and decompressed).  Returns false when a page was recycled.
 */
static bool
get_data_page(Relation rel, SstCacheEntry *e, const KvlsmSstDesc *desc,
			  uint32 blockno, bool use_cache, char *pagebuf, char **payload,
			  DataPage *dp)
{
	PageCacheSlot *slot = NULL;
	KvlsmPageOpaque opaque;
	BlockNumber blkno = e->start + 1 + e->index_pagenos[blockno];
	char	   *target;
	char	   *stored;
	uint32		storedlen;
	char	   *spanbuf = NULL;
	uint16		flags;

	if (use_cache)
	{
		slot = page_cache_slot(&e->key, blockno);
		if (slot->valid && slot->pageno == blockno &&
			memcmp(&slot->sst, &e->key, sizeof(SstCacheKey)) == 0)
		{
			dp->data = slot->data;
			dp->datalen = slot->datalen;
			dp->nitems = slot->nitems;
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

	if (!read_sst_page(rel, blkno, KVLSM_PAGE_SST_DATA, desc->id, pagebuf))
		return false;
	/* the first page's trailer: pagebuf is reused for the pieces of a span */
	opaque = KvlsmPageGetOpaque((Page) pagebuf);
	flags = opaque->flags;
	dp->nitems = opaque->nitems;
	dp->datalen = opaque->datalen;
	stored = pagebuf + SizeOfPageHeaderData;
	storedlen = ((PageHeader) pagebuf)->pd_lower - SizeOfPageHeaderData;
	if (flags & KVLSM_PAGE_FLAG_CONT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: SSTable index points into the middle of a data block",
						RelationGetRelationName(rel), blkno)));
	if (flags & KVLSM_PAGE_FLAG_SPAN)
	{
		uint32		npieces = opaque->link;

		if (npieces < 2 || npieces > KVLSM_MAX_PAYLOAD / KVLSM_PAGE_CAPACITY ||
			e->index_pagenos[blockno] + npieces > e->ndata)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: data block spans %u pages",
							RelationGetRelationName(rel), blkno, npieces)));
		/* raw pieces go straight to the target; lz4 ones via a buffer */
		spanbuf = (flags & KVLSM_PAGE_FLAG_LZ4) ? palloc(KVLSM_MAX_PAYLOAD) : target;
		memcpy(spanbuf, stored, storedlen);
		storedlen = read_span(rel, desc, blkno, npieces, pagebuf, spanbuf, storedlen);
		if (storedlen == 0)
		{
			if (spanbuf != target)
				pfree(spanbuf);
			return false;
		}
		stored = spanbuf;
	}

	if (dp->datalen > KVLSM_MAX_PAYLOAD)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: data length %u exceeds the largest data block",
						RelationGetRelationName(rel), blkno, dp->datalen)));
	if (flags & KVLSM_PAGE_FLAG_LZ4)
	{
		int			dlen;

		dlen = LZ4_decompress_safe(stored, target, storedlen, KVLSM_MAX_PAYLOAD);
		if (dlen < 0 || (uint32) dlen != dp->datalen)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: lz4 data block does not decompress",
							RelationGetRelationName(rel), blkno)));
		dp->data = target;
	}
	else
	{
		if (dp->datalen > storedlen)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: data length %u exceeds the block",
							RelationGetRelationName(rel), blkno, dp->datalen)));
		if (stored == target)
			dp->data = target;
		else if (slot != NULL)
		{
			memcpy(target, stored, dp->datalen);
			dp->data = target;
		}
		else
			dp->data = stored;
	}
	if (spanbuf != NULL && spanbuf != target)
		pfree(spanbuf);
	if (slot != NULL)
	{
		slot->sst = e->key;
		slot->pageno = blockno;
		slot->datalen = dp->datalen;
		slot->nitems = dp->nitems;
		slot->valid = true;
	}
	return true;
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
	SstCacheEntry *e;
	uint32		pageno;
	PGAlignedBlock pagebuf;
	char	   *payload = NULL;
	/* aligned: comparators may read typed fields of the key in place */
	union
	{
		char		data[KVLSM_MAX_KEY_SIZE];
		double		align;
	}			keyu;
	char	   *keybuf = keyu.data;
	int			nkeys = 0;
	char	   *lastkey = NULL;
	int			lastkeylen = -1;
	int			nkeys_before_probe = -1;
	bool		past_start = false;

	*limited = false;
	e = sst_cache_load(rel, sh, desc);
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

	pageno = start ? index_search(e, ops, start, startlen) : 0;
	for (; pageno < e->nindex_entries; pageno++)
	{
		DataPage	dp;
		uint32		i;
		uint32		off = 0;
		char	   *data;
		bool		past_end = false;

		CHECK_FOR_INTERRUPTS();
		if (!get_data_page(rel, e, desc, pageno, bloom_hash != NULL, pagebuf.data, &payload, &dp))
			return KVLSM_SST_RETRY;
		data = dp.data;

		for (i = 0; i < dp.nitems; i++)
		{
			EntryHeader eh;
			char	   *p = data + off;
			int			keylen;
			int			c;

			if (off + ENTRY_HEADER_SIZE > dp.datalen)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: entry %u runs past the page data",
								RelationGetRelationName(rel), e->start + 1 + e->index_pagenos[pageno], i)));
			decode_entry_header(p, &eh);
			keylen = eh.shared + eh.unshared;
			if (keylen > KVLSM_MAX_KEY_SIZE ||
				off + ENTRY_HEADER_SIZE + eh.unshared + eh.vallen > dp.datalen)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: entry %u has bad lengths",
								RelationGetRelationName(rel), e->start + 1 + e->index_pagenos[pageno], i)));
			memcpy(keybuf + eh.shared, p + ENTRY_HEADER_SIZE, eh.unshared);
			off += ENTRY_HEADER_SIZE + eh.unshared + eh.vallen;

			/* keys ascend: once one is past the start, all are */
			if (start && !past_start)
			{
				c = ops->cmp(keybuf, keylen, start, startlen, ops->arg);
				if (c < 0 || (c == 0 && start_exclusive))
					continue;
				past_start = true;
			}
			if (end)
			{
				c = ops->cmp(keybuf, keylen, end, endlen, ops->arg);
				if (c > 0)
				{
					past_end = true;
					break;
				}
			}
			if (lastkey == NULL || lastkeylen != keylen ||
				ops->cmp(lastkey, lastkeylen, keybuf, keylen, ops->arg) != 0)
			{
				if (maxkeys > 0 && nkeys >= maxkeys)
				{
					*limited = true;
					past_end = true;
					break;
				}
				nkeys++;
			}
			kvlsm_recset_add(out, keybuf, keylen, eh.seq, eh.flags,
							 p + ENTRY_HEADER_SIZE + eh.unshared, eh.vallen,
							 0, false);
			lastkey = (char *) out->recs[out->n - 1].key;
			lastkeylen = keylen;
		}
		if (past_end)
			break;
	}
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
	SstCacheEntry *e = sst_cache_load(rel, sh, desc);
	uint32		idx;

	if (e == NULL || e->nindex_entries == 0)
		return false;
	idx = key ? index_search(e, ops, key, keylen) : e->nindex_entries - 1;
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

/*
 * The exact key range of an SSTable, read from its header page (the
 * manifest keeps only short keys).  Copies are palloc'd in the current
 * context.  Returns false when the header does not hold the keys (they
 * did not fit) or the extent was recycled: the caller must then assume
 * the table may hold any key.
 */
bool
kvlsm_sst_bounds(Relation rel, const KvlsmSstDesc *desc,
				 char **min, int *minlen, char **max, int *maxlen)
{
	PGAlignedBlock pagebuf;
	KvlsmSstHeader hdr;
	char	   *p;

	if (desc->nentries == 0 ||
		!read_sst_page(rel, desc->start, KVLSM_PAGE_SST_HEADER, desc->id, pagebuf.data))
		return false;
	p = PageGetContents((Page) pagebuf.data);
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.minkeylen == 0 && hdr.maxkeylen == 0)
		return false;
	*minlen = hdr.minkeylen;
	*maxlen = hdr.maxkeylen;
	*min = palloc(Max(hdr.minkeylen, 1));
	*max = palloc(Max(hdr.maxkeylen, 1));
	memcpy(*min, p + sizeof(hdr), hdr.minkeylen);
	memcpy(*max, p + sizeof(hdr) + hdr.minkeylen, hdr.maxkeylen);
	return true;
}

/* ---------------------------------------------------------------------
 * Walking a whole SSTable (kvlsm_verify, kvlsm_repair, kvlsm_sstable_dump)
 *
 * Unlike the readers above, a walk raises no error for what it finds in
 * the pages: every problem goes to the walker's callback and the walk goes
 * on with the next page, so one bad page never hides the state of the
 * others.  Entries are decoded with every length checked against the page.
 * ---------------------------------------------------------------------
 */

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
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	char	   *hp;
	char	   *minkey = NULL,
			   *maxkey = NULL;
	char	  **index_keys;
	uint16	   *index_keylens;
	uint32	   *index_pagenos;
	uint32		nindex = 0;
	uint32		nblock = 0;		/* data blocks seen */
	char	   *spanbuf;
	char	   *bloom = NULL;
	char	   *payload;
	char	   *prevkey;
	int			prevkeylen = -1;
	uint64		prevseq = 0;
	char	   *curkey;
	uint64		nentries = 0;
	bool		entries_complete = true;
	bool		first_entry = true;
	uint32		i;

	memset(hdr, 0, sizeof(*hdr));
	w->hdr_minkey = w->hdr_maxkey = NULL;
	if (!walk_read_page(rel, w, desc->start, KVLSM_PAGE_SST_HEADER, desc->id,
						nblocks, pagebuf.data))
		return false;
	hp = PageGetContents((Page) pagebuf.data);
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
		((PageHeader) pagebuf.data)->pd_lower - SizeOfPageHeaderData)
	{
		walk_problem(w, desc->start,
					 "SSTable header describes an impossible layout (%u data, %u index, %u bloom pages in an extent of %u, keys of %u and %u bytes)",
					 hdr->ndata, hdr->nindex, hdr->nbloom, desc->npages,
					 hdr->minkeylen, hdr->maxkeylen);
		return false;
	}
	if (hdr->minkeylen > 0 || hdr->maxkeylen > 0)
	{
		minkey = palloc(hdr->minkeylen + 1);
		maxkey = palloc(hdr->maxkeylen + 1);
		memcpy(minkey, hp + sizeof(*hdr), hdr->minkeylen);
		memcpy(maxkey, hp + sizeof(*hdr) + hdr->minkeylen, hdr->maxkeylen);
		w->hdr_minkey = minkey;
		w->hdr_minkeylen = hdr->minkeylen;
		w->hdr_maxkey = maxkey;
		w->hdr_maxkeylen = hdr->maxkeylen;
	}

	/* index pages: (uint16 keylen, key, uint32 data page number) */
	index_keys = palloc0(sizeof(char *) * Max(1, hdr->ndata));
	index_keylens = palloc0(sizeof(uint16) * Max(1, hdr->ndata));
	index_pagenos = palloc0(sizeof(uint32) * Max(1, hdr->ndata));
	for (i = 0; i < hdr->nindex; i++)
	{
		BlockNumber blk = desc->start + 1 + hdr->ndata + i;
		uint32		off = 0;
		uint32		len;

		if (!walk_read_page(rel, w, blk, KVLSM_PAGE_SST_INDEX, desc->id, nblocks,
							pagebuf.data))
		{
			nindex = UINT32_MAX;	/* index unknown: skip its checks */
			continue;
		}
		len = ((PageHeader) pagebuf.data)->pd_lower - SizeOfPageHeaderData;
		while (off < len && nindex != UINT32_MAX)
		{
			char	   *p = pagebuf.data + SizeOfPageHeaderData + off;
			uint16		kl;
			uint32		dataidx;

			memcpy(&kl, p, 2);
			if (off + 2 + kl + 4 > len || nindex >= hdr->ndata)
			{
				walk_problem(w, blk, "SSTable index page holds a malformed entry at offset %u", off);
				nindex = UINT32_MAX;
				break;
			}
			memcpy(&dataidx, p + 2 + kl, 4);
			if (dataidx >= hdr->ndata || (nindex == 0 && dataidx != 0) ||
				(nindex > 0 && dataidx <= index_pagenos[nindex - 1]))
				walk_problem(w, blk, "SSTable index entry %u points to data page %u", nindex, dataidx);
			index_pagenos[nindex] = dataidx;
			index_keys[nindex] = palloc(Max(kl, 1));
			memcpy(index_keys[nindex], p + 2, kl);
			index_keylens[nindex] = kl;
			nindex++;
			off += 2 + kl + 4;
		}
	}
	if (nindex != UINT32_MAX && nindex != hdr->index_entries)
		walk_problem(w, desc->start, "SSTable index has %u entries, the header says %u",
					 nindex, hdr->index_entries);

	/* bloom filter pages */
	if (hdr->nbloom > 0)
	{
		bloom = palloc(hdr->bloom_nbits / 8 + 1);
		for (i = 0; i < hdr->nbloom && bloom != NULL; i++)
		{
			BlockNumber blk = desc->start + 1 + hdr->ndata + hdr->nindex + i;
			uint32		len = Min(KVLSM_PAGE_CAPACITY,
								  hdr->bloom_nbits / 8 - i * KVLSM_PAGE_CAPACITY);

			if (!walk_read_page(rel, w, blk, KVLSM_PAGE_SST_BLOOM, desc->id, nblocks,
								pagebuf.data))
			{
				pfree(bloom);
				bloom = NULL;
				break;
			}
			memcpy(bloom + (Size) i * KVLSM_PAGE_CAPACITY,
				   pagebuf.data + SizeOfPageHeaderData, len);
		}
	}

	/* data blocks: one page each, or a span of pages */
	payload = palloc(KVLSM_MAX_PAYLOAD);
	spanbuf = palloc(KVLSM_MAX_PAYLOAD);
	prevkey = palloc(KVLSM_MAX_KEY_SIZE);
	curkey = palloc(KVLSM_MAX_KEY_SIZE);
	for (i = 0; i < hdr->ndata; i++)
	{
		BlockNumber blk = desc->start + 1 + i;
		KvlsmPageOpaque opaque;
		char	   *data;
		char	   *stored;
		uint32		storedlen;
		uint32		datalen;
		uint32		nitems;
		uint16		flags;
		uint32		off = 0;
		uint32		j;
		int			curkeylen = 0;

		CHECK_FOR_INTERRUPTS();
		if (!walk_read_page(rel, w, blk, KVLSM_PAGE_SST_DATA, desc->id, nblocks,
							pagebuf.data))
		{
			entries_complete = false;
			prevkeylen = -1;
			/* a damaged block: the index says where the next one starts */
			if (nindex != UINT32_MAX && nblock < nindex && index_pagenos[nblock] == i)
			{
				nblock++;
				if (nblock < nindex)
					i = index_pagenos[nblock] - 1;
				else
					break;
			}
			continue;
		}
		opaque = KvlsmPageGetOpaque((Page) pagebuf.data);
		datalen = opaque->datalen;
		nitems = opaque->nitems;
		flags = opaque->flags;
		stored = pagebuf.data + SizeOfPageHeaderData;
		storedlen = ((PageHeader) pagebuf.data)->pd_lower - SizeOfPageHeaderData;
		if (flags & KVLSM_PAGE_FLAG_CONT)
		{
			walk_problem(w, blk, "data page is piece %u of a span whose first page was not seen",
						 opaque->link);
			entries_complete = false;
			prevkeylen = -1;
			continue;
		}
		if (nindex != UINT32_MAX && (nblock >= nindex || index_pagenos[nblock] != i))
			walk_problem(w, blk, "data block %u starts at data page %u, its index entry says %u",
						 nblock, i, nblock < nindex ? index_pagenos[nblock] : UINT32_MAX);
		nblock++;
		if (flags & KVLSM_PAGE_FLAG_SPAN)
		{
			uint32		npieces = opaque->link;
			uint32		k;
			bool		ok = true;

			if (npieces < 2 || npieces > KVLSM_MAX_PAYLOAD / KVLSM_PAGE_CAPACITY ||
				i + npieces > hdr->ndata)
			{
				walk_problem(w, blk, "data block spans %u pages", npieces);
				entries_complete = false;
				prevkeylen = -1;
				continue;
			}
			memcpy(spanbuf, stored, storedlen);
			for (k = 1; k < npieces && ok; k++)
			{
				uint32		piece;

				ok = walk_read_page(rel, w, blk + k, KVLSM_PAGE_SST_DATA, desc->id,
									nblocks, pagebuf.data);
				if (!ok)
					break;
				opaque = KvlsmPageGetOpaque((Page) pagebuf.data);
				piece = ((PageHeader) pagebuf.data)->pd_lower - SizeOfPageHeaderData;
				if (!(opaque->flags & KVLSM_PAGE_FLAG_CONT) || opaque->link != k ||
					storedlen + piece > KVLSM_MAX_PAYLOAD)
				{
					walk_problem(w, blk + k, "data page is not piece %u of the span at block %u",
								 k, blk);
					ok = false;
					break;
				}
				memcpy(spanbuf + storedlen, pagebuf.data + SizeOfPageHeaderData, piece);
				storedlen += piece;
			}
			i += npieces - 1;
			if (!ok)
			{
				entries_complete = false;
				prevkeylen = -1;
				continue;
			}
			stored = spanbuf;
		}
		if (flags & KVLSM_PAGE_FLAG_LZ4)
		{
			int			dlen = LZ4_decompress_safe(stored, payload, storedlen,
												   KVLSM_MAX_PAYLOAD);

			if (dlen < 0 || (uint32) dlen != datalen)
			{
				walk_problem(w, blk, "lz4 data block does not decompress to its %u bytes", datalen);
				entries_complete = false;
				prevkeylen = -1;
				continue;
			}
			data = payload;
		}
		else
		{
			if (datalen > storedlen)
			{
				walk_problem(w, blk, "data length %u exceeds the block contents", datalen);
				entries_complete = false;
				prevkeylen = -1;
				continue;
			}
			data = stored;
		}

		for (j = 0; j < nitems; j++)
		{
			EntryHeader eh;
			char	   *p = data + off;
			int			keylen;

			if (off + ENTRY_HEADER_SIZE > datalen)
			{
				walk_problem(w, blk, "entry %u runs past the page data", j);
				entries_complete = false;
				break;
			}
			decode_entry_header(p, &eh);
			keylen = eh.shared + eh.unshared;
			if (keylen > KVLSM_MAX_KEY_SIZE ||
				(j == 0 && eh.shared != 0) || (j > 0 && eh.shared > curkeylen) ||
				(uint64) off + ENTRY_HEADER_SIZE + eh.unshared + eh.vallen > datalen)
			{
				walk_problem(w, blk, "entry %u has bad lengths (shared %u, unshared %u, value %u)",
							 j, eh.shared, eh.unshared, eh.vallen);
				entries_complete = false;
				break;
			}
			memcpy(curkey + eh.shared, p + ENTRY_HEADER_SIZE, eh.unshared);
			curkeylen = keylen;
			off += ENTRY_HEADER_SIZE + eh.unshared + eh.vallen;
			nentries++;

			if (j == 0 && nindex != UINT32_MAX && nblock - 1 < nindex &&
				(index_keylens[nblock - 1] != keylen ||
				 memcmp(index_keys[nblock - 1], curkey, keylen) != 0))
				walk_problem(w, blk, "first key of data block %u differs from its index entry",
							 nblock - 1);
			if (first_entry && minkey != NULL &&
				(hdr->minkeylen != keylen || memcmp(minkey, curkey, keylen) != 0))
				walk_problem(w, blk, "first key differs from the smallest key in the SSTable header");
			first_entry = false;
			if (desc->nentries > 0 && (eh.seq < hdr->minseq || eh.seq > hdr->maxseq))
				walk_problem(w, blk, "entry %u has sequence number %llu outside the SSTable's range %llu-%llu",
							 j, (unsigned long long) eh.seq,
							 (unsigned long long) hdr->minseq, (unsigned long long) hdr->maxseq);
			if (w->ops != NULL && prevkeylen >= 0)
			{
				int			c = w->ops->cmp(prevkey, prevkeylen, curkey, keylen, w->ops->arg);

				if (c > 0 || (c == 0 && prevseq <= eh.seq))
					walk_problem(w, blk, "entry %u is out of order (key %s the previous key, sequence %llu after %llu)",
								 j, c > 0 ? "sorts before" : "equals",
								 (unsigned long long) eh.seq, (unsigned long long) prevseq);
			}
			if (w->check_bloom && bloom != NULL)
			{
				uint64		h;

				if (bloom_key_hash(w->ops, curkey, keylen, &h) &&
					!bloom_test(bloom, hdr->bloom_nbits, h, hdr->bloom_k))
					walk_problem(w, blk, "bloom filter does not contain the key of entry %u", j);
			}
			if (w->entry)
				w->entry(w->arg, blk, curkey, keylen, eh.seq, eh.flags,
						 p + ENTRY_HEADER_SIZE + eh.unshared, eh.vallen);
			memcpy(prevkey, curkey, keylen);
			prevkeylen = keylen;
			prevseq = eh.seq;
		}
	}
	if (entries_complete)
	{
		if (nindex != UINT32_MAX && nblock != nindex)
			walk_problem(w, desc->start, "SSTable has %u data blocks, its index %u entries",
						 nblock, nindex);
		if (nentries != hdr->nentries)
			walk_problem(w, desc->start, "SSTable holds %llu entries, the header says %u",
						 (unsigned long long) nentries, hdr->nentries);
		if (maxkey != NULL && prevkeylen >= 0 &&
			(hdr->maxkeylen != prevkeylen || memcmp(maxkey, prevkey, prevkeylen) != 0))
			walk_problem(w, desc->start + hdr->ndata,
						 "last key differs from the largest key in the SSTable header");
	}
	pfree(payload);
	pfree(spanbuf);
	pfree(prevkey);
	pfree(curkey);
	return true;
}
