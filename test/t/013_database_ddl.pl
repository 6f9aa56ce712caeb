
# Copyright (c) kvlsm authors
#
# Database-level DDL while kvlsm workers are connected to the database:
# DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE and CREATE
# DATABASE ... TEMPLATE refuse to run while other sessions are connected,
# and PostgreSQL 15 only asks autovacuum workers to leave.  kvlsm's workers
# must leave by themselves, no new one may start there meanwhile, and the
# shared state of a dropped database's relations must be released.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dbddl');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
allow_in_place_tablespaces = on
});
$node->start;

# fill a kvlsm table with a small memtable so that workers flush and compact
# in 'dbname'; returns once a worker is connected there
sub busy_database
{
	my ($dbname) = @_;
	$node->safe_psql($dbname, q{
		CREATE EXTENSION IF NOT EXISTS kvlsm;
		CREATE TABLE t (id int, v text) USING kvlsm WITH (memtable_size = '256kB');
		INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
	});
	worker_in($dbname);
}

# wait until a kvlsm worker is connected to 'dbname'
sub worker_in
{
	my ($dbname) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM pg_stat_activity
		WHERE backend_type = 'kvlsm worker' AND datname = '$dbname'})
	  or die "no kvlsm worker connected to $dbname";
}

$node->safe_psql('postgres', 'CREATE DATABASE d1');
busy_database('d1');
my ($rc, $out, $err) = $node->psql('postgres', 'ALTER DATABASE d1 RENAME TO d2');
is($rc, 0, 'ALTER DATABASE RENAME while kvlsm workers were connected')
  or diag($err);

$node->safe_psql('postgres', q{CREATE TABLESPACE ts LOCATION ''});
$node->safe_psql('d2', q{INSERT INTO t SELECT g, repeat('y', 100) FROM generate_series(1, 50000) g});
worker_in('d2');
($rc, $out, $err) = $node->psql('postgres', 'ALTER DATABASE d2 SET TABLESPACE ts');
is($rc, 0, 'ALTER DATABASE SET TABLESPACE while kvlsm workers were connected')
  or diag($err);
is($node->safe_psql('d2', 'SELECT count(*) FROM t'), '150000', 'the rows moved with the database');

$node->safe_psql('d2', q{INSERT INTO t SELECT g, 'z' FROM generate_series(1, 50000) g});
worker_in('d2');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE d3 TEMPLATE d2');
is($rc, 0, 'CREATE DATABASE ... TEMPLATE of a database with kvlsm workers')
  or diag($err);
is($node->safe_psql('d3', 'SELECT count(*) FROM t'), '200000', 'the copy has every row');
$node->safe_psql('d3', q{INSERT INTO t VALUES (0, 'new')});
is($node->safe_psql('d3', 'SELECT count(*) FROM t'), '200001', 'the copy takes writes');

$node->safe_psql('d2', q{INSERT INTO t SELECT g, 'w' FROM generate_series(1, 50000) g});
worker_in('d2');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE d2');
is($rc, 0, 'DROP DATABASE while kvlsm workers were connected') or diag($err);
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'kvlsm worker' AND datname IN ('d2')}),
	'0', 'no worker left in the dropped database');

# workers still serve the other databases afterwards
$node->safe_psql('d3', q{INSERT INTO t SELECT g, 'after' FROM generate_series(1, 50000) g});
$node->poll_query_until('d3', q{SELECT worker_flushes > 0 FROM kvlsm_stats('t')})
  or die 'no worker flush in d3 after the drop';
is($node->safe_psql('d3', 'SELECT count(*) FROM t'), '250001', 'd3 intact');
is($node->safe_psql('d3', q{SELECT count(*) FROM kvlsm_verify('t', true)}), '0', 'd3 verifies');

# nothing about the dropped database in the log but the workers' exit
my $log = slurp_file($node->logfile);
unlike($log, qr/(PANIC|TRAP|terminated by signal|does not exist.*kvlsm|kvlsm.*could not)/,
	'no crash or worker error in the server log');

$node->stop;
done_testing();
