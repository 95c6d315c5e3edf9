# shellcheck shell=bash
# bench/lib.sh -- sourced by bench/kinds.sh, bench/change_type.sh and
# bench/bloat.sh (from the checkout's root, with $root set to it): a
# throwaway sandbox primary + streaming standby for one run, the psql
# helpers, and the end of a pgbench run.
#
#   bench_sandbox TAG KEEP CONF  makes $dir (/tmp/pgmig-TAG.XXXXXX), starts
#                                the sandbox in $dir/sb with SANDBOX_CONF=CONF
#                                and takes its environment (PGPORT, ...); at
#                                exit the background jobs in bg_pids are
#                                killed (by their ids), the primary's log is
#                                kept in /tmp/pgmig-TAG-primary.log, the
#                                sandbox is stopped and removed, and $dir too
#                                unless KEEP is not empty
#   q SQL                        one statement by psql (-At, warnings only)
#   now_us                       µs since the epoch
#   die MESSAGE                  the message on stderr, exit 1
#   pgbench_end PID              ends the pgbench PID (started with -T) by
#                                SIGALRM, its own end of -T: it finishes its
#                                transactions and writes out its logs (a
#                                plain kill loses what it had not flushed
#                                yet, often every transaction an operation
#                                held up); waits for it
#   pgbench_failed PREFIX        the transactions pgbench counted as failed
#                                (deadlock, serialization: their time field
#                                in the logs PREFIX.* says "failed"), which
#                                are no commits and no latencies

bg_pids=()
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
now_us() { date +%s%6N; }
die() { echo "${0##*/}: $*" >&2; exit 1; }
pgbench_end() { kill -ALRM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
pgbench_failed() {
    local f
    for f in "$1".*; do [ -e "$f" ] && cat "$f"; done | awk 'NF >= 6 && $3 == "failed" { n++ } END { print n + 0 }'
}

bench_finish() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    cp "$dir/sb/primary.log" "/tmp/pgmig-$bench_tag-primary.log" 2>/dev/null || true
    "$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1 || true
    [ -n "$bench_keep" ] || rm -rf "$dir"
}

bench_sandbox() {
    bench_tag=$1 bench_keep=$2
    dir=$(mktemp -d "/tmp/pgmig-$bench_tag.XXXXXX")
    chmod 755 "$dir"
    trap bench_finish EXIT INT TERM
    SANDBOX_CONF=$3 "$root/scripts/sandbox.sh" start "$dir/sb" >/dev/null
    # shellcheck disable=SC1091
    . "$dir/sb/env"
}
