#!/usr/bin/env bash
# THE main job: build + install kvlsm, start a throwaway PostgreSQL 15 cluster
# with kvlsm preloaded, load data into a kvlsm table, run a pgbench workload
# and print kvlsm's stats. Set KVLSM_KEEP=1 to leave the cluster running.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
TEST_USER=kvlsm_test
DEMO_DIR=${KVLSM_DEMO_DIR:-/tmp/kvlsm-demo}
PGDATA_DIR="$DEMO_DIR/data"
PORT=54329
ROWS=100000
DURATION=10
CLIENTS=2
SERVER_LOG="$DEMO_DIR/postgres.log"
WORKLOAD="$DEMO_DIR/workload.sql"

bash "$SCRIPT_DIR/build-install.sh"

TEST_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
as_test() {
    (cd "$DEMO_DIR" 2>/dev/null || cd /
     runuser -u "$TEST_USER" -- env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE \
         -u PGUSER -u PGSERVICE -u PGDATA HOME="$TEST_HOME" "$@")
}
psql_demo() {
    as_test "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$DEMO_DIR" -p "$PORT" -d postgres "$@"
}

case "$DEMO_DIR" in
    /|"") echo "demo: refusing to use demo dir '$DEMO_DIR'" >&2; exit 1 ;;
esac

# Stop a cluster left running by a previous KVLSM_KEEP=1 run.
if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
    echo "demo: stopping leftover cluster in $PGDATA_DIR"
    as_test "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop || true
fi

echo "demo: creating throwaway cluster in $DEMO_DIR"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
chown "$TEST_USER": "$DEMO_DIR"
chmod 700 "$DEMO_DIR"

as_test "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -E UTF8 --no-instructions >/dev/null
cat >> "$PGDATA_DIR/postgresql.conf" <<CONF

# --- kvlsm demo ---
shared_preload_libraries = 'kvlsm'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DEMO_DIR'
shared_buffers = 256MB
CONF

started=0
cleanup() {
    rc=$?
    if [ "$started" -eq 1 ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        if [ "${KVLSM_KEEP:-0}" = "1" ]; then
            echo "demo: KVLSM_KEEP=1, leaving cluster running:"
            echo "demo:   runuser -u $TEST_USER -- $PGBIN/psql -h $DEMO_DIR -p $PORT -d postgres"
            echo "demo:   stop with: runuser -u $TEST_USER -- $PGBIN/pg_ctl -D $PGDATA_DIR -m fast stop"
        else
            echo "demo: stopping cluster"
            as_test "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null || true
        fi
    fi
    if [ "$rc" -ne 0 ]; then
        echo "demo: FAILED (exit code $rc); last lines of $SERVER_LOG:" >&2
        tail -n 50 "$SERVER_LOG" >&2 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT

echo "demo: starting cluster on port $PORT (socket dir $DEMO_DIR, log $SERVER_LOG)"
started=1
as_test "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$SERVER_LOG" -w -t 60 start

echo "demo: creating extension and table"
psql_demo -c "CREATE EXTENSION kvlsm;" \
          -c "CREATE TABLE kv (id bigint, val text) USING kvlsm WITH (memtable_size = '1MB');"

echo "demo: loading $ROWS rows"
t0=$(date +%s%N)
psql_demo -c "INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, $ROWS) g;"
t1=$(date +%s%N)
load_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
load_rate=$(awk -v n="$ROWS" -v s="$load_secs" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "inf" }')
echo "demo: loaded $ROWS rows in ${load_secs}s ($load_rate rows/s)"

echo "demo: creating btree index on kv(id)"
t0=$(date +%s%N)
psql_demo -c "CREATE INDEX ON kv(id);"
t1=$(date +%s%N)
echo "demo: index built in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')s"

cat > "$WORKLOAD" <<'SQL'
\set id random(1, 100000)
SELECT val FROM kv WHERE id = :id;
UPDATE kv SET val = md5(random()::text) WHERE id = :id;
SQL
chown "$TEST_USER": "$WORKLOAD"

echo "demo: running pgbench ($CLIENTS clients, ${DURATION}s, script $WORKLOAD)"
pgbench_out=$(as_test "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
                  -f "$WORKLOAD" -h "$DEMO_DIR" -p "$PORT" postgres 2>&1) || {
    echo "$pgbench_out"
    echo "demo: pgbench failed" >&2
    exit 1
}
echo "$pgbench_out"
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$pgbench_out" | head -n 1)
latency=$(sed -n 's/^latency average = \(.*\)$/\1/p' <<<"$pgbench_out" | head -n 1)

echo "demo: SELECT count(*) FROM kv"
final_count=$(psql_demo -At -c "SELECT count(*) FROM kv;")
echo "$final_count"

echo "demo: SELECT kvlsm_flush('kv')"
psql_demo -c "SELECT kvlsm_flush('kv');" || echo "demo: kvlsm_flush failed; continuing"
echo "demo: SELECT * FROM kvlsm_levels('kv')"
psql_demo -c "SELECT * FROM kvlsm_levels('kv');" || echo "demo: kvlsm_levels failed; continuing"
echo "demo: SELECT * FROM kvlsm_stats('kv')"
psql_demo -x -c "SELECT * FROM kvlsm_stats('kv');" || echo "demo: kvlsm_stats failed; continuing"
echo "demo: SELECT * FROM kvlsm_workers()  (background flush and compaction)"
psql_demo -c "SELECT * FROM kvlsm_workers();" || echo "demo: kvlsm_workers failed; continuing"
echo "demo: kvlsmctl compactions kv  (the admin CLI)"
as_test "$PGBIN/kvlsmctl" -h "$DEMO_DIR" -p "$PORT" -d postgres compactions kv \
    || echo "demo: kvlsmctl failed; continuing"
echo "demo: kvlsmctl verify kv"
as_test "$PGBIN/kvlsmctl" -h "$DEMO_DIR" -p "$PORT" -d postgres verify kv \
    || echo "demo: kvlsmctl verify reported problems"

echo
echo "===== kvlsm demo summary ====="
echo "load:        $ROWS rows in ${load_secs}s ($load_rate rows/s)"
echo "pgbench:     $CLIENTS clients, ${DURATION}s, tps = ${tps:-?}, latency average = ${latency:-?}"
echo "final rows:  $final_count"
echo "cluster:     $PGDATA_DIR (port $PORT, socket dir $DEMO_DIR)"
echo "server log:  $SERVER_LOG"
