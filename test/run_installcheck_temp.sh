#!/usr/bin/env bash
# test/run_installcheck_temp.sh [REGRESS ISOLATION] -- `make installcheck
# TEMP_INSTANCE=1` works: pg_regress makes a temporary instance of its own
# (initdb, test/temp.conf: pg_mig preloaded), runs pg_regress tests and
# isolation specs in it, and stops it; no sandbox, no running server.  By
# default one test and one spec (ctest installcheck_temp: what is checked is
# the temporary instance, the whole suite runs in ctest regress); say
# '' '' for all of them, or name others.  Run as root, it runs them as the
# sandbox's user pgmig (PostgreSQL refuses to run as root), or as
# PGMIG_TEMP_USER: the whole suite wants postgres, the name its expected
# files show for the bootstrap superuser.  The results and the instance go
# to a temporary directory that user may write.
# The server is the one scripts/pgenv.sh resolves; pg_mig installed in it.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/pgenv.sh
. "$src/scripts/pgenv.sh"
pg_resolve || exit 2
regress=${1-01_api}
isolation=${2-iso_wait}
user=${PGMIG_TEMP_USER:-pgmig}
if [ "$(id -u)" -eq 0 ]; then
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user" 2>/dev/null ||
    id "$user" >/dev/null || exit 2
fi
dir=$(mktemp -d /tmp/pgmig-tempinst.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
[ "$(id -u)" -ne 0 ] || chown "$user" "$dir"
args=(installcheck TEMP_INSTANCE=1 TEST_OUT="$dir/out" PG_CONFIG="$PG_CONFIG")
[ -z "$regress" ] || args+=(REGRESS="$regress")
[ -z "$isolation" ] || args+=(ISOLATION="$isolation")
# shellcheck disable=SC2086
pg_exec_as "$user" make -s -C "$src" "${args[@]}" $PG_MAKE
rc=$?
if [ $rc -ne 0 ]; then
  for f in "$dir/out/regression.diffs" "$dir/out/isolation/regression.diffs"; do
    [ -f "$f" ] && cat "$f"
  done
fi
exit $rc
