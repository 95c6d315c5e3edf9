# shellcheck shell=bash
# bench/lib.sh -- sourced by bench/kinds.sh and bench/change_type.sh (from
# the checkout's root, with $root set to it): a throwaway sandbox primary +
# streaming standby for one run, and the psql helpers.
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

bg_pids=()
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
now_us() { date +%s%6N; }
die() { echo "${0##*/}: $*" >&2; exit 1; }

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
