/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  SQL-callable functions: kvlsm_flush, kvlsm_compact, kvlsm_levels,
 *	  kvlsm_sstables and kvlsm_stats.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/lsm.h"
#include "kvlsm/page.h"
#include "kvlsm/table.h"
#include "kvlsm/index.h"

/* open a kvlsm table or kvlsm_idx index; anything else is an error */
static Relation
open_kvlsm(Oid relid, LOCKMODE mode)
{
	Relation	rel = relation_open(relid, mode);
	bool		ok;

	if (rel->rd_rel->relkind == RELKIND_INDEX)
		ok = kvlsm_is_kvlsm_index(rel);
	else
		ok = (rel->rd_rel->relkind == RELKIND_RELATION ||
			  rel->rd_rel->relkind == RELKIND_MATVIEW) &&
			kvlsm_is_kvlsm_relation(rel);
	if (!ok)
	{
		relation_close(rel, mode);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvlsm table or kvlsm_idx index", get_rel_name(relid))));
	}
	return rel;
}

PG_FUNCTION_INFO_V1(kvlsm_flush_sql);
Datum
kvlsm_flush_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = open_kvlsm(PG_GETARG_OID(0), RowExclusiveLock);

	kvlsm_flush(rel, true);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(kvlsm_compact_sql);
Datum
kvlsm_compact_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = open_kvlsm(PG_GETARG_OID(0), RowExclusiveLock);

	kvlsm_compact_all(rel);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

/* one row per level: level, sstables, entries, pages, bytes; level -1 = memtables */
PG_FUNCTION_INFO_V1(kvlsm_levels);
Datum
kvlsm_levels(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = open_kvlsm(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	int			level;

	InitMaterializedSRF(fcinfo, 0);
	kvlsm_snapshot_state(rel, copy);
	{
		Datum		values[6];
		bool		nulls[6] = {0};

		values[0] = CStringGetTextDatum("memtable");
		values[1] = Int32GetDatum(-1);
		values[2] = Int32GetDatum((copy->active.entries > 0) + (copy->frozen.genid != 0));
		values[3] = Int64GetDatum(copy->active.entries + copy->frozen.entries);
		values[4] = Int64GetDatum(0);
		values[5] = Int64GetDatum(copy->active.bytes + copy->frozen.bytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (level = 0; level < 8; level++)
	{
		uint32		i;
		int			n = 0;
		int64		entries = 0,
					pages = 0,
					bytes = 0;
		Datum		values[6];
		bool		nulls[6] = {0};

		for (i = 0; i < copy->nsst; i++)
		{
			if (copy->sst[i].level != level)
				continue;
			n++;
			entries += copy->sst[i].nentries;
			pages += copy->sst[i].npages;
			bytes += copy->sst[i].nbytes;
		}
		if (n == 0 && level > 1)
			continue;
		values[0] = CStringGetTextDatum(psprintf("L%d", level));
		values[1] = Int32GetDatum(level);
		values[2] = Int32GetDatum(n);
		values[3] = Int64GetDatum(entries);
		values[4] = Int64GetDatum(pages);
		values[5] = Int64GetDatum(bytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(kvlsm_sstables);
Datum
kvlsm_sstables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = open_kvlsm(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	uint32		i;

	InitMaterializedSRF(fcinfo, 0);
	kvlsm_snapshot_state(rel, copy);
	for (i = 0; i < copy->nsst; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {0};
		KvlsmSstDesc *d = &copy->sst[i];

		values[0] = Int64GetDatum(d->id);
		values[1] = Int32GetDatum(d->level);
		values[2] = Int64GetDatum(d->start);
		values[3] = Int64GetDatum(d->npages);
		values[4] = Int64GetDatum(d->nentries);
		values[5] = Int64GetDatum(d->minseq);
		values[6] = Int64GetDatum(d->maxseq);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(kvlsm_stats);
Datum
kvlsm_stats(PG_FUNCTION_ARGS)
{
	Relation	rel = open_kvlsm(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	KvlsmMetaPageData meta;
	TupleDesc	tupdesc;
	Datum		values[22];
	bool		nulls[22] = {0};
	int			i = 0;
	uint64		written;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kvlsm_snapshot_state(rel, copy);
	kvlsm_read_metapage(rel, &meta);
	written = meta.log_bytes + meta.bytes_flushed + meta.bytes_compacted_out;

	values[i++] = Int64GetDatum(copy->active.bytes + copy->frozen.bytes);
	values[i++] = Int64GetDatum(copy->active.entries + copy->frozen.entries);
	values[i++] = Int32GetDatum(copy->frozen.genid != 0 ? 1 : 0);
	values[i++] = Int32GetDatum(copy->nsst);
	values[i++] = Int64GetDatum(meta.logical_bytes);
	values[i++] = Int64GetDatum(meta.log_bytes);
	values[i++] = Int64GetDatum(meta.bytes_flushed);
	values[i++] = Int64GetDatum(meta.bytes_compacted_out);
	if (meta.logical_bytes > 0)
		values[i++] = Float8GetDatum((double) written / (double) meta.logical_bytes);
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum(meta.flushes);
	values[i++] = Int64GetDatum(meta.compactions);
	values[i++] = Int64GetDatum(copy->stats.point_lookups);
	values[i++] = Int64GetDatum(copy->stats.sst_probes);
	values[i++] = Int64GetDatum(copy->stats.bloom_checks);
	values[i++] = Int64GetDatum(copy->stats.bloom_negatives);
	values[i++] = Int64GetDatum(copy->stats.log_pages);
	values[i++] = Int64GetDatum(copy->stats.log_appends);
	values[i++] = Int64GetDatum(meta.rowid_hwm);
	values[i++] = Int64GetDatum((int64) RelationGetNumberOfBlocks(rel) * BLCKSZ);
	values[i++] = Int64GetDatum(meta.incarnation & INT64CONST(0x7FFFFFFFFFFFFFFF));
	values[i++] = CStringGetTextDatum(meta.compression == KVLSM_COMPRESSION_LZ4 ? "lz4" : "none");
	values[i++] = Int64GetDatum(meta.memtable_size);
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* the shared memtable arena: total and free bytes, attached LSMs */
PG_FUNCTION_INFO_V1(kvlsm_memory);
Datum
kvlsm_memory(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(kvlsm_arena_total_bytes());
	values[1] = Int64GetDatum(kvlsm_arena_free_bytes());
	values[2] = Int64GetDatum(kvlsm_attached_count());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
