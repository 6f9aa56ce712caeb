/*-------------------------------------------------------------------------
 *
 * crashpoint.c
 *	  Named crash points armed in shared memory (see crashpoint.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"

#include "kvlsm/crashpoint.h"

#define CRASHPOINT_NAMELEN 64

typedef struct CrashPointShared
{
	slock_t		mutex;
	bool		armed;			/* read without the lock on the fast path */
	char		name[CRASHPOINT_NAMELEN];
} CrashPointShared;

static CrashPointShared *cp = NULL;

static const char *const known_points[] = {
	KVLSM_CP_INSERT_BEFORE_LOG,
	KVLSM_CP_LOG_BEFORE_COMMIT,
	KVLSM_CP_AFTER_COMMIT,
	KVLSM_CP_FLUSH_BEFORE_INSTALL,
	KVLSM_CP_BEFORE_RETIRE_CHAIN,
	KVLSM_CP_EXTENT_REUSE,
	KVLSM_CP_COMPACTION_MID,
	KVLSM_CP_COMPACTION_STREAM,
	KVLSM_CP_AFTER_INSTALL,
	KVLSM_CP_MANIFEST_CONT,
	KVLSM_CP_COMPACTION_TOAST,
};

Size
kvlsm_crashpoint_shmem_size(void)
{
	return MAXALIGN(sizeof(CrashPointShared));
}

void
kvlsm_crashpoint_shmem_init(void)
{
	bool		found;

	cp = ShmemInitStruct("kvlsm crash points", sizeof(CrashPointShared), &found);
	if (!found)
	{
		memset(cp, 0, sizeof(CrashPointShared));
		SpinLockInit(&cp->mutex);
	}
}

void
kvlsm_crash_point(const char *name)
{
	bool		fire = false;

	if (cp == NULL || !cp->armed)
		return;
	SpinLockAcquire(&cp->mutex);
	if (cp->armed && strcmp(cp->name, name) == 0)
	{
		cp->armed = false;
		fire = true;
	}
	SpinLockRelease(&cp->mutex);
	if (fire)
	{
		ereport(LOG,
				(errmsg("kvlsm crash point \"%s\" reached: killing process %d", name, MyProcPid)));
		(void) kill(MyProcPid, SIGKILL);
		pg_usleep(10000000L);	/* SIGKILL arrives before this ends */
	}
}

/* kvlsm_arm_crash_point(name text): superuser only (revoked from PUBLIC too) */
PG_FUNCTION_INFO_V1(kvlsm_arm_crash_point);
Datum
kvlsm_arm_crash_point(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers can arm kvlsm crash points")));
	for (i = 0; i < lengthof(known_points); i++)
		if (strcmp(name, known_points[i]) == 0)
			break;
	if (i == lengthof(known_points))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kvlsm crash point \"%s\"", name)));
	if (cp == NULL)
		elog(ERROR, "kvlsm crash points are not in shared memory");
	SpinLockAcquire(&cp->mutex);
	strlcpy(cp->name, name, CRASHPOINT_NAMELEN);
	cp->armed = true;
	SpinLockRelease(&cp->mutex);
	PG_RETURN_VOID();
}
