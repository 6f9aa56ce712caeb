/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  kvlsm's part in PostgreSQL's DDL: the utility and object-access hooks
 *	  (src/ddl/options.c).  They take kvlsm's options out of CREATE TABLE,
 *	  CREATE TABLE AS, CREATE INDEX and ALTER ... SET/RESET and store them
 *	  (the catalog kvlsm_options now, the metapage at commit), write a
 *	  backend's pending records before DDL that copies an LSM's pages, keep
 *	  workers out of databases being dropped, moved or copied, refuse GIN and
 *	  BRIN indexes on kvlsm tables and foreign keys to tables with a ttl, and
 *	  release the shared state of dropped relations.  The layer above table/
 *	  and index/: it calls them, they never call it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_DDL_H
#define KVLSM_DDL_H

/* options.c */
extern void kvlsm_options_init(void);

#endif							/* KVLSM_DDL_H */
