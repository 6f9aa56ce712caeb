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
#include "access/itup.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "commands/defrem.h"
#include "catalog/pg_class.h"

#include "kvlsm/compress.h"
#include "kvlsm/kvlsm.h"
#include "kvlsm/admin.h"
#include "kvlsm/lsm.h"
#include "kvlsm/page.h"
#include "kvlsm/table.h"
#include "kvlsm/index.h"
#include "kvlsm/compaction.h"
#include "kvlsm/manifest.h"
#include "kvlsm/worker.h"
#include "kvlsm/history.h"

/*
 * Without locking it: is the relation a kvlsm table or kvlsm_idx index?
 * An error otherwise.  For callers that must not lock other relations
 * (kvlsm_repair takes AccessExclusiveLock).
 */
void
kvlsm_check_relation_am(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	bool		ok = false;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	form = (Form_pg_class) GETSTRUCT(tup);
	if (OidIsValid(form->relam))
	{
		char	   *amname = get_am_name(form->relam);

		ok = amname != NULL &&
			((form->relkind == RELKIND_INDEX && strcmp(amname, "kvlsm_idx") == 0) ||
			 ((form->relkind == RELKIND_RELATION || form->relkind == RELKIND_MATVIEW) &&
			  strcmp(amname, "kvlsm") == 0));
	}
	ReleaseSysCache(tup);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvlsm table or kvlsm_idx index", get_rel_name(relid))));
}

/* open a kvlsm table or kvlsm_idx index; anything else is an error */
Relation
kvlsm_open_relation(Oid relid, LOCKMODE mode)
{
	Relation	rel = kvlsm_open_relation_if_exists(relid, mode);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return rel;
}

/*
 * As kvlsm_open_relation, but NULL when no relation has that OID (any
 * more).  The statistics functions return NULL then, as pg_relation_size
 * does: a monitoring query that lists relations and calls them for each
 * must not fail because one was dropped in between.
 */
Relation
kvlsm_open_relation_if_exists(Oid relid, LOCKMODE mode)
{
	Relation	rel = try_relation_open(relid, mode);
	bool		ok;

	if (rel == NULL)
		return NULL;
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
	/* their pages are in another backend's local buffers */
	if (RELATION_IS_OTHER_TEMP(rel))
	{
		relation_close(rel, mode);
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary tables of other sessions")));
	}
	return rel;
}

/*
 * May the current user see the key values kvlsm_levels and kvlsm_sstables
 * show for rel?  A kvlsm table's keys are row ids, which show no data.  A
 * kvlsm_idx index's keys are values of its table's columns: shown on the
 * terms of pg_stats, to roles that may SELECT the table or every key
 * column of the index (an expression needs the table), and not while
 * row-level security applies to the user on that table.
 */
static bool
may_see_keys(Relation rel)
{
	Oid			heapid;
	int			i;

	if (rel->rd_rel->relkind != RELKIND_INDEX)
		return true;
	heapid = rel->rd_index->indrelid;
	if (check_enable_rls(heapid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_class_aclcheck(heapid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (i = 0; i < rel->rd_index->indnkeyatts; i++)
	{
		AttrNumber	attnum = rel->rd_index->indkey.values[i];

		if (attnum == 0 ||
			pg_attribute_aclcheck(heapid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(kvlsm_flush_sql);
Datum
kvlsm_flush_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), RowExclusiveLock);

	kvlsm_flush_all(rel);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(kvlsm_compact_sql);
Datum
kvlsm_compact_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), RowExclusiveLock);

	kvlsm_compact_range(rel, NULL, 0, NULL, 0);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

/*
 * A bound of kvlsm_compact_range as an engine key: a row id for a table,
 * a value of the first key column for an index (a probe key that sorts
 * before, or after, every entry with that value).
 */
char *
kvlsm_range_key(Relation rel, text *bound, bool upper, int *keylen)
{
	char	   *str = text_to_cstring(bound);

	if (rel->rd_rel->relkind == RELKIND_INDEX)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), 0);
		Oid			typinput;
		Oid			typioparam;
		Datum		value;
		bool		isnull = false;

		getTypeInputInfo(att->atttypid, &typinput, &typioparam);
		value = OidInputFunctionCall(typinput, str, typioparam, att->atttypmod);
		return kvlsm_index_make_key(rel, upper ? KVLSM_IKEY_PROBE_HIGH : KVLSM_IKEY_PROBE_LOW,
									1, &value, &isnull, NULL, keylen);
	}
	else
	{
		int64		rowid = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(str)));
		char	   *key = palloc(8);

		if (rowid < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row id bound must not be negative: %s", str)));
		kvlsm_rowid_to_key((uint64) rowid, key);
		*keylen = 8;
		return key;
	}
}

/*
 * kvlsm_compact_range(rel, lower, upper): merge every SSTable holding keys
 * in [lower, upper] (NULL: unbounded) down into one level, dropping what
 * no snapshot needs, and wait for it.
 */
PG_FUNCTION_INFO_V1(kvlsm_compact_range_sql);
Datum
kvlsm_compact_range_sql(PG_FUNCTION_ARGS)
{
	Relation	rel;
	char	   *lower = NULL;
	char	   *upper = NULL;
	int			lowerlen = 0;
	int			upperlen = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	rel = kvlsm_open_relation(PG_GETARG_OID(0), RowExclusiveLock);
	if (!PG_ARGISNULL(1))
		lower = kvlsm_range_key(rel, PG_GETARG_TEXT_PP(1), false, &lowerlen);
	if (!PG_ARGISNULL(2))
		upper = kvlsm_range_key(rel, PG_GETARG_TEXT_PP(2), true, &upperlen);
	kvlsm_compact_range(rel, lower, lowerlen, upper, upperlen);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

/* the background workers: one row per worker slot */
PG_FUNCTION_INFO_V1(kvlsm_workers);
Datum
kvlsm_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KvlsmWorkerInfo info[64];
	int			n,
				i;

	InitMaterializedSRF(fcinfo, 0);
	n = kvlsm_worker_info(info, lengthof(info));
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {0};

		values[0] = Int32GetDatum(info[i].pid);
		values[1] = ObjectIdGetDatum(info[i].dbid);
		values[2] = BoolGetDatum(info[i].busy);
		values[3] = Int64GetDatum(info[i].jobs_done);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* a key as text: the row id of a table, the first key column of an index */
Datum
kvlsm_key_as_text(Relation rel, const char *key, int keylen)
{
	if (rel->rd_rel->relkind == RELKIND_INDEX)
	{
		IndexTuple	itup = kvlsm_index_key_tuple(key);
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d = index_getattr(itup, 1, desc, &isnull);
		Oid			typoutput;
		bool		varlena;

		if (isnull)
			return CStringGetTextDatum("NULL");
		getTypeOutputInfo(TupleDescAttr(desc, 0)->atttypid, &typoutput, &varlena);
		return CStringGetTextDatum(OidOutputFunctionCall(typoutput, d));
	}
	if (keylen != 8)
		return CStringGetTextDatum("?");
	return CStringGetTextDatum(psprintf(UINT64_FORMAT, kvlsm_key_to_rowid(key)));
}

/* one row per level: level, sstables, entries, pages, bytes; level -1 = memtables */
PG_FUNCTION_INFO_V1(kvlsm_levels);
Datum
kvlsm_levels(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = kvlsm_open_relation_if_exists(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy;
	KvlsmSstDesc *ssts;
	int			level;
	bool		show_keys;

	InitMaterializedSRF(fcinfo, 0);
	if (rel == NULL)
		return (Datum) 0;		/* dropped: no levels */
	copy = palloc(sizeof(KvlsmShared));
	show_keys = may_see_keys(rel);
	ssts = kvlsm_snapshot_state(rel, copy);
	{
		Datum		values[9];
		bool		nulls[9] = {0, 0, 0, 0, 0, 0, true, true, true};

		values[0] = CStringGetTextDatum("memtable");
		values[1] = Int32GetDatum(-1);
		values[2] = Int32GetDatum((copy->active.entries > 0) + (copy->frozen.genid != 0));
		values[3] = Int64GetDatum(copy->active.entries + copy->frozen.entries);
		values[4] = Int64GetDatum(0);
		values[5] = Int64GetDatum(copy->active.bytes + copy->frozen.bytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (level = 0; level < KVLSM_MAX_LEVELS; level++)
	{
		uint32		i;
		int			n = 0;
		int64		entries = 0,
					pages = 0,
					bytes = 0;
		Datum		values[9];
		bool		nulls[9] = {0};
		char	   *minkey = NULL,
				   *maxkey = NULL;
		int			minlen = 0,
					maxlen = 0;
		const KvlsmKeyOps *ops = kvlsm_keyops(rel);

		for (i = 0; i < copy->nsst; i++)
		{
			char	   *lo,
					   *hi;
			int			lolen,
						hilen;

			if (ssts[i].level != level)
				continue;
			n++;
			entries += ssts[i].nentries;
			pages += ssts[i].npages;
			bytes += ssts[i].nbytes;
			if (show_keys && kvlsm_sst_bounds(rel, &ssts[i], &lo, &lolen, &hi, &hilen))
			{
				if (minkey == NULL || ops->cmp(lo, lolen, minkey, minlen, ops->arg) < 0)
				{
					minkey = lo;
					minlen = lolen;
				}
				if (maxkey == NULL || ops->cmp(hi, hilen, maxkey, maxlen, ops->arg) > 0)
				{
					maxkey = hi;
					maxlen = hilen;
				}
			}
		}
		if (n == 0 && level > 1)
			continue;
		values[0] = CStringGetTextDatum(psprintf("L%d", level));
		values[1] = Int32GetDatum(level);
		values[2] = Int32GetDatum(n);
		values[3] = Int64GetDatum(entries);
		values[4] = Int64GetDatum(pages);
		values[5] = Int64GetDatum(bytes);
		if (level == 0 || level == KVLSM_MAX_LEVELS - 1 ||
			copy->compaction_style == KVLSM_COMPACTION_TIERED)
			nulls[6] = true;
		else
			values[6] = Int64GetDatum(kvlsm_level_target_bytes(copy->memtable_size, level));
		if (minkey)
			values[7] = kvlsm_key_as_text(rel, minkey, minlen);
		else
			nulls[7] = true;
		if (maxkey)
			values[8] = kvlsm_key_as_text(rel, maxkey, maxlen);
		else
			nulls[8] = true;
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
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	KvlsmSstDesc *ssts;
	uint32		i;
	bool		show_keys = may_see_keys(rel);

	InitMaterializedSRF(fcinfo, 0);
	ssts = kvlsm_snapshot_state(rel, copy);
	for (i = 0; i < copy->nsst; i++)
	{
		Datum		values[11];
		bool		nulls[11] = {0};
		KvlsmSstDesc *d = &ssts[i];
		char	   *lo,
				   *hi;
		int			lolen,
					hilen;

		/* a quarantined table's pages are not to be trusted, not even read */
		if (show_keys && d->level != KVLSM_LEVEL_QUARANTINE &&
			kvlsm_sst_bounds(rel, d, &lo, &lolen, &hi, &hilen))
		{
			values[7] = kvlsm_key_as_text(rel, lo, lolen);
			values[8] = kvlsm_key_as_text(rel, hi, hilen);
		}
		else
			nulls[7] = nulls[8] = true;
		values[9] = Int64GetDatum(d->nbytes);
		values[0] = Int64GetDatum(d->id);
		/*
		 * Level NULL: an output of a compaction that has not installed yet,
		 * or a table kvlsm_repair took out of service.
		 */
		if (d->level == KVLSM_LEVEL_PENDING)
			values[10] = CStringGetTextDatum("pending");
		else if (d->level == KVLSM_LEVEL_QUARANTINE)
			values[10] = CStringGetTextDatum("quarantined");
		else
			values[10] = CStringGetTextDatum("live");
		if (KvlsmSstIsLive(d))
			values[1] = Int32GetDatum(d->level);
		else
			nulls[1] = true;
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
	Relation	rel = kvlsm_open_relation_if_exists(PG_GETARG_OID(0), AccessShareLock);
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	KvlsmSstDesc *ssts;
	KvlsmMetaPageData meta;
	TupleDesc	tupdesc;
	Datum		values[45];
	bool		nulls[45] = {0};
	int			i = 0;
	uint64		written;
	uint64		level_bytes[KVLSM_MAX_LEVELS] = {0};
	uint64		total_bytes = 0;
	uint64		debt = 0;
	int			deepest = -1;
	uint32		k;

	if (rel == NULL)
		PG_RETURN_NULL();		/* dropped meanwhile, as pg_relation_size */
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	ssts = kvlsm_snapshot_state(rel, copy);
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
	/* "lz4", or "lz4, bottommost zstd:9" when the bottom level differs */
	if (meta.bottom_compression == KVLSM_BOTTOM_SAME ||
		meta.bottom_compression - 1 == meta.compression)
		values[i++] = CStringGetTextDatum(kvlsm_compression_spec_name(meta.compression));
	else
		values[i++] = CStringGetTextDatum(psprintf("%s, bottommost %s",
												   kvlsm_compression_spec_name(meta.compression),
												   kvlsm_compression_spec_name(meta.bottom_compression - 1)));
	values[i++] = Int64GetDatum(meta.memtable_size);
	values[i++] = CStringGetTextDatum(meta.compaction_style == KVLSM_COMPACTION_TIERED ?
									  "tiered" : "leveled");
	values[i++] = Int64GetDatum(copy->stats.flushes - copy->stats.foreground_flushes);
	values[i++] = Int64GetDatum(copy->stats.foreground_flushes);
	values[i++] = Int64GetDatum(copy->stats.compactions - copy->stats.foreground_compactions);
	values[i++] = Int64GetDatum(copy->stats.foreground_compactions);
	values[i++] = Int64GetDatum(copy->stats.compactions_abandoned);
	values[i++] = Int64GetDatum(copy->stats.compaction_bytes_read);
	values[i++] = Int64GetDatum(copy->stats.gc_records_dropped);
	values[i++] = Int64GetDatum(copy->stats.stalls);
	values[i++] = Int64GetDatum(copy->stats.slowdowns);
	values[i++] = Float8GetDatum((double) copy->stats.stall_usecs / 1000.0);
	{
		KvlsmShared *live = kvlsm_attach(rel);

		values[i++] = BoolGetDatum(live->compacting_pid != 0 || live->frozen.genid != 0 ||
								   live->flush_requested || kvlsm_compaction_needed(live));
		values[i++] = BoolGetDatum(live->compacting_pid != 0);
	}

	/*
	 * Compaction debt, as RocksDB estimates it: the bytes of L0 once it has
	 * reached the compaction trigger, plus what each deeper level holds
	 * beyond its target (leveled).  Space amplification: all SSTable bytes
	 * over those of the deepest level, which holds one version of each key.
	 */
	for (k = 0; k < copy->nsst; k++)
	{
		if (!KvlsmSstIsLive(&ssts[k]) || ssts[k].level >= KVLSM_MAX_LEVELS)
			continue;
		level_bytes[ssts[k].level] += ssts[k].nbytes;
		total_bytes += ssts[k].nbytes;
		deepest = Max(deepest, (int) ssts[k].level);
	}
	if ((int) copy->nl0 >= kvlsm_l0_compaction_trigger)
		debt += level_bytes[0];
	if (copy->compaction_style != KVLSM_COMPACTION_TIERED)
	{
		int			l;

		for (l = 1; l < deepest; l++)
		{
			uint64		target = kvlsm_level_target_bytes(copy->memtable_size, l);

			if (level_bytes[l] > target)
				debt += level_bytes[l] - target;
		}
	}
	values[i++] = Int64GetDatum(debt);
	if (deepest >= 0 && level_bytes[deepest] > 0)
		values[i++] = Float8GetDatum((double) total_bytes / (double) level_bytes[deepest]);
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum(copy->stats.bloom_false_positives);
	if (copy->stats.point_lookups > 0)
		values[i++] = Float8GetDatum((double) copy->stats.sst_probes / (double) copy->stats.point_lookups);
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum(copy->stats.wal_bytes);
	values[i++] = Int64GetDatum(copy->stats.pages_reclaimed);
	if (copy->stats.reset_at != 0)
		values[i++] = TimestampTzGetDatum(copy->stats.reset_at);
	else
		nulls[i++] = true;
	/* log written but not yet flushed into SSTables: what a crash replays */
	values[i++] = Int64GetDatum(((int64) meta.active.npages +
								 (meta.frozen.genid != 0 ? meta.frozen.npages : 0)) * BLCKSZ);
	values[i++] = Int64GetDatum(copy->stats.ttl_rows_dropped);
	values[i++] = Int32GetDatum(copy->job_queued ? 1 : 0);
	Assert(i == lengthof(values));
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

/*
 * kvlsm_space(rel): where the relation's pages go.  Unreferenced pages are
 * those nothing in the metapage or the manifest refers to: leaked by a
 * crash until the first flush after startup sweeps them (or, briefly, a
 * log page being added).
 */
PG_FUNCTION_INFO_V1(kvlsm_space);
Datum
kvlsm_space(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation_if_exists(PG_GETARG_OID(0), AccessShareLock);
	KvlsmMetaPageData meta;
	KvlsmManifestCopy *mc = palloc(sizeof(KvlsmManifestCopy));
	KvlsmShared *copy = palloc(sizeof(KvlsmShared));
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11] = {0};
	int64		total,
				live = 0,
				pending = 0,
				quarantined = 0,
				freep = 0,
				logp,
				reserve,
				unref;
	uint32		i;
	int			attempt;

	if (rel == NULL)
		PG_RETURN_NULL();		/* dropped meanwhile, as pg_relation_size */
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pfree(kvlsm_snapshot_state(rel, copy));
	for (attempt = 0;; attempt++)
	{
		total = RelationGetNumberOfBlocks(rel);
		kvlsm_read_metapage(rel, &meta);
		kvlsm_manifest_read(rel, &meta, mc);
		if (mc->hdr.version == meta.manifest_version || attempt > 100)
			break;
	}
	for (i = 0; i < mc->hdr.nsst; i++)
	{
		if (mc->sst[i].level == KVLSM_LEVEL_PENDING)
			pending += mc->sst[i].npages;
		else if (mc->sst[i].level == KVLSM_LEVEL_QUARANTINE)
			quarantined += mc->sst[i].npages;
		else
			live += mc->sst[i].npages;
	}
	for (i = 0; i < mc->hdr.nfree; i++)
		freep += mc->free[i].npages;
	logp = (int64) meta.active.npages + (meta.frozen.genid != 0 ? meta.frozen.npages : 0);
	reserve = meta.log_reserve_npages;
	unref = total - KVLSM_FIRST_DATA_BLKNO - live - pending - quarantined - freep - logp -
		reserve - mc->hdr.cont_npages;

	values[0] = Int64GetDatum(total);
	values[1] = Int64GetDatum(live);
	values[2] = Int64GetDatum(pending);
	values[3] = Int64GetDatum(quarantined);
	values[4] = Int64GetDatum(freep);
	values[5] = Int64GetDatum(logp);
	values[6] = Int64GetDatum(reserve);
	values[7] = Int64GetDatum(Max(unref, 0));
	values[8] = Int64GetDatum(copy->stats.pages_reclaimed);
	values[9] = Int32GetDatum((int32) meta.manifest_blkno);
	values[10] = Int64GetDatum((int64) mc->hdr.cont_npages);
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * kvlsm_stats_reset(rel): zero the relation's counters, in shared memory
 * and in the metapage.
 */
PG_FUNCTION_INFO_V1(kvlsm_stats_reset);
Datum
kvlsm_stats_reset(PG_FUNCTION_ARGS)
{
	Relation	rel = kvlsm_open_relation(PG_GETARG_OID(0), RowExclusiveLock);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot reset kvlsm statistics during recovery"),
				 errhint("Reset them on the primary; the reset replicates.")));
	kvlsm_reset_counters(rel);
	relation_close(rel, RowExclusiveLock);
	PG_RETURN_VOID();
}

/* the recent compactions of this database, oldest first */
PG_FUNCTION_INFO_V1(kvlsm_compaction_history);
Datum
kvlsm_compaction_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KvlsmCompactionRecord *recs = palloc(sizeof(KvlsmCompactionRecord) * KVLSM_HISTORY_SIZE);
	int			n = kvlsm_history_copy(recs);
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < n; i++)
	{
		KvlsmCompactionRecord *r = &recs[i];
		Datum		values[15];
		bool		nulls[15] = {0};

		if (r->dbid != MyDatabaseId)
			continue;
		values[0] = ObjectIdGetDatum(r->relid);
		values[1] = TimestampTzGetDatum(r->started_at);
		values[2] = Float8GetDatum((double) (r->ended_at - r->started_at) / 1000.0);
		values[3] = Int32GetDatum(r->from_level);
		values[4] = Int32GetDatum(r->to_level);
		values[5] = Int32GetDatum(r->ninputs);
		values[6] = Int32GetDatum(r->noutputs);
		values[7] = Int64GetDatum(r->bytes_in);
		values[8] = Int64GetDatum(r->bytes_out);
		values[9] = Int64GetDatum(r->records_in);
		values[10] = Int64GetDatum(r->records_dropped);
		values[11] = BoolGetDatum(r->bottommost);
		values[12] = BoolGetDatum(r->freeze);
		values[13] = BoolGetDatum(r->worker);
		values[14] = BoolGetDatum(r->abandoned);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(recs);
	return (Datum) 0;
}
