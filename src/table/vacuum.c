/*-------------------------------------------------------------------------
 *
 * vacuum.c
 *	  VACUUM of a kvlsm table, as vacuumlazy.c is for heap: one pass over
 *	  every row finds those dead to everyone, hands them to the indexes,
 *	  and reports the counts; an aggressive VACUUM also freezes.
 *
 * VACUUM finds row ids dead to everyone (aborted or killed inserts, rows
 * past their TTL for every running transaction, and deletes older than
 * every snapshot) and hands them to every index's ambulkdelete, as lazy
 * vacuum does with dead heap TIDs; it reports live and dead counts so
 * autovacuum's thresholds work.  Row ids are never reused, so an index
 * entry that survives can only point at a missing row, never at a wrong
 * one.  The versions themselves are dropped by compaction.
 *
 * Dead rows are handed to the indexes once and then marked purged (a PURGE
 * record), so that compaction may drop them.  Before an index loses
 * entries a standby might still need, a recovery conflict record goes to
 * WAL (kvlsm_log_recovery_conflict, as heap's prune records do).  Named
 * snapshots hold the freeze limit back.  The callback runs with the
 * caller's ShareUpdateExclusiveLock on the table; indexes are opened with
 * RowExclusiveLock.
 *
 * The callback is in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/multixact.h"
#include "access/transam.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/compaction.h"
#include "kvlsm/manifest.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/relocate.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/table_internal.h"

/* one VACUUM of one table */
typedef struct KvlsmVacuumState
{
	Relation	rel;
	BufferAccessStrategy bstrategy;
	GlobalVisState *vis;
	TimestampTz ttl_horizon;

	/* the indexes, when index cleanup is on */
	Relation   *indrels;
	int			nindexes;
	IndexBulkDeleteResult **stats;
	VacDeadItems *dead_items;	/* NULL: no index to clean */

	/* what the pass found */
	double		live;
	double		dead;
	TransactionId latest_removed;
	TimestampTz ttl_max_expired;
} KvlsmVacuumState;

static IndexVacuumInfo
vacuum_info(Relation index, double live, bool estimated, BufferAccessStrategy bstrategy)
{
	IndexVacuumInfo ivinfo;

	ivinfo.index = index;
	ivinfo.analyze_only = false;
	ivinfo.report_progress = false;
	ivinfo.estimated_count = estimated;
	ivinfo.message_level = DEBUG2;
	ivinfo.num_heap_tuples = live;
	ivinfo.strategy = bstrategy;
	return ivinfo;
}

/* remove the index entries of 'dead' from every index, then forget them */
static void
vacuum_indexes(Relation rel, Relation *indrels, int nindexes,
			   IndexBulkDeleteResult **stats, VacDeadItems *dead,
			   double live, BufferAccessStrategy bstrategy)
{
	int			i;

	for (i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo = vacuum_info(indrels[i], live, true, bstrategy);

		stats[i] = vac_bulkdel_one_index(&ivinfo, stats[i], dead);
	}

	/*
	 * No index points at these rows any more: a PURGE record lets
	 * compaction drop them (kvlsm_table_gc).  Losing one in a crash only
	 * means the next VACUUM finds the row again.
	 */
	{
		KvlsmShared *sh = kvlsm_attach(rel);
		KvlsmRowRecord rr;

		memset(&rr, 0, sizeof(rr));
		rr.kind = KVLSM_REC_PURGE;
		rr.xid = InvalidTransactionId;
		for (i = 0; i < dead->num_items; i++)
		{
			kvlsm_put_row_record(rel, sh, kvlsm_tid_to_rowid(&dead->items[i]), &rr, NULL);
			if ((i & 255) == 255)
				kvlsm_maybe_flush(rel, sh);
		}
		kvlsm_maybe_flush(rel, sh);
	}
	dead->num_items = 0;
}

/*
 * The dead rows collected so far out of the indexes.  As heap's prune
 * records do: standby snapshots that need the rows go first.
 */
static void
vacuum_dead_rows(KvlsmVacuumState *vs)
{
	kvlsm_log_recovery_conflict(vs->rel, kvlsm_conflict_xid(vs->latest_removed,
															vs->ttl_max_expired));
	vacuum_indexes(vs->rel, vs->indrels, vs->nindexes, vs->stats,
				   vs->dead_items, vs->live, vs->bstrategy);
}

/*
 * The xid limits of this VACUUM; true if it is aggressive.  Named
 * snapshots: nothing one may see as in progress is frozen, so relfrozenxid
 * never passes the oldest one's xmin and the commit log it needs is kept.
 */
static bool
vacuum_freeze_limits(Relation rel, VacuumParams *params,
					 TransactionId *FreezeLimit, MultiXactId *MultiXactCutoff)
{
	TransactionId OldestXmin;
	MultiXactId OldestMxact;
	bool		aggressive;

	aggressive = vacuum_set_xid_limits(rel, params->freeze_min_age,
									   params->freeze_table_age,
									   params->multixact_freeze_min_age,
									   params->multixact_freeze_table_age,
									   &OldestXmin, &OldestMxact,
									   FreezeLimit, MultiXactCutoff);

	{
		TransactionId pin = kvlsm_snapshot_pin(NULL);

		if (TransactionIdIsValid(pin) && TransactionIdPrecedes(pin, *FreezeLimit))
			*FreezeLimit = pin;
	}
	return aggressive;
}

/* open the indexes and make room for the dead rows to hand them */
static void
vacuum_open_indexes(KvlsmVacuumState *vs)
{
	vac_open_indexes(vs->rel, RowExclusiveLock, &vs->nindexes, &vs->indrels);
	if (vs->nindexes > 0)
	{
		int			max_items = (int) Min((Size) maintenance_work_mem * 1024L / sizeof(ItemPointerData),
										  (Size) MaxAllocSize / sizeof(ItemPointerData) - 16);

		max_items = Max(max_items, 1024);
		vs->dead_items = palloc(vac_max_items_to_alloc_size(max_items));
		vs->dead_items->max_items = max_items;
		vs->dead_items->num_items = 0;
		vs->stats = palloc0(sizeof(IndexBulkDeleteResult *) * vs->nindexes);
	}
}

/* is the row dead to everyone?  Counts it as live or dead */
static bool
vacuum_row_is_dead(KvlsmVacuumState *vs, KvlsmRowState *st)
{
	bool		is_dead = false;

	if (st->killed || st->xmin_status == KVLSM_XID_ABORTED)
		is_dead = true;
	else if (st->expires != 0 && st->xmin_status == KVLSM_XID_COMMITTED &&
			 st->expires <= vs->ttl_horizon)
	{
		/* past its TTL for every running transaction */
		is_dead = true;
		vs->dead++;
		vs->ttl_max_expired = Max(vs->ttl_max_expired, st->expires);
	}
	else if (st->deleted && st->xmax_status == KVLSM_XID_COMMITTED &&
			 kvlsm_xid_removable(vs->vis, st->xmax))
	{
		is_dead = true;
		vs->dead++;
		if (!st->purged && TransactionIdIsNormal(st->xmax) &&
			(!TransactionIdIsValid(vs->latest_removed) ||
			 TransactionIdFollows(st->xmax, vs->latest_removed)))
			vs->latest_removed = st->xmax;
	}
	else if (!st->deleted || st->xmax_status == KVLSM_XID_ABORTED)
		vs->live++;
	return is_dead;
}

/* the pass over every row, handing dead ones to the indexes as they fill */
static void
vacuum_scan(KvlsmVacuumState *vs)
{
	TableScanDesc scan;
	KvlsmRowState st;

	scan = kvlsm_scan_begin(vs->rel, SnapshotAny, 0, NULL, NULL, SO_TYPE_SEQSCAN);
	while (kvlsm_scan_next_row((KvlsmScanDesc) scan, &st))
	{
		bool		is_dead;

		CHECK_FOR_INTERRUPTS();
		vacuum_delay_point();
		is_dead = vacuum_row_is_dead(vs, &st);

		/* a purged row has no index entries left: nothing to do again */
		if (is_dead && vs->dead_items != NULL && !st.purged)
		{
			kvlsm_rowid_to_tid(st.rowid, &vs->dead_items->items[vs->dead_items->num_items++]);
			if (vs->dead_items->num_items >= vs->dead_items->max_items)
				vacuum_dead_rows(vs);
		}
	}
	kvlsm_scan_end(scan);
}

/* the last dead rows, then each index's cleanup and statistics */
static void
vacuum_finish_indexes(KvlsmVacuumState *vs)
{
	int			i;

	if (vs->dead_items->num_items > 0)
		vacuum_dead_rows(vs);
	for (i = 0; i < vs->nindexes; i++)
	{
		IndexVacuumInfo ivinfo = vacuum_info(vs->indrels[i], vs->live, false,
											 vs->bstrategy);

		vs->stats[i] = vac_cleanup_one_index(&ivinfo, vs->stats[i]);
		if (vs->stats[i] && !vs->stats[i]->estimated_count)
			vac_update_relstats(vs->indrels[i], vs->stats[i]->num_pages,
								vs->stats[i]->num_index_tuples, 0, false,
								InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
	}
}

void
kvlsm_relation_vacuum(Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy)
{
	KvlsmVacuumState vs;
	BlockNumber nblocks;
	TransactionId FreezeLimit;
	MultiXactId MultiXactCutoff;
	TransactionId new_frozen_xid = InvalidTransactionId;
	MultiXactId new_min_multi = InvalidMultiXactId;
	bool		aggressive;

	memset(&vs, 0, sizeof(vs));
	vs.rel = rel;
	vs.bstrategy = bstrategy;
	vs.vis = GlobalVisTestFor(rel);
	vs.latest_removed = InvalidTransactionId;
	vs.ttl_horizon = kvlsm_ttl_horizon();
	vs.ttl_max_expired = 0;

	aggressive = vacuum_freeze_limits(rel, params, &FreezeLimit, &MultiXactCutoff);

	if (params->index_cleanup != VACOPTVALUE_DISABLED)
		vacuum_open_indexes(&vs);
	vacuum_scan(&vs);
	if (vs.dead_items != NULL)
		vacuum_finish_indexes(&vs);
	if (vs.indrels != NULL)
		vac_close_indexes(vs.nindexes, vs.indrels, NoLock);

	/*
	 * An aggressive VACUUM (VACUUM FREEZE, or relfrozenxid older than
	 * vacuum_freeze_table_age, as anti-wraparound autovacuum runs) flushes
	 * and compacts the whole relation, freezing committed xids older than
	 * the freeze limit, and moves relfrozenxid to the oldest xid left.
	 * kvlsm stores no multixacts, so relminmxid moves to the cutoff.
	 */
	if (aggressive)
	{
		TransactionId oldest;

		kvlsm_flush_all(rel);
		oldest = kvlsm_compact_freeze(rel, FreezeLimit);
		new_frozen_xid = FreezeLimit;
		if (TransactionIdIsValid(oldest) && TransactionIdPrecedes(oldest, new_frozen_xid))
			new_frozen_xid = oldest;
		new_min_multi = MultiXactCutoff;
	}

	/*
	 * The file shrinks here, as heap's does (and in the background workers,
	 * kvlsm.background_truncate): tables at the end of the file move into
	 * free extents below (relocate.c), and the free extent that leaves at
	 * its end goes back to the file system.
	 */
	if (params->truncate != VACOPTVALUE_DISABLED)
		kvlsm_vacuum_reclaim(rel);

	nblocks = RelationGetNumberOfBlocks(rel);
	vac_update_relstats(rel, nblocks, vs.live, 0, vs.nindexes > 0 || rel->rd_rel->relhasindex,
						new_frozen_xid, new_min_multi,
						NULL, NULL, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 vs.live, vs.dead);
}
