/*-------------------------------------------------------------------------
 *
 * snapshot_catalog.c
 *	  The catalog of named snapshots, the extension's table
 *	  kvlsm_named_snapshot (so snapshots survive restarts and replicate):
 *	  its rows, and the SQL functions kvlsm_snapshot_create and
 *	  kvlsm_snapshot_drop that add and remove them.
 *
 * A row is a durable copy of an MVCC snapshot: xmin, xmax and every
 * transaction in progress for it, subtransactions included (expanded at
 * creation, because pg_subtrans is truncated at the oldest running xid),
 * with the next xid at which it expires (kvlsm.snapshot_max_age).
 *
 * Invariants: a creator publishes its pin (snapshot_pins.c) before the row
 * exists, then waits for the transactions that deleted TOAST values at
 * once and checks that its snapshot sees how they ended, and only then
 * inserts the row.  Rows are read and written through SPI with every name
 * schema-qualified; the row's WAL is the table's own.
 *
 * Callers: SQL (create, drop); snapshot_pins.c (the oldest pin, on a
 * reload); snapshot_timetravel.c and snapshot_retained.c (loading a
 * snapshot by name).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

#include "kvlsm/table.h"
#include "kvlsm/snapshots.h"
#include "snapshot_internal.h"

int			kvlsm_snapshot_max_age = 150000000;

/* the expanded in-progress list of one snapshot: at most this many xids */
#define MAX_EXPANDED_XIDS (16 * 1024 * 1024)

/* catalog columns */
#define ANUM_NAME		1
#define ANUM_CREATED_AT	2
#define ANUM_CREATED_BY	3
#define ANUM_XMIN		4
#define ANUM_XMAX		5
#define ANUM_XIP		6
#define ANUM_EXPIRES	7

/* the catalog table, or InvalidOid if the extension is not in this database */
static Oid
catalog_relid(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("kvlsm_named_snapshot", nsp);
}

static char *
catalog_name(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"kvlsm\" is not installed in this database")));
	return quote_qualified_identifier(get_namespace_name(nsp), "kvlsm_named_snapshot");
}

/* the 32-bit xid of a stored xid8 */
static TransactionId
xid_of(Datum d)
{
	return XidFromFullTransactionId(DatumGetFullTransactionId(d));
}

/* the stored xid8 of a 32-bit xid of the current or the previous epoch */
static FullTransactionId
full_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (TransactionIdFollows(xid, XidFromFullTransactionId(next)))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/* a snapshot is usable until the next xid reaches its expiry */
static bool
expired(FullTransactionId expires)
{
	return FullTransactionIdFollowsOrEquals(ReadNextFullTransactionId(), expires);
}

/* a snapshot's name, checked, into buf (NAMEDATALEN bytes) */
void
kvlsm_snapshot_check_name(text *name, char *buf)
{
	char	   *s = text_to_cstring(name);

	if (strlen(s) == 0 || strlen(s) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a named snapshot needs a name of 1 to %d bytes", NAMEDATALEN - 1)));
	strlcpy(buf, s, NAMEDATALEN);
}

/* ---------------------------------------------------------------------
 * Reading rows
 * ---------------------------------------------------------------------
 */

/* min xmin and creation time over the usable snapshots in the catalog */
void
kvlsm_snapshot_catalog_oldest(TransactionId *pin, TimestampTz *pin_time)
{
	Oid			relid = catalog_relid();
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;

	*pin = InvalidTransactionId;
	*pin_time = 0;
	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		TransactionId xmin;
		TimestampTz t;

		if (expired(DatumGetFullTransactionId(slot_getattr(slot, ANUM_EXPIRES, &isnull))))
			continue;
		xmin = xid_of(slot_getattr(slot, ANUM_XMIN, &isnull));
		t = DatumGetTimestampTz(slot_getattr(slot, ANUM_CREATED_AT, &isnull));
		if (!TransactionIdIsValid(*pin) || TransactionIdPrecedes(xmin, *pin))
			*pin = xmin;
		if (*pin_time == 0 || t < *pin_time)
			*pin_time = t;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/*
 * Read the named snapshot 'name' from the catalog into a snapshot allocated
 * in 'cxt', and its creation time.  Errors if there is no such snapshot or
 * it is too old to use.
 */
Snapshot
kvlsm_snapshot_load(const char *name, MemoryContext cxt, TimestampTz *created)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	FullTransactionId expires;
	ArrayType  *arr;
	Datum	   *elems;
	int			nelems;
	Snapshot	snap;
	int			i;

	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT created_at, snap_xmin, snap_xmax, xip, expires_xid FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
									   catalog_name()),
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not read the named snapshot catalog");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("named snapshot \"%s\" does not exist", name)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	expires = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 5, &isnull));
	if (expired(expires))
		ereport(ERROR,
				(errcode(ERRCODE_SNAPSHOT_TOO_OLD),
				 errmsg("named snapshot \"%s\" is too old", name),
				 errdetail("It is older than kvlsm.snapshot_max_age allowed when it was created: garbage collection no longer keeps what it needs."),
				 errhint("Drop it with kvlsm_snapshot_drop().")));

	snap = MemoryContextAllocZero(cxt, sizeof(SnapshotData));
	snap->snapshot_type = SNAPSHOT_MVCC;
	snap->xmin = xid_of(SPI_getbinval(tup, desc, 2, &isnull));
	snap->xmax = xid_of(SPI_getbinval(tup, desc, 3, &isnull));
	arr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull));
	deconstruct_array(arr, XID8OID, sizeof(FullTransactionId), true, TYPALIGN_DOUBLE,
					  &elems, NULL, &nelems);
	snap->xip = MemoryContextAlloc(cxt,
								   sizeof(TransactionId) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		snap->xip[i] = xid_of(elems[i]);
	snap->xcnt = nelems;
	snap->subxip = NULL;
	snap->subxcnt = 0;
	snap->suboverflowed = false;
	snap->takenDuringRecovery = false;
	snap->copied = true;
	snap->curcid = GetCurrentCommandId(false);
	*created = DatumGetTimestampTz(SPI_getbinval(tup, desc, 1, &isnull));
	SPI_finish();

	return snap;
}

/* ---------------------------------------------------------------------
 * kvlsm_snapshot_create
 * ---------------------------------------------------------------------
 */

static int
xid_cmp(const void *a, const void *b)
{
	TransactionId xa = *(const TransactionId *) a;
	TransactionId xb = *(const TransactionId *) b;

	return (xa > xb) - (xa < xb);
}

/* what creating a snapshot refuses: recovery, a transaction that wrote */
static void
check_create_allowed(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create a named snapshot during recovery"),
				 errhint("Create it on the primary; it replicates to the standbys.")));
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot create a named snapshot in a transaction that has written"),
				 errhint("Create each named snapshot in its own transaction, before it writes anything.")));
}

/*
 * Transactions that deleted TOAST values at once, not knowing of the pin
 * yet, must have ended, and the snapshot must see how: else it could need
 * values that a VACUUM of the TOAST table removes.  In READ COMMITTED the
 * snapshot is taken after the wait, so it does (*fresh is that snapshot,
 * registered, and *now its time); a transaction snapshot taken earlier may
 * not, and then creating the snapshot fails (retrying in a new transaction
 * succeeds).  Returns the snapshot to record.
 */
static Snapshot
snapshot_after_toast_deleters(const char *name, Snapshot snap,
							  Snapshot *fresh, TimestampTz *now)
{
	TransactionId *deleters;
	int			ndeleters;
	int			i;

	deleters = kvlsm_snapshot_wait_for_toast_deleters(&ndeleters);
	if (!IsolationUsesXactSnapshot())
	{
		*fresh = RegisterSnapshot(GetLatestSnapshot());
		snap = *fresh;
		*now = GetCurrentTimestamp();
	}
	for (i = 0; i < ndeleters; i++)
	{
		if (XidInMVCCSnapshot(deleters[i], snap) && TransactionIdDidCommit(deleters[i]))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create named snapshot \"%s\" because of a concurrent delete", name),
					 errdetail("Transaction %u, which committed after this transaction's snapshot was taken, deleted TOAST values of a kvlsm table that the snapshot could need.",
							   deleters[i]),
					 errhint("Retry in a new transaction, or create the snapshot in a READ COMMITTED transaction.")));
	}
	return snap;
}

/*
 * An overflowed subxid cache means pg_subtrans must be asked, which is only
 * possible now: expand the range [xmin, xmax) explicitly.
 */
static TransactionId *
expand_overflowed(Snapshot snap, int *nxids)
{
	TransactionId *xids;
	TransactionId x;
	int			cap = 1024;
	int			n = 0;

	xids = palloc(sizeof(TransactionId) * cap);
	for (x = snap->xmin; TransactionIdPrecedes(x, snap->xmax);)
	{
		TransactionId cur = x;

		TransactionIdAdvance(x);
		CHECK_FOR_INTERRUPTS();
		if (!XidInMVCCSnapshot(cur, snap))
			continue;
		if (n >= MAX_EXPANDED_XIDS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many transactions in progress for a named snapshot"),
					 errdetail("At most %d in-progress transactions can be recorded.", MAX_EXPANDED_XIDS)));
		if (n >= cap)
		{
			cap *= 2;
			xids = repalloc_huge(xids, sizeof(TransactionId) * cap);
		}
		xids[n++] = cur;
	}
	*nxids = n;
	return xids;
}

/*
 * Every xid in progress for the snapshot, subtransactions included, as a
 * sorted xid8[] for the catalog row.
 */
static ArrayType *
in_progress_array(Snapshot snap)
{
	TransactionId *xids;
	int			nxids = 0;
	Datum	   *elems;
	int			i;

	if (!snap->suboverflowed)
	{
		int			cap = Max(snap->xcnt + snap->subxcnt, 1);

		xids = palloc(sizeof(TransactionId) * cap);
		for (i = 0; i < (int) snap->xcnt; i++)
			xids[nxids++] = snap->xip[i];
		for (i = 0; i < snap->subxcnt; i++)
			xids[nxids++] = snap->subxip[i];
	}
	else
		xids = expand_overflowed(snap, &nxids);
	qsort(xids, nxids, sizeof(TransactionId), xid_cmp);
	elems = palloc(sizeof(Datum) * Max(nxids, 1));
	for (i = 0; i < nxids; i++)
		elems[i] = FullTransactionIdGetDatum(full_xid(xids[i]));
	return construct_array(elems, nxids, XID8OID, sizeof(FullTransactionId), true, TYPALIGN_DOUBLE);
}

/* insert the catalog row; errors if the name is taken */
static void
insert_catalog_row(const char *name, TimestampTz now, Snapshot snap,
				   ArrayType *xiparr, FullTransactionId expires)
{
	Oid			argtypes[7] = {TEXTOID, TIMESTAMPTZOID, OIDOID, XID8OID, XID8OID,
	XID8ARRAYOID, XID8OID};
	Datum		values[7];
	char	   *sql;

	SPI_connect();
	sql = psprintf("SELECT 1 FROM %s WHERE name OPERATOR(pg_catalog.=) $1", catalog_name());
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args(sql, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kvlsm: could not read the named snapshot catalog");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("named snapshot \"%s\" already exists", name)));
	sql = psprintf("INSERT INTO %s VALUES ($1, $2, $3, $4, $5, $6, $7)", catalog_name());
	values[1] = TimestampTzGetDatum(now);
	values[2] = ObjectIdGetDatum(GetUserId());
	values[3] = FullTransactionIdGetDatum(full_xid(snap->xmin));
	values[4] = FullTransactionIdGetDatum(full_xid(snap->xmax));
	values[5] = PointerGetDatum(xiparr);
	values[6] = FullTransactionIdGetDatum(expires);
	if (SPI_execute_with_args(sql, 7, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "kvlsm: could not insert into the named snapshot catalog");
	SPI_finish();
}

/*
 * kvlsm_snapshot_create(name): record the caller's snapshot under a name.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_create);
Datum
kvlsm_snapshot_create(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Snapshot	snap;
	ArrayType  *xiparr;
	TimestampTz now = GetCurrentTimestamp();
	FullTransactionId expires;
	Snapshot	fresh = NULL;
	TupleDesc	tupdesc;
	Datum		result[3];
	bool		nulls[3] = {0};

	kvlsm_snapshot_check_name(PG_GETARG_TEXT_PP(0), name);
	check_create_allowed();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	snap = GetActiveSnapshot();
	if (snap == NULL || snap->snapshot_type != SNAPSHOT_MVCC)
		elog(ERROR, "kvlsm_snapshot_create needs an MVCC snapshot");

	/*
	 * Publish the pin before the row exists (see snapshot_pins.c), with the
	 * statement's xmin, which no snapshot taken later precedes.
	 */
	kvlsm_snapshot_publish_creator(GetTopTransactionId(), snap->xmin, now);
	snap = snapshot_after_toast_deleters(name, snap, &fresh, &now);

	xiparr = in_progress_array(snap);
	expires = FullTransactionIdFromU64(U64FromFullTransactionId(ReadNextFullTransactionId()) +
									   (uint64) kvlsm_snapshot_max_age);
	insert_catalog_row(name, now, snap, xiparr, expires);

	result[0] = CStringGetTextDatum(name);
	result[1] = FullTransactionIdGetDatum(full_xid(snap->xmin));
	result[2] = TimestampTzGetDatum(now);
	if (fresh != NULL)
		UnregisterSnapshot(fresh);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls)));
}

/* ---------------------------------------------------------------------
 * kvlsm_snapshot_drop
 * ---------------------------------------------------------------------
 */

/* kvlsm_snapshot_drop(name): forget it; compaction may then reclaim */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_drop);
Datum
kvlsm_snapshot_drop(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	uint64		n;

	kvlsm_snapshot_check_name(PG_GETARG_TEXT_PP(0), name);
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot drop a named snapshot during recovery")));
	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1", catalog_name()),
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "kvlsm: could not delete from the named snapshot catalog");
	n = SPI_processed;
	SPI_finish();
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("named snapshot \"%s\" does not exist", name)));
	kvlsm_snapshot_note_pins_changed();
	kvlsm_snapshot_forget_estimate(name);
	PG_RETURN_BOOL(true);
}
