
# Copyright (c) kvlsm authors
#
# Helpers shared by kvlsm's TAP tests.
package KvlsmTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(proc_gone crash_node start_psql_script load_in_flushes $big_val_sql);

# SQL that creates big_val(g, len): len characters out of 94 printable ones,
# hashed from g, which lz4 cannot shrink much.  With a STORAGE plain column
# such values make rows larger than a page (records that span pages).
our $big_val_sql = q{
CREATE FUNCTION big_val(g int, len int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(chr(33 + (hashint4(g * 10000 + i) & 2147483647) % 94), '' ORDER BY i)
     FROM generate_series(1, len) i $$;
};

# Fill table $rel (id int, v text) with $n batches of 10,000 rows (ids
# from 1, v two md5s of 32 characters), flushing after each: $n level-0
# tables in the table and in each of its kvlsm_idx indexes.
sub load_in_flushes
{
	my ($node, $rel, $n) = @_;
	for my $b (0 .. $n - 1)
	{
		my $lo = $b * 10000 + 1;
		my $hi = $lo + 9999;
		$node->safe_psql('postgres',
			"INSERT INTO $rel SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series($lo, $hi) g;"
			  . "SELECT kvlsm_flush(indexrelid::regclass) FROM pg_index WHERE indrelid = '$rel'::regclass;"
			  . "SELECT kvlsm_flush('$rel')");
	}
	return;
}

# Is the process gone?  A zombie counts as still there: a new postmaster
# refuses to start while the old postmaster's pid exists at all, so wait
# until it has been reaped.
sub proc_gone
{
	my ($pid) = @_;
	return !kill(0, $pid);
}

# A real crash: SIGKILL the postmaster and every one of its children (killing
# the postmaster alone is no crash: its children keep running), wait until
# none is left, then tell the framework the node is down.
sub crash_node
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	open my $fh, '<', $pidfile or die "cannot open $pidfile: $!";
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	die "bad postmaster pid '$pm'" unless $pm =~ /^\d+$/;

	# Freeze the postmaster so that it cannot fork while we collect its
	# children, then kill the lot.
	kill 'STOP', $pm;
	my @kids = grep { /^\d+$/ } split /\s+/, `pgrep -P $pm`;
	note "crash: killing postmaster $pm and children @kids";
	kill 'KILL', $pm, @kids;

	my $deadline = time() + 60;
	while (grep { !proc_gone($_) } ($pm, @kids))
	{
		die "server processes survived SIGKILL" if time() > $deadline;
		usleep(50_000);
	}
	$node->{_pid} = undef;
	return;
}

# Start a psql process running a script file, stdout/stderr into files.
sub start_psql_script
{
	my ($node, $script, $out, $err) = @_;
	return IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', '/dev/null', '>', $out, '2>', $err);
}

1;
