
# Copyright (c) kvlsm authors
#
# Crash points (issue 5): the server is killed at each named point of the
# write, commit, flush, compaction and install paths (the process that
# reaches the armed point SIGKILLs itself, so the postmaster resets every
# process).  After the restart every acknowledged commit is there, nothing
# of the transaction that died before its commit is, a commit that reached
# its commit record is kept, the btree index agrees with the table
# (amcheck's heapallindexed), no compaction output is left pending,
# kvlsm_verify finds nothing and no page stays leaked once the first flush
# after the restart has swept them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crashpoints');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
restart_after_crash = on
kvlsm.default_memtable_size = '64kB'
kvlsm.l0_compaction_trigger = 2
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE EXTENSION amcheck;
	CREATE TABLE t (id int PRIMARY KEY, pad text) USING kvlsm;
	INSERT INTO t SELECT g, repeat('p', 300) FROM generate_series(1, 5000) g;
});

# the flushes and compactions below work on real data, not a handful of rows
my $next = 5001;

# Insert rows one transaction each (optionally flushing after each) until a
# statement fails because the server went down; returns the id of the
# transaction that was cut off.
sub write_until_crash
{
	my ($flush) = @_;
	for (my $i = 0; $i < 2000; $i++)
	{
		my $id = $next++;
		my $sql = "INSERT INTO t VALUES ($id, repeat('p', 300))";
		$sql .= "; SELECT kvlsm_flush('t')" if $flush;
		my ($ret, $out, $err) = $node->psql('postgres', $sql);
		return $id if $ret != 0;
	}
	return undef;
}

sub wait_restarted
{
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'server did not come back';
	return;
}

sub check_state
{
	my ($point, $expect, $what) = @_;
	is($node->safe_psql('postgres', 'SELECT count(*), coalesce(max(id), 0) FROM t'),
		"$expect|$expect", "$point: $what");
	# a row to flush, so the first flush after the restart runs (and sweeps)
	$node->safe_psql('postgres', "INSERT INTO t VALUES (0, 'x'); SELECT kvlsm_flush('t'); DELETE FROM t WHERE id = 0");
	# (a compaction a worker started since may list outputs of its own for
	# a while: what the dead one left must be gone once it finishes)
	ok($node->poll_query_until('postgres',
		"SELECT count(*) FROM kvlsm_sstables('t') WHERE level IS NULL", '0'),
		"$point: no compaction output left pending after the next install");
	is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('t')"), '0',
		"$point: kvlsm_verify finds nothing");
	my ($unref, $reclaimed) = split /\|/, $node->safe_psql('postgres',
		"SELECT unreferenced_pages, pages_reclaimed FROM kvlsm_space('t')");
	is($unref, '0', "$point: no page is left leaked after the first flush");
	note("$point: $reclaimed leaked pages reclaimed");
	is($node->safe_psql('postgres',
		"SELECT bt_index_check('t_pkey', true) IS NOT NULL"), 't',
		"$point: bt_index_check with heapallindexed passes");
	is($node->safe_psql('postgres',
		'SET enable_seqscan = off; SELECT count(*) FROM t WHERE id > 0'), $expect,
		"$point: index scan agrees");
	$next = $expect + 1;
	return;
}

# Where a worker may reach the point (flushes and installs happen in the
# background too), the statement in flight may or may not have committed:
# the rows must be exactly 1..n with n the last acknowledged id or the next.
sub settled_max
{
	my ($point, $cut) = @_;
	my $max = $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM t');
	ok($max == $cut - 1 || $max == $cut,
		"$point: rows end at the last acknowledged one or the one in flight ($max, cut $cut)");
	return $max;
}

# Arm a point, write until the server goes down, wait for the restart and
# make sure it was that point; returns the id of the write that was cut off.
sub crash_at
{
	my ($point, $flush) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT kvlsm_arm_crash_point('$point')");
	my $cut = write_until_crash($flush);
	ok(defined $cut, "$point: the server crashed");
	wait_restarted();
	ok($node->log_contains(qr/kvlsm crash point "$point" reached/, $offset),
		"$point: it was the crash point that fired");
	return $cut;
}

# Points only a client's transaction reaches: exactly known outcomes.
for my $p ([ 'insert-before-log', 0 ], [ 'log-before-commit', 0 ], [ 'after-commit', 1 ])
{
	my ($point, $committed) = @$p;
	my $cut = crash_at($point, 0);
	check_state($point, $committed ? $cut : $cut - 1,
		$committed ? 'every acknowledged row, and the one whose commit record was flushed'
		: 'every acknowledged row, not the one cut off before its commit');
}

# Flush and install points, reached by the client's kvlsm_flush or by a
# worker; then free-extent reuse (compaction frees extents, the next flush
# reuses one); then mid-compaction in a background worker (outputs are
# placed and listed as pending when it dies; the next install reclaims them),
# once after an output was listed and once in the middle of writing one
# into its reserved extent (compaction-streaming).
for my $p ([ 'flush-before-install', 1 ], [ 'before-retire-chain', 1 ], [ 'after-install', 1 ],
	[ 'extent-reuse', 1 ], [ 'compaction-mid', 0 ], [ 'compaction-streaming', 0 ])
{
	my ($point, $flush) = @$p;
	$node->safe_psql('postgres', "SELECT kvlsm_compact('t')") if $point eq 'extent-reuse';
	my $cut = crash_at($point, $flush);
	check_state($point, settled_max($point, $cut), 'rows are exactly the committed ones');
}
my $max = $node->safe_psql('postgres', 'SELECT max(id) FROM t');
$node->safe_psql('postgres', "SELECT kvlsm_compact('t')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $max,
	'a full compaction afterwards keeps every row');

# A flush into new pages at the end of the file that dies before its install
# leaks them; the first flush after the restart sweeps them back.
$node->safe_psql('postgres', q{
	SELECT kvlsm_flush('t');
	CREATE TABLE leak (id int, pad text) USING kvlsm;
	INSERT INTO leak SELECT g, repeat('l', 300) FROM generate_series(1, 150) g;
});
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT kvlsm_arm_crash_point('flush-before-install')");
my ($ret) = $node->psql('postgres', "SELECT kvlsm_flush('leak')");
isnt($ret, 0, 'the flush of the new table crashed');
wait_restarted();
ok($node->log_contains(qr/kvlsm crash point "flush-before-install" reached/, $offset),
	'at flush-before-install');
my $leaked = $node->safe_psql('postgres', "SELECT unreferenced_pages FROM kvlsm_space('leak')");
ok($leaked > 0, "the SSTable written before the crash is leaked ($leaked pages)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM leak'), '150', 'its rows are still there (log)');
$node->safe_psql('postgres', "SELECT kvlsm_flush('leak')");
is($node->safe_psql('postgres', "SELECT unreferenced_pages, pages_reclaimed >= $leaked FROM kvlsm_space('leak')"),
	'0|t', 'the first flush after the restart swept the leaked pages into the free list');
is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('leak')"), '0', 'and the table verifies');
is($node->safe_psql('postgres', 'SELECT count(*) FROM leak'), '150', 'with every row');

$node->stop;
done_testing();
