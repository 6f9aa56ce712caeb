/*-------------------------------------------------------------------------
 *
 * retained.c
 *	  What a named snapshot keeps alive in one kvlsm table: the row
 *	  versions that only named snapshots still need, and their bytes.
 *
 * A full pass over the table's records (kvlsm_table_each_batch, scan.c),
 * each row resolved and judged by visibility.c; it reads and takes no lock
 * of its own.  Called by the named snapshots' SQL function
 * kvlsm_snapshot_retained().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "kvlsm/table.h"

typedef struct RetainedState
{
	Relation	rel;
	Snapshot	named;
	TimestampTz now;
	KvlsmRowState st;
	uint64		versions;
	uint64		bytes;
} RetainedState;

static void
count_retained(KvlsmRecord *recs, int n, void *arg)
{
	RetainedState *rs = arg;
	KvlsmRowState *st = &rs->st;
	int			pos = 0;

	while (pos < n)
	{
		int			start = pos;
		uint64		recbytes = 0;

		while (pos < n && memcmp(recs[pos].key, recs[start].key, 8) == 0)
			recbytes += sizeof(KvlsmRecordHeader) + 8 + recs[pos++].vallen;
		kvlsm_resolve_row(&recs[start], pos - start, st);
		if (!kvlsm_row_visible(st, rs->named))
			continue;
		if ((st->deleted && st->xmax_status == KVLSM_XID_COMMITTED &&
			 GlobalVisCheckRemovableXid(rs->rel, st->xmax)) ||
			(st->expires != 0 && st->expires <= rs->now))
		{
			rs->versions++;
			rs->bytes += recbytes;
		}
	}
}

/*
 * For kvlsm_snapshot_retained(): the row versions of 'rel' that 'named'
 * sees and that nothing but named snapshots keeps any more: deleted by a
 * transaction that every running snapshot sees as committed, or past their
 * TTL.  Counts them and their record bytes (a full pass over the table).
 */
void
kvlsm_table_retained(Relation rel, Snapshot named, uint64 *versions, uint64 *bytes)
{
	RetainedState *rs = palloc0(sizeof(RetainedState));

	rs->rel = rel;
	rs->named = named;
	rs->now = GetCurrentTimestamp();
	kvlsm_table_each_batch(rel, count_retained, rs);
	*versions = rs->versions;
	*bytes = rs->bytes;
	pfree(rs);
}
