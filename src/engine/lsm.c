/*-------------------------------------------------------------------------
 *
 * lsm.c
 *	  The write path of one LSM: a record enters the active memtable and
 *	  the backend's pending log buffer (kvlsm_put, and deferred puts in
 *	  batches), and the key order the layer above registers.  The rest of
 *	  the LSM is in the files lsm.h lists.
 *
 * On a primary the memtable is "authoritative": every record enters it
 * before its log copy is written (logwriter.c writes the copy, at the
 * latest before commit).  A write takes the LSM lock exclusively for the
 * insert alone and does no I/O but the rare metapage edit that reserves
 * the next chunk of sequence numbers (meta.c), so callers may hold a row
 * stripe lock (lock order in lsm.h).  Servers in recovery refuse writes.
 *
 * Callers: the table and index AMs (kvlsm_put), the log writer
 * (kvlsm_put_deferred, kvlsm_mark_aborted_node), _PG_init (the key-ops
 * provider).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"

#include "kvlsm/crashpoint.h"
#include "kvlsm/logwriter.h"
#include "kvlsm/lsm.h"

/* how the layer above orders the keys of a relation's LSM */
static KvlsmKeyOpsProvider keyops_provider = NULL;

void
kvlsm_set_keyops_provider(KvlsmKeyOpsProvider provider)
{
	keyops_provider = provider;
}

const KvlsmKeyOps *
kvlsm_keyops(Relation rel)
{
	if (keyops_provider != NULL)
		return keyops_provider(rel);
	return &kvlsm_bytewise_keyops;
}

static int
bytewise_cmp(const char *a, int alen, const char *b, int blen, void *arg)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

KvlsmKeyOps kvlsm_bytewise_keyops = {bytewise_cmp, NULL, NULL};

static void
refuse_write_in_recovery(Relation rel)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot write to kvlsm relation \"%s\" during recovery",
						RelationGetRelationName(rel))));
}

/*
 * Write one record: it enters the active memtable at once (visible to
 * other backends' dirty-snapshot checks) and the backend's pending log
 * buffer.  Returns its sequence number.  No I/O except a rare metapage
 * update when a sequence chunk runs out, so callers may hold a row stripe
 * lock.
 */
uint64
kvlsm_put(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
		  const char *key, int keylen, uint16 flags,
		  const char *val, int vallen)
{
	KvlsmSkipNode *node;
	uint64		seq;

	refuse_write_in_recovery(rel);
	if (keylen + vallen > KVLSM_MAX_RECORD_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm record of %d bytes is too large for relation \"%s\"",
						keylen + vallen, RelationGetRelationName(rel)),
				 errdetail("The maximum is %d bytes after TOAST compression.",
						   (int) KVLSM_MAX_RECORD_SIZE)));

	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	if (sh->active.head == NULL && !kvlsm_memgen_init(&sh->active, sh->active.genid))
		node = NULL;
	else
	{
		seq = kvlsm_next_seq(rel, sh);
		node = kvlsm_memgen_insert(&sh->active, key, keylen, seq, flags,
								   val, vallen, ops->cmp, ops->arg);
	}
	if (node == NULL)
	{
		LWLockRelease(&sh->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kvlsm memtable memory is full"),
				 errhint("Increase kvlsm.memtable_memory, or lower memtable_size of busy relations.")));
	}
	sh->stats.puts++;
	if (sh->active.entries == 1)
		sh->active_since = GetCurrentTimestamp();
	kvlsm_log_pending_add(rel, sh, ops, node, GetCurrentTransactionNestLevel());
	if (sh->active.bytes >= (uint64) sh->memtable_size)
		sh->flush_requested = true;
	LWLockRelease(&sh->lock);
	kvlsm_crash_point(KVLSM_CP_INSERT_BEFORE_LOG);
	return seq;
}

/*
 * Put deferred records (logwriter.c) into the memtable under one
 * acquisition of the LSM lock: concurrent writers of one index otherwise
 * queue on that lock for every row.  Returns how many went in; fewer than
 * n only when the arena is full (the caller reports it).
 */
int
kvlsm_put_deferred(Relation rel, KvlsmShared *sh, const KvlsmKeyOps *ops,
				   KvlsmDeferredPut *puts, int n)
{
	int			i;

	refuse_write_in_recovery(rel);
	LWLockAcquire(&sh->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		KvlsmSkipNode *node;

		if (puts[i].applied)
			continue;
		if (sh->active.head == NULL && !kvlsm_memgen_init(&sh->active, sh->active.genid))
			break;
		node = kvlsm_memgen_insert(&sh->active, puts[i].key, puts[i].keylen,
								   kvlsm_next_seq(rel, sh), puts[i].flags, NULL, 0,
								   ops->cmp, ops->arg);
		if (node == NULL)
			break;
		sh->stats.puts++;
		if (sh->active.entries == 1)
			sh->active_since = GetCurrentTimestamp();
		kvlsm_log_pending_add(rel, sh, ops, node, puts[i].nestlevel);
		puts[i].applied = true;
	}
	if (sh->active.bytes >= (uint64) sh->memtable_size)
		sh->flush_requested = true;
	LWLockRelease(&sh->lock);
	if (i > 0)
		kvlsm_crash_point(KVLSM_CP_INSERT_BEFORE_LOG);
	return i;
}

void
kvlsm_mark_aborted_node(KvlsmSkipNode *node)
{
	node->aborted = 1;
}
