/*-------------------------------------------------------------------------
 *
 * options.c
 *	  Per-relation options for kvlsm tables: CREATE TABLE ... USING kvlsm
 *	  WITH (...), ALTER TABLE ... SET (...) and kvlsm_set_option(); the
 *	  utility and object-access hooks (see ddl.h).
 *
 * PostgreSQL 15 parses every table's WITH (...) with heap_reloptions, and
 * registering extra heap reloptions would break plain CREATE TABLE.  So a
 * ProcessUtility hook takes kvlsm's own options out of those statements
 * (unknown ones stay and get PostgreSQL's usual error), validates them, and
 * stores them in the relation's metapage.  Also refuses index kinds that
 * only work through bitmap scans (GIN, BRIN) on kvlsm tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "common/int.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "datatype/timestamp.h"
#include "utils/timestamp.h"
#include "catalog/pg_am.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/tablecmds.h"
#include "commands/tablespace.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "catalog/pg_type.h"
#include "catalog/pg_extension.h"
#include "catalog/indexing.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "access/htup_details.h"
#include "nodes/makefuncs.h"
#include "tcop/utility.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvlsm/compress.h"
#include "kvlsm/kvlsm.h"
#include "kvlsm/ddl.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/worker.h"
#include "kvlsm/lsm.h"
#include "kvlsm/table.h"
#include "kvlsm/index.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

typedef struct KvlsmOptions
{
	int32		compression;	/* -1: not given */
	int64		memtable_size;	/* 0: not given */
	int32		compaction_style;	/* -1: not given */
	int64		ttl_usecs;		/* -1: not given; 0: none */
	int32		bloom_bits;		/* -1: not given; -2: default (the GUC) */
	int32		bottom_compression; /* -1: not given; else KVLSM_BOTTOM_SAME
									 * or a spec + 1 (compress.h) */
} KvlsmOptions;

static bool
is_kvlsm_option(const char *name)
{
	return strcmp(name, "compression") == 0 ||
		strcmp(name, "bottommost_compression") == 0 || strcmp(name, "memtable_size") == 0 ||
		strcmp(name, "compaction_style") == 0 || strcmp(name, "ttl") == 0 ||
		strcmp(name, "bloom_bits_per_key") == 0;
}

/*
 * The ttl option: a non-negative interval of at most KVLSM_MAX_TTL_USECS.
 * A row's end of life is its transaction's start plus the ttl, so the
 * bound keeps that sum a valid timestamp for any time PostgreSQL can
 * represent today (an overflowing sum would be negative and hide every new
 * row at once).  Months count as 30 days, as interval arithmetic does.
 */
static int64
parse_ttl(const char *value)
{
	Interval   *iv;
	int64		usecs;
	int64		days;

	/* a malformed interval gets interval_in's own error */
	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(value),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
	if (iv->month < 0 || iv->day < 0 || iv->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for kvlsm option \"ttl\": \"%s\"", value),
				 errdetail("No part of the interval may be negative."),
				 errhint("Give a non-negative interval, for example '7 days'; 0 means no TTL.")));
	days = (int64) iv->month * DAYS_PER_MONTH + iv->day;
	if (pg_mul_s64_overflow(days, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, iv->time, &usecs) ||
		usecs > KVLSM_MAX_TTL_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for kvlsm option \"ttl\": \"%s\"", value),
				 errdetail("The ttl may be at most %d years.", KVLSM_MAX_TTL_YEARS)));
	return usecs;
}

static void
parse_option(KvlsmOptions *opts, const char *name, const char *value)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm option \"%s\" needs a value", name)));
	if (strcmp(name, "compression") == 0)
	{
		char	   *problem;

		if (!kvlsm_compression_parse(value, &opts->compression, &problem))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"compression\": \"%s\"", value),
					 errdetail("%s", problem)));
	}
	else if (strcmp(name, "bottommost_compression") == 0)
	{
		int32		spec;
		char	   *problem;

		if (pg_strcasecmp(value, "same") == 0)
			opts->bottom_compression = KVLSM_BOTTOM_SAME;
		else if (kvlsm_compression_parse(value, &spec, &problem))
			opts->bottom_compression = spec + 1;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"bottommost_compression\": \"%s\"", value),
					 errdetail("%s", problem),
					 errhint("\"same\" compresses the bottom level as the option compression says.")));
	}
	else if (strcmp(name, "memtable_size") == 0)
	{
		int			kb;
		const char *hint;

		if (!parse_int(value, &kb, GUC_UNIT_KB, &hint) || kb < 64 || kb > 1024 * 1024)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"memtable_size\": \"%s\"", value),
					 errhint("Give a size between 64kB and 1GB, for example '64MB'.")));
		opts->memtable_size = (int64) kb * 1024;
	}
	else if (strcmp(name, "ttl") == 0)
		opts->ttl_usecs = parse_ttl(value);
	else if (strcmp(name, "bloom_bits_per_key") == 0)
	{
		int			bits;

		if (pg_strcasecmp(value, "default") == 0)
			opts->bloom_bits = -2;
		else if (parse_int(value, &bits, 0, NULL) && bits >= 0 && bits <= 64)
			opts->bloom_bits = bits;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"bloom_bits_per_key\": \"%s\"", value),
					 errhint("Give an integer between 0 (no bloom filters) and 64, or \"default\" for kvlsm.bloom_bits_per_key.")));
	}
	else if (strcmp(name, "compaction_style") == 0)
	{
		if (pg_strcasecmp(value, "leveled") == 0)
			opts->compaction_style = KVLSM_COMPACTION_LEVELED;
		else if (pg_strcasecmp(value, "tiered") == 0)
			opts->compaction_style = KVLSM_COMPACTION_TIERED;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"compaction_style\": \"%s\"", value),
					 errhint("Valid values are \"leveled\" and \"tiered\".")));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized kvlsm option \"%s\"", name)));
}

/* options for a kvlsm_idx index: only those of its LSM, none of a table's */
static void
refuse_table_options(const KvlsmOptions *opts)
{
	if (opts->compression >= 0 || opts->bottom_compression >= 0 ||
		opts->memtable_size > 0 || opts->ttl_usecs >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm_idx indexes take only the options compaction_style and bloom_bits_per_key")));
}

/* take kvlsm's options out of a reloption list; returns the remainder */
static List *
extract_options(List *defs, KvlsmOptions *opts, bool *found)
{
	List	   *rest = NIL;
	ListCell   *lc;

	List	   *seen = NIL;

	*found = false;
	foreach(lc, defs)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (def->defnamespace == NULL && is_kvlsm_option(def->defname))
		{
			/* PostgreSQL's own reloption parser refuses repeats too */
			if (list_member(seen, makeString(def->defname)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("parameter \"%s\" specified more than once", def->defname)));
			seen = lappend(seen, makeString(def->defname));
			parse_option(opts, def->defname, def->arg ? defGetString(def) : NULL);
			*found = true;
		}
		else
			rest = lappend(rest, def);
	}
	return rest;
}

/*
 * Relations created by the statement being run (OAT_POST_CREATE), for
 * statements that carry kvlsm options: CREATE TABLE, CREATE TABLE AS and
 * CREATE INDEX.  Options go to the relations the statement really created,
 * never to one that already existed (IF NOT EXISTS) or that a nested
 * statement made.
 */
static bool capture_created = false;
static List *relations_created = NIL;

/*
 * The option catalog kvlsm_options belongs to the extension.  It is read
 * and changed here with heap and index access in C, not with SQL: nothing a
 * caller can name or shadow (search_path, temporary objects, functions,
 * operators) is involved, no privilege is raised, and the catalog's
 * trigger does not fire for these changes.  Returns InvalidOid when the
 * extension or its catalog is not there (DROP EXTENSION ... CASCADE may
 * drop the catalog before the tables).
 */
static Oid
options_catalog_oid(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("kvlsm_options", nsp);
}

/* the catalog's columns, as kvlsm's script creates them */
#define Natts_kvlsm_options			3
#define Anum_kvlsm_options_relid	1
#define Anum_kvlsm_options_name		2
#define Anum_kvlsm_options_value	3

static bool
options_catalog_shape_ok(TupleDesc desc)
{
	static const Oid types[Natts_kvlsm_options] = {REGCLASSOID, TEXTOID, TEXTOID};
	int			i;

	if (desc->natts != Natts_kvlsm_options)
		return false;
	for (i = 0; i < Natts_kvlsm_options; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i])
			return false;
	}
	return true;
}

static void
check_options_catalog_shape(Relation cat)
{
	if (!options_catalog_shape_ok(RelationGetDescr(cat)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kvlsm's option catalog \"%s\" has been altered",
						RelationGetRelationName(cat)),
				 errdetail("Expected the columns relid regclass, name text, value text.")));
}

/*
 * Set the row (relid, name) of the option catalog to value, or, with name
 * NULL, delete every row of relid.  The caller holds AccessExclusiveLock on
 * relid (or is dropping it), so no other session changes these rows
 * meanwhile; the latest snapshot sees what the last one committed.
 */
static void
change_option_rows(Oid relid, const char *name, const char *value)
{
	Oid			catoid = options_catalog_oid();
	Relation	cat;
	TupleDesc	desc;
	Oid			pkindex;
	ScanKeyData key;
	SysScanDesc scan;
	Snapshot	snapshot;
	HeapTuple	tup;
	Datum		values[Natts_kvlsm_options];
	bool		nulls[Natts_kvlsm_options] = {0};
	bool		replaced = false;

	if (!OidIsValid(catoid))
	{
		if (name == NULL)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("kvlsm's option catalog kvlsm_options does not exist"),
				 errhint("Install the extension in this database with CREATE EXTENSION kvlsm.")));
	}
	cat = table_open(catoid, RowExclusiveLock);
	check_options_catalog_shape(cat);
	desc = RelationGetDescr(cat);
	values[Anum_kvlsm_options_relid - 1] = ObjectIdGetDatum(relid);
	if (name != NULL)
	{
		values[Anum_kvlsm_options_name - 1] = CStringGetTextDatum(name);
		values[Anum_kvlsm_options_value - 1] = CStringGetTextDatum(value);
	}

	/* the primary key (relid, name) leads with relid: oid equality only */
	pkindex = RelationGetPrimaryKeyIndex(cat);
	ScanKeyInit(&key, Anum_kvlsm_options_relid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(cat, pkindex, OidIsValid(pkindex), snapshot, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		rowname = heap_getattr(tup, Anum_kvlsm_options_name, desc, &isnull);

		if (name == NULL)
			CatalogTupleDelete(cat, &tup->t_self);
		else if (!isnull && strcmp(TextDatumGetCString(rowname), name) == 0)
		{
			CatalogTupleUpdate(cat, &tup->t_self, heap_form_tuple(desc, values, nulls));
			replaced = true;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	if (name != NULL && !replaced)
		CatalogTupleInsert(cat, heap_form_tuple(desc, values, nulls));
	table_close(cat, RowExclusiveLock);
	/* a later change in this command sees this one */
	CommandCounterIncrement();
}

/*
 * Record an option in the extension's catalog kvlsm_options, which
 * pg_dump keeps (pg_extension_config_dump): on restore its rows are
 * inserted again and the trigger puts them back into the metapage.
 */
static void
record_option(Relation rel, const char *name, const char *value)
{
	change_option_rows(RelationGetRelid(rel), name, value);
}

static Interval *
usecs_interval(int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->day = usecs / USECS_PER_DAY;
	iv->time = usecs % USECS_PER_DAY;
	return iv;
}

/*
 * Rows of a TTL table vanish without a DELETE, so no foreign key check or
 * action would run: a table referenced by a foreign key cannot have a TTL,
 * and no foreign key may reference a table that has one.
 */
static void
refuse_if_referenced(Relation rel)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup;
	bool		referenced = false;
	char	   *conname = NULL;

	scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

		if (con->contype == CONSTRAINT_FOREIGN && con->confrelid == RelationGetRelid(rel))
		{
			referenced = true;
			conname = pstrdup(NameStr(con->conname));
			break;
		}
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	if (referenced)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("kvlsm table \"%s\" is referenced by foreign key \"%s\" and cannot have a ttl",
						RelationGetRelationName(rel), conname),
				 errdetail("Rows whose TTL ends disappear without a DELETE, so foreign keys could not be enforced.")));
}

static int64 effective_ttl(Relation rel);

/* a foreign key being created must not reference a kvlsm table with a TTL */
static void
refuse_fk_to_ttl_table(Constraint *con)
{
	Relation	pk;

	if (con->contype != CONSTR_FOREIGN || con->pktable == NULL)
		return;
	pk = relation_openrv_extended(con->pktable, AccessShareLock, true);
	if (pk == NULL)
		return;
	if (kvlsm_is_kvlsm_relation(pk) && effective_ttl(pk) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign keys cannot reference kvlsm table \"%s\", which has a ttl",
						RelationGetRelationName(pk)),
				 errdetail("Rows whose TTL ends disappear without a DELETE, so foreign keys could not be enforced.")));
	relation_close(pk, AccessShareLock);
}

static void
refuse_fks_in(List *elts)
{
	ListCell   *lc;

	foreach(lc, elts)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, Constraint))
			refuse_fk_to_ttl_table((Constraint *) n);
		else if (IsA(n, ColumnDef))
		{
			ListCell   *lc2;

			foreach(lc2, ((ColumnDef *) n)->constraints)
				refuse_fk_to_ttl_table(lfirst_node(Constraint, lc2));
		}
	}
}

/*
 * Options reach the metapage (and the shared entry) through WAL records of
 * their own, which a rollback does not undo; the catalog kvlsm_options is
 * transactional.  So the metapage is changed only when the change commits:
 * at pre-commit (and pre-prepare), from this list, which a (sub)transaction
 * abort trims.  A relation whose storage this transaction made (CREATE
 * TABLE, TRUNCATE, a rewrite) takes its options at once: an abort drops
 * that storage, and rows written later in the same transaction must see
 * them (a ttl, the compression).  The window left is a crash between the
 * pre-commit records and the commit record.
 */
typedef struct PendingOptions
{
	Oid			relid;
	int			nestlevel;
	KvlsmOptions opts;
} PendingOptions;

static List *pending_options = NIL;		/* in TopTransactionContext */

static void
store_options(Relation rel, const KvlsmOptions *opts)
{
	if (opts->compression >= 0 || opts->bottom_compression >= 0 ||
		opts->memtable_size > 0 || opts->compaction_style >= 0)
		kvlsm_store_options(rel, opts->compression, opts->bottom_compression,
							opts->memtable_size, opts->compaction_style);
	if (opts->bloom_bits != -1)
		kvlsm_store_bloom_bits(rel, opts->bloom_bits == -2 ? 0 : opts->bloom_bits + 1);
	if (opts->ttl_usecs >= 0)
		kvlsm_store_ttl(rel, opts->ttl_usecs);
}

static void
store_at_commit(Relation rel, const KvlsmOptions *opts)
{
	MemoryContext old;
	PendingOptions *p;

	if (rel->rd_createSubid != InvalidSubTransactionId ||
		rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId)
	{
		store_options(rel, opts);
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingOptions));
	p->relid = RelationGetRelid(rel);
	p->nestlevel = GetCurrentTransactionNestLevel();
	p->opts = *opts;
	pending_options = lappend(pending_options, p);
	MemoryContextSwitchTo(old);
}

/* pre-commit: the changes this transaction made, in their order */
static void
store_pending_options(void)
{
	ListCell   *lc;

	foreach(lc, pending_options)
	{
		PendingOptions *p = lfirst(lc);
		/* the lock ALTER took is still held; dropped since: nothing to do */
		Relation	rel = try_relation_open(p->relid, AccessExclusiveLock);

		if (rel == NULL)
			continue;
		store_options(rel, &p->opts);
		relation_close(rel, NoLock);
	}
	pending_options = NIL;
}

/* the ttl of a kvlsm table as this transaction will commit it */
static int64
effective_ttl(Relation rel)
{
	int64		ttl = kvlsm_attach(rel)->ttl_usecs;
	ListCell   *lc;

	foreach(lc, pending_options)
	{
		PendingOptions *p = lfirst(lc);

		if (p->relid == RelationGetRelid(rel) && p->opts.ttl_usecs >= 0)
			ttl = p->opts.ttl_usecs;
	}
	return ttl;
}

static void
options_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			store_pending_options();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the list lived in TopTransactionContext, which is gone */
			pending_options = NIL;
			break;
		default:
			break;
	}
}

static void
options_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending_options)
	{
		PendingOptions *p = lfirst(lc);

		if (p->nestlevel < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			p->nestlevel = level - 1;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
			pending_options = foreach_delete_current(pending_options, lc);
	}
}

static const char *
compaction_style_name(int32 style)
{
	return style == KVLSM_COMPACTION_TIERED ? "tiered" : "leveled";
}

/*
 * Options for a relation the caller has locked AccessExclusive and may
 * change: everything is checked before anything is recorded, then the
 * catalog rows are written (transactional) and the metapage is changed
 * when the transaction commits.
 */
static void
apply_options(Relation rel, KvlsmOptions *opts)
{
	if (kvlsm_is_kvlsm_index(rel))
		refuse_table_options(opts);
	else if (!kvlsm_is_kvlsm_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvlsm table", RelationGetRelationName(rel)),
				 errdetail("Options compression, bottommost_compression and memtable_size apply to kvlsm tables only.")));
	else if (opts->ttl_usecs > 0)
		refuse_if_referenced(rel);

	if (opts->compression >= 0)
		record_option(rel, "compression",
					  kvlsm_compression_spec_name(opts->compression));
	if (opts->bottom_compression >= 0)
		record_option(rel, "bottommost_compression",
					  opts->bottom_compression == KVLSM_BOTTOM_SAME ? "same" :
					  kvlsm_compression_spec_name(opts->bottom_compression - 1));
	if (opts->memtable_size > 0)
		record_option(rel, "memtable_size",
					  psprintf("%lldkB", (long long) (opts->memtable_size / 1024)));
	if (opts->compaction_style >= 0)
		record_option(rel, "compaction_style", compaction_style_name(opts->compaction_style));
	if (opts->bloom_bits != -1)
		record_option(rel, "bloom_bits_per_key",
					  opts->bloom_bits == -2 ? "default" : psprintf("%d", opts->bloom_bits));
	if (opts->ttl_usecs >= 0)
		record_option(rel, "ttl", opts->ttl_usecs == 0 ? "0" :
					  DatumGetCString(DirectFunctionCall1(interval_out,
														  IntervalPGetDatum(usecs_interval(opts->ttl_usecs)))));
	store_at_commit(rel, opts);
}

/*
 * Before any lock is taken on relid: it exists, the current user owns it
 * (as ALTER TABLE requires), and it can take these options.  Checking
 * first means nobody can queue an AccessExclusiveLock on a relation they
 * may not change, which would stall every later session behind a long
 * reader (as RangeVarCallbackOwnsRelation does for DDL).
 */
static void
check_option_target(Oid relid, const KvlsmOptions *opts)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	char	   *amname = NULL;
	char		relkind;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	form = (Form_pg_class) GETSTRUCT(tup);
	relkind = form->relkind;
	if (OidIsValid(form->relam))
		amname = get_am_name(form->relam);
	ReleaseSysCache(tup);

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), get_rel_name(relid));

	if (relkind == RELKIND_INDEX && amname != NULL && strcmp(amname, "kvlsm_idx") == 0)
	{
		refuse_table_options(opts);
		return;
	}
	if ((relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW) &&
		amname != NULL && strcmp(amname, "kvlsm") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a kvlsm table", get_rel_name(relid)),
			 errdetail("kvlsm options apply to kvlsm tables and, for compaction_style and bloom_bits_per_key, kvlsm_idx indexes.")));
}

/*
 * Open relid to change its options: checked, then locked, then the owner
 * checked again (it may have changed while this session waited).
 */
static Relation
open_option_target(Oid relid, const KvlsmOptions *opts)
{
	Relation	rel;

	check_option_target(relid, opts);
	rel = try_relation_open(relid, AccessExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	return rel;
}

/* RangeVarGetRelidExtended callback: check_option_target before the lock */
static void
option_target_callback(const RangeVar *relation, Oid relId, Oid oldRelId, void *arg)
{
	if (!OidIsValid(relId))
		return;
	/* PostgreSQL's own refusals first: system catalogs, ownership */
	RangeVarCallbackOwnsRelation(relation, relId, oldRelId, NULL);
	check_option_target(relId, (const KvlsmOptions *) arg);
}

/*
 * Apply options to the relation a RangeVar names (ALTER TABLE ... SET).
 * A missing relation with IF EXISTS is skipped with PostgreSQL's notice,
 * unless PostgreSQL's own processing of the statement gave it already.
 */
static void
apply_options_to_rangevar(RangeVar *target, bool missing_ok, bool notice_if_missing,
						  KvlsmOptions *opts)
{
	Oid			relid;
	Relation	rel;

	relid = RangeVarGetRelidExtended(target, AccessExclusiveLock,
									 missing_ok ? RVR_MISSING_OK : 0,
									 option_target_callback, opts);
	if (!OidIsValid(relid))
	{
		if (notice_if_missing)
			ereport(NOTICE,
					(errmsg("relation \"%s\" does not exist, skipping", target->relname)));
		return;
	}
	rel = relation_open(relid, NoLock);
	apply_options(rel, opts);
	relation_close(rel, NoLock);
}

/*
 * AFTER INSERT OR UPDATE trigger on kvlsm_options: a restored dump (or an
 * administrator's INSERT) puts the options back into the metapage.  It
 * works on that catalog only, and only for relations the current user
 * owns; kvlsm's own changes of the catalog do not fire it.
 */
PG_FUNCTION_INFO_V1(kvlsm_options_trigger);

Datum
kvlsm_options_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull[Natts_kvlsm_options];
	Datum		relid;
	Datum		name;
	Datum		value;
	KvlsmOptions opts = {-1, 0, -1, -1, -1, -1};
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("kvlsm_options_trigger() was not called by the trigger manager")));
	if (RelationGetRelid(trigdata->tg_relation) != options_catalog_oid() ||
		!options_catalog_shape_ok(RelationGetDescr(trigdata->tg_relation)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("kvlsm_options_trigger() fires only on kvlsm's option catalog kvlsm_options"),
				 errdetail("It was fired on \"%s\".",
						   RelationGetRelationName(trigdata->tg_relation))));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("kvlsm_options_trigger() must be an AFTER INSERT OR UPDATE row trigger")));
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	relid = heap_getattr(tuple, Anum_kvlsm_options_relid, desc, &isnull[0]);
	name = heap_getattr(tuple, Anum_kvlsm_options_name, desc, &isnull[1]);
	value = heap_getattr(tuple, Anum_kvlsm_options_value, desc, &isnull[2]);
	if (isnull[0] || isnull[1] || isnull[2])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("a row of kvlsm_options needs relid, name and value")));
	if (!is_kvlsm_option(TextDatumGetCString(name)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized kvlsm option \"%s\"", TextDatumGetCString(name))));
	parse_option(&opts, TextDatumGetCString(name), TextDatumGetCString(value));
	rel = open_option_target(DatumGetObjectId(relid), &opts);
	if (opts.ttl_usecs > 0 && !kvlsm_is_kvlsm_index(rel))
		refuse_if_referenced(rel);
	store_at_commit(rel, &opts);
	relation_close(rel, NoLock);
	return PointerGetDatum(tuple);
}

/* forget the options of a dropped relation */
static void
forget_options(Oid relid)
{
	change_option_rows(relid, NULL, NULL);
}

/* does a CREATE TABLE (AS) with access method 'am' make a kvlsm table? */
static bool
creates_kvlsm(const char *am)
{
	if (am == NULL)
		am = default_table_access_method;
	return am != NULL && strcmp(am, "kvlsm") == 0;
}

static void
refuse_options_without_kvlsm(const char *am)
{
	if (!creates_kvlsm(am))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kvlsm options (compression, bottommost_compression, memtable_size, compaction_style, ttl, bloom_bits_per_key) need USING kvlsm")));
}

/*
 * ALTER ... SET TABLESPACE copies a relation's pages: kvlsm tables through
 * the table AM's relation_copy_data, indexes (kvlsm_idx too) through core's
 * index_copy_data, which knows nothing of kvlsm.  Records this backend still
 * holds in memory (deferred index entries, log records not yet written)
 * would later go to the old filenode, which is dropped at commit, so they
 * are put on the pages before the copy.  A kvlsm_idx index that really
 * moves leaves the old filenode's shared state to be released at commit
 * (kvlsm tables do that in relation_copy_data).
 */
static void
prepare_tablespace_move(AlterTableStmt *stmt, AlterTableCmd *cmd)
{
	Oid			relid;
	Relation	rel;
	Oid			newts;

	kvlsm_log_write_all_pending();
	if (stmt->objtype != OBJECT_INDEX || cmd == NULL)
		return;
	/* the lock ALTER INDEX ... SET TABLESPACE takes itself, owner checked first */
	relid = RangeVarGetRelidExtended(stmt->relation, AccessExclusiveLock,
									 stmt->missing_ok ? RVR_MISSING_OK : 0,
									 RangeVarCallbackOwnsRelation, NULL);
	if (!OidIsValid(relid))
		return;
	rel = relation_open(relid, NoLock);
	newts = get_tablespace_oid(cmd->name, false);
	if (newts == MyDatabaseTableSpace)
		newts = InvalidOid;
	if (kvlsm_is_kvlsm_index(rel) && rel->rd_rel->relkind == RELKIND_INDEX &&
		newts != rel->rd_rel->reltablespace)
		kvlsm_schedule_release(rel, NULL, true);
	relation_close(rel, NoLock);
}

/*
 * The database a statement needs free of other sessions (kvlsm workers
 * included, see kvlsm_workers_exclude_database), or InvalidOid.
 */
static Oid
database_needing_exclusion(Node *parsetree, bool *dropping)
{
	ListCell   *lc;

	*dropping = false;
	if (IsA(parsetree, DropdbStmt))
	{
		*dropping = true;
		return get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
	}
	if (IsA(parsetree, RenameStmt) &&
		((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		return get_database_oid(((RenameStmt *) parsetree)->subname, true);
	if (IsA(parsetree, AlterDatabaseStmt))
	{
		AlterDatabaseStmt *stmt = (AlterDatabaseStmt *) parsetree;

		foreach(lc, stmt->options)
			if (strcmp(lfirst_node(DefElem, lc)->defname, "tablespace") == 0)
				return get_database_oid(stmt->dbname, true);
	}
	if (IsA(parsetree, CreatedbStmt))
	{
		foreach(lc, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *d = lfirst_node(DefElem, lc);

			if (strcmp(d->defname, "template") == 0 && d->arg != NULL)
				return get_database_oid(defGetString(d), true);
		}
	}
	return InvalidOid;
}

/*
 * A statement whose parse tree the hook changes: copied first when the
 * caller's tree is read-only (a cached plan's).
 */
typedef struct UtilityCall
{
	PlannedStmt *pstmt;
	bool		readOnlyTree;
	KvlsmOptions opts;
	bool		found;			/* kvlsm options were taken out */
	RangeVar   *target;			/* CREATE TABLE (AS): the relation made */
} UtilityCall;

static Node *
writable_parsetree(UtilityCall *call)
{
	if (call->readOnlyTree)
	{
		call->pstmt = copyObject(call->pstmt);
		call->readOnlyTree = false;
	}
	return call->pstmt->utilityStmt;
}

/* CREATE TABLE ... USING kvlsm WITH (kvlsm options) */
static void
prepare_create(UtilityCall *call)
{
	CreateStmt *stmt = (CreateStmt *) call->pstmt->utilityStmt;
	List	   *rest;

	refuse_fks_in(stmt->tableElts);
	rest = extract_options(stmt->options, &call->opts, &call->found);
	if (!call->found)
		return;
	refuse_options_without_kvlsm(stmt->accessMethod);
	stmt = (CreateStmt *) writable_parsetree(call);
	stmt->options = rest;
	call->target = stmt->relation;
}

/* CREATE TABLE / MATERIALIZED VIEW ... USING kvlsm WITH (...) AS ... */
static void
prepare_create_as(UtilityCall *call)
{
	CreateTableAsStmt *stmt = (CreateTableAsStmt *) call->pstmt->utilityStmt;
	List	   *rest;

	if (stmt->into == NULL)
		return;
	rest = extract_options(stmt->into->options, &call->opts, &call->found);
	if (!call->found)
		return;
	refuse_options_without_kvlsm(stmt->into->accessMethod);
	stmt = (CreateTableAsStmt *) writable_parsetree(call);
	stmt->into->options = rest;
	call->target = stmt->into->rel;
}

/* RESET (option): back to the default */
static void
reset_option(KvlsmOptions *opts, const char *name)
{
	if (strcmp(name, "compression") == 0)
		opts->compression = kvlsm_default_compression;
	else if (strcmp(name, "bottommost_compression") == 0)
		opts->bottom_compression = kvlsm_default_bottom_compression;
	else if (strcmp(name, "compaction_style") == 0)
		opts->compaction_style = KVLSM_COMPACTION_LEVELED;
	else if (strcmp(name, "ttl") == 0)
		opts->ttl_usecs = 0;
	else if (strcmp(name, "bloom_bits_per_key") == 0)
		opts->bloom_bits = -2;
	else
		opts->memtable_size = (int64) kvlsm_default_memtable_size_kb * 1024;
}

static bool
has_kvlsm_option(List *defs)
{
	ListCell   *lc;

	foreach(lc, defs)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (d->defnamespace == NULL && is_kvlsm_option(d->defname))
			return true;
	}
	return false;
}

/*
 * ALTER TABLE/INDEX/MATERIALIZED VIEW ... SET/RESET (kvlsm options): they
 * are taken out of the statement.  Returns true when nothing else is left
 * and the options were applied here.
 */
static bool
prepare_alter(UtilityCall *call)
{
	AlterTableStmt *stmt = (AlterTableStmt *) call->pstmt->utilityStmt;
	ListCell   *lc;
	bool		any = false;
	List	   *newcmds = NIL;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_SetTableSpace)
			prepare_tablespace_move(stmt, cmd);
		if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint))
			refuse_fk_to_ttl_table((Constraint *) cmd->def);
		else if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
			refuse_fks_in(list_make1(cmd->def));
		if ((cmd->subtype == AT_SetRelOptions || cmd->subtype == AT_ResetRelOptions) &&
			has_kvlsm_option((List *) cmd->def))
			any = true;
	}
	if (!any)
		return false;

	stmt = (AlterTableStmt *) writable_parsetree(call);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_SetRelOptions)
		{
			bool		f;

			cmd->def = (Node *) extract_options((List *) cmd->def, &call->opts, &f);
			call->found |= f;
			if (cmd->def == NULL)
				continue;
		}
		else if (cmd->subtype == AT_ResetRelOptions)
		{
			ListCell   *lc2;
			List	   *rest = NIL;

			foreach(lc2, (List *) cmd->def)
			{
				DefElem    *d = lfirst_node(DefElem, lc2);

				if (d->defnamespace == NULL && is_kvlsm_option(d->defname))
				{
					reset_option(&call->opts, d->defname);
					call->found = true;
				}
				else
					rest = lappend(rest, d);
			}
			cmd->def = (Node *) rest;
			if (rest == NIL)
				continue;
		}
		newcmds = lappend(newcmds, cmd);
	}
	stmt->cmds = newcmds;
	if (newcmds != NIL)
		return false;
	/* only kvlsm options: PostgreSQL has nothing left to do */
	apply_options_to_rangevar(stmt->relation, stmt->missing_ok, true, &call->opts);
	return true;
}

/*
 * GIN and BRIN indexes are read only through bitmap scans, which kvlsm
 * tables do not offer: refuse them on kvlsm tables (and on partitioned
 * tables with kvlsm partitions, to which the index would cascade).
 */
static void
refuse_bitmap_only_index(IndexStmt *stmt)
{
	Oid			relid;
	Relation	rel;
	bool		is_kvlsm;

	if (stmt->accessMethod == NULL ||
		(strcmp(stmt->accessMethod, "gin") != 0 && strcmp(stmt->accessMethod, "brin") != 0))
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	rel = relation_open(relid, AccessShareLock);
	is_kvlsm = rel->rd_rel->relkind == RELKIND_RELATION && kvlsm_is_kvlsm_relation(rel);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *parts = find_all_inheritors(relid, AccessShareLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			Relation	part = relation_open(lfirst_oid(lc), NoLock);

			if (part->rd_rel->relkind == RELKIND_RELATION && kvlsm_is_kvlsm_relation(part))
				is_kvlsm = true;
			relation_close(part, NoLock);
		}
	}
	relation_close(rel, AccessShareLock);
	if (is_kvlsm)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s indexes are not supported on kvlsm table \"%s\"",
						stmt->accessMethod, stmt->relation->relname),
				 errdetail("%s indexes are read only through bitmap scans, which kvlsm tables do not offer.",
						   stmt->accessMethod),
				 errhint("Use a btree, hash, GiST or kvlsm_idx index.")));
}

/* CREATE INDEX ... USING kvlsm_idx ... WITH (compaction_style = ...) */
static void
prepare_index(UtilityCall *call)
{
	IndexStmt  *stmt = (IndexStmt *) call->pstmt->utilityStmt;
	List	   *rest;

	refuse_bitmap_only_index(stmt);
	if (stmt->accessMethod == NULL || strcmp(stmt->accessMethod, "kvlsm_idx") != 0)
		return;
	rest = extract_options(stmt->options, &call->opts, &call->found);
	if (!call->found)
		return;
	refuse_table_options(&call->opts);
	stmt = (IndexStmt *) writable_parsetree(call);
	stmt->options = rest;
}

/*
 * After CREATE TABLE (AS) or CREATE INDEX: the relations the statement made
 * get their options.  A table that already existed (IF NOT EXISTS) is not
 * among them and keeps its own.
 */
static void
apply_to_created(UtilityCall *call, List *created)
{
	ListCell   *lc;

	foreach(lc, created)
	{
		Relation	rel = try_relation_open(lfirst_oid(lc), AccessExclusiveLock);
		bool		wanted;

		if (rel == NULL)
			continue;
		if (call->target == NULL)
			wanted = kvlsm_is_kvlsm_index(rel);
		else
			wanted = (rel->rd_rel->relkind == RELKIND_RELATION ||
					  rel->rd_rel->relkind == RELKIND_MATVIEW) &&
				kvlsm_is_kvlsm_relation(rel) &&
				strcmp(RelationGetRelationName(rel), call->target->relname) == 0;
		if (wanted)
			apply_options(rel, &call->opts);
		relation_close(rel, NoLock);
		/* a CREATE TABLE makes one table; a CREATE INDEX one index per partition */
		if (wanted && call->target != NULL)
			break;
	}
}

static void
kvlsm_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	UtilityCall call = {pstmt, readOnlyTree, {-1, 0, -1, -1, -1, -1}, false, NULL};
	Oid			exclude_db;
	bool		dropping_db = false;
	bool		save_capture = capture_created;
	List	   *save_created = relations_created;
	List	   *created;

	if (IsA(parsetree, CreateStmt))
		prepare_create(&call);
	else if (IsA(parsetree, CreateTableAsStmt))
		prepare_create_as(&call);
	else if (IsA(parsetree, AlterTableStmt))
	{
		if (prepare_alter(&call))
			return;
	}
	else if (IsA(parsetree, AlterTableMoveAllStmt))
		kvlsm_log_write_all_pending();
	else if (IsA(parsetree, IndexStmt))
		prepare_index(&call);

	exclude_db = database_needing_exclusion(parsetree, &dropping_db);
	if (OidIsValid(exclude_db))
		kvlsm_workers_exclude_database(exclude_db, dropping_db);
	/* nested statements (a function's CREATE TABLE) capture for themselves */
	capture_created = call.found && !IsA(parsetree, AlterTableStmt);
	relations_created = NIL;
	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(call.pstmt, queryString, call.readOnlyTree, context, params,
							  queryEnv, dest, qc);
		else
			standard_ProcessUtility(call.pstmt, queryString, call.readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		list_free(relations_created);
		capture_created = save_capture;
		relations_created = save_created;
		if (OidIsValid(exclude_db))
			kvlsm_workers_unexclude_database(exclude_db);
		PG_RE_THROW();
	}
	PG_END_TRY();
	created = relations_created;
	capture_created = save_capture;
	relations_created = save_created;
	if (OidIsValid(exclude_db))
		kvlsm_workers_unexclude_database(exclude_db);

	if (dropping_db && OidIsValid(exclude_db))
	{
		/* the database is gone: so is the shared state of its relations */
		kvlsm_release_database(exclude_db);
		kvlsm_snapshots_forget_database(exclude_db);
	}

	if (call.found && IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) call.pstmt->utilityStmt;

		/* PostgreSQL's processing gave the notice for a missing relation */
		apply_options_to_rangevar(stmt->relation, stmt->missing_ok, false, &call.opts);
	}
	else if (call.found)
		apply_to_created(&call, created);
	list_free(created);
}

/* DROP of a kvlsm relation: release its shared state when the drop commits */
static void
kvlsm_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	/* its pg_class row may not be visible yet: relkind is checked later */
	/*
	 * Kept in TopMemoryContext: CREATE INDEX CONCURRENTLY commits
	 * transactions before the hook reads the list (and frees it).
	 */
	if (capture_created && access == OAT_POST_CREATE && classId == RelationRelationId &&
		subId == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		relations_created = lappend_oid(relations_created, objectId);
		MemoryContextSwitchTo(old);
	}
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0)
	{
		Relation	rel = try_relation_open(objectId, NoLock);

		if (rel != NULL)
		{
			if (kvlsm_is_kvlsm_index(rel))
			{
				kvlsm_schedule_release(rel, NULL, true);
				relation_close(rel, NoLock);
				forget_options(objectId);
				return;
			}
			else if ((rel->rd_rel->relkind == RELKIND_RELATION ||
					  rel->rd_rel->relkind == RELKIND_MATVIEW) &&
					 kvlsm_is_kvlsm_relation(rel))
			{
				kvlsm_schedule_release(rel, NULL, true);
				relation_close(rel, NoLock);
				forget_options(objectId);
				return;
			}
			relation_close(rel, NoLock);
		}
	}
}

void
kvlsm_options_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = kvlsm_object_access;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = kvlsm_utility;
	RegisterXactCallback(options_xact_callback, NULL);
	RegisterSubXactCallback(options_subxact_callback, NULL);
}

PG_FUNCTION_INFO_V1(kvlsm_set_option);

Datum
kvlsm_set_option(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *value = text_to_cstring(PG_GETARG_TEXT_PP(2));
	KvlsmOptions opts = {-1, 0, -1, -1, -1, -1};
	Relation	rel;

	if (!is_kvlsm_option(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized kvlsm option \"%s\"", name)));
	parse_option(&opts, name, value);
	rel = open_option_target(relid, &opts);
	apply_options(rel, &opts);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}
