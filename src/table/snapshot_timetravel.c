/*-------------------------------------------------------------------------
 *
 * snapshot_timetravel.c
 *	  Time travel: kvlsm_snapshot_use, the substitution of the named
 *	  snapshot in scans of kvlsm tables (kvlsm_scan_snapshot), and the
 *	  planner hooks that keep plans honest while it is on.
 *
 * Time travel is transaction-scoped and is never a setting: a function
 * turns it on for the rest of the transaction, which it makes read only.
 * It applies to MVCC snapshots of kvlsm tables only, never inside a
 * security-restricted operation or a SECURITY DEFINER function, and only
 * on tables the user owns.  A table whose file was created after the
 * snapshot (CREATE, TRUNCATE, VACUUM FULL, CLUSTER, a rewriting ALTER
 * TABLE: the metapage records the creating xid) has no history for it: an
 * error, never today's contents.  While it is on, the planner is told that
 * no index of a kvlsm table is unique (an index built later must not
 * justify join removal or inner-unique joins), no plan is parallel, and
 * cached plans are reset.  Row-level security policies that read tables
 * see current data: their clauses are evaluated inside a scope that
 * switches the substitution off (snapshot_rls.c).
 *
 * State: per backend only (the named snapshot lives in TopTransactionContext
 * and is forgotten at commit, abort or prepare).  No locks of its own, no
 * WAL.
 *
 * Callers: the table AM's scans (scan.c, fetch.c: kvlsm_scan_snapshot),
 * visibility.c (kvlsm_snapshot_ttl_time), SQL (kvlsm_snapshot_use), the
 * planner (hooks installed by kvlsm_snapshots_init), and snapshots.c's
 * transaction callback.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#include "kvlsm/page.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/table.h"
#include "snapshot_internal.h"

/* the named snapshot in use in this transaction */
static Snapshot tt_snapshot = NULL;
static TimestampTz tt_time = 0;
static char tt_name[NAMEDATALEN];
static List *tt_checked = NIL;	/* relids that passed the checks */

static get_relation_info_hook_type prev_get_relation_info = NULL;
static planner_hook_type prev_planner = NULL;

bool
kvlsm_time_travel_active(void)
{
	return tt_snapshot != NULL;
}

TimestampTz
kvlsm_snapshot_ttl_time(Snapshot snapshot)
{
	if (snapshot != NULL && snapshot == tt_snapshot)
		return tt_time;
	return kvlsm_snapshot_measured_ttl_time(snapshot);
}

/* may this relation be read through the named snapshot?  Errors if not. */
static void
check_relation(Relation rel)
{
	KvlsmMetaPageData meta;

	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot read \"%s\" through named snapshot \"%s\"",
						RelationGetRelationName(rel), tt_name),
				 errdetail("Time travel is allowed only on tables the user owns.")));
	kvlsm_read_metapage(rel, &meta);
	if (TransactionIdIsNormal(meta.created_xid) &&
		XidInMVCCSnapshot(meta.created_xid, tt_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_SNAPSHOT_TOO_OLD),
				 errmsg("\"%s\" has no history as old as named snapshot \"%s\"",
						RelationGetRelationName(rel), tt_name),
				 errdetail("The table was created, truncated or rewritten after the snapshot was taken.")));
}

Snapshot
kvlsm_scan_snapshot(Relation rel, Snapshot snapshot)
{
	MemoryContext old;

	if (tt_snapshot == NULL || snapshot == NULL || snapshot == tt_snapshot ||
		snapshot->snapshot_type != SNAPSHOT_MVCC)
		return snapshot;
	if (InSecurityRestrictedOperation() || InLocalUserIdChange())
		return snapshot;
	/* a row-level security policy sees current data */
	if (kvlsm_rls_current_data_scope())
		return snapshot;
	if (!list_member_oid(tt_checked, RelationGetRelid(rel)))
	{
		check_relation(rel);
		old = MemoryContextSwitchTo(TopTransactionContext);
		tt_checked = lappend_oid(tt_checked, RelationGetRelid(rel));
		MemoryContextSwitchTo(old);
	}
	return tt_snapshot;
}

/* what kvlsm_snapshot_use() refuses, besides a second snapshot */
static void
check_use_allowed(void)
{
	if (InSecurityRestrictedOperation() || InLocalUserIdChange())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot use a named snapshot inside a security-restricted operation or a SECURITY DEFINER function")));
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot use a named snapshot in a transaction that has written"),
				 errhint("Call kvlsm_snapshot_use() first in a read-only transaction.")));
	/* a cursor's scans would switch to history halfway */
	if (!ThereAreNoReadyPortals())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot use a named snapshot while cursors are open"),
				 errhint("Call kvlsm_snapshot_use() before opening cursors.")));
}

/*
 * kvlsm_snapshot_use(name): for the rest of the transaction, scans of kvlsm
 * tables see what was visible when the snapshot was taken.
 */
PG_FUNCTION_INFO_V1(kvlsm_snapshot_use);
Datum
kvlsm_snapshot_use(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	Snapshot	snap;

	kvlsm_snapshot_check_name(PG_GETARG_TEXT_PP(0), name);
	RequireTransactionBlock(true, "kvlsm_snapshot_use()");
	if (tt_snapshot != NULL)
	{
		if (strcmp(tt_name, name) == 0)
			PG_RETURN_VOID();
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("named snapshot \"%s\" is already in use in this transaction", tt_name)));
	}
	check_use_allowed();

	snap = kvlsm_snapshot_load(name, TopTransactionContext, &tt_time);

	strlcpy(tt_name, name, NAMEDATALEN);
	tt_checked = NIL;
	tt_snapshot = snap;
	/* the rest of the transaction is read only, and plans are made anew */
	XactReadOnly = true;
	ResetPlanCache();
	PG_RETURN_VOID();
}

/* commit, abort or prepare (snapshots.c's transaction callback) */
void
kvlsm_time_travel_at_xact_end(void)
{
	if (tt_snapshot != NULL)
	{
		/* plans made without unique indexes are not kept */
		ResetPlanCache();
	}
	tt_snapshot = NULL;
	tt_checked = NIL;			/* in TopTransactionContext */
}

/* ---------------------------------------------------------------------
 * Planner hooks
 * ---------------------------------------------------------------------
 */

/*
 * While time travelling the planner must not trust unique indexes of kvlsm
 * tables, and must not meet a policy that would read historic data.
 */
static void
snapshots_get_relation_info(PlannerInfo *root, Oid relationObjectId,
							bool inhparent, RelOptInfo *rel)
{
	if (prev_get_relation_info)
		prev_get_relation_info(root, relationObjectId, inhparent, rel);
	if (tt_snapshot != NULL)
		kvlsm_rls_wrap_policies(root, rel);
	if (tt_snapshot != NULL && rel->indexlist != NIL)
	{
		Relation	r = table_open(relationObjectId, NoLock);
		bool		kv = kvlsm_is_kvlsm_relation(r);
		ListCell   *lc;

		table_close(r, NoLock);
		if (kv)
			foreach(lc, rel->indexlist)
				((IndexOptInfo *) lfirst(lc))->unique = false;
	}
}

/*
 * No parallel plans while time travelling: the named snapshot lives in
 * this backend only, and parallel workers would scan kvlsm tables with the
 * transaction's snapshot (current rows mixed with the leader's historic
 * ones).  Cached plans were reset when time travel began.
 */
static PlannedStmt *
snapshots_planner(Query *parse, const char *query_string, int cursorOptions,
				  ParamListInfo boundParams)
{
	if (tt_snapshot != NULL)
		cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* from kvlsm_snapshots_init, once, in _PG_init */
void
kvlsm_time_travel_install_hooks(void)
{
	prev_get_relation_info = get_relation_info_hook;
	get_relation_info_hook = snapshots_get_relation_info;
	prev_planner = planner_hook;
	planner_hook = snapshots_planner;
}
