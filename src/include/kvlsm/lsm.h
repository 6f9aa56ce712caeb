/*-------------------------------------------------------------------------
 *
 * lsm.h
 *	  One LSM tree stored in one relation: the shared registry of attached
 *	  LSMs, record writes, reads that merge memtables and SSTables, flush
 *	  and the manifest.  Owned by src/engine/lsm.c; the log writer
 *	  (logwriter.c) and SSTables (sstable.c) are its parts.
 *
 * The engine knows keys only as bytes ordered by a comparator and values as
 * bytes; the table and index AMs give them meaning.
 *
 * Lock order (take left before right, never the reverse):
 *	  flush lock (heavyweight page lock on the metapage)
 *	  -> row stripe LWLock (table layer)
 *	  -> LSM LWLock (KvlsmShared.lock)
 *	  -> buffer content locks, ascending block number, metapage last.
 * A backend holds at most one kvlsm buffer content lock outside a generic
 * WAL section, and takes no lock while holding one.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_LSM_H
#define KVLSM_LSM_H

#include "postgres.h"

#include "storage/lwlock.h"
#include "storage/relfilenode.h"
#include "storage/spin.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "kvlsm/memtable.h"
#include "kvlsm/page.h"

typedef struct KvlsmLsmTag
{
	RelFileNode node;
	BackendId	backend;		/* temp relations: owning backend */
} KvlsmLsmTag;

typedef struct KvlsmStats
{
	uint64		puts;
	uint64		point_lookups;
	uint64		sst_probes;
	uint64		bloom_checks;
	uint64		bloom_negatives;	/* lookups the filter saved */
	uint64		bloom_false_positives;
	uint64		log_pages;
	uint64		log_appends;
	uint64		flushes;
	uint64		compactions;
	uint64		foreground_flushes;	/* run by a backend, not a worker */
	uint64		foreground_compactions;
	uint64		compaction_bytes_read;
	uint64		compaction_bytes_written;
	uint64		gc_records_dropped;
	uint64		compactions_abandoned;
	uint64		stalls;			/* writers blocked by back-pressure */
	uint64		slowdowns;		/* writers delayed by back-pressure */
	uint64		stall_usecs;
	uint64		pages_reclaimed;	/* leaked pages found by the sweep */
} KvlsmStats;

typedef struct KvlsmShared
{
	KvlsmLsmTag tag;			/* hash key */
	uint64		incarnation;	/* of the filenode this entry caches; 0 none */
	LWLock		lock;
	bool		loaded;
	bool		authoritative;	/* memtable is ahead of the log (primary) */
	bool		flush_requested;
	uint64		gen_epoch;		/* bumped by every freeze and install */
	KvlsmMemGen active;
	KvlsmMemGen frozen;
	int64		memtable_size;	/* flush trigger, copied from the metapage */
	int32		compression;
	int32		compaction_style;	/* KVLSM_COMPACTION_*, from the metapage */
	int64		ttl_usecs;		/* option ttl, from the metapage; 0 = none */
	TimestampTz active_since;	/* first record of the active generation */
	int			compacting_pid; /* a compaction of this LSM runs there */
	bool		job_queued;		/* a worker job is queued (worker.c) */
	bool		swept;			/* leaked pages were swept since startup */
	/* allocators, protected by mutex */
	slock_t		mutex;
	uint64		next_rowid;
	uint64		rowid_limit;
	uint64		next_seq;
	uint64		seq_limit;
	/* manifest cache */
	uint64		manifest_version;
	uint32		nsst;
	uint32		nl0;			/* level-0 tables among sst[] (write stalls) */
	KvlsmSstDesc sst[KVLSM_MAX_SST];
	KvlsmStats	stats;
} KvlsmShared;

/* a record copied out of the engine into backend memory */
typedef struct KvlsmRecord
{
	const char *key;
	const char *val;
	uint64		seq;
	uint32		vallen;
	uint16		keylen;
	uint16		flags;
	uint8		hint;
	bool		in_memtable;
} KvlsmRecord;

typedef struct KvlsmRecordSet
{
	int			n;
	int			cap;
	KvlsmRecord *recs;			/* kept across resets */
	MemoryContext cxt;			/* owner of recs */
	MemoryContext data_cxt;		/* record bytes; reset by kvlsm_recset_reset */
	char	   *block;			/* current block for record bytes */
	Size		block_used;
	Size		block_size;
} KvlsmRecordSet;

/* how a caller describes its keys */
typedef struct KvlsmKeyOps
{
	KvlsmKeyCompare cmp;
	void	   *arg;
} KvlsmKeyOps;

extern KvlsmKeyOps kvlsm_bytewise_keyops;

/* the layer above says how a relation's keys are ordered */
typedef const KvlsmKeyOps *(*KvlsmKeyOpsProvider) (Relation rel);
extern void kvlsm_set_keyops_provider(KvlsmKeyOpsProvider provider);
extern const KvlsmKeyOps *kvlsm_keyops(Relation rel);

/* shared memory */
extern Size kvlsm_lsm_shmem_size(void);
extern void kvlsm_lsm_shmem_init(void);
extern void kvlsm_lsm_request_locks(void);

/* attach; returns the shared entry, loaded and caught up */
extern KvlsmShared *kvlsm_attach(Relation rel);
extern void kvlsm_forget(Relation rel);
extern void kvlsm_lsm_init(void);
extern void kvlsm_schedule_release(Relation rel, const RelFileNode *node,
								   bool on_commit);
extern void kvlsm_release_shared(const KvlsmLsmTag *tag);
extern void kvlsm_note_temp_relation(void);
extern int64 kvlsm_attached_count(void);
extern KvlsmShared *kvlsm_lookup_shared(const KvlsmLsmTag *tag);

/* allocation of row ids (table AM) */
extern uint64 kvlsm_alloc_rowids(Relation rel, KvlsmShared *sh, uint64 n);

/* writes */
extern uint64 kvlsm_put(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
						const char *key, int keylen, uint16 flags,
						const char *val, int vallen);
extern void kvlsm_mark_aborted_node(KvlsmSkipNode *node);
extern void kvlsm_maybe_flush(Relation rel, KvlsmShared *sh);
extern void kvlsm_foreach_lsm(void (*fn) (KvlsmShared *sh, void *arg), void *arg);
extern void kvlsm_flush(Relation rel, bool force);
extern void kvlsm_try_freeze(Relation rel, KvlsmShared *sh);
extern void kvlsm_log_recovery_conflict(Relation rel, TransactionId latest_removed);

/* reads */
extern void kvlsm_recset_init(KvlsmRecordSet *set, MemoryContext cxt);
extern void kvlsm_recset_reset(KvlsmRecordSet *set);
extern void kvlsm_recset_add(KvlsmRecordSet *set, const char *key, int keylen,
							 uint64 seq, uint16 flags, const char *val,
							 int vallen, uint8 hint, bool in_memtable);
extern bool kvlsm_collect(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
						  const char *start, int startlen, bool start_exclusive,
						  const char *end, int endlen,
						  int maxkeys, bool point, KvlsmRecordSet *out);
extern void kvlsm_memtable_range(KvlsmShared *sh, const KvlsmKeyOps *ops,
								 const char *start, int startlen,
								 const char *end, int endlen,
								 KvlsmRecordSet *active_out,
								 KvlsmRecordSet *frozen_out);
extern uint64 kvlsm_version_epoch(KvlsmShared *sh);
extern bool kvlsm_memtable_records(KvlsmShared *sh, const KvlsmKeyOps *ops,
								   const char *key, int keylen,
								   KvlsmRecordSet *out);
extern void kvlsm_set_hint(KvlsmShared *sh, const KvlsmKeyOps *ops,
						   const char *key, int keylen, uint64 seq, uint8 hint);

/* options kept in the metapage */
extern void kvlsm_store_options(Relation rel, int32 compression,
								int64 memtable_size, int32 compaction_style);
extern void kvlsm_store_ttl(Relation rel, int64 ttl_usecs);

/* layout inspection (admin) */
extern void kvlsm_snapshot_state(Relation rel, KvlsmShared *copy);
extern void kvlsm_reload_manifest(Relation rel);

#endif							/* KVLSM_LSM_H */
