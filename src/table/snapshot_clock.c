/*-------------------------------------------------------------------------
 *
 * snapshot_clock.c
 *	  The xid/time clock: a ring of (time, next xid) samples in the
 *	  module's shared memory, and the conversions between the two that TTL
 *	  needs, since TTL expiry is judged by time while standby conflicts and
 *	  hot-standby feedback speak in xids.
 *
 * Locking: the samples are read and written under PinShared.mutex (see
 * snapshot_internal.h), with nothing else done under it.  No WAL: the
 * ring only has to cover what this server has seen since it started, and
 * when samples are missing the answers err on the side of keeping rows.
 *
 * Callers: the launcher (worker.c) samples every time it wakes; the GC
 * policy's standby-conflict callback (src/kvlsm.c) and the table AM's
 * vacuum (vacuum.c) ask kvlsm_conflict_xid; visibility.c asks
 * kvlsm_time_before_xid.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "kvlsm/snapshots.h"
#include "snapshot_internal.h"

/* the sample at position i of the ring, oldest first */
#define SAMPLE_AT(pins, i) \
	(&(pins)->samples[((pins)->next_sample - (pins)->nsamples + (i) + \
					   XIDTIME_SLOTS) % XIDTIME_SLOTS])

/*
 * Record the next xid with the time, at most once a second (the launcher
 * calls this every time it wakes; compaction too, before it looks back).
 */
void
kvlsm_xid_time_sample(void)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	TimestampTz now = GetCurrentTimestamp();
	XidTimeSample *last;

	if (pins == NULL)
		return;
	SpinLockAcquire(&pins->mutex);
	last = pins->nsamples > 0 ?
		&pins->samples[(pins->next_sample + XIDTIME_SLOTS - 1) % XIDTIME_SLOTS] : NULL;
	if (last == NULL || now - last->time >= USECS_PER_SEC)
	{
		pins->samples[pins->next_sample].time = now;
		pins->samples[pins->next_sample].xid = ReadNextTransactionId();
		pins->next_sample = (pins->next_sample + 1) % XIDTIME_SLOTS;
		if (pins->nsamples < XIDTIME_SLOTS)
			pins->nsamples++;
	}
	SpinLockRelease(&pins->mutex);
}

/*
 * An xid no snapshot taken before time 't' has as its xmin or beyond: the
 * next xid of the first sample at or after 't' (a snapshot's xmin is never
 * past the next xid when it is taken, and the next xid only grows), or the
 * next xid now.  Too late rather than too early when samples are missing.
 */
TransactionId
kvlsm_xid_at_time(TimestampTz t)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	TransactionId result = InvalidTransactionId;
	int			i;

	kvlsm_xid_time_sample();
	SpinLockAcquire(&pins->mutex);
	for (i = 0; i < pins->nsamples; i++)
	{
		/* oldest first */
		XidTimeSample *s = SAMPLE_AT(pins, i);

		if (s->time >= t)
		{
			result = s->xid;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	return TransactionIdIsValid(result) ? result : ReadNextTransactionId();
}

/*
 * A time no snapshot whose xmin is 'xid' was taken before: that of the last
 * sample whose next xid was still below it (the next xid had not reached
 * 'xid' then).  0 when no sample is that old: nothing is known.
 */
TimestampTz
kvlsm_time_before_xid(TransactionId xid)
{
	PinShared  *pins = kvlsm_snapshot_shared;
	TimestampTz result = 0;
	int			i;

	SpinLockAcquire(&pins->mutex);
	for (i = pins->nsamples - 1; i >= 0; i--)
	{
		XidTimeSample *s = SAMPLE_AT(pins, i);

		if (TransactionIdPrecedes(s->xid, xid))
		{
			result = s->time;
			break;
		}
	}
	SpinLockRelease(&pins->mutex);
	return result;
}

/*
 * The xid a removal of row versions conflicts with on hot standbys (a
 * query whose snapshot's xmin is not past it is cancelled): the newest
 * deleter whose versions went, and for rows dropped at the end of their
 * TTL, which snapshots judge by time, the next xid when the latest of them
 * expired (every snapshot taken before then has an xmin up to that).
 */
TransactionId
kvlsm_conflict_xid(TransactionId latest_removed, TimestampTz ttl_max_expired)
{
	if (ttl_max_expired != 0)
	{
		TransactionId x = kvlsm_xid_at_time(ttl_max_expired);

		if (!TransactionIdIsValid(latest_removed) || TransactionIdFollows(x, latest_removed))
			latest_removed = x;
	}
	return latest_removed;
}
