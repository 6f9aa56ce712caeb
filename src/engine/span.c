/*-------------------------------------------------------------------------
 *
 * span.c
 *	  Cutting a record into page-sized pieces and joining them again: the
 *	  payload layout every multi-page record of kvlsm shares (log records,
 *	  SSTable data blocks, manifests).  See span.h for how each page kind
 *	  orders its pieces.
 *
 * These functions touch only page images the caller holds (a buffer it
 * has locked and registered with GenericXLogRegisterBuffer, or a private
 * copy); they take no lock and write no WAL.
 *
 * Callers: logwriter.c and logreader.c, sst_block_builder.c and
 * sst_block.c, manifest.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "kvlsm/span.h"

/* the number of pages a record of 'len' bytes takes (at least one) */
uint32
kvlsm_span_npieces(Size len)
{
	return Max(1, (len + KVLSM_PAGE_CAPACITY - 1) / KVLSM_PAGE_CAPACITY);
}

/*
 * Store the piece of 'stream' (len bytes) that starts at 'off' as the
 * payload of 'page' (initialized by kvlsm_page_init): up to a page's
 * capacity, nothing when 'off' is at or past the end.  Returns its bytes.
 */
Size
kvlsm_span_fill(Page page, const char *stream, Size len, Size off)
{
	Size		piece = off < len ? Min(len - off, KVLSM_PAGE_CAPACITY) : 0;

	if (piece > 0)
		memcpy(PageGetContents(page), stream + off, piece);
	((PageHeader) page)->pd_lower = SizeOfPageHeaderData + piece;
	return piece;
}

/* flag piece 'piece' of 'npieces': a single piece is no span */
void
kvlsm_span_mark(Page page, uint32 piece, uint32 npieces)
{
	KvlsmPageOpaque opaque = KvlsmPageGetOpaque(page);

	if (npieces < 2)
		return;
	opaque->flags |= (piece == 0) ? KVLSM_PAGE_FLAG_SPAN : KVLSM_PAGE_FLAG_CONT;
}

/* the bytes of the piece stored on 'page' */
Size
kvlsm_span_piece_len(Page page)
{
	return ((PageHeader) page)->pd_lower - SizeOfPageHeaderData;
}

/*
 * Append the piece on 'page' to 'dst', which holds *len bytes and has room
 * for 'cap'.  False, and nothing copied, if it would not fit.
 */
bool
kvlsm_span_append(Page page, char *dst, Size *len, Size cap)
{
	Size		piece = kvlsm_span_piece_len(page);

	if (*len + piece > cap)
		return false;
	memcpy(dst + *len, PageGetContents(page), piece);
	*len += piece;
	return true;
}
