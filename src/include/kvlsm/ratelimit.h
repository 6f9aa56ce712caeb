/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *	  The compaction rate limiter (kvlsm.compaction_rate_limit): a token
 *	  bucket in shared memory that every flush and compaction pays for the
 *	  pages it writes.  Owned by src/engine/ratelimit.c.
 *
 * Compactions wait when the bucket is in debt; flushes never wait, they
 * only add to the debt, so they are served first.  With no scheduler
 * registered (scheduler.h) nothing is rate limited.
 *
 * Callers: sst_writer.c charges the pages of SSTable builders (as they are
 * made and as they are written); the shared memory is sized and set up
 * through kvlsm_workers_shmem_size() / kvlsm_workers_shmem_init()
 * (src/worker/worker.c); the GUC is registered in _PG_init (src/kvlsm.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_RATELIMIT_H
#define KVLSM_RATELIMIT_H

#include "postgres.h"

/* GUC: kB per second all compactions together may write, 0 = no limit */
extern int	kvlsm_compaction_rate_limit_kb;

/* ratelimit.c */
extern Size kvlsm_ratelimit_shmem_size(void);
extern void kvlsm_ratelimit_shmem_init(void);
extern void kvlsm_charge_write(uint64 bytes, bool is_flush);

#endif							/* KVLSM_RATELIMIT_H */
