/*-------------------------------------------------------------------------
 *
 * span.h
 *	  Records longer than a page, cut into page-sized pieces: one module
 *	  for the log (logwriter.c writes, logreader.c joins), SSTable data
 *	  blocks (sst_block_builder.c writes, sst_block.c joins) and manifest
 *	  continuation pages (manifest.c).  Owned by src/engine/span.c.
 *
 * Every piece is the byte range [i * KVLSM_PAGE_CAPACITY, ...) of the
 * record, stored between the page header and pd_lower.  Where a record has
 * more than one piece, the first page carries KVLSM_PAGE_FLAG_SPAN and the
 * others KVLSM_PAGE_FLAG_CONT (page.h).  How a reader finds the pieces in
 * order is the page kind's, because 'link' has a meaning of its own there
 * (the on-disk format predates this module and stays):
 *   - log pages: 'link' is the previous page of the chain, so the pieces
 *     are the chain's next pages; the first page has nitems = 1, the others
 *     nitems = 0;
 *   - SSTable data pages: the pieces are consecutive blocks; the first
 *     page's 'link' is the number of pieces, each later page's its position;
 *   - manifest continuation pages: consecutive blocks after the slot page,
 *     'link' the position and 'owner' the manifest version; the slot page
 *     holds the header and the stream's first bytes, so no flags are used.
 * A span is written in one generic WAL record (log, SSTable) or before the
 * metapage switch that makes it reachable (manifest), so no reader ever
 * sees part of one.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SPAN_H
#define KVLSM_SPAN_H

#include "postgres.h"

#include "storage/bufpage.h"

#include "kvlsm/page.h"

/* span.c */
extern uint32 kvlsm_span_npieces(Size len);
extern Size kvlsm_span_fill(Page page, const char *stream, Size len, Size off);
extern void kvlsm_span_mark(Page page, uint32 piece, uint32 npieces);
extern Size kvlsm_span_piece_len(Page page);
extern bool kvlsm_span_append(Page page, char *dst, Size *len, Size cap);

#endif							/* KVLSM_SPAN_H */
