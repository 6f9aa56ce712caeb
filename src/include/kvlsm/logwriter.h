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
 * - log writes hold the LSM lock in share mode, which excludes a freeze, so
 *   the chain written to is always the one of the generation that holds
 *   the records.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_LOGWRITER_H
#define KVLSM_LOGWRITER_H

#include "kvlsm/lsm.h"

extern void kvlsm_log_init(void);
extern void kvlsm_log_pending_add(Relation rel, KvlsmShared *sh,
								  const KvlsmKeyOps *ops, KvlsmSkipNode *node);
extern void kvlsm_log_write_full_pages(Relation rel, KvlsmShared *sh);
extern void kvlsm_log_write_all(Relation rel, KvlsmShared *sh);
extern bool kvlsm_log_has_pending(void);

/* lsm.c helpers used by the log writer */
extern Buffer kvlsm_new_page(Relation rel);
extern void kvlsm_new_page_done(Relation rel);

#endif							/* KVLSM_LOGWRITER_H */
