/*-------------------------------------------------------------------------
 *
 * rowrecord.c
 *	  The records of one row id in the LSM: reading them all, appending
 *	  one, and showing a resolved row as a heap tuple in a slot.
 *
 * A row id's key is its big-endian bytes (kvlsm/table.h); its records are
 * read newest first with one point lookup, and a record is appended with
 * one kvlsm_put.  Nothing here takes a lock of its own: callers that must
 * check before they append (DELETE, UPDATE, row locks) hold the row's
 * stripe lock (modify.c) around the append, and the engine's put takes the
 * LSM lock and writes the log as lsm.c describes.
 *
 * Called by every file of the table AM (src/table/).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/table_internal.h"
#include "kvlsm/bloom.h"

void
kvlsm_check_rowid(Relation rel, uint64 rowid)
{
	if (rowid >= KVLSM_MAX_ROWID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm table \"%s\" has used up its row id space",
						RelationGetRelationName(rel)),
				 errhint("Rewrite the table with VACUUM FULL.")));
}

/* ------------------------------------------------------------------------
 * Reading rows
 * ------------------------------------------------------------------------
 */

/* all records of one row id, newest first */
void
kvlsm_fetch_row_records(Relation rel, KvlsmShared *sh, uint64 rowid,
						KvlsmRecordSet *set)
{
	char		key[8];
	uint64		h;

	kvlsm_rowid_to_key(rowid, key);
	h = kvlsm_key_hash(key, 8);
	kvlsm_collect(rel, sh, &kvlsm_bytewise_keyops, key, 8, false, key, 8, 0,
				  &h, set);
}

/* build a heap tuple (palloc'd in the current context) from a row state */
HeapTuple
kvlsm_row_to_heaptuple(Relation rel, KvlsmRowState *st)
{
	HeapTuple	tup;
	const Size	at = offsetof(HeapTupleHeaderData, t_infomask2);
	Size		len = st->tuplen + at;
	HeapTupleHeader hdr;

	tup = palloc(HEAPTUPLESIZE + len);
	tup->t_len = len;
	tup->t_tableOid = RelationGetRelid(rel);
	tup->t_data = hdr = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	/* the stored tuple begins at t_infomask2; the fields before are set below */
	memset(hdr, 0, at);
	memcpy((char *) hdr + at, st->tuple, st->tuplen);
	kvlsm_rowid_to_tid(st->rowid, &tup->t_self);
	hdr->t_ctid = tup->t_self;
	HeapTupleHeaderSetXmin(hdr, st->xmin);
	HeapTupleHeaderSetCmin(hdr, st->cmin);
	hdr->t_infomask &= ~HEAP_XACT_MASK;
	hdr->t_infomask |= HEAP_XMAX_INVALID;
	if (st->xmin_status == KVLSM_XID_COMMITTED)
		hdr->t_infomask |= HEAP_XMIN_COMMITTED;
	HeapTupleHeaderSetXmax(hdr, InvalidTransactionId);
	if (st->deleted && st->xmax_status != KVLSM_XID_ABORTED)
	{
		hdr->t_infomask &= ~HEAP_XMAX_INVALID;
		HeapTupleHeaderSetXmax(hdr, st->xmax);
	}
	return tup;
}

void
kvlsm_store_row(Relation rel, KvlsmRowState *st, TupleTableSlot *slot)
{
	/* the slot frees the tuple: it must live in the slot's own context */
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	HeapTuple	tup = kvlsm_row_to_heaptuple(rel, st);

	MemoryContextSwitchTo(old);
	ExecStoreHeapTuple(tup, slot, true);
	slot->tts_tableOid = RelationGetRelid(rel);
}

/* ------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------
 */

void
kvlsm_put_row_record(Relation rel, KvlsmShared *sh, uint64 rowid,
					 KvlsmRowRecord *rr, MinimalTuple mtup)
{
	char		key[8];
	int			len;
	char	   *val;

	/* option ttl: a new row version lives ttl from its transaction's start */
	if (rr->kind == KVLSM_REC_INSERT && rr->expires == 0 && sh->ttl_usecs > 0)
	{
		/*
		 * Options refuse a ttl whose sum could overflow; a metapage written
		 * before that check may still hold one, and an overflowed sum would
		 * hide the row at once: such a row never expires.
		 */
		if (pg_add_s64_overflow(GetCurrentTransactionStartTimestamp(), sh->ttl_usecs,
								&rr->expires))
			rr->expires = DT_NOEND;
	}
	val = kvlsm_encode_row_record(rr, mtup, &len);
	kvlsm_rowid_to_key(rowid, key);
	kvlsm_put(rel, sh, &kvlsm_bytewise_keyops, key, 8, 0, val, len);
	pfree(val);
}
