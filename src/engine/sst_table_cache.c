/*-------------------------------------------------------------------------
 *
 * sst_table_cache.c
 *	  The per-backend cache of SSTable metadata: an SSTable's header and
 *	  index copied into backend memory on first use, the index searched
 *	  for a key, and the checked page reads that fill it.  Also the exact
 *	  key range from an SSTable's header page.  See sst_table_cache.h.
 *
 * Pages are read through shared buffers, one share lock at a time: the
 * page is copied out, the lock released, and the copy checked (crc32c,
 * type).  A page whose owner is not the expected SSTable (its extent was
 * freed by a compaction and reused) makes the read return false; the
 * caller returns KVLSM_SST_RETRY and its caller reloads the manifest.  A
 * header or index that contradicts itself or the manifest raises
 * ERRCODE_DATA_CORRUPTED.
 *
 * Callers: the readers in sst_reader.c (collect, pivot); kvlsm_sst_bounds
 * from the picker (compaction_pick.c) and the admin functions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/bufmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "kvlsm/sst_table_cache.h"

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
	ctl.keysize = sizeof(KvlsmSstCacheKey);
	ctl.entrysize = sizeof(KvlsmSstCacheEntry);
	ctl.hcxt = sst_cache_cxt;
	sst_cache = hash_create("kvlsm sstable cache", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Read one page of an SSTable, check it, and copy it to 'dst'.  Returns
 * false when the page no longer belongs to this SSTable.
 */
bool
kvlsm_sst_read_page(Relation rel, BlockNumber blkno, uint16 type, uint64 owner,
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

/*
 * The header page of the SSTable 'desc' names, checked against the
 * manifest.  False when the extent was recycled.
 */
static bool
read_header(Relation rel, const KvlsmSstDesc *desc, char *pagebuf,
			KvlsmSstHeader *hdr)
{
	if (!kvlsm_sst_read_page(rel, desc->start, KVLSM_PAGE_SST_HEADER, desc->id, pagebuf))
		return false;
	memcpy(hdr, PageGetContents((Page) pagebuf), sizeof(*hdr));
	if (hdr->id != desc->id || hdr->npages != desc->npages)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u: SSTable header does not match the manifest",
						RelationGetRelationName(rel), desc->start),
				 errdetail("Manifest says SSTable %llu with %u pages, header says %llu with %u pages.",
						   (unsigned long long) desc->id, desc->npages,
						   (unsigned long long) hdr->id, hdr->npages)));
	return true;
}

/* a new cache entry for the table 'hdr' describes, its index still empty */
static KvlsmSstCacheEntry *
enter_table(const KvlsmSstCacheKey *key, const KvlsmSstDesc *desc,
			const KvlsmSstHeader *hdr)
{
	KvlsmSstCacheEntry *e;
	bool		found;
	MemoryContext old;

	old = MemoryContextSwitchTo(sst_cache_cxt);
	e = hash_search(sst_cache, key, HASH_ENTER, &found);
	e->valid = false;
	e->start = desc->start;
	e->ndata = hdr->ndata;
	e->nindex_entries = hdr->index_entries;
	e->index_keys = palloc(sizeof(char *) * Max(1, hdr->index_entries));
	e->index_keylens = palloc(sizeof(uint16) * Max(1, hdr->index_entries));
	e->index_pagenos = palloc(sizeof(uint32) * Max(1, hdr->index_entries));
	e->bloom_nbits = hdr->bloom_nbits;
	e->bloom_k = hdr->bloom_k;
	e->bloom_start = desc->start + 1 + hdr->ndata + hdr->nindex;
	e->nbloom = hdr->nbloom;
	e->bloom_checked = palloc0((hdr->nbloom + 7) / 8);
	MemoryContextSwitchTo(old);
	return e;
}

/*
 * Copy the entries of index page 'i' into 'e', from entry *n on.  False
 * when the page was recycled.
 */
static bool
load_index_page(Relation rel, const KvlsmSstDesc *desc,
				const KvlsmSstHeader *hdr, KvlsmSstCacheEntry *e, uint32 i,
				uint32 *n, char *pagebuf)
{
	BlockNumber blk = desc->start + 1 + hdr->ndata + i;
	PageHeader	ph;
	uint32		off = 0;
	uint32		len;

	if (!kvlsm_sst_read_page(rel, blk, KVLSM_PAGE_SST_INDEX, desc->id, pagebuf))
		return false;
	ph = (PageHeader) pagebuf;
	len = ph->pd_lower - SizeOfPageHeaderData;
	while (off < len && *n < hdr->index_entries)
	{
		uint16		kl;
		char	   *p = pagebuf + SizeOfPageHeaderData + off;

		memcpy(&kl, p, 2);
		e->index_keys[*n] = MemoryContextAlloc(sst_cache_cxt, Max(kl, 1));
		memcpy(e->index_keys[*n], p + 2, kl);
		e->index_keylens[*n] = kl;
		memcpy(&e->index_pagenos[*n], p + 2 + kl, 4);
		/* blocks ascend from page 0 and lie within the data pages */
		if (e->index_pagenos[*n] >= hdr->ndata ||
			(*n == 0 && e->index_pagenos[*n] != 0) ||
			(*n > 0 && e->index_pagenos[*n] <= e->index_pagenos[*n - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: SSTable index entry %u points to data page %u",
							RelationGetRelationName(rel), blk, *n,
							e->index_pagenos[*n])));
		sst_cache_bytes += kl + 20;
		(*n)++;
		off += 2 + kl + 4;
	}
	return true;
}

/*
 * The cache entry of the SSTable 'desc' names, loaded from its header and
 * index pages on first use.  NULL when its extent was recycled.
 */
KvlsmSstCacheEntry *
kvlsm_sst_cache_load(Relation rel, KvlsmShared *sh, const KvlsmSstDesc *desc)
{
	KvlsmSstCacheKey key;
	KvlsmSstCacheEntry *e;
	PGAlignedBlock pagebuf;
	KvlsmSstHeader hdr;
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

	if (!read_header(rel, desc, pagebuf.data, &hdr))
		return NULL;
	e = enter_table(&key, desc, &hdr);

	n = 0;
	for (i = 0; i < hdr.nindex; i++)
	{
		if (!load_index_page(rel, desc, &hdr, e, i, &n, pagebuf.data))
		{
			hash_search(sst_cache, &key, HASH_REMOVE, NULL);
			return NULL;
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

/* index of the last data page whose first key is <= key (0 if none) */
uint32
kvlsm_sst_index_search(KvlsmSstCacheEntry *e, const KvlsmKeyOps *ops,
					   const char *key, int keylen)
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
		!kvlsm_sst_read_page(rel, desc->start, KVLSM_PAGE_SST_HEADER, desc->id, pagebuf.data))
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
