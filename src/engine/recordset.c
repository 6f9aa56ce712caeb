/*-------------------------------------------------------------------------
 *
 * recordset.c
 *	  KvlsmRecordSet: records copied out of the engine into backend memory
 *	  (memtable nodes and SSTable entries), and their order, key ascending
 *	  and sequence number descending, made by merging sorted runs.
 *
 * A set lives in the memory context its owner gives it; record bytes are
 * carved from blocks of a child context, forgotten together by a reset.
 * No shared state, no locks, no WAL.  Filled by merged reads (read.c) and
 * SSTable reads (sst_reader.c); merged by reads and compaction
 * (compaction.c); read by the table and index AMs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "kvlsm/lsm.h"

void
kvlsm_recset_init(KvlsmRecordSet *set, MemoryContext cxt)
{
	set->n = 0;
	set->cap = 0;
	set->recs = NULL;
	set->cxt = cxt;
	set->data_cxt = AllocSetContextCreate(cxt, "kvlsm records",
										  ALLOCSET_DEFAULT_SIZES);
	set->block = NULL;
	set->block_used = 0;
	set->block_size = 0;
	set->next_block_size = 0;
}

/* forget the records; the array and the first data block are kept */
void
kvlsm_recset_reset(KvlsmRecordSet *set)
{
	set->n = 0;
	if (set->block_size > 0 && set->block != NULL &&
		MemoryContextMemAllocated(set->data_cxt, false) <= set->block_size + 8192)
	{
		set->block_used = 0;
		return;
	}
	MemoryContextReset(set->data_cxt);
	set->block = NULL;
	set->block_used = 0;
	set->block_size = 0;
}

/*
 * Record bytes are carved from blocks that start small and double up to
 * RECSET_BLOCK_SIZE.  A point lookup (one row id, a few versions) must not
 * pay for a scan-sized block: a 256 kB malloc and free per lookup made
 * glibc grow and trim the heap on every fetch (brk calls, page faults and
 * TLB shootdowns were several percent of a TPC-B profile).  Scans that reset
 * their set per batch keep the size they grew to.
 */
#define RECSET_FIRST_BLOCK_SIZE 2048
#define RECSET_BLOCK_SIZE (256 * 1024)
#define RECSET_FIRST_CAP 16

void
kvlsm_recset_add(KvlsmRecordSet *set, const char *key, int keylen, uint64 seq,
				 uint16 flags, const char *val, int vallen, uint8 hint,
				 bool in_memtable)
{
	KvlsmRecord *r;
	char	   *data;
	Size		need = MAXALIGN(keylen + vallen + 1);

	if (set->n == set->cap)
	{
		int			newcap = set->cap ? set->cap * 2 : RECSET_FIRST_CAP;

		if (set->recs == NULL)
			set->recs = MemoryContextAlloc(set->cxt, sizeof(KvlsmRecord) * newcap);
		else
			set->recs = repalloc(set->recs, sizeof(KvlsmRecord) * newcap);
		set->cap = newcap;
	}
	if (need > RECSET_BLOCK_SIZE / 4)
		data = MemoryContextAlloc(set->data_cxt, need);
	else
	{
		if (set->block == NULL || set->block_used + need > set->block_size)
		{
			/* a new block; the old one stays allocated until the reset */
			Size		size = Max(set->next_block_size, RECSET_FIRST_BLOCK_SIZE);

			while (size < need)
				size *= 2;
			set->block = MemoryContextAlloc(set->data_cxt, size);
			set->block_size = size;
			set->block_used = 0;
			set->next_block_size = Min(size * 2, RECSET_BLOCK_SIZE);
		}
		data = set->block + set->block_used;
		set->block_used += need;
	}
	memcpy(data, key, keylen);
	if (vallen > 0)
		memcpy(data + keylen, val, vallen);
	r = &set->recs[set->n++];
	r->key = data;
	r->keylen = keylen;
	r->val = data + keylen;
	r->vallen = vallen;
	r->seq = seq;
	r->flags = flags;
	r->hint = hint;
	r->in_memtable = in_memtable;
}

int
kvlsm_record_cmp(const void *a, const void *b, void *arg)
{
	const KvlsmRecord *ra = a;
	const KvlsmRecord *rb = b;
	const KvlsmKeyOps *ops = ((KvlsmSortArg *) arg)->ops;
	int			c = ops->cmp(ra->key, ra->keylen, rb->key, rb->keylen, ops->arg);

	if (c != 0)
		return c;
	if (ra->seq > rb->seq)
		return -1;
	if (ra->seq < rb->seq)
		return 1;
	return 0;
}

/*
 * Sort a record set made of sorted runs (a memtable generation, an
 * SSTable: each already in (key, seq desc) order) by merging them: a k-way
 * merge compares about n log k times where a sort would n log n, and
 * comparators (an index's btree support functions) dominate compaction.
 * runs[i] is where run i starts; run i ends where run i + 1 starts, the
 * last one at set->n.
 */
void
kvlsm_recset_merge_runs(KvlsmRecordSet *set, const int *runs, int nruns,
						const KvlsmKeyOps *ops)
{
	KvlsmSortArg sarg;
	int		   *heap;			/* run numbers, a binary min-heap on their heads */
	int		   *pos;
	int		   *end;
	int			nheap = 0;
	KvlsmRecord *out;
	int			nout = 0;
	int			i;

	if (set->n <= 1)
		return;
	sarg.ops = ops;
	if (nruns <= 1)
		return;
	heap = palloc(sizeof(int) * nruns);
	pos = palloc(sizeof(int) * nruns);
	end = palloc(sizeof(int) * nruns);
	for (i = 0; i < nruns; i++)
	{
		pos[i] = runs[i];
		end[i] = (i + 1 < nruns) ? runs[i + 1] : set->n;
	}
#define HEAD(r) (&set->recs[pos[r]])
#define LESS(x, y) (kvlsm_record_cmp(HEAD(x), HEAD(y), &sarg) < 0)
	for (i = 0; i < nruns; i++)
	{
		int			c;

		if (pos[i] >= end[i])
			continue;
		/* sift up */
		c = nheap++;
		heap[c] = i;
		while (c > 0 && LESS(heap[c], heap[(c - 1) / 2]))
		{
			int			t = heap[c];

			heap[c] = heap[(c - 1) / 2];
			heap[(c - 1) / 2] = t;
			c = (c - 1) / 2;
		}
	}
	out = MemoryContextAlloc(set->cxt, sizeof(KvlsmRecord) * Max(set->cap, 1));
	while (nheap > 0)
	{
		int			r = heap[0];
		int			c = 0;

		out[nout++] = *HEAD(r);
		if (++pos[r] >= end[r])
			heap[0] = heap[--nheap];
		/* sift down */
		for (;;)
		{
			int			l = 2 * c + 1;
			int			m = c;
			int			t;

			if (l < nheap && LESS(heap[l], heap[m]))
				m = l;
			if (l + 1 < nheap && LESS(heap[l + 1], heap[m]))
				m = l + 1;
			if (m == c)
				break;
			t = heap[c];
			heap[c] = heap[m];
			heap[m] = t;
			c = m;
		}
	}
#undef HEAD
#undef LESS
	Assert(nout == set->n);
	pfree(set->recs);
	set->recs = out;
	pfree(heap);
	pfree(pos);
	pfree(end);
}
