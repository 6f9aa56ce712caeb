/*-------------------------------------------------------------------------
 *
 * toast.c
 *	  The sweep of TOAST values that no row version of a kvlsm table refers
 *	  to any more: those of rows a compaction dropped whose deleting
 *	  transaction never committed.
 *
 * A compaction installs its result first and deletes the TOAST values of
 * the rows it dropped afterwards, in its own transaction (see
 * kvlsm_table_gc); the install names that transaction in the metapage.  If
 * it does not commit (a crash between the install and the commit, or an
 * error), nothing refers to those values any more and nothing would ever
 * delete them: the next compaction of the table calls kvlsm_toast_sweep()
 * before it merges anything (compaction.c decides when).
 *
 * What may go: a TOAST value whose chunks a fresh MVCC snapshot sees, whose
 * inserting transaction ended before that snapshot's xmin, and that no
 * record of the table refers to, reading the records after the snapshot
 * was taken.  A row version enters the LSM before its transaction commits,
 * so every row of a transaction that ended before the snapshot is among
 * the records read, whatever its visibility (old versions still visible to
 * someone keep their values); values of transactions still running are
 * never candidates.  Only one compaction of a table runs at a time, so
 * nothing else drops rows meanwhile.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/lsm.h"
#include "kvlsm/table.h"

/* a growing array of value ids */
typedef struct OidArray
{
	Oid		   *v;
	Size		n;
	Size		max;
} OidArray;

static void
oid_array_add(OidArray *a, Oid v)
{
	if (a->n == a->max)
	{
		a->max = a->max ? a->max * 2 : 1024;
		a->v = a->v ? repalloc_huge(a->v, a->max * sizeof(Oid)) :
			palloc_extended(a->max * sizeof(Oid), MCXT_ALLOC_HUGE);
	}
	a->v[a->n++] = v;
}

static int
oid_cmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return (x > y) - (x < y);
}

static void
oid_array_sort_unique(OidArray *a)
{
	Size		i,
				j = 0;

	if (a->n == 0)
		return;
	qsort(a->v, a->n, sizeof(Oid), oid_cmp);
	for (i = 1; i < a->n; i++)
		if (a->v[i] != a->v[j])
			a->v[++j] = a->v[i];
	a->n = j + 1;
}

/* values the snapshot sees, inserted by transactions ended before its xmin */
static void
collect_candidates(Relation toastrel, Snapshot snap, OidArray *out)
{
	TableScanDesc scan = table_beginscan(toastrel, snap, 0, NULL);
	TupleDesc	desc = RelationGetDescr(toastrel);
	HeapTuple	tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		seq;
		Datum		valueid;

		CHECK_FOR_INTERRUPTS();
		if (!TransactionIdPrecedes(HeapTupleHeaderGetXmin(tup->t_data), snap->xmin))
			continue;
		/* each value once, by its first chunk */
		seq = heap_getattr(tup, 2, desc, &isnull);
		if (isnull || DatumGetInt32(seq) != 0)
			continue;
		valueid = heap_getattr(tup, 1, desc, &isnull);
		if (!isnull)
			oid_array_add(out, DatumGetObjectId(valueid));
	}
	table_endscan(scan);
}

/* the values of this TOAST table one record's row version refers to */
static void
note_references(const KvlsmRecord *r, TupleDesc desc, Oid toastrelid,
				Datum *values, bool *nulls, OidArray *out)
{
	KvlsmRowRecord rr;
	const char *body;
	uint32		bodylen;
	MinimalTuple mt;
	HeapTupleData tuple;
	int			i;

	if (!kvlsm_decode_row_record(r->val, r->vallen, &rr, &body, &bodylen) ||
		body == NULL || !kvlsm_body_has_external(body, bodylen))
		return;
	/* an aligned copy: record values are stored unaligned */
	mt = kvlsm_body_to_minimal_tuple(body, bodylen);
	tuple.t_len = mt->t_len + MINIMAL_TUPLE_OFFSET;
	tuple.t_data = (HeapTupleHeader) ((char *) mt - MINIMAL_TUPLE_OFFSET);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	heap_deform_tuple(&tuple, desc, values, nulls);
	for (i = 0; i < desc->natts; i++)
	{
		struct varlena *v;
		struct varatt_external ext;

		if (nulls[i] || TupleDescAttr(desc, i)->attlen != -1)
			continue;
		v = (struct varlena *) DatumGetPointer(values[i]);
		if (!VARATT_IS_EXTERNAL_ONDISK(v))
			continue;
		VARATT_EXTERNAL_GET_POINTER(ext, v);
		if (ext.va_toastrelid == toastrelid)
			oid_array_add(out, ext.va_valueid);
	}
	pfree(mt);
}

typedef struct RefState
{
	TupleDesc	desc;
	Oid			toastrelid;
	Datum	   *values;
	bool	   *nulls;
	OidArray   *out;
} RefState;

static void
note_batch_references(KvlsmRecord *recs, int n, void *arg)
{
	RefState   *rs = arg;
	int			i;

	for (i = 0; i < n; i++)
		note_references(&recs[i], rs->desc, rs->toastrelid, rs->values, rs->nulls, rs->out);
}

/* every value any record of the table refers to, in any version */
static void
collect_references(Relation rel, Oid toastrelid, OidArray *out)
{
	RefState	rs;

	rs.desc = RelationGetDescr(rel);
	rs.toastrelid = toastrelid;
	rs.values = palloc(sizeof(Datum) * Max(rs.desc->natts, 1));
	rs.nulls = palloc(sizeof(bool) * Max(rs.desc->natts, 1));
	rs.out = out;
	kvlsm_table_each_batch(rel, note_batch_references, &rs);
	pfree(rs.values);
	pfree(rs.nulls);
}

/*
 * Delete the chunks of one value.  A chunk found deleted already is no
 * reason to fail (the sweep would otherwise stop every later compaction of
 * the table), and one that a running transaction is deleting is not waited
 * for: that is a compaction whose fate is still open (a manual one in a
 * transaction not yet ended), and waiting for it while holding this
 * relation's compaction could stall flushes or deadlock.  Such values are
 * left to the next sweep; returns false then.
 */
static bool
delete_value(Relation toastrel, Relation toastidx, Oid valueid, Snapshot snap)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		complete = true;

	ScanKeyInit(&key, (AttrNumber) 1, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(valueid));
	scan = systable_beginscan_ordered(toastrel, toastidx, snap, 1, &key);
	while ((tup = systable_getnext_ordered(scan, ForwardScanDirection)) != NULL)
	{
		TM_FailureData tmfd;
		TM_Result	res;

		res = heap_delete(toastrel, &tup->t_self, GetCurrentCommandId(true),
						  InvalidSnapshot, false, &tmfd, false);
		if (res == TM_BeingModified)
			complete = false;
		else if (res != TM_Ok && res != TM_Deleted && res != TM_Updated &&
				 res != TM_SelfModified)
			elog(ERROR, "kvlsm: could not delete TOAST value %u of \"%s\" (result %d)",
				 valueid, RelationGetRelationName(toastrel), (int) res);
	}
	systable_endscan_ordered(scan);
	return complete;
}

/*
 * The sweep; false if it skipped values a running transaction is deleting
 * (the next compaction sweeps again).
 */
bool
kvlsm_toast_sweep(Relation rel)
{
	Oid			toastrelid = rel->rd_rel->reltoastrelid;
	Relation	toastrel;
	Snapshot	snap;
	OidArray	cand = {0};
	OidArray	refs = {0};
	Size		ndeleted = 0;
	bool		complete = true;

	if (!OidIsValid(toastrelid) || rel->rd_rel->relkind == RELKIND_INDEX)
		return true;
	toastrel = table_open(toastrelid, RowExclusiveLock);
	/* taken before the records are read: see the header comment */
	snap = RegisterSnapshot(GetLatestSnapshot());
	collect_candidates(toastrel, snap, &cand);
	if (cand.n > 0)
	{
		Relation   *toastidxs;
		int			nidx;
		int			valid;
		Size		i,
					j = 0;

		collect_references(rel, toastrelid, &refs);
		oid_array_sort_unique(&cand);
		oid_array_sort_unique(&refs);
		valid = toast_open_indexes(toastrel, RowExclusiveLock, &toastidxs, &nidx);
		for (i = 0; i < cand.n; i++)
		{
			while (j < refs.n && refs.v[j] < cand.v[i])
				j++;
			if (j < refs.n && refs.v[j] == cand.v[i])
				continue;
			if (delete_value(toastrel, toastidxs[valid], cand.v[i], snap))
				ndeleted++;
			else
				complete = false;
		}
		toast_close_indexes(toastidxs, nidx, RowExclusiveLock);
	}
	UnregisterSnapshot(snap);
	table_close(toastrel, RowExclusiveLock);
	if (cand.v)
		pfree(cand.v);
	if (refs.v)
		pfree(refs.v);
	ereport(ndeleted > 0 ? LOG : DEBUG1,
			(errmsg("kvlsm: swept %zu TOAST values of \"%s\" that an interrupted compaction left behind",
					ndeleted, RelationGetRelationName(rel)),
			 complete ? 0 : errdetail("Values that a running transaction is deleting were left for the next compaction.")));
	return complete;
}
