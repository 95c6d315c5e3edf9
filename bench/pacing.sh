#!/usr/bin/env bash
# bench/pacing.sh -- pacing near the physical limit (issue 28), every
# figure from one run on the same data.  Starts a throwaway sandbox
# primary + streaming standby (fsync on; autovacuum off, so that the lag
# is the job's WAL and nobody else's), then:
#
#   ceiling  a fixed-rate loop in the server paced evenly (sub-chunks of
#            --sub-rows rows, COMMIT (flushed) per sub-chunk, each started on time for
#            R rows/s, so that its WAL flows at a steady rate, not a chunk's
#            at once) stepped over rates, then bisected --refine times
#            between the highest rate within the budget and the lowest
#            above it: the highest steady rate whose peak standby lag stays
#            within 2 MB, and within 16 MB
#   lag      pg_mig with max_lag_bytes 2 MB and 16 MB: rows/s and peak lag,
#            paced (0.4) and stop/go (pg_mig.lag_pacing = off, as 0.3)
#   latency  pgbench (one UPDATE per transaction) at 4 clients: baseline
#            p99; pg_mig with max_app_latency at 1.5x that; pg_mig with
#            fixed nice_ratio 0, 1, 2, 4, 8, 16, 32 (the fastest that keeps the
#            p99 of the max_app_latency run); pgbench 2 -> 8 clients
#            half-way, without a job, with max_app_latency and with each
#            fixed nice_ratio (the fastest that keeps each half's p99
#            within max_app_latency's worse half)
#
# The peak lag is sampled every 10 ms in the server (pg_stat_replication,
# insert position minus replay position).  The standby's replay share is
# the CPU time of its startup process over the wall-clock time of a run.
#
#   bench/pacing.sh [--rows N] [--seconds S] [--rates "R ..."] [--quick]
#                   [--sub-rows N] [--refine N]
#                   [--parts "ceiling lag latency"] [--rounds N] [--budgets "2 16"] [--out FILE]
#
#   --rows N      rows of the table (default 1000000)
#   --lat-rows N  rows of the latency part's own table (default 8000000:
#                 more than any job walks in a window)
#   --seconds S   length of each pgbench window (default 20)
#   --rates       the ceiling's rates in rows/s (default 5000 ... 240000)
#   --sub-rows N  ceiling: rows per sub-chunk of the fixed-rate loop (default
#                 250, about 100 kB of WAL: 1/20 of 2 MB)
#   --refine N    ceiling: bisections per budget between the highest rate
#                 within it and the lowest above it (default 3)
#   --quick       300000 rows, 8 s windows, 5 rates: a smoke test
#   --parts       which parts to run (default all three)
#   --rounds N    lag: N rounds, paced and stop/go in turn first, the table
#                 vacuumed before each run; latency: N rounds of
#                 max_app_latency and the fixed nice_ratios, steady and
#                 through the load change; the medians
#                 (default 1)
#   --budgets     lag: the budgets in MB (default "2 16")
#   --out FILE    the report (default bench/RESULTS-pacing.md)
#
# Needs pg_mig built and installed for the pg_config on PATH, pgbench and
# psql (PGMIG_PG=15 . scripts/pgenv.sh; pg_resolve; pg_install_extension).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rows=1000000
lat_rows=8000000
secs=20
rates="5000 10000 20000 40000 80000 120000 160000 240000"
out=$root/bench/RESULTS-pacing.md
mode="full run"
parts="ceiling lag latency"
rounds=1
budgets="2 16"
sub_rows=250
refine=3
while [ $# -gt 0 ]; do
    case "$1" in
        --parts) parts=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --budgets) budgets=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --lat-rows) lat_rows=$2; shift 2 ;;
        --seconds) secs=$2; shift 2 ;;
        --rates) rates=$2; shift 2 ;;
        --sub-rows) sub_rows=$2; shift 2 ;;
        --refine) refine=$2; shift 2 ;;
        --quick) rows=300000; lat_rows=1000000; secs=8; rates="5000 10000 20000 40000 80000"; mode="--quick"; shift ;;
        --out) out=$2; shift 2 ;;
        --help|-h) sed -n '2,52p' "$0"; exit 0 ;;
        *) echo "pacing.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

dir=$(mktemp -d /tmp/pgmig-pacing.XXXXXX)
chmod 755 "$dir"
trap '"$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
export SANDBOX_CONF="fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 16GB
checkpoint_timeout = 30min
autovacuum = off
max_connections = 50
track_activities = on"
"$root/scripts/sandbox.sh" start "$dir/sb" >/dev/null
# shellcheck disable=SC1091
. "$dir/sb/env"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "sandbox: primary port $PRIMARY_PORT, standby port $STANDBY_PORT; $rows rows, windows of $secs s" >&2

has() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
qs() { psql -XAtq -v ON_ERROR_STOP=1 -p "$STANDBY_PORT" "$@"; }

q <<SQL >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION pg_mig;
CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text);
INSERT INTO t (id, pad) SELECT g, repeat('p', 100) FROM generate_series(1, $rows) g;
CREATE TABLE app (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
INSERT INTO app (id) SELECT generate_series(1, 100000);
VACUUM ANALYZE t;
VACUUM ANALYZE app;
CREATE UNLOGGED TABLE bench_ctl (running bool);
INSERT INTO bench_ctl VALUES (false);
-- peak_lag: the largest lag of any standby, sampled every 10 ms while
-- bench_ctl.running (no WAL of its own)
CREATE FUNCTION peak_lag() RETURNS bigint LANGUAGE plpgsql AS \$\$
DECLARE peak bigint := 0; l bigint;
BEGIN
  WHILE NOT (SELECT running FROM bench_ctl) LOOP PERFORM pg_sleep(0.005); END LOOP;
  LOOP
    EXIT WHEN NOT (SELECT running FROM bench_ctl);
    SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn)), 0)::bigint
      INTO l FROM pg_stat_replication;
    peak := greatest(peak, l);
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN peak;
END \$\$;
-- fixed_rate: n = n + 1 over keys lo..hi in sub-chunks of sub rows,
-- COMMIT per sub-chunk, each started when the rate allows it: the WAL
-- flows evenly at rate rows/s (sub rows at a time)
CREATE PROCEDURE fixed_rate(rate int, lo bigint, hi bigint, sub int) LANGUAGE plpgsql AS \$\$
DECLARE s bigint := lo; t0 timestamptz := clock_timestamp(); done bigint := 0; ahead float8;
BEGIN
  WHILE s <= hi LOOP
    UPDATE t SET n = n + 1 WHERE id >= s AND id < s + sub AND id <= hi;
    COMMIT;
    done := done + sub; s := s + sub;
    ahead := done::float8 / rate - extract(epoch FROM clock_timestamp() - t0);
    IF ahead > 0 THEN PERFORM pg_sleep(ahead); END IF;
  END LOOP;
END \$\$;
SQL

startup_pid=$(qs -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'")
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

catch_up() {
    local lsn
    lsn=$(q -c "SELECT pg_current_wal_insert_lsn()")
    for _ in $(seq 1 1200); do
        [ "$(qs -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0
        sleep 0.1
    done
    echo "pacing.sh: the standby did not catch up" >&2
    return 1
}

# measure CMD...: runs CMD with the lag sampler around it; sets peak (bytes),
# wall (s) and replay (the startup process's CPU share)
measure() {
    q -c "CHECKPOINT" >/dev/null
    catch_up
    q -c "UPDATE bench_ctl SET running = false" >/dev/null
    q -c "SELECT peak_lag()" >"$dir/peak" &
    local sampler=$! t0 t1 c0 c1
    q -c "UPDATE bench_ctl SET running = true" >/dev/null
    c0=$(cpu_ticks "$startup_pid")
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    catch_up
    c1=$(cpu_ticks "$startup_pid")
    q -c "UPDATE bench_ctl SET running = false" >/dev/null
    wait "$sampler"
    peak=$(cat "$dir/peak")
    wall=$(echo "$t1 - $t0" | bc -l)
    replay=$(echo "($c1 - $c0) / $hz / $wall" | bc -l)
}

mb() { echo "scale=2; $1 / 1048576" | bc -l; }
f0() { printf '%.0f' "$1"; }
f2() { printf '%.2f' "$1"; }

# ---- ceiling ----
declare -A ceil_rate
ceiling_rows=""
ceil_runs=""   # lines "target peak"
# ceiling_run R: the fixed-rate loop at R rows/s for about 6 s
ceiling_run() {
    local r=$1 n b prev
    n=$((r * 6))
    [ "$n" -gt "$rows" ] && n=$rows
    # each sub-chunk's WAL flushed at its commit (synchronous_commit local),
    # as pg_mig's worker flushes a chunk's under a budget in bytes: the lag
    # is what the standby has yet to replay, not WAL waiting for the WAL
    # writer here (with synchronous_commit off the loop's peaks were set by
    # wal_writer_flush_after, 1.8-4.7 MB at any rate from 20,000 rows/s)
    measure q -c "SET synchronous_commit = local" -c "CALL fixed_rate($r, 1, $n, $sub_rows)"
    achieved=$(echo "$n / $wall" | bc -l)
    echo "ceiling: target $r rows/s, achieved $(f0 "$achieved"), peak lag $(mb "$peak") MB, replay $(f2 "$replay")" >&2
    ceiling_rows+="| $r | $(f0 "$achieved") | $(mb "$peak") MB | $(f2 "$replay") |"$'\n'
    for b in $budgets; do
        if [ "$peak" -le $((b * 1048576)) ]; then
            prev=${ceil_rate[$b]:-0}
            [ "$(echo "$achieved > $prev" | bc -l)" = 1 ] && ceil_rate[$b]=$achieved
        fi
    done
    ceil_runs+="$r $peak"$'\n'
}
if has ceiling; then
    for r in $rates; do ceiling_run "$r"; done
    # bisect between the highest target within each budget and the lowest
    # above it
    for b in $budgets; do
        for _ in $(seq 1 "$refine"); do
            # the highest target within b, the lowest above it that is not
            ok=$(printf '%s' "$ceil_runs" | awk -v b=$((b * 1048576)) 'NF && $2 <= b && $1 > m { m = $1 } END { print m + 0 }')
            fail=$(printf '%s' "$ceil_runs" | awk -v b=$((b * 1048576)) -v ok="$ok" \
                'NF && $2 > b && $1 > ok && (m == 0 || $1 < m) { m = $1 } END { print m + 0 }')
            [ "$ok" -gt 0 ] && [ "$fail" -gt "$ok" ] || break
            mid=$(( (ok + fail) / 2 ))
            [ $((fail - ok)) -le $((ok / 20)) ] && break   # within 5 %: enough
            ceiling_run "$mid"
        done
    done
fi

# ---- pg_mig under a lag budget, paced and stop/go ----
run_job() {  # run_job ARGS: a backfill of every row, to its end
    local job
    job=$(q -c "SELECT mig_start_backfill('t', 'n = n + 1', vacuum_every => 0 $1)")
    q -c "SELECT mig_wait($job)" >/dev/null
    job_rate=$(q -c "SELECT rows_done / extract(epoch FROM finished_at - started_at) FROM mig_jobs WHERE job_id = $job")
    job_events=$(q -c "SELECT count(*) FROM mig_job_events WHERE job_id = $job AND event IN ('throttled', 'unthrottled', 'paced')")
    job_chunk=$(q -c "SELECT (keys_done / greatest(chunks_done, 1))::bigint FROM mig_jobs WHERE job_id = $job")
    job_throttled=$(q -c "SELECT round(throttled_seconds::numeric, 1) FROM mig_jobs WHERE job_id = $job")
}
# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A runs  # "budget pacing" -> lines "rate peak replay events chunk throttled"
lag_rows=""
if has lag; then
    for round in $(seq 1 "$rounds"); do
        order="on off"
        [ $((round % 2)) = 0 ] && order="off on"
        for b in $budgets; do
            for pacing in $order; do
                q -c "ALTER SYSTEM SET pg_mig.lag_pacing = $pacing" -c "SELECT pg_reload_conf()" >/dev/null
                # every run starts from the same table: the dead rows of the
                # runs before pruned away (else the later runs find room for
                # HOT updates that the first did not)
                [ "$rounds" -gt 1 ] && q -c "VACUUM t" >/dev/null
                sleep 1
                measure run_job ", max_lag_bytes => $b * 1048576"
                echo "lag round $round, $b MB, pacing $pacing: $(f0 "$job_rate") rows/s, peak $(mb "$peak") MB, $job_events events, $job_chunk keys per chunk, throttled $job_throttled s" >&2
                runs["$b $pacing"]+="$job_rate $peak $replay $job_events $job_chunk $job_throttled"$'\n'
            done
        done
    done
    q -c "ALTER SYSTEM RESET pg_mig.lag_pacing" -c "SELECT pg_reload_conf()" >/dev/null
    for b in $budgets; do
        for pacing in on off; do
            col() { printf '%s' "${runs["$b $pacing"]}" | awk -v c="$1" 'NF { print $c }' | median; }
            job_rate=$(col 1) peak=$(col 2) replay=$(col 3) job_events=$(col 4) job_chunk=$(col 5) job_throttled=$(col 6)
            c=${ceil_rate[$b]:-0}
            ratio=$( [ "$(f0 "$c")" -gt 0 ] && f2 "$(echo "$job_rate / $c" | bc -l)" || echo "n/a")
            name=$([ $pacing = on ] && echo "paced (0.4)" || echo "stop/go (0.3)")
            lag_rows+="| $b MB | $name | $(f0 "$job_rate") | ${ratio}x | $(mb "$peak") MB | $(f2 "$(echo "$peak / ($b * 1048576)" | bc -l)")x | $(f2 "$replay") | $(f0 "$job_events") | $(f0 "$job_chunk") | $job_throttled s |"$'\n'
        done
    done
fi

# ---- latency under pgbench ----
cat >"$dir/app.sql" <<'EOF'
\set id random(1, 100000)
UPDATE app SET v = v + 1 WHERE id = :id;
EOF
# pgbench_run CLIENTS SECONDS TAG: sets tps and p99 (ms)
pgbench_run() {
    rm -f "$dir"/log.*
    local o
    o=$(pgbench -n -c "$1" -j 2 -T "$2" -f "$dir/app.sql" -l --log-prefix="$dir/log" 2>&1)
    tps=$(echo "$o" | awk '/^tps = / { print $3 }' | head -1)
    p99=$(cat "$dir"/log.* | awk '{ print $3 }' | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", a[i] / 1000 }')
}
# job_during CLIENTS ARGS: a backfill running through one pgbench window;
# sets job_rate (rows/s over the window), tps, p99
job_during() {
    local job r0 r1
    lat_job_start "$2"
    r0=$(lat_job_rows)
    pgbench_run "$1" "$secs"
    r1=$(lat_job_rows)
    lat_job_end "$2"
    job_rate=$(echo "($r1 - $r0) / $secs" | bc -l)
}
# lat_job_start ARGS: sets job, a backfill of tl with ARGS, a second under
# way.  Every job starts from the same table: the dead rows of the jobs
# before pruned away (the first job ran on a clean table, the later ones on
# the dead rows of all before)
lat_job_start() {
    q -c "VACUUM tl" >/dev/null
    job=$(q -c "SELECT mig_start_backfill('tl', 'n = n + 1', vacuum_every => 0, max_lag_bytes => 0 $1)")
    sleep 1
}
lat_job_rows() { q -c "SELECT rows_done FROM mig_jobs WHERE job_id = $job"; }
# lat_job_end ARGS: reports a job that walked all of tl (its figures are
# too low), and cancels it
lat_job_end() {
    if [ "$(q -c "SELECT state FROM mig_jobs WHERE job_id = $job")" = succeeded ]; then
        echo "pacing.sh: job $job ($1) walked all of tl within the window: its figures are too low (--lat-rows)" >&2
        lat_short="yes"
    fi
    cancel "$job"
}
lat_short=""
cancel() {
    q -c "SELECT mig_cancel(job_id) FROM mig_jobs WHERE job_id = $1 AND state IN ('queued', 'running', 'paused')" >/dev/null
    q -c "SELECT mig_wait($1, '60s')" >/dev/null
}
if has latency; then
# a table of its own, large enough that no job walks all of it within a
# window (on a quiet machine the free pace is 200-300k rows/s: a 1M-row
# table was done in 4 s, and the rest of the window had no job at all)
q <<SQL >/dev/null
CREATE TABLE tl (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text);
INSERT INTO tl (id, pad) SELECT g, repeat('p', 100) FROM generate_series(1, $lat_rows) g;
VACUUM ANALYZE tl;
SQL
q -c "CHECKPOINT" >/dev/null
catch_up
pgbench_run 4 "$secs"
base_tps=$tps base_p99=$p99
# in whole milliseconds, the resolution of pg_mig's interval knobs (1.7 ms
# is 1 ms to the job)
target_ms=$(echo "$base_p99 * 1.5" | bc -l)
target=$(printf '%.0f' "$target_ms")
[ "$target" -ge 1 ] || target=1
echo "latency: baseline $(f0 "$base_tps") TPS, p99 $base_p99 ms; max_app_latency $target ms" >&2
# max_app_latency and each fixed nice_ratio, --rounds times, each round
# starting one further along the list (the order's effects spread out):
# the medians of rows/s, TPS and p99
configs=("max_app_latency => '$target ms'")
names=("max_app_latency $target ms")
for r in 0 1 2 4 8 16 32; do configs+=("nice_ratio => $r"); names+=("nice_ratio $r"); done
declare -A lat  # config index -> lines "rate tps p99"
for round in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((${#configs[@]} - 1))); do
        i=$(( (k + round - 1) % ${#configs[@]} ))
        job_during 4 ", ${configs[$i]}"
        echo "latency round $round: ${names[$i]}: $(f0 "$job_rate") rows/s, $(f0 "$tps") TPS, p99 $p99 ms" >&2
        lat[$i]+="$job_rate $tps $p99"$'\n'
    done
done
# medcol ARRAY I C: the median of column C of the lines in ARRAY[I]
medcol() { local -n lines=$1; printf '%s' "${lines[$2]}" | awk -v c="$3" 'NF { print $c }' | median; }
col() { medcol lat "$@"; }
lat_rate=$(col 0 1) lat_tps=$(col 0 2) lat_p99=$(col 0 3)
lat_rows="| none (baseline) | - | $(f0 "$base_tps") | $base_p99 ms |"$'\n'
best_nice="" best_rate=0
for i in $(seq 0 $((${#configs[@]} - 1))); do
    rate=$(col "$i" 1) tps=$(col "$i" 2) p99=$(printf '%.2f' "$(col "$i" 3)")
    lat_rows+="| ${names[$i]} | $(f0 "$rate") | $(f0 "$tps") | $p99 ms |"$'\n'
    if [ "$i" -gt 0 ] && [ "$(echo "$p99 <= $lat_p99" | bc -l)" = 1 ] &&
       [ "$(echo "$rate > $best_rate" | bc -l)" = 1 ]; then
        best_nice=${names[$i]#nice_ratio } best_rate=$rate
    fi
done
lat_p99=$(printf '%.2f' "$lat_p99")
# the load changes half-way: 2 clients, then 8; first each without a job;
# then max_app_latency and each fixed nice_ratio through the same change,
# --rounds times as above: a fixed ratio has to be chosen for the heavier
# half, and wastes the lighter one
half=$((secs / 2))
pgbench_run 2 "$half"; base_p99_2=$p99 base_tps_2=$tps
pgbench_run 8 "$half"; base_p99_8=$p99 base_tps_8=$tps
echo "latency: without a job, 2 clients p99 $base_p99_2 ms, 8 clients p99 $base_p99_8 ms" >&2
# load_change ARGS: one job through both halves; sets rate_2, rate_8 (rows/s
# of each half), tps_2, tps_8, p99_2, p99_8
load_change() {
    local job r0 r1 r2
    lat_job_start "$1"
    r0=$(lat_job_rows)
    pgbench_run 2 "$half"; p99_2=$p99 tps_2=$tps
    r1=$(lat_job_rows)
    pgbench_run 8 "$half"; p99_8=$p99 tps_8=$tps
    r2=$(lat_job_rows)
    lat_job_end "$1"
    rate_2=$(echo "($r1 - $r0) / $half" | bc -l) rate_8=$(echo "($r2 - $r1) / $half" | bc -l)
}
declare -A chg  # config index -> lines "rate_2 rate_8 tps_2 tps_8 p99_2 p99_8"
for round in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((${#configs[@]} - 1))); do
        i=$(( (k + round - 1) % ${#configs[@]} ))
        load_change ", ${configs[$i]}"
        echo "load change round $round: ${names[$i]}: 2 clients $(f0 "$rate_2") rows/s p99 $p99_2 ms; 8 clients $(f0 "$rate_8") rows/s p99 $p99_8 ms" >&2
        chg[$i]+="$rate_2 $rate_8 $tps_2 $tps_8 $p99_2 $p99_8"$'\n'
    done
done
ccol() { medcol chg "$@"; }
# the worse half of max_app_latency's p99: the fixed ratio that keeps the
# same p99 keeps each half within it
chg_p99=$(printf '%.2f' "$(echo "$(ccol 0 5) $(ccol 0 6)" | awk '{ print ($1 > $2 ? $1 : $2) }')")
chg_rows="" chg_best="" chg_best_rate=0
for i in $(seq 0 $((${#configs[@]} - 1))); do
    r2=$(ccol "$i" 1) r8=$(ccol "$i" 2) p2=$(printf '%.2f' "$(ccol "$i" 5)") p8=$(printf '%.2f' "$(ccol "$i" 6)")
    both=$(echo "($r2 + $r8) / 2" | bc -l)
    [ "$i" = 0 ] && chg_rate=$both
    chg_rows+="| ${names[$i]} | $(f0 "$r2") | $(f0 "$(ccol "$i" 3)") | $p2 ms | $(f0 "$r8") | $(f0 "$(ccol "$i" 4)") | $p8 ms | $(f0 "$both") |"$'\n'
    if [ "$i" -gt 0 ] && [ "$(echo "$p2 <= $chg_p99 && $p8 <= $chg_p99" | bc -l)" = 1 ] &&
       [ "$(echo "$both > $chg_best_rate" | bc -l)" = 1 ]; then
        chg_best=${names[$i]#nice_ratio } chg_best_rate=$both
    fi
done
fi

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "# Pacing benchmark (issue 28)"
    echo
    echo "Written by \`bench/pacing.sh\` ($mode: $rows rows, pgbench windows of $secs s; parts: $parts; $rounds round(s)), started $started,"
    echo "every figure from this one run. Machine: $(nproc) cores ($cpu), shared with other work"
    echo "while it ran; primary and standby on the same machine; fsync on, autovacuum off."
    echo "Peak lag: sampled every 10 ms in the server (insert position minus the standby's"
    echo "replay position). Replay share: the standby's startup process CPU time over the run's"
    echo "wall-clock time."
    if has ceiling; then
    echo
    echo "## The ceiling: a fixed-rate loop in the server, paced evenly ($sub_rows-row sub-chunks)"
    echo
    echo "| target rows/s | achieved rows/s | peak lag | replay share |"
    echo "| --- | --- | --- | --- |"
    printf '%s' "$ceiling_rows"
    echo
    for b in $budgets; do printf 'Ceiling within %s MB: %s rows/s. ' "$b" "$(f0 "${ceil_rate[$b]:-0}")"; done
    echo
    fi
    if has lag; then
    echo
    echo "## pg_mig under max_lag_bytes"
    echo
    [ "$rounds" -gt 1 ] && echo "Medians of $rounds rounds (paced and stop/go first in turn; \`VACUUM t\` before each run)." && echo
    echo "| budget | pacing | rows/s | vs ceiling | peak lag | vs budget | replay share | throttled/unthrottled/paced events | keys per chunk | throttled |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s' "$lag_rows"
    fi
    if has latency; then
    echo
    echo "## Application latency (pgbench, one UPDATE per transaction, 4 clients)"
    echo
    [ "$rounds" -gt 1 ] && { echo "Medians of $rounds rounds (each round one further along the list first; \`VACUUM t\` before each job)."; echo; }
    echo "| job | job rows/s | TPS | p99 |"
    echo "| --- | --- | --- | --- |"
    printf '%s' "$lat_rows"
    echo
    echo "Target $target ms (1.5 x the baseline p99 is $(f2 "$target_ms") ms; in whole milliseconds, the knob's"
    echo "resolution); the run's p99 with max_app_latency: $lat_p99 ms"
    echo "($(f2 "$(echo "$lat_p99 / $target" | bc -l)") x the target). Fastest fixed nice_ratio whose p99 is at most that:"
    if [ -n "$best_nice" ]; then
        echo "$best_nice, at $(f0 "$best_rate") rows/s; max_app_latency's rows/s are $(f2 "$(echo "$lat_rate / $best_rate" | bc -l)") x that."
    else
        echo "none of 0, 1, 2, 4, 8, 16, 32."
    fi
    echo
    [ -z "$lat_short" ] || { echo "**A job walked all of its table within a window: the figures of that run are too low (--lat-rows).**"; echo; }
    echo "## The load changing half-way (pgbench 2 clients, then 8; $half s each)"
    echo
    [ "$rounds" -gt 1 ] && { echo "Medians of $rounds rounds, as above."; echo; }
    echo "Without a job: 2 clients $(f0 "$base_tps_2") TPS, p99 $base_p99_2 ms; 8 clients $(f0 "$base_tps_8") TPS, p99 $base_p99_8 ms."
    echo
    echo "| job | 2 clients: job rows/s | TPS | p99 | 8 clients: job rows/s | TPS | p99 | job rows/s, both halves |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s' "$chg_rows"
    echo
    echo "max_app_latency's worse half: p99 $chg_p99 ms. Fastest fixed nice_ratio with each half's p99 at most that:"
    if [ -n "$chg_best" ]; then
        echo "$chg_best, at $(f0 "$chg_best_rate") rows/s; max_app_latency's rows/s are $(f2 "$(echo "$chg_rate / $chg_best_rate" | bc -l)") x that."
    else
        echo "none of 0, 1, 2, 4, 8, 16, 32."
    fi
    fi
} >"$out"
echo "wrote $out" >&2
