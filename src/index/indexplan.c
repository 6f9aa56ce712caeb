/*-------------------------------------------------------------------------
 *
 * indexplan.c
 *	  Planner and executor glue for kvlsm_idx: no index-only scans until
 *	  VACUUM interlocks with scans, and deferred entries in place before a
 *	  parallel query.
 *
 * amcanreturn is NULL, yet PostgreSQL 15 still plans an index-only scan on
 * an index with amoptionalkey when a query needs no column at all
 * (SELECT count(*) FROM t): the empty set of needed columns is a subset of
 * what any index returns.  The executor then trusts the visibility map
 * for every TID the index hands out, and a kvlsm_idx scan may hold a TID
 * in its batch while VACUUM removes the entry, frees the TID, and a new
 * row reuses it (btree prevents that with a leaf pin that VACUUM waits
 * for; kvlsm_idx has no such interlock yet, see DESIGN.md section 6).  So
 * such paths become plain index scans, which check every row in the table.
 * Their cost stays the index-only estimate; the plan is what matters.
 *
 * Entries of non-unique kvlsm_idx indexes wait in the inserting backend
 * until a batch is full, the backend reads the index, or the transaction
 * commits (logwriter.c).  Parallel workers of a later query in the same
 * transaction read the shared memtables only, so a query that may run
 * in parallel first puts every waiting entry in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "executor/executor.h"
#include "nodes/pathnodes.h"
#include "optimizer/paths.h"

#include "kvlsm/index.h"
#include "kvlsm/logwriter.h"

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;

static void
kvlsm_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (queryDesc->plannedstmt->parallelModeNeeded)
		kvlsm_apply_all_deferred();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}


static void
no_index_only(List *paths, Oid amoid)
{
	ListCell   *lc;

	foreach(lc, paths)
	{
		Path	   *path = (Path *) lfirst(lc);

		if (IsA(path, IndexPath) && path->pathtype == T_IndexOnlyScan &&
			((IndexPath *) path)->indexinfo->relam == amoid)
			path->pathtype = T_IndexScan;
	}
}

static void
kvlsm_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
					   RangeTblEntry *rte)
{
	Oid			amoid;

	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);
	if (rel->indexlist == NIL)
		return;
	amoid = get_index_am_oid("kvlsm_idx", true);
	if (!OidIsValid(amoid))
		return;
	no_index_only(rel->pathlist, amoid);
	no_index_only(rel->partial_pathlist, amoid);
}

void
kvlsm_indexplan_init(void)
{
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = kvlsm_set_rel_pathlist;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = kvlsm_executor_start;
}
