# Shared by the bench/ drivers (sourced, not run): a throwaway server in $DIR
# on $PORT, run as $USER_, with kvlsm preloaded.  The caller sets TOP, DIR,
# PORT and SHARED_BUFFERS, and may add settings with extra_conf.
BIN=/usr/lib/postgresql/15/bin
USER_=kvlsm_test

as_user() { runuser -u "$USER_" -- "$@"; }
psql_() { as_user "$BIN/psql" -h "$DIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }
pgbench_() { as_user "$BIN/pgbench" -h "$DIR" -p "$PORT" "$@"; }
stop() { [ -f "$DIR/data/postmaster.pid" ] && as_user "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; }

# build and install kvlsm, then start a fresh server; stopped when the script exits
start_server() {
    local extra_conf=${1:-}
    bash "$TOP/scripts/build-install.sh" >/dev/null
    trap stop EXIT
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
    if mkdir -p "$cg" 2>/dev/null && echo "$limit" > "$cg/memory.limit_in_bytes" 2>/dev/null; then
        pm=$(head -n 1 "$DIR/data/postmaster.pid")
        for p in $pm $(pgrep -P "$pm"); do echo "$p" > "$cg/cgroup.procs"; done
        MEMORY_NOTE="server limited to $limit of memory, page cache included (cgroup v1 $cg)"
    else
        MEMORY_NOTE="no memory limit (no writable cgroup memory controller): the OS page cache may hide misses"
    fi
    echo "bench: $MEMORY_NOTE" >&2
}
