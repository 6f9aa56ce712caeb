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
#   KVLSM_UPSTREAM_SCHEDULE serial (default: one regress test at a time, so a crash
#                        only hurts its own test) or parallel (upstream's groups)
#   KVLSM_UPSTREAM_CHECK=1  (or the argument --check) CI mode: configurations
#                        "heap_nobitmap kvlsm" unless given, then fail unless
#                        every test whose kvlsm output differs from heap_nobitmap
#                        is listed in test/upstream/known-differences with an
#                        automatic class at least as severe as now (unlisted
#                        plan-only or order-only differences are reported, not
#                        failed: plans move with statistics), and no server
#                        process crashed (see that file's header)
#
# Output: $KVLSM_UPSTREAM_DIR/summary.md (pass counts, every test whose kvlsm
# output differs from the heap_nobitmap output, each diff hunk auto-classified
# A..F) and per-run directories <config>/<suite>/ with results and diffs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK=${KVLSM_UPSTREAM_CHECK:-0}
[ "${1:-}" = --check ] && CHECK=1
KNOWN=$SCRIPT_DIR/../test/upstream/known-differences
TEST_USER=kvlsm_test
# The PostgreSQL install to test: KVLSM_PG_CONFIG names its pg_config
# (default: Debian's PostgreSQL 15; e.g. a local --enable-cassert build)
PG_CONFIG=${KVLSM_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
PG_ISO_REGRESS=$PGXS_DIR/src/test/isolation/pg_isolation_regress
INCDIR=$("$PG_CONFIG" --includedir-server)
WORK=${KVLSM_UPSTREAM_DIR:-/tmp/kvlsm-upstream}
if [ "$CHECK" = 1 ]; then
    CONFIGS=${KVLSM_UPSTREAM_CONFIGS:-heap_nobitmap kvlsm}
else
    CONFIGS=${KVLSM_UPSTREAM_CONFIGS:-heap heap_kvlsm heap_nobitmap kvlsm}
fi
SUITES=${KVLSM_UPSTREAM_SUITES:-regress isolation}
SUITE_TIMEOUT=${KVLSM_UPSTREAM_TIMEOUT:-3600}

if [ "$(id -u)" -ne 0 ]; then
    echo "upstream-tests: run as root (apt-get source, runuser)" >&2
    exit 1
fi
id "$TEST_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEST_USER"
[ -x "$PG_ISO_REGRESS" ] || {
    echo "upstream-tests: $PG_ISO_REGRESS is missing" >&2; exit 1; }
[ -f "$("$PG_CONFIG" --pkglibdir)/kvlsm.so" ] || {
    echo "upstream-tests: kvlsm is not installed (run scripts/build-install.sh)" >&2; exit 1; }

mkdir -p "$WORK"
chown "$TEST_USER": "$WORK"
as_user() { runuser -u "$TEST_USER" -- env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE \
                -u PGUSER -u PGSERVICE -u PGDATA -u PGOPTIONS "$@"; }

# ---------------------------------------------------------------- source ----
# The test files must come from the same minor release as the installed server
# (psql and server behaviour change between minor releases, e.g. 15.18 -> 15.20).
DEB_VERSION=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
# the version of the server under test (not necessarily Debian's package)
UP_VERSION=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9][0-9.]*\).*/\1/p')
src_version() { sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$1/configure" 2>/dev/null; }
SRC=${KVLSM_PGSRC:-}
if [ -z "$SRC" ]; then
    SRC=$WORK/pgsrc/postgresql-$UP_VERSION
fi
if [ ! -f "$SRC/src/test/regress/parallel_schedule" ]; then
    SRC=$({ find "$WORK/pgsrc" -maxdepth 1 -type d -name 'postgresql-15.*' 2>/dev/null || true; } | sort -V | tail -n1)
fi
# apt-get source needs deb-src entries: derive them from the machine's own
# deb entries (deb822 .sources files and one-line lists) when there are none
ensure_deb_src() {
    [ -n "$(apt-cache showsrc postgresql-15 2>/dev/null | head -n1)" ] && return 0
    local f out=/etc/apt/sources.list.d/kvlsm-deb-src
    echo "upstream-tests: no deb-src entries for postgresql-15; deriving them from the deb entries"
    rm -f "$out.sources" "$out.list"
    # deb822 stanzas whose Types include "deb", as deb-src stanzas
    python3 - "$out.sources" /etc/apt/sources.list.d/*.sources <<'PY'
import re, sys
out, files = sys.argv[1], sys.argv[2:]
stanzas = []
for f in files:
    if f == out:
        continue
    for st in re.split(r'\n\s*\n', open(f).read()):
        m = re.search(r'^Types:(.*)$', st, re.M)
        if m and 'deb' in m.group(1).split():
            stanzas.append(re.sub(r'^Types:.*$', 'Types: deb-src', st.strip(), flags=re.M))
open(out, 'w').write('\n\n'.join(stanzas) + '\n' if stanzas else '')
PY
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f" >>"$out.list"
    done
    apt-get update -q >/dev/null
}

if [ ! -f "$SRC/src/test/regress/parallel_schedule" ]; then
    [ -n "$DEB_VERSION" ] || { echo "upstream-tests: no postgresql-15 package; set KVLSM_PGSRC" >&2; exit 1; }
    ensure_deb_src
    echo "upstream-tests: downloading Debian's postgresql-15 $DEB_VERSION source package into $WORK/pgsrc"
    rm -rf "$WORK/pgsrc"; mkdir -p "$WORK/pgsrc"
    # the installed version first; if the mirror no longer has it, the newest it has
    got=""
    for v in "$DEB_VERSION" $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -Vru); do
        if (cd "$WORK/pgsrc" && apt-get source -q --download-only "postgresql-15=$v" >"$WORK/pgsrc/apt.log" 2>&1); then
            got=$v; break
        fi
        echo "upstream-tests: could not download postgresql-15 $v source"
        rm -f "$WORK"/pgsrc/postgresql-15_*
    done
    [ -n "$got" ] || { echo "upstream-tests: no postgresql-15 source package could be downloaded" >&2; exit 1; }
    orig=$(ls "$WORK"/pgsrc/postgresql-15_*.orig.tar.* | head -n1)
    top=postgresql-${got%%-*}
    tar -xf "$orig" -C "$WORK/pgsrc" "$top/configure" "$top/src/test/regress" "$top/src/test/isolation" \
        "$top/contrib/spi"
    SRC="$WORK/pgsrc/$top"
fi
if [ "$(src_version "$SRC")" != "$UP_VERSION" ]; then
    echo "upstream-tests: WARNING: $SRC is PostgreSQL $(src_version "$SRC"), the server is $UP_VERSION;" \
         "expect failures on every configuration" >&2
fi
echo "upstream-tests: using test data from $SRC (PostgreSQL $(src_version "$SRC"))"

# Private copy of the test data, owned by the test user.
T=$WORK/tests
rm -rf "$T"; mkdir -p "$T/lib"
cp -r "$SRC/src/test/regress" "$T/regress"
cp -r "$SRC/src/test/isolation" "$T/isolation"
for f in "$SRC/src/test/regress/regress.c" "$SRC/contrib/spi/autoinc.c" "$SRC/contrib/spi/refint.c"; do
    b=$(basename "$f" .c)
    # as contrib/spi's Makefile builds it (the triggers test expects refint's NOTICEs)
    extra=""; [ "$b" = refint ] && extra=-DREFINT_VERBOSE
    if ! gcc -O2 -fPIC -shared $extra -I"$INCDIR" -o "$T/lib/$b.so" "$f" 2>"$T/lib/$b.log"; then
        echo "upstream-tests: could not build $b.so (tests needing it fail on every configuration)"
    fi
done
# Serial schedule by default: a backend crash makes the postmaster end every
# session, so in a parallel group one crash fails all tests running beside it.
if [ "${KVLSM_UPSTREAM_SCHEDULE:-serial}" = serial ]; then
    sed -n 's/^test: *//p' "$T/regress/parallel_schedule" | tr ' ' '\n' | sed '/^$/d; s/^/test: /' \
        >"$T/regress/run_schedule"
else
    cp "$T/regress/parallel_schedule" "$T/regress/run_schedule"
fi
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

# a crashed server restarts itself; wait until it accepts connections again
wait_ready() {
    local i
    for i in $(seq 1 120); do
        psql_t -d postgres -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "upstream-tests: server on port $PORT does not accept connections" >&2
    return 1
}

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
            --schedule="$T/regress/run_schedule" --dbname=$db \
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
    wait_ready
    if [ "$ext" = yes ]; then
        # databases the tests create themselves come from template1
        psql_t -d template1 -c 'CREATE EXTENSION kvlsm'
        psql_t -d postgres -c 'CREATE EXTENSION kvlsm'
    fi
    for suite in $SUITES; do
        wait_ready
        run_suite "$cfg" "$suite" "$opts" "$ext"
    done
    stop_server
    DATA=""
    grep -A1 -E 'terminated by signal|PANIC|TRAP:' "$dir/server.log" | grep -v '^--$' >"$dir/crashes.log" || true
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
# Compare outputs test by test (kvlsm vs heap_nobitmap, heap_kvlsm vs heap,
# heap_nobitmap vs heap_kvlsm), paragraph by paragraph (psql separates result
# sets by blank lines), and put each differing paragraph in a class A..F.
classify() {
    python3 - "$@" <<'PY'
import os, re, sys, difflib, collections

work, configs, suites = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()

RES_RE = re.compile(r'^\s*(?:test\s+)?(\S+)\s+\.\.\.\s+(ok|FAILED|failed \(ignored\))')
CRASH_RE = re.compile(r'server closed the connection unexpectedly|terminated abnormally|'
                      r'connection to server was lost|terminated by signal|'
                      r'no connection to the server|could not connect to server')
LIMIT_RE = re.compile(r'ERROR:.*(not supported on kvlsm|kvlsm tables? .*not supported|'
                      r'indexes are not supported on kvlsm|moving kvlsm table|'
                      r'CREATE INDEX CONCURRENTLY is not supported|TABLESAMPLE is not supported|'
                      r'CLUSTER of kvlsm|logical decoding of kvlsm|partial index builds of kvlsm)')
PLAN_RE = re.compile(r'^\s*(->|QUERY PLAN|-{5,}|\(\d+ rows?\)$|'
                     r'(Parallel |Partial |Finalize |Incremental |Async )?'
                     r'(Seq Scan|Index Scan|Index Only Scan|Bitmap|Sort|Hash|Nested Loop|Merge|'
                     r'Aggregate|HashAggregate|GroupAggregate|MixedAggregate|Filter|Index Cond|Recheck Cond|'
                     r'Heap Blocks|Heap Fetches|Limit|Append|Result|Gather|Workers|Group|Unique|Materialize|'
                     r'Subquery Scan|CTE|InitPlan|SubPlan|Output|One-Time Filter|Join Filter|Hash Cond|'
                     r'Merge Cond|Sort Key|Sort Method|Presorted Key|Memoize|Cache Key|Cache Mode|'
                     r'WindowAgg|SetOp|LockRows|Tid Scan|Tid Range Scan|TID Cond|Foreign Scan|Custom Scan|'
                     r'Values Scan|Function Scan|Rows Removed|Planning|Execution|Update on|Delete on|'
                     r'Insert on|Buckets|Batches|Memory Usage|Single Copy|Run Condition|Order By|'
                     r'Subplans Removed|Index Searches|Conflict|Tuples|Heap|Buffers|Worker \d))')
PHYS_RE = re.compile(r'ctid|\(\d+,\d+\)|relpages|reltuples|relallvisible|pg_relation_size|'
                     r'pg_table_size|pg_total_relation_size|tablesample|repeatable|heap_blks|'
                     r'n_tup_|n_live_tup|n_dead_tup|seq_scan|idx_scan|seq_tup_read|idx_tup_fetch|'
                     r'all_visible|all_frozen|pg_visibility|pageinspect|fillfactor|toast_tuple_target|'
                     r'autovacuum_|vacuum_truncate|vacuum_index_cleanup|\bpages\b|\bsize\b|'
                     r'relfrozenxid|relminmxid|tuple_data_split|page_header', re.I)
ERR_RE = re.compile(r'^(ERROR|FATAL|PANIC|server closed|WARNING):')

def load(path):
    try:
        with open(path, errors='replace') as f:
            return f.read().split('\n')
    except FileNotFoundError:
        return None

def results(cfg, suite):
    d = {}
    log = load(os.path.join(work, cfg, suite, 'run.log')) or []
    for l in log:
        m = RES_RE.match(l)
        if m:
            d[m.group(1)] = m.group(2)
    return d

def paragraphs(lines):
    out, cur = [], []
    for l in lines:
        if l.strip() == '':
            if cur:
                out.append(tuple(cur)); cur = []
        else:
            cur.append(l)
    if cur:
        out.append(tuple(cur))
    return out

CATALOG_TESTS = {'opr_sanity', 'type_sanity', 'misc_sanity', 'create_am', 'psql', 'amutils', 'sanity_check', 'oidjoins'}

def classify_pair(old, new, had_d, test=''):
    old, new = list(old), list(new)
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    rem, add = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag != 'equal':
            rem += old[i1:i2]; add += new[j1:j2]
    changed = rem + add
    first = (add or rem or [''])[0].strip()
    # prefer the first ERROR line for the description
    for l in add:
        if ERR_RE.match(l.strip()):
            first = l.strip(); break
    if any(re.search(r'crash of another server process|not yet accepting connections|'
                     r'in recovery mode|^psql: error: connection to server', l) for l in add):
        return 'F', 'collateral: session ended by another backend\'s crash (rerun after the crash fix)'
    if any(CRASH_RE.search(l) for l in add):
        return 'F', 'crash: ' + next(l for l in add if CRASH_RE.search(l)).strip()
    if sorted(old) == sorted(new):
        return 'B', 'same rows, other order'
    if any(LIMIT_RE.search(l) for l in add):
        return 'D', next(l for l in add if LIMIT_RE.search(l)).strip()
    if all(PLAN_RE.match(l) for l in changed) or \
       (any('QUERY PLAN' in l for l in old + new) and not any(ERR_RE.match(l.strip()) for l in add)):
        return 'A', first
    if any(PHYS_RE.search(l) for l in old + new) and not any(ERR_RE.match(l.strip()) and not PHYS_RE.search(l) for l in add):
        return 'C', first
    if had_d and (all(ERR_RE.match(l.strip()) or not l.strip() for l in add) or not add or
                  any(re.search(r'does not exist|current transaction is aborted', l) for l in add)):
        return 'D', 'follow-on of an earlier (D) error: ' + first
    if (any('kvlsm' in l for l in add) or test in CATALOG_TESTS) and not any(ERR_RE.match(l.strip()) for l in add):
        return 'E', first
    return 'F', first

def diff_test(ref, new, test=''):
    po, pn = paragraphs(ref), paragraphs(new)
    sm = difflib.SequenceMatcher(None, po, pn, autojunk=False)
    hunks, had_d = [], False
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == 'equal':
            continue
        o, n = po[i1:i2], pn[j1:j2]
        if tag == 'replace' and len(o) == len(n):
            pairs = list(zip(o, n))
        else:
            pairs = [(sum(o, ()), sum(n, ()))]
        for a, b in pairs:
            if a == b:
                continue
            c, why = classify_pair(a, b, had_d, test)
            had_d |= c == 'D'
            ctx = (b or a or ('',))[0][:100]
            hunks.append((c, why[:160], ctx))
    return hunks

ORDER = 'FDCEAB'
def worst(classes):
    for c in ORDER:
        if c in classes:
            return c
    return '-'

out = []
P = out.append
P('# Upstream PostgreSQL 15 suites on kvlsm: summary\n')
P('Generated by `scripts/upstream-tests.sh` in `%s`.\n' % work)
P('## Pass counts\n')
P('| suite | ' + ' | '.join(configs) + ' |')
P('|---|' + '---|' * len(configs))
allres = {}
for s in suites:
    row = []
    for c in configs:
        r = results(c, s); allres[(c, s)] = r
        ok = sum(1 for v in r.values() if v == 'ok')
        row.append('%d / %d' % (ok, len(r)))
    P('| %s | %s |' % (s, ' | '.join(row)))
P('')

refcfg = next((c for c in ('heap_nobitmap', 'heap_kvlsm', 'heap') if c in configs), None)
pairs = []
if 'kvlsm' in configs and refcfg:
    pairs.append(('kvlsm', refcfg))
if 'heap_kvlsm' in configs and 'heap' in configs:
    pairs.append(('heap_kvlsm', 'heap'))
if 'heap_nobitmap' in configs and 'heap_kvlsm' in configs:
    pairs.append(('heap_nobitmap', 'heap_kvlsm'))

tsv = open(os.path.join(work, 'differences.tsv'), 'w')
P('## Differences\n')
P('Classes: A plan-only, B order-only, C physical/statistics, D documented limitation with a clear '
  'ERROR (and its follow-on errors), E catalog presence, F everything else (bug candidates; crashes first). '
  'Automatic, per differing output paragraph; a test counts under its worst class (F>D>C>E>A>B). '
  'Review by hand before trusting a class.\n')
for new_cfg, ref_cfg in pairs:
    for s in suites:
        rn, rr = allres[(new_cfg, s)], allres[(ref_cfg, s)]
        per_class = collections.Counter(); hunk_class = collections.Counter()
        lines = []
        same = 0
        for t in rn:
            fn = os.path.join(work, new_cfg, s, 'results', t + '.out')
            fr = os.path.join(work, ref_cfg, s, 'results', t + '.out')
            a, b = load(fr), load(fn)
            if a is None or b is None:
                if rn.get(t) == rr.get(t):
                    same += 1; continue
                lines.append('- `%s`: no result file to compare (%s: %s, %s: %s) -> F' % (t, ref_cfg, rr.get(t), new_cfg, rn.get(t)))
                per_class['F'] += 1
                if new_cfg == 'kvlsm':
                    tsv.write('%s\t%s\tF\tno result file to compare\n' % (s, t))
                continue
            if a == b:
                same += 1; continue
            h = diff_test(a, b, t)
            if not h:
                same += 1; continue
            w = worst({c for c, _, _ in h})
            per_class[w] += 1
            if new_cfg == 'kvlsm':
                why0 = next((why for c, why, _ in h if c == w), '')
                tsv.write('%s\t%s\t%s\t%s\n' % (s, t, w, why0.replace('\t', ' ')))
            for c, _, _ in h:
                hunk_class[c] += 1
            lines.append('- `%s` **%s** (%s: %s, %s: %s)' % (t, w, ref_cfg, rr.get(t), new_cfg, rn.get(t)))
            for c, why, ctx in h[:40]:
                lines.append('    - %s: %s  [at: `%s`]' % (c, why.replace('`', "'"), ctx.replace('`', "'")))
            if len(h) > 40:
                lines.append('    - ... %d more' % (len(h) - 40))
        P('### %s: %s vs %s\n' % (s, new_cfg, ref_cfg))
        P('%d tests give identical output; %d differ. Tests by worst class: %s. Paragraphs by class: %s.\n' % (
            same, sum(per_class.values()),
            ', '.join('%s %d' % (c, per_class[c]) for c in ORDER if per_class[c]) or 'none',
            ', '.join('%s %d' % (c, hunk_class[c]) for c in ORDER if hunk_class[c]) or 'none'))
        out.extend(lines)
        P('')

P('## Server crashes\n')
for c in configs:
    cl = load(os.path.join(work, c, 'crashes.log')) or []
    cl = [l for l in cl if l.strip()]
    P('- %s: %d crash/PANIC/TRAP log lines' % (c, len(cl)))
    for l in cl[:20]:
        P('    - `%s`' % l[:200].replace('`', "'"))
tsv.close()
print('\n'.join(out))
PY
}
classify "$WORK" "$CONFIGS" "$SUITES" >"$WORK/summary.md"
echo "upstream-tests: summary in $WORK/summary.md"
sed -n '1,/^## Differences/p' "$WORK/summary.md"

# ---------------------------------------------------------------- check -----
# CI mode: every difference must be a known, classified one.
[ "$CHECK" = 1 ] || exit 0
python3 - "$WORK" "$KNOWN" "$SUITES" <<'PY'
import os, sys

work, known_path, suites = sys.argv[1], sys.argv[2], sys.argv[3].split()
SEVERITY = {c: i for i, c in enumerate('BAECDF')}
known = {}
for n, line in enumerate(open(known_path), 1):
    if not line.strip() or line.lstrip().startswith('#'):
        continue
    f = line.split(None, 4)
    if len(f) < 4 or f[2] not in SEVERITY or not f[3].startswith('auto='):
        sys.exit('upstream-check: %s:%d: expected "suite test class auto=X reason"' % (known_path, n))
    known[(f[0], f[1])] = (f[2], f[3][5:], f[4].strip() if len(f) > 4 else '')
found = {}
tsv = os.path.join(work, 'differences.tsv')
for line in open(tsv):
    s, t, c, why = line.rstrip('\n').split('\t', 3)
    found[(s, t)] = (c, why)

bad = []
notes = []
for s in suites:
    counts = {}
    for cfg in ('heap_nobitmap', 'kvlsm'):
        log = os.path.join(work, cfg, s, 'run.log')
        counts[cfg] = sum(1 for l in open(log) if ' ... ' in l) if os.path.exists(log) else 0
    if counts['kvlsm'] == 0 or counts['kvlsm'] != counts['heap_nobitmap']:
        bad.append('%s: kvlsm ran %d tests, heap_nobitmap %d' % (s, counts['kvlsm'], counts['heap_nobitmap']))
crashes = [l for l in open(os.path.join(work, 'kvlsm', 'crashes.log')) if l.strip()] \
    if os.path.exists(os.path.join(work, 'kvlsm', 'crashes.log')) else []
if crashes:
    bad.append('the kvlsm server log reports crashes: ' + crashes[0].strip()[:200])
for k, (c, why) in sorted(found.items()):
    if k not in known and c in 'AB':
        # plans and row order move with statistics: reported, not failed
        notes.append('%s/%s differs from heap in plans or row order only (%s: %s): add it to known-differences'
                     % (k[0], k[1], c, why))
    elif k not in known:
        bad.append('%s/%s differs from heap (automatic class %s: %s) and is not in known-differences' % (k[0], k[1], c, why))
    elif SEVERITY[c] > SEVERITY[known[k][1]]:
        bad.append('%s/%s: automatic class %s, listed as auto=%s (%s): a new kind of difference' % (k[0], k[1], c, known[k][1], why))
fixed = sorted(k for k in known if k[0] in suites and k not in found)
print('upstream-check: %d tests differ from heap_nobitmap, none in an unlisted way; %d listed tests now give heap\'s output'
      % (len(found), len(fixed)) if not bad else 'upstream-check: FAILED')
for k in fixed:
    print('upstream-check: %s/%s now identical: remove it from known-differences' % k)
for n in notes:
    print('upstream-check: note: ' + n)
for b in bad:
    print('upstream-check: ' + b)
sys.exit(1 if bad else 0)
PY

