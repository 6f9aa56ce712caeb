#!/usr/bin/env bash
# The monitoring kit (issue 26) checked end to end:
#   1. promtool check rules and promtool test rules on
#      monitoring/prometheus/kvlsm-alerts.yml (unit tests with synthetic
#      series: each alert fires when it should and stays quiet otherwise);
#   2. the Grafana dashboard: valid JSON, and every metric a panel or
#      variable uses is one that kvlsm-queries.yaml exposes (the alerts too);
#   3. postgres_exporter, started on loopback with the queries file and
#      --auto-discover-databases against a throwaway cluster, as a role that
#      has only pg_monitor: two scrapes around a write workload show one
#      series per kvlsm relation, ingested bytes growing and ratios in
#      range; a database without kvlsm and relations dropped while scrapes
#      run never make a scrape fail.
# Run as root (sudo or not); installs what it needs from Debian.  Prints
# "ok - ..." / "not ok - ..." lines and exits non-zero on a failure.
#   bash scripts/monitoring-check.sh        (KVLSM_SKIP_BUILD=1: kvlsm is installed already)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SCRIPT_DIR/.." && pwd)
BIN=/usr/lib/postgresql/15/bin
USER_=kvlsm_test
DIR=${KVLSM_MONITORING_DIR:-/tmp/kvlsm-monitoring}
PORT=${KVLSM_MONITORING_PORT:-54341}
EXPORTER_PORT=${KVLSM_EXPORTER_PORT:-19188}
MON=$TOP/monitoring
# Debian's python, whose modules apt installs (not a pyenv or venv first on PATH)
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
    echo "monitoring-check: run as root (e.g. sudo bash $0)" >&2
    exit 1
fi
if [ "${KVLSM_SKIP_BUILD:-0}" != 1 ]; then
    bash "$SCRIPT_DIR/build-install.sh" >/dev/null
fi
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || need+=(prometheus-postgres-exporter)
command -v curl >/dev/null 2>&1 || need+=(curl)
"$PY" -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ "${#need[@]}" -gt 0 ]; then
    echo "monitoring-check: installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

failed=0
ok() { echo "ok - monitoring: $*"; }
notok() { echo "not ok - monitoring: $*"; failed=1; }

# 1. alert rules
if promtool check rules "$MON/prometheus/kvlsm-alerts.yml" >/dev/null; then
    ok "promtool check rules"
else
    notok "promtool check rules"; promtool check rules "$MON/prometheus/kvlsm-alerts.yml" || true
fi
if (cd "$MON/prometheus" && promtool test rules kvlsm-alerts.test.yml >/dev/null); then
    ok "promtool test rules (every alert fires when it should, quiet otherwise)"
else
    notok "promtool test rules"; (cd "$MON/prometheus" && promtool test rules kvlsm-alerts.test.yml) || true
fi

# 2. the dashboard and the alerts use only metrics the queries file exposes
if "$PY" - "$MON" <<'PY'
import json, re, sys, yaml
mon = sys.argv[1]
queries = yaml.safe_load(open(f"{mon}/prometheus/kvlsm-queries.yaml"))
exposed = set()
for ns, q in queries.items():
    for m in q["metrics"]:
        (col, spec), = m.items()
        if spec["usage"] != "LABEL":
            exposed.add(f"{ns}_{col}")
dash = json.load(open(f"{mon}/grafana/kvlsm.json"))
used = {}
for p in dash["panels"]:
    if not p.get("targets"):
        sys.exit(f"panel {p['title']!r} has no query")
    for t in p["targets"]:
        for name in re.findall(r"\bkvlsm_[a-z0-9_]+", t["expr"]):
            used.setdefault(name, p["title"])
for v in dash["templating"]["list"]:
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    for name in re.findall(r"\bkvlsm_[a-z0-9_]+", q):
        used.setdefault(name, "variable " + v["name"])
rules = yaml.safe_load(open(f"{mon}/prometheus/kvlsm-alerts.yml"))
for g in rules["groups"]:
    for r in g["rules"]:
        for name in re.findall(r"\bkvlsm_[a-z0-9_]+", r["expr"]):
            used.setdefault(name, "alert " + r["alert"])
        if "runbook" not in r.get("annotations", {}):
            sys.exit(f"alert {r['alert']} has no runbook annotation")
missing = {n: w for n, w in used.items() if n not in exposed}
if missing:
    sys.exit("metrics used but not exposed: " + ", ".join(f"{n} ({w})" for n, w in sorted(missing.items())))
print(f"{len(dash['panels'])} panels and {sum(len(g['rules']) for g in rules['groups'])} alerts use {len(used)} metrics, all exposed")
PY
then
    ok "dashboard and alerts use only exposed metrics"
else
    notok "dashboard or alerts use a metric the queries file does not expose"
fi

# 3. the exporter against a live cluster
as_user() { runuser -u "$USER_" -- "$@"; }
psql_() { as_user "$BIN/psql" -h "$DIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }
# (runuser forks: the exporter is found by its command line, not by $!)
EXPORTER_ARGS="--web.listen-address=127.0.0.1:$EXPORTER_PORT"
stop_exporter() {
    pkill -u "$USER_" -f "prometheus-postgres-exporter $EXPORTER_ARGS" 2>/dev/null || true
}
cleanup() {
    stop_exporter
    [ -f "$DIR/data/postmaster.pid" ] && as_user "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
rm -rf "$DIR"; mkdir -p "$DIR"; chown "$USER_" "$DIR"
as_user "$BIN/initdb" -D "$DIR/data" -A trust >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'kvlsm'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
CONF
as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
psql_ -d postgres -c "CREATE ROLE exporter LOGIN IN ROLE pg_monitor" \
    -c "CREATE DATABASE mon" -c "CREATE DATABASE plain"
psql_ -d plain -c "CREATE TABLE h (id int PRIMARY KEY, v text)" -c "INSERT INTO h VALUES (1, 'x')"
psql_ -d mon -c "CREATE EXTENSION kvlsm" \
    -c "CREATE TABLE t (id int PRIMARY KEY, v text) USING kvlsm" \
    -c "CREATE INDEX t_v ON t USING kvlsm_idx (v)" \
    -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g" \
    -c "SELECT kvlsm_snapshot_create('nightly')" >/dev/null

if curl -s -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/" 2>/dev/null; then
    echo "monitoring-check: port $EXPORTER_PORT is taken (KVLSM_EXPORTER_PORT chooses another)" >&2
    exit 1
fi
as_user env DATA_SOURCE_NAME="host=$DIR port=$PORT user=exporter dbname=postgres sslmode=disable" \
    prometheus-postgres-exporter "$EXPORTER_ARGS" \
    --extend.query-path="$MON/prometheus/kvlsm-queries.yaml" --auto-discover-databases \
    --disable-settings-metrics >"$DIR/exporter.log" 2>&1 &
scrape() {
    local i
    for i in $(seq 1 50); do
        curl -sf "http://127.0.0.1:$EXPORTER_PORT/metrics" >"$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "monitoring-check: no answer from the exporter; its log:" >&2
    cat "$DIR/exporter.log" >&2
    return 1
}
scrape "$DIR/scrape1.txt"
psql_ -d mon -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20001, 70000) g" \
    -c "SELECT kvlsm_flush('t')" -c "SELECT count(*) FROM t WHERE id % 1000 = 0" >/dev/null
scrape "$DIR/scrape2.txt"

# relations created and dropped while the exporter scrapes
(
    for i in $(seq 1 40); do
        psql_ -d mon -c "CREATE TABLE churn$i (id int) USING kvlsm" \
            -c "CREATE INDEX churn${i}_id ON churn$i USING kvlsm_idx (id)" \
            -c "INSERT INTO churn$i SELECT generate_series(1, 200)" \
            -c "DROP TABLE churn$i" >/dev/null 2>&1 || true
    done
) &
CHURN_PID=$!
n=0
while kill -0 "$CHURN_PID" 2>/dev/null; do
    n=$((n + 1))
    scrape "$DIR/churn$n.txt"
done
wait "$CHURN_PID" || true
scrape "$DIR/scrape3.txt"

if "$PY" - "$DIR" "$n" <<'PY'
import glob, re, sys
d, nchurn = sys.argv[1], int(sys.argv[2])
line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
lab = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
def parse(path):
    out = {}
    for l in open(path):
        m = line.match(l.strip())
        if not m:
            continue
        labels = tuple(sorted((k, v) for k, v in lab.findall(m.group(3) or "") if k != "server"))
        key = (m.group(1), labels)
        if key in out:
            sys.exit(f"{path}: series {key} appears twice")
        out[key] = float(m.group(4))
    return out
def get(s, name, **labels):
    want = tuple(sorted(labels.items()))
    return [v for (n, l), v in s.items() if n == name and all(x in l for x in want)]
problems = []
def check(cond, what):
    if not cond:
        problems.append(what)
s1, s2 = parse(f"{d}/scrape1.txt"), parse(f"{d}/scrape2.txt")
for path in [f"{d}/scrape1.txt", f"{d}/scrape2.txt", f"{d}/scrape3.txt"] + sorted(glob.glob(f"{d}/churn*.txt")):
    s = parse(path)
    check(get(s, "pg_up") == [1.0], f"{path}: pg_up is {get(s, 'pg_up')}")
    check(get(s, "pg_exporter_last_scrape_error") == [0.0],
          f"{path}: the scrape had an error (pg_exporter_last_scrape_error {get(s, 'pg_exporter_last_scrape_error')})")
# one series per kvlsm relation, only from the database that has kvlsm
rels = sorted({dict(l).get("relation") for (n, l) in s2 if n == "kvlsm_sstables"})
check(rels == ["public.t", "public.t_v"], f"kvlsm_sstables series for {rels}, expected public.t and public.t_v")
dbs = sorted({dict(l).get("datname") for (n, l) in s2 if n.startswith("kvlsm_") and "datname" in dict(l)})
check(dbs == ["mon"], f"kvlsm series from databases {dbs}, expected only mon")
am = {dict(l)["relation"]: dict(l)["access_method"] for (n, l) in s2 if n == "kvlsm_sstables"}
check(am == {"public.t": "kvlsm", "public.t_v": "kvlsm_idx"}, f"access_method labels {am}")
a, b = get(s1, "kvlsm_ingested_bytes_total", relation="public.t"), get(s2, "kvlsm_ingested_bytes_total", relation="public.t")
check(len(a) == 1 and len(b) == 1 and b[0] > a[0] > 0, f"ingested bytes did not grow: {a} -> {b}")
f1, f2 = get(s1, "kvlsm_flushes_total", relation="public.t"), get(s2, "kvlsm_flushes_total", relation="public.t")
check(f2 and f1 and f2[0] >= f1[0] + 1, f"flushes did not grow: {f1} -> {f2}")
for name in ["kvlsm_cache_hit_ratio", "kvlsm_free_pages_ratio"]:
    vals = get(s2, name)
    check(vals and all(0.0 <= v <= 1.0 for v in vals), f"{name} out of [0, 1]: {vals}")
wa = get(s2, "kvlsm_write_amplification_ratio", relation="public.t")
check(wa and 0.5 <= wa[0] <= 100, f"write amplification {wa}")
check(get(s2, "kvlsm_l0_stop_trigger", relation="public.t") == [36.0], "l0_stop_trigger is not kvlsm.l0_stop_trigger's default")
check(get(s2, "kvlsm_server_launcher_up") == [1.0] and get(s2, "kvlsm_server_preloaded") == [1.0],
      "launcher or preload not reported")
check(len(get(s2, "kvlsm_snapshot_retained_bytes", snapshot="nightly", datname="mon")) == 1,
      "the named snapshot has no series")
check(nchurn >= 3, f"only {nchurn} scrapes ran while relations came and went")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"3 scrapes and {nchurn} during churn: pg_up 1, no scrape error; series for mon's public.t and public.t_v only")
PY
then
    ok "postgres_exporter scrapes kvlsm series (one per relation, counters grow, ratios in range; no error without kvlsm or with relations dropped mid-scrape)"
else
    notok "postgres_exporter scrape checks; exporter log:"
    tail -n 30 "$DIR/exporter.log" || true
fi
exit "$failed"
