
# Copyright (c) kvlsm authors
#
# Garbage collection on the primary never gives a hot-standby query a wrong
# answer: a compaction or a VACUUM that removes row versions a standby
# snapshot may still need (deleted ones, or ones past their TTL that the
# snapshot, judging expiry at its start, still sees) cancels that query
# with a recovery conflict (counted in pg_stat_database_conflicts), and
# hot_standby_feedback = on keeps the versions instead.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
kvlsm.default_memtable_size = '256kB'
autovacuum = off
wal_consistency_checking = 'generic'
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE t (id int, v text) USING kvlsm;
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10000) g;
	CREATE TABLE ti (id int, v text) USING kvlsm;
	INSERT INTO ti SELECT g, 'v' || g FROM generate_series(1, 10000) g;
	CREATE INDEX ti_id ON ti (id);
	SELECT kvlsm_flush('t'), kvlsm_flush('ti');
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
hot_standby_feedback = off
max_standby_streaming_delay = 0
});
$standby->start;
$primary->wait_for_catchup($standby, 'replay');

sub conflicts
{
	return $standby->safe_psql('postgres',
		"SELECT confl_snapshot FROM pg_stat_database_conflicts WHERE datname = 'postgres'");
}

# Run a query in an open REPEATABLE READ session on the standby; returns
# the result, or 'cancelled' if the session was cancelled or terminated by a
# recovery conflict (an idle-in-transaction session is terminated: psql then
# exits, and the standby's log says why).  Anything else is returned as is,
# to fail the test.
sub rr_query
{
	my ($bg, $sql, $log_offset) = @_;
	my $res = eval { $bg->query($sql) };
	my $err = $@ || $bg->{stderr} || '';
	return 'cancelled' if $err =~ /conflict with recovery/;
	return 'cancelled'
	  if $err =~ /process ended prematurely/
	  && $standby->log_contains(qr/terminating connection due to conflict with recovery/,
		$log_offset);
	return defined $res ? $res : "error: $err";
}

# --- compaction drops versions a standby snapshot needs: the query is cancelled
my $c0 = conflicts();
my $bg = $standby->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($bg->query_safe('SELECT count(*) FROM t'), '10000', 'standby snapshot sees all rows');
my $offset = -s $standby->logfile;
$primary->safe_psql('postgres', q{
	DELETE FROM t WHERE id <= 5000;
	SELECT kvlsm_flush('t');
	SELECT kvlsm_compact('t');
});
is($primary->safe_psql('postgres', "SELECT sum(entries) FROM kvlsm_sstables('t')"), '5000',
	'compaction on the primary dropped the deleted rows');
$primary->wait_for_catchup($standby, 'replay');
my $r = rr_query($bg, 'SELECT count(*) FROM t', $offset);
is($r, 'cancelled', 'the standby query that needed them was cancelled, not answered wrongly');
eval { $bg->quit };
ok($standby->poll_query_until('postgres',
	"SELECT confl_snapshot > $c0 FROM pg_stat_database_conflicts WHERE datname = 'postgres'"),
	'the conflict is counted in pg_stat_database_conflicts');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'), '5000',
	'a new standby query sees the primary\'s state');

# --- VACUUM removing index entries: an index scan under an old snapshot is cancelled too
$c0 = conflicts();
$bg = $standby->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$bg->query_safe('SET enable_seqscan = off');
is($bg->query_safe('SELECT count(*) FROM ti WHERE id > 0'), '10000',
	'standby index scan sees all rows');
$offset = -s $standby->logfile;
$primary->safe_psql('postgres', 'DELETE FROM ti WHERE id <= 5000');
$primary->safe_psql('postgres', 'VACUUM ti');
$primary->wait_for_catchup($standby, 'replay');
$r = rr_query($bg, 'SELECT count(*) FROM ti WHERE id > 0', $offset);
is($r, 'cancelled', 'the standby index scan was cancelled before its entries went away');
eval { $bg->quit };
is($standby->safe_psql('postgres',
	'SET enable_seqscan = off; SELECT count(*) FROM ti WHERE id > 0'), '5000',
	'a new standby index scan sees the primary\'s state');

# --- TTL: a standby snapshot judges expiry at its own start, so rows it still
# sees can be past their TTL on the primary, whose compaction then drops
# them: the standby query is cancelled, never answered without them
$primary->safe_psql('postgres', q{
	CREATE TABLE tt (id int, v text) USING kvlsm WITH (ttl = '3 seconds');
	INSERT INTO tt SELECT g, 'v' || g FROM generate_series(1, 1000) g;
	SELECT kvlsm_flush('tt');
});
$primary->wait_for_catchup($standby, 'replay');
$c0 = conflicts();
$bg = $standby->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($bg->query_safe('SELECT count(*) FROM tt'), '1000',
	'TTL: a standby snapshot taken before expiry sees the rows');
$offset = -s $standby->logfile;
sleep(4);
$primary->safe_psql('postgres', "SELECT kvlsm_compact('tt')");
is($primary->safe_psql('postgres', "SELECT count(*) FROM kvlsm_sstables('tt') WHERE entries > 0"),
	'0', 'TTL: compaction on the primary dropped the expired rows');
$primary->wait_for_catchup($standby, 'replay');
$r = rr_query($bg, 'SELECT count(*) FROM tt', $offset);
is($r, 'cancelled', 'TTL: the standby query that still saw them was cancelled, not answered wrongly');
eval { $bg->quit };
ok($standby->poll_query_until('postgres',
	"SELECT confl_snapshot > $c0 FROM pg_stat_database_conflicts WHERE datname = 'postgres'"),
	'TTL: the conflict is counted');

# --- with hot_standby_feedback the primary keeps what the standby needs
$standby->append_conf('postgresql.conf', 'hot_standby_feedback = on');
$standby->reload;
$bg = $standby->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($bg->query_safe('SELECT count(*) FROM t'), '5000', 'feedback: snapshot taken');
$primary->poll_query_until('postgres',
	"SELECT backend_xmin IS NOT NULL FROM pg_stat_replication")
  or die 'no feedback xmin';
$c0 = conflicts();
$primary->safe_psql('postgres', q{
	DELETE FROM t WHERE id <= 7500;
	SELECT kvlsm_flush('t');
	SELECT kvlsm_compact('t');
});
$primary->wait_for_catchup($standby, 'replay');
is(rr_query($bg, 'SELECT count(*) FROM t', -s $standby->logfile), '5000',
	'feedback: the old snapshot still sees its rows after compaction');
$bg->query_safe('COMMIT');
$bg->quit;
is(conflicts(), $c0, 'feedback: no conflict');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'), '2500',
	'feedback: new queries see the delete');

# ... and the rows a standby snapshot sees before their TTL ends, although
# TTL is judged by time and feedback speaks in xids
$primary->safe_psql('postgres', q{
	CREATE TABLE tf (id int, v text) USING kvlsm WITH (ttl = '3 seconds');
	INSERT INTO tf SELECT g, 'v' || g FROM generate_series(1, 1000) g;
	SELECT kvlsm_flush('tf');
});
$primary->wait_for_catchup($standby, 'replay');
$bg = $standby->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($bg->query_safe('SELECT count(*) FROM tf'), '1000', 'feedback, TTL: snapshot taken');
# wait until the feedback carries this snapshot's xmin (an earlier one may
# still be shown, then withdrawn)
my $sxmin = $bg->query_safe('SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296');
$primary->poll_query_until('postgres',
	"SELECT backend_xmin IS NOT NULL AND age(backend_xmin) >= age('$sxmin'::xid) FROM pg_stat_replication")
  or die 'no feedback xmin';
sleep(4);
$c0 = conflicts();
# a second SSTable, so that the compaction merges (and would drop) rather
# than move the first one down
$primary->safe_psql('postgres', q{
	INSERT INTO tf VALUES (0, 'late');
	SELECT kvlsm_flush('tf');
	SELECT kvlsm_compact('tf');
});
is($primary->safe_psql('postgres', "SELECT sum(entries) FROM kvlsm_sstables('tf')"), '1001',
	'feedback, TTL: compaction on the primary kept the expired rows the standby sees');
$primary->wait_for_catchup($standby, 'replay');
is(rr_query($bg, 'SELECT count(*) FROM tf', -s $standby->logfile), '1000',
	'feedback, TTL: the old snapshot still sees the expired rows after compaction');
$bg->query_safe('COMMIT');
$bg->quit;
is(conflicts(), $c0, 'feedback, TTL: no conflict');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM tf'), '1',
	'feedback, TTL: new queries see the rows expired');

$standby->stop;
$primary->stop;
done_testing();
