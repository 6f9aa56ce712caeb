/*-------------------------------------------------------------------------
 *
 * estimate.c
 *	  How big a kvlsm table is: the bytes of its forks (relation_size, for
 *	  pg_relation_size and the planner) and the planner's estimate of its
 *	  pages and rows (relation_estimate_size).
 *
 * Sizes are read from the storage manager and from pg_class; a table never
 * analyzed counts the entries the engine holds (a copy of its shared state,
 * taken under the engine's locks by kvlsm_snapshot_state).  Nothing here
 * writes.
 *
 * The callbacks are in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"

#include "kvlsm/table_internal.h"

/*
 * The main fork always exists (created with the relation), so it is sized
 * without smgrexists(): mdexists() closes and reopens the file to notice an
 * unlink, and the planner sizes every kvlsm table of every query this way.
 */
uint64
kvlsm_relation_size(Relation rel, ForkNumber forkNumber)
{
	uint64		nblocks = 0;

	if (forkNumber == MAIN_FORKNUM)
		nblocks = smgrnblocks(RelationGetSmgr(rel), MAIN_FORKNUM);
	else if (forkNumber == InvalidForkNumber)
	{
		int			i;

		for (i = 0; i < MAX_FORKNUM; i++)
			if (smgrexists(RelationGetSmgr(rel), i))
				nblocks += smgrnblocks(RelationGetSmgr(rel), i);
	}
	else if (smgrexists(RelationGetSmgr(rel), forkNumber))
		nblocks = smgrnblocks(RelationGetSmgr(rel), forkNumber);
	return nblocks * BLCKSZ;
}

void
kvlsm_estimate_rel_size(Relation rel, int32 *attr_widths, BlockNumber *pages,
						double *tuples, double *allvisfrac)
{
	BlockNumber curpages = RelationGetNumberOfBlocks(rel);
	double		reltuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;

	if (reltuples < 0 && curpages < 10 && !rel->rd_rel->relhassubclass)
	{
		/*
		 * Never vacuumed or analyzed and small: plan it as heap plans a new
		 * table (at least 10 pages, tuples from the column widths), not by
		 * the few entries it holds now.  Heap's reason holds here too (a
		 * cached plan must not assume a table that is being filled stays
		 * tiny), and planning new tables alike keeps SERIALIZABLE behaviour
		 * alike: an equality on a key of a fresh table is then an index
		 * scan that predicate-locks the rows it reads, where a seq scan
		 * would lock the whole relation and make every writer a conflict.
		 */
		table_block_relation_estimate_size(rel, attr_widths, pages, tuples,
										   allvisfrac,
										   MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData),
										   BLCKSZ - SizeOfPageHeaderData);
		*allvisfrac = 0;
		return;
	}

	*pages = curpages;
	*allvisfrac = 0;
	if (reltuples >= 0 && relpages > 0)
	{
		*tuples = rint(reltuples / relpages * curpages);
		return;
	}
	if (reltuples >= 0 && relpages == 0)
	{
		*tuples = reltuples;
		return;
	}
	/* never analyzed: count what the engine holds */
	{
		KvlsmShared copy;
		KvlsmSstDesc *ssts;
		uint64		n;
		uint32		i;

		ssts = kvlsm_snapshot_state(rel, &copy);
		n = copy.active.entries + copy.frozen.entries;
		for (i = 0; i < copy.nsst; i++)
			n += ssts[i].nentries;
		*tuples = (double) n;
		pfree(ssts);
	}
}
