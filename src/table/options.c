/*-------------------------------------------------------------------------
 *
 * options.c
 *	  Per-relation options for kvlsm tables: CREATE TABLE ... USING kvlsm
 *	  WITH (...), ALTER TABLE ... SET (...) and kvlsm_set_option().
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
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "catalog/indexing.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "executor/spi.h"
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

#include "kvlsm/kvlsm.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/snapshots.h"
#include "kvlsm/worker.h"
#include "kvlsm/lsm.h"
#include "kvlsm/table.h"
#include "kvlsm/index.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

void		kvlsm_options_init(void);

typedef struct KvlsmOptions
{
	int32		compression;	/* -1: not given */
	int64		memtable_size;	/* 0: not given */
	int32		compaction_style;	/* -1: not given */
	int64		ttl_usecs;		/* -1: not given; 0: none */
	int32		bloom_bits;		/* -1: not given; -2: default (the GUC) */
} KvlsmOptions;

static bool
is_kvlsm_option(const char *name)
{
	return strcmp(name, "compression") == 0 || strcmp(name, "memtable_size") == 0 ||
		strcmp(name, "compaction_style") == 0 || strcmp(name, "ttl") == 0 ||
		strcmp(name, "bloom_bits_per_key") == 0;
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
		if (pg_strcasecmp(value, "lz4") == 0)
			opts->compression = KVLSM_COMPRESSION_LZ4;
		else if (pg_strcasecmp(value, "none") == 0)
			opts->compression = KVLSM_COMPRESSION_NONE;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"compression\": \"%s\"", value),
					 errhint("Valid values are \"lz4\" and \"none\".")));
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
	{
		Interval   *iv;
		int64		usecs = -1;

		/* a malformed interval gets interval_in's own error */
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(value),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
		if (iv != NULL && iv->month >= 0 && iv->day >= 0 && iv->time >= 0 &&
			iv->month < 12 * 1000 && iv->day < 365 * 1000)
			usecs = iv->time + (int64) iv->day * USECS_PER_DAY +
				(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
		if (usecs < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for kvlsm option \"ttl\": \"%s\"", value),
					 errhint("Give a non-negative interval, for example '7 days'; 0 means no TTL.")));
		opts->ttl_usecs = usecs;
	}
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

/* take kvlsm's options out of a reloption list; returns the remainder */
static List *
extract_options(List *defs, KvlsmOptions *opts, bool *found)
{
	List	   *rest = NIL;
	ListCell   *lc;

	*found = false;
	foreach(lc, defs)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (def->defnamespace == NULL && is_kvlsm_option(def->defname))
		{
			parse_option(opts, def->defname, def->arg ? defGetString(def) : NULL);
			*found = true;
		}
		else
			rest = lappend(rest, def);
	}
	return rest;
}

static bool applying_from_hook = false;

/* CREATE INDEX with kvlsm options: the indexes the command creates
 * (one, or one per partition) */
static bool capture_index = false;
static List *indexes_created = NIL;

/*
 * kvlsm_options belongs to the extension; a table's owner changes its rows
 * through these functions only, so they run as the bootstrap superuser
 * (as a SECURITY DEFINER function would), with a safe search_path: every
 * name in the statements is schema-qualified.
 */
static void
begin_catalog_access(Oid *save_userid, int *save_sec_context)
{
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

/* name of the schema the extension lives in */
static const char *
extension_schema_name(void)
{
	Oid			nsp = kvlsm_extension_schema();

	if (!OidIsValid(nsp))
		elog(ERROR, "kvlsm: extension schema not found");
	return get_namespace_name(nsp);
}

static const char *
extension_schema(void)
{
	return quote_identifier(extension_schema_name());
}

/*
 * Record an option in the extension's catalog kvlsm_options, which
 * pg_dump keeps (pg_extension_config_dump): on restore its rows are
 * inserted again and the trigger puts them back into the metapage.
 */
static void
record_option(Relation rel, const char *name, const char *value)
{
	Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		args[3];
	int			ret;
	Oid			save_userid;
	int			save_sec;

	args[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	args[1] = CStringGetTextDatum(name);
	args[2] = CStringGetTextDatum(value);
	begin_catalog_access(&save_userid, &save_sec);
	SPI_connect();
	applying_from_hook = true;
	PG_TRY();
	{
		ret = SPI_execute_with_args(psprintf("INSERT INTO %s.kvlsm_options AS o (relid, name, value) "
											"VALUES ($1::regclass, $2, $3) "
											"ON CONFLICT (relid, name) DO UPDATE SET value = excluded.value",
											extension_schema()),
									3, argtypes, args, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "kvlsm: could not record option \"%s\": %s", name,
				 SPI_result_code_string(ret));
	}
	PG_FINALLY();
	{
		applying_from_hook = false;
	}
	PG_END_TRY();
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
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
	if (kvlsm_is_kvlsm_relation(pk) && kvlsm_attach(pk)->ttl_usecs > 0)
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

/* the option bloom_bits_per_key: stored, and recorded for pg_dump */
static void
apply_bloom_bits(Relation rel, int32 bits)
{
	if (bits == -1)
		return;
	kvlsm_store_bloom_bits(rel, bits == -2 ? 0 : bits + 1);
	record_option(rel, "bloom_bits_per_key", bits == -2 ? "default" : psprintf("%d", bits));
}

static void
apply_options(Relation rel, KvlsmOptions *opts)
{
	if (kvlsm_is_kvlsm_index(rel))
	{
		if (opts->compression >= 0 || opts->memtable_size > 0 || opts->ttl_usecs >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("kvlsm_idx indexes take only the options compaction_style and bloom_bits_per_key")));
		if (opts->compaction_style >= 0)
		{
			kvlsm_store_options(rel, -1, 0, opts->compaction_style);
			record_option(rel, "compaction_style",
						  opts->compaction_style == KVLSM_COMPACTION_TIERED ? "tiered" : "leveled");
		}
		apply_bloom_bits(rel, opts->bloom_bits);
		return;
	}
	if (!kvlsm_is_kvlsm_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvlsm table", RelationGetRelationName(rel)),
				 errdetail("Options compression and memtable_size apply to kvlsm tables only.")));
	kvlsm_store_options(rel, opts->compression, opts->memtable_size,
						opts->compaction_style);
	if (opts->compression >= 0)
		record_option(rel, "compression",
					  opts->compression == KVLSM_COMPRESSION_LZ4 ? "lz4" : "none");
	if (opts->memtable_size > 0)
		record_option(rel, "memtable_size",
					  psprintf("%lldkB", (long long) (opts->memtable_size / 1024)));
	if (opts->compaction_style >= 0)
		record_option(rel, "compaction_style",
					  opts->compaction_style == KVLSM_COMPACTION_TIERED ? "tiered" : "leveled");
	apply_bloom_bits(rel, opts->bloom_bits);
	if (opts->ttl_usecs >= 0)
	{
		if (opts->ttl_usecs > 0)
			refuse_if_referenced(rel);
		kvlsm_store_ttl(rel, opts->ttl_usecs);
		record_option(rel, "ttl", opts->ttl_usecs == 0 ? "0" :
					  DatumGetCString(DirectFunctionCall1(interval_out,
														  IntervalPGetDatum(usecs_interval(opts->ttl_usecs)))));
	}
}

/* AFTER INSERT OR UPDATE trigger on kvlsm_options (pg_restore, manual edits) */
PG_FUNCTION_INFO_V1(kvlsm_options_trigger);

Datum
kvlsm_options_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Oid			relid;
	char	   *name;
	char	   *value;
	KvlsmOptions opts = {-1, 0, -1, -1, -1};
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "kvlsm_options_trigger: not called by trigger manager");
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (applying_from_hook)
		return PointerGetDatum(tuple);
	desc = trigdata->tg_relation->rd_att;
	relid = DatumGetObjectId(heap_getattr(tuple, 1, desc, &isnull));
	name = TextDatumGetCString(heap_getattr(tuple, 2, desc, &isnull));
	value = TextDatumGetCString(heap_getattr(tuple, 3, desc, &isnull));
	parse_option(&opts, name, value);
	rel = relation_open(relid, AccessExclusiveLock);
	if (!kvlsm_is_kvlsm_relation(rel) &&
		!(kvlsm_is_kvlsm_index(rel) && (opts.compaction_style >= 0 || opts.bloom_bits != -1)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvlsm table", RelationGetRelationName(rel))));
	kvlsm_store_options(rel, opts.compression, opts.memtable_size,
						opts.compaction_style);
	if (opts.ttl_usecs >= 0)
		kvlsm_store_ttl(rel, opts.ttl_usecs);
	if (opts.bloom_bits != -1)
		kvlsm_store_bloom_bits(rel, opts.bloom_bits == -2 ? 0 : opts.bloom_bits + 1);
	relation_close(rel, NoLock);
	return PointerGetDatum(tuple);
}

/* forget the options of a dropped relation */
static void
forget_options(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	Oid			save_userid;
	int			save_sec;

	if (get_extension_oid("kvlsm", true) == InvalidOid)
		return;
	/* DROP EXTENSION ... CASCADE may have dropped the options table first */
	if (!OidIsValid(get_relname_relid("kvlsm_options",
									  get_namespace_oid(extension_schema_name(), true))))
		return;
	args[0] = ObjectIdGetDatum(relid);
	begin_catalog_access(&save_userid, &save_sec);
	SPI_connect();
	SPI_execute_with_args(psprintf("DELETE FROM %s.kvlsm_options WHERE relid = $1::regclass",
								   extension_schema()),
						  1, argtypes, args, NULL, false, 0);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}

static bool
creates_kvlsm(CreateStmt *stmt)
{
	const char *am = stmt->accessMethod ? stmt->accessMethod : default_table_access_method;

	return am != NULL && strcmp(am, "kvlsm") == 0;
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

static void
kvlsm_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	KvlsmOptions opts = {-1, 0, -1, -1, -1};
	bool		found = false;
	RangeVar   *target = NULL;
	Oid			exclude_db;
	bool		dropping_db = false;

	if (IsA(parsetree, CreateStmt))
	{
		CreateStmt *stmt = (CreateStmt *) parsetree;
		List	   *rest;

		refuse_fks_in(stmt->tableElts);

		rest = extract_options(stmt->options, &opts, &found);
		if (found)
		{
			if (!creates_kvlsm(stmt))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("kvlsm options (compression, memtable_size, compaction_style, ttl, bloom_bits_per_key) need USING kvlsm")));
			if (readOnlyTree)
			{
				pstmt = copyObject(pstmt);
				parsetree = pstmt->utilityStmt;
				stmt = (CreateStmt *) parsetree;
				readOnlyTree = false;
			}
			stmt->options = rest;
			target = stmt->relation;
		}
	}
	else if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		ListCell   *lc;
		bool		any = false;

		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype == AT_SetTableSpace)
				prepare_tablespace_move(stmt, cmd);
			if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint))
				refuse_fk_to_ttl_table((Constraint *) cmd->def);
			else if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
				refuse_fks_in(list_make1(cmd->def));
			if (cmd->subtype == AT_SetRelOptions || cmd->subtype == AT_ResetRelOptions)
			{
				ListCell   *lc2;

				foreach(lc2, (List *) cmd->def)
				{
					DefElem    *d = lfirst_node(DefElem, lc2);

					if (d->defnamespace == NULL && is_kvlsm_option(d->defname))
						any = true;
				}
			}
		}
		if (any)
		{
			List	   *newcmds = NIL;

			if (readOnlyTree)
			{
				pstmt = copyObject(pstmt);
				parsetree = pstmt->utilityStmt;
				stmt = (AlterTableStmt *) parsetree;
				readOnlyTree = false;
			}
			foreach(lc, stmt->cmds)
			{
				AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

				if (cmd->subtype == AT_SetRelOptions)
				{
					bool		f;

					cmd->def = (Node *) extract_options((List *) cmd->def, &opts, &f);
					found |= f;
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
							if (strcmp(d->defname, "compression") == 0)
								opts.compression = kvlsm_default_compression;
							else if (strcmp(d->defname, "compaction_style") == 0)
								opts.compaction_style = KVLSM_COMPACTION_LEVELED;
							else if (strcmp(d->defname, "ttl") == 0)
								opts.ttl_usecs = 0;
							else if (strcmp(d->defname, "bloom_bits_per_key") == 0)
								opts.bloom_bits = -2;
							else
								opts.memtable_size = (int64) kvlsm_default_memtable_size_kb * 1024;
							found = true;
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
			target = stmt->relation;
			if (newcmds == NIL)
			{
				Relation	rel = relation_openrv(target, AccessExclusiveLock);

				apply_options(rel, &opts);
				relation_close(rel, NoLock);
				return;
			}
		}
	}
	else if (IsA(parsetree, AlterTableMoveAllStmt))
		kvlsm_log_write_all_pending();
	else if (IsA(parsetree, IndexStmt))
	{
		IndexStmt  *stmt = (IndexStmt *) parsetree;

		/* CREATE INDEX ... USING kvlsm_idx ... WITH (compaction_style = ...) */
		if (stmt->accessMethod && strcmp(stmt->accessMethod, "kvlsm_idx") == 0)
		{
			List	   *rest = extract_options(stmt->options, &opts, &found);

			if (found)
			{
				if (opts.compression >= 0 || opts.memtable_size > 0 || opts.ttl_usecs >= 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("kvlsm_idx indexes take only the options compaction_style and bloom_bits_per_key")));
				if (readOnlyTree)
				{
					pstmt = copyObject(pstmt);
					parsetree = pstmt->utilityStmt;
					stmt = (IndexStmt *) parsetree;
					readOnlyTree = false;
				}
				stmt->options = rest;
				indexes_created = NIL;
				capture_index = true;
			}
		}
		if (stmt->accessMethod &&
			(strcmp(stmt->accessMethod, "gin") == 0 || strcmp(stmt->accessMethod, "brin") == 0))
		{
			Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

			if (OidIsValid(relid))
			{
				Relation	rel = relation_open(relid, AccessShareLock);
				bool		is_kvlsm = rel->rd_rel->relkind == RELKIND_RELATION &&
				kvlsm_is_kvlsm_relation(rel);

				/* an index on a partitioned table cascades to its partitions */
				if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
				{
					List	   *parts = find_all_inheritors(relid, AccessShareLock, NULL);
					ListCell   *lc;

					foreach(lc, parts)
					{
						Relation	part = relation_open(lfirst_oid(lc), NoLock);

						if (part->rd_rel->relkind == RELKIND_RELATION &&
							kvlsm_is_kvlsm_relation(part))
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
		}
	}

	exclude_db = database_needing_exclusion(parsetree, &dropping_db);
	if (OidIsValid(exclude_db))
		kvlsm_workers_exclude_database(exclude_db, dropping_db);
	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
							  queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		capture_index = false;
		if (OidIsValid(exclude_db))
			kvlsm_workers_unexclude_database(exclude_db);
	}
	PG_END_TRY();

	if (dropping_db && OidIsValid(exclude_db))
	{
		/* the database is gone: so is the shared state of its relations */
		kvlsm_release_database(exclude_db);
		kvlsm_snapshots_forget_database(exclude_db);
	}

	/* the kvlsm_idx indexes just built get their options */
	if (found && IsA(parsetree, IndexStmt))
	{
		List	   *created = indexes_created;
		ListCell   *lc;

		indexes_created = NIL;
		foreach(lc, created)
		{
			Relation	rel = try_relation_open(lfirst_oid(lc), AccessExclusiveLock);

			if (rel == NULL)
				continue;
			if (kvlsm_is_kvlsm_index(rel))
				apply_options(rel, &opts);
			relation_close(rel, NoLock);
		}
	}
	else if (found && target != NULL)
	{
		Relation	rel = relation_openrv(target, AccessExclusiveLock);

		apply_options(rel, &opts);
		relation_close(rel, NoLock);
	}
}

/* DROP of a kvlsm relation: release its shared state when the drop commits */
static void
kvlsm_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	/* its pg_class row may not be visible yet: relkind is checked later */
	if (capture_index && access == OAT_POST_CREATE && classId == RelationRelationId &&
		subId == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		indexes_created = lappend_oid(indexes_created, objectId);
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
}

PG_FUNCTION_INFO_V1(kvlsm_set_option);

Datum
kvlsm_set_option(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *value = text_to_cstring(PG_GETARG_TEXT_PP(2));
	KvlsmOptions opts = {-1, 0, -1, -1, -1};
	Relation	rel;

	if (!is_kvlsm_option(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized kvlsm option \"%s\"", name)));
	parse_option(&opts, name, value);
	rel = relation_open(relid, AccessExclusiveLock);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	apply_options(rel, &opts);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}
