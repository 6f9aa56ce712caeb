
# Copyright (c) kvlsm authors
#
# kvlsmctl's security and robustness: a role that can create objects in a
# schema of the default search_path (and in the extension's own schema)
# cannot make a superuser's kvlsmctl run them (CVE-2018-1058), repeated
# connection options do not overflow anything and the last one wins, --json
# output is valid JSON whatever the relation is called, exit codes do not
# depend on --json, password prompting (-w, -W, PGPASSWORD), --version and
# the validation of numeric options.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('ctlsec');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$node->start;

# a relation whose name needs every kind of JSON escape: a double quote, a
# backslash and a control character (a tab)
my $weird = "we\"ird\\\tx";
(my $weird_ident = $weird) =~ s/"/""/g;
$weird_ident = "\"$weird_ident\"";

$node->safe_psql('postgres', qq{
	CREATE EXTENSION kvlsm;
	CREATE TABLE t (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '1MB');
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g;
	SELECT kvlsm_flush('t');
	SELECT kvlsm_compact('t');
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(5001, 6000) g;
	SELECT kvlsm_flush('t');
	UPDATE t SET v = 'changed' WHERE id = 3;
	CREATE TABLE $weird_ident (id int, v text) USING kvlsm;
	INSERT INTO $weird_ident SELECT g, 'w' || g FROM generate_series(1, 1000) g;
});

# Run kvlsmctl; returns (exit code, stdout, stderr).  Options: conn => 0 to
# leave out the node's connection options, stdin => text to feed,
# setsid => 1 to run it without a controlling terminal, env => {NAME =>
# value or undef}.
sub run_ctl
{
	my ($opts, @args) = @_;
	my @cmd = ('kvlsmctl');
	push @cmd, ('-h', $node->host, '-p', $node->port, '-d', 'postgres')
	  unless defined $opts->{conn} && !$opts->{conn};
	push @cmd, @args;
	unshift @cmd, ('setsid', '--wait') if $opts->{setsid};
	my ($in, $out, $err) = ($opts->{stdin} // '', '', '');
	local %ENV = %ENV;
	while (my ($k, $v) = each %{ $opts->{env} // {} })
	{
		if (defined $v) { $ENV{$k} = $v; }
		else { delete $ENV{$k}; }
	}
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		1;
	};
	return (-1, $out, "timed out or failed to run: $@") unless $ok;
	return ($? >> 8, $out, $err);
}

# kvlsmctl as the bootstrap superuser, against the node
sub ctl
{
	return run_ctl({}, @_);
}

# JSON::PP->decode, or undef if the text is not valid JSON
sub try_json
{
	my ($text) = @_;
	my $v = eval { JSON::PP->new->decode($text) };
	return $v;
}

my ($rc, $out, $err);

###########################################################################
# search_path hijack (CVE-2018-1058 class)
###########################################################################

# mallory owns the schema first in the database's default search_path, and
# may create objects in the extension's schema (public) too
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE SCHEMA evil AUTHORIZATION mallory;
	GRANT CREATE ON SCHEMA public TO mallory;
	ALTER DATABASE postgres SET search_path = evil, public;
});

# Each planted object records that it ran and, when it runs as a superuser,
# makes mallory one (all of them are SECURITY INVOKER: they run with the
# caller's rights).  For every kvlsm function: evil.f with the same
# argument types (earlier in the search_path than public.f), and evil.f and
# public.f taking text where the real one takes regclass (a better match for
# an untyped parameter).  Then the views, json_agg with a better-matching
# argument type, and an operator = for regclass (none exists in pg_catalog,
# so an unqualified = between two regclass values would pick it).
$node->safe_psql('postgres', q{
SET ROLE mallory;
CREATE TABLE evil.sprung (what text, by_role name);
GRANT INSERT ON evil.sprung TO PUBLIC;
CREATE FUNCTION evil.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO evil.sprung VALUES (what, current_user);
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r
		 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		ALTER ROLE mallory SUPERUSER;
	END IF;
	RETURN true;
END
$$;
DO $do$
DECLARE
	f record;
	v record;
	args text;
	call text;
	i int;
BEGIN
	FOR f IN
		SELECT p.proname, p.pronargs,
			   p.pronargs > 0 AND p.proargtypes[0] = 'pg_catalog.regclass'::pg_catalog.regtype AS by_rel,
			   pg_catalog.pg_get_function_arguments(p.oid) AS args,
			   pg_catalog.pg_get_function_result(p.oid) = 'void' AS is_void
		  FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace = 'public'::pg_catalog.regnamespace
		   AND p.proname IN ('kvlsm_stats', 'kvlsm_levels', 'kvlsm_sstables', 'kvlsm_space',
							 'kvlsm_flush', 'kvlsm_compact', 'kvlsm_compact_range',
							 'kvlsm_verify', 'kvlsm_sstable_header', 'kvlsm_sstable_dump',
							 'kvlsm_key_history', 'kvlsm_workers')
	LOOP
		FOR v IN
			SELECT * FROM (VALUES ('evil', false), ('evil', true), ('public', true)) x(nsp, text_arg)
			 WHERE NOT x.text_arg OR f.by_rel
		LOOP
			args := f.args;
			call := '';
			IF f.pronargs > 0 THEN
				call := '$1';
				IF v.text_arg THEN
					args := pg_catalog.regexp_replace(args, '^rel regclass', 'rel text');
					call := '$1::pg_catalog.regclass';
				END IF;
			END IF;
			FOR i IN 2 .. f.pronargs LOOP
				call := call || ', $' || i;
			END LOOP;
			EXECUTE pg_catalog.format(
				'CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql AS %L',
				v.nsp, f.proname, args,
				CASE WHEN f.is_void THEN 'void' ELSE 'SETOF record' END,
				pg_catalog.format('SELECT evil.trap(%L); %s',
								  v.nsp || '.' || f.proname || CASE WHEN v.text_arg THEN '(text)' ELSE '' END,
								  CASE WHEN f.is_void
									   THEN pg_catalog.format('SELECT public.%I(%s)', f.proname, call)
									   ELSE pg_catalog.format('SELECT * FROM public.%I(%s)', f.proname, call)
								  END));
		END LOOP;
	END LOOP;
END
$do$;
CREATE FUNCTION evil.stat_all_rows() RETURNS SETOF public.kvlsm_stat_all LANGUAGE sql AS $$
	SELECT evil.trap('evil.kvlsm_stat_all'); SELECT * FROM public.kvlsm_stat_all
$$;
CREATE VIEW evil.kvlsm_stat_all AS SELECT * FROM evil.stat_all_rows();
CREATE FUNCTION evil.compaction_rows() RETURNS SETOF public.kvlsm_compactions LANGUAGE sql AS $$
	SELECT evil.trap('evil.kvlsm_compactions'); SELECT * FROM public.kvlsm_compactions
$$;
CREATE VIEW evil.kvlsm_compactions AS SELECT * FROM evil.compaction_rows();
CREATE FUNCTION evil.jagg_step(s json, r anyelement) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	PERFORM evil.trap('evil.json_agg');
	RETURN '[]';
END
$$;
CREATE AGGREGATE evil.json_agg(record) (SFUNC = evil.jagg_step, STYPE = json);
CREATE AGGREGATE evil.json_agg(anyelement) (SFUNC = evil.jagg_step, STYPE = json);
CREATE FUNCTION evil.count() RETURNS bigint LANGUAGE sql AS $$
	SELECT evil.trap('evil.count'); SELECT 0::bigint
$$;
CREATE FUNCTION evil.regclass_eq(a regclass, b regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM evil.trap('evil.=');
	RETURN a::oid OPERATOR(pg_catalog.=) b::oid;
END
$$;
CREATE OPERATOR evil.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = evil.regclass_eq);
});

cmp_ok($node->safe_psql('postgres', q{
	SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc
	 WHERE proowner OPERATOR(pg_catalog.=) 'mallory'::pg_catalog.regrole
	   AND proname OPERATOR(pg_catalog.~) '^kvlsm_'}),
	'>=', 30, 'mallory planted text and same-signature overloads of the kvlsm functions');

# the traps are armed: an unqualified call with an untyped argument (what
# kvlsmctl used to send) runs mallory's function with the caller's rights
is( $node->safe_psql('postgres', q{
	BEGIN;
	SELECT pg_catalog.count(*) FROM kvlsm_levels('t');
	SELECT pg_catalog.string_agg(what, ',') FROM evil.sprung;
	SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'mallory';
	ROLLBACK;
}) =~ s/^\d+\n//r, "evil.kvlsm_levels(text)\nt",
	'control: an unqualified call would run the planted function as superuser (rolled back)');

# the superuser (the default search_path of the database is evil, public)
# runs kvlsmctl: every command works and shows the real data
($rc, $out, $err) = ctl('stats');
is($rc, 0, 'hijack: stats exits 0') or diag($err);
like($out, qr/^ public\.t\s+\| kvlsm\s+\|/m, 'hijack: stats lists the real table');
($rc, $out, $err) = ctl('stats', 't');
is($rc, 0, 'hijack: stats REL exits 0') or diag($err);
like($out, qr/^ t\s+\|\s+\d+ \|/m, 'hijack: stats REL shows the real counters');
($rc, $out, $err) = ctl('levels', 't');
is($rc, 0, 'hijack: levels exits 0') or diag($err);
like($out, qr/^ L0\s+\|\s+0 \|/m, 'hijack: levels shows the real levels');
($rc, $out, $err) = ctl('sstables', 't');
is($rc, 0, 'hijack: sstables exits 0') or diag($err);
like($out, qr/\| live\s*$/m, 'hijack: sstables lists the real SSTables');
($rc, $out, $err) = ctl('space', 't');
is($rc, 0, 'hijack: space exits 0') or diag($err);
like($out, qr/unreferenced_pages/, 'hijack: space shows the real page counts');
($rc, $out, $err) = ctl('compactions');
is($rc, 0, 'hijack: compactions exits 0') or diag($err);
like($out, qr/^ public\.t\s+\| \d{4}-/m, 'hijack: compactions lists the real compaction');
($rc, $out, $err) = ctl('compactions', 't');
is($rc, 0, 'hijack: compactions REL exits 0') or diag($err);
like($out, qr/^ public\.t\s+\| \d{4}-/m, 'hijack: compactions REL lists the real compaction');
($rc, $out, $err) = ctl('verify', 't');
is($rc, 0, 'hijack: verify exits 0') or diag($err);
is($out, "t: no problem found\n", 'hijack: verify checked the real table');
my $sst = $node->safe_psql('postgres', q{SELECT pg_catalog.min(id) FROM public.kvlsm_sstables('public.t'::pg_catalog.regclass)});
($rc, $out, $err) = ctl('dump', 't', $sst);
is($rc, 0, 'hijack: dump exits 0') or diag($err);
like($out, qr/\| insert\s+\|/, 'hijack: dump shows the real entries');
($rc, $out, $err) = ctl('key-history', 't', '(0,3)');
is($rc, 0, 'hijack: key-history exits 0') or diag($err);
like($out, qr/\| delete\s+\|/, 'hijack: key-history shows the real versions');
($rc, $out, $err) = ctl('workers');
is($rc, 0, 'hijack: workers exits 0') or diag($err);
like($out, qr/^ pid\s+\| datid/m, 'hijack: workers shows the real workers');
($rc, $out, $err) = ctl('flush', 't');
is_deeply([ $rc, $out ], [ 0, "t: flush done\n" ], 'hijack: flush');
($rc, $out, $err) = ctl('compact', 't', '1', '');
is_deeply([ $rc, $out ], [ 0, "t: compaction of the range done\n" ], 'hijack: compact with a range');
($rc, $out, $err) = ctl('compact', 't');
is_deeply([ $rc, $out ], [ 0, "t: compaction done\n" ], 'hijack: compact');
($rc, $out, $err) = ctl('top', 't', '-n', '2', '-i', '0.1');
is($rc, 0, 'hijack: top exits 0') or diag($err);
like($out, qr/\Arelation.*\nt\s+\d+\s+\d+\.\d\d/, 'hijack: top prints the header and a sample');

my $j;
($rc, $out, $err) = ctl('--json', 'stats');
is($rc, 0, 'hijack: stats --json exits 0') or diag($err);
$j = try_json($out);
ok($j && grep({ $_->{relation} eq 'public.t' && $_->{access_method} eq 'kvlsm' } @$j),
	'hijack: stats --json is the real JSON array (not the planted json_agg)');
($rc, $out, $err) = ctl('--json', 'stats', 't');
$j = try_json($out);
ok($rc == 0 && $j && $j->[0]{relation} eq 't' && $j->[0]{flushes} >= 2,
	'hijack: stats REL --json shows the real counters') or diag($out, $err);
($rc, $out, $err) = ctl('--json', 'levels', 't');
$j = try_json($out);
ok($rc == 0 && $j && grep({ $_->{name} eq 'L1' && $_->{entries} > 0 } @$j),
	'hijack: levels --json shows the real levels')
  or diag($out, $err);
($rc, $out, $err) = ctl('--json', 'compactions', 't');
$j = try_json($out);
ok($rc == 0 && $j && @$j >= 1 && $j->[0]{relation} eq 'public.t',
	'hijack: compactions REL --json shows the real compactions') or diag($out, $err);
($rc, $out, $err) = ctl('--json', 'verify', 't');
is_deeply([ $rc, $out ], [ 0, "[]\n" ], 'hijack: verify --json');
($rc, $out, $err) = ctl('--json', 'top', 't', '-n', '2', '-i', '0.1');
$j = try_json($out);
ok($rc == 0 && $j && $j->{relation} eq 't' && defined $j->{sstables},
	'hijack: top --json prints a real sample') or diag($out, $err);

is($node->safe_psql('postgres', q{SELECT pg_catalog.count(*) FROM evil.sprung}),
	'0', 'hijack: none of the planted functions, views, aggregates or operators ran');
is($node->safe_psql('postgres',
		q{SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'mallory'}),
	'f', 'hijack: mallory is still not a superuser');

###########################################################################
# repeated connection options
###########################################################################

my @bogus = map { ('-h', '/nonexistent/socket/dir', '-p', '1', '-U', 'nosuchuser', '-d', 'nosuchdb',
		'--host=/nonexistent', '--port=2', '--username=nobody', '--dbname=nodb') } 1 .. 10;
my $su = $node->safe_psql('postgres', 'SELECT current_user');
($rc, $out, $err) = run_ctl({ conn => 0 }, @bogus,
	'-h', $node->host, '-p', $node->port, '-U', $su, '-d', 'postgres', 'levels', 't');
is($rc, 0, 'options repeated 21 times each: no crash, exit 0') or diag($err);
like($out, qr/^ L0\s+\|/m, 'and the last -h/-p/-U/-d were used');
($rc, $out, $err) = run_ctl({ conn => 0 },
	'-h', $node->host, '-p', $node->port, '-U', $su, '-d', 'postgres', @bogus, 'levels', 't');
is($rc, 1, 'the good options first and the bogus ones last: the last win, so it cannot connect');

###########################################################################
# JSON output is valid whatever the relation is called
###########################################################################

($rc, $out, $err) = ctl('--json', 'flush', $weird_ident);
$j = try_json($out);
ok($rc == 0 && $j, 'flush --json of a relation named with a quote, a backslash and a tab is valid JSON')
  or diag($out, $err);
is_deeply($j, { relation => $weird_ident, done => 'flush' }, 'and holds the exact name');
($rc, $out, $err) = ctl('--json', 'compact', $weird_ident);
$j = try_json($out);
ok($rc == 0 && $j, 'compact --json of that relation is valid JSON') or diag($out, $err);
is_deeply($j, { relation => $weird_ident, done => 'compaction' }, 'and holds the exact name');
($rc, $out, $err) = ctl('--json', 'top', $weird_ident, '-n', '3', '-i', '0.1');
my @samples = split /\n/, $out;
is(scalar(@samples), 2, 'top --json -n 3 of that relation prints two samples') or diag($err);
my @decoded = grep { defined } map { try_json($_) } @samples;
is(scalar(@decoded), 2, 'each sample is valid JSON');
ok(!grep({ $_->{relation} ne $weird_ident } @decoded), 'and holds the exact name');
($rc, $out, $err) = ctl('--json', 'stats', $weird_ident);
$j = try_json($out);
ok($rc == 0 && $j && $j->[0]{relation} eq $weird_ident, 'stats REL --json names it exactly')
  or diag($out, $err);
($rc, $out, $err) = ctl('--json', 'stats');
$j = try_json($out);
ok($rc == 0 && $j && grep({ $_->{relation} eq "public.$weird_ident" } @$j),
	'stats --json lists it under its exact (qualified) name') or diag($out, $err);

###########################################################################
# exit codes do not depend on --json
###########################################################################

for my $mode ([], ['--json'])
{
	my $m = @$mode ? 'with --json' : 'as text';
	($rc) = ctl(@$mode, 'verify', 't');
	is($rc, 0, "verify of a healthy table exits 0 $m");
	($rc, $out, $err) = ctl(@$mode, 'bogus');
	is($rc, 2, "unknown command exits 2 $m");
	like($err, qr/unknown command "bogus"/, "and says so $m");
	($rc, $out, $err) = run_ctl({ conn => 0 }, '-h', '/nonexistent/socket/dir', @$mode, 'bogus');
	is($rc, 2, "unknown command exits 2 $m even when the server cannot be reached");
	($rc, $out, $err) = ctl(@$mode, 'levels');
	is($rc, 2, "missing argument exits 2 $m");
	($rc, $out, $err) = ctl(@$mode, 'levels', 't', 'extra');
	is($rc, 2, "an extra argument exits 2 $m");
	($rc, $out, $err) = ctl(@$mode, 'levels', 'nosuch');
	is($rc, 1, "missing relation exits 1 $m");
	like($err, qr/relation "nosuch" does not exist/, "with the server's message $m");
	($rc, $out, $err) = ctl(@$mode, 'verify', 'nosuch');
	is($rc, 1, "verify of a missing relation exits 1 $m");
	($rc, $out, $err) = run_ctl({ conn => 0 }, '-h', '/nonexistent/socket/dir', '-w', @$mode, 'stats');
	is($rc, 1, "connection failure exits 1 $m");
}

###########################################################################
# passwords: -w, -W, the prompt when the server asks, PGPASSWORD
###########################################################################

$node->safe_psql('postgres', q{
	SET password_encryption = 'scram-sha-256';
	CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 'se cret';
});
{
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $old = slurp_file($hba);
	open my $fh, '>', $hba or die "could not write $hba: $!";
	print $fh "local all pwuser scram-sha-256\n", $old;
	close $fh;
	$node->reload;
}

my $have_setsid = (system('setsid --wait true >/dev/null 2>&1') == 0);
my %nopw = (PGPASSWORD => undef, PGPASSFILE => '/nonexistent');

# wait until the reloaded pg_hba.conf is in force
my $tries = 0;
while ($tries++ < 100)
{
	($rc) = run_ctl({ env => \%nopw }, '-U', 'pwuser', '-w', 'levels', 't');
	last if $rc == 1;
	usleep(100_000);
}

($rc, $out, $err) = run_ctl({ env => \%nopw, setsid => $have_setsid }, '-U', 'pwuser', '-w', 'levels', 't');
is($rc, 1, '-w when the server wants a password: exit 1');
like($err, qr/no password supplied/, 'with libpq\'s message');
unlike($err, qr/Password/, 'and no prompt');

($rc, $out, $err) = run_ctl({ env => { %nopw, PGPASSWORD => 'se cret' } }, '-U', 'pwuser', '-w', 'levels', 't');
is($rc, 0, 'PGPASSWORD works') or diag($err);
like($out, qr/^ L0\s+\|/m, 'and the command ran');

SKIP:
{
	skip 'setsid (util-linux) with --wait is not available', 8 unless $have_setsid;

	($rc, $out, $err) = run_ctl({ env => \%nopw, setsid => 1, stdin => "se cret\n" },
		'-U', 'pwuser', '-W', 'levels', 't');
	is($rc, 0, '-W without a terminal reads the password from stdin') or diag($err);
	like($err, qr/^Password for user pwuser: /, 'after prompting on stderr');
	like($out, qr/^ L0\s+\|/m, 'and the command ran');

	($rc, $out, $err) = run_ctl({ env => \%nopw, setsid => 1, stdin => "se cret\n" },
		'-U', 'pwuser', 'levels', 't');
	is($rc, 0, 'without -w or -W, the password is asked for when the server wants one') or diag($err);
	like($err, qr/^Password for user pwuser: /, 'with a prompt');

	($rc, $out, $err) = run_ctl({ env => \%nopw, setsid => 1, stdin => "wrong\n" },
		'-U', 'pwuser', '-W', 'levels', 't');
	is($rc, 1, '-W with a wrong password: exit 1');
	like($err, qr/password authentication failed/, 'with the server\'s message');

	($rc, $out, $err) = run_ctl({ env => \%nopw, setsid => 1, stdin => '' },
		'-U', 'pwuser', 'levels', 't');
	is($rc, 1, 'end of input at the prompt: exit 1, no hang');
}

###########################################################################
# --help, --version, numeric options
###########################################################################

($rc, $out) = run_ctl({ conn => 0 }, '--version');
is_deeply([ $rc, $out ], [ 0, "kvlsmctl (kvlsm) 0.2\n" ], '--version prints the version');
($rc, $out) = run_ctl({ conn => 0 }, '-V');
is($out, "kvlsmctl (kvlsm) 0.2\n", '-V too');
($rc, $out) = run_ctl({ conn => 0 }, '--help');
like($out, qr/-W, --password.*-w, --no-password|-w, --no-password.*-W, --password/s,
	'--help documents -w and -W');
like($out, qr/-V, --version/, '--help documents --version');
like($out, qr/Exit status.*3 verify found problems/s, '--help documents the exit status');

for my $bad ('abc', '3x', '', '0', '-2', '99999999999')
{
	($rc, $out, $err) = ctl('top', 't', '-n', $bad, '-i', '0.1');
	is($rc, 2, "top -n '$bad' is a usage error (exit 2)");
}
like($err, qr/invalid number of iterations/, 'with a message');
for my $bad ('abc', '0', '-1', 'nan', 'inf', '1s')
{
	($rc, $out, $err) = ctl('top', 't', '-n', '2', '-i', $bad);
	is($rc, 2, "top -i '$bad' is a usage error (exit 2)");
}

# the commands above ran under mallory's search_path as well
is($node->safe_psql('postgres', q{SELECT pg_catalog.count(*) FROM evil.sprung}),
	'0', 'at the end, still none of the planted objects ran');

$node->stop;
done_testing();
