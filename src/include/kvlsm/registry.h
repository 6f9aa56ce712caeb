/*-------------------------------------------------------------------------
 *
 * registry.h
 *	  The shared registry of attached LSMs: one KvlsmShared entry per
 *	  (filenode, backend) in a hash table in shared memory, with its
 *	  manifest cache in a DSA area.  Owned by src/engine/registry.c
 *	  (entries, attach, manifest caches) and src/engine/release.c (when the
 *	  entries of dropped relations go).
 *
 * The registry lock protects the hash table.  It is held only to find,
 * add, remove or walk entries; the only lock taken under it is an entry's
 * LSM lock, by kvlsm_release_shared.  kvlsm_foreach_lsm calls its function
 * with the registry lock held in share mode: the function must be quick.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_REGISTRY_H
#define KVLSM_REGISTRY_H

#include "kvlsm/lsm.h"

/* registry.c */
extern int	kvlsm_max_relations;	/* LSMs that may be attached at once */
extern Size kvlsm_lsm_shmem_size(void);
extern void kvlsm_lsm_shmem_init(void);
extern void kvlsm_lsm_request_locks(void);
extern void kvlsm_make_tag(Relation rel, KvlsmLsmTag *tag);
/* the manifest cache of an entry */
extern KvlsmSstDesc *kvlsm_shared_ssts(KvlsmShared *sh);
extern KvlsmSstDesc *kvlsm_copy_ssts(KvlsmShared *sh, int *nsst);
extern dsa_pointer kvlsm_alloc_ssts(uint32 n);
extern void kvlsm_set_ssts(KvlsmShared *sh, dsa_pointer dp,
						   const KvlsmSstDesc *descs, uint32 n);
/* attach; returns the shared entry, loaded and caught up */
extern KvlsmShared *kvlsm_lookup_shared(const KvlsmLsmTag *tag);
extern KvlsmShared *kvlsm_attach(Relation rel);
extern void kvlsm_forget(Relation rel);
extern void kvlsm_foreach_lsm(void (*fn) (KvlsmShared *sh, void *arg), void *arg);
extern int64 kvlsm_attached_count(void);
/* layout inspection (admin) */
extern KvlsmSstDesc *kvlsm_snapshot_state(Relation rel, KvlsmShared *copy);
extern void kvlsm_release_shared(const KvlsmLsmTag *tag);
extern void kvlsm_release_entries(Oid dbid, BackendId backend);

/* release.c */
extern void kvlsm_lsm_init(void);
extern void kvlsm_schedule_release(Relation rel, const RelFileNode *node,
								   bool on_commit);
extern void kvlsm_release_database(Oid dbid);
extern void kvlsm_note_temp_relation(void);

#endif							/* KVLSM_REGISTRY_H */
