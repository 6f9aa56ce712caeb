/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Merged reads of one LSM: every record of a key range from the two
 *	  memtable generations and the live SSTables, in (key asc, seq desc)
 *	  order (kvlsm_collect), and the smaller reads built from the same
 *	  steps: the memtables alone, a pivot for backward scans, commit hints.
 *
 * Locks: the memtables and the SSTable list are copied under one share
 * lock on the LSM, so a collection is consistent; SSTable pages are read
 * after it is released (no I/O under the LSM lock), and a page recycled
 * meanwhile by a compaction makes the collection start over.  Nothing
 * here writes WAL.
 *
 * Callers: the table AM (rowrecord.c, scan.c, modify.c), the index AM
 * (indexam.c, indexscan.c), SSTable reads (sst_reader.c: the pivot), key history
 * (inspect.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "kvlsm/logwriter.h"
#include "kvlsm/manifest.h"
#include "kvlsm/sstable.h"

/*
 * Room for the table list of kvlsm_collect, kept by the backend for the
 * outermost call (a comparator may run SQL that collects again).  An error
 * inside a collection leaves collect_depth raised until the transaction
 * aborts, so that a collection still running further up never shares it.
 */
static struct
{
	KvlsmSstDesc *ssts;
	int		   *runs;
	int			cap;
}			collect_room;
static int	collect_depth = 0;

/* one call of kvlsm_collect: what it asks for, and what it has so far */
typedef struct CollectState
{
	/* the question */
	const KvlsmKeyOps *ops;
	const char *start;
	int			startlen;
	bool		start_exclusive;
	const char *end;
	int			endlen;
	int			maxkeys;
	const uint64 *bloom_hash;
	KvlsmRecordSet *out;
	/* the tables that may hold keys of the range, and room for them */
	KvlsmSstDesc *ssts;
	int			nsst;
	int		   *runs;			/* where each sorted run starts in 'out' */
	int			nruns;
	int			cap;
	/* the smallest last key of a run cut short by maxkeys */
	const char *bound;
	int			boundlen;
	bool		any_limited;
} CollectState;

/* copy records of one generation in range; see kvlsm_collect */
static void
collect_gen(KvlsmMemGen *gen, const KvlsmKeyOps *ops,
			const char *start, int startlen, bool start_exclusive,
			const char *end, int endlen, int maxkeys,
			KvlsmRecordSet *out, bool *limited, int *lastidx)
{
	KvlsmSkipNode *n;
	int			nkeys = 0;
	KvlsmSkipNode *prev = NULL;

	*limited = false;
	*lastidx = -1;
	if (gen->head == NULL)
		return;
	if (start)
		n = kvlsm_memgen_seek(gen, start, startlen,
							  start_exclusive ? 0 : PG_UINT64_MAX,
							  ops->cmp, ops->arg);
	else
		n = kvlsm_memgen_first(gen);
	for (; n != NULL; n = n->next[0])
	{
		if (start && start_exclusive &&
			ops->cmp(KvlsmSkipNodeKey(n), n->keylen, start, startlen, ops->arg) == 0)
			continue;
		if (end && ops->cmp(KvlsmSkipNodeKey(n), n->keylen, end, endlen, ops->arg) > 0)
			break;
		if (prev == NULL ||
			ops->cmp(KvlsmSkipNodeKey(prev), prev->keylen,
					 KvlsmSkipNodeKey(n), n->keylen, ops->arg) != 0)
		{
			if (maxkeys > 0 && nkeys >= maxkeys)
			{
				*limited = true;
				break;
			}
			nkeys++;
		}
		prev = n;
		if (n->aborted)
			continue;
		kvlsm_recset_add(out, KvlsmSkipNodeKey(n), n->keylen, n->seq,
						 n->recflags, KvlsmSkipNodeValue(n), n->vallen,
						 n->hint, true);
		*lastidx = out->n - 1;
	}
}

/* may table 'd' hold keys in [start, end], by its key range? */
static bool
desc_may_contain(const KvlsmSstDesc *d, const KvlsmKeyOps *ops,
				 const char *start, int startlen,
				 const char *end, int endlen)
{
	if (d->minkeylen == 0xFF || d->nentries == 0)
		return d->nentries > 0;
	if (end && ops->cmp((const char *) d->minkey, d->minkeylen, end, endlen, ops->arg) > 0)
		return false;
	if (start && ops->cmp((const char *) d->maxkey, d->maxkeylen, start, startlen, ops->arg) < 0)
		return false;
	return true;
}

/*
 * A key below 'key' (NULL: above every key) that leaves a modest slice of
 * the LSM between the two: the largest of the keys 'back' data blocks down
 * in each live SSTable (kvlsm_sst_pivot), copied to 'out'
 * (KVLSM_MAX_KEY_SIZE bytes).  False when no SSTable holds a key below
 * 'key': then everything below it is in the memtables, whose size is
 * bounded.  A backward scan collects [pivot, key) forward and steps down.
 */
bool
kvlsm_pivot_below(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
				  const char *key, int keylen, int back, char *out, int *outlen)
{
	KvlsmSstDesc *ssts;
	int			nsst;
	int			i;
	bool		found = false;

	ssts = kvlsm_copy_ssts(sh, &nsst);
	for (i = 0; i < nsst; i++)
	{
		const char *p;
		int			plen;

		if (!KvlsmSstIsLive(&ssts[i]) || ssts[i].nentries == 0)
			continue;
		if (!kvlsm_sst_pivot(rel, sh, &ssts[i], ops, key, keylen, back, &p, &plen))
			continue;
		if (!found || ops->cmp(p, plen, out, *outlen, ops->arg) > 0)
		{
			memcpy(out, p, plen);
			*outlen = plen;
			found = true;
		}
	}
	pfree(ssts);
	return found;
}

/*
 * Room for every listed table.  A lookup must not allocate and free
 * that much every time (a large chunk is its own malloc, which glibc
 * may map and unmap per call), so an outermost call keeps its room
 * in collect_room for the next one.  The caller holds the LSM lock.
 */
static void
make_collect_room(KvlsmShared *sh, CollectState *cs)
{
	if (cs->ssts != NULL && cs->cap >= (int) sh->nsst)
		return;
	if (cs->ssts != NULL && cs->ssts != collect_room.ssts)
	{
		pfree(cs->ssts);
		pfree(cs->runs);
	}
	cs->cap = Max(sh->nsst, 16);
	if (collect_depth == 1)
	{
		if (collect_room.cap < cs->cap)
		{
			if (collect_room.ssts)
			{
				pfree(collect_room.ssts);
				pfree(collect_room.runs);
				collect_room.ssts = NULL;
				collect_room.cap = 0;
			}
			collect_room.runs = MemoryContextAlloc(TopMemoryContext,
												   sizeof(int) * (cs->cap + 2));
			collect_room.ssts = MemoryContextAlloc(TopMemoryContext,
												   sizeof(KvlsmSstDesc) * cs->cap);
			collect_room.cap = cs->cap;
		}
		cs->ssts = collect_room.ssts;
		cs->runs = collect_room.runs;
		cs->cap = collect_room.cap;
	}
	else
	{
		cs->ssts = palloc(sizeof(KvlsmSstDesc) * cs->cap);
		cs->runs = palloc(sizeof(int) * (cs->cap + 2));
	}
}

/*
 * A run stopped at maxkeys after record 'r': nothing past the smallest
 * such key is complete, so the collection ends there.
 */
static void
narrow_bound(CollectState *cs, const KvlsmRecord *r)
{
	const KvlsmKeyOps *ops = cs->ops;

	if (cs->bound == NULL ||
		ops->cmp(r->key, r->keylen, cs->bound, cs->boundlen, ops->arg) < 0)
	{
		cs->bound = r->key;
		cs->boundlen = r->keylen;
	}
	cs->any_limited = true;
}

/* the active and the frozen generation, a run each (LSM lock held) */
static void
collect_memtables(KvlsmShared *sh, CollectState *cs)
{
	int			i;

	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		bool		limited;
		int			lastidx;

		cs->runs[cs->nruns++] = cs->out->n;
		collect_gen(gen, cs->ops, cs->start, cs->startlen, cs->start_exclusive,
					cs->end, cs->endlen, cs->maxkeys, cs->out, &limited, &lastidx);
		if (limited && lastidx >= 0)
			narrow_bound(cs, &cs->out->recs[lastidx]);
	}
}

/*
 * Copy only the tables that may hold keys of the range: a lookup in a
 * large leveled LSM then copies one or two per level, not the list.
 * The caller holds the LSM lock.
 */
static void
pick_tables(KvlsmShared *sh, CollectState *cs)
{
	KvlsmSstDesc *shared = kvlsm_shared_ssts(sh);
	int			k;

	cs->nsst = 0;
	for (k = 0; k < (int) sh->nsst; k++)
		if (KvlsmSstIsLive(&shared[k]) &&
			desc_may_contain(&shared[k], cs->ops, cs->start, cs->startlen,
							 cs->bound ? cs->bound : cs->end,
							 cs->bound ? cs->boundlen : cs->endlen))
			cs->ssts[cs->nsst++] = shared[k];
}

/*
 * The picked tables, newest first, a run each, read without the LSM
 * lock.  False when a table's pages were recycled meanwhile: the caller
 * starts over.
 */
static bool
collect_tables(Relation rel, KvlsmShared *sh, CollectState *cs)
{
	KvlsmRecordSet *out = cs->out;
	int			i;

	for (i = cs->nsst - 1; i >= 0; i--)
	{
		const char *end = cs->bound ? cs->bound : cs->end;
		int			endlen = cs->bound ? cs->boundlen : cs->endlen;
		bool		limited;
		int			before = out->n;

		if (!KvlsmSstIsLive(&cs->ssts[i]) ||
			!desc_may_contain(&cs->ssts[i], cs->ops, cs->start, cs->startlen,
							  end, endlen))
			continue;
		cs->runs[cs->nruns++] = out->n;
		if (kvlsm_sst_collect(rel, sh, &cs->ssts[i], cs->ops, cs->start,
							  cs->startlen, cs->start_exclusive, end, endlen,
							  cs->maxkeys, cs->bloom_hash, out,
							  &limited) == KVLSM_SST_RETRY)
			return false;
		if (limited && out->n > before)
			narrow_bound(cs, &out->recs[out->n - 1]);
	}
	return true;
}

/* drop duplicates (same key and seq) and whatever lies past the bound */
static void
drop_duplicates(CollectState *cs)
{
	KvlsmRecordSet *out = cs->out;
	const KvlsmKeyOps *ops = cs->ops;
	int			i;
	int			j = 0;

	for (i = 0; i < out->n; i++)
	{
		KvlsmRecord *r = &out->recs[i];

		if (cs->bound &&
			ops->cmp(r->key, r->keylen, cs->bound, cs->boundlen, ops->arg) > 0)
			break;
		if (j > 0 && out->recs[j - 1].seq == r->seq &&
			ops->cmp(out->recs[j - 1].key, out->recs[j - 1].keylen,
					 r->key, r->keylen, ops->arg) == 0)
			continue;
		out->recs[j++] = *r;
	}
	out->n = j;
}

/*
 * Collect every record with a key in [start, end] from the memtables and
 * SSTables, sorted by (key asc, seq desc).  At most about 'maxkeys'
 * distinct keys are returned (0 = all); the result is complete up to its
 * last key.  Returns true when more keys may follow it.  'bloom_hash'
 * (non-NULL for a lookup of one key: a table's row id, or an index's first
 * column under an equality operator whose hash agrees with the filter's)
 * lets bloom filters skip SSTables.
 *
 * The memtables and the SSTable list are copied under one share lock, so
 * the set is consistent; SSTable pages are then read without it, and a
 * page that was recycled meanwhile makes the whole collection start over.
 */
bool
kvlsm_collect(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
			  const char *start, int startlen, bool start_exclusive,
			  const char *end, int endlen, int maxkeys,
			  const uint64 *bloom_hash, KvlsmRecordSet *out)
{
	CollectState cs;

	memset(&cs, 0, sizeof(cs));
	cs.ops = ops;
	cs.start = start;
	cs.startlen = startlen;
	cs.start_exclusive = start_exclusive;
	cs.end = end;
	cs.endlen = endlen;
	cs.maxkeys = maxkeys;
	cs.bloom_hash = bloom_hash;
	cs.out = out;

	/* this backend's own deferred puts first: a read sees its writes */
	kvlsm_apply_deferred(rel, sh);
	collect_depth++;
	if (bloom_hash)
		sh->stats.point_lookups++;
	for (;;)
	{
		cs.any_limited = false;
		cs.bound = NULL;
		cs.nruns = 0;
		kvlsm_recset_reset(out);

		LWLockAcquire(&sh->lock, LW_SHARED);
		make_collect_room(sh, &cs);
		collect_memtables(sh, &cs);
		pick_tables(sh, &cs);
		LWLockRelease(&sh->lock);

		if (collect_tables(rel, sh, &cs))
			break;

		/*
		 * A compaction freed the extent and it was reused.  A primary's
		 * shared manifest is already current; a standby's is refreshed
		 * from the replayed pages first.
		 */
		CHECK_FOR_INTERRUPTS();
		if (!sh->authoritative)
			(void) kvlsm_attach(rel);
	}

	kvlsm_recset_merge_runs(out, cs.runs, cs.nruns, ops);
	drop_duplicates(&cs);
	if (cs.ssts != collect_room.ssts)
	{
		pfree(cs.ssts);
		pfree(cs.runs);
	}
	collect_depth--;
	return cs.any_limited;
}

/*
 * The transaction aborts: a collection an error left is over (see
 * collect_room).  Called by the transaction callback of release.c.
 */
void
kvlsm_collect_abort(void)
{
	collect_depth = 0;
}

/* records of one key in the memtables only (caller holds a stripe lock) */
bool
kvlsm_memtable_records(KvlsmShared *sh, const KvlsmKeyOps *ops,
					   const char *key, int keylen, KvlsmRecordSet *out)
{
	int			i;

	LWLockAcquire(&sh->lock, LW_SHARED);
	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		bool		limited;
		int			lastidx;

		collect_gen(gen, ops, key, keylen, false, key, keylen, 0, out,
					&limited, &lastidx);
	}
	LWLockRelease(&sh->lock);
	return out->n > 0;
}

/*
 * Every record with a key in [start, end] in the active and in the frozen
 * memtable, each into its own set (kvlsm_key_history shows where a
 * version lives).
 */
void
kvlsm_memtable_range(KvlsmShared *sh, const KvlsmKeyOps *ops,
					 const char *start, int startlen,
					 const char *end, int endlen,
					 KvlsmRecordSet *active_out, KvlsmRecordSet *frozen_out)
{
	bool		limited;
	int			lastidx;

	LWLockAcquire(&sh->lock, LW_SHARED);
	collect_gen(&sh->active, ops, start, startlen, false, end, endlen, 0,
				active_out, &limited, &lastidx);
	collect_gen(&sh->frozen, ops, start, startlen, false, end, endlen, 0,
				frozen_out, &limited, &lastidx);
	LWLockRelease(&sh->lock);
}

uint64
kvlsm_version_epoch(KvlsmShared *sh)
{
	uint64		e;

	LWLockAcquire(&sh->lock, LW_SHARED);
	e = sh->gen_epoch;
	LWLockRelease(&sh->lock);
	return e;
}

/* remember a record's commit status in its memtable node, if still there */
void
kvlsm_set_hint(KvlsmShared *sh, const KvlsmKeyOps *ops, const char *key,
			   int keylen, uint64 seq, uint8 hint)
{
	int			i;

	if (!LWLockConditionalAcquire(&sh->lock, LW_SHARED))
		return;
	for (i = 0; i < 2; i++)
	{
		KvlsmMemGen *gen = (i == 0) ? &sh->active : &sh->frozen;
		KvlsmSkipNode *n;

		if (gen->head == NULL)
			continue;
		n = kvlsm_memgen_find(gen, key, keylen, seq, ops->cmp, ops->arg);
		if (n)
			n->hint = hint;
	}
	LWLockRelease(&sh->lock);
}
