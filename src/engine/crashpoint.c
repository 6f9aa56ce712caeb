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
	bool		raise_error;	/* an error point: ERROR instead of SIGKILL */
	Oid			dbid;			/* with relid: only where that relation is */
	Oid			relid;			/* written; InvalidOid: wherever reached */
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
	KVLSM_CP_LOG_BETWEEN_PAGES,
	KVLSM_CP_RELOCATE_MID,
};

/* the points where an ERROR may be raised instead (crashpoint.h) */
static const char *const error_points[] = {
	KVLSM_CP_LOG_BETWEEN_PAGES,
	KVLSM_CP_RELOCATE_MID,
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
	kvlsm_crash_point_rel(name, InvalidOid);
}

/* the point 'name', reached while working on relation relid of this database */
void
kvlsm_crash_point_rel(const char *name, Oid relid)
{
	bool		fire = false;
	bool		raise_error = false;

	if (cp == NULL || !cp->armed)
		return;
	SpinLockAcquire(&cp->mutex);
	if (cp->armed && strcmp(cp->name, name) == 0 &&
		(!OidIsValid(cp->relid) || (cp->relid == relid && cp->dbid == MyDatabaseId)))
	{
		cp->armed = false;
		fire = true;
		raise_error = cp->raise_error;
	}
	SpinLockRelease(&cp->mutex);
	if (fire && raise_error)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("kvlsm error point \"%s\" reached", name)));
	if (fire)
	{
		ereport(LOG,
				(errmsg("kvlsm crash point \"%s\" reached: killing process %d", name, MyProcPid)));
		(void) kill(MyProcPid, SIGKILL);
		pg_usleep(10000000L);	/* SIGKILL arrives before this ends */
	}
}

static void
arm_point(const char *name, const char *const *points, int npoints, bool raise_error,
		  Oid relid)
{
	int			i;

	/* whole messages, not pieces, so that they can be translated */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 raise_error ? errmsg("only superusers can arm kvlsm error points") :
				 errmsg("only superusers can arm kvlsm crash points")));
	for (i = 0; i < npoints; i++)
		if (strcmp(name, points[i]) == 0)
			break;
	if (i == npoints)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 raise_error ? errmsg("unknown kvlsm error point \"%s\"", name) :
				 errmsg("unknown kvlsm crash point \"%s\"", name)));
	if (cp == NULL)
		elog(ERROR, "kvlsm crash points are not in shared memory");
	SpinLockAcquire(&cp->mutex);
	strlcpy(cp->name, name, CRASHPOINT_NAMELEN);
	cp->raise_error = raise_error;
	cp->dbid = MyDatabaseId;
	cp->relid = relid;
	cp->armed = true;
	SpinLockRelease(&cp->mutex);
}

/* kvlsm_arm_crash_point(name text): superuser only (revoked from PUBLIC too) */
PG_FUNCTION_INFO_V1(kvlsm_arm_crash_point);
Datum
kvlsm_arm_crash_point(PG_FUNCTION_ARGS)
{
	arm_point(text_to_cstring(PG_GETARG_TEXT_PP(0)), known_points,
			  lengthof(known_points), false, InvalidOid);
	PG_RETURN_VOID();
}

/*
 * kvlsm_arm_error_point(name text, rel regclass DEFAULT NULL): superuser
 * only (revoked from PUBLIC too); with rel, only a process working on that
 * relation raises the error.
 */
PG_FUNCTION_INFO_V1(kvlsm_arm_error_point);
Datum
kvlsm_arm_error_point(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the error point's name must not be null")));
	arm_point(text_to_cstring(PG_GETARG_TEXT_PP(0)), error_points,
			  lengthof(error_points), true,
			  PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1));
	PG_RETURN_VOID();
}
