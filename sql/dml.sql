-- The same DML script on a heap table and a kvlsm table must give identical
-- results (see include/dml_ops.psql).
CREATE EXTENSION IF NOT EXISTS kvlsm;
SET kvlsm.default_memtable_size = '64kB';   -- flush often, so SSTables take part
CREATE TABLE h (id int, grp int, note text) USING heap;
CREATE TABLE k (id int, grp int, note text) USING kvlsm;
\getenv abs_srcdir PG_ABS_SRCDIR
\set tbl h
\i :abs_srcdir/sql/include/dml_ops.psql
\set tbl k
\i :abs_srcdir/sql/include/dml_ops.psql

SELECT count(*), sum(id), sum(grp), count(note) FROM h;
SELECT count(*), sum(id), sum(grp), count(note) FROM k;
SELECT count(*) AS only_in_heap FROM (SELECT * FROM h EXCEPT ALL SELECT * FROM k) d;
SELECT count(*) AS only_in_kvlsm FROM (SELECT * FROM k EXCEPT ALL SELECT * FROM h) d;
SELECT * FROM k WHERE id < 0 OR id IN (100, 101, 200, 201) OR id > 3000 ORDER BY id;
SELECT sstables > 0 AS flushed_to_sstables FROM kvlsm_stats('k');

-- ON CONFLICT needs a btree unique index (arbiter)
CREATE TABLE hu (id int PRIMARY KEY, n int) USING heap;
CREATE TABLE ku (id int PRIMARY KEY, n int) USING kvlsm;
INSERT INTO hu SELECT g, 0 FROM generate_series(1, 100) g;
INSERT INTO ku SELECT g, 0 FROM generate_series(1, 100) g;
INSERT INTO hu SELECT g % 150, 1 FROM generate_series(1, 300) g ON CONFLICT DO NOTHING;
INSERT INTO ku SELECT g % 150, 1 FROM generate_series(1, 300) g ON CONFLICT DO NOTHING;
INSERT INTO hu VALUES (5, 1), (500, 1) ON CONFLICT (id) DO UPDATE SET n = hu.n + excluded.n + 10;
INSERT INTO ku VALUES (5, 1), (500, 1) ON CONFLICT (id) DO UPDATE SET n = ku.n + excluded.n + 10;
SELECT count(*), sum(n) FROM hu;
SELECT count(*), sum(n) FROM ku;
SELECT * FROM ku WHERE id IN (5, 500) ORDER BY id;
INSERT INTO ku VALUES (5, 0);
SELECT count(*) AS only_in_one FROM ((SELECT * FROM hu EXCEPT ALL SELECT * FROM ku) UNION ALL (SELECT * FROM ku EXCEPT ALL SELECT * FROM hu)) d;

-- foreign keys in both directions, with cascades
CREATE TABLE kparent (id int PRIMARY KEY, name text) USING kvlsm;
CREATE TABLE kchild (id int PRIMARY KEY, pid int REFERENCES kparent ON DELETE CASCADE ON UPDATE CASCADE) USING kvlsm;
CREATE TABLE hchild (id int, pid int REFERENCES kparent ON DELETE SET NULL) USING heap;
INSERT INTO kparent SELECT g, 'p' || g FROM generate_series(1, 10) g;
INSERT INTO kchild SELECT g, g % 10 + 1 FROM generate_series(1, 50) g;
INSERT INTO hchild VALUES (1, 3), (2, 4);
INSERT INTO kchild VALUES (100, 99);
DELETE FROM kparent WHERE id = 3;
UPDATE kparent SET id = 40 WHERE id = 4;
SELECT count(*) FROM kchild WHERE pid = 3;
SELECT count(*) FROM kchild WHERE pid = 40;
SELECT * FROM hchild ORDER BY id;
-- heap parent, kvlsm child
CREATE TABLE hparent (id int PRIMARY KEY) USING heap;
CREATE TABLE kchild2 (pid int REFERENCES hparent) USING kvlsm;
INSERT INTO hparent VALUES (1);
INSERT INTO kchild2 VALUES (1);
INSERT INTO kchild2 VALUES (2);
DELETE FROM hparent WHERE id = 1;

-- TOAST: values of 1 MB round-trip
CREATE TABLE ktoast (id int, big text) USING kvlsm;
INSERT INTO ktoast SELECT g, repeat(md5(g::text), 32768) FROM generate_series(1, 3) g;
SELECT id, length(big), md5(big) = md5(repeat(md5(id::text), 32768)) AS intact FROM ktoast ORDER BY id;
UPDATE ktoast SET big = big || 'tail' WHERE id = 2;
SELECT kvlsm_flush('ktoast');
SELECT id, length(big), right(big, 4) FROM ktoast ORDER BY id;
SELECT reltoastrelid <> 0 AS has_toast FROM pg_class WHERE relname = 'ktoast';
-- incompressible wide value
INSERT INTO ktoast SELECT 4, string_agg(md5(g::text), '') FROM generate_series(1, 40000) g;
SELECT id, length(big) FROM ktoast WHERE id = 4;

-- TRUNCATE, in and out of the creating transaction
TRUNCATE k;
SELECT count(*) FROM k;
INSERT INTO k VALUES (1, 1, 'after truncate');
SELECT * FROM k;
BEGIN;
CREATE TABLE ktr (id int) USING kvlsm;
INSERT INTO ktr SELECT generate_series(1, 100);
TRUNCATE ktr;
INSERT INTO ktr VALUES (7);
COMMIT;
SELECT * FROM ktr;
BEGIN;
TRUNCATE k;
INSERT INTO k VALUES (2, 2, 'rolled back truncate');
ROLLBACK;
SELECT * FROM k;

-- VACUUM and ANALYZE
CREATE TABLE kan (id int, v int) USING kvlsm;
INSERT INTO kan SELECT g, g % 100 FROM generate_series(1, 20000) g;
CREATE INDEX kan_id ON kan (id);
DELETE FROM kan WHERE id % 4 = 0;
VACUUM kan;
-- VACUUM handed the dead row ids to the index's bulk delete
SELECT reltuples FROM pg_class WHERE relname = 'kan_id';
SET enable_seqscan = off;
SELECT count(*) FROM kan WHERE id BETWEEN 1 AND 100;
RESET enable_seqscan;
ANALYZE kan;
SELECT reltuples BETWEEN 15000 * 0.9 AND 15000 * 1.1 AS reltuples_within_10pct FROM pg_class WHERE relname = 'kan';
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables WHERE relname = 'kan';
EXPLAIN (COSTS OFF) SELECT * FROM kan WHERE v = 5;
SELECT count(*) FROM kan WHERE v = 5;
-- VACUUM FULL rewrites the table
VACUUM FULL kan;
SELECT count(*), sum(id) FROM kan;

-- pgbench -i style: TRUNCATE + COPY FREEZE in one transaction
CREATE TABLE kfreeze (id int, v text) USING kvlsm;
BEGIN;
TRUNCATE kfreeze;
COPY kfreeze FROM STDIN (FREEZE);
1	one
2	two
\.
COMMIT;
SELECT * FROM kfreeze ORDER BY id;

-- hash and GiST indexes on kvlsm tables
CREATE TABLE kidx (id int, p point) USING kvlsm;
INSERT INTO kidx SELECT g, point(g, g) FROM generate_series(1, 1000) g;
CREATE INDEX kidx_hash ON kidx USING hash (id);
CREATE INDEX kidx_gist ON kidx USING gist (p);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM kidx WHERE id = 77;
SELECT * FROM kidx WHERE id = 77;
SELECT id FROM kidx WHERE p <@ box '((10,10),(12,12))' ORDER BY id;
RESET enable_seqscan;
RESET enable_bitmapscan;

DROP TABLE h, k, hu, ku, hchild, kchild, kparent, kchild2, hparent, ktoast, ktr, kan, kfreeze, kidx;

-- table rewrites and per-row validation scans (the slot owns every tuple it is given)
CREATE TABLE krw (id int, v text) USING kvlsm;
INSERT INTO krw SELECT g, 'v' || g FROM generate_series(1, 2000) g;
ALTER TABLE krw ADD CONSTRAINT krw_pos CHECK (id > 0);
ALTER TABLE krw ALTER COLUMN id TYPE bigint;
ALTER TABLE krw ADD COLUMN extra int DEFAULT 7;
ALTER TABLE krw ADD COLUMN vol float8 DEFAULT random();
ALTER TABLE krw ADD PRIMARY KEY (id);
CREATE MATERIALIZED VIEW kmv USING kvlsm AS SELECT id, v FROM krw WHERE id <= 10;
REFRESH MATERIALIZED VIEW kmv;
SELECT count(*), sum(id), sum(extra) FROM krw;
SELECT count(*) FROM kmv;
DROP MATERIALIZED VIEW kmv;
DROP TABLE krw;

-- a kvlsm table created in a transaction with a rolled-back savepoint
BEGIN;
CREATE TABLE ksp (x int) USING kvlsm;
SAVEPOINT s;
CREATE TABLE ksp2 (x int) USING kvlsm;
ROLLBACK TO s;
INSERT INTO ksp VALUES (1);
ROLLBACK;
BEGIN;
CREATE TABLE ksp (x int) USING kvlsm;
SAVEPOINT s;
ROLLBACK TO s;
INSERT INTO ksp VALUES (1);
COMMIT;
SELECT * FROM ksp;
DROP TABLE ksp;

-- a non-superuser owner creates, configures and drops kvlsm tables
CREATE ROLE kvlsm_owner;
GRANT CREATE ON SCHEMA public TO kvlsm_owner;
SET ROLE kvlsm_owner;
CREATE TABLE kown (a int) USING kvlsm WITH (memtable_size = '2MB');
ALTER TABLE kown SET (compression = 'none');
INSERT INTO kown VALUES (1);
DROP TABLE kown;
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM kvlsm_owner;
DROP ROLE kvlsm_owner;

-- VACUUM FULL and CLUSTER keep TOASTed values (they are re-toasted into the new toast table)
CREATE TABLE kvt (id int, big text) USING kvlsm;
INSERT INTO kvt SELECT g, (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 300) x)
FROM generate_series(1, 5) g;
VACUUM FULL kvt;
SELECT id, length(big), md5(big) = md5((SELECT string_agg(md5(id::text || x::text), '') FROM generate_series(1, 300) x)) AS intact
FROM kvt ORDER BY id;
CREATE INDEX kvt_id ON kvt (id);
CLUSTER kvt USING kvt_id;
SELECT count(*), sum(length(big)) FROM kvt;
-- the rewrite keeps the caller's multixact cutoff (the new TOAST table is a
-- heap and needs a valid relminmxid) and a relfrozenxid no newer than the
-- xids it kept; VACUUM of both then works
SELECT c.relminmxid <> '0' AS table_minmxid_valid, t.relminmxid <> '0' AS toast_minmxid_valid,
       age(c.relfrozenxid) >= 0 AS table_frozenxid_sane
FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.relname = 'kvt';
VACUUM kvt;
VACUUM FREEZE kvt;
SELECT count(*), sum(length(big)) FROM kvt;
DROP TABLE kvt;

-- CLUSTER orders the row ids (the order a seq scan returns) by the index,
-- expression indexes too; deleted rows stay gone, TOASTed values intact
CREATE TABLE clt (id int, k int, t text) USING kvlsm;
INSERT INTO clt SELECT g, (g * 7919) % 1000, repeat('x', (g % 3) * 1000) || g FROM generate_series(1, 5000) g;
DELETE FROM clt WHERE id % 11 = 0;
CREATE INDEX clt_k ON clt (k, id);
CREATE INDEX clt_expr ON clt ((k % 10), id);
CLUSTER clt USING clt_k;
SELECT (array_agg(k ORDER BY ctid))[1:10] AS first_keys FROM clt;
SELECT bool_and(ok) AS in_index_order FROM
  (SELECT (k, id) >= lag((k, id)) OVER (ORDER BY ctid) OR lag(k) OVER (ORDER BY ctid) IS NULL AS ok FROM clt) s;
SELECT count(*), sum(length(t)) FROM clt;
SELECT indisclustered FROM pg_index WHERE indexrelid = 'clt_k'::regclass;
CLUSTER clt USING clt_expr;
SELECT bool_and(ok) AS in_index_order FROM
  (SELECT (k % 10, id) >= lag((k % 10, id)) OVER (ORDER BY ctid) OR lag(k) OVER (ORDER BY ctid) IS NULL AS ok FROM clt) s;
CLUSTER clt;
SELECT count(*), sum(length(t)) FROM clt;
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT bt_index_check('clt_k', true), bt_index_check('clt_expr', true);
DROP TABLE clt;

-- rows moved to another partition by UPDATE
CREATE TABLE kpart (id int, region text) PARTITION BY LIST (region);
CREATE TABLE kpart_a PARTITION OF kpart FOR VALUES IN ('a') USING kvlsm;
CREATE TABLE kpart_b PARTITION OF kpart FOR VALUES IN ('b') USING kvlsm;
INSERT INTO kpart SELECT g, 'a' FROM generate_series(1, 10) g;
UPDATE kpart SET region = 'b' WHERE id <= 3;
SELECT tableoid::regclass, count(*) FROM kpart GROUP BY 1 ORDER BY 1;
DROP TABLE kpart;

-- CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY on a kvlsm table: the
-- index holds exactly the visible rows (amcheck's heapallindexed), deleted and
-- updated rows included, with a partial and a unique index; a unique
-- violation leaves an INVALID index as on heap
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE TABLE kcic (id int, v text, g int) USING kvlsm;
INSERT INTO kcic SELECT g, 'v' || g, g % 10 FROM generate_series(1, 5000) g;
DELETE FROM kcic WHERE id % 7 = 0;
UPDATE kcic SET v = v || 'x' WHERE id % 5 = 0;
CREATE INDEX CONCURRENTLY kcic_id ON kcic (id);
CREATE UNIQUE INDEX CONCURRENTLY kcic_v ON kcic (v);
CREATE INDEX CONCURRENTLY kcic_g ON kcic (g) WHERE g > 5;
SELECT indexrelid::regclass, indisvalid, indisready FROM pg_index
WHERE indrelid = 'kcic'::regclass ORDER BY indexrelid::regclass::text;
SELECT bt_index_check('kcic_id', true), bt_index_check('kcic_v', true),
  bt_index_check('kcic_g', true);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM kcic WHERE id BETWEEN 100 AND 1000;
SELECT count(*) FROM kcic WHERE v = 'v10x';
SELECT count(*) FROM kcic WHERE g > 7;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*) FROM kcic WHERE id BETWEEN 100 AND 1000;
SELECT count(*) FROM kcic WHERE g > 7;
INSERT INTO kcic VALUES (1, 'dup', 1);
CREATE UNIQUE INDEX CONCURRENTLY kcic_dup ON kcic (id);
SELECT indexrelid::regclass, indisvalid FROM pg_index
WHERE indexrelid = 'kcic_dup'::regclass;
DROP INDEX kcic_dup;
REINDEX INDEX CONCURRENTLY kcic_id;
REINDEX TABLE CONCURRENTLY kcic;
SELECT indexrelid::regclass, indisvalid FROM pg_index
WHERE indrelid = 'kcic'::regclass ORDER BY indexrelid::regclass::text;
SELECT bt_index_check('kcic_id', true), bt_index_check('kcic_v', true);
DROP TABLE kcic;

-- ALTER TABLE / ALTER INDEX ... SET TABLESPACE copy the LSM's pages: rows in
-- SSTables, in the memtable, deleted rows and this transaction's own
-- uncommitted rows and index entries all arrive; a rolled-back move changes
-- nothing; a kvlsm_idx index on a heap table moves too
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE kvlsm_ts LOCATION '';
CREATE TABLE ktsp (id int PRIMARY KEY, v text) USING kvlsm;
INSERT INTO ktsp SELECT g, repeat('x', g % 50) FROM generate_series(1, 30000) g;
SELECT kvlsm_flush('ktsp');
INSERT INTO ktsp SELECT g, 'mem' FROM generate_series(30001, 31000) g;
DELETE FROM ktsp WHERE id % 10 = 0;
BEGIN;
INSERT INTO ktsp VALUES (50000, 'in-xact');
UPDATE ktsp SET v = 'upd' WHERE id = 1;
ALTER TABLE ktsp SET TABLESPACE kvlsm_ts;
INSERT INTO ktsp VALUES (50001, 'after');
COMMIT;
SELECT spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE relname = 'ktsp';
SELECT count(*), sum(length(v)), count(*) FILTER (WHERE v = 'upd') AS upd FROM ktsp;
SELECT * FROM ktsp WHERE id IN (1, 10, 30500, 50000, 50001) ORDER BY id;
SELECT count(*) AS problems FROM kvlsm_verify('ktsp', true);
BEGIN;
ALTER TABLE ktsp SET TABLESPACE pg_default;
INSERT INTO ktsp VALUES (60000, 'x');
ROLLBACK;
SELECT count(*), sum(length(v)) FROM ktsp;
INSERT INTO ktsp SELECT g, 'more' FROM generate_series(70001, 72000) g;
SELECT kvlsm_flush('ktsp');
SELECT count(*) FROM ktsp;
CREATE TABLE htsp (id int, k int);
CREATE INDEX htsp_k ON htsp USING kvlsm_idx (k);
INSERT INTO htsp SELECT g, g FROM generate_series(1, 1000) g;
BEGIN;
INSERT INTO htsp SELECT g, g FROM generate_series(1001, 1100) g;
ALTER INDEX htsp_k SET TABLESPACE kvlsm_ts;
INSERT INTO htsp SELECT g, g FROM generate_series(1101, 1200) g;
COMMIT;
ALTER INDEX htsp_k SET TABLESPACE kvlsm_ts;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM htsp WHERE k > 0;
SELECT count(*) FROM ktsp WHERE id > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*) AS problems FROM kvlsm_verify('htsp_k', true);
DROP TABLE ktsp, htsp;
DROP TABLESPACE kvlsm_ts;
RESET allow_in_place_tablespaces;

-- RETURNING shows the writing transaction in xmin (a row version token for
-- optimistic concurrency), and xmax = our xid once ON CONFLICT locked the row
CREATE TABLE kups (a int PRIMARY KEY, b text) USING kvlsm;
INSERT INTO kups VALUES (1, 'x') RETURNING xmin = pg_current_xact_id()::xid AS xmin_ok, xmax = 0 AS xmax_ok;
BEGIN;
INSERT INTO kups VALUES (2, 'Beeble') ON CONFLICT (a) DO UPDATE SET b = excluded.b
  RETURNING xmin = pg_current_xact_id()::xid AS xmin_correct, xmax = 0 AS xmax_correct;
INSERT INTO kups VALUES (2, 'Brox') ON CONFLICT (a) DO UPDATE SET b = excluded.b
  RETURNING xmin = pg_current_xact_id()::xid AS xmin_correct, xmax = pg_current_xact_id()::xid AS xmax_correct;
UPDATE kups SET b = 'u' WHERE a = 1 RETURNING xmin = pg_current_xact_id()::xid AS xmin_correct, xmax = 0 AS xmax_zero;
SELECT a, b, xmin = pg_current_xact_id()::xid AS mine FROM kups ORDER BY a;
COMMIT;
DROP TABLE kups;
