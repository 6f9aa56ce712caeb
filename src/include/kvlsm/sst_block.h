/*-------------------------------------------------------------------------
 *
 * sst_block.h
 *	  The format of an SSTable data block and its one decoder: the entry
 *	  header, the pages a block is stored on, and reading a block's entries
 *	  back.  Owned by src/engine/sst_block.c.
 *
 * A data block's payload is a run of entries in (key asc, seq desc) order:
 *
 *	  the entry header: in blocks with KVLSM_PAGE_FLAG_VARINT (all that
 *	  kvlsm 0.3 writes), five unsigned LEB128 varints, flags, shared,
 *	  unshared, vallen and seq, mostly 1 byte each and 4-5 for seq; in
 *	  older blocks the fixed KvlsmEntryHeader (KVLSM_ENTRY_HEADER_SIZE
 *	  bytes, unaligned), of which a row's entry wasted about 10
 *	  key bytes after the 'shared' bytes it has in common with the previous
 *	  key ('unshared' of them); 'shared' is 0 every KVLSM_RESTART_INTERVAL
 *	  entries, starting with the first
 *	  value ('vallen' bytes)
 *
 * The payload is stored on one data page or, when even its stored form is
 * larger than a page (only a record larger than a page causes that), on a
 * span of consecutive data pages (page.h): the first page has
 * KVLSM_PAGE_FLAG_SPAN and 'link' = the number of pages, each later one
 * KVLSM_PAGE_FLAG_CONT and 'link' = its position.  The stored bytes are
 * lz4-compressed when that saved something (KVLSM_PAGE_FLAG_LZ4), and cut
 * into page-sized pieces in order.  The first page's trailer holds the
 * number of entries ('nitems') and the payload's length ('datalen').  The
 * SSTable's index names the first page of every block.
 *
 * Decoding never raises an error: every check of the stored bytes returns
 * a status naming what is wrong, which the reader (sst_reader.c) turns
 * into its ereport and the walker (sst_walk.c) into a reported problem.
 * The caller reads the pages (through its KvlsmSstPageRead), so it decides
 * what a page it cannot use means (a recycled extent, a damaged page).
 * No locks are held and no WAL is written here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SST_BLOCK_H
#define KVLSM_SST_BLOCK_H

#include "postgres.h"

#include "storage/block.h"

#include "kvlsm/page.h"

#define KVLSM_RESTART_INTERVAL 16
/* uncompressed payload of one data page: up to four pages' worth with lz4 */
#define KVLSM_MAX_PAYLOAD (4 * KVLSM_PAGE_CAPACITY)

/* on-page entry header; unaligned, always accessed with memcpy */
typedef struct KvlsmEntryHeader
{
	uint16		shared;
	uint16		unshared;
	uint32		vallen;
	uint64		seq;
	uint16		flags;
} KvlsmEntryHeader;

#define KVLSM_ENTRY_HEADER_SIZE	(2 + 2 + 4 + 8 + 2)
/* the longest varint header: each field's width in 7-bit groups */
#define KVLSM_ENTRY_VARINT_MAX	(3 + 3 + 3 + 5 + 10)

static inline void
kvlsm_entry_header_decode(const char *p, KvlsmEntryHeader *eh)
{
	memcpy(&eh->shared, p, 2);
	memcpy(&eh->unshared, p + 2, 2);
	memcpy(&eh->vallen, p + 4, 4);
	memcpy(&eh->seq, p + 8, 8);
	memcpy(&eh->flags, p + 16, 2);
}

static inline void
kvlsm_entry_header_encode(char *p, const KvlsmEntryHeader *eh)
{
	memcpy(p, &eh->shared, 2);
	memcpy(p + 2, &eh->unshared, 2);
	memcpy(p + 4, &eh->vallen, 4);
	memcpy(p + 8, &eh->seq, 8);
	memcpy(p + 16, &eh->flags, 2);
}

/*
 * Copy SSTable page 'blkno' to 'dst' (BLCKSZ bytes).  False when it cannot
 * be used; the function (the caller's) knows why and has said so if it
 * should.
 */
typedef bool (*KvlsmSstPageRead) (void *arg, BlockNumber blkno, char *dst);

/* what decoding a data block found */
typedef enum KvlsmDataBlockStatus
{
	KVLSM_DATA_BLOCK_OK,
	KVLSM_DATA_BLOCK_UNREADABLE,	/* a piece's page could not be read */
	KVLSM_DATA_BLOCK_MID_SPAN,	/* the first page is a later piece of a span */
	KVLSM_DATA_BLOCK_BAD_SPAN,	/* a span of an impossible number of pages */
	KVLSM_DATA_BLOCK_BAD_PIECE, /* a page is not the next piece of the span */
	KVLSM_DATA_BLOCK_TOO_LONG,	/* datalen exceeds KVLSM_MAX_PAYLOAD */
	KVLSM_DATA_BLOCK_BAD_COMPRESSED,	/* does not decompress to datalen bytes */
	KVLSM_DATA_BLOCK_SHORT		/* datalen exceeds the stored bytes */
} KvlsmDataBlockStatus;

/* one data block being decoded */
typedef struct KvlsmDataBlock
{
	BlockNumber blkno;			/* its first page */
	/* from the first page's trailer */
	uint16		flags;			/* KVLSM_PAGE_FLAG_* */
	uint32		link;			/* span: pages; continuation: position */
	uint32		nitems;			/* entries */
	uint32		datalen;		/* payload bytes */
	uint32		npages;			/* pages it takes: 1 until a span is accepted */
	char	   *data;			/* the payload, once read */
	/* KVLSM_DATA_BLOCK_BAD_PIECE: the page at fault, the piece expected there */
	BlockNumber bad_blkno;
	uint32		bad_piece;
} KvlsmDataBlock;

/* what decoding an entry found */
typedef enum KvlsmEntryStatus
{
	KVLSM_ENTRY_OK,
	KVLSM_ENTRY_END,			/* every entry of the block was returned */
	KVLSM_ENTRY_PAST_END,		/* the entry's header runs past the payload */
	KVLSM_ENTRY_BAD_LENGTHS		/* its key or value does not fit */
} KvlsmEntryStatus;

/* the entries of a decoded block, in stored order */
typedef struct KvlsmDataBlockIter
{
	const char *data;
	uint32		datalen;
	uint32		nitems;
	bool		varint;			/* KVLSM_PAGE_FLAG_VARINT headers */
	bool		check_prefixes; /* a key shares no more than the last has */
	uint32		off;			/* where the next entry starts */
	uint32		next;			/* number of the next entry */
	/* the entry last returned, or the one at fault */
	uint32		entryno;
	KvlsmEntryHeader eh;
	char	   *key;			/* its whole key, in the caller's buffer */
	int			keylen;
	const char *val;			/* its value, eh.vallen bytes */
} KvlsmDataBlockIter;

/* sst_block.c */
extern KvlsmDataBlockStatus kvlsm_data_block_start(KvlsmDataBlock *block,
												   BlockNumber blkno,
												   const char *page);
extern KvlsmDataBlockStatus kvlsm_data_block_read(KvlsmDataBlock *block,
												  uint32 pageno, uint32 ndata,
												  char *pagebuf,
												  KvlsmSstPageRead read_page,
												  void *read_arg,
												  char *target, char *spanbuf);
extern void kvlsm_data_block_iter_init(KvlsmDataBlockIter *it,
									   const KvlsmDataBlock *block,
									   char *keybuf, bool check_prefixes);
extern KvlsmEntryStatus kvlsm_data_block_next(KvlsmDataBlockIter *it);
extern int	kvlsm_entry_header_put(char *p, const KvlsmEntryHeader *eh);
extern int	kvlsm_entry_header_get(const char *p, const char *end, KvlsmEntryHeader *eh);

#endif							/* KVLSM_SST_BLOCK_H */
