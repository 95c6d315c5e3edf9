#!/usr/bin/env bash
# bench/django_run.sh -- the Django benchmark (bench/django_bench.py): the
# ways a Django team would backfill a column against django_pg_mig's Backfill
# through manage.py migrate, on a throwaway sandbox primary + streaming
# standby with durable commits; writes bench/RESULTS-django.md.
#
#   bench/django_run.sh              2,000,000 rows (20,000 for the per-row way, 200,000 for bulk_update), 1 round
#   bench/django_run.sh --quick      5,000 rows: checks every method's result
#   bench/django_run.sh --rows N --subset-h N --subset-i N --rounds N --out FILE
#   bench/django_run.sh --beside [--rows N] [--rate TPS]
#                                    bench/django_beside.py: makemigrations'
#                                    output applied by plain Django and by the
#                                    package while pgbench writes (2,000,000
#                                    rows, 200 TPS); its own section of the file
#
# Needs pg_mig installed for the pg_config on PATH (make install) and
# Debian's python3-django and python3-psycopg2 (scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/pgmig-django-bench.XXXXXX)
chmod 755 "$dir"
trap '"$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
export SANDBOX_CONF="fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = on"
"$root/scripts/sandbox.sh" start "$dir/sb" >/dev/null
# shellcheck disable=SC1091
. "$dir/sb/env"
if [ "${1:-}" = --beside ]; then
  shift
  /usr/bin/python3 "$root/bench/django_beside.py" "$@"
else
  /usr/bin/python3 "$root/bench/django_bench.py" "$@"
fi
