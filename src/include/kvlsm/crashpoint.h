/*-------------------------------------------------------------------------
 *
 * crashpoint.h
 *	  Named crash points for crash-safety tests (DESIGN.md section 8): a
 *	  superuser arms one in shared memory with kvlsm_arm_crash_point(); the
 *	  first process of any kind that reaches it kills itself with SIGKILL,
 *	  so the postmaster treats it as a crash and resets shared memory (which
 *	  disarms it: a crash restart cannot loop).  kvlsm_arm_error_point()
 *	  arms one of the points listed as error points instead: the first
 *	  process that reaches it raises an ERROR (the error path under test),
 *	  so those points sit only where an ERROR is allowed (no spinlock,
 *	  buffer content lock or critical section held).  Owned by
 *	  src/engine/crashpoint.c.  A testing aid, never armed in production.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_CRASHPOINT_H
#define KVLSM_CRASHPOINT_H

#include "postgres.h"

extern Size kvlsm_crashpoint_shmem_size(void);
extern void kvlsm_crashpoint_shmem_init(void);

/* the crash points kvlsm has; the name is what kvlsm_arm_crash_point takes */
#define KVLSM_CP_INSERT_BEFORE_LOG		"insert-before-log"
#define KVLSM_CP_LOG_BEFORE_COMMIT		"log-before-commit"
#define KVLSM_CP_AFTER_COMMIT			"after-commit"
#define KVLSM_CP_FLUSH_BEFORE_INSTALL	"flush-before-install"
#define KVLSM_CP_BEFORE_RETIRE_CHAIN	"before-retire-chain"
#define KVLSM_CP_EXTENT_REUSE			"extent-reuse"
#define KVLSM_CP_COMPACTION_MID			"compaction-mid"
#define KVLSM_CP_COMPACTION_STREAM		"compaction-streaming"
#define KVLSM_CP_AFTER_INSTALL			"after-install"
#define KVLSM_CP_MANIFEST_CONT			"manifest-before-switch"
#define KVLSM_CP_COMPACTION_TOAST		"compaction-toast-before-commit"
/* also an error point: before a log page that follows one written by the
 * same write of a transaction's pending records (logwriter.c) */
#define KVLSM_CP_LOG_BETWEEN_PAGES		"log-between-pages"
#define KVLSM_CP_RELOCATE_MID			"relocate-mid"

extern void kvlsm_crash_point(const char *name);
extern void kvlsm_crash_point_rel(const char *name, Oid relid);

#endif							/* KVLSM_CRASHPOINT_H */
