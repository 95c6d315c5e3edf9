#!/usr/bin/env bash
# bench/change_type.sh -- mig_change_type against the plain
# `ALTER TABLE p ALTER COLUMN id TYPE bigint` it replaces (issue 25), while
# an application writes, on a throwaway sandbox primary + streaming standby.
#
# Two identical tables p_plain and p_mig (id serial primary key, customer_id,
# n, label; an index on (customer_id, id)), each with a referencing table of
# twice its rows (p_id int, indexed) with its foreign key to p(id) (the
# job carries it over; the plain ALTER rebuilds and checks it).  pgbench (2 clients; per
# transaction one of: UPDATE of a random row of p, INSERT into p through the
# sequence default, INSERT into the referencing table) writes from 2 s
# before each operation to 1 s after it:
#
#   1. ALTER TABLE p_plain ALTER COLUMN id TYPE bigint
#   2. mig_change_type('p_mig', 'id', 'bigint', cleanup => true), defaults
#
# For each: the wall time; the longest time an application transaction took
# that overlaps the operation (pgbench's per-transaction latency: what the
# application waited) and the longest gap between two commits
# (bench/app_gaps.sh); the WAL written in the window (the application's
# too) and, for the job, its walk's own WAL (mig_jobs.wal_bytes); the table
# and index sizes afterwards; and every hold of the table's ACCESS
# EXCLUSIVE lock, from a session that polls pg_locks every few ms
# (committing each time: it holds no snapshot a concurrent index build
# waits for), each hold named by the job's step that logged its end (start,
# swap, cleanup).  Writes bench/RESULTS-change-type.md.
#
#   bench/change_type.sh [--rows N]   default 2000000 (referencing: 2 N)
#   bench/change_type.sh --big N      also the job alone on a table of N
#                                     rows (20000000: the swap's lock hold as
#                                     the table grows; its referencing table
#                                     empty while there is no foreign key);
#                                     long, so optional; RESULTS is written
#                                     before it and again after it
#   bench/change_type.sh --quick      20000 rows: checks each result only,
#                                     writes nothing
#
# Builds and installs pg_mig for the pg_config on PATH (scripts/pgenv.sh;
# PGMIG_PG=15|17|18 also works).  On demand only: nothing here asserts a
# timing, and it is not part of the test suite.  CT_KEEP=1 keeps the
# scratch directory (pgbench logs, lock samples).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rows=2000000
big=
quick=
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows=$2; shift 2 ;;
        --big) big=$2; shift 2 ;;
        --quick) quick=1; rows=20000; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "change_type.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$rows$big" in *[!0-9]*) echo "change_type.sh: --rows and --big want a number" >&2; exit 2 ;; esac

# shellcheck source=../scripts/pgenv.sh
. scripts/pgenv.sh
pg_resolve && pg_install_extension

# shellcheck source=lib.sh
. bench/lib.sh
# room for the rewrite's WAL between checkpoints
bench_sandbox ct-bench "${CT_KEEP:-}" "max_wal_size = 16GB
checkpoint_timeout = 30min"
echo "change_type.sh: sandbox primary port $PRIMARY_PORT, $rows rows, $dir" >&2

q "CREATE EXTENSION pg_mig"
q "CREATE TABLE bench_stop (name text)"

# mk T ROWS: table T and T_ref (2 ROWS rows), as described above
mk() {
    local t=$1 n=$2 nref=$(( 2 * $2 ))
    q "DROP TABLE IF EXISTS ${t}_ref, $t;
       CREATE TABLE $t (id serial PRIMARY KEY, customer_id int NOT NULL, n int NOT NULL DEFAULT 0, label text);
       INSERT INTO $t (customer_id, label) SELECT g % 10000, 'label-' || g FROM generate_series(1, $n) g;
       CREATE INDEX ${t}_customer_id_id_idx ON $t (customer_id, id);
       CREATE TABLE ${t}_ref (id bigserial PRIMARY KEY, p_id int NOT NULL, qty int NOT NULL);
       INSERT INTO ${t}_ref (p_id, qty) SELECT (g % $n) + 1, g % 7 FROM generate_series(1, $nref) g;
       CREATE INDEX ${t}_ref_p_id_idx ON ${t}_ref (p_id);
       ALTER TABLE ${t}_ref ADD CONSTRAINT ${t}_ref_p_id_fkey FOREIGN KEY (p_id) REFERENCES $t (id)"
    q "VACUUM (FREEZE, ANALYZE) $t"
    q "VACUUM (FREEZE, ANALYZE) ${t}_ref"
    printf '\\set id random(1, %d)\nUPDATE %s SET n = n + 1 WHERE id = :id;\n' "$n" "$t" > "$dir/upd_$t.sql"
    printf '\\set c random(1, 10000)\nINSERT INTO %s (customer_id, label) VALUES (:c, '"'app'"');\n' "$t" \
        > "$dir/ins_$t.sql"
    printf '\\set id random(1, %d)\nINSERT INTO %s_ref (p_id, qty) VALUES (:id, 1);\n' "$n" "$t" \
        > "$dir/ref_$t.sql"
}

# poll_locks NAME T: until bench_stop has NAME, samples every ~5 ms whether
# some session holds T's ACCESS EXCLUSIVE lock; each hold is one line
#   hold LAST_FREE_MS FIRST_HELD_MS LAST_HELD_MS FIRST_FREE_MS
# (ms since the epoch) in $dir/locks_NAME
poll_locks() {
    psql -X -q -At -v ON_ERROR_STOP=1 -c "DO \$\$
DECLARE
    rel oid := '$2'::regclass;
    held boolean; was boolean := false; t double precision;
    free_at double precision := extract(epoch FROM clock_timestamp()) * 1000;
    first_at double precision; last_at double precision; before double precision;
BEGIN
    LOOP
        t := extract(epoch FROM clock_timestamp()) * 1000;
        held := EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = rel
                          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                          AND mode = 'AccessExclusiveLock' AND granted);
        IF held AND NOT was THEN before := free_at; first_at := t; END IF;
        IF NOT held AND was THEN
            RAISE NOTICE 'hold % % % %', round(before), round(first_at), round(last_at), round(t);
        END IF;
        IF held THEN last_at := t; ELSE free_at := t; END IF;
        was := held;
        EXIT WHEN EXISTS (SELECT 1 FROM bench_stop WHERE name = '$1');
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END \$\$" 2>&1 | sed -n 's/.*NOTICE: *hold /hold /p' > "$dir/locks_$1"
}

# measure NAME T SQL [job]: CHECKPOINT, the lock poller and pgbench on T
# started, 2 s, then SQL (with "job": SQL starts a job, mig_wait waits for
# it), 1 s more.  Appends to $dir/results one line
#   NAME wall_ms max_latency_ms longest_gap_ms wal_bytes job_wal_bytes
#   table_bytes index_bytes base_latency_ms base_gap_ms job failed_txns
# and to $dir/holds_NAME a line "STEP HOLD_MS" for each ACCESS EXCLUSIVE
# hold (the time between the samples that saw it free before and after)
measure() {
    local name=$1 t=$2 sql=$3 mode=${4:-} t0 t1 ts job=0 pgb poller lsn0 state
    q "CHECKPOINT"
    poll_locks "$name" "$t" &
    poller=$!; bg_pids+=("$poller")
    pgbench -n -c 2 -T 36000 -f "$dir/upd_$t.sql" -f "$dir/ins_$t.sql" -f "$dir/ref_$t.sql" \
        -l --log-prefix="$dir/pgb_$name" >"$dir/pgbench_$name.out" 2>&1 &
    pgb=$!; bg_pids+=("$pgb")
    sleep 2
    lsn0=$(q "SELECT pg_current_wal_lsn()")
    t0=$(now_us)
    if [ "$mode" = job ]; then
        job=$(q "$sql")
        ts=$(now_us)
        state=$(q "SELECT mig_wait($job, timeout => '10h')")
        [ "$state" = succeeded ] ||
            die "$name: job $job ended $state: $(q "SELECT last_error FROM mig_jobs WHERE job_id = $job")"
    else
        q "$sql"
        ts=$(now_us)
    fi
    t1=$(now_us)
    local wal
    wal=$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')::bigint")
    sleep 1
    pgbench_end "$pgb"
    q "INSERT INTO bench_stop VALUES ('$name')"
    wait "$poller" || die "$name: the lock poller failed"
    bg_pids=()
    sleep 0.3   # the log files are complete once pgbench has gone
    ! grep -q 'aborted in command' "$dir/pgbench_$name.out" ||
        die "$name: a pgbench client failed: $(grep -m1 ERROR "$dir/pgbench_$name.out")"
    # the longest transaction that overlaps [t0, t1] and the longest one
    # before t0 (pgbench -l: client tx latency_us script epoch_s epoch_us;
    # the last line of a killed client's log may be cut short)
    # A transaction that failed (a deadlock the ALTER caused: its time
    # field says "failed") is counted apart, not taken as a latency
    local lat base_lat failed gap base_gap
    read -r lat base_lat failed < <(for f in "$dir/pgb_$name".*; do sed '$d' "$f"; done |
        awk -v t0="$t0" -v t1="$t1" 'NF >= 6 && $3 == "failed" { failed++; next }
            NF >= 6 {
            end = $5 * 1000000 + $6; start = end - $3
            if (end >= t0 && start <= t1) { if ($3 + 0 > op) op = $3 + 0 }
            else if (end < t0 && $3 + 0 > base) base = $3 + 0 }
            END { printf "%.0f %.0f %d\n", op / 1000, base / 1000, failed }')
    read -r gap base_gap < <("$root/bench/app_gaps.sh" "$dir/pgb_$name" "$t0" "$t1" || echo "none") || true
    if [ "$gap" = none ] || [ -z "${base_gap:-}" ]; then die "$name: pgbench committed nothing"; fi
    # each hold named: before the job's start returned, "start"; else the
    # step whose "done" event came first after it
    q "SELECT extract(epoch FROM at) * 1000, split_part(detail, ':', 1) FROM mig_job_events
        WHERE job_id = $job AND event = 'step' ORDER BY at" | tr '|' ' ' > "$dir/steps_$name"
    awk -v ts="$((ts / 1000))" -v mode="$mode" 'FILENAME == ARGV[1] { at[NR] = $1; step[NR] = $2; n = NR; next }
        { label = (mode == "job" ? "?" : "alter")
          if (mode == "job") {
              if ($4 <= ts) label = "start"
              else for (i = 1; i <= n; i++) if (at[i] >= $4) { label = step[i]; break } }
          printf "%s %.0f\n", label, $5 - $2 }' "$dir/steps_$name" "$dir/locks_$name" > "$dir/holds_$name"
    printf '%s %.0f %s %.0f %s %s %s %s %s %.0f %s %s\n' "$name" $(( (t1 - t0) / 1000 )) "$lat" $(( gap / 1000 )) \
        "$wal" "$(q "SELECT coalesce((SELECT wal_bytes FROM mig_jobs WHERE job_id = $job), 0)")" \
        "$(q "SELECT pg_table_size('$t')")" "$(q "SELECT pg_indexes_size('$t')")" "$base_lat" \
        $(( base_gap / 1000 )) "$job" "$failed" >> "$dir/results"
    tail -n 1 "$dir/results" >&2
    sed 's/^/  hold /' "$dir/holds_$name" >&2
}

# check T N: id is bigint, the first N rows kept their ids (label holds the
# id they were made with), every referencing row finds its row
check() {
    local t=$1 n=$2
    [ "$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname = 'id'")" = bigint ] ||
        die "$t: id is not bigint"
    [ "$(q "SELECT count(*) FROM $t WHERE id <= $n AND label = 'label-' || id")" = "$n" ] ||
        die "$t: rows lost or changed"
    [ "$(q "SELECT count(*) FROM $t WHERE label <> 'app' AND label <> 'label-' || id")" = 0 ] ||
        die "$t: rows whose id changed"
    [ "$(q "SELECT count(*) FROM ${t}_ref r WHERE NOT EXISTS (SELECT 1 FROM $t p WHERE p.id = r.p_id)")" = 0 ] ||
        die "${t}_ref: rows whose p_id finds no row"
    [ "$(q "SELECT count(*) FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname LIKE 'mig\\_%' AND NOT attisdropped")" = 0 ] ||
        die "$t: the job left a column behind"
}

# report: bench/RESULTS-change-type.md from what $dir/results has so far
report() {
    local server lock_timeout lt_ms have_big=
    ! grep -q '^big ' "$dir/results" || have_big=$big
    server=$(q "SELECT version()")
    lock_timeout=$(q "SELECT current_setting('pg_mig.default_lock_timeout')")
    lt_ms=$(q "SELECT extract(epoch FROM current_setting('pg_mig.default_lock_timeout')::interval) * 1000")
    holds() {  # holds NAME: "start 12 ms, swap 40 ms, cleanup 9 ms"
        awk '{ printf "%s%s %d ms", (NR > 1 ? ", " : ""), $1, $2 }' "$dir/holds_$1" 2>/dev/null
    }
    swap_hold() { awk '$1 == "swap" { h = $2 } END { print h + 0 }' "$dir/holds_$1"; }
    {
        awk -v rows="$rows" -v big="$have_big" -v server="$server" -v cores="$(nproc)" -v lt="$lock_timeout" \
            -v ltms="$lt_ms" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" \
            -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" \
            -v h_plain="$(holds plain)" -v h_mig="$(holds mig)" -v h_big="$(holds big)" \
            -v s_mig="$(swap_hold mig)" -v s_big="$([ -z "$have_big" ] || swap_hold big)" '
        { wall[$1] = $2; lat[$1] = $3; gap[$1] = $4; wal[$1] = $5; jwal[$1] = $6; tsz[$1] = $7; isz[$1] = $8
          blat[$1] = $9; bgap[$1] = $10; failed[$1] = $12 }
        function mb(b) { return b >= 1048576 ? sprintf("%.0f MB", b / 1048576) : sprintf("%.0f kB", b / 1024) }
        function row(label, k, n) {
            printf "| %s | %s | %d ms | %s | %d ms | %d | %d ms | %s | %s | %s | %s | %d / %d ms |\n", label, n, wall[k],
                (k == "plain" ? "1.00×" : k == "big" ? "–" : sprintf("%.2f×", wall[k] / wall["plain"])), lat[k], failed[k], gap[k], mb(wal[k]),
                (jwal[k] > 0 ? mb(jwal[k]) : "–"), mb(tsz[k]), mb(isz[k]), blat[k], bgap[k]
        }
        END {
            printf "# Online column type change vs ALTER COLUMN TYPE, under writes\n\n"
            printf "Written by `bench/change_type.sh --rows %d%s` on %s.\n\n", rows, (big ? " --big " big : ""), when
            printf "- machine: %d cores, **shared** with other sessions'"'"' builds and tests while this ran (load average %s at the end): every time here carries that noise; server: %s; one streaming standby (scripts/sandbox.sh defaults, max_wal_size 16GB)\n", cores, load, server
            printf "- tables: `p (id serial PRIMARY KEY, customer_id int NOT NULL, n int NOT NULL DEFAULT 0, label text)` with an index on `(customer_id, id)`, %d rows; `p_ref (id bigserial PRIMARY KEY, p_id int NOT NULL, qty int NOT NULL)` with an index on `p_id`, %d rows; VACUUM (FREEZE, ANALYZE) after loading, CHECKPOINT before each operation\n", rows, 2 * rows
            printf "- `p_ref.p_id` has its foreign key to `p(id)` (on both tables)\n"
            printf "- the application: pgbench -n -c 2, each transaction one of `UPDATE p SET n = n + 1 WHERE id = random`, `INSERT INTO p (customer_id, label) VALUES (...)` (through the sequence default) and `INSERT INTO p_ref (p_id, qty) VALUES (random, 1)`, per-transaction log, from 2 s before each operation to 1 s after it\n"
            printf "- mig_change_type with its defaults (lock_timeout %s) and `cleanup => true`; waited for by `mig_wait`\n", lt
            printf "- longest application wait: the largest pgbench transaction latency among the transactions that overlap the operation; transactions failed: the failed transactions pgbench counted in the run (deadlocks); longest commit gap: bench/app_gaps.sh (both clients merged); baseline: the same over the 2 s before the operation\n"
            printf "- WAL: `pg_current_wal_lsn()` before and after the operation (the application'"'"'s writes in that window included); walk WAL: the job'"'"'s own `wal_bytes`. Sizes: `pg_table_size` and `pg_indexes_size` of p right after (no VACUUM)\n"
            printf "- ACCESS EXCLUSIVE holds on p: a session samples `pg_locks` every ~5 ms (committing each time); a hold is the time between the samples that saw the lock free before and after it (an upper bound within the sampling interval), named by the step of the job that logged its end\n\n"
            printf "| operation | rows | wall time | vs plain | longest application wait | application transactions failed | longest commit gap | WAL | walk WAL | table after | indexes after | baseline wait / gap |\n"
            printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            row("`ALTER TABLE p ALTER COLUMN id TYPE bigint`", "plain", rows)
            row("`mig_change_type('"'"'p'"'"', '"'"'id'"'"', '"'"'bigint'"'"', cleanup => true)`", "mig", rows)
            if (big) row("the same job, larger table", "big", big)
            printf "\nACCESS EXCLUSIVE holds on p:\n\n"
            printf "- plain ALTER: %s\n", h_plain
            printf "- mig_change_type, %d rows: %s\n", rows, h_mig
            if (big) printf "- mig_change_type, %d rows: %s\n", big, h_big
            printf "\nTargets (issue 25): the longest application wait at most lock_timeout + 20 %% (%d ms): %s (%d ms; the plain ALTER: %d ms); ", ltms * 1.2, (lat["mig"] <= ltms * 1.2 ? "met" : "missed"), lat["mig"], lat["plain"]
            printf "the swap'"'"'s lock hold under 1 s at %d rows: %s (%d ms)", rows, (s_mig < 1000 ? "met" : "missed"), s_mig
            if (big) printf "; at %d rows: %d ms (%s)", big, s_big, (s_big < 1000 ? "under 1 s" : "over 1 s")
            printf ".\n"
        }' "$dir/results"
    } > "$dir/RESULTS-change-type.md"
    cp "$dir/RESULTS-change-type.md" bench/RESULTS-change-type.md
    cat bench/RESULTS-change-type.md
}

: > "$dir/results"
mk p_plain "$rows"
mk p_mig "$rows"
measure plain p_plain "ALTER TABLE p_plain ALTER COLUMN id TYPE bigint"
check p_plain "$rows"
measure mig p_mig "SELECT mig_change_type('p_mig', 'id', 'bigint', cleanup => true)" job
check p_mig "$rows"
[ "$(q "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = 'p_mig_id_seq'::regclass")" = bigint ] ||
    die "p_mig_id_seq is not AS bigint"
if [ -n "$quick" ] && [ -z "$big" ]; then
    echo "change_type.sh --quick: every operation did what it should" >&2
    exit 0
fi
[ -n "$quick" ] || report
if [ -n "$big" ]; then
    q "DROP TABLE p_plain_ref, p_plain"
    mk p_big "$big"
    measure big p_big "SELECT mig_change_type('p_big', 'id', 'bigint', cleanup => true)" job
    check p_big "$big"
    [ -n "$quick" ] || report
fi
[ -z "$quick" ] || echo "change_type.sh --quick: every operation did what it should" >&2
