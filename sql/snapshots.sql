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
