/*-------------------------------------------------------------------------
 *
 * release.c
 *	  Releasing shared state of dropped relations: when the registry
 *	  entries (registry.c) of a dropped or truncated filenode, of a dropped
 *	  database and of a backend's temporary relations go.
 *
 * There is no DROP callback for table AMs.  DROP and TRUNCATE schedule the
 * old filenode's entry for release; it is released when the transaction
 * commits (an abort keeps using it).  Entries of temporary relations go
 * when their backend exits.  The dropping transaction holds
 * AccessExclusiveLock until after the commit callbacks run, so no other
 * backend is using the entry.
 *
 * The pending list lives in TopMemoryContext; its transaction callbacks
 * also end the collections an error left (read.c).  No WAL: the entries
 * are caches of pages.
 *
 * Callers: the table and index AMs and the ddl layer
 * (kvlsm_schedule_release, kvlsm_release_database), attach
 * (kvlsm_note_temp_relation), _PG_init (kvlsm_lsm_init).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "kvlsm/registry.h"

typedef struct PendingDrop
{
	KvlsmLsmTag tag;
	int			nestlevel;
	bool		on_commit;		/* else: release if the transaction aborts */
} PendingDrop;

static List *pending_drops = NIL;
static bool exit_callback_registered = false;

void
kvlsm_release_database(Oid dbid)
{
	kvlsm_release_entries(dbid, InvalidBackendId);
}

void
kvlsm_schedule_release(Relation rel, const RelFileNode *node, bool on_commit)
{
	PendingDrop *pd;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	pd = palloc(sizeof(PendingDrop));
	kvlsm_make_tag(rel, &pd->tag);
	if (node != NULL)
		pd->tag.node = *node;
	pd->on_commit = on_commit;
	pd->nestlevel = GetCurrentTransactionNestLevel();
	pending_drops = lappend(pending_drops, pd);
	MemoryContextSwitchTo(old);
}

static void
release_temp_entries(int code, Datum arg)
{
	kvlsm_release_entries(InvalidOid, MyBackendId);
}

/* called when a backend first attaches a temporary kvlsm relation */
void
kvlsm_note_temp_relation(void)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(release_temp_entries, (Datum) 0);
		exit_callback_registered = true;
	}
}

static void
drops_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	/* a collection an error left is over (see kvlsm_collect) */
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		kvlsm_collect_abort();
	if (pending_drops == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		bool		commit = (event == XACT_EVENT_COMMIT ||
							  event == XACT_EVENT_PARALLEL_COMMIT);

		foreach(lc, pending_drops)
		{
			PendingDrop *pd = lfirst(lc);

			if (pd->on_commit == commit)
				kvlsm_release_shared(&pd->tag);
		}
	}
	else if (event != XACT_EVENT_PREPARE)
		return;
	/* a prepared DROP keeps the entry: it is released when unused later */
	list_free_deep(pending_drops);
	pending_drops = NIL;
}

static void
drops_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	List	   *keep = NIL;
	ListCell   *lc;
	int			level = GetCurrentTransactionNestLevel();
	MemoryContext old;

	if (event != SUBXACT_EVENT_ABORT_SUB || pending_drops == NIL)
		return;
	/* the list outlives this subtransaction */
	old = MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, pending_drops)
	{
		PendingDrop *pd = lfirst(lc);

		if (pd->nestlevel >= level)
		{
			/* a filenode created in the aborted subtransaction is gone */
			if (!pd->on_commit)
				kvlsm_release_shared(&pd->tag);
			pfree(pd);
		}
		else
			keep = lappend(keep, pd);
	}
	list_free(pending_drops);
	pending_drops = keep;
	MemoryContextSwitchTo(old);
}

void
kvlsm_lsm_init(void)
{
	RegisterXactCallback(drops_xact_callback, NULL);
	RegisterSubXactCallback(drops_subxact_callback, NULL);
}
