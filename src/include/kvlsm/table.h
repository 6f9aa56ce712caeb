/*-------------------------------------------------------------------------
 *
 * table.h
 *	  The kvlsm table access method: row ids and TIDs, the MVCC records a
 *	  row's history is made of, and their visibility.  Owned by the files
 *	  of src/table/: tableam.c (the TableAmRoutine), visibility.c, toast.c
 *	  (the sweep of left-behind TOAST values), modify.c (the row stripe
 *	  locks), scan.c (full passes) and retained.c; what those files share
 *	  among themselves only is in kvlsm/table_internal.h.
 *
 * A row version is identified by a 48-bit row id that is never reused; its
 * TID is (rowid / KVLSM_ROWS_PER_BLOCK, rowid % KVLSM_ROWS_PER_BLOCK + 1).
 * Its key in the LSM is the row id in big-endian order.  The records of one
 * row id are: one INSERT (xmin, cmin, tuple), then any number of DELETE
 * (xmax, cmax, successor row id for an update), LOCK (xid, mode) and KILL
 * (speculative insertion aborted) records, all newer than the INSERT.
 *
 * Lock order: row stripe lock -> LSM lock -> buffer locks.  The stripe
 * lock is held only while the memtable part of a row is re-checked and a
 * record appended; SSTables are read before it is taken and a version
 * epoch tells whether they changed meanwhile.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_TABLE_H
#define KVLSM_TABLE_H

#include "access/htup_details.h"
#include "access/tableam.h"
#include "nodes/lockoptions.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "kvlsm/lsm.h"

#define KVLSM_ROWS_PER_BLOCK	MaxHeapTuplesPerPage
#define KVLSM_MAX_ROWID		((uint64) (MaxBlockNumber - 1) * KVLSM_ROWS_PER_BLOCK)

#define KVLSM_REC_INSERT	1
#define KVLSM_REC_DELETE	2
#define KVLSM_REC_LOCK		3
#define KVLSM_REC_KILL		4
#define KVLSM_REC_CONFIRM	5	/* speculative insertion succeeded */
#define KVLSM_REC_PURGE		6	/* VACUUM removed the row's index entries */
#define KVLSM_REC_LEAN		0x80	/* stored form: kind | this (recordcodec.c) */

/* DELETE flags */
#define KVLSM_DEL_UPDATE		0x0001	/* successor is valid */
#define KVLSM_DEL_KEYS_UPDATED	0x0002	/* an update that changed key columns */
#define KVLSM_DEL_MOVED			0x0004	/* moved to another partition */
#define KVLSM_DEL_TOAST_DEFERRED 0x0008	/* the row's TOAST values are deleted
										 * by the compaction that drops it */

/* INSERT flags */
#define KVLSM_INS_SPECULATIVE	0x0001

typedef struct KvlsmRowRecord
{
	uint8		kind;
	uint8		lockmode;		/* LOCK: LockTupleMode */
	uint16		flags;
	TransactionId xid;
	CommandId	cid;
	uint32		spec_token;		/* INSERT: speculative insertion token */
	uint64		successor;		/* DELETE of an update: new row id */
	TimestampTz expires;		/* INSERT: end of life (option ttl); 0 = never */
	/* INSERT: MinimalTuple bytes follow */
} KvlsmRowRecord;

#define KVLSM_MAX_LOCKERS 64

typedef struct KvlsmLocker
{
	TransactionId xid;
	LockTupleMode mode;
	int			status;
} KvlsmLocker;

/* what the records of one row id say, for one resolution */
typedef struct KvlsmRowState
{
	uint64		rowid;
	bool		exists;			/* an INSERT record was found */
	bool		killed;
	bool		confirmed;		/* speculative insert confirmed */
	bool		purged;			/* VACUUM removed its index entries */
	TimestampTz expires;		/* 0: no TTL */
	TransactionId xmin;
	CommandId	cmin;
	uint32		spec_token;
	int			xmin_status;
	const char *tuple;			/* the tuple from t_infomask2 on (recordcodec.c) */
	uint32		tuplen;
	/* newest DELETE whose transaction did not abort */
	bool		deleted;
	TransactionId xmax;
	CommandId	cmax;
	int			xmax_status;
	bool		is_update;
	bool		keys_updated;
	bool		moved;			/* deleted by a move to another partition */
	uint64		successor;
	/* LOCK records of transactions that did not abort */
	int			nlockers;
	KvlsmLocker lockers[KVLSM_MAX_LOCKERS];
} KvlsmRowState;

/* transaction status as kvlsm needs it */
#define KVLSM_XID_CURRENT		1
#define KVLSM_XID_IN_PROGRESS	2
#define KVLSM_XID_COMMITTED		3
#define KVLSM_XID_ABORTED		4

static inline void
kvlsm_rowid_to_key(uint64 rowid, char *key)
{
	int			i;

	for (i = 7; i >= 0; i--)
	{
		key[i] = (char) (rowid & 0xFF);
		rowid >>= 8;
	}
}

static inline uint64
kvlsm_key_to_rowid(const char *key)
{
	uint64		r = 0;
	int			i;

	for (i = 0; i < 8; i++)
		r = (r << 8) | (uint8) key[i];
	return r;
}

static inline void
kvlsm_rowid_to_tid(uint64 rowid, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid / KVLSM_ROWS_PER_BLOCK),
				   (OffsetNumber) (rowid % KVLSM_ROWS_PER_BLOCK + 1));
}

static inline uint64
kvlsm_tid_to_rowid(ItemPointer tid)
{
	return (uint64) ItemPointerGetBlockNumberNoCheck(tid) * KVLSM_ROWS_PER_BLOCK +
		(ItemPointerGetOffsetNumberNoCheck(tid) - 1);
}

/* recordcodec.c: the stored form of a row record */
extern bool kvlsm_write_old_records;	/* GUC, for tests */
extern char *kvlsm_encode_row_record(const KvlsmRowRecord *rr, MinimalTuple mtup, int *len);
extern bool kvlsm_decode_row_record(const char *val, uint32 vallen, KvlsmRowRecord *rr,
									const char **body, uint32 *bodylen);
extern void kvlsm_read_row_record(uint64 rowid, const char *val, uint32 vallen,
								  KvlsmRowRecord *rr, const char **body, uint32 *bodylen);
extern void kvlsm_row_record_set_xid(char *val, TransactionId xid);
extern MinimalTuple kvlsm_body_to_minimal_tuple(const char *body, uint32 bodylen);
extern bool kvlsm_body_has_external(const char *body, uint32 bodylen);

/* visibility.c */
extern int	kvlsm_xid_status(TransactionId xid);
extern void kvlsm_resolve_row(const KvlsmRecord *recs, int n, KvlsmRowState *st);
extern bool kvlsm_row_visible(KvlsmRowState *st, Snapshot snapshot);
extern TimestampTz kvlsm_ttl_horizon(void);
extern void kvlsm_log_recovery_conflict(Relation rel, TransactionId latest_removed);

/*
 * The longest ttl a table may have: a row's end of life (its transaction's
 * start plus the ttl) must stay a valid timestamp.
 */
#define KVLSM_MAX_TTL_YEARS		1000
#define KVLSM_MAX_TTL_USECS		((int64) KVLSM_MAX_TTL_YEARS * 36525 / 100 * USECS_PER_DAY)

extern bool kvlsm_lock_modes_conflict(LockTupleMode a, LockTupleMode b);
extern void kvlsm_check_serializable_out(Relation rel, KvlsmRowState *st,
										 bool visible, Snapshot snapshot);

/* garbage collection in compaction (compaction.h) */
struct KvlsmGcContext;
extern void kvlsm_table_gc(struct KvlsmGcContext *ctx,
						   KvlsmRecord *recs, int n, bool *keep);

/* tableam.c */
extern bool kvlsm_is_kvlsm_relation(Relation rel);

/* modify.c: the row stripe locks (a named LWLock tranche) */
extern void kvlsm_table_request_locks(void);
extern void kvlsm_table_shmem_init(void);

/* scan.c: a full pass over every record of a table */
typedef void (*KvlsmRecordBatchFn) (KvlsmRecord *recs, int n, void *arg);
extern void kvlsm_table_each_batch(Relation rel, KvlsmRecordBatchFn fn, void *arg);

/* retained.c: row versions only named snapshots keep */
extern void kvlsm_table_retained(Relation rel, Snapshot named, uint64 *versions,
								 uint64 *bytes);

/* extension.c: the extension's schema in this database (InvalidOid: none) */
extern Oid	kvlsm_extension_schema(void);

/* toast.c: TOAST values an interrupted compaction left behind */
extern bool kvlsm_toast_sweep(Relation rel);

#endif							/* KVLSM_TABLE_H */
