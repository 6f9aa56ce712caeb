/*-------------------------------------------------------------------------
 *
 * sst_block_builder.c
 *	  Packing an SSTable's entries into data blocks: prefix compression
 *	  with restart points, how many entries a compressed page takes, cutting a
 *	  payload that no longer compresses into a page, and turning a finished
 *	  block into page images (one page, or a span of pages for an entry
 *	  larger than a page).  The format is in sst_block.h.
 *
 * Called by the table builder (sst_builder.c) for every entry and at
 * finish.  Only memory is touched here, in the builder's context: a
 * streaming builder's full batches go to sst_writer.c, which writes them;
 * a compaction's builder pays the rate limiter for each page as it is made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "kvlsm/compress.h"
#include "kvlsm/span.h"
#include "kvlsm/scheduler.h"
#include "kvlsm/sst_builder.h"

/* compressed size of the first 'len' payload bytes (or len when smaller) */
static uint32
stored_size(KvlsmSstBuilder *b, uint32 len)
{
	int			clen;

	if (KVLSM_SPEC_METHOD(b->compression) == KVLSM_COMPRESSION_NONE)
		return len;
	clen = kvlsm_compress(b->compression, b->payload, len, b->trialbuf,
						  kvlsm_compress_bound(b->compression, b->payload_max));
	b->trial_len = len;
	b->trial_clen = clen;
	if (clen <= 0 || (uint32) clen >= len)
		return len;
	return clen;
}

/*
 * The bytes payload [0, len) is stored as: compressed in b->trialbuf when
 * that saves something (*compressed), else the payload itself.
 */
static const char *
stored_form(KvlsmSstBuilder *b, uint32 len, uint32 *storedlen, bool *compressed)
{
	*storedlen = len;
	*compressed = false;
	if (KVLSM_SPEC_METHOD(b->compression) != KVLSM_COMPRESSION_NONE)
	{
		int			clen;

		/* the last trial compressed exactly this payload: reuse it */
		if (b->trial_len == len && b->trial_clen > 0)
			clen = b->trial_clen;
		else
			clen = kvlsm_compress(b->compression, b->payload, len, b->trialbuf,
								  kvlsm_compress_bound(b->compression, KVLSM_MAX_PAYLOAD));
		/* keep the compressed form only when it saves something */
		if (clen > 0 && (uint32) clen < len)
		{
			*storedlen = clen;
			*compressed = true;
			return b->trialbuf;
		}
	}
	return b->payload;
}

/* a finished data page image joins the table's data pages */
static void
add_data_page(KvlsmSstBuilder *b, char *img)
{
	if (b->npages == b->maxpages)
	{
		b->maxpages *= 2;
		b->pages = repalloc(b->pages, sizeof(char *) * b->maxpages);
	}
	b->pages[b->npages++] = img;
	if (b->stream && b->npages - b->written >= KVLSM_SST_STREAM_BATCH)
		kvlsm_sst_stream_out(b);

	/*
	 * A compaction pays for its data pages as it makes them, so that the
	 * rate limiter paces the merge itself, not only the final write.
	 */
	if (b->compaction)
	{
		kvlsm_charge_write(BLCKSZ, false);
		b->charged++;
	}
}

/*
 * Emit payload bytes [0, len) holding 'items' entries as a data block: one
 * page, or a span of pages when even the stored (maybe compressed) form is
 * larger than a page, which only a record larger than a page causes.
 */
static void
emit_data_page(KvlsmSstBuilder *b, uint32 len, uint32 items)
{
	const char *stored;
	uint32		storedlen;
	bool		compressed;
	uint32		npieces;
	uint32		i;

	stored = stored_form(b, len, &storedlen, &compressed);
	b->trial_len = 0;

	npieces = kvlsm_span_npieces(storedlen);
	if (len > KVLSM_MAX_PAYLOAD || npieces > KVLSM_MAX_PAYLOAD / KVLSM_PAGE_CAPACITY)
		elog(ERROR, "kvlsm: data block payload of %u bytes does not fit", len);

	for (i = 0; i < npieces; i++)
	{
		char	   *img = MemoryContextAlloc(b->cxt, BLCKSZ);
		Page		page = (Page) img;
		KvlsmPageOpaque opaque;

		kvlsm_page_init(page, KVLSM_PAGE_SST_DATA, b->id);
		opaque = KvlsmPageGetOpaque(page);
		if (i == 0)
		{
			opaque->nitems = items;
			opaque->datalen = len;
			opaque->flags |= KVLSM_PAGE_FLAG_VARINT;
			if (compressed)
				opaque->flags |= kvlsm_compression_flag(b->compression);
			if (npieces > 1)
				opaque->link = npieces;
		}
		else
			opaque->link = i;
		kvlsm_span_mark(page, i, npieces);
		kvlsm_span_fill(page, stored, storedlen, (Size) i * KVLSM_PAGE_CAPACITY);

		add_data_page(b, img);
	}
}

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
	KvlsmEntryHeader eh;
	char	   *p;
	int			hlen;

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
	hlen = kvlsm_entry_header_put(p, &eh);
	p += hlen;
	memcpy(p, key + shared, keylen - shared);
	p += keylen - shared;
	if (vallen > 0)
		memcpy(p, val, vallen);
	b->payload_len += hlen + (keylen - shared) + vallen;
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
 * Place again the 'restitems' entries of 'rest' that a cut page left
 * over.  Their key prefixes refer to the entries before them, the last of
 * which was the cut page's last key, so each is decoded against that key
 * and placed anew.
 */
static void
carry_entries(KvlsmSstBuilder *b, const char *rest, uint32 restlen, uint32 restitems)
{
	char		key[KVLSM_MAX_KEY_SIZE];
	uint32		off = 0;
	uint32		i;

	memcpy(key, b->fit_lastkey, b->fit_lastkeylen);
	for (i = 0; i < restitems; i++)
	{
		KvlsmEntryHeader eh;
		const char *p = rest + off;
		int			hlen = kvlsm_entry_header_get(p, rest + restlen, &eh);

		/* the builder wrote these bytes itself a moment ago */
		if (hlen < 0)
			elog(ERROR, "kvlsm: entry header being carried to the next page is damaged");
		memcpy(key + eh.shared, p + hlen, eh.unshared);
		kvlsm_sst_place_entry(b, key, eh.shared + eh.unshared, eh.seq, eh.flags,
							  p + hlen + eh.unshared, eh.vallen);
		off += hlen + eh.unshared + eh.vallen;
	}
}

/*
 * Finish the current data page.  A compressed payload that no longer compresses
 * into one page is cut at the last prefix known to fit, and the entries
 * after it start the next page (re-encoded, since their key prefixes refer
 * to the page they leave).
 */
void
kvlsm_sst_finish_data_page(KvlsmSstBuilder *b)
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
		carry_entries(b, rest, restlen, restitems);
		pfree(rest);
	}
}

/*
 * An entry larger than a page shares no block: it gets one of its own,
 * which spans pages unless compression makes it fit one.
 */
static void
place_large_entry(KvlsmSstBuilder *b, const char *key, int keylen, uint64 seq,
				  uint16 flags, const char *val, int vallen)
{
	if ((Size) KVLSM_ENTRY_VARINT_MAX + keylen + vallen > KVLSM_MAX_PAYLOAD)
		elog(ERROR, "kvlsm record of %d bytes does not fit a data block",
			 keylen + vallen);
	while (b->page_items > 0)
		kvlsm_sst_finish_data_page(b);
	append_entry(b, key, keylen, 0, seq, flags, val, vallen);
	emit_data_page(b, b->payload_len, 1);
	start_new_page(b);
}

/*
 * Compressed blocks: the payload (of b->payload_len bytes) is about to grow past the
 * size at which the next trial compression was planned.  Does what we
 * have still compress into a page?  Records the longest prefix known to
 * fit and plans the next trial; next_trial 0 ends the page.
 */
static void
fit_trial(KvlsmSstBuilder *b)
{
	uint32		sz = stored_size(b, b->payload_len);

	b->page_trials++;
	if (sz <= KVLSM_PAGE_CAPACITY &&
		(sz * 10 >= b->payload_len * 9 || b->page_trials >= 2))
	{
		/*
		 * Saves less than a tenth, or a second trial fits: more trials
		 * would cost more CPU than the few entries they add are worth
		 * (random keys, as in most secondary indexes, compress little).
		 * End the page.
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
		b->next_trial = 0;		/* full: finish below */
}

/* put one entry on the current data page, starting a new page as needed */
void
kvlsm_sst_place_entry(KvlsmSstBuilder *b, const char *key, int keylen,
					  uint64 seq, uint16 flags, const char *val, int vallen)
{
	int			shared = 0;
	Size		need;
	KvlsmEntryHeader eh;
	char		hdr[KVLSM_ENTRY_VARINT_MAX];

	if ((Size) KVLSM_ENTRY_VARINT_MAX + keylen + vallen > KVLSM_PAGE_CAPACITY)
	{
		place_large_entry(b, key, keylen, seq, flags, val, vallen);
		return;
	}

	/* share a prefix with the previous key, except at restart points */
	if (b->page_items % KVLSM_RESTART_INTERVAL != 0)
	{
		int			lim = Min(keylen, b->lastkeylen);

		while (shared < lim && key[shared] == b->lastkey[shared])
			shared++;
	}
	eh.flags = flags;
	eh.shared = shared;
	eh.unshared = keylen - shared;
	eh.vallen = vallen;
	eh.seq = seq;
	need = kvlsm_entry_header_put(hdr, &eh) + (keylen - shared) + vallen;

	if (KVLSM_SPEC_METHOD(b->compression) != KVLSM_COMPRESSION_NONE && b->page_items > 0 &&
		b->payload_len + need > b->next_trial &&
		b->payload_len + need <= b->payload_max)
		fit_trial(b);
	if (b->page_items > 0 &&
		(b->payload_len + need > b->payload_max ||
		 (KVLSM_SPEC_METHOD(b->compression) != KVLSM_COMPRESSION_NONE && b->next_trial == 0)))
	{
		kvlsm_sst_finish_data_page(b);
		/* the carried entries may have started a page: recompute */
		kvlsm_sst_place_entry(b, key, keylen, seq, flags, val, vallen);
		return;
	}
	append_entry(b, key, keylen, shared, seq, flags, val, vallen);
}
