/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The ring of recent compactions in shared memory.  See history.h.
 *
 * A spinlock is enough: an append copies one record, a read copies the
 * ring (a few tens of kilobytes) and nothing else happens under it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"
#include "storage/spin.h"

#include "kvlsm/history.h"

typedef struct KvlsmHistory
{
	slock_t		mutex;
	uint64		next;			/* records ever added */
	KvlsmCompactionRecord ring[KVLSM_HISTORY_SIZE];
} KvlsmHistory;

static KvlsmHistory *history = NULL;

Size
kvlsm_history_shmem_size(void)
{
	return MAXALIGN(sizeof(KvlsmHistory));
}

void
kvlsm_history_shmem_init(void)
{
	bool		found;

	history = ShmemInitStruct("kvlsm compaction history", sizeof(KvlsmHistory), &found);
	if (!found)
	{
		SpinLockInit(&history->mutex);
		history->next = 0;
	}
}

void
kvlsm_history_add(const KvlsmCompactionRecord *rec)
{
	if (history == NULL)
		return;
	SpinLockAcquire(&history->mutex);
	history->ring[history->next % KVLSM_HISTORY_SIZE] = *rec;
	history->next++;
	SpinLockRelease(&history->mutex);
}

int
kvlsm_history_copy(KvlsmCompactionRecord *out)
{
	uint64		first;
	uint64		i;
	int			n = 0;

	if (history == NULL)
		return 0;
	SpinLockAcquire(&history->mutex);
	first = history->next > KVLSM_HISTORY_SIZE ? history->next - KVLSM_HISTORY_SIZE : 0;
	for (i = first; i < history->next; i++)
		out[n++] = history->ring[i % KVLSM_HISTORY_SIZE];
	SpinLockRelease(&history->mutex);
	return n;
}
