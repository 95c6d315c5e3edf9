#!/usr/bin/env bash
# bench/app_gaps.sh PREFIX T0 T1 -- how long the application waited, from
# pgbench's per-transaction logs PREFIX.* (pgbench -l --log-prefix=PREFIX,
# ended by bench/lib.sh's pgbench_end; the last line of each log is left
# out in case it was cut short).  A failed transaction (its time field says
# "failed": a deadlock, a serialization failure) is no commit and is left
# out too (bench/lib.sh's pgbench_failed counts them).  The commit times of
# every client are merged and sorted; prints
#
#   LONGEST_GAP_US BASELINE_GAP_US
#
# the largest difference between two consecutive commits that overlaps
# [T0, T1] (µs since the epoch: the operation), and the largest one before
# T0 (the machine's own noise).  Exits 1 when pgbench committed nothing.
# Used by bench/kinds.sh, bench/bloat.sh and bench/change_type.sh.
set -euo pipefail
prefix=$1 t0=$2 t1=$3
commits=$(mktemp /tmp/pgmig-commits.XXXXXX)
trap 'rm -f "$commits"' EXIT
for f in "$prefix".*; do [ -e "$f" ] && sed '$d' "$f"; done |
    awk 'NF >= 6 && $3 != "failed" { printf "%.0f\n", $5 * 1000000 + $6 }' | sort -n > "$commits"
[ -s "$commits" ] || exit 1
awk -v t0="$t0" -v t1="$t1" '
    NR > 1 {
        gap = $1 - prev
        if ($1 >= t0 && prev <= t1) { if (gap > op) op = gap }
        else if ($1 < t0 && gap > base) base = gap
    }
    { prev = $1 }
    END { printf "%.0f %.0f\n", op, base }' "$commits"
