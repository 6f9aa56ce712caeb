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

/* kvlsm.background_truncate: may truncation run without a user's VACUUM? */
typedef enum KvlsmBackgroundTruncate
{
	KVLSM_BGTRUNC_OFF,			/* only a VACUUM run by hand truncates */
	KVLSM_BGTRUNC_AUTO,			/* not while a hot standby sends feedback */
	KVLSM_BGTRUNC_ON			/* workers and autovacuum, whenever worth it */
} KvlsmBackgroundTruncate;

/* GUC: workers and autovacuum give a free tail back (AccessExclusiveLock, no wait) */
extern int	kvlsm_background_truncate;

/* GUC: VACUUM and the workers move SSTables down and truncate */
extern bool kvlsm_space_reclaim;

/* relocate.c */
extern int	kvlsm_relocate_tail(Relation rel);
extern void kvlsm_reclaim_space(Relation rel);
extern void kvlsm_vacuum_reclaim(Relation rel);
extern bool kvlsm_vacuum_truncate_option(Relation rel);
extern bool kvlsm_unasked_truncate_allowed(void);

#endif							/* KVLSM_RELOCATE_H */
