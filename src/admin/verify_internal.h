/*-------------------------------------------------------------------------
 *
 * verify_internal.h
 *	  What verification (src/admin/verify.c) hands to repair
 *	  (src/admin/repair.c): the problems found, the per-SSTable results of
 *	  a walk, and the checked copy of a relation's layout.  Nothing outside
 *	  src/admin includes it.
 *
 * Everything here is private memory of one backend: copies of pages read
 * under a share lock on one buffer at a time, never a pointer into a
 * shared buffer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_VERIFY_INTERNAL_H
#define KVLSM_VERIFY_INTERNAL_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "storage/block.h"
#include "utils/rel.h"

#include "kvlsm/manifest.h"
#include "kvlsm/page.h"
#include "kvlsm/sstable.h"

/* one problem found */
typedef struct Problem
{
	BlockNumber blkno;			/* InvalidBlockNumber: not about one block */
	int64		sstable;		/* -1: not about one SSTable */
	int			level;			/* -1: unknown */
	char	   *msg;
} Problem;

/* what a walk of one SSTable found */
typedef struct SstResult
{
	KvlsmSstDesc desc;
	bool		walked;			/* the header was usable */
	List	   *problems;
	KvlsmSstHeader hdr;
	char	   *minkey;			/* first and last key seen */
	int			minkeylen;
	char	   *maxkey;
	int			maxkeylen;
	uint64		entries_seen;
	TransactionId minxid;		/* tables: xids of the records seen */
	TransactionId maxxid;
	bool		is_table;
} SstResult;

/* a private, checked copy of the metapage and the manifest it names */
typedef struct LayoutCopy
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy mc;
	BlockNumber nblocks;
} LayoutCopy;

/* verify.c */
extern void kvlsm_verify_copy_page(Relation rel, BlockNumber blkno, char *dst);
extern void kvlsm_verify_walk_sstable(Relation rel, const KvlsmSstDesc *desc,
									  bool check_bloom, SstResult *res);
extern List *kvlsm_verify_relation(Relation rel, bool check_bloom,
								   SstResult **results_out, int *nresults,
								   LayoutCopy **lc_out);

#endif							/* KVLSM_VERIFY_INTERNAL_H */
