#!/usr/bin/env bash
# High availability of kvlsm tables under Patroni + etcd (issue 25), on
# loopback: one etcd, three PostgreSQL 15 nodes with kvlsm preloaded under
# Patroni (synchronous_mode, use_pg_rewind), everything in a scratch
# directory and run as the unprivileged user kvlsm_test; every process is
# stopped at the end.
#
#   1. A client writes kvlsm tables (with btree and kvlsm_idx indexes) in
#      transactions of three rows, recording each acknowledged commit, and
#      pgbench runs TPC-B on kvlsm tables, while every process of the
#      leader (its Patroni and all its postgres processes) is killed with
#      SIGKILL.  Patroni promotes the synchronous standby.
#   2. Checks on the new leader: no acknowledged commit lost, no
#      transaction half-present (all three rows or none, with their
#      contents), pgbench's balance invariant, index and sequential scans
#      agree, kvlsm_verify clean.
#   3. The old leader's Patroni is started again: it rejoins (pg_rewind
#      when its timeline diverged) and catches up.
#   4. patronictl switchover while a client reads from a replica: no read
#      fails.
#   5. A replica down until the leader removed the WAL it needs comes back:
#      Patroni reports it unfit (its REST API's /replica?lag check fails),
#      it stays in recovery, and patronictl reinit re-clones it.
# Last line: "ha: N acknowledged, 0 lost, failover S s, old leader rejoined (pg_rewind)".
#
#   bash scripts/ha-demo.sh           (as root, with or without sudo)
#   KVLSM_HA_SECONDS=20 ...           (write phase before the kill is a third of it; default 15)
#   KVLSM_SKIP_BUILD=1 ...            (kvlsm is built and installed already)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=/usr/lib/postgresql/15/bin
USER_=kvlsm_test
DIR=${KVLSM_HA_DIR:-/tmp/kvlsm-ha}
SECONDS_=${KVLSM_HA_SECONDS:-15}
PY=/usr/bin/python3
ETCD_CLIENT=23790
ETCD_PEER=23800
SCOPE=kvlsm-ha

if [ "$(id -u)" -ne 0 ]; then
    echo "ha-demo: run as root (e.g. sudo bash $0)" >&2
    exit 1
fi
if [ "${KVLSM_SKIP_BUILD:-0}" != 1 ]; then
    bash "$SCRIPT_DIR/build-install.sh" >/dev/null
fi
need=()
command -v patroni >/dev/null 2>&1 || need+=(patroni)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
"$PY" -c 'import etcd' 2>/dev/null || need+=(python3-etcd)
"$PY" -c 'import psycopg2' 2>/dev/null || need+=(python3-psycopg2)
if [ "${#need[@]}" -gt 0 ]; then
    echo "ha-demo: installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

as_user() { runuser -u "$USER_" -- "$@"; }
pgport() { echo $((5440 + $1)); }
restport() { echo $((8010 + $1)); }
psql_n() { local n=$1; shift; as_user "$BIN/psql" -h 127.0.0.1 -p "$(pgport "$n")" -U postgres -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
patronictl_() { as_user patronictl -c "$DIR/node1.yml" "$@"; }
say() { echo "ha-demo: $*"; }

# (runuser forks: processes are found by their command lines, not by $!)
patroni_pid() { pgrep -u "$USER_" -f "patroni $DIR/node$1.yml" | head -1; }
cleanup() {
    local n
    pkill -TERM -u "$USER_" -f "patroni $DIR/" 2>/dev/null || true
    sleep 3
    pkill -9 -u "$USER_" -f "patroni $DIR/" 2>/dev/null || true
    for n in 1 2 3; do
        if [ -f "$DIR/node$n/postmaster.pid" ]; then
            as_user "$BIN/pg_ctl" -D "$DIR/node$n" -m immediate stop >/dev/null 2>&1 || true
        fi
    done
    pkill -TERM -u "$USER_" -f "etcd --name kvlsm-ha" 2>/dev/null || true
    pkill -u "$USER_" -f "$DIR/(writer|reader).py" 2>/dev/null || true
}
trap cleanup EXIT

# leftovers of an earlier run
pkill -9 -u "$USER_" -f "patroni $DIR/" 2>/dev/null || true
pkill -9 -u "$USER_" -f "etcd --name kvlsm-ha" 2>/dev/null || true
for n in 1 2 3; do
    pid=$(head -1 "$DIR/node$n/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
done
sleep 1
rm -rf "$DIR"; mkdir -p "$DIR"; chown "$USER_" "$DIR"

as_user etcd --name kvlsm-ha --data-dir "$DIR/etcd" --enable-v2=true \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "kvlsm-ha=http://127.0.0.1:$ETCD_PEER" >"$DIR/etcd.log" 2>&1 &

for n in 1 2 3; do
    cat >"$DIR/node$n.yml" <<YML
scope: $SCOPE
namespace: /service/
name: node$n
restapi:
  listen: 127.0.0.1:$(restport "$n")
  connect_address: 127.0.0.1:$(restport "$n")
etcd:
  host: 127.0.0.1:$ETCD_CLIENT
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        shared_preload_libraries: kvlsm
        kvlsm.memtable_memory: 64MB
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 512MB
        max_connections: 50
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$(pgport "$n")
  connect_address: 127.0.0.1:$(pgport "$n")
  data_dir: $DIR/node$n
  bin_dir: $BIN
  pgpass: $DIR/pgpass$n
  authentication:
    replication:
      username: replicator
      password: replicator
    superuser:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: '$DIR'
YML
    chown "$USER_" "$DIR/node$n.yml"
done

start_patroni() {
    local n=$1
    as_user patroni "$DIR/node$n.yml" >>"$DIR/patroni$n.log" 2>&1 &
}
start_patroni 1
sleep 3
start_patroni 2
start_patroni 3

# the cluster: a leader and two streaming replicas, one of them synchronous
leader() { patronictl_ list -f json 2>/dev/null | "$PY" -c '
import json, sys
m = [x["Member"] for x in json.load(sys.stdin) if x.get("Role") == "Leader" and x.get("State") == "running"]
print(m[0][4:] if m else "")'; }
ready() { patronictl_ list -f json 2>/dev/null | "$PY" -c '
import json, sys
ms = json.load(sys.stdin)
roles = sorted(x.get("Role") for x in ms if x.get("State") in ("running", "streaming"))
sys.exit(0 if len(ms) == 3 and "Leader" in roles and "Sync Standby" in roles and len(roles) == 3 else 1)'; }
wait_ready() {
    local i
    for i in $(seq 1 120); do ready && return 0; sleep 1; done
    say "the cluster did not become ready:"; patronictl_ list || true
    tail -n 30 "$DIR"/patroni*.log
    exit 1
}
wait_ready
L=$(leader)
say "leader node$L, replicas streaming:"
patronictl_ list

psql_n "$L" -c "CREATE EXTENSION kvlsm" -c "
CREATE TABLE ledger (id bigint NOT NULL, txn bigint NOT NULL, payload text NOT NULL) USING kvlsm
  WITH (memtable_size = '2MB');
CREATE UNIQUE INDEX ledger_id ON ledger (id);
CREATE INDEX ledger_txn ON ledger USING kvlsm_idx (txn);"
as_user env PGOPTIONS="-c default_table_access_method=kvlsm" \
    "$BIN/pgbench" -h 127.0.0.1 -p "$(pgport "$L")" -U postgres -i -q -s 2 postgres >/dev/null 2>&1
psql_n "$L" -c "CREATE INDEX pgbench_accounts_bid ON pgbench_accounts USING kvlsm_idx (bid)"

# the writer: three rows per transaction, each acknowledged commit recorded
cat >"$DIR/writer.py" <<'PYW'
import psycopg2, sys, time, hashlib
dsn, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
acked = open(out + ".acked", "w"); doubt = open(out + ".doubt", "w")
end = time.time() + seconds
txn = 0
conn = None
first_error = None
while time.time() < end:
    try:
        if conn is None:
            conn = psycopg2.connect(dsn, connect_timeout=2)
        txn += 1
        cur = conn.cursor()
        for k in range(3):
            rid = txn * 3 + k
            cur.execute("INSERT INTO ledger VALUES (%s, %s, %s)",
                        (rid, txn, hashlib.md5(str(rid).encode()).hexdigest()))
        try:
            conn.commit()
        except Exception:
            doubt.write(f"{txn}\n"); doubt.flush()
            raise
        acked.write(f"{txn} {time.time():.3f}\n"); acked.flush()
    except Exception as e:
        if first_error is None:
            first_error = time.time()
            print(f"writer: error at {first_error:.3f}: {str(e).strip().splitlines()[0]}", flush=True)
        try:
            conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.2)
print(f"writer: {txn} transactions tried", flush=True)
PYW
chown "$USER_" "$DIR/writer.py"
DSN="host=127.0.0.1,127.0.0.1,127.0.0.1 port=$(pgport 1),$(pgport 2),$(pgport 3) user=postgres dbname=postgres target_session_attrs=read-write"
# the clients go on for 20 s past the write phase, so that they see the
# new leader (Patroni takes the leader key's TTL, 10 s, to fail over)
as_user "$PY" "$DIR/writer.py" "$DSN" "$((SECONDS_ + 20))" "$DIR/writer" >"$DIR/writer.log" 2>&1 &
WRITER=$!
as_user "$BIN/pgbench" -n -c 2 -T "$((SECONDS_ + 20))" -h 127.0.0.1,127.0.0.1,127.0.0.1 \
    -p "$(pgport 1),$(pgport 2),$(pgport 3)" -U postgres "postgresql:///postgres?target_session_attrs=read-write" \
    >"$DIR/pgbench.log" 2>&1 &
PGBENCH=$!
sleep $((SECONDS_ / 3))

# the leader dies: its Patroni and every one of its postgres processes
PM=$(head -1 "$DIR/node$L/postmaster.pid")
PAT=$(patroni_pid "$L")
KILL_AT=$(date +%s.%N)
# (only the postmaster is frozen, so that it forks no new child meanwhile:
# a stopped Patroni would stop the runuser that waits for it too)
kill -STOP "$PM" 2>/dev/null || true
KIDS=$(pgrep -P "$PM" | tr '\n' ' ')
kill -9 "$PAT" "$PM" $KIDS 2>/dev/null || true
for i in $(seq 1 100); do
    kill -0 "$PM" 2>/dev/null || kill -0 "$PAT" 2>/dev/null || break
    sleep 0.1
done
say "killed node$L: patroni $PAT, postmaster $PM and children $KIDS"
OLD=$L
for i in $(seq 1 60); do
    NEW=$(leader)
    [ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && break
    sleep 1
done
[ -n "$NEW" ] && [ "$NEW" != "$OLD" ] || { say "no new leader"; patronictl_ list || true; exit 1; }
say "node$NEW is the new leader"
wait "$WRITER" || true
wait "$PGBENCH" || true
cat "$DIR/writer.log"

# failover time: from the kill to the first commit acknowledged after the
# writer lost its connection (a commit in flight at the kill may still be
# acknowledged by the dying leader)
ERR_AT=$(sed -n 's/^writer: error at \([0-9.]*\):.*/\1/p' "$DIR/writer.log" | head -1)
[ -n "$ERR_AT" ] || ERR_AT=$KILL_AT
FAILOVER=$(awk -v k="$KILL_AT" -v e="$ERR_AT" '$2 > e { printf "%.1f", $2 - k; exit }' "$DIR/writer.acked")
[ -n "$FAILOVER" ] || { say "no commit was acknowledged after the kill"; exit 1; }

# --- checks on the new leader -------------------------------------------
fail=0
check() { if [ "$2" = "$3" ]; then say "ok: $1"; else say "FAILED: $1 (got '$2', want '$3')"; fail=1; fi; }
cut -d' ' -f1 "$DIR/writer.acked" | sort -n >"$DIR/acked.txt"
ACKED=$(wc -l <"$DIR/acked.txt")
psql_n "$NEW" -c "SELECT txn FROM ledger GROUP BY txn ORDER BY txn" >"$DIR/present.txt"
LOST=$(comm -23 <(sort "$DIR/acked.txt") <(sort "$DIR/present.txt") | wc -l)
check "no acknowledged commit lost ($ACKED acknowledged)" "$LOST" 0
# present but never acknowledged: only a transaction whose commit was in doubt
EXTRA=$(comm -13 <(sort "$DIR/acked.txt") <(sort "$DIR/present.txt") | sort -n)
UNEXPLAINED=$(comm -23 <(echo "$EXTRA" | sed '/^$/d' | sort) <(sort "$DIR/writer.doubt") | wc -l)
check "rows of unacknowledged transactions only where the commit was in doubt" "$UNEXPLAINED" 0
check "every transaction whole, every row intact" \
    "$(psql_n "$NEW" -c "SELECT count(*) FROM (SELECT txn FROM ledger GROUP BY txn
                           HAVING count(*) <> 3 OR bool_or(payload <> md5(id::text)) OR min(id) <> txn * 3) x")" 0
check "pgbench balance invariant" \
    "$(psql_n "$NEW" -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
                      AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
                      AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")" t
SEQ=$(psql_n "$NEW" -c "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM ledger WHERE id > 0")
IDX=$(psql_n "$NEW" -c "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM ledger WHERE id > 0")
check "btree index scan = sequential scan" "$IDX" "$SEQ"
SEQ=$(psql_n "$NEW" -c "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM pgbench_accounts WHERE bid = 2")
IDX=$(psql_n "$NEW" -c "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM pgbench_accounts WHERE bid = 2")
check "kvlsm_idx index scan = sequential scan" "$IDX" "$SEQ"
check "kvlsm_verify clean" \
    "$(psql_n "$NEW" -c "SELECT count(*) FROM (SELECT kvlsm_verify(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                       WHERE a.amname IN ('kvlsm', 'kvlsm_idx')) x")" 0

# --- the old leader rejoins ---------------------------------------------
start_patroni "$OLD"
# a member's role and state, and its lag in MB ("" for the leader)
member() { patronictl_ list -f json 2>/dev/null | "$PY" -c "
import json, sys
m = [x for x in json.load(sys.stdin) if x['Member'] == 'node$1']
print(' '.join([m[0].get('Role', '').replace(' ', '_'), m[0].get('State', ''), str(m[0].get('Lag in MB', ''))]) if m else '')"; }
for i in $(seq 1 90); do
    case "$(member "$OLD")" in
        "Replica running 0"|"Sync_Standby running 0") ready && break ;;
    esac
    sleep 1
done
wait_ready
REWIND="no rewind needed"
grep -q "INFO: pg_rewind exit code=0" "$DIR/patroni$OLD.log" && REWIND="pg_rewind"
say "node$OLD rejoined ($REWIND)"
patronictl_ list
psql_n "$NEW" -c "INSERT INTO ledger VALUES (-1, -1, 'after rejoin')"
for i in $(seq 1 30); do
    [ "$(psql_n "$OLD" -c "SELECT count(*) FROM ledger WHERE id = -1" 2>/dev/null)" = 1 ] && break
    sleep 1
done
check "the rejoined node follows the new leader" "$(psql_n "$OLD" -c "SELECT count(*) FROM ledger WHERE id = -1")" 1
check "the rejoined node holds the same rows" \
    "$(psql_n "$OLD" -c "SELECT count(*), sum(id), md5(string_agg(payload, ',' ORDER BY id)) FROM ledger")" \
    "$(psql_n "$NEW" -c "SELECT count(*), sum(id), md5(string_agg(payload, ',' ORDER BY id)) FROM ledger")"

# --- a planned switchover while a replica serves reads -------------------
# in synchronous mode the candidate must be the synchronous standby; the
# other replica serves reads meanwhile
READER_NODE=""
CANDIDATE=""
for n in 1 2 3; do
    [ "$n" = "$NEW" ] && continue
    if [ "$(member "$n" | cut -d' ' -f1)" = Sync_Standby ]; then CANDIDATE=$n; else READER_NODE=$n; fi
done
[ -n "$CANDIDATE" ] && [ -n "$READER_NODE" ] || { say "no synchronous standby to switch over to"; patronictl_ list; exit 1; }
cat >"$DIR/reader.py" <<'PYR'
import psycopg2, sys, time
port, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
ok = errors = 0
conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
conn.autocommit = True
while time.time() < end:
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE bid = 1")
        cur.fetchall()
        cur.execute("SELECT count(*) FROM ledger WHERE txn BETWEEN 10 AND 50")
        cur.fetchall()
        ok += 1
    except Exception as e:
        errors += 1
        print("reader error:", str(e).strip().splitlines()[0], flush=True)
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            conn.autocommit = True
        except Exception:
            time.sleep(0.2)
print(f"reader: {ok} reads, {errors} errors", flush=True)
PYR
chown "$USER_" "$DIR/reader.py"
as_user "$PY" "$DIR/reader.py" "$(pgport "$READER_NODE")" 20 >"$DIR/reader.log" 2>&1 &
READER=$!
sleep 2
patronictl_ switchover --leader "node$NEW" --candidate "node$CANDIDATE" --force >"$DIR/switchover.log" 2>&1 ||
    { say "switchover failed:"; cat "$DIR/switchover.log"; fail=1; }
for i in $(seq 1 60); do [ "$(leader)" = "$CANDIDATE" ] && ready && break; sleep 1; done
check "switchover: node$CANDIDATE leads" "$(leader)" "$CANDIDATE"
wait "$READER" || true
cat "$DIR/reader.log"
check "replica node$READER_NODE served reads through the switchover without an error" \
    "$(sed -n 's/^reader: [0-9]* reads, \([0-9]*\) errors$/\1/p' "$DIR/reader.log")" 0
psql_n "$CANDIDATE" -c "INSERT INTO ledger VALUES (-2, -2, 'after switchover')"
check "the new leader takes writes" "$(psql_n "$CANDIDATE" -c "SELECT count(*) FROM ledger WHERE id < 0")" 2

# --- a replica that cannot follow is reported, not silently diverged ------
# node$READER_NODE is down long enough for its member key to expire (the
# leader then drops its replication slot), and the leader, keeping no WAL
# for it any more, removes the segments it would need.
LEADER=$CANDIDATE
R=$READER_NODE
RLSN=$(psql_n "$R" -c "SELECT pg_last_wal_replay_lsn()")
RPM=$(head -1 "$DIR/node$R/postmaster.pid")
kill -9 "$(patroni_pid "$R")" "$RPM" $(pgrep -P "$RPM" | tr '\n' ' ') 2>/dev/null || true
patronictl_ edit-config --force -s postgresql.parameters.wal_keep_size=0 >/dev/null
for i in $(seq 1 60); do
    [ -z "$(member "$R")" ] &&
        [ "$(psql_n "$LEADER" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'node$R'")" = 0 ] && break
    sleep 1
done
for i in $(seq 1 60); do
    [ "$(psql_n "$LEADER" -c "SHOW wal_keep_size")" = 0 ] && break
    sleep 1
done
# the segment holding node$R's replay position, named on the leader's timeline
NEEDED=$(psql_n "$LEADER" -c "SELECT pg_walfile_name('$RLSN')")
for i in $(seq 1 20); do
    psql_n "$LEADER" -c "INSERT INTO ledger SELECT -1000000 * $i - g, -3, md5(g::text) FROM generate_series(1, 20000) g" \
        -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    [ "$i" -ge 3 ] && [ "$(psql_n "$LEADER" -c "SELECT count(*) FROM pg_ls_waldir() WHERE name = '$NEEDED'")" = 0 ] && break
done
check "the leader removed WAL segment $NEEDED that node$R needs" \
    "$(psql_n "$LEADER" -c "SELECT count(*) FROM pg_ls_waldir() WHERE name = '$NEEDED'")" 0
start_patroni "$R"
for i in $(seq 1 60); do
    grep -q "has already been removed" "$DIR/patroni$R.log" 2>/dev/null && break
    sleep 1
done
check "node$R's streaming fails: the leader no longer has its WAL" \
    "$(grep -c "has already been removed" "$DIR/patroni$R.log" | awk '{print ($1 > 0)}')" 1
sleep 5
REPLICA_HEALTH=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(restport "$R")/replica?lag=1MB" || true)
check "Patroni's REST API reports node$R unfit as a replica (GET /replica?lag=1MB)" "$REPLICA_HEALTH" 503
say "patronictl list while node$R cannot follow:"
patronictl_ list
check "node$R stays in recovery instead of diverging" "$(psql_n "$R" -c "SELECT pg_is_in_recovery()" 2>/dev/null || echo down)" t
# the remedy: re-clone it from the leader
patronictl_ reinit "$SCOPE" "node$R" --force >"$DIR/reinit.log" 2>&1 || { cat "$DIR/reinit.log"; fail=1; }
for i in $(seq 1 120); do
    case "$(member "$R")" in "Replica running 0"|"Sync_Standby running 0") break ;; esac
    sleep 1
done
psql_n "$LEADER" -c "INSERT INTO ledger VALUES (-3, -3, 'after reinit')"
for i in $(seq 1 30); do
    [ "$(psql_n "$R" -c "SELECT count(*) FROM ledger WHERE id = -3" 2>/dev/null)" = 1 ] && break
    sleep 1
done
check "after patronictl reinit node$R holds the leader's rows" \
    "$(psql_n "$R" -c "SELECT count(*), sum(id), md5(string_agg(payload, ',' ORDER BY id)) FROM ledger" 2>/dev/null)" \
    "$(psql_n "$LEADER" -c "SELECT count(*), sum(id), md5(string_agg(payload, ',' ORDER BY id)) FROM ledger")"

if [ "$fail" -ne 0 ]; then
    say "some checks failed; logs in $DIR"
    exit 1
fi
echo "ha: $ACKED acknowledged, $LOST lost, failover $FAILOVER s, old leader rejoined ($REWIND)"
