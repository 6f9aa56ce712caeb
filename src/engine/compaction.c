/*-------------------------------------------------------------------------
 *
 * compaction.c
 *	  Compaction of one LSM, the executor: claim a job that the picker
 *	  (compaction_pick.c) chose, merge its inputs in key order dropping
 *	  what no reader can need any more, write outputs split at a target
 *	  size, and install the result.
 *
 * What is picked, leveled or tiered, is compaction_pick.c's.
 *
 * For any key, a shallower level always holds newer versions than a deeper
 * one, and reads order versions by sequence number alone, so the picked
 * inputs can be merged while flushes add new L0 tables.  Records are
 * dropped only by the garbage-collection filter of the layer above, which
 * is told whether a table outside the inputs could hold older records of
 * the same keys ("bottommost"): a tombstone may go only then.
 *
 * Only one compaction runs per LSM at a time (KvlsmShared.compacting_pid);
 * different relations compact in parallel in different workers.  The
 * flush lock is held only to pick, to place each output and to install;
 * see manifest.h for how unfinished outputs are reclaimed.
 *
 * A job is merged in batches of at most BATCH_KEYS keys per input
 * (read_batch), written key by key (write_batch: the GC filter's verdict,
 * then the kept versions into the current output), with the state that
 * carries across batches in a MergeState.
 *
 * Callers: kvlsm_compact_step from flush.c (foreground), maintenance.c
 * (stalled writers) and src/worker/worker.c (compaction jobs);
 * kvlsm_compact_range from the admin functions; kvlsm_compact_freeze from
 * the table AM's VACUUM.  The GC policy and TOAST sweeper are registered
 * by _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

#include "kvlsm/compaction.h"
#include "kvlsm/compress.h"
#include "kvlsm/compaction_pick.h"
#include "kvlsm/history.h"
#include "executor/instrument.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/manifest.h"

#define BATCH_KEYS		1024

static const KvlsmGcPolicy *gc_policy = NULL;
static KvlsmToastSweeper toast_sweeper = NULL;

void
kvlsm_set_gc_policy(const KvlsmGcPolicy *policy)
{
	gc_policy = policy;
}

void
kvlsm_set_toast_sweeper(KvlsmToastSweeper sweeper)
{
	toast_sweeper = sweeper;
}


/* ---------------------------------------------------------------------
 * Merging
 * ---------------------------------------------------------------------
 */

/*
 * An output is built straight into an extent reserved for it when it
 * starts, listed in the manifest as a pending table with no entries (a
 * reservation: readers and kvlsm_verify pass it by, and like any pending
 * table it goes back to the free list if the compaction dies).  Its data
 * pages are written as they are made, so a compaction holds a batch of
 * pages, the index and the filter's hashes in memory, not its outputs.
 * The output ends at its target size or when the reservation could not
 * take the next key's records; the part of the reservation it did not use
 * goes back to the free list when it is listed as finished.
 */
/* bytes an entry takes on a data page at most (header, key, value) */
#define ENTRY_BYTES(r) (32 + (Size) (r)->keylen + (r)->vallen)

typedef struct Output
{
	KvlsmSstBuilder *b;
	uint64		bytes;			/* logical bytes added */
	BlockNumber start;			/* the reservation */
	uint32		npages;
} Output;

/*
 * Install an edit of the manifest alone (no metapage changes), under the
 * flush lock: outputs starting and finishing, stale outputs dropped.
 */
static void
install_plain(Relation rel, KvlsmShared *sh, KvlsmManifestCopy *mc)
{
	KvlsmInstallArg ia;

	memset(&ia, 0, sizeof(ia));
	kvlsm_manifest_prepare(rel, mc, &ia);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh, mc, &ia);
	LWLockRelease(&sh->lock);
}

/*
 * Start an output whose first key brings 'n' records of 'bytes' bytes:
 * reserve its extent, sized for the job's target (or what is left of its
 * inputs, if less) at the inputs' pages per logical byte, with a quarter
 * more for a worse compression.  (Sizing later outputs by what the first
 * took, which is less when the bottom's codec is tighter, cut the room a
 * full compaction needs, but a reservation near the real size fails
 * kvlsm_sst_builder_has_room's loose bound, twice the uncompressed payload,
 * so compressible rows ended outputs after a page or two: not done until
 * that bound follows the compression.)  Without compression, an output
 * takes at least a page per page's worth of records whatever the inputs
 * took (they may have been compressed before the option changed).
 */
static void
start_output(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job, Output *out,
			 uint32 n, Size bytes)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	KvlsmSstDesc desc;
	int			bloom_bits;
	uint64		want;
	uint64		left;
	double		ratio;

	/*
	 * RocksDB's bottommost_compression: the tables no older data lies
	 * under hold most of the rows and change least, so they may take a
	 * slower, tighter codec than those flushes and upper levels write.
	 */
	int32		spec = job->bottommost ? sh->bottom_compression : sh->compression;

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	memset(&desc, 0, sizeof(desc));
	desc.id = kvlsm_reserve_sstid(rel);
	kvlsm_read_metapage(rel, &meta);
	bloom_bits = kvlsm_bloom_bits_for(&meta);
	left = job->in_bytes > job->consumed ? job->in_bytes - job->consumed : 0;
	ratio = job->pages_per_byte * 1.25;
	if (KVLSM_SPEC_METHOD(spec) == KVLSM_COMPRESSION_NONE)
		ratio = Max(ratio, 1.15 / KVLSM_PAGE_CAPACITY);
	want = (uint64) (Min(job->target_file_bytes, left) * ratio) + 16;
	want = Max(want, kvlsm_sst_min_reserve(n, bytes, bloom_bits));
	want = Min(want, KVLSM_MAX_RESERVE_PAGES);
	out->npages = Max((uint32) want, kvlsm_sst_min_reserve(n, bytes, bloom_bits));

	kvlsm_manifest_read(rel, &meta, mc);
	if (mc->hdr.nsst >= KVLSM_MAX_SST || job->noutputs >= KVLSM_MAX_SST)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm relation \"%s\" has too many SSTables to compact",
						RelationGetRelationName(rel)),
				 errdetail("The manifest holds at most %d SSTables.", KVLSM_MAX_SST)));
	out->start = kvlsm_manifest_reserve_extent(rel, mc, out->npages);
	desc.start = out->start;
	desc.npages = out->npages;
	desc.level = KVLSM_LEVEL_PENDING;
	desc.minkeylen = desc.maxkeylen = 0xFF;
	mc->sst[mc->hdr.nsst++] = desc;
	install_plain(rel, sh, mc);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);

	out->b = kvlsm_sst_builder_begin(rel, desc.id, job->output_level, spec,
									 bloom_bits, kvlsm_keyops(rel));
	kvlsm_sst_builder_set_compaction(out->b);
	kvlsm_sst_builder_stream_to(out->b, out->start, out->npages);
	out->bytes = 0;
	job->output_ids[job->noutputs++] = desc.id;
}

/* write the rest of an output and list it in the manifest, still pending */
static void
finish_output(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job, Output *out,
			  uint64 *bytes_out)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc;
	KvlsmSstDesc desc;
	uint32		npages;
	uint32		i;

	if (out->b == NULL)
		return;
	Assert(kvlsm_sst_builder_count(out->b) > 0);
	npages = kvlsm_sst_builder_finish(out->b);
	/* wait for the rate limiter now, not under the flush lock */
	kvlsm_sst_builder_pay(out->b);
	kvlsm_sst_builder_write(out->b, out->start, false, &desc);
	Assert(desc.npages == npages && npages <= out->npages);
	desc.level = KVLSM_LEVEL_PENDING;

	mc = palloc(sizeof(KvlsmManifestCopy));
	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	for (i = 0; i < mc->hdr.nsst; i++)
		if (mc->sst[i].id == desc.id)
			break;
	if (i == mc->hdr.nsst || mc->sst[i].start != out->start ||
		mc->sst[i].npages != out->npages)
		elog(ERROR, "kvlsm: the reservation of compaction output %llu of \"%s\" is gone",
			 (unsigned long long) desc.id, RelationGetRelationName(rel));
	mc->sst[i] = desc;
	if (npages < out->npages)
		kvlsm_manifest_give_extent(mc, out->start + npages, out->npages - npages);
	install_plain(rel, sh, mc);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);

	*bytes_out += (uint64) desc.npages * BLCKSZ;
	out->b = NULL;
	kvlsm_crash_point(KVLSM_CP_COMPACTION_MID);
}

/*
 * TOAST values of the rows a compaction drops are deleted after its
 * install, by the compacting transaction (heap deletions in the TOAST
 * table), and the install records that transaction in the metapage
 * (toast_fxid).  If it never commits (a crash between the install and the
 * commit, or an error), the values stay behind with nothing referring to
 * them, and the next compaction sweeps them.  What became of toast_fxid?
 */
typedef enum ToastFate
{
	TOAST_DONE,					/* committed, or this transaction's own */
	TOAST_RUNNING,
	TOAST_LOST					/* aborted, crashed, or too old to know */
} ToastFate;

static ToastFate
toast_fate(FullTransactionId fxid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	TransactionId oldest;
	uint32		epoch;
	ToastFate	fate;

	if (!FullTransactionIdIsValid(fxid))
		return TOAST_DONE;
	if (!FullTransactionIdPrecedes(fxid, next))
		return TOAST_LOST;		/* not from this cluster's past */
	/* the commit log may be truncated before it (as txid_status checks) */
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	oldest = ShmemVariableCache->oldestClogXid;
	epoch = EpochFromFullTransactionId(next);
	if (oldest > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	if (FullTransactionIdPrecedes(fxid, FullTransactionIdFromEpochAndXid(epoch, oldest)))
		fate = TOAST_LOST;
	else if (TransactionIdIsCurrentTransactionId(xid))
		fate = TOAST_DONE;
	else if (TransactionIdIsInProgress(xid))
		fate = TOAST_RUNNING;
	else
		fate = TransactionIdDidCommit(xid) ? TOAST_DONE : TOAST_LOST;
	LWLockRelease(XactTruncationLock);
	return fate;
}

/*
 * Sweep the TOAST values an interrupted compaction left behind, if any,
 * before this compaction merges anything.  VACUUM's compactions must not
 * take an xid (deleting does): they leave the sweep to the next one.
 */
static void
sweep_left_toast(Relation rel, KvlsmCompactionJob *job)
{
	KvlsmMetaPageData meta;

	if (toast_sweeper == NULL || (MyProc->statusFlags & PROC_IN_VACUUM))
		return;
	/* only compaction installs change these, and this job has the claim */
	kvlsm_read_metapage(rel, &meta);
	if ((meta.flags & KVLSM_META_TOAST_SWEEP) == 0 &&
		toast_fate(meta.toast_fxid) != TOAST_LOST)
		return;
	job->toast_swept = true;
	job->toast_sweep_incomplete = !toast_sweeper(rel);
}

/*
 * The TOAST state the install of a compaction records: its own
 * transaction if it deletes TOAST values (after the install, or in the
 * sweep), and whether a sweep is due: an earlier deleter did not commit,
 * or may not and is no longer tracked, or this job's sweep had to skip
 * values someone was deleting.
 */
static void
plan_toast_state(const KvlsmMetaPageData *meta, KvlsmCompactionJob *job, bool deletes_toast,
				 KvlsmInstallArg *ia)
{
	ToastFate	fate = toast_fate(meta->toast_fxid);
	TransactionId mine = GetCurrentTransactionIdIfAny();

	ia->set_toast_state = true;
	ia->toast_sweep = (meta->flags & KVLSM_META_TOAST_SWEEP) != 0 && !job->toast_swept;
	if (fate == TOAST_RUNNING || (fate == TOAST_LOST && !job->toast_swept) ||
		job->toast_sweep_incomplete)
		ia->toast_sweep = true;
	if (deletes_toast || (job->toast_swept && TransactionIdIsValid(mine)))
		ia->toast_fxid = GetCurrentFullTransactionId();
	else if (FullTransactionIdIsValid(meta->toast_fxid) && fate == TOAST_DONE &&
			 TransactionIdIsCurrentTransactionId(XidFromFullTransactionId(meta->toast_fxid)))
		ia->toast_fxid = meta->toast_fxid;
	else
		ia->toast_fxid = InvalidFullTransactionId;
}

/* swap the inputs for the outputs in one install */
static void
install_result(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job, uint64 bytes_in,
			   uint64 bytes_out, bool deletes_toast)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	KvlsmInstallArg ia;
	uint32		i,
				j;
	int			k;

	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	for (k = 0; k < job->ninputs; k++)
	{
		for (i = 0; i < mc->hdr.nsst; i++)
			if (mc->sst[i].id == job->inputs[k].id)
				break;
		if (i == mc->hdr.nsst || mc->sst[i].level != job->inputs[k].level)
			elog(ERROR, "kvlsm: input SSTable %llu of a compaction of \"%s\" changed",
				 (unsigned long long) job->inputs[k].id, RelationGetRelationName(rel));
		kvlsm_manifest_give_extent(mc, mc->sst[i].start, mc->sst[i].npages);
		mc->sst[i].nentries = UINT32_MAX;	/* mark for removal */
	}
	for (i = 0, j = 0; i < mc->hdr.nsst; i++)
	{
		if (mc->sst[i].nentries == UINT32_MAX && mc->sst[i].level != KVLSM_LEVEL_PENDING)
			continue;
		for (k = 0; k < job->noutputs; k++)
			if (mc->sst[i].id == job->output_ids[k])
				mc->sst[i].level = job->output_level;
		mc->sst[j++] = mc->sst[i];
	}
	mc->hdr.nsst = j;

	memset(&ia, 0, sizeof(ia));
	ia.is_compaction = true;
	ia.bytes_in = bytes_in;
	ia.bytes_out = bytes_out;
	plan_toast_state(&meta, job, deletes_toast, &ia);
	kvlsm_manifest_plan_log_reserve(&meta, mc, &ia);
	kvlsm_manifest_prepare(rel, mc, &ia);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	kvlsm_manifest_install(rel, sh, mc, &ia);
	sh->gen_epoch++;
	sh->stats.compactions++;
	if (!kvlsm_am_worker)
		sh->stats.foreground_compactions++;
	sh->stats.compaction_bytes_written += bytes_out;
	LWLockRelease(&sh->lock);
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);

	/*
	 * The install goes to disk before the TOAST deletions start, so a
	 * crash before the commit always finds toast_fxid recorded and leaves
	 * the values to the sweep (otherwise whether the walwriter wrote the
	 * install first would decide).  One flush per such compaction.
	 */
	if (deletes_toast)
		XLogFlush(GetXLogInsertRecPtr());
}

/*
 * Does anyone wait for a lock on the relation that conflicts with ours?
 * LockHasWaitersRelation() cannot answer for a fast-path lock (which a
 * RowExclusiveLock usually is), so look at the lock table as pg_locks
 * does, at most twice a second.
 */
static bool
ddl_waits(Relation rel, TimestampTz *last_poll)
{
	TimestampTz now = GetCurrentTimestamp();
	LockData   *ld;
	int			i;
	bool		waits = false;

	if (*last_poll != 0 && !TimestampDifferenceExceeds(*last_poll, now, 500))
		return false;
	*last_poll = now;
	ld = GetLockStatusData();
	for (i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *li = &ld->locks[i];

		if (li->locktag.locktag_type == LOCKTAG_RELATION &&
			li->locktag.locktag_field1 == MyDatabaseId &&
			li->locktag.locktag_field2 == RelationGetRelid(rel) &&
			li->waitLockMode >= ShareLock)
		{
			waits = true;
			break;
		}
	}
	return waits;
}

/*
 * What one compaction carries from batch to batch: the output being
 * written, the garbage-collection filter and its context, and the counts
 * that go to the statistics and the history.
 */
typedef struct MergeState
{
	Relation	rel;
	KvlsmShared *sh;
	KvlsmCompactionJob *job;
	const KvlsmKeyOps *ops;
	KvlsmGcFilter filter;		/* NULL: keep every record */
	KvlsmGcContext gc;
	Output		out;			/* out.b == NULL: no output started */
	bool	   *keep;			/* the filter's verdict on each version of a key */
	int			keepcap;
	uint64		bytes_in;
	uint64		bytes_out;
	uint64		dropped;
	uint64		records_in;
} MergeState;

static void
merge_state_init(MergeState *ms, Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job)
{
	memset(ms, 0, sizeof(*ms));
	ms->rel = rel;
	ms->sh = sh;
	ms->job = job;
	ms->ops = kvlsm_keyops(rel);
	ms->filter = gc_policy ? gc_policy->filter_for(rel) : NULL;
	ms->keepcap = 64;
	ms->keep = palloc(sizeof(bool) * ms->keepcap);
}

/* what the ring of recent compactions (history.h) shows of this one */
static void
history_begin(Relation rel, KvlsmCompactionJob *job, KvlsmCompactionRecord *hist)
{
	int			i;

	memset(hist, 0, sizeof(*hist));
	hist->dbid = MyDatabaseId;
	hist->relid = RelationGetRelid(rel);
	hist->started_at = GetCurrentTimestamp();
	hist->from_level = job->output_level;
	for (i = 0; i < job->ninputs; i++)
		hist->from_level = Min(hist->from_level, (int16) job->inputs[i].level);
	hist->to_level = job->output_level;
	hist->ninputs = job->ninputs;
	hist->bottommost = job->bottommost;
	hist->worker = kvlsm_am_worker;
	hist->freeze = TransactionIdIsValid(job->freeze_limit);
}

/* what the garbage-collection filter is told about this job */
static void
gc_context_init(KvlsmGcContext *gc, Relation rel, KvlsmCompactionJob *job)
{
	memset(gc, 0, sizeof(*gc));
	gc->rel = rel;
	gc->horizon = gc_policy ? gc_policy->horizon(rel) : InvalidTransactionId;
	gc->bottommost = job->bottommost;
	gc->has_indexes = rel->rd_rel->relhasindex;
	gc->freeze_limit = job->freeze_limit;
	/* nothing a named snapshot may see as in progress is frozen */
	if (TransactionIdIsValid(gc->freeze_limit) &&
		TransactionIdPrecedes(gc->horizon, gc->freeze_limit))
		gc->freeze_limit = gc->horizon;
	gc->ttl_horizon = 0;		/* computed by the filter when it meets a TTL */
	gc->oldest_xid = InvalidTransactionId;
	gc->latest_removed = InvalidTransactionId;
	gc->ttl_max_expired = 0;
}

/*
 * Read the next batch of every input, from 'start' on (NULL: from the
 * first key), at most BATCH_KEYS keys of each, and merge the runs into key
 * order.  An input that has more bounds what the later inputs read, and
 * the smallest such last key is the batch's *bound (the caller passes
 * NULL): past it, inputs not read as far yet may hold further versions of
 * a key.  Returns whether an input had more.
 */
static bool
read_batch(MergeState *ms, KvlsmRecordSet *set, const char *start, int startlen,
		   const char **bound, int *boundlen)
{
	KvlsmCompactionJob *job = ms->job;
	const KvlsmKeyOps *ops = ms->ops;
	bool		any_limited = false;
	int			runs[KVLSM_MAX_SST];
	int			i;

	kvlsm_recset_reset(set);
	for (i = 0; i < job->ninputs; i++)
	{
		bool		limited;
		int			before = set->n;

		runs[i] = set->n;
		if (kvlsm_sst_collect(ms->rel, ms->sh, &job->inputs[i], ops,
							  start, startlen, start != NULL,
							  *bound, *boundlen, BATCH_KEYS, NULL, set,
							  &limited) != KVLSM_SST_OK)
			elog(ERROR, "kvlsm: SSTable %llu changed under its compaction",
				 (unsigned long long) job->inputs[i].id);
		if (limited && set->n > before)
		{
			KvlsmRecord *r = &set->recs[set->n - 1];

			if (*bound == NULL || ops->cmp(r->key, r->keylen, *bound, *boundlen, ops->arg) < 0)
			{
				*bound = r->key;
				*boundlen = r->keylen;
			}
			any_limited = true;
		}
	}
	kvlsm_recset_merge_runs(set, runs, job->ninputs, ops);
	return any_limited;
}

/*
 * The n versions of one key, newest first: ask the filter which the output
 * keeps (ms->keep), and count how many that is and what they take on a
 * data page at most.
 */
static void
filter_versions(MergeState *ms, KvlsmRecord *recs, int n,
				uint32 *kept_n, Size *kept_bytes)
{
	int			k;

	if (n > ms->keepcap)
	{
		ms->keepcap = n * 2;
		ms->keep = repalloc(ms->keep, sizeof(bool) * ms->keepcap);
	}
	for (k = 0; k < n; k++)
		ms->keep[k] = true;
	if (ms->filter)
		ms->filter(&ms->gc, recs, n, ms->keep);

	*kept_n = 0;
	*kept_bytes = 0;
	for (k = 0; k < n; k++)
		if (ms->keep[k])
		{
			(*kept_n)++;
			*kept_bytes += ENTRY_BYTES(&recs[k]);
		}
}

/*
 * Add the kept versions of one key to the output, finishing the output
 * first or starting one as needed.  Returns the logical bytes of all n
 * versions, kept or dropped: what the job consumed of its inputs.
 */
static uint64
add_versions(MergeState *ms, KvlsmRecord *recs, int n, uint32 kept_n, Size kept_bytes)
{
	uint64		group_bytes = 0;
	int			k;

	/*
	 * Split outputs only between keys: at the target size, or when this
	 * key's records might not fit the output's reservation.
	 */
	if (ms->out.b != NULL &&
		(ms->out.bytes >= ms->job->target_file_bytes ||
		 !kvlsm_sst_builder_has_room(ms->out.b, kept_n, kept_bytes)))
		finish_output(ms->rel, ms->sh, ms->job, &ms->out, &ms->bytes_out);
	for (k = 0; k < n; k++)
	{
		KvlsmRecord *x = &recs[k];
		uint64		sz = sizeof(KvlsmRecordHeader) + x->keylen + x->vallen;

		group_bytes += sz;
		ms->records_in++;
		if (!ms->keep[k])
		{
			ms->dropped++;
			continue;
		}
		if (ms->out.b == NULL)
			start_output(ms->rel, ms->sh, ms->job, &ms->out, kept_n, kept_bytes);
		kvlsm_sst_builder_add(ms->out.b, x->key, x->keylen, x->seq, x->flags,
							  x->val, x->vallen);
		ms->out.bytes += sz;
	}
	return group_bytes;
}

/*
 * Write a merged batch up to 'bound' (NULL: all of it), key by key.
 * Returns the logical bytes of the records it went through.
 */
static uint64
write_batch(MergeState *ms, KvlsmRecordSet *set, const char *bound, int boundlen)
{
	const KvlsmKeyOps *ops = ms->ops;
	uint64		batch_bytes = 0;
	int			i,
				j;

	for (i = 0; i < set->n; i = j)
	{
		KvlsmRecord *r = &set->recs[i];
		uint64		group_bytes;
		uint32		kept_n;
		Size		kept_bytes;

		if (bound && ops->cmp(r->key, r->keylen, bound, boundlen, ops->arg) > 0)
			break;
		for (j = i + 1; j < set->n; j++)
			if (ops->cmp(set->recs[j].key, set->recs[j].keylen,
						 r->key, r->keylen, ops->arg) != 0)
				break;
		filter_versions(ms, &set->recs[i], j - i, &kept_n, &kept_bytes);
		group_bytes = add_versions(ms, &set->recs[i], j - i, kept_n, kept_bytes);
		batch_bytes += group_bytes;
		ms->job->consumed += group_bytes;
	}
	return batch_bytes;
}

/*
 * DDL waits for the relation: the compaction is given up (its outputs are
 * reclaimed as any unfinished compaction's, manifest.h); count it and add
 * it to the history.
 */
static void
note_abandoned(MergeState *ms, KvlsmCompactionRecord *hist)
{
	LWLockAcquire(&ms->sh->lock, LW_EXCLUSIVE);
	ms->sh->stats.compactions_abandoned++;
	LWLockRelease(&ms->sh->lock);
	hist->ended_at = GetCurrentTimestamp();
	hist->abandoned = true;
	hist->bytes_in = ms->bytes_in;
	hist->records_in = ms->records_in;
	hist->noutputs = ms->job->noutputs;
	kvlsm_history_add(hist);
}

/* an installed compaction: its log line, statistics and history record */
static void
note_finished(MergeState *ms, uint64 wal_before, KvlsmCompactionRecord *hist)
{
	Relation	rel = ms->rel;
	KvlsmShared *sh = ms->sh;
	KvlsmCompactionJob *job = ms->job;

	ereport(DEBUG1,
			(errmsg_internal("kvlsm compaction of \"%s\": %d tables to L%d, %llu bytes read, %llu written in %d tables, %llu records dropped%s",
							 RelationGetRelationName(rel), job->ninputs, job->output_level,
							 (unsigned long long) ms->bytes_in, (unsigned long long) ms->bytes_out,
							 job->noutputs, (unsigned long long) ms->dropped,
							 job->bottommost ? ", bottommost" : "")));
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	sh->stats.compaction_bytes_read += ms->bytes_in;
	sh->stats.gc_records_dropped += ms->dropped;
	sh->stats.ttl_rows_dropped += ms->gc.ttl_rows_dropped;
	sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
	LWLockRelease(&sh->lock);
	hist->ended_at = GetCurrentTimestamp();
	hist->noutputs = job->noutputs;
	hist->bytes_in = ms->bytes_in;
	hist->bytes_out = ms->bytes_out;
	hist->records_in = ms->records_in;
	hist->records_dropped = ms->dropped;
	kvlsm_history_add(hist);
}

/*
 * Merge the inputs.  Returns false if the compaction was abandoned because
 * DDL waits for the relation (a worker's lock would otherwise hold it up
 * for the whole compaction).
 */
static bool
run_job(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job)
{
	MergeState	ms;
	MemoryContext cxt;
	KvlsmRecordSet set;
	char	   *startbuf = palloc(KVLSM_MAX_KEY_SIZE);
	const char *start = NULL;
	int			startlen = 0;
	bool		more;
	uint64		wal_before;
	TimestampTz last_poll = 0;
	KvlsmCompactionRecord hist;

	merge_state_init(&ms, rel, sh, job);
	wal_before = pgWalUsage.wal_bytes;
	history_begin(rel, job, &hist);
	gc_context_init(&ms.gc, rel, job);

	sweep_left_toast(rel, job);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "kvlsm compaction batch",
								ALLOCSET_DEFAULT_SIZES);
	kvlsm_recset_init(&set, cxt);
	do
	{
		const char *bound = NULL;
		int			boundlen = 0;

		CHECK_FOR_INTERRUPTS();
		if (job->may_abandon && kvlsm_am_worker && ddl_waits(rel, &last_poll))
		{
			MemoryContextDelete(cxt);
			note_abandoned(&ms, &hist);
			return false;
		}
		more = read_batch(&ms, &set, start, startlen, &bound, &boundlen);
		ms.bytes_in += write_batch(&ms, &set, bound, boundlen);
		if (more)
		{
			memcpy(startbuf, bound, boundlen);
			start = startbuf;
			startlen = boundlen;
		}
	} while (more);
	finish_output(rel, sh, job, &ms.out, &ms.bytes_out);
	MemoryContextDelete(cxt);

	/* standby queries that could need what went away are cancelled first */
	if (gc_policy)
		gc_policy->dropped(rel, &ms.gc);
	install_result(rel, sh, job, ms.bytes_in, ms.bytes_out, ms.gc.after_install != NULL);
	/* e.g. the TOAST values of expired rows, now that the rows are gone */
	if (ms.gc.after_install)
	{
		ms.gc.after_install(&ms.gc);
		/* the install is durable, these deletions only once we commit */
		kvlsm_crash_point(KVLSM_CP_COMPACTION_TOAST);
	}
	job->oldest_xid = ms.gc.oldest_xid;
	note_finished(&ms, wal_before, &hist);
	pfree(ms.keep);
	pfree(startbuf);
	return true;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ---------------------------------------------------------------------
 */

static void
end_compaction(int code, Datum arg)
{
	KvlsmShared *sh = (KvlsmShared *) DatumGetPointer(arg);

	/* the ring itself is freed with the memory context it lives in */
	kvlsm_sst_read_strategy = NULL;
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	if (sh->compacting_pid == MyProcPid)
		sh->compacting_pid = 0;
	LWLockRelease(&sh->lock);
}

/*
 * Under the flush lock: clear outputs of dead compactions, pick a job with
 * 'pick' and claim the LSM for it.  Returns false when nothing is to be
 * done or another compaction runs.
 */

static bool
claim_job(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job, KvlsmPickFn pick, void *arg)
{
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	KvlsmPickState	ps;
	bool		found = false;
	uint32		i;

	memset(job, 0, sizeof(*job));
	LockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	if (sh->compacting_pid != 0)
	{
		UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
		pfree(mc);
		return false;
	}
	kvlsm_read_metapage(rel, &meta);
	kvlsm_manifest_read(rel, &meta, mc);
	if (kvlsm_manifest_drop_stale(sh, mc))
		install_plain(rel, sh, mc);

	ps.ops = kvlsm_keyops(rel);
	ps.mc = mc;
	ps.bounds = kvlsm_pick_load_bounds(rel, mc);
	ps.chosen = palloc0(sizeof(bool) * Max(mc->hdr.nsst, 1));
	ps.memtable_size = meta.memtable_size;
	if (pick(&ps, job, arg))
	{
		for (i = 0; i < mc->hdr.nsst; i++)
			if (ps.chosen[i])
				job->inputs[job->ninputs++] = mc->sst[i];
		found = job->ninputs > 0;
	}
	if (found)
	{
		uint64		in_bytes = 0;
		uint64		in_pages = 0;
		int			k;

		job->bottommost = !kvlsm_pick_older_data_below(&ps, job->output_level);
		for (k = 0; k < job->ninputs; k++)
		{
			in_bytes += job->inputs[k].nbytes;
			in_pages += job->inputs[k].npages;
		}
		job->in_bytes = in_bytes;
		job->pages_per_byte = (double) in_pages / Max(in_bytes, 1);
		job->target_file_bytes = job->output_level == 0 ? KVLSM_MAX_FILE_BYTES :
			kvlsm_target_file_bytes(meta.memtable_size, job->output_level);

		/*
		 * Outputs are listed next to their inputs until the install, and a
		 * flush leaves only KVLSM_COMPACTION_SLOTS slots free: make the
		 * tables bigger rather than more numerous.
		 */
		job->target_file_bytes = Max(job->target_file_bytes,
									 in_bytes / (KVLSM_COMPACTION_SLOTS - 1) + 1);
		LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
		sh->compacting_pid = MyProcPid;
		LWLockRelease(&sh->lock);
	}
	UnlockPage(rel, KVLSM_METAPAGE_BLKNO, ExclusiveLock);
	pfree(mc);
	return found;
}

static bool
run_claimed(Relation rel, KvlsmShared *sh, KvlsmCompactionJob *job)
{
	bool		ok = false;

	kvlsm_sst_read_strategy = GetAccessStrategy(BAS_BULKREAD);
	PG_ENSURE_ERROR_CLEANUP(end_compaction, PointerGetDatum(sh));
	{
		ok = run_job(rel, sh, job);
	}
	PG_END_ENSURE_ERROR_CLEANUP(end_compaction, PointerGetDatum(sh));
	end_compaction(0, PointerGetDatum(sh));
	return ok;
}

bool
kvlsm_compact_step(Relation rel)
{
	KvlsmShared *sh;
	KvlsmCompactionJob		   *job;
	int			style;
	bool		ok;

	if (RecoveryInProgress())
		return false;
	sh = kvlsm_attach(rel);
	if (!kvlsm_compaction_needed(sh))
		return false;
	job = palloc(sizeof(KvlsmCompactionJob));
	style = sh->compaction_style;
	if (!claim_job(rel, sh, job, kvlsm_pick_by_style, &style))
	{
		pfree(job);
		return false;
	}
	ok = run_claimed(rel, sh, job);
	pfree(job);
	return ok;
}

static bool compact_range(Relation rel, const char *lower, int lowerlen,
						  const char *upper, int upperlen,
						  TransactionId freeze_limit, TransactionId *oldest_xid);

void
kvlsm_compact_range(Relation rel, const char *lower, int lowerlen,
					const char *upper, int upperlen)
{
	TransactionId oldest;

	(void) compact_range(rel, lower, lowerlen, upper, upperlen,
						 InvalidTransactionId, &oldest);
}

/*
 * VACUUM's freezing pass: one compaction of every table (flushed first by
 * the caller).  Records written after that flush belong to transactions
 * that were running or are newer, so their xids are not older than the
 * freeze limit, and the result covers the whole relation.
 */
TransactionId
kvlsm_compact_freeze(Relation rel, TransactionId freeze_limit)
{
	TransactionId oldest = InvalidTransactionId;

	if (!compact_range(rel, NULL, 0, NULL, 0, freeze_limit, &oldest))
		return InvalidTransactionId;	/* empty: nothing holds an xid */
	return oldest;
}

/* returns false when there was nothing to compact */
static bool
compact_range(Relation rel, const char *lower, int lowerlen,
			  const char *upper, int upperlen,
			  TransactionId freeze_limit, TransactionId *oldest_xid)
{
	KvlsmShared *sh;
	KvlsmCompactionJob		   *job = palloc(sizeof(KvlsmCompactionJob));
	KvlsmPickRange	ra;
	const KvlsmKeyOps *ops = kvlsm_keyops(rel);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot compact kvlsm relation \"%s\" during recovery",
						RelationGetRelationName(rel))));
	sh = kvlsm_attach(rel);
	if (lower != NULL && upper != NULL &&
		ops->cmp(lower, lowerlen, upper, upperlen, ops->arg) > 0)
		return false;

	ra.lower = lower;
	ra.lowerlen = lowerlen;
	ra.upper = upper;
	ra.upperlen = upperlen;

	for (;;)
	{
		bool		claimed;

		CHECK_FOR_INTERRUPTS();
		claimed = claim_job(rel, sh, job, kvlsm_pick_range, &ra);
		if (claimed)
			break;
		/* nothing to do, or a worker is compacting: wait for it */
		if (sh->compacting_pid == 0)
		{
			pfree(job);
			return false;
		}
		pg_usleep(10000L);
	}
	job->freeze_limit = freeze_limit;
	job->oldest_xid = InvalidTransactionId;
	(void) run_claimed(rel, sh, job);
	*oldest_xid = job->oldest_xid;
	pfree(job);
	return true;
}
