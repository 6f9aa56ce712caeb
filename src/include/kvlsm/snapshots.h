/*-------------------------------------------------------------------------
 *
 * snapshots.h
 *	  Named snapshots and time-travel reads of kvlsm tables: the catalog
 *	  (an extension table), the horizon they pin for garbage collection,
 *	  and the snapshot that replaces a transaction's own in scans of kvlsm
 *	  tables while one is in use.  Owned by src/table/snapshots.c and the
 *	  src/table/snapshot_*.c files it lists; what those files share among
 *	  themselves is in src/table/snapshot_internal.h.
 *
 * A named snapshot is a durable copy of an MVCC snapshot: xmin, xmax and
 * every transaction that was in progress for it, subtransactions included
 * (expanded at creation, because pg_subtrans is truncated at the oldest
 * running xid).  Until it is dropped, every process that removes row
 * versions (compaction, VACUUM, index bulk-delete, btree's killed-item
 * hints through all_dead, freezing) treats its xmin as an extra horizon,
 * and TTL expiry is judged no later than its creation time.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SNAPSHOTS_H
#define KVLSM_SNAPSHOTS_H

#include "postgres.h"

#include "utils/rel.h"
#include "utils/snapshot.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* snapshots.c */
extern void kvlsm_snapshots_init(void);

/* snapshot_catalog.c */
extern int	kvlsm_snapshot_max_age;

/* snapshot_pins.c */
extern Size kvlsm_snapshots_shmem_size(void);
extern void kvlsm_snapshots_shmem_init(void);
extern void kvlsm_snapshots_forget_database(Oid dbid);

/*
 * The oldest xmin any named snapshot of this database needs (Invalid: none)
 * and the oldest creation time (0: none).  May read the catalog.
 */
extern TransactionId kvlsm_snapshot_pin(TimestampTz *oldest_time);

/* may versions deleted by 'xid' go, for GlobalVis and every named snapshot? */
extern bool kvlsm_xid_removable(GlobalVisState *vis, TransactionId xid);

/* the horizon for compaction: Min(GetOldestNonRemovable..., pin) */
extern TransactionId kvlsm_gc_horizon(Relation rel);

/*
 * May this transaction delete a kvlsm row version's TOAST values now (no
 * named snapshot exists), or must it leave them to compaction?  Records
 * the transaction for snapshot creators (snapshot_catalog.c).
 */
extern bool kvlsm_toast_delete_now(void);

/* snapshot_clock.c */

/*
 * Time and xids, for TTL (judged by time) against standby conflicts and
 * feedback (in xids): a sample ring fed by the launcher.
 */
extern void kvlsm_xid_time_sample(void);
extern TransactionId kvlsm_xid_at_time(TimestampTz t);
extern TimestampTz kvlsm_time_before_xid(TransactionId xid);
extern TransactionId kvlsm_conflict_xid(TransactionId latest_removed,
										TimestampTz ttl_max_expired);

/* snapshot_timetravel.c */

/*
 * The snapshot a scan of a kvlsm table uses: the named snapshot in use in
 * this transaction in place of an MVCC snapshot, else the one given.
 */
extern Snapshot kvlsm_scan_snapshot(Relation rel, Snapshot snapshot);

/* the time TTL is judged at under this snapshot, or 0 if not a named one */
extern TimestampTz kvlsm_snapshot_ttl_time(Snapshot snapshot);

/* is a named snapshot in use in this transaction? */
extern bool kvlsm_time_travel_active(void);

#endif							/* KVLSM_SNAPSHOTS_H */
