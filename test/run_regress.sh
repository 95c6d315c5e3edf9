#!/usr/bin/env bash
# test/run_regress.sh [--temp-instance [REGRESS [ISOLATION]]] -- runs the
# pg_regress suite and the isolation specs (make installcheck); prints the
# diffs on failure. The server is the one scripts/pgenv.sh resolves
# (PGMIG_PG=15|17|18|19, PG_CONFIG, or PATH's pg_config); pg_regress,
# pg_isolation_regress and their psql are that server's, pg_mig installed
# in it.
#
#   (no option)      every test and spec against a sandbox of its own
#                    (ctest regress); results and diffs in test/out/pgN
#                    (N: the server's major version)
#   --temp-instance  make installcheck TEMP_INSTANCE=1: in pg_regress's own
#                    temporary instance (initdb, test/temp.conf: pg_mig
#                    preloaded), no sandbox; by default one test and one
#                    spec (ctest installcheck_temp: what it checks is the
#                    temporary instance; the whole suite is regress's), ''
#                    '' for all of them, or name others. As root it runs
#                    them as the sandbox's user pgmig (PostgreSQL refuses to
#                    run as root) or as PGMIG_TEMP_USER: the whole suite
#                    wants postgres, the name its expected files show for
#                    the bootstrap superuser
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/pgenv.sh
. "$src/scripts/pgenv.sh"
pg_resolve || exit 2
dir=$(mktemp -d /tmp/pgmig-regress.XXXXXX)
chmod 755 "$dir"
args=()
if [ "${1:-}" = --temp-instance ]; then
  regress=${2-01_api}
  isolation=${3-iso_wait}
  user=${PGMIG_TEMP_USER:-pgmig}
  trap 'rm -rf "$dir"' EXIT
  if [ "$(id -u)" -eq 0 ]; then
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user" 2>/dev/null ||
      id "$user" >/dev/null || exit 2
    chown "$user" "$dir"
  fi
  out=$dir/out
  args+=(TEMP_INSTANCE=1 TEST_OUT="$out")
  [ -z "$regress" ] || args+=(REGRESS="$regress")
  [ -z "$isolation" ] || args+=(ISOLATION="$isolation")
  run() { pg_exec_as "$user" "$@"; }
else
  trap '"$src/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT
  SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$dir/sb" >/dev/null || exit 2
  # shellcheck disable=SC1091
  . "$dir/sb/env"
  # one directory per version: test.sh --pg all runs the suites of two
  # versions at once from the same tree
  out=$src/test/out/pg$PG_MAJOR
  rm -rf "$out"
  args+=(TEST_OUT="$out")
  run() { pg_exec "$@"; }
fi
# shellcheck disable=SC2086
run make -s -C "$src" installcheck PG_CONFIG="$PG_CONFIG" "${args[@]}" $PG_MAKE
rc=$?
if [ $rc -ne 0 ]; then
  for f in "$out/regression.diffs" "$out/isolation/regression.diffs"; do
    [ -f "$f" ] && cat "$f"
  done
fi
exit $rc
