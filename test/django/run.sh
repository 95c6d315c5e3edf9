#!/usr/bin/env bash
# test/django/run.sh [--trixie|--sid] [MIGCTL] -- the Django integration test:
# starts a sandbox primary + standby of its own, runs test_django.py (python
# unittest, on the host's /usr/bin/python3) against it, and stops the
# sandbox on exit.  The Django project the test generates runs its
# manage.py with
#
#   (default)   the host's /usr/bin/python3: Debian 12's Django 3.2 and
#               psycopg2 (ctest: django).  With Django >= 4.2 and both
#               drivers installed it runs twice, once with psycopg 3 and
#               once with psycopg2; Django 3.2 has only a psycopg2 backend,
#               so there it runs once and says so.
#   --trixie    the python3 of the trixie chroot that holds PostgreSQL 17
#               (scripts/pgbuild.sh django adds trixie's Django 4.2 and
#               psycopg 3 to it, once), through scripts/pgchroot.sh: Django
#               4.2 with psycopg 3 (ctest: django_psycopg3), twice: with
#               Django's default client-side parameter binding, and with
#               OPTIONS {"server_side_binding": True}.  The test checks that
#               manage.py really ran Django 4.2 on psycopg 3 with that
#               cursor.  Needs root.
#   --sid       the same with the python3 of the sid chroot that holds
#               PostgreSQL 19 (scripts/pgbuild.sh django5 adds sid's Django
#               5.x and psycopg 3 to it, once): the newest Django Debian's
#               archive carries (ctest: django5), against the same
#               PostgreSQL 15 sandbox.  Needs root.
#
# PGMIG_DJANGO_TESTS="test_backend" runs only those test modules (default: all).
#
# manage.py turns DeprecationWarning and PendingDeprecationWarning into
# errors (Django's RemovedInDjangoNNWarning: what the next versions no longer
# have): those raised in the package's code, and with --trixie or --sid all
# of them.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
# chroot: the Debian suite whose chroot runs manage.py (none: the host)
chroot=
case "${1:-}" in
  --trixie) chroot=trixie; shift ;;
  --sid) chroot=sid; shift ;;
esac
MIGCTL=${1:-$src/build/controller/migctl}
case $MIGCTL in /*) ;; *) MIGCTL=$PWD/$MIGCTL ;; esac
export MIGCTL
PY=/usr/bin/python3           # the test itself
DJANGO_PY=/usr/bin/python3    # manage.py
if [ -n "$chroot" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "test/django/run.sh --$chroot: run as root (the chroot)" >&2; exit 1; }
  # what the test must find manage.py running (test_00_driver)
  if [ "$chroot" = trixie ]; then
    bash "$src/scripts/pgbuild.sh" django || exit 2
    export PGMIG_EXPECT_DJANGO=4.2
  else
    bash "$src/scripts/pgbuild.sh" django5 || exit 2
    export PGMIG_EXPECT_DJANGO=5.2
  fi
  DJANGO_PY="$src/scripts/pgchroot.sh --chroot $chroot /usr/bin/python3"
  # every deprecation warning is an error there, not only the package's
  export PGMIG_DEPRECATIONS_IN=
fi
export PGMIG_DJANGO_PYTHON=$DJANGO_PY
dir=$(mktemp -d /tmp/pgmig-django.XXXXXX)
chmod 755 "$dir"
trap '"$src/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT
SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$dir/sb" >/dev/null || exit 2
# shellcheck disable=SC1091
. "$dir/sb/env"
export PGMIG_SOURCE_DIR=$src

# shellcheck disable=SC2086
version=$($DJANGO_PY -c 'import django; print(django.get_version())') ||
  { echo "test/django: no Django for $DJANGO_PY" >&2; exit 1; }
if [ "$chroot" = sid ]; then
  # psycopg 3 only, parameters bound by the client (Django's default); the
  # server's binding is django_psycopg3's
  drivers="psycopg"
elif [ -n "$chroot" ]; then
  # psycopg 3 only (there is no psycopg2 in the chroot to fall back to), with
  # parameters bound by the client (Django's default: ClientCursor), then by
  # the server (OPTIONS server_side_binding, typed parameters)
  drivers="psycopg psycopg:ssb"
else
  # shellcheck disable=SC2086
  drivers=$($DJANGO_PY - <<'PY'
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
  case " $drivers " in
    *" psycopg "*) ;;
    *) echo "test/django: psycopg 3 not tested here: Django $version has no psycopg 3 backend (Django 4.2 added it; ctest django_psycopg3 tests it)" ;;
  esac
  [ -n "$drivers" ] || { echo "test/django: neither psycopg2 nor psycopg is installed" >&2; exit 1; }
fi
echo "django $version ($DJANGO_PY)"
rc=0
for v in $drivers; do
  d=${v%%:*} options=
  if [ "$v" = psycopg:ssb ]; then
    echo "== test/django with $d, server-side binding"
    options='{"server_side_binding": true}'
  else
    echo "== test/django with $d"
  fi
  db="shop_${v/:/_}"
  psql -XAtq -d postgres -c "CREATE DATABASE $db" || exit 2
  (cd "$src/test/django" && PYTHONDONTWRITEBYTECODE=1 PGMIG_DRIVER=$d PGMIG_DB=$db PGMIG_DJANGO_OPTIONS=$options \
     $PY -m unittest -v ${PGMIG_DJANGO_TESTS:-test_django test_lint test_backend test_beside} 2>&1) || rc=1
  if [ "$rc" -ne 0 ]; then
    echo "--- primary log (tail)"; tail -n 40 "$dir/sb/primary.log"
  fi
done
exit $rc
