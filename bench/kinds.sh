#!/usr/bin/env bash
# bench/kinds.sh -- the 0.3 job kinds against the plain statements they
# replace (issue 13), while an application writes: on a throwaway sandbox
# primary + streaming standby, pgbench (2 clients, one
# `UPDATE ... SET n = n + 1 WHERE id = :id` (id = random(1, rows)) per transaction,
# per-transaction log) runs against the table while each of these runs, one
# after the other, in the same run:
#
#   1. ALTER TABLE t ALTER COLUMN c SET NOT NULL   vs  mig_set_not_null('t', 'c')
#   2. CREATE INDEX ON t (c2)                      vs  mig_create_index('t', 'c2')
#   3. DELETE FROM d WHERE id % 2 = 0              vs  mig_start_delete('d', 'id % 2 = 0')
#      (on two identical tables made the same way)
#
# For each: the wall time (statement start to end; for a job, start to the
# poll that saw it finished), rows/s for the deletes, the longest gap between
# two consecutive pgbench commits (all clients merged) while it ran -- how
# long the application was blocked -- and the peak standby replay lag in
# bytes (pg_stat_replication, polled every 0.2 s). Writes
# bench/RESULTS-kinds.md (with --quick: only checks the results, writes
# nothing).
#
#   bench/kinds.sh [--rows N]      default 2000000 rows per table
#   bench/kinds.sh --quick         20000 rows: checks each operation's result
#
# Builds and installs pg_mig for the pg_config on PATH (scripts/pgenv.sh:
# PGMIG_PG=15|17|18 also works). On demand only: nothing here asserts a
# timing, and it is not part of the test suite. KINDS_KEEP=1 keeps the
# scratch directory (pgbench logs, lag samples) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rows=2000000
quick=
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows=$2; shift 2 ;;
        --quick) quick=1; rows=20000; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "kinds.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$rows" in ''|*[!0-9]*) echo "kinds.sh: --rows wants a number" >&2; exit 2 ;; esac

# shellcheck source=../scripts/pgenv.sh
. scripts/pgenv.sh
pg_resolve && pg_install_extension

# shellcheck source=lib.sh
. bench/lib.sh
# room for the deletes' WAL between checkpoints, so a forced checkpoint does
# not land in one measurement and not the other
bench_sandbox kinds-bench "${KINDS_KEEP:-}" "max_wal_size = 8GB
checkpoint_timeout = 30min"
echo "kinds.sh: sandbox primary port $PRIMARY_PORT, $rows rows, $dir" >&2

q "CREATE EXTENSION pg_mig"

# mk TABLE: id bigint primary key; c nullable but filled on every row; c2 an
# int in scattered order (the index column); n the counter pgbench bumps
mk() {
    q "DROP TABLE IF EXISTS $1;
       CREATE TABLE $1 (id bigint PRIMARY KEY, c int, c2 int, n int NOT NULL DEFAULT 0, label text);
       INSERT INTO $1 (id, c, c2, label)
         SELECT g, g % 1000, (g::bigint * 7919) % 1000003, 'label-' || g FROM generate_series(1, $rows) g"
    q "VACUUM (FREEZE, ANALYZE) $1"
    # the application's write: one row by random key per transaction
    printf '\\set id random(1, :rows)\nUPDATE %s SET n = n + 1 WHERE id = :id;\n' "$1" > "$dir/write_$1.sql"
}

# wait_job ID: polls the job's state from separate psql calls every 0.2 s
# until it has finished; fails unless it succeeded
wait_job() {
    local s
    while :; do
        s=$(q "SELECT state FROM mig_jobs WHERE job_id = $1")
        case "$s" in
            queued|running) sleep 0.2 ;;
            succeeded) return 0 ;;
            *) die "job $1 ended $s: $(q "SELECT last_error FROM mig_jobs WHERE job_id = $1")" ;;
        esac
    done
}

# measure NAME TABLE SQL [job]: pgbench writes to TABLE for 2 s, then SQL
# runs (by psql; with "job" SQL starts a job, which is waited for), then
# pgbench goes on for 1 s more. Appends to $dir/results one line
#   NAME wall_ms longest_gap_ms peak_lag_bytes baseline_gap_ms failed_txns
# where the longest gap is over every pair of consecutive commits that
# overlaps the operation, the baseline is the longest gap of the 2 s
# before it, and failed_txns the transactions pgbench counted as failed
# over the whole run (a deadlock: no commit, counted apart).
measure() {
    local name=$1 table=$2 sql=$3 mode=${4:-} t0 t1 job pgb lagp
    q "CHECKPOINT"
    : > "$dir/lag_$name"
    # the lag poller: pg_stat_replication every 0.2 s
    ( while :; do
          q "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint
               FROM pg_stat_replication" >> "$dir/lag_$name" 2>/dev/null || true
          sleep 0.2
      done ) &
    lagp=$!; bg_pids+=("$lagp")
    # the application; ended (pgbench_end, by its id) a second after the
    # operation ends
    pgbench -n -c 2 -T 3600 -D rows="$rows" -f "$dir/write_$table.sql" \
        -l --log-prefix="$dir/pgb_$name" >"$dir/pgbench_$name.out" 2>&1 &
    pgb=$!; bg_pids+=("$pgb")
    sleep 2
    t0=$(now_us)
    if [ "$mode" = job ]; then
        job=$(q "$sql")
        wait_job "$job"
    else
        q "$sql"
    fi
    t1=$(now_us)
    sleep 1
    pgbench_end "$pgb"
    kill "$lagp" 2>/dev/null || true
    wait "$lagp" 2>/dev/null || true
    bg_pids=()
    sleep 0.3   # the log files are complete once pgbench has gone
    ! grep -q 'aborted in command' "$dir/pgbench_$name.out" ||
        die "$name: a pgbench client failed: $(grep -m1 ERROR "$dir/pgbench_$name.out")"
    # the longest gap between commits (µs) during the operation, and before it
    local op base lag=0 l
    read -r op base < <("$root/bench/app_gaps.sh" "$dir/pgb_$name" "$t0" "$t1" ||
        echo "none") || true
    [ "$op" != none ] && [ -n "${base:-}" ] ||
        die "$name: pgbench committed nothing; see $dir/pgbench_$name.out"
    while read -r l; do [ "${l:-0}" -le "$lag" ] || lag=$l; done < "$dir/lag_$name"
    printf '%s %.0f %.0f %.0f %.0f %d\n' "$name" $(( (t1 - t0) / 1000 )) $(( op / 1000 )) "$lag" $(( base / 1000 )) \
        "$(pgbench_failed "$dir/pgb_$name")" >> "$dir/results"
    tail -n 1 "$dir/results" >&2
}

: > "$dir/results"
mk t
mk d_plain
mk d_mig

# 1. SET NOT NULL
measure nn_plain t "ALTER TABLE t ALTER COLUMN c SET NOT NULL"
[ "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'")" = t ] ||
    die "the plain SET NOT NULL left c nullable"
q "ALTER TABLE t ALTER COLUMN c DROP NOT NULL"
measure nn_mig t "SELECT mig_set_not_null('t', 'c')" job
[ "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'")" = t ] ||
    die "mig_set_not_null left c nullable"
[ "$(q "SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'c'")" = 0 ] ||
    die "mig_set_not_null left a check constraint behind"

# 2. CREATE INDEX
valid_index() {
    q "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 't'::regclass AND a.attname = 'c2' AND i.indnatts = 1 AND i.indisvalid"
}
drop_index() {
    local ix
    ix=$(q "SELECT i.indexrelid::regclass FROM pg_index i JOIN pg_attribute a
              ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = 't'::regclass AND a.attname = 'c2'")
    [ -z "$ix" ] || q "DROP INDEX $ix"
}
measure ix_plain t "CREATE INDEX ON t (c2)"
[ "$(valid_index)" = 1 ] || die "the plain CREATE INDEX made no valid index"
drop_index
measure ix_mig t "SELECT mig_create_index('t', 'c2')" job
[ "$(valid_index)" = 1 ] || die "mig_create_index made no valid index"
drop_index

# 3. DELETE half the table (one of two identical tables each)
check_delete() {
    [ "$(q "SELECT count(*) FILTER (WHERE id % 2 = 0) || ' ' || count(*) FROM $1")" = "0 $((rows - rows / 2))" ] ||
        die "$1: the delete left the wrong rows"
}
measure del_plain d_plain "DELETE FROM d_plain WHERE id % 2 = 0"
check_delete d_plain
measure del_mig d_mig "SELECT mig_start_delete('d_mig', 'id % 2 = 0')" job
check_delete d_mig

if [ -n "$quick" ]; then
    echo "kinds.sh --quick: every operation did what it should" >&2
    exit 0
fi

server=$(q "SELECT version()")
lock_timeout=$(q "SELECT current_setting('pg_mig.default_lock_timeout')")
awk -v rows="$rows" -v server="$server" -v cores="$(nproc)" -v lt="$lock_timeout" \
    -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" '
{ wall[$1] = $2; gap[$1] = $3; lag[$1] = $4; base[$1] = $5; failed[$1] = $6 }
function mb(b) { return b >= 1048576 ? sprintf("%.1f MB", b / 1048576) : sprintf("%.0f kB", b / 1024) }
function ratio(a, b) { return b > 0 ? sprintf("%.2f×", a / b) : "–" }
function line(label, k, p, del) {
    printf "| %s | %d ms | %s | %s | %d ms | %s | %s | %s | %d |\n", label, wall[k],
        (del ? sprintf("%.0f", (rows / 2) / (wall[k] / 1000)) : "–"),
        (k == p ? "1.00×" : ratio(wall[k], wall[p])),
        gap[k], (k == p ? "1.00×" : ratio(gap[k], gap[p])), mb(lag[k]), base[k] " ms", failed[k]
}
END {
    printf "# Job kinds vs the plain statements, under writes\n\n"
    printf "Written by `bench/kinds.sh --rows %d` on %s.\n\n", rows, when
    printf "- machine: %d cores (shared with other work while this ran); server: %s; one streaming standby (scripts/sandbox.sh defaults, max_wal_size 8GB)\n", cores, server
    printf "- tables: id bigint primary key, c int (nullable, filled on every row), c2 int (scattered values), n int, label text; %d rows each, VACUUM (FREEZE, ANALYZE) after loading, CHECKPOINT before each operation\n", rows
    printf "- the application: pgbench -n -c 2 with `\\set id random(1, %d)` + `UPDATE <table> SET n = n + 1 WHERE id = :id` per transaction and a per-transaction log, from 2 s before each operation to 1 s after it\n", rows
    printf "- pg_mig with its defaults (lock_timeout %s); a job is started by one psql call and waited for by polling mig_jobs.state every 0.2 s from separate calls\n", lt
    printf "- longest commit gap: the largest difference between consecutive pgbench commit times (both clients merged) that overlaps the operation; baseline: the same over the 2 s before it; transactions failed: those pgbench counted as failed (deadlocks) in the run, not counted as commits\n\n"
    printf "| operation | wall time | rows/s | wall vs plain | longest commit gap | gap vs plain | peak standby lag | baseline gap | application transactions failed |\n"
    printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    line("`ALTER TABLE t ALTER COLUMN c SET NOT NULL`", "nn_plain", "nn_plain", 0)
    line("`mig_set_not_null('"'"'t'"'"', '"'"'c'"'"')`", "nn_mig", "nn_plain", 0)
    line("`CREATE INDEX ON t (c2)`", "ix_plain", "ix_plain", 0)
    line("`mig_create_index('"'"'t'"'"', '"'"'c2'"'"')`", "ix_mig", "ix_plain", 0)
    line("`DELETE FROM d WHERE id % 2 = 0`", "del_plain", "del_plain", 1)
    line("`mig_start_delete('"'"'d'"'"', '"'"'id % 2 = 0'"'"')`", "del_mig", "del_plain", 1)
    printf "\nRatios are pg_mig / plain, same run. The rows/s of a delete are the %d rows it removed over its wall time.\n\n", rows / 2
    printf "What it means: the plain statements hold their lock for the whole operation (SET NOT NULL: ACCESS EXCLUSIVE for the full scan; CREATE INDEX: SHARE, so writes wait for the whole build; one DELETE: the row locks of half the table until it commits), so the application stalls for about their wall time (longest gaps %d, %d and %d ms).\n", gap["nn_plain"], gap["ix_plain"], gap["del_plain"]
    printf "The jobs take longer end to end (start, polling, steps, chunks), but a waiting DDL lock gives up after lock_timeout (%s), VALIDATE and CREATE INDEX CONCURRENTLY let writes go on, and each delete chunk commits in about chunk_time, so the longest pgbench gap stayed at %d, %d and %d ms.\n", lt, gap["nn_mig"], gap["ix_mig"], gap["del_mig"]
    printf "This is one run on a small shared machine: the baseline column (the longest gap with nothing running) shows its scheduling noise; treat gaps near it as noise, not as cost.\n"
}' "$dir/results" > "$dir/RESULTS-kinds.md"
cp "$dir/RESULTS-kinds.md" bench/RESULTS-kinds.md
cat bench/RESULTS-kinds.md
