/*-------------------------------------------------------------------------
 *
 * kvlsm.c
 *	  Module entry: GUCs, shared memory hooks and transaction callbacks.  kvlsm must be in shared_preload_libraries: its memtable
 *	  arena and registry live in shared memory requested at startup.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "access/table.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "kvlsm/kvlsm.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/lsm.h"
#include "kvlsm/maintenance.h"
#include "kvlsm/relocate.h"
#include "kvlsm/table.h"
#include "kvlsm/index.h"
#include "kvlsm/compaction.h"
#include "kvlsm/ddl.h"
#include "kvlsm/worker.h"
#include "kvlsm/crashpoint.h"
#include "kvlsm/history.h"
#include "kvlsm/snapshots.h"

PG_MODULE_MAGIC;

/*
 * The GUC variables are defined in the files that read them (the engine's
 * in src/engine/, the workers' in src/worker/worker.c) and declared in
 * their headers; _PG_init only registers them.
 */

/* on and off, and their spellings that a boolean accepted before 0.3 */
static const struct config_enum_entry background_truncate_options[] = {
	{"auto", KVLSM_BGTRUNC_AUTO, false},
	{"on", KVLSM_BGTRUNC_ON, false},
	{"off", KVLSM_BGTRUNC_OFF, false},
	{"true", KVLSM_BGTRUNC_ON, true},
	{"false", KVLSM_BGTRUNC_OFF, true},
	{"yes", KVLSM_BGTRUNC_ON, true},
	{"no", KVLSM_BGTRUNC_OFF, true},
	{"1", KVLSM_BGTRUNC_ON, true},
	{"0", KVLSM_BGTRUNC_OFF, true},
	{NULL, 0, false}
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* tables order keys bytewise (big-endian row ids), kvlsm_idx by its opclasses */
static const KvlsmKeyOps *
kvlsm_keyops_for(Relation rel)
{
	if (kvlsm_is_kvlsm_index(rel))
		return kvlsm_index_keyops(rel);
	return &kvlsm_bytewise_keyops;
}

/* what compaction may drop is decided by the layer that wrote the records */
static KvlsmGcFilter
kvlsm_gc_for(Relation rel)
{
	if (kvlsm_is_kvlsm_index(rel))
		return kvlsm_index_gc;
	if (rel->rd_rel->relkind == RELKIND_INDEX)
		return NULL;
	return kvlsm_table_gc;
}

/* before a compaction that dropped records installs: standby conflicts */
static void
kvlsm_gc_dropped(Relation rel, const KvlsmGcContext *ctx)
{
	kvlsm_log_recovery_conflict(rel, kvlsm_conflict_xid(ctx->latest_removed,
														ctx->ttl_max_expired));
}

static const KvlsmGcPolicy gc_policy = {
	.filter_for = kvlsm_gc_for,
	.horizon = kvlsm_gc_horizon,	/* named snapshots pin it too */
	.dropped = kvlsm_gc_dropped,
};

static void
kvlsm_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(kvlsm_arena_shmem_size());
	RequestAddinShmemSpace(kvlsm_lsm_shmem_size());
	RequestAddinShmemSpace(kvlsm_workers_shmem_size());
	RequestAddinShmemSpace(kvlsm_crashpoint_shmem_size());
	RequestAddinShmemSpace(kvlsm_history_shmem_size());
	RequestAddinShmemSpace(kvlsm_snapshots_shmem_size());
	kvlsm_lsm_request_locks();
	kvlsm_table_request_locks();
}

static void
kvlsm_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kvlsm_arena_shmem_init();
	kvlsm_lsm_shmem_init();
	kvlsm_table_shmem_init();
	kvlsm_workers_shmem_init();
	kvlsm_crashpoint_shmem_init();
	kvlsm_history_shmem_init();
	kvlsm_snapshots_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kvlsm must be loaded via shared_preload_libraries"),
				 errhint("Add kvlsm to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomIntVariable("kvlsm.memtable_memory",
							"Size of the shared memtable arena for all kvlsm relations.",
							NULL, &kvlsm_memtable_memory_mb, 128, 8, 64 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.max_relations",
							"Number of kvlsm relations that can be in use at once.",
							NULL, &kvlsm_max_relations, 1024, 16, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.default_memtable_size",
							"Default memtable size (flush trigger) of new kvlsm relations.",
							NULL, &kvlsm_default_memtable_size_kb, 16 * 1024, 64,
							1024 * 1024, PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomStringVariable("kvlsm.default_compression",
							   "Default data page compression of new kvlsm relations.",
							   "lz4, zstd or none, optionally with a level, as in \"zstd:9\".",
							   &kvlsm_default_compression_string, "lz4",
							   PGC_USERSET, 0, kvlsm_check_default_compression,
							   kvlsm_assign_default_compression, NULL);
	DefineCustomStringVariable("kvlsm.default_bottommost_compression",
							   "Default compression of the bottommost SSTables of new kvlsm relations.",
							   "A compression like kvlsm.default_compression's, or \"same\": as the other levels.",
							   &kvlsm_default_bottom_compression_string, "same",
							   PGC_USERSET, 0, kvlsm_check_default_bottom_compression,
							   kvlsm_assign_default_bottom_compression, NULL);
	DefineCustomIntVariable("kvlsm.bloom_bits_per_key",
							"Bloom filter bits per key in new SSTables (0 disables).",
							NULL, &kvlsm_bloom_bits_per_key, 10, 0, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.l0_compaction_trigger",
							"Number of SSTables that triggers a compaction.",
							NULL, &kvlsm_l0_compaction_trigger, 4, 2, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.l0_slowdown_trigger",
							"Number of L0 SSTables at which writers are slowed down.",
							NULL, &kvlsm_l0_slowdown_trigger, 20, 2, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.l0_stop_trigger",
							"Number of L0 SSTables at which writers wait for compaction.",
							NULL, &kvlsm_l0_stop_trigger, 36, 2, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.level_fanout",
							"Size ratio between adjacent levels in leveled compaction.",
							NULL, &kvlsm_level_fanout, 10, 2, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.max_workers",
							"Background workers that flush and compact kvlsm relations (0: in the foreground).",
							NULL, &kvlsm_max_workers, 2, 0, 64,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.flush_interval",
							"Flush a memtable older than this even if it is small (0: never).",
							NULL, &kvlsm_flush_interval_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.compaction_rate_limit",
							"Bytes per second all compactions together may write (0: no limit).",
							NULL, &kvlsm_compaction_rate_limit_kb, 0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("kvlsm.stall_timeout",
							"How long a write may wait for flush or compaction before it fails (0: forever).",
							NULL, &kvlsm_stall_timeout_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomEnumVariable("kvlsm.background_truncate",
							 "Lets background workers and autovacuum give free space at the end of kvlsm files back to the file system.",
							 "Truncating takes an AccessExclusiveLock only if it is free at once, but its WAL record cancels conflicting queries on hot standbys; auto does not truncate while a standby sends hot_standby_feedback. A VACUUM run by hand truncates unless its TRUNCATE option is off.",
							 &kvlsm_background_truncate, KVLSM_BGTRUNC_AUTO,
							 background_truncate_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("kvlsm.write_old_records",
							 "Writes row records in the form of kvlsm 0.2 and older (for tests of reading old files).",
							 NULL,
							 &kvlsm_write_old_records, false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("kvlsm.space_reclaim",
							 "Lets VACUUM and background workers move SSTables out of the end of kvlsm files and truncate them (also kvlsm_idx files).",
							 "Off, VACUUM only truncates a free end of a table's file, and background workers do nothing.",
							 &kvlsm_space_reclaim, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	kvlsm_snapshots_init();
	MarkGUCPrefixReserved("kvlsm");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kvlsm_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kvlsm_shmem_startup;

	kvlsm_set_keyops_provider(kvlsm_keyops_for);
	kvlsm_set_gc_policy(&gc_policy);
	kvlsm_set_toast_sweeper(kvlsm_toast_sweep);
	kvlsm_workers_register();
	kvlsm_log_init();
	kvlsm_lsm_init();
	kvlsm_options_init();
	kvlsm_indexplan_init();
}
