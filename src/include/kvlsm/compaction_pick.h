/*-------------------------------------------------------------------------
 *
 * compaction_pick.h
 *	  Between the compaction picker (src/engine/compaction_pick.c: which
 *	  tables to merge, into which level, with what output size) and the
 *	  executor (src/engine/compaction.c: claims the job under the flush
 *	  lock, merges, installs).  Internal to the engine's compaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_COMPACTION_PICK_H
#define KVLSM_COMPACTION_PICK_H

#include "postgres.h"

#include "kvlsm/compaction.h"
#include "kvlsm/manifest.h"

/* the largest output table */
#define KVLSM_MAX_FILE_BYTES	((uint64) 256 * 1024 * 1024)

/* exact key range of one table; known == false: may hold any key */
typedef struct KvlsmKeyBounds
{
	bool		known;
	char	   *min;
	int			minlen;
	char	   *max;
	int			maxlen;
} KvlsmKeyBounds;

typedef struct KvlsmCompactionJob
{
	int			output_level;
	bool		bottommost;
	bool		may_abandon;	/* not an L0 job nor a manual one */
	uint64		target_file_bytes;
	uint64		in_bytes;		/* logical bytes of the inputs */
	uint64		consumed;		/* ...of them merged so far */
	double		pages_per_byte; /* of the inputs: sizes reservations */
	int			ninputs;
	KvlsmSstDesc inputs[KVLSM_MAX_SST];
	TransactionId freeze_limit; /* InvalidTransactionId: no freezing */
	TransactionId oldest_xid;	/* out: see KvlsmGcContext */
	/* outputs placed so far (pending in the manifest) */
	int			noutputs;
	uint64		output_ids[KVLSM_MAX_SST];
	bool		toast_swept;	/* this job swept left-behind TOAST values */
	bool		toast_sweep_incomplete; /* ...but skipped some */
} KvlsmCompactionJob;

typedef struct KvlsmPickState
{
	const KvlsmKeyOps *ops;
	KvlsmManifestCopy *mc;
	KvlsmKeyBounds	   *bounds;			/* per mc->sst[i] */
	bool	   *chosen;
	int64		memtable_size;
} KvlsmPickState;

typedef struct KvlsmPickRange
{
	const char *lower;			/* NULL: unbounded */
	int			lowerlen;
	const char *upper;
	int			upperlen;
} KvlsmPickRange;

/* fills job (output level, may_abandon) and ps->chosen; false: nothing to do */
typedef bool (*KvlsmPickFn) (KvlsmPickState *ps, KvlsmCompactionJob *job, void *arg);

/* compaction_pick.c */
extern uint64 kvlsm_target_file_bytes(int64 memtable_size, int level);
extern KvlsmKeyBounds *kvlsm_pick_load_bounds(Relation rel, KvlsmManifestCopy *mc);
extern bool kvlsm_pick_older_data_below(KvlsmPickState *ps, int level);
extern bool kvlsm_pick_by_style(KvlsmPickState *ps, KvlsmCompactionJob *job, void *arg);
extern bool kvlsm_pick_range(KvlsmPickState *ps, KvlsmCompactionJob *job, void *arg);

#endif							/* KVLSM_COMPACTION_PICK_H */
