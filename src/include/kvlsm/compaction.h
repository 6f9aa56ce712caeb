/*-------------------------------------------------------------------------
 *
 * compaction.h
 *	  Compaction of one LSM: picking inputs (leveled or tiered), merging
 *	  them with garbage collection, and installing the result.  Owned by
 *	  src/engine/compaction.c (the executor) and src/engine/compaction_pick.c
 *	  (the picker); compaction_pick.h is the contract between the two.
 *
 * Which versions may be dropped is decided by the layer that gives
 * records their meaning (table rows, index entries): it registers a
 * garbage-collection filter that sees all records of one key found in the
 * inputs, newest first, and says which to keep.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_COMPACTION_H
#define KVLSM_COMPACTION_H

#include "kvlsm/lsm.h"
#include "utils/timestamp.h"

#define KVLSM_MAX_LEVELS 7
/* a level below L0 with more tables than this merges some in place */
#define KVLSM_LEVEL_MAX_TABLES 12

typedef struct KvlsmGcContext
{
	Relation	rel;
	/* xids before this are finished and their effects visible to everyone */
	TransactionId horizon;
	/* no table outside the inputs can hold an older record of these keys */
	bool		bottommost;
	/* the relation has indexes (dead rows must wait for VACUUM's purge) */
	bool		has_indexes;
	/* rows whose TTL ended before this are dead (0: none) */
	TimestampTz ttl_horizon;
	/* freeze committed xids before this (InvalidTransactionId: none) */
	TransactionId freeze_limit;
	/* out: oldest normal xid left in the output (InvalidTransactionId: none) */
	TransactionId oldest_xid;
	/* out: newest xid whose effects the dropped or frozen records relied on */
	TransactionId latest_removed;
	/* out: rows dropped because their TTL ended, and the latest end */
	uint64		ttl_rows_dropped;
	TimestampTz ttl_max_expired;
	/* the filter's own state, and what to do once the result is installed */
	void	   *filter_state;
	void		(*after_install) (struct KvlsmGcContext *ctx);
} KvlsmGcContext;

/*
 * Mark in keep[] which of the n records of one key (seq descending) the
 * output keeps; keep[] arrives all true.  The filter may rewrite the bytes
 * of a record's value in place (freezing an xid), not its length.
 */
typedef void (*KvlsmGcFilter) (KvlsmGcContext *ctx,
							   KvlsmRecord *recs, int n, bool *keep);

/*
 * What the layer that wrote the records decides about their garbage
 * collection, registered once in _PG_init.  With none, compaction keeps
 * every record and freezes nothing.
 */
typedef struct KvlsmGcPolicy
{
	/* the filter of a relation's records; NULL: keep them all */
	KvlsmGcFilter (*filter_for) (Relation rel);
	/* no snapshot that can still run sees anything deleted before this */
	TransactionId (*horizon) (Relation rel);
	/*
	 * The filter dropped records (the out fields of ctx): called before the
	 * result is installed, to cancel standby queries that could still need
	 * them.
	 */
	void		(*dropped) (Relation rel, const KvlsmGcContext *ctx);
} KvlsmGcPolicy;

/*
 * Deletes the TOAST values of a table that no record refers to any more
 * (those an interrupted compaction left behind); called by the next
 * compaction in its own transaction, before it merges anything.  False if
 * it had to skip values that another transaction is deleting.
 */
typedef bool (*KvlsmToastSweeper) (Relation rel);

/* GUCs read by the compaction picker (defined in compaction_pick.c) */
extern int	kvlsm_l0_compaction_trigger;
extern int	kvlsm_level_fanout;

/* compaction.c */
extern void kvlsm_set_gc_policy(const KvlsmGcPolicy *policy);
extern void kvlsm_set_toast_sweeper(KvlsmToastSweeper sweeper);
/* pick and run one compaction; false if none was due or possible */
extern bool kvlsm_compact_step(Relation rel);
/* merge every table into the deepest level, key range [lower, upper] */
extern void kvlsm_compact_range(Relation rel, const char *lower, int lowerlen,
								const char *upper, int upperlen);
/*
 * Merge every table into the deepest level, freezing committed xids older
 * than freeze_limit; returns the oldest xid the relation still holds
 * (InvalidTransactionId: none), which is what relfrozenxid may become.
 */
extern TransactionId kvlsm_compact_freeze(Relation rel, TransactionId freeze_limit);

/* compaction_pick.c */
/* cheap test on the shared manifest copy: is any compaction due? */
extern bool kvlsm_compaction_needed(KvlsmShared *sh);
/* target size of a level, for layout inspection */
extern uint64 kvlsm_level_target_bytes(int64 memtable_size, int level);

#endif							/* KVLSM_COMPACTION_H */
