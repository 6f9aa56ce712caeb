/*-------------------------------------------------------------------------
 *
 * indexscan.c
 *	  Scans of kvlsm_idx indexes: plain (amgettuple), bitmap (amgetbitmap),
 *	  mark and restore.  Called through the handler in indexam.c.
 *
 * A scan reads the index's LSM in key order, a batch at a time; every
 * batch seeks again after the last key of the previous one, so a scan
 * keeps no pointer into shared memory between calls.  Of the records of
 * one (key columns, TID) only the newest counts (a bulk-delete tombstone
 * hides the entry), and every scan key is tested on every entry with the
 * operator's own function: bounds only make a scan shorter, never change
 * its answer.
 *
 * Bounds come from the first column's keys as a greatest lower and least
 * upper bound in the column's type ("value space"), turned into probes in
 * index order afterwards (a DESC column swaps them).  Arguments of another
 * type (an int8 column against an int4 constant, a date column against a
 * timestamp) are converted conservatively: the bound may be a little wider
 * than the key, never narrower.
 *
 * "= ANY (array)" (amsearcharray): the elements are sorted and
 * de-duplicated; on the first column each element is a range of its own,
 * visited in index order, so the output stays ordered as the planner
 * assumes (btree's _bt_preprocess_array_keys does the same); on later
 * columns the array is a membership test (binary search).  "<, <=, >, >=
 * ANY" reduce to one element.  A NULL array or an array of NULLs matches
 * nothing.
 *
 * An equality on the first column (a scalar key or the current array
 * element) consults the SSTables' bloom filters when its operator hashes
 * as the filters were built (kvlsm_index_query_hash in indexkey.c).
 *
 * The pattern opclass (text_pattern_ops) orders bytewise and has LIKE as
 * strategy 6: the pattern's literal prefix becomes the range from the
 * prefix to its successor, so LIKE 'abc%' is an index range scan whatever
 * the column's collation.
 *
 * Backward scans (ORDER BY ... DESC on an ascending column) step down
 * through their range in windows: the engine iterates forward only, so a
 * window [pivot, previous pivot) is collected forward and returned last to
 * first, where a pivot is a key a few data blocks down in the SSTables
 * (kvlsm_pivot_below).  ORDER BY k DESC LIMIT 10 reads a few blocks, not
 * the range.  Scans driven by "= ANY" collect their whole range first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/nbtree.h"
#include "access/relscan.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/index.h"
#include "kvlsm/page.h"
#include "kvlsm/table.h"

#define INDEX_SCAN_BATCH 256

/* an "= ANY (array)" key: its non-null elements, ascending and distinct */
typedef struct ScanArray
{
	Datum	   *elems;
	int			nelems;
	bool		has_order;		/* 'order' compares a column value with an
								 * element (for the membership test) */
	FmgrInfo	order;
} ScanArray;

/* what a scan key tests entries against */
typedef struct ScanKeyState
{
	ScanArray  *array;			/* equality = ANY; NULL for other keys */
	Datum		arg;			/* the argument (a reduced "< ANY" too) */
} ScanKeyState;

typedef struct KvlsmIdxScanData
{
	KvlsmShared *sh;
	const KvlsmKeyOps *ops;
	KvlsmIndexKeyArg *ka;
	MemoryContext keys_cxt;		/* state of the scan keys: reset at rescan */
	MemoryContext range_cxt;	/* probes of the current range */
	MemoryContext batch_cxt;
	KvlsmRecordSet set;
	int			pos;

	/* scan keys */
	ScanKeyState *keys;
	bool		impossible;		/* no entry can match */
	int16		coltyplen;		/* the first column's type */
	bool		coltypbyval;
	bool		has_vlo;		/* value-space bounds of the first column */
	bool		has_vhi;
	Datum		vlo;
	Datum		vhi;
	bool		eq_hash_ok;		/* a scalar equality on the first column */
	uint64		eq_hash;		/* whose bloom hash is this */

	/* the first column's "= ANY": one range per element */
	int			drive;			/* its scan key, or -1 */
	int			elem;			/* current element */
	bool		drive_hash_ok;
	FmgrInfo	drive_hash;

	/* the current range */
	bool		started;
	bool		range_done;
	char	   *lo;				/* seek probe, or NULL */
	int			lolen;
	char	   *hi;				/* stop probe, or NULL */
	int			hilen;
	bool		has_hash;
	uint64		hash;
	char	   *resume;			/* last key of the last batch */
	int			resumelen;		/* -1: none yet */

	/* the entry returned last (in batch memory, or curbuf) and the mark */
	const char *cur;
	int			curlen;
	int			cur_elem;		/* the array element it belongs to */
	char	   *curbuf;
	char	   *mark;
	int			marklen;		/* -1: marked before the first entry */
	int			mark_elem;
	int			mark_back_pos;

	bool		recheck;

	/* backward scans: the TIDs found so far, in the order returned */
	ItemPointerData *back_tids;
	int			back_n;
	int			back_cap;
	int			back_pos;		/* the next to return; marks keep it */
	bool		back_ready;
	bool		back_windows;	/* stepping down by windows */
	bool		win_last;		/* the last window was read */
	char	   *win_lo;			/* the range's bounds (lolen/hilen -1: none) */
	int			win_lolen;
	char	   *win_hi;
	int			win_hilen;
	char	   *win_end;		/* the current window's exclusive top */
	int			win_endlen;		/* -1: the range's top, inclusive */
	char	   *win_pivot;
} KvlsmIdxScanData;

typedef KvlsmIdxScanData *KvlsmIdxScan;

IndexScanDesc
kvlsm_idx_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	KvlsmIdxScan so = palloc0(sizeof(KvlsmIdxScanData));

	so->sh = kvlsm_attach(index);
	so->ops = kvlsm_index_keyops(index);
	so->ka = (KvlsmIndexKeyArg *) so->ops->arg;
	so->keys_cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx scan keys",
										 ALLOCSET_SMALL_SIZES);
	so->range_cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx scan range",
										  ALLOCSET_SMALL_SIZES);
	so->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm_idx batch",
										  ALLOCSET_DEFAULT_SIZES);
	so->resume = palloc(KVLSM_MAX_KEY_SIZE);
	so->mark = palloc(KVLSM_MAX_KEY_SIZE);
	so->curbuf = palloc(KVLSM_MAX_KEY_SIZE);
	so->marklen = -1;
	kvlsm_recset_init(&so->set, so->batch_cxt);
	get_typlenbyval(index->rd_opcintype[0], &so->coltyplen, &so->coltypbyval);
	scan->opaque = so;
	return scan;
}

void
kvlsm_idx_endscan(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	MemoryContextDelete(so->keys_cxt);
	MemoryContextDelete(so->range_cxt);
	MemoryContextDelete(so->batch_cxt);
	pfree(so->resume);
	pfree(so->mark);
	pfree(so->curbuf);
	pfree(so);
}

/* ------------------------------------------------------------------------
 * Bounds of the first column
 * ------------------------------------------------------------------------
 */

/*
 * timestamptz compares with date and timestamp in the session's time zone:
 * bounds widen by more than any UTC offset a zone can have (POSIX zone
 * specs allow up to a week) rather than depend on it.
 */
#define TZ_SLACK_DAYS	8

typedef enum BoundResult
{
	BOUND_NONE,					/* no useful bound on this side */
	BOUND_VALUE,				/* *out bounds every matching value */
	BOUND_EMPTY					/* no value of the column's type matches */
} BoundResult;

/*
 * A value of the column's type 'coltype' at or below (lower) or at or above
 * (!lower) every column value v for which "v op arg" can hold, 'arg' being
 * of type 'argtype' (the operator's right-hand type in the opfamily).
 * Only the cross-type pairs of the kvlsm_idx opfamilies are known; others
 * give no bound.  Conversions never narrow (see TZ_SLACK_DAYS).
 */
static BoundResult
convert_bound(Oid coltype, Oid argtype, Datum arg, bool lower, Datum *out)
{
	if (!OidIsValid(argtype) || argtype == coltype)
	{
		*out = arg;
		return BOUND_VALUE;
	}
	switch (coltype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			{
				int64		v,
							min,
							max;

				if (argtype == INT2OID)
					v = DatumGetInt16(arg);
				else if (argtype == INT4OID)
					v = DatumGetInt32(arg);
				else if (argtype == INT8OID)
					v = DatumGetInt64(arg);
				else
					return BOUND_NONE;
				min = (coltype == INT2OID) ? PG_INT16_MIN : (coltype == INT4OID) ? PG_INT32_MIN : PG_INT64_MIN;
				max = (coltype == INT2OID) ? PG_INT16_MAX : (coltype == INT4OID) ? PG_INT32_MAX : PG_INT64_MAX;
				if (lower ? v > max : v < min)
					return BOUND_EMPTY;
				if (lower ? v < min : v > max)
					return BOUND_NONE;
				*out = (coltype == INT2OID) ? Int16GetDatum((int16) v) :
					(coltype == INT4OID) ? Int32GetDatum((int32) v) : Int64GetDatum(v);
				return BOUND_VALUE;
			}
		case FLOAT4OID:
			if (argtype == FLOAT8OID)
			{
				float8		v = DatumGetFloat8(arg);
				float4		f;

				/* NaN sorts above everything, infinities convert exactly */
				if (isnan(v))
				{
					if (!lower)
						return BOUND_NONE;
					*out = Float4GetDatum(get_float4_nan());
					return BOUND_VALUE;
				}
				if (isinf(v))
					f = (float4) v;
				else if (v > FLT_MAX)
					f = lower ? get_float4_infinity() : FLT_MAX;
				else if (v < -FLT_MAX)
					f = lower ? -FLT_MAX : -get_float4_infinity();
				else
				{
					f = (float4) v;
					if (lower && (float8) f > v)
						f = nextafterf(f, -get_float4_infinity());
					else if (!lower && (float8) f < v)
						f = nextafterf(f, get_float4_infinity());
				}
				*out = Float4GetDatum(f);
				return BOUND_VALUE;
			}
			return BOUND_NONE;
		case FLOAT8OID:
			if (argtype == FLOAT4OID)
			{
				*out = Float8GetDatum((float8) DatumGetFloat4(arg));
				return BOUND_VALUE;
			}
			return BOUND_NONE;
		case DATEOID:
			if (argtype == TIMESTAMPOID || argtype == TIMESTAMPTZOID)
			{
				Timestamp	t = DatumGetTimestamp(arg);
				int64		days;
				int			slack = (argtype == TIMESTAMPTZOID) ? TZ_SLACK_DAYS : 0;

				if (TIMESTAMP_NOT_FINITE(t))
					return BOUND_NONE;
				days = t / USECS_PER_DAY;
				if (t % USECS_PER_DAY != 0)
				{
					/* C division truncates toward zero: make it floor or ceil */
					if (t < 0)
						days--;
					if (!lower)
						days++;
				}
				days += lower ? -slack : slack;
				*out = DateADTGetDatum((DateADT) days);
				return BOUND_VALUE;
			}
			return BOUND_NONE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			if (argtype == DATEOID)
			{
				DateADT		d = DatumGetDateADT(arg);
				int64		slack = (coltype == TIMESTAMPTZOID) ? TZ_SLACK_DAYS * USECS_PER_DAY : 0;

				/* dates beyond the timestamp range compare as infinities */
				if (DATE_NOT_FINITE(d) ||
					d < DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE ||
					d >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE)
					return BOUND_NONE;
				*out = TimestampGetDatum((int64) d * USECS_PER_DAY + (lower ? -slack : slack));
				return BOUND_VALUE;
			}
			if (argtype == TIMESTAMPOID || argtype == TIMESTAMPTZOID)
			{
				Timestamp	t = DatumGetTimestamp(arg);

				if (TIMESTAMP_NOT_FINITE(t))
					return BOUND_NONE;
				*out = TimestampGetDatum(t + (lower ? -TZ_SLACK_DAYS : TZ_SLACK_DAYS) * USECS_PER_DAY);
				return BOUND_VALUE;
			}
			return BOUND_NONE;
	}
	return BOUND_NONE;
}

static int
compare_values(KvlsmIdxScan so, Datum a, Datum b)
{
	return DatumGetInt32(FunctionCall2Coll(&so->ka->cmp[0], so->ka->collation[0], a, b));
}

/* tighten a value-space bound with 'arg'; false when nothing can match */
static bool
add_bound(KvlsmIdxScan so, Relation index, Oid argtype, Datum arg, bool lower,
		  bool *has, Datum *bound)
{
	Datum		v;

	switch (convert_bound(index->rd_opcintype[0], argtype, arg, lower, &v))
	{
		case BOUND_NONE:
			return true;
		case BOUND_EMPTY:
			return false;
		case BOUND_VALUE:
			break;
	}
	if (!*has || (lower ? compare_values(so, v, *bound) > 0 :
				  compare_values(so, v, *bound) < 0))
	{
		*bound = datumCopy(v, so->coltypbyval, so->coltyplen);
		*has = true;
	}
	return true;
}

/*
 * The literal prefix of a LIKE pattern (backslash escapes; ESCAPE clauses
 * arrive rewritten to them) and its bytewise successor.  Bytes of a
 * multibyte character never look like '%', '_' or '\' in a server
 * encoding, so a byte loop is safe.
 */
static bool
like_prefix_bounds(KvlsmIdxScan so, Relation index, text *pattern)
{
	char	   *p = VARDATA_ANY(pattern);
	int			len = VARSIZE_ANY_EXHDR(pattern);
	char	   *prefix = palloc(len + 1);
	int			n = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (p[i] == '%' || p[i] == '_')
			break;
		if (p[i] == '\\')
		{
			if (++i >= len)
				break;
		}
		prefix[n++] = p[i];
	}
	if (n == 0)
		return true;
	if (!add_bound(so, index, TEXTOID,
				   PointerGetDatum(cstring_to_text_with_len(prefix, n)), true,
				   &so->has_vlo, &so->vlo))
		return false;
	/* every string starting with the prefix sorts before its successor */
	while (n > 0 && (unsigned char) prefix[n - 1] == 0xFF)
		n--;
	if (n == 0)
		return true;
	prefix[n - 1]++;
	return add_bound(so, index, TEXTOID,
					 PointerGetDatum(cstring_to_text_with_len(prefix, n)), false,
					 &so->has_vhi, &so->vhi);
}

/* ------------------------------------------------------------------------
 * Array keys
 * ------------------------------------------------------------------------
 */

typedef struct ElemSortArg
{
	FmgrInfo   *order;
	Oid			collation;
} ElemSortArg;

static int
compare_elems(const void *a, const void *b, void *arg)
{
	ElemSortArg *sa = (ElemSortArg *) arg;

	return DatumGetInt32(FunctionCall2Coll(sa->order, sa->collation,
										   *(const Datum *) a, *(const Datum *) b));
}

/*
 * Prepare an "op ANY (array)" key: equality keeps the sorted distinct
 * elements, an inequality keeps the one element that decides it.  False
 * when the key can match nothing.
 */
static bool
prepare_array_key(IndexScanDesc scan, ScanKey key, ScanKeyState *state)
{
	Relation	index = scan->indexRelation;
	int			col = key->sk_attno - 1;
	ArrayType  *arr = DatumGetArrayTypeP(key->sk_argument);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				nn = 0,
				i;
	RegProcedure orderproc;
	ElemSortArg sa;
	FmgrInfo	order;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			elems[nn++] = elems[i];
	if (nn == 0)
		return false;			/* col op NULL is never true */

	orderproc = get_opfamily_proc(index->rd_opfamily[col], elemtype, elemtype, BTORDER_PROC);
	if (!RegProcedureIsValid(orderproc))
		elog(ERROR, "missing support function %d(%u,%u) in opfamily %u",
			 BTORDER_PROC, elemtype, elemtype, index->rd_opfamily[col]);
	fmgr_info(orderproc, &order);
	sa.order = &order;
	sa.collation = key->sk_collation;
	qsort_arg(elems, nn, sizeof(Datum), compare_elems, &sa);

	switch (key->sk_strategy)
	{
		case BTLessStrategyNumber:
		case BTLessEqualStrategyNumber:
			state->arg = elems[nn - 1];
			return true;
		case BTGreaterEqualStrategyNumber:
		case BTGreaterStrategyNumber:
			state->arg = elems[0];
			return true;
		case BTEqualStrategyNumber:
			break;
		default:
			elog(ERROR, "unexpected strategy %d for an array key", key->sk_strategy);
	}

	{
		ScanArray  *a = palloc0(sizeof(ScanArray));
		int			j = 0;

		for (i = 0; i < nn; i++)
			if (j == 0 || compare_elems(&elems[j - 1], &elems[i], &sa) != 0)
				elems[j++] = elems[i];
		a->elems = elems;
		a->nelems = j;
		orderproc = get_opfamily_proc(index->rd_opfamily[col], index->rd_opcintype[col],
									  elemtype, BTORDER_PROC);
		if (RegProcedureIsValid(orderproc))
		{
			fmgr_info(orderproc, &a->order);
			a->has_order = true;
		}
		state->array = a;
	}
	return true;
}

/* is 'val' (of the column) equal to an element of the array? */
static bool
array_contains(ScanKey key, ScanArray *a, Datum val)
{
	int			lo = 0,
				hi = a->nelems - 1;

	if (!a->has_order)
	{
		int			i;

		for (i = 0; i < a->nelems; i++)
			if (DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											   val, a->elems[i])))
				return true;
		return false;
	}
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int32		c = DatumGetInt32(FunctionCall2Coll(&a->order, key->sk_collation,
														val, a->elems[mid]));

		if (c == 0)
			return true;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Rescan: prepare the keys
 * ------------------------------------------------------------------------
 */

static void
prepare_keys(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	Relation	index = scan->indexRelation;
	int			i;

	so->keys = palloc0(sizeof(ScanKeyState) * Max(scan->numberOfKeys, 1));
	so->impossible = false;
	so->has_vlo = so->has_vhi = false;
	so->eq_hash_ok = false;
	so->drive = -1;
	so->drive_hash_ok = false;

	for (i = 0; i < scan->numberOfKeys && !so->impossible; i++)
	{
		ScanKey		key = &scan->keyData[i];
		ScanKeyState *state = &so->keys[i];

		if (key->sk_flags & SK_ISNULL)
		{
			/* col op NULL (or a NULL array) is never true */
			if (!(key->sk_flags & (SK_SEARCHNULL | SK_SEARCHNOTNULL)))
				so->impossible = true;
			continue;
		}
		state->arg = key->sk_argument;
		if ((key->sk_flags & SK_SEARCHARRAY) && !prepare_array_key(scan, key, state))
		{
			so->impossible = true;
			continue;
		}
		if (key->sk_attno != 1)
			continue;

		if (state->array)
		{
			/* the first such array drives the scan, later ones filter */
			if (so->drive < 0)
			{
				so->drive = i;
				so->drive_hash_ok = kvlsm_index_query_hash(index, key->sk_subtype,
														   &so->drive_hash);
			}
			continue;
		}
		switch (key->sk_strategy)
		{
			case BTEqualStrategyNumber:
				if (!add_bound(so, index, key->sk_subtype, state->arg, true,
							   &so->has_vlo, &so->vlo) ||
					!add_bound(so, index, key->sk_subtype, state->arg, false,
							   &so->has_vhi, &so->vhi))
					so->impossible = true;
				else if (!so->eq_hash_ok)
				{
					FmgrInfo	hashproc;

					if (kvlsm_index_query_hash(index, key->sk_subtype, &hashproc))
					{
						so->eq_hash = kvlsm_index_value_hash(&hashproc, so->ka->collation[0],
															 state->arg);
						so->eq_hash_ok = true;
					}
				}
				break;
			case BTGreaterEqualStrategyNumber:
			case BTGreaterStrategyNumber:
				if (!add_bound(so, index, key->sk_subtype, state->arg, true,
							   &so->has_vlo, &so->vlo))
					so->impossible = true;
				break;
			case BTLessEqualStrategyNumber:
			case BTLessStrategyNumber:
				if (!add_bound(so, index, key->sk_subtype, state->arg, false,
							   &so->has_vhi, &so->vhi))
					so->impossible = true;
				break;
			case KVLSM_IDX_LIKE_STRATEGY:
				/* a prefix range only where order is bytewise */
				if (so->ka->cmp[0].fn_oid == F_BTTEXT_PATTERN_CMP &&
					!like_prefix_bounds(so, index, DatumGetTextPP(state->arg)))
					so->impossible = true;
				break;
		}
	}
	if (!so->impossible && so->has_vlo && so->has_vhi &&
		compare_values(so, so->vlo, so->vhi) > 0)
		so->impossible = true;
}

void
kvlsm_idx_rescan(IndexScanDesc scan, ScanKey scankey, int nscankeys,
				 ScanKey orderbys, int norderbys)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	MemoryContext old;

	if (scankey && scan->numberOfKeys > 0)
		memmove(scan->keyData, scankey, scan->numberOfKeys * sizeof(ScanKeyData));
	MemoryContextReset(so->keys_cxt);
	MemoryContextReset(so->range_cxt);
	kvlsm_recset_reset(&so->set);
	so->pos = 0;
	so->started = false;
	so->range_done = true;
	so->cur = NULL;
	so->marklen = -1;
	so->back_tids = NULL;
	so->back_n = 0;
	so->back_cap = 0;
	so->back_pos = 0;
	so->back_ready = false;
	so->back_windows = false;
	so->win_last = false;
	so->recheck = !kvlsm_is_kvlsm_relation(scan->heapRelation ? scan->heapRelation :
										   scan->indexRelation);
	old = MemoryContextSwitchTo(so->keys_cxt);
	prepare_keys(scan);
	MemoryContextSwitchTo(old);
}

/* ------------------------------------------------------------------------
 * Ranges and batches
 * ------------------------------------------------------------------------
 */

/*
 * The batch memory is about to be reused: copy the current entry (mark and
 * restore, the next batch's resume point) out of it first.
 */
static void
keep_current_entry(KvlsmIdxScan so)
{
	if (so->cur != NULL && so->cur != so->curbuf)
	{
		memcpy(so->curbuf, so->cur, so->curlen);
		so->cur = so->curbuf;
	}
}

/*
 * Set up the range of the current element (or the one range of a scan
 * without a driving array).  False when it is empty.
 */
static bool
setup_range(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	Relation	index = scan->indexRelation;
	bool		has_lo = so->has_vlo,
				has_hi = so->has_vhi;
	Datum		vlo = so->vlo,
				vhi = so->vhi;
	bool		desc = (index->rd_indoption[0] & INDOPTION_DESC) != 0;
	MemoryContext old;
	bool		isnull = false;
	bool		ok = true;

	keep_current_entry(so);
	MemoryContextReset(so->range_cxt);
	kvlsm_recset_reset(&so->set);
	so->pos = 0;
	so->lo = so->hi = NULL;
	so->resumelen = -1;
	so->range_done = false;
	so->has_hash = so->eq_hash_ok;
	so->hash = so->eq_hash;

	old = MemoryContextSwitchTo(so->range_cxt);
	if (so->drive >= 0)
	{
		ScanKey		key = &scan->keyData[so->drive];
		Datum		e = so->keys[so->drive].array->elems[so->elem];

		ok = add_bound(so, index, key->sk_subtype, e, true, &has_lo, &vlo) &&
			add_bound(so, index, key->sk_subtype, e, false, &has_hi, &vhi) &&
			!(has_lo && has_hi && compare_values(so, vlo, vhi) > 0);
		if (so->drive_hash_ok && !so->has_hash)
		{
			so->hash = kvlsm_index_value_hash(&so->drive_hash, so->ka->collation[0], e);
			so->has_hash = true;
		}
	}
	if (ok)
	{
		/* value space to index order */
		if (desc ? has_hi : has_lo)
			so->lo = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_LOW, 1,
										  desc ? &vhi : &vlo, &isnull, NULL, &so->lolen);
		if (desc ? has_lo : has_hi)
			so->hi = kvlsm_index_make_key(index, KVLSM_IKEY_PROBE_HIGH, 1,
										  desc ? &vlo : &vhi, &isnull, NULL, &so->hilen);
	}
	MemoryContextSwitchTo(old);
	return ok;
}

/* move to the next non-empty range; false when the scan is over */
static bool
next_range(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	bool		desc = (scan->indexRelation->rd_indoption[0] & INDOPTION_DESC) != 0;

	if (so->impossible)
		return false;
	if (so->drive < 0)
	{
		if (so->started)
			return false;
		so->started = true;
		return setup_range(scan);
	}
	for (;;)
	{
		int			n = so->keys[so->drive].array->nelems;

		/* elements are ascending; a DESC column visits them backwards */
		if (!so->started)
			so->elem = desc ? n - 1 : 0;
		else
			so->elem += desc ? -1 : 1;
		so->started = true;
		if (so->elem < 0 || so->elem >= n)
			return false;
		if (setup_range(scan))
			return true;
	}
}

/* read the next batch of the current range; false when it is done */
static bool
fetch_batch(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	bool		more;

	if (so->range_done)
		return false;
	keep_current_entry(so);
	if (so->resumelen >= 0)
		more = kvlsm_collect(scan->indexRelation, so->sh, so->ops,
							 so->resume, so->resumelen, true,
							 so->hi, so->hilen, INDEX_SCAN_BATCH,
							 so->has_hash ? &so->hash : NULL, &so->set);
	else
		more = kvlsm_collect(scan->indexRelation, so->sh, so->ops,
							 so->lo, so->lolen, false,
							 so->hi, so->hilen, INDEX_SCAN_BATCH,
							 so->has_hash ? &so->hash : NULL, &so->set);
	so->pos = 0;
	if (so->set.n == 0)
	{
		so->range_done = true;
		return false;
	}
	{
		KvlsmRecord *last = &so->set.recs[so->set.n - 1];

		memcpy(so->resume, last->key, last->keylen);
		so->resumelen = last->keylen;
	}
	if (!more)
		so->range_done = true;
	return true;
}

/* does the entry satisfy every scan key? */
static bool
entry_matches(IndexScanDesc scan, IndexTuple itup)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	TupleDesc	desc = RelationGetDescr(scan->indexRelation);
	int			i;

	for (i = 0; i < scan->numberOfKeys; i++)
	{
		ScanKey		key = &scan->keyData[i];
		ScanKeyState *state = &so->keys[i];
		bool		isnull;
		Datum		val = index_getattr(itup, key->sk_attno, desc, &isnull);

		if (key->sk_flags & SK_ISNULL)
		{
			if (key->sk_flags & SK_SEARCHNULL)
			{
				if (!isnull)
					return false;
			}
			else if (key->sk_flags & SK_SEARCHNOTNULL)
			{
				if (isnull)
					return false;
			}
			else
				return false;
			continue;
		}
		if (isnull)
			return false;
		if (state->array)
		{
			if (i == so->drive)
			{
				if (!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation, val,
													state->array->elems[so->elem])))
					return false;
			}
			else if (!array_contains(key, state->array, val))
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											val, state->arg)))
			return false;
	}
	return true;
}

/* next live matching entry in index order; false at the end */
static bool
next_entry(IndexScanDesc scan, IndexTuple *itup_out)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	for (;;)
	{
		KvlsmRecord *r;
		IndexTuple	itup;

		CHECK_FOR_INTERRUPTS();
		if (so->pos >= so->set.n)
		{
			if (fetch_batch(scan))
				continue;
			if (!next_range(scan))
				return false;
			continue;
		}
		r = &so->set.recs[so->pos];
		/* records of one key are adjacent, newest first */
		so->pos++;
		while (so->pos < so->set.n &&
			   so->ops->cmp(so->set.recs[so->pos].key, so->set.recs[so->pos].keylen,
							r->key, r->keylen, so->ops->arg) == 0)
			so->pos++;
		if (r->flags & KVLSM_IREC_TOMBSTONE)
			continue;
		itup = kvlsm_index_key_tuple(r->key);
		if (!entry_matches(scan, itup))
			continue;
		so->cur = r->key;
		so->curlen = r->keylen;
		so->cur_elem = so->elem;
		*itup_out = itup;
		return true;
	}
}

/*
 * Backward scans: collect the matching entries of the current range (or
 * window) forward, dropping those at or above the window's exclusive top,
 * and append their TIDs to back_tids last to first.
 */
static void
collect_backward(IndexScanDesc scan, int endlen)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	IndexTuple	itup;
	int			first = so->back_n;
	int			i,
				j;

	while (next_entry(scan, &itup))
	{
		if (endlen >= 0 &&
			so->ops->cmp(so->cur, so->curlen, so->win_end, endlen, so->ops->arg) >= 0)
			continue;
		if (so->back_n == so->back_cap)
		{
			so->back_cap = so->back_cap ? so->back_cap * 2 : 64;
			so->back_tids = so->back_tids ?
				repalloc_huge(so->back_tids, sizeof(ItemPointerData) * so->back_cap) :
				MemoryContextAlloc(so->keys_cxt, sizeof(ItemPointerData) * so->back_cap);
		}
		so->back_tids[so->back_n++] = itup->t_tid;
	}
	for (i = first, j = so->back_n - 1; i < j; i++, j--)
	{
		ItemPointerData t = so->back_tids[i];

		so->back_tids[i] = so->back_tids[j];
		so->back_tids[j] = t;
	}
}

/* data blocks of the nearest SSTable a backward window spans */
#define BACKWARD_WINDOW_BLOCKS 4

/*
 * The next window down of a backward scan over a single range: from a
 * pivot below the window's top (or the range's bottom, when no SSTable
 * holds anything between them) up to that top.
 */
static void
next_backward_window(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	const char *top;
	int			toplen;
	int			pivotlen;
	bool		have_pivot;

	if (!so->started)
	{
		so->started = true;
		if (!setup_range(scan))
		{
			so->win_last = true;
			return;
		}
		/* setup_range's bounds live in range_cxt: keep copies */
		so->win_lo = MemoryContextAlloc(so->keys_cxt, KVLSM_MAX_KEY_SIZE);
		so->win_hi = MemoryContextAlloc(so->keys_cxt, KVLSM_MAX_KEY_SIZE);
		so->win_end = MemoryContextAlloc(so->keys_cxt, KVLSM_MAX_KEY_SIZE);
		so->win_pivot = MemoryContextAlloc(so->keys_cxt, KVLSM_MAX_KEY_SIZE);
		so->win_lolen = so->lo ? so->lolen : -1;
		if (so->lo)
			memcpy(so->win_lo, so->lo, so->lolen);
		so->win_hilen = so->hi ? so->hilen : -1;
		if (so->hi)
			memcpy(so->win_hi, so->hi, so->hilen);
		so->win_endlen = -1;
	}
	if (so->win_endlen >= 0)
	{
		top = so->win_end;
		toplen = so->win_endlen;
	}
	else
	{
		top = so->win_hilen >= 0 ? so->win_hi : NULL;
		toplen = so->win_hilen;
	}
	have_pivot = kvlsm_pivot_below(scan->indexRelation, so->sh, so->ops, top, toplen,
								   BACKWARD_WINDOW_BLOCKS, so->win_pivot, &pivotlen);
	if (have_pivot && so->win_lolen >= 0 &&
		so->ops->cmp(so->win_pivot, pivotlen, so->win_lo, so->win_lolen, so->ops->arg) <= 0)
		have_pivot = false;

	/* collect [pivot or range bottom, top] forward */
	keep_current_entry(so);
	kvlsm_recset_reset(&so->set);
	so->pos = 0;
	so->resumelen = -1;
	so->range_done = false;
	so->lo = have_pivot ? so->win_pivot : (so->win_lolen >= 0 ? so->win_lo : NULL);
	so->lolen = have_pivot ? pivotlen : so->win_lolen;
	so->hi = (char *) top;
	so->hilen = toplen;
	collect_backward(scan, so->win_endlen);

	if (have_pivot)
	{
		/* the next window ends below this one's bottom */
		memcpy(so->win_end, so->win_pivot, pivotlen);
		so->win_endlen = pivotlen;
	}
	else
		so->win_last = true;
}

bool
kvlsm_idx_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	IndexTuple	itup;

	if (ScanDirectionIsBackward(dir))
	{
		/* amcanbackward stays false: a scan never changes direction */
		if (!so->back_ready)
		{
			so->back_ready = true;
			so->back_windows = (so->drive < 0);
			if (!so->back_windows)
				collect_backward(scan, -1);
		}
		while (so->back_pos >= so->back_n)
		{
			if (!so->back_windows || so->win_last)
				return false;
			next_backward_window(scan);
		}
		scan->xs_heaptid = so->back_tids[so->back_pos++];
		scan->xs_recheck = so->recheck;
		return true;
	}
	if (!next_entry(scan, &itup))
		return false;
	scan->xs_heaptid = itup->t_tid;
	scan->xs_recheck = so->recheck;
	return true;
}

int64
kvlsm_idx_getbitmap(IndexScanDesc scan, TIDBitmap *tbm)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;
	IndexTuple	itup;
	int64		n = 0;

	while (next_entry(scan, &itup))
	{
		tbm_add_tuples(tbm, &itup->t_tid, 1, so->recheck);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------------
 * Mark and restore (merge joins)
 *
 * The mark is the key of the entry returned last (and the array element
 * it belongs to); restoring seeks again just after it, so the next entry
 * returned is the one that followed the mark.  Entries inserted since may
 * appear: the heap's visibility rules hide them from the scan's snapshot.
 * ------------------------------------------------------------------------
 */

void
kvlsm_idx_markpos(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	so->mark_back_pos = so->back_pos;
	so->mark_elem = so->cur_elem;
	if (so->cur != NULL)
	{
		memcpy(so->mark, so->cur, so->curlen);
		so->marklen = so->curlen;
	}
	else
		so->marklen = -1;
}

void
kvlsm_idx_restrpos(IndexScanDesc scan)
{
	KvlsmIdxScan so = (KvlsmIdxScan) scan->opaque;

	if (so->back_ready)
	{
		so->back_pos = so->mark_back_pos;
		return;
	}
	if (so->marklen < 0)
	{
		/* marked before the first entry: start over */
		so->started = false;
		so->range_done = true;
		kvlsm_recset_reset(&so->set);
		so->pos = 0;
		so->cur = NULL;
		return;
	}
	so->elem = so->mark_elem;
	if (!setup_range(scan))
		elog(ERROR, "kvlsm_idx: marked range is empty");
	memcpy(so->resume, so->mark, so->marklen);
	so->resumelen = so->marklen;
	/* the marked entry is the current one again (a new mark keeps it) */
	memcpy(so->curbuf, so->mark, so->marklen);
	so->cur = so->curbuf;
	so->curlen = so->marklen;
	so->cur_elem = so->mark_elem;
}
