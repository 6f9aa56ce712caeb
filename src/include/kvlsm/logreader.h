/*-------------------------------------------------------------------------
 *
 * logreader.h
 *	  The reader of the log pages that logwriter.c writes: brings an LSM's
 *	  memtable generations in line with the chains the metapage names.
 *	  Owned by src/engine/logreader.c; called by attach (registry.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_LOGREADER_H
#define KVLSM_LOGREADER_H

#include "kvlsm/lsm.h"

/* logreader.c */
extern bool kvlsm_catch_up(Relation rel, KvlsmShared *sh,
						   const KvlsmMetaPageData *meta,
						   const KvlsmKeyOps *ops);

#endif							/* KVLSM_LOGREADER_H */
