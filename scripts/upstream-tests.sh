#!/usr/bin/env bash
# Run PostgreSQL 15's own regression and isolation suites with every table a
# kvlsm table, and compare with heap baselines run from the same files.
#
#   sudo bash scripts/upstream-tests.sh            (or: sudo make check-upstream)
#
# Configurations (each on a fresh throwaway cluster, one after the other):
#   heap           plain heap, nothing preloaded
#   heap_kvlsm     heap, kvlsm preloaded and CREATE EXTENSION'd in every test database
#   heap_nobitmap  as heap_kvlsm, plus PGOPTIONS='-c enable_bitmapscan=off'
#   kvlsm          as heap_kvlsm, plus PGOPTIONS='-c default_table_access_method=kvlsm'
#
# The test data (SQL, specs, expected files, schedules) come from Debian's
# postgresql-15 source package, downloaded at test time (`apt-get source`);
# nothing of it is committed. Only the installed pg_regress /
# pg_isolation_regress are used, with --use-existing. regress.so, autoinc.so and
# refint.so are compiled from the source package against the installed server
# headers so that the tests needing them run.
#
# Environment:
#   KVLSM_UPSTREAM_DIR   scratch directory (default /tmp/kvlsm-upstream)
#   KVLSM_PGSRC          an already extracted postgresql-15 source tree to use
#                        instead of downloading (e.g. /tmp/pgsrc/postgresql-15.18)
#   KVLSM_UPSTREAM_CONFIGS  configurations to run (default "heap heap_kvlsm heap_nobitmap kvlsm")
#   KVLSM_UPSTREAM_SUITES   suites to run (default "regress isolation")
#   KVLSM_UPSTREAM_PORT  port (default: first free port from 55432 up)
#   KVLSM_UPSTREAM_TIMEOUT  seconds allowed per suite run (default 3600)
#
# Output: $KVLSM_UPSTREAM_DIR/summary.md (pass counts, every test whose kvlsm
# output differs from the heap_nobitmap output, each diff hunk auto-classified
# A..F) and per-run directories <config>/<suite>/ with results and diffs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_USER=kvlsm_test
PGBIN=/usr/lib/postgresql/15/bin
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
PG_ISO_REGRESS=$PGXS_DIR/src/test/isolation/pg_isolation_regress
INCDIR=$($PGBIN/pg_config --includedir-server)
WORK=${KVLSM_UPSTREAM_DIR:-/tmp/kvlsm-upstream}
CONFIGS=${KVLSM_UPSTREAM_CONFIGS:-heap heap_kvlsm heap_nobitmap kvlsm}
SUITES=${KVLSM_UPSTREAM_SUITES:-regress isolation}
SUITE_TIMEOUT=${KVLSM_UPSTREAM_TIMEOUT:-3600}

if [ "$(id -u)" -ne 0 ]; then
    echo "upstream-tests: run as root (apt-get source, runuser)" >&2
    exit 1
fi
id "$TEST_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEST_USER"
[ -f "$($PGBIN/pg_config --pkglibdir)/kvlsm.so" ] || {
    echo "upstream-tests: kvlsm is not installed (run scripts/build-install.sh)" >&2; exit 1; }

mkdir -p "$WORK"
chown "$TEST_USER": "$WORK"
as_user() { runuser -u "$TEST_USER" -- env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE \
                -u PGUSER -u PGSERVICE -u PGDATA -u PGOPTIONS "$@"; }

# ---------------------------------------------------------------- source ----
SRC=${KVLSM_PGSRC:-}
if [ -z "$SRC" ]; then
    SRC=$(find "$WORK/pgsrc" -maxdepth 1 -type d -name 'postgresql-15*' 2>/dev/null | sort | tail -n1 || true)
fi
if [ -z "$SRC" ] || [ ! -f "$SRC/src/test/regress/parallel_schedule" ]; then
    echo "upstream-tests: downloading Debian's postgresql-15 source package into $WORK/pgsrc"
    rm -rf "$WORK/pgsrc"; mkdir -p "$WORK/pgsrc"
    (cd "$WORK/pgsrc" && apt-get source --download-only postgresql-15 >/dev/null)
    orig=$(ls "$WORK"/pgsrc/postgresql-15_*.orig.tar.* | head -n1)
    top=$(tar -tf "$orig" | head -n1 | cut -d/ -f1)
    tar -xf "$orig" -C "$WORK/pgsrc" "$top/src/test/regress" "$top/src/test/isolation" "$top/contrib/spi"
    SRC="$WORK/pgsrc/$top"
fi
echo "upstream-tests: using test data from $SRC"

# Private copy of the test data, owned by the test user.
T=$WORK/tests
rm -rf "$T"; mkdir -p "$T/lib"
cp -r "$SRC/src/test/regress" "$T/regress"
cp -r "$SRC/src/test/isolation" "$T/isolation"
for f in "$SRC/src/test/regress/regress.c" "$SRC/contrib/spi/autoinc.c" "$SRC/contrib/spi/refint.c"; do
    b=$(basename "$f" .c)
    if ! gcc -O2 -fPIC -shared -I"$INCDIR" -o "$T/lib/$b.so" "$f" 2>"$T/lib/$b.log"; then
        echo "upstream-tests: could not build $b.so (tests needing it fail on every configuration)"
    fi
done
chown -R "$TEST_USER": "$T"

# ---------------------------------------------------------------- helpers ---
port_free() { ! ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$1\$" && [ ! -e "/tmp/.s.PGSQL.$1" ]; }
PORT=${KVLSM_UPSTREAM_PORT:-}
if [ -z "$PORT" ]; then
    PORT=55432
    while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
fi
SOCK=$WORK/sock
mkdir -p "$SOCK"; chown "$TEST_USER": "$SOCK"

DATA=""
stop_server() {
    if [ -n "$DATA" ] && [ -f "$DATA/postmaster.pid" ]; then
        as_user "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}
trap stop_server EXIT

psql_t() { as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" "$@"; }

start_server() {  # $1 = config dir, $2 = preload (yes/no)
    local dir=$1 preload=$2
    DATA=$dir/data
    as_user "$PGBIN/initdb" -D "$DATA" -U "$TEST_USER" --locale=C -E UTF8 -A trust >"$dir/initdb.log" 2>&1
    cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
fsync = off
max_prepared_transactions = 10
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
EOF
    if [ "$preload" = yes ]; then
        echo "shared_preload_libraries = 'kvlsm'" >>"$DATA/postgresql.conf"
    fi
    # cores land in the data directory when core_pattern is a plain name
    as_user bash -c "ulimit -c unlimited; cd '$DATA' && '$PGBIN/pg_ctl' -D '$DATA' -l '$dir/server.log' -w -t 120 start" >/dev/null
}

run_suite() {  # $1 = config, $2 = suite, $3 = PGOPTIONS, $4 = load extension (yes/no)
    local cfg=$1 suite=$2 opts=$3 ext=$4 out=$WORK/$1/$2 rc=0
    local db=regression
    [ "$suite" = isolation ] && db=isolation_regression
    rm -rf "$out"; mkdir -p "$out"; chown "$TEST_USER": "$out"
    # --use-existing makes pg_regress skip creating the database: do what its
    # create_database() does, but from template1, which holds the extension.
    psql_t -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db TEMPLATE=template1" \
        -c "ALTER DATABASE $db SET lc_messages TO 'C'" -c "ALTER DATABASE $db SET lc_monetary TO 'C'" \
        -c "ALTER DATABASE $db SET lc_numeric TO 'C'" -c "ALTER DATABASE $db SET lc_time TO 'C'" \
        -c "ALTER DATABASE $db SET bytea_output TO 'hex'" \
        -c "ALTER DATABASE $db SET timezone_abbreviations TO 'Default'"
    if [ "$ext" = yes ]; then
        psql_t -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS kvlsm'
    fi
    echo "upstream-tests: [$cfg] $suite (PGOPTIONS='$opts') ..."
    local start=$SECONDS
    if [ "$suite" = regress ]; then
        (cd "$out" && as_user env PGOPTIONS="$opts" timeout "$SUITE_TIMEOUT" "$PG_REGRESS" \
            --use-existing --host="$SOCK" --port="$PORT" --user="$TEST_USER" \
            --inputdir="$T/regress" --outputdir="$out" --dlpath="$T/lib" \
            --schedule="$T/regress/parallel_schedule" --dbname=$db \
            --max-connections=20 >"$out/run.log" 2>&1) || rc=$?
    else
        (cd "$out" && as_user env PGOPTIONS="$opts" timeout "$SUITE_TIMEOUT" "$PG_ISO_REGRESS" \
            --use-existing --host="$SOCK" --port="$PORT" --user="$TEST_USER" \
            --inputdir="$T/isolation" --outputdir="$out" \
            --schedule="$T/isolation/isolation_schedule" --dbname=$db \
            >"$out/run.log" 2>&1) || rc=$?
    fi
    echo "$rc" >"$out/rc"
    echo "upstream-tests: [$cfg] $suite done in $((SECONDS - start))s (exit $rc): $(grep -E '^( All| [0-9]+ of)' "$out/run.log" | head -n1)"
}

# ---------------------------------------------------------------- runs ------
for cfg in $CONFIGS; do
    dir=$WORK/$cfg
    rm -rf "$dir"; mkdir -p "$dir"; chown "$TEST_USER": "$dir"
    case $cfg in
        heap)          preload=no;  ext=no;  opts="" ;;
        heap_kvlsm)    preload=yes; ext=yes; opts="" ;;
        heap_nobitmap) preload=yes; ext=yes; opts="-c enable_bitmapscan=off" ;;
        kvlsm)         preload=yes; ext=yes; opts="-c default_table_access_method=kvlsm" ;;
        *) echo "unknown configuration $cfg" >&2; exit 1 ;;
    esac
    start_server "$dir" "$preload"
    if [ "$ext" = yes ]; then
        # databases the tests create themselves come from template1
        psql_t -d template1 -c 'CREATE EXTENSION kvlsm'
        psql_t -d postgres -c 'CREATE EXTENSION kvlsm'
    fi
    for suite in $SUITES; do
        # a crashed server restarts itself; wait until it accepts connections
        as_user "$PGBIN/pg_isready" -h "$SOCK" -p "$PORT" -t 60 >/dev/null || true
        run_suite "$cfg" "$suite" "$opts" "$ext"
    done
    stop_server
    DATA=""
    grep -E 'terminated by signal|PANIC|TRAP:' "$dir/server.log" >"$dir/crashes.log" || true
    find "$dir/data" -maxdepth 2 -name 'core*' -type f >"$dir/cores.list" 2>/dev/null || true
    if [ -s "$dir/crashes.log" ]; then
        echo "upstream-tests: [$cfg] server log reports crashes:"; sed 's/^/    /' "$dir/crashes.log" | head -n 20
    fi
    if [ -s "$dir/cores.list" ] && command -v gdb >/dev/null; then
        while read -r core; do
            gdb -batch -ex 'bt' "$PGBIN/postgres" "$core" >"$core.bt.txt" 2>&1 || true
            echo "upstream-tests: backtrace of $core in $core.bt.txt"
        done <"$dir/cores.list"
    fi
done

# ---------------------------------------------------------------- summary ---
classify "$WORK" "$CONFIGS" "$SUITES" >"$WORK/summary.md"
echo "upstream-tests: summary in $WORK/summary.md"
sed -n '1,/^## Differences/p' "$WORK/summary.md"
