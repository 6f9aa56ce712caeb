/*-------------------------------------------------------------------------
 *
 * sst_block.c
 *	  The one decoder of SSTable data blocks: from the pages a block is
 *	  stored on to its payload (pieces of a span joined, lz4 undone), and
 *	  from the payload to its entries.  See sst_block.h for the format.
 *
 * Every check of stored bytes returns a status instead of raising an
 * error, so that one decoder serves both the readers (sst_reader.c), which
 * raise ERRCODE_DATA_CORRUPTED errors, and the walker of kvlsm_verify,
 * kvlsm_repair and kvlsm_sstable_dump (sst_walk.c), which reports every
 * problem and goes on.  Pages come through the caller's KvlsmSstPageRead,
 * which copies them out of shared buffers; nothing here holds a lock,
 * writes WAL or allocates more than a span's scratch buffer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"


#include "kvlsm/compress.h"
#include "kvlsm/span.h"
#include "kvlsm/sst_block.h"

/*
 * Begin decoding the data block whose first page, block 'blkno', the
 * caller has copied to 'page': take the block's description from the
 * page's trailer.  KVLSM_DATA_BLOCK_MID_SPAN when the page is a later
 * piece of a span rather than the start of a block.
 */
KvlsmDataBlockStatus
kvlsm_data_block_start(KvlsmDataBlock *block, BlockNumber blkno,
					   const char *page)
{
	KvlsmPageOpaque opaque = KvlsmPageGetOpaque((Page) page);

	memset(block, 0, sizeof(*block));
	block->blkno = blkno;
	block->flags = opaque->flags;
	block->link = opaque->link;
	block->nitems = opaque->nitems;
	block->datalen = opaque->datalen;
	block->npages = 1;
	if (block->flags & KVLSM_PAGE_FLAG_CONT)
		return KVLSM_DATA_BLOCK_MID_SPAN;
	return KVLSM_DATA_BLOCK_OK;
}

/*
 * Read the pieces of a span that follow its first page, blocks
 * first+1 .. first+npieces-1, appending them to 'dst' after the 'len'
 * bytes already there; *len becomes the stored length.
 */
static KvlsmDataBlockStatus
join_span(KvlsmDataBlock *block, uint32 npieces, char *pagebuf,
		  KvlsmSstPageRead read_page, void *read_arg, char *dst, uint32 *len)
{
	uint32		i;
	Size		joined = *len;

	for (i = 1; i < npieces; i++)
	{
		KvlsmPageOpaque opaque;

		if (!read_page(read_arg, block->blkno + i, pagebuf))
			return KVLSM_DATA_BLOCK_UNREADABLE;
		opaque = KvlsmPageGetOpaque((Page) pagebuf);
		if (!(opaque->flags & KVLSM_PAGE_FLAG_CONT) || opaque->link != i ||
			!kvlsm_span_append((Page) pagebuf, dst, &joined, KVLSM_MAX_PAYLOAD))
		{
			block->bad_blkno = block->blkno + i;
			block->bad_piece = i;
			return KVLSM_DATA_BLOCK_BAD_PIECE;
		}
		*len = joined;
	}
	return KVLSM_DATA_BLOCK_OK;
}

/*
 * The payload from its stored bytes: decompressed into 'target', or, when
 * stored raw, where it lies.
 */
static KvlsmDataBlockStatus
unpack_payload(KvlsmDataBlock *block, char *stored, uint32 storedlen,
			   char *target)
{
	if (block->datalen > KVLSM_MAX_PAYLOAD)
		return KVLSM_DATA_BLOCK_TOO_LONG;
	if (block->flags & KVLSM_PAGE_FLAG_COMPRESSED)
	{
		int			dlen;

		dlen = kvlsm_decompress(block->flags, stored, storedlen, target, KVLSM_MAX_PAYLOAD);
		if (dlen < 0 || (uint32) dlen != block->datalen)
			return KVLSM_DATA_BLOCK_BAD_COMPRESSED;
		block->data = target;
	}
	else
	{
		if (block->datalen > storedlen)
			return KVLSM_DATA_BLOCK_SHORT;
		block->data = stored;
	}
	return KVLSM_DATA_BLOCK_OK;
}

/*
 * Read the rest of a block begun by kvlsm_data_block_start: join the
 * pieces of a span (its first page is data page 'pageno' of 'ndata'),
 * check the lengths and decompress.  'pagebuf' still holds the first page
 * and is reused for the later pieces.  'target' (KVLSM_MAX_PAYLOAD bytes)
 * takes a decompressed payload, and the joined pieces of a raw span;
 * 'spanbuf' (as large, or NULL to allocate one here) the joined pieces of
 * an lz4 span.  A raw single page's payload stays in 'pagebuf'.  On
 * KVLSM_DATA_BLOCK_OK block->data is the payload.
 */
KvlsmDataBlockStatus
kvlsm_data_block_read(KvlsmDataBlock *block, uint32 pageno, uint32 ndata,
					  char *pagebuf, KvlsmSstPageRead read_page,
					  void *read_arg, char *target, char *spanbuf)
{
	char	   *stored = pagebuf + SizeOfPageHeaderData;
	uint32		storedlen = ((PageHeader) pagebuf)->pd_lower - SizeOfPageHeaderData;
	bool		own_spanbuf = false;
	KvlsmDataBlockStatus status = KVLSM_DATA_BLOCK_OK;

	if (block->flags & KVLSM_PAGE_FLAG_SPAN)
	{
		uint32		npieces = block->link;
		char	   *joined;

		if (npieces < 2 || npieces > KVLSM_MAX_PAYLOAD / KVLSM_PAGE_CAPACITY ||
			pageno + npieces > ndata)
			return KVLSM_DATA_BLOCK_BAD_SPAN;
		block->npages = npieces;
		/* raw pieces go straight to the target; compressed ones via a buffer */
		if (block->flags & KVLSM_PAGE_FLAG_COMPRESSED)
		{
			if (spanbuf == NULL)
			{
				spanbuf = palloc(KVLSM_MAX_PAYLOAD);
				own_spanbuf = true;
			}
			joined = spanbuf;
		}
		else
			joined = target;
		memcpy(joined, stored, storedlen);
		status = join_span(block, npieces, pagebuf, read_page, read_arg,
						   joined, &storedlen);
		stored = joined;
	}
	if (status == KVLSM_DATA_BLOCK_OK)
		status = unpack_payload(block, stored, storedlen, target);
	if (own_spanbuf)
		pfree(spanbuf);
	return status;
}

/*
 * Iterate over the entries of a block read by kvlsm_data_block_read,
 * rebuilding each whole key in 'keybuf' (KVLSM_MAX_KEY_SIZE bytes).  With
 * 'check_prefixes' an entry that shares more bytes than the previous key
 * has (the first: any) has bad lengths.
 */
void
kvlsm_data_block_iter_init(KvlsmDataBlockIter *it,
						   const KvlsmDataBlock *block,
						   char *keybuf, bool check_prefixes)
{
	memset(it, 0, sizeof(*it));
	it->data = block->data;
	it->datalen = block->datalen;
	it->nitems = block->nitems;
	it->varint = (block->flags & KVLSM_PAGE_FLAG_VARINT) != 0;
	it->check_prefixes = check_prefixes;
	it->key = keybuf;
}

/*
 * Decode the next entry, every length checked against the payload.
 * KVLSM_ENTRY_OK: it->key, keylen, eh and val describe it.  Otherwise
 * it->entryno is the entry at fault (or, at the end, the last one).
 */
KvlsmEntryStatus
kvlsm_data_block_next(KvlsmDataBlockIter *it)
{
	const char *p;
	int			keylen;
	int			hlen;

	if (it->next >= it->nitems)
		return KVLSM_ENTRY_END;
	it->entryno = it->next;
	if (it->off >= it->datalen)
		return KVLSM_ENTRY_PAST_END;
	p = it->data + it->off;
	if (it->varint)
	{
		hlen = kvlsm_entry_header_get(p, it->data + it->datalen, &it->eh);
		if (hlen < 0)
			return KVLSM_ENTRY_PAST_END;
	}
	else
	{
		if (it->off + KVLSM_ENTRY_HEADER_SIZE > it->datalen)
			return KVLSM_ENTRY_PAST_END;
		kvlsm_entry_header_decode(p, &it->eh);
		hlen = KVLSM_ENTRY_HEADER_SIZE;
	}
	keylen = it->eh.shared + it->eh.unshared;
	if (keylen > KVLSM_MAX_KEY_SIZE ||
		(it->check_prefixes && it->eh.shared > it->keylen) ||
		(uint64) it->off + hlen + it->eh.unshared + it->eh.vallen > it->datalen)
		return KVLSM_ENTRY_BAD_LENGTHS;
	memcpy(it->key + it->eh.shared, p + hlen, it->eh.unshared);
	it->keylen = keylen;
	it->val = p + hlen + it->eh.unshared;
	it->off += hlen + it->eh.unshared + it->eh.vallen;
	it->next++;
	return KVLSM_ENTRY_OK;
}

/* append 'v' as an unsigned LEB128 varint; returns the bytes written */
static int
put_varint(char *p, uint64 v)
{
	int			n = 0;

	while (v >= 0x80)
	{
		p[n++] = (char) (v | 0x80);
		v >>= 7;
	}
	p[n++] = (char) v;
	return n;
}

/*
 * Read a varint of at most 'maxbytes' bytes (the field's width) from
 * [*p, end) into *v; false when it runs past 'end' or is longer.
 */
static bool
get_varint(const char **p, const char *end, int maxbytes, uint64 *v)
{
	uint64		result = 0;
	int			i;

	for (i = 0; i < maxbytes && *p < end; i++)
	{
		uint8		byte = (uint8) *(*p)++;

		result |= (uint64) (byte & 0x7F) << (7 * i);
		if ((byte & 0x80) == 0)
		{
			*v = result;
			return true;
		}
	}
	return false;
}

/*
 * The varint entry header of KVLSM_PAGE_FLAG_VARINT blocks: write it at
 * 'p' (room for KVLSM_ENTRY_VARINT_MAX bytes); returns its length.
 */
int
kvlsm_entry_header_put(char *p, const KvlsmEntryHeader *eh)
{
	int			n = 0;

	n += put_varint(p + n, eh->flags);
	n += put_varint(p + n, eh->shared);
	n += put_varint(p + n, eh->unshared);
	n += put_varint(p + n, eh->vallen);
	n += put_varint(p + n, eh->seq);
	return n;
}

/*
 * Read a varint entry header from [p, end); returns its length, or -1 when
 * it runs past 'end' or a field is too long or too large for its width.
 */
int
kvlsm_entry_header_get(const char *p, const char *end, KvlsmEntryHeader *eh)
{
	const char *start = p;
	uint64		flags,
				shared,
				unshared,
				vallen,
				seq;

	if (!get_varint(&p, end, 3, &flags) || flags > PG_UINT16_MAX ||
		!get_varint(&p, end, 3, &shared) || shared > PG_UINT16_MAX ||
		!get_varint(&p, end, 3, &unshared) || unshared > PG_UINT16_MAX ||
		!get_varint(&p, end, 5, &vallen) || vallen > PG_UINT32_MAX ||
		!get_varint(&p, end, 10, &seq))
		return -1;
	eh->flags = (uint16) flags;
	eh->shared = (uint16) shared;
	eh->unshared = (uint16) unshared;
	eh->vallen = (uint32) vallen;
	eh->seq = seq;
	return p - start;
}
