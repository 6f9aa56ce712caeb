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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/itup.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "utils/lsyscache.h"
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

/* per-index comparator state, cached in rd_amcache */
const KvlsmKeyOps *
kvlsm_index_keyops(Relation index)
{
	KvlsmIndexKeyArg *ka = (KvlsmIndexKeyArg *) index->rd_amcache;
	int			i;

	if (ka != NULL)
		return &ka->ops;
	ka = MemoryContextAllocZero(index->rd_indexcxt, sizeof(KvlsmIndexKeyArg));
	ka->desc = RelationGetDescr(index);
	ka->natts = IndexRelationGetNumberOfKeyAttributes(index);
	for (i = 0; i < ka->natts; i++)
	{
		FmgrInfo   *proc = index_getprocinfo(index, i + 1, 1);

		fmgr_info_copy(&ka->cmp[i], proc, index->rd_indexcxt);
		ka->collation[i] = index->rd_indcollation[i];
		ka->desc_order[i] = (index->rd_indoption[i] & INDOPTION_DESC) != 0;
		ka->nulls_first[i] = (index->rd_indoption[i] & INDOPTION_NULLS_FIRST) != 0;
	}
	ka->ops.cmp = index_key_cmp;
	ka->ops.arg = ka;
	index->rd_amcache = ka;
	return &ka->ops;
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

	(void) kvlsm_index_keyops(index);
	ka = (KvlsmIndexKeyArg *) index->rd_amcache;
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
