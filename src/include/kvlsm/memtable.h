/*-------------------------------------------------------------------------
 *
 * memtable.h
 *	  The shared memtable: a fixed arena in shared memory carved into chunks,
 *	  and skip lists of records (key ascending, sequence descending) built in
 *	  those chunks.  Owned by src/engine/memtable.c.
 *
 * Locking: a generation (KvlsmMemGen) is read under its LSM's lock in share
 * mode and changed under it in exclusive mode (see lsm.h for the lock
 * order).  Nodes are never freed one by one: a generation's chunks go back
 * to the arena together when the generation is dropped after its flush, so
 * no reader may keep a node pointer after releasing the LSM lock; scans copy
 * records out and re-seek by (key, sequence).
 *
 * The two per-node flag bytes are written without the exclusive lock:
 * 'logged' by the backend that owns the record (under the share lock), and
 * 'hint' by any reader.  They are separate bytes so that neither write can
 * lose the other.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_MEMTABLE_H
#define KVLSM_MEMTABLE_H

#include "postgres.h"

#include "storage/block.h"

#define KVLSM_SKIP_MAX_HEIGHT	16
#define KVLSM_CHUNK_SIZE		(32 * 1024)

typedef int (*KvlsmKeyCompare) (const char *a, int alen,
								const char *b, int blen, void *arg);

typedef struct KvlsmSkipNode
{
	uint64		seq;
	uint32		vallen;
	uint16		keylen;
	uint8		height;
	uint8		logged;			/* its log copy is in WAL */
	uint8		aborted;		/* its transaction rolled back, never logged */
	uint8		hint;			/* owner-defined status hint */
	uint16		recflags;		/* KvlsmRecordHeader.flags */
	struct KvlsmSkipNode *next[FLEXIBLE_ARRAY_MEMBER];
} KvlsmSkipNode;

#define KvlsmSkipNodeKey(n) \
	((char *) &(n)->next[(n)->height])
#define KvlsmSkipNodeValue(n) \
	(KvlsmSkipNodeKey(n) + (n)->keylen)

typedef struct KvlsmMemGen
{
	uint64		genid;			/* 0: this slot is unused */
	KvlsmSkipNode *head;
	int32		first_chunk;
	int32		cur_chunk;
	uint32		chunk_used;
	uint32		nchunks;
	uint64		bytes;			/* record bytes (keys, values, headers) */
	uint64		entries;
	uint64		unlogged;		/* entries not yet in a log page */
	/* log replay position (catch-up from log pages on a standby) */
	BlockNumber replay_block;	/* last log page applied, or Invalid */
	uint32		replay_nitems;	/* records of it applied */
	uint32		replay_npages;
} KvlsmMemGen;

/* GUC: size of the shared memtable arena (restart) */
extern int	kvlsm_memtable_memory_mb;

extern Size kvlsm_arena_shmem_size(void);
extern void kvlsm_arena_shmem_init(void);
extern uint64 kvlsm_arena_free_bytes(void);
extern uint64 kvlsm_arena_total_bytes(void);

extern bool kvlsm_memgen_init(KvlsmMemGen *gen, uint64 genid);
extern void kvlsm_memgen_release(KvlsmMemGen *gen);
extern KvlsmSkipNode *kvlsm_memgen_insert(KvlsmMemGen *gen,
										  const char *key, int keylen,
										  uint64 seq, uint16 recflags,
										  const char *val, int vallen,
										  KvlsmKeyCompare cmp, void *cmparg);
extern KvlsmSkipNode *kvlsm_memgen_seek(KvlsmMemGen *gen,
										const char *key, int keylen,
										uint64 seq,
										KvlsmKeyCompare cmp, void *cmparg);
extern KvlsmSkipNode *kvlsm_memgen_find(KvlsmMemGen *gen,
										const char *key, int keylen,
										uint64 seq,
										KvlsmKeyCompare cmp, void *cmparg);

static inline KvlsmSkipNode *
kvlsm_memgen_first(KvlsmMemGen *gen)
{
	return gen->head ? gen->head->next[0] : NULL;
}

#endif							/* KVLSM_MEMTABLE_H */
