
# Copyright (c) kvlsm authors
#
# Sharding with PostgreSQL's own engine (issue 25): a coordinator holds a
# partitioned table whose partitions are postgres_fdw foreign tables on two
# shard servers, where they are kvlsm tables with kvlsm_idx and btree
# indexes.  Inserts through the coordinator are routed to the right shard,
# a query on one partition key is pruned to one shard, aggregates are
# pushed down (the plans show it), and one partition moves to a third, new
# server by the procedure of docs/cluster.md ("Moving a partition") without
# losing or duplicating a row, while a client keeps inserting.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $conf = q{
shared_preload_libraries = 'kvlsm'
kvlsm.memtable_memory = 32MB
max_prepared_transactions = 10
};
my %node;
for my $name (qw(coord shard1 shard2 shard3))
{
	$node{$name} = PostgreSQL::Test::Cluster->new("sh_$name");
	$node{$name}->init;
	$node{$name}->append_conf('postgresql.conf', $conf);
	$node{$name}->start;
}
my $coord = $node{coord};
# aggregates of a partitioned table go to the shards only partition-wise
$coord->append_conf('postgresql.conf',
	"enable_partitionwise_aggregate = on\nenable_partitionwise_join = on\n");
$coord->reload;

# a shard's table: the rows of one region
my $shard_table = q{
CREATE EXTENSION IF NOT EXISTS kvlsm;
CREATE TABLE %s (id bigint NOT NULL, region int NOT NULL, amount int NOT NULL, note text)
  USING kvlsm WITH (memtable_size = '1MB');
CREATE UNIQUE INDEX %s_id ON %s (id);
CREATE INDEX %s_note ON %s USING kvlsm_idx (note);
};
$node{shard1}->safe_psql('postgres', sprintf($shard_table, ('orders_r1') x 5));
$node{shard2}->safe_psql('postgres', sprintf($shard_table, ('orders_r2') x 5));

my $server = sub {
	my ($name) = @_;
	my $n = $node{$name};
	return sprintf(
		q{CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw
		    OPTIONS (host '%s', port '%d', dbname 'postgres', use_remote_estimate 'true');
		  CREATE USER MAPPING FOR CURRENT_USER SERVER %s;},
		$name, $n->host, $n->port, $name);
};
$coord->safe_psql('postgres',
	'CREATE EXTENSION postgres_fdw;' . $server->('shard1') . $server->('shard2') . q{
CREATE TABLE orders (id bigint NOT NULL, region int NOT NULL, amount int NOT NULL, note text)
  PARTITION BY LIST (region);
CREATE FOREIGN TABLE orders_r1 PARTITION OF orders FOR VALUES IN (1)
  SERVER shard1 OPTIONS (table_name 'orders_r1');
CREATE FOREIGN TABLE orders_r2 PARTITION OF orders FOR VALUES IN (2)
  SERVER shard2 OPTIONS (table_name 'orders_r2');
CREATE SEQUENCE orders_id;
});

# inserts through the coordinator are routed to the shards
$coord->safe_psql('postgres',
	q{INSERT INTO orders SELECT nextval('orders_id'), 1 + g % 2, g % 1000, 'n' || (g % 50)
	    FROM generate_series(1, 20000) g});
is($node{shard1}->safe_psql('postgres', 'SELECT count(*), min(region), max(region) FROM orders_r1'),
	'10000|1|1', 'region 1 rows went to shard 1');
is($node{shard2}->safe_psql('postgres', 'SELECT count(*), min(region), max(region) FROM orders_r2'),
	'10000|2|2', 'region 2 rows went to shard 2');
is($node{shard1}->safe_psql('postgres',
		q{SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'orders_r1'}),
	'kvlsm', 'the shard stores them in a kvlsm table');
$node{$_}->safe_psql('postgres', "SELECT kvlsm_flush('orders_r" . substr($_, -1) . "')")
  for qw(shard1 shard2);

# pruning and aggregate pushdown
my $plan = $coord->safe_psql('postgres',
	q{EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(amount) FROM orders WHERE region = 2});
note $plan;
unlike($plan, qr/orders_r1/, 'a query on region 2 is pruned to its partition');
like($plan, qr/Remote SQL: SELECT amount FROM public\.orders_r2 WHERE \(\(region = 2\)\)/,
	'and its condition is sent to the shard');
$plan = $coord->safe_psql('postgres',
	q{EXPLAIN (VERBOSE, COSTS OFF) SELECT region, count(*) FROM orders GROUP BY region});
note $plan;
like($plan, qr/Remote SQL: SELECT region, count\(\*\) FROM public\.orders_r1 GROUP BY/,
	'a grouped aggregate is pushed down to shard 1');
like($plan, qr/Remote SQL: SELECT region, count\(\*\) FROM public\.orders_r2 GROUP BY/,
	'and to shard 2');
is($coord->safe_psql('postgres',
		q{SELECT region, count(*), sum(amount) FROM orders GROUP BY region ORDER BY region}),
	$node{shard1}->safe_psql('postgres', q{SELECT region, count(*), sum(amount) FROM orders_r1 GROUP BY region})
	  . "\n"
	  . $node{shard2}->safe_psql('postgres', q{SELECT region, count(*), sum(amount) FROM orders_r2 GROUP BY region}),
	'aggregates over both shards');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM orders WHERE note = 'n7'}),
	$coord->safe_psql('postgres', q{SELECT count(*) FROM orders WHERE note = 'n7' AND id > 0}),
	'lookups by note (kvlsm_idx on the shards)');
like($node{shard1}->safe_psql('postgres',
		q{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT * FROM orders_r1 WHERE note = 'n7'}),
	qr/orders_r1_note/, 'the shard answers it from its kvlsm_idx index');

# --- moving region 1 to the new server shard3, with a client inserting -------
my $before = $coord->safe_psql('postgres',
	q{SELECT count(*), sum(amount), sum(id) FROM orders WHERE region = 1});
$node{shard3}->safe_psql('postgres', sprintf($shard_table, ('orders_r1') x 5));
$coord->safe_psql('postgres', $server->('shard3') . q{
CREATE FOREIGN TABLE orders_r1_new (id bigint NOT NULL, region int NOT NULL, amount int NOT NULL, note text)
  SERVER shard3 OPTIONS (table_name 'orders_r1');
});

my $script = $coord->basedir . '/insert.sql';
open my $fh, '>', $script or die;
print $fh q{INSERT INTO orders VALUES (nextval('orders_id'), 1 + (random() * 1)::int, 1, 'live');
};
close $fh;
my ($out, $err) = ('', '');
my $client = IPC::Run::start(
	[
		'pgbench', '-n', '-T', '6', '-c', '2', '-f', $script, '-d',
		$coord->connstr('postgres')
	],
	'>', \$out, '2>', \$err);
sleep 1;

# The procedure (docs/cluster.md): in one coordinator transaction that
# locks the partitioned table against writes, copy the partition's rows to
# the new server, check the copy, and swap the partitions; then drop the
# old shard's table.  Writers wait for the lock and then go to the new
# partition.
$coord->safe_psql('postgres', q{
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO orders_r1_new SELECT * FROM orders_r1;
DO $$
BEGIN
  IF (SELECT (count(*), sum(id), sum(amount)) FROM orders_r1) IS DISTINCT FROM
     (SELECT (count(*), sum(id), sum(amount)) FROM orders_r1_new) THEN
    RAISE EXCEPTION 'the copy differs from the partition';
  END IF;
END $$;
ALTER TABLE orders DETACH PARTITION orders_r1;
ALTER TABLE orders ATTACH PARTITION orders_r1_new FOR VALUES IN (1);
ALTER FOREIGN TABLE orders_r1 RENAME TO orders_r1_old;
ALTER FOREIGN TABLE orders_r1_new RENAME TO orders_r1;
COMMIT;
});
$client->finish;
like($out, qr/number of transactions actually processed: [1-9]/, 'the client inserted during the move');
my $failed = () = $err =~ /ERROR/g;
is($failed, 0, 'no insert failed during the move') or note $err;

my $live = $coord->safe_psql('postgres', q{SELECT count(*) FROM orders WHERE note = 'live'});
my $live_old = $coord->safe_psql('postgres',
	q{SELECT count(*) FROM orders_r1_old WHERE note = 'live'});
my $live_new = $node{shard3}->safe_psql('postgres',
	q{SELECT count(*) FROM orders_r1 WHERE note = 'live'});
my $live_r2 = $node{shard2}->safe_psql('postgres',
	q{SELECT count(*) FROM orders_r2 WHERE note = 'live'});
cmp_ok($live_new + $live_r2, '==', $live, 'every inserted row is in the partitions in use');
cmp_ok($live_new, '>=', $live_old, 'rows inserted before the move were copied');
is($coord->safe_psql('postgres', q{SELECT count(*) - count(DISTINCT id) FROM orders}),
	'0', 'no row is duplicated');
is($coord->safe_psql('postgres',
		q{SELECT count(*), sum(amount), sum(id) FROM orders WHERE region = 1 AND note <> 'live'}),
	$before, 'region 1 holds the same rows as before the move');
like($coord->safe_psql('postgres',
		q{EXPLAIN (VERBOSE, COSTS OFF) SELECT region, count(*) FROM orders GROUP BY region}),
	qr/Remote SQL: SELECT region, count\(\*\) FROM public\.orders_r1 GROUP BY/,
	'aggregates of region 1 are pushed down to its new partition');
like($coord->safe_psql('postgres',
		q{SELECT srvname FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
		   WHERE ft.ftrelid = 'orders_r1'::regclass}),
	qr/^shard3$/, 'the partition is the foreign table on shard3');
$coord->safe_psql('postgres', 'DROP FOREIGN TABLE orders_r1_old');
$node{shard1}->safe_psql('postgres', 'DROP TABLE orders_r1');
is($coord->safe_psql('postgres', q{SELECT count(*) - count(DISTINCT id) FROM orders}), '0',
	'still no duplicate after the old copy is dropped');
is($node{shard3}->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('orders_r1')}), '0',
	'the new shard\'s kvlsm table verifies clean');

$node{$_}->stop for keys %node;
done_testing();
