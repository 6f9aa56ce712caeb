/*-------------------------------------------------------------------------
 *
 * inspect.c
 *	  Live debugging from SQL: kvlsm_sstable_header, kvlsm_sstable_dump and
 *	  kvlsm_key_history.
 *
 * A dump walks one SSTable with kvlsm_sst_walk, so it works on damaged and
 * quarantined tables too: what cannot be decoded comes out as rows of kind
 * 'corrupt' naming the block and the problem, among the entries that can.
 * A key history collects every stored version of one key, newest first:
 * the active and the frozen memtable, then every SSTable from L0 down
 * (outputs of a running compaction, which duplicate its inputs, and
 * quarantined tables are left out).
 * Records are shown as the layer above wrote them: a table's records with
 * their kind, transaction and its commit status; an index's entries as
 * puts and tombstones.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/transam.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "kvlsm/compress.h"
#include "kvlsm/kvlsm.h"
#include "kvlsm/admin.h"
#include "kvlsm/compaction.h"
#include "kvlsm/index.h"
#include "kvlsm/lsm.h"
#include "kvlsm/manifest.h"
#include "kvlsm/page.h"
#include "kvlsm/sstable.h"
#include "kvlsm/table.h"

/* a whole key as text: "rowid N" for a table, "(cols)=(values) tid" for an index */
static char *
describe_key(Relation rel, const char *key, int keylen)
{
	if (rel->rd_rel->relkind == RELKIND_INDEX)
	{
		IndexTuple	itup;
		TupleDesc	desc = RelationGetDescr(rel);
		StringInfoData s;
		int			i;

		if (keylen < KVLSM_IKEY_HEADER + (int) sizeof(IndexTupleData))
			return pstrdup("?");
		itup = kvlsm_index_key_tuple(key);
		initStringInfo(&s);
		appendStringInfoChar(&s, '(');
		for (i = 0; i < desc->natts; i++)
		{
			bool		isnull;
			Datum		d = index_getattr(itup, i + 1, desc, &isnull);

			if (i > 0)
				appendStringInfoString(&s, ", ");
			if (isnull)
				appendStringInfoString(&s, "NULL");
			else
			{
				Oid			typoutput;
				bool		varlena;

				getTypeOutputInfo(TupleDescAttr(desc, i)->atttypid, &typoutput, &varlena);
				appendStringInfoString(&s, OidOutputFunctionCall(typoutput, d));
			}
		}
		appendStringInfo(&s, ") tid (%u,%u)",
						 ItemPointerGetBlockNumberNoCheck(&itup->t_tid),
						 ItemPointerGetOffsetNumberNoCheck(&itup->t_tid));
		return s.data;
	}
	if (keylen != 8)
		return pstrdup("?");
	{
		uint64		rowid = kvlsm_key_to_rowid(key);
		ItemPointerData tid;

		kvlsm_rowid_to_tid(rowid, &tid);
		return psprintf(UINT64_FORMAT " tid (%u,%u)", rowid,
						ItemPointerGetBlockNumberNoCheck(&tid),
						ItemPointerGetOffsetNumberNoCheck(&tid));
	}
}

static const char *
xid_status_name(TransactionId xid)
{
	if (xid == FrozenTransactionId)
		return "frozen";
	if (!TransactionIdIsNormal(xid))
		return "invalid";
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		return "truncated";		/* too old to ask the commit log */
	switch (kvlsm_xid_status(xid))
	{
		case KVLSM_XID_CURRENT:
			return "current";
		case KVLSM_XID_IN_PROGRESS:
			return "in progress";
		case KVLSM_XID_COMMITTED:
			return "committed";
	}
	return "aborted";
}

/* what one record says: kind, xid (Invalid: none), detail */
typedef struct RecordInfo
{
	const char *kind;
	TransactionId xid;
	char	   *detail;
} RecordInfo;

static void
record_info(Relation rel, uint16 flags, const char *val, uint32 vallen,
			RecordInfo *info)
{
	KvlsmRowRecord rr;
	const char *body;
	uint32		bodylen;

	info->xid = InvalidTransactionId;
	info->detail = NULL;
	if (rel->rd_rel->relkind == RELKIND_INDEX)
	{
		info->kind = (flags & KVLSM_IREC_TOMBSTONE) ? "tombstone" : "put";
		if (flags & KVLSM_IREC_BUILD_DEAD)
			info->detail = pstrdup("built from a row version dead to new snapshots");
		return;
	}
	if (!kvlsm_decode_row_record(val, vallen, &rr, &body, &bodylen))
	{
		info->kind = "unknown";
		info->detail = psprintf("value of %u bytes is no row record", vallen);
		return;
	}
	info->xid = rr.xid;
	switch (rr.kind)
	{
		case KVLSM_REC_INSERT:
			info->kind = "insert";
			info->detail = psprintf("tuple of %u bytes%s%s%s",
									(unsigned) (bodylen + MINIMAL_TUPLE_DATA_OFFSET),
									(rr.flags & KVLSM_INS_SPECULATIVE) ? ", speculative" : "",
									rr.expires != 0 ? ", expires " : "",
									rr.expires != 0 ? timestamptz_to_str(rr.expires) : "");
			break;
		case KVLSM_REC_DELETE:
			info->kind = "delete";
			if (rr.flags & KVLSM_DEL_MOVED)
				info->detail = pstrdup("moved to another partition");
			else if (rr.flags & KVLSM_DEL_UPDATE)
				info->detail = psprintf("updated, new version is row id " UINT64_FORMAT "%s",
										rr.successor,
										(rr.flags & KVLSM_DEL_KEYS_UPDATED) ? ", key columns changed" : "");
			break;
		case KVLSM_REC_LOCK:
			info->kind = "lock";
			info->detail = psprintf("lock mode %d", rr.lockmode);
			break;
		case KVLSM_REC_KILL:
			info->kind = "kill";
			info->detail = pstrdup("speculative insertion aborted");
			break;
		case KVLSM_REC_CONFIRM:
			info->kind = "confirm";
			info->detail = pstrdup("speculative insertion confirmed");
			break;
		case KVLSM_REC_PURGE:
			info->kind = "purge";
			info->detail = pstrdup("VACUUM removed the row's index entries");
			break;
		default:
			info->kind = "unknown";
			info->detail = psprintf("record kind %d", rr.kind);
			break;
	}
}

/* find an SSTable by id in the manifest (any state) */
static bool
find_sstable(Relation rel, uint64 id, KvlsmSstDesc *desc)
{
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	KvlsmSstDesc *ssts;
	uint32		i;
	bool		found = false;

	ssts = kvlsm_snapshot_state(rel, copy);
	for (i = 0; i < copy->nsst; i++)
		if (ssts[i].id == id)
		{
			*desc = ssts[i];
			found = true;
		}
	pfree(ssts);
	pfree(copy);
	return found;
}

static Relation
open_with_sstable(FunctionCallInfo fcinfo, KvlsmSstDesc *desc)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), AccessShareLock);
	int64		id = PG_GETARG_INT64(1);

	if (id <= 0 || !find_sstable(rel, (uint64) id, desc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("SSTable " INT64_FORMAT " is not in the manifest of \"%s\"",
						id, RelationGetRelationName(rel)),
				 errhint("kvlsm_sstables() lists the SSTables.")));
	return rel;
}

/*
 * kvlsm_sstable_header(rel, sstable): the header page of one SSTable.
 */
PG_FUNCTION_INFO_V1(kvlsm_sstable_header);
Datum
kvlsm_sstable_header(PG_FUNCTION_ARGS)
{
	KvlsmSstDesc desc;
	Relation	rel = open_with_sstable(fcinfo, &desc);
	PGAlignedBlock page;
	Buffer		buf;
	KvlsmSstHeader hdr;
	char	   *contents;
	TupleDesc	tupdesc;
	Datum		values[15];
	bool		nulls[15] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	buf = kvlsm_read_buffer(rel, desc.start);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(page.data, BufferGetPage(buf), BLCKSZ);
	UnlockReleaseBuffer(buf);
	kvlsm_page_check(rel, desc.start, (Page) page.data, KVLSM_PAGE_SST_HEADER);
	contents = PageGetContents((Page) page.data);
	memcpy(&hdr, contents, sizeof(hdr));
	if (KvlsmPageGetOpaque((Page) page.data)->owner != desc.id ||
		sizeof(hdr) + (Size) hdr.minkeylen + hdr.maxkeylen >
		((PageHeader) page.data)->pd_lower - SizeOfPageHeaderData)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm relation \"%s\" block %u is not the header of SSTable %llu",
						RelationGetRelationName(rel), desc.start,
						(unsigned long long) desc.id)));

	values[0] = Int64GetDatum(hdr.id);
	values[1] = Int32GetDatum(hdr.level);
	values[2] = Int64GetDatum(desc.start);
	values[3] = Int64GetDatum(hdr.npages);
	values[4] = Int64GetDatum(hdr.nentries);
	values[5] = Int64GetDatum(hdr.ndata);
	values[6] = Int64GetDatum(hdr.nindex);
	values[7] = Int64GetDatum(hdr.nbloom);
	values[8] = Int64GetDatum(hdr.bloom_nbits);
	values[9] = Int32GetDatum(hdr.bloom_k);
	values[10] = Int64GetDatum(hdr.minseq);
	values[11] = Int64GetDatum(hdr.maxseq);
	if (hdr.minkeylen > 0 || hdr.maxkeylen > 0)
	{
		values[12] = CStringGetTextDatum(describe_key(rel, contents + sizeof(hdr),
													  hdr.minkeylen));
		values[13] = CStringGetTextDatum(describe_key(rel, contents + sizeof(hdr) + hdr.minkeylen,
													  hdr.maxkeylen));
	}
	else
		nulls[12] = nulls[13] = true;
	/* the header page itself is never compressed: report the data pages' */
	{
		Buffer		dbuf;
		uint16		flags = 0;

		if (hdr.ndata > 0)
		{
			dbuf = kvlsm_read_buffer(rel, desc.start + 1);
			LockBuffer(dbuf, BUFFER_LOCK_SHARE);
			flags = KvlsmPageGetOpaque(BufferGetPage(dbuf))->flags;
			UnlockReleaseBuffer(dbuf);
		}
		values[14] = CStringGetTextDatum((flags & KVLSM_PAGE_FLAG_ZSTD) ? "zstd" :
										 (flags & KVLSM_PAGE_FLAG_LZ4) ? "lz4" : "none");
	}
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

typedef struct DumpArg
{
	ReturnSetInfo *rsinfo;
	Relation	rel;
} DumpArg;

static void
dump_row(DumpArg *da, BlockNumber blkno, const char *key, const char *kind,
		 TransactionId xid, bool has_seq, uint64 seq, int64 value_bytes,
		 const char *detail)
{
	Datum		values[7];
	bool		nulls[7] = {0};

	values[0] = Int64GetDatum(blkno);
	if (key)
		values[1] = CStringGetTextDatum(key);
	else
		nulls[1] = true;
	values[2] = CStringGetTextDatum(kind);
	if (TransactionIdIsValid(xid))
		values[3] = TransactionIdGetDatum(xid);
	else
		nulls[3] = true;
	if (has_seq)
		values[4] = Int64GetDatum(seq);
	else
		nulls[4] = true;
	if (value_bytes >= 0)
		values[5] = Int32GetDatum((int32) value_bytes);
	else
		nulls[5] = true;
	if (detail)
		values[6] = CStringGetTextDatum(detail);
	else
		nulls[6] = true;
	tuplestore_putvalues(da->rsinfo->setResult, da->rsinfo->setDesc, values, nulls);
}

static void
dump_problem_cb(void *arg, BlockNumber blkno, const char *msg)
{
	dump_row(arg, blkno, NULL, "corrupt", InvalidTransactionId, false, 0, -1, msg);
}

static void
dump_entry_cb(void *arg, BlockNumber blkno, const char *key, int keylen,
			  uint64 seq, uint16 flags, const char *val, uint32 vallen)
{
	DumpArg    *da = arg;
	RecordInfo	info;

	record_info(da->rel, flags, val, vallen, &info);
	dump_row(da, blkno, describe_key(da->rel, key, keylen), info.kind, info.xid,
			 true, seq, vallen, info.detail);
}

/*
 * kvlsm_sstable_dump(rel, sstable): every entry of one SSTable in stored
 * order, with rows of kind 'corrupt' for what cannot be read.
 */
PG_FUNCTION_INFO_V1(kvlsm_sstable_dump);
Datum
kvlsm_sstable_dump(PG_FUNCTION_ARGS)
{
	KvlsmSstDesc desc;
	Relation	rel = open_with_sstable(fcinfo, &desc);
	KvlsmSstHeader hdr;
	KvlsmSstWalker w;
	DumpArg		da;

	InitMaterializedSRF(fcinfo, 0);
	da.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	da.rel = rel;
	memset(&w, 0, sizeof(w));
	w.problem = dump_problem_cb;
	w.entry = dump_entry_cb;
	w.arg = &da;
	kvlsm_sst_walk(rel, &desc, &hdr, &w);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Key history
 * ---------------------------------------------------------------------
 */

typedef struct HistoryArg
{
	ReturnSetInfo *rsinfo;
	Relation	rel;
} HistoryArg;

static void
history_rows(HistoryArg *ha, const char *location, const KvlsmSstDesc *desc,
			 KvlsmRecordSet *set)
{
	int			i;

	for (i = 0; i < set->n; i++)
	{
		KvlsmRecord *r = &set->recs[i];
		RecordInfo	info;
		Datum		values[10];
		bool		nulls[10] = {0};

		record_info(ha->rel, r->flags, r->val, r->vallen, &info);
		values[0] = CStringGetTextDatum(location);
		if (desc)
		{
			values[1] = Int64GetDatum(desc->id);
			if (desc->level < KVLSM_MAX_LEVELS)
				values[2] = Int32GetDatum(desc->level);
			else
				nulls[2] = true;
		}
		else
			nulls[1] = nulls[2] = true;
		values[3] = CStringGetTextDatum(describe_key(ha->rel, r->key, r->keylen));
		values[4] = CStringGetTextDatum(info.kind);
		if (TransactionIdIsValid(info.xid))
		{
			values[5] = TransactionIdGetDatum(info.xid);
			values[6] = CStringGetTextDatum(xid_status_name(info.xid));
		}
		else
			nulls[5] = nulls[6] = true;
		values[7] = Int64GetDatum(r->seq);
		values[8] = Int32GetDatum(r->vallen);
		if (info.detail)
			values[9] = CStringGetTextDatum(info.detail);
		else
			nulls[9] = true;
		tuplestore_putvalues(ha->rsinfo->setResult, ha->rsinfo->setDesc, values, nulls);
	}
}

static int
sst_newest_first(const void *a, const void *b)
{
	const KvlsmSstDesc *da = a;
	const KvlsmSstDesc *db = b;

	if (da->level != db->level)
		return (da->level > db->level) - (da->level < db->level);
	return (da->maxseq < db->maxseq) - (da->maxseq > db->maxseq);
}

/*
 * A table key given as a TID '(block,offset)' or as a row id; an index key
 * as a value of the first key column.
 */
static void
history_bounds(Relation rel, text *keytext, char **start, int *startlen,
			   char **end, int *endlen)
{
	char	   *str = text_to_cstring(keytext);

	if (rel->rd_rel->relkind != RELKIND_INDEX && strchr(str, '(') != NULL)
	{
		ItemPointer tid = (ItemPointer) DatumGetPointer(DirectFunctionCall1(tidin,
																			CStringGetDatum(str)));

		if (ItemPointerGetOffsetNumberNoCheck(tid) < 1 ||
			ItemPointerGetOffsetNumberNoCheck(tid) > KVLSM_ROWS_PER_BLOCK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("TID %s cannot name a row of a kvlsm table", str),
					 errdetail("Offsets run from 1 to %d.", (int) KVLSM_ROWS_PER_BLOCK)));
		*start = palloc(8);
		kvlsm_rowid_to_key(kvlsm_tid_to_rowid(tid), *start);
		*startlen = 8;
		*end = *start;
		*endlen = 8;
		return;
	}
	*start = kvlsm_range_key(rel, keytext, false, startlen);
	*end = kvlsm_range_key(rel, keytext, true, endlen);
}

/*
 * kvlsm_key_history(rel, key): every stored version of one key, newest
 * first.  A version a compaction moves meanwhile may show twice or not at
 * all; the read is retried when an SSTable it reads is retired.
 */
PG_FUNCTION_INFO_V1(kvlsm_key_history);
Datum
kvlsm_key_history(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), AccessShareLock);
	const KvlsmKeyOps *ops = kvlsm_keyops(rel);
	KvlsmShared *sh;
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	KvlsmSstDesc *ssts;
	HistoryArg	ha;
	char	   *start,
			   *end;
	int			startlen,
				endlen;
	KvlsmRecordSet active,
				frozen;
	KvlsmRecordSet *sets;
	int			attempt;
	uint32		i;

	history_bounds(rel, PG_GETARG_TEXT_PP(1), &start, &startlen, &end, &endlen);
	InitMaterializedSRF(fcinfo, 0);
	ha.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ha.rel = rel;

	sh = kvlsm_attach(rel);
	sets = palloc(sizeof(KvlsmRecordSet) * KVLSM_MAX_SST);
	for (attempt = 0;; attempt++)
	{
		bool		retry = false;

		CHECK_FOR_INTERRUPTS();
		kvlsm_recset_init(&active, CurrentMemoryContext);
		kvlsm_recset_init(&frozen, CurrentMemoryContext);
		kvlsm_memtable_range(sh, ops, start, startlen, end, endlen, &active, &frozen);
		ssts = kvlsm_snapshot_state(rel, copy);
		qsort(ssts, copy->nsst, sizeof(KvlsmSstDesc), sst_newest_first);
		for (i = 0; i < copy->nsst && !retry; i++)
		{
			bool		limited;

			kvlsm_recset_init(&sets[i], CurrentMemoryContext);
			if (!KvlsmSstIsLive(&ssts[i]))
				continue;
			if (kvlsm_sst_collect(rel, sh, &ssts[i], ops, start, startlen, false,
								  end, endlen, 0, NULL, &sets[i], &limited) == KVLSM_SST_RETRY)
				retry = true;
		}
		if (!retry)
			break;
		if (attempt >= 100)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("SSTables of \"%s\" kept being retired while the key history was read",
							RelationGetRelationName(rel))));
	}
	history_rows(&ha, "memtable", NULL, &active);
	history_rows(&ha, "frozen memtable", NULL, &frozen);
	for (i = 0; i < copy->nsst; i++)
	{
		if (!KvlsmSstIsLive(&ssts[i]))
			continue;
		history_rows(&ha, psprintf("L%u SSTable", ssts[i].level),
					 &ssts[i], &sets[i]);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}
