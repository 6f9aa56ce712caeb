/*-------------------------------------------------------------------------
 *
 * compaction_pick.c
 *	  The compaction picker: is a compaction due, and which tables of the
 *	  manifest it merges into which level (compaction_pick.h).  Reads a
 *	  copy of the manifest and the tables' key bounds; writes nothing.
 *
 * Leveled (RocksDB's default): L0 holds flushed tables whose key ranges
 * overlap; every level below is one sorted run of tables with disjoint
 * ranges and a target size that grows by kvlsm.level_fanout per level.
 * When L0 has kvlsm.l0_compaction_trigger tables, all of them (so L0
 * inputs are contiguous in time) and the overlapping L1 tables are merged
 * into L1; otherwise the level furthest over its target gives its oldest
 * table, merged with the overlapping tables of the next level.
 *
 * Tiered (RocksDB's universal): every L0 table and every non-empty level is
 * one sorted run, newest first.  When there are kvlsm.l0_compaction_trigger
 * runs, the newest runs of similar size are merged into one; when the runs
 * above the oldest outweigh it twice, everything is merged (bounding space
 * amplification).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "kvlsm/compaction_pick.h"

/* GUCs (registered in _PG_init) */
int			kvlsm_l0_compaction_trigger = 4;
int			kvlsm_level_fanout = 10;

/* universal compaction's max_size_amplification_percent, 200 */
#define TIERED_MAX_SPACE_AMP 2.0

uint64
kvlsm_level_target_bytes(int64 memtable_size, int level)
{
	uint64		t = (uint64) memtable_size * 4;
	int			i;

	for (i = 1; i < level; i++)
		t *= kvlsm_level_fanout;
	return t;
}

/*
 * Output tables of a level are about an eighth of its target, so that every
 * level holds a handful of tables (the manifest lists at most
 * KVLSM_MAX_SST), and at least a memtable's worth.
 */
uint64
kvlsm_target_file_bytes(int64 memtable_size, int level)
{
	uint64		t = kvlsm_level_target_bytes(memtable_size, Max(level, 1)) / 8;

	t = Max(t, (uint64) memtable_size);
	return Min(t, KVLSM_MAX_FILE_BYTES);
}

/*
 * Has a level below L0 collected more tables than it should (see
 * pick_intra_level)?  More than KVLSM_LEVEL_MAX_TABLES, and on average
 * under half their target size: a level of full-size tables (a deep level
 * of a large relation holds hundreds) is left alone, since merging them
 * in place would only write them again.
 */
static bool
level_crowded(int64 memtable_size, int level, int count, uint64 bytes)
{
	uint64		full = kvlsm_target_file_bytes(memtable_size, level);

	return count > KVLSM_LEVEL_MAX_TABLES && bytes / full + 1 < (uint64) count / 2;
}

/* ---------------------------------------------------------------------
 * Picking
 * ---------------------------------------------------------------------
 */

static bool
bounds_overlap(const KvlsmKeyOps *ops, const KvlsmKeyBounds *a, const KvlsmKeyBounds *b)
{
	if (!a->known || !b->known)
		return true;
	return ops->cmp(a->min, a->minlen, b->max, b->maxlen, ops->arg) <= 0 &&
		ops->cmp(b->min, b->minlen, a->max, a->maxlen, ops->arg) <= 0;
}

/* widen 'u' to cover 'b' (pointers are shared, not copied) */
static void
bounds_union(const KvlsmKeyOps *ops, KvlsmKeyBounds *u, const KvlsmKeyBounds *b, bool first)
{
	if (first)
	{
		*u = *b;
		return;
	}
	if (!u->known)
		return;
	if (!b->known)
	{
		u->known = false;
		return;
	}
	if (ops->cmp(b->min, b->minlen, u->min, u->minlen, ops->arg) < 0)
	{
		u->min = b->min;
		u->minlen = b->minlen;
	}
	if (ops->cmp(b->max, b->maxlen, u->max, u->maxlen, ops->arg) > 0)
	{
		u->max = b->max;
		u->maxlen = b->maxlen;
	}
}

static uint64
level_bytes(KvlsmPickState *ps, int level)
{
	uint64		n = 0;
	uint32		i;

	for (i = 0; i < ps->mc->hdr.nsst; i++)
		if (ps->mc->sst[i].level == level)
			n += ps->mc->sst[i].nbytes;
	return n;
}

static int
level_count(KvlsmManifestCopy *mc, int level)
{
	int			n = 0;
	uint32		i;

	for (i = 0; i < mc->hdr.nsst; i++)
		if (mc->sst[i].level == level)
			n++;
	return n;
}

/* choose every table of 'level' overlapping the union of chosen tables */
static void
add_overlapping(KvlsmPickState *ps, int level)
{
	KvlsmKeyBounds		u;
	bool		first = true;
	uint32		i;

	for (i = 0; i < ps->mc->hdr.nsst; i++)
		if (ps->chosen[i])
		{
			bounds_union(ps->ops, &u, &ps->bounds[i], first);
			first = false;
		}
	if (first)
		return;
	for (i = 0; i < ps->mc->hdr.nsst; i++)
		if (!ps->chosen[i] && ps->mc->sst[i].level == level &&
			bounds_overlap(ps->ops, &u, &ps->bounds[i]))
			ps->chosen[i] = true;
}

/*
 * Could a table outside the chosen ones hold older records of their keys?
 * Deeper levels hold older data than the output level; an L0 table left
 * out is older if it starts before the newest chosen record (tiered
 * windows may skip older L0 runs).  Newer tables never matter.
 */
bool
kvlsm_pick_older_data_below(KvlsmPickState *ps, int level)
{
	KvlsmKeyBounds		u;
	bool		first = true;
	uint64		maxseq = 0;
	uint32		i;

	for (i = 0; i < ps->mc->hdr.nsst; i++)
		if (ps->chosen[i])
		{
			bounds_union(ps->ops, &u, &ps->bounds[i], first);
			first = false;
			maxseq = Max(maxseq, ps->mc->sst[i].maxseq);
		}
	for (i = 0; i < ps->mc->hdr.nsst; i++)
	{
		const KvlsmSstDesc *d = &ps->mc->sst[i];

		if (ps->chosen[i] || !KvlsmSstIsLive(d))
			continue;
		if ((d->level > level || (d->level == 0 && d->minseq < maxseq)) &&
			bounds_overlap(ps->ops, &u, &ps->bounds[i]))
			return true;
	}
	return false;
}

/* sort helper: table indexes of one level by smallest key */
typedef struct MinKeySort
{
	KvlsmPickState  *ps;
} MinKeySort;

static int
minkey_cmp(const void *a, const void *b, void *arg)
{
	KvlsmPickState  *ps = ((MinKeySort *) arg)->ps;
	const KvlsmKeyBounds *ba = &ps->bounds[*(const int *) a];
	const KvlsmKeyBounds *bb = &ps->bounds[*(const int *) b];

	return ps->ops->cmp(ba->min, ba->minlen, bb->min, bb->minlen, ps->ops->arg);
}

/*
 * A level below L0 that has collected too many tables (small flushes of
 * keys that never overlap, such as a table's ever-growing row ids, reach
 * L1 one by one) merges its smallest run of adjacent tables in place.  The
 * run is contiguous in key order, so the output overlaps no other table of
 * the level; the manifest's slot count stays bounded.
 */
static bool
pick_intra_level(KvlsmPickState *ps, KvlsmCompactionJob *job)
{
	KvlsmManifestCopy *mc = ps->mc;
	int			level;

	for (level = 1; level < KVLSM_MAX_LEVELS; level++)
	{
		int			idx[KVLSM_MAX_SST];
		int			n = 0;
		int			w,
					start,
					best = -1;
		uint64		best_bytes = 0;
		uint32		i;
		MinKeySort	arg;

		for (i = 0; i < mc->hdr.nsst; i++)
			if (mc->sst[i].level == level)
			{
				if (!ps->bounds[i].known)
					break;
				idx[n++] = i;
			}
		if (i < mc->hdr.nsst ||
			!level_crowded(ps->memtable_size, level, n, level_bytes(ps, level)))
			continue;
		arg.ps = ps;
		qsort_arg(idx, n, sizeof(int), minkey_cmp, &arg);
		w = n - KVLSM_LEVEL_MAX_TABLES / 2 + 1;
		for (start = 0; start + w <= n; start++)
		{
			uint64		bytes = 0;
			int			k;

			for (k = start; k < start + w; k++)
				bytes += mc->sst[idx[k]].nbytes;
			if (best < 0 || bytes < best_bytes)
			{
				best = start;
				best_bytes = bytes;
			}
		}

		/*
		 * No further test here: kvlsm_compaction_needed reports work for a
		 * crowded level, so a pick must follow, or the work stays pending
		 * for good.  The window holds the smallest tables of a level whose
		 * tables average under half their target, so its outputs are at
		 * most about half as many.
		 */
		for (start = best; start < best + w; start++)
			ps->chosen[idx[start]] = true;
		job->output_level = level;
		job->may_abandon = true;
		return true;
	}
	return false;
}

static bool
pick_leveled(KvlsmPickState *ps, KvlsmCompactionJob *job)
{
	KvlsmManifestCopy *mc = ps->mc;
	uint32		i;
	int			level;
	int			best_level = -1;
	double		best_score = 1.0;
	int			pick = -1;

	if (level_count(mc, 0) >= kvlsm_l0_compaction_trigger)
	{
		for (i = 0; i < mc->hdr.nsst; i++)
			if (mc->sst[i].level == 0)
				ps->chosen[i] = true;
		add_overlapping(ps, 1);
		job->output_level = 1;
		job->may_abandon = false;
		return true;
	}
	if (pick_intra_level(ps, job))
		return true;
	for (level = 1; level < KVLSM_MAX_LEVELS - 1; level++)
	{
		double		score = (double) level_bytes(ps, level) /
		(double) kvlsm_level_target_bytes(ps->memtable_size, level);

		if (score > best_score)
		{
			best_score = score;
			best_level = level;
		}
	}
	if (best_level < 0)
		return false;

	/* RocksDB's kOldestSmallestSeqFirst: the table that has waited longest */
	for (i = 0; i < mc->hdr.nsst; i++)
		if (mc->sst[i].level == best_level &&
			(pick < 0 || mc->sst[i].minseq < mc->sst[pick].minseq))
			pick = i;
	ps->chosen[pick] = true;
	add_overlapping(ps, best_level + 1);
	job->output_level = best_level + 1;
	job->may_abandon = true;
	return true;
}

/* a sorted run of the tiered layout: one L0 table or one whole level */
typedef struct Run
{
	int			level;
	int			sst;			/* L0: index into the manifest; else -1 */
	uint64		maxseq;
	uint64		bytes;
} Run;

static int
run_cmp(const void *a, const void *b)
{
	const Run  *ra = a;
	const Run  *rb = b;

	/* newest first: L0 tables by sequence, then levels top down */
	if (ra->level != rb->level)
		return ra->level - rb->level;
	return (ra->maxseq < rb->maxseq) - (ra->maxseq > rb->maxseq);
}

/*
 * The tiered policy, size-tiered as Cassandra's STCS and in the spirit of
 * RocksDB's universal compaction.  Runs, newest first, are merged
 * TIERED_WIDTH at a time when they are of similar size (within a factor
 * TIERED_SIMILAR), so every byte is rewritten about log_4(data / memtable)
 * times; when the runs above the oldest outweigh it TIERED_MAX_SPACE_AMP
 * times everything is merged, which bounds space amplification and lets
 * garbage collection reach the oldest data; past TIERED_MAX_RUNS runs the
 * newest are merged regardless, bounding read amplification.  Windows are
 * contiguous in time.  Returns false, or the window [*first, *last] of
 * runs[] (filled in, *nruns of them).
 */
#define TIERED_WIDTH		4
#define TIERED_SIMILAR		2.0
#define TIERED_MAX_RUNS		16

static bool
tiered_window(const KvlsmSstDesc *ssts, int nsst, Run *runs, int *nruns_out,
			  int *first, int *last)
{
	int			nruns = 0;
	int			level;
	int			i,
				r;
	uint64		above = 0;

	for (i = 0; i < nsst; i++)
		if (ssts[i].level == 0)
		{
			runs[nruns].level = 0;
			runs[nruns].sst = i;
			runs[nruns].maxseq = ssts[i].maxseq;
			runs[nruns].bytes = ssts[i].nbytes;
			nruns++;
		}
	for (level = 1; level < KVLSM_MAX_LEVELS; level++)
	{
		uint64		bytes = 0;
		bool		any = false;

		for (i = 0; i < nsst; i++)
			if (ssts[i].level == level)
			{
				bytes += ssts[i].nbytes;
				any = true;
			}
		if (!any)
			continue;
		runs[nruns].level = level;
		runs[nruns].sst = -1;
		runs[nruns].maxseq = 0;
		runs[nruns].bytes = bytes;
		nruns++;
	}
	qsort(runs, nruns, sizeof(Run), run_cmp);
	*nruns_out = nruns;
	if (nruns < 2)
		return false;

	/* space amplification: everything above the oldest run vs. the oldest */
	for (r = 0; r < nruns - 1; r++)
		above += runs[r].bytes;
	if (nruns >= TIERED_WIDTH &&
		(double) above > TIERED_MAX_SPACE_AMP * (double) Max(runs[nruns - 1].bytes, 1))
	{
		*first = 0;
		*last = nruns - 1;
		return true;
	}

	/* the newest window of TIERED_WIDTH runs of similar size */
	for (r = 0; r + TIERED_WIDTH <= nruns; r++)
	{
		uint64		lo = runs[r].bytes,
					hi = runs[r].bytes;
		int			k;

		for (k = r + 1; k < r + TIERED_WIDTH; k++)
		{
			lo = Min(lo, runs[k].bytes);
			hi = Max(hi, runs[k].bytes);
		}
		if ((double) hi <= TIERED_SIMILAR * (double) Max(lo, 1))
		{
			*first = r;
			*last = r + TIERED_WIDTH - 1;
			return true;
		}
	}

	/* too many runs: merge the newest */
	if (nruns >= TIERED_MAX_RUNS)
	{
		*first = 0;
		*last = TIERED_WIDTH - 1;
		return true;
	}
	return false;
}

static bool
pick_tiered(KvlsmPickState *ps, KvlsmCompactionJob *job)
{
	KvlsmManifestCopy *mc = ps->mc;
	Run		   *runs = palloc(sizeof(Run) * (mc->hdr.nsst + KVLSM_MAX_LEVELS));
	int			nruns;
	int			first,
				last;
	int			shallowest_level = KVLSM_MAX_LEVELS;
	int			r;
	uint32		i;

	if (!tiered_window(mc->sst, mc->hdr.nsst, runs, &nruns, &first, &last))
	{
		pfree(runs);
		return pick_intra_level(ps, job);
	}

	for (r = 0; r < nruns; r++)
		if (runs[r].level > 0)
			shallowest_level = Min(shallowest_level, runs[r].level);
	for (r = first; r <= last; r++)
	{
		if (runs[r].level == 0)
			ps->chosen[runs[r].sst] = true;
		else
			for (i = 0; i < mc->hdr.nsst; i++)
				if (mc->sst[i].level == runs[r].level)
					ps->chosen[i] = true;
	}

	/*
	 * The output run must stay between the newer runs left out (L0 tables
	 * or shallower levels) and the older ones (deeper levels): the deepest
	 * level in the window; for a window of L0 tables only, the empty level
	 * just above the shallowest non-empty one when the window reaches the
	 * oldest run, or L0 itself.
	 */
	if (runs[last].level > 0)
		job->output_level = runs[last].level;
	else if (last == nruns - 1)
		job->output_level = shallowest_level == KVLSM_MAX_LEVELS ?
			KVLSM_MAX_LEVELS - 1 : shallowest_level - 1;
	else
		job->output_level = 0;
	job->may_abandon = runs[first].level > 0;
	pfree(runs);
	return true;
}
bool
kvlsm_compaction_needed(KvlsmShared *sh)
{
	uint64		bytes[KVLSM_MAX_LEVELS] = {0};
	int			count[KVLSM_MAX_LEVELS] = {0};
	uint32		i;
	int			level;

	LWLockAcquire(&sh->lock, LW_SHARED);
	if (sh->compacting_pid != 0)
	{
		LWLockRelease(&sh->lock);
		return false;
	}
	{
		KvlsmSstDesc *ssts = kvlsm_shared_ssts(sh);

		for (i = 0; i < sh->nsst; i++)
		{
			if (ssts[i].level >= KVLSM_MAX_LEVELS)
				continue;
			bytes[ssts[i].level] += ssts[i].nbytes;
			count[ssts[i].level]++;
		}
	}
	LWLockRelease(&sh->lock);

	for (level = 1; level < KVLSM_MAX_LEVELS; level++)
		if (level_crowded(sh->memtable_size, level, count[level], bytes[level]))
			return true;
	if (sh->compaction_style == KVLSM_COMPACTION_TIERED)
	{
		KvlsmSstDesc *copy;
		Run		   *runs;
		int			nruns,
					first,
					last;
		int			n;
		bool		due;

		copy = kvlsm_copy_ssts(sh, &n);
		runs = palloc(sizeof(Run) * (n + KVLSM_MAX_LEVELS));
		due = tiered_window(copy, n, runs, &nruns, &first, &last);
		pfree(runs);
		pfree(copy);
		return due;
	}
	if (count[0] >= kvlsm_l0_compaction_trigger)
		return true;
	for (level = 1; level < KVLSM_MAX_LEVELS - 1; level++)
		if (bytes[level] > kvlsm_level_target_bytes(sh->memtable_size, level))
			return true;
	return false;
}

/* read the exact bounds of every listed table */
KvlsmKeyBounds *
kvlsm_pick_load_bounds(Relation rel, KvlsmManifestCopy *mc)
{
	KvlsmKeyBounds	   *b = palloc0(sizeof(KvlsmKeyBounds) * Max(mc->hdr.nsst, 1));
	uint32		i;

	for (i = 0; i < mc->hdr.nsst; i++)
	{
		if (!KvlsmSstIsLive(&mc->sst[i]))
			continue;
		b[i].known = kvlsm_sst_bounds(rel, &mc->sst[i], &b[i].min, &b[i].minlen,
									  &b[i].max, &b[i].maxlen);
	}
	return b;
}

bool
kvlsm_pick_by_style(KvlsmPickState *ps, KvlsmCompactionJob *job, void *arg)
{
	int			style = *(int *) arg;

	if (style == KVLSM_COMPACTION_TIERED)
		return pick_tiered(ps, job);
	return pick_leveled(ps, job);
}

static bool
range_overlaps(const KvlsmKeyOps *ops, const KvlsmPickRange *ra, const KvlsmKeyBounds *b)
{
	if (!b->known)
		return true;
	if (ra->lower && ops->cmp(b->max, b->maxlen, ra->lower, ra->lowerlen, ops->arg) < 0)
		return false;
	if (ra->upper && ops->cmp(b->min, b->minlen, ra->upper, ra->upperlen, ops->arg) > 0)
		return false;
	return true;
}

/*
 * Manual compaction: every table overlapping the range, then everything
 * overlapping those, to a fixed point (so no table left out can overlap
 * the output), all of L0 if any of it (L0 inputs stay contiguous in
 * time), merged into the deepest level among them.
 */
bool
kvlsm_pick_range(KvlsmPickState *ps, KvlsmCompactionJob *job, void *arg)
{
	KvlsmPickRange   *ra = arg;
	KvlsmManifestCopy *mc = ps->mc;
	uint32		i;
	bool		grew = true;
	int			deepest = 1;

	for (i = 0; i < mc->hdr.nsst; i++)
		if (KvlsmSstIsLive(&mc->sst[i]) &&
			range_overlaps(ps->ops, ra, &ps->bounds[i]))
			ps->chosen[i] = true;
	while (grew)
	{
		KvlsmKeyBounds		u;
		bool		first = true;
		bool		any_l0 = false;

		grew = false;
		for (i = 0; i < mc->hdr.nsst; i++)
			if (ps->chosen[i])
			{
				bounds_union(ps->ops, &u, &ps->bounds[i], first);
				first = false;
				any_l0 |= (mc->sst[i].level == 0);
			}
		if (first)
			return false;
		for (i = 0; i < mc->hdr.nsst; i++)
			if (!ps->chosen[i] && KvlsmSstIsLive(&mc->sst[i]) &&
				((any_l0 && mc->sst[i].level == 0) ||
				 bounds_overlap(ps->ops, &u, &ps->bounds[i])))
			{
				ps->chosen[i] = true;
				grew = true;
			}
	}
	for (i = 0; i < mc->hdr.nsst; i++)
		if (ps->chosen[i])
			deepest = Max(deepest, (int) mc->sst[i].level);
	job->output_level = deepest;
	job->may_abandon = false;
	return true;
}
