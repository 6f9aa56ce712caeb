/*-------------------------------------------------------------------------
 *
 * snapshot_retained.c
 *	  What a named snapshot costs: kvlsm_snapshot_retained measures the row
 *	  versions of every kvlsm table that only the snapshot still keeps, and
 *	  the latest total of each snapshot is kept in the module's shared
 *	  memory for the kvlsm_snapshots view
 *	  (kvlsm_snapshot_retained_estimate).
 *
 * While a measurement runs, the snapshot being measured is this backend's
 * est_snapshot, so that TTL is judged at its creation time
 * (kvlsm_snapshot_ttl_time asks kvlsm_snapshot_measured_ttl_time).
 *
 * Locking: each table is opened with AccessShareLock; the estimates are
 * read and written under PinShared.mutex only.  No WAL: an estimate is a
 * hint that a restart forgets.
 *
 * Callers: SQL; snapshot_catalog.c (a dropped snapshot's estimate goes);
 * snapshot_timetravel.c (the TTL time of the snapshot being measured).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "kvlsm/page.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/table.h"
#include "snapshot_internal.h"

/* the named snapshot kvlsm_snapshot_retained() is measuring */
static Snapshot est_snapshot = NULL;
static TimestampTz est_time = 0;

/* the time TTL is judged at for the snapshot being measured, else 0 */
TimestampTz
kvlsm_snapshot_measured_ttl_time(Snapshot snapshot)
{
	if (snapshot != NULL && snapshot == est_snapshot)
		return est_time;
	return 0;
}

/* keep the latest estimate of a snapshot for the view (oldest slot goes) */
static void
record_estimate(const char *name, int64 bytes)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	RetainedEstimate *target = NULL;
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
		{
			target = e;
			break;
		}
		if (target == NULL || e->dbid == InvalidOid ||
			(target->dbid != InvalidOid && e->at < target->at))
			target = e;
	}
	target->dbid = MyDatabaseId;
	strlcpy(target->name, name, NAMEDATALEN);
	target->bytes = bytes;
	target->at = GetCurrentTimestamp();
	SpinLockRelease(&pins->mutex);
}

/* a dropped snapshot's estimate goes with it */
void
kvlsm_snapshot_forget_estimate(const char *name)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
			memset(e, 0, sizeof(RetainedEstimate));
	}
	SpinLockRelease(&pins->mutex);
}

/* the kvlsm tables of this database, by OID, in 'cxt' */
static List *
list_kvlsm_tables(MemoryContext cxt)
{
	List	   *relids = NIL;
	uint64		i;

	SPI_connect();
	/* every name qualified: a caller's search_path must not matter here */
	if (SPI_execute("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am a "
					"ON a.oid OPERATOR(pg_catalog.=) c.relam "
					"WHERE a.amname OPERATOR(pg_catalog.=) 'kvlsm' "
					"AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog.\"char\"[]) "
					"ORDER BY c.oid",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not list kvlsm tables");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		/* outside SPI's context, which SPI_finish frees */
		MemoryContext spicxt = MemoryContextSwitchTo(cxt);

		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
	return relids;
}

/*
 * One result row for a table, unless its history began after the snapshot
 * (then it keeps nothing for it); returns the table's retained bytes.
 */
static int64
measure_table(ReturnSetInfo *rsinfo, Oid relid, Snapshot snap)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	KvlsmMetaPageData meta;
	uint64		versions;
	uint64		bytes;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (rel == NULL)
		return 0;
	/* a table whose history began after the snapshot keeps nothing for it */
	kvlsm_read_metapage(rel, &meta);
	if (TransactionIdIsNormal(meta.created_xid) &&
		XidInMVCCSnapshot(meta.created_xid, snap))
	{
		relation_close(rel, AccessShareLock);
		return 0;
	}
	kvlsm_table_retained(rel, snap, &versions, &bytes);
	values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[1] = Int64GetDatum((int64) versions);
	values[2] = Int64GetDatum((int64) bytes);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	relation_close(rel, AccessShareLock);
	return (int64) bytes;
}

/*
 * kvlsm_snapshot_retained(name): per kvlsm table of the database, the row
 * versions the snapshot sees that nothing else keeps any more (deleted by
 * transactions every running snapshot sees as committed, or past their
 * TTL), and their record bytes: roughly what compaction could reclaim if
 * the snapshot were dropped (less what other named snapshots still see).
 * Reads every version of every kvlsm table, like pgstattuple; the total is
 * kept in shared memory for the kvlsm_snapshots view.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_retained);
Datum
kvlsm_snapshot_retained(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		name[NAMEDATALEN];
	Snapshot	snap;
	TimestampTz created;
	List	   *relids;
	ListCell   *lc;
	int64		total = 0;
	MemoryContext callercxt = CurrentMemoryContext;

	kvlsm_snapshot_check_name(PG_GETARG_TEXT_PP(0), name);
	InitMaterializedSRF(fcinfo, 0);
	snap = kvlsm_snapshot_load(name, callercxt, &created);
	relids = list_kvlsm_tables(callercxt);

	est_snapshot = snap;
	est_time = created;
	PG_TRY();
	{
		foreach(lc, relids)
			total += measure_table(rsinfo, lfirst_oid(lc), snap);
	}
	PG_FINALLY();
	{
		est_snapshot = NULL;
	}
	PG_END_TRY();
	record_estimate(name, total);
	return (Datum) 0;
}

/* kvlsm_snapshot_retained_estimate(name): the latest estimate, if any */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_retained_estimate);
Datum
kvlsm_snapshot_retained_estimate(PG_FUNCTION_ARGS)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	char		name[NAMEDATALEN];
	TupleDesc	tupdesc;
	Datum		values[2] = {0};
	bool		nulls[2] = {true, true};
	int			i;

	kvlsm_snapshot_check_name(PG_GETARG_TEXT_PP(0), name);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < PIN_ESTIMATES; i++)
	{
		RetainedEstimate *e = &pins->estimates[i];

		if (e->dbid == MyDatabaseId && strcmp(e->name, name) == 0)
		{
			values[0] = Int64GetDatum(e->bytes);
			values[1] = TimestampTzGetDatum(e->at);
			nulls[0] = nulls[1] = false;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
