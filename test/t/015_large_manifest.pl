
# Copyright (c) kvlsm authors
#
# A manifest larger than its slot page (issue 4): with compaction held back,
# hundreds of flushes leave hundreds of L0 tables (the manifest used to hold
# at most 64).  The manifest then continues on continuation pages.  Shown
# here: every row is found through the table and its index; a restart and
# a hot standby read the manifest back from its pages; a crash between
# writing the continuation pages and switching the metapage
# (manifest-before-switch) keeps the previous manifest and loses nothing;
# kvlsm_verify finds nothing wrong at each step; a compaction shrinks the
# manifest back into its slot page and the continuation pages become free.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
restart_after_crash = on
kvlsm.default_memtable_size = '64kB'
kvlsm.l0_compaction_trigger = 1000
kvlsm.l0_slowdown_trigger = 1000
kvlsm.l0_stop_trigger = 1000
autovacuum = off
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE m (id int PRIMARY KEY, v text) USING kvlsm;
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

my $rounds = 300;
my $per = 20;

# one transaction per statement: each flush finds the previous insert
sub add_rounds
{
	my ($first, $n) = @_;
	my $sql = '';
	for my $r ($first .. $first + $n - 1)
	{
		my ($lo, $hi) = ($r * $per + 1, ($r + 1) * $per);
		$sql .= "INSERT INTO m SELECT g, 'v' || g FROM generate_series($lo, $hi) g;\n";
		$sql .= "SELECT kvlsm_flush('m');\n";
	}
	$primary->safe_psql('postgres', $sql);
	return;
}

sub expect_rows
{
	my ($node, $n, $what) = @_;
	my $sum = $n * ($n + 1) / 2;
	is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM m'), "$n|$sum",
		"$what: every row by a scan");
	my @probe = (1, int($n / 3), int($n / 2) + 7, $n);
	my $in = join(',', @probe);
	is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SELECT count(*) FROM m WHERE id IN ($in)"),
		scalar(@probe), "$what: rows found through the index");
	is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('m')"), '0',
		"$what: kvlsm_verify finds nothing");
	return;
}

sub l0_tables
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT sstables FROM kvlsm_levels('m') WHERE name = 'L0'");
}

sub cont_pages
{
	return $primary->safe_psql('postgres',
		"SELECT manifest_continuation_pages FROM kvlsm_space('m')");
}

add_rounds(0, $rounds);
my $rows = $rounds * $per;
my $l0 = l0_tables($primary);
ok($l0 >= $rounds, "$l0 L0 tables after $rounds flushes (more than the old limit of 64)");
my $cont = cont_pages();
ok($cont >= 2, "the manifest continues on $cont continuation pages");
expect_rows($primary, $rows, 'primary');

$primary->wait_for_catchup($standby, 'replay');
is(l0_tables($standby), $l0, 'the standby lists the same tables');
expect_rows($standby, $rows, 'standby');

$primary->restart;
is(l0_tables($primary), $l0, 'after a restart the manifest is read back whole');
expect_rows($primary, $rows, 'after restart');

# a crash after the continuation pages are written, before the switch
my $offset = -s $primary->logfile;
$primary->safe_psql('postgres',
	"INSERT INTO m SELECT g, 'v' || g FROM generate_series($rows + 1, $rows + $per) g");
$rows += $per;
$primary->safe_psql('postgres', "SELECT kvlsm_arm_crash_point('manifest-before-switch')");
my ($ret) = $primary->psql('postgres', "SELECT kvlsm_flush('m')");
isnt($ret, 0, 'the flush died at manifest-before-switch');
$primary->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back';
ok($primary->log_contains(qr/kvlsm crash point "manifest-before-switch" reached/, $offset),
	'it was that crash point');
is(l0_tables($primary), $l0, 'the previous manifest is still the current one');
expect_rows($primary, $rows, 'after the crash');

# the next flush installs (and sweeps what the crash left unreferenced)
add_rounds($rows / $per, 10);
$rows += 10 * $per;
is($primary->safe_psql('postgres', "SELECT unreferenced_pages FROM kvlsm_space('m')"), '0',
	'no page is left unreferenced');
expect_rows($primary, $rows, 'after more flushes');

# compaction merges the L0 tables; the manifest fits its slot page again
$primary->safe_psql('postgres', "SELECT kvlsm_compact_range('m')");
is(l0_tables($primary), '0', 'a full compaction leaves no L0 table');
is(cont_pages(), '0', 'and the manifest needs no continuation page');
expect_rows($primary, $rows, 'after compaction');
$primary->wait_for_catchup($standby, 'replay');
is(l0_tables($standby), '0', 'the standby follows');
expect_rows($standby, $rows, 'standby after compaction');

$standby->stop;
$primary->stop;
done_testing();
