
# Copyright (c) kvlsm authors
#
# Space given back (issue 23): a full compaction writes its outputs at the
# end of the file while its inputs still hold the middle, so afterwards
# most of the file is free pages and the live tables sit at the end.
# VACUUM moves those tables into the free extents below them
# (src/engine/relocate.c) and truncates the free end (reclaim.c); with
# kvlsm.background_truncate the workers do the same after compactions.
# Checked: the file shrinks and its free share drops under a quarter; the
# rows are the same through sequential and kvlsm_idx scans, on the primary
# and on a hot standby; kvlsm_verify finds nothing; a crash (kill -9 of the
# process at the error/crash point relocate-mid, the server restarting
# every process) or an ERROR in the middle of a move loses nothing and
# leaks no page, and the next VACUUM finishes the job.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
restart_after_crash = on
autovacuum = off
kvlsm.flush_interval = 0
kvlsm.l0_compaction_trigger = 1000
kvlsm.l0_slowdown_trigger = 1000
kvlsm.l0_stop_trigger = 1000
kvlsm.background_truncate = off
kvlsm.space_reclaim = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kvlsm');
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;

$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int, v text) USING kvlsm WITH (memtable_size = '8MB');
CREATE INDEX t_id ON t USING kvlsm_idx (id);
});
# twenty flushes of 10,000 rows: twenty level-0 tables in each relation
load_in_flushes($node, 't', 20);
my $expect = $node->safe_psql('postgres',
	'SELECT count(*), sum(hashtext(v)) FROM t');

# the file's pages, its free share in percent, and where its live tables end
sub layout
{
	my ($rel) = @_;
	my ($pages, $free, $reach) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT s.total_pages, round(100.0 * s.free_pages / s.total_pages),
		       (SELECT max(start_block + pages) FROM kvlsm_sstables('$rel') WHERE level IS NOT NULL)
		  FROM kvlsm_space('$rel') s});
	return ($pages, $free, $reach);
}

sub check_rows
{
	my ($node, $what) = @_;
	is($node->safe_psql('postgres', 'SET enable_indexscan = off; SET enable_bitmapscan = off;'
			. 'SELECT count(*), sum(hashtext(v)) FROM t'),
		$expect, "$what: sequential scan has every row");
	is($node->safe_psql('postgres', 'SET enable_seqscan = off; SET enable_bitmapscan = off;'
			. 'SELECT count(*), sum(hashtext(v)) FROM t WHERE id > 0'),
		$expect, "$what: kvlsm_idx scan has every row");
	return;
}

sub check_clean
{
	my ($what) = @_;
	for my $rel ('t', 't_id')
	{
		is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('$rel')"), '0',
			"$what: kvlsm_verify('$rel') finds nothing");
		is($node->safe_psql('postgres',
				"SELECT count(*) FROM kvlsm_sstables('$rel') WHERE level IS NULL"), '0',
			"$what: no move target or compaction output left pending in $rel");
	}
	return;
}

# a full compaction leaves its outputs at the end and the middle free
sub make_gap
{
	$node->safe_psql('postgres', "SELECT kvlsm_compact('t'), kvlsm_compact('t_id')");
	my ($pages, $free, $reach) = layout('t');
	note("after compaction: t has $pages pages, $free% free, tables reach block $reach");
	cmp_ok($free, '>', 25, 'a full compaction leaves over a quarter of the file free');
	return $pages;
}

# 1. VACUUM moves the tables down and truncates
my $before = make_gap();
my ($before_idx) = layout('t_id');
$node->safe_psql('postgres', 'VACUUM t');
my ($pages, $free, $reach) = layout('t');
my ($pages_idx, $free_idx) = layout('t_id');
note("after VACUUM: t has $pages pages ($free% free), t_id $pages_idx ($free_idx% free)");
cmp_ok($pages, '<', $before * 0.75, 'VACUUM gave the end of the table file back');
cmp_ok($free, '<=', 25, 'at most a quarter of the table file is free after VACUUM');
cmp_ok($pages_idx, '<', $before_idx * 0.75, 'VACUUM gave the end of the index file back');
cmp_ok($reach, '<=', $pages, 'every live table lies inside the file');
check_rows($node, 'after VACUUM');
check_clean('after VACUUM');
$node->wait_for_catchup($standby);
check_rows($standby, 'standby after the moves');

# 1b. vacuum_truncate = false: VACUUM moves nothing and truncates neither
# the table's file nor its index's
make_gap();
my ($keep_t) = layout('t');
my ($keep_i) = layout('t_id');
$node->safe_psql('postgres', 'ALTER TABLE t SET (vacuum_truncate = false); VACUUM t');
is((layout('t'))[0], $keep_t, 'vacuum_truncate = false keeps the table file');
is((layout('t_id'))[0], $keep_i, 'vacuum_truncate = false keeps the index file');
$node->safe_psql('postgres', 'ALTER TABLE t RESET (vacuum_truncate)');
check_rows($node, 'after VACUUM without truncation');

# 2. an ERROR in the middle of a move
make_gap();
$node->safe_psql('postgres', "SELECT kvlsm_arm_error_point('relocate-mid', 't')");
my ($ret, $out, $err) = $node->psql('postgres', 'VACUUM t');
isnt($ret, 0, 'VACUUM fails at the error point');
like($err, qr/relocate-mid/, 'it was the error point');
check_rows($node, 'after the error');
$node->safe_psql('postgres', 'VACUUM t');
($pages, $free) = layout('t');
cmp_ok($free, '<=', 25, 'the next VACUUM finishes the moves');
check_clean('after the error and the next VACUUM');

# 3. a crash in the middle of a move
make_gap();
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT kvlsm_arm_crash_point('relocate-mid')");
($ret, $out, $err) = $node->psql('postgres', 'VACUUM t');
isnt($ret, 0, 'the server went down in VACUUM');
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server restarted');
ok($node->log_contains(qr/kvlsm crash point "relocate-mid" reached/, $offset),
	'it was the crash point');
check_rows($node, 'after the crash');
# the first flush after the restart sweeps leaked pages; then a VACUUM
$node->safe_psql('postgres',
	"INSERT INTO t VALUES (0, 'x'); SELECT kvlsm_flush('t'); DELETE FROM t WHERE id = 0; SELECT kvlsm_flush('t')");
$node->safe_psql('postgres', 'VACUUM t');
($pages, $free) = layout('t');
cmp_ok($free, '<=', 25, 'VACUUM after the restart finishes the moves');
is($node->safe_psql('postgres', "SELECT unreferenced_pages FROM kvlsm_space('t')"), '0',
	'no page is left leaked');
check_rows($node, 'after the crash and VACUUM');
check_clean('after the crash and VACUUM');
$node->wait_for_catchup($standby);
check_rows($standby, 'standby after the crash');

# 4. the memtable's log pages at the end of the file: VACUUM flushes first.
# A full compaction leaves the middle free and its output at the end; the
# log then fills its reserve and goes on at the end of the file.
$node->safe_psql(
	'postgres', q{
CREATE TABLE u (id int, v text) USING kvlsm WITH (memtable_size = '64MB');
INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
SELECT kvlsm_flush('u');
INSERT INTO u SELECT g, md5(g::text) FROM generate_series(50001, 100000) g;
SELECT kvlsm_flush('u');
SELECT kvlsm_compact('u');
INSERT INTO u SELECT g, md5(g::text) FROM generate_series(100001, 150000) g;
});
my ($u_pages, $u_log) = split /\|/, $node->safe_psql('postgres',
	"SELECT total_pages, log_pages FROM kvlsm_space('u')");
note("u before VACUUM: $u_pages pages, $u_log of them log pages");
$node->safe_psql('postgres', 'VACUUM u');
my ($u_after, $u_log_after, $u_free_share) = split /\|/, $node->safe_psql('postgres',
	"SELECT total_pages, log_pages, round(100.0 * free_pages / total_pages) FROM kvlsm_space('u')");
note("u after VACUUM: $u_after pages, $u_log_after log pages, $u_free_share% free");
is($u_log_after, '0', 'VACUUM flushed the memtable whose log kept the end of the file');
cmp_ok($u_after, '<', $u_pages - $u_log, 'and truncated the file by more than the log took');
cmp_ok($u_free_share, '<=', 25, 'leaving at most a quarter of it free');
is($node->safe_psql('postgres', "SELECT count(*), sum(hashtext(v)) = sum(hashtext(md5(id::text))) FROM u"),
	'150000|t', 'every row of u is there');
is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('u')"), '0',
	'kvlsm_verify(u) finds nothing');

# 5. the background workers, without VACUUM
make_gap();
$node->safe_psql('postgres',
	'ALTER SYSTEM SET kvlsm.background_truncate = on; ALTER SYSTEM SET kvlsm.l0_compaction_trigger = 2; SELECT pg_reload_conf()');
# two new level-0 tables make a worker compact, then reclaim
for my $b (0 .. 1)
{
	$node->safe_psql('postgres',
		"UPDATE t SET v = v WHERE id % 50 = $b; SELECT kvlsm_flush('t')");
}
ok( $node->poll_query_until(
		'postgres',
		"SELECT s.free_pages * 4 <= s.total_pages FROM kvlsm_space('t') s", 't'),
	'the workers moved the tables and gave the free end back');
($pages, $free) = layout('t');
note("after background reclaim: t has $pages pages, $free% free");
check_rows($node, 'after background reclaim');
check_clean('after background reclaim');

# 6. a crash after a truncation.  Recovery replays the truncation, so the
# pages the file was extended by afterwards without WAL (free extents at
# the end, not yet written) are gone while the manifest still lists them.
# Log pages added at the end of the file must go past them: a log page
# inside a listed free extent is overwritten by the next SSTable placed
# there (the log writer used to extend from the file's end).
$node->safe_psql('postgres', q{
ALTER SYSTEM SET kvlsm.background_truncate = off; SELECT pg_reload_conf();
CREATE TABLE w (id int, v text) USING kvlsm WITH (memtable_size = '64MB');
INSERT INTO w SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
SELECT kvlsm_flush('w');
INSERT INTO w SELECT g, md5(g::text) FROM generate_series(100001, 200000) g;
SELECT kvlsm_flush('w');
SELECT kvlsm_compact('w');
CHECKPOINT;
});
my $w_before = $node->safe_psql('postgres', "SELECT total_pages FROM kvlsm_space('w')");
$node->safe_psql('postgres', 'VACUUM w');
my $w_after = $node->safe_psql('postgres', "SELECT total_pages FROM kvlsm_space('w')");
note("w: $w_before pages, $w_after after VACUUM");
cmp_ok($w_after, '<', $w_before, 'VACUUM truncated w (the truncation recovery will replay)');
# new tables at the end: the file grows by an eighth at a time, more than
# a table of 10,000 rows takes, so an extension leaves a free extent at the
# end that nothing has written yet.  Load until one does: more pages past
# the last table than the log reserve and manifest pages can explain.
my $w_rows = 200000;
my $tail_free = 0;
for my $b (0 .. 29)
{
	my $lo = $w_rows + 1;
	$w_rows += 10000;
	$node->safe_psql('postgres',
		"INSERT INTO w SELECT g, md5(g::text) FROM generate_series($lo, $w_rows) g; SELECT kvlsm_flush('w')");
	$tail_free = $node->safe_psql('postgres', q{
		SELECT s.total_pages - (SELECT max(start_block + pages) FROM kvlsm_sstables('w'))
		       - s.log_reserve_pages - s.manifest_continuation_pages - s.log_pages > 10
		  FROM kvlsm_space('w') s});
	last if $tail_free eq 't';
}
is($tail_free, 't', 'a free extent that nothing wrote ends the file of w');
# a commit with an xid flushes WAL, the last install with it
$node->safe_psql('postgres', 'SELECT txid_current()');
my $w_space = "SELECT total_pages, sstable_pages, free_pages, log_pages, log_reserve_pages FROM kvlsm_space('w')";
note('w before the crash (total|sstable|free|log|reserve): ' . $node->safe_psql('postgres', $w_space));
$node->stop('immediate');
$node->start;
my ($w_total, $w_sst, $w_free, $w_log, $w_res) = split /\|/, $node->safe_psql('postgres', $w_space);
note("w after recovery: $w_total pages; $w_sst SSTable, $w_free free, $w_log log, $w_res reserve");
cmp_ok($w_sst + $w_free + $w_res, '>', $w_total,
	'after recovery the manifest lists free pages past the end of the file');
my $w_next = $w_rows + 1;
# more log than the reserve holds: the log writer adds pages at the end
$node->safe_psql('postgres',
	"INSERT INTO w SELECT g, md5(g::text) FROM generate_series($w_next, $w_next + 59999) g");
cmp_ok($node->safe_psql('postgres', "SELECT log_pages FROM kvlsm_space('w')"), '>', 256,
	'the memtable log outgrew the reserve');
is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('w')"), '0',
	'no log page lies in a listed free extent')
  or diag($node->safe_psql('postgres', "SELECT * FROM kvlsm_verify('w')"));
$node->safe_psql('postgres',
	"SELECT kvlsm_flush('w'); INSERT INTO w SELECT g, md5(g::text) FROM generate_series($w_next + 60000, $w_next + 69999) g; SELECT kvlsm_flush('w')");
is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('w')"), '0',
	'kvlsm_verify(w) finds nothing after two more flushes');
is($node->safe_psql('postgres', 'SELECT count(*), sum(hashtext(v)) = sum(hashtext(md5(id::text))) FROM w'),
	($w_rows + 70000) . '|t', 'every row of w is there');

done_testing();
