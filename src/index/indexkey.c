/*-------------------------------------------------------------------------
 *
 * indexkey.c
 *	  Encoding and ordering of kvlsm_idx keys (see index.h).
 *
 * Ordering is btree's: each column's operator class support function 1
 * (the btree comparison function, e.g. btint4cmp or bttextcmp with the
 * index collation), DESC and NULLS FIRST/LAST per column, then the heap
 * TID.  Separator keys are never shortened bytewise: only comparators
 * decide order, so types whose equal values differ in bytes (numeric 1.0
 * and 1.00, collations) sort correctly.  The comparator runs in every
 * backend that touches the LSM (memtable inserts, flush, compaction,
 * replay), always with the index's own support functions.
 *
 * Bloom filters of an index's SSTables hold the first column's hash, taken
 * with the hash opfamily of the column's equality operator: equal values
 * hash alike even when their bytes differ (numeric 1.0 and 1.00, float
 * -0 and +0, collations), which hashing raw key bytes would get wrong.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/itup.h"
#include "catalog/index.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "common/hashfn.h"
#include "utils/lsyscache.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/index.h"

static int
index_key_cmp(const char *a, int alen, const char *b, int blen, void *arg)
{
	KvlsmIndexKeyArg *ka = (KvlsmIndexKeyArg *) arg;
	IndexTuple	ta = (IndexTuple) (a + KVLSM_IKEY_HEADER);
	IndexTuple	tb = (IndexTuple) (b + KVLSM_IKEY_HEADER);
	int			na = (uint8) a[1];
	int			nb = (uint8) b[1];
	int			n = Min(na, nb);
	int			i;

	for (i = 0; i < n; i++)
	{
		bool		nulla,
					nullb;
		Datum		va = index_getattr(ta, i + 1, ka->desc, &nulla);
		Datum		vb = index_getattr(tb, i + 1, ka->desc, &nullb);
		int32		c;

		if (nulla || nullb)
		{
			if (nulla && nullb)
				continue;
			/* NULLS LAST unless NULLS FIRST; DESC does not move nulls */
			c = nulla ? 1 : -1;
			if (ka->nulls_first[i])
				c = -c;
			return c;
		}
		if (ka->use_ssup[i])
			c = ka->ssup[i].comparator(va, vb, &ka->ssup[i]);
		else
			c = DatumGetInt32(FunctionCall2Coll(&ka->cmp[i], ka->collation[i], va, vb));
		if (c != 0)
		{
			if (ka->desc_order[i])
				c = (c < 0) ? 1 : -1;
			return c;
		}
	}
	/* equal on the shared prefix: probes sort around their prefix */
	if (a[0] != KVLSM_IKEY_ENTRY || b[0] != KVLSM_IKEY_ENTRY)
		return (int) (uint8) a[0] - (int) (uint8) b[0];
	return ItemPointerCompare(&ta->t_tid, &tb->t_tid);
}

/* bloom hash of an entry or probe: its first column, unless NULL */
static bool
index_key_bloom_hash(const char *key, int keylen, void *arg, uint64 *h)
{
	KvlsmIndexKeyArg *ka = (KvlsmIndexKeyArg *) arg;
	bool		isnull;
	Datum		v;

	if (!OidIsValid(ka->bloom_hash_oid))
		return false;
	v = index_getattr((IndexTuple) (key + KVLSM_IKEY_HEADER), 1, ka->desc, &isnull);
	if (isnull)
		return false;
	*h = kvlsm_index_value_hash(&ka->bloom_hash, ka->collation[0], v);
	return true;
}

/*
 * A 32-bit hash opclass value spread over the 64 bits bloom filters take
 * (two halves for double hashing).
 */
uint64
kvlsm_index_value_hash(FmgrInfo *hashproc, Oid collation, Datum value)
{
	uint32		h = DatumGetUInt32(FunctionCall1Coll(hashproc, collation, value));

	return ((uint64) murmurhash32(h ^ 0x6b766c73) << 32) | h;
}

/*
 * The hash function for the argument of an equality scan key on the first
 * column whose right-hand type is 'subtype' (InvalidOid: the column's
 * type), if the filter may be trusted for it: the operator must be
 * hashable and hash its left side exactly as the filter was built.  Not so
 * for date = timestamp (no hash family has it) or types without a hash
 * opclass: then the scan reads every SSTable in range.
 */
bool
kvlsm_index_query_hash(Relation index, Oid subtype, FmgrInfo *hashproc)
{
	KvlsmIndexKeyArg *ka;
	Oid			coltype = index->rd_opcintype[0];
	Oid			eqop;
	RegProcedure lhs,
				rhs;

	ka = (KvlsmIndexKeyArg *) kvlsm_index_keyops(index)->arg;
	if (!OidIsValid(ka->bloom_hash_oid))
		return false;
	eqop = get_opfamily_member(index->rd_opfamily[0], coltype,
							   OidIsValid(subtype) ? subtype : coltype,
							   BTEqualStrategyNumber);
	if (!OidIsValid(eqop) || !get_op_hash_functions(eqop, &lhs, &rhs) ||
		lhs != ka->bloom_hash_oid)
		return false;
	fmgr_info(rhs, hashproc);
	return true;
}

/*
 * Per-index comparator state.  The LSM keeps using it after the call that
 * asked for it: pending log records compare keys at commit, scans between
 * calls.  Memory owned by the relcache entry (rd_indexcxt, rd_amcache, the
 * tuple descriptor) is freed by a relcache flush at any catalog access, so
 * the state lives in a backend-local cache of its own, keyed by index and
 * filenode (an index's opclasses and collations never change within a
 * filenode).  An entry whose index saw an invalidation is freed in a
 * later transaction (scans and pending log records last one transaction at
 * most, and abort processing still compares keys), unless it was asked for
 * again meanwhile; rd_amcache only remembers where the entry is, and is
 * flushed together with the invalidation that marks the entry.
 */
typedef struct KeyOpsCacheKey
{
	Oid			relid;
	RelFileNode node;
} KeyOpsCacheKey;

typedef struct KeyOpsCacheEntry
{
	KeyOpsCacheKey key;
	MemoryContext cxt;
	KvlsmIndexKeyArg *ka;
	bool		stale;			/* free in a later transaction */
	LocalTransactionId stale_lxid;	/* the transaction that marked it */
} KeyOpsCacheEntry;

typedef struct KeyOpsRef
{
	KvlsmIndexKeyArg *ka;
} KeyOpsRef;

static HTAB *keyops_cache = NULL;
static bool keyops_stale = false;

static void
keyops_inval_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	KeyOpsCacheEntry *e;

	hash_seq_init(&status, keyops_cache);
	while ((e = hash_seq_search(&status)) != NULL)
		if (!OidIsValid(relid) || e->key.relid == relid)
		{
			e->stale = true;
			e->stale_lxid = MyProc->lxid;
			keyops_stale = true;
		}
}

/* free the entries marked stale by earlier transactions */
static void
keyops_sweep(void)
{
	HASH_SEQ_STATUS status;
	KeyOpsCacheEntry *e;
	bool		left = false;

	hash_seq_init(&status, keyops_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!e->stale)
			continue;
		if (e->stale_lxid == MyProc->lxid)
		{
			left = true;
			continue;
		}
		MemoryContextDelete(e->cxt);
		hash_search(keyops_cache, &e->key, HASH_REMOVE, NULL);
	}
	keyops_stale = left;
}

/*
 * Comparisons dominate flushes and compactions: where btree's opfamily for
 * the column's "<" has the very comparison function of our opclass and a
 * sort support function, use its fast comparator (no fmgr call; integers
 * compare inline, text skips detoasting copies).  Abbreviated keys are not
 * used: keys are compared one pair at a time.
 */
static void
setup_sortsupport(Relation index, int i, KvlsmIndexKeyArg *ka, MemoryContext cxt)
{
	Oid			opcintype = index->rd_opcintype[i];
	Oid			ltop = get_opfamily_member(index->rd_opfamily[i], opcintype, opcintype,
										   BTLessStrategyNumber);
	Oid			btfamily,
				btintype;
	int16		strategy;
	RegProcedure sortsupport;
	SortSupport ssup = &ka->ssup[i];
	MemoryContext old;

	if (!OidIsValid(ltop) ||
		!get_ordering_op_properties(ltop, &btfamily, &btintype, &strategy) ||
		get_opfamily_proc(btfamily, btintype, btintype, BTORDER_PROC) != ka->cmp[i].fn_oid)
		return;
	sortsupport = get_opfamily_proc(btfamily, btintype, btintype, BTSORTSUPPORT_PROC);
	if (!RegProcedureIsValid(sortsupport))
		return;
	memset(ssup, 0, sizeof(SortSupportData));
	ssup->ssup_cxt = cxt;
	ssup->ssup_collation = ka->collation[i];
	ssup->ssup_attno = i + 1;
	ssup->abbreviate = false;
	old = MemoryContextSwitchTo(cxt);
	OidFunctionCall1(sortsupport, PointerGetDatum(ssup));
	MemoryContextSwitchTo(old);
	ka->use_ssup[i] = (ssup->comparator != NULL);
}

static KvlsmIndexKeyArg *
build_keyops(Relation index, MemoryContext cxt)
{
	KvlsmIndexKeyArg *ka = MemoryContextAllocZero(cxt, sizeof(KvlsmIndexKeyArg));
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Oid			coltype = index->rd_opcintype[0];
	Oid			eqop;
	RegProcedure lhs,
				rhs;
	int			i;

	ka->desc = CreateTupleDescCopy(RelationGetDescr(index));
	MemoryContextSwitchTo(old);
	ka->natts = IndexRelationGetNumberOfKeyAttributes(index);
	for (i = 0; i < ka->natts; i++)
	{
		FmgrInfo   *proc = index_getprocinfo(index, i + 1, 1);

		fmgr_info_copy(&ka->cmp[i], proc, cxt);
		ka->collation[i] = index->rd_indcollation[i];
		ka->desc_order[i] = (index->rd_indoption[i] & INDOPTION_DESC) != 0;
		ka->nulls_first[i] = (index->rd_indoption[i] & INDOPTION_NULLS_FIRST) != 0;
		setup_sortsupport(index, i, ka, cxt);
	}
	ka->ops.cmp = index_key_cmp;
	ka->ops.arg = ka;
	ka->ops.bloom_hash = index_key_bloom_hash;
	eqop = get_opfamily_member(index->rd_opfamily[0], coltype, coltype,
							   BTEqualStrategyNumber);
	if (OidIsValid(eqop) && get_op_hash_functions(eqop, &lhs, &rhs) && lhs == rhs)
	{
		ka->bloom_hash_oid = lhs;
		fmgr_info_cxt(lhs, &ka->bloom_hash, cxt);
	}
	return ka;
}

const KvlsmKeyOps *
kvlsm_index_keyops(Relation index)
{
	KeyOpsRef  *ref = (KeyOpsRef *) index->rd_amcache;
	KeyOpsCacheKey key;
	KeyOpsCacheEntry *e;
	bool		found;

	if (ref != NULL)
		return &ref->ka->ops;
	if (keyops_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(KeyOpsCacheKey);
		ctl.entrysize = sizeof(KeyOpsCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		keyops_cache = hash_create("kvlsm_idx key ops", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(keyops_inval_callback, (Datum) 0);
	}
	if (keyops_stale)
		keyops_sweep();
	memset(&key, 0, sizeof(key));
	key.relid = RelationGetRelid(index);
	key.node = index->rd_node;
	e = hash_search(keyops_cache, &key, HASH_FIND, NULL);
	if (e == NULL)
	{
		MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "kvlsm_idx key ops",
												  ALLOCSET_SMALL_SIZES);
		KvlsmIndexKeyArg *ka;

		/* catalog lookups may flush the cache: build first, then enter */
		PG_TRY();
		{
			ka = build_keyops(index, cxt);
		}
		PG_CATCH();
		{
			MemoryContextDelete(cxt);
			PG_RE_THROW();
		}
		PG_END_TRY();
		e = hash_search(keyops_cache, &key, HASH_ENTER, &found);
		e->cxt = cxt;
		e->ka = ka;
	}
	e->stale = false;			/* in use again: rd_amcache points to it */
	ref = MemoryContextAlloc(index->rd_indexcxt, sizeof(KeyOpsRef));
	ref->ka = e->ka;
	index->rd_amcache = ref;
	return &e->ka->ops;
}

/*
 * Build an LSM key from the first 'ncols' column values (the rest NULL).
 * palloc'd; *keylen set.
 */
char *
kvlsm_index_make_key(Relation index, int marker, int ncols, Datum *values,
					 bool *isnull, ItemPointer tid, int *keylen)
{
	Datum		vals[INDEX_MAX_KEYS];
	bool		nulls[INDEX_MAX_KEYS];
	TupleDesc	desc = RelationGetDescr(index);
	IndexTuple	itup;
	Size		sz;
	char	   *key;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		if (i < ncols)
		{
			vals[i] = values[i];
			nulls[i] = isnull[i];
		}
		else
		{
			vals[i] = (Datum) 0;
			nulls[i] = true;
		}
	}
	itup = index_form_tuple(desc, vals, nulls);
	if (tid)
		itup->t_tid = *tid;
	else
		ItemPointerSetInvalid(&itup->t_tid);
	sz = IndexTupleSize(itup);
	if (marker == KVLSM_IKEY_ENTRY && sz > KVLSM_IDX_MAX_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("index row size %zu exceeds kvlsm_idx maximum %d for index \"%s\"",
						sz, KVLSM_IDX_MAX_KEY, RelationGetRelationName(index)),
				 errhint("Values larger than about 2000 bytes cannot be indexed; consider an index on a hash of the value.")));
	key = palloc(KVLSM_IKEY_HEADER + sz);
	key[0] = (char) marker;
	key[1] = (char) ncols;
	memset(key + 2, 0, KVLSM_IKEY_HEADER - 2);
	memcpy(key + KVLSM_IKEY_HEADER, itup, sz);
	pfree(itup);
	*keylen = KVLSM_IKEY_HEADER + sz;
	return key;
}

IndexTuple
kvlsm_index_key_tuple(const char *key)
{
	return (IndexTuple) (key + KVLSM_IKEY_HEADER);
}


/*
 * Do two entries have equal key columns, for a unique index?  NULLs are
 * equal only with NULLS NOT DISTINCT.
 */
bool
kvlsm_index_keys_equal(Relation index, IndexTuple a, IndexTuple b,
					   bool nulls_not_distinct)
{
	KvlsmIndexKeyArg *ka;
	int			i;

	ka = (KvlsmIndexKeyArg *) kvlsm_index_keyops(index)->arg;
	for (i = 0; i < ka->natts; i++)
	{
		bool		nulla,
					nullb;
		Datum		va = index_getattr(a, i + 1, ka->desc, &nulla);
		Datum		vb = index_getattr(b, i + 1, ka->desc, &nullb);

		if (nulla || nullb)
		{
			if (nulla && nullb && nulls_not_distinct)
				continue;
			return false;
		}
		if (DatumGetInt32(FunctionCall2Coll(&ka->cmp[i], ka->collation[i], va, vb)) != 0)
			return false;
	}
	return true;
}
