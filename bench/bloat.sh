#!/usr/bin/env bash
# bench/bloat.sh -- how big a table gets after a full backfill of every row,
# and what pg_mig's vacuum_every costs.  Starts a throwaway sandbox primary +
# streaming standby (fsync on, autovacuum on at its defaults), and for each
# round runs every variant on a fresh copy of the same table (bench/run.sh's
# "orders", VACUUM ANALYZE after the load), interleaved, then prints one
# line per run and the medians per variant.
#
#   bench/bloat.sh [--rows N] [--rounds R] [--variants "V ..."]
#
#   --rows N       rows of the table (default 1000000)
#   --rounds R     rounds; each runs every variant once (default 3)
#   --variants     which, in this order (default: update mig mig_nap1 mig_vac):
#       update         one UPDATE of every row
#       mig            pg_mig backfill, autovacuum at its defaults
#       mig_nap1       the same with autovacuum_naptime = 1s
#       mig_vac        pg_mig backfill with its default vacuum_every
#       mig_vac=N      pg_mig backfill with vacuum_every => N
#       mig_off        pg_mig backfill with vacuum_every => 0 (off)
#       manual=N:OPTS  pg_mig backfill (vacuum_every off) while this script
#                      runs VACUUM (OPTS) of the table each time the job has
#                      changed N more rows; + stands for a space in OPTS,
#                      e.g. manual=100000:INDEX_CLEANUP+OFF,TRUNCATE+OFF
#       repack         PostgreSQL 19: pg_mig backfill with its default
#                      vacuum_every, then mig_repack of the table while
#                      pgbench writes to it (2 clients, one UPDATE of a
#                      random row per transaction, from 2 s before the
#                      repack to 1 s after); repack=N: the backfill with
#                      vacuum_every => N (0: off, the most bloat)
#
# A repack variant adds a second table: heap and index sizes before the
# backfill, after it and after the repack, the repack's wall time, and the
# writers' longest wait while it ran (the longest gap between two commits,
# bench/app_gaps.sh; with the longest gap of the 2 s before as baseline).
#
# Sizes are pg_relation_size (heap), pg_indexes_size and
# pg_total_relation_size, after the job ended (and autovacuum had its
# chance while it ran).  Needs pg_mig built and installed for the
# pg_config on PATH (make install).  Output: a table on stdout; the raw
# lines also in /tmp/pgmig-bloat.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=lib.sh
. bench/lib.sh   # pgbench_end, pgbench_failed (its q is replaced below)

rows=1000000
rounds=3
variants="update mig mig_nap1 mig_vac"
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --variants) variants=$2; shift 2 ;;
        --help|-h) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "bloat.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

dir=$(mktemp -d /tmp/pgmig-bloat.XXXXXX)
chmod 755 "$dir"
trap '"$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
export SANDBOX_CONF="fsync = on
synchronous_commit = on
shared_buffers = 2GB
max_wal_size = 16GB
checkpoint_timeout = 30min
autovacuum = on
max_connections = 50"
"$root/scripts/sandbox.sh" start "$dir/sb" >/dev/null
# shellcheck disable=SC1091
. "$dir/sb/env"
echo "sandbox: primary port $PRIMARY_PORT, $rows rows, $rounds rounds: $variants" >&2

q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION pg_mig" >/dev/null

make_table() {
    q <<SQL >/dev/null
SET client_min_messages = warning;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (id bigint NOT NULL, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,
  status text NOT NULL, created_at timestamptz NOT NULL, note text);
INSERT INTO orders SELECT g, (g * 7919) % 100000, ((g * 31) % 100000) / 100.0,
  (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],
  '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', md5(g::text)
  FROM generate_series(1, $rows::bigint) g;
ALTER TABLE orders ADD PRIMARY KEY (id);
ALTER TABLE orders ADD COLUMN tracking_id text;
VACUUM ANALYZE orders;
CHECKPOINT;
SQL
}

sizes() { q -F ' ' -c "SELECT pg_relation_size('orders'), pg_indexes_size('orders'), pg_total_relation_size('orders')"; }

now() { date +%s.%N; }

# run_job EXTRA: a backfill of every row; waits for it; prints the job id
run_job() {
    local job st
    job=$(q -c "SELECT mig_start_backfill('orders', \$\$tracking_id = 'TRK-' || id\$\$,
                 where_clause => 'tracking_id IS NULL'$1)")
    for _ in $(seq 1 36000); do
        st=$(q -c "SELECT state FROM mig_jobs WHERE job_id = $job")
        case "$st" in
            succeeded) echo "$job"; return 0 ;;
            failed|cancelled) echo "bloat.sh: job $job $st" >&2; return 1 ;;
        esac
        sleep 0.1
    done
    return 1
}

# manual_vacuum N OPTS: VACUUM (OPTS) orders whenever the running job has
# changed N more rows; stops when no job runs
manual_vacuum() {
    local every=$1 opts=${2//+/ } last=0 done_rows n=0
    sleep 0.3
    while :; do
        done_rows=$(q -c "SELECT COALESCE(max(rows_done), -1) FROM mig_jobs WHERE state IN ('running', 'queued')")
        [ "$done_rows" = -1 ] && break
        if [ $((done_rows - last)) -ge "$every" ]; then
            q -c "VACUUM ($opts) orders" >/dev/null 2>&1 || true
            last=$done_rows
            n=$((n + 1))
        fi
        sleep 0.1
    done
    echo "$n" > "$dir/manual.count"
}

# repack_job: mig_repack of orders while pgbench writes to it; appends
#   heap idx wall_s longest_gap_ms baseline_gap_ms retries failed_txns
# (failed_txns: the transactions pgbench counted as failed, no commits)
# (sizes after the repack) to $dir/repack.line
repack_job() {
    local pgb t0 t1 job st op base
    printf '\\set id random(1, %d)\nUPDATE orders SET customer_id = customer_id + 1 WHERE id = :id;\n' \
        "$rows" > "$dir/write.sql"
    rm -f "$dir"/pgb.*
    pgbench -n -c 2 -T 36000 -f "$dir/write.sql" -l --log-prefix="$dir/pgb" > "$dir/pgbench.out" 2>&1 &
    pgb=$!
    sleep 2
    t0=$(date +%s%6N)
    job=$(q -c "SELECT mig_repack('orders')")
    while :; do
        st=$(q -c "SELECT state FROM mig_jobs WHERE job_id = $job")
        case "$st" in
            queued|running) sleep 0.2 ;;
            succeeded) break ;;
            *) pgbench_end "$pgb"
               echo "bloat.sh: repack job $job $st: $(q -c "SELECT last_error FROM mig_jobs WHERE job_id = $job")" >&2
               return 1 ;;
        esac
    done
    t1=$(date +%s%6N)
    sleep 1
    pgbench_end "$pgb"
    sleep 0.3
    if ! read -r op base < <("$root/bench/app_gaps.sh" "$dir/pgb" "$t0" "$t1"); then
        echo "bloat.sh: pgbench committed nothing while the repack ran: $(cat "$dir/pgbench.out")" >&2
        return 1
    fi
    read -r heap idx _ < <(sizes)
    printf '%s %s %.1f %.0f %.0f %s %s\n' "$heap" "$idx" "$(echo "($t1 - $t0) / 1000000" | bc -l)" \
        "$(( op / 1000 ))" "$(( base / 1000 ))" \
        "$(q -c "SELECT retries FROM mig_jobs WHERE job_id = $job")" "$(pgbench_failed "$dir/pgb")" > "$dir/repack.line"
}

out=/tmp/pgmig-bloat.tsv
rout=/tmp/pgmig-bloat-repack.tsv
: > "$out"
: > "$rout"
for round in $(seq 1 "$rounds"); do
    for v in $variants; do
        make_table
        read -r heap0 idx0 total0 < <(sizes)
        extra=""
        vacuums=""
        case "$v" in
            mig_nap1)
                q -c "ALTER SYSTEM SET autovacuum_naptime = '1s'" -c "SELECT pg_reload_conf()" >/dev/null ;;
        esac
        vac0=$(q -c "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'orders'::regclass")
        wal0=$(q -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        t0=$(now)
        case "$v" in
            update)
                q -c "UPDATE orders SET tracking_id = 'TRK-' || id WHERE tracking_id IS NULL" >/dev/null ;;
            mig|mig_nap1)
                job=$(run_job ", vacuum_every => 0") ;;
            mig_off)
                job=$(run_job ", vacuum_every => 0") ;;
            mig_vac)
                job=$(run_job "") ;;
            mig_vac=*)
                job=$(run_job ", vacuum_every => ${v#mig_vac=}") ;;
            repack)
                job=$(run_job "") ;;
            repack=*)
                job=$(run_job ", vacuum_every => ${v#repack=}") ;;
            manual=*)
                spec=${v#manual=}
                manual_vacuum "${spec%%:*}" "${spec#*:}" &
                mpid=$!
                job=$(run_job ", vacuum_every => 0")
                wait "$mpid"
                vacuums=$(cat "$dir/manual.count") ;;
            *) echo "bloat.sh: unknown variant $v" >&2; exit 2 ;;
        esac
        t1=$(now)
        wal=$(q -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn - $wal0")
        case "$v" in
            mig_nap1)
                q -c "ALTER SYSTEM RESET autovacuum_naptime" -c "SELECT pg_reload_conf()" >/dev/null ;;
        esac
        # the worker's VACUUMs count as manual ones (not autovacuum's)
        [ -n "$vacuums" ] || vacuums=$(( $(q -c "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'orders'::regclass") - vac0 ))
        throttled=-
        [ "$v" = update ] || throttled=$(q -c "SELECT count(*) FROM mig_job_events WHERE job_id = $job AND event = 'throttled'")
        autovacs=$(q -c "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'orders'::regclass")
        read -r heap1 idx1 total1 < <(sizes)
        secs=$(echo "$t1 - $t0" | bc -l)
        rate=$(echo "$rows / $secs" | bc -l)
        printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\t%s\t%s\n' "$v" "$round" \
            "$heap0" "$heap1" "$idx0" "$idx1" "$total0" "$total1" "$secs" "$rate" \
            "${vacuums:--}" "$autovacs" "$wal" "$throttled" >> "$out"
        tail -1 "$out" >&2
        case "$v" in
            repack|repack=*)
                repack_job
                read -r heap2 idx2 rsecs gap basegap retries failed < "$dir/repack.line"
                printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$round" \
                    "$heap0" "$heap1" "$heap2" "$idx0" "$idx1" "$idx2" "$rsecs" "$gap" "$basegap" "$retries" \
                    "$failed" >> "$rout"
                tail -1 "$rout" >&2 ;;
        esac
    done
done

# medians per variant
python3 - "$out" "$variants" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| variant | heap before → after (MB) | heap × | indexes × | total × | s | rows/s | WAL (MB) | VACUUMs (pg_mig's or manual) | autovacuums | throttled |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for v in sys.argv[2].split():
    rs = [r for r in rows if r[0] == v]
    if not rs:
        continue
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    mb = lambda x: x / 1048576
    print("| %s | %.0f → %.0f | %.2f | %.2f | %.2f | %.1f | %.0f | %.0f | %s | %s | %s |" % (
        v, mb(med(2)), mb(med(3)), med(3) / med(2), med(5) / med(4), med(7) / med(6),
        med(8), med(9), mb(med(12)), "/".join(r[10] for r in rs), "/".join(r[11] for r in rs), "/".join(r[13] for r in rs)))
PY

# the repack variants: sizes before the backfill, after it, after the repack
if [ -s "$rout" ]; then
    echo
    python3 - "$rout" "$variants" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| variant | heap before → backfilled → repacked (MB) | heap × after the repack | indexes before → backfilled → repacked (MB) | repack s | writers' longest wait (ms) | baseline wait (ms) | retries | writers' transactions failed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for v in sys.argv[2].split():
    rs = [r for r in rows if r[0] == v]
    if not rs:
        continue
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    mb = lambda x: x / 1048576
    print("| %s | %.0f → %.0f → %.0f | %.2f | %.0f → %.0f → %.0f | %.1f | %s | %s | %s | %s |" % (
        v, mb(med(2)), mb(med(3)), mb(med(4)), med(4) / med(2), mb(med(5)), mb(med(6)), mb(med(7)),
        med(8), "/".join(r[9] for r in rs), "/".join(r[10] for r in rs), "/".join(r[11] for r in rs),
        "/".join(r[12] for r in rs)))
PY
fi
