#!/usr/bin/env bash
# test/django/run.sh [MIGCTL] -- the Django integration test: starts a sandbox
# primary + standby of its own, runs test_django.py (python unittest, Debian's
# /usr/bin/python3 with python3-django) against it, and stops the sandbox on
# exit.  With Django >= 4.2 and both drivers installed it runs twice, once
# with psycopg 3 and once with psycopg2; Django 3.2 has only a psycopg2
# backend, so there it runs once and says so.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
MIGCTL=${1:-$src/build/controller/migctl}
case $MIGCTL in /*) ;; *) MIGCTL=$PWD/$MIGCTL ;; esac
export MIGCTL
PY=/usr/bin/python3
dir=$(mktemp -d /tmp/pgmig-django.XXXXXX)
chmod 755 "$dir"
trap '"$src/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT
SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$dir/sb" >/dev/null || exit 2
# shellcheck disable=SC1091
. "$dir/sb/env"
export PGMIG_SOURCE_DIR=$src

drivers=$($PY - <<'PY'
import django
have = []
for name in ("psycopg", "psycopg2"):
    try:
        __import__(name)
        have.append(name)
    except ImportError:
        pass
if django.VERSION < (4, 2):
    have = [d for d in have if d == "psycopg2"]
print(" ".join(have))
PY
)
$PY -c 'import django; import sys; sys.stdout.write("django %s\n" % django.get_version())'
case " $drivers " in
  *" psycopg "*) ;;
  *) echo "test/django: psycopg 3 not tested: Django $($PY -c 'import django; print(django.get_version())') has no psycopg 3 backend (Django 4.2 added it)" ;;
esac
[ -n "$drivers" ] || { echo "test/django: neither psycopg2 nor psycopg is installed" >&2; exit 1; }
rc=0
for d in $drivers; do
  echo "== test/django with $d"
  db="shop_${d}"
  psql -XAtq -d postgres -c "CREATE DATABASE $db" || exit 2
  (cd "$src/test/django" && PYTHONDONTWRITEBYTECODE=1 PGMIG_DRIVER=$d PGMIG_DB=$db $PY -m unittest -v test_django 2>&1) || rc=1
  if [ "$rc" -ne 0 ]; then
    echo "--- primary log (tail)"; tail -n 40 "$dir/sb/primary.log"
  fi
done
exit $rc
