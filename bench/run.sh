#!/usr/bin/env bash
# bench/run.sh -- the benchmark: installs what is missing, builds pg_mig and
# pgmig_bench, starts a throwaway sandbox primary + streaming standby tuned
# like a small production server (fsync on), runs every method and writes
# bench/RESULTS.md.  All arguments go to pgmig_bench (see --help):
#
#   bench/run.sh                  full run (2,000,000 rows, 3 rounds, scaling 1M/5M/20M)
#   bench/run.sh --quick          small sizes, one round: checks every method's result
#   bench/run.sh --lanes 1,2,4,8  parallel lanes up to 8 (a machine with 16 cores)
#   make bench [BENCH_ARGS=...]   the same through make
#
# PGMIG_BENCH_BIN=path skips the set-up and build (ctest's smoke test uses it).
# The server: PGMIG_PG=15|17|18 (or PG_CONFIG), else the pg_config on PATH
# (scripts/pgenv.sh); pgbench and psql are the host's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=../scripts/pgenv.sh
. scripts/pgenv.sh
if [ -z "${PGMIG_BENCH_BIN:-}" ]; then
    bash scripts/deps.sh ${PGMIG_PG:-15}
    [ -z "${PGMIG_PG:-}" ] || bash scripts/pgbuild.sh "$PGMIG_PG"
    pg_resolve && pg_install_extension
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j2 --target pgmig_bench >/dev/null
    PGMIG_BENCH_BIN=$root/build/bench/pgmig_bench
fi

for a in "$@"; do
    if [ "$a" = --help ]; then "$PGMIG_BENCH_BIN" --help; exit 0; fi
done

dir=$(mktemp -d /tmp/pgmig-bench.XXXXXX)
chmod 755 "$dir"
# the primary's log is kept in /tmp/pgmig-bench-primary.log for diagnosis
trap 'cp "$dir/sb/primary.log" /tmp/pgmig-bench-primary.log 2>/dev/null; "$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
# durable commits as in production; shared_buffers at the usual quarter of
# RAM; room for the big runs' WAL between checkpoints
export SANDBOX_CONF="fsync = on
synchronous_commit = on
shared_buffers = 6GB
max_wal_size = 16GB
checkpoint_timeout = 30min
autovacuum = on
max_connections = 50
pg_mig.max_workers = 16
pg_mig.max_workers_per_role = 16
pg_mig.naptime = 3600"
"$root/scripts/sandbox.sh" start "$dir/sb" >/dev/null
# shellcheck disable=SC1091
. "$dir/sb/env"
cd "$root"
echo "sandbox: primary port $PRIMARY_PORT, standby port $STANDBY_PORT, $dir" >&2
"$PGMIG_BENCH_BIN" "$@"
