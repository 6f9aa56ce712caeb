
# Copyright (c) kvlsm authors
#
# pgbench TPC-B on kvlsm tables (default_table_access_method = kvlsm):
# the TPC-B balance invariants hold after a normal run, after a run with a
# flush and small memtables, after a crash restart, and after a crash in the
# middle of a run; kvlsm_verify finds nothing wrong with any table then.
# autovacuum runs every second, so VACUUM's moves and truncations
# (kvlsm.space_reclaim) and the workers' run alongside pgbench.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use IPC::Run;
use Time::HiRes qw(usleep);

# wal_level = replica (the framework's default is minimal): pgbench -i
# creates and loads its tables in one transaction, and kvlsm's crash safety
# under wal_level = minimal is covered separately in 001_crash.pl.
my $node = PostgreSQL::Test::Cluster->new('bench');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
shared_buffers = 128MB
max_connections = 30
kvlsm.memtable_memory = 64MB
default_table_access_method = kvlsm
autovacuum_naptime = 1s
autovacuum_vacuum_scale_factor = 0.01
autovacuum_vacuum_insert_scale_factor = 0.01
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kvlsm');

my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');

# pgbench output: "number of transactions actually processed: N"
sub processed
{
	my ($out) = @_;
	return $1 if $out =~ /number of transactions actually processed: (\d+)/;
	return undef;
}

sub run_pgbench
{
	my ($name, @args) = @_;
	my ($out, $err);
	my $ok = eval {
		IPC::Run::run([ 'pgbench', @args, @conn ],
			'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	};
	$err .= "\n$@" if $@;
	ok($ok, "$name: pgbench exit status 0") or diag("stdout:\n$out\nstderr:\n$err");
	note "$name stdout:\n$out\nstderr:\n$err";
	my $n = processed($out);
	ok(defined $n && $n > 0, "$name: pgbench processed transactions")
	  or diag("stdout:\n$out");
	like($out, qr/number of failed transactions: 0 /, "$name: no failed transactions")
	  if $out =~ /number of failed transactions/;
	return $n // 0;
}

# The TPC-B invariants; $nhist, if defined, is the exact history count
# expected, or [min, max].
sub check_invariants
{
	my ($name, $nhist) = @_;
	for my $r (qw(pgbench_accounts pgbench_history pgbench_tellers pgbench_branches))
	{
		is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('$r')"), '0',
			"$name: kvlsm_verify($r) finds nothing")
		  or diag($node->safe_psql('postgres', "SELECT * FROM kvlsm_verify('$r')"));
	}
	my $sums = $node->safe_psql(
		'postgres', q{
SELECT (SELECT sum(abalance) FROM pgbench_accounts),
       (SELECT sum(bbalance) FROM pgbench_branches),
       (SELECT sum(tbalance) FROM pgbench_tellers),
       (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
       (SELECT count(*) FROM pgbench_history)});
	my ($a, $b, $t, $d, $h) = split /\|/, $sums;
	note "$name: accounts=$a branches=$b tellers=$t history=$d rows=$h";
	ok($a == $b && $b == $t && $t == $d,
		"$name: sum(abalance) = sum(bbalance) = sum(tbalance) = sum(delta)")
	  or diag("accounts=$a branches=$b tellers=$t history=$d");
	if (ref $nhist)
	{
		ok($h >= $nhist->[0] && $h <= $nhist->[1],
			"$name: history rows $h within [$nhist->[0], $nhist->[1]]");
	}
	elsif (defined $nhist)
	{
		is($h, $nhist, "$name: history rows equal transactions processed");
	}

	# Per row: each balance equals its share of the history.
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT count(*) FROM pgbench_accounts a
          LEFT JOIN (SELECT aid, sum(delta) s FROM pgbench_history GROUP BY aid) h USING (aid)
         WHERE a.abalance <> coalesce(h.s, 0))
     + (SELECT count(*) FROM pgbench_tellers t
          LEFT JOIN (SELECT tid, sum(delta) s FROM pgbench_history GROUP BY tid) h USING (tid)
         WHERE t.tbalance <> coalesce(h.s, 0))
     + (SELECT count(*) FROM pgbench_branches b
          LEFT JOIN (SELECT bid, sum(delta) s FROM pgbench_history GROUP BY bid) h USING (bid)
         WHERE b.bbalance <> coalesce(h.s, 0))}),
		'0',
		"$name: every account, teller and branch balance matches its history");

	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT count(*) FROM pgbench_accounts) || ',' ||
       (SELECT count(DISTINCT aid) FROM pgbench_accounts) || ',' ||
       (SELECT count(*) FROM pgbench_tellers) || ',' ||
       (SELECT count(*) FROM pgbench_branches)}),
		'200000,200000,20,2',
		"$name: one live version per account, teller and branch");

	# The primary key index agrees with a sequential scan.
	my $q = q{SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN 1000 AND 150000};
	my $seq = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; $q");
	my $idx = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
	is($idx, $seq, "$name: index scan on pgbench_accounts_pkey equals seq scan");
	return;
}

# --- initialize -------------------------------------------------------------

my ($iout, $ierr);
ok(IPC::Run::run([ 'pgbench', '-i', '-s', '2', @conn ], '>', \$iout, '2>', \$ierr),
	'pgbench -i -s 2')
  or diag("stdout:\n$iout\nstderr:\n$ierr");

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(c.relname || ':' || a.amname, ',' ORDER BY c.relname)
  FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE c.relname LIKE 'pgbench\_%' AND c.relkind = 'r'}),
	'pgbench_accounts:kvlsm,pgbench_branches:kvlsm,pgbench_history:kvlsm,pgbench_tellers:kvlsm',
	'pgbench tables use kvlsm');
# If pgbench -i failed while adding the primary keys (kvlsm bug: parallel
# index build), add them serially so the rest of the test still exercises
# kvlsm through index scans.  Test 1 above has already failed in that case.
if ($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_index WHERE indisprimary AND indrelid::regclass::text LIKE 'pgbench\_%'}) ne '3')
{
	diag('pgbench -i did not create the primary keys; creating them serially');
	$node->safe_psql(
		'postgres', q{
SET max_parallel_maintenance_workers = 0;
ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
});
}
is( $node->safe_psql(
		'postgres', 'SELECT count(*), sum(abalance) FROM pgbench_accounts'),
	'200000|0',
	'pgbench_accounts loaded');

# --- phase 1: plain run -------------------------------------------------------

my $total = 0;
$total += run_pgbench('phase 1', '-c', '4', '-j', '2', '-T', '15', '-n');
check_invariants('phase 1', $total);

# --- phase 2: small memtables and a flush in the middle ---------------------

$node->safe_psql(
	'postgres', q{
SELECT kvlsm_set_option('pgbench_accounts', 'memtable_size', '256kB');
SELECT kvlsm_set_option('pgbench_history', 'memtable_size', '64kB');
});
my $flushes_before = $node->safe_psql('postgres',
	"SELECT flushes FROM kvlsm_stats('pgbench_accounts')");
{
	my ($out, $err);
	my $h = IPC::Run::start(
		[ 'pgbench', '-c', '4', '-j', '2', '-T', '10', '-n', @conn ],
		'>', \$out, '2>', \$err);
	sleep 4;
	$node->safe_psql('postgres', "SELECT kvlsm_flush('pgbench_accounts')");
	sleep 2;
	$node->safe_psql('postgres', "SELECT kvlsm_compact('pgbench_accounts')");
	$node->safe_psql('postgres', "SELECT kvlsm_flush('pgbench_tellers')");
	my $ok = $h->finish;
	ok($ok, 'phase 2: pgbench exit status 0') or diag("stdout:\n$out\nstderr:\n$err");
	note "phase 2 stdout:\n$out\nstderr:\n$err";
	my $n = processed($out);
	ok(defined $n && $n > 0, 'phase 2: pgbench processed transactions');
	$total += $n // 0;
}
cmp_ok($node->safe_psql('postgres', "SELECT flushes FROM kvlsm_stats('pgbench_accounts')"),
	'>', $flushes_before + 1, 'phase 2: pgbench_accounts was flushed');
note "levels of pgbench_accounts:\n"
  . $node->safe_psql('postgres', "SELECT * FROM kvlsm_levels('pgbench_accounts')");
check_invariants('phase 2', $total);

crash_node($node);
$node->start;
check_invariants('phase 2 after crash restart', $total);

# --- phase 3: crash in the middle of a run ------------------------------------

{
	my ($out, $err);
	my $h = IPC::Run::start(
		[ 'pgbench', '-c', '4', '-j', '2', '-T', '30', '-n', @conn ],
		'>', \$out, '2>', \$err);
	sleep 3;
	$node->safe_psql('postgres', "SELECT kvlsm_flush('pgbench_accounts')");
	sleep 3;
	crash_node($node);
	eval { $h->finish; };
	note "phase 3 stdout:\n$out\nstderr:\n$err";
	my $n = processed($out) // 0;
	note "phase 3: pgbench reported $n transactions before the crash";
	$node->start;
	# Up to 4 transactions (one per client) may have committed without
	# pgbench hearing about it.
	check_invariants('phase 3 after crash mid-run', [ $total + $n, $total + $n + 4 ]);
}

# The tables still work after all this.
$total = $node->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
$total += run_pgbench('phase 4', '-c', '2', '-j', '2', '-T', '5', '-n');
check_invariants('phase 4', $total);

$node->stop;
done_testing();
