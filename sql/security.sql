--
-- security: kvlsm tried by ordinary roles that want more than they were
-- given (issue 20).  Every attack must fail with the right error, and the
-- session (the server) must carry on after each one.  The privilege model
-- this checks is written down in README.md ("Privileges") and
-- docs/security.md.
--
SET client_min_messages = notice;

CREATE ROLE regress_kvlsm_owner LOGIN;
CREATE ROLE regress_kvlsm_mallory LOGIN;
CREATE ROLE regress_kvlsm_monitor LOGIN IN ROLE pg_monitor;

-- a schema every role may write into, as "public" was before PostgreSQL 15
CREATE SCHEMA sec_open;
GRANT USAGE, CREATE ON SCHEMA sec_open TO PUBLIC;
GRANT CREATE ON SCHEMA public TO PUBLIC;

-- what a planted object would leave behind if it ever ran with more
-- rights than its author's
CREATE TABLE sec_open.ran (what text, as_user name, superuser bool);
GRANT INSERT, SELECT ON sec_open.ran TO PUBLIC;

SET ROLE regress_kvlsm_owner;
CREATE TABLE sec_owned (id int PRIMARY KEY, secret text) USING kvlsm;
CREATE INDEX sec_owned_secret ON sec_owned USING kvlsm_idx (secret);
INSERT INTO sec_owned SELECT g, 'secret-' || g FROM generate_series(1, 200) g;
SELECT kvlsm_set_option('sec_owned', 'memtable_size', '1MB');
GRANT INSERT ON sec_owned TO regress_kvlsm_mallory;
RESET ROLE;
SELECT kvlsm_flush('sec_owned');
SELECT kvlsm_flush('sec_owned_secret');

----------------------------------------------------------------------
-- 1. Privilege escalation through the options code.  kvlsm 0.1 recorded
-- options with SQL run as the bootstrap superuser that resolved
-- "$1::regclass", functions and operators through the caller's
-- search_path (pg_temp first for types).  Now no SQL runs at all: the
-- option catalog is changed with heap access in C.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
SET search_path = sec_open, public;

-- a function that takes over the role of whoever runs it
CREATE FUNCTION sec_open.escalate(anyelement) RETURNS bool
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sec_open.ran VALUES ('escalate', current_user,
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
	BEGIN
		EXECUTE 'ALTER ROLE regress_kvlsm_mallory SUPERUSER';
	EXCEPTION WHEN insufficient_privilege THEN NULL;
	END;
	RETURN true;
END $$;

-- functions and operators in writable schemas on the search path
CREATE FUNCTION sec_open.texteq(pg_catalog.text, pg_catalog.text) RETURNS bool
	LANGUAGE sql AS 'SELECT sec_open.escalate($1) AND $1 OPERATOR(pg_catalog.=) $2';
CREATE OPERATOR sec_open.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = sec_open.texteq);
CREATE FUNCTION sec_open.oideq_evil(pg_catalog.oid, pg_catalog.oid) RETURNS bool
	LANGUAGE sql AS 'SELECT sec_open.escalate($1) AND $1 OPERATOR(pg_catalog.=) $2';
CREATE OPERATOR public.= (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.oid, FUNCTION = sec_open.oideq_evil);
CREATE FUNCTION public.regclass(pg_catalog.text) RETURNS pg_catalog.regclass
	LANGUAGE sql AS 'SELECT sec_open.escalate($1)::int::pg_catalog.regclass';

-- temporary types that shadow the ones kvlsm's SQL named (pg_temp is
-- searched first for types), whose input runs the function above; made
-- last, as from here on they shadow those types in this whole session
CREATE DOMAIN pg_temp.regclass AS pg_catalog.oid CHECK (sec_open.escalate(VALUE));
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (sec_open.escalate(VALUE));
CREATE DOMAIN pg_temp.oid AS pg_catalog.oid CHECK (sec_open.escalate(VALUE));
-- every statement that records or forgets options
CREATE TABLE sec_m1 (a int) USING kvlsm WITH (ttl = '1 day', compression = none);
ALTER TABLE sec_m1 SET (memtable_size = '2MB');
ALTER TABLE sec_m1 RESET (compression);
CREATE INDEX sec_m1_a ON sec_m1 USING kvlsm_idx (a) WITH (compaction_style = tiered);
ALTER INDEX sec_m1_a SET (bloom_bits_per_key = 12);
SELECT kvlsm_set_option('sec_m1', 'compaction_style', 'tiered');
CREATE TEMP TABLE sec_m_temp (a int) USING kvlsm WITH (ttl = '1 hour');
SELECT relid, name, value FROM kvlsm_options
 WHERE relid IN ('sec_m1'::pg_catalog.regclass, 'sec_m1_a'::pg_catalog.regclass,
                 'sec_m_temp'::pg_catalog.regclass)
 ORDER BY relid::pg_catalog.text COLLATE "C", name COLLATE "C";
DROP TABLE sec_m1;
DROP TABLE sec_m_temp;
-- (they would shadow text, oid and regclass for the rest of this session)
DROP DOMAIN pg_temp.regclass, pg_temp.text, pg_temp.oid;
RESET search_path;
RESET ROLE;
-- nothing planted ran, nobody became superuser, and the options of the
-- dropped tables are gone
SELECT count(*) AS planted_objects_ran FROM sec_open.ran;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_kvlsm_mallory';
SELECT count(*) AS options_left FROM kvlsm_options o
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = o.relid);

----------------------------------------------------------------------
-- 2. The options trigger.  It was PUBLIC and read any table's columns as
-- (regclass, text, text): attached to another table it crashed the server.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
CREATE TABLE sec_mytrig (relid int, name int, value int);
CREATE TRIGGER sec_t AFTER INSERT ON sec_mytrig
	FOR EACH ROW EXECUTE FUNCTION kvlsm_options_trigger();
SELECT kvlsm_options_trigger();
RESET ROLE;
-- even a superuser cannot make it run on another table
CREATE TABLE sec_sutrig (relid int, name int, value int);
CREATE TRIGGER sec_t AFTER INSERT ON sec_sutrig
	FOR EACH ROW EXECUTE FUNCTION kvlsm_options_trigger();
INSERT INTO sec_sutrig VALUES (1, 2, 3);
CREATE TABLE sec_sutrig2 (relid regclass, name text, value text);
CREATE TRIGGER sec_t BEFORE INSERT ON sec_sutrig2
	FOR EACH ROW EXECUTE FUNCTION kvlsm_options_trigger();
INSERT INTO sec_sutrig2 VALUES ('sec_owned', 'ttl', '1 second');
DROP TABLE sec_sutrig, sec_sutrig2;
DROP TABLE sec_mytrig;
-- a role allowed to write the catalog still changes only what it owns
GRANT INSERT, UPDATE ON kvlsm_options TO regress_kvlsm_mallory;
SET ROLE regress_kvlsm_mallory;
INSERT INTO kvlsm_options VALUES ('sec_owned', 'ttl', '1 second');
INSERT INTO kvlsm_options VALUES ('pg_class', 'ttl', '1 second');
RESET ROLE;
REVOKE INSERT, UPDATE ON kvlsm_options FROM regress_kvlsm_mallory;
-- what pg_restore does, as a superuser, still works
CREATE TABLE sec_restored (a int) USING kvlsm;
INSERT INTO kvlsm_options VALUES ('sec_restored', 'compression', 'none');
SELECT compression FROM kvlsm_stats('sec_restored');
INSERT INTO kvlsm_options VALUES ('sec_restored', 'bogus', 'x');
DROP TABLE sec_restored;

----------------------------------------------------------------------
-- 3. Ownership: only a relation's owner changes its options, by every
-- route (as ALTER TABLE ... SET requires for PostgreSQL's own options).
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
ALTER TABLE sec_owned SET (ttl = '1 second');
ALTER TABLE sec_owned RESET (memtable_size);
ALTER TABLE sec_owned SET (ttl = '1 second', fillfactor = 50);
ALTER INDEX sec_owned_secret SET (compaction_style = tiered);
SELECT kvlsm_set_option('sec_owned', 'ttl', '1 second');
SELECT kvlsm_set_option('sec_owned_secret', 'compaction_style', 'tiered');
-- system catalogs are nobody's to change this way
SELECT kvlsm_set_option('pg_class', 'ttl', '1 second');
RESET ROLE;
ALTER TABLE pg_class SET (ttl = '1 day');
SELECT kvlsm_set_option('pg_class', 'ttl', '1 day');
-- unchanged: the rows are all there
SELECT count(*) FROM sec_owned;
SELECT name, value FROM kvlsm_options WHERE relid = 'sec_owned'::regclass ORDER BY 1;
-- the owner may
SET ROLE regress_kvlsm_owner;
ALTER TABLE sec_owned SET (compaction_style = tiered);
ALTER TABLE sec_owned RESET (compaction_style);
SELECT name, value FROM kvlsm_options WHERE relid = 'sec_owned'::regclass ORDER BY 1;
RESET ROLE;

----------------------------------------------------------------------
-- 4. Lock before permission: see test/isolation/specs/security_locks.spec
-- (a non-owner's attempt fails at once instead of queueing an
-- AccessExclusiveLock behind a reader).  Here, without a reader: the
-- checks come before the lock, so even lock_timeout = 1ms cannot matter.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
SET lock_timeout = '1ms';
ALTER TABLE sec_owned SET (ttl = '1 day');
SELECT kvlsm_set_option('sec_owned', 'ttl', '1 day');
RESET lock_timeout;
RESET ROLE;

----------------------------------------------------------------------
-- 5. Key disclosure: kvlsm_levels and kvlsm_sstables show an index's key
-- values only to roles that may read them, on the terms of pg_stats.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
SELECT count(*) > 0 AS has_sstables, bool_and(min_key IS NULL AND max_key IS NULL) AS keys_hidden
  FROM kvlsm_sstables('sec_owned_secret');
SELECT bool_and(min_key IS NULL AND max_key IS NULL) AS keys_hidden
  FROM kvlsm_levels('sec_owned_secret');
SELECT secret FROM sec_owned LIMIT 1;
-- a table's keys are row ids: no data
SELECT bool_and(min_key IS NOT NULL) AS rowids_shown FROM kvlsm_sstables('sec_owned');
RESET ROLE;
-- SELECT on the indexed column is enough, as for pg_stats
GRANT SELECT (secret) ON sec_owned TO regress_kvlsm_mallory;
SET ROLE regress_kvlsm_mallory;
SELECT min_key, max_key FROM kvlsm_sstables('sec_owned_secret') WHERE state = 'live' ORDER BY id LIMIT 1;
RESET ROLE;
-- ...but not while row-level security applies to the role
ALTER TABLE sec_owned ENABLE ROW LEVEL SECURITY;
CREATE POLICY sec_p ON sec_owned FOR SELECT USING (id < 10);
SET ROLE regress_kvlsm_mallory;
SELECT bool_and(min_key IS NULL) AS keys_hidden FROM kvlsm_sstables('sec_owned_secret');
SELECT bool_and(min_key IS NULL) AS keys_hidden FROM kvlsm_levels('sec_owned_secret');
RESET ROLE;
-- the owner sees them (RLS does not apply to the owner)
SET ROLE regress_kvlsm_owner;
SELECT bool_and(min_key IS NOT NULL) AS keys_shown FROM kvlsm_sstables('sec_owned_secret')
 WHERE state = 'live';
RESET ROLE;
DROP POLICY sec_p ON sec_owned;
ALTER TABLE sec_owned DISABLE ROW LEVEL SECURITY;
REVOKE SELECT (secret) ON sec_owned FROM regress_kvlsm_mallory;
-- an expression index needs SELECT on the table
SET ROLE regress_kvlsm_owner;
CREATE INDEX sec_owned_expr ON sec_owned USING kvlsm_idx (upper(secret));
RESET ROLE;
SELECT kvlsm_flush('sec_owned_expr');
GRANT SELECT (secret) ON sec_owned TO regress_kvlsm_mallory;
SET ROLE regress_kvlsm_mallory;
SELECT bool_and(min_key IS NULL) AS keys_hidden FROM kvlsm_sstables('sec_owned_expr');
RESET ROLE;
REVOKE SELECT (secret) ON sec_owned FROM regress_kvlsm_mallory;

----------------------------------------------------------------------
-- 6. Option ranges: a ttl whose end of life would not fit a timestamp
-- made every new row invisible; every option is range-checked.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '2562047788 hours');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '1500 years');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '365251 days');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '1 day -1 hour');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '-1 day');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '178956971 years');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = 'soon');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl);
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (memtable_size = '10TB');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (memtable_size = '-1');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (bloom_bits_per_key = 65);
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (bloom_bits_per_key = '1e10');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (compaction_style = 'sideways');
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (compression = 'zip');
-- the longest ttl there is: rows stay visible
CREATE TABLE sec_ttl (a int) USING kvlsm WITH (ttl = '365250 days');
INSERT INTO sec_ttl VALUES (1), (2);
SELECT count(*) FROM sec_ttl;
ALTER TABLE sec_ttl SET (ttl = '2562047788 hours');
SELECT kvlsm_set_option('sec_ttl', 'ttl', '2562047788 hours');
SELECT count(*) FROM sec_ttl;
DROP TABLE sec_ttl;
RESET ROLE;

----------------------------------------------------------------------
-- 7. kvlsmctl: see test/t/016_kvlsmctl_security.pl.
-- 8. Smaller things: views, IF EXISTS, repeated options, CREATE TABLE AS.
----------------------------------------------------------------------
SET ROLE regress_kvlsm_mallory;
SELECT count(*) >= 2 AS sees_stats FROM kvlsm_stat_all;
SELECT count(*) >= 0 AS sees_snapshots FROM kvlsm_snapshots;
SELECT count(*) FROM kvlsm_compactions;
SELECT count(*) FROM kvlsm_workers();
ALTER TABLE IF EXISTS sec_missing SET (ttl = '1 day');
ALTER TABLE IF EXISTS sec_missing SET (ttl = '1 day', fillfactor = 50);
ALTER TABLE sec_missing SET (ttl = '1 day');
CREATE TABLE sec_dup (a int) USING kvlsm WITH (ttl = '1 day', ttl = '2 days');
CREATE TABLE sec_dup (a int) USING kvlsm WITH (compression = none, compression = lz4);
CREATE TABLE sec_dup (a int) USING kvlsm;
ALTER TABLE sec_dup SET (memtable_size = '1MB', memtable_size = '2MB');
CREATE INDEX sec_dup_a ON sec_dup USING kvlsm_idx (a)
	WITH (compaction_style = tiered, compaction_style = leveled);
DROP TABLE sec_dup;
-- CREATE TABLE / MATERIALIZED VIEW ... USING kvlsm WITH (...) AS
CREATE TABLE sec_ctas USING kvlsm WITH (ttl = '1 day', compression = none)
	AS SELECT g AS a FROM generate_series(1, 10) g;
SELECT count(*), (SELECT compression FROM kvlsm_stats('sec_ctas')) FROM sec_ctas;
SELECT name, value FROM kvlsm_options WHERE relid = 'sec_ctas'::regclass ORDER BY 1;
CREATE MATERIALIZED VIEW sec_mv USING kvlsm WITH (compaction_style = tiered)
	AS SELECT a FROM sec_ctas;
SELECT compaction_style FROM kvlsm_stats('sec_mv');
CREATE TABLE sec_ctas_heap WITH (ttl = '1 day') AS SELECT 1 AS a;
-- IF NOT EXISTS on an existing table leaves its options alone
CREATE TABLE IF NOT EXISTS sec_ctas (a int) USING kvlsm WITH (compression = lz4);
CREATE TABLE IF NOT EXISTS sec_ctas USING kvlsm WITH (compression = lz4) AS SELECT 1 AS a;
SELECT compression FROM kvlsm_stats('sec_ctas');
DROP MATERIALIZED VIEW sec_mv;
DROP TABLE sec_ctas;
RESET ROLE;
SET ROLE regress_kvlsm_monitor;
SELECT count(*) >= 0 AS monitor_sees_compactions FROM kvlsm_compactions;
SELECT count(*) >= 0 AS monitor_sees_workers FROM kvlsm_workers();
SELECT attached_relations >= 0 AS monitor_sees_memory FROM kvlsm_memory();
RESET ROLE;

----------------------------------------------------------------------
-- Who may call what: every function of the extension, for an ordinary
-- role and a pg_monitor member (superusers may call everything).
----------------------------------------------------------------------
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_kvlsm_mallory', p.oid, 'EXECUTE') AS ordinary_role,
       has_function_privilege('regress_kvlsm_monitor', p.oid, 'EXECUTE') AS pg_monitor
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'kvlsm'
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT c.relname,
       has_table_privilege('regress_kvlsm_mallory', c.oid, 'SELECT') AS ordinary_role,
       has_table_privilege('regress_kvlsm_monitor', c.oid, 'SELECT') AS pg_monitor,
       has_table_privilege('regress_kvlsm_mallory', c.oid, 'INSERT,UPDATE,DELETE') AS ordinary_writes
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'kvlsm'
 ORDER BY c.relname COLLATE "C";

-- and one probe of each function an ordinary role may not call
SET ROLE regress_kvlsm_mallory;
SELECT kvlsm_flush('sec_owned');
SELECT kvlsm_compact('sec_owned');
SELECT kvlsm_compact_range('sec_owned', '1', '2');
SELECT kvlsm_stats_reset('sec_owned');
SELECT * FROM kvlsm_verify('sec_owned');
SELECT * FROM kvlsm_repair('sec_owned');
SELECT * FROM kvlsm_sstable_header('sec_owned', 1);
SELECT * FROM kvlsm_sstable_dump('sec_owned', 1);
SELECT * FROM kvlsm_key_history('sec_owned_secret', 'secret-1');
SELECT kvlsm_arm_crash_point('log-write');
SELECT kvlsm_arm_error_point('log-between-pages');
SELECT * FROM kvlsm_snapshot_create('sec_snap');
SELECT kvlsm_snapshot_drop('sec_snap');
SELECT * FROM kvlsm_snapshot_retained('sec_snap');
SELECT * FROM kvlsm_compaction_history();
SELECT * FROM kvlsm_memory();
-- and of those it may: on what it may see, and no more
SELECT memtable_bytes >= 0 AS ok FROM kvlsm_stats('sec_owned');
SELECT total_pages > 0 AS ok FROM kvlsm_space('sec_owned');
SELECT * FROM kvlsm_snapshot_retained_estimate('no_such_snapshot');
BEGIN;
SELECT kvlsm_snapshot_use('no_such_snapshot');
ROLLBACK;
SELECT kvlsm_rls_scope(42, true);
SELECT kvlsm_rls_scope(kvlsm_rls_enter(), true);
-- wrong kinds of relations are refused, not misread
SELECT * FROM kvlsm_stats('pg_class');
SELECT * FROM kvlsm_levels('sec_open.ran');
SELECT * FROM kvlsm_sstables('pg_class_oid_index');
-- no relation at all: NULL, as pg_relation_size(0) gives
SELECT * FROM kvlsm_space(0);
SELECT kvlsm_set_option('sec_open.ran', 'ttl', '1 day');
SELECT kvlsm_set_option('sec_owned', 'no_such_option', '1');
RESET ROLE;

-- the server is still up, and nobody gained anything
SELECT count(*) AS planted_objects_ran FROM sec_open.ran;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'regress_kvlsm_%' ORDER BY 1;

DROP TABLE sec_owned;
DROP FUNCTION public.regclass(text);
DROP OPERATOR public.= (oid, oid);
DROP SCHEMA sec_open CASCADE;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DROP ROLE regress_kvlsm_owner;
DROP ROLE regress_kvlsm_mallory;
DROP ROLE regress_kvlsm_monitor;
