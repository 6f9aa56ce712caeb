
# Copyright (c) kvlsm authors
#
# kvlsm_verify and kvlsm_repair on damaged relations: a corrupted SSTable
# data page, a corrupted SSTable that held deletes (its loss resurrects
# rows: repair must say so), a corrupted metapage, and a kvlsm_idx index
# on a heap table.  kvlsm_verify finds nothing on healthy relations, also
# while flushes and compactions run under load and on a hot standby.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('repair');
$node->init(allows_streaming => 1);
# no background compaction: the layout below is exactly what the flushes made
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
kvlsm.l0_compaction_trigger = 50
kvlsm.l0_slowdown_trigger = 55
kvlsm.l0_stop_trigger = 60
});
$node->start;

sub flip_bytes
{
	my ($path, $blkno, $offset) = @_;
	open my $fh, '+<', $path or die "open $path: $!";
	binmode $fh;
	seek($fh, $blkno * 8192 + $offset, 0) or die;
	print $fh ("\xde\xad\xbe\xef" x 4);
	close $fh;
	return;
}

$node->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE EXTENSION amcheck;
	CREATE TABLE t (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '8MB');
	CREATE INDEX t_v_btree ON t (v);
	CREATE INDEX t_v_kvlsm ON t USING kvlsm_idx (v);
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(1, 5000) g;
	SELECT kvlsm_flush('t');
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(5001, 10000) g;
	SELECT kvlsm_flush('t');
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(10001, 15000) g;
	SELECT kvlsm_flush('t');
	DELETE FROM t WHERE id <= 100;
	SELECT kvlsm_flush('t');
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM kvlsm_verify(\'t\')'), '0',
	'healthy table: kvlsm_verify reports nothing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kvlsm_verify(\'t_v_kvlsm\')'), '0',
	'healthy index: kvlsm_verify reports nothing');

# SSTables by id: 1 = rows 1-5000, 2 = rows 5001-10000, 3 = rows 10001-15000,
# 4 = the deletes of rows 1-100
my %start;
for my $line (split /\n/, $node->safe_psql('postgres',
		'SELECT id, start_block, entries FROM kvlsm_sstables(\'t\') ORDER BY id'))
{
	my ($id, $blk, $n) = split /\|/, $line;
	$start{$id} = $blk;
}
is(scalar(keys %start), 4, 'four SSTables, one per flush');
my $path = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
my $bad2 = $start{2} + 2;
my $bad4 = $start{4} + 1;
$node->stop;
flip_bytes($path, $bad2, 3000);
flip_bytes($path, $bad4, 100);    # inside the few hundred bytes the deletes take
$node->start;

my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM t');
isnt($ret, 0, 'a scan over the damaged SSTables fails');
like($err, qr/kvlsm relation "t" block \d+: checksum mismatch in SSTable data page \(stored crc32c 0x[0-9A-F]+, computed 0x[0-9A-F]+\)/,
	'the error names the relation, the block and both checksums');

my $problems = $node->safe_psql('postgres',
	'SELECT blkno, sstable, level, msg FROM kvlsm_verify(\'t\') ORDER BY blkno');
like($problems, qr/^$bad2\|2\|0\|checksum mismatch in SSTable data page/m,
	'kvlsm_verify names the damaged page of SSTable 2');
like($problems, qr/^$bad4\|4\|0\|checksum mismatch in SSTable data page/m,
	'kvlsm_verify names the damaged page of SSTable 4');
is(scalar(split /\n/, $problems), 2, 'and nothing else');

# dry run: what would be lost, and what is suspect
my ($dret, $dry, $derr) = $node->psql('postgres',
	'SELECT action, sstable, entries, min_key, max_key, min_seq, max_seq, min_xid IS NOT NULL FROM kvlsm_repair(\'t\') ORDER BY action, sstable');
is($dret, 0, 'dry run runs');
like($derr, qr/WARNING:  kvlsm_repair would drop 2 SSTables of "t"/, 'dry run warns');
like($dry, qr/^would drop\|2\|5000\|/m, 'dry run: SSTable 2 would be dropped');
like($dry, qr/^would drop\|4\|100\|/m, 'dry run: SSTable 4 would be dropped');
like($dry, qr/^suspect\|1\|/m,
	'dry run: SSTable 1 holds versions the dropped deletes superseded');
unlike($dry, qr/^suspect\|3\|/m, 'SSTable 3 (newer than the deletes, other keys) is not suspect');
my $detail = $node->safe_psql('postgres',
	q{SELECT detail FROM kvlsm_repair('t') WHERE action = 'suspect' AND sstable = 1});
like($detail, qr/rows it deleted there may reappear/, 'the suspect row says why');
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM t');
isnt($ret, 0, 'a dry run changes nothing');

# non-owners may not repair even with EXECUTE
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT EXECUTE ON FUNCTION kvlsm_repair(regclass, bool) TO mallory;
});
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE mallory; SELECT * FROM kvlsm_repair('t', false)});
like($err, qr/must be owner of table t/, 'repair is for the owner only');

my $hwm_before = $node->safe_psql('postgres', 'SELECT rowid_high_water FROM kvlsm_stats(\'t\')');
($ret, $out, $err) = $node->psql('postgres',
	'SELECT action, sstable FROM kvlsm_repair(\'t\', false) ORDER BY 1, 2');
is($ret, 0, 'repair applied');
like($out, qr/^quarantined\|2$/m, 'SSTable 2 quarantined');
like($out, qr/^quarantined\|4$/m, 'SSTable 4 quarantined');
like($out, qr/^rebuilt index\|$/m, 'indexes rebuilt');
like($err, qr/kvlsm_repair dropped 2 SSTables of "t".*HINT:  If a standby holds an intact copy/s,
	'the warning hints at a standby as the better cure');

is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM t'), '10000|1|15000',
	'the table reads again: rows of SSTables 1 and 3, the deleted rows 1-100 back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id BETWEEN 5001 AND 10000'), '0',
	'the rows of the dropped SSTable are gone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kvlsm_verify(\'t\')'), '0',
	'kvlsm_verify finds nothing after the repair');
is($node->safe_psql('postgres', q{SELECT state FROM kvlsm_sstables('t') WHERE id IN (2, 4) GROUP BY state}),
	'quarantined', 'kvlsm_sstables shows the quarantined tables');
$node->safe_psql('postgres', q{SELECT bt_index_check('t_v_btree', true)});
pass('bt_index_check with heapallindexed passes on the rebuilt btree index');
$node->safe_psql('postgres', q{SELECT bt_index_check('t_pkey', true)});
pass('and on the primary key');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM t WHERE v > 'value 5' AND v < 'value 6'}),
	$node->safe_psql('postgres', q{
	SET enable_indexscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM t WHERE v > 'value 5' AND v < 'value 6'}),
	'the rebuilt kvlsm_idx index agrees with a sequential scan');
ok($node->safe_psql('postgres', 'SELECT rowid_high_water FROM kvlsm_stats(\'t\')') >= $hwm_before,
	'the row id high-water mark did not go down');

# new rows never reuse a row id, and new SSTables never reuse quarantined pages
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(20001, 40000) g;
	SELECT kvlsm_flush('t');
	SELECT kvlsm_compact('t');
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM kvlsm_sstables('t') q, kvlsm_sstables('t') l
	 WHERE q.state = 'quarantined' AND l.state = 'live'
	   AND l.start_block < q.start_block + q.pages AND q.start_block < l.start_block + l.pages}),
	'0', 'no live SSTable was placed in a quarantined extent');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '30000', 'rows after more writes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kvlsm_verify(\'t\')'), '0',
	'kvlsm_verify still finds nothing');

# a corrupted metapage: reads fail clearly, verify names it, repair refuses
$node->safe_psql('postgres', q{
	CREATE TABLE m (id int) USING kvlsm;
	INSERT INTO m SELECT generate_series(1, 100);
	SELECT kvlsm_flush('m');
});
my $mpath = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('m')});
$node->stop;
flip_bytes($mpath, 0, 60);
$node->start;
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM m');
like($err, qr/kvlsm relation "m" block 0: checksum mismatch in metapage/, 'a damaged metapage is reported');
is($node->safe_psql('postgres', 'SELECT blkno FROM kvlsm_verify(\'m\')'), '0',
	'kvlsm_verify names block 0');
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM kvlsm_repair(\'m\', false)');
like($err, qr/kvlsm_repair cannot repair "m": its metapage or manifest is unusable.*HINT:  Restore the relation from a standby or a backup/s,
	'repair refuses what it cannot rebuild and says what to do');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still answers');
$node->safe_psql('postgres', 'DROP TABLE m');

# a corrupted manifest: the relation is rebuilt from the previous manifest
# version and the SSTables found by their header pages, and nothing is lost
$node->safe_psql('postgres', q{
	CREATE TABLE mf (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '8MB');
	INSERT INTO mf SELECT g, 'm' || g FROM generate_series(1, 3000) g;
	SELECT kvlsm_flush('mf');
	INSERT INTO mf SELECT g, 'm' || g FROM generate_series(3001, 6000) g;
	SELECT kvlsm_flush('mf');
	INSERT INTO mf SELECT g, 'm' || g FROM generate_series(6001, 7000) g;
});
my $mfsum = $node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM mf');
my $mslot = $node->safe_psql('postgres', q{SELECT manifest_block FROM kvlsm_space('mf')});
my $mfpath = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('mf')});
$node->stop;
flip_bytes($mfpath, $mslot, 40);
$node->start;
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM mf');
like($err, qr/kvlsm relation "mf" block $mslot: checksum mismatch in manifest page/,
	'a damaged manifest is reported');
like($node->safe_psql('postgres', q{SELECT blkno || ' ' || msg FROM kvlsm_verify('mf')}),
	qr/^$mslot checksum mismatch in manifest page/, 'kvlsm_verify names the manifest slot');
$dry = $node->safe_psql('postgres', q{SELECT action FROM kvlsm_repair('mf') ORDER BY 1});
like($dry, qr/would rebuild manifest/, 'dry run: the manifest would be rebuilt');
like($dry, qr/would (keep|recover)/, 'from the SSTables that verify');
($ret, $out, $err) = $node->psql('postgres', q{SELECT action, detail FROM kvlsm_repair('mf', false) ORDER BY 1});
is($ret, 0, 'manifest rebuilt') or diag($err);
like($out, qr/^rebuilt manifest\|manifest slot $mslot is unusable; rebuilt a manifest from slot \d \(the previous version\)/m,
	'from the previous version and a scan');
like($out, qr/^recovered\|found by its header page/m, 'the newest SSTable was found by the scan');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM mf'), $mfsum,
	'every row is back, the memtable\'s too');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('mf')}), '0', 'and it verifies');
$node->safe_psql('postgres', q{SELECT bt_index_check('mf_pkey', true)});
pass('its index was rebuilt and agrees with it');
$node->safe_psql('postgres', q{INSERT INTO mf VALUES (7001, 'after'); SELECT kvlsm_flush('mf'); SELECT kvlsm_compact('mf')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM mf'), '7001', 'and takes writes, flushes and compactions');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('mf')}), '0', 'still verifying');

# a kvlsm_idx index on a heap table
$node->safe_psql('postgres', q{
	CREATE TABLE h (id int, v text);
	CREATE INDEX h_v ON h USING kvlsm_idx (v);
	INSERT INTO h SELECT g, 'h' || g FROM generate_series(1, 5000) g;
	SELECT kvlsm_flush('h_v');
});
my $hstart = $node->safe_psql('postgres', q{SELECT start_block FROM kvlsm_sstables('h_v')});
my $hpath = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('h_v')});
$node->stop;
flip_bytes($hpath, $hstart + 1, 2000);
$node->start;
my $q = q{SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM h WHERE v >= 'h1' AND v < 'h2'};
($ret, $out, $err) = $node->psql('postgres', $q);
like($err, qr/kvlsm relation "h_v" block \d+: checksum mismatch/, 'index scan over the damaged page fails clearly');
like($node->safe_psql('postgres', q{SELECT msg FROM kvlsm_verify('h_v')}), qr/checksum mismatch/,
	'kvlsm_verify finds it');
$node->safe_psql('postgres', q{SELECT * FROM kvlsm_repair('h_v', false)});
is($node->safe_psql('postgres', $q), '1111', 'after repair the index is rebuilt and complete');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('h_v')}), '0', 'and verifies');

# a hot standby verifies too, and refuses repair
my $backup = 'bk';
$node->backup($backup);
my $standby = PostgreSQL::Test::Cluster->new('repair_standby');
$standby->init_from_backup($node, $backup, has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', q{INSERT INTO t SELECT g, 'value ' || g FROM generate_series(40001, 41000) g; SELECT kvlsm_flush('t')});
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('t')}), '0',
	'kvlsm_verify on the standby finds nothing');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM t}), '31000', 'the standby has the rows');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT * FROM kvlsm_repair('t')});
like($err, qr/kvlsm_repair cannot run during recovery/, 'repair refused on a standby');
$standby->stop;

# kvlsm_verify under load: flushes and compactions run while it checks
$node->append_conf('postgresql.conf', qq{
kvlsm.l0_compaction_trigger = 4
kvlsm.l0_slowdown_trigger = 20
kvlsm.l0_stop_trigger = 36
});
$node->reload;
$node->safe_psql('postgres', q{
	CREATE TABLE busy (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '256kB');
	CREATE INDEX busy_v ON busy USING kvlsm_idx (v);
});
my $script = $node->basedir . '/busy.sql';
open my $fh, '>', $script or die;
print $fh q{\set k random(1, 50000)
INSERT INTO busy VALUES (:k, repeat('v', 200) || :k) ON CONFLICT (id) DO UPDATE SET v = excluded.v || 'u';
};
close $fh;
my ($pout, $perr) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '15', '-f', $script, '-d', $node->connstr('postgres') ],
	'>', \$pout, '2>', \$perr);
my $rounds = 0;
my $found = '';
my $deadline = time() + 12;
while (time() < $deadline)
{
	$found .= $node->safe_psql('postgres', q{SELECT string_agg(blkno || ' ' || msg, '; ') FROM kvlsm_verify('busy')});
	$found .= $node->safe_psql('postgres', q{SELECT string_agg(blkno || ' ' || msg, '; ') FROM kvlsm_verify('busy_v')});
	$rounds++;
	usleep(200_000);
}
$bench->finish;
is($found, '', "kvlsm_verify found nothing in $rounds rounds under load");
ok($node->safe_psql('postgres', q{SELECT flushes > 2 AND compactions > 0 FROM kvlsm_stats('busy')}) eq 't',
	'flushes and compactions ran meanwhile')
	or diag($node->safe_psql('postgres', q{SELECT flushes, compactions FROM kvlsm_stats('busy')}));
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('busy')}), '0', 'and after it');

done_testing();
