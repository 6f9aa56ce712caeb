/*-------------------------------------------------------------------------
 *
 * index.h
 *	  The kvlsm_idx index access method: (key columns, heap TID) entries in
 *	  the LSM engine, ordered by the columns' btree comparison functions.
 *	  Owned by src/index/indexam.c (AM callbacks) and src/index/indexkey.c
 *	  (key encoding and comparison).
 *
 * An LSM key is a marker byte, a prefix column count and an IndexTuple
 * whose t_tid is the heap TID.  Entries carry the marker KVLSM_IKEY_ENTRY
 * and every column; search keys ("probes") carry KVLSM_IKEY_PROBE_LOW or
 * _HIGH and only a prefix of the columns, and sort before (low) or after
 * (high) every entry with that prefix, so a scan can seek to a prefix.
 * A bulk-delete tombstone is an entry key with the record flag
 * KVLSM_IREC_TOMBSTONE; the newest record of a key wins.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_INDEX_H
#define KVLSM_INDEX_H

#include "access/genam.h"
#include "access/itup.h"
#include "access/sdir.h"
#include "nodes/tidbitmap.h"
#include "utils/sortsupport.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "kvlsm/lsm.h"

#define KVLSM_IKEY_PROBE_LOW	0
#define KVLSM_IKEY_ENTRY		1
#define KVLSM_IKEY_PROBE_HIGH	2

#define KVLSM_IKEY_HEADER		MAXIMUM_ALIGNOF	/* marker, prefix column count, padding: keeps the IndexTuple aligned */

#define KVLSM_IREC_TOMBSTONE	0x0001
#define KVLSM_IREC_BUILD_DEAD	0x0002	/* built from a row dead to new snapshots */

/* strategy 6 of the pattern opclass: LIKE, answered by a prefix range */
#define KVLSM_IDX_LIKE_STRATEGY	6

/* btree-compatible key size limit, so every key fits pages comfortably */
#define KVLSM_IDX_MAX_KEY		2000

typedef struct KvlsmIndexKeyArg
{
	KvlsmKeyOps ops;			/* ops.arg points back here */
	TupleDesc	desc;
	int			natts;
	FmgrInfo	cmp[INDEX_MAX_KEYS];
	Oid			collation[INDEX_MAX_KEYS];
	bool		desc_order[INDEX_MAX_KEYS];
	bool		nulls_first[INDEX_MAX_KEYS];
	/* btree's sort support for the column, when it has the same order */
	bool		use_ssup[INDEX_MAX_KEYS];
	SortSupportData ssup[INDEX_MAX_KEYS];
	/*
	 * Bloom filters hash the first column with the hash function of the
	 * opfamily's equality operator (hashable operators only); a query's
	 * equality operator may use the filter when its own hash functions
	 * agree with this one (kvlsm_index_query_hash).
	 */
	Oid			bloom_hash_oid;	/* InvalidOid: entries enter no filter */
	FmgrInfo	bloom_hash;
} KvlsmIndexKeyArg;

/* indexkey.c */
extern const KvlsmKeyOps *kvlsm_index_keyops(Relation index);
extern char *kvlsm_index_make_key(Relation index, int marker, int ncols,
								  Datum *values, bool *isnull,
								  ItemPointer tid, int *keylen);
extern IndexTuple kvlsm_index_key_tuple(const char *key);
extern bool kvlsm_index_keys_equal(Relation index, IndexTuple a, IndexTuple b,
								   bool nulls_not_distinct);
extern bool kvlsm_is_kvlsm_index(Relation rel);
extern bool kvlsm_index_query_hash(Relation index, Oid subtype, FmgrInfo *hashproc);
extern uint64 kvlsm_index_value_hash(FmgrInfo *hashproc, Oid collation, Datum value);

/* indexplan.c: planner hook, from _PG_init */
extern void kvlsm_indexplan_init(void);

/* indexscan.c */
extern IndexScanDesc kvlsm_idx_beginscan(Relation index, int nkeys, int norderbys);
extern void kvlsm_idx_rescan(IndexScanDesc scan, ScanKey scankey, int nscankeys,
							 ScanKey orderbys, int norderbys);
extern bool kvlsm_idx_gettuple(IndexScanDesc scan, ScanDirection dir);
extern int64 kvlsm_idx_getbitmap(IndexScanDesc scan, TIDBitmap *tbm);
extern void kvlsm_idx_endscan(IndexScanDesc scan);
extern void kvlsm_idx_markpos(IndexScanDesc scan);
extern void kvlsm_idx_restrpos(IndexScanDesc scan);

/* garbage collection in compaction (compaction.h) */
struct KvlsmGcContext;
extern void kvlsm_index_gc(struct KvlsmGcContext *ctx,
						   KvlsmRecord *recs, int n, bool *keep);

#endif							/* KVLSM_INDEX_H */
