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
#                server side of each in turn (regress with the isolation
#                specs, every it_* but it_upgrade), while the tests of the
#                client side -- unit, deb, django, django_psycopg3, django5,
#                bench_quick, man_page, completion -- and it_upgrade run
#                once, with 15, in the background; ends with one line
#                "N passed, M failed" over all of it (a build that fails
#                counts as one failed test); exits non-zero if any failed
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

# 15's client side in the background, beside the server side of every
# version: they use servers of their own (sandboxes, the system's 15 for
# the packages) and build nothing in the tree
bg=
if printf '%s\n' "${built[@]}" | grep -qx 15; then
  bg_log=$(mktemp /tmp/pgmig-test.XXXXXX) bg_start=$SECONDS
  (PGMIG_PG=15 ctest --test-dir build --output-on-failure -R "$client" "$@" > "$bg_log" 2>&1 || true) &
  bg=$!
  echo "==== PostgreSQL 15, the client side: running in the background"
fi
for v in $versions; do
  printf '%s\n' "${built[@]}" | grep -qx "$v" || continue
  echo "==== PostgreSQL $v"
  log=$(mktemp /tmp/pgmig-test.XXXXXX) start=$SECONDS
  PGMIG_PG=$v ctest --test-dir build --output-on-failure -E "$client" "$@" 2>&1 | tee "$log" || true
  count "$log" "PostgreSQL $v" $(( SECONDS - start ))
  rm -f "$log"
done
if [ -n "$bg" ]; then
  wait "$bg" || true
  echo "==== PostgreSQL 15, the client side"
  cat "$bg_log"
  count "$bg_log" "PostgreSQL 15, the client side" $(( SECONDS - bg_start ))
  rm -f "$bg_log"
fi
echo
printf '%s\n' "${lines[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
