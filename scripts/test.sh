#!/usr/bin/env bash
# scripts/test.sh [--pg 15|17|18|19|all] [ctest args] -- THE test command:
# installs what is missing, builds the extension (warnings are errors) and
# migctl, and runs every test through ctest (GoogleTest unit tests, the
# pg_regress suite and the integration tests, each against a sandbox primary
# + streaming standby of its own).
#
#   (no --pg)    15 (Debian 12's, as a copy in build/pg/15): the server
#                side in the foreground while the client side (below) runs
#                beside it, as --pg all does for 15; ends with one line
#                "N passed, M failed". With ctest arguments (e.g. -R it_kinds),
#                or the server of PG_CONFIG or PG_BINDIR when one is set: one
#                ctest run, ending with ctest's summary
#   --pg N       PostgreSQL N (15, 17, 18 or 19; scripts/pgbuild.sh makes
#                17, 18 and 19 the first time); ends with ctest's summary
#   --pg all     15, 17, 18 and 19: each server built (15 last), then the
#                server side of each (regress with the isolation specs,
#                every it_* but it_upgrade; with 19 the Django test on the
#                host's stack too) and, once, with 15, the tests
#                of the client side -- unit, deb, django, django_psycopg3,
#                django5, bench_quick, man_page, completion -- and
#                it_upgrade: five ctest runs, PGMIG_TEST_JOBS (default 3)
#                of them at once, each run's output printed when it ends;
#                ends with one line "N passed, M failed" over all of it (a
#                build that fails counts as one failed test); exits
#                non-zero if any failed
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
versions=
if [ "${1:-}" = --pg ]; then
  [ $# -ge 2 ] || { echo "test.sh: --pg needs 15, 17, 18, 19 or all" >&2; exit 2; }
  case "$2" in
    15|17|18|19) versions=$2 ;;
    all) versions="15 17 18 19" ;;
    *) echo "test.sh: --pg $2: say 15, 17, 18, 19 or all" >&2; exit 2 ;;
  esac
  shift 2
fi

[ -n "$versions" ] || [ -n "${PG_CONFIG:-}${PG_BINDIR:-}" ] || versions=15
max=${PGMIG_TEST_JOBS:-3}
[[ "$max" =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: PGMIG_TEST_JOBS=$max: say a number from 1" >&2; exit 2; }
bash scripts/deps.sh ${versions:-15}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null

# build_for [VERSION]: the server ready and pg_mig built and installed for it
build_for() {
  if [ -n "${1:-}" ]; then
    bash scripts/pgbuild.sh "$1"
    export PGMIG_PG=$1
  fi
  # shellcheck source=pgenv.sh
  . scripts/pgenv.sh
  pg_resolve && pg_install_extension -Werror
}

# one version (or none), unless it is the default run of every test on 15
if [ "$versions" = "${versions% *}" ] && { [ "$versions" != 15 ] || [ $# -gt 0 ]; }; then
  build_for "$versions"
  exec ctest --test-dir build --output-on-failure "$@"
fi

# the tests of the client side run once, with 15: the Debian packages
# (built for Debian 12's 15 whatever --pg says), the Django package on both
# stacks, the benchmark's smoke test, migctl's unit tests, man page and
# completion; what they use of the server is the same pg_mig the
# integration tests run on every version (--pg N alone runs them all); and
# the package upgrade from the released versions (it_upgrade), which builds
# 0.2 and 0.3 for the server it runs on: that path is the library's and the
# scripts', the same on every version
client='^(unit|callgraph|deb|django|django_psycopg3|django5|bench_quick|man_page|completion|it_upgrade)$'
# but the Django package also runs against the newest server (django: the
# host's stack, the quickest): what a server adds to its messages and
# catalogs reaches Django's output (19's CONTEXT of a lock timeout, 18's
# NOT NULL constraints by name)
newest=19
client_but_django=${client/|django|/|}
passed=0 failed=0 lines=()

# count LOG LABEL SECONDS: adds the ctest summary in LOG to the totals
count() {
  local summary f n
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1 || true)
  if [ -z "$summary" ]; then
    failed=$(( failed + 1 ))
    lines+=("$2: ctest gave no summary")
    return
  fi
  f=$(echo "$summary" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  n=$(echo "$summary" | sed -E 's/.* out of ([0-9]+).*/\1/')
  passed=$(( passed + n - f )) failed=$(( failed + f ))
  lines+=("$2: $(( n - f )) passed, $f failed ($3 s)")
}

# every server built first, 15 last: the tree then holds 15's pg_mig.so,
# which it_upgrade installs as "this checkout's" while the others run
built=()
for v in $(printf '%s\n' $versions | grep -vx 15) $(printf '%s\n' $versions | grep -x 15); do
  echo "==== PostgreSQL $v: build"
  if (build_for "$v"); then built+=("$v")
  else
    failed=$(( failed + 1 ))
    lines+=("PostgreSQL $v: the build failed")
  fi
done

# the runs: 15's client side (it uses servers of its own -- sandboxes, the
# system's 15 for the packages -- and builds nothing in the tree) and the
# server side of every version built, each a ctest run of its own, at most
# PGMIG_TEST_JOBS (default 3) at once: the tests mostly wait (for workers,
# naptimes, sleeps, restarts), so three runs share 2 cores with little loss.
# The longest first: the client side, then 19, 17, 18, 15 (the times in
# docs/development.md). The default run (15 alone) shows the server side as
# it goes; --pg all prints each run's output when it ends
queue=()
if printf '%s\n' "${built[@]}" | grep -qx 15; then queue+=(client); fi
for v in 19 17 18 15; do
  printf '%s\n' "${built[@]}" | grep -qx "$v" && queue+=("$v")
done
live=
[ "$versions" != 15 ] || live=15
declare -A run_log=() run_label=() run_start=()
running=0
run_one() {
  local what=$1 label log; shift
  log=$(mktemp /tmp/pgmig-test.XXXXXX)
  if [ "$what" = client ]; then
    label="PostgreSQL 15, the client side"
    (PGMIG_PG=15 ctest --test-dir build --output-on-failure -R "$client" "$@" > "$log" 2>&1 || true) &
  else
    local exclude=$client
    [ "$what" != "$newest" ] || exclude=$client_but_django
    label="PostgreSQL $what"
    if [ "$what" = "$live" ]; then
      (PGMIG_PG=$what ctest --test-dir build --output-on-failure -E "$exclude" "$@" 2>&1 | tee "$log" || true) &
    else
      (PGMIG_PG=$what ctest --test-dir build --output-on-failure -E "$exclude" "$@" > "$log" 2>&1 || true) &
    fi
  fi
  run_log[$!]=$log run_label[$!]=$label run_start[$!]=$SECONDS running=$(( running + 1 ))
  echo "==== $label: started$([ "$what" = "$live" ] || echo ", in the background")"
}
# finish_one: waits for a run to end, prints its output and counts it
finish_one() {
  local pid
  wait -n -p pid || true
  if [ "${run_label[$pid]}" != "PostgreSQL $live" ]; then
    echo "==== ${run_label[$pid]}"
    cat "${run_log[$pid]}"
  fi
  count "${run_log[$pid]}" "${run_label[$pid]}" $(( SECONDS - ${run_start[$pid]} ))
  rm -f "${run_log[$pid]}"
  running=$(( running - 1 ))
}
for what in "${queue[@]}"; do
  while [ "$running" -ge "$max" ]; do finish_one; done
  run_one "$what" "$@"
done
while [ "$running" -gt 0 ]; do finish_one; done
echo
printf '%s\n' "${lines[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
