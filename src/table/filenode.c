/*-------------------------------------------------------------------------
 *
 * filenode.c
 *	  A kvlsm table's file: a new filenode (CREATE TABLE, TRUNCATE, the
 *	  target of a rewrite), truncation in place of a table created in the
 *	  same transaction, and the page-by-page copy of ALTER TABLE ... SET
 *	  TABLESPACE.
 *
 * A new file starts with a metapage and an empty manifest (page.c), WAL-
 * logged as heap logs its new files.  The shared state of an LSM is keyed
 * by its filenode: the old filenode's goes at commit and the new one's if
 * the transaction rolls back (kvlsm_schedule_release), so that no backend
 * keeps using state of a file that no longer exists.  Callers hold
 * AccessExclusiveLock on the table.
 *
 * The callbacks are in tableam.c's TableAmRoutine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/multixact.h"
#include "access/xlog.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "kvlsm/logwriter.h"
#include "kvlsm/table_internal.h"

void
kvlsm_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								char persistence, TransactionId *freezeXid,
								MultiXactId *minmulti)
{
	SMgrRelation srel;

	/*
	 * Like heap, WAL-log the new file's first pages only when its changes
	 * will be WAL-logged at all.  With wal_level = minimal a filenode created
	 * in this transaction is synced (or logged whole) at commit instead; an
	 * early image of the metapage in WAL would be replayed over the final
	 * one after a crash.
	 */
	bool		needs_wal = (persistence == RELPERSISTENCE_PERMANENT && XLogIsNeeded());

	/* TRUNCATE / rewrite: the old filenode's shared state goes at commit */
	if (!RelFileNodeEquals(rel->rd_node, *newrnode))
		kvlsm_schedule_release(rel, NULL, true);
	/* and the new one's, if this transaction rolls back */
	kvlsm_schedule_release(rel, newrnode, false);

	*freezeXid = RecentXmin;
	/* kvlsm creates no multixacts */
	*minmulti = InvalidMultiXactId;

	srel = RelationCreateStorage(*newrnode, persistence, true);
	kvlsm_init_metapage_and_manifest(rel, srel, MAIN_FORKNUM, KVLSM_KIND_TABLE,
									 needs_wal);
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		/* the init fork holds a fresh metapage; reset copies it over main */
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		kvlsm_init_metapage_and_manifest(rel, srel, INIT_FORKNUM,
										 KVLSM_KIND_TABLE, true);
	}
	smgrclose(srel);
	kvlsm_forget(rel);
}

void
kvlsm_relation_nontransactional_truncate(Relation rel)
{
	/*
	 * TRUNCATE of a table created in the same transaction: start the file
	 * over with a new incarnation, so stale shared state is not reused.
	 */
	SMgrRelation srel;

	RelationTruncate(rel, 0);
	srel = RelationGetSmgr(rel);
	kvlsm_init_metapage_and_manifest(rel, srel, MAIN_FORKNUM, KVLSM_KIND_TABLE,
									 RelationNeedsWAL(rel));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED &&
		smgrexists(srel, INIT_FORKNUM))
	{
		smgrtruncate(srel, (ForkNumber[]) {INIT_FORKNUM}, 1, (BlockNumber[]) {0});
		kvlsm_init_metapage_and_manifest(rel, srel, INIT_FORKNUM,
										 KVLSM_KIND_TABLE, true);
	}
	kvlsm_forget(rel);
}

/*
 * ALTER TABLE ... SET TABLESPACE: copy the file page by page, as heap does.
 * Everything an LSM holds is on its pages (metapage, manifest, SSTables,
 * and the log pages that the memtable is rebuilt from), so the copy is a
 * complete LSM: the first backend to use the new filenode loads it as after
 * a restart.  This transaction's records still in backend memory are
 * written to the log first, and dirty buffers reach the file before it is
 * read; the AccessExclusiveLock keeps writers and workers out meanwhile.
 */
void
kvlsm_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	SMgrRelation dstrel;
	char		persistence = rel->rd_rel->relpersistence;
	ForkNumber	fork;

	kvlsm_log_write_all(rel, kvlsm_attach(rel));
	FlushRelationBuffers(rel);

	/* the old filenode's shared state goes at commit, the new one's on abort */
	kvlsm_schedule_release(rel, NULL, true);
	kvlsm_schedule_release(rel, newrnode, false);

	dstrel = RelationCreateStorage(*newrnode, persistence, true);
	RelationCopyStorage(RelationGetSmgr(rel), dstrel, MAIN_FORKNUM, persistence);
	for (fork = MAIN_FORKNUM + 1; fork <= MAX_FORKNUM; fork++)
	{
		if (!smgrexists(RelationGetSmgr(rel), fork))
			continue;
		smgrcreate(dstrel, fork, false);
		/* as heap: the init fork of an unlogged table is WAL-logged too */
		if (persistence == RELPERSISTENCE_PERMANENT ||
			(persistence == RELPERSISTENCE_UNLOGGED && fork == INIT_FORKNUM))
			log_smgrcreate(newrnode, fork);
		RelationCopyStorage(RelationGetSmgr(rel), dstrel, fork, persistence);
	}
	RelationDropStorage(rel);
	smgrclose(dstrel);
}
