/*-------------------------------------------------------------------------
 *
 * logwriter.c
 *	  Per-backend pending log buffers and the transaction callbacks that
 *	  write them.  See logwriter.h for the rules.
 *
 * One generic WAL record per row costs several microseconds (computing the
 * delta of a nearly full page) and serialises writers; instead a whole
 * fresh page is written as a full image (cheap to log) whenever a page's
 * worth is pending, and the remainder is appended to the chain's tail page
 * before commit, so an OLTP transaction pays for one small record per
 * relation.  Appends to the tail page and new pages both change the
 * metapage in the same record, which keeps the chain and the metapage's
 * (tail, tail_used) exact for standbys catching up.
 *
 * write_pending() cuts the pending records into pages and writes each with
 * one of write_span (a record larger than a page), append_to_tail (a final
 * remainder that fits the tail page) or write_new_page (a page of the free
 * reserve or a new one): each is one generic WAL record with the metapage,
 * under the LSM lock in share mode, and marks its records logged the moment
 * GenericXLogFinish returns (note_logged).
 *
 * Callers: lsm.c (kvlsm_log_pending_add under the LSM lock,
 * kvlsm_log_write_full_pages at safe points, kvlsm_apply_deferred before
 * reads), the table and index AMs (kvlsm_log_write_all, deferred puts),
 * ddl/options.c (kvlsm_log_write_all_pending before DDL copies pages), and
 * the transaction callbacks that kvlsm_log_init registers from _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relation.h"
#include "access/xact.h"
#include "executor/instrument.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/logwriter.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/manifest.h"
#include "kvlsm/span.h"

typedef struct PendingRef
{
	KvlsmSkipNode *node;		/* valid while gen_epoch is unchanged */
	uint64		epoch;
	uint64		seq;
	int			nestlevel;
	uint32		size;			/* log bytes: header + key + value */
	uint16		keylen;
	char	   *key;
} PendingRef;

typedef struct PendingRel
{
	KvlsmLsmTag tag;			/* hash key */
	Oid			relid;
	uint64		incarnation;
	const KvlsmKeyOps *ops;
	int			nrefs;
	int			maxrefs;
	PendingRef *refs;
	Size		bytes;

	/*
	 * refs [0, nlogged) are in WAL but not yet released: only while
	 * write_pending() runs, or after an error stopped it.  The abort then
	 * releases them as written, never as aborted: replay (crash recovery,
	 * standbys) rebuilds them from their log pages, so the memtable must
	 * keep them too (see abort_pending).
	 */
	int			nlogged;
	int			ndefer;
	int			maxdefer;
	KvlsmDeferredPut *defer;
} PendingRel;

/* what the pending context keeps across transactions (see pending_init) */
#define KVLSM_PENDING_KEEP_SIZE		(256 * 1024)

static HTAB *pending_hash = NULL;
static MemoryContext pending_cxt = NULL;
static int	npending_rels = 0;
static int	ndeferred = 0;		/* deferred puts of all relations */

static void pending_xact_callback(XactEvent event, void *arg);
static void drop_deferred(PendingRel *pr, int level);
static void pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);

void
kvlsm_log_init(void)
{
	RegisterXactCallback(pending_xact_callback, NULL);
	RegisterSubXactCallback(pending_subxact_callback, NULL);
}

static void
pending_init(void)
{
	HASHCTL		ctl;

	if (pending_hash != NULL)
		return;

	/*
	 * The context lives as long as the backend and is only reset at
	 * transaction end.  Its first block (kept by a reset) holds what a
	 * transaction of a few hundred index entries needs: deleting the
	 * context, or resetting one whose blocks are all freed, gave glibc a
	 * free heap top at every commit, which it returned to the kernel and
	 * took back at the next transaction (two brk calls, each a TLB
	 * shootdown), a fifth of a backend's time in random-key inserts into
	 * three kvlsm_idx indexes.
	 */
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext, "kvlsm pending log",
											KVLSM_PENDING_KEEP_SIZE,
											ALLOCSET_DEFAULT_INITSIZE,
											ALLOCSET_DEFAULT_MAXSIZE);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(KvlsmLsmTag);
	ctl.entrysize = sizeof(PendingRel);
	ctl.hcxt = pending_cxt;
	pending_hash = hash_create("kvlsm pending log", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

bool
kvlsm_log_has_pending(void)
{
	return npending_rels > 0;
}

/* this backend's pending state of an LSM, created or reset as needed */
static PendingRel *
pending_rel(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops)
{
	PendingRel *pr;
	bool		found;

	pending_init();
	pr = hash_search(pending_hash, &sh->tag, HASH_ENTER, &found);
	if (!found || pr->incarnation != sh->incarnation)
	{
		if (found)
			ndeferred -= pr->ndefer;
		pr->relid = RelationGetRelid(rel);
		pr->incarnation = sh->incarnation;
		pr->ops = ops;
		pr->nrefs = 0;
		pr->maxrefs = 64;
		pr->refs = MemoryContextAlloc(pending_cxt, sizeof(PendingRef) * pr->maxrefs);
		pr->bytes = 0;
		pr->nlogged = 0;
		pr->ndefer = 0;
		pr->maxdefer = 0;
		pr->defer = NULL;
		if (!found)
			npending_rels++;
	}
	return pr;
}

/*
 * A put whose memtable insert may wait: the record is kept in this
 * backend and enters the memtable (under one LSM lock acquisition for the
 * whole batch) when kvlsm_apply_deferred() runs, which every read of the
 * relation in this backend, every log write before commit and a full batch
 * do first.  Only for records no other backend needs to see before this
 * transaction commits: entries of non-unique indexes (unique checks,
 * VACUUM and index builds of other backends never look for uncommitted
 * entries there).  Returns true when a batch is full.
 */
bool
kvlsm_defer_put(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
				const char *key, int keylen, uint16 flags)
{
	PendingRel *pr = pending_rel(rel, sh, ops);
	KvlsmDeferredPut *d;
	char	   *copy;

	if (pr->ndefer == pr->maxdefer)
	{
		int			newmax = pr->maxdefer ? pr->maxdefer * 2 : KVLSM_DEFER_BATCH;

		pr->defer = pr->defer ?
			repalloc(pr->defer, sizeof(KvlsmDeferredPut) * newmax) :
			MemoryContextAlloc(pending_cxt, sizeof(KvlsmDeferredPut) * newmax);
		pr->maxdefer = newmax;
	}
	/* allocate before the slot counts, so an error leaves no half entry */
	copy = MemoryContextAlloc(pending_cxt, keylen);
	memcpy(copy, key, keylen);
	d = &pr->defer[pr->ndefer];
	d->key = copy;
	d->keylen = keylen;
	d->flags = flags;
	d->applied = false;
	d->nestlevel = GetCurrentTransactionNestLevel();
	pr->ndefer++;
	ndeferred++;
	return pr->ndefer >= KVLSM_DEFER_BATCH;
}

/* drop the entries of the list that are in the memtable already */
static void
trim_applied(PendingRel *pr)
{
	int			j = 0;
	int			i;

	for (i = 0; i < pr->ndefer; i++)
	{
		if (pr->defer[i].applied)
		{
			pfree(pr->defer[i].key);
			ndeferred--;
		}
		else
			pr->defer[j++] = pr->defer[i];
	}
	pr->ndefer = j;
}

/* move this backend's deferred puts of the relation into the memtable */
void
kvlsm_apply_deferred(Relation rel, KvlsmShared *sh)
{
	PendingRel *pr;

	if (ndeferred == 0 || pending_hash == NULL)
		return;
	pr = hash_search(pending_hash, &sh->tag, HASH_FIND, NULL);
	if (pr == NULL || pr->ndefer == 0)
		return;
	if (pr->incarnation != sh->incarnation)
	{
		/* the filenode was replaced in this transaction (TRUNCATE) */
		ndeferred -= pr->ndefer;
		pr->ndefer = 0;
		return;
	}
	/*
	 * Each entry is marked applied as it goes in, so whatever stops the
	 * batch (a full arena reported below, or an error thrown inside) leaves
	 * the rest listed and nothing listed twice: a subtransaction that
	 * catches the error can neither lose nor repeat its parent's puts.
	 */
	trim_applied(pr);
	(void) kvlsm_put_deferred(rel, sh, kvlsm_keyops(rel), pr->defer, pr->ndefer);
	trim_applied(pr);
	if (pr->ndefer > 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm memtable memory is full"),
				 errhint("Increase kvlsm.memtable_memory, or lower memtable_size of busy relations.")));
}

/* called under the LSM lock (exclusive): memory work only */
void
kvlsm_log_pending_add(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
					  KvlsmSkipNode *node, int nestlevel)
{
	PendingRel *pr;
	PendingRef *ref;

	pr = pending_rel(rel, sh, ops);
	if (pr->nrefs == pr->maxrefs)
	{
		pr->maxrefs *= 2;
		pr->refs = repalloc(pr->refs, sizeof(PendingRef) * pr->maxrefs);
	}
	ref = &pr->refs[pr->nrefs++];
	ref->node = node;
	ref->epoch = sh->gen_epoch;
	ref->seq = node->seq;
	ref->nestlevel = nestlevel;
	ref->size = sizeof(KvlsmRecordHeader) + node->keylen + node->vallen;
	ref->keylen = node->keylen;
	ref->key = MemoryContextAlloc(pending_cxt, node->keylen + 1);
	memcpy(ref->key, KvlsmSkipNodeKey(node), node->keylen);
	pr->bytes += ref->size;
}

/* the node of a pending record; the caller holds the LSM lock */
static KvlsmSkipNode *
locate(KvlsmShared *sh, PendingRel *pr, PendingRef *ref)
{
	KvlsmSkipNode *n;

	if (ref->epoch == sh->gen_epoch)
		return ref->node;
	/* a freeze moved unlogged records into the new active generation */
	n = kvlsm_memgen_find(&sh->active, ref->key, ref->keylen, ref->seq,
						  pr->ops->cmp, pr->ops->arg);
	if (n == NULL)
		elog(ERROR, "kvlsm: pending record (seq %llu) vanished from the memtable",
			 (unsigned long long) ref->seq);
	ref->node = n;
	ref->epoch = sh->gen_epoch;
	return n;
}

typedef struct LogPageImage
{
	PGAlignedBlock img;
	int			first;			/* refs [first, last) are on this page */
	int			last;
} LogPageImage;

static void
serialize(KvlsmShared *sh, PendingRel *pr, int from, int to, char *dst)
{
	int			i;

	for (i = from; i < to; i++)
	{
		PendingRef *ref = &pr->refs[i];
		KvlsmSkipNode *n = locate(sh, pr, ref);
		KvlsmRecordHeader rh;

		rh.seq = n->seq;
		rh.vallen = n->vallen;
		rh.keylen = n->keylen;
		rh.flags = n->recflags;
		memcpy(dst, &rh, sizeof(rh));
		memcpy(dst + sizeof(rh), KvlsmSkipNodeKey(n), n->keylen);
		if (n->vallen > 0)
			memcpy(dst + sizeof(rh) + n->keylen, KvlsmSkipNodeValue(n), n->vallen);
		dst += ref->size;
	}
}

/* records [from, to) are in WAL now: a flush may take them */
static void
mark_logged(KvlsmShared *sh, PendingRel *pr, int from, int to)
{
	int			i;

	for (i = from; i < to; i++)
	{
		KvlsmSkipNode *n = locate(sh, pr, &pr->refs[i]);

		n->logged = 1;
	}
}

/*
 * The page holding records [from, to) is in WAL (its GenericXLogFinish
 * returned): account for it at once, before anything else can fail, so
 * that an error raised before the next page leaves the in-memory state
 * exactly what replay will rebuild.  Cannot fail: serialize() located
 * every node under the same hold of the LSM lock.
 */
static void
note_logged(KvlsmShared *sh, PendingRel *pr, int from, int to)
{
	mark_logged(sh, pr, from, to);
	pr->nlogged = to;
}

/*
 * Before each log page after the first one a write_pending() call wrote:
 * where tests inject an error (or a crash) between two pages of one
 * transaction's records, the window in which written records are not yet
 * released.
 */
static void
between_pages(PendingRel *pr)
{
	if (pr->nlogged > 0)
		kvlsm_crash_point_rel(KVLSM_CP_LOG_BETWEEN_PAGES, pr->relid);
}

/*
 * Write pending record 'idx', larger than a page, as a span of fresh pages
 * at the end of the chain (page.h): every piece and the metapage in one
 * generic WAL record, so that no reader, standbys included, sees a part.
 * The pages are new ones at the end of the file, taken under one hold of
 * the extension lock: the free reserve hands out single pages, and spans
 * are rare (rows of STORAGE plain columns beyond a page).  The span's last
 * page is marked full in the metapage, so nothing is appended after the
 * record on it and every span ends a page.  The caller holds the LSM lock.
 */
static void
write_span(Relation rel, KvlsmShared *sh, PendingRel *pr, int idx)
{
	PendingRef *ref = &pr->refs[idx];
	int			npieces = kvlsm_span_npieces(ref->size);
	char	   *rec;
	Buffer		bufs[KVLSM_MAX_SPAN_PAGES];
	Buffer		metabuf;
	GenericXLogState *state;
	Page		mpage;
	KvlsmMetaPageData *meta;
	BlockNumber prev;
	uint64		wal_before;
	int			i;

	if (npieces < 2 || npieces > KVLSM_MAX_SPAN_PAGES)
		elog(ERROR, "kvlsm: log record of %u bytes cannot span %d pages",
			 ref->size, npieces);
	rec = palloc(ref->size);
	serialize(sh, pr, idx, idx + 1, rec);

	if (!RELATION_IS_LOCAL(rel))
		LockRelationForExtension(rel, ExclusiveLock);
	kvlsm_extend_past_listed(rel, sh->listed_end);
	for (i = 0; i < npieces; i++)
	{
		bufs[i] = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
		LockBuffer(bufs[i], BUFFER_LOCK_EXCLUSIVE);
	}
	metabuf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	meta = KvlsmPageGetMeta(BufferGetPage(metabuf));
	if (meta->active.genid != sh->active.genid)
		elog(ERROR, "kvlsm: metapage generation %llu differs from memtable generation %llu",
			 (unsigned long long) meta->active.genid,
			 (unsigned long long) sh->active.genid);

	wal_before = pgWalUsage.wal_bytes;
	state = GenericXLogStart(rel);
	prev = meta->active.tail;
	for (i = 0; i < npieces; i++)
	{
		Page		page = GenericXLogRegisterBuffer(state, bufs[i],
													 GENERIC_XLOG_FULL_IMAGE);
		KvlsmPageOpaque opaque;

		kvlsm_page_init(page, KVLSM_PAGE_LOG, meta->active.genid);
		opaque = KvlsmPageGetOpaque(page);
		opaque->link = prev;
		opaque->nitems = (i == 0) ? 1 : 0;
		kvlsm_span_mark(page, i, npieces);
		kvlsm_span_fill(page, rec, ref->size, (Size) i * KVLSM_PAGE_CAPACITY);
		kvlsm_page_set_crc(page);
		prev = BufferGetBlockNumber(bufs[i]);
	}
	mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	meta = KvlsmPageGetMeta(mpage);
	if (meta->active.head == InvalidBlockNumber)
		meta->active.head = BufferGetBlockNumber(bufs[0]);
	meta->active.tail = prev;
	meta->active.tail_used = BLCKSZ - MAXALIGN(sizeof(KvlsmPageOpaqueData));
	meta->active.npages += npieces;
	meta->log_bytes += (uint64) npieces * BLCKSZ;
	meta->logical_bytes += ref->size;
	kvlsm_page_set_crc(mpage);
	GenericXLogFinish(state);
	note_logged(sh, pr, idx, idx + 1);
	for (i = 0; i < npieces; i++)
		UnlockReleaseBuffer(bufs[i]);
	UnlockReleaseBuffer(metabuf);
	if (!RELATION_IS_LOCAL(rel))
		UnlockRelationForExtension(rel, ExclusiveLock);
	pfree(rec);
	sh->stats.log_pages += npieces;
	sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
}

/*
 * The pending records from 'from' on that fit one page: returns where they
 * end, and their bytes in *used.  end == from: the record at 'from' is
 * larger than a page.
 */
static int
records_for_page(PendingRel *pr, int from, Size *used)
{
	int			i = from;

	*used = 0;
	while (i < pr->nrefs && *used + pr->refs[i].size <= KVLSM_PAGE_CAPACITY)
		*used += pr->refs[i++].size;
	return i;
}

/*
 * Where the active chain ends: its tail page and the bytes used on it,
 * checked against the memtable generation that holds the records.  Returns
 * the metapage pinned, not locked; the page writers below release it.
 */
static Buffer
read_chain_tail(Relation rel, KvlsmShared *sh, BlockNumber *tail, uint32 *tail_used)
{
	Buffer		metabuf = ReadBuffer(rel, KVLSM_METAPAGE_BLKNO);
	KvlsmMetaPageData *meta;

	LockBuffer(metabuf, BUFFER_LOCK_SHARE);
	meta = KvlsmPageGetMeta(BufferGetPage(metabuf));
	*tail = meta->active.tail;
	*tail_used = meta->active.tail_used;
	if (meta->active.genid != sh->active.genid)
		elog(ERROR, "kvlsm: metapage generation %llu differs from memtable generation %llu",
			 (unsigned long long) meta->active.genid,
			 (unsigned long long) sh->active.genid);
	LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);
	return metabuf;
}

/*
 * Append records [from, to), 'used' bytes, to the chain's tail page 'tail',
 * in one generic WAL record with the metapage.  Releases 'metabuf' (pinned,
 * not locked).  Returns false if someone else moved the tail meanwhile:
 * the caller tries again.
 */
static bool
append_to_tail(Relation rel, KvlsmShared *sh, PendingRel *pr, Buffer metabuf,
			   BlockNumber tail, int from, int to, Size used)
{
	Buffer		tbuf = ReadBuffer(rel, tail);
	KvlsmMetaPageData *meta;
	GenericXLogState *state;
	Page		tpage;
	Page		mpage;
	uint64		wal_before;

	LockBuffer(tbuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	meta = KvlsmPageGetMeta(BufferGetPage(metabuf));
	if (meta->active.tail != tail ||
		((PageHeader) BufferGetPage(tbuf))->pd_lower + used >
		((PageHeader) BufferGetPage(tbuf))->pd_upper)
	{
		/* someone else moved the tail; try again */
		LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);
		UnlockReleaseBuffer(tbuf);
		ReleaseBuffer(metabuf);
		return false;
	}
	wal_before = pgWalUsage.wal_bytes;
	state = GenericXLogStart(rel);
	tpage = GenericXLogRegisterBuffer(state, tbuf, 0);
	mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	serialize(sh, pr, from, to,
			  (char *) tpage + ((PageHeader) tpage)->pd_lower);
	((PageHeader) tpage)->pd_lower += used;
	KvlsmPageGetOpaque(tpage)->nitems += to - from;
	meta = KvlsmPageGetMeta(mpage);
	meta->active.tail_used = ((PageHeader) tpage)->pd_lower;
	meta->log_bytes += used;
	meta->logical_bytes += used;
	kvlsm_page_set_crc(tpage);
	kvlsm_page_set_crc(mpage);
	GenericXLogFinish(state);
	note_logged(sh, pr, from, to);
	UnlockReleaseBuffer(tbuf);
	UnlockReleaseBuffer(metabuf);
	sh->stats.log_appends++;
	sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
	return true;
}

/*
 * Write records [from, to), 'used' bytes, on a fresh page linked after the
 * chain's tail: a page of the free reserve, else a new page at the end of
 * the file.  One generic WAL record, the new page as a full image, with
 * the metapage.  Releases 'metabuf' (pinned, not locked).  Returns false
 * if another writer took the reserved page first: the caller tries again.
 */
static bool
write_new_page(Relation rel, KvlsmShared *sh, PendingRel *pr, Buffer metabuf,
			   int from, int to, Size used)
{
	Buffer		nbuf;
	KvlsmMetaPageData *meta;
	GenericXLogState *state;
	Page		npage;
	Page		mpage;
	BlockNumber reserved = InvalidBlockNumber;
	uint64		wal_before;

	/* a page of the free reserve, else a new page at the end */
	LockBuffer(metabuf, BUFFER_LOCK_SHARE);
	meta = KvlsmPageGetMeta(BufferGetPage(metabuf));
	if (meta->log_reserve_npages > 0)
		reserved = meta->log_reserve_start;
	LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);
	if (reserved != InvalidBlockNumber)
	{
		/* pre-extended pages an OS crash lost: see kvlsm_ensure_blocks */
		kvlsm_ensure_blocks(rel, reserved + 1);
		nbuf = ReadBuffer(rel, reserved);
	}
	else
		nbuf = kvlsm_new_page(rel, sh->listed_end);

	LockBuffer(nbuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	meta = KvlsmPageGetMeta(BufferGetPage(metabuf));
	if (reserved != InvalidBlockNumber &&
		(meta->log_reserve_npages == 0 || meta->log_reserve_start != reserved))
	{
		/* another writer took it first */
		LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);
		UnlockReleaseBuffer(nbuf);
		ReleaseBuffer(metabuf);
		return false;
	}
	wal_before = pgWalUsage.wal_bytes;
	state = GenericXLogStart(rel);
	npage = GenericXLogRegisterBuffer(state, nbuf, GENERIC_XLOG_FULL_IMAGE);
	mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	meta = KvlsmPageGetMeta(mpage);
	kvlsm_page_init(npage, KVLSM_PAGE_LOG, meta->active.genid);
	KvlsmPageGetOpaque(npage)->link = meta->active.tail;
	KvlsmPageGetOpaque(npage)->nitems = to - from;
	serialize(sh, pr, from, to, (char *) npage + SizeOfPageHeaderData);
	((PageHeader) npage)->pd_lower = SizeOfPageHeaderData + used;
	if (meta->active.head == InvalidBlockNumber)
		meta->active.head = BufferGetBlockNumber(nbuf);
	meta->active.tail = BufferGetBlockNumber(nbuf);
	meta->active.tail_used = ((PageHeader) npage)->pd_lower;
	meta->active.npages++;
	if (reserved != InvalidBlockNumber)
	{
		meta->log_reserve_start++;
		meta->log_reserve_npages--;
	}
	meta->log_bytes += BLCKSZ;
	meta->logical_bytes += used;
	kvlsm_page_set_crc(npage);
	kvlsm_page_set_crc(mpage);
	GenericXLogFinish(state);
	note_logged(sh, pr, from, to);
	UnlockReleaseBuffer(nbuf);
	UnlockReleaseBuffer(metabuf);
	if (reserved == InvalidBlockNumber)
		kvlsm_new_page_done(rel);	/* linked now: see kvlsm_new_page */
	sh->stats.log_pages++;
	sh->stats.wal_bytes += pgWalUsage.wal_bytes - wal_before;
	return true;
}

/*
 * Write the pending records of 'pr', from the first.  With 'final'
 * everything is written and a remainder that fits the tail page is
 * appended to it; otherwise only whole pages are written.  Returns how
 * many refs were written.
 */
static int
write_pending(Relation rel, KvlsmShared *sh, PendingRel *pr, bool final)
{
	int			written = 0;

	LWLockAcquire(&sh->lock, LW_SHARED);
	if (sh->incarnation != pr->incarnation)
	{
		/* the filenode was replaced (TRUNCATE in this transaction) */
		LWLockRelease(&sh->lock);
		return pr->nrefs;
	}

	while (written < pr->nrefs)
	{
		Size		used;
		int			end;
		Buffer		metabuf;
		BlockNumber tail;
		uint32		tail_used;
		bool		done;

		/* records for one page */
		end = records_for_page(pr, written, &used);
		if (end == written)
		{
			/* a record larger than a page: a span of fresh pages */
			between_pages(pr);
			write_span(rel, sh, pr, written);
			written++;
			continue;
		}
		if (end == pr->nrefs && !final && used < KVLSM_PAGE_CAPACITY - 256)
			break;				/* a partial page stays pending */
		between_pages(pr);

		/* look at the tail: a final remainder may fit there */
		metabuf = read_chain_tail(rel, sh, &tail, &tail_used);
		if (final && end == pr->nrefs && tail != InvalidBlockNumber &&
			tail_used + used <= BLCKSZ - MAXALIGN(sizeof(KvlsmPageOpaqueData)))
			done = append_to_tail(rel, sh, pr, metabuf, tail, written, end, used);
		else
			done = write_new_page(rel, sh, pr, metabuf, written, end, used);
		if (!done)
			continue;			/* another writer came first: try again */
		written = end;
	}
	LWLockRelease(&sh->lock);
	return written;
}

static void
drop_written(PendingRel *pr, int written)
{
	int			i;

	for (i = 0; i < written; i++)
	{
		pr->bytes -= pr->refs[i].size;
		pfree(pr->refs[i].key);
	}
	memmove(pr->refs, pr->refs + written, sizeof(PendingRef) * (pr->nrefs - written));
	pr->nrefs -= written;
	pr->nlogged = Max(pr->nlogged - written, 0);
}

void
kvlsm_log_write_full_pages(Relation rel, KvlsmShared *sh)
{
	PendingRel *pr;

	if (pending_hash == NULL)
		return;
	pr = hash_search(pending_hash, &sh->tag, HASH_FIND, NULL);
	if (pr == NULL || pr->bytes < KVLSM_PAGE_CAPACITY - 256)
		return;
	drop_written(pr, write_pending(rel, sh, pr, false));
}

void
kvlsm_log_write_all(Relation rel, KvlsmShared *sh)
{
	PendingRel *pr;

	if (pending_hash == NULL)
		return;
	pr = hash_search(pending_hash, &sh->tag, HASH_FIND, NULL);
	if (pr == NULL || pr->nrefs == 0)
		return;
	drop_written(pr, write_pending(rel, sh, pr, true));
}

/*
 * Put every deferred record this backend holds, for any relation, into the
 * memtables, and with 'write_log' also write every pending log record.
 */
static void
put_all_pending(bool write_log)
{
	HASH_SEQ_STATUS status;
	PendingRel *pr;

	if (pending_hash == NULL || (write_log ? npending_rels == 0 : ndeferred == 0))
		return;
	hash_seq_init(&status, pending_hash);
	while ((pr = hash_seq_search(&status)) != NULL)
	{
		Relation	rel;
		KvlsmShared *sh;

		if (pr->ndefer == 0 && (!write_log || pr->nrefs == 0))
			continue;

		/*
		 * The lock a writer takes (already held when this transaction wrote
		 * through the executor, so then nothing is acquired): records are
		 * never put into a relation this backend does not hold locked.
		 */
		rel = try_relation_open(pr->relid, RowExclusiveLock);
		if (rel == NULL || !RelFileNodeEquals(rel->rd_node, pr->tag.node))
		{
			/* dropped or given a new filenode: the old storage goes away */
			if (write_log)
				drop_written(pr, pr->nrefs);
			drop_deferred(pr, 0);
			if (rel != NULL)
				relation_close(rel, NoLock);
			continue;
		}
		sh = kvlsm_lookup_shared(&pr->tag);
		if (sh == NULL && write_log)
			elog(ERROR, "kvlsm: shared state of relation \"%s\" disappeared",
				 RelationGetRelationName(rel));
		if (sh == NULL)
			drop_deferred(pr, 0);
		else
		{
			/* the hash is being scanned: this adds no entry, pr exists */
			kvlsm_apply_deferred(rel, sh);
			if (write_log)
				drop_written(pr, write_pending(rel, sh, pr, true));
		}
		relation_close(rel, NoLock);
	}
}

/*
 * Put every deferred record of this backend into the memtables, for every
 * relation: before a parallel query, whose workers read the memtables but
 * not this backend's deferred puts.
 */
void
kvlsm_apply_all_deferred(void)
{
	put_all_pending(false);
}

/*
 * Put every record this backend holds for any relation (deferred index
 * entries, log records not yet written) into the memtables and onto the log
 * pages: at pre-commit, and before DDL that copies an LSM's pages.
 */
void
kvlsm_log_write_all_pending(void)
{
	put_all_pending(true);
}

/* forget deferred puts of nest level >= 'level' (they never went in) */
static void
drop_deferred(PendingRel *pr, int level)
{
	int			j = 0;
	int			i;

	for (i = 0; i < pr->ndefer; i++)
	{
		if (pr->defer[i].nestlevel >= level)
		{
			pfree(pr->defer[i].key);
			ndeferred--;
		}
		else
			pr->defer[j++] = pr->defer[i];
	}
	pr->ndefer = j;
}

/*
 * Mark the pending records of nest level >= 'level' aborted and forget
 * them.  Runs in (sub)transaction abort: no relation can be opened, so the
 * shared entry is found by tag.
 */
static void
abort_pending(int level)
{
	HASH_SEQ_STATUS status;
	PendingRel *pr;

	if (pending_hash == NULL || npending_rels == 0)
		return;
	hash_seq_init(&status, pending_hash);
	while ((pr = hash_seq_search(&status)) != NULL)
	{
		KvlsmShared *sh;
		int			first;
		int			i;

		drop_deferred(pr, level);

		/*
		 * Records whose page reached WAL before an error stopped the writer
		 * are written, whatever their level: replay rebuilds them from the
		 * log, so they stay in the memtable as any logged record of an
		 * aborted transaction does (a row's xid is aborted; an index entry
		 * is dead and VACUUM removes it through its table's dead TIDs, as
		 * for btree).  Marking them aborted here would hide them from that
		 * VACUUM on this server only, and they would come back after a
		 * crash or on a standby.
		 */
		if (pr->nlogged > 0)
			drop_written(pr, pr->nlogged);
		for (first = pr->nrefs; first > 0 && pr->refs[first - 1].nestlevel >= level; first--)
			;
		if (first == pr->nrefs)
			continue;
		sh = kvlsm_lookup_shared(&pr->tag);
		if (sh != NULL)
		{
			LWLockAcquire(&sh->lock, LW_SHARED);
			if (sh->incarnation == pr->incarnation)
			{
				for (i = first; i < pr->nrefs; i++)
				{
					PendingRef *ref = &pr->refs[i];
					KvlsmSkipNode *n = ref->node;

					if (ref->epoch != sh->gen_epoch)
						n = kvlsm_memgen_find(&sh->active, ref->key, ref->keylen,
											  ref->seq, pr->ops->cmp, pr->ops->arg);
					if (n != NULL)
						kvlsm_mark_aborted_node(n);
				}
			}
			LWLockRelease(&sh->lock);
		}
		for (i = first; i < pr->nrefs; i++)
		{
			pr->bytes -= pr->refs[i].size;
			pfree(pr->refs[i].key);
		}
		pr->nrefs = first;
	}
}

static void
reset_pending(void)
{
	/* the hash lives in the context: pending_init() makes a new one */
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	pending_hash = NULL;
	npending_rels = 0;
	ndeferred = 0;
}

/* the committing transaction wrote kvlsm log records (for crash points) */
static bool committing_with_log = false;

static void
pending_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			committing_with_log = npending_rels > 0;
			kvlsm_log_write_all_pending();
			if (committing_with_log)
				kvlsm_crash_point(KVLSM_CP_LOG_BEFORE_COMMIT);
			break;
		case XACT_EVENT_COMMIT:
			/* the commit record is flushed (synchronous_commit = on) */
			if (committing_with_log)
				kvlsm_crash_point(KVLSM_CP_AFTER_COMMIT);
			committing_with_log = false;
			reset_pending();
			break;
		case XACT_EVENT_PREPARE:
			reset_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			committing_with_log = false;
			abort_pending(0);
			reset_pending();
			break;
		default:
			break;
	}
}

static void
pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_PRE_COMMIT_SUB:
			/* write while this subtransaction's xid is current */
			kvlsm_log_write_all_pending();
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			abort_pending(GetCurrentTransactionNestLevel());
			break;
		default:
			break;
	}
}
