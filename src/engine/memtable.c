/*-------------------------------------------------------------------------
 *
 * memtable.c
 *	  Shared arena of fixed-size chunks and the skip lists of memtable
 *	  generations.  See memtable.h for the locking rules.
 *
 * The arena is shared by every kvlsm relation of the server.  A generation
 * takes chunks one at a time and bump-allocates nodes in them; when the
 * arena has no free chunk an insert fails and the caller (lsm.c, maintenance.c) flushes to
 * make room.  Shared memory is mapped at the same address in every backend
 * (all are forked from the postmaster), so nodes link with plain pointers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "kvlsm/memtable.h"

/* GUC (registered in _PG_init) */
int			kvlsm_memtable_memory_mb = 128;

typedef struct KvlsmArena
{
	slock_t		mutex;
	int32		nchunks;
	int32		nfree;
	int32		free_head;
	int32		pad;
	char	   *base;			/* chunk i is base + i * KVLSM_CHUNK_SIZE */
} KvlsmArena;

/* each chunk starts with the index of the next chunk of its generation */
typedef struct KvlsmChunkHeader
{
	int32		next;
	int32		pad;
} KvlsmChunkHeader;

#define CHUNK_DATA_START	MAXALIGN(sizeof(KvlsmChunkHeader))

static KvlsmArena *arena = NULL;

static int32
arena_nchunks(void)
{
	return (int32) (((Size) kvlsm_memtable_memory_mb * 1024 * 1024) / KVLSM_CHUNK_SIZE);
}

Size
kvlsm_arena_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(KvlsmArena)),
					add_size(mul_size(arena_nchunks(), KVLSM_CHUNK_SIZE),
							 PG_CACHE_LINE_SIZE));
}

static inline KvlsmChunkHeader *
chunk_ptr(int32 i)
{
	return (KvlsmChunkHeader *) (arena->base + (Size) i * KVLSM_CHUNK_SIZE);
}

void
kvlsm_arena_shmem_init(void)
{
	bool		found;
	int32		i;

	arena = ShmemInitStruct("kvlsm memtable arena", kvlsm_arena_shmem_size(), &found);
	if (found)
		return;
	SpinLockInit(&arena->mutex);
	arena->nchunks = arena_nchunks();
	arena->base = (char *) TYPEALIGN(PG_CACHE_LINE_SIZE,
									 (char *) arena + MAXALIGN(sizeof(KvlsmArena)));
	arena->free_head = -1;
	for (i = arena->nchunks - 1; i >= 0; i--)
	{
		chunk_ptr(i)->next = arena->free_head;
		arena->free_head = i;
	}
	arena->nfree = arena->nchunks;
}

uint64
kvlsm_arena_free_bytes(void)
{
	return (uint64) arena->nfree * KVLSM_CHUNK_SIZE;
}

uint64
kvlsm_arena_total_bytes(void)
{
	return (uint64) arena->nchunks * KVLSM_CHUNK_SIZE;
}

static int32
chunk_alloc(void)
{
	int32		i;

	SpinLockAcquire(&arena->mutex);
	i = arena->free_head;
	if (i >= 0)
	{
		arena->free_head = chunk_ptr(i)->next;
		arena->nfree--;
	}
	SpinLockRelease(&arena->mutex);
	if (i >= 0)
		chunk_ptr(i)->next = -1;
	return i;
}

/* bump-allocate within the generation's current chunk; NULL when full */
static void *
gen_alloc(KvlsmMemGen *gen, Size size)
{
	char	   *p;

	size = MAXALIGN(size);
	Assert(size <= KVLSM_CHUNK_SIZE - CHUNK_DATA_START);
	if (gen->cur_chunk < 0 || gen->chunk_used + size > KVLSM_CHUNK_SIZE)
	{
		int32		c = chunk_alloc();

		if (c < 0)
			return NULL;
		if (gen->cur_chunk >= 0)
			chunk_ptr(gen->cur_chunk)->next = c;
		else
			gen->first_chunk = c;
		gen->cur_chunk = c;
		gen->chunk_used = CHUNK_DATA_START;
		gen->nchunks++;
	}
	p = (char *) chunk_ptr(gen->cur_chunk) + gen->chunk_used;
	gen->chunk_used += size;
	return p;
}

/*
 * Set up an empty generation.  Returns false when the arena has no chunk
 * for its head node.
 */
bool
kvlsm_memgen_init(KvlsmMemGen *gen, uint64 genid)
{
	KvlsmSkipNode *head;

	memset(gen, 0, sizeof(*gen));
	gen->first_chunk = -1;
	gen->cur_chunk = -1;
	gen->replay_block = InvalidBlockNumber;
	head = gen_alloc(gen, offsetof(KvlsmSkipNode, next) +
					 KVLSM_SKIP_MAX_HEIGHT * sizeof(KvlsmSkipNode *));
	if (head == NULL)
	{
		gen->genid = 0;
		return false;
	}
	memset(head, 0, offsetof(KvlsmSkipNode, next) +
		   KVLSM_SKIP_MAX_HEIGHT * sizeof(KvlsmSkipNode *));
	head->height = KVLSM_SKIP_MAX_HEIGHT;
	gen->head = head;
	gen->genid = genid;
	return true;
}

/* give all chunks of a generation back to the arena */
void
kvlsm_memgen_release(KvlsmMemGen *gen)
{
	int32		c = gen->first_chunk;

	if (c >= 0)
	{
		int32		last = c;
		int32		n = 1;

		while (chunk_ptr(last)->next >= 0)
		{
			last = chunk_ptr(last)->next;
			n++;
		}
		SpinLockAcquire(&arena->mutex);
		chunk_ptr(last)->next = arena->free_head;
		arena->free_head = c;
		arena->nfree += n;
		SpinLockRelease(&arena->mutex);
	}
	memset(gen, 0, sizeof(*gen));
	gen->first_chunk = -1;
	gen->cur_chunk = -1;
	gen->replay_block = InvalidBlockNumber;
}

/* (key asc, seq desc) order */
static inline int
node_cmp(KvlsmSkipNode *n, const char *key, int keylen, uint64 seq,
		 KvlsmKeyCompare cmp, void *cmparg)
{
	int			c = cmp(KvlsmSkipNodeKey(n), n->keylen, key, keylen, cmparg);

	if (c != 0)
		return c;
	if (n->seq > seq)
		return -1;
	if (n->seq < seq)
		return 1;
	return 0;
}

static int
random_height(void)
{
	int			h = 1;

	/* branching factor 4, as LevelDB */
	while (h < KVLSM_SKIP_MAX_HEIGHT &&
		   (pg_prng_uint32(&pg_global_prng_state) & 3) == 0)
		h++;
	return h;
}

/*
 * Insert a record.  The caller holds the LSM lock exclusively.  Every
 * comparator call happens before the node is linked, so an error thrown by
 * a comparator leaves the list intact.  Returns NULL when the arena is full.
 */
KvlsmSkipNode *
kvlsm_memgen_insert(KvlsmMemGen *gen, const char *key, int keylen,
					uint64 seq, uint16 recflags, const char *val, int vallen,
					KvlsmKeyCompare cmp, void *cmparg)
{
	KvlsmSkipNode *update[KVLSM_SKIP_MAX_HEIGHT];
	KvlsmSkipNode *x = gen->head;
	KvlsmSkipNode *node;
	int			level;
	int			height;

	for (level = KVLSM_SKIP_MAX_HEIGHT - 1; level >= 0; level--)
	{
		while (x->next[level] != NULL &&
			   node_cmp(x->next[level], key, keylen, seq, cmp, cmparg) < 0)
			x = x->next[level];
		update[level] = x;
	}

	height = random_height();
	node = gen_alloc(gen, offsetof(KvlsmSkipNode, next) +
					 height * sizeof(KvlsmSkipNode *) + keylen + vallen);
	if (node == NULL)
		return NULL;
	node->seq = seq;
	node->vallen = vallen;
	node->keylen = keylen;
	node->height = height;
	node->logged = 0;
	node->aborted = 0;
	node->hint = 0;
	node->recflags = recflags;
	memcpy(KvlsmSkipNodeKey(node), key, keylen);
	if (vallen > 0)
		memcpy(KvlsmSkipNodeValue(node), val, vallen);
	for (level = 0; level < height; level++)
	{
		node->next[level] = update[level]->next[level];
		update[level]->next[level] = node;
	}
	gen->bytes += sizeof(KvlsmSkipNode) + keylen + vallen;
	gen->entries++;
	gen->unlogged++;
	return node;
}

/* first node at or after (key, seq) in list order */
KvlsmSkipNode *
kvlsm_memgen_seek(KvlsmMemGen *gen, const char *key, int keylen, uint64 seq,
				  KvlsmKeyCompare cmp, void *cmparg)
{
	KvlsmSkipNode *x = gen->head;
	int			level;

	if (x == NULL)
		return NULL;
	for (level = KVLSM_SKIP_MAX_HEIGHT - 1; level >= 0; level--)
	{
		while (x->next[level] != NULL &&
			   node_cmp(x->next[level], key, keylen, seq, cmp, cmparg) < 0)
			x = x->next[level];
	}
	return x->next[0];
}

/* the node with exactly (key, seq), or NULL */
KvlsmSkipNode *
kvlsm_memgen_find(KvlsmMemGen *gen, const char *key, int keylen, uint64 seq,
				  KvlsmKeyCompare cmp, void *cmparg)
{
	KvlsmSkipNode *n = kvlsm_memgen_seek(gen, key, keylen, seq, cmp, cmparg);

	if (n != NULL && node_cmp(n, key, keylen, seq, cmp, cmparg) == 0)
		return n;
	return NULL;
}
