/*-------------------------------------------------------------------------
 *
 * kvlsm.h
 *	  Extension-wide declarations: GUC variables, limits and the entry points
 *	  that _PG_init (src/kvlsm.c) wires up.
 *
 * Dependencies point one way: admin, ddl -> table, index, worker -> engine
 * -> PostgreSQL.  Not for the engine (scripts/check-layers.sh).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_KVLSM_H
#define KVLSM_KVLSM_H

#include "postgres.h"

/*
 * The GUC variables are declared by the modules that define and read them:
 * page.h, memtable.h, lsm.h, compaction.h (the engine), worker.h.  This
 * header includes the engine's so that the layers above find them.
 */
#include "kvlsm/compaction.h"
#include "kvlsm/worker.h"

#endif							/* KVLSM_KVLSM_H */
