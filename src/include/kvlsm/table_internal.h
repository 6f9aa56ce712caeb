/*-------------------------------------------------------------------------
 *
 * table_internal.h
 *	  Between the files of the kvlsm table access method (src/table/): the
 *	  scan descriptor, the records of one row id, the check-and-append of
 *	  row changes, and the callbacks that src/table/tableam.c puts into its
 *	  TableAmRoutine.  Other layers include kvlsm/table.h, not this.
 *
 * tableam.c is the glue (slots and TIDs in, row operations out), as
 * heapam_handler.c is for heapam.c; every other file here owns one idea and
 * is listed below with what it exports.  Lock order and the record format
 * are in kvlsm/table.h; the stripe locks are owned by modify.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_TABLE_INTERNAL_H
#define KVLSM_TABLE_INTERNAL_H

#include "postgres.h"

#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"

#include "kvlsm/table.h"

/*
 * A scan of a kvlsm table (sequential, TID range, ANALYZE, TABLESAMPLE, and
 * the full passes of VACUUM, rewrites and index builds).  Owned by scan.c;
 * sample.c moves the row id window for ANALYZE and TABLESAMPLE.
 */
typedef struct KvlsmScanDescData
{
	TableScanDescData base;
	KvlsmShared *sh;
	Snapshot	vis_snapshot;	/* rs_snapshot, or the named snapshot in use */
	MemoryContext batch_cxt;
	KvlsmRecordSet set;
	int			pos;			/* next record in set */
	bool		started;
	bool		exhausted;
	bool		more;
	uint64		resume_rowid;	/* first row id of the next batch */
	uint64		range_lo;		/* lower limit (TID range scans) */
	int			dir;			/* direction of the current batch: 1, -1, 0 */
	bool		have_last;
	uint64		last_rowid;		/* row id last returned */
	uint64		bhi;			/* backward: next window ends below this */
	int			bpos;			/* backward: next record index, going down */
	uint64		end_rowid;		/* exclusive upper limit (TID range scans) */
	/* analyze */
	uint64		analyze_hwm;
	BlockNumber analyze_nblocks;
	/* TABLESAMPLE: TID blocks 0..sample_nblocks-1 (sample.c) */
	bool		sample_started;
	BlockNumber sample_nblocks;
	BlockNumber sample_block;
	bool		sample_have_row;	/* sample_row: next row of the block */
	bool		sample_block_done;	/* no rows left in the block */
	KvlsmRowState sample_row;
} KvlsmScanDescData;

typedef KvlsmScanDescData *KvlsmScanDesc;

/* what kvlsm_modify_row appends for */
typedef enum KvlsmModifyKind
{
	KVLSM_MODIFY_DELETE,
	KVLSM_MODIFY_LOCK
} KvlsmModifyKind;

/* rowrecord.c: the records of one row id, read, appended, shown as a tuple */
extern void kvlsm_check_rowid(Relation rel, uint64 rowid);
extern void kvlsm_fetch_row_records(Relation rel, KvlsmShared *sh, uint64 rowid,
									KvlsmRecordSet *set);
extern HeapTuple kvlsm_row_to_heaptuple(Relation rel, KvlsmRowState *st);
extern void kvlsm_store_row(Relation rel, KvlsmRowState *st, TupleTableSlot *slot);
extern void kvlsm_put_row_record(Relation rel, KvlsmShared *sh, uint64 rowid,
								 KvlsmRowRecord *rr, MinimalTuple mtup);

/* modify.c: check-and-append under the row stripe locks */
extern TM_Result kvlsm_modify_row(Relation rel, KvlsmShared *sh, uint64 rowid,
								  KvlsmModifyKind kind, LockTupleMode mode,
								  KvlsmRowRecord *rec, CommandId cid,
								  Snapshot crosscheck, LockWaitPolicy wait_policy,
								  TM_FailureData *tmfd, KvlsmRowState *st_out,
								  MemoryContext cxt);

/* rowops.c: insert, delete, update and lock of row versions */
extern HeapTuple kvlsm_prepare_tuple(Relation rel, HeapTuple tup, HeapTuple oldtup,
									 int options);
extern uint64 kvlsm_row_insert(Relation rel, KvlsmShared *sh, HeapTuple tup,
							   TransactionId xid, CommandId cid, int options,
							   uint32 spec_token);
extern void kvlsm_row_finish_speculative(Relation rel, KvlsmShared *sh,
										 uint64 rowid, bool succeeded);
extern TM_Result kvlsm_row_delete(Relation rel, KvlsmShared *sh, ItemPointer tid,
								  CommandId cid, Snapshot crosscheck, bool wait,
								  TM_FailureData *tmfd, bool changingPart);
extern TM_Result kvlsm_row_update(Relation rel, KvlsmShared *sh, ItemPointer otid,
								  HeapTuple newtup, HeapTuple oldtup,
								  CommandId cid, Snapshot crosscheck, bool wait,
								  TM_FailureData *tmfd, LockTupleMode lockmode,
								  bool key_changed, uint64 *newrowid,
								  bool *locked_by_us);
extern TM_Result kvlsm_row_lock(Relation rel, KvlsmShared *sh, ItemPointer tid,
								CommandId cid, LockTupleMode mode,
								LockWaitPolicy wait_policy, uint8 flags,
								TM_FailureData *tmfd, KvlsmRowState *st);

/* scan.c: sequential, TID range and parallel scans */
extern TableScanDesc kvlsm_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
									  ScanKey key, ParallelTableScanDesc pscan,
									  uint32 flags);
extern void kvlsm_scan_rescan(TableScanDesc sscan, ScanKey key, bool set_params,
							  bool allow_strat, bool allow_sync,
							  bool allow_pagemode);
extern void kvlsm_scan_end(TableScanDesc sscan);
extern bool kvlsm_scan_next_row(KvlsmScanDesc scan, KvlsmRowState *st);
extern bool kvlsm_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
								   TupleTableSlot *slot);
extern void kvlsm_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid,
									ItemPointer maxtid);
extern bool kvlsm_scan_getnextslot_tidrange(TableScanDesc sscan,
											ScanDirection direction,
											TupleTableSlot *slot);
extern Size kvlsm_parallelscan_estimate(Relation rel);
extern Size kvlsm_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan);
extern void kvlsm_parallelscan_reinitialize(Relation rel,
											ParallelTableScanDesc pscan);

/* sample.c: ANALYZE's block sample and TABLESAMPLE */
extern bool kvlsm_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
										  BufferAccessStrategy bstrategy);
extern bool kvlsm_scan_analyze_next_tuple(TableScanDesc sscan,
										  TransactionId OldestXmin,
										  double *liverows, double *deadrows,
										  TupleTableSlot *slot);
extern bool kvlsm_scan_sample_next_block(TableScanDesc sscan,
										 SampleScanState *scanstate);
extern bool kvlsm_scan_sample_next_tuple(TableScanDesc sscan,
										 SampleScanState *scanstate,
										 TupleTableSlot *slot);

/* fetch.c: single rows by TID */
extern IndexFetchTableData *kvlsm_index_fetch_begin(Relation rel);
extern void kvlsm_index_fetch_reset(IndexFetchTableData *scan);
extern void kvlsm_index_fetch_end(IndexFetchTableData *scan);
extern bool kvlsm_index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid,
									Snapshot snapshot, TupleTableSlot *slot,
									bool *call_again, bool *all_dead);
extern bool kvlsm_fetch_row_version(Relation rel, ItemPointer tid,
									Snapshot snapshot, TupleTableSlot *slot);
extern void kvlsm_get_latest_tid(TableScanDesc sscan, ItemPointer tid);
extern bool kvlsm_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
										   Snapshot snapshot);
extern TransactionId kvlsm_index_delete_tuples(Relation rel,
											   TM_IndexDeleteOp *delstate);

/* filenode.c: a table's file created, truncated, copied */
extern void kvlsm_relation_set_new_filenode(Relation rel,
											const RelFileNode *newrnode,
											char persistence,
											TransactionId *freezeXid,
											MultiXactId *minmulti);
extern void kvlsm_relation_nontransactional_truncate(Relation rel);
extern void kvlsm_relation_copy_data(Relation rel, const RelFileNode *newrnode);

/* rewrite.c: VACUUM FULL and CLUSTER */
extern void kvlsm_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
											Relation OldIndex, bool use_sort,
											TransactionId OldestXmin,
											TransactionId *xid_cutoff,
											MultiXactId *multi_cutoff,
											double *num_tuples,
											double *tups_vacuumed,
											double *tups_recently_dead);

/* vacuum.c: VACUUM */
extern void kvlsm_relation_vacuum(Relation rel, VacuumParams *params,
								  BufferAccessStrategy bstrategy);

/* indexbuild.c: CREATE INDEX and its concurrent validation */
extern double kvlsm_index_build_range_scan(Relation tableRelation,
										   Relation indexRelation,
										   IndexInfo *indexInfo,
										   bool allow_sync, bool anyvisible,
										   bool progress,
										   BlockNumber start_blockno,
										   BlockNumber numblocks,
										   IndexBuildCallback callback,
										   void *callback_state,
										   TableScanDesc scan);
extern void kvlsm_index_validate_scan(Relation tableRelation,
									  Relation indexRelation,
									  IndexInfo *indexInfo, Snapshot snapshot,
									  ValidateIndexState *state);

/* estimate.c: sizes for the planner and for pg_relation_size */
extern uint64 kvlsm_relation_size(Relation rel, ForkNumber forkNumber);
extern void kvlsm_estimate_rel_size(Relation rel, int32 *attr_widths,
									BlockNumber *pages, double *tuples,
									double *allvisfrac);

#endif							/* KVLSM_TABLE_INTERNAL_H */
