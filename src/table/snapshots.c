/*-------------------------------------------------------------------------
 *
 * snapshots.c
 *	  Named snapshots and time travel: the module's entry point.  Defines
 *	  its GUC, registers its transaction callbacks and planner hooks, and
 *	  tells the files below what a transaction's end means to each.  See
 *	  kvlsm/snapshots.h for what the rest of kvlsm may call.
 *
 * The module, one idea per file (they share snapshot_internal.h):
 *	  snapshot_catalog.c	the catalog table kvlsm_named_snapshot, its rows,
 *							kvlsm_snapshot_create and kvlsm_snapshot_drop
 *	  snapshot_pins.c		shared memory; what named snapshots pin per
 *							database, the GC horizon, TOAST deleters
 *	  snapshot_clock.c		the xid/time clock for TTL against xids
 *	  snapshot_retained.c	kvlsm_snapshot_retained and its estimates
 *	  snapshot_timetravel.c kvlsm_snapshot_use, the scan snapshot
 *							substitution, the planner hooks
 *	  snapshot_rls.c		current-data scopes of row-level security
 *							policies while time travelling
 *
 * The catalog is the extension's table kvlsm_named_snapshot, so snapshots
 * survive restarts and replicate.  The horizon is cached per database in
 * shared memory and reloaded from the catalog after a create or drop
 * commits (or aborts).  Time travel is transaction-scoped and is never a
 * setting.
 *
 * Invariants: nothing here takes a lock or writes WAL.  The transaction
 * callback runs at commit, abort and prepare, and forgets, in this order,
 * the cached pins (if this transaction created or dropped a snapshot), the
 * named snapshot in use and the open row-level security scopes.
 *
 * Callers: _PG_init (src/kvlsm.c) calls kvlsm_snapshots_init once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/guc.h"

#include "kvlsm/snapshots.h"
#include "snapshot_internal.h"

static void
snapshots_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			kvlsm_snapshot_pins_at_xact_end();
			kvlsm_time_travel_at_xact_end();
			kvlsm_rls_at_xact_end();
			break;
		default:
			break;
	}
}

static void
snapshots_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			kvlsm_rls_at_subxact_start(level);
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			kvlsm_rls_at_subxact_abort(level);
			break;
		default:
			break;
	}
}

void
kvlsm_snapshots_init(void)
{
	DefineCustomIntVariable("kvlsm.snapshot_max_age",
							"Age in transactions after which a named snapshot stops holding back garbage collection and can no longer be used.",
							"Applies to snapshots created afterwards; keep it below autovacuum_freeze_max_age.",
							&kvlsm_snapshot_max_age, 150000000, 1000, 1500000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	RegisterXactCallback(snapshots_xact_callback, NULL);
	RegisterSubXactCallback(snapshots_subxact_callback, NULL);
	kvlsm_time_travel_install_hooks();
}
