-- named snapshots: create, time-travel reads, drop, and the errors
CREATE TABLE ns (id int PRIMARY KEY, v text) USING kvlsm;
INSERT INTO ns SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT name, xmin IS NOT NULL AS has_xmin FROM kvlsm_snapshot_create('before');
UPDATE ns SET v = 'changed' WHERE id <= 10;
DELETE FROM ns WHERE id > 90;
INSERT INTO ns VALUES (1000, 'new');
SELECT count(*), count(*) FILTER (WHERE v = 'changed') AS changed FROM ns;

-- through the snapshot: sequential scans and btree index scans
BEGIN;
SELECT kvlsm_snapshot_use('before');
SELECT count(*), count(*) FILTER (WHERE v = 'changed') AS changed, max(id) FROM ns;
SET LOCAL enable_seqscan = off;
SELECT v FROM ns WHERE id = 5;
SELECT v FROM ns WHERE id = 95;
SELECT count(*) FROM ns WHERE id = 1000;
SELECT kvlsm_snapshot_use('before');
-- the transaction is read only
INSERT INTO ns VALUES (2000, 'x');
ROLLBACK;

-- a kvlsm_idx index built after the snapshot serves it too
CREATE INDEX ns_v ON ns USING kvlsm_idx (v);
BEGIN;
SELECT kvlsm_snapshot_use('before');
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT count(*) FROM ns WHERE v = 'changed';
SELECT id FROM ns WHERE v = 'v5';
SELECT id FROM ns WHERE v = 'v95';
COMMIT;

-- heap tables keep the transaction's own snapshot
CREATE TABLE hp (id int);
INSERT INTO hp VALUES (1);
BEGIN;
SELECT kvlsm_snapshot_use('before');
SELECT count(*) AS heap_rows_now FROM hp;
COMMIT;

-- a SECURITY DEFINER function reads current data
CREATE FUNCTION ns_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS 'SELECT count(*) FROM ns';
BEGIN;
SELECT kvlsm_snapshot_use('before');
SELECT count(*) AS historic, ns_count() AS current FROM ns;
ROLLBACK;

-- errors
SELECT kvlsm_snapshot_create('before');
SELECT kvlsm_snapshot_create('');
SELECT kvlsm_snapshot_use('before');
BEGIN;
SELECT kvlsm_snapshot_use('nosuch');
ROLLBACK;
BEGIN;
INSERT INTO hp VALUES (2);
SELECT kvlsm_snapshot_use('before');
ROLLBACK;
BEGIN;
DECLARE c CURSOR FOR SELECT 1;
SELECT kvlsm_snapshot_use('before');
ROLLBACK;
BEGIN;
SELECT name FROM kvlsm_snapshot_create('x');
SELECT name FROM kvlsm_snapshot_create('y');
ROLLBACK;
SELECT kvlsm_snapshot_drop('nosuch');

-- history begins when the table's file was created: TRUNCATE after the
-- snapshot, or a table created after it, is an error, never today's rows
CREATE TABLE nt (id int) USING kvlsm;
INSERT INTO nt VALUES (1);
SELECT name FROM kvlsm_snapshot_create('s2');
TRUNCATE nt;
INSERT INTO nt VALUES (2);
CREATE TABLE later (id int) USING kvlsm;
BEGIN;
SELECT kvlsm_snapshot_use('s2');
SELECT * FROM nt;
ROLLBACK;
BEGIN;
SELECT kvlsm_snapshot_use('s2');
SELECT * FROM later;
ROLLBACK;

-- only the owner may time travel; creating snapshots is not for PUBLIC
CREATE ROLE regress_kvlsm_tt;
GRANT SELECT ON ns TO regress_kvlsm_tt;
SET ROLE regress_kvlsm_tt;
BEGIN;
SELECT kvlsm_snapshot_use('before');
SELECT count(*) FROM ns;
ROLLBACK;
SELECT kvlsm_snapshot_create('z');
RESET ROLE;

SELECT name, in_progress, usable FROM kvlsm_snapshots ORDER BY name;
SELECT kvlsm_snapshot_drop('before'), kvlsm_snapshot_drop('s2');
SELECT count(*) FROM kvlsm_snapshots;
DROP FUNCTION ns_count();
DROP TABLE ns, hp, nt, later;
REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM regress_kvlsm_tt;
DROP ROLE regress_kvlsm_tt;

-- while time travelling the planner trusts no unique index of a kvlsm table
-- (one built after the snapshot must not justify join removal)
CREATE TABLE jl (id int) USING kvlsm;
CREATE TABLE ju (id int PRIMARY KEY) USING kvlsm;
EXPLAIN (COSTS OFF) SELECT jl.id FROM jl LEFT JOIN ju ON ju.id = jl.id;
SELECT name FROM kvlsm_snapshot_create('plan');
BEGIN;
SELECT kvlsm_snapshot_use('plan');
EXPLAIN (COSTS OFF) SELECT jl.id FROM jl LEFT JOIN ju ON ju.id = jl.id;
ROLLBACK;
SELECT kvlsm_snapshot_drop('plan');
DROP TABLE jl, ju;

-- no parallel plans while time travelling: workers would read current rows
CREATE TABLE par (id int, v int) USING kvlsm;
INSERT INTO par SELECT g, 0 FROM generate_series(1, 20000) g;
SELECT name FROM kvlsm_snapshot_create('par');
UPDATE par SET v = 1;
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT v, count(*) FROM par GROUP BY v;
SELECT kvlsm_snapshot_use('par');
EXPLAIN (COSTS OFF) SELECT v, count(*) FROM par GROUP BY v;
SELECT v, count(*) FROM par GROUP BY v;
ROLLBACK;
SELECT kvlsm_snapshot_drop('par');
DROP TABLE par;

-- row-level security while time travelling: a policy that only looks at the
-- row is applied as usual; one that reads tables (a subquery, a function)
-- reads current data, while the rows it filters are the snapshot's (the
-- tables belong to a role that RLS applies to: superusers bypass it)
CREATE ROLE regress_kvlsm_rls;
CREATE TABLE acl (who text) USING kvlsm;
CREATE TABLE doc (id int, owner text, body text) USING kvlsm;
CREATE INDEX doc_id ON doc (id);
INSERT INTO acl VALUES ('regress_kvlsm_rls');
INSERT INTO doc VALUES (1, 'regress_kvlsm_rls', 'mine'), (2, 'someone else', 'theirs');
ALTER TABLE acl OWNER TO regress_kvlsm_rls;
ALTER TABLE doc OWNER TO regress_kvlsm_rls;
ALTER TABLE doc ENABLE ROW LEVEL SECURITY;
ALTER TABLE doc FORCE ROW LEVEL SECURITY;
CREATE POLICY doc_own ON doc USING (owner = current_user);
SELECT name FROM kvlsm_snapshot_create('rls');
SET ROLE regress_kvlsm_rls;
SELECT id, body FROM doc ORDER BY id;
BEGIN;
SELECT kvlsm_snapshot_use('rls');
SELECT id, body FROM doc ORDER BY id;
ROLLBACK;
DROP POLICY doc_own ON doc;
CREATE POLICY doc_acl ON doc USING (EXISTS (SELECT 1 FROM acl WHERE who = current_user));
-- access revoked after the snapshot: nothing, then or now
DELETE FROM acl;
SELECT id, body FROM doc ORDER BY id;
BEGIN;
SELECT kvlsm_snapshot_use('rls');
SELECT id, body FROM doc ORDER BY id;
SELECT count(*) FROM acl;
ROLLBACK;
-- access granted again, rows changed since: the snapshot's rows, through
-- a seq scan and through an index
INSERT INTO acl VALUES ('regress_kvlsm_rls');
UPDATE doc SET body = 'changed';
SELECT id, body FROM doc ORDER BY id;
BEGIN;
SELECT kvlsm_snapshot_use('rls');
SELECT id, body FROM doc ORDER BY id;
SET LOCAL enable_seqscan = off;
SELECT id, body FROM doc WHERE id = 1;
EXPLAIN (COSTS OFF) SELECT id, body FROM doc WHERE id = 1;
ROLLBACK;
-- a policy through functions: one the planner runs, one it inlines (a
-- set-returning SQL function), one that raises; an error caught by a
-- subtransaction leaves no scope open behind it
DROP POLICY doc_acl ON doc;
RESET ROLE;
CREATE FUNCTION acl_ok(int) RETURNS bool LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF $1 = 2 AND current_setting('kvlsm_test.boom', true) = 'on' THEN
    RAISE EXCEPTION 'boom';
  END IF;
  RETURN EXISTS (SELECT 1 FROM acl WHERE who = current_user);
END $$;
CREATE FUNCTION all_docs() RETURNS SETOF doc LANGUAGE sql STABLE AS 'SELECT * FROM doc';
SET ROLE regress_kvlsm_rls;
CREATE POLICY doc_fn ON doc USING (acl_ok(id));
BEGIN;
SELECT kvlsm_snapshot_use('rls');
SELECT id, body FROM doc ORDER BY id;
SELECT id, body FROM all_docs() ORDER BY id;
SET LOCAL kvlsm_test.boom = on;
DO $$
BEGIN
  PERFORM count(*) FROM doc;
EXCEPTION WHEN raise_exception THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
SET LOCAL kvlsm_test.boom = off;
SELECT id, body FROM doc ORDER BY id;
ROLLBACK;
DROP POLICY doc_fn ON doc;
CREATE POLICY doc_inl ON doc USING (id IN (SELECT 1 FROM acl WHERE who = current_user));
DELETE FROM acl;
BEGIN;
SELECT kvlsm_snapshot_use('rls');
SELECT id, body FROM all_docs() ORDER BY id;
EXPLAIN (COSTS OFF) SELECT id, body FROM all_docs();
ROLLBACK;
-- the scope functions are internal and check their pairing
SELECT kvlsm_rls_scope(42, true);
RESET ROLE;
SELECT kvlsm_snapshot_drop('rls');
DROP FUNCTION acl_ok(int), all_docs();
DROP TABLE doc, acl;
DROP ROLE regress_kvlsm_rls;

-- what a snapshot retains: the versions it sees that nothing else keeps
-- (wait until no other session holds back the horizon, e.g. autovacuum)
CREATE TABLE rb (id int, v text) USING kvlsm;
INSERT INTO rb SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
SELECT name FROM kvlsm_snapshot_create('rb');
SELECT retained_bytes, retained_estimated_at FROM kvlsm_snapshots WHERE name = 'rb';
DELETE FROM rb WHERE id <= 500;
UPDATE rb SET v = 'y' WHERE id > 900;
DO $$
BEGIN
  FOR i IN 1 .. 300 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid());
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT row_versions, bytes > 600 * 100 AS bytes_ok
  FROM kvlsm_snapshot_retained('rb') WHERE relation = 'rb'::regclass;
SELECT retained_bytes > 600 * 100 AS in_view, retained_estimated_at IS NOT NULL AS dated
  FROM kvlsm_snapshots WHERE name = 'rb';
-- a table created after the snapshot keeps nothing for it
CREATE TABLE rb_later (id int) USING kvlsm;
SELECT count(*) FROM kvlsm_snapshot_retained('rb') WHERE relation = 'rb_later'::regclass;
-- not for PUBLIC; unknown names are errors
CREATE ROLE regress_kvlsm_rb;
SET ROLE regress_kvlsm_rb;
SELECT * FROM kvlsm_snapshot_retained('rb');
RESET ROLE;
DROP ROLE regress_kvlsm_rb;
SELECT * FROM kvlsm_snapshot_retained('no such snapshot');
SELECT kvlsm_snapshot_drop('rb');
SELECT bytes FROM kvlsm_snapshot_retained_estimate('rb');
DROP TABLE rb, rb_later;
