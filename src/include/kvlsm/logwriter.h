/*-------------------------------------------------------------------------
 *
 * logwriter.h
 *	  The LSM's own write-ahead log: per-backend pending buffers of records
 *	  that are already in the shared memtable, written to log pages a full
 *	  page at a time and, for the remainder, before commit.  Owned by
 *	  src/engine/logwriter.c.
 *
 * Rules this module keeps (DESIGN.md section 3):
 * - a record is marked 'logged' only after the generic WAL record holding
 *   its log page is inserted; flush writes only logged records (WAL before
 *   flush), so no xid reaches an SSTable without a WAL record carrying it;
 * - pending records are written at SUBXACT_EVENT_PRE_COMMIT_SUB while the
 *   subtransaction's xid is current, and at PRE_COMMIT / PRE_PREPARE before
 *   the commit record;
 * - records of aborted (sub)transactions are marked aborted so that a
 *   freeze drops them instead of carrying them into the next generation;
 * - deferred puts (kvlsm_defer_put: non-unique index entries) enter the
 *   memtable before any read of the relation by this backend and before
 *   the log is written at commit; an aborted (sub)transaction's deferred
 *   puts are forgotten;
 * - log writes hold the LSM lock in share mode, which excludes a freeze, so
 *   the chain written to is always the one of the generation that holds
 *   the records.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_LOGWRITER_H
#define KVLSM_LOGWRITER_H

#include "kvlsm/lsm.h"

/* a put kept in this backend until kvlsm_apply_deferred() */
typedef struct KvlsmDeferredPut
{
	char	   *key;
	int			keylen;
	uint16		flags;
	bool		applied;		/* in the memtable already (an error struck
								 * before the list was trimmed) */
	int			nestlevel;		/* of the (sub)transaction that made it */
} KvlsmDeferredPut;

/* deferred puts of one relation go in together once this many wait */
#define KVLSM_DEFER_BATCH	256

/* logwriter.c */
extern void kvlsm_log_init(void);
extern void kvlsm_log_pending_add(Relation rel, KvlsmShared *sh,
								  const KvlsmKeyOps *ops, KvlsmSkipNode *node,
								  int nestlevel);
extern bool kvlsm_defer_put(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
							const char *key, int keylen, uint16 flags);
extern void kvlsm_apply_deferred(Relation rel, KvlsmShared *sh);
extern void kvlsm_apply_all_deferred(void);
extern void kvlsm_log_write_full_pages(Relation rel, KvlsmShared *sh);
extern void kvlsm_log_write_all(Relation rel, KvlsmShared *sh);
extern bool kvlsm_log_has_pending(void);
extern void kvlsm_log_write_all_pending(void);

#endif							/* KVLSM_LOGWRITER_H */
