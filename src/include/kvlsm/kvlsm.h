/*-------------------------------------------------------------------------
 *
 * kvlsm.h
 *	  Extension-wide declarations: GUC variables, limits and the entry points
 *	  that _PG_init (src/kvlsm.c) wires up.
 *
 * Dependencies point one way: admin -> table -> engine -> PostgreSQL.  This
 * header is the only one every module may include.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_KVLSM_H
#define KVLSM_KVLSM_H

#include "postgres.h"

/* GUCs (src/kvlsm.c) */
extern int	kvlsm_memtable_memory_mb;	/* size of the shared memtable arena */
extern int	kvlsm_max_relations;	/* LSMs that may be attached at once */
extern int	kvlsm_default_memtable_size_kb; /* default flush trigger */
extern int	kvlsm_default_compression;	/* KvlsmCompression */
extern int	kvlsm_bloom_bits_per_key;
extern int	kvlsm_l0_compaction_trigger;
extern int	kvlsm_l0_slowdown_trigger;
extern int	kvlsm_l0_stop_trigger;
extern int	kvlsm_level_fanout;
extern int	kvlsm_max_workers;
extern int	kvlsm_flush_interval_ms;
extern int	kvlsm_compaction_rate_limit_kb;	/* kB per second, 0 = none */
extern int	kvlsm_stall_timeout_ms;
extern bool kvlsm_am_worker;	/* this process is a kvlsm background worker */

/* compression of SSTable data pages */
typedef enum KvlsmCompression
{
	KVLSM_COMPRESSION_NONE = 0,
	KVLSM_COMPRESSION_LZ4 = 1
} KvlsmCompression;

/* compaction style of one relation (option compaction_style) */
typedef enum KvlsmCompactionStyle
{
	KVLSM_COMPACTION_LEVELED = 0,
	KVLSM_COMPACTION_TIERED = 1
} KvlsmCompactionStyle;

/* the schema of the kvlsm extension in this database (InvalidOid: none) */
extern Oid	kvlsm_extension_schema(void);

#endif							/* KVLSM_KVLSM_H */
