-- kvlsm_idx against btree, type by type: the same queries on the same data
-- through a kvlsm_idx index (on a heap table and on a kvlsm table) and
-- through a btree index on a heap table must give the same answers, and
-- the kvlsm_idx plans must really use the kvlsm_idx index.
CREATE EXTENSION IF NOT EXISTS kvlsm;
SET kvlsm.default_memtable_size = '64kB';  -- index LSMs get SSTables and a memtable

-- run one query on the three tables; a row per disagreement or plan without the index
CREATE FUNCTION kv_check(typ text, q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    ref text;
    got text;
    plan text;
    r record;
    tab text;
BEGIN
    EXECUTE format(q, 'ref_' || typ) INTO ref;
    FOREACH tab IN ARRAY ARRAY['hp_' || typ, 'kv_' || typ] LOOP
        plan := '';
        FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || format(q, tab) LOOP
            plan := plan || r."QUERY PLAN" || E'\n';
        END LOOP;
        IF position(tab || '_c' IN plan) = 0 THEN
            RETURN NEXT format('%s: %s does not use its kvlsm_idx index: %s', typ, format(q, tab), plan);
        END IF;
        EXECUTE format(q, tab) INTO got;
        IF got IS DISTINCT FROM ref THEN
            RETURN NEXT format('%s: %s gives %s, btree gives %s', typ, format(q, tab), got, ref);
        END IF;
    END LOOP;
END $$;

-- one table set per type: values with duplicates and NULLs, from g
CREATE FUNCTION kv_setup(typ text, expr text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE ref_%s (id int, c %s)', typ, typ);
    EXECUTE format('INSERT INTO ref_%s SELECT g, CASE WHEN g %% 23 = 0 THEN NULL ELSE %s END
                    FROM generate_series(1, 3000) g', typ, expr);
    EXECUTE format('CREATE TABLE hp_%s AS SELECT * FROM ref_%s', typ, typ);
    EXECUTE format('CREATE TABLE kv_%s (id int, c %s) USING kvlsm', typ, typ);
    EXECUTE format('INSERT INTO kv_%s SELECT * FROM ref_%s WHERE id <= 2000', typ, typ);
    EXECUTE format('CREATE INDEX ref_%s_c ON ref_%s (c)', typ, typ);
    EXECUTE format('CREATE INDEX hp_%s_c ON hp_%s USING kvlsm_idx (c)', typ, typ);
    EXECUTE format('CREATE INDEX kv_%s_c ON kv_%s USING kvlsm_idx (c)', typ, typ);
    -- the rest arrives after the build: SSTables and memtable both answer
    EXECUTE format('INSERT INTO kv_%s SELECT * FROM ref_%s WHERE id > 2000', typ, typ);
    EXECUTE format('ANALYZE ref_%s, hp_%s, kv_%s', typ, typ, typ);
END $$;

SELECT kv_setup('int2', '(g * 7 % 301 - 150)::int2');
SELECT kv_setup('int4', '(g * 7919 % 1000 - 500)');
SELECT kv_setup('int8', '(g * 7919 % 1000)::int8 * 10000000000');
SELECT kv_setup('float4', 'CASE WHEN g % 97 = 1 THEN ''-0''::float4 WHEN g % 101 = 2 THEN ''NaN'' ELSE ((g % 200) / 8.0 - 10)::float4 END');
SELECT kv_setup('float8', 'CASE WHEN g % 89 = 3 THEN ''Infinity''::float8 ELSE (g % 211) / 3.0 END');
SELECT kv_setup('numeric', 'CASE WHEN g % 2 = 0 THEN round((g % 97) / 7.0, 1) ELSE round((g % 97) / 7.0, 3) END');
SELECT kv_setup('text', '''key'' || lpad((g * 31 % 500)::text, 4, ''0'')');
SELECT kv_setup('varchar', '(''v'' || (g % 400))::varchar');
SELECT kv_setup('bpchar', '(''b'' || (g % 300))::char(6)');
SELECT kv_setup('bytea', 'decode(md5((g % 700)::text), ''hex'')');
SELECT kv_setup('uuid', 'md5((g % 800)::text)::uuid');
SELECT kv_setup('date', 'date ''2024-01-01'' + (g * 13 % 900)');
SELECT kv_setup('timestamp', 'timestamp ''2024-01-01'' + (g * 13 % 900) * interval ''7 hours''');
SELECT kv_setup('timestamptz', 'timestamptz ''2024-01-01 00:00+00'' + (g * 13 % 900) * interval ''7 hours''');
SELECT kv_setup('bool', 'g % 3 = 0');
SELECT kv_setup('oid', '(g % 500)::oid');
SELECT kvlsm_flush('kv_text'), kvlsm_flush('hp_text_c');

SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_sort = off;

-- probe values: an existing value v, a range [lo, hi], an array with duplicates and a NULL
CREATE TABLE probes (typ text, v text, lo text, hi text);
INSERT INTO probes VALUES
  ('int2', '-3', '-40', '25'), ('int4', '7', '-100', '120'),
  ('int8', '2340000000000', '1000000000000', '3000000000000'),
  ('float4', '0', '-2.5', '4.25'), ('float8', '70', '10.5', '33.4'),
  ('numeric', '1.0', '0.5', '3.14'), ('text', 'key0042', 'key0100', 'key0177'),
  ('varchar', 'v77', 'v1', 'v2'), ('bpchar', 'b42', 'b1', 'b2'),
  ('bytea', '\x' || md5('42'), '\x40', '\x80'),
  ('uuid', md5('42')::uuid::text, '30000000-0000-0000-0000-000000000000', '50000000-0000-0000-0000-000000000000'),
  ('date', '2024-02-14', '2024-03-01', '2024-05-01'),
  ('timestamp', '2024-01-01 07:00', '2024-02-01', '2024-03-01'),
  ('timestamptz', '2024-01-01 07:00+00', '2024-02-01 00:00+00', '2024-03-01 00:00+00'),
  ('oid', '42', '100', '150');

SELECT p.typ, count(x.msg) AS problems, string_agg(x.msg, E'\n') AS details
FROM probes p,
LATERAL (
  SELECT kv_check(p.typ, q) AS msg FROM unnest(ARRAY[
    -- equality and ranges
    format('SELECT array_agg(id ORDER BY id) FROM %%s WHERE c = %L', p.v),
    format('SELECT array_agg(id ORDER BY id) FROM %%s WHERE c BETWEEN %L AND %L', p.lo, p.hi),
    format('SELECT array_agg(id ORDER BY id) FROM %%s WHERE c > %L AND c <= %L', p.lo, p.hi),
    -- ordered output, forward and backward, under a LIMIT
    format('SELECT array_agg(c::text) FROM (SELECT c FROM %%s WHERE c >= %L ORDER BY c LIMIT 25) s', p.lo),
    format('SELECT array_agg(c::text) FROM (SELECT c FROM %%s WHERE c <= %L ORDER BY c DESC LIMIT 25) s', p.hi),
    -- NULLs sort last: first when reading backward
    'SELECT array_agg(coalesce(c::text, ''null'')) FROM (SELECT c FROM %s ORDER BY c DESC LIMIT 160) s',
    'SELECT array_agg(coalesce(c::text, ''null'')) FROM (SELECT c FROM %s ORDER BY c LIMIT 3000) s',
    -- = ANY with duplicate elements and a NULL, in index order
    format('SELECT array_agg(c::text || ''/'' || id ORDER BY c, id) FROM %%s WHERE c = ANY (ARRAY[%L, %L, %L, NULL, %L]::%s[])',
           p.hi, p.v, p.lo, p.v, p.typ),
    format('SELECT array_agg(c::text) FROM (SELECT c FROM %%s WHERE c = ANY (ARRAY[%L, %L, %L]::%s[]) ORDER BY c) s',
           p.hi, p.v, p.lo, p.typ),
    format('SELECT array_agg(c::text) FROM (SELECT c FROM %%s WHERE c = ANY (ARRAY[%L, %L, %L]::%s[]) ORDER BY c DESC) s',
           p.hi, p.v, p.lo, p.typ),
    -- IS NULL, IS NOT NULL
    'SELECT array_agg(id ORDER BY id) FROM %s WHERE c IS NULL',
    format('SELECT count(*) FROM %%s WHERE c IS NOT NULL AND c >= %L', p.lo)
  ]) q
) x
GROUP BY p.typ ORDER BY p.typ;

-- the probes hit rows: the answers compared above are not all empty
CREATE FUNCTION kv_ref(typ text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    ref text;
BEGIN
    EXECUTE format(q, 'ref_' || typ) INTO ref;
    RETURN ref;
END $$;
SELECT typ,
       kv_ref(typ, format('SELECT count(*) FROM %%s WHERE c = %L', v))::int > 0 AS eq_hits,
       kv_ref(typ, format('SELECT count(*) FROM %%s WHERE c BETWEEN %L AND %L', lo, hi))::int > 0 AS range_hits,
       kv_ref(typ, format('SELECT count(*) FROM %%s WHERE c = ANY (ARRAY[%L, %L]::%s[])', lo, hi, typ))::int > 0 AS any_hits
FROM probes ORDER BY typ;

-- bool: PostgreSQL 15's planner turns "c = true" into "c" and matches that only
-- to btree's and hash's own boolean opfamilies, so only these use the index
SELECT kv_check('bool', q) FROM unnest(ARRAY[
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = ANY (''{true}'')',
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE c > false',
  'SELECT array_agg(coalesce(c::text, ''null'')) FROM (SELECT c FROM %s ORDER BY c DESC LIMIT 1500) s',
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE c IS NULL'
]) q;

-- multi-column and DESC / NULLS FIRST columns, on both table kinds
CREATE TABLE ref_mc AS SELECT g AS id, g % 37 AS a, CASE WHEN g % 11 = 0 THEN NULL ELSE 'm' || (g % 53) END AS b
FROM generate_series(1, 4000) g;
CREATE TABLE hp_mc AS SELECT * FROM ref_mc;
CREATE TABLE kv_mc USING kvlsm AS SELECT * FROM ref_mc;
CREATE INDEX ref_mc_c ON ref_mc (a DESC, b NULLS FIRST);
CREATE INDEX hp_mc_c ON hp_mc USING kvlsm_idx (a DESC, b NULLS FIRST);
CREATE INDEX kv_mc_c ON kv_mc USING kvlsm_idx (a DESC, b NULLS FIRST);
SELECT kv_check('mc', q) FROM unnest(ARRAY[
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE a = 5 AND b = ''m7''',
  'SELECT array_agg(a || ''/'' || coalesce(b, ''-'')) FROM (SELECT a, b FROM %s WHERE a BETWEEN 3 AND 6 ORDER BY a DESC, b NULLS FIRST) s',
  'SELECT array_agg(a || ''/'' || coalesce(b, ''-'')) FROM (SELECT a, b FROM %s WHERE a < 9 ORDER BY a, b DESC NULLS LAST LIMIT 40) s',
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE a = 8 AND b IS NULL',
  'SELECT array_agg(a || ''/'' || id) FROM (SELECT a, id FROM %s WHERE a = ANY (''{4,30,4,12}'') ORDER BY a DESC) s',
  'SELECT array_agg(id ORDER BY id) FROM %s WHERE a = 20 AND b = ANY (''{m1,m20,m1,m40}'')',
  'SELECT count(*) FROM %s WHERE a > ANY (''{30,35}'') AND b < ALL (''{m3}'')'
]) q;

-- cross-type comparisons use the index (the opfamilies have btree's cross-type operators)
SELECT kv_check('int8', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = 2340000000000::int8 AND c > 5::int2');
SELECT kv_check('int2', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = -3::int8');
SELECT kv_check('int2', 'SELECT count(*) FROM %s WHERE c < 100000::int4 AND c > -7::int8');
SELECT kv_check('int2', 'SELECT count(*) FROM %s WHERE c > 100000::int4');
SELECT kv_check('int4', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = ANY (''{7,-100,7}''::int8[])');
SELECT kv_check('float4', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c IN (0.1::float8, 2.5::float8, -0::float8)');
SELECT kv_check('float4', 'SELECT count(*) FROM %s WHERE c >= 0.1::float8 AND c < 1e300::float8');
SELECT kv_check('float8', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = 70::float4');
SELECT kv_check('date', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = timestamp ''2024-02-14 00:00''');
SELECT kv_check('date', 'SELECT count(*) FROM %s WHERE c = timestamp ''2024-02-14 00:00:01''');
SELECT kv_check('date', 'SELECT count(*) FROM %s WHERE c > timestamptz ''2024-03-01 12:00+05'' AND c <= timestamp ''2024-04-01''');
SELECT kv_check('timestamp', 'SELECT count(*) FROM %s WHERE c >= date ''2024-02-01'' AND c < date ''2024-02-03''');
SELECT kv_check('timestamptz', 'SELECT count(*) FROM %s WHERE c >= date ''2024-02-01'' AND c < timestamp ''2024-02-03 05:00''');
SELECT kv_check('timestamp', 'SELECT count(*) FROM %s WHERE c = ANY (ARRAY[date ''2024-01-04'', date ''2024-01-05''])');
-- numeric: 1.0 and 1.00 are equal, whatever their scale
SELECT kv_check('numeric', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = 1.00000');
SELECT kv_check('numeric', 'SELECT array_agg(id ORDER BY id) FROM %s WHERE c = ANY (''{1,1.0,1.000}'')');
SELECT (SELECT count(*) FROM kv_numeric WHERE c = 1.00000) > 0 AS numeric_found;

-- bloom filters answer equality lookups (numeric hashes 1.0 and 1.00 alike)
CREATE TABLE bl (id int, n numeric, d date);
CREATE INDEX bl_n ON bl USING kvlsm_idx (n) WITH (bloom_bits_per_key = 12);
CREATE INDEX bl_d ON bl USING kvlsm_idx (d);
CREATE INDEX bl_nobloom ON bl USING kvlsm_idx (id) WITH (bloom_bits_per_key = 0);
INSERT INTO bl SELECT g, round(g / 10.0, 1), date '2020-01-01' + g FROM generate_series(1, 1000) g;
SELECT kvlsm_flush('bl_n'), kvlsm_flush('bl_d'), kvlsm_flush('bl_nobloom');
INSERT INTO bl SELECT g, round(g / 10.0, 2), date '2020-01-01' + g FROM generate_series(1001, 2000) g;
SELECT kvlsm_flush('bl_n'), kvlsm_flush('bl_d'), kvlsm_flush('bl_nobloom');
SELECT kvlsm_stats_reset('bl_n'), kvlsm_stats_reset('bl_d'), kvlsm_stats_reset('bl_nobloom');
SELECT id FROM bl WHERE n = 1.00;
SELECT id FROM bl WHERE n = 150.000;
SELECT id FROM bl WHERE id = 1500;
SELECT count(*) FROM bl WHERE n = 7777;
SELECT count(*) FROM bl WHERE n = ANY ('{1.0, 7777, 150}');
SELECT id FROM bl WHERE d = timestamp '2020-01-11';  -- date = timestamp: no hash family, no filter
SELECT s.relname, bloom_checks > 0 AS filter_consulted, bloom_useful > 0 AS filter_skipped_tables
FROM (VALUES ('bl_n'), ('bl_d'), ('bl_nobloom')) s(relname), kvlsm_stats(s.relname::regclass)
ORDER BY 1;
SELECT count(*) AS problems FROM kvlsm_verify('bl_n', true);
SELECT relid, name, value FROM kvlsm_options WHERE relid::text LIKE 'bl%' ORDER BY 1, 2;
ALTER INDEX bl_n SET (bloom_bits_per_key = 'default');
SELECT relid, name, value FROM kvlsm_options WHERE relid::text LIKE 'bl%' ORDER BY 1, 2;
ALTER INDEX bl_nobloom SET (bloom_bits_per_key = 100);
CREATE INDEX ON bl USING kvlsm_idx (id) WITH (bloom_bits_per_key = 'many');
CREATE INDEX ON bl USING kvlsm_idx (id) WITH (ttl = '1 day');
DROP TABLE bl;

-- LIKE prefixes: text_pattern_ops gives an index range whatever the collation
CREATE TABLE lk (id int, t text COLLATE "und-x-icu");
INSERT INTO lk SELECT g, CASE g % 4 WHEN 0 THEN 'Abc' WHEN 1 THEN 'abd' WHEN 2 THEN 'ab_x' ELSE 'b%c' END || g
FROM generate_series(1, 2000) g;
CREATE TABLE lk_kv USING kvlsm AS SELECT * FROM lk;
CREATE INDEX lk_p ON lk USING kvlsm_idx (t text_pattern_ops);
CREATE INDEX lk_kv_p ON lk_kv USING kvlsm_idx (t text_pattern_ops);
EXPLAIN (COSTS OFF) SELECT count(*) FROM lk WHERE t LIKE 'abd1%';
EXPLAIN (COSTS OFF) SELECT count(*) FROM lk_kv WHERE t LIKE 'ab\_x%';
SELECT pattern,
       (SELECT count(*) FROM lk WHERE t LIKE pattern) AS heap_kvlsm_idx,
       (SELECT count(*) FROM lk_kv WHERE t LIKE pattern) AS kvlsm_kvlsm_idx
FROM unnest(ARRAY['abd1%', 'abd1_', 'ab\_x1%', 'Abc%', 'b\%c1%', '%9', 'abd', 'abd17', 'zz%']) pattern;
SET enable_indexscan = off;
SET enable_seqscan = on;
SELECT pattern, (SELECT count(*) FROM lk WHERE t LIKE pattern) AS seqscan
FROM unnest(ARRAY['abd1%', 'abd1_', 'ab\_x1%', 'Abc%', 'b\%c1%', '%9', 'abd', 'abd17', 'zz%']) pattern;
RESET enable_indexscan;
SET enable_seqscan = off;
-- ordered by the pattern operators
SELECT array_agg(t) FROM (SELECT t FROM lk WHERE t ~>=~ 'abd19' ORDER BY t USING ~<~ LIMIT 5) s;
DROP TABLE lk, lk_kv;

-- mark and restore: a merge join reads its inner kvlsm_idx scan again
SET enable_hashjoin = off;
SET enable_nestloop = off;
SET enable_material = off;
CREATE TABLE mo (k int);
INSERT INTO mo SELECT g % 50 FROM generate_series(1, 400) g;
CREATE TABLE mi (k int) USING kvlsm;
INSERT INTO mi SELECT g % 60 FROM generate_series(1, 600) g;
CREATE INDEX mo_k ON mo USING kvlsm_idx (k);
CREATE INDEX mi_k ON mi USING kvlsm_idx (k);
EXPLAIN (COSTS OFF) SELECT count(*) FROM mo JOIN mi USING (k);
SELECT count(*) FROM mo JOIN mi USING (k);
SELECT sum(a.n * b.n) AS expected
FROM (SELECT k % 50 AS k, count(*) AS n FROM generate_series(1, 400) k GROUP BY 1) a
JOIN (SELECT k % 60 AS k, count(*) AS n FROM generate_series(1, 600) k GROUP BY 1) b USING (k);
DROP TABLE mo, mi;
RESET enable_hashjoin;
RESET enable_nestloop;
RESET enable_material;

RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;

-- a query that needs no column still reads the table: kvlsm_idx offers no
-- index-only scans yet (VACUUM does not wait for scans holding TIDs)
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hp_int4;
SELECT count(*) FROM hp_int4;
RESET enable_seqscan;
RESET enable_bitmapscan;
