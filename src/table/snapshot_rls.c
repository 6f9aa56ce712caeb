/*-------------------------------------------------------------------------
 *
 * snapshot_rls.c
 *	  Row-level security while time travelling: the policy clauses that
 *	  read tables are wrapped in a current-data scope (kvlsm_rls_enter and
 *	  kvlsm_rls_scope), inside which scans of kvlsm tables use the
 *	  transaction's own snapshot instead of the named one.
 *
 * State: per backend, a stack of the open scopes' tokens, and per
 * subtransaction nesting level the stack's depth at its start, so an error
 * caught by a subtransaction closes the scopes it left open; the stack is
 * emptied at the end of every transaction.  No locks, no WAL.
 *
 * Callers: the planner hook of snapshot_timetravel.c
 * (kvlsm_rls_wrap_policies), kvlsm_scan_snapshot there
 * (kvlsm_rls_current_data_scope), snapshots.c's transaction callbacks, and
 * the wrapped policy clauses themselves (SQL).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "kvlsm/table.h"
#include "snapshot_internal.h"

/*
 * Open current-data scopes of row-level security policies (see
 * kvlsm_rls_wrap_policies): the token each kvlsm_rls_enter() returned, and
 * per subtransaction nesting level the depth at its start, so an error
 * caught by a subtransaction closes the scopes it left open.
 */
static uint64 *rls_tokens = NULL;
static int	rls_depth = 0;
static int	rls_max = 0;
static int *rls_sub_depth = NULL;
static int	rls_sub_max = 0;

/* is a policy clause being evaluated, which sees current data? */
bool
kvlsm_rls_current_data_scope(void)
{
	return rls_depth > 0;
}

/* commit, abort or prepare: no scope stays open */
void
kvlsm_rls_at_xact_end(void)
{
	rls_depth = 0;
}

/* a subtransaction at nesting 'level' starts: remember the depth */
void
kvlsm_rls_at_subxact_start(int level)
{
	if (level >= rls_sub_max)
	{
		int			newmax = Max(level + 1, rls_sub_max * 2);

		if (rls_sub_depth == NULL)
			rls_sub_depth = MemoryContextAlloc(TopMemoryContext,
											   sizeof(int) * newmax);
		else
			rls_sub_depth = repalloc(rls_sub_depth, sizeof(int) * newmax);
		rls_sub_max = newmax;
	}
	rls_sub_depth[level] = rls_depth;
}

/* it aborts: close the scopes it left open */
void
kvlsm_rls_at_subxact_abort(int level)
{
	if (level < rls_sub_max && rls_sub_depth[level] < rls_depth)
		rls_depth = rls_sub_depth[level];
}

/*
 * Does a policy expression read tables: a subquery, a function not built
 * in, or one of the built-in functions that run SQL?
 */
static bool
user_function_checker(Oid funcid, void *context)
{
	switch (funcid)
	{
		case F_TABLE_TO_XML:
		case F_QUERY_TO_XML:
		case F_CURSOR_TO_XML:
		case F_TABLE_TO_XMLSCHEMA:
		case F_QUERY_TO_XMLSCHEMA:
		case F_CURSOR_TO_XMLSCHEMA:
		case F_TABLE_TO_XML_AND_XMLSCHEMA:
		case F_QUERY_TO_XML_AND_XMLSCHEMA:
		case F_SCHEMA_TO_XML:
		case F_SCHEMA_TO_XMLSCHEMA:
		case F_SCHEMA_TO_XML_AND_XMLSCHEMA:
		case F_DATABASE_TO_XML:
		case F_DATABASE_TO_XMLSCHEMA:
		case F_DATABASE_TO_XML_AND_XMLSCHEMA:
		case F_TS_REWRITE_TSQUERY_TEXT:
		case F_TS_STAT_TEXT:
		case F_TS_STAT_TEXT_TEXT:
			return true;
		default:
			return funcid >= FirstGenbkiObjectId;
	}
}

static bool
policy_reads_tables(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan))
		return true;
	/*
	 * Preprocessing made an uncorrelated subquery an InitPlan, which the
	 * clause reaches through a PARAM_EXEC Param and runs when it first
	 * needs the value: inside the scope, once the clause is wrapped.
	 * (Other PARAM_EXEC Params, outer references, are wrapped needlessly
	 * but harmlessly.)
	 */
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	if (check_functions_in_node(node, user_function_checker, NULL))
		return true;
	return expression_tree_walker(node, policy_reads_tables, context);
}

/*
 * Row-level security policies are evaluated by the query itself, with its
 * snapshot: while time travelling, a policy's subquery would read the
 * named snapshot's data, where PostgreSQL's rules want current data (a
 * revoked permission must stay revoked).  So each policy clause that
 * reads tables (a subquery, or a function not built in) is wrapped as
 * kvlsm_rls_scope(kvlsm_rls_enter(), clause).  Function arguments are
 * evaluated in order, so the clause, with every SubPlan, InitPlan and
 * function it runs, is evaluated inside a scope in which scans of kvlsm
 * tables use the transaction's own snapshot.  That holds because the
 * executor begins a subplan's scans when the subplan first runs (SeqNext,
 * IndexNext and the like begin them lazily; the one node that begins its
 * scan at startup, the bitmap heap scan, never scans a kvlsm table), and
 * an index fetch asks kvlsm_scan_snapshot() again every time.
 *
 * This is done when the planner builds the relation's RelOptInfo: the
 * policy clauses are still on the range table entry then (they become
 * restriction clauses later), including those of SQL functions the
 * planner inlines, which a planner_hook would never see.  Policies that
 * only look at the row itself are left alone, so they still drive index
 * scans.
 */
void
kvlsm_rls_wrap_policies(PlannerInfo *root, RelOptInfo *rel)
{
	RangeTblEntry *rte = root->simple_rte_array[rel->relid];
	Oid			enter = InvalidOid;
	Oid			scope = InvalidOid;
	ListCell   *lc;

	foreach(lc, rte->securityQuals)
	{
		/* one security level: an implicitly ANDed list once preprocessed */
		List	   *clauses = IsA(lfirst(lc), List) ? lfirst(lc) : list_make1(lfirst(lc));
		ListCell   *cc;

		foreach(cc, clauses)
		{
			Node	   *clause = lfirst(cc);

			if (!policy_reads_tables(clause, NULL))
				continue;
			if (!OidIsValid(scope))
			{
				char	   *nsp = get_namespace_name(kvlsm_extension_schema());
				Oid			scope_args[2] = {INT8OID, BOOLOID};

				enter = LookupFuncName(list_make2(makeString(nsp), makeString("kvlsm_rls_enter")),
									   0, NULL, false);
				scope = LookupFuncName(list_make2(makeString(nsp), makeString("kvlsm_rls_scope")),
									   2, scope_args, false);
			}
			if (IsA(clause, FuncExpr) && ((FuncExpr *) clause)->funcid == scope)
				continue;		/* wrapped already (a relation planned twice) */
			lfirst(cc) = makeFuncExpr(scope, BOOLOID,
									  list_make2(makeFuncExpr(enter, INT8OID, NIL, InvalidOid,
															  InvalidOid, COERCE_EXPLICIT_CALL),
												 clause),
									  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
		if (!IsA(lfirst(lc), List))
			lfirst(lc) = linitial(clauses);
	}
}

/*
 * kvlsm_rls_enter() and kvlsm_rls_scope(token, result): the current-data
 * scope around a row-level security policy clause (see
 * kvlsm_rls_wrap_policies).  The token is random, so nothing the clause
 * calls can close a scope it did not open and make the rest of the policy
 * read historic data.
 */
PG_FUNCTION_INFO_V1(kvlsm_rls_enter);
Datum
kvlsm_rls_enter(PG_FUNCTION_ARGS)
{
	uint64		token;

	/* not the global PRNG: enter() would show its outputs to anyone */
	if (!pg_strong_random(&token, sizeof(token)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random token")));

	if (rls_depth == rls_max)
	{
		int			newmax = rls_max ? rls_max * 2 : 8;

		if (rls_tokens == NULL)
			rls_tokens = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * newmax);
		else
			rls_tokens = repalloc(rls_tokens, sizeof(uint64) * newmax);
		rls_max = newmax;
	}
	rls_tokens[rls_depth++] = token;
	PG_RETURN_INT64((int64) token);
}

PG_FUNCTION_INFO_V1(kvlsm_rls_scope);
Datum
kvlsm_rls_scope(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || rls_depth == 0 ||
		rls_tokens[rls_depth - 1] != (uint64) PG_GETARG_INT64(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm_rls_scope() does not close the innermost scope kvlsm_rls_enter() opened"),
				 errdetail("These functions are internal to row-level security while time travelling.")));
	rls_depth--;
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_BOOL(PG_GETARG_BOOL(1));
}
