/*-------------------------------------------------------------------------
 *
 * page.h
 *	  On-disk page formats of one kvlsm LSM (a table or an index): metapage,
 *	  manifest pages, log pages and SSTable pages.  Owned by
 *	  src/engine/page.c.
 *
 * Every page has a standard PageHeader (so data checksums, pageinspect and
 * generic WAL work) and an opaque trailer in the special space that names
 * the page's type and its owner (SSTable id or log generation), so that a
 * reader can always tell a recycled page from the page it expected.  All
 * page contents live between the page header and pd_lower: GenericXLogFinish
 * zeroes the hole between pd_lower and pd_upper.
 *
 * Fixed blocks: 0 is the metapage; 1 and 2 are the two manifest slots.  An
 * install writes the slot that is not current and switches the metapage to
 * it in the same generic WAL record, so the manifest changes atomically.
 * A manifest larger than its slot page continues in an extent of
 * continuation pages written before that record (shadow paging, see
 * KvlsmManifestHeader).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_PAGE_H
#define KVLSM_PAGE_H

#include "postgres.h"

#include "storage/block.h"
#include "storage/bufpage.h"
#include "utils/guc.h"
#include "utils/rel.h"

#define KVLSM_MAGIC				0x4B564C53	/* "KVLS" */
#define KVLSM_FORMAT_VERSION	2

#define KVLSM_METAPAGE_BLKNO	0
#define KVLSM_MANIFEST_BLKNO_A	1
#define KVLSM_MANIFEST_BLKNO_B	2
#define KVLSM_FIRST_DATA_BLKNO	3

/* page types */
#define KVLSM_PAGE_META			1
#define KVLSM_PAGE_MANIFEST		2
#define KVLSM_PAGE_LOG			3
#define KVLSM_PAGE_SST_HEADER	4
#define KVLSM_PAGE_SST_DATA		5
#define KVLSM_PAGE_SST_INDEX	6
#define KVLSM_PAGE_SST_BLOOM	7

/* opaque flags */
#define KVLSM_PAGE_FLAG_LZ4		0x0001	/* data region is an lz4 blob */
#define KVLSM_PAGE_FLAG_ZSTD	0x0008	/* data region is a zstd frame */
#define KVLSM_PAGE_FLAG_COMPRESSED	(KVLSM_PAGE_FLAG_LZ4 | KVLSM_PAGE_FLAG_ZSTD)
#define KVLSM_PAGE_FLAG_VARINT	0x0010	/* data block: entry headers are
										 * varints (sst_block.h) */

/*
 * A record larger than a page (a row of up to MaxHeapTupleSize bytes with
 * STORAGE plain columns, as heap takes) spans several consecutive pages:
 * the first carries KVLSM_PAGE_FLAG_SPAN and, in 'link', how many pages
 * the span has; each following page carries KVLSM_PAGE_FLAG_CONT and, in
 * 'link' on SSTable data pages, its position in the span.  The stored bytes
 * (an SSTable data block, possibly lz4-compressed, or one serialized log
 * record) are simply cut into page-sized pieces, in order.  Log pages keep
 * 'link' for the chain, so there only the flags mark a span: its first page
 * holds the record's first piece with nitems = 1, each continuation page
 * the next piece with nitems = 0.  Every page of a span is written in one
 * generic WAL record, so a span is never seen in part.  span.h has the
 * functions that cut and join pieces, for every page kind.
 */
#define KVLSM_PAGE_FLAG_SPAN	0x0002	/* first page of a multi-page span */
#define KVLSM_PAGE_FLAG_CONT	0x0004	/* a later page of a span */

/* LSM kinds */
#define KVLSM_KIND_TABLE		1
#define KVLSM_KIND_INDEX		2

typedef struct KvlsmPageOpaqueData
{
	uint32		magic;
	uint16		page_type;
	uint16		flags;
	uint64		owner;			/* SSTable id, log generation, or 0 */
	BlockNumber link;			/* log page: previous page of its chain;
								 * SSTable data page: see FLAG_SPAN */
	uint32		nitems;			/* records on a log or data page */
	uint32		crc;			/* crc32c of SSTable pages, see page.c */
	uint32		datalen;		/* uncompressed payload length (data pages) */
} KvlsmPageOpaqueData;

typedef KvlsmPageOpaqueData *KvlsmPageOpaque;

#define KvlsmPageGetOpaque(page) \
	((KvlsmPageOpaque) PageGetSpecialPointer(page))

/* bytes usable between the page header and the opaque trailer */
#define KVLSM_PAGE_CAPACITY \
	(BLCKSZ - SizeOfPageHeaderData - MAXALIGN(sizeof(KvlsmPageOpaqueData)))

/* one memtable generation's log chain, as recorded in the metapage */
typedef struct KvlsmLogChain
{
	uint64		genid;			/* 0 = no such chain */
	BlockNumber head;
	BlockNumber tail;
	uint32		npages;
	uint32		tail_used;		/* pd_lower of the tail page (informative) */
} KvlsmLogChain;

typedef struct KvlsmMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		kind;
	uint32		flags;
	uint64		incarnation;	/* random, new for every filenode */
	uint64		rowid_hwm;		/* row ids below this may have been used */
	uint64		seq_hwm;		/* sequence numbers below this likewise */
	uint64		next_genid;
	uint64		next_sstid;
	KvlsmLogChain active;
	KvlsmLogChain frozen;
	BlockNumber manifest_blkno;
	uint32		pad0;
	/* free pages set aside for new log pages (refilled at installs) */
	BlockNumber log_reserve_start;
	uint32		log_reserve_npages;
	uint64		manifest_version;
	/* per-relation options (kvlsm_set_option / WITH (...)) */
	int32		compression;
	int32		compaction_style;	/* KVLSM_COMPACTION_LEVELED / _TIERED */
	int64		memtable_size;	/* bytes; flush trigger */
	/* persistent counters, updated only by records that touch the metapage */
	uint64		flushes;
	uint64		compactions;
	uint64		bytes_flushed;
	uint64		bytes_compacted_in;
	uint64		bytes_compacted_out;
	uint64		log_bytes;		/* bytes of log pages written */
	uint64		logical_bytes;	/* bytes of records ingested */
	int64		ttl_usecs;		/* option ttl; 0 = none */
	TransactionId created_xid;	/* transaction that created this filenode:
								 * its history begins there (named snapshots) */
	int32		bloom_bits_option;	/* option bloom_bits_per_key + 1; 0: not
									 * set (kvlsm.bloom_bits_per_key) */
	/*
	 * The transaction that deletes the TOAST values of the rows the latest
	 * compaction with such rows dropped (it does so after the install): if
	 * it never commits, they are left behind and the next compaction sweeps
	 * them first.  A full xid, so its fate is known however long it waits.
	 */
	FullTransactionId toast_fxid;

	/*
	 * Option bottommost_compression: KVLSM_BOTTOM_SAME (0, what files from
	 * before the option hold) or the spec + 1 (compress.h).  The option
	 * compression above is a spec too: a bare method is a spec of level 0.
	 */
	int32		bottom_compression;
	int32		pad1;
} KvlsmMetaPageData;

/* metapage flags */
#define KVLSM_META_TOAST_SWEEP	0x0001	/* TOAST values may be left behind */

typedef KvlsmMetaPageData *KvlsmMetaPage;

/*
 * The metapage of a file made before bottommost_compression existed ends
 * there (its pd_lower): the fields from there on read as zero, their
 * defaults (kvlsm_metapage_contents), and the first change of the
 * metapage extends pd_lower over them (kvlsm_metapage_cover), since
 * generic WAL and the page checksum see only what pd_lower covers.
 */
#define KVLSM_META_MIN_SIZE		offsetof(KvlsmMetaPageData, bottom_compression)

#define KvlsmPageGetMeta(page) ((KvlsmMetaPage) PageGetContents(page))

/*
 * Manifest: the set of live SSTables and free extents.  Key ranges in
 * descriptors are kept only up to KVLSM_DESC_KEY_MAX bytes (longer keys:
 * range unknown, always probed).
 */
#define KVLSM_DESC_KEY_MAX	16

typedef struct KvlsmSstDesc
{
	uint64		id;
	uint64		minseq;
	uint64		maxseq;
	uint64		nbytes;			/* logical bytes of its records */
	BlockNumber start;			/* header page */
	uint32		npages;
	uint32		nentries;
	uint16		level;
	uint8		minkeylen;		/* 0xFF: unknown */
	uint8		maxkeylen;
	uint8		minkey[KVLSM_DESC_KEY_MAX];
	uint8		maxkey[KVLSM_DESC_KEY_MAX];
} KvlsmSstDesc;

typedef struct KvlsmExtent
{
	BlockNumber start;
	uint32		npages;
} KvlsmExtent;

/*
 * A manifest is its header followed by one byte stream, KvlsmSstDesc[nsst]
 * then KvlsmExtent[nfree], cut into page-sized pieces: the first piece
 * after the header on the slot page, the rest on 'cont_npages' consecutive
 * continuation pages from 'cont_start'.  A continuation page is a manifest
 * page whose owner is the manifest's version and whose 'link' is its
 * position in the extent, so that a reader that finds a page recycled by a
 * later install (a standby replaying) notices and starts over.
 *
 * An install takes the continuation pages of the new manifest from the
 * free list, never those of the current one, writes them (generic WAL
 * records of their own: nothing refers to them yet), and then writes the
 * slot page and switches the metapage in one record; the current
 * manifest's continuation extent goes back to the free list in that same
 * manifest.  A crash before the switch leaves pages that the surviving
 * manifest still lists as free.  Why not an append-only log of change
 * records as RocksDB's MANIFEST file: docs/design-as-built.md.
 */
typedef struct KvlsmManifestHeader
{
	uint64		version;
	uint32		nsst;
	uint32		nfree;
	BlockNumber cont_start;
	uint32		cont_npages;	/* 0: the manifest fits its slot page */
} KvlsmManifestHeader;

/*
 * Most SSTables and free extents a manifest lists.  4096 tables of the
 * largest output size (256 MB) are a terabyte; the limits bound the
 * continuation pages to KVLSM_MAX_MANIFEST_PAGES - 1.
 */
#define KVLSM_MAX_SST 4096
#define KVLSM_MAX_FREE_EXTENTS 4096
#define KVLSM_MANIFEST_FIRST_CAPACITY \
	(KVLSM_PAGE_CAPACITY - MAXALIGN(sizeof(KvlsmManifestHeader)))
#define KVLSM_MAX_MANIFEST_PAGES \
	(1 + (KVLSM_MAX_SST * sizeof(KvlsmSstDesc) + \
		  KVLSM_MAX_FREE_EXTENTS * sizeof(KvlsmExtent) + \
		  KVLSM_PAGE_CAPACITY - 1) / KVLSM_PAGE_CAPACITY)

/* SSTable header page contents */
typedef struct KvlsmSstHeader
{
	uint64		id;
	uint64		minseq;
	uint64		maxseq;
	uint32		level;
	uint32		npages;			/* whole extent */
	uint32		nentries;
	uint32		ndata;			/* data pages start at start + 1 */
	uint32		nindex;			/* index pages follow data pages */
	uint32		nbloom;			/* bloom pages follow index pages */
	uint32		bloom_nbits;
	uint32		bloom_k;
	uint32		index_entries;
	uint16		minkeylen;
	uint16		maxkeylen;
	/* minkey bytes, then maxkey bytes */
} KvlsmSstHeader;

/* record format shared by log pages, SSTable data pages and the memtable */
typedef struct KvlsmRecordHeader
{
	uint64		seq;
	uint32		vallen;
	uint16		keylen;
	uint16		flags;
} KvlsmRecordHeader;

#define KVLSM_MAX_KEY_SIZE		2048

/*
 * Largest key plus value: a serialized log record of this size spans at
 * most KVLSM_MAX_SPAN_PAGES log pages, which with the metapage is what one
 * generic WAL record can hold (MAX_GENERIC_XLOG_PAGES), and an SSTable
 * entry of this size fits one data block (KVLSM_MAX_PAYLOAD).  Heap's
 * largest tuple, MaxHeapTupleSize, fits with room to spare.
 */
#define KVLSM_MAX_SPAN_PAGES	3
#define KVLSM_MAX_RECORD_SIZE \
	(KVLSM_MAX_SPAN_PAGES * KVLSM_PAGE_CAPACITY - 64)

/* compression of SSTable data pages (stored in the metapage) */
typedef enum KvlsmCompression
{
	KVLSM_COMPRESSION_NONE = 0,
	KVLSM_COMPRESSION_LZ4 = 1,
	KVLSM_COMPRESSION_ZSTD = 2
} KvlsmCompression;

/* compaction style of one relation (stored in the metapage) */
typedef enum KvlsmCompactionStyle
{
	KVLSM_COMPACTION_LEVELED = 0,
	KVLSM_COMPACTION_TIERED = 1
} KvlsmCompactionStyle;

/* page.c: GUCs, what a new metapage gets */
extern int	kvlsm_default_memtable_size_kb;
extern int	kvlsm_default_compression;	/* a spec (compress.h) */
extern int	kvlsm_default_bottom_compression;	/* KVLSM_BOTTOM_SAME or spec + 1 */
extern char *kvlsm_default_compression_string;
extern char *kvlsm_default_bottom_compression_string;
extern bool kvlsm_check_default_compression(char **newval, void **extra, GucSource source);
extern void kvlsm_assign_default_compression(const char *newval, void *extra);
extern bool kvlsm_check_default_bottom_compression(char **newval, void **extra,
												   GucSource source);
extern void kvlsm_assign_default_bottom_compression(const char *newval, void *extra);

extern void kvlsm_page_init(Page page, uint16 page_type, uint64 owner);
extern void kvlsm_metapage_contents(Page page, KvlsmMetaPageData *meta);
extern void kvlsm_metapage_cover(Page page);
extern uint32 kvlsm_page_crc(Page page);
extern void kvlsm_page_set_crc(Page page);
extern const char *kvlsm_page_type_name(uint16 page_type);
extern char *kvlsm_page_problem(Page page, uint16 expected_type);
extern void kvlsm_page_check(Relation rel, BlockNumber blkno, Page page,
							 uint16 expected_type);
extern bool kvlsm_page_owner_is(Page page, uint16 page_type, uint64 owner);
extern bool kvlsm_block_exists(Relation rel, BlockNumber blkno);
extern Buffer kvlsm_read_buffer(Relation rel, BlockNumber blkno);
extern void kvlsm_read_metapage(Relation rel, KvlsmMetaPageData *meta);
extern void kvlsm_meta_init(KvlsmMetaPageData *meta, uint32 kind);
extern void kvlsm_init_metapage_and_manifest(Relation rel, SMgrRelation srel,
											 ForkNumber forknum, uint32 kind,
											 bool log);

#endif							/* KVLSM_PAGE_H */
