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
