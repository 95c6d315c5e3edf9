#!/usr/bin/env bash
# test/run_regress.sh -- runs the pg_regress suite and the isolation specs
# (make installcheck) against a sandbox of its own; prints the diffs on
# failure. The server is the one scripts/pgenv.sh resolves (PGMIG_PG=15|17|18,
# PG_CONFIG, or PATH's pg_config); pg_regress, pg_isolation_regress and their
# psql are that server's.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/pgenv.sh
. "$src/scripts/pgenv.sh"
pg_resolve || exit 2
dir=$(mktemp -d /tmp/pgmig-regress.XXXXXX)
chmod 755 "$dir"
trap '"$src/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT
SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$dir/sb" >/dev/null || exit 2
# shellcheck disable=SC1091
. "$dir/sb/env"
rm -rf "$src/test/out"
# shellcheck disable=SC2086
pg_exec make -s -C "$src" installcheck PG_CONFIG="$PG_CONFIG" $PG_MAKE
rc=$?
if [ $rc -ne 0 ]; then
  for f in "$src/test/out/regression.diffs" "$src/test/out/isolation/regression.diffs"; do
    [ -f "$f" ] && cat "$f"
  done
fi
exit $rc
