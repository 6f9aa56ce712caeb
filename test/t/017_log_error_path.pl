
# Copyright (c) kvlsm authors
#
# The log writer's error path (issue 21).  An ERROR raised between two log
# pages of one transaction's records (the error point log-between-pages)
# leaves the first page in WAL.  The transaction (or subtransaction) rolls
# back; VACUUM removes its rows, and their TIDs are reused by new rows with
# other keys.  The index entries on that first page must then be gone on
# the primary, after a crash restart (kill -9 of every server process) and
# on a hot standby alike: kvlsm_idx scans do not recheck keys, so an entry
# that came back would return a row that does not match the condition.
# Index scans, bitmap scans and sequential scans must agree everywhere.
# Cases: a heap table and a kvlsm table, each with a kvlsm_idx index, the
# error at top level and in a subtransaction that a PL/pgSQL exception
# handler rolls back (its parent commits).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use Digest::MD5 qw(md5_hex);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
autovacuum = off
kvlsm.flush_interval = 0
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION kvlsm');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

# both kinds of table, each with a kvlsm_idx index on (k, pad): wide
# entries, so that one batch of deferred entries fills several log pages,
# which one call of the log writer writes
$primary->safe_psql(
	'postgres', q{
CREATE TABLE h (id int, k int, pad text);
CREATE INDEX h_k ON h USING kvlsm_idx (k, pad);
CREATE TABLE t (id int, k int, pad text) USING kvlsm;
CREATE INDEX t_k ON t USING kvlsm_idx (k, pad);
});

# The same condition through an index scan, a bitmap scan and a sequential
# scan: "id:k" of every row, in id order.
my %plans = (
	index => 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_indexscan = on;',
	bitmap => 'SET enable_seqscan = off; SET enable_bitmapscan = on; SET enable_indexscan = off;',
	seq => 'SET enable_seqscan = on; SET enable_bitmapscan = off; SET enable_indexscan = off;',
);

# kvlsm tables offer no bitmap scans (README); heap tables do
my %scan_plans = (h => [ 'index', 'bitmap' ], t => ['index']);

sub scan
{
	my ($node, $plan, $tab, $cond) = @_;
	return $node->safe_psql('postgres',
		"$plans{$plan} SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(id || ':' || k, ',' ORDER BY id), '')) FROM $tab WHERE $cond"
	);
}

# what scan() returns for the rows "id:k" of a list
sub digest
{
	my @rows = @_;
	return scalar(@rows) . ' rows, md5 ' . md5_hex(join(',', @rows));
}

# every scan of every condition agrees with the sequential scan, and with
# what the test expects the rows to be
sub check_node
{
	my ($node, $label, $tab, $conds) = @_;
	for my $c (@$conds)
	{
		my ($cond, $want) = @$c;
		my $seq = scan($node, 'seq', $tab, $cond);
		is($seq, $want, "$label: $tab seq scan WHERE $cond has the committed rows");
		for my $plan (@{ $scan_plans{$tab} })
		{
			my $got = scan($node, $plan, $tab, $cond);
			is($got, $seq, "$label: $tab $plan scan WHERE $cond returns what a seq scan returns");
		}
	}
	# the index paths really are used
	my $p = $node->safe_psql('postgres',
		"$plans{index} EXPLAIN (COSTS OFF) SELECT id FROM $tab WHERE k > 1000000");
	like($p, qr/Index Scan using ${tab}_k/, "$label: $tab index scan plan");
	return if $tab ne 'h';
	$p = $node->safe_psql('postgres',
		"$plans{bitmap} EXPLAIN (COSTS OFF) SELECT id FROM $tab WHERE k > 1000000");
	like($p, qr/Bitmap Index Scan on ${tab}_k/, "$label: $tab bitmap scan plan");
}

my $n = 3000;    # rows per failed insert: about 80 log pages of index entries

# Rows 1..$n with keys 1..$n: what is committed in the end.
my $expect_new = digest(map { "$_:$_" } 1 .. $n);
my $expect_none = digest();

for my $tab ('h', 't')
{
	# 1. top level: the insert fails at its index's second log page and
	# the transaction rolls back
	$primary->safe_psql('postgres', "SELECT kvlsm_arm_error_point('log-between-pages', '${tab}_k')");
	my ($ret, $out, $err) = $primary->psql('postgres',
		"INSERT INTO $tab SELECT g, 1000000 + g, repeat('x', 200) FROM generate_series(1, $n) g");
	isnt($ret, 0, "$tab: the insert failed");
	like($err, qr/kvlsm error point "log-between-pages" reached/, "$tab: at the error point");

	# 2. a subtransaction fails the same way and is rolled back by an
	# exception handler; its parent goes on and commits one more row
	($ret, $out, $err) = $primary->psql(
		'postgres', qq{
DO \$\$
BEGIN
	PERFORM kvlsm_arm_error_point('log-between-pages', '${tab}_k');
	BEGIN
		INSERT INTO $tab SELECT g, 2000000 + g, repeat('y', 200) FROM generate_series(1, $n) g;
	EXCEPTION WHEN internal_error THEN
		RAISE NOTICE 'caught: %', SQLERRM;
	END;
	INSERT INTO $tab VALUES (0, 3000000, 'parent');
END \$\$;});
	is($ret, 0, "$tab: the parent of the failed subtransaction committed");
	like($err, qr/caught: kvlsm error point "log-between-pages" reached/,
		"$tab: the subtransaction failed at the error point");

	# the first log page of each failed insert is in WAL
	my $pages = $primary->safe_psql('postgres', "SELECT log_pages_written FROM kvlsm_stats('${tab}_k')");
	cmp_ok($pages, '>=', 2, "$tab: index log pages were written before the errors");

	# VACUUM removes the rolled-back rows (and their index entries), and
	# new rows with other keys take their place (their TIDs, for the heap)
	$primary->safe_psql('postgres', "DELETE FROM $tab WHERE id = 0; VACUUM $tab;");
	$primary->safe_psql('postgres',
		"INSERT INTO $tab SELECT g, g, 'new' FROM generate_series(1, $n) g");
	if ($tab eq 'h')
	{
		my $reused = $primary->safe_psql('postgres',
			"SELECT count(*) FROM h WHERE ctid <= '(5,1)'");
		cmp_ok($reused, '>', 0, 'h: the new rows reuse the TIDs of the rolled-back ones');
	}
}

my $conds = [
	[ 'k > 1000000', $expect_none ],
	[ 'k BETWEEN 1000001 AND 2999999', $expect_none ],
	[ 'k = 1000001', $expect_none ],
	[ 'k = 2000002', $expect_none ],
	[ 'k BETWEEN 1 AND 3000', $expect_new ],
	[ 'k >= 0', $expect_new ],
];

for my $tab ('h', 't')
{
	check_node($primary, 'primary', $tab, $conds);
}
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
for my $tab ('h', 't')
{
	check_node($standby, 'hot standby', $tab, $conds);
}

# a crash of every server process of the primary: the memtables are
# rebuilt from the log pages
crash_node($primary);
$primary->start;
for my $tab ('h', 't')
{
	check_node($primary, 'after a crash', $tab, $conds);
}

# the standby follows the restarted primary and still agrees
$primary->safe_psql('postgres', "INSERT INTO h VALUES ($n + 1, $n + 1, 'after')");
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($standby->safe_psql('postgres', "$plans{index} SELECT count(*) FROM h WHERE k > 1000000"),
	'0', 'hot standby: still no rolled-back key after the primary crashed');

# and a restart of the standby rebuilds its memtables from the log pages too
$standby->restart;
for my $tab ('h', 't')
{
	check_node($standby, 'restarted standby', $tab,
		[ [ 'k > 1000000', $expect_none ], [ 'k BETWEEN 1 AND 3000', $expect_new ] ]);
}

$standby->stop;
$primary->stop;
done_testing();
