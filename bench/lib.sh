# Shared by the bench/ drivers (sourced, not run): a throwaway server in $DIR
# on $PORT, run as $USER_, with kvlsm preloaded.  The caller sets TOP, DIR,
# PORT and SHARED_BUFFERS, and may add settings with extra_conf.
#
# Or a given server: KVLSM_BENCH_HOST (a host name or socket directory) and
# KVLSM_BENCH_PORT (default 5432) point the drivers at a running cluster
# that has kvlsm in shared_preload_libraries and installed; the clients then
# run as the invoking user with the usual libpq environment (PGUSER,
# PGPASSWORD, ...).  The drivers create their databases there (refusing if
# they exist) and drop them at the end; the server's own settings apply.
BIN=/usr/lib/postgresql/15/bin
USER_=kvlsm_test
GIVEN_HOST=${KVLSM_BENCH_HOST:-}
if [ -n "$GIVEN_HOST" ]; then
    PORT=${KVLSM_BENCH_PORT:-5432}
    CONN_HOST=$GIVEN_HOST
else
    CONN_HOST=$DIR
fi
BENCH_DBS=""

as_user() { runuser -u "$USER_" -- "$@"; }
client() { if [ -n "$GIVEN_HOST" ]; then "$@"; else as_user "$@"; fi; }
psql_() { client "$BIN/psql" -h "$CONN_HOST" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }
pgbench_() { client "$BIN/pgbench" -h "$CONN_HOST" -p "$PORT" "$@"; }
stop() {
    if [ -n "$GIVEN_HOST" ]; then
        local db
        [ "${KVLSM_BENCH_KEEP:-0}" = 1 ] && return 0
        for db in $BENCH_DBS; do psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
        return 0
    fi
    [ -f "$DIR/data/postmaster.pid" ] && as_user "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
}
server_version() { psql_ -d postgres -At -c "SHOW server_version" | awk '{print $1}'; }
server_setting() { psql_ -d postgres -At -c "SHOW $1"; }
SERVER_NOTE="a throwaway server started by the script"

# the databases a driver creates: refused if they exist on a given server,
# dropped at the end there (KVLSM_BENCH_KEEP=1 keeps them)
bench_databases() {
    local db
    for db in "$@"; do
        if [ -n "$GIVEN_HOST" ] &&
           [ -n "$(psql_ -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
            echo "bench: database $db exists on the given server; drop it or use another server" >&2
            exit 1
        fi
        BENCH_DBS="$BENCH_DBS $db"
    done
}

# build and install kvlsm, then start a fresh server; stopped when the script
# exits.  With a given server: check it, and note what the caller wanted set.
start_server() {
    local extra_conf=${1:-}
    trap stop EXIT
    if [ -n "$GIVEN_HOST" ]; then
        mkdir -p "$DIR"
        psql_ -d postgres -At -c "SHOW shared_preload_libraries" | grep -qw kvlsm || {
            echo "bench: the server at $GIVEN_HOST:$PORT does not preload kvlsm" \
                 "(shared_preload_libraries = 'kvlsm')" >&2; exit 1; }
        SHARED_BUFFERS=$(server_setting shared_buffers)
        SERVER_NOTE="the given server $GIVEN_HOST:$PORT with its own settings (the script would have set: $(echo "$extra_conf" | tr '\n' ';' | sed 's/;$//'))"
        return 0
    fi
    bash "$TOP/scripts/build-install.sh" >/dev/null
    stop
    rm -rf "$DIR"; mkdir -p "$DIR"; chown "$USER_" "$DIR"
    as_user "$BIN/initdb" -D "$DIR/data" -A trust >/dev/null
    cat >> "$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'kvlsm'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_buffers = $SHARED_BUFFERS
kvlsm.memtable_memory = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
$extra_conf
CONF
    as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
}

# Optional memory limit for the server, where the machine has a cgroup v1
# memory controller (this one does; systemd does not run here):
# KVLSM_BENCH_MEMORY_LIMIT=1536M limits the postmaster and all its
# processes, page cache included, so the OS page cache cannot hide misses
# beyond shared_buffers.  Sets MEMORY_NOTE for the results file.
MEMORY_NOTE="no memory limit: the OS page cache may hide misses"
limit_memory() {
    local limit=${KVLSM_BENCH_MEMORY_LIMIT:-} cg=/sys/fs/cgroup/memory/kvlsm_bench_$PORT pm p
    [ -n "$limit" ] || return 0
    if [ -n "$GIVEN_HOST" ]; then
        MEMORY_NOTE="a given server: no memory limit set by the script; the OS page cache may hide misses"
        return 0
    fi
    if mkdir -p "$cg" 2>/dev/null && echo "$limit" > "$cg/memory.limit_in_bytes" 2>/dev/null; then
        pm=$(head -n 1 "$DIR/data/postmaster.pid")
        for p in $pm $(pgrep -P "$pm"); do echo "$p" > "$cg/cgroup.procs"; done
        MEMORY_NOTE="server limited to $limit of memory, page cache included (cgroup v1 $cg)"
    else
        MEMORY_NOTE="no memory limit (no writable cgroup memory controller): the OS page cache may hide misses"
    fi
    echo "bench: $MEMORY_NOTE" >&2
}
