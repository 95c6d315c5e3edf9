#!/usr/bin/env bash
# test/run_regress.sh -- runs the pg_regress suite and the isolation specs
# (make installcheck) against a sandbox of its own; prints the diffs on
# failure.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/pgmig-regress.XXXXXX)
chmod 755 "$dir"
trap '"$src/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT
SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$dir/sb" >/dev/null || exit 2
# shellcheck disable=SC1091
. "$dir/sb/env"
rm -rf "$src/test/out"
make -s -C "$src" installcheck
rc=$?
if [ $rc -ne 0 ]; then
  for f in "$src/test/out/regression.diffs" "$src/test/out/isolation/regression.diffs"; do
    [ -f "$f" ] && cat "$f"
  done
fi
exit $rc
