-- kvlsm 0.1 -> 0.2: the privilege model (docs/security.md, README
-- "Privileges").  CREATE EXTENSION kvlsm runs kvlsm--0.1.sql and then this
-- script, so a new installation and an updated one end up the same.
\echo Use "ALTER EXTENSION kvlsm UPDATE TO '0.2'" to load this file. \quit

-- The trigger of kvlsm_options: it refuses to run on any other table and
-- for relations the user does not own, and nobody needs to attach it.
REVOKE ALL ON FUNCTION kvlsm_options_trigger() FROM PUBLIC;

-- Server-wide activity (every database's relations, worker processes,
-- shared memory): for monitoring roles, as pg_buffercache is.
REVOKE ALL ON FUNCTION kvlsm_workers() FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_memory() FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_compaction_history() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kvlsm_workers() TO pg_monitor;
GRANT EXECUTE ON FUNCTION kvlsm_memory() TO pg_monitor;
GRANT EXECUTE ON FUNCTION kvlsm_compaction_history() TO pg_monitor;
GRANT SELECT ON kvlsm_compactions TO pg_monitor;

-- Per-relation counters of this database, readable by everyone as
-- pg_stat_all_tables is (kvlsm_stats() and kvlsm_space() already are);
-- the named snapshots' names and xids as the kvlsm_named_snapshot catalog.
GRANT SELECT ON kvlsm_stat_all TO PUBLIC;
GRANT SELECT ON kvlsm_snapshots TO PUBLIC;

-- Testing aid (issue 21): the next process that reaches the named error
-- point raises an ERROR there, so tests can take an error path that real
-- failures (out of memory, a failed check) take only rarely; with rel,
-- only a process writing that relation does.
CREATE FUNCTION kvlsm_arm_error_point(name text, rel regclass DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_arm_error_point'
LANGUAGE C CALLED ON NULL INPUT;
REVOKE ALL ON FUNCTION kvlsm_arm_error_point(text, regclass) FROM PUBLIC;
