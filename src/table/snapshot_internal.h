/*-------------------------------------------------------------------------
 *
 * snapshot_internal.h
 *	  What the files of the named-snapshot module share and nothing outside
 *	  it includes: the shared memory they keep under one spinlock, and the
 *	  functions they call in one another.  The module's interface to the
 *	  rest of kvlsm is kvlsm/snapshots.h; the module's map is at the top of
 *	  src/table/snapshots.c.
 *
 * Locking: one spinlock, PinShared.mutex, guards every field of the shared
 * struct except the TOAST-deleter slots, which each process writes only in
 * its own slot and creators read after a memory barrier (see
 * snapshot_pins.c).  Nothing is done under it but copying fields, and no
 * other lock is taken while it is held.  Nothing here is WAL-logged: the
 * catalog (kvlsm_named_snapshot, an ordinary table) is the durable state,
 * and the shared pins are a cache reloaded from it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SNAPSHOT_INTERNAL_H
#define KVLSM_SNAPSHOT_INTERNAL_H

#include "postgres.h"

#include "nodes/pathnodes.h"
#include "storage/spin.h"
#include "utils/palloc.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#define PIN_DBS 64
#define PIN_CREATORS 8

typedef struct PinCreator
{
	TransactionId creator;		/* the creating transaction */
	TransactionId xmin;
	TimestampTz time;
} PinCreator;

typedef struct DbPins
{
	Oid			dbid;			/* InvalidOid: free slot */
	bool		valid;			/* pin/time reflect the committed catalog */
	TransactionId pin;
	TimestampTz pin_time;
	int			ncreators;
	PinCreator	creators[PIN_CREATORS];
} DbPins;

#define PIN_ESTIMATES 64

/*
 * (time, next xid) samples, one a second at most, over the last hour or
 * more: TTL expiry is judged by time, standby conflicts and feedback speak
 * in xids (kvlsm_xid_at_time, kvlsm_time_before_xid).
 */
#define XIDTIME_SLOTS 4096

typedef struct XidTimeSample
{
	TimestampTz time;
	TransactionId xid;
} XidTimeSample;

typedef struct RetainedEstimate
{
	Oid			dbid;			/* InvalidOid: free */
	char		name[NAMEDATALEN];
	int64		bytes;
	TimestampTz at;
} RetainedEstimate;

typedef struct PinShared
{
	slock_t		mutex;
	DbPins		dbs[PIN_DBS];

	/* the latest kvlsm_snapshot_retained() result of each snapshot */
	RetainedEstimate estimates[PIN_ESTIMATES];

	/* ring of xid/time samples; nsamples counts up to XIDTIME_SLOTS */
	int			nsamples;
	int			next_sample;
	XidTimeSample samples[XIDTIME_SLOTS];

	/*
	 * TOAST deleters, one slot per PGPROC (pgprocno): the top-level xid of
	 * the last transaction of that process that may have deleted TOAST
	 * values of a kvlsm table at once rather than leaving them to
	 * compaction (kvlsm_toast_delete_now).  A creating snapshot waits for
	 * these transactions and checks that it sees their outcome.
	 */
	int			ndeleters;
	TransactionId deleters[FLEXIBLE_ARRAY_MEMBER];
} PinShared;

/* snapshot_pins.c */
extern PinShared *kvlsm_snapshot_shared;	/* NULL when not preloaded */
extern void kvlsm_snapshot_publish_creator(TransactionId creator,
										   TransactionId xmin,
										   TimestampTz time);
extern TransactionId *kvlsm_snapshot_wait_for_toast_deleters(int *nxids);
extern void kvlsm_snapshot_note_pins_changed(void);
extern void kvlsm_snapshot_pins_at_xact_end(void);

/* snapshot_catalog.c */
extern void kvlsm_snapshot_check_name(text *name, char *buf);
extern void kvlsm_snapshot_catalog_oldest(TransactionId *pin,
										  TimestampTz *pin_time);
extern Snapshot kvlsm_snapshot_load(const char *name, MemoryContext cxt,
									TimestampTz *created);

/* snapshot_retained.c */
extern TimestampTz kvlsm_snapshot_measured_ttl_time(Snapshot snapshot);
extern void kvlsm_snapshot_forget_estimate(const char *name);

/* snapshot_timetravel.c */
extern void kvlsm_time_travel_install_hooks(void);
extern void kvlsm_time_travel_at_xact_end(void);

/* snapshot_rls.c */
extern void kvlsm_rls_wrap_policies(PlannerInfo *root, RelOptInfo *rel);
extern bool kvlsm_rls_current_data_scope(void);
extern void kvlsm_rls_at_xact_end(void);
extern void kvlsm_rls_at_subxact_start(int level);
extern void kvlsm_rls_at_subxact_abort(int level);

#endif							/* KVLSM_SNAPSHOT_INTERNAL_H */
