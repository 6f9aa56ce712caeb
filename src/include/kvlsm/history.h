/*-------------------------------------------------------------------------
 *
 * history.h
 *	  The recent compactions of the whole server: a ring in shared memory
 *	  that compactions append to and kvlsm_compactions reads.  Owned by
 *	  src/engine/history.c.
 *
 * It keeps the last KVLSM_HISTORY_SIZE compactions of every database, is
 * not persisted (the persistent totals are in each metapage), and is
 * empty after a restart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_HISTORY_H
#define KVLSM_HISTORY_H

#include "postgres.h"

#include "utils/timestamp.h"

#define KVLSM_HISTORY_SIZE 512

typedef struct KvlsmCompactionRecord
{
	Oid			dbid;
	Oid			relid;
	TimestampTz started_at;
	TimestampTz ended_at;
	int16		from_level;		/* shallowest input level */
	int16		to_level;
	int32		ninputs;
	int32		noutputs;
	uint64		bytes_in;
	uint64		bytes_out;
	uint64		records_in;
	uint64		records_dropped;
	bool		bottommost;
	bool		abandoned;		/* given up because DDL waited */
	bool		worker;			/* run by a background worker */
	bool		freeze;			/* an aggressive VACUUM's freezing compaction */
} KvlsmCompactionRecord;

extern Size kvlsm_history_shmem_size(void);
extern void kvlsm_history_shmem_init(void);
extern void kvlsm_history_add(const KvlsmCompactionRecord *rec);
/* copies the records, oldest first; returns how many */
extern int	kvlsm_history_copy(KvlsmCompactionRecord *out);

#endif							/* KVLSM_HISTORY_H */
