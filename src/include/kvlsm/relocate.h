/*-------------------------------------------------------------------------
 *
 * relocate.h
 *	  Moving live SSTables from the end of an LSM's file into free extents
 *	  lower down, so that truncation can give the end back (issue 23).
 *	  Owned by src/engine/relocate.c.
 *
 * A move holds the compaction claim of the LSM (one compaction or move at
 * a time) and the flush lock only to reserve and to install.  Callers:
 * VACUUM (src/table/vacuum.c) and the background workers
 * (src/worker/worker.c, kvlsm_reclaim_space after a compaction job).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_RELOCATE_H
#define KVLSM_RELOCATE_H

#include "postgres.h"

#include "utils/rel.h"

/* GUC: background workers give a free tail back (AccessExclusiveLock, no wait) */
extern bool kvlsm_background_truncate;

/* GUC: VACUUM and the workers move SSTables down and truncate (opt-in for now) */
extern bool kvlsm_space_reclaim;

/* relocate.c */
extern int	kvlsm_relocate_tail(Relation rel);
extern void kvlsm_reclaim_space(Relation rel);
extern void kvlsm_vacuum_reclaim(Relation rel);

#endif							/* KVLSM_RELOCATE_H */
