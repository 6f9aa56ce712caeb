/*-------------------------------------------------------------------------
 *
 * page.c
 *	  Page initialisation, checksums and owner checks for kvlsm pages, and
 *	  the creation of a new LSM's metapage and manifest slots.
 *
 * Every kvlsm page carries a crc32c of its contents in the opaque trailer,
 * so corruption is found even on clusters initialised without data
 * checksums (Debian's initdb default); kvlsm_page_check() raises
 * ERRCODE_DATA_CORRUPTED naming the relation and block.  Pages rewritten in
 * place (metapage, log tail, manifest slots) get a new crc in the same
 * generic WAL record as the change: every writer calls kvlsm_page_set_crc()
 * just before GenericXLogFinish().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/storage.h"
#include "common/pg_prng.h"
#include "port/pg_crc32c.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"

#include "kvlsm/compress.h"
#include "kvlsm/page.h"

/* GUCs (registered in _PG_init): what a new metapage gets */
int			kvlsm_default_memtable_size_kb = 16 * 1024;
int			kvlsm_default_compression = KVLSM_COMPRESSION_LZ4;
int			kvlsm_default_bottom_compression = KVLSM_BOTTOM_SAME;
char	   *kvlsm_default_compression_string = NULL;
char	   *kvlsm_default_bottom_compression_string = NULL;

/*
 * kvlsm.default_compression and kvlsm.default_bottommost_compression take
 * the specs the options take ("lz4", "zstd:9"); the latter also "same",
 * the bottom level compressing as the others.  The parsed value travels
 * in the GUC's extra (malloc'd, as guc.c requires).
 */
static bool
check_spec_guc(char **newval, void **extra, bool same_ok)
{
	int32		spec;
	char	   *problem;
	int32	   *parsed;

	if (same_ok && pg_strcasecmp(*newval, "same") == 0)
		spec = -1;
	else if (!kvlsm_compression_parse(*newval, &spec, &problem))
	{
		GUC_check_errdetail("%s%s", problem,
							same_ok ? " \"same\" compresses the bottom level as the others." : "");
		return false;
	}
	parsed = malloc(sizeof(int32));
	if (parsed == NULL)
		return false;
	*parsed = spec;
	*extra = parsed;
	return true;
}

bool
kvlsm_check_default_compression(char **newval, void **extra, GucSource source)
{
	return check_spec_guc(newval, extra, false);
}

void
kvlsm_assign_default_compression(const char *newval, void *extra)
{
	kvlsm_default_compression = *(int32 *) extra;
}

bool
kvlsm_check_default_bottom_compression(char **newval, void **extra, GucSource source)
{
	return check_spec_guc(newval, extra, true);
}

void
kvlsm_assign_default_bottom_compression(const char *newval, void *extra)
{
	int32		spec = *(int32 *) extra;

	kvlsm_default_bottom_compression = spec < 0 ? KVLSM_BOTTOM_SAME : spec + 1;
}

void
kvlsm_page_init(Page page, uint16 page_type, uint64 owner)
{
	KvlsmPageOpaque opaque;

	PageInit(page, BLCKSZ, MAXALIGN(sizeof(KvlsmPageOpaqueData)));
	opaque = KvlsmPageGetOpaque(page);
	opaque->magic = KVLSM_MAGIC;
	opaque->page_type = page_type;
	opaque->flags = 0;
	opaque->owner = owner;
	opaque->link = InvalidBlockNumber;
	opaque->nitems = 0;
	opaque->crc = 0;
	opaque->datalen = 0;
}

/*
 * crc32c over the payload and the trailer (with its crc field taken as 0).
 * The page header is left out: pd_lsn and pd_checksum change when the page
 * is written, and they are PostgreSQL's to check.
 */
uint32
kvlsm_page_crc(Page page)
{
	PageHeader	phdr = (PageHeader) page;
	KvlsmPageOpaqueData opaque;
	pg_crc32c	crc;
	Size		len;

	len = phdr->pd_lower > SizeOfPageHeaderData ?
		phdr->pd_lower - SizeOfPageHeaderData : 0;
	if (len > KVLSM_PAGE_CAPACITY)
		len = KVLSM_PAGE_CAPACITY;
	memcpy(&opaque, KvlsmPageGetOpaque(page), sizeof(opaque));
	opaque.crc = 0;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, (char *) page + SizeOfPageHeaderData, len);
	COMP_CRC32C(crc, &opaque, sizeof(opaque));
	COMP_CRC32C(crc, &phdr->pd_lower, sizeof(phdr->pd_lower));
	FIN_CRC32C(crc);
	return crc;
}

void
kvlsm_page_set_crc(Page page)
{
	KvlsmPageGetOpaque(page)->crc = kvlsm_page_crc(page);
}

const char *
kvlsm_page_type_name(uint16 t)
{
	switch (t)
	{
		case KVLSM_PAGE_META:
			return "metapage";
		case KVLSM_PAGE_MANIFEST:
			return "manifest page";
		case KVLSM_PAGE_LOG:
			return "log page";
		case KVLSM_PAGE_SST_HEADER:
			return "SSTable header page";
		case KVLSM_PAGE_SST_DATA:
			return "SSTable data page";
		case KVLSM_PAGE_SST_INDEX:
			return "SSTable index page";
		case KVLSM_PAGE_SST_BLOOM:
			return "SSTable bloom filter page";
	}
	return "unknown page";
}

/*
 * What is wrong with a page that a reader expects to be of the given type,
 * or NULL when nothing is: sane header, our magic, the type, and for
 * SSTable pages the checksum.  Never raises an error, so kvlsm_verify can
 * go on past a bad page; the message (palloc'd) names the problem without
 * the relation and block, which the caller adds.
 */
char *
kvlsm_page_problem(Page page, uint16 expected_type)
{
	PageHeader	phdr = (PageHeader) page;
	KvlsmPageOpaque opaque;

	if (PageIsNew(page))
		return psprintf("uninitialized page where a %s was expected",
						kvlsm_page_type_name(expected_type));

	if (phdr->pd_special != BLCKSZ - MAXALIGN(sizeof(KvlsmPageOpaqueData)) ||
		phdr->pd_lower < SizeOfPageHeaderData ||
		phdr->pd_lower > phdr->pd_special)
		return psprintf("corrupted page header (pd_lower %u, pd_special %u)",
						phdr->pd_lower, phdr->pd_special);

	opaque = KvlsmPageGetOpaque(page);
	if (opaque->magic != KVLSM_MAGIC)
		return psprintf("bad magic number (expected 0x%08X, found 0x%08X)",
						KVLSM_MAGIC, opaque->magic);

	if (opaque->page_type != expected_type)
		return psprintf("%s where a %s was expected",
						kvlsm_page_type_name(opaque->page_type),
						kvlsm_page_type_name(expected_type));

	{
		uint32		crc = kvlsm_page_crc(page);

		if (crc != opaque->crc)
			return psprintf("checksum mismatch in %s (stored crc32c 0x%08X, computed 0x%08X)",
							kvlsm_page_type_name(expected_type), opaque->crc, crc);
	}
	return NULL;
}

/*
 * Validate a page as kvlsm_page_problem does, raising ERRCODE_DATA_CORRUPTED
 * that names the relation and block.  The caller holds at least a share
 * lock on the buffer, or checks a private copy.
 */
void
kvlsm_page_check(Relation rel, BlockNumber blkno, Page page,
				 uint16 expected_type)
{
	char	   *problem = kvlsm_page_problem(page, expected_type);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: %s",
						RelationGetRelationName(rel), blkno, problem)));
}

/* is this page (still) the given owner's page of that type? */
bool
kvlsm_page_owner_is(Page page, uint16 page_type, uint64 owner)
{
	KvlsmPageOpaque opaque;

	if (PageIsNew(page))
		return false;
	opaque = KvlsmPageGetOpaque(page);
	return opaque->magic == KVLSM_MAGIC &&
		opaque->page_type == page_type &&
		opaque->owner == owner;
}

/*
 * Is 'blkno' inside the main fork?  Every page a reader follows from the
 * manifest is checked first, so that a damaged pointer is reported as such
 * instead of as a short read.  RelationGetNumberOfBlocks() is too dear for
 * that: for a table it goes through the table AM's relation_size, and a
 * file-size system call per page read showed in point-lookup profiles.  The
 * file only grows (TRUNCATE and rewrites give a new relfilenode), so the
 * size smgr remembers from this backend's last look or extension is a lower
 * bound: a block below it exists, and only a block at or above it needs a
 * fresh look.
 */
bool
kvlsm_block_exists(Relation rel, BlockNumber blkno)
{
	SMgrRelation srel = RelationGetSmgr(rel);
	BlockNumber known = srel->smgr_cached_nblocks[MAIN_FORKNUM];

	if (known != InvalidBlockNumber && blkno < known)
		return true;
	return blkno < smgrnblocks(srel, MAIN_FORKNUM);
}

Buffer
kvlsm_read_buffer(Relation rel, BlockNumber blkno)
{
	if (!kvlsm_block_exists(rel, blkno))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" refers to block %u beyond its end",
						RelationGetRelationName(rel), blkno)));
	return ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
}

/* copy the metapage out (one buffer lock, released before returning) */
void
kvlsm_read_metapage(Relation rel, KvlsmMetaPageData *meta)
{
	Buffer		buf;
	Page		page;

	if (!kvlsm_block_exists(rel, KVLSM_METAPAGE_BLKNO))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" has no metapage",
						RelationGetRelationName(rel))));
	buf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	kvlsm_page_check(rel, KVLSM_METAPAGE_BLKNO, page, KVLSM_PAGE_META);
	kvlsm_metapage_contents(page, meta);
	UnlockReleaseBuffer(buf);

	if (meta->magic != KVLSM_MAGIC || meta->version != KVLSM_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" has an unsupported metapage (magic 0x%08X, version %u)",
						RelationGetRelationName(rel), meta->magic, meta->version)));
}

/*
 * Copy a metapage's contents: what pd_lower covers, zeros past it (a file
 * from before the later fields, see KVLSM_META_MIN_SIZE).
 */
void
kvlsm_metapage_contents(Page page, KvlsmMetaPageData *meta)
{
	Size		have = ((PageHeader) page)->pd_lower - SizeOfPageHeaderData;

	memset(meta, 0, sizeof(KvlsmMetaPageData));
	memcpy(meta, KvlsmPageGetMeta(page), Min(have, sizeof(KvlsmMetaPageData)));
}

/* before a change of a metapage: let pd_lower cover every field */
void
kvlsm_metapage_cover(Page page)
{
	PageHeader	phdr = (PageHeader) page;
	LocationIndex end = ((char *) KvlsmPageGetMeta(page) +
						 sizeof(KvlsmMetaPageData)) - (char *) page;

	if (phdr->pd_lower < end)
	{
		/* what an old file holds past its pd_lower was never meant */
		memset((char *) page + phdr->pd_lower, 0, end - phdr->pd_lower);
		phdr->pd_lower = end;
	}
}

void
kvlsm_meta_init(KvlsmMetaPageData *meta, uint32 kind)
{
	memset(meta, 0, sizeof(*meta));
	meta->magic = KVLSM_MAGIC;
	meta->version = KVLSM_FORMAT_VERSION;
	meta->kind = kind;
	/* zero is never a valid incarnation: shared entries use it as "none" */
	do
	{
		meta->incarnation = pg_prng_uint64(&pg_global_prng_state);
	} while (meta->incarnation == 0);
	meta->rowid_hwm = 0;
	meta->seq_hwm = 1;
	meta->next_genid = 2;
	meta->next_sstid = 1;
	meta->active.genid = 1;
	meta->active.head = InvalidBlockNumber;
	meta->active.tail = InvalidBlockNumber;
	meta->frozen.genid = 0;
	meta->frozen.head = InvalidBlockNumber;
	meta->frozen.tail = InvalidBlockNumber;
	meta->manifest_blkno = KVLSM_MANIFEST_BLKNO_A;
	meta->log_reserve_start = InvalidBlockNumber;
	meta->log_reserve_npages = 0;
	meta->manifest_version = 1;
	meta->compression = kvlsm_default_compression;
	meta->bottom_compression = kvlsm_default_bottom_compression;
	meta->memtable_size = (int64) kvlsm_default_memtable_size_kb * 1024;
}

/*
 * Write the metapage and both manifest slots of a brand-new filenode at
 * smgr level.  relation_set_new_filenode runs while rel->rd_node still names
 * the old file, so the buffer manager cannot be used; like an index build's
 * metapage, the pages are WAL-logged with log_newpage and synced.
 */
void
kvlsm_init_metapage_and_manifest(Relation rel, SMgrRelation srel,
								 ForkNumber forknum, uint32 kind, bool log)
{
	PGAlignedBlock buf;
	Page		page = (Page) buf.data;
	BlockNumber blkno;
	KvlsmMetaPageData meta;

	kvlsm_meta_init(&meta, kind);
	meta.created_xid = GetCurrentTransactionIdIfAny();

	for (blkno = 0; blkno < KVLSM_FIRST_DATA_BLKNO; blkno++)
	{
		if (blkno == KVLSM_METAPAGE_BLKNO)
		{
			kvlsm_page_init(page, KVLSM_PAGE_META, meta.incarnation);
			memcpy(KvlsmPageGetMeta(page), &meta, sizeof(meta));
			((PageHeader) page)->pd_lower =
				((char *) KvlsmPageGetMeta(page) + sizeof(meta)) - (char *) page;
			kvlsm_page_set_crc(page);
		}
		else
		{
			KvlsmManifestHeader *mh;

			kvlsm_page_init(page, KVLSM_PAGE_MANIFEST, meta.incarnation);
			mh = (KvlsmManifestHeader *) PageGetContents(page);
			memset(mh, 0, sizeof(*mh));
			/* slot A holds version 1, slot B is unused until the first install */
			mh->version = (blkno == KVLSM_MANIFEST_BLKNO_A) ? 1 : 0;
			((PageHeader) page)->pd_lower =
				((char *) mh + MAXALIGN(sizeof(*mh))) - (char *) page;
			kvlsm_page_set_crc(page);
		}
		if (log)
			log_newpage(&srel->smgr_rnode.node, forknum, blkno, page, true);
		PageSetChecksumInplace(page, blkno);
		smgrextend(srel, forknum, blkno, buf.data, true);
	}
	smgrimmedsync(srel, forknum);
}
