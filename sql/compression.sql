-- compression: levels ("zstd:9"), the bottommost level compressed apart
-- (bottommost_compression, as RocksDB's option of that name), their GUC
-- defaults, and the errors bad values get (issue 23)
CREATE EXTENSION IF NOT EXISTS kvlsm;

-- the GUCs take what the options take; "same" only for the bottom level
SET kvlsm.default_compression = 'zstd:9';
SHOW kvlsm.default_compression;
SET kvlsm.default_compression = 'ZSTD:level=4';
SET kvlsm.default_compression = 'zstd:23';
SET kvlsm.default_compression = 'lz4:0';
SET kvlsm.default_compression = 'none:1';
SET kvlsm.default_compression = 'brotli';
SET kvlsm.default_compression = 'same';
SET kvlsm.default_bottommost_compression = 'zstd:';
SET kvlsm.default_bottommost_compression = 'zstd:level=19';
SHOW kvlsm.default_bottommost_compression;
-- a table takes the defaults when it is made
CREATE TABLE cdef (id int, val text) USING kvlsm;
SELECT compression FROM kvlsm_stats('cdef');
RESET kvlsm.default_compression;
RESET kvlsm.default_bottommost_compression;
SELECT compression FROM kvlsm_stats('cdef');
CREATE TABLE cdef2 (id int) USING kvlsm;
SELECT compression FROM kvlsm_stats('cdef2');

-- options: errors name the option and say what is valid
CREATE TABLE cbad (id int) USING kvlsm WITH (bottommost_compression = 'zstd:0');
CREATE TABLE cbad (id int) USING kvlsm WITH (bottommost_compression = 'zstd:x');
CREATE TABLE cbad (id int) USING kvlsm WITH (compression = 'lz4:13');
CREATE TABLE cbad (id int) USING kvlsm WITH (compression = 'none:3');
CREATE TABLE cbad (id int) USING kvlsm WITH (compression = '');
CREATE TABLE cbad (id int) USING kvlsm WITH (bottommost_compression = 'gzip');
CREATE TABLE cbad (id int) USING kvlsm WITH (bottommost_compression);
CREATE TABLE cbad (id int) USING heap WITH (bottommost_compression = 'zstd');
CREATE TABLE cidx (id int) USING kvlsm;
CREATE INDEX cidx_id ON cidx USING kvlsm_idx (id) WITH (bottommost_compression = 'zstd');

-- lz4 for flushes and upper levels, zstd at its highest level for the
-- bottom: hex digits (4 bits of information in 8) shrink with zstd's
-- entropy coding, hardly with lz4
CREATE TABLE cb (id int, val text) USING kvlsm
  WITH (compression = 'lz4', bottommost_compression = 'zstd:19', memtable_size = '8MB');
CREATE TABLE cl (id int, val text) USING kvlsm WITH (compression = 'lz4', memtable_size = '8MB');
SELECT compression FROM kvlsm_stats('cb');
SELECT name, value FROM kvlsm_options WHERE relid = 'cb'::regclass ORDER BY name;
INSERT INTO cb SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 6000) g;
INSERT INTO cl SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 6000) g;
SELECT kvlsm_flush('cb'), kvlsm_flush('cl');
-- a flush writes level 0 with the option compression
SELECT s.level, h.compression
  FROM kvlsm_sstables('cb') s, LATERAL kvlsm_sstable_header('cb', s.id) h;
-- a full compaction writes the bottom: zstd there, lz4 in the other table
SELECT kvlsm_compact('cb'), kvlsm_compact('cl');
SELECT DISTINCT h.compression
  FROM kvlsm_sstables('cb') s, LATERAL kvlsm_sstable_header('cb', s.id) h;
SELECT DISTINCT h.compression
  FROM kvlsm_sstables('cl') s, LATERAL kvlsm_sstable_header('cl', s.id) h;
SELECT (SELECT sum(pages) FROM kvlsm_sstables('cb')) * 4 <
       (SELECT sum(pages) FROM kvlsm_sstables('cl')) * 3 AS bottom_a_quarter_smaller;
-- every row reads back, by scan and by point lookups into zstd blocks
SELECT count(*), sum(hashtext(val)) = (SELECT sum(hashtext(val)) FROM cl) AS same_rows FROM cb;
SELECT count(*) FROM cb WHERE val = md5(id::text) || md5((-id)::text);
SELECT count(*) FROM kvlsm_verify('cb');
-- new rows above a zstd bottom: the next flush is lz4 again, and a
-- compaction that has older data under it is not bottommost
UPDATE cb SET val = upper(val) WHERE id % 10 = 0;
SELECT kvlsm_flush('cb');
SELECT s.level, h.compression
  FROM kvlsm_sstables('cb') s, LATERAL kvlsm_sstable_header('cb', s.id) h
 ORDER BY s.level, s.id;
SELECT count(*) FILTER (WHERE val = upper(md5(id::text) || md5((-id)::text))) AS updated,
       count(*) FILTER (WHERE val = md5(id::text) || md5((-id)::text)) AS unchanged
  FROM cb;

-- the option changes; the next bottom compaction follows it
ALTER TABLE cb SET (bottommost_compression = 'same');
SELECT compression FROM kvlsm_stats('cb');
SELECT kvlsm_compact('cb');
SELECT DISTINCT h.compression
  FROM kvlsm_sstables('cb') s, LATERAL kvlsm_sstable_header('cb', s.id) h;
ALTER TABLE cb SET (bottommost_compression = 'zstd');
SELECT compression FROM kvlsm_stats('cb');
SET kvlsm.default_bottommost_compression = 'none';
ALTER TABLE cb RESET (bottommost_compression);
SELECT compression FROM kvlsm_stats('cb');
RESET kvlsm.default_bottommost_compression;
SELECT kvlsm_compact('cb');
SELECT DISTINCT h.compression
  FROM kvlsm_sstables('cb') s, LATERAL kvlsm_sstable_header('cb', s.id) h;
SELECT count(*), sum(hashtext(val)) FROM cb;
SELECT count(*) FROM kvlsm_verify('cb');

-- lz4's high-compression levels read back as plain lz4 does
CREATE TABLE chc (id int, val text) USING kvlsm WITH (compression = 'lz4:12');
INSERT INTO chc SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 4000) g;
SELECT kvlsm_flush('chc');
SELECT DISTINCT h.compression
  FROM kvlsm_sstables('chc') s, LATERAL kvlsm_sstable_header('chc', s.id) h;
SELECT count(*) FROM chc WHERE val = repeat(md5(id::text), 3);
SELECT compression FROM kvlsm_stats('chc');

-- only the owner changes the options
CREATE ROLE regress_kvlsm_comp LOGIN;
SET ROLE regress_kvlsm_comp;
ALTER TABLE cb SET (bottommost_compression = 'none');
SELECT kvlsm_set_option('cb', 'bottommost_compression', 'none');
RESET ROLE;
DROP ROLE regress_kvlsm_comp;
SELECT compression FROM kvlsm_stats('cb');

DROP TABLE cdef, cdef2, cidx, cb, cl, chc;
