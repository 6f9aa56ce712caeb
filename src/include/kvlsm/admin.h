/*-------------------------------------------------------------------------
 *
 * admin.h
 *	  The SQL-callable administration functions: layout and statistics
 *	  (src/admin/admin.c), verification (src/admin/verify.c) and repair (src/admin/repair.c),
 *	  SSTable dumps and key histories (src/admin/inspect.c).  This header
 *	  holds what they share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_ADMIN_H
#define KVLSM_ADMIN_H

#include "postgres.h"

#include "storage/lockdefs.h"
#include "utils/rel.h"

/* without a lock: error unless the relation is a kvlsm table or index */
extern void kvlsm_check_relation_am(Oid relid);

/* open a kvlsm table or kvlsm_idx index; anything else is an error */
extern Relation kvlsm_open_relation(Oid relid, LOCKMODE mode);
extern Relation kvlsm_open_relation_if_exists(Oid relid, LOCKMODE mode);

/* an engine key as text: a table's row id, an index's first key column */
extern Datum kvlsm_key_as_text(Relation rel, const char *key, int keylen);

/*
 * A user's key bound as an engine key: a row id for a table; for an index
 * a value of the first key column, as a probe key sorting before (lower)
 * or after (upper) every entry with that value.
 */
extern char *kvlsm_range_key(Relation rel, text *bound, bool upper, int *keylen);

#endif							/* KVLSM_ADMIN_H */
