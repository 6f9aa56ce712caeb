/*-------------------------------------------------------------------------
 *
 * extension.c
 *	  The kvlsm extension's own catalog objects as the table layer and the
 *	  layers above find them: the schema the extension was created in, by
 *	  pg_extension's OID, never by search_path, so that SQL built by kvlsm
 *	  (named snapshots, row-level security scopes) and catalog access to
 *	  kvlsm_options qualify names with it.
 *
 * Callers: snapshot_catalog.c, snapshot_rls.c, src/ddl/options.c.  Reads
 * the catalog only; takes AccessShareLock on pg_extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "kvlsm/table.h"

/*
 * The schema the kvlsm extension was created in, or InvalidOid if it is not
 * installed in this database (PostgreSQL 15 does not export
 * get_extension_schema).
 */
Oid
kvlsm_extension_schema(void)
{
	Oid			ext = get_extension_oid("kvlsm", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	if (!OidIsValid(ext))
		return InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}
