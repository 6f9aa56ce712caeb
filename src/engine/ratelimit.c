/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  The compaction rate limiter (kvlsm.compaction_rate_limit), an engine
 *	  policy: a token bucket in bytes shared by every process.
 *
 * Each call takes its bytes; a compaction that finds the bucket in debt
 * sleeps until the debt would be repaid, a flush never waits (it only adds
 * to the debt), so flushes are served first.  The bucket holds at most
 * 100 ms of credit.  Compactions pay as they build their data pages
 * (sst_writer.c), so the merge itself is paced.
 *
 * Invariants: the bucket is protected by its own spinlock, held only to
 * refill and take tokens (no other lock is taken under it, nothing sleeps
 * under it); callers hold no flush lock while they may wait (sst_writer.c
 * pays before it takes the flush lock to place an output).  Nothing here
 * is WAL-logged: the bucket is a pacing aid, lost at a restart.
 *
 * Callers: sst_writer.c (kvlsm_charge_write); the shared memory is set up
 * through src/worker/worker.c's kvlsm_workers_shmem_size/_init; the GUC
 * is registered in _PG_init (src/kvlsm.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "kvlsm/lsm.h"
#include "kvlsm/ratelimit.h"
#include "kvlsm/scheduler.h"

/* GUC (registered in _PG_init) */
int			kvlsm_compaction_rate_limit_kb = 0;

typedef struct KvlsmRateLimiter
{
	slock_t		mutex;
	double		tokens;			/* bytes of credit; negative: debt */
	TimestampTz refilled;		/* when tokens were last added */
} KvlsmRateLimiter;

static KvlsmRateLimiter *bucket = NULL;

Size
kvlsm_ratelimit_shmem_size(void)
{
	return MAXALIGN(sizeof(KvlsmRateLimiter));
}

void
kvlsm_ratelimit_shmem_init(void)
{
	bool		found;

	bucket = ShmemInitStruct("kvlsm rate limiter", sizeof(KvlsmRateLimiter), &found);
	if (!found)
	{
		memset(bucket, 0, sizeof(KvlsmRateLimiter));
		SpinLockInit(&bucket->mutex);
	}
}

/*
 * Refill the bucket for the time since its last refill (at most 100 ms of
 * credit) and take 'bytes' from it; returns the debt left (<= 0: none).
 */
static double
take_tokens(uint64 bytes, double rate, TimestampTz now)
{
	double		debt;

	SpinLockAcquire(&bucket->mutex);
	if (bucket->refilled == 0)
		bucket->refilled = now;
	bucket->tokens += rate * (double) (now - bucket->refilled) / 1000000.0;
	bucket->refilled = now;
	if (bucket->tokens > rate / 10.0)
		bucket->tokens = rate / 10.0;
	bucket->tokens -= (double) bytes;
	debt = -bucket->tokens;
	SpinLockRelease(&bucket->mutex);
	return debt;
}

/*
 * Sleep until 'debt' bytes would be repaid at 'rate' bytes per second,
 * counted from 'now', in naps of at most a second, so that a lifted limit
 * or an interrupt is noticed.
 */
static void
wait_out_debt(double debt, double rate, TimestampTz now)
{
	long		ms = (long) ceil(debt * 1000.0 / rate);
	TimestampTz until = TimestampTzPlusMilliseconds(now, ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		/* a worker sees a new limit during a long compaction */
		if (kvlsm_am_worker && ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (left <= 0 || kvlsm_compaction_rate_limit_kb <= 0)
			break;
		left = Min(left, 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Charge 'bytes' that a flush (is_flush) or a compaction wrote or is about
 * to write; a compaction waits while the bucket is in debt.  With no
 * scheduler registered (scheduler.h) nothing is rate limited.
 */
void
kvlsm_charge_write(uint64 bytes, bool is_flush)
{
	double		rate = (double) kvlsm_compaction_rate_limit_kb * 1024.0;
	double		debt;
	TimestampTz now;

	if (!kvlsm_have_scheduler())
		return;
	if (bucket == NULL || rate <= 0 || bytes == 0)
		return;
	now = GetCurrentTimestamp();
	debt = take_tokens(bytes, rate, now);

	if (is_flush || debt <= 0)
		return;
	wait_out_debt(debt, rate, now);
}
