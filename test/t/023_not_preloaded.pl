
# Copyright (c) kvlsm authors
#
# A server without kvlsm in shared_preload_libraries (a node set up by
# hand, a replica whose configuration missed it) must refuse to serve kvlsm
# tables with a clear error, never answer from half of its state (issue
# 25).  Its WAL replay needs nothing of kvlsm (generic WAL), so a standby
# without it stays consistent and serves the tables once kvlsm is loaded.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('np_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION kvlsm;
CREATE TABLE t (id int PRIMARY KEY, v text) USING kvlsm;
CREATE INDEX t_v ON t USING kvlsm_idx (v);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g;
SELECT kvlsm_flush('t');
INSERT INTO t SELECT g, 'w' || g FROM generate_series(5001, 6000) g;
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('np_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
# the standby's configuration lacks kvlsm
$standby->append_conf('postgresql.conf', "shared_preload_libraries = ''\nhot_standby = on\n");
$standby->start;
$primary->safe_psql('postgres',
	q{INSERT INTO t SELECT g, 'x' || g FROM generate_series(6001, 7000) g; SELECT kvlsm_flush('t')});
$primary->wait_for_catchup($standby);

for my $sql (
	[ 'a sequential scan', 'SELECT count(*) FROM t' ],
	[ 'an index scan', q{SET enable_seqscan = off; SELECT count(*) FROM t WHERE v = 'v7'} ],
	[ 'kvlsm_stats', q{SELECT * FROM kvlsm_stats('t')} ])
{
	my ($what, $q) = @$sql;
	my ($ret, $out, $err) = $standby->psql('postgres', $q);
	isnt($ret, 0, "standby without kvlsm preloaded: $what fails");
	like($err, qr/kvlsm must be loaded via shared_preload_libraries/,
		"standby without kvlsm preloaded: $what names the cause");
	is($out, '', "standby without kvlsm preloaded: $what returns no rows");
}
is($standby->safe_psql('postgres', q{SELECT count(*) > 0 FROM pg_class WHERE relname = 't'}),
	't', 'the standby still serves everything else');

# the primary restarted without kvlsm: reads and writes refused, nothing lost
$primary->stop;
$primary->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$primary->start;
my ($ret, $out, $err) = $primary->psql('postgres', q{INSERT INTO t VALUES (100000, 'no')});
isnt($ret, 0, 'primary without kvlsm preloaded: an INSERT fails');
like($err, qr/kvlsm must be loaded via shared_preload_libraries/, 'with the clear error');
($ret, $out, $err) = $primary->psql('postgres', q{SELECT count(*) FROM t});
like($err, qr/kvlsm must be loaded via shared_preload_libraries/, 'a read gets it too');

# kvlsm back in the configuration: every row is there, on both
$primary->stop;
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$primary->start;
$standby->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$standby->restart;
$primary->safe_psql('postgres', q{INSERT INTO t VALUES (7001, 'after')});
$primary->wait_for_catchup($standby);
for my $node ($primary, $standby)
{
	is($node->safe_psql('postgres', q{SELECT count(*), sum(id) FROM t}),
		'7001|24510501', $node->name . ': every row, the refused INSERT not among them');
	is($node->safe_psql('postgres',
			q{SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t WHERE v IN ('v7', 'w5007', 'x6007', 'after')}),
		'4', $node->name . ': kvlsm_idx lookups find them');
}
is($standby->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('t')}), '0',
	'the standby that replayed without kvlsm verifies clean');

done_testing();
