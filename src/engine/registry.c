/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The shared registry of attached LSMs: a hash table in shared memory of
 *	  KvlsmShared entries keyed by (RelFileNode, backend), the manifest cache
 *	  of each entry in a DSA area, the backend's cache of incarnations, and
 *	  attach, which finds or creates a relation's entry and (re)loads it.
 *
 * Pages are the truth; the KvlsmShared entry is a cache that can always be
 * rebuilt from them (DESIGN.md section 1).  On a primary the memtable is
 * "authoritative": every record enters it before its log copy is written.
 * On a hot standby it is rebuilt from the replayed log pages and caught up
 * at every attach (logreader.c); after promotion the first attach catches
 * up once more and takes over.
 *
 * Locks: the registry lock (the "kvlsm" tranche) protects the hash table
 * and is held only to find, add, remove or walk entries; the only lock
 * taken under it is an entry's LSM lock, when kvlsm_release_shared clears
 * the entry.  An entry's manifest cache is replaced whole under its LSM
 * lock held exclusively and read under it held shared.  Nothing here
 * writes WAL: attach only reads pages.
 *
 * Callers: every layer attaches (kvlsm_attach); _PG_init sizes and creates
 * the shared memory; manifest.c replaces manifest caches (at installs, and
 * when attach loads one through logreader.c); release.c says when the
 * entries of dropped relations go.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "kvlsm/logreader.h"
#include "kvlsm/registry.h"

/* GUC (registered in _PG_init) */
int			kvlsm_max_relations = 1024;

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

/* the tag of the relation's entry: its filenode, and its backend if temporary */
void
kvlsm_make_tag(Relation rel, KvlsmLsmTag *tag)
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
dsa_pointer
kvlsm_alloc_ssts(uint32 n)
{
	if (n == 0)
		return InvalidDsaPointer;
	return dsa_allocate(get_manifest_area(), sizeof(KvlsmSstDesc) * n);
}

/*
 * Make 'descs' the cached descriptors, in 'dp' from kvlsm_alloc_ssts.  The
 * caller holds the LSM lock exclusively.  Writers check the L0 table count
 * on every row (write stalls): it is counted here, not on the insert path.
 */
void
kvlsm_set_ssts(KvlsmShared *sh, dsa_pointer dp, const KvlsmSstDesc *descs,
			   uint32 n)
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
	kvlsm_set_ssts(sh, InvalidDsaPointer, NULL, 0);
	sh->manifest_version = 0;
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

	kvlsm_make_tag(rel, &tag);
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
		while (!kvlsm_catch_up(rel, sh, &meta, kvlsm_keyops(rel)))
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
	kvlsm_make_tag(rel, &tag);
	hash_search(incarnation_cache, &tag, HASH_REMOVE, NULL);
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

/* remove the entry of 'tag' and drop what it holds (memtables, manifest cache) */
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
void
kvlsm_release_entries(Oid dbid, BackendId backend)
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

