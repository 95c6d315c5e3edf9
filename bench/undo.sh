#!/usr/bin/env bash
# bench/undo.sh -- the cost of keep_old_values and the speed of mig_revert
# (issue 14), on a throwaway sandbox primary + standby: the same overwriting
# backfill of ROWS rows with and without keep_old_values (fresh identical
# tables, VACUUM FREEZE ANALYZE + CHECKPOINT first), then the revert of the
# kept one; ROUNDS rounds, medians; writes bench/RESULTS_UNDO.md.
#
#   bench/undo.sh [ROWS] [ROUNDS]        defaults 1000000 and 3
#
# Rates and WAL are the jobs' own figures in mig_jobs (rows_done over
# finished_at - started_at; wal_bytes, the WAL of the chunk transactions).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
rounds=${2:-3}
dir=$(mktemp -d /tmp/pgmig-undo-bench.XXXXXX)
chmod 755 "$dir"
trap 'bash scripts/sandbox.sh stop "$dir/sb" --remove >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash scripts/sandbox.sh start "$dir/sb" >/dev/null
# shellcheck disable=SC1091
. "$dir/sb/env"
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE EXTENSION pg_mig"
set_clause="price = price * 3 + 1, label = upper(label) || '!'"

run_job() {  # $1 = SQL that starts a job; prints "rows_per_sec wal_bytes rows"
    local job
    job=$(q "$1")
    q "SELECT mig_wait($job, '1h')" >/dev/null
    q "SELECT round(rows_done / extract(epoch FROM finished_at - started_at)), wal_bytes, rows_done
         FROM mig_jobs WHERE job_id = $job AND state = 'succeeded'" | tr '|' ' '
}

: > "$dir/plain"; : > "$dir/keep"; : > "$dir/revert"
for r in $(seq 1 "$rounds"); do
    for t in plain keep; do
        q "DROP TABLE IF EXISTS b_$t; CREATE TABLE b_$t (id bigint PRIMARY KEY, price numeric(12,2),
             label text, pad text) WITH (autovacuum_enabled = off);
           INSERT INTO b_$t SELECT g, g * 0.25, 'label-' || g, repeat('p', 60) FROM generate_series(1, $rows) g"
        q "VACUUM (FREEZE, ANALYZE) b_$t"
    done
    q "CHECKPOINT"
    run_job "SELECT mig_start_backfill('b_plain', \$\$$set_clause\$\$)" >> "$dir/plain"
    q "CHECKPOINT"
    keep_job=$(q "SELECT mig_start_backfill('b_keep', \$\$$set_clause\$\$, keep_old_values => true)")
    q "SELECT mig_wait($keep_job, '1h')" >/dev/null
    q "SELECT round(rows_done / extract(epoch FROM finished_at - started_at)), wal_bytes, rows_done
         FROM mig_jobs WHERE job_id = $keep_job AND state = 'succeeded'" | tr '|' ' ' >> "$dir/keep"
    kept_bytes=$(q "SELECT kept_bytes FROM mig_jobs WHERE job_id = $keep_job")
    q "CHECKPOINT"
    run_job "SELECT mig_revert($keep_job)" >> "$dir/revert"
    [ "$(q "SELECT count(*) FROM b_keep WHERE price <> id * 0.25 OR label <> 'label-' || id")" = 0 ] ||
        { echo "undo.sh: the revert left rows changed" >&2; exit 1; }
    q "SELECT mig_forget($keep_job)"
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
p_rate=$(col 1 "$dir/plain"); p_wal=$(col 2 "$dir/plain")
k_rate=$(col 1 "$dir/keep"); k_wal=$(col 2 "$dir/keep")
r_rate=$(col 1 "$dir/revert"); r_wal=$(col 2 "$dir/revert")
changed=$(col 3 "$dir/keep")
server=$(q "SELECT version()")
awk -v pr="$p_rate" -v pw="$p_wal" -v kr="$k_rate" -v kw="$k_wal" -v rr="$r_rate" -v rw="$r_wal" \
    -v n="$changed" -v rows="$rows" -v rounds="$rounds" -v kb="$kept_bytes" -v server="$server" \
    -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" -v cores="$(nproc)" '
function mb(b) { return sprintf("%.0f MB", b / 1048576) }
BEGIN {
    printf "# Undo: the cost of keep_old_values, the speed of mig_revert\n\n"
    printf "Written by `bench/undo.sh %d %d` on %s.\n\n", rows, rounds, when
    printf "- machine: %d cores; server: %s; one streaming standby (scripts/sandbox.sh defaults)\n", cores, server
    printf "- table: id bigint primary key, price numeric(12,2), label text, pad text (60 bytes), %d rows; the backfill sets `price = price * 3 + 1, label = upper(label) || '"'"'!'"'"'` on every row (defaults: chunk_time 50ms)\n", rows
    printf "- %d round(s), a fresh identical table per job, VACUUM (FREEZE, ANALYZE) + CHECKPOINT before each; medians of the jobs'"'"' own rows/s and WAL (mig_jobs)\n\n", rounds
    printf "| job | rows/s | vs plain | WAL | WAL per row | vs plain |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
    printf "| backfill | %d | 1.00× | %s | %.0f B | 1.00× |\n", pr, mb(pw), pw / n
    printf "| backfill, keep_old_values | %d | %.2f× | %s | %.0f B | %.2f× |\n", kr, kr / pr, mb(kw), kw / n, kw / pw
    printf "| mig_revert of it | %d | %.2f× | %s | %.0f B | %.2f× |\n\n", rr, rr / pr, mb(rw), rw / n, rw / pw
    printf "The kept table of one job: %s for %d rows. Targets (issue 14): keep_old_values at most 1.6× the WAL (%s) and at least 0.6× the speed (%s) of the plain backfill.\n",
        mb(kb), n, (kw / pw <= 1.6 ? "met" : "missed"), (kr / pr >= 0.6 ? "met" : "missed")
}' > bench/RESULTS_UNDO.md
cat bench/RESULTS_UNDO.md
