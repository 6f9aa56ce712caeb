/*-------------------------------------------------------------------------
 *
 * lsm.c
 *	  The LSM tree of one relation: shared registry of attached LSMs,
 *	  loading and catching up the memtable from log pages, record writes,
 *	  merged reads, flush to L0, compaction and the manifest.
 *
 * Pages are the truth; the KvlsmShared entry is a cache that can always be
 * rebuilt from them (DESIGN.md section 1).  On a primary the memtable is
 * "authoritative": every record enters it before its log copy is written.
 * On a hot standby it is rebuilt from the replayed log pages and caught up
 * at every attach; after promotion the first attach catches up once more
 * and takes over.
 *
 * The manifest (live SSTables and free extents) lives in one of two fixed
 * slots; an install writes the other slot and switches the metapage to it
 * in the same generic WAL record, so it is atomic.  Installs and flushes
 * are serialised by the flush lock, a heavyweight page lock on the
 * metapage block (interruptible and seen by the deadlock detector, unlike
 * an LWLock held across I/O).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/transam.h"
#include "access/xloginsert.h"
#include "access/xact.h"
#include "catalog/storage.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/relfilenodemap.h"
#include "access/relation.h"
#include "executor/instrument.h"

#include "kvlsm/logwriter.h"
#include "kvlsm/lsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/compaction.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/scheduler.h"
#include "kvlsm/sstable.h"

/* GUCs (registered in _PG_init) */
int			kvlsm_max_relations = 1024;
int			kvlsm_bloom_bits_per_key = 10;
int			kvlsm_l0_slowdown_trigger = 20;
int			kvlsm_l0_stop_trigger = 36;
bool		kvlsm_am_worker = false;

#define ALLOC_CHUNK		8192	/* row ids / sequence numbers per reservation */

typedef struct KvlsmRegistry
{
	LWLock	   *lock;			/* protects the hash table */
	int			dsa_tranche;	/* of the manifest area's lock */
} KvlsmRegistry;

static KvlsmRegistry *registry = NULL;
static HTAB *lsm_hash = NULL;
static int	lsm_tranche_id = 0;

/*
 * The manifest caches of all LSMs live in one DSA area, created in place in
 * the main shared memory segment (the postmaster cannot create DSM
 * segments; like the shared statistics of PostgreSQL 15).  It grows by DSM
 * segments when a megabyte (about 13000 descriptors) is not enough.
 */
#define KVLSM_DSA_INITIAL_SIZE	((Size) 1024 * 1024)

static void *dsa_place = NULL;
static dsa_area *manifest_area = NULL;

static bool manifest_fits_in_place(Relation rel, KvlsmManifestCopy *mc,
								   BlockNumber below);
static BlockNumber extension_start(Relation rel, const KvlsmManifestCopy *mc);

/*
 * Backend-local cache of filenode -> incarnation, so that an attach need not
 * read the metapage.  rd_amcache is left to the access methods.  A stale
 * entry (filenode number reused after DROP) only sends attach down its slow
 * path, which reads the metapage and corrects it.
 */
typedef struct IncarnationEntry
{
	KvlsmLsmTag tag;
	uint64		incarnation;
} IncarnationEntry;

static HTAB *incarnation_cache = NULL;

/* how the layer above orders the keys of a relation's LSM */
static KvlsmKeyOpsProvider keyops_provider = NULL;

void
kvlsm_set_keyops_provider(KvlsmKeyOpsProvider provider)
{
	keyops_provider = provider;
}

const KvlsmKeyOps *
kvlsm_keyops(Relation rel)
{
	if (keyops_provider != NULL)
		return keyops_provider(rel);
	return &kvlsm_bytewise_keyops;
}

static int
bytewise_cmp(const char *a, int alen, const char *b, int blen, void *arg)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

KvlsmKeyOps kvlsm_bytewise_keyops = {bytewise_cmp, NULL, NULL};

Size
kvlsm_lsm_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(KvlsmRegistry));

	size = add_size(size, hash_estimate_size(kvlsm_max_relations, sizeof(KvlsmShared)));
	size = add_size(size, KVLSM_DSA_INITIAL_SIZE);
	return size;
}

void
kvlsm_lsm_request_locks(void)
{
	RequestNamedLWLockTranche("kvlsm", 1);
}

void
kvlsm_lsm_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	registry = ShmemInitStruct("kvlsm registry", sizeof(KvlsmRegistry), &found);
	dsa_place = ShmemInitStruct("kvlsm manifest area", KVLSM_DSA_INITIAL_SIZE, &found);
	if (!IsUnderPostmaster)
	{
		dsa_area   *area;

		registry->lock = &(GetNamedLWLockTranche("kvlsm"))->lock;
		registry->dsa_tranche = LWLockNewTrancheId();
		/* named here too, so that backends forked later show the name */
		LWLockRegisterTranche(registry->dsa_tranche, "kvlsm_manifest_area");
		area = dsa_create_in_place(dsa_place, KVLSM_DSA_INITIAL_SIZE,
								   registry->dsa_tranche, NULL);
		/* outlives every backend; the postmaster itself never uses it */
		dsa_pin(area);
		dsa_detach(area);
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(KvlsmLsmTag);
	info.entrysize = sizeof(KvlsmShared);
	lsm_hash = ShmemInitHash("kvlsm lsm table", kvlsm_max_relations,
							 kvlsm_max_relations, &info,
							 HASH_ELEM | HASH_BLOBS);
	lsm_tranche_id = registry->lock->tranche;
}

static void
make_tag(Relation rel, KvlsmLsmTag *tag)
{
	memset(tag, 0, sizeof(*tag));
	tag->node = rel->rd_node;
	tag->backend = RelationUsesLocalBuffers(rel) ? MyBackendId : InvalidBackendId;
}

static uint64
rel_incarnation(Relation rel, const KvlsmLsmTag *tag)
{
	IncarnationEntry *e;
	bool		found;
	KvlsmMetaPageData meta;

	if (incarnation_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(KvlsmLsmTag);
		ctl.entrysize = sizeof(IncarnationEntry);
		incarnation_cache = hash_create("kvlsm incarnations", 64, &ctl,
										HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(incarnation_cache, tag, HASH_FIND, NULL);
	if (e != NULL)
		return e->incarnation;
	kvlsm_read_metapage(rel, &meta);
	e = hash_search(incarnation_cache, tag, HASH_ENTER, &found);
	e->incarnation = meta.incarnation;
	return meta.incarnation;
}

static void
remember_incarnation(const KvlsmLsmTag *tag, uint64 incarnation)
{
	IncarnationEntry *e;
	bool		found;

	if (incarnation_cache == NULL)
		return;
	e = hash_search(incarnation_cache, tag, HASH_ENTER, &found);
	e->incarnation = incarnation;
}

/* this backend's mapping of the manifest area, made at first use */
static dsa_area *
get_manifest_area(void)
{
	if (manifest_area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(registry->dsa_tranche, "kvlsm_manifest_area");
		manifest_area = dsa_attach_in_place(dsa_place, NULL);
		/* kept for the backend's lifetime, not a resource owner's */
		dsa_pin_mapping(manifest_area);
		MemoryContextSwitchTo(old);
	}
	return manifest_area;
}

/* the cached descriptors; the caller holds the LSM lock (either mode) */
KvlsmSstDesc *
kvlsm_shared_ssts(KvlsmShared *sh)
{
	if (sh->nsst == 0)
		return NULL;
	return (KvlsmSstDesc *) dsa_get_address(get_manifest_area(), sh->sst);
}

/* the same, copied into the current memory context; the caller holds the lock */
static KvlsmSstDesc *
copy_ssts_locked(KvlsmShared *sh)
{
	KvlsmSstDesc *copy = palloc(sizeof(KvlsmSstDesc) * Max(sh->nsst, 1));

	if (sh->nsst > 0)
		memcpy(copy, kvlsm_shared_ssts(sh), sizeof(KvlsmSstDesc) * sh->nsst);
	return copy;
}

/* a copy of the cached descriptors in the current memory context */
KvlsmSstDesc *
kvlsm_copy_ssts(KvlsmShared *sh, int *nsst)
{
	KvlsmSstDesc *copy;

	LWLockAcquire(&sh->lock, LW_SHARED);
	*nsst = sh->nsst;
	copy = copy_ssts_locked(sh);
	LWLockRelease(&sh->lock);
	return copy;
}

/*
 * Room in the manifest area for 'n' descriptors, taken before an install
 * is WAL-logged: failing to get it afterwards would leave the cache behind
 * the installed manifest.
 */
static dsa_pointer
alloc_ssts(uint32 n)
{
	if (n == 0)
		return InvalidDsaPointer;
	return dsa_allocate(get_manifest_area(), sizeof(KvlsmSstDesc) * n);
}

/*
 * Make 'descs' the cached descriptors, in 'dp' from alloc_ssts.  The caller
 * holds the LSM lock exclusively.  Writers check the L0 table count on
 * every row (write stalls): it is counted here, not on the insert path.
 */
static void
set_ssts(KvlsmShared *sh, dsa_pointer dp, const KvlsmSstDesc *descs, uint32 n)
{
	dsa_area   *area = get_manifest_area();
	uint32		i;

	if (n > 0)
		memcpy(dsa_get_address(area, dp), descs, sizeof(KvlsmSstDesc) * n);
	if (DsaPointerIsValid(sh->sst))
		dsa_free(area, sh->sst);
	sh->sst = dp;
	sh->nsst = n;
	sh->nl0 = 0;
	for (i = 0; i < n; i++)
		if (descs[i].level == 0)
			sh->nl0++;
}

/* forget the cached descriptors (the LSM lock is held exclusively) */
static void
clear_ssts(KvlsmShared *sh)
{
	set_ssts(sh, InvalidDsaPointer, NULL, 0);
	sh->manifest_version = 0;
}

/* read the manifest named by the metapage into the shared entry */
static void
load_manifest(Relation rel, KvlsmShared *sh, const KvlsmMetaPageData *meta)
{
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));

	kvlsm_manifest_read(rel, meta, mc);
	set_ssts(sh, alloc_ssts(mc->hdr.nsst), mc->sst, mc->hdr.nsst);
	sh->manifest_version = mc->hdr.version;
	pfree(mc);
}

/*
 * Apply the log pages of 'chain' that 'gen' has not seen yet.  Pages are
 * linked backwards from the tail, so walk back to the last page applied,
 * then apply forward.  The caller holds the LSM lock exclusively.
 */
static bool
replay_chain(Relation rel, KvlsmShared *sh, KvlsmMemGen *gen,
			 const KvlsmLogChain *chain, const KvlsmKeyOps *ops)
{
	char	  **pages = NULL;
	BlockNumber *blocks = NULL;
	int			n = 0,
				cap = 0;
	BlockNumber b = chain->tail;
	int			i;

	while (b != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page;
		char	   *copy;

		CHECK_FOR_INTERRUPTS();
		buf = kvlsm_read_buffer(rel, b);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		copy = palloc(BLCKSZ);
		memcpy(copy, page, BLCKSZ);
		UnlockReleaseBuffer(buf);
		if (!kvlsm_page_owner_is((Page) copy, KVLSM_PAGE_LOG, chain->genid))
		{
			/*
			 * On a standby the chain can be retired and its pages reused
			 * while we walk it: start over from a fresh metapage.  On a
			 * primary the chain is stable under the LSM lock, so this is
			 * corruption.
			 */
			if (RecoveryInProgress())
			{
				for (i = 0; i < n; i++)
					pfree(pages[i]);
				pfree(copy);
				return false;
			}
			kvlsm_page_check(rel, b, (Page) copy, KVLSM_PAGE_LOG);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: log page of generation %llu found in the chain of generation %llu",
							RelationGetRelationName(rel), b,
							(unsigned long long) KvlsmPageGetOpaque((Page) copy)->owner,
							(unsigned long long) chain->genid)));
		}
		kvlsm_page_check(rel, b, (Page) copy, KVLSM_PAGE_LOG);
		if (n == cap)
		{
			cap = cap ? cap * 2 : 16;
			pages = pages ? repalloc(pages, sizeof(char *) * cap) : palloc(sizeof(char *) * cap);
			blocks = blocks ? repalloc(blocks, sizeof(BlockNumber) * cap) : palloc(sizeof(BlockNumber) * cap);
		}
		pages[n] = copy;
		blocks[n] = b;
		n++;
		if (b == gen->replay_block)
			break;
		b = KvlsmPageGetOpaque((Page) copy)->link;
	}

	for (i = n - 1; i >= 0; i--)
	{
		Page		page = (Page) pages[i];
		KvlsmPageOpaque opaque = KvlsmPageGetOpaque(page);
		char	   *p = (char *) page + SizeOfPageHeaderData;
		char	   *endp = (char *) page + ((PageHeader) page)->pd_lower;
		uint32		item = 0;
		uint32		skip = (blocks[i] == gen->replay_block) ? gen->replay_nitems : 0;
		uint32		npages = 1;
		char	   *span = NULL;

		if (opaque->flags & KVLSM_PAGE_FLAG_CONT)
		{
			/*
			 * Only the last piece of a span applied before (the tail then)
			 * comes alone: a span is written in one WAL record with the
			 * tail moved to its last piece.
			 */
			if (blocks[i] != gen->replay_block)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: log page continues a record whose first page is missing",
								RelationGetRelationName(rel), blocks[i])));
			pfree(pages[i]);
			continue;
		}
		if (opaque->flags & KVLSM_PAGE_FLAG_SPAN)
		{
			/* a record larger than a page: join its pieces */
			Size		len = endp - p;

			span = palloc(KVLSM_MAX_SPAN_PAGES * KVLSM_PAGE_CAPACITY);
			memcpy(span, p, len);
			while (i - (int) npages >= 0 &&
				   (KvlsmPageGetOpaque((Page) pages[i - npages])->flags & KVLSM_PAGE_FLAG_CONT) &&
				   npages < KVLSM_MAX_SPAN_PAGES)
			{
				Page		cont = (Page) pages[i - npages];
				Size		piece = ((PageHeader) cont)->pd_lower - SizeOfPageHeaderData;

				memcpy(span + len, (char *) cont + SizeOfPageHeaderData, piece);
				len += piece;
				npages++;
			}
			if (npages < 2 || opaque->nitems != 1)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: log record spanning pages is incomplete",
								RelationGetRelationName(rel), blocks[i])));
			p = span;
			endp = span + len;
		}

		while (p < endp && item < opaque->nitems)
		{
			KvlsmRecordHeader rh;
			KvlsmSkipNode *node;

			memcpy(&rh, p, sizeof(rh));
			if (p + sizeof(rh) + rh.keylen + rh.vallen > endp)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("kvlsm relation \"%s\" block %u: log record %u runs past the page",
								RelationGetRelationName(rel), blocks[i], item)));
			if (item >= skip)
			{
				node = kvlsm_memgen_insert(gen, p + sizeof(rh), rh.keylen, rh.seq,
										   rh.flags, p + sizeof(rh) + rh.keylen,
										   rh.vallen, ops->cmp, ops->arg);
				if (node == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("kvlsm memtable memory is full while loading \"%s\"",
									RelationGetRelationName(rel)),
							 errhint("Increase kvlsm.memtable_memory.")));
				node->logged = 1;
				gen->unlogged--;
			}
			p += sizeof(rh) + rh.keylen + rh.vallen;
			item++;
		}
		if (span != NULL)
		{
			int			k;

			/* the span's last piece is where the chain went on from */
			for (k = 0; k < (int) npages - 1; k++)
				pfree(pages[i - k]);
			i -= npages - 1;
			pfree(span);
			item = 0;
		}
		gen->replay_block = blocks[i];
		gen->replay_nitems = item;
		if (blocks[i] != gen->replay_block || skip == 0)
			gen->replay_npages += npages;
		pfree(pages[i]);
	}
	if (pages)
	{
		pfree(pages);
		pfree(blocks);
	}
	return true;
}

/*
 * Bring the memtable generations in line with the metapage's chains.
 * Returns false when a chain changed under us (standby): re-read the
 * metapage and call again.
 */
static bool
catch_up(Relation rel, KvlsmShared *sh, const KvlsmMetaPageData *meta,
		 const KvlsmKeyOps *ops)
{
	/* drop generations the metapage no longer has (flushed meanwhile) */
	if (sh->frozen.genid != 0 && sh->frozen.genid != meta->frozen.genid)
		kvlsm_memgen_release(&sh->frozen);
	if (sh->active.genid != 0 && sh->active.genid != meta->active.genid)
	{
		if (meta->frozen.genid == sh->active.genid && sh->frozen.genid == 0)
		{
			sh->frozen = sh->active;
			memset(&sh->active, 0, sizeof(sh->active));
		}
		else
			kvlsm_memgen_release(&sh->active);
	}
	if (meta->frozen.genid != 0 && sh->frozen.genid == 0)
		kvlsm_memgen_init(&sh->frozen, meta->frozen.genid);
	if (sh->active.genid == 0)
		kvlsm_memgen_init(&sh->active, meta->active.genid);

	if (meta->frozen.genid != 0 &&
		!replay_chain(rel, sh, &sh->frozen, &meta->frozen, ops))
		return false;
	if (!replay_chain(rel, sh, &sh->active, &meta->active, ops))
		return false;

	if (sh->manifest_version != meta->manifest_version)
		load_manifest(rel, sh, meta);
	sh->memtable_size = meta->memtable_size;
	sh->compression = meta->compression;
	sh->compaction_style = meta->compaction_style;
	sh->ttl_usecs = meta->ttl_usecs;
	sh->gen_epoch++;
	return true;
}

static KvlsmShared *
lookup_entry(const KvlsmLsmTag *tag, bool create)
{
	KvlsmShared *sh;
	bool		found;

	LWLockAcquire(registry->lock, LW_SHARED);
	sh = hash_search(lsm_hash, tag, HASH_FIND, NULL);
	LWLockRelease(registry->lock);
	if (sh != NULL || !create)
		return sh;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	sh = hash_search(lsm_hash, tag, HASH_ENTER_NULL, &found);
	if (sh == NULL)
	{
		LWLockRelease(registry->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("too many kvlsm relations are in use"),
				 errhint("Increase kvlsm.max_relations.")));
	}
	if (!found)
	{
		KvlsmLsmTag keep = sh->tag;

		memset(sh, 0, sizeof(*sh));
		sh->tag = keep;
		LWLockInitialize(&sh->lock, lsm_tranche_id);
		SpinLockInit(&sh->mutex);
		sh->active.first_chunk = sh->active.cur_chunk = -1;
		sh->frozen.first_chunk = sh->frozen.cur_chunk = -1;
	}
	LWLockRelease(registry->lock);
	return sh;
}

KvlsmShared *
kvlsm_lookup_shared(const KvlsmLsmTag *tag)
{
	return lookup_entry(tag, false);
}

/*
 * Attach to the LSM of 'rel': find or create its shared entry, (re)load it
 * when it caches another incarnation of the filenode, and on a standby
 * catch up with the replayed log pages.
 */
KvlsmShared *
kvlsm_attach(Relation rel)
{
	KvlsmLsmTag tag;
	KvlsmShared *sh;
	uint64		incarnation;
	KvlsmMetaPageData meta;
	bool		in_recovery = RecoveryInProgress();

	make_tag(rel, &tag);
	if (tag.backend != InvalidBackendId)
		kvlsm_note_temp_relation();
	incarnation = rel_incarnation(rel, &tag);
	sh = lookup_entry(&tag, true);

	if (sh->loaded && sh->incarnation == incarnation && sh->authoritative)
		return sh;

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	if (!(sh->loaded && sh->incarnation == incarnation && sh->authoritative))
	{
		kvlsm_read_metapage(rel, &meta);
		remember_incarnation(&tag, meta.incarnation);
		if (!sh->loaded || sh->incarnation != meta.incarnation)
		{
			/* a different (or first) incarnation: start from nothing */
			kvlsm_memgen_release(&sh->active);
			kvlsm_memgen_release(&sh->frozen);
			sh->incarnation = meta.incarnation;
			clear_ssts(sh);
			memset(&sh->stats, 0, sizeof(sh->stats));
			sh->stats.reset_at = GetCurrentTimestamp();
		}
		while (!catch_up(rel, sh, &meta, kvlsm_keyops(rel)))
		{
			CHECK_FOR_INTERRUPTS();
			kvlsm_read_metapage(rel, &meta);
		}
		if (!in_recovery)
		{
			/* from here on this server writes: allocate above the marks */
			SpinLockAcquire(&sh->mutex);
			sh->next_rowid = sh->rowid_limit = meta.rowid_hwm;
			sh->next_seq = sh->seq_limit = meta.seq_hwm;
			SpinLockRelease(&sh->mutex);
			sh->authoritative = true;
		}
		sh->loaded = true;
	}
	LWLockRelease(&sh->lock);
	return sh;
}

/* forget the cached incarnation of a relation whose filenode changed */
void
kvlsm_forget(Relation rel)
{
	KvlsmLsmTag tag;

	if (incarnation_cache == NULL)
		return;
	make_tag(rel, &tag);
	hash_search(incarnation_cache, &tag, HASH_REMOVE, NULL);
}

/*
 * Extend the relation by one page; returns it pinned, not locked, with the
 * relation extension lock still held (unless the relation is local): the
 * caller releases it with kvlsm_new_page_done() once the page is linked
 * into the metapage's structures, so that a page sweep, which reads the
 * relation size and the metapage under the extension lock, never sees a
 * new page that is not linked yet (sweep_leaked_pages).
 */
Buffer
kvlsm_new_page(Relation rel)
{
	if (!RELATION_IS_LOCAL(rel))
		LockRelationForExtension(rel, ExclusiveLock);
	return ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
}

void
kvlsm_new_page_done(Relation rel)
{
	if (!RELATION_IS_LOCAL(rel))
		UnlockRelationForExtension(rel, ExclusiveLock);
}

/*
 * Change the metapage under a generic WAL record.  'fn' edits the copy in
 * place.  The caller holds the LSM lock exclusively (or the flush lock) so
 * that shared state and metapage change together.
 */
typedef void (*MetaEditFn) (KvlsmMetaPageData *meta, void *arg);

static void
edit_metapage(Relation rel, MetaEditFn fn, void *arg)
{
	Buffer		buf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(rel);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	fn(KvlsmPageGetMeta(page), arg);
	kvlsm_page_set_crc(page);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

static void
set_rowid_hwm(KvlsmMetaPageData *meta, void *arg)
{
	meta->rowid_hwm = Max(meta->rowid_hwm, *(uint64 *) arg);
}

static void
set_seq_hwm(KvlsmMetaPageData *meta, void *arg)
{
	meta->seq_hwm = Max(meta->seq_hwm, *(uint64 *) arg);
}

uint64
kvlsm_alloc_rowids(Relation rel, KvlsmShared *sh, uint64 n)
{
	uint64		first;

	for (;;)
	{
		SpinLockAcquire(&sh->mutex);
		if (sh->next_rowid + n <= sh->rowid_limit)
		{
			first = sh->next_rowid;
			sh->next_rowid += n;
			SpinLockRelease(&sh->mutex);
			return first;
		}
		SpinLockRelease(&sh->mutex);

		/* reserve the next chunk durably before handing any of it out */
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		if (sh->next_rowid + n > sh->rowid_limit)
		{
			uint64		newlimit = sh->next_rowid + n + ALLOC_CHUNK;

			edit_metapage(rel, set_rowid_hwm, &newlimit);
			SpinLockAcquire(&sh->mutex);
			sh->rowid_limit = newlimit;
			SpinLockRelease(&sh->mutex);
		}
		LWLockRelease(&sh->lock);
	}
}

/* next sequence number; the caller holds the LSM lock exclusively */
static uint64
next_seq(Relation rel, KvlsmShared *sh)
{
	uint64		seq;

	if (sh->next_seq >= sh->seq_limit)
	{
		uint64		newlimit = sh->next_seq + ALLOC_CHUNK;

		edit_metapage(rel, set_seq_hwm, &newlimit);
		sh->seq_limit = newlimit;
	}
	seq = sh->next_seq++;
	return seq;
}

/*
 * Write one record: it enters the active memtable at once (visible to
 * other backends' dirty-snapshot checks) and the backend's pending log
 * buffer.  Returns its sequence number.  No I/O except a rare metapage
 * update when a sequence chunk runs out, so callers may hold a row stripe
 * lock.
 */
static void
refuse_write_in_recovery(Relation rel)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot write to kvlsm relation \"%s\" during recovery",
						RelationGetRelationName(rel))));
}

uint64
kvlsm_put(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
		  const char *key, int keylen, uint16 flags,
		  const char *val, int vallen)
{
	KvlsmSkipNode *node;
	uint64		seq;

	refuse_write_in_recovery(rel);
	if (keylen + vallen > KVLSM_MAX_RECORD_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm record of %d bytes is too large for relation \"%s\"",
						keylen + vallen, RelationGetRelationName(rel)),
				 errdetail("The maximum is %d bytes after TOAST compression.",
						   (int) KVLSM_MAX_RECORD_SIZE)));

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	if (sh->active.head == NULL && !kvlsm_memgen_init(&sh->active, sh->active.genid))
		node = NULL;
	else
	{
		seq = next_seq(rel, sh);
		node = kvlsm_memgen_insert(&sh->active, key, keylen, seq, flags,
								   val, vallen, ops->cmp, ops->arg);
	}
	if (node == NULL)
	{
		LWLockRelease(&sh->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm memtable memory is full"),
				 errhint("Increase kvlsm.memtable_memory, or lower memtable_size of busy relations.")));
	}
	sh->stats.puts++;
	if (sh->active.entries == 1)
		sh->active_since = GetCurrentTimestamp();
	kvlsm_log_pending_add(rel, sh, ops, node, GetCurrentTransactionNestLevel());
	if (sh->active.bytes >= (uint64) sh->memtable_size)
		sh->flush_requested = true;
	LWLockRelease(&sh->lock);
	kvlsm_crash_point(KVLSM_CP_INSERT_BEFORE_LOG);
	return seq;
}

/*
 * Put deferred records (logwriter.c) into the memtable under one
 * acquisition of the LSM lock: concurrent writers of one index otherwise
 * queue on that lock for every row.  Returns how many went in; fewer than
 * n only when the arena is full (the caller reports it).
 */
int
kvlsm_put_deferred(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
				   KvlsmDeferredPut *puts, int n)
{
	int			i;

	refuse_write_in_recovery(rel);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		KvlsmSkipNode *node;

		if (puts[i].applied)
			continue;
		if (sh->active.head == NULL && !kvlsm_memgen_init(&sh->active, sh->active.genid))
			break;
		node = kvlsm_memgen_insert(&sh->active, puts[i].key, puts[i].keylen,
								   next_seq(rel, sh), puts[i].flags, NULL, 0,
								   ops->cmp, ops->arg);
		if (node == NULL)
			break;
		sh->stats.puts++;
		if (sh->active.entries == 1)
			sh->active_since = GetCurrentTimestamp();
		kvlsm_log_pending_add(rel, sh, ops, node, puts[i].nestlevel);
		puts[i].applied = true;
	}
	if (sh->active.bytes >= (uint64) sh->memtable_size)
		sh->flush_requested = true;
	LWLockRelease(&sh->lock);
	if (i > 0)
		kvlsm_crash_point(KVLSM_CP_INSERT_BEFORE_LOG);
	return i;
}

/*
 * The arena shared by all kvlsm relations runs short: flush the largest
 * memtable of this database (RocksDB's write buffer manager), so that idle
 * relations do not pin memory that busy ones need.  Other databases'
 * memtables are flushed by their own writers.  Another relation is flushed
 * only if its lock can be had at once, so this never waits or deadlocks.
 */
static void
relieve_arena(Relation rel, KvlsmShared *self)
{
	HASH_SEQ_STATUS status;
	KvlsmShared *sh;
	KvlsmLsmTag best;
	uint64		best_bytes = 0;
	Oid			relid;

	bool		any_db = !kvlsm_am_worker && kvlsm_have_background_workers();

	LWLockAcquire(registry->lock, LW_SHARED);
	hash_seq_init(&status, lsm_hash);
	while ((sh = hash_seq_search(&status)) != NULL)
	{
		if ((!any_db && sh->tag.node.dbNode != MyDatabaseId) ||
			(sh->tag.backend != InvalidBackendId && sh->tag.backend != MyBackendId) ||
			sh->frozen.genid != 0)
			continue;
		if (sh->active.bytes > best_bytes)
		{
			best_bytes = sh->active.bytes;
			best = sh->tag;
		}
	}
	LWLockRelease(registry->lock);
	if (best_bytes == 0)
		return;

	/* a worker of the relation's database flushes it */
	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) == 0 &&
		kvlsm_schedule_work(rel, KVLSM_JOB_FLUSH_FORCE))
		return;
	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) != 0 &&
		kvlsm_schedule_flush_node(&best))
		return;
	if (best.node.dbNode != MyDatabaseId)
	{
		if (self->active.bytes > 0)
			kvlsm_flush(rel, true);
		return;
	}

	if (memcmp(&best, &self->tag, sizeof(KvlsmLsmTag)) == 0)
	{
		kvlsm_flush(rel, true);
		return;
	}
	relid = RelidByRelfilenode(best.node.spcNode == MyDatabaseTableSpace ? 0 : best.node.spcNode,
							   best.node.relNode);
	if (!OidIsValid(relid) || !ConditionalLockRelationOid(relid, RowExclusiveLock))
	{
		/* fall back to our own memtable */
		if (self->active.bytes > 0)
			kvlsm_flush(rel, true);
		return;
	}
	{
		Relation	other = try_relation_open(relid, NoLock);

		if (other != NULL)
		{
			if (RelFileNodeEquals(other->rd_node, best.node))
				kvlsm_flush(other, true);
			relation_close(other, NoLock);
		}
		UnlockRelationOid(relid, RowExclusiveLock);
	}
}

/*
 * Work the foreground does at a safe point (no stripe lock held): write
 * whole pending log pages, and flush the memtable when it is over its
 * size or the arena runs short.
 */
void
kvlsm_maybe_flush(Relation rel, KvlsmShared *sh)
{
	bool		arena_short;

	kvlsm_log_write_full_pages(rel, sh);
	if (RecoveryInProgress())
		return;
	arena_short = kvlsm_arena_free_bytes() < kvlsm_arena_total_bytes() / 8;
	if (arena_short)
		relieve_arena(rel, sh);
	if (sh->flush_requested || arena_short || sh->frozen.genid != 0 ||
		sh->nl0 >= (uint32) Min(kvlsm_l0_slowdown_trigger, kvlsm_l0_stop_trigger))
		kvlsm_backpressure(rel, sh);
}

/* call fn for every attached LSM (shared registry lock held: be quick) */
void
kvlsm_foreach_lsm(void (*fn) (KvlsmShared *sh, void *arg), void *arg)
{
	HASH_SEQ_STATUS status;
	KvlsmShared *sh;

	LWLockAcquire(registry->lock, LW_SHARED);
	hash_seq_init(&status, lsm_hash);
	while ((sh = hash_seq_search(&status)) != NULL)
		fn(sh, arg);
	LWLockRelease(registry->lock);
}

/* ---------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------
 */

void
kvlsm_recset_init(KvlsmRecordSet *set, MemoryContext cxt)
{
	set->n = 0;
	set->cap = 0;
	set->recs = NULL;
	set->cxt = cxt;
	set->data_cxt = AllocSetContextCreate(cxt, "kvlsm records",
										  ALLOCSET_DEFAULT_SIZES);
	set->block = NULL;
	set->block_used = 0;
	set->block_size = 0;
	set->next_block_size = 0;
}

/* forget the records; the array and the first data block are kept */
void
kvlsm_recset_reset(KvlsmRecordSet *set)
{
	set->n = 0;
	if (set->block_size > 0 && set->block != NULL &&
		MemoryContextMemAllocated(set->data_cxt, false) <= set->block_size + 8192)
	{
		set->block_used = 0;
		return;
	}
	MemoryContextReset(set->data_cxt);
	set->block = NULL;
	set->block_used = 0;
	set->block_size = 0;
}

/*
 * Record bytes are carved from blocks that start small and double up to
 * RECSET_BLOCK_SIZE.  A point lookup (one row id, a few versions) must not
 * pay for a scan-sized block: a 256 kB malloc and free per lookup made
 * glibc grow and trim the heap on every fetch (brk calls, page faults and
 * TLB shootdowns were several percent of a TPC-B profile).  Scans that reset
 * their set per batch keep the size they grew to.
 */
#define RECSET_FIRST_BLOCK_SIZE 2048
#define RECSET_BLOCK_SIZE (256 * 1024)
#define RECSET_FIRST_CAP 16

void
kvlsm_recset_add(KvlsmRecordSet *set, const char *key, int keylen, uint64 seq,
				 uint16 flags, const char *val, int vallen, uint8 hint,
				 bool in_memtable)
{
	KvlsmRecord *r;
	char	   *data;
	Size		need = MAXALIGN(keylen + vallen + 1);

	if (set->n == set->cap)
	{
		int			newcap = set->cap ? set->cap * 2 : RECSET_FIRST_CAP;

		if (set->recs == NULL)
			set->recs = MemoryContextAlloc(set->cxt, sizeof(KvlsmRecord) * newcap);
		else
			set->recs = repalloc(set->recs, sizeof(KvlsmRecord) * newcap);
		set->cap = newcap;
	}
	if (need > RECSET_BLOCK_SIZE / 4)
		data = MemoryContextAlloc(set->data_cxt, need);
	else
	{
		if (set->block == NULL || set->block_used + need > set->block_size)
		{
			/* a new block; the old one stays allocated until the reset */
			Size		size = Max(set->next_block_size, RECSET_FIRST_BLOCK_SIZE);

			while (size < need)
				size *= 2;
			set->block = MemoryContextAlloc(set->data_cxt, size);
			set->block_size = size;
			set->block_used = 0;
			set->next_block_size = Min(size * 2, RECSET_BLOCK_SIZE);
		}
		data = set->block + set->block_used;
		set->block_used += need;
	}
	memcpy(data, key, keylen);
	if (vallen > 0)
		memcpy(data + keylen, val, vallen);
	r = &set->recs[set->n++];
	r->key = data;
	r->keylen = keylen;
	r->val = data + keylen;
	r->vallen = vallen;
	r->seq = seq;
	r->flags = flags;
	r->hint = hint;
	r->in_memtable = in_memtable;
}

/* copy records of one generation in range; see kvlsm_collect */
static void
collect_gen(KvlsmMemGen *gen, const KvlsmKeyOps *ops,
			const char *start, int startlen, bool start_exclusive,
			const char *end, int endlen, int maxkeys,
			KvlsmRecordSet *out, bool *limited, int *lastidx)
{
	KvlsmSkipNode *n;
	int			nkeys = 0;
	KvlsmSkipNode *prev = NULL;

	*limited = false;
	*lastidx = -1;
	if (gen->head == NULL)
		return;
	if (start)
		n = kvlsm_memgen_seek(gen, start, startlen,
							  start_exclusive ? 0 : PG_UINT64_MAX,
							  ops->cmp, ops->arg);
	else
		n = kvlsm_memgen_first(gen);
	for (; n != NULL; n = n->next[0])
	{
		if (start && start_exclusive &&
			ops->cmp(KvlsmSkipNodeKey(n), n->keylen, start, startlen, ops->arg) == 0)
			continue;
		if (end && ops->cmp(KvlsmSkipNodeKey(n), n->keylen, end, endlen, ops->arg) > 0)
			break;
		if (prev == NULL ||
			ops->cmp(KvlsmSkipNodeKey(prev), prev->keylen,
					 KvlsmSkipNodeKey(n), n->keylen, ops->arg) != 0)
		{
			if (maxkeys > 0 && nkeys >= maxkeys)
			{
				*limited = true;
				break;
			}
			nkeys++;
		}
		prev = n;
		if (n->aborted)
			continue;
		kvlsm_recset_add(out, KvlsmSkipNodeKey(n), n->keylen, n->seq,
						 n->recflags, KvlsmSkipNodeValue(n), n->vallen,
						 n->hint, true);
		*lastidx = out->n - 1;
	}
}

int
kvlsm_record_cmp(const void *a, const void *b, void *arg)
{
	const KvlsmRecord *ra = a;
	const KvlsmRecord *rb = b;
	const KvlsmKeyOps *ops = ((KvlsmSortArg *) arg)->ops;
	int			c = ops->cmp(ra->key, ra->keylen, rb->key, rb->keylen, ops->arg);

	if (c != 0)
		return c;
	if (ra->seq > rb->seq)
		return -1;
	if (ra->seq < rb->seq)
		return 1;
	return 0;
}

/*
 * Sort a record set made of sorted runs (a memtable generation, an
 * SSTable: each already in (key, seq desc) order) by merging them: a k-way
 * merge compares about n log k times where a sort would n log n, and
 * comparators (an index's btree support functions) dominate compaction.
 * runs[i] is where run i starts; run i ends where run i + 1 starts, the
 * last one at set->n.
 */
void
kvlsm_recset_merge_runs(KvlsmRecordSet *set, const int *runs, int nruns,
						const KvlsmKeyOps *ops)
{
	KvlsmSortArg sarg;
	int		   *heap;			/* run numbers, a binary min-heap on their heads */
	int		   *pos;
	int		   *end;
	int			nheap = 0;
	KvlsmRecord *out;
	int			nout = 0;
	int			i;

	if (set->n <= 1)
		return;
	sarg.ops = ops;
	if (nruns <= 1)
		return;
	heap = palloc(sizeof(int) * nruns);
	pos = palloc(sizeof(int) * nruns);
	end = palloc(sizeof(int) * nruns);
	for (i = 0; i < nruns; i++)
	{
		pos[i] = runs[i];
		end[i] = (i + 1 < nruns) ? runs[i + 1] : set->n;
	}
#define HEAD(r) (&set->recs[pos[r]])
#define LESS(x, y) (kvlsm_record_cmp(HEAD(x), HEAD(y), &sarg) < 0)
	for (i = 0; i < nruns; i++)
	{
		int			c;

		if (pos[i] >= end[i])
			continue;
		/* sift up */
		c = nheap++;
		heap[c] = i;
		while (c > 0 && LESS(heap[c], heap[(c - 1) / 2]))
		{
			int			t = heap[c];

			heap[c] = heap[(c - 1) / 2];
			heap[(c - 1) / 2] = t;
			c = (c - 1) / 2;
		}
	}
	out = MemoryContextAlloc(set->cxt, sizeof(KvlsmRecord) * Max(set->cap, 1));
	while (nheap > 0)
	{
		int			r = heap[0];
		int			c = 0;

		out[nout++] = *HEAD(r);
		if (++pos[r] >= end[r])
			heap[0] = heap[--nheap];
		/* sift down */
		for (;;)
		{
			int			l = 2 * c + 1;
			int			m = c;
			int			t;

			if (l < nheap && LESS(heap[l], heap[m]))
				m = l;
			if (l + 1 < nheap && LESS(heap[l + 1], heap[m]))
				m = l + 1;
			if (m == c)
				break;
			t = heap[c];
			heap[c] = heap[m];
			heap[m] = t;
			c = m;
		}
	}
#undef HEAD
#undef LESS
	Assert(nout == set->n);
	pfree(set->recs);
	set->recs = out;
	pfree(heap);
	pfree(pos);
	pfree(end);
}

static bool
desc_may_contain(const KvlsmSstDesc *d, const KvlsmKeyOps *ops,
				 const char *start, int startlen,
				 const char *end, int endlen)
{
	if (d->minkeylen == 0xFF || d->nentries == 0)
		return d->nentries > 0;
	if (end && ops->cmp((const char *) d->minkey, d->minkeylen, end, endlen, ops->arg) > 0)
		return false;
	if (start && ops->cmp((const char *) d->maxkey, d->maxkeylen, start, startlen, ops->arg) < 0)
		return false;
	return true;
}

/*
 * Collect every record with a key in [start, end] from the memtables and
 * SSTables, sorted by (key asc, seq desc).  At most about 'maxkeys'
 * distinct keys are returned (0 = all); the result is complete up to its
 * last key.  Returns true when more keys may follow it.  'bloom_hash'
 * (non-NULL for a lookup of one key: a table's row id, or an index's first
 * column under an equality operator whose hash agrees with the filter's)
 * lets bloom filters skip SSTables.
 *
 * The memtables and the SSTable list are copied under one share lock, so
 * the set is consistent; SSTable pages are then read without it, and a
 * page that was recycled meanwhile makes the whole collection start over.
 */
/*
 * A key below 'key' (NULL: above every key) that leaves a modest slice of
 * the LSM between the two: the largest of the keys 'back' data blocks down
 * in each live SSTable (kvlsm_sst_pivot), copied to 'out'
 * (KVLSM_MAX_KEY_SIZE bytes).  False when no SSTable holds a key below
 * 'key': then everything below it is in the memtables, whose size is
 * bounded.  A backward scan collects [pivot, key) forward and steps down.
 */
bool
kvlsm_pivot_below(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
				  const char *key, int keylen, int back, char *out, int *outlen)
{
	KvlsmSstDesc *ssts;
	int			nsst;
	int			i;
	bool		found = false;

	ssts = kvlsm_copy_ssts(sh, &nsst);
	for (i = 0; i < nsst; i++)
	{
		const char *p;
		int			plen;

		if (!KvlsmSstIsLive(&ssts[i]) || ssts[i].nentries == 0)
			continue;
		if (!kvlsm_sst_pivot(rel, sh, &ssts[i], ops, key, keylen, back, &p, &plen))
			continue;
		if (!found || ops->cmp(p, plen, out, *outlen, ops->arg) > 0)
		{
			memcpy(out, p, plen);
			*outlen = plen;
			found = true;
		}
	}
	pfree(ssts);
	return found;
}

/*
 * Room for the table list of kvlsm_collect, kept by the backend for the
 * outermost call (a comparator may run SQL that collects again).  An error
 * inside a collection leaves collect_depth raised until the transaction
 * aborts, so that a collection still running further up never shares it.
 */
static struct
{
	KvlsmSstDesc *ssts;
	int		   *runs;
	int			cap;
}			collect_room;
static int	collect_depth = 0;

bool
kvlsm_collect(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
			  const char *start, int startlen, bool start_exclusive,
			  const char *end, int endlen, int maxkeys,
			  const uint64 *bloom_hash, KvlsmRecordSet *out)
{
	KvlsmSstDesc *ssts = NULL;
	int			nsst;
	int			i;
	bool		any_limited;
	const char *bound = NULL;
	int			boundlen = 0;
	int		   *runs = NULL;
	int			cap = 0;
	int			nruns;

	/* this backend's own deferred puts first: a read sees its writes */
	kvlsm_apply_deferred(rel, sh);
	collect_depth++;
	if (bloom_hash)
		sh->stats.point_lookups++;
retry:
	any_limited = false;
	bound = NULL;
	nruns = 0;
	kvlsm_recset_reset(out);

	LWLockAcquire(&sh->lock, LW_SHARED);
	if (ssts == NULL || cap < (int) sh->nsst)
	{
		/*
		 * Room for every listed table.  A lookup must not allocate and free
		 * that much every time (a large chunk is its own malloc, which glibc
		 * may map and unmap per call), so an outermost call keeps its room
		 * in collect_room for the next one.
		 */
		if (ssts != NULL && ssts != collect_room.ssts)
		{
			pfree(ssts);
			pfree(runs);
		}
		cap = Max(sh->nsst, 16);
		if (collect_depth == 1)
		{
			if (collect_room.cap < cap)
			{
				if (collect_room.ssts)
				{
					pfree(collect_room.ssts);
					pfree(collect_room.runs);
					collect_room.ssts = NULL;
					collect_room.cap = 0;
				}
				collect_room.runs = MemoryContextAlloc(TopMemoryContext,
													   sizeof(int) * (cap + 2));
				collect_room.ssts = MemoryContextAlloc(TopMemoryContext,
													   sizeof(KvlsmSstDesc) * cap);
				collect_room.cap = cap;
			}
			ssts = collect_room.ssts;
			runs = collect_room.runs;
			cap = collect_room.cap;
		}
		else
		{
			ssts = palloc(sizeof(KvlsmSstDesc) * cap);
			runs = palloc(sizeof(int) * (cap + 2));
		}
	}
	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		bool		limited;
		int			lastidx;

		runs[nruns++] = out->n;
		collect_gen(gen, ops, start, startlen, start_exclusive, end, endlen,
					maxkeys, out, &limited, &lastidx);
		if (limited && lastidx >= 0)
		{
			const KvlsmRecord *r = &out->recs[lastidx];

			if (bound == NULL || ops->cmp(r->key, r->keylen, bound, boundlen, ops->arg) < 0)
			{
				bound = r->key;
				boundlen = r->keylen;
			}
			any_limited = true;
		}
	}

	/*
	 * Copy only the tables that may hold keys of the range: a lookup in a
	 * large leveled LSM then copies one or two per level, not the list.
	 */
	{
		KvlsmSstDesc *shared = kvlsm_shared_ssts(sh);
		int			k;

		nsst = 0;
		for (k = 0; k < (int) sh->nsst; k++)
			if (KvlsmSstIsLive(&shared[k]) &&
				desc_may_contain(&shared[k], ops, start, startlen,
								 bound ? bound : end, bound ? boundlen : endlen))
				ssts[nsst++] = shared[k];
	}
	LWLockRelease(&sh->lock);

	for (i = nsst - 1; i >= 0; i--)
	{
		bool		limited;
		int			before = out->n;

		if (!KvlsmSstIsLive(&ssts[i]) ||
			!desc_may_contain(&ssts[i], ops, start, startlen,
							  bound ? bound : end, bound ? boundlen : endlen))
			continue;
		runs[nruns++] = out->n;
		if (kvlsm_sst_collect(rel, sh, &ssts[i], ops, start, startlen,
							  start_exclusive,
							  bound ? bound : end, bound ? boundlen : endlen,
							  maxkeys, bloom_hash, out, &limited) == KVLSM_SST_RETRY)
		{
			/*
			 * A compaction freed the extent and it was reused.  A primary's
			 * shared manifest is already current; a standby's is refreshed
			 * from the replayed pages first.
			 */
			CHECK_FOR_INTERRUPTS();
			if (!sh->authoritative)
				(void) kvlsm_attach(rel);
			goto retry;
		}
		if (limited && out->n > before)
		{
			const KvlsmRecord *r = &out->recs[out->n - 1];

			if (bound == NULL || ops->cmp(r->key, r->keylen, bound, boundlen, ops->arg) < 0)
			{
				bound = r->key;
				boundlen = r->keylen;
			}
			any_limited = true;
		}
	}

	kvlsm_recset_merge_runs(out, runs, nruns, ops);

	/* drop duplicates (same key and seq) and whatever lies past the bound */
	{
		int			j = 0;

		for (i = 0; i < out->n; i++)
		{
			KvlsmRecord *r = &out->recs[i];

			if (bound && ops->cmp(r->key, r->keylen, bound, boundlen, ops->arg) > 0)
				break;
			if (j > 0 && out->recs[j - 1].seq == r->seq &&
				ops->cmp(out->recs[j - 1].key, out->recs[j - 1].keylen,
						 r->key, r->keylen, ops->arg) == 0)
				continue;
			out->recs[j++] = *r;
		}
		out->n = j;
	}
	if (ssts != collect_room.ssts)
	{
		pfree(ssts);
		pfree(runs);
	}
	collect_depth--;
	return any_limited;
}

/* records of one key in the memtables only (caller holds a stripe lock) */
bool
kvlsm_memtable_records(KvlsmShared *sh, const KvlsmKeyOps *ops,
					   const char *key, int keylen, KvlsmRecordSet *out)
{
	int			i;

	LWLockAcquire(&sh->lock, LW_SHARED);
	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		bool		limited;
		int			lastidx;

		collect_gen(gen, ops, key, keylen, false, key, keylen, 0, out,
					&limited, &lastidx);
	}
	LWLockRelease(&sh->lock);
	return out->n > 0;
}

/*
 * Every record with a key in [start, end] in the active and in the frozen
 * memtable, each into its own set (kvlsm_key_history shows where a
 * version lives).
 */
void
kvlsm_memtable_range(KvlsmShared *sh, const KvlsmKeyOps *ops,
					 const char *start, int startlen,
					 const char *end, int endlen,
					 KvlsmRecordSet *active_out, KvlsmRecordSet *frozen_out)
{
	bool		limited;
	int			lastidx;

	LWLockAcquire(&sh->lock, LW_SHARED);
	collect_gen(&sh->active, ops, start, startlen, false, end, endlen, 0,
				active_out, &limited, &lastidx);
	collect_gen(&sh->frozen, ops, start, startlen, false, end, endlen, 0,
				frozen_out, &limited, &lastidx);
	LWLockRelease(&sh->lock);
}

uint64
kvlsm_version_epoch(KvlsmShared *sh)
{
	uint64		e;

	LWLockAcquire(&sh->lock, LW_SHARED);
	e = sh->gen_epoch;
	LWLockRelease(&sh->lock);
	return e;
}

/* remember a record's commit status in its memtable node, if still there */
void
kvlsm_set_hint(KvlsmShared *sh, const KvlsmKeyOps *ops, const char *key,
			   int keylen, uint64 seq, uint8 hint)
{
	int			i;

	if (!LWLockConditionalAcquire(&sh->lock, LW_SHARED))
		return;
	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		KvlsmSkipNode *n;

		if (gen->head == NULL)
			continue;
		n = kvlsm_memgen_find(gen, key, keylen, seq, ops->cmp, ops->arg);
		if (n)
			n->hint = hint;
	}
	LWLockRelease(&sh->lock);
}

void
kvlsm_mark_aborted_node(KvlsmSkipNode *node)
{
	node->aborted = 1;
}

/* ---------------------------------------------------------------------
 * Flush, compaction, manifest installs
 * ---------------------------------------------------------------------
 */

/* bytes of a manifest's stream: its descriptors, then its free extents */
static Size
manifest_stream_len(uint32 nsst, uint32 nfree)
{
	return sizeof(KvlsmSstDesc) * nsst + sizeof(KvlsmExtent) * nfree;
}

/* continuation pages a stream of 'len' bytes needs */
static uint32
manifest_cont_pages(Size len)
{
	if (len <= KVLSM_MANIFEST_FIRST_CAPACITY)
		return 0;
	return (len - KVLSM_MANIFEST_FIRST_CAPACITY + KVLSM_PAGE_CAPACITY - 1) /
		KVLSM_PAGE_CAPACITY;
}

/* copy the payload of one manifest page (checked already) into 'dst' */
static char *
take_manifest_piece(Page page, Size skip, char *dst, Size want)
{
	Size		have = ((PageHeader) page)->pd_lower - SizeOfPageHeaderData;

	if (have < skip + want)
		return psprintf("manifest page holds %zu bytes where %zu were expected",
						have, skip + want);
	memcpy(dst, (char *) PageGetContents(page) + skip, want);
	return NULL;
}

/*
 * Read the manifest in slot page 'slot' and its continuation pages into
 * 'mc', with a share lock on one page at a time.  NULL when it is whole and
 * consistent; else what is wrong and, in *blkno, where.  A continuation
 * page that belongs to another version was recycled by a later install
 * while we read (possible only without the flush lock: a standby, or an
 * inspection), or is damaged: the caller tells which by looking at the
 * metapage again.
 */
char *
kvlsm_manifest_try_read(Relation rel, BlockNumber slot, KvlsmManifestCopy *mc,
						BlockNumber *blkno)
{
	Buffer		buf;
	Page		page;
	char	   *problem;
	char	   *stream = NULL;
	Size		len = 0;
	Size		done;
	uint32		i;

	*blkno = slot;
	if (!kvlsm_block_exists(rel, slot))
		return psprintf("manifest slot %u lies beyond the end of the file", slot);
	buf = ReadBuffer(rel, slot);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	problem = kvlsm_page_problem(page, KVLSM_PAGE_MANIFEST);
	if (problem == NULL &&
		((PageHeader) page)->pd_lower < SizeOfPageHeaderData + sizeof(KvlsmManifestHeader))
		problem = pstrdup("manifest page too short for its header");
	if (problem == NULL)
	{
		memcpy(&mc->hdr, PageGetContents(page), sizeof(mc->hdr));
		len = manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree);
		if (mc->hdr.nsst > KVLSM_MAX_SST || mc->hdr.nfree > KVLSM_MAX_FREE_EXTENTS)
			problem = psprintf("manifest lists %u SSTables and %u free extents (at most %d and %d)",
							   mc->hdr.nsst, mc->hdr.nfree, KVLSM_MAX_SST,
							   KVLSM_MAX_FREE_EXTENTS);
		else if (mc->hdr.cont_npages < manifest_cont_pages(len) ||
				 mc->hdr.cont_npages >= KVLSM_MAX_MANIFEST_PAGES)
			problem = psprintf("manifest of %zu bytes has %u continuation pages",
							   len, mc->hdr.cont_npages);
		else
		{
			stream = palloc(Max(len, 1));
			problem = take_manifest_piece(page, MAXALIGN(sizeof(KvlsmManifestHeader)),
										  stream, Min(len, KVLSM_MANIFEST_FIRST_CAPACITY));
		}
	}
	UnlockReleaseBuffer(buf);

	done = Min(len, KVLSM_MANIFEST_FIRST_CAPACITY);
	for (i = 0; problem == NULL && done < len; i++)
	{
		BlockNumber b = mc->hdr.cont_start + i;
		Size		want = Min(len - done, KVLSM_PAGE_CAPACITY);

		*blkno = b;
		if (b < KVLSM_FIRST_DATA_BLKNO || !kvlsm_block_exists(rel, b))
		{
			problem = psprintf("manifest continuation page %u lies outside the data blocks", b);
			break;
		}
		buf = ReadBuffer(rel, b);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		problem = kvlsm_page_problem(page, KVLSM_PAGE_MANIFEST);
		if (problem == NULL &&
			(!kvlsm_page_owner_is(page, KVLSM_PAGE_MANIFEST, mc->hdr.version) ||
			 KvlsmPageGetOpaque(page)->link != i))
			problem = psprintf("continuation page %u of manifest version %llu belongs to version %llu at position %u",
							   i, (unsigned long long) mc->hdr.version,
							   (unsigned long long) KvlsmPageGetOpaque(page)->owner,
							   KvlsmPageGetOpaque(page)->link);
		if (problem == NULL)
			problem = take_manifest_piece(page, 0, stream + done, want);
		UnlockReleaseBuffer(buf);
		done += want;
	}
	if (problem == NULL)
	{
		memcpy(mc->sst, stream, sizeof(KvlsmSstDesc) * mc->hdr.nsst);
		memcpy(mc->free, stream + sizeof(KvlsmSstDesc) * mc->hdr.nsst,
			   sizeof(KvlsmExtent) * mc->hdr.nfree);
	}
	if (stream)
		pfree(stream);
	return problem;
}

/*
 * Read the manifest the metapage 'meta' names.  Without the flush lock the
 * manifest may move on while we read: when the metapage names a newer one
 * by then, read that instead.  A manifest that stays unreadable is damaged.
 */
void
kvlsm_manifest_read(Relation rel, const KvlsmMetaPageData *meta, KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData cur = *meta;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		BlockNumber blkno;
		uint64		tried = cur.manifest_version;
		char	   *problem;

		problem = kvlsm_manifest_try_read(rel, cur.manifest_blkno, mc, &blkno);
		if (problem == NULL)
			return;
		kvlsm_read_metapage(rel, &cur);
		if (cur.manifest_version == tried || attempt >= 1000)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u: %s",
							RelationGetRelationName(rel), blkno, problem)));
		CHECK_FOR_INTERRUPTS();
	}
}

/* take 'npages' from the start of free extent 'i' */
static BlockNumber
take_free_extent_at(KvlsmManifestCopy *mc, uint32 i, uint32 npages)
{
	BlockNumber start = mc->free[i].start;

	Assert(mc->free[i].npages >= npages);
	mc->free[i].start += npages;
	mc->free[i].npages -= npages;
	if (mc->free[i].npages == 0)
	{
		memmove(&mc->free[i], &mc->free[i + 1],
				sizeof(KvlsmExtent) * (mc->hdr.nfree - i - 1));
		mc->hdr.nfree--;
	}
	return start;
}

/* take 'npages' from the free extents (first fit); Invalid if none fits */
static BlockNumber
take_free_extent(KvlsmManifestCopy *mc, uint32 npages)
{
	uint32		i;

	for (i = 0; i < mc->hdr.nfree; i++)
	{
		if (mc->free[i].npages >= npages)
			return take_free_extent_at(mc, i, npages);
	}
	return InvalidBlockNumber;
}

static int
extent_cmp(const void *a, const void *b)
{
	const KvlsmExtent *ea = a;
	const KvlsmExtent *eb = b;

	return (ea->start > eb->start) - (ea->start < eb->start);
}

/* return an extent to the free list, merging neighbours */
void
kvlsm_manifest_give_extent(KvlsmManifestCopy *mc, BlockNumber start, uint32 npages)
{
	uint32		i,
				j;

	if (mc->hdr.nfree >= KVLSM_MAX_FREE_EXTENTS)
	{
		/* no room: keep the larger extents, leak the smallest */
		uint32		smallest = 0;

		for (i = 1; i < mc->hdr.nfree; i++)
			if (mc->free[i].npages < mc->free[smallest].npages)
				smallest = i;
		if (mc->free[smallest].npages >= npages)
			return;
		mc->free[smallest] = mc->free[--mc->hdr.nfree];
	}
	mc->free[mc->hdr.nfree].start = start;
	mc->free[mc->hdr.nfree].npages = npages;
	mc->hdr.nfree++;
	qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), extent_cmp);
	for (i = 0, j = 0; i < mc->hdr.nfree; i++)
	{
		if (j > 0 && mc->free[j - 1].start + mc->free[j - 1].npages == mc->free[i].start)
			mc->free[j - 1].npages += mc->free[i].npages;
		else
			mc->free[j++] = mc->free[i];
	}
	mc->hdr.nfree = j;
}

/*
 * Add n empty pages at the end of the file (the caller holds the extension
 * lock).  Through a bulk-write ring, so that up to 16 MB of empty pages do
 * not push the working set out of shared buffers.
 */
static void
extend_empty(Relation rel, uint32 n)
{
	BufferAccessStrategy ring;
	uint32		i;

	if (n == 0)
		return;
	ring = GetAccessStrategy(BAS_BULKWRITE);
	for (i = 0; i < n; i++)
		ReleaseBuffer(ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, ring));
	FreeAccessStrategy(ring);
}

/*
 * Free extents and the log reserve may lie past the end of the file: the
 * pages a file is pre-extended by are not WAL-logged (like heap's bulk
 * extension), so an operating system crash can lose them while the
 * manifest that lists them survives (and a promoted standby never had
 * them).  A user of such pages extends the file up to them again.  The gap
 * is at most a pre-extension plus the log reserve, or a compaction
 * output's reservation; a larger one means a damaged manifest.
 */
void
kvlsm_ensure_blocks(Relation rel, BlockNumber upto)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	bool		local = RELATION_IS_LOCAL(rel);

	if (nblocks >= upto)
		return;
	if (upto - nblocks > KVLSM_MAX_UNLOGGED_GAP)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\": free space listed at block %u, far past the end of the file (%u blocks)",
						RelationGetRelationName(rel), upto - 1, nblocks)));
	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	extend_empty(rel, upto - Min(upto, RelationGetNumberOfBlocks(rel)));
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
}

/* write a laid-out SSTable to a free extent or to new pages at the end */
void
kvlsm_manifest_place_sstable(Relation rel, KvlsmSstBuilder *b, uint32 npages,
			  KvlsmManifestCopy *mc, KvlsmSstDesc *desc)
{
	BlockNumber start = take_free_extent(mc, npages);

	if (start != InvalidBlockNumber)
	{
		kvlsm_ensure_blocks(rel, start + npages);
		kvlsm_sst_builder_write(b, start, false, desc);
		kvlsm_crash_point(KVLSM_CP_EXTENT_REUSE);
	}
	else
	{
		bool		local = RELATION_IS_LOCAL(rel);
		uint32		extra;

		if (!local)
			LockRelationForExtension(rel, ExclusiveLock);
		start = extension_start(rel, mc);
		extend_empty(rel, start - RelationGetNumberOfBlocks(rel));
		kvlsm_sst_builder_write(b, start, true, desc);

		/*
		 * Grow the file by an eighth of its size at a time (at most
		 * KVLSM_EXTEND_MAX pages): what the SSTable does not take becomes a
		 * free extent for the next ones, so a growing relation extends its
		 * file, and takes the extension lock, a few times per doubling
		 * rather than for every SSTable, and its extents lie together.
		 * VACUUM gives a free tail back (kvlsm_shrink).
		 */
		extra = Min(start / 8, KVLSM_EXTEND_MAX);
		if (extra > npages)
		{
			extend_empty(rel, extra - npages);
			kvlsm_manifest_give_extent(mc, start + npages, extra - npages);
		}
		if (!local)
			UnlockRelationForExtension(rel, ExclusiveLock);
	}
}

/*
 * Set aside 'npages' for a compaction output written as it is built
 * (compaction.c): from a free extent, or new pages at the end of the file,
 * which grows as for kvlsm_manifest_place_sstable.
 */
BlockNumber
kvlsm_manifest_reserve_extent(Relation rel, KvlsmManifestCopy *mc, uint32 npages)
{
	BlockNumber start = take_free_extent(mc, npages);
	bool		local = RELATION_IS_LOCAL(rel);
	uint32		extra;

	if (start != InvalidBlockNumber)
	{
		kvlsm_ensure_blocks(rel, start + npages);
		return start;
	}
	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	start = extension_start(rel, mc);
	extra = Max(Min(start / 8, KVLSM_EXTEND_MAX), npages);
	extend_empty(rel, start + extra - RelationGetNumberOfBlocks(rel));
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
	if (extra > npages)
		kvlsm_manifest_give_extent(mc, start + npages, extra - npages);
	return start;
}

/*
 * VACUUM: give a free extent at the end of the file back to the file
 * system, as heap's VACUUM truncates empty pages at its end.  Like heap it
 * needs AccessExclusiveLock and takes it only if it comes within a few
 * seconds of trying, never waiting in the lock queue: then no scan, writer
 * or background job is inside the relation, and standbys cancel their
 * queries on it because of the lock's WAL record, as for heap.  The
 * manifest without the extent is installed first and the file truncated
 * after it: a crash between the two leaves pages that no list names, which
 * the first flush after the restart sweeps up (sweep_leaked_pages).
 * Returns the number of blocks given back.
 */
/*
 * Where the file could end: the start of a free extent that reaches its
 * end, or InvalidBlockNumber.  The log reserve counts as free (it is
 * carved from the largest free extent, often the file's free tail): it
 * goes back into 'mc' first.  The extent found is taken out of 'mc'.
 */
static BlockNumber
free_tail(KvlsmMetaPageData *meta, KvlsmManifestCopy *mc, BlockNumber nblocks)
{
	uint32		i;

	if (meta->log_reserve_npages > 0)
	{
		kvlsm_manifest_give_extent(mc, meta->log_reserve_start, meta->log_reserve_npages);
		meta->log_reserve_npages = 0;
	}
	for (i = 0; i < mc->hdr.nfree; i++)
	{
		if (mc->free[i].start + mc->free[i].npages >= nblocks &&
			mc->free[i].start >= KVLSM_FIRST_DATA_BLKNO && mc->free[i].start < nblocks)
		{
			BlockNumber start = mc->free[i].start;

			mc->free[i] = mc->free[--mc->hdr.nfree];
			qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), extent_cmp);
			return start;
		}
	}
	return InvalidBlockNumber;
}

BlockNumber
kvlsm_shrink(Relation rel)
{
	KvlsmShared *sh;
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	KvlsmInstallArg ia;
	BlockNumber nblocks;
	BlockNumber newsize;
	int			tries;

	if (RecoveryInProgress() || RELATION_IS_LOCAL(rel))
		return 0;

	/*
	 * Worth the lock?  As heap's VACUUM: at least 1000 pages, or a
	 * sixteenth of the file.  Read without locks, as a hint.
	 */
	mc = palloc(sizeof(KvlsmManifestCopy));
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	nblocks = RelationGetNumberOfBlocks(rel);
	newsize = free_tail(&meta, mc, nblocks);
	if (newsize == InvalidBlockNumber ||
		(nblocks - newsize < 1000 && nblocks - newsize < nblocks / 16))
	{
		pfree(mc);
		return 0;
	}

	for (tries = 0; !ConditionalLockRelation(rel, AccessExclusiveLock); tries++)
	{
		/* 100 x 50 ms: heap's VACUUM_TRUNCATE_LOCK_TIMEOUT */
		if (tries >= 100)
		{
			pfree(mc);
			return 0;
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(50 * 1000L);
	}
	sh = kvlsm_attach(rel);
	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	nblocks = RelationGetNumberOfBlocks(rel);
	memset(&ia, 0, sizeof(ia));
	ia.clear_reserve = (meta.log_reserve_npages > 0);
	newsize = free_tail(&meta, mc, nblocks);
	if (newsize != InvalidBlockNumber)
	{
		/* a new reserve below the new end */
		kvlsm_manifest_plan_log_reserve(&meta, mc, &ia);
		/* a manifest that would need new pages at the end keeps the file */
		if (!manifest_fits_in_place(rel, mc, newsize))
			newsize = InvalidBlockNumber;
	}
	if (newsize != InvalidBlockNumber)
	{
		kvlsm_manifest_prepare(rel, mc, &ia);
		/*
		 * Checked before the install: once it is in WAL the free tail is in
		 * no list, so an error then would leave it lost until a restart's
		 * sweep.  The continuation pages just written lie in blocks free
		 * in the installed manifest too, so giving up here costs nothing.
		 */
		if (mc->hdr.cont_npages > 0 &&
			mc->hdr.cont_start + mc->hdr.cont_npages > newsize)
			elog(ERROR, "kvlsm: manifest of \"%s\" placed past the truncation point %u",
				 RelationGetRelationName(rel), newsize);
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		kvlsm_manifest_install(rel, sh, mc, &ia);
		LWLockRelease(&sh->lock);
		RelationTruncate(rel, newsize);
	}
	pfree(mc);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	UnlockRelation(rel, AccessExclusiveLock);
	return newsize == InvalidBlockNumber ? 0 : nblocks - newsize;
}

static void
install_edit(KvlsmMetaPageData *meta, KvlsmInstallArg *ia)
{
	meta->manifest_blkno = ia->new_manifest;
	meta->manifest_version = ia->new_version;
	if (ia->next_sstid > meta->next_sstid)
		meta->next_sstid = ia->next_sstid;
	if (ia->retire_frozen)
	{
		meta->frozen.genid = 0;
		meta->frozen.head = meta->frozen.tail = InvalidBlockNumber;
		meta->frozen.npages = 0;
		meta->frozen.tail_used = 0;
		meta->flushes++;
		meta->bytes_flushed += ia->bytes_flushed;
	}
	/*
	 * Only installs refill the reserve and they are serialised by the flush
	 * lock, so a reserve planned as empty is still empty here.
	 */
	if (ia->clear_reserve)
	{
		/* kvlsm_shrink gave the reserve back to the free list */
		meta->log_reserve_start = InvalidBlockNumber;
		meta->log_reserve_npages = 0;
	}
	if (ia->set_reserve)
	{
		Assert(meta->log_reserve_npages == 0);
		meta->log_reserve_start = ia->reserve_start;
		meta->log_reserve_npages = ia->reserve_npages;
	}
	if (ia->set_toast_state)
	{
		meta->toast_fxid = ia->toast_fxid;
		if (ia->toast_sweep)
			meta->flags |= KVLSM_META_TOAST_SWEEP;
		else
			meta->flags &= ~KVLSM_META_TOAST_SWEEP;
	}
	if (ia->is_compaction)
	{
		meta->compactions++;
		meta->bytes_compacted_in += ia->bytes_in;
		meta->bytes_compacted_out += ia->bytes_out;
	}
}

/* take pages [start, start + npages) out of free extent 'i' */
static void
take_free_range(KvlsmManifestCopy *mc, uint32 i, BlockNumber start, uint32 npages)
{
	KvlsmExtent e = mc->free[i];
	BlockNumber tail_start = start + npages;
	uint32		tail = e.start + e.npages - tail_start;

	Assert(start >= e.start && tail_start <= e.start + e.npages);
	if (start == e.start)
	{
		(void) take_free_extent_at(mc, i, npages);
		return;
	}
	mc->free[i].npages = start - e.start;
	if (tail > 0)
		kvlsm_manifest_give_extent(mc, tail_start, tail);
}

/*
 * Pages for the continuation of a new manifest: free in 'mc' and also in
 * the installed manifest 'cur', since pages this edit freed (compaction
 * inputs, a retired log chain) are still in use if it never installs.  Else
 * new pages at the end of the file.  Both lists are sorted by start.
 */
static BlockNumber
find_free_in_both(KvlsmManifestCopy *mc, const KvlsmManifestCopy *cur,
				  uint32 npages, uint32 *extent)
{
	uint32		i,
				j = 0,
				k;

	for (i = 0; cur != NULL && i < mc->hdr.nfree; i++)
	{
		uint64		s1 = mc->free[i].start;
		uint64		e1 = s1 + mc->free[i].npages;

		while (j < cur->hdr.nfree &&
			   (uint64) cur->free[j].start + cur->free[j].npages <= s1)
			j++;
		for (k = j; k < cur->hdr.nfree && cur->free[k].start < e1; k++)
		{
			uint64		s = Max(s1, cur->free[k].start);
			uint64		e = Min(e1, (uint64) cur->free[k].start + cur->free[k].npages);

			if (e > s && e - s >= npages)
			{
				*extent = i;
				return (BlockNumber) s;
			}
		}
	}
	return InvalidBlockNumber;
}

/* the installed manifest, its free list sorted; NULL if unreadable */
static KvlsmManifestCopy *
read_installed(Relation rel)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *cur = palloc(sizeof(KvlsmManifestCopy));
	BlockNumber blkno;

	kvlsm_read_metapage(rel, &meta);
	if (kvlsm_manifest_try_read(rel, meta.manifest_blkno, cur, &blkno) != NULL)
	{
		pfree(cur);
		return NULL;			/* being repaired: new pages only */
	}
	qsort(cur->free, cur->hdr.nfree, sizeof(KvlsmExtent), extent_cmp);
	return cur;
}

/* continuation pages the manifest 'mc' will need when installed */
static uint32
manifest_cont_needed(const KvlsmManifestCopy *mc)
{
	/*
	 * Room for two more free extents than listed now: taking the extent may
	 * split one, and the current continuation pages come back as one.
	 */
	return manifest_cont_pages(manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree + 2));
}

/*
 * Would the continuation pages of 'mc' go below block 'below'?  kvlsm_shrink
 * asks before it gives the file's tail from there back: the install finds
 * the same pages (same lists, same search), or extends the file.
 */
static bool
manifest_fits_in_place(Relation rel, KvlsmManifestCopy *mc, BlockNumber below)
{
	uint32		need = manifest_cont_needed(mc);
	KvlsmManifestCopy *cur;
	uint32		extent;
	BlockNumber start;
	bool		fits;

	if (need == 0)
		return true;
	cur = read_installed(rel);
	qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), extent_cmp);
	start = find_free_in_both(mc, cur, need, &extent);
	fits = start != InvalidBlockNumber && (uint64) start + need <= below;
	if (cur)
		pfree(cur);
	return fits;
}

/*
 * The first block new pages at the end of the file may take: past the
 * file, and past every free extent and the log reserve, which may lie
 * beyond it after an operating system crash (kvlsm_ensure_blocks).  The
 * caller holds the extension lock, then extends up to the block returned.
 */
static BlockNumber
extension_start(Relation rel, const KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData meta;
	BlockNumber start = RelationGetNumberOfBlocks(rel);
	uint32		i;

	for (i = 0; i < mc->hdr.nfree; i++)
		start = Max(start, mc->free[i].start + mc->free[i].npages);
	kvlsm_read_metapage(rel, &meta);
	if (meta.log_reserve_npages > 0)
		start = Max(start, meta.log_reserve_start + meta.log_reserve_npages);
	return start;
}

static BlockNumber
alloc_manifest_pages(Relation rel, KvlsmManifestCopy *mc,
					 const KvlsmManifestCopy *cur, uint32 npages)
{
	BlockNumber start;
	uint32		extent;
	bool		local = RELATION_IS_LOCAL(rel);

	start = find_free_in_both(mc, cur, npages, &extent);
	if (start != InvalidBlockNumber)
	{
		take_free_range(mc, extent, start, npages);
		kvlsm_ensure_blocks(rel, start + npages);
		return start;
	}
	if (!local)
		LockRelationForExtension(rel, ExclusiveLock);
	start = extension_start(rel, mc);
	extend_empty(rel, start + npages - RelationGetNumberOfBlocks(rel));
	if (!local)
		UnlockRelationForExtension(rel, ExclusiveLock);
	return start;
}

/*
 * Write the continuation pages of manifest 'mc' (its stream in 'stream'),
 * a few per generic WAL record.  Pages past the stream's end (the extent
 * was sized with room for the extents the allocation itself adds) carry no
 * payload.
 */
static void
write_manifest_cont(Relation rel, const KvlsmManifestCopy *mc,
					const char *stream, Size len)
{
	uint32		i = 0;

	while (i < mc->hdr.cont_npages)
	{
		int			n = Min(MAX_GENERIC_XLOG_PAGES, mc->hdr.cont_npages - i);
		Buffer		bufs[MAX_GENERIC_XLOG_PAGES];
		GenericXLogState *state;
		int			k;

		for (k = 0; k < n; k++)
		{
			bufs[k] = ReadBufferExtended(rel, MAIN_FORKNUM, mc->hdr.cont_start + i + k,
										 RBM_ZERO_AND_LOCK, NULL);
		}
		state = GenericXLogStart(rel);
		for (k = 0; k < n; k++)
		{
			Page		page = GenericXLogRegisterBuffer(state, bufs[k],
														 GENERIC_XLOG_FULL_IMAGE);
			Size		off = KVLSM_MANIFEST_FIRST_CAPACITY +
				(Size) (i + k) * KVLSM_PAGE_CAPACITY;
			Size		piece = off < len ? Min(len - off, KVLSM_PAGE_CAPACITY) : 0;

			kvlsm_page_init(page, KVLSM_PAGE_MANIFEST, mc->hdr.version);
			KvlsmPageGetOpaque(page)->link = i + k;
			if (piece > 0)
				memcpy(PageGetContents(page), stream + off, piece);
			((PageHeader) page)->pd_lower = SizeOfPageHeaderData + piece;
			kvlsm_page_set_crc(page);
		}
		GenericXLogFinish(state);
		for (k = 0; k < n; k++)
			UnlockReleaseBuffer(bufs[k]);
		i += n;
	}
}

/*
 * First half of an install, done before the caller takes the LSM lock for
 * the second (kvlsm_manifest_install), so that readers do not wait for it:
 * choose the slot and version, place and write the continuation pages
 * (see KvlsmManifestHeader), and serialize the manifest.  The caller holds
 * the flush lock, so no other install comes between the two halves; 'mc'
 * must not change between them.
 */
void
kvlsm_manifest_prepare(Relation rel, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	KvlsmMetaPageData meta;
	BlockNumber old_cont_start = mc->hdr.cont_start;
	uint32		old_cont_npages = mc->hdr.cont_npages;

	kvlsm_read_metapage(rel, &meta);
	ia->new_manifest = (meta.manifest_blkno == KVLSM_MANIFEST_BLKNO_A) ?
		KVLSM_MANIFEST_BLKNO_B : KVLSM_MANIFEST_BLKNO_A;
	ia->new_version = meta.manifest_version + 1;
	mc->hdr.version = ia->new_version;

	/*
	 * A manifest that outgrows its slot page continues in new pages; the
	 * current ones go back only after the new ones are chosen, so the two
	 * never share a page.
	 */
	mc->hdr.cont_start = InvalidBlockNumber;
	mc->hdr.cont_npages = manifest_cont_needed(mc);
	if (mc->hdr.cont_npages > 0)
	{
		KvlsmManifestCopy *cur = read_installed(rel);

		qsort(mc->free, mc->hdr.nfree, sizeof(KvlsmExtent), extent_cmp);
		mc->hdr.cont_start = alloc_manifest_pages(rel, mc, cur, mc->hdr.cont_npages);
		if (cur)
			pfree(cur);
	}
	if (old_cont_npages > 0)
		kvlsm_manifest_give_extent(mc, old_cont_start, old_cont_npages);

	ia->stream_len = manifest_stream_len(mc->hdr.nsst, mc->hdr.nfree);
	Assert(manifest_cont_pages(ia->stream_len) <= mc->hdr.cont_npages);
	ia->stream = palloc(Max(ia->stream_len, 1));
	memcpy(ia->stream, mc->sst, sizeof(KvlsmSstDesc) * mc->hdr.nsst);
	memcpy(ia->stream + sizeof(KvlsmSstDesc) * mc->hdr.nsst, mc->free,
		   sizeof(KvlsmExtent) * mc->hdr.nfree);
	write_manifest_cont(rel, mc, ia->stream, ia->stream_len);
	ia->prepared = true;
	kvlsm_crash_point(KVLSM_CP_MANIFEST_CONT);
}

/*
 * Install a new manifest: after kvlsm_manifest_prepare (called here if the
 * caller did not), write the slot page that is not current and switch the
 * metapage to it in one generic WAL record (manifest block first, metapage
 * last).  The caller holds the flush lock and, when 'sh' is given, the LSM
 * lock exclusively: the shared entry's cache is then replaced too.
 */
void
kvlsm_manifest_install(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc,
					   KvlsmInstallArg *ia)
{
	Buffer		mbuf;
	Buffer		metabuf;
	GenericXLogState *state;
	Page		mpage;
	Page		metapage;
	BlockNumber target;
	char	   *stream;
	Size		len;
	Size		first;
	dsa_pointer cache = InvalidDsaPointer;

	if (!ia->prepared)
		kvlsm_manifest_prepare(rel, mc, ia);
	target = ia->new_manifest;
	stream = ia->stream;
	len = ia->stream_len;

	mbuf = ReadBuffer(rel, target);
	metabuf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	/* the cache's room, before the record: afterwards it cannot fail */
	if (sh != NULL)
		cache = alloc_ssts(mc->hdr.nsst);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	Assert(KvlsmPageGetMeta(BufferGetPage(metabuf))->manifest_version + 1 == ia->new_version);
	state = GenericXLogStart(rel);
	mpage = GenericXLogRegisterBuffer(state, mbuf, GENERIC_XLOG_FULL_IMAGE);
	metapage = GenericXLogRegisterBuffer(state, metabuf, 0);

	kvlsm_page_init(mpage, KVLSM_PAGE_MANIFEST, KvlsmPageGetMeta(metapage)->incarnation);
	memcpy(PageGetContents(mpage), &mc->hdr, sizeof(mc->hdr));
	first = Min(len, KVLSM_MANIFEST_FIRST_CAPACITY);
	memcpy((char *) PageGetContents(mpage) + MAXALIGN(sizeof(KvlsmManifestHeader)),
		   stream, first);
	((PageHeader) mpage)->pd_lower = SizeOfPageHeaderData +
		MAXALIGN(sizeof(KvlsmManifestHeader)) + first;

	install_edit(KvlsmPageGetMeta(metapage), ia);
	kvlsm_page_set_crc(mpage);
	kvlsm_page_set_crc(metapage);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(mbuf);
	UnlockReleaseBuffer(metabuf);
	pfree(stream);
	ia->stream = NULL;
	ia->prepared = false;
	if (sh != NULL)
	{
		set_ssts(sh, cache, mc->sst, mc->hdr.nsst);
		sh->manifest_version = mc->hdr.version;
	}
	kvlsm_crash_point(KVLSM_CP_AFTER_INSTALL);
}

/*
 * Outputs of a compaction that is no longer running (it failed, was
 * abandoned, or the server crashed) go back to the free list.  Called
 * under the flush lock with a fresh copy; true if the copy changed.
 */
bool
kvlsm_manifest_drop_stale(KvlsmShared *sh, KvlsmManifestCopy *mc)
{
	uint32		i,
				j;
	bool		changed = false;

	if (sh->compacting_pid != 0)
		return false;
	for (i = 0, j = 0; i < mc->hdr.nsst; i++)
	{
		if (mc->sst[i].level == KVLSM_LEVEL_PENDING)
		{
			kvlsm_manifest_give_extent(mc, mc->sst[i].start, mc->sst[i].npages);
			changed = true;
		}
		else
			mc->sst[j++] = mc->sst[i];
	}
	mc->hdr.nsst = j;
	return changed;
}

static void
bump_sstid(KvlsmMetaPageData *meta, void *arg)
{
	*(uint64 *) arg = meta->next_sstid++;
}

/*
 * Take an SSTable id for a compaction output (its pages carry it as their
 * owner before the table is installed).  Caller holds the flush lock, so
 * a flush cannot hand out the same id.
 */
uint64
kvlsm_reserve_sstid(Relation rel)
{
	uint64		id;

	edit_metapage(rel, bump_sstid, &id);
	return id;
}

typedef struct FreezeArg
{
	uint64		new_genid;
} FreezeArg;

static void
freeze_edit(KvlsmMetaPageData *meta, void *arg)
{
	FreezeArg  *fa = arg;

	meta->frozen = meta->active;
	fa->new_genid = meta->next_genid++;
	meta->active.genid = fa->new_genid;
	meta->active.head = meta->active.tail = InvalidBlockNumber;
	meta->active.npages = 0;
	meta->active.tail_used = 0;
}

/*
 * Freeze the active generation: records whose log copy is not yet written
 * are copied into the new active generation (their owners will log them
 * into its chain), so the frozen generation holds only logged records.
 * Caller holds the flush lock and the LSM lock exclusively.
 */
static void
freeze_active(Relation rel, KvlsmShared *sh)
{
	const KvlsmKeyOps *ops = kvlsm_keyops(rel);
	KvlsmMemGen newgen;
	KvlsmSkipNode *n;
	FreezeArg	fa;

	memset(&newgen, 0, sizeof(newgen));
	if (!kvlsm_memgen_init(&newgen, 0))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm memtable memory is full"),
				 errhint("Increase kvlsm.memtable_memory.")));
	for (n = kvlsm_memgen_first(&sh->active); n != NULL; n = n->next[0])
	{
		KvlsmSkipNode *copy;

		if (n->logged || n->aborted)
			continue;
		copy = kvlsm_memgen_insert(&newgen, KvlsmSkipNodeKey(n), n->keylen,
								   n->seq, n->recflags, KvlsmSkipNodeValue(n),
								   n->vallen, ops->cmp, ops->arg);
		if (copy == NULL)
		{
			kvlsm_memgen_release(&newgen);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("kvlsm memtable memory is full"),
					 errhint("Increase kvlsm.memtable_memory.")));
		}
		copy->hint = n->hint;
	}
	edit_metapage(rel, freeze_edit, &fa);
	newgen.genid = fa.new_genid;
	sh->frozen = sh->active;
	sh->active = newgen;
	sh->active_since = GetCurrentTimestamp();
	sh->gen_epoch++;
}

/*
 * A writer that filled the memtable switches it to frozen itself (cheap:
 * no SSTable is written) and leaves the flush to a worker, so the next
 * writes go to a fresh memtable at once, as RocksDB switches memtables in
 * the write path.  Only if the flush lock is free right now and nothing is
 * frozen yet; otherwise the writer goes on, or stalls (worker.c).
 */
void
kvlsm_try_freeze(Relation rel, KvlsmShared *sh)
{
	if (sh->frozen.genid != 0 || RecoveryInProgress())
		return;
	if (!ConditionalLockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock))
		return;
	PG_TRY();
	{
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		if (sh->frozen.genid == 0 && sh->active.entries > 0 &&
			sh->active.bytes >= (uint64) sh->memtable_size)
			freeze_active(rel, sh);
		LWLockRelease(&sh->lock);
	}
	PG_FINALLY();
	{
		UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	}
	PG_END_TRY();
}

static int
block_cmp(const void *a, const void *b)
{
	BlockNumber ba = *(const BlockNumber *) a;
	BlockNumber bb = *(const BlockNumber *) b;

	return (ba > bb) - (ba < bb);
}

/*
 * Give the pages of a retired log chain back as free extents.  Walks the
 * chain from its tail; pages are checked to be that generation's.
 */
static void
free_chain_pages(Relation rel, const KvlsmLogChain *chain, KvlsmManifestCopy *mc)
{
	BlockNumber *blocks;
	uint32		n = 0;
	uint32		cap = Max(chain->npages, 16);
	BlockNumber b = chain->tail;
	uint32		i;

	blocks = palloc(sizeof(BlockNumber) * cap);
	while (b != InvalidBlockNumber && n < chain->npages)
	{
		Buffer		buf = kvlsm_read_buffer(rel, b);
		Page		page;
		BlockNumber link;
		bool		ok;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		ok = kvlsm_page_owner_is(page, KVLSM_PAGE_LOG, chain->genid);
		link = ok ? KvlsmPageGetOpaque(page)->link : InvalidBlockNumber;
		UnlockReleaseBuffer(buf);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvlsm relation \"%s\" block %u is not a log page of generation %llu",
							RelationGetRelationName(rel), b,
							(unsigned long long) chain->genid)));
		blocks[n++] = b;
		b = link;
	}
	qsort(blocks, n, sizeof(BlockNumber), block_cmp);
	for (i = 0; i < n;)
	{
		uint32		j = i + 1;

		while (j < n && blocks[j] == blocks[j - 1] + 1)
			j++;
		kvlsm_manifest_give_extent(mc, blocks[i], j - i);
		i = j;
	}
	pfree(blocks);
}

/*
 * Mark and sweep of leaked pages (DESIGN section 8).  A crash between
 * writing pages and installing the manifest that lists them (a flush or a
 * compaction output written to new pages at the end of the file, a log
 * page added by extension), or a free list too full to take an extent,
 * leaves pages that nothing refers to.  Once per LSM after startup, the
 * first flush marks what the metapage and the manifest refer to (fixed
 * blocks, SSTable extents in any state, free extents, the log reserve)
 * and sweeps the rest: a page there is live only if it is a log page of
 * the active or frozen generation (or a newer one); anything else, zero
 * pages included, goes to the free list in the flush's install.
 *
 * Nothing is in flight while it looks: the caller holds the flush lock,
 * under which SSTables are written and installed, and the relation size
 * and metapage are read under the extension lock, which a log writer
 * holds from extending the file until the new page is linked
 * (kvlsm_new_page); pages added later lie beyond the size read.
 */
static void
sweep_leaked_pages(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc)
{
	KvlsmMetaPageData meta;
	BlockNumber nblocks;
	KvlsmExtent *marks;
	uint32		nmarks = 0;
	uint32		i;
	BlockNumber blk;
	BlockNumber run_start = InvalidBlockNumber;
	uint32		run_len = 0;
	uint64		reclaimed = 0;

	if (!RELATION_IS_LOCAL(rel))
		LockRelationForExtension(rel, ExclusiveLock);
	nblocks = RelationGetNumberOfBlocks(rel);
	kvlsm_read_metapage(rel, &meta);
	if (!RELATION_IS_LOCAL(rel))
		UnlockRelationForExtension(rel, ExclusiveLock);

	marks = palloc(sizeof(KvlsmExtent) * (mc->hdr.nsst + mc->hdr.nfree + 2));
	if (mc->hdr.cont_npages > 0)
	{
		marks[nmarks].start = mc->hdr.cont_start;
		marks[nmarks++].npages = mc->hdr.cont_npages;
	}
	for (i = 0; i < mc->hdr.nsst; i++)
	{
		marks[nmarks].start = mc->sst[i].start;
		marks[nmarks++].npages = mc->sst[i].npages;
	}
	for (i = 0; i < mc->hdr.nfree; i++)
		marks[nmarks++] = mc->free[i];
	if (meta.log_reserve_npages > 0)
	{
		marks[nmarks].start = meta.log_reserve_start;
		marks[nmarks++].npages = meta.log_reserve_npages;
	}
	qsort(marks, nmarks, sizeof(KvlsmExtent), extent_cmp);

	i = 0;
	for (blk = KVLSM_FIRST_DATA_BLKNO; blk < nblocks; blk++)
	{
		bool		leaked;

		while (i < nmarks && (uint64) marks[i].start + marks[i].npages <= blk)
			i++;
		if (i < nmarks && marks[i].start <= blk)
		{
			/* skip the rest of this extent */
			blk = marks[i].start + marks[i].npages - 1;
			leaked = false;
		}
		else
		{
			Buffer		buf = ReadBuffer(rel, blk);
			Page		page;

			CHECK_FOR_INTERRUPTS();
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			leaked = true;
			if (!PageIsNew(page) &&
				KvlsmPageGetOpaque(page)->magic == KVLSM_MAGIC &&
				KvlsmPageGetOpaque(page)->page_type == KVLSM_PAGE_LOG)
			{
				uint64		gen = KvlsmPageGetOpaque(page)->owner;

				if ((meta.frozen.genid != 0 && gen == meta.frozen.genid) ||
					gen >= meta.active.genid)
					leaked = false;
			}
			UnlockReleaseBuffer(buf);
		}
		if (leaked)
		{
			if (run_len > 0 && run_start + run_len == blk)
				run_len++;
			else
			{
				if (run_len > 0)
					kvlsm_manifest_give_extent(mc, run_start, run_len);
				run_start = blk;
				run_len = 1;
			}
			reclaimed++;
		}
	}
	if (run_len > 0)
		kvlsm_manifest_give_extent(mc, run_start, run_len);
	pfree(marks);
	if (reclaimed > 0)
	{
		sh->stats.pages_reclaimed += reclaimed;
		elog(LOG, "kvlsm: reclaimed " UINT64_FORMAT " leaked pages of relation \"%s\"",
			 reclaimed, RelationGetRelationName(rel));
	}
}

/* set aside free pages for the next log pages, taken in the install record */
void
kvlsm_manifest_plan_log_reserve(const KvlsmMetaPageData *meta, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	uint32		i;
	uint32		best = 0;

	if (meta->log_reserve_npages > 0 || mc->hdr.nfree == 0)
		return;
	for (i = 1; i < mc->hdr.nfree; i++)
		if (mc->free[i].npages > mc->free[best].npages)
			best = i;
	ia->set_reserve = true;
	ia->reserve_npages = Min(mc->free[best].npages, 256);
	ia->reserve_start = take_free_extent_at(mc, best, ia->reserve_npages);
}

/*
 * Bits per key of the bloom filters of new SSTables: the relation's option
 * bloom_bits_per_key, else kvlsm.bloom_bits_per_key.  Tables hash whole
 * keys (row ids); indexes hash the first key column with the column's hash
 * opclass (indexkey.c), since an entry's key also holds the heap TID.
 */
int
kvlsm_bloom_bits_for(const KvlsmMetaPageData *meta)
{
	if (meta->bloom_bits_option > 0)
		return meta->bloom_bits_option - 1;
	return kvlsm_bloom_bits_per_key;
}

static int	flush_depth = 0;

/*
 * Flush everything written so far: a flush writes the frozen memtable if
 * one is waiting, else the active one, so a second flush writes what the
 * active memtable held meanwhile (kvlsm_flush() for users, and VACUUM
 * before its freezing compaction, which must see every record).
 */
void
kvlsm_flush_all(Relation rel)
{
	kvlsm_flush(rel, true);
	kvlsm_flush(rel, true);
}

/*
 * Flush the memtable to a new L0 SSTable.  With 'force' any non-empty
 * memtable is flushed; otherwise only one over its size.  Runs in the
 * calling backend until background workers take this over.
 */
void
kvlsm_flush(Relation rel, bool force)
{
	KvlsmShared *sh;
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	KvlsmSstBuilder *b;
	KvlsmSkipNode *n;
	KvlsmInstallArg	ia;
	KvlsmSstDesc desc;
	uint32		npages;
	bool		have_sst;
	uint64		wal_before;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot flush kvlsm relation \"%s\" during recovery",
						RelationGetRelationName(rel))));
	if (flush_depth > 0)
		return;

	sh = kvlsm_attach(rel);
	/* our own pending records go first, so that they can be flushed too */
	kvlsm_log_write_full_pages(rel, sh);

	/*
	 * Leave the last manifest slots to compaction outputs: when the
	 * manifest is nearly full, compact (or wait for the compaction that
	 * runs) before adding another table.
	 */
	while (sh->nsst >= KVLSM_MAX_SST - KVLSM_COMPACTION_SLOTS)
	{
		CHECK_FOR_INTERRUPTS();
		if (kvlsm_compact_step(rel))
			continue;
		if (sh->compacting_pid == 0)
			break;
		pg_usleep(10000L);
	}

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	flush_depth++;
	wal_before = pgWalUsage.wal_bytes;
	PG_TRY();
	{
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		sh->flush_requested = false;
		sh->job_queued = false;
		if (sh->frozen.genid == 0)
		{
			if (sh->active.entries == 0 ||
				(!force && sh->active.bytes < (uint64) sh->memtable_size &&
				 kvlsm_arena_free_bytes() >= kvlsm_arena_total_bytes() / 8))
			{
				LWLockRelease(&sh->lock);
				goto done;
			}
			freeze_active(rel, sh);
		}
		LWLockRelease(&sh->lock);

		/*
		 * The frozen generation changes only here, under the flush lock, so
		 * it can be read without the LSM lock.
		 */
		kvlsm_read_metapage(rel, &meta);
		mc = palloc(sizeof(KvlsmManifestCopy));
		kvlsm_manifest_read(rel, &meta, mc);
		kvlsm_manifest_drop_stale(sh, mc);
		if (!sh->swept)
		{
			sh->swept = true;	/* once: a failed sweep is not retried */
			sweep_leaked_pages(rel, sh, mc);
		}
		if (mc->hdr.nsst >= KVLSM_MAX_SST)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("kvlsm relation \"%s\" has too many SSTables to flush",
							RelationGetRelationName(rel)),
					 errhint("Run kvlsm_compact() on it.")));

		b = kvlsm_sst_builder_begin(rel, meta.next_sstid, 0, sh->compression,
									kvlsm_bloom_bits_for(&meta), kvlsm_keyops(rel));
		for (n = kvlsm_memgen_first(&sh->frozen); n != NULL; n = n->next[0])
		{
			if (!n->logged || n->aborted)
				continue;
			kvlsm_sst_builder_add(b, KvlsmSkipNodeKey(n), n->keylen, n->seq,
								  n->recflags, KvlsmSkipNodeValue(n), n->vallen);
		}
		have_sst = kvlsm_sst_builder_count(b) > 0;
		memset(&ia, 0, sizeof(ia));
		ia.retire_frozen = true;
		if (have_sst)
		{
			npages = kvlsm_sst_builder_finish(b);
			kvlsm_manifest_place_sstable(rel, b, npages, mc, &desc);
			kvlsm_crash_point(KVLSM_CP_FLUSH_BEFORE_INSTALL);
			mc->sst[mc->hdr.nsst++] = desc;
			ia.bytes_flushed = (uint64) desc.npages * BLCKSZ;
			ia.next_sstid = desc.id + 1;
		}

		/* the retired chain's pages become free; refill the log reserve */
		kvlsm_crash_point(KVLSM_CP_BEFORE_RETIRE_CHAIN);
		free_chain_pages(rel, &meta.frozen, mc);
		kvlsm_manifest_plan_log_reserve(&meta, mc, &ia);

		kvlsm_manifest_prepare(rel, mc, &ia);
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		kvlsm_manifest_install(rel, sh, mc, &ia);
		kvlsm_memgen_release(&sh->frozen);
		sh->gen_epoch++;
		sh->stats.flushes++;
		sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
		if (!kvlsm_am_worker)
			sh->stats.foreground_flushes++;
		LWLockRelease(&sh->lock);
		pfree(mc);
done:
		;
	}
	PG_FINALLY();
	{
		flush_depth--;
	}
	PG_END_TRY();
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);

	/* a worker runs compactions as jobs of their own */
	if (!kvlsm_am_worker && kvlsm_compaction_needed(sh))
	{
		if (!kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT))
		{
			while (kvlsm_compact_step(rel))
				CHECK_FOR_INTERRUPTS();
		}
	}
}

typedef struct OptionArg
{
	int32		compression;
	int64		memtable_size;
	int32		compaction_style;
} OptionArg;

static void
options_edit(KvlsmMetaPageData *meta, void *arg)
{
	OptionArg  *oa = arg;

	if (oa->compression >= 0)
		meta->compression = oa->compression;
	if (oa->memtable_size > 0)
		meta->memtable_size = oa->memtable_size;
	if (oa->compaction_style >= 0)
		meta->compaction_style = oa->compaction_style;
}

/* store per-relation options in the metapage (negative / 0: unchanged) */
void
kvlsm_store_options(Relation rel, int32 compression, int64 memtable_size,
					int32 compaction_style)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	OptionArg	oa;

	oa.compression = compression;
	oa.memtable_size = memtable_size;
	oa.compaction_style = compaction_style;
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	edit_metapage(rel, options_edit, &oa);
	if (compression >= 0)
		sh->compression = compression;
	if (memtable_size > 0)
		sh->memtable_size = memtable_size;
	if (compaction_style >= 0)
		sh->compaction_style = compaction_style;
	LWLockRelease(&sh->lock);
	/* a new style or size may make a compaction due at once */
	if (compaction_style >= 0 && kvlsm_compaction_needed(sh))
		(void) kvlsm_schedule_work(rel, KVLSM_JOB_COMPACT);
}

static void
bloom_bits_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->bloom_bits_option = *(int32 *) arg;
}

/*
 * The option bloom_bits_per_key (bits + 1; 0: kvlsm.bloom_bits_per_key),
 * in the metapage; SSTables written from now on follow it.
 */
void
kvlsm_store_bloom_bits(Relation rel, int32 option)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	edit_metapage(rel, bloom_bits_edit, &option);
	LWLockRelease(&sh->lock);
}

static void
ttl_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->ttl_usecs = *(int64 *) arg;
}

/* the table option ttl (0 = none), in the metapage */
void
kvlsm_store_ttl(Relation rel, int64 ttl_usecs)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	edit_metapage(rel, ttl_edit, &ttl_usecs);
	sh->ttl_usecs = ttl_usecs;
	LWLockRelease(&sh->lock);
}

/*
 * A consistent copy of the shared entry and of its cached SSTable
 * descriptors (returned, copy->nsst of them; copy->sst means nothing here)
 */
KvlsmSstDesc *
kvlsm_snapshot_state(Relation rel, KvlsmShared *copy)
{
	KvlsmShared *sh = kvlsm_attach(rel);
	KvlsmSstDesc *ssts;

	LWLockAcquire(&sh->lock, LW_SHARED);
	memcpy(copy, sh, sizeof(KvlsmShared));
	ssts = copy_ssts_locked(sh);
	LWLockRelease(&sh->lock);
	return ssts;
}

static void
reset_counters_edit(KvlsmMetaPageData *meta, void *arg)
{
	meta->flushes = 0;
	meta->compactions = 0;
	meta->bytes_flushed = 0;
	meta->bytes_compacted_in = 0;
	meta->bytes_compacted_out = 0;
	meta->log_bytes = 0;
	meta->logical_bytes = 0;
}

/*
 * kvlsm_stats_reset: zero the counters kept in shared memory and the
 * persistent ones in the metapage (WAL-logged, so standbys reset too).
 */
void
kvlsm_reset_counters(Relation rel)
{
	KvlsmShared *sh = kvlsm_attach(rel);

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	edit_metapage(rel, reset_counters_edit, NULL);
	memset(&sh->stats, 0, sizeof(sh->stats));
	sh->stats.reset_at = GetCurrentTimestamp();
	LWLockRelease(&sh->lock);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
}

/*
 * Install a manifest built by kvlsm_repair.  The shared copy of a loaded
 * entry (a primary's is authoritative: attach never rereads it) is replaced
 * in the same step as the switch, under the LSM lock, with its room taken
 * before the WAL record, as flush and compaction do: an error can no longer
 * come between the record and the new copy and leave readers with the old
 * SSTable list.  The caller holds the flush lock (and AccessExclusiveLock).
 */
void
kvlsm_manifest_install_repaired(Relation rel, KvlsmManifestCopy *mc, KvlsmInstallArg *ia)
{
	KvlsmLsmTag tag;
	KvlsmShared *sh;

	make_tag(rel, &tag);
	sh = lookup_entry(&tag, false);
	kvlsm_manifest_prepare(rel, mc, ia);
	if (sh == NULL)
	{
		kvlsm_manifest_install(rel, NULL, mc, ia);
		return;
	}
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh->loaded ? sh : NULL, mc, ia);
	if (sh->loaded)
		sh->gen_epoch++;
	LWLockRelease(&sh->lock);
}

/* ---------------------------------------------------------------------
 * Releasing shared state of dropped relations
 *
 * There is no DROP callback for table AMs.  DROP and TRUNCATE schedule the
 * old filenode's entry for release; it is released when the transaction
 * commits (an abort keeps using it).  Entries of temporary relations go
 * when their backend exits.  The dropping transaction holds
 * AccessExclusiveLock until after the commit callbacks run, so no other
 * backend is using the entry.
 * ---------------------------------------------------------------------
 */

typedef struct PendingDrop
{
	KvlsmLsmTag tag;
	int			nestlevel;
	bool		on_commit;		/* else: release if the transaction aborts */
} PendingDrop;

static List *pending_drops = NIL;
static bool exit_callback_registered = false;

void
kvlsm_release_shared(const KvlsmLsmTag *tag)
{
	KvlsmShared *sh;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	sh = hash_search(lsm_hash, tag, HASH_FIND, NULL);
	if (sh != NULL)
	{
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		kvlsm_memgen_release(&sh->active);
		kvlsm_memgen_release(&sh->frozen);
		clear_ssts(sh);
		sh->loaded = false;
		sh->incarnation = 0;
		LWLockRelease(&sh->lock);
		hash_search(lsm_hash, tag, HASH_REMOVE, NULL);
	}
	LWLockRelease(registry->lock);
}

/*
 * Release the shared state of every relation of database 'dbid' (DROP
 * DATABASE), or of every temporary relation of backend 'backend' (its exit).
 */
static void
release_entries(Oid dbid, BackendId backend)
{
	HASH_SEQ_STATUS status;
	KvlsmShared *sh;
	List	   *tags = NIL;
	ListCell   *lc;

	if (lsm_hash == NULL)
		return;
	LWLockAcquire(registry->lock, LW_SHARED);
	hash_seq_init(&status, lsm_hash);
	while ((sh = hash_seq_search(&status)) != NULL)
	{
		if ((OidIsValid(dbid) && sh->tag.node.dbNode == dbid) ||
			(backend != InvalidBackendId && sh->tag.backend == backend))
		{
			KvlsmLsmTag *t = palloc(sizeof(KvlsmLsmTag));

			*t = sh->tag;
			tags = lappend(tags, t);
		}
	}
	LWLockRelease(registry->lock);
	foreach(lc, tags)
		kvlsm_release_shared((KvlsmLsmTag *) lfirst(lc));
	list_free_deep(tags);
}

void
kvlsm_release_database(Oid dbid)
{
	release_entries(dbid, InvalidBackendId);
}

void
kvlsm_schedule_release(Relation rel, const RelFileNode *node, bool on_commit)
{
	PendingDrop *pd;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	pd = palloc(sizeof(PendingDrop));
	make_tag(rel, &pd->tag);
	if (node != NULL)
		pd->tag.node = *node;
	pd->on_commit = on_commit;
	pd->nestlevel = GetCurrentTransactionNestLevel();
	pending_drops = lappend(pending_drops, pd);
	MemoryContextSwitchTo(old);
}

static void
release_temp_entries(int code, Datum arg)
{
	release_entries(InvalidOid, MyBackendId);
}

/* called when a backend first attaches a temporary kvlsm relation */
void
kvlsm_note_temp_relation(void)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(release_temp_entries, (Datum) 0);
		exit_callback_registered = true;
	}
}

static void
drops_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	/* a collection an error left is over (see kvlsm_collect) */
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		collect_depth = 0;
	if (pending_drops == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		bool		commit = (event == XACT_EVENT_COMMIT ||
							  event == XACT_EVENT_PARALLEL_COMMIT);

		foreach(lc, pending_drops)
		{
			PendingDrop *pd = lfirst(lc);

			if (pd->on_commit == commit)
				kvlsm_release_shared(&pd->tag);
		}
	}
	else if (event != XACT_EVENT_PREPARE)
		return;
	/* a prepared DROP keeps the entry: it is released when unused later */
	list_free_deep(pending_drops);
	pending_drops = NIL;
}

static void
drops_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	List	   *keep = NIL;
	ListCell   *lc;
	int			level = GetCurrentTransactionNestLevel();
	MemoryContext old;

	if (event != SUBXACT_EVENT_ABORT_SUB || pending_drops == NIL)
		return;
	/* the list outlives this subtransaction */
	old = MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, pending_drops)
	{
		PendingDrop *pd = lfirst(lc);

		if (pd->nestlevel >= level)
		{
			/* a filenode created in the aborted subtransaction is gone */
			if (!pd->on_commit)
				kvlsm_release_shared(&pd->tag);
			pfree(pd);
		}
		else
			keep = lappend(keep, pd);
	}
	list_free(pending_drops);
	pending_drops = keep;
	MemoryContextSwitchTo(old);
}

void
kvlsm_lsm_init(void)
{
	RegisterXactCallback(drops_xact_callback, NULL);
	RegisterSubXactCallback(drops_subxact_callback, NULL);
}

/* number of LSMs with shared state (for kvlsm_memory) */
int64
kvlsm_attached_count(void)
{
	int64		n;

	LWLockAcquire(registry->lock, LW_SHARED);
	n = hash_get_num_entries(lsm_hash);
	LWLockRelease(registry->lock);
	return n;
}
